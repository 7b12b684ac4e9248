"""The solar layer's climate (issue #14): weather files (DWD TRY, EPW, PVGIS TMY), the monthly means,
the clear sky on request.

Expected values come from the data the tests write themselves (the hourly sums of a file), from the
configured monthly means, and from pvlib's own transposition (``get_total_irradiance``) over the
same hourly year.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pvlib
import pytest

from citymodel.analysis import climate as C
from citymodel.analysis import solar as SO
from citymodel.errors import ConfigError, SourceDataError

LAT, LON = 50.927, 11.586          # Jena
MONTHLY = C.JENA_MONTHLY_GHI_KWH_M2


def _hourly(seed: int = 1, utc_offset_h: float = 1.0) -> pd.DataFrame:
    """A year of hourly direct-horizontal and diffuse irradiance (integers, W/m²) at Jena: pvlib's
    clear sky at the hour's midpoint, dimmed per day by a random factor; ``month, day, hour``
    (0..23, the hour's start in UTC+``utc_offset_h``)."""
    start = pd.date_range("2015-01-01 00:00", periods=8760, freq="h")
    mid = (start + pd.Timedelta(minutes=30) - pd.Timedelta(hours=utc_offset_h)).tz_localize("UTC")
    loc = pvlib.location.Location(LAT, LON)
    pos = loc.get_solarposition(mid)
    cs = loc.get_clearsky(mid, solar_position=pos)
    day = np.random.default_rng(seed).uniform(0.2, 1.0, 365)[start.dayofyear - 1]
    up = pos["apparent_elevation"].to_numpy() > 1.0
    beam = np.where(up, np.round(cs["dni"].to_numpy() * np.cos(np.radians(pos["zenith"].to_numpy())) * day ** 2), 0)
    diff = np.where(up, np.round(cs["dhi"].to_numpy() * (2.0 - day)), 0)
    return pd.DataFrame({"month": start.month, "day": start.day, "hour": start.hour, "B": beam.astype(int),
                         "D": diff.astype(int)})


def write_try(path, h: pd.DataFrame, header_extra: str = "") -> None:
    """A DWD TRY .dat file (2015 edition layout, as documented in :func:`citymodel.analysis.climate.read_dwd_try`):
    header lines, the column names, a '***' line, one record per hour with HH 1..24 (MEZ, hour ending)."""
    head = ["Koordinatensystem : Lambert konform konisch", "Rechtswert        : 4107500 Meter",
            "Hochwert          : 2685500 Meter", "Hoehenlage        : 160 Meter ueber NN",
            "Art des TRY       : mittleres Jahr", "Bezugszeitraum    : 1995-2012", header_extra, "",
            "    RW      HW MM DD HH     t    p  WR   WG N    x  RF    B    D   A    E IL", "***"]
    rows = [f"4107500 2685500 {m:2d} {d:2d} {hr + 1:2d}   5.0 1000 180  3.0 4  6.0  75 {b:4d} {df:4d} 300 -350  0"
            for m, d, hr, b, df in zip(h["month"], h["day"], h["hour"], h["B"], h["D"])]
    path.write_text("\n".join(head + rows) + "\n", encoding="latin-1")


def write_epw(path, h: pd.DataFrame, tz: float = 1.0) -> None:
    """An EPW file: 8 header lines (LOCATION with site and time zone), 35 fields per hour, hours
    1..24 (hour ending, local standard time); GHI = B + D, DNI left 9999 (missing: not used)."""
    head = [f"LOCATION,Jena,TH,DEU,Test,000000,{LAT},{LON},{tz},160.0", "DESIGN CONDITIONS,0",
            "TYPICAL/EXTREME PERIODS,0", "GROUND TEMPERATURES,0", "HOLIDAYS/DAYLIGHT SAVINGS,No,0,0,0",
            "COMMENTS 1,written by a test", "COMMENTS 2,", "DATA PERIODS,1,1,Data,Thursday, 1/ 1,12/31"]
    rows = []
    for m, d, hr, b, df in zip(h["month"], h["day"], h["hour"], h["B"], h["D"]):
        f = [2015, m, d, hr + 1, 60, "?9?9?9?9E0?9?9?9?9?9?9?9?9?9?9?9?9?9?9?9*9*9?9*9*9", 5.0, 1.0, 75, 100000,
             9999, 9999, 300, b + df, 0, df, 999999, 999999, 999999, 9999, 180, 3.0, 5, 5, 9999, 77777, 9,
             "999999999", 0, 0.1, 0, 88, 0.2, 0, 0]
        rows.append(",".join(str(v) for v in f))
    path.write_text("\n".join(head + rows) + "\n", encoding="utf-8")


def write_pvgis(path, h: pd.DataFrame, time_offset_h: float | None = None) -> None:
    """A PVGIS TMY CSV: site lines (with ``Irradiance Time Offset (h)`` as files since December
    2024 have it, when given), the months selected, ``time(UTC),...,G(h),Gb(n),Gd(h),...``
    (``h`` must be in UTC), then the legend."""
    mid = pd.to_datetime(pd.DataFrame({"year": 2015, "month": h["month"], "day": h["day"], "hour": h["hour"]})) \
        + pd.Timedelta(minutes=30)
    zen = pvlib.solarposition.get_solarposition(pd.DatetimeIndex(mid).tz_localize("UTC"), LAT, LON)["zenith"].to_numpy()
    dni = np.where(h["B"] > 0, h["B"] / np.maximum(np.cos(np.radians(zen)), 0.05), 0.0)
    lines = [f"Latitude (decimal degrees): {LAT}", f"Longitude (decimal degrees): {LON}", "Elevation (m): 160.0",
             *([f"Irradiance Time Offset (h): {time_offset_h}"] if time_offset_h is not None else []),
             "month,year", *[f"{m},{2010 + m}" for m in range(1, 13)],
             "time(UTC),T2m,RH,G(h),Gb(n),Gd(h),IR(h),WS10m,WD10m,SP"]
    for m, d, hr, b, df, n in zip(h["month"], h["day"], h["hour"], h["B"], h["D"], dni):
        lines.append(f"{2010 + m}{m:02d}{d:02d}:{hr:02d}00,5.0,75.0,{b + df:.1f},{n:.2f},{df:.1f},300.0,3.0,180.0,100000.0")
    lines += ["T2m: 2-m air temperature (degree Celsius)", "G(h): Global irradiance on the horizontal plane (W/m2)"]
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")


# ---------------------------------------------------------------------------- round trips
def test_a_try_file_round_trips_to_the_same_hourly_sums(tmp_path):
    h = _hourly()
    p = tmp_path / "TRY2015_Jena_Jahr.dat"
    write_try(p, h)
    w = C.read_weather(p, "try-test")
    assert w.format == "dwd_try" and w.utc_offset_h == 1.0 and len(w.frame) == 8760
    assert np.array_equal(w.frame["hour"].to_numpy(), h["hour"].to_numpy())
    assert np.array_equal(w.frame["beam_h_w_m2"].to_numpy(), h["B"].to_numpy(float))
    assert np.array_equal(w.frame["dhi_w_m2"].to_numpy(), h["D"].to_numpy(float))
    assert np.array_equal(w.frame["ghi_w_m2"].to_numpy(), (h["B"] + h["D"]).to_numpy(float))
    assert C.annual_ghi_kwh_m2(w) == pytest.approx((h["B"] + h["D"]).sum() / 1000.0)
    # the site from Rechtswert/Hochwert (ETRS89-LCC, EPSG:3034): the 1 km cell of Jena
    assert abs(w.latitude - LAT) < 0.01 and abs(w.longitude - LON) < 0.01
    # the staged table (Parquet) keeps data and metadata
    q = tmp_path / "weather.parquet"
    w.to_table().to_parquet(q)
    back = C.WeatherData.from_table(pd.read_parquet(q))
    assert back.format == "dwd_try" and back.utc_offset_h == 1.0
    assert np.array_equal(back.frame["ghi_w_m2"].to_numpy(), w.frame["ghi_w_m2"].to_numpy())


def test_an_epw_file_round_trips_to_the_same_hourly_sums(tmp_path):
    h = _hourly(seed=2)
    p = tmp_path / "DEU_Jena.epw"
    write_epw(p, h)
    w = C.read_weather(p)
    assert w.format == "epw" and w.utc_offset_h == 1.0 and len(w.frame) == 8760
    assert np.array_equal(w.frame["ghi_w_m2"].to_numpy(), (h["B"] + h["D"]).to_numpy(float))
    assert np.array_equal(w.frame["dhi_w_m2"].to_numpy(), h["D"].to_numpy(float))
    assert np.array_equal(w.frame["hour"].to_numpy(), h["hour"].to_numpy())
    assert (w.latitude, w.longitude) == (LAT, LON)


def test_a_pvgis_tmy_csv_round_trips_to_the_same_hourly_sums(tmp_path):
    h = _hourly(seed=3, utc_offset_h=0.0)
    p = tmp_path / "tmy_50.927_11.586.csv"
    write_pvgis(p, h)
    w = C.read_weather(p)
    assert w.format == "pvgis_tmy" and w.utc_offset_h == 0.0
    assert np.allclose(w.frame["ghi_w_m2"].to_numpy(), (h["B"] + h["D"]).to_numpy(float))
    assert np.allclose(w.frame["beam_h_w_m2"].to_numpy(), h["B"].to_numpy(float))


def test_pvgis_irradiance_time_offset_places_each_hour_around_its_instant(tmp_path):
    """PVGIS' values stand for the instant HH:00 + offset: each record becomes the hour centred on
    that instant (the year's times are the hours' centres); without the line, the hour starting
    at HH:00. The annual sum stays the file's; the shift survives staging (the Parquet table)."""
    h = _hourly(seed=5, utc_offset_h=0.0)
    write_pvgis(tmp_path / "plain.csv", h)
    write_pvgis(tmp_path / "sarah.csv", h, time_offset_h=0.18)
    plain, sarah = C.read_weather(tmp_path / "plain.csv"), C.read_weather(tmp_path / "sarah.csv")
    assert plain.record_shift_h == 0.0
    assert sarah.record_shift_h == pytest.approx(-0.32) and sarah.metadata["irradiance_time_offset_h"] == 0.18
    yp = C.weather_year(plain, LAT, LON, year=2025)
    ys = C.weather_year(sarah, LAT, LON, year=2025)
    stamps = pd.to_datetime(pd.DataFrame({"year": 2025, "month": h["month"], "day": h["day"], "hour": h["hour"]}))
    stamps = pd.DatetimeIndex(stamps).tz_localize("UTC")
    lit = (h["B"] + h["D"]).to_numpy() > 0
    assert ys.times.tz_convert("UTC").equals(stamps[lit] + pd.Timedelta(hours=0.18))
    assert yp.times.tz_convert("UTC").equals(stamps[lit] + pd.Timedelta(minutes=30))
    for y in (yp, ys):
        assert float((y.ghi * y.step_h).sum()) / 1000.0 == pytest.approx((h["B"] + h["D"]).sum() / 1000.0, rel=1e-9)
    # each hour's sun lies earlier in its path: further east before noon (south = 180°)
    am = (ys.times.tz_convert("UTC").hour < 9)
    assert np.all(ys.azimuth_deg[am] < yp.azimuth_deg[am])
    table = sarah.to_table()
    table.to_parquet(tmp_path / "w.parquet")
    assert C.WeatherData.from_table(pd.read_parquet(tmp_path / "w.parquet")).record_shift_h == pytest.approx(-0.32)


def test_a_pvgis_time_offset_outside_the_hour_names_the_file(tmp_path):
    write_pvgis(tmp_path / "odd.csv", _hourly(seed=6, utc_offset_h=0.0), time_offset_h=3.5)
    with pytest.raises(SourceDataError) as e:
        C.read_weather(tmp_path / "odd.csv", "weather-pvgis")
    msg = str(e.value)
    assert "weather-pvgis" in msg and "odd.csv" in msg and "3.5" in msg and "Fix" in msg


def test_the_hourly_year_keeps_the_files_irradiation_in_each_time_frame(tmp_path):
    """The same hours written as TRY (MEZ) and as PVGIS (UTC) give the same year; the horizontal
    global irradiation of the year is the file's."""
    h = _hourly(seed=4)
    write_try(tmp_path / "a.dat", h)
    utc = h.copy()
    t = pd.to_datetime(pd.DataFrame({"year": 2015, "month": h["month"], "day": h["day"], "hour": h["hour"]})) \
        - pd.Timedelta(hours=1)
    utc["month"], utc["day"], utc["hour"] = t.dt.month, t.dt.day, t.dt.hour
    write_pvgis(tmp_path / "b.csv", utc)
    ya = C.weather_year(C.read_weather(tmp_path / "a.dat"), LAT, LON, year=2025)
    yb = C.weather_year(C.read_weather(tmp_path / "b.csv"), LAT, LON, year=2025)
    total = (h["B"] + h["D"]).sum() / 1000.0
    for y in (ya, yb):
        assert y.climate == "weather"
        assert float((y.ghi * y.step_h).sum()) / 1000.0 == pytest.approx(total, rel=1e-9)
        assert float(SO.plane_irradiation(0.0, 180.0, y)[0]) == pytest.approx(total, rel=1e-6)
    # the hour 31 Dec 23-24 MEZ is 22-23 UTC: one year, the same hours (but the first hour of the
    # MEZ year moves to the end of the UTC year: it is night)
    common = ya.times.intersection(yb.times)
    assert len(common) >= len(ya.times) - 2
    assert np.allclose(pd.Series(ya.ghi, ya.times)[common], pd.Series(yb.ghi, yb.times)[common])


# ------------------------------------------------------------------------------ the checks
def _ratio_and_pvlib(sky, tilt=35.0):
    """(35° south / horizontal) of the layer, and pvlib's transposition (Hay-Davies) over the same year."""
    hor = float(SO.plane_irradiation(0.0, 180.0, sky, model="haydavies")[0])
    south = float(SO.plane_irradiation(tilt, 180.0, sky, model="haydavies")[0])
    ref = pvlib.irradiance.get_total_irradiance(tilt, 180.0, sky.zenith_deg, sky.azimuth_deg, sky.dni, sky.ghi, sky.dhi,
                                                dni_extra=sky.dni_extra, albedo=0.2, model="haydavies")
    return hor, south, float(np.nansum(ref["poa_global"]) * sky.step_h / 1000.0)


def test_monthly_means_meet_the_configured_climate_and_transpose_like_pvlib():
    sky = C.monthly_means_year(MONTHLY, LAT, LON, year=2025)
    assert sky.climate == "monthly_means"
    months = np.bincount(sky.times.month - 1, weights=sky.ghi * sky.step_h, minlength=12) / 1000.0
    assert np.allclose(months, MONTHLY, rtol=1e-9)
    hor, south, ref = _ratio_and_pvlib(sky)
    assert abs(hor / sum(MONTHLY) - 1.0) <= 0.03
    assert 1.10 <= south / hor <= 1.25, south / hor
    assert south == pytest.approx(ref, rel=0.005)
    # the diffuse share of a central European climate: about half (DWD: 50-60 % at Jena)
    assert 0.40 < sky.metadata["annual_dhi_kwh_m2"] / sum(MONTHLY) < 0.60


def test_the_sample_citys_weather_file_holds_the_monthly_means_and_gives_the_transposition_gain(tmp_path):
    from citymodel.samplecity.weather import write_synthetic_try

    p = write_synthetic_try(tmp_path / "TRY.dat", MONTHLY, LAT, LON, seed=2026)
    assert "SYNTHETISCHE" in p.read_text(encoding="latin-1")[:2000]
    w = C.read_weather(p)
    assert np.allclose(C.monthly_ghi_kwh_m2(w), MONTHLY, atol=0.05)
    sky = C.weather_year(w, LAT, LON, year=2025)
    hor, south, ref = _ratio_and_pvlib(sky)
    assert abs(hor / sum(MONTHLY) - 1.0) <= 0.03
    assert 1.10 <= south / hor <= 1.25, south / hor
    assert south == pytest.approx(ref, rel=0.005)


def test_the_clear_sky_mode_remains_and_says_so():
    sky = C.clear_sky_year(LAT, LON, year=2025)
    assert sky.climate == "clear_sky"
    assert "not a solar cadastre" in sky.metadata["climate_label"]
    assert "kein Solarkataster" in sky.metadata["climate_label_de"]
    # without clouds: well above the climate (issue #14: 50-60 % too high)
    assert float(SO.plane_irradiation(0.0, 180.0, sky)[0]) > 1.3 * sum(MONTHLY)


def test_solar_sky_follows_the_configuration(tmp_path):
    from citymodel.analysis.parameters import solar_climate_text, solar_sky
    from citymodel.config import load_config
    from conftest import write_config

    cfg = write_config(tmp_path, "http://localhost/catalog.jsonld", tmp_path / "out")
    s = load_config(cfg)
    assert s.source("weather") is not None and s.analysis.solar.climate == "weather"
    # configured but not staged: a clear error naming the dataset and the fix
    with pytest.raises(SourceDataError, match="jena-sample-testreferenzjahr.*staging/weather"):
        solar_sky(s)
    s.analysis.solar.climate = "clear_sky"
    assert solar_sky(s).climate == "clear_sky"
    s.analysis.solar.climate = "monthly_means"
    sky = solar_sky(s)
    assert sky.climate == "monthly_means" and sky.metadata["annual_ghi_kwh_m2"] == pytest.approx(sum(MONTHLY))
    assert "1.072 kWh/m²" in solar_climate_text(s, "monthly_means")["climate_label_de"]
    # staged: the weather year
    from citymodel.samplecity.weather import write_synthetic_try
    from citymodel.store import staged_weather_path

    s.analysis.solar.climate = "weather"
    w = C.read_weather(write_synthetic_try(tmp_path / "t.dat", MONTHLY, LAT, LON, seed=1))
    staged_weather_path(s).parent.mkdir(parents=True, exist_ok=True)
    w.to_table().to_parquet(staged_weather_path(s))
    sky = solar_sky(s)
    assert sky.climate == "weather" and "jena-sample-testreferenzjahr" in sky.metadata["climate_label"]


# ----------------------------------------------------------------------------- bad input
def test_bad_weather_files_are_refused_with_the_record_and_the_fix(tmp_path):
    h = _hourly()
    p = tmp_path / "x.dat"
    write_try(p, h)
    text = p.read_text(encoding="latin-1")
    # no '***' line
    p.write_text(text.replace("***", "---"), encoding="latin-1")
    with pytest.raises(SourceDataError, match=r"no '\*\*\*' line.*Fix"):
        C.read_dwd_try(p, "w")
    # a column missing
    p.write_text(text.replace(" B    D ", " X    Y "), encoding="latin-1")
    with pytest.raises(SourceDataError, match=r"lacks \['B', 'D'\]"):
        C.read_dwd_try(p, "w")
    # a record that is not numbers
    lines = text.splitlines()
    k = lines.index("***") + 5
    bad = lines.copy()
    bad[k] = " ".join(bad[k].split()[:12] + ["xx"] + bad[k].split()[13:])      # the column B
    p.write_text("\n".join(bad) + "\n", encoding="latin-1")
    with pytest.raises(SourceDataError, match=f"line {k + 1}"):
        C.read_dwd_try(p, "w")
    # a missing hour
    p.write_text("\n".join(lines[:-1]) + "\n", encoding="latin-1")
    with pytest.raises(SourceDataError, match="8759 hourly records"):
        C.read_weather(p, "w")
    # a repeated hour
    dup = lines.copy()
    dup[-1] = dup[-2]
    p.write_text("\n".join(dup) + "\n", encoding="latin-1")
    with pytest.raises(SourceDataError, match="appears 2 times"):
        C.read_weather(p, "w")
    # a negative irradiance (missing value coded as a number)
    h2 = h.copy()
    h2.loc[4000, "D"] = -99
    write_try(p, h2)
    with pytest.raises(SourceDataError, match="dhi = -99.0 W/m² at 06-16 16h"):
        C.read_weather(p, "w")
    # an hour out of range
    neg = lines.copy()
    neg[k] = " ".join(neg[k].split()[:4] + ["25"] + neg[k].split()[5:])        # the column HH
    p.write_text("\n".join(neg) + "\n", encoding="latin-1")
    with pytest.raises(SourceDataError, match="HH 1..24"):
        C.read_dwd_try(p, "w")
    # not a weather file
    q = tmp_path / "roads.csv"
    q.write_text("road_id,dtv\nA,1000\n")
    with pytest.raises(SourceDataError, match="not a weather file"):
        C.read_weather(q)
    # an unreadable EPW
    e = tmp_path / "x.epw"
    e.write_text("LOCATION,Jena\n")
    with pytest.raises(SourceDataError, match="not a readable EPW"):
        C.read_weather(e, "w")


def test_bad_monthly_means_are_refused():
    with pytest.raises(ConfigError, match="twelve"):
        C.monthly_means_year(MONTHLY[:11], LAT, LON)
    with pytest.raises(ConfigError, match="twelve"):
        C.monthly_means_year([0.0] + list(MONTHLY[1:]), LAT, LON)
    from pydantic import ValidationError

    from citymodel.config import SolarSettings

    with pytest.raises(ValidationError, match="twelve monthly sums"):
        SolarSettings(monthly_ghi_kwh_m2=[100.0] * 11)
    with pytest.raises(ValidationError):
        SolarSettings(climate="cloudy")
