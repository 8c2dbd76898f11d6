"""`changevg predict/ask/eval` on real files, including bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from PIL import Image
from rasterio.transform import from_origin

from changevg.imageio import ImagePairError, read_pair
from flows.cli import main


@pytest.fixture
def pngs(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)
    Image.fromarray(a).save(tmp_path / "a.png")
    Image.fromarray(a[::-1].copy()).save(tmp_path / "b.png")
    Image.fromarray(a[:200]).save(tmp_path / "small.png")
    (tmp_path / "notes.txt").write_text("not an image")
    return tmp_path


def test_predict_json_is_a_change_result(tiny_models, pngs, capsys):
    code = main(
        [
            "predict",
            "--before",
            str(pngs / "a.png"),
            "--after",
            str(pngs / "b.png"),
            "--model",
            str(tiny_models[1]),
            "--device",
            "cpu",
            "--json",
        ]
    )
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert {
        "changed",
        "change_score",
        "caption",
        "counts",
        "locations",
        "objects",
        "answers",
        "unparsed",
    } <= set(doc)


def test_ask_free_text_is_flagged(tiny_models, pngs, capsys):
    code = main(
        [
            "ask",
            "--before",
            str(pngs / "a.png"),
            "--after",
            str(pngs / "b.png"),
            "--model",
            str(tiny_models[1]),
            "--device",
            "cpu",
            "What colour is the sky?",
        ]
    )
    assert code == 0
    assert "free-text question" in capsys.readouterr().err


def test_ask_without_question_holds_a_conversation(tiny_models, pngs, capsys, monkeypatch):
    answers = iter(["How many new buildings are there in the two images?", "Where?", ""])
    monkeypatch.setattr("builtins.input", lambda _: next(answers))
    code = main(
        [
            "ask",
            "--before",
            str(pngs / "a.png"),
            "--after",
            str(pngs / "b.png"),
            "--model",
            str(tiny_models[1]),
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    assert capsys.readouterr().out.count("changevg> ") == 2


@pytest.mark.parametrize(
    ("before", "after", "message"),
    [
        ("a.png", "small.png", "same size"),
        ("a.png", "notes.txt", "notes.txt"),
        ("a.png", "missing.png", "missing.png"),
    ],
)
def test_bad_image_pairs_are_usage_errors(pngs, before, after, message, capsys):
    code = main(["predict", "--before", str(pngs / before), "--after", str(pngs / after)])
    assert code == 2
    assert message in capsys.readouterr().err


def test_geotiffs_in_different_crs_are_aligned(tmp_path):
    data = np.random.default_rng(1).integers(1, 255, (3, 64, 64), dtype=np.uint8)
    profile = dict(driver="GTiff", width=64, height=64, count=3, dtype="uint8")
    with rasterio.open(
        tmp_path / "b.tif",
        "w",
        crs="EPSG:32611",
        transform=from_origin(500000, 3750000, 0.5, 0.5),
        **profile,
    ) as dst:
        dst.write(data)
    with rasterio.open(
        tmp_path / "a.tif",
        "w",
        crs="EPSG:3857",
        transform=from_origin(-12935000, 4028000, 0.6, 0.6),
        **profile,
    ) as dst:
        dst.write(data)
    before, after = read_pair(tmp_path / "b.tif", tmp_path / "a.tif")
    assert before.shape == after.shape == (3, 64, 64)
    with pytest.raises(ImagePairError, match="georeferenced"):
        Image.fromarray(np.moveaxis(data, 0, -1)).save(tmp_path / "p.png")
        read_pair(tmp_path / "b.tif", tmp_path / "p.png")


def test_eval_cli_writes_metrics(tiny_models, tiny_dataset, tmp_path, capsys):
    out = tmp_path / "metrics.json"
    code = main(
        [
            "eval",
            "--data",
            str(tiny_dataset.files["val"]),
            "--model",
            str(tiny_models[1]),
            "--device",
            "cpu",
            "--out",
            str(out),
            "--limit",
            "3",
            "--predictions",
            str(tmp_path / "pred.jsonl"),
        ]
    )
    assert code == 0
    metrics = json.loads(out.read_text())
    assert metrics["n"]["pairs"] == 3
    assert "S*m" in capsys.readouterr().out
    rows = [json.loads(line) for line in (tmp_path / "pred.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and len({r["pair_id"] for r in rows}) == 3
    # the rows are what was scored: the labels of those pairs, None exactly where unparsed
    labels = {r["pair_id"]: r for r in json.loads(tiny_dataset.files["val"].read_text())}
    for row in rows:
        assert row["true"]["counts"] == labels[row["pair_id"]]["counts"]
        assert row["true"]["changed"] == labels[row["pair_id"]]["changed"]
        unparsed = set(row["unparsed"])
        assert (row["pred"]["counts"]["building"] is None) == ("count_building" in unparsed)
        assert (row["pred"]["changed"] is None) == ("yes_no" in unparsed)
    parsed = sum(r["pred"]["counts"]["building"] is not None for r in rows)
    assert metrics["n"]["counting"]["building"] == parsed
    assert all(set(r["vgm_counts"]) >= {"building", "road"} for r in rows)
    assert all(set(r["answers"]) >= {"caption", "yes_no"} for r in rows)


def test_eval_on_a_malformed_dataset_names_the_field(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('[{"id": "x"}]')
    assert main(["eval", "--data", str(bad), "--out", str(tmp_path / "m.json")]) == 2
    assert "'images'" in capsys.readouterr().err
