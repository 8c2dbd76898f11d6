"""Change objects cut by tile edges, joined back into features.

The VGM finds objects tile by tile, so a building that straddles a tile edge is two rows of the
``objects`` table, one per tile.  Region-level questions ("how many new buildings?") want it
once.  Pieces in different tiles of the same class that lie within half a pixel of each other
are what 8-connected labelling of the whole region's mask would have joined (two objects that
are not connected are at least one pixel apart), so they get one ``feature_id``: the smallest
``object_id`` among them.  Rows are never merged or dropped; count ``DISTINCT feature_id`` for
features, rows for per-tile objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import shapely

__all__ = ["link_features"]


def _find(parent: list[int], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def link_features(objects: Sequence[Any], *, pixel_size: float) -> list[Any]:
    """``objects`` (``ObjectRow``s) with ``feature_id`` set; pieces of one feature share it.

    Args:
        objects: Rows of one tile store, with ``tile_id``, ``object_id``, ``cls``, ``geometry``
            in the store's CRS.
        pixel_size: The store's pixel size in CRS units.
    """
    if pixel_size <= 0:
        raise ValueError(f"pixel_size must be positive, got {pixel_size}")
    objects = list(objects)
    if not objects:
        return []
    geoms = np.array([o.geometry for o in objects], dtype=object)
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="dwithin", distance=0.5 * pixel_size)
    parent = list(range(len(objects)))
    for i, j in zip(left.tolist(), right.tolist(), strict=True):
        a, b = objects[i], objects[j]
        if i < j and a.tile_id != b.tile_id and a.cls == b.cls:
            parent[_find(parent, j)] = _find(parent, i)
    groups: dict[int, str] = {}
    for i, o in enumerate(objects):
        root = _find(parent, i)
        groups[root] = min(groups.get(root, o.object_id), o.object_id)
    return [replace(o, feature_id=groups[_find(parent, i)]) for i, o in enumerate(objects)]
