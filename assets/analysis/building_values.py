"""Asset ``analysis/building_values``: one row per building with the values of every analysis layer.

Its columns (:func:`building_value_columns`) are the attributes the 3D Tiles
(:func:`building_value_properties`), the CityJSON and the open datasets carry.
"""

from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
from dagster import AssetExecutionContext

from citymodel.config import Settings
from resources.settings import SettingsResource

from ..buildings import load_building_table
from ..common import json_metadata, timer, write_csv_atomic, write_geoparquet_atomic
from .days import day_label
from .files import building_values_path, read_tiles
from .inputs import CityStore
from .keys import (ANALYSIS_CODE_VERSION, BUILDING_VALUES_KEY, FLOOD_KEY, GROUP, NOISE_KEY, SIGHTLINES_KEY,
                   SOLAR_KEY, SUN_HOURS_KEY, TRAFFIC_CHANGE_KEY)
from .solar import SOLAR_CLASS_ORDER


#: (column, 3D Tiles property, type, unit/description); the sun columns follow the configured days
def building_value_columns(settings: Settings) -> list[tuple[str, str, str, str]]:
    """The columns of ``analysis/building_values.parquet``: ``(column, type, unit, description)``.

    Types are 3D Tiles component types (``FLOAT32``, ``UINT8``, ``STRING``).
    """
    cols = []
    for day in settings.analysis.sun.days:
        lab = day_label(day)
        cols.append((f"sun_hours_{lab}_max", "FLOAT32", "h",
                     f"most hours of direct sun at a facade point of the building on {day}"))
    cols += [("din17037_hours", "FLOAT32", "h", "hours of possible sun at the best facade point on the "
                                                 "DIN EN 17037 day"),
             ("din17037_level", "STRING", "", "DIN EN 17037 sunlight exposure level (high/medium/minimum/none)"),
             ("solar_kwh_a", "FLOAT32", "kWh/a", "annual irradiation on all roof surfaces"),
             ("solar_kwh_m2a_max", "FLOAT32", "kWh/m²·a", "annual irradiation of the best roof surface"),
             ("solar_roof_area_m2", "FLOAT32", "m²", "roof area assessed"),
             ("solar_suitable_area_m2", "FLOAT32", "m²", "roof area classed 'very suitable' or 'suitable'"),
             ("solar_class_best", "STRING", "", "best solar-cadastre class of the roof surfaces"),
             ("noise_lrt_max_db", "FLOAT32", "dB(A)", "highest facade rating level, day (RLS-19 LrT)"),
             ("noise_lrn_max_db", "FLOAT32", "dB(A)", "highest facade rating level, night (RLS-19 LrN)")]
    scen = settings.analysis.flood.scenarios
    for sc in (scen if scen else _flood_scenarios(settings)):
        k = sc.lower()
        cols += [(f"flood_depth_max_m_{k}", "FLOAT32", "m", f"largest water depth at the building, {sc}"),
                 (f"flood_affected_{k}", "UINT8", "", f"1 where water reaches the building, {sc}"),
                 (f"flood_ground_floor_{k}", "UINT8", "", f"1 where the depth exceeds the ground floor "
                                                          f"height, {sc}")]
    if settings.analysis.traffic_change is not None:
        cols += [("traffic_change_lrt_db", "FLOAT32", "dB", "change of the highest facade LrT by the "
                                                             "demonstration traffic change"),
                 ("traffic_change_lrn_db", "FLOAT32", "dB", "change of the highest facade LrN by the "
                                                             "demonstration traffic change")]
    return cols


def _flood_scenarios(settings: Settings) -> list[str]:
    z = CityStore(settings).flood_zones()
    return sorted(z["scenario"].astype(str).unique()) if z is not None and len(z) and "scenario" in z else []


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def building_value_properties(settings: Settings) -> list:
    """:class:`citymodel.tiles3d.PropertySpec` of the building values, for ``write_building_tiles``.

    Property names are the camelCase of the columns (``solar_kwh_a`` -> ``solarKwhA``); each spec
    reads the snake_case column from the record's attributes; noData is -9999 (FLOAT32), 255 (UINT8)
    and "" (STRING).
    """
    from citymodel.tiles3d.glb import PropertySpec

    out = []
    for col, typ, unit, desc in building_value_columns(settings):
        text = f"{desc} ({unit})" if unit else desc
        if typ == "STRING":
            out.append(PropertySpec(camel(col), "STRING", None, "", (col,), text))
        else:
            out.append(PropertySpec(camel(col), "SCALAR", typ, -9999.0 if typ.startswith("FLOAT") else 255,
                                    (col,), text))
    return out



