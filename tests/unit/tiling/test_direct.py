"""The direct reader: window reads of items on the grid's pixel lattice, mosaicked like odc-stac."""

from __future__ import annotations

import numpy as np
import odc.stac
import pystac
import pytest
import rasterio
from affine import Affine
from odc.geo.geobox import GeoBox
from rasterio.warp import transform_geom
from shapely.geometry import box, mapping
from shapely.geometry import shape as shape_of

from tiling.direct import direct_reader
from tiling.errors import TilingError
from tiling.load import band_names, open_date

CRS = "EPSG:32611"
ORIGIN = (500_000.0, 4_000_000.0)


def _cog(path, data: np.ndarray, col: float, row: float, nodata=0, res: float = 0.5) -> None:
    """A small tiled GeoTIFF whose pixel (0, 0) is grid pixel (row, col)."""
    transform = Affine(res, 0, ORIGIN[0] + col * 0.5, 0, -res, ORIGIN[1] - row * 0.5)
    profile = dict(
        driver="GTiff", count=data.shape[0], height=data.shape[1], width=data.shape[2],
        dtype=data.dtype, crs=CRS, transform=transform, nodata=nodata,
        tiled=True, blockxsize=16, blockysize=16, compress="deflate",
    )  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)


def _item(item_id: str, path, nodata=0, dtype="uint8") -> pystac.Item:
    with rasterio.open(path) as src:
        transform, shape = list(src.transform)[:6], [src.height, src.width]
        footprint = transform_geom(CRS, "EPSG:4326", mapping(box(*src.bounds)))
    item = pystac.Item(
        item_id, footprint, list(shape_of(footprint).bounds),
        pystac.utils.str_to_datetime("2024-01-01T00:00:00Z"),
        {"proj:code": CRS, "proj:transform": transform, "proj:shape": shape},
    )  # fmt: skip
    bands = [{"name": c, "common_name": c} for c in ("red", "green", "blue")]
    raster = [{"data_type": dtype, "nodata": nodata} for _ in bands]
    item.add_asset(
        "visual",
        pystac.Asset(
            path.as_uri(),
            media_type=pystac.MediaType.COG,
            roles=["data"],
            extra_fields={"eo:bands": bands, "raster:bands": raster},
        ),
    )
    return item


def _geobox(shape=(48, 64), row=0, col=0) -> GeoBox:
    x, y = ORIGIN[0] + col * 0.5, ORIGIN[1] - row * 0.5
    return GeoBox(shape, Affine(0.5, 0, x, 0, -0.5, y), CRS)


def _odc(items, geobox) -> np.ndarray:
    names = band_names(items)
    ds = odc.stac.load(items, bands=names, geobox=geobox, groupby=lambda *_: "m")
    return np.stack([ds[n].values[0] for n in names])


def _random(shape, seed, dtype="uint8") -> np.ndarray:
    return np.random.default_rng(seed).integers(1, 250, shape).astype(dtype)


@pytest.fixture()
def four(tmp_path):
    """Four overlapping items with nodata holes, partly outside a 48 x 64 grid."""
    items = []
    for i, (row, col) in enumerate([(-5, -7), (-3, 30), (20, -2), (25, 33)]):
        data = _random((3, 40, 40), seed=i)
        data[:, 5:12, 8:20] = 0  # a nodata hole the next items fill
        data[1, 30:, 30:] = 0  # a hole in one band only
        path = tmp_path / f"{i}.tif"
        _cog(path, data, col, row)
        items.append(_item(f"item-{i}", path))
    return items


def test_mosaic_matches_odc_stac(four):
    geobox = _geobox()
    reader = direct_reader(four, geobox)
    assert reader is not None and reader.nodata == (0, 0, 0)
    got = reader.read(0, 0, *geobox.shape)
    assert np.array_equal(got, _odc(four, geobox))
    assert (got == 0).any() and (got != 0).mean() > 0.5  # partial coverage and holes


