"""``bench/pipeline.py``: the summary arithmetic, and its smallest end-to-end run (slow)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.pipeline import (
    ALL_TILES,
    COLD,
    COLD_OLD_DB,
    DIRECT,
    PREFECT,
    STAGES,
    summarise,
    targets,
)

REPO = Path(__file__).resolve().parents[2]


def fake_run(case: str, total: float, f1: float, share: float, ids: list[str]) -> dict:
    stage = total / (len(STAGES) + 1)
    return {
        "case": case,
        "repeat": 0,
        "total_s": total,
        "cpu_s": total,
        **{f"{s}_s": stage for s in STAGES},
        "other_s": stage,
        "peak_rss_mb": 1000.0,
        "vlm_share": share,
        "f1": f1,
        "building_error": 0.1,
        "tiles": 16,
        "tiles_sent_to_vlm": round(16 * share),
        "changed_tile_ids": ids,
    }


def test_summary_ratios_cold_row_and_targets():
    runs = [
        fake_run(PREFECT, 11.0, 0.8, 0.25, ["a"]),
        fake_run(DIRECT, 10.0, 0.8, 0.25, ["a"]),
        fake_run(DIRECT, 12.0, 0.8, 0.25, ["a"]),
        fake_run(ALL_TILES, 30.0, 0.805, 1.0, ["a", "b"]),
    ]
    setup = {"prefect_cold_start_s": 4.0, "prefect_cold_start_old_db_s": 2.0}
    rows = summarise(runs, setup, area_km2=4.0)
    by = {r["case"]: r for r in rows}
    assert [r["case"] for r in rows] == [DIRECT, PREFECT, COLD, COLD_OLD_DB, ALL_TILES]
    assert by[DIRECT]["total_s"] == 11.0  # median of 10 and 12
    assert by[PREFECT]["vs_direct"] == 1.0
    assert by[COLD]["total_s"] == 15.0 and by[COLD]["vs_direct"] == round(15 / 11, 3)
    assert by[COLD_OLD_DB]["total_s"] == 13.0 and by[COLD_OLD_DB]["other_s"] == pytest.approx(
        11 / 7 + 2, abs=1e-3
    )
    assert by[DIRECT]["km2_per_hour"] == round(4.0 / 11.0 * 3600, 2)
    checks = targets(rows, runs)
    assert checks["prefect_overhead_warm<=1.25"] and not checks["prefect_overhead_cold<=1.25"]
    assert checks["prefect_overhead_cold_old_db<=1.25"]
    assert checks["prefect_and_direct_same_changed_tiles"]
    assert checks["f1_cost_of_screening"] == 0.005 and checks["f1_cost_of_screening<=0.01"]
    assert checks["screening_speedup"] == round(30 / 11, 3)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_smallest_run_writes_sane_results(tmp_path):
    out = tmp_path / "result.json"
    cmd = [sys.executable, "-m", "bench.pipeline", "--size-km", "0.5", "--repeat", "1"]
    cmd += ["--out", str(tmp_path / "scratch"), "--json", str(out)]
    proc = subprocess.run(
        cmd, cwd=REPO, env=dict(os.environ), capture_output=True, text=True, timeout=1100
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    doc = json.loads(out.read_text())
    assert doc["benchmark"] == "pipeline" and 0.2 < doc["aoi_km2"] < 0.3
    by = {r["case"]: r for r in doc["rows"]}
    assert set(by) == {DIRECT, PREFECT, COLD, COLD_OLD_DB, ALL_TILES}
    for row in by.values():
        assert row["total_s"] > 0 and row["km2_per_hour"] > 0 and row["vs_direct"] > 0
        assert 0.0 <= row["vlm_share"] <= 1.0 and 0.0 <= row["f1"] <= 1.0
        assert math.isfinite(row["building_error"]) and row["building_error"] >= 0
        assert row["tiles"] > 0
    assert by[DIRECT]["vs_direct"] == 1.0 and by[ALL_TILES]["vlm_share"] == 1.0
    assert by[COLD]["total_s"] >= by[PREFECT]["total_s"] <= by[COLD_OLD_DB]["total_s"]
    setup = doc["setup"]
    assert setup["prefect_cold_start_s"] >= 0 and setup["prefect_cold_start_old_db_s"] >= 0
    assert setup["model_load_s"] > 0
    checks = doc["targets"]
    for name in ("warm", "cold", "cold_old_db"):
        assert checks[f"prefect_overhead_{name}"] > 0
    assert checks["prefect_and_direct_same_changed_tiles"]
    assert {"f1_screened", "f1_no_screening", "f1_cost_of_screening"} <= set(checks)
    assert not any((tmp_path / "scratch" / "runs").iterdir())  # run folders cleaned up
    assert "prefect (cold)" in proc.stdout and "km²/h" in proc.stdout
