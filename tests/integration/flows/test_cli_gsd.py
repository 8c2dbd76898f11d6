"""``--gsd`` on the command line: tile at the model's GSD through a real STAC API, refuse
imagery too coarse for the model (exit 2, before reading), and resample plain images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from flows.cli import main
from tiling import open_tiles

BEFORE, AFTER = "2022-01-01/2022-12-31", "2024-01-01/2024-12-31"


def _region(root: Path, gsd: float, size_km: float = 0.2):
    from catalogs.synth import synthesize_region

    return synthesize_region(root, size_km=size_km, seed=5, gsd=gsd)


def _tile_args(server, region, out: Path) -> list[str]:
    return [
        "tile",
        "--catalog",
        server.url,
        "--collection",
        json.loads(region.collection_path.read_text())["id"],
        "--aoi",
        ",".join(str(v) for v in region.bbox_lonlat),
        "--before",
        BEFORE,
        "--after",
        AFTER,
        "--out",
        str(out),
    ]


def test_tile_resamples_to_the_model_gsd_by_default(tmp_path):
    from catalogs.server import StacServer

    region = _region(tmp_path / "r", 0.3)
    with StacServer([region.root]) as server:
        assert main(_tile_args(server, region, tmp_path / "auto.zarr")) == 0
        native = [*_tile_args(server, region, tmp_path / "native.zarr"), "--gsd", "native"]
        assert main(native) == 0
        assert main([*_tile_args(server, region, tmp_path / "n.zarr"), "--gsd", "0.6"]) == 0
    auto = open_tiles(str(tmp_path / "auto.zarr")).attrs
    assert auto["pixel_size"] == 0.5 and auto["gsd"]["source"]["before"] == pytest.approx(0.3)
    assert auto["gsd"]["resampling"]["after"] == "average"
    assert open_tiles(str(tmp_path / "native.zarr")).attrs["pixel_size"] == pytest.approx(0.3)
    assert open_tiles(str(tmp_path / "n.zarr")).attrs["pixel_size"] == pytest.approx(0.6)


def test_tile_refuses_sentinel2_like_imagery_before_reading(tmp_path, capsys):
    from catalogs.server import StacServer

    region = _region(tmp_path / "r", 10.0, size_km=0.5)
    for path in (*region.before_paths, *region.after_paths):
        path.write_bytes(b"not a GeoTIFF")  # a read would fail otherwise (exit 1)
    with StacServer([region.root]) as server:
        code = main(_tile_args(server, region, tmp_path / "t.zarr"))
    err = capsys.readouterr().err
    assert code == 2
    assert "before item 'synth-5-before'" in err and "is 10 m per pixel" in err
    assert "0.25-1 m" in err and "--allow-any-gsd" in err
    assert not (tmp_path / "t.zarr").exists()


@pytest.mark.parametrize("bad", ["-1", "0", "abc", "nan"])
def test_bad_gsd_is_a_usage_error_before_the_catalog(tmp_path, capsys, bad):
    argv = [
        "tile",
        "--catalog",
        "http://127.0.0.1:9",  # nothing listens: reaching it would be exit 1
        "--collection",
        "c",
        "--aoi",
        "0,0,0.001,0.001",
        "--before",
        BEFORE,
        "--after",
        AFTER,
        "--out",
        str(tmp_path / "t.zarr"),
        "--gsd",
        bad,
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--gsd must be a" in err and "'auto'" in err and "native" in err


@pytest.fixture(scope="module")
def pngs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pngs")
    rng = np.random.default_rng(0)
    before = rng.integers(80, 140, (256, 256, 3), dtype=np.uint8)
    after = before.copy()
    after[40:90, 40:90] = 220
    after[150:200, 160:230] = 230
    Image.fromarray(before).save(root / "before.png")
    Image.fromarray(after).save(root / "after.png")
    return root


def _images(pngs: Path) -> list[str]:
    return ["--before", str(pngs / "before.png"), "--after", str(pngs / "after.png")]


def test_predict_and_ask_take_the_images_gsd(pngs, capsys):
    assert main(["predict", *_images(pngs), "--json", "--gsd", "0.3", "--device", "cpu"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["objects"] and all(o["bbox"][2] <= 256 for o in doc["objects"])
    assert max(o["bbox"][2] for o in doc["objects"]) > 154  # the input's grid, not 0.5 m's
    question = "How many buildings have been changed?"
    assert main(["ask", *_images(pngs), question, "--gsd", "0.3", "--device", "cpu"]) == 0
    assert capsys.readouterr().out.strip() == doc["answers"]["count_building"]


@pytest.mark.parametrize(
    ("gsd", "message"),
    [("10", "10 m per pixel, coarser than the model accepts"), ("0", "--gsd must be a"),
     ("x", "--gsd must be a")],
)  # fmt: skip
def test_predict_refuses_bad_or_too_coarse_gsd(pngs, capsys, gsd, message):
    assert main(["predict", *_images(pngs), "--gsd", gsd]) == 2
    assert message in capsys.readouterr().err
