"""Sun positions for the city's site, and sun directions in the processing CRS.

Sun positions come from pvlib's NREL SPA (``method='nrel_numpy'``) for the centre of the configured
extent transformed to WGS84, at tz-aware local times (Europe/Berlin by default, so that summer time
is handled: a "day" is a local calendar day).

**Grid convergence.** pvlib's azimuth is measured from *true* north. In a transverse Mercator grid
(UTM) the grid's y axis (grid north) is rotated against true north by the meridian convergence
``gamma``; east of the central meridian (Jena: 11.59° E, zone 32 has 9° E) grid north lies east of
true north, and true north appears at the grid bearing ``-gamma`` (Jena: gamma = +2.01°). A sun
direction is therefore turned into the grid with ``grid_azimuth = true_azimuth - gamma``, where
``gamma`` is pyproj's ``Proj.get_factors(lon, lat).meridian_convergence`` at the site
(equal to ``(lon - lon0) sin(lat)`` to first order). One value for the whole site is enough: it
changes by about 0.01° per km.

Times are the *midpoints* of the time steps (e.g. 00:07:30, 00:22:30, ... for 15 min), so that
``sum(step_h for steps with sun)`` is a midpoint-rule estimate of the hours of sun.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import pvlib
import pyproj

from ..errors import ConfigError

__all__ = [
    "DEFAULT_DAYS", "SunPath", "site_location", "grid_convergence_deg", "day_times", "year_times",
    "solar_positions", "sun_vectors", "sun_path", "sun_path_for_settings",
]

#: Default days of the sun and shadow layers: equinox and the two solstices (month, day).
DEFAULT_DAYS: tuple[tuple[int, int], ...] = ((3, 21), (6, 21), (12, 21))

SPA_METHOD = "nrel_numpy"


@dataclass
class SunPath:
    """Sun positions at a series of time steps, with direction vectors in the processing CRS.

    Attributes
    ----------
    times : pandas.DatetimeIndex
        tz-aware local times (midpoints of the steps).
    azimuth_deg : numpy.ndarray
        Solar azimuth from true north, clockwise (pvlib convention).
    elevation_deg : numpy.ndarray
        Apparent elevation (with refraction) above the horizon.
    vectors : numpy.ndarray
        ``(n, 3)`` unit vectors *towards* the sun in the processing CRS (x east, y grid north, z up).
    step_h : float
        Duration one time step stands for (hours).
    latitude, longitude : float
        Site in WGS84 (degrees).
    convergence_deg : float
        Meridian convergence used (grid azimuth = true azimuth - convergence).
    crs : str
        Processing CRS.
    """

    times: pd.DatetimeIndex
    azimuth_deg: np.ndarray
    elevation_deg: np.ndarray
    vectors: np.ndarray
    step_h: float
    latitude: float
    longitude: float
    convergence_deg: float
    crs: str
    method: str = SPA_METHOD
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.times)

    @property
    def above_horizon(self) -> np.ndarray:
        """Boolean mask of the steps with the sun above the horizon (apparent elevation > 0)."""
        return self.elevation_deg > 0.0

    @property
    def dates(self) -> list[dt.date]:
        """Local calendar dates covered, in order."""
        return sorted({t.date() for t in self.times})

    def day_mask(self, date: dt.date) -> np.ndarray:
        """Steps on one local calendar day."""
        return np.asarray([t.date() == date for t in self.times])

    def subset(self, mask: np.ndarray) -> "SunPath":
        mask = np.asarray(mask, dtype=bool)
        return SunPath(self.times[mask], self.azimuth_deg[mask], self.elevation_deg[mask],
                       self.vectors[mask], self.step_h, self.latitude, self.longitude,
                       self.convergence_deg, self.crs, self.method, dict(self.extra))

    def metadata(self) -> dict:
        """Method and parameters, for the outputs' metadata."""
        return {
            "sun_model": f"pvlib {pvlib.__version__} solarposition.get_solarposition(method='{self.method}')",
            "latitude_deg": round(self.latitude, 6), "longitude_deg": round(self.longitude, 6),
            "timezone": str(self.times.tz) if len(self.times) else "",
            "dates": ",".join(d.isoformat() for d in self.dates),
            "time_step_min": round(self.step_h * 60.0, 6),
            "meridian_convergence_deg": round(self.convergence_deg, 6),
            "azimuth_convention": "grid azimuth = true azimuth - meridian convergence",
            "crs": self.crs,
        }


