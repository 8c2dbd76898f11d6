"""The ChangeVG vision-language side: tokenizer, processor, Qwen2.5-VL + VGM model, prompts,
answer parsing, model folders and LoRA.

Names are loaded lazily, so ``changevg.vlm.prompts`` and ``changevg.vlm.parse`` stay cheap to
import; the prompt layout is documented in :mod:`changevg.vlm.prompts`.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "build_tokenizer": "tokenizer",
    "load_tokenizer": "tokenizer",
    "ChangeVGProcessor": "processor",
    "build_image_processor": "processor",
    "ChangeVGForConditionalGeneration": "model",
    "VGMProjector": "model",
    "register_vgm": "model",
    "tiny_config": "configs",
    "qwen25_vl_7b_config": "configs",
    "with_changevg": "configs",
    "PROMPT_VERSION": "prompts",
    "QUESTIONS": "prompts",
    "SYSTEM_PROMPT": "prompts",
    "TASKS": "prompts",
    "build_messages": "prompts",
    "classify_question": "prompts",
    "format_answer": "prompts",
    "format_vgm_text": "prompts",
    "parse_answer": "parse",
    "to_change_result": "parse",
    "ChangeVGFolderError": "io",
    "load_changevg": "io",
    "save_changevg": "io",
    "apply_lora": "lora",
    "merge_lora": "lora",
    "save_adapter": "lora",
    "ask": "answer",
    "analyse_pairs": "answer",
    "describe_pairs": "answer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)


def __dir__() -> list[str]:
    return __all__
