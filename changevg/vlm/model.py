"""ChangeVG: Qwen2.5-VL with the vision-guided module's embeddings in the prompt.

The VGM reads the before/after pair (``vgm_before``, ``vgm_after``: float ``[B, 3, H, W]`` in
``[0, 1]``) and returns one global and ``G*G`` fine embeddings of width ``D``.  A projector
(Linear D→H, GELU, Linear H→H) maps them to the language model's width ``H``; they replace the
embeddings at the ``1 + G*G`` ``<|vgm_pad|>`` positions (global first, then the fine grid
row-major).  These positions are ordinary text positions for M-RoPE (``mm_token_type_ids`` 0).

ChangeVG's settings live in ``config.changevg`` (a plain dict inside ``config.json``):
``prompt_version``, ``vgm_token_id``, ``fine_grid``, ``vgm_embed_dim``, ``eos_token_ids``,
``pad_token_id`` and ``vgm`` (how to rebuild the VGM: ``{"kind", "config", "vocab"}``, or
``None``).  VGMs are rebuilt only through :func:`register_vgm` builders, never from code paths
named in a file.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn
from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration
from transformers.cache_utils import Cache
from transformers.conversion_mapping import (
    get_checkpoint_conversion_mapping,
    register_checkpoint_conversion_mapping,
)

__all__ = [
    "ChangeVGForConditionalGeneration",
    "VGMProjector",
    "build_vgm",
    "register_vgm",
    "vgm_spec",
    "vgm_tokens",
]

# ---------------------------------------------------------------------------- VGM registry
VGMBuilder = Callable[[Mapping[str, Any]], nn.Module]
VGMExporter = Callable[[nn.Module], dict[str, Any]]
_VGM_KINDS: dict[str, tuple[VGMBuilder, VGMExporter, type | None]] = {}


def register_vgm(
    kind: str, build: VGMBuilder, export: VGMExporter, cls: type | None = None
) -> None:
    """Register how a kind of VGM is rebuilt from ``config.changevg["vgm"]`` and described.

    Args:
        kind: Name stored in the config (``"changevg.vgm"`` for ``VisionGuidedModule``).
        build: ``spec -> module`` with fresh weights (loading fills them).
        export: ``module -> spec`` (JSON-serialisable ``config`` and ``vocab``).
        cls: The module class, to find the kind of a given VGM.
    """
    _VGM_KINDS[kind] = (build, export, cls)


def _jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if hasattr(obj, "to_dict"):
        return _jsonable(obj.to_dict())
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, str | int | float | bool) or obj is None:
        return obj
    raise TypeError(f"cannot store a {type(obj).__name__} in config.json")


def _build_changevg_vgm(spec: Mapping[str, Any]) -> nn.Module:
    from changevg import vgm as vgm_mod  # written separately; imported only when needed
    from changevg.vocab import CaptionVocab

    config = vgm_mod.VGMConfig.from_dict(spec["config"])
    return vgm_mod.VisionGuidedModule(config, CaptionVocab.from_itos(spec["vocab"]))


def _export_changevg_vgm(vgm: nn.Module) -> dict[str, Any]:
    vocab = getattr(vgm, "vocab", None)
    for attr in ("itos", "words", "tokens"):
        if (
            vocab is not None
            and not isinstance(vocab, list | tuple | dict)
            and hasattr(vocab, attr)
        ):
            vocab = getattr(vocab, attr)
    return {"config": _jsonable(vgm.config), "vocab": _jsonable(vocab)}


register_vgm("changevg.vgm", _build_changevg_vgm, _export_changevg_vgm)


def _build_mci_vgm(spec: Mapping[str, Any]) -> nn.Module:
    from changevg.mci import MCIConfig, MCIVocab
    from changevg.mci.model import ChangeAgentMCI

    return ChangeAgentMCI(MCIConfig.from_dict(spec["config"]), MCIVocab.from_itos(spec["vocab"]))


# Change-Agent's MCI model (``changevg convert change-agent``); found by its config.model_type
register_vgm("change-agent-mci", _build_mci_vgm, _export_changevg_vgm)


def vgm_spec(vgm: nn.Module | None) -> dict[str, Any] | None:
    """The ``config.changevg["vgm"]`` entry describing ``vgm`` (``None`` for no VGM)."""
    if vgm is None:
        return None
    for kind, (_, export, cls) in _VGM_KINDS.items():
        if cls is not None and isinstance(vgm, cls):
            return {"kind": kind, **export(vgm)}
    kind = getattr(getattr(vgm, "config", None), "model_type", None)
    if isinstance(kind, str) and kind in _VGM_KINDS:
        return {"kind": kind, **_VGM_KINDS[kind][1](vgm)}
    if type(vgm).__name__ == "VisionGuidedModule":
        return {"kind": "changevg.vgm", **_export_changevg_vgm(vgm)}
    raise ValueError(f"no registered VGM kind for {type(vgm).__name__}; call register_vgm first")


def build_vgm(spec: Mapping[str, Any] | None) -> nn.Module | None:
    """Rebuild a VGM (fresh weights) from its ``config.changevg["vgm"]`` entry."""
    if spec is None:
        return None
    kind = spec.get("kind")
    if kind not in _VGM_KINDS:
        raise ValueError(f"config.json names VGM kind {kind!r}; known kinds: {sorted(_VGM_KINDS)}")
    return _VGM_KINDS[kind][0](spec)


def vgm_tokens(output: Any) -> torch.Tensor:
    """``[B, 1 + G*G, D]``: a VGM output's global embedding, then its fine embeddings."""
    if isinstance(output, torch.Tensor):
        return output
    return torch.cat([output.global_embed.unsqueeze(1), output.fine_embed], dim=1)


