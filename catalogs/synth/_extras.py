"""What strong nuisance draws on one date: cars, paving and sites shown, crops, tree states.

Everything here is drawable surfaces (polygon, rgb, texture amplitude) for the renderer, plus
extra cast-shadow polygons and per-tree states (0 leaf-on, 1 leaf-off, 2 cleared).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import shapely
import shapely.affinity
from shapely.geometry import Point, Polygon

from ._nuisance import Nuisance
from ._scene import Look
from ._world import World

CAR_COLOURS = {  # display RGB and share of the fleet (white, black, grey and silver dominate)
    (0.88, 0.88, 0.87): 0.25,
    (0.10, 0.10, 0.11): 0.20,
    (0.40, 0.41, 0.42): 0.15,
    (0.68, 0.69, 0.70): 0.17,
    (0.60, 0.12, 0.10): 0.09,
    (0.15, 0.22, 0.45): 0.08,
    (0.62, 0.56, 0.45): 0.03,
    (0.15, 0.27, 0.18): 0.03,
}
GLASS = (0.13, 0.14, 0.16)
FENCE = (0.33, 0.33, 0.32)
TRAILER = (0.86, 0.86, 0.84)
MARK_WHITE = (0.80, 0.80, 0.78)
CAR_HEIGHT = 1.45  # m, for the car's cast shadow


@dataclass
class DateExtras:
    """Per-date additions for :func:`catalogs.synth._render.render`."""

    crops: list[str]
    field_phase: np.ndarray
    tree_state: np.ndarray  # uint8 per tree: 0 leaf-on, 1 leaf-off, 2 cleared
    ground: list[tuple] = field(default_factory=list)  # take shadows (paving, soil, cars)
    raised: list[tuple] = field(default_factory=list)  # painted like roofs (piles, trailers)
    shadows: list[Polygon] = field(default_factory=list)  # extra cast shadows
    summary: dict = field(default_factory=dict)


def _rects(cx, cy, ang, length, width) -> np.ndarray:
    """Rotated rectangles as an array of polygons (vectorised)."""
    c, s = np.cos(ang), np.sin(ang)
    u = np.array([-0.5, 0.5, 0.5, -0.5])[None, :] * length[:, None]
    v = np.array([-0.5, -0.5, 0.5, 0.5])[None, :] * width[:, None]
    x = cx[:, None] + u * c[:, None] - v * s[:, None]
    y = cy[:, None] + u * s[:, None] + v * c[:, None]
    return shapely.polygons(np.stack([x, y], axis=-1))


def _lane_cars(world: World, state: str, rng: np.random.Generator) -> list[np.ndarray]:
    """Cars driving in lanes and parked at the kerb: rows of (x, y, heading)."""
    traffic = {"main": rng.uniform(4, 30), "local": rng.uniform(1, 12)}  # cars per km per lane
    parked = rng.uniform(0, 30)  # per km per kerb side of urban local roads
    out = []
    xmin, ymin, xmax, ymax = world.extent  # roads run past the canvas; cars there are not drawn
    for r in world.roads:
        if r.state == "new" and state == "before":
            continue
        aw = r.width - 2 * r.sidewalk
        lanes = [(0.15, traffic[r.kind]), (0.36, traffic[r.kind])] if aw >= 10 else []
        lanes = lanes or [(0.22, traffic[r.kind])]
        lanes = [(f * aw, lam) for f, lam in lanes]
        if r.kind == "local" and r.sidewalk > 0:
            lanes.append((aw / 2 - 1.1, parked))
        pts, tan = r.samples(1.0)
        length = len(pts) - 1
        for side in (-1.0, 1.0):
            for off, lam in lanes:
                n = rng.poisson(lam * length / 1000)
                if n == 0:
                    continue
                s = np.sort(rng.uniform(4, max(length - 4, 4.5), n))
                s = s[np.concatenate([[True], np.diff(s) > 6.5])]
                k = s.astype(int)
                nrm = np.stack([-tan[k, 1], tan[k, 0]], axis=1) * side
                xy = pts[k] + nrm * off
                head = np.arctan2(tan[k, 1], tan[k, 0]) + (0.0 if side < 0 else np.pi)
                ok = shapely.contains_xy(r.poly, xy[:, 0], xy[:, 1])
                ok &= (xy[:, 0] > xmin) & (xy[:, 0] < xmax) & (xy[:, 1] > ymin) & (xy[:, 1] < ymax)
                out.append(np.column_stack([xy[ok], head[ok]]))
    return out


def _cars(rows: np.ndarray, look: Look, rng: np.random.Generator) -> tuple[list, list]:
    """Car bodies, windows and shadows for rows of (x, y, heading)."""
    n = len(rows)
    if n == 0:
        return [], []
    x, y, head = rows[:, 0], rows[:, 1], rows[:, 2]
    big = rng.random(n) < 0.05  # vans and small trucks
    length = np.where(big, rng.uniform(5.8, 8.0, n), rng.uniform(4.2, 4.9, n))
    width = np.where(big, rng.uniform(2.1, 2.5, n), rng.uniform(1.75, 2.0, n))
    cols = list(CAR_COLOURS)
    pick = rng.choice(len(cols), n, p=list(CAR_COLOURS.values()))
    pick[big & (rng.random(n) < 0.7)] = 0
    bright = rng.uniform(0.9, 1.08, n)
    body = _rects(x, y, head, length, width)
    fwd = np.stack([np.cos(head), np.sin(head)], axis=1)
    fx, fy = x + fwd[:, 0] * length * 0.17, y + fwd[:, 1] * length * 0.17
    front = _rects(fx, fy, head, np.where(big, 0.7, 0.9), width * 0.86)
    rx, ry = x - fwd[:, 0] * length * 0.31, y - fwd[:, 1] * length * 0.31
    rear = _rects(rx, ry, head, np.where(big, 0.0, 0.55), width * 0.8)
    vec = look.shadow_vec
    moved = shapely.transform(body, lambda c: c + np.array(vec) * CAR_HEIGHT)
    shadows = [g for g in shapely.difference(moved, body) if not g.is_empty]
    surf = []
    for i in range(n):
        rgb = tuple(float(min(v * bright[i], 0.95)) for v in cols[int(pick[i])])
        surf.append((body[i], rgb, 0.02))
        surf.append((front[i], GLASS, 0.02))
        if not big[i]:
            surf.append((rear[i], GLASS, 0.02))
    return surf, shadows


def _pile(x: float, y: float, r: float, h: float, rgb, look: Look) -> tuple[list, Polygon]:
    """A stockpile: lit and shaded halves of a disc, and its cast shadow."""
    disc = Point(x, y).buffer(r, quad_segs=6)
    sx, sy = look.sun[0], look.sun[1]
    norm = math.hypot(sx, sy) or 1.0
    half = shapely.geometry.box(0, -2 * r, 2 * r, 2 * r)
    half = shapely.affinity.rotate(half, math.degrees(math.atan2(sy, sx)), origin=(0, 0))
    lit = disc.intersection(shapely.affinity.translate(half, x, y))
    dark = disc.difference(lit)
    k_lit = 1.0 + 0.12 * norm
    k_dark = 0.62 + 0.3 * look.sun[2]
    surf = [
        (dark, tuple(min(c * k_dark, 1.0) for c in rgb), 0.1),
        (lit, tuple(min(c * k_lit, 1.0) for c in rgb), 0.1),
    ]
    vec = look.shadow_vec
    moved = shapely.affinity.translate(disc, vec[0] * h * 0.6, vec[1] * h * 0.6)
    return surf, shapely.convex_hull(shapely.MultiPolygon([disc, moved]))


def date_extras(
    world: World, plan: Nuisance, state: str, look: Look, rng: np.random.Generator
) -> DateExtras:
    """Draw one date's strong-nuisance surfaces (``state`` is "before" or "after")."""
    di = 0 if state == "before" else 1
    crops = []
    for f in world.fields:
        redraw = f.crop != "orchard" and rng.random() < 0.5
        crops.append(
            str(rng.choice(["green", "dry", "bare"], p=[0.45, 0.35, 0.2])) if redraw else f.crop
        )
    phase = rng.uniform(0.0, 1.0, len(world.fields))
    tree_state = np.zeros(world.trees.x.size, np.uint8)
    if look.leaf_off:
        tree_state[plan.deciduous] = 1
    tree_state[plan.hidden[di]] = 2
    ex = DateExtras(crops, phase, tree_state)
    built = {b.bid: b.state for b in world.buildings}
    slots = []
    for p in plan.pavings:
        if state == "before" and built[p.owner] == "new":
            continue
        ex.ground.append((p.poly, p.rgb, 0.05 if p.kind == "driveway" else 0.06))
        ex.ground += [(m, MARK_WHITE, 0.03) for m in p.marks]
        if p.kind == "lot":
            take = rng.random(len(p.slots)) < rng.uniform(0.1, 0.9)
        else:
            take = np.arange(len(p.slots)) < rng.choice(3, p=[0.45, 0.4, 0.15])
        flip = rng.random(len(p.slots)) < 0.5
        slots += [
            (x, y, a + (math.pi if fl else 0.0))
            for (x, y, a), t, fl in zip(p.slots, take, flip, strict=True)
            if t
        ]
    shown = 0
    for s in plan.sites:
        if not s.dates[di]:
            continue
        shown += 1
        rgb = s.rgb[di]
        ex.ground.append((s.poly, rgb, 0.18))
        ex.ground += [(t, tuple(c * 0.86 for c in rgb), 0.12) for t in s.tracks]
        if s.kind == "fenced":
            ex.ground.append((s.poly.exterior.buffer(0.3), FENCE, 0.0))
        for x, y, r, h in s.piles:
            pile_rgb = tuple(min(c * rng.uniform(0.9, 1.1), 1.0) for c in rgb)
            surf, shade = _pile(x, y, r, h, pile_rgb, look)
            ex.raised += surf
            ex.shadows.append(shade)
        if s.trailer is not None:
            ex.raised.append((s.trailer, TRAILER, 0.02))
            vec = look.shadow_vec
            moved = shapely.affinity.translate(s.trailer, vec[0] * 2.6, vec[1] * 2.6)
            ex.shadows.append(shapely.convex_hull(shapely.MultiPolygon([s.trailer, moved])))
    rows = _lane_cars(world, state, rng)
    if slots:
        rows.append(np.array(slots))
    cars = np.concatenate(rows) if rows else np.zeros((0, 3))
    surf, shadows = _cars(cars, look, rng)
    ex.ground += surf
    ex.shadows += shadows
    ex.summary = {
        "n_cars": int(len(cars)),
        "n_sites_shown": shown,
        "leaf_off": bool(look.leaf_off),
        "n_trees_leaf_off": int((tree_state == 1).sum()),
        "n_trees_cleared": int((tree_state == 2).sum()),
        "lean_m_per_m": [round(v, 4) for v in look.lean],
        "n_fields_recropped": int(
            sum(c != f.crop for c, f in zip(crops, world.fields, strict=True))
        ),
    }
    return ex
