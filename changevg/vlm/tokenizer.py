"""A Qwen2-style byte-level BPE tokenizer trained on the project's own text.

No tokenizer can be downloaded here, so the small ChangeVG models use a tokenizer built from
the captions, questions and answers they are trained on.  It keeps Qwen2.5-VL's pipeline (NFC,
Qwen2's pre-tokenisation regex, byte-level BPE, no BOS) and its special tokens, so the chat
template, the processor and the model code are the same for this tokenizer and the real
Qwen2.5-VL one.  Two tokens are added: ``<|vgm_start|>`` / ``<|vgm_end|>`` around the reserved
``<|vgm_pad|>`` slots that carry the vision-guided module's embeddings.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
from tokenizers.trainers import BpeTrainer
from transformers import PreTrainedTokenizerFast

from changevg.vlm.prompts import CHAT_TEMPLATE, prompt_corpus

__all__ = [
    "EOS_TOKEN",
    "PAD_TOKEN",
    "QWEN_SPECIAL_TOKENS",
    "SPECIAL_TOKENS",
    "VGM_END",
    "VGM_PAD",
    "VGM_START",
    "build_tokenizer",
    "load_tokenizer",
]

#: Qwen2's pre-tokenisation regex (contractions, words, single digits, punctuation runs, spaces).
PRETOKENIZE_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

#: Qwen2.5-VL's special tokens, in Qwen's id order.
QWEN_SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
VGM_START = "<|vgm_start|>"
VGM_END = "<|vgm_end|>"
VGM_PAD = "<|vgm_pad|>"
SPECIAL_TOKENS: tuple[str, ...] = (*QWEN_SPECIAL_TOKENS, VGM_START, VGM_END, VGM_PAD)
EOS_TOKEN = "<|im_end|>"
PAD_TOKEN = "<|endoftext|>"

#: Model-specific token attributes (``tokenizer.image_token`` …) the Qwen processor looks up.
_NAMED_TOKENS = {
    "image_token": "<|image_pad|>",
    "video_token": "<|video_pad|>",
    "vision_bos_token": "<|vision_start|>",
    "vision_eos_token": "<|vision_end|>",
    "vgm_token": VGM_PAD,
}


def _raw_tokenizer() -> Tokenizer:
    tok = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    return tok


def _with_prompts(corpus: Iterable[str]) -> Iterator[str]:
    yield from prompt_corpus()
    yield from corpus


def build_tokenizer(
    corpus: Iterable[str],
    *,
    vocab_size: int = 2000,
    min_frequency: int = 2,
    vgm_tokens: bool = True,
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on ``corpus`` plus the fixed prompt texts.

    The 256 byte symbols are always in the vocabulary, so any text round-trips exactly; merges
    come from the corpus (``vocab_size`` is an upper bound: a small corpus yields fewer).  Special
    tokens follow the learned vocabulary, each a single id, and are never split or merged.

    Args:
        corpus: Captions, questions and answers (any iterable of strings, read once).
        vocab_size: Largest number of ids, special tokens included.
        min_frequency: Minimum pair count for a merge.
        vgm_tokens: Add ``<|vgm_start|>``, ``<|vgm_end|>``, ``<|vgm_pad|>`` (last, so a tokenizer
            built without them and extended later gets the same ids, as a Qwen one would).

    Returns:
        A fast tokenizer with Qwen2.5-VL's special tokens, ``<|im_end|>`` as EOS,
        ``<|endoftext|>`` as padding (left side, for batched generation) and the ChangeVG chat
        template.
    """
    n_special = len(SPECIAL_TOKENS)
    if vocab_size < 256 + n_special:
        raise ValueError(f"vocab_size must be at least {256 + n_special} (bytes + special tokens)")
    tok = _raw_tokenizer()
    trainer = BpeTrainer(
        vocab_size=vocab_size - n_special,
        min_frequency=min_frequency,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
    )
    tok.train_from_iterator(_with_prompts(corpus), trainer=trainer)
    specials = SPECIAL_TOKENS if vgm_tokens else QWEN_SPECIAL_TOKENS
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    return _wrap(tok, vgm_tokens=vgm_tokens)


def _wrap(tok: Tokenizer, *, vgm_tokens: bool) -> PreTrainedTokenizerFast:
    named = {k: v for k, v in _NAMED_TOKENS.items() if vgm_tokens or v != VGM_PAD}
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        unk_token=None,
        bos_token=None,
        padding_side="left",
        model_max_length=32768,
        clean_up_tokenization_spaces=False,
        extra_special_tokens=named,
        chat_template=CHAT_TEMPLATE,
    )
    return fast


def load_tokenizer(path: str) -> PreTrainedTokenizerFast:
    """Load a tokenizer saved with ``save_pretrained`` from a local folder (never the hub)."""
    tok = PreTrainedTokenizerFast.from_pretrained(path, local_files_only=True)
    missing = [
        t for t in SPECIAL_TOKENS if tok.convert_tokens_to_ids(t) in (None, tok.unk_token_id)
    ]
    if missing:
        raise ValueError(f"tokenizer in {path} lacks the special tokens {missing}")
    return tok
