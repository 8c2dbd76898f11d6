"""The two small value types of a rendered scene: the canvas grid and one date's look."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from affine import Affine

RES = 0.5  # metres per pixel


@dataclass
class Canvas:
    """The common pixel grid both dates are rendered on (north-up, 0.5 m pixels)."""

    x0: float  # west edge
    y0: float  # north edge
    shape: tuple[int, int]

    @property
    def transform(self) -> Affine:
        """Geotransform of the canvas."""
        return Affine(RES, 0.0, self.x0, 0.0, -RES, self.y0)


@dataclass
class Look:
    """What one date looks like: sun, season and sensor/atmosphere parameters."""

    sun_azimuth: float  # degrees clockwise from north
    sun_elevation: float  # degrees
    greenness: float  # 0 = dry season, 1 = lush
    field_phase: float  # how far crops have moved towards harvest
    gains: tuple[float, float, float]
    haze: float
    haze_gradient: tuple[float, float]
    blur_sigma: float
    noise_dn: float
    leaf_off: bool = False  # deciduous crowns are bare on this date (strong nuisance)
    lean: tuple[float, float] = (0.0, 0.0)  # roof shift (east, north) in m per m of height

    @property
    def sun(self) -> np.ndarray:
        """Unit vector towards the sun (east, north, up)."""
        az, el = math.radians(self.sun_azimuth), math.radians(self.sun_elevation)
        return np.array([math.sin(az) * math.cos(el), math.cos(az) * math.cos(el), math.sin(el)])

    @property
    def shadow_vec(self) -> tuple[float, float]:
        """Ground shadow displacement (east, north) per metre of height."""
        az, el = math.radians(self.sun_azimuth), math.radians(self.sun_elevation)
        k = 1.0 / math.tan(el)
        return -math.sin(az) * k, -math.cos(az) * k
