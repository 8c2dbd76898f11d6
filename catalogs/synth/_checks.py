"""Validation of :func:`catalogs.synth.synthesize_region` arguments (user errors name the
argument, its value and what to use instead)."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
from pyproj import CRS

from ..errors import InputError
from ._scene import RES

MAX_MISREG_PX = 8.0
MIN_GSD, MAX_GSD, MAX_SIDE_PX = 0.1, 10.0, 10000


def parse_date(value: str, label: str) -> dt.date:
    """``value`` as a date (its first 10 characters in ISO form); ``label`` names it in errors."""
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError as exc:
        raise InputError(f"{label}={value!r} is not an ISO date (YYYY-MM-DD)") from exc


def check_gsd(gsd: float, size_km: float, misreg: tuple[float, float] | None) -> None:
    """The output pixel size, the pixels per side it gives and the shift it allows in metres."""
    try:
        ok = math.isfinite(float(gsd)) and MIN_GSD <= float(gsd) <= MAX_GSD
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise InputError(f"gsd={gsd!r}: use a pixel size from {MIN_GSD} to {MAX_GSD} m")
    side = round(size_km * 1000 / gsd)
    if side > MAX_SIDE_PX or side < 16:
        raise InputError(
            f"size_km={size_km!r} at gsd={gsd!r} gives {side} px per side: keep it within 16 to "
            f"{MAX_SIDE_PX} px (a smaller region or a coarser gsd)"
        )
    if misreg is not None and max(abs(v) for v in misreg) * gsd > MAX_MISREG_PX * RES:
        raise InputError(
            f"misregistration_px={misreg!r} at gsd={gsd!r}: keep it within "
            f"±{MAX_MISREG_PX * RES:g} m (±{MAX_MISREG_PX * RES / gsd:.2f} px)"
        )


def check_args(
    size_km: float, seed: int, split: int, dtype: str, epsg: int, misreg: tuple[float, float] | None
) -> CRS:
    """Validate the region arguments; return the scene CRS."""
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise InputError(f"seed={seed!r}: use a non-negative integer")
    if not (0.05 <= size_km <= 5.0):  # memory grows ~0.35 GB per km2
        raise InputError(f"size_km={size_km!r}: use 0.05 to 5 km (tile larger areas)")
    if not isinstance(split, int) or not 1 <= split <= 8:
        raise InputError(f"split={split!r}: use an integer from 1 to 8")
    if dtype not in ("uint8", "uint16"):
        raise InputError(f"dtype={dtype!r}: use 'uint8' or 'uint16'")
    try:
        crs = CRS.from_epsg(int(epsg))
    except Exception as exc:
        raise InputError(f"epsg={epsg!r} is not a known EPSG code") from exc
    if not crs.is_projected or crs.axis_info[0].unit_name not in ("metre", "meter"):
        raise InputError(f"epsg={epsg}: need a projected CRS in metres (e.g. UTM)")
    if misreg is not None and (
        len(misreg) != 2 or not all(math.isfinite(v) and abs(v) <= MAX_MISREG_PX for v in misreg)
    ):
        raise InputError(f"misregistration_px={misreg!r}: two finite values within ±8 px")
    return crs
