"""How far a run's inventory agrees with a synthetic region's exact truth.

The truth is judged by the rules the model's labels were made with (``changevg.data.annotate``):
per tile, the truth polygons are rasterized onto the tile's pixels, pixels without data in
either date are cleared (no change can be seen there), and connected regions of at least
``min_pixels`` are the true change objects.  A tile is truly changed when it has one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

__all__ = ["TruthAgreement", "truth_agreement"]


@dataclass(frozen=True)
class TruthAgreement:
    """Tile-level change detection and region-level building counts against the truth."""

    tiles: int
    true_positive: int
    false_positive: int
    false_negative: int
    buildings_true: int
    buildings_found: int

    @property
    def tile_f1(self) -> float:
        tp, fp, fn = self.true_positive, self.false_positive, self.false_negative
        return 1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)

    @property
    def building_error(self) -> float:
        """``|found - true| / true`` (0 when both are 0)."""
        if self.buildings_true == 0:
            return 0.0 if self.buildings_found == 0 else float("inf")
        return abs(self.buildings_found - self.buildings_true) / self.buildings_true

    def __str__(self) -> str:
        return (
            f"tile-level change F1 {self.tile_f1:.3f} ({self.true_positive} TP, "
            f"{self.false_positive} FP, {self.false_negative} FN over {self.tiles} tiles); "
            f"changed buildings {self.buildings_found} found vs {self.buildings_true} true "
            f"({self.building_error:.1%} error)"
        )


def truth_agreement(
    store: Any,
    truth: gpd.GeoDataFrame,
    tiles: pd.DataFrame,
    objects: pd.DataFrame,
    *,
    min_pixels: int = 64,
) -> TruthAgreement:
    """Compare a run's ``tiles``/``objects`` rows with ``truth`` over the tiles of ``store``.

    Args:
        store: The run's tile store (path or opened dataset).
        truth: ``truth.parquet`` rows (``catalogs.synth.load_truth``).
        tiles: The run's tile rows (``tile_id``, ``changed``); only these tiles are scored.
        objects: The run's object rows (``tile_id`` and ``class`` or ``cls``).
        min_pixels: Smallest true change region (the model's ``min_object_px``).
    """
    from catalogs.synth import rasterize_truth
    from changevg.objects import mask_to_objects
    from tiling import open_tiles

    ds = open_tiles(str(store)) if isinstance(store, str) or hasattr(store, "__fspath__") else store
    truth = truth.to_crs(ds.tiles.crs)
    size = int(ds.attrs["tile_size"])
    cls = objects["class"] if "class" in objects else objects.get("cls", pd.Series(dtype=str))
    found = objects[cls.to_numpy() == "building"] if len(objects) else objects
    changed = dict(zip(tiles["tile_id"], tiles["changed"].astype(bool), strict=True))
    tp = fp = fn = true_buildings = 0
    for tile_id, said in changed.items():
        i = ds.tiles.index(tile_id)
        near = truth[truth.intersects(ds.tiles.footprint(i))]
        mask = rasterize_truth(near, transform=ds.tiles.transform(i), shape=(size, size))
        image = ds["image"][i].values
        mask[(image[0] == 0).all(axis=0) | (image[1] == 0).all(axis=0)] = 0
        objs = mask_to_objects(mask, min_pixels=min_pixels)
        true_buildings += sum(1 for o in objs if o.cls == "building")
        really = bool(objs)
        tp += said and really
        fp += said and not really
        fn += really and not said
    return TruthAgreement(
        tiles=len(changed),
        true_positive=tp,
        false_positive=fp,
        false_negative=fn,
        buildings_true=true_buildings,
        buildings_found=int(np.count_nonzero(found["tile_id"].isin(changed.keys())))
        if len(found)
        else 0,
    )
