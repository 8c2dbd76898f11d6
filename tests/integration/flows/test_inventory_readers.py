"""The inventory read back by GeoPandas, pyarrow, DuckDB (and GDAL where its wheel can), and
queried through flows.query: filters, bbox pushdown, summary, output formats, errors."""

from __future__ import annotations

import datetime as dt
import json

import duckdb
import geopandas as gpd
import pandas as pd
import pyarrow.dataset as pads
import pytest
import shapely
from shapely.affinity import translate

import tiling
from changevg.result import ChangeObject, ChangeResult
from flows.inventory import writer as inv
from flows.inventory.query import (
    InventoryNotFoundError,
    explain_query,
    format_table,
    query_inventory,
    summary,
)


def _obj(cls, c0, r0, s, cell):
    ring = [(c0, r0), (c0 + s, r0), (c0 + s, r0 + s), (c0, r0 + s), (c0, r0)]
    return ChangeObject(cls, ring, (c0, r0, c0 + s, r0 + s), s * s, 0.9, cell)


JULY = {  # run r1 (2024-07-01): houses in aoi-1-1, a road and a house in aoi-3-3
    "aoi-1-1": ChangeResult(
        True,
        0.9,
        "Two houses were built.",
        {"building": 2, "road": 0},
        ["top left corner"],
        [_obj("building", 10, 10, 20, "top left corner"), _obj("building", 40, 10, 10, "top")],
    ),
    "aoi-3-3": ChangeResult(
        True,
        0.8,
        "A road and a house appeared.",
        {"building": 1, "road": 1},
        ["center"],
        [_obj("road", 0, 60, 8, "left"), _obj("building", 60, 60, 16, "center")],
    ),
}
AUGUST = {  # run r2 (2024-08-01): three houses in aoi-2-2
    "aoi-2-2": ChangeResult(
        True,
        0.95,
        "Three houses were built.",
        {"building": 3, "road": 0},
        ["center"],
        [_obj("building", 50 + 12 * k, 50, 10, "center") for k in range(3)],
    ),
}


