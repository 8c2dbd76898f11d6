"""Flows: the Prefect flows that compose catalogs → tiling → changevg, and what they write.

Public API (names load on first use, so ``import flows`` and ``changevg --help`` stay cheap):

- :func:`monitor_region` — the Prefect flow: search, tile, predict, vectorise, inventory, report;
- :func:`ingest_region` — the Prefect flow that searches and tiles only;
- :func:`run_direct` — the same stages as ``monitor_region`` in this process, without Prefect;
- :func:`predict_tiles` — ChangeVG over every tile pair of a store (VGM screen, then the VLM);
- :func:`write_inventory` — one run's rows into the GeoParquet inventory;
- :func:`query` — read the inventory back (``flows.inventory.query_inventory``);
- :class:`RunRequest`, :class:`IngestRequest` — what a user asks of a run (the flows' one
  parameter; the CLI options and ``prefect.yaml`` follow its fields);
- :class:`MonitorSpec`, :class:`Settings`, :class:`PredictOptions` — a run's resolved
  parameters and its configuration.

Subpackages: :mod:`flows.inventory` (the GeoParquet inventory: contract, writer, query),
:mod:`flows.cli` (the ``changevg`` command line), :mod:`flows.synthetic` (the demo, training
data and truth from synthetic regions).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from catalogs._lazy import lazy_exports

if TYPE_CHECKING:
    from flows.inventory.query import query_inventory as query
    from flows.inventory.writer import write_inventory
    from flows.monitor import ingest_region, monitor_region, run_direct
    from flows.predict import PredictOptions, predict_tiles
    from flows.request import IngestRequest, RunRequest
    from flows.settings import Settings
    from flows.spec import MonitorSpec

# public name -> (module, name in that module)
_HOME = {
    "monitor_region": ("flows.monitor", "monitor_region"),
    "ingest_region": ("flows.monitor", "ingest_region"),
    "run_direct": ("flows.monitor", "run_direct"),
    "predict_tiles": ("flows.predict", "predict_tiles"),
    "PredictOptions": ("flows.predict", "PredictOptions"),
    "write_inventory": ("flows.inventory.writer", "write_inventory"),
    "query": ("flows.inventory.query", "query_inventory"),
    "MonitorSpec": ("flows.spec", "MonitorSpec"),
    "RunRequest": ("flows.request", "RunRequest"),
    "IngestRequest": ("flows.request", "IngestRequest"),
    "Settings": ("flows.settings", "Settings"),
}

__all__ = [
    "IngestRequest",
    "MonitorSpec",
    "PredictOptions",
    "RunRequest",
    "Settings",
    "ingest_region",
    "monitor_region",
    "predict_tiles",
    "query",
    "run_direct",
    "write_inventory",
]


__getattr__, __dir__ = lazy_exports(__name__, _HOME, globals())
