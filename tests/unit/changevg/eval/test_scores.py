"""Unit tests of changevg.eval.scores: hand-computed metric values, tokenisation, records layout.

Pure Python, no Java: METEOR is switched off or its absence is simulated.  The comparison with
pycocoevalcap itself lives in tests/integration/changevg/test_caption_vs_coco.py.
"""

from __future__ import annotations

import json
import logging
import math

import pytest

from changevg.eval import _caption as mc
from changevg.eval._ptb import ptb_tokenize
from changevg.eval.scores import (
    CAPTION_METRICS,
    GRID_CELLS,
    EvalRecord,
    caption_scores,
    classification_scores,
    counting_scores,
    evaluate_records,
    localization_scores,
)


# --- PTB tokenisation (expected strings produced by CoreNLP 3.4.1 via pycocoevalcap) -------
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("The scene is the same as before.", "the scene is the same as before"),
        ("Two new buildings, and a tree is gone!", "two new buildings and a tree is gone"),
        ("A road in the lower-left corner; it's 3.5 m wide.",
         "a road in the lower-left corner it 's 3.5 m wide"),
        ("There isn't any change.  Don't worry", "there is n't any change do n't worry"),
        ("can't cannot gonna", "ca n't can not gon na"),
        ('a "new" (gray) [b] {c}', "a new -lrb- gray -rrb- -lsb- b -rsb- -lcb- c -rcb-"),
        ("1,000 houses... and -- more - here", "1,000 houses and more here"),
        ("0.5m 10m 3x3 256x256 '90s", "0.5 m 10m 3x3 256x256 '90s"),
        ("e.g. etc. vs. approx. km. Mr. Smith", "e.g. etc. vs. approx km mr. smith"),
        ("a/b c*d e&f 50% $5 #tag", "a/b c * d e & f 50 % $ 5 #tag"),
        ("“curly” ‘quotes’ — dash", "curly quotes dash"),
        ("", ""),
        (" . ", ""),
    ],
)  # fmt: skip
def test_ptb_tokenize_matches_corenlp(raw: str, expected: str) -> None:
    assert ptb_tokenize([raw]) == [expected]


def test_ptb_abbreviation_depends_on_next_caption() -> None:
    # CoreNLP sees the captions joined by newlines: "x." before "The " loses its period.
    assert ptb_tokenize(["area x.", "The road"]) == ["area x", "the road"]
    assert ptb_tokenize(["area x.", "the road"]) == ["area x.", "the road"]
    assert ptb_tokenize(["a b.c", "x"]) == ["a b.c", "x"]
    assert ptb_tokenize(["x", ""]) == ["x", ""]


# --- BLEU / ROUGE-L / CIDEr-D on hand-computed examples ------------------------------------
def test_bleu_two_sentence_corpus_by_hand() -> None:
    gts = {"a": ["the cat is on the mat"], "b": ["there is a dog"]}
    res = {"a": ["the cat the mat"], "b": ["there is a dog"]}
    b1, b2, b3, b4 = mc.bleu(gts, res)
    # unigrams: a 4/4 clipped ("the" x2 allowed) + b 4/4; bigrams: a 2/3 + b 3/3 -> 5/6;
    # trigrams: a 0/2 + b 2/2 -> 2/4; 4-grams: a 0/1 + b 1/1 -> 1/2.  c = 8, r = 10.
    bp = math.exp(1 - 10 / 8)
    assert b1 == pytest.approx(bp * 1.0)
    assert b2 == pytest.approx(bp * (1.0 * 5 / 6) ** 0.5)
    assert b3 == pytest.approx(bp * (1.0 * 5 / 6 * 2 / 4) ** (1 / 3))
    assert b4 == pytest.approx(bp * (1.0 * 5 / 6 * 2 / 4 * 1 / 2) ** 0.25)


def test_bleu_uses_closest_reference_length_shorter_on_ties() -> None:
    gts = {"a": ["a b c d e", "a b c"]}  # hyp length 4: refs 5 and 3 tie -> 3 (no penalty)
    (b1, *_) = mc.bleu(gts, {"a": ["a b c x"]})
    assert b1 == pytest.approx(3 / 4)


def test_rouge_l_known_value() -> None:
    # LCS("police killed the gunman", "police kill the gunman") = 3; P = R = 3/4.
    score = mc.rouge_l({"a": ["police killed the gunman"]}, {"a": ["police kill the gunman"]})
    assert score == pytest.approx(0.75)
    # P = 2/2, R = 2/4 -> F = (1 + 1.44) * 0.5 / (0.5 + 1.44) with beta = 1.2
    score = mc.rouge_l({"a": ["a b c d", "x y"]}, {"a": ["a c"]})
    assert score == pytest.approx(2.44 * 0.5 / (0.5 + 1.44))


