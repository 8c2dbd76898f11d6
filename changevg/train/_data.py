"""Loading training pairs: images as float tensors in [0, 1], masks as class ids."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from changevg.data import DatasetError, PairRecord, read_mask


def load_image(path: Path) -> np.ndarray:
    """``(3, H, W)`` uint8 RGB; a clear error naming the file when it is not an image."""
    try:
        with Image.open(path) as img:
            return np.moveaxis(np.asarray(img.convert("RGB")), -1, 0)
    except FileNotFoundError:
        raise DatasetError(f"image {path} does not exist (check --images)") from None
    except OSError as exc:
        raise DatasetError(f"{path} is not a readable image: {exc}") from None


def to_tensor(images: Sequence[np.ndarray]) -> torch.Tensor:
    """Stack ``(3, H, W)`` uint8 arrays into a ``[B, 3, H, W]`` float tensor in ``[0, 1]``."""
    return torch.from_numpy(np.stack(images)).float().div_(255.0)


def pair_batch(pairs: Sequence[PairRecord], *, with_masks: bool = True) -> dict[str, torch.Tensor]:
    """Images (and masks, change flags) of a batch of pairs."""
    before = [load_image(p.before) for p in pairs]
    after = [load_image(p.after) for p in pairs]
    shapes = {a.shape for a in before + after}
    if len(shapes) != 1:
        names = ", ".join(p.id for p in pairs)
        raise DatasetError(f"pairs {names}: images differ in size {sorted(shapes)}")
    batch = {"before": to_tensor(before), "after": to_tensor(after)}
    if with_masks:
        missing = [p.id for p in pairs if p.mask is None]
        if missing:
            raise DatasetError(f"pairs {missing} have no change mask; the VGM needs masks")
        batch["mask"] = torch.from_numpy(np.stack([read_mask(p.mask) for p in pairs])).long()
    batch["changed"] = torch.tensor([float(bool(p.changed)) for p in pairs], dtype=torch.float32)
    return batch
