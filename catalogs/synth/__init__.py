"""Synthetic bi-temporal aerial regions with exact change truth.

:func:`synthesize_region` writes a small local STAC catalog (collection, items, RGB COGs at ``gsd``)
for two dates of a procedurally generated landscape — roads, buildings with shadows, fields, trees —
where some buildings and roads are new or demolished between the dates, plus the exact truth of
those changes (``truth.parquet``, ``truth.json``). Nuisances that are not change (season,
illumination, haze, noise, a sub-pixel to 1.5 px misregistration and a different grid for the
after scene) are there on purpose: the tiling and model stages are tested against them.
``nuisance="strong"`` adds the non-change of real archive pairs on both dates (any season and sun,
leaf-off trees, off-nadir lean, sensor colour, cars, driveways and parking lots, earthworks that
are not buildings, re-cropped fields, trees over roofs); the truth stays the same.

What consumers rely on:

- COGs: 3 bands red, green, blue; nodata 0 and no 0 inside the scene; uint8 display counts 1..255,
  or uint16 surface reflectance x 10000 (1..10000, ``raster:bands`` scale 1e-4). UTM.
  Pixels of ``gsd`` m (0.5 by default).
- The before grid is the reference. ``truth.json`` holds both grids: ``before.transform``,
  ``after.transform`` (as written in the COG), ``after.nominal_transform`` and
  ``after.true_transform`` (the one that places the after content correctly; use it to rasterize
  truth on the after grid), plus ``misregistration`` {dx_px, dy_px, in_metadata, residual_px}:
  after content appears moved by residual_px (+x east, +y south, before-grid pixels) when placed
  with its written transform, so shifting it by -residual_px aligns it.
- ``truth.parquet``: changed objects only (object_id, class building|road, change
  new|demolished, area_m2, geometry in the scene CRS). :func:`rasterize_truth` turns them into
  the 0/1/2 (background/road/building) mask, pixel-exact on the before grid.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import geopandas
import numpy as np
import rasterio
from affine import Affine
from PIL import Image
from pyproj import Transformer
from rasterio import features

from ..errors import InputError
from ._checks import check_args, check_gsd, parse_date
from ._extras import date_extras
from ._geom import geojson
from ._looks import mild_looks, strong_looks
from ._nuisance import plan_nuisance
from ._render import RES, Canvas, Shared, render
from ._sensor import expose, sample_scaled
from ._truth import after_grid, change_area, tile_boxes, truth_frame, truth_meta
from ._world import build_world
from ._write import make_collection, make_item, split_windows, write_cog, write_json, write_stac

__all__ = ["SynthRegion", "load_truth", "quicklook", "rasterize_truth", "synthesize_region"]

MARGIN_PX = 24  # canvas margin around both grids; covers misregistration up to 8 px
SPLIT_OVERLAP_PX = 4


@dataclass(frozen=True)
class SynthRegion:
    """Paths and facts of a synthesised region (see ``truth.json`` for everything else)."""

    root: Path
    collection_path: Path
    items_path: Path
    truth_path: Path
    before_paths: list[Path]
    after_paths: list[Path]
    crs: str
    bbox_lonlat: tuple[float, float, float, float]
    misregistration_px: tuple[float, float]
    misregistration_in_metadata: bool
    name: str


def _scaled(tr: Affine, k: float) -> Affine:
    """The grid ``tr`` with pixels ``k`` times as large (same origin)."""
    return tr if k == 1.0 else tr * Affine.scale(k)


def synthesize_region(
    out: str | Path,
    *,
    size_km: float = 2.0,
    seed: int = 0,
    epsg: int = 32611,
    origin_lonlat: tuple[float, float] = (-116.2, 33.9),
    before_date: str = "2022-05-01",
    after_date: str = "2024-06-15",
    split: int = 1,
    dtype: Literal["uint8", "uint16"] = "uint8",
    misregistration_px: tuple[float, float] | None = None,
    misregistration_in_metadata: bool = True,
    region_name: str | None = None,
    collection_id: str = "synthetic-rgb",
    nuisance: Literal["mild", "strong"] = "mild",
    gsd: float = RES,
) -> SynthRegion:
    """Generate a bi-temporal synthetic region as a local STAC catalog with exact change truth.

    The same arguments give the same bytes. The before scene is ``size_km`` square with its
    north-west corner at ``origin_lonlat`` (snapped to whole metres in ``epsg``); the after
    scene has its own grid (origin offset by a fraction of a pixel, a few % different extent).

    Args:
        out: Output folder (created; files of a previous run are replaced).
        size_km: Side of the before scene in km (the world is drawn in metres).
        seed: Seed of everything random (layout, changes, looks, noise, misregistration).
        epsg: Projected metric CRS of the scenes (UTM).
        origin_lonlat: North-west corner of the before scene.
        before_date: Acquisition date of the before scene.
        after_date: Acquisition date of the after scene (later than ``before_date``).
        split: N > 1 writes N x N overlapping COGs per date (a mosaic per date).
        dtype: "uint8" display counts 1..255, or "uint16" reflectance x 10000 (1..10000).
        misregistration_px: (dx, dy) shift of the after content in before-grid pixels (+x east,
            +y south); None draws one from the seed with magnitude 0.3..1.5 px.
        misregistration_in_metadata: True writes the after geotransform that places the content
            correctly; False writes the nominal one, leaving the shift for co-registration.
        region_name: Item-id prefix; defaults to ``synth-{seed}``.
        collection_id: STAC collection id.
        nuisance: "mild" (the default, bytes pinned) keeps both dates a similar survey;
            "strong" adds the non-change real archive pairs show, independently per date: any
            daytime sun and season, leaf-off deciduous trees, off-nadir lean of tall objects,
            sensor colour, blur and haze, cars, driveways and parking lots, earthworks and
            construction sites that are not buildings, re-cropped fields, trees over roofs.
            None of it enters the truth, which stays the building/road change only.
        gsd: Pixel size of the written scenes in metres (0.1 to 10). The world is drawn and
            rendered at 0.5 m and resampled, so objects keep their size in metres and a seed
            gives the same world and truth at any GSD; grids finer than 0.5 m interpolate (no
            extra detail). ``misregistration_px`` and the truth grids are in pixels of ``gsd``.
    """
    crs_obj = check_args(size_km, seed, split, dtype, epsg, misregistration_px)
    check_gsd(gsd, size_km, misregistration_px)
    gsd = float(gsd)
    k = gsd / RES  # an output pixel in canvas pixels
    if nuisance not in ("mild", "strong"):
        raise InputError(f"nuisance={nuisance!r}: use 'mild' or 'strong'")
    strong = nuisance == "strong"
    d0, d1 = parse_date(before_date, "before_date"), parse_date(after_date, "after_date")
    if d1 <= d0:
        raise InputError(f"after_date={after_date!r} must be later than {before_date!r}")
    crs = f"EPSG:{crs_obj.to_epsg()}"
    name = region_name or f"synth-{seed}"
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    for old in [*root.glob("before*.tif"), *root.glob("after*.tif")]:  # e.g. another split
        if re.fullmatch(r"(before|after)(_r\d+_c\d+)?\.tif", old.name):
            old.unlink()
    # Child i of the seed's SeedSequence does not depend on how many are spawned: the first 7
    # are the historical (mild) streams, the last 3 feed strong nuisance only.
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(10)]
    rng_grid, rng_world, rng_shared, rng_look, rng_mis, rng_b, rng_a = rngs[:7]
    rng_plan, rng_xb, rng_xa = rngs[7:]

    lon, lat = origin_lonlat
    x0, y0 = Transformer.from_crs("EPSG:4326", crs_obj, always_xy=True).transform(lon, lat)
    if not (math.isfinite(x0) and math.isfinite(y0)):
        raise InputError(f"origin_lonlat={origin_lonlat!r} is outside {crs}")
    x0, y0 = float(round(x0)), float(round(y0))
    n = int(round(size_km * 1000 / RES))
    before_tr = Affine(RES, 0.0, x0, 0.0, -RES, y0)
    drawn = rng_mis.uniform(0.3, 1.5), rng_mis.uniform(0, 2 * math.pi)
    if misregistration_px is None:  # drawn in canvas pixels: the same metres at any gsd
        misregistration_px = (drawn[0] * math.cos(drawn[1]) / k, drawn[0] * math.sin(drawn[1]) / k)
    dxo, dyo = (float(v) for v in misregistration_px)  # output pixels
    dx, dy = dxo * k, dyo * k  # canvas pixels
    grid = after_grid(n, rng_grid)  # after origin (col, row) in before px, shape
    ac, ar, a_shape = grid["col"], grid["row"], grid["shape"]
    nominal_tr = before_tr * Affine.translation(ac, ar)
    true_tr = before_tr * Affine.translation(ac - dx, ar - dy)
    after_tr = true_tr if misregistration_in_metadata else nominal_tr
    n_out = n if k == 1.0 else int(round(size_km * 1000 / gsd))
    a_out = a_shape if k == 1.0 else (int(round(a_shape[0] / k)), int(round(a_shape[1] / k)))
    before_out, nominal_out, true_out, after_out = (
        _scaled(t, k) for t in (before_tr, nominal_tr, true_tr, after_tr)
    )

    c_min = math.floor(min(0.0, ac)) - MARGIN_PX
    r_min = math.floor(min(0.0, ar)) - MARGIN_PX
    c_max = math.ceil(max(n, ac + a_shape[1])) + MARGIN_PX
    r_max = math.ceil(max(n, ar + a_shape[0])) + MARGIN_PX
    canvas = Canvas(x0 + c_min * RES, y0 - r_min * RES, (r_max - r_min, c_max - c_min))
    ext = (
        canvas.x0,
        canvas.y0 - canvas.shape[0] * RES,
        canvas.x0 + canvas.shape[1] * RES,
        canvas.y0,
    )
    core, inner = change_area(before_tr, n, nominal_tr, true_tr, a_shape)
    world = build_world(ext, core, inner, tile_boxes(before_tr, n), rng_world)
    plan = plan_nuisance(world, rng_plan) if strong else None  # adds crowns over roofs
    shared = Shared(world, canvas, rng_shared)
    looks = (strong_looks if strong else mild_looks)(rng_look, [d0, d1], lon, lat)
    summaries: dict[str, dict] = {}

    items, paths = [], {"before": [], "after": []}
    for state, (look, when), rng_noise, rng_x in zip(
        ("before", "after"), looks, (rng_b, rng_a), (rng_xb, rng_xa), strict=True
    ):
        extras = None if plan is None else date_extras(world, plan, state, look, rng_x)
        if extras is not None:
            summaries[state] = extras.summary
        img = render(world, canvas, shared, state, look, seed, extras)
        extras = None
        if state == "before":
            shape, tr, offs = (n_out, n_out), before_out, (-r_min, -c_min)
        else:
            shape, tr, offs = a_out, after_out, (ar - dy - r_min, ac - dx - c_min)
            shared = None  # the last render is done: free the shared layers early
        grid = sample_scaled(img, offs[0], offs[1], shape, k)
        img = None  # a copy for the after scene; the before crop keeps the canvas alive itself
        data = expose(grid, look, rng_noise, dtype)
        del grid
        for r, c, rows, cols in split_windows(shape, split, SPLIT_OVERLAP_PX):
            suffix = f"_r{r}_c{c}" if split > 1 else ""
            path = root / f"{state}{suffix}.tif"
            win_tr = tr * Affine.translation(cols.start, rows.start)
            win_shape = (rows.stop - rows.start, cols.stop - cols.start)
            write_cog(path, np.ascontiguousarray(data[:, rows, cols]), win_tr, crs)
            paths[state].append(path)
            extra = {"changevg:role": state, "changevg:region": name}
            if strong:
                extra["changevg:nuisance"] = nuisance
            if split > 1:
                extra["changevg:tile"] = [r, c]
            items.append(
                make_item(
                    item_id=f"{name}-{state}" + (f"-r{r}-c{c}" if split > 1 else ""),
                    href=path,
                    transform=win_tr,
                    shape=win_shape,
                    crs=crs,
                    datetime=when,
                    collection_id=collection_id,
                    dtype=dtype,
                    extra=extra,
                    gsd=gsd,
                )
            )
        del data
    desc = (
        f"Synthetic bi-temporal {gsd:g} m RGB scenes of region {name} (seed {seed}), generated by "
        "catalogs.synth with exact change truth."
    )
    write_stac(root, make_collection(collection_id, items, desc, gsd), items)
    truth = truth_frame(world, crs)
    truth.to_parquet(
        root / "truth.parquet",
        schema_version="1.1.0",
        write_covering_bbox=True,
        compression="zstd",
        index=False,
    )
    meta = truth_meta(
        name=name,
        seed=seed,
        size_km=size_km,
        crs=crs,
        dtype=dtype,
        world=world,
        looks=looks,
        dates=(d0, d1),
        before=(before_out, (n_out, n_out)),
        after=(after_out, nominal_out, true_out, a_out),
        misreg=(dxo, dyo),
        in_metadata=misregistration_in_metadata,
        paths=paths,
        root=root,
        truth=truth,
        gsd=gsd,
    )
    if strong:
        meta["nuisance"] = {"level": nuisance, "plan": plan.summary(), **summaries}
        for key, (look, _) in zip(("before", "after"), looks, strict=True):
            meta[key]["look"] |= {"leaf_off": look.leaf_off, "lean_m_per_m": list(look.lean)}
    write_json(root / "truth.json", meta)
    before_items = [it for it in items if it["properties"]["changevg:role"] == "before"]
    boxes = np.array([it["bbox"] for it in before_items])
    bbox = (
        float(boxes[:, 0].min()),
        float(boxes[:, 1].min()),
        float(boxes[:, 2].max()),
        float(boxes[:, 3].max()),
    )
    return SynthRegion(
        root=root,
        collection_path=root / "collection.json",
        items_path=root / "items.ndjson",
        truth_path=root / "truth.parquet",
        before_paths=paths["before"],
        after_paths=paths["after"],
        crs=crs,
        bbox_lonlat=bbox,
        misregistration_px=(dxo, dyo),
        misregistration_in_metadata=misregistration_in_metadata,
        name=name,
    )


def rasterize_truth(
    truth: geopandas.GeoDataFrame, *, transform: Affine, shape: tuple[int, int]
) -> np.ndarray:
    """Change mask on a grid: 0 background, 1 road, 2 building (new or demolished).

    Pixels whose centre lies inside a polygon are set, the same rule the renderer draws with, so on
    the before grid the mask matches the pixels exactly (buildings win where classes touch).

    Args:
        truth: Rows of ``truth.parquet`` (any subset), in the grid's CRS.
        transform: Geotransform of the grid (for the after scene use ``after.true_transform``).
        shape: (rows, cols) of the grid.
    """
    mask = np.zeros(shape, np.uint8)
    for cls, value in (("road", 1), ("building", 2)):
        sel = truth.geometry[truth["class"] == cls]
        geoms = [g for g in sel if g is not None and not g.is_empty]
        if geoms:
            shapes = [(geojson(g), value) for g in geoms]
            features.rasterize(shapes, out=mask, transform=transform)
    return mask


def load_truth(path: str | Path) -> geopandas.GeoDataFrame:
    """Read ``truth.parquet`` (or the region folder holding it)."""
    p = Path(path)
    if p.is_dir():
        p = p / "truth.parquet"
    if not p.exists():
        raise InputError(f"{p}: no truth.parquet here; run synthesize_region first")
    return geopandas.read_parquet(p)


def quicklook(path: str | Path, out_png: str | Path, max_size: int = 800) -> Path:
    """Downsampled PNG of an RGB COG (uint16 is stretched 2-98 %), for eyeballing a scene."""
    with rasterio.open(path) as src:
        k = max(src.width, src.height) / max_size
        shape = (3, max(1, round(src.height / max(k, 1))), max(1, round(src.width / max(k, 1))))
        data = src.read([1, 2, 3], out_shape=shape, resampling=rasterio.enums.Resampling.average)
    if data.dtype != np.uint8:
        lo, hi = np.percentile(data[data > 0], [2, 98]) if (data > 0).any() else (0, 1)
        data = np.clip((data - lo) / max(hi - lo, 1) * 255, 0, 255).astype(np.uint8)
    Image.fromarray(np.moveaxis(data, 0, -1)).save(out_png)
    return Path(out_png)
