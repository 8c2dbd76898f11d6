"""Change-Agent's MCI model as a vision-guided module of this project.

:class:`ChangeAgentMCI` is an independent re-implementation of the authors' three modules
(``Encoder``, ``AttentiveEncoder``, ``DecoderTransformer``; see :mod:`changevg.mci.neck`,
:mod:`~changevg.mci.head` and :mod:`~changevg.mci.decoder` for the behaviour reproduced) with
the interface of :class:`changevg.vgm.VisionGuidedModule`.

Data flow (``A`` = before, ``B`` = after, both through one MiT backbone):

1. CD branch: stage-4 tokens + CD positions → ``cd_layers`` sequential pairs; the change
   head fuses stages 1-3 and the updated stage 4 into 3-class logits.
2. Caption branch: stage-4 tokens + caption positions → ``n_layers`` parallel pairs → the two
   caption features → the caption decoder.

What MCI does not have, and how this class provides it (documented, not the authors'):

- ``change_logit``: MCI has no change head. The change score is the largest value of the
  changed-pixel probability ``1 - P(background)`` after a ``score_pool x score_pool`` box
  filter (so a lone pixel does not count as a change); ``change_logit`` is its logit.
- ``global_embed`` / ``fine_embed``: the caption decoder's memory map (``feature_dim``
  channels, both dates fused), averaged over the grid and pooled to ``fine_grid x fine_grid``.
  Their width is ``feature_dim`` (512 for the published model), see :attr:`embed_dim`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from changevg.mci.backbone import MixVisionTransformer
from changevg.mci.config import MCIConfig, MCIVocab
from changevg.mci.decoder import CaptionDecoder
from changevg.mci.head import ChangeSegHead
from changevg.mci.neck import BiTemporalLayer, GridPositionTable
from changevg.objects import mask_to_objects
from changevg.vgm import CONFIG_NAME, VOCAB_NAME, WEIGHTS_NAME, VGMDescription, VGMOutput

__all__ = ["ChangeAgentMCI"]

_EPS = 1e-6


def _tokens(x: Tensor) -> Tensor:
    return x.flatten(2).transpose(1, 2)


def _map(x: Tensor, hw: tuple[int, int]) -> Tensor:
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], *hw)


class ChangeAgentMCI(nn.Module):
    """The MCI multi-task change model (mask + caption) with the VGM interface.

    Args:
        config: Architecture (:class:`MCIConfig`); ``config.vocab_size`` must equal
            ``len(vocab)``.
        vocab: The authors' word vocabulary.
    """

    def __init__(self, config: MCIConfig, vocab: MCIVocab) -> None:
        super().__init__()
        if config.vocab_size != len(vocab):
            raise ValueError(
                f"config.vocab_size={config.vocab_size} but the vocabulary has {len(vocab)} words"
            )
        self.config = config
        self.vocab = vocab
        c = config.encoder_dim
        self.backbone = MixVisionTransformer(config)
        self.cd_pos = GridPositionTable(config.feat_size, c)
        self.cd_neck = nn.ModuleList(
            BiTemporalLayer(c, config.n_heads, config.dropout, sequential=True)
            for _ in range(config.cd_layers)
        )
        self.seg_head = ChangeSegHead(config.cd_dims, config.num_classes)
        self.caption_pos = GridPositionTable(config.feat_size, c)
        self.caption_layers = nn.ModuleList(
            BiTemporalLayer(c, config.n_heads, config.dropout, sequential=False)
            for _ in range(config.n_layers)
        )
        self.decoder = CaptionDecoder(
            c,
            config.feature_dim,
            config.vocab_size,
            config.max_length,
            config.n_heads,
            config.decoder_layers,
            config.dropout,
        )

    @property
    def embed_dim(self) -> int:
        """Width of ``global_embed`` / ``fine_embed`` (``feature_dim``)."""
        return self.config.feature_dim

    # -- forward ----------------------------------------------------------------------------

    def normalize(self, images: Tensor) -> Tensor:
        """``[B, 3, H, W]`` images in ``[0, 1]`` → the authors' input ``(255 x - mean) / std``.

        ``mean`` and ``std`` are scaled to 0..255 and rounded to float32 as in ``predict.py``.
        """
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be [B, 3, H, W], got {tuple(images.shape)}")
        ref = self.decoder.pos_table
        x = images.to(device=ref.device, dtype=ref.dtype) * 255.0
        kw = {"device": x.device, "dtype": torch.float32}
        mean = torch.tensor([m * 255 for m in self.config.mean], **kw).view(1, 3, 1, 1)
        std = torch.tensor([s * 255 for s in self.config.std], **kw).view(1, 3, 1, 1)
        return (x - mean.to(x.dtype)) / std.to(x.dtype)

    def encode(self, norm_a: Tensor, norm_b: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The authors' encoder + attentive encoder on *normalised* inputs.

        Returns:
            ``(seg_logits [B, 3, H, W], caption_feat_a, caption_feat_b [B, C, h, w])``.
        """
        if norm_a.shape != norm_b.shape:
            raise ValueError(
                f"before and after differ in shape: {tuple(norm_a.shape)} vs {tuple(norm_b.shape)}"
            )
        size = norm_a.shape[-2:]
        if size[0] % 32 or size[1] % 32:
            raise ValueError(
                f"image size {tuple(size)} is not a multiple of 32; the MCI model was trained "
                f"on 256x256 tiles (resize them)"
            )
        n = norm_a.shape[0]
        feats = self.backbone(torch.cat([norm_a, norm_b], dim=0))  # Siamese
        feats_a, feats_b = [f[:n] for f in feats], [f[n:] for f in feats]
        deep_a, deep_b = feats_a[-1], feats_b[-1]
        hw = (deep_a.shape[-2], deep_a.shape[-1])

        pos = self.cd_pos(*hw)
        a, b = _tokens(deep_a + pos), _tokens(deep_b + pos)
        for layer in self.cd_neck:
            a, b = layer(a, b, hw)
        seg = self.seg_head([*feats_a[:-1], _map(a, hw)], [*feats_b[:-1], _map(b, hw)])

        pos = self.caption_pos(*hw)
        a, b = _tokens(deep_a + pos), _tokens(deep_b + pos)
        for layer in self.caption_layers:
            a, b = layer(a, b, hw)
        return seg, _map(a, hw), _map(b, hw)

    def _outputs(self, seg: Tensor, memory: Tensor) -> VGMOutput:
        k = self.config.score_pool
        changed = 1.0 - seg.float().softmax(dim=1)[:, 0:1]
        pooled = F.avg_pool2d(changed, k, stride=1, padding=k // 2, count_include_pad=False)
        score = pooled.flatten(1).amax(dim=1).clamp(_EPS, 1.0 - _EPS)
        grid = F.adaptive_avg_pool2d(memory, self.config.fine_grid)
        return VGMOutput(
            mask_logits=seg,
            change_logit=torch.logit(score).to(seg.dtype),
            global_embed=memory.mean(dim=(2, 3)),
            fine_embed=_tokens(grid),
        )

    def forward(
        self, before: Tensor, after: Tensor, caption_ids: Tensor | None = None
    ) -> VGMOutput:
        """Run the model on a batch of pairs.

        Args:
            before: ``[B, 3, H, W]`` float images in ``[0, 1]`` (normalised inside).
            after: Same shape as ``before``.
            caption_ids: Optional ``[B, T]`` authors' token ids (``<START> ... <END> <NULL>``)
                for teacher forcing; ``caption_logits[:, t]`` predicts ``caption_ids[:, t + 1]``.
        """
        seg, cap_a, cap_b = self.encode(self.normalize(before), self.normalize(after))
        memory = self.decoder.memory(cap_a, cap_b)
        out = self._outputs(seg, memory)
        if caption_ids is not None:
            out.caption_logits = self.decoder.teacher_forcing(
                caption_ids.to(memory.device),
                memory,
                pad_id=self.vocab.pad_id,
                eos_id=self.vocab.eos_id,
            )
        return out

    # -- inference --------------------------------------------------------------------------

    @contextmanager
    def _eval(self) -> Iterator[None]:
        was_training = self.training
        self.eval()
        try:
            yield
        finally:
            self.train(was_training)

    def greedy_ids(self, memory: Tensor, max_len: int | None = None) -> list[list[int]]:
        """Greedy token ids per pair from a decoder memory (``<START>`` first)."""
        v = self.vocab
        ids, _ = self.decoder.greedy(
            memory, bos_id=v.bos_id, eos_id=v.eos_id, pad_id=v.pad_id, max_len=max_len
        )
        return ids

    @torch.inference_mode()
    def generate_captions(
        self, before: Tensor, after: Tensor, *, max_len: int | None = None
    ) -> list[str]:
        """Greedy captions (``predict.py``'s words joined by spaces), eval mode inside."""
        with self._eval():
            _, cap_a, cap_b = self.encode(self.normalize(before), self.normalize(after))
            memory = self.decoder.memory(cap_a, cap_b)
            return [self.vocab.decode(ids) for ids in self.greedy_ids(memory, max_len)]

    @torch.inference_mode()
    def describe(
        self, before: Tensor, after: Tensor, *, min_object_px: int | None = None
    ) -> list[VGMDescription]:
        """Caption, change score, mask and change objects per pair (eval mode inside).

        The mask is the argmax over classes (0/1/2 = background/road/building), as in
        ``predict.py``; objects are its 8-connected regions of at least ``min_object_px``
        pixels (default ``config.min_object_px``).
        """
        with self._eval():
            seg, cap_a, cap_b = self.encode(self.normalize(before), self.normalize(after))
            memory = self.decoder.memory(cap_a, cap_b)
            out = self._outputs(seg, memory)
            captions = [self.vocab.decode(ids) for ids in self.greedy_ids(memory)]
        probs = seg.float().softmax(dim=1).cpu().numpy()
        scores = torch.sigmoid(out.change_logit.float()).cpu().numpy()
        min_px = self.config.min_object_px if min_object_px is None else min_object_px
        result = []
        for i, caption in enumerate(captions):
            mask = probs[i].argmax(axis=0).astype(np.uint8)
            objects = mask_to_objects(mask, probs=probs[i], min_pixels=min_px)
            score = float(scores[i])
            result.append(
                VGMDescription.from_objects(
                    caption=caption,
                    change_score=score,
                    threshold=self.config.change_threshold,
                    objects=objects,
                    mask=mask,
                )
            )
        return result

    # -- persistence ------------------------------------------------------------------------

    def save_pretrained(self, folder: str | Path) -> Path:
        """Write ``vgm_config.json`` (with ``model_type``), ``vocab.json`` (the authors'
        ``{word: id}`` format) and ``model.safetensors`` into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / CONFIG_NAME).write_text(json.dumps(self.config.to_dict(), indent=2) + "\n")
        (folder / VOCAB_NAME).write_text(self.vocab.to_json() + "\n")
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        meta = {"format": "pt", "model": self.config.model_type}
        save_file(state, str(folder / WEIGHTS_NAME), metadata=meta)
        return folder

    @classmethod
    def from_pretrained(
        cls, folder: str | Path, *, device: str | torch.device = "cpu"
    ) -> ChangeAgentMCI:
        """Load a folder written by :meth:`save_pretrained` (safetensors only), eval mode.

        Raises:
            FileNotFoundError: The folder or one of its three files is missing (named).
            ValueError: A file is unreadable or does not fit the others (named).
        """
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"MCI VGM folder not found: {folder}")
        for name in (CONFIG_NAME, VOCAB_NAME, WEIGHTS_NAME):
            if not (folder / name).is_file():
                raise FileNotFoundError(f"MCI VGM folder {folder} is missing {name}")
        try:
            config = MCIConfig.from_dict(json.loads((folder / CONFIG_NAME).read_text()))
        except (ValueError, TypeError) as err:
            raise ValueError(f"invalid {folder / CONFIG_NAME}: {err}") from err
        try:
            vocab = MCIVocab.from_json((folder / VOCAB_NAME).read_text())
        except (ValueError, TypeError) as err:
            raise ValueError(f"invalid {folder / VOCAB_NAME}: {err}") from err
        if config.vocab_size != len(vocab):
            raise ValueError(
                f"{folder / VOCAB_NAME} has {len(vocab)} words but {CONFIG_NAME} says "
                f"vocab_size={config.vocab_size}"
            )
        model = cls(config, vocab)
        try:
            state = load_file(str(folder / WEIGHTS_NAME))
        except Exception as err:  # safetensors raises its own error types
            raise ValueError(f"unreadable {folder / WEIGHTS_NAME}: {err}") from err
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise ValueError(f"{folder / WEIGHTS_NAME} does not fit {CONFIG_NAME}: {err}") from err
        return model.to(device).eval()
