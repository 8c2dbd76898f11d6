"""Lazy loading of one date's items onto the tile grid, and the stretch to uint8.

odc-stac does the heavy lifting: it mosaics the items of one date, picks the bands and
resamples onto the grid (the before date lands on its own native grid without resampling).
An after date on the same CRS and pixel size, merely offset by a fraction of a pixel (the usual
case for aerial imagery of one UTM zone), is read without resampling on its own pixel lattice and
shifted onto the grid by :class:`SubpixelShift`, several times faster than a general warp.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import odc.stac
import pystac
import xarray as xr
from affine import Affine
from odc.geo.geobox import GeoBox

from catalogs.items import item_crs, rgb_bands
from tiling.direct import PASTE_TOLERANCE, DirectReader, direct_reader

RGB = ("red", "green", "blue")


@dataclass(frozen=True)
class Stretch:
    """Linear stretch of one date's bands to uint8 ``1..255`` (0 stays nodata).

    ``method`` is ``"none"`` for data that is already uint8.
    """

    method: str
    low: tuple[float, ...] = ()
    high: tuple[float, ...] = ()
    percentiles: tuple[float, float] = (2.0, 98.0)
    source_dtype: str = "uint8"

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "low": list(self.low),
            "high": list(self.high),
            "percentiles": list(self.percentiles),
            "source_dtype": self.source_dtype,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Stretch:
        return cls(
            method=d["method"],
            low=tuple(d.get("low", ())),
            high=tuple(d.get("high", ())),
            percentiles=tuple(d.get("percentiles", (2.0, 98.0))),
            source_dtype=d.get("source_dtype", "uint8"),
        )

    def apply(self, data: np.ndarray, nodata_mask: np.ndarray) -> np.ndarray:
        """Map ``data`` (band, y, x) to uint8, writing 0 where ``nodata_mask`` (y, x) is set."""
        if self.method == "none":
            out = data.astype(np.uint8, copy=False)
        else:
            lo = np.asarray(self.low, dtype="float32")[:, None, None]
            hi = np.asarray(self.high, dtype="float32")[:, None, None]
            scaled = (data.astype("float32") - lo) / np.maximum(hi - lo, 1e-6) * 254.0 + 1.0
            out = np.clip(np.rint(scaled), 1, 255).astype(np.uint8)
        if nodata_mask.any():
            out = out.copy() if out is data else out
            out[:, nodata_mask] = 0
        return out


def band_names(items: Sequence[pystac.Item]) -> list[str]:
    """odc-stac band names for red, green, blue of these items (``asset`` or ``asset.N``)."""
    refs = rgb_bands(items[0])
    by_name = {r.common_name: r for r in refs}
    names = []
    for common in RGB:
        ref = by_name[common]
        n_bands = len(items[0].assets[ref.asset].extra_fields.get("eo:bands", []) or [None])
        raster = items[0].assets[ref.asset].extra_fields.get("raster:bands", [])
        n_bands = max(n_bands, len(raster))
        names.append(f"{ref.asset}.{ref.band}" if n_bands > 1 else ref.asset)
    return names


def load_date(
    items: Sequence[pystac.Item],
    geobox: GeoBox,
    *,
    chunk: int,
    resampling: str = "bilinear",
    patch_url: Callable[[str], str] | None = None,
) -> xr.DataArray:
    """Lazily load one date's items as a ``(band, y, x)`` dask-backed array on ``geobox``.

    Several items (a mosaic of one acquisition) are merged into one layer.
    """
    names = band_names(items)
    ds = odc.stac.load(
        list(items),
        bands=names,
        geobox=geobox,
        chunks={"y": chunk, "x": chunk},
        groupby=lambda *_: "mosaic",
        resampling=resampling,
        patch_url=patch_url,
        fail_on_error=True,
    )
    nodata = ds[names[0]].attrs.get("nodata")
    arr = ds[names].to_array("band").isel(time=0, drop=True).assign_coords(band=list(RGB))
    arr.attrs["nodata"] = nodata
    return arr


@dataclass(frozen=True)
class BlockRead:
    """A deferred direct read of one block (picklable: runs on any worker)."""

    reader: DirectReader
    y0: int
    x0: int
    height: int
    width: int

    def __call__(self) -> np.ndarray:
        return self.reader.read(self.y0, self.x0, self.height, self.width)


@dataclass(frozen=True)
class DateSource:
    """One date on the grid: a :class:`DirectReader` or else odc-stac's lazy array, read on
    ``shift.padded(geobox)`` when ``shift`` is set (windows are then one pixel larger)."""

    reader: DirectReader | None
    array: xr.DataArray | None
    shift: SubpixelShift | None
    nodata: float | None

    def block(self, y0: int, y1: int, x0: int, x1: int) -> BlockRead | object:
        """Grid pixels ``[y0, y1) x [x0, x1)`` (+1 with a shift), not read yet: a
        :class:`BlockRead` or a dask array."""
        pad = 1 if self.shift else 0
        if self.reader is not None:
            return BlockRead(self.reader, y0, x0, y1 - y0 + pad, x1 - x0 + pad)
        return self.array.data[:, y0 : y1 + pad, x0 : x1 + pad]


def open_date(
    items: Sequence[pystac.Item],
    geobox: GeoBox,
    *,
    chunk: int,
    resampling: str = "bilinear",
    patch_url: Callable[[str], str] | None = None,
    shift_ok: bool = True,
    direct: bool = True,
) -> DateSource:
    """How to read ``items`` onto ``geobox``: direct window reads when every item is on its
    pixel lattice (after a sub-pixel shift when ``shift_ok``), else odc-stac (lazily)."""
    shift = subpixel_shift(items, geobox) if shift_ok and resampling == "bilinear" else None
    box = shift.padded(geobox) if shift else geobox
    reader = direct_reader(items, box, patch_url=patch_url) if direct else None
    if reader is not None:
        return DateSource(reader, None, shift, reader.nodata[0])
    arr = load_date(items, box, chunk=chunk, resampling=resampling, patch_url=patch_url)
    return DateSource(None, arr, shift, arr.attrs.get("nodata"))


def read_all(source: DateSource) -> np.ndarray:
    """The whole of ``source``'s geobox, shifted onto the grid (eager)."""
    if source.reader is None:
        data = source.array.values
    else:
        data = source.reader.read(0, 0, *source.reader.shape)
    return source.shift.apply(data, source.nodata) if source.shift else data


