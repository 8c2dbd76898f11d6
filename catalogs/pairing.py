"""Choose the before and after scenes for one AOI: the :class:`ScenePair` data contract.

Pairing is pure (no network): :func:`pair_scenes` takes items already found. Per date window it
groups items by acquisition (same collection, platform and UTC calendar day; NAIP by
``naip:year``), picks the group covering the AOI best, and keeps just enough of its items to
mosaic the AOI. Every refused item is listed in :attr:`ScenePair.skipped` with the reason.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pystac
import shapely
from pyproj import Transformer
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry

from catalogs.aoi import DateWindow, parse_aoi, parse_window, utm_crs_for
from catalogs.errors import InputError, ItemError, NoCoverageError
from catalogs.items import (
    check_hrefs,
    cloud_cover,
    is_local_catalog,
    item_crs,
    item_datetime,
    item_footprint,
    rgb_bands,
)

__all__ = ["SceneSide", "ScenePair", "pair_scenes"]

_MIN_GAIN = 1e-6  # fraction of the AOI an extra item must add to be worth reading


@dataclass(frozen=True)
class SceneSide:
    """The scenes of one date: items to mosaic, how much of the AOI they cover, when, how cloudy.

    Attributes:
        items: the items to mosaic (one acquisition; several when tiles are needed).
        coverage: fraction 0..1 of the AOI area covered by the union of their footprints.
        datetime: representative acquisition time (median of the items, UTC).
        cloud_cover: mean ``eo:cloud_cover`` of the items that report it; ``None`` if none do.
        window: the search window this side was chosen from.
    """

    items: tuple[pystac.Item, ...]
    coverage: float
    datetime: dt.datetime
    cloud_cover: float | None
    window: DateWindow | None = None

    @property
    def ids(self) -> list[str]:
        """Item ids, in mosaic order (largest share of the AOI first)."""
        return [i.id for i in self.items]

    def to_json(self, *, features: bool = True) -> dict[str, Any]:
        """JSON dict: ``items`` summaries, ``coverage``, and (``features``) full item dicts."""
        out: dict[str, Any] = {
            "items": [
                {"id": i.id, "datetime": item_datetime(i), "cloud_cover": cloud_cover(i)}
                for i in self.items
            ],
            "coverage": round(self.coverage, 6),
            "datetime": _iso(self.datetime),
            "cloud_cover": self.cloud_cover,
        }
        if self.window is not None:
            out["window"] = self.window.to_stac()
        if features:
            out["features"] = [
                i.to_dict(include_self_link=False, transform_hrefs=False) for i in self.items
            ]
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, name: str = "side") -> SceneSide:
        """Rebuild a side from :meth:`to_json` output (needs ``features``)."""
        if "features" not in data:
            raise InputError(
                f"ScenePair JSON: {name!r} has no 'features' (full items); write it with "
                "to_json(features=True) to be able to read it back"
            )
        items = tuple(pystac.Item.from_dict(dict(f)) for f in data["features"])
        when = data.get("datetime") or (data["items"][0]["datetime"] if data.get("items") else None)
        return cls(
            items=items,
            coverage=float(data["coverage"]),
            datetime=_parse_dt(when) if when else _median_dt([_when(i) for i in items]),
            cloud_cover=data.get("cloud_cover"),
            window=parse_window(data["window"], name=name) if data.get("window") else None,
        )


@dataclass(frozen=True)
class ScenePair:
    """Before and after scenes for one AOI, on a common CRS — what tiling needs, as JSON.

    Attributes:
        aoi: the AOI (EPSG:4326).
        crs: common CRS for both dates (``"EPSG:…"``): the native CRS of the chosen items
            covering most of the AOI, else the AOI's UTM zone.
        before, after: the two sides.
        catalog: the catalog URL the items came from, if known.
        collection: the collection id searched, if known.
        skipped: ``{"id", "reason"}`` for every candidate item refused (no RGB raster, unsafe
            href, too cloudy, no footprint...).
    """

    aoi: BaseGeometry
    crs: str
    before: SceneSide
    after: SceneSide
    catalog: str | None = None
    collection: str | None = None
    skipped: tuple[dict[str, str], ...] = field(default=())

    def to_json(self, *, features: bool = True) -> dict[str, Any]:
        """JSON-serialisable dict (``json.dumps`` works on it); ``features`` embeds full items."""
        return {
            "aoi": mapping(self.aoi),
            "crs": self.crs,
            "before": self.before.to_json(features=features),
            "after": self.after.to_json(features=features),
            "catalog": self.catalog,
            "collection": self.collection,
            "skipped": [dict(s) for s in self.skipped],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | str) -> ScenePair:
        """Rebuild a pair from :meth:`to_json` output (a dict or JSON text)."""
        if isinstance(data, str):
            data = json.loads(data)
        try:
            return cls(
                aoi=shape(data["aoi"]),
                crs=str(data["crs"]),
                before=SceneSide.from_json(data["before"], name="before"),
                after=SceneSide.from_json(data["after"], name="after"),
                catalog=data.get("catalog"),
                collection=data.get("collection"),
                skipped=tuple(dict(s) for s in data.get("skipped") or ()),
            )
        except KeyError as err:
            raise InputError(f"ScenePair JSON: missing key {err}") from None


@dataclass
class _Candidate:
    item: pystac.Item
    when: dt.datetime
    cloud: float | None
    part: BaseGeometry  # footprint ∩ AOI, lon/lat
    crs: str | None
    key: tuple[str, ...]


def pair_scenes(
    items: Iterable[pystac.Item | Mapping[str, Any]],
    *,
    aoi: Any,
    before: DateWindow | str,
    after: DateWindow | str,
    max_cloud: float | None = None,
    min_coverage: float = 0.0,
    catalog: str | None = None,
    collection: str | None = None,
    catalog_is_local: bool | None = None,
) -> ScenePair:
    """Pick the best before and after scenes for ``aoi`` among ``items`` (no network).

    Args:
        items: candidate items (``pystac.Item`` or dicts), e.g. both windows' search results.
        aoi: anything :func:`~catalogs.aoi.parse_aoi` accepts (no area limit applied here).
        before, after: date windows (``"2022-01-01/2022-12-31"`` or :class:`DateWindow`);
            ``before`` must end before ``after`` starts.
        max_cloud: refuse items with ``eo:cloud_cover`` above this (percent); items without
            cloud cover are kept (unknown) but rank after known ones.
        min_coverage: refuse a side whose best coverage of the AOI is below this fraction.
        catalog, collection: recorded in the result; ``catalog`` also decides
            ``catalog_is_local`` when that is not given.
        catalog_is_local: whether items may point at local files. Defaults to
            ``is_local_catalog(catalog)``, and to ``False`` (safe) without a catalog.

    Raises:
        InputError: bad AOI or windows (overlapping windows included).
        NoCoverageError: nothing usable covers the AOI in a window; says which and what was found.
    """
    aoi_geom = parse_aoi(aoi, max_area_km2=math.inf)
    windows = {
        "before": parse_window(before, name="before"),
        "after": parse_window(after, name="after"),
    }
    if windows["before"].end >= windows["after"].start:
        raise InputError(
            f"before window {windows['before']} and after window {windows['after']} overlap or "
            "are reversed; the before window must end before the after window starts"
        )
    if catalog_is_local is None:
        catalog_is_local = is_local_catalog(catalog) if catalog else False
    if max_cloud is not None and not 0 <= max_cloud <= 100:
        raise InputError(f"max_cloud={max_cloud}: must be a percentage between 0 and 100")

    utm = utm_crs_for(aoi_geom)
    to_m = Transformer.from_crs("EPSG:4326", utm, always_xy=True).transform
    skipped: dict[str, str] = {}
    found: dict[str, list[tuple[str, dt.datetime]]] = {"before": [], "after": []}
    cands: dict[str, list[_Candidate]] = {"before": [], "after": []}
    seen: set[tuple[str | None, str]] = set()

    for raw in items:
        item = raw if isinstance(raw, pystac.Item) else pystac.Item.from_dict(dict(raw))
        if (item.collection_id, item.id) in seen:
            continue
        seen.add((item.collection_id, item.id))
        when = _when(item)
        if when is None:
            skipped[item.id] = "no datetime or start_datetime"
            continue
        side = next((s for s, w in windows.items() if w.contains(when)), None)
        if side is None:
            continue
        found[side].append((item.id, when))
        try:
            footprint = item_footprint(item)
            part = footprint.intersection(aoi_geom)
            if part.is_empty or part.area <= 0:
                continue
            check_hrefs(item, catalog_is_local=catalog_is_local)
            rgb_bands(item)
        except (ItemError, shapely.errors.ShapelyError) as err:
            skipped[item.id] = _reason(err)
            continue
        cloud = cloud_cover(item)
        if max_cloud is not None and cloud is not None and cloud > max_cloud:
            skipped[item.id] = f"cloud cover {cloud:g}% > max_cloud {max_cloud:g}%"
            continue
        cands[side].append(
            _Candidate(item, when, cloud, part, item_crs(item), _group_key(item, when))
        )

    skipped_list = tuple({"id": k, "reason": v} for k, v in skipped.items())
    where = (f" of collection {collection!r}" if collection else "") + (
        f" at {catalog}" if catalog else ""
    )
    sides: dict[str, SceneSide] = {}
    chosen: list[_Candidate] = []
    for name, window in windows.items():
        target = window.end if name == "before" else window.start
        selected, coverage = _best_group(cands[name], target=target, aoi=aoi_geom, to_m=to_m)
        if not selected or coverage < min_coverage:
            raise _no_coverage(name, window, found[name], coverage, min_coverage, skipped, where)
        clouds = [c.cloud for c in selected if c.cloud is not None]
        sides[name] = SceneSide(
            items=tuple(c.item for c in selected),
            coverage=coverage,
            datetime=_median_dt([c.when for c in selected]),
            cloud_cover=sum(clouds) / len(clouds) if clouds else None,
            window=window,
        )
        chosen += selected
    return ScenePair(
        aoi=aoi_geom,
        crs=_common_crs(chosen, fallback=utm),
        before=sides["before"],
        after=sides["after"],
        catalog=catalog,
        collection=collection,
        skipped=skipped_list,
    )


def _best_group(
    cands: list[_Candidate], *, target: dt.datetime, aoi: BaseGeometry, to_m: Callable[..., Any]
) -> tuple[list[_Candidate], float]:
    """The acquisition covering most of the AOI (then least cloud, then nearest ``target``)."""
    groups: dict[tuple[str, ...], list[_Candidate]] = defaultdict(list)
    for cand in cands:
        groups[cand.key].append(cand)
    best: tuple[tuple[Any, ...], list[_Candidate], float] | None = None
    for members in groups.values():
        selected, covered = _mosaic(members, aoi)
        coverage = min(_area_m2(covered, to_m) / _area_m2(aoi, to_m), 1.0)
        clouds = [c.cloud for c in selected if c.cloud is not None]
        cloud = sum(clouds) / len(clouds) if clouds else None
        when = _median_dt([c.when for c in selected])
        rank = (
            -round(coverage, 3),
            cloud is None,
            cloud or 0.0,
            abs((when - target).total_seconds()),
            selected[0].item.id,
        )
        if best is None or rank < best[0]:
            best = (rank, selected, coverage)
    return (best[1], best[2]) if best else ([], 0.0)


def _mosaic(members: list[_Candidate], aoi: BaseGeometry) -> tuple[list[_Candidate], BaseGeometry]:
    """Greedy cover: biggest share of the AOI first, then only items that add area."""
    order = sorted(
        members, key=lambda c: (-c.part.area, c.cloud is None, c.cloud or 0.0, c.item.id)
    )
    selected: list[_Candidate] = []
    covered: BaseGeometry = shapely.Polygon()
    for cand in order:
        gain = cand.part.difference(covered).area if selected else cand.part.area
        if gain > _MIN_GAIN * aoi.area:
            selected.append(cand)
            covered = shapely.union_all([covered, cand.part]) if len(selected) > 1 else cand.part
    return selected, covered


def _no_coverage(
    name: str,
    window: DateWindow,
    found: list[tuple[str, dt.datetime]],
    best: float,
    min_coverage: float,
    skipped: Mapping[str, str],
    where: str,
) -> NoCoverageError:
    dates = sorted({w.date().isoformat() for _, w in found})
    shown = ", ".join(dates[:8]) + (f" (+{len(dates) - 8} more)" if len(dates) > 8 else "")
    refused = [{"id": i, "reason": skipped[i]} for i, _ in found if i in skipped]
    msg = f"no scene covers the AOI in the {name} window {window}: {len(found)} item(s){where}"
    msg += f" in the window (dates {shown})" if dates else " in the window"
    msg += f", best coverage {best:.3f}"
    if min_coverage > 0:
        msg += f" (min_coverage {min_coverage:g})"
    if refused:
        msg += f"; {len(refused)} refused, e.g. {refused[0]['id']!r}: {refused[0]['reason']}"
    msg += f". Widen the {name} window, check the AOI lies inside the collection's footprints"
    if any("max_cloud" in r["reason"] for r in refused):
        msg += ", or relax max_cloud"
    err = NoCoverageError(msg)
    err.window = name  # type: ignore[attr-defined]
    err.skipped = refused  # type: ignore[attr-defined]
    return err


def _area_m2(geom: BaseGeometry, to_m: Callable[..., Any]) -> float:
    """Area in the AOI's UTM zone (lon/lat areas distort with latitude)."""
    return float(shapely.transform(geom, to_m, interleaved=False).area)


