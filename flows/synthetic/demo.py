"""The demo: a synthetic region served by the embedded STAC API and monitored end to end.

Runs with no network and no data of your own: generates a region (≈ 2 km × 2 km), serves it on
127.0.0.1, runs :func:`flows.monitor.monitor_region` with the shipped model on CPU and leaves
``tiles.zarr``, ``inventory/`` and ``report.html`` in the output folder.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from catalogs.server import StacServer
from catalogs.synth import SynthRegion, synthesize_region
from flows.request import RunRequest
from flows.settings import Settings
from flows.synthetic.agreement import TruthAgreement, truth_agreement

log = logging.getLogger(__name__)

BEFORE_WINDOW = "2022-01-01/2022-12-31"
AFTER_WINDOW = "2024-01-01/2024-12-31"


@dataclass(frozen=True)
class DemoResult:
    """The synthetic region and the run summary (``run.json``)."""

    region: SynthRegion
    summary: dict[str, Any]

    def agreement(self) -> TruthAgreement:
        """How far the run's inventory agrees with the region's exact truth."""
        import geopandas as gpd

        from catalogs.synth import load_truth

        out = Path(self.summary["out"])
        files = self.summary["inventory_files"]
        return truth_agreement(
            out / "tiles.zarr",
            load_truth(self.region.root),
            gpd.read_parquet(files[0]),
            gpd.read_parquet(files[1]),
        )


def run_demo(
    out: str | Path,
    *,
    size_km: float = 2.0,
    seed: int = 0,
    settings: str | Settings | None = None,
    model: str | Path | None = None,
    workers: int | None = None,
    prefect: bool = True,
) -> DemoResult:
    """Generate ``out/region``, serve it, and monitor it into ``out`` (see the module docstring).

    Args:
        out: Output folder.
        size_km: Region edge.
        seed: Region seed (the same seed gives the same region).
        settings: Settings object or TOML path.
        model: Model folder (default: the shipped model).
        workers: Local Dask worker processes (default: an in-process cluster).
        prefect: Run as a Prefect flow (``False``: the same stages without Prefect).
    """
    from flows.monitor import MonitorSpec, monitor_region, run_direct

    if prefect and isinstance(settings, Settings):
        raise TypeError("the Prefect flow takes a settings file path, not a Settings object")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    log.info("generating a %.1f km synthetic region (seed %d)", size_km, seed)
    region = synthesize_region(out / "region", size_km=size_km, seed=seed)
    with StacServer([region.root]) as server:
        log.info("serving it as a STAC API at %s", server.url)
        request = RunRequest(
            aoi=",".join(f"{v:.6f}" for v in region.bbox_lonlat),
            catalog=server.url,
            collection=json.loads(region.collection_path.read_text())["id"],
            before=BEFORE_WINDOW,
            after=AFTER_WINDOW,
            region=f"demo-{seed}",
            out=str(out),
            model=str(model) if model else None,
            workers=workers,
            settings=None if isinstance(settings, Settings) else settings,
        )
        if prefect:
            summary = monitor_region(request)
        else:
            given = settings if isinstance(settings, Settings) else None
            summary = run_direct(MonitorSpec.create(request, settings=given))
    return DemoResult(region=region, summary=summary)
