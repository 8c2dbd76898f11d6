"""The change inventory: GeoParquet 1.1 tables of tiles and change objects (DESIGN.md §2).

>>> rows = [tile_row(ds, t, results[t], run_id=rid, region="boise", model_id=mid) for t in ids]
>>> objs = [o for t in ids for o in object_rows(ds, t, results[t], run_id=rid, region="boise")]
>>> write_inventory("inventory/", tiles=rows, objects=objs, region="boise",
...                 run_date="2024-06-01", run_id=rid, crs=ds.tiles.crs, model_id=mid)

Two tables, hive-partitioned by ``region`` and ``run_date``, one file per run::

    root/tiles/region=R/run_date=D/part-{run_id}.parquet     one row per tile pair
    root/objects/region=R/run_date=D/part-{run_id}.parquet   one row per change object

Objects cut by a tile edge are one row per tile; their pieces share a ``feature_id``
(:mod:`flows.inventory.features`).

Files are GeoParquet 1.1: WKB geometry, CRS as PROJJSON, a ``bbox`` covering column (so DuckDB,
GDAL and pyarrow prune row groups by extent), zstd, rows in Hilbert order of their bbox centres,
in row groups of ``row_group_size`` rows. ``region`` and ``run_date`` are path keys, not file
columns (any hive-aware reader returns them). A write stages both partitions in ``.tmp-…``
folders beside them, then swaps each folder in: a rerun of a run id replaces its rows, never
duplicates them, and a failed write leaves the previous partition intact. The root may be a
local path or an fsspec URL (``memory://`` in tests, ``s3://…`` through the same code path; object
stores have no atomic folder rename, there the swap is a copy then delete).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from dataclasses import asdict
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely
from pyproj import CRS, Geod
from shapely.affinity import affine_transform
from shapely.geometry import Polygon, box
from shapely.geometry.base import BaseGeometry

from changevg.result import ChangeObject, ChangeResult
from flows.inventory import _io as io
from flows.inventory.features import link_features
from flows.inventory.schema import (
    InventoryError,
    InventoryPaths,
    ModelMismatchError,
    ObjectRow,
    TileRow,
    partition_date,
)

__all__ = [
    "InventoryError",
    "InventoryPaths",
    "ModelMismatchError",
    "ObjectRow",
    "TileRow",
    "object_rows",
    "tile_row",
    "write_inventory",
]

DEFAULT_ROW_GROUP_SIZE = 10_000


# --- rows from a tile store and ChangeResults ------------------------------------------------


def _sources(ds, when: str) -> tuple[list[str], Any]:
    src = (ds.attrs.get("sources") or {}).get(when) or {}
    items = [str(i["id"]) if isinstance(i, dict) else str(i) for i in src.get("items", [])]
    return items, src.get("datetime")


def tile_row(
    ds, tile_id: str, result: ChangeResult, *, run_id: str, region: str, model_id: str
) -> TileRow:
    """The ``tiles`` row of one tile pair of the store ``ds`` (``tiling.open_tiles``)."""
    before_items, before_dt = _sources(ds, "before")
    after_items, after_dt = _sources(ds, "after")
    counts = result.counts or {}
    return TileRow(
        run_id=run_id,
        region=region,
        tile_id=tile_id,
        before_items=before_items,
        after_items=after_items,
        before_datetime=before_dt,
        after_datetime=after_dt,
        changed=bool(result.changed),
        change_score=float(result.change_score),
        caption=result.caption,
        n_buildings=int(counts.get("building", 0)),
        n_roads=int(counts.get("road", 0)),
        cells=list(result.locations),
        model_id=model_id,
        geometry=ds.tiles.footprint(tile_id),
    )


def _pixel_polygon(obj: ChangeObject) -> BaseGeometry:
    if len(obj.polygon) >= 3:
        poly = Polygon(obj.polygon)
        if not poly.is_valid:
            poly = shapely.make_valid(poly)
        if not poly.is_empty and poly.area > 0:
            return poly
    return box(*obj.bbox)  # degenerate ring: its pixel box still says where it is


def area_m2(geom: BaseGeometry, crs: CRS) -> float:
    """Area of ``geom`` in square metres (geodesic for a geographic CRS)."""
    if crs.is_geographic:
        area, _ = Geod(ellps="WGS84").geometry_area_perimeter(geom)
        return abs(float(area))
    factor = crs.axis_info[0].unit_conversion_factor if crs.axis_info else 1.0
    return float(geom.area) * factor * factor


def object_rows(
    ds, tile_id: str, result: ChangeResult, *, run_id: str, region: str
) -> list[ObjectRow]:
    """The ``objects`` rows of one tile pair: pixel polygons georeferenced with its transform.

    Pixel ``(col, row)`` vertices (on pixel corners) map to the CRS through the tile's affine;
    ``object_id`` is ``{tile_id}-{k}`` with ``k`` the object's index in ``result.objects``.
    """
    t = ds.tiles.transform(tile_id)
    crs = ds.tiles.crs
    rows = []
    for k, obj in enumerate(result.objects):
        geom = affine_transform(_pixel_polygon(obj), [t.a, t.b, t.d, t.e, t.c, t.f])
        rows.append(
            ObjectRow(
                run_id=run_id,
                region=region,
                tile_id=tile_id,
                object_id=f"{tile_id}-{k}",
                cls=obj.cls,
                area_m2=area_m2(geom, crs),
                score=float(obj.score),
                cell=obj.cell,
                geometry=geom,
            )
        )
    return rows


# --- writing ---------------------------------------------------------------------------------


def _records(rows: Sequence | pd.DataFrame | None) -> pd.DataFrame:
    if rows is None:
        return pd.DataFrame()
    if isinstance(rows, pd.DataFrame):
        return pd.DataFrame(rows)
    return pd.DataFrame([asdict(r) if not isinstance(r, dict) else r for r in rows])


def _utc(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, utc=True, format="mixed").astype("datetime64[us, UTC]")


def _as_list(v) -> list[str]:
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return []
    if isinstance(v, str):
        return [s for s in (p.strip() for p in v.split(",")) if s]
    return [str(x) for x in v]


def _frame(
    rows, table: str, *, region: str, run_id: str, crs: CRS, model_id: str | None
) -> gpd.GeoDataFrame:
    """Rows → a GeoDataFrame with exactly the table's columns, checked and Hilbert-sorted."""
    df = _records(rows).rename(columns={"cls": "class"})
    columns = list(io.SCHEMAS[table])
    if df.empty:
        df = pd.DataFrame({c: pd.Series([], dtype=object) for c in [*columns, "geometry"]})
    for key, want in (("region", region), ("run_id", run_id)):
        if key in df and not (df[key].isna() | (df[key] == want)).all():
            bad = sorted(set(df[key].dropna()) - {want})
            raise InventoryError(f"{table} rows with {key} {bad} in a write of {key} {want!r}")
    df["run_id"] = run_id
    if table == "tiles":
        if "model_id" in df and not (df["model_id"].isna() | (df["model_id"] == model_id)).all():
            bad = sorted(set(df["model_id"].dropna()) - {model_id})
            raise InventoryError(f"tiles rows of model {bad} in a write for model {model_id!r}")
        df["model_id"] = model_id
        for c in ("before_items", "after_items", "cells"):
            df[c] = [_as_list(v) for v in df[c]] if c in df else [[] for _ in range(len(df))]
        for c in ("before_datetime", "after_datetime"):
            df[c] = _utc(df[c]) if c in df else pd.NaT
    elif "object_id" in df:  # rows never linked across tile edges: each object is its feature
        df["feature_id"] = (
            df["feature_id"].fillna(df["object_id"]) if "feature_id" in df else (df["object_id"])
        )
    missing = [c for c in [*columns, "geometry"] if c not in df]
    if missing:
        raise InventoryError(f"{table} rows lack columns {missing}")
    dup = df.duplicated(["tile_id"] if table == "tiles" else ["object_id"])
    if dup.any():
        key = "tile_id" if table == "tiles" else "object_id"
        raise InventoryError(
            f"duplicate {key} in {table} rows: {sorted(set(df.loc[dup, key]))[:5]}"
        )
    gdf = gpd.GeoDataFrame(df[columns], geometry=gpd.GeoSeries(df["geometry"]), crs=crs)
    if len(gdf) > 1:  # spatial order: row groups then cover compact extents
        gdf = gdf.iloc[gdf.geometry.hilbert_distance().argsort(kind="stable")]
    return gdf.reset_index(drop=True)


