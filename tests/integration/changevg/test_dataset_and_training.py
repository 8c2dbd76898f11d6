"""Synthetic regions → ChangeIMTI set → VGM and VLM training → loading → eval, for real."""

from __future__ import annotations

import json

import numpy as np
import pytest

from changevg.data import pairs_from_records, read_changeimti, read_mask
from changevg.data.annotate import annotate_mask
from changevg.evaluation import evaluate_model
from changevg.model import ChangeVG
from changevg.train import TrainOptions, train_vgm
from changevg.vgm import VisionGuidedModule


def test_dataset_is_split_by_region_and_labels_match_masks(tiny_dataset):
    splits = {}
    for split, path in tiny_dataset.files.items():
        records = read_changeimti(path)
        assert records, split
        regions = {r.id.split("-")[0] for r in records}
        splits[split] = regions
        tasks = {r.task for r in records}
        assert {"caption", "yes_no", "count_building", "count_road", "locate"} <= tasks
    assert not (splits["train"] & splits["test"]) and not (splits["val"] & splits["test"])
    pairs = pairs_from_records(read_changeimti(tiny_dataset.files["train"]))
    assert len(pairs) == tiny_dataset.pairs["train"]
    for pair in pairs[:10]:
        truth = annotate_mask(read_mask(pair.mask))
        assert truth.counts == pair.counts and truth.cells == pair.cells
        assert truth.changed == pair.changed and len(pair.captions) == 5
    recipe = json.loads((tiny_dataset.root / "dataset.json").read_text())
    assert recipe["seed"] == 7 and recipe["pairs"] == tiny_dataset.pairs


def test_vgm_training_resumes_from_its_checkpoint(tiny_dataset, tmp_path):
    import torch

    torch.set_num_threads(1)
    first = TrainOptions(epochs=1, batch_size=4, max_steps=2, checkpoint_every=1)
    out = train_vgm(
        tiny_dataset.files["train"], out=tmp_path / "vgm", options=first, progress=False
    )
    state = json.loads((out / "checkpoint" / "trainer_state.json").read_text())
    assert state["step"] == 2
    more = TrainOptions(epochs=1, batch_size=4, max_steps=3, checkpoint_every=1)
    train_vgm(tiny_dataset.files["train"], out=out, options=more, progress=False)
    state = json.loads((out / "checkpoint" / "trainer_state.json").read_text())
    assert state["step"] == 3
    assert [h["step"] for h in state["history"]] == [1, 2, 3]  # steps 1-2 not redone
    recipe = json.loads((out / "training.json").read_text())
    assert recipe["options"]["max_steps"] == 3 and recipe["steps"] == 3


def test_trained_models_load_offline_and_predict(tiny_models, tiny_dataset):
    vgm_dir, model_dir = tiny_models
    vgm = VisionGuidedModule.from_pretrained(vgm_dir)
    model = ChangeVG.load(model_dir, device="cpu")
    # the VGM inside the loaded model is the trained one (weights and outputs)
    x = np.random.default_rng(0).integers(0, 255, (3, 256, 256), dtype=np.uint8)
    import torch

    t = torch.from_numpy(x).float()[None] / 255
    with torch.inference_mode():
        a = vgm(t, t.flip(-1)).change_logit
        b = model.vgm(t, t.flip(-1)).change_logit
    assert torch.allclose(a, b) and torch.isfinite(b).all()
    results = model.predict_batch([(x, x), (x, np.flip(x, -1).copy())], batch_size=2)
    assert len(results) == 2
    for r in results:
        assert set(r.answers) == {"caption", "yes_no", "count_building", "count_road", "locate"}
        assert 0.0 <= r.change_score <= 1.0


def test_eval_writes_the_metrics_layout(tiny_models, tiny_dataset):
    model = ChangeVG.load(tiny_models[1], device="cpu")
    metrics = evaluate_model(
        model, tiny_dataset.files["test"], limit=4, batch_size=4, progress=False
    )
    assert metrics["n"]["pairs"] == 4
    assert set(metrics["caption"]) >= {"BLEU-1", "BLEU-4", "ROUGE-L", "CIDEr-D", "S*m"}
    assert set(metrics["classification"]) >= {"accuracy", "precision", "recall", "f1"}
    assert set(metrics["counting"]) == {"building", "road"}
    assert set(metrics["localization"]) >= {"precision", "recall", "f1"}
    assert set(metrics["splits"]) == {"change", "no_change"}


def test_model_folder_missing_a_file_is_named(tiny_models, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_models[1], broken)
    (broken / "model.safetensors").unlink()
    with pytest.raises(Exception, match="model.safetensors"):
        ChangeVG.load(broken, device="cpu")
    with pytest.raises(FileNotFoundError, match="does-not-exist"):
        ChangeVG.load(tmp_path / "does-not-exist")
