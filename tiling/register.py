"""Measuring the residual shift between the two dates (co-registration check).

When the items' geotransforms describe the scenes correctly, resampling the after date onto the
before grid already aligns them and the measured shift is ~0. When they do not, the shift is
measured here by phase correlation with sub-pixel refinement (upsampled DFT, after
Guizar-Sicairos et al., 2008) on high-passed grey images, so illumination and colour changes
between dates matter little.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def _grey_highpass(rgb: np.ndarray) -> np.ndarray:
    grey = rgb.astype("float32").mean(axis=0)
    return grey - ndimage.gaussian_filter(grey, 4.0)


def _upsampled_dft(data: np.ndarray, size: int, factor: int, offset: tuple[float, float]):
    """DFT of ``data`` upsampled by ``factor`` in a ``size``² window around ``offset``."""
    rows, cols = data.shape
    col_kernel = np.exp(
        (-2j * np.pi / (cols * factor))
        * (np.fft.ifftshift(np.arange(cols))[:, None] - cols // 2)
        * (np.arange(size) - offset[1])[None, :]
    )
    row_kernel = np.exp(
        (-2j * np.pi / (rows * factor))
        * (np.arange(size) - offset[0])[:, None]
        * (np.fft.ifftshift(np.arange(rows))[None, :] - rows // 2)
    )
    return row_kernel @ data @ col_kernel


def measure_shift(
    before: np.ndarray,
    after: np.ndarray,
    *,
    valid: np.ndarray | None = None,
    upsample: int = 20,
) -> tuple[float, float]:
    """Shift ``(dx, dy)`` in pixels of the after image's content relative to the before image.

    A feature at pixel ``(x, y)`` in ``before`` appears at ``(x + dx, y + dy)`` in ``after``.

    Args:
        before: ``(band, y, x)`` image of the first date.
        after: ``(band, y, x)`` image of the second date on the same grid.
        valid: Optional ``(y, x)`` mask of pixels valid in both dates; others are zeroed.
        upsample: Sub-pixel precision is ``1 / upsample`` pixel.
    """
    a = _grey_highpass(before)
    b = _grey_highpass(after)
    window = np.outer(np.hanning(a.shape[0]), np.hanning(a.shape[1])).astype("float32")
    if valid is not None:
        # taper to zero well inside the valid area: a hard mask edge, shared by both dates,
        # would pull the peak towards zero shift
        inner = ndimage.binary_erosion(valid, iterations=12)
        window = window * ndimage.gaussian_filter(inner.astype("float32"), 4.0)
    fa = np.fft.fft2(a * window)
    fb = np.fft.fft2(b * window)
    cross = fb * fa.conj()
    # partial whitening: sharper peak than plain correlation, less noise than pure phase
    cross /= np.maximum(np.abs(cross), 1e-9) ** 0.5
    corr = np.fft.ifft2(cross).real
    peak = np.array(np.unravel_index(np.argmax(corr), corr.shape), dtype="float64")
    shape = np.array(corr.shape)
    peak = np.where(peak > shape // 2, peak - shape, peak)
    # refine around the integer peak with a 1.5 px window upsampled by `upsample`
    size = int(np.ceil(upsample * 1.5))
    centre = size // 2
    offset = tuple(centre - peak * upsample)
    up = _upsampled_dft(cross.conj(), size, upsample, offset).conj()
    fine = np.array(np.unravel_index(np.argmax(np.abs(up)), up.shape), dtype="float64")
    dy, dx = peak + (fine - centre) / upsample
    return float(dx), float(dy)
