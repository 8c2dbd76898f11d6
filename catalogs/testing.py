"""Small builders for STAC items in tests (shipped next to the code, like ``odc.stac.testing``).

They produce plain item dicts that look like the real thing (projection, eo and raster
extension fields) without touching the network or the disk.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

__all__ = [
    "COG",
    "SAMPLES_ENV",
    "feature_collection",
    "load_features",
    "make_item",
    "rgb_asset",
    "sample_stac_dir",
    "shift_item",
    "single_band_assets",
    "thumbnail_asset",
    "write_ndjson",
]

COG = "image/tiff; application=geotiff; profile=cloud-optimized"
SAMPLES_ENV = "CHANGEVG_STAC_SAMPLES"

_EXTENSIONS = [
    "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
    "https://stac-extensions.github.io/projection/v2.0.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
]


def rgb_asset(
    href: str,
    *,
    bands: Sequence[str] = ("red", "green", "blue"),
    media_type: str = COG,
    roles: Sequence[str] = ("visual", "data"),
) -> dict[str, Any]:
    """One multi-band raster asset with ``eo:bands`` common names and uint8 ``raster:bands``."""
    return {
        "href": href,
        "type": media_type,
        "roles": list(roles),
        "eo:bands": [{"name": b.upper(), "common_name": b} for b in bands],
        "raster:bands": [{"data_type": "uint8", "nodata": 0} for _ in bands],
    }


def single_band_assets(
    href_base: str, *, keys: Mapping[str, str] | None = None, media_type: str = COG
) -> dict[str, dict[str, Any]]:
    """Three single-band assets, Sentinel-2 style (``{"B04": "red", ...}`` by default)."""
    keys = keys or {"B04": "red", "B03": "green", "B02": "blue"}
    return {
        key: {
            "href": f"{href_base}/{key}.tif",
            "type": media_type,
            "roles": ["data"],
            "eo:bands": [{"name": key, "common_name": common}],
            "raster:bands": [{"data_type": "uint16", "nodata": 0}],
        }
        for key, common in keys.items()
    }


def thumbnail_asset(href: str) -> dict[str, Any]:
    """A JPEG thumbnail asset (with RGB eo:bands, to check it is never chosen as raster)."""
    return {
        "href": href,
        "type": "image/jpeg",
        "roles": ["thumbnail"],
        "eo:bands": [{"common_name": c} for c in ("red", "green", "blue")],
    }


def make_item(
    id: str,
    *,
    bbox: Sequence[float],
    datetime: str | datetime,
    epsg: int | None = 32611,
    cloud_cover: float | None = None,
    assets: Mapping[str, Mapping[str, Any]] | None = None,
    use_proj_code: bool = True,
    collection: str | None = "test-collection",
    platform: str | None = "testsat-1",
    include_bbox: bool = True,
    include_geometry: bool = True,
    href_base: str = "https://data.example.com/items",
    properties: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A STAC 1.0 item dict with a box footprint.

    Args:
        id: item id.
        bbox: lon/lat ``(minx, miny, maxx, maxy)``; the geometry is this box.
        datetime: acquisition time (``"2022-06-01"`` means midnight UTC).
        epsg: native CRS; written as ``proj:code`` (projection v2) or, with
            ``use_proj_code=False``, as ``proj:epsg`` (v1). ``None`` writes neither.
        cloud_cover: ``eo:cloud_cover``; ``None`` leaves it out (unknown).
        assets: assets to use; default one RGB COG asset ``visual`` under ``href_base``.
        include_bbox: ``False`` drops ``bbox`` (real catalogs sometimes do).
        include_geometry: ``False`` writes ``"geometry": null``.
        properties: extra properties merged last.
    """
    when = datetime if isinstance(datetime, str) else datetime.isoformat()
    if len(when) == 10:
        when += "T00:00:00Z"
    when = when.replace("+00:00", "Z")
    minx, miny, maxx, maxy = (float(v) for v in bbox)
    props: dict[str, Any] = {"datetime": when}
    if platform:
        props["platform"] = platform
    if epsg is not None:
        props["proj:code" if use_proj_code else "proj:epsg"] = (
            f"EPSG:{epsg}" if use_proj_code else epsg
        )
    if cloud_cover is not None:
        props["eo:cloud_cover"] = cloud_cover
    props.update(properties or {})
    item: dict[str, Any] = {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": list(_EXTENSIONS),
        "id": id,
        "geometry": None,
        "properties": props,
        "links": [],
        "assets": copy.deepcopy(dict(assets))
        if assets is not None
        else {"visual": rgb_asset(f"{href_base}/{id}/visual.tif")},
    }
    if include_geometry:
        ring = [[minx, miny], [maxx, miny], [maxx, maxy], [minx, maxy], [minx, miny]]
        item["geometry"] = {"type": "Polygon", "coordinates": [ring]}
    if include_bbox:
        item["bbox"] = [minx, miny, maxx, maxy]
    if collection:
        item["collection"] = collection
    return item


def shift_item(item: Mapping[str, Any], *, days: float, suffix: str = "-shifted") -> dict[str, Any]:
    """A copy of ``item`` acquired ``days`` later (negative: earlier), with a new id.

    Used to build a second date from real recorded items whose footprints are all one date.
    ``naip:year`` follows the new datetime.
    """
    out = copy.deepcopy(dict(item))
    out["id"] = f"{item['id']}{suffix}"
    props = out["properties"]
    when = datetime.fromisoformat(props["datetime"].replace("Z", "+00:00")) + timedelta(days=days)
    props["datetime"] = when.isoformat().replace("+00:00", "Z")
    if "naip:year" in props:
        props["naip:year"] = str(when.year)
    out["links"] = []
    return out


def feature_collection(items: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Wrap item dicts in a GeoJSON FeatureCollection."""
    return {"type": "FeatureCollection", "features": [dict(i) for i in items]}


def write_ndjson(items: Iterable[Mapping[str, Any]], path: str | Path) -> Path:
    """Write item dicts one per line; returns the path."""
    path = Path(path)
    with path.open("w", encoding="utf-8") as fh:
        for item in items:
            fh.write(json.dumps(item, separators=(",", ":")) + "\n")
    return path


def load_features(path: str | Path) -> list[dict[str, Any]]:
    """The features of a recorded FeatureCollection (STAC API response) file."""
    return list(json.loads(Path(path).read_text(encoding="utf-8"))["features"])


def sample_stac_dir() -> Path | None:
    """Folder of recorded real STAC API responses, or ``None`` when not present.

    ``$CHANGEVG_STAC_SAMPLES`` wins; else ``shared/data/stac`` inside or beside the repository.
    """
    env = os.environ.get(SAMPLES_ENV)
    candidates = [Path(env)] if env else []
    root = Path(__file__).resolve().parents[1]
    candidates += [root / "shared" / "data" / "stac", root.parent / "shared" / "data" / "stac"]
    for folder in candidates:
        if folder.is_dir() and any(folder.glob("*.json")):
            return folder
    return None
