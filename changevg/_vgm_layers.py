"""Hyperparameters and building blocks of the vision-guided module (VGM).

Private to :mod:`changevg.vgm`, which re-exports :class:`VGMConfig`. The structure follows
Change-Agent's MCI model (the VGM in the ChangeVG authors' code): bi-temporal iterative
interaction over the deepest Siamese features, a SegFormer-style all-MLP change-segmentation
head over all scales, and a small transformer caption decoder over the fused tokens.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["BiTemporalLayer", "CaptionDecoder", "ChangeSegHead", "VGMConfig", "sincos_2d"]

_MODEL_TYPE = "changevg-vgm"


@dataclass
class VGMConfig:
    """Architecture, caption and loss settings of the VGM (JSON-serialisable).

    The encoder fields map one-to-one onto transformers' ``SegformerConfig`` (mit backbones).
    Defaults are mit-b0; use the presets :meth:`mit_b0`, :meth:`mit_b1` (the authors' backbone)
    and :meth:`tiny` (the CPU-trainable shipped model).

    Attributes:
        image_size: Nominal tile size; the model accepts any size (position codes are computed).
        hidden_sizes, depths, num_attention_heads, sr_ratios, mlp_ratios, patch_sizes, strides,
            drop_path_rate: SegFormer encoder per-stage settings.
        embed_dim: Width D of fused tokens, caption decoder and VLM embeddings.
        fusion_layers, fusion_heads: Bi-temporal interaction layers and their heads.
        ffn_ratio, dropout: Feed-forward expansion and dropout of fusion/decoder/heads.
        seg_dim: Channels of the all-MLP change-segmentation head.
        fine_grid: G, fine tokens per side (G*G tokens, row-major like ``GRID_CELLS``).
        vocab_size: Caption vocabulary size (None: taken from the vocabulary).
        max_caption_len: Longest caption in tokens, ``<bos>`` and ``<eos>`` included.
        decoder_layers, decoder_heads: Caption decoder depth and heads.
        class_weights: Optional CE weights for (background, road, building).
        seg_loss_weight, caption_loss_weight, change_loss_weight: Loss mix.
        change_type: Add a change-type channel to the mask branch: per changed pixel, the
            logit that its object exists in the *after* date (new) rather than the before
            date (demolished / removed).
        change_type_loss_weight: Weight of its BCE (on labelled changed pixels only).
        dice_loss_weight: Weight of a soft Dice term on the changed (road + building) pixels,
            which penalises thin false strips that plain cross-entropy barely notices.
        road_edge_relabel: Relabel predicted building regions that hug a predicted road as road
            (:func:`changevg.objects.relabel_road_edges`) — a post-processing fix for models
            that paint road margins as building; models trained with the Dice term turn it off.
        change_threshold: ``change_score`` at or above which a pair counts as changed.
        min_object_px: Predicted regions smaller than this are noise, not objects (64 px =
            16 m² at 0.5 m, below any building; chosen on the synthetic validation split).
    """

    image_size: int = 256
    hidden_sizes: list[int] = field(default_factory=lambda: [32, 64, 160, 256])
    depths: list[int] = field(default_factory=lambda: [2, 2, 2, 2])
    num_attention_heads: list[int] = field(default_factory=lambda: [1, 2, 5, 8])
    sr_ratios: list[int] = field(default_factory=lambda: [8, 4, 2, 1])
    mlp_ratios: list[int] = field(default_factory=lambda: [4, 4, 4, 4])
    patch_sizes: list[int] = field(default_factory=lambda: [7, 3, 3, 3])
    strides: list[int] = field(default_factory=lambda: [4, 2, 2, 2])
    drop_path_rate: float = 0.1
    embed_dim: int = 256
    fusion_layers: int = 3
    fusion_heads: int = 8
    ffn_ratio: int = 4
    dropout: float = 0.1
    seg_dim: int = 256
    fine_grid: int = 3
    vocab_size: int | None = None
    max_caption_len: int = 40
    decoder_layers: int = 1
    decoder_heads: int = 8
    class_weights: list[float] | None = None
    seg_loss_weight: float = 1.0
    caption_loss_weight: float = 1.0
    change_loss_weight: float = 1.0
    change_type: bool = False
    change_type_loss_weight: float = 0.5
    dice_loss_weight: float = 0.0
    road_edge_relabel: bool = True
    change_threshold: float = 0.5
    min_object_px: int = 64

    def __post_init__(self) -> None:
        stages = {len(getattr(self, f)) for f in _STAGE_FIELDS}
        if len(stages) != 1:
            raise ValueError(f"per-stage fields {_STAGE_FIELDS} must have equal lengths")
        if self.embed_dim % self.fusion_heads or self.embed_dim % self.decoder_heads:
            raise ValueError("embed_dim must be divisible by fusion_heads and decoder_heads")
        if self.embed_dim % 4:
            raise ValueError("embed_dim must be divisible by 4 (2-D position codes)")
        if self.class_weights is not None and len(self.class_weights) != 3:
            raise ValueError(
                "class_weights needs one weight per class (background, road, building)"
            )
        if self.fine_grid < 1 or self.max_caption_len < 2:
            raise ValueError("fine_grid must be >= 1 and max_caption_len >= 2")

    @classmethod
    def mit_b0(cls, **overrides: Any) -> VGMConfig:
        """SegFormer mit-b0 encoder (3.3 M encoder parameters), D = 256."""
        return cls(**overrides)

    @classmethod
    def mit_b1(cls, **overrides: Any) -> VGMConfig:
        """SegFormer mit-b1 encoder, D = 512: the ChangeVG / Change-Agent backbone."""
        kw: dict[str, Any] = {
            "hidden_sizes": [64, 128, 320, 512],
            "embed_dim": 512,
            "seg_dim": 256,
        }
        return cls(**{**kw, **overrides})

    @classmethod
    def tiny(cls, **overrides: Any) -> VGMConfig:
        """A small model of the same architecture that trains on 2 CPU cores."""
        kw: dict[str, Any] = {
            "hidden_sizes": [16, 32, 64, 128],
            "depths": [1, 1, 1, 1],
            "num_attention_heads": [1, 1, 2, 4],
            "drop_path_rate": 0.0,
            "embed_dim": 128,
            "fusion_heads": 4,
            "seg_dim": 64,
            "decoder_heads": 4,
        }
        return cls(**{**kw, **overrides})

    def replace(self, **changes: Any) -> VGMConfig:
        """A copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict, tagged with ``model_type``."""
        return {"model_type": _MODEL_TYPE, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VGMConfig:
        """Inverse of :meth:`to_dict`; rejects other model types and unknown keys."""
        d = dict(d)
        model_type = d.pop("model_type", _MODEL_TYPE)
        if model_type != _MODEL_TYPE:
            raise ValueError(f"model_type is {model_type!r}, expected {_MODEL_TYPE!r}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown VGMConfig keys: {unknown}")
        return cls(**d)


_STAGE_FIELDS = (
    "hidden_sizes",
    "depths",
    "num_attention_heads",
    "sr_ratios",
    "mlp_ratios",
    "patch_sizes",
    "strides",
)


def sincos_2d(height: int, width: int, dim: int, *, device=None, dtype=None) -> Tensor:
    """Fixed 2-D sine-cosine position code ``[1, height*width, dim]`` (row-major tokens).

    Parameter-free, so the module works at any input size (64x64 tests, 256x256 tiles).
    """
    if dim % 4:
        raise ValueError(f"embed_dim must be divisible by 4 for 2-D position codes, got {dim}")
    quarter = dim // 4
    omega = 1.0 / (10000 ** (torch.arange(quarter, device=device, dtype=torch.float32) / quarter))
    ys, xs = torch.meshgrid(
        torch.arange(height, device=device, dtype=torch.float32),
        torch.arange(width, device=device, dtype=torch.float32),
        indexing="ij",
    )
    y = ys.reshape(-1, 1) * omega
    x = xs.reshape(-1, 1) * omega
    pos = torch.cat([x.sin(), x.cos(), y.sin(), y.cos()], dim=1)
    return pos.unsqueeze(0).to(dtype or torch.float32)


class _FeedForward(nn.Sequential):
    def __init__(self, dim: int, ratio: int, dropout: float) -> None:
        super().__init__(
            nn.Linear(dim, dim * ratio),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(dim * ratio, dim),
            nn.Dropout(dropout),
        )


class BiTemporalLayer(nn.Module):
    """One bi-temporal interaction layer (pre-norm): cross-attention to the other date, then
    self-attention and a feed-forward block.

    Both dates are updated from the *same* inputs with shared weights (Siamese), so the layer is
    symmetric; date identity comes from temporal embeddings added before the first layer.
    """

    def __init__(self, dim: int, heads: int, ffn_ratio: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim)
        self.cross = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm_self = nn.LayerNorm(dim)
        self.self_attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm_ffn = nn.LayerNorm(dim)
        self.ffn = _FeedForward(dim, ffn_ratio, dropout)

    def forward(self, a: Tensor, b: Tensor, pos: Tensor) -> tuple[Tensor, Tensor]:
        """Update ``a`` (before) and ``b`` (after), both ``[B, N, D]``, in one batched pass."""
        x = torch.cat([a, b], dim=0)
        other = torch.cat([b, a], dim=0)
        q, kv = self.norm_q(x), self.norm_kv(other)
        x = x + self.cross(q + pos, kv + pos, kv, need_weights=False)[0]
        h = self.norm_self(x)
        x = x + self.self_attn(h + pos, h + pos, h, need_weights=False)[0]
        x = x + self.ffn(self.norm_ffn(x))
        return x.chunk(2, dim=0)  # type: ignore[return-value]


class ChangeSegHead(nn.Module):
    """SegFormer-style all-MLP change head over multi-scale bi-temporal features.

    Each scale's ``[|f_b - f_a|, f_b, f_a]`` is mapped linearly to ``dim`` channels, upsampled
    to the finest scale (stride 4) and summed, then normalised, classified and upsampled to the
    input resolution. SegFormer's per-scale MLP, concatenation and 1x1 fusion are all linear, so
    one 1x1 conv per scale applied *before* upsampling computes the same family of functions at
    a fraction of the cost (most scales are fused at 1/8..1/32 resolution).
    """

    def __init__(
        self, in_channels: list[int], dim: int, num_classes: int, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.proj = nn.ModuleList(nn.Conv2d(3 * c, dim, kernel_size=1) for c in in_channels)
        self.post = nn.Sequential(nn.GroupNorm(1, dim), nn.GELU(), nn.Dropout2d(dropout))
        self.classify = nn.Conv2d(dim, num_classes, kernel_size=1)
        # full-resolution refinement from the images themselves: the coarse (stride-4) logits
        # alone blur the 1-2 m gaps between neighbouring houses, which merges them (counts!)
        hidden = 8
        self.refine = nn.Sequential(
            nn.Conv2d(num_classes + 9, hidden, kernel_size=3, padding=1),
            nn.GELU(),
            nn.Conv2d(hidden, num_classes, kernel_size=3, padding=1),
        )
        nn.init.zeros_(self.refine[-1].weight)  # starts as the identity on the coarse logits
        nn.init.zeros_(self.refine[-1].bias)

    def forward(
        self,
        pairs: list[tuple[Tensor, Tensor]],
        size: tuple[int, int],
        images: tuple[Tensor, Tensor] | None = None,
    ) -> Tensor:
        """``pairs``: ``(f_a, f_b)`` maps per scale, finest first; ``images``: the normalised
        ``(before, after)`` at full resolution for the refinement; returns ``[B, C, *size]``."""
        target = pairs[0][0].shape[-2:]
        fused: Tensor | None = None
        for proj, (fa, fb) in zip(self.proj, pairs, strict=True):
            m = proj(torch.cat([(fb - fa).abs(), fb, fa], dim=1))
            if m.shape[-2:] != target:
                m = F.interpolate(m, size=target, mode="bilinear", align_corners=False)
            fused = m if fused is None else fused + m
        logits = self.classify(self.post(fused))
        logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        if images is None:
            return logits
        before, after = images
        return logits + self.refine(torch.cat([logits, before, after, after - before], dim=1))


class CaptionDecoder(nn.Module):
    """Transformer caption decoder (pre-norm, causal) over a memory of fused visual tokens."""

    def __init__(
        self,
        vocab_size: int,
        dim: int,
        heads: int,
        layers: int,
        max_len: int,
        ffn_ratio: int = 4,
        dropout: float = 0.0,
        pad_id: int = 0,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.max_len = max_len
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=pad_id)
        self.pos = nn.Embedding(max_len, dim)
        layer = nn.TransformerDecoderLayer(
            dim,
            heads,
            dim_feedforward=dim * ffn_ratio,
            dropout=dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.layers = nn.TransformerDecoder(layer, num_layers=layers)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab_size)

    def forward(self, ids: Tensor, memory: Tensor) -> Tensor:
        """Next-token logits ``[B, T, V]``: position ``t`` predicts token ``t + 1`` of ``ids``."""
        length = ids.shape[1]
        if length > self.max_len:
            raise ValueError(f"caption length {length} exceeds max_caption_len {self.max_len}")
        positions = torch.arange(length, device=ids.device)
        x = self.embed(ids) + self.pos(positions)
        causal = nn.Transformer.generate_square_subsequent_mask(
            length, device=ids.device, dtype=x.dtype
        )
        x = self.layers(x, memory, tgt_mask=causal, tgt_is_causal=True)
        return self.head(self.norm(x))

    @torch.no_grad()
    def greedy(
        self, memory: Tensor, *, bos_id: int, eos_id: int, pad_id: int, max_len: int
    ) -> Tensor:
        """Greedy decoding: ``[B, <=max_len]`` ids starting with ``<bos>``; pads after ``<eos>``.

        ``<pad>`` and ``<bos>`` are never emitted.
        """
        batch = memory.shape[0]
        ids = torch.full((batch, 1), bos_id, dtype=torch.long, device=memory.device)
        done = torch.zeros(batch, dtype=torch.bool, device=memory.device)
        for _ in range(min(max_len, self.max_len) - 1):
            logits = self(ids, memory)[:, -1]
            logits[:, [pad_id, bos_id]] = float("-inf")
            nxt = logits.argmax(dim=-1)
            nxt = torch.where(done, torch.full_like(nxt, pad_id), nxt)
            ids = torch.cat([ids, nxt[:, None]], dim=1)
            done |= nxt == eos_id
            if bool(done.all()):
                break
        return ids
