"""Grids, STAC documents and truth helpers of the synthetic-region writer (no rendering)."""

from __future__ import annotations

from pathlib import Path

import geopandas
import numpy as np
import pystac
import pytest
import shapely
from affine import Affine
from shapely.geometry import box

from catalogs.errors import InputError
from catalogs.synth import load_truth, rasterize_truth
from catalogs.synth._truth import after_grid, change_area, tile_boxes
from catalogs.synth._write import (
    footprint_lonlat,
    make_collection,
    make_item,
    split_windows,
)

TR = Affine(0.5, 0.0, 574_000.0, 0.0, -0.5, 3_751_000.0)


@pytest.mark.parametrize("seed", range(8))
def test_after_grid_differs_by_fractions_and_a_few_percent(seed):
    n = 1000
    g = after_grid(n, np.random.default_rng(seed))
    col, row, (h, w) = g["col"], g["row"], g["shape"]
    assert 0.1 < col % 1 < 0.9 and 0.1 < row % 1 < 0.9
    edges = np.array([-col, -row, col + w - n, row + h - n])  # > 0: after reaches further
    assert np.all(np.abs(edges) < 0.06 * n)
    assert (edges > 0).any() and (edges < 0).any()


def test_change_area_is_inside_both_grids():
    nominal = TR * Affine.translation(10.4, -20.6)
    true = TR * Affine.translation(9.4, -20.0)
    core, inner = change_area(TR, 800, nominal, true, (790, 805))
    assert core.area == pytest.approx(400.0**2)
    assert core.contains(inner) and inner.area > 0.8 * core.area


def test_tile_boxes_cover_the_grid_row_major():
    tiles = tile_boxes(TR, 600)  # 256 px tiles: 3 x 3, last ones partial
    assert len(tiles) == 9
    assert shapely.union_all(list(tiles)).equals(box(574000, 3750700, 574300, 3751000))
    assert tiles[0].bounds == (574000.0, 3750872.0, 574128.0, 3751000.0)
    assert tiles[1].bounds[0] == 574128.0


def test_split_windows_overlap_and_cover():
    wins = split_windows((101, 99), 2, 4)
    assert [(r, c) for r, c, _, _ in wins] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    cover = np.zeros((101, 99), int)
    for _, _, rows, cols in wins:
        cover[rows, cols] += 1
    assert cover.min() >= 1
    _, _, rows0, _ = wins[0]
    _, _, rows2, _ = wins[2]
    assert rows0.stop - rows2.start == 8  # 4 px each way across the inner edge
    assert split_windows((10, 10), 1, 4) == [(0, 0, slice(0, 10), slice(0, 10))]


def test_footprint_is_a_closed_ccw_ring_inside_its_bbox():
    bbox, geom = footprint_lonlat(TR, (800, 800), "EPSG:32611")
    ring = geom["coordinates"][0]
    assert ring[0] == ring[-1] and len(ring) == 5
    poly = shapely.geometry.shape(geom)
    assert poly.exterior.is_ccw
    assert box(*bbox).buffer(1e-9).contains(poly)
    assert -117.5 < bbox[0] < bbox[2] < -116 and 33 < bbox[1] < bbox[3] < 35


def test_item_and_collection_load_with_pystac(tmp_path):
    href = tmp_path / "before.tif"
    item = make_item(
        item_id="r-before",
        href=href,
        transform=TR,
        shape=(800, 600),
        crs="EPSG:32611",
        datetime="2022-05-01T18:00:00Z",
        collection_id="c",
        dtype="uint16",
        extra={"changevg:role": "before"},
    )
    loaded = pystac.Item.from_dict(item)
    asset = loaded.assets["visual"]
    assert asset.href == href.resolve().as_uri() and asset.href.startswith("file:///")
    assert asset.roles == ["data", "visual"]
    assert loaded.properties["proj:code"] == "EPSG:32611"
    assert loaded.properties["proj:shape"] == [800, 600]
    assert loaded.properties["proj:bbox"] == [574000.0, 3750600.0, 574300.0, 3751000.0]
    bands = asset.extra_fields["raster:bands"]
    assert bands[0] == {
        "data_type": "uint16",
        "nodata": 0,
        "spatial_resolution": 0.5,
        "scale": 1e-4,
        "offset": 0.0,
        "unit": "reflectance",
    }
    assert [b["common_name"] for b in asset.extra_fields["eo:bands"]] == ["red", "green", "blue"]
    coll = make_collection("c", [item], "test")
    assert coll["links"] == []
    pc = pystac.Collection.from_dict(coll)
    assert pc.id == "c" and pc.extent.spatial.bboxes[0] == item["bbox"]


def test_rasterize_truth_uses_pixel_centres_and_class_values():
    gdf = geopandas.GeoDataFrame(
        {
            "object_id": ["road-1", "building-1"],
            "class": ["road", "building"],
            "change": ["new", "demolished"],
            "area_m2": [0.0, 0.0],
        },
        geometry=[
            box(574000.0, 3750998.0, 574005.0, 3751000.0),  # rows 0-3, cols 0-9
            box(574001.2, 3750997.0, 574002.2, 3750999.0),
        ],  # centres 1.25, 1.75 m
        crs="EPSG:32611",
    )
    mask = rasterize_truth(gdf, transform=TR, shape=(10, 12))
    assert mask.dtype == np.uint8
    expect = np.zeros((10, 12), np.uint8)
    expect[:4, :10] = 1  # road: rows whose centres lie within 2 m of the top, 10 columns
    expect[2:6, 2:4] = 2  # building (wins over road): centres at 1.25 and 1.75 m east
    assert np.array_equal(mask, expect)


def test_load_truth_needs_the_file(tmp_path: Path):
    with pytest.raises(InputError):
        load_truth(tmp_path)
