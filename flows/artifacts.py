"""Prefect artifacts of a monitoring run: its summary table and a link to its report.

They appear on the flow run's *Artifacts* tab in the Prefect UI, and under *Artifacts* grouped by
key — one key per region (``changevg-summary-{region}``, ``changevg-report-{region}``), so the
latest run of a region is one click away and earlier runs are its key's history.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path

__all__ = ["artifact_key", "publish_run_artifacts", "report_link", "summary_rows"]

log = logging.getLogger(__name__)

# (label, summary key) of the table's rows, in order
_ROWS = (
    ("run id", "run_id"),
    ("region", "region"),
    ("run date", "run_date"),
    ("before window", "before_window"),
    ("after window", "after_window"),
    ("tiles", "tiles"),
    ("tiles screened", "tiles_screened"),
    ("tiles sent to the VLM", "tiles_sent_to_vlm"),
    ("tiles reused from an earlier start", "tiles_reused"),
    ("tiles mostly nodata (skipped)", "tiles_mostly_nodata"),
    ("changed tiles", "changed_tiles"),
    ("new buildings (VLM counts)", "new_buildings"),
    ("new roads (VLM counts)", "new_roads"),
    ("buildings (once across tile edges)", "building_features"),
    ("roads (once across tile edges)", "road_features"),
    ("model", "model_id"),
    ("report", "report"),
    ("inventory", "inventory"),
    ("tile store", "tiles_store"),
)


def artifact_key(kind: str, region: str) -> str:
    """A Prefect artifact key (lowercase letters, digits, dashes) for ``kind`` of ``region``."""
    slug = re.sub(r"[^a-z0-9]+", "-", region.lower()).strip("-") or "region"
    return f"changevg-{kind}-{slug}"


def summary_rows(summary: Mapping[str, object]) -> list[dict[str, str]]:
    """The run summary as ``{"what", "value"}`` rows (the table artifact), timings last."""
    rows = [{"what": label, "value": str(summary[key])} for label, key in _ROWS if key in summary]
    timings = summary.get("timings_s")
    if isinstance(timings, Mapping):
        for stage, seconds in timings.items():
            rows.append({"what": f"time: {stage} (s)", "value": str(seconds)})
    return rows


def report_link(report: str) -> str:
    """A URL for the report: ``file://`` for a local path, the fsspec URL otherwise."""
    if "://" in report:
        return report
    return Path(report).resolve().as_uri()


def publish_run_artifacts(summary: Mapping[str, object]) -> None:
    """Attach the summary table and the report link to the current Prefect flow run.

    Call it inside a flow run. An API that refuses the artifacts costs a warning, never the run
    (its outputs are written already).
    """
    from prefect.artifacts import create_link_artifact, create_table_artifact

    region = str(summary.get("region", ""))
    run = f"run {summary.get('run_id')} of {region} ({summary.get('run_date')})"
    try:
        create_table_artifact(
            table=summary_rows(summary),
            key=artifact_key("summary", region),
            description=f"ChangeVG monitoring: summary of {run}",
        )
        report = summary.get("report")
        if report:
            create_link_artifact(
                link=report_link(str(report)),
                link_text=f"report of {run}",
                key=artifact_key("report", region),
                description=f"ChangeVG monitoring: the self-contained HTML report of {run}",
            )
    except Exception as exc:  # noqa: BLE001 - artifacts are a view; the run is done
        log.warning("could not attach the Prefect artifacts of %s: %s", run, exc)
