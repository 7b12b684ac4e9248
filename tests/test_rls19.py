"""RLS-19 emission: hand calculations of the standard cases, corrections, bad input."""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pytest
import shapely

from citymodel.analysis import rls19
from citymodel.errors import SourceDataError


def lg(x):
    return math.log10(x)


def test_basic_emission_and_length_level_by_hand():
    # M = 1000 Kfz/h, p1 = 5 %, p2 = 5 %, no motorcycles, all at 50 km/h, reference surface.
    # Step 1, basic emission L_W0 = A + 10 lg(1 + (v/B)^C) with RLS-19 Table 3:
    lw_pkw = 88.0 + 10 * lg(1 + (50 / 20) ** 3.06)     # 2.5^3.06 = 16.508 -> 88.0 + 12.432
    lw_lkw1 = 100.3 + 10 * lg(1 + (50 / 40) ** 4.33)   # 1.25^4.33 = 2.628 -> 100.3 + 5.597
    lw_lkw2 = 105.4 + 10 * lg(1 + (50 / 50) ** 4.88)   # 1 -> 105.4 + 3.010
    assert lw_pkw == pytest.approx(100.432, abs=0.001)
    assert lw_lkw1 == pytest.approx(105.897, abs=0.001)
    assert lw_lkw2 == pytest.approx(108.410, abs=0.001)
    # Step 2, L'_W = 10 lg M + 10 lg[sum share * 10^(0.1 L_W) / v] - 30
    inner = (0.90 * 10 ** (0.1 * lw_pkw) / 50 + 0.05 * 10 ** (0.1 * lw_lkw1) / 50
             + 0.05 * 10 ** (0.1 * lw_lkw2) / 50)
    expected = 10 * lg(1000) + 10 * lg(inner) - 30
    assert expected == pytest.approx(84.87, abs=0.01)
    assert rls19.base_emission_db("pkw", 50) == pytest.approx(lw_pkw, abs=1e-9)
    assert rls19.base_emission_db("lkw1", 50) == pytest.approx(lw_lkw1, abs=1e-9)
    assert rls19.base_emission_db("lkw2", 50) == pytest.approx(lw_lkw2, abs=1e-9)
    got = rls19.length_power_level_db(1000, 5, 5, 0, 50, 50, "gussasphalt")
    assert got == pytest.approx(expected, abs=1e-6)


def test_motorcycles_and_surface_sma_by_hand():
    # M = 600, p1 = 3, p2 = 2, pKrad = 1, Pkw/Krad 50 km/h, Lkw 50 km/h, SMA (Table 4a, <= 60 km/h:
    # Pkw -2.6 dB, Lkw -1.8 dB; Krad takes the Pkw column)
    pkw = 88.0 + 10 * lg(1 + 2.5 ** 3.06) - 2.6
    lkw1 = 100.3 + 10 * lg(1 + 1.25 ** 4.33) - 1.8
    lkw2 = 105.4 + 10 * lg(2) - 1.8
    krad = 105.4 + 10 * lg(2) - 2.6
    inner = (0.94 * 10 ** (0.1 * pkw) + 0.03 * 10 ** (0.1 * lkw1) + 0.02 * 10 ** (0.1 * lkw2)
             + 0.01 * 10 ** (0.1 * krad)) / 50
    expected = 10 * lg(600) + 10 * lg(inner) - 30
    assert rls19.length_power_level_db(600, 3, 2, 1, 50, 50, "sma") == pytest.approx(expected, abs=1e-6)


def test_low_speed_paving_and_clamp():
    # 20 km/h counts as 30 km/h; other paving at <= 30 km/h: +5 dB for every group (Table 4b)
    pkw = 88.0 + 10 * lg(1 + 1.5 ** 3.06) + 5.0
    lkw1 = 100.3 + 10 * lg(1 + 0.75 ** 4.33) + 5.0
    inner = (0.98 * 10 ** (0.1 * pkw) + 0.02 * 10 ** (0.1 * lkw1)) / 30
    expected = 10 * lg(200) + 10 * lg(inner) - 30
    got = rls19.length_power_level_db(200, 2, 0, 0, 20, 20, rls19.surface_key("Pflaster"))
    assert got == pytest.approx(expected, abs=1e-6)


