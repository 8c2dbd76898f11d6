"""The `changevg` CLI over real processes: serve, pairs, tile — and its errors."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request

import pytest

from flows.cli import main

BEFORE, AFTER = "2022-01-01/2022-12-31", "2024-01-01/2024-12-31"


def _collection(region) -> str:
    return json.loads(region.collection_path.read_text())["id"]


def test_catalog_serve_prints_its_url_first_and_serves(small_region):
    proc = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "catalog", "serve", str(small_region.root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = proc.stdout.readline().strip().rstrip("/")
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{url}/collections", timeout=10) as resp:
            ids = [c["id"] for c in json.load(resp)["collections"]]
        assert _collection(small_region) in ids
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    time.sleep(0.2)
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{url}/", timeout=2)  # the server went away with the command


def test_pairs_json_has_the_contract(small_region, small_server, capsys):
    bbox = ",".join(str(v) for v in small_region.bbox_lonlat)
    code = main(
        [
            "pairs",
            "--catalog",
            small_server.url,
            "--collection",
            _collection(small_region),
            "--aoi",
            bbox,
            "--before",
            BEFORE,
            "--after",
            AFTER,
            "--json",
        ]
    )
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["crs"] == small_region.crs
    assert doc["aoi"]["type"] in ("Polygon", "MultiPolygon")
    for side in ("before", "after"):
        assert 0.9 <= doc[side]["coverage"] <= 1.0
        assert {"id", "datetime", "cloud_cover"} <= set(doc[side]["items"][0])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--aoi", "1,1,1,1"], "aoi"),
        (["--before", "2022-12-31/2022-01-01"], "--before"),
        (["--aoi", "-120,30,-100,45"], "km"),
        (["--max-cloud", "150"], "--max-cloud"),
    ],
)
def test_bad_input_is_a_usage_error_naming_the_parameter(small_region, args, message, capsys):
    base = {
        "--catalog": "http://127.0.0.1:9",
        "--collection": "c",
        "--aoi": ",".join(str(v) for v in small_region.bbox_lonlat),
        "--before": BEFORE,
        "--after": AFTER,
    }
    base.update(dict(zip(args[::2], args[1::2])))
    argv = ["pairs"] + [x for kv in base.items() for x in kv]
    assert main(argv) == 2
    assert message.lower() in capsys.readouterr().err.lower()


def test_unreachable_catalog_fails_naming_the_url(small_region, capsys, monkeypatch):
    monkeypatch.setenv("CHANGEVG_CONFIG", "")
    bbox = ",".join(str(v) for v in small_region.bbox_lonlat)
    code = main(
        [
            "pairs",
            "--catalog",
            "http://127.0.0.1:9",
            "--collection",
            "c",
            "--aoi",
            bbox,
            "--before",
            BEFORE,
            "--after",
            AFTER,
        ]
    )
    assert code == 1
    assert "127.0.0.1:9" in capsys.readouterr().err


def test_nothing_in_the_window_says_which_window(small_region, small_server, capsys):
    bbox = ",".join(str(v) for v in small_region.bbox_lonlat)
    code = main(
        [
            "pairs",
            "--catalog",
            small_server.url,
            "--collection",
            _collection(small_region),
            "--aoi",
            bbox,
            "--before",
            "2010-01-01/2010-12-31",
            "--after",
            AFTER,
        ]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "before" in err and "2010" in err


def test_tile_from_a_pair_file(small_pair, tmp_path, capsys):
    pair_file = tmp_path / "pair.json"
    pair_file.write_text(json.dumps(small_pair.to_json()))
    code = main(
        ["tile", "--pair", str(pair_file), "--out", str(tmp_path / "t.zarr"), "--tile-size", "128"]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "64 tiles" in out and "64 written now" in out


def test_tile_without_pair_or_search_args_is_a_usage_error(tmp_path, capsys):
    assert main(["tile", "--out", str(tmp_path / "t.zarr")]) == 2
    assert "--pair" in capsys.readouterr().err
