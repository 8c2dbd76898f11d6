"""A converted MCI folder as the VGM of a ChangeVG model: ``ChangeVG.load(base=, adapter=, vgm=)``.

A tiny random Qwen2.5-VL base and a LoRA adapter trained (here: saved) on top of the small MCI
model stand in for the published ones; the VGM comes from the converted folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from changevg import ChangeVG  # noqa: E402
from changevg.mci.model import ChangeAgentMCI  # noqa: E402
from changevg.vgm import VGMDescription  # noqa: E402
from changevg.vlm.configs import tiny_config  # noqa: E402
from changevg.vlm.io import ChangeVGFolderError, save_changevg  # noqa: E402
from changevg.vlm.lora import apply_lora, save_adapter  # noqa: E402
from changevg.vlm.model import ChangeVGForConditionalGeneration, build_vgm  # noqa: E402
from changevg.vlm.processor import ChangeVGProcessor, build_image_processor  # noqa: E402
from changevg.vlm.tokenizer import build_tokenizer  # noqa: E402

CORPUS = ["A new road is built in the center.", "There is no change.", "Yes", "No"] * 30
SAMPLES = ("test_2_0000_0000", "test_55_0256_0000")  # the reference's sample order
_IDS = ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id")


@pytest.fixture(scope="module")
def base_and_adapter(small_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``base/`` (a plain tiny Qwen2.5-VL), ``adapter/`` (LoRA + projector for the MCI) and
    ``changevg/`` (a whole ChangeVG folder with an MCI VGM whose classifier bias is shifted)."""
    root = tmp_path_factory.mktemp("changevg_mci")
    torch.manual_seed(0)
    tok = build_tokenizer(CORPUS, vocab_size=400)
    vgm = ChangeAgentMCI.from_pretrained(small_folder)
    cfg = tiny_config(len(tok), tokenizer=tok, vgm=vgm, vgm_embed_dim=vgm.embed_dim,
                      fine_grid=vgm.config.fine_grid)  # fmt: skip
    assert cfg.changevg["vgm"]["kind"] == "change-agent-mci"
    assert isinstance(build_vgm(cfg.changevg["vgm"]), ChangeAgentMCI)
    cvg = ChangeVGForConditionalGeneration(cfg, vgm=vgm)
    base_cfg = tiny_config(len(tok))
    for key in _IDS:
        setattr(base_cfg, key, getattr(cfg, key))
    from transformers import Qwen2_5_VLForConditionalGeneration

    base = Qwen2_5_VLForConditionalGeneration(base_cfg)
    base.load_state_dict(cvg.state_dict(), strict=False)
    base.save_pretrained(root / "base")
    build_tokenizer(CORPUS, vocab_size=400, vgm_tokens=False).save_pretrained(root / "base")
    proc = ChangeVGProcessor(build_image_processor(), tok, fine_grid=vgm.config.fine_grid)
    with torch.no_grad():  # a whole ChangeVG folder whose VGM differs from the converted one
        cvg.vgm.decoder.classifier.bias.add_(1.0)
    save_changevg(cvg, proc, root / "changevg")
    with torch.no_grad():
        cvg.vgm.decoder.classifier.bias.sub_(1.0)
    save_adapter(apply_lora(cvg), proc, root / "adapter")
    return root


def test_changevg_load_takes_the_converted_folder(
    base_and_adapter, small_folder, small_model, reference, ref_json
):
    root = base_and_adapter
    model = ChangeVG.load(
        base=root / "base", adapter=root / "adapter", vgm=small_folder, device="cpu"
    )
    assert isinstance(model.vgm, ChangeAgentMCI)
    loaded = model.vgm.state_dict()
    for key, value in small_model.state_dict().items():
        assert torch.equal(loaded[key], value), key  # the folder's weights, not re-initialised
    # the pipeline's screening step on the reference PNGs: the authors' greedy captions
    images = reference / "images"
    pairs = [(images / "A" / f"{s}.png", images / "B" / f"{s}.png") for s in SAMPLES]
    descs = model.screen(pairs)
    assert all(isinstance(d, VGMDescription) for d in descs)
    assert [d.caption for d in descs] == [
        " ".join(g["words"]) for g in ref_json("greedy_small.json")
    ]


def test_adapter_for_another_vgm_width_is_named(base_and_adapter, small_folder, tmp_path):
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    for f in (base_and_adapter / "adapter").iterdir():
        (adapter / f.name).write_bytes(f.read_bytes())
    settings = json.loads((adapter / "changevg.json").read_text())
    (adapter / "changevg.json").write_text(json.dumps({**settings, "vgm_embed_dim": 512}))
    with pytest.raises(ChangeVGFolderError, match="width 512, the VGM given gives 32"):
        ChangeVG.load(base=base_and_adapter / "base", adapter=adapter, vgm=small_folder,
                      device="cpu")  # fmt: skip


def test_changevg_folder_with_an_mci_vgm_and_a_vgm_folder_replacing_it(
    base_and_adapter, small_folder, small_model
):
    folder = base_and_adapter / "changevg"
    shifted = ChangeVG.load(folder, device="cpu").vgm  # rebuilt from config.json's "vgm" entry
    assert isinstance(shifted, ChangeAgentMCI)
    bias = small_model.decoder.classifier.bias
    assert torch.equal(shifted.decoder.classifier.bias, bias + 1.0)
    replaced = ChangeVG.load(folder, vgm=small_folder, device="cpu").vgm
    for key, value in small_model.state_dict().items():
        assert torch.equal(replaced.state_dict()[key], value), key
