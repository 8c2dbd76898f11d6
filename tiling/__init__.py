"""Tiling: both dates of a scene pair on one grid, cut into tiles, written to Zarr.

Public API:

- :func:`build_tiles` — scene pair → resumable Zarr v3 tile store (DESIGN.md §2);
- :class:`TileOptions` — tile size, overlap, registration, nodata policy;
- :func:`open_tiles` — open a store; its ``.tiles`` accessor georeferences any tile;
- :func:`plan_grid` — the tile grid a pair would get, without reading pixels.
"""

from tiling import accessor as _accessor  # noqa: F401  (registers the .tiles accessor)
from tiling.build import TileOptions, TileStoreSummary, build_tiles, plan_grid
from tiling.errors import TilingError
from tiling.grid import Tile, TileGrid, make_grid
from tiling.register import measure_shift
from tiling.store import open_tiles

__all__ = [
    "Tile",
    "TileGrid",
    "TileOptions",
    "TileStoreSummary",
    "TilingError",
    "build_tiles",
    "make_grid",
    "measure_shift",
    "open_tiles",
    "plan_grid",
]
