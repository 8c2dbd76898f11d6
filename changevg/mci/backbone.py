"""Mix Transformer (MiT, the SegFormer encoder) as the MCI model uses it.

Four stages; each is an overlapping patch embedding (strided conv + LayerNorm), a few blocks
of spatial-reduction attention and a Mix-FFN (linear, 3x3 depthwise conv, GELU, linear), and a
final LayerNorm; stage outputs are ``NCHW``. Norm eps follow the authors' code: the blocks and
stage norms use ``config.backbone_eps`` (1e-6), the patch-embedding and spatial-reduction
norms PyTorch's default 1e-5.

State-dict layout (converter: ``cnn.segformer.`` → ``backbone.``):
``stages.{s}.patch_embed.{proj,norm}``, ``stages.{s}.blocks.{i}.{norm1,attn,norm2,mlp}``,
``stages.{s}.norm`` with ``attn.{q,kv,proj,sr,norm}`` and ``mlp.{fc1,dwconv,fc2}``.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from changevg.mci.config import MCIConfig

__all__ = ["MixVisionTransformer"]


def drop_path(x: Tensor, p: float, training: bool) -> Tensor:
    """Stochastic depth: drop whole samples' residual branches with probability ``p``."""
    if p == 0.0 or not training:
        return x
    keep = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(1.0 - p)
    return x * keep / (1.0 - p)


class PatchEmbed(nn.Module):
    """Overlapping patch embedding: conv (kernel ``k``, padding ``k // 2``) + LayerNorm."""

    def __init__(self, in_ch: int, dim: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_ch, dim, kernel, stride=stride, padding=kernel // 2)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> tuple[Tensor, int, int]:
        x = self.proj(x)
        h, w = x.shape[-2:]
        return self.norm(x.flatten(2).transpose(1, 2)), h, w


class ReducedAttention(nn.Module):
    """Multi-head self-attention whose keys/values come from an ``sr x sr``-strided conv."""

    def __init__(self, dim: int, heads: int, sr: int, qkv_bias: bool) -> None:
        super().__init__()
        self.heads = heads
        self.sr_ratio = sr
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, 2 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        if sr > 1:
            self.sr = nn.Conv2d(dim, dim, sr, stride=sr)
            self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor, h: int, w: int) -> Tensor:
        b, n, c = x.shape
        d = c // self.heads
        q = self.q(x).view(b, n, self.heads, d).transpose(1, 2)
        src = x
        if self.sr_ratio > 1:
            grid = x.transpose(1, 2).reshape(b, c, h, w)
            src = self.norm(self.sr(grid).flatten(2).transpose(1, 2))
        kv = self.kv(src).view(b, -1, 2, self.heads, d).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, kv[0], kv[1])
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class MixFFN(nn.Module):
    """Linear → 3x3 depthwise conv → GELU → linear."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.dwconv = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor, h: int, w: int) -> Tensor:
        x = self.fc1(x)
        b, n, c = x.shape
        x = self.dwconv(x.transpose(1, 2).reshape(b, c, h, w)).flatten(2).transpose(1, 2)
        return self.fc2(F.gelu(x))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``."""

    def __init__(
        self, dim: int, heads: int, sr: int, mlp_ratio: int, qkv_bias: bool, eps: float, dp: float
    ) -> None:
        super().__init__()
        self.drop_prob = dp
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = ReducedAttention(dim, heads, sr, qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = MixFFN(dim, dim * mlp_ratio)

    def forward(self, x: Tensor, h: int, w: int) -> Tensor:
        x = x + drop_path(self.attn(self.norm1(x), h, w), self.drop_prob, self.training)
        return x + drop_path(self.mlp(self.norm2(x), h, w), self.drop_prob, self.training)


class Stage(nn.Module):
    """Patch embedding, blocks and the stage's LayerNorm; ``NCHW`` in and out."""

    def __init__(self, in_ch: int, cfg: MCIConfig, s: int, drops: list[float]) -> None:
        super().__init__()
        dim = cfg.embed_dims[s]
        self.patch_embed = PatchEmbed(in_ch, dim, cfg.patch_sizes[s], cfg.strides[s])
        self.blocks = nn.ModuleList(
            Block(
                dim,
                cfg.num_heads[s],
                cfg.sr_ratios[s],
                cfg.mlp_ratios[s],
                cfg.qkv_bias,
                cfg.backbone_eps,
                p,
            )
            for p in drops
        )
        self.norm = nn.LayerNorm(dim, eps=cfg.backbone_eps)

    def forward(self, x: Tensor) -> Tensor:
        x, h, w = self.patch_embed(x)
        for block in self.blocks:
            x = block(x, h, w)
        return self.norm(x).transpose(1, 2).reshape(x.shape[0], -1, h, w)


class MixVisionTransformer(nn.Module):
    """The four MiT stages; :meth:`forward` returns every stage's ``NCHW`` output."""

    def __init__(self, cfg: MCIConfig) -> None:
        super().__init__()
        n = sum(cfg.depths)  # plain floats: no tensor work at build time (meta-device safe)
        rates = [cfg.drop_path_rate * i / max(n - 1, 1) for i in range(n)]
        stages, start, in_ch = [], 0, 3
        for s, depth in enumerate(cfg.depths):
            stages.append(Stage(in_ch, cfg, s, rates[start : start + depth]))
            start += depth
            in_ch = cfg.embed_dims[s]
        self.stages = nn.ModuleList(stages)

    def forward(self, x: Tensor) -> list[Tensor]:
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats
