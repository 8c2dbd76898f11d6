"""One poll of ``changevg watch``: new acquisitions per region, and a monitoring run for each.

For every region of the regions file a poll searches its catalog for items dated after the
region's cursor (after its baseline window the first time), groups them into acquisitions the
way scene pairing does (:func:`catalogs.pairing.acquisition_key`: one platform's UTC day, a
NAIP year), and measures how much of the AOI each acquisition's usable items cover. One that
covers the AOI runs at once; a partial one waits up to the grace period for the rest, then runs
with what covers. A run is ``monitor_region`` with the baseline as *before* and the
acquisition's days as *after*, writing to ``{out_root}/{region}/{acquisition}`` and the shared
``{out_root}/inventory``, under a run id derived from the region and the acquisition — so a
killed run resumes on the next poll, and an acquisition never runs twice. The region's state
moves only after its run has completed. A catalog that fails is reported and its region skipped
(its state untouched); the other regions still run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import shapely
from pyproj import Transformer
from shapely.geometry.base import BaseGeometry

from catalogs.aoi import DateWindow, format_datetime, parse_aoi, parse_window, utm_crs_for
from catalogs.errors import CatalogError, ChangeVGError, InputError, ItemError
from catalogs.items import check_hrefs, is_local_catalog, item_datetime, item_footprint, rgb_bands
from catalogs.pairing import acquisition_key
from catalogs.search import SearchOptions, search_items
from flows.request import RunRequest
from flows.spec import join_path
from flows.watch.regions import Region, load_regions
from flows.watch.state import RegionState, StateStore

__all__ = ["COMPLETE", "Acquisition", "find_acquisitions", "plan", "poll", "run_id_for"]

#: Coverage from which an acquisition counts as covering the AOI (footprints are rounded).
COMPLETE = 0.999
_KEEP_DONE = 500  # acquisition ids remembered after the cursor (late items of a finished one)

RunFlow = Callable[[RunRequest], Mapping[str, Any]]
_DEFAULT_SEARCH = SearchOptions()


@dataclass(frozen=True)
class Acquisition:
    """One new acquisition over a region's AOI.

    Attributes:
        id: Stable, path-safe name: ``{day or year}-{platform}`` (e.g. ``2024-06-15-sentinel-2a``).
        start, end: The earliest and latest datetime of its items (UTC).
        items: Ids of its usable items that touch the AOI.
        coverage: Fraction 0..1 of the AOI their footprints cover.
    """

    id: str
    start: dt.datetime
    end: dt.datetime
    items: tuple[str, ...]
    coverage: float

    @property
    def window(self) -> str:
        """The *after* window of its run: the UTC days its items fall on."""
        return f"{self.start.date().isoformat()}/{self.end.date().isoformat()}"

    def to_json(self) -> dict[str, Any]:
        """Plain JSON values (for poll reports)."""
        return {
            "id": self.id,
            "window": self.window,
            "items": list(self.items),
            "coverage": round(self.coverage, 4),
        }


def find_acquisitions(
    region: Region,
    *,
    since: dt.datetime | None,
    until: dt.datetime,
    options: SearchOptions = _DEFAULT_SEARCH,
) -> tuple[list[Acquisition], list[dict[str, str]]]:
    """The region's acquisitions dated after ``since`` (or its baseline) up to ``until``.

    Returns:
        The acquisitions, oldest first, and the items refused (``{"id", "reason"}``: no RGB
        raster, local files on a remote catalog, no datetime…).

    Raises:
        CatalogError: the catalog could not be searched.
    """
    aoi = parse_aoi(region.aoi, max_area_km2=math.inf)
    baseline = parse_window(region.before, name="before", today=until.date())
    start = max(since or baseline.end, baseline.end) + dt.timedelta(microseconds=1)
    if start > until:
        return [], []
    items = search_items(
        region.catalog,
        collection=region.collection,
        aoi=aoi,
        window=DateWindow(start, until),
        options=options,
    )
    local = is_local_catalog(region.catalog)
    groups: dict[tuple[str, ...], list[tuple[str, dt.datetime, BaseGeometry]]] = defaultdict(list)
    skipped: list[dict[str, str]] = []
    for item in items:
        key, when = acquisition_key(item), item_datetime(item)
        if key is None or when is None:
            skipped.append({"id": item.id, "reason": "no datetime"})
            continue
        try:
            part = item_footprint(item).intersection(aoi)
            check_hrefs(item, catalog_is_local=local)
            rgb_bands(item)
        except (ItemError, shapely.errors.ShapelyError) as err:
            skipped.append({"id": item.id, "reason": str(err)})
            continue
        if not part.is_empty and part.area > 0:
            groups[key].append((item.id, when, part))
    to_m = Transformer.from_crs("EPSG:4326", utm_crs_for(aoi), always_xy=True).transform

    def area(geom: BaseGeometry) -> float:
        return float(shapely.transform(geom, to_m, interleaved=False).area)

    found = []
    for key, members in groups.items():
        covered = shapely.union_all([part for _, _, part in members])
        times = sorted(when for _, when, _ in members)
        found.append(
            Acquisition(
                id=_acquisition_id(key),
                start=times[0],
                end=times[-1],
                items=tuple(sorted(i for i, _, _ in members)),
                coverage=min(area(covered) / area(aoi), 1.0),
            )
        )
    return sorted(found, key=lambda a: (a.start, a.id)), skipped


def _acquisition_id(key: tuple[str, ...]) -> str:
    when, source = key[-1], key[-2] if len(key) > 2 and key[-2] else key[0]
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", f"{when}-{source}").strip("-").lower()


def run_id_for(region: Region, acquisition: Acquisition) -> str:
    """The run id of ``acquisition`` in ``region``: the same on every poll (and catalog URL)."""
    key = json.dumps([region.name, region.collection, region.aoi, region.before, acquisition.id])
    return f"{region.name}-{acquisition.id}-{hashlib.sha1(key.encode()).hexdigest()[:8]}"


def plan(
    acquisitions: Sequence[Acquisition],
    state: RegionState,
    *,
    now: dt.datetime,
    grace: dt.timedelta,
) -> tuple[list[Acquisition], list[Acquisition]]:
    """Which acquisitions run now and which wait for more coverage.

    Acquisitions that have run are left out. A partial one is recorded in ``state.pending``
    when first seen and runs once ``grace`` has passed since then.
    """
    ready, waiting = [], []
    for acq in acquisitions:
        if acq.id in state.done:
            continue
        if acq.coverage >= COMPLETE:
            ready.append(acq)
            continue
        first = state.pending.setdefault(acq.id, format_datetime(now))
        if now - dt.datetime.fromisoformat(first) >= grace:
            ready.append(acq)
        else:
            waiting.append(acq)
    return ready, waiting


def _completed(state: RegionState, acquisitions: Sequence[Acquisition], acq: Acquisition) -> None:
    """Record a completed run; move the cursor over every leading acquisition that has run."""
    state.done = [*[d for d in state.done if d != acq.id], acq.id][-_KEEP_DONE:]
    state.pending.pop(acq.id, None)
    for each in sorted(acquisitions, key=lambda a: (a.end, a.id)):
        if each.id not in state.done:
            break
        if state.cursor_time is None or each.end > state.cursor_time:
            state.cursor = format_datetime(each.end)


def poll_region(
    region: Region,
    store: StateStore,
    *,
    out_root: str,
    grace_hours: float,
    run: RunFlow,
    now: dt.datetime,
    settings: str | None = None,
    options: SearchOptions = _DEFAULT_SEARCH,
) -> dict[str, Any]:
    """One region's poll (see the module docstring); returns its report."""
    state = store.load(region.name)
    report: dict[str, Any] = {"region": region.name, "cursor": state.cursor, "ran": []}
    try:
        acquisitions, skipped = find_acquisitions(
            region, since=state.cursor_time, until=now, options=options
        )
    except CatalogError as exc:
        return {**report, "status": "catalog-error", "error": str(exc)}
    hours = region.grace_hours if region.grace_hours is not None else grace_hours
    grace = dt.timedelta(hours=hours)
    pending_before = dict(state.pending)
    ready, waiting = plan(acquisitions, state, now=now, grace=grace)
    if state.pending != pending_before:
        store.save(state)  # when a partial acquisition was first seen (the cursor stays)
    report |= {
        "found": [a.to_json() for a in acquisitions],
        "waiting": [
            {**a.to_json(), "since": state.pending[a.id], "runs_after": str(grace)} for a in waiting
        ],
        "skipped_items": skipped,
        "failed": [],
    }
    for acq in ready:
        request = RunRequest(
            aoi=region.aoi,
            catalog=region.catalog,
            collection=region.collection,
            before=region.before,
            after=acq.window,
            region=region.name,
            out=join_path(join_path(out_root, region.name), acq.id),
            inventory=join_path(out_root, "inventory"),
            run_id=run_id_for(region, acq),
            model=region.model,
            settings=settings,
        )
        try:
            summary = run(request)
        except ChangeVGError as exc:  # this acquisition again on the next poll
            report["failed"].append({**acq.to_json(), "run_id": request.run_id, "error": str(exc)})
            continue
        _completed(state, acquisitions, acq)
        state.runs.append(
            {
                "acquisition": acq.id,
                "run_id": str(summary.get("run_id", request.run_id)),
                "out": request.out,
                "completed": format_datetime(dt.datetime.now(dt.UTC)),
            }
        )
        store.save(state)  # only now: a crash before this reruns (resumes) the acquisition
        report["ran"].append({**acq.to_json(), "run_id": request.run_id, "out": request.out})
    status = "failed" if report["failed"] else "ok"
    return {**report, "status": status, "cursor": state.cursor}


