"""Prefix sharing: several questions about one tile pair from one encoding of the pair.

Every task prompt of a pair starts with the same tokens: the system prompt, both images, the VGM
hint and the VGM slots.  Asking each task with its own ``generate`` call runs the vision tower,
the VGM and the language model over that prefix once per task.  Here a batch of pairs is
handled in three steps:

1. **Prefill**: the prefixes (the tokens all of a pair's prompts share) go through the model
   once, images and VGM included, filling a KV cache with one row per pair.
2. **Suffixes**: the cache rows are repeated, one per (pair, question), and each row's own
   question tokens are run on top of it.  Suffixes of different lengths are left-padded *inside*
   the row (the padding sits between prefix and suffix and is masked out), and positions are
   passed explicitly so that every real token gets the M-RoPE position it has in the full prompt.
3. **Greedy decoding** of all rows together; rows that have ended are dropped from the batch
   once at least half of the rows have ended.

The prompts are tokenised exactly as the one-call-per-task path tokenises them and the split is
made in token space (the longest common prefix of a pair's prompt ids), so both paths feed the
model the same tokens at the same positions and give the same greedy answers, up to
floating-point rounding between differently shaped batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from transformers import BatchFeature
from transformers.cache_utils import DynamicCache

from changevg.vlm.processor import ChangeVGProcessor

__all__ = ["PromptRows", "decode_greedy", "generate_shared", "prefill", "split_prompts"]

Message = dict[str, object]


def base_model(model: nn.Module) -> nn.Module:
    """The model under a ``PeftModel`` wrapper (LoRA layers stay active), else ``model``."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _common_prefix(seqs: Sequence[Sequence[int]]) -> int:
    """Length of the longest common prefix of ``seqs``."""
    first, n = seqs[0], min(len(s) for s in seqs)
    for i in range(n):
        if any(s[i] != first[i] for s in seqs[1:]):
            return i
    return n


@dataclass
class PromptRows:
    """A batch of pairs' prompts split into one shared prefix per pair and per-question suffixes.

    Attributes:
        prefix: Processor outputs for the prefixes, left-padded (``input_ids``,
            ``attention_mask``, ``mm_token_type_ids``, ``pixel_values``, ``image_grid_thw``,
            ``vgm_before``, ``vgm_after``).
        suffixes: Per pair, per question, the token ids that follow the prefix.
    """

    prefix: BatchFeature
    suffixes: list[list[list[int]]]


def split_prompts(
    processor: ChangeVGProcessor, pairs: Sequence[tuple], conversations: Sequence[Sequence[list]]
) -> PromptRows:
    """Tokenise every (pair, question) prompt and split it into shared prefix and suffix.

    Args:
        processor: The model's processor.
        pairs: ``(before, after)`` images.
        conversations: Per pair, one conversation (``build_messages``) per question; every
            pair has the same number of questions, at least one.

    Returns:
        The prefixes as model inputs (images once per pair) and the suffix ids.

    Raises:
        ValueError: ``conversations`` does not have one non-empty list per pair, or the prompts
            of a pair differ before their last image or VGM token (they cannot share a prefix).
    """
    if len(conversations) != len(pairs) or not pairs:
        raise ValueError(f"conversations: expected one list per pair ({len(pairs)} pairs)")
    n_q = len(conversations[0])
    if n_q == 0 or any(len(c) != n_q for c in conversations):
        raise ValueError("conversations: every pair needs the same number (>= 1) of questions")
    tok = processor.tokenizer
    texts = [
        processor.expand_vgm_tokens(processor.render(m, add_generation_prompt=True))[0]
        for convs in conversations
        for m in convs
    ]
    ids = tok(texts)["input_ids"]  # image placeholders not yet expanded
    first = processor.encode_pairs(pairs, [c[0] for c in conversations])  # images expanded
    media = {processor.image_token_id, processor.video_token_id, processor.vgm_token_id}
    rows, types, suffixes = [], [], []
    for i in range(len(pairs)):
        own = ids[i * n_q : (i + 1) * n_q]
        k = min(_common_prefix(own), min(len(s) for s in own) - 1)  # every suffix >= 1 token
        if any(t in media for s in own for t in s[k:]):
            raise ValueError(
                f"conversations: the prompts of pair {i} differ before their images or VGM slots"
            )
        keep = first["attention_mask"][i].bool()
        full, mm = first["input_ids"][i][keep], first["mm_token_type_ids"][i][keep]
        cut = len(full) - (len(own[0]) - k)  # the same suffix, after the expanded images
        if full[cut:].tolist() != own[0][k:]:
            raise RuntimeError("the processor's and the tokenizer's prompt ids disagree")
        rows.append(full[:cut])
        types.append(mm[:cut])
        suffixes.append([s[k:] for s in own])
    width = max(len(r) for r in rows)
    pad = tok.pad_token_id

    def left_pad(seqs: list[torch.Tensor], value: int) -> torch.Tensor:
        out = torch.full((len(seqs), width), value, dtype=seqs[0].dtype)
        for j, s in enumerate(seqs):
            out[j, width - len(s) :] = s
        return out

    prefix = BatchFeature(
        {
            "input_ids": left_pad(rows, pad),
            "attention_mask": left_pad([torch.ones_like(r) for r in rows], 0),
            "mm_token_type_ids": left_pad(types, 0),
            **{k: first[k] for k in ("pixel_values", "image_grid_thw", "vgm_before", "vgm_after")},
        }
    )
    return PromptRows(prefix, suffixes)


