"""The demo's promise, on a smaller region: its inventory agrees with the synthetic truth."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """`run_demo` on a 1 km region (64 tiles) with the shipped model."""
    from flows.synthetic.demo import run_demo

    out = tmp_path_factory.mktemp("demo")
    return out, run_demo(out, size_km=1.0, seed=0)


def test_demo_leaves_store_inventory_and_report(demo_run):
    out, result = demo_run
    assert (out / "tiles.zarr").is_dir()
    assert (out / "inventory" / "tiles").is_dir() and (out / "inventory" / "objects").is_dir()
    assert (out / "report.html").is_file()
    assert result.summary["status"] == "completed"


def test_demo_agrees_with_the_truth(demo_run):
    _, result = demo_run
    agreement = result.agreement()
    assert agreement.true_positive > 5 and agreement.buildings_true > 10  # a real test
    assert agreement.tile_f1 >= 0.9, str(agreement)
    assert agreement.building_error <= 0.10, str(agreement)


def test_agreement_catches_a_wrong_inventory(demo_run):
    import pandas as pd

    from catalogs.synth import load_truth
    from flows.synthetic.agreement import truth_agreement

    out, result = demo_run
    tiles = pd.DataFrame({"tile_id": result.summary and _tile_ids(out)})
    truth = load_truth(result.region.root)
    nothing = truth_agreement(
        out / "tiles.zarr", truth, tiles.assign(changed=False), pd.DataFrame()
    )
    assert nothing.tile_f1 == 0.0 and nothing.buildings_found == 0
    assert nothing.building_error == 1.0
    everything = truth_agreement(
        out / "tiles.zarr", truth, tiles.assign(changed=True), pd.DataFrame()
    )
    assert everything.false_positive > 0 and everything.false_negative == 0


def _tile_ids(out) -> list[str]:
    from tiling import open_tiles

    return [str(t) for t in open_tiles(str(out / "tiles.zarr"))["tile_id"].values]
