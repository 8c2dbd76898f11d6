"""flows.predict pieces that need no model run: options, per-tile result keys, the runner.

The screening rule, nodata blanking and model ids are tested with changevg (tests/unit/changevg).
"""

from __future__ import annotations

import json

import pytest

from changevg.result import ChangeResult
from flows.inventory.schema import ModelMismatchError
from flows.predict import PredictOptions, ResultStore, _Runner


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
