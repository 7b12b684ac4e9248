"""The climate the solar layer uses: a year of sun positions and irradiance, hour by hour.

Three ways to make that year (``analysis.solar.climate``), one result type, :class:`SkyYear`:

``weather``
    An hourly typical-year dataset of the catalog (role ``weather``): a DWD test reference year
    (TRY, ``.dat``), an EPW file or a PVGIS TMY CSV, read by :func:`read_weather`. Direct and
    diffuse irradiance come from the data, hour by hour (:func:`weather_year`).
``monthly_means``
    Without a weather dataset: the clear-sky year (pvlib Ineichen) scaled per month to configured
    long-term monthly sums of global horizontal irradiation, split into direct and diffuse by the
    monthly correlation of Erbs, Klein & Duffie (1982) (:func:`monthly_means_year`).
``clear_sky``
    The clear-sky year alone (:func:`clear_sky_year`): an upper bound without clouds, on request
    only, and labelled so: it is not a solar cadastre.

Every year says what it is in ``metadata['climate']`` and ``metadata['climate_label']`` (German
and English), which the solar layer, its legend and the release catalog repeat.

Time conventions of the weather files
-------------------------------------
Each record stands for one hour; the irradiance is the mean over that hour (W/m², equal to the
hour's sum in Wh/m²). Where the hour lies:

* DWD TRY (2011 and 2015/2045 editions): ``MM DD HH``, ``HH`` 1..24 in MEZ (UTC+1, no summer
  time), the hour *ending* at ``HH`` (DWD, TRY handbook: "Stundenmittel der vorangegangenen Stunde").
* EPW: hours 1..24 in local standard time (the file's ``TZ``), the hour ending at the hour;
  ``pvlib.iotools.read_epw`` labels each record with its hour's start.
* PVGIS TMY CSV: ``time(UTC)`` is written as ``HH:00``. Files since December 2024 state an
  ``Irradiance Time Offset (h)``: the values stand for the instant ``HH:00`` + offset (SARAH
  satellite data: the scan time within the hour, about 0.1-0.2 h; ERA5: 0.5, the hour's mean
  centred on the half hour). The record is then taken as the hour centred on that instant, i.e.
  starting ``offset - 0.5`` h after ``HH:00`` (``WeatherData.record_shift_h``); without the
  line, as the hour starting at ``HH:00`` (ERA5's convention). The shift moves irradiation
  between morning and afternoon (which faces get it), not the annual sum.

The records are placed into ``year`` (the deployment's ``analysis.year``) by month, day and hour
in their own time frame, so that a typical year made of months of different years keeps its
calendar; a 29 February in a file is dropped when ``year`` is not a leap year (and the loss is
reported).

From hourly means to sun directions
-----------------------------------
The sun moves during an hour, and in the hours of sunrise and sunset it is up for part of it. For
every hour the sun's unit vector is computed at ``substeps`` instants (default 6, every 10 min)
and averaged over the instants with the sun above the horizon (zero vector otherwise): ``v̄``. For
a constant DNI within the hour, the hour's mean beam irradiance on a plane with normal ``n`` is
``DNI (n · v̄)`` (as long as the sun stays in front of the plane), and on the horizontal it is the
file's direct horizontal irradiance ``B = DNI v̄_z``. The year therefore uses the direction
``u = v̄ / |v̄|`` and the effective direct normal irradiance ``B / u_z``: the horizontal beam of
every hour is exactly the file's, and a tilted plane gets the hour's mean. ``B`` is the file's
direct horizontal irradiance (TRY) or ``GHI - DHI`` (EPW, PVGIS: the files' DNI were derived with
their own sun positions; recomputing it keeps the horizontal global irradiation of the file
exactly). Where ``B / u_z`` would exceed the extraterrestrial irradiance (a few sunrise hours with
the sun barely up), it is capped and the rest is counted as diffuse, and where the sun is never
up in an hour that has direct light (timing of the data), the direct light is counted as diffuse:
the horizontal global irradiation is kept in every case, and the moved amounts are reported.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import pvlib

from ..errors import ConfigError, SourceDataError, dataset_error
from .sun import SPA_METHOD, sun_vectors, year_times

__all__ = ["SkyYear", "ClearSkyYear", "WeatherData", "CLIMATES", "JENA_MONTHLY_GHI_KWH_M2", "clear_sky_year",
           "monthly_means_year", "erbs_monthly_diffuse_fraction", "weather_year", "read_weather", "read_dwd_try", "weather_format",
           "annual_ghi_kwh_m2", "monthly_ghi_kwh_m2"]

#: the climates of ``analysis.solar.climate``: name -> (German label, English label)
CLIMATES = {
    "weather": ("Stundenwerte eines Testreferenzjahres", "hourly typical-year weather data"),
    "monthly_means": ("Klarhimmeljahr, je Monat auf langjährige Monatssummen der Globalstrahlung skaliert, "
                      "Aufteilung direkt/diffus nach Erbs", "clear-sky year scaled per month to long-term "
                      "monthly global horizontal irradiation, direct/diffuse split by Erbs"),
    "clear_sky": ("Klarhimmeljahr ohne Wolken (obere Schranke, kein Solarkataster)",
                  "clear-sky year without clouds (an upper bound, not a solar cadastre)"),
}

#: Long-term monthly sums of global horizontal irradiation (kWh/m², January .. December), the
#: default of ``analysis.solar.monthly_ghi_kwh_m2``. Source: Deutscher Wetterdienst (DWD), area
#: means of Germany from its monthly irradiation maps, as DWD states them in its monthly reports
#: (reported by solarserver.de, "Quelle: DWD"): February 40, June 165, July 164, August 141,
#: September 95, October 56, November 26, December 17 kWh/m² (1991-2020); January 23, March 75,
#: April 117, May 153 kWh/m² (1981-2010, the period DWD stated in those months' reports). Sum
#: 1,072 kWh/m²·a, within the 1,070-1,100 kWh/m²·a that PVGIS and DWD give for Jena's horizontal
#: (issue #14). These are Germany-wide means, not Jena's own: a deployment should give its site's
#: values (PVGIS "Monthly radiation", horizontal plane, or the DWD TRY of its 1 km cell as the
#: ``weather`` dataset).
JENA_MONTHLY_GHI_KWH_M2: tuple[float, ...] = (23.0, 40.0, 75.0, 117.0, 153.0, 165.0, 164.0, 141.0, 95.0, 56.0,
                                              26.0, 17.0)

#: plausible range of hourly mean irradiance (W/m²): above this a record is an error
MAX_IRRADIANCE_W_M2 = 1400.0


# ================================================================================ the year
@dataclass
class SkyYear:
    """Sun and irradiance over a year, one entry per time step with light.

    Attributes
    ----------
    times : pandas.DatetimeIndex
        tz-aware representative instants of the steps (hour midpoints).
    zenith_deg, azimuth_deg : numpy.ndarray
        Apparent zenith and true azimuth of the sun direction of each step.
    vectors : numpy.ndarray
        ``(steps, 3)`` unit vectors towards the sun in the processing CRS (x east, y grid north).
    dni, ghi, dhi, dni_extra : numpy.ndarray
        Direct normal (along ``vectors``), global and diffuse horizontal, extraterrestrial
        normal irradiance (W/m², means over the step).
    step_h : float
        Duration of a step (h).
    metadata : dict
        Method and source; ``climate`` is one of :data:`CLIMATES`, ``climate_label`` says it in
        words.
    """

    times: pd.DatetimeIndex
    zenith_deg: np.ndarray
    azimuth_deg: np.ndarray
    vectors: np.ndarray
    dni: np.ndarray
    ghi: np.ndarray
    dhi: np.ndarray
    dni_extra: np.ndarray
    step_h: float
    latitude: float
    longitude: float
    convergence_deg: float
    metadata: dict = field(default_factory=dict)

    @property
    def climate(self) -> str:
        return str(self.metadata.get("climate", "clear_sky"))


#: the previous name of :class:`SkyYear` (a clear-sky year is one kind of it)
ClearSkyYear = SkyYear


def _labels(climate: str, source: str = "") -> dict:
    de, en = CLIMATES[climate]
    if source:
        de, en = f"{de}: {source}", f"{en}: {source}"
    return {"climate": climate, "climate_label": en, "climate_label_de": de}


def _site_meta(latitude, longitude, convergence_deg, tz, year) -> dict:
    return {"sun_model": f"pvlib solarposition {SPA_METHOD}", "year": year, "latitude_deg": round(latitude, 6),
            "longitude_deg": round(longitude, 6), "timezone": tz,
            "meridian_convergence_deg": round(convergence_deg, 6)}


def clear_sky_year(latitude: float, longitude: float, convergence_deg: float = 0.0, year: int = 2025,
                   tz: str = "Europe/Berlin", step_min: float = 60.0, altitude_m: float = 0.0) -> SkyYear:
    """Clear-sky (Ineichen, pvlib Linke turbidity climatology) irradiance at the midpoints of the
    daylight steps of a year (``climate='clear_sky'``)."""
    times, step_h = year_times(year, step_min, tz)
    loc = pvlib.location.Location(latitude, longitude, tz=tz, altitude=altitude_m)
    pos = loc.get_solarposition(times, method=SPA_METHOD)
    cs = loc.get_clearsky(times, model="ineichen", solar_position=pos)
    up = (pos["apparent_elevation"].to_numpy(float) > 0) & (cs["ghi"].to_numpy(float) > 0)
    az = pos["azimuth"].to_numpy(float)[up]
    el = pos["apparent_elevation"].to_numpy(float)[up]
    dni_extra = pvlib.irradiance.get_extra_radiation(times).to_numpy(float)[up]
    meta = {"irradiance_model": f"pvlib {pvlib.__version__} clearsky Ineichen, Linke turbidity climatology",
            "time_step_min": step_min, **_site_meta(latitude, longitude, convergence_deg, tz, year),
            **_labels("clear_sky")}
    return SkyYear(times[up], pos["apparent_zenith"].to_numpy(float)[up], az, sun_vectors(az, el, convergence_deg),
                   cs["dni"].to_numpy(float)[up], cs["ghi"].to_numpy(float)[up], cs["dhi"].to_numpy(float)[up],
                   dni_extra, step_h, latitude, longitude, convergence_deg, meta)


def _check_monthly(monthly_ghi_kwh_m2: Sequence[float]) -> np.ndarray:
    m = np.asarray(monthly_ghi_kwh_m2, dtype=float).ravel()
    if m.size != 12 or not np.isfinite(m).all() or (m <= 0).any() or (m > 400).any():
        raise ConfigError(f"monthly global horizontal irradiation {list(monthly_ghi_kwh_m2)} is not twelve sums "
                          "between 0 and 400 kWh/m². Fix: give analysis.solar.monthly_ghi_kwh_m2 as twelve numbers, "
                          "January to December (e.g. PVGIS 'Monthly radiation', horizontal plane, of the site)")
    return m


#: Klein's (1977) mean day of each month (day of the month): its extraterrestrial irradiation is
#: closest to the month's mean (Duffie & Beckman, Solar Engineering of Thermal Processes, Table 1.6.1)
_MEAN_DAY = (17, 16, 16, 15, 15, 11, 17, 16, 15, 15, 14, 10)


def erbs_monthly_diffuse_fraction(clearness_index, sunset_hour_angle_deg) -> np.ndarray:
    """Monthly mean diffuse fraction of the daily global irradiation from the monthly mean
    clearness index (Erbs, Klein & Duffie 1982, Solar Energy 28(4) 293-302; Duffie & Beckman eq.
    2.12.2)::

        ω_s <= 81.4°:  H_d/H = 1.391 - 3.560 K + 4.189 K² - 2.137 K³
        ω_s >  81.4°:  H_d/H = 1.311 - 3.022 K + 3.427 K² - 1.821 K³

    ``K`` is clipped to 0.3 .. 0.8, the range the correlation was fitted on.
    """
    k = np.clip(np.asarray(clearness_index, dtype=float), 0.3, 0.8)
    ws = np.asarray(sunset_hour_angle_deg, dtype=float)
    short = 1.391 - 3.560 * k + 4.189 * k ** 2 - 2.137 * k ** 3
    long_ = 1.311 - 3.022 * k + 3.427 * k ** 2 - 1.821 * k ** 3
    return np.where(ws <= 81.4, short, long_)


def monthly_means_year(monthly_ghi_kwh_m2: Sequence[float], latitude: float, longitude: float,
                       convergence_deg: float = 0.0, year: int = 2025, tz: str = "Europe/Berlin",
                       altitude_m: float = 0.0, source: str = "") -> SkyYear:
    """The clear-sky year scaled per month to ``monthly_ghi_kwh_m2`` (January .. December, kWh/m²)
    (``climate='monthly_means'``).

    Per month m: the monthly clearness index ``K_m = H_m / H0_m`` (``H0``: extraterrestrial
    irradiation on the horizontal) gives the diffuse fraction ``F_m`` by the Erbs et al. (1982)
    monthly correlation (:func:`erbs_monthly_diffuse_fraction`); the diffuse irradiation
    ``F_m H_m`` is spread over the month's hours like the clear sky's diffuse irradiance, the direct
    ``(1 - F_m) H_m`` like the clear sky's direct horizontal irradiance (the clear sky's DNI is
    scaled by the same factor). The monthly sums of global horizontal irradiation are met exactly.

    (Splitting the *scaled* hourly values with the hourly Erbs model instead would treat every
    hour as a hazy mean hour and give a diffuse share of about 0.7 where the measured one is about
    0.5: a decomposition of hourly values needs hourly weather, :func:`weather_year`.)
    """
    months = _check_monthly(monthly_ghi_kwh_m2)
    cs = clear_sky_year(latitude, longitude, convergence_deg, year=year, tz=tz, altitude_m=altitude_m)
    m_idx = cs.times.month.to_numpy() - 1
    cosz = np.cos(np.radians(cs.zenith_deg))
    beam_cs = cs.dni * cosz
    kwh = lambda w: np.bincount(m_idx, weights=w * cs.step_h / 1000.0, minlength=12)  # noqa: E731
    h0 = kwh(cs.dni_extra * cosz)
    kt = months / h0
    doy = pd.DatetimeIndex([pd.Timestamp(year, m + 1, d) for m, d in enumerate(_MEAN_DAY)]).dayofyear.to_numpy()
    decl = pvlib.solarposition.declination_spencer71(doy)
    ws = np.degrees(np.arccos(np.clip(-np.tan(np.radians(latitude)) * np.tan(decl), -1.0, 1.0)))
    frac = erbs_monthly_diffuse_fraction(kt, ws)
    beam_scale = (1.0 - frac) * months / kwh(beam_cs)
    diff_scale = frac * months / kwh(cs.dhi)
    dni = cs.dni * beam_scale[m_idx]
    dhi = cs.dhi * diff_scale[m_idx]
    ghi = dni * cosz + dhi
    meta = {**cs.metadata, "irradiance_model": "pvlib clearsky Ineichen scaled per month to the monthly global "
            "horizontal irradiation; diffuse fraction per month from the monthly clearness index (Erbs, Klein & "
            "Duffie 1982, monthly correlation)",
            "monthly_ghi_kwh_m2": [round(float(v), 3) for v in months],
            "annual_ghi_kwh_m2": round(float(months.sum()), 3),
            "monthly_clearness_index": [round(float(v), 4) for v in kt],
            "monthly_diffuse_fraction": [round(float(v), 4) for v in frac],
            "annual_dhi_kwh_m2": round(float((frac * months).sum()), 3),
            **_labels("monthly_means", source)}
    return SkyYear(cs.times, cs.zenith_deg, cs.azimuth_deg, cs.vectors, dni, ghi, dhi, cs.dni_extra, cs.step_h,
                   latitude, longitude, convergence_deg, meta)


# ============================================================================ weather data
@dataclass
class WeatherData:
    """Hourly irradiance of a weather file, in a common form.

    Attributes
    ----------
    frame : pandas.DataFrame
        One row per hour: ``month, day, hour`` (0..23, the hour's start in ``utc_offset_h`` time),
        ``ghi_w_m2``, ``dhi_w_m2`` (hourly means), ``beam_h_w_m2`` (direct horizontal: TRY's
        ``B``, else ``GHI - DHI``) and ``dni_w_m2`` where the file has it (else NaN).
    utc_offset_h : float
        The time frame of ``month, day, hour`` (1 for TRY's MEZ, the EPW's ``TZ``, 0 for PVGIS).
    format : str
        ``dwd_try``, ``epw`` or ``pvgis_tmy``.
    latitude, longitude, altitude_m : float or None
        The data's site where the file states it.
    metadata : dict
        What the file says about itself (station, period, kind of year, ...).
    record_shift_h : float
        Where each record's hour starts, after ``hour`` (PVGIS' irradiance time offset - 0.5 h;
        0 for the hour-mean formats).
    """

    frame: pd.DataFrame
    utc_offset_h: float
    format: str
    latitude: float | None = None
    longitude: float | None = None
    altitude_m: float | None = None
    metadata: dict = field(default_factory=dict)
    record_shift_h: float = 0.0

    def to_table(self) -> pd.DataFrame:
        """The hourly table with its metadata in ``.attrs`` (what staging stores as Parquet)."""
        t = self.frame.copy()
        t.attrs = {"format": self.format, "utc_offset_h": self.utc_offset_h, "latitude": self.latitude,
                   "longitude": self.longitude, "altitude_m": self.altitude_m,
                   "metadata": {k: v for k, v in self.metadata.items()}, "record_shift_h": self.record_shift_h}
        return t

    @classmethod
    def from_table(cls, table: pd.DataFrame) -> "WeatherData":
        a = dict(table.attrs)
        return cls(pd.DataFrame(table).reset_index(drop=True), float(a.get("utc_offset_h", 0.0)),
                   str(a.get("format", "")), a.get("latitude"), a.get("longitude"), a.get("altitude_m"),
                   dict(a.get("metadata") or {}), float(a.get("record_shift_h", 0.0)))


def annual_ghi_kwh_m2(weather: WeatherData) -> float:
    """The file's annual global horizontal irradiation (kWh/m²·a)."""
    return float(weather.frame["ghi_w_m2"].sum()) / 1000.0


