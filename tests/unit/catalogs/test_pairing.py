"""Scene pairing (pure): group choice, mosaics, skipped items, errors, JSON contract, real data."""

from __future__ import annotations

import json

import pystac
import pytest
from shapely.geometry import Polygon, box

from catalogs.errors import InputError, NoCoverageError
from catalogs.pairing import ScenePair, pair_scenes
from catalogs.testing import (
    load_features,
    make_item,
    rgb_asset,
    sample_stac_dir,
    shift_item,
    thumbnail_asset,
)

AOI = box(10.0, 50.0, 10.1, 50.1)
BEFORE, AFTER = "2021-01-01/2021-12-31", "2023-01-01/2023-12-31"
FULL = (9.9, 49.9, 10.2, 50.2)
SAMPLES = sample_stac_dir()
needs_samples = pytest.mark.skipif(SAMPLES is None, reason="recorded STAC responses not found")


def _item(id, when, bbox=FULL, **kw):
    kw.setdefault("epsg", 32632)
    return make_item(id, bbox=bbox, datetime=when, **kw)


def _pair(items, **kw):
    kw.setdefault("catalog_is_local", False)
    return pair_scenes(items, aoi=kw.pop("aoi", AOI), before=BEFORE, after=AFTER, **kw)


def test_basic_pair_and_json_contract() -> None:
    items = [_item("b", "2021-06-01", cloud_cover=5), _item("a", "2023-06-01")]
    pair = _pair(items, catalog="https://stac.example.com/v1", collection="test-collection")
    assert pair.before.ids == ["b"] and pair.after.ids == ["a"]
    assert pair.before.coverage == pytest.approx(1.0) and pair.crs == "EPSG:32632"
    assert pair.before.cloud_cover == 5 and pair.after.cloud_cover is None
    assert all(isinstance(i, pystac.Item) for i in pair.before.items)
    data = json.loads(json.dumps(pair.to_json()))
    assert {"aoi", "crs", "before", "after"} <= set(data)
    assert data["aoi"]["type"] == "Polygon" and data["crs"] == "EPSG:32632"
    assert data["before"]["items"] == [
        {"id": "b", "datetime": "2021-06-01T00:00:00Z", "cloud_cover": 5}
    ]
    assert data["after"]["coverage"] == pytest.approx(1.0)
    assert data["catalog"] == "https://stac.example.com/v1" and data["skipped"] == []
    back = ScenePair.from_json(json.dumps(data))
    assert back.before.ids == ["b"] and back.after.items[0].assets["visual"].href.endswith(".tif")
    assert back.aoi.equals(pair.aoi) and back.before.window == pair.before.window
    assert back.before.datetime == pair.before.datetime and back.crs == pair.crs
    slim = pair.to_json(features=False)
    assert "features" not in slim["before"]
    with pytest.raises(InputError, match="features"):
        ScenePair.from_json(slim)


def test_quarter_tiles_mosaic_selects_all_needed() -> None:
    quads = [
        _item(f"q{i}", "2021-06-01", bbox=(x, y, x + 0.06, y + 0.06))
        for i, (x, y) in enumerate([(9.99, 49.99), (10.05, 49.99), (9.99, 50.05), (10.05, 50.05)])
    ]
    far = _item("far", "2021-06-01", bbox=(11, 51, 11.1, 51.1))
    pair = _pair([*quads, far, _item("a", "2023-06-01")])
    assert sorted(pair.before.ids) == ["q0", "q1", "q2", "q3"]
    assert pair.before.coverage == pytest.approx(1.0)


def test_redundant_items_are_not_read() -> None:
    big = _item("big", "2021-06-01")
    small = _item("small", "2021-06-01", bbox=(10.0, 50.0, 10.05, 50.05))
    assert _pair([small, big, _item("a", "2023-06-01")]).before.ids == ["big"]


def test_group_ranking_coverage_then_cloud_then_date() -> None:
    half = _item("half", "2021-12-01", bbox=(9.9, 49.9, 10.05, 50.2), cloud_cover=0)
    cloudy = _item("cloudy", "2021-11-01", cloud_cover=40)
    clear = _item("clear", "2021-03-01", cloud_cover=10)
    unknown = _item("unknown", "2021-12-30")
    after = [
        _item("a-late", "2023-09-01", cloud_cover=1),
        _item("a-early", "2023-02-01", cloud_cover=1),
    ]
    pair = _pair([half, cloudy, clear, unknown, *after])
    assert pair.before.ids == ["clear"]  # full coverage, least (known) cloud
    assert pair.after.ids == ["a-early"]  # tie on cloud: closest to the after window's start
    pair = _pair([half, unknown, _item("a", "2023-06-01")])
    assert pair.before.ids == ["unknown"]  # coverage first; unknown cloud is not a refusal
    tie = [_item("old", "2021-02-01"), _item("new", "2021-11-30"), _item("a", "2023-06-01")]
    assert _pair(tie).before.ids == ["new"]  # closest to the before window's end


