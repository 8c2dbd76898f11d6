"""The MCI bi-temporal neck: difference-aware attention blocks and learned 2-D positions.

Both the change-detection neck and the caption branch are made of :class:`NeckBlock`
pairs over the deepest (stage-4) tokens. What the authors' code does, including the parts
that look accidental but change the outputs:

- **Adapters**: the query input gets ``x + DynamicConv_q(x)``, the key input
  ``x + DynamicConv_k(x)`` (depthwise 3x3, 1x5 and 5x1 convs, BatchNorm, GELU, 1x1 conv).
- **Data-dependent attention**: when the adapted query and key are *not exactly equal*,
  keys and values are both computed from ``fuse(q * (k - q))`` (1x1 conv, BatchNorm, ReLU);
  only when they are equal is it plain attention on the adapted key. The authors pass the
  key tensor as the value argument in every call, so the value input is the key input here.
- **Post-norm with an asymmetric residual**: ``norm1(attn + q_adapted)``, then
  ``norm2(ffn(x) + x)``; the residual is the *adapted* query, the key side has none.
- The output projection exists only with more than one head; scale ``(C / heads) ** -0.5``.
- **Positions** (:class:`GridPositionTable`): the first ``C/2`` channels come from the table
  the authors call ``h_embedding`` indexed by the *column*, the last ``C/2`` from
  ``w_embedding`` indexed by the *row* (here: ``col_embed`` and ``row_embed``).
- :class:`BiTemporalLayer` ``sequential=True`` (CD neck): ``a = block_a(a, b) + a``, then
  ``b = block_b(b, a_new) + b``; ``sequential=False`` (caption branch): both from the previous
  layer's ``a`` and ``b``, no outer residual.

Tokens are ``[B, H*W, C]`` in row-major order; the grid shape is passed explicitly (the
authors assume a square grid, which is what 256x256 inputs give).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["BiTemporalLayer", "DynamicConv", "GridPositionTable", "NeckBlock"]


def _to_map(x: Tensor, h: int, w: int) -> Tensor:
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], h, w)


def _to_tokens(x: Tensor) -> Tensor:
    return x.flatten(2).transpose(1, 2)


class DynamicConv(nn.Module):
    """Depthwise 3x3 / 1x5 / 5x1 convs, concatenated, BatchNorm, GELU, 1x1 conv back to C."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dw3x3 = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.dw1x5 = nn.Conv2d(dim, dim, (1, 5), padding=(0, 2), groups=dim)
        self.dw5x1 = nn.Conv2d(dim, dim, (5, 1), padding=(2, 0), groups=dim)
        self.bn = nn.BatchNorm2d(3 * dim)
        self.proj = nn.Conv2d(3 * dim, dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = torch.cat([self.dw3x3(x), self.dw1x5(x), self.dw5x1(x)], dim=1)
        return self.proj(F.gelu(self.bn(x)))


class DifferenceAttention(nn.Module):
    """Attention whose keys/values come from ``fuse(q * (k - q))`` unless ``q`` equals ``k``."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim) if heads > 1 else None
        self.out_drop = nn.Dropout(dropout)
        self.fuse_conv = nn.Conv2d(dim, dim, 1)
        self.fuse_bn = nn.BatchNorm2d(dim)

    def forward(self, q_map: Tensor, k_map: Tensor) -> Tensor:
        """``[B, H*W, C]`` from query and key maps ``[B, C, H, W]``."""
        if not torch.equal(q_map, k_map):
            k_map = F.relu(self.fuse_bn(self.fuse_conv(q_map * (k_map - q_map))))
        q_tok, kv_tok = _to_tokens(q_map), _to_tokens(k_map)
        b, n, c = q_tok.shape
        d = c // self.heads

        def split(t: Tensor) -> Tensor:
            return t.view(b, -1, self.heads, d).transpose(1, 2)

        p = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(
            split(self.q(q_tok)), split(self.k(kv_tok)), split(self.v(kv_tok)), dropout_p=p
        )
        out = out.transpose(1, 2).reshape(b, n, c)
        return self.out_drop(self.out(out)) if self.out is not None else out


class NeckBlock(nn.Module):
    """Adapters, difference attention and a ReLU FFN, post-norm (see the module docstring)."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.q_adapter = DynamicConv(dim)
        self.k_adapter = DynamicConv(dim)
        self.attn = DifferenceAttention(dim, heads, dropout)
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.fc2 = nn.Linear(4 * dim, dim)
        self.drop = nn.Dropout(dropout)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)

    def forward(self, q: Tensor, kv: Tensor, hw: tuple[int, int]) -> Tensor:
        """``q``, ``kv``: ``[B, H*W, C]`` tokens on an ``hw`` grid; returns ``[B, H*W, C]``."""
        q_map, k_map = _to_map(q, *hw), _to_map(kv, *hw)
        q_map = q_map + self.q_adapter(q_map)
        k_map = k_map + self.k_adapter(k_map)
        x = self.norm1(self.attn(q_map, k_map) + _to_tokens(q_map))
        ffn = self.drop(self.fc2(self.drop(F.relu(self.fc1(x)))))
        return self.norm2(ffn + x)


class BiTemporalLayer(nn.Module):
    """One pair of neck blocks: ``a`` attends to ``b`` and ``b`` to ``a``.

    Args:
        sequential: CD-neck form (outer residuals, ``b`` sees the updated ``a``); False is
            the caption-branch form (parallel update, no outer residual).
    """

    def __init__(self, dim: int, heads: int, dropout: float, *, sequential: bool) -> None:
        super().__init__()
        self.sequential = sequential
        self.a = NeckBlock(dim, heads, dropout)
        self.b = NeckBlock(dim, heads, dropout)

    def forward(self, a: Tensor, b: Tensor, hw: tuple[int, int]) -> tuple[Tensor, Tensor]:
        if self.sequential:
            a = self.a(a, b, hw) + a
            return a, self.b(b, a, hw) + b
        return self.a(a, b, hw), self.b(b, a, hw)


class GridPositionTable(nn.Module):
    """Learned 2-D positions: channels ``[:C/2]`` by column, ``[C/2:]`` by row."""

    def __init__(self, rows: int, dim: int) -> None:
        super().__init__()
        self.col_embed = nn.Embedding(rows, dim // 2)
        self.row_embed = nn.Embedding(rows, dim // 2)

    def forward(self, h: int, w: int) -> Tensor:
        """``[C, h, w]`` position map (rows ``0..h-1`` / ``0..w-1`` of the tables)."""
        rows = self.col_embed.num_embeddings
        if h > rows or w > rows:
            raise ValueError(
                f"a {h}x{w} stage-4 grid needs position tables of at least {max(h, w)} rows, "
                f"the model has {rows} (feat_size): use inputs of at most {32 * rows} px"
            )
        col = self.col_embed.weight[:w]  # [w, C/2]
        row = self.row_embed.weight[:h]  # [h, C/2]
        grid = torch.cat(
            [col.unsqueeze(0).expand(h, w, -1), row.unsqueeze(1).expand(h, w, -1)], dim=-1
        )
        return grid.permute(2, 0, 1)
