"""Direct window reads for the common case: every item of a date on the grid's pixel lattice.

When each item shares the grid's CRS and pixel size and sits a whole number of pixels from it
(the before date on its own grid; the after date on ``SubpixelShift.padded``), the grid needs no
resampling: a block is a mosaic of plain rasterio window reads. One ``read`` per asset and block
gets all three bands, instead of odc-stac's file reopen and block decode per band. The result
matches ``odc.stac.load`` (same fill, nodata remap and first-valid-wins mosaic in item order).
"""

from __future__ import annotations

import math
import os
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pystac
import rasterio
from odc.geo.geobox import GeoBox
from rasterio.windows import Window

from catalogs.items import rgb_bands
from tiling.errors import TilingError

# odc-stac pastes without resampling when the grids differ by less than this (pixels)
PASTE_TOLERANCE = 0.05
GDAL_ENV = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR", "GDAL_CACHEMAX": 64}
# GDAL sizes its block cache once, at first use, from GDAL_CACHEMAX (default: 5% of RAM); left at
# the default, the cache grows with the area read and peak memory with it. A user's own
# setting wins.
os.environ.setdefault("GDAL_CACHEMAX", "64")


@dataclass(frozen=True)
class Part:
    """One asset of one item: which file bands fill which output bands."""

    href: str
    indexes: tuple[int, ...]  # 1-based bands in the file
    bands: tuple[int, ...]  # 0-based positions in the (red, green, blue) output
    file_nodata: tuple[float | None, ...]


@dataclass(frozen=True)
class Placed:
    """An item placed on the grid: its pixel (0, 0) at grid pixel (row, col)."""

    item_id: str
    row: int
    col: int
    height: int
    width: int
    parts: tuple[Part, ...]


@dataclass(frozen=True)
class DirectReader:
    """Reads ``(band, y, x)`` windows of one date's mosaic on a geobox's pixel grid."""

    items: tuple[Placed, ...]
    shape: tuple[int, int]  # of the geobox, in pixels
    dtype: str
    nodata: tuple[float | None, ...]  # per output band, as odc-stac reports it
    token: str = field(default_factory=lambda: uuid.uuid4().hex)  # keys its open files

    @property
    def fill(self) -> tuple[float, ...]:
        """Value of pixels no item covers (odc-stac: nodata, NaN for floats, else 0)."""
        kind = np.dtype(self.dtype).kind
        return tuple((math.nan if kind == "f" else 0) if nd is None else nd for nd in self.nodata)

    def read(self, y0: int, x0: int, height: int, width: int) -> np.ndarray:
        """The mosaic in grid pixels ``[y0, y0 + height) x [x0, x0 + width)``."""
        out = np.empty((len(self.nodata), height, width), dtype=self.dtype)
        first = True  # the first item to touch the window is copied, later ones fill gaps
        for item in self.items:
            r0, c0 = max(y0, item.row), max(x0, item.col)
            r1 = min(y0 + height, item.row + item.height)
            c1 = min(x0 + width, item.col + item.width)
            if r1 <= r0 or c1 <= c0:
                continue
            if first and (r0, c0, r1, c1) != (y0, x0, y0 + height, x0 + width):
                self._fill(out)
            window = Window(c0 - item.col, r0 - item.row, c1 - c0, r1 - r0)
            for part in item.parts:
                data = _read(item.item_id, part, window, self.token)
                for i, band in enumerate(part.bands):
                    dst = out[band, r0 - y0 : r1 - y0, c0 - x0 : c1 - x0]
                    src = self._remap(data[i], part.file_nodata[i], band)
                    if first:
                        dst[...] = src
                    else:
                        np.copyto(dst, src, where=_is(dst, self.fill[band]))
            first = False
        if first:
            self._fill(out)
        return out

    def _fill(self, out: np.ndarray) -> None:
        for band, fill in enumerate(self.fill):
            out[band] = fill

    def _remap(self, src: np.ndarray, file_nodata, band: int) -> np.ndarray:
        """The file's nodata as odc-stac reports it (the catalog's, else NaN for floats)."""
        nodata = self.nodata[band]
        if nodata is None:
            nodata = math.nan if src.dtype.kind == "f" else file_nodata
        if nodata is not None and file_nodata is not None and not _same(file_nodata, nodata):
            src = np.where(_is(src, file_nodata), nodata, src).astype(src.dtype, copy=False)
        return src


def _is(data: np.ndarray, value: float) -> np.ndarray:
    return np.isnan(data) if isinstance(value, float) and math.isnan(value) else data == value


