"""The MCI caption decoder: image memory from both dates and a post-norm transformer decoder.

- **Memory**: ``conv1x1([A, B])`` to ``feature_dim``, then a BatchNorm bottleneck residual
  block (``ReLU(body(x) + x)``, the module the authors call ``LN``); ``H*W`` memory tokens.
- **Layers**: post-norm self-attention (causal + key padding), cross-attention to the memory
  and a ReLU FFN, and an *extra residual around the whole layer* (``layer(x) + x``).
- **Positions**: the sinusoid table is a weight of the checkpoint (``pos_table``,
  ``max_length x feature_dim``), added to the word embeddings.
- **Masks**: teacher forcing masks ``<NULL>`` *and* ``<END>`` positions as keys; greedy
  decoding masks only ``<NULL>`` (an emitted ``<NULL>`` is masked in later steps too).

State-dict layout (converter, from ``decoder_dict``): ``Conv1`` → ``memory_proj``,
``LN.left.{i}`` → ``memory_block.body.{i}``, ``vocab_embedding`` → ``word_embed``,
``position_encoding.pe`` → ``pos_table``, ``transformer.layers.{i}.multihead_attn`` →
``layers.{i}.cross_attn`` (other layer names kept), ``wdc`` → ``classifier``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["CaptionDecoder", "sinusoid_table"]


def sinusoid_table(length: int, dim: int) -> Tensor:
    """The standard sin/cos position table ``[length, dim]`` (sin on even channels)."""
    pos = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq)
    return table


class MemoryBlock(nn.Module):
    """``ReLU(body(x) + x)`` with body 1x1 (C→C/2), BN, ReLU, 3x3, BN, ReLU, 1x1 (→C), BN."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        half = dim // 2
        self.body = nn.Sequential(
            nn.Conv2d(dim, half, 1),
            nn.BatchNorm2d(half),
            nn.ReLU(),
            nn.Conv2d(half, half, 3, padding=1),
            nn.BatchNorm2d(half),
            nn.ReLU(),
            nn.Conv2d(half, dim, 1),
            nn.BatchNorm2d(dim),
        )

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.body(x) + x)