@dataclass(frozen=True)
class SubpixelShift:
    """Bilinear resampling onto a grid offset from the source pixel lattice by ``(fx, fy)`` px.

    For a pure sub-pixel translation the bilinear warp is a fixed 2 x 2 weighted average of
    neighbouring source pixels. Read the source without resampling on :meth:`padded` (the grid
    moved onto the source lattice, one pixel larger) and :meth:`apply` gives what a bilinear warp
    onto the grid gives (GDAL's, as used by odc-stac): nodata neighbours are left out of the
    average, and a pixel whose nearest source pixel is nodata stays nodata. Rounding may differ
    by one count.
    """

    fx: float
    fy: float

    def padded(self, geobox: GeoBox) -> GeoBox:
        """The geobox to read the source on: ``geobox`` moved onto its lattice, +1 px each way."""
        h, w = geobox.shape
        affine = geobox.affine * Affine.translation(-self.fx, -self.fy)
        return GeoBox((h + 1, w + 1), affine, geobox.crs)

    def apply(self, data: np.ndarray, nodata: float | None) -> np.ndarray:
        """``(band, h + 1, w + 1)`` read on :meth:`padded` → ``(band, h, w)`` on the grid."""
        invalid = invalid_pixels(data, nodata)
        if invalid is None:
            out = self._interpolate(data.astype("float32"))
        else:
            ok = (~invalid).astype("float32")
            weight = self._interpolate(ok)
            out = self._interpolate(np.where(invalid, 0, data).astype("float32"))
            out /= np.maximum(weight, 1e-6)
            y, x = int(self.fy >= 0.5), int(self.fx >= 0.5)
            nearest = invalid[:, y : y + out.shape[1], x : x + out.shape[2]]
            out[nearest | (weight < 1e-5)] = nodata
        if data.dtype.kind in "iu":  # round half up, as GDAL does; a weighted mean stays in range
            out += 0.5
            np.floor(out, out=out)
        return out.astype(data.dtype)

    def _interpolate(self, d: np.ndarray) -> np.ndarray:
        """Bilinear interpolation at ``(fx, fy)`` past each pixel: along x, then along y."""
        fx, fy = np.float32(self.fx), np.float32(self.fy)
        across = d[:, :, :-1] * (1 - fx) + d[:, :, 1:] * fx
        return across[:, :-1] * (1 - fy) + across[:, 1:] * fy


