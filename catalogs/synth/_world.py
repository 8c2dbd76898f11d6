"""The synthetic world: everything on the ground at both dates, plus the exact change truth."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely
from affine import Affine
from rasterio import features
from scipy import ndimage
from shapely.geometry import Polygon, box

from ._buildings import neighbourhood, place_along, road_style
from ._events import add_changes
from ._geom import Building, Road
from ._layout import Field, Occupancy, Zones, make_fields, make_zones, road_network, smoothstep1

PLACE_PROB = {"suburban": 0.92, "commercial": 0.75, "rural": 0.12}


@dataclass
class Trees:
    """Tree crowns as parallel arrays (centre x/y, crown radius, height in m, tint, hue)."""

    x: np.ndarray
    y: np.ndarray
    r: np.ndarray
    h: np.ndarray
    tint: np.ndarray
    hue: np.ndarray


@dataclass
class World:
    """All objects of the scene at both dates, in scene-CRS metres."""

    extent: tuple[float, float, float, float]
    zones: Zones
    roads: list[Road]
    fields: list[Field]
    buildings: list[Building]
    trees: Trees
    theta: float
    events: list[dict]
    changed_tile_fraction: float


def _existing_buildings(roads, zones, occ_roads, occ_solid, grown, rng) -> list[Building]:
    buildings: list[Building] = []
    for road in roads:
        style = road_style(road, zones, rng)
        base = PLACE_PROB[style]

        def prob(x: float, y: float, base: float = base) -> float:
            return base * smoothstep1(float(zones.sample("urban", x, y)[0]), 0.2, 0.55)

        for side in (-1.0, 1.0):
            look = neighbourhood(style, rng)
            length = road.line.length
            spans = [(0.0, length)]
            if rng.random() < 0.35:  # leave an empty stretch (later infill happens in such gaps)
                a = rng.uniform(0, length)
                spans = [(0.0, a), (a + rng.uniform(50, 150), length)]
            for span in spans:
                placed = place_along(
                    road,
                    side,
                    span,
                    look,
                    rng,
                    occ=[occ_roads, occ_solid],
                    within=grown,
                    prob=base if style == "rural" else prob,
                    state="existing",
                )
                for b in placed:
                    b.bid = len(buildings)
                    buildings.append(b)
                    occ_solid.add(b.footprint)
    return buildings


def _distance_maps(extent, roads, buildings, fields, res=2.0):
    xmin, ymin, xmax, ymax = extent
    shape = (int(math.ceil((ymax - ymin) / res)) + 1, int(math.ceil((xmax - xmin) / res)) + 1)
    tr = Affine(res, 0, xmin, 0, -res, ymax)
    built_geoms = [r.poly for r in roads] + [b.footprint for b in buildings]
    built = features.rasterize(built_geoms, out_shape=shape, transform=tr, all_touched=True)
    crops = [f.poly for f in fields if f.crop != "orchard"]
    farm = (
        features.rasterize(crops, out_shape=shape, transform=tr, all_touched=True)
        if crops
        else np.zeros(shape, np.uint8)
    )
    d_built = ndimage.distance_transform_edt(built == 0).astype(np.float32) * res
    d_all = ndimage.distance_transform_edt((built == 0) & (farm == 0)).astype(np.float32) * res
    return d_built, d_all, ~tr


def make_trees(extent, zones: Zones, roads, buildings, fields, rng) -> Trees:
    """Tree clumps, scattered and yard trees, windbreaks and orchards, clear of built objects."""
    xmin, ymin, xmax, ymax = extent
    area_km2 = (xmax - xmin) * (ymax - ymin) / 1e6
    groups: list[tuple[np.ndarray, np.ndarray, np.ndarray, bool]] = []
    # Clumps where the vegetation zone is dense.
    n_c = int(area_km2 * 260)
    cx, cy = rng.uniform(xmin, xmax, n_c), rng.uniform(ymin, ymax, n_c)
    keep = zones.sample("veg", cx, cy) ** 1.5 > rng.random(n_c)
    cx, cy = cx[keep], cy[keep]
    n = 1 + rng.geometric(1 / 9, cx.size)
    sd = np.repeat(rng.uniform(4, 16, cx.size), n)
    groups.append(
        (
            np.repeat(cx, n) + rng.normal(0, 1, sd.size) * sd,
            np.repeat(cy, n) + rng.normal(0, 1, sd.size) * sd,
            rng.uniform(1.6, 4.2, sd.size),
            False,
        )
    )
    # Scattered single trees, denser in yards.
    n_s = int(area_km2 * 900)
    sx, sy = rng.uniform(xmin, xmax, n_s), rng.uniform(ymin, ymax, n_s)
    w = 0.25 * zones.sample("veg", sx, sy) + 0.5 * zones.sample("urban", sx, sy)
    keep = w > rng.random(n_s)
    groups.append((sx[keep], sy[keep], rng.uniform(1.8, 4.5, int(keep.sum())), False))
    for f in fields:
        if f.crop == "orchard":  # a grid of small trees inside the parcel
            sp = f.row_period * 2.6
            c0 = f.poly.centroid
            g = np.arange(-1.2 * math.sqrt(f.poly.area), 1.2 * math.sqrt(f.poly.area), sp)
            u, v = (a.ravel() for a in np.meshgrid(g, g))
            c, s = math.cos(f.row_angle), math.sin(f.row_angle)
            px, py = c0.x + u * c - v * s, c0.y + u * s + v * c
            inside = shapely.contains_xy(f.poly.buffer(-sp / 2), px, py)
            m = int(inside.sum())
            groups.append((px[inside], py[inside], sp * 0.32 * rng.uniform(0.85, 1.1, m), True))
        elif rng.random() < 0.3:  # windbreak along one side of the parcel
            ring = np.asarray(f.poly.exterior.coords)
            k = int(rng.integers(4))
            a, b = ring[k], ring[k + 1]
            t = np.linspace(0, 1, max(int(np.linalg.norm(b - a) // 4.5), 2))
            out = (a + b) / 2 - np.asarray(f.poly.centroid.coords[0])
            out = out / np.linalg.norm(out) * 4.0
            groups.append(
                (
                    a[0] + (b[0] - a[0]) * t + out[0],
                    a[1] + (b[1] - a[1]) * t + out[1],
                    rng.uniform(1.8, 2.6, t.size),
                    False,
                )
            )
    x = np.concatenate([g[0] for g in groups])
    y = np.concatenate([g[1] for g in groups])
    r = np.concatenate([g[2] for g in groups])
    is_orch = np.concatenate([np.full(g[0].size, g[3]) for g in groups])
    d_built, d_all, inv = _distance_maps(extent, roads, buildings, fields)
    col, row = inv * (x, y)
    ri = np.clip(np.round(row).astype(int), 0, d_all.shape[0] - 1)
    ci = np.clip(np.round(col).astype(int), 0, d_all.shape[1] - 1)
    dist = np.where(is_orch, d_built[ri, ci], d_all[ri, ci])
    ok = (dist > r + 2.5) & (x > xmin) & (x < xmax) & (y > ymin) & (y < ymax)
    x, y, r = x[ok], y[ok], r[ok]
    h = r * rng.uniform(1.4, 2.4, x.size) + 1.0
    return Trees(x, y, r, h, rng.uniform(0.85, 1.15, x.size), rng.uniform(-1, 1, x.size))


def build_world(
    extent: tuple[float, float, float, float],
    core: Polygon,
    inner: Polygon,
    tiles: np.ndarray,
    rng: np.random.Generator,
) -> World:
    """Generate the world on ``extent``; changes stay inside ``inner``; ``tiles`` count changes.

    Args:
        extent: Canvas bounds (xmin, ymin, xmax, ymax) in scene metres.
        core: The before scene footprint (main roads cross it).
        inner: Area seen by both dates, where change events are placed.
        tiles: 128 m tile polygons of the before grid, for the changed-tile target.
        rng: Random generator (consumed).
    """
    zones = make_zones(extent, rng)
    roads, theta = road_network(extent, core, zones, rng)
    occ_roads = Occupancy()
    for r in roads:
        occ_roads.add(r.poly)
    fields = make_fields(extent, theta, zones, occ_roads, rng)
    occ_solid = Occupancy()
    for f in fields:
        occ_solid.add(f.poly)
    xmin, ymin, xmax, ymax = extent
    grown = box(xmin - 20, ymin - 20, xmax + 20, ymax + 20)
    buildings = _existing_buildings(roads, zones, occ_roads, occ_solid, grown, rng)
    events, frac = add_changes(roads, buildings, zones, occ_roads, occ_solid, inner, tiles, rng)
    trees = make_trees(extent, zones, roads, buildings, fields, rng)
    return World(extent, zones, roads, fields, buildings, trees, theta, events, frac)


def truth_records(world: World) -> list[dict]:
    """Changed objects with exact geometry (the pixels of each date follow these polygons).

    A new road's polygon excludes the parts already paved before (junctions with older roads).
    """
    recs: list[dict] = []
    paved = shapely.union_all([r.poly for r in world.roads if r.state == "existing"])
    for r in world.roads:
        if r.state != "new":
            continue
        geom = shapely.normalize(r.poly.difference(paved))
        paved = paved.union(r.poly)
        recs.append(
            {
                "object_id": f"road-{r.rid:04d}",
                "class": "road",
                "change": "new",
                "area_m2": float(geom.area),
                "geometry": geom,
            }
        )
    for b in world.buildings:
        if b.state == "existing":
            continue
        recs.append(
            {
                "object_id": f"building-{b.bid:05d}",
                "class": "building",
                "change": b.state,
                "area_m2": float(b.footprint.area),
                "geometry": b.footprint,
            }
        )
    return recs


__all__ = ["Trees", "World", "build_world", "truth_records"]
