"""Strong nuisance: realistic non-change on both dates (cars, paving, earthworks, leaf-off trees,
lean, sensor) that never enters the change truth; mild stays the historical rendering."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json

import numpy as np
import pytest
import shapely
import shapely.affinity
from affine import Affine
from rasterio import features
from shapely.geometry import box

from catalogs.errors import InputError
from catalogs.synth import load_truth, rasterize_truth, synthesize_region
from catalogs.synth._extras import date_extras
from catalogs.synth._geom import geojson
from catalogs.synth._looks import MAX_LEAN, mild_looks, strong_looks
from catalogs.synth._nuisance import plan_nuisance
from catalogs.synth._render import Canvas, Look, Shared, render
from catalogs.synth._surfaces import building_surfaces
from catalogs.synth._truth import tile_boxes
from catalogs.synth._world import build_world, truth_records

X0, Y0, SIZE = 500_000.0, 3_750_000.0, 400.0
LOOK = Look(
    sun_azimuth=130.0,
    sun_elevation=50.0,
    greenness=0.6,
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
    world = build_world(ext, core, core.buffer(-15), tiles, np.random.default_rng(3))
    plan = plan_nuisance(world, np.random.default_rng(6))
    canvas = Canvas(ext[0], ext[3], (int((ext[3] - ext[1]) / 0.5), int((ext[2] - ext[0]) / 0.5)))
    shared = Shared(world, canvas, np.random.default_rng(5))
    return world, plan, canvas, shared


def _mask(geoms, canvas) -> np.ndarray:
    geoms = [g for g in geoms if not g.is_empty]
    if not geoms:
        return np.zeros(canvas.shape, bool)
    shapes = [(geojson(g), 1) for g in geoms]
    return features.rasterize(shapes, out_shape=canvas.shape, transform=canvas.transform) > 0


def _changed(world):
    return shapely.union_all([r["geometry"] for r in truth_records(world)])


def test_plan_never_touches_changed_objects(scene):
    world, plan, _, _ = scene
    changed = _changed(world)
    assert plan.sites and plan.pavings, "the plan must hold earthworks and paving"
    for s in plan.sites:
        assert s.poly.intersection(changed).area == 0.0
    for p in plan.pavings:
        assert p.poly.intersection(changed).area < 1e-6
    roof = slice(world.trees.x.size - plan.n_roof_trees, None)
    crowns = shapely.buffer(
        shapely.points(world.trees.x[roof], world.trees.y[roof]), world.trees.r[roof]
    )
    assert plan.n_roof_trees > 0
    assert not shapely.intersects(crowns, changed).any()
    existing = shapely.union_all([b.footprint for b in world.buildings if b.state == "existing"])
    assert shapely.intersects(crowns, existing).mean() > 0.5  # they do overhang roofs


def test_cars_are_drawn_on_roads_and_paving(scene):
    world, plan, canvas, shared = scene
    ex = date_extras(world, plan, "after", LOOK, np.random.default_rng(9))
    plain = render(world, canvas, shared, "after", LOOK, 1)
    strong = render(world, canvas, shared, "after", LOOK, 1, ex)
    assert ex.summary["n_cars"] > 20
    white = [g for g, rgb, _ in ex.ground if rgb[0] > 0.8 and g.area < 25]  # white car bodies
    assert len(white) > 3
    paved = shapely.union_all([r.poly for r in world.roads] + [p.poly for p in plan.pavings])
    assert all(paved.buffer(0.5).contains(g.centroid) for g in white)
    pts = shapely.get_coordinates([g.centroid for g in white])
    cols, rows = ~canvas.transform * (pts[:, 0], pts[:, 1])
    r, c = rows.astype(int), cols.astype(int)
    assert (strong[:, r, c].mean(axis=0) > 0.7).mean() > 0.8  # bright car body
    assert (plain[:, r, c].mean(axis=0) < 0.6).mean() > 0.8  # asphalt without nuisance


def test_leaf_off_shifts_deciduous_crowns_only(scene):
    world, plan, canvas, shared = scene
    off = dataclasses.replace(LOOK, leaf_off=True)
    on_img = render(world, canvas, shared, "before", LOOK, 1, _extras(scene, LOOK))
    off_img = render(world, canvas, shared, "before", off, 1, _extras(scene, off))
    decid = plan.deciduous[shared.tree_id]
    flat_on, flat_off = on_img.reshape(3, -1), off_img.reshape(3, -1)
    d_idx, e_idx = shared.tree_idx[decid], shared.tree_idx[~decid]
    assert d_idx.size > 500 and e_idx.size > 500

    def green(flat, idx):
        return float(np.mean(flat[1, idx] - (flat[0, idx] + flat[2, idx]) / 2))

    shift = green(flat_on, d_idx) - green(flat_off, d_idx)
    assert shift > 0.03, f"leaf-off crowns lose green: shift {shift:.3f}"
    assert float(np.abs(flat_off[:, d_idx] - flat_on[:, d_idx]).mean()) > 0.04
    np.testing.assert_array_equal(flat_on[:, e_idx], flat_off[:, e_idx])  # evergreens unchanged


def _extras(scene, look):
    world, plan, _, _ = scene
    return date_extras(world, plan, "before", look, np.random.default_rng(11))


def test_lean_moves_roofs_by_height_and_shows_walls(scene):
    world, _, _, _ = scene
    lean = dataclasses.replace(LOOK, lean=(0.08, -0.05))
    plain = building_surfaces(world, "before", LOOK, 1)
    leaning = building_surfaces(world, "before", lean, 1)
    assert len(leaning) > len(plain)  # walls were added
    b = max((b for b in world.buildings if b.state != "new"), key=lambda b: b.height)
    roof0 = shapely.union_all([g for g, _, _ in plain if g.within(b.footprint.buffer(0.01))])
    moved = shapely.affinity.translate(b.footprint, 0.08 * b.height, -0.05 * b.height)
    roof1 = [g for g, _, _ in leaning if g.within(moved.buffer(0.01))]
    dx = shapely.union_all(roof1).centroid.x - roof0.centroid.x
    assert dx == pytest.approx(0.08 * b.height, abs=1e-6)


def test_site_shown_on_one_date_is_not_change(scene):
    world, plan, canvas, shared = scene
    one_date = [s for s in plan.sites if s.dates[0] != s.dates[1]]
    assert one_date
    site = one_date[0]
    before = render(world, canvas, shared, "before", LOOK, 1, _extras(scene, LOOK))
    ex_a = date_extras(world, plan, "after", LOOK, np.random.default_rng(12))
    after = render(world, canvas, shared, "after", LOOK, 1, ex_a)
    inside = _mask([site.poly.buffer(-1.0)], canvas)
    assert float(np.abs(after - before)[:, inside].mean()) > 0.03  # visibly different
    truth = rasterize_truth(_truth_frame(world), transform=canvas.transform, shape=canvas.shape)
    assert not truth[inside].any()


def _truth_frame(world):
    import geopandas

    recs = truth_records(world)
    return geopandas.GeoDataFrame(
        {"class": [r["class"] for r in recs]}, geometry=[r["geometry"] for r in recs]
    )


def _hashes(root) -> dict[str, str]:
    names = ["before.tif", "after.tif", "truth.parquet", "truth.json"]
    return {n: hashlib.sha256((root / n).read_bytes()).hexdigest() for n in names}


@pytest.fixture(scope="module")
def regions(tmp_path_factory):
    base = tmp_path_factory.mktemp("nuisance")
    kw = {"size_km": 0.3, "seed": 21}
    return (
        synthesize_region(base / "mild", **kw),
        synthesize_region(base / "strong", nuisance="strong", **kw),
        synthesize_region(base / "strong2", nuisance="strong", **kw),
    )


def test_strong_region_is_deterministic_and_keeps_the_truth(regions):
    mild, strong, again = regions
    assert _hashes(strong.root) == _hashes(again.root)
    assert _hashes(strong.root)["after.tif"] != _hashes(mild.root)["after.tif"]
    tm, ts = load_truth(mild.root), load_truth(strong.root)
    assert list(tm["object_id"]) == list(ts["object_id"])
    assert all(a.equals_exact(b, 0.0) for a, b in zip(tm.geometry, ts.geometry, strict=True))
    meta_m = json.loads((mild.root / "truth.json").read_text())
    meta_s = json.loads((strong.root / "truth.json").read_text())
    assert meta_m["changes"] == meta_s["changes"]
    assert "nuisance" not in meta_m
    assert meta_s["nuisance"]["level"] == "strong"
    assert meta_s["nuisance"]["before"]["n_cars"] + meta_s["nuisance"]["after"]["n_cars"] > 0
    item = json.loads(strong.items_path.read_text().splitlines()[0])
    assert item["properties"]["changevg:nuisance"] == "strong"


def test_strong_looks_differ_more_than_mild(regions):
    dates = [dt.date(2022, 5, 1), dt.date(2024, 6, 15)]
    mild_d, strong_d, lean = [], [], []
    for seed in range(8):
        m = mild_looks(np.random.default_rng(seed), dates, -116.0, 34.0)
        s = strong_looks(np.random.default_rng(seed), dates, -116.0, 34.0)
        mild_d.append(abs(m[0][0].sun_azimuth - m[1][0].sun_azimuth))
        strong_d.append(abs(s[0][0].sun_azimuth - s[1][0].sun_azimuth))
        lean += [np.hypot(*look.lean) for look, _ in s]
        assert all(look.lean == (0.0, 0.0) and not look.leaf_off for look, _ in m)
    assert max(mild_d) < 10.0 < max(strong_d)
    assert 0.0 < max(lean) <= MAX_LEAN
    meta = json.loads((regions[1].root / "truth.json").read_text())
    assert "leaf_off" in meta["before"]["look"] and "lean_m_per_m" in meta["after"]["look"]


def test_unknown_nuisance_is_refused(tmp_path):
    with pytest.raises(InputError, match="nuisance='wild'"):
        synthesize_region(tmp_path, size_km=0.1, nuisance="wild")  # type: ignore[arg-type]
