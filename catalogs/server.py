"""An embedded STAC API on 127.0.0.1: ``rustac serve`` (memory backend) fed from local files.

Used to search local or synthetic regions with exactly the same code path as a remote catalog::

    with StacServer("regions/demo") as srv:
        pair = search_pairs(srv.url, collection="demo", aoi=..., before=..., after=...)

The server only ever binds 127.0.0.1; the process is terminated when the context exits (also on
errors and at interpreter exit).
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlparse

from catalogs.errors import CatalogError, InputError

__all__ = ["StacServer", "serve_catalog"]

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
PathLike = str | os.PathLike[str]


class StacServer:
    """A ``rustac serve`` STAC API over local STAC files, bound to 127.0.0.1.

    Args:
        paths: one or more of: a FeatureCollection JSON (e.g. a recorded API response), an
            ndjson file of items, a single item JSON, a collection JSON, or a folder holding
            ``collection.json`` plus ``items.ndjson`` or ``items.json`` (synthetic region output).
        port: TCP port; default a free one.
        startup_timeout_s: how long to wait for the API to answer ``GET /``.
        rustac: path of the ``rustac`` executable; default the one next to ``sys.executable``,
            else the one on ``PATH``.

    Items without a ``collection`` get the single collection given, or else a collection that
    rustac generates (``--create-collections``); so do items whose collection JSON is missing.
    Relative and absolute local asset paths become ``file://`` URIs; links are dropped.
    """

    def __init__(
        self,
        paths: PathLike | Sequence[PathLike],
        *,
        port: int | None = None,
        startup_timeout_s: float = 20.0,
        rustac: PathLike | None = None,
    ) -> None:
        if isinstance(paths, str | os.PathLike):
            paths = [paths]
        self.paths = [Path(p) for p in paths]
        if not self.paths:
            raise InputError("StacServer: no paths given; pass STAC files or a region folder")
        if port is not None and not 0 < int(port) < 65536:
            raise InputError(f"StacServer: port={port} is not a TCP port (1..65535)")
        self.port = int(port) if port is not None else None
        self.startup_timeout_s = startup_timeout_s
        self._rustac = Path(rustac) if rustac else None
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmp: Path | None = None
        self._finalizer: weakref.finalize | None = None
        self.collections: list[str] = []
        self.n_items = 0

    # -- public API ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Root URL of the running API, e.g. ``http://127.0.0.1:40123/``."""
        if self._proc is None or self.port is None:
            raise CatalogError("StacServer is not running; use it as a context manager or start()")
        return f"http://{HOST}:{self.port}/"

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> StacServer:
        """Convert the inputs, start rustac and wait until the API answers. Idempotent."""
        if self._proc is not None:
            return self
        exe = _find_rustac(self._rustac)
        self._tmp = Path(tempfile.mkdtemp(prefix="changevg-stac-"))
        try:
            hrefs = self._prepare(self._tmp)
            attempts = 1 if self.port is not None else 3
            for attempt in range(attempts):
                port = self.port if self.port is not None else _free_port()
                if self._launch(exe, hrefs, port, last=attempt == attempts - 1):
                    break
        except BaseException:
            self.stop()
            raise
        log.info(
            "STAC API at %s (%d items, collections %s)", self.url, self.n_items, self.collections
        )
        return self

    def stop(self) -> None:
        """Terminate the server and remove its temporary files. Safe to call twice."""
        if self._finalizer is not None:
            self._finalizer()
            self._finalizer = None
        elif self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
        self._proc = None
        self._tmp = None

    def wait(self, timeout: float | None = None) -> int | None:
        """Block until the server exits (e.g. for ``changevg catalog serve``); its exit code."""
        if self._proc is None:
            return None
        try:
            return self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def __enter__(self) -> StacServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = self.url if self.running else "stopped"
        return f"StacServer({[str(p) for p in self.paths]}, {state})"

    # -- internals ----------------------------------------------------------------------------

    def _prepare(self, tmp: Path) -> list[str]:
        collections: dict[str, dict[str, Any]] = {}
        items: dict[tuple[str | None, str], dict[str, Any]] = {}
        duplicates = 0
        for path in self.paths:
            colls, its = _read_source(path)
            for coll in colls:
                coll = {k: v for k, v in coll.items() if k != "links"}
                coll["links"] = []
                collections[str(coll.get("id"))] = coll
            for item in its:
                key = (item.get("collection"), str(item.get("id")))
                duplicates += key in items
                items[key] = item
        if duplicates:
            log.warning("StacServer: %d duplicate item id(s); the last one read wins", duplicates)
        if len(collections) == 1:
            only = next(iter(collections))
            for item in items.values():
                item.setdefault("collection", only)
        hrefs = []
        for n, coll in enumerate(collections.values()):
            out = tmp / f"collection-{n}.json"
            out.write_text(json.dumps(coll), encoding="utf-8")
            hrefs.append(str(out))
        if items:
            out = tmp / "items.ndjson"
            with out.open("w", encoding="utf-8") as fh:
                for item in items.values():
                    fh.write(json.dumps(item, separators=(",", ":")) + "\n")
            hrefs.append(str(out))
        if not hrefs:
            raise InputError(f"StacServer: no collections or items found in {self.paths}")
        self.n_items = len(items)
        ids = set(collections) | {str(i.get("collection")) for i in items.values()}
        self.collections = sorted(i for i in ids if i != "None")
        return hrefs

    def _launch(self, exe: Path, hrefs: list[str], port: int, *, last: bool) -> bool:
        assert self._tmp is not None
        cmd = [str(exe), "serve", "--addr", f"{HOST}:{port}", "--create-collections", *hrefs]
        stderr_path = self._tmp / f"rustac-{port}.stderr"
        with stderr_path.open("wb") as err, open(os.devnull, "wb") as out:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=self._tmp,
                preexec_fn=_die_with_parent() if sys.platform == "linux" else None,
            )
        self._proc, self.port = proc, port
        self._finalizer = weakref.finalize(self, _terminate, proc, self._tmp)
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                stderr = _tail(stderr_path)
                in_use = "in use" in stderr.lower()
                if in_use and not last:
                    self._finalizer.detach()
                    self._proc = None
                    return False
                hint = (
                    f"port {port} on {HOST} is in use: choose another port or omit it"
                    if in_use
                    else "check that the files are valid STAC (items, collections, ndjson)"
                )
                raise CatalogError(
                    f"rustac serve exited with code {proc.returncode} before answering at "
                    f"http://{HOST}:{port}/: {stderr or '(no stderr)'}; {hint}"
                )
            if _answers(port):
                return True
            time.sleep(0.05)
        stderr = _tail(stderr_path)
        raise CatalogError(
            f"rustac serve did not answer GET http://{HOST}:{port}/ within "
            f"{self.startup_timeout_s:g} s; stderr: {stderr or '(empty)'}; raise "
            "startup_timeout_s for very large inputs"
        )


