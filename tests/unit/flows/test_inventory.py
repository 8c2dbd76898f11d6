"""The GeoParquet inventory writer: rows from a real tile store, format, reruns, atomicity."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pyarrow.parquet as pq
import pytest
from pyproj import CRS
from shapely.geometry import box

import tiling
from changevg.result import ChangeObject, ChangeResult
from flows.inventory import InventoryError, ModelMismatchError, write_inventory
from flows.inventory import writer as inv

BEFORE = "2022-01-01/2022-12-31"
AFTER = "2024-01-01/2024-12-31"


def _square(c0, r0, s):
    return [(c0, r0), (c0 + s, r0), (c0 + s, r0 + s), (c0, r0 + s), (c0, r0)]


def _obj(cls, c0, r0, s, cell, score=0.9):
    return ChangeObject(cls, _square(c0, r0, s), (c0, r0, c0 + s, r0 + s), s * s, score, cell)


RESULTS = {  # tile_id -> ChangeResult (tiles of 128 px at 0.5 m)
    "aoi-1-1": ChangeResult(
        True,
        0.93,
        "Two houses were built.",
        {"building": 2, "road": 0},
        ["top left corner"],
        [_obj("building", 10, 10, 20, "top left corner"), _obj("building", 40, 10, 10, "top")],
    ),
    "aoi-3-3": ChangeResult(
        True,
        0.81,
        "A road and a house appeared.",
        {"building": 1, "road": 1},
        ["center"],
        [_obj("road", 0, 60, 8, "left", 0.7), _obj("building", 60, 60, 16, "center")],
    ),
}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from catalogs.pairing import pair_scenes
    from catalogs.synth import synthesize_region

    tmp = tmp_path_factory.mktemp("inv")
    region = synthesize_region(tmp / "region", size_km=0.3, seed=1)
    items = [json.loads(x) for x in region.items_path.read_text().splitlines() if x.strip()]
    pair = pair_scenes(
        items, aoi=region.bbox_lonlat, before=BEFORE, after=AFTER, catalog_is_local=True
    )
    tiling.build_tiles(pair, tmp / "t.zarr", options=tiling.TileOptions(tile_size=128))
    return tiling.open_tiles(tmp / "t.zarr")


def _rows(ds, run_id="r1", model_id="m1", region="synth"):
    tiles, objects = [], []
    for tile_id in ds["tile_id"].values:
        tile_id = str(tile_id)
        res = RESULTS.get(tile_id, ChangeResult(False, 0.05, "No change"))
        tiles.append(
            inv.tile_row(ds, tile_id, res, run_id=run_id, region=region, model_id=model_id)
        )
        objects += inv.object_rows(ds, tile_id, res, run_id=run_id, region=region)
    return tiles, objects


def _write(root, ds, run_id="r1", model_id="m1", run_date="2024-07-01", **kw):
    tiles, objects = _rows(ds, run_id, model_id)
    return write_inventory(
        root,
        tiles=tiles,
        objects=objects,
        region="synth",
        run_date=run_date,
        run_id=run_id,
        crs=ds.tiles.crs,
        model_id=model_id,
        **kw,
    )


def test_rows_are_georeferenced(store):
    ds = store
    row = inv.tile_row(ds, "aoi-1-1", RESULTS["aoi-1-1"], run_id="r", region="g", model_id="m")
    assert row.before_items == ["synth-1-before"] and row.after_items == ["synth-1-after"]
    assert row.n_buildings == 2 and row.n_roads == 0 and row.cells == ["top left corner"]
    assert row.geometry.equals(ds.tiles.footprint("aoi-1-1"))
    objs = inv.object_rows(ds, "aoi-1-1", RESULTS["aoi-1-1"], run_id="r", region="g")
    assert [o.object_id for o in objs] == ["aoi-1-1-0", "aoi-1-1-1"]
    t = ds.tiles.transform("aoi-1-1")
    x0, y0 = t * (10, 10)
    x1, y1 = t * (30, 30)
    assert objs[0].geometry.equals(box(x0, y1, x1, y0))  # rows grow downwards, y up
    assert objs[0].area_m2 == pytest.approx(400 * 0.25)  # 400 px of 0.5 m
    assert row.geometry.contains(objs[0].geometry)


def test_geoparquet_1_1_zstd_spatially_sorted(store, tmp_path):
    paths = _write(tmp_path / "inv", store, row_group_size=4)
    assert paths.n_tiles == 25 and paths.n_objects == 4
    assert paths.tiles.endswith("tiles/region=synth/run_date=2024-07-01/part-r1.parquet")
    for path in (paths.tiles, paths.objects):
        f = pq.ParquetFile(path)
        geo = json.loads(f.metadata.metadata[b"geo"])
        col = geo["columns"][geo["primary_column"]]
        assert geo["version"] == "1.1.0" and geo["primary_column"] == "geometry"
        assert col["encoding"] == "WKB"
        assert CRS.from_json_dict(col["crs"]) == store.tiles.crs  # PROJJSON
        assert col["covering"]["bbox"]["xmin"] == ["bbox", "xmin"]
        md = f.metadata
        names = [md.schema.column(i).path for i in range(md.num_columns)]
        assert {"bbox.xmin", "bbox.ymax"} <= set(names)
        assert all(
            md.row_group(g).column(c).compression == "ZSTD"
            for g in range(md.num_row_groups)
            for c in range(md.num_columns)
        )
        assert "region" not in f.schema_arrow.names  # a hive key, in the path only
    md = pq.ParquetFile(paths.tiles).metadata
    assert md.num_row_groups == 7  # 25 rows / 4
    # rows in Hilbert order of their centres; every row group carries bbox min/max statistics
    t = gpd.read_parquet(paths.tiles)
    h = t.geometry.hilbert_distance(total_bounds=t.total_bounds)
    assert np.all(np.diff(h.to_numpy()) >= 0)
    ix = [md.schema.column(i).path for i in range(md.num_columns)].index("bbox.xmin")
    stats = [md.row_group(g).column(ix).statistics for g in range(md.num_row_groups)]
    assert all(s.has_min_max for s in stats)
    # spatially compact row groups: each spans far less than the whole 5 x 5 tile extent
    widths = []
    for g in range(md.num_row_groups):
        rg = pq.ParquetFile(paths.tiles).read_row_group(g, columns=["bbox"]).column("bbox")
        xs = [b["xmin"] for b in rg.to_pylist()] + [b["xmax"] for b in rg.to_pylist()]
        widths.append(max(xs) - min(xs))
    assert np.mean(widths) < 0.8 * (t.total_bounds[2] - t.total_bounds[0])


def test_rerun_replaces_never_duplicates(store, tmp_path):
    root = tmp_path / "inv"
    first = _write(root, store)
    assert not first.replaced
    _write(root, store, run_id="r2")  # another run, same partition: kept beside it
    again = _write(root, store)
    assert again.replaced
    t = gpd.read_parquet(root / "tiles")
    assert len(t) == 50 and sorted(t.run_id.unique()) == ["r1", "r2"]
    assert len(gpd.read_parquet(root / "objects")) == 8
    assert not [p for p in (root / "tiles" / "region=synth").iterdir() if p.name.startswith(".")]


def test_other_model_refused_unless_overwrite(store, tmp_path):
    root = tmp_path / "inv"
    _write(root, store, model_id="vgm-a")
    with pytest.raises(ModelMismatchError, match="vgm-a.*vgm-b"):
        _write(root, store, model_id="vgm-b")
    assert set(gpd.read_parquet(root / "tiles").model_id) == {"vgm-a"}
    _write(root, store, model_id="vgm-b", overwrite=True)
    t = gpd.read_parquet(root / "tiles")
    assert set(t.model_id) == {"vgm-b"} and len(t) == 25


def test_same_run_other_date_refused_then_moved(store, tmp_path):
    root = tmp_path / "inv"
    _write(root, store, run_date="2024-07-01")
    with pytest.raises(InventoryError, match="another run date"):
        _write(root, store, run_date="2024-07-02")
    _write(root, store, run_date="2024-07-02", overwrite=True)
    t = gpd.read_parquet(root / "tiles")
    assert len(t) == 25 and {str(d) for d in t.run_date} == {"2024-07-02"}


def test_failed_write_leaves_old_partition(store, tmp_path, monkeypatch):
    root = tmp_path / "inv"
    _write(root, store)
    before = gpd.read_parquet(root / "tiles")
    real = inv._write_part
    staged = []

    def boom(st, gdf, table, path, rgs):
        real(st, gdf, table, path, rgs)
        staged.append(path)
        assert (tmp_path / path).exists()  # the temp folder holds the new file
        raise OSError("disk full")

    monkeypatch.setattr(inv, "_write_part", boom)
    tiles, objects = _rows(store, "r1", "m1")
    tiles = tiles[:3]
    objects = [o for o in objects if o.tile_id in {t.tile_id for t in tiles}]
    with pytest.raises(OSError, match="disk full"):
        write_inventory(
            root,
            tiles=tiles,
            objects=objects,
            region="synth",
            run_date="2024-07-01",
            run_id="r1",
            crs=store.tiles.crs,
            model_id="m1",
        )
    assert "/.tmp-run_date=2024-07-01-" in staged[0]
    after = gpd.read_parquet(root / "tiles")
    assert len(after) == 25 and after.equals(before)
    leftovers = [
        p for p in (root / "tiles" / "region=synth").iterdir() if p.name != "run_date=2024-07-01"
    ]
    assert leftovers == []


def test_memory_filesystem(store):
    import fsspec

    root = "memory://inventory-test"
    paths = _write(root, store)
    fs = fsspec.filesystem("memory")
    assert fs.exists(paths.tiles)
    t = gpd.read_parquet(root + "/tiles")
    assert len(t) == 25 and t.crs == store.tiles.crs
    _write(root, store)  # rerun through fs.mv
    assert len(gpd.read_parquet(root + "/tiles")) == 25
    fs.rm("/inventory-test", recursive=True)


def test_inputs_checked(store, tmp_path):
    tiles, objects = _rows(store)
    kw = dict(region="synth", run_date="2024-07-01", crs=store.tiles.crs, model_id="m1")
    with pytest.raises(ValueError, match="run_id"):
        write_inventory(tmp_path, tiles=tiles, objects=objects, run_id="a/b", **kw)
    with pytest.raises(InventoryError, match="run_id"):
        write_inventory(tmp_path, tiles=tiles, objects=objects, run_id="other", **kw)
    with pytest.raises(InventoryError, match="duplicate tile_id"):
        write_inventory(tmp_path, tiles=tiles + tiles[:1], objects=objects, run_id="r1", **kw)
    with pytest.raises(InventoryError, match="not in the tiles rows"):
        write_inventory(tmp_path, tiles=tiles[:1], objects=objects, run_id="r1", **kw)


def test_no_objects_and_dataframe_input(store, tmp_path):
    import pandas as pd

    tiles, _ = _rows(store)
    df = pd.DataFrame([t.__dict__ for t in tiles])
    df["before_items"] = "a,b"  # comma-joined strings are split
    paths = write_inventory(
        tmp_path,
        tiles=df,
        objects=[],
        region="synth",
        run_date="2024-07-01",
        run_id="r1",
        crs=store.tiles.crs,
        model_id="m1",
    )
    o = pq.read_table(paths.objects)
    assert o.num_rows == 0 and o.schema.field("class").type == "string"
    t = gpd.read_parquet(paths.tiles)
    assert t.before_items.iloc[0].tolist() == ["a", "b"]
    assert str(t.before_datetime.dtype) == "datetime64[us, UTC]"
