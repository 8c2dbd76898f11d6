"""Helpers shared by the benchmarks: timing, peak RSS of a case run in a fresh subprocess, JSON out.

A benchmark script runs each case as ``python <script> --case NAME ...`` in a child process, so the
child's peak RSS belongs to that case alone; the child prints one JSON line (the last line of its
stdout) with at least ``seconds`` and ``peak_rss_mb``.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

RESULT_PREFIX = "BENCH-RESULT "


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (VmHWM, else ru_maxrss)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0  # kB
    except OSError:
        pass
    ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return ru / (1024.0 * 1024.0) if sys.platform == "darwin" else ru / 1024.0


def current_rss_mb() -> float:
    """Current resident set size of this process, in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def cpu_seconds() -> float:
    """User + system CPU time of this process so far (all threads), in seconds."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


@contextmanager
def stopwatch():
    """``with stopwatch() as t: ...`` then ``t()`` gives the elapsed seconds."""
    started = time.perf_counter()
    done: list[float] = []
    yield lambda: done[0] if done else time.perf_counter() - started
    done.append(time.perf_counter() - started)


def emit(result: dict[str, Any]) -> None:
    """Print a child's result (called once, at the end of a case run in a subprocess)."""
    result = {"peak_rss_mb": round(peak_rss_mb(), 1), **result}
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def run_case(argv: Sequence[str], *, timeout: float | None = None) -> dict[str, Any]:
    """Run ``python argv...`` in a fresh subprocess and return the JSON result it emitted.

    ``child_maxrss_mb`` is the kernel's view of the child's peak RSS (``wait4`` rusage), which
    also counts memory the child used before it could measure itself.
    """
    cmd = [sys.executable, *argv]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        proc.kill()
        out, err = proc.communicate()
        raise RuntimeError(
            f"case timed out after {timeout}s: {' '.join(cmd)}\n{err[-2000:]}"
        ) from exc
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"case failed ({proc.returncode}): {' '.join(cmd)}\n{err[-4000:]}")
    lines = [ln for ln in out.splitlines() if ln.startswith(RESULT_PREFIX)]
    if not lines:
        raise RuntimeError(f"case printed no result: {' '.join(cmd)}\n{out[-2000:]}\n{err[-2000:]}")
    result = json.loads(lines[-1][len(RESULT_PREFIX) :])
    result["process_seconds"] = round(wall, 3)
    return result


def interleaved(cases: Sequence[Any], repeat: int) -> list[tuple[int, Any]]:
    """``(repeat_index, case)`` in round-robin order, so slow drift spreads over all cases."""
    return [(r, case) for r in range(repeat) for case in cases]


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def machine_info() -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "loadavg": load,
    }


def write_json(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` as indented JSON at ``path`` (parents created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path


def format_table(
    rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str, Callable]]
) -> str:
    """A plain-text table; ``columns`` are ``(header, key, formatter)``."""
    cells = [[h for h, _, _ in columns]]
    for row in rows:
        cells.append([fmt(row.get(key)) for _, key, fmt in columns])
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def fmt(spec: str) -> Callable[[Any], str]:
    """Formatter for :func:`format_table`: ``format(value, spec)``, '-' for missing values."""
    return lambda v: "-" if v is None else (format(v, spec) if spec else str(v))
