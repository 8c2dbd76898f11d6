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

from typing import TYPE_CHECKING

from catalogs._lazy import lazy_exports

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


__getattr__, __dir__ = lazy_exports(__name__, _HOME, globals())
