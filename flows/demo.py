"""The demo: a synthetic region served by the embedded STAC API, paired and tiled.

Runs with no network and no data of your own. Until the model and inventory stages land it
stops after the Zarr tile store and says so.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from catalogs.pairing import ScenePair, search_pairs
from catalogs.server import StacServer
from catalogs.synth import SynthRegion, synthesize_region
from flows.settings import Settings
from tiling import TileStoreSummary, build_tiles

log = logging.getLogger(__name__)

BEFORE_WINDOW = "2022-01-01/2022-12-31"
AFTER_WINDOW = "2024-01-01/2024-12-31"


@dataclass(frozen=True)
class DemoResult:
    """Where the demo put things and what it found."""

    region: SynthRegion
    pair: ScenePair
    tiles: TileStoreSummary


def run_demo(
    out: str | Path,
    *,
    size_km: float = 2.0,
    seed: int = 0,
    settings: Settings | None = None,
    progress: bool | None = None,
) -> DemoResult:
    """Generate a region in ``out/region``, serve, pair and tile it into ``out/tiles.zarr``."""
    settings = settings or Settings()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    log.info("generating a %.1f km synthetic region (seed %d)", size_km, seed)
    region = synthesize_region(out / "region", size_km=size_km, seed=seed)
    with StacServer([region.root]) as server:
        log.info("serving it as a STAC API at %s", server.url)
        pair = search_pairs(
            server.url,
            collection=json.loads(region.collection_path.read_text())["id"],
            aoi=region.bbox_lonlat,
            before=BEFORE_WINDOW,
            after=AFTER_WINDOW,
            options=settings.search,
        )
    tiles = build_tiles(
        pair, out / "tiles.zarr", options=settings.tiles, name=region.name, progress=progress
    )
    return DemoResult(region=region, pair=pair, tiles=tiles)
