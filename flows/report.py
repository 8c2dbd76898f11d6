"""The run report: one self-contained ``report.html`` (no network, no CDN, no web fonts).

>>> write_report("run/report.html", store="run/tiles.zarr", tiles=tile_rows,
...              objects=object_rows, meta={"run_id": rid, "timings": {"tile": 12.3}})

The page holds: a summary line; an inline-SVG overview of the AOI (every tile footprint,
unchanged grey, changed red by ``change_score``, change polygons on top; a click jumps to the
tile); for each changed tile, the before / after images side by side (base64 JPEG, at most
256 px) with its change polygons drawn over them (SVG, coloured by class), its caption, counts
and grid cells; a table of all tiles, sortable by clicking a header; and the run metadata.
Only changed tiles get images, so the file stays small. A Content-Security-Policy forbids any
request other than ``data:`` images, so the page cannot reach the network even by mistake.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import math
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from PIL import Image
from shapely.geometry.base import BaseGeometry

__all__ = ["write_report"]

MAX_IMAGE_PX = 256
CLASS_COLOURS = {"building": "#ff2bd6", "road": "#00e0ff"}
_UNCHANGED = "#d4d4d4"
_DEFAULTS: dict[str, dict[str, Any]] = {  # columns read, with their value when absent
    "tiles": {"changed": False, "change_score": math.nan, "caption": "", "n_buildings": 0,
              "n_roads": 0, "cells": None, "geometry": None},
    "objects": {"tile_id": "", "object_id": "", "cls": "", "area_m2": math.nan,
                "score": math.nan, "cell": "", "geometry": None},
}  # fmt: skip

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#222;
background:#f6f6f4}main{max-width:1100px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:22px;margin:8px 0 2px}h3{font-size:15px;margin:0 0 6px;font-family:monospace}
h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ccc;padding-bottom:4px}
.sub{color:#666}.summary b{font-size:16px}.legend{flex:1 1 180px}.legend div{margin:3px 0}
.overview{display:flex;gap:20px;align-items:flex-start;flex-wrap:wrap}
.overview svg{width:min(100%,640px);height:auto;background:#fff;border:1px solid #ccc}
.tile{stroke:#fff;stroke-width:1.5px;vector-effect:non-scaling-stroke}
a:hover .tile,a:focus .tile{stroke:#000;stroke-width:3px}
.obj{stroke-width:1px;vector-effect:non-scaling-stroke;fill-opacity:.6;pointer-events:none}
.frame .obj{stroke-width:1.6px;fill-opacity:.12;pointer-events:auto}
.lbl{font:bold 1px sans-serif;fill:#fff;dominant-baseline:hanging;pointer-events:none;
paint-order:stroke;stroke:#0006;stroke-width:2px}
.legend span{display:inline-block;width:12px;height:12px;vertical-align:-2px;margin-right:6px;
border:1px solid #888}.card:target{outline:3px solid #e4572e}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:12px 14px;margin:14px 0}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:10px;max-width:820px}figure{margin:0}
figcaption{font-size:12px;color:#555;margin-top:2px}.frame{position:relative;line-height:0}
.frame img{width:100%;height:auto;border-radius:3px}.hide-polys .frame svg{display:none}
.frame svg{position:absolute;inset:0;width:100%;height:100%}
.caption{font-size:15px;margin:8px 0 4px}.facts{color:#444;margin:0}
.note{padding:10px 14px;background:#fff8e1;border:1px solid #f0d98c;border-radius:6px}
table{border-collapse:collapse;background:#fff;font-size:13px}#tiles{width:100%}
#tiles td:first-child{white-space:nowrap}dd ul{margin:0;padding-left:18px}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eee;white-space:nowrap}table.sortable th{cursor:pointer;user-select:none}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
td.num{text-align:right;font-variant-numeric:tabular-nums}tr:target{background:#fff3c4}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:3px 16px;margin:0}
dl.meta dt{font-weight:600;color:#444}dl.meta dd{margin:0;word-break:break-word}
.bar{display:inline-block;height:9px;background:#7a9cc6}footer{color:#888;margin-top:32px}
details summary{cursor:pointer;color:#444;margin-top:6px}
"""

