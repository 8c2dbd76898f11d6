"""End-to-end pipeline: km²/hour of the demo, time per stage, Prefect overhead, VGM screening.

One synthetic region (``catalogs.synth``, the demo's: ``--size-km 2``, seed 0) is generated once
and served once by the embedded STAC API (``catalogs.server.StacServer``); then, in this one
process, each case monitors it into a fresh output folder (no tile or result is reused):

- ``prefect``: ``flows.monitor.monitor_region`` — the Prefect flow a user runs, ephemeral API;
- ``direct``: ``flows.monitor.run_direct`` — the same library functions, no Prefect (baseline);
- ``no screening``: ``run_direct`` with ``all_tiles=True`` — the VLM asked about every tile (run
  once: it gives the change F1 without screening, and what screening saves).

``prefect`` and ``direct`` alternate (``prefect`` first in even repeats, ``direct`` first in odd
ones); the median over ``--repeat`` counts.  Before the clock starts the modules are imported,
the model is loaded and run once on one pair (``model_load_s``, ``model_warmup_s``: both paths
pay them alike), and a no-op Prefect flow runs twice: the first call in a process starts
Prefect's temporary API server (on a fresh ``PREFECT_HOME``, as a user's first
``changevg demo``), the second is the per-flow cost, so ``prefect_cold_start_s`` = first -
second.  The ``prefect (cold)`` row is the warm median plus that cold start: what a first
``changevg demo`` pays.  The same two calls in a fresh process on that Prefect home, whose
database exists by then, give ``prefect_cold_start_old_db_s`` and the row
``prefect (cold, old db)``: what a later ``changevg demo`` pays.  The Prefect overhead is
``prefect total / direct total``, warm and cold (target ≤ 1.25x).

Quality: every run's inventory is scored against the region's exact truth
(``flows.agreement.truth_agreement``): tile-level change F1 and the changed-building count error.
Screening must cost at most 0.01 F1 (``f1 no screening - f1 direct ≤ 0.01``).  The VLM share is
``tiles_sent_to_vlm / tiles_screened``.  km²/hour uses the AOI (the region's bounding box, in
its projected CRS).  Peak RSS is this process's, reset before each case (``/proc/self/clear_refs``;
with ``--workers N`` the Dask worker processes are not counted); the Prefect server's is listed
apart.

    .venv/bin/python -m bench.pipeline [--size-km 2] [--repeat 1] [--workers N] [--out DIR]
    .venv/bin/python -m bench.pipeline --size-km 0.5        # smoke run (a few minutes)

Results: ``bench/results/pipeline-<timestamp>.json`` (or ``--json PATH``) and a printed table.
"""

from __future__ import annotations

import argparse
import atexit
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (  # noqa: E402
    cpu_seconds,
    emit,
    fmt,
    format_table,
    machine_info,
    median,
    peak_rss_mb,
    run_case,
    write_json,
)

HERE = Path(__file__).resolve().parent
SCRATCH = HERE / ".cache" / "pipeline"
STAGES = ("search", "tile", "predict", "vectorise", "inventory", "report")
PREFECT, DIRECT, ALL_TILES = "prefect", "direct", "no screening"
COLD, COLD_OLD_DB = "prefect (cold)", "prefect (cold, old db)"  # new / existing PREFECT_HOME
MAX_OVERHEAD = 1.25
MAX_F1_COST = 0.01


# --- set-up (not timed) ----------------------------------------------------------------------


def ensure_region(root: Path, size_km: float, seed: int) -> tuple[SimpleNamespace, float | None]:
    """The synthetic region in ``root`` (generated once; a marker says it is complete).

    Returns the region and the seconds spent generating it (``None`` when it was cached).
    """
    from catalogs.synth import synthesize_region

    marker = root / "bench-ok.json"
    want = {"size_km": size_km, "seed": seed}
    seconds = None
    if not (marker.exists() and json.loads(marker.read_text()) == want):
        print(f"generating a {size_km:g} km region into {root} ...", file=sys.stderr, flush=True)
        if root.exists():
            shutil.rmtree(root)
        started = time.perf_counter()
        synthesize_region(root, size_km=size_km, seed=seed)
        seconds = time.perf_counter() - started
        marker.write_text(json.dumps(want))
    return _region(root), seconds


