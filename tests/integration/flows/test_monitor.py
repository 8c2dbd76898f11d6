"""``monitor_region`` end to end: a real STAC API, real Prefect runs, real Zarr and GeoParquet."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import geopandas as gpd
import pytest

from flows.request import RunRequest
from tests.conftest import AFTER, BEFORE

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def params(region, server, out: Path, **extra) -> dict:
    return {
        "aoi": ",".join(f"{v:.6f}" for v in region.bbox_lonlat),
        "catalog": server.url,
        "collection": json.loads(region.collection_path.read_text())["id"],
        "before": BEFORE,
        "after": AFTER,
        "region": "small",
        "out": str(out),
        **extra,
    }


@pytest.fixture(scope="module")
def monitored(small_region, small_server, tmp_path_factory):
    """One run of the flow over the small region with the shipped model, then a rerun."""
    from flows.monitor import monitor_region

    out = tmp_path_factory.mktemp("run")
    first = monitor_region(RunRequest(**params(small_region, small_server, out)))
    mtimes = {p.name: p.stat().st_mtime_ns for p in (out / "results").rglob("*.json")}
    again = monitor_region(RunRequest(**params(small_region, small_server, out)))
    return out, first, again, mtimes


def test_run_leaves_every_output(monitored):
    out, summary, _, _ = monitored
    assert summary["status"] == "completed"
    assert json.loads((out / "run.json").read_text())["run_id"] == summary["run_id"]
    assert (out / "tiles.zarr" / "zarr.json").exists()
    assert (out / "report.html").stat().st_size > 1000
    tiles = gpd.read_parquet(out / "inventory" / "tiles")
    assert len(tiles) == summary["tiles"] - summary["tiles_mostly_nodata"]
    assert tiles["tile_id"].is_unique
    assert summary["tiles_screened"] == len(tiles)
    assert 0 < summary["tiles_sent_to_vlm"] <= len(tiles)
    assert set(summary["timings_s"]) == {
        "search",
        "tile",
        "predict",
        "vectorise",
        "inventory",
        "report",
    }


def test_objects_lie_in_their_tiles(monitored):
    out, summary, _, _ = monitored
    tiles = gpd.read_parquet(out / "inventory" / "tiles").set_index("tile_id")
    objects = gpd.read_parquet(out / "inventory" / "objects")
    assert len(objects) == summary["objects"] > 0
    assert objects.crs == tiles.crs
    for _, obj in objects.iterrows():
        assert tiles.loc[obj["tile_id"], "geometry"].buffer(1e-6).contains(obj.geometry)
    # the VLM's tiles carry its answers; screened-out tiles are unchanged with no objects
    quiet = tiles[~tiles["changed"]].index
    assert not objects["tile_id"].isin(quiet).any() or summary["threshold"] is not None
    # pieces of one feature: same class, different tiles, together one connected shape
    buildings = objects[objects["class"] == "building"]
    assert summary["building_features"] == buildings["feature_id"].nunique() <= len(buildings)
    for _, pieces in objects.groupby("feature_id"):
        assert pieces["class"].nunique() == 1 and pieces["tile_id"].is_unique
        assert pieces.geometry.buffer(0.3).union_all().geom_type == "Polygon"


def test_rerun_reuses_every_tile_and_duplicates_nothing(monitored):
    out, first, again, mtimes = monitored
    assert again["run_id"] == first["run_id"]
    assert again["tiles_reused"] == first["tiles_screened"]
    assert again["tiles_screened"] == again["tiles_sent_to_vlm"] == 0
    assert {p.name: p.stat().st_mtime_ns for p in (out / "results").rglob("*.json")} == mtimes
    files = f"{out}/inventory/tiles/**/*.parquet"
    n, distinct = (
        duckdb.connect()
        .execute(f"SELECT count(*), count(DISTINCT tile_id) FROM read_parquet('{files}')")
        .fetchone()
    )
    assert n == distinct == first["tiles"] - first["tiles_mostly_nodata"]
    for key in ("changed_tiles", "objects", "new_buildings"):
        assert again[key] == first[key]


def test_screening_sends_only_flagged_tiles(monitored):
    out, summary, _, _ = monitored
    docs = [json.loads(p.read_text()) for p in (out / "results").rglob("*-*.json")]
    stages = {d["stage"] for d in docs}
    assert stages <= {"screen", "vlm"}
    for d in docs:
        assert (d["stage"] == "vlm") == (d["screen_score"] >= 0.5), d["tile_id"]
        assert d["screen_score"] >= d["result"]["change_score"] - 1e-6
        if d["stage"] == "screen":
            assert not d["result"]["changed"] and not d["result"]["objects"]
        else:
            assert set(d["result"]["answers"]) >= {"caption", "yes_no", "count_building"}
