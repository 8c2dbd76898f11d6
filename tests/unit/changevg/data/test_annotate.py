import numpy as np
import pytest

from changevg.data.annotate import CHANGE_DEMOLISHED, NO_CHANGE_CAPTIONS, annotate_mask


def _mask():
    m = np.zeros((256, 256), np.uint8)
    m[10:30, 10:30] = 2  # building, top left
    m[10:30, 50:70] = 2  # building, top left
    m[200:250, 100:110] = 1  # road, bottom
    return m


def test_counts_cells_and_captions_follow_the_mask():
    ann = annotate_mask(_mask(), rng=np.random.default_rng(0))
    assert ann.changed is True
    assert ann.counts == {"building": 2, "road": 1}
    assert ann.cells == ["top left corner", "lower"]
    assert len(ann.captions) == 5 and len(set(ann.captions)) == 5
    for caption in ann.captions:
        assert caption.startswith("two ")
        assert "top left corner" in caption and "road" in caption and "bottom" in caption


def test_demolitions_are_described_as_such():
    m = _mask()
    change = np.zeros_like(m)
    change[m == 2] = CHANGE_DEMOLISHED
    ann = annotate_mask(m, change_type=change, rng=np.random.default_rng(1))
    assert all(any(w in c for w in ("demolished", "removed", "torn down")) for c in ann.captions)
    assert ann.counts["building"] == 2  # counted as changed buildings, as in LEVIR-MCI
    kinds = {(o.cls, o.change) for o in ann.objects}
    assert kinds == {("building", "demolished"), ("road", "new")}
    assert {o.change for o in annotate_mask(m).objects} == {None}  # no change-type raster


def test_no_change_pairs_get_no_change_captions():
    ann = annotate_mask(np.zeros((64, 64), np.uint8), rng=np.random.default_rng(2))
    assert ann.changed is False and ann.counts == {"building": 0, "road": 0}
    assert ann.cells == [] and set(ann.captions) <= set(NO_CHANGE_CAPTIONS)


def test_slivers_below_min_pixels_are_not_objects():
    m = np.zeros((64, 64), np.uint8)
    m[0:2, 0:3] = 2
    assert annotate_mask(m, min_pixels=16).changed is False


@pytest.mark.parametrize("seed", [0, 1])
def test_captions_are_deterministic_per_seed(seed):
    a = annotate_mask(_mask(), rng=np.random.default_rng(seed)).captions
    b = annotate_mask(_mask(), rng=np.random.default_rng(seed)).captions
    assert a == b
