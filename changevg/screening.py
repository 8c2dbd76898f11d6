"""The VGM screen: which tile pairs the VLM is asked about, and what the others are told.

The vision-guided module is cheap; the VLM is not. A pair's *screen score* is the larger of the
change head's score and the best change object's score in its mask: either branch seeing change
is enough (on the validation pairs the change head alone missed 19 % of the changed pairs at
0.5, with the mask 6 %). Pairs scored at or above the threshold go to the VLM; the others get the
VGM's verdict, unchanged with no objects.

Both dates are blanked where either has nodata first (:func:`blank_nodata`): a change can only
be seen where both dates have data.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from changevg.result import NO_CHANGE, ChangeResult

if TYPE_CHECKING:
    from changevg.vgm import VGMDescription

__all__ = ["blank_nodata", "needs_vlm", "screen_score", "screened_out", "without_mask"]


def blank_nodata(before: np.ndarray, after: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both ``(band, y, x)`` dates with every pixel that is nodata (0) in either one set to 0.

    A change can only be seen where both dates have data; left alone, the edge of one date's
    footprint inside the other's looks like change to the model (measured on the demo region:
    edge tiles scored 0.98-1.0 with no true change, 0.04-0.3 once blanked). A pixel is nodata
    when every band is 0; the inputs are not modified.
    """
    invalid = (before == 0).all(axis=0) | (after == 0).all(axis=0)
    if invalid.any():
        before, after = before.copy(), after.copy()
        before[:, invalid] = 0
        after[:, invalid] = 0
    return before, after


def screen_score(description: VGMDescription) -> float:
    """How strongly the VGM says "changed": its change head or its most confident object."""
    return max([float(description.change_score)] + [float(o.score) for o in description.objects])


def needs_vlm(description: VGMDescription, threshold: float, *, all_tiles: bool = False) -> bool:
    """The screening rule: ask the VLM when the screen score reaches ``threshold``.

    Args:
        description: The VGM's description of the pair.
        threshold: Screen score at or above which the pair goes to the VLM (0..1).
        all_tiles: Ask the VLM about every pair (no screening).
    """
    return all_tiles or screen_score(description) >= threshold


def screened_out(description: VGMDescription) -> ChangeResult:
    """The result of a pair the VGM scores below the threshold: unchanged, no objects.

    Its caption is the VGM's own when the VGM says unchanged, else the no-change sentence (the
    screen overrules a VGM that calls change below the threshold).
    """
    return ChangeResult(
        changed=False,
        change_score=float(description.change_score),
        caption=description.caption if not description.changed else f"{NO_CHANGE}.",
        counts={"building": 0, "road": 0},
    )


def without_mask(description: VGMDescription) -> VGMDescription:
    """The description without its full-size mask (small to send between processes).

    The VLM prompt and :func:`screened_out` need only the caption, scores, counts, cells and
    objects; the mask is the bulk of the bytes.
    """
    return replace(description, mask=np.zeros((0, 0), dtype=np.uint8))
