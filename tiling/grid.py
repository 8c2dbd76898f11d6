"""The tile grid: one pixel grid for both dates, cut into fixed-size tiles.

The grid follows the *before* scene's native pixel grid (same CRS, resolution and pixel
alignment) so the before date is read without resampling; the after date is resampled onto it.
The grid is padded to a whole number of tiles, so every tile has the same shape.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from affine import Affine
from odc.geo.geobox import GeoBox
from shapely.geometry.base import BaseGeometry


@dataclass(frozen=True)
class Tile:
    """One tile of a :class:`TileGrid`: its index, id and pixel window in the grid."""

    index: int
    tile_id: str
    row: int
    col: int
    y_off: int
    x_off: int
    size: int

    @property
    def slices(self) -> tuple[slice, slice]:
        """Row and column slices of this tile in the full grid."""
        rows = slice(self.y_off, self.y_off + self.size)
        return rows, slice(self.x_off, self.x_off + self.size)


@dataclass(frozen=True)
class TileGrid:
    """A pixel grid (``geobox``) cut into ``n_rows`` x ``n_cols`` tiles of ``tile_size`` pixels.

    Neighbouring tiles share ``overlap`` pixels; the stride between tile origins is
    ``tile_size - overlap``.
    """

    geobox: GeoBox
    tile_size: int
    overlap: int
    n_rows: int
    n_cols: int
    prefix: str

    @property
    def stride(self) -> int:
        return self.tile_size - self.overlap

    @property
    def n_tiles(self) -> int:
        return self.n_rows * self.n_cols

    @property
    def transform(self) -> Affine:
        return self.geobox.affine

    @property
    def resolution(self) -> float:
        return abs(self.geobox.affine.a)

    def tile(self, index: int) -> Tile:
        """The tile at flat ``index`` (row-major)."""
        row, col = divmod(index, self.n_cols)
        return Tile(
            index=index,
            tile_id=f"{self.prefix}-{row}-{col}",
            row=row,
            col=col,
            y_off=row * self.stride,
            x_off=col * self.stride,
            size=self.tile_size,
        )

    def __iter__(self) -> Iterator[Tile]:
        return (self.tile(i) for i in range(self.n_tiles))

    def tile_transform(self, tile: Tile) -> Affine:
        """Affine transform of one tile's pixels in the grid CRS."""
        return self.transform @ Affine.translation(tile.x_off, tile.y_off)

    def blocks(self, tiles_per_block: int, cols: int | None = None) -> list[list[Tile]]:
        """Group tiles into blocks of ``tiles_per_block`` rows by ``cols`` tiles (default
        square), row-major.

        A block is read from the source scenes in one go, which amortises per-read overhead.
        """
        rows, cols = tiles_per_block, cols or tiles_per_block
        out = []
        for br in range(0, self.n_rows, rows):
            for bc in range(0, self.n_cols, cols):
                out.append(
                    [
                        self.tile(r * self.n_cols + c)
                        for r in range(br, min(br + rows, self.n_rows))
                        for c in range(bc, min(bc + cols, self.n_cols))
                    ]
                )
        return out


def make_grid(
    aoi: BaseGeometry,
    *,
    crs: str,
    resolution: float,
    anchor: tuple[float, float] = (0.0, 0.0),
    tile_size: int = 256,
    overlap: int = 0,
    prefix: str = "tile",
) -> TileGrid:
    """Build the tile grid covering ``aoi`` (given in ``crs``), snapped to a pixel lattice.

    Args:
        aoi: Area of interest in ``crs`` coordinates.
        crs: Grid CRS, e.g. ``"EPSG:32611"``.
        resolution: Pixel size in CRS units (square pixels).
        anchor: A pixel corner (x, y) of the lattice to snap to, e.g. the before scene's origin,
            so that the before scene is read without resampling.
        tile_size: Tile edge in pixels.
        overlap: Pixels shared by neighbouring tiles (``0 <= overlap < tile_size``).
        prefix: Tile id prefix; ids are ``{prefix}-{row}-{col}``.
    """
    if tile_size < 16:
        raise ValueError(f"tile_size must be at least 16 pixels, got {tile_size}")
    if not 0 <= overlap < tile_size:
        raise ValueError(
            f"overlap must be in [0, {tile_size}) for tile_size {tile_size}, got {overlap}"
        )
    if resolution <= 0:
        raise ValueError(f"resolution must be positive, got {resolution}")
    minx, miny, maxx, maxy = aoi.bounds
    ax, ay = anchor
    x0 = ax + math.floor((minx - ax) / resolution + 1e-9) * resolution
    y0 = ay + math.ceil((maxy - ay) / resolution - 1e-9) * resolution
    width = max(1, math.ceil((maxx - x0) / resolution - 1e-9))
    height = max(1, math.ceil((y0 - miny) / resolution - 1e-9))
    stride = tile_size - overlap
    n_cols = max(1, math.ceil(max(width - overlap, 1) / stride))
    n_rows = max(1, math.ceil(max(height - overlap, 1) / stride))
    shape = (n_rows * stride + overlap, n_cols * stride + overlap)
    geobox = GeoBox(shape, Affine(resolution, 0.0, x0, 0.0, -resolution, y0), crs)
    return TileGrid(geobox, tile_size, overlap, n_rows, n_cols, prefix)


def tile_origins(grid: TileGrid) -> tuple[np.ndarray, np.ndarray]:
    """Upper-left corner (x0, y0) of every tile in CRS units, in flat tile order."""
    tiles: Sequence[Tile] = list(grid)
    t = grid.transform
    x0 = np.array([t.c + tile.x_off * t.a for tile in tiles], dtype="float64")
    y0 = np.array([t.f + tile.y_off * t.e for tile in tiles], dtype="float64")
    return x0, y0
