"""Runs that go wrong or go big: a killed run, a 2-process Dask cluster, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import geopandas as gpd
import pytest
from distributed.diagnostics.plugin import SchedulerPlugin

from flows.cli import main
from flows.request import RunRequest
from tests.integration.flows.test_monitor import params

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _argv(p: dict) -> list[str]:
    argv = ["run"]
    for key, value in p.items():
        if value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        argv += [flag] if value is True else [flag, str(value)]
    return argv


def test_killed_run_redoes_only_missing_tiles(small_region, small_server, tmp_path):
    """SIGKILL a real `changevg run` part-way through the model stage, then run it again."""
    config = tmp_path / "changevg.toml"
    config.write_text("[predict]\nthreshold = 0.0\nscreen_batch = 4\nvlm_batch = 1\n")
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "flows.cli", "--config", str(config)]
    argv += _argv(params(small_region, small_server, out))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    proc = subprocess.Popen(argv, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            done = list(out.glob("results/*/*-*.json"))
            if len(done) >= 3:
                break
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    before_kill = {p.name: p.stat().st_mtime_ns for p in out.glob("results/*/*-*.json")}
    assert 3 <= len(before_kill) < 16, "the kill should land while tiles are still missing"
    assert not (out / "inventory").exists()

    assert main(["--config", str(config), *_argv(params(small_region, small_server, out))]) == 0
    after = {p.name: p.stat().st_mtime_ns for p in out.glob("results/*/*-*.json")}
    assert {k: after[k] for k in before_kill} == before_kill  # finished tiles were not redone
    summary = json.loads((out / "run.json").read_text())
    assert summary["status"] == "completed"
    assert summary["tiles_reused"] == len(before_kill)
    assert summary["tiles_sent_to_vlm"] == len(after) - len(before_kill)
    tiles = gpd.read_parquet(out / "inventory" / "tiles")
    assert len(tiles) == len(after) and tiles["tile_id"].is_unique
    assert not list(out.glob("results/*/.*.tmp"))


class _Restrictions(SchedulerPlugin):
    """Scheduler plugin: the resource restrictions of every model batch task it sees."""

    name = "changevg-restrictions"

    def __init__(self, scheduler) -> None:
        super().__init__()
        self.scheduler = scheduler
        self.seen: dict[str, dict | None] = {}
        self.workers: set[str] = set()

    def transition(self, key, start, finish, *args, **kwargs):
        name = key if isinstance(key, str) else key[0]
        if finish == "memory" and name.startswith(("screen_batch", "analyse_batch")):
            ts = self.scheduler.tasks.get(key)
            self.seen[name] = ts.resource_restrictions if ts else None
            if kwargs.get("worker"):
                self.workers.add(kwargs["worker"])


def test_flow_on_a_two_process_local_cluster(small_region, small_server, tmp_path):
    """The flow on a real distributed.LocalCluster with 2 worker processes offering a GPU."""
    from distributed import LocalCluster

    from flows.monitor import monitor_region

    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
        resources={"GPU": 1},
    ) as cluster:
        plugin = _Restrictions(cluster.scheduler)
        cluster.scheduler.add_plugin(plugin)
        out = tmp_path / "run"
        request = params(small_region, small_server, out, dask_address=cluster.scheduler_address)
        summary = monitor_region(RunRequest(**request))
    assert summary["status"] == "completed"
    assert plugin.seen, "no model batch ran on the cluster"
    assert any(k.startswith("screen_batch") for k in plugin.seen)
    assert all(r == {"GPU": 1} for r in plugin.seen.values()), plugin.seen
    assert (out / "inventory" / "tiles").exists() and (out / "report.html").exists()


# --- bad input: each a clear message and the right exit code ---------------------------------


def test_no_coverage_writes_no_inventory(small_region, small_server, tmp_path, capsys):
    p = params(small_region, small_server, tmp_path / "run", aoi="10.0,10.0,10.01,10.01")
    assert main(_argv(p)) == 1
    err = capsys.readouterr().err
    assert "no" in err.lower() and ("cover" in err.lower() or "item" in err.lower()), err
    assert not (tmp_path / "run" / "inventory").exists()
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] != "completed"


def test_missing_model_folder(small_region, small_server, tmp_path, capsys):
    p = params(small_region, small_server, tmp_path / "run", model=str(tmp_path / "nope"))
    assert main(_argv(p)) == 2
    err = capsys.readouterr().err
    assert "nope" in err and "does not exist" in err
    assert not (tmp_path / "run").exists()


def test_unwritable_output_root(small_region, small_server, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    p = params(small_region, small_server, blocker / "run")
    assert main(_argv(p)) == 2
    err = capsys.readouterr().err
    assert "not writable" in err and "a-file" in err


def test_other_model_same_run_id_refused_unless_overwrite(
    small_region, small_server, tiny_models, tmp_path, capsys
):
    _, other_model = tiny_models
    p = params(small_region, small_server, tmp_path / "run", run_id="fixed-run")
    assert main(_argv(p)) == 0
    p_other = {**p, "model": str(other_model)}
    assert main(_argv(p_other)) == 1
    err = capsys.readouterr().err
    assert "fixed-run" in err or "model" in err
    assert "overwrite" in err
    assert main(_argv({**p_other, "overwrite": True})) == 0
    tiles = gpd.read_parquet(tmp_path / "run" / "inventory" / "tiles")
    assert set(tiles["model_id"]) == {tiles["model_id"].iloc[0]}
    assert tiles["model_id"].iloc[0].startswith(Path(other_model).name)


def test_flow_writes_to_an_fsspec_url(small_region, small_server):
    """Tile store, per-tile results, inventory, report and run.json all on `memory://`
    (the stand-in for object storage such as `s3://`, which this machine cannot reach)."""
    import fsspec

    from flows.inventory.query import summary as inventory_summary
    from flows.monitor import monitor_region

    out = "memory://changevg-flow-test/run"
    result = monitor_region(RunRequest(**params(small_region, small_server, out)))
    fs = fsspec.filesystem("memory")
    root = "/changevg-flow-test/run"
    for name in ("tiles.zarr/zarr.json", "report.html", "run.json"):
        assert fs.exists(f"{root}/{name}"), name
    assert len(fs.glob(f"{root}/results/*/*-*.json")) == result["tiles_screened"]
    table = inventory_summary(f"{out}/inventory")
    assert table["tiles"].tolist() == [result["tiles"] - result["tiles_mostly_nodata"]]
    assert table["changed_tiles"].tolist() == [result["changed_tiles"]]
    fs.rm(root, recursive=True)
