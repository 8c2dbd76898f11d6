"""Scoring on a change-detection folder: the layout real benchmarks are distributed in.

LEVIR-CD, LEVIR-CD+, WHU-CD and S2Looking ship ``A/`` (before), ``B/`` (after) and ``label/``
(change mask) with the same file names; LEVIR-MCI's labels have three values (0 none, 128 road,
255 building). Binary labels (0/255 or 0/1) mark *any* change; the building datasets label
building change only, so for them every predicted class counts as change and every labelled
region as a building.

Reported (``metrics.json`` conventions: nested dicts, ``None`` where undefined):

- ``pixel``: changed-pixel precision / recall / F1 / IoU of the VGM's mask (per class too for
  3-class labels);
- ``tile``: tile-level change precision / recall / F1 of the VLM's yes/no and of the VGM's
  score, with ``unchanged_called_unchanged`` (the share of unchanged tiles called unchanged)
  and ``changed_found`` (recall); a tile is changed when its label has at least
  ``min_changed_px`` changed pixels;
- ``count``: MAE of building (and, with 3-class labels, road) counts against the label's
  8-connected regions of at least ``min_object_px`` pixels, for the VLM's answer and the VGM's
  mask.

``window=`` scores each ``window × window`` crop as its own tile: the development set has one
unchanged 256² tile, but its changed tiles hold many unchanged 128² windows with real
illumination, season and parallax differences.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image
from scipy import ndimage
from tqdm.auto import tqdm

from changevg.data import DatasetError
from changevg.eval.scores import classification_scores, counting_scores
from changevg.gsd import check_gsd, resample_mask
from changevg.model import ChangeVG
from changevg.train._data import load_image

__all__ = ["ChangeFolderPair", "LabelKind", "evaluate_change_folder", "read_change_folder"]

log = logging.getLogger(__name__)

LabelKind = Literal["auto", "binary", "mci"]
_IMAGE_EXT = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}
_BINARY = ({0, 255}, {0, 1})
_MCI = {0, 128, 255}


@dataclass(frozen=True)
class ChangeFolderPair:
    """One before/after/label triple of a change-detection folder."""

    name: str
    before: Path
    after: Path
    label: Path


def _images(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in _IMAGE_EXT}


def read_change_folder(root: str | Path) -> list[ChangeFolderPair]:
    """The pairs of a folder with ``A/``, ``B/`` and ``label/`` holding the same file names.

    Raises:
        DatasetError: A sub-folder is missing or empty, or the three do not hold the same names
            (the names missing from each are listed).
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"change folder {root} does not exist")
    found: dict[str, dict[str, Path]] = {}
    for sub in ("A", "B", "label"):
        if not (root / sub).is_dir():
            raise DatasetError(
                f"{root} has no {sub}/ folder: a change-detection folder holds A/ (before), "
                "B/ (after) and label/ (change mask) with the same file names"
            )
        found[sub] = _images(root / sub)
    names = set().union(*found.values())
    missing = {sub: sorted(names - set(files)) for sub, files in found.items()}
    if any(missing.values()):
        parts = [f"{sub}/ lacks {', '.join(m[:10])}" for sub, m in missing.items() if m]
        raise DatasetError(
            f"{root}: A/, B/ and label/ do not hold the same names: {'; '.join(parts)}"
        )
    if not names:
        raise DatasetError(f"{root}: A/, B/ and label/ hold no images")
    return [
        ChangeFolderPair(n, found["A"][n], found["B"][n], found["label"][n]) for n in sorted(names)
    ]


def read_label(path: Path, kind: LabelKind = "auto") -> tuple[np.ndarray, Literal["binary", "mci"]]:
    """A label image as a class mask (0 none, 1 building/any change, 2 road) and its kind.

    Raises:
        DatasetError: The values fit neither a binary (0/255 or 0/1) nor a 3-class
            (0/128/255) label; the message holds the value histogram.
    """
    with Image.open(path) as img:
        arr = np.asarray(img.convert("L") if img.mode not in ("L", "P", "1") else img)
    arr = arr.astype(np.uint8)
    values = set(np.unique(arr).tolist())
    is_binary = any(values <= b for b in _BINARY)
    is_mci = values <= _MCI
    if kind == "auto":
        kind = "binary" if is_binary else "mci" if is_mci else kind
    if (kind == "binary" and not is_binary) or (kind == "mci" and not is_mci) or kind == "auto":
        hist = dict(zip(*np.unique(arr, return_counts=True), strict=True))
        shown = ", ".join(f"{v}: {c}" for v, c in list(hist.items())[:12])
        want = {"binary": "0/255 or 0/1", "mci": "0/128/255", "auto": "0/255, 0/1 or 0/128/255"}
        raise DatasetError(
            f"label {path} has values {{{shown}}} (value: pixels); a {kind} label has "
            f"{want[kind]} only"
        )
    out = np.zeros(arr.shape, np.uint8)
    if kind == "mci":
        out[arr == 255] = 1
        out[arr == 128] = 2
    else:
        out[arr > 0] = 1
    return out, kind


