"""prefect.yaml end to end, offline: a real ``prefect server start`` on 127.0.0.1, the process
work pool, ``prefect deploy --all`` from the repository, ``prefect worker start`` and a run to
completion against the synthetic catalog served on 127.0.0.1.

Everything runs as separate processes with a temporary PREFECT_HOME (never ``~/.prefect``) and
telemetry off. Proxies point at a closed port on 127.0.0.1 (``NO_PROXY`` for 127.0.0.1), so a
library that tried another address (e.g. the server's lookup of Prefect's collection registry on
GitHub during ``work-pool create``) fails at once instead of leaving the machine. The server and
workers are stopped in ``finally`` blocks, their process groups and children included.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import inspect
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import get_type_hints
from zoneinfo import ZoneInfo

import psutil
import pytest
import yaml

from flows.request import IngestRequest, RunRequest

REPO = Path(__file__).resolve().parents[3]
PREFECT = Path(sys.executable).with_name("prefect")
POOL = "changevg-process"
BEFORE, AFTER = "2022-01-01/2022-12-31", "2024-01-01/2024-12-31"
WATCH = "flows/watch/flow.py:watch_regions"
CLOSED = "http://127.0.0.1:9"  # discard port: nothing listens, connections are refused


def _prefect_cmd() -> list[str]:
    exe = PREFECT if PREFECT.exists() else shutil.which("prefect")
    assert exe, "the prefect command is not installed next to this Python"
    return [str(exe)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(proc: subprocess.Popen, timeout: float = 15.0) -> None:
    """Stop ``proc``, its process group and all its descendants (flow runs start in their own
    session, so the group alone is not enough)."""
    try:
        family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        family = []
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    for p in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.terminate()
    _, alive = psutil.wait_procs(family, timeout=timeout)
    for p in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers left in the group
    proc.wait(timeout=timeout)


# --- prefect.yaml against the flows, without a server (fast) ----------------------------------


def _deployments() -> dict[str, dict]:
    doc = yaml.safe_load((REPO / "prefect.yaml").read_text())
    assert not doc.get("build") and not doc.get("push"), "nothing to build or push"
    (step,) = doc["pull"]
    assert step == {
        "prefect.deployments.steps.set_working_directory": {"directory": "{{ $CHANGEVG_HOME }}"}
    }
    return {d["name"]: d for d in doc["deployments"]}


def test_prefect_yaml_parameters_fit_the_flows_on_any_run_date() -> None:
    from prefect.client.schemas.schedules import CronSchedule

    import flows.monitor
    from catalogs.aoi import parse_aoi, parse_window, parse_windows

    deployments = _deployments()
    kinds = {d["entrypoint"] for d in deployments.values()}
    assert kinds == {"flows/monitor.py:monitor_region", "flows/monitor.py:ingest_region", WATCH}
    for name, dep in deployments.items():
        if dep["entrypoint"] == WATCH:
            continue  # test_watch_deployment_fits_its_flow
        path, func = dep["entrypoint"].split(":")
        assert (REPO / path).is_file()
        flow = getattr(flows.monitor, func)
        assert list(inspect.signature(flow.fn).parameters) == ["request"], name
        kind = get_type_hints(flow.fn)["request"]
        assert kind is {"monitor_region": RunRequest, "ingest_region": IngestRequest}[func]
        given = dep["parameters"]["request"]
        required = {f.name for f in fields(kind) if f.default is MISSING}
        assert required <= set(given) <= {f.name for f in fields(kind)}, name
        # Prefect validates the deployment's JSON parameters into the request dataclass
        assert flow.validate_parameters({"request": given})["request"] == kind(**given)
        assert dep["work_pool"]["name"] == POOL
        parse_aoi(given["aoi"])
        placeholders = {"region": given["region"], "run_id": "r", "run_date": "2026-01-01"}
        given["out"].format(**placeholders)
        given.get("inventory", "").format(**placeholders)
        # relative windows resolve, in order and apart, on month ends, leap days, New Year
        for today in ("2026-01-01", "2027-03-31", "2028-02-29", "2028-12-31", "2029-03-01"):
            day = dt.date.fromisoformat(today)
            parse_windows(
                parse_window(given["before"], today=day), parse_window(given["after"], today=day)
            )
        for schedule in dep.get("schedules") or []:
            CronSchedule(cron=schedule["cron"], timezone=schedule.get("timezone"))
    assert deployments["monitor-coachella"]["schedules"], "the monitor deployment is scheduled"


def test_watch_deployment_fits_its_flow() -> None:
    from prefect.client.schemas.schedules import IntervalSchedule

    from flows.watch.flow import watch_regions
    from flows.watch.regions import load_regions

    (dep,) = [d for d in _deployments().values() if d["entrypoint"] == WATCH]
    path, _ = dep["entrypoint"].split(":")
    assert (REPO / path).is_file() and dep["work_pool"]["name"] == POOL
    given = dep["parameters"]
    assert watch_regions.validate_parameters(given) == {**given, "settings": None}
    assert load_regions(REPO / given["regions"]), "the shipped regions file reads"
    (schedule,) = dep["schedules"]
    anchor = dt.datetime.fromisoformat(schedule["anchor_date"])
    interval = dt.timedelta(seconds=schedule["interval"])
    assert IntervalSchedule(interval=interval, anchor_date=anchor).interval == interval
    assert schedule["interval"] >= 600, "poll no more often than every 10 minutes"


# --- a real server, work pool, deploy and worker (slow) ---------------------------------------


@dataclass
class Server:
    url: str  # .../api
    env: dict[str, str]
    home: Path
    log: Path

    def cli(self, *args: str, cwd: Path, timeout: float = 180.0, **env: str) -> str:
        """Run ``prefect ARGS`` against this server; return its output, fail on non-zero exit."""
        proc = subprocess.Popen(
            [*_prefect_cmd(), *args],
            cwd=cwd,
            env={**self.env, **env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop(proc)
            out, _ = proc.communicate()
            pytest.fail(f"prefect {' '.join(args)} timed out after {timeout} s:\n{out[-4000:]}")
        finally:
            _stop(proc)
        assert proc.returncode == 0, f"prefect {' '.join(args)} exited {proc.returncode}:\n{out}"
        return out

    def api(self, method: str, path: str, body: dict | None = None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.url}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.load(resp)

    def logs(self, flow_run_id: str) -> str:
        rows = self.api(
            "POST",
            "/logs/filter",
            {"logs": {"flow_run_id": {"any_": [flow_run_id]}}, "sort": "TIMESTAMP_ASC"},
        )
        return "\n".join(f"{r['level']:>3} {r['message']}" for r in rows)


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory) -> Server:
    root = tmp_path_factory.mktemp("prefect")
    home = root / "home"
    home.mkdir()
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_API_URL=url,
        PREFECT_CLI_PROMPT="false",
        PREFECT_UI_ENABLED="false",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        CHANGEVG_HOME=str(REPO),
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        env[var] = env[var.lower()] = CLOSED
    log = root / "server.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [*_prefect_cmd(), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=5) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"prefect server did not come up:\n{log.read_text()[-4000:]}")
            time.sleep(0.5)
        yield Server(url=url, env=env, home=home, log=log)
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def deployed(prefect_server: Server) -> Server:
    """The work pool created and every deployment in prefect.yaml deployed, as a user would."""
    out = prefect_server.cli("work-pool", "create", POOL, "--type", "process", cwd=REPO)
    assert POOL in out
    out = prefect_server.cli("deploy", "--all", cwd=REPO)
    assert "monitor-region/monitor-coachella" in out
    assert "ingest-region/ingest-coachella" in out
    return prefect_server


def _run_deployment(server: Server, name: str, parameters: dict, tmp: Path) -> dict:
    """`prefect deployment run NAME --params ...`, then one `prefect worker start --run-once`
    started in another folder and without $CHANGEVG_HOME: the pull step recorded at deploy time
    must bring the run to the checkout. Returns the flow run (its API document)."""
    out = server.cli("deployment", "run", name, "--params", json.dumps(parameters), cwd=tmp)
    match = re.search(r"UUID:\s*([0-9a-f-]{36})", out)
    assert match, out
    run_id = match.group(1)
    worker_out = server.cli(
        "worker", "start", "--pool", POOL, "--run-once", cwd=tmp, timeout=900, CHANGEVG_HOME=""
    )
    run = server.api("GET", f"/flow_runs/{run_id}")
    assert run["state"]["type"] == "COMPLETED", (
        f"{name} ended {run['state']['type']}: {run['state'].get('message')}\n"
        f"--- flow run logs ---\n{server.logs(run_id)}\n--- worker ---\n{worker_out[-4000:]}"
    )
    return run


def _catalog_request(small_region, small_server, out: Path) -> dict:
    return {
        "aoi": ",".join(str(v) for v in small_region.bbox_lonlat),
        "catalog": small_server.url,
        "collection": json.loads(small_region.collection_path.read_text())["id"],
        "before": BEFORE,
        "after": AFTER,
        "region": "small",
        "out": str(out),
    }


@pytest.mark.slow
def test_deploy_records_schedule_parameters_and_pull_step(deployed: Server) -> None:
    dep = deployed.api("GET", "/deployments/name/monitor-region/monitor-coachella")
    assert dep["work_pool_name"] == POOL
    assert dep["entrypoint"] == "flows/monitor.py:monitor_region"
    (schedule,) = dep["schedules"]
    assert schedule["active"]
    assert schedule["schedule"]["cron"] == "0 6 1 * *"
    tz = schedule["schedule"]["timezone"]
    params = dep["parameters"]
    assert params == _deployments()["monitor-coachella"]["parameters"]
    # the flow's placeholders, not Prefect's
    assert params["request"]["out"] == "runs/{region}/{run_date}"
    step = dep["pull_steps"][0]["prefect.deployments.steps.set_working_directory"]
    assert Path(step["directory"]) == REPO  # $CHANGEVG_HOME as seen by `prefect deploy`

    watch = deployed.api("GET", "/deployments/name/watch-regions/watch-regions")
    assert watch["entrypoint"] == "flows/watch/flow.py:watch_regions"
    (poll,) = watch["schedules"]
    assert poll["active"] and poll["schedule"]["interval"] == 3600
    assert watch["parameters"] == _deployments()["watch-regions"]["parameters"]

    ingest = deployed.api("GET", "/deployments/name/ingest-region/ingest-coachella")
    assert ingest["entrypoint"] == "flows/monitor.py:ingest_region"
    assert ingest["schedules"] == []
    assert ingest["work_pool_name"] == POOL

    # The server's scheduler turns the cron into runs at 06:00 local time on the 1st.
    deadline = time.monotonic() + 60
    while True:
        runs = deployed.api(
            "POST",
            "/flow_runs/filter",
            {
                "deployments": {"id": {"any_": [dep["id"]]}},
                "flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}},
            },
        )
        if runs or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert runs, "the scheduler created no runs for monitor-coachella"
    for run in runs:
        when = dt.datetime.fromisoformat(run["expected_start_time"]).astimezone(ZoneInfo(tz))
        assert (when.day, when.hour, when.minute) == (1, 6, 0), when


@pytest.mark.slow
def test_ingest_deployment_runs_to_completion(deployed, small_region, small_server, tmp_path):
    out = tmp_path / "ingest"
    _run_deployment(
        deployed,
        "ingest-region/ingest-coachella",
        {"request": _catalog_request(small_region, small_server, out)},
        tmp_path,
    )
    assert (out / "tiles.zarr" / "zarr.json").is_file()
    assert not (out / "inventory").exists()  # tiling only


@pytest.mark.slow
def test_monitor_deployment_runs_to_completion(deployed, small_region, small_server, tmp_path):
    request = _catalog_request(small_region, small_server, tmp_path / "monitor" / "{region}")
    request["inventory"] = str(tmp_path / "inventory")  # the deployment's is relative to the repo
    _run_deployment(deployed, "monitor-region/monitor-coachella", {"request": request}, tmp_path)
    out = tmp_path / "monitor" / "small"
    assert (out / "tiles.zarr" / "zarr.json").is_file()
    assert (out / "report.html").is_file()
    summary = json.loads((out / "run.json").read_text())
    assert summary["status"] == "completed" and summary["region"] == "small"
    parts = list((tmp_path / "inventory").glob("tiles/region=small/run_date=*/part-*.parquet"))
    assert parts, sorted(p.name for p in (tmp_path / "inventory").rglob("*"))
