"""Query the GeoParquet change inventory with DuckDB (no spatial extension needed).

>>> query_inventory("inventory/", bbox=(-116.2, 33.89, -116.19, 33.9), cls="building")
>>> summary("inventory/")
>>> print(format_table(query_inventory("inventory/", region="boise"), "csv"))

DuckDB reads the hive-partitioned files (``region``/``run_date`` from the path). Filters on
region and dates prune partitions; a bbox filter is pushed into the Parquet scan through the
``bbox`` covering column (``bbox.xmin <= maxx AND bbox.xmax >= minx …``), which skips row groups
by their statistics; the exact intersection is then tested with shapely on the candidates only.
Query boxes and AOIs are lon/lat (EPSG:4326) unless told otherwise and are transformed into each
file's CRS (read from its GeoParquet metadata), so regions in different UTM zones mix freely.
"""

from __future__ import annotations

import datetime as dt
import io as _stdio
import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any, Literal

import duckdb
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer
from shapely.geometry import box, shape
from shapely.geometry.base import BaseGeometry

from flows.inventory import _io as io
from flows.inventory.schema import InventoryNotFoundError

__all__ = [
    "InventoryNotFoundError",
    "explain_query",
    "format_table",
    "query_inventory",
    "summary",
]

CLASSES = {"building": "n_buildings", "road": "n_roads"}
_HIVE = "hive_partitioning=true, hive_types={'region': VARCHAR, 'run_date': DATE}"


def _store(root, filesystem=None) -> tuple[io.Store, dict[str, list[str]]]:
    store = io.Store.open(root, filesystem)
    files = {t: store.glob(t) for t in io.TABLES}
    if not files["tiles"]:
        raise InventoryNotFoundError(
            f"no change inventory at {store.url}: no {store.join('tiles')}/region=*/run_date=*/"
            "*.parquet files. Write one with a monitoring run (`changevg run …`, which calls "
            "flows.inventory.write_inventory), or point at the inventory root."
        )
    return store, files


def _connect(store: io.Store) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET threads TO 2")
    if not store.local:
        con.register_filesystem(store.fs)
    return con


def _sql_list(store: io.Store, paths: list[str]) -> str:
    return "[" + ", ".join("'" + store.uri(p).replace("'", "''") + "'" for p in paths) + "]"


def _query_geometry(bbox, aoi) -> BaseGeometry | None:
    geoms = []
    if bbox is not None:
        minx, miny, maxx, maxy = map(float, bbox)
        if minx > maxx or miny > maxy:
            raise ValueError(f"bbox {bbox} must be (minx, miny, maxx, maxy)")
        geoms.append(box(minx, miny, maxx, maxy))
    if aoi is not None:
        geoms.append(_load_aoi(aoi))
    if not geoms:
        return None
    g = geoms[0] if len(geoms) == 1 else shapely.intersection_all(geoms)
    return g


def _load_aoi(aoi) -> BaseGeometry:
    if isinstance(aoi, BaseGeometry):
        return aoi
    if isinstance(aoi, (str, os.PathLike)) and not str(aoi).lstrip().startswith("{"):
        aoi = Path(aoi).read_text()
    if isinstance(aoi, str):
        aoi = json.loads(aoi)
    if aoi.get("type") == "FeatureCollection":
        return shapely.union_all([shape(f["geometry"]) for f in aoi["features"]])
    if aoi.get("type") == "Feature":
        return shape(aoi["geometry"])
    return shape(aoi)


def _to_crs(geom: BaseGeometry, src: CRS, dst: CRS) -> BaseGeometry:
    if src == dst:
        return geom
    tr = Transformer.from_crs(src, dst, always_xy=True)
    dense = shapely.segmentize(geom, max_segment_length=_seg(geom))
    return shapely.transform(dense, lambda xy: _apply(tr, xy))


def _seg(geom: BaseGeometry) -> float:
    minx, miny, maxx, maxy = geom.bounds
    return max(maxx - minx, maxy - miny, 1e-9) / 32  # edges stay close to straight after reproj


def _apply(tr: Transformer, xy):
    x, y = tr.transform(xy[:, 0], xy[:, 1])
    return np.column_stack([x, y])


