"""Layout of the synthetic world: land-use zones, road network, fields and buildings.

All geometry is in scene-CRS metres. The change events live in ``_events`` and trees in
``_world``; both reuse the placement helpers here.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import shapely
from scipy import ndimage
from shapely.geometry import LineString, Polygon, box

from ._geom import Road, walk_curve
from ._noise import fbm, smoothstep

ZONE_RES = 8.0  # metres per cell of the land-use zone grids


@dataclass
class Field:
    """An agricultural parcel; its look changes with the season."""

    poly: Polygon
    crop: str  # "green" | "dry" | "bare" | "orchard"
    row_angle: float
    row_period: float
    tint: float


@dataclass
class Zones:
    """Land-use intensities (0..1) on a coarse grid anchored at the canvas top-left corner."""

    x0: float
    y0: float
    urban: np.ndarray
    veg: np.ndarray
    farm: np.ndarray

    def sample(self, name: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Bilinear lookup of one zone grid at scene coordinates."""
        grid = getattr(self, name)
        rows = (self.y0 - np.asarray(y, float)) / ZONE_RES
        cols = (np.asarray(x, float) - self.x0) / ZONE_RES
        return ndimage.map_coordinates(
            grid, [np.atleast_1d(rows), np.atleast_1d(cols)], order=1, mode="nearest"
        )


def make_zones(extent: tuple[float, float, float, float], rng: np.random.Generator) -> Zones:
    """Urban, vegetation and farmland intensity grids; urban covers 35-70 % of the area."""
    xmin, ymin, xmax, ymax = extent
    shape = (
        int(math.ceil((ymax - ymin) / ZONE_RES)) + 2,
        int(math.ceil((xmax - xmin) / ZONE_RES)) + 2,
    )
    u = fbm(shape, rng, cell_px=40, octaves=3)
    q = float(np.quantile(u, 1.0 - rng.uniform(0.35, 0.7)))
    urban = smoothstep(u, q - 0.5, q + 0.5)
    veg = smoothstep(fbm(shape, rng, cell_px=25, octaves=3), -0.6, 1.2)
    farm = smoothstep(fbm(shape, rng, cell_px=50, octaves=2), -0.2, 0.6) * (1.0 - urban) ** 2
    return Zones(xmin, ymax, urban, veg, farm)


