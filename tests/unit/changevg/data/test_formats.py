import json
import re

import numpy as np
import pytest
from PIL import Image

from changevg.data import (
    DatasetError,
    pairs_from_records,
    read_changeimti,
    read_levir_cc,
    read_mask,
    record_to_json,
    write_changeimti,
    write_mask,
)


def test_changeimti_round_trip_and_pair_labels(tmp_path):
    images = ["images/p_A.png", "images/p_B.png"]
    records = [
        record_to_json(
            "p-caption",
            images,
            [
                (
                    "Please briefly describe the changes in these two images.",
                    "A road is built on the left.",
                )
            ],
            task="caption",
            mask="masks/p.png",
        ),
        record_to_json(
            "p-yes",
            images,
            [
                (
                    "Are there any changes to the roads or buildings in "
                    "the two images? Please answer yes or no.",
                    "Yes",
                )
            ],
        ),
        record_to_json(
            "p-dialogue",
            images,
            [
                ("How many new roads are there in the two images?", "1"),
                ("How many new buildings are there in the two images?", "0"),
            ],
        ),
    ]
    path = write_changeimti(records, tmp_path / "set.json")
    assert json.loads(path.read_text())[0]["conversations"][0]["value"].startswith("<image><image>")
    read = read_changeimti(path)
    assert [len(r.turns) for r in read] == [1, 1, 2]
    assert "<image>" not in read[0].turns[0].question
    assert read[0].before == tmp_path / "images/p_A.png"
    (pair,) = pairs_from_records(read)
    assert pair.captions == ["A road is built on the left."]
    assert pair.changed is True
    assert pair.counts == {"road": 1, "building": 0}
    assert pair.mask == tmp_path / "masks/p.png"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ('[{"id": 1,}]', "line 1"),
        ('{"a": 1}', "list"),
        ('[{"id": "x", "images": ["a.png"], "conversations": []}]', "'images'"),
        ('[{"id": "x", "images": ["a", "b"]}]', "'conversations'"),
        (
            '[{"id": "x", "images": ["a", "b"], "conversations": '
            '[{"from": "gpt", "value": "q"}, {"from": "gpt", "value": "a"}]}]',
            "conversations[0].from",
        ),
    ],
)
def test_malformed_datasets_name_the_line_or_field(tmp_path, text, message):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(DatasetError, match=re.escape(message)) as err:
        read_changeimti(path)
    assert str(path) in str(err.value)


def test_levir_mask_coding_round_trips(tmp_path):
    m = np.zeros((8, 8), np.uint8)
    m[1, 1], m[2, 2] = 1, 2
    write_mask(m, tmp_path / "m.png")
    raw = np.asarray(Image.open(tmp_path / "m.png"))
    assert raw[1, 1] == 128 and raw[2, 2] == 255
    assert np.array_equal(read_mask(tmp_path / "m.png"), m)


def test_levir_cc_reader(tmp_path):
    doc = {
        "images": [
            {
                "filepath": "test",
                "filename": "test_000001.png",
                "split": "test",
                "changeflag": 1,
                "sentences": [{"raw": " a road is built "}, {"raw": "a new road appears"}],
            },
            {
                "filepath": "train",
                "filename": "train_000002.png",
                "split": "train",
                "changeflag": 0,
                "sentences": [{"raw": "the scene is the same as before"}],
            },
        ]
    }
    path = tmp_path / "LevirCCcaptions.json"
    path.write_text(json.dumps(doc))
    pairs = read_levir_cc(path, tmp_path / "images", split="test", masks=True)
    assert len(pairs) == 1
    (p,) = pairs
    assert p.captions == ["a road is built", "a new road appears"] and p.changed is True
    assert p.before == tmp_path / "images/test/A/test_000001.png"
    assert p.mask == tmp_path / "images/test/label/test_000001.png"
    path.write_text(json.dumps({"images": [{"filename": "x.png"}]}))
    with pytest.raises(DatasetError, match="images\\[0\\]"):
        read_levir_cc(path, tmp_path)
