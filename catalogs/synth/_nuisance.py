"""Structural non-change of ``nuisance="strong"`` regions: the date-independent plan.

Paving that belongs to a building (driveways, parking lots in front of commercial buildings),
construction that is not a finished building (graded lots, dirt patches, stockpiles, fenced
sites with bare soil) that appears or disappears between the dates, extra tree crowns that
overhang roof edges, and which trees are deciduous. None of it is change truth: it never touches
a changed building or road, so ``truth.parquet`` and :func:`rasterize_truth` stay exact. The
per-date part (cars, leaf-off, which sites show) is in ``_extras``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry import LineString, Point, Polygon

from ._geom import Building, Road, rect
from ._layout import Occupancy
from ._world import Trees, World

SITE_SOIL = [
    (0.72, 0.65, 0.54),
    (0.64, 0.56, 0.45),
    (0.55, 0.48, 0.39),
    (0.66, 0.53, 0.42),
    (0.62, 0.61, 0.57),
    (0.76, 0.71, 0.62),
]
CONCRETE = [(0.72, 0.71, 0.68), (0.66, 0.65, 0.62), (0.78, 0.76, 0.72)]
SITE_KINDS = {"graded": 0.35, "dirt": 0.3, "fenced": 0.2, "stockpile": 0.15}
STALL_W, STALL_L = 2.6, 5.0


@dataclass
class Paving:
    """A driveway or parking lot of one building; drawn whenever its building has been built."""

    poly: Polygon
    rgb: tuple[float, float, float]
    owner: int  # building id
    kind: str  # "driveway" | "lot"
    slots: list[tuple[float, float, float]]  # car slots: centre x, y, long-axis angle (rad)
    marks: list[Polygon] = field(default_factory=list)  # stall lines


@dataclass
class Site:
    """Earthworks or a construction site that is not a building (never change truth)."""

    poly: Polygon
    kind: str  # "graded" | "dirt" | "fenced" | "stockpile"
    dates: tuple[bool, bool]  # shown before, shown after
    rgb: tuple[tuple[float, float, float], tuple[float, float, float]]  # per date
    tracks: list[Polygon]  # tyre tracks (graded lots)
    piles: list[tuple[float, float, float, float]]  # stockpiles: x, y, radius, height (m)
    trailer: Polygon | None = None  # site office / container (fenced sites)


@dataclass
class Nuisance:
    """What strong nuisance adds to a world, independent of the date."""

    pavings: list[Paving]
    sites: list[Site]
    deciduous: np.ndarray  # bool per tree (after the roof crowns were appended)
    hidden: np.ndarray  # bool (2, trees): crown cleared by a site before / after
    n_roof_trees: int

    def summary(self) -> dict[str, int]:
        """Counts for ``truth.json`` (what the plan put in the region)."""
        kinds = [s.kind for s in self.sites]
        return {
            "n_driveways": sum(p.kind == "driveway" for p in self.pavings),
            "n_parking_lots": sum(p.kind == "lot" for p in self.pavings),
            "n_sites": len(self.sites),
            **{f"n_sites_{k}": kinds.count(k) for k in SITE_KINDS},
            "n_sites_before_only": sum(s.dates == (True, False) for s in self.sites),
            "n_sites_after_only": sum(s.dates == (False, True) for s in self.sites),
            "n_roof_trees": self.n_roof_trees,
            "n_deciduous_trees": int(self.deciduous.sum()),
        }


def _blockers(world: World) -> Occupancy:
    occ = Occupancy()
    for r in world.roads:
        occ.add(r.poly)
    for b in world.buildings:
        occ.add(b.footprint)
    for f in world.fields:
        occ.add(f.poly)
    return occ


def _frame(b: Building, road: Road) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Nearest centreline point, unit vectors towards the building (u) and along the road (v),
    and the footprint's (u, v) coordinates relative to that point."""
    c = b.footprint.centroid
    p = road.line.interpolate(road.line.project(c))
    p = np.array([p.x, p.y])
    d = np.array([c.x, c.y]) - p
    u = d / max(float(np.linalg.norm(d)), 1e-6)
    v = np.array([-u[1], u[0]])
    xy = shapely.get_coordinates(b.footprint) - p
    return p, u, v, np.stack([xy @ u, xy @ v], axis=1)


def _uv_poly(p, u, v, u0, u1, v0, v1) -> Polygon:
    pts = [(a, b) for a, b in ((u0, v0), (u1, v0), (u1, v1), (u0, v1))]
    return Polygon([tuple(p + u * a + v * b) for a, b in pts])


