"""Exceptions raised by :mod:`catalogs`.

Every message names the thing that is wrong (URL, item id, file, parameter) and what to do.
"""

from __future__ import annotations


class CatalogError(RuntimeError):
    """A catalog could not be reached or answered something unusable."""


class InputError(ValueError):
    """A user-supplied value (AOI, date window, path, option) is invalid."""


class NoCoverageError(CatalogError):
    """Nothing in a date window covers the AOI."""


class ItemError(CatalogError):
    """One STAC item is unusable (missing asset, not a raster, unreadable file)."""

    def __init__(self, item_id: str, message: str) -> None:
        super().__init__(f"item {item_id!r}: {message}")
        self.item_id = item_id
