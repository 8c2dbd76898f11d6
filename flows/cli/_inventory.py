"""The inventory commands of the ``changevg`` CLI: query and summary (DuckDB underneath)."""

from __future__ import annotations

import argparse
import sys

from catalogs.errors import InputError


def _bbox(text: str | None) -> tuple[float, float, float, float] | None:
    if text is None:
        return None
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4:
        raise InputError(f"--bbox must be minx,miny,maxx,maxy in lon/lat, got {text!r}")
    return values  # type: ignore[return-value]


def _emit(df, fmt: str, out: str | None) -> None:
    from flows.inventory.query import format_table

    if fmt in ("gpkg", "fgb"):  # GIS-native files, written by GDAL (flows.inventory.export)
        from flows.inventory.export import write_vector

        if not out:
            raise InputError(f"--format {fmt} needs --out FILE")
        print(f"wrote {len(df)} features to {write_vector(df, out, fmt)}")
        return
    rendered = format_table(df, fmt, out=out)
    if out is None:
        if isinstance(rendered, bytes):
            sys.stdout.buffer.write(rendered)
        else:
            print(rendered)


def cmd_query(args: argparse.Namespace) -> int:
    from flows.inventory.query import query_inventory

    if args.bbox and args.aoi:
        raise InputError("give --bbox or --aoi, not both")
    if args.format == "parquet" and not args.output:
        raise InputError("--format parquet needs --output FILE")
    df = query_inventory(
        args.inventory,
        bbox=_bbox(args.bbox),
        aoi=args.aoi,
        region=args.region,
        since=args.since,
        cls=args.cls,
        min_count=args.min_count,
        table=args.table,
    )
    _emit(df, args.format, args.output)
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    from flows.inventory.query import summary

    _emit(summary(args.inventory), args.format, args.output)
    return 0


def add_inventory_commands(sub) -> None:
    p = sub.add_parser("query", help="query a change inventory (GeoParquet) with DuckDB")
    p.add_argument("inventory", help="inventory root folder or URL")
    p.add_argument("--bbox", help="minx,miny,maxx,maxy in lon/lat")
    p.add_argument("--aoi", help="GeoJSON file of the area to select")
    p.add_argument("--region")
    p.add_argument("--since", help="runs on or after this date (YYYY-MM-DD)")
    p.add_argument("--class", dest="cls", choices=["building", "road"])
    p.add_argument("--min-count", type=int, help="at least N new objects of --class per tile")
    p.add_argument("--table", choices=["tiles", "objects"], default="tiles")
    p.add_argument(
        "--format",
        choices=["table", "geojson", "csv", "parquet", "gpkg", "fgb"],
        default="table",
        help="gpkg/fgb: GeoPackage/FlatGeobuf in the scene CRS, for QGIS (need --out)",
    )
    p.add_argument(
        "-o", "--output", "--out", dest="output", help="write to this file, not the terminal"
    )
    p.set_defaults(func=cmd_query)

    p = sub.add_parser("summary", help="per region and run: tiles, changes, new objects, area")
    p.add_argument("inventory", help="inventory root folder or URL")
    p.add_argument("--format", choices=["table", "csv", "geojson", "parquet"], default="table")
    p.add_argument("-o", "--output")
    p.set_defaults(func=cmd_summary)
