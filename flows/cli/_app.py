"""``changevg`` — the command line, a thin layer over the library functions.

Exit codes: 0 success, 1 a run failed (catalog, data or tiling problem), 2 bad usage or input.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from catalogs.errors import CatalogError, InputError
from flows.cli._console import configure_terminal
from flows.cli._convert import add_convert_commands
from flows.cli._gsd import add_image_gsd_arg, add_tile_gsd_args
from flows.cli._inventory import add_inventory_commands
from flows.cli._model import (
    add_model_args,
    add_train_args,
    cmd_ask,
    cmd_eval,
    cmd_predict,
    cmd_train_vgm,
    cmd_train_vlm,
)
from flows.cli._run import add_run_commands
from flows.cli._watch import add_watch_commands

log = logging.getLogger("changevg")

# no telemetry, ever: set before Prefect is imported anywhere
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def _settings(args: argparse.Namespace):
    from flows.settings import Settings

    return Settings.load(args.config)


def _add_search_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--catalog", required=True, help="STAC API URL, e.g. http://127.0.0.1:7822")
    p.add_argument("--collection", required=True, help="collection id to search")
    p.add_argument("--aoi", required=True, help="minx,miny,maxx,maxy in lon/lat, or a GeoJSON file")
    p.add_argument("--before", required=True, help="before date window START/END (ISO dates)")
    p.add_argument("--after", required=True, help="after date window START/END (ISO dates)")
    p.add_argument("--max-cloud", type=float, default=None, help="max cloud cover, percent")


def _pair_from_args(args: argparse.Namespace, settings):
    from catalogs.aoi import parse_aoi, parse_window
    from catalogs.pairing import search_pairs

    if args.max_cloud is not None and not 0 <= args.max_cloud <= 100:
        raise InputError(f"--max-cloud must be a percentage in [0, 100], got {args.max_cloud}")
    return search_pairs(
        args.catalog,
        collection=args.collection,
        aoi=parse_aoi(args.aoi, max_area_km2=settings.max_aoi_km2),
        before=parse_window(args.before, name="--before"),
        after=parse_window(args.after, name="--after"),
        max_cloud=args.max_cloud,
        options=settings.search,
    )


def cmd_synth(args: argparse.Namespace) -> int:
    from catalogs.synth import synthesize_region

    region = synthesize_region(
        args.out,
        size_km=args.size_km,
        seed=args.seed,
        split=args.split,
        dtype=args.dtype,
        misregistration_in_metadata=not args.undescribed_shift,
        nuisance=args.nuisance,
        gsd=args.gsd,
    )
    print(f"region {region.name}: {region.crs}, bbox {region.bbox_lonlat}")
    print(f"items: {region.items_path}\ncollection: {region.collection_path}")
    print(f"truth: {region.truth_path}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from catalogs.server import StacServer

    with StacServer([Path(p) for p in args.files], port=args.port) as server:
        print(server.url, flush=True)
        log.info("serving until interrupted (Ctrl-C)")
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
    return 0


def cmd_pairs(args: argparse.Namespace) -> int:
    pair = _pair_from_args(args, _settings(args))
    doc = pair.to_json()
    if args.json:
        print(json.dumps(doc, indent=2, default=str))
        return 0
    print(f"CRS {doc['crs']}")
    for side in ("before", "after"):
        part = doc[side]
        print(f"{side}: coverage {part['coverage']:.3f}")
        for item in part["items"]:
            print(f"  {item['id']}  {item['datetime']}  cloud={item['cloud_cover']}")
    for skipped in doc.get("skipped", []):
        print(f"skipped {skipped['id']}: {skipped['reason']}")
    return 0


def cmd_tile(args: argparse.Namespace) -> int:
    from catalogs.pairing import ScenePair
    from flows.settings import tile_gsd
    from tiling import build_tiles

    settings = _settings(args).with_overrides(
        tiles={"tile_size": args.tile_size, "overlap": args.overlap, "register": args.register}
    )
    tiles = tile_gsd(
        settings.tiles, args.gsd, model=args.model, allow_any_gsd=args.allow_any_gsd
    )  # a bad --gsd fails here, before the catalog is asked
    if args.pair:
        pair = ScenePair.from_json(json.loads(Path(args.pair).read_text()))
    else:
        missing = [
            f"--{n}"
            for n in ("catalog", "collection", "aoi", "before", "after")
            if getattr(args, n) is None
        ]
        if missing:
            raise InputError(f"tile needs --pair FILE or all of {', '.join(missing)}")
        pair = _pair_from_args(args, settings)
    summary = build_tiles(pair, args.out, options=tiles, name=args.name, overwrite=args.overwrite)
    _print_tiles(summary)
    return 0


def _print_tiles(summary) -> None:
    print(
        f"tile store {summary.path}: {summary.n_tiles} tiles "
        f"({summary.n_written} written now, {summary.n_already_done} already there), "
        f"{summary.n_mostly_nodata} mostly nodata"
    )
    if summary.shift_px:
        dx, dy = summary.shift_px
        print(f"residual shift after/before: dx={dx:+.2f} px, dy={dy:+.2f} px")


def cmd_dataset(args: argparse.Namespace) -> int:
    from flows.synthetic.dataset import make_dataset

    summary = make_dataset(
        args.out,
        regions=args.regions,
        seed=args.seed,
        size_km=args.size_km,
        nuisance=args.nuisance,
    )
    for split, path in summary.files.items():
        print(f"{split}: {summary.pairs[split]} pairs, {summary.records[split]} records -> {path}")
    print(f"tiles left out because a date had nodata: {summary.skipped_tiles}")
    return 0


NUISANCE = ("mild", "strong")
NUISANCE_HELP = (
    "non-change between the dates: mild (similar surveys; default) or strong (any season, sun, "
    "lean and sensor; cars, paving, earthworks, leaf-off trees)"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="changevg", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="settings TOML file (default: $CHANGEVG_CONFIG)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True)

    add_run_commands(sub)
    add_watch_commands(sub)

    p = sub.add_parser("synth", help="write a synthetic before/after region (COGs, STAC, truth)")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--size-km", type=float, default=2.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split", type=int, default=1, help="items per side per date (mosaic)")
    p.add_argument("--dtype", choices=["uint8", "uint16"], default="uint8")
    p.add_argument(
        "--undescribed-shift",
        action="store_true",
        help="leave the after scene's misregistration out of its metadata",
    )
    p.add_argument("--nuisance", choices=NUISANCE, default="mild", help=NUISANCE_HELP)
    p.add_argument(
        "--gsd",
        type=float,
        default=0.5,
        help="pixel size in metres, 0.1-10 (default 0.5); objects keep their size in metres",
    )
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("dataset", help="synthetic regions -> ChangeIMTI train/val/test set")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--regions", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size-km", type=float, default=1.5)
    p.add_argument("--nuisance", choices=NUISANCE, default="mild", help=NUISANCE_HELP)
    p.set_defaults(func=cmd_dataset)

    p = sub.add_parser("train", help="train the model")
    tsub = p.add_subparsers(dest="train_command", required=True)
    t = tsub.add_parser("vgm", help="train the vision-guided module")
    add_train_args(t)
    t.add_argument("--config-preset", default="tiny", choices=["tiny", "mit-b0", "mit-b1"])
    t.add_argument(
        "--augment",
        default="none",
        choices=["none", "real"],
        help="on-the-fly augmentation: none, or 'real' (per-date colour/sensor/JPEG draws, "
        "flips, GSD jitter, misregistration, date swaps, nuisance-only pairs); default none",
    )
    t.add_argument(
        "--change-type",
        action="store_true",
        help="also learn whether each change is new or demolished (needs change_type rasters)",
    )
    t.add_argument(
        "--dice", type=float, default=0.0, help="weight of a Dice term on changed pixels (0)"
    )
    t.add_argument(
        "--no-road-edge-relabel",
        action="store_true",
        help="do not relabel predicted building strips along predicted roads as road",
    )
    t.set_defaults(func=cmd_train_vgm)

    t = tsub.add_parser("vlm", help="instruction-tune the VLM (LoRA on --base, or from scratch)")
    add_train_args(t)
    t.add_argument("--vgm", required=True, help="trained VGM folder")
    t.add_argument("--base", help="local Qwen2.5-VL-Instruct folder: train LoRA on it")
    t.add_argument("--init", help="ChangeVG folder to continue training from (scratch recipe)")
    t.add_argument("--lora-rank", type=int, default=8)
    t.add_argument(
        "--copy-drills",
        type=float,
        default=0.0,
        help="share of pairs that also get a drill with a redrawn VGM hint (scratch recipe)",
    )
    t.add_argument(
        "--drill-counts",
        default="uniform",
        choices=["uniform", "data", "wide"],
        help="drills' counts: uniform 0..20 buildings, other pairs' hints, or uniform 0..99",
    )
    t.add_argument(
        "--drill-classes",
        nargs="+",
        default=["building", "road"],
        choices=["building", "road"],
        help="classes whose counts drills redraw; others keep the pair's own hint and answer",
    )
    t.add_argument(
        "--number-tokens",
        action="store_true",
        help="one token per number 10..99 (scratch recipe; copying a count is then one step)",
    )
    t.add_argument("--train-vgm", action="store_true", help="also update the VGM's weights")
    t.set_defaults(func=cmd_train_vlm)

    p = sub.add_parser(
        "eval",
        help="score a model on a ChangeIMTI dataset or a change-detection folder (A/ B/ label/)",
    )
    p.add_argument(
        "--data",
        required=True,
        help="ChangeIMTI JSON with labels, or a folder with A/ B/ label/ (LEVIR-CD, WHU-CD, "
        "S2Looking, LEVIR-MCI layout), e.g. ../shared/data/real/levircd_trainval",
    )
    p.add_argument("--images", help="folder the image paths are relative to")
    p.add_argument("--out", required=True, type=Path, help="metrics.json to write")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--limit", type=int, help="evaluate the first N pairs only")
    p.add_argument(
        "--predictions", type=Path, help="also write each pair's answers and truth (JSON lines)"
    )
    p.add_argument(
        "--labels",
        default="auto",
        choices=["auto", "binary", "mci"],
        help="change folders: binary (0/255, any change) or mci (0/128/255); default auto",
    )
    p.add_argument(
        "--gsd",
        help="change folders: the imagery's metres per pixel, resampled to the model's "
        "(default: fed as they are), e.g. --gsd 0.3 for WHU-CD",
    )
    p.add_argument(
        "--window",
        type=int,
        help="change folders: score each WINDOW-pixel square crop as its own tile (e.g. 128)",
    )
    p.add_argument(
        "--vgm-only",
        action="store_true",
        help="change folders: score the VGM alone (no VLM yes/no or counts; fast)",
    )
    add_model_args(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("predict", help="what changed between two images (ChangeResult)")
    p.add_argument("--before", required=True, type=Path)
    p.add_argument("--after", required=True, type=Path)
    p.add_argument("--json", action="store_true", help="print the ChangeResult as JSON")
    add_image_gsd_arg(p)
    add_model_args(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("ask", help="ask about two images; no question opens a conversation")
    p.add_argument("--before", required=True, type=Path)
    p.add_argument("--after", required=True, type=Path)
    p.add_argument("question", nargs="?", help="the question (omit for a conversation)")
    add_image_gsd_arg(p)
    add_model_args(p)
    p.set_defaults(func=cmd_ask)

    add_inventory_commands(sub)
    add_convert_commands(sub)

    p = sub.add_parser("catalog", help="catalog tools")
    csub = p.add_subparsers(dest="catalog_command", required=True)
    s = csub.add_parser("serve", help="serve STAC files as a STAC API on 127.0.0.1")
    s.add_argument("files", nargs="+", help="FeatureCollection/ndjson/item files or synth folders")
    s.add_argument("--port", type=int, default=None, help="port (default: a free one)")
    s.set_defaults(func=cmd_serve)

    p = sub.add_parser("pairs", help="search a catalog and choose the before/after scenes")
    _add_search_args(p)
    p.add_argument("--json", action="store_true", help="print the ScenePair as JSON")
    p.set_defaults(func=cmd_pairs)

    p = sub.add_parser("tile", help="build the aligned Zarr tile store for a scene pair")
    for name in ("catalog", "collection", "aoi", "before", "after"):
        p.add_argument(f"--{name}")
    p.add_argument("--max-cloud", type=float, default=None)
    p.add_argument("--pair", help="a ScenePair JSON file (from `changevg pairs --json`)")
    p.add_argument("--out", required=True, help="store path or URL, e.g. tiles.zarr")
    p.add_argument("--name", default="aoi", help="AOI name used in tile ids")
    p.add_argument("--tile-size", type=int, default=None)
    p.add_argument("--overlap", type=int, default=None)
    p.add_argument("--register", choices=["none", "measure", "correct"], default=None)
    add_tile_gsd_args(p)
    p.add_argument("--model", help="model folder whose GSD --gsd auto means (default: shipped)")
    p.add_argument(
        "--overwrite", action="store_true", help="replace a store built from other inputs"
    )
    p.set_defaults(func=cmd_tile)
    return parser


def _glue_negative_values(argv: Sequence[str]) -> list[str]:
    """Let ``--aoi -116.2,33.9,...`` through: argparse would take the value for an option."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1].startswith("--") and "=" not in out[-1] and re.match(r"^-\d", arg):
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``changevg`` console script."""
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(_glue_negative_values(argv))
    configure_terminal(args.verbose, args.command)  # quiet by default; everything with -v
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("changevg: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        code = _exit_code(exc)
        if code is None:
            raise
        prefix = "changevg: error: " if code == 2 else "changevg: "
        print(f"{prefix}{exc}", file=sys.stderr)
        return code


def _exit_code(exc: Exception) -> int | None:
    """2 for bad input, 1 for a failed run, None for a bug (let its traceback show)."""
    if isinstance(exc, InputError):
        return 2
    if "changevg.data.changeimti" in sys.modules:  # only imported by commands that read data
        from changevg.data.changeimti import DatasetError

        if isinstance(exc, DatasetError):
            return 2
    if "flows.inventory" in sys.modules:
        from flows.inventory import InventoryError

        if isinstance(exc, InventoryError):
            return 1
    if "tiling.errors" in sys.modules:  # imported by the commands that tile
        from tiling.errors import TilingError

        if isinstance(exc, TilingError):
            return 1
    if isinstance(exc, CatalogError | FileNotFoundError | PermissionError):
        return 1
    return None