def _region(root: Path) -> SimpleNamespace:
    """What the benchmark needs of a :class:`catalogs.synth.SynthRegion`, read from its files.

    ``bbox_lonlat`` is computed as ``synthesize_region`` does: the before items' bounding box.
    """
    items = [json.loads(ln) for ln in (root / "items.ndjson").read_text().splitlines() if ln]
    boxes = [it["bbox"] for it in items if it["properties"]["changevg:role"] == "before"]
    bbox = (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )
    return SimpleNamespace(
        root=root,
        collection_path=root / "collection.json",
        bbox_lonlat=tuple(float(v) for v in bbox),
        crs=items[0]["properties"]["proj:code"],
    )


def aoi_km2(bbox_lonlat: tuple[float, ...], crs: str) -> float:
    """Area of a lon/lat bounding box in ``crs`` (projected, metres), in km²."""
    from odc.geo.geom import Geometry
    from shapely.geometry import box

    return Geometry(box(*bbox_lonlat), "EPSG:4326").to_crs(crs).area / 1e6


def reset_peak_rss() -> bool:
    """Reset this process's peak RSS (VmHWM) to its current RSS; False where not supported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def process_peak_rss_mb(pid: int) -> float | None:
    """Peak RSS of another process (VmHWM), in MB; ``None`` if it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def load_model(model: str | None, workers: int | None) -> dict[str, float | None]:
    """Load the model into this process's cache and run it once on one pair (warm-up).

    Only for the in-process Dask worker: with ``--workers N`` the worker processes load their
    own copy in every run, both paths alike.  Returns the seconds each step took.
    """
    if workers is not None:
        return {"model_load_s": None, "model_warmup_s": None}
    from bench.model import synthetic_pairs
    from changevg.cache import cached_model
    from changevg.model import DEFAULT_MODEL
    from flows.predict import PredictOptions

    started = time.perf_counter()
    cvg = cached_model(str(Path(model) if model else DEFAULT_MODEL), PredictOptions().device)
    loaded = time.perf_counter()
    pairs = synthetic_pairs(1)
    cvg.predict_batch(pairs, descriptions=cvg.screen(pairs), batch_size=1)
    warm = time.perf_counter()
    return {"model_load_s": round(loaded - started, 2), "model_warmup_s": round(warm - loaded, 2)}


def prefect_startup() -> dict[str, Any]:
    """Time a no-op flow twice: the first call starts the temporary API server."""
    from prefect import flow

    @flow(name="bench-noop", log_prints=False)
    def noop() -> None:
        return None

    first = _timed(noop)
    second = _timed(noop)
    pid = None
    try:
        from prefect.server.api.server import SubprocessASGIServer

        servers = [s for s in SubprocessASGIServer._instances.values() if s.server_process]
        pid = servers[0].server_process.pid if servers else None
    except Exception:  # noqa: BLE001 - private API: the pid is a nicety
        pass
    return {
        "prefect_first_flow_s": round(first, 3),
        "prefect_noop_flow_s": round(second, 3),
        "prefect_cold_start_s": round(max(first - second, 0.0), 3),
        "prefect_server_pid": pid,
    }


def startup_probe(scratch: Path, prefect_home: str) -> dict[str, Any]:
    """:func:`prefect_startup` in a fresh process on ``prefect_home``, whose database exists
    by now: the cold start of a later ``changevg demo`` (no database to create)."""
    argv = [str(Path(__file__).resolve()), "--startup-probe", "--out", str(scratch)]
    result = run_case([*argv, "--prefect-home", prefect_home], timeout=600)
    return {
        "prefect_cold_start_old_db_s": result["prefect_cold_start_s"],
        "prefect_noop_flow_old_db_s": result["prefect_noop_flow_s"],
    }


def _timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


# --- the cases -------------------------------------------------------------------------------


