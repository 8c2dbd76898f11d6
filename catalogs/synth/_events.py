"""Change events between the two dates.

Events mimic what LEVIR-CC annotates: rows of new buildings along an existing road (infill), new
subdivisions (a new road with new houses along it), new roads alone, large new buildings and
demolitions. Events are added until a target fraction of the 128 m tiles of the before grid has
changed; they stay inside the area both dates see.
"""

from __future__ import annotations

import math

import numpy as np
import shapely
from shapely.geometry import Polygon

from ._buildings import neighbourhood, place_along
from ._geom import Building, Road
from ._layout import Occupancy, Zones, grow_road

EVENT_WEIGHTS = {  # construction dominates, as in LEVIR-CC
    "infill": 0.4,
    "subdivision": 0.28,
    "demolition": 0.12,
    "road": 0.1,
    "large": 0.1,
}
BARE = [
    (0.74, 0.68, 0.58),
    (0.70, 0.63, 0.52),
    (0.73, 0.73, 0.71),
    (0.62, 0.56, 0.47),
    (0.52, 0.47, 0.40),
]


class _Ctx:
    """Shared state while adding events."""

    def __init__(self, roads, buildings, zones, occ_roads, occ_solid, inner, rng) -> None:
        self.roads: list[Road] = roads
        self.buildings: list[Building] = buildings
        self.zones: Zones = zones
        self.occ_roads: Occupancy = occ_roads
        self.occ_solid: Occupancy = occ_solid
        self.inner: Polygon = inner
        self.rng: np.random.Generator = rng

    def pick_road(self, kinds=("main", "local")) -> tuple[Road, np.ndarray, np.ndarray] | None:
        """A random existing road and its 1 m samples that lie inside the change area."""
        cands = [
            r
            for r in self.roads
            if r.state == "existing" and r.kind in kinds and r.line.intersects(self.inner)
        ]
        if not cands:
            return None
        road = cands[int(self.rng.integers(len(cands)))]
        pts, tan = road.samples(1.0)
        inside = shapely.contains_xy(self.inner, pts[:, 0], pts[:, 1])
        if not inside.any():
            return None
        return road, np.nonzero(inside)[0], tan


def _new_road(ctx: _Ctx) -> Road | None:
    """A new local road branching off an existing one into free land (or None)."""
    got = ctx.pick_road()
    if got is None:
        return None
    parent, idx, tan = got
    pts, _ = parent.samples(1.0)
    rng = ctx.rng
    for _ in range(12):  # find a branch point with free land beside the road
        k = int(rng.choice(idx))
        side = rng.choice([-1.0, 1.0])
        nrm = np.array([-tan[k, 1], tan[k, 0]]) * side
        probe = shapely.LineString([pts[k] + nrm * (parent.width / 2), pts[k] + nrm * 40.0])
        if ctx.occ_solid.free(probe, 8.0):
            break
    else:
        return None
    head = math.atan2(nrm[1], nrm[0]) + rng.normal(0, 0.15)
    line, dead = grow_road(
        pts[k], head, rng.uniform(100, 320), [r.line for r in ctx.roads], ctx.inner, rng
    )
    if line is None:
        return None
    urb = float(ctx.zones.sample("urban", *line.interpolate(0.5, normalized=True).xy)[0])
    walk = 1.5 if urb > 0.4 else 0.0
    width = rng.uniform(6.5, 8.0) + 2 * walk
    tone = rng.uniform(0.27, 0.35)
    # Stop before the first building or field in the way (the road then ends in a turning circle).
    coords = np.asarray(line.coords)
    for i in range(1, len(coords)):
        seg = shapely.LineString(coords[i - 1 : i + 1])
        if not ctx.occ_solid.free(seg, width / 2 + 3.0):
            coords, dead = coords[:i], True
            break
    while len(coords) >= 2:
        road = Road(
            len(ctx.roads),
            shapely.LineString(coords),
            width,
            "local",
            "new",
            tone,
            walk,
            None,
            dead,
        )
        if road.line.length < 60:
            return None
        if ctx.occ_solid.free(road.poly, 3.0):
            return road
        coords, dead = coords[:-1], True  # the turning circle collides: shorten a little
    return None


def _commit_road(ctx: _Ctx, road: Road) -> None:
    ctx.roads.append(road)
    ctx.occ_roads.add(road.poly)


def _commit_buildings(ctx: _Ctx, placed: list[Building]) -> None:
    for b in placed:
        b.bid = len(ctx.buildings)
        ctx.buildings.append(b)
        ctx.occ_solid.add(b.footprint)


