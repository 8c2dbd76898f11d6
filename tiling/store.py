"""The Zarr v3 tile store: layout, creation, resumable per-tile writes, and reading back.

Layout (DESIGN.md §2), one group per run and AOI:

- ``image`` ``(tile, time, band, y, x)`` uint8 RGB, one chunk per tile pair (both dates);
- ``nodata_fraction`` ``(tile, time)`` float32, NaN until the tile is written — it doubles as the
  completion marker that makes a killed build resumable;
- coordinates ``tile_id``, ``row``, ``col``, ``x0``, ``y0`` (tile's upper-left corner in the CRS),
  ``time`` (``before``/``after``), ``datetime`` and ``band``;
- attributes: CRS, grid transform, pixel size, tile size, overlap, source items per date, the
  normalisation and registration applied — enough to georeference any pixel with no other file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr
import zarr
from zarr.codecs import BloscCodec

from tiling.grid import TileGrid, tile_origins

STORE_FORMAT = "changevg-tiles/1"
IMAGE = "image"
NODATA = "nodata_fraction"
TIMES = ("before", "after")
BANDS = ("red", "green", "blue")


def _codec(level: int) -> BloscCodec:
    return BloscCodec(cname="zstd", clevel=level, shuffle="bitshuffle")


def create_store(
    path: str,
    grid: TileGrid,
    *,
    datetimes: tuple[np.datetime64, np.datetime64],
    attrs: Mapping[str, Any],
    compression_level: int = 3,
) -> None:
    """Write the store's skeleton (metadata and coordinates, no tile data) at ``path``."""
    n, size = grid.n_tiles, grid.tile_size
    x0, y0 = tile_origins(grid)
    tiles = list(grid)
    ds = xr.Dataset(
        coords={
            "tile_id": ("tile", np.array([t.tile_id for t in tiles], dtype=object)),
            "row": ("tile", np.array([t.row for t in tiles], dtype="int32")),
            "col": ("tile", np.array([t.col for t in tiles], dtype="int32")),
            "x0": ("tile", x0),
            "y0": ("tile", y0),
            "time": ("time", np.array(TIMES, dtype=object)),
            "datetime": ("time", np.array(datetimes, dtype="datetime64[ns]")),
            "band": ("band", np.array(BANDS, dtype=object)),
        },
    )
    ds.to_zarr(path, mode="w", zarr_format=3, consolidated=False)
    group = zarr.open_group(path, mode="r+", zarr_format=3)
    # the data variables straight through zarr: as xarray writes them, without a dask graph
    coordinates = {"coordinates": group.attrs.get("coordinates", "")}
    group.create_array(
        IMAGE,
        shape=(n, 2, 3, size, size),
        chunks=(1, 2, 3, size, size),
        dtype="uint8",
        compressors=(_codec(compression_level),),
        fill_value=0,
        dimension_names=("tile", "time", "band", "y", "x"),
        attributes=coordinates,
    )
    group.create_array(
        NODATA,
        shape=(n, 2),
        chunks=(1, 2),
        dtype="float32",
        fill_value=np.nan,
        # one flat folder of `c.{tile}.0` files: a per-tile folder (mkdir + rename per marker)
        # was most of the cost of resumability on small regions
        chunk_key_encoding={"name": "default", "separator": "."},
        dimension_names=("tile", "time"),
        attributes=coordinates,
    )
    # the format marker goes last: a skeleton without it was interrupted and is rebuilt; put
    # also drops the "coordinates" that xarray parks on a group without data variables
    group.attrs.put({**_jsonable(attrs), "format": STORE_FORMAT})


def _jsonable(attrs: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(dict(attrs), default=str))


def read_attrs(path: str) -> dict[str, Any] | None:
    """The store's attributes, or None when ``path`` holds no complete skeleton."""
    try:
        group = zarr.open_group(path, mode="r", zarr_format=3)
    except (FileNotFoundError, zarr.errors.GroupNotFoundError, ValueError):
        return None
    attrs = dict(group.attrs)
    return attrs if attrs.get("format") == STORE_FORMAT else None


def update_attrs(path: str, **values: Any) -> None:
    """Merge ``values`` into the store's attributes."""
    zarr.open_group(path, mode="r+", zarr_format=3).attrs.update(_jsonable(values))


def nodata_fractions(path: str) -> np.ndarray:
    """``(tile, time)`` nodata fraction of every tile, NaN where not written yet."""
    return zarr.open_array(f"{path.rstrip('/')}/{NODATA}", mode="r", zarr_format=3)[:]


def open_tiles(path: str) -> xr.Dataset:
    """Open a tile store lazily as an :class:`xarray.Dataset` (use its ``.tiles`` accessor)."""
    if read_attrs(path) is None:
        raise FileNotFoundError(
            f"{path} is not a ChangeVG tile store (no '{STORE_FORMAT}' group there); "
            "build one with `changevg tile` or tiling.build_tiles()"
        )
    ds = xr.open_zarr(path, consolidated=False, zarr_format=3, mask_and_scale=False)
    # the per-tile coordinates are small: load them once so lookups don't hit the store
    return ds.assign_coords({name: ds[name].load() for name in ds.coords})


class TileWriter:
    """Writes finished tiles into an existing store; one per worker, opened by path."""

    def __init__(self, path: str) -> None:
        group = zarr.open_group(path, mode="r+", zarr_format=3)
        # tiles are rarely all zero: skip zarr's per-chunk "is it all fill value?" scan, which
        # costs more than compressing the chunk (an all-zero tile is stored, reads the same)
        config = {"write_empty_chunks": True}
        self._image = group[IMAGE].with_config(config)
        self._nodata = group[NODATA].with_config(config)

    def write(self, index: int, image: np.ndarray, nodata_fraction: np.ndarray) -> None:
        """Write one tile pair; the nodata fraction goes last and marks the tile done."""
        self._image[index] = image
        self._nodata[index] = nodata_fraction.astype("float32")

    def write_many(self, start: int, images: np.ndarray, nodata_fractions: np.ndarray) -> None:
        """Write the tile pairs ``start, start + 1, ...`` in one go; their nodata fractions go
        last, once every image chunk is stored, so a tile never counts as done too early."""
        stop = start + len(images)
        self._image[start:stop] = images
        self._nodata[start:stop] = nodata_fractions.astype("float32")