def monthly_ghi_kwh_m2(weather: WeatherData) -> np.ndarray:
    """The file's monthly global horizontal irradiation (kWh/m², January .. December)."""
    f = weather.frame
    return np.bincount(f["month"].to_numpy(int) - 1, weights=f["ghi_w_m2"].to_numpy(float), minlength=12) / 1000.0


def weather_format(path: str | Path) -> str:
    """``dwd_try``, ``epw`` or ``pvgis_tmy`` from a file's first lines (None-safe on binary junk)."""
    p = Path(path)
    with open(p, "rb") as fh:
        head = fh.read(4096).decode("latin-1", errors="replace")
    first = head.lstrip().splitlines()[0] if head.strip() else ""
    if first.upper().startswith("LOCATION,"):
        return "epw"
    if first.startswith("Latitude (decimal degrees)"):
        return "pvgis_tmy"
    if re.search(r"(?m)^\*\*\*", head) or re.search(r"(?m)^\s*MM\s+DD\s+HH", head) or "Testreferenzjahr" in head \
            or "Rechtswert" in head:
        return "dwd_try"
    raise dataset_error(SourceDataError, "weather", f"{p.name} is not a weather file this pipeline reads (first "
                        f"line {first[:60]!r})", "publish a DWD test reference year (.dat), an EPW file or a "
                        "PVGIS TMY CSV as the weather dataset", record=p.name)


