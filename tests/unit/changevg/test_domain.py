"""``off_domain_warning``: only the shipped default, only on non-synthetic scenes."""

from __future__ import annotations

from pathlib import Path

from changevg.domain import SYNTHETIC_PLATFORM, off_domain_warning
from changevg.model import DEFAULT_MODEL


def test_default_on_synthetic_is_quiet() -> None:
    assert off_domain_warning(None, [SYNTHETIC_PLATFORM, SYNTHETIC_PLATFORM]) is None


def test_default_on_real_names_platforms() -> None:
    msg = off_domain_warning(DEFAULT_MODEL, [SYNTHETIC_PLATFORM, "naip", None])
    assert msg is not None and "real (naip, unknown)" in msg


def test_other_models_are_not_judged(tmp_path: Path) -> None:
    assert off_domain_warning(tmp_path, ["naip"]) is None
