"""Geometry helpers for the synthetic world: curved road centrelines, building shapes, roof facets,
cast shadows and sun position. Everything is in scene-CRS metres (x east, y north)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import shapely
import shapely.affinity
from shapely.geometry import LineString, MultiLineString, Polygon

# A building part is a rotated rectangle: centre x, centre y, axis angle (rad), length, width.
Part = tuple[float, float, float, float, float]


@dataclass
class Road:
    """A road: centreline, full width (asphalt plus sidewalks) and how it looks."""

    rid: int
    line: LineString
    width: float
    kind: str  # "main" | "local"
    state: str  # "existing" | "new"
    tone: float  # asphalt brightness
    sidewalk: float  # sidewalk width per side in m (0 = none)
    marking: str | None  # "yellow" | "white" | None
    dead_end: bool = False
    poly: Polygon = field(init=False)
    _samples: dict = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        poly = self.line.buffer(self.width / 2, cap_style="flat", quad_segs=6)
        if self.dead_end:
            end = self.line.coords[-1]
            poly = poly.union(shapely.Point(end).buffer(self.width * 0.95, quad_segs=8))
        self.poly = poly

    def samples(self, step: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """Points every ``step`` m along the centreline and unit tangents there (cached)."""
        if step not in self._samples:
            s = np.arange(0.0, self.line.length, step)
            pts = shapely.get_coordinates(shapely.line_interpolate_point(self.line, s))
            tan = np.gradient(pts, axis=0)
            tan /= np.maximum(np.linalg.norm(tan, axis=1, keepdims=True), 1e-9)
            self._samples[step] = (pts, tan)
        return self._samples[step]


@dataclass
class Building:
    """A building: one or more rectangular parts with a roof style, colour and height."""

    bid: int
    parts: list[Part]
    roof: str  # "flat" | "gable" | "hip"
    rgb: tuple[float, float, float]
    height: float
    pitch: float  # roof pitch in radians (pitched roofs)
    state: str  # "existing" | "new" | "demolished"
    bare_rgb: tuple[float, float, float] = (0.72, 0.66, 0.57)  # after demolition
    footprint: Polygon = field(init=False)

    def __post_init__(self) -> None:
        polys = [rect(*p) for p in self.parts]
        fp = polys[0] if len(polys) == 1 else shapely.union_all(polys)
        self.footprint = shapely.normalize(fp)


def rect(cx: float, cy: float, angle: float, length: float, width: float) -> Polygon:
    """Rectangle centred on (cx, cy) with its length along ``angle`` (radians from east)."""
    c, s = math.cos(angle), math.sin(angle)
    hl, hw = length / 2, width / 2
    pts = [(-hl, -hw), (hl, -hw), (hl, hw), (-hl, hw)]
    return Polygon([(cx + u * c - v * s, cy + u * s + v * c) for u, v in pts])


def _local(cx: float, cy: float, angle: float, pts: list[tuple[float, float]]) -> Polygon:
    c, s = math.cos(angle), math.sin(angle)
    return Polygon([(cx + u * c - v * s, cy + u * s + v * c) for u, v in pts])


def walk_curve(
    start: tuple[float, float],
    heading: float,
    length: float,
    rng: np.random.Generator,
    *,
    step: float = 8.0,
    curv_sd: float = 0.003,
    curv_max: float = 0.015,
) -> np.ndarray:
    """Smooth random curve: heading follows a damped random walk of curvature (1/m)."""
    n = max(2, int(length / step) + 1)
    k = np.zeros(n)
    kick = rng.normal(0.0, curv_sd, n)
    for i in range(1, n):
        k[i] = np.clip(0.9 * k[i - 1] + kick[i], -curv_max, curv_max)
    head = heading + np.cumsum(k * step)
    d = np.stack([np.cos(head), np.sin(head)], axis=1) * step
    pts = np.vstack([[start], np.asarray(start) + np.cumsum(d, axis=0)])
    return pts[:n]


def dashed(line: LineString, dash: float, gap: float) -> MultiLineString:
    """Dash pattern along a line (for lane markings); dashes are straight chords."""
    starts = np.arange(gap / 2, line.length - dash, dash + gap)
    a = shapely.get_coordinates(shapely.line_interpolate_point(line, starts))
    b = shapely.get_coordinates(shapely.line_interpolate_point(line, starts + dash))
    return MultiLineString(list(shapely.linestrings(np.stack([a, b], axis=1))))


def facets(b: Building) -> list[tuple[Polygon, str, tuple[float, float] | None]]:
    """Roof facets of a building, in drawing order.

    Returns (polygon, kind, downslope direction as unit (east, north) or None for flat), where
    kind is "roof", "parapet", "ridge" or "hvac". The union of all facets is the footprint.
    """
    out: list[tuple[Polygon, str, tuple[float, float] | None]] = []
    for cx, cy, ang, length, width in b.parts:
        c, s = math.cos(ang), math.sin(ang)
        ux, uy, vx, vy = (c, s), (-s, c), (-c, -s), (s, -c)  # +x, +y, -x, -y local axes
        hl, hw = length / 2, width / 2
        if b.roof == "flat":
            out.append((rect(cx, cy, ang, length, width), "parapet", None))
            out.append((rect(cx, cy, ang, length - 1.2, width - 1.2), "roof", None))
        elif b.roof == "gable":
            top = _local(cx, cy, ang, [(-hl, 0), (hl, 0), (hl, hw), (-hl, hw)])
            bottom = _local(cx, cy, ang, [(-hl, -hw), (hl, -hw), (hl, 0), (-hl, 0)])
            out += [(top, "roof", uy), (bottom, "roof", vy)]
            out.append((rect(cx, cy, ang, length, 0.6), "ridge", None))
        else:  # hip
            r = max(hl - hw, 0.0)
            out.append((_local(cx, cy, ang, [(-hl, hw), (-r, 0), (r, 0), (hl, hw)]), "roof", uy))
            out.append((_local(cx, cy, ang, [(-hl, -hw), (hl, -hw), (r, 0), (-r, 0)]), "roof", vy))
            out.append((_local(cx, cy, ang, [(hl, -hw), (hl, hw), (r, 0)]), "roof", ux))
            out.append((_local(cx, cy, ang, [(-hl, hw), (-hl, -hw), (-r, 0)]), "roof", vx))
    return out


def hvac_boxes(b: Building, rng: np.random.Generator) -> list[Polygon]:
    """Small rooftop units for large flat roofs (drawn inside the roof, so inside the footprint)."""
    cx, cy, ang, length, width = b.parts[0]
    if b.roof != "flat" or length * width < 250:
        return []
    boxes = []
    for _ in range(int(rng.integers(1, 5))):
        sz = rng.uniform(1.5, 3.0)
        u = rng.uniform(-length / 2 + 2.5, length / 2 - 2.5)
        v = rng.uniform(-width / 2 + 2.5, width / 2 - 2.5)
        c, s = math.cos(ang), math.sin(ang)
        boxes.append(rect(cx + u * c - v * s, cy + u * s + v * c, ang, sz, sz * 0.8))
    return boxes


def shadow(b: Building, vec: tuple[float, float]) -> list[Polygon]:
    """Ground shadow of a building for a shadow vector in metres per metre of height."""
    dx, dy = vec[0] * b.height, vec[1] * b.height
    out = []
    for p in b.parts:
        r = rect(*p)
        moved = shapely.affinity.translate(r, dx, dy)
        out.append(shapely.convex_hull(shapely.MultiPolygon([r, moved])))
    return out


def sun_position(day_of_year: int, solar_hour: float, lat_deg: float) -> tuple[float, float]:
    """Approximate sun (azimuth clockwise from north, elevation), both in degrees."""
    decl = math.radians(23.44) * math.sin(2 * math.pi * (284 + day_of_year) / 365.0)
    lat = math.radians(lat_deg)
    ha = math.radians(15.0 * (solar_hour - 12.0))
    sin_el = math.sin(lat) * math.sin(decl) + math.cos(lat) * math.cos(decl) * math.cos(ha)
    el = math.asin(max(-1.0, min(1.0, sin_el)))
    cos_az = (math.sin(decl) - math.sin(el) * math.sin(lat)) / (math.cos(el) * math.cos(lat))
    az = math.degrees(math.acos(max(-1.0, min(1.0, cos_az))))
    if ha > 0:
        az = 360.0 - az
    return az, math.degrees(el)


def geojson(geom) -> dict:
    """GeoJSON-like mapping of a (Multi)Polygon built with numpy (much faster than shapely's
    ``__geo_interface__`` when rasterizing thousands of shapes)."""
    if geom.geom_type == "Polygon":
        rings = [geom.exterior, *geom.interiors]
        return {
            "type": "Polygon",
            "coordinates": [shapely.get_coordinates(r).tolist() for r in rings],
        }
    if geom.geom_type == "MultiPolygon":
        return {
            "type": "MultiPolygon",
            "coordinates": [geojson(p)["coordinates"] for p in geom.geoms],
        }
    return geom.__geo_interface__
