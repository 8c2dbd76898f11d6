"""Areas of interest and date windows: parse user input once, validate it, fail clearly.

An AOI is always returned as a shapely ``Polygon``/``MultiPolygon`` in EPSG:4326 (lon/lat), a date
window as a :class:`DateWindow` of two timezone-aware UTC datetimes.
"""

from __future__ import annotations

import calendar
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import shapely
from pyproj import Geod
from shapely.geometry import MultiPolygon, Polygon, box, shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from catalogs.errors import InputError

__all__ = [
    "DateWindow",
    "aoi_area_km2",
    "format_datetime",
    "parse_datetime",
    "parse_aoi",
    "parse_window",
    "parse_windows",
    "utm_crs_for",
]

_GEOD = Geod(ellps="WGS84")
_NUM = r"\s*[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?\s*"
_BBOX_RE = re.compile(rf"^{_NUM},{_NUM},{_NUM},{_NUM}$")
_GEOMETRY_TYPES = {
    "Polygon",
    "MultiPolygon",
    "GeometryCollection",
    "Point",
    "LineString",
    "MultiPoint",
    "MultiLineString",
}

AoiLike = str | Path | Mapping[str, Any] | BaseGeometry | Sequence[float]


def parse_aoi(value: AoiLike, *, max_area_km2: float = 2500.0) -> Polygon | MultiPolygon:
    """Parse and validate an area of interest.

    Args:
        value: ``"minx,miny,maxx,maxy"`` in lon/lat, a path to a GeoJSON file (Feature,
            FeatureCollection — its polygons are unioned — or bare geometry), a GeoJSON dict or
            JSON text, a shapely geometry, or a 4-number sequence.
        max_area_km2: refuse larger AOIs (geodesic area); a guard against accidental
            continent-sized runs. Pass ``math.inf`` to disable.

    Returns:
        A valid ``Polygon`` or ``MultiPolygon`` in EPSG:4326.

    Raises:
        InputError: the value cannot be read or is not a usable lon/lat area.
    """
    geom = _to_geometry(value)
    return _validate(geom, source=_describe(value), max_area_km2=max_area_km2)


def aoi_area_km2(geom: BaseGeometry) -> float:
    """Geodesic area of a lon/lat geometry in km² (WGS84 ellipsoid)."""
    area, _ = _GEOD.geometry_area_perimeter(shapely.force_2d(geom))
    return abs(area) / 1e6


def utm_crs_for(geom: BaseGeometry) -> str:
    """The WGS84 UTM zone (``"EPSG:326xx"``/``"EPSG:327xx"``) holding most of ``geom``.

    For an AOI across two zones the zone with the larger share of its area wins, so the
    common grid distorts the smaller part only.
    """
    if geom.is_empty:
        raise InputError("utm_crs_for: the geometry is empty; give a non-empty lon/lat geometry")
    minx, miny, maxx, maxy = geom.bounds
    first, last = _zone(minx), _zone(maxx)
    best_zone, best_area = _zone(geom.centroid.x), -1.0
    if geom.area > 0 and first != last:
        for zone in range(first, last + 1):
            strip = box(-180 + (zone - 1) * 6, -90, -180 + zone * 6, 90)
            area = geom.intersection(strip).area
            if area > best_area + 1e-15:
                best_zone, best_area = zone, area
    if geom.area > 0:
        north = geom.intersection(box(-180, 0, 180, 90)).area
        south = geom.area - north
        is_north = north >= south
    else:
        is_north = geom.centroid.y >= 0
    return f"EPSG:{(32600 if is_north else 32700) + best_zone}"


def _zone(lon: float) -> int:
    return min(max(int(math.floor((lon + 180.0) / 6.0)) + 1, 1), 60)