def _pavings(world: World, occ: Occupancy, rng: np.random.Generator) -> list[Paving]:
    existing = [r for r in world.roads if r.state == "existing"]
    lines_e = shapely.STRtree([r.line for r in existing])
    lines_a = shapely.STRtree([r.line for r in world.roads])
    out: list[Paving] = []
    for b in world.buildings:
        house = b.roof != "flat" or b.footprint.area < 250
        if rng.random() > (0.7 if house else 0.8):
            continue
        roads, tree = (world.roads, lines_a) if b.state == "new" else (existing, lines_e)
        k = tree.nearest(b.footprint.centroid)
        if k is None:
            continue
        road = roads[int(k)]
        p, u, v, uv = _frame(b, road)
        umin, vmin, vmax = float(uv[:, 0].min()), float(uv[:, 1].min()), float(uv[:, 1].max())
        edge = road.width / 2
        if not edge + 2.0 < umin < edge + 28.0:
            continue
        if house:
            w = rng.uniform(3.0, 5.5)
            lo, hi = vmin + w / 2 + 0.5, vmax - w / 2 - 0.5
            if lo >= hi:
                continue
            t = rng.uniform(lo, hi)
            poly = _uv_poly(p, u, v, edge - 0.5, umin + 1.0, t - w / 2, t + w / 2)
            ang = math.atan2(u[1], u[0])
            slots = [
                (*(p + u * (umin - s) + v * t), ang) for s in (3.0, 8.2) if umin - s - 2.4 > edge
            ]
            rgb = CONCRETE[int(rng.integers(len(CONCRETE)))] if rng.random() < 0.8 else None
            rgb = rgb or (float(rng.uniform(0.28, 0.4)),) * 3
            marks: list[Polygon] = []
        else:
            e0, e1 = rng.uniform(0, 10, 2)
            u0, u1 = edge + 0.8, umin - 1.0
            if u1 - u0 < STALL_L + 0.5:
                continue
            poly = _uv_poly(p, u, v, u0, u1, vmin - e0, vmax + e1)
            rows = [u1 - STALL_L / 2] + ([u0 + STALL_L / 2] if u1 - u0 >= 2 * STALL_L + 5 else [])
            ang = math.atan2(u[1], u[0])
            vs = np.arange(vmin - e0 + STALL_W / 2 + 0.3, vmax + e1 - STALL_W / 2, STALL_W)
            slots = [(*(p + u * uc + v * vc), ang) for uc in rows for vc in vs]
            marks = [
                _uv_poly(p, u, v, uc - STALL_L / 2, uc + STALL_L / 2, vc - 0.2, vc + 0.2)
                for uc in rows
                for vc in np.append(vs - STALL_W / 2, vs[-1] + STALL_W / 2 if vs.size else [])
            ]
            tone = float(rng.uniform(0.26, 0.42))
            rgb = (tone, tone, tone * 1.03)
        poly = poly.difference(b.footprint).difference(road.poly)
        if poly.geom_type == "MultiPolygon":
            poly = max(poly.geoms, key=lambda g: g.area)
        if poly.geom_type != "Polygon" or poly.area < 8.0 or not occ.free(poly.buffer(-0.3)):
            continue
        occ.add(poly)
        marks = [m.intersection(poly) for m in marks]
        out.append(
            Paving(
                poly,
                tuple(float(c) for c in rgb),
                b.bid,
                "lot" if marks else "driveway",
                slots,
                [m for m in marks if not m.is_empty],
            )
        )
    return out


def _blob(c: np.ndarray, radius: float, rng: np.random.Generator) -> Polygon:
    ang = np.sort(rng.uniform(0, 2 * np.pi, 11))
    rad = radius * rng.uniform(0.6, 1.0, ang.size)
    pts = np.column_stack([c[0] + rad * np.cos(ang), c[1] + rad * np.sin(ang)])
    return Polygon(pts).buffer(2.0).buffer(-2.0)


