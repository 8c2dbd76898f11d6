"""Catalogs: STAC search, scene pairing, the embedded STAC API and synthetic regions.

Public API:

- :func:`search_pairs` — search a STAC API and choose the before/after scenes for an AOI;
- :func:`pair_scenes` — the same choice over items you already have (no network);
- :class:`ScenePair`, :class:`SceneSide` — the data contract (JSON both ways);
- :class:`SearchOptions` — paging, timeouts, retries, a signing hook;
- :class:`StacServer` / :func:`serve_catalog` — a real STAC API on 127.0.0.1 for files;
- :func:`synthesize_region` — a synthetic before/after region with exact truth;
- :func:`parse_aoi`, :func:`parse_window` — validated user input.

This package knows nothing of models.


Names load on first use (PEP 562), so ``import catalogs.errors`` — and the ``changevg`` command
line — does not pay for the synthetic renderer or GeoPandas.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from catalogs._lazy import lazy_exports

if TYPE_CHECKING:
    from catalogs.aoi import DateWindow, parse_aoi, parse_window
    from catalogs.errors import CatalogError, InputError, ItemError, NoCoverageError
    from catalogs.pairing import ScenePair, SceneSide, pair_scenes, search_pairs
    from catalogs.search import SearchOptions, search_items
    from catalogs.server import StacServer, serve_catalog
    from catalogs.synth import SynthRegion, synthesize_region

_HOME = {
    "DateWindow": "aoi",
    "parse_aoi": "aoi",
    "parse_window": "aoi",
    "CatalogError": "errors",
    "InputError": "errors",
    "ItemError": "errors",
    "NoCoverageError": "errors",
    "ScenePair": "pairing",
    "SceneSide": "pairing",
    "pair_scenes": "pairing",
    "search_pairs": "pairing",
    "SearchOptions": "search",
    "search_items": "search",
    "StacServer": "server",
    "serve_catalog": "server",
    "SynthRegion": "synth",
    "synthesize_region": "synth",
}

__all__ = [
    "CatalogError",
    "DateWindow",
    "InputError",
    "ItemError",
    "NoCoverageError",
    "ScenePair",
    "SceneSide",
    "SearchOptions",
    "StacServer",
    "SynthRegion",
    "pair_scenes",
    "parse_aoi",
    "parse_window",
    "search_items",
    "search_pairs",
    "serve_catalog",
    "synthesize_region",
]


__getattr__, __dir__ = lazy_exports(__name__, _HOME, globals())