# -- date windows -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DateWindow:
    """A closed UTC time interval ``[start, end]`` used to search one side of a scene pair."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if not isinstance(value, datetime) or value.tzinfo is None:
                raise InputError(
                    f"DateWindow.{name} must be a timezone-aware datetime, got {value!r}"
                )
        if self.start > self.end:
            raise InputError(f"DateWindow: start {self.start} is after end {self.end}")

    def contains(self, when: datetime) -> bool:
        """Whether ``when`` (naive = UTC) falls inside the window, ends included."""
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return self.start <= when <= self.end

    def to_stac(self) -> str:
        """The window as a STAC API ``datetime`` parameter (RFC 3339 interval)."""
        return f"{format_datetime(self.start)}/{format_datetime(self.end)}"

    def __str__(self) -> str:
        return self.to_stac()


def parse_window(
    value: str | DateWindow | Sequence[Any], *, name: str = "window", today: date | None = None
) -> DateWindow:
    """Parse ``"START/END"`` (dates or RFC 3339 datetimes) into a UTC :class:`DateWindow`.

    A date-only end means the whole day (``2022-12-31`` -> ``23:59:59.999999``); naive
    datetimes are taken as UTC. A single date means that day. Open ends (``..``) are refused:
    a change run needs two bounded windows. Either end may be relative to ``today`` (for
    scheduled runs): ``today``, or ``-N`` with a unit ``d``, ``w``, ``m`` (calendar months) or
    ``y`` — ``"-2y/-1y"`` is the year before last, ``"-30d/today"`` the last 30 days.

    Args:
        value: the text, a ``(start, end)`` pair, or an existing window.
        name: the parameter name used in error messages (``"before"``, ``"after"``).
        today: the run date relative ends count from (default: today's UTC date).

    Raises:
        InputError: unreadable, open-ended or reversed window, naming ``name``.
    """
    if isinstance(value, DateWindow):
        return value
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise InputError(f"{name}: empty date window; give 'YYYY-MM-DD/YYYY-MM-DD'")
        parts = text.split("/")
        if len(parts) == 1:
            parts = [parts[0], parts[0]]
        if len(parts) != 2:
            raise InputError(f"{name}: {value!r} is not 'START/END' (e.g. 2022-01-01/2022-12-31)")
    elif isinstance(value, Sequence) and len(value) == 2:
        parts = list(value)
    else:
        raise InputError(f"{name}: expected 'START/END' text or a (start, end) pair, got {value!r}")
    parts = [_relative(p, today) for p in parts]
    start = _parse_instant(parts[0], name=name, end=False)
    end = _parse_instant(parts[1], name=name, end=True)
    if start > end:
        raise InputError(
            f"{name}: start {format_datetime(start)} is after end {format_datetime(end)} in "
            f"{value!r}; swap the dates"
        )
    return DateWindow(start, end)


def parse_windows(
    before: str | DateWindow | Sequence[Any], after: str | DateWindow | Sequence[Any]
) -> tuple[DateWindow, DateWindow]:
    """Parse the two windows of a change run; ``before`` must end before ``after`` starts.

    Raises:
        InputError: either window is invalid, or they overlap / are in the wrong order.
    """
    first, second = parse_window(before, name="before"), parse_window(after, name="after")
    if first.end >= second.start:
        raise InputError(
            f"before window {first} and after window {second} overlap or are reversed; "
            "the before window must end before the after window starts"
        )
    return first, second


_RELATIVE = re.compile(r"^-(\d+)([dwmy])$")


def _relative(part: Any, today: date | None) -> Any:
    """A relative window end (``today``, ``-30d``, ``-2y`` …) as a date; anything else as is."""
    if not isinstance(part, str):
        return part
    text = part.strip().lower()
    ref = today or datetime.now(UTC).date()
    if text == "today":
        return ref
    m = _RELATIVE.match(text)
    if not m:
        return part
    n, unit = int(m.group(1)), m.group(2)
    if unit in "dw":
        return ref - timedelta(days=n * (7 if unit == "w" else 1))
    months = ref.year * 12 + ref.month - 1 - (n * 12 if unit == "y" else n)
    year, month = divmod(months, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(ref.day, last))


def _parse_instant(part: Any, *, name: str, end: bool) -> datetime:
    if isinstance(part, datetime):
        return part.replace(tzinfo=UTC) if part.tzinfo is None else part.astimezone(UTC)
    if isinstance(part, date):
        return _day_bound(part, end)
    text = str(part).strip()
    if text in ("", ".."):
        raise InputError(
            f"{name}: open-ended windows ('..') are not supported; give both dates, "
            "e.g. 2022-01-01/2022-12-31"
        )
    try:
        if len(text) == 10:
            return _day_bound(date.fromisoformat(text), end)
        parsed = datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError as err:
        raise InputError(
            f"{name}: {text!r} is not a date (YYYY-MM-DD) or RFC 3339 datetime ({err})"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _day_bound(day: date, end: bool) -> datetime:
    start = datetime.combine(day, time(0), tzinfo=UTC)
    return start + timedelta(days=1, microseconds=-1) if end else start


def parse_datetime(value: str | date | datetime, *, name: str = "datetime") -> datetime:
    """An RFC 3339 datetime or date (midnight) as an aware UTC datetime; naive means UTC."""
    return _parse_instant(value, name=name, end=False)


def format_datetime(when: datetime) -> str:
    """RFC 3339 text in UTC with a ``Z`` suffix, as STAC writes it."""
    text = when.astimezone(UTC).isoformat()
    return text.replace("+00:00", "Z")


# -- AOI internals -----------------------------------------------------------------------------


def _describe(value: Any) -> str:
    if isinstance(value, Path | str) and not str(value).lstrip().startswith("{"):
        return f"AOI {str(value)!r}"
    return "AOI"


def _to_geometry(value: Any) -> BaseGeometry:
    if isinstance(value, BaseGeometry):
        return value
    if isinstance(value, Mapping):
        return _from_geojson(value, source="AOI GeoJSON")
    if isinstance(value, str) and _BBOX_RE.match(value):
        return _from_bbox([float(v) for v in value.split(",")])
    if isinstance(value, str) and value.lstrip().startswith("{"):
        try:
            return _from_geojson(json.loads(value), source="AOI GeoJSON text")
        except json.JSONDecodeError as err:
            raise InputError(f"AOI: the text is not valid JSON ({err})") from None
    if isinstance(value, str | Path):
        return _from_file(Path(value))
    if isinstance(value, Sequence) and len(value) == 4:
        try:
            return _from_bbox([float(v) for v in value])
        except (TypeError, ValueError):
            pass
    raise InputError(
        f"AOI: cannot read {value!r}; give 'minx,miny,maxx,maxy' (lon/lat), a GeoJSON file path, "
        "a GeoJSON dict or a shapely geometry"
    )


def _from_bbox(vals: list[float]) -> BaseGeometry:
    minx, miny, maxx, maxy = vals
    if not all(math.isfinite(v) for v in vals):
        raise InputError(f"AOI bbox {vals}: all four numbers must be finite")
    if minx >= maxx or miny >= maxy:
        raise InputError(
            f"AOI bbox {vals}: need minx < maxx and miny < maxy (order: minx,miny,maxx,maxy in "
            "lon/lat); AOIs across the antimeridian must be given as GeoJSON MultiPolygon"
        )
    _check_lonlat((minx, miny, maxx, maxy), source="AOI bbox")
    return box(minx, miny, maxx, maxy)


def _from_file(path: Path) -> BaseGeometry:
    if not path.is_file():
        raise InputError(
            f"AOI {str(path)!r}: no such file; give 'minx,miny,maxx,maxy' or a GeoJSON file path"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"AOI file {str(path)!r}: not readable GeoJSON ({err})") from None
    if not isinstance(data, Mapping):
        raise InputError(f"AOI file {str(path)!r}: expected a GeoJSON object")
    return _from_geojson(data, source=f"AOI file {str(path)!r}")


def _from_geojson(data: Mapping[str, Any], *, source: str) -> BaseGeometry:
    kind = data.get("type")
    crs = data.get("crs")
    if isinstance(crs, Mapping):
        crs_name = str((crs.get("properties") or {}).get("name", ""))
        if crs_name and not crs_name.upper().endswith(("CRS84", "4326")):
            raise InputError(
                f"{source}: declares crs {crs_name!r}; GeoJSON AOIs must be lon/lat (EPSG:4326)"
            )
    try:
        if kind == "FeatureCollection":
            geoms = [shape(f["geometry"]) for f in data.get("features", []) if f.get("geometry")]
            if not geoms:
                raise InputError(f"{source}: the FeatureCollection has no feature with a geometry")
            for g in geoms:
                _check_geom(g, source=source)
            return shapely.union_all(geoms)
        if kind == "Feature":
            if not data.get("geometry"):
                raise InputError(f"{source}: the Feature has no geometry")
            return shape(data["geometry"])
        if kind in _GEOMETRY_TYPES:
            return shape(data)
    except (KeyError, TypeError, ValueError, AttributeError, shapely.errors.ShapelyError) as err:
        raise InputError(f"{source}: malformed GeoJSON ({err})") from None
    raise InputError(
        f"{source}: unsupported GeoJSON type {kind!r}; give a Feature, FeatureCollection, "
        "Polygon or MultiPolygon"
    )


def _check_geom(geom: BaseGeometry, *, source: str) -> None:
    if not geom.is_empty and not geom.is_valid:
        raise InputError(
            f"{source}: invalid geometry ({explain_validity(geom)}); fix it (e.g. shapely "
            "make_valid, QGIS 'Fix geometries') and retry"
        )


def _check_lonlat(bounds: tuple[float, float, float, float], *, source: str) -> None:
    minx, miny, maxx, maxy = bounds
    if not (
        -180 <= minx <= 180 and -180 <= maxx <= 180 and -90 <= miny <= 90 and -90 <= maxy <= 90
    ):
        raise InputError(
            f"{source}: coordinates {tuple(round(b, 6) for b in bounds)} are outside lon/lat "
            "ranges (lon -180..180, lat -90..90); is it in a projected CRS or lat/lon swapped? "
            "Reproject to EPSG:4326 (lon, lat order)"
        )


def _validate(geom: BaseGeometry, *, source: str, max_area_km2: float) -> Polygon | MultiPolygon:
    if geom.is_empty:
        raise InputError(f"{source}: the geometry is empty; give a polygon with a non-zero area")
    geom = shapely.force_2d(geom)
    if geom.geom_type == "GeometryCollection":
        polys = [g for g in geom.geoms if g.geom_type in ("Polygon", "MultiPolygon")]
        geom = shapely.union_all(polys) if polys else geom
    if geom.geom_type not in ("Polygon", "MultiPolygon"):
        raise InputError(
            f"{source}: a {geom.geom_type} has no area; give a Polygon/MultiPolygon or a bbox"
        )
    _check_lonlat(geom.bounds, source=source)
    _check_geom(geom, source=source)
    if geom.area <= 0:
        raise InputError(f"{source}: the polygon has zero area; give a polygon with a real extent")
    area = aoi_area_km2(geom)
    if area > max_area_km2:
        raise InputError(
            f"{source}: area {area:,.1f} km² exceeds max_area_km2={max_area_km2:,g} km²; split the "
            "region into smaller AOIs or raise the limit (max_area_km2 / --max-area-km2)"
        )
    return geom
