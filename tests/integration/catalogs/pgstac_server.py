"""A throwaway production STAC API on 127.0.0.1: stac-fastapi-pgstac on PostgreSQL + PostGIS.

``PgstacServer`` makes a fresh PostgreSQL cluster in a temporary folder (Debian's
``postgresql`` + ``postgresql-15-postgis-3``), starts it on a free loopback port, installs the
pgstac schema with ``pypgstac migrate``, loads collections and items with pypgstac's loader, and
serves them with ``stac-fastapi-pgstac`` under uvicorn on another free loopback port. ``stop()``
(also on errors, at exit, and — through ``PR_SET_PDEATHSIG`` — when the test process is killed)
stops both and deletes the folder (one a killed process left is deleted by the next start).
PostgreSQL refuses to run as root: as root the server processes run as the ``postgres`` user.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import weakref
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

HOST = "127.0.0.1"
DB_USER, DB_NAME = "changevg", "pgstac"
_PREFIX = "changevg-pgstac-"


def missing() -> str | None:
    """Why the stack cannot start here (``None``: it can)."""
    if _bindir() is None:
        return "PostgreSQL server binaries not found (apt install postgresql)"
    if not glob.glob("/usr/share/postgresql/*/extension/postgis.control"):
        return "PostGIS not installed (apt install postgresql-15-postgis-3)"
    for module in ("stac_fastapi.pgstac", "pypgstac", "psycopg", "uvicorn"):
        try:
            __import__(module)
        except ImportError:
            return f"{module} not installed (pip install stac-fastapi-pgstac 'pypgstac[psycopg]')"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no postgres user to run PostgreSQL as"
    return None


def collections_for(items: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Minimal collections (id, extent, license) for the collection ids the items name."""
    by_id: dict[str, list[Mapping[str, Any]]] = {}
    for item in items:
        by_id.setdefault(str(item["collection"]), []).append(item)
    out = []
    for cid, members in sorted(by_id.items()):
        boxes = [m["bbox"] for m in members if m.get("bbox")]
        times = sorted(
            str(t)
            for m in members
            for t in (m["properties"].get("datetime"), m["properties"].get("start_datetime"))
            if t
        )
        out.append(
            {
                "type": "Collection",
                "stac_version": "1.0.0",
                "id": cid,
                "description": f"{cid} (loaded for a test)",
                "license": "proprietary",
                "links": [],
                "extent": {
                    "spatial": {
                        "bbox": [
                            [
                                min(b[0] for b in boxes),
                                min(b[1] for b in boxes),
                                max(b[2] for b in boxes),
                                max(b[3] for b in boxes),
                            ]
                        ]
                    },
                    "temporal": {"interval": [[times[0], times[-1]]]},
                },
            }
        )
    return out


