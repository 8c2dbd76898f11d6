"""What ``changevg run`` shows: real runs on a terminal (a pseudo-terminal), in a pipe and with
``-v``; and the Prefect artifacts of a run, read back through the Prefect client."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from flows.artifacts import artifact_key, report_link
from flows.cli import main
from tests.integration.flows.test_monitor import params
from tests.integration.flows.test_monitor_runs import _argv

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

REPO = Path(__file__).resolve().parents[3]
STAGES = ("search", "tile", "predict", "vectorise", "inventory", "report")
NOISE = ("distributed", "Loading weights", "Starting temporary server", "Finished in state")


def _env() -> dict[str, str]:
    """This session's environment minus the quiet switches (each run decides for itself)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TQDM_", "DASK_LOGGING"))}
    env.pop("HF_HUB_DISABLE_PROGRESS_BARS", None)
    return {**env, "PYTHONPATH": str(REPO)}


def _screen(raw: bytes) -> list[str]:
    """What a terminal shows after ``raw``: \\r, \\n, erase-line and cursor-up applied."""
    lines: list[list[str]] = [[]]
    row = col = 0
    text = raw.decode("utf-8", "replace")
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\x1b":
            m = re.match(r"\x1b\[(\d*)([A-Za-z])", text[i:])
            assert m, f"unexpected escape at {text[i : i + 10]!r}"
            n, op = int(m[1] or 1), m[2]
            if op == "K":
                del lines[row][col:]
            elif op == "A":
                row = max(0, row - n)
            i += len(m[0])
            continue
        if ch == "\r":
            col = 0
        elif ch == "\n":
            row += 1
            if row == len(lines):
                lines.append([])
        else:
            line = lines[row]
            line.extend(" " * (col - len(line)))
            if col < len(line):
                line[col] = ch
            else:
                line.append(ch)
            col += 1
        i += 1
    return ["".join(line).rstrip() for line in lines if "".join(line).strip()]


def _check_stage_lines(lines: list[str]) -> None:
    stage_lines = [ln for ln in lines if ln.startswith("[")]
    assert len(stage_lines) == len(STAGES), lines
    for k, (line, name) in enumerate(zip(stage_lines, STAGES, strict=True), start=1):
        assert re.fullmatch(rf"\[{k}/6\] {name}\s+done in \d+\.\d s", line), line
    others = [ln for ln in lines if not ln.startswith("[")]
    assert len(others) == 1 and others[0].startswith("dask dashboard: http://127.0.0.1:"), lines


def test_quiet_run_on_a_terminal(small_region, small_server, tmp_path):
    """On a terminal: one line per stage, the progress bars run under it and vanish."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 110, 0, 0))
    argv = [sys.executable, "-m", "flows.cli"] + _argv(
        params(small_region, small_server, tmp_path / "run")
    )
    proc = subprocess.Popen(
        argv,
        env=_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
        start_new_session=True,
    )
    os.close(slave)
    raw = b""
    deadline = time.monotonic() + 400
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                raw += chunk
            elif proc.poll() is not None:
                break
        stdout = proc.communicate(timeout=60)[0].decode()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        os.close(master)
    assert proc.returncode == 0, raw.decode(errors="replace")[-3000:]
    assert b"screen:" in raw and b"tile/s" in raw, "the model stage showed no progress bar"
    text = raw.decode(errors="replace")
    assert not [n for n in NOISE if n in text], text
    _check_stage_lines(_screen(raw))
    assert "report:" in stdout and str(tmp_path / "run" / "report.html") in stdout


def test_verbose_run_shows_the_libraries(small_region, small_server, tmp_path):
    """``-v``: Dask's INFO lines, the weight-loading bar and Prefect's banner are back."""
    argv = [sys.executable, "-m", "flows.cli", "-v"] + _argv(
        params(small_region, small_server, tmp_path / "run")
    )
    done = subprocess.run(argv, env=_env(), capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    for noise in ("INFO distributed.", "Loading weights", "Starting temporary server"):
        assert noise in done.stderr, noise
    assert re.search(r"INFO prefect\.flow_runs: \[3/6\] predict done in", done.stderr)


def test_quiet_run_in_a_pipe_and_its_prefect_artifacts(
    small_region, small_server, tmp_path, capfd, monkeypatch
):
    """Not a terminal: the finished stage lines only. The flow run carries the summary table
    and the report link (read back from the Prefect API)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    for key in ("HF_HUB_DISABLE_PROGRESS_BARS", "DASK_LOGGING__DISTRIBUTED", "TQDM_LEAVE"):
        monkeypatch.delenv(key, raising=False)  # what the run sets is undone afterwards
    out = tmp_path / "run"
    capfd.readouterr()
    assert main(_argv(params(small_region, small_server, out))) == 0
    captured = capfd.readouterr()
    assert not [n for n in NOISE if n in captured.err], captured.err
    _check_stage_lines(captured.err.splitlines())
    summary = json.loads((out / "run.json").read_text())

    keys = [artifact_key("summary", "small"), artifact_key("report", "small")]
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=keys))
        )
        ours = {}
        for artifact in found:
            run = client.read_flow_run(artifact.flow_run_id)
            if run.parameters["request"]["out"] == str(out):
                ours[artifact.type] = artifact
                assert run.flow_id and run.state.is_completed()
    assert set(ours) == {"table", "markdown"}, ours  # a link artifact is markdown
    table = ours["table"].data
    rows = {r["what"]: r["value"] for r in (json.loads(table) if isinstance(table, str) else table)}
    assert rows["run id"] == summary["run_id"]
    assert rows["changed tiles"] == str(summary["changed_tiles"])
    assert rows["new buildings (VLM counts)"] == str(summary["new_buildings"])
    link = ours["markdown"].data
    assert f"]({report_link(summary['report'])})" in link and link.startswith("[report of run")
    assert (out / "report.html").is_file()
