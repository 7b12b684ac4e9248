"""Noise propagation (RLS-19 / ISO 9613-2 style): divergence, screening, results, exposure."""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pytest
import shapely

from citymodel.analysis import noise as nz
from citymodel.errors import SourceDataError

FREE = nz.NoiseParameters(air_absorption_db_km=0.0, ground_effect=False, max_distance_m=1e5)


def line(x0, y0, x1, y1, lw=80.0, z=0.5):
    return nz.LineSources(np.array([x0]), np.array([y0]), np.array([z]), np.array([x1]), np.array([y1]),
                          np.array([z]), np.array([lw]), np.array([lw - 10.0]), np.array([0]))


def level(src, x, y, z, params=FREE, obs=None):
    x, y, z = (np.atleast_1d(np.asarray(v, float)) for v in (x, y, z))
    ed, en = nz.receiver_energies(x, y, z, np.zeros_like(x), src, obs, params)
    return nz.energy_to_db(ed)


def test_point_source_falls_6_db_per_doubling():
    src = line(-0.5, 0.0, 0.5, 0.0)   # a 1 m piece: one point source at (0, 0, 0.5)
    d = np.array([25.0, 50.0, 100.0, 200.0])
    lv = level(src, np.zeros(4), d, np.full(4, 0.5))
    # by hand: L = L'_W + 10 lg(1 m) - 10 lg(2 pi s^2)
    assert lv[1] == pytest.approx(80.0 - 10 * math.log10(2 * math.pi * 50.0 ** 2), abs=1e-6)
    assert np.diff(lv) == pytest.approx([-20 * math.log10(2)] * 3, abs=1e-6)


def test_long_line_source_falls_3_db_per_doubling():
    src = line(-20000.0, 0.0, 20000.0, 0.0)
    d = np.array([25.0, 50.0, 100.0, 200.0])
    lv = level(src, np.zeros(4), d, np.full(4, 0.5))
    # infinite line, hemispherical spreading: integral of dl / (2 pi (d^2 + l^2)) = 1 / (2 d)
    assert lv == pytest.approx(80.0 - 10 * np.log10(2 * d), abs=0.1)
    assert np.diff(lv) == pytest.approx([-10 * math.log10(2)] * 3, abs=0.1)


def test_level_falls_monotonically_with_ground_and_air():
    src = line(-500.0, 0.0, 500.0, 0.0)
    d = np.linspace(5.0, 800.0, 60)
    lv = level(src, np.zeros(d.size), d, np.full(d.size, 4.0), nz.NoiseParameters())
    assert np.all(np.diff(lv) < 0)


def test_ground_attenuation_formula_by_hand():
    # h_m = 2 m, s = 100 m: 4.8 - (2/100)(34 + 6) = 4.0 dB; high path: 0
    assert nz.ground_db(2.0, 100.0) == pytest.approx(4.0)
    assert nz.ground_db(50.0, 100.0) == 0.0
    # the ISO 9613-2 eq. 10 spelling 4.8 - (2 h_m / d)(17 + 300 / d) (Aconiq) is the same formula
    h, d = 1.7, 37.0
    assert nz.ground_db(h, d) == pytest.approx(4.8 - (2 * h / d) * (17 + 300 / d))


def test_divergence_is_hemispherical_spreading():
    # 10 lg(2 pi s^2) = 20 lg s + 10 lg(2 pi) = 20 lg s + 7.98 (MATSim RLS19NoiseImmission.java);
    # a source on reflecting ground: intensity W / (2 pi s^2) -> at 1 m: 7.98 dB below L_W
    assert nz.divergence_db(1.0) == pytest.approx(7.9818, abs=1e-4)
    assert nz.divergence_db(100.0) == pytest.approx(40 + 10 * math.log10(2 * math.pi))