def test_window_reads_match_the_whole(four):
    reader = direct_reader(four, _geobox())
    whole = reader.read(0, 0, 48, 64)
    assert np.array_equal(reader.read(10, 20, 17, 30), whole[:, 10:27, 20:50])
    beyond = reader.read(-50, -50, 20, 20)  # no item there: all nodata
    assert beyond.shape == (3, 20, 20) and not beyond.any()


def test_offset_grid_and_first_valid_wins(tmp_path):
    a = _random((3, 30, 30), seed=1)
    a[:, :10] = 0
    b = _random((3, 30, 30), seed=2)
    _cog(tmp_path / "a.tif", a, 0, 0)
    _cog(tmp_path / "b.tif", b, 0, 0)
    items = [_item("a", tmp_path / "a.tif"), _item("b", tmp_path / "b.tif")]
    geobox = _geobox((20, 20), row=5, col=5)
    got = direct_reader(items, geobox).read(0, 0, 20, 20)
    want = np.where(a[:, 5:25, 5:25] == 0, b[:, 5:25, 5:25], a[:, 5:25, 5:25])
    assert np.array_equal(got, want)
    assert np.array_equal(got, _odc(items, geobox))


def test_file_nodata_is_remapped_to_the_catalogs(tmp_path):
    data = _random((3, 20, 20), seed=3)
    data[:, :5] = 255
    _cog(tmp_path / "x.tif", data, 0, 0, nodata=255)
    items = [_item("x", tmp_path / "x.tif", nodata=0)]
    geobox = _geobox((24, 24))
    got = direct_reader(items, geobox).read(0, 0, 24, 24)
    assert not got[:, :5].any() and got[:, 5:20, :20].all()
    assert np.array_equal(got, _odc(items, geobox))


def test_float_data_without_catalog_nodata(tmp_path):
    data = _random((3, 20, 20), seed=4, dtype="float32")
    _cog(tmp_path / "f.tif", data, 2, 3, nodata=None)
    items = [_item("f", tmp_path / "f.tif", nodata=None, dtype="float32")]
    geobox = _geobox((24, 26))
    got = direct_reader(items, geobox).read(0, 0, 24, 26)
    assert np.isnan(got[:, :3]).all() and np.isfinite(got[:, 3:23, 2:22]).all()
    assert np.array_equal(got, _odc(items, geobox), equal_nan=True)


def test_off_lattice_or_other_resolution_falls_back(tmp_path):
    data = _random((3, 20, 20), seed=5)
    _cog(tmp_path / "half.tif", data, 0.5, 0)
    _cog(tmp_path / "coarse.tif", data, 0, 0, res=1.0)
    assert direct_reader([_item("h", tmp_path / "half.tif")], _geobox()) is None
    assert direct_reader([_item("c", tmp_path / "coarse.tif")], _geobox()) is None
    # off by half a pixel: the after-date path reads it directly on the shifted lattice
    source = open_date([_item("h", tmp_path / "half.tif")], _geobox(), chunk=64)
    assert source.reader is not None and source.shift is not None


def test_patch_url_is_applied_before_opening(tmp_path):
    data = _random((3, 20, 20), seed=6)
    _cog(tmp_path / "real.tif", data, 0, 0)
    item = _item("p", tmp_path / "real.tif")
    item.assets["visual"].href = (tmp_path / "signed-away.tif").as_uri()
    seen = []

    def patch(href: str) -> str:
        seen.append(href)
        return (tmp_path / "real.tif").as_uri()

    reader = direct_reader([item], _geobox((20, 20)), patch_url=patch)
    assert seen and np.array_equal(reader.read(0, 0, 20, 20), data)


def test_truncated_file_names_the_item(tmp_path):
    data = _random((3, 64, 64), seed=7)
    _cog(tmp_path / "t.tif", data, 0, 0)
    reader = direct_reader([_item("broken-item", tmp_path / "t.tif")], _geobox((64, 64)))
    size = (tmp_path / "t.tif").stat().st_size
    with open(tmp_path / "t.tif", "r+b") as f:
        f.truncate(size // 2)
    with pytest.raises(TilingError, match="broken-item"):
        reader.read(0, 0, 64, 64)
