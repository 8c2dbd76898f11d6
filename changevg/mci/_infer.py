"""Architecture of an MCI checkpoint, read from its tensor shapes (for the converter).

Widths, depths, spatial-reduction and MLP ratios, patch sizes, the neck's width and layer
counts, the decoder's width, layers, length and vocabulary size are all visible in the shapes
and key names of the three state dicts. What is not (attention heads, dropout, LayerNorm eps)
comes from the args (:mod:`changevg.mci._args`). Explicit args that contradict the shapes
are an error, naming each conflict.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from changevg.mci._args import MIT_HEADS, MIT_VARIANTS, ArgsSpec, ConversionError

__all__ = ["GROUPS", "check_args", "infer_fields"]

GROUPS = ("encoder_dict", "encoder_trans_dict", "decoder_dict")
"""The three state dicts of the authors' checkpoint, in the order ``train.py`` saves them."""


def _indices(keys: Iterable[str], pattern: str) -> int:
    """One more than the largest ``(\\d+)`` index ``pattern`` finds among ``keys`` (0: none)."""
    found = {int(m.group(1)) for k in keys if (m := re.match(pattern, k))}
    return max(found) + 1 if found else 0


def infer_fields(
    groups: Mapping[str, Mapping[str, Any]], spec: ArgsSpec, vocab_size: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``MCIConfig`` fields, and the subset of them read from shapes.

    A field whose keys are absent falls back to the args (``vocab_size``: the vocabulary's
    size), so that the key check that follows can name the missing keys.

    Raises:
        ConversionError: The backbone widths are not the named variant's and no heads are
            given (heads cannot be read from weights).
    """
    enc, tr, dec = (groups[g] for g in GROUPS)
    variant = MIT_VARIANTS[spec.variant]
    seen: dict[str, Any] = {}
    dims, patches, depths, srs, mlps = [], [], [], [], []
    for s in range(1, 5):
        proj = enc.get(f"cnn.segformer.patch_embed{s}.proj.weight")
        dims.append(int(proj.shape[0]) if proj is not None else None)
        patches.append(int(proj.shape[-1]) if proj is not None else None)
        depths.append(_indices(enc, rf"cnn\.segformer\.block{s}\.(\d+)\.") or None)
        sr = enc.get(f"cnn.segformer.block{s}.0.attn.sr.weight")
        srs.append(int(sr.shape[-1]) if sr is not None else 1 if depths[-1] else None)
        fc1 = enc.get(f"cnn.segformer.block{s}.0.mlp.fc1.weight")
        mlps.append(int(fc1.shape[0]) // int(fc1.shape[1]) if fc1 is not None else None)
    fields: dict[str, Any] = {"network": spec.values["network"]}
    defaults = {
        "embed_dims": variant["embed_dims"],
        "depths": variant["depths"],
        "sr_ratios": (8, 4, 2, 1),
        "mlp_ratios": (4, 4, 4, 4),
        "patch_sizes": (7, 3, 3, 3),
    }
    for name, got in (("embed_dims", dims), ("depths", depths), ("sr_ratios", srs),
                      ("mlp_ratios", mlps), ("patch_sizes", patches)):  # fmt: skip
        fallback = spec.backbone.get(name, defaults[name])
        fields[name] = tuple(g if g is not None else f for g, f in zip(got, fallback, strict=True))
        if all(g is not None for g in got):
            seen[name] = fields[name]
    fields["qkv_bias"] = "cnn.segformer.block1.0.attn.q.bias" in enc
    for name in ("backbone_eps", "drop_path_rate"):
        if name in spec.backbone:
            fields[name] = spec.backbone[name]
    if "num_heads" in spec.backbone:
        fields["num_heads"] = tuple(spec.backbone["num_heads"])
    elif fields["embed_dims"] == variant["embed_dims"]:
        fields["num_heads"] = MIT_HEADS
    else:
        raise ConversionError(
            f"the backbone widths {list(fields['embed_dims'])} are not those of "
            f"{spec.values['network']} and attention heads cannot be read from weights: give "
            f"them in the args file as backbone_override.kwargs.num_heads ({spec.source})"
        )

    def shape(group: Mapping[str, Any], key: str, dim: int) -> int | None:
        t = group.get(key)
        return int(t.shape[dim]) if t is not None and t.ndim > dim else None

    emb = shape(tr, "h_embedding.weight", 1)
    fields["encoder_dim"] = emb * 2 if emb else fields["embed_dims"][-1]
    found = {
        "feat_size": shape(tr, "h_embedding.weight", 0),
        "n_layers": _indices(tr, r"Dynamic_DIF_aware_TR\.(\d+)\.") or None,
        "cd_layers": _indices(tr, r"Transformer_aug_CD\.(\d+)\.") or None,
        "decoder_layers": _indices(dec, r"transformer\.layers\.(\d+)\.") or None,
        "feature_dim": shape(dec, "Conv1.weight", 0),
        "max_length": shape(dec, "position_encoding.pe", 0),
        "vocab_size": shape(dec, "wdc.weight", 0),
    }
    fallback = {  # when the keys are absent (named as missing by the key check)
        "feat_size": spec.values["feat_size"],
        "n_layers": spec.values["n_layers"],
        "cd_layers": 3,  # fixed in the authors' code
        "decoder_layers": spec.values["decoder_n_layers"],
        "feature_dim": spec.values["feature_dim"],
        "max_length": spec.values["max_length"],
        "vocab_size": spec.values.get("vocab_size") or vocab_size,
    }
    seen.update({k: v for k, v in found.items() if v is not None})
    if emb:
        seen["encoder_dim"] = fields["encoder_dim"]
    for name, value in found.items():
        fields[name] = value if value is not None else fallback[name]
    n_cd = _indices(tr, r"conv_dif\.(\d+)\.")
    cd = [shape(tr, f"conv_dif.{k}.0.weight", 0) for k in range(n_cd)]
    fields["cd_dims"] = (
        tuple(cd) if n_cd and None not in cd else spec.cd_dims or fields["embed_dims"]
    )
    if n_cd and None not in cd:
        seen["cd_dims"] = fields["cd_dims"]
    fields["n_heads"] = int(spec.values["n_heads"])
    fields["dropout"] = float(spec.values["dropout"])
    return fields, seen


def check_args(seen: Mapping[str, Any], spec: ArgsSpec) -> None:
    """Explicit args must agree with what the shapes say.

    Raises:
        ConversionError: Naming every conflicting argument and what the weights say.
    """
    names = {"decoder_n_layers": "decoder_layers"}
    conflicts = []
    for arg in sorted(spec.explicit):
        name = names.get(arg, arg)
        if name in seen and spec.values[arg] != seen[name]:
            conflicts.append(f"{arg}={spec.values[arg]} (the weights say {seen[name]})")
    for name, value in spec.backbone.items():
        if name in seen and tuple(value) != tuple(seen[name]):
            conflicts.append(f"backbone {name}={list(value)} (the weights say {list(seen[name])})")
    if spec.cd_dims is not None and "cd_dims" in seen and spec.cd_dims != seen["cd_dims"]:
        conflicts.append(f"cd dims {list(spec.cd_dims)} (the weights say {list(seen['cd_dims'])})")
    if conflicts:
        raise ConversionError(
            f"{spec.source} disagrees with the checkpoint: {'; '.join(conflicts)}"
        )
