"""Dialogue questions: routed to the task's own answer, honest out of scope, history validated."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from catalogs.errors import InputError
from changevg.vlm.dialogue import (
    MAX_QUESTION_CHARS,
    OUT_OF_SCOPE_REPLY,
    check_history,
    check_question,
    route,
)

DEFAULT = Path(__file__).parents[4] / "changevg" / "weights" / "default"


@pytest.mark.parametrize(
    ("question", "task"),
    [
        ("How many houses were built?", "count_building"),
        ("And how many new streets?", "count_road"),
        ("Did anything change between these two images?", "yes_no"),
        ("Where did the change occur?", "locate"),
        ("Describe the changes.", "caption"),
        ("Tell me about the changes.", "caption"),
        ("What's new in the second image compared with the first?", "caption"),
        ("Is anything different?", "yes_no"),
        ("What colour are the roofs?", None),
        ("Is it summer in the second image?", None),
    ],
)
def test_route(question: str, task: str | None) -> None:
    assert route(question) == task


def test_history_shape_is_checked() -> None:
    assert check_history([("Has anything changed?", "yes")]) == [("Has anything changed?", "yes")]
    with pytest.raises(InputError, match=r"history\[0\] is 'Has anything changed\?'"):
        check_history(["Has anything changed?", "yes"])  # a flat list, the common mistake
    with pytest.raises(InputError, match="list of \\(question, answer\\) pairs"):
        check_history("yes")
    with pytest.raises(InputError, match=r"history\[1\]"):
        check_history([("q", "a"), ("q", 3)])


def test_question_is_checked() -> None:
    assert check_question("  Where?  ") == "Where?"
    with pytest.raises(InputError, match="question is empty"):
        check_question("   ")
    with pytest.raises(InputError, match=f"the limit is {MAX_QUESTION_CHARS}"):
        check_question("why " * MAX_QUESTION_CHARS)


@pytest.fixture(scope="module")
def model_and_pair():
    from changevg.model import ChangeVG

    rng = np.random.default_rng(0)
    before = rng.integers(80, 140, (3, 256, 256), dtype=np.uint8)
    after = before.copy()
    after[:, 40:90, 40:90] = 220  # a bright new roof
    return ChangeVG.load(DEFAULT, device="cpu"), (before, after)


def test_reworded_and_later_turns_agree_with_predict_batch(model_and_pair) -> None:
    model, (before, after) = model_and_pair
    (result,) = model.predict_batch([(before, after)])
    history = [("Describe the changes.", result.answers["caption"])]
    assert (
        model.ask(before, after, "How many houses were built?") == result.answers["count_building"]
    )
    assert (
        model.ask(before, after, "Where did the change occur?", history=history)
        == result.answers["locate"]
    )


def test_out_of_scope_is_honest(model_and_pair) -> None:
    model, (before, after) = model_and_pair
    assert model.ask(before, after, "What colour are the roofs?") == OUT_OF_SCOPE_REPLY
    free = model.ask(before, after, "What colour are the roofs?", free_text=True)
    assert isinstance(free, str) and free != OUT_OF_SCOPE_REPLY
    with pytest.raises(InputError, match="history"):
        model.ask(before, after, "Where?", history=["Where?", "top left"])  # type: ignore[list-item]
