"""STAC-driven ingestion: watch catalogs, run ``monitor_region`` for each new acquisition.

Public API (names load on first use):

- :func:`watch_regions` — the Prefect flow: one poll of every region (``changevg watch``);
- :func:`poll` — the same poll without Prefect's flow around it (give it the run function);
- :func:`load_regions`, :class:`Region` — the regions TOML file;
- :class:`StateStore`, :class:`RegionState` — the per-region cursors under ``--state``;
- :func:`find_acquisitions`, :class:`Acquisition`, :func:`run_id_for` — what a poll sees.

Modules: ``regions``, ``state``, ``poll``, ``flow``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from catalogs._lazy import lazy_exports

if TYPE_CHECKING:
    from flows.watch.flow import watch_regions
    from flows.watch.poll import Acquisition, find_acquisitions, poll, run_id_for
    from flows.watch.regions import Region, load_regions
    from flows.watch.state import RegionState, StateStore

_HOME = {
    "watch_regions": "flow",
    "Acquisition": "poll",
    "find_acquisitions": "poll",
    "poll": "poll",
    "run_id_for": "poll",
    "Region": "regions",
    "load_regions": "regions",
    "RegionState": "state",
    "StateStore": "state",
}

__all__ = [
    "Acquisition",
    "Region",
    "RegionState",
    "StateStore",
    "find_acquisitions",
    "load_regions",
    "poll",
    "run_id_for",
    "watch_regions",
]

__getattr__, __dir__ = lazy_exports(__name__, _HOME, globals())
