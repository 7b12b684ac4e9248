"""Asset ``analysis/sightlines``: sight lines from the observers to their targets and viewsheds."""

import json

import dagster as dg
import numpy as np
from dagster import AssetExecutionContext

from resources.settings import SettingsResource

from ..common import json_metadata, new_figure, png_markdown, skipped_result, timer, write_json_atomic, write_table
from ..staging import DTM_KEY
from .files import analysis_dir
from .inputs import CityStore
from .keys import ANALYSIS_CODE_VERSION, GROUP, SIGHTLINES_KEY, STAGED_KEYS


def _sightline_checks():
    return [dg.AssetCheckSpec("every_observer_assessed", asset=SIGHTLINES_KEY, blocking=False,
                              description="every observer has its sight line and a viewshed")]


@dg.asset(key=SIGHTLINES_KEY, deps=[dg.AssetKey(["buildings", "model"]), DTM_KEY, STAGED_KEYS["viewpoints"],
                                    STAGED_KEYS["trees"]],
          group_name=GROUP, code_version=ANALYSIS_CODE_VERSION, check_specs=_sightline_checks(), pool="raycast",
          automation_condition=dg.AutomationCondition.eager(), kinds={"geoparquet", "gpkg", "geotiff"},
          description="Sight lines from the observers to their targets (visible, blocked, the buildings in "
                      "the way) and a viewshed GeoTIFF per observer.")
def sightlines(context: AssetExecutionContext, settings: SettingsResource) -> dg.MaterializeResult:
    from citymodel.analysis import layers as L
    from citymodel.analysis import parameters as P
    from citymodel.analysis.sightlines import VISIBLE
    from citymodel.raster import write_geotiff

    s = settings.load()
    a = s.analysis.sightlines
    d = analysis_dir(s, "sightlines")
    store = CityStore(s)
    vp = store.viewpoints()
    observers = vp[vp["kind"].astype(str) == "observer"] if vp is not None and len(vp) else None
    if observers is None or not len(observers):
        return skipped_result(SIGHTLINES_KEY, "no viewpoints configured or staged", ["every_observer_assessed"])
    with timer() as t:
        area = L.sightline_area(store, vp, radius_m=a.viewshed_radius_m, margin_m=s.analysis.scene_margin_m,
                                terrain_cell_m=s.analysis.terrain_cell_m)
        res = L.sightlines(area, P.sightline_parameters(s), scene_params=P.sightline_scene_parameters(s))
        frame, attrs = res.lines, res.attrs
        lines = frame
        write_table(frame, d / "sightlines.parquet", d / "sightlines.gpkg", layer="sightlines")
        sheds = {}
        for vid, vs in res.viewsheds.items():
            write_geotiff(d / f"viewshed_{vid}.tif", vs.visible, transform=vs.transform,
                          crs=s.processing_crs, nodata=255,
                          tags={k: v for k, v in vs.metadata.items() if k != "seconds"},
                          band_descriptions=["visible (1) / hidden (0)"])
            sheds[vid] = {"visible_area_m2": vs.visible_area_m2,
                          "visible_share": round(float((vs.visible == VISIBLE).sum()
                                                       / max((vs.visible != 255).sum(), 1)), 4)}
        write_json_atomic(d / "viewsheds.json", sheds)
        # pictures: the sight lines over the buildings
        fig, ax = new_figure(4, 4)
        fp = store.building_table()
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
            "buildings_in_scene": len(area.buildings), "seconds": t["seconds"],
            "lines": dg.MetadataValue.md(table.round(1).to_markdown(index=False)),
            "viewsheds": json_metadata(sheds), "method": attrs.get("method", "segment ray casting (embree)"),
            "parameters": json_metadata({**a.model_dump(), **{k: v for k, v in attrs.items() if k != "method"}}),
            "map": png_markdown(fig)}
    return dg.MaterializeResult(metadata=meta, check_results=[
        dg.AssetCheckResult(asset_key=SIGHTLINES_KEY, check_name="every_observer_assessed", passed=not missing,
                            severity=dg.AssetCheckSeverity.WARN, metadata={"missing": dg.MetadataValue.json(missing)})])