def test_cider_d_identical_captions_by_hand() -> None:
    # Disjoint vocabularies: every n-gram has df = 1, so all idf = log 2 and cosines are 1.
    # "a road is built" has 1..4-grams -> 10; "no change" only 1..2-grams -> 10 * 2/4 = 5.
    gts = {"a": ["a road is built"] * 5, "b": ["no change"] * 5}
    res = {"a": ["a road is built"], "b": ["no change"]}
    assert mc.cider_d(gts, res) == pytest.approx(7.5)


def test_cider_d_length_penalty_and_clipping() -> None:
    gts = {"a": ["a b"], "b": ["c d"]}
    # Repeating "a b" doubles tf but clipping caps the overlap at the reference weight;
    # 3 vs 1 bigrams -> Gaussian penalty exp(-4 / 72).
    score = mc.cider_d(gts, {"a": ["a b a b"], "b": ["c d"]})
    w = math.log(2)
    uni = (2 * w * w) / (math.sqrt(2 * (2 * w) ** 2) * math.sqrt(2 * w * w))
    bi = (w * w) / (math.sqrt((2 * w) ** 2 + w * w) * w)  # "a b" x2 clipped, "b a" unmatched
    expected_a = 10 * (uni + bi) / 4 * math.exp(-4 / 72)
    assert score == pytest.approx((expected_a + 10 * 2 / 4) / 2)


def test_caption_scores_scale_and_s_m() -> None:
    preds = {"a": "A road is built.", "b": "No change."}
    refs = {"a": ["a road is built"] * 5, "b": ["no change"] * 5}
    out = caption_scores(preds, refs, meteor="off")
    assert list(out) == list(CAPTION_METRICS)
    assert out["CIDEr-D"] == pytest.approx(750.0)  # x100 like change-captioning papers
    assert out["ROUGE-L"] == pytest.approx(100.0)
    assert out["BLEU-1"] == pytest.approx(100.0)
    assert out["METEOR"] is None and out["S*m"] is None


def test_caption_scores_s_m_with_meteor(monkeypatch: pytest.MonkeyPatch) -> None:
    class FakeMeteor:
        def score(self, gts: object, res: object) -> float:
            return 0.4

        def close(self) -> None:
            pass

    monkeypatch.setattr("changevg.eval.scores._meteor_scorer", lambda mode: (FakeMeteor(), None))
    out = caption_scores({"a": "x y"}, {"a": ["x y z"]})
    assert out["METEOR"] == pytest.approx(40.0)
    expected = (out["BLEU-4"] + 40.0 + out["ROUGE-L"] + out["CIDEr-D"]) / 4
    assert out["S*m"] == pytest.approx(expected)


def test_meteor_missing_java_is_reported(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(mc.shutil, "which", lambda name: None)
    with caplog.at_level(logging.WARNING, logger="changevg.eval.scores"):
        out = caption_scores({"a": "x"}, {"a": ["x"]})
    assert out["METEOR"] is None and out["S*m"] is None
    assert "METEOR skipped: Java not found" in caplog.text
    with pytest.raises(RuntimeError, match="Java not found"):
        caption_scores({"a": "x"}, {"a": ["x"]}, meteor="require")


def test_meteor_missing_pycocoevalcap_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mc.shutil, "which", lambda name: "/usr/bin/java")
    monkeypatch.setattr(mc.importlib.util, "find_spec", lambda name: None)
    assert mc.find_meteor_jar() is None
    assert mc.meteor_unavailable_reason() == (
        "METEOR skipped: pycocoevalcap (meteor-1.5.jar) not installed"
    )


def test_caption_scores_rejects_mismatched_ids() -> None:
    with pytest.raises(ValueError, match="pair ids differ"):
        caption_scores({"a": "x"}, {"b": ["x"]}, meteor="off")
    with pytest.raises(ValueError, match="at least one reference"):
        caption_scores({"a": "x"}, {"a": []}, meteor="off")


# --- classification / counting / localisation ----------------------------------------------
def test_classification_confusion_matrix() -> None:
    # TP 3, FP 1, FN 2, TN 4
    true = [True] * 5 + [False] * 5
    pred = [True, True, True, False, False, True, False, False, False, False]
    out = classification_scores(pred, true)
    assert out == pytest.approx({"accuracy": 0.7, "precision": 0.75, "recall": 0.6, "f1": 6 / 9})


