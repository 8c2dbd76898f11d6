"""Convert a Change-Agent MCI checkpoint (``MCI_model.pth``) into a model folder.

The authors' ``train.py`` saves ``{"encoder_dict", "encoder_trans_dict", "decoder_dict"}``
(three module state dicts). :func:`convert_change_agent` reads it with
``torch.load(weights_only=True)`` only (no code from the file runs), infers the architecture
from the tensor shapes (widths, depths, layer counts, sizes), takes what shapes cannot tell
(attention heads, dropout) from an args file (:mod:`changevg.mci._args`), renames every key
to :class:`~changevg.mci.model.ChangeAgentMCI`'s layout and writes a folder that
``VisionGuidedModule.from_pretrained`` and ``ChangeAgentMCI.from_pretrained`` load.

Unlike the authors' loader (``strict=False`` on ``encoder_trans_dict``), every key the
forward pass uses must be present with the right shape: missing, unexpected and mis-shaped
keys are named in one :class:`ConversionError`. Keys the forward pass never reads (unused
LayerNorms, ``fuse_conv2``, ``PCM``, the caption branch's ``Linear(2C, C)``, the decoder's
``fc_alpha*`` and ``embedding_1D``) are ignored and reported; BatchNorm
``num_batches_tracked`` counters (never read in eval) are filled with 0 if absent.
"""

from __future__ import annotations

import json
import logging
import pickle
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from changevg.mci._args import ArgsSpec, ConversionError, read_args
from changevg.mci._infer import GROUPS, check_args, infer_fields
from changevg.mci._keys import authors_key, convert_value, map_key
from changevg.mci.config import MCIConfig, MCIVocab
from changevg.mci.model import ChangeAgentMCI

__all__ = [
    "GROUPS",
    "REPORT_NAME",
    "ConversionError",
    "ConversionReport",
    "build_from_groups",
    "convert_change_agent",
    "load_checkpoint",
    "plan_conversion",
    "read_vocab",
]

log = logging.getLogger(__name__)

REPORT_NAME = "conversion.json"
_SHOW = 12  # keys shown per problem list in an error message


@dataclass
class ConversionReport:
    """What a conversion did (also written to ``conversion.json`` in the folder).

    Attributes:
        source: The checkpoint path.
        args_source: Where the non-inferable settings came from.
        config: The resulting ``MCIConfig`` as a dict.
        inferred: Settings read from tensor shapes, by name.
        ignored: Checkpoint keys (``group.key``) the forward pass never uses.
        filled: Model keys absent from the checkpoint and set to their neutral value.
        ignored_entries: Top-level checkpoint entries other than the three groups.
        ignored_args: Arguments in the args file that do not describe the architecture.
    """

    source: str
    args_source: str
    config: dict[str, Any]
    inferred: dict[str, Any] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)
    filled: list[str] = field(default_factory=list)
    ignored_entries: list[str] = field(default_factory=list)
    ignored_args: list[str] = field(default_factory=list)


def _cut(items: list[str]) -> str:
    shown = ", ".join(items[:_SHOW])
    return shown + (f" (+{len(items) - _SHOW} more)" if len(items) > _SHOW else "")


