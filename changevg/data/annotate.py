"""Ground truth for one tile pair from its change mask: objects, counts, cells, captions.

Counts and grid cells come from :func:`changevg.objects.mask_to_objects`, exactly the rules the
model's fine-grained branch uses, so labels and predictions are comparable. Captions follow
LEVIR-CC's style (short, lower-case, several phrasings per pair).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from changevg.objects import cells as object_cells
from changevg.objects import counts as object_counts
from changevg.objects import mask_to_objects
from changevg.result import GRID_CELLS, ChangeObject

NO_CHANGE_CAPTIONS = (
    "there is no difference",
    "the scene is the same as before",
    "no change has occurred",
    "the two scenes seem identical",
    "nothing has changed in this area",
    "there is no change",
    "the area remains unchanged",
)

_CELL_PHRASE = dict(
    zip(
        GRID_CELLS,
        (
            "in the top left corner",
            "at the top",
            "in the top right corner",
            "on the left",
            "in the center",
            "on the right",
            "in the lower left corner",
            "at the bottom",
            "in the lower right corner",
        ),
        strict=True,
    )
)
_NUMBER = {1: "a", 2: "two", 3: "three", 4: "four"}
_VERBS = {
    ("building", "new"): (
        "{n} {noun} {be} built {loc}",
        "{n} new {noun} {appear} {loc}",
        "{n} {noun} {have} been constructed {loc}",
    ),
    ("building", "demolished"): (
        "{n} {noun} {be} demolished {loc}",
        "{n} {noun} {have} been removed {loc}",
        "{n} {noun} {be} torn down {loc}",
    ),
    ("road", "new"): (
        "{n} {noun} {be} built {loc}",
        "{n} new {noun} {appear} {loc}",
        "{n} {noun} {have} been constructed {loc}",
    ),
    ("road", "demolished"): ("{n} {noun} {be} removed {loc}",),
}
_NOUNS = {"building": ("building", "house"), "road": ("road",)}

CHANGE_NEW, CHANGE_DEMOLISHED = 1, 2
"""Values of the optional change-type raster: 0 none, 1 new, 2 demolished."""


@dataclass(frozen=True)
class TileAnnotation:
    """Labels of one tile pair for every ChangeIMTI task."""

    changed: bool
    counts: dict[str, int]
    cells: list[str]
    captions: list[str]
    objects: list[ChangeObject] = field(default_factory=list)


def _location(cells: list[str]) -> str:
    if len(cells) == 1:
        return _CELL_PHRASE[cells[0]]
    if len(cells) == 2:
        a, b = (_CELL_PHRASE[c] for c in cells)
        return f"{a} and {b}"
    return "in several places"


def _clause(template: str, cls: str, n: int, noun: str, loc: str) -> str:
    plural = n > 1
    num = _NUMBER.get(n, "many")
    return template.format(
        n=num,
        noun=noun + ("s" if plural else ""),
        be="are" if plural else "is",
        have="have" if plural else "has",
        appear="appear" if plural else "appears",
        loc=loc,
    )


def captions_for(
    groups: dict[tuple[str, str], list[ChangeObject]], rng: np.random.Generator, k: int = 5
) -> list[str]:
    """``k`` distinct captions for objects grouped by (class, change type)."""
    if not groups:
        picks = rng.choice(len(NO_CHANGE_CAPTIONS), size=k, replace=False)
        return [NO_CHANGE_CAPTIONS[i] for i in picks]
    order = sorted(groups, key=lambda g: (g[0] != "building", g[1] != "new"))
    out: list[str] = []
    for _ in range(50 * k):
        clauses = []
        for cls, change in order:
            objs = groups[(cls, change)]
            templates = _VERBS[(cls, change)]
            template = templates[rng.integers(len(templates))]
            noun = _NOUNS[cls][rng.integers(len(_NOUNS[cls]))]
            loc = _location(object_cells(objs))
            clauses.append(_clause(template, cls, len(objs), noun, loc))
        caption = " and ".join(clauses)
        if caption not in out:
            out.append(caption)
        if len(out) == k:
            break
    while len(out) < k:  # few distinct phrasings exist: repeat, as LEVIR-CC does
        out.append(out[len(out) % max(1, len(out))])
    return out


def annotate_mask(
    mask: np.ndarray,
    *,
    change_type: np.ndarray | None = None,
    rng: np.random.Generator | None = None,
    min_pixels: int = 16,
    n_captions: int = 5,
) -> TileAnnotation:
    """Labels of a tile pair from its change mask (0 background, 1 road, 2 building).

    Args:
        mask: ``(H, W)`` class mask of changed pixels.
        change_type: Optional ``(H, W)`` raster, 1 = new, 2 = demolished (majority per object,
            ties go to new); without it every change counts as new in the captions and the
            objects' ``change`` is None.
        rng: Random generator choosing caption phrasings (deterministic given its seed).
        min_pixels: Smaller regions are ignored (slivers cut by the tile edge).
        n_captions: Captions per pair (LEVIR-CC has 5).
    """
    rng = rng or np.random.default_rng(0)
    appear = None if change_type is None else (change_type != CHANGE_DEMOLISHED).astype(float)
    objects = mask_to_objects(mask, min_pixels=min_pixels, appear=appear)
    groups: dict[tuple[str, str], list[ChangeObject]] = {}
    for obj in objects:
        change = "new" if obj.change in (None, "new") else "demolished"
        groups.setdefault((obj.cls, change), []).append(obj)
    return TileAnnotation(
        changed=bool(objects),
        counts=object_counts(objects),
        cells=object_cells(objects),
        captions=captions_for(groups, rng, n_captions),
        objects=objects,
    )
