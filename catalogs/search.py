"""Search a STAC API for the items over an AOI and date window, robustly.

Thin layer over ``pystac-client``: paging, retries with exponential backoff on connection
errors and 5xx answers (urllib3 ``Retry``), timeouts, an optional signing hook, and errors that
say which URL failed and what to check. Cloud filtering is done client-side in
:func:`~catalogs.pairing.pair_scenes` (rustac's API has no Query/Filter extension);
:func:`~catalogs.pairing.search_pairs` searches both windows and pairs.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pystac
import requests
from pystac_client import Client
from pystac_client.exceptions import APIError
from pystac_client.stac_api_io import StacApiIO
from shapely.geometry import mapping
from urllib3.util.retry import Retry

from catalogs.aoi import DateWindow, parse_aoi, parse_window
from catalogs.errors import CatalogError, InputError
from catalogs.items import is_local_catalog

__all__ = ["SearchOptions", "open_client", "search_items"]

log = logging.getLogger(__name__)

_RETRY_STATUS = (429, 500, 502, 503, 504)


@dataclass(frozen=True)
class SearchOptions:
    """How to talk to a STAC API.

    Attributes:
        max_items: stop after this many items per search (a warning says when it is reached).
        page_size: items per page (``limit``).
        timeout_s: connect/read timeout per request, seconds.
        retries: retries per request on connection errors, timeouts and 429/5xx answers.
        backoff_s: exponential backoff factor (``backoff_s * 2**(n-1)`` s between retries).
        modifier: called in place on every result page (FeatureCollection dict), item or
            collection returned, e.g. ``planetary_computer.sign_inplace`` to sign asset hrefs.
        headers: extra HTTP headers (e.g. an API key).
    """

    max_items: int = 2000
    page_size: int = 100
    timeout_s: float = 30.0
    retries: int = 4
    backoff_s: float = 0.5
    modifier: Callable[[Any], None] | None = None
    headers: Mapping[str, str] | None = None


def open_client(catalog_url: str, *, options: SearchOptions = SearchOptions()) -> Client:
    """Open a STAC API with retries and timeouts configured.

    Raises:
        CatalogError: unreachable or not a STAC API after the retries.
    """
    retry = Retry(
        total=options.retries,
        connect=options.retries,
        read=options.retries,
        status=options.retries,
        other=0,
        backoff_factor=options.backoff_s,
        status_forcelist=_RETRY_STATUS,
        allowed_methods=None,  # POST /search is a read: retry it too
        raise_on_status=False,
    )
    stac_io = StacApiIO(max_retries=retry)
    if is_local_catalog(catalog_url):
        stac_io.session.trust_env = False  # never send loopback traffic through a proxy
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # NoConformsTo etc.: checked below
            return Client.open(
                catalog_url,
                stac_io=stac_io,
                headers=dict(options.headers or {}),
                modifier=options.modifier,
                timeout=options.timeout_s,
            )
    except (APIError, requests.RequestException, pystac.STACError, OSError, ValueError) as err:
        raise _catalog_error(catalog_url, err, options) from err


def search_items(
    catalog_url: str,
    *,
    collection: str | Sequence[str],
    aoi: Any,
    window: DateWindow | str,
    options: SearchOptions = SearchOptions(),
) -> list[pystac.Item]:
    """Items of ``collection`` intersecting ``aoi`` within ``window``.

    Args:
        catalog_url: STAC API root URL.
        collection: collection id (or ids).
        aoi: anything :func:`~catalogs.aoi.parse_aoi` accepts (no area limit applied here).
        window: ``"START/END"`` or a :class:`~catalogs.aoi.DateWindow`.
        options: paging, retries, timeouts, signing.

    Raises:
        CatalogError: the catalog is unreachable, errors, or lacks the collection.
        InputError: bad AOI or window.
    """
    geom = parse_aoi(aoi, max_area_km2=float("inf"))
    window = parse_window(window, name="window")
    collections = [collection] if isinstance(collection, str) else list(collection)
    if not collections or not all(collections):
        raise InputError("collection: give a collection id, e.g. 'sentinel-2-l2a'")
    client = open_client(catalog_url, options=options)
    try:
        search = client.search(
            collections=collections,
            intersects=mapping(geom),
            datetime=window.to_stac(),
            limit=options.page_size,
            max_items=options.max_items,
        )
        items = list(search.items())
    except (APIError, requests.RequestException, pystac.STACError, OSError) as err:
        raise _catalog_error(catalog_url, err, options) from err
    except NotImplementedError as err:  # DoesNotConformTo: no item search
        raise CatalogError(
            f"{catalog_url} does not support STAC item search ({err}); give a STAC API root URL"
        ) from err
    if len(items) >= options.max_items:
        log.warning(
            "%s: search stopped at max_items=%d for %s in %s; results may be incomplete, "
            "raise max_items or narrow the AOI/window",
            catalog_url,
            options.max_items,
            collections,
            window,
        )
    if not items:
        _check_collections(client, catalog_url, collections)
    return items


def _check_collections(client: Client, url: str, wanted: list[str]) -> None:
    try:
        available = [c.id for c in client.get_collections()]
    except Exception:  # noqa: BLE001 - only a hint; the empty result stands
        return
    missing = [c for c in wanted if c not in available]
    if missing:
        raise CatalogError(
            f"{url} has no collection {', '.join(map(repr, missing))}; available: "
            f"{', '.join(available) or 'none'}"
        )


def _catalog_error(url: str, err: BaseException, options: SearchOptions) -> CatalogError:
    detail = str(err).strip() or type(err).__name__
    if status := getattr(err, "status_code", None):
        detail = f"HTTP {status}: {detail}"
    if len(detail) > 400:
        detail = detail[:400] + "…"
    return CatalogError(
        f"STAC API {url} failed: {detail} (connection errors and 5xx answers were retried "
        f"up to {options.retries} times). Check the URL, that "
        "the server is running and reachable (for a local catalog: `changevg catalog serve`), "
        "proxy/network settings, or raise SearchOptions.retries/timeout_s"
    )
