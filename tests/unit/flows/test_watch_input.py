"""``changevg watch`` input and decisions: the regions file, the state folder, partial coverage.

Bad input exits 2 naming the file, region and field, before any catalog or Prefect is started.
Acquisitions are found through the real embedded STAC API (the small synthetic region).
"""

from __future__ import annotations

import datetime as dt
import json
import textwrap

import pytest

from catalogs.errors import InputError
from flows.cli import main
from flows.watch.poll import COMPLETE, find_acquisitions, plan, poll
from flows.watch.regions import load_regions
from flows.watch.state import RegionState, StateStore

GOOD = """
[[region]]
name = "{name}"
catalog = "{catalog}"
collection = "synthetic-rgb"
aoi = "{aoi}"
before = "2022-01-01/2022-12-31"
"""
AOI = "-116.2,33.88,-116.18,33.9"


def _write(tmp_path, text: str, name: str = "regions.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def _watch(regions, tmp_path) -> list[str]:
    return [
        "watch",
        "--regions",
        str(regions),
        "--state",
        str(tmp_path / "state"),
        "--out-root",
        str(tmp_path / "runs"),
        "--once",
    ]


def test_regions_file_reads(tmp_path):
    (tmp_path / "aoi.geojson").write_text(
        json.dumps(
            {
                "type": "Polygon",
                "coordinates": [
                    [[-116.2, 33.88], [-116.18, 33.88], [-116.18, 33.9], [-116.2, 33.88]]
                ],
            }
        )  # fmt: skip
    )
    text = GOOD.format(name="a", catalog="http://127.0.0.1:1/", aoi=AOI)
    text += GOOD.format(name="b", catalog="https://x.example/stac/v1", aoi="aoi.geojson")
    text += "grace_hours = 6\n"
    a, b = load_regions(_write(tmp_path, text))
    assert (a.name, a.aoi, a.grace_hours) == ("a", AOI, None)
    assert b.aoi == str(tmp_path / "aoi.geojson") and b.grace_hours == 6.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[[region]\nname = 'a'", "not valid TOML"),
        ("title = 'x'\n", "unknown top-level key"),
        ("# nothing\n", "no [[region]] tables"),
        ("[[region]]\nname = 'a'\ncatalog = 'http://h/'\naoi = '1,2,3,4'\n",
         "lacks collection, before"),
        (GOOD.format(name="a", catalog="http://h/", aoi=AOI) + "colection = 'x'\n", "colection"),
        (GOOD.format(name="a", catalog="ftp://h/", aoi=AOI), "not a STAC API URL"),
        (GOOD.format(name="a/b", catalog="http://h/", aoi=AOI), "region name 'a/b'"),
        (GOOD.format(name="a", catalog="http://h/", aoi="1,2"), "region #1 ('a')"),
        (GOOD.format(name="a", catalog="http://h/", aoi=AOI) + "grace_hours = -1\n", "grace_hours"),
        (GOOD.format(name="a", catalog="http://h/", aoi=AOI).replace("2022-12-31", "2022-13-31"),
         "before"),
    ],
)  # fmt: skip
def test_bad_regions_file_exits_2_naming_it(tmp_path, capsys, text, expected):
    regions = _write(tmp_path, text)
    with pytest.raises(InputError, match=str(regions)):
        load_regions(regions)
    assert main(_watch(regions, tmp_path)) == 2
    err = capsys.readouterr().err
    assert expected in err and str(regions) in err, err
    assert not (tmp_path / "runs").exists()


def test_two_regions_with_one_name(tmp_path, capsys):
    text = GOOD.format(name="dup", catalog="http://h/", aoi=AOI) * 2
    assert main(_watch(_write(tmp_path, text), tmp_path)) == 2
    err = capsys.readouterr().err
    assert "#1 and #2 are both named 'dup'" in err


def test_missing_regions_file(tmp_path, capsys):
    assert main(_watch(tmp_path / "nope.toml", tmp_path)) == 2
    assert "nope.toml does not exist" in capsys.readouterr().err