def test_screening_reproduces_matsim_published_value():
    # matsim-org/matsim-libs, contribs/noise/src/test/java/org/matsim/contrib/noise/NoiseRLS19IT.java,
    # testShielding: RLS19ShieldingCorrection.calculateShieldingCorrection(s=10, a=15, b=15, c=15)
    # = 34.463933081239965 dB (z = a + b + c - s = 35 m; no cap in MATSim)
    uncapped = nz.NoiseParameters(max_single_db=math.inf, max_multiple_db=math.inf)
    got = nz.screening_db(np.array([35.0]), np.array([15.0]), np.array([15.0]), np.array([15.0]), uncapped)
    assert got[0] == pytest.approx(34.463933081239965, abs=1e-9)
    # with the default (ISO 9613-2) caps the double-edge value is limited to 25 dB
    assert nz.screening_db(np.array([35.0]), np.array([15.0]), np.array([15.0]), np.array([15.0]))[0] == 25.0
    # by hand, one edge: A = B = 20 m, s = 39 m -> z = 1 m, K_met = exp(-sqrt(20*20*39/2)/2000)
    k = math.exp(-math.sqrt(20 * 20 * 39 / 2) / 2000)
    one = nz.screening_db(np.array([1.0]), np.array([20.0]), np.array([20.0]), np.array([0.0]))[0]
    assert one == pytest.approx(10 * math.log10(3 + 80 * k))


def _wall(y0=10.0, y1=11.0, h=6.0, half=2000.0):
    return gpd.GeoDataFrame({"building_id": ["W"], "height_m": [h], "ground_height_m": [0.0]},
                            geometry=[shapely.box(-half, y0, half, y1)])


def test_wall_lowers_level_by_its_path_difference():
    p = nz.NoiseParameters(air_absorption_db_km=0.0, ground_effect=False, max_distance_m=1e5,
                           profile_step_m=0.1, end_clearance_m=0.05)
    src = line(-0.5, 0.0, 0.5, 0.0)          # point source at (0, 0, 0.5)
    obs = nz.building_obstacles(_wall(), (-2100, -100, 2100, 100), None, p)
    behind = (0.0, 50.0, 4.0)
    free = level(src, *behind, p)[0]
    screened = level(src, *behind, p, obs)[0]
    # by hand: the path runs over both top edges of the 1 m thick, 6 m high wall
    a = math.hypot(10.0, 6.0 - 0.5)
    e = 1.0
    b = math.hypot(50.0 - 11.0, 6.0 - 4.0)
    s = math.hypot(50.0, 4.0 - 0.5)
    z = a + e + b - s
    kmet = math.exp(-math.sqrt(a * b * s / (2 * z)) / 2000.0)
    dz = 10 * math.log10(3 + 80 * z * kmet)          # RLS-19 form (MATSim, Aconiq): no C3
    assert dz < 25.0                                  # below the double-edge cap
    assert free - screened == pytest.approx(dz, abs=0.25)
    # optional ISO 9613-2 eq. 15 C3 for the two edges (lambda = 0.25 m)
    c3 = (1 + (5 * 0.25 / e) ** 2) / (1 / 3 + (5 * 0.25 / e) ** 2)
    p_iso = nz.NoiseParameters(**{**p.as_dict(), "iso_double_edge_c3": True})
    screened_iso = level(src, *behind, p_iso, obs)[0]
    assert free - screened_iso == pytest.approx(min(10 * math.log10(3 + 80 * c3 * z * kmet), 25.0), abs=0.25)
    # a receiver on the open side is unchanged
    open_side = (0.0, -50.0, 4.0)
    assert level(src, *open_side, p, obs)[0] == pytest.approx(level(src, *open_side, p)[0], abs=1e-9)
    # a wall lower than the line of sight does nothing
    low = nz.building_obstacles(_wall(h=0.3), (-2100, -100, 2100, 100), None, p)
    assert level(src, *behind, p, low)[0] == pytest.approx(free, abs=1e-9)


def test_single_thin_edge_path_difference():
    # a thin screen (one raster cell): z = A + B - s
    p = nz.NoiseParameters(profile_step_m=0.1, end_clearance_m=0.05)
    obs = nz.Obstacles(np.full((1, 1), 5.0), 0.0, 1.0, 1.0)    # cell x 0..1, y 0..1, top 5 m
    z, a, b, e = nz.path_difference([-20.0], [0.5], [1.0], [30.0], [0.5], [2.0], obs, p)
    # first wet sample at x = 0.05 (t = 20.05), last at x = 0.95: two "edges" 0.9 m apart
    a_ = math.hypot(20.05, 4.0)
    e_ = 0.9
    b_ = math.hypot(29.05, 3.0)
    s_ = math.hypot(50.0, 1.0)
    assert z[0] == pytest.approx(a_ + e_ + b_ - s_, abs=1e-6)
    assert e[0] == pytest.approx(e_, abs=1e-6)


