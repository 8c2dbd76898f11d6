"""synthesize_region end to end: files, STAC documents, COGs, truth and misregistration."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
import shapely
from affine import Affine
from rasterio.warp import Resampling, reproject
from scipy import ndimage
from shapely.geometry import box

from catalogs.errors import InputError
from catalogs.synth import (
    SynthRegion,
    load_truth,
    quicklook,
    rasterize_truth,
    synthesize_region,
)

SIZE = 0.4  # km: 800 x 800 px per date, about a second per region
SHIFT = (1.2, -0.7)


@pytest.fixture(scope="module")
def region(tmp_path_factory) -> SynthRegion:
    return synthesize_region(tmp_path_factory.mktemp("synth") / "r", size_km=SIZE, seed=4)


@pytest.fixture(scope="module")
def hidden(tmp_path_factory) -> SynthRegion:
    """Same seed, a known shift that the metadata does not describe."""
    return synthesize_region(
        tmp_path_factory.mktemp("synth") / "h",
        size_km=SIZE,
        seed=4,
        misregistration_px=SHIFT,
        misregistration_in_metadata=False,
    )


def _features(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _read(path: Path) -> tuple[np.ndarray, rasterio.Affine]:
    with rasterio.open(path) as src:
        return src.read(), src.transform


def _after_on_before_grid(region: SynthRegion) -> tuple[np.ndarray, np.ndarray, Affine]:
    before, btr = _read(region.before_paths[0])
    after, atr = _read(region.after_paths[0])
    out = np.zeros(before.shape, np.float32)
    reproject(
        after.astype(np.float32),
        out,
        src_transform=atr,
        src_crs=region.crs,
        dst_transform=btr,
        dst_crs=region.crs,
        resampling=Resampling.bilinear,
        src_nodata=0,
        dst_nodata=0,
    )
    return before.astype(np.float32), out, btr


def _phase_shift(
    ref: np.ndarray, mov: np.ndarray, upsample: int = 40, cutoff: float = 0.3
) -> tuple[float, float]:
    """(dx, dy) such that mov(x) ~ ref(x - d): phase correlation refined by an upsampled DFT.

    Frequencies above ``cutoff`` cycles/px are left out: interpolation kernels (the scene's own
    resampling, a reprojection) distort the phase of the finest detail.
    """
    h, w = ref.shape
    win = np.outer(np.hanning(h), np.hanning(w))
    f_ref = np.fft.fft2((ref - ref.mean()) * win)
    f_mov = np.fft.fft2((mov - mov.mean()) * win)
    prod = f_mov * np.conj(f_ref)
    prod /= np.abs(prod) + 1e-12
    fy, fx = np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing="ij")
    prod[np.hypot(fy, fx) > cutoff] = 0
    corr = np.fft.ifft2(prod).real
    peak = np.array(np.unravel_index(np.argmax(corr), corr.shape), float)
    peak[peak > np.array([h, w]) / 2] -= np.array([h, w])[peak > np.array([h, w]) / 2]
    region = int(np.ceil(upsample * 1.5))
    centre = region // 2
    offsets = centre - peak * upsample
    freqs = [np.fft.fftfreq(n, upsample) for n in (h, w)]
    kr = np.exp(2j * np.pi * (np.arange(region) - offsets[0])[:, None] * freqs[0][None, :])
    kc = np.exp(2j * np.pi * (np.arange(region) - offsets[1])[:, None] * freqs[1][None, :])
    fine = (kr @ prod @ kc.T).real
    best = np.array(np.unravel_index(np.argmax(fine), fine.shape), float) - centre
    dy, dx = peak + best / upsample
    return float(dx), float(dy)


def _native_residual(region: SynthRegion) -> tuple[float, float]:
    """Content shift of after relative to before (before-grid px) left after placing the after
    scene with its written geotransform, measured without reprojecting: integer-aligned windows
    of both native grids, then the known fractional grid offset is added back."""
    rows, cols = _quiet_window(region)
    before, btr = _read(region.before_paths[0])
    after, atr = _read(region.after_paths[0])
    oc, orow = ~btr * (atr.c, atr.f)
    ic, ir = round(oc), round(orow)
    b = before[:, rows, cols].astype(float).mean(0)
    a = after[:, rows.start - ir : rows.stop - ir, cols.start - ic : cols.stop - ic]
    sx, sy = _phase_shift(b, a.astype(float).mean(0))
    return sx + (oc - ic), sy + (orow - ir)


def _warped_residual(region: SynthRegion) -> tuple[float, float]:
    """The same, measured after reprojecting the after scene onto the before grid."""
    before, after, _ = _after_on_before_grid(region)
    rows, cols = _quiet_window(region)
    return _phase_shift(before[:, rows, cols].mean(0), after[:, rows, cols].mean(0), cutoff=0.25)


def _quiet_window(region: SynthRegion, size: int = 256) -> tuple[slice, slice]:
    """A window with no change near it (unchanged content only)."""
    with rasterio.open(region.before_paths[0]) as src:
        shape, tr = src.shape, src.transform
    changed = rasterize_truth(load_truth(region.truth_path), transform=tr, shape=shape) > 0
    changed = ndimage.binary_dilation(changed, iterations=30)
    best = None
    edge = 48  # stay where the (smaller or shifted) after scene has data too
    for r in range(edge, shape[0] - size - edge + 1, 16):
        for c in range(edge, shape[1] - size - edge + 1, 16):
            frac = changed[r : r + size, c : c + size].mean()
            if best is None or frac < best[0]:
                best = (frac, r, c)
    assert best is not None and best[0] < 0.02
    return slice(best[1], best[1] + size), slice(best[2], best[2] + size)


def test_phase_shift_helper_sign_convention():
    ref = ndimage.gaussian_filter(np.random.default_rng(0).standard_normal((128, 128)), 2)
    mov = ndimage.shift(ref, (-0.7, 1.2), order=3, mode="wrap")  # content moves +x, -y
    assert _phase_shift(ref, mov) == pytest.approx((1.2, -0.7), abs=0.1)


def test_files_and_region_facts(region):
    names = sorted(p.name for p in region.root.iterdir())
    assert names == [
        "after.tif",
        "before.tif",
        "collection.json",
        "items.json",
        "items.ndjson",
        "truth.json",
        "truth.parquet",
    ]
    assert region.crs == "EPSG:32611" and region.name == "synth-4"
    assert region.before_paths == [region.root / "before.tif"]
    minx, miny, maxx, maxy = region.bbox_lonlat
    assert -116.21 < minx < maxx < -116.19 and 33.89 < miny < maxy < 33.91
    dx, dy = region.misregistration_px
    assert 0.3 <= np.hypot(dx, dy) <= 1.5 and region.misregistration_in_metadata


def test_stac_documents_load_and_agree(region):
    lines = _features(region.items_path)
    fc = json.loads((region.root / "items.json").read_text())
    assert fc["type"] == "FeatureCollection" and fc["features"] == lines
    assert [f["id"] for f in lines] == ["synth-4-before", "synth-4-after"]
    coll = json.loads(region.collection_path.read_text())
    assert coll["links"] == [] and coll["id"] == "synthetic-rgb"
    pc = pystac.Collection.from_dict(coll)
    assert pc.extent.temporal.intervals[0][0].year == 2022
    for f in lines:
        item = pystac.Item.from_dict(f)
        assert item.collection_id == "synthetic-rgb" and item.properties["gsd"] == 0.5
        href = item.assets["visual"].href
        assert href.startswith("file:///") and Path(href[7:]).exists()
        assert item.assets["visual"].media_type == pystac.MediaType.COG
        assert item.properties["proj:code"] == "EPSG:32611"
        assert item.properties["eo:cloud_cover"] == 0
        assert shapely.geometry.shape(item.geometry).within(box(*item.bbox).buffer(1e-9))
        with rasterio.open(href[7:]) as src:
            assert list(src.transform)[:6] == item.properties["proj:transform"]
            assert list(src.shape) == item.properties["proj:shape"]
            assert list(src.bounds) == item.properties["proj:bbox"]
    assert lines[0]["properties"]["datetime"].startswith("2022-05-01T")
    assert lines[1]["properties"]["datetime"].startswith("2024-06-15T")


def test_rustac_reads_the_catalog(region):
    rustac = pytest.importorskip("rustac")
    items = rustac.read_sync(str(region.items_path))
    assert len(items["features"]) == 2
    coll = rustac.read_sync(str(region.collection_path), set_self_link=False)
    assert coll["id"] == "synthetic-rgb" and coll["links"] == []


def test_cogs_are_valid_rgb_without_zeros(region):
    for path in [*region.before_paths, *region.after_paths]:
        with rasterio.open(path) as src:
            assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
            assert src.count == 3 and src.dtypes == ("uint8",) * 3 and src.nodata == 0
            assert src.block_shapes[0] == (512, 512)
            assert src.overviews(1) == [2]
            assert src.res == (0.5, 0.5) and src.crs.to_epsg() == 32611
            assert src.colorinterp[0].name == "red"
            data = src.read()
        assert data.min() >= 1 and data.std() > 10


def test_after_grid_is_different_from_before_grid(region):
    with rasterio.open(region.before_paths[0]) as b, rasterio.open(region.after_paths[0]) as a:
        assert b.shape == (800, 800) and a.shape != b.shape
        off = ~b.transform * (a.transform.c, a.transform.f)
        assert all(0.05 < abs(v) % 1 < 0.95 for v in off)  # fractional pixel offset
        assert all(abs(v) < 0.06 * 800 for v in off)


def test_truth_table_and_metadata(region):
    truth = load_truth(region.root)
    assert list(truth.columns) == ["object_id", "class", "change", "area_m2", "geometry"]
    assert truth.crs.to_epsg() == 32611 and truth.object_id.is_unique
    assert set(truth["class"]) <= {"building", "road"}
    assert set(truth["change"]) <= {"new", "demolished"}
    assert {"building"} <= set(truth["class"]) and len(truth) >= 3
    assert np.allclose(truth.area_m2, truth.geometry.area)
    assert truth.geometry.is_valid.all()
    meta = json.loads((region.root / "truth.json").read_text())
    assert meta["seed"] == 4 and meta["size_km"] == SIZE and meta["crs"] == region.crs
    mis = meta["misregistration"]
    assert (mis["dx_px"], mis["dy_px"]) == region.misregistration_px
    assert mis["in_metadata"] is True and mis["residual_px"] == [0.0, 0.0]
    with rasterio.open(region.after_paths[0]) as a:
        assert meta["after"]["transform"] == list(a.transform)[:6]
    assert meta["after"]["transform"] == meta["after"]["true_transform"]
    n_new = int(((truth["class"] == "building") & (truth.change == "new")).sum())
    assert meta["changes"]["n_new_buildings"] == n_new
    assert 0 < meta["changes"]["changed_tile_fraction"] <= 1
    look = meta["before"]["look"]
    assert {"sun_azimuth_deg", "sun_elevation_deg", "greenness", "haze", "noise_dn"} <= set(look)


def test_truth_polygons_match_the_pixels(region):
    before, after, btr = _after_on_before_grid(region)
    truth = load_truth(region.truth_path)
    diff = np.sqrt(((after - before) ** 2).sum(axis=0))  # colour distance per pixel
    valid = (after > 0).all(axis=0)
    mask = rasterize_truth(truth, transform=btr, shape=diff.shape)
    background = valid & ~ndimage.binary_dilation(mask > 0, iterations=25)
    base = float(np.median(diff[background]))
    contrasts = []
    for idx in range(len(truth)):
        own = rasterize_truth(truth.iloc[[idx]], transform=btr, shape=diff.shape) > 0
        core = ndimage.binary_erosion(own, iterations=2) & valid
        if core.sum() < 20:
            continue
        contrasts.append(float(np.median(diff[core])))
        assert contrasts[-1] > 2.5 * base, truth.object_id.iloc[idx]
    assert len(contrasts) >= 3 and np.median(contrasts) > 4 * base
    # Unchanged content far from any change differs little (season, haze and noise only).
    assert base < 20


def test_described_misregistration_vanishes_on_the_before_grid(region):
    assert _native_residual(region) == pytest.approx((0.0, 0.0), abs=0.2)
    assert _warped_residual(region) == pytest.approx((0.0, 0.0), abs=0.2)


def test_hidden_misregistration_is_measurable(hidden):
    assert hidden.misregistration_px == SHIFT and not hidden.misregistration_in_metadata
    meta = json.loads((hidden.root / "truth.json").read_text())
    assert meta["misregistration"]["residual_px"] == list(SHIFT)
    assert meta["after"]["transform"] == meta["after"]["nominal_transform"]
    assert _native_residual(hidden) == pytest.approx(SHIFT, abs=0.2)
    assert _warped_residual(hidden) == pytest.approx(SHIFT, abs=0.2)


def test_same_seed_same_bytes_other_seed_other_scene(region, hidden, tmp_path):
    again = synthesize_region(tmp_path / "again", size_km=SIZE, seed=4)
    for name in ("before.tif", "after.tif", "truth.parquet", "truth.json", "collection.json"):
        assert (again.root / name).read_bytes() == (region.root / name).read_bytes(), name
    a, b = _features(again.items_path), _features(region.items_path)
    for fa, fb in zip(a, b, strict=True):
        fa["assets"]["visual"]["href"] = fb["assets"]["visual"]["href"] = ""
        assert fa == fb
    # The world and the before scene do not depend on how the shift is described.
    assert (hidden.root / "before.tif").read_bytes() == (region.root / "before.tif").read_bytes()
    other = synthesize_region(tmp_path / "other", size_km=SIZE, seed=5)
    assert (other.root / "before.tif").read_bytes() != (region.root / "before.tif").read_bytes()
    assert not load_truth(other.root).geometry.equals(load_truth(region.root).geometry)


def test_split_mosaic_tiles_cover_the_scene(region, tmp_path):
    four = synthesize_region(tmp_path / "four", size_km=SIZE, seed=4, split=2)
    assert [p.name for p in four.before_paths] == [
        "before_r0_c0.tif",
        "before_r0_c1.tif",
        "before_r1_c0.tif",
        "before_r1_c1.tif",
    ]
    ids = [f["id"] for f in _features(four.items_path)]
    assert ids[:4] == [f"synth-4-before-r{r}-c{c}" for r in (0, 1) for c in (0, 1)]
    assert len(ids) == 8 and ids[4] == "synth-4-after-r0-c0"
    for key in ("before", "after"):
        whole, wtr = _read(getattr(region, f"{key}_paths")[0])
        cover = np.zeros(whole.shape[1:], int)
        for path in getattr(four, f"{key}_paths"):
            part, ptr = _read(path)
            c0, r0 = (round(v) for v in ~wtr * (ptr.c, ptr.f))
            h, w = part.shape[1:]
            assert np.array_equal(part, whole[:, r0 : r0 + h, c0 : c0 + w])
            cover[r0 : r0 + h, c0 : c0 + w] += 1
        assert cover.min() == 1 and cover.max() == 4  # adjacent tiles overlap a few pixels
        assert 0 < (cover > 1).mean() < 0.05


def test_uint16_reflectance(region, tmp_path):
    r16 = synthesize_region(tmp_path / "r16", size_km=SIZE, seed=4, dtype="uint16")
    data16, _ = _read(r16.before_paths[0])
    data8, _ = _read(region.before_paths[0])
    assert data16.dtype == np.uint16 and data16.min() >= 1 and data16.max() <= 10000
    assert 300 < np.median(data16) < 4000  # a land surface: a few % to ~40 % reflectance
    corr = np.corrcoef(data16[0].ravel()[::7], data8[0].ravel()[::7])[0, 1]
    assert corr > 0.95
    band = _features(r16.items_path)[0]["assets"]["visual"]["raster:bands"][0]
    assert band["data_type"] == "uint16" and band["scale"] == 1e-4 and band["nodata"] == 0


def test_quicklook_writes_a_small_png(region, tmp_path):
    out = quicklook(region.before_paths[0], tmp_path / "q.png", max_size=200)
    from PIL import Image

    with Image.open(out) as img:
        assert img.size == (200, 200) and img.mode == "RGB"


def test_rerun_in_the_same_folder_replaces_old_scenes(tmp_path):
    synthesize_region(tmp_path, size_km=0.2, seed=1, split=2)
    one = synthesize_region(tmp_path, size_km=0.2, seed=1)
    tifs = sorted(p.name for p in tmp_path.glob("*.tif"))
    assert tifs == ["after.tif", "before.tif"] and len(_features(one.items_path)) == 2


def test_tiny_region_without_changes_still_writes_valid_truth(tmp_path):
    tiny = synthesize_region(tmp_path, size_km=0.05, seed=1, region_name="tiny")
    truth = load_truth(tiny.truth_path)
    assert list(truth.columns) == ["object_id", "class", "change", "area_m2", "geometry"]
    with rasterio.open(tiny.before_paths[0]) as src:
        mask = rasterize_truth(truth, transform=src.transform, shape=src.shape)
    assert mask.shape == (100, 100) and mask.max() <= 2
    assert [f["id"] for f in _features(tiny.items_path)] == ["tiny-before", "tiny-after"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"dtype": "float32"},
        {"split": 0},
        {"epsg": 4326},
        {"before_date": "2024-01-01", "after_date": "2023-01-01"},
        {"before_date": "yesterday"},
        {"misregistration_px": (20.0, 0.0)},
        {"size_km": 0.0},
        {"size_km": 12.0},
        {"seed": -1},
    ],
)
def test_bad_options_are_refused(tmp_path, kwargs):
    with pytest.raises(InputError):
        synthesize_region(tmp_path / "bad", **kwargs)


@pytest.mark.slow
def test_two_km_region_generates_in_reasonable_time(tmp_path):
    t0 = time.process_time()
    big = synthesize_region(tmp_path / "big", size_km=2.0, seed=0)
    cpu = time.process_time() - t0
    with rasterio.open(big.before_paths[0]) as src:
        assert src.shape == (4000, 4000) and src.overviews(1) == [2, 4, 8]
    truth = load_truth(big.truth_path)
    assert (truth["class"] == "building").sum() > 20
    meta = json.loads((big.root / "truth.json").read_text())
    assert 0.15 <= meta["changes"]["changed_tile_fraction"] <= 0.45
    assert cpu < 40.0
