"""flows.predict pieces that need no model run: options, result keys, nodata, model ids."""

from __future__ import annotations

import json

import numpy as np
import pytest

from changevg.result import ChangeResult
from flows.inventory import ModelMismatchError
from flows.predict import PredictOptions, ResultStore, _Runner, blank_nodata, model_id


def _result(score: float = 0.9) -> ChangeResult:
    return ChangeResult(changed=True, change_score=score, caption="a house is built.")


def test_options_validate():
    with pytest.raises(ValueError, match="threshold"):
        PredictOptions(threshold=1.5)
    with pytest.raises(ValueError, match="batch"):
        PredictOptions(vlm_batch=0)


def test_result_store_round_trip_and_keys(tmp_path):
    store = ResultStore(tmp_path / "r", model="m-1")
    assert store.done() == set()
    store.save("aoi-0-1", _result(0.7), "vlm", 0.8)
    assert store.done() == {"aoi-0-1"}
    assert store.load("aoi-0-1") == _result(0.7)
    doc = json.loads((tmp_path / "r" / "aoi-0-1.json").read_text())
    assert doc["model_id"] == "m-1" and doc["stage"] == "vlm" and doc["screen_score"] == 0.8
    assert not list((tmp_path / "r").glob(".*.tmp"))
    # the same model reopens it; another is refused, unless overwrite (then it starts over)
    assert ResultStore(tmp_path / "r", model="m-1").done() == {"aoi-0-1"}
    with pytest.raises(ModelMismatchError, match="m-1.*m-2|overwrite"):
        ResultStore(tmp_path / "r", model="m-2")
    assert ResultStore(tmp_path / "r", model="m-2", overwrite=True).done() == set()


def test_result_store_on_fsspec_memory():
    store = ResultStore("memory://changevg-test/results", model="m")
    store.save("t-0-0", _result(), "screen", 0.1)
    assert store.done() == {"t-0-0"}


def test_blank_nodata_clears_both_dates_where_either_has_none():
    before = np.full((3, 4, 4), 100, np.uint8)
    after = np.full((3, 4, 4), 120, np.uint8)
    before[:, 0, 0] = 0  # nodata in the before date
    after[:, 3, :] = 0  # the after footprint ends early
    b, a = blank_nodata(before, after)
    invalid = np.zeros((4, 4), bool)
    invalid[0, 0] = invalid[3, :] = True
    assert (b[:, invalid] == 0).all() and (a[:, invalid] == 0).all()
    assert (b[:, ~invalid] == 100).all() and (a[:, ~invalid] == 120).all()
    assert before[0, 3, 0] == 100  # inputs untouched
    dark = before.copy()
    dark[0, 1, 1] = 0  # one band 0 is data, not nodata
    assert blank_nodata(dark, after)[0][1, 1, 1] == 100


def test_model_id_tracks_weights_not_metrics(tmp_path):
    import torch
    from safetensors.torch import save_file

    folder = tmp_path / "mymodel"
    folder.mkdir()
    (folder / "config.json").write_text('{"a": 1}')
    save_file({"w": torch.zeros(4)}, str(folder / "model.safetensors"))
    first = model_id(folder)
    assert first.startswith("mymodel-")
    (folder / "metrics_test.json").write_text("{}")
    assert model_id(folder) == first
    save_file({"w": torch.ones(4)}, str(folder / "model.safetensors"))
    assert model_id(folder) != first


def test_runner_annotates_gpu_only_when_a_worker_offers_one():
    class Client:
        def __init__(self, resources):
            self._r = resources

        def scheduler_info(self):
            return {"workers": {"tcp://127.0.0.1:1": {"resources": self._r}}}

    assert _Runner(Client({"GPU": 1})).resources == {"GPU": 1}
    assert _Runner(Client({})).resources is None
    assert _Runner(None).resources is None
    calls = []
    _Runner(None).map(lambda x: x * 2, [(1,), (2,)], lambda i, r: calls.append((i, r)))
    assert calls == [(0, 2), (1, 4)]


def test_screen_score_takes_either_branch():
    from types import SimpleNamespace

    from flows.predict import screen_score

    quiet = SimpleNamespace(change_score=0.1, objects=[])
    assert screen_score(quiet) == 0.1
    seen = SimpleNamespace(change_score=0.1, objects=[SimpleNamespace(score=0.8)])
    assert screen_score(seen) == 0.8
