"""Rendering: the pixels that differ between dates are exactly the truth objects (and the shadows
of changed buildings) when both dates share one look."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine
from rasterio import features
from shapely.geometry import box

from catalogs.synth._geom import geojson, shadow
from catalogs.synth._render import Canvas, Look, Shared, render
from catalogs.synth._sensor import expose, sample
from catalogs.synth._truth import tile_boxes
from catalogs.synth._world import build_world, truth_records

X0, Y0, SIZE = 500_000.0, 3_750_000.0, 350.0
LOOK = Look(
    sun_azimuth=130.0,
    sun_elevation=50.0,
    greenness=0.5,
    field_phase=0.3,
    gains=(1.0, 1.0, 1.0),
    haze=0.05,
    haze_gradient=(0.02, -0.01),
    blur_sigma=0.6,
    noise_dn=2.0,
)


@pytest.fixture(scope="module")
def scene():
    n = int(SIZE / 0.5)
    ext = (X0 - 20, Y0 - SIZE - 20, X0 + SIZE + 20, Y0 + 20)
    core = box(X0, Y0 - SIZE, X0 + SIZE, Y0)
    tiles = tile_boxes(Affine(0.5, 0, X0, 0, -0.5, Y0), n)
    world = build_world(ext, core, core.buffer(-15), tiles, np.random.default_rng(7))
    canvas = Canvas(ext[0], ext[3], (int((ext[3] - ext[1]) / 0.5), int((ext[2] - ext[0]) / 0.5)))
    shared = Shared(world, canvas, np.random.default_rng(8))
    before = render(world, canvas, shared, "before", LOOK, seed=7)
    after = render(world, canvas, shared, "after", LOOK, seed=7)
    return world, canvas, before, after


def _mask(geoms, canvas) -> np.ndarray:
    if not geoms:
        return np.zeros(canvas.shape, bool)
    shapes = [(geojson(g), 1) for g in geoms]
    return features.rasterize(shapes, out_shape=canvas.shape, transform=canvas.transform) > 0


def test_render_is_finite_and_in_display_range(scene):
    _, canvas, before, _ = scene
    assert before.shape == (3, *canvas.shape) and before.dtype == np.float32
    assert np.isfinite(before).all() and before.min() > 0.02 and before.max() < 1.2


def test_only_changed_objects_and_their_shadows_differ(scene):
    world, canvas, before, after = scene
    recs = truth_records(world)
    changed = [b for b in world.buildings if b.state != "existing"]
    shadows = [s for b in changed for s in shadow(b, LOOK.shadow_vec)]
    allowed = _mask([r["geometry"] for r in recs] + shadows, canvas)
    differs = (before != after).any(axis=0)
    assert differs.any()
    assert not (differs & ~allowed).any(), "pixels changed outside the truth polygons"


def test_every_truth_object_changes_its_pixels(scene):
    world, canvas, before, after = scene
    differs = (before != after).any(axis=0)
    for rec in truth_records(world):
        inside = _mask([rec["geometry"]], canvas)
        assert inside.sum() > 10, rec["object_id"]
        assert differs[inside].mean() > 0.95, rec["object_id"]


def test_shadows_follow_the_sun(scene):
    world, canvas, before, _ = scene
    lum = before.mean(axis=0)
    b = next(
        b
        for b in world.buildings
        if b.state == "existing"
        and b.height > 5
        and b.footprint.area > 100
        and box(*canvas_bounds(canvas)).contains(b.footprint)
    )
    vec = LOOK.shadow_vec
    ground = shadow(b, vec)[0].difference(b.footprint.buffer(1.0))
    opposite = shadow(b, (-vec[0], -vec[1]))[0].difference(b.footprint.buffer(1.0))
    dark = lum[_mask([ground], canvas)].mean()
    lit = lum[_mask([opposite], canvas)].mean()
    assert dark < 0.8 * lit


def canvas_bounds(canvas):
    return (
        canvas.x0,
        canvas.y0 - canvas.shape[0] * 0.5,
        canvas.x0 + canvas.shape[1] * 0.5,
        canvas.y0,
    )


def test_sample_integer_offset_is_a_view_and_fractional_is_cubic():
    img = np.arange(3 * 20 * 30, dtype=np.float32).reshape(3, 20, 30)
    view = sample(img, 2.0, 3.0, (10, 12))
    assert np.shares_memory(view, img) and np.array_equal(view, img[:, 2:12, 3:15])
    half = sample(img, 2.5, 3.25, (10, 12))
    # a linear ramp is reproduced exactly by Catmull-Rom interpolation
    assert np.allclose(half, img[:, 2:12, 3:15] + 0.5 * 30 + 0.25)
    ramp2 = np.add.outer(np.arange(20.0) ** 2, np.zeros(30)).astype(np.float32)[None]
    q = sample(ramp2, 2.5, 3.0, (10, 12))  # a quadratic is reproduced up to a constant
    assert np.allclose(np.diff(q[0, :, 0], 2), 2.0, atol=1e-3)
    with pytest.raises(ValueError):
        sample(img, 15.0, 0.0, (10, 12))
    with pytest.raises(ValueError):
        sample(img, 0.5, 3.0, (10, 12))


@pytest.mark.parametrize("dtype,top", [("uint8", 255), ("uint16", 5000)])  # white = 0.5 reflectance
def test_expose_quantises_without_zeros(dtype, top):
    img = np.zeros((3, 64, 64), np.float32)
    img[:, :, 32:] = 1.5  # saturated half
    out = expose(img, LOOK, np.random.default_rng(0), dtype)
    assert out.dtype == np.dtype(dtype)
    assert out.min() >= 1 and out.max() <= top
    assert (out[:, :, -8:] >= 0.97 * top).mean() > 0.5  # highlights roll off towards the top
