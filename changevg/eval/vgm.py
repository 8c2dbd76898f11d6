"""The VGM alone on labelled synthetic pairs: change F1 and count errors (validation)."""

from __future__ import annotations

import torch

from changevg.data import PairRecord, annotate_mask, read_mask
from changevg.eval.scores import classification_scores, counting_scores
from changevg.train._data import pair_batch
from changevg.train._loop import batches
from changevg.vgm import VisionGuidedModule


@torch.inference_mode()
def evaluate_vgm(
    model: VisionGuidedModule, pairs: list[PairRecord], *, batch_size: int = 16
) -> dict[str, dict[str, float | None]]:
    """Change F1 and building/road count errors of the VGM alone on labelled pairs.

    Used for validation while training (``changevg train vgm --val``): no VLM is involved.
    """
    device = next(model.parameters()).device
    pred_changed, true_changed, pred_b, true_b, pred_r, true_r = [], [], [], [], [], []
    for chunk in batches(list(range(len(pairs))), batch_size):
        batch = pair_batch([pairs[i] for i in chunk], with_masks=False)
        for i, d in zip(
            chunk,
            model.describe(batch["before"].to(device), batch["after"].to(device)),
            strict=True,
        ):
            truth = annotate_mask(read_mask(pairs[i].mask))
            pred_changed.append(d.changed)
            true_changed.append(truth.changed)
            pred_b.append(d.counts["building"])
            true_b.append(truth.counts["building"])
            pred_r.append(d.counts["road"])
            true_r.append(truth.counts["road"])
    return {
        "classification": classification_scores(pred_changed, true_changed),
        "building": counting_scores(pred_b, true_b),
        "road": counting_scores(pred_r, true_r),
    }
