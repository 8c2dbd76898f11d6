"""The product against a production STAC API: stac-fastapi-pgstac on PostgreSQL + PostGIS.

Started and stopped here on 127.0.0.1 (:mod:`tests.integration.catalogs.pgstac_server`), items
loaded with pypgstac. The recorded real responses in ``../shared/data/stac/`` (plus the shifted
copies that give them a second date, as in ``test_search``) load into it and pair exactly as on
the embedded rustac server; the whole ``monitor_region`` flow runs against it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import geopandas as gpd
import pytest
from shapely.geometry import box

from catalogs.errors import NoCoverageError
from catalogs.pairing import ScenePair, search_pairs
from catalogs.search import SearchOptions, search_items
from catalogs.server import StacServer
from catalogs.testing import load_features, sample_stac_dir, shift_item, write_ndjson
from tests.conftest import AFTER, BEFORE
from tests.integration.catalogs.pgstac_server import PgstacServer, collections_for, missing

SAMPLES = sample_stac_dir()
REASON = missing()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(REASON is not None, reason=f"stac-fastapi-pgstac stack: {REASON}"),
    pytest.mark.skipif(SAMPLES is None, reason="recorded STAC responses not found"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]
FAST = SearchOptions(retries=2, backoff_s=0.01, timeout_s=30)

CASES = {
    "naip-quarter-quads": dict(
        collection="naip",
        aoi=box(-69.388, 45.054, -69.368, 45.074),
        before="2023-01-01/2023-12-31",
        after="2025-01-01/2025-12-31",
    ),
    "sentinel-2-two-utm-zones": dict(
        collection="sentinel-2-l2a",
        aoi=box(173.93, 58.1, 174.03, 58.15),
        before="2019-01-01/2019-01-02",
        after="2020-01-01/2020-01-02",
    ),
    "landsat-then-sentinel-2": dict(
        collection=["landsat-c2-l2", "sentinel-2-l2a"],
        aoi=box(-105.5, 40.0, -105.4, 40.1),
        before="2023-10-08T00:00:00Z/2023-10-08T17:50:00Z",
        after="2023-10-08T17:50:01Z/2023-10-08T23:59:59Z",
    ),
    "naip-wide-many-pages": dict(
        collection="naip",
        aoi=box(-70.0, 44.3, -69.2, 45.5),
        before="2023-01-01/2023-12-31",
        after="2025-01-01/2025-12-31",
        options=SearchOptions(page_size=7, retries=2, backoff_s=0.01, timeout_s=30),
        max_area_km2=10_000.0,
    ),
}


def _recorded() -> list[dict]:
    """The recorded responses and the shifted copies that add a second date."""
    assert SAMPLES is not None
    features = [f for path in sorted(SAMPLES.glob("*.json")) for f in load_features(path)]
    naip = load_features(SAMPLES / "naip_pc_250.json")
    s2 = load_features(SAMPLES / "s2l2a_pc_datetime.json")
    later = [shift_item(f, days=730, suffix="-2025") for f in naip]
    later += [shift_item(f, days=365, suffix="-2020") for f in s2]
    return features + later


@pytest.fixture(scope="module")
def recorded_items() -> list[dict]:
    return _recorded()


@pytest.fixture(scope="module")
def pgstac(recorded_items, small_region) -> Iterator[PgstacServer]:
    region_items = [json.loads(x) for x in small_region.items_path.read_text().splitlines() if x]
    region_collection = json.loads(small_region.collection_path.read_text())
    with PgstacServer() as server:
        server.load(
            [*collections_for(recorded_items), region_collection], [*recorded_items, *region_items]
        )
        yield server


@pytest.fixture(scope="module")
def embedded(recorded_items, tmp_path_factory) -> Iterator[StacServer]:
    path = write_ndjson(recorded_items, tmp_path_factory.mktemp("stac") / "recorded.ndjson")
    with StacServer([path]) as server:
        yield server


def _pair(url: str, case: dict) -> dict:
    kw = {"options": FAST, **case}
    try:
        doc = search_pairs(url, **kw).to_json()
    except NoCoverageError as exc:
        return {"no_coverage": dict(exc.to_dict())}
    doc.pop("catalog")
    for side in ("before", "after"):  # the full items: compared by what pairing reads
        doc[side]["features"] = [
            (f["id"], f["collection"], f["geometry"], f["properties"].get("datetime"))
            for f in doc[side]["features"]
        ]
    return doc


def test_every_recorded_item_is_served(pgstac, recorded_items):
    by_collection: dict[str, set[str]] = {}
    for f in recorded_items:
        by_collection.setdefault(f["collection"], set()).add(f["id"])
    for collection, ids in by_collection.items():
        got = search_items(
            pgstac.url,
            collection=collection,
            aoi=box(-180, -85, 180, 85),
            window="1990-01-01/2030-12-31",
            options=SearchOptions(page_size=50, retries=2, backoff_s=0.01, timeout_s=30),
        )
        assert sorted(i.id for i in got) == sorted(ids), collection


@pytest.mark.parametrize("name", sorted(CASES))
def test_recorded_responses_pair_exactly_as_on_the_embedded_server(pgstac, embedded, name):
    on_pgstac, on_rustac = _pair(pgstac.url, CASES[name]), _pair(embedded.url, CASES[name])
    assert "no_coverage" not in on_rustac, on_rustac
    assert on_pgstac == on_rustac
    pair = search_pairs(pgstac.url, **{"options": FAST, **CASES[name]})
    back = ScenePair.from_json(json.loads(json.dumps(pair.to_json())))
    assert back.before.ids == [f[0] for f in on_rustac["before"]["features"]]


def test_no_coverage_is_the_same_answer(pgstac, embedded):
    case = {**CASES["sentinel-2-two-utm-zones"], "max_cloud": 20}
    on_pgstac, on_rustac = _pair(pgstac.url, case), _pair(embedded.url, case)
    assert "no_coverage" in on_rustac and on_pgstac == on_rustac


def test_whole_monitor_flow_against_pgstac(pgstac, small_region, tmp_path):
    from flows.monitor import monitor_region
    from flows.request import RunRequest

    aoi = ",".join(f"{v:.6f}" for v in small_region.bbox_lonlat)
    collection = json.loads(small_region.collection_path.read_text())["id"]
    out = tmp_path / "run"
    summary = monitor_region(
        RunRequest(
            aoi=aoi,
            catalog=pgstac.url,
            collection=collection,
            before=BEFORE,
            after=AFTER,
            region="small",
            out=str(out),
        )
    )
    assert summary["status"] == "completed" and summary["catalog"] == pgstac.url
    assert summary["before"]["items"] == ["synth-1-before"]
    assert summary["after"]["items"] == ["synth-1-after"]
    tiles = gpd.read_parquet(out / "inventory" / "tiles")
    assert len(tiles) == summary["tiles"] - summary["tiles_mostly_nodata"] > 0
    assert (out / "report.html").stat().st_size > 1000
