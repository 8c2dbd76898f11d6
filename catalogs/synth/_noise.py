"""Seeded noise fields for the synthetic-region renderer.

Smooth noise is made by bicubic upsampling of a small random grid with Pillow (C speed, one pass per
field however many octaves), so a 4000 x 4000 field costs about a quarter of a second.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def _upsample(grid: np.ndarray, shape: tuple[int, int], cell_px: float) -> np.ndarray:
    """Bicubic upsampling of ``grid`` so that one grid cell spans ``cell_px`` output pixels."""
    h, w = shape
    box = (1.0, 1.0, 1.0 + w / cell_px, 1.0 + h / cell_px)
    img = Image.fromarray(np.ascontiguousarray(grid, dtype=np.float32), mode="F")
    out = img.resize((w, h), Image.Resampling.BICUBIC, box=box)
    return np.array(out, dtype=np.float32)


def fbm(
    shape: tuple[int, int],
    rng: np.random.Generator,
    *,
    cell_px: float,
    octaves: int = 4,
    gain: float = 0.5,
) -> np.ndarray:
    """Fractal (multi-octave) value noise, roughly zero-mean with unit standard deviation.

    Octave ``k`` has cells of ``cell_px / 2**k`` pixels. All octaves are summed on the finest grid
    (small) and then upsampled once, which keeps the cost to one full-size resize.

    Args:
        shape: Output (rows, cols).
        rng: Random generator (consumed).
        cell_px: Cell size of the coarsest octave, in output pixels.
        octaves: Number of octaves.
        gain: Amplitude ratio between successive octaves.
    """
    fine_cell = max(cell_px / 2 ** (octaves - 1), 1.0)
    gh = int(np.ceil(shape[0] / fine_cell)) + 4
    gw = int(np.ceil(shape[1] / fine_cell)) + 4
    acc = np.zeros((gh, gw), np.float32)
    amp, total = 1.0, 0.0
    for k in range(octaves):
        cell = max(cell_px / 2**k, fine_cell)
        ratio = cell / fine_cell
        ch = int(np.ceil(gh / ratio)) + 4
        cw = int(np.ceil(gw / ratio)) + 4
        coarse = rng.standard_normal((ch, cw), dtype=np.float32)
        coarse = _upsample(coarse, (gh, gw), ratio) if ratio > 1.0 else coarse[:gh, :gw]
        acc += amp * coarse[:gh, :gw]
        total += amp * amp
        amp *= gain
    acc /= np.float32(np.sqrt(total))
    out = _upsample(acc, shape, fine_cell) if fine_cell > 1.0 else acc[: shape[0], : shape[1]]
    # Bicubic upsampling shrinks the variance of white noise; renormalise to unit std.
    std = float(out[:: max(1, shape[0] // 256), :: max(1, shape[1] // 256)].std()) or 1.0
    out *= np.float32(1.0 / std)
    return out


def grain(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Per-pixel noise in [-1, 1] (triangular distribution), cheap to draw for large images."""
    n = shape[0] * shape[1]
    a = np.frombuffer(rng.bytes(n), np.uint8).astype(np.float32)
    a += np.frombuffer(rng.bytes(n), np.uint8)
    a -= 255.0
    a *= np.float32(1.0 / 255.0)
    return a.reshape(shape)


def smoothstep(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Hermite step from 0 at ``lo`` to 1 at ``hi`` (float32, new array)."""
    t = np.clip((x - np.float32(lo)) * np.float32(1.0 / (hi - lo)), 0.0, 1.0).astype(np.float32)
    return t * t * (np.float32(3.0) - np.float32(2.0) * t)
