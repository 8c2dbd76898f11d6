"""``monitor_region``: the Prefect flow a user runs — search, tile, predict, vectorise, write.

Stages (each a thin Prefect task over one library function)::

    search    catalogs.search_pairs      STAC API → ScenePair             (retried)
    tile      tiling.build_tiles         ScenePair → {out}/tiles.zarr     (retried, resumable)
    predict   flows.predict.predict_tiles  VGM screen, VLM on flagged tiles → {out}/results/
    vectorise flows.inventory.rows_from_results  masks → georeferenced polygons
    inventory flows.inventory.write_inventory    → {inventory}/ GeoParquet  (retried)
    report    flows.report.write_report  → {out}/report.html

Tile and predict work runs on Dask: an in-process ``distributed.LocalCluster`` on 127.0.0.1 by
default (``workers=N`` for N worker processes), or an existing cluster (``dask_address``).
Every tile's result is stored under a deterministic key, so running the same run id again
after a crash or kill redoes only what is missing; the inventory write replaces the run's rows
atomically, never duplicating them.  :func:`run_direct` runs the same stages without Prefect
(the benchmark's baseline).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import fsspec
from prefect import flow

from flows.request import IngestRequest, RunRequest
from flows.spec import MonitorSpec

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")  # busy CPUs

log = logging.getLogger(__name__)

__all__ = [
    "IngestRequest",
    "MonitorSpec",
    "RunRequest",
    "ingest_region",
    "monitor_region",
    "run_direct",
]

STAGES = ("search", "tile", "predict", "vectorise", "inventory", "report")


# --- Dask ------------------------------------------------------------------------------------


@contextlib.contextmanager
def dask_client(address: str | None = None, *, workers: int | None = None) -> Iterator[Any]:
    """A ``distributed.Client``: to ``address``, or to a new LocalCluster on 127.0.0.1.

    Without ``workers`` the local cluster runs in this process (one worker: no start-up cost,
    the model is loaded once); with ``workers=N`` it starts N worker processes.  The dashboard
    listens on loopback only.  A cluster started here is closed on exit.
    """
    from distributed import Client, LocalCluster

    if address:
        with Client(address, set_as_default=True) as client:
            yield client
        return
    processes = workers is not None
    if not processes:  # in-process addresses name this host; don't let dask look it up
        from distributed.comm.inproc import global_manager

        global_manager._ip = global_manager._ip or "127.0.0.1"  # (it would probe 8.8.8.8)
    network = {"host": "127.0.0.1"} if processes else {}  # in-process: inproc://, no sockets
    cluster = LocalCluster(
        n_workers=workers or 1,
        threads_per_worker=1,
        processes=processes,
        dashboard_address="127.0.0.1:0",
        silence_logs=logging.WARNING,
        **network,
    )
    try:
        with Client(cluster, set_as_default=True) as client:
            yield client
    finally:
        cluster.close()


# --- the stages (plain functions; the flow wraps each in a task) -------------------------------


def search(spec: MonitorSpec):
    """STAC search and pairing; raises NoCoverageError when a window has nothing usable."""
    from catalogs.pairing import search_pairs
    from changevg.domain import off_domain_warning

    pair = search_pairs(
        spec.catalog,
        collection=spec.collection,
        aoi=spec.aoi,
        before=spec.before,
        after=spec.after,
        max_area_km2=spec.settings.max_aoi_km2,
        options=spec.settings.search,
    )
    items = (*pair.before.items, *pair.after.items)
    warning = off_domain_warning(spec.model, [i.properties.get("platform") for i in items])
    if warning:
        log.warning(warning)
    return pair


def tile(spec: MonitorSpec, pair):
    """Both dates onto one grid, into ``{out}/tiles.zarr`` (resumes a partial store)."""
    from tiling import build_tiles

    return build_tiles(
        pair,
        spec.path("tiles.zarr"),
        options=spec.settings.tiles,
        name=spec.region,
        overwrite=spec.overwrite,
    )


def predict(spec: MonitorSpec, client: Any = None):
    """ChangeVG over every tile (VGM screen, VLM on flagged tiles), resumable per tile."""
    from flows.predict import predict_tiles

    return predict_tiles(
        spec.path("tiles.zarr"),
        model=spec.model,
        results=spec.path(f"results/{spec.run_id}"),
        options=spec.predict,
        client=client,
        overwrite=spec.overwrite,
    )


def vectorise(spec: MonitorSpec, predicted):
    """Tile rows and georeferenced object polygons from the per-tile results."""
    from flows.inventory import rows_from_results
    from tiling import open_tiles

    ds = open_tiles(spec.path("tiles.zarr"))
    return rows_from_results(
        ds,
        predicted.results.items(),
        run_id=spec.run_id,
        region=spec.region,
        model_id=predicted.model_id,
    )


def inventory(spec: MonitorSpec, rows, predicted):
    """This run's rows in the GeoParquet inventory (replacing an earlier write of the run)."""
    from flows.inventory import write_inventory
    from tiling import open_tiles

    tiles, objects = rows
    return write_inventory(
        spec.inventory,
        tiles=tiles,
        objects=objects,
        region=spec.region,
        run_date=spec.run_date,
        run_id=spec.run_id,
        crs=open_tiles(spec.path("tiles.zarr")).tiles.crs,
        model_id=predicted.model_id,
        overwrite=spec.overwrite,
    )