@pytest.mark.slow
def test_numba_kernel_equals_numpy(monkeypatch):
    rng = np.random.default_rng(3)
    top = np.full((200, 200), -np.inf)
    for _ in range(40):
        r, c = rng.integers(0, 190, 2)
        top[r:r + 8, c:c + 6] = rng.uniform(3, 20)
    obs = nz.Obstacles(top, 0.0, 200.0, 1.0)
    sx, sy, rx, ry = rng.uniform(0, 200, (4, 3000))
    sz, rz = np.full(3000, 0.5), np.full(3000, 4.0)
    ref = nz.path_difference(sx, sy, sz, rx, ry, rz, obs, nz.NoiseParameters(use_numba=False))
    monkeypatch.setattr(nz, "NUMBA_MIN_RAYS", 0)
    fast = nz.path_difference(sx, sy, sz, rx, ry, rz, obs, nz.NoiseParameters(use_numba=True))
    for r_, f_ in zip(ref, fast):
        assert f_ == pytest.approx(r_, abs=1e-9)
    assert (ref[0] > 0).mean() > 0.2


def _scene():
    roads = gpd.GeoDataFrame({"road_id": ["R1"], "lw_day_db_m": [80.0], "lw_night_db_m": [72.0]},
                             geometry=[shapely.LineString([(-300, 0), (300, 0)])], crs="EPSG:25832")
    b = gpd.GeoDataFrame({"building_id": ["B1", "B2"], "height_m": [9.0, 12.0], "storeys": [3, 4],
                          "function_code": ["1000", "2000"], "ground_height_m": [0.0, 0.0]},
                         geometry=[shapely.box(-20, 15, 0, 27), shapely.box(20, 40, 40, 60)], crs="EPSG:25832")
    return roads, b


def test_grid_raster_isophones_facades(tmp_path):
    from citymodel.raster import read_geotiff

    roads, b = _scene()
    p = nz.NoiseParameters(grid_spacing_m=10.0)
    grid = nz.noise_grid(roads, (-100, -100, 100, 100), b, None, p)
    assert grid.lrt_db.shape == (20, 20) and grid.method == "RLS-19"
    assert np.isnan(grid.lrt_db).sum() == grid.receivers["in_building"].sum() > 0
    assert grid.lrt_db[~np.isnan(grid.lrt_db)].min() > 30
    # day minus night = the emission difference (8 dB) everywhere
    ok = np.isfinite(grid.lrt_db)
    assert (grid.lrt_db - grid.lrn_db)[ok] == pytest.approx(8.0, abs=1e-9)
    # right behind B1 (north of it) quieter than at the same distance beside it
    rec = grid.receivers.set_index(["x", "y"])
    assert rec.loc[(-5.0, 35.0), "lrt_db"] < rec.loc[(-65.0, 35.0), "lrt_db"] - 2
    path = nz.write_noise_raster(tmp_path / "noise.tif", grid, "EPSG:25832")
    r = read_geotiff(path)
    assert r.array.shape == (2, 20, 20) and r.tags["method"] == "RLS-19"
    assert np.allclose(r.array[0], grid.lrt_db, equal_nan=True, atol=1e-4)
    iso = nz.isophones(grid.lrt_db, grid.transform, crs="EPSG:25832")
    assert set(iso["method"]) == {"RLS-19"} and len(iso) >= 3
    # band areas add up to the cells at or above 45 dB (100 m² each)
    assert iso.area.sum() == pytest.approx(100.0 * (grid.lrt_db >= 45).sum())

    fac = nz.facade_receivers(b, offset_m=0.5, storey_height_m=3.0)
    assert len(fac) == 4 * 3 + 4 * 4
    lv = nz.facade_levels(roads, fac, b, None, p)
    top = nz.building_max_levels(lv).set_index("building_id")
    # B1's south facade faces the road at 15 m; its north facade is screened by itself
    south = lv[(lv.building_id == "B1") & (lv.y < 15)]["lrt_db"].max()
    north = lv[(lv.building_id == "B1") & (lv.y > 27)]["lrt_db"].max()
    assert top.loc["B1", "lrt_max_db"] == pytest.approx(south) and north < south - 5
    assert top.loc["B1", "lrt_max_db"] > top.loc["B2", "lrt_max_db"]


def test_isophone_band_areas_on_a_ramp():
    # levels rising 1 dB per 1 m cell from 40 to 79 dB west to east, 10 rows
    arr = np.tile(40.0 + np.arange(40), (10, 1))
    from affine import Affine

    iso = nz.isophones(arr, Affine(1, 0, 0, 0, -1, 10), lower_db=50, upper_db=70, step_db=5)
    areas = dict(zip(iso["band_lo_db"], iso.area))
    assert areas == {50.0: 50.0, 55.0: 50.0, 60.0: 50.0, 65.0: 50.0, 70.0: 100.0}


