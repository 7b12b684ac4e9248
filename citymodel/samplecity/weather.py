"""The sample city's weather dataset: a synthetic test reference year in the DWD TRY format.

Synthetic sample data, not a product of the Deutscher Wetterdienst: hourly global irradiance made
from the clear sky (pvlib Ineichen) at the sample city's site and a deterministic sequence of
clear and overcast days, scaled so that every month's global horizontal irradiation equals the
configured long-term monthly mean (:data:`citymodel.analysis.climate.JENA_MONTHLY_GHI_KWH_M2`);
direct and diffuse split hour by hour by the Erbs model (``pvlib.irradiance.erbs``). The other
columns of a TRY (temperature, pressure, wind, humidity, long-wave radiation) carry plausible
filler values; the pipeline reads only month, day, hour and the two irradiances. The file says in
its header that it is synthetic.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

TRY_COLUMNS = "    RW      HW MM DD HH     t    p  WR   WG N    x  RF    B    D   A    E IL"
#: a typical (non-leap) year: the TRY's calendar
TRY_YEAR = 2015


def synthetic_year(monthly_ghi_kwh_m2: Sequence[float], latitude: float, longitude: float, seed: int,
                   altitude_m: float = 150.0, substeps: int = 6) -> pd.DataFrame:
    """Hourly values of a synthetic typical year: ``month, day, hour`` (1..24, MEZ, hour ending),
    ``ghi, beam_h, dhi`` (W/m², hourly means, integers), ``clearness`` (the day's)."""
    import pvlib

    months = np.asarray(monthly_ghi_kwh_m2, dtype=float)
    start_mez = pd.date_range(f"{TRY_YEAR}-01-01 00:00", periods=8760, freq="h")
    start_utc = (start_mez - pd.Timedelta(hours=1)).tz_localize("UTC")
    offs = (np.arange(substeps) + 0.5) / substeps
    sub = start_utc.repeat(substeps) + pd.to_timedelta(np.tile(offs * 3600.0, 8760), unit="s")
    loc = pvlib.location.Location(latitude, longitude, altitude=altitude_m)
    pos = loc.get_solarposition(sub)
    cs = loc.get_clearsky(sub, model="ineichen", solar_position=pos)
    ghi_cs = np.where(pos["apparent_elevation"].to_numpy(float) > 0, cs["ghi"].to_numpy(float), 0.0)
    ghi_cs = ghi_cs.reshape(8760, substeps).mean(axis=1)
    month = start_mez.month.to_numpy()
    day_index = (start_mez.dayofyear.to_numpy() - 1)
    daily_cs = np.bincount(day_index, weights=ghi_cs, minlength=365)
    rng = np.random.default_rng([seed, 77])
    clearness = np.empty(365)
    for m in range(1, 13):
        days = np.unique(day_index[month == m])
        target = months[m - 1] * 1000.0 / daily_cs[days].sum()          # mean clearness of the month
        p_clear = float(np.clip((target - 0.35) / 0.575, 0.05, 0.95))
        clear = rng.random(len(days)) < p_clear
        r = np.where(clear, rng.uniform(0.85, 1.0, len(days)), rng.uniform(0.15, 0.55, len(days)))
        r *= months[m - 1] * 1000.0 / (r * daily_cs[days]).sum()        # the month's sum exactly
        clearness[days] = r
    ghi = ghi_cs * clearness[day_index]
    centre = start_utc + pd.Timedelta(minutes=30)
    zen = loc.get_solarposition(centre)["zenith"].to_numpy(float)
    dhi = np.clip(np.asarray(pvlib.irradiance.erbs(ghi, zen, centre.dayofyear)["dhi"], dtype=float), 0.0, ghi)
    ghi_i = np.round(ghi)
    dhi_i = np.minimum(np.round(dhi), ghi_i)
    return pd.DataFrame({"month": month, "day": start_mez.day.to_numpy(), "hour": start_mez.hour.to_numpy() + 1,
                         "ghi": ghi_i, "beam_h": ghi_i - dhi_i, "dhi": dhi_i,
                         "clearness": clearness[day_index]})


def write_synthetic_try(path: str | Path, monthly_ghi_kwh_m2: Sequence[float], latitude: float, longitude: float,
                        seed: int, altitude_m: float = 150.0) -> Path:
    """Write :func:`synthetic_year` as a DWD TRY ``.dat`` file (2015 edition layout), labelled as
    synthetic in its header. Byte-identical for the same arguments."""
    import pyproj

    y = synthetic_year(monthly_ghi_kwh_m2, latitude, longitude, seed, altitude_m)
    rw, hw = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:3034", always_xy=True).transform(longitude, latitude)
    rw, hw = int(np.floor(rw / 1000.0) * 1000 + 500), int(np.floor(hw / 1000.0) * 1000 + 500)
    doy = pd.to_datetime(pd.DataFrame({"year": TRY_YEAR, "month": y["month"], "day": y["day"]})).dt.dayofyear.to_numpy()
    hour = y["hour"].to_numpy()
    temp = 9.0 - 9.5 * np.cos(2 * np.pi * (doy - 20) / 365.0) + 4.0 * np.sin(2 * np.pi * (hour - 9) / 24.0)
    cloud = np.clip(np.round(8.0 * (1.0 - y["clearness"].to_numpy())), 0, 8).astype(int)
    header = [
        "Koordinatensystem : Lambert konform konisch",
        f"Rechtswert        : {rw} Meter",
        f"Hochwert          : {hw} Meter",
        f"Hoehenlage        : {int(round(altitude_m))} Meter ueber NN",
        "Erstellung des Datensatzes im Januar 2026",
        "",
        "Art des TRY       : mittleres Jahr",
        "Bezugszeitraum    : 1991-2020",
        "Datenbasis        : SYNTHETISCHE BEISPIELDATEN der Jena-Beispielstadt, kein Produkt des DWD",
        "                    (synthetic sample data, not a DWD product): Klarhimmel (pvlib Ineichen),",
        "                    klare und bedeckte Tage, je Monat auf die langjaehrige Monatssumme der",
        "                    Globalstrahlung skaliert; direkt/diffus nach Erbs.",
        "",
        "Format: (i7,1x,i7,1x,i2,1x,i2,1x,i2,1x,f5.1,1x,i4,1x,i3,1x,f4.1,1x,i1,1x,f4.1,1x,i3,1x,i4,1x,i4,1x,i3,1x,i4,2x,i1)",
        "",
        "Reihenfolge der Parameter:",
        "RW Rechtswert                                                    [m]",
        "HW Hochwert                                                      [m]",
        "MM Monat                                                                   {1..12}",
        "DD Tag                                                                     {1..28,30,31}",
        "HH Stunde (MEZ)                                                            {1..24}",
        "t  Lufttemperatur in 2m Hoehe ueber Grund                        [GradC]",
        "p  Luftdruck in Standorthoehe                                    [hPa]",
        "WR Windrichtung in 10 m Hoehe ueber Grund                        [Grad]    {0..360;999}",
        "WG Windgeschwindigkeit in 10 m Hoehe ueber Grund                 [m/s]",
        "N  Bedeckungsgrad                                                [Achtel]  {0..8;9}",
        "x  Wasserdampfgehalt, Mischungsverhaeltnis                       [g/kg]",
        "RF Relative Feuchte in 2 m Hoehe ueber Grund                     [Prozent] {1..100}",
        "B  Direkte Sonnenbestrahlungsstaerke (horiz. Ebene)              [W/m^2]   abwaerts gerichtet: positiv",
        "D  Diffuse Sonnenbetrahlungsstaerke (horiz. Ebene)               [W/m^2]   abwaerts gerichtet: positiv",
        "A  Bestrahlungsstaerke d. atm. Waermestrahlung (horiz. Ebene)    [W/m^2]   abwaerts gerichtet: positiv",
        "E  Bestrahlungsstaerke d. terr. Waermestrahlung                  [W/m^2]   aufwaerts gerichtet: negativ",
        "IL Qualitaetsbit bezueglich der Auswahlkriterien                           {0;1;2;3;4}",
        "",
        TRY_COLUMNS,
        "***",
    ]
    rows = [f"{rw:7d} {hw:7d} {m:2d} {d:2d} {h:2d} {t:5.1f} {1000:4d} {180:3d} {3.0:4.1f} {n:1d} {6.0:4.1f} "
            f"{75:3d} {int(b):4d} {int(df):4d} {300:3d} {-350:4d}  {0:1d}"
            for m, d, h, t, n, b, df in zip(y["month"], y["day"], y["hour"], temp, cloud, y["beam_h"], y["dhi"])]
    from ..fileio import atomic_write_text

    return atomic_write_text(Path(path), "\n".join(header + rows) + "\n")
