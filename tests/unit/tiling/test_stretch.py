import numpy as np

from tiling.load import Stretch


def test_none_stretch_keeps_uint8_and_zeroes_nodata():
    data = np.full((3, 4, 4), 77, dtype="uint8")
    mask = np.zeros((4, 4), bool)
    mask[0, 0] = True
    out = Stretch(method="none").apply(data, mask)
    assert out.dtype == np.uint8
    assert out[:, 0, 0].tolist() == [0, 0, 0]
    assert (out[:, 1:, :] == 77).all()
    assert data[0, 0, 0] == 77  # input untouched


def test_percentile_stretch_maps_low_high_to_1_255():
    s = Stretch(
        method="percentile-linear", low=(100.0,) * 3, high=(1100.0,) * 3, source_dtype="uint16"
    )
    data = np.array([50, 100, 600, 1100, 5000], dtype="uint16").reshape(1, 1, 5).repeat(3, 0)
    out = s.apply(data, np.zeros((1, 5), bool))
    assert out[0, 0].tolist() == [1, 1, 128, 255, 255]


def test_stretch_round_trips_through_dict():
    s = Stretch(
        method="percentile-linear", low=(1.0, 2.0, 3.0), high=(4.0, 5.0, 6.0), source_dtype="uint16"
    )
    assert Stretch.from_dict(s.to_dict()) == s