def test_exposure_by_band_by_hand():
    _, b = _scene()
    levels = gpd.pd.DataFrame({"building_id": ["B1", "B2"], "lrt_max_db": [67.2, 58.0], "lrn_max_db": [59.9, 50.1]})
    ex = nz.exposure_by_band(levels, b).set_index(["indicator", "band_lo_db"])
    # B1: 240 m² x 3 storeys x 1.0 (residential 1000) x 0.8 / 47 m² per resident = 12.255; B2 is not residential
    res_b1 = 240 * 3 * 0.8 / 47
    assert ex.loc[("LrT", 65.0), "residents"] == pytest.approx(res_b1)
    assert ex.loc[("LrN", 55.0), "residents"] == pytest.approx(res_b1)
    assert ex["residents"].sum() == pytest.approx(2 * res_b1)
    assert set(ex["method"]) == {"RLS-19"}


def test_bad_input_errors():
    roads, b = _scene()
    bad = b.assign(height_m=[np.nan, 12.0])
    with pytest.raises(SourceDataError, match=r"dataset 'buildings', record 'B1'.*Fix:"):
        nz.noise_grid(roads, (-50, -50, 50, 50), bad)
    from citymodel.raster import Raster
    from affine import Affine

    dtm = Raster(np.zeros((10, 10)), Affine(1, 0, 0, 0, -1, 10), None, None)
    with pytest.raises(SourceDataError, match=r"dataset 'dtm'.*Fix:"):
        nz.noise_grid(roads, (-50, -50, 50, 50), None, dtm)


# ------------------------------------------------------------------------------------------------
# traffic change

def _traffic_roads():
    return gpd.GeoDataFrame(
        [dict(road_id="S1", name="A", dtv=10000.0, m_day=600.0, m_night=100.0, p1_day=3.0, p2_day=2.0,
              pmc_day=1.0, p1_night=2.0, p2_night=2.0, pmc_night=0.5, speed_car_kmh=50.0, speed_truck_kmh=50.0,
              surface="SMA"),
         dict(road_id="S2", name="B", dtv=2000.0, m_day=120.0, m_night=20.0, p1_day=1.0, p2_day=0.5,
              pmc_day=1.0, p1_night=1.0, p2_night=0.5, pmc_night=0.5, speed_car_kmh=30.0, speed_truck_kmh=30.0,
              surface="Asphaltbeton")],
        geometry=[shapely.LineString([(-300, 0), (300, 0)]), shapely.LineString([(-300, 400), (300, 400)])],
        crs="EPSG:25832")


def test_halving_traffic_lowers_levels_by_3_db():
    from citymodel.analysis import traffic

    roads = _traffic_roads()
    _, b = _scene()
    fac = nz.facade_receivers(b)
    ch = traffic.noise_change(roads, edits=[{"road_id": "S1", "factor": 0.5}, {"road_id": "S2", "factor": 0.5}],
                              bounds=(-50, -50, 50, 50), facade_receivers=fac, buildings=b,
                              params=nz.NoiseParameters(grid_spacing_m=10.0))
    ok = np.isfinite(ch.diff_lrt_db)
    # half the volume on every road: -10 lg 2 = -3.01 dB at every receiver, day and night
    assert ch.diff_lrt_db[ok] == pytest.approx(-3.0103, abs=1e-6)
    assert ch.diff_lrn_db[ok] == pytest.approx(-3.0103, abs=1e-6)
    assert ch.buildings["change_ge_1db"].all() and ch.buildings["change_ge_3db"].all()
    assert ch.changed_roads == ["S1", "S2"] and ch.method == "RLS-19"
    # 20 % less on one road: below 1 dB everywhere
    ch2 = traffic.noise_change(roads, edits=[{"road_id": "S2", "factor": 0.8}], facade_receivers=fac, buildings=b)
    assert not ch2.buildings["change_ge_1db"].any()
    assert (ch2.facades["diff_lrt_db"] < 0).all() and (ch2.facades["diff_lrt_db"] > -0.97).all()