_JS = """
document.querySelectorAll("table.sortable th").forEach((th, i) => th.addEventListener("click",
  () => {
    const table = th.closest("table"), body = table.tBodies[0];
    const asc = th.getAttribute("aria-sort") !== "ascending";
    table.querySelectorAll("th").forEach(h => h.removeAttribute("aria-sort"));
    th.setAttribute("aria-sort", asc ? "ascending" : "descending");
    const num = th.dataset.type === "num";
    const key = r => { const c = r.cells[i], v = c.dataset.sort ?? c.textContent;
      return num ? (parseFloat(v) || 0) : v.toLowerCase(); };
    const rows = [...body.rows].sort((a, b) => {
      const x = key(a), y = key(b); return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1); });
    body.append(...rows);
  }));
const toggle = document.getElementById("polys");
if (toggle) toggle.addEventListener("change",
  () => document.body.classList.toggle("hide-polys", !toggle.checked));
"""

_CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "base-uri 'none'; form-action 'none'"
)


def _e(value: Any) -> str:
    """Text escaped for HTML content and (double- or single-quoted) attribute values."""
    return html.escape("" if value is None else str(value), quote=True)


def _frame(rows: pd.DataFrame | Sequence | None, table: str) -> pd.DataFrame:
    """Rows (a DataFrame, or ``TileRow`` / ``ObjectRow`` / dicts) with every column we read."""
    if isinstance(rows, pd.DataFrame):
        df = pd.DataFrame(rows).reset_index(drop=True)
    else:
        df = pd.DataFrame([asdict(r) if is_dataclass(r) else dict(r) for r in rows or []])
    df = df.rename(columns={"class": "cls"})  # as the inventory's objects table names it
    if "tile_id" not in df:
        if len(df):
            raise ValueError(f"{table} rows need a tile_id column")
        df["tile_id"] = pd.Series([], dtype=object)
    for col, default in _DEFAULTS[table].items():
        if col not in df:
            df[col] = [default] * len(df)
    df["tile_id"] = df["tile_id"].astype(str)
    return df


def _geom(value: Any) -> BaseGeometry | None:
    if isinstance(value, bytes | bytearray):
        value = shapely.from_wkb(bytes(value))
    return value if isinstance(value, BaseGeometry) and not value.is_empty else None


def _cells(value: Any) -> list[str]:
    if isinstance(value, str):
        return [s.strip() for s in value.split(",") if s.strip()]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    return [str(v) for v in value]


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _int(value: Any) -> int:
    v = _num(value)
    return 0 if math.isnan(v) else int(v)


def _anchor(prefix: str, tile_id: str) -> str:
    return f"{prefix}-{re.sub(r'[^A-Za-z0-9_-]', '_', tile_id)}"


def _colour(changed: bool, score: float) -> str:
    """Grey for unchanged tiles; light to dark red with the score for changed ones."""
    if not changed:
        return _UNCHANGED
    s = 1.0 if math.isnan(score) else min(max(score, 0.0), 1.0)
    rgb = (round(lo + (hi - lo) * s) for lo, hi in zip((252, 174, 145), (165, 15, 21)))
    return "#" + "".join(f"{c:02x}" for c in rgb)


def _polygons(geom: BaseGeometry) -> Iterable[shapely.Polygon]:
    if isinstance(geom, shapely.Polygon):
        yield geom
    for g in getattr(geom, "geoms", ()):
        yield from _polygons(g)


def _path(geom: BaseGeometry, to_xy) -> str:
    """SVG path data of a (multi)polygon; ``to_xy`` maps an (n, 2) array to page coordinates."""
    parts = []
    for poly in _polygons(geom):
        for ring in (poly.exterior, *poly.interiors):
            xy = to_xy(np.asarray(ring.coords)[:, :2])
            parts.append("M" + "L".join(f"{x:.2f},{y:.2f}" for x, y in xy) + "Z")
    return "".join(parts)