def _rows(ds, results, run_id, region, model_id="vgm-1"):
    pairs = [
        (str(t), results.get(str(t), ChangeResult(False, 0.05, "No change")))
        for t in ds["tile_id"].values
    ]
    return inv.rows_from_results(ds, pairs, run_id=run_id, region=region, model_id=model_id)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Inventory: synth r1 (July), synth r2 (August), and `far` (lon/lat, 10 km east)."""
    from catalogs.pairing import pair_scenes
    from catalogs.synth import synthesize_region

    tmp = tmp_path_factory.mktemp("invq")
    region = synthesize_region(tmp / "region", size_km=0.3, seed=1)
    items = [json.loads(x) for x in region.items_path.read_text().splitlines() if x.strip()]
    pair = pair_scenes(
        items,
        aoi=region.bbox_lonlat,
        before="2022-01-01/2022-12-31",
        after="2024-01-01/2024-12-31",
        catalog_is_local=True,
    )
    tiling.build_tiles(pair, tmp / "t.zarr", options=tiling.TileOptions(tile_size=128))
    ds = tiling.open_tiles(tmp / "t.zarr")
    root = tmp / "inventory"
    crs = ds.tiles.crs
    common = dict(crs=crs, model_id="vgm-1", row_group_size=8)
    for run_id, day, results in (("r1", "2024-07-01", JULY), ("r2", "2024-08-01", AUGUST)):
        tiles, objects = _rows(ds, results, run_id, "synth")
        inv.write_inventory(
            root,
            tiles=tiles,
            objects=objects,
            region="synth",
            run_date=day,
            run_id=run_id,
            **common,
        )
    # a second region elsewhere, stored in another CRS (lon/lat): queries mix CRSs
    tiles, objects = _rows(ds, JULY, "f1", "far")
    t = gpd.GeoDataFrame([r.__dict__ for r in tiles], crs=crs)
    o = gpd.GeoDataFrame([r.__dict__ for r in objects], crs=crs)
    t["geometry"] = t.geometry.apply(lambda g: translate(g, 10_000)).to_crs(4326)
    o["geometry"] = o.geometry.apply(lambda g: translate(g, 10_000)).to_crs(4326)
    inv.write_inventory(
        root,
        tiles=t,
        objects=o,
        region="far",
        run_date="2024-07-15",
        run_id="f1",
        crs="EPSG:4326",
        model_id="vgm-1",
    )
    return ds, root


def _lonlat_box(ds, tile_id, inset=10.0):
    fp = ds.tiles.footprint(tile_id).buffer(-inset, join_style="mitre")
    return tuple(gpd.GeoSeries([fp], crs=ds.tiles.crs).to_crs(4326).total_bounds)


# --- readers ---------------------------------------------------------------------------------


def test_geopandas_and_pyarrow_read_back(built):
    ds, root = built
    t = gpd.read_parquet(root / "tiles")  # hive folders: region, run_date come from the path
    assert len(t) == 75 and set(t.region) == {"synth", "far"}
    one = gpd.read_parquet(root / "tiles/region=synth/run_date=2024-07-01/part-r1.parquet")
    assert one.crs == ds.tiles.crs and len(one) == 25
    row = one.set_index("tile_id").loc["aoi-1-1"]
    assert row.geometry.equals(ds.tiles.footprint("aoi-1-1"))
    assert list(row.before_items) == ["synth-1-before"] and list(row.cells) == ["top left corner"]
    assert row.caption == "Two houses were built." and row.n_buildings == 2 and row.changed
    assert row.before_datetime == pd.Timestamp("2022-05-01 17:35:27", tz="UTC")
    # pyarrow dataset with hive partitioning: the same rows, the same WKB
    d = pads.dataset(root / "objects", format="parquet", partitioning="hive")
    tab = d.to_table(filter=pads.field("region") == "synth")
    assert tab.num_rows == 7
    o = gpd.read_parquet(root / "objects/region=synth/run_date=2024-07-01/part-r1.parquet")
    wkb = dict(zip(tab.column("object_id").to_pylist(), tab.column("geometry").to_pylist()))
    assert all(shapely.from_wkb(wkb[i]).equals(g) for i, g in zip(o.object_id, o.geometry))


def test_duckdb_reads_and_pushes_bbox_down(built):
    ds, root = built
    src = f"read_parquet('{root}/tiles/*/*/*.parquet', hive_partitioning=true)"
    con = duckdb.connect()
    assert con.execute(f"SELECT count(*) FROM {src}").fetchall()[0][0] == 75
    fp = ds.tiles.footprint("aoi-1-1").buffer(-10, join_style="mitre")
    minx, miny, maxx, maxy = fp.bounds
    where = (
        f"region = 'synth' AND bbox.xmin <= {maxx} AND bbox.xmax >= {minx} "
        f"AND bbox.ymin <= {maxy} AND bbox.ymax >= {miny}"
    )
    got = con.execute(f"SELECT run_id, tile_id FROM {src} WHERE {where} ORDER BY run_id").fetchall()
    assert got == [("r1", "aoi-1-1"), ("r2", "aoi-1-1")]
    # the same through query_inventory, lon/lat box, and its plan: filters inside the scan
    q = query_inventory(root, bbox=_lonlat_box(ds, "aoi-1-1"), region="synth")
    assert list(zip(q.run_id, q.tile_id)) == [("r1", "aoi-1-1"), ("r2", "aoi-1-1")]
    plan = explain_query(root, bbox=_lonlat_box(ds, "aoi-1-1"), region="synth")
    scan = plan[plan.index("READ_PARQUET") :]
    assert "Filters:" in scan and "bbox.xmin" in scan and "bbox.ymax" in scan


def test_gdal_reads_it_where_the_driver_exists(built):
    pyogrio = pytest.importorskip("pyogrio")
    if "Parquet" not in pyogrio.list_drivers():
        pytest.skip(
            f"GDAL {pyogrio.__gdal_version_string__} in the pyogrio wheel has no Parquet driver"
        )
    ds, root = built
    path = root / "tiles/region=synth/run_date=2024-07-01/part-r1.parquet"
    g = pyogrio.read_dataframe(path)
    assert len(g) == 25 and g.crs == ds.tiles.crs


# --- query filters -----------------------------------------------------------------------------


def test_query_filters(built):
    ds, root = built
    assert len(query_inventory(root, region="synth")) == 50
    assert set(query_inventory(root, since="2024-07-10").run_id) == {"r2", "f1"}
    assert set(query_inventory(root, since=dt.date(2024, 7, 20)).run_id) == {"r2"}
    assert set(query_inventory(root, until="2024-07-01").run_id) == {"r1"}
    b = query_inventory(root, cls="building", region="synth")
    assert sorted(zip(b.run_id, b.tile_id)) == [
        ("r1", "aoi-1-1"),
        ("r1", "aoi-3-3"),
        ("r2", "aoi-2-2"),
    ]
    r = query_inventory(root, cls="road")
    assert sorted(zip(r.region, r.tile_id)) == [("far", "aoi-3-3"), ("synth", "aoi-3-3")]
    m = query_inventory(root, cls="building", min_count=2, region="synth")
    assert sorted(m.tile_id) == ["aoi-1-1", "aoi-2-2"]
    assert len(query_inventory(root, min_count=2)) == 5  # buildings + roads >= 2
    # mixed CRSs: the result is lon/lat; one CRS: the data CRS
    assert query_inventory(root).crs.to_epsg() == 4326
    assert query_inventory(root, region="synth").crs == ds.tiles.crs
    # an AOI as GeoJSON (dict) around the far region's aoi-1-1 finds only that tile
    far = query_inventory(root, region="far").set_index("tile_id")
    aoi = shapely.geometry.mapping(far.geometry["aoi-1-1"].buffer(-1e-4))
    hit = query_inventory(root, aoi={"type": "Feature", "geometry": aoi, "properties": {}})
    assert list(zip(hit.region, hit.tile_id)) == [("far", "aoi-1-1")]


def test_query_objects(built):
    ds, root = built
    o = query_inventory(root, table="objects", region="synth")
    assert len(o) == 7 and set(o["class"]) == {"building", "road"}
    assert o.area_m2.sum() == pytest.approx((400 + 100 + 64 + 256 + 3 * 100) * 0.25)
    roads = query_inventory(root, table="objects", cls="road", region="synth")
    assert list(roads.object_id) == ["aoi-3-3-0"]
    many = query_inventory(root, table="objects", cls="building", min_count=3)
    assert set(many.tile_id) == {"aoi-2-2"} and len(many) == 3
    box = _lonlat_box(ds, "aoi-2-2", inset=20)
    inside = query_inventory(root, table="objects", bbox=box)
    assert sorted(inside.object_id) == ["aoi-2-2-0", "aoi-2-2-1", "aoi-2-2-2"]


def test_summary(built):
    s = summary(built[1]).set_index("run_id")
    assert list(s.index) == ["f1", "r1", "r2"]  # by region, then run date
    r1 = s.loc["r1"]
    assert (r1.region, str(r1.run_date), r1.tiles, r1.changed_tiles) == (
        "synth",
        "2024-07-01",
        25,
        2,
    )
    assert (r1.new_buildings, r1.new_roads, r1.n_objects) == (3, 1, 4)
    assert r1.changed_area_m2 == pytest.approx((400 + 100 + 64 + 256) * 0.25)
    assert s.loc["r2"].changed_area_m2 == pytest.approx(75.0)
    assert s.loc["f1"].changed_area_m2 == pytest.approx(205.0, rel=1e-3)  # geodesic area


def test_format_table(built, tmp_path):
    ds, root = built
    q = query_inventory(root, cls="building", region="synth")
    text = format_table(q, "table")
    assert "aoi-2-2" in text and "POLYGON" in text
    csv = format_table(q, "csv", out=tmp_path / "q.csv")
    assert pd.read_csv(tmp_path / "q.csv").shape[0] == 3 and csv.startswith("run_id")
    gj = json.loads(format_table(q, "geojson"))
    assert (
        len(gj["features"]) == 3
        and -117 < gj["features"][0]["geometry"]["coordinates"][0][0][0] < -116
    )
    format_table(q, "parquet", out=tmp_path / "q.parquet")
    back = gpd.read_parquet(tmp_path / "q.parquet")
    assert len(back) == 3 and back.crs == ds.tiles.crs
    assert "changed_area_m2" in format_table(summary(root), "table")
    with pytest.raises(ValueError, match="fmt"):
        format_table(q, "xlsx")


def test_empty_path_is_a_clear_error(tmp_path):
    with pytest.raises(InventoryNotFoundError, match=str(tmp_path)) as e:
        query_inventory(tmp_path)
    assert "changevg run" in str(e.value) and isinstance(e.value, FileNotFoundError)
    with pytest.raises(FileNotFoundError, match="no change inventory"):
        summary(tmp_path / "missing")


def test_memory_root_queries(built):
    ds, _ = built
    tiles, objects = _rows(ds, JULY, "m1", "mem")
    root = "memory://inv-query"
    inv.write_inventory(
        root,
        tiles=tiles,
        objects=objects,
        region="mem",
        run_date="2024-07-01",
        run_id="m1",
        crs=ds.tiles.crs,
        model_id="vgm-1",
    )
    q = query_inventory(root, bbox=_lonlat_box(ds, "aoi-3-3"))
    assert list(q.tile_id) == ["aoi-3-3"]
    assert summary(root).loc[0, "n_objects"] == 4
    import fsspec

    fsspec.filesystem("memory").rm("/inv-query", recursive=True)


def test_cli_query_and_summary(built, tmp_path, capsys):
    from flows.cli import main

    ds, root = built
    assert main(["summary", str(root), "--format", "csv"]) == 0
    out = capsys.readouterr().out
    assert "synth" in out and "far" in out
    box = ",".join(str(v) for v in _lonlat_box(ds, str(ds["tile_id"].values[0])))
    target = tmp_path / "hits.geojson"
    code = main(
        [
            "query",
            str(root),
            "--bbox",
            box,
            "--region",
            "synth",
            "--format",
            "geojson",
            "-o",
            str(target),
        ]
    )
    assert code == 0
    doc = json.loads(target.read_text())
    assert doc["type"] == "FeatureCollection" and doc["features"]
    assert {f["properties"]["tile_id"] for f in doc["features"]} == {str(ds["tile_id"].values[0])}
    assert main(["query", str(root), "--bbox", "1,2,3"]) == 2
    assert "--bbox" in capsys.readouterr().err
    assert main(["query", str(tmp_path / "nothing-here")]) == 1
    assert "no change inventory" in capsys.readouterr().err


def test_features_join_pieces_cut_by_tile_edges(built, tmp_path):
    """A house across the aoi-2-2 | aoi-2-3 edge is two objects but one feature, in the files
    and in the summary; objects of another class or a pixel apart stay separate."""
    ds, _ = built
    assert ds.tiles.footprint("aoi-2-2").touches(ds.tiles.footprint("aoi-2-3"))
    results = {
        "aoi-2-2": ChangeResult(
            True, 0.9, "A house.", {"building": 1, "road": 0}, ["right"],
            [_obj("building", 118, 40, 10, "right")],
        ),
        "aoi-2-3": ChangeResult(
            True, 0.9, "Houses and a road.", {"building": 2, "road": 1}, ["left"],
            [
                _obj("building", 0, 40, 8, "left"),  # the other half of the house
                _obj("building", 0, 51, 6, "left"),  # one pixel below the house: its own
                _obj("road", 0, 44, 4, "left"),  # touches the house, but a road
            ],
        ),
    }  # fmt: skip
    tiles, objects = _rows(ds, results, "e1", "edges")
    feature = {o.object_id: o.feature_id for o in objects}
    assert feature["aoi-2-2-0"] == feature["aoi-2-3-0"] == "aoi-2-2-0"
    assert feature["aoi-2-3-1"] == "aoi-2-3-1"
    assert feature["aoi-2-3-2"] == "aoi-2-3-2"
    root = tmp_path / "inv"
    inv.write_inventory(
        root, tiles=tiles, objects=objects, region="edges", run_date="2024-07-01", run_id="e1",
        crs=ds.tiles.crs, model_id="vgm-1",
    )  # fmt: skip
    s = summary(root).iloc[0]
    assert (s.n_objects, s.n_features) == (4, 3)
    got = (
        duckdb.connect()
        .execute(
            "SELECT count(DISTINCT feature_id) FROM "
            f"read_parquet('{root}/objects/*/*/*.parquet') WHERE class = 'building'"
        )
        .fetchone()
    )
    assert got == (2,)


def test_rows_written_without_linking_are_their_own_features(built, tmp_path):
    ds, _ = built
    _, objects = _rows(ds, JULY, "u1", "plain")
    unlinked = [dict(o.__dict__, feature_id=None) for o in objects]
    tiles, _ = _rows(ds, JULY, "u1", "plain")
    inv.write_inventory(
        tmp_path, tiles=tiles, objects=unlinked, region="plain", run_date="2024-07-01",
        run_id="u1", crs=ds.tiles.crs, model_id="vgm-1",
    )  # fmt: skip
    back = gpd.read_parquet(tmp_path / "objects")
    assert (back["feature_id"] == back["object_id"]).all() and len(back) == 4
