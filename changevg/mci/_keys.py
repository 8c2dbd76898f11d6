"""Key names: the authors' checkpoint layout ↔ :class:`~changevg.mci.model.ChangeAgentMCI`.

:func:`map_key` renames one checkpoint key (``None`` for keys the forward pass never reads,
``False`` for keys it does not know); :func:`authors_key` is its inverse, used to name
missing keys the way the checkpoint would have spelled them.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from torch import Tensor

__all__ = ["authors_key", "convert_value", "map_key"]

# ------------------------------------------------------------------------ key mapping
_IGNORE = None
_BLOCK_RULES: list[tuple[str, str | None]] = [
    (r"att\.(Q_LN|K_LN|V_LN)\.(weight|bias)", _IGNORE),
    (r"att\.fuse_conv2\..+", _IGNORE),
    (r"PCM\..+", _IGNORE),
    (r"att\.to_([qkv])\.(weight|bias)", r"attn.\1.\2"),
    (r"att\.to_out\.0\.(weight|bias)", r"attn.out.\1"),
    (r"att\.fuse_conv\.0\.(weight|bias)", r"attn.fuse_conv.\1"),
    (r"att\.fuse_conv\.1\.(.+)", r"attn.fuse_bn.\1"),
    (r"feedforward\.net\.0\.(weight|bias)", r"fc1.\1"),
    (r"feedforward\.net\.3\.(weight|bias)", r"fc2.\1"),
    (r"(norm[12])\.(weight|bias)", r"\1.\2"),
]
_ADAPTER = {"d_conv_3x3": "dw3x3", "d_conv_1x5": "dw1x5", "d_conv_5x1": "dw5x1",
            "BN": "bn", "conv_1": "proj"}  # fmt: skip


def _block(rest: str) -> str | None | bool:
    """A neck ``Transformer`` key (after its prefix) → our ``NeckBlock`` key; None: unused;
    False: unknown."""
    m = re.fullmatch(r"([QK])_d_conv\.(\w+)\.(.+)", rest)
    if m and m.group(2) in _ADAPTER:
        return f"{m.group(1).lower()}_adapter.{_ADAPTER[m.group(2)]}.{m.group(3)}"
    for pattern, repl in _BLOCK_RULES:
        if re.fullmatch(pattern, rest):
            return None if repl is None else re.sub(f"^{pattern}$", repl, rest)
    return False


def _neck(key: str) -> str | None | bool:
    m = re.fullmatch(r"(Dynamic_DIF_aware_TR|Transformer_aug_CD)\.(\d+)\.(\d+)\.(.+)", key)
    if not m:
        return False
    branch = "caption_layers" if m.group(1) == "Dynamic_DIF_aware_TR" else "cd_neck"
    layer, part, rest = m.group(2), m.group(3), m.group(4)
    if part == "2" and branch == "caption_layers" and rest in ("weight", "bias"):
        return None  # the caption branch's Linear(2C, C): built, never called
    if part not in ("0", "1"):
        return False
    inner = _block(rest)
    if not isinstance(inner, str):
        return inner
    return f"{branch}.{layer}.{'ab'[int(part)]}.{inner}"


_RULES: dict[str, list[tuple[str, str | None | Callable[[str], str | None | bool]]]] = {
    "encoder_dict": [
        (r"cnn\.segformer\.patch_embed([1-4])\.(proj|norm)\.(weight|bias)",
         r"backbone.stages.<\1>.patch_embed.\2.\3"),
        (r"cnn\.segformer\.block([1-4])\.(\d+)\.mlp\.dwconv\.dwconv\.(weight|bias)",
         r"backbone.stages.<\1>.blocks.\2.mlp.dwconv.\3"),
        (r"cnn\.segformer\.block([1-4])\.(\d+)\.((?:norm[12]|attn\.(?:q|kv|proj|sr|norm)"
         r"|mlp\.fc[12])\.(?:weight|bias))", r"backbone.stages.<\1>.blocks.\2.\3"),
        (r"cnn\.segformer\.norm([1-4])\.(weight|bias)", r"backbone.stages.<\1>.norm.\2"),
        (r"cnn\.segformer\.head\.(weight|bias)", _IGNORE),  # ImageNet classifier, if saved
    ],
    "encoder_trans_dict": [
        (r"h_embedding\.weight", "caption_pos.col_embed.weight"),
        (r"w_embedding\.weight", "caption_pos.row_embed.weight"),
        (r"h_embedding_CD\.weight", "cd_pos.col_embed.weight"),
        (r"w_embedding_CD\.weight", "cd_pos.row_embed.weight"),
        (r"(?:Dynamic_DIF_aware_TR|Transformer_aug_CD)\..+", _neck),
        (r"conv_dif\.(\d+)\.([01])\.(.+)", r"seg_head.diff.\1.\2.\3"),
        (r"conv_fuse\.(\d+)\.([0-3])\.(.+)", r"seg_head.fuse.\1.\2.\3"),
        (r"to_fused\.(\d+)\.([0-3])\.(.+)", r"seg_head.up.\1.\2.\3"),
        (r"to_seg\.([01])\.(weight|bias)", r"seg_head.out.\1.\2"),
    ],
    "decoder_dict": [
        (r"Conv1\.(weight|bias)", r"decoder.memory_proj.\1"),
        (r"LN\.left\.([0-7])\.(.+)", r"decoder.memory_block.body.\1.\2"),
        (r"vocab_embedding\.weight", "decoder.word_embed.weight"),
        (r"position_encoding\.pe", "decoder.pos_table"),
        (r"position_encoding\.embedding_1D\.weight", _IGNORE),
        (r"transformer\.layers\.(\d+)\.fc_alpha[123]\.(weight|bias)", _IGNORE),
        (r"transformer\.layers\.(\d+)\.multihead_attn\.(.+)", r"decoder.layers.\1.cross_attn.\2"),
        (r"transformer\.layers\.(\d+)\.((?:self_attn|linear[12]|norm[123])\..+)",
         r"decoder.layers.\1.\2"),
        (r"wdc\.(weight|bias)", r"decoder.classifier.\1"),
    ],
}  # fmt: skip


def map_key(group: str, key: str) -> str | None | bool:
    """Our state-dict key for the authors' ``group`` / ``key``.

    Returns:
        The new key; ``None`` for a key the forward pass never uses; ``False`` for a key
        this converter does not know (reported as unexpected).
    """
    for pattern, repl in _RULES[group]:
        if not re.fullmatch(pattern, key):
            continue
        if repl is None or callable(repl):
            return repl(key) if callable(repl) else None
        new = re.sub(f"^{pattern}$", repl, key)
        return re.sub(r"<([1-4])>", lambda m: str(int(m.group(1)) - 1), new)
    return False


def convert_value(new_key: str, value: Tensor) -> Tensor:
    """The tensor as our module stores it (the decoder's ``pe`` buffer loses its batch axis)."""
    if new_key == "decoder.pos_table" and value.ndim == 3 and value.shape[1] == 1:
        return value[:, 0]  # the authors' buffer is [max_length, 1, D]
    return value


_BLOCK_REVERSE: list[tuple[str, str]] = [
    (r"attn\.([qkv])\.(.+)", r"att.to_\1.\2"),
    (r"attn\.out\.(.+)", r"att.to_out.0.\1"),
    (r"attn\.fuse_conv\.(.+)", r"att.fuse_conv.0.\1"),
    (r"attn\.fuse_bn\.(.+)", r"att.fuse_conv.1.\1"),
    (r"fc1\.(.+)", r"feedforward.net.0.\1"),
    (r"fc2\.(.+)", r"feedforward.net.3.\1"),
]
_ADAPTER_REVERSE = {v: k for k, v in _ADAPTER.items()}
_REVERSE: list[tuple[str, str]] = [
    (r"backbone\.stages\.(\d)\.patch_embed\.(.+)",
     r"encoder_dict.cnn.segformer.patch_embed<\1>.\2"),
    (r"backbone\.stages\.(\d)\.blocks\.(\d+)\.mlp\.dwconv\.(.+)",
     r"encoder_dict.cnn.segformer.block<\1>.\2.mlp.dwconv.dwconv.\3"),
    (r"backbone\.stages\.(\d)\.blocks\.(\d+)\.(.+)", r"encoder_dict.cnn.segformer.block<\1>.\2.\3"),
    (r"backbone\.stages\.(\d)\.norm\.(.+)", r"encoder_dict.cnn.segformer.norm<\1>.\2"),
    (r"caption_pos\.col_embed\.weight", "encoder_trans_dict.h_embedding.weight"),
    (r"caption_pos\.row_embed\.weight", "encoder_trans_dict.w_embedding.weight"),
    (r"cd_pos\.col_embed\.weight", "encoder_trans_dict.h_embedding_CD.weight"),
    (r"cd_pos\.row_embed\.weight", "encoder_trans_dict.w_embedding_CD.weight"),
    (r"seg_head\.diff\.(.+)", r"encoder_trans_dict.conv_dif.\1"),
    (r"seg_head\.fuse\.(.+)", r"encoder_trans_dict.conv_fuse.\1"),
    (r"seg_head\.up\.(.+)", r"encoder_trans_dict.to_fused.\1"),
    (r"seg_head\.out\.(.+)", r"encoder_trans_dict.to_seg.\1"),
    (r"decoder\.memory_proj\.(.+)", r"decoder_dict.Conv1.\1"),
    (r"decoder\.memory_block\.body\.(.+)", r"decoder_dict.LN.left.\1"),
    (r"decoder\.word_embed\.weight", "decoder_dict.vocab_embedding.weight"),
    (r"decoder\.pos_table", "decoder_dict.position_encoding.pe"),
    (r"decoder\.layers\.(\d+)\.cross_attn\.(.+)",
     r"decoder_dict.transformer.layers.\1.multihead_attn.\2"),
    (r"decoder\.layers\.(\d+)\.(.+)", r"decoder_dict.transformer.layers.\1.\2"),
    (r"decoder\.classifier\.(.+)", r"decoder_dict.wdc.\1"),
]  # fmt: skip


def _sub(pattern: str, repl: str, key: str) -> str:
    new = re.sub(f"^{pattern}$", repl, key)
    return re.sub(r"<(\d)>", lambda m: str(int(m.group(1)) + 1), new)


def authors_key(key: str) -> str:
    """``group.key`` in the authors' checkpoint for one of our state-dict keys."""
    m = re.fullmatch(r"(caption_layers|cd_neck)\.(\d+)\.([ab])\.(.+)", key)
    if m:
        group = "Dynamic_DIF_aware_TR" if m.group(1) == "caption_layers" else "Transformer_aug_CD"
        rest = m.group(4)
        a = re.fullmatch(r"([qk])_adapter\.(\w+)\.(.+)", rest)
        if a and a.group(2) in _ADAPTER_REVERSE:
            rest = f"{a.group(1).upper()}_d_conv.{_ADAPTER_REVERSE[a.group(2)]}.{a.group(3)}"
        else:
            for pattern, repl in _BLOCK_REVERSE:
                if re.fullmatch(pattern, rest):
                    rest = _sub(pattern, repl, rest)
                    break
        return f"encoder_trans_dict.{group}.{m.group(2)}.{'ab'.index(m.group(3))}.{rest}"
    for pattern, repl in _REVERSE:
        if re.fullmatch(pattern, key):
            return _sub(pattern, repl, key)
    return key
