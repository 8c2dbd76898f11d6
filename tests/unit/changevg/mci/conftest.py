"""Fixtures for the MCI tests: the reference vectors made with the authors' code.

They live in ``../shared/reference/change_agent_mci`` beside the repository (see its README);
the tests skip, saying so, when the folder is absent.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from torch import Tensor, nn

from changevg.mci.model import ChangeAgentMCI

REF = Path(__file__).resolve().parents[4].parent / "shared" / "reference" / "change_agent_mci"

Groups = dict[str, dict[str, Tensor]]
Tracer = Callable[[ChangeAgentMCI, Tensor, Tensor, Tensor], dict[str, Tensor]]


def _split_groups(flat: dict[str, Tensor]) -> Groups:
    """``group.key`` tensors (as in ``small.safetensors``) → the three checkpoint groups."""
    groups: Groups = {}
    for key, value in flat.items():
        group, _, rest = key.partition(".")
        groups.setdefault(group, {})[rest] = value
    return groups


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    # shared 2-core machine: one thread avoids oversubscription; results stay within 1e-6
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def reference() -> Path:
    """The reference folder, or skip the test with the reason."""
    if not (REF / "small.safetensors").is_file():
        pytest.skip(f"reference vectors not found at {REF} (the shared folder beside the repo)")
    return REF


@pytest.fixture(scope="session")
def ref_json(reference: Path) -> Callable[[str], Any]:
    """Reads one of the reference folder's JSON files by name."""
    return lambda name: json.loads((reference / name).read_text())


@pytest.fixture(scope="session")
def small_groups(reference: Path) -> Groups:
    """The small configuration's three state dicts, exactly as the authors' modules hold them."""
    return _split_groups(load_file(str(reference / "small.safetensors")))


@pytest.fixture(scope="session")
def small_pth(small_groups: Groups, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``.pth`` checkpoint laid out like the authors' ``train.py`` saves it."""
    path = tmp_path_factory.mktemp("mci_ckpt") / "MCI_small.pth"
    torch.save(small_groups, path)
    return path


@pytest.fixture(scope="session")
def small_folder(
    small_pth: Path, reference: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The small checkpoint converted through the public converter."""
    from changevg.mci.convert import convert_change_agent

    out = tmp_path_factory.mktemp("mci_small") / "vgm"
    return convert_change_agent(
        small_pth, reference / "vocab.json", args=reference / "small_config.json", out=out
    )


@pytest.fixture(scope="session")
def small_model(small_folder: Path) -> ChangeAgentMCI:
    return ChangeAgentMCI.from_pretrained(small_folder)


@pytest.fixture(scope="session")
def inputs(reference: Path) -> dict[str, Tensor]:
    return load_file(str(reference / "inputs.safetensors"))


@pytest.fixture(scope="session")
def small_outputs(reference: Path) -> dict[str, Tensor]:
    return load_file(str(reference / "outputs_small.safetensors"))


@pytest.fixture(scope="session")
def vocab_json(reference: Path) -> Path:
    return reference / "vocab.json"


def _trace(
    model: ChangeAgentMCI, img_a: Tensor, img_b: Tensor, tokens: Tensor
) -> dict[str, Tensor]:
    got: dict[str, Tensor] = {}
    hooks = []

    def on(module: nn.Module, name: str, fn: Callable[[Tensor], Tensor] = lambda o: o) -> None:
        def hook(_module: nn.Module, _inputs: object, output: Tensor) -> None:
            got[name] = fn(output)

        hooks.append(module.register_forward_hook(hook))

    for s, stage in enumerate(model.backbone.stages, start=1):
        on(stage, f"stage{s}")  # the Siamese batch: A rows, then B rows
    for i, layer in enumerate(model.cd_neck):
        on(layer.a, f"trans.cd_neck.layer{i}.A_block_out")
        on(layer.b, f"trans.cd_neck.layer{i}.B_block_out")
    for i, layer in enumerate(model.caption_layers):
        on(layer.a, f"trans.cc.layer{i}.A_out")
        on(layer.b, f"trans.cc.layer{i}.B_out")
    for k in range(len(model.seg_head.fuse)):
        on(model.seg_head.fuse[k], f"trans.cd_head.fuse{k}")
        on(model.seg_head.up[k], f"trans.cd_head.to_fused{k}")
    on(model.decoder.memory_proj, "dec.tf.conv1_out")
    on(model.decoder.memory_block, "dec.tf.resblock_out")
    for i, layer in enumerate(model.decoder.layers):
        on(layer, f"dec.tf.layer{i}_out", lambda o: o.transpose(0, 1))  # sequence-first
    try:
        with torch.no_grad():
            seg, cap_a, cap_b = model.encode(img_a, img_b)
            memory = model.decoder.memory(cap_a, cap_b)
            v = model.vocab
            got["dec.tf.logits"] = model.decoder.teacher_forcing(
                tokens, memory, pad_id=v.pad_id, eos_id=v.eos_id
            )
            got["trans.cc_pos_embedding"] = model.caption_pos(*cap_a.shape[-2:])
            got["trans.cd_pos_embedding"] = model.cd_pos(*cap_a.shape[-2:])
    finally:
        for h in hooks:
            h.remove()
    n = img_a.shape[0]
    for s in range(1, len(model.backbone.stages) + 1):
        both = got.pop(f"stage{s}")
        got[f"enc.A.stage{s}"], got[f"enc.B.stage{s}"] = both[:n], both[n:]
    got.update({"trans.seg_logits": seg, "trans.cap_feat_A": cap_a, "trans.cap_feat_B": cap_b})
    got["memory"] = memory
    return got


@pytest.fixture(scope="session")
def trace() -> Tracer:
    """``trace(model, imgA, imgB, tokens)``: every tensor the reference files hold.

    Computed by ``model`` on the *normalised* reference inputs; intermediates are caught with
    forward hooks on the modules that produce them and named as in the reference README
    (``enc.A.stage1``, ``trans.cd_neck.layer0.A_block_out``, ...). ``memory`` is the decoder
    memory, for greedy decoding.
    """
    return _trace
