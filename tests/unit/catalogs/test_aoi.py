"""AOI and date-window parsing: accepted forms, and errors that name the parameter and limit."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import pytest
from shapely.geometry import Point, Polygon, box, mapping

from catalogs.aoi import (
    DateWindow,
    aoi_area_km2,
    format_datetime,
    parse_aoi,
    parse_datetime,
    parse_window,
    parse_windows,
    utm_crs_for,
)
from catalogs.errors import InputError

SMALL = (-69.39, 45.05, -69.37, 45.07)


def test_bbox_string() -> None:
    geom = parse_aoi("-69.39, 45.05,-69.37,45.07")
    assert isinstance(geom, Polygon)
    assert geom.bounds == pytest.approx(SMALL)


def test_geojson_dict_feature_and_geometry() -> None:
    poly = mapping(box(*SMALL))
    assert parse_aoi(poly).equals(box(*SMALL))
    assert parse_aoi({"type": "Feature", "properties": {}, "geometry": poly}).equals(box(*SMALL))


def test_feature_collection_file_is_unioned(tmp_path) -> None:
    a, b = box(10, 50, 10.1, 50.1), box(10.1, 50, 10.2, 50.1)
    fc = {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "properties": {}, "geometry": mapping(g)} for g in (a, b)],
    }
    path = tmp_path / "aoi.geojson"
    path.write_text(json.dumps(fc))
    geom = parse_aoi(path)
    assert geom.bounds == pytest.approx((10, 50, 10.2, 50.1))
    assert parse_aoi(str(path)).equals(geom)


def test_shapely_geometry_passes_through() -> None:
    geom = box(*SMALL)
    assert parse_aoi(geom).equals(geom)


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("-69.37,45.05,-69.39,45.07", "minx < maxx"),
        ("10,50,10,50.1", "minx < maxx"),
        ("200,50,201,51", "lon/lat"),
        ("500000,5000000,500100,5000100", "lon/lat"),
        (Polygon(), "empty"),
        (Point(10, 50), "no area"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}, "invalid"),
        ("/no/such/aoi.geojson", "no such file"),
        ({"type": "Topology"}, "unsupported GeoJSON type"),
    ],
)
def test_invalid_aoi_raises_input_error(value, needle) -> None:
    with pytest.raises(InputError, match=needle):
        parse_aoi(value)


def test_zero_area_polygon_refused() -> None:
    flat = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [2, 0], [0, 0]]]}
    with pytest.raises(InputError, match="(zero area|invalid)"):
        parse_aoi(flat)


def test_too_large_aoi_names_limit_and_option() -> None:
    with pytest.raises(InputError) as info:
        parse_aoi("10,50,11,51")  # ~7,900 km²
    msg = str(info.value)
    assert "max_area_km2=2,500" in msg and "raise the limit" in msg
    assert parse_aoi("10,50,11,51", max_area_km2=10_000).area > 0
    assert parse_aoi("10,50,11,51", max_area_km2=math.inf).area > 0


def test_geodesic_area() -> None:
    # 0.1° x 0.1° at the equator is ~11.1 km x 11.1 km.
    assert aoi_area_km2(box(0, 0, 0.1, 0.1)) == pytest.approx(123.6, rel=0.01)


def test_utm_zone_and_two_zone_aoi() -> None:
    assert utm_crs_for(box(-69.4, 45.0, -69.3, 45.1)) == "EPSG:32619"
    assert utm_crs_for(box(-69.4, -45.1, -69.3, -45.0)) == "EPSG:32719"
    # 59/60 boundary at 174°E: most of this AOI lies in zone 60.
    assert utm_crs_for(box(173.95, 57.9, 174.2, 58.0)) == "EPSG:32660"
    assert utm_crs_for(box(173.8, 57.9, 174.05, 58.0)) == "EPSG:32659"
    assert utm_crs_for(box(179.9, 10, 180, 10.1)) == "EPSG:32660"


def test_window_dates_are_whole_days_utc() -> None:
    w = parse_window("2022-01-01/2022-12-31")
    assert w.start == datetime(2022, 1, 1, tzinfo=UTC)
    assert w.end == datetime(2022, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert w.contains(datetime(2022, 12, 31, 18, 0, tzinfo=UTC))
    assert w.to_stac() == "2022-01-01T00:00:00Z/2022-12-31T23:59:59.999999Z"
    assert parse_window(w.to_stac()) == w


def test_window_datetimes_offsets_and_single_day() -> None:
    w = parse_window("2023-10-08T12:00:00+02:00/2023-10-08T17:50:00Z")
    assert w.start == datetime(2023, 10, 8, 10, tzinfo=UTC)
    assert w.end.tzinfo is not None
    day = parse_window("2023-10-08")
    assert (day.start.day, day.end.day, day.end.hour) == (8, 8, 23)
    assert parse_window(("2020-01-01", "2020-02-01")).end.month == 2
    assert parse_window(w) is w


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("2022-12-31/2022-01-01", "before: start .* is after end"),
        ("../2022-01-01", "open-ended"),
        ("2022-01-01/..", "open-ended"),
        ("2022-13-01/2022-12-31", "not a date"),
        ("", "empty"),
        ("a/b/c", "START/END"),
    ],
)
def test_bad_windows_name_the_parameter(value, needle) -> None:
    with pytest.raises(InputError, match=needle) as info:
        parse_window(value, name="before")
    assert str(info.value).startswith("before")


def test_date_window_requires_aware_datetimes() -> None:
    with pytest.raises(InputError):
        DateWindow(datetime(2022, 1, 1), datetime(2022, 2, 1))


def test_parse_windows_requires_before_then_after() -> None:
    before, after = parse_windows("2021-01-01/2021-12-31", "2022-01-01/2022-12-31")
    assert before.end < after.start
    with pytest.raises(InputError, match="overlap or are reversed"):
        parse_windows("2022-01-01/2022-12-31", "2021-01-01/2021-12-31")
    with pytest.raises(InputError, match="^after: open-ended"):
        parse_windows("2021-01-01/2021-12-31", "2022-01-01/..")


def test_datetime_helpers_round_trip() -> None:
    when = parse_datetime("2019-01-01T00:00:01.024Z")
    assert when == datetime(2019, 1, 1, 0, 0, 1, 24000, tzinfo=UTC)
    assert format_datetime(when) == "2019-01-01T00:00:01.024000Z"
    assert parse_datetime("2020-02-03") == datetime(2020, 2, 3, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "today", "start", "end"),
    [
        ("-30d/today", "2024-03-31", "2024-03-01", "2024-03-31"),
        ("-2w/-1w", "2024-03-31", "2024-03-17", "2024-03-24"),
        ("-1m/today", "2024-03-31", "2024-02-29", "2024-03-31"),  # clamped to February's end
        ("-2y/-1y", "2024-02-29", "2022-02-28", "2023-02-28"),
        ("-15m/-12m", "2025-01-15", "2023-10-15", "2024-01-15"),
        ("2022-01-01/-1y", "2024-06-01", "2022-01-01", "2023-06-01"),
    ],
)
def test_relative_windows(text, today, start, end) -> None:
    from datetime import date

    from catalogs.aoi import parse_window

    w = parse_window(text, today=date.fromisoformat(today))
    assert w.start.date().isoformat() == start
    assert w.end.date().isoformat() == end
    assert w.end.hour == 23  # a date end means the whole day


def test_relative_window_errors_name_the_parameter() -> None:
    from datetime import date

    from catalogs.aoi import parse_window

    with pytest.raises(InputError, match="before"):
        parse_window("-2x/today", name="before", today=date(2024, 1, 1))
    with pytest.raises(InputError, match="after.*swap"):
        parse_window("today/-1y", name="after", today=date(2024, 1, 1))
