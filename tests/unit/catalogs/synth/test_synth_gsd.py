"""``gsd=``: a region written at another pixel size keeps its world, truth and object sizes in
metres; STAC and ``truth.json`` describe the grid it is written on."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.warp import Resampling, reproject

from catalogs.errors import InputError
from catalogs.synth import load_truth, rasterize_truth, synthesize_region

KW = {"size_km": 0.4, "seed": 17}


@pytest.fixture(scope="module")
def regions(tmp_path_factory):
    base = tmp_path_factory.mktemp("gsd")
    return {g: synthesize_region(base / f"g{g}", gsd=g, **KW) for g in (0.5, 0.3, 1.0)}


def _items(region) -> list[dict]:
    return [json.loads(line) for line in region.items_path.read_text().splitlines()]


@pytest.mark.parametrize("gsd", [0.3, 1.0])
def test_items_and_rasters_are_at_the_gsd(regions, gsd):
    region = regions[gsd]
    side = round(400 / gsd)
    for item in _items(region):
        props = item["properties"]
        assert props["gsd"] == gsd
        tr = props["proj:transform"]
        assert tr[0] == gsd and tr[4] == -gsd
        assert item["assets"]["visual"]["raster:bands"][0]["spatial_resolution"] == gsd
    before = next(it for it in _items(region) if it["properties"]["changevg:role"] == "before")
    assert before["properties"]["proj:shape"] == [side, side]
    with rasterio.open(region.before_paths[0]) as src:
        assert src.res == (gsd, gsd) and src.shape == (side, side)
        assert list(src.transform)[:6] == before["properties"]["proj:transform"]
    with rasterio.open(region.after_paths[0]) as src:
        meta = json.loads((region.root / "truth.json").read_text())
        assert src.res == (gsd, gsd) and list(src.shape) == meta["after"]["shape"]
        assert meta["pixel_size_m"] == gsd
        assert list(src.transform)[:6] == meta["after"]["transform"]
    coll = json.loads(region.collection_path.read_text())
    assert coll["summaries"]["gsd"] == [gsd]
    # Same place on the ground: the grid starts where the 0.5 m one does.
    ref = next(it for it in _items(regions[0.5]) if it["properties"]["changevg:role"] == "before")
    ref_tr = ref["properties"]["proj:transform"]
    assert (tr := before["properties"]["proj:transform"])[2] == ref_tr[2] and tr[5] == ref_tr[5]


@pytest.mark.parametrize("gsd", [0.3, 1.0])
def test_world_truth_and_misregistration_in_metres_are_kept(regions, gsd):
    ref, region = regions[0.5], regions[gsd]
    t0, t1 = load_truth(ref.root), load_truth(region.root)
    assert list(t0["object_id"]) == list(t1["object_id"])
    assert all(a.equals_exact(b, 0.0) for a, b in zip(t0.geometry, t1.geometry, strict=True))
    m0 = np.array(ref.misregistration_px) * 0.5
    np.testing.assert_allclose(np.array(region.misregistration_px) * gsd, m0, atol=1e-9)


def _before_after(region) -> tuple[np.ndarray, np.ndarray, Affine]:
    """Before image and the after image warped onto the before grid (mean of the bands)."""
    with rasterio.open(region.before_paths[0]) as src:
        before, tr, crs = src.read().astype(np.float32).mean(0), src.transform, src.crs
    with rasterio.open(region.after_paths[0]) as src:
        after = np.zeros_like(before)
        reproject(
            src.read().astype(np.float32).mean(0),
            after,
            src_transform=src.transform,
            src_crs=src.crs,
            dst_transform=tr,
            dst_crs=crs,
            resampling=Resampling.bilinear,
        )
    return before, after, tr


@pytest.mark.parametrize("gsd", [0.3, 1.0])
def test_changed_buildings_keep_their_size_in_metres(regions, gsd):
    """Area on the ground (m2) of the pixels that change around new/demolished buildings."""

    def changed_m2(region, g):
        before, after, tr = _before_after(region)
        truth = load_truth(region.root)
        near = truth[truth["class"] == "building"].copy()
        near["geometry"] = near.geometry.buffer(2.0)
        zone = rasterize_truth(near, transform=tr, shape=before.shape) > 0
        return float((np.abs(after - before)[zone] > 35).sum()) * g * g, float(zone.sum()) * g * g

    area_ref, zone_ref = changed_m2(regions[0.5], 0.5)
    area, zone = changed_m2(regions[gsd], gsd)
    assert area_ref > 200.0, "the region needs changed buildings to measure"
    assert zone == pytest.approx(zone_ref, rel=0.05)
    assert area == pytest.approx(area_ref, rel=0.2)  # same m2: objects did not scale with pixels


def test_coarser_image_is_the_finer_one_averaged(regions):
    with rasterio.open(regions[0.5].before_paths[0]) as src:
        fine = src.read().astype(np.float32).mean(0)
    with rasterio.open(regions[1.0].before_paths[0]) as src:
        coarse = src.read().astype(np.float32).mean(0)
    pooled = fine.reshape(coarse.shape[0], 2, coarse.shape[1], 2).mean(axis=(1, 3))
    assert np.corrcoef(pooled.ravel(), coarse.ravel())[0, 1] > 0.9


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), 25.0, "fine"])
def test_bad_gsd_is_refused(tmp_path, bad):
    with pytest.raises(InputError, match="gsd="):
        synthesize_region(tmp_path, size_km=0.2, gsd=bad)  # type: ignore[arg-type]


def test_too_many_pixels_or_too_much_shift_are_refused(tmp_path):
    with pytest.raises(InputError, match="px per side"):
        synthesize_region(tmp_path, size_km=4.0, gsd=0.3)
    with pytest.raises(InputError, match="misregistration_px"):
        synthesize_region(tmp_path, size_km=0.5, gsd=2.0, misregistration_px=(3.0, 0.0))
