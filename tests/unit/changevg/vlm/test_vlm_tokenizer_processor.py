"""Tokenizer built here and the torchvision-free processor."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _changevg_vlm_tiny import CORPUS, G, pair, processor, tokenizer
from PIL import Image
from transformers import PreTrainedTokenizerFast
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

from changevg.vlm.processor import ChangeVGProcessor, to_pil
from changevg.vlm.prompts import build_messages
from changevg.vlm.tokenizer import SPECIAL_TOKENS, build_tokenizer, load_tokenizer

TEXTS = [
    "Two new buildings appear at the top left corner.",
    "  leading spaces,\ttabs\nand newlines\n\n",
    "Zürich — 3 km² of bareland → 12 houses 🏠!",
    "numbers 1234567890 and 'quotes' \"double\"",
    "",
]


def test_round_trip_and_single_id_special_tokens(tmp_path):
    tok = tokenizer()
    assert isinstance(tok, PreTrainedTokenizerFast)
    assert len(tok) <= 600
    for text in TEXTS:
        assert tok.decode(tok.encode(text)) == text
    ids = [tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS]
    assert len(set(ids)) == len(SPECIAL_TOKENS)
    for token, i in zip(SPECIAL_TOKENS, ids):
        assert tok.encode(token) == [i]
        assert tok.encode(f"a{token}b")[1] == i
    assert (tok.eos_token, tok.pad_token, tok.bos_token) == ("<|im_end|>", "<|endoftext|>", None)
    assert tok.padding_side == "left"
    # the project's words are single tokens after training
    assert len(tok.encode(" buildings")) == 1

    tok.save_pretrained(tmp_path)
    again = load_tokenizer(str(tmp_path))
    assert again.get_vocab() == tok.get_vocab()
    assert again.chat_template == tok.chat_template
    for text in TEXTS:
        assert again.encode(text) == tok.encode(text)


def test_vocab_size_bounds():
    small = build_tokenizer(CORPUS, vocab_size=300)
    assert len(small) <= 300
    with pytest.raises(ValueError, match="vocab_size"):
        build_tokenizer(CORPUS, vocab_size=100)


def test_256px_image_is_81_tokens_and_vgm_slots_expand():
    proc = processor(vgm_size=256)
    assert isinstance(proc.image_processor, Qwen2VLImageProcessorPil)
    assert not hasattr(proc, "video_processor")
    batch = proc.encode_pairs([pair(0, 256)], [build_messages("caption", vgm_text="a road")])
    ids = batch["input_ids"][0]
    assert int((ids == proc.image_token_id).sum()) == 2 * 81
    assert batch["image_grid_thw"].tolist() == [[1, 18, 18], [1, 18, 18]]
    assert batch["pixel_values"].shape == (2 * 18 * 18, 3 * 2 * 14 * 14)
    assert int((ids == proc.vgm_token_id).sum()) == 1 + G * G
    assert batch["mm_token_type_ids"][0].tolist() == (ids == proc.image_token_id).long().tolist()
    assert batch["vgm_before"].shape == (1, 3, 256, 256)
    assert float(batch["vgm_after"].min()) >= 0.0 and float(batch["vgm_after"].max()) <= 1.0
    torch.testing.assert_close(
        batch["vgm_before"][0].permute(1, 2, 0) * 255, torch.from_numpy(pair(0, 256)[0]).float()
    )

    once = proc.expand_vgm_tokens("x<|vgm_pad|>y")[0]
    assert once.count("<|vgm_pad|>") == 10
    assert proc.expand_vgm_tokens(once)[0] == once


def test_labels_cover_only_the_answers_and_multi_turn_images_once():
    proc = processor()
    tok = tokenizer()
    conv = build_messages(
        "locate", vgm_text="a road", history=[("caption", "A road is built.")], answer="center"
    )
    batch = proc.encode_pairs([pair(1, 56)], [conv], add_generation_prompt=False, with_labels=True)
    labels = batch["labels"][0]
    kept = tok.decode(labels[labels >= 0])
    assert kept == "A road is built.<|im_end|>center<|im_end|>"
    text = proc.render(conv, add_generation_prompt=False)
    assert text.count("<|vision_start|>") == 2 and text.count("<|vgm_pad|>") == 1


def test_save_and_load_processor_offline(tmp_path):
    proc = processor()
    proc.save_pretrained(tmp_path)
    for loaded in (
        ChangeVGProcessor.from_folder(tmp_path),
        ChangeVGProcessor.from_pretrained(tmp_path, local_files_only=True),
    ):
        assert isinstance(loaded.image_processor, Qwen2VLImageProcessorPil)
        assert (loaded.fine_grid, loaded.vgm_size) == (proc.fine_grid, proc.vgm_size)
        conv = [build_messages("yes_no", vgm_text="x")]
        a = proc.encode_pairs([pair(2, 56)], conv)
        b = loaded.encode_pairs([pair(2, 56)], conv)
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_to_pil_accepts_tile_layouts():
    hwc = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    for image in (hwc, np.moveaxis(hwc, -1, 0), torch.from_numpy(hwc).permute(2, 0, 1),
                  hwc / 255.0, Image.fromarray(hwc)):  # fmt: skip
        assert np.array_equal(np.asarray(to_pil(image)), hwc)
    four_band = np.concatenate([np.moveaxis(hwc, -1, 0), hwc[None, ..., 0]])
    assert np.array_equal(np.asarray(to_pil(four_band)), hwc)
