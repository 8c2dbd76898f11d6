"""Prefix sharing (changevg.vlm.prefix): the same greedy answers as one ``generate`` per task."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _changevg_vlm_tiny import model, one_torch_thread, pair, processor, tokenizer  # noqa: F401

from changevg.vlm.answer import analyse_pairs, ask
from changevg.vlm.prefix import decode_greedy, generate_shared, prefill, split_prompts
from changevg.vlm.prompts import TASKS, build_messages


def _answers(results):
    return [[r.answers[t] for t in TASKS] for r in results]


def _many_eos(m, every: int = 3) -> None:
    """Make a third of the vocabulary end a reply, so an untrained model's rows end at
    different steps (and the finished rows are dropped from the batch mid-way)."""
    m.generation_config.eos_token_id = list(range(0, m.config.text_config.vocab_size, every))


def test_shared_prefix_gives_the_per_task_answers_on_64_pairs():
    m, proc = model(), processor()
    _many_eos(m)
    pairs = [pair(i, 56) for i in range(64)]
    vgm = [None if i % 5 == 0 else d for i, d in enumerate(_describe(m, proc, pairs))]
    with torch.inference_mode():
        shared = analyse_pairs(m, proc, pairs, vgm=vgm, max_new_tokens=6)
        baseline = analyse_pairs(m, proc, pairs, vgm=vgm, max_new_tokens=6, share_prefix=False)
    assert _answers(shared) == _answers(baseline)
    lengths = {len(tokenizer()(a)["input_ids"]) for r in _answers(shared) for a in r}
    assert len(lengths) > 2  # rows really ended at different steps


def _describe(m, proc, pairs):
    from changevg.vlm.answer import describe_pairs

    return describe_pairs(m, proc, pairs)


def test_vgm_tokens_kept_by_the_descriptions_replace_a_second_vgm_run():
    from dataclasses import dataclass

    from changevg.vlm.model import vgm_tokens

    @dataclass
    class Described:  # a VGMDescription-like record that kept the VGM's tokens
        caption: str
        counts: dict
        cells: list
        changed: bool
        change_score: float
        objects: list
        tokens: object = None

    m, proc = model(seed=3), processor()
    _many_eos(m)
    pairs = [pair(i, 56) for i in range(8)]
    before = proc.vgm_pixels([p[0] for p in pairs])
    after = proc.vgm_pixels([p[1] for p in pairs])
    with torch.inference_mode():
        tokens = vgm_tokens(m.vgm(before, after)).numpy()
        plain = _describe(m, proc, pairs)
        kept = [
            Described(d.caption, d.counts, d.cells, d.changed, d.change_score, [], tokens[i])
            for i, d in enumerate(plain)
        ]
        calls = []
        handle = m.vgm.register_forward_hook(lambda *_: calls.append(1))
        with_tokens = analyse_pairs(m, proc, pairs, vgm=kept, max_new_tokens=6)
        assert calls == []  # the VGM did not run again
        baseline = analyse_pairs(m, proc, pairs, vgm=plain, max_new_tokens=6, share_prefix=False)
        handle.remove()
    assert _answers(with_tokens) == _answers(baseline)


def test_free_text_questions_and_dialogue_history_share_the_prefix_too():
    m, proc = model(seed=1), processor()
    _many_eos(m, every=4)
    pairs = [pair(i, 56) for i in range(3)]
    vgm = _describe(m, proc, pairs)
    history = [("caption", "A road is built."), ("yes_no", "Yes")]
    questions = ["Is there anything new near the road?", "count_road", "locate"]
    convs = [[build_messages(q, vgm_text=v, history=history) for q in questions] for v in vgm]
    with torch.inference_mode():
        shared = generate_shared(m, proc, pairs, convs, max_new_tokens=5)
        per_q = [
            ask(m, proc, pairs, q, vgm=vgm, history=[history] * 3, max_new_tokens=5)
            for q in questions
        ]
    assert shared == [list(row) for row in zip(*per_q, strict=True)]


def test_split_prompts_puts_images_and_vgm_slots_in_the_prefix_only():
    m, proc = model(), processor()
    pairs = [pair(0, 56), pair(1, 112)]
    vgm = _describe(m, proc, pairs)
    convs = [[build_messages(t, vgm_text=v) for t in TASKS] for v in vgm]
    split = split_prompts(proc, pairs, convs)
    ids = split.prefix["input_ids"]
    for i in range(2):
        assert int((ids[i] == proc.vgm_token_id).sum()) == proc.num_vgm_tokens
        for suffix in split.suffixes[i]:
            assert proc.image_token_id not in suffix and proc.vgm_token_id not in suffix
            assert suffix[-1] != proc.tokenizer.pad_token_id
        full = proc.encode_pairs([pairs[i]], [convs[i][2]])["input_ids"][0].tolist()
        real = ids[i][split.prefix["attention_mask"][i].bool()].tolist()
        assert real + split.suffixes[i][2] == full  # prefix + suffix is the whole prompt


def test_split_prompts_refuses_prompts_that_differ_before_the_images():
    proc = processor()
    pairs = [pair(0, 56)]
    convs = [[build_messages("caption"), build_messages("caption", system="Another system.")]]
    with pytest.raises(ValueError, match="differ before their images"):
        split_prompts(proc, pairs, convs)
    with pytest.raises(ValueError, match="conversations"):
        split_prompts(proc, pairs, [])
    with pytest.raises(ValueError, match="same number"):
        split_prompts(proc, pairs * 2, [[build_messages("caption")], []])


def test_min_and_max_new_tokens():
    m, proc = model(seed=2), processor()
    _many_eos(m, every=2)
    pairs = [pair(i, 56) for i in range(4)]
    convs = [[build_messages("caption")] for _ in pairs]
    split = split_prompts(proc, pairs, convs)
    flat = [s[0] for s in split.suffixes]
    with torch.inference_mode():
        free = decode_greedy(m, prefill(m, split.prefix), flat, max_new_tokens=7)
        forced = decode_greedy(
            m, prefill(m, split.prefix), flat, max_new_tokens=7, min_new_tokens=7
        )
        with pytest.raises(ValueError, match="max_new_tokens"):
            decode_greedy(m, prefill(m, split.prefix), flat, max_new_tokens=0)
    eos = set(m.generation_config.eos_token_id)
    assert all(1 <= len(r) <= 7 for r in free) and any(len(r) < 7 for r in free)
    assert all(r[-1] in eos for r in free if len(r) < 7)
    assert all(len(r) == 7 and not eos & set(r) for r in forced)


@pytest.mark.slow
def test_shipped_default_gives_the_same_answers_both_ways_on_64_pairs():
    from changevg.model import DEFAULT_MODEL, ChangeVG

    if not (DEFAULT_MODEL / "model.safetensors").is_file():
        pytest.skip("the shipped default is not in changevg/weights/default")
    cvg = ChangeVG.load(DEFAULT_MODEL, device="cpu")
    rng = np.random.default_rng(0)
    pairs = []
    for i in range(64):
        before = np.kron(rng.integers(60, 140, (32, 32, 3)), np.ones((8, 8, 1))).astype(np.uint8)
        after = before.copy()
        if i % 2:
            y, x = rng.integers(0, 200, 2)
            after[y : y + 40, x : x + 30] = 235  # a bright new roof
        pairs.append((before, after))
    descs = cvg.screen(pairs)
    shared = cvg.predict_batch(pairs, descriptions=descs)
    baseline = cvg.predict_batch(pairs, descriptions=descs, share_prefix=False)
    assert _answers(shared) == _answers(baseline)
