"""Word-level caption vocabulary for the VGM's caption decoder.

Change-captioning codebases (RSICCformer, Chg2Cap, Change-Agent) lowercase captions, strip
punctuation and split on whitespace, then keep the words seen in training. This module does the
same with four special tokens: ``<pad>`` = 0, ``<bos>`` = 1, ``<eos>`` = 2, ``<unk>`` = 3.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence

__all__ = ["SPECIAL_TOKENS", "CaptionVocab", "tokenize"]

SPECIAL_TOKENS: tuple[str, ...] = ("<pad>", "<bos>", "<eos>", "<unk>")
_NON_WORD = re.compile(r"[^a-z0-9\s]+")


def tokenize(text: str) -> list[str]:
    """Lowercase words of ``text``; apostrophes are dropped, other punctuation splits words.

    ``"Roads, and a building's roof."`` -> ``["roads", "and", "a", "buildings", "roof"]``.
    """
    text = text.lower().replace("'", "").replace("\u2019", "")
    return _NON_WORD.sub(" ", text).split()


class CaptionVocab:
    """Mapping between caption words and token ids.

    Args:
        words: Vocabulary words in id order, *without* the special tokens (they come first).
    """

    pad_id = 0
    bos_id = 1
    eos_id = 2
    unk_id = 3

    def __init__(self, words: Sequence[str]) -> None:
        words = list(words)
        clash = set(words) & set(SPECIAL_TOKENS)
        if clash:
            raise ValueError(f"words must not contain special tokens: {sorted(clash)}")
        if len(set(words)) != len(words):
            raise ValueError("words must be unique")
        self.itos: list[str] = [*SPECIAL_TOKENS, *words]
        self.stoi: dict[str, int] = {w: i for i, w in enumerate(self.itos)}

    @classmethod
    def build(cls, captions: Iterable[str], min_count: int = 1) -> CaptionVocab:
        """Vocabulary of the words occurring at least ``min_count`` times in ``captions``.

        Words are ordered by decreasing count, then alphabetically, so a build is deterministic.
        """
        counter = Counter(w for c in captions for w in tokenize(c))
        kept = [w for w, n in counter.items() if n >= min_count]
        return cls(sorted(kept, key=lambda w: (-counter[w], w)))

    def __len__(self) -> int:
        return len(self.itos)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CaptionVocab) and self.itos == other.itos

    def __hash__(self) -> int:
        return hash(tuple(self.itos))

    def __repr__(self) -> str:
        return f"CaptionVocab(size={len(self)})"

    def encode(self, text: str, max_len: int) -> list[int]:
        """Token ids ``[<bos>, words..., <eos>, <pad>...]`` of length exactly ``max_len``.

        Captions longer than ``max_len - 2`` words are truncated (``<eos>`` is always kept);
        unknown words become ``<unk>``.
        """
        if max_len < 2:
            raise ValueError(f"max_len must be at least 2 (<bos> and <eos>), got {max_len}")
        words = tokenize(text)[: max_len - 2]
        ids = [self.bos_id, *(self.stoi.get(w, self.unk_id) for w in words), self.eos_id]
        return ids + [self.pad_id] * (max_len - len(ids))

    def decode(self, ids: Iterable[int]) -> str:
        """Words of ``ids`` joined by spaces: stops at ``<eos>``, skips ``<bos>`` and ``<pad>``."""
        out: list[str] = []
        for i in ids:
            i = int(i)
            if i == self.eos_id:
                break
            if i in (self.pad_id, self.bos_id):
                continue
            out.append(self.itos[i] if 0 <= i < len(self.itos) else SPECIAL_TOKENS[self.unk_id])
        return " ".join(out)

    def to_json(self) -> str:
        """JSON text ``{"itos": [...]}`` (special tokens included, for readability)."""
        return json.dumps({"itos": self.itos}, ensure_ascii=False, indent=0)

    @classmethod
    def from_itos(cls, itos: Sequence[str]) -> CaptionVocab:
        """Vocabulary from its full id-ordered token list (special tokens first, as ``itos``)."""
        itos = list(itos)
        if tuple(itos[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
            raise ValueError(f"not a caption vocabulary: must start with {list(SPECIAL_TOKENS)}")
        return cls(itos[len(SPECIAL_TOKENS) :])

    @classmethod
    def from_json(cls, text: str) -> CaptionVocab:
        """Inverse of :meth:`to_json`; checks the special tokens are in place."""
        itos = json.loads(text).get("itos")
        if not isinstance(itos, list):
            raise ValueError('not a caption vocabulary: expected {"itos": [...]}')
        return cls.from_itos(itos)
