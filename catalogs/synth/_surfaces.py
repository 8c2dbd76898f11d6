"""Per-date drawable surfaces (roads, roofs, bare lots) and the cast-shadow mask."""

from __future__ import annotations

import math

import numpy as np
import shapely
from rasterio import features

from ._geom import dashed, facets, geojson, hvac_boxes, shadow
from ._scene import Canvas, Look
from ._world import World

SIDEWALK = (0.74, 0.73, 0.70)
MARK = {"yellow": (0.80, 0.70, 0.32), "white": (0.86, 0.86, 0.84)}


def road_surfaces(world: World, state: str) -> list[tuple]:
    out = []
    order = sorted(world.roads, key=lambda r: (r.state == "existing", r.kind == "main", r.rid))
    for r in order:
        if r.state == "new" and state == "before":
            continue
        tone = r.tone
        asphalt = (tone, tone, tone * 1.03)
        if r.sidewalk > 0:
            out.append((r.poly, SIDEWALK, 0.05))
            inner = r.line.buffer(r.width / 2 - r.sidewalk, cap_style="flat", quad_segs=6)
            if r.dead_end:
                end = shapely.Point(r.line.coords[-1])
                inner = inner.union(end.buffer(r.width * 0.95 - r.sidewalk, quad_segs=8))
            out.append((inner, asphalt, 0.07))
        else:
            out.append((r.poly, asphalt, 0.07))
        if r.marking:
            m = np.array(MARK[r.marking]) * 0.75 + np.array(asphalt) * 0.25
            centre = dashed(r.line, 3.0, 6.0) if r.marking == "white" else r.line
            out.append((centre.buffer(0.35, cap_style="flat"), tuple(m), 0.05))
            for off in (r.width / 2 - 1.0, -(r.width / 2 - 1.0)):
                edge = r.line.offset_curve(off)
                white = np.array(MARK["white"]) * 0.7 + np.array(asphalt) * 0.3
                out.append((edge.buffer(0.3, cap_style="flat"), tuple(white), 0.05))
    return out


def building_surfaces(world: World, state: str, look: Look, seed: int) -> list[tuple]:
    out = []
    s = look.sun
    flat_shade = 0.35 + 0.65 * s[2]
    for b in world.buildings:
        if state == "before" and b.state == "new":
            continue
        if state == "after" and b.state == "demolished":
            continue  # bare ground, drawn with the ground-level surfaces
        rgb = np.array(b.rgb)
        amp = 0.05 if b.roof == "flat" else 0.08
        for poly, kind, down in facets(b):
            if down is None:
                k = {"parapet": 0.82, "ridge": 1.08}.get(kind, 1.0)
            else:
                n = (math.sin(b.pitch) * down[0], math.sin(b.pitch) * down[1], math.cos(b.pitch))
                k = (0.35 + 0.65 * max(0.0, n[0] * s[0] + n[1] * s[1] + n[2] * s[2])) / flat_shade
            out.append((poly, tuple(np.clip(rgb * k, 0, 1)), amp))
        for hv in hvac_boxes(b, np.random.default_rng([seed, b.bid])):
            out.append((hv, (0.86, 0.87, 0.87), 0.03))
    return out


def shadow_mask(world: World, canvas: Canvas, state: str, look: Look) -> np.ndarray:
    vec = look.shadow_vec
    polys: list = []
    for b in world.buildings:
        if (state == "before" and b.state == "new") or (
            state == "after" and b.state == "demolished"
        ):
            continue
        polys += [geojson(p) for p in shadow(b, vec)]
    t = world.trees
    if t.x.size:  # crown shadow: ellipse stretched along the sun direction
        el = math.radians(look.sun_elevation)
        ang = np.linspace(0, 2 * np.pi, 14, endpoint=False)
        ux, uy = np.cos(ang)[None, :], np.sin(ang)[None, :]
        d = np.array(vec) / max(np.hypot(*vec), 1e-9)
        along = (ux * d[0] + uy * d[1]) * (1.0 / math.sin(el) - 1.0)
        hc = (t.h - t.r * 0.8)[:, None]
        px = t.x[:, None] + vec[0] * hc + t.r[:, None] * (ux + along * d[0])
        py = t.y[:, None] + vec[1] * hc + t.r[:, None] * (uy + along * d[1])
        coords = np.stack([px, py], axis=-1)
        coords = np.concatenate([coords, coords[:, :1]], axis=1)
        polys += [{"type": "Polygon", "coordinates": [c]} for c in coords.tolist()]
    if not polys:
        return np.zeros(canvas.shape, bool)
    mask = features.rasterize(
        polys, out_shape=canvas.shape, transform=canvas.transform, dtype=np.uint8
    )
    return mask.view(bool)