def run_one(case: str, params: dict[str, Any], out: Path) -> tuple[dict[str, Any], dict]:
    """Monitor the region into a fresh ``out`` as ``case``; timings and the run summary."""
    from flows.monitor import MonitorSpec, monitor_region, run_direct
    from flows.request import RunRequest

    if out.exists():
        shutil.rmtree(out)
    params = {**params, "out": str(out)}
    rss_reset = reset_peak_rss()
    cpu = cpu_seconds()
    started = time.perf_counter()
    if case == PREFECT:
        summary = monitor_region(RunRequest(**params))
    else:
        if case == ALL_TILES:
            params = {**params, "threshold": None, "all_tiles": True}
        spec = MonitorSpec.create(RunRequest(**params))
        summary = run_direct(spec)
    seconds = time.perf_counter() - started
    stages = {k: float(summary["timings_s"].get(k, 0.0)) for k in STAGES}
    timing = {
        "total_s": round(seconds, 3),
        "cpu_s": round(cpu_seconds() - cpu, 2),
        **{f"{k}_s": v for k, v in stages.items()},
        "other_s": round(seconds - sum(stages.values()), 3),  # spec, Dask cluster, run.json, flow
        "peak_rss_mb": round(peak_rss_mb(), 1) if rss_reset else None,
    }
    return timing, summary


def score(out: Path, summary: dict[str, Any], truth: Any) -> dict[str, Any]:
    """The run's inventory against the region's truth, and the run's counts."""
    import geopandas as gpd

    from flows.synthetic.agreement import truth_agreement

    tiles = gpd.read_parquet(out / "inventory" / "tiles")
    objects = gpd.read_parquet(out / "inventory" / "objects")
    agree = truth_agreement(out / "tiles.zarr", truth, tiles, objects)
    screened = int(summary["tiles_screened"])
    return {
        "tiles": int(summary["tiles"]),
        "tiles_mostly_nodata": int(summary["tiles_mostly_nodata"]),
        "tiles_screened": screened,
        "tiles_sent_to_vlm": int(summary["tiles_sent_to_vlm"]),
        "vlm_share": summary["tiles_sent_to_vlm"] / screened if screened else None,
        "changed_tiles": int(summary["changed_tiles"]),
        "objects": int(summary["objects"]),
        "changed_tile_ids": sorted(tiles.loc[tiles["changed"].astype(bool), "tile_id"]),
        "f1": round(agree.tile_f1, 4),
        "true_positive": agree.true_positive,
        "false_positive": agree.false_positive,
        "false_negative": agree.false_negative,
        "buildings_true": agree.buildings_true,
        "buildings_found": agree.buildings_found,
        "building_error": round(agree.building_error, 4),
    }


# --- summary -----------------------------------------------------------------------------------


def summarise(runs: list[dict], setup: dict[str, Any], area_km2: float) -> list[dict]:
    """One row per case: medians over the repeats, ratios against ``direct``."""
    rows: dict[str, dict] = {}
    for case in (DIRECT, PREFECT, ALL_TILES):
        mine = [r for r in runs if r["case"] == case]
        if not mine:
            continue
        row: dict[str, Any] = {"case": case, "n": len(mine)}
        for key in ("total_s", "cpu_s", *(f"{s}_s" for s in STAGES), "other_s"):
            row[key] = round(median([r[key] for r in mine]), 3)
        row["total_all_s"] = [r["total_s"] for r in mine]
        peaks = [r["peak_rss_mb"] for r in mine if r["peak_rss_mb"] is not None]
        row["peak_rss_mb"] = max(peaks) if peaks else None
        for key in ("vlm_share", "f1", "building_error", "tiles", "tiles_sent_to_vlm"):
            row[key] = mine[0][key]
        row["same_result_every_repeat"] = all(
            r["changed_tile_ids"] == mine[0]["changed_tile_ids"] for r in mine
        )
        rows[case] = row
    for case, key in ((COLD, "prefect_cold_start_s"), (COLD_OLD_DB, "prefect_cold_start_old_db_s")):
        if PREFECT in rows and setup.get(key) is not None:
            cold = dict(rows[PREFECT], case=case, total_all_s=None)
            cold["other_s"] = round(cold["other_s"] + setup[key], 3)
            cold["total_s"] = round(cold["total_s"] + setup[key], 3)
            rows[case] = cold
    base = rows[DIRECT]["total_s"]
    for row in rows.values():
        row["km2_per_hour"] = round(area_km2 / row["total_s"] * 3600, 2)
        row["vs_direct"] = round(row["total_s"] / base, 3)
    order = (DIRECT, PREFECT, COLD, COLD_OLD_DB, ALL_TILES)
    return [rows[c] for c in order if c in rows]


