"""Synthetic regions → ChangeIMTI set → VGM and VLM training → loading → eval, for real."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from changevg.data import pairs_from_records, read_changeimti, read_mask
from changevg.data.annotate import annotate_mask
from changevg.eval.model import evaluate_model
from changevg.model import ChangeVG
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


def _train_cmd(kind: str, data, out, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "flows.cli",
        "train",
        kind,
        "--data",
        str(data),
        "--out",
        str(out),
        "--epochs",
        "2",
        "--batch-size",
        "4",
        "--checkpoint-every",
        "1",
        "--threads",
        "1",
        *extra,
    ]


def _kill_after_checkpoint(cmd: list[str], ckpt) -> int:
    """Start a real training run, SIGKILL it once a checkpoint exists; its step."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 300
    while not (ckpt / "trainer_state.json").exists() and time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return json.loads((ckpt / "trainer_state.json").read_text())["step"]


@pytest.mark.parametrize("kind", ["vgm", "vlm"])
def test_killed_training_resumes_from_its_checkpoint(kind, tiny_dataset, tiny_models, tmp_path):
    out = tmp_path / kind
    extra = ("--vgm", str(tiny_models[0])) if kind == "vlm" else ()
    cmd = _train_cmd(kind, tiny_dataset.files["train"], out, *extra)
    done = _kill_after_checkpoint(cmd, out / "checkpoint")
    assert done >= 1
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert f"resuming from {out / 'checkpoint'} at step {done}" in rerun.stderr
    history = json.loads((out / "training.json").read_text())["history"]
    steps = [h["step"] for h in history]
    assert steps == list(range(1, len(steps) + 1))  # each step once, none redone or skipped
    assert not (out / "checkpoint").exists()  # finished: the checkpoint is cleared


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


def test_second_stage_swaps_in_a_retrained_vgm_and_drills(tiny_models, tiny_dataset, tmp_path):
    """`train vlm --init A --vgm B --copy-drills 1`: B's weights end up in the model."""
    import torch
    from safetensors.torch import load_file

    from changevg.train import TrainOptions, train_vgm
    from changevg.train.vlm import train_vlm

    _, first = tiny_models
    options = TrainOptions(epochs=1, batch_size=4, max_steps=2, seed=5, checkpoint_every=10)
    new_vgm = train_vgm(
        tiny_dataset.files["train"], out=tmp_path / "vgm2", options=options, progress=False
    )
    out = train_vlm(
        tiny_dataset.files["train"],
        out=tmp_path / "stage2",
        vgm=new_vgm,
        init=first,
        copy_drills=1.0,
        options=options,
        progress=False,
    )
    recipe = json.loads((out / "training.json").read_text())
    assert recipe["copy_drills"] == 1.0 and recipe["init"] == str(first)
    assert recipe["conversations"] > 0
    want = VisionGuidedModule.from_pretrained(new_vgm).state_dict()
    old = ChangeVG.load(first, device="cpu").vgm.state_dict()
    got = ChangeVG.load(out, device="cpu").vgm.state_dict()
    name = next(k for k in want if not torch.equal(want[k], old[k]))  # the two VGMs differ
    assert torch.equal(got[name], want[name])
    assert all(torch.equal(got[k], want[k]) for k in want)
    assert load_file(str(out / "model.safetensors"))  # a complete folder


def test_number_tokens_survive_saving_and_start_from_their_digits(
    tiny_models, tiny_dataset, tmp_path
):
    """`--number-tokens`: "14" is one token in the saved model, its rows the mean of "1" and "4"."""
    import torch

    from changevg.train._numbers import NUMBER_TOKENS, add_number_tokens
    from changevg.vlm.io import load_changevg, save_changevg

    _, first = tiny_models
    model, processor = load_changevg(first, device="cpu")
    tok = processor.tokenizer
    before = len(tok)
    assert tok.tokenize("new buildings: 14;").count("14") == 0  # digits split
    old_rows = model.get_input_embeddings().weight.detach().clone()
    assert add_number_tokens(model, tok) == len(NUMBER_TOKENS)
    assert add_number_tokens(model, tok) == 0  # idempotent
    save_changevg(model, processor, tmp_path / "m")

    loaded, proc2 = load_changevg(tmp_path / "m", device="cpu")
    tok2 = proc2.tokenizer
    assert len(tok2) == before + len(NUMBER_TOKENS)
    assert "14" in tok2.tokenize("new buildings: 14; new roads: 2;")
    text = "buildings: 14; 7; 99; 100"
    assert tok2.decode(tok2(text)["input_ids"]) == text
    for layer in ("input", "output"):
        emb = getattr(loaded, f"get_{layer}_embeddings")().weight.detach()
        assert emb.shape[0] >= len(tok2)
        one, four = tok2.convert_tokens_to_ids(["1", "4"])
        assert torch.allclose(emb[tok2.convert_tokens_to_ids("14")], (emb[one] + emb[four]) / 2)
    # the old vocabulary is untouched
    assert torch.equal(loaded.get_input_embeddings().weight[:before].detach(), old_rows[:before])
    pair = pairs_from_records(read_changeimti(tiny_dataset.files["val"]))[0]
    grown = ChangeVG.load(tmp_path / "m", device="cpu")
    (result,) = grown.predict_batch([(pair.before, pair.after)])
    assert set(result.answers) >= {"caption", "yes_no"}  # the grown model generates


def test_number_tokens_refuse_a_real_base(tmp_path):
    from changevg.train.vlm import train_vlm

    with pytest.raises(ValueError, match="from-scratch recipe"):
        train_vlm(
            tmp_path / "x.json", out=tmp_path / "o", vgm=tmp_path / "v", base=tmp_path / "b",
            number_tokens=True,
        )  # fmt: skip
