#!/usr/bin/env bash
# Set up ChangeVG Monitor on a fresh Debian/Ubuntu machine: system packages, a virtualenv in
# .venv with the CPU build of torch, and the project with its dev extras. Safe to rerun.
set -euo pipefail
cd "$(dirname "$0")"

APT_PACKAGES=(default-jre-headless chromium)   # Java: METEOR (caption metrics); chromium: report test
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}         # CPU build; GPU users: see README

if command -v apt-get >/dev/null 2>&1; then
  missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if ((${#missing[@]})); then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    if [ -z "$SUDO" ] || command -v sudo >/dev/null 2>&1; then
      echo "setup: installing system packages: ${missing[*]}"
      $SUDO apt-get update -qq || echo "setup: apt-get update failed; trying the install anyway"
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" || echo "setup: could not install ${missing[*]} (METEOR will be skipped)"
    else
      echo "setup: not root and no sudo: skipping ${missing[*]} (METEOR will be skipped)"
    fi
  fi
fi

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "$TORCH_SPEC"
.venv/bin/python -m pip install -q -e '.[dev]'
echo "setup: done — run .venv/bin/changevg --help"