class Occupancy:
    """Spatial hash of placed polygons, for fast collision tests while placing objects."""

    def __init__(self, cell: float = 64.0) -> None:
        self.cell = cell
        self.grid: dict[tuple[int, int], list[Polygon]] = defaultdict(list)

    def _cells(self, geom) -> list[tuple[int, int]]:
        x0, y0, x1, y1 = geom.bounds
        c = self.cell
        return [
            (i, j)
            for i in range(int(x0 // c), int(x1 // c) + 1)
            for j in range(int(y0 // c), int(y1 // c) + 1)
        ]

    def add(self, geom) -> None:
        """Insert a polygon (prepared, stored in every cell its bounds touch)."""
        shapely.prepare(geom)
        cells = self._cells(geom)
        if len(cells) > 8:  # long roads: keep only the cells the shape really crosses
            c = self.cell
            boxes = [box(i * c, j * c, (i + 1) * c, (j + 1) * c) for i, j in cells]
            hits = shapely.intersects(geom, boxes)
            cells = [ij for ij, hit in zip(cells, hits, strict=True) if hit]
        for ij in cells:
            self.grid[ij].append(geom)

    def free(self, geom, clearance: float = 0.0) -> bool:
        """True when ``geom`` grown by ``clearance`` touches nothing stored."""
        g = geom.buffer(clearance, join_style="mitre") if clearance > 0 else geom
        seen: dict[int, Polygon] = {}
        for ij in self._cells(g):
            for p in self.grid.get(ij, ()):
                seen[id(p)] = p
        return not seen or not bool(shapely.intersects(list(seen.values()), g).any())


def smoothstep1(x: float, lo: float, hi: float) -> float:
    """Scalar version of :func:`smoothstep`."""
    t = min(max((x - lo) / (hi - lo), 0.0), 1.0)
    return t * t * (3.0 - 2.0 * t)


def grow_road(
    start: np.ndarray,
    heading: float,
    length: float,
    lines: list[LineString],
    bounds: Polygon,
    rng: np.random.Generator,
    *,
    spacing: float = 35.0,
    curv_sd: float = 0.003,
) -> tuple[LineString | None, bool]:
    """Grow a curved road from ``start``; stop near other roads (joining them) or at ``bounds``.

    Returns the centreline (None when too short) and whether it ends in a dead end.
    """
    pts = walk_curve(tuple(start), heading, length, rng, curv_sd=curv_sd)
    inside = shapely.contains_xy(bounds, pts[:, 0], pts[:, 1])
    stop = int(np.argmin(inside)) if not inside.all() else len(pts)
    pts = pts[:stop]
    if len(pts) < 6:
        return None, False
    others = shapely.MultiLineString(lines)
    d = shapely.distance(shapely.points(pts), others)
    arc = np.arange(len(pts)) * 8.0
    close = np.nonzero((d < spacing) & (arc > spacing + 10))[0]
    dead_end = True
    if close.size:
        i = int(close[0])
        pts = pts[:i]
        head = pts[-1] - pts[-2]
        head /= np.linalg.norm(head)
        ray = LineString([pts[-1], pts[-1] + head * (spacing + 30)])
        hit = ray.intersection(others)
        if not hit.is_empty:
            hp = shapely.get_coordinates(hit)
            j = int(np.argmin(np.linalg.norm(hp - pts[-1], axis=1)))
            pts = np.vstack([pts, hp[j]])
            dead_end = False
    if len(pts) < 6:
        return None, False
    return LineString(pts), dead_end


def road_network(
    extent: tuple[float, float, float, float],
    core: Polygon,
    zones: Zones,
    rng: np.random.Generator,
) -> tuple[list[Road], float]:
    """Main roads crossing the scene plus local roads branching off them (existing state)."""
    xmin, ymin, xmax, ymax = extent
    area_km2 = (xmax - xmin) * (ymax - ymin) / 1e6
    span = math.hypot(xmax - xmin, ymax - ymin)
    grown = box(xmin - 30, ymin - 30, xmax + 30, ymax + 30)
    theta = rng.uniform(0, math.pi)
    roads: list[Road] = []
    cx0, cy0, cx1, cy1 = core.bounds
    n_main = 1 + int(math.sqrt(area_km2) * 0.8 + rng.random())
    for i in range(n_main):
        head = theta + (math.pi / 2) * (i % 2) + rng.normal(0, 0.1)
        p = np.array([rng.uniform(cx0, cx1), rng.uniform(cy0, cy1)])
        fwd = walk_curve(tuple(p), head, span, rng, curv_sd=0.0006, curv_max=0.003)
        back = walk_curve(tuple(p), head + math.pi, span, rng, curv_sd=0.0006, curv_max=0.003)
        line = LineString(np.vstack([back[::-1], fwd[1:]]))
        width = rng.uniform(10, 14)
        roads.append(
            Road(
                len(roads),
                line,
                width,
                "main",
                "existing",
                rng.uniform(0.40, 0.50),
                0.0,
                str(rng.choice(["yellow", "white"])),
            )
        )
    for _ in range(int(area_km2 * 30) + 3):
        lengths = np.array([r.line.length for r in roads])
        parent = roads[int(rng.choice(len(roads), p=lengths / lengths.sum()))]
        pts, tan = parent.samples(4.0)
        ok = shapely.contains_xy(grown, pts[:, 0], pts[:, 1])
        if not ok.any():
            continue
        k = int(rng.choice(np.nonzero(ok)[0]))
        others = [r.line for r in roads if r is not parent]
        if others and shapely.distance(shapely.Point(pts[k]), shapely.MultiLineString(others)) < 45:
            continue  # no junctions right next to other junctions
        side = rng.choice([-1.0, 1.0])
        nrm = np.array([-tan[k, 1], tan[k, 0]]) * side
        probe = pts[k] + nrm * 60
        urb = zones.sample("urban", probe[0], probe[1])[0]
        if urb < rng.uniform(0.15, 0.6):
            continue
        head = math.atan2(nrm[1], nrm[0]) + rng.normal(0, 0.15)
        line, dead = grow_road(
            pts[k], head, rng.uniform(120, 450), [r.line for r in roads], grown, rng
        )
        if line is None or line.length < 90:
            continue
        walk = 1.5 if urb > 0.45 else 0.0
        roads.append(
            Road(
                len(roads),
                line,
                rng.uniform(6.5, 8.5) + 2 * walk,
                "local",
                "existing",
                rng.uniform(0.38, 0.52),
                walk,
                None,
                dead,
            )
        )
    return roads, theta


def make_fields(
    extent: tuple[float, float, float, float],
    theta: float,
    zones: Zones,
    occ_roads: Occupancy,
    rng: np.random.Generator,
) -> list[Field]:
    """Parcels in strips aligned with the main roads, where farmland is likely.

    Strips have one width; each strip is cut into parcels of random length; corners are jittered
    a little so that the boundaries are not ruler-straight.
    """
    xmin, ymin, xmax, ymax = extent
    cu = rng.uniform(80, 180)
    c, s = math.cos(theta), math.sin(theta)
    cx, cy = (xmin + xmax) / 2, (ymin + ymax) / 2
    half = math.hypot(xmax - xmin, ymax - ymin) / 2
    fields: list[Field] = []
    for i in range(-int(half // cu) - 1, int(half // cu) + 2):
        v = -half + rng.uniform(0, 80)
        while v < half:
            length = rng.uniform(50, 220)
            u0, u1, v0, v1 = i * cu, (i + 1) * cu, v, v + length
            v = v1
            mu, mv = (u0 + u1) / 2, (v0 + v1) / 2
            px, py = cx + mu * c - mv * s, cy + mu * s + mv * c
            if not (xmin < px < xmax and ymin < py < ymax):
                continue
            if zones.sample("farm", px, py)[0] < rng.uniform(0.25, 0.55):
                continue
            ins = rng.uniform(2.0, 5.0)
            corners = np.array(
                [
                    (u0 + ins, v0 + ins),
                    (u1 - ins, v0 + ins),
                    (u1 - ins, v1 - ins),
                    (u0 + ins, v1 - ins),
                ]
            ) + rng.uniform(-1.5, 1.5, (4, 2))
            if rng.random() < 0.25:  # split across the strip
                cut = rng.uniform(0.35, 0.65)
                um = u0 + ins + (u1 - u0 - 2 * ins) * cut
                parts = [corners.copy(), corners.copy()]
                parts[0][[1, 2], 0] = um - ins
                parts[1][[0, 3], 0] = um + ins
            else:
                parts = [corners]
            for q in parts:
                poly = Polygon(
                    np.column_stack(
                        [cx + q[:, 0] * c - q[:, 1] * s, cy + q[:, 0] * s + q[:, 1] * c]
                    )
                )
                if not poly.is_valid or poly.area < 1500 or not occ_roads.free(poly, 6.0):
                    continue
                crop = str(
                    rng.choice(["green", "dry", "bare", "orchard"], p=[0.4, 0.3, 0.18, 0.12])
                )
                angle = theta + (math.pi / 2 if rng.random() < 0.7 else 0.0)
                fields.append(
                    Field(poly, crop, angle, rng.uniform(1.6, 3.2), rng.uniform(0.92, 1.08))
                )
    return fields
