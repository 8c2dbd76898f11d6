import pytest
from shapely.geometry import box

from tiling.grid import make_grid, tile_origins


def test_grid_snaps_to_anchor_and_pads_to_whole_tiles():
    grid = make_grid(
        box(1000.2, 2000.0, 1100.0, 2060.3),
        crs="EPSG:32611",
        resolution=0.5,
        anchor=(0.25, 0.25),
        tile_size=64,
    )
    t = grid.transform
    # the origin lies on the anchor lattice and at or outside the AOI's corner
    assert (t.c - 0.25) % 0.5 == pytest.approx(0.0) and t.c <= 1000.2
    assert (t.f - 0.25) % 0.5 == pytest.approx(0.0) and t.f >= 2060.3
    h, w = grid.geobox.shape
    assert h % 64 == 0 and w % 64 == 0
    assert w * 0.5 >= 99.8 and (w - 64) * 0.5 < 99.8  # no spare column of tiles
    assert grid.n_tiles == (h // 64) * (w // 64)


def test_tiles_with_overlap_share_pixels_and_cover_the_grid():
    grid = make_grid(box(0, 0, 100, 100), crs="EPSG:32611", resolution=1.0, tile_size=32, overlap=8)
    assert grid.stride == 24
    tiles = list(grid)
    assert tiles[1].x_off - tiles[0].x_off == 24
    last = tiles[-1]
    assert last.y_off + 32 == grid.geobox.shape[0] and last.x_off + 32 == grid.geobox.shape[1]
    assert [t.tile_id for t in tiles[:2]] == ["tile-0-0", "tile-0-1"]


def test_blocks_hold_every_tile_once():
    grid = make_grid(box(0, 0, 1000, 700), crs="EPSG:32611", resolution=1.0, tile_size=64)
    blocks = grid.blocks(4)
    seen = [t.index for b in blocks for t in b]
    assert sorted(seen) == list(range(grid.n_tiles))
    assert all(len(b) <= 16 for b in blocks)


def test_tile_origins_match_tile_transforms():
    grid = make_grid(box(500, 500, 900, 800), crs="EPSG:32611", resolution=2.0, tile_size=16)
    x0, y0 = tile_origins(grid)
    for tile in list(grid)[:5]:
        t = grid.tile_transform(tile)
        assert (t.c, t.f) == (x0[tile.index], y0[tile.index])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tile_size": 8}, "tile_size"),
        ({"tile_size": 64, "overlap": 64}, "overlap"),
        ({"resolution": 0.0}, "resolution"),
    ],
)
def test_bad_grid_options_name_the_parameter(kwargs, message):
    args = {"crs": "EPSG:32611", "resolution": 1.0, **kwargs}
    with pytest.raises(ValueError, match=message):
        make_grid(box(0, 0, 100, 100), **args)
