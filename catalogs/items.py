"""Read what the pipeline needs from messy real STAC items, one small helper per question.

Every helper accepts a ``pystac.Item`` or a plain item dict, so the same code serves API
results, files on disk and test builders. Real catalogs differ: ``proj:code`` (projection v2) or
``proj:epsg`` (v1) or only ``proj:wkt2``, at item or asset level; ``bbox`` may be missing; cloud
cover may be absent; RGB may be three single-band assets or one multi-band asset.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePath
from typing import Any
from urllib.parse import urlparse

import pystac
import shapely
from shapely.geometry import box, shape
from shapely.geometry.base import BaseGeometry

from catalogs.errors import ItemError

__all__ = [
    "RGB",
    "BandRef",
    "check_hrefs",
    "cloud_cover",
    "is_local_catalog",
    "is_raster_asset",
    "item_bbox",
    "item_crs",
    "item_datetime",
    "item_footprint",
    "item_id",
    "rgb_bands",
]

RGB = ("red", "green", "blue")
ItemLike = pystac.Item | Mapping[str, Any]

_RASTER_TYPES = (
    "image/tiff",
    "image/jp2",
    "image/vnd.stac.geotiff",
    "application/x-geotiff",
    "image/x.geotiff",
    "application/vnd.zarr",
)
_RASTER_SUFFIXES = (".tif", ".tiff", ".jp2", ".vrt")
_NOT_PIXELS_ROLES = {"thumbnail", "overview", "metadata", "tiles"}
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


@dataclass(frozen=True)
class BandRef:
    """One colour band of an item: which asset file and which band inside it.

    Attributes:
        asset: asset key in ``item.assets``.
        band: 1-based band index within the asset file (rasterio convention).
        common_name: ``"red"``, ``"green"`` or ``"blue"``.
    """

    asset: str
    band: int
    common_name: str


def item_id(item: ItemLike) -> str:
    """The item id, or ``"<no id>"`` so error messages never fail."""
    return str(item.id if isinstance(item, pystac.Item) else item.get("id", "<no id>"))


def item_crs(item: ItemLike) -> str | None:
    """The item's native CRS as ``"EPSG:xxxx"`` (or WKT2 when it has no EPSG code).

    Looks at ``proj:code``, then ``proj:epsg``, then ``proj:wkt2``/``proj:projjson``, first in the
    item properties, then in its assets (first asset that declares one). ``None`` when unknown.
    """
    props, assets = _props(item), _assets(item)
    for source in [props, *assets.values()]:
        crs = _crs_from(source)
        if crs:
            return crs
    return None


def _crs_from(obj: Mapping[str, Any]) -> str | None:
    code = obj.get("proj:code")
    if isinstance(code, str) and code.strip():
        return code.strip().upper() if code.upper().startswith("EPSG:") else code.strip()
    epsg = obj.get("proj:epsg")
    if isinstance(epsg, int | float) and not isinstance(epsg, bool) and epsg > 0:
        return f"EPSG:{int(epsg)}"
    if isinstance(epsg, str) and epsg.strip().isdigit():
        return f"EPSG:{int(epsg)}"
    for key in ("proj:wkt2", "proj:projjson"):
        value = obj.get(key)
        if value:
            try:
                from pyproj import CRS

                crs = CRS.from_user_input(value)
            except Exception:  # noqa: BLE001 - unreadable definition: treat as unknown
                continue
            epsg_code = crs.to_epsg()
            return f"EPSG:{epsg_code}" if epsg_code else crs.to_wkt()
    return None


def item_bbox(item: ItemLike) -> tuple[float, float, float, float]:
    """The item's lon/lat bbox ``(minx, miny, maxx, maxy)``, derived from the geometry if missing.

    Raises:
        ItemError: the item has neither a bbox nor a geometry.
    """
    bbox = item.bbox if isinstance(item, pystac.Item) else item.get("bbox")
    if bbox and len(bbox) in (4, 6):
        vals = [float(v) for v in bbox]
        return (vals[0], vals[1], vals[3], vals[4]) if len(vals) == 6 else tuple(vals)  # type: ignore[return-value]
    geom = _geometry(item)
    if geom:
        try:
            return tuple(float(v) for v in shape(geom).bounds)  # type: ignore[return-value]
        except Exception as err:  # noqa: BLE001
            raise ItemError(item_id(item), f"unreadable geometry ({err})") from None
    raise ItemError(item_id(item), "has neither bbox nor geometry; cannot place it on the map")


def item_footprint(item: ItemLike) -> BaseGeometry:
    """The item's footprint in EPSG:4326: its geometry (repaired if invalid), else its bbox.

    A bbox with ``minx > maxx`` crosses the antimeridian and becomes two boxes.

    Raises:
        ItemError: no geometry and no bbox, or an unreadable geometry.
    """
    geom = _geometry(item)
    if geom:
        try:
            footprint = shapely.force_2d(shape(geom))
        except Exception as err:  # noqa: BLE001
            raise ItemError(item_id(item), f"unreadable geometry ({err})") from None
        if not footprint.is_valid:
            footprint = shapely.make_valid(footprint)
        if footprint.is_empty:
            raise ItemError(item_id(item), "has an empty geometry")
        return footprint
    minx, miny, maxx, maxy = item_bbox(item)
    if minx > maxx:
        return shapely.union_all([box(minx, miny, 180, maxy), box(-180, miny, maxx, maxy)])
    return box(minx, miny, maxx, maxy)


def item_datetime(item: ItemLike) -> datetime | None:
    """The acquisition time in UTC (``datetime``, else ``start_datetime``); ``None`` if absent."""
    props = _props(item)
    text = props.get("datetime") or props.get("start_datetime")
    try:
        when = datetime.fromisoformat(str(text).replace("Z", "+00:00")) if text else None
    except ValueError:
        return None
    if when is None:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def cloud_cover(item: ItemLike) -> float | None:
    """``eo:cloud_cover`` in percent (0..100), or ``None`` when absent or nonsensical.

    Missing means *unknown*, never 0: callers sort unknown after known values.
    """
    value = _props(item).get("eo:cloud_cover")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        cover = float(value)
    except ValueError:
        return None
    if not math.isfinite(cover) or not 0 <= cover <= 100:
        return None
    return cover


def is_raster_asset(asset: Mapping[str, Any]) -> bool:
    """Whether an asset dict holds pixels we can read (GeoTIFF/COG, JP2, ...).

    Thumbnails, rendered previews (JPEG/PNG), metadata and tile endpoints are not rasters for
    this pipeline, even when they are images.
    """
    roles = set(asset.get("roles") or [])
    if roles & _NOT_PIXELS_ROLES and not roles & {"data", "visual"}:
        return False
    media = str(asset.get("type") or "").lower()
    if media:
        return media.startswith(_RASTER_TYPES)
    path = urlparse(str(asset.get("href", ""))).path.lower()
    return path.endswith(_RASTER_SUFFIXES)


def rgb_bands(item: ItemLike, *, prefer: str = "multiband") -> list[BandRef]:
    """Find the red, green and blue bands of an item, by ``eo:bands`` (or STAC 1.1 ``bands``)
    ``common_name``.

    Handles one multi-band asset (NAIP ``image`` RGBN, Sentinel-2 ``visual`` TCI, the synthetic
    ``visual``) and three single-band assets (Sentinel-2/Landsat ``red``/``B04`` ...). Only raster
    assets are considered; cloud-optimised GeoTIFFs win over JPEG2000.

    Args:
        item: the item.
        prefer: ``"multiband"`` (default) takes one asset holding all three bands when there is
            one — a single read, and for Sentinel-2 the 8-bit true-colour image; ``"single"``
            prefers three single-band assets (e.g. surface reflectance).

    Returns:
        ``[red, green, blue]`` band references.

    Raises:
        ItemError: no raster asset provides one of the colours; the message lists the assets.
    """
    if prefer not in ("multiband", "single"):
        raise ValueError(f"prefer must be 'multiband' or 'single', got {prefer!r}")
    assets = _assets(item)
    found: dict[str, list[tuple[tuple[int, ...], BandRef, frozenset[str]]]] = {c: [] for c in RGB}
    for rank_index, (key, asset) in enumerate(assets.items()):
        if not is_raster_asset(asset):
            continue
        names = _common_names(asset)
        rank = (_media_rank(asset), rank_index)
        for index, name in enumerate(names, start=1):
            if name in found:
                found[name].append((rank, BandRef(key, index, name), frozenset(names)))
    missing = [c for c in RGB if not found[c]]
    if missing:
        raise ItemError(
            item_id(item),
            f"no raster asset with {', '.join(missing)} band(s) (by eo:bands common_name); "
            f"assets: {_asset_summary(assets)}. Use a collection with RGB imagery or add eo:bands "
            "and a raster media type to the assets",
        )
    multi = sorted((rank, ref.asset) for rank, ref, names in found["red"] if set(RGB) <= names)
    if multi and (prefer == "multiband" or not _all_single(found)):
        key = multi[0][1]
        return [min((r[1] for r in found[c] if r[1].asset == key), key=_band) for c in RGB]
    return [min(found[c], key=lambda r: (len(r[2]) > 1, r[0]))[1] for c in RGB]


def _band(ref: BandRef) -> int:
    return ref.band


def _all_single(found: dict[str, list[Any]]) -> bool:
    return all(any(len(r[2]) == 1 for r in found[c]) for c in RGB)


def _media_rank(asset: Mapping[str, Any]) -> int:
    media = str(asset.get("type") or "").lower()
    if "cloud-optimized" in media:
        return 0
    if media.startswith(("image/tiff", "image/vnd.stac.geotiff", "application/x-geotiff")):
        return 1
    return 2


def _common_names(asset: Mapping[str, Any]) -> list[str | None]:
    bands = asset.get("eo:bands") or asset.get("bands") or []
    names: list[str | None] = []
    for band in bands:
        if not isinstance(band, Mapping):
            names.append(None)
            continue
        name = band.get("common_name") or band.get("eo:common_name")
        names.append(str(name).lower() if name else None)
    return names


def _asset_summary(assets: Mapping[str, Mapping[str, Any]]) -> str:
    if not assets:
        return "none"
    parts = []
    for key, asset in assets.items():
        names = [n or "?" for n in _common_names(asset)]
        kind = asset.get("type") or "no media type"
        raster = "" if is_raster_asset(asset) else ", not a raster"
        parts.append(f"{key} ({kind}{raster}; bands: {'/'.join(names) or '-'})")
    return "; ".join(parts)


# -- href safety --------------------------------------------------------------------------------


def is_local_catalog(url: str | PurePath) -> bool:
    """Whether a catalog URL is on this machine: a file path, ``file://`` or a loopback host."""
    if isinstance(url, PurePath):
        return True
    parsed = urlparse(str(url))
    if parsed.scheme in ("", "file") or len(parsed.scheme) == 1:  # len 1: Windows drive letter
        return True
    if parsed.scheme not in ("http", "https"):
        return False
    return _is_loopback_host(parsed.hostname)


