"""Rendering of the synthetic world onto a 0.5 m canvas, one date at a time.

Colours are display-referred RGB in 0..1 (like 8-bit aerial imagery divided by 255). Everything
the two dates share (ground texture, tree crowns, field rows) is computed once in :class:`Shared`;
a date only adds its objects, sun, shadows and season.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from rasterio import features

from ._geom import geojson
from ._noise import fbm, grain, resample, smoothstep_
from ._scene import RES, Canvas, Look
from ._surfaces import building_surfaces, road_surfaces, shadow_mask
from ._world import World

if TYPE_CHECKING:
    from ._extras import DateExtras

SOIL_A = np.array([0.66, 0.59, 0.49], np.float32)
SOIL_B = np.array([0.59, 0.56, 0.49], np.float32)
SHADOW_RGB = np.array([0.42, 0.45, 0.54], np.float32)
BRANCH_RGB = np.array([0.36, 0.31, 0.26], np.float32)  # leaf-off crowns
CROPS = {  # (green-season colour, dry-season colour)
    "green": ((0.37, 0.45, 0.27), (0.61, 0.58, 0.43)),
    "dry": ((0.58, 0.56, 0.42), (0.68, 0.63, 0.50)),
    "bare": ((0.52, 0.46, 0.39), (0.57, 0.50, 0.42)),
    "orchard": ((0.49, 0.47, 0.38), (0.56, 0.51, 0.42)),
}


class Shared:
    """Date-independent rasters: ground layers, field rows, tree crown normals."""

    def __init__(self, world: World, canvas: Canvas, rng: np.random.Generator) -> None:
        h, w = canvas.shape
        self.canvas = canvas
        small = fbm((h, w), rng, cell_px=12, octaves=3)
        fine = fbm((h, w), rng, cell_px=4, octaves=2)
        gr = grain((h, w), rng)
        mid = fbm((h, w), rng, cell_px=80, octaves=4)
        veg = self._zone(world.zones.veg, canvas, world.zones)
        tmp = np.empty((h, w), np.float32)
        cover = _wsum(
            np.empty((h, w), np.float32),
            tmp,
            -0.5,
            (0.9, veg),
            (0.3, small),
            (0.22, fine),
            (0.1, mid),
        )
        np.clip(cover, 0.0, 0.85, out=cover)
        # Shrubs: small dark blobs, denser where vegetation is; they cast short shadows.
        shrub = fbm((h, w), rng, cell_px=3, octaves=2)
        shrub += _wsum(veg, tmp, 0.0, (1.6, veg), (0.3, small))
        self.shrub = smoothstep_(shrub, 2.0, 2.6, tmp)
        self.shrub *= np.float32(0.85)
        lawn = smoothstep_(self._zone(world.zones.urban, canvas, world.zones), 0.45, 0.9, tmp)
        lawn *= np.clip(_wsum(veg, tmp, 0.55, (0.35, mid)), 0.0, 0.8, out=veg)
        rest = np.subtract(np.float32(1.0), cover, out=veg)
        lawn *= rest
        rest -= lawn
        lawn *= _wsum(
            np.empty((h, w), np.float32), tmp, 1.0, (0.08, small), (0.05, fine), (0.05, gr)
        )
        self.lawn = lawn
        acc = _wsum(np.empty((h, w), np.float32), tmp, 1.0, (0.18, small), (0.12, fine), (0.1, gr))
        cover *= acc
        self.cover = cover
        rest *= _wsum(acc, tmp, 1.0, (0.06, mid), (0.04, small), (0.05, fine), (0.045, gr))
        mix = smoothstep_(fbm((h, w), rng, cell_px=300, octaves=2), -0.8, 0.8, tmp)
        del acc
        self.base = np.empty((3, h, w), np.float32)
        for c in range(3):
            np.multiply(mix, SOIL_B[c] - SOIL_A[c], out=self.base[c])
            self.base[c] += SOIL_A[c]
            self.base[c] *= rest
        del rest
        self.tex = _wsum(mix, tmp, 0.0, (0.6, small), (0.5, gr))
        del tmp
        self._fields(world, canvas, small, gr, mid)
        del mid
        self._trees(world, canvas, fine, gr)

    @staticmethod
    def _zone(grid: np.ndarray, canvas: Canvas, zones) -> np.ndarray:
        origin = ((zones.y0 - canvas.y0) / 8.0, (canvas.x0 - zones.x0) / 8.0)
        return resample(grid, canvas.shape, origin, RES / 8.0, cubic=False)

    def _fields(self, world: World, canvas: Canvas, small, gr, mid) -> None:
        h, w = canvas.shape
        self.field_crops = [f.crop for f in world.fields]
        self.field_tint = np.array([1.0] + [f.tint for f in world.fields], np.float32)
        if not world.fields:
            self.field_idx = np.zeros(0, np.int64)
            self.field_id = np.zeros(0, np.int32)
            self.field_tex = np.zeros(0, np.float32)
            return
        shapes = [(geojson(f.poly), i + 1) for i, f in enumerate(world.fields)]
        lab = features.rasterize(
            shapes, out_shape=(h, w), transform=canvas.transform, dtype=np.int32
        )
        idx = np.flatnonzero(lab)
        fid = lab.ravel()[idx]
        rows, cols = np.divmod(idx, w)
        x = canvas.x0 + (cols + 0.5) * RES
        y = canvas.y0 - (rows + 0.5) * RES
        ang = np.array([0.0] + [f.row_angle for f in world.fields])[fid]
        per = np.array([1.0] + [f.row_period for f in world.fields])[fid]
        proj = (x * np.cos(ang + np.pi / 2) + y * np.sin(ang + np.pi / 2)) / per
        stripes = np.sin(2 * np.pi * (proj - np.floor(proj))).astype(np.float32)
        self.field_idx, self.field_id = idx, fid
        self.field_tex = (
            1.0
            + 0.10 * stripes
            + 0.08 * small.ravel()[idx]
            + 0.05 * gr.ravel()[idx]
            + 0.08 * mid.ravel()[idx]
        )

    def _trees(self, world: World, canvas: Canvas, fine: np.ndarray, gr: np.ndarray) -> None:
        """Stamp crowns (z-buffered half-ellipsoids) and keep their surface normals."""
        h, w = canvas.shape
        t = world.trees
        zbuf = np.zeros((h, w), np.float32)
        tid = np.full((h, w), -1, np.int32)
        nrm = np.zeros((2, h, w), np.float32)
        cc = (t.x - canvas.x0) / RES - 0.5
        rc = (canvas.y0 - t.y) / RES - 0.5
        for i in range(t.x.size):
            rp = t.r[i] / RES
            r0, r1 = max(int(rc[i] - rp), 0), min(int(rc[i] + rp) + 2, h)
            c0, c1 = max(int(cc[i] - rp), 0), min(int(cc[i] + rp) + 2, w)
            if r0 >= r1 or c0 >= c1:
                continue
            dy = (rc[i] - np.arange(r0, r1, dtype=np.float32))[:, None] * (RES / t.r[i])
            dx = (np.arange(c0, c1, dtype=np.float32) - cc[i])[None, :] * (RES / t.r[i])
            d2 = dx * dx + dy * dy
            z = t.h[i] - t.r[i] + 0.8 * t.r[i] * np.sqrt(np.maximum(1.0 - d2, 0.02))
            win = zbuf[r0:r1, c0:c1]
            edge = 1.0 + 0.45 * fine[r0:r1, c0:c1]
            upd = (d2 < edge) & (z > win)
            win[upd] = z[upd]
            tid[r0:r1, c0:c1][upd] = i
            nrm[0, r0:r1, c0:c1][upd] = np.broadcast_to(dx, d2.shape)[upd]
            nrm[1, r0:r1, c0:c1][upd] = np.broadcast_to(dy, d2.shape)[upd]
        idx = np.flatnonzero(tid >= 0)
        self.tree_idx = idx
        self.tree_id = tid.ravel()[idx]
        nx = np.clip(nrm[0].ravel()[idx], -1, 1) * 0.85 + 0.3 * gr.ravel()[idx]
        ny = np.clip(nrm[1].ravel()[idx], -1, 1) * 0.85 + 0.25 * fine.ravel()[idx]
        self.tree_tex = 1.0 + 0.12 * fine.ravel()[idx]
        nz = np.sqrt(np.maximum(1.0 - nx * nx - ny * ny, 0.05))
        self.tree_normal = np.stack([nx, ny, nz]).astype(np.float32)


def render(
    world: World,
    canvas: Canvas,
    shared: Shared,
    state: str,
    look: Look,
    seed: int,
    extras: DateExtras | None = None,
) -> np.ndarray:
    """Render one date ("before" or "after") on the canvas; returns float32 (3, rows, cols).

    ``extras`` (``nuisance="strong"``) adds that date's cars, paving, earthworks, crop colours
    and tree states; without it the rendering is the historical one, bit for bit.
    """
    h, w = canvas.shape
    g = look.greenness
    veg = np.array([0.50 - 0.20 * g, 0.49 - 0.08 * g, 0.34 - 0.12 * g], np.float32)
    lawn = np.array([0.52 - 0.22 * g, 0.52 - 0.06 * g, 0.36 - 0.14 * g], np.float32)
    img = np.empty((3, h, w), np.float32)
    for c in range(3):
        np.multiply(shared.cover, veg[c], out=img[c])
        img[c] += shared.base[c]
        img[c] += shared.lawn * lawn[c]
    _shrubs(img, shared, look, g)
    flat = img.reshape(3, -1)
    if shared.field_idx.size:
        crops = shared.field_crops if extras is None else extras.crops
        lut = np.ones((3, len(crops) + 1), np.float32)
        for i, crop in enumerate(crops):
            wet, dry = (np.array(v) for v in CROPS[crop])
            phase = look.field_phase if extras is None else float(extras.field_phase[i])
            mix = np.clip(phase + 0.5 * (1 - g) - 0.25 + 0.3 * ((i * 7919) % 11) / 11, 0, 1)
            lut[:, i + 1] = (wet + mix * (dry - wet)) * shared.field_tint[i + 1]
        for c in range(3):
            flat[c, shared.field_idx] = lut[c, shared.field_id] * shared.field_tex
    # Ground-level surfaces (roads, bare lots of demolished buildings) take shadows; roofs do not.
    roads = road_surfaces(world, state)
    if state == "after":
        roads += [
            (b.footprint, b.bare_rgb, 0.12) for b in world.buildings if b.state == "demolished"
        ]
    builds = building_surfaces(world, state, look, seed)
    if extras is not None:
        roads += extras.ground
        builds += extras.raised
    surfaces = roads + builds
    shapes = [(geojson(geom), i + 1) for i, (geom, _, _) in enumerate(surfaces)]
    lab = features.rasterize(shapes, out_shape=(h, w), transform=canvas.transform, dtype=np.int32)
    lut = np.array([(0, 0, 0)] + [s[1] for s in surfaces], np.float32).T
    amp = np.array([0.0] + [s[2] for s in surfaces], np.float32)
    labf = lab.ravel()
    b0 = len(roads) + 1
    tex = shared.tex.ravel()
    idx = np.flatnonzero((labf > 0) & (labf < b0))
    _paint(flat, idx, labf[idx], lut, amp, tex)
    if extras is None:
        shade = shadow_mask(world, canvas, state, look)
    else:
        state_ = extras.tree_state
        shade = shadow_mask(world, canvas, state, look, state_ == 0, extras.shadows)
        if (state_ == 1).any():  # bare crowns: a thin, broken shadow
            light = shadow_mask(world, canvas, state, look, state_ == 1, buildings=False)
            lidx = np.flatnonzero(light.ravel() & ~shade.ravel() & (labf < b0))
            for c in range(3):
                flat[c, lidx] *= np.float32(1.0 - 0.4 * (1.0 - SHADOW_RGB[c]))
    shade = shade.ravel() & (labf < b0)
    sidx = np.flatnonzero(shade)
    for c in range(3):
        flat[c, sidx] *= SHADOW_RGB[c]
    idx = np.flatnonzero(labf >= b0)
    _paint(flat, idx, labf[idx], lut, amp, tex)
    _paint_trees(flat, shared, world, look, None if extras is None else extras.tree_state)
    return img


def _shift_add(src: np.ndarray, out: np.ndarray, dr: int, dc: int, wgt: float) -> None:
    """``out += wgt * src`` moved by (dr, dc) whole pixels (what moves out is dropped)."""
    if wgt == 0.0:
        return
    h, w = src.shape
    part = src[max(-dr, 0) : h - max(dr, 0), max(-dc, 0) : w - max(dc, 0)]
    out[max(dr, 0) : h - max(-dr, 0), max(dc, 0) : w - max(-dc, 0)] += np.float32(wgt) * part


def _shrubs(img: np.ndarray, shared: Shared, look: Look, g: float) -> None:
    """Blend shrubs into the ground and darken their shadow side (about 1.5 m shadows).

    The shadow is the shrub layer moved by a fractional offset (bilinear), so that it follows
    the sun smoothly instead of jumping by whole pixels between dates.
    """
    sv = look.shadow_vec
    fc, fr = sv[0] * 1.5 / RES, -sv[1] * 1.5 / RES
    c0, r0 = math.floor(fc), math.floor(fr)
    tc, tr = fc - c0, fr - r0
    sh = shared.shrub
    shade = np.zeros_like(sh)
    for dr, dc, wgt in (
        (r0, c0, (1 - tr) * (1 - tc)),
        (r0, c0 + 1, (1 - tr) * tc),
        (r0 + 1, c0, tr * (1 - tc)),
        (r0 + 1, c0 + 1, tr * tc),
    ):
        _shift_add(sh, shade, dr, dc, wgt)
    shade *= 1.0 - sh
    shade *= np.float32(-0.45)
    shade += np.float32(1.0)
    col = (0.30 - 0.05 * g, 0.32 - 0.01 * g, 0.22 - 0.04 * g)
    for c in range(3):
        img[c] *= shade
        img[c] += sh * (col[c] - img[c])


def _wsum(out: np.ndarray, tmp: np.ndarray, const: float, *terms) -> np.ndarray:
    """``out = const + sum(w * a)`` for (w, a) in ``terms``, using ``tmp`` as scratch.

    ``out`` may be one of the inputs only if it is the first term's array."""
    first = True
    for wgt, arr in terms:
        if first:
            np.multiply(arr, np.float32(wgt), out=out)
            first = False
        else:
            np.multiply(arr, np.float32(wgt), out=tmp)
            out += tmp
    out += np.float32(const)
    return out


