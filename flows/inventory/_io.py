"""Storage plumbing of the GeoParquet inventory: layout, schemas, atomic partition swaps.

Private to :mod:`flows.inventory.writer` and :mod:`flows.inventory.query`.

Layout (DESIGN.md §2)::

    root/tiles/region=R/run_date=YYYY-MM-DD/part-{run_id}.parquet
    root/objects/region=R/run_date=YYYY-MM-DD/part-{run_id}.parquet

``region`` and ``run_date`` are hive keys: they live in the path, not in the files, so that every
hive-aware reader (DuckDB, pyarrow datasets, ``geopandas.read_parquet`` of a folder, Spark) gets
them as columns without a type clash. Staging folders are named ``.tmp-…`` / ``.old-…``: hidden
from pyarrow's discovery (leading dot) and from the ``region=*/run_date=*/*.parquet`` glob.

The root is a local path or any fsspec URL. Local folders are swapped with ``os.rename`` (atomic
per folder); other filesystems use ``fs.mv`` — on object stores (``s3://``) that is a copy plus
delete, the same code path but not atomic.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import fsspec
import geopandas as gpd
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem
from geopandas.io.arrow import _geopandas_to_arrow

from flows.inventory.schema import HIVE_KEYS, SCHEMAS, TABLES, check_name  # noqa: F401 (re-exported)


@dataclass(frozen=True)
class Store:
    """An inventory root on some filesystem."""

    fs: fsspec.AbstractFileSystem
    base: str
    url: str

    @classmethod
    def open(cls, root, filesystem: fsspec.AbstractFileSystem | None = None) -> Store:
        url = os.fspath(root)
        if filesystem is not None:
            return cls(filesystem, url.rstrip("/"), url)
        fs, base = fsspec.core.url_to_fs(url)
        return cls(fs, base.rstrip("/") or "/", url)

    @property
    def local(self) -> bool:
        return isinstance(self.fs, LocalFileSystem)

    def join(self, *parts: str) -> str:
        return "/".join([self.base, *parts])

    def partition(self, table: str, region: str, run_date: str) -> str:
        return self.join(table, f"region={region}", f"run_date={run_date}")

    def uri(self, path: str) -> str:
        """A path a reader outside fsspec (DuckDB with the fs registered) understands."""
        if self.local:
            return path
        protocol = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]
        return f"{protocol}://{path.lstrip('/')}" if protocol != "memory" else f"memory://{path}"

    def glob(self, table: str, region: str | None = None) -> list[str]:
        pattern = self.join(table, f"region={region or '*'}", "run_date=*", "*.parquet")
        return sorted(self.fs.glob(pattern))

    def rename(self, src: str, dst: str) -> None:
        if self.local:
            os.rename(src, dst)
        else:
            self.fs.mv(src, dst, recursive=True)

    def rm(self, path: str) -> None:
        if self.fs.exists(path):
            self.fs.rm(path, recursive=True)


def run_file(run_id: str) -> str:
    return f"part-{run_id}.parquet"


def to_table(gdf: gpd.GeoDataFrame, table: str) -> pa.Table:
    """GeoParquet 1.1 arrow table (WKB, PROJJSON CRS, ``bbox`` covering) with a fixed schema."""
    arrow = _geopandas_to_arrow(
        gdf, index=False, geometry_encoding="WKB", schema_version="1.1.0", write_covering_bbox=True
    )
    fields = []
    for f in arrow.schema:
        want = SCHEMAS[table].get(f.name)
        fields.append(f if want is None else pa.field(f.name, want, nullable=True))
    return arrow.cast(pa.schema(fields, metadata=arrow.schema.metadata))


def write_parquet(store: Store, table: pa.Table, path: str, row_group_size: int) -> None:
    with store.fs.open(path, "wb") as f:
        pq.write_table(
            table,
            f,
            compression="zstd",
            row_group_size=max(1, row_group_size),
            write_statistics=True,
        )


def geo_metadata(store: Store, path: str) -> dict:
    schema = pq.read_schema(path, filesystem=store.fs)
    meta = (schema.metadata or {}).get(b"geo")
    if meta is None:
        raise ValueError(f"{path} is not GeoParquet (no 'geo' metadata)")
    return json.loads(meta)


def model_ids(store: Store, path: str) -> set[str]:
    col = pq.read_table(path, columns=["model_id"], filesystem=store.fs).column("model_id")
    return {m for m in col.to_pylist() if m is not None}


@contextmanager
def staged(store: Store, final: str) -> Iterator[str]:
    """A fresh staging folder beside ``final``; removed unless :func:`swap` consumed it."""
    parent, name = final.rsplit("/", 1)
    tmp = f"{parent}/.tmp-{name}-{uuid.uuid4().hex[:8]}"
    store.fs.makedirs(tmp, exist_ok=True)
    try:
        yield tmp
    except BaseException:
        store.rm(tmp)
        raise


def copy_siblings(store: Store, final: str, tmp: str, keep_out: str) -> None:
    """Carry the other runs' files of a partition into its staging folder."""
    if not store.fs.exists(final):
        return
    for path in store.fs.ls(final, detail=False):
        name = path.rstrip("/").rsplit("/", 1)[-1]
        if name.endswith(".parquet") and name != keep_out:
            if store.local:
                try:
                    os.link(path, f"{tmp}/{name}")
                    continue
                except OSError:
                    pass
            store.fs.copy(path, f"{tmp}/{name}")


def swap(store: Store, tmp: str, final: str) -> None:
    """Replace the partition folder ``final`` by ``tmp``: old one aside, new one in, old one gone.

    Readers see either the old or the new partition (or, for an instant, none) — never both.
    """
    parent, name = final.rsplit("/", 1)
    old = None
    if store.fs.exists(final):
        old = f"{parent}/.old-{name}-{uuid.uuid4().hex[:8]}"
        store.rename(final, old)
    try:
        store.rename(tmp, final)
    except BaseException:
        if old is not None:
            store.rename(old, final)
        raise
    if old is not None:
        store.rm(old)