def read_weather(path: str | Path, dataset: str = "weather") -> WeatherData:
    """Read a typical-year weather file: DWD TRY (:func:`read_dwd_try`), EPW
    (``pvlib.iotools.read_epw``) or PVGIS TMY CSV (``pvlib.iotools.read_pvgis_tmy``).

    Raises
    ------
    SourceDataError
        Unknown format, unreadable file, not one value per hour of a year, implausible values
        (negative, above 1,400 W/m², diffuse above global); the message names the dataset, the
        record and the fix.
    """
    p = Path(path)
    fmt = weather_format(p)
    if fmt == "dwd_try":
        data = read_dwd_try(p, dataset)
    elif fmt == "epw":
        data = _read_epw(p, dataset)
    else:
        data = _read_pvgis(p, dataset)
    _validate(data, dataset, p.name)
    return data


def _read_epw(path: Path, dataset: str) -> WeatherData:
    try:
        df, meta = pvlib.iotools.read_epw(str(path))
    except Exception as exc:  # pvlib raises plain ValueErrors with little context
        raise dataset_error(SourceDataError, dataset, f"{path.name} is not a readable EPW file ({exc})",
                            "publish a complete EPW file (8 header lines, 8760 hourly records)",
                            record=path.name) from exc
    frame = pd.DataFrame({"month": df["month"].to_numpy(int), "day": df["day"].to_numpy(int),
                          "hour": df["hour"].to_numpy(int) - 1,
                          "ghi_w_m2": df["ghi"].to_numpy(float), "dhi_w_m2": df["dhi"].to_numpy(float),
                          "dni_w_m2": df["dni"].to_numpy(float)})
    frame["beam_h_w_m2"] = (frame["ghi_w_m2"] - frame["dhi_w_m2"]).clip(lower=0.0)
    md = {k: meta.get(k) for k in ("city", "state-prov", "country", "data_type", "WMO_code")}
    return WeatherData(frame, float(meta["TZ"]), "epw", float(meta["latitude"]), float(meta["longitude"]),
                       float(meta["altitude"]), {"source": "EPW", **{k: str(v) for k, v in md.items() if v}})