def _regions(mask: np.ndarray, min_px: int) -> int:
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if n == 0:
        return 0
    sizes = np.bincount(labels.ravel())[1:]
    return int((sizes >= min_px).sum())


def _crops(arr: np.ndarray, window: int | None) -> list[tuple[str, np.ndarray]]:
    """``(suffix, crop)`` for each window (the whole array when ``window`` is None)."""
    if window is None:
        return [("", arr)]
    h, w = arr.shape[-2:]
    return [
        (f"@{r}_{c}", arr[..., r : r + window, c : c + window])
        for r in range(0, h - window + 1, window)
        for c in range(0, w - window + 1, window)
    ]


def _pixel_scores(tp: int, fp: int, fn: int) -> dict[str, float | None]:
    def ratio(a: int, b: int) -> float | None:
        return a / b if b else None

    return {
        "precision": ratio(tp, tp + fp),
        "recall": ratio(tp, tp + fn),
        "f1": ratio(2 * tp, 2 * tp + fp + fn),
        "iou": ratio(tp, tp + fp + fn),
    }


def _tile_scores(pred: Sequence[bool], true: Sequence[bool]) -> dict[str, float | int | None]:
    scores: dict[str, float | int | None] = dict(classification_scores(pred, true))
    unchanged = [p for p, t in zip(pred, true, strict=True) if not t]
    changed = [p for p, t in zip(pred, true, strict=True) if t]
    scores["unchanged_called_unchanged"] = (
        sum(not p for p in unchanged) / len(unchanged) if unchanged else None
    )
    scores["changed_found"] = sum(changed) / len(changed) if changed else None
    scores["n_unchanged"] = len(unchanged)
    scores["n_changed"] = len(changed)
    return scores


