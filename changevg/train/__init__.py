"""Training commands: ``train_vgm`` (the VGM) and ``train_vlm`` (instruction tuning)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from catalogs._lazy import lazy_exports
from changevg.train._loop import TrainOptions

if TYPE_CHECKING:
    from changevg.train.vgm import train_vgm
    from changevg.train.vlm import train_vlm

__all__ = ["TrainOptions", "train_vgm", "train_vlm"]

_LAZY = {"train_vgm": "changevg.train.vgm", "train_vlm": "changevg.train.vlm"}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
