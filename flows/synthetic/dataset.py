"""``changevg dataset``: synthetic regions → a ChangeIMTI-format training/evaluation set.

Composes the three packages: ``catalogs.synth`` makes regions with exact truth, ``tiling`` cuts
them into aligned tile pairs, ``changevg.data`` labels each pair from its truth mask. Splits are
by region, so the test split holds regions never seen in training.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pystac
from PIL import Image

from catalogs.errors import InputError
from catalogs.pairing import pair_scenes
from catalogs.synth import load_truth, rasterize_truth, synthesize_region
from changevg.data import (
    annotate_mask,
    record_to_json,
    write_change_type,
    write_changeimti,
    write_mask,
)
from changevg.data.annotate import CHANGE_DEMOLISHED, CHANGE_NEW
from changevg.vlm.prompts import QUESTIONS, format_answer
from tiling import TileOptions, build_tiles, open_tiles

log = logging.getLogger(__name__)

BEFORE, AFTER = "2022-01-01/2022-12-31", "2024-01-01/2024-12-31"
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class DatasetSummary:
    """What :func:`make_dataset` wrote."""

    root: Path
    files: dict[str, Path]
    pairs: dict[str, int]
    records: dict[str, int]
    skipped_tiles: int


def split_of(region: int, n_regions: int) -> str:
    """Region → split: the last eighth of the regions (at least one) is test, as many before
    them val, the rest train — so test regions are never seen in training."""
    if n_regions < 3:
        raise ValueError(f"need at least 3 regions for train/val/test, got {n_regions}")
    held = max(1, n_regions // 8)
    if region >= n_regions - held:
        return "test"
    return "val" if region >= n_regions - 2 * held else "train"


def _region_items(region) -> list[pystac.Item]:
    lines = region.items_path.read_text().splitlines()
    return [pystac.Item.from_dict(json.loads(line)) for line in lines if line.strip()]


def _records_for(pid: str, images: list[str], mask: str, ann, split: str, multi_turn: bool):
    extra = {
        "pair_id": pid,
        "mask": mask,
        "change_type": mask.removesuffix(".png") + "_type.png",
        "captions": ann.captions,
        "changed": ann.changed,
        "counts": ann.counts,
        "cells": ann.cells,
        "split": split,
    }
    answers = {
        "caption": format_answer("caption", ann.captions[0]),
        "yes_no": format_answer("yes_no", ann.changed),
        "count_building": format_answer("count_building", ann.counts["building"]),
        "count_road": format_answer("count_road", ann.counts["road"]),
        "locate": format_answer("locate", ann.cells),
    }
    out = [
        record_to_json(f"{pid}-{task}", images, [(QUESTIONS[task], answer)], task=task, **extra)
        for task, answer in answers.items()
    ]
    if multi_turn:
        tasks = ("yes_no", "count_building", "count_road", "locate")
        turns = [(QUESTIONS[t], answers[t]) for t in tasks]
        out.append(record_to_json(f"{pid}-dialogue", images, turns, task="dialogue", **extra))
    return out


def make_dataset(
    out: str | Path,
    *,
    regions: int = 6,
    seed: int = 0,
    size_km: float = 1.0,
    tile_size: int = 256,
    nuisance: Literal["mild", "strong"] = "mild",
) -> DatasetSummary:
    """Write ``train.json``, ``val.json``, ``test.json`` (ChangeIMTI) with images and masks.

    Args:
        out: Output folder (``images/``, ``masks/``, ``regions/``, the JSON files).
        regions: Number of synthetic regions (seeds ``seed*1000 + i``), at least 3.
        seed: Dataset seed; the same seed writes the same dataset.
        size_km: Edge of each region in km.
        tile_size: Tile edge in pixels (LEVIR-CC uses 256).
        nuisance: Non-change between the dates of each region (see ``synthesize_region``):
            "mild" (similar surveys) or "strong" (another season, sun, lean and sensor, cars,
            paving, earthworks, leaf-off trees). Labels are the building/road change either way.
    """
    if nuisance not in ("mild", "strong"):
        raise InputError(f"nuisance={nuisance!r}: use 'mild' or 'strong'")
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(exist_ok=True)
    records: dict[str, list[dict]] = {s: [] for s in SPLITS}
    pairs: Counter[str] = Counter()
    skipped = 0
    for r in range(regions):
        split = split_of(r, regions)
        name = f"r{seed}x{r}"
        region = synthesize_region(
            out / "regions" / name,
            size_km=size_km,
            seed=seed * 1000 + r,
            region_name=name,
            nuisance=nuisance,
        )
        items = _region_items(region)
        pair = pair_scenes(
            items,
            aoi=_common_footprint(items),
            before=BEFORE,
            after=AFTER,
            catalog_is_local=True,
        )
        store = out / "regions" / name / "tiles.zarr"
        build_tiles(
            pair, store, options=TileOptions(tile_size=tile_size), name=name, progress=False
        )
        ds = open_tiles(str(store))
        truth = load_truth(region.truth_path)
        new = truth[truth["change"] == "new"]
        gone = truth[truth["change"] == "demolished"]
        rng = np.random.default_rng(seed * 1000 + r)
        complete = (ds["nodata_fraction"].values == 0).all(axis=1)
        for i, tile_id in enumerate(ds["tile_id"].values):
            if not complete[i]:
                skipped += 1
                continue
            transform = ds.tiles.transform(i)
            shape = (tile_size, tile_size)
            mask = rasterize_truth(truth, transform=transform, shape=shape)
            change_type = np.zeros(shape, np.uint8)
            change_type[rasterize_truth(new, transform=transform, shape=shape) > 0] = CHANGE_NEW
            gone_mask = rasterize_truth(gone, transform=transform, shape=shape) > 0
            change_type[gone_mask] = CHANGE_DEMOLISHED
            ann = annotate_mask(mask, change_type=change_type, rng=rng)
            pid = str(tile_id)
            pair_images = ds["image"].isel(tile=i).values
            images = [f"images/{pid}_A.png", f"images/{pid}_B.png"]
            for path, img in zip(images, pair_images, strict=True):
                Image.fromarray(np.moveaxis(img, 0, -1)).save(out / path)
            write_mask(mask, out / "masks" / f"{pid}.png")
            write_change_type(change_type, out / "masks" / f"{pid}_type.png")
            multi_turn = int(rng.integers(3)) == 0
            records[split] += _records_for(pid, images, f"masks/{pid}.png", ann, split, multi_turn)
            pairs[split] += 1
        log.info("region %s (%s): %d pairs so far", name, split, sum(pairs.values()))
    files = {s: write_changeimti(records[s], out / f"{s}.json") for s in SPLITS}
    summary = DatasetSummary(
        root=out,
        files=files,
        pairs={s: pairs[s] for s in SPLITS},
        records={s: len(records[s]) for s in SPLITS},
        skipped_tiles=skipped,
    )
    recipe = {
        "command": f"changevg dataset --out {out} --regions {regions} --seed {seed} "
        f"--size-km {size_km} --nuisance {nuisance}",
        "regions": regions,
        "seed": seed,
        "size_km": size_km,
        "tile_size": tile_size,
        "nuisance": nuisance,
        "pairs": summary.pairs,
        "records": summary.records,
        "skipped_tiles_with_nodata": skipped,
    }
    (out / "dataset.json").write_text(json.dumps(recipe, indent=2))
    return summary


def _common_footprint(items: list[pystac.Item]):
    """Where both dates have data: training pairs need both images complete."""
    from shapely.geometry import shape
    from shapely.ops import unary_union

    sides = {}
    for item in items:
        sides.setdefault(item.datetime.year, []).append(shape(item.geometry))
    common = None
    for geoms in sides.values():
        union = unary_union(geoms)
        common = union if common is None else common.intersection(union)
    minx, miny, maxx, maxy = common.bounds
    dx, dy = (maxx - minx) * 0.01, (maxy - miny) * 0.01
    return (minx + dx, miny + dy, maxx - dx, maxy - dy)