def evaluate_change_folder(
    model: ChangeVG,
    root: str | Path,
    *,
    labels: LabelKind = "auto",
    gsd: float | None = None,
    window: int | None = None,
    min_changed_px: int = 64,
    min_object_px: int = 20,
    vlm: bool = True,
    batch_size: int = 8,
    progress: bool | None = None,
    predictions: str | Path | None = None,
) -> dict[str, object]:
    """The field's change-detection metrics of ``model`` on a ``A/ B/ label/`` folder.

    Args:
        model: The model to score.
        root: The folder (see :func:`read_change_folder`).
        labels: ``binary`` (any change; building datasets), ``mci`` (0/128/255) or ``auto``.
        gsd: The imagery's GSD in metres; images are resampled to the model's GSD and masks
            back onto the label grid. ``None``: fed as they are.
        window: Score each ``window``-pixel square crop as its own tile.
        min_changed_px: Labelled changed pixels that make a tile "changed".
        min_object_px: Smallest labelled region counted as an object.
        vlm: Also ask the VLM (yes/no, counts); ``False`` scores the VGM alone (fast).
        batch_size: Pairs per model call.
        progress: Show a progress bar (default: on a terminal).
        predictions: A ``.jsonl`` file for each tile's truth and predictions.
    """
    pairs = read_change_folder(root)
    if gsd is not None:
        gsd = check_gsd(gsd, name="--gsd")
    model_gsd = model.gsd
    # images at the model's GSD when none is given: fed at their own size (a 128-pixel window
    # stays 128 pixels), never stretched to the processor's 256
    fed_gsd = model_gsd if gsd is None else gsd
    if window is not None and window < 16:
        raise DatasetError(f"window must be at least 16 pixels, not {window}")
    tiles: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]] = []
    kinds: set[str] = set()
    for p in pairs:
        label, kind = read_label(p.label, labels)
        kinds.add(kind)
        before, after = load_image(p.before), load_image(p.after)
        if before.shape != after.shape or before.shape[-2:] != label.shape:
            raise DatasetError(
                f"{p.name}: A {before.shape[-2:]}, B {after.shape[-2:]} and label "
                f"{label.shape} differ in size"
            )
        for (suffix, b), (_, a), (_, lab) in zip(
            _crops(before, window), _crops(after, window), _crops(label, window), strict=True
        ):
            tiles.append((p.name + suffix, b, a, lab))
    tiles.sort(key=lambda t: t[1].shape)  # a batch holds one image size
    if len(kinds) > 1:
        raise DatasetError(f"{root}: labels mix binary and 3-class masks; pass labels=")
    kind = kinds.pop()
    classes = {"building": 1, "road": 2} if kind == "mci" else {"building": 1}

    conf = {c: [0, 0, 0] for c in ("any", *classes)}  # tp, fp, fn
    truth_changed: list[bool] = []
    vgm_changed: list[bool] = []
    vlm_changed: list[bool] = []
    true_counts: dict[str, list[int]] = {c: [] for c in classes}
    vgm_counts: dict[str, list[int]] = {c: [] for c in classes}
    vlm_counts: dict[str, list[int]] = {c: [] for c in classes}
    rows: list[dict[str, object]] = []
    bar = tqdm(
        total=len(tiles),
        desc="eval",
        unit="tile",
        disable=None if progress is None else not progress,
    )
    for i in range(0, len(tiles), batch_size):
        chunk = tiles[i : i + batch_size]
        images = [(b, a) for _, b, a, _ in chunk]
        descs = model.screen(images, batch_size=batch_size, gsd=fed_gsd)  # masks on label grid
        results = (
            model.predict_batch(images, descriptions=descs, batch_size=batch_size, gsd=fed_gsd)
            if vlm
            else None
        )
        for j, ((name, _, _, lab), desc) in enumerate(zip(chunk, descs, strict=True)):
            pred = resample_mask(np.asarray(desc.mask, np.uint8), lab.shape)
            for c, value in (("any", None), *classes.items()):
                # binary labels: any predicted class is change (building datasets label no roads)
                p_m = pred > 0 if value is None or kind == "binary" else pred == value
                t_m = lab > 0 if value is None else lab == value
                conf[c][0] += int((p_m & t_m).sum())
                conf[c][1] += int((p_m & ~t_m).sum())
                conf[c][2] += int((~p_m & t_m).sum())
            truth_changed.append(int((lab > 0).sum()) >= min_changed_px)
            vgm_changed.append(bool(desc.changed))
            truth_n = {c: _regions(lab == v, min_object_px) for c, v in classes.items()}
            vgm_n = dict(desc.counts)
            if kind == "binary":  # every predicted object is a (building) change
                vgm_n = {"building": sum(vgm_n.values())}
            for c in classes:
                true_counts[c].append(truth_n[c])
                vgm_counts[c].append(int(vgm_n.get(c, 0)))
            row: dict[str, object] = {
                "tile": name,
                "true": {"changed": truth_changed[-1], "counts": truth_n},
                "vgm": {"changed": vgm_changed[-1], "score": desc.change_score, "counts": vgm_n},
            }
            if results is not None:
                res = results[j]
                vlm_changed.append(bool(res.changed))
                answered = {c: int(res.counts.get(c, 0)) for c in classes}
                for c in classes:
                    vlm_counts[c].append(answered[c])
                row["vlm"] = {"changed": res.changed, "counts": answered, "caption": res.caption}
            rows.append(row)
        bar.update(len(chunk))
    bar.close()
    if predictions is not None:
        path = Path(predictions)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))

    metrics: dict[str, object] = {
        "n": {"pairs": len(pairs), "tiles": len(tiles), "changed_tiles": sum(truth_changed)},
        "pixel": _pixel_scores(*conf["any"]),
        "tile": {"vgm": _tile_scores(vgm_changed, truth_changed)},
        "count": {c: {"vgm": counting_scores(vgm_counts[c], true_counts[c])} for c in classes},
        "labels": kind,
        "window": window,
        "gsd": gsd,
        "model_gsd": model_gsd,
        "min_changed_px": min_changed_px,
        "min_object_px": min_object_px,
        "model": model.name,
        "data": str(root),
    }
    if kind == "mci":
        metrics["pixel_by_class"] = {c: _pixel_scores(*conf[c]) for c in classes}
    if vlm:
        metrics["tile"]["vlm"] = _tile_scores(vlm_changed, truth_changed)  # type: ignore[index]
        for c in classes:
            metrics["count"][c]["vlm"] = counting_scores(vlm_counts[c], true_counts[c])  # type: ignore[index]
    return metrics
