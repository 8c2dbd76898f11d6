"""The authors' training/prediction arguments and MiT variants, for the converter.

An args file is the reference's ``small_config.json`` format (``args`` plus optional
``backbone_override.kwargs`` and ``cd_branch_dims_override.value``), a ``keys_*.json`` file
(``args_predict_py``), or a flat JSON object of the authors' argument names. Without one the
defaults of the authors' ``predict.py`` apply.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from catalogs.errors import InputError

__all__ = [
    "ARG_NAMES",
    "MIT_HEADS",
    "MIT_VARIANTS",
    "PREDICT_DEFAULTS",
    "ArgsSpec",
    "ConversionError",
    "read_args",
]


class ConversionError(InputError):
    """A checkpoint, vocabulary or args file does not describe a loadable MCI model."""


PREDICT_DEFAULTS: dict[str, Any] = {
    "network": "segformer-mit_b1",
    "encoder_dim": 512,
    "feat_size": 16,
    "dropout": 0.1,
    "n_heads": 8,
    "n_layers": 3,
    "decoder_n_layers": 1,
    "feature_dim": 512,
    "max_length": 41,
}
"""``Multi_change/predict.py`` (``Change_Perception.define_args``) defaults."""

ARG_NAMES = (*PREDICT_DEFAULTS, "vocab_size")

_B1_WIDTHS = (64, 128, 320, 512)
MIT_VARIANTS: dict[str, dict[str, tuple[int, ...]]] = {
    "mit_b0": {"embed_dims": (32, 64, 160, 256), "depths": (2, 2, 2, 2)},
    "mit_b1": {"embed_dims": _B1_WIDTHS, "depths": (2, 2, 2, 2)},
    "mit_b2": {"embed_dims": _B1_WIDTHS, "depths": (3, 4, 6, 3)},
    "mit_b3": {"embed_dims": _B1_WIDTHS, "depths": (3, 4, 18, 3)},
    "mit_b4": {"embed_dims": _B1_WIDTHS, "depths": (3, 8, 27, 3)},
    "mit_b5": {"embed_dims": _B1_WIDTHS, "depths": (3, 6, 40, 3)},
}
"""The authors' ``segformer.py`` variants (all: heads 1/2/5/8, sr 8/4/2/1, mlp 4, eps 1e-6)."""
MIT_HEADS = (1, 2, 5, 8)

_BACKBONE_KW = {  # backbone_override.kwargs name -> MCIConfig field
    "embed_dims": "embed_dims",
    "num_heads": "num_heads",
    "depths": "depths",
    "sr_ratios": "sr_ratios",
    "mlp_ratios": "mlp_ratios",
    "qkv_bias": "qkv_bias",
    "norm_eps": "backbone_eps",
    "drop_path_rate": "drop_path_rate",
}


@dataclass
class ArgsSpec:
    """Resolved converter arguments.

    Attributes:
        values: The authors' argument values (defaults filled in).
        explicit: Names given by the args file (checked against the weights' shapes).
        backbone: Backbone overrides as ``MCIConfig`` fields.
        cd_dims: Change-head channel override, if any.
        source: Where the values came from (a path or ``"predict.py defaults"``).
        ignored: Argument names in the file that do not describe the architecture.
    """

    values: dict[str, Any]
    explicit: set[str] = field(default_factory=set)
    backbone: dict[str, Any] = field(default_factory=dict)
    cd_dims: tuple[int, ...] | None = None
    source: str = "predict.py defaults"
    ignored: list[str] = field(default_factory=list)

    @property
    def variant(self) -> str:
        """The MiT variant named by ``network`` (``segformer-mit_b1`` → ``mit_b1``)."""
        return str(self.values["network"]).split("-")[-1]


def _load(args: str | Path | Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    if isinstance(args, Mapping):
        return dict(args), "args mapping"
    path = Path(args)
    if not path.is_file():
        raise ConversionError(f"--args file {path} does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConversionError(f"--args file {path} is not readable JSON: {err}") from err
    if not isinstance(data, dict):
        raise ConversionError(
            f"--args file {path} must hold a JSON object, not {type(data).__name__}"
        )
    return data, str(path)


def read_args(args: str | Path | Mapping[str, Any] | None) -> ArgsSpec:
    """Resolve an args file or mapping (see the module docstring) into an :class:`ArgsSpec`.

    Raises:
        ConversionError: The file is missing or unreadable, a value has the wrong type, or
            the network is not a SegFormer MiT variant (named).
    """
    if args is None:
        return ArgsSpec(values=dict(PREDICT_DEFAULTS))
    data, source = _load(args)
    flat = data.get("args", data.get("args_predict_py", data))
    if not isinstance(flat, Mapping):
        raise ConversionError(f"{source}: 'args' must be a JSON object")
    explicit = {k for k in flat if k in ARG_NAMES}
    values = {**PREDICT_DEFAULTS, **{k: flat[k] for k in explicit}}
    for name in ARG_NAMES:
        want = str if name == "network" else float if name == "dropout" else int
        value = values.get(name)
        if value is None and name == "vocab_size":
            continue
        ok = isinstance(value, int | float) if want is float else isinstance(value, want)
        if not ok or isinstance(value, bool):
            raise ConversionError(
                f"{source}: argument {name!r} must be {want.__name__}, got {value!r}"
            )
    if "segformer" not in values["network"] or values["network"].split("-")[-1] not in (
        MIT_VARIANTS
    ):
        raise ConversionError(
            f"{source}: network {values['network']!r} is not supported: the MCI converter "
            f"handles 'segformer-mit_b0' ... 'segformer-mit_b5'"
        )
    spec = ArgsSpec(values=values, explicit=explicit, source=source)
    spec.ignored = sorted(k for k in flat if k not in ARG_NAMES)
    override = data.get("backbone_override")
    if isinstance(override, Mapping):
        kwargs = override.get("kwargs", override)
        spec.backbone = {_BACKBONE_KW[k]: v for k, v in kwargs.items() if k in _BACKBONE_KW}
    cd = data.get("cd_branch_dims_override")
    if isinstance(cd, Mapping) and "value" in cd:
        spec.cd_dims = tuple(int(v) for v in cd["value"])
    return spec
