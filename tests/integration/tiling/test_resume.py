"""Killing a real `changevg tile` run part-way, then running it again, completes the store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np

from tiling import TileOptions, build_tiles, open_tiles


def _done_tiles(store) -> set[int]:
    """Tiles whose nodata-fraction chunk (the store's completion marker, `c.{tile}.0`) exists."""
    folder = store / "nodata_fraction"
    if not folder.exists():
        return set()
    return {int(p.name.split(".")[1]) for p in folder.glob("c.*.0")}


def _tile_cmd(pair_file, store):
    return [
        sys.executable,
        "-m",
        "flows.cli",
        "tile",
        "--pair",
        str(pair_file),
        "--out",
        str(store),
        "--tile-size",
        "32",
        "--name",
        "k",
    ]


def test_killed_run_resumes_without_redoing_tiles(small_pair, tmp_path):
    pair_file = tmp_path / "pair.json"
    pair_file.write_text(json.dumps(small_pair.to_json()))
    store = tmp_path / "tiles.zarr"
    proc = subprocess.Popen(
        _tile_cmd(pair_file, store), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.monotonic() + 120
    while len(_done_tiles(store)) < 100 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "the run finished before it could be killed: " + proc.stdout.read()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = _done_tiles(store)
    n_tiles = open_tiles(str(store)).sizes["tile"]
    assert 100 <= len(done_before) < n_tiles
    stamps = {
        i: (store / "image" / "c" / str(i) / "0" / "0" / "0" / "0").stat().st_mtime_ns
        for i in done_before
    }

    rerun = subprocess.run(_tile_cmd(pair_file, store), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{len(done_before)} already there" in rerun.stdout
    assert len(_done_tiles(store)) == n_tiles
    # finished tiles were not written again
    for i, stamp in stamps.items():
        assert (store / "image" / "c" / str(i) / "0" / "0" / "0" / "0").stat().st_mtime_ns == stamp

    reference = tmp_path / "reference.zarr"
    build_tiles(small_pair, reference, options=TileOptions(tile_size=32), name="k")
    got, want = open_tiles(str(store)), open_tiles(str(reference))
    assert np.array_equal(got["image"].values, want["image"].values)
    assert np.array_equal(got["nodata_fraction"].values, want["nodata_fraction"].values)
    assert got.attrs["complete"] is True


def test_shift_measured_while_writing_is_recorded_again_after_a_kill(small_pair, tmp_path):
    """The shift ("measure" mode) is recorded after the tiles; a run killed before that
    measures it again on resume."""
    from tiling.store import update_attrs

    store = tmp_path / "m.zarr"
    first = build_tiles(small_pair, store, options=TileOptions(tile_size=128))
    assert first.shift_px is not None
    registration = open_tiles(str(store)).attrs["registration"]
    update_attrs(str(store), registration={**registration, "shift_px": None})
    again = build_tiles(small_pair, store, options=TileOptions(tile_size=128))
    assert again.n_written == 0 and again.shift_px == first.shift_px
    assert open_tiles(str(store)).attrs["registration"]["shift_px"] == list(first.shift_px)
