"""Road traffic noise emission after RLS-19 (Richtlinien für den Lärmschutz an Straßen, 2019).

RLS-19 is the legal calculation method of the 16. BImSchV (since 1 March 2021). This module gives
the length-related sound power level ``L'_W`` (dB(A) per metre) of a road for the day (06-22 h)
and the night (22-06 h); :mod:`citymodel.analysis.noise` propagates it to receivers.

Formulas (numbers of RLS-19 section 3.3)::

    L_W0,FzG(v)   = A_FzG + 10 lg(1 + (v / B_FzG) ** C_FzG)                       basic emission
    L_W,FzG(v)    = L_W0,FzG(v) + D_SD,SDT,FzG(v) + D_LN,FzG(g, v) + D_K,KT(x)    with corrections
    L'_W          = 10 lg M + 10 lg[ (100 - p1 - p2 - pKrad)/100 * 10^(0.1 L_W,Pkw)  / v_Pkw
                                     + p1/100    * 10^(0.1 L_W,Lkw1) / v_Lkw1
                                     + p2/100    * 10^(0.1 L_W,Lkw2) / v_Lkw2
                                     + pKrad/100 * 10^(0.1 L_W,Krad) / v_Krad ] - 30

The ``- 30`` turns vehicles per hour over km/h into vehicles per metre (``M / (1000 v)``); with
``pKrad = 0`` the sum is RLS-19's three-group equation. Motorcycles drive at the car speed.

Sources and verification
------------------------
The RLS-19 text itself (FGSV, VkBl. 2019 S. 698) could not be retrieved here. Every constant was
checked against two independent open-source implementations, read (not copied) on their public
repositories:

* **MATSim** ``matsim-org/matsim-libs``, ``contribs/noise/src/main/java/org/matsim/contrib/noise/``:
  ``RLS19VehicleType.java`` (A, B, C and the valid speed range per group),
  ``RLS19NoiseEmission.java`` (L'_W, gradient and junction corrections), ``RoadSurfaceContext.java``
  (paving rows of Table 4b), test ``src/test/.../NoiseRLS19IT.java`` (published expected numbers,
  reproduced in ``tests/test_rls19.py``).
* **Aconiq** ``CWBudde/Aconiq``, ``backend/internal/standards/rls19/road/``: ``tables.go``
  (Tables 3, 4a/4b, 5, eq. 7a-c), ``traffic_table2.go`` (Table 2).

Per constant:

* :data:`BASE_COEFFICIENTS` (Table 3, eq. 6): Pkw 88.0/20/3.06, Lkw1 100.3/40/4.33, Lkw2
  105.4/50/4.88 -- MATSim and Aconiq agree. Krad = Lkw2 coefficients: Aconiq only (MATSim has no
  Krad group); consistent with the statement that RLS-19 puts motorcycles into the Lkw2 class
  (ivas-ingenieure.de/verkehrsdaten-gemaess-rls-19). Krad at the Pkw speed, with the Pkw surface
  column and the Pkw gradient equation: Aconiq only.
* Speed range: 30 km/h minimum for every group (lower speeds are raised to 30) -- both agree.
  Upper limits :data:`SPEED_RANGE_KMH` Pkw/Krad 130, Lkw1/Lkw2 90 km/h: MATSim only (it clamps
  truck speeds to 90); Aconiq uses 130 for every group. Here truck speeds above 90 km/h are
  clamped to 90 (as MATSim), speeds above 130 km/h are an error.
* L'_W (eq. 4/5) including ``- 30``: MATSim's form, identical to the one above.
* :data:`SURFACE_CORRECTIONS` (Tables 4a/4b): every row from Aconiq; the paving rows (+1/+2/+3 and
  +5/+6/+7 dB) and the reference 0 dB also from MATSim. The asphalt rows (SMA, AC, PA, Waschbeton,
  lärmarmer Gussasphalt, LOA, DSH-V, SMA LA 8) have one source only. Paving between the table
  speeds (30/40/>=50): 41-49 km/h take the >=50 column here and in Aconiq; MATSim takes the 40 km/h
  column (1 dB less) -- they disagree; the higher (conservative) value is kept.
* :func:`gradient_correction_db` (eq. 7a-c): Pkw and Lkw1 equations -- both agree. Lkw2 downhill:
  Aconiq ``(g + 4)/(-8) * (v - 10)/10``, MATSim ``(g + 4)/(-8) * v/10`` -- they DISAGREE;
  ``(v - 10)/10`` is kept (it follows the pattern of the other branches: Lkw2 = Lkw1 + 10 km/h in
  both the uphill and the downhill term). Clipping to +-12 %: Aconiq only.
* :func:`junction_correction_db` (eq. 8, Table 5): K = 3 dB traffic lights, 2 dB roundabout, 0
  other, ``K * max(1 - x/120, 0)`` -- both agree.
* :data:`REFLECTION_LOSS_DB` (Table 8, reflection loss D_RV per reflection): 0.5 dB for building
  facades and reflecting walls, 3 dB for absorbing and 5 dB for highly absorbing noise barriers;
  a reflector counts only where ``h_R >= 1 m`` and ``h_R >= 0.3 sqrt(a_R)`` (a_R the shorter of the
  horizontal distances from the reflection point to the source and to the receiver) --
  Aconiq only (``reflections.go``; MATSim computes no reflections).
* :data:`DTV_STANDARD_FACTORS` (Table 2): Aconiq only (M = factor x DTV and the standard shares
  p1/p2 per road class, day and night); the municipal factors 0.0575/0.0100 were the values the
  previous version recalled. Table 2 has no motorcycle share; a DTV-only record without ``pmc``
  gets 0 %. Only where the volume comes from DTV are missing shares filled from Table 2; a record
  with hourly volumes must bring its shares.

Every table is a plain module constant so that a deployment can check or replace it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ..errors import SourceDataError, dataset_error

METHOD = "RLS-19"

#: RLS-19 Table 8: reflection loss D_RV (dB) per reflection by the kind of reflecting surface
REFLECTION_LOSS_DB: dict[str, float] = {"facade": 0.5, "absorbing": 3.0, "highly_absorbing": 5.0}
#: RLS-19 Table 8: a reflector counts where its height h_R >= this and >= factor * sqrt(a_R)
REFLECTOR_MIN_HEIGHT_M = 1.0
REFLECTOR_HEIGHT_FACTOR = 0.3


def reflector_counts(height_m, a_r_m) -> np.ndarray:
    """RLS-19 Table 8 condition: a surface of height ``h_R`` reflects a path whose reflection point
    lies ``a_R`` (m, the shorter horizontal distance to source or receiver) away if
    ``h_R >= 1 m`` and ``h_R >= 0.3 sqrt(a_R)``."""
    h = np.asarray(height_m, dtype=float)
    a = np.maximum(np.asarray(a_r_m, dtype=float), 0.0)
    return (h >= REFLECTOR_MIN_HEIGHT_M) & (h >= REFLECTOR_HEIGHT_FACTOR * np.sqrt(a))


#: vehicle groups of RLS-19
GROUPS: tuple[str, ...] = ("pkw", "lkw1", "lkw2", "krad")

#: RLS-19 Table 3: (A dB, B km/h, C) of L_W0,FzG(v) = A + 10 lg(1 + (v/B)^C)
BASE_COEFFICIENTS: dict[str, tuple[float, float, float]] = {
    "pkw": (88.0, 20.0, 3.06),
    "lkw1": (100.3, 40.0, 4.33),
    "lkw2": (105.4, 50.0, 4.88),
    "krad": (105.4, 50.0, 4.88),
}

#: lowest speed of the emission model (km/h); lower speeds are raised to it
SPEED_MIN_KMH = 30.0
#: highest speed of the emission model (km/h); higher speeds are an error
SPEED_MAX_KMH = 130.0
#: valid speed range (km/h) of the emission model per group (see "Sources and verification"):
#: speeds are clamped into it; MATSim RLS19VehicleType.java gives Lkw 30-90, Pkw 30-130
SPEED_RANGE_KMH: dict[str, tuple[float, float]] = {
    "pkw": (30.0, 130.0), "krad": (30.0, 130.0), "lkw1": (30.0, 90.0), "lkw2": (30.0, 90.0),
}

_NA = float("nan")
#: RLS-19 Tables 4a/4b. Asphalt-like surfaces: ("banded", Pkw<=60, Pkw>60, Lkw<=60, Lkw>60) in dB
#: (NaN: surface not defined for that speed range -> error); paving: ("paving", v<=30, v<=40, v>40).
SURFACE_CORRECTIONS: dict[str, tuple] = {
    "gussasphalt": ("banded", 0.0, 0.0, 0.0, 0.0),             # reference: non-grooved mastic asphalt
    "sma": ("banded", -2.6, -1.8, -1.8, -2.0),                 # SMA 5/8 (<=60), SMA 8/11 (>60)
    "asphaltbeton": ("banded", -2.7, -1.9, -1.9, -2.1),        # asphalt concrete <= AC 11
    "opa11": ("banded", _NA, -4.5, _NA, -4.4),                 # porous asphalt PA 11
    "opa8": ("banded", _NA, -5.5, _NA, -5.4),                  # porous asphalt PA 8
    "waschbeton": ("banded", -1.4, -1.4, -2.3, -2.3),          # exposed aggregate concrete
    "laermarmer_gussasphalt": ("banded", -2.0, -2.0, -1.5, -1.5),
    "loa": ("banded", -3.2, _NA, -1.0, _NA),                   # LOA 5 D
    "dsh_v": ("banded", -3.9, -2.8, -0.9, -2.3),               # DSH-V 5
    "sma_la8": ("banded", _NA, -2.8, _NA, -4.6),               # SMA LA 8 (Aconiq only)
    "pflaster_eben": ("paving", 1.0, 2.0, 3.0),                # paving with an even surface
    "pflaster_sonstig": ("paving", 5.0, 6.0, 7.0),             # other paving
}

#: source spellings -> keys of :data:`SURFACE_CORRECTIONS` (lower-cased, stripped).
#: Plain "Pflaster" (kind unknown) is taken as "other paving", the higher (conservative) row.
SURFACE_ALIASES: dict[str, str] = {
    "gussasphalt": "gussasphalt", "ma": "gussasphalt", "referenz": "gussasphalt", "reference": "gussasphalt",
    "sma": "sma", "splittmastixasphalt": "sma",
    "asphaltbeton": "asphaltbeton", "ac": "asphaltbeton", "ab": "asphaltbeton", "asphalt": "asphaltbeton",
    "opa": "opa11", "opa11": "opa11", "pa11": "opa11", "opa8": "opa8", "pa8": "opa8",
    "waschbeton": "waschbeton", "beton": "waschbeton",
    "lärmarmer gussasphalt": "laermarmer_gussasphalt", "laermarmer_gussasphalt": "laermarmer_gussasphalt",
    "loa": "loa", "dsh-v": "dsh_v", "dsh_v": "dsh_v", "sma la 8": "sma_la8", "sma_la8": "sma_la8",
    "pflaster eben": "pflaster_eben", "pflaster_eben": "pflaster_eben",
    "pflaster": "pflaster_sonstig", "pflaster_sonstig": "pflaster_sonstig", "kopfsteinpflaster": "pflaster_sonstig",
}

#: RLS-19 Table 5: K_KT (dB) per junction type
JUNCTION_K_DB: dict[str, float] = {"signal": 3.0, "roundabout": 2.0, "other": 0.0}
#: distance (m) over which the junction correction decays to zero
JUNCTION_RANGE_M = 120.0

#: RLS-19 Table 2 (see module docstring): hourly volume M = factor * DTV and the standard shares
#: p1 (Lkw1) and p2 (Lkw2) in % per road class, day (06-22 h) and night (22-06 h)
DTV_STANDARD_FACTORS: dict[str, dict[str, float]] = {
    # Bundesautobahnen und Kraftfahrstraßen
    "bundesautobahn": {"m_day": 0.0555, "m_night": 0.0140, "p1_day": 3.0, "p2_day": 11.0,
                       "p1_night": 10.0, "p2_night": 25.0},
    # Bundesstraßen
    "bundesstrasse": {"m_day": 0.0575, "m_night": 0.0100, "p1_day": 3.0, "p2_day": 7.0,
                      "p1_night": 7.0, "p2_night": 13.0},
    # Landes-, Kreis- und Gemeindeverbindungsstraßen
    "landesstrasse": {"m_day": 0.0575, "m_night": 0.0100, "p1_day": 3.0, "p2_day": 5.0,
                      "p1_night": 5.0, "p2_night": 6.0},
    # Gemeindestraßen
    "gemeindestrasse": {"m_day": 0.0575, "m_night": 0.0100, "p1_day": 3.0, "p2_day": 4.0,
                        "p1_night": 3.0, "p2_night": 4.0},
}
#: other spellings of the Table 2 road classes
DTV_STANDARD_FACTORS["kreisstrasse"] = DTV_STANDARD_FACTORS["landesstrasse"]
DTV_STANDARD_FACTORS["gemeindeverbindungsstrasse"] = DTV_STANDARD_FACTORS["landesstrasse"]
DTV_STANDARD_FACTORS["kraftfahrstrasse"] = DTV_STANDARD_FACTORS["bundesautobahn"]


def base_emission_db(group: str, speed_kmh) -> np.ndarray:
    """Basic sound power level L_W0,FzG(v) of one vehicle of ``group`` (dB(A)), RLS-19 eq. 6.

    Speeds are clamped into :data:`SPEED_RANGE_KMH` of the group (below 30 km/h counts as 30).
    """
    a, b, c = BASE_COEFFICIENTS[group]
    v = clamp_speed(group, speed_kmh)
    return a + 10.0 * np.log10(1.0 + (v / b) ** c)


def clamp_speed(group: str, speed_kmh) -> np.ndarray:
    """Speed (km/h) clamped into the group's valid range :data:`SPEED_RANGE_KMH`."""
    lo, hi = SPEED_RANGE_KMH[group]
    return np.clip(np.asarray(speed_kmh, dtype=np.float64), lo, hi)


