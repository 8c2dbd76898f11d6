"""Grids of the two scenes and the truth outputs (GeoDataFrame and ``truth.json`` metadata)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import geopandas
import numpy as np
import pandas as pd
from affine import Affine
from shapely.geometry import Polygon, box

from ._world import World, truth_records

TILE_PX = 256  # 128 m at 0.5 m: the tile size change fractions are counted on
MISREG_CONVENTION = (
    "After content appears displaced by (+dx columns east, +dy rows south) of the before grid "
    "relative to the truth when the after scene is placed on the before grid with the nominal "
    "geotransform. With in_metadata=true the written after geotransform is the true one (residual "
    "0); with false it is the nominal one and the residual is (dx, dy): shift the after scene by "
    "(-dx, -dy) to align it."
)


def after_grid(n: int, rng: np.random.Generator) -> dict[str, Any]:
    """After-scene grid relative to the before grid (n x n): a fractional-pixel origin offset and
    edges moved 1-5 % in or out, at least one side in and one side out."""
    signs = rng.choice([-1, 1], 4)  # +1: the after scene reaches further on that side
    if abs(int(signs.sum())) == 4:
        signs[int(rng.integers(4))] *= -1
    amt = rng.uniform(0.01, 0.05, 4) * n
    left, top = -signs[0] * amt[0], -signs[1] * amt[1]
    right, bottom = n + signs[2] * amt[2], n + signs[3] * amt[3]
    col = math.floor(left) + rng.uniform(0.15, 0.85)
    row = math.floor(top) + rng.uniform(0.15, 0.85)
    shape = (int(round(bottom - row)), int(round(right - col)))
    return {"col": float(col), "row": float(row), "shape": shape}


def _grid_box(tr: Affine, shape: tuple[int, int]) -> Polygon:
    x0, y0 = tr.c, tr.f
    x1, y1 = tr * (shape[1], shape[0])
    return box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def change_area(
    before_tr: Affine, n: int, nominal_tr: Affine, true_tr: Affine, a_shape: tuple[int, int]
) -> tuple[Polygon, Polygon]:
    """Before footprint and the area both scenes see (minus a small margin) for change events."""
    core = _grid_box(before_tr, (n, n))
    both = core.intersection(_grid_box(nominal_tr, a_shape)).intersection(
        _grid_box(true_tr, a_shape)
    )
    margin = min(15.0, n * before_tr.a * 0.04)
    return core, both.buffer(-margin, join_style="mitre")


def tile_boxes(before_tr: Affine, n: int) -> np.ndarray:
    """128 m tile polygons of the before grid, row-major (last row/column may be partial)."""
    out = []
    for r0 in range(0, n, TILE_PX):
        for c0 in range(0, n, TILE_PX):
            out.append(
                _grid_box(
                    before_tr * Affine.translation(c0, r0),
                    (min(TILE_PX, n - r0), min(TILE_PX, n - c0)),
                )
            )
    return np.array(out, dtype=object)


def truth_frame(world: World, crs: str) -> geopandas.GeoDataFrame:
    """Changed objects as a GeoDataFrame in the scene CRS."""
    recs = truth_records(world)
    df = pd.DataFrame(
        {
            "object_id": pd.Series([r["object_id"] for r in recs], dtype=str),
            "class": pd.Series([r["class"] for r in recs], dtype=str),
            "change": pd.Series([r["change"] for r in recs], dtype=str),
            "area_m2": pd.Series([r["area_m2"] for r in recs], dtype="float64"),
        }
    )
    return geopandas.GeoDataFrame(df, geometry=[r["geometry"] for r in recs], crs=crs)


def _tr(t: Affine) -> list[float]:
    return [t.a, t.b, t.c, t.d, t.e, t.f]


def truth_meta(
    *,
    name,
    seed,
    size_km,
    crs,
    dtype,
    world: World,
    looks,
    dates,
    before,
    after,
    misreg,
    in_metadata,
    paths,
    root: Path,
    truth,
    gsd: float = 0.5,
) -> dict[str, Any]:
    """Everything about the region that is not pixels: grids, looks, misregistration, changes.

    Grids, shapes and the misregistration are in pixels of ``gsd`` metres; the changed-tile
    fraction is counted on 128 m tiles whatever the GSD (``tile_size_px`` of them)."""
    before_tr, before_shape = before
    after_tr, nominal_tr, true_tr, a_shape = after
    dx, dy = misreg
    dates_out = {}
    for key, (look, when), date, tr, shape, extra in (
        ("before", looks[0], dates[0], before_tr, before_shape, {}),
        (
            "after",
            looks[1],
            dates[1],
            after_tr,
            a_shape,
            {"nominal_transform": _tr(nominal_tr), "true_transform": _tr(true_tr)},
        ),
    ):
        dates_out[key] = {
            "date": date.isoformat(),
            "datetime": when,
            "transform": _tr(tr),
            "shape": list(shape),
            "files": [p.name for p in paths[key]],
            **extra,
            "look": {
                "sun_azimuth_deg": round(look.sun_azimuth, 3),
                "sun_elevation_deg": round(look.sun_elevation, 3),
                "greenness": round(look.greenness, 4),
                "field_phase": round(look.field_phase, 4),
                "gains_rgb": [round(g, 4) for g in look.gains],
                "haze": round(look.haze, 4),
                "haze_gradient_xy": [round(g, 4) for g in look.haze_gradient],
                "blur_sigma_px": round(look.blur_sigma, 4),
                "noise_dn": round(look.noise_dn, 4),
            },
        }
    counts = truth.groupby(["class", "change"]).size()
    return {
        "generator": "catalogs.synth",
        "name": name,
        "seed": seed,
        "size_km": size_km,
        "crs": crs,
        "pixel_size_m": gsd,
        "dtype": dtype,
        "bands": ["red", "green", "blue"],
        "nodata": 0,
        "value_range": [1, 255] if dtype == "uint8" else [1, 10000],
        "reflectance_scale": None if dtype == "uint8" else 1e-4,
        **dates_out,
        "misregistration": {
            "dx_px": dx,
            "dy_px": dy,
            "in_metadata": in_metadata,
            "residual_px": [0.0, 0.0] if in_metadata else [dx, dy],
            "convention": MISREG_CONVENTION,
        },
        "changes": {
            "n_new_buildings": int(counts.get(("building", "new"), 0)),
            "n_demolished_buildings": int(counts.get(("building", "demolished"), 0)),
            "n_new_roads": int(counts.get(("road", "new"), 0)),
            "changed_tile_fraction": round(world.changed_tile_fraction, 4),
            "tile_size_px": round(TILE_PX * 0.5 / gsd),
            "events": world.events,
        },
        "truth_file": "truth.parquet",
    }
