"""Evaluation metrics for ChangeVG's four tasks, as the change-captioning field reports them.

Captioning follows pycocoevalcap (the reference implementation behind RSICCformer, Chg2Cap and
the LEVIR-CC leaderboards): PTB tokenisation, BLEU-1..4, METEOR 1.5, ROUGE-L, CIDEr-D and
S*m = (BLEU-4 + METEOR + ROUGE-L + CIDEr-D) / 4, all x100 (CIDEr-D too, so a pycocoevalcap
CIDEr of 1.34 reads 134.0).  Everything except METEOR is pure Python and equals pycocoevalcap to
floating-point rounding; METEOR runs pycocoevalcap's ``meteor-1.5.jar`` and needs Java.

Without Java (or without pycocoevalcap) METEOR is ``None``, S*m is ``None`` as well — an S*m
without METEOR would not be comparable with published numbers — and a warning
``"METEOR skipped: Java not found"`` is logged (``evaluate_records`` also lists it under
``"warnings"``).  Pass ``meteor="require"`` to fail instead, ``meteor="off"`` to skip quietly.

Classification and localisation metrics are fractions in [0, 1]; counting errors (MAE, RMSE)
are in objects.  A ratio whose denominator is zero (e.g. precision when nothing was predicted
positive) is ``None`` rather than a made-up 0 or 1.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from changevg.eval._caption import (
    MeteorScorer,
    bleu,
    cider_d,
    meteor_unavailable_reason,
    rouge_l,
)
from changevg.eval._ptb import ptb_tokenize
from changevg.result import GRID_CELLS

__all__ = [
    "CAPTION_METRICS",
    "COUNT_CLASSES",
    "GRID_CELLS",
    "EvalRecord",
    "caption_scores",
    "classification_scores",
    "counting_scores",
    "evaluate_records",
    "localization_scores",
]

logger = logging.getLogger(__name__)

#: Object classes that are counted.
COUNT_CLASSES: tuple[str, ...] = ("building", "road")
#: Keys of :func:`caption_scores`, in the order papers print them.
CAPTION_METRICS: tuple[str, ...] = (
    "BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D", "S*m",
)  # fmt: skip

MeteorMode = Literal["auto", "require", "off"]


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


# --- captioning ---------------------------------------------------------------------------
def _tokenised(
    preds: Mapping[str, str], refs: Mapping[str, Sequence[str]]
) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """PTB-tokenise both sides in pycocoevalcap's order (all refs, then all predictions)."""
    if set(preds) != set(refs):
        missing = set(preds) ^ set(refs)
        raise ValueError(f"pair ids differ between predictions and references: {sorted(missing)}")
    if not preds:
        raise ValueError("caption_scores needs at least one pair")
    keys = list(preds)
    if any(len(refs[k]) == 0 for k in keys):
        raise ValueError("every pair needs at least one reference caption")
    flat = ptb_tokenize([r for k in keys for r in refs[k]])
    gts: dict[str, list[str]] = {}
    start = 0
    for k in keys:
        gts[k], start = flat[start : start + len(refs[k])], start + len(refs[k])
    hyps = ptb_tokenize([preds[k] for k in keys])
    return gts, {k: [h] for k, h in zip(keys, hyps, strict=True)}


def _meteor_scorer(mode: MeteorMode) -> tuple[MeteorScorer | None, str | None]:
    """Start METEOR per ``mode``; returns (scorer, warning)."""
    if mode == "off":
        return None, None
    reason = meteor_unavailable_reason()
    if reason is not None:
        if mode == "require":
            raise RuntimeError(reason)
        logger.warning("%s; METEOR and S*m are reported as None", reason)
        return None, reason
    return MeteorScorer(), None


def _caption_scores(
    preds: Mapping[str, str], refs: Mapping[str, Sequence[str]], meteor: MeteorScorer | None
) -> dict[str, float | None]:
    gts, res = _tokenised(preds, refs)
    b = bleu(gts, res)
    m = meteor.score(gts, res) if meteor is not None else None
    r = rouge_l(gts, res)
    c = cider_d(gts, res)
    out: dict[str, float | None] = {f"BLEU-{i + 1}": 100 * v for i, v in enumerate(b)}
    out |= {"METEOR": None if m is None else 100 * m, "ROUGE-L": 100 * r, "CIDEr-D": 100 * c}
    if m is None:
        out["S*m"] = None  # never an S*m without METEOR: it would not compare with papers
    else:
        out["S*m"] = (100 * b[3] + 100 * m + 100 * r + 100 * c) / 4
    return out


