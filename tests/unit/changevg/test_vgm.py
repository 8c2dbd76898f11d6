import json

import numpy as np
import pytest
import torch

from changevg.result import GRID_CELLS
from changevg.vgm import (
    CONFIG_NAME,
    VOCAB_NAME,
    WEIGHTS_NAME,
    VGMConfig,
    VGMDescription,
    VisionGuidedModule,
)
from changevg.vocab import CaptionVocab

CAPTIONS = ["a new building appears in the center", "there is no change"]
MAX_LEN = 12


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny models on a shared 2-core machine: one thread avoids OpenMP oversubscription stalls.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def vocab():
    return CaptionVocab.build(CAPTIONS)


@pytest.fixture
def model(vocab):
    torch.manual_seed(0)
    return VisionGuidedModule(VGMConfig.tiny(max_caption_len=MAX_LEN), vocab).eval()


def _pairs(size=64):
    """Two pairs: a bright square appears in the first, nothing changes in the second."""
    g = torch.Generator().manual_seed(0)
    before = torch.rand(2, 3, size, size, generator=g) * 0.3 + 0.2
    after = before.clone()
    lo, hi = 3 * size // 8, 5 * size // 8
    after[0, :, lo:hi, lo:hi] = 0.95
    mask = torch.zeros(2, size, size, dtype=torch.long)
    mask[0, lo:hi, lo:hi] = 2
    return before, after, mask


@pytest.mark.parametrize("size", [64, 256])
def test_output_shapes(model, vocab, size):
    before, after, _ = _pairs(size)
    ids = torch.tensor([vocab.encode(c, MAX_LEN) for c in CAPTIONS])
    out = model(before, after, ids)
    d, g = model.config.embed_dim, model.config.fine_grid
    assert out.mask_logits.shape == (2, 3, size, size)
    assert out.change_logit.shape == (2,)
    assert out.global_embed.shape == (2, d)
    assert out.fine_embed.shape == (2, g * g, d) and g * g == len(GRID_CELLS)
    assert out.caption_logits.shape == (2, MAX_LEN, len(vocab))
    assert model(before, after).caption_logits is None


def test_config_presets_and_json_round_trip():
    for cfg in (VGMConfig.tiny(), VGMConfig.mit_b0(), VGMConfig.mit_b1()):
        text = json.dumps(cfg.to_dict())
        assert VGMConfig.from_dict(json.loads(text)) == cfg
    assert VGMConfig.mit_b1().hidden_sizes == [64, 128, 320, 512]
    with pytest.raises(ValueError, match="unknown"):
        VGMConfig.from_dict({"nope": 1})
    with pytest.raises(ValueError, match="equal lengths"):
        VGMConfig(depths=[1, 1])


def test_tiny_model_is_small(model):
    n = sum(p.numel() for p in model.parameters())
    assert n * 4 < 40e6


def test_vocab_size_must_match(vocab):
    with pytest.raises(ValueError, match="vocab_size"):
        VisionGuidedModule(VGMConfig.tiny(vocab_size=len(vocab) + 1), vocab)


def test_bad_inputs_raise(model):
    with pytest.raises(ValueError, match="B, 3, H, W"):
        model(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 32, 32))


def test_overfitting_two_pairs_trains_every_branch(model, vocab):
    before, after, mask = _pairs(64)
    ids = torch.tensor([vocab.encode(c, MAX_LEN) for c in CAPTIONS])
    changed = torch.tensor([1.0, 0.0])
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    model.train()
    history = []
    for _ in range(30):
        losses = model.loss(model(before, after, ids), mask=mask, caption_ids=ids, changed=changed)
        opt.zero_grad()
        losses["total"].backward()
        opt.step()
        history.append({k: v.item() for k, v in losses.items()})
    first, last = history[0], history[-1]
    for key in ("total", "seg", "caption", "change"):
        assert last[key] < 0.3 * first[key], (key, first[key], last[key])

    assert model.generate_captions(before, after) == CAPTIONS
    assert model.training  # inference helpers restore the mode
    built, unchanged = model.describe(before, after)
    assert built.changed and not unchanged.changed
    assert built.counts == {"building": 1, "road": 0} and built.cells == ["center"]
    assert unchanged.objects == [] and unchanged.cells == []
    assert built.mask.dtype == np.uint8 and built.mask.shape == (64, 64)
    assert built.objects[0].change is None  # no change-type channel: unknown, not "new"
    assert built.as_text() == (
        "a new building appears in the center; the change mask shows a changed building in the "
        "center"
    )


