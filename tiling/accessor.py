"""The ``.tiles`` accessor: georeference tiles of an opened store, rioxarray-style.

>>> ds = tiling.open_tiles("tiles.zarr")
>>> ds.tiles.transform("aoi-3-4")          # Affine of that tile's pixels
>>> ds.tiles.footprint("aoi-3-4")          # shapely polygon in ds.tiles.crs
>>> ds.tiles.image("aoi-3-4", "after")     # (band, y, x) DataArray with x/y coordinates
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from affine import Affine
from pyproj import CRS
from shapely.geometry import Polygon, box


@xr.register_dataset_accessor("tiles")
class TilesAccessor:
    """Georeferencing helpers for a tile store opened with :func:`tiling.open_tiles`."""

    def __init__(self, ds: xr.Dataset) -> None:
        self._ds = ds

    @property
    def crs(self) -> CRS:
        """The CRS of every tile."""
        return CRS.from_wkt(self._ds.attrs["crs_wkt"])

    @property
    def pixel_size(self) -> float:
        return float(self._ds.attrs["pixel_size"])

    def index(self, tile_id: str) -> int:
        """Position of ``tile_id`` along the ``tile`` dimension."""
        hits = np.flatnonzero(self._ds["tile_id"].values == tile_id)
        if hits.size == 0:
            raise KeyError(f"no tile {tile_id!r} in this store")
        return int(hits[0])

    def transform(self, tile: str | int) -> Affine:
        """Affine transform from a tile's (col, row) pixel indices to CRS coordinates."""
        i = self.index(tile) if isinstance(tile, str) else tile
        x0 = float(self._ds["x0"].values[i])
        y0 = float(self._ds["y0"].values[i])
        res = self.pixel_size
        return Affine(res, 0.0, x0, 0.0, -res, y0)

    def footprint(self, tile: str | int) -> Polygon:
        """The tile's outline in :attr:`crs`."""
        t = self.transform(tile)
        size = int(self._ds.attrs["tile_size"])
        x0, y0 = t.c, t.f
        return box(x0, y0 - size * self.pixel_size, x0 + size * self.pixel_size, y0)

    def image(self, tile: str | int, time: str = "before") -> xr.DataArray:
        """One date of one tile as a ``(band, y, x)`` array with pixel-centre coordinates."""
        i = self.index(tile) if isinstance(tile, str) else tile
        t = self.transform(i)
        size = int(self._ds.attrs["tile_size"])
        centres = np.arange(size) + 0.5
        da = self._ds["image"].isel(tile=i).sel(time=time)
        return da.assign_coords(x=t.c + centres * t.a, y=t.f + centres * t.e).assign_attrs(
            crs=self._ds.attrs["crs"]
        )
