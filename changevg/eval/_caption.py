"""Caption metrics re-implemented from pycocoevalcap 1.2 (the field's reference implementation).

Every function takes already tokenised captions (see :mod:`changevg.eval._ptb`) as
``{pair_id: [caption]}`` for predictions and ``{pair_id: [ref, ...]}`` for references, and
returns the corpus score on pycocoevalcap's own 0-1 (CIDEr-D: 0-10) scale.  Arithmetic follows
pycocoevalcap step by step, including its quirks, so results agree to floating-point rounding:

* BLEU (Papineni et al., 2002) as in ``bleu_scorer.py``: corpus-level clipped n-gram counts,
  "closest" reference length (ties go to the shorter reference), ``tiny``/``small`` smoothing.
* ROUGE-L (Lin, 2004) as in ``rouge.py``: LCS precision/recall maxed over references,
  F-measure with beta = 1.2, averaged over pairs; tokens split on single spaces.
* CIDEr-D (Vedantam et al., 2015) as in ``cider_scorer.py``: TF-IDF n-grams (n <= 4) with
  document frequencies from the references of the evaluated set, clipped cosine, Gaussian
  length penalty (sigma = 6, length counted in bigrams as pycocoevalcap does), x10.
* METEOR 1.5 (Denkowski & Lavie, 2014) by driving pycocoevalcap's ``meteor-1.5.jar`` with the
  same ``-stdio -l en -norm`` protocol; it needs Java.
"""

from __future__ import annotations

import importlib.util
import math
import shutil
import subprocess
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

Captions = Mapping[str, Sequence[str]]
Ngrams = Counter[tuple[str, ...]]


def _ngrams(words: Sequence[str], n: int = 4) -> Ngrams:
    counts: Ngrams = Counter()
    for k in range(1, n + 1):
        counts.update(zip(*(words[i:] for i in range(k)), strict=False))
    return counts


def _check(gts: Captions, res: Captions) -> None:
    if set(gts) != set(res):
        raise ValueError("predictions and references must have the same pair ids")
    for key in res:
        if len(res[key]) != 1 or len(gts[key]) < 1:
            raise ValueError(f"pair {key!r}: need exactly one prediction and >= 1 reference")


def bleu(gts: Captions, res: Captions, n: int = 4) -> list[float]:
    """Corpus BLEU-1..n exactly as pycocoevalcap's ``Bleu(4)`` (option ``"closest"``)."""
    _check(gts, res)
    tiny, small = 1e-15, 1e-9
    testlen = reflen = 0
    guess, correct = [0] * n, [0] * n
    for key in res:
        hyp = res[key][0].split()
        max_ref: dict[tuple[str, ...], int] = {}
        ref_lens = []
        for ref in gts[key]:
            words = ref.split()
            ref_lens.append(len(words))
            for gram, c in _ngrams(words, n).items():
                max_ref[gram] = max(max_ref.get(gram, 0), c)
        testlen += len(hyp)
        reflen += min((abs(rl - len(hyp)), rl) for rl in ref_lens)[1]
        for gram, c in _ngrams(hyp, n).items():
            correct[len(gram) - 1] += min(max_ref.get(gram, 0), c)
        for k in range(n):
            guess[k] += max(0, len(hyp) - k)
    scores, prod = [], 1.0
    for k in range(n):
        prod *= float(correct[k] + tiny) / (guess[k] + small)
        scores.append(prod ** (1.0 / (k + 1)))
    ratio = (testlen + tiny) / (reflen + small)
    if ratio < 1:
        scores = [s * math.exp(1 - 1 / ratio) for s in scores]
    return scores