def _same(a: float, b: float) -> bool:
    both_nan = all(isinstance(v, float) and math.isnan(v) for v in (a, b))
    return both_nan or a == b


_open_files = threading.local()  # per thread: (reader token, href) -> open dataset
_MAX_OPEN = 16


def _dataset(token: str, href: str) -> rasterio.DatasetReader:
    """An open dataset for ``href``, kept per thread (and reader) across blocks: opening a file
    costs more than reading a block of it, and GDAL's cache keeps the blocks decoded at
    block edges. Closed when evicted or when the thread ends."""
    cache = getattr(_open_files, "cache", None)
    if cache is None:
        cache = _open_files.cache = OrderedDict()
    key = (token, href)
    src = cache.get(key)
    if src is None:
        with rasterio.Env(**GDAL_ENV):
            src = cache[key] = rasterio.open(href)
        while len(cache) > _MAX_OPEN:
            cache.popitem(last=False)[1].close()
    else:
        cache.move_to_end(key)
    return src


def _read(item_id: str, part: Part, window: Window, token: str) -> np.ndarray:
    try:
        return _dataset(token, part.href).read(list(part.indexes), window=window)
    except rasterio.errors.RasterioError as exc:
        dropped = _open_files.__dict__.get("cache", {}).pop((token, part.href), None)
        if dropped is not None:
            dropped.close()
        raise TilingError(
            f"item {item_id!r}: could not read {part.href}: {exc}. The file may be truncated "
            "or corrupt: fetch it again or leave the item out of the catalog."
        ) from exc


def direct_reader(
    items: Sequence[pystac.Item],
    geobox: GeoBox,
    *,
    patch_url: Callable[[str], str] | None = None,
) -> DirectReader | None:
    """A :class:`DirectReader` when every item is on ``geobox``'s pixel lattice, else None.

    Each item's files are opened once here for their grid, size and nodata.
    """
    grid = geobox.affine
    if grid.b or grid.d or not items:
        return None
    refs = rgb_bands(items[0])  # odc-stac takes the band names of the first item too
    dtypes: set = set()
    nodata: list[float | None] = [None] * len(refs)
    placed = []
    for item in items:
        by_asset: dict[str, list[tuple[int, int]]] = {}
        for position, ref in enumerate(refs):
            if ref.asset not in item.assets:
                return None
            by_asset.setdefault(ref.asset, []).append((ref.band, position))
        parts, spot = [], None
        for key, bands in by_asset.items():
            asset = item.assets[key]
            raster = asset.extra_fields.get("raster:bands") or []
            for band, position in bands:
                meta = raster[band - 1] if band <= len(raster) else {}
                dtypes.add(meta.get("data_type"))
                if item is items[0]:
                    nodata[position] = meta.get("nodata")
            href = patch_url(asset.href) if patch_url else asset.href
            where = _place(item.id, href, [b for b, _ in bands], geobox)
            if where is None or (spot is not None and where[:4] != spot):
                return None
            dtypes.add(where[5])
            spot = where[:4]
            indexes = tuple(b for b, _ in bands)
            parts.append(Part(href, indexes, tuple(p for _, p in bands), where[4]))
        placed.append(Placed(item.id, *spot, parts=tuple(parts)))
    if len(dtypes) != 1 or None in dtypes:  # odc-stac would cast: leave it to odc-stac
        return None
    return DirectReader(tuple(placed), tuple(geobox.shape), dtypes.pop(), tuple(nodata))


def _place(item_id: str, href: str, indexes: list[int], geobox: GeoBox):
    """``(row, col, height, width, file_nodata, dtype)`` of a file on ``geobox``'s lattice,
    or None."""
    grid = geobox.affine
    try:
        with rasterio.Env(**GDAL_ENV), rasterio.open(href) as src:
            t, crs, shape = src.transform, src.crs, (src.height, src.width)
            file_nodata = tuple(src.nodatavals[i - 1] for i in indexes)
            dtypes = {src.dtypes[i - 1] for i in indexes}
    except rasterio.errors.RasterioError as exc:
        raise TilingError(f"item {item_id!r}: could not open {href}: {exc}") from exc
    if crs is None or geobox.crs is None or geobox.crs != crs:
        return None
    if t.b or t.d or len(dtypes) != 1:
        return None
    if not (math.isclose(t.a, grid.a) and math.isclose(t.e, grid.e)):
        return None
    col, row = ~grid * (t.c, t.f)
    if max(abs(col - round(col)), abs(row - round(row))) > PASTE_TOLERANCE:
        return None
    return round(row), round(col), shape[0], shape[1], file_nodata, dtypes.pop()
