"""Reading an image pair for the model: PNG/JPEG or GeoTIFF, aligned or refused clearly."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from rasterio.warp import Resampling, reproject

from catalogs.errors import InputError

log = logging.getLogger(__name__)


class ImagePairError(InputError):
    """The two images cannot be used as a pair; the message names the files and the fix."""


def _read(path: Path) -> tuple[np.ndarray, rasterio.profiles.Profile]:
    if not path.exists():
        raise ImagePairError(f"{path}: no such file")
    try:
        with warnings.catch_warnings():  # plain PNG/JPEG have no georeferencing: expected
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                data = src.read()
                profile = src.profile
    except RasterioIOError as exc:
        raise ImagePairError(
            f"{path} is not an image GDAL can read (PNG, JPEG, GeoTIFF): {exc}"
        ) from None
    if data.shape[0] < 3:
        data = np.repeat(data[:1], 3, axis=0)  # grey → RGB
    data = data[:3]
    if data.dtype != np.uint8:
        lo, hi = np.percentile(data, (2, 98))
        data = np.clip((data.astype("float32") - lo) / max(hi - lo, 1e-6) * 255, 0, 255)
        data = data.astype(np.uint8)
        log.info("%s: %s data stretched to uint8 (2-98 %%)", path, profile["dtype"])
    return data, profile


def _georeferenced(profile) -> bool:
    return profile.get("crs") is not None and not profile["transform"].is_identity


def read_pair(before: str | Path, after: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Both images as ``(3, H, W)`` uint8 on one pixel grid.

    Georeferenced images (GeoTIFF) in different CRSs or on different grids are aligned: the
    after image is resampled onto the before image's grid. Plain images (PNG/JPEG) must have
    the same size; otherwise :class:`ImagePairError` says so and how to fix it.
    """
    b, pb = _read(Path(before))
    a, pa = _read(Path(after))
    if _georeferenced(pb) and _georeferenced(pa):
        same_grid = (
            pb["crs"] == pa["crs"]
            and pb["transform"].almost_equals(pa["transform"])
            and b.shape == a.shape
        )
        if not same_grid:
            log.info("aligning %s onto the grid of %s", after, before)
            aligned = np.zeros_like(b)
            reproject(
                a,
                aligned,
                src_transform=pa["transform"],
                src_crs=pa["crs"],
                dst_transform=pb["transform"],
                dst_crs=pb["crs"],
                resampling=Resampling.bilinear,
            )
            a = aligned
        return b, a
    if _georeferenced(pb) != _georeferenced(pa):
        raise ImagePairError(
            f"{before} and {after}: one is georeferenced and the other is not, so they cannot "
            "be aligned; give two GeoTIFFs or two plain images of the same size"
        )
    if b.shape != a.shape:
        raise ImagePairError(
            f"{before} is {b.shape[2]}x{b.shape[1]} but {after} is {a.shape[2]}x{a.shape[1]}; "
            "plain images must have the same size (crop or resample one, or use GeoTIFFs)"
        )
    return b, a
