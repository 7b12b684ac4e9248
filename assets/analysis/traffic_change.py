"""Asset ``analysis/traffic_change``: the configured demonstration traffic change as a change of noise."""

import json

import dagster as dg
import numpy as np
import pandas as pd
from dagster import AssetExecutionContext

from citymodel.config import Settings
from citymodel.errors import ConfigError, dataset_error
from pipelines.partitions import TILES
from resources.settings import SettingsResource

from ..buildings import LOD2_TILE_KEY
from ..common import json_metadata, raster_plot, skipped_result, timer, write_geoparquet_atomic, write_json_atomic
from ..staging import DTM_KEY
from .files import tile_files
from .inputs import CityStore, analysis_bounds, tile_building_ids
from .keys import GROUP, NOISE_CODE_VERSION, NEIGHBOUR_TAG, STAGED_KEYS, TRAFFIC_CHANGE_KEY


def traffic_edits(settings: Settings, roads) -> list[dict]:
    """The configured demonstration change as edits for :func:`citymodel.analysis.traffic.apply_edits`.

    Raises
    ------
    ConfigError
        No change configured, the named road is not in the roads dataset, or the roads have no
        ``name`` column to select by.
    """
    tc = settings.analysis.traffic_change
    ds = CityStore(settings).dataset("roads")
    if tc is None:
        raise ConfigError("no analysis.traffic_change configured. Fix: add analysis.traffic_change with "
                          "road_name or road_ids and a factor or speed")
    ids = [str(r) for r in tc.road_ids]
    if tc.road_name:
        if "name" not in roads:
            raise dataset_error(ConfigError, ds, "the roads have no 'name' column to select "
                                f"analysis.traffic_change.road_name = {tc.road_name!r} by",
                                "map the road name column (sources.roads.columns: {name: ...}) or give road_ids")
        sel = roads.loc[roads["name"].astype(str) == tc.road_name, "road_id"].astype(str).tolist()
        if not sel:
            names = sorted(roads["name"].dropna().astype(str).unique())
            raise dataset_error(ConfigError, ds, "analysis.traffic_change.road_name names no road",
                                f"use one of {names[:20]}", record=tc.road_name)
        ids += [i for i in sel if i not in ids]
    known = set(roads["road_id"].astype(str))
    for i in ids:
        if i not in known:
            raise dataset_error(ConfigError, ds, "analysis.traffic_change.road_ids names a road that does not exist",
                                "use a road_id of the staged roads", record=i)
    edit = {k: v for k, v in (("factor", tc.factor), ("speed_car_kmh", tc.speed_car_kmh),
                              ("speed_truck_kmh", tc.speed_truck_kmh), ("surface", tc.surface)) if v is not None}
    return [{"road_id": i, **edit} for i in ids]


def _traffic_checks():
    return [dg.AssetCheckSpec("change_bounded_by_emission_change", asset=TRAFFIC_CHANGE_KEY, blocking=False,
                              description="no receiver changes by more than the largest emission change of "
                                          "the changed roads (energy sum)")]


@dg.asset(key=TRAFFIC_CHANGE_KEY, tags=NEIGHBOUR_TAG, deps=[LOD2_TILE_KEY, DTM_KEY, STAGED_KEYS["roads"]], partitions_def=TILES, pool="noise",
          group_name=GROUP, code_version=NOISE_CODE_VERSION, check_specs=_traffic_checks(),
          kinds={"geotiff", "geoparquet"},
          description="The configured demonstration traffic change as a change of noise (RLS-19, after - "
                      "before): difference map (GeoTIFF) and the buildings whose highest facade level "
                      "changes by >= 1 dB and >= 3 dB.")
