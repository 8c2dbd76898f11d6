"""``changevg.eval.folder``: the A/ B/ label/ layout, label kinds, and the metrics' arithmetic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from changevg.data import DatasetError
from changevg.eval.folder import (
    evaluate_change_folder,
    read_change_folder,
    read_label,
)

DEFAULT = Path(__file__).parents[4] / "changevg" / "weights" / "default"


def _write(root: Path, name: str, label: np.ndarray, seed: int) -> None:
    rng = np.random.default_rng(seed)
    h, w = label.shape
    for sub in ("A", "B", "label"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    before = rng.integers(90, 140, (h, w, 3), dtype=np.uint8)
    after = before.copy()
    after[label > 0] = (200, 60, 50)  # red roofs where the label says "changed"
    Image.fromarray(before).save(root / "A" / f"{name}.png")
    Image.fromarray(after).save(root / "B" / f"{name}.png")
    Image.fromarray(label).save(root / "label" / f"{name}.png")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    label = np.zeros((128, 128), np.uint8)
    label[10:30, 10:30] = 255
    label[70:100, 80:110] = 255
    _write(tmp_path, "two", label, 0)
    _write(tmp_path, "none", np.zeros((128, 128), np.uint8), 1)
    return tmp_path


def test_reads_pairs_by_name(folder: Path) -> None:
    pairs = read_change_folder(folder)
    assert [p.name for p in pairs] == ["none", "two"]
    assert pairs[1].before == folder / "A" / "two.png"


def test_mismatched_names_are_listed(folder: Path) -> None:
    (folder / "B" / "two.png").rename(folder / "B" / "other.png")
    with pytest.raises(
        DatasetError, match=r"B/ lacks two.*A/ lacks other|A/ lacks other.*B/ lacks two"
    ):
        read_change_folder(folder)


def test_missing_subfolder_is_named(tmp_path: Path) -> None:
    (tmp_path / "A").mkdir()
    with pytest.raises(DatasetError, match="no B/ folder"):
        read_change_folder(tmp_path)


def test_label_kinds(tmp_path: Path) -> None:
    mci = np.zeros((8, 8), np.uint8)
    mci[0, :4], mci[1, :4] = 255, 128
    Image.fromarray(mci).save(tmp_path / "mci.png")
    mask, kind = read_label(tmp_path / "mci.png")
    assert kind == "mci" and (mask[0, :4] == 1).all() and (mask[1, :4] == 2).all()
    ones = (mci > 0).astype(np.uint8)
    Image.fromarray(ones).save(tmp_path / "ones.png")
    assert read_label(tmp_path / "ones.png")[1] == "binary"


def test_label_with_other_values_shows_histogram(tmp_path: Path) -> None:
    bad = np.zeros((8, 8), np.uint8)
    bad[0, 0], bad[0, 1] = 17, 200
    Image.fromarray(bad).save(tmp_path / "bad.png")
    with pytest.raises(DatasetError, match=r"values \{0: 62, 17: 1, 200: 1\}"):
        read_label(tmp_path / "bad.png")
    Image.fromarray((bad > 0).astype(np.uint8) * 128).save(tmp_path / "road_only.png")
    with pytest.raises(DatasetError, match="binary label has 0/255 or 0/1"):
        read_label(tmp_path / "road_only.png", "binary")


@pytest.fixture(scope="module")
def model():
    from changevg.model import ChangeVG

    return ChangeVG.load(DEFAULT, device="cpu")


def test_metrics_match_a_recount(folder: Path, model) -> None:
    """Pixel, tile and count figures are those of the VGM's own screen, recounted here."""
    metrics = evaluate_change_folder(model, folder, vlm=False, progress=False)
    pairs = read_change_folder(folder)
    from changevg.train._data import load_image

    images = [(load_image(p.before), load_image(p.after)) for p in pairs]
    descs = model.screen(images, gsd=model.gsd)  # at the model's GSD: fed at their own size
    tp = fp = fn = 0
    for p, d in zip(pairs, descs, strict=True):
        truth = np.asarray(Image.open(p.label)) > 0
        pred = d.mask > 0
        tp, fp, fn = (
            tp + (pred & truth).sum(),
            fp + (pred & ~truth).sum(),
            fn + (~pred & truth).sum(),
        )
    assert metrics["pixel"]["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert metrics["n"] == {"pairs": 2, "tiles": 2, "changed_tiles": 1}
    tile = metrics["tile"]["vgm"]
    assert tile["n_unchanged"] == 1 and tile["n_changed"] == 1
    assert tile["unchanged_called_unchanged"] == (0.0 if descs[0].changed else 1.0)
    vgm_n = [sum(d.counts.values()) for d in descs]
    assert metrics["count"]["building"]["vgm"]["mae"] == pytest.approx(
        (abs(vgm_n[0] - 0) + abs(vgm_n[1] - 2)) / 2
    )


def test_windows_and_gsd(folder: Path, model) -> None:
    metrics = evaluate_change_folder(model, folder, vlm=False, window=64, progress=False)
    assert metrics["n"]["tiles"] == 8  # 2 pairs x 4 windows
    assert metrics["n"]["changed_tiles"] == 2  # the two squares lie in two windows of "two"
    coarse = evaluate_change_folder(model, folder, vlm=False, gsd=1.0, progress=False)
    assert coarse["gsd"] == 1.0 and coarse["model_gsd"] == 0.5  # images doubled, masks back
    with pytest.raises(Exception, match="--gsd must be a positive number"):
        evaluate_change_folder(model, folder, vlm=False, gsd=-1, progress=False)
