"""ChangeVG: a vision-language model guided by a dual-branch vision-guided module (VGM).

Public API (heavy modules load on first use, so ``import changevg`` stays cheap):

- :class:`ChangeVG` — load a model folder (or base + LoRA adapter + VGM) and run
  :meth:`~ChangeVG.predict_batch`, :meth:`~ChangeVG.screen` (VGM only) or :meth:`~ChangeVG.ask`;
- :func:`predict_batch` — the same with the shipped default model;
- :class:`ChangeResult`, :class:`ChangeObject` — the typed outputs;
- :class:`VisionGuidedModule`, :class:`VGMConfig` — the VGM on its own;
- :mod:`changevg.eval.scores` (metrics), :mod:`changevg.data` (datasets),
  :mod:`changevg.train` (training).

This package knows nothing of STAC, Prefect or GeoParquet.
"""

from __future__ import annotations

from catalogs._lazy import lazy_exports
from changevg.result import CLASSES, GRID_CELLS, NO_CHANGE, ChangeObject, ChangeResult

_LAZY = {
    "ChangeVG": "changevg.model",
    "DEFAULT_MODEL": "changevg.model",
    "predict_batch": "changevg.model",
    "VisionGuidedModule": "changevg.vgm",
    "VGMConfig": "changevg.vgm",
    "evaluate_model": "changevg.eval.model",
}

__all__ = ["CLASSES", "GRID_CELLS", "NO_CHANGE", "ChangeObject", "ChangeResult", *_LAZY]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
