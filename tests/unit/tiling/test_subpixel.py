"""SubpixelShift: a fractional-pixel translation without GDAL's warp, matching it."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine
from odc.geo.geobox import GeoBox
from rasterio.warp import Resampling, reproject

from tiling.load import SubpixelShift

CRS = "EPSG:32611"
SRC = Affine(0.5, 0, 500_000.0, 0, -0.5, 4_000_000.0)


def _gdal_bilinear(data: np.ndarray, fx: float, fy: float, shape, nodata=None) -> np.ndarray:
    """GDAL's bilinear warp of ``data`` (on SRC) onto SRC moved by (fx, fy) pixels + 1 px."""
    dst_transform = SRC * Affine.translation(1 + fx, 1 + fy)
    out = np.zeros((data.shape[0], *shape), data.dtype)
    if nodata is not None:
        out[:] = nodata
    reproject(
        data, out, src_transform=SRC, src_crs=CRS, dst_transform=dst_transform, dst_crs=CRS,
        resampling=Resampling.bilinear, src_nodata=nodata, dst_nodata=nodata,
    )  # fmt: skip
    return out


@pytest.mark.parametrize(("fx", "fy"), [(0.3, 0.0), (0.25, 0.6), (0.9, 0.45)])
def test_matches_gdal_bilinear_within_one_count(fx, fy):
    data = np.random.default_rng(0).integers(1, 255, (3, 40, 40)).astype("uint8")
    shift = SubpixelShift(fx, fy)
    # the padded read starts one pixel in: grid pixel (0, 0) sits at source (1 + fx, 1 + fy)
    got = shift.apply(data[:, 1:32, 1:32], None)
    want = _gdal_bilinear(data, fx, fy, (30, 30))
    assert got.shape == (3, 30, 30)
    assert np.abs(got.astype(int) - want).max() <= 1


def test_nodata_neighbours_are_left_out():
    data = np.full((1, 6, 6), 100, "uint8")
    data[:, :, :3] = 0  # source columns 0-2 nodata
    got = SubpixelShift(0.3, 0.0).apply(data, 0)
    # output column x samples source x + 0.3: nodata where its nearest source pixel is;
    # column 3 averages only valid neighbours
    assert got.shape == (1, 5, 5)
    assert (got[0, :, :3] == 0).all()
    assert (got[0, :, 3:] == 100).all()


def test_padded_geobox_is_one_pixel_larger_on_the_source_lattice():
    grid = GeoBox((10, 12), SRC * Affine.translation(3.4, 2.25), CRS)
    box = SubpixelShift(0.4, 0.25).padded(grid)
    assert box.shape == (11, 13)
    col, row = ~SRC * (box.affine.c, box.affine.f)
    assert (col, row) == pytest.approx((3.0, 2.0))


def test_float_data_keeps_nan():
    data = np.arange(2 * 5 * 5, dtype="float32").reshape(2, 5, 5)
    data[:, 0, 0] = np.nan
    got = SubpixelShift(0.5, 0.5).apply(data, None)
    assert got.dtype == np.float32 and got.shape == (2, 4, 4)
    assert np.isfinite(got).all()  # the NaN corner is left out of its neighbour's average
    assert got[0, 1, 1] == pytest.approx(data[0, 1:3, 1:3].mean())