# ---------------------------------------------------------------------------- model
class VGMProjector(nn.Module):
    """Linear D→H, GELU, Linear H→H: VGM embeddings into the language model's width."""

    def __init__(self, in_dim: int, hidden: int, std: float = 0.02) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, hidden)
        for fc in (self.fc1, self.fc2):
            nn.init.normal_(fc.weight, std=std)
            nn.init.zeros_(fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


def _register_key_conversion(class_name: str) -> None:
    """Give a subclass Qwen2.5-VL's checkpoint key renaming (``visual.*``, ``model.layers.*``).

    transformers 5 looks these conversions up by class name, and a subclass has none: Qwen's
    published checkpoints (and ``Qwen2_5_VLForConditionalGeneration.save_pretrained``) use the
    legacy key layout, which would otherwise load as missing weights.
    """
    mapping = get_checkpoint_conversion_mapping("Qwen2_5_VLForConditionalGeneration")
    if mapping:
        register_checkpoint_conversion_mapping(class_name, mapping, overwrite=True)


class ChangeVGForConditionalGeneration(Qwen2_5_VLForConditionalGeneration):
    """Qwen2.5-VL with a vision-guided module and its projector.

    Args:
        config: A Qwen2.5-VL config with ``config.changevg``
            (see :func:`changevg.vlm.configs.with_changevg`).
        vgm: The VGM module; ``None`` rebuilds it from ``config.changevg["vgm"]`` if recorded
            (weights then come from the checkpoint), else the model has no VGM (text-only,
            or VGM embeddings passed as ``vgm_embeds``).
    """

    def __init__(self, config: Qwen2_5_VLConfig, vgm: nn.Module | None = None) -> None:
        super().__init__(config)
        cv = getattr(config, "changevg", None)
        if not cv:
            raise ValueError(
                "config has no 'changevg' settings: add them with "
                "changevg.vlm.configs.with_changevg"
            )
        self.vgm_token_id: int = cv["vgm_token_id"]
        self.fine_grid: int = cv["fine_grid"]
        self.vgm = vgm if vgm is not None else build_vgm(cv.get("vgm"))
        std = getattr(config.text_config, "initializer_range", 0.02)
        self.vgm_projector = VGMProjector(cv["vgm_embed_dim"], config.text_config.hidden_size, std)
        self.generation_config.eos_token_id = list(cv["eos_token_ids"])
        self.generation_config.pad_token_id = cv["pad_token_id"]
        self.generation_config.bos_token_id = None

    @property
    def num_vgm_tokens(self) -> int:
        return 1 + self.fine_grid**2

    def train(self, mode: bool = True) -> ChangeVGForConditionalGeneration:
        """Set train/eval mode; a frozen VGM (no trainable weights) always stays in eval mode."""
        super().train(mode)
        if self.vgm is not None and not any(p.requires_grad for p in self.vgm.parameters()):
            self.vgm.eval()
        return self

    def compute_vgm_embeds(
        self,
        vgm_before: torch.Tensor | None = None,
        vgm_after: torch.Tensor | None = None,
        vgm_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Projected VGM tokens ``[B, 1 + G*G, H]`` from images or precomputed VGM embeddings."""
        if vgm_embeds is None:
            if self.vgm is None:
                raise ValueError("the prompt has <|vgm_pad|> slots but the model has no VGM")
            if vgm_before is None or vgm_after is None:
                raise ValueError("the prompt has <|vgm_pad|> slots: pass vgm_before and vgm_after")
            params = list(self.vgm.parameters())
            dtype = params[0].dtype if params else torch.float32
            grad = torch.is_grad_enabled() and any(p.requires_grad for p in params)
            with torch.set_grad_enabled(grad):
                vgm_embeds = vgm_tokens(self.vgm(vgm_before.to(dtype), vgm_after.to(dtype)))
        if vgm_embeds.shape[1] != self.num_vgm_tokens:
            raise ValueError(
                f"VGM gave {vgm_embeds.shape[1]} tokens, expected 1 + {self.fine_grid}**2"
            )
        proj_dtype = next(self.vgm_projector.parameters()).dtype
        return self.vgm_projector(vgm_embeds.to(proj_dtype))

    def place_vgm_embeds(
        self, input_ids: torch.Tensor, inputs_embeds: torch.Tensor, projected: torch.Tensor
    ) -> torch.Tensor:
        """Put ``projected[b]`` at row ``b``'s ``<|vgm_pad|>`` positions (rows with slots only)."""
        mask = input_ids == self.vgm_token_id
        counts = mask.sum(1)
        bad = [int(c) for c in counts if int(c) not in (0, self.num_vgm_tokens)]
        if bad:
            raise ValueError(f"rows have {bad} <|vgm_pad|> tokens, expected {self.num_vgm_tokens}")
        rows = counts > 0
        if projected.shape[0] != input_ids.shape[0]:
            raise ValueError(f"{projected.shape[0]} VGM inputs for {input_ids.shape[0]} prompts")
        source = projected[rows].to(inputs_embeds.device, inputs_embeds.dtype)
        return inputs_embeds.masked_scatter(mask.unsqueeze(-1), source)

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        pixel_values: torch.Tensor | None = None,
        pixel_values_videos: torch.Tensor | None = None,
        image_grid_thw: torch.LongTensor | None = None,
        video_grid_thw: torch.LongTensor | None = None,
        mm_token_type_ids: torch.IntTensor | None = None,
        second_per_grid_ts: torch.Tensor | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        mm_encoder_outputs: dict[str, Any] | None = None,
        vgm_before: torch.Tensor | None = None,
        vgm_after: torch.Tensor | None = None,
        vgm_embeds: torch.Tensor | None = None,
        **kwargs: Any,
    ):
        """Qwen2.5-VL's forward, with VGM embeddings placed at the ``<|vgm_pad|>`` slots.

        The parent's parameters are listed explicitly so that ``generate`` accepts the image
        arguments.  ``input_ids`` stay in the call next to the built ``inputs_embeds``: Qwen
        needs them for the image placeholder mask and M-RoPE (with ``mm_token_type_ids``).
        During generation only the prefill step carries the slots; later steps skip the VGM.

        Args:
            vgm_before: Before images for the VGM, ``[B, 3, H, W]`` in ``[0, 1]``.
            vgm_after: After images for the VGM, same shape.
            vgm_embeds: Precomputed VGM tokens ``[B, 1 + G*G, D]`` instead of the images.
        """
        if cache is None and "past_key_values" in kwargs:
            cache = kwargs.pop("past_key_values")
        if input_ids is not None and inputs_embeds is None:
            has_slots = input_ids == self.vgm_token_id
            if bool(has_slots.any()):
                projected = self.compute_vgm_embeds(vgm_before, vgm_after, vgm_embeds)
                inputs_embeds = self.get_input_embeddings()(input_ids)
                inputs_embeds = self.place_vgm_embeds(input_ids, inputs_embeds, projected)
        return super().forward(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            inputs_embeds=inputs_embeds,
            labels=labels,
            use_cache=use_cache,
            pixel_values=pixel_values,
            pixel_values_videos=pixel_values_videos,
            image_grid_thw=image_grid_thw,
            video_grid_thw=video_grid_thw,
            mm_token_type_ids=mm_token_type_ids,
            second_per_grid_ts=second_per_grid_ts,
            logits_to_keep=logits_to_keep,
            mm_encoder_outputs=mm_encoder_outputs,
            **kwargs,
        )


_register_key_conversion(ChangeVGForConditionalGeneration.__name__)