def test_same_day_tiles_form_one_acquisition_across_utm_zones() -> None:
    aoi = box(173.95, 57.9, 174.2, 58.0)  # mostly in zone 60
    west = _item("T59", "2021-06-01T00:00:01Z", bbox=(173.0, 57.5, 174.05, 58.5), epsg=32659)
    east = _item("T60", "2021-06-01T00:00:01Z", bbox=(174.0, 57.5, 175.0, 58.5), epsg=32660)
    other_day = _item("T60-late", "2021-06-02", bbox=(174.0, 57.5, 175.0, 58.5), epsg=32660)
    after = _item("a", "2023-06-01", bbox=(173.0, 57.5, 175.0, 58.5), epsg=32660)
    pair = _pair([west, east, other_day, after], aoi=aoi)
    assert sorted(pair.before.ids) == ["T59", "T60"]
    assert pair.before.coverage == pytest.approx(1.0)
    assert pair.crs == "EPSG:32660"


def test_items_without_bbox_and_with_proj_epsg() -> None:
    items = [
        _item("b", "2021-06-01", include_bbox=False, use_proj_code=False, epsg=26919),
        _item("a", "2023-06-01", include_geometry=False, epsg=26919),
    ]
    pair = _pair(items)
    assert pair.crs == "EPSG:26919" and pair.after.coverage == pytest.approx(1.0)


def test_max_cloud_filters_and_lists_skipped() -> None:
    items = [
        _item("cloudy", "2021-06-01", cloud_cover=80),
        _item("ok", "2021-05-01", cloud_cover=10),
        _item("nocloud", "2023-06-01"),
    ]
    pair = _pair(items, max_cloud=20)
    assert pair.before.ids == ["ok"] and pair.after.ids == ["nocloud"]
    assert pair.skipped == ({"id": "cloudy", "reason": "cloud cover 80% > max_cloud 20%"},)
    with pytest.raises(NoCoverageError, match="before window.*relax max_cloud") as info:
        _pair(items[:1] + items[2:], max_cloud=20)
    assert info.value.skipped == pair.skipped and info.value.best_items == ()
    with pytest.raises(InputError, match="max_cloud"):
        _pair(items, max_cloud=150)


def test_unusable_items_are_named_in_skipped() -> None:
    thumb = _item("thumb-only", "2021-06-01", assets={"t": thumbnail_asset("https://x/t.jpg")})
    no_assets = _item("no-assets", "2021-06-02", assets={})
    local = _item("local", "2021-06-03", assets={"visual": rgb_asset("file:///etc/img.tif")})
    good = [_item("b", "2021-06-04"), _item("a", "2023-06-01")]
    pair = _pair([thumb, no_assets, local, *good])
    reasons = {s["id"]: s["reason"] for s in pair.skipped}
    assert set(reasons) == {"thumb-only", "no-assets", "local"}
    assert "not a raster" in reasons["thumb-only"]
    assert "remote catalog" in reasons["local"] and "file:///etc/img.tif" in reasons["local"]
    assert pair.before.ids == ["b"]
    assert pair.to_json()["skipped"] == [dict(s) for s in pair.skipped]


def test_file_hrefs_allowed_for_local_catalog_refused_by_default() -> None:
    local = [
        _item("b", "2021-06-01", assets={"visual": rgb_asset("file:///data/b.tif")}),
        _item("a", "2023-06-01", assets={"visual": rgb_asset("file:///data/a.tif")}),
    ]
    assert _pair(local, catalog_is_local=True).before.ids == ["b"]
    assert pair_scenes(
        local, aoi=AOI, before=BEFORE, after=AFTER, catalog="http://127.0.0.1:7822/"
    ).after.ids == ["a"]
    with pytest.raises(NoCoverageError, match="refused.*remote catalog"):
        pair_scenes(local, aoi=AOI, before=BEFORE, after=AFTER)
    with pytest.raises(NoCoverageError):
        pair_scenes(local, aoi=AOI, before=BEFORE, after=AFTER, catalog="https://stac.example.com")


