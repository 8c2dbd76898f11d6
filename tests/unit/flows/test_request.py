"""RunRequest is written once: the CLI options, the flows' Prefect schema and the spec follow it."""

from __future__ import annotations

from dataclasses import MISSING, fields

import pytest

from flows.cli import build_parser
from flows.cli._run import RUN_OPTIONS, run_request
from flows.request import IngestRequest, RunRequest

ARGS = [
    "run", "--aoi", "1,2,3,4", "--catalog", "http://127.0.0.1:1", "--collection", "c",
    "--before=-2y/-1y", "--after=-1y/today", "--region", "r", "--out", "runs/x",
]  # fmt: skip


def _run_parser():
    parser = build_parser()
    (sub,) = [a for a in parser._actions if a.dest == "command"]
    return sub.choices["run"]


def test_every_request_field_but_settings_is_a_run_option():
    actions = {a.dest: a for a in _run_parser()._actions if a.dest != "help"}
    assert set(actions) == set(RUN_OPTIONS) == {f.name for f in fields(RunRequest)} - {"settings"}
    for f in fields(RunRequest):
        if f.name == "settings":
            continue
        action = actions[f.name]
        assert action.option_strings == ["--" + f.name.replace("_", "-")]
        assert action.required == (f.default is MISSING), f.name
        assert action.help == f.metadata["help"]


def test_a_command_line_becomes_its_request():
    args = build_parser().parse_args(
        ["--config", "c.toml", *ARGS, "--threshold", "0.3", "--workers", "2", "--all-tiles"]
    )
    assert run_request(args) == RunRequest(
        aoi="1,2,3,4", catalog="http://127.0.0.1:1", collection="c", before="-2y/-1y",
        after="-1y/today", region="r", out="runs/x", threshold=0.3, workers=2, all_tiles=True,
        settings="c.toml",
    )  # fmt: skip
    plain = run_request(build_parser().parse_args(ARGS))
    assert (plain.all_tiles, plain.overwrite, plain.threshold, plain.settings) == (
        None,
        False,
        None,
        None,
    )


def test_run_option_types_are_checked_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args([*ARGS, "--workers", "two"])
    assert exc.value.code == 2
    assert "--workers" in capsys.readouterr().err


def test_ingest_request_is_the_search_and_tile_part():
    ingest = {f.name for f in fields(IngestRequest)}
    assert ingest == {
        "aoi", "catalog", "collection", "before", "after", "region", "out", "run_id", "settings",
    }  # fmt: skip
    assert ingest < {f.name for f in fields(RunRequest)}
    with pytest.raises(TypeError):
        RunRequest(aoi="1,2,3,4")  # the required fields are required


def test_prefect_builds_the_flow_schema_from_the_request():
    from prefect.utilities.callables import parameter_schema

    from flows.monitor import ingest_region, monitor_region

    for flow, kind in ((monitor_region, RunRequest), (ingest_region, IngestRequest)):
        schema = parameter_schema(flow.fn).model_dump()
        assert list(schema["properties"]) == ["request"]
        definition = schema["definitions"][kind.__name__]
        assert set(definition["properties"]) == {f.name for f in fields(kind)}
        assert set(definition["required"]) == {f.name for f in fields(kind) if f.default is MISSING}
