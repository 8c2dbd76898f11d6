"""Prompt layout of the ChangeVG VLM (prompt version ``changevg-v1``).

Every conversation is about one tile pair.  Rendered with the chat template (Qwen2.5-VL's
ChatML), a single-question prompt is, byte for byte::

    <|im_start|>system
    {SYSTEM_PROMPT}<|im_end|>
    <|im_start|>user
    <|vision_start|><|image_pad|><|vision_end|><|vision_start|><|image_pad|><|vision_end|>Please refer to this description: {vgm_text}. Modify or correct it.
    <|vgm_start|><|vgm_pad|><|vgm_end|>
    {question}<|im_end|>
    <|im_start|>assistant
    {answer}<|im_end|>

- The first image is the *before* image, the second the *after* image.  The processor expands
  each ``<|image_pad|>`` into one token per merged 28x28 patch (81 for a 256x256 tile) and the
  single ``<|vgm_pad|>`` into ``1 + G*G`` tokens (10 for the default 3x3 fine grid): first the
  VGM's global token, then its fine tokens row-major from the top left.  The model replaces
  their embeddings with the projected VGM embeddings.
- ``{vgm_text}`` is the VGM's output as text (:func:`format_vgm_text`)::

      {caption without final period}; new buildings: {n}; new roads: {n}; locations: {cells}

  with ``{cells}`` the grid cells joined by ``", "`` or ``No change``.
- Without a VGM (``vgm_text=None``) the VGM line and the ``<|vgm_start|>…<|vgm_end|>`` line
  are left out; the images are followed directly by the question.
- ``{question}`` is one of :data:`QUESTIONS` (the ChangeIMTI tasks) or free text.  In a
  multi-turn dialogue only the first user turn carries the images and the VGM block; later user
  turns are the question alone, each after the previous ``assistant`` answer.
- Training supervises only the assistant answers and their ``<|im_end|>``.

Prompt styles (:data:`STYLES`, recorded as ``prompt_version`` in a model folder, so a folder
always loads with the prompt it was trained with): ``changevg-v1`` is the layout above;
``changevg-v2`` keeps the layout but says "changed" where v1 said "new" and splits the VGM's
counts by change type::

      {caption}; changed buildings: {n} (new {a}, demolished {b}); changed roads: {n} (new {c},
      removed {d}); locations: {cells}

and asks the counts as "How many buildings have changed in the two images?" (ChangeIMTI counts
changed objects, new and demolished alike).  Without change types (a VGM without that channel)
the parentheses are left out.

Answers follow ChangeIMTI's forms: a sentence (``caption``), ``Yes`` / ``No`` (``yes_no``), a
number (``count_building``, ``count_road``), grid cells joined by ``", "`` in row-major order or
``No change`` (``locate``).
"""  # noqa: E501

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from changevg.result import GRID_CELLS, NO_CHANGE

__all__ = [
    "CHAT_TEMPLATE",
    "PROMPT_VERSION",
    "QUESTIONS",
    "STYLES",
    "SYSTEM_PROMPT",
    "TASKS",
    "PromptStyle",
    "Task",
    "get_style",
    "build_messages",
    "classify_question",
    "format_answer",
    "format_vgm_text",
    "prompt_corpus",
    "vgm_instruction",
]

PROMPT_VERSION = "changevg-v1"

SYSTEM_PROMPT = (
    "You are ChangeVG, an expert in remote sensing change analysis. You compare two images of "
    "the same place, taken before and after, and report changes to roads and buildings."
)

Task = Literal["caption", "yes_no", "count_building", "count_road", "locate"]
TASKS: tuple[Task, ...] = ("caption", "yes_no", "count_building", "count_road", "locate")

QUESTIONS: dict[Task, str] = {
    "caption": "Please briefly describe the changes in these two images.",
    "yes_no": (
        "Are there any changes to the roads or buildings in the two images? "
        "Please answer yes or no."
    ),
    "count_building": "How many new buildings are there in the two images?",
    "count_road": "How many new roads are there in the two images?",
    "locate": (
        "Where are the changes located? Answer with positions on a 3x3 grid ("
        + ", ".join(GRID_CELLS)
        + "), or No change."
    ),
}

_VGM_INSTRUCTION = "Please refer to this description: {vgm_text}. Modify or correct it."

QUESTIONS_V2: dict[Task, str] = {
    **QUESTIONS,
    "count_building": "How many buildings have changed in the two images?",
    "count_road": "How many roads have changed in the two images?",
}


@dataclass(frozen=True)
class PromptStyle:
    """One prompt layout: its version name, task questions and how the VGM hint reads.

    Attributes:
        version: The name recorded as ``prompt_version`` in a model folder.
        questions: The fixed question of each task.
        hint: ``"v1"`` (counts as "new …") or ``"v2"`` (counts as "changed …", split by change
            type when known).
        instruction: The sentence that quotes the hint (``{vgm_text}`` is replaced).
    """

    version: str
    questions: Mapping[Task, str] = field(default_factory=lambda: dict(QUESTIONS))
    hint: Literal["v1", "v2"] = "v1"
    instruction: str = _VGM_INSTRUCTION


