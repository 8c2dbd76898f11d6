"""An item's GSD from its STAC metadata (real NAIP and Sentinel-2 items), and the range check."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from catalogs.errors import InputError
from catalogs.gsd import GSDError, check_gsd, item_gsd, items_gsd, refuse_coarse

STAC = Path(__file__).parents[4] / "shared" / "data" / "stac"


def _first(name: str) -> dict:
    path = STAC / name
    if not path.is_file():
        pytest.skip(f"{path} is not here")
    return json.loads(path.read_text())["features"][0]


def _item(props: dict, asset: dict | None = None) -> dict:
    bands = [{"name": c, "common_name": c} for c in ("red", "green", "blue")]
    return {
        "type": "Feature",
        "id": "x",
        "bbox": [10.0, 60.0, 10.01, 60.01],
        "properties": {"datetime": "2024-01-01T00:00:00Z", **props},
        "assets": {
            "visual": {"href": "/nowhere/x.tif", "type": "image/tiff", "eo:bands": bands}
            | (asset or {})
        },
    }


def test_real_naip_and_sentinel2_items() -> None:
    naip = item_gsd(_first("naip_pc_250.json"), read_header=False)
    assert naip is not None and naip.gsd == pytest.approx(0.6)
    assert naip.source == "proj:transform"
    s2 = item_gsd(_first("s2l2a_pc_datetime.json"), read_header=False)
    assert s2 is not None and s2.gsd == pytest.approx(10.0)  # the RGB assets' transform


def test_sources_in_order_of_trust() -> None:
    utm = {"proj:code": "EPSG:32632"}
    transform = {"proj:transform": [0.3, 0, 500000, 0, -0.3, 6650000]}
    assert item_gsd(_item({**utm, "gsd": 0.5}, transform)).gsd == pytest.approx(0.3)
    assert item_gsd(_item({**utm, "gsd": 0.5}, {"gsd": 0.4})).source == "gsd"
    assert item_gsd(_item({**utm, "gsd": 0.5}, {"gsd": 0.4})).gsd == 0.4
    assert item_gsd(_item({"gsd": 0.5})).gsd == 0.5  # no CRS: the transform can't be used
    res = {"raster:bands": [{"spatial_resolution": 0.6}] * 3}
    found = item_gsd(_item({}, res))
    assert found.gsd == 0.6 and found.source == "raster:spatial_resolution"
    assert item_gsd(_item({})) is None


def test_transform_units_are_metres() -> None:
    feet = _item({"proj:code": "EPSG:2263"}, {"proj:transform": [1.0, 0, 0, 0, -1.0, 0]})
    assert item_gsd(feet).gsd == pytest.approx(0.3048, rel=1e-4)  # US survey foot
    degrees = _item({"proj:code": "EPSG:4326"}, {"proj:transform": [1e-5, 0, 10, 0, -1e-5, 60]})
    assert item_gsd(degrees).gsd == pytest.approx(1.1132, rel=1e-3)  # the coarser (y) axis


def test_unknown_gsd_names_the_item() -> None:
    with pytest.raises(GSDError, match="after item 'x': cannot tell its ground sample distance"):
        items_gsd([_item({})], side="after")


@pytest.mark.parametrize("bad", [0, -1, "abc", None, float("inf")])
def test_check_gsd(bad) -> None:
    with pytest.raises(InputError, match="--gsd must be a"):
        check_gsd(bad, name="--gsd")
    assert check_gsd("0.3") == 0.3


def test_refuse_coarse(caplog) -> None:
    with pytest.raises(GSDError, match=r"item 'a' is 10 m per pixel.*0.25-1 m.*pass --flag"):
        refuse_coarse(10, (0.25, 1.0), what="item 'a'", flag="--flag")
    refuse_coarse(1.0, (0.25, 1.0), what="item 'a'", flag="--flag")  # the edge is accepted
    with caplog.at_level(logging.INFO, logger="catalogs.gsd"):
        refuse_coarse(0.1, (0.25, 1.0), what="item 'b'", flag="--flag")
    assert "item 'b' is 0.1 m per pixel, finer" in caplog.text