def _lcs(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence (dynamic programming, O(len(a) * len(b)))."""
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l(gts: Captions, res: Captions, beta: float = 1.2) -> float:
    """Mean sentence ROUGE-L F-measure exactly as pycocoevalcap's ``Rouge``."""
    _check(gts, res)
    scores = []
    for key in res:
        cand = res[key][0].split(" ")
        precs, recs = [], []
        for ref in gts[key]:
            toks = ref.split(" ")
            lcs = _lcs(toks, cand)
            precs.append(lcs / len(cand))
            recs.append(lcs / len(toks))
        p, r = max(precs), max(recs)
        scores.append((1 + beta**2) * p * r / (r + beta**2 * p) if p != 0 and r != 0 else 0.0)
    return sum(scores) / len(scores)


def cider_d(gts: Captions, res: Captions, n: int = 4, sigma: float = 6.0) -> float:
    """Corpus CIDEr-D exactly as pycocoevalcap's ``Cider`` (which is CIDEr-D), on its 0-10 scale."""
    _check(gts, res)
    keys = list(res)
    ref_counts = {k: [_ngrams(r.split(), n) for r in gts[k]] for k in keys}
    doc_freq: Counter[tuple[str, ...]] = Counter()
    for k in keys:
        doc_freq.update({g for counts in ref_counts[k] for g in counts})
    log_n_docs = math.log(float(len(keys)))
    # idf = log(N) - log(max(1, df)); n-grams absent from every reference get log(N).
    idf = {g: log_n_docs - math.log(max(1.0, df)) for g, df in doc_freq.items()}

    def vectorise(counts: Ngrams) -> tuple[list[dict], list[float], int]:
        vec: list[dict[tuple[str, ...], float]] = [{} for _ in range(n)]
        norm = [0.0] * n
        length = 0
        for gram, tf in counts.items():
            i = len(gram) - 1
            vec[i][gram] = float(tf) * idf.get(gram, log_n_docs)
            norm[i] += vec[i][gram] ** 2
            if i == 1:  # pycocoevalcap counts length in bigrams (same delta unless empty)
                length += tf
        return vec, [math.sqrt(x) for x in norm], length

    total = 0.0
    for k in keys:
        vec_h, norm_h, len_h = vectorise(_ngrams(res[k][0].split(), n))
        score = [0.0] * n
        for counts in ref_counts[k]:
            vec_r, norm_r, len_r = vectorise(counts)
            penalty = math.exp(-(float(len_h - len_r) ** 2) / (2 * sigma**2))
            for i in range(n):
                val = sum(min(w, vec_r[i].get(g, 0.0)) * vec_r[i].get(g, 0.0)
                          for g, w in vec_h[i].items())  # fmt: skip
                if norm_h[i] != 0 and norm_r[i] != 0:
                    val /= norm_h[i] * norm_r[i]
                score[i] += val * penalty
        total += sum(score) / n / len(ref_counts[k]) * 10.0
    return total / len(keys)


def find_meteor_jar() -> Path | None:
    """Locate ``meteor-1.5.jar`` inside an installed pycocoevalcap, or ``None``."""
    spec = importlib.util.find_spec("pycocoevalcap")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        jar = Path(location) / "meteor" / "meteor-1.5.jar"
        if jar.is_file():
            return jar
    return None


def meteor_unavailable_reason() -> str | None:
    """Why METEOR cannot run here (``None`` when Java and the jar are both present)."""
    if shutil.which("java") is None:
        return "METEOR skipped: Java not found"
    if find_meteor_jar() is None:
        return "METEOR skipped: pycocoevalcap (meteor-1.5.jar) not installed"
    return None


class MeteorScorer:
    """A running ``meteor-1.5.jar`` (startup ~10 s), reusable across several corpora.

    Speaks the protocol of pycocoevalcap's ``Meteor`` wrapper: one ``SCORE`` line per pair
    returns its sufficient statistics, one ``EVAL`` line returns per-pair scores and the
    corpus score (computed by METEOR from the pooled statistics, not a mean of pairs).
    """

    def __init__(self, jar: Path | None = None) -> None:
        reason = meteor_unavailable_reason() if jar is None else None
        if reason is not None:
            raise RuntimeError(reason)
        jar = jar or find_meteor_jar()
        assert jar is not None
        cmd = ["java", "-jar", "-Xmx2G", jar.name, "-", "-", "-stdio", "-l", "en", "-norm"]
        self._proc = subprocess.Popen(
            cmd, cwd=jar.parent, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self._lock = threading.Lock()

    def _ask(self, line: str) -> str:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(f"{line}\n".encode())
        self._proc.stdin.flush()
        return self._read()

    def _read(self) -> str:
        assert self._proc.stdout is not None
        out = self._proc.stdout.readline()
        if not out:
            raise RuntimeError("meteor-1.5.jar exited unexpectedly")
        return out.decode().strip()

    def score(self, gts: Captions, res: Captions) -> float:
        """Corpus METEOR (0-1) of tokenised captions."""
        _check(gts, res)
        with self._lock:
            stats = []
            for key in res:
                hyp = res[key][0].replace("|||", "").replace("  ", " ")
                stats.append(self._ask(" ||| ".join(("SCORE", " ||| ".join(gts[key]), hyp))))
            self._ask("EVAL ||| " + " ||| ".join(stats))  # first reply: score of pair 1
            for _ in range(len(stats) - 1):
                self._read()
            return float(self._read())

    def close(self) -> None:
        """Stop the Java process."""
        if self._proc.poll() is None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            self._proc.kill()
            self._proc.wait()

    def __enter__(self) -> MeteorScorer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
