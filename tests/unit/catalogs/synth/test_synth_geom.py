"""Shapes, roof facets, shadows and sun position of the synthetic world."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from shapely.geometry import LineString

from catalogs.synth._geom import (
    Building,
    Road,
    dashed,
    facets,
    geojson,
    rect,
    shadow,
    sun_position,
    walk_curve,
)


def _building(roof: str, parts=None) -> Building:
    parts = parts or [(100.0, 200.0, 0.4, 16.0, 10.0)]
    return Building(1, parts, roof, (0.5, 0.5, 0.5), 6.0, math.radians(30), "existing")


def test_rect_has_size_and_orientation():
    r = rect(10.0, 20.0, math.pi / 2, 8.0, 4.0)
    assert r.area == pytest.approx(32.0)
    minx, miny, maxx, maxy = r.bounds
    assert maxy - miny == pytest.approx(8.0) and maxx - minx == pytest.approx(4.0)


@pytest.mark.parametrize("roof", ["flat", "gable", "hip"])
def test_facets_tile_the_footprint(roof):
    b = _building(roof)
    polys = [p for p, _, _ in facets(b)]
    union = shapely.union_all(polys)
    assert union.symmetric_difference(b.footprint).area < 1e-6
    pitched = [d for _, kind, d in facets(b) if kind == "roof" and d is not None]
    assert len(pitched) == {"flat": 0, "gable": 2, "hip": 4}[roof]
    for d in pitched:
        assert math.hypot(*d) == pytest.approx(1.0)


def test_l_shaped_footprint_is_the_union_of_parts():
    b = _building("flat", [(0.0, 0.0, 0.0, 20.0, 12.0), (6.0, 10.0, 0.0, 8.0, 10.0)])
    assert b.footprint.area == pytest.approx(shapely.union_all([rect(*p) for p in b.parts]).area)


def test_shadow_extends_away_from_the_sun():
    b = _building("flat")
    vec = (0.5, -0.8)  # shadow goes south-east (sun in the north-west)
    sh = shapely.union_all(shadow(b, vec))
    assert sh.contains(b.footprint.buffer(-0.01))
    tip = shapely.affinity.translate(b.footprint, vec[0] * b.height, vec[1] * b.height)
    assert sh.buffer(1e-6).contains(tip)
    c0, c1 = b.footprint.centroid, sh.centroid
    assert c1.x > c0.x and c1.y < c0.y


def test_sun_position_is_sane():
    az, el = sun_position(172, 12.0, 34.0)  # June solstice noon, 34 N
    assert el == pytest.approx(90 - 34 + 23.44, abs=0.6)
    az_m, el_m = sun_position(120, 9.5, 34.0)
    assert 60 < az_m < 180 and 20 < el_m < el  # morning: sun in the east, lower
    az_a, _ = sun_position(120, 14.5, 34.0)
    assert 180 < az_a < 300


def test_walk_curve_is_smooth_and_seeded():
    a = walk_curve((0.0, 0.0), 0.3, 400.0, np.random.default_rng(4))
    b = walk_curve((0.0, 0.0), 0.3, 400.0, np.random.default_rng(4))
    assert np.array_equal(a, b)
    steps = np.linalg.norm(np.diff(a, axis=0), axis=1)
    assert np.allclose(steps, 8.0)
    head = np.unwrap(np.arctan2(np.diff(a[:, 1]), np.diff(a[:, 0])))
    assert np.abs(np.diff(head)).max() <= 0.015 * 8.0 + 1e-9


def test_road_polygon_and_samples():
    line = LineString([(0, 0), (100, 0), (150, 40)])
    r = Road(0, line, 9.0, "local", "existing", 0.4, 1.5, None, dead_end=True)
    assert r.poly.contains(shapely.Point(50, 4.0)) and not r.poly.contains(shapely.Point(50, 5))
    assert r.poly.contains(shapely.Point(150 + 5, 40))  # the turning circle at the dead end
    pts, tan = r.samples(1.0)
    assert len(pts) == int(np.ceil(line.length)) and np.allclose(np.linalg.norm(tan, axis=1), 1)


def test_dashes_follow_the_line():
    line = LineString([(0, 0), (90, 0)])
    d = dashed(line, 3.0, 6.0)
    assert len(d.geoms) == 10 and all(g.length == pytest.approx(3.0) for g in d.geoms)


def test_geojson_matches_shapely():
    poly = shapely.Polygon([(0, 0), (4, 0), (4, 4), (0, 4)], [[(1, 1), (2, 1), (2, 2), (1, 1)]])
    multi = shapely.MultiPolygon([poly, rect(10, 10, 0, 2, 2)])
    for g in (poly, multi):
        assert shapely.geometry.shape(geojson(g)).equals(g)
