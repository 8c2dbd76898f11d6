"""The change inventory: GeoParquet 1.1 tables of tiles and change objects (DESIGN.md §2).

Public API (names load on first use, so importing the contract stays cheap):

- :func:`write_inventory` — write or replace one run's rows, atomically per partition;
- :func:`rows_from_results`, :func:`tile_row`, :func:`object_rows` — rows from a tile store and
  per-tile ``ChangeResult``s; :func:`link_features` joins objects cut by tile edges;
- :func:`query_inventory`, :func:`summary`, :func:`format_table`, :func:`explain_query` — read
  it back with DuckDB (bbox pushed into the Parquet scan);
- :class:`TileRow`, :class:`ObjectRow`, :class:`InventoryPaths` and the errors — the contract
  (:mod:`flows.inventory.schema`).

Modules: ``schema`` (rows, column types, names, errors), ``writer``, ``query``, ``features``,
``_io`` (layout and atomic partition swaps; private).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flows.inventory.features import link_features
    from flows.inventory.query import explain_query, format_table, query_inventory, summary
    from flows.inventory.schema import (
        InventoryError,
        InventoryNotFoundError,
        InventoryPaths,
        ModelMismatchError,
        ObjectRow,
        TileRow,
    )
    from flows.inventory.writer import object_rows, rows_from_results, tile_row, write_inventory

_HOME = {
    "link_features": "features",
    "explain_query": "query",
    "format_table": "query",
    "query_inventory": "query",
    "summary": "query",
    "InventoryError": "schema",
    "InventoryNotFoundError": "schema",
    "InventoryPaths": "schema",
    "ModelMismatchError": "schema",
    "ObjectRow": "schema",
    "TileRow": "schema",
    "object_rows": "writer",
    "rows_from_results": "writer",
    "tile_row": "writer",
    "write_inventory": "writer",
}

__all__ = [
    "InventoryError",
    "InventoryNotFoundError",
    "InventoryPaths",
    "ModelMismatchError",
    "ObjectRow",
    "TileRow",
    "explain_query",
    "format_table",
    "link_features",
    "object_rows",
    "query_inventory",
    "rows_from_results",
    "summary",
    "tile_row",
    "write_inventory",
]


def __getattr__(name: str) -> object:
    if name not in _HOME:
        raise AttributeError(f"module 'flows.inventory' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"flows.inventory.{_HOME[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOME])
