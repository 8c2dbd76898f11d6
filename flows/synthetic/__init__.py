"""Training data and truth from synthetic regions: the demo, the ChangeIMTI dataset builder and
the agreement of a run's inventory with a region's exact truth.

- :func:`run_demo` — generate a region, serve it, monitor it end to end (``changevg demo``);
- :func:`make_dataset` — synthetic regions → a ChangeIMTI train/val/test set
  (``changevg dataset``);
- :func:`truth_agreement` — tile-level change F1 and building counts against the truth.

These compose ``catalogs.synth``, ``tiling``, ``changevg`` and the monitoring flow; names load
on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flows.synthetic.agreement import TruthAgreement, truth_agreement
    from flows.synthetic.dataset import DatasetSummary, make_dataset
    from flows.synthetic.demo import DemoResult, run_demo

_HOME = {
    "TruthAgreement": "agreement",
    "truth_agreement": "agreement",
    "DatasetSummary": "dataset",
    "make_dataset": "dataset",
    "DemoResult": "demo",
    "run_demo": "demo",
}

__all__ = [
    "DatasetSummary",
    "DemoResult",
    "TruthAgreement",
    "make_dataset",
    "run_demo",
    "truth_agreement",
]


def __getattr__(name: str) -> object:
    if name not in _HOME:
        raise AttributeError(f"module 'flows.synthetic' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"flows.synthetic.{_HOME[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOME])
