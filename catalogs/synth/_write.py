"""Writing the synthetic region: COGs, STAC items and collection, GeoParquet and JSON truth."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from pyproj import Transformer
from rasterio.enums import ColorInterp

STAC_VERSION = "1.0.0"
EXTENSIONS = [
    "https://stac-extensions.github.io/projection/v2.0.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
    "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
]
COG_MEDIA_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
EO_BANDS = [
    {"name": "red", "common_name": "red", "center_wavelength": 0.65},
    {"name": "green", "common_name": "green", "center_wavelength": 0.56},
    {"name": "blue", "common_name": "blue", "center_wavelength": 0.47},
]
GSD = 0.5


def write_cog(path: Path, data: np.ndarray, transform: Affine, crs: str) -> None:
    """Write an RGB cloud-optimised GeoTIFF (zstd, 512 px tiles, averaged overviews, nodata 0)."""
    bands, h, w = data.shape
    profile = {
        "driver": "COG",
        "width": w,
        "height": h,
        "count": bands,
        "dtype": data.dtype.name,
        "crs": crs,
        "transform": transform,
        "nodata": 0,
        "compress": "zstd",
        "level": 1,
        "predictor": 2,
        "blocksize": 512,
        "overview_resampling": "average",
        "bigtiff": "no",
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        dst.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue]
        dst.descriptions = ("red", "green", "blue")


def split_windows(
    shape: tuple[int, int], split: int, overlap: int
) -> list[tuple[int, int, slice, slice]]:
    """Row-major (r, c, rows, cols) windows of an N x N split with ``overlap`` px on inner edges."""
    h, w = shape
    out = []
    for r in range(split):
        for c in range(split):
            r0, r1 = r * h // split, (r + 1) * h // split
            c0, c1 = c * w // split, (c + 1) * w // split
            rows = slice(max(r0 - overlap, 0), min(r1 + overlap, h))
            cols = slice(max(c0 - overlap, 0), min(c1 + overlap, w))
            out.append((r, c, rows, cols))
    return out


def footprint_lonlat(
    transform: Affine, shape: tuple[int, int], crs: str
) -> tuple[list[float], dict[str, Any]]:
    """Lon/lat bbox (from densified edges) and polygon geometry (corners) of a grid."""
    h, w = shape
    tr = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    t = np.linspace(0.0, 1.0, 21)
    cols = np.concatenate([t * w, np.full_like(t, w), (1 - t) * w, np.zeros_like(t)])
    rows = np.concatenate([np.zeros_like(t), t * h, np.full_like(t, h), (1 - t) * h])
    xs, ys = transform * (cols, rows)
    lon, lat = tr.transform(xs, ys)
    bbox = [round(float(v), 9) for v in (min(lon), min(lat), max(lon), max(lat))]
    cx, cy = transform * (np.array([0, 0, w, w, 0]), np.array([0, h, h, 0, 0]))  # CCW on a map
    clon, clat = tr.transform(cx, cy)
    ring = [[round(float(a), 9), round(float(b), 9)] for a, b in zip(clon, clat, strict=True)]
    return bbox, {"type": "Polygon", "coordinates": [ring]}


def make_item(
    *,
    item_id: str,
    href: Path,
    transform: Affine,
    shape: tuple[int, int],
    crs: str,
    datetime: str,
    collection_id: str,
    dtype: str,
    extra: dict[str, Any],
    gsd: float = GSD,
) -> dict[str, Any]:
    """A STAC item (projection, raster and eo extensions) for one COG with one ``visual`` asset.

    ``gsd`` is the pixel size in metres (``gsd`` and ``raster:bands`` ``spatial_resolution``).
    """
    h, w = shape
    bbox, geometry = footprint_lonlat(transform, shape, crs)
    x0, y0 = transform.c, transform.f
    x1, y1 = transform * (w, h)
    band: dict[str, Any] = {"data_type": dtype, "nodata": 0, "spatial_resolution": gsd}
    if dtype == "uint16":
        band |= {"scale": 1e-4, "offset": 0.0, "unit": "reflectance"}
    props = {
        "datetime": datetime,
        "gsd": gsd,
        "platform": "changevg-synthetic",
        "proj:code": crs,
        "proj:shape": [h, w],
        "proj:transform": [
            transform.a,
            transform.b,
            transform.c,
            transform.d,
            transform.e,
            transform.f,
        ],
        "proj:bbox": [min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)],
        "eo:cloud_cover": 0,
    } | extra
    return {
        "type": "Feature",
        "stac_version": STAC_VERSION,
        "stac_extensions": EXTENSIONS,
        "id": item_id,
        "collection": collection_id,
        "bbox": bbox,
        "geometry": geometry,
        "properties": props,
        "links": [],
        "assets": {
            "visual": {
                "href": href.resolve().as_uri(),
                "type": COG_MEDIA_TYPE,
                "title": "RGB " + ("display counts" if dtype == "uint8" else "surface reflectance"),
                "roles": ["data", "visual"],
                "raster:bands": [dict(band) for _ in range(3)],
                "eo:bands": [dict(b) for b in EO_BANDS],
            }
        },
    }


def make_collection(
    collection_id: str, items: list[dict[str, Any]], description: str, gsd: float = GSD
) -> dict[str, Any]:
    """A STAC collection spanning the items, without links (ready for ``rustac serve``)."""
    boxes = np.array([it["bbox"] for it in items])
    times = sorted(it["properties"]["datetime"] for it in items)
    return {
        "type": "Collection",
        "stac_version": STAC_VERSION,
        "stac_extensions": EXTENSIONS,
        "id": collection_id,
        "title": f"Synthetic aerial RGB ({collection_id})",
        "description": description,
        "keywords": ["synthetic", "aerial", "change detection"],
        "license": "CC0-1.0",
        "extent": {
            "spatial": {
                "bbox": [
                    [
                        float(boxes[:, 0].min()),
                        float(boxes[:, 1].min()),
                        float(boxes[:, 2].max()),
                        float(boxes[:, 3].max()),
                    ]
                ]
            },
            "temporal": {"interval": [[times[0], times[-1]]]},
        },
        "summaries": {
            "gsd": [gsd],
            "proj:code": sorted({it["properties"]["proj:code"] for it in items}),
            "eo:bands": EO_BANDS,
        },
        "links": [],
    }


def write_json(path: Path, obj: Any) -> None:
    """Deterministic, human-readable JSON."""
    path.write_text(json.dumps(obj, indent=2) + "\n")


def write_stac(root: Path, collection: dict[str, Any], items: list[dict[str, Any]]) -> None:
    """``collection.json``, ``items.ndjson`` (one item per line) and ``items.json``."""
    write_json(root / "collection.json", collection)
    lines = [json.dumps(it, separators=(",", ":")) for it in items]
    (root / "items.ndjson").write_text("\n".join(lines) + "\n")
    write_json(root / "items.json", {"type": "FeatureCollection", "features": items})
