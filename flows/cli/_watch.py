"""``changevg watch``: poll STAC catalogs and monitor every new acquisition (``watch_regions``)."""

from __future__ import annotations

import argparse
import time
from typing import Any

from catalogs.errors import InputError

__all__ = ["add_watch_commands", "cmd_watch"]


def _print_poll(report: dict[str, Any]) -> None:
    for region in report["regions"]:
        name = region["region"]
        if region["status"] == "catalog-error":
            print(f"{name}: skipped, catalog failed (state unchanged): {region['error']}")
            continue
        found = region.get("found", [])
        for acq in region["ran"]:
            print(
                f"{name}: ran {acq['id']} (coverage {acq['coverage']:.2f}) as {acq['run_id']} "
                f"-> {acq['out']}"
            )
        for acq in region.get("waiting", []):
            print(
                f"{name}: {acq['id']} covers {acq['coverage']:.2f} of the AOI; waiting for the "
                f"rest (seen {acq['since']}, runs after {acq['runs_after']} with what covers)"
            )
        for acq in region.get("failed", []):
            print(f"{name}: run of {acq['id']} failed (retried next poll): {acq['error']}")
        if not found:
            print(f"{name}: no new acquisitions (cursor {region['cursor'] or 'baseline'})")
        elif not (region["ran"] or region.get("waiting") or region.get("failed")):
            print(f"{name}: nothing new to run (cursor {region['cursor']})")
    print(f"poll at {report['polled_at']}: {report['runs']} run(s), {report['failed']} problem(s)")


def cmd_watch(args: argparse.Namespace) -> int:
    """Poll once (``--once``) or every ``--interval`` seconds until interrupted."""
    from flows.watch.regions import load_regions
    from flows.watch.state import StateStore

    load_regions(args.regions)  # bad input fails here, before Prefect starts
    StateStore(args.state)
    if args.grace_hours < 0:
        raise InputError(f"--grace-hours must be >= 0, got {args.grace_hours}")
    if args.interval <= 0:
        raise InputError(f"--interval must be a positive number of seconds, got {args.interval}")
    from flows.watch.flow import watch_regions

    while True:
        report = watch_regions(
            regions=str(args.regions),
            state=str(args.state),
            out_root=str(args.out_root),
            grace_hours=args.grace_hours,
            settings=args.config,
        )
        _print_poll(report)
        if args.once:
            return 1 if report["failed"] else 0
        time.sleep(args.interval)


def add_watch_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``changevg watch`` to the sub-command parser ``sub``."""
    p = sub.add_parser(
        "watch", help="poll STAC catalogs; monitor each new acquisition against its baseline"
    )
    p.add_argument(
        "--regions",
        required=True,
        help="regions TOML: [[region]] tables with name, catalog, collection, aoi, before",
    )
    p.add_argument("--state", required=True, help="state folder (one cursor file per region)")
    p.add_argument(
        "--out-root",
        required=True,
        help="runs write OUT_ROOT/REGION/ACQUISITION/; the inventory is OUT_ROOT/inventory",
    )
    p.add_argument("--once", action="store_true", help="poll once and exit (1 if any problem)")
    p.add_argument(
        "--interval", type=float, default=3600.0, help="seconds between polls (default 3600)"
    )
    p.add_argument(
        "--grace-hours",
        type=float,
        default=24.0,
        help="how long an acquisition covering part of an AOI waits for the rest (default 24)",
    )
    p.set_defaults(func=cmd_watch)