def serve_catalog(paths: PathLike | Sequence[PathLike], *, port: int | None = None) -> StacServer:
    """Start a :class:`StacServer` and return it running; call ``.stop()`` or use ``with``."""
    return StacServer(paths, port=port).start()


# -- reading inputs -----------------------------------------------------------------------------


def _read_source(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(collections, items) from one input path, asset hrefs made absolute."""
    if path.is_dir():
        found = [path / n for n in ("collection.json", "items.ndjson", "items.json")]
        present = [p for p in found if p.is_file()]
        if not any(p.name.startswith("items") for p in present):
            raise InputError(
                f"STAC folder {str(path)!r} has no items.ndjson or items.json; give a synthetic "
                "region folder or the STAC files themselves"
            )
        if (path / "items.ndjson").is_file() and (path / "items.json").is_file():
            present.remove(path / "items.json")  # same items twice
        colls: list[dict[str, Any]] = []
        items: list[dict[str, Any]] = []
        for p in present:
            c, i = _read_source(p)
            colls += c
            items += i
        return colls, items
    if not path.is_file():
        raise InputError(f"STAC input {str(path)!r}: no such file or folder")
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() in (".ndjson", ".jsonl", ".geojsonl", ".geojsons"):
            docs = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            doc = json.loads(text)
            docs = doc if isinstance(doc, list) else [doc]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"STAC input {str(path)!r}: not readable JSON/ndjson ({err})") from None
    colls, items = [], []
    for doc in _flatten(docs, path):
        if doc.get("type") == "Collection":
            colls.append(doc)
        else:
            items.append(_clean_item(doc, base=path.parent.resolve()))
    return colls, items


def _flatten(docs: Iterable[Any], path: Path) -> Iterable[dict[str, Any]]:
    for doc in docs:
        kind = doc.get("type") if isinstance(doc, Mapping) else None
        if kind == "FeatureCollection":
            yield from _flatten(doc.get("features") or [], path)
        elif kind in ("Feature", "Collection"):
            yield dict(doc)
        else:
            raise InputError(
                f"STAC input {str(path)!r}: unsupported document type {kind!r}; give items "
                "(Feature), item collections (FeatureCollection) or collections"
            )


def _clean_item(item: dict[str, Any], *, base: Path) -> dict[str, Any]:
    item = {k: v for k, v in item.items() if k != "links"}
    item["links"] = []
    assets = {}
    for key, asset in (item.get("assets") or {}).items():
        asset = dict(asset)
        href = str(asset.get("href", ""))
        scheme = urlparse(href).scheme
        if href and (scheme == "" or len(scheme) == 1):
            asset["href"] = (base / href).resolve().as_uri()
        assets[key] = asset
    item["assets"] = assets
    return item


# -- process helpers ----------------------------------------------------------------------------


def _find_rustac(explicit: Path | None) -> Path:
    candidates = [explicit] if explicit else [Path(sys.executable).parent / "rustac"]
    if not explicit and (found := shutil.which("rustac")):
        candidates.append(Path(found))
    for exe in candidates:
        if exe and exe.is_file() and os.access(exe, os.X_OK):
            return exe
    raise CatalogError(
        f"rustac executable not found (looked at {[str(c) for c in candidates]}); "
        "install it with `pip install rustac` in this environment"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _answers(port: int) -> bool:
    conn = http.client.HTTPConnection(HOST, port, timeout=1.0)
    try:
        conn.request("GET", "/")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def _tail(path: Path, limit: int = 2000) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""
    return text[-limit:]


def _terminate(proc: subprocess.Popen[bytes], tmp: Path | None) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    if tmp is not None:
        shutil.rmtree(tmp, ignore_errors=True)


def _die_with_parent() -> Any:
    """``preexec_fn`` asking Linux to SIGTERM rustac if this process dies (no orphans).

    Only from the main thread: the signal fires when the *thread* that started it exits.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None

    def _set() -> None:
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG

    return _set
