"""Asset ``analysis/solar``: annual irradiation per roof surface with solar-cadastre classes."""

import dagster as dg
import numpy as np
from dagster import AssetExecutionContext

from pipelines.partitions import TILES
from resources.settings import SettingsResource

from ..buildings import LOD2_TILE_KEY
from ..common import histogram_plot, json_metadata, skipped_result, timer, write_table
from ..staging import DTM_KEY, WEATHER_KEY
from .files import tile_files
from .inputs import CityStore, analysis_bounds, counts, tile_building_ids
from .keys import GROUP, NEIGHBOUR_TAG, SOLAR_CODE_VERSION, SOLAR_KEY, STAGED_KEYS


#: suitability classes of the solar layer, best first (``solar_class_best`` is the best one present)
SOLAR_CLASS_ORDER = ("very suitable", "suitable", "less suitable", "too small")


def _solar_checks():
    return [dg.AssetCheckSpec("shaded_not_above_unshaded", asset=SOLAR_KEY, blocking=True,
                              description="no roof surface receives more than the same plane unshaded"),
            dg.AssetCheckSpec("every_roof_assessed", asset=SOLAR_KEY, blocking=False,
                              description="every reconstructed building of the tile has roof surfaces")]


@dg.asset(key=SOLAR_KEY, tags=NEIGHBOUR_TAG, deps=[LOD2_TILE_KEY, DTM_KEY, STAGED_KEYS["trees"], WEATHER_KEY],
          partitions_def=TILES, pool="raycast", group_name=GROUP, code_version=SOLAR_CODE_VERSION, check_specs=_solar_checks(),
          kinds={"geoparquet", "gpkg"},
          description="Annual irradiation per roof surface (kWh/m²·a) hour by hour from the climate of "
                      "analysis.solar.climate (the weather dataset, else monthly means; clear sky only on request), "
                      "shading by ray casting and a sky-view factor, with solar-cadastre suitability classes.")
def solar(context: AssetExecutionContext, settings: SettingsResource) -> dg.MaterializeResult:
    from citymodel.analysis import layers as L
    from citymodel.analysis import parameters as P

    s = settings.load()
    a = s.analysis
    tile_id = context.partition_key
    files = tile_files(s, "solar", tile_id)
    bounds = analysis_bounds(s, tile_id)
    if bounds is None:
        return skipped_result(SOLAR_KEY, "tile outside the extent", ["shaded_not_above_unshaded", "every_roof_assessed"])
    with timer() as t:
        store = CityStore(s)
        own = tile_building_ids(store, tile_id)
        area = L.scene_area(store, bounds, margin_m=a.scene_margin_m, terrain_cell_m=a.terrain_cell_m, include=own)
        sky = P.solar_sky(s)
        roofs = L.roof_irradiation(area, sky, own, P.solar_parameters(s), scene_params=P.scene_parameters(s))
        attrs = dict(roofs.attrs)
        roofs.attrs = {}
        roofs["tile_id"] = tile_id
        write_table(roofs, files["roofs"], files["roofs_gpkg"], layer="roof_irradiation")
    over = roofs[roofs["irradiation_kwh_m2a"] > roofs["unshaded_kwh_m2a"] * (1 + 1e-6) + 1e-6]
    with_solids = set(area.buildings.select(own).solids())
    missing = sorted(with_solids - set(roofs["building_id"]))
    by_class = roofs.groupby("suitability")["area_m2"].sum().round(1).to_dict() if len(roofs) else {}
    meta = {**counts(area, own), "seconds": t["seconds"], "roof_surfaces": len(roofs),
            "roof_area_m2": round(float(roofs["area_m2"].sum()), 1),
            "total_kwh_a": round(float(roofs["irradiation_kwh_a"].sum()), 0),
            "mean_kwh_m2a": round(float(np.average(roofs["irradiation_kwh_m2a"], weights=roofs["area_m2"])), 1)
            if len(roofs) and roofs["area_m2"].sum() > 0 else None,
            "area_by_class_m2": json_metadata(by_class),
            "climate": sky.climate, "climate_label": sky.metadata.get("climate_label", ""),
            "climate_annual_ghi_kwh_m2": sky.metadata.get("annual_ghi_kwh_m2"),
            "method": attrs.get("method", ""), "parameters": json_metadata(attrs),
            "table": dg.MetadataValue.path(str(files["roofs"]))}
    if len(roofs):
        meta["histogram"] = histogram_plot(roofs["irradiation_kwh_m2a"], f"tile {tile_id}: {len(roofs)} roof surfaces",
                                           "kWh/m²·a", "roof area (m²)", weights=roofs["area_m2"], size=(4.0, 2.6))
    return dg.MaterializeResult(metadata=meta, check_results=[
        dg.AssetCheckResult(asset_key=SOLAR_KEY, check_name="shaded_not_above_unshaded", passed=len(over) == 0,
                            metadata={"surfaces_above": len(over)}),
        dg.AssetCheckResult(asset_key=SOLAR_KEY, check_name="every_roof_assessed", passed=not missing,
                            severity=dg.AssetCheckSeverity.WARN,
                            metadata={"without_roof": dg.MetadataValue.json(missing[:50])})])
