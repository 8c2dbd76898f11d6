"""Ground sample distance (GSD): the pixel size a model was trained at, and resampling to it.

A change model learns object sizes in pixels; fed imagery at another pixel size it sees
buildings two or three times too big or too small (WHU-CD is 0.3 m, NAIP 0.6 m, Sentinel-2
10 m; the shipped default was trained at 0.5 m). A model folder therefore declares its GSD and
the source GSDs it accepts (``config.json`` → ``changevg.gsd`` and ``changevg.gsd_range``);
images are resampled to the model's GSD before inference, and predicted masks and objects are
put back onto the input's pixel grid.

Resampling is the same everywhere (plain images here, tile stores in :mod:`tiling`): an
area average when going coarser (every source pixel contributes, GDAL's ``average``), bilinear
when going finer.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from catalogs.gsd import GSDError, check_gsd, refuse_coarse
from changevg.result import ChangeObject

__all__ = [
    "DEFAULT_GSD",
    "DEFAULT_GSD_RANGE",
    "GSDError",
    "ModelGSD",
    "check_gsd",
    "objects_to_grid",
    "read_model_gsd",
    "resample_image",
    "resample_mask",
    "resampling_method",
    "scaled_size",
]

log = logging.getLogger(__name__)

_DEFAULT_MODEL = Path(__file__).resolve().parent / "weights" / "default"  # = model.DEFAULT_MODEL

DEFAULT_GSD = 0.5  # m; the GSD of this project's synthetic regions and of the shipped default

DEFAULT_GSD_RANGE = (0.25, 1.0)
"""Source GSDs (m) a 0.5 m model accepts, and why.