STYLES: dict[str, PromptStyle] = {
    "changevg-v1": PromptStyle("changevg-v1"),
    "changevg-v2": PromptStyle("changevg-v2", questions=QUESTIONS_V2, hint="v2"),
}
"""Every prompt style this code speaks, by version name."""


def get_style(style: str | PromptStyle | None = None) -> PromptStyle:
    """The :class:`PromptStyle` of a version name (default ``changevg-v1``); a clear error
    naming the known versions otherwise."""
    if isinstance(style, PromptStyle):
        return style
    name = style or PROMPT_VERSION
    if name not in STYLES:
        raise ValueError(f"unknown prompt version {name!r}; this code speaks {sorted(STYLES)}")
    return STYLES[name]


_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\n__SYSTEM__<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}"
    "{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'vgm' %}<|vgm_start|><|vgm_pad|><|vgm_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}"
    "{% endif %}"
    "{% endfor %}<|im_end|>\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
#: Jinja chat template: Qwen2.5-VL's ChatML plus a ``{"type": "vgm"}`` content part.
CHAT_TEMPLATE = _TEMPLATE.replace("__SYSTEM__", SYSTEM_PROMPT)

Message = dict[str, Any]


def format_vgm_text(
    caption: str,
    counts: Mapping[str, int],
    cells: Sequence[str],
    *,
    kinds: Mapping[str, Mapping[str, int]] | None = None,
    style: str | PromptStyle | None = None,
) -> str:
    """The VGM's output as the text the prompt quotes (see the module docstring).

    Args:
        caption: The VGM's caption.
        counts: Changed objects per class.
        cells: Grid cells holding changes.
        kinds: Per class, objects per change type (``changevg.objects.change_counts``); used
            by the v2 hint, left out when None.
        style: Prompt style (default ``changevg-v1``).
    """
    where = ", ".join(c for c in GRID_CELLS if c in set(cells)) or NO_CHANGE
    cap = " ".join(caption.split()).rstrip(" .") or NO_CHANGE
    nb, nr = int(counts.get("building", 0)), int(counts.get("road", 0))
    if get_style(style).hint == "v1":
        return f"{cap}; new buildings: {nb}; new roads: {nr}; locations: {where}"

    def split(cls: str, n: int, gone: str) -> str:
        if kinds is None or cls not in kinds:
            return f"{n}"
        k = kinds[cls]
        return f"{n} (new {int(k.get('new', 0))}, {gone} {int(k.get(gone, 0))})"

    return (
        f"{cap}; changed buildings: {split('building', nb, 'demolished')}; "
        f"changed roads: {split('road', nr, 'removed')}; locations: {where}"
    )


def describe_hint(vgm: Any, style: str | PromptStyle | None = None) -> str:
    """The hint text of a ``VGMDescription`` (its objects give the change types)."""
    from changevg.objects import change_counts

    objects = getattr(vgm, "objects", None) or []
    known = bool(objects) and all(getattr(o, "change", None) is not None for o in objects)
    kinds = change_counts(objects) if known else None
    return format_vgm_text(vgm.caption, vgm.counts, vgm.cells, kinds=kinds, style=style)


def vgm_instruction(vgm: Any, style: str | PromptStyle | None = None) -> str:
    """``"Please refer to this description: … Modify or correct it."`` for a VGM output.

    Args:
        vgm: Text (used as is), or an object with ``caption``, ``counts`` and ``cells``
            (a ``VGMDescription``), formatted by :func:`format_vgm_text`.
        style: Prompt style (default ``changevg-v1``).
    """
    st = get_style(style)
    if isinstance(vgm, str):
        text = " ".join(vgm.split()).rstrip(" .")
    elif all(hasattr(vgm, a) for a in ("caption", "counts", "cells")):
        text = describe_hint(vgm, st)
    else:
        raise TypeError(f"vgm must be text or a VGM description, not {type(vgm).__name__}")
    return st.instruction.format(vgm_text=text)


def question_for(task_or_question: str, style: str | PromptStyle | None = None) -> str:
    """The question text: the fixed phrasing of a task name, else the text itself."""
    return get_style(style).questions.get(task_or_question, task_or_question)  # type: ignore[call-overload]


