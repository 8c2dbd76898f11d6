"""Tiling throughput and memory: ``build_tiles`` against a raw limit and the straightforward way.

Three cases on a synthetic region (``catalogs.synth``) of 2 km² and 8 km², each run in its own
subprocess (clean peak RSS), repeated and interleaved; the median wall time counts:

- ``ours``: ``tiling.build_tiles(pair, ...)`` with default options (tile 256, overlap 0,
  registration measured), the whole call timed;
- ``raw``: the limit — rasterio window reads of the same COGs (the after scene read with a plain
  window read on its own grid, no warping), one strip of tiles at a time, written as the same
  bytes with the same codec and chunking into a Zarr v3 array; no Dask, one process;
- ``straightforward``: one ``odc.stac.load`` of both dates onto the tile grid's geobox (dask chunks
  of 2048 px), then ``Dataset.to_zarr(zarr_format=3)`` with the same codec, 256 px chunks.

MB/s counts uncompressed uint8 tile bytes written, both dates: ``n_tiles * 2 * 3 * 256 * 256``.
The AOI is the largest whole-tile square inside both scenes' footprints, so every case reads
exactly the pixels the tiles need.

    .venv/bin/python bench/tiling.py [--sizes 2 8] [--repeat 3] [--out bench/results/tiling.json]
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (  # noqa: E402
    cpu_seconds,
    current_rss_mb,
    emit,
    fmt,
    format_table,
    interleaved,
    machine_info,
    median,
    run_case,
    write_json,
)

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
SEED = 7
TILE = 256
BLOCK = 8 * TILE  # dask chunk of ours (tiles_per_block * tile_size) and of the straightforward way
CASES = ("ours", "raw", "straightforward")
BASE = "ours-base"  # ours from another checkout of ``tiling`` (--base-from), for A/B comparisons
BEFORE, AFTER = "2022-01-01/2022-12-31", "2024-01-01/2024-12-31"


# --- the region ---------------------------------------------------------------------------------


def region_dir(size_km2: float) -> Path:
    return CACHE / f"region-{size_km2:g}km2-seed{SEED}"


def ensure_region(size_km2: float) -> Path:
    """Generate the synthetic region once (not timed); a marker file says it is complete."""
    root = region_dir(size_km2)
    marker = root / "bench-ok.json"
    if marker.exists():
        return root
    from catalogs.synth import synthesize_region

    print(f"generating {size_km2:g} km² region into {root} ...", file=sys.stderr, flush=True)
    if root.exists():
        shutil.rmtree(root)
    synthesize_region(root, size_km=math.sqrt(size_km2), seed=SEED)
    marker.write_text(json.dumps({"size_km2": size_km2, "seed": SEED}))
    return root


def _items(root: Path):
    import pystac

    lines = (root / "items.ndjson").read_text().splitlines()
    return [pystac.Item.from_dict(json.loads(ln)) for ln in lines if ln.strip()]


def _grid_of(item) -> tuple[list[float], tuple[int, int]]:
    props = item.properties
    return props["proj:transform"], tuple(props["proj:shape"])


def _aoi(items) -> tuple[object, str]:
    """Largest whole-tile square on the before pixel grid inside both scenes (lon/lat polygon)."""
    from odc.geo.geom import Geometry
    from shapely.geometry import box

    crs = items[0].properties["proj:code"]
    boxes = []
    for item in items:
        (a, _, c, _, e, f), (h, w) = _grid_of(item)[0][:6], _grid_of(item)[1]
        boxes.append((c, f + e * h, c + a * w, f))
    minx, miny = max(b[0] for b in boxes), max(b[1] for b in boxes)
    maxx, maxy = min(b[2] for b in boxes), min(b[3] for b in boxes)
    before = next(i for i in items if i.properties.get("changevg:role") == "before")
    (res, _, bx, _, _, by), _ = _grid_of(before)
    # snap inwards to the before pixel grid
    x0 = bx + math.ceil((minx - bx) / res) * res
    y0 = by - math.ceil((by - maxy) / res) * res
    n = int(min((maxx - x0) // (res * TILE), (y0 - miny) // (res * TILE)))
    side = n * TILE * res
    x1, y1 = x0 + side, y0 - side
    # 1 m inside the tile edges, so the round trip through lon/lat cannot add a tile
    square = box(x0 + 1.0, y1 + 1.0, x1 - 1.0, y0 - 1.0)
    return Geometry(square, crs).to_crs("EPSG:4326").geom, crs


def make_pair(root: Path):
    from catalogs.pairing import pair_scenes

    items = _items(root)
    aoi, _ = _aoi(items)
    return pair_scenes(items, aoi=aoi, before=BEFORE, after=AFTER, catalog_is_local=True)


def _codec():
    from zarr.codecs import BloscCodec

    return BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle")


# --- the cases (each runs in a child process) -----------------------------------------------------


def case_ours(pair, out: Path) -> int:
    from tiling import TileOptions, build_tiles

    summary = build_tiles(pair, out, options=TileOptions(), name="bench", progress=False)
    return summary.n_tiles


def case_raw(pair, out: Path) -> int:
    import numpy as np
    import rasterio
    import zarr
    from rasterio.windows import Window

    from tiling.build import plan_grid

    grid = plan_grid(pair, tile_size=TILE, prefix="bench")
    g = grid.transform
    n_rows, n_cols = grid.n_rows, grid.n_cols
    image = zarr.create_array(
        str(out),
        shape=(grid.n_tiles, 2, 3, TILE, TILE),
        chunks=(1, 2, 3, TILE, TILE),
        dtype="uint8",
        compressors=(_codec(),),
        fill_value=0,
        zarr_format=3,
        config={"write_empty_chunks": True},  # as ours: no all-fill-value scan per chunk
    )
    sources = []
    for side in (pair.before, pair.after):
        (item,) = side.items
        src = rasterio.open(next(iter(item.assets.values())).href)
        t = src.transform
        # the tile grid's origin in this scene's pixels, rounded: a plain window read, no warp
        col, row = round((g.c - t.c) / t.a), round((g.f - t.f) / t.e)
        sources.append((src, col, row))
    strip = np.empty((n_cols, 2, 3, TILE, TILE), dtype="uint8")
    for r in range(n_rows):
        for d, (src, col, row) in enumerate(sources):
            data = src.read(window=Window(col, row + r * TILE, n_cols * TILE, TILE))
            strip[:, d] = data.reshape(3, TILE, n_cols, TILE).transpose(2, 0, 1, 3)
        image[r * n_cols : (r + 1) * n_cols] = strip
    for src, _, _ in sources:
        src.close()
    return grid.n_tiles


def case_straightforward(pair, out: Path) -> int:
    import odc.stac
    import xarray  # noqa: F401

    from tiling.build import plan_grid
    from tiling.load import band_names

    grid = plan_grid(pair, tile_size=TILE, prefix="bench")
    names = band_names(pair.before.items)
    ds = odc.stac.load(
        [*pair.before.items, *pair.after.items],
        bands=names,
        geobox=grid.geobox,
        chunks={"x": BLOCK, "y": BLOCK},
        resampling="bilinear",
    )
    encoding = {n: {"compressors": (_codec(),), "chunks": (1, TILE, TILE)} for n in names}
    ds.to_zarr(str(out), mode="w", zarr_format=3, consolidated=False, encoding=encoding)
    return grid.n_tiles


def _setup() -> None:
    """Import everything any case uses before the clock starts (the same for every case)."""
    import numpy  # noqa: F401
    import odc.stac  # noqa: F401
    import rasterio  # noqa: F401
    import xarray  # noqa: F401
    import zarr  # noqa: F401

    import tiling  # noqa: F401
    import tiling.build  # noqa: F401


def run_child(case: str, size_km2: float) -> None:
    _setup()
    root = region_dir(size_km2)
    pair = make_pair(root)
    out = CACHE / "runs" / f"{case}-{size_km2:g}.zarr"
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rss_before = current_rss_mb()
    cpu = cpu_seconds()
    started = time.perf_counter()
    run = {"ours": case_ours, BASE: case_ours, "raw": case_raw}.get(case, case_straightforward)
    n_tiles = run(pair, out)
    seconds = time.perf_counter() - started
    cpu = cpu_seconds() - cpu
    stored = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    shutil.rmtree(out)
    emit(
        {
            "case": case,
            "size_km2": size_km2,
            "seconds": round(seconds, 4),
            "cpu_seconds": round(cpu, 3),
            "n_tiles": n_tiles,
            "area_km2": round(n_tiles * (TILE * 0.5 / 1000) ** 2, 3),
            "mb": n_tiles * 2 * 3 * TILE * TILE / 1e6,
            "stored_mb": round(stored / 1e6, 2),
            "rss_before_mb": round(rss_before, 1),
        }
    )


# --- the driver --------------------------------------------------------------------------------


def summarise(runs: list[dict]) -> list[dict]:
    rows = []
    for size in sorted({r["size_km2"] for r in runs}):
        by_case = {}
        for case in (*CASES, BASE):
            mine = [r for r in runs if r["size_km2"] == size and r["case"] == case]
            if not mine:
                continue
            secs = median([r["seconds"] for r in mine])
            n, mb = mine[0]["n_tiles"], mine[0]["mb"]
            by_case[case] = {
                "case": case,
                "size_km2": size,
                "area_km2": mine[0]["area_km2"],
                "n_tiles": n,
                "seconds": secs,
                "seconds_all": [r["seconds"] for r in mine],
                "cpu_seconds": median([r["cpu_seconds"] for r in mine]),
                "tile_pairs_per_s": n / secs,
                "mb_per_s": mb / secs,
                "stored_mb": mine[0]["stored_mb"],
                "peak_rss_mb": max(r["peak_rss_mb"] for r in mine),
                "rss_before_mb": median([r["rss_before_mb"] for r in mine]),
            }
        for row in by_case.values():
            for ref, key in (("raw", "vs_raw"), ("straightforward", "vs_straightforward")):
                if ref in by_case:
                    row[key] = row["tile_pairs_per_s"] / by_case[ref]["tile_pairs_per_s"]
            rows.append(row)
    return rows


def targets(rows: list[dict]) -> dict:
    ours = {r["size_km2"]: r for r in rows if r["case"] == "ours"}
    out = {}
    for size, r in ours.items():
        if "vs_raw" in r:
            out[f"ours_vs_raw_{size:g}km2>=0.6"] = r["vs_raw"] >= 0.6
        if "vs_straightforward" in r:
            out[f"ours_vs_straightforward_{size:g}km2>=1.0"] = r["vs_straightforward"] >= 1.0
    if len(ours) >= 2:
        small, big = ours[min(ours)], ours[max(ours)]
        growth = big["peak_rss_mb"] / small["peak_rss_mb"]
        extra = (big["peak_rss_mb"] - big["rss_before_mb"]) / max(
            small["peak_rss_mb"] - small["rss_before_mb"], 1e-9
        )
        out["ours_peak_rss_growth"] = round(growth, 3)
        out["ours_peak_rss_growth_above_setup"] = round(extra, 3)
        out["ours_area_ratio"] = round(big["area_km2"] / small["area_km2"], 3)
        out["ours_peak_rss_growth<1.5"] = growth < 1.5
    return out


COLUMNS = [
    ("case", "case", fmt("")),
    ("size", "size_km2", fmt("g")),
    ("km²", "area_km2", fmt(".2f")),
    ("tiles", "n_tiles", fmt("d")),
    ("seconds", "seconds", fmt(".2f")),
    ("CPU s", "cpu_seconds", fmt(".2f")),
    ("tile-pairs/s", "tile_pairs_per_s", fmt(".1f")),
    ("MB/s", "mb_per_s", fmt(".1f")),
    ("vs raw", "vs_raw", fmt(".2f")),
    ("vs straightfwd", "vs_straightforward", fmt(".2f")),
    ("peak RSS MB", "peak_rss_mb", fmt(".0f")),
    ("RSS at start MB", "rss_before_mb", fmt(".0f")),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[2.0, 8.0], help="km²")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    parser.add_argument("--out", default=str(HERE / "results" / "tiling.json"))
    parser.add_argument(
        "--base-from",
        metavar="DIR",
        help="also run 'ours-base': build_tiles from the tiling package found in DIR "
        "(e.g. a `git worktree` of an older commit), to measure a change in the same run",
    )
    parser.add_argument("--case", help=argparse.SUPPRESS)  # child mode
    parser.add_argument("--size", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.case:
        if args.base_from:
            sys.path.insert(0, str(Path(args.base_from).resolve()))
        run_child(args.case, args.size)
        return 0

    for size in args.sizes:
        ensure_region(size)
    runs = []
    cases = [*args.cases, BASE] if args.base_from else args.cases
    plan = [(c, s) for s in args.sizes for c in cases]
    for rep, (case, size) in interleaved(plan, args.repeat):
        argv = [str(Path(__file__).resolve()), "--case", case, "--size", str(size)]
        if case == BASE:
            argv += ["--base-from", args.base_from]
        result = run_case(argv)
        result["repeat"] = rep
        runs.append(result)
        print(
            f"  [{rep + 1}/{args.repeat}] {case:>15} {size:g} km²: {result['seconds']:.2f} s, "
            f"peak {result['peak_rss_mb']:.0f} MB",
            file=sys.stderr,
            flush=True,
        )
    rows = summarise(runs)
    checks = targets(rows)
    print(format_table(rows, COLUMNS))
    print(json.dumps(checks))
    path = write_json(
        args.out,
        {
            "benchmark": "tiling",
            "seed": SEED,
            "tile_size": TILE,
            "repeat": args.repeat,
            "machine": machine_info(),
            "rows": rows,
            "targets": checks,
            "runs": runs,
        },
    )
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
