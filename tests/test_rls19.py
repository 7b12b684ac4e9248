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


def test_reproduces_matsim_published_emission_values():
    # matsim-org/matsim-libs, contribs/noise/src/test/java/org/matsim/contrib/noise/NoiseRLS19IT.java,
    # testEmission: Pkw basic emission at 40 km/h = 97.70334139531323 dB(A); 1800 Pkw/h at 40 km/h
    # on the reference surface, flat: L'_W = 84.23546653306667 dB(A)/m
    assert rls19.base_emission_db("pkw", 40.0) == pytest.approx(97.70334139531323, abs=1e-9)
    assert rls19.length_power_level_db(1800, 0, 0, 0, 40, 40) == pytest.approx(84.23546653306667, abs=1e-9)
    # its intermediate "vehicle type part" 10^(0.1 L_W) / v = 1.4732421924637252e8
    assert 10 ** (0.1 * rls19.base_emission_db("pkw", 40.0)) / 40 == pytest.approx(1.4732421924637252e8, rel=1e-12)


def test_truck_speed_clamped_to_90_kmh_by_hand():
    # Lkw above 90 km/h count as 90 (MATSim RLS19VehicleType: Lkw 30-90 km/h), in every term
    lkw1_90 = 100.3 + 10 * lg(1 + (90 / 40) ** 4.33)
    pkw_100 = 88.0 + 10 * lg(1 + (100 / 20) ** 3.06)
    inner = 0.9 * 10 ** (0.1 * pkw_100) / 100 + 0.1 * 10 ** (0.1 * lkw1_90) / 90
    expected = 10 * lg(500) + 10 * lg(inner) - 30
    assert rls19.length_power_level_db(500, 10, 0, 0, 100, 100) == pytest.approx(expected, abs=1e-9)
    assert rls19.base_emission_db("lkw2", 110.0) == pytest.approx(105.4 + 10 * lg(1 + 1.8 ** 4.88))
    assert rls19.base_emission_db("pkw", 120.0) == pytest.approx(88.0 + 10 * lg(1 + 6.0 ** 3.06))


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
    # Lkw2 downhill -8 % at 60 km/h: (g + 4)/(-8) * (v - 10)/10 = 0.5 * 5 = 2.5 dB (Aconiq form;
    # MATSim writes v/10 -> 3.0 dB, see the module docstring); uphill +7 %: 0.5 * 7 = 3.5 dB
    assert rls19.gradient_correction_db("lkw2", -8.0, 60) == pytest.approx(2.5)
    assert rls19.gradient_correction_db("lkw2", 7.0, 60) == pytest.approx(3.5)
    # Pkw downhill -9 % at 50 km/h: (g + 6)/(-6) * (90 - min(v, 70))/20 = 0.5 * 2 = 1.0 dB
    assert rls19.gradient_correction_db("pkw", -9.0, 50) == pytest.approx(1.0)
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
    # the record's own shares are kept
    assert em2["p1_day"].iat[0] == 3.0 and em2["pmc_night"].iat[0] == 0.5


def test_dtv_only_takes_table2_standard_shares_by_hand():
    # Bundesstraße, DTV 20000, no hourly volumes and no shares (RLS-19 Table 2, via Aconiq
    # traffic_table2.go): day M = 0.0575 DTV = 1150, p1 = 3 %, p2 = 7 %; night M = 0.0100 DTV = 200,
    # p1 = 7 %, p2 = 13 %; no motorcycle share -> 0; 70 km/h cars, 60 km/h trucks, reference surface
    none = dict(m_day=None, m_night=None, p1_day=None, p2_day=None, pmc_day=None, p1_night=None,
                p2_night=None, pmc_night=None, surface=None, dtv=20000.0, speed_car_kmh=70.0,
                speed_truck_kmh=60.0)
    em = rls19.road_emissions(_roads(**none), road_type="bundesstrasse")
    pkw = 88.0 + 10 * lg(1 + 3.5 ** 3.06)
    lkw1 = 100.3 + 10 * lg(1 + 1.5 ** 4.33)
    lkw2 = 105.4 + 10 * lg(1 + 1.2 ** 4.88)

    def lw(m, p1, p2):
        inner = (1 - p1 - p2) * 10 ** (0.1 * pkw) / 70 + p1 * 10 ** (0.1 * lkw1) / 60 + p2 * 10 ** (0.1 * lkw2) / 60
        return 10 * lg(m) + 10 * lg(inner) - 30

    assert em["m_day"].iat[0] == pytest.approx(1150.0) and em["m_night"].iat[0] == pytest.approx(200.0)
    assert (em["p1_day"].iat[0], em["p2_day"].iat[0], em["pmc_day"].iat[0]) == (3.0, 7.0, 0.0)
    assert (em["p1_night"].iat[0], em["p2_night"].iat[0]) == (7.0, 13.0)
    # flat road: the two half-volume directions add up to the full volume
    assert em["lw_day_db_m"].iat[0] == pytest.approx(lw(1150, 0.03, 0.07), abs=1e-9)
    assert em["lw_night_db_m"].iat[0] == pytest.approx(lw(200, 0.07, 0.13), abs=1e-9)
    assert em["volume_source"].iat[0] == "dtv_standard:bundesstrasse"
    # a road_type column overrides the argument per record: motorway day 0.0555 DTV, 3 % / 11 %
    mw = rls19.road_emissions(_roads(**none, road_type="Bundesautobahn"), road_type="bundesstrasse")
    assert mw["m_day"].iat[0] == pytest.approx(0.0555 * 20000)
    assert (mw["p1_day"].iat[0], mw["p2_day"].iat[0], mw["p1_night"].iat[0], mw["p2_night"].iat[0]) == \
        (3.0, 11.0, 10.0, 25.0)
    assert mw["m_night"].iat[0] == pytest.approx(0.0140 * 20000)


def test_table2_rows_are_complete_and_plausible():
    for key, row in rls19.DTV_STANDARD_FACTORS.items():
        assert set(row) == {"m_day", "m_night", "p1_day", "p2_day", "p1_night", "p2_night"}, key
        # 16 day hours + 8 night hours carry the whole DTV (a check independent of the source)
        assert 16 * row["m_day"] + 8 * row["m_night"] == pytest.approx(1.0), key
        assert row["p1_night"] >= row["p1_day"] and row["p2_night"] >= row["p2_day"], key


def test_unknown_road_type_names_record_and_fix():
    with pytest.raises(SourceDataError, match=r"record 'S1'.*Fix:.*gemeindestrasse"):
        rls19.road_emissions(_roads(road_type="feldweg"))
    with pytest.raises(SourceDataError, match=r"road type 'xyz'.*Fix:"):
        rls19.road_emissions(_roads(), road_type="xyz")


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
