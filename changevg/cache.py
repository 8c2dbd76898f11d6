"""Model folders by identity, and one loaded copy per process.

:func:`model_id` names what produced a result (the inventory and the per-tile results record it,
so results of two models are never mixed); :func:`cached_model` loads a folder once per process
and device (a Dask worker runs many batches; loading a model is seconds to minutes).
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from changevg.model import ChangeVG

__all__ = ["cached_model", "clear_cache", "model_id"]

_MODELS: dict[tuple[str, str], ChangeVG] = {}
_LOCK = threading.Lock()


def model_id(path: str | Path) -> str:
    """A stable id for a model folder: its name and a hash of its config and weight headers.

    Hashing the safetensors *headers* (names, shapes, dtypes, offsets) rather than the weights
    keeps it instant for a 7B checkpoint while still telling different trainings apart (their
    headers hold ``training`` metadata only if written; the config and shapes usually differ too).
    ``metrics*.json`` and ``training*.json`` are left out: evaluating a model does not change it.
    """
    folder = Path(path)
    h = hashlib.sha256()
    for f in sorted(folder.glob("*.json")) + sorted(folder.glob("*.safetensors")):
        if f.suffix == ".json" and f.name.startswith(("metrics", "training")):
            continue
        h.update(f.name.encode())
        with f.open("rb") as fh:
            if f.suffix == ".safetensors":
                n = int.from_bytes(fh.read(8), "little")
                h.update(fh.read(n))
                fh.seek(0, 2)
                h.update(str(fh.tell()).encode())
                fh.seek(max(8 + n, fh.tell() - (1 << 20)))
                h.update(fh.read())  # the last MB of weights: different trainings differ here
            else:
                h.update(fh.read())
    return f"{folder.name}-{h.hexdigest()[:12]}"


def cached_model(path: str | Path, device: str) -> ChangeVG:
    """The model folder at ``path`` loaded once per process and device (thread-safe).

    Args:
        path: A ChangeVG model folder.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"`` (see :meth:`ChangeVG.load`).
    """
    from changevg.model import ChangeVG

    key = (str(path), device)
    with _LOCK:
        if key not in _MODELS:
            _MODELS[key] = ChangeVG.load(key[0], device=device)
        return _MODELS[key]


def clear_cache() -> None:
    """Forget every loaded model (frees their memory once nothing else holds them)."""
    with _LOCK:
        _MODELS.clear()
