"""``changevg watch`` end to end: the real embedded STAC API (restarted on its port with one more
acquisition), real ``monitor_region`` runs under the ``watch_regions`` Prefect flow, a real kill.

One story, in order: the first poll runs the region's one acquisition while a second region's
catalog is down (skipped, reported, its state untouched); a repeat poll runs nothing; the catalog
comes back with one more acquisition; a watch killed in the middle of that run leaves the cursor
where it was, and the next poll completes the run (resuming its tiles), exactly once.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import geopandas as gpd
import pytest

from catalogs.server import StacServer
from catalogs.testing import shift_item, write_ndjson
from flows.cli import main
from flows.watch.state import StateStore

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

REPO = Path(__file__).resolve().parents[3]
CONFIG = """
[search]
retries = 1
backoff_s = 0.01
timeout_s = 5
[predict]
threshold = 0.0
screen_batch = 4
vlm_batch = 1
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _inset(bbox: tuple[float, float, float, float], f: float = 0.2) -> str:
    """An AOI inside the scene (both dates cover all of it)."""
    minx, miny, maxx, maxy = bbox
    dx, dy = (maxx - minx) * f, (maxy - miny) * f
    return f"{minx + dx:.6f},{miny + dy:.6f},{maxx - dx:.6f},{maxy - dy:.6f}"


def _regions(path: Path, url: str, aoi: str) -> Path:
    block = (
        '[[region]]\nname = "{name}"\ncatalog = "{url}"\ncollection = "synthetic-rgb"\n'
        'aoi = "{aoi}"\nbefore = "2022-01-01/2022-12-31"\n\n'
    )
    path.write_text(
        block.format(name="small", url=url, aoi=aoi)
        + block.format(name="down", url="http://127.0.0.1:9/", aoi=aoi)  # nothing listens
    )
    return path


def _results(root: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in root.glob("small/*/results/*/*.json")}


def test_each_new_acquisition_runs_once_and_survives_a_kill(small_region, tmp_path, capsys):
    config = tmp_path / "changevg.toml"
    config.write_text(CONFIG)
    root, state = tmp_path / "runs", tmp_path / "state"
    port = _free_port()
    regions = _regions(tmp_path / "regions.toml", f"http://127.0.0.1:{port}/", _inset(
        small_region.bbox_lonlat))  # fmt: skip
    argv = ["--config", str(config), "watch", "--regions", str(regions), "--state", str(state)]
    argv += ["--out-root", str(root), "--once"]
    items = [json.loads(x) for x in small_region.items_path.read_text().splitlines() if x]
    (after,) = [i for i in items if i["id"].endswith("-after")]
    later = write_ndjson([shift_item(after, days=270, suffix="-2025")], tmp_path / "later.ndjson")
    store = StateStore(state)

    # 1. the first poll: the 2024 acquisition runs; the region whose catalog is down is skipped
    with StacServer([small_region.root], port=port):
        assert main(argv) == 1  # a region had a problem
        out = capsys.readouterr().out
        assert "down: skipped, catalog failed (state unchanged): STAC API http://127.0.0.1:9/" in (
            out
        )
        (first,) = [p for p in root.glob("small/*") if p.is_dir()]
        assert first.name.startswith("2024-") and f"small: ran {first.name}" in out
        summary = json.loads((first / "run.json").read_text())
        assert summary["status"] == "completed" and summary["after_window"].startswith("2024-")
        cursor = store.load("small").cursor
        assert cursor and cursor.startswith("2024-") and not store.path("down").exists()
        done = _results(root)
        # 2. a repeat poll: nothing new, nothing runs again
        assert main(argv) == 1
        assert "small: no new acquisitions" in capsys.readouterr().out
        assert _results(root) == done and store.load("small").cursor == cursor

    # 3. the catalog restarts on its port with one more acquisition; the watch is killed mid-run
    with StacServer([small_region.root, later], port=port):
        cmd = [sys.executable, "-m", "flows.cli", *argv]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + 300
        try:
            while time.monotonic() < deadline and proc.poll() is None:
                if len(set(_results(root)) - set(done)) >= 2:
                    break
                time.sleep(0.05)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        partial = set(_results(root)) - set(done)
        assert partial, "the kill should land while the new acquisition's tiles are predicted"
        (second,) = [p for p in root.glob("small/*") if p.is_dir() and p != first]
        assert second.name.startswith("2025-")
        assert json.loads((second / "run.json").read_text())["status"] != "completed"
        assert store.load("small").cursor == cursor  # the cursor waits for the run

        # 4. the next poll completes that run, resuming it, and runs nothing else
        assert main(argv) == 1
        out = capsys.readouterr().out
        assert out.count("small: ran ") == 1 and f"small: ran {second.name}" in out
        resumed = json.loads((second / "run.json").read_text())
        assert resumed["status"] == "completed" and resumed["tiles_reused"] >= len(partial)
        assert resumed["after_window"].startswith("2025-")
        assert store.load("small").cursor > cursor
        assert sorted(p.name for p in root.glob("small/*") if p.is_dir()) == sorted(
            [first.name, second.name]
        )
        tiles = gpd.read_parquet(root / "inventory" / "tiles")
        assert sorted(set(tiles["run_id"])) == sorted([summary["run_id"], resumed["run_id"]])
        assert not tiles.duplicated(["run_id", "tile_id"]).any()

        # 5. and a repeat poll runs nothing
        final = _results(root)
        assert main(argv) == 1
        assert "small: no new acquisitions" in capsys.readouterr().out
        assert _results(root) == final