def test_traffic_edit_errors():
    from citymodel.analysis import traffic

    with pytest.raises(SourceDataError, match=r"record 'S9'.*does not exist.*Fix:"):
        traffic.apply_edits(_traffic_roads(), [{"road_id": "S9", "factor": 0.5}])
    with pytest.raises(SourceDataError, match=r"record 'S1'.*negative.*Fix:"):
        traffic.apply_edits(_traffic_roads(), [{"road_id": "S1", "factor": -1}])
    with pytest.raises(SourceDataError, match=r"record 'S1'.*unknown field"):
        traffic.apply_edits(_traffic_roads(), [{"road_id": "S1", "lanes": 4}])


# ------------------------------------------------------------------------------------------------
# Reflections at facades (first order, mirror sources; issue #14)

def _canyon(a=10.0, b=15.0, half=100.0, h=20.0):
    """Two long blocks parallel to the x axis: A with its facade at y = a, B with its facade at y = -b."""
    return gpd.GeoDataFrame({"building_id": ["A", "B"], "height_m": [h, h], "ground_height_m": [0.0, 0.0]},
                            geometry=[shapely.box(-half, a, half, a + 12.0), shapely.box(-half, -b - 12.0, half, -b)])


def _finite_line_energy(lw, length, d):
    """A line source of length ``length`` seen from distance ``d`` on its perpendicular bisector:
    integral of 10^(0.1 L'_W) dl / (2 pi (d^2 + l^2)) = 10^(0.1 L'_W) atan(L / 2d) / (pi d)."""
    return 10 ** (0.1 * lw) * math.atan(length / (2 * d)) / (math.pi * d)


def _levels_with(buildings, src, x, y, z, params, own=None):
    x, y, z = (np.atleast_1d(np.asarray(v, float)) for v in (x, y, z))
    obs = nz.building_obstacles(buildings, (-300.0, -300.0, 300.0, 300.0), None, params)
    refl = nz.facade_reflectors(buildings, None, params)
    ed, _ = nz.receiver_energies(x, y, z, np.zeros_like(x), src, obs, params, reflectors=refl,
                                 receiver_building=own)
    return nz.energy_to_db(ed)


def test_a_receiver_between_two_parallel_facades_gets_the_mirror_source_level():
    """Road along y = 0 (80 m, L'_W = 80 dB), facades at y = +10 m (A) and y = -15 m (B), receiver at
    y = 4 m, all 0.5 m high, no ground or air attenuation. Mirror images of the road: in A at y = 20
    (16 m from the receiver), in B at y = -30 (34 m). Each reflection loses D_RV = 0.5 dB (RLS-19
    Table 8, building facades), so

        E = E_line(4 m) + 10^(-0.05) (E_line(16 m) + E_line(34 m)).
    """
    length, lw = 80.0, 80.0
    src = line(-length / 2, 0.0, length / 2, 0.0, lw=lw)
    p = nz.NoiseParameters(air_absorption_db_km=0.0, ground_effect=False, max_distance_m=1e5, reflection_distance_m=200.0)
    e = [_finite_line_energy(lw, length, d) for d in (4.0, 16.0, 34.0)]
    want = 10 * math.log10(e[0] + 10 ** (-0.05) * (e[1] + e[2]))
    got = _levels_with(_canyon(), src, 0.0, 4.0, 0.5, p)[0]
    assert got == pytest.approx(want, abs=0.1)
    direct = 10 * math.log10(e[0])
    assert got - direct == pytest.approx(want - direct, abs=0.1)
    assert got - direct > 0.5               # the canyon is louder than the open street (here by 0.9 dB)
    # absorbing facades (3 dB) reflect less; no reflections: the direct level
    p3 = nz.NoiseParameters(air_absorption_db_km=0.0, ground_effect=False, max_distance_m=1e5,
                            reflection_distance_m=200.0, reflection_loss_db=3.0)
    want3 = 10 * math.log10(e[0] + 10 ** (-0.3) * (e[1] + e[2]))
    assert _levels_with(_canyon(), src, 0.0, 4.0, 0.5, p3)[0] == pytest.approx(want3, abs=0.1)
    p0 = nz.NoiseParameters(air_absorption_db_km=0.0, ground_effect=False, max_distance_m=1e5, reflection_order=0)
    assert _levels_with(_canyon(), src, 0.0, 4.0, 0.5, p0)[0] == pytest.approx(direct, abs=0.1)


