"""Running a model over a labelled dataset and scoring it (metrics: :mod:`changevg.evaluate`).

Each image pair is asked every task once; a reply that does not parse counts as unparsed for
that task (never replaced by a guess), so the metrics measure the VLM's answers.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from changevg.data import DatasetError, pairs_from_records, read_changeimti
from changevg.evaluate import EvalRecord, evaluate_records
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
) -> dict[str, Any]:
    """Metrics of ``model`` on a ChangeIMTI file (nested as in ``metrics.json``)."""
    pairs = pairs_from_records(read_changeimti(data, images_root=images_root))
    pairs = [p for p in pairs if p.changed is not None][: limit or None]
    if not pairs:
        raise DatasetError(f"{data}: no pair has a change label to evaluate against")
    records: list[EvalRecord] = []
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
        bar.update(len(chunk))
    bar.close()
    metrics = evaluate_records(records)
    metrics["model"] = model.name
    metrics["data"] = str(data)
    return metrics


def write_metrics(metrics: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(metrics, indent=2))
    return path
