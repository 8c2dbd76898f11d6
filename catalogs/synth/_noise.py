"""Seeded noise fields for the synthetic-region renderer.

Smooth noise is made by bicubic upsampling of a small random grid, as two sparse-matrix products
(one per axis), with all octaves summed on the small grid first: one full-size pass per field.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse


def _weights(n_out: int, n_in: int, start: float, step: float, cubic: bool) -> sparse.csr_matrix:
    """Resampling matrix: output pixel i takes input position ``start + (i + 0.5) * step`` (pixel
    edges at integers, like Pillow's ``box``) with Catmull-Rom or linear weights, edges clamped."""
    p = start + (np.arange(n_out) + 0.5) * step - 0.5
    i0 = np.floor(p).astype(np.int64)
    t = p - i0
    if cubic:
        t2, t3 = t * t, t * t * t
        w = np.stack(
            [
                -0.5 * t3 + t2 - 0.5 * t,
                1.5 * t3 - 2.5 * t2 + 1,
                -1.5 * t3 + 2 * t2 + 0.5 * t,
                0.5 * t3 - 0.5 * t2,
            ],
            axis=1,
        )
        taps = np.arange(-1, 3)
    else:
        w = np.stack([1 - t, t], axis=1)
        taps = np.arange(0, 2)
    cols = np.clip(i0[:, None] + taps[None, :], 0, n_in - 1)
    rows = np.repeat(np.arange(n_out), taps.size)
    m = sparse.csr_matrix((w.ravel().astype(np.float32), (rows, cols.ravel())), shape=(n_out, n_in))
    m.sum_duplicates()
    return m


def resample(
    grid: np.ndarray,
    shape: tuple[int, int],
    origin: tuple[float, float],
    step: float,
    *,
    cubic: bool = True,
) -> np.ndarray:
    """Resample a small 2-D grid to ``shape``: output pixel (i, j) takes grid position
    ``origin + ((i, j) + 0.5) * step`` (row, col; pixel edges at integers)."""
    g = np.ascontiguousarray(grid, dtype=np.float32)
    wr = _weights(shape[0], g.shape[0], origin[0], step, cubic)
    wc = _weights(shape[1], g.shape[1], origin[1], step, cubic)
    cols = np.ascontiguousarray((wc @ g.T).T)  # (grid rows, out cols)
    out = np.empty(shape, np.float32)
    step_rows = 256  # row blocks keep temporaries small (no page faults on big fresh arrays)
    for r0 in range(0, shape[0], step_rows):
        out[r0 : r0 + step_rows] = wr[r0 : r0 + step_rows] @ cols
    return out


def _upsample(grid: np.ndarray, shape: tuple[int, int], cell_px: float) -> np.ndarray:
    """Bicubic upsampling of ``grid`` so that one grid cell spans ``cell_px`` output pixels."""
    return resample(grid, shape, (1.0, 1.0), 1.0 / cell_px)


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


def grain(
    shape: tuple[int, int], rng: np.random.Generator, out: np.ndarray | None = None
) -> np.ndarray:
    """Per-pixel uniform noise in [-1, 1) (std 0.577), optionally written into ``out``."""
    a = rng.random(shape, dtype=np.float32, out=out)
    a *= np.float32(2.0)
    a -= np.float32(1.0)
    return a


def smoothstep(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Hermite step from 0 at ``lo`` to 1 at ``hi`` (float32, new array)."""
    return smoothstep_(np.array(x, np.float32), lo, hi, np.empty(np.shape(x), np.float32))


def smoothstep_(x: np.ndarray, lo: float, hi: float, tmp: np.ndarray) -> np.ndarray:
    """In-place :func:`smoothstep` of float32 ``x`` using ``tmp`` as scratch; returns ``x``."""
    x -= np.float32(lo)
    x *= np.float32(1.0 / (hi - lo))
    np.clip(x, 0.0, 1.0, out=x)
    np.multiply(x, np.float32(-2.0), out=tmp)
    tmp += np.float32(3.0)
    x *= x
    x *= tmp
    return x
