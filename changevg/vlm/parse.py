"""Parsing the VLM's answers into typed values and a ``ChangeResult``.

A reply is parsed only when its meaning is unambiguous; otherwise :func:`parse_answer` returns
``None`` and :func:`to_change_result` keeps the raw text and lists the task in
``ChangeResult.unparsed``.  Nothing is guessed.

Precedence in :func:`to_change_result`, field by field:

1. the VLM's parsed answer to that field's task;
2. else the VGM's value (``vgm``: caption, changed, counts, cells, change score, objects) —
   when the task was asked but its answer did not parse, the task is in ``unparsed``, which
   marks the field as the VGM fallback;
3. else a neutral default (``""``, 0, ``[]``; ``changed`` from the parsed counts/locations).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from changevg.result import GRID_CELLS, ChangeObject, ChangeResult

__all__ = ["COUNT_TASKS", "parse_answer", "parse_count", "parse_locations", "parse_yes_no",
           "clean_caption", "to_change_result"]  # fmt: skip

COUNT_TASKS = {"count_building": "building", "count_road": "road"}

_SPECIAL = re.compile(r"<\|[a-z_]+\|>")


def _norm(text: str) -> str:
    text = _SPECIAL.sub(" ", text).lower().replace("’", "'")
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text).split())


# ---------------------------------------------------------------------------- yes / no
_YES_FIRST = {"yes", "yeah", "yep", "true", "correct", "affirmative"}
_NO_FIRST = {"no", "nope", "false", "negative", "none"}
_NEG = re.compile(
    r"\b(no (obvious |significant |visible |apparent |notable )?(change|changes|difference)"
    r"|nothing (has |have )?(changed|changes)|unchanged|not changed|no new"
    r"|(has|have|had|did|does|do|is|are|was|were) ?(not|n't) (been )?(any )?(change|changed)"
    r"|remains? the same|stay(ed|s)? the same|same as before)\b"
)
_POS = re.compile(
    r"\b((there|these) (is|are|was|were|has been|have been) (some |a |significant |many |"
    r"several |obvious |notable |clear )?(change|changes)|(has|have) changed|changed"
    r"|(new|newly) (built|constructed|building|buildings|road|roads)|demolished|constructed)\b"
)


def parse_yes_no(text: str) -> bool | None:
    """``True``/``False`` for yes/no replies ("Yes.", "No, nothing changed."), else ``None``."""
    t = _norm(text)
    if not t or re.search(r"\b(yes (and|or) no|no (and|or) yes|maybe|not sure)\b", t):
        return None
    first = t.split()[0]
    neg, pos = bool(_NEG.search(t)), bool(_POS.search(_NEG.sub(" ", t)))
    if first in _YES_FIRST:
        return None if neg else True
    if first in _NO_FIRST or first == "not":
        return None if pos and not neg else False
    if neg != pos:
        return pos
    return None


# ---------------------------------------------------------------------------- counts
_UNITS = (  # noqa: SIM905
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()  # noqa: SIM905
_WORD_VALUES = {w: i for i, w in enumerate(_UNITS)} | {w: 20 + 10 * i for i, w in enumerate(_TENS)}
_WORD_VALUES |= {"a single": 1, "single": 1, "a couple of": 2, "a pair of": 2, "dozen": 12}
_NUM = re.compile(
    r"\b(?:(?P<tens>" + "|".join(_TENS) + r")(?: (?P<unit>" + "|".join(_UNITS[1:10]) + r"))?"
    r"|(?P<word>a single|single|a couple of|a pair of|dozen|" + "|".join(_UNITS) + r")"
    r"|(?P<digits>\d+))\b"
)
_ZERO = re.compile(r"\b(no|none|not any|nothing|zero)\b")
_ONE = re.compile(r"\b(a|an)( new| newly built| changed| single)? (building|road)\b")


def parse_count(text: str) -> int | None:
    """A non-negative count from digits or number words ("3", "three", "twenty-one", "none").

    Two different numbers in one reply (e.g. "2 or 3") are ambiguous: ``None``.
    """
    t = _norm(text.replace("-", " "))
    values = set()
    for m in _NUM.finditer(t):
        if m["digits"]:
            values.add(int(m["digits"]))
        elif m["tens"]:
            values.add(_WORD_VALUES[m["tens"]] + (_WORD_VALUES[m["unit"]] if m["unit"] else 0))
        else:
            values.add(_WORD_VALUES[m["word"]])
    if len(values) == 1:
        return values.pop()
    if values:
        return None
    if _ZERO.search(t):
        return 0
    if _ONE.search(t):
        return 1
    return None


# ---------------------------------------------------------------------------- locations
_SYNONYMS = [
    (r"\bupper\b", "top"),
    (r"\bbottom\b", "lower"),
    (r"\b(centre|middle|central|centered|centred)\b", "center"),
    (r"\b(top|lower) (left|right)( corner| corners| side| part| area| region)?\b", r"\1 \2 corner"),
    (r"\bleft (top|lower)( corner)?\b", r"\1 left corner"),
    (r"\bright (top|lower)( corner)?\b", r"\1 right corner"),
]
_CELL = re.compile(r"\b(" + "|".join(sorted(GRID_CELLS, key=len, reverse=True)) + r")\b")
_NONE_LOC = re.compile(r"\b(no (change|changes)|nowhere|none|no changed (area|areas|region))\b")


def parse_locations(text: str) -> list[str] | None:
    """Grid cells named in a reply, in ``GRID_CELLS`` order; ``[]`` for "No change".

    Accepts variants ("upper left", "bottom-right corner", "middle").  A reply naming no cell,
    or naming cells and "no change" together, is ``None``.
    """
    found: set[str] = set()
    none = False
    for chunk in re.split(r"[,;/\n]|\band\b|&", _SPECIAL.sub(" ", text).lower()):
        t = _norm(chunk.replace("-", " "))
        for pattern, repl in _SYNONYMS:
            t = re.sub(pattern, repl, t)
        found.update(_CELL.findall(t))
        none = none or bool(_NONE_LOC.search(t))
    if found and none:
        return None
    if found:
        return [c for c in GRID_CELLS if c in found]
    return [] if none else None


# ---------------------------------------------------------------------------- captions
def clean_caption(text: str) -> str | None:
    """A caption with special tokens, quotes and extra spaces removed; ``None`` if no words."""
    t = _SPECIAL.sub(" ", text).replace("\ufffd", " ")
    t = re.sub(r"^\s*(answer|caption|description)\s*:\s*", "", t, flags=re.IGNORECASE)
    t = " ".join(t.split()).strip(" \"'`")
    if "\ufffd" in text or not re.search(r"[A-Za-z]{2,}", t):
        return None
    return t


def parse_answer(task: str | None, text: str) -> Any:
    """Parse a reply to a task (see :data:`~changevg.vlm.prompts.TASKS`).

    Returns:
        ``yes_no`` → ``bool``; ``count_building``/``count_road`` → ``int``; ``locate`` →
        list of ``GRID_CELLS`` names (``[]`` for "No change"); ``caption`` and free-text
        questions (``task=None``) → cleaned string.  ``None`` when the reply cannot be parsed.
    """
    if task == "yes_no":
        return parse_yes_no(text)
    if task in COUNT_TASKS:
        return parse_count(text)
    if task == "locate":
        return parse_locations(text)
    if task == "caption" or task is None:
        return clean_caption(text)
    raise ValueError(f"unknown task {task!r}")


def to_change_result(
    answers: Mapping[str, str],
    *,
    vgm: Any = None,
    objects: Sequence[ChangeObject] | None = None,
    change_score: float | None = None,
) -> ChangeResult:
    """Combine the VLM's answers per task (and the VGM's output) into a ``ChangeResult``.

    Args:
        answers: Raw reply per task name (``caption``, ``yes_no``, ``count_building``,
            ``count_road``, ``locate``); other keys are kept in ``answers`` unparsed.
        vgm: A ``VGMDescription``-like object (``caption``, ``changed``, ``change_score``,
            ``counts``, ``cells``, ``objects``) used where the VLM gave no parseable answer.
        objects: Change objects (default: the VGM's).
        change_score: Overrides the score (default: the VGM's, else 1.0/0.0 from ``changed``).

    Returns:
        The result; ``unparsed`` lists, in task order, the asked tasks whose reply did not parse.
    """
    parsed: dict[str, Any] = {}
    unparsed: list[str] = []
    for task in ("caption", "yes_no", "count_building", "count_road", "locate"):
        if task in answers:
            value = parse_answer(task, answers[task])
            if value is None:
                unparsed.append(task)
            else:
                parsed[task] = value

    def fallback(attr: str, default: Any) -> Any:
        value = getattr(vgm, attr, None) if vgm is not None else None
        return default if value is None else value

    vgm_counts = fallback("counts", {})
    counts = {
        cls: int(parsed.get(task, vgm_counts.get(cls, 0))) for task, cls in COUNT_TASKS.items()
    }
    locations = list(parsed.get("locate", fallback("cells", [])))
    if "yes_no" in parsed:
        changed = bool(parsed["yes_no"])
    elif vgm is not None and getattr(vgm, "changed", None) is not None:
        changed = bool(vgm.changed)
    else:
        changed = sum(counts.values()) > 0 or bool(locations)
    if change_score is None:
        change_score = fallback("change_score", 1.0 if changed else 0.0)
    caption = parsed.get("caption", fallback("caption", ""))
    return ChangeResult(
        changed=changed,
        change_score=float(change_score),
        caption=str(caption),
        counts=counts,
        locations=[c for c in GRID_CELLS if c in set(locations)],
        objects=list(objects if objects is not None else fallback("objects", [])),
        answers={k: str(v) for k, v in answers.items()},
        unparsed=unparsed,
    )