def report(spec: MonitorSpec, rows, meta: dict[str, Any]) -> str:
    """The self-contained ``{out}/report.html``."""
    import pandas as pd

    from flows.report import write_report

    tiles, objects = rows
    path = spec.path("report.html")
    remote = "://" in path
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "report.html" if remote else Path(path)
        write_report(
            local,
            store=spec.path("tiles.zarr"),
            tiles=pd.DataFrame([asdict(r) for r in tiles]),
            objects=pd.DataFrame([asdict(r) for r in objects]),
            meta=meta,
        )
        if remote:  # object storage: upload the finished file (a single PUT, so atomic)
            fs, target = fsspec.core.url_to_fs(path)
            fs.put_file(str(local), target)
    return path


# --- sequencing ------------------------------------------------------------------------------


def _metadata(spec: MonitorSpec, pair, tiles, predicted, seconds: dict[str, float]) -> dict:
    def side(s) -> dict:
        return {"items": s.ids, "datetime": s.datetime.isoformat(), "coverage": s.coverage}

    return {
        "run_id": spec.run_id,
        "region": spec.region,
        "run_date": spec.run_date,
        "catalog": spec.catalog,
        "collection": spec.collection,
        "aoi": spec.aoi,
        "before_window": spec.before,
        "after_window": spec.after,
        "before": side(pair.before),
        "after": side(pair.after),
        "crs": str(pair.crs),
        "model": spec.model or "shipped default",
        "model_id": predicted.model_id,
        "threshold": None if spec.predict.all_tiles else spec.predict.threshold,
        "tiles": tiles.n_tiles,
        "tiles_mostly_nodata": len(predicted.skipped_nodata),
        "skipped_tiles": predicted.skipped_nodata,
        "tiles_screened": predicted.n_screened,
        "tiles_sent_to_vlm": predicted.n_analysed,
        "tiles_reused": predicted.n_reused,
        "skipped_items": [dict(s) for s in pair.skipped],
        "timings_s": {k: round(v, 2) for k, v in seconds.items()},
    }