def _check_model(
    store: io.Store, region: str, day: str, run_id: str, model_id: str, overwrite: bool
):
    """Refuse to mix models under one run id; return files of this run in other run dates."""
    name = io.run_file(run_id)
    elsewhere: list[str] = []
    for table in io.TABLES:
        pattern = store.join(table, f"region={region}", "run_date=*", name)
        elsewhere += [p for p in store.fs.glob(pattern) if f"/run_date={day}/" not in p]
    here = store.partition("tiles", region, day) + "/" + name
    tiles_dir = store.join("tiles") + "/"
    for path in [here, *[p for p in elsewhere if p.startswith(tiles_dir)]]:
        if not store.fs.exists(path):
            continue
        old = io.model_ids(store, path)
        if old - {model_id} and not overwrite:
            raise ModelMismatchError(
                f"run {run_id!r} ({region}) in {path} was written by model {sorted(old)}, this "
                f"write is by model {model_id!r}; use a new run id, or overwrite=True to replace it"
            )
    if elsewhere and not overwrite:
        raise InventoryError(
            f"run {run_id!r} ({region}) already has rows under another run date ({elsewhere[0]}); "
            f"write it with that run date, or overwrite=True to move it to {day}"
        )
    return elsewhere


def write_inventory(
    root,
    *,
    tiles: Sequence[TileRow] | pd.DataFrame,
    objects: Sequence[ObjectRow] | pd.DataFrame | None,
    region: str,
    run_date: dt.date | str,
    run_id: str,
    crs,
    model_id: str,
    overwrite: bool = False,
    row_group_size: int = DEFAULT_ROW_GROUP_SIZE,
    filesystem=None,
) -> InventoryPaths:
    """Write (or replace) one run's rows in both inventory tables, atomically per partition.

    Args:
        root: Inventory root: a local path or an fsspec URL (``memory://…``, ``s3://…``).
        tiles / objects: :class:`TileRow` / :class:`ObjectRow` lists (or DataFrames with those
            columns; ``cls`` or ``class``); item lists may be lists or comma-joined strings.
        region, run_date, run_id: the partition (``region``, ``run_date``) and the run's file.
        crs: The scene CRS of every geometry (anything ``pyproj.CRS`` accepts).
        model_id: The model that produced the results; a rerun of ``run_id`` with another model
            raises :class:`ModelMismatchError` unless ``overwrite=True``.
        row_group_size: Rows per Parquet row group.
        filesystem: An fsspec filesystem for ``root`` (else inferred from the URL).
    """
    region = io.check_name("region", region)
    run_id = io.check_name("run_id", run_id)
    if not model_id:
        raise InventoryError("model_id is required")
    crs = CRS.from_user_input(crs)
    day = partition_date(run_date)
    store = io.Store.open(root, filesystem)
    kw = {"region": region, "run_id": run_id, "crs": crs}
    frames = {
        "tiles": _frame(tiles, "tiles", model_id=model_id, **kw),
        "objects": _frame(objects, "objects", model_id=None, **kw),
    }
    unknown = set(frames["objects"]["tile_id"]) - set(frames["tiles"]["tile_id"])
    if unknown:
        raise InventoryError(f"objects of tiles not in the tiles rows: {sorted(unknown)[:5]}")
    elsewhere = _check_model(store, region, day, run_id, model_id, overwrite)
    name = io.run_file(run_id)
    finals = {t: store.partition(t, region, day) for t in io.TABLES}
    replaced = store.fs.exists(f"{finals['tiles']}/{name}") or bool(elsewhere)
    with ExitStack() as stack:
        tmps = {t: stack.enter_context(io.staged(store, finals[t])) for t in io.TABLES}
        for t in io.TABLES:
            _write_part(store, frames[t], t, f"{tmps[t]}/{name}", row_group_size)
            io.copy_siblings(store, finals[t], tmps[t], keep_out=name)
        for t in io.TABLES:
            io.swap(store, tmps[t], finals[t])
    for path in elsewhere:  # overwrite=True moved this run to another date: drop the old rows
        store.rm(path)
    return InventoryPaths(
        root=store.url,
        tiles=f"{finals['tiles']}/{name}",
        objects=f"{finals['objects']}/{name}",
        n_tiles=len(frames["tiles"]),
        n_objects=len(frames["objects"]),
        replaced=replaced,
    )


def _write_part(store: io.Store, gdf: gpd.GeoDataFrame, table: str, path: str, rgs: int) -> None:
    io.write_parquet(store, io.to_table(gdf, table), path, rgs)


def rows_from_results(
    ds, results: Iterable[tuple[str, ChangeResult]], *, run_id: str, region: str, model_id: str
) -> tuple[list[TileRow], list[ObjectRow]]:
    """Both tables' rows for ``(tile_id, ChangeResult)`` pairs of one tile store."""
    tiles, objects = [], []
    for tile_id, result in results:
        tiles.append(tile_row(ds, tile_id, result, run_id=run_id, region=region, model_id=model_id))
        objects += object_rows(ds, tile_id, result, run_id=run_id, region=region)
    return tiles, link_features(objects, pixel_size=ds.tiles.pixel_size)