def _by_crs(store: io.Store, paths: list[str]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = defaultdict(list)
    for p in paths:
        geo = io.geo_metadata(store, p)
        crs = geo["columns"][geo["primary_column"]].get("crs")
        groups[json.dumps(crs, sort_keys=True) if crs is not None else "OGC:CRS84"].append(p)
    return groups


def _where(region, since, until, run_id) -> list[tuple[str, list[Any]]]:
    where: list[tuple[str, list[Any]]] = []
    if region is not None:
        where.append(("region = ?", [region]))
    if since is not None:
        where.append(("run_date >= ?::DATE", [_day(since)]))
    if until is not None:
        where.append(("run_date <= ?::DATE", [_day(until)]))
    if run_id is not None:
        where.append(("run_id = ?", [run_id]))
    return where


def _day(d) -> str:
    if isinstance(d, dt.datetime):
        d = d.date()
    return (
        d.isoformat() if isinstance(d, dt.date) else dt.date.fromisoformat(str(d)[:10]).isoformat()
    )


def query_inventory(
    root,
    *,
    bbox: tuple[float, float, float, float] | None = None,
    aoi=None,
    region: str | None = None,
    since: dt.date | str | None = None,
    until: dt.date | str | None = None,
    run_id: str | None = None,
    cls: Literal["building", "road"] | None = None,
    min_count: int | None = None,
    table: Literal["tiles", "objects"] = "tiles",
    query_crs="EPSG:4326",
    crs=None,
    filesystem=None,
) -> gpd.GeoDataFrame:
    """Rows of one inventory table matching every filter given.

    Args:
        root: Inventory root (local path or fsspec URL).
        bbox: ``(minx, miny, maxx, maxy)`` in ``query_crs`` (lon/lat by default).
        aoi: GeoJSON (file path, text, dict: geometry/Feature/FeatureCollection) or a shapely
            geometry in ``query_crs``; rows must intersect it (and ``bbox`` if both are given).
        region, since, until, run_id: partition / run filters (dates inclusive).
        cls: ``tiles``: tiles with ``n_<cls> > 0``; ``objects``: objects of that class.
        min_count: ``tiles``: ``n_<cls>`` (or buildings + roads without ``cls``) at least this;
            ``objects``: objects of tiles with at least this many objects (of ``cls``).
        table: ``"tiles"`` or ``"objects"``.
        query_crs: CRS of ``bbox`` and ``aoi``.
        crs: CRS of the result; default the data CRS, or EPSG:4326 when files differ in CRS.
        filesystem: An fsspec filesystem for ``root`` (else inferred from the URL).

    Returns a GeoDataFrame with the table's columns plus ``region`` and ``run_date``
    (the ``bbox`` covering column is dropped), ordered by region, run_date, run_id, ids.
    """
    kw = dict(locals())
    plan = _Plan(**kw)
    frames = []
    for data_crs, local, sql, args in plan.statements():
        df = _tidy(plan.con.execute(sql, args).df())
        wkb = [bytes(b) if b is not None else None for b in df.pop("geometry")]
        geoms = shapely.from_wkb(np.array(wkb, dtype=object))
        gdf = gpd.GeoDataFrame(df, geometry=geoms, crs=data_crs)
        if local is not None and len(gdf):
            gdf = gdf[shapely.intersects(gdf.geometry.values, local)]
        frames.append(gdf.to_crs(plan.out_crs))
    if not frames:
        return _empty(table, plan.out_crs)
    result = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    key = ["region", "run_date", "run_id", "tile_id"] + (
        ["object_id"] if table == "objects" else []
    )
    return (
        gpd.GeoDataFrame(result, geometry="geometry", crs=plan.out_crs)
        .sort_values(key)
        .reset_index(drop=True)
    )


def explain_query(root, **filters) -> str:
    """DuckDB's ``EXPLAIN`` of what :func:`query_inventory` runs (one plan per data CRS).

    The ``READ_PARQUET`` node lists the filters pushed into the scan (``bbox.xmin <= …``).
    """
    plan = _Plan(root=root, **filters)
    out = []
    for _, _, sql, args in plan.statements():
        rows = plan.con.execute("EXPLAIN " + sql, args).fetchall()
        out.append("\n".join(r[1] for r in rows))
    return "\n\n".join(out)


class _Plan:
    """The DuckDB statements behind a query: one per CRS among the matching files."""

    def __init__(
        self,
        root,
        *,
        bbox=None,
        aoi=None,
        region=None,
        since=None,
        until=None,
        run_id=None,
        cls=None,
        min_count=None,
        table="tiles",
        query_crs="EPSG:4326",
        crs=None,
        filesystem=None,
    ) -> None:
        if table not in io.TABLES:
            raise ValueError(f"table must be one of {io.TABLES}, not {table!r}")
        if cls is not None and cls not in CLASSES:
            raise ValueError(f"cls must be one of {sorted(CLASSES)}, not {cls!r}")
        store, files = _store(root, filesystem)
        paths = store.glob(table, region) if region is not None else files[table]
        self.store, self.table = store, table
        self.qcrs = CRS.from_user_input(query_crs)
        self.qgeom = _query_geometry(bbox, aoi)
        where = _where(region, since, until, run_id)
        if cls is not None and table == "objects":
            where.append(('"class" = ?', [cls]))
        if table == "tiles" and (min_count is not None or cls is not None):
            col = CLASSES[cls] if cls else "(n_buildings + n_roads)"
            where.append((f"{col} >= ?", [int(min_count) if min_count is not None else 1]))
        self.where = where
        self.min_count = min_count if table == "objects" else None
        self.groups = _by_crs(store, paths) if paths else {}
        out_crs = CRS.from_user_input(crs) if crs is not None else None
        if out_crs is None:
            one = len(self.groups) == 1
            out_crs = _crs_of(next(iter(self.groups))) if one else CRS.from_epsg(4326)
        self.out_crs = out_crs
        self.con = _connect(store)

    def statements(self):
        for crs_key, group in self.groups.items():
            data_crs = _crs_of(crs_key)
            local, spatial = None, None
            if self.qgeom is not None:
                local = _to_crs(self.qgeom, self.qcrs, data_crs)
                minx, miny, maxx, maxy = local.bounds
                spatial = (
                    "bbox.xmin <= ? AND bbox.xmax >= ? AND bbox.ymin <= ? AND bbox.ymax >= ?",
                    [maxx, minx, maxy, miny],
                )
            sql, args = _select(self.store, group, self.where, spatial, self.min_count)
            yield data_crs, local, sql, args


def _and(clauses: list[tuple[str, list[Any]]]) -> tuple[str, list[Any]]:
    if not clauses:
        return "TRUE", []
    return " AND ".join(f"({c})" for c, _ in clauses), [a for _, args in clauses for a in args]


def _select(store, group, where, spatial, min_count) -> tuple[str, list[Any]]:
    src = f"read_parquet({_sql_list(store, group)}, {_HIVE})"
    cond, args = _and(where + ([spatial] if spatial else []))
    if min_count is None:
        return f"SELECT * EXCLUDE (bbox) FROM {src} WHERE {cond}", args
    # objects of tiles with at least min_count matching objects, counted over the whole tile
    part, part_args = _and(where)
    sql = (
        f"WITH n AS (SELECT region, run_date, run_id, tile_id, count(*) AS n FROM {src} "
        f"WHERE {part} GROUP BY ALL) "
        f"SELECT o.* EXCLUDE (bbox) FROM {src} o JOIN n USING (region, run_date, run_id, tile_id) "
        f"WHERE {cond} AND n.n >= ?"
    )
    return sql, part_args + args + [int(min_count)]


def _tidy(df: pd.DataFrame) -> pd.DataFrame:
    """DuckDB's pandas output → plain values: dates as ``date``, lists as ``list``."""
    if "run_date" in df:
        df["run_date"] = pd.to_datetime(df["run_date"]).dt.date
    for c in ("before_items", "after_items", "cells"):
        if c in df:
            df[c] = [list(v) if v is not None else [] for v in df[c]]
    return df


def _crs_of(key: str) -> CRS:
    return CRS.from_user_input(key if key == "OGC:CRS84" else json.loads(key))


def _empty(table, out_crs) -> gpd.GeoDataFrame:
    """An empty result with the table's columns."""
    cols = [*io.SCHEMAS[table], "region", "run_date"]
    return gpd.GeoDataFrame(
        {c: pd.Series([], dtype=object) for c in cols}, geometry=gpd.GeoSeries([]), crs=out_crs
    )


def summary(root, *, filesystem=None) -> pd.DataFrame:
    """Per region and run: tiles, changed tiles, new buildings/roads, objects, changed area (m²).

    ``new_buildings``/``new_roads`` sum the VLM's per-tile counts; ``n_objects`` counts the
    change objects per tile, ``n_features`` counts them once across tile edges
    (:mod:`flows.inventory.features`; inventories written before ``feature_id`` existed count
    objects).
    """
    store, files = _store(root, filesystem)
    con = _connect(store)
    tiles = f"read_parquet({_sql_list(store, files['tiles'])}, {_HIVE})"
    if files["objects"]:
        objects = (
            "SELECT region, run_date, run_id, count(*) AS n_objects, "
            "count(DISTINCT coalesce(feature_id, object_id)) AS n_features, sum(area_m2) AS area "
            f"FROM read_parquet({_sql_list(store, files['objects'])}, {_HIVE}, union_by_name=true)"
            " GROUP BY ALL"
        )
    else:
        objects = (
            "SELECT NULL::VARCHAR AS region, NULL::DATE AS run_date, NULL::VARCHAR AS run_id, "
            "0 AS n_objects, 0 AS n_features, 0.0 AS area WHERE FALSE"
        )
    sql = f"""
        WITH t AS (
            SELECT region, run_date, run_id, count(*) AS tiles,
                   count(*) FILTER (WHERE changed) AS changed_tiles,
                   sum(n_buildings) AS new_buildings, sum(n_roads) AS new_roads,
                   string_agg(DISTINCT model_id, ',') AS model_id
            FROM {tiles} GROUP BY ALL),
        o AS ({objects})
        SELECT t.region, t.run_date, t.run_id, t.tiles, t.changed_tiles, t.new_buildings,
               t.new_roads, coalesce(o.n_objects, 0) AS n_objects,
               coalesce(o.n_features, 0) AS n_features,
               coalesce(o.area, 0.0) AS changed_area_m2, t.model_id
        FROM t LEFT JOIN o USING (region, run_date, run_id)
        ORDER BY t.region, t.run_date, t.run_id"""
    df = con.execute(sql).df()
    for c in ("tiles", "changed_tiles", "new_buildings", "new_roads", "n_objects", "n_features"):
        df[c] = df[c].astype("int64")
    df["run_date"] = pd.to_datetime(df["run_date"]).dt.date
    return df


def format_table(
    df: pd.DataFrame,
    fmt: Literal["table", "geojson", "csv", "parquet"] = "table",
    out=None,
) -> str | bytes:
    """Render a query or summary result; also written to ``out`` (a path) when given.

    ``table``: aligned text with geometries as short WKT; ``csv``: geometry as WKT;
    ``geojson``: a FeatureCollection in EPSG:4326 (RFC 7946); ``parquet``: GeoParquet 1.1 bytes
    (plain Parquet for a frame without geometry).
    """
    geo = isinstance(df, gpd.GeoDataFrame) and df.geometry.name in df
    if fmt == "table":
        view = pd.DataFrame(df).copy()
        if geo:
            view[df.geometry.name] = [
                (g.wkt[:40] + "…" if len(g.wkt) > 40 else g.wkt) if g is not None else ""
                for g in df.geometry
            ]
        text: str | bytes = view.to_string(index=False) + "\n" if len(view) else "(no rows)\n"
    elif fmt == "csv":
        view = pd.DataFrame(df).copy()
        if geo:
            view[df.geometry.name] = df.geometry.to_wkt()
        text = view.to_csv(index=False)
    elif fmt == "geojson":
        if not geo:
            raise ValueError("geojson needs a GeoDataFrame (a query result), not a summary")
        g = df.to_crs(4326) if df.crs is not None else df
        g = g.copy()
        for c in g.columns:  # dates and lists → JSON-friendly
            if c != g.geometry.name and (
                g[c].dtype == object or pd.api.types.is_datetime64_any_dtype(g[c])
            ):
                g[c] = pd.Series([_jsonable(v) for v in g[c]], index=g.index, dtype=object)
        text = g.to_json(drop_id=True, to_wgs84=False)
    elif fmt == "parquet":
        buf = _stdio.BytesIO()
        if geo:
            df.to_parquet(buf, schema_version="1.1.0", write_covering_bbox=True, compression="zstd")
        else:
            pd.DataFrame(df).to_parquet(buf, compression="zstd")
        text = buf.getvalue()
    else:
        raise ValueError(f"fmt must be table, geojson, csv or parquet, not {fmt!r}")
    if out is not None:
        mode = "wb" if isinstance(text, bytes) else "w"
        with open(out, mode) as f:
            f.write(text)
    return text


def _jsonable(v):
    if v is None or v is pd.NaT:
        return None
    if isinstance(v, (dt.date, pd.Timestamp)):
        return v.isoformat()
    if hasattr(v, "tolist"):
        return v.tolist()
    return v
