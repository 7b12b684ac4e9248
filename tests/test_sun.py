"""Sun positions: pvlib SPA paths, solstice elevations at Jena, local days with summer time, and the
rotation from true north to grid north (meridian convergence)."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pvlib
import pyproj
import pytest

from citymodel.analysis import sun as S
from citymodel.errors import ConfigError

JENA_LAT, JENA_LON = 50.93, 11.59
#: the sample city's extent (config/sample_city.yaml)
EXTENT = (681700.0, 5644700.0, 682300.0, 5645300.0)


def _extent_around(lat: float, lon: float, crs: str = "EPSG:25832") -> tuple[float, float, float, float]:
    x, y = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(lon, lat)
    return (x - 500, y - 500, x + 500, y + 500)


def test_site_location_is_the_extent_centre_in_wgs84():
    lat, lon = S.site_location(EXTENT)
    # E 682000 / N 5645000 in UTM 32N is in Jena's centre
    assert lat == pytest.approx(50.93, abs=0.01)
    assert lon == pytest.approx(11.58, abs=0.01)


def test_positions_match_pvlib_spa_python_within_001_deg():
    sp = S.sun_path(EXTENT, dates=[(3, 21), (6, 21), (12, 21)], step_min=15)
    ref = pvlib.solarposition.spa_python(sp.times, sp.latitude, sp.longitude)
    up = ref["apparent_elevation"].to_numpy() > -5
    assert np.max(np.abs(sp.elevation_deg - ref["apparent_elevation"].to_numpy())[up]) < 0.01
    daz = (sp.azimuth_deg - ref["azimuth"].to_numpy() + 180.0) % 360.0 - 180.0
    assert np.max(np.abs(daz)[up]) < 0.01


@pytest.mark.parametrize("month, day, expected", [(6, 21, 90 - 50.93 + 23.44), (12, 21, 90 - 50.93 - 23.44)])
def test_solstice_noon_elevation_at_jena(month, day, expected):
    sp = S.sun_path(_extent_around(JENA_LAT, JENA_LON), dates=[(month, day)], step_min=1)
    assert sp.latitude == pytest.approx(JENA_LAT, abs=1e-6)
    assert sp.elevation_deg.max() == pytest.approx(expected, abs=0.2)
    # solar noon in Jena: 12:00 local mean solar time is 11.59° / 15 = 46 min ahead of UTC+1
    noon = sp.times[int(np.argmax(sp.elevation_deg))]
    offset_h = 2 if month == 6 else 1
    assert abs((noon.hour + noon.minute / 60) - (12 - JENA_LON / 15 + offset_h)) < 0.25


def test_local_days_are_tz_aware_and_handle_summer_time():
    times, step_h = S.day_times(["2025-03-30", "2025-06-21", "2025-10-26"], step_min=15)
    assert times.tz is not None and step_h == 0.25
    days = pd.Series(1, index=times).groupby(times.date).sum()
    # 30 March 2025: clocks go forward (23 h); 26 October: back (25 h)
    assert days[dt.date(2025, 3, 30)] == 23 * 4
    assert days[dt.date(2025, 6, 21)] == 24 * 4
    assert days[dt.date(2025, 10, 26)] == 25 * 4
    summer = times[(times.date == dt.date(2025, 6, 21))]
    assert summer[0].utcoffset() == dt.timedelta(hours=2)
    assert summer[0].strftime("%H:%M:%S") == "00:07:30"          # step midpoints


def test_default_days_are_equinox_and_solstices():
    sp = S.sun_path(EXTENT)
    assert [(d.month, d.day) for d in sp.dates] == [(3, 21), (6, 21), (12, 21)]
    assert len(sp) == 3 * 96
    assert sp.metadata()["time_step_min"] == 15


def test_grid_convergence_rotates_true_north_into_the_grid():
    lat, lon = S.site_location(EXTENT)
    gamma = S.grid_convergence_deg(lat, lon, "EPSG:25832")
    # first-order formula (lon - lon0) sin(lat) for UTM 32 (central meridian 9° E)
    assert gamma == pytest.approx((lon - 9.0) * math.sin(math.radians(lat)), abs=0.02)
    # independent path: a point due true east/north on the ellipsoid, projected into the grid
    geod = pyproj.Geod(ellps="GRS80")
    tr = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:25832", always_xy=True)
    x0, y0 = tr.transform(lon, lat)
    for true_az in (0.0, 90.0, 135.0, 250.0):
        lon1, lat1, _ = geod.fwd(lon, lat, true_az, 200.0)
        x1, y1 = tr.transform(lon1, lat1)
        v = S.sun_vectors(np.array([true_az]), np.array([0.0]), gamma)[0]
        expected = np.array([x1 - x0, y1 - y0]) / math.hypot(x1 - x0, y1 - y0)
        assert np.degrees(np.arccos(np.clip(v[:2] @ expected, -1, 1))) < 0.01


def test_sun_vectors_are_unit_and_point_up_by_the_elevation():
    v = S.sun_vectors(np.array([180.0, 90.0]), np.array([30.0, 0.0]), 0.0)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0)
    np.testing.assert_allclose(v[0], [0.0, -math.cos(math.radians(30)), 0.5], atol=1e-12)
    np.testing.assert_allclose(v[1], [1.0, 0.0, 0.0], atol=1e-12)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ConfigError, match="tz-aware"):
        S.solar_positions(pd.date_range("2025-06-21", periods=3, freq="1h"), 50.0, 11.0)
    with pytest.raises(ConfigError, match="step"):
        S.day_times([(6, 21)], step_min=0)
    with pytest.raises(ConfigError, match="extent"):
        S.site_location((10.0, 0.0, 0.0, 10.0))