def _read_pvgis(path: Path, dataset: str) -> WeatherData:
    try:
        df, meta = pvlib.iotools.read_pvgis_tmy(str(path), pvgis_format="csv", map_variables=True)
    except Exception as exc:
        raise dataset_error(SourceDataError, dataset, f"{path.name} is not a readable PVGIS TMY CSV ({exc})",
                            "download the TMY from PVGIS as CSV (outputformat=csv) and publish it unchanged",
                            record=path.name) from exc
    idx = pd.DatetimeIndex(df.index).tz_convert("UTC")
    frame = pd.DataFrame({"month": idx.month, "day": idx.day, "hour": idx.hour,
                          "ghi_w_m2": df["ghi"].to_numpy(float), "dhi_w_m2": df["dhi"].to_numpy(float),
                          "dni_w_m2": df["dni"].to_numpy(float)})
    frame["beam_h_w_m2"] = (frame["ghi_w_m2"] - frame["dhi_w_m2"]).clip(lower=0.0)
    inputs = meta.get("inputs", {}) if isinstance(meta, dict) else {}
    months = meta.get("months_selected", []) if isinstance(meta, dict) else []
    md = {"source": "PVGIS TMY", "months_selected": ", ".join(f"{m['month']}:{m['year']}" for m in months)}
    shift = 0.0
    if "irradiance time offset" in inputs:
        offset = float(inputs["irradiance time offset"])
        if not 0.0 <= offset <= 1.0:
            raise dataset_error(SourceDataError, dataset, f"{path.name} states an irradiance time offset of "
                                f"{offset} h, outside the hour (0..1)", "publish the PVGIS file unchanged",
                                record="Irradiance Time Offset (h)")
        md["irradiance_time_offset_h"] = offset
        shift = offset - 0.5
    return WeatherData(frame, 0.0, "pvgis_tmy", inputs.get("latitude"), inputs.get("longitude"),
                       inputs.get("elevation"), md, shift)


