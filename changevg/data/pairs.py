"""Pair-level view of a dataset: one entry per image pair with all its labels.

The VGM trains on pairs (images, mask, captions); evaluation compares the model's answers with
the labels of each pair. Both ChangeIMTI records and LEVIR-CC/MCI files become :class:`PairRecord`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from changevg.data.changeimti import DatasetError, Record
from changevg.vlm.parse import parse_answer
from changevg.vlm.prompts import classify_question

LEVIR_ROAD, LEVIR_BUILDING = 128, 255
"""LEVIR-MCI mask coding: changed road = grey 128, changed building = white 255."""


@dataclass
class PairRecord:
    """Labels of one image pair; fields are None where the dataset does not say."""

    id: str
    before: Path
    after: Path
    mask: Path | None = None
    change_type: Path | None = None
    captions: list[str] = field(default_factory=list)
    changed: bool | None = None
    counts: dict[str, int] | None = None
    cells: list[str] | None = None
    split: str | None = None


def read_mask(path: str | Path) -> np.ndarray:
    """A change mask as classes 0/1/2 (background/road/building) from a LEVIR-MCI PNG."""
    img = np.asarray(Image.open(path))
    if img.ndim == 3:
        img = img[..., 0]
    out = np.zeros(img.shape, dtype=np.uint8)
    out[img == LEVIR_ROAD] = 1
    out[img == LEVIR_BUILDING] = 2
    return out


def write_mask(mask: np.ndarray, path: str | Path) -> None:
    """Write classes 0/1/2 as a LEVIR-MCI PNG (road 128, building 255)."""
    coded = np.zeros(mask.shape, dtype=np.uint8)
    coded[mask == 1] = LEVIR_ROAD
    coded[mask == 2] = LEVIR_BUILDING
    Image.fromarray(coded).save(path)


def read_change_type(path: str | Path) -> np.ndarray:
    """A change-type raster (0 unchanged, 1 new, 2 demolished) from its PNG."""
    img = np.asarray(Image.open(path))
    if img.ndim == 3:
        img = img[..., 0]
    if img.size and img.max() > 2:
        values = sorted(int(v) for v in np.unique(img))
        raise DatasetError(f"{path}: a change-type raster holds 0/1/2, found values {values}")
    return img.astype(np.uint8)


def write_change_type(change_type: np.ndarray, path: str | Path) -> None:
    """Write a change-type raster (0/1/2) as an 8-bit PNG."""
    Image.fromarray(np.asarray(change_type, dtype=np.uint8)).save(path)


def pairs_from_records(records: Sequence[Record]) -> list[PairRecord]:
    """Group ChangeIMTI records by image pair and gather each pair's labels.

    Labels come from the generator's fields (``captions``, ``changed``, ``counts``, ``cells``)
    when present, else from the answers of recognised tasks.
    """
    pairs: dict[str, PairRecord] = {}
    for rec in records:
        pair = pairs.get(rec.pair_key)
        if pair is None:
            pair = pairs[rec.pair_key] = PairRecord(
                id=str(rec.meta.get("pair_id", rec.id)), before=rec.before, after=rec.after
            )
        pair.mask = pair.mask or rec.mask
        pair.change_type = pair.change_type or rec.change_type
        meta = rec.meta
        if meta.get("captions") and not pair.captions:
            pair.captions = list(meta["captions"])
        if "changed" in meta:
            pair.changed = bool(meta["changed"])
        if meta.get("counts") is not None:
            pair.counts = {k: int(v) for k, v in meta["counts"].items()}
        if meta.get("cells") is not None:
            pair.cells = list(meta["cells"])
        pair.split = pair.split or meta.get("split")
        for turn in rec.turns:
            task = (
                rec.task if len(rec.turns) == 1 and rec.task else classify_question(turn.question)
            )
            value = parse_answer(task, turn.answer) if task else None
            if value is None:
                continue
            if task == "caption" and not meta.get("captions") and turn.answer not in pair.captions:
                pair.captions.append(turn.answer)
            elif task == "yes_no" and pair.changed is None:
                pair.changed = value
            elif task in ("count_building", "count_road") and "counts" not in meta:
                pair.counts = {**(pair.counts or {}), task.removeprefix("count_"): value}
            elif task == "locate" and pair.cells is None:
                pair.cells = value
    return list(pairs.values())


def read_levir_cc(
    captions_json: str | Path,
    images_root: str | Path,
    *,
    split: str | None = None,
    masks: bool = False,
) -> list[PairRecord]:
    """Read LEVIR-CC (``LevirCCcaptions.json``, images in ``{split}/A`` and ``{split}/B``).

    Args:
        captions_json: The captions file.
        images_root: The ``images`` folder holding ``train``/``val``/``test``.
        split: Keep only this split.
        masks: Also expect LEVIR-MCI masks in ``{split}/label`` (road 128, building 255).
    """
    path = Path(captions_json)
    root = Path(images_root)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise DatasetError(f"{path}: expected an object with an 'images' list (LEVIR-CC format)")
    out = []
    for i, entry in enumerate(data["images"]):
        try:
            name, folder = entry["filename"], entry.get("filepath", entry["split"])
            sentences = [" ".join(s["raw"].split()) for s in entry["sentences"]]
        except (KeyError, TypeError) as exc:
            raise DatasetError(f"{path}: images[{i}]: missing field {exc}") from None
        if split and entry.get("split") != split:
            continue
        flag = entry.get("changeflag")
        out.append(
            PairRecord(
                id=Path(name).stem,
                before=root / folder / "A" / name,
                after=root / folder / "B" / name,
                mask=root / folder / "label" / name if masks else None,
                captions=sentences,
                changed=None if flag is None else bool(flag),
                split=entry.get("split"),
            )
        )
    return out
