"""Asset ``analysis/sightlines``: sight lines from the observers to their targets and viewsheds."""

import json

import dagster as dg
import numpy as np
from dagster import AssetExecutionContext

from resources.settings import SettingsResource

from ..buildings import load_building_table, load_tile_buildings
from ..common import json_metadata, new_figure, png_markdown, skipped_result, timer, write_json_atomic, write_table
from ..staging import DTM_KEY
from .files import analysis_dir
from .inputs import (bounds_overlap, building_solids, clip_points, grow_bounds, read_staged, solids_bounds,
                     terrain_raster)
from .keys import ANALYSIS_CODE_VERSION, GROUP, SIGHTLINES_KEY, STAGED_KEYS


def _sightline_checks():
    return [dg.AssetCheckSpec("every_observer_assessed", asset=SIGHTLINES_KEY, blocking=False,
                              description="every observer has its sight line and a viewshed")]


@dg.asset(key=SIGHTLINES_KEY, deps=[dg.AssetKey(["buildings", "model"]), DTM_KEY, STAGED_KEYS["viewpoints"],
                                    STAGED_KEYS["trees"]],
          group_name=GROUP, code_version=ANALYSIS_CODE_VERSION, check_specs=_sightline_checks(),
          automation_condition=dg.AutomationCondition.eager(), kinds={"geoparquet", "gpkg", "geotiff"},
          description="Sight lines from the observers to their targets (visible, blocked, the buildings in "
                      "the way) and a viewshed GeoTIFF per observer.")
def sightlines(context: AssetExecutionContext, settings: SettingsResource) -> dg.MaterializeResult:
    import geopandas as gpd
    from shapely.geometry import LineString

    from citymodel.analysis.scene import Scene, TerrainModel
    from citymodel.analysis.sightlines import VISIBLE, sight_lines_from_viewpoints, viewshed
    from citymodel.raster import write_geotiff

    s = settings.load()
    a = s.analysis.sightlines
    d = analysis_dir(s, "sightlines")
    vp = read_staged(s, "viewpoints")
    observers = vp[vp["kind"].astype(str) == "observer"] if vp is not None and len(vp) else None
    if observers is None or not len(observers):
        return skipped_result(SIGHTLINES_KEY, "no viewpoints configured or staged", ["every_observer_assessed"])
    with timer() as t:
        x, y = vp.geometry.x.to_numpy(), vp.geometry.y.to_numpy()
        bounds = grow_bounds((x.min(), y.min(), x.max(), y.max()), a.viewshed_radius_m + s.analysis.scene_margin_m)
        tiles = [tt.id for tt in s.tiles if bounds_overlap(tt.bounds, bounds)]
        blds = {k: v for k, v in building_solids(load_tile_buildings(s, tiles)).items()
                if bounds_overlap(solids_bounds(v), bounds)}
        terr = terrain_raster(s, bounds, s.analysis.terrain_cell_m)
        scene = Scene.build(blds, clip_points(read_staged(s, "trees"), bounds), TerrainModel.from_raster(terr),
                            crown_transmissivity=s.analysis.crown_transmissivity,
                            terrain_step_m=s.analysis.terrain_cell_m)
        lines = sight_lines_from_viewpoints(scene, vp, target_tolerance_m=a.target_tolerance_m,
                                            crowns_block=a.crowns_block)
        attrs = dict(lines.attrs)
        lines.attrs = {}
        by_id = {str(r.viewpoint_id): r for r in vp.itertuples()}
        gz = scene.terrain.height
        geoms = []
        for r in lines.itertuples():
            o, tg = by_id[r.observer_id], by_id[r.target_id]
            z0 = float(gz(np.array([o.geometry.x]), np.array([o.geometry.y]))[0]) + float(o.eye_height_m)
            z1 = float(gz(np.array([tg.geometry.x]), np.array([tg.geometry.y]))[0]) + float(tg.eye_height_m)
            geoms.append(LineString([(o.geometry.x, o.geometry.y, z0), (tg.geometry.x, tg.geometry.y, z1)]))
        lines["blocked_by_buildings"] = lines["blocked_by_buildings"].map(lambda v: json.dumps(list(v)))
        lines["n_blocking_buildings"] = lines["blocked_by_buildings"].map(lambda v: len(json.loads(v)))
        frame = gpd.GeoDataFrame(lines, geometry=geoms, crs=s.processing_crs)
        write_table(frame, d / "sightlines.parquet", d / "sightlines.gpkg", layer="sightlines")
        sheds = {}
        for o in observers.itertuples():
            eh = float(o.eye_height_m) if o.eye_height_m is not None and np.isfinite(o.eye_height_m) else 1.6
            vs = viewshed(scene, (o.geometry.x, o.geometry.y), eye_height_m=eh, radius_m=a.viewshed_radius_m,
                          cell_m=a.viewshed_cell_m, target_height_m=a.target_height_m,
                          target_tolerance_m=a.target_tolerance_m, crowns_block=a.crowns_block)
            write_geotiff(d / f"viewshed_{o.viewpoint_id}.tif", vs.visible, transform=vs.transform,
                          crs=s.processing_crs, nodata=255,
                          tags={k: v for k, v in vs.metadata.items() if k != "seconds"},
                          band_descriptions=["visible (1) / hidden (0)"])
            sheds[str(o.viewpoint_id)] = {"visible_area_m2": vs.visible_area_m2,
                                          "visible_share": round(float((vs.visible == VISIBLE).sum()
                                                                       / max((vs.visible != 255).sum(), 1)), 4)}
        write_json_atomic(d / "viewsheds.json", sheds)
        scene.close()
        # pictures: the sight lines over the buildings
        fig, ax = new_figure(4, 4)
        fp = load_building_table(s)
        if len(fp):
            fp.plot(ax=ax, color="0.8", linewidth=0)
        for r in frame.itertuples():
            xy = np.asarray(r.geometry.coords)[:, :2]
            ax.plot(xy[:, 0], xy[:, 1], color="tab:green" if r.visible else "tab:red", linewidth=1.2)
        ax.set_aspect("equal")
        ax.tick_params(labelsize=6)
        ax.set_title("sight lines (green visible, red blocked)", fontsize=9)
    missing = sorted(set(observers["viewpoint_id"].astype(str)) - set(lines["observer_id"]) - set())
    missing += sorted(set(observers["viewpoint_id"].astype(str)) - set(sheds))
    table = frame.drop(columns="geometry")[["observer_id", "target_id", "distance_m", "visible",
                                            "blocked_by_buildings", "blocked_by_terrain", "blocked_by_trees"]]
    meta = {"observers": len(observers), "visible": int(frame["visible"].sum()), "blocked": int((~frame["visible"]).sum()),
            "buildings_in_scene": len(blds), "seconds": t["seconds"],
            "lines": dg.MetadataValue.md(table.round(1).to_markdown(index=False)),
            "viewsheds": json_metadata(sheds), "method": attrs.get("method", "segment ray casting (embree)"),
            "parameters": json_metadata({**a.model_dump(), **{k: v for k, v in attrs.items() if k != "method"}}),
            "map": png_markdown(fig)}
    return dg.MaterializeResult(metadata=meta, check_results=[
        dg.AssetCheckResult(asset_key=SIGHTLINES_KEY, check_name="every_observer_assessed", passed=not missing,
                            severity=dg.AssetCheckSeverity.WARN, metadata={"missing": dg.MetadataValue.json(missing)})])
