"""``changevg dataset --nuisance strong``: strong-nuisance regions through tiling and labelling,
with the option in the manifest and labels that are still the exact building/road change."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from catalogs.errors import InputError
from catalogs.synth import load_truth, rasterize_truth
from changevg.data.pairs import LEVIR_BUILDING, LEVIR_ROAD
from flows.cli import main
from flows.synthetic.dataset import make_dataset
from tiling import open_tiles


@pytest.fixture(scope="module")
def strong_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("strong_set")
    argv = ["dataset", "--out", str(out), "--regions", "3", "--seed", "4", "--size-km", "0.4"]
    assert main([*argv, "--nuisance", "strong"]) == 0
    return out


def test_manifest_and_regions_record_strong_nuisance(strong_set):
    recipe = json.loads((strong_set / "dataset.json").read_text())
    assert recipe["nuisance"] == "strong"
    assert "--nuisance strong" in recipe["command"]
    assert sum(recipe["pairs"].values()) >= 3
    for region in sorted((strong_set / "regions").iterdir()):
        meta = json.loads((region / "truth.json").read_text())
        assert meta["nuisance"]["level"] == "strong"
        cars = meta["nuisance"]["before"]["n_cars"] + meta["nuisance"]["after"]["n_cars"]
        assert cars > 0


def test_masks_are_the_truth_of_each_tile(strong_set):
    recs = json.loads((strong_set / "train.json").read_text())
    pid = next((r["pair_id"] for r in recs if r["changed"]), recs[0]["pair_id"])
    region = next(p for p in (strong_set / "regions").iterdir() if pid.startswith(p.name))
    ds = open_tiles(str(region / "tiles.zarr"))
    i = [str(t) for t in ds["tile_id"].values].index(pid)
    shape = ds["image"].shape[-2:]
    want = rasterize_truth(
        load_truth(region / "truth.parquet"), transform=ds.tiles.transform(i), shape=shape
    )
    got = np.asarray(Image.open(strong_set / "masks" / f"{pid}.png"))
    coded = np.select([want == 1, want == 2], [LEVIR_ROAD, LEVIR_BUILDING], 0)
    np.testing.assert_array_equal(got, coded)
    assert (strong_set / "masks" / f"{pid}_type.png").exists()


def test_unknown_nuisance_is_a_user_error(tmp_path):
    with pytest.raises(InputError, match="nuisance='heavy'"):
        make_dataset(tmp_path, regions=3, nuisance="heavy")  # type: ignore[arg-type]
    with pytest.raises(SystemExit) as exc:
        main(["dataset", "--out", str(tmp_path), "--nuisance", "heavy"])
    assert exc.value.code == 2
