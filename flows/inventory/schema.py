"""The inventory's contract: its rows, column types, partition keys, names and errors.

Both tables are hive-partitioned by ``region`` and ``run_date``, one file per run::

    root/tiles/region=R/run_date=YYYY-MM-DD/part-{run_id}.parquet     one row per tile pair
    root/objects/region=R/run_date=YYYY-MM-DD/part-{run_id}.parquet   one row per change object

:data:`SCHEMAS` gives each table's file columns and Arrow types, in file order (the geometry and
its ``bbox`` covering column follow). The writer (:mod:`flows.inventory.writer`), the readers
(:mod:`flows.inventory.query`) and the per-tile result store of :mod:`flows.predict` share
these definitions; this module imports nothing of theirs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from shapely.geometry.base import BaseGeometry

from catalogs.errors import InputError, RunError

__all__ = [
    "HIVE_KEYS",
    "SCHEMAS",
    "TABLES",
    "InventoryError",
    "InventoryNotFoundError",
    "InventoryPaths",
    "ModelMismatchError",
    "ObjectRow",
    "TileRow",
    "check_name",
    "partition_date",
]

TABLES = ("tiles", "objects")
HIVE_KEYS = ("region", "run_date")

_STR = pa.string()
_LIST = pa.list_(pa.string())
_TS = pa.timestamp("us", tz="UTC")

# column -> arrow type, in file order (geometry and its bbox covering follow)
SCHEMAS: dict[str, dict[str, pa.DataType]] = {
    "tiles": {
        "run_id": _STR,
        "tile_id": _STR,
        "before_items": _LIST,
        "after_items": _LIST,
        "before_datetime": _TS,
        "after_datetime": _TS,
        "changed": pa.bool_(),
        "change_score": pa.float64(),
        "caption": _STR,
        "n_buildings": pa.int32(),
        "n_roads": pa.int32(),
        "cells": _LIST,
        "model_id": _STR,
    },
    "objects": {
        "run_id": _STR,
        "tile_id": _STR,
        "object_id": _STR,
        "feature_id": _STR,
        "class": _STR,
        "area_m2": pa.float64(),
        "score": pa.float64(),
        "cell": _STR,
    },
}

_SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-:+")


def check_name(kind: str, value: str) -> str:
    """A run id or region must be a plain path component (no ``/``, ``=``, spaces…)."""
    if not isinstance(value, str) or not value or value[0] in "._" or not set(value) <= _SAFE:
        raise InputError(
            f"{kind} {value!r} must be non-empty, start with a letter or digit and contain only "
            "letters, digits and . _ - : +"
        )
    return value


class InventoryError(RunError):
    """The inventory cannot be written or read as asked."""


class ModelMismatchError(InventoryError):
    """A rerun of a run id with another model than the one its rows came from."""


@dataclass
class TileRow:
    """One row of the ``tiles`` table (``geometry`` = tile footprint in the scene CRS)."""

    run_id: str
    region: str
    tile_id: str
    before_items: list[str]
    after_items: list[str]
    before_datetime: Any  # str / datetime / pd.Timestamp / None; stored as UTC timestamp
    after_datetime: Any
    changed: bool
    change_score: float
    caption: str
    n_buildings: int
    n_roads: int
    cells: list[str]
    model_id: str
    geometry: BaseGeometry = field(repr=False)


@dataclass
class ObjectRow:
    """One row of the ``objects`` table (``cls`` is written as the column ``class``)."""

    run_id: str
    region: str
    tile_id: str
    object_id: str
    cls: str
    area_m2: float
    score: float
    cell: str
    geometry: BaseGeometry = field(repr=False)
    feature_id: str | None = None  # shared by pieces of one feature (flows.inventory.features)


@dataclass(frozen=True)
class InventoryPaths:
    """What :func:`write_inventory` wrote: the root and this run's file in each table."""

    root: str
    tiles: str
    objects: str
    n_tiles: int
    n_objects: int
    replaced: bool  # a previous write of this run id was replaced


class InventoryNotFoundError(InventoryError, FileNotFoundError):
    """No inventory (no GeoParquet files) at the given root."""


def partition_date(run_date: dt.date | str) -> str:
    """The ``run_date`` partition key (``YYYY-MM-DD``) of a date, datetime or ISO string."""
    if isinstance(run_date, dt.datetime):
        run_date = run_date.date()
    if isinstance(run_date, str):
        run_date = dt.date.fromisoformat(run_date[:10])
    return run_date.isoformat()