def _houses_along(
    ctx: _Ctx,
    road: Road,
    extra: list[Occupancy],
    style: str,
    n_min: int,
    s_range: tuple[float, float] | None = None,
    sides: tuple[float, ...] = (-1.0, 1.0),
) -> list[Building]:
    look = neighbourhood(style, ctx.rng)
    placed: list[Building] = []
    tmp = Occupancy()
    rng_s = s_range or (12.0, road.line.length - 4.0)
    for side in sides:
        got = place_along(
            road,
            side,
            rng_s,
            look,
            ctx.rng,
            occ=[ctx.occ_roads, ctx.occ_solid, tmp, *extra],
            within=ctx.inner,
            prob=0.9,
            state="new",
            jitter=0.04,
        )
        for b in got:
            tmp.add(b.footprint)
        placed += got
    return placed if len(placed) >= n_min else []


def _event(ctx: _Ctx, kind: str) -> list | None:
    """Try one event; return the changed objects (committed) or None."""
    rng = ctx.rng
    if kind in ("subdivision", "road"):
        road = _new_road(ctx)
        if road is None:
            return None
        houses: list[Building] = []
        if kind == "subdivision":
            own = Occupancy()
            own.add(road.poly)
            houses = _houses_along(ctx, road, [own], "suburban", 3)
            if not houses:
                return None
        _commit_road(ctx, road)
        _commit_buildings(ctx, houses)
        return [road, *houses]
    if kind in ("infill", "large"):
        got = ctx.pick_road(("local", "main") if kind == "infill" else ("main", "local"))
        if got is None:
            return None
        road, idx, tan = got
        pts, _ = road.samples(1.0)
        if kind == "infill":
            style = "commercial" if road.kind == "main" and rng.random() < 0.3 else "suburban"
            length, n_min = rng.uniform(50, 160), 2
        else:
            style, length, n_min = "commercial", 45.0, 1
        for _ in range(10):  # start where a first lot beside the road is empty
            k = int(rng.choice(idx))
            side = float(rng.choice([-1.0, 1.0]))
            nrm = np.array([-tan[k, 1], tan[k, 0]]) * side
            lot = shapely.Point(pts[k] + nrm * (road.width / 2 + 14.0)).buffer(9.0)
            if ctx.occ_solid.free(lot) and ctx.occ_roads.free(lot):
                break
        else:
            return None
        placed = _houses_along(ctx, road, [], style, n_min, (k - 5.0, k + length), (side,))
        if not placed:
            return None
        _commit_buildings(ctx, placed)
        return placed
    # demolition
    cands = [b for b in ctx.buildings if b.state == "existing" and ctx.inner.contains(b.footprint)]
    if not cands:
        return None
    first = cands[int(rng.integers(len(cands)))]
    group = [first]
    c0 = first.footprint.centroid
    near = [b for b in cands if b is not first and b.footprint.centroid.distance(c0) < 40]
    for b in near[: int(rng.integers(0, 3))]:
        group.append(b)
    for b in group:
        b.state = "demolished"
        # bare soil or a slab that clearly differs from the roof it replaces
        far = sorted(BARE, key=lambda c, b=b: -sum((x - y) ** 2 for x, y in zip(c, b.rgb)))
        bare = far[int(rng.integers(2))]
        b.bare_rgb = tuple(float(v * rng.uniform(0.96, 1.04)) for v in bare)
    return group


def add_changes(
    roads: list[Road],
    buildings: list[Building],
    zones: Zones,
    occ_roads: Occupancy,
    occ_solid: Occupancy,
    inner: Polygon,
    tiles: np.ndarray,
    rng: np.random.Generator,
) -> tuple[list[dict], float]:
    """Add change events until a 20-40 % target fraction of ``tiles`` (polygons) has changed.

    The first events are one with new buildings, one demolition and one new road, so that even
    small regions show every kind of change. Returns event records and the changed fraction.
    """
    ctx = _Ctx(roads, buildings, zones, occ_roads, occ_solid, inner, rng)
    target = rng.uniform(0.2, 0.4)
    changed = np.zeros(len(tiles), bool)
    events: list[dict] = []
    forced = ["subdivision" if rng.random() < 0.5 else "infill", "demolition", "road"]
    kinds, probs = list(EVENT_WEIGHTS), list(EVENT_WEIGHTS.values())
    for attempt in range(400):
        if forced:
            kind = forced[0]
            if attempt >= 30 * (4 - len(forced)):
                forced.pop(0)
                continue
        elif changed.mean() >= target:
            break
        else:
            kind = str(rng.choice(kinds, p=probs))
        objs = _event(ctx, kind)
        if objs is None:
            continue
        if forced:
            forced.pop(0)
        geoms = [o.poly if isinstance(o, Road) else o.footprint for o in objs]
        hit = np.zeros(len(tiles), bool)
        for g in geoms:
            hit |= shapely.intersects(tiles, g)
        changed |= hit
        events.append({"kind": kind, "objects": [_oid(o) for o in objs], "tiles": int(hit.sum())})
    return events, float(changed.mean()) if len(tiles) else 0.0


def _oid(obj: Road | Building) -> str:
    return f"road-{obj.rid:04d}" if isinstance(obj, Road) else f"building-{obj.bid:05d}"