def surface_key(surface: Any, dataset: str = "roads", record: str | None = None) -> str:
    """Key of :data:`SURFACE_CORRECTIONS` for a source surface name; missing -> reference surface.

    Raises
    ------
    SourceDataError
        The surface name is not known.
    """
    if surface is None or (isinstance(surface, float) and math.isnan(surface)) or surface is pd.NA:
        return "gussasphalt"
    key = SURFACE_ALIASES.get(str(surface).strip().lower())
    if key is None:
        raise dataset_error(SourceDataError, dataset, f"unknown road surface '{surface}'",
                            f"use one of {sorted(set(SURFACE_ALIASES))} or add the spelling to "
                            "citymodel.analysis.rls19.SURFACE_ALIASES", record=record)
    return key


def surface_correction_db(key: str, group: str, speed_kmh, dataset: str = "roads",
                          record: str | None = None) -> np.ndarray:
    """Road surface correction D_SD,SDT,FzG(v) (dB), RLS-19 Tables 4a/4b.

    Pkw and Krad use the Pkw columns, Lkw1 and Lkw2 the Lkw columns.
    """
    row = SURFACE_CORRECTIONS[key]
    v = np.maximum(np.asarray(speed_kmh, dtype=np.float64), SPEED_MIN_KMH)
    if row[0] == "paving":
        return np.where(v <= 30.0, row[1], np.where(v <= 40.0, row[2], row[3]))
    car = group in ("pkw", "krad")
    low, high = (row[1], row[2]) if car else (row[3], row[4])
    out = np.where(v <= 60.0, low, high)
    if np.isnan(out).any():
        raise dataset_error(SourceDataError, dataset, f"surface '{key}' has no RLS-19 correction for "
                            f"{group} at {float(np.atleast_1d(v)[np.isnan(np.atleast_1d(out))][0]):g} km/h",
                            "check the surface type and the speeds of the road", record=record)
    return out


