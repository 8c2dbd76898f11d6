"""``watch_regions``: the Prefect flow behind ``changevg watch`` — one poll of every region.

Each new acquisition becomes a ``monitor-region`` child flow run (its own summary and report
artifacts); the poll itself leaves a table artifact (``changevg-watch``): per region what was
found, what ran, what waits for coverage and what failed. Scheduled through ``prefect.yaml``
(the ``watch-regions`` deployment, on an interval), every poll starts where the last one ended:
the state folder remembers each region's cursor.
"""

from __future__ import annotations

import logging
from typing import Any

from prefect import flow

from flows.request import RunRequest
from flows.watch.poll import poll

__all__ = ["watch_regions"]

log = logging.getLogger(__name__)


def _monitor(request: RunRequest) -> dict[str, Any]:
    from flows.monitor import monitor_region

    return monitor_region(request)


@flow(name="watch-regions")
def watch_regions(
    regions: str,
    state: str,
    out_root: str,
    grace_hours: float = 24.0,
    settings: str | None = None,
) -> dict[str, Any]:
    """Poll every region of ``regions`` once; run ``monitor_region`` for each new acquisition.

    Args:
        regions: The regions TOML file (``[[region]]`` tables: name, catalog, collection,
            aoi, before; see :mod:`flows.watch.regions`).
        state: The state folder (one JSON file per region, written atomically).
        out_root: Runs write to ``{out_root}/{region}/{acquisition}/``; the inventory of all
            of them is ``{out_root}/inventory``.
        grace_hours: How long an acquisition that covers only part of an AOI waits for the
            rest before it runs with what covers (a region's own ``grace_hours`` wins).
        settings: Settings TOML file for the searches and the runs.

    Returns:
        The poll report (:func:`flows.watch.poll.poll`).
    """
    report = poll(
        regions,
        state=state,
        out_root=out_root,
        run=_monitor,
        grace_hours=grace_hours,
        settings=settings,
    )
    for region in report["regions"]:
        if region["status"] == "catalog-error":
            log.warning("%s skipped this poll: %s", region["region"], region["error"])
        for failed in region.get("failed", []):
            log.warning("%s: run of %s failed: %s", region["region"], failed["id"], failed["error"])
    _publish(report)
    return report


def _publish(report: dict[str, Any]) -> None:
    """The poll as a table artifact on this flow run (a view: failures cost a warning)."""
    from prefect.artifacts import create_table_artifact

    rows = [
        {
            "region": r["region"],
            "status": r["status"],
            "found": ", ".join(a["id"] for a in r.get("found", [])) or "-",
            "ran": ", ".join(a["run_id"] for a in r["ran"]) or "-",
            "waiting": ", ".join(a["id"] for a in r.get("waiting", [])) or "-",
            "error": r.get("error") or "; ".join(f["error"] for f in r.get("failed", [])) or "-",
            "cursor": r.get("cursor") or "-",
        }
        for r in report["regions"]
    ]
    try:
        create_table_artifact(
            table=rows, key="changevg-watch", description=f"poll at {report['polled_at']}"
        )
    except Exception as exc:  # noqa: BLE001 - the runs are done; the artifact is a view
        log.warning("could not attach the poll's Prefect artifact: %s", exc)
