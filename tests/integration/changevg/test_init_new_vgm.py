"""``train vlm --init`` with a VGM of another architecture (a change-type channel) replaces it."""

from __future__ import annotations

import dataclasses

import torch

from changevg.train import TrainOptions, train_vgm, train_vlm
from changevg.vgm import VGMConfig, VisionGuidedModule


def test_init_takes_a_change_type_vgm(tiny_dataset, tiny_models, tmp_path) -> None:
    _, vlm = tiny_models
    torch.set_num_threads(1)
    options = TrainOptions(epochs=1, batch_size=4, max_steps=1, checkpoint_every=1)
    config = dataclasses.replace(VGMConfig.tiny(), change_type=True)
    vgm = train_vgm(
        tiny_dataset.files["train"], out=tmp_path / "vgm", config=config, options=options,
        progress=False,
    )  # fmt: skip
    out = train_vlm(
        tiny_dataset.files["train"], out=tmp_path / "vlm", vgm=vgm, init=vlm, options=options,
        progress=False,
    )  # fmt: skip
    from changevg.model import ChangeVG

    model = ChangeVG.load(out, device="cpu")
    assert model.vgm.config.change_type
    want = VisionGuidedModule.from_pretrained(vgm).state_dict()
    got = model.vgm.state_dict()
    assert set(got) == set(want)
    assert all(torch.equal(got[k], want[k]) for k in want)  # frozen VGM: the given weights