def test_no_coverage_names_window_and_what_was_found() -> None:
    elsewhere = _item("far", "2023-03-01", bbox=(20, 40, 20.1, 40.1))
    with pytest.raises(NoCoverageError) as info:
        _pair([_item("b", "2021-06-01"), elsewhere])
    msg = str(info.value)
    assert "after window 2023-01-01T00:00:00Z/2023-12-31T23:59:59.999999Z" in msg
    assert "1 item(s)" in msg and "2023-03-01" in msg and "best coverage 0.000" in msg
    assert info.value.window == "after" and info.value.found == ("far",)
    assert info.value.best_items == () and info.value.coverage == 0.0
    with pytest.raises(NoCoverageError, match="before window.*0 item"):
        _pair([_item("a", "2023-06-01")])


def test_min_coverage() -> None:
    half = _item("half", "2021-06-01", bbox=(9.9, 49.9, 10.05, 50.2))
    items = [half, _item("a", "2023-06-01")]
    assert _pair(items).before.coverage == pytest.approx(0.5, abs=0.01)
    with pytest.raises(NoCoverageError, match=r"best coverage 0\.5.*min_coverage 0\.9") as info:
        _pair(items, min_coverage=0.9)
    err = info.value
    assert err.window == "before" and err.interval.startswith("2021-01-01")
    assert err.coverage == pytest.approx(0.5, abs=0.01) and err.min_coverage == 0.9
    assert err.best_items == ("half",) and err.found == ("half",) and err.skipped == ()
    assert err.aoi_bounds == pytest.approx(AOI.bounds)
    assert err.to_dict()["best_items"] == ["half"]


def test_windows_must_not_overlap_and_errors_name_parameter() -> None:
    items = [_item("b", "2021-06-01")]
    with pytest.raises(InputError, match="overlap"):
        pair_scenes(items, aoi=AOI, before="2021-01-01/2022-06-30", after="2022-01-01/2022-12-31")
    with pytest.raises(InputError, match="^after: start"):
        pair_scenes(items, aoi=AOI, before=BEFORE, after="2023-12-31/2023-01-01")
    with pytest.raises(InputError, match="empty"):
        pair_scenes(items, aoi=Polygon(), before=BEFORE, after=AFTER)


# -- real recorded responses ------------------------------------------------------------------


@needs_samples
def test_real_naip_quarter_quads_mosaic() -> None:
    naip = load_features(SAMPLES / "naip_pc_250.json")
    later = [shift_item(f, days=730, suffix="-2025") for f in naip]  # a second NAIP cycle
    aoi = box(-69.388, 45.054, -69.368, 45.074)  # where four Maine quarter-quads meet
    pair = pair_scenes(
        naip + later,
        aoi=aoi,
        before="2023-01-01/2023-12-31",
        after="2025-01-01/2025-12-31",
        catalog="https://planetarycomputer.microsoft.com/api/stac/v1",
        collection="naip",
    )
    assert len(pair.before.items) == 4 and len(pair.after.items) == 4
    assert pair.before.coverage == pytest.approx(1.0, abs=1e-3)
    assert pair.crs == "EPSG:26919" and pair.skipped == ()
    assert all(i.id.startswith("me_m_45069") for i in pair.before.items)
    assert ScenePair.from_json(json.loads(json.dumps(pair.to_json()))).after.ids == pair.after.ids


@needs_samples
def test_real_sentinel2_across_two_utm_zones() -> None:
    s2 = load_features(SAMPLES / "s2l2a_pc_datetime.json")
    later = [shift_item(f, days=365, suffix="-next") for f in s2]
    aoi = box(173.93, 58.1, 174.03, 58.15)  # across the 59/60 boundary at 174°E
    pair = pair_scenes(
        s2 + later, aoi=aoi, before="2019-01-01/2019-01-02", after="2020-01-01/2020-01-02"
    )
    assert pair.before.coverage == pytest.approx(1.0, abs=1e-3)
    assert pair.crs in ("EPSG:32659", "EPSG:32660")
    assert pair.before.cloud_cover is not None
    with pytest.raises(NoCoverageError, match="before window"):
        pair_scenes(
            s2 + later,
            aoi=aoi,
            before="2019-01-01/2019-01-02",
            after="2020-01-01/2020-01-02",
            max_cloud=5,
        )


@needs_samples
def test_real_earth_search_landsat_then_sentinel2_same_day() -> None:
    es = load_features(SAMPLES / "es_multi.json")
    aoi = box(-105.5, 40.0, -105.4, 40.1)
    pair = pair_scenes(
        es,
        aoi=aoi,
        before="2023-10-08T00:00:00Z/2023-10-08T17:50:00Z",
        after="2023-10-08T17:50:01Z/2023-10-08T23:59:59Z",
    )
    assert pair.before.ids == ["LC08_L2SP_033032_20231008_02_T1"]
    assert pair.after.ids == ["S2A_13TDE_20231008_0_L2A"]
    assert pair.crs == "EPSG:32613"
    assert pair.after.cloud_cover == pytest.approx(0.000299)
