"""Qwen2.5-VL configs for ChangeVG: the tiny test/CPU model, the 7B architecture, settings.

``with_changevg`` writes ChangeVG's settings into ``config.changevg`` (a plain dict saved in
``config.json``): ``prompt_version``, ``vgm_token_id``, ``vgm_start_token_id``,
``vgm_end_token_id``, ``fine_grid``, ``vgm_embed_dim``, ``eos_token_ids``, ``pad_token_id``,
``vgm`` (``{"kind", "config", "vocab"}`` to rebuild the VGM, or ``None``), and ``gsd`` /
``gsd_range`` (the metres per pixel trained at and the source GSDs accepted:
:class:`changevg.gsd.ModelGSD`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn
from transformers import PreTrainedTokenizerBase, Qwen2_5_VLConfig

from changevg.gsd import ModelGSD
from changevg.vlm.model import vgm_spec
from changevg.vlm.prompts import PROMPT_VERSION
from changevg.vlm.tokenizer import EOS_TOKEN, PAD_TOKEN, VGM_END, VGM_PAD, VGM_START

__all__ = ["qwen25_vl_7b_config", "tiny_config", "with_changevg"]


def _mrope_section(head_dim: int) -> list[int]:
    """Split ``head_dim / 2`` rotary frequencies over (t, h, w) like Qwen2.5-VL's 16/24/24."""
    half = head_dim // 2
    t = half // 4
    h = (half - t) // 2
    return [t, h, half - t - h]


def with_changevg(
    config: Qwen2_5_VLConfig,
    tokenizer: PreTrainedTokenizerBase,
    *,
    vgm_embed_dim: int,
    fine_grid: int = 3,
    vgm: nn.Module | Mapping[str, Any] | None = None,
    gsd: ModelGSD | None = None,
) -> Qwen2_5_VLConfig:
    """Set the tokenizer's special ids on ``config`` and add the ``changevg`` settings.

    Args:
        config: A Qwen2.5-VL config (changed in place and returned).
        tokenizer: Tokenizer with Qwen2.5-VL's special tokens and ``<|vgm_pad|>``.
        vgm_embed_dim: ``D``, the VGM's embedding width.
        fine_grid: ``G``, the side of the VGM's fine grid.
        vgm: The VGM (or its spec) to record for rebuilding, or ``None``.
        gsd: The GSD the model is trained at and accepts (default: 0.5 m, this project's
            synthetic regions).
    """
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in (EOS_TOKEN, PAD_TOKEN, VGM_PAD)}
    ids |= {t: tokenizer.convert_tokens_to_ids(t) for t in (VGM_START, VGM_END)}
    ids |= {t: tokenizer.convert_tokens_to_ids(t) for t in ("<|vision_start|>", "<|vision_end|>")}
    ids |= {t: tokenizer.convert_tokens_to_ids(t) for t in ("<|image_pad|>", "<|video_pad|>")}
    missing = [t for t, i in ids.items() if i is None or i == tokenizer.unk_token_id]
    if missing:
        raise ValueError(f"tokenizer lacks the special tokens {missing}")
    config.image_token_id = ids["<|image_pad|>"]
    config.video_token_id = ids["<|video_pad|>"]
    config.vision_start_token_id = ids["<|vision_start|>"]
    config.vision_end_token_id = ids["<|vision_end|>"]
    text = config.text_config
    text.bos_token_id = None
    text.eos_token_id = ids[EOS_TOKEN]
    text.pad_token_id = ids[PAD_TOKEN]
    spec = vgm_spec(vgm) if isinstance(vgm, nn.Module) else (dict(vgm) if vgm else None)
    config.changevg = {
        "prompt_version": PROMPT_VERSION,
        "vgm_token_id": ids[VGM_PAD],
        "vgm_start_token_id": ids[VGM_START],
        "vgm_end_token_id": ids[VGM_END],
        "fine_grid": int(fine_grid),
        "vgm_embed_dim": int(vgm_embed_dim),
        "eos_token_ids": [ids[EOS_TOKEN], ids[PAD_TOKEN]],
        "pad_token_id": ids[PAD_TOKEN],
        "vgm": spec,
        **(gsd or ModelGSD()).to_config(),
    }
    return config


def tiny_config(
    vocab_size: int,
    *,
    tokenizer: PreTrainedTokenizerBase | None = None,
    hidden: int = 128,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    intermediate: int | None = None,
    vision_hidden: int = 64,
    vision_depth: int = 2,
    vision_heads: int = 2,
    vgm_embed_dim: int = 64,
    fine_grid: int = 3,
    vgm: nn.Module | Mapping[str, Any] | None = None,
) -> Qwen2_5_VLConfig:
    """A small Qwen2.5-VL config for tests and CPU training (same architecture as the 7B).

    With ``tokenizer`` the special token ids and the ``changevg`` settings are filled in
    (:func:`with_changevg`); otherwise the config keeps Qwen's ids and has no ``changevg``.
    """
    head_dim = hidden // heads
    text = {
        "vocab_size": vocab_size,
        "hidden_size": hidden,
        "intermediate_size": intermediate or 4 * hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-6,
        "max_window_layers": layers,
        "bos_token_id": None,
        "eos_token_id": None,
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": 1_000_000.0,
            "mrope_section": _mrope_section(head_dim),
        },
    }
    vision = {
        "depth": vision_depth,
        "hidden_size": vision_hidden,
        "intermediate_size": 2 * vision_hidden,
        "num_heads": vision_heads,
        "out_hidden_size": hidden,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "window_size": 112,
        "fullatt_block_indexes": [vision_depth - 1],
        "tokens_per_second": 2,
    }
    config = Qwen2_5_VLConfig(text_config=text, vision_config=vision, tie_word_embeddings=False)
    if tokenizer is not None:
        with_changevg(config, tokenizer, vgm_embed_dim=vgm_embed_dim, fine_grid=fine_grid, vgm=vgm)
    return config


def qwen25_vl_7b_config(vocab_size: int = 152_064) -> Qwen2_5_VLConfig:
    """Qwen2.5-VL-7B-Instruct's architecture (for random-weight benchmarks; no weights)."""
    text = {
        "vocab_size": vocab_size,
        "hidden_size": 3584,
        "intermediate_size": 18944,
        "num_hidden_layers": 28,
        "num_attention_heads": 28,
        "num_key_value_heads": 4,
        "hidden_act": "silu",
        "max_position_embeddings": 128_000,
        "rms_norm_eps": 1e-6,
        "use_sliding_window": False,
        "sliding_window": 32768,
        "max_window_layers": 28,
        "bos_token_id": 151643,
        "eos_token_id": 151645,
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": 1_000_000.0,
            "mrope_section": [16, 24, 24],
        },
    }
    vision = {
        "depth": 32,
        "hidden_size": 1280,
        "intermediate_size": 3420,
        "num_heads": 16,
        "hidden_act": "silu",
        "out_hidden_size": 3584,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "window_size": 112,
        "fullatt_block_indexes": [7, 15, 23, 31],
        "tokens_per_second": 2,
    }
    return Qwen2_5_VLConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=151655,
        video_token_id=151656,
        vision_start_token_id=151652,
        vision_end_token_id=151653,
        tie_word_embeddings=False,
    )
