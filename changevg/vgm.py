"""The vision-guided module (VGM) of ChangeVG: a dual-branch bi-temporal change model.

In the ChangeVG authors' code the VGM is Change-Agent's MCI model (DESIGN.md §3): a Siamese
SegFormer (mit) encoder, bi-temporal attentive fusion of the deepest tokens, then

- a *fine-grained recognition branch*: a 3-class change mask (background / road / building)
  whose connected regions become :class:`~changevg.result.ChangeObject` s;
- a *global summary branch*: a transformer caption decoder and a change score.

It also exposes a pooled ``global_embed`` and a ``G x G`` grid of ``fine_embed`` tokens that the
VLM receives at its reserved ``<|vgm_pad|>`` tokens, and :meth:`VisionGuidedModule.describe`
turns a pair into the text prompt hint. Weights are random until trained; no hub access.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from transformers import SegformerConfig, SegformerModel

from changevg._vgm_layers import (
    BiTemporalLayer,
    CaptionDecoder,
    ChangeSegHead,
    VGMConfig,
    sincos_2d,
)
from changevg.objects import cells, counts, mask_to_objects, relabel_road_edges, summarize
from changevg.result import CLASSES, ChangeObject
from changevg.vocab import CaptionVocab

__all__ = [
    "CONFIG_NAME",
    "VOCAB_NAME",
    "WEIGHTS_NAME",
    "VGMConfig",
    "VGMDescription",
    "VGMOutput",
    "VisionGuidedModule",
]

CONFIG_NAME = "vgm_config.json"
VOCAB_NAME = "vocab.json"
WEIGHTS_NAME = "model.safetensors"
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class VGMOutput:
    """Outputs of one VGM forward pass.

    Attributes:
        mask_logits: ``[B, 3, H, W]`` change-class logits at input resolution (``CLASSES`` order).
        change_logit: ``[B]`` logit that roads or buildings changed.
        global_embed: ``[B, D]`` pooled fused features (one VLM token).
        fine_embed: ``[B, G*G, D]`` fused features pooled on a ``G x G`` grid, row-major from
            the top left like ``GRID_CELLS`` (``G*G`` VLM tokens).
        caption_logits: ``[B, T, V]`` when ``caption_ids`` were given (teacher forcing):
            position ``t`` predicts ``caption_ids[:, t + 1]``. None otherwise.
        appear_logits: ``[B, H, W]`` logit that a changed pixel's object exists in the after
            date (``config.change_type``); None for models without the change-type channel.
    """

    mask_logits: Tensor
    change_logit: Tensor
    global_embed: Tensor
    fine_embed: Tensor
    caption_logits: Tensor | None = None
    appear_logits: Tensor | None = None


@dataclass
class VGMDescription:
    """What the VGM says about one tile pair, ready for the VLM prompt and the ChangeResult.

    Attributes:
        caption: Greedy caption of the global summary branch.
        change_score: ``sigmoid(change_logit)``.
        changed: ``change_score >= config.change_threshold``.
        counts: ``{"building": n, "road": n}`` from the predicted mask.
        cells: Grid cells holding predicted objects, in ``GRID_CELLS`` order.
        objects: Predicted change objects (see :func:`changevg.objects.mask_to_objects`).
        mask: ``(H, W)`` uint8 predicted mask, values ``0/1/2`` in ``CLASSES`` order.
        tokens: ``(1 + G*G, D)`` float32 VGM embeddings (global, then fine row-major) from the
            same forward pass, so the VLM can use them without running the VGM again; None
            when not kept.
    """

    caption: str
    change_score: float
    changed: bool
    counts: dict[str, int]
    cells: list[str]
    objects: list[ChangeObject]
    mask: np.ndarray
    tokens: np.ndarray | None = None

    @classmethod
    def from_objects(
        cls,
        *,
        caption: str,
        change_score: float,
        threshold: float,
        objects: list[ChangeObject],
        mask: np.ndarray,
        tokens: np.ndarray | None = None,
    ) -> VGMDescription:
        """A description whose counts and cells are those of ``objects`` (every VGM kind)."""
        return cls(
            caption=caption,
            change_score=change_score,
            changed=change_score >= threshold,
            counts=counts(objects),
            cells=cells(objects),
            objects=objects,
            mask=mask,
            tokens=tokens,
        )

    def as_text(self) -> str:
        """One-line hint for the VLM prompt (no final period: the prompt template adds it).

        ``"{caption}; the change mask shows {summarize(objects)}"`` (e.g. ``"...; the change mask
        shows two new buildings in the top left corner and a new road in the center"``), the
        caption alone when the mask is empty, and ``"there is no change"`` when both are empty.
        """
        caption = self.caption.strip().rstrip(".").strip()
        summary = summarize(self.objects)
        if summary:
            return f"{caption}; the change mask shows {summary}" if caption else summary
        return caption or "there is no change"


def _model_type(folder: Path) -> str | None:
    """``model_type`` of a VGM folder's config (None: this module's own kind or unreadable)."""
    try:
        raw = json.loads((folder / CONFIG_NAME).read_text())
    except (OSError, ValueError):
        return None  # reported by the normal loading path
    return raw.get("model_type") if isinstance(raw, dict) else None


def _segformer_config(config: VGMConfig) -> SegformerConfig:
    return SegformerConfig(
        num_channels=3,
        num_encoder_blocks=len(config.hidden_sizes),
        depths=list(config.depths),
        sr_ratios=list(config.sr_ratios),
        hidden_sizes=list(config.hidden_sizes),
        patch_sizes=list(config.patch_sizes),
        strides=list(config.strides),
        num_attention_heads=list(config.num_attention_heads),
        mlp_ratios=list(config.mlp_ratios),
        drop_path_rate=config.drop_path_rate,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        attn_implementation="sdpa",
    )


class VisionGuidedModule(nn.Module):
    """Siamese SegFormer encoder + bi-temporal fusion + mask, caption and change-score heads.

    Args:
        config: Architecture and loss settings. ``config.vocab_size`` None is filled from
            ``vocab``; otherwise it must equal ``len(vocab)``.
        vocab: Caption vocabulary of the caption decoder.
    """

    def __init__(self, config: VGMConfig, vocab: CaptionVocab) -> None:
        super().__init__()
        if config.vocab_size is None:
            config = config.replace(vocab_size=len(vocab))
        elif config.vocab_size != len(vocab):
            raise ValueError(
                f"config.vocab_size={config.vocab_size} but the vocabulary has {len(vocab)} words"
            )
        self.config = config
        self.vocab = vocab
        dim = config.embed_dim
        # no (non-persistent) buffers for the normalisation constants: transformers builds
        # models on the meta device and leaves such buffers uninitialised when it loads them
        self.encoder = SegformerModel(_segformer_config(config))
        self.token_proj = nn.Sequential(nn.Linear(config.hidden_sizes[-1], dim), nn.LayerNorm(dim))
        self.time_embed = nn.Parameter(torch.randn(2, dim) * 0.02)
        self.fusion = nn.ModuleList(
            BiTemporalLayer(dim, config.fusion_heads, config.ffn_ratio, config.dropout)
            for _ in range(config.fusion_layers)
        )
        self.fusion_norm = nn.LayerNorm(dim)
        self.fuse = nn.Sequential(nn.Linear(3 * dim, dim), nn.GELU(), nn.LayerNorm(dim))
        self.seg_head = ChangeSegHead(
            [*config.hidden_sizes[:-1], dim],
            config.seg_dim,
            len(CLASSES) + int(config.change_type),
            config.dropout,
        )
        self.change_head = nn.Sequential(
            nn.LayerNorm(2 * dim), nn.Linear(2 * dim, dim), nn.GELU(), nn.Linear(dim, 1)
        )
        self.embed_norm = nn.LayerNorm(dim)
        self.caption_decoder = CaptionDecoder(
            len(vocab),
            dim,
            config.decoder_heads,
            config.decoder_layers,
            config.max_caption_len,
            config.ffn_ratio,
            config.dropout,
            pad_id=vocab.pad_id,
        )

    # -- forward ----------------------------------------------------------------------------

    def _encode(self, before: Tensor, after: Tensor) -> tuple[VGMOutput, Tensor]:
        """All heads but the caption decoder; also returns the decoder memory ``[B, N, D]``."""
        if before.shape != after.shape or before.ndim != 4 or before.shape[1] != 3:
            raise ValueError(
                f"before and after must both be [B, 3, H, W]; got {tuple(before.shape)} "
                f"and {tuple(after.shape)}"
            )
        ref = self.time_embed  # inputs follow the model's device and dtype
        x = torch.cat([before, after], dim=0).to(device=ref.device, dtype=ref.dtype)
        mean = torch.tensor(_IMAGENET_MEAN, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        std = torch.tensor(_IMAGENET_STD, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        x = (x - mean) / std
        images = (x[: before.shape[0]], x[before.shape[0] :])
        feats = []
        for stage in self.encoder.stages:  # Siamese: both dates in one batch
            x = stage(x)
            feats.append(x)
        batch = before.shape[0]
        deep = feats[-1]
        h, w = deep.shape[-2:]
        tokens = self.token_proj(deep.flatten(2).transpose(1, 2))
        pos = sincos_2d(h, w, self.config.embed_dim, device=tokens.device, dtype=tokens.dtype)
        a, b = tokens[:batch] + self.time_embed[0], tokens[batch:] + self.time_embed[1]
        for layer in self.fusion:
            a, b = layer(a, b, pos)
        a, b = self.fusion_norm(a), self.fusion_norm(b)
        fused = self.fuse(torch.cat([a, b, b - a], dim=-1))

        def as_map(t: Tensor) -> Tensor:
            return t.transpose(1, 2).reshape(t.shape[0], -1, h, w)

        pairs = [(f[:batch], f[batch:]) for f in feats[:-1]] + [(as_map(a), as_map(b))]
        seg = self.seg_head(pairs, size=tuple(before.shape[-2:]), images=images)
        mask_logits = seg[:, : len(CLASSES)]
        appear_logits = seg[:, len(CLASSES)] if self.config.change_type else None
        pooled = fused.mean(dim=1)
        change_logit = self.change_head(torch.cat([pooled, fused.amax(dim=1)], -1)).squeeze(-1)
        grid = F.adaptive_avg_pool2d(as_map(fused), self.config.fine_grid)
        out = VGMOutput(
            mask_logits=mask_logits,
            change_logit=change_logit,
            global_embed=self.embed_norm(pooled),
            fine_embed=self.embed_norm(grid.flatten(2).transpose(1, 2)),
            appear_logits=appear_logits,
        )
        return out, fused + pos

    def forward(
        self, before: Tensor, after: Tensor, caption_ids: Tensor | None = None
    ) -> VGMOutput:
        """Run the VGM on a batch of pairs.

        Args:
            before: ``[B, 3, H, W]`` float images in ``[0, 1]`` (ImageNet-normalised inside).
            after: Same shape as ``before``.
            caption_ids: Optional ``[B, T]`` ids ``<bos> ... <eos> <pad>...`` for teacher forcing.
        """
        out, memory = self._encode(before, after)
        if caption_ids is not None:
            out.caption_logits = self.caption_decoder(caption_ids.to(memory.device), memory)
        return out

    def loss(
        self,
        out: VGMOutput,
        *,
        mask: Tensor,
        caption_ids: Tensor | None = None,
        changed: Tensor,
        change_type: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """Weighted sum of segmentation CE (+ Dice), caption CE, change BCE and change-type BCE.

        Args:
            out: Output of :meth:`forward` (with ``caption_ids`` for the caption term).
            mask: ``[B, H, W]`` long class ids ``0/1/2`` (``255`` = ignore).
            caption_ids: ``[B, T]`` ids given to :meth:`forward`; None skips the caption term.
            changed: ``[B]`` float 0/1 change flags.
            change_type: ``[B, H, W]`` ids 0 unknown, 1 new, 2 demolished; used on changed
                pixels by models with ``config.change_type`` (None skips the term).

        Returns:
            ``{"total", "seg", "caption", "change", "change_type"}`` scalar tensors.
        """
        cfg = self.config
        logits = out.mask_logits
        weight = (
            torch.tensor(cfg.class_weights, device=logits.device, dtype=logits.dtype)
            if cfg.class_weights is not None
            else None
        )
        seg = F.cross_entropy(
            logits, mask.to(logits.device).long(), weight=weight, ignore_index=255
        )
        target = mask.to(logits.device).long()
        if cfg.dice_loss_weight:
            valid = (target != 255).to(logits.dtype)
            p_change = 1.0 - logits.softmax(dim=1)[:, 0]
            t_change = ((target > 0) & (target != 255)).to(logits.dtype)
            inter = (p_change * t_change * valid).sum(dim=(1, 2))
            denom = ((p_change + t_change) * valid).sum(dim=(1, 2))
            seg = seg + cfg.dice_loss_weight * (1.0 - (2 * inter + 1.0) / (denom + 1.0)).mean()
        change = F.binary_cross_entropy_with_logits(out.change_logit, changed.to(out.change_logit))
        kind = logits.new_zeros(())
        if change_type is not None and out.appear_logits is not None:
            ct = change_type.to(logits.device).long()
            known = (ct > 0) & (target > 0) & (target != 255)
            if bool(known.any()):
                kind = F.binary_cross_entropy_with_logits(
                    out.appear_logits[known], (ct[known] == 1).to(logits.dtype)
                )
        if caption_ids is None:
            caption = logits.new_zeros(())
        else:
            if out.caption_logits is None:
                raise ValueError(
                    "caption_ids given but out has no caption_logits: pass them to forward"
                )
            cap = out.caption_logits[:, :-1]
            target = caption_ids[:, 1:].to(cap.device)
            caption = F.cross_entropy(
                cap.reshape(-1, cap.shape[-1]), target.reshape(-1), ignore_index=self.vocab.pad_id
            )
        total = (
            cfg.seg_loss_weight * seg
            + cfg.caption_loss_weight * caption
            + cfg.change_loss_weight * change
            + cfg.change_type_loss_weight * kind
        )
        return {
            "total": total,
            "seg": seg,
            "caption": caption,
            "change": change,
            "change_type": kind,
        }

    # -- inference --------------------------------------------------------------------------

    @contextmanager
    def _eval(self) -> Iterator[None]:
        was_training = self.training
        self.eval()
        try:
            yield
        finally:
            self.train(was_training)

    def _greedy(self, memory: Tensor, max_len: int | None) -> list[str]:
        ids = self.caption_decoder.greedy(
            memory,
            bos_id=self.vocab.bos_id,
            eos_id=self.vocab.eos_id,
            pad_id=self.vocab.pad_id,
            max_len=max_len or self.config.max_caption_len,
        )
        return [self.vocab.decode(row.tolist()) for row in ids.cpu()]

    @torch.inference_mode()
    def generate_captions(
        self, before: Tensor, after: Tensor, *, max_len: int | None = None
    ) -> list[str]:
        """Greedy captions, one per pair (eval mode inside; the training flag is restored)."""
        with self._eval():
            _, memory = self._encode(before, after)
            return self._greedy(memory, max_len)

    @torch.inference_mode()
    def describe(
        self, before: Tensor, after: Tensor, *, min_object_px: int | None = None
    ) -> list[VGMDescription]:
        """Caption, change score, mask and change objects per pair (eval mode inside).

        Args:
            before: ``[B, 3, H, W]`` float images in ``[0, 1]``.
            after: Same shape as ``before``.
            min_object_px: Connected regions smaller than this are not reported as objects
                (default: ``config.min_object_px``).
        """
        with self._eval():
            out, memory = self._encode(before, after)
            captions = self._greedy(memory, None)
        probs = out.mask_logits.float().softmax(dim=1).cpu().numpy()
        scores = torch.sigmoid(out.change_logit.float()).cpu().numpy()
        tokens = torch.cat([out.global_embed.unsqueeze(1), out.fine_embed], dim=1)
        tokens = tokens.float().cpu().numpy()
        appear = (
            torch.sigmoid(out.appear_logits.float()).cpu().numpy()
            if out.appear_logits is not None
            else None
        )
        result = []
        for i, caption in enumerate(captions):
            mask = probs[i].argmax(axis=0).astype(np.uint8)
            if self.config.road_edge_relabel:
                mask = relabel_road_edges(mask)
            objects = mask_to_objects(
                mask,
                probs=probs[i],
                min_pixels=min_object_px or self.config.min_object_px,
                appear=None if appear is None else appear[i],
            )
            score = float(scores[i])
            result.append(
                VGMDescription.from_objects(
                    caption=caption,
                    change_score=score,
                    threshold=self.config.change_threshold,
                    objects=objects,
                    mask=mask,
                    tokens=tokens[i],
                )
            )
        return result

    # -- persistence ------------------------------------------------------------------------

    def save_pretrained(self, folder: str | Path) -> Path:
        """Write ``vgm_config.json``, ``vocab.json`` and ``model.safetensors`` into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / CONFIG_NAME).write_text(json.dumps(self.config.to_dict(), indent=2) + "\n")
        (folder / VOCAB_NAME).write_text(self.vocab.to_json() + "\n")
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        save_file(
            state, str(folder / WEIGHTS_NAME), metadata={"format": "pt", "model": "changevg-vgm"}
        )
        return folder

    @classmethod
    def from_pretrained(
        cls, folder: str | Path, *, device: str | torch.device = "cpu"
    ) -> VisionGuidedModule:
        """Load a folder written by :meth:`save_pretrained` (safetensors only, never pickle).

        A folder whose ``vgm_config.json`` says ``"model_type": "change-agent-mci"`` (made by
        ``changevg convert change-agent``) loads as :class:`changevg.mci.ChangeAgentMCI`,
        which has the same interface.

        Raises:
            FileNotFoundError: The folder or one of its three files is missing (named).
            ValueError: A file is unreadable or does not match the others (named).
        """
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"VGM checkpoint folder not found: {folder}")
        if _model_type(folder) == "change-agent-mci":
            from changevg.mci.model import ChangeAgentMCI

            return ChangeAgentMCI.from_pretrained(folder, device=device)  # type: ignore[return-value]
        for name in (CONFIG_NAME, VOCAB_NAME, WEIGHTS_NAME):
            if not (folder / name).is_file():
                raise FileNotFoundError(f"VGM checkpoint {folder} is missing {name}")
        try:
            config = VGMConfig.from_dict(json.loads((folder / CONFIG_NAME).read_text()))
        except (ValueError, TypeError) as err:
            raise ValueError(f"invalid {folder / CONFIG_NAME}: {err}") from err
        try:
            vocab = CaptionVocab.from_json((folder / VOCAB_NAME).read_text())
        except (ValueError, TypeError) as err:
            raise ValueError(f"invalid {folder / VOCAB_NAME}: {err}") from err
        if config.vocab_size is not None and config.vocab_size != len(vocab):
            raise ValueError(
                f"{VOCAB_NAME} has {len(vocab)} words but {CONFIG_NAME} says "
                f"vocab_size={config.vocab_size} (in {folder})"
            )
        model = cls(config, vocab)
        try:
            state = load_file(str(folder / WEIGHTS_NAME))
        except Exception as err:  # safetensors raises its own error types
            raise ValueError(f"unreadable {folder / WEIGHTS_NAME}: {err}") from err
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise ValueError(
                f"{folder / WEIGHTS_NAME} does not match {CONFIG_NAME}: {err}"
            ) from err
        return model.to(device).eval()