#: header keys of a DWD TRY file that are kept as metadata (key in the file -> metadata name)
_TRY_META = {"Rechtswert": "rechtswert_m", "Hochwert": "hochwert_m", "Hoehenlage": "altitude_m",
             "Art des TRY": "kind", "Bezugszeitraum": "period", "Datenbasis": "basis",
             "Koordinatensystem": "coordinate_system"}


def read_dwd_try(path: str | Path, dataset: str = "weather") -> WeatherData:
    """Read a DWD test reference year (TRY) ``.dat`` file.

    Format (DWD TRY 2011 and 2015/2045, one file per year type): free-text header lines, among them
    ``Rechtswert : <m> Meter``, ``Hochwert : <m> Meter`` (ETRS89 / Lambert conformal conic,
    EPSG:3034), ``Hoehenlage : <m> Meter ueber NN``, ``Art des TRY : ...``, ``Bezugszeitraum : ...``;
    a legend of the columns; then a line of column names, a line starting with ``***`` and one
    whitespace-separated record per hour. The columns used are ``MM`` (month), ``DD`` (day),
    ``HH`` (hour 1..24, MEZ = UTC+1, the hour *ending* at HH), ``B`` (direct solar irradiance on the
    horizontal, W/m², mean of the hour) and ``D`` (diffuse on the horizontal, W/m²); the others
    (temperature, pressure, wind, cloud cover, humidity, long-wave radiation) are not needed.
    ``GHI = B + D``. The site comes from ``Rechtswert``/``Hochwert`` where the file has them (the
    2011 edition names a region instead).

    Raises
    ------
    SourceDataError
        No ``***`` line, a missing column, a record that is not numbers, a month/day/hour out of
        range, a repeated hour, or not 8760 (8784) records.
    """
    p = Path(path)
    try:
        lines = p.read_text(encoding="latin-1").splitlines()
    except OSError as exc:
        raise dataset_error(SourceDataError, dataset, f"cannot read {p.name}: {exc}", "check the download",
                            record=p.name) from exc
    star = next((i for i, ln in enumerate(lines) if ln.startswith("***")), None)
    if star is None:
        raise dataset_error(SourceDataError, dataset, f"{p.name} has no '***' line before its data",
                            "publish the TRY .dat file as DWD delivers it (column names, a '***' line, then "
                            "the hourly records)", record=p.name)
    names_line = next((lines[i] for i in range(star - 1, -1, -1) if lines[i].strip()), "")
    names = names_line.split()
    missing = [c for c in ("MM", "DD", "HH", "B", "D") if c not in names]
    if missing:
        raise dataset_error(SourceDataError, dataset, f"{p.name}: the column line {names_line.strip()!r} lacks "
                            f"{missing}", "publish a DWD TRY file with the columns MM DD HH B D", record=p.name)
    meta: dict = {"source": "DWD TRY"}
    for ln in lines[:star]:
        if ":" in ln:
            key, _, val = ln.partition(":")
            key = key.strip()
            if key in _TRY_META:
                meta[_TRY_META[key]] = val.strip()
        if "synthetisch" in ln.lower() or "synthetic" in ln.lower():
            meta.setdefault("note", ln.strip())
    col = {c: names.index(c) for c in ("MM", "DD", "HH", "B", "D")}
    try:   # fast path: a well-formed table
        import io

        body = "\n".join(lines[star + 1:])
        t = pd.read_csv(io.StringIO(body), sep=r"\s+", header=None, usecols=list(col.values()),
                        dtype=float, engine="c")
        t = t[list(col.values())]
        rows = t.to_numpy(float)
        if np.isnan(rows).any() or t.shape[1] != 5:
            raise ValueError("missing values")
    except (ValueError, pd.errors.ParserError):
        rows = []
        for i in range(star + 1, len(lines)):
            ln = lines[i]
            if not ln.strip():
                continue
            parts = ln.split()
            try:
                if len(parts) < len(names):
                    raise ValueError(f"{len(parts)} values, {len(names)} columns")
                rows.append((int(parts[col["MM"]]), int(parts[col["DD"]]), int(parts[col["HH"]]),
                             float(parts[col["B"]]), float(parts[col["D"]])))
            except ValueError as exc:
                raise dataset_error(SourceDataError, dataset, f"{p.name} line {i + 1} is not a record of numbers "
                                    f"({exc}): {ln.strip()[:80]!r}", "publish the TRY .dat file unchanged",
                                    record=f"line {i + 1}") from None
    a = np.asarray(rows, dtype=float)
    mm, dd, hh = a[:, 0].astype(int), a[:, 1].astype(int), a[:, 2].astype(int)
    bad = (mm < 1) | (mm > 12) | (dd < 1) | (dd > 31) | (hh < 1) | (hh > 24)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise dataset_error(SourceDataError, dataset, f"{p.name}: record {k + 1} has month/day/hour "
                            f"{mm[k]}/{dd[k]}/{hh[k]} (MM 1..12, DD 1..31, HH 1..24)",
                            "publish the TRY .dat file unchanged", record=f"record {k + 1}")
    beam, diffuse = a[:, 3], a[:, 4]
    frame = pd.DataFrame({"month": mm, "day": dd, "hour": hh - 1, "ghi_w_m2": beam + diffuse, "dhi_w_m2": diffuse,
                          "dni_w_m2": np.full(len(a), np.nan), "beam_h_w_m2": beam})
    lat = lon = alt = None
    if "rechtswert_m" in meta and "hochwert_m" in meta:
        try:
            import pyproj

            rw = float(re.findall(r"-?\d+(?:\.\d+)?", meta["rechtswert_m"])[0])
            hw = float(re.findall(r"-?\d+(?:\.\d+)?", meta["hochwert_m"])[0])
            lon, lat = pyproj.Transformer.from_crs("EPSG:3034", "EPSG:4326", always_xy=True).transform(rw, hw)
            lon, lat = float(lon), float(lat)
        except (IndexError, ValueError):
            lat = lon = None
    if "altitude_m" in meta:
        nums = re.findall(r"-?\d+(?:\.\d+)?", str(meta["altitude_m"]))
        alt = float(nums[0]) if nums else None
    return WeatherData(frame, 1.0, "dwd_try", lat, lon, alt, meta)