def caption_scores(
    preds: Mapping[str, str],
    refs: Mapping[str, Sequence[str]],
    *,
    meteor: MeteorMode = "auto",
) -> dict[str, float | None]:
    """Caption metrics of a corpus, equal to pycocoevalcap's (x100) to 0.01.

    CIDEr-D's document frequencies come from the references of exactly this corpus, as in
    pycocoevalcap, so scoring a subset (e.g. only changed pairs) gives the subset's score.

    Args:
        preds: Predicted caption per pair id (raw text; "" is a valid, poor prediction).
        refs: Reference captions per pair id (same ids, at least one each).
        meteor: "auto" computes METEOR when Java is available and otherwise returns
            ``None`` for METEOR and S*m with a logged warning; "require" raises
            ``RuntimeError`` instead; "off" skips METEOR silently.

    Returns:
        ``{"BLEU-1", ..., "BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D", "S*m"}`` on a 0-100 scale.
    """
    scorer, _ = _meteor_scorer(meteor)
    try:
        return _caption_scores(preds, refs, scorer)
    finally:
        if scorer is not None:
            scorer.close()


# --- other tasks ----------------------------------------------------------------------------
def classification_scores(pred: Sequence[bool], true: Sequence[bool]) -> dict[str, float | None]:
    """Accuracy, and precision / recall / F1 of the positive ("changed") class.

    Standard confusion-matrix definitions (scikit-learn's binary average), with
    F1 = 2TP / (2TP + FP + FN).  Precision is ``None`` when nothing was predicted positive,
    recall when nothing is truly positive, F1 when neither happens, and all are ``None`` for
    an empty input.
    """
    if len(pred) != len(true):
        raise ValueError(f"length mismatch: {len(pred)} predictions, {len(true)} labels")
    tp = sum(1 for p, t in zip(pred, true, strict=True) if p and t)
    fp = sum(1 for p, t in zip(pred, true, strict=True) if p and not t)
    fn = sum(1 for p, t in zip(pred, true, strict=True) if not p and t)
    tn = len(pred) - tp - fp - fn
    return {
        "accuracy": _ratio(tp + tn, len(pred)),
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
    }


def counting_scores(pred: Sequence[int], true: Sequence[int]) -> dict[str, float | None]:
    """Mean absolute error and root-mean-square error of object counts (``None`` if empty).

    MAE = mean |pred - true|, RMSE = sqrt(mean (pred - true)^2), as counting results are reported.
    """
    if len(pred) != len(true):
        raise ValueError(f"length mismatch: {len(pred)} predictions, {len(true)} labels")
    if not pred:
        return {"mae": None, "rmse": None}
    errors = [float(p) - float(t) for p, t in zip(pred, true, strict=True)]
    return {
        "mae": sum(abs(e) for e in errors) / len(errors),
        "rmse": math.sqrt(sum(e * e for e in errors) / len(errors)),
    }


def _check_cells(cells: Iterable[str]) -> frozenset[str]:
    cells = frozenset(cells)
    unknown = cells - set(GRID_CELLS)
    if unknown:
        raise ValueError(f"unknown grid cells {sorted(unknown)}; expected names in GRID_CELLS")
    return cells


def localization_scores(
    pred: Sequence[Iterable[str]], true: Sequence[Iterable[str]]
) -> dict[str, float | None]:
    """Multi-label precision / recall / F1 over the 9 grid cells, micro-averaged over pairs.

    Every (pair, cell) decision counts once: TP = |pred & true|, FP = |pred - true|,
    FN = |true - pred|, summed over pairs.  ``exact_match`` is the fraction of pairs whose
    cell set is exactly right (the only informative number when no pair changed, where
    precision / recall / F1 are ``None``).
    """
    if len(pred) != len(true):
        raise ValueError(f"length mismatch: {len(pred)} predictions, {len(true)} labels")
    tp = fp = fn = exact = 0
    for p_cells, t_cells in zip(pred, true, strict=True):
        p, t = _check_cells(p_cells), _check_cells(t_cells)
        tp, fp, fn, exact = tp + len(p & t), fp + len(p - t), fn + len(t - p), exact + (p == t)
    return {
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "exact_match": _ratio(exact, len(pred)),
    }


