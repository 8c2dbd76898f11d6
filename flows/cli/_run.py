"""``changevg run`` and ``changevg demo``: the monitoring flow from the terminal."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["add_run_commands"]


def _print_summary(summary: dict[str, Any]) -> None:
    t = summary.get("timings_s", {})
    print(
        f"run {summary['run_id']} ({summary['region']}, {summary['run_date']}): "
        f"{summary['tiles']} tiles, {summary['changed_tiles']} changed, "
        f"{summary['new_buildings']} new buildings, {summary['new_roads']} new roads "
        f"({summary['objects']} change objects per tile; "
        f"{summary['building_features']} buildings and {summary['road_features']} roads "
        "counting once those cut by tile edges)"
    )
    print(
        f"screened {summary['tiles_screened']} tiles, {summary['tiles_sent_to_vlm']} sent to the "
        f"VLM, {summary['tiles_reused']} reused from an earlier start, "
        f"{summary['tiles_mostly_nodata']} skipped as mostly nodata"
        + (f": {', '.join(summary['skipped_tiles'][:10])}" if summary["skipped_tiles"] else "")
    )
    if summary.get("skipped_items"):
        print(f"items refused by the catalog search: {len(summary['skipped_items'])}")
    print("time per stage: " + ", ".join(f"{k} {v:.1f} s" for k, v in t.items()))
    print(f"tile store: {summary['tiles_store']}")
    print(f"inventory:  {summary['inventory']}")
    print(f"report:     {summary['report']}")


def cmd_run(args: argparse.Namespace) -> int:
    from flows.monitor import MonitorSpec

    params = {
        "aoi": args.aoi,
        "catalog": args.catalog,
        "collection": args.collection,
        "before": args.before,
        "after": args.after,
        "region": args.region,
        "out": str(args.out),
        "model": args.model,
        "inventory": args.inventory,
        "run_id": args.run_id,
        "threshold": args.threshold,
        "all_tiles": args.all_tiles,
        "dask_address": args.dask_address,
        "workers": args.workers,
        "overwrite": args.overwrite,
        "settings": args.config,
    }
    MonitorSpec.create(**params)  # bad input fails here, before Prefect starts
    from flows.monitor import monitor_region

    _print_summary(monitor_region(**params))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from flows.synthetic.demo import run_demo

    result = run_demo(
        args.out, size_km=args.size_km, seed=args.seed, settings=args.config, workers=args.workers
    )
    print(f"synthetic region: {result.region.root} (truth: {result.region.truth_path})")
    _print_summary(result.summary)
    print(f"against the synthetic truth: {result.agreement()}")
    print(f"run summary: {Path(result.summary['out']) / 'run.json'}")
    print(f"try: changevg summary {result.summary['inventory']}")
    return 0


def _add_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--catalog", required=True, help="STAC API URL")
    p.add_argument("--collection", required=True, help="collection id to search")
    p.add_argument("--aoi", required=True, help="minx,miny,maxx,maxy in lon/lat, or GeoJSON file")
    p.add_argument(
        "--before",
        required=True,
        help="before window START/END: ISO dates, or relative to today (-2y/-1y)",
    )
    p.add_argument("--after", required=True, help="after window (-1y/today, 2024-01-01/…)")
    p.add_argument("--region", required=True, help="region name (inventory partition)")
    p.add_argument("--out", required=True, type=Path, help="output folder of this run")
    p.add_argument("--model", help="ChangeVG model folder (default: the shipped model)")
    p.add_argument("--inventory", help="inventory root (default: OUT/inventory)")
    p.add_argument("--run-id", help="run id (default: a hash of the request, so reruns resume)")
    p.add_argument(
        "--threshold", type=float, help="VGM score that sends a tile to the VLM (default 0.5)"
    )
    p.add_argument(
        "--all-tiles", action="store_true", default=None, help="ask the VLM about every tile"
    )
    p.add_argument("--dask-address", help="existing Dask scheduler, e.g. tcp://10.0.0.5:8786")
    p.add_argument("--workers", type=int, help="local Dask worker processes (default: in-process)")
    p.add_argument("--overwrite", action="store_true", help="replace results of another model")


def add_run_commands(sub) -> None:
    p = sub.add_parser("run", help="monitor a region: search, tile, predict, inventory, report")
    _add_run_args(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("demo", help="the whole pipeline on a synthetic region, offline")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--size-km", type=float, default=2.0, help="region edge in km")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, help="local Dask worker processes (default: in-process)")
    p.set_defaults(func=cmd_demo)
