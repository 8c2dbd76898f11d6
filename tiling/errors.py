"""Exceptions raised by :mod:`tiling`, and mapping raster read failures back to items."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote, urlparse

from catalogs.errors import RunError


class TilingError(RunError):
    """The tile store could not be built; the message names the item, file or option."""


def _paths(href: str) -> list[str]:
    parsed = urlparse(href)
    return [href, unquote(parsed.path)] if parsed.scheme == "file" else [href]


@contextmanager
def reraise_read_error(pair: Any) -> Iterator[None]:
    """Turn a raster read failure into a :class:`TilingError` naming the item and file.

    GDAL's messages name the file but not the STAC item; users think in items.
    """
    try:
        yield
    except TilingError:
        raise
    except Exception as exc:  # rasterio, GDAL and odc-stac raise a variety of types
        message = str(exc)
        for side in ("before", "after"):
            for item in getattr(pair, side).items:
                for asset in item.assets.values():
                    if any(p and p in message for p in _paths(asset.href)):
                        raise TilingError(
                            f"{side} item {item.id!r}: could not read {asset.href}: {message}. "
                            "The file may be truncated or corrupt: fetch it again or leave the "
                            "item out of the catalog."
                        ) from exc
        if "rasterio" in type(exc).__module__ or "RasterioIOError" in type(exc).__name__:
            ids = [i.id for s in ("before", "after") for i in getattr(pair, s).items]
            raise TilingError(f"reading items {ids} failed: {message}") from exc
        raise
