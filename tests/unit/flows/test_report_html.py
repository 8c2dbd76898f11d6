"""flows.report without a tile store: escaping, no change, no tiles, metadata, atomic writes."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from shapely.geometry import box

from flows import report
from flows.inventory import TileRow
from flows.report import write_report

NO_STORE = "/nonexistent/tiles.zarr"  # the store is opened only when a tile changed
NETWORK_REF = re.compile(r"""(?:src|href|action|srcset)\s*=\s*["']?\s*https?:""", re.I)


def _tile(tile_id, row, col, *, caption="No change.", changed=False, score=0.05):
    return TileRow(
        run_id="r1",
        region="test",
        tile_id=tile_id,
        before_items=["b"],
        after_items=["a"],
        before_datetime="2022-05-01T00:00:00Z",
        after_datetime="2024-06-15T00:00:00Z",
        changed=changed,
        change_score=score,
        caption=caption,
        n_buildings=0,
        n_roads=0,
        cells=[],
        model_id="m",
        geometry=box(col * 128, -(row + 1) * 128, (col + 1) * 128, -row * 128),
    )


def _write(tmp_path, tiles, objects=None, meta=None):
    path = write_report(
        tmp_path / "report.html", store=NO_STORE, tiles=tiles, objects=objects, meta=meta or {}
    )
    return path.read_text()


def test_text_is_escaped(tmp_path):
    hostile = '<script>alert("x")</script>'
    tiles = [_tile('a"b<c>', 0, 0, caption=hostile), _tile("t-0-1", 0, 1)]
    meta = {"note": "<b>bold</b>", "<key>": hostile, "catalog": "https://example.com/stac"}
    html = _write(tmp_path, tiles, meta=meta)
    assert html.count("<script>") == 1  # the page's own sorting script, nothing else
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert "<b>bold</b>" not in html and "&lt;b&gt;bold&lt;/b&gt;" in html
    assert "&lt;key&gt;" in html
    assert 'data-tile="a&quot;b&lt;c&gt;"' in html
    assert 'id="row-a_b_c_"' in html  # anchors are reduced to safe characters
    assert "https://example.com/stac" in html and not NETWORK_REF.search(html)


def test_zero_changed_tiles(tmp_path):
    tiles = pd.DataFrame([vars(_tile(f"t-0-{c}", 0, c)) for c in range(3)])
    html = _write(tmp_path, tiles, objects=pd.DataFrame())
    assert "No change found" in html
    assert "<b>0</b> of <b>3</b> tiles changed; <b>3</b> unchanged" in html
    assert "<img" not in html and "No changed tiles." in html
    assert html.count('class="tile"') == 3  # the overview still shows the grid
    assert html.count('<tr id="row-') == 3


def test_empty_tiles(tmp_path):
    for tiles in ([], pd.DataFrame()):
        html = _write(tmp_path, tiles, objects=None, meta={"run_id": "r0"})
        assert "No tiles in this run" in html
        assert "All tiles (0)" in html and "<img" not in html and 'class="tile"' not in html
    assert "r0" in html


def test_metadata_and_timings(tmp_path):
    meta = {
        "run_id": "r1",
        "before_items": [{"id": "scene-1", "datetime": "2022-05-01", "hrefs": ["file:///x.tif"]}],
        "timings": {"search": 0.42, "tile": 12.3, "predict": 125.0, "report": "n/a"},
        "threshold": 0.5,
        "skipped": None,
    }
    html = _write(tmp_path, [_tile("t-0-0", 0, 0)], meta=meta)
    assert "<dt>before items</dt>" in html and "<b>scene-1</b>" in html
    for text in ("0.42 s", "12.3 s", "2 min 05 s", "2 min 18 s", "n/a", "—"):
        assert text in html, text


def test_write_is_atomic_and_replaces(tmp_path):
    (tmp_path / "report.html").write_text("old")
    _write(tmp_path, [_tile("t-0-0", 0, 0)])
    assert (tmp_path / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_rows_need_tile_ids(tmp_path):
    with pytest.raises(ValueError, match="tile_id"):
        _write(tmp_path, pd.DataFrame({"changed": [False]}))


def test_images_are_downscaled():
    uri = report._jpeg(np.zeros((3, 300, 200), np.uint8))
    img = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    assert img.format == "JPEG" and max(img.size) == report.MAX_IMAGE_PX