def targets(rows: list[dict], runs: list[dict]) -> dict[str, Any]:
    by = {r["case"]: r for r in rows}
    out: dict[str, Any] = {}
    if PREFECT in by:
        for name, case in (("warm", PREFECT), ("cold", COLD), ("cold_old_db", COLD_OLD_DB)):
            if case in by:
                out[f"prefect_overhead_{name}"] = by[case]["vs_direct"]
                out[f"prefect_overhead_{name}<={MAX_OVERHEAD}"] = (
                    by[case]["vs_direct"] <= MAX_OVERHEAD
                )
        ids = {r["case"]: r["changed_tile_ids"] for r in runs}
        out["prefect_and_direct_same_changed_tiles"] = ids[PREFECT] == ids[DIRECT]
    out["vlm_share"] = by[DIRECT]["vlm_share"]
    if ALL_TILES in by:
        cost = by[ALL_TILES]["f1"] - by[DIRECT]["f1"]
        out["f1_screened"] = by[DIRECT]["f1"]
        out["f1_no_screening"] = by[ALL_TILES]["f1"]
        out["f1_cost_of_screening"] = round(cost, 4)
        out[f"f1_cost_of_screening<={MAX_F1_COST}"] = cost <= MAX_F1_COST
        out["screening_speedup"] = round(by[ALL_TILES]["total_s"] / by[DIRECT]["total_s"], 3)
    return out


COLUMNS = [
    ("case", "case", fmt("")),
    ("total s", "total_s", fmt(".1f")),
    *((s, f"{s}_s", fmt(".1f")) for s in STAGES),
    ("other", "other_s", fmt(".1f")),
    ("km²/h", "km2_per_hour", fmt(".1f")),
    ("vs direct", "vs_direct", fmt(".3f")),
    ("to VLM", "vlm_share", fmt(".3f")),
    ("F1", "f1", fmt(".3f")),
    ("bldg err", "building_error", fmt(".3f")),
    ("peak RSS MB", "peak_rss_mb", fmt(".0f")),
]


# --- the driver --------------------------------------------------------------------------------