def test_change_type_channel_learns_new_versus_demolished(vocab):
    torch.manual_seed(0)
    cfg = VGMConfig.tiny(max_caption_len=MAX_LEN, change_type=True, dice_loss_weight=0.5)
    model = VisionGuidedModule(cfg, vocab)
    before, after, mask = _pairs(64)
    # the second pair: the same square, but gone (present before only) -> demolished
    before[1], after[1] = after[0], before[0]
    mask[1] = mask[0]
    kind = (mask > 0).long()  # 1 = new
    kind[1] = (mask[1] > 0).long() * 2  # 2 = demolished
    ids = torch.tensor([vocab.encode(CAPTIONS[0], MAX_LEN)] * 2)
    changed = torch.tensor([1.0, 1.0])
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    model.train()
    first = None
    for _ in range(40):
        out = model(before, after, ids)
        assert out.appear_logits is not None and out.appear_logits.shape == (2, 64, 64)
        losses = model.loss(out, mask=mask, caption_ids=ids, changed=changed, change_type=kind)
        opt.zero_grad()
        losses["total"].backward()
        opt.step()
        first = first or {k: v.item() for k, v in losses.items()}
    assert losses["change_type"].item() < 0.3 * first["change_type"]
    new, gone = model.describe(before, after)
    assert [o.change for o in new.objects] == ["new"]
    assert [o.change for o in gone.objects] == ["demolished"]
    assert "a demolished building in the center" in gone.as_text()


def test_save_load_round_trip_gives_identical_outputs(model, tmp_path):
    before, after, _ = _pairs(64)
    model.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [CONFIG_NAME, VOCAB_NAME, WEIGHTS_NAME]
    )
    loaded = VisionGuidedModule.from_pretrained(tmp_path)
    assert loaded.config == model.config and loaded.vocab == model.vocab
    with torch.no_grad():
        a, b = model(before, after), loaded(before, after)
    for name in ("mask_logits", "change_logit", "global_embed", "fine_embed"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert loaded.generate_captions(before, after) == model.generate_captions(before, after)


@pytest.mark.parametrize("missing", [CONFIG_NAME, VOCAB_NAME, WEIGHTS_NAME])
def test_from_pretrained_names_a_missing_file(model, tmp_path, missing):
    model.save_pretrained(tmp_path)
    (tmp_path / missing).unlink()
    with pytest.raises(FileNotFoundError, match=missing):
        VisionGuidedModule.from_pretrained(tmp_path)


def test_from_pretrained_names_a_mismatched_file(model, tmp_path):
    model.save_pretrained(tmp_path)
    other = CaptionVocab.build(["completely different words here"])
    (tmp_path / VOCAB_NAME).write_text(other.to_json())
    with pytest.raises(ValueError, match=VOCAB_NAME):
        VisionGuidedModule.from_pretrained(tmp_path)

    model.save_pretrained(tmp_path)
    cfg = model.config.replace(seg_dim=32).to_dict()
    (tmp_path / CONFIG_NAME).write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=WEIGHTS_NAME):
        VisionGuidedModule.from_pretrained(tmp_path)


def test_as_text_without_objects():
    empty = np.zeros((4, 4), np.uint8)
    d = VGMDescription("there is no change.", 0.1, False, {"building": 0, "road": 0}, [], [], empty)
    assert d.as_text() == "there is no change"
    d.caption = ""
    assert d.as_text() == "there is no change"
