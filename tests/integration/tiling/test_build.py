"""build_tiles on real synthetic COGs served by a real STAC API, read back from real Zarr."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import rasterio.windows
import zarr
from scipy import ndimage

import tiling
from catalogs.synth import load_truth, rasterize_truth
from tiling import TileOptions, TilingError, build_tiles, open_tiles


@pytest.fixture(scope="module")
def store(small_pair, tmp_path_factory):
    path = tmp_path_factory.mktemp("tiles") / "tiles.zarr"
    summary = build_tiles(small_pair, path, options=TileOptions(tile_size=128), name="t")
    return path, summary


def test_layout_matches_the_contract(store, small_pair):
    path, summary = store
    ds = open_tiles(str(path))
    assert ds["image"].dims == ("tile", "time", "band", "y", "x")
    assert ds["image"].dtype == np.uint8
    assert ds["image"].shape[1:] == (2, 3, 128, 128)
    assert ds["image"].encoding["chunks"] == (1, 2, 3, 128, 128)
    assert list(ds["time"].values) == ["before", "after"]
    assert list(ds["band"].values) == ["red", "green", "blue"]
    assert summary.n_tiles == ds.sizes["tile"] == summary.n_written
    ids = list(ds["tile_id"].values)
    assert ids[0] == "t-0-0" and len(set(ids)) == len(ids)
    attrs = ds.attrs
    assert attrs["crs"] == small_pair.crs and attrs["pixel_size"] == 0.5
    assert attrs["tile_size"] == 128 and attrs["overlap"] == 0
    assert [i["id"] for i in attrs["sources"]["before"]["items"]] == small_pair.before.ids
    assert attrs["normalisation"]["before"]["method"] == "none"
    assert attrs["complete"] is True
    assert not np.isnan(ds["nodata_fraction"].values).any()
    group = zarr.open_group(str(path), mode="r")
    assert group.metadata.zarr_format == 3


def test_before_tiles_are_the_native_pixels(store, small_region):
    """The grid is the before scene's own grid: tiles equal a plain rasterio window read."""
    ds = open_tiles(str(store[0]))
    tile_id = str(ds["tile_id"].values[ds.sizes["tile"] // 2])
    t = ds.tiles.transform(tile_id)
    with rasterio.open(small_region.before_paths[0]) as src:
        win = rasterio.windows.from_bounds(t.c, t.f - 64, t.c + 64, t.f, src.transform)
        assert float(win.col_off).is_integer() and float(win.row_off).is_integer()
        ref = src.read(window=win.round_offsets().round_lengths(), boundless=True, fill_value=0)
    assert np.array_equal(ds.tiles.image(tile_id, "before").values, ref)


def test_truth_polygon_lands_on_its_pixels(store, small_region):
    """Each new building's known polygon covers pixels that changed, in the right tile."""
    ds = open_tiles(str(store[0]))
    truth = load_truth(small_region.truth_path)
    new = truth[(truth["class"] == "building") & (truth["change"] == "new")]
    full = (ds["nodata_fraction"].values == 0).all(axis=1)
    x0, y0, size_m = ds["x0"].values, ds["y0"].values, 128 * 0.5
    fractions = []
    for _, building in new.iterrows():
        minx, miny, maxx, maxy = building.geometry.bounds
        inside = (x0 <= minx) & (maxx < x0 + size_m) & (y0 - size_m < miny) & (maxy <= y0) & full
        if not inside.any():
            continue  # on a tile edge or in a partly-empty tile
        index = int(np.flatnonzero(inside)[0])
        frame = new.loc[[building.name]]
        transform = ds.tiles.transform(index)
        mask = rasterize_truth(frame, transform=transform, shape=(128, 128)) > 0
        others = (
            rasterize_truth(truth.drop(index=building.name), transform=transform, shape=(128, 128))
            > 0
        )
        pair = ds["image"].isel(tile=index).values.astype("int16")
        diff = np.abs(pair[1] - pair[0]).mean(axis=0)
        # a ring around the building, away from every other changed object and its shadow
        ring = _ring(mask) & ~ndimage.binary_dilation(others, iterations=8)
        if ring.sum() < 50:
            continue
        assert mask.sum() > 20
        # the new roof is inside the polygon: most of its pixels changed more than 90% of the
        # ground around it (where only the seasons changed)
        threshold = np.percentile(diff[ring], 90)
        fractions.append(np.mean(diff[mask] > threshold))
        assert diff[mask].mean() > diff[ring].mean(), building.object_id
    assert len(fractions) >= 2
    assert np.mean(fractions) > 0.6  # low-contrast roofs (grey on grey) lower a few


def _ring(mask: np.ndarray) -> np.ndarray:
    """Ground 12-20 px around ``mask``: beyond the building's own cast shadow."""
    grown = ndimage.binary_dilation(mask, iterations=20)
    return grown & ~ndimage.binary_dilation(mask, iterations=12)


def test_rerun_is_a_no_op_and_other_options_are_refused(store, small_pair):
    path, _ = store
    again = build_tiles(small_pair, path, options=TileOptions(tile_size=128), name="t")
    assert again.n_written == 0 and again.n_already_done == again.n_tiles
    with pytest.raises(TilingError, match="overwrite"):
        build_tiles(small_pair, path, options=TileOptions(tile_size=64), name="t")


def test_aoi_beyond_the_data_gives_counted_nodata_tiles(small_pair, tmp_path):
    from dataclasses import replace

    from shapely.affinity import scale

    wide = replace(small_pair, aoi=scale(small_pair.aoi, 1.8, 1.8))
    summary = build_tiles(wide, tmp_path / "wide.zarr", options=TileOptions(tile_size=128))
    ds = open_tiles(str(tmp_path / "wide.zarr"))
    frac = ds["nodata_fraction"].values
    assert summary.n_mostly_nodata == int((frac > 0.5).any(axis=1).sum()) > 0
    assert len(summary.mostly_nodata) == summary.n_mostly_nodata
    assert ds.attrs["summary"]["mostly_nodata"] == summary.mostly_nodata
    assert summary.n_tiles == ds.sizes["tile"]  # nothing dropped


def test_overlap_tiles_share_pixels(small_pair, tmp_path):
    build_tiles(small_pair, tmp_path / "o.zarr", options=TileOptions(tile_size=64, overlap=16))
    ds = open_tiles(str(tmp_path / "o.zarr"))
    a = ds.tiles.image("aoi-1-1", "before").values
    b = ds.tiles.image("aoi-1-2", "before").values
    assert np.array_equal(a[:, :, 48:], b[:, :, :16])
    assert ds.tiles.transform("aoi-1-2").c - ds.tiles.transform("aoi-1-1").c == 48 * 0.5


def test_truncated_cog_is_named(small_pair, small_region, tmp_path):
    import shutil
    from dataclasses import replace

    import pystac

    broken = tmp_path / "broken.tif"
    shutil.copy(small_region.after_paths[0], broken)
    with open(broken, "r+b") as f:
        f.truncate(broken.stat().st_size // 3)
    item = small_pair.after.items[0].clone()
    for asset in item.assets.values():
        asset.href = broken.as_uri()
    after = replace(small_pair.after, items=(pystac.Item.from_dict(item.to_dict()),))
    with pytest.raises(TilingError, match=item.id):
        build_tiles(replace(small_pair, after=after), tmp_path / "x.zarr")


def test_accessor_footprint_matches_transform(store):
    ds = open_tiles(str(store[0]))
    fp = ds.tiles.footprint("t-1-0")
    t = ds.tiles.transform("t-1-0")
    assert fp.bounds == pytest.approx((t.c, t.f - 64, t.c + 64, t.f))
    assert isinstance(ds.tiles.crs.to_epsg(), int)
    with pytest.raises(KeyError, match="nope"):
        ds.tiles.index("nope")
    assert tiling.plan_grid  # public API present