class PgstacServer:
    """stac-fastapi-pgstac over a temporary PostgreSQL on 127.0.0.1 (see the module docstring).

    Args:
        startup_timeout_s: How long PostgreSQL and the API each get to answer.
    """

    def __init__(self, *, startup_timeout_s: float = 90.0) -> None:
        self.startup_timeout_s = startup_timeout_s
        self.root: Path | None = None
        self.db_port: int | None = None
        self.api_port: int | None = None
        self._procs: list[subprocess.Popen[bytes]] = []
        self._finalizer: weakref.finalize | None = None

    @property
    def url(self) -> str:
        """The STAC API root, e.g. ``http://127.0.0.1:40123/``."""
        return f"http://{HOST}:{self.api_port}/"

    @property
    def dsn(self) -> str:
        """The database, for pypgstac and psycopg."""
        return f"postgresql://{DB_USER}@{HOST}:{self.db_port}/{DB_NAME}"

    def start(self) -> PgstacServer:
        """Create and start the database and the API; raises RuntimeError with the logs."""
        reason = missing()
        if reason:
            raise RuntimeError(f"cannot start stac-fastapi-pgstac here: {reason}")
        _remove_stale()
        self.root = Path(tempfile.mkdtemp(prefix=_PREFIX))
        (self.root / "owner.pid").write_text(str(os.getpid()))
        self._finalizer = weakref.finalize(self, _stop, self._procs, self.root)
        try:
            self._start_database()
            self._migrate()
            self._start_api()
        except BaseException:
            self.stop()
            raise
        return self

    def load(self, collections: Iterable[Mapping[str, Any]], items: Iterable[Mapping[str, Any]]):
        """Load (upsert) collections, then items, with pypgstac's loader."""
        from pypgstac.db import PgstacDB
        from pypgstac.load import Loader, Methods

        with PgstacDB(dsn=self.dsn) as db:
            loader = Loader(db=db)
            loader.load_collections(iter([dict(c) for c in collections]), Methods.upsert)
            loader.load_items(iter([dict(i) for i in items]), Methods.upsert)

    def stop(self) -> None:
        """Stop the API and the database and delete the folder. Safe to call twice."""
        if self._finalizer is not None:
            self._finalizer()
            self._finalizer = None

    def __enter__(self) -> PgstacServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- the parts ------------------------------------------------------------------------------

    def _start_database(self) -> None:
        assert self.root is not None
        bindir = _bindir()
        assert bindir is not None
        data, sock = self.root / "data", self.root / "sock"
        sock.mkdir()
        owner = _db_user()
        if owner is not None:  # root: PostgreSQL runs as postgres and must own its folders
            for path in (self.root, sock):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        log = self.root / "initdb.log"
        with log.open("wb") as sink:
            code = subprocess.call(
                [str(bindir / "initdb"), "-D", str(data), "-U", DB_USER, "--auth=trust",
                 "-E", "UTF8", "--no-sync"],
                stdout=sink, stderr=subprocess.STDOUT, preexec_fn=_child(owner, None),
            )  # fmt: skip
        if code:
            raise RuntimeError(f"initdb failed ({code}):\n{log.read_text()[-3000:]}")
        self.db_port = _free_port()
        settings = {
            "listen_addresses": HOST,
            "unix_socket_directories": str(sock),
            "fsync": "off",
            "full_page_writes": "off",
            "synchronous_commit": "off",
        }
        args = [str(bindir / "postgres"), "-D", str(data), "-p", str(self.db_port)]
        for key, value in settings.items():
            args += ["-c", f"{key}={value}"]
        self._spawn(args, "postgres.log", owner, signal.SIGQUIT)
        self._wait(self._db_ready, "PostgreSQL", "postgres.log")
        import psycopg

        admin = f"postgresql://{DB_USER}@{HOST}:{self.db_port}/postgres"
        with psycopg.connect(admin, autocommit=True) as con:
            con.execute(f"CREATE DATABASE {DB_NAME}")

    def _migrate(self) -> None:
        from pypgstac.db import PgstacDB
        from pypgstac.migrate import Migrate

        with PgstacDB(dsn=self.dsn) as db:
            Migrate(db).run_migration()

    def _start_api(self) -> None:
        self.api_port = _free_port()
        env = {
            **os.environ,
            "PGUSER": DB_USER,
            "PGPASSWORD": "unused-trust-auth",
            "PGHOST": HOST,
            "PGPORT": str(self.db_port),
            "PGDATABASE": DB_NAME,
            "DB_MIN_CONN_SIZE": "1",
            "DB_MAX_CONN_SIZE": "4",
        }
        args = [sys.executable, "-m", "uvicorn", "stac_fastapi.pgstac.app:create_app", "--factory",
                "--host", HOST, "--port", str(self.api_port), "--log-level", "warning"]  # fmt: skip
        self._spawn(args, "api.log", None, signal.SIGTERM, env=env, cwd=self.root)
        self._wait(self._api_ready, "stac-fastapi-pgstac", "api.log")

    def _spawn(
        self,
        args: list[str],
        log_name: str,
        owner: pwd.struct_passwd | None,
        death: signal.Signals,
        **kw: Any,
    ) -> None:
        assert self.root is not None
        log = (self.root / log_name).open("wb")
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_child(owner, death),
            **kw,
        )
        log.close()
        self._procs.append(proc)

    def _wait(self, ready: Callable[[], bool], what: str, log_name: str) -> None:
        assert self.root is not None
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self._procs):
                break
            if ready():
                return
            time.sleep(0.2)
        tail = (self.root / log_name).read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{what} did not start on {HOST}:\n{tail}")

    def _db_ready(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(
                f"postgresql://{DB_USER}@{HOST}:{self.db_port}/postgres", connect_timeout=2
            ):
                return True
        except psycopg.OperationalError:
            return False

    def _api_ready(self) -> bool:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only
        try:
            with opener.open(self.url, timeout=2) as resp:
                return resp.status == 200 and "conformsTo" in json.load(resp)
        except OSError:
            return False


def _remove_stale() -> None:
    """Delete folders left by a killed test process (its servers died with it)."""
    for folder in Path(tempfile.gettempdir()).glob(f"{_PREFIX}*"):
        try:
            os.kill(int((folder / "owner.pid").read_text()), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except (OSError, ValueError):  # no pid file yet, or not ours to judge
            continue


def _bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=_version)
    if found:
        return Path(found[-1]).parent
    exe = shutil.which("postgres")
    return Path(exe).parent if exe else None


def _version(path: str) -> int:
    part = Path(path).parents[1].name
    return int(part) if part.isdigit() else 0


def _db_user() -> pwd.struct_passwd | None:
    return pwd.getpwnam("postgres") if os.geteuid() == 0 else None


def _child(owner: pwd.struct_passwd | None, death: signal.Signals | None) -> Callable[[], None]:
    """``preexec_fn``: become ``owner`` (as root), then die with the parent (no orphans).

    The death signal is set after the user change: changing credentials clears it.
    """
    libc = ctypes.CDLL(None, use_errno=True)

    def _set() -> None:
        if owner is not None:
            os.setgroups([])
            os.setgid(owner.pw_gid)
            os.setuid(owner.pw_uid)
        if death is not None:
            libc.prctl(1, int(death))  # PR_SET_PDEATHSIG

    return _set


def _stop(procs: list[subprocess.Popen[bytes]], root: Path) -> None:
    for proc in reversed(procs):  # the API first, then the database
        if proc.poll() is None:
            # postgres: SIGINT is its fast shutdown; uvicorn: SIGINT stops it too
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
    procs.clear()
    shutil.rmtree(root, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]
