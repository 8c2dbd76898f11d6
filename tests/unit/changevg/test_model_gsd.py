"""The GSD contract: model folders declare it, ChangeVG exposes it and resamples plain images."""

from __future__ import annotations

import json
import logging
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from catalogs.errors import InputError
from changevg.gsd import (
    DEFAULT_GSD,
    DEFAULT_GSD_RANGE,
    GSDError,
    ModelGSD,
    objects_to_grid,
    read_model_gsd,
    resample_image,
    resample_mask,
)
from changevg.model import ChangeVG
from changevg.objects import mask_to_objects

DEFAULT = Path(__file__).parents[3] / "changevg" / "weights" / "default"


@pytest.fixture(scope="module")
def model() -> ChangeVG:
    torch.set_num_threads(1)
    return ChangeVG.load(DEFAULT, device="cpu")


def _pair(size: int = 256, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    before = rng.integers(80, 140, (3, size, size), dtype=np.uint8)
    after = before.copy()
    s = size // 256
    after[:, 40 * s : 90 * s, 40 * s : 90 * s] = 220  # a bright new roof
    after[:, 150 * s : 200 * s, 160 * s : 230 * s] = 230
    return before, after


def test_shipped_default_declares_its_gsd() -> None:
    settings = json.loads((DEFAULT / "config.json").read_text())["changevg"]
    assert settings["gsd"] == 0.5 and settings["gsd_range"] == [0.25, 1.0]
    contract = read_model_gsd()  # the shipped default, from its JSON alone
    assert contract == ModelGSD(0.5, (0.25, 1.0), declared=True)


def test_folder_without_keys_loads_as_default_with_a_note(caplog) -> None:
    with caplog.at_level(logging.INFO, logger="changevg.gsd"):
        contract = ModelGSD.from_config({"fine_grid": 3}, source="old/config.json")
    assert contract == ModelGSD(DEFAULT_GSD, DEFAULT_GSD_RANGE, declared=False)
    assert "old/config.json declares no GSD" in caplog.text


def test_declared_contract_is_validated() -> None:
    assert ModelGSD.from_config({"gsd": 1.0}, source="f").range == (0.5, 2.0)  # default span
    ok = ModelGSD.from_config({"gsd": 0.3, "gsd_range": [0.2, 0.6]}, source="f")
    assert (ok.gsd, ok.range, ok.declared) == (0.3, (0.2, 0.6), True)
    with pytest.raises(GSDError, match="f: changevg.gsd must be a positive number"):
        ModelGSD.from_config({"gsd": 0}, source="f")
    with pytest.raises(GSDError, match=r"gsd_range \[0.6, 1.0\] must hold changevg.gsd 0.5"):
        ModelGSD.from_config({"gsd": 0.5, "gsd_range": [0.6, 1.0]}, source="f")
    with pytest.raises(GSDError, match="must be \\[finest, coarsest\\]"):
        ModelGSD.from_config({"gsd": 0.5, "gsd_range": "wide"}, source="f")


def test_trainers_write_the_keys() -> None:
    from changevg.vlm.configs import tiny_config
    from changevg.vlm.tokenizer import build_tokenizer

    tok = build_tokenizer(["a new house is built", "no change"] * 10, vocab_size=300)
    config = tiny_config(len(tok), tokenizer=tok, vgm_embed_dim=16)
    assert config.changevg["gsd"] == 0.5 and config.changevg["gsd_range"] == [0.25, 1.0]
    assert json.loads(config.to_json_string())["changevg"]["gsd"] == 0.5  # saved in config.json


def test_changevg_exposes_the_contract(model, tmp_path, caplog) -> None:
    assert model.gsd == 0.5 and model.gsd_range == (0.25, 1.0)
    old = tmp_path / "old"
    shutil.copytree(DEFAULT, old)
    config = json.loads((old / "config.json").read_text())
    del config["changevg"]["gsd"], config["changevg"]["gsd_range"]
    (old / "config.json").write_text(json.dumps(config))
    config["changevg"].update(gsd=0.3, gsd_range=[0.15, 0.6])
    (tmp_path / "other").mkdir()
    shutil.copytree(old, tmp_path / "other", dirs_exist_ok=True)
    (tmp_path / "other" / "config.json").write_text(json.dumps(config))
    with caplog.at_level(logging.INFO, logger="changevg.gsd"):
        undeclared = ChangeVG.load(old, device="cpu")
    assert undeclared.gsd == 0.5 and not undeclared.gsd_contract.declared
    assert "declares no GSD" in caplog.text
    other = ChangeVG.load(tmp_path / "other", device="cpu")
    assert (other.gsd, other.gsd_range) == (0.3, (0.15, 0.6))


def test_screen_resamples_and_returns_the_input_grid(model, monkeypatch) -> None:
    before, after = _pair()
    seen: list[tuple[int, ...]] = []
    describe = model.vgm.describe
    monkeypatch.setattr(
        model.vgm, "describe", lambda b, a, **kw: seen.append(tuple(b.shape)) or describe(b, a)
    )
    (desc,) = model.screen([(before, after)], gsd=0.3)
    assert seen == [(1, 3, 154, 154)]  # 256 px at 0.3 m is 154 px at 0.5 m, not stretched
    assert desc.mask.shape == (256, 256)
    # the same as resampling by hand, running at the model's GSD and putting the mask back
    small = (resample_image(before, 0.3, 0.5), resample_image(after, 0.3, 0.5))
    (ref,) = model.screen([small], gsd=0.5)
    assert ref.mask.shape == (154, 154)
    assert np.array_equal(desc.mask, resample_mask(ref.mask, (256, 256)))
    assert desc.counts == ref.counts and desc.change_score == pytest.approx(ref.change_score)
    assert desc.objects, "the two bright roofs should be found"
    for o, r in zip(desc.objects, ref.objects, strict=True):
        assert o.cell == r.cell and o.score == r.score
        assert o.area_px == round(r.area_px * (256 / 154) ** 2)
        assert o.bbox[2] <= 256 and o.bbox[2] > r.bbox[2]  # on the input grid


def test_without_gsd_nothing_changes(model) -> None:
    before, after = _pair(512)
    (desc,) = model.screen([(before, after)])
    assert desc.mask.shape == (256, 256)  # the processor's vgm_size, as before


def test_predict_batch_and_ask_take_gsd(model) -> None:
    pairs = [_pair(), _pair(128, seed=1)]  # two sizes: batched apart after resampling
    descs = model.screen(pairs, gsd=1.0)
    results = model.predict_batch(pairs, gsd=1.0)
    assert [d.mask.shape for d in descs] == [(256, 256), (128, 128)]
    for desc, result, (before, _) in zip(descs, results, pairs, strict=True):
        assert result.objects == desc.objects  # the input's pixel grid
        assert all(o.bbox[2] <= before.shape[-1] for o in result.objects)
    again = model.predict_batch(pairs[:1], descriptions=descs[:1], gsd=1.0)
    assert again[0].answers == results[0].answers
    answer = model.ask(*pairs[0], "How many buildings have been changed?", gsd=1.0)
    assert answer == results[0].answers["count_building"]


@pytest.mark.parametrize("bad", [0, -0.5, "abc", float("nan")])
def test_bad_gsd_is_named(model, bad) -> None:
    with pytest.raises(InputError, match="gsd must be a"):
        model.screen([_pair()], gsd=bad)


def test_coarser_than_accepted_is_refused(model) -> None:
    with pytest.raises(GSDError) as err:
        model.predict_batch([_pair()], gsd=10)
    message = str(err.value)
    assert "10 m per pixel" in message and "0.25-1 m" in message and "trained at 0.5 m" in message
    assert "no gsd" in message  # what to do instead
    model.screen([_pair()], gsd=0.2)  # finer than the range: averaged down, accepted
    with pytest.raises(InputError, match="is 26x26 px at the model's 0.5 m, smaller than"):
        model.screen([_pair(64)], gsd=0.2)


def test_objects_to_grid_matches_objects_of_the_regridded_mask() -> None:
    mask = np.zeros((100, 100), np.uint8)
    mask[10:30, 20:50] = 2
    (small,) = mask_to_objects(mask)
    (big,) = objects_to_grid([small], (100, 100), (200, 300))
    (direct,) = mask_to_objects(resample_mask(mask, (200, 300)))
    assert big.bbox == direct.bbox and big.area_px == direct.area_px and big.cell == direct.cell


def test_own_size_is_local_to_the_thread(model) -> None:
    from changevg.vlm.processor import vgm_own_size

    image = np.zeros((100, 100, 3), np.uint8)
    other: list[tuple[int, ...]] = []
    with vgm_own_size():
        assert tuple(model.processor.vgm_pixels([image]).shape) == (1, 3, 100, 100)
        thread = threading.Thread(
            target=lambda: other.append(tuple(model.processor.vgm_pixels([image]).shape))
        )
        thread.start()
        thread.join()
    assert other == [(1, 3, 256, 256)]
    assert tuple(model.processor.vgm_pixels([image]).shape) == (1, 3, 256, 256)
