"""What the shipped default is fit for: a warning when it meets imagery it has never seen.

The default model (``changevg/weights/default``) is trained only on this project's synthetic
regions (STAC ``platform`` ``changevg-synthetic``). On real imagery its numbers are far lower
(README, "The shipped model"). A run that pairs real scenes with it logs one warning line saying
so and how to bring real weights, instead of letting its numbers pass for real ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

__all__ = ["SYNTHETIC_PLATFORM", "off_domain_warning"]

SYNTHETIC_PLATFORM = "changevg-synthetic"


def off_domain_warning(model: str | Path | None, platforms: Iterable[str | None]) -> str | None:
    """The warning to log when the shipped default runs on non-synthetic scenes, else ``None``.

    Args:
        model: The model folder of the run (``None``: the shipped default).
        platforms: The STAC ``platform`` property of every scene of the run (``None`` when absent).
    """
    from changevg.model import DEFAULT_MODEL

    if model is not None and Path(model).resolve() != DEFAULT_MODEL:
        return None
    others = sorted({p or "unknown" for p in platforms if p != SYNTHETIC_PLATFORM})
    if not others:
        return None
    return (
        f"the shipped default model was trained on synthetic regions only and these scenes are "
        f"real ({', '.join(others)}): expect far lower accuracy (README 'The shipped model'); "
        "for real imagery convert the published VGM with `changevg convert change-agent` and "
        "pass --model (README 'Bring the published model')"
    )
