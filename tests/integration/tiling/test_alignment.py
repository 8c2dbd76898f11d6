"""Co-registration: metadata-described shifts vanish on the common grid, others are measured."""

from __future__ import annotations

import numpy as np
import pytest

from catalogs.pairing import pair_scenes
from catalogs.synth import synthesize_region
from tiling import TileOptions, build_tiles, measure_shift, open_tiles

BEFORE, AFTER = "2022-01-01/2022-12-31", "2024-01-01/2024-12-31"


def _pair(region):
    import pystac

    items = [pystac.Item.from_dict(f) for f in _features(region.items_path)]
    return pair_scenes(
        items, aoi=_inner_aoi(region), before=BEFORE, after=AFTER, catalog_is_local=True
    )


def _features(path):
    import json

    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _inner_aoi(region):
    from shapely.geometry import box

    minx, miny, maxx, maxy = region.bbox_lonlat
    dx, dy = (maxx - minx) * 0.1, (maxy - miny) * 0.1
    return box(minx + dx, miny + dy, maxx - dx, maxy - dy)


def _residual(path) -> tuple[float, float]:
    """Shift measured afresh on the stored tiles (middle tiles, unchanged content dominates)."""
    ds = open_tiles(str(path))
    n = ds.sizes["tile"]
    shifts = []
    for i in range(n):
        pair = ds["image"].isel(tile=i).values
        if (pair == 0).all(axis=1).any():
            continue
        shifts.append(measure_shift(pair[0], pair[1]))
    return tuple(np.median(np.array(shifts), axis=0))


@pytest.fixture(scope="module")
def shifted(tmp_path_factory):
    root = tmp_path_factory.mktemp("shifted")
    described = synthesize_region(
        root / "d",
        size_km=0.4,
        seed=5,
        misregistration_px=(1.2, -0.7),
        misregistration_in_metadata=True,
    )
    hidden = synthesize_region(
        root / "h",
        size_km=0.4,
        seed=5,
        misregistration_px=(1.2, -0.7),
        misregistration_in_metadata=False,
    )
    return described, hidden


def test_shift_described_by_metadata_is_removed(shifted, tmp_path):
    described, _ = shifted
    summary = build_tiles(_pair(described), tmp_path / "d.zarr", options=TileOptions(tile_size=128))
    assert summary.shift_px == pytest.approx((0.0, 0.0), abs=0.2)
    assert _residual(tmp_path / "d.zarr") == pytest.approx((0.0, 0.0), abs=0.25)


def test_undescribed_shift_is_measured_in_pixels(shifted, tmp_path):
    _, hidden = shifted
    summary = build_tiles(_pair(hidden), tmp_path / "h.zarr", options=TileOptions(tile_size=128))
    assert summary.shift_px == pytest.approx((1.2, -0.7), abs=0.2)
    attrs = open_tiles(str(tmp_path / "h.zarr")).attrs["registration"]
    assert attrs["mode"] == "measure" and attrs["applied"] is False


def test_undescribed_shift_is_corrected_on_request(shifted, tmp_path):
    _, hidden = shifted
    options = TileOptions(tile_size=128, register="correct")
    summary = build_tiles(_pair(hidden), tmp_path / "c.zarr", options=options)
    assert summary.shift_px == pytest.approx((1.2, -0.7), abs=0.2)
    assert open_tiles(str(tmp_path / "c.zarr")).attrs["registration"]["applied"] is True
    assert _residual(tmp_path / "c.zarr") == pytest.approx((0.0, 0.0), abs=0.25)


def test_mosaic_of_several_items_equals_the_single_scene(tmp_path):
    one = synthesize_region(tmp_path / "one", size_km=0.4, seed=9)
    four = synthesize_region(tmp_path / "four", size_km=0.4, seed=9, split=2)
    pair4 = _pair(four)
    assert len(pair4.before.items) == 4 and len(pair4.after.items) == 4
    build_tiles(_pair(one), tmp_path / "1.zarr", options=TileOptions(tile_size=64))
    build_tiles(pair4, tmp_path / "4.zarr", options=TileOptions(tile_size=64))
    a = open_tiles(str(tmp_path / "1.zarr"))["image"].values
    b = open_tiles(str(tmp_path / "4.zarr"))["image"].values
    assert a.shape == b.shape
    assert np.array_equal(a[:, 0], b[:, 0])  # before: native pixels, mosaicked exactly
    assert np.abs(a[:, 1].astype(int) - b[:, 1].astype(int)).mean() < 1.0


def test_sixteen_bit_reflectance_is_stretched_and_recorded(tmp_path):
    region = synthesize_region(tmp_path / "r16", size_km=0.3, seed=2, dtype="uint16")
    build_tiles(_pair(region), tmp_path / "16.zarr", options=TileOptions(tile_size=64))
    ds = open_tiles(str(tmp_path / "16.zarr"))
    norm = ds.attrs["normalisation"]["before"]
    assert norm["method"] == "percentile-linear" and norm["source_dtype"] == "uint16"
    assert len(norm["low"]) == 3 and all(h > lo for lo, h in zip(norm["low"], norm["high"]))
    image = ds["image"].values
    valid = ds["nodata_fraction"].values[:, 0] == 0
    assert image[valid, 0].min() >= 1 and image[valid, 0].std() > 20  # uses the uint8 range
