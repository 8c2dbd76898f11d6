from fractions import Fraction

import numpy as np
import pytest
from shapely.geometry import Polygon

from changevg.objects import cells, counts, grid_cell, mask_to_objects, summarize
from changevg.result import GRID_CELLS, ChangeObject

ROAD, BUILDING = 1, 2


def _rect(mask, value, col0, row0, col1, row1):
    mask[row0:row1, col0:col1] = value


def test_known_rectangles_give_counts_cells_bboxes_and_polygons():
    mask = np.zeros((90, 90), np.uint8)
    _rect(mask, BUILDING, 5, 10, 25, 20)  # centroid (15, 15): top left corner
    _rect(mask, BUILDING, 70, 70, 80, 85)  # centroid (75, 77.5): lower right corner
    _rect(mask, ROAD, 0, 40, 90, 48)  # full-width road, centroid (45, 44): center
    objects = mask_to_objects(mask)

    assert [o.cls for o in objects] == ["road", "building", "building"]
    road, b1, b2 = objects
    assert road.bbox == (0, 40, 90, 48) and road.area_px == 720 and road.cell == "center"
    assert b1.bbox == (5, 10, 25, 20) and b1.area_px == 200 and b1.cell == "top left corner"
    assert b2.bbox == (70, 70, 80, 85) and b2.area_px == 150 and b2.cell == "lower right corner"
    for obj in objects:
        poly = Polygon(obj.polygon)
        assert poly.is_valid
        assert poly.area == obj.area_px
        assert poly.bounds == obj.bbox
        assert obj.score == 1.0
    assert counts(objects) == {"building": 2, "road": 1}
    assert cells(objects) == ["top left corner", "center", "lower right corner"]


def test_empty_mask_has_no_objects():
    objects = mask_to_objects(np.zeros((16, 16), np.uint8))
    assert objects == []
    assert counts(objects) == {"building": 0, "road": 0}
    assert cells(objects) == []
    assert summarize(objects) == ""


def test_min_pixels_drops_small_regions():
    mask = np.zeros((32, 32), np.uint8)
    _rect(mask, BUILDING, 0, 0, 4, 4)  # 16 px: kept at the default threshold
    _rect(mask, BUILDING, 20, 20, 23, 25)  # 15 px: dropped
    assert [o.area_px for o in mask_to_objects(mask)] == [16]
    assert [o.area_px for o in mask_to_objects(mask, min_pixels=1)] == [16, 15]


def test_diagonal_pixels_are_one_object_with_a_valid_covering_polygon():
    mask = np.zeros((8, 8), np.uint8)
    mask[1, 1] = mask[2, 2] = mask[2, 3] = BUILDING  # 8-connected, pinched ring in GDAL
    (obj,) = mask_to_objects(mask, min_pixels=1)
    poly = Polygon(obj.polygon)
    assert obj.area_px == 3 and obj.bbox == (1, 1, 4, 3)
    assert poly.is_valid
    assert poly.area == pytest.approx(3, abs=1e-3)
    assert poly.buffer(1e-9).contains(Polygon([(1, 1), (2, 1), (2, 2), (1, 2)]))


def test_holes_are_filled_in_polygon_but_not_in_area():
    mask = np.zeros((20, 20), np.uint8)
    _rect(mask, ROAD, 2, 2, 12, 12)
    _rect(mask, 0, 5, 5, 7, 7)
    (obj,) = mask_to_objects(mask)
    assert obj.area_px == 96
    assert Polygon(obj.polygon).area == 100


def test_score_is_mean_probability_of_the_class():
    mask = np.zeros((10, 10), np.uint8)
    _rect(mask, BUILDING, 0, 0, 5, 4)
    probs = np.zeros((3, 10, 10), np.float32)
    probs[2, :2] = 0.9
    probs[2, 2:] = 0.6
    (obj,) = mask_to_objects(mask, probs=probs, min_pixels=1)
    assert obj.score == pytest.approx(0.75)


