"""``changevg eval`` on a change folder: metrics file, printed table, exit 2 on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from flows.cli import main

DEFAULT = Path(__file__).parents[3] / "changevg" / "weights" / "default"


def _folder(root: Path, *, label_value: int = 255) -> Path:
    rng = np.random.default_rng(0)
    for sub in ("A", "B", "label"):
        (root / sub).mkdir(parents=True)
    img = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    label = np.zeros((64, 64), np.uint8)
    label[8:24, 8:24] = label_value
    Image.fromarray(img).save(root / "A" / "t.png")
    Image.fromarray(img[::-1].copy()).save(root / "B" / "t.png")
    Image.fromarray(label).save(root / "label" / "t.png")
    return root


def test_eval_folder_writes_metrics(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _folder(tmp_path / "cd")
    out = tmp_path / "m.json"
    rc = main(["eval", "--data", str(folder), "--out", str(out), "--model", str(DEFAULT),
               "--vgm-only", "--device", "cpu"])  # fmt: skip
    assert rc == 0
    metrics = json.loads(out.read_text())
    assert metrics["n"] == {"pairs": 1, "tiles": 1, "changed_tiles": 1}
    assert metrics["labels"] == "binary" and "vlm" not in metrics["tile"]
    assert "changed pixels (VGM mask)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--gsd", "0"], "--gsd must be a positive number"),
        (["--gsd", "abc"], "--gsd must be a number"),
    ],
)
def test_eval_folder_bad_options_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    folder = _folder(tmp_path / "cd")
    rc = main(["eval", "--data", str(folder), "--out", str(tmp_path / "m.json"), *args])
    assert rc == 2
    assert message in capsys.readouterr().err


def test_eval_folder_bad_labels_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _folder(tmp_path / "cd", label_value=77)
    rc = main(["eval", "--data", str(folder), "--out", str(tmp_path / "m.json"),
               "--model", str(DEFAULT), "--device", "cpu"])  # fmt: skip
    assert rc == 2
    assert "values {0: 3840, 77: 256}" in capsys.readouterr().err
