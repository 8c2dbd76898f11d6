"""Asking ChangeVG about tile pairs: batched generation and ``ChangeResult`` assembly."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn

from changevg.result import ChangeResult
from changevg.vlm.parse import to_change_result
from changevg.vlm.processor import ChangeVGProcessor, ImageLike
from changevg.vlm.prompts import TASKS, PromptStyle, build_messages, get_style

__all__ = ["analyse_pairs", "ask", "describe_pairs", "prompt_style"]

Pair = tuple[ImageLike, ImageLike]


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def prompt_style(model: nn.Module) -> PromptStyle:
    """The prompt style a model was trained with (``prompt_version`` in its config)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    settings = getattr(getattr(base, "config", None), "changevg", None) or {}
    return get_style(settings.get("prompt_version"))


def _vgm_module(model: nn.Module) -> nn.Module | None:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return getattr(base, "vgm", None)


@torch.no_grad()
def describe_pairs(
    model: nn.Module, processor: ChangeVGProcessor, pairs: Sequence[Pair]
) -> list[Any] | None:
    """The VGM's descriptions of the pairs (``vgm.describe``), or ``None`` without a VGM."""
    vgm = _vgm_module(model)
    if vgm is None or not hasattr(vgm, "describe"):
        return None
    device = _device(vgm) if any(True for _ in vgm.parameters()) else torch.device("cpu")
    before = processor.vgm_pixels([p[0] for p in pairs]).to(device)
    after = processor.vgm_pixels([p[1] for p in pairs]).to(device)
    return list(vgm.describe(before, after))


@torch.no_grad()
def ask(
    model: nn.Module,
    processor: ChangeVGProcessor,
    pairs: Sequence[Pair],
    question: str,
    *,
    vgm: Sequence[Any] | None = None,
    history: Sequence[Iterable[tuple[str, str]]] | None = None,
    max_new_tokens: int = 48,
) -> list[str]:
    """Ask one question (a task name or free text) about every pair, in one batch.

    Args:
        model: A ChangeVG model (merged or a ``PeftModel``).
        processor: Its processor.
        pairs: ``(before, after)`` images.
        question: Task name (``caption``, ``yes_no``, …) or free text.
        vgm: Per pair, the VGM description quoted in the prompt (``None`` entries or no list:
            no VGM block).  Pairs with a description also get the VGM embedding slots.
        history: Per pair, earlier ``(question, answer)`` turns of a dialogue.
        max_new_tokens: Reply length limit (greedy decoding).

    Returns:
        The replies, special tokens removed and stripped.
    """
    vgms = list(vgm) if vgm is not None else [None] * len(pairs)
    histories = list(history) if history is not None else [()] * len(pairs)
    if not len(vgms) == len(histories) == len(pairs):
        raise ValueError("pairs, vgm and history must have the same length")
    style = prompt_style(model)
    conversations = [
        build_messages(question, vgm_text=v, history=h, vgm_tokens=v is not None, style=style)
        for v, h in zip(vgms, histories, strict=True)
    ]
    batch = processor.encode_pairs(pairs, conversations).to(_device(model))
    out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False)
    replies = processor.batch_decode(
        out[:, batch["input_ids"].shape[1] :], skip_special_tokens=True
    )
    return [r.strip() for r in replies]


def _known_tokens(vgms: Sequence[Any]) -> torch.Tensor | None:
    """``[B, 1 + G*G, D]``: the VGM tokens every description kept (``VGMDescription.tokens``),
    or None when any pair lacks them (the VGM then runs again on the images)."""
    tokens = [getattr(v, "tokens", None) for v in vgms]
    if not tokens or any(t is None for t in tokens):
        return None
    return torch.stack([torch.as_tensor(t) for t in tokens])


def analyse_pairs(
    model: nn.Module,
    processor: ChangeVGProcessor,
    pairs: Sequence[Pair],
    *,
    tasks: Sequence[str] = TASKS,
    vgm: Sequence[Any] | None = None,
    max_new_tokens: int = 48,
    share_prefix: bool = True,
) -> list[ChangeResult]:
    """Ask every task about every pair and combine the answers (see :mod:`changevg.vlm.parse`).

    Args:
        model: A ChangeVG model (merged or a ``PeftModel``).
        processor: Its processor.
        pairs: ``(before, after)`` images.
        tasks: The tasks to ask (default: all five).
        vgm: Per pair, the VGM description; default: the model's own (:func:`describe_pairs`).
        max_new_tokens: Reply length limit (greedy decoding).
        share_prefix: Encode each pair's images, VGM block and hint once and answer every task
            from that cached prefix (:mod:`changevg.vlm.prefix`), reusing the VGM tokens the
            descriptions kept instead of running the VGM again.  ``False``: one batched
            ``generate`` per task, each encoding the whole prompt again (the baseline; same
            greedy answers).
    """
    if vgm is None:
        vgm = describe_pairs(model, processor, pairs)
    tasks = tuple(tasks)
    if not tasks:
        raise ValueError("analyse_pairs: tasks must name at least one task")
    if not pairs:
        return []
    if share_prefix:
        from changevg.vlm.prefix import generate_shared

        style = prompt_style(model)
        vgms = list(vgm) if vgm is not None else [None] * len(pairs)
        conversations = [
            [build_messages(t, vgm_text=v, vgm_tokens=v is not None, style=style) for t in tasks]
            for v in vgms
        ]
        answers = generate_shared(
            model,
            processor,
            pairs,
            conversations,
            max_new_tokens=max_new_tokens,
            vgm_embeds=_known_tokens(vgms),
        )
        replies = {t: [a[k] for a in answers] for k, t in enumerate(tasks)}
    else:
        replies = {t: ask(model, processor, pairs, t, vgm=vgm, max_new_tokens=max_new_tokens)
                   for t in tasks}  # fmt: skip
    return [
        to_change_result({t: replies[t][i] for t in tasks}, vgm=vgm[i] if vgm else None)
        for i in range(len(pairs))
    ]