# ------------------------------------------------------------------------ reading
def _unpickle_reason(err: Exception) -> str:
    """The part of torch's weights_only refusal that says what was refused."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err))
    m = re.search(r"WeightsUnpickler error: (.*?)(?: Please use|\n|$)", text)
    return (m.group(1) if m else " ".join(text.split()))[:300].strip()


def load_checkpoint(path: str | Path) -> tuple[dict[str, dict[str, Tensor]], list[str]]:
    """The three state dicts of a checkpoint, and the names of any other top-level entries.

    ``.pth``/``.pt`` files are read with ``torch.load(weights_only=True)``; a
    ``.safetensors`` file with ``group.key`` names (like the reference's
    ``small.safetensors``) is read as well.

    Raises:
        ConversionError: The file is missing, refused by ``weights_only`` (the reason is
            quoted), not a dict, lacks a group, or a group is not a state dict (named).
    """
    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"checkpoint {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            flat = load_file(str(path))
        except Exception as err:  # safetensors raises its own error types
            raise ConversionError(f"{path} is not a readable safetensors file: {err}") from err
        obj: Any = {}
        for key, value in flat.items():
            group, _, rest = key.partition(".")
            obj.setdefault(group, {})[rest] = value
    else:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as err:
            reason = _unpickle_reason(err)
            raise ConversionError(
                f"{path} was refused by torch.load(weights_only=True), which reads only tensors "
                f"and plain containers: {reason}. Only state-dict checkpoints are converted "
                f"(a dict of encoder_dict, encoder_trans_dict, decoder_dict); re-save the three "
                f"state_dict()s with torch.save in an environment you trust"
            ) from err
        except Exception as err:  # torch raises many kinds on a file that is not its format
            raise ConversionError(
                f"{path} is not a PyTorch checkpoint: {type(err).__name__}: {err}"
            ) from err
    if not isinstance(obj, Mapping):
        raise ConversionError(
            f"{path} holds a {type(obj).__name__}, not a dict with {', '.join(GROUPS)}"
        )
    missing = [g for g in GROUPS if g not in obj]
    if missing:
        raise ConversionError(
            f"{path} lacks {missing}: a Change-Agent MCI checkpoint holds {list(GROUPS)}; "
            f"this one has {sorted(map(str, obj))[:10]}"
        )
    groups: dict[str, dict[str, Tensor]] = {}
    for g in GROUPS:
        sd = obj[g]
        bad = (
            [str(k) for k, v in sd.items() if not isinstance(v, Tensor)]
            if isinstance(sd, Mapping)
            else ["(not a dict)"]
        )
        if bad:
            raise ConversionError(f"{path}: {g} is not a state dict of tensors: {_cut(bad)}")
        groups[g] = dict(sd)
    return groups, sorted(str(k) for k in obj if k not in GROUPS)


def read_vocab(vocab: str | Path | Mapping[str, int] | MCIVocab) -> MCIVocab:
    """The authors' vocabulary from a ``vocab.json`` path, a mapping or an :class:`MCIVocab`."""
    if isinstance(vocab, MCIVocab):
        return vocab
    if isinstance(vocab, Mapping):
        try:
            return MCIVocab(vocab)
        except ValueError as err:
            raise ConversionError(f"invalid vocabulary: {err}") from err
    path = Path(vocab)
    if not path.is_file():
        raise ConversionError(f"vocabulary {path} does not exist")
    try:
        return MCIVocab.from_json(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, TypeError) as err:
        raise ConversionError(
            f"vocabulary {path} is not the authors' vocab.json ({{word: id}}): {err}"
        ) from err


# ------------------------------------------------------------------------ conversion
_TO_OUT = re.compile(
    r"(?:Dynamic_DIF_aware_TR|Transformer_aug_CD)\.\d+\.[01]\.att\.to_out\.0\.weight"
)


def plan_conversion(
    groups: Mapping[str, Mapping[str, Tensor]],
    vocab: MCIVocab,
    args: str | Path | Mapping[str, Any] | ArgsSpec | None = None,
    *,
    source: str = "checkpoint",
) -> tuple[MCIConfig, dict[str, Tensor], ConversionReport]:
    """Architecture, renamed state dict and report for three state dicts (tensors or meta).

    Raises:
        ConversionError: Args contradict the shapes, the vocabulary does not fit the
            decoder, or keys are missing, unexpected or mis-shaped (all named).
    """
    spec = args if isinstance(args, ArgsSpec) else read_args(args)
    fields, seen = infer_fields(groups, spec, len(vocab))
    check_args(seen, spec)
    if fields["vocab_size"] != len(vocab):
        raise ConversionError(
            f"the vocabulary has {len(vocab)} words but decoder_dict.wdc.weight has "
            f"{fields['vocab_size']} rows: give the vocab.json the model was trained with"
        )
    has_out = any(_TO_OUT.fullmatch(k) for k in groups["encoder_trans_dict"])
    if has_out != (fields["n_heads"] > 1):
        raise ConversionError(
            f"n_heads={fields['n_heads']} ({spec.source}) but the neck attention "
            f"{'has' if has_out else 'has no'} att.to_out weights, which exist only with more "
            f"than one head: set n_heads in the args file"
        )
    try:
        config = MCIConfig(**fields)
    except ValueError as err:
        raise ConversionError(f"no valid MCI architecture ({spec.source}): {err}") from err
    with torch.device("meta"):
        template = ChangeAgentMCI(config, vocab)
    expected = {k: tuple(v.shape) for k, v in template.state_dict().items()}
    state: dict[str, Tensor] = {}
    ignored, unexpected, misshaped = [], [], []
    for group in GROUPS:
        for key, value in groups[group].items():
            name, new = f"{group}.{key}", map_key(group, key)
            if new is None:
                ignored.append(name)
            elif new is False or new not in expected:
                unexpected.append(name)
            elif tuple((value := convert_value(new, value)).shape) != expected[new]:
                misshaped.append(f"{name} {list(value.shape)} (expected {list(expected[new])})")
            else:
                state[new] = value
    absent = [k for k in expected if k not in state]
    filled = [k for k in absent if k.endswith(".num_batches_tracked")]
    missing = [authors_key(k) for k in absent if k not in filled]
    if missing or unexpected or misshaped:
        problems = [
            f"{what} {_cut(keys)}"
            for what, keys in (
                ("missing", missing),
                ("unexpected", unexpected),
                ("mis-shaped", misshaped),
            )
            if keys
        ]
        raise ConversionError(
            f"{source} does not fit the MCI architecture it describes "
            f"({config.network}, encoder_dim {config.encoder_dim}, {config.n_layers} caption "
            f"layers, {config.decoder_layers} decoder layers): {'; '.join(problems)}"
        )
    for key in filled:
        state[key] = torch.zeros((), dtype=torch.long)
    report = ConversionReport(
        source=source,
        args_source=spec.source,
        config=config.to_dict(),
        inferred={k: list(v) if isinstance(v, tuple) else v for k, v in seen.items()},
        ignored=ignored,
        filled=[authors_key(k) for k in filled],
        ignored_args=spec.ignored,
    )
    return config, state, report