def gather_building_values(settings: Settings, root=None, table=None):
    """One row per reconstructed building with the values of every analysis layer (GeoDataFrame).

    ``root`` and ``table``: another set of results in the same layout and its buildings (a planning
    variant's); default the city's."""
    import geopandas as gpd

    table = load_building_table(settings) if table is None else table
    base = gpd.GeoDataFrame({"building_id": table["building_id"].astype(str),
                             "tile_id": table["tile_id"].astype(str) if "tile_id" in table else "",
                             "method": table["method"].astype(str) if "method" in table else ""},
                            geometry=table.geometry.values, crs=table.crs)
    base = base[base["method"] != "rejected"].reset_index(drop=True)
    parts = []
    walls = read_tiles(settings, "sun_hours", "facades", root)
    if len(walls):
        cols = {f"sun_h_max_{day_label(d)}": f"sun_hours_{day_label(d)}_max" for d in settings.analysis.sun.days}
        parts.append(walls.groupby("building_id")[list(cols)].max().rename(columns=cols))
    din = read_tiles(settings, "sun_hours", "din17037", root)
    if len(din):
        parts.append(din.set_index("building_id")[["sun_hours_best", "level"]]
                     .rename(columns={"sun_hours_best": "din17037_hours", "level": "din17037_level"}))
    roofs = read_tiles(settings, "solar", "roofs", root)
    if len(roofs):
        rank = {c: i for i, c in enumerate(SOLAR_CLASS_ORDER)}
        roofs["rank"] = roofs["suitability"].map(rank).fillna(len(rank))
        roofs["suitable_area"] = roofs["area_m2"].where(roofs["suitability"].isin(SOLAR_CLASS_ORDER[:2]), 0.0)
        g = roofs.groupby("building_id")
        sol = pd.DataFrame({"solar_kwh_a": g["irradiation_kwh_a"].sum(),
                            "solar_kwh_m2a_max": g["irradiation_kwh_m2a"].max(),
                            "solar_roof_area_m2": g["area_m2"].sum(),
                            "solar_suitable_area_m2": g["suitable_area"].sum(),
                            "solar_class_best": g["rank"].min().map(lambda r: SOLAR_CLASS_ORDER[int(r)]
                                                                   if r < len(SOLAR_CLASS_ORDER) else "")})
        parts.append(sol)
    nb = read_tiles(settings, "noise", "buildings", root)
    if len(nb):
        parts.append(nb.set_index("building_id")[["lrt_max_db", "lrn_max_db"]]
                     .rename(columns={"lrt_max_db": "noise_lrt_max_db", "lrn_max_db": "noise_lrn_max_db"}))
    fl = read_tiles(settings, "flood", "buildings", root)
    if len(fl):
        for sc, g in fl.groupby("scenario"):
            k = str(sc).lower()
            g = g.set_index("building_id")
            parts.append(pd.DataFrame({f"flood_depth_max_m_{k}": g["max_depth_m"].astype(float),
                                       f"flood_affected_{k}": g["affected"].astype("uint8"),
                                       f"flood_ground_floor_{k}": g["ground_floor_flooded"].astype("uint8")}))
    tcb = read_tiles(settings, "traffic_change", "buildings", root)
    if len(tcb) and "diff_lrt_db" in tcb:
        parts.append(tcb.set_index("building_id")[["diff_lrt_db", "diff_lrn_db"]]
                     .rename(columns={"diff_lrt_db": "traffic_change_lrt_db", "diff_lrn_db": "traffic_change_lrn_db"}))
    out = base.set_index("building_id")
    for p in parts:
        p.index = p.index.astype(str)
        out = out.join(p[~p.index.duplicated()], how="left")
    out = out.reset_index()
    for col, typ, _, _ in building_value_columns(settings):
        if col not in out:
            out[col] = "" if typ == "STRING" else np.nan
        elif typ == "STRING":
            out[col] = out[col].fillna("").astype(str)
    return gpd.GeoDataFrame(out, geometry="geometry", crs=table.crs)