Coarser than 1.0 m (upsampling by more than 2x) the pixels that tell a roof from a yard are
gone: a 10 m x 10 m house is under 10 x 10 pixels at 1 m, 5 x 5 at 2 m and a single pixel in
Sentinel-2's 10 m, while the model's smallest object is 64 pixels at 0.5 m (16 m²) and its edge
and shadow cues were learned at 0.5 m. Upsampling cannot restore them, so such imagery is
refused. Finer than 0.25 m the imagery is simply averaged down (nothing the model uses is lost);
it is accepted, with a note that it lies outside the 0.3-1.0 m checked end to end.
"""


@dataclass(frozen=True)
class ModelGSD:
    """The GSD contract of a model folder.

    Attributes:
        gsd: Metres per pixel the model was trained at; inputs are resampled to it.
        range: ``(finest, coarsest)`` source GSD accepted, metres; coarser is refused.
        declared: Whether the folder states them (``False``: the 0.5 m default was assumed).
    """

    gsd: float = DEFAULT_GSD
    range: tuple[float, float] = DEFAULT_GSD_RANGE
    declared: bool = False

    def to_config(self) -> dict[str, Any]:
        """The ``changevg`` config keys: ``{"gsd": …, "gsd_range": [lo, hi]}``."""
        return {"gsd": self.gsd, "gsd_range": list(self.range)}

    @classmethod
    def from_config(cls, settings: Mapping[str, Any] | None, *, source: str) -> ModelGSD:
        """The contract stated in a ``changevg`` settings dict (``source`` names its file).

        A folder without the keys loads as the 0.5 m default, with a logged note.

        Raises:
            GSDError: The keys are there but invalid (the message names ``source``).
        """
        settings = settings or {}
        if "gsd" not in settings:
            log.info(
                "%s declares no GSD (changevg.gsd): taken as %g m, accepting %g-%g m",
                source,
                DEFAULT_GSD,
                *DEFAULT_GSD_RANGE,
            )
            return cls()
        gsd = check_gsd(settings["gsd"], name=f"{source}: changevg.gsd")
        rng = settings.get("gsd_range")
        if rng is None:  # a declared GSD, no range: the default's span around it
            lo, hi = (
                gsd * DEFAULT_GSD_RANGE[0] / DEFAULT_GSD,
                gsd * DEFAULT_GSD_RANGE[1] / DEFAULT_GSD,
            )
        elif isinstance(rng, Sequence) and not isinstance(rng, str) and len(rng) == 2:
            lo = check_gsd(rng[0], name=f"{source}: changevg.gsd_range[0]")
            hi = check_gsd(rng[1], name=f"{source}: changevg.gsd_range[1]")
        else:
            raise GSDError(f"{source}: changevg.gsd_range must be [finest, coarsest], not {rng!r}")
        if not lo <= gsd <= hi:
            raise GSDError(
                f"{source}: changevg.gsd_range {[lo, hi]} must hold changevg.gsd {gsd:g}"
            )
        return cls(gsd, (lo, hi), True)

    def check(self, gsd: float, *, what: str, flag: str) -> None:
        """Refuse imagery of ``gsd`` m coarser than :attr:`range` (see
        :func:`catalogs.gsd.refuse_coarse`); ``flag`` is the option that overrides it."""
        refuse_coarse(gsd, self.range, what=what, flag=flag, model_gsd=self.gsd)


def read_model_gsd(
    path: str | Path | None = None, *, adapter: str | Path | None = None
) -> ModelGSD:
    """The GSD contract of a model folder, read from its JSON alone (no weights, no torch).

    Args:
        path: A ChangeVG folder (``config.json``); default: the shipped model.
        adapter: A LoRA adapter folder (``changevg.json``), used instead of ``path``.

    Raises:
        FileNotFoundError: The settings file is missing (named).
        GSDError: The GSD keys are invalid.
    """
    if adapter is not None:
        file = Path(adapter) / "changevg.json"
        settings = json.loads(_read(file))
    else:
        file = Path(path if path is not None else _DEFAULT_MODEL) / "config.json"
        settings = json.loads(_read(file)).get("changevg")
    return ModelGSD.from_config(settings, source=str(file))


def _read(file: Path) -> str:
    if not file.is_file():
        raise FileNotFoundError(f"{file} is missing: expected the model's settings")
    return file.read_text(encoding="utf-8")


def scaled_size(size: tuple[int, int], src_gsd: float, dst_gsd: float) -> tuple[int, int]:
    """``(height, width)`` of a ``size`` image at ``src_gsd`` once resampled to ``dst_gsd``."""
    scale = src_gsd / dst_gsd
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def resampling_method(src_gsd: float, dst_gsd: float) -> str:
    """``"none"``, ``"average"`` (going coarser) or ``"bilinear"`` (going finer)."""
    if math.isclose(src_gsd, dst_gsd, rel_tol=1e-6):
        return "none"
    return "average" if dst_gsd > src_gsd else "bilinear"


def resample_image(image: np.ndarray, src_gsd: float, dst_gsd: float) -> np.ndarray:
    """A ``(3, H, W)`` uint8 image resampled from ``src_gsd`` to ``dst_gsd`` (area-correct).

    Downsampling uses a box filter (every source pixel contributes, as GDAL's ``average``);
    upsampling is bilinear. Equal GSDs return the image unchanged.
    """
    method = resampling_method(src_gsd, dst_gsd)
    if method == "none":
        return image
    h, w = scaled_size(image.shape[-2:], src_gsd, dst_gsd)
    pil_method = Image.Resampling.BOX if method == "average" else Image.Resampling.BILINEAR
    pil = Image.fromarray(np.moveaxis(image, 0, -1))
    return np.moveaxis(np.asarray(pil.resize((w, h), pil_method)), -1, 0).copy()


def resample_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A class mask (``(H, W)`` uint8) put onto a ``(height, width)`` grid by nearest neighbour."""
    if mask.shape == tuple(size):
        return mask
    pil = Image.fromarray(mask)
    return np.asarray(pil.resize((size[1], size[0]), Image.Resampling.NEAREST)).copy()


def objects_to_grid(
    objects: Sequence[ChangeObject], src: tuple[int, int], dst: tuple[int, int]
) -> list[ChangeObject]:
    """Change objects found on a ``src`` ``(height, width)`` grid, in ``dst`` grid pixels.

    Polygons and boxes are scaled (boxes outward to whole pixels, within the grid), pixel areas
    by the area ratio; scores, classes, change types and 3x3 cells are unchanged (the cells are
    fractions of the tile, the same on both grids).
    """
    if tuple(src) == tuple(dst):
        return list(objects)
    sy, sx = dst[0] / src[0], dst[1] / src[1]
    out = []
    for o in objects:
        c0, r0, c1, r1 = o.bbox
        bbox = (
            max(0, math.floor(c0 * sx)),
            max(0, math.floor(r0 * sy)),
            min(dst[1], math.ceil(c1 * sx)),
            min(dst[0], math.ceil(r1 * sy)),
        )
        out.append(
            replace(
                o,
                polygon=[(x * sx, y * sy) for x, y in o.polygon],
                bbox=bbox,
                area_px=max(1, round(o.area_px * sx * sy)),
            )
        )
    return out
