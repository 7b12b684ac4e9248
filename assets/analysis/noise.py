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
from .inputs import CityStore, analysis_bounds, tile_building_ids
from .keys import GROUP, NOISE_CODE_VERSION, NEIGHBOUR_TAG, NOISE_KEY, STAGED_KEYS


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


@dg.asset(key=NOISE_KEY, tags=NEIGHBOUR_TAG, deps=[LOD2_TILE_KEY, DTM_KEY, STAGED_KEYS["roads"]], partitions_def=TILES, pool="noise",
          group_name=GROUP, code_version=NOISE_CODE_VERSION, check_specs=_noise_checks(),
          kinds={"geotiff", "gpkg", "geoparquet"},
          description="Road traffic noise after RLS-19: LrT/LrN grid (GeoTIFF), isophones (GeoPackage), "
                      "facade levels per wall and storey, highest facade level per building, residents "
                      "per level band; buildings screen as 2.5D blocks from the reconstruction and reflect "
                      "at their facades (first order, RLS-19 reflection loss).")
def noise(context: AssetExecutionContext, settings: SettingsResource) -> dg.MaterializeResult:
    from citymodel.analysis import layers as L
    from citymodel.analysis import parameters as P
    from citymodel.analysis.noise import write_noise_raster
    from citymodel.analysis.rls19 import METHOD
    from citymodel.release import write_geopackage

    s = settings.load()
    n = s.analysis.noise
    tile_id = context.partition_key
    files = tile_files(s, "noise", tile_id)
    names = ["facade_levels_finite", "levels_plausible"]
    bounds = analysis_bounds(s, tile_id)
    if bounds is None:
        return skipped_result(NOISE_KEY, "tile outside the extent", names)
    with timer() as t:
        store = CityStore(s)
        area = L.noise_area(store, bounds, max_distance_m=n.max_distance_m, terrain_cell_m=s.analysis.terrain_cell_m)
        res = L.noise(area, P.noise_parameters(s), tile_building_ids(store, tile_id))
        if res is None:
            return skipped_result(NOISE_KEY, "no staged roads within range of the tile", names)
        grid, fac, per_b, expo = res.grid, res.facades, res.per_building, res.exposure
        write_noise_raster(files["raster"], grid, s.processing_crs)
        write_geopackage(res.isophones, files["isophones"], layer="isophones")
        write_table(points_frame(fac, s.processing_crs), files["facades"])
        write_geoparquet_atomic(per_b, files["buildings"])
        write_csv_atomic(expo, files["exposure"])
    in_range = _in_range(fac, res.roads, n.max_distance_m)
    bad = fac[in_range & ~(np.isfinite(fac["lrt_db"].to_numpy(float)) & np.isfinite(fac["lrn_db"].to_numpy(float)))]
    vals = np.concatenate([grid.lrt_db.ravel(), grid.lrn_db.ravel(), fac["lrt_db"].to_numpy(float),
                           fac["lrn_db"].to_numpy(float)])
    vals = vals[np.isfinite(vals)]
    implausible = int(((vals < 0) | (vals > 100)).sum())
    meta = {"roads": len(res.roads), "screening_buildings": len(res.screens),
            "buildings_without_height": len(res.without_height), "receivers_grid": int(np.isfinite(grid.lrt_db).sum()),
            "receivers_facade": len(fac), "buildings_assessed": len(per_b), "seconds": t["seconds"],
            "lrt_max_db": round(float(np.nanmax(grid.lrt_db)), 1) if np.isfinite(grid.lrt_db).any() else None,
            "lrt_mean_db": round(float(np.nanmean(grid.lrt_db[np.isfinite(grid.lrt_db)])), 1)
            if np.isfinite(grid.lrt_db).any() else None,
            "exposure": dg.MetadataValue.md(expo[["indicator", "band_lo_db", "band_hi_db", "residents",
                                                  "buildings"]].round(1).to_markdown(index=False)),
            "method": METHOD,
            "reflections": (f"first order at facades within {n.reflection_distance_m:g} m, reflection loss "
                            f"{grid.parameters['reflection_loss_db']:g} dB ({n.facade_type})")
            if n.reflection_order else "none",
            "parameters": json_metadata({**grid.parameters, "building_height": n.building_height,
                                      "road_type_for_dtv": n.road_type,
                                      "terrain_filled_share": area.terrain.tags.get("filled_share")}),
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