def build_from_groups(
    groups: Mapping[str, Mapping[str, Tensor]],
    vocab: MCIVocab,
    args: str | Path | Mapping[str, Any] | ArgsSpec | None = None,
    *,
    source: str = "checkpoint",
) -> tuple[ChangeAgentMCI, ConversionReport]:
    """A :class:`~changevg.mci.model.ChangeAgentMCI` (eval mode, CPU) from three state dicts.

    Built on the meta device and filled from the checkpoint, so no random initialisation
    runs (every tensor comes from ``groups``; see :func:`plan_conversion`).
    """
    config, state, report = plan_conversion(groups, vocab, args, source=source)
    with torch.device("meta"):
        model = ChangeAgentMCI(config, vocab)
    model = model.to_empty(device="cpu")  # every tensor is overwritten just below
    model.load_state_dict(state, strict=True)
    return model.eval(), report


def convert_change_agent(
    checkpoint: str | Path,
    vocab: str | Path | Mapping[str, int] | MCIVocab,
    *,
    args: str | Path | Mapping[str, Any] | None = None,
    out: str | Path,
) -> Path:
    """Convert the authors' checkpoint into a folder ``from_pretrained`` loads.

    Args:
        checkpoint: ``MCI_model.pth`` (``{"encoder_dict", "encoder_trans_dict",
            "decoder_dict"}``), read with ``torch.load(weights_only=True)``.
        vocab: The authors' ``vocab.json`` the model was trained with.
        args: The settings weights cannot tell (``n_heads``, ``dropout``, backbone heads):
            an args JSON file or mapping (see :mod:`changevg.mci._args`); default: the
            authors' ``predict.py`` defaults.
        out: Folder to write (``vgm_config.json``, ``vocab.json``, ``model.safetensors``
            and ``conversion.json``, the :class:`ConversionReport`).

    Returns:
        ``out`` as a path. Ignored keys (never used by the forward pass) are logged and
        listed in ``conversion.json``.

    Raises:
        ConversionError: Anything wrong with the inputs (named, see :func:`load_checkpoint`
            and :func:`plan_conversion`); it is an ``InputError`` (exit code 2 in the CLI).
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConversionError(f"--out {out} exists and is not a folder")
    groups, extra = load_checkpoint(checkpoint)
    model, report = build_from_groups(groups, read_vocab(vocab), args, source=str(checkpoint))
    report.ignored_entries = extra
    model.save_pretrained(out)
    (out / REPORT_NAME).write_text(json.dumps(asdict(report), indent=2) + "\n")
    log.info(
        "converted %s -> %s: %d keys ignored (never used by the forward pass)%s",
        checkpoint,
        out,
        len(report.ignored),
        f", {len(report.filled)} BatchNorm counters filled with 0" if report.filled else "",
    )
    return out