def gradient_correction_db(group: str, gradient_pct, speed_kmh) -> np.ndarray:
    """Gradient correction D_LN,FzG(g, v) (dB), RLS-19 eq. 7a-c; g in % (positive uphill).

    Gradients beyond +-12 % are clipped to +-12 %. Krad follows the Pkw equation.
    """
    g = np.clip(np.asarray(gradient_pct, dtype=np.float64), -12.0, 12.0)
    v = np.maximum(np.asarray(speed_kmh, dtype=np.float64), SPEED_MIN_KMH)
    if group in ("pkw", "krad"):
        down = (g + 6.0) / -6.0 * (90.0 - np.minimum(v, 70.0)) / 20.0
        up = (g - 2.0) / 10.0 * (v + 70.0) / 100.0
        return np.where(g < -6.0, down, np.where(g > 2.0, up, 0.0))
    if group == "lkw1":
        down = (g + 4.0) / -8.0 * (v - 20.0) / 10.0
        up = (g - 2.0) / 10.0 * v / 10.0
    else:
        down = (g + 4.0) / -8.0 * (v - 10.0) / 10.0
        up = (g - 2.0) / 10.0 * (v + 10.0) / 10.0
    return np.where(g < -4.0, down, np.where(g > 2.0, up, 0.0))


