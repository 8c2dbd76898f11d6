"""Training-time augmentation: labels stay exact, date swaps flip the change type."""

import numpy as np
import pytest
from PIL import Image

from changevg.data import PairRecord, write_change_type, write_mask
from changevg.train._augment import (
    CHANGE_DEMOLISHED,
    CHANGE_NEW,
    NONE,
    AugmentOptions,
    augment_pair,
    photometric,
)
from changevg.train._data import pair_batch


def _pair(size: int = 64):
    rng = np.random.default_rng(0)
    before = rng.integers(60, 140, (3, size, size), dtype=np.uint8)
    after = before.copy()
    after[:, 8:24, 8:24] = 230  # a new roof, top left
    mask = np.zeros((size, size), np.uint8)
    mask[8:24, 8:24] = 2
    kind = np.where(mask > 0, CHANGE_NEW, 0).astype(np.uint8)
    return before, after, mask, kind


def test_no_augmentation_is_the_identity():
    before, after, mask, kind = _pair()
    out = augment_pair(before, after, mask, kind, np.random.default_rng(1), NONE)
    assert np.array_equal(out.before, before) and np.array_equal(out.after, after)
    assert np.array_equal(out.mask, mask) and np.array_equal(out.change_type, kind)


def test_swap_exchanges_dates_and_change_types():
    before, after, mask, kind = _pair()
    opts = AugmentOptions(**{**NONE.__dict__, "swap": 1.0})
    out = augment_pair(before, after, mask, kind, np.random.default_rng(1), opts)
    assert np.array_equal(out.before, after) and np.array_equal(out.after, before)
    assert set(np.unique(out.change_type[mask > 0])) == {CHANGE_DEMOLISHED}


def test_nuisance_only_pair_has_no_change_but_looks_different():
    before, after, mask, kind = _pair()
    opts = AugmentOptions(nochange=1.0, photometric=1.0, scale_prob=0.0)
    out = augment_pair(before, after, mask, kind, np.random.default_rng(3), opts)
    assert not out.mask.any() and not out.change_type.any()
    diff = np.abs(out.before.astype(int) - out.after.astype(int)).mean()
    assert diff > 2.0  # re-photographed: the dates differ although nothing changed


@pytest.mark.parametrize("seed", range(6))
def test_geometry_moves_masks_with_the_images(seed):
    before, after, mask, kind = _pair()
    opts = AugmentOptions(
        photometric=0.0, sensor=0.0, jpeg=0.0, shift_px=0.0, swap=0.0, nochange=0.0, scale_prob=1.0
    )
    out = augment_pair(before, after, mask, kind, np.random.default_rng(seed), opts)
    assert out.before.shape == before.shape and out.mask.shape == mask.shape
    roof = out.after.min(axis=0) >= 200  # where the bright roof ended up
    changed = out.mask > 0
    assert roof.sum() > 0 and changed.sum() > 0
    overlap = (roof & changed).sum() / max(changed.sum(), 1)
    assert overlap > 0.8, overlap
    assert set(np.unique(out.change_type[changed])) == {CHANGE_NEW}


def test_photometric_keeps_nodata_and_draws_differ():
    img = np.full((3, 32, 32), 120, np.uint8)
    img[:, :, :4] = 0  # nodata column
    a = photometric(img, np.random.default_rng(0), AugmentOptions(photometric=1.0, jpeg=1.0))
    b = photometric(img, np.random.default_rng(1), AugmentOptions(photometric=1.0, jpeg=1.0))
    assert (a[:, :, :4] == 0).all() and (a[:, :, 4:] > 0).all()
    assert not np.array_equal(a, b)


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="swap"):
        AugmentOptions(swap=1.5)
    with pytest.raises(ValueError, match="scale"):
        AugmentOptions(scale=(2.0, 1.0))


def test_pair_batch_relabels_from_the_augmented_mask(tmp_path):
    before, after, mask, kind = _pair()
    for name, img in (("a.png", before), ("b.png", after)):
        Image.fromarray(np.moveaxis(img, 0, -1)).save(tmp_path / name)
    write_mask(mask, tmp_path / "m.png")
    write_change_type(kind, tmp_path / "t.png")
    rec = PairRecord(
        "p",
        tmp_path / "a.png",
        tmp_path / "b.png",
        mask=tmp_path / "m.png",
        change_type=tmp_path / "t.png",
        captions=["a new building"],
        changed=True,
    )
    plain = pair_batch([rec])
    assert plain["change_type"].shape == (1, 64, 64) and "captions" not in plain
    swap = AugmentOptions(**{**NONE.__dict__, "swap": 1.0})
    got = pair_batch([rec], augment=swap, rng=np.random.default_rng(0))
    assert int(got["change_type"].max()) == CHANGE_DEMOLISHED
    assert all("demolished" in c or "removed" in c or "torn down" in c for c in got["captions"][0])
    gone = AugmentOptions(**{**NONE.__dict__, "nochange": 1.0})
    got = pair_batch([rec], augment=gone, rng=np.random.default_rng(0))
    assert got["changed"].tolist() == [0.0] and not got["mask"].any()