def building_values_by_id(settings: Settings) -> dict[str, dict[str, Any]]:
    """``building_id -> {column: value}`` from ``analysis/building_values.parquet`` (NaN dropped):
    merge into the 3D Tiles records' attributes."""
    p = building_values_path(settings)
    if not p.exists():
        return {}
    f = pd.read_parquet(p)
    cols = [c for c, *_ in building_value_columns(settings) if c in f]
    out = {}
    for r in f[["building_id", *cols]].to_dict("records"):
        out[str(r.pop("building_id"))] = {k: v for k, v in r.items() if not (isinstance(v, float) and np.isnan(v))}
    return out


def _values_checks():
    return [dg.AssetCheckSpec("one_row_per_building", asset=BUILDING_VALUES_KEY, blocking=True,
                              description="one row per reconstructed building, ids unique"),
            dg.AssetCheckSpec("layers_cover_buildings", asset=BUILDING_VALUES_KEY, blocking=False,
                              description="every building has a value of every computed layer")]


_UPSTREAM = [SUN_HOURS_KEY, SOLAR_KEY, SIGHTLINES_KEY, NOISE_KEY, FLOOD_KEY, TRAFFIC_CHANGE_KEY]


@dg.asset(key=BUILDING_VALUES_KEY, deps=[*_UPSTREAM, dg.AssetKey(["buildings", "model"])], group_name=GROUP,
          code_version=ANALYSIS_CODE_VERSION, check_specs=_values_checks(),
          automation_condition=dg.AutomationCondition.eager(), kinds={"geoparquet", "gpkg", "csv"},
          description="One row per building with the analysis values the 3D Tiles and the open datasets "
                      "carry (sun hours, DIN EN 17037, solar, noise, flood, traffic change).")
def building_values(context: AssetExecutionContext, settings: SettingsResource) -> dg.MaterializeResult:
    from citymodel.release import write_geopackage

    s = settings.load()
    with timer() as t:
        values = gather_building_values(s)
        path = building_values_path(s)
        write_geoparquet_atomic(values, path)
        write_geopackage(values, path.with_suffix(".gpkg"), layer="building_values")
        write_csv_atomic(pd.DataFrame(values.drop(columns="geometry")), path.with_suffix(".csv"))
    cols = building_value_columns(s)
    n_model = len(load_building_table(s))
    coverage = {c: round(float((values[c].astype(str) != "").mean() if typ == "STRING"
                               else values[c].notna().mean()), 4) if len(values) else 0.0
                for c, typ, _, _ in cols}
    # a layer whose column is empty for every building was not computed (e.g. not configured): not a gap
    gaps = {c: v for c, v in coverage.items() if 0.0 < v < 1.0}
    dup = int(values["building_id"].duplicated().sum())
    stats = {c: {"min": float(values[c].min()), "mean": float(values[c].mean()), "max": float(values[c].max())}
             for c, typ, _, _ in cols if typ != "STRING" and values[c].notna().any()}
    meta = {"buildings": len(values), "columns": dg.MetadataValue.json(
                [{"column": c, "type": typ, "unit": u, "description": d} for c, typ, u, d in cols]),
            "coverage": json_metadata(coverage), "statistics": json_metadata(stats), "seconds": t["seconds"],
            "path": dg.MetadataValue.path(str(path))}
    return dg.MaterializeResult(metadata=meta, check_results=[
        dg.AssetCheckResult(asset_key=BUILDING_VALUES_KEY, check_name="one_row_per_building",
                            passed=dup == 0 and len(values) <= n_model,
                            metadata={"duplicates": dup, "rows": len(values), "buildings_in_model": n_model}),
        dg.AssetCheckResult(asset_key=BUILDING_VALUES_KEY, check_name="layers_cover_buildings", passed=not gaps,
                            severity=dg.AssetCheckSeverity.WARN, metadata={"partial": json_metadata(gaps)})])
