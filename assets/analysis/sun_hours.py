"""Asset ``analysis/sun_hours``: hours of direct sun on the ground and per facade wall and storey."""

import dagster as dg
import numpy as np
from dagster import AssetExecutionContext

from pipelines.partitions import TILES
from resources.settings import SettingsResource

from ..buildings import LOD2_TILE_KEY
from ..common import json_metadata, points_frame, raster_plot, skipped_result, timer, write_table
from ..staging import DTM_KEY
from .days import date_label
from .files import tile_files
from .inputs import CityStore, analysis_bounds, counts, day_sun_path, tile_building_ids
from .keys import ANALYSIS_CODE_VERSION, GROUP, NEIGHBOUR_TAG, STAGED_KEYS, SUN_HOURS_KEY


def _sun_checks():
    return [dg.AssetCheckSpec("hours_within_day_length", asset=SUN_HOURS_KEY, blocking=True,
                              description="every ground and facade value lies in [0, hours of sun above the "
                                          "horizon that day]")]


@dg.asset(key=SUN_HOURS_KEY, tags=NEIGHBOUR_TAG, deps=[LOD2_TILE_KEY, DTM_KEY, STAGED_KEYS["trees"]], partitions_def=TILES, pool="raycast",
          group_name=GROUP, code_version=ANALYSIS_CODE_VERSION, check_specs=_sun_checks(),
          kinds={"geotiff", "geoparquet"},
          description="Hours of direct sun on the ground (GeoTIFF, one band per configured day) and per "
                      "facade wall and storey, with the DIN EN 17037 sunlight level per building; shading "
                      "by buildings, tree crowns and terrain (embree ray casting, pvlib NREL SPA).")
def sun_hours(context: AssetExecutionContext, settings: SettingsResource) -> dg.MaterializeResult:
    from citymodel.analysis import layers as L
    from citymodel.analysis import parameters as P
    from citymodel.analysis.shadow import write_sun_hours_geotiff

    s = settings.load()
    a = s.analysis
    tile_id = context.partition_key
    files = tile_files(s, "sun_hours", tile_id)
    bounds = analysis_bounds(s, tile_id)
    if bounds is None:
        return skipped_result(SUN_HOURS_KEY, "tile outside the extent", ["hours_within_day_length"])
    with timer() as t:
        store = CityStore(s)
        own = tile_building_ids(store, tile_id)
        area = L.scene_area(store, bounds, margin_m=a.scene_margin_m, terrain_cell_m=a.terrain_cell_m, include=own)
        sun = day_sun_path(s)
        scene = L.build_scene(area, P.scene_parameters(s))
        try:
            grid = L.sun_hours(area, sun, a.sun.cell_m, scene=scene)
            fs = L.facade_sun(area, sun, own, P.facade_sun_parameters(s), scene=scene)
        finally:
            scene.close()
        write_sun_hours_geotiff(files["raster"], grid, s.processing_crs)
        walls, din = fs.walls, fs.din
        labels = [date_label(dd) for dd in sun.dates]  # band order = sorted dates
        write_table(points_frame(walls, s.processing_crs), files["facades"])
        write_table(points_frame(din, s.processing_crs), files["din17037"])
    # checks and metadata
    day_len = {lab: float(sun.above_horizon[sun.day_mask(dd)].sum() * sun.step_h)
               for dd, lab in zip(sun.dates, labels)}
    worst = []
    for k, lab in enumerate(labels):
        g = grid.hours[k][np.isfinite(grid.hours[k])]
        f = walls[f"sun_h_max_{lab}"].to_numpy(float) if len(walls) else np.zeros(0)
        vals = np.concatenate([g, f])
        if len(vals):
            worst.append({"day": lab, "min_h": float(vals.min()), "max_h": float(vals.max()),
                          "day_length_h": day_len[lab]})
    ok = all(w["min_h"] >= -1e-6 and w["max_h"] <= w["day_length_h"] + 1e-6 for w in worst)
    june = next((k for k, dd in enumerate(sun.dates) if dd.month == 6), 0)
    means = {lab: round(float(np.nanmean(grid.hours[k])), 3) if np.isfinite(grid.hours[k]).any()
             else None for k, lab in enumerate(labels)}
    levels = din["level"].value_counts().to_dict() if len(din) else {}
    method = {k: v for k, v in grid.metadata.items() if k not in ("seconds",)}
    meta = {
        **counts(area, own), "seconds": t["seconds"], "cells": int(grid.hours[0].size),
        "cells_under_roof": int(grid.metadata.get("cells_under_roof", 0)), "facade_points": fs.points,
        "walls_storeys": len(walls), "mean_hours": json_metadata(means), "day_length_h": json_metadata(day_len),
        "din17037_levels": json_metadata(levels),
        "method": "ray casting (embree) towards the sun per time step; DIN EN 17037 sunlight exposure "
                  "(best facade point per building)",
        "parameters": json_metadata({**method, "din17037_date": a.sun.din17037_date,
                                  "din17037_step_min": a.sun.din17037_step_min,
                                  "storey_height_m": a.storey_height_m, "scene_margin_m": a.scene_margin_m,
                                  "terrain_filled_share": area.terrain.tags.get("filled_share")}),
        "raster": dg.MetadataValue.path(str(files["raster"])),
        "thumbnail": raster_plot(grid.hours[june], grid.bounds,
                                  f"tile {tile_id}: sun hours {sun.dates[june].isoformat()}", "h", "inferno", 0,
                                  max(day_len.values()) if day_len else None),
    }
    return dg.MaterializeResult(metadata=meta, check_results=[
        dg.AssetCheckResult(asset_key=SUN_HOURS_KEY, check_name="hours_within_day_length", passed=bool(ok),
                            metadata={"per_day": json_metadata({"days": worst})})])