@dataclass
class DecodeState:
    """The KV cache of a batch of rows and what the next forward step needs.

    Attributes:
        cache: One row per sequence.
        mask: ``[rows, cached length]`` attention mask (0 at padding).
        next_pos: ``[rows]`` M-RoPE text position of each row's next token.
    """

    cache: DynamicCache
    mask: torch.Tensor
    next_pos: torch.Tensor

    def select(self, index: torch.Tensor) -> None:
        """Keep (or repeat) the rows at ``index``, in that order."""
        self.cache.batch_select_indices(index)
        self.mask = self.mask[index]
        self.next_pos = self.next_pos[index]

    def step(self, model: nn.Module, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Run ``ids`` (``[rows, S]``, real tokens right-aligned, ``lengths`` of them per row)
        on top of the cache; returns the float logits of each row's last token ``[rows, V]``."""
        rows, width = ids.shape
        cols = torch.arange(width, device=ids.device)
        real = cols >= (width - lengths)[:, None]
        pos = self.next_pos[:, None] + cols - (width - lengths)[:, None]
        pos = torch.where(real, pos, torch.zeros_like(pos))
        self.mask = torch.cat([self.mask, real.to(self.mask.dtype)], dim=1)
        out = model(
            input_ids=ids,
            attention_mask=self.mask,
            position_ids=pos.unsqueeze(0).expand(3, rows, width),
            cache=self.cache,
            use_cache=True,
            logits_to_keep=1,
        )
        self.next_pos = self.next_pos + lengths
        return out.logits[:, -1].float()


def prefill(
    model: nn.Module, prefix: BatchFeature, *, vgm_embeds: torch.Tensor | None = None
) -> DecodeState:
    """Run the prefixes (images, VGM and text) through the model once; the cache that results.

    Positions are Qwen2.5-VL's M-RoPE positions (``get_rope_index``) of the left-padded rows.

    Args:
        model: The ChangeVG model.
        prefix: :attr:`PromptRows.prefix`.
        vgm_embeds: ``[B, 1 + G*G, D]`` VGM tokens already computed (by ``screen``), used
            instead of running the VGM on ``vgm_before`` / ``vgm_after`` again.
    """
    base = base_model(model)
    batch = prefix.to(_device(model))
    pos, _ = base.model.get_rope_index(
        batch["input_ids"],
        mm_token_type_ids=batch["mm_token_type_ids"],
        image_grid_thw=batch["image_grid_thw"],
        attention_mask=batch["attention_mask"],
    )
    cache = DynamicCache(config=base.config.get_text_config())
    if vgm_embeds is not None:
        vgm = {"vgm_embeds": vgm_embeds.to(_device(model))}
    else:
        vgm = {"vgm_before": batch["vgm_before"], "vgm_after": batch["vgm_after"]}
    model(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        position_ids=pos,
        cache=cache,
        use_cache=True,
        pixel_values=batch["pixel_values"],
        image_grid_thw=batch["image_grid_thw"],
        logits_to_keep=1,
        **vgm,
    )
    return DecodeState(cache, batch["attention_mask"], pos[0, :, -1] + 1)


def _eos_ids(model: nn.Module) -> list[int]:
    eos = base_model(model).generation_config.eos_token_id
    return [eos] if isinstance(eos, int) else list(eos or [])


def decode_greedy(
    model: nn.Module,
    state: DecodeState,
    suffixes: Sequence[Sequence[int]],
    *,
    max_new_tokens: int = 48,
    min_new_tokens: int = 0,
) -> list[list[int]]:
    """Run each row's suffix on its cache row, then decode greedily until end token or limit.

    Args:
        model: The ChangeVG model the cache was filled by.
        state: One cache row per suffix (modified: it ends holding the unfinished rows).
        suffixes: Per row, the token ids to run before generating (each >= 1 token).
        max_new_tokens: Most tokens generated per row (the end token included).
        min_new_tokens: End tokens are suppressed before this many tokens (as ``generate``'s
            ``min_new_tokens``; benchmarks use it to make every row the same length).

    Returns:
        Per row, the generated ids, up to and including the end token.
    """
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if len(suffixes) != state.mask.shape[0] or any(len(s) == 0 for s in suffixes):
        raise ValueError("suffixes: need one non-empty suffix per cache row")
    device = state.mask.device
    eos = torch.tensor(_eos_ids(model), device=device, dtype=torch.long)
    pad = base_model(model).generation_config.pad_token_id
    pad = int(pad if pad is not None else eos[0])
    width = max(len(s) for s in suffixes)
    ids = torch.full((len(suffixes), width), pad, dtype=torch.long)
    for r, s in enumerate(suffixes):
        ids[r, width - len(s) :] = torch.tensor(s, dtype=torch.long)
    lengths = torch.tensor([len(s) for s in suffixes], device=device)
    logits = state.step(model, ids.to(device), lengths)
    rows = torch.arange(len(suffixes), device=device)  # the output each cache row feeds
    alive = torch.ones(len(suffixes), dtype=torch.bool, device=device)
    out: list[list[int]] = [[] for _ in suffixes]
    for n in range(max_new_tokens):
        if n < min_new_tokens and len(eos):
            logits[:, eos] = float("-inf")
        token = logits.argmax(-1)
        for r, t, a in zip(rows.tolist(), token.tolist(), alive.tolist(), strict=True):
            if a:
                out[r].append(t)
        alive &= ~torch.isin(token, eos)
        if n == max_new_tokens - 1 or not bool(alive.any()):
            break
        if int((~alive).sum()) * 2 >= len(rows):  # compact: drop the rows that have ended
            keep = alive.nonzero().squeeze(1)
            state.select(keep)
            rows, token, alive = rows[keep], token[keep], alive[keep]
        feed = torch.where(alive, token, torch.full_like(token, pad))
        logits = state.step(model, feed[:, None], torch.ones_like(rows))
    return out


def generate_shared(
    model: nn.Module,
    processor: ChangeVGProcessor,
    pairs: Sequence[tuple],
    conversations: Sequence[Sequence[list]],
    *,
    max_new_tokens: int = 48,
    min_new_tokens: int = 0,
    vgm_embeds: torch.Tensor | None = None,
) -> list[list[str]]:
    """Answer several questions about every pair, encoding each pair's shared prefix once.

    Args:
        model: A ChangeVG model (merged or a ``PeftModel``).
        processor: Its processor.
        pairs: ``(before, after)`` images.
        conversations: Per pair, one conversation per question (the same count for every pair).
        max_new_tokens: Reply length limit (greedy decoding).
        min_new_tokens: Suppress the end token before this many tokens (benchmarks).
        vgm_embeds: The pairs' VGM tokens if already computed (see :func:`prefill`).

    Returns:
        Per pair, per question, the reply (special tokens removed, stripped).
    """
    split = split_prompts(processor, pairs, conversations)
    n_q = len(split.suffixes[0])
    state = prefill(model, split.prefix, vgm_embeds=vgm_embeds)
    state.select(torch.arange(len(pairs), device=state.mask.device).repeat_interleave(n_q))
    flat = [s for per_pair in split.suffixes for s in per_pair]
    ids = decode_greedy(
        model, state, flat, max_new_tokens=max_new_tokens, min_new_tokens=min_new_tokens
    )
    text = [r.strip() for r in processor.batch_decode(ids, skip_special_tokens=True)]
    return [text[i * n_q : (i + 1) * n_q] for i in range(len(pairs))]
