"""The tile store's GSD: survey both dates' GSD from metadata, refuse, pick the resampling.

:func:`build_tiles` calls :func:`survey` before it opens any raster for pixels: every item's
GSD is read from its STAC metadata (or its file header; :func:`catalogs.gsd.item_gsd`), and a
date coarser than :attr:`TileOptions.gsd_range` is refused there, naming the item. The grid is
then laid at the target GSD (the model's, passed in by ``flows``: this package knows nothing of
models), each date resampled onto it with an area average when it is finer than the grid and
``TileOptions.resampling`` (bilinear) when it is coarser, and the store's attrs record it all
(:func:`gsd_attrs`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from affine import Affine

from catalogs.gsd import GSDError, ItemGSD, item_gsd, items_gsd, refuse_coarse
from tiling.errors import TilingError
from tiling.grid import TileGrid

__all__ = [
    "OVERRIDE_FLAG",
    "GSDSurvey",
    "crs_unit_metres",
    "grid_gsd",
    "gsd_attrs",
    "native_grid",
    "odc_method",
    "survey",
]

OVERRIDE_FLAG = "--allow-any-gsd"
"""The command-line option that lifts the accepted-range check (``TileOptions.gsd_range=None``)."""


@dataclass(frozen=True)
class GSDSurvey:
    """Both dates' GSD as the metadata tell it (before any pixel is read).

    Attributes:
        before: Per item of the before date (items whose GSD is unknown are left out when the
            range is not checked).
        after: The same for the after date.
    """

    before: tuple[ItemGSD, ...]
    after: tuple[ItemGSD, ...]

    def side(self, side: str) -> float | None:
        """The coarsest GSD among a date's items, metres (``None``: unknown)."""
        found = self.before if side == "before" else self.after
        return max((g.gsd for g in found), default=None)

    def resampling(self, side: str, grid_gsd: float | None, default: str) -> str:
        """How a date is brought onto a grid of ``grid_gsd`` metres.

        ``"average"`` when the date is finer than the grid (every source pixel counts, no
        aliasing), else ``default``; ``"none"`` when it is already at the grid's GSD.
        """
        src = self.side(side)
        if src is None or grid_gsd is None:
            return default
        if math.isclose(src, grid_gsd, rel_tol=1e-6):
            return "none"
        return "average" if src < grid_gsd else default


def survey(
    pair: Any,
    *,
    accepted: tuple[float, float] | None,
    target: float | None,
    patch_url: Callable[[str], str] | None = None,
) -> GSDSurvey:
    """Read every item's GSD from metadata; refuse dates coarser than ``accepted``.

    Args:
        pair: A :class:`catalogs.ScenePair`.
        accepted: ``(finest, coarsest)`` source GSD in metres; ``None`` checks nothing.
        target: The GSD the tiles will be at (for the message; ``None``: native).
        patch_url: Hook to sign asset URLs for file-header reads.

    Raises:
        GSDError: With ``accepted``: an item's GSD cannot be told, or is coarser than the
            range (the message names the item, its GSD, the range and :data:`OVERRIDE_FLAG`).
    """
    found: dict[str, tuple[ItemGSD, ...]] = {}
    for side in ("before", "after"):
        items = getattr(pair, side).items
        if accepted is None:
            found[side] = tuple(
                g for g in (item_gsd(i, patch_url=patch_url) for i in items) if g is not None
            )
            continue
        found[side] = tuple(items_gsd(items, side=side, patch_url=patch_url))
        for g in found[side]:
            refuse_coarse(
                g.gsd,
                accepted,
                what=f"{side} item {g.item_id!r} ({g.source})",
                flag=OVERRIDE_FLAG,
                model_gsd=target,
            )
    return GSDSurvey(found["before"], found["after"])


def crs_unit_metres(crs: Any) -> float:
    """Metres per unit of a projected CRS (an ``odc.geo`` CRS or anything pyproj reads).

    Raises:
        GSDError: The CRS is geographic (degrees): a GSD in metres has no fixed size in it.
    """
    from pyproj import CRS

    parsed = CRS.from_user_input(getattr(crs, "wkt", None) or str(crs))
    if parsed.is_geographic:
        raise GSDError(
            f"the scenes' CRS {crs} is in degrees: tiles cannot be laid at a GSD in metres; "
            "tile at the native pixel size with --gsd native"
        )
    factor = parsed.axis_info[0].unit_conversion_factor if parsed.axis_info else 1.0
    return float(factor or 1.0)


def gsd_attrs(
    found: GSDSurvey,
    *,
    grid_gsd: float | None,
    target: float | None,
    accepted: tuple[float, float] | None,
    resampling: dict[str, str],
) -> dict[str, Any]:
    """The ``gsd`` entry of the store attrs: source, target, resampling, accepted range."""
    return {
        "target": grid_gsd,
        "mode": "native" if target is None else "resampled",
        "source": {"before": found.side("before"), "after": found.side("after")},
        "items": {
            g.item_id: {"gsd": g.gsd, "from": g.source} for g in (*found.before, *found.after)
        },
        "resampling": resampling,
        "accepted": list(accepted) if accepted is not None else None,
    }


def native_grid(items: Sequence[Any], crs: str) -> tuple[float, tuple[float, float]]:
    """Resolution (``crs`` units) and pixel anchor of the first item, if it is in ``crs``.

    Raises:
        TilingError: The item has neither a ``proj:transform`` in ``crs`` nor a ``gsd``.
    """
    from catalogs.items import item_crs

    item = items[0]
    transform = item.properties.get("proj:transform")
    gsd = item.properties.get("gsd")
    for asset in item.assets.values():  # projection info may sit on the assets instead
        transform = transform or asset.extra_fields.get("proj:transform")
        gsd = gsd or asset.extra_fields.get("gsd")
    if transform and item_crs(item) == crs:
        a = Affine(*transform[:6])
        return abs(a.a), (a.c, a.f)
    if not gsd:
        raise TilingError(
            f"item {item.id!r}: cannot tell its pixel size (no proj:transform in {crs} and no gsd)"
        )
    return float(gsd), (0.0, 0.0)


def grid_gsd(
    grid: TileGrid, found: GSDSurvey, *, resampling: str
) -> tuple[float | None, dict[str, str]]:
    """The grid's GSD in metres (``None`` in a geographic CRS) and each date's resampling
    (:meth:`GSDSurvey.resampling`, ``resampling`` being the options' default)."""
    try:
        metres: float | None = grid.resolution * crs_unit_metres(grid.geobox.crs)
    except GSDError:
        metres = None
    methods = {s: found.resampling(s, metres, resampling) for s in ("before", "after")}
    return metres, methods


def odc_method(method: str, default: str) -> str:
    """odc-stac's resampling for a date (``"none"``: ``default``, a no-op on its own grid)."""
    return default if method == "none" else method
