"""Item helpers on builder items and on real recorded STAC API responses."""

from __future__ import annotations

import pystac
import pytest

from catalogs.errors import ItemError
from catalogs.items import (
    BandRef,
    check_hrefs,
    cloud_cover,
    is_local_catalog,
    is_raster_asset,
    item_bbox,
    item_crs,
    item_footprint,
    rgb_bands,
)
from catalogs.testing import (
    load_features,
    make_item,
    rgb_asset,
    sample_stac_dir,
    single_band_assets,
    thumbnail_asset,
)

BBOX = (-69.39, 45.05, -69.37, 45.07)
SAMPLES = sample_stac_dir()
needs_samples = pytest.mark.skipif(SAMPLES is None, reason="recorded STAC responses not found")


def _rgb(refs: list[BandRef]) -> list[tuple[str, int, str]]:
    return [(r.asset, r.band, r.common_name) for r in refs]


def test_crs_proj_code_epsg_wkt_and_asset_level() -> None:
    assert item_crs(make_item("a", bbox=BBOX, datetime="2022-01-01", epsg=32619)) == "EPSG:32619"
    old = make_item("b", bbox=BBOX, datetime="2022-01-01", epsg=26919, use_proj_code=False)
    assert old["properties"]["proj:epsg"] == 26919
    assert item_crs(old) == "EPSG:26919"
    assert item_crs(pystac.Item.from_dict(old)) == "EPSG:26919"  # pystac migrates to proj:code
    from pyproj import CRS

    wkt = make_item("c", bbox=BBOX, datetime="2022-01-01", epsg=None)
    wkt["properties"]["proj:wkt2"] = CRS.from_epsg(32633).to_wkt()
    assert item_crs(wkt) == "EPSG:32633"
    at_asset = make_item("d", bbox=BBOX, datetime="2022-01-01", epsg=None)
    at_asset["assets"]["visual"]["proj:epsg"] = 32610
    assert item_crs(at_asset) == "EPSG:32610"
    assert item_crs(make_item("e", bbox=BBOX, datetime="2022-01-01", epsg=None)) is None
    null_epsg = make_item("f", bbox=BBOX, datetime="2022-01-01", epsg=None)
    null_epsg["properties"]["proj:epsg"] = None
    assert item_crs(null_epsg) is None


def test_bbox_and_footprint_without_bbox_or_geometry() -> None:
    no_bbox = make_item("a", bbox=BBOX, datetime="2022-01-01", include_bbox=False)
    assert item_bbox(no_bbox) == pytest.approx(BBOX)
    no_geom = make_item("b", bbox=BBOX, datetime="2022-01-01", include_geometry=False)
    assert item_footprint(no_geom).bounds == pytest.approx(BBOX)
    neither = make_item("c", bbox=BBOX, datetime="2022-01-01", include_bbox=False)
    neither["geometry"] = None
    with pytest.raises(ItemError, match="'c'.*neither bbox nor geometry"):
        item_footprint(neither)
    across = make_item("d", bbox=(179.5, 0, -179.5, 1), datetime="2022-01-01")
    across["geometry"] = None
    assert item_footprint(across).area == pytest.approx(1.0)


def test_cloud_cover_missing_is_unknown() -> None:
    assert cloud_cover(make_item("a", bbox=BBOX, datetime="2022-01-01", cloud_cover=12.5)) == 12.5
    assert cloud_cover(make_item("b", bbox=BBOX, datetime="2022-01-01")) is None
    bad = make_item("c", bbox=BBOX, datetime="2022-01-01", properties={"eo:cloud_cover": -1})
    assert cloud_cover(bad) is None
    assert cloud_cover(make_item("d", bbox=BBOX, datetime="2022-01-01", cloud_cover=0)) == 0.0


def test_rgb_multiband_single_band_and_preference() -> None:
    item = make_item("a", bbox=BBOX, datetime="2022-01-01")
    assert _rgb(rgb_bands(item)) == [
        ("visual", 1, "red"),
        ("visual", 2, "green"),
        ("visual", 3, "blue"),
    ]
    naip_like = make_item(
        "n",
        bbox=BBOX,
        datetime="2022-01-01",
        assets={
            "image": rgb_asset("https://x/n.tif", bands=("red", "green", "blue", "nir")),
            "thumbnail": thumbnail_asset("https://x/n.jpg"),
        },
    )
    assert [r.band for r in rgb_bands(naip_like)] == [1, 2, 3]
    s2_like = make_item(
        "s",
        bbox=BBOX,
        datetime="2022-01-01",
        assets={**single_band_assets("https://x/s"), "visual": rgb_asset("https://x/tci.tif")},
    )
    assert {r.asset for r in rgb_bands(s2_like)} == {"visual"}
    assert _rgb(rgb_bands(s2_like, prefer="single")) == [
        ("B04", 1, "red"),
        ("B03", 1, "green"),
        ("B02", 1, "blue"),
    ]
    bgr = make_item(
        "bgr",
        bbox=BBOX,
        datetime="2022-01-01",
        assets={"img": rgb_asset("https://x/b.tif", bands=("blue", "green", "red"))},
    )
    assert [r.band for r in rgb_bands(bgr)] == [3, 2, 1]


