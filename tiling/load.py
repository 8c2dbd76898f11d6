"""Lazy loading of one date's items onto the tile grid, and the stretch to uint8.

odc-stac does the heavy lifting: it mosaics the items of one date, picks the bands and
resamples onto the grid (the before date lands on its own native grid without resampling).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import odc.stac
import pystac
import xarray as xr
from odc.geo.geobox import GeoBox

from catalogs.items import rgb_bands

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