def _obj_paths(objects: pd.DataFrame, to_xy, titles: bool) -> str:
    out = []
    for _, o in objects.iterrows():
        if (g := _geom(o["geometry"])) is not None:
            c = CLASS_COLOURS.get(str(o["cls"]), "#ff0")
            title = f"<title>{_e(o['cls'])} {_e(o['object_id'])}</title>" if titles else ""
            d = _path(g, to_xy)
            out.append(f'<path class="obj" fill="{c}" stroke="{c}" d="{d}">{title}</path>')
    return "".join(out)


def _jpeg(rgb: np.ndarray) -> str:
    """A ``(band, y, x)`` uint8 array as a JPEG data URI, downscaled to ``MAX_IMAGE_PX``.

    JPEG at quality 85 keeps a 256 px tile near 20 KB (PNG: ~145 KB), so a run with a hundred
    changed tiles still gives a report of a few MB.
    """
    img = Image.fromarray(np.ascontiguousarray(np.moveaxis(rgb[:3], 0, -1)).astype(np.uint8))
    if max(img.size) > MAX_IMAGE_PX:
        img.thumbnail((MAX_IMAGE_PX, MAX_IMAGE_PX), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _fmt(value: Any) -> str:
    """One metadata value as escaped HTML (mappings nest, lists of records become a list)."""
    if isinstance(value, Mapping):
        inner = "".join(f"<dt>{_e(k)}</dt><dd>{_fmt(v)}</dd>" for k, v in value.items())
        return f'<dl class="meta">{inner}</dl>' if value else "—"
    if isinstance(value, list | tuple | set | np.ndarray):
        if len(value) and all(isinstance(v, Mapping) for v in value):  # e.g. items {id, …}
            return "<ul>" + "".join(f"<li>{_record(v)}</li>" for v in value) + "</ul>"
        return _e(", ".join(map(str, value))) if len(value) else "—"
    if isinstance(value, float):
        return _e(f"{value:.6g}")
    if isinstance(value, dt.datetime):  # pd.Timestamp too
        return _e(value.isoformat())
    return "—" if value is None else _e(value)


def _record(value: Mapping[str, Any]) -> str:
    """A record in a list, on one line: its ``id`` in bold, then its other fields."""

    def text(v: Any) -> str:
        return ", ".join(map(str, v)) if isinstance(v, list | tuple) else str(v)

    rest = "; ".join(f"{k}: {text(v)}" for k, v in value.items() if k != "id")
    return (f"<b>{_e(value['id'])}</b> " if "id" in value else "") + _e(rest)


def _seconds(s: Any) -> str:
    if math.isnan(secs := _num(s)):
        return _e(s)
    if secs < 60:
        return f"{secs:.2f} s" if secs < 10 else f"{secs:.1f} s"
    m, sec = divmod(round(secs), 60)
    return f"{m} min {sec:02d} s" if m < 60 else f"{m // 60} h {m % 60:02d} min"


def _timings(timings: Mapping[str, Any]) -> str:
    """``{stage: seconds}`` as a table with proportional bars and the total."""
    secs = {k: v for k, v in timings.items() if not math.isnan(_num(v))}
    top = max(map(_num, secs.values()), default=0.0) or 1.0
    rows = "".join(
        f'<tr><td>{_e(stage)}</td><td class="num">{_seconds(v)}</td><td><span class="bar" '
        f'style="width:{round(120 * _num(v) / top) if stage in secs else 0}px"></span></td></tr>'
        for stage, v in timings.items()
    )
    total = sum(map(_num, secs.values()))
    return (
        f"<table><tr><th>stage</th><th>time</th><th></th></tr>{rows}"
        f'<tr><th>total</th><th class="num">{_seconds(total)}</th><th></th></tr></table>'
    )


def _meta_section(meta: Mapping[str, Any]) -> str:
    items = "".join(
        f"<dt>{_e(str(k).replace('_', ' '))}</dt><dd>"
        f"{_timings(v) if k == 'timings' and isinstance(v, Mapping) else _fmt(v)}</dd>"
        for k, v in meta.items()
    )
    return f'<dl class="meta">{items}</dl>' if items else "<p class='sub'>No run metadata.</p>"


def _overview(tiles: pd.DataFrame, objects: pd.DataFrame, changed_ids: set[str]) -> str:
    """Inline SVG, north up: one ``path.tile`` per tile (a link), then the change objects."""
    geoms = [_geom(g) for g in tiles["geometry"]]
    present = [g for g in geoms if g is not None]
    if not present:
        return "<p class='sub'>The tiles have no footprints to draw.</p>"
    minx, miny, maxx, maxy = shapely.GeometryCollection(present).bounds

    def to_xy(xy: np.ndarray) -> np.ndarray:
        return np.column_stack([xy[:, 0] - minx, maxy - xy[:, 1]])

    shapes, labels = [], []
    for (_, row), geom in zip(tiles.iterrows(), geoms):
        if geom is None:
            continue
        tid, score, changed = row["tile_id"], row["change_score"], row["tile_id"] in changed_ids
        tip = f"{tid}: {'changed' if changed else 'no change'}, score {score:.2f}"
        tip += f" — {row['caption']}" if row["caption"] else ""
        shapes.append(
            f'<a href="#{_anchor("tile" if changed else "row", tid)}"><path class="tile" '
            f'data-tile="{_e(tid)}" fill="{_colour(changed, score)}" d="{_path(geom, to_xy)}">'
            f"<title>{_e(tip)}</title></path></a>"
        )
        n = _int(row["n_buildings"]) + _int(row["n_roads"])
        if changed and n and len(tiles) <= 400:  # top left corner: the centre is busy
            x0, _, x1, y1 = geom.bounds
            size = 0.16 * min(x1 - x0, y1 - geom.bounds[1])
            labels.append(
                f'<text class="lbl" x="{x0 - minx + size / 2:.2f}" y="{maxy - y1 + size / 2:.2f}"'
                f' style="font-size:{size:.2f}px">{n}</text>'
            )
    legend = [("no change", _UNCHANGED), ("changed, score 0.2", _colour(True, 0.2))]
    legend += [("changed, score 1.0", _colour(True, 1.0))]
    legend += [(f"new {cls}", c) for cls, c in CLASS_COLOURS.items()]
    keys = "".join(f'<div><span style="background:{c}"></span>{_e(k)}</div>' for k, c in legend)
    return (
        f'<div class="overview"><svg id="overview" viewBox="0 0 {max(maxx - minx, 1e-9):.2f} '
        f'{max(maxy - miny, 1e-9):.2f}" role="img" aria-label="Tile grid coloured by change">'
        f"{''.join(shapes)}{_obj_paths(objects, to_xy, False)}{''.join(labels)}</svg>"
        f'<div class="legend">{keys}<p class="sub">Number: change objects in the tile. '
        "Click a tile to go to it.</p></div></div>"
    )


def _tile_card(row: pd.Series, objects: pd.DataFrame, ds: Any, dates: Mapping[str, str]) -> str:
    """One changed tile: before/after images with its change polygons over, caption, facts."""
    tid = row["tile_id"]
    size = int(ds.attrs["tile_size"])
    try:
        t = ~ds.tiles.transform(tid)  # CRS -> (col, row) on pixel corners, as the viewBox

        def to_px(xy: np.ndarray) -> np.ndarray:
            x, y = xy[:, 0], xy[:, 1]
            return np.column_stack([t.a * x + t.b * y + t.c, t.d * x + t.e * y + t.f])

        polys = _obj_paths(objects, to_px, True)
        figures = "".join(
            f'<figure><div class="frame"><img alt="{when} image of {_e(tid)}" '
            f'src="{_jpeg(np.asarray(ds.tiles.image(tid, when).values))}"><svg viewBox="0 0 '
            f'{size} {size}" preserveAspectRatio="none">{polys}</svg></div>'
            f"<figcaption>{when} · {_e(dates[when])}</figcaption></figure>"
            for when in ("before", "after")
        )
        pair = f'<div class="pair">{figures}</div>'
    except KeyError:  # ds.tiles.index: not in this store
        pair = "<p class='note'>This tile is not in the tile store: no images.</p>"
    cells = ", ".join(_cells(row["cells"])) or "—"
    facts = (
        f"score {row['change_score']:.2f} · new buildings {_int(row['n_buildings'])} · "
        f"new roads {_int(row['n_roads'])} · cells: {_e(cells)}"
    )
    listing = "".join(
        f"<tr><td>{_e(o['object_id'])}</td><td>{_e(o['cls'])}</td>"
        f'<td class="num">{_num(o["area_m2"]):.1f}</td><td class="num">{_num(o["score"]):.2f}'
        f"</td><td>{_e(o['cell'])}</td></tr>"
        for _, o in objects.iterrows()
    )
    if listing:
        listing = (
            f"<details><summary>{len(objects)} change objects</summary><table><tr><th>object"
            "</th><th>class</th><th>area m²</th><th>score</th><th>cell</th></tr>"
            f"{listing}</table></details>"
        )
    return (
        f'<section class="card" id="{_anchor("tile", tid)}"><h3>{_e(tid)}</h3>{pair}'
        f'<p class="caption">{_e(row["caption"])}</p><p class="facts">{facts}</p>'
        f"{listing}</section>"
    )


def _table(tiles: pd.DataFrame, changed_ids: set[str]) -> str:
    """All tiles; ``th[data-type=num]`` columns sort by ``td[data-sort]`` or their number."""
    rows = []
    for _, r in tiles.iterrows():
        tid, changed = r["tile_id"], r["tile_id"] in changed_ids
        link = f'<a href="#{_anchor("tile", tid)}">{_e(tid)}</a>' if changed else _e(tid)
        rows.append(
            f'<tr id="{_anchor("row", tid)}"><td>{link}</td><td>{"yes" if changed else "no"}'
            f'</td><td class="num" data-sort="{r["change_score"]:.6f}">{r["change_score"]:.2f}'
            f'</td><td class="num">{_int(r["n_buildings"])}</td><td class="num">'
            f"{_int(r['n_roads'])}</td><td>{_e(', '.join(_cells(r['cells'])))}</td>"
            f"<td>{_e(r['caption'])}</td></tr>"
        )
    return (
        '<table class="sortable" id="tiles"><thead><tr><th>tile</th><th>changed</th>'
        '<th data-type="num">score</th><th data-type="num">buildings</th>'
        '<th data-type="num">roads</th><th>cells</th><th>caption</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _dates(ds: Any, tiles: pd.DataFrame) -> dict[str, str]:
    """``YYYY-MM-DD`` of each date, from the store or else the tiles table ("" if unknown)."""
    out = {}
    for when in ("before", "after"):
        value = None
        if ds is not None and "datetime" in ds.coords:
            value = ds["datetime"].sel(time=when).values
        elif f"{when}_datetime" in tiles and len(tiles):
            value = tiles[f"{when}_datetime"].iloc[0]
        ts = pd.to_datetime(value, utc=True, errors="coerce") if value is not None else pd.NaT
        out[when] = "" if pd.isna(ts) else ts.strftime("%Y-%m-%d")
    return out


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; a report is for sharing
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_report(
    path: str | Path,
    *,
    store: str | Path,
    tiles: pd.DataFrame | Sequence,
    objects: gpd.GeoDataFrame | pd.DataFrame | Sequence | None,
    meta: Mapping[str, Any],
) -> Path:
    """Write the self-contained HTML report of one run.

    Args:
        path: Where to write ``report.html`` (a temporary file beside it, then renamed).
        store: The run's tile store (:func:`tiling.open_tiles`); opened only when some tile
            changed, for the images of the changed tiles.
        tiles: One row per tile pair with the columns of :class:`flows.inventory.TileRow`
            (a DataFrame, or a list of ``TileRow`` / dicts); ``geometry`` = tile footprint
            (shapely or WKB) in the store CRS.
        objects: Rows of :class:`flows.inventory.ObjectRow` (column ``cls`` or ``class``),
            polygons in the store CRS; drawn over the images of their tile and the overview.
        meta: Run metadata (catalog, collection, items, dates, model, threshold, ``timings`` as
            ``{stage: seconds}``, counts…), shown in order as a definition list.

    Returns:
        The path written.

    Raises:
        ValueError: Rows without a ``tile_id`` column.
    """
    path = Path(path)
    tiles_df = _frame(tiles, "tiles")
    tiles_df["change_score"] = [_num(v) for v in tiles_df["change_score"]]
    flags = [bool(pd.notna(v) and v) for v in tiles_df["changed"]]
    changed = tiles_df[pd.Series(flags, index=tiles_df.index, dtype=bool)].sort_values(
        ["change_score", "tile_id"], ascending=[False, True], na_position="last"
    )
    changed_ids = set(changed["tile_id"])
    objects_df = _frame(objects, "objects")
    ds = None
    if changed_ids:
        import tiling  # heavy (dask, zarr): only when there are images to draw

        ds = tiling.open_tiles(str(store))
    dates = _dates(ds, tiles_df)
    by_tile = dict(tuple(objects_df.groupby("tile_id")))
    n_b, n_r = (sum(_int(v) for v in changed[c]) for c in ("n_buildings", "n_roads"))
    n_unchanged = len(tiles_df) - len(changed_ids)

    title = " · ".join(str(meta[k]) for k in ("region", "run_id") if meta.get(k))
    if not len(tiles_df):
        summary = "<p class='note'>No tiles in this run: nothing was analysed.</p>"
    else:
        summary = (
            f"<p class='summary'><b>{len(changed_ids)}</b> of <b>{len(tiles_df)}</b> tiles "
            f"changed; <b>{n_unchanged}</b> unchanged (no images shown for them). New buildings: "
            f"<b>{n_b}</b>, new roads: <b>{n_r}</b>, change objects: <b>{len(objects_df)}</b>.</p>"
        )
        if not changed_ids:
            summary += "<p class='note'><b>No change found</b> in any tile of this run.</p>"
    cards = "".join(
        _tile_card(r, by_tile.get(r["tile_id"], objects_df.iloc[:0]), ds, dates)
        for _, r in changed.iterrows()
    )
    if cards:
        toggle = '<input type="checkbox" id="polys" checked> show change polygons'
        cards = f"<label>{toggle}</label>{cards}"
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    doc = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_e(_CSP)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ChangeVG report{" — " + _e(title) if title else ""}</title>
<style>{_CSS}</style></head>
<body><main>
<h1>ChangeVG run report</h1><p class="sub">{_e(title)}{" · " if title else ""}before
{_e(dates["before"] or "?")} → after {_e(dates["after"] or "?")}</p>
{summary}
<h2>Overview</h2>{_overview(tiles_df, objects_df, changed_ids) if len(tiles_df) else ""}
<h2>Changed tiles ({len(changed_ids)})</h2>
{cards or "<p class='sub'>No changed tiles.</p>"}
<h2>All tiles ({len(tiles_df)})</h2><p class="sub">Click a column header to sort.</p>
{_table(tiles_df, changed_ids) if len(tiles_df) else "<p class='sub'>No tiles.</p>"}
<h2>Run</h2>{_meta_section(meta)}
<footer>Written {when} by ChangeVG Monitor. This file is self-contained.</footer>
</main><script>{_JS}</script></body></html>
"""
    _write_atomic(path, doc)
    return path
