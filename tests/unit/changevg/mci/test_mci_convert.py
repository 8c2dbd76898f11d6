"""The Change-Agent converter: key layout, architecture inference and every bad input."""

from __future__ import annotations

import json
from collections import OrderedDict

import pytest
import torch

from catalogs.errors import InputError
from changevg.mci._keys import authors_key, map_key
from changevg.mci.config import MCIConfig, MCIVocab
from changevg.mci.convert import (
    GROUPS,
    ConversionError,
    build_from_groups,
    convert_change_agent,
    load_checkpoint,
    plan_conversion,
)


class NotAStateDict:
    """An arbitrary object: ``torch.load(weights_only=True)`` must refuse to rebuild it."""

    def __init__(self) -> None:
        self.weights = torch.zeros(2)


@pytest.fixture(scope="module")
def default_keys(ref_json):
    """Keys, shapes and counts of the published (predict.py default) checkpoint."""
    return ref_json("keys_segformer-mit_b1.json")


@pytest.fixture(scope="module")
def default_layout(default_keys) -> dict[str, dict[str, torch.Tensor]]:
    """The published checkpoint's keys and shapes, as meta tensors."""
    keys = default_keys
    dtypes = {"float32": torch.float32, "int64": torch.int64}
    return {
        g: {e["key"]: torch.empty(e["shape"], dtype=dtypes[e["dtype"]], device="meta")
            for e in entries}
        for g, entries in keys["groups"].items()
    }  # fmt: skip


def _copy(groups):
    return {g: OrderedDict(sd) for g, sd in groups.items()}


# ------------------------------------------------------------------ layout of the real model
@pytest.fixture(scope="module")
def vocab(vocab_json) -> MCIVocab:
    return MCIVocab.from_json(vocab_json.read_text())


@pytest.fixture(scope="module")
def small_args(reference):
    return reference / "small_config.json"


@pytest.fixture
def plan(vocab, small_args):
    """``plan(groups, args="small")``: :func:`plan_conversion` with the small args file."""
    return lambda groups, args="small": plan_conversion(
        groups, vocab, small_args if args == "small" else args
    )


def test_every_published_key_maps_and_round_trips(default_keys):
    keys = default_keys
    unused = {
        f"{g}.{k}"
        for part in ("unused_in_forward_params", "unused_in_forward_buffers")
        for g, ks in keys[part].items()
        for k in ks
    }
    ignored, mapped = set(), {}
    for group, entries in keys["groups"].items():
        for e in entries:
            new = map_key(group, e["key"])
            assert new is not False, f"unknown key {group}.{e['key']}"
            if new is None:
                ignored.add(f"{group}.{e['key']}")
            else:
                assert new not in mapped, f"{new} mapped twice"
                mapped[new] = f"{group}.{e['key']}"
                assert authors_key(new) == f"{group}.{e['key']}"
    assert ignored == unused  # exactly the keys the README lists as never used


def test_default_layout_plans_the_predict_py_architecture(default_layout, default_keys, vocab):
    config, state, report = plan_conversion(default_layout, vocab)
    assert config == MCIConfig()  # the predict.py defaults, mit-b1
    keys = default_keys
    used = keys["param_counts"]["total"] - sum(
        keys["counts"][g]["unused_param_elements"] for g in GROUPS
    )
    with torch.device("meta"):
        from changevg.mci.model import ChangeAgentMCI

        model = ChangeAgentMCI(config, vocab)
    assert sum(p.numel() for p in model.parameters()) == used == 117_754_903
    assert set(state) == set(model.state_dict())
    assert len(report.ignored) == sum(
        len(keys[p][g])
        for p in ("unused_in_forward_params", "unused_in_forward_buffers")
        for g in GROUPS
    )
    assert report.filled == []


def test_small_config_inference(small_groups, plan):
    config, _, report = plan(small_groups)
    assert config.embed_dims == (16, 32, 48, 64) and config.num_heads == (1, 2, 3, 4)
    assert (config.encoder_dim, config.n_heads, config.n_layers) == (64, 4, 2)
    assert (config.decoder_layers, config.feature_dim, config.max_length) == (2, 32, 41)
    assert report.inferred["cd_dims"] == [16, 32, 48, 64]
    assert report.args_source.endswith("small_config.json")


def test_conversion_report_written(small_folder):
    report = json.loads((small_folder / "conversion.json").read_text())
    assert report["filled"] == [] and report["ignored_entries"] == []
    assert "encoder_trans_dict.Dynamic_DIF_aware_TR.0.2.weight" in report["ignored"]
    assert "decoder_dict.position_encoding.embedding_1D.weight" in report["ignored"]
    assert {p.name for p in small_folder.iterdir()} == {
        "vgm_config.json",
        "vocab.json",
        "model.safetensors",
        "conversion.json",
    }


def test_unused_keys_may_be_missing_and_counters_are_filled(small_groups, vocab, small_args):
    groups = _copy(small_groups)
    trans = groups["encoder_trans_dict"]
    for key in [k for k in trans if ".PCM." in k or ".Q_LN." in k]:
        del trans[key]
    del groups["decoder_dict"]["LN.left.1.num_batches_tracked"]
    model, report = build_from_groups(groups, vocab, small_args)
    assert report.filled == ["decoder_dict.LN.left.1.num_batches_tracked"]
    assert not any(".PCM." in k for k in report.ignored)
    assert int(model.decoder.memory_block.body[1].num_batches_tracked) == 0


