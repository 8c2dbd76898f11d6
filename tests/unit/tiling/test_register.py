import numpy as np
import pytest
from scipy import ndimage

from tiling.register import measure_shift


@pytest.fixture(scope="module")
def texture() -> np.ndarray:
    rng = np.random.default_rng(3)
    return ndimage.gaussian_filter(rng.random((3, 420, 420)), (0, 2, 2)).astype("float32") * 255


@pytest.mark.parametrize(("dx", "dy"), [(0.0, 0.0), (0.7, -1.2), (1.5, 0.3), (-0.4, 0.9)])
def test_recovers_subpixel_shift(texture, dx, dy):
    moved = ndimage.shift(texture, (0, dy, dx), order=3)
    # an illumination change between dates must not matter
    got = measure_shift(texture[:, 10:410, 10:410], moved[:, 10:410, 10:410] * 0.7 + 30)
    assert got == pytest.approx((dx, dy), abs=0.1)


def test_masked_pixels_are_ignored(texture):
    moved = ndimage.shift(texture, (0, 0.5, -0.8), order=3)
    valid = np.ones(texture.shape[1:], bool)
    valid[:, 300:] = False
    moved[:, :, 300:] = 0  # nodata in the after date
    got = measure_shift(texture, moved, valid=valid)
    assert got == pytest.approx((-0.8, 0.5), abs=0.15)
