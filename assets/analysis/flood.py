"""Asset ``analysis/flood``: water depth per scenario on the tile's DTM and the buildings it reaches."""

import dagster as dg
import numpy as np
from dagster import AssetExecutionContext

from pipelines.partitions import TILES
from resources.settings import SettingsResource

from ..buildings import LOD2_TILE_KEY
from ..common import json_metadata, raster_plot, skipped_result, timer, write_csv_atomic, write_table
from ..staging import DTM_KEY
from .files import flood_raster_path, tile_files
from .inputs import CityStore, analysis_bounds
from .keys import ANALYSIS_CODE_VERSION, FLOOD_KEY, GROUP, STAGED_KEYS


def _flood_checks():
    return [dg.AssetCheckSpec("depths_non_negative", asset=FLOOD_KEY, blocking=True,
                              description="every water depth (raster and buildings) is >= 0 m"),
            dg.AssetCheckSpec("every_building_assessed", asset=FLOOD_KEY, blocking=False,
                              description="every building of the tile has a result per scenario")]


def _crop(depth, bounds):
    """A FloodDepth cut to ``bounds`` (whole cells)."""
    from citymodel.analysis.flood import FloodDepth
    from affine import Affine

    t = depth.transform
    c0 = max(0, int(np.floor((bounds[0] - t.c) / t.a + 1e-9)))
    c1 = min(depth.depth_m.shape[1], int(np.ceil((bounds[2] - t.c) / t.a - 1e-9)))
    r0 = max(0, int(np.floor((bounds[3] - t.f) / t.e + 1e-9)))
    r1 = min(depth.depth_m.shape[0], int(np.ceil((bounds[1] - t.f) / t.e - 1e-9)))
    return FloodDepth(depth.scenario, depth.depth_m[r0:r1, c0:c1],
                      Affine(t.a, 0.0, t.c + c0 * t.a, 0.0, t.e, t.f + r0 * t.e), depth.crs, depth.zones, depth.method)


@dg.asset(key=FLOOD_KEY, deps=[LOD2_TILE_KEY, DTM_KEY, STAGED_KEYS["flood_zones"]], partitions_def=TILES,
          group_name=GROUP, code_version=ANALYSIS_CODE_VERSION, check_specs=_flood_checks(),
          kinds={"geotiff", "geoparquet"},
          description="Water depth per flood scenario (water level - DTM, GeoTIFF) and per building: "
                      "affected, maximum and mean depth, ground floor flooded; a summary per scenario.")
def flood(context: AssetExecutionContext, settings: SettingsResource) -> dg.MaterializeResult:
    from citymodel.analysis import layers as L
    from citymodel.analysis import parameters as P
    from citymodel.analysis.flood import METHOD, write_depth_raster

    s = settings.load()
    f = s.analysis.flood
    tile_id = context.partition_key
    files = tile_files(s, "flood", tile_id)
    names = ["depths_non_negative", "every_building_assessed"]
    bounds = analysis_bounds(s, tile_id)
    if bounds is None:
        return skipped_result(FLOOD_KEY, "tile outside the extent", names)
    store = CityStore(s)
    zones = store.flood_zones()
    if zones is None or not len(zones):
        return skipped_result(FLOOD_KEY, "no flood zones configured or staged", names)
    dtm = store.tile_dtm(tile_id)
    if dtm is None:
        raise dg.Failure(f"tile {tile_id}: no staged DTM. Fix: materialize staging/dtm for the tile")
    with timer() as t:
        mine = store.buildings().in_tiles([tile_id])
        mode = s.analysis.noise.building_height
        own = mine.screening_blocks(mode)
        depths, per_b, summary = L.flood(zones, dtm, mine, P.flood_parameters(s), dataset=store.dataset("flood_zones"),
                                         building_height=mode)
        rasters = {}
        for sc, dep in depths.items():
            cut = _crop(dep, bounds)
            rasters[sc] = cut
            write_depth_raster(flood_raster_path(s, tile_id, sc), cut, crs=s.processing_crs)
        # the tile's own part of the flooded area (the DTM carries a halo)
        summary["flooded_area_m2"] = [rasters[sc].flooded_area_m2 for sc in summary["scenario"]]
        summary["tile_id"] = tile_id
        geo = dict(zip(own["building_id"].astype(str), own.geometry))
        import geopandas as gpd

        per_b = gpd.GeoDataFrame(per_b, geometry=[geo.get(str(b)) for b in per_b["building_id"]]
                                 if len(per_b) else [], crs=s.processing_crs)
        per_b["tile_id"] = tile_id
        write_table(per_b, files["buildings"])
        write_csv_atomic(summary, files["summary"])
    neg = sum(int((r.depth_m[np.isfinite(r.depth_m)] < 0).sum()) for r in rasters.values())
    if len(per_b):
        neg += int((per_b["max_depth_m"].to_numpy(float) < 0).sum())
    expected = len(own) * len(depths)
    meta = {"buildings": len(own), "scenarios": dg.MetadataValue.json(sorted(depths)), "seconds": t["seconds"],
            "summary": dg.MetadataValue.md(summary.drop(columns=["method"]).round(2).to_markdown(index=False)),
            "method": METHOD, "parameters": json_metadata(f.model_dump())}
    first = sorted(rasters)[-1] if rasters else None
    if first:
        r = rasters[first]
        rows, cols = r.depth_m.shape
        b = (r.transform.c, r.transform.f + rows * r.transform.e, r.transform.c + cols * r.transform.a, r.transform.f)
        meta["thumbnail"] = raster_plot(r.depth_m, b, f"tile {tile_id}: water depth {first}", "m", "Blues", 0)
    return dg.MaterializeResult(metadata=meta, check_results=[
        dg.AssetCheckResult(asset_key=FLOOD_KEY, check_name="depths_non_negative", passed=neg == 0,
                            metadata={"negative_values": neg}),
        dg.AssetCheckResult(asset_key=FLOOD_KEY, check_name="every_building_assessed", passed=len(per_b) == expected,
                            severity=dg.AssetCheckSeverity.WARN,
                            metadata={"rows": len(per_b), "expected": expected})])
