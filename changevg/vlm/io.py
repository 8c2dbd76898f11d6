"""ChangeVG model folders: saving and offline loading.

A **ChangeVG folder** holds everything to run the model:

===========================  ====================================================================
``config.json``              ``Qwen2_5_VLConfig`` plus ``changevg`` (prompt version, VGM token ids,
                             fine grid, VGM width, VGM kind/config/vocab)
``model.safetensors``        all weights: Qwen2.5-VL, ``vgm.*``, ``vgm_projector.*`` (or shards
                             with ``model.safetensors.index.json``)
``generation_config.json``   EOS/pad ids
``tokenizer.json``,          the tokenizer (Qwen's special tokens and ``<|vgm_start|>``,
``tokenizer_config.json``    ``<|vgm_end|>``, ``<|vgm_pad|>``)
``processor_config.json``    image processor settings, ``fine_grid``, ``vgm_size``
``preprocessor_config.json`` the image processor alone (Qwen's usual file)
``chat_template.jinja``      the prompt template
===========================  ====================================================================

The **base + adapter** form is a Qwen2.5-VL(-7B-Instruct) folder, a LoRA adapter folder written
by :func:`changevg.vlm.lora.save_adapter` (``adapter_config.json``,
``adapter_model.safetensors``, ``changevg.json``, tokenizer and processor files) and optionally a
VGM weights file (safetensors).  Loading never touches the network (``local_files_only``),
never unpickles and never runs code from the folders.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file
from tokenizers import AddedToken
from torch import nn
from transformers import AutoTokenizer, Qwen2_5_VLConfig

from changevg.vlm.lora import CHANGEVG_FILE, quiet_peft
from changevg.vlm.model import ChangeVGForConditionalGeneration
from changevg.vlm.processor import ChangeVGProcessor, build_image_processor
from changevg.vlm.prompts import CHAT_TEMPLATE, STYLES
from changevg.vlm.tokenizer import VGM_END, VGM_PAD, VGM_START

__all__ = ["ChangeVGFolderError", "add_vgm_tokens", "load_changevg", "save_changevg"]

PathLike = str | os.PathLike[str]

_FOLDER_FILES = {
    "config.json": "the model config (Qwen2_5_VLConfig with a 'changevg' section)",
    "tokenizer.json": "the tokenizer (byte-level BPE with the ChangeVG special tokens)",
    "tokenizer_config.json": "the tokenizer settings",
    "processor_config.json": "the processor settings (image processor, fine_grid)",
    "chat_template.jinja": "the ChangeVG chat template",
}
_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")


class ChangeVGFolderError(FileNotFoundError, ValueError):
    """A model folder lacks a file or holds one that does not fit the others."""


def _require(folder: Path, name: str, what: str) -> Path:
    if not folder.is_dir():
        raise ChangeVGFolderError(f"{folder} is not a folder (expected {what})")
    path = folder / name
    if not path.is_file():
        raise ChangeVGFolderError(f"{path} is missing: expected {what}")
    return path


def _require_weights(folder: Path, what: str) -> None:
    if any((folder / w).is_file() for w in _WEIGHTS):
        return
    pickled = sorted(p.name for p in folder.glob("*.bin"))
    raise ChangeVGFolderError(
        f"{folder / _WEIGHTS[0]} is missing: expected {what} as safetensors "
        f"(model.safetensors or a sharded model.safetensors.index.json)"
        + (f"; pickle weights {pickled} are not loaded" if pickled else "")
    )


def save_changevg(
    model: ChangeVGForConditionalGeneration, processor: ChangeVGProcessor, path: PathLike
) -> Path:
    """Write a ChangeVG folder (see the module docstring); returns its path."""
    path = Path(path)
    if processor.tokenizer.convert_tokens_to_ids(VGM_PAD) != model.vgm_token_id:
        raise ValueError("processor and model disagree on the <|vgm_pad|> id")
    if processor.fine_grid != model.fine_grid:
        raise ValueError(f"processor fine_grid {processor.fine_grid} != model {model.fine_grid}")
    model.save_pretrained(path, safe_serialization=True)
    processor.save_pretrained(path)
    processor.image_processor.save_pretrained(path)
    return path


def _dtype(dtype: torch.dtype | str | None) -> torch.dtype | str:
    return "auto" if dtype is None else dtype


def _check_tokenizer(tokenizer: Any, config: Qwen2_5_VLConfig, source: Path) -> None:
    cv = config.changevg
    expected = {
        VGM_PAD: cv["vgm_token_id"],
        "<|image_pad|>": config.image_token_id,
        "<|vision_start|>": config.vision_start_token_id,
    }
    for token, want in expected.items():
        got = tokenizer.convert_tokens_to_ids(token)
        if got != want:
            raise ChangeVGFolderError(
                f"{source}: token {token} has id {got} but config expects {want}"
            )
    if len(tokenizer) > config.text_config.vocab_size:
        raise ChangeVGFolderError(
            f"{source}: the tokenizer has {len(tokenizer)} tokens but the model's vocabulary "
            f"has {config.text_config.vocab_size} rows"
        )


def _load_config(folder: Path) -> Qwen2_5_VLConfig:
    cfg_file = _require(folder, "config.json", _FOLDER_FILES["config.json"])
    with open(cfg_file, encoding="utf-8") as f:
        raw = json.load(f)
    if raw.get("model_type") != "qwen2_5_vl":
        raise ChangeVGFolderError(
            f"{cfg_file}: model_type is {raw.get('model_type')!r}, expected 'qwen2_5_vl'"
        )
    return Qwen2_5_VLConfig.from_pretrained(folder, local_files_only=True)


def _check_changevg(cv: dict[str, Any] | None, source: Path) -> dict[str, Any]:
    if not cv:
        raise ChangeVGFolderError(
            f"{source} has no 'changevg' settings: a plain Qwen2.5-VL folder loads with "
            f"load_changevg(base=..., adapter=...)"
        )
    need = ("vgm_token_id", "fine_grid", "vgm_embed_dim", "prompt_version")
    missing = [k for k in need if k not in cv]
    if missing:
        raise ChangeVGFolderError(f"{source}: 'changevg' settings lack {missing}")
    if cv["prompt_version"] not in STYLES:
        raise ChangeVGFolderError(
            f"{source}: prompt version {cv['prompt_version']!r}, this code speaks {sorted(STYLES)}"
        )
    return cv


def _check_loading(info: dict[str, Any], folder: Path, allowed_missing: tuple[str, ...]) -> None:
    weights = next((folder / w for w in _WEIGHTS if (folder / w).is_file()), folder / _WEIGHTS[0])
    missing = [k for k in info.get("missing_keys", []) if not k.startswith(allowed_missing)]
    unexpected = list(info.get("unexpected_keys", []))
    mismatched = [k[0] if isinstance(k, tuple) else k for k in info.get("mismatched_keys", [])]
    if missing or unexpected or mismatched:
        raise ChangeVGFolderError(
            f"{weights}: the weights do not fit config.json: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}, mismatched {mismatched[:5]}"
            + (f" (+{len(missing) - 5} more missing)" if len(missing) > 5 else "")
        )


def _from_pretrained(folder: PathLike, config: Any, vgm: nn.Module | None, dtype: Any):
    """Local safetensors only, no remote code; size mismatches are reported by the caller."""
    return ChangeVGForConditionalGeneration.from_pretrained(
        folder,
        config=config,
        vgm=vgm,
        local_files_only=True,
        use_safetensors=True,
        trust_remote_code=False,
        dtype=_dtype(dtype),
        output_loading_info=True,
        ignore_mismatched_sizes=True,  # reported by _check_loading, naming the file
    )


def load_changevg(
    path: PathLike | None = None,
    *,
    base: PathLike | None = None,
    adapter: PathLike | None = None,
    vgm: PathLike | nn.Module | None = None,
    merge: bool = True,
    dtype: torch.dtype | str | None = None,
    device: str | torch.device | None = None,
) -> tuple[nn.Module, ChangeVGProcessor]:
    """Load a ChangeVG model and its processor from local folders only.

    Either ``path`` (a ChangeVG folder), or ``base`` (a Qwen2.5-VL folder) with ``adapter``
    (a LoRA adapter folder from :func:`~changevg.vlm.lora.save_adapter`) and ``vgm`` (a VGM
    module; a VGM folder, loaded with ``VisionGuidedModule.from_pretrained`` whatever its kind,
    e.g. one from ``changevg convert change-agent``; or a safetensors file with its weights,
    the VGM being rebuilt from the adapter's ``changevg.json``).  Adapter weights for the VGM,
    if any, override the given VGM's. With ``path``, a ``vgm`` folder's or file's weights
    replace those of the folder's VGM (same architecture).

    Args:
        merge: Fold the LoRA weights into the base model (else a ``PeftModel`` is returned).
        dtype: Weight dtype (default: as stored).
        device: Where to put the model.

    Returns:
        ``(model, processor)``, the model in eval mode.

    Raises:
        ChangeVGFolderError: A file is missing or does not fit the others (the message names it).
    """
    if (path is None) == (base is None):
        raise ValueError("give either path (a ChangeVG folder) or base (+ adapter, vgm)")
    if vgm is not None and not isinstance(vgm, nn.Module) and Path(vgm).is_dir():
        # a VGM folder: its weights replace those of a ChangeVG folder's VGM (same
        # architecture), or it is the VGM attached to ``base``, whatever its kind
        vgm = Path(vgm) / "model.safetensors" if path is not None else _vgm_folder(Path(vgm))
    if path is not None:
        model, processor = _load_folder(Path(path), vgm, dtype)
    else:
        model, processor = _load_base(Path(base), adapter, vgm, merge, dtype)  # type: ignore[arg-type]
    if device is not None:
        model = model.to(device)
    return model.eval(), processor


def _load_folder(
    folder: Path, vgm: PathLike | nn.Module | None, dtype: Any
) -> tuple[nn.Module, ChangeVGProcessor]:
    config = _load_config(folder)
    _check_changevg(getattr(config, "changevg", None), folder / "config.json")
    for name, what in _FOLDER_FILES.items():
        _require(folder, name, what)
    _require_weights(folder, "all model weights (Qwen2.5-VL, VGM, projector)")
    processor = ChangeVGProcessor.from_folder(folder)
    _check_tokenizer(processor.tokenizer, config, folder / "tokenizer.json")
    if processor.fine_grid != config.changevg["fine_grid"]:
        raise ChangeVGFolderError(
            f"{folder / 'processor_config.json'}: fine_grid {processor.fine_grid} but "
            f"config.json has {config.changevg['fine_grid']}"
        )
    module = vgm if isinstance(vgm, nn.Module) else None
    model, info = _from_pretrained(folder, config, module, dtype)
    _check_loading(info, folder, allowed_missing=())
    if vgm is not None and not isinstance(vgm, nn.Module):
        _load_vgm_file(model, Path(vgm))
    return model, processor


def _vgm_folder(folder: Path) -> nn.Module:
    """The VGM saved in ``folder`` (``VisionGuidedModule.from_pretrained``: any VGM kind)."""
    from changevg.vgm import VisionGuidedModule

    try:
        return VisionGuidedModule.from_pretrained(folder)
    except (FileNotFoundError, ValueError) as err:
        raise ChangeVGFolderError(f"VGM folder {folder}: {err}") from err


def _vgm_width(vgm: nn.Module) -> int | None:
    width = getattr(vgm, "embed_dim", None)
    if width is None:
        width = getattr(getattr(vgm, "config", None), "embed_dim", None)
    return width if isinstance(width, int) else None


def _load_vgm_file(model: nn.Module, file: Path) -> None:
    if not file.is_file():
        raise ChangeVGFolderError(f"{file} is missing: expected the VGM weights (safetensors)")
    if model.vgm is None:
        raise ChangeVGFolderError(f"{file}: the model has no VGM to load it into")
    state = load_file(str(file))
    state = {k.removeprefix("vgm."): v for k, v in state.items()}
    try:
        result = model.vgm.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shape mismatches
        raise ChangeVGFolderError(f"{file} does not fit the VGM: {err}") from err
    if result.missing_keys or result.unexpected_keys:
        raise ChangeVGFolderError(
            f"{file} does not fit the VGM: missing {result.missing_keys[:5]}, "
            f"unexpected {result.unexpected_keys[:5]}"
        )


def _adapter_modules(file: Path) -> set[str]:
    """Top-level module names with full weights in an adapter file (``vgm``, ``vgm_projector``)."""
    with safe_open(str(file), framework="pt") as f:
        keys = list(f.keys())
    return {m for k in keys for m in ("vgm", "vgm_projector") if f".{m}." in f".{k}"}


def add_vgm_tokens(tokenizer: Any) -> int:
    """Add ``<|vgm_start|>``, ``<|vgm_end|>``, ``<|vgm_pad|>`` to a Qwen tokenizer if absent."""
    new = [t for t in (VGM_START, VGM_END, VGM_PAD) if t not in tokenizer.get_vocab()]
    if new:
        tokenizer.add_tokens([AddedToken(t, special=True, normalized=False) for t in new],
                             special_tokens=True)  # fmt: skip
    return len(new)


def _load_base(
    base: Path, adapter: PathLike | None, vgm: PathLike | nn.Module | None, merge: bool, dtype: Any
) -> tuple[nn.Module, ChangeVGProcessor]:
    from peft import PeftModel

    _require(base, "config.json", "the base Qwen2.5-VL config")
    _require_weights(base, "the base Qwen2.5-VL weights")
    config = _load_config(base)
    if adapter is None:
        raise ValueError(
            "base= needs adapter= (the folder with changevg.json and the LoRA weights)"
        )
    adapter = Path(adapter)
    _require(adapter, "adapter_config.json", "the PEFT LoRA adapter config")
    _require(adapter, "adapter_model.safetensors", "the LoRA weights (safetensors)")
    cv_file = _require(adapter, CHANGEVG_FILE, "the ChangeVG settings saved with the adapter")
    with open(cv_file, encoding="utf-8") as f:
        config.changevg = _check_changevg(json.load(f), cv_file)

    if (adapter / "tokenizer.json").is_file():
        processor = ChangeVGProcessor.from_folder(adapter)
        tok_source = adapter / "tokenizer.json"
    else:
        _require(base, "tokenizer.json", "the base tokenizer (the adapter folder has none)")
        tokenizer = AutoTokenizer.from_pretrained(base, local_files_only=True)
        add_vgm_tokens(tokenizer)
        processor = ChangeVGProcessor(
            build_image_processor(),
            tokenizer,
            chat_template=CHAT_TEMPLATE,
            fine_grid=config.changevg["fine_grid"],
        )
        tok_source = base / "tokenizer.json"
    _check_tokenizer(processor.tokenizer, config, tok_source)

    module = vgm if isinstance(vgm, nn.Module) else None
    width = None if module is None else _vgm_width(module)
    if width is not None and width != config.changevg["vgm_embed_dim"]:
        raise ChangeVGFolderError(
            f"{cv_file}: the adapter was trained on VGM embeddings of width "
            f"{config.changevg['vgm_embed_dim']}, the VGM given gives {width}"
        )
    if module is None and vgm is not None and not config.changevg.get("vgm"):
        raise ChangeVGFolderError(f"{cv_file}: no 'vgm' entry to rebuild the VGM for {vgm}")
    # from_pretrained initialises whatever the base lacks, the given VGM included: keep its weights
    kept = (
        None if module is None else {k: v.detach().clone() for k, v in module.state_dict().items()}
    )
    model, info = _from_pretrained(base, config, module, dtype)
    if kept is not None:
        model.vgm.load_state_dict(kept)
    # The base has no VGM or projector: they come from the VGM file and the adapter.
    _check_loading(info, base, allowed_missing=("vgm.", "vgm_projector."))
    in_adapter = _adapter_modules(adapter / "adapter_model.safetensors")
    if "vgm_projector" not in in_adapter:
        raise ChangeVGFolderError(
            f"{adapter / 'adapter_model.safetensors'} has no vgm_projector weights "
            f"(save the adapter with train_projector=True)"
        )
    if vgm is not None and not isinstance(vgm, nn.Module):
        _load_vgm_file(model, Path(vgm))
    elif model.vgm is not None and module is None and "vgm" not in in_adapter:
        raise ChangeVGFolderError(
            f"no VGM weights: pass vgm= (a VGM safetensors file or module); "
            f"{adapter / 'adapter_model.safetensors'} does not carry them"
        )
    with quiet_peft():
        peft_model = PeftModel.from_pretrained(model, adapter, is_trainable=False)
    return (peft_model.merge_and_unload() if merge else peft_model), processor
