"""Copy drills: extra short-answer conversations that teach a small VLM to use the VGM's hint.

A small language model trained from scratch learns the captions first and tends to answer the
count and grid questions with their most common values, ignoring the numbers the VGM quotes in
the prompt (measured: building MAE 2.6 while the hint alone gave 0.6).  A drill is a
conversation about a real pair whose quoted VGM counts and cells are redrawn at random, with
the short answers (yes/no, both counts, grid cells) following the quoted values, so the only
way to answer is to read the hint.  Captions are never drilled.  Used by the from-scratch
recipe only (``--copy-drills``); a LoRA-tuned 7B model reads its hint without this.

Redrawn counts come from one of three distributions (``counts``):

- ``"uniform"``: buildings uniform in 0..20, roads in 0..3.  More than half of the non-zero
  building counts then have two digits, while real hints mostly have one; a model drilled this
  way answered some single-digit hints with two digits ("4" -> "14").
- ``"data"``: the (buildings, roads) of another pair's hint, drawn from the hints of all
  pairs with any change, so drilled answers follow the counts the model meets at inference.
- ``"wide"``: buildings uniform in 0..99, roads in 0..9, so every whole-number token
  (``--number-tokens``) is drilled, not only those the training regions happen to contain.

Whichever it is, one drill in five quotes no change at all.

``classes`` picks which counts are redrawn.  A class left out keeps the pair's own hint and is
asked about only if the pair's conversation asks, with the pair's own answer: the VGM's road
hint, for one, fragments long roads in dense regions (road MAE 0.72 on the synthetic test
region against the VLM's 0.15), so drilling the model to copy it made road counts worse
(0.57); drilling buildings alone keeps the model reading roads from the images.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Literal

import numpy as np

from changevg.data import Record
from changevg.data.changeimti import Turn
from changevg.result import GRID_CELLS
from changevg.vlm.prompts import QUESTIONS, classify_question, format_answer, format_vgm_text

__all__ = ["DRILL_CLASSES", "DRILL_COUNTS", "DrillCounts", "copy_drills"]

DrillCounts = Literal["uniform", "data", "wide"]
DRILL_COUNTS: tuple[DrillCounts, ...] = ("uniform", "data", "wide")
DRILL_CLASSES = ("building", "road")
_UNIFORM_MAX = {"uniform": (20, 3), "wide": (99, 9)}  # largest (buildings, roads)


def _uniform_counts(rng: np.random.Generator, counts: DrillCounts) -> tuple[int, int]:
    most_buildings, most_roads = _UNIFORM_MAX[counts]
    buildings = int(rng.integers(0, most_buildings + 1))
    roads = int(rng.integers(0, most_roads + 1))
    return (buildings or 1, roads) if buildings + roads == 0 else (buildings, roads)


def _drill(
    record: Record,
    description: Any,
    rng: np.random.Generator,
    counts: DrillCounts,
    pool: Sequence[tuple[int, int]] | None,
    classes: Sequence[str],
) -> tuple[Record, str]:
    if rng.random() < 0.2:
        drawn = (0, 0)
    elif pool is None:
        drawn = _uniform_counts(rng, counts)
    else:
        drawn = pool[int(rng.integers(len(pool)))]
    own_hint = getattr(description, "counts", {}) or {}
    own = {classify_question(t.question): t.answer for t in record.turns}
    quoted = {
        cls: value if cls in classes else int(own_hint.get(cls, 0))
        for cls, value in zip(DRILL_CLASSES, drawn)
    }
    n = sum(quoted[c] for c in classes)
    cells: list[str] = []
    if n:
        k = int(rng.integers(1, min(n, len(GRID_CELLS)) + 1))
        cells = sorted(rng.choice(len(GRID_CELLS), size=k, replace=False).tolist())
        cells = [GRID_CELLS[i] for i in cells]
    hint = format_vgm_text(description.caption, quoted, cells)
    answers: dict[str, str] = {}
    if n or len(classes) == len(DRILL_CLASSES):
        answers["yes_no"] = format_answer("yes_no", n > 0)
    elif "yes_no" in own:  # nothing drilled changed: the pair's own answer stands
        answers["yes_no"] = own["yes_no"]
    for cls in DRILL_CLASSES:
        task = f"count_{cls}"
        if cls in classes:
            answers[task] = format_answer(task, quoted[cls])
        elif task in own:
            answers[task] = own[task]
    answers["locate"] = format_answer("locate", cells)
    turns = tuple(Turn(QUESTIONS[t], a) for t, a in answers.items())  # type: ignore[index]
    return replace(record, id=f"{record.id}-drill", turns=turns, task="drill"), hint


def copy_drills(
    records: Sequence[Record],
    descriptions: Mapping[str, Any],
    *,
    fraction: float,
    seed: int,
    counts: DrillCounts = "uniform",
    classes: Sequence[str] = DRILL_CLASSES,
) -> list[tuple[Record, str]]:
    """Drills for a ``fraction`` of ``records`` (one per pair), each with its hint text.

    Args:
        records: Conversations, one per image pair (``pack_by_pair``) or any.
        descriptions: The VGM description of each pair, by ``record.pair_key``.
        fraction: Share of records that get a drill (``0`` none, ``1`` all).
        seed: Makes the drills reproducible.
        counts: Distribution of the redrawn counts (see the module docstring).
        classes: The classes whose counts are redrawn; the others keep the pair's own hint
            and answers.

    Raises:
        ValueError: a fraction outside [0, 1], an unknown ``counts``, or ``"data"`` when no
            hint has any change to draw from, or ``classes`` empty or unknown.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"copy-drill fraction must be in [0, 1], got {fraction}")
    if counts not in DRILL_COUNTS:
        raise ValueError(f"copy-drill counts must be one of {DRILL_COUNTS}, got {counts!r}")
    if not classes or set(classes) - set(DRILL_CLASSES):
        raise ValueError(f"copy-drill classes must be some of {DRILL_CLASSES}, got {classes!r}")
    pool = None
    if counts == "data":
        hinted = (descriptions[r.pair_key].counts for r in records)
        pool = [(int(c.get("building", 0)), int(c.get("road", 0))) for c in hinted]
        pool = [bc for bc in pool if sum(bc)]
        if not pool:
            raise ValueError("copy-drill counts 'data' need at least one hint with a change")
    rng = np.random.default_rng([seed, 7])
    chosen = [r for r in records if rng.random() < fraction]
    return [_drill(r, descriptions[r.pair_key], rng, counts, pool, classes) for r in chosen]
