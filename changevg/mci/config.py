"""Configuration and vocabulary of the Change-Agent MCI vision-guided module.

:class:`MCIConfig` holds every architecture setting of the authors' model (Change-Agent,
``Multi_change``: ``Encoder`` + ``AttentiveEncoder`` + ``DecoderTransformer``) plus the few
settings this project needs around it (change score, object filter, VLM token grid).
:class:`MCIVocab` is the authors' word vocabulary: a JSON object ``{word: id}`` with the
specials ``<NULL>`` (padding), ``<UNK>``, ``<START>`` and ``<END>``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from changevg.vocab import tokenize

__all__ = ["MODEL_TYPE", "MCIConfig", "MCIVocab"]

MODEL_TYPE = "change-agent-mci"
"""Value of ``model_type`` in a converted folder's ``vgm_config.json``."""

_STAGE_FIELDS = ("embed_dims", "num_heads", "depths", "sr_ratios", "mlp_ratios")
_SPECIALS = ("<NULL>", "<UNK>", "<START>", "<END>")


@dataclass(frozen=True)
class MCIConfig:
    """Architecture of the MCI model; defaults are the authors' ``predict.py`` (mit-b1).

    Attributes:
        network: The authors' ``--network`` name (informational; the widths below count).
        embed_dims, num_heads, depths, sr_ratios, mlp_ratios: MiT backbone per stage.
        patch_sizes, strides: Overlapping patch embeddings per stage (MiT: 7/3/3/3, 4/2/2/2).
        qkv_bias: Whether the backbone's q/kv projections have biases.
        backbone_eps: LayerNorm eps of the MiT blocks and stage norms (the patch-embedding
            and spatial-reduction norms keep PyTorch's 1e-5, as in the authors' code).
        drop_path_rate: Stochastic depth of the backbone (training only).
        cd_dims: Channels of the change-detection head per level (the authors hard-code
            ``[64, 128, 320, 512]``; they must equal ``embed_dims``).
        encoder_dim: Channels of the deepest features (``embed_dims[-1]``).
        feat_size: Rows of the learned 2-D position tables (only ``H/32`` rows are used).
        n_heads: Heads of the neck attention *and* of the caption decoder (one argument).
        n_layers: Caption-branch transformer layers.
        cd_layers: Change-detection neck layers (3 in the authors' code).
        decoder_layers: Caption decoder layers.
        feature_dim: Width of the caption decoder (and of this VGM's VLM embeddings).
        max_length: Caption length in tokens, ``<START>`` and ``<END>`` included.
        vocab_size: Words of the caption vocabulary.
        dropout: Dropout of the neck and decoder (training only).
        num_classes: Change-mask classes (background, road, building).
        mean, std: Per-channel normalisation on the 0..1 scale; multiplied by 255 and
            applied to 0..255 pixels, as the authors do.
        fine_grid: G, the VLM's fine tokens per side (pooled decoder memory).
        change_threshold: ``change_score`` at or above which a pair counts as changed.
        min_object_px: Smallest reported object in pixels (``predict.py`` counts regions
            with an area above 5).
        score_pool: Side of the box filter applied to the changed-pixel probability before
            its maximum is taken as the change score (see ``ChangeAgentMCI``).
    """

    network: str = "segformer-mit_b1"
    embed_dims: tuple[int, ...] = (64, 128, 320, 512)
    num_heads: tuple[int, ...] = (1, 2, 5, 8)
    depths: tuple[int, ...] = (2, 2, 2, 2)
    sr_ratios: tuple[int, ...] = (8, 4, 2, 1)
    mlp_ratios: tuple[int, ...] = (4, 4, 4, 4)
    patch_sizes: tuple[int, ...] = (7, 3, 3, 3)
    strides: tuple[int, ...] = (4, 2, 2, 2)
    qkv_bias: bool = True
    backbone_eps: float = 1e-6
    drop_path_rate: float = 0.1
    cd_dims: tuple[int, ...] = (64, 128, 320, 512)
    encoder_dim: int = 512
    feat_size: int = 16
    n_heads: int = 8
    n_layers: int = 3
    cd_layers: int = 3
    decoder_layers: int = 1
    feature_dim: int = 512
    max_length: int = 41
    vocab_size: int = 468
    dropout: float = 0.1
    num_classes: int = 3
    mean: tuple[float, ...] = (0.39073, 0.38623, 0.32989)
    std: tuple[float, ...] = (0.15329, 0.14628, 0.13648)
    fine_grid: int = 3
    change_threshold: float = 0.5
    min_object_px: int = 6
    score_pool: int = 3
    model_type: str = field(default=MODEL_TYPE)

    def __post_init__(self) -> None:
        for name in (*_STAGE_FIELDS, "patch_sizes", "strides", "cd_dims", "mean", "std"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.model_type != MODEL_TYPE:
            raise ValueError(f"model_type must be {MODEL_TYPE!r}, got {self.model_type!r}")
        n = {len(getattr(self, f)) for f in (*_STAGE_FIELDS, "patch_sizes", "strides")}
        if n != {4}:
            raise ValueError(f"{_STAGE_FIELDS}, patch_sizes and strides need 4 stages each")
        if tuple(self.cd_dims) != tuple(self.embed_dims):
            raise ValueError(
                f"cd_dims {list(self.cd_dims)} must equal the backbone widths "
                f"{list(self.embed_dims)} (the head fuses the backbone's features)"
            )
        if self.encoder_dim != self.embed_dims[-1]:
            raise ValueError(
                f"encoder_dim {self.encoder_dim} must equal the last backbone width "
                f"{self.embed_dims[-1]}"
            )
        for dim, heads in zip(self.embed_dims, self.num_heads, strict=True):
            if dim % heads:
                raise ValueError(f"backbone width {dim} is not divisible by {heads} heads")
        if self.encoder_dim % self.n_heads or self.feature_dim % self.n_heads:
            raise ValueError(
                f"encoder_dim {self.encoder_dim} and feature_dim {self.feature_dim} must be "
                f"divisible by n_heads {self.n_heads}"
            )
        if self.encoder_dim % 2 or self.feature_dim % 2:
            raise ValueError("encoder_dim and feature_dim must be even (position tables)")
        if min(self.n_layers, self.cd_layers, self.decoder_layers) < 1:
            raise ValueError("n_layers, cd_layers and decoder_layers must be at least 1")
        if self.max_length < 2 or self.vocab_size < len(_SPECIALS):
            raise ValueError("max_length must be >= 2 and vocab_size >= 4")
        if self.fine_grid < 1 or self.score_pool < 1 or self.score_pool % 2 == 0:
            raise ValueError("fine_grid must be >= 1 and score_pool a positive odd number")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples as lists)."""
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MCIConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error naming them."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown MCI config keys {unknown}; known: {sorted(known)}")
        return cls(**dict(data))

    def replace(self, **changes: Any) -> MCIConfig:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)


class MCIVocab:
    """The authors' caption vocabulary: ``{word: id}`` with ids ``0..n-1``.

    Args:
        stoi: Word to id. The ids must be exactly ``0..len-1`` and the four specials
            ``<NULL>``, ``<UNK>``, ``<START>``, ``<END>`` must be present.
    """

    def __init__(self, stoi: Mapping[str, int]) -> None:
        if not isinstance(stoi, Mapping) or not stoi:
            raise ValueError("a vocabulary must be a non-empty JSON object {word: id}")
        bad = [k for k, v in stoi.items() if not isinstance(v, int) or isinstance(v, bool)]
        if bad:
            raise ValueError(f"vocabulary ids must be integers; not for {bad[:5]}")
        ids = sorted(stoi.values())
        if ids != list(range(len(ids))):
            raise ValueError(f"vocabulary ids must be exactly 0..{len(ids) - 1} without gaps")
        missing = [s for s in _SPECIALS if s not in stoi]
        if missing:
            raise ValueError(f"vocabulary lacks the special tokens {missing}")
        self.stoi: dict[str, int] = dict(stoi)
        self.itos: list[str] = [""] * len(ids)
        for word, i in stoi.items():
            self.itos[i] = word
        self.pad_id = self.stoi["<NULL>"]
        self.unk_id = self.stoi["<UNK>"]
        self.bos_id = self.stoi["<START>"]
        self.eos_id = self.stoi["<END>"]

    @classmethod
    def from_itos(cls, itos: Sequence[str]) -> MCIVocab:
        """Vocabulary from its id-ordered word list."""
        if len(set(itos)) != len(itos):
            raise ValueError("vocabulary words must be unique")
        return cls({w: i for i, w in enumerate(itos)})

    @classmethod
    def from_json(cls, text: str) -> MCIVocab:
        """Parse the authors' ``vocab.json`` (``{word: id}``)."""
        return cls(json.loads(text))

    def to_json(self) -> str:
        """The authors' format, in id order."""
        return json.dumps({w: i for i, w in enumerate(self.itos)}, ensure_ascii=False, indent=0)

    def __len__(self) -> int:
        return len(self.itos)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MCIVocab) and self.itos == other.itos

    def __hash__(self) -> int:
        return hash(tuple(self.itos))

    def __repr__(self) -> str:
        return f"MCIVocab(size={len(self)})"

    def encode(self, text: str, max_len: int) -> list[int]:
        """``[<START>, words..., <END>, <NULL>...]`` of length ``max_len`` (unknown: ``<UNK>``).

        Words are lowercased with punctuation removed (:func:`changevg.vocab.tokenize`);
        captions longer than ``max_len - 2`` words are cut (``<END>`` is kept).
        """
        if max_len < 2:
            raise ValueError(f"max_len must be at least 2, got {max_len}")
        words = tokenize(text)[: max_len - 2]
        ids = [self.bos_id, *(self.stoi.get(w, self.unk_id) for w in words), self.eos_id]
        return ids + [self.pad_id] * (max_len - len(ids))

    def words(self, ids: Iterable[int]) -> list[str]:
        """Words of ``ids`` as ``predict.py`` reports them: ``<START>``/``<END>``/``<NULL>``
        dropped wherever they occur (greedy decoding stops at the first ``<END>``)."""
        drop = {self.bos_id, self.eos_id, self.pad_id}
        return [self.itos[int(i)] for i in ids if int(i) not in drop]

    def decode(self, ids: Iterable[int]) -> str:
        """:meth:`words` joined by single spaces."""
        return " ".join(self.words(ids))
