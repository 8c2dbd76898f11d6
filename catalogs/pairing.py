"""Choose the before and after scenes for one AOI: the :class:`ScenePair` data contract.

:func:`search_pairs` searches a STAC API and pairs; :func:`pair_scenes` is the pure part
(no network). Per date window it groups items by acquisition (same collection, platform and
UTC calendar day; NAIP by ``naip:year``), picks the group covering the AOI best, and keeps just
enough of its items to mosaic the AOI. Every refused item is listed in ``ScenePair.skipped``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pystac
import shapely
from pyproj import Transformer
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry

from catalogs.aoi import (
    DateWindow,
    format_datetime,
    parse_aoi,
    parse_datetime,
    parse_window,
    parse_windows,
    utm_crs_for,
)
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
from catalogs.search import SearchOptions, search_items

_DEFAULT_OPTIONS = SearchOptions()

__all__ = ["ScenePair", "SceneSide", "acquisition_key", "pair_scenes", "search_pairs"]

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
                {"id": i.id, "datetime": _iso(item_datetime(i)), "cloud_cover": cloud_cover(i)}
                for i in self.items
            ],
            "coverage": round(self.coverage, 6),
            "datetime": format_datetime(self.datetime),
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
        return cls(
            items=tuple(pystac.Item.from_dict(dict(f)) for f in data["features"]),
            coverage=float(data["coverage"]),
            datetime=parse_datetime(data["datetime"]),
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
    skipped: tuple[dict[str, str], ...] = ()

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
    windows = dict(zip(("before", "after"), parse_windows(before, after), strict=True))
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
        when = item_datetime(item)
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
        best = _best_group(cands[name], target=target, aoi=aoi_geom, to_m=to_m)
        if best is None or best[1] < min_coverage:
            raise _no_coverage(
                name, window, found[name], best, min_coverage, skipped, where, aoi_geom.bounds
            )
        selected, coverage, when, cloud = best
        sides[name] = SceneSide(tuple(c.item for c in selected), coverage, when, cloud, window)
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


def search_pairs(
    catalog_url: str,
    *,
    collection: str | Sequence[str],
    aoi: Any,
    before: DateWindow | str,
    after: DateWindow | str,
    max_cloud: float | None = None,
    min_coverage: float = 0.0,
    max_area_km2: float = 2500.0,
    options: SearchOptions = _DEFAULT_OPTIONS,
) -> ScenePair:
    """Search a STAC API in both windows and pair the scenes (see :func:`pair_scenes`).

    Several collections may be searched together (e.g. Landsat before, Sentinel-2 after); an
    acquisition never mixes collections. Items of a remote catalog that point at local files
    are refused (listed in ``skipped``). ``max_area_km2`` guards against accidental huge runs.

    Raises:
        InputError: bad AOI, windows or options (before any request).
        CatalogError: catalog problems; NoCoverageError when a window has nothing usable.
    """
    geom = parse_aoi(aoi, max_area_km2=max_area_km2)
    windows = parse_windows(before, after)
    found: list[pystac.Item] = []
    for window in windows:
        found += search_items(
            catalog_url, collection=collection, aoi=geom, window=window, options=options
        )
    return pair_scenes(
        found,
        aoi=geom,
        before=windows[0],
        after=windows[1],
        max_cloud=max_cloud,
        min_coverage=min_coverage,
        catalog=catalog_url,
        collection=collection if isinstance(collection, str) else ",".join(collection),
        catalog_is_local=is_local_catalog(catalog_url),
    )


def _best_group(
    cands: list[_Candidate], *, target: dt.datetime, aoi: BaseGeometry, to_m: Callable[..., Any]
) -> tuple[list[_Candidate], float, dt.datetime, float | None] | None:
    """The acquisition covering most of the AOI (then least cloud, then nearest ``target``):
    its items to mosaic, coverage, median datetime and mean cloud cover."""
    groups: dict[tuple[str, ...], list[_Candidate]] = defaultdict(list)
    for cand in cands:
        groups[cand.key].append(cand)
    best: tuple[tuple[Any, ...], tuple[Any, ...]] | None = None
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
            best = (rank, (selected, coverage, when, cloud))
    return best[1] if best else None  # type: ignore[return-value]


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
    best: tuple[list[_Candidate], float, dt.datetime, float | None] | None,
    min_coverage: float,
    skipped: Mapping[str, str],
    where: str,
    aoi_bounds: tuple[float, float, float, float],
) -> NoCoverageError:
    coverage = best[1] if best else 0.0
    dates = sorted({w.date().isoformat() for _, w in found})
    shown = ", ".join(dates[:8]) + (f" (+{len(dates) - 8} more)" if len(dates) > 8 else "")
    refused = [{"id": i, "reason": skipped[i]} for i, _ in found if i in skipped]
    msg = f"no scene covers the AOI in the {name} window {window}: {len(found)} item(s){where}"
    msg += f" in the window (dates {shown})" if dates else " in the window"
    msg += f", best coverage {coverage:.3f}"
    if min_coverage > 0:
        msg += f" (min_coverage {min_coverage:g})"
    if refused:
        msg += f"; {len(refused)} refused, e.g. {refused[0]['id']!r}: {refused[0]['reason']}"
    msg += f". Widen the {name} window, check the AOI lies inside the collection's footprints"
    if any("max_cloud" in r["reason"] for r in refused):
        msg += ", or relax max_cloud"
    return NoCoverageError(
        msg,
        window=name,
        interval=str(window),
        aoi_bounds=aoi_bounds,
        coverage=coverage,
        min_coverage=min_coverage,
        best_items=[c.item.id for c in best[0]] if best else [],
        found=[i for i, _ in found],
        skipped=refused,
    )


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


def acquisition_key(item: pystac.Item | Mapping[str, Any]) -> tuple[str, ...] | None:
    """The acquisition ``item`` belongs to, as :func:`pair_scenes` groups items into one date.

    ``(collection, platform, UTC day)``, or ``(collection, "naip", year)`` for NAIP; ``None``
    for an item without a datetime. Used to tell new acquisitions apart when a catalog is
    watched (``flows.watch``).
    """
    item = item if isinstance(item, pystac.Item) else pystac.Item.from_dict(dict(item))
    when = item_datetime(item)
    return None if when is None else _group_key(item, when)


def _group_key(item: pystac.Item, when: dt.datetime) -> tuple[str, ...]:
    props = item.properties
    coll = item.collection_id or ""
    if props.get("naip:year"):
        return (coll, "naip", str(props["naip:year"]))
    platform = str(props.get("platform") or props.get("constellation") or "").lower()
    return (coll, platform, when.date().isoformat())


def _median_dt(values: list[dt.datetime]) -> dt.datetime:
    return sorted(values)[(len(values) - 1) // 2]


def _iso(when: dt.datetime | None) -> str | None:
    return format_datetime(when) if when else None


def _reason(err: Exception) -> str:
    text = str(err)
    if isinstance(err, ItemError):
        text = text.removeprefix(f"item {err.item_id!r}: ")
    return text
