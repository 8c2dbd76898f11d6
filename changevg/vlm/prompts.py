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

Answers follow ChangeIMTI's forms: a sentence (``caption``), ``Yes`` / ``No`` (``yes_no``), a
number (``count_building``, ``count_road``), grid cells joined by ``", "`` in row-major order or
``No change`` (``locate``).
"""  # noqa: E501

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal

from changevg.result import GRID_CELLS, NO_CHANGE

__all__ = [
    "CHAT_TEMPLATE",
    "PROMPT_VERSION",
    "QUESTIONS",
    "SYSTEM_PROMPT",
    "TASKS",
    "Task",
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


def format_vgm_text(caption: str, counts: Mapping[str, int], cells: Sequence[str]) -> str:
    """The VGM's output as the text the prompt quotes (see the module docstring)."""
    where = ", ".join(c for c in GRID_CELLS if c in set(cells)) or NO_CHANGE
    cap = " ".join(caption.split()).rstrip(" .") or NO_CHANGE
    return (
        f"{cap}; new buildings: {int(counts.get('building', 0))}; "
        f"new roads: {int(counts.get('road', 0))}; locations: {where}"
    )


def vgm_instruction(vgm: Any) -> str:
    """``"Please refer to this description: … Modify or correct it."`` for a VGM output.

    Args:
        vgm: Text (used as is), or an object with ``caption``, ``counts`` and ``cells``
            (a ``VGMDescription``), formatted by :func:`format_vgm_text`.
    """
    if isinstance(vgm, str):
        text = " ".join(vgm.split()).rstrip(" .")
    elif all(hasattr(vgm, a) for a in ("caption", "counts", "cells")):
        text = format_vgm_text(vgm.caption, vgm.counts, vgm.cells)
    else:
        raise TypeError(f"vgm must be text or a VGM description, not {type(vgm).__name__}")
    return _VGM_INSTRUCTION.format(vgm_text=text)


def question_for(task_or_question: str) -> str:
    """The question text: the fixed phrasing of a task name, else the text itself."""
    return QUESTIONS.get(task_or_question, task_or_question)  # type: ignore[call-overload]


def build_messages(
    task_or_question: str,
    *,
    vgm_text: Any = None,
    history: Iterable[tuple[str, str]] = (),
    answer: str | None = None,
    vgm_tokens: bool = True,
    system: str = SYSTEM_PROMPT,
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

    Returns:
        Messages in the multimodal chat format (``content`` parts ``image``, ``vgm``, ``text``).
    """
    turns = [*history, (task_or_question, answer)]
    messages: list[Message] = [{"role": "system", "content": system}]
    for i, (question, reply) in enumerate(turns):
        if i == 0:
            parts: list[dict[str, str]] = [{"type": "image"}, {"type": "image"}]
            if vgm_text is not None:
                parts.append({"type": "text", "text": vgm_instruction(vgm_text) + "\n"})
                if vgm_tokens:
                    parts += [{"type": "vgm"}, {"type": "text", "text": "\n"}]
            parts.append({"type": "text", "text": question_for(question)})
            messages.append({"role": "user", "content": parts})
        else:
            messages.append({"role": "user", "content": question_for(question)})
        if reply is not None:
            messages.append({"role": "assistant", "content": reply})
    return messages


_WORD = re.compile(r"[a-z0-9]+")


def classify_question(text: str) -> Task | None:
    """The ChangeIMTI task a question asks for, or ``None`` for a free-text question.

    Recognises the fixed phrasings and their usual variants ("Has anything changed?",
    "How many buildings were built?", "In which part of the image …").
    """
    t = " ".join(_WORD.findall(text.lower()))
    for task, q in QUESTIONS.items():
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
    if re.search(r"\b(describe|caption|summari[sz]e|what (has )?changed|what changes)\b", t):
        return "caption"
    if re.match(r"^(are|is|has|have|did|does|do|was|were)\b.*\bchang", t) or "yes or no" in t:
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
    yield from QUESTIONS.values()
    yield _VGM_INSTRUCTION.format(vgm_text="")
    yield from ("system", "user", "assistant", "Yes", "No", "yes", "no", NO_CHANGE)
    yield from GRID_CELLS
    yield from _NUMBER_WORDS
    yield from (format_vgm_text("", {"building": n, "road": n}, GRID_CELLS) for n in range(10))
