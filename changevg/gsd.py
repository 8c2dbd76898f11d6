"""Ground sample distance (GSD): the pixel size a model was trained at, and resampling to it.

A change model learns object sizes in pixels; fed imagery at another pixel size it sees
buildings two or three times too big or too small (WHU-CD is 0.3 m, NAIP 0.6 m, Sentinel-2
10 m; the shipped default was trained at 0.5 m). Images are therefore resampled to the model's
GSD before inference, and predicted masks resampled back onto the input's pixel grid.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from catalogs.errors import InputError

__all__ = ["DEFAULT_GSD", "check_gsd", "resample_image", "resample_mask", "scaled_size"]

DEFAULT_GSD = 0.5  # m; the GSD of this project's synthetic regions and of the shipped default


def check_gsd(value: float | str, *, name: str = "gsd") -> float:
    """A GSD in metres as a positive finite float; :class:`InputError` naming ``name`` otherwise."""
    try:
        gsd = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number of metres per pixel, not {value!r}") from None
    if not math.isfinite(gsd) or gsd <= 0:
        raise InputError(f"{name} must be a positive number of metres per pixel, not {value!r}")
    return gsd


def scaled_size(size: tuple[int, int], src_gsd: float, dst_gsd: float) -> tuple[int, int]:
    """``(height, width)`` of a ``size`` image at ``src_gsd`` once resampled to ``dst_gsd``."""
    scale = src_gsd / dst_gsd
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def resample_image(image: np.ndarray, src_gsd: float, dst_gsd: float) -> np.ndarray:
    """A ``(3, H, W)`` uint8 image resampled from ``src_gsd`` to ``dst_gsd`` (area-correct).

    Downsampling uses a box filter (every source pixel contributes, as GDAL's ``average``);
    upsampling is bilinear. Equal GSDs return the image unchanged.
    """
    if math.isclose(src_gsd, dst_gsd, rel_tol=1e-6):
        return image
    h, w = scaled_size(image.shape[-2:], src_gsd, dst_gsd)
    method = Image.Resampling.BOX if dst_gsd > src_gsd else Image.Resampling.BILINEAR
    pil = Image.fromarray(np.moveaxis(image, 0, -1))
    return np.moveaxis(np.asarray(pil.resize((w, h), method)), -1, 0).copy()


def resample_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A class mask (``(H, W)`` uint8) put onto a ``(height, width)`` grid by nearest neighbour."""
    if mask.shape == tuple(size):
        return mask
    pil = Image.fromarray(mask)
    return np.asarray(pil.resize((size[1], size[0]), Image.Resampling.NEAREST)).copy()
