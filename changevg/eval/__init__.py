"""Scoring models: one entry per kind of labelled data.

- :func:`evaluate_model` — a ChangeVG model on a ChangeIMTI file (every task, ``metrics.json``).
- :func:`evaluate_change_folder` — a model on a change-detection folder (``A/``, ``B/``,
  ``label/``, as LEVIR-CD, WHU-CD, S2Looking and LEVIR-MCI are distributed): pixel, tile and
  count metrics of the field.
- :func:`evaluate_vgm` — the VGM alone on ChangeIMTI pairs (validation while training).
- :mod:`changevg.eval.scores` — the metric functions themselves (captions, yes/no, counts, cells).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from catalogs._lazy import lazy_exports

if TYPE_CHECKING:
    from changevg.eval.folder import evaluate_change_folder, read_change_folder
    from changevg.eval.model import evaluate_model, write_metrics
    from changevg.eval.scores import EvalRecord, evaluate_records
    from changevg.eval.vgm import evaluate_vgm

__all__ = [
    "EvalRecord",
    "evaluate_change_folder",
    "evaluate_model",
    "evaluate_records",
    "evaluate_vgm",
    "read_change_folder",
    "write_metrics",
]

_LAZY = {
    "EvalRecord": "changevg.eval.scores",
    "evaluate_records": "changevg.eval.scores",
    "evaluate_model": "changevg.eval.model",
    "write_metrics": "changevg.eval.model",
    "evaluate_vgm": "changevg.eval.vgm",
    "evaluate_change_folder": "changevg.eval.folder",
    "read_change_folder": "changevg.eval.folder",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