def junction_correction_db(kind, distance_m) -> np.ndarray:
    """Junction correction D_K,KT(x) = K_KT * max(1 - x/120, 0) (dB), RLS-19 eq. 8 / Table 5."""
    kinds = np.atleast_1d(np.asarray(kind, dtype=object))
    k = np.array([JUNCTION_K_DB.get(str(x), np.nan) for x in kinds])
    if np.isnan(k).any():
        bad = kinds[np.isnan(k)][0]
        raise dataset_error(SourceDataError, "junctions", f"unknown junction kind '{bad}'",
                            f"use one of {sorted(JUNCTION_K_DB)}")
    x = np.asarray(distance_m, dtype=np.float64)
    k = k[0] if k.size == 1 else k.reshape(x.shape)
    return k * np.maximum(1.0 - x / JUNCTION_RANGE_M, 0.0)


def length_power_level_db(m_veh_h, p1_pct, p2_pct, pmc_pct, speed_car_kmh, speed_truck_kmh,
                          surface: str = "gussasphalt", gradient_pct=0.0) -> np.ndarray:
    """Length-related sound power level L'_W (dB(A)/m) of one traffic flow, RLS-19 eq. 4/5.

    Parameters
    ----------
    m_veh_h : array-like
        Hourly volume M (vehicles/h) of the flow (> 0).
    p1_pct, p2_pct, pmc_pct : array-like
        Shares (%) of Lkw1 (trucks and buses without trailer, > 3.5 t), Lkw2 (with trailer,
        articulated) and Krad (motorcycles).
    speed_car_kmh, speed_truck_kmh : array-like
        Speeds of Pkw/Krad and of Lkw1/Lkw2; clamped into :data:`SPEED_RANGE_KMH` (Lkw above
        90 km/h count as 90, everything below 30 km/h as 30) for every term, the ``/ v`` included.
    surface : str
        Key of :data:`SURFACE_CORRECTIONS`.
    gradient_pct : array-like
        Gradient in driving direction (%).

    Returns
    -------
    numpy.ndarray
        L'_W in dB(A) re 1 pW per metre.
    """
    m = np.asarray(m_veh_h, dtype=np.float64)
    shares = {"lkw1": np.asarray(p1_pct, float) / 100.0, "lkw2": np.asarray(p2_pct, float) / 100.0,
              "krad": np.asarray(pmc_pct, float) / 100.0}
    shares["pkw"] = 1.0 - shares["lkw1"] - shares["lkw2"] - shares["krad"]
    speeds = {"pkw": speed_car_kmh, "krad": speed_car_kmh, "lkw1": speed_truck_kmh, "lkw2": speed_truck_kmh}
    total = 0.0
    for g in GROUPS:
        v = clamp_speed(g, speeds[g])
        lw = base_emission_db(g, v) + surface_correction_db(surface, g, v) + gradient_correction_db(g, gradient_pct, v)
        total = total + shares[g] * 10.0 ** (0.1 * lw) / v
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(m) + 10.0 * np.log10(total) - 30.0


