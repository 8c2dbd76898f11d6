"""From the rendered canvas to sensor pixels: resampling onto a grid, blur, atmosphere, noise and
quantisation to uint8 display counts or uint16 surface reflectance."""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage, sparse

from ._noise import grain
from ._scene import Look

HAZE_RGB = np.array([0.74, 0.77, 0.82], np.float32)
REFLECTANCE_SCALE = 10000.0


def _catmull_rom(f: float) -> np.ndarray:
    """Weights of taps -1, 0, 1, 2 for a fractional position ``f`` in [0, 1)."""
    f2, f3 = f * f, f * f * f
    return np.array(
        [
            -0.5 * f3 + f2 - 0.5 * f,
            1.5 * f3 - 2.5 * f2 + 1.0,
            -1.5 * f3 + 2.0 * f2 + 0.5 * f,
            0.5 * f3 - 0.5 * f2,
        ],
        np.float32,
    )


def sample(img: np.ndarray, row_off: float, col_off: float, shape: tuple[int, int]) -> np.ndarray:
    """Bicubic (Catmull-Rom) sample of ``img`` (bands, rows, cols) on a shifted grid.

    Output pixel (i, j) takes the value at canvas pixel position (row_off + i, col_off + j), pixel
    centres at integer positions; integer offsets return a view without interpolation. Cubic
    rather than bilinear keeps the phase of fine detail, so sub-pixel shifts stay measurable.
    """
    h, w = shape
    r0, c0 = math.floor(row_off), math.floor(col_off)
    fr, fc = row_off - r0, col_off - c0
    if r0 < 1 or c0 < 1 or r0 + h + 2 > img.shape[1] or c0 + w + 2 > img.shape[2]:
        raise ValueError("sampling grid falls outside the canvas")
    if fr == 0.0 and fc == 0.0:
        return img[:, r0 : r0 + h, c0 : c0 + w]
    wr, wc = _catmull_rom(fr), _catmull_rom(fc)
    out = np.empty((img.shape[0], h, w), np.float32)
    tmp = np.empty((h + 3, w), np.float32)
    part = np.empty((h + 3, w), np.float32)
    for b in range(img.shape[0]):
        rows = img[b, r0 - 1 : r0 + h + 2]
        np.multiply(rows[:, c0 - 1 : c0 - 1 + w], wc[0], out=tmp)
        for k in range(1, 4):
            np.multiply(rows[:, c0 - 1 + k : c0 - 1 + k + w], wc[k], out=part)
            tmp += part
        np.multiply(tmp[0:h], wr[0], out=out[b])
        for k in range(1, 4):
            np.multiply(tmp[k : k + h], wr[k], out=part[:h])
            out[b] += part[:h]
    return out


def _taps(pos: np.ndarray, size: int) -> sparse.csr_matrix:
    """Catmull-Rom weights from canvas positions ``pos`` (pixel centres at integers) as a sparse
    (len(pos), size) matrix; taps beyond either end use the edge pixel."""
    base = np.floor(pos).astype(np.int64)
    f = (pos - base).astype(np.float32)
    f2, f3 = f * f, f * f * f
    w = np.stack(
        [
            -0.5 * f3 + f2 - 0.5 * f,
            1.5 * f3 - 2.5 * f2 + 1.0,
            -1.5 * f3 + 2.0 * f2 + 0.5 * f,
            0.5 * f3 - 0.5 * f2,
        ],
        axis=1,
    )
    cols = np.clip(base[:, None] + np.arange(-1, 3)[None, :], 0, size - 1)  # edges repeat
    rows = np.repeat(np.arange(pos.size), 4)
    return sparse.csr_matrix((w.ravel(), (rows, cols.ravel())), shape=(pos.size, size))