def test_state_folder_not_writable(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("in the way")
    with pytest.raises(InputError, match="state folder .*a-file.* is not writable"):
        StateStore(blocker / "state")
    regions = _write(tmp_path, GOOD.format(name="a", catalog="http://h/", aoi=AOI))
    argv = _watch(regions, tmp_path)
    argv[argv.index("--state") + 1] = str(blocker / "state")
    assert main(argv) == 2
    assert "not writable" in capsys.readouterr().err


def test_state_is_written_atomically_and_locked(tmp_path):
    store = StateStore(tmp_path / "state")
    assert store.load("r") == RegionState("r")
    store.save(RegionState("r", cursor="2024-06-15T18:13:00Z", done=["x"]))
    assert store.load("r").cursor_time == dt.datetime(2024, 6, 15, 18, 13, tzinfo=dt.UTC)
    assert [p.name for p in (tmp_path / "state").iterdir() if p.suffix == ".json"] == ["r.json"]
    (tmp_path / "state" / "bad.json").write_text("{not json")
    with pytest.raises(InputError, match="bad.json is not JSON"):
        store.load("bad")
    other = StateStore(tmp_path / "state")
    with store.lock(), pytest.raises(RuntimeError, match="another changevg watch"), other.lock():
        pass


def test_partial_acquisition_waits_for_the_grace_period(small_region, small_server, tmp_path):
    """The small region's after scene covers ~92 % of its lon/lat bbox: a partial acquisition.
    It waits (nothing runs, the cursor stays) until the grace period is over, then runs."""
    bbox = ",".join(f"{v:.6f}" for v in small_region.bbox_lonlat)
    regions = _write(tmp_path, GOOD.format(name="small", catalog=small_server.url, aoi=bbox))
    (region,) = load_regions(regions)
    now = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    found, skipped = find_acquisitions(region, since=None, until=now)
    assert [a.id for a in found] == ["2024-06-15-changevg-synthetic"] and skipped == []
    (acq,) = found
    assert 0.5 < acq.coverage < COMPLETE and acq.items == ("synth-1-after",)
    assert acq.window == "2024-06-15/2024-06-15"
    assert find_acquisitions(region, since=acq.end, until=now) == ([], [])

    def must_not_run(request):
        raise AssertionError(f"ran {request.run_id} before the grace period was over")

    kw = dict(state=tmp_path / "state", out_root=str(tmp_path / "runs"), grace_hours=24)
    first = poll(regions, run=must_not_run, now=now, **kw)
    (report,) = first["regions"]
    assert report["status"] == "ok" and not report["ran"]
    assert [w["id"] for w in report["waiting"]] == [acq.id]
    state = StateStore(tmp_path / "state").load("small")
    assert state.cursor is None and state.pending == {acq.id: "2025-01-01T00:00:00Z"}
    assert poll(regions, run=must_not_run, now=now + dt.timedelta(hours=23), **kw)["runs"] == 0

    ran = []
    later = poll(
        regions,
        run=lambda r: ran.append(r) or {"run_id": r.run_id},
        now=now + dt.timedelta(hours=25),
        **kw,
    )  # noqa: E501
    assert later["runs"] == 1 and len(ran) == 1
    assert ran[0].after == acq.window and ran[0].before == "2022-01-01/2022-12-31"
    assert ran[0].out == str(tmp_path / "runs" / "small" / acq.id)
    assert ran[0].inventory == str(tmp_path / "runs" / "inventory")
    state = StateStore(tmp_path / "state").load("small")
    assert state.cursor_time == acq.end and state.pending == {}
    assert poll(regions, run=must_not_run, now=now + dt.timedelta(hours=26), **kw)["runs"] == 0


def test_plan_runs_complete_acquisitions_and_skips_done_ones():
    from flows.watch.poll import Acquisition

    t = dt.datetime(2024, 6, 15, tzinfo=dt.UTC)
    full = Acquisition("a", t, t, ("i",), 1.0)
    part = Acquisition("b", t, t, ("j",), 0.4)
    state = RegionState("r", done=["c"])
    done = Acquisition("c", t, t, ("k",), 1.0)
    ready, waiting = plan([full, part, done], state, now=t, grace=dt.timedelta(hours=1))
    assert ready == [full] and waiting == [part] and "b" in state.pending
    ready, _ = plan([part], state, now=t, grace=dt.timedelta(0))
    assert ready == [part]  # grace 0: runs with what covers at once