# --- records --------------------------------------------------------------------------------
@dataclass(frozen=True)
class EvalRecord:
    """Ground truth and model answers for one image pair.

    ``refs`` are the reference captions (a pair without any is left out of caption metrics),
    counts map each of :data:`COUNT_CLASSES` to a number of objects, cells are names from
    :data:`GRID_CELLS`.  A ``pred_*`` value is ``None`` when the model gave no parseable answer
    for that task (``pred_counts`` may also hold ``None`` for one class); such pairs are left
    out of that task's metrics and counted under ``"unparsed"``.
    """

    pair_id: str
    refs: tuple[str, ...]
    pred_caption: str | None
    true_changed: bool
    pred_changed: bool | None
    true_counts: Mapping[str, int]
    pred_counts: Mapping[str, int | None] | None
    true_cells: frozenset[str]
    pred_cells: frozenset[str] | None

    def __post_init__(self) -> None:
        object.__setattr__(self, "refs", tuple(self.refs))
        object.__setattr__(self, "true_counts", MappingProxyType(dict(self.true_counts)))
        if self.pred_counts is not None:
            object.__setattr__(self, "pred_counts", MappingProxyType(dict(self.pred_counts)))
        object.__setattr__(self, "true_cells", _check_cells(self.true_cells))
        if self.pred_cells is not None:
            object.__setattr__(self, "pred_cells", _check_cells(self.pred_cells))
        for name in COUNT_CLASSES:
            if name not in self.true_counts:
                raise ValueError(f"pair {self.pair_id!r}: true_counts lacks {name!r}")

    def pred_count(self, name: str) -> int | None:
        """Predicted count of class ``name``, or ``None`` if unparsed."""
        return None if self.pred_counts is None else self.pred_counts.get(name)


def _task_metrics(records: Sequence[EvalRecord], meteor: MeteorScorer | None) -> dict[str, Any]:
    """Metrics of one set of pairs, in the metrics.json layout (without splits)."""
    with_refs = [r for r in records if r.refs]
    captioned = [r for r in with_refs if r.pred_caption is not None]
    if captioned:
        caption = _caption_scores(
            {r.pair_id: r.pred_caption or "" for r in captioned},
            {r.pair_id: r.refs for r in captioned},
            meteor,
        )
    else:
        caption = dict.fromkeys(CAPTION_METRICS)
    classified = [r for r in records if r.pred_changed is not None]
    localized = [r for r in records if r.pred_cells is not None]
    counting: dict[str, Any] = {}
    n_counted: dict[str, int] = {}
    for name in COUNT_CLASSES:
        pairs = [(r.pred_count(name), r.true_counts[name]) for r in records]
        pairs = [(p, t) for p, t in pairs if p is not None]
        counting[name] = counting_scores([p for p, _ in pairs], [t for _, t in pairs])
        n_counted[name] = len(pairs)
    n = {
        "pairs": len(records),
        "caption": len(captioned),
        "classification": len(classified),
        "counting": n_counted,
        "localization": len(localized),
    }
    unparsed = {
        "caption": len(with_refs) - len(captioned),
        "classification": len(records) - len(classified),
        "counting": {name: len(records) - k for name, k in n_counted.items()},
        "localization": len(records) - len(localized),
    }
    return {
        "n": n,
        "unparsed": unparsed,
        "caption": caption,
        "classification": classification_scores(
            [bool(r.pred_changed) for r in classified], [r.true_changed for r in classified]
        ),
        "counting": counting,
        "localization": localization_scores(
            [r.pred_cells or frozenset() for r in localized], [r.true_cells for r in localized]
        ),
    }


def evaluate_records(
    records: Sequence[EvalRecord], *, meteor: MeteorMode = "auto"
) -> dict[str, Any]:
    """All metrics of an evaluation set, overall and split by ground-truth change.

    Layout (JSON-serialisable; undefined values are ``None``)::

        {"n": {"pairs", "caption", "classification", "counting": {"building", "road"},
               "localization"},
         "unparsed": {same keys, pairs whose prediction for that task was None},
         "caption": {"BLEU-1".."BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D", "S*m"},
         "classification": {"accuracy", "precision", "recall", "f1"},
         "counting": {"building": {"mae", "rmse"}, "road": {"mae", "rmse"}},
         "localization": {"precision", "recall", "f1", "exact_match"},
         "splits": {"change": {same layout}, "no_change": {same layout}},
         "warnings": [str, ...]}

    Splits follow the ground truth ``true_changed``, as change / no-change results on
    LEVIR-CC are reported; each split is scored as its own corpus (CIDEr-D document
    frequencies included).  METEOR runs in one Java process shared by all three corpora.

    Args:
        records: One record per image pair; pair ids must be unique.
        meteor: See :func:`caption_scores`.
    """
    ids = [r.pair_id for r in records]
    if len(set(ids)) != len(ids):
        raise ValueError("pair ids must be unique")
    scorer, warning = _meteor_scorer(meteor)
    try:
        result = _task_metrics(records, scorer)
        result["splits"] = {
            "change": _task_metrics([r for r in records if r.true_changed], scorer),
            "no_change": _task_metrics([r for r in records if not r.true_changed], scorer),
        }
    finally:
        if scorer is not None:
            scorer.close()
    result["warnings"] = [f"{warning}; METEOR and S*m not computed"] if warning else []
    return result