def road_emissions(roads: pd.DataFrame, dataset: str = "roads", road_type: str = "gemeindestrasse",
                   gradient_pct=None) -> pd.DataFrame:
    """L'_W day and night per road (RLS-19), from hourly volumes or, where missing, from DTV.

    Parameters
    ----------
    roads : pandas.DataFrame or geopandas.GeoDataFrame
        The staged ``roads`` role (``road_id, dtv, m_day, m_night, p1_day, p2_day, pmc_day,
        p1_night, p2_night, pmc_night, speed_car_kmh, speed_truck_kmh, surface``).
    dataset : str
        Dataset name used in error messages.
    road_type : str
        Row of :data:`DTV_STANDARD_FACTORS` (RLS-19 Table 2 road class) used for records with DTV
        only; a ``road_type`` column in ``roads`` overrides it per record where it is filled.
        For such records the hourly volume is ``factor * DTV`` and missing shares p1/p2 are the
        Table 2 standard shares (missing ``pmc``: 0 %, Table 2 has no motorcycle share).
    gradient_pct : array-like, optional
        Gradient per road (%, along the digitised direction). Each direction carries half the
        volume, uphill one way and downhill the other; default 0 (flat).

    Returns
    -------
    pandas.DataFrame
        Per road: ``road_id, lw_day_db_m, lw_night_db_m, m_day, m_night, volume_source`` ("hourly"
        or "dtv_standard:<road_type>"), ``p1_day, p2_day, pmc_day, p1_night, p2_night, pmc_night``
        (as used, Table 2 shares filled in), ``surface_key``, ``gradient_pct``, ``method``; the input's
        other columns (e.g. geometry) are kept.

    Raises
    ------
    SourceDataError
        A road without volumes, with negative volumes or shares, shares above 100 %, missing shares
        or speeds, speeds above 130 km/h or an unknown surface; the message names the road.
    """
    n = len(roads)
    out = roads.copy()
    ids = roads["road_id"].astype(str).to_numpy() if "road_id" in roads else np.arange(n).astype(str)

    def col(name):
        if name not in roads:
            return np.full(n, np.nan)
        return pd.to_numeric(roads[name], errors="coerce").astype("float64").to_numpy()

    dtv = col("dtv")
    grad = np.zeros(n) if gradient_pct is None else np.broadcast_to(np.asarray(gradient_pct, float), (n,))
    types = np.full(n, road_type, dtype=object)
    if "road_type" in roads:
        given = roads["road_type"].to_numpy(dtype=object)
        filled = pd.notna(given)
        types[filled] = [str(t).strip().lower() for t in given[filled]]
    for i, t in enumerate(types):
        if t not in DTV_STANDARD_FACTORS:
            raise dataset_error(SourceDataError, dataset, f"no RLS-19 Table 2 (DTV standard) row for road type '{t}'",
                                f"use one of {sorted(DTV_STANDARD_FACTORS)}",
                                record=ids[i] if "road_type" in roads else None)
    table = {k: np.array([DTV_STANDARD_FACTORS[t][k] for t in types], dtype=np.float64)
             for k in ("m_day", "m_night", "p1_day", "p2_day", "p1_night", "p2_night")}
    result = {}
    sources = np.full(n, "hourly", dtype=object)
    for period in ("day", "night"):
        m = col(f"m_{period}")
        fill = np.isnan(m) & ~np.isnan(dtv)
        m = np.where(fill, dtv * table[f"m_{period}"], m)
        sources[fill] = np.array([f"dtv_standard:{t}" for t in types[fill]], dtype=object)
        p1, p2, pmc = col(f"p1_{period}"), col(f"p2_{period}"), col(f"pmc_{period}")
        # Table 2 standard shares only where the volume itself is the Table 2 estimate
        p1 = np.where(fill & np.isnan(p1), table[f"p1_{period}"], p1)
        p2 = np.where(fill & np.isnan(p2), table[f"p2_{period}"], p2)
        pmc = np.where(fill & np.isnan(pmc), 0.0, pmc)
        vc, vt = col("speed_car_kmh"), col("speed_truck_kmh")
        for i in range(n):  # checks per road (few hundred records): clear messages per record
            rec = ids[i]
            if np.isnan(m[i]):
                raise dataset_error(SourceDataError, dataset, f"no traffic volume for the {period} "
                                    f"(m_{period} and dtv are both missing)",
                                    f"give m_{period} (vehicles/h) or dtv (vehicles/24 h)", record=rec)
            if m[i] < 0 or (not np.isnan(dtv[i]) and dtv[i] < 0):
                raise dataset_error(SourceDataError, dataset, f"negative traffic volume (m_{period} = "
                                    f"{m[i]:g}, dtv = {dtv[i]:g})", "correct the volumes (>= 0)", record=rec)
            for name, v in (("p1", p1[i]), ("p2", p2[i]), ("pmc", pmc[i])):
                if np.isnan(v):
                    raise dataset_error(SourceDataError, dataset, f"missing share {name}_{period}",
                                        f"give {name}_{period} in % (0 if none); the RLS-19 Table 2 "
                                        "standard shares are used only for records with DTV and no "
                                        f"m_{period}", record=rec)
                if v < 0:
                    raise dataset_error(SourceDataError, dataset, f"negative share {name}_{period} = {v:g} %",
                                        "correct the share (0..100 %)", record=rec)
            if p1[i] + p2[i] + pmc[i] > 100.0:
                raise dataset_error(SourceDataError, dataset, f"shares p1+p2+pmc for the {period} add up to "
                                    f"{p1[i] + p2[i] + pmc[i]:g} % (> 100 %)", "correct the shares", record=rec)
            for name, v in (("speed_car_kmh", vc[i]), ("speed_truck_kmh", vt[i])):
                if np.isnan(v) or v <= 0:
                    raise dataset_error(SourceDataError, dataset, f"missing or non-positive {name} ({v})",
                                        "give the speed in km/h (> 0)", record=rec)
                if v > SPEED_MAX_KMH:
                    raise dataset_error(SourceDataError, dataset, f"{name} = {v:g} km/h is above the RLS-19 "
                                        f"range (<= {SPEED_MAX_KMH:g})", "correct the speed", record=rec)
        keys = [surface_key(s, dataset, ids[i]) for i, s in
                enumerate(roads["surface"] if "surface" in roads else [None] * n)]
        lw = np.full(n, -np.inf)
        for i in range(n):
            if m[i] == 0:
                continue  # no traffic: no emission (stated in the output as -inf / m = 0)
            half = [length_power_level_db(m[i] / 2.0, p1[i], p2[i], pmc[i], vc[i], vt[i], keys[i], sgn * grad[i])
                    for sgn in (1.0, -1.0)]
            lw[i] = 10.0 * np.log10(10.0 ** (0.1 * half[0]) + 10.0 ** (0.1 * half[1]))
        result[period] = (m, lw)
        out[f"p1_{period}"], out[f"p2_{period}"], out[f"pmc_{period}"] = p1, p2, pmc
        out["surface_key"] = keys
    out["m_day"], out["lw_day_db_m"] = result["day"]
    out["m_night"], out["lw_night_db_m"] = result["night"]
    out["volume_source"] = sources
    out["gradient_pct"] = grad
    out["method"] = METHOD
    return out
