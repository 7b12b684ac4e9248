"""Shadow casting, sun hours (ground, facades, DIN EN 17037) and roof irradiation.

Expected values come from trigonometry (shadow of a box), from pvlib's own transposition
(``get_total_irradiance``) and from counting pvlib SPA time steps, not from the code under test.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pvlib
import pyproj
import pytest
import shapely
from shapely.geometry import MultiPoint, Polygon

from citymodel.analysis import shadow as SH
from citymodel.analysis import solar as SO
from citymodel.analysis import sun as S
from citymodel.analysis.scene import Scene, TerrainModel
from citymodel.errors import ConfigError, GeometryError, SourceDataError
from citymodel.geometry3d import prism
from citymodel.raster import read_geotiff
from citymodel.roofs import RoofForm, RoofPart, part_solid

X0, Y0, Z0 = 682000.0, 5645000.0, 150.0
EXTENT = (X0 - 300, Y0 - 300, X0 + 300, Y0 + 300)


def _box(x, y, w, d, h, z=Z0):
    return prism(np.array([[x, y], [x + w, y], [x + w, y + d], [x, y + d]]), z, z + h)


def _single_step(ts: str) -> S.SunPath:
    times = pd.DatetimeIndex([pd.Timestamp(ts, tz="Europe/Berlin")])
    return S.sun_path(EXTENT, times=times, step_h=1.0)


def _grid_direction(true_az: float) -> np.ndarray:
    """Horizontal grid unit vector of a true azimuth at the site, via the ellipsoid (independent of
    the meridian convergence formula)."""
    lat, lon = S.site_location(EXTENT)
    lon1, lat1, _ = pyproj.Geod(ellps="GRS80").fwd(lon, lat, true_az, 100.0)
    tr = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:25832", always_xy=True)
    (xa, xb), (ya, yb) = tr.transform([lon, lon1], [lat, lat1])
    v = np.array([xb - xa, yb - ya])
    return v / np.linalg.norm(v)


# ====================================================================================== ground
def test_box_shadow_matches_trigonometry():
    h = 20.0
    box = _box(X0, Y0, 10.0, 10.0, h)
    scene = Scene.build({"box": box}, terrain=TerrainModel.flat(Z0, EXTENT, 5.0))
    sp = _single_step("2025-03-21 10:00")
    ref = pvlib.solarposition.spa_python(sp.times, sp.latitude, sp.longitude)
    el = float(ref["apparent_elevation"].iloc[0])
    az = float(ref["azimuth"].iloc[0])
    length = h / math.tan(math.radians(el))                     # shadow length on flat ground
    shift = -_grid_direction(az) * length                       # opposite the sun
    foot = Polygon([(X0, Y0), (X0 + 10, Y0), (X0 + 10, Y0 + 10), (X0, Y0 + 10)])
    shade = MultiPoint(list(foot.exterior.coords) + [(x + shift[0], y + shift[1]) for x, y in foot.exterior.coords]).convex_hull
    bounds = (X0 - 60, Y0 - 40, X0 + 40, Y0 + 40)
    grid = SH.sun_hours_ground(scene, sp, bounds, cell_m=1.0)
    X, Y = SH.ground_grid(bounds, 1.0)
    hours = grid.hours[0]
    d_shade = shapely.distance(shade.boundary, shapely.points(X.ravel(), Y.ravel())).reshape(X.shape)
    inside = shapely.contains_xy(shade, X, Y)
    under = shapely.contains_xy(foot, X, Y)
    sure = d_shade > 0.75
    assert np.isnan(hours[under & sure]).all()                    # under the roof: no value
    assert (hours[inside & ~under & sure] == 0).all()
    assert (hours[~inside & sure] == 1.0).all()
    assert (inside & ~under & sure).sum() > 0.8 * (shade.area - foot.area)
    # the far end of the shadow lies where trigonometry puts it (within a cell)
    centre = np.array([X0 + 5, Y0 + 5])
    far = np.array([[x, y] for x, y in zip(X[(hours == 0)], Y[(hours == 0)])])
    reach = (far - centre) @ (shift / length)
    assert reach.max() == pytest.approx(length + 5 * (abs(shift[0]) + abs(shift[1])) / length, abs=1.5)


def test_open_ground_gets_every_daylight_step():
    far_box = _box(X0 + 250, Y0 + 250, 5, 5, 3)
    scene = Scene.build({"far": far_box}, terrain=TerrainModel.flat(Z0, EXTENT, 5.0))
    sp = S.sun_path(EXTENT, step_min=15)
    grid = SH.sun_hours_ground(scene, sp, (X0 - 10, Y0 - 10, X0 + 10, Y0 + 10), cell_m=2.0)
    ref = pvlib.solarposition.spa_python(sp.times, sp.latitude, sp.longitude)
    daylight = (ref["apparent_elevation"] > 0).groupby(sp.times.date).sum() * 0.25
    for k, day in enumerate(grid.dates):
        np.testing.assert_allclose(grid.hours[k], daylight[day], atol=1e-6)
    assert 16.0 < grid.hours[1].mean() < 17.0 and 7.5 < grid.hours[2].mean() < 8.5   # June / December


def test_terrain_ridge_shades_the_valley_in_winter():
    # a 100 m step 150 m south of the receptors: at the winter-solstice noon (15.6°) it shades them
    rows = cols = 200                                               # 5 m cells over 1 km
    z = np.full((rows, cols), Z0)
    from affine import Affine
    y_top = Y0 + 500
    ys = y_top - (np.arange(rows) + 0.5) * 5
    z[ys < Y0 - 150, :] = Z0 + 100
    terrain = TerrainModel(z, Affine(5.0, 0, X0 - 500, 0, -5.0, y_top))
    scene = Scene.build({}, terrain=terrain, terrain_step_m=5.0)
    sp = _single_step("2025-12-21 12:15")
    pts = np.array([[X0, Y0, Z0 + 0.05], [X0, Y0 + 350, Z0 + 0.05]])   # 150 m and 500 m north of the step
    got = SH.sun_hours_points(scene, sp, pts)[:, 0]
    el = sp.elevation_deg[0]
    assert math.degrees(math.atan(100 / 150)) > el > math.degrees(math.atan(100 / 500))
    assert got.tolist() == [0.0, 1.0]


def test_crown_transmissivity_attenuates_sun_hours():
    trees = pd.DataFrame({"tree_id": ["T1"], "x": [X0], "y": [Y0 - 4], "height_m": [12.0], "crown_diameter_m": [8.0]})
    far_box = _box(X0 + 250, Y0 + 250, 5, 5, 3)
    sp = S.sun_path(EXTENT, dates=[(6, 21)], step_min=15)
    pts = np.array([[X0, Y0, Z0 + 0.05]])
    terrain = TerrainModel.flat(Z0, EXTENT, 5.0)
    res = {}
    for t in (0.0, 0.5):
        sc = Scene.build({"far": far_box}, trees=trees, terrain=terrain, crown_transmissivity=t)
        res[t] = SH.sun_hours_points(sc, sp, pts)[0, 0]
    no_crown = SH.sun_hours_points(Scene.build({"far": far_box}, trees=trees, terrain=terrain, crowns=False),
                                   sp, pts)[0, 0]
    assert res[0.0] < no_crown - 1.0                                  # the crown shades the point at noon
    assert res[0.5] == pytest.approx((res[0.0] + no_crown) / 2, abs=1e-6)


def test_geotiff_written_with_bands_and_method(tmp_path):
    scene = Scene.build({"box": _box(X0, Y0, 10, 10, 10)})
    sp = S.sun_path(EXTENT, dates=[(3, 21), (6, 21)], step_min=60)
    grid = SH.sun_hours_ground(scene, sp, (X0 - 10, Y0 - 10, X0 + 20, Y0 + 20), ground_z_m=Z0)
    path = SH.write_sun_hours_geotiff(tmp_path / "sun.tif", grid, "EPSG:25832")
    r = read_geotiff(path)
    assert r.array.shape == (2, 30, 30) and r.array.dtype == np.float32
    assert r.crs.to_epsg() == 25832 and r.transform.c == X0 - 10 and r.transform.f == Y0 + 20
    assert "pvlib" in r.tags["sun_model"] and r.tags["time_step_min"] == "60.0"
    assert "seconds" not in r.tags  # computing time would make equal inputs publish different bytes
    assert np.isnan(r.array[0, 15, 15])                                # under the roof


# ==================================================================================== facades
def test_facade_points_per_wall_and_storey():
    box = _box(X0, Y0, 10, 6, 9.0)
    pts = SH.facade_points({"b": box}, storey_height_m=3.0)
    assert len(pts) == 4 * 3
    assert sorted(set(np.round(pts.xyz[:, 2] - Z0, 6))) == [1.5, 4.5, 7.5]
    # 0.1 m in front of the walls, in the middle of each wall
    d = Polygon([(X0, Y0), (X0 + 10, Y0), (X0 + 10, Y0 + 6), (X0, Y0 + 6)]).exterior.distance(
        shapely.points(pts.xyz[:, 0], pts.xyz[:, 1]))
    np.testing.assert_allclose(d, 0.1, atol=1e-9)
    assert not shapely.contains_xy(Polygon([(X0, Y0), (X0 + 10, Y0), (X0 + 10, Y0 + 6), (X0, Y0 + 6)]),
                                   pts.xyz[:, 0], pts.xyz[:, 1]).any()
    # gable walls reach into the roof: a gable house (eave 6, ridge 10) has a third storey only there
    g = part_solid(RoofPart(X0, Y0, 12.0, 8.0, 0.0, Z0, 6.0, 10.0, RoofForm.GABLE))
    gp = SH.facade_points({"g": [g]}, storey_height_m=3.0)
    third = gp.table[gp.table.storey == 2]
    assert len(third) == 2 and len(gp) == 2 * 2 + 2 * 3


def _pvlib_front_hours(date: str, normal_grid_az: float, step_min: float = 5.0) -> float:
    times, step_h = S.day_times([date], step_min)
    lat, lon = S.site_location(EXTENT)
    ref = pvlib.solarposition.spa_python(times, lat, lon)
    gamma = pyproj.Proj("EPSG:25832").get_factors(lon, lat).meridian_convergence
    grid_az = ref["azimuth"].to_numpy() - gamma
    front = np.cos(np.radians(grid_az - normal_grid_az)) > 0
    return float(((ref["apparent_elevation"].to_numpy() > 0) & front).sum() * step_h)


def test_din17037_open_and_enclosed_buildings():
    lat, lon = S.site_location(EXTENT)
    gamma = S.grid_convergence_deg(lat, lon)
    open_box = _box(X0, Y0, 10, 10, 6)
    # the enclosed building stands north of the open one, so that its walls never shade the open one
    cy = Y0 + 150
    court = _box(X0, cy, 10, 10, 6)
    walls = {f"w{i}": _box(*xywd, 60.0) for i, xywd in enumerate([
        (X0 - 6, cy - 6, 22, 3), (X0 - 6, cy + 13, 22, 3), (X0 - 6, cy - 3, 3, 16), (X0 + 13, cy - 3, 3, 16)])}
    scene = Scene.build({"open": open_box, "court": court, **walls})
    pts = SH.facade_points({"open": open_box, "court": court}, storey_height_m=3.0)
    res = SH.din17037_sunlight(scene, pts, lat, lon, gamma, date=(3, 21), step_min=5).set_index("building_id")
    expected = _pvlib_front_hours("2025-03-21", 180.0)                   # the open south facade
    assert res.loc["open", "sun_hours_best"] == pytest.approx(expected, abs=5 / 60 + 1e-9)
    assert res.loc["open", "level"] == "high"
    assert res.loc["court", "sun_hours_best"] < 1.5 and res.loc["court", "level"] == "none"
    assert list(SH.din17037_level(np.array([0.0, 1.5, 2.9, 3.0, 4.0]))) == ["none", "minimum", "minimum", "medium", "high"]


def test_din17037_date_window_is_enforced():
    scene = Scene.build({"b": _box(X0, Y0, 5, 5, 5)})
    pts = SH.facade_points({"b": _box(X0, Y0, 5, 5, 5)})
    with pytest.raises(ConfigError, match="1 February"):
        SH.din17037_sunlight(scene, pts, 50.9, 11.6, 2.0, date=(6, 21))


# ======================================================================================= solar
@pytest.fixture(scope="module")
def sky():
    lat, lon = S.site_location(EXTENT)
    return SO.clear_sky_year(lat, lon, S.grid_convergence_deg(lat, lon), year=2025)


def _shed(tilt_deg=30.0, x=X0, y=Y0):
    w = 8.0
    return part_solid(RoofPart(x, y, 10.0, w, 0.0, Z0, 3.0, 3.0 + w * math.tan(math.radians(tilt_deg)), RoofForm.SHED))


def _pvlib_annual(tilt, true_az, model):
    lat, lon = S.site_location(EXTENT)
    times, _ = S.year_times(2025)
    loc = pvlib.location.Location(lat, lon, tz="Europe/Berlin")
    sp = loc.get_solarposition(times)
    cs = loc.get_clearsky(times, model="ineichen", solar_position=sp)
    poa = pvlib.irradiance.get_total_irradiance(tilt, true_az, sp["apparent_zenith"], sp["azimuth"], cs["dni"],
                                                cs["ghi"], cs["dhi"], dni_extra=pvlib.irradiance.get_extra_radiation(times),
                                                albedo=0.2, model=model)
    up = sp["apparent_elevation"] > 0
    return float(poa["poa_global"][up].clip(lower=0).sum() / 1000.0)


@pytest.mark.parametrize("model", ["isotropic", "haydavies"])
def test_unshaded_tilted_roof_matches_pvlib(sky, model):
    shed = _shed(30.0)
    scene = Scene.build({"s": [shed]})
    tab = SO.roof_irradiation(scene, {"s": [shed]}, sky, model=model, spacing_m=2.0)
    assert len(tab) == 1
    row = tab.iloc[0]
    assert row.tilt_deg == pytest.approx(30.0, abs=1e-6)
    assert row.azimuth_deg == pytest.approx(180.0 + sky.convergence_deg, abs=1e-6)   # true azimuth
    ref = _pvlib_annual(30.0, row.azimuth_deg, model)
    assert row.irradiation_kwh_m2a == pytest.approx(ref, rel=0.02)
    assert row.sky_view_factor == pytest.approx(1.0, abs=1e-9)
    assert row.irradiation_kwh_a == pytest.approx(row.irradiation_kwh_m2a * row.area_m2)


def test_courtyard_roof_gets_less_and_classes_follow(sky):
    shed = _shed(30.0)
    open_shed = _shed(30.0, x=X0 + 200)
    walls = {f"w{i}": _box(*xywd, 25.0) for i, xywd in enumerate([
        (X0 - 12, Y0 - 10, 24, 3), (X0 - 12, Y0 + 7, 24, 3), (X0 - 12, Y0 - 7, 3, 14), (X0 + 9, Y0 - 7, 3, 14)])}
    blds = {"court": [shed], "open": [open_shed]}
    scene = Scene.build({**blds, **walls})
    tab = SO.roof_irradiation(scene, blds, sky, spacing_m=1.0, min_area_m2=10.0).set_index("building_id")
    assert tab.loc["court", "irradiation_kwh_m2a"] < 0.7 * tab.loc["open", "irradiation_kwh_m2a"]
    assert tab.loc["court", "sky_view_factor"] < 0.7
    assert tab.loc["court", "shading_loss"] > 0.3
    # the open roof only loses the few low evening/morning hours behind the walls 200 m away
    assert 0 <= tab.loc["open", "shading_loss"] < 0.002
    ref = tab.attrs["reference_kwh_m2a"]
    assert ref >= tab.loc["open", "irradiation_kwh_m2a"] - 1e-6
    assert tab.loc["open", "suitability"] == "very suitable"          # 30° south is near the optimum
    assert tab.loc["court", "suitability"] in ("suitable", "less suitable")
    small = SO.roof_irradiation(scene, {"open": [open_shed]}, sky, spacing_m=2.0, min_area_m2=500.0)
    assert small.iloc[0].suitability == "too small"
    assert small.geometry.iloc[0].area == pytest.approx(80.0)            # 2D footprint of the roof plane


def test_tregenza_sky_covers_the_hemisphere():
    d, w = SO.tregenza_sky()
    assert len(d) == 145
    assert w.sum() == pytest.approx(2 * np.pi, rel=1e-12)
    # cosine-weighted solid angle of the hemisphere is pi; the patch sum approximates it
    assert (w * d[:, 2]).sum() == pytest.approx(np.pi, rel=0.01)


# ====================================================================================== errors
def test_bad_scene_inputs_raise_with_dataset_record_and_fix():
    with pytest.raises(GeometryError, match=r"dataset 'trees', record 'T9'.*Fix:"):
        Scene.build({}, trees=pd.DataFrame({"tree_id": ["T1", "T9"], "x": [0.0, 1.0], "y": [0.0, 1.0],
                                            "height_m": [10.0, np.nan], "crown_diameter_m": [5.0, 5.0]}))
    with pytest.raises(GeometryError, match="transmissivity"):
        Scene.build({}, crown_transmissivity=1.5)
    from affine import Affine
    with pytest.raises(SourceDataError, match=r"dataset 'dtm'.*Fix"):
        TerrainModel(np.array([[1.0, np.nan], [1.0, 1.0]]), Affine(1, 0, 0, 0, -1, 2))
    with pytest.raises(ConfigError, match="spacing"):
        SO.roof_irradiation(Scene.build({}), {}, None, spacing_m=0)


def test_one_direction_for_all_rays_equals_one_per_ray():
    """The single-direction fast path (no (n, 3) copy) answers exactly like per-ray directions,
    on the thread pool (> 20,000 rays), for buildings, terrain and (semi-transparent) crowns."""
    rng = np.random.default_rng(3)
    boxes = {f"B{i}": _box(X0 - 200 + 40 * (i % 10), Y0 - 200 + 40 * (i // 10), 15, 12, rng.uniform(5, 30))
             for i in range(100)}
    trees = pd.DataFrame({"tree_id": [f"T{i}" for i in range(50)], "x": rng.uniform(X0 - 200, X0 + 200, 50),
                          "y": rng.uniform(Y0 - 200, Y0 + 200, 50), "height_m": 12.0, "crown_diameter_m": 8.0})
    from affine import Affine
    xs = np.arange(600) + EXTENT[0] + 0.5
    heights = Z0 + 0.05 * (xs[None, :] - X0) + np.zeros((600, 1))
    terrain = TerrainModel(heights, Affine(1.0, 0, EXTENT[0], 0, -1.0, EXTENT[3]))
    n = 60_000
    x = rng.uniform(X0 - 200, X0 + 200, n)
    y = rng.uniform(Y0 - 200, Y0 + 200, n)
    o = np.column_stack([x, y, terrain.height(x, y) + 0.05])
    d = np.array([0.3, -0.5, 0.4])
    for transmissivity in (0.0, 0.4):
        scene = Scene.build(boxes, trees=trees, terrain=terrain, crown_transmissivity=transmissivity)
        one = scene.transmittance(o, d)
        many = scene.transmittance(o, np.tile(d, (n, 1)))
        np.testing.assert_array_equal(one, many)
        assert 0.05 < (one == 0).mean() < 0.95          # the scene does shade some rays, not all
        if transmissivity:
            assert np.isclose(one, 0.4).any()           # some rays pass exactly one crown
        np.testing.assert_array_equal(scene.occluded(o, d), scene.occluded(o, np.tile(d, (n, 1))))
        d1, w1 = scene.first_hit(o[:5000], d)
        d2, w2 = scene.first_hit(o[:5000], np.tile(d, (5000, 1)))
        np.testing.assert_array_equal(w1, w2)
        np.testing.assert_allclose(d1, d2)
    with pytest.raises(ValueError, match="directions"):
        scene.occluded(o[:10], np.tile(d, (3, 1)))
