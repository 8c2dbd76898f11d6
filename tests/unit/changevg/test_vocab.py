import pytest

from changevg.vocab import SPECIAL_TOKENS, CaptionVocab, tokenize

CAPTIONS = [
    "A new building appears in the top left corner.",
    "Two roads, and a building, are built.",
    "There is no change!",
]


def test_tokenize_lowercases_and_strips_punctuation():
    assert tokenize("Roads, and a building's roof.") == ["roads", "and", "a", "buildings", "roof"]
    assert tokenize("  no-change!? ") == ["no", "change"]


def test_build_is_deterministic_with_special_tokens_first():
    vocab = CaptionVocab.build(CAPTIONS)
    assert vocab.itos[:4] == list(SPECIAL_TOKENS)
    assert (vocab.pad_id, vocab.bos_id, vocab.eos_id, vocab.unk_id) == (0, 1, 2, 3)
    # "a" and "building" occur twice: most frequent first, ties alphabetical
    assert vocab.itos[4:6] == ["a", "building"]
    assert CaptionVocab.build(reversed(CAPTIONS)) == vocab
    assert len(CaptionVocab.build(CAPTIONS, min_count=2)) == 6


def test_encode_decode_round_trip():
    vocab = CaptionVocab.build(CAPTIONS)
    ids = vocab.encode("Two roads are built.", max_len=8)
    assert len(ids) == 8
    assert ids[0] == vocab.bos_id and ids[5] == vocab.eos_id and ids[6:] == [0, 0]
    assert vocab.decode(ids) == "two roads are built"


def test_encode_truncates_keeps_eos_and_maps_unknown_words():
    vocab = CaptionVocab.build(CAPTIONS)
    ids = vocab.encode("a new zebra crossing appears", max_len=4)
    assert ids == [vocab.bos_id, vocab.stoi["a"], vocab.stoi["new"], vocab.eos_id]
    assert vocab.decode(vocab.encode("a zebra", 5)) == "a <unk>"
    with pytest.raises(ValueError):
        vocab.encode("a", max_len=1)


def test_json_round_trip_and_validation():
    vocab = CaptionVocab.build(CAPTIONS)
    again = CaptionVocab.from_json(vocab.to_json())
    assert again == vocab and again.stoi == vocab.stoi
    assert CaptionVocab.from_itos(vocab.itos) == vocab
    with pytest.raises(ValueError, match="must start with"):
        CaptionVocab.from_json('{"itos": ["a", "b"]}')
    with pytest.raises(ValueError):
        CaptionVocab(["<pad>", "x"])