def test_rgb_missing_or_not_raster_names_item_and_assets() -> None:
    thumb_only = make_item(
        "thumbs",
        bbox=BBOX,
        datetime="2022-01-01",
        assets={"thumb": thumbnail_asset("https://x/t.jpg")},
    )
    with pytest.raises(ItemError) as info:
        rgb_bands(thumb_only)
    msg = str(info.value)
    assert (
        "'thumbs'" in msg and "red, green, blue" in msg and "thumb (image/jpeg, not a raster" in msg
    )
    jpeg_visual = make_item(
        "jpeg",
        bbox=BBOX,
        datetime="2022-01-01",
        assets={"visual": rgb_asset("https://x/v.jpg", media_type="image/jpeg", roles=["data"])},
    )
    with pytest.raises(ItemError, match="'jpeg'"):
        rgb_bands(jpeg_visual)
    no_green = make_item(
        "rb",
        bbox=BBOX,
        datetime="2022-01-01",
        assets=single_band_assets("https://x/s", keys={"B04": "red", "B02": "blue"}),
    )
    with pytest.raises(ItemError, match="no raster asset with green"):
        rgb_bands(no_green)
    with pytest.raises(ItemError, match="assets: none"):
        rgb_bands(make_item("empty", bbox=BBOX, datetime="2022-01-01", assets={}))


def test_is_raster_asset() -> None:
    assert is_raster_asset({"href": "s3://b/x.tif", "type": "image/tiff; application=geotiff"})
    assert is_raster_asset({"href": "s3://b/x.jp2", "type": "image/jp2"})
    assert is_raster_asset({"href": "https://x/y.TIF"})
    assert not is_raster_asset({"href": "https://x/y.png", "type": "image/png"})
    assert not is_raster_asset(
        {"href": "https://x/p.tif", "type": "image/tiff", "roles": ["thumbnail"]}
    )


@pytest.mark.parametrize(
    "href",
    [
        "file:///etc/passwd",
        "/etc/passwd",
        "data/visual.tif",
        "C:\\data\\x.tif",
        "/vsicurl/https://x/y.tif",
        "http://127.0.0.1:8080/secret.tif",
        "http://localhost/x.tif",
        "http://0.0.0.0:9000/x.tif",
        "http://169.254.169.254/latest/meta-data/",
    ],
)
def test_remote_catalog_local_hrefs_refused(href) -> None:
    item = make_item("evil", bbox=BBOX, datetime="2022-01-01", assets={"visual": rgb_asset(href)})
    with pytest.raises(ItemError, match="'evil'.*'visual'.*remote catalog"):
        check_hrefs(item, catalog_is_local=False)
    check_hrefs(item, catalog_is_local=True)


def test_remote_hrefs_allowed() -> None:
    for href in ("https://x/y.tif", "s3://bucket/y.tif", "gs://b/y.tif", "http://10.1.2.3/y.tif"):
        item = make_item("ok", bbox=BBOX, datetime="2022-01-01", assets={"visual": rgb_asset(href)})
        check_hrefs(item, catalog_is_local=False)


def test_is_local_catalog() -> None:
    for url in (
        "http://127.0.0.1:7822/",
        "http://localhost/stac",
        "http://[::1]:80/",
        "file:///tmp/catalog.json",
        "/tmp/catalog.json",
        "regions/demo",
    ):
        assert is_local_catalog(url), url
    for url in (
        "https://planetarycomputer.microsoft.com/api/stac/v1",
        "https://earth-search.aws.element84.com/v1",
        "http://10.0.0.1/stac",
    ):
        assert not is_local_catalog(url), url


@needs_samples
@pytest.mark.parametrize("name", ["naip_pc_250.json", "s2l2a_pc_datetime.json", "es_multi.json"])
def test_real_items_parse(name) -> None:
    features = load_features(SAMPLES / name)
    assert features
    for raw in features:
        for item in (raw, pystac.Item.from_dict(raw)):
            assert item_crs(item).startswith("EPSG:")
            assert item_footprint(item).is_valid
            assert len(rgb_bands(item)) == 3
            check_hrefs(item, catalog_is_local=False)
        minx, miny, maxx, maxy = item_bbox(raw)
        assert minx < maxx and miny < maxy


@needs_samples
def test_real_item_specifics() -> None:
    naip = load_features(SAMPLES / "naip_pc_250.json")[0]
    assert _rgb(rgb_bands(naip)) == [
        ("image", 1, "red"),
        ("image", 2, "green"),
        ("image", 3, "blue"),
    ]
    assert cloud_cover(naip) is None
    es = {f["id"]: f for f in load_features(SAMPLES / "es_multi.json")}
    s2 = es["S2A_13TDE_20231008_0_L2A"]
    assert {r.asset for r in rgb_bands(s2)} == {"visual"}  # COG, not visual-jp2
    assert [r.asset for r in rgb_bands(s2, prefer="single")] == ["red", "green", "blue"]
    landsat = es["LC08_L2SP_033032_20231008_02_T1"]
    assert [r.asset for r in rgb_bands(landsat)] == ["red", "green", "blue"]
    s2pc = load_features(SAMPLES / "s2l2a_pc_datetime.json")[0]
    assert [r.asset for r in rgb_bands(s2pc, prefer="single")] == ["B04", "B03", "B02"]
    assert cloud_cover(s2pc) == pytest.approx(56.297088)