def _common_crs(chosen: list[_Candidate], *, fallback: str) -> str:
    weights: dict[str, float] = defaultdict(float)
    for cand in chosen:
        if cand.crs:
            weights[cand.crs] += cand.part.area
    if not weights:
        return fallback
    return max(weights, key=lambda crs: (round(weights[crs], 3), crs == fallback))


def _group_key(item: pystac.Item, when: dt.datetime) -> tuple[str, ...]:
    props = item.properties
    coll = item.collection_id or ""
    if props.get("naip:year"):
        return (coll, "naip", str(props["naip:year"]))
    platform = str(props.get("platform") or props.get("constellation") or "").lower()
    return (coll, platform, when.date().isoformat())


def _when(item: pystac.Item) -> dt.datetime | None:
    text = item_datetime(item)
    if not text:
        return None
    try:
        return _parse_dt(text)
    except ValueError:
        return None


def _parse_dt(text: str) -> dt.datetime:
    when = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)


def _median_dt(values: list[dt.datetime | None]) -> dt.datetime:
    known = sorted(v for v in values if v is not None)
    if not known:
        raise InputError("no datetime among the items")
    return known[(len(known) - 1) // 2]


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _reason(err: Exception) -> str:
    text = str(err)
    if isinstance(err, ItemError):
        text = text.removeprefix(f"item {err.item_id!r}: ")
    return text
