"""What the terminal shows: by default a screen a person wants to read, everything with ``-v``.

By default a monitoring run prints one line per stage (``[3/6] predict   done in 12.1 s``; on a
terminal the line appears when the stage starts, its progress bar runs under it and vanishes,
and the line is rewritten with the time), the run summary and where its outputs are.
Warnings show as one line each, and so do Prefect's task retries. Our own packages' INFO
messages (``changevg``, ``catalogs``, ``tiling``, ``flows``) show too.
Hidden unless ``-v``: Dask's ``distributed`` INFO lines (in this process and, through Dask's
config, in worker processes), the transformers weight-loading bar (``Loading weights: …``),
Prefect's temporary-server banner and its per-task state lines, and other libraries' error
records and tracebacks (the error that ends a run reaches the command line, which reports it).

Everything here happens before Prefect, Dask, tqdm or transformers are imported: the settings
that those libraries read once, at import, are environment variables.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from typing import TextIO

__all__ = [
    "MONITORING_COMMANDS",
    "StageConsole",
    "TerminalHandler",
    "VerboseConsole",
    "configure_terminal",
]

#: Commands that run the monitoring flow (their stage lines and progress bars are drawn here).
MONITORING_COMMANDS = frozenset({"run", "demo", "watch"})

#: Our packages: their INFO messages are meant for the person at the terminal.
OWN_PACKAGES = ("changevg", "catalogs", "tiling", "flows")

#: Library switches read at import, for a quiet terminal (``-v`` leaves them alone).
QUIET_ENV = {
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # transformers' "Loading weights" bar reads this
    "DASK_LOGGING__DISTRIBUTED": "warning",  # worker processes configure logging from it
}

# The flow's stage messages (flows.monitor._run) and the Dask dashboard line.
_STAGE = re.compile(r"^\[(?P<i>\d+)/(?P<n>\d+)\] (?P<name>\S+) (?:…|done in (?P<s>[\d.]+) s)$")
_RETRY = re.compile(r" - Retry \d+/\d+ will start")  # Prefect's task retries (INFO)
_WHERE = re.compile(r"^(?:dask: (?P<dask>\S+)|View at (?P<ui>\S+))$")
_VERBOSE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_terminal(verbose: bool, command: str | None = None) -> None:
    """Set up logging and the library switches for one ``changevg`` command.

    Args:
        verbose: ``-v``: every log line (DEBUG and up) with time and logger name, library
            progress bars and banners included.
        command: The sub-command; for :data:`MONITORING_COMMANDS` progress bars on a terminal
            are drawn in place of the stage line instead of staying behind.

    Safe to call more than once (tests call ``main`` many times): the handler it installed
    before is replaced, not duplicated.
    """
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")  # busy CPUs
    if not verbose:
        for key, value in QUIET_ENV.items():
            os.environ.setdefault(key, value)
        _quiet_loaded_libraries()
        if command in MONITORING_COMMANDS:
            # tqdm takes parameter defaults from TQDM_* at import; "" is False for `leave`, so
            # the model stage's bars vanish when done and the stage's own line replaces them
            os.environ.setdefault("TQDM_LEAVE", "")
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, TerminalHandler)]:
        root.removeHandler(old)
    handler: logging.Handler = VerboseConsole() if verbose else StageConsole()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.getLogger("rasterio").setLevel(logging.WARNING)  # GDAL chatter on expected errors
    for name in ("httpx", "httpcore"):  # API chatter, even with -v
        logging.getLogger(name).setLevel(logging.WARNING)
    if not verbose:
        logging.getLogger("distributed").setLevel(logging.WARNING)


def _quiet_loaded_libraries() -> None:
    """The same switches for libraries a caller (a test, a notebook) imported already."""
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()


class TerminalHandler(logging.Handler):
    """A handler writing to whatever ``sys.stderr`` is at the time (pytest swaps it).

    Public names and a formatter on purpose: Prefect's logging set-up keeps a root handler
    only when it looks like the user's (a formatter, a class name without a leading ``_``).
    """

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # a closed pipe or captured stream: nothing to show on
            pass


class VerboseConsole(TerminalHandler):
    """``-v``: every record, with time, level and logger name."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter(_VERBOSE_FORMAT, datefmt="%H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._write(self.format(record) + "\n")
        except Exception:  # noqa: BLE001 - logging must never break the run
            self.handleError(record)


class StageConsole(TerminalHandler):
    """The default terminal: stage lines, our packages' messages, warnings, retries.

    On a terminal a stage's line is written when it starts, its progress bars run on the line
    below (they clear themselves when done), and the line is rewritten in place with the stage's
    time when it is done; elsewhere (a pipe, a log file, CI) only the finished line is written.
    Other libraries' errors are left to the command line, which reports the one that ends the
    run (``-v`` shows them all); warnings show as one line each.
    """

    def __init__(self, *, tty: bool | None = None) -> None:
        super().__init__(logging.INFO)
        # a formatter marks this as the user's handler: Prefect then keeps it on the root logger
        self.setFormatter(logging.Formatter("%(message)s"))
        self._tty = tty
        self._open: str | None = None  # the stage started on a terminal and not done yet
        self._below = 0  # lines written under that stage's line since it started

    @property
    def tty(self) -> bool:
        """Whether the stream is a terminal (then lines are redrawn in place)."""
        if self._tty is not None:
            return self._tty
        isatty = getattr(self.stream, "isatty", None)
        return bool(isatty and isatty())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._show(record)
        except Exception:  # noqa: BLE001 - logging must never break the run
            self.handleError(record)

    def _show(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        own = record.name.split(".")[0] in OWN_PACKAGES
        if stage := _STAGE.match(message):
            label = f"[{stage['i']}/{stage['n']}] {stage['name']:<9}"
            if stage["s"] is None:
                self._start(f"{label} …")
            else:
                self._done(f"{label} done in {stage['s']} s")
        elif where := _WHERE.match(message):
            self._line(
                f"dask dashboard: {where['dask']}"
                if where["dask"]
                else f"prefect flow run: {where['ui']}"
            )
        elif _RETRY.search(message):
            self._line(f"retrying: {_first_line(message)}")
        elif record.levelno >= logging.WARNING and (own or record.levelno < logging.ERROR):
            self._line(f"{record.levelname.lower()}: {_first_line(message)}")
        elif own and record.levelno >= logging.INFO:
            self._line(message)
        # anything else: other libraries' INFO (distributed, Prefect's banner and task states)
        # and errors (the exception reaches the command line, which reports it)

    def _start(self, text: str) -> None:
        if self.tty:
            self._write(f"\r\x1b[K{text}\n")
            self._open, self._below = text, 0

    def _done(self, text: str) -> None:
        if self.tty and self._open is not None and self._below == 0:
            self._write(f"\r\x1b[K\x1b[1A\r\x1b[K{text}\n")  # over the stage's own line
        else:
            self._write(f"\r\x1b[K{text}\n" if self.tty else f"{text}\n")
        self._open = None

    def _line(self, text: str) -> None:
        if self.tty:
            self._write(f"\r\x1b[K{text}\n")  # \r, erase: a progress bar may be on this line
            self._below += 1
        else:
            self._write(f"{text}\n")


def _first_line(message: str) -> str:
    lines = message.strip().splitlines()
    return lines[0] if lines else ""
