"""Loading training pairs: images as float tensors in [0, 1], masks as class ids."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from changevg.data import DatasetError, PairRecord, annotate_mask, read_change_type, read_mask
from changevg.train._augment import AugmentOptions, augment_pair


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


def pair_batch(
    pairs: Sequence[PairRecord],
    *,
    with_masks: bool = True,
    augment: AugmentOptions | None = None,
    rng: np.random.Generator | None = None,
) -> dict[str, Any]:
    """Images (and masks, change types, change flags) of a batch of pairs.

    With ``augment`` each pair is augmented (:func:`changevg.train._augment.augment_pair`,
    drawn from ``rng``) and its labels are re-derived from the augmented mask: the batch then
    also holds ``"captions"``, one list of reference captions per pair.
    """
    before = [load_image(p.before) for p in pairs]
    after = [load_image(p.after) for p in pairs]
    shapes = {a.shape for a in before + after}
    if len(shapes) != 1:
        names = ", ".join(p.id for p in pairs)
        raise DatasetError(f"pairs {names}: images differ in size {sorted(shapes)}")
    if not with_masks:
        if augment is not None:
            raise ValueError("augmentation needs the masks (with_masks=True)")
        return {
            "before": to_tensor(before),
            "after": to_tensor(after),
            "changed": torch.tensor([float(bool(p.changed)) for p in pairs]),
        }
    missing = [p.id for p in pairs if p.mask is None]
    if missing:
        raise DatasetError(f"pairs {missing} have no change mask; the VGM needs masks")
    masks = [read_mask(p.mask) for p in pairs]  # type: ignore[arg-type]
    typed = all(p.change_type is not None for p in pairs)
    kinds = [read_change_type(p.change_type) for p in pairs] if typed else None  # type: ignore[arg-type]
    changed = [float(bool(p.changed)) for p in pairs]
    batch: dict[str, Any] = {}
    if augment is not None:
        rng = rng if rng is not None else np.random.default_rng(0)
        captions = []
        for i in range(len(pairs)):
            aug = augment_pair(
                before[i], after[i], masks[i], None if kinds is None else kinds[i], rng, augment
            )
            before[i], after[i], masks[i] = aug.before, aug.after, aug.mask
            if kinds is not None and aug.change_type is not None:
                kinds[i] = aug.change_type
            ann = annotate_mask(aug.mask, change_type=aug.change_type, rng=rng)
            changed[i] = float(ann.changed)
            captions.append(ann.captions)
        batch["captions"] = captions
    batch |= {
        "before": to_tensor(before),
        "after": to_tensor(after),
        "mask": torch.from_numpy(np.stack(masks)).long(),
        "changed": torch.tensor(changed, dtype=torch.float32),
    }
    if kinds is not None:
        batch["change_type"] = torch.from_numpy(np.stack(kinds)).long()
    return batch
