"""Layout and change events of the synthetic world (no files)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import shapely
from affine import Affine
from shapely.geometry import box

from catalogs.synth._truth import tile_boxes
from catalogs.synth._world import build_world, truth_records

X0, Y0 = 500_000.0, 3_750_000.0


def make_world(seed: int, size_m: float = 500.0):
    n = int(size_m / 0.5)
    tr = Affine(0.5, 0, X0, 0, -0.5, Y0)
    ext = (X0 - 20, Y0 - size_m - 20, X0 + size_m + 20, Y0 + 20)
    core = box(X0, Y0 - size_m, X0 + size_m, Y0)
    return build_world(ext, core, core.buffer(-15), tile_boxes(tr, n), np.random.default_rng(seed))


@pytest.fixture(scope="module")
def world():
    return make_world(3)


def test_world_is_deterministic_per_seed():
    a, b, c = make_world(11, 300), make_world(11, 300), make_world(12, 300)
    fp = lambda w: [shapely.to_wkb(x.footprint) for x in w.buildings]  # noqa: E731
    assert fp(a) == fp(b) and [r.line.wkb for r in a.roads] == [r.line.wkb for r in b.roads]
    assert np.array_equal(a.trees.x, b.trees.x)
    assert fp(a) != fp(c)


def test_world_has_every_kind_of_change(world):
    recs = truth_records(world)
    kinds = Counter((r["class"], r["change"]) for r in recs)
    assert kinds[("building", "new")] >= 1
    assert kinds[("building", "demolished")] >= 1
    assert kinds[("road", "new")] >= 1
    assert 0.0 < world.changed_tile_fraction <= 1.0
    assert {e["kind"] for e in world.events} <= {
        "infill",
        "subdivision",
        "demolition",
        "road",
        "large",
    }


def test_objects_do_not_overlap(world):
    fps = [b.footprint for b in world.buildings]
    tree = shapely.STRtree(fps)
    for i, fp in enumerate(fps):
        hits = [j for j in tree.query(fp, predicate="intersects") if j != i]
        assert not hits, f"building {i} overlaps {hits}"
    roads = shapely.union_all([r.poly for r in world.roads])
    assert not any(fp.intersects(roads) for fp in fps)
    built = shapely.union_all(fps + [roads])
    crowns = shapely.buffer(shapely.points(world.trees.x, world.trees.y), world.trees.r)
    assert not shapely.intersects(crowns, built).any()


def test_changes_stay_where_both_dates_see(world):
    inner = box(X0, Y0 - 500, X0 + 500, Y0).buffer(-15)
    for r in truth_records(world):
        assert inner.buffer(1e-6).contains(r["geometry"]), r["object_id"]


def test_building_sizes_are_plausible(world):
    for b in world.buildings:
        _, _, _, length, width = b.parts[0]
        assert 6.0 <= width <= length <= 35.0
        assert 3.0 <= b.height <= 13.0


def test_new_road_truth_excludes_older_pavement(world):
    old = shapely.union_all([r.poly for r in world.roads if r.state == "existing"])
    for r in truth_records(world):
        if r["class"] == "road":
            assert r["geometry"].intersection(old).area < 1e-6
            assert r["area_m2"] == pytest.approx(r["geometry"].area)
            assert r["geometry"].area > 100


def test_truth_records_have_stable_ids(world):
    ids = [r["object_id"] for r in truth_records(world)]
    assert len(ids) == len(set(ids))
    assert all(i.startswith(("building-", "road-")) for i in ids)
