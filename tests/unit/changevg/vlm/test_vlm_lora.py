"""LoRA: targets only the language model's linear layers; training and merging work."""

from __future__ import annotations

import pytest
import torch
from _changevg_vlm_tiny import model, one_torch_thread, pair, processor  # noqa: F401
from peft import LoraConfig, get_peft_model

from changevg.vlm.lora import apply_lora, lora_targets, merge_lora
from changevg.vlm.model import ChangeVGForConditionalGeneration
from changevg.vlm.prompts import build_messages

pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning")


def test_targets_are_the_language_models_linear_layers_only():
    m = model()
    layers = m.config.text_config.num_hidden_layers
    pm = apply_lora(m, rank=8, alpha=16, dropout=0.05)
    targets = lora_targets(pm)
    assert len(targets) == 7 * layers
    assert all(".language_model.layers." in t for t in targets)
    assert not [t for t in targets if "visual" in t or "lm_head" in t or "vgm" in t]
    suffixes = {t.rsplit(".", 1)[1] for t in targets}
    assert suffixes == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    lora_config = pm.peft_config["default"]
    assert (lora_config.r, lora_config.lora_alpha, lora_config.lora_dropout) == (8, 16, 0.05)

    trainable = {n for n, p in pm.named_parameters() if p.requires_grad}
    assert not [n for n in trainable if ".visual." in n]
    assert any("vgm_projector" in n for n in trainable)
    assert not [n for n in trainable if ".vgm." in n]
    assert any("trainable_tokens" in n for n in trainable)

    # Why the regex: PEFT's "all-linear" also wraps the vision tower's MLPs (DESIGN §6).
    naive = get_peft_model(model(), LoraConfig(r=8, target_modules="all-linear"))
    assert any("visual" in t for t in lora_targets(naive))


def test_vgm_trainable_by_flag():
    pm = apply_lora(model(), train_vgm=True, train_projector=False, train_vgm_token_ids=[])
    trainable = {n for n, p in pm.named_parameters() if p.requires_grad}
    assert any(".vgm." in n for n in trainable)
    assert not [n for n in trainable if "vgm_projector" in n or "trainable_tokens" in n]


def test_lora_training_step_and_merge():
    m = model(seed=2)
    proc = processor()
    batch = proc.encode_pairs(
        [pair(5, 56), pair(6, 56)],
        [
            build_messages("yes_no", vgm_text="a road", answer="Yes"),
            build_messages("count_road", vgm_text="a road", answer="1"),
        ],
        add_generation_prompt=False,
        with_labels=True,
    )
    visual_before = m.model.visual.blocks[0].mlp.gate_proj.weight.detach().clone()
    pm = apply_lora(m, dropout=0.0)
    opt = torch.optim.AdamW([p for p in pm.parameters() if p.requires_grad], lr=1e-2)
    pm.train()
    losses = []
    for _ in range(8):
        loss = pm(**batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert torch.equal(m.model.visual.blocks[0].mlp.gate_proj.weight, visual_before)

    pm.eval()
    with torch.no_grad():
        want = pm(**batch).logits
        merged = merge_lora(pm)
        assert isinstance(merged, ChangeVGForConditionalGeneration)
        assert not lora_targets(merged)
        torch.testing.assert_close(merged(**batch).logits, want, atol=1e-4, rtol=1e-4)


def test_frozen_vgm_stays_in_eval_mode():
    m = model()
    m.vgm.requires_grad_(False)
    m.train()
    assert m.training and m.model.training and not m.vgm.training
    m.vgm.requires_grad_(True)
    assert m.train().vgm.training