def invalid_pixels(data: np.ndarray, nodata: float | None) -> np.ndarray | None:
    """Per-band nodata mask, or None when every pixel is valid."""
    invalid = np.isnan(data) if data.dtype.kind == "f" else None
    if nodata is not None and not (isinstance(nodata, float) and math.isnan(nodata)):
        is_nodata = data == nodata
        invalid = is_nodata if invalid is None else invalid | is_nodata
    return invalid if invalid is not None and invalid.any() else None


def subpixel_shift(items: Sequence[pystac.Item], geobox: GeoBox) -> SubpixelShift | None:
    """The shift that brings ``items`` onto ``geobox`` when it is a sub-pixel translation.

    None when a general warp is needed (another CRS, pixel size or rotation, items on different
    lattices, no ``proj:transform``) or none at all (odc-stac reads it without resampling).
    """
    grid = geobox.affine
    if grid.b or grid.d:
        return None
    offsets = set()
    for item in items:
        assets = [item.assets[name] for name in {ref.asset for ref in rgb_bands(item)}]
        transforms = [a.extra_fields.get("proj:transform") for a in assets]
        transforms = [t or item.properties.get("proj:transform") for t in transforms]
        transforms = [Affine(*t[:6]) for t in transforms if t]
        crs = item_crs(item)
        if not transforms or crs is None or geobox.crs != crs:
            return None
        for t in transforms:
            if t.b or t.d or not (math.isclose(t.a, grid.a) and math.isclose(t.e, grid.e)):
                return None
            col, row = ~t * (grid.c, grid.f)
            offsets.add((round(col % 1.0, 6) % 1.0, round(row % 1.0, 6) % 1.0))
    if len(offsets) != 1:
        return None
    ((fx, fy),) = offsets
    near = [min(f, 1.0 - f) <= PASTE_TOLERANCE for f in (fx, fy)]
    return None if all(near) else SubpixelShift(fx, fy)


def compute_stretch(
    items: Sequence[pystac.Item],
    geobox: GeoBox,
    *,
    percentiles: tuple[float, float] = (2.0, 98.0),
    patch_url: Callable[[str], str] | None = None,
) -> Stretch:
    """Choose the stretch for one date: none for uint8, else per-band percentiles.

    Percentiles come from a coarse read (about 512 px across) so this costs little.
    """
    names = band_names(items)
    meta = odc.stac.load(list(items), bands=names, geobox=geobox, chunks={}, groupby=lambda *_: "m")
    dtype = str(meta[names[0]].dtype)
    if dtype == "uint8":
        return Stretch(method="none", source_dtype=dtype)
    factor = max(1, max(geobox.shape) // 512)
    coarse = geobox.zoom_out(factor)
    ds = odc.stac.load(
        list(items), bands=names, geobox=coarse, groupby=lambda *_: "m", patch_url=patch_url
    )
    low, high = [], []
    for name in names:
        band = ds[name].values[0].astype("float64")
        nodata = ds[name].attrs.get("nodata")
        valid = band[np.isfinite(band)]
        if nodata is not None:
            valid = valid[valid != nodata]
        if valid.size == 0:
            low.append(0.0)
            high.append(1.0)
            continue
        lo, hi = np.percentile(valid, percentiles)
        low.append(float(lo))
        high.append(float(hi if hi > lo else lo + 1.0))
    return Stretch(
        method="percentile-linear",
        low=tuple(low),
        high=tuple(high),
        percentiles=percentiles,
        source_dtype=dtype,
    )