def test_a_facade_receiver_gets_no_reflection_from_its_own_facade():
    """In front of facade A (y = 9.5 m), as a facade receiver of A: the road directly and its
    mirror image in B (y = -30 m, 39.5 m away); A's own reflection is excluded (RLS-19 facade level)."""
    length, lw = 80.0, 80.0
    src = line(-length / 2, 0.0, length / 2, 0.0, lw=lw)
    p = nz.NoiseParameters(air_absorption_db_km=0.0, ground_effect=False, max_distance_m=1e5, reflection_distance_m=200.0)
    want = 10 * math.log10(_finite_line_energy(lw, length, 9.5) + 10 ** (-0.05) * _finite_line_energy(lw, length, 39.5))
    got = _levels_with(_canyon(), src, 0.0, 9.5, 0.5, p, own=np.array(["A"]))[0]
    assert got == pytest.approx(want, abs=0.1)
    # counted as a grid receiver, A's reflection (mirror at 10.5 m) is added
    assert _levels_with(_canyon(), src, 0.0, 9.5, 0.5, p)[0] > got + 2.0


def test_a_receiver_in_the_open_is_unchanged_by_reflections():
    """No facade within the reflection distance, or only facades turned away: the level is the
    direct one, to the last digit."""
    src = line(-200.0, 0.0, 200.0, 0.0)
    far = gpd.GeoDataFrame({"building_id": ["F"], "height_m": [20.0], "ground_height_m": [0.0]},
                           geometry=[shapely.box(-20.0, 150.0, 20.0, 170.0)])
    x, y, z = np.array([0.0, 30.0, -40.0]), np.array([20.0, 25.0, 30.0]), np.array([4.0, 4.0, 4.0])
    p1 = nz.NoiseParameters(reflection_distance_m=100.0)
    p0 = nz.NoiseParameters(reflection_order=0)
    assert np.array_equal(_levels_with(far, src, x, y, z, p1), _levels_with(far, src, x, y, z, p0))
    # behind a block (its facade towards the receiver faces away from the road): the reflecting
    # facade faces the road, the receiver is screened from it -- no reflection reaches the receiver
    # through the block, the level equals the level without reflections
    block = gpd.GeoDataFrame({"building_id": ["K"], "height_m": [15.0], "ground_height_m": [0.0]},
                             geometry=[shapely.box(-30.0, 20.0, 30.0, 30.0)])
    xb, yb = np.array([0.0, 10.0]), np.array([40.0, 45.0])
    assert np.array_equal(_levels_with(block, src, xb, yb, np.full(2, 4.0), p1),
                          _levels_with(block, src, xb, yb, np.full(2, 4.0), p0))


def test_a_reflected_path_is_screened_like_a_direct_one():
    """A 6 m wall between the road (y = 0) and facade A (y = 20 m) screens the road's reflection at A
    for a receiver on the other side of the road (y = -6 m): both legs of the reflected path cross
    the wall, the direct path does not. The reflected energy drops by the wall's screening (several
    dB); the direct energy is the same."""
    import pandas as pd

    src = line(-40.0, 0.0, 40.0, 0.0)
    p = nz.NoiseParameters(air_absorption_db_km=0.0, ground_effect=False, max_distance_m=1e5, reflection_distance_m=200.0)
    a = gpd.GeoDataFrame({"building_id": ["A"], "height_m": [20.0], "ground_height_m": [0.0]},
                         geometry=[shapely.box(-100.0, 20.0, 100.0, 32.0)])
    wall = gpd.GeoDataFrame({"building_id": ["W"], "height_m": [6.0], "ground_height_m": [0.0]},
                            geometry=[shapely.box(-100.0, 8.0, 100.0, 9.0)])
    both = gpd.GeoDataFrame(pd.concat([a, wall], ignore_index=True))
    bounds = (-300.0, -300.0, 300.0, 300.0)
    refl = nz.facade_reflectors(a, None, p)
    r = (np.array([0.0]), np.array([-6.0]), np.array([0.5]), np.zeros(1))
    open_e, _ = nz.reflected_energies(*r, src, refl, nz.building_obstacles(a, bounds, None, p), p)
    screened_e, _ = nz.reflected_energies(*r, src, refl, nz.building_obstacles(both, bounds, None, p), p)
    assert open_e[0] > 0
    drop_db = 10 * math.log10(open_e[0] / screened_e[0])
    assert drop_db > 5.0, drop_db
    # the direct paths do not cross the wall
    d_open = nz.receiver_energies(*r, src, nz.building_obstacles(a, bounds, None, p), p)[0]
    d_wall = nz.receiver_energies(*r, src, nz.building_obstacles(both, bounds, None, p), p)[0]
    assert d_open == pytest.approx(d_wall)
