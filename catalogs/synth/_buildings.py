"""Buildings along roads: neighbourhood styles, roof palettes and collision-free placement."""

from __future__ import annotations

import math

import numpy as np
from shapely.geometry import Polygon

from ._geom import Building, Part, Road
from ._layout import Occupancy, Zones

SHINGLE = [
    (0.36, 0.35, 0.34),
    (0.45, 0.40, 0.36),
    (0.53, 0.52, 0.50),
    (0.30, 0.30, 0.32),
    (0.50, 0.42, 0.35),
    (0.42, 0.44, 0.46),
]
TILE = [(0.66, 0.38, 0.29), (0.72, 0.47, 0.34), (0.58, 0.36, 0.30), (0.76, 0.56, 0.43)]
FLAT = [
    (0.80, 0.80, 0.79),
    (0.91, 0.91, 0.89),
    (0.70, 0.70, 0.69),
    (0.82, 0.78, 0.70),
    (0.58, 0.60, 0.62),
]
METAL = [(0.64, 0.68, 0.72), (0.72, 0.73, 0.74), (0.55, 0.36, 0.31)]

# Frontage / depth / setback / gap (m), roof-type weights, palettes, heights (m).
STYLES: dict[str, dict] = {
    "suburban": {
        "front": (10, 16),
        "depth": (9, 15),
        "setback": (5, 9),
        "gap": (4, 9),
        "roofs": {"hip": 0.45, "gable": 0.4, "flat": 0.15},
        "palette": SHINGLE + TILE,
        "height": (4, 8),
    },
    "commercial": {
        "front": (18, 30),
        "depth": (14, 28),
        "setback": (8, 16),
        "gap": (8, 20),
        "roofs": {"flat": 1.0},
        "palette": FLAT,
        "height": (6, 12),
    },
    "rural": {
        "front": (8, 22),
        "depth": (8, 16),
        "setback": (8, 25),
        "gap": (25, 90),
        "roofs": {"gable": 0.6, "flat": 0.4},
        "palette": METAL + SHINGLE,
        "height": (4, 8),
    },
}


def road_style(road: Road, zones: Zones, rng: np.random.Generator) -> str:
    """Neighbourhood style for buildings along a road."""
    mid = road.line.interpolate(0.5, normalized=True)
    urb = float(zones.sample("urban", mid.x, mid.y)[0])
    if urb < 0.25:
        return "rural"
    if road.kind == "main" and rng.random() < 0.6:
        return "commercial"
    return "suburban"


def neighbourhood(style: str, rng: np.random.Generator) -> dict:
    """Shared look of the buildings along one road side (developers build alike)."""
    st = STYLES[style]
    roofs = list(st["roofs"])
    pal = st["palette"]
    return {
        "style": style,
        "front": rng.uniform(*st["front"]),
        "depth": rng.uniform(*st["depth"]),
        "setback": rng.uniform(*st["setback"]),
        "gap": st["gap"],
        "roofs": [str(r) for r in rng.choice(roofs, 2, p=list(st["roofs"].values()))],
        "colours": [pal[int(k)] for k in rng.integers(len(pal), size=3)],
        "height": st["height"],
    }


def place_along(
    road: Road,
    side: float,
    s_range: tuple[float, float],
    look: dict,
    rng: np.random.Generator,
    *,
    occ: list[Occupancy],
    within: Polygon,
    prob,
    state: str,
    jitter: float = 0.12,
    next_id: int = 0,
) -> list[Building]:
    """Buildings facing a road along arc lengths ``s_range`` on one side.

    ``prob`` is a probability or a callable (x, y) -> probability. The buildings are not added to
    the occupancy; the caller commits them.
    """
    pts, tan = road.samples(1.0)
    placed: list[Building] = []
    local = Occupancy()
    s = s_range[0] + rng.uniform(0, look["gap"][1])
    while s < min(s_range[1], len(pts) - 1):
        k = int(s)
        front = look["front"] * rng.uniform(1 - jitter, 1 + jitter)
        depth = look["depth"] * rng.uniform(1 - jitter, 1 + jitter)
        t = tan[k]
        n = np.array([-t[1], t[0]]) * side
        off = road.width / 2 + look["setback"] * rng.uniform(0.85, 1.15) + depth / 2
        c = pts[k] + t * (front / 2) + n * off
        ang = math.atan2(t[1], t[0]) + rng.normal(0, 0.02)
        s += front + rng.uniform(*look["gap"])
        p = prob(c[0], c[1]) if callable(prob) else prob
        if rng.random() >= p:
            continue
        roof = look["roofs"][int(rng.random() < 0.25)]
        parts: list[Part] = [
            (c[0], c[1], ang, front, depth)
            if front >= depth
            else (c[0], c[1], ang + math.pi / 2, depth, front)
        ]
        if roof == "flat" and rng.random() < 0.3:  # L-shaped: a wing behind one end
            wl, ww = front * rng.uniform(0.3, 0.5), depth * rng.uniform(0.4, 0.7)
            wc = c + t * (front - wl) / 2 * rng.choice([-1, 1]) + n * (depth + ww) / 2 * 0.98
            parts.append((wc[0], wc[1], ang, wl, ww))
        colour = look["colours"][int(rng.integers(len(look["colours"])))]
        k = rng.uniform(0.93, 1.07)  # brightness varies; hue only a little (no tinted whites)
        rgb = tuple(float(min(v * k * rng.uniform(0.985, 1.015), 0.95)) for v in colour)
        b = Building(
            next_id + len(placed),
            parts,
            roof,
            rgb,
            rng.uniform(*look["height"]),
            math.radians(rng.uniform(18, 35)),
            state,
        )
        fp = b.footprint
        if not within.contains(fp) or not local.free(fp, 2.0):
            continue
        if not all(o.free(fp, 2.0) for o in occ):
            continue
        local.add(fp)
        placed.append(b)
    return placed
