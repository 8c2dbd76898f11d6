"""Copy drills: the short answers must follow the redrawn hint, never the image's labels."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from changevg.data import Record
from changevg.data.changeimti import Turn
from changevg.result import GRID_CELLS
from changevg.train._drills import copy_drills
from changevg.vlm.parse import parse_answer
from changevg.vlm.prompts import QUESTIONS, classify_question


def _records(n: int) -> list[Record]:
    return [
        Record(
            id=f"r{i}",
            before=Path(f"b{i}.png"),
            after=Path(f"a{i}.png"),
            turns=(Turn(QUESTIONS["caption"], "a house is built in the center."),),
        )
        for i in range(n)
    ]


def _descriptions(records):
    return {r.pair_key: SimpleNamespace(caption="a house is built in the center") for r in records}


def test_answers_follow_the_hint():
    records = _records(200)
    drills = copy_drills(records, _descriptions(records), fraction=1.0, seed=0)
    assert len(drills) == 200
    seen_counts = set()
    for record, hint in drills:
        m = re.search(r"new buildings: (\d+); new roads: (\d+); locations: (.*)$", hint)
        assert m, hint
        buildings, roads = int(m.group(1)), int(m.group(2))
        cells = [] if m.group(3) == "No change" else m.group(3).split(", ")
        answers = {classify_question(t.question): t.answer for t in record.turns}
        assert set(answers) == {"yes_no", "count_building", "count_road", "locate"}
        assert parse_answer("count_building", answers["count_building"]) == buildings
        assert parse_answer("count_road", answers["count_road"]) == roads
        assert answers["yes_no"] == ("Yes" if buildings + roads else "No")
        assert answers["locate"] == (", ".join(cells) or "No change")
        assert all(c in GRID_CELLS for c in cells)
        assert record.before == Path(record.id.removesuffix("-drill")[1:].join(["b", ".png"]))
        seen_counts.add(buildings)
    assert len(seen_counts) > 10  # many different values: copying is the only way to answer


def test_fraction_and_seed():
    records = _records(400)
    some = copy_drills(records, _descriptions(records), fraction=0.25, seed=3)
    assert 60 < len(some) < 140
    again = copy_drills(records, _descriptions(records), fraction=0.25, seed=3)
    assert [h for _, h in some] == [h for _, h in again]
    assert copy_drills(records, _descriptions(records), fraction=0.0, seed=3) == []
    with pytest.raises(ValueError, match="fraction"):
        copy_drills(records, _descriptions(records), fraction=1.5, seed=3)


def _hinted(records, counts):
    return {
        r.pair_key: SimpleNamespace(caption="c", counts=dict(zip(("building", "road"), c)))
        for r, c in zip(records, counts)
    }


def test_data_counts_follow_the_hints_of_changed_pairs():
    records = _records(300)
    hint_counts = [(0, 0), (3, 0), (4, 1), (12, 2)] * 75
    drills = copy_drills(
        records, _hinted(records, hint_counts), fraction=1.0, seed=0, counts="data"
    )
    drawn = []
    for record, hint in drills:
        m = re.search(r"new buildings: (\d+); new roads: (\d+);", hint)
        drawn.append((int(m.group(1)), int(m.group(2))))
        answers = {classify_question(t.question): t.answer for t in record.turns}
        assert parse_answer("count_building", answers["count_building"]) == drawn[-1][0]
    # only pooled (changed) hints or the forced "no change"; each pooled value shows up
    assert set(drawn) == {(0, 0), (3, 0), (4, 1), (12, 2)}
    assert 0.1 < drawn.count((0, 0)) / len(drawn) < 0.3  # the one-in-five forced no-change


def test_uniform_counts_unchanged_by_the_data_option():
    records = _records(50)
    plain = copy_drills(records, _descriptions(records), fraction=1.0, seed=4)
    named = copy_drills(records, _descriptions(records), fraction=1.0, seed=4, counts="uniform")
    assert [h for _, h in plain] == [h for _, h in named]


def test_bad_counts_option():
    records = _records(5)
    with pytest.raises(ValueError, match="counts must be one of"):
        copy_drills(records, _descriptions(records), fraction=1.0, seed=0, counts="zipf")
    with pytest.raises(ValueError, match="at least one hint with a change"):
        copy_drills(records, _hinted(records, [(0, 0)] * 5), fraction=1.0, seed=0, counts="data")


def test_wide_counts_reach_every_whole_number_token():
    records = _records(600)
    drills = copy_drills(records, _descriptions(records), fraction=1.0, seed=1, counts="wide")
    buildings, roads = set(), set()
    for _, hint in drills:
        m = re.search(r"new buildings: (\d+); new roads: (\d+);", hint)
        buildings.add(int(m.group(1)))
        roads.add(int(m.group(2)))
    assert max(buildings) <= 99 and max(roads) <= 9
    assert len({b for b in buildings if b >= 21}) > 50  # beyond the uniform option's 0..20


def _asked(records_counts):
    """Records asking all four short questions, answered with the given (buildings, roads)."""
    records = []
    for i, (b, r) in enumerate(records_counts):
        turns = (
            Turn(QUESTIONS["yes_no"], "Yes" if b + r else "No"),
            Turn(QUESTIONS["count_building"], str(b)),
            Turn(QUESTIONS["count_road"], str(r)),
        )
        records.append(Record(f"r{i}", Path(f"b{i}.png"), Path(f"a{i}.png"), turns))
    return records


def test_building_only_drills_keep_the_pairs_own_road_hint_and_answer():
    truth = [(2, 1), (0, 3), (5, 0), (0, 0)] * 50
    records = _asked(truth)
    hints = _hinted(records, [(b + 1, r + 4) for b, r in truth])  # the VGM's road hint is off
    drills = copy_drills(records, hints, fraction=1.0, seed=2, counts="wide", classes=("building",))
    assert len(drills) == len(records)
    buildings_seen = set()
    for (record, hint), (b, r) in zip(drills, truth):
        m = re.search(r"new buildings: (\d+); new roads: (\d+);", hint)
        quoted_b, quoted_r = int(m.group(1)), int(m.group(2))
        assert quoted_r == r + 4  # the pair's own road hint, not a redrawn one
        answers = {classify_question(t.question): t.answer for t in record.turns}
        assert answers["count_road"] == str(r)  # the pair's own answer, not the hint
        assert parse_answer("count_building", answers["count_building"]) == quoted_b
        # yes/no follows the drilled buildings; with none drilled the pair's own answer stands
        assert answers["yes_no"] == ("Yes" if quoted_b or b + r else "No")
        buildings_seen.add(quoted_b)
    assert len(buildings_seen) > 30


def test_undrilled_question_not_asked_unless_the_pair_asks_it():
    records = _records(20)  # caption-only conversations
    drills = copy_drills(
        records,
        _hinted(records, [(1, 1)] * 20),
        fraction=1.0,
        seed=0,
        classes=("building",),
    )
    for record, _ in drills:
        tasks = {classify_question(t.question) for t in record.turns}
        assert "count_road" not in tasks and "count_building" in tasks


def test_bad_classes_option():
    records = _records(3)
    for bad in ((), ("tree",)):
        with pytest.raises(ValueError, match="classes must be some of"):
            copy_drills(records, _descriptions(records), fraction=1.0, seed=0, classes=bad)
