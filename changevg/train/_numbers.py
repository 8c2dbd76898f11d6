"""Whole-number tokens: ``"10"`` … ``"99"`` as single tokens for the from-scratch recipe.

Qwen2's tokenizer splits numbers into digits, so copying the VGM's count "14" from the prompt
takes two steps: find the first digit after ``new buildings:`` and emit it, then find the digit
*after the one just copied*.  The 3-layer model trained here does the first step well and the
second badly — it answered "4" as "14" when drilled on uniform 0..20 counts and "10" as "4" when
drilled on realistic ones (mostly single digits).  With one token per number below 100, copying
a count is one lookup, the same as for a single digit.

New rows start as the mean of their digits' rows (input embeddings and LM head), so the model
begins near its old behaviour.  Real Qwen2.5-VL checkpoints keep their own tokenizer: this is
for the small model only.
"""

from __future__ import annotations

from typing import Any

import torch
from tokenizers import AddedToken

__all__ = ["NUMBER_TOKENS", "add_number_tokens"]

#: Numbers that become single tokens (0..9 already are).
NUMBER_TOKENS: tuple[str, ...] = tuple(str(n) for n in range(10, 100))


def add_number_tokens(model: Any, tokenizer: Any) -> int:
    """Add :data:`NUMBER_TOKENS` to ``tokenizer`` and grow ``model``'s embeddings to match.

    Args:
        model: A ChangeVG (Qwen2.5-VL) model with untied input and output embeddings.
        tokenizer: Its tokenizer; changed in place.

    Returns:
        How many tokens were added (``0`` if the tokenizer already had them all).
    """
    vocab = tokenizer.get_vocab()
    new = [t for t in NUMBER_TOKENS if t not in vocab]
    if not new:
        return 0
    digits = {d: tokenizer.convert_tokens_to_ids(d) for d in "0123456789"}
    tokenizer.add_tokens([AddedToken(t, normalized=False) for t in new])
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    with torch.no_grad():
        for layer in (model.get_input_embeddings(), model.get_output_embeddings()):
            weight = layer.weight
            for token in new:
                rows = [digits[d] for d in token]
                weight[tokenizer.convert_tokens_to_ids(token)] = weight[rows].mean(dim=0)
    return len(new)
