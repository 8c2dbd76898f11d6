"""Pieces of one change feature cut by tile edges share a feature_id; nothing else does."""

from __future__ import annotations

import pytest
from shapely.geometry import box

from flows.inventory import ObjectRow
from flows.inventory.features import link_features


def _row(tile: str, k: int, cls: str, geom) -> ObjectRow:
    return ObjectRow("r", "reg", tile, f"{tile}-{k}", cls, geom.area, 0.9, "center", geom)


def _ids(rows):
    return {r.object_id: r.feature_id for r in rows}


def test_pieces_across_edges_join_and_others_do_not():
    # tiles of 10 x 10 units (pixel size 1): A = [0, 10], B = [10, 20] to its right,
    # C = [0, 10] x [10, 20] below A, D diagonal to A
    rows = [
        _row("A", 0, "building", box(7, 2, 10, 5)),
        _row("B", 0, "building", box(10.000001, 3, 12, 6)),  # float noise on the shared edge
        _row("B", 1, "road", box(10, 0, 11, 2)),  # touches A-0 only at a corner, other class
        _row("B", 2, "building", box(11, 6, 13, 8)),  # touches B-0, but the same tile
        _row("C", 0, "building", box(7, 10, 9, 12)),  # below A-0? no: 5 units apart
        _row("C", 1, "building", box(0, 10, 2, 12)),
        _row("A", 1, "building", box(0, 6, 2, 9)),  # one pixel above C-1: separate
        _row("D", 0, "building", box(10, 10, 12, 12)),  # corner-touches C-0? no (7..9)
        _row("C", 2, "building", box(8, 13, 10, 14)),
        _row("D", 1, "building", box(10, 14, 11, 15)),  # corner to C-2: 8-connected
    ]
    got = _ids(link_features(rows, pixel_size=1.0))
    assert got["A-0"] == got["B-0"] == "A-0"
    assert got["C-2"] == got["D-1"] == "C-2"
    assert got["B-2"] == "B-2"  # same-tile pieces are already separate objects by labelling
    for single in ("B-1", "C-0", "C-1", "A-1", "D-0"):
        assert got[single] == single


def test_chains_across_three_tiles_take_the_smallest_id():
    rows = [
        _row("t2", 0, "road", box(20, 4, 25, 5)),
        _row("t1", 0, "road", box(15, 4, 20, 5)),
        _row("t0", 0, "road", box(8, 4, 15, 5)),
    ]
    assert set(_ids(link_features(rows, pixel_size=1.0)).values()) == {"t0-0"}


def test_input_rows_are_not_changed_and_bad_pixel_size():
    rows = [_row("A", 0, "building", box(0, 0, 1, 1))]
    out = link_features(rows, pixel_size=0.5)
    assert rows[0].feature_id is None and out[0].feature_id == "A-0"
    assert link_features([], pixel_size=1.0) == []
    with pytest.raises(ValueError, match="pixel_size"):
        link_features(rows, pixel_size=0)
