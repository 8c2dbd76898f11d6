"""Copy drills: extra short-answer conversations that teach a small VLM to use the VGM's hint.

A small language model trained from scratch learns the captions first and tends to answer the
count and grid questions with their most common values, ignoring the numbers the VGM quotes in
the prompt (measured: building MAE 2.6 while the hint alone gave 0.6).  A drill is a
conversation about a real pair whose quoted VGM counts and cells are redrawn at random, with
the short answers (yes/no, both counts, grid cells) following the quoted values, so the only
way to answer is to read the hint.  Captions are never drilled.  Used by the from-scratch
recipe only (``--copy-drills``); a LoRA-tuned 7B model reads its hint without this.

Redrawn counts come from one of two distributions (``counts``):

- ``"uniform"``: buildings uniform in 0..20, roads in 0..3.  More than half of the non-zero
  building counts then have two digits, while real hints mostly have one; a model drilled this
  way answered some single-digit hints with two digits ("4" -> "14").
- ``"data"``: the (buildings, roads) of another pair's hint, drawn from the hints of all
  pairs with any change, so drilled answers follow the counts the model meets at inference.
- ``"wide"``: buildings uniform in 0..99, roads in 0..9, so every whole-number token
  (``--number-tokens``) is drilled, not only those the training regions happen to contain.

Either way one drill in five quotes no change at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Literal

import numpy as np

from changevg.data import Record
from changevg.data.changeimti import Turn
from changevg.result import GRID_CELLS
from changevg.vlm.prompts import QUESTIONS, format_answer, format_vgm_text

__all__ = ["DRILL_COUNTS", "DrillCounts", "copy_drills"]

DrillCounts = Literal["uniform", "data", "wide"]
DRILL_COUNTS: tuple[DrillCounts, ...] = ("uniform", "data", "wide")
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
) -> tuple[Record, str]:
    if rng.random() < 0.2:
        buildings, roads = 0, 0
    elif pool is None:
        buildings, roads = _uniform_counts(rng, counts)
    else:
        buildings, roads = pool[int(rng.integers(len(pool)))]
    n = buildings + roads
    cells: list[str] = []
    if n:
        k = int(rng.integers(1, min(n, len(GRID_CELLS)) + 1))
        cells = sorted(rng.choice(len(GRID_CELLS), size=k, replace=False).tolist())
        cells = [GRID_CELLS[i] for i in cells]
    hint = format_vgm_text(description.caption, {"building": buildings, "road": roads}, cells)
    answers = {
        "yes_no": format_answer("yes_no", n > 0),
        "count_building": format_answer("count_building", buildings),
        "count_road": format_answer("count_road", roads),
        "locate": format_answer("locate", cells),
    }
    turns = tuple(Turn(QUESTIONS[t], a) for t, a in answers.items())  # type: ignore[index]
    return replace(record, id=f"{record.id}-drill", turns=turns, task="drill"), hint


def copy_drills(
    records: Sequence[Record],
    descriptions: Mapping[str, Any],
    *,
    fraction: float,
    seed: int,
    counts: DrillCounts = "uniform",
) -> list[tuple[Record, str]]:
    """Drills for a ``fraction`` of ``records`` (one per pair), each with its hint text.

    Args:
        records: Conversations, one per image pair (``pack_by_pair``) or any.
        descriptions: The VGM description of each pair, by ``record.pair_key``.
        fraction: Share of records that get a drill (``0`` none, ``1`` all).
        seed: Makes the drills reproducible.
        counts: Distribution of the redrawn counts (see the module docstring).

    Raises:
        ValueError: a fraction outside [0, 1], an unknown ``counts``, or ``"data"`` when no
            hint has any change to draw from.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"copy-drill fraction must be in [0, 1], got {fraction}")
    if counts not in DRILL_COUNTS:
        raise ValueError(f"copy-drill counts must be one of {DRILL_COUNTS}, got {counts!r}")
    pool = None
    if counts == "data":
        hinted = (descriptions[r.pair_key].counts for r in records)
        pool = [(int(c.get("building", 0)), int(c.get("road", 0))) for c in hinted]
        pool = [bc for bc in pool if sum(bc)]
        if not pool:
            raise ValueError("copy-drill counts 'data' need at least one hint with a change")
    rng = np.random.default_rng([seed, 7])
    chosen = [r for r in records if rng.random() < fraction]
    return [_drill(r, descriptions[r.pair_key], rng, counts, pool) for r in chosen]