def _paint(flat, idx, lab, lut, amp, tex_) -> None:
    tex = 1.0 + amp[lab] * tex_[idx]
    for c in range(3):
        flat[c, idx] = lut[c, lab] * tex


def _paint_trees(
    flat, shared: Shared, world: World, look: Look, tree_state: np.ndarray | None = None
) -> None:
    """Paint the crowns; ``tree_state`` (strong nuisance) 1 = bare branches, 2 = cleared."""
    if not shared.tree_idx.size:
        return
    s = look.sun
    n = shared.tree_normal
    shade = 0.3 + 0.7 * np.maximum(n[0] * s[0] + n[1] * s[1] + n[2] * s[2], 0.0)
    shade /= 0.3 + 0.7 * s[2]
    t = world.trees
    g = look.greenness
    tint = t.tint[shared.tree_id].astype(np.float32) * shade
    tint *= shared.tree_tex
    hue = t.hue[shared.tree_id].astype(np.float32)
    base = (0.20 + 0.05 * (1 - g), 0.28 - 0.02 * (1 - g), 0.15)
    shift = (0.025, 0.015, -0.02)
    if tree_state is None:
        for c in range(3):
            flat[c, shared.tree_idx] = (base[c] + shift[c] * hue) * tint
        return
    st = tree_state[shared.tree_id]
    on, bare = st == 0, st == 1
    idx_on, idx_bare = shared.tree_idx[on], shared.tree_idx[bare]
    # Leaf-off: the ground shows through a grey-brown tangle of branches, denser to the centre.
    cover = np.clip(0.25 + 0.5 * (shared.tree_normal[2][bare] ** 2), 0.0, 0.75)
    cover *= np.clip(shared.tree_tex[bare], 0.8, 1.2)
    for c in range(3):
        flat[c, idx_on] = ((base[c] + shift[c] * hue) * tint)[on]
        twig = BRANCH_RGB[c] * tint[bare]
        flat[c, idx_bare] += cover * (twig - flat[c, idx_bare])


__all__ = ["RES", "Canvas", "Look", "Shared", "render"]