def test_classification_zero_division_is_none() -> None:
    out = classification_scores([False, False], [False, False])
    assert out == {"accuracy": 1.0, "precision": None, "recall": None, "f1": None}
    out = classification_scores([False], [True])
    assert out == {"accuracy": 0.0, "precision": None, "recall": 0.0, "f1": 0.0}
    assert classification_scores([], [])["accuracy"] is None


def test_counting_mae_rmse() -> None:
    out = counting_scores([1, 4, 0, 2], [1, 1, 1, 2])
    assert out["mae"] == pytest.approx(1.0)
    assert out["rmse"] == pytest.approx(math.sqrt(10 / 4))
    assert counting_scores([], []) == {"mae": None, "rmse": None}


def test_localization_micro_average() -> None:
    pred = [{"top", "left"}, set(), {"center"}]
    true = [{"top"}, {"lower"}, {"center"}]
    out = localization_scores(pred, true)  # TP 2, FP 1, FN 1
    assert out == pytest.approx(
        {"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3, "exact_match": 1 / 3}
    )
    assert localization_scores([set()], [set()])["f1"] is None
    with pytest.raises(ValueError, match="unknown grid cells"):
        localization_scores([{"upper left"}], [set()])
    assert len(GRID_CELLS) == 9


# --- records ---------------------------------------------------------------------------------
def _record(i: int, changed: bool, **kw: object) -> EvalRecord:
    base = dict(
        pair_id=f"p{i}",
        refs=("two new buildings are built",) * 5 if changed else ("no change",) * 5,
        pred_caption="two buildings are built" if changed else "no change",
        true_changed=changed,
        pred_changed=changed,
        true_counts={"building": 2 if changed else 0, "road": 0},
        pred_counts={"building": 1 if changed else 0, "road": 0},
        true_cells=frozenset({"top"}) if changed else frozenset(),
        pred_cells=frozenset({"top", "left"}) if changed else frozenset(),
    )
    base.update(kw)
    return EvalRecord(**base)  # type: ignore[arg-type]


def test_evaluate_records_layout_splits_and_unparsed() -> None:
    records = [
        _record(0, True),
        _record(1, True, pred_caption=None, pred_changed=None),
        _record(2, False),
        _record(3, False, pred_counts={"building": None, "road": 1}, pred_cells=None),
    ]
    out = evaluate_records(records, meteor="off")
    json.dumps(out)  # metrics.json must serialise
    assert set(out) == {
        "n", "unparsed", "caption", "classification", "counting", "localization", "splits",
        "warnings",
    }  # fmt: skip
    assert out["n"] == {
        "pairs": 4, "caption": 3, "classification": 3,
        "counting": {"building": 3, "road": 4}, "localization": 3,
    }  # fmt: skip
    assert out["unparsed"] == {
        "caption": 1, "classification": 1, "counting": {"building": 1, "road": 0},
        "localization": 1,
    }  # fmt: skip
    assert out["classification"]["accuracy"] == 1.0
    assert out["counting"]["building"]["mae"] == pytest.approx(2 / 3)
    assert out["counting"]["road"]["mae"] == pytest.approx(1 / 4)
    assert out["localization"]["precision"] == pytest.approx(1 / 2)
    assert set(out["splits"]) == {"change", "no_change"}
    change, no_change = out["splits"]["change"], out["splits"]["no_change"]
    assert change["n"]["pairs"] == 2 and no_change["n"]["pairs"] == 2
    assert change["caption"]["BLEU-1"] < 99
    assert no_change["caption"]["BLEU-1"] == pytest.approx(100)
    assert no_change["classification"]["recall"] is None
    assert no_change["localization"]["exact_match"] == 1.0
    assert "splits" not in change
    assert out["warnings"] == []


def test_evaluate_records_reports_missing_meteor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mc.shutil, "which", lambda name: None)
    out = evaluate_records([_record(0, True), _record(1, False)])
    assert out["caption"]["METEOR"] is None and out["caption"]["S*m"] is None
    assert out["warnings"] == ["METEOR skipped: Java not found; METEOR and S*m not computed"]


def test_evaluate_records_empty_split_and_validation() -> None:
    out = evaluate_records([_record(0, True)], meteor="off")
    assert out["splits"]["no_change"]["caption"] == dict.fromkeys(CAPTION_METRICS)
    assert out["splits"]["no_change"]["counting"]["road"] == {"mae": None, "rmse": None}
    with pytest.raises(ValueError, match="unique"):
        evaluate_records([_record(0, True), _record(0, False)], meteor="off")
    with pytest.raises(ValueError, match="unknown grid cells"):
        _record(0, True, true_cells=frozenset({"middle"}))
    with pytest.raises(ValueError, match="lacks 'road'"):
        _record(0, True, true_counts={"building": 1})
