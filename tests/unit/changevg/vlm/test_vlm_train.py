"""End to end training path: a tiny ChangeVG overfits two examples and then answers them."""

from __future__ import annotations

import torch
from _changevg_vlm_tiny import model, one_torch_thread, pair, processor, tokenizer  # noqa: F401

from changevg.vlm.answer import ask
from changevg.vlm.parse import parse_answer
from changevg.vlm.prompts import build_messages

EXAMPLES = [
    ("caption", "a road", "A new road is built in the center."),
    ("count_building", "two buildings", "2"),
]


def test_overfits_two_examples_and_answers_them():
    m = model(seed=7)
    proc = processor()
    tok = tokenizer()
    pairs = [pair(11, 56), pair(12, 56)]
    train = proc.encode_pairs(
        pairs,
        [build_messages(task, vgm_text=v, answer=a) for task, v, a in EXAMPLES],
        add_generation_prompt=False,
        with_labels=True,
    )
    supervised = tok.batch_decode(
        [row[row >= 0] for row in train["labels"]], skip_special_tokens=False
    )
    assert supervised == [a + "<|im_end|>" for _, _, a in EXAMPLES]

    opt = torch.optim.AdamW(m.parameters(), lr=3e-3, weight_decay=0.0)
    m.train()
    losses = []
    for _ in range(40):
        loss = m(**train).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]

    m.eval()
    vgm = [v for _, v, _ in EXAMPLES]
    answers = [ask(m, proc, pairs, task, vgm=vgm)[i] for i, (task, _, _) in enumerate(EXAMPLES)]
    assert answers == [a for _, _, a in EXAMPLES]
    assert parse_answer("count_building", answers[1]) == 2