class PackedAttention(nn.Module):
    """Multi-head attention with packed q/k/v weights (``in_proj_*``), batch-first."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)

    def forward(self, x: Tensor, mem: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x`` ``[B, T, C]`` attends to ``mem`` ``[B, S, C]``; ``mask`` is additive."""
        w_q, w_kv = self.in_proj_weight.split([x.shape[-1], 2 * x.shape[-1]])
        b_q, b_kv = self.in_proj_bias.split([x.shape[-1], 2 * x.shape[-1]])
        q = F.linear(x, w_q, b_q)
        k, v = F.linear(mem, w_kv, b_kv).chunk(2, dim=-1)
        b, t, c = q.shape

        def split(z: Tensor) -> Tensor:
            return z.view(b, -1, self.heads, c // self.heads).transpose(1, 2)

        p = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(split(q), split(k), split(v), mask, dropout_p=p)
        return self.out_proj(out.transpose(1, 2).reshape(b, t, c))


class DecoderLayer(nn.Module):
    """Post-norm decoder layer that also adds its input to its output."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.self_attn = PackedAttention(dim, heads, dropout)
        self.cross_attn = PackedAttention(dim, heads, dropout)
        self.linear1 = nn.Linear(dim, 4 * dim)
        self.linear2 = nn.Linear(4 * dim, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, mem: Tensor, mask: Tensor) -> Tensor:
        y = self.norm1(x + self.drop(self.self_attn(x, x, mask)))
        y = self.norm2(y + self.drop(self.cross_attn(y, mem)))
        ffn = self.drop(self.linear2(self.drop(F.relu(self.linear1(y)))))
        return self.norm3(y + ffn) + x


class CaptionDecoder(nn.Module):
    """Memory from the two caption features, word decoder and vocabulary classifier."""

    def __init__(
        self,
        encoder_dim: int,
        dim: int,
        vocab_size: int,
        max_length: int,
        heads: int,
        layers: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.max_length = max_length
        self.memory_proj = nn.Conv2d(2 * encoder_dim, dim, 1)
        self.memory_block = MemoryBlock(dim)
        self.word_embed = nn.Embedding(vocab_size, dim)
        self.register_buffer("pos_table", sinusoid_table(max_length, dim))
        self.pos_drop = nn.Dropout(0.1)  # the authors' PositionalEncoding keeps its 0.1 default
        self.layers = nn.ModuleList(DecoderLayer(dim, heads, dropout) for _ in range(layers))
        self.drop = nn.Dropout(dropout)
        self.classifier = nn.Linear(dim, vocab_size)

    def memory(self, feat_a: Tensor, feat_b: Tensor) -> Tensor:
        """Decoder memory map ``[B, D, H, W]`` from the caption features ``[B, C, H, W]``."""
        return self.memory_block(self.memory_proj(torch.cat([feat_a, feat_b], dim=1)))

    def logits(self, ids: Tensor, memory: Tensor, key_masked: Tensor) -> Tensor:
        """``[B, T, V]`` logits for ``ids`` ``[B, T]``; ``key_masked`` ``[B, T]`` bool.

        ``memory`` is the ``[B, D, H, W]`` map of :meth:`memory`.
        """
        t = ids.shape[1]
        if t > self.max_length:
            raise ValueError(f"captions have {t} tokens; this model takes {self.max_length}")
        mem = memory.flatten(2).transpose(1, 2)
        x = self.pos_drop(self.word_embed(ids) + self.pos_table[:t])
        causal = torch.ones(t, t, dtype=torch.bool, device=ids.device).triu(1)
        blocked = causal.unsqueeze(0) | key_masked.unsqueeze(1)  # [B, T(query), T(key)]
        mask = torch.zeros(blocked.shape, dtype=x.dtype, device=x.device)
        mask = mask.masked_fill(blocked, float("-inf")).unsqueeze(1)
        for layer in self.layers:
            x = layer(x, mem, mask)
        return self.classifier(self.drop(x))

    def teacher_forcing(self, ids: Tensor, memory: Tensor, *, pad_id: int, eos_id: int) -> Tensor:
        """Logits in input order: position ``t`` predicts ``ids[:, t + 1]``."""
        return self.logits(ids, memory, (ids == pad_id) | (ids == eos_id))

    def greedy(
        self, memory: Tensor, *, bos_id: int, eos_id: int, pad_id: int, max_len: int | None = None
    ) -> tuple[list[list[int]], list[Tensor]]:
        """Greedy captions as the authors' ``sample()`` makes them, for every row at once.

        Step ``t`` feeds the tokens so far (``<NULL>`` keys masked) and takes the argmax of
        position ``t``; a row stops after it emits ``<END>``; at most ``max_len`` steps.

        Returns:
            Per row, the ids (``<START>`` first, ``<END>`` last if emitted) and the
            ``[steps, V]`` logits each step took its argmax from.
        """
        steps = min(max_len or self.max_length, self.max_length)
        batch = memory.shape[0]
        tgt = torch.full((batch, steps), pad_id, dtype=torch.long, device=memory.device)
        tgt[:, 0] = bos_id
        rows: list[Tensor] = []
        done = torch.zeros(batch, dtype=torch.bool, device=memory.device)
        ended = torch.full((batch,), steps, dtype=torch.long)
        for step in range(steps):
            prefix = tgt[:, : step + 1]
            row = self.logits(prefix, memory, prefix == pad_id)[:, step]
            rows.append(row)
            pred = row.argmax(dim=-1)
            if step + 1 < steps:
                tgt[:, step + 1] = pred
            newly = (pred == eos_id) & ~done
            ended[newly.cpu()] = step + 1
            done |= newly
            if bool(done.all()):
                break
        step_logits = torch.stack(rows, dim=1)
        preds = step_logits.argmax(dim=-1).cpu()
        ids = [[bos_id, *preds[i, : int(ended[i])].tolist()] for i in range(batch)]
        logits = [step_logits[i, : int(ended[i])] for i in range(batch)]
        return ids, logits
