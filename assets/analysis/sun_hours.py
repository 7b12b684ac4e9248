"""Asset ``analysis/sun_hours``: hours of direct sun on the ground and per facade wall and storey."""

import dagster as dg
import numpy as np
from dagster import AssetExecutionContext

from pipelines.partitions import TILES
from resources.settings import SettingsResource

from ..buildings import LOD2_TILE_KEY
from ..common import json_metadata, points_frame, raster_plot, skipped_result, timer, write_table
from ..staging import DTM_KEY
from .days import date_label, month_day
from .files import tile_files
from .inputs import SceneInputs, analysis_bounds, extent_sun_path, ground_heights
from .keys import ANALYSIS_CODE_VERSION, GROUP, NEIGHBOUR_TAG, STAGED_KEYS, SUN_HOURS_KEY


def _sun_checks():
    return [dg.AssetCheckSpec("hours_within_day_length", asset=SUN_HOURS_KEY, blocking=True,
                              description="every ground and facade value lies in [0, hours of sun above the "
                                          "horizon that day]")]


@dg.asset(key=SUN_HOURS_KEY, tags=NEIGHBOUR_TAG, deps=[LOD2_TILE_KEY, DTM_KEY, STAGED_KEYS["trees"]], partitions_def=TILES,
          group_name=GROUP, code_version=ANALYSIS_CODE_VERSION, check_specs=_sun_checks(),
          kinds={"geotiff", "geoparquet"},
          description="Hours of direct sun on the ground (GeoTIFF, one band per configured day) and per "
                      "facade wall and storey, with the DIN EN 17037 sunlight level per building; shading "
                      "by buildings, tree crowns and terrain (embree ray casting, pvlib NREL SPA).")
def sun_hours(context: AssetExecutionContext, settings: SettingsResource) -> dg.MaterializeResult:
    from citymodel.analysis.shadow import (din17037_sunlight, facade_points, facade_sun_hours,
                                           sun_hours_ground, write_sun_hours_geotiff)

    s = settings.load()
    a = s.analysis
    tile_id = context.partition_key
    files = tile_files(s, "sun_hours", tile_id)
    if analysis_bounds(s, tile_id) is None:
        return skipped_result(SUN_HOURS_KEY, "tile outside the extent", ["hours_within_day_length"])
    with timer() as t:
        inp = SceneInputs(s, tile_id)
        sun = extent_sun_path(s, a.sun.days, a.sun.time_step_min)
        grid = sun_hours_ground(inp.scene, sun, inp.bounds, a.sun.cell_m)
        write_sun_hours_geotiff(files["raster"], grid, s.processing_crs)
        pts = facade_points(inp.own, storey_height_m=a.storey_height_m, spacing_m=a.sun.facade_spacing_m,
                            ground_z=ground_heights(s, tile_id))
        pt_table, walls = facade_sun_hours(inp.scene, sun, pts)
        m, d = month_day(a.sun.din17037_date)
        din = din17037_sunlight(inp.scene, pts, sun.latitude, sun.longitude, sun.convergence_deg, (m, d),
                                year=a.year, step_min=a.sun.din17037_step_min, tz=s.timezone,
                                min_elevation_deg=a.sun.din17037_min_elevation_deg)
        # per wall and storey, at the mean position of its points
        if len(pt_table):
            pos = pt_table.groupby(["building_id", "surface_index", "storey"], sort=True)[["x", "y", "z"]].mean()
            walls = walls.merge(pos.reset_index(), on=["building_id", "surface_index", "storey"], how="left")
        else:
            walls = walls.assign(x=[], y=[], z=[])
        labels = [date_label(dd) for dd in sun.dates]  # band order = sorted dates
        walls = walls.rename(columns={f"sun_h_{k}_{dd.isoformat()}": f"sun_h_{k}_{lab}"
                                      for k in ("mean", "max") for dd, lab in zip(sun.dates, labels)})
        write_table(points_frame(walls, s.processing_crs), files["facades"])
        write_table(points_frame(din, s.processing_crs), files["din17037"])
        inp.scene.close()
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
        **inp.counts(), "seconds": t["seconds"], "cells": int(grid.hours[0].size),
        "cells_under_roof": int(grid.metadata.get("cells_under_roof", 0)), "facade_points": len(pts),
        "walls_storeys": len(walls), "mean_hours": json_metadata(means), "day_length_h": json_metadata(day_len),
        "din17037_levels": json_metadata(levels),
        "method": "ray casting (embree) towards the sun per time step; DIN EN 17037 sunlight exposure "
                  "(best facade point per building)",
        "parameters": json_metadata({**method, "din17037_date": a.sun.din17037_date,
                                  "din17037_step_min": a.sun.din17037_step_min,
                                  "storey_height_m": a.storey_height_m, "scene_margin_m": a.scene_margin_m,
                                  "terrain_filled_share": inp.terrain_raster.tags.get("filled_share")}),
        "raster": dg.MetadataValue.path(str(files["raster"])),
        "thumbnail": raster_plot(grid.hours[june], grid.bounds,
                                  f"tile {tile_id}: sun hours {sun.dates[june].isoformat()}", "h", "inferno", 0,
                                  max(day_len.values()) if day_len else None),
    }
    return dg.MaterializeResult(metadata=meta, check_results=[
        dg.AssetCheckResult(asset_key=SUN_HOURS_KEY, check_name="hours_within_day_length", passed=bool(ok),
                            metadata={"per_day": json_metadata({"days": worst})})])
