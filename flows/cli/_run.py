"""``changevg run`` and ``changevg demo``: the monitoring flow from the terminal."""

from __future__ import annotations

import argparse
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any, get_args, get_type_hints

from flows.request import RunRequest

__all__ = ["RUN_OPTIONS", "add_run_commands", "run_request"]


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


def run_request(args: argparse.Namespace) -> RunRequest:
    """The :class:`RunRequest` of a parsed ``changevg run`` (its settings file is ``--config``)."""
    values = {f.name: getattr(args, f.name) for f in fields(RunRequest) if f.name in RUN_OPTIONS}
    return RunRequest(**values, settings=args.config)


def cmd_run(args: argparse.Namespace) -> int:
    from flows.spec import MonitorSpec

    request = run_request(args)
    MonitorSpec.create(request)  # bad input fails here, before Prefect starts
    from flows.monitor import monitor_region

    _print_summary(monitor_region(request))
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


RUN_OPTIONS = tuple(f.name for f in fields(RunRequest) if f.name != "settings")
"""The :class:`RunRequest` fields ``changevg run`` has an option for (``settings`` is the global
``--config``)."""


def _add_run_args(p: argparse.ArgumentParser) -> None:
    """One option per :data:`RUN_OPTIONS` field: ``--run-id`` for ``run_id``, its help text from
    the field's metadata, required when the field has no default, a flag for a ``bool``."""
    hints = get_type_hints(RunRequest)
    for f in fields(RunRequest):
        if f.name not in RUN_OPTIONS:
            continue
        flag = "--" + f.name.replace("_", "-")
        kind = {t for t in get_args(hints[f.name]) or (hints[f.name],) if t is not type(None)}
        if kind == {bool}:
            p.add_argument(flag, action="store_true", default=f.default, help=f.metadata["help"])
            continue
        (value_type,) = kind
        required = f.default is MISSING
        p.add_argument(flag, required=required, type=value_type, help=f.metadata["help"])


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