def _is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    host = host.strip("[]").lower()
    if host in _LOOPBACK_NAMES:
        return True
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return False
    return addr.is_loopback or addr.is_unspecified


def _is_link_local(host: str | None) -> bool:
    try:
        return ipaddress.ip_address((host or "").strip("[]")).is_link_local
    except ValueError:
        return False


def check_hrefs(item: ItemLike, *, catalog_is_local: bool) -> None:
    """Refuse items of a remote catalog that point at this machine.

    A remote catalog must not make the pipeline read local files (``file://``, absolute or
    relative paths, drive letters, GDAL ``/vsi`` paths) or loopback services
    (``http://127.0.0.1/...``, link-local such as cloud metadata ``169.254.169.254``). Items of
    a local catalog may point anywhere.

    Raises:
        ItemError: naming the item, the asset and the href.
    """
    if catalog_is_local:
        return
    for key, asset in _assets(item).items():
        href = str(asset.get("href", ""))
        parsed = urlparse(href)
        scheme = parsed.scheme.lower()
        local = scheme in ("", "file") or len(scheme) == 1
        if not local and scheme in ("http", "https"):
            local = _is_loopback_host(parsed.hostname) or _is_link_local(parsed.hostname)
        if local:
            raise ItemError(
                item_id(item),
                f"asset {key!r} href {href!r} points at this machine but the item comes from a "
                "remote catalog; refused for safety. Serve local files through a local catalog "
                "(changevg catalog serve) instead",
            )


# -- access -------------------------------------------------------------------------------------


def _props(item: ItemLike) -> Mapping[str, Any]:
    if isinstance(item, pystac.Item):
        return item.properties
    return item.get("properties") or {}


def _geometry(item: ItemLike) -> Mapping[str, Any] | None:
    return item.geometry if isinstance(item, pystac.Item) else item.get("geometry")


def _assets(item: ItemLike) -> dict[str, Mapping[str, Any]]:
    if isinstance(item, pystac.Item):
        return {k: a.to_dict() for k, a in item.assets.items()}
    assets = item.get("assets") or {}
    return {k: a for k, a in assets.items() if isinstance(a, Mapping)}
