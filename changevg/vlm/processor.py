"""Qwen2.5-VL processor for ChangeVG, built offline and without torchvision.

``Qwen2_5_VLProcessor`` wants a video processor, which needs torchvision; this subclass has
only the PIL image processor (``Qwen2VLImageProcessorPil``) and the tokenizer.  It also expands
the single ``<|vgm_pad|>`` placeholder of the prompt into ``1 + G*G`` slots and turns tile
pairs into the float tensors the vision-guided module reads (``vgm_before``, ``vgm_after``).

Those are resized to ``vgm_size`` (256: a tile of the model's GSD), except inside
:func:`vgm_own_size`, where they keep their own size: images already resampled to the model's
GSD (:mod:`changevg.gsd`) would otherwise be stretched back to 256 pixels, undoing it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import numpy as np
import torch
from PIL import Image
from transformers import BatchFeature, Qwen2_5_VLProcessor
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
from transformers.processing_utils import ProcessorMixin

from changevg.vlm.prompts import build_messages
from changevg.vlm.tokenizer import EOS_TOKEN, VGM_PAD, load_tokenizer

__all__ = ["ChangeVGProcessor", "ImageLike", "build_image_processor", "to_pil", "vgm_own_size"]

ImageLike = Image.Image | np.ndarray | torch.Tensor
IGNORE_INDEX = -100

#: Qwen2.5-VL's preprocessing (CLIP mean/std, 14 px patches, 2x2 merge), with a pixel budget
#: that keeps 256x256 tiles at 252x252 (9x9 = 81 LLM tokens) and caps images at 512x512.
_MIN_PIXELS = 56 * 56
_MAX_PIXELS = 512 * 512

_OWN_SIZE: ContextVar[bool] = ContextVar("changevg_vgm_own_size", default=False)


@contextmanager
def vgm_own_size() -> Iterator[None]:
    """Within this block, VGM inputs keep their own size instead of ``vgm_size``.

    For images already at the model's GSD: a 154-pixel tile of 0.3 m imagery resampled to
    0.5 m must reach the VGM as 154 pixels, not stretched to 256. The setting is local to the
    thread (a :class:`~contextvars.ContextVar`), so concurrent callers of one model don't see it.
    """
    token = _OWN_SIZE.set(True)
    try:
        yield
    finally:
        _OWN_SIZE.reset(token)


def build_image_processor(
    *, min_pixels: int = _MIN_PIXELS, max_pixels: int = _MAX_PIXELS
) -> Qwen2VLImageProcessorPil:
    """Qwen2-VL's PIL image processor with Qwen2.5-VL's settings, built locally."""
    return Qwen2VLImageProcessorPil(
        size={"shortest_edge": min_pixels, "longest_edge": max_pixels},
        patch_size=14,
        temporal_patch_size=2,
        merge_size=2,
        image_mean=[0.48145466, 0.4578275, 0.40821073],
        image_std=[0.26862954, 0.26130258, 0.27577711],
    )


def to_pil(image: ImageLike) -> Image.Image:
    """An RGB PIL image from PIL, ``HWC``/``CHW`` uint8 arrays or tensors (first 3 bands)."""
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    arr = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    elif arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[-1] not in (1, 3, 4):
        arr = np.moveaxis(arr, 0, -1)
    if arr.ndim != 3:
        raise ValueError(f"expected an image of shape HxWxC or CxHxW, got {arr.shape}")
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    arr = arr[..., :3]
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating) and arr.max(initial=0) <= 1.0:
            arr = arr * 255.0
        arr = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(arr), mode="RGB")


class ChangeVGProcessor(Qwen2_5_VLProcessor):
    """Image processor + tokenizer for ChangeVG prompts (no video processor).

    Args:
        image_processor: A ``Qwen2VLImageProcessorPil`` (see :func:`build_image_processor`).
        tokenizer: A tokenizer with Qwen2.5-VL's special tokens and ``<|vgm_pad|>``.
        chat_template: Jinja chat template; defaults to the tokenizer's.
        fine_grid: ``G``, the side of the VGM's fine token grid (``1 + G*G`` VGM slots).
        vgm_size: Side the VGM's inputs are resized to (``None``: keep the tile size; see
            also :func:`vgm_own_size`).
    """

    def __init__(
        self,
        image_processor: Any = None,
        tokenizer: Any = None,
        chat_template: str | None = None,
        fine_grid: int = 3,
        vgm_size: int | None = 256,
        **kwargs: Any,
    ) -> None:
        self.image_token = getattr(tokenizer, "image_token", None) or "<|image_pad|>"
        self.video_token = getattr(tokenizer, "video_token", None) or "<|video_pad|>"
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
        self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
        self.vgm_token = VGM_PAD
        self.vgm_token_id = tokenizer.convert_tokens_to_ids(VGM_PAD)
        if self.vgm_token_id is None or self.vgm_token_id == tokenizer.unk_token_id:
            raise ValueError(f"the tokenizer has no {VGM_PAD} token")
        self.fine_grid = int(fine_grid)
        self.vgm_size = vgm_size
        if chat_template is None:
            chat_template = getattr(tokenizer, "chat_template", None)
        ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)

    @property
    def num_vgm_tokens(self) -> int:
        """``1 + G*G``: one global VGM token, then the fine grid row-major."""
        return 1 + self.fine_grid**2

    @property
    def model_input_names(self) -> list[str]:
        names = self.tokenizer.model_input_names + self.image_processor.model_input_names
        return [*dict.fromkeys([*names, "mm_token_type_ids", "vgm_before", "vgm_after"])]

    def expand_vgm_tokens(self, text: str | Sequence[str]) -> list[str]:
        """Replace every run of ``<|vgm_pad|>`` with exactly ``1 + G*G`` of them (idempotent)."""
        texts = [text] if isinstance(text, str) else list(text)
        run = re.compile(f"(?:{re.escape(self.vgm_token)})+")
        return [run.sub(self.vgm_token * self.num_vgm_tokens, t) for t in texts]

    def __call__(self, images: Any = None, text: Any = None, videos: Any = None, **kwargs: Any):
        """Tokenise ``text`` and preprocess ``images`` as Qwen2.5-VL does, VGM slots expanded.

        Returns ``input_ids``, ``attention_mask``, ``mm_token_type_ids`` (1 at image tokens),
        ``pixel_values`` and ``image_grid_thw``.
        """
        if videos is not None:
            raise ValueError("ChangeVGProcessor has no video processor")
        if text is not None:
            text = self.expand_vgm_tokens(text)
        kwargs.setdefault("return_mm_token_type_ids", True)
        return super().__call__(images=images, text=text, **kwargs)

    def vgm_pixels(self, images: Sequence[ImageLike]) -> torch.Tensor:
        """Stack images into a float ``[B, 3, H, W]`` tensor in ``[0, 1]`` for the VGM."""
        out = []
        size = None if _OWN_SIZE.get() else self.vgm_size
        for im in images:
            pil = to_pil(im)
            if size is not None and pil.size != (size, size):
                pil = pil.resize((size, size), Image.Resampling.BILINEAR)
            out.append(torch.from_numpy(np.asarray(pil, dtype=np.uint8).copy()).permute(2, 0, 1))
        return torch.stack(out).float().div_(255.0)

    def render(self, messages: list[dict[str, Any]], *, add_generation_prompt: bool) -> str:
        """The prompt text of a conversation, rendered with the chat template."""
        return self.tokenizer.apply_chat_template(
            messages,
            chat_template=self.chat_template,
            tokenize=False,
            add_generation_prompt=add_generation_prompt,
        )

    def encode_pairs(
        self,
        pairs: Sequence[tuple[ImageLike, ImageLike]],
        conversations: Sequence[list[dict[str, Any]]],
        *,
        add_generation_prompt: bool = True,
        with_labels: bool = False,
        return_tensors: str = "pt",
    ) -> BatchFeature:
        """Model inputs for a batch of tile pairs, one conversation each.

        Args:
            pairs: ``(before, after)`` images.
            conversations: Messages from :func:`~changevg.vlm.prompts.build_messages`.
            add_generation_prompt: End with ``<|im_start|>assistant\\n`` (inference).
            with_labels: Add ``labels``: the token ids of the assistant answers and their
                ``<|im_end|>``, ``-100`` elsewhere (training; padding is on the left).

        Returns:
            The processor's outputs plus ``vgm_before`` and ``vgm_after`` (``[B, 3, S, S]``).
        """
        if len(pairs) != len(conversations):
            raise ValueError(f"{len(pairs)} pairs but {len(conversations)} conversations")
        texts = [self.render(m, add_generation_prompt=add_generation_prompt) for m in conversations]
        images = [to_pil(im) for pair in pairs for im in pair]
        batch = self(images=images, text=texts, padding=True, return_tensors=return_tensors)
        batch["vgm_before"] = self.vgm_pixels([p[0] for p in pairs])
        batch["vgm_after"] = self.vgm_pixels([p[1] for p in pairs])
        if with_labels:
            batch["labels"] = self.answer_labels(batch["input_ids"])
        return batch

    def answer_labels(self, input_ids: torch.Tensor) -> torch.Tensor:
        """``input_ids`` with everything but assistant answers (and their end token) masked."""
        start = self.tokenizer.convert_tokens_to_ids("<|im_start|>")
        end = self.tokenizer.convert_tokens_to_ids(EOS_TOKEN)
        header = self.tokenizer.encode("assistant\n", add_special_tokens=False)
        labels = torch.full_like(input_ids, IGNORE_INDEX)
        for b, row in enumerate(input_ids.tolist()):
            i = 0
            while i < len(row):
                h = i + 1 + len(header)
                if row[i] == start and row[i + 1 : h] == header:
                    j = h
                    while j < len(row) and row[j] != end:
                        j += 1
                    labels[b, h : j + 1] = input_ids[b, h : j + 1]
                    i = j
                i += 1
        return labels

    def prompt(
        self,
        pairs: Sequence[tuple[ImageLike, ImageLike]],
        question: str,
        *,
        vgm_texts: Sequence[Any] | None = None,
        vgm_tokens: bool = True,
        style: str | None = None,
    ) -> BatchFeature:
        """Inputs asking one question (a task name or free text) about each pair."""
        vgm_texts = vgm_texts if vgm_texts is not None else [None] * len(pairs)
        conversations = [
            build_messages(question, vgm_text=v, vgm_tokens=vgm_tokens, style=style)
            for v in vgm_texts
        ]
        return self.encode_pairs(pairs, conversations)

    @classmethod
    def from_folder(cls, path: str | os.PathLike[str], **kwargs: Any) -> ChangeVGProcessor:
        """Load from a local folder written by ``save_pretrained`` (offline, PIL processor)."""
        path = os.fspath(path)
        cfg_file = os.path.join(path, "processor_config.json")
        if not os.path.isfile(cfg_file):
            raise FileNotFoundError(f"{cfg_file} is missing: expected the processor's settings")
        with open(cfg_file, encoding="utf-8") as f:
            cfg = json.load(f)
        ip_cfg = {
            k: v
            for k, v in cfg.get("image_processor", {}).items()
            if k not in ("image_processor_type", "processor_class")
        }
        image_processor = Qwen2VLImageProcessorPil(**ip_cfg)
        tokenizer = load_tokenizer(path)
        template_file = os.path.join(path, "chat_template.jinja")
        template = None
        if os.path.isfile(template_file):
            with open(template_file, encoding="utf-8") as f:
                template = f.read()
        extra = {k: cfg[k] for k in ("fine_grid", "vgm_size") if k in cfg}
        return cls(image_processor, tokenizer, chat_template=template, **{**extra, **kwargs})
