"""predict_tiles tells the model the store's GSD: a native 0.3 m store reaches the VGM at the
model's 0.5 m, and objects come back in the tiles' pixels."""

from __future__ import annotations

import json
import logging

from changevg.cache import cached_model
from changevg.model import DEFAULT_MODEL
from flows.predict import PredictOptions, feed_gsd, predict_tiles
from tiling import TileOptions, build_tiles

BEFORE, AFTER = "2022-01-01/2022-12-31", "2024-01-01/2024-12-31"


def test_feed_gsd(caplog) -> None:
    model = str(DEFAULT_MODEL)
    assert feed_gsd({}, model) is None  # a store from before the GSD was recorded
    assert feed_gsd({"gsd": {"target": 0.5}}, model) == 0.5
    assert feed_gsd({"gsd": {"target": 0.3}}, model) == 0.3
    with caplog.at_level(logging.WARNING, logger="flows.predict"):
        assert feed_gsd({"gsd": {"target": 10.0}}, model) is None
    assert "coarser than the model accepts" in caplog.text


def test_native_store_is_resampled_per_tile(tmp_path, monkeypatch) -> None:
    from catalogs.pairing import search_pairs
    from catalogs.server import StacServer
    from catalogs.synth import synthesize_region

    region = synthesize_region(tmp_path / "r", size_km=0.1, seed=2, gsd=0.3)
    with StacServer([region.root]) as server:
        pair = search_pairs(
            server.url,
            collection=json.loads(region.collection_path.read_text())["id"],
            aoi=region.bbox_lonlat,
            before=BEFORE,
            after=AFTER,
        )
    store = tmp_path / "t.zarr"
    build_tiles(pair, store, options=TileOptions(gsd=None, gsd_range=(0.25, 1.0)))
    model = cached_model(str(DEFAULT_MODEL), "cpu")
    seen: list[tuple[int, ...]] = []
    describe = model.vgm.describe
    monkeypatch.setattr(
        model.vgm, "describe", lambda b, a, **kw: seen.append(tuple(b.shape[-2:])) or describe(b, a)
    )
    summary = predict_tiles(
        store, options=PredictOptions(device="cpu", all_tiles=True), progress=False
    )
    assert seen and set(seen) == {(154, 154)}  # 256 px of 0.3 m seen as 0.5 m
    for result in summary.results.values():
        assert all(o.bbox[2] <= 256 and o.bbox[3] <= 256 for o in result.objects)
    objects = [o for r in summary.results.values() for o in r.objects]
    print("OBJ", len(objects), max((o.bbox[2] for o in objects), default=None))
