"""``changevg synth --gsd/--nuisance``: the options reach the region; bad values exit 2."""

from __future__ import annotations

import json

import rasterio

from flows.cli import main


def test_synth_gsd_and_nuisance_options(tmp_path, capsys):
    out = tmp_path / "c"
    argv = ["synth", "--out", str(out), "--size-km", "0.2", "--gsd", "1.0", "--nuisance", "strong"]
    assert main(argv) == 0
    with rasterio.open(out / "before.tif") as src:
        assert src.res == (1.0, 1.0) and src.shape == (200, 200)
    meta = json.loads((out / "truth.json").read_text())
    assert meta["nuisance"]["level"] == "strong" and meta["pixel_size_m"] == 1.0


def test_synth_bad_gsd_exits_2(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path / "x"), "--size-km", "0.2", "--gsd", "-2"]) == 2
    assert "gsd=" in capsys.readouterr().err
