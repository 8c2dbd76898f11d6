"""LoRA for ChangeVG (PEFT): all linear layers of the language model, nothing in the vision tower.

The paper's recipe is LoRA rank 8 on all linear layers of the language model.  PEFT's
``"all-linear"`` would also catch the vision tower's MLPs (``model.visual.blocks.*.mlp.*_proj``
have the same names as the language model's), so the targets are a regex anchored at
``model.language_model.layers``.  The projector is trained in full by default (it starts
random), the VGM stays frozen unless asked; the embeddings of ``<|vgm_start|>`` and
``<|vgm_end|>`` are trained as PEFT trainable tokens (new tokens for a Qwen base tokenizer).
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from peft import LoraConfig, PeftModel, get_peft_model
from torch import nn

__all__ = [
    "LANGUAGE_LINEAR_REGEX",
    "apply_lora",
    "lora_targets",
    "merge_lora",
    "quiet_peft",
    "save_adapter",
]

#: Every linear layer of the language model's decoder layers (attention and MLP), only.
LANGUAGE_LINEAR_REGEX = (
    r"^model\.language_model\.layers\.\d+\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)$"
)
CHANGEVG_FILE = "changevg.json"


def apply_lora(
    model: nn.Module,
    *,
    rank: int = 8,
    alpha: int = 16,
    dropout: float = 0.05,
    train_projector: bool = True,
    train_vgm: bool = False,
    train_vgm_token_ids: list[int] | None = None,
) -> PeftModel:
    """Wrap a :class:`~changevg.vlm.model.ChangeVGForConditionalGeneration` with LoRA.

    Args:
        model: The model (its weights are frozen except what is listed here).
        rank: LoRA rank ``r``.
        alpha: LoRA scaling numerator (``alpha / r``).
        dropout: Dropout on the LoRA branch.
        train_projector: Train the VGM projector in full (saved with the adapter).
        train_vgm: Train the VGM in full (saved with the adapter).
        train_vgm_token_ids: Token ids whose input embeddings are trained (default: the ids of
            ``<|vgm_start|>`` and ``<|vgm_end|>`` from ``config.changevg``); ``[]`` for none.

    Returns:
        The PEFT model; ``generate`` and ``forward`` take the same inputs as the wrapped model.
    """
    modules_to_save = []
    if train_projector:
        modules_to_save.append("vgm_projector")
    if train_vgm:
        if getattr(model, "vgm", None) is None:
            raise ValueError("train_vgm=True but the model has no VGM")
        modules_to_save.append("vgm")
    if train_vgm_token_ids is None:
        cv = model.config.changevg
        train_vgm_token_ids = [i for i in (cv.get("vgm_start_token_id"), cv.get("vgm_end_token_id"))
                               if i is not None]  # fmt: skip
    config = LoraConfig(
        r=rank,
        lora_alpha=alpha,
        lora_dropout=dropout,
        bias="none",
        target_modules=LANGUAGE_LINEAR_REGEX,
        modules_to_save=modules_to_save or None,
        trainable_token_indices=(
            {"embed_tokens": list(train_vgm_token_ids)} if train_vgm_token_ids else None
        ),
    )
    with warnings.catch_warnings():
        # peft 0.21 still calls transformers' deprecated ``is_gradient_checkpointing``.
        warnings.filterwarnings(
            "ignore", message=".*is_gradient_checkpointing", category=FutureWarning
        )
        return get_peft_model(model, config)


@contextmanager
def quiet_peft() -> Iterator[None]:
    """Hide the FutureWarning peft 0.21 triggers via transformers' ``is_gradient_checkpointing``."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*is_gradient_checkpointing", FutureWarning)
        yield


def lora_targets(model: nn.Module) -> list[str]:
    """Names of the modules that carry LoRA weights (for checks and reports)."""
    return sorted(
        name.rsplit(".lora_A", 1)[0]
        for name, _ in model.named_modules()
        if name.endswith(".lora_A")
    )


def save_adapter(model: PeftModel, processor: Any, path: str | os.PathLike[str]) -> None:
    """Save a LoRA adapter folder: PEFT files, ChangeVG settings, tokenizer and processor.

    Writes ``adapter_config.json`` + ``adapter_model.safetensors`` (LoRA weights, the projector
    and any trainable tokens / VGM), ``changevg.json`` (``config.changevg``), the tokenizer
    files, ``processor_config.json``, ``preprocessor_config.json`` and ``chat_template.jinja``.
    Load it with :func:`changevg.vlm.io.load_changevg` (``base=``, ``adapter=``).
    """
    path = os.fspath(path)
    model.save_pretrained(path, safe_serialization=True)
    processor.save_pretrained(path)
    processor.image_processor.save_pretrained(path)
    base = model.get_base_model()
    with open(os.path.join(path, CHANGEVG_FILE), "w", encoding="utf-8") as f:
        json.dump(base.config.changevg, f, indent=2, sort_keys=True)


def merge_lora(model: PeftModel) -> nn.Module:
    """Fold the LoRA weights into the base model and drop the PEFT wrappers."""
    return model.merge_and_unload()