def use_prefect_home(scratch: Path, home: str | None) -> str:
    """Point Prefect at its own home (before Prefect is imported) and its ephemeral API."""
    if "prefect" in sys.modules:
        raise RuntimeError("bench.pipeline must set PREFECT_HOME before Prefect is imported")
    if home is None:
        scratch.mkdir(parents=True, exist_ok=True)
        home = tempfile.mkdtemp(prefix="prefect-home-", dir=scratch)
        # removed at exit, after Prefect's own exit handler (registered later, run earlier)
        # has stopped the temporary server that uses it
        atexit.register(shutil.rmtree, home, ignore_errors=True)
    os.environ["PREFECT_HOME"] = home
    os.environ.pop("PREFECT_API_URL", None)  # the ephemeral API, as a first `changevg demo`
    os.environ.pop("PREFECT_PROFILE", None)
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    return home


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-km", type=float, default=2.0, help="region edge (demo: 2)")
    parser.add_argument("--seed", type=int, default=0, help="region seed (demo: 0)")
    parser.add_argument("--repeat", type=int, default=1, help="prefect/direct pairs (median)")
    parser.add_argument("--workers", type=int, help="local Dask worker processes")
    parser.add_argument("--model", help="ChangeVG model folder (default: the shipped model)")
    parser.add_argument("--threshold", type=float, help="VGM screening threshold (default 0.5)")
    parser.add_argument("--out", type=Path, default=SCRATCH, help="scratch folder")
    parser.add_argument("--json", type=Path, help="results file (default bench/results/…)")
    parser.add_argument(
        "--prefect-home",
        help="PREFECT_HOME to use (default: a fresh one; with an existing database here the "
        "'prefect (cold)' row is not a first start)",
    )
    parser.add_argument(
        "--no-all-tiles", action="store_true", help="skip the no-screening run (no F1 cost)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the runs' output folders")
    parser.add_argument("--startup-probe", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.startup_probe:  # child mode: Prefect's start-up on an existing home
        use_prefect_home(args.out, args.prefect_home)
        import flows.monitor  # noqa: F401 - as in the parent, off the clock

        emit(prefect_startup())
        return 0
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    scratch: Path = args.out.resolve()
    prefect_home = use_prefect_home(scratch, args.prefect_home)  # before any Prefect import

    from catalogs.server import StacServer
    from catalogs.synth import load_truth
    from flows.synthetic.demo import AFTER_WINDOW, BEFORE_WINDOW

    region, synth_s = ensure_region(
        scratch / f"region-{args.size_km:g}km-seed{args.seed}", args.size_km, args.seed
    )
    area = aoi_km2(region.bbox_lonlat, region.crs)
    truth = load_truth(region.root)
    setup: dict[str, Any] = {"synth_s": None if synth_s is None else round(synth_s, 2)}
    started = time.perf_counter()
    import flows.monitor  # noqa: F401 - imports (Prefect, Dask, …) off the clock
    import flows.predict  # noqa: F401

    setup["import_s"] = round(time.perf_counter() - started, 2)
    setup.update(load_model(args.model, args.workers))
    setup.update(prefect_startup())
    setup.update(startup_probe(scratch, prefect_home))
    print(f"set-up: {json.dumps(setup)}", file=sys.stderr, flush=True)

    pair = (PREFECT, DIRECT)  # alternating: prefect first in even repeats, direct in odd ones
    plan = [(r, case) for r in range(args.repeat) for case in (pair if r % 2 == 0 else pair[::-1])]
    if not args.no_all_tiles:
        plan.append((0, ALL_TILES))
    runs: list[dict] = []
    with StacServer([region.root]) as server:
        params = {
            "aoi": ",".join(f"{v:.6f}" for v in region.bbox_lonlat),
            "catalog": server.url,
            "collection": json.loads(region.collection_path.read_text())["id"],
            "before": BEFORE_WINDOW,
            "after": AFTER_WINDOW,
            "region": f"demo-{args.seed}",
            "model": args.model,
            "workers": args.workers,
            "threshold": args.threshold,
        }
        for rep, case in plan:
            out = scratch / "runs" / f"{case.replace(' ', '-')}-r{rep}"
            timing, summary = run_one(case, params, out)
            run = {"case": case, "repeat": rep, **timing, **score(out, summary, truth)}
            runs.append(run)
            if not args.keep:
                shutil.rmtree(out, ignore_errors=True)
            stages = ", ".join(f"{s} {run[s + '_s']:.1f}" for s in STAGES)
            print(
                f"  [{rep + 1}/{args.repeat}] {case:>12}: {run['total_s']:.1f} s ({stages}), "
                f"{run['tiles_sent_to_vlm']}/{run['tiles_screened']} tiles to the VLM, "
                f"F1 {run['f1']:.3f}",
                file=sys.stderr,
                flush=True,
            )
    pid = setup.pop("prefect_server_pid", None)
    server_rss = process_peak_rss_mb(pid) if pid else None
    setup["prefect_server_peak_rss_mb"] = None if server_rss is None else round(server_rss, 1)
    rows = summarise(runs, setup, area)
    checks = targets(rows, runs)
    print(format_table(rows, COLUMNS))
    print(
        f"AOI {area:.3f} km²; Prefect cold start {setup['prefect_cold_start_s']:.1f} s "
        f"(new home; {setup['prefect_cold_start_old_db_s']:.1f} s with its database made), "
        f"per flow {setup['prefect_noop_flow_s']:.2f} s; model load "
        f"{setup['model_load_s'] or 0:.1f} s + first call {setup['model_warmup_s'] or 0:.1f} s"
    )
    print(json.dumps(checks))
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = write_json(
        args.json or HERE / "results" / f"pipeline-{stamp}.json",
        {
            "benchmark": "pipeline",
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "size_km": args.size_km,
            "seed": args.seed,
            "aoi_km2": round(area, 4),
            "prefect_home_new": args.prefect_home is None,
            "setup": setup,
            "machine": machine_info(),
            "rows": rows,
            "targets": checks,
            "runs": runs,
        },
    )
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
