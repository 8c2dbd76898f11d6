#!/usr/bin/env bash
# The production STAC API stack for the slow pgstac test and for local trials: PostgreSQL +
# PostGIS from Debian, stac-fastapi-pgstac and pypgstac from PyPI. Never replaces torch: the
# installed version is a pip constraint. Safe to rerun.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(postgresql postgresql-15-postgis-3)   # Debian 12; the PostGIS package follows PG's major
if command -v apt-get >/dev/null 2>&1; then
  missing=()
  for pkg in "${APT_PACKAGES[@]}"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  if ((${#missing[@]})); then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "install_pgstac: installing ${missing[*]}"
    $SUDO apt-get update -qq || echo "install_pgstac: apt-get update failed; trying anyway"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
fi
torch=$(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("torch"))')
.venv/bin/python -m pip install -q -c <(echo "torch==$torch") -e '.[pgstac]'
echo "install_pgstac: done"
