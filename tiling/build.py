"""``build_tiles``: from a scene pair to a complete, resumable Zarr tile store."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
from affine import Affine
from odc.geo.geobox import GeoBox
from odc.geo.geom import Geometry

from tiling._progress import run_tasks, worker_count
from tiling.blocks import block_shape, nodata_mask, write_block
from tiling.errors import TilingError, reraise_read_error
from tiling.grid import TileGrid, make_grid
from tiling.gsd import crs_unit_metres, grid_gsd, gsd_attrs, native_grid, odc_method, survey
from tiling.load import DateSource, Stretch, compute_stretch, open_date, read_all
from tiling.register import measure_shift
from tiling.store import (
    create_store,
    nodata_fractions,
    read_attrs,
    update_attrs,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TileOptions:
    """How scenes are cut into tiles. Defaults fit 0.3–1 m aerial imagery and the model.

    Attributes:
        tile_size: Tile edge in pixels (the model sees 256 x 256 pairs).
        overlap: Pixels shared by neighbouring tiles.
        tiles_per_block: Tiles per side of one read block (a block is read in one go).
        resampling: Resampling used to bring a date onto a grid finer than (or, with ``gsd``
            ``None``, as fine as) it; a date finer than the grid is area-averaged.
        gsd: Metres per pixel of the tiles: both dates are resampled to it (``flows`` passes
            the model's GSD). ``None``: the before scene's native pixel grid.
        gsd_range: ``(finest, coarsest)`` source GSD in metres accepted: a date coarser than
            it is refused before any pixel is read (``None``: no check).
        register: ``"none"``, ``"measure"`` (record the residual shift between dates) or
            ``"correct"`` (also resample the after date to remove it).
        max_nodata_fraction: Tiles with more nodata than this in either date are counted and
            listed as mostly-nodata (they are still written, never silently dropped).
        compression_level: zstd level of the image chunks.
    """

    tile_size: int = 256
    overlap: int = 0
    tiles_per_block: int = 8
    resampling: str = "bilinear"
    register: Literal["none", "measure", "correct"] = "measure"
    max_nodata_fraction: float = 0.5
    compression_level: int = 3
    gsd: float | None = None
    gsd_range: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.register not in ("none", "measure", "correct"):
            raise ValueError(f"register must be none, measure or correct, got {self.register!r}")
        if not 0.0 <= self.max_nodata_fraction <= 1.0:
            raise ValueError(
                f"max_nodata_fraction must be in [0, 1], got {self.max_nodata_fraction}"
            )
        if self.tiles_per_block < 1:
            raise ValueError(f"tiles_per_block must be >= 1, got {self.tiles_per_block}")
        if self.gsd is not None and not (math.isfinite(self.gsd) and self.gsd > 0):
            raise ValueError(f"gsd must be a positive number of metres, got {self.gsd!r}")
        if self.gsd_range is not None:
            lo, hi = self.gsd_range
            if not 0 < lo <= hi:
                raise ValueError(f"gsd_range must be (finest, coarsest) > 0, got {self.gsd_range}")


@dataclass(frozen=True)
class TileStoreSummary:
    """What a :func:`build_tiles` call did."""

    path: str
    n_tiles: int
    n_written: int
    n_already_done: int
    n_mostly_nodata: int
    mostly_nodata: list[str] = field(default_factory=list)
    shift_px: tuple[float, float] | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan_grid(
    pair: Any,
    *,
    tile_size: int = 256,
    overlap: int = 0,
    prefix: str = "aoi",
    gsd: float | None = None,
) -> TileGrid:
    """The tile grid for a scene pair over the AOI: the before scene's pixel grid, or with
    ``gsd`` a grid of that many metres per pixel anchored on the before scene's corner."""
    if gsd is None:
        resolution, anchor = native_grid(pair.before.items, pair.crs)
    else:
        resolution = gsd / crs_unit_metres(pair.crs)
        try:
            anchor = native_grid(pair.before.items, pair.crs)[1]
        except TilingError:
            anchor = (0.0, 0.0)
    aoi = Geometry(pair.aoi, "EPSG:4326").to_crs(pair.crs).geom
    return make_grid(
        aoi,
        crs=pair.crs,
        resolution=resolution,
        anchor=anchor,
        tile_size=tile_size,
        overlap=overlap,
        prefix=prefix,
    )


def _fingerprint(pair: Any, grid: TileGrid, options: TileOptions) -> str:
    key = {
        "before": sorted(i.id for i in pair.before.items),
        "after": sorted(i.id for i in pair.after.items),
        "crs": str(grid.geobox.crs),
        "transform": list(grid.transform)[:6],
        "shape": list(grid.geobox.shape),
        # the grid's transform holds the GSD; the accepted range changes no pixel
        "options": {
            k: v
            for k, v in asdict(options).items()
            if k not in ("tiles_per_block", "gsd", "gsd_range")
        },
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def _sources(side: Any) -> dict[str, Any]:
    return {
        "datetime": str(side.datetime),
        "items": [
            {"id": i.id, "datetime": str(i.datetime), "hrefs": [a.href for a in i.assets.values()]}
            for i in side.items
        ],
    }


def _registration_window(grid: TileGrid, size: int = 512) -> tuple[slice, slice]:
    h, w = grid.geobox.shape
    sy, sx = min(size, h), min(size, w)
    y0, x0 = (h - sy) // 2, (w - sx) // 2
    return slice(y0, y0 + sy), slice(x0, x0 + sx)


def _measure(
    pair: Any,
    grid: TileGrid,
    loads: tuple[dict[str, Any], dict[str, Any]],
    dates: tuple[DateSource, DateSource],
) -> tuple[float, float]:
    """Residual shift between the dates (``dates`` on the grid), measured on a central window
    read on its own."""
    ys, xs = _registration_window(grid)
    before, after = dates
    if before.reader is None or after.reader is None:
        window = grid.geobox[ys, xs]  # reads just this window, not the whole blocks around it
        before = open_date(pair.before.items, window, shift_ok=False, **loads[0])
        after = open_date(pair.after.items, window, **loads[1])
        b, a = read_all(before), read_all(after)
    else:
        b = before.block(ys.start, ys.stop, xs.start, xs.stop)()
        a = after.block(ys.start, ys.stop, xs.start, xs.stop)()
        a = after.shift.apply(a, after.nodata) if after.shift else a
    valid = ~(nodata_mask(b, before.nodata) | nodata_mask(a, after.nodata))
    if valid.mean() < 0.25:
        log.warning("registration window is mostly nodata; shift not measured")
        return (float("nan"), float("nan"))
    return measure_shift(b, a, valid=valid)


def _tasks(
    path: str,
    grid: TileGrid,
    shape: tuple[int, int],
    todo: np.ndarray,
    dates: tuple[DateSource, DateSource],
    stretches: tuple[Stretch, Stretch],
) -> list:
    """One task per block of ``shape`` tiles that has tiles still to write."""
    before, after = dates
    tasks = []
    for block in grid.blocks(*shape):
        tiles = [t for t in block if todo[t.index]]
        if not tiles:
            continue
        y0, x0 = block[0].y_off, block[0].x_off
        y1 = block[-1].y_off + grid.tile_size
        x1 = block[-1].x_off + grid.tile_size
        tasks.append(
            partial(
                write_block,
                path,
                tiles,
                y0,
                x0,
                before.block(y0, y1, x0, x1),
                after.block(y0, y1, x0, x1),
                (before.nodata, after.nodata),
                stretches,
                after.shift,
            )
        )
    return tasks


def build_tiles(
    pair: Any,
    out: str | Path,
    *,
    options: TileOptions | None = None,
    name: str = "aoi",
    overwrite: bool = False,
    progress: bool | None = None,
    patch_url: Callable[[str], str] | None = None,
) -> TileStoreSummary:
    """Load both dates of ``pair`` onto one grid and write the Zarr v3 tile store at ``out``.

    Running it again on the same ``out`` resumes: tiles already written are kept, only the
    missing ones are read and written. A store built from other inputs or options is refused
    unless ``overwrite``.

    Args:
        pair: A :class:`catalogs.ScenePair` (before/after items, AOI, CRS).
        out: Store path or fsspec URL (e.g. ``tiles.zarr``, ``s3://bucket/run/tiles.zarr``).
        options: Tiling options; see :class:`TileOptions`.
        name: AOI name used in tile ids (``{name}-{row}-{col}``).
        overwrite: Replace an existing store built from different inputs.
        progress: Show a progress bar (default: only on a terminal).
        patch_url: Hook to sign asset URLs (e.g. ``planetary_computer.sign``).

    Returns:
        Counts of tiles written, already present and mostly nodata, and the measured shift.
    """
    options = options or TileOptions()
    started = time.perf_counter()
    path = str(out)
    # every item's GSD from metadata, and a refusal, before any pixel is read
    found = survey(pair, accepted=options.gsd_range, target=options.gsd, patch_url=patch_url)
    grid = plan_grid(
        pair,
        tile_size=options.tile_size,
        overlap=options.overlap,
        prefix=name,
        gsd=options.gsd,
    )
    fingerprint = _fingerprint(pair, grid, options)
    attrs = read_attrs(path)
    if attrs is not None and attrs.get("fingerprint") != fingerprint:
        if not overwrite:
            raise TilingError(
                f"{path} already holds a tile store built from other items or options; "
                "pass overwrite=True (--overwrite) or choose another output path"
            )
        attrs = None
    if attrs is None and Path(path).exists() and "://" not in path:
        shutil.rmtree(path)

    shape = block_shape(grid, options.tiles_per_block, worker_count())
    chunk = max(shape) * grid.stride  # odc-stac's dask chunks, when it reads a date
    target_gsd, methods = grid_gsd(grid, found, resampling=options.resampling)
    loads = tuple(
        dict(
            chunk=chunk, resampling=odc_method(methods[s], options.resampling), patch_url=patch_url
        )
        for s in ("before", "after")
    )
    with reraise_read_error(pair):
        before = open_date(pair.before.items, grid.geobox, shift_ok=False, **loads[0])
        after = open_date(pair.after.items, grid.geobox, **loads[1])  # before any correction
    if attrs is None:
        stretches = (
            compute_stretch(pair.before.items, grid.geobox, patch_url=patch_url),
            compute_stretch(pair.after.items, grid.geobox, patch_url=patch_url),
        )
        shift = None
        if options.register == "correct":  # needed before the after date is read
            with reraise_read_error(pair):
                shift = _measure(pair, grid, loads, (before, after))
        applied = bool(
            options.register == "correct"
            and shift
            and np.isfinite(shift).all()
            and max(abs(shift[0]), abs(shift[1])) >= 0.05
        )
        registration = {"mode": options.register, "shift_px": shift, "applied": applied}
        create_store(
            path,
            grid,
            datetimes=(
                np.datetime64(pair.before.datetime.replace(tzinfo=None)),
                np.datetime64(pair.after.datetime.replace(tzinfo=None)),
            ),
            compression_level=options.compression_level,
            attrs={
                "crs": str(grid.geobox.crs),
                "crs_wkt": grid.geobox.crs.to_wkt(),
                "epsg": grid.geobox.crs.epsg,
                "transform": list(grid.transform)[:6],
                "grid_shape": list(grid.geobox.shape),
                "pixel_size": grid.resolution,
                "gsd": gsd_attrs(
                    found,
                    grid_gsd=target_gsd,
                    target=options.gsd,
                    accepted=options.gsd_range,
                    resampling=methods,
                ),
                "tile_size": grid.tile_size,
                "overlap": grid.overlap,
                "n_rows": grid.n_rows,
                "n_cols": grid.n_cols,
                "aoi": pair.aoi.__geo_interface__,
                "catalog": getattr(pair, "catalog", None),
                "collection": getattr(pair, "collection", None),
                "sources": {"before": _sources(pair.before), "after": _sources(pair.after)},
                "normalisation": {
                    "before": stretches[0].to_dict(),
                    "after": stretches[1].to_dict(),
                },
                "registration": registration,
                "max_nodata_fraction": options.max_nodata_fraction,
                "fingerprint": fingerprint,
                "complete": False,
            },
        )
    else:
        norm = attrs["normalisation"]
        stretches = (Stretch.from_dict(norm["before"]), Stretch.from_dict(norm["after"]))
        registration = attrs["registration"]
    if registration["applied"]:
        dx, dy = registration["shift_px"]
        after_box = GeoBox(
            grid.geobox.shape, grid.transform @ Affine.translation(dx, dy), grid.geobox.crs
        )
        with reraise_read_error(pair):
            after = open_date(pair.after.items, after_box, **loads[1])

    fractions = np.full((grid.n_tiles, 2), np.nan, "float32")
    if attrs is not None:
        fractions = nodata_fractions(path)
    todo = np.isnan(fractions).any(axis=1)
    n_done = int((~todo).sum())
    tasks = _tasks(path, grid, shape, todo, (before, after), stretches)
    if n_done:
        log.info(
            "%s: %d of %d tiles already written, %d to go",
            path,
            n_done,
            grid.n_tiles,
            int(todo.sum()),
        )
    with reraise_read_error(pair), ThreadPoolExecutor(1) as side_thread:
        # "measure" only records the shift: measure it while the tiles are being written
        pending = registration["mode"] == "measure" and registration["shift_px"] is None
        measuring = None
        if pending:
            measuring = side_thread.submit(_measure, pair, grid, loads, (before, after))
        results = run_tasks(tasks, total=int(todo.sum()), desc="tiles", progress=progress)
        if measuring is not None:
            registration = {**registration, "shift_px": measuring.result()}
            update_attrs(path, registration=registration)

    for indices, written in results:
        fractions[indices] = written
    n_written = sum(len(indices) for indices, _ in results)
    mostly = (fractions > options.max_nodata_fraction).any(axis=1)
    ids = np.array([grid.tile(i).tile_id for i in range(grid.n_tiles)], dtype=object)
    summary = TileStoreSummary(
        path=path,
        n_tiles=grid.n_tiles,
        n_written=n_written,
        n_already_done=n_done,
        n_mostly_nodata=int(mostly.sum()),
        mostly_nodata=[str(i) for i in ids[mostly]],
        shift_px=tuple(registration["shift_px"]) if registration["shift_px"] else None,
        seconds=round(time.perf_counter() - started, 3),
    )
    update_attrs(
        path,
        complete=True,
        summary={
            "n_tiles": summary.n_tiles,
            "n_mostly_nodata": summary.n_mostly_nodata,
            "mostly_nodata": summary.mostly_nodata,
        },
    )
    return summary