def _validate(data: WeatherData, dataset: str, name: str) -> None:
    f = data.frame
    n = len(f)
    if n not in (8760, 8784):
        raise dataset_error(SourceDataError, dataset, f"{name} has {n} hourly records, not those of one year "
                            "(8760, or 8784 in a leap year)", "publish a complete typical year, one record per hour",
                            record=name)
    key = f["month"].to_numpy(int) * 10000 + f["day"].to_numpy(int) * 100 + f["hour"].to_numpy(int)
    uniq, counts = np.unique(key, return_counts=True)
    if (counts > 1).any():
        k = int(uniq[counts > 1][0])
        raise dataset_error(SourceDataError, dataset, f"{name}: the hour {k // 10000:02d}-{k // 100 % 100:02d} "
                            f"{k % 100:02d}h appears {int(counts[counts > 1][0])} times", "publish one record per hour",
                            record=f"{k // 10000:02d}-{k // 100 % 100:02d} {k % 100:02d}h")
    for m in range(1, 13):
        days = f.loc[f["month"] == m, "day"]
        if len(days) and days.max() > calendar.monthrange(2024, m)[1]:
            raise dataset_error(SourceDataError, dataset, f"{name}: month {m} has a day {int(days.max())}",
                                "publish valid calendar days", record=f"month {m}")
    for c in ("ghi_w_m2", "dhi_w_m2", "beam_h_w_m2"):
        v = f[c].to_numpy(float)
        bad = ~np.isfinite(v) | (v < 0) | (v > MAX_IRRADIANCE_W_M2)
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            r = f.iloc[k]
            raise dataset_error(SourceDataError, dataset, f"{name}: {c.removesuffix('_w_m2')} = {v[k]} W/m² at "
                                f"{int(r.month):02d}-{int(r.day):02d} {int(r.hour):02d}h (expected 0..{MAX_IRRADIANCE_W_M2:g})",
                                "correct or replace the weather file (missing values must not be coded as negative "
                                "numbers)", record=f"{int(r.month):02d}-{int(r.day):02d} {int(r.hour):02d}h")
    over = f["dhi_w_m2"].to_numpy(float) > f["ghi_w_m2"].to_numpy(float) + 1.0
    if over.any():
        k = int(np.flatnonzero(over)[0])
        r = f.iloc[k]
        raise dataset_error(SourceDataError, dataset, f"{name}: diffuse {r.dhi_w_m2} W/m² exceeds global "
                            f"{r.ghi_w_m2} W/m² at {int(r.month):02d}-{int(r.day):02d} {int(r.hour):02d}h",
                            "correct or replace the weather file", record=f"{int(r.month):02d}-{int(r.day):02d} "
                            f"{int(r.hour):02d}h")


