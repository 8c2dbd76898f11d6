"""The typed outputs of the model: change objects and the per-tile-pair ``ChangeResult``.

These are the data contract between ``changevg`` and the rest of the pipeline (DESIGN.md §2):
plain dataclasses, JSON-serialisable, no torch types.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

CLASSES: tuple[str, ...] = ("background", "road", "building")
"""Change-mask classes, in mask value order (LEVIR-MCI: road = grey 128, building = white 255)."""

GRID_CELLS: tuple[str, ...] = (
    "top left corner",
    "top",
    "top right corner",
    "left",
    "center",
    "right",
    "lower left corner",
    "lower",
    "lower right corner",
)
"""ChangeIMTI's names of the 3x3 grid cells, row-major from the top left."""

NO_CHANGE = "No change"

CHANGE_TYPES: dict[str, tuple[str, str]] = {
    "building": ("new", "demolished"),
    "road": ("new", "removed"),
}
"""Per class, the words for an object that appeared / disappeared between the dates."""

ChangeType = Literal["new", "demolished", "removed"]


@dataclass(frozen=True)
class ChangeObject:
    """One changed object: a connected region of one class in the change mask.

    Attributes:
        cls: ``"road"`` or ``"building"``.
        polygon: Exterior ring in pixel coordinates ``[(col, row), ...]`` of the tile.
        bbox: ``(min_col, min_row, max_col, max_row)`` in pixels, max exclusive.
        area_px: Number of pixels.
        score: Mean class probability over the region (1.0 for ground truth).
        cell: The 3x3 grid cell of the region's centroid.
        change: ``"new"`` (present after only), ``"demolished"`` (a building present before
            only) or ``"removed"`` (a road present before only); None when the model or the
            labels cannot tell (e.g. a mask without change type).
    """

    cls: Literal["road", "building"]
    polygon: list[tuple[float, float]]
    bbox: tuple[int, int, int, int]
    area_px: int
    score: float
    cell: str
    change: ChangeType | None = None


@dataclass
class ChangeResult:
    """Everything the model says about one tile pair.

    Attributes:
        changed: Whether roads or buildings changed.
        change_score: Probability-like score of change in ``[0, 1]``.
        caption: One-sentence change caption.
        counts: Number of changed objects per class (``building``, ``road``).
        locations: Grid cells (``GRID_CELLS`` names) where changes are.
        objects: The change objects from the change mask.
        answers: Raw model answers per task (``caption``, ``yes_no``, ``count``, ``locate``…).
        unparsed: Tasks whose answer could not be parsed; their raw text is in ``answers``.
    """

    changed: bool
    change_score: float
    caption: str
    counts: dict[str, int] = field(default_factory=lambda: {"building": 0, "road": 0})
    locations: list[str] = field(default_factory=list)
    objects: list[ChangeObject] = field(default_factory=list)
    answers: dict[str, str] = field(default_factory=dict)
    unparsed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ChangeResult:
        objects = [
            ChangeObject(
                **{**o, "polygon": [tuple(p) for p in o["polygon"]], "bbox": tuple(o["bbox"])}
            )
            for o in d.get("objects", [])
        ]
        return cls(**{**d, "objects": objects})
