"""report.html from a real tile store and the synthetic ground truth, opened in headless Chromium.

The change results come from the region's ``truth.parquet`` rasterised onto each tile's grid
(``catalogs.synth.rasterize_truth`` → ``changevg.objects.mask_to_objects``), not from a model.
Chromium is the system one (Debian ``chromium``, installed by setup.sh) driven by Playwright;
Playwright never downloads a browser here. Without a Chromium binary the browser test skips.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict

import pandas as pd
import pytest

import tiling
from catalogs.synth import load_truth, rasterize_truth
from changevg.objects import cells, counts, mask_to_objects, summarize
from changevg.result import ChangeResult
from flows.inventory import writer as inv
from flows.report import write_report

HOSTILE = '<script>window.__pwned = 1</script> & "quotes"'
SCREENSHOT = "/tmp/report_shot.png"


def _chromium() -> str | None:
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and (path := shutil.which(name)):
            return path
    return None


@pytest.fixture(scope="module")
def run(small_region, small_pair, tmp_path_factory):
    """A tile store, tile and object rows from the truth, and the report written from them."""
    root = tmp_path_factory.mktemp("report")
    store = root / "tiles.zarr"
    tiling.build_tiles(small_pair, store, name="t", progress=False)
    ds = tiling.open_tiles(str(store))
    truth = load_truth(small_region.root)
    size = int(ds.attrs["tile_size"])
    tiles, objects = [], []
    for tile_id in map(str, ds["tile_id"].values):
        mask = rasterize_truth(truth, transform=ds.tiles.transform(tile_id), shape=(size, size))
        objs = mask_to_objects(mask)
        caption = summarize(objs).capitalize() + "." if objs else "No change."
        result = ChangeResult(
            changed=bool(objs),
            change_score=min(1.0, 0.2 + 0.1 * len(objs)) if objs else 0.05,
            caption=caption,
            counts=counts(objs),
            locations=cells(objs),
            objects=objs,
        )
        tiles.append(inv.tile_row(ds, tile_id, result, run_id="r1", region="synth", model_id="m"))
        objects += inv.object_rows(ds, tile_id, result, run_id="r1", region="synth")
    changed = [t for t in tiles if t.changed]
    assert 0 < len(changed) < len(tiles), "the fixture region should have both kinds of tile"
    changed[0].caption = HOSTILE  # must arrive as text, never as markup
    meta = {
        "catalog": "http://127.0.0.1:9/stac",  # shown as text; never a link or a request
        "collection": "synthetic-rgb",
        "region": "synth",
        "run_id": "r1",
        "aoi": list(small_region.bbox_lonlat),
        "before_items": ds.attrs["sources"]["before"]["items"],
        "after_items": ds.attrs["sources"]["after"]["items"],
        "model": "truth",
        "threshold": 0.5,
        "timings": {"search": 0.4, "tile": 3.2, "predict": 125.0, "inventory": 0.8},
        "tiles_mostly_nodata": len(ds.attrs.get("mostly_nodata", [])),
    }
    tiles_df = pd.DataFrame([asdict(t) for t in tiles])
    objects_df = pd.DataFrame([asdict(o) for o in objects])
    path = write_report(
        root / "report.html", store=store, tiles=tiles_df, objects=objects_df, meta=meta
    )
    return path, tiles_df, objects_df


def test_report_file(run):
    path, tiles, objects = run
    text = path.read_text()
    changed = tiles[tiles["changed"]]
    assert text.count('class="card"') == len(changed)
    assert text.count("data:image/jpeg;base64,") == 2 * len(changed)  # unchanged: no images
    assert f"<b>{len(tiles) - len(changed)}</b> unchanged" in text
    assert "&lt;script&gt;window.__pwned" in text and "<script>window.__pwned" not in text
    assert "2 min 05 s" in text  # timings formatted
    assert not list(path.parent.glob(".report.html.*"))  # atomic write left no temp file
    # a 256 px RGB PNG is at most ~197 kB, ~263 kB in base64; the rest of the page is small
    assert path.stat().st_size < 263_000 * 2 * len(changed) + 150_000


def test_report_in_chromium(run):
    exe = _chromium()
    if exe is None:
        pytest.skip("no chromium binary (apt-get install chromium; setup.sh installs it)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    path, tiles, objects = run
    changed = tiles[tiles["changed"]]
    errors, failed, requests = [], [], []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("requestfailed", lambda r: failed.append(r.url))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(path.as_uri(), wait_until="load")
            page.screenshot(path=SCREENSHOT, full_page=True)

            assert errors == [] and failed == []
            assert all(u.startswith(("file:", "data:")) for u in requests), requests
            assert page.evaluate("window.__pwned") is None  # the hostile caption did not run

            images = page.eval_on_selector_all(
                "img", "els => els.map(e => [e.complete, e.naturalWidth, e.naturalHeight])"
            )
            assert len(images) == 2 * len(changed)
            assert all(ok and w > 0 and h > 0 for ok, w, h in images), images

            assert page.locator("svg#overview path.tile").count() == len(tiles)
            shapes = page.eval_on_selector_all(
                "svg#overview path.tile", "els => els.map(e => e.dataset.tile)"
            )
            assert sorted(shapes) == sorted(tiles["tile_id"])
            # every object drawn over both images of its tile
            assert page.locator(".frame svg path.obj").count() == 2 * len(objects)

            # no element refers to anything over the network
            refs = page.evaluate(
                """names => [...document.querySelectorAll('*')].flatMap(el =>
                    [...el.attributes].filter(a => names.includes(a.name)).map(a => a.value))""",
                ["src", "href", "xlink:href", "srcset", "action", "poster", "data", "style"],
            )
            assert refs, "the page has links and images to check"
            assert not [r for r in refs if "http://" in r or "https://" in r]

            # the overview links to the changed tile's section
            top = changed.sort_values("change_score", ascending=False).iloc[0]["tile_id"]
            page.click(f'svg#overview path.tile[data-tile="{top}"]')
            assert page.evaluate("location.hash") == f"#tile-{top}"

            # sorting: score ascending, then descending
            def column(i):
                return page.eval_on_selector_all(
                    "#tiles tbody tr", f"rows => rows.map(r => r.cells[{i}].textContent)"
                )

            before = column(0)
            page.click("#tiles th:nth-child(3)")
            asc = [float(s) for s in column(2)]
            assert asc == sorted(asc)
            page.click("#tiles th:nth-child(3)")
            desc = [float(s) for s in column(2)]
            assert desc == sorted(desc, reverse=True) and column(0) != before
            page.click("#tiles th:nth-child(1)")
            assert column(0) == sorted(before)
            assert errors == []
        finally:
            browser.close()