def _site(world: World, occ: Occupancy, rng: np.random.Generator) -> Site | None:
    roads = [r for r in world.roads if r.state == "existing"]
    lengths = np.array([r.line.length for r in roads])
    road = roads[int(rng.choice(len(roads), p=lengths / lengths.sum()))]
    pts, tan = road.samples(1.0)
    k = int(rng.integers(len(pts)))
    t = tan[k]
    n = np.array([-t[1], t[0]]) * rng.choice([-1.0, 1.0])
    kind = str(rng.choice(list(SITE_KINDS), p=list(SITE_KINDS.values())))
    ang = math.atan2(t[1], t[0])
    if kind in ("graded", "fenced"):
        length, width = rng.uniform(18, 60), rng.uniform(14, 40)
        c = pts[k] + n * (road.width / 2 + rng.uniform(2, 30) + width / 2)
        poly = rect(c[0], c[1], ang + rng.normal(0, 0.03), length, width)
    else:
        radius = rng.uniform(6, 18)
        c = pts[k] + n * (road.width / 2 + rng.uniform(2, 40) + radius)
        poly = _blob(c, radius, rng)
    xmin, ymin, xmax, ymax = world.extent
    if not shapely.box(xmin + 5, ymin + 5, xmax - 5, ymax - 5).contains(poly):
        return None
    if not poly.is_valid or not occ.free(poly, 2.5):
        return None
    u = rng.random()
    dates = (True, False) if u < 0.3 else (False, True) if u < 0.75 else (True, True)
    rgb = tuple(SITE_SOIL[int(i)] for i in rng.integers(len(SITE_SOIL), size=2))
    tracks: list[Polygon] = []
    if kind == "graded":
        for _ in range(int(rng.integers(2, 7))):
            a = rng.uniform(0, np.pi)
            d = np.array([math.cos(a), math.sin(a)]) * 80
            o = c + rng.uniform(-10, 10, 2)
            line = LineString([o - d, o + d]).buffer(rng.uniform(0.6, 1.3), cap_style="flat")
            part = line.intersection(poly)
            if not part.is_empty:
                tracks.append(part)
    piles: list[tuple[float, float, float, float]] = []
    if kind == "stockpile":
        for _ in range(int(rng.integers(1, 6))):
            r = rng.uniform(1.5, 4.5)
            q = poly.buffer(-r)
            if q.is_empty:
                break
            x0, y0, x1, y1 = q.bounds
            pt = np.array([rng.uniform(x0, x1), rng.uniform(y0, y1)])
            if q.contains(Point(pt)) and all(math.dist(pt, p[:2]) > r + p[2] for p in piles):
                piles.append((float(pt[0]), float(pt[1]), r, r * rng.uniform(0.45, 0.8)))
    trailer = None
    if kind == "fenced" and rng.random() < 0.7:
        q = poly.buffer(-4.0)
        if not q.is_empty:
            p = q.representative_point()
            trailer = rect(p.x, p.y, ang, rng.uniform(6, 12), 2.5)
    occ.add(poly)
    return Site(poly, kind, dates, rgb, tracks, piles, trailer)  # type: ignore[arg-type]


def _roof_trees(world: World, rng: np.random.Generator) -> Trees:
    changed = Occupancy()
    for r in world.roads:
        if r.state == "new":
            changed.add(r.poly)
    for b in world.buildings:
        if b.state != "existing":
            changed.add(b.footprint)
    xs, ys, rs, hs = [], [], [], []
    for b in world.buildings:
        if b.state != "existing" or rng.random() > 0.22:
            continue
        c = b.footprint.centroid
        for _ in range(1 + int(rng.random() < 0.3)):
            pt = b.footprint.exterior.interpolate(rng.uniform(0, 1), normalized=True)
            out = np.array([pt.x - c.x, pt.y - c.y])
            out /= max(float(np.linalg.norm(out)), 1e-6)
            r = rng.uniform(2.0, 4.0)
            ctr = np.array([pt.x, pt.y]) + out * r * rng.uniform(-0.2, 0.5)
            if not changed.free(Point(ctr).buffer(r), 1.5):
                continue
            xs.append(ctr[0])
            ys.append(ctr[1])
            rs.append(r)
            hs.append(b.height + rng.uniform(1.5, 5.0))
    m = len(xs)
    return Trees(
        np.array(xs),
        np.array(ys),
        np.array(rs),
        np.array(hs),
        rng.uniform(0.85, 1.15, m),
        rng.uniform(-1, 1, m),
    )


def plan_nuisance(world: World, rng: np.random.Generator) -> Nuisance:
    """Add the strong-nuisance plan to ``world`` (roof crowns are appended to its trees)."""
    extra = _roof_trees(world, rng)
    t = world.trees
    world.trees = Trees(
        *(
            np.concatenate([getattr(t, f), getattr(extra, f)])
            for f in ("x", "y", "r", "h", "tint", "hue")
        )
    )
    occ = _blockers(world)
    pavings = _pavings(world, occ, rng)
    xmin, ymin, xmax, ymax = world.extent
    area_km2 = (xmax - xmin) * (ymax - ymin) / 1e6
    target = int(round(area_km2 * rng.uniform(8, 18)))
    sites: list[Site] = []
    if any(r.state == "existing" for r in world.roads):
        for _ in range(target * 8):
            if len(sites) >= target:
                break
            s = _site(world, occ, rng)
            if s is not None:
                sites.append(s)
    n = world.trees.x.size
    hidden = np.zeros((2, n), bool)
    for s in sites:
        inside = shapely.contains_xy(s.poly.buffer(1.0), world.trees.x, world.trees.y)
        hidden[0] |= inside & s.dates[0]
        hidden[1] |= inside
    deciduous = rng.random(n) < rng.uniform(0.25, 0.7)
    return Nuisance(pavings, sites, deciduous, hidden, int(extra.x.size))
