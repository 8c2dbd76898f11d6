"""Change-Agent's MCI model (the ChangeVG authors' VGM), re-implemented, and its converter.

- :class:`ChangeAgentMCI` — the model with the :class:`changevg.vgm.VisionGuidedModule`
  interface (``forward``, ``describe``, ``generate_captions``, ``save_pretrained`` /
  ``from_pretrained``);
- :class:`MCIConfig`, :class:`MCIVocab` — its architecture and the authors' vocabulary;
- :func:`convert_change_agent` — a published ``.pth`` checkpoint to a model folder.
"""

from __future__ import annotations

from typing import Any

from changevg.mci.config import MODEL_TYPE, MCIConfig, MCIVocab

_LAZY = {
    "ChangeAgentMCI": "changevg.mci.model",
    "convert_change_agent": "changevg.mci.convert",
    "ConversionError": "changevg.mci.convert",
}

__all__ = ["MODEL_TYPE", "MCIConfig", "MCIVocab", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'changevg.mci' has no attribute {name!r}")
