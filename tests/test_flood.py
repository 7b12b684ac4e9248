"""Flood exposure: depth = water level - terrain, buildings affected, summary, bad input."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from affine import Affine

from citymodel.analysis import flood
from citymodel.errors import SourceDataError
from citymodel.raster import Raster, read_geotiff

# a slope rising 1 cm per metre eastwards: terrain = 100 + 0.01 x over 0 <= x < 200, 0 <= y < 50
COLS, ROWS = 200, 50
X = np.arange(COLS) + 0.5
DTM = Raster(np.tile(100.0 + 0.01 * X, (ROWS, 1)), Affine(1, 0, 0, 0, -1, ROWS), None, -9999.0)


def zones(level=101.0, scenario="HQ100", zid="Z1", geom=None):
    return gpd.GeoDataFrame({"zone_id": [zid], "scenario": [scenario], "water_level_m": [level]},
                            geometry=[geom or shapely.box(0, 0, 150, 50)])


def test_depth_on_a_slope_is_level_minus_terrain():
    d = flood.flood_depth(zones(), DTM, "HQ100")
    expected = 101.0 - (100.0 + 0.01 * X)          # 1 m at x = 0 down to 0 at x = 100
    wet = expected > 0
    assert np.allclose(d.depth_m[:, wet], np.tile(expected[wet], (ROWS, 1)))
    assert np.isnan(d.depth_m[:, ~wet]).all()      # dry ground inside the zone and beyond it
    assert d.flooded_area_m2 == pytest.approx(100 * ROWS)
    assert d.method == "water level - DTM"


def test_zone_limits_the_water_and_higher_level_wins():
    z = gpd.GeoDataFrame({"zone_id": ["A", "B"], "scenario": ["HQ100", "HQ100"], "water_level_m": [101.0, 100.5]},
                         geometry=[shapely.box(0, 0, 20, 50), shapely.box(10, 0, 40, 50)])
    d = flood.flood_depth(z, DTM, "HQ100")
    assert d.depth_m[0, 15] == pytest.approx(101.0 - 100.155)   # overlap: 101.0 counts
    assert d.depth_m[0, 30] == pytest.approx(100.5 - 100.305)
    assert np.isnan(d.depth_m[0, 45])                            # outside both zones


def test_buildings_affected_and_ground_floor():
    b = gpd.GeoDataFrame({"building_id": ["wet", "shallow", "dry"]},
                         geometry=[shapely.box(10, 10, 20, 20), shapely.box(85, 10, 95, 20),
                                   shapely.box(120, 10, 130, 20)])
    depths, per, summary = flood.flood_exposure(zones(), DTM, b, floor_offset_m=0.3)
    r = per.set_index("building_id")
    # wet: lowest terrain sampled at x = 10 (cell 10.5): depth 1 - 0.105 = 0.895 m
    assert r.loc["wet", "affected"] and r.loc["wet", "max_depth_m"] == pytest.approx(0.895)
    assert r.loc["wet", "ground_floor_flooded"]
    # shallow: 0.145 m at most (x = 85 -> cell 85.5) -> affected, ground floor dry
    assert r.loc["shallow", "affected"] and r.loc["shallow", "max_depth_m"] == pytest.approx(0.145)
    assert not r.loc["shallow", "ground_floor_flooded"]
    # above the water level: not affected
    assert not r.loc["dry", "affected"] and r.loc["dry", "max_depth_m"] == 0.0
    s = summary.set_index("scenario").loc["HQ100"]
    assert s["buildings_affected"] == 2 and s["ground_floors_flooded"] == 1
    assert s["max_depth_m"] == pytest.approx(1.0 - 0.005)


def test_depth_raster_written(tmp_path):
    d = flood.flood_depth(zones(), DTM, "HQ100")
    r = read_geotiff(flood.write_depth_raster(tmp_path / "hq100.tif", d, "EPSG:25832"))
    assert r.tags["scenario"] == "HQ100" and r.tags["method"] == "water level - DTM"
    assert np.allclose(r.masked, d.depth_m, equal_nan=True, atol=1e-6)


def test_zone_without_water_level_is_an_error():
    with pytest.raises(SourceDataError, match=r"dataset 'flood_zones', record 'Z9'.*water level.*Fix:"):
        flood.flood_depth(zones(level=None, zid="Z9"), DTM, "HQ100")
    with pytest.raises(SourceDataError, match=r"record 'Z1'.*without scenario"):
        flood.flood_depth(zones(scenario=None), DTM, "HQ100")
    with pytest.raises(SourceDataError, match=r"no flood zone of scenario 'HQextrem'.*Fix:"):
        flood.flood_depth(zones(), DTM, "HQextrem")
