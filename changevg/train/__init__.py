"""Training commands: ``train_vgm`` (the VGM) and ``train_vlm`` (instruction tuning)."""

from changevg.train._loop import TrainOptions
from changevg.train.vgm import evaluate_vgm, train_vgm

__all__ = ["TrainOptions", "evaluate_vgm", "train_vgm"]
