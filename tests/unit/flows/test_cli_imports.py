"""The command line starts fast: parsing arguments imports no heavy geospatial or ML library."""

from __future__ import annotations

import subprocess
import sys

import catalogs

HEAVY = ("torch", "transformers", "geopandas", "xarray", "zarr", "prefect", "distributed")


def test_cli_help_imports_nothing_heavy():
    code = (
        "import sys, flows.cli\n"
        "try:\n"
        "    flows.cli.main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print('heavy:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "usage: changevg" in out.stdout
    assert out.stdout.strip().splitlines()[-1] == "heavy:"


def test_catalogs_public_names_all_resolve():
    for name in catalogs.__all__:
        assert getattr(catalogs, name).__name__ == name
    assert set(dir(catalogs)) >= set(catalogs.__all__)
    try:
        catalogs.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("unknown names must raise AttributeError")
