"""The flows package shows its parts: few top-level modules, the public API exported lazily."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import flows

PUBLIC = (
    "monitor_region", "run_direct", "predict_tiles", "write_inventory", "query", "RunRequest",
)  # fmt: skip


def test_flows_has_at_most_ten_top_level_modules():
    root = Path(flows.__file__).parent
    modules = sorted(p.name for p in root.glob("*.py"))
    assert len(modules) <= 10, modules
    assert {"cli", "inventory", "synthetic"} <= {p.name for p in root.iterdir() if p.is_dir()}


@pytest.mark.parametrize("name", PUBLIC)
def test_flows_exports_the_public_api(name):
    assert name in flows.__all__
    value = getattr(flows, name)
    assert callable(value)
    assert name in dir(flows)


def test_flows_query_is_the_inventory_reader():
    from flows.inventory.query import query_inventory

    assert flows.query is query_inventory


def test_flows_unknown_name_raises_attribute_error():
    with pytest.raises(AttributeError, match="no_such_name"):
        flows.no_such_name  # noqa: B018


def test_import_flows_loads_no_heavy_library():
    code = (
        "import sys, flows\n"
        "heavy = ('prefect', 'torch', 'geopandas', 'xarray', 'distributed')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
