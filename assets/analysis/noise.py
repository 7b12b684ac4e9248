"""Asset ``analysis/noise``: road traffic noise after RLS-19 per tile (grid, isophones, facades, exposure)."""

import dagster as dg
import numpy as np
import pandas as pd
from dagster import AssetExecutionContext

from pipelines.partitions import TILES
from resources.settings import SettingsResource

from ..buildings import LOD2_TILE_KEY
from ..common import (json_metadata, points_frame, raster_plot, skipped_result, timer, write_csv_atomic,
                      write_geoparquet_atomic, write_table)
from ..staging import DTM_KEY
from .files import tile_files
from .inputs import NoiseInputs, analysis_bounds
from .keys import ANALYSIS_CODE_VERSION, GROUP, NEIGHBOUR_TAG, NOISE_KEY, STAGED_KEYS


def _noise_checks():
    return [dg.AssetCheckSpec("facade_levels_finite", asset=NOISE_KEY, blocking=False,
                              description="every facade receiver with a road in range has a finite level"),
            dg.AssetCheckSpec("levels_plausible", asset=NOISE_KEY, blocking=False,
                              description="every grid and facade level (LrT, LrN) lies within 0..100 dB(A)")]


def _in_range(receivers: pd.DataFrame, roads, max_distance_m: float) -> np.ndarray:
    import shapely

    if roads is None or not len(roads) or not len(receivers):
        return np.zeros(len(receivers), dtype=bool)
    pts = shapely.points(receivers["x"].to_numpy(float), receivers["y"].to_numpy(float))
    tree = shapely.STRtree(np.asarray(roads.geometry.values, dtype=object))
    hit = tree.query(pts, predicate="dwithin", distance=max_distance_m)
    out = np.zeros(len(receivers), dtype=bool)
    out[np.unique(hit[0])] = True
    return out


@dg.asset(key=NOISE_KEY, tags=NEIGHBOUR_TAG, deps=[LOD2_TILE_KEY, DTM_KEY, STAGED_KEYS["roads"]], partitions_def=TILES,
          group_name=GROUP, code_version=ANALYSIS_CODE_VERSION, check_specs=_noise_checks(),
          kinds={"geotiff", "gpkg", "geoparquet"},
          description="Road traffic noise after RLS-19: LrT/LrN grid (GeoTIFF), isophones (GeoPackage), "
                      "facade levels per wall and storey, highest facade level per building, residents "
                      "per level band; buildings screen as 2.5D blocks from the reconstruction.")
def noise(context: AssetExecutionContext, settings: SettingsResource) -> dg.MaterializeResult:
    import geopandas as gpd

    from citymodel.analysis.noise import (building_max_levels, exposure_by_band, facade_levels, isophones,
                                          noise_grid, write_noise_raster)
    from citymodel.analysis.rls19 import METHOD
    from citymodel.release import write_geopackage

    s = settings.load()
    n = s.analysis.noise
    tile_id = context.partition_key
    files = tile_files(s, "noise", tile_id)
    names = ["facade_levels_finite", "levels_plausible"]
    if analysis_bounds(s, tile_id) is None:
        return skipped_result(NOISE_KEY, "tile outside the extent", names)
    with timer() as t:
        inp = NoiseInputs(s, tile_id)
        if inp.emissions is None:
            return skipped_result(NOISE_KEY, "no staged roads within range of the tile", names)
        grid = noise_grid(inp.emissions, inp.bounds, inp.buildings, inp.dtm, inp.params)
        write_noise_raster(files["raster"], grid, s.processing_crs)
        iso = pd.concat([isophones(grid.lrt_db, grid.transform, n.isophone_lower_db, step_db=n.isophone_step_db,
                                   crs=s.processing_crs, indicator="LrT"),
                         isophones(grid.lrn_db, grid.transform, n.isophone_lower_db - 10.0,
                                   step_db=n.isophone_step_db, crs=s.processing_crs, indicator="LrN")],
                        ignore_index=True)
        iso = gpd.GeoDataFrame(iso, geometry="geometry", crs=s.processing_crs)
        write_geopackage(iso, files["isophones"], layer="isophones")
        rec = inp.facade_receivers(s)
        fac = facade_levels(inp.emissions, rec, inp.buildings, inp.dtm, inp.params) if len(rec) else \
            rec.assign(lrt_db=[], lrn_db=[], method=[])
        fac = fac.assign(lrt_db=fac["lrt_db"].astype(float), lrn_db=fac["lrn_db"].astype(float))
        write_table(points_frame(fac, s.processing_crs), files["facades"])
        per_b = building_max_levels(fac) if len(fac) else pd.DataFrame(
            columns=["building_id", "lrt_max_db", "lrn_max_db", "method"])
        write_geoparquet_atomic(per_b, files["buildings"])
        expo = exposure_by_band(per_b, inp.own)
        write_csv_atomic(expo, files["exposure"])
    in_range = _in_range(fac, inp.roads, n.max_distance_m)
    bad = fac[in_range & ~(np.isfinite(fac["lrt_db"].to_numpy(float)) & np.isfinite(fac["lrn_db"].to_numpy(float)))]
    vals = np.concatenate([grid.lrt_db.ravel(), grid.lrn_db.ravel(), fac["lrt_db"].to_numpy(float),
                           fac["lrn_db"].to_numpy(float)])
    vals = vals[np.isfinite(vals)]
    implausible = int(((vals < 0) | (vals > 100)).sum())
    meta = {"roads": len(inp.roads), "screening_buildings": len(inp.buildings),
            "buildings_without_height": len(inp.without_height), "receivers_grid": int(np.isfinite(grid.lrt_db).sum()),
            "receivers_facade": len(fac), "buildings_assessed": len(per_b), "seconds": t["seconds"],
            "lrt_max_db": round(float(np.nanmax(grid.lrt_db)), 1) if np.isfinite(grid.lrt_db).any() else None,
            "lrt_mean_db": round(float(np.nanmean(grid.lrt_db[np.isfinite(grid.lrt_db)])), 1)
            if np.isfinite(grid.lrt_db).any() else None,
            "exposure": dg.MetadataValue.md(expo[["indicator", "band_lo_db", "band_hi_db", "residents",
                                                  "buildings"]].round(1).to_markdown(index=False)),
            "method": METHOD,
            "parameters": json_metadata({**grid.parameters, "building_height": n.building_height,
                                      "road_type_for_dtv": n.road_type,
                                      "terrain_filled_share": inp.dtm.tags.get("filled_share")}),
            "raster": dg.MetadataValue.path(str(files["raster"])),
            "thumbnail": raster_plot(grid.lrt_db, grid.bounds, f"tile {tile_id}: LrT (RLS-19)", "dB(A)",
                                      "magma", 40, 80)}
    return dg.MaterializeResult(metadata=meta, check_results=[
        dg.AssetCheckResult(asset_key=NOISE_KEY, check_name="facade_levels_finite", passed=len(bad) == 0,
                            severity=dg.AssetCheckSeverity.WARN,
                            metadata={"receivers_without_level": len(bad),
                                      "buildings": dg.MetadataValue.json(sorted(set(bad["building_id"].astype(str)))[:50])}),
        dg.AssetCheckResult(asset_key=NOISE_KEY, check_name="levels_plausible", passed=implausible == 0,
                            severity=dg.AssetCheckSeverity.WARN, metadata={"outside_0_100_db": implausible})])
