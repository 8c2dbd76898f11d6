"""ChangeVG folders: round trip, base + adapter + VGM file, clear errors."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from _changevg_vlm_tiny import (  # noqa: F401
    CORPUS,
    G,
    model,
    one_torch_thread,
    pair,
    processor,
    tokenizer,
)
from safetensors.torch import save_file
from transformers import Qwen2_5_VLForConditionalGeneration

from changevg.vlm.configs import tiny_config
from changevg.vlm.io import ChangeVGFolderError, load_changevg, save_changevg
from changevg.vlm.lora import apply_lora, save_adapter
from changevg.vlm.model import ChangeVGForConditionalGeneration
from changevg.vlm.prompts import build_messages
from changevg.vlm.tokenizer import build_tokenizer


def _batch(proc, question="caption"):
    return proc.encode_pairs([pair(3, 112)], [build_messages(question, vgm_text="a new road")])


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    m = model(seed=4)
    proc = processor()
    folder = save_changevg(m, proc, tmp_path_factory.mktemp("changevg"))
    with torch.no_grad():
        logits = m(**_batch(proc)).logits
    return folder, logits


def test_save_then_load_gives_identical_logits(saved):
    folder, logits = saved
    names = {p.name for p in folder.iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "processor_config.json",
        "preprocessor_config.json",
        "chat_template.jinja",
    } <= names
    assert not [n for n in names if n.endswith((".bin", ".pt", ".pkl"))]
    cv = json.loads((folder / "config.json").read_text())["changevg"]
    assert cv["vgm"]["kind"] == "test.stub" and cv["fine_grid"] == G
    m, proc = load_changevg(folder)
    assert isinstance(m, ChangeVGForConditionalGeneration) and not m.training
    with torch.no_grad():
        again = m(**_batch(proc)).logits
    assert torch.equal(again, logits)
    m2 = ChangeVGForConditionalGeneration.from_pretrained(folder, local_files_only=True)
    with torch.no_grad():
        assert torch.equal(m2.eval()(**_batch(proc)).logits, logits)


@pytest.mark.parametrize(
    ("name", "what"),
    [
        ("tokenizer.json", "tokenizer"),
        ("model.safetensors", "weights"),
        ("config.json", "config"),
        ("chat_template.jinja", "chat template"),
        ("processor_config.json", "processor"),
    ],
)
def test_missing_file_is_named(saved, tmp_path, name, what):
    folder = shutil.copytree(saved[0], tmp_path / "copy")
    (folder / name).unlink()
    with pytest.raises(ChangeVGFolderError, match=rf"{name}.*{what}|{what}.*{name}"):
        load_changevg(folder)


def test_mismatched_files_are_named(saved, tmp_path):
    folder = shutil.copytree(saved[0], tmp_path / "copy")
    cfg = json.loads((folder / "config.json").read_text())
    cfg["changevg"]["vgm_token_id"] = 3
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ChangeVGFolderError, match=r"tokenizer\.json.*<\|vgm_pad\|>"):
        load_changevg(folder)
    cfg["changevg"]["vgm_token_id"] = saved_id = tokenizer().convert_tokens_to_ids("<|vgm_pad|>")
    assert saved_id is not None
    cfg["text_config"]["hidden_size"] = 64
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ChangeVGFolderError, match=r"model\.safetensors.*(mismatched|missing)"):
        load_changevg(folder)


def test_base_plus_adapter_plus_vgm_file(tmp_path):
    tok = tokenizer()
    cvg = model(seed=5)
    # A plain Qwen2.5-VL base folder: its weights, no VGM/projector, a tokenizer without VGM tokens.
    base_cfg = tiny_config(len(tok))
    for key in ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id"):
        setattr(base_cfg, key, getattr(cvg.config, key))
    base = Qwen2_5_VLForConditionalGeneration(base_cfg)
    missing, unexpected = base.load_state_dict(cvg.state_dict(), strict=False)
    assert not missing and all(k.startswith(("vgm.", "vgm_projector.")) for k in unexpected)
    base.save_pretrained(tmp_path / "base")
    build_tokenizer(CORPUS, vocab_size=600, vgm_tokens=False).save_pretrained(tmp_path / "base")
    assert "changevg" not in json.loads((tmp_path / "base" / "config.json").read_text())

    vgm_file = tmp_path / "vgm.safetensors"
    save_file({k: v.contiguous() for k, v in cvg.vgm.state_dict().items()}, vgm_file)
    peft_model = apply_lora(cvg)
    with torch.no_grad():  # make the adapter matter
        for name, p in peft_model.named_parameters():
            if "lora_B" in name or "vgm_projector" in name or "trainable_tokens" in name:
                p.add_(torch.randn_like(p) * 0.05)
    proc = processor()
    save_adapter(peft_model, proc, tmp_path / "adapter")
    peft_model.eval()
    with torch.no_grad():
        want = peft_model(**_batch(proc)).logits

    loaded, lproc = load_changevg(
        base=tmp_path / "base", adapter=tmp_path / "adapter", vgm=vgm_file, merge=False
    )
    with torch.no_grad():
        got = loaded(**_batch(lproc)).logits
    torch.testing.assert_close(got, want)
    merged, _ = load_changevg(base=tmp_path / "base", adapter=tmp_path / "adapter", vgm=vgm_file)
    assert isinstance(merged, ChangeVGForConditionalGeneration)
    with torch.no_grad():
        torch.testing.assert_close(merged(**_batch(lproc)).logits, want, atol=1e-4, rtol=1e-4)

    # The adapter folder's tokenizer is optional: the base one gets the VGM tokens added.
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (tmp_path / "adapter" / name).unlink()
    _, bproc = load_changevg(base=tmp_path / "base", adapter=tmp_path / "adapter", vgm=vgm_file)
    assert bproc.tokenizer.convert_tokens_to_ids("<|vgm_pad|>") == cvg.vgm_token_id

    with pytest.raises(ChangeVGFolderError, match="vgm="):
        load_changevg(base=tmp_path / "base", adapter=tmp_path / "adapter")
    with pytest.raises(ChangeVGFolderError, match="changevg.json"):
        (tmp_path / "adapter" / "changevg.json").unlink()
        load_changevg(base=tmp_path / "base", adapter=tmp_path / "adapter", vgm=vgm_file)
    with pytest.raises(ChangeVGFolderError, match="changevg"):
        load_changevg(tmp_path / "base")


def test_vgm_file_that_does_not_fit_is_named(saved, tmp_path):
    bad = tmp_path / "vgm.safetensors"
    save_file({"conv.weight": torch.zeros(1, 1, 1, 1)}, bad)
    with pytest.raises(ChangeVGFolderError, match="vgm.safetensors"):
        load_changevg(saved[0], vgm=bad)
    with pytest.raises(ChangeVGFolderError, match="missing.*VGM weights"):
        load_changevg(saved[0], vgm=tmp_path / "absent.safetensors")
