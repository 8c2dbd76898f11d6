"""Search and pairing through a real rustac server on 127.0.0.1: paging, retries, errors."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from shapely.geometry import box, shape

from catalogs.errors import CatalogError, InputError, NoCoverageError
from catalogs.pairing import ScenePair, search_pairs
from catalogs.search import SearchOptions, search_items
from catalogs.server import StacServer
from catalogs.testing import load_features, sample_stac_dir, shift_item, write_ndjson

SAMPLES = sample_stac_dir()
pytestmark = pytest.mark.skipif(SAMPLES is None, reason="recorded STAC responses not found")
FAST = SearchOptions(retries=2, backoff_s=0.01, timeout_s=5)
NAIP_AOI = box(-69.388, 45.054, -69.368, 45.074)  # four Maine quarter-quads meet here
S2_AOI = box(173.93, 58.1, 174.03, 58.15)  # across UTM zones 59/60
ES_AOI = box(-105.5, 40.0, -105.4, 40.1)


@pytest.fixture(scope="module")
def catalog(tmp_path_factory) -> Iterator[StacServer]:
    """Real responses plus shifted copies (a second date over the same footprints)."""
    naip = load_features(SAMPLES / "naip_pc_250.json")
    s2 = load_features(SAMPLES / "s2l2a_pc_datetime.json")
    later = [shift_item(f, days=730, suffix="-2025") for f in naip]
    later += [shift_item(f, days=365, suffix="-2020") for f in s2]
    extra = write_ndjson(later, tmp_path_factory.mktemp("stac") / "later.ndjson")
    with StacServer([*sorted(SAMPLES.glob("*.json")), extra]) as srv:
        yield srv


def test_naip_pair_through_server(catalog) -> None:
    pair = search_pairs(
        catalog.url,
        collection="naip",
        aoi=NAIP_AOI,
        before="2023-01-01/2023-12-31",
        after="2025-01-01/2025-12-31",
        options=FAST,
    )
    assert len(pair.before.items) == 4 and len(pair.after.items) == 4
    assert pair.before.coverage == pytest.approx(1.0, abs=1e-3)
    assert pair.crs == "EPSG:26919" and pair.catalog == catalog.url and pair.collection == "naip"
    back = ScenePair.from_json(json.loads(json.dumps(pair.to_json())))
    assert back.before.ids == pair.before.ids


def test_paging_returns_every_match(catalog) -> None:
    aoi = box(-70.0, 44.3, -69.2, 45.5)
    features = load_features(SAMPLES / "naip_pc_250.json")
    expected = {
        f["id"]
        for f in features
        if f["properties"]["datetime"].startswith("2023-11-1")
        and shape(f["geometry"]).intersects(aoi)
    }
    got = search_items(
        catalog.url,
        collection="naip",
        aoi=aoi,
        window="2023-11-01/2023-11-30",
        options=SearchOptions(page_size=7, retries=1, backoff_s=0.01),
    )
    assert len(expected) > 50 and {i.id for i in got} == expected and len(got) == len(expected)
    capped = search_items(
        catalog.url,
        collection="naip",
        aoi=aoi,
        window="2023-11-01/2023-11-30",
        options=SearchOptions(page_size=7, max_items=10),
    )
    assert len(capped) == 10


def test_sentinel2_two_utm_zones_and_max_cloud(catalog) -> None:
    kw = dict(
        collection="sentinel-2-l2a",
        aoi=S2_AOI,
        before="2019-01-01/2019-01-02",
        after="2020-01-01/2020-01-02",
        options=FAST,
    )
    pair = search_pairs(catalog.url, **kw)
    assert pair.crs in ("EPSG:32659", "EPSG:32660") and pair.before.cloud_cover > 50
    with pytest.raises(NoCoverageError, match="before window 2019-01-01.*relax max_cloud"):
        search_pairs(catalog.url, max_cloud=20, **kw)


def test_landsat_then_sentinel2_two_collections(catalog) -> None:
    pair = search_pairs(
        catalog.url,
        collection=["landsat-c2-l2", "sentinel-2-l2a"],
        aoi=ES_AOI,
        before="2023-10-08T00:00:00Z/2023-10-08T17:50:00Z",
        after="2023-10-08T17:50:01Z/2023-10-08T23:59:59Z",
        options=FAST,
    )
    assert pair.before.ids == ["LC08_L2SP_033032_20231008_02_T1"]
    assert pair.after.ids == ["S2A_13TDE_20231008_0_L2A"]


def test_no_coverage_and_missing_collection(catalog) -> None:
    with pytest.raises(NoCoverageError, match="after window 2026-01-01"):
        search_pairs(
            catalog.url,
            collection="naip",
            aoi=NAIP_AOI,
            before="2023-01-01/2023-12-31",
            after="2026-01-01/2026-12-31",
            options=FAST,
        )
    with pytest.raises(CatalogError, match="no collection 'nope'; available: .*naip"):
        search_items(catalog.url, collection="nope", aoi=NAIP_AOI, window="2023-01-01/2023-12-31")


def test_modifier_hook_sees_every_item(catalog) -> None:
    seen = []

    def sign(obj) -> None:
        # pystac-client passes whole result pages (FeatureCollection dicts) for searches
        if isinstance(obj, dict) and obj.get("type") == "FeatureCollection":
            for feature in obj["features"]:
                feature["properties"]["signed"] = True
        seen.append(obj)

    items = search_items(
        catalog.url,
        collection="landsat-c2-l2",
        aoi=ES_AOI,
        window="2023-10-08/2023-10-08",
        options=SearchOptions(modifier=sign),
    )
    assert [i.properties.get("signed") for i in items] == [True] and seen


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_catalog_names_url_after_retries() -> None:
    url = f"http://127.0.0.1:{_closed_port()}/"
    start = time.monotonic()
    with pytest.raises(CatalogError) as info:
        search_items(
            url, collection="naip", aoi=NAIP_AOI, window="2023-01-01/2023-12-31", options=FAST
        )
    assert url in str(info.value) and "retried up to 2 times" in str(info.value)
    assert time.monotonic() - start < 5


def test_silent_server_times_out_and_is_retried() -> None:
    with socket.socket() as sock:  # accepts connections (backlog) but never answers
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
        start = time.monotonic()
        with pytest.raises(CatalogError, match=rf"{url}.*(?i:timed out)"):
            search_items(
                url,
                collection="naip",
                aoi=NAIP_AOI,
                window="2023-01-01/2023-12-31",
                options=SearchOptions(timeout_s=0.2, retries=1, backoff_s=0.01),
            )
        elapsed = time.monotonic() - start
    assert 0.35 < elapsed < 3  # two attempts of 0.2 s each


class _Flaky(BaseHTTPRequestHandler):
    """Proxy to the rustac server answering 500 to the requests numbered in ``fail_at``."""

    upstream: int = 0
    fail_at: frozenset[int] = frozenset()
    log: list[tuple[str, str, int]] = []
    headers_seen: list[str | None] = []

    def _handle(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).headers_seen.append(self.headers.get("X-Api-Key"))
        if len(self.log) in self.fail_at:
            self.log.append((self.command, self.path, 500))
            self._reply(500, b'{"code": "boom", "description": "transient"}')
            return
        conn = http.client.HTTPConnection("127.0.0.1", self.upstream, timeout=5)
        conn.request(
            self.command, self.path, body=body or None, headers={"Content-Type": "application/json"}
        )
        resp = conn.getresponse()
        raw = resp.read()
        conn.close()
        data = raw.replace(
            f"127.0.0.1:{self.upstream}".encode(), f"127.0.0.1:{self.server.server_port}".encode()
        )
        self.log.append((self.command, self.path, resp.status))
        self._reply(resp.status, data)

    def _reply(self, status: int, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _handle

    def log_message(self, *args) -> None:  # keep test output quiet
        pass


@pytest.fixture
def flaky(catalog) -> Iterator[tuple[str, type[_Flaky]]]:
    handler = type("Handler", (_Flaky,), {"upstream": catalog.port, "log": [], "headers_seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/", handler
    finally:
        server.shutdown()
        server.server_close()


def test_500_is_retried_then_succeeds(flaky) -> None:
    url, handler = flaky
    handler.fail_at = frozenset({0, 2})  # the landing page once, then the first search once
    items = search_items(
        url,
        collection="landsat-c2-l2",
        aoi=ES_AOI,
        window="2023-10-08/2023-10-08",
        options=SearchOptions(retries=3, backoff_s=0.01, headers={"X-Api-Key": "k"}),
    )
    assert [i.id for i in items] == ["LC08_L2SP_033032_20231008_02_T1"]
    calls = [(method, status) for method, _, status in handler.log]
    assert calls == [("GET", 500), ("GET", 200), ("POST", 500), ("POST", 200)]
    assert set(handler.headers_seen) == {"k"}


def test_persistent_500_gives_catalog_error(flaky) -> None:
    url, handler = flaky
    handler.fail_at = frozenset(range(100))
    with pytest.raises(CatalogError, match=rf"{url}.*500.*retried up to 2 times"):
        search_items(
            url, collection="naip", aoi=NAIP_AOI, window="2023-01-01/2023-12-31", options=FAST
        )
    assert len(handler.log) == 3  # one try + two retries


def test_input_errors_before_any_request() -> None:
    url = f"http://127.0.0.1:{_closed_port()}/"  # never contacted
    kw = dict(collection="naip", before="2023-01-01/2023-12-31", after="2025-01-01/2025-12-31")
    with pytest.raises(InputError, match="max_area_km2=2,500"):
        search_pairs(url, aoi="-70,44,-69,45", **kw)
    with pytest.raises(InputError, match="^before: start"):
        search_pairs(url, aoi=NAIP_AOI, **{**kw, "before": "2023-12-31/2023-01-01"})
    with pytest.raises(InputError, match="overlap"):
        search_pairs(url, aoi=NAIP_AOI, **{**kw, "after": "2023-06-01/2023-12-31"})
    with pytest.raises(InputError, match="empty"):
        search_pairs(url, aoi={"type": "Polygon", "coordinates": []}, **kw)
