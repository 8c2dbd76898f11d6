"""Ground sample distance (GSD) of STAC items, read from metadata, and the accepted-range check.

A change model learns object sizes in pixels, so imagery must reach it at the GSD it was trained
at (WHU-CD is 0.3 m, NAIP 0.6 m, Sentinel-2 10 m). This module tells an item's GSD *without
reading a pixel*, from, in order of trust:

1. ``proj:transform`` of the RGB assets (or of the item) in a projected CRS, times the CRS's
   unit (metres, feet), or at the footprint's latitude for a geographic CRS;
2. ``gsd`` of the RGB assets, then of the item (STAC common metadata, metres);
3. ``raster:bands[].spatial_resolution`` of the RGB assets (metres);
4. the file header of the first RGB asset (GDAL reads its geotransform and CRS, no pixels).

It sits in the lowest layer so that ``tiling`` (the store) and ``changevg`` (plain images)
refuse imagery too coarse for a model by the same rule, :func:`refuse_coarse`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pystac

from catalogs.errors import InputError
from catalogs.items import ItemLike, item_bbox, item_crs, item_id, rgb_bands

__all__ = [
    "GSDError",
    "ItemGSD",
    "check_gsd",
    "item_gsd",
    "items_gsd",
    "refuse_coarse",
]

log = logging.getLogger(__name__)

_M_PER_DEGREE = 111_320.0  # along a meridian, and along the equator


class GSDError(InputError):
    """Imagery whose GSD is unknown, invalid or coarser than the model accepts."""


def check_gsd(value: float | str, *, name: str = "gsd") -> float:
    """A GSD in metres as a positive finite float.

    Raises:
        GSDError: ``value`` is not a number, or not positive and finite; names ``name``.
    """
    try:
        gsd = float(value)
    except (TypeError, ValueError):
        raise GSDError(f"{name} must be a number of metres per pixel, not {value!r}") from None
    if not math.isfinite(gsd) or gsd <= 0:
        raise GSDError(f"{name} must be a positive number of metres per pixel, not {value!r}")
    return gsd


@dataclass(frozen=True)
class ItemGSD:
    """The GSD of one item and where it was read.

    Attributes:
        item_id: The item.
        gsd: Metres per pixel (the coarser axis of its RGB assets).
        source: ``"proj:transform"``, ``"gsd"``, ``"raster:spatial_resolution"`` or
            ``"file header"``.
    """

    item_id: str
    gsd: float
    source: str


def _positive(value: object) -> float | None:
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) and out > 0 else None


def _metres(pixel: tuple[float, float], crs: str | None, lat: float | None) -> float | None:
    """The coarser axis of a ``(x, y)`` pixel size in ``crs`` units, in metres."""
    if crs is None:
        return None
    from pyproj import CRS

    try:
        parsed = CRS.from_user_input(crs)
    except Exception:  # noqa: BLE001 - an unreadable CRS tells nothing
        return None
    px, py = abs(pixel[0]), abs(pixel[1])
    if parsed.is_geographic:
        if lat is None:
            return None
        return max(px * _M_PER_DEGREE * math.cos(math.radians(lat)), py * _M_PER_DEGREE)
    factor = parsed.axis_info[0].unit_conversion_factor if parsed.axis_info else None
    return max(px, py) * factor if factor else None


def _latitude(item: ItemLike) -> float | None:
    try:
        _, miny, _, maxy = item_bbox(item)
    except Exception:  # noqa: BLE001 - no footprint: a geographic transform can't be scaled
        return None
    return (miny + maxy) / 2


def _as_dict(item: ItemLike) -> tuple[Mapping[str, Any], Mapping[str, Mapping[str, Any]]]:
    if isinstance(item, pystac.Item):
        assets = {k: {"href": a.href, **a.extra_fields} for k, a in item.assets.items()}
        return item.properties, assets
    return item.get("properties", {}) or {}, item.get("assets", {}) or {}


def _from_transform(obj: Mapping[str, Any], crs: str | None, lat: float | None) -> float | None:
    t = obj.get("proj:transform")
    if not isinstance(t, Sequence) or len(t) < 6:
        return None
    a, b, _, d, e, _ = (float(v) for v in t[:6])
    if b or d:  # rotated: the pixel size is the length of each column vector
        a, e = math.hypot(a, d), math.hypot(b, e)
    return _metres((a, e), crs, lat) if a and e else None


def _from_header(href: str, patch_url: Callable[[str], str] | None) -> float | None:
    import rasterio

    try:
        with rasterio.open(patch_url(href) if patch_url else href) as src:  # header only
            if src.crs is None or src.transform.is_identity:
                return None
            lat = None
            if src.crs.is_geographic:
                lat = (src.bounds.bottom + src.bounds.top) / 2
            return _metres((src.res[0], src.res[1]), src.crs.to_wkt(), lat)
    except Exception:  # noqa: BLE001 - unreadable here; the read itself will say why
        return None


def item_gsd(
    item: ItemLike,
    *,
    read_header: bool = True,
    patch_url: Callable[[str], str] | None = None,
) -> ItemGSD | None:
    """The GSD of ``item``'s RGB imagery in metres, from metadata only; ``None`` if unknown.

    Args:
        item: A STAC item (``pystac.Item`` or its dict).
        read_header: Fall back on the file header of the first RGB asset (GDAL opens the file
            and reads its geotransform, never its pixels) when the metadata say nothing.
        patch_url: Hook to sign asset URLs for that header read.
    """
    props, assets = _as_dict(item)
    crs, lat = item_crs(item), _latitude(item)
    try:
        keys = list(dict.fromkeys(ref.asset for ref in rgb_bands(item)))
    except Exception:  # noqa: BLE001 - no RGB assets: item-level metadata only
        keys = []
    rgb = [assets[k] for k in keys if k in assets]
    found = [_from_transform(a, crs, lat) for a in rgb]
    if found and all(found):
        return ItemGSD(item_id(item), max(found), "proj:transform")  # type: ignore[type-var]
    value = _from_transform(props, crs, lat)
    if value:
        return ItemGSD(item_id(item), value, "proj:transform")
    found = [_positive(a.get("gsd")) for a in rgb]
    if found and all(found):
        return ItemGSD(item_id(item), max(found), "gsd")  # type: ignore[type-var]
    value = _positive(props.get("gsd"))
    if value:
        return ItemGSD(item_id(item), value, "gsd")
    found = [
        max((_positive(b.get("spatial_resolution")) or 0.0 for b in a.get("raster:bands") or []),
            default=0.0)
        for a in rgb
    ]  # fmt: skip
    if found and all(found):
        return ItemGSD(item_id(item), max(found), "raster:spatial_resolution")
    if read_header and rgb and rgb[0].get("href"):
        value = _from_header(str(rgb[0]["href"]), patch_url)
        if value:
            return ItemGSD(item_id(item), value, "file header")
    return None


def items_gsd(
    items: Sequence[ItemLike],
    *,
    side: str,
    read_header: bool = True,
    patch_url: Callable[[str], str] | None = None,
) -> list[ItemGSD]:
    """:func:`item_gsd` of every item of one date.

    Raises:
        GSDError: An item's GSD cannot be told; the message names it and what to add.
    """
    out = []
    for item in items:
        found = item_gsd(item, read_header=read_header, patch_url=patch_url)
        if found is None:
            raise GSDError(
                f"{side} item {item_id(item)!r}: cannot tell its ground sample distance (no "
                "proj:transform with a CRS, no gsd, no raster:bands spatial_resolution, and its "
                "file header gives none). Add 'gsd' (metres) to the item, or tile at its native "
                "pixel size with --gsd native --allow-any-gsd"
            )
        out.append(found)
    return out


def refuse_coarse(
    gsd: float,
    accepted: tuple[float, float],
    *,
    what: str,
    flag: str,
    model_gsd: float | None = None,
) -> None:
    """Refuse imagery coarser than ``accepted`` allows; note imagery finer than it.

    Coarser imagery cannot be made sharper by resampling (a 10 m Sentinel-2 pixel holds a whole
    house), so it is refused. Finer imagery is averaged down to the model's GSD, which loses
    nothing the model uses; it is only noted, as outside the range the model was checked at.

    Args:
        gsd: The imagery's GSD in metres.
        accepted: ``(finest, coarsest)`` GSD the model accepts, metres.
        what: What the imagery is, for the message (``"before item 'S2A_…'"``, ``"--before"``).
        flag: The option that overrides the refusal (``"--allow-any-gsd"``).
        model_gsd: The model's training GSD, for the message.

    Raises:
        GSDError: ``gsd`` is coarser than ``accepted[1]``.
    """
    lo, hi = accepted
    trained = f"; trained at {model_gsd:g} m" if model_gsd else ""
    if gsd > hi * (1 + 1e-6):
        raise GSDError(
            f"{what} is {gsd:g} m per pixel, coarser than the model accepts ({lo:g}-{hi:g} m"
            f"{trained}): buildings are too few pixels to see. Use imagery of {hi:g} m or "
            f"finer, or pass {flag} to run anyway"
        )
    if gsd < lo * (1 - 1e-6):
        log.info(
            "%s is %g m per pixel, finer than the %g-%g m the model was checked at; it is "
            "averaged down to the model's GSD",
            what,
            gsd,
            lo,
            hi,
        )