# ============================================================================ year from data
def weather_year(weather: WeatherData, latitude: float, longitude: float, convergence_deg: float = 0.0,
                 year: int = 2025, tz: str = "Europe/Berlin", altitude_m: float = 0.0, substeps: int = 6,
                 source: str = "") -> SkyYear:
    """The hourly year of a weather file (``climate='weather'``): see the module docstring.

    Parameters
    ----------
    weather : WeatherData
        :func:`read_weather` (or the staged table, :meth:`WeatherData.from_table`).
    latitude, longitude : float
        The site (the city's; the file's own site is only reported).
    year : int
        Calendar year the typical year is placed in (``analysis.year``).
    substeps : int
        Sun positions per hour for the hour's mean direction.
    source : str
        Name of the dataset, for the label.
    """
    if substeps < 1:
        raise ConfigError(f"substeps {substeps} < 1. Fix: give at least 1 sun position per hour")
    f = weather.frame
    leap = calendar.isleap(year)
    keep = np.ones(len(f), dtype=bool)
    if not leap:
        keep &= ~((f["month"].to_numpy(int) == 2) & (f["day"].to_numpy(int) == 29))
    dropped_kwh = float(f.loc[~keep, "ghi_w_m2"].sum()) / 1000.0
    f = f[keep]
    start_local = pd.to_datetime(pd.DataFrame({"year": year, "month": f["month"].to_numpy(int),
                                               "day": f["day"].to_numpy(int), "hour": f["hour"].to_numpy(int)}))
    start_utc = start_local - pd.Timedelta(hours=float(weather.utc_offset_h)) \
        + pd.Timedelta(hours=float(weather.record_shift_h))
    start = pd.DatetimeIndex(start_utc).tz_localize("UTC")
    n = len(start)
    offs = (np.arange(substeps) + 0.5) / substeps
    sub_times = start.repeat(substeps) + pd.to_timedelta(np.tile(offs * 3600.0, n), unit="s")
    pos = pvlib.solarposition.get_solarposition(sub_times, latitude, longitude, altitude=altitude_m, method=SPA_METHOD)
    el = np.radians(pos["apparent_elevation"].to_numpy(float)).reshape(n, substeps)
    az = np.radians(pos["azimuth"].to_numpy(float)).reshape(n, substeps)
    up = el > 0
    ve = np.where(up, np.cos(el) * np.sin(az), 0.0).mean(axis=1)      # true frame: east, north, up
    vn = np.where(up, np.cos(el) * np.cos(az), 0.0).mean(axis=1)
    vz = np.where(up, np.sin(el), 0.0).mean(axis=1)
    centre = start + pd.Timedelta(minutes=30)
    ghi = f["ghi_w_m2"].to_numpy(float)
    beam_h = np.minimum(f["beam_h_w_m2"].to_numpy(float), ghi)
    dhi = ghi - beam_h
    sun_up = vz > 0
    norm = np.sqrt(ve * ve + vn * vn + vz * vz)
    # hours with direct light but no sun (timing of the data): counted as diffuse
    no_sun = ~sun_up & (beam_h > 0)
    moved_no_sun = float(beam_h[no_sun].sum()) / 1000.0
    beam_h = np.where(sun_up, beam_h, 0.0)
    dhi = ghi - beam_h
    # effective direction and DNI; DNI capped at the extraterrestrial irradiance
    centre_pos = pvlib.solarposition.get_solarposition(centre, latitude, longitude, altitude=altitude_m,
                                                       method=SPA_METHOD)
    u = np.where(sun_up[:, None], np.column_stack([ve, vn, vz]) / np.where(norm > 0, norm, 1.0)[:, None], np.nan)
    c_el = np.radians(centre_pos["apparent_elevation"].to_numpy(float))
    c_az = np.radians(centre_pos["azimuth"].to_numpy(float))
    fallback = np.column_stack([np.cos(c_el) * np.sin(c_az), np.cos(c_el) * np.cos(c_az), np.sin(c_el)])
    u = np.where(sun_up[:, None], u, fallback)
    dni_extra = pvlib.irradiance.get_extra_radiation(centre).to_numpy(float)
    uz = u[:, 2]
    dni = np.where(sun_up, beam_h / np.where(sun_up, uz, 1.0), 0.0)
    capped = dni > dni_extra
    moved_cap = float((beam_h[capped] - dni_extra[capped] * uz[capped]).sum()) / 1000.0
    dni = np.minimum(dni, dni_extra)
    dhi = ghi - dni * np.where(sun_up, uz, 0.0)
    light = ghi > 0
    el_eff = np.degrees(np.arcsin(np.clip(uz, -1, 1)))
    az_eff = np.degrees(np.arctan2(u[:, 0], u[:, 1])) % 360.0
    meta = {"irradiance_model": f"hourly {weather.format} data: direct and diffuse horizontal irradiance of the "
            f"file, direct normal along the hour's mean sun direction ({substeps} sun positions per hour)",
            "weather_format": weather.format, "substeps_per_hour": substeps, "time_step_min": 60.0,
            "annual_ghi_kwh_m2": round(float(ghi[light].sum()) / 1000.0, 3),
            "annual_dhi_kwh_m2": round(float(dhi[light].sum()) / 1000.0, 3),
            "monthly_ghi_kwh_m2": [round(float(v), 3) for v in np.bincount(
                f["month"].to_numpy(int) - 1, weights=ghi, minlength=12) / 1000.0],
            "direct_counted_as_diffuse_kwh_m2": round(moved_no_sun + moved_cap, 4),
            "dropped_feb29_kwh_m2": round(dropped_kwh, 4),
            "data_latitude_deg": weather.latitude, "data_longitude_deg": weather.longitude,
            **{f"data_{k}": v for k, v in weather.metadata.items()},
            **_site_meta(latitude, longitude, convergence_deg, tz, year), **_labels("weather", source)}
    times = centre[light].tz_convert(tz)
    return SkyYear(times, 90.0 - el_eff[light], az_eff[light], sun_vectors(az_eff[light], el_eff[light], convergence_deg),
                   dni[light], ghi[light], dhi[light], dni_extra[light], 1.0, latitude, longitude, convergence_deg, meta)