def poll(
    regions: str | Path,
    *,
    state: str | Path,
    out_root: str,
    run: RunFlow,
    grace_hours: float = 24.0,
    settings: str | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Poll every region once (see the module docstring).

    Args:
        regions: The regions TOML file (:mod:`flows.watch.regions`).
        state: The state folder (:mod:`flows.watch.state`).
        out_root: Where runs write: ``{out_root}/{region}/{acquisition}/`` and
            ``{out_root}/inventory``.
        run: Runs one :class:`~flows.request.RunRequest` to completion (``monitor_region``).
        grace_hours: How long a partial acquisition waits (a region's ``grace_hours`` wins).
        settings: Settings TOML file for the search and the runs.
        now: The poll time (default: now, UTC).

    Returns:
        ``{"polled_at", "regions": [per-region report], "runs", "failed"}``; a region's
        ``status`` is ``ok``, ``failed`` (a run failed) or ``catalog-error`` (not searched).

    Raises:
        InputError: bad regions file, state folder or settings (before any search).
        RunError: another watch holds the state folder.
    """
    from flows.settings import Settings

    if grace_hours < 0:
        raise InputError(f"grace_hours (--grace-hours) must be >= 0 hours, got {grace_hours}")
    watched = load_regions(regions)
    store = StateStore(state)
    options = Settings.load(settings).search
    now = now or dt.datetime.now(dt.UTC)
    with store.lock():
        reports = [
            poll_region(
                region,
                store,
                out_root=str(out_root),
                grace_hours=grace_hours,
                run=run,
                now=now,
                settings=settings,
                options=options,
            )
            for region in watched
        ]
    return {
        "polled_at": format_datetime(now),
        "regions": reports,
        "runs": sum(len(r["ran"]) for r in reports),
        "failed": sum(r["status"] != "ok" for r in reports),
    }
