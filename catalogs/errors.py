"""The project's errors: one root, two kinds. Every package may import this module.

It sits in the lowest layer (``catalogs → tiling → changevg → flows``) so that every package can
raise these without importing a higher one::

    ChangeVGError                  every error this project raises on purpose
    ├── InputError (ValueError)    a user-supplied value is invalid              → exit 2
    │   ├── DatasetError           changevg.data: a dataset file is unusable
    │   └── ImagePairError         changevg.imageio: an image pair is unusable
    └── RunError (RuntimeError)    a run failed: catalog, data, tiling, inventory → exit 1
        ├── CatalogError           a catalog could not be reached or answered nonsense
        │   ├── NoCoverageError    nothing in a date window covers the AOI
        │   └── ItemError          one STAC item is unusable
        ├── TilingError            tiling.errors: the tile store could not be built
        └── InventoryError         flows.inventory.schema: the inventory cannot be written
            ├── ModelMismatchError a run id's results came from another model
            └── InventoryNotFoundError  no inventory at a root

The command line maps the two kinds to exit codes in one place (``flows.cli._app``). Every
message names the thing that is wrong (URL, item id, file, parameter) and what to do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = [
    "CatalogError",
    "ChangeVGError",
    "InputError",
    "ItemError",
    "NoCoverageError",
    "RunError",
]


class ChangeVGError(Exception):
    """Root of every error this project raises on purpose (not a bug)."""


class InputError(ChangeVGError, ValueError):
    """A user-supplied value (AOI, date window, path, option, data file) is invalid."""


class RunError(ChangeVGError, RuntimeError):
    """A run failed for a reason outside the user's input: catalog, data, tiling, storage."""


class CatalogError(RunError):
    """A catalog could not be reached or answered something unusable."""


class NoCoverageError(CatalogError):
    """Nothing in a date window covers the AOI.

    Attributes:
        window: ``"before"`` or ``"after"``.
        interval: The window searched (ISO ``START/END``).
        aoi_bounds: The AOI's ``(minx, miny, maxx, maxy)`` in lon/lat.
        coverage: The best coverage of the AOI any acquisition in the window reached (0..1).
        min_coverage: The coverage asked for.
        best_items: Ids of the items of that best acquisition (empty when none intersected).
        found: Ids of every item dated inside the window.
        skipped: Items in the window that were refused: ``{"id": …, "reason": …}`` each.
    """

    def __init__(
        self,
        message: str,
        *,
        window: str,
        interval: str,
        aoi_bounds: tuple[float, float, float, float],
        coverage: float,
        min_coverage: float = 0.0,
        best_items: Sequence[str] = (),
        found: Sequence[str] = (),
        skipped: Sequence[Mapping[str, str]] = (),
    ) -> None:
        super().__init__(message)
        self.window = window
        self.interval = interval
        self.aoi_bounds = aoi_bounds
        self.coverage = coverage
        self.min_coverage = min_coverage
        self.best_items = tuple(best_items)
        self.found = tuple(found)
        self.skipped = tuple(dict(s) for s in skipped)

    def to_dict(self) -> Mapping[str, object]:
        """The fields as plain JSON values (for logs and run summaries)."""
        return {
            "window": self.window,
            "interval": self.interval,
            "aoi_bounds": list(self.aoi_bounds),
            "coverage": self.coverage,
            "min_coverage": self.min_coverage,
            "best_items": list(self.best_items),
            "found": list(self.found),
            "skipped": [dict(s) for s in self.skipped],
        }


class ItemError(CatalogError):
    """One STAC item is unusable (missing asset, not a raster, unreadable file)."""

    def __init__(self, item_id: str, message: str) -> None:
        super().__init__(f"item {item_id!r}: {message}")
        self.item_id = item_id
