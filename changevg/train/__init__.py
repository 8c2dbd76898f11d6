"""Training commands: ``train_vgm`` (the VGM) and ``train_vlm`` (instruction tuning)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from changevg.train._loop import TrainOptions

if TYPE_CHECKING:
    from changevg.train.vgm import train_vgm
    from changevg.train.vlm import train_vlm

__all__ = ["TrainOptions", "train_vgm", "train_vlm"]

_LAZY = {"train_vgm": "changevg.train.vgm", "train_vlm": "changevg.train.vlm"}


def __getattr__(name: str) -> object:
    """Import the trainers on first use (``train_vlm`` pulls in transformers)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'changevg.train' has no attribute {name!r}")
