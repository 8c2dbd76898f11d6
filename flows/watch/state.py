"""What ``changevg watch`` remembers between polls: one JSON file per region under ``--state``.

``{state}/{region}.json`` holds the region's *cursor* (every acquisition up to it has run to
completion), the acquisitions after the cursor that have run already (a newer one may finish
while an older one still waits for coverage), the partial acquisitions waiting and since when,
and the last completed runs. A file is replaced atomically (written beside, flushed, renamed),
so a kill leaves the old state or the new one, never half of one; and it is written only after
a run has completed, so a crash between detection and run loses nothing. A lock file keeps two
watchers from polling the same state at once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from catalogs.errors import InputError, RunError

__all__ = ["RegionState", "StateStore"]

_KEEP_RUNS = 50  # completed runs listed per region


@dataclass
class RegionState:
    """One region's watch state (see the module docstring).

    Attributes:
        region: The region name.
        cursor: ISO datetime (UTC): the end of the newest acquisition up to which all have run;
            ``None`` before the first completed run (then the search starts after the
            baseline window).
        done: Ids of acquisitions after the cursor that have run.
        pending: Acquisition id → when it was first seen partly covering the AOI (ISO).
        runs: The latest completed runs, newest last: acquisition, run id, output, when.
    """

    region: str
    cursor: str | None = None
    done: list[str] = field(default_factory=list)
    pending: dict[str, str] = field(default_factory=dict)
    runs: list[dict[str, str]] = field(default_factory=list)

    @property
    def cursor_time(self) -> dt.datetime | None:
        """The cursor as a UTC datetime."""
        return dt.datetime.fromisoformat(self.cursor) if self.cursor else None


class StateStore:
    """The ``--state`` folder: checked writable when opened.

    Raises:
        InputError: the folder cannot be created or written.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.root, prefix=".write-test-"):
                pass
        except OSError as exc:
            raise InputError(
                f"state folder {self.root} is not writable ({exc.strerror or exc}); give "
                "--state a folder this user can create and write"
            ) from None

    def path(self, region: str) -> Path:
        """The state file of ``region``."""
        return self.root / f"{region}.json"

    def load(self, region: str) -> RegionState:
        """The state of ``region`` (a fresh one when it has none yet)."""
        path = self.path(region)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return RegionState(region)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(
                f"state file {path} is not JSON ({exc}); restore it or delete it to start "
                "the region again after its baseline"
            ) from None
        try:
            return RegionState(**doc)
        except TypeError as exc:
            raise InputError(f"state file {path} is not a watch state: {exc}") from None

    def save(self, state: RegionState) -> Path:
        """Replace the region's state file atomically; returns its path."""
        state.runs = state.runs[-_KEEP_RUNS:]
        path = self.path(state.region)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(asdict(state), f, indent=2, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the folder's lock for one poll.

        Raises:
            RunError: another watcher holds it.
        """
        with open(self.root / ".watch.lock", "a+b") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RunError(
                    f"another changevg watch is polling with state {self.root}; wait for it "
                    "or give this one its own --state"
                ) from None
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