def build_messages(
    task_or_question: str,
    *,
    vgm_text: Any = None,
    history: Iterable[tuple[str, str]] = (),
    answer: str | None = None,
    vgm_tokens: bool = True,
    system: str = SYSTEM_PROMPT,
    style: str | PromptStyle | None = None,
) -> list[Message]:
    """Chat messages for one tile pair, in the layout of the module docstring.

    Args:
        task_or_question: A task name from :data:`TASKS` or a free-text question.
        vgm_text: The VGM output (text or a ``VGMDescription``); ``None`` leaves the VGM block out.
        history: Earlier ``(question, answer)`` turns of a dialogue over the same pair; each
            question may also be a task name.  The images go in the first user turn.
        answer: The assistant's answer to the last question (training), or ``None`` (inference:
            render with ``add_generation_prompt=True``).
        vgm_tokens: Whether to include the ``<|vgm_pad|>`` slot (needs a model with a VGM).
        system: The system prompt.
        style: Prompt style (default ``changevg-v1``): task questions and the hint's wording.

    Returns:
        Messages in the multimodal chat format (``content`` parts ``image``, ``vgm``, ``text``).
    """
    turns = [*history, (task_or_question, answer)]
    messages: list[Message] = [{"role": "system", "content": system}]
    for i, (question, reply) in enumerate(turns):
        if i == 0:
            parts: list[dict[str, str]] = [{"type": "image"}, {"type": "image"}]
            if vgm_text is not None:
                parts.append({"type": "text", "text": vgm_instruction(vgm_text, style) + "\n"})
                if vgm_tokens:
                    parts += [{"type": "vgm"}, {"type": "text", "text": "\n"}]
            parts.append({"type": "text", "text": question_for(question, style)})
            messages.append({"role": "user", "content": parts})
        else:
            messages.append({"role": "user", "content": question_for(question, style)})
        if reply is not None:
            messages.append({"role": "assistant", "content": reply})
    return messages


_WORD = re.compile(r"[a-z0-9]+")


# words people use for the two classes (the model's tasks say "building" and "road")
_SYNONYM_OF = {
    "house": "building", "houses": "buildings", "home": "building", "homes": "buildings",
    "street": "road", "streets": "roads",
}  # fmt: skip
_SYNONYMS = re.compile(r"\b(" + "|".join(_SYNONYM_OF) + r")\b")


def classify_question(text: str) -> Task | None:
    """The ChangeIMTI task a question asks for, or ``None`` for a free-text question.

    Recognises the fixed phrasings and their usual variants ("Has anything changed?",
    "How many buildings were built?", "In which part of the image …").
    """
    t = " ".join(_WORD.findall(text.lower()))
    t = _SYNONYMS.sub(lambda m: _SYNONYM_OF[m.group(1)], t)
    for st in STYLES.values():
        for task, q in st.questions.items():
            if t == " ".join(_WORD.findall(q.lower())):
                return task
    if re.search(r"\bhow many\b|\bnumber of\b|\bcount\b", t):
        has_b, has_r = re.search(r"\bbuilding", t), re.search(r"\broad", t)
        if has_b and not has_r:
            return "count_building"
        if has_r and not has_b:
            return "count_road"
        return None
    if re.search(
        r"\b(where|which (part|parts|area|areas|region|regions|position|cell)s?)\b", t
    ) or ("3x3" in t or "grid" in t):
        return "locate"
    if re.search(
        r"\b(describe|caption|summari[sz]e|what (has )?changed|what changes|what s new|"
        r"what is new|(tell me|talk) about the (change|difference)s?)\b",
        t,
    ):
        return "caption"
    if (
        re.match(r"^(are|is|has|have|did|does|do|was|were)\b.*\b(chang|differ)", t)
        or "yes or no" in t
    ):
        return "yes_no"
    return None


_NUMBER_WORDS = (  # noqa: SIM905
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty"
).split()


def format_answer(task: Task, value: Any) -> str:
    """The canonical answer text for a task's value (used to build training targets).

    ``yes_no``: ``"Yes"``/``"No"``; counts: the number as digits; ``locate``: cells in row-major
    order joined by ``", "``, or ``"No change"``; ``caption``: the caption, ending with ``.``.
    """
    if task == "yes_no":
        return "Yes" if value else "No"
    if task in ("count_building", "count_road"):
        return str(int(value))
    if task == "locate":
        cells = [c for c in GRID_CELLS if c in set(value)]
        return ", ".join(cells) if cells else NO_CHANGE
    if task == "caption":
        cap = " ".join(str(value).split()).rstrip(" .")
        return (cap[:1].upper() + cap[1:] + ".") if cap else NO_CHANGE + "."
    raise ValueError(f"unknown task {task!r}")


def prompt_corpus() -> Iterator[str]:
    """Every fixed text of the prompt layout (for training the tokenizer)."""
    yield SYSTEM_PROMPT
    for st in STYLES.values():
        yield from st.questions.values()
    yield _VGM_INSTRUCTION.format(vgm_text="")
    yield from ("system", "user", "assistant", "Yes", "No", "yes", "no", NO_CHANGE)
    yield from GRID_CELLS
    yield from _NUMBER_WORDS
    for st in STYLES:
        kinds = {"building": {"new": 1, "demolished": 1}, "road": {"new": 1, "removed": 1}}
        yield from (
            format_vgm_text("", {"building": n, "road": n}, GRID_CELLS, kinds=kinds, style=st)
            for n in range(10)
        )
