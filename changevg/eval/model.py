"""Running a model over a labelled dataset and scoring it (metrics: :mod:`changevg.eval.scores`).

Each image pair is asked every task once; a reply that does not parse counts as unparsed for
that task (never replaced by a guess), so the metrics measure the VLM's answers.  With
``predictions=`` every pair's answers are also written as JSON lines beside the truth and the
VGM's own counts (from its change objects), for error analysis.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from changevg.data import DatasetError, pairs_from_records, read_changeimti
from changevg.eval.scores import EvalRecord, evaluate_records
from changevg.model import ChangeVG
from changevg.train._data import load_image

log = logging.getLogger(__name__)


def evaluate_model(
    model: ChangeVG,
    data: str | Path,
    *,
    images_root: str | Path | None = None,
    batch_size: int = 16,
    limit: int | None = None,
    progress: bool | None = None,
    predictions: str | Path | None = None,
) -> dict[str, Any]:
    """Metrics of ``model`` on a ChangeIMTI file (nested as in ``metrics.json``).

    Args:
        model: The model to score.
        data: ChangeIMTI JSON with labels (``changed``, ``counts``, ``cells``, ``captions``).
        images_root: Folder the image paths are relative to (default: the JSON's folder).
        batch_size: Pairs per ``predict_batch`` call.
        limit: Score the first ``limit`` labelled pairs only.
        progress: Show a progress bar (default: when on a terminal).
        predictions: A ``.jsonl`` file to write each pair's answers and truth to.
    """
    pairs = pairs_from_records(read_changeimti(data, images_root=images_root))
    pairs = [p for p in pairs if p.changed is not None][: limit or None]
    if not pairs:
        raise DatasetError(f"{data}: no pair has a change label to evaluate against")
    records: list[EvalRecord] = []
    rows: list[dict[str, Any]] = []
    bar = tqdm(
        total=len(pairs),
        desc="eval",
        unit="pair",
        disable=None if progress is None else not progress,
    )
    for i in range(0, len(pairs), batch_size):
        chunk = pairs[i : i + batch_size]
        images = [(load_image(p.before), load_image(p.after)) for p in chunk]
        for pair, result in zip(
            chunk, model.predict_batch(images, batch_size=batch_size), strict=True
        ):
            unparsed = set(result.unparsed)
            counts = pair.counts or {"building": 0, "road": 0}
            records.append(
                EvalRecord(
                    pair_id=pair.id,
                    refs=tuple(pair.captions),
                    pred_caption=None if "caption" in unparsed else result.caption,
                    true_changed=bool(pair.changed),
                    pred_changed=None if "yes_no" in unparsed else result.changed,
                    true_counts={
                        "building": counts.get("building", 0),
                        "road": counts.get("road", 0),
                    },
                    pred_counts={
                        "building": None
                        if "count_building" in unparsed
                        else result.counts["building"],
                        "road": None if "count_road" in unparsed else result.counts["road"],
                    },
                    true_cells=frozenset(pair.cells or []),
                    pred_cells=None if "locate" in unparsed else frozenset(result.locations),
                )
            )
            if predictions is not None:
                rows.append(_prediction_row(pair, records[-1], result))
        bar.update(len(chunk))
    bar.close()
    if predictions is not None:
        path = Path(predictions)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    metrics = evaluate_records(records)
    metrics["model"] = model.name
    metrics["data"] = str(data)
    return metrics


def _prediction_row(pair: Any, record: EvalRecord, result: Any) -> dict[str, Any]:
    vgm_counts = {"building": 0, "road": 0}
    for obj in result.objects:
        vgm_counts[obj.cls] = vgm_counts.get(obj.cls, 0) + 1
    return {
        "pair_id": record.pair_id,
        "before": str(pair.before),
        "after": str(pair.after),
        "true": {
            "changed": record.true_changed,
            "counts": dict(record.true_counts),
            "cells": sorted(record.true_cells),
        },
        "pred": {
            "changed": record.pred_changed,
            "counts": dict(record.pred_counts),
            "cells": None if record.pred_cells is None else sorted(record.pred_cells),
            "caption": record.pred_caption,
        },
        "vgm_counts": vgm_counts,
        "answers": result.answers,
        "unparsed": list(result.unparsed),
    }


def write_metrics(metrics: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(metrics, indent=2))
    return path