def site_location(extent: Sequence[float], crs: str = "EPSG:25832") -> tuple[float, float]:
    """Latitude and longitude (WGS84, degrees) of the centre of ``extent`` (minx, miny, maxx, maxy)."""
    if len(extent) != 4 or not (extent[2] > extent[0] and extent[3] > extent[1]):
        raise ConfigError(f"extent {tuple(extent)} is not (minx, miny, maxx, maxy) with max > min. "
                          "Fix: give the extent in the processing CRS as minx, miny, maxx, maxy")
    tr = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    lon, lat = tr.transform((extent[0] + extent[2]) / 2.0, (extent[1] + extent[3]) / 2.0)
    return float(lat), float(lon)


def grid_convergence_deg(latitude: float, longitude: float, crs: str = "EPSG:25832") -> float:
    """Meridian convergence of ``crs`` at the site (degrees; grid azimuth = true azimuth - this).

    For a geographic CRS it is 0.
    """
    c = pyproj.CRS.from_user_input(crs)
    if not c.is_projected:
        return 0.0
    return float(pyproj.Proj(c).get_factors(longitude, latitude).meridian_convergence)


def _parse_dates(dates: Iterable, year: int) -> list[dt.date]:
    out = []
    for d in dates:
        if isinstance(d, dt.datetime):
            out.append(d.date())
        elif isinstance(d, dt.date):
            out.append(d)
        elif isinstance(d, str):
            out.append(dt.date.fromisoformat(d))
        else:
            month, day = d
            out.append(dt.date(year, int(month), int(day)))
    return out


def day_times(dates: Iterable = DEFAULT_DAYS, step_min: float = 15.0, tz: str = "Europe/Berlin",
              year: int = 2025) -> tuple[pd.DatetimeIndex, float]:
    """Midpoints of the time steps over whole local days.

    Parameters
    ----------
    dates : iterable
        ``datetime.date``, ISO strings or ``(month, day)`` pairs (of ``year``).
    step_min : float
        Time step in minutes (the last step of a day ends at the next local midnight).
    tz : str
        IANA time zone; days are local calendar days (a summer-time day has 24 h local too, since
        the steps are spaced in absolute time from local midnight to the next local midnight).

    Returns
    -------
    (pandas.DatetimeIndex, float)
        tz-aware times and the step length in hours.
    """
    if not step_min > 0:
        raise ConfigError(f"time step {step_min} min is not positive. Fix: give step_min > 0, e.g. 15")
    step = pd.Timedelta(minutes=float(step_min))
    pieces = []
    for d in _parse_dates(dates, year):
        start = pd.Timestamp(d).tz_localize(tz)
        end = (pd.Timestamp(d) + pd.Timedelta(days=1)).tz_localize(tz)
        pieces.append(pd.date_range(start + step / 2, end, freq=step, inclusive="left"))
    if not pieces:
        raise ConfigError("no days given for the sun path. Fix: give at least one date, e.g. (3, 21)")
    times = pieces[0].append(pieces[1:]) if len(pieces) > 1 else pieces[0]
    return times, float(step_min) / 60.0


