"""Noise fields and resampling used by the synthetic-region renderer."""

from __future__ import annotations

import numpy as np
import pytest

from catalogs.synth._noise import fbm, grain, resample, smoothstep, smoothstep_


def test_fbm_is_seeded_zero_mean_unit_std():
    a = fbm((300, 400), np.random.default_rng(1), cell_px=20, octaves=3)
    b = fbm((300, 400), np.random.default_rng(1), cell_px=20, octaves=3)
    c = fbm((300, 400), np.random.default_rng(2), cell_px=20, octaves=3)
    assert a.shape == (300, 400) and a.dtype == np.float32
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert abs(float(a.mean())) < 0.3 and 0.7 < float(a.std()) < 1.3


def test_fbm_is_smooth_at_its_cell_scale():
    a = fbm((256, 256), np.random.default_rng(0), cell_px=32, octaves=1)
    step = np.abs(np.diff(a, axis=1)).mean()
    assert step < 0.2 * a.std()  # neighbouring pixels are strongly correlated


def test_grain_range_and_out_buffer():
    buf = np.empty((50, 60), np.float32)
    g = grain((50, 60), np.random.default_rng(0), out=buf)
    assert g is buf and g.min() >= -1.0 and g.max() < 1.0
    assert abs(float(g.mean())) < 0.05


def test_resample_linear_reproduces_a_ramp():
    grid = np.add.outer(np.arange(10.0), 2 * np.arange(12.0)).astype(np.float32)
    out = resample(grid, (40, 48), (0.0, 0.0), 0.25, cubic=False)
    # output pixel (i, j) samples grid position (i + 0.5) * 0.25 - 0.5 in pixel-centre terms
    r = (np.arange(40) + 0.5) * 0.25 - 0.5
    c = (np.arange(48) + 0.5) * 0.25 - 0.5
    expect = np.add.outer(np.clip(r, 0, 9), 2 * np.clip(c, 0, 11))
    assert np.allclose(out, expect, atol=1e-4)


def test_resample_cubic_interpolates_grid_points():
    grid = np.random.default_rng(3).standard_normal((8, 8)).astype(np.float32)
    out = resample(grid, (8, 8), (0.0, 0.0), 1.0, cubic=True)
    assert np.allclose(out, grid, atol=1e-5)


@pytest.mark.parametrize("lo,hi", [(0.0, 1.0), (-2.0, 3.0)])
def test_smoothstep_bounds_and_in_place_version(lo, hi):
    x = np.linspace(lo - 1, hi + 1, 101, dtype=np.float32)
    y = smoothstep(x, lo, hi)
    assert y.min() == 0.0 and y.max() == pytest.approx(1.0)
    assert np.all(np.diff(y) >= -1e-7)
    z = x.copy()
    assert np.allclose(smoothstep_(z, lo, hi, np.empty_like(z)), y)