def test_grid_cell_tie_rules():
    # half-open thirds: a point on a third line goes right / down
    assert grid_cell(1.999, 0, 6, 6) == "top left corner"
    assert grid_cell(2, 0, 6, 6) == "top"
    assert grid_cell(4, 4, 6, 6) == "lower right corner"
    assert grid_cell(6, 6, 6, 6) == "lower right corner"  # far edge clamps
    assert grid_cell(0, 3, 6, 6) == "left"
    assert grid_cell(Fraction(256, 3), Fraction(512, 3), 256, 256) == "lower"
    assert [grid_cell(c + 0.5, r + 0.5, 3, 3) for r in range(3) for c in range(3)] == list(
        GRID_CELLS
    )


def test_centroid_on_a_third_line_is_exact():
    mask = np.zeros((6, 6), np.uint8)
    mask[0:2, 1:3] = BUILDING  # pixel centres 1.5, 2.5 -> centroid column exactly 2 = 6/3
    (obj,) = mask_to_objects(mask, min_pixels=1)
    assert obj.cell == "top"


def test_invalid_inputs_raise():
    with pytest.raises(ValueError, match="2-D"):
        mask_to_objects(np.zeros((1, 4, 4), np.uint8))
    with pytest.raises(ValueError, match="values"):
        mask_to_objects(np.full((4, 4), 3, np.uint8))
    with pytest.raises(ValueError, match="probs"):
        mask_to_objects(np.zeros((4, 4), np.uint8), probs=np.zeros((3, 5, 5)))


def test_summarize_groups_by_class_change_and_cell():
    def obj(cls, cell, change="new"):
        return ChangeObject(cls, [], (0, 0, 1, 1), 1, 1.0, cell, change)

    objects = [obj("road", "center"), obj("building", "top left corner")]
    objects.append(obj("building", "top left corner"))
    assert summarize(objects) == (
        "two new buildings in the top left corner and a new road in the center"
    )
    assert summarize([obj("road", "lower")]) == "a new road in the lower part"
    three = [obj("building", "left"), obj("building", "right"), obj("road", "top")]
    assert summarize(three) == (
        "a new building on the left, a new building on the right and a new road in the top part"
    )
    mixed = [
        obj("building", "left", "demolished"),
        obj("building", "right"),
        obj("road", "top", "removed"),
    ]
    assert summarize(mixed) == (
        "a new building on the right, a demolished building on the left and a removed road "
        "in the top part"
    )
    # "new" only for what is known to be new
    assert summarize([obj("building", "center", None)]) == "a changed building in the center"


def test_change_type_from_appear_probability():
    from changevg.objects import change_counts

    mask = np.zeros((12, 12), np.uint8)
    mask[0:4, 0:4] = BUILDING
    mask[8:12, 8:12] = BUILDING
    mask[0:2, 8:12] = 1  # road
    appear = np.zeros((12, 12))
    appear[0:4, 0:4] = 0.9  # appeared: new
    appear[8:12, 8:12] = 0.2  # gone: demolished
    appear[0:2, 8:12] = 0.1  # a road that is gone: removed
    objects = mask_to_objects(mask, min_pixels=1, appear=appear)
    got = {(o.cls, o.bbox): o.change for o in objects}
    assert got == {
        ("building", (0, 0, 4, 4)): "new",
        ("building", (8, 8, 12, 12)): "demolished",
        ("road", (8, 0, 12, 2)): "removed",
    }
    assert change_counts(objects) == {
        "building": {"new": 1, "demolished": 1},
        "road": {"new": 0, "removed": 1},
    }
    assert all(o.change is None for o in mask_to_objects(mask, min_pixels=1))
    with pytest.raises(ValueError, match="appear"):
        mask_to_objects(mask, appear=np.zeros((3, 3)))


def test_building_strips_along_a_road_become_road():
    from changevg.objects import relabel_road_edges

    mask = np.zeros((40, 40), np.uint8)
    mask[18:22, :] = 1  # a road
    mask[16:18, 5:35] = 2  # a strip painted along its edge
    mask[2:10, 2:10] = 2  # a house away from the road
    mask[23:31, 20:28] = 2  # a house next to the road: one row of 8 touches the margin
    out = relabel_road_edges(mask)
    assert (out[16:18, 5:35] == 1).all()
    assert (out[2:10, 2:10] == 2).all() and (out[23:31, 20:28] == 2).all()
    assert (mask[16:18, 5:35] == 2).all()  # input untouched
    only_houses = np.where(mask == 1, 0, mask)
    assert (
        relabel_road_edges(only_houses) is only_houses
        or (relabel_road_edges(only_houses) == only_houses).all()
    )