def sample_scaled(
    img: np.ndarray, row_off: float, col_off: float, shape: tuple[int, int], scale: float
) -> np.ndarray:
    """Sample ``img`` on a grid of pixels ``scale`` canvas pixels wide (another GSD).

    The output grid's top-left corner is at canvas position (row_off - 0.5, col_off - 0.5), so
    output pixel (i, j) is centred at (row_off + scale * (i + 0.5) - 0.5, ...). ``scale`` 1 is
    :func:`sample`. Coarser grids are first smoothed by the extra area a bigger pixel integrates
    (a box of ``scale`` canvas pixels, as a Gaussian of the same variance), so they do not alias;
    finer grids interpolate (they carry no detail finer than the canvas). Filter taps that
    would fall off the canvas (very coarse grids at its border) repeat its edge pixels.
    """
    if scale == 1.0:
        return sample(img, row_off, col_off, shape)
    h, w = shape
    rpos = row_off + scale * (np.arange(h) + 0.5) - 0.5
    cpos = col_off + scale * (np.arange(w) + 0.5) - 0.5
    if rpos[0] < 0 or cpos[0] < 0 or rpos[-1] > img.shape[1] - 1 or cpos[-1] > img.shape[2] - 1:
        raise ValueError("sampling grid falls outside the canvas")
    pad = 3 + int(math.ceil(2 * scale))
    r0, c0 = max(math.floor(rpos[0]) - pad, 0), max(math.floor(cpos[0]) - pad, 0)
    r1 = min(math.ceil(rpos[-1]) + pad, img.shape[1])
    c1 = min(math.ceil(cpos[-1]) + pad, img.shape[2])
    wr, wc = _taps(rpos - r0, r1 - r0), _taps(cpos - c0, c1 - c0).T.tocsr()
    sigma = math.sqrt((scale * scale - 1.0) / 12.0) if scale > 1.0 else 0.0
    out = np.empty((img.shape[0], h, w), np.float32)
    for b in range(img.shape[0]):
        band = img[b, r0:r1, c0:c1]
        if sigma > 0:
            band = ndimage.gaussian_filter(band, sigma, mode="nearest", truncate=3.0)
        out[b] = (wc.T @ (wr @ band).T).T
    return out


def _highlight_knee(lin: np.ndarray, knee: float = 0.86) -> None:
    """Roll off highlights like a camera: pixels whose brightest band exceeds ``knee`` are scaled
    (all bands alike, so white roofs stay neutral instead of clipping to a colour cast)."""
    top = lin.max(axis=0).ravel()
    idx = np.flatnonzero(top > knee)
    if not idx.size:
        return
    m = top[idx]
    scale = (knee + (1.0 - knee) * np.tanh((m - knee) / (1.0 - knee))) / m
    flat = lin.reshape(lin.shape[0], -1)
    for b in range(lin.shape[0]):
        flat[b, idx] *= scale


def expose(img: np.ndarray, look: Look, rng: np.random.Generator, dtype: str) -> np.ndarray:
    """Optics blur, illumination and haze, sensor noise and quantisation of one scene."""
    bands, h, w = img.shape
    yy = np.linspace(-0.5, 0.5, h, dtype=np.float32)[:, None]
    xx = np.linspace(-0.5, 0.5, w, dtype=np.float32)[None, :]
    haze = np.float32(look.haze) + np.float32(look.haze_gradient[0]) * xx
    haze = haze + np.float32(look.haze_gradient[1]) * yy
    noise_scale = np.float32(look.noise_dn / 255.0 / 0.577)
    lin = np.empty((bands, h, w), np.float32)
    tmp = np.empty((h, w), np.float32)
    for b in range(bands):
        band = lin[b]
        ndimage.gaussian_filter(img[b], look.blur_sigma, output=band, mode="nearest", truncate=3.0)
        band *= np.float32(look.gains[b])
        np.subtract(np.float32(HAZE_RGB[b]), band, out=tmp)  # haze: band += haze * (HAZE - band)
        tmp *= haze
        band += tmp
    _highlight_knee(lin)
    out = np.empty((bands, h, w), np.uint8 if dtype == "uint8" else np.uint16)
    for b in range(bands):
        band = lin[b]
        grain((h, w), rng, out=tmp)
        tmp *= noise_scale
        band += tmp
        if dtype == "uint8":
            band *= np.float32(255.0)
            band += np.float32(0.5)
            np.clip(band, 1.0, 255.0, out=band)
        else:
            np.clip(band, 0.0, 1.0, out=band)
            band **= np.float32(2.2)
            band *= np.float32(0.5 * REFLECTANCE_SCALE)
            band += np.float32(0.5)
            np.clip(band, 1.0, REFLECTANCE_SCALE, out=band)
        out[b] = band
    return out
