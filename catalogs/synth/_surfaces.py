"""Per-date drawable surfaces (roads, roofs, bare lots) and the cast-shadow mask."""

from __future__ import annotations

import math

import numpy as np
import shapely
import shapely.affinity
from rasterio import features

from ._geom import dashed, facets, geojson, hvac_boxes, rect, shadow
from ._scene import Canvas, Look
from ._world import World

SIDEWALK = (0.74, 0.73, 0.70)
WALL = (0.62, 0.60, 0.56)  # facade colour mixed into the roof colour of leaning walls
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
    """Roof facets and rooftop units of the buildings standing on this date, in drawing order.

    With an off-nadir ``look.lean`` the roof moves by lean x height and the walls facing the
    sensor appear between the footprint and the moved roof (the footprint stays the truth).
    """
    out = []
    s = look.sun
    flat_shade = 0.35 + 0.65 * s[2]
    leaning = look.lean != (0.0, 0.0)
    for b in world.buildings:
        if state == "before" and b.state == "new":
            continue
        if state == "after" and b.state == "demolished":
            continue  # bare ground, drawn with the ground-level surfaces
        rgb = np.array(b.rgb)
        amp = 0.05 if b.roof == "flat" else 0.08
        roof = []
        for poly, kind, down in facets(b):
            if down is None:
                k = {"parapet": 0.82, "ridge": 1.08}.get(kind, 1.0)
            else:
                n = (math.sin(b.pitch) * down[0], math.sin(b.pitch) * down[1], math.cos(b.pitch))
                k = (0.35 + 0.65 * max(0.0, n[0] * s[0] + n[1] * s[1] + n[2] * s[2])) / flat_shade
            roof.append((poly, tuple(np.clip(rgb * k, 0, 1)), amp))
        for hv in hvac_boxes(b, np.random.default_rng([seed, b.bid])):
            roof.append((hv, (0.86, 0.87, 0.87), 0.03))
        if leaning:
            roof = _lean(b, look, rgb, roof, out)
        out += roof
    return out


def _lean(b, look: Look, rgb: np.ndarray, roof: list[tuple], out: list[tuple]) -> list[tuple]:
    """Append the visible walls of a leaning building to ``out``; return its moved roof."""
    dx, dy = look.lean[0] * b.height, look.lean[1] * b.height
    norm = math.hypot(dx, dy)
    if norm < 0.05:
        return roof
    s = look.sun
    # The walls seen face the sensor, i.e. point against the lean; lit when the sun is there.
    lit = max(0.0, -(dx * s[0] + dy * s[1]) / norm)
    wall_rgb = np.clip((0.55 * rgb + 0.45 * np.array(WALL)) * (0.5 + 0.6 * lit), 0, 1)
    moved_fp = shapely.affinity.translate(b.footprint, dx, dy)
    for p in b.parts:
        r = rect(*p)
        hull = shapely.convex_hull(shapely.MultiPolygon([r, shapely.affinity.translate(r, dx, dy)]))
        wall = hull.difference(moved_fp)
        if not wall.is_empty:
            out.append((wall, tuple(float(v) for v in wall_rgb), 0.04))
    return [(shapely.affinity.translate(g, dx, dy), rgb_, a) for g, rgb_, a in roof]


def shadow_mask(
    world: World,
    canvas: Canvas,
    state: str,
    look: Look,
    trees: np.ndarray | None = None,
    extra: list | None = None,
    buildings: bool = True,
) -> np.ndarray:
    """Cast shadows of the standing buildings and of tree crowns, as a bool canvas mask.

    Args:
        trees: Which trees cast a shadow (bool per tree); None means all of them.
        extra: More shadow polygons (cars, stockpiles, site trailers).
        buildings: False leaves the buildings out (for a mask of some trees only).
    """
    vec = look.shadow_vec
    polys: list = []
    for b in world.buildings if buildings else []:
        if (state == "before" and b.state == "new") or (
            state == "after" and b.state == "demolished"
        ):
            continue
        polys += [geojson(p) for p in shadow(b, vec)]
    t = world.trees
    sel = np.ones(t.x.size, bool) if trees is None else trees
    if sel.any():  # crown shadow: ellipse stretched along the sun direction
        el = math.radians(look.sun_elevation)
        ang = np.linspace(0, 2 * np.pi, 14, endpoint=False)
        ux, uy = np.cos(ang)[None, :], np.sin(ang)[None, :]
        d = np.array(vec) / max(np.hypot(*vec), 1e-9)
        along = (ux * d[0] + uy * d[1]) * (1.0 / math.sin(el) - 1.0)
        tx, ty, tr = t.x[sel], t.y[sel], t.r[sel]
        hc = (t.h[sel] - tr * 0.8)[:, None]
        px = tx[:, None] + vec[0] * hc + tr[:, None] * (ux + along * d[0])
        py = ty[:, None] + vec[1] * hc + tr[:, None] * (uy + along * d[1])
        coords = np.stack([px, py], axis=-1)
        coords = np.concatenate([coords, coords[:, :1]], axis=1)
        polys += [{"type": "Polygon", "coordinates": [c]} for c in coords.tolist()]
    polys += [geojson(p) for p in extra or [] if not p.is_empty]
    if not polys:
        return np.zeros(canvas.shape, bool)
    mask = features.rasterize(
        polys, out_shape=canvas.shape, transform=canvas.transform, dtype=np.uint8
    )
    return mask.view(bool)
