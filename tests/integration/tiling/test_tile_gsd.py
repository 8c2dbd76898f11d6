"""Tile stores at the model's GSD: synthetic regions at 0.3, 0.5, 1.0 and 10 m through a real
STAC API, resampled into real Zarr; too-coarse or undescribed imagery refused before reading."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from catalogs.gsd import GSDError, item_gsd
from tiling import TileOptions, TilingError, build_tiles, open_tiles

BEFORE = "2022-01-01/2022-12-31"
AFTER = "2024-01-01/2024-12-31"
MODEL = TileOptions(gsd=0.5, gsd_range=(0.25, 1.0))  # what flows passes for the default


def _pair(root, gsd: float, *, size_km: float = 0.3):
    from catalogs.pairing import search_pairs
    from catalogs.server import StacServer
    from catalogs.synth import synthesize_region

    region = synthesize_region(root, size_km=size_km, seed=3, gsd=gsd)
    with StacServer([region.root]) as server:
        pair = search_pairs(
            server.url,
            collection=json.loads(region.collection_path.read_text())["id"],
            aoi=region.bbox_lonlat,
            before=BEFORE,
            after=AFTER,
        )
    return region, pair


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """The same synthetic world (seed 3) rendered at 0.5, 0.3 and 1.0 m, tiled at 0.5 m."""
    out = {}
    for gsd in (0.5, 0.3, 1.0):
        root = tmp_path_factory.mktemp(f"gsd{gsd}")
        _, pair = _pair(root / "region", gsd)
        build_tiles(pair, root / "tiles.zarr", options=MODEL, progress=False)
        out[gsd] = open_tiles(str(root / "tiles.zarr"))
    return out


def test_both_dates_are_resampled_to_the_model_gsd(stores):
    for gsd, method in ((0.5, "none"), (0.3, "average"), (1.0, "bilinear")):
        attrs = stores[gsd].attrs
        assert attrs["pixel_size"] == 0.5 and attrs["transform"][0] == 0.5
        record = attrs["gsd"]
        assert record["target"] == 0.5 and record["mode"] == "resampled"
        assert record["source"] == {"before": gsd, "after": gsd}
        assert record["resampling"] == {"before": method, "after": method}
        assert record["accepted"] == [0.25, 1.0]
        assert {v["from"] for v in record["items"].values()} == {"proj:transform"}
        assert stores[gsd]["image"].shape == stores[0.5]["image"].shape  # same 128 m tiles


def test_resampled_tiles_show_the_same_world(stores):
    """Seed 3 is the same world at any GSD: resampled tiles match the 0.5 m ones more closely
    than the 0.5 m tiles match themselves moved by one pixel."""
    images = {g: ds["image"].values.astype(float) for g, ds in stores.items()}
    valid = np.logical_and.reduce(
        [(im > 0).all(axis=(1, 2), keepdims=True) for im in images.values()]
    )
    valid = np.broadcast_to(valid, images[0.5].shape)
    ref = images[0.5]
    one_pixel = np.abs(ref[..., 1:] - ref[..., :-1])[valid[..., 1:]].mean()  # ~5.8 here
    assert valid.mean() > 0.4
    for gsd, limit in ((0.3, 3.5), (1.0, 6.0)):  # measured 2.5 and 4.9
        diff = np.abs(images[gsd] - ref)[valid].mean()
        assert diff < limit and diff < one_pixel * (0.6 if gsd < 0.5 else 0.9), (gsd, diff)


def test_native_keeps_the_source_grid(tmp_path):
    _, pair = _pair(tmp_path / "region", 0.3, size_km=0.1)
    build_tiles(pair, tmp_path / "t.zarr", options=TileOptions(gsd_range=(0.25, 1.0)))
    attrs = open_tiles(str(tmp_path / "t.zarr")).attrs
    assert attrs["pixel_size"] == pytest.approx(0.3)
    assert attrs["gsd"]["mode"] == "native" and attrs["gsd"]["target"] == pytest.approx(0.3)
    assert attrs["gsd"]["resampling"] == {"before": "none", "after": "none"}


def test_coarser_than_accepted_is_refused_before_reading(tmp_path):
    region, pair = _pair(tmp_path / "region", 10.0, size_km=0.5)
    for path in (*region.before_paths, *region.after_paths):
        path.write_bytes(b"not a GeoTIFF")  # any pixel read would fail with a read error
    with pytest.raises(GSDError) as err:
        build_tiles(pair, tmp_path / "t.zarr", options=MODEL)
    message = str(err.value)
    assert f"before item {pair.before.ids[0]!r}" in message and "is 10 m per pixel" in message
    assert "0.25-1 m" in message and "trained at 0.5 m" in message
    assert "--allow-any-gsd" in message
    assert not (tmp_path / "t.zarr").exists()
    with pytest.raises(TilingError):  # lifting the check: now it reads, and the files are bad
        build_tiles(pair, tmp_path / "t.zarr", options=TileOptions(gsd=0.5, gsd_range=None))


def _undescribed(pair):
    pair = copy.deepcopy(pair)
    for item in (*pair.before.items, *pair.after.items):
        for obj in (item.properties, *(a.extra_fields for a in item.assets.values())):
            for key in ("gsd", "proj:transform"):
                obj.pop(key, None)
            for band in obj.get("raster:bands") or []:
                band.pop("spatial_resolution", None)
    return pair


def test_item_without_gsd_is_named(tmp_path):
    region, pair = _pair(tmp_path / "region", 0.5, size_km=0.1)
    bare = _undescribed(pair)
    assert item_gsd(bare.before.items[0]).source == "file header"  # GDAL's geotransform
    for path in (*region.before_paths, *region.after_paths):
        path.write_bytes(b"not a GeoTIFF")  # no header either: no way to tell
    assert item_gsd(bare.before.items[0]) is None
    with pytest.raises(GSDError, match=f"before item {pair.before.ids[0]!r}: cannot tell its"):
        build_tiles(bare, tmp_path / "t.zarr", options=MODEL)


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="gsd must be a positive number"):
        TileOptions(gsd=0)
    with pytest.raises(ValueError, match="gsd_range must be"):
        TileOptions(gsd_range=(1.0, 0.5))
