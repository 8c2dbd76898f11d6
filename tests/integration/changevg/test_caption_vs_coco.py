"""Our caption metrics against pycocoevalcap itself (PTB tokenizer, Bleu, Meteor, Rouge, Cider).

Needs Java and pycocoevalcap (CI: ``apt-get install default-jre-headless`` and
``pip install pycocoevalcap``); skipped with the reason when either is missing.
"""

from __future__ import annotations

import random
import shutil

import pytest

from changevg.eval._ptb import ptb_tokenize
from changevg.eval.scores import CAPTION_METRICS, EvalRecord, evaluate_records

pytest.importorskip("pycocoevalcap", reason="pycocoevalcap is not installed")
if shutil.which("java") is None:
    pytest.skip("Java not found (apt-get install default-jre-headless)", allow_module_level=True)

from pycocoevalcap.bleu.bleu import Bleu  # noqa: E402
from pycocoevalcap.cider.cider import Cider  # noqa: E402
from pycocoevalcap.meteor.meteor import Meteor  # noqa: E402
from pycocoevalcap.rouge.rouge import Rouge  # noqa: E402
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer  # noqa: E402

NO_CHANGE = [
    "the scene is the same as before .",
    "there is no difference .",
    "the two scenes seem identical .",
    "no change has occurred",
    "nothing has changed .",
    "the scene is the same as before",
    "there is no change .",
    "the two images are almost the same",
]
CHANGE = [
    "two new buildings are built along the road .",
    "a road has been constructed in the lower left corner .",
    "many villas appear on the bareland .",
    "some trees are removed and a building is constructed at the top .",
    "a road is built from the left to the right .",
    "three houses have been built in the center of the scene",
    "a row of buildings appears beside the road in the top right corner .",
    "the vegetation at the bottom is replaced by a parking lot .",
    "a large building is constructed on the lower right , near the road .",
    "several small houses disappear and a road is built .",
    "an L-shaped building appears in the upper-left corner ; the rest isn't changed .",
    "Two new roads are built, and the trees aren't there anymore!",
    'a "new" building (with a gray roof) is built at the top-left.',
    "a 3-story building & a parking lot are built ... near the river's bank",
    "1,000 m2 of farmland has become 2.5 km of roads -- and buildings",
    "The houses' roofs are visible; it's a new residential area.",
    "a road is built in the lower left corner. A house is built on top etc.",
    "some trees are cut down / replaced by houses : about 10m wide",
]
ODD_PREDICTIONS = ["", ".", "NO CHANGE!!!", "the the the the the", "road", "(a) [b] {c} -- d"]


def _corpus(n_pairs: int = 50, seed: int = 7) -> tuple[dict[str, str], dict[str, list[str]]]:
    """LEVIR-CC-style pairs with 5 references each and noisy / degenerate predictions.

    Every third pair (i % 3 == 0) is a no-change pair.
    """
    rng = random.Random(seed)
    preds: dict[str, str] = {}
    refs: dict[str, list[str]] = {}
    for i in range(n_pairs):
        pool = NO_CHANGE if i % 3 == 0 else CHANGE
        pair_refs = rng.sample(pool, 5)
        words = rng.choice(pool).split()
        if i % 7 == 3:
            pred = ODD_PREDICTIONS[(i // 7) % len(ODD_PREDICTIONS)]
        elif i % 4 == 1:
            pred = " ".join(w for w in words if rng.random() > 0.3)
        elif i % 4 == 2:
            rng.shuffle(words)
            pred = " ".join(words)
        else:
            pred = " ".join(words)
        preds[f"pair_{i:03d}"], refs[f"pair_{i:03d}"] = pred, pair_refs
    return preds, refs


@pytest.fixture(scope="module")
def coco_meteor() -> Meteor:
    """One pycocoevalcap METEOR process (its Java startup takes ~10 s) for the module."""
    return Meteor()


def _coco_scores(
    preds: dict[str, str], refs: dict[str, list[str]], meteor: Meteor
) -> dict[str, float]:
    """pycocoevalcap's numbers, computed as its COCOEvalCap.evaluate does, x100."""
    tok = PTBTokenizer()
    gts = tok.tokenize({k: [{"caption": c} for c in v] for k, v in refs.items()})
    res = tok.tokenize({k: [{"caption": preds[k]}] for k in refs})
    b, _ = Bleu(4).compute_score(gts, res, verbose=0)
    m, _ = meteor.compute_score(gts, res)
    r, _ = Rouge().compute_score(gts, res)
    c, _ = Cider().compute_score(gts, res)
    out = {f"BLEU-{i + 1}": 100 * v for i, v in enumerate(b)}
    out |= {"METEOR": 100 * m, "ROUGE-L": 100 * r, "CIDEr-D": 100 * c}
    out["S*m"] = (out["BLEU-4"] + out["METEOR"] + out["ROUGE-L"] + out["CIDEr-D"]) / 4
    return out


def test_tokenizer_equals_corenlp_on_the_corpus() -> None:
    preds, refs = _corpus()
    lines = [c for v in refs.values() for c in v]
    coco = PTBTokenizer().tokenize({str(i): [{"caption": c}] for i, c in enumerate(lines)})
    assert ptb_tokenize(lines) == [coco[str(i)][0] for i in range(len(lines))]


def test_all_metrics_equal_pycocoevalcap_overall_and_per_split(coco_meteor: Meteor) -> None:
    preds, refs = _corpus()
    records = [
        EvalRecord(
            pair_id=k,
            refs=tuple(refs[k]),
            pred_caption=preds[k],
            true_changed=int(k[-3:]) % 3 != 0,
            pred_changed=None,
            true_counts={"building": 0, "road": 0},
            pred_counts=None,
            true_cells=frozenset(),
            pred_cells=None,
        )
        for k in preds
    ]
    ours = evaluate_records(records, meteor="require")
    assert ours["warnings"] == []
    subsets = {
        "overall": (ours["caption"], list(preds)),
        "change": (
            ours["splits"]["change"]["caption"],
            [r.pair_id for r in records if r.true_changed],
        ),
        "no_change": (
            ours["splits"]["no_change"]["caption"],
            [r.pair_id for r in records if not r.true_changed],
        ),
    }
    worst = dict.fromkeys(CAPTION_METRICS, 0.0)
    for name, (got, ids) in subsets.items():
        theirs = _coco_scores({k: preds[k] for k in ids}, {k: refs[k] for k in ids}, coco_meteor)
        for metric in CAPTION_METRICS:
            worst[metric] = max(worst[metric], abs(got[metric] - theirs[metric]))
        assert all(abs(got[m] - theirs[m]) <= 0.01 for m in CAPTION_METRICS), (name, got, theirs)
        if name == "overall":  # a realistic corpus, not a degenerate one
            assert 15 < theirs["BLEU-4"] < 95 and theirs["CIDEr-D"] > 30
    print("max |ours - pycocoevalcap| per metric:", worst)