def year_times(year: int = 2025, step_min: float = 60.0, tz: str = "Europe/Berlin") -> tuple[pd.DatetimeIndex, float]:
    """Midpoints of ``step_min`` steps over a whole local year (hourly by default)."""
    step = pd.Timedelta(minutes=float(step_min))
    start = pd.Timestamp(dt.date(year, 1, 1)).tz_localize(tz)
    end = pd.Timestamp(dt.date(year + 1, 1, 1)).tz_localize(tz)
    return pd.date_range(start + step / 2, end, freq=step, inclusive="left"), float(step_min) / 60.0


def solar_positions(times: pd.DatetimeIndex, latitude: float, longitude: float,
                    altitude_m: float = 0.0) -> pd.DataFrame:
    """pvlib NREL SPA positions (columns ``apparent_elevation``, ``azimuth``, ``apparent_zenith``, ...)."""
    if times.tz is None:
        raise ConfigError("sun positions need tz-aware times. Fix: localise the times, e.g. "
                          "times.tz_localize('Europe/Berlin')")
    return pvlib.solarposition.get_solarposition(times, latitude, longitude, altitude=altitude_m,
                                                 method=SPA_METHOD)


def sun_vectors(azimuth_deg: np.ndarray, elevation_deg: np.ndarray, convergence_deg: float = 0.0) -> np.ndarray:
    """Unit vectors towards the sun in the grid (x east, y grid north, z up), shape ``(n, 3)``.

    ``azimuth_deg`` is from true north, clockwise; it is turned to grid north by subtracting
    ``convergence_deg``.
    """
    az = np.radians(np.asarray(azimuth_deg, dtype=float) - convergence_deg)
    el = np.radians(np.asarray(elevation_deg, dtype=float))
    return np.column_stack([np.cos(el) * np.sin(az), np.cos(el) * np.cos(az), np.sin(el)])


def sun_path(extent: Sequence[float], crs: str = "EPSG:25832", dates: Iterable | None = None,
             step_min: float = 15.0, tz: str = "Europe/Berlin", year: int = 2025,
             altitude_m: float = 0.0, times: pd.DatetimeIndex | None = None,
             step_h: float | None = None) -> SunPath:
    """Sun positions and grid directions for the site at the centre of ``extent``.

    Parameters
    ----------
    extent : (minx, miny, maxx, maxy)
        In ``crs``; its centre is the site.
    crs : str
        Processing CRS.
    dates : iterable, optional
        Days (see :func:`day_times`); default 21 March, 21 June, 21 December of ``year``.
    step_min : float
        Time step (minutes), default 15.
    tz : str
        Time zone of the local days.
    times : pandas.DatetimeIndex, optional
        Explicit tz-aware times instead of ``dates`` (then give ``step_h``, default 1 h).

    Returns
    -------
    SunPath
    """
    lat, lon = site_location(extent, crs)
    if times is None:
        times, step_h = day_times(DEFAULT_DAYS if dates is None else dates, step_min, tz, year)
    elif step_h is None:
        step_h = 1.0
    pos = solar_positions(times, lat, lon, altitude_m)
    gamma = grid_convergence_deg(lat, lon, crs)
    az = pos["azimuth"].to_numpy(dtype=float)
    el = pos["apparent_elevation"].to_numpy(dtype=float)
    return SunPath(times=times, azimuth_deg=az, elevation_deg=el, vectors=sun_vectors(az, el, gamma),
                   step_h=float(step_h), latitude=lat, longitude=lon, convergence_deg=gamma, crs=str(crs),
                   extra={"zenith_deg": pos["zenith"].to_numpy(dtype=float),
                          "apparent_zenith_deg": pos["apparent_zenith"].to_numpy(dtype=float)})


def sun_path_for_settings(settings, dates: Iterable | None = None, step_min: float = 15.0,
                          year: int = 2025) -> SunPath:
    """:func:`sun_path` for a deployment's :class:`citymodel.config.Settings` (extent, CRS, time zone)."""
    return sun_path(settings.extent, settings.processing_crs, dates=dates, step_min=step_min,
                    tz=settings.timezone, year=year)
