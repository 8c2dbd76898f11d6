"""ChangeIMTI-format datasets: ShareGPT ``conversations`` + ``images`` [before, after].

One JSON file holds a list of records::

    {"id": "r0-3-4-caption",
     "images": ["images/r0-3-4_A.png", "images/r0-3-4_B.png"],
     "conversations": [{"from": "human", "value": "<image><image>Please briefly describe ..."},
                       {"from": "gpt", "value": "Two buildings are built in the center."}]}

Optional fields written by this project's generator and used when present: ``task``, ``mask``,
``change_type`` (a PNG raster per pair: 0 unchanged, 1 new, 2 demolished)
(LEVIR-MCI coding: road 128, building 255), ``captions`` (all references of the pair),
``changed``, ``counts``, ``cells``, ``split``. Image paths are relative to an images root.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from catalogs.errors import InputError

IMAGE_TAG = "<image>"
_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant"}


class DatasetError(InputError):
    """A dataset file is malformed; the message names the file, record and field."""


@dataclass(frozen=True)
class Turn:
    """One question and its answer."""

    question: str
    answer: str


@dataclass(frozen=True)
class Record:
    """One ChangeIMTI record: a conversation about one image pair."""

    id: str
    before: Path
    after: Path
    turns: tuple[Turn, ...]
    task: str | None = None
    mask: Path | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    change_type: Path | None = None

    @property
    def pair_key(self) -> str:
        """Identifies the image pair (several records may share one)."""
        return f"{self.before}|{self.after}"


def _fail(path: Path, index: int, rid: Any, message: str) -> DatasetError:
    where = f"record {index}" + (f" (id {rid!r})" if rid is not None else "")
    return DatasetError(f"{path}: {where}: {message}")


def read_changeimti(path: str | Path, *, images_root: str | Path | None = None) -> list[Record]:
    """Read and validate a ChangeIMTI JSON file.

    Args:
        path: The JSON file (a list of records).
        images_root: Folder image paths are relative to (default: the JSON file's folder).

    Raises:
        DatasetError: invalid JSON (line and column named), an empty file, or a record with a
            missing or malformed field (record index, id and field named).
    """
    path = Path(path)
    root = Path(images_root) if images_root is not None else path.parent
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such dataset file") from None
    if not text.strip():
        raise DatasetError(f"{path}: the file is empty; expected a JSON list of records")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetError(
            f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    if not isinstance(data, list) or not data:
        raise DatasetError(f"{path}: expected a non-empty JSON list of records")
    return [_record(path, root, i, raw) for i, raw in enumerate(data)]


def _record(path: Path, root: Path, index: int, raw: Any) -> Record:
    if not isinstance(raw, dict):
        raise _fail(path, index, None, "is not a JSON object")
    rid = raw.get("id", f"record-{index}")
    images = raw.get("images", raw.get("image"))
    if (
        not isinstance(images, list)
        or len(images) != 2
        or not all(isinstance(p, str) and p for p in images)
    ):
        raise _fail(path, index, rid, "field 'images' must list two paths [before, after]")
    convs = raw.get("conversations")
    if not isinstance(convs, list) or len(convs) < 2:
        raise _fail(path, index, rid, "field 'conversations' must hold question/answer turns")
    turns = []
    for j in range(0, len(convs) - 1, 2):
        q, a = convs[j], convs[j + 1]
        for k, (msg, role) in enumerate(((q, "user"), (a, "assistant"))):
            if not isinstance(msg, dict) or not isinstance(msg.get("value"), str):
                raise _fail(path, index, rid, f"conversations[{j + k}] needs a string 'value'")
            if _ROLES.get(msg.get("from", "")) != role:
                raise _fail(
                    path,
                    index,
                    rid,
                    f"conversations[{j + k}].from is {msg.get('from')!r}, expected a {role} turn",
                )
        question = q["value"].replace(IMAGE_TAG, "").strip()
        turns.append(Turn(question=question, answer=a["value"].strip()))
    mask, change_type = raw.get("mask"), raw.get("change_type")
    meta = {
        k: v
        for k, v in raw.items()
        if k not in ("id", "images", "image", "conversations", "task", "mask", "change_type")
    }
    return Record(
        id=str(rid),
        before=root / images[0],
        after=root / images[1],
        turns=tuple(turns),
        task=raw.get("task"),
        mask=root / mask if isinstance(mask, str) else None,
        meta=meta,
        change_type=root / change_type if isinstance(change_type, str) else None,
    )


def record_to_json(
    rid: str,
    images: Sequence[str],
    turns: Iterable[tuple[str, str]],
    **extra: Any,
) -> dict[str, Any]:
    """A ChangeIMTI record as JSON; the first question carries the two ``<image>`` tags."""
    conversations = []
    for i, (question, answer) in enumerate(turns):
        prefix = IMAGE_TAG * 2 if i == 0 else ""
        conversations.append({"from": "human", "value": prefix + question})
        conversations.append({"from": "gpt", "value": answer})
    return {"id": rid, "images": list(images), "conversations": conversations, **extra}


def write_changeimti(records: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Write records (from :func:`record_to_json`) as one JSON file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(list(records), indent=1))
    tmp.replace(path)
    return path
