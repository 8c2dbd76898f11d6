"""GIS-native copies of an inventory query: GeoPackage and FlatGeobuf, written with GDAL (pyogrio).

QGIS, ArcGIS and ``ogr2ogr`` open these without a GDAL built with the Parquet driver (the GDAL in
PyPI's pyogrio wheel has none), so they are how a person takes query results into a desktop GIS::

    frame = query_inventory("inventory/", region="coachella", cls="building")
    write_vector(frame, "buildings.gpkg")           # layer "tiles" or "objects", the scene CRS

The layer keeps the query's CRS — the scene CRS (UTM) when every matching file shares one, else
lon/lat (what :func:`~flows.inventory.query.query_inventory` returns for mixed CRSs). Columns
GDAL cannot store as such are converted: lists (item ids, grid cells) become JSON text, the
``run_date`` partition becomes an ISO date string; datetimes stay datetimes (UTC). The file is
written next to its target and renamed into place, so a reader never sees half a file.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from pathlib import Path
from typing import Literal

import geopandas as gpd
import pandas as pd

from catalogs.errors import InputError

__all__ = ["DRIVERS", "VectorFormat", "write_vector"]

VectorFormat = Literal["gpkg", "fgb"]

#: GDAL driver and file suffix per format.
DRIVERS: dict[str, tuple[str, str]] = {"gpkg": ("GPKG", ".gpkg"), "fgb": ("FlatGeobuf", ".fgb")}


def write_vector(
    frame: gpd.GeoDataFrame,
    path: str | os.PathLike[str],
    fmt: VectorFormat | None = None,
    *,
    layer: str | None = None,
) -> Path:
    """Write a query result as a GeoPackage or FlatGeobuf file with GDAL.

    Args:
        frame: A :func:`~flows.inventory.query.query_inventory` result (any GeoDataFrame with
            a CRS).
        path: The file to write (a local path; replaced if it exists).
        fmt: ``"gpkg"`` or ``"fgb"``; default from the suffix of ``path``.
        layer: Layer name; default ``objects`` for object rows, else ``tiles``.

    Returns:
        The path written.

    Raises:
        InputError: the format is unknown, the frame has no geometry or CRS, or the folder of
            ``path`` does not exist.
    """
    target = Path(path)
    fmt = fmt or _format_from_suffix(target)
    if fmt not in DRIVERS:
        raise InputError(f"format {fmt!r}: choose one of {', '.join(DRIVERS)}")
    if not isinstance(frame, gpd.GeoDataFrame) or frame.geometry.name not in frame:
        raise InputError(
            f"{fmt} export needs rows with geometry (a query result), not a summary table"
        )
    if frame.crs is None:
        raise InputError(f"{fmt} export: the rows have no CRS; query the inventory again")
    if not target.parent.is_dir():
        raise InputError(f"cannot write {target}: folder {target.parent} does not exist")
    import pyogrio

    driver, suffix = DRIVERS[fmt]
    name = layer or ("objects" if "object_id" in frame else "tiles")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
    os.close(fd)
    os.unlink(tmp)  # GDAL creates the file itself; a zero-byte file is not a GeoPackage
    try:
        pyogrio.write_dataframe(
            _gdal_ready(frame), tmp, layer=name, driver=driver, promote_to_multi=_mixed(frame)
        )
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target


def _format_from_suffix(path: Path) -> VectorFormat:
    for fmt, (_, suffix) in DRIVERS.items():
        if path.suffix.lower() == suffix:
            return fmt  # type: ignore[return-value]
    raise InputError(f"{path}: give the format (gpkg or fgb) or a .gpkg / .fgb file name")


def _mixed(frame: gpd.GeoDataFrame) -> bool:
    """Whether polygons and multipolygons mix (then all become multipolygons: one layer type)."""
    kinds = set(frame.geometry.geom_type.dropna())
    return kinds == {"Polygon", "MultiPolygon"}


def _gdal_ready(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """A copy whose columns GDAL can store: lists as JSON text, dates as ISO strings."""
    out = frame.copy()
    for col in out.columns:
        if col == out.geometry.name or out[col].dtype != object:
            continue
        values = out[col].tolist()
        if any(isinstance(v, list | tuple) or hasattr(v, "tolist") for v in values):
            out[col] = pd.Series([_json_list(v) for v in values], index=out.index, dtype=object)
        elif any(isinstance(v, dt.date) for v in values):
            out[col] = pd.Series(
                [v.isoformat() if isinstance(v, dt.date) else v for v in values],
                index=out.index,
                dtype=object,
            )
    return out


def _json_list(value: object) -> str | None:
    if value is None:
        return None
    items = value.tolist() if hasattr(value, "tolist") else list(value)  # type: ignore[call-overload]
    return json.dumps(items)