# ------------------------------------------------------------------ bad input
def test_pickled_object_is_refused_with_the_reason(tmp_path, vocab_json):
    path = tmp_path / "model.pth"
    torch.save({"encoder_dict": NotAStateDict()}, path)
    with pytest.raises(ConversionError, match=r"weights_only=True.*NotAStateDict") as err:
        convert_change_agent(path, vocab_json, out=tmp_path / "out")
    assert isinstance(err.value, InputError)
    assert not (tmp_path / "out").exists()


def test_not_a_dict_and_not_a_checkpoint(tmp_path):
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(ConversionError, match="holds a list"):
        load_checkpoint(tmp_path / "list.pth")
    (tmp_path / "text.pth").write_text("hello")
    with pytest.raises(ConversionError, match="not a PyTorch checkpoint"):
        load_checkpoint(tmp_path / "text.pth")
    with pytest.raises(ConversionError, match="does not exist"):
        load_checkpoint(tmp_path / "absent.pth")


def test_missing_group_is_named(small_groups, tmp_path):
    torch.save({g: small_groups[g] for g in ("encoder_dict", "decoder_dict")}, tmp_path / "x.pth")
    with pytest.raises(ConversionError, match=r"lacks \['encoder_trans_dict'\]"):
        load_checkpoint(tmp_path / "x.pth")


def test_group_that_is_not_a_state_dict(small_groups, tmp_path):
    bad = {**small_groups, "decoder_dict": {"wdc.weight": [1.0, 2.0]}}
    torch.save(bad, tmp_path / "x.pth")
    with pytest.raises(ConversionError, match="decoder_dict is not a state dict.*wdc.weight"):
        load_checkpoint(tmp_path / "x.pth")


def test_missing_used_key_is_named(small_groups, plan):
    groups = _copy(small_groups)
    del groups["encoder_trans_dict"]["Transformer_aug_CD.1.0.att.to_k.weight"]
    del groups["encoder_dict"]["cnn.segformer.block3.1.mlp.dwconv.dwconv.bias"]
    with pytest.raises(ConversionError, match="missing") as err:
        plan(groups)
    assert "encoder_trans_dict.Transformer_aug_CD.1.0.att.to_k.weight" in str(err.value)
    assert "encoder_dict.cnn.segformer.block3.1.mlp.dwconv.dwconv.bias" in str(err.value)


def test_unexpected_key_is_named(small_groups, plan):
    groups = _copy(small_groups)
    groups["decoder_dict"]["extra_head.weight"] = torch.zeros(3)
    with pytest.raises(ConversionError, match=r"unexpected decoder_dict\.extra_head\.weight"):
        plan(groups)


def test_misshaped_key_is_named(small_groups, plan):
    groups = _copy(small_groups)
    groups["encoder_trans_dict"]["conv_fuse.2.0.weight"] = torch.zeros(96, 144, 1, 1)
    with pytest.raises(ConversionError, match=r"mis-shaped encoder_trans_dict\.conv_fuse\.2\.0"
                       r"\.weight \[96, 144, 1, 1\] \(expected \[96, 144, 3, 3\]\)"):  # fmt: skip
        plan(groups)


def test_vocabulary_must_match_the_decoder(small_pth, small_args, tmp_path):
    words = {w: i for i, w in enumerate(["<NULL>", "<UNK>", "<START>", "<END>", "a", "road"])}
    (tmp_path / "vocab.json").write_text(json.dumps(words))
    with pytest.raises(ConversionError, match=r"6 words but decoder_dict\.wdc\.weight has 468"):
        convert_change_agent(
            small_pth, tmp_path / "vocab.json", args=small_args, out=tmp_path / "o"
        )
    (tmp_path / "bad.json").write_text(json.dumps({"a": 0}))
    with pytest.raises(ConversionError, match=r"bad\.json.*special tokens"):
        convert_change_agent(small_pth, tmp_path / "bad.json", out=tmp_path / "o")


def test_args_that_contradict_the_weights_are_named(small_groups, plan):
    args = {"args": {"encoder_dim": 512, "n_heads": 4, "decoder_n_layers": 1},
            "backbone_override": {"kwargs": {"num_heads": [1, 2, 3, 4]}}}  # fmt: skip
    with pytest.raises(ConversionError, match="decoder_n_layers=1 .*2.*encoder_dim=512 .*say 64"):
        plan(small_groups, args)


def test_heads_the_weights_cannot_tell_must_be_given(small_groups, plan):
    # predict.py defaults name mit_b1, whose heads do not fit the small widths
    with pytest.raises(ConversionError, match="backbone_override.kwargs.num_heads"):
        plan(small_groups, None)
    args = {"args": {"n_heads": 1}, "backbone_override": {"kwargs": {"num_heads": [1, 2, 3, 4]}}}
    with pytest.raises(ConversionError, match="n_heads=1 .*to_out"):
        plan(small_groups, args)


def test_args_file_errors(small_groups, plan, tmp_path):
    (tmp_path / "args.json").write_text("{not json")
    with pytest.raises(InputError, match="args.json is not readable JSON"):
        plan(small_groups, tmp_path / "args.json")
    with pytest.raises(InputError, match="network 'resnet101' is not supported"):
        plan(small_groups, {"network": "resnet101"})