def test_gradient_and_junction_corrections_by_hand():
    # Pkw uphill 5 %: (g - 2)/10 * (v + 70)/100 = 0.3 * 1.2 = 0.36 dB; downhill -5 %: 0 (> -6 %)
    assert rls19.gradient_correction_db("pkw", 5.0, 50) == pytest.approx(0.36)
    assert rls19.gradient_correction_db("pkw", -5.0, 50) == pytest.approx(0.0)
    # Lkw1 downhill -5 %: (g + 4)/(-8) * (v - 20)/10 = 0.125 * 3 = 0.375 dB
    assert rls19.gradient_correction_db("lkw1", -5.0, 50) == pytest.approx(0.375)
    # flat: nothing
    assert rls19.gradient_correction_db("lkw2", 0.0, 80) == 0.0
    # junction with traffic lights at 60 m: 3 * (1 - 60/120) = 1.5 dB; beyond 120 m: 0
    assert rls19.junction_correction_db("signal", 60.0) == pytest.approx(1.5)
    assert rls19.junction_correction_db("roundabout", 0.0) == pytest.approx(2.0)
    assert rls19.junction_correction_db("signal", 200.0) == pytest.approx(0.0)


def _roads(**over):
    rec = dict(road_id="S1", name="Teststraße", dtv=10000.0, m_day=600.0, m_night=100.0, p1_day=3.0,
               p2_day=2.0, pmc_day=1.0, p1_night=2.0, p2_night=2.0, pmc_night=0.5, speed_car_kmh=50.0,
               speed_truck_kmh=50.0, surface="SMA")
    rec.update(over)
    return gpd.GeoDataFrame([rec], geometry=[shapely.LineString([(0, 0), (100, 0)])], crs="EPSG:25832")


def test_road_emissions_hourly_and_dtv_standard():
    em = rls19.road_emissions(_roads())
    assert em["volume_source"].iat[0] == "hourly"
    assert em["lw_day_db_m"].iat[0] == pytest.approx(rls19.length_power_level_db(600, 3, 2, 1, 50, 50, "sma"))
    assert (em["method"] == "RLS-19").all()
    # DTV only: M_day = 0.0575 DTV, M_night = 0.0100 DTV (municipal road)
    em2 = rls19.road_emissions(_roads(m_day=None, m_night=None))
    assert em2["m_day"].iat[0] == pytest.approx(575.0)
    assert em2["m_night"].iat[0] == pytest.approx(100.0)
    assert em2["volume_source"].iat[0] == "dtv_standard:gemeindestrasse"


def test_gradient_splits_directions():
    # +4 % one way is -4 % the other: each direction has half the volume
    em = rls19.road_emissions(_roads(), gradient_pct=4.0)
    up = rls19.length_power_level_db(300, 3, 2, 1, 50, 50, "sma", 4.0)
    down = rls19.length_power_level_db(300, 3, 2, 1, 50, 50, "sma", -4.0)
    assert em["lw_day_db_m"].iat[0] == pytest.approx(10 * lg(10 ** (0.1 * up) + 10 ** (0.1 * down)))
    flat = rls19.road_emissions(_roads())["lw_day_db_m"].iat[0]
    assert em["lw_day_db_m"].iat[0] > flat


@pytest.mark.parametrize("over, words", [
    (dict(m_day=None, m_night=None, dtv=None), "no traffic volume"),
    (dict(m_day=-5.0), "negative traffic volume"),
    (dict(p1_day=70.0, p2_day=40.0), "add up to"),
    (dict(p2_night=None), "missing share p2_night"),
    (dict(surface="Kopfsteinbelag XY"), "unknown road surface"),
    (dict(speed_car_kmh=None), "speed_car_kmh"),
    (dict(speed_car_kmh=180.0), "above the RLS-19 range"),
])
def test_bad_input_names_dataset_record_and_fix(over, words):
    with pytest.raises(SourceDataError) as err:
        rls19.road_emissions(_roads(**over), dataset="verkehrsmengen")
    msg = str(err.value)
    assert "dataset 'verkehrsmengen'" in msg and "record 'S1'" in msg and "Fix:" in msg
    assert words in msg


def test_zero_volume_is_no_emission_not_an_error():
    em = rls19.road_emissions(_roads(m_night=0.0))
    assert np.isneginf(em["lw_night_db_m"].iat[0]) and em["m_night"].iat[0] == 0.0
