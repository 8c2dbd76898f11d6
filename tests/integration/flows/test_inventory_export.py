"""``changevg query --format gpkg|fgb``: files GDAL opens, with the scene CRS, feature for feature
the same rows as the GeoJSON output (read back with GDAL through pyogrio, not with our code)."""

from __future__ import annotations

import json

import pyogrio
import pytest
import shapely
from pyproj import CRS

from flows.cli import main
from flows.inventory.export import write_vector
from flows.inventory.query import query_inventory, summary
from tests.integration.flows.test_inventory_readers import built  # noqa: F401 (fixture)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _query(root, tmp_path, fmt: str, *extra: str) -> tuple[int, object]:
    target = tmp_path / f"q.{fmt}"
    code = main(["query", str(root), *extra, "--format", fmt, "--out", str(target)])
    return code, target


@pytest.mark.parametrize("table", ["tiles", "objects"])
@pytest.mark.parametrize("fmt", ["gpkg", "fgb"])
def test_gdal_opens_the_export_like_the_geojson(built, tmp_path, fmt, table):  # noqa: F811
    ds, root = built
    args = ("--region", "synth", "--table", table, "--class", "building")
    code, target = _query(root, tmp_path, fmt, *args)
    assert code == 0
    code, geojson = _query(root, tmp_path, "geojson", *args)
    assert code == 0
    features = json.loads(geojson.read_text())["features"]
    info = pyogrio.read_info(target)
    assert info["driver"] == ("GPKG" if fmt == "gpkg" else "FlatGeobuf")
    assert info["layer_name"] == table
    assert info["features"] == len(features) > 0
    assert CRS.from_user_input(info["crs"]) == ds.tiles.crs  # the scene CRS (UTM), not lon/lat
    back = pyogrio.read_dataframe(target)
    key = ["run_id", "tile_id"] + (["object_id"] if table == "objects" else [])
    from_json = sorted(tuple(f["properties"][k] for k in key) for f in features)
    assert sorted(map(tuple, back[key].to_numpy().tolist())) == from_json
    # geometries are the inventory's, in metres; lists survive as JSON text
    rows = query_inventory(root, region="synth", table=table, cls="building")
    by_key = {tuple(r[k] for k in key): r.geometry for _, r in rows.iterrows()}
    for _, r in back.iterrows():
        assert shapely.equals_exact(r.geometry, by_key[tuple(r[k] for k in key)], 1e-6)
    if table == "tiles":
        assert all(json.loads(v) == ["synth-1-before"] for v in back["before_items"])
        assert set(back["run_date"]) == {"2024-07-01", "2024-08-01"}


def test_mixed_crs_export_is_lon_lat(built, tmp_path):  # noqa: F811
    _, root = built
    frame = query_inventory(root)  # synth (UTM) and far (lon/lat) together
    path = write_vector(frame, tmp_path / "all.gpkg")
    info = pyogrio.read_info(path)
    assert CRS.from_user_input(info["crs"]).to_epsg() == 4326
    assert info["features"] == len(frame) == 75
    again = write_vector(frame.iloc[:3], path)  # replaced, not appended
    assert pyogrio.read_info(again)["features"] == 3
    assert not list(tmp_path.glob(".all.gpkg.*"))


def test_bad_export_requests_exit_2(built, tmp_path, capsys):  # noqa: F811
    _, root = built
    assert main(["query", str(root), "--format", "gpkg"]) == 2
    assert "--out" in capsys.readouterr().err
    missing = tmp_path / "no-such-folder" / "q.fgb"
    assert main(["query", str(root), "--format", "fgb", "--out", str(missing)]) == 2
    assert "no-such-folder" in capsys.readouterr().err
    with pytest.raises(ValueError, match="summary"):
        write_vector(summary(root), tmp_path / "s.gpkg")
    with pytest.raises(ValueError, match="gpkg or fgb"):
        write_vector(query_inventory(root, region="synth"), tmp_path / "q.shp")
