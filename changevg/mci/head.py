"""The MCI change-segmentation head: per-level bi-temporal fusion and a transposed-conv decoder.

For each backbone level ``k`` (the deepest one after the CD neck):

``diff_k = BN(conv1x1(B - A)) + cos(A, B)`` (cosine over channels, broadcast), then
``fuse_k = conv1x1(ReLU(BN(conv3x3([A, diff_k, B]))))`` with ``2 c_k`` channels.

Going up: ``x = up_3(fuse_3)``, then ``x = up_k(fuse_k + x)`` for ``k = 2, 1, 0``, where
``up_k`` is conv1x1 + BN + ReLU + a 4x4 stride-2 transposed conv to ``2 c_{max(k-1, 0)}``
channels; ``out`` is another 4x4 stride-2 transposed conv to ``c_0`` and a 1x1 conv to the
classes. A 256x256 input gives logits at 256x256.

State-dict layout (converter: ``conv_dif``/``conv_fuse``/``to_fused``/``to_seg`` →
``seg_head.diff``/``fuse``/``up``/``out``, same indices inside).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ChangeSegHead"]


class ChangeSegHead(nn.Module):
    """Fuse A/B features per level and decode a ``num_classes`` mask at input resolution."""

    def __init__(self, dims: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        self.diff = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, c, 1), nn.BatchNorm2d(c)) for c in dims
        )
        self.fuse = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(3 * c, 2 * c, 3, padding=1),
                nn.BatchNorm2d(2 * c),
                nn.ReLU(),
                nn.Conv2d(2 * c, 2 * c, 1),
            )
            for c in dims
        )
        self.up = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(2 * c, 2 * c, 1),
                nn.BatchNorm2d(2 * c),
                nn.ReLU(),
                nn.ConvTranspose2d(2 * c, 2 * dims[max(k - 1, 0)], 4, stride=2, padding=1),
            )
            for k, c in enumerate(dims)
        )
        self.out = nn.Sequential(
            nn.ConvTranspose2d(2 * dims[0], dims[0], 4, stride=2, padding=1),
            nn.Conv2d(dims[0], num_classes, 1),
        )

    def forward(self, feats_a: list[Tensor], feats_b: list[Tensor]) -> Tensor:
        """Logits ``[B, classes, 4 H_0, 4 W_0]`` from per-level ``[B, c_k, H_k, W_k]`` maps."""
        fused = []
        for k, (a, b) in enumerate(zip(feats_a, feats_b, strict=True)):
            diff = self.diff[k](b - a) + F.cosine_similarity(a, b, dim=1).unsqueeze(1)
            fused.append(self.fuse[k](torch.cat([a, diff, b], dim=1)))
        x = self.up[-1](fused[-1])
        for k in range(len(fused) - 2, -1, -1):
            x = self.up[k](fused[k] + x)
        return self.out(x)
