"""Cutting read blocks into tiles and writing them (the work each worker does)."""

from __future__ import annotations

from typing import Any

import numpy as np

from tiling.grid import Tile, TileGrid
from tiling.load import Stretch, SubpixelShift, invalid_pixels
from tiling.store import TileWriter


def block_shape(grid: TileGrid, tiles_per_block: int, workers: int) -> tuple[int, int]:
    """``(rows, cols)`` of tiles per read block, at most ``tiles_per_block²`` tiles.

    Blocks are about 512 px tall (a COG block row: less decoding twice at block edges) and as
    wide as the grid allows. While there are fewer than four blocks per worker (so every worker
    stays busy to the end), they are halved in width down to about 1024 px, then shortened.
    """
    most = tiles_per_block**2
    cols = min(grid.n_cols, most)
    rows = max(1, min(most // cols, -(-512 // grid.stride)))
    while _n_blocks(grid, rows, cols) < 4 * workers:
        if cols * grid.stride >= 2048:
            cols = -(-cols // 2)
        elif rows > 1:
            rows -= 1
        else:
            break
    return rows, cols


def _n_blocks(grid: TileGrid, rows: int, cols: int) -> int:
    return -(-grid.n_rows // rows) * -(-grid.n_cols // cols)


def nodata_mask(window: np.ndarray, nodata: Any) -> np.ndarray:
    """Pixels where every band is nodata (NaN counts as nodata for float data)."""
    invalid = invalid_pixels(window, nodata)
    if invalid is None:
        return np.zeros(window.shape[1:], bool)
    return np.all(invalid, axis=0)


def write_block(
    path: str,
    tiles: list[Tile],
    y0: int,
    x0: int,
    before: Any,
    after: Any,
    nodata: tuple[Any, Any],
    stretches: tuple[Stretch, Stretch],
    shift: SubpixelShift | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Cut one read block into tiles, stretch them to uint8 and write them (runs on a worker);
    returns the tiles' indices and nodata fractions.

    ``before``/``after`` are arrays or deferred reads (called here). With a ``shift``, ``after``
    is one pixel larger each way, read on the after scene's own pixel lattice; each tile's
    window is shifted onto the grid here.

    Runs of up to eight tiles with consecutive indices are written with one call each for the
    images and the nodata fractions, which costs much less
    than two small writes per tile. Short runs keep few tiles between "image stored" and
    "marked done".
    """
    before = before() if callable(before) else before
    after = after() if callable(after) else after
    pad = 1 if shift else 0
    writer = TileWriter(path)
    written = []
    for run in _consecutive(tiles):
        size = run[0].size
        out = np.empty((len(run), 2, 3, size, size), dtype="uint8")
        fractions = np.empty((len(run), 2), dtype="float32")
        for i, tile in enumerate(run):
            y, x = tile.y_off - y0, tile.x_off - x0
            windows = (
                before[:, y : y + size, x : x + size],
                after[:, y : y + size + pad, x : x + size + pad],
            )
            if shift:
                windows = (windows[0], shift.apply(windows[1], nodata[1]))
            for t, (window, nd, stretch) in enumerate(zip(windows, nodata, stretches)):
                mask = nodata_mask(window, nd)
                out[i, t] = stretch.apply(window, mask)
                fractions[i, t] = mask.mean()
        writer.write_many(run[0].index, out, fractions)
        written.append(fractions)
    return np.array([t.index for t in tiles]), np.concatenate(written)


def _consecutive(tiles: list[Tile], most: int = 8) -> list[list[Tile]]:
    """Split ``tiles`` into runs of consecutive indices, of at most ``most`` (evenly split)."""
    runs: list[list[Tile]] = []
    for tile in tiles:
        if runs and runs[-1][-1].index + 1 == tile.index:
            runs[-1].append(tile)
        else:
            runs.append([tile])
    return [part for run in runs for part in _split(run, -(-len(run) // most))]


def _split(run: list[Tile], n: int) -> list[list[Tile]]:
    size, extra = divmod(len(run), n)
    bounds = np.cumsum([0] + [size + (i < extra) for i in range(n)])
    return [run[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