def _run(spec: MonitorSpec, call: Callable[..., Any], say: Callable[[str], None]) -> dict:
    """Run every stage through ``call(stage_name, fn, *args)``; return the run summary."""
    seconds: dict[str, float] = {}

    def stage(name: str, fn: Callable[..., Any], *args: Any) -> Any:
        say(f"[{STAGES.index(name) + 1}/{len(STAGES)}] {name} …")
        started = time.perf_counter()
        result = call(name, fn, *args)
        seconds[name] = time.perf_counter() - started
        say(f"[{STAGES.index(name) + 1}/{len(STAGES)}] {name} done in {seconds[name]:.1f} s")
        return result

    _write_json(
        spec.path("run.json"),
        {"run_id": spec.run_id, "run_date": spec.run_date, "status": "running"},
    )
    pair = stage("search", search, spec)
    with dask_client(spec.dask_address, workers=spec.workers) as client:
        say(f"dask: {client.dashboard_link or spec.dask_address}")
        tiles = stage("tile", tile, spec, pair)
        predicted = stage("predict", predict, spec, client)
    rows = stage("vectorise", vectorise, spec, predicted)
    written = stage("inventory", inventory, spec, rows, predicted)
    meta = _metadata(spec, pair, tiles, predicted, seconds)
    stage("report", report, spec, rows, meta)
    meta["timings_s"] = {k: round(v, 2) for k, v in seconds.items()}
    summary = {
        **meta,
        "status": "completed",
        "out": spec.out,
        "tiles_store": spec.path("tiles.zarr"),
        "inventory": spec.inventory,
        "inventory_files": [written.tiles, written.objects],
        "report": spec.path("report.html"),
        "changed_tiles": sum(1 for r in predicted.results.values() if r.changed),
        "objects": written.n_objects,
        "new_buildings": sum(1 for o in rows[1] if o.cls == "building"),
        "new_roads": sum(1 for o in rows[1] if o.cls == "road"),
        # the same, counting once a feature cut by tile edges (flows.inventory.features)
        "building_features": len({o.feature_id for o in rows[1] if o.cls == "building"}),
        "road_features": len({o.feature_id for o in rows[1] if o.cls == "road"}),
    }
    _write_json(spec.path("run.json"), summary)
    return summary


def _write_json(path: str, doc: dict) -> None:
    with fsspec.open(path, "w") as f:
        json.dump(doc, f, indent=2, default=str)


def run_direct(spec: MonitorSpec, *, say: Callable[[str], None] = log.info) -> dict:
    """Every stage in this process, without Prefect (same functions, same outputs)."""
    return _run(spec, lambda name, fn, *args: fn(*args), say)


# --- Prefect -----------------------------------------------------------------------------------


def _tasks() -> dict[str, Any]:
    from prefect import task
    from prefect.cache_policies import NO_CACHE
    from prefect.tasks import exponential_backoff

    io = {"retries": 3, "retry_delay_seconds": exponential_backoff(backoff_factor=2)}
    retried = {"search", "tile", "inventory"}
    return {
        name: task(fn, name=name, cache_policy=NO_CACHE, **(io if name in retried else {}))
        for name, fn in (
            ("search", search),
            ("tile", tile),
            ("predict", predict),
            ("vectorise", vectorise),
            ("inventory", inventory),
            ("report", report),
        )
    }


def _prefect_say(message: str) -> None:
    from prefect import get_run_logger

    get_run_logger().info(message)


@flow(name="monitor-region")
def monitor_region(request: RunRequest) -> dict:
    """Monitor one region between two date windows (see the module docstring).

    Args:
        request: What to monitor and where to write it (:class:`~flows.request.RunRequest`):
            windows are ``YYYY-MM-DD/YYYY-MM-DD`` or relative to the run date (``-2y/-1y``,
            ``-30d/today``); ``out`` and ``inventory`` may use ``{region}``, ``{run_date}``,
            ``{run_id}``.

    Returns:
        The run summary, also written to ``{out}/run.json``.
    """
    from flows.artifacts import publish_run_artifacts

    spec = MonitorSpec.create(request)  # every parameter, validated
    tasks = _tasks()
    summary = _run(spec, lambda name, fn, *args: tasks[name](*args), _prefect_say)
    publish_run_artifacts(summary)  # the summary table and the report link in the Prefect UI
    return summary


@flow(name="ingest-region")
def ingest_region(request: IngestRequest) -> dict:
    """STAC-driven ingestion: search and tile only (``{out}/tiles.zarr``), no model.

    Args:
        request: The search-and-tile part of a run request (a full
            :class:`~flows.request.RunRequest` works too; its model fields are not used).
    """
    spec = MonitorSpec.create(request)
    tasks = _tasks()
    pair = tasks["search"](spec)
    summary = tasks["tile"](spec, pair)
    return {
        "run_id": spec.run_id,
        "region": spec.region,
        "tiles_store": summary.path,
        "tiles": summary.n_tiles,
        "written": summary.n_written,
        "mostly_nodata": summary.mostly_nodata,
    }
