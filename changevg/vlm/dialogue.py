"""Questions in a dialogue: one answer per task however it is asked, and an honest reply otherwise.

A tile pair has five things the model was trained to say (``TASKS``). A follow-up question that
asks one of them — in the fixed phrasing, a rewording ("How many houses were built?"), or as the
third turn of a conversation — gets exactly the answer :meth:`ChangeVG.predict_batch` gives for
that task: the question is recognised (:func:`changevg.vlm.prompts.classify_question`) and the
task's own prompt is asked, so the reply cannot drift with the wording or the turn. Measured
before this routing, a dialogue agreed with ``predict_batch`` on 46 % of yes/no, 71 % of count
and 28 % of location questions, and answered "What colour are the roofs?" with a grid cell.

A question outside the five tasks gets :data:`OUT_OF_SCOPE_REPLY`, which says what the model can
answer, instead of a number or a grid cell it was never trained to give for it.
"""

from __future__ import annotations

from collections.abc import Sequence

from catalogs.errors import InputError
from changevg.vlm.prompts import Task, classify_question

__all__ = ["MAX_QUESTION_CHARS", "OUT_OF_SCOPE_REPLY", "check_history", "check_question", "route"]

#: Longer questions are refused: the tiny default's context is a few hundred tokens, and no
#: question about one tile pair needs more than a paragraph.
MAX_QUESTION_CHARS = 500

OUT_OF_SCOPE_REPLY = (
    "I can only answer these about the two images: what changed (a caption), whether roads or "
    "buildings changed (yes or no), how many new buildings or new roads there are, and where on "
    "a 3x3 grid the changes are."
)


def check_question(question: object) -> str:
    """The question stripped; :class:`InputError` for an empty, non-text or overlong one."""
    if not isinstance(question, str):
        raise InputError(f"question must be text, not {type(question).__name__}")
    text = question.strip()
    if not text:
        raise InputError("question is empty: ask e.g. 'How many new buildings are there?'")
    if len(text) > MAX_QUESTION_CHARS:
        raise InputError(
            f"question is {len(text)} characters long; the limit is {MAX_QUESTION_CHARS}"
        )
    return text


def check_history(history: object) -> list[tuple[str, str]]:
    """``history`` as a list of ``(question, answer)`` string pairs, or a clear InputError.

    Each earlier turn is one pair, e.g. ``[("Has anything changed?", "yes"),
    ("How many new buildings are there?", "3")]`` — not a flat list of strings.
    """
    if isinstance(history, (str, bytes)) or not isinstance(history, Sequence):
        raise InputError(
            "history must be a list of (question, answer) pairs, e.g. "
            "[('Has anything changed?', 'yes')]"
        )
    turns: list[tuple[str, str]] = []
    for i, turn in enumerate(history):
        ok = isinstance(turn, (tuple, list)) and len(turn) == 2
        if not ok or not all(isinstance(t, str) for t in turn):
            raise InputError(
                f"history[{i}] is {turn!r}: each turn must be a (question, answer) pair of "
                "strings, e.g. ('Has anything changed?', 'yes')"
            )
        turns.append((turn[0], turn[1]))
    return turns


def route(question: str) -> Task | None:
    """The task a dialogue question asks for, or ``None`` when it is none of the five."""
    return classify_question(question)
