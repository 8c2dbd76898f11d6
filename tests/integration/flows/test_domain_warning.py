"""A run of the shipped default on scenes that are not synthetic logs one warning saying so."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from flows.monitor import search
from flows.request import RunRequest
from flows.spec import MonitorSpec

BEFORE = "2022-01-01/2022-12-31"
AFTER = "2024-01-01/2024-12-31"


def _spec(region, url: str, out: Path) -> MonitorSpec:
    collection = json.loads(region.collection_path.read_text())["id"]
    aoi = ",".join(str(v) for v in region.bbox_lonlat)
    return MonitorSpec.create(
        RunRequest(
            aoi=aoi, catalog=url, collection=collection, before=BEFORE, after=AFTER,
            region="r", out=str(out),
        )
    )  # fmt: skip


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "synthetic regions only" in r.getMessage()]


def test_synthetic_scenes_no_warning(small_region, small_server, tmp_path, caplog) -> None:
    with caplog.at_level(logging.WARNING):
        search(_spec(small_region, small_server.url, tmp_path))
    assert _warnings(caplog) == []


def test_real_platform_warns_once(small_region, tmp_path, caplog) -> None:
    from catalogs.server import StacServer

    copy = Path(shutil.copytree(small_region.root, tmp_path / "region"))
    items = json.loads((copy / "items.json").read_text())
    for item in items["features"]:
        item["properties"]["platform"] = "naip"
    (copy / "items.json").write_text(json.dumps(items))
    lines = [json.loads(line) for line in (copy / "items.ndjson").read_text().splitlines()]
    for item in lines:
        item["properties"]["platform"] = "naip"
    (copy / "items.ndjson").write_text("".join(json.dumps(i) + "\n" for i in lines))
    with StacServer([copy]) as server, caplog.at_level(logging.WARNING):
        search(_spec(small_region, server.url, tmp_path / "out"))
    (line,) = _warnings(caplog)
    assert "real (naip)" in line and "changevg convert change-agent" in line