def traffic_change(context: AssetExecutionContext, settings: SettingsResource) -> dg.MaterializeResult:
    from citymodel.analysis import layers as L
    from citymodel.analysis import parameters as P
    from citymodel.analysis.rls19 import METHOD, road_emissions
    from citymodel.analysis.traffic import apply_edits, noise_change
    from citymodel.raster import write_geotiff

    s = settings.load()
    tc = s.analysis.traffic_change
    tile_id = context.partition_key
    files = tile_files(s, "traffic_change", tile_id)
    names = ["change_bounded_by_emission_change"]
    if tc is None:
        return skipped_result(TRAFFIC_CHANGE_KEY, "no analysis.traffic_change configured", names)
    bounds = analysis_bounds(s, tile_id)
    if bounds is None:
        return skipped_result(TRAFFIC_CHANGE_KEY, "tile outside the extent", names)
    store = CityStore(s)
    all_roads = store.roads()
    if all_roads is None or not len(all_roads):
        return skipped_result(TRAFFIC_CHANGE_KEY, "no staged roads", names)
    edits = traffic_edits(s, all_roads)  # validated against every road, not only the nearby ones
    with timer() as t:
        noise_p = P.noise_parameters(s)
        area = L.noise_area(store, bounds, max_distance_m=noise_p.max_distance_m,
                            terrain_cell_m=s.analysis.terrain_cell_m)
        got = L.noise_inputs(area, noise_p, tile_building_ids(store, tile_id))
        if got is None:
            return skipped_result(TRAFFIC_CHANGE_KEY, "no staged roads within range of the tile", names)
        _, blocks, own = got
        params = noise_p.propagation()
        near_ids = set(area.roads["road_id"].astype(str))
        local = [e for e in edits if e["road_id"] in near_ids]
        rec = L.facade_receivers_of(own, area, noise_p)
        res = noise_change(area.roads, edits=local, bounds=bounds, facade_receivers=rec if len(rec) else None,
                           buildings=blocks, dtm=area.terrain, params=params, dataset=store.dataset("roads")) \
            if local else None
        if res is not None:
            arr = np.stack([res.diff_lrt_db, res.diff_lrn_db]).astype(np.float32)
            transform = res.grid_before.transform
            blds = res.buildings if res.buildings is not None else pd.DataFrame(columns=["building_id"])
        else:  # the changed roads are out of range of this tile: no change anywhere
            from citymodel.analysis.noise import grid_receivers

            gr = grid_receivers(bounds, params)
            shape = (int(gr["row"].max()) + 1, int(gr["col"].max()) + 1)
            arr = np.zeros((2, *shape), dtype=np.float32)
            from affine import Affine

            sp = params.grid_spacing_m
            transform = Affine(sp, 0, bounds[0], 0, -sp, bounds[3])
            blds = pd.DataFrame({"building_id": own["building_id"].astype(str), "diff_lrt_db": 0.0,
                                 "diff_lrn_db": 0.0, "change_ge_1db": False, "change_ge_3db": False,
                                 "method": METHOD})
        write_geotiff(files["raster"], arr, transform=transform, crs=s.processing_crs, nodata=float("nan"),
                      tags={"method": METHOD, "change": tc.label, "edits": json.dumps(edits),
                            "indicators": "LrT and LrN after - before (dB)"},
                      band_descriptions=["dLrT_dB", "dLrN_dB"])
        write_geoparquet_atomic(blds.assign(tile_id=tile_id), files["buildings"])
        # the emission change of the changed roads (the bound of any level change)
        if local:
            sel = area.roads[area.roads["road_id"].astype(str).isin({e["road_id"] for e in local})]
            eb = road_emissions(sel, store.dataset("roads"), road_type=s.analysis.noise.road_type)
            ea = road_emissions(apply_edits(sel, local), store.dataset("roads"), road_type=s.analysis.noise.road_type)
            with np.errstate(invalid="ignore"):
                dlw = np.concatenate([ea["lw_day_db_m"].to_numpy() - eb["lw_day_db_m"].to_numpy(),
                                      ea["lw_night_db_m"].to_numpy() - eb["lw_night_db_m"].to_numpy()])
            bound = float(np.nanmax(np.abs(dlw))) if np.isfinite(dlw).any() else float("inf")
        else:
            bound = 0.0
        summary = {"label": tc.label, "edits": edits, "changed_roads_in_range": sorted(e["road_id"] for e in local),
                   "tile_id": tile_id, "method": METHOD, "max_emission_change_db": bound,
                   "buildings_change_ge_1db": int(blds["change_ge_1db"].sum()) if len(blds) else 0,
                   "buildings_change_ge_3db": int(blds["change_ge_3db"].sum()) if len(blds) else 0,
                   "min_diff_lrt_db": float(np.nanmin(arr[0])) if np.isfinite(arr[0]).any() else None,
                   "max_diff_lrt_db": float(np.nanmax(arr[0])) if np.isfinite(arr[0]).any() else None}
        write_json_atomic(files["summary"], summary)
    vals = np.concatenate([arr[np.isfinite(arr)].ravel(),
                           blds["diff_lrt_db"].to_numpy(float) if len(blds) else np.zeros(0),
                           blds["diff_lrn_db"].to_numpy(float) if len(blds) else np.zeros(0)])
    vals = vals[np.isfinite(vals)]
    worst = float(np.abs(vals).max()) if len(vals) else 0.0
    b = (transform.c, transform.f + arr.shape[1] * transform.e, transform.c + arr.shape[2] * transform.a, transform.f)
    meta = {**{k: v for k, v in summary.items() if isinstance(v, (int, float, str)) and v is not None},
            "edits": json_metadata(edits), "seconds": t["seconds"], "receivers_facade": len(rec),
            "parameters": json_metadata(params.as_dict()),
            "thumbnail": raster_plot(arr[0], b, f"tile {tile_id}: ΔLrT ({tc.label})", "dB", "RdBu_r", -3, 3)}
    return dg.MaterializeResult(metadata=meta, check_results=[
        dg.AssetCheckResult(asset_key=TRAFFIC_CHANGE_KEY, check_name="change_bounded_by_emission_change",
                            passed=worst <= bound + 1e-6, severity=dg.AssetCheckSeverity.WARN,
                            metadata={"largest_level_change_db": round(worst, 3),
                                      "largest_emission_change_db": round(bound, 3)})])
