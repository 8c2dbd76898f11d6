"""Per-date looks (sun, season, sensor) of the two scenes, drawn from the seed.

``mild_looks`` is the historical default: a similar survey sun and season on both dates.
``strong_looks`` draws each date independently over wide ranges (another season or time of day,
another sensor), as real archive pairs differ.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from ._geom import sun_position
from ._scene import Look

LEAF_OFF_PROB = 0.35  # a date in the leaf-off season (deciduous crowns bare)
MAX_LEAN = 0.085  # tan(view angle): roofs of a 12 m building move by <= 1 m (2 px at 0.5 m)


def _utc(date: dt.date, hour: float, lon: float) -> str:
    utc = dt.datetime.combine(date, dt.time(0), dt.UTC) + dt.timedelta(hours=hour - lon / 15)
    return utc.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def mild_looks(
    rng: np.random.Generator, dates: list[dt.date], lon: float, lat: float
) -> list[tuple[Look, str]]:
    """Per-date appearance and acquisition time (UTC ISO string)."""
    g0 = rng.uniform(0.15, 0.85)
    g1 = float(np.clip(g0 + rng.choice([-1, 1]) * rng.uniform(0.15, 0.35), 0.0, 1.0))
    # Surveys fly at a similar sun: the after sun is the before sun give or take a few degrees
    # (shadows move a little, not enough to fool co-registration); the after time is the hour
    # whose sun azimuth matches on that date.
    doy = [d.timetuple().tm_yday for d in dates]
    h0 = rng.uniform(9.4, 11.2)
    az0, el0 = sun_position(doy[0], h0, lat)
    az1, el1 = az0 + rng.uniform(-4.0, 4.0), el0 + rng.uniform(-2.0, 2.0)
    scan = np.arange(6.0, 12.0, 0.01)
    h1 = float(scan[int(np.argmin([abs(sun_position(doy[1], h, lat)[0] - az1) for h in scan]))])
    suns = ((az0, el0, h0), (az1, el1, h1))
    out = []
    for date, green, haze, (az, el, hour) in zip(
        dates, (g0, g1), (rng.uniform(0, 0.07), rng.uniform(0.02, 0.14)), suns, strict=True
    ):
        gain = rng.uniform(0.95, 1.05)
        look = Look(
            sun_azimuth=az,
            sun_elevation=max(el, 15.0),  # winter / high latitude: keep shadows finite
            greenness=green,
            field_phase=rng.uniform(0.0, 0.6),
            gains=tuple(float(gain * (1 + rng.normal(0, 0.012))) for _ in range(3)),
            haze=float(haze),
            haze_gradient=tuple(rng.uniform(-0.04, 0.04, 2).tolist()),
            blur_sigma=rng.uniform(0.45, 0.7),
            noise_dn=rng.uniform(1.2, 2.8),
        )
        out.append((look, _utc(date, hour, lon)))
    return out


def strong_looks(
    rng: np.random.Generator, dates: list[dt.date], lon: float, lat: float
) -> list[tuple[Look, str]]:
    """Independent looks per date: any daytime sun, any season, leaf-off, lean and sensor.

    The sun azimuth spans morning to evening (80..280 deg) and the elevation 22..72 deg, so
    shadows may point anywhere north-west to north-east and be 0.3..2.5 x the object height. The
    acquisition time is the hour whose sun azimuth is closest on that date (the elevation is
    drawn freely: archives mix seasons). Colour temperature moves red against blue by up to 8 %.
    """
    out = []
    scan = np.arange(5.0, 19.0, 0.05)
    for date in dates:
        doy = date.timetuple().tm_yday
        az, el = rng.uniform(80.0, 280.0), rng.uniform(22.0, 72.0)
        hour = float(scan[int(np.argmin([abs(sun_position(doy, h, lat)[0] - az) for h in scan]))])
        leaf_off = bool(rng.random() < LEAF_OFF_PROB)
        green = rng.uniform(0.0, 0.4) if leaf_off else rng.uniform(0.15, 1.0)
        lean_k, lean_az = rng.uniform(0.0, MAX_LEAN), rng.uniform(0.0, 2 * np.pi)
        gain, temp = rng.uniform(0.86, 1.14), rng.uniform(-1.0, 1.0)
        tilt = (1 + 0.08 * temp, 1 + 0.01 * rng.normal(), 1 - 0.08 * temp)
        look = Look(
            sun_azimuth=float(az),
            sun_elevation=float(el),
            greenness=float(green),
            field_phase=rng.uniform(0.0, 1.0),
            gains=tuple(float(gain * t * (1 + rng.normal(0, 0.015))) for t in tilt),
            haze=float(rng.uniform(0.0, 0.18)),
            haze_gradient=tuple(rng.uniform(-0.06, 0.06, 2).tolist()),
            blur_sigma=rng.uniform(0.4, 1.3),
            noise_dn=rng.uniform(1.2, 4.0),
            leaf_off=leaf_off,
            lean=(float(lean_k * np.sin(lean_az)), float(lean_k * np.cos(lean_az))),
        )
        out.append((look, _utc(date, hour, lon)))
    return out
