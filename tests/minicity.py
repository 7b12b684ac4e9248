"""A tiny city on flat ground whose analysis results can be reasoned about, for the variant tests.

Everything the analysis layers read is written directly in the pipeline's layout (no LiDAR staging):
the reconstruction of one tile (CityJSONSeq + attribute table, solids by the parametric roof models),
a flat DTM at 150 m, one straight road, one HQ100 flood zone, two sight lines. The city's analysis
assets then run on it through Dagster, exactly as in the pipeline, so a variant is compared with
results made by the same code.

Plan (EPSG:25832, tile 32_681_5644, extent 681400..681700 × 5644400..5644700)::

    y 5644650   O1 ------------------------------------------ T1     sight line 1
    y 5644620   O2 ------------------------------------------ T2     sight line 2
    y 5644560       R1   R2   R3   R4   R5                           a row of gable houses (eave 6, ridge 10)
    y 5644515                        [ S ]                            an existing 24 m tower south of R4
    y 5644478                                     [H]                 a house beside the road's end
    y 5644470   ======== road (x 681420..681520) ====                 one road
    flood zone HQ100: x < 681470 (water level 151.2 m on 150 m terrain)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

TILE = "32_681_5644"
EXTENT = (681400.0, 5644400.0, 681700.0, 5644700.0)
GROUND = 150.0
WATER = 151.2
ROW_Y = 5644560.0
ROW_X = [681480.0 + 30.0 * k for k in range(5)]
TOWER = (681570.0, 5644515.0)          # centre of the existing tower, south of R4 (x 681570)
BESIDE = (681620.0, 5644479.0)        # the house beside the road's end
ROAD = ((681420.0, 5644470.0), (681520.0, 5644470.0))
SIGHT = {"O1": (681420.0, 5644650.0), "T1": (681690.0, 5644650.0),
         "O2": (681420.0, 5644620.0), "T2": (681690.0, 5644620.0)}


def _house(bid, cx, cy, length, width, eave, ridge, form, angle=0.0, storeys=2):
    from citymodel.cityjson import CityBuilding
    from citymodel.roofs import RoofPart, part_footprint, part_solid, roof_form_from_code
    from citymodel.validate3d import validate_solid

    part = RoofPart(cx, cy, length, width, angle, GROUND, eave, ridge, roof_form_from_code(form), part_id=bid)
    solid = part_solid(part)
    assert validate_solid(solid).valid
    fp = part_footprint(part)
    top = GROUND + ridge
    row = {"building_id": bid, "function_code": "31001_1000", "storeys": storeys, "roofType": int(form),
           "eave_height_m": eave, "ridge_height_m": ridge, "ground_height_m": GROUND, "measured_height_m": ridge,
           "roof_rmse_m": 0.02, "point_density_m2": 10.0, "point_count": 500, "method": "lod2_fitted",
           "roof_model": "parametric", "fallback_reason": "", "validity_codes": "", "n_parts": 1, "issues": "",
           "tile_id": TILE, "algorithm_version": "test", "geometry": fp, "top_z_m": top}
    return CityBuilding(bid, {k: v for k, v in row.items() if k != "geometry"}, {"2.2": solid}), row


def buildings():
    """The mini city's buildings: (CityBuilding records, attribute rows)."""
    out = [_house(f"R{k + 1}", x, ROW_Y, 10.0, 8.0, 6.0, 10.0, 3100) for k, x in enumerate(ROW_X)]
    out.append(_house("S", TOWER[0], TOWER[1], 10.0, 10.0, 24.0, 24.0, 1000, storeys=8))
    out.append(_house("H", BESIDE[0], BESIDE[1], 10.0, 8.0, 6.0, 6.0, 1000))
    return [r for r, _ in out], [row for _, row in out]


def write(settings) -> None:
    """Write the mini city's staged and reconstructed data into ``settings.output_dir``."""
    import geopandas as gpd
    from shapely.geometry import LineString, Point, box

    from citymodel.cityjson import write_cityjsonseq
    from citymodel.raster import write_geotiff
    from citymodel.release import write_geoparquet
    from citymodel.store import building_tile_paths, lidar_paths, staged_table_path

    crs = settings.processing_crs
    recs, rows = buildings()
    seq, table = building_tile_paths(settings, TILE)
    write_cityjsonseq(seq, recs, horizontal_epsg=25832, vertical_epsg=7837)
    write_geoparquet(gpd.GeoDataFrame(rows, geometry="geometry", crs=crs), table)
    t = settings.tile(TILE).bounds
    halo = 25.0
    n = int((t[2] - t[0] + 2 * halo))
    write_geotiff(lidar_paths(settings, TILE)[1], np.full((n, n), GROUND, dtype=np.float32),
                  bounds=(t[0] - halo, t[1] - halo, t[2] + halo, t[3] + halo), crs=crs, nodata=-9999.0)
    roads = gpd.GeoDataFrame({"road_id": ["R-A"], "name": ["Teststraße"], "dtv": [8000.0], "m_day": [460.0],
                              "m_night": [80.0], "p1_day": [3.0], "p2_day": [2.0], "pmc_day": [1.0], "p1_night": [3.0],
                              "p2_night": [2.0], "pmc_night": [1.0], "speed_car_kmh": [50.0],
                              "speed_truck_kmh": [50.0], "surface": ["Asphaltbeton"]},
                             geometry=[LineString(ROAD)], crs=crs)
    write_geoparquet(roads, staged_table_path(settings, "roads"))
    zones = gpd.GeoDataFrame({"zone_id": ["Z1"], "scenario": ["HQ100"], "water_level_m": [WATER]},
                             geometry=[box(EXTENT[0] - 50, EXTENT[1] - 50, 681470.0, EXTENT[3] + 50)], crs=crs)
    write_geoparquet(zones, staged_table_path(settings, "flood_zones"))
    vp = gpd.GeoDataFrame({"viewpoint_id": list(SIGHT), "name": list(SIGHT),
                           "kind": ["observer", "target", "observer", "target"], "eye_height_m": [1.6] * 4,
                           "target_id": ["T1", None, "T2", None]},
                          geometry=[Point(xy) for xy in SIGHT.values()], crs=crs)
    write_geoparquet(vp, staged_table_path(settings, "viewpoints"))


def config(tmp: Path, conftest_write_config) -> Path:
    """A deployment file for the mini city (the sample city's, with the extent and output moved)."""
    return conftest_write_config(
        tmp, str(tmp / "unused-catalog.jsonld"), tmp / "out", extent=list(EXTENT),
        analysis={"scene_margin_m": 100, "sun": {"days": ["03-21", "06-21", "12-21"], "time_step_min": 15,
                                                 "cell_m": 2.0},
                  "solar": {"spacing_m": 2.0, "climate": "monthly_means"}, "noise": {"grid_spacing_m": 10, "max_distance_m": 1000},
                  "sightlines": {"viewshed_radius_m": 100, "viewshed_cell_m": 2.0}})


def analyse(cfg: Path, instance) -> None:
    """Run the city's analysis assets on the mini city (tile partition, then sight lines)."""
    import dagster as dg

    from assets.analysis import flood, noise, sightlines, solar, sun_hours
    from pipelines.partitions import TILES
    from resources.settings import SettingsResource

    instance.add_dynamic_partitions(TILES.name, [TILE])
    res = {"settings": SettingsResource(config_path=str(cfg))}
    r = dg.materialize([sun_hours, solar, noise, flood], partition_key=TILE, resources=res, instance=instance)
    assert r.success
    r = dg.materialize([sightlines], resources=res, instance=instance)
    assert r.success
