"""Stage ``buildings``: LoD2 reconstruction per tile, then the city model and its open datasets.

``buildings/lod2`` (per tile) rebuilds every building whose footprint's representative point lies
in the tile, from the staged footprints, the tile's points (with halo) and DTM; it writes the
tile's CityJSONSeq and attribute table and reports the share of valid solids (blocking), the roof
RMSE and the share of fallbacks, and in its metadata the truth-free distance between the buildings'
points and their roofs (:mod:`citymodel.lod2.summary`). ``buildings/model`` gathers the tiles into CityJSON 2.0, CityGML
2.0, GeoPackage and GeoParquet, validates them against the official schemas and compares the
reconstruction with the official LoD2 (change report).
"""

import json
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
from dagster import AssetExecutionContext

from citymodel import store
from citymodel.config import Settings
from pipelines.partitions import TILES
from resources.settings import SettingsResource
from resources.warehouse import WarehouseResource

from .common import (bbox_metadata, histogram_plot, skipped_check, timer, write_csv_atomic,
                     write_geoparquet_atomic,
                     write_json_atomic)
from .staging import DTM_KEY, LOD2_KEY, POINT_CLOUD_KEY, point_cloud_paths

LOD2_TILE_KEY = dg.AssetKey(["buildings", "lod2"])
MODEL_KEY = dg.AssetKey(["buildings", "model"])
#: follows citymodel.lod2.ALGORITHM_VERSION: a changed algorithm rebuilds exactly what it affects
from citymodel.lod2.build import ALGORITHM_VERSION  # noqa: E402

MIN_VALID_SHARE = 0.995


def buildings_dir(settings: Settings) -> Path:
    return store.buildings_dir(settings)


def tile_outputs(settings: Settings, tile_id: str) -> tuple[Path, Path]:
    """CityJSONSeq and GeoParquet of a tile's reconstruction (:func:`citymodel.store.building_tile_paths`)."""
    return store.building_tile_paths(settings, tile_id)


def epsg_code(crs: str) -> int:
    from pyproj import CRS

    return int(CRS(crs).to_epsg())


def _checks(key, results_frame: pd.DataFrame, quality) -> list[dg.AssetCheckResult]:
    n = len(results_frame)
    built = results_frame[results_frame["method"] != "rejected"]
    valid = built["validity_codes"].map(lambda c: len(c) == 0) if len(built) else pd.Series(dtype=bool)
    share_valid = float(valid.mean()) if len(built) else 1.0
    rmse = built.loc[built["method"] == "lod2_fitted", "roof_rmse_m"].astype(float)
    rmse = rmse[np.isfinite(rmse)]
    fallback = float((built["method"] == "lod1_fallback").mean()) if len(built) else 0.0
    invalid = built.loc[~valid.values, ["building_id", "validity_codes"]] if len(built) else built
    return [
        dg.AssetCheckResult(asset_key=key, check_name="valid_share", passed=share_valid >= MIN_VALID_SHARE,
                            metadata={"share_valid": round(share_valid, 4), "buildings": n,
                                      "invalid": dg.MetadataValue.json(
                                          [{"id": b, "codes": list(c)} for b, c in invalid.values[:50]])}),
        dg.AssetCheckResult(asset_key=key, check_name="roof_rmse", passed=bool(len(rmse) == 0 or rmse.median() <= 0.3),
                            severity=dg.AssetCheckSeverity.WARN,
                            metadata={"median_m": float(rmse.median()) if len(rmse) else 0.0,
                                      "p90_m": float(rmse.quantile(0.9)) if len(rmse) else 0.0, "fitted": len(rmse)}),
        dg.AssetCheckResult(asset_key=key, check_name="fallback_share", passed=fallback <= 0.1,
                            severity=dg.AssetCheckSeverity.WARN, metadata={"share_lod1_fallback": round(fallback, 4)}),
        _no_points_check(key, results_frame, quality),
        _halo_check(key, results_frame),
    ]


def _halo_check(key, frame: pd.DataFrame) -> dg.AssetCheckResult:
    from citymodel.lod2.build import HALO_MISSING

    issues = frame["issues"].astype(str) if "issues" in frame else pd.Series([], dtype=str)
    hit = issues.str.contains(f"{HALO_MISSING}:", regex=False)
    ids = frame.loc[hit.values, "building_id"].astype(str).tolist() if len(frame) else []
    names = sorted({m for text in issues[hit] for m in
                    (p.split(":", 1)[1] for p in text.split("; ") if p.startswith(f"{HALO_MISSING}:"))})
    return dg.AssetCheckResult(asset_key=key, check_name="halo_complete", passed=not ids,
                               severity=dg.AssetCheckSeverity.WARN,
                               metadata={"buildings_lacking_halo": len(ids), "neighbours": dg.MetadataValue.json(names),
                                         "examples": dg.MetadataValue.json(ids[:20])})


def _no_points_check(key, frame: pd.DataFrame, quality) -> dg.AssetCheckResult:
    from quality.suites import no_points_fallback_check

    reasons = frame["fallback_reason"] if "fallback_reason" in frame else [""] * len(frame)
    c = no_points_fallback_check(frame["method"], reasons, frame["building_id"], quality)
    return dg.AssetCheckResult(asset_key=key, check_name=c["name"], passed=c["passed"],
                               severity=dg.AssetCheckSeverity.ERROR,
                               metadata={k: (dg.MetadataValue.json(v) if isinstance(v, list) else v)
                                         for k, v in c["metadata"].items()})


def _check_specs(key) -> list[dg.AssetCheckSpec]:
    return [dg.AssetCheckSpec("valid_share", asset=key, blocking=True,
                              description=f"at least {MIN_VALID_SHARE:.1%} of the solids are valid (val3dity rules)"),
            dg.AssetCheckSpec("roof_rmse", asset=key, description="median roof RMSE of fitted roofs <= 0.3 m"),
            dg.AssetCheckSpec("fallback_share", asset=key, description="at most 10 % LoD1 fallbacks"),
            dg.AssetCheckSpec("halo_complete", asset=key, blocking=False,
                              description="no building lacks halo points (a neighbour's file could not be read)"),
            dg.AssetCheckSpec("fallback_no_points_share", asset=key, blocking=True,
                              description="at most quality.max_fallback_share of the buildings fall back to "
                                          "LoD1 for lack of points (from 3 buildings on)")]


@dg.asset(key=LOD2_TILE_KEY, deps=[dg.AssetKey(["staging", "buildings"]), POINT_CLOUD_KEY, DTM_KEY, LOD2_KEY],
          partitions_def=TILES, group_name="buildings", code_version=ALGORITHM_VERSION, pool="lod2",
          check_specs=_check_specs(LOD2_TILE_KEY), kinds={"cityjson"},
          description="LoD2 buildings of one tile reconstructed from footprints and LiDAR "
                      "(CityJSONSeq + attribute table).")
def lod2_tile(context: AssetExecutionContext, settings: SettingsResource) -> dg.MaterializeResult:
    import geopandas as gpd

    from citymodel.cityjson import write_cityjsonseq
    from citymodel.lod2.build import reconstruct_tile
    from citymodel.raster import read_geotiff

    s = settings.load()
    tile = s.tile(context.partition_key)
    laz, dtm_path, stats_path = point_cloud_paths(s, tile.id)
    halo_gaps = json.loads(stats_path.read_text()).get("halo_files_unreadable", []) if stats_path.exists() else []
    footprints = gpd.read_parquet(s.staging_dir / "buildings.parquet")
    official = None
    off_path = s.staging_dir / "lod2_reference.parquet"
    if off_path.exists():
        official = pd.DataFrame(gpd.read_parquet(off_path)[["building_id", "measured_height_m"]])
    seq_path, table_path = tile_outputs(s, tile.id)
    with timer() as t:
        if laz.exists() and dtm_path.exists():
            results = reconstruct_tile(footprints, laz, read_geotiff(dtm_path, dataset="dtm"), tile,
                                       official_lod2=official, on_duplicate="flag", missing_halo=halo_gaps)
        else:
            results = []
            inside = footprints.geometry.representative_point().within(__import__("shapely").box(*tile.bounds))
            if inside.any():
                raise dg.Failure(f"tile {tile.id}: {int(inside.sum())} footprints but no staged point cloud / DTM. "
                                 f"Fix: check sources.lidar covers the tile, then materialize staging/point_cloud")
        built = [r for r in results if r.solids]
        write_cityjsonseq(seq_path, [r.to_city_building() for r in built], title=f"{s.title or s.name}: tile {tile.id}",
                          horizontal_epsg=epsg_code(s.processing_crs), vertical_epsg=epsg_code(s.vertical_crs))
        geom = dict(zip(footprints["building_id"].astype(str), footprints.geometry))
        rows = [r.attributes() for r in results]
        frame = gpd.GeoDataFrame(rows, geometry=[geom.get(r.building_id.split("#")[0]) for r in results],
                                 crs=s.processing_crs) if rows else gpd.GeoDataFrame(
            {"building_id": [], "method": [], "validity_codes": []}, geometry=[], crs=s.processing_crs)
        frame["top_z_m"] = frame.get("ground_height_m", np.nan) + frame.get("ridge_height_m", np.nan) if rows else []
        stored = frame.copy()
        if rows:
            stored["validity_codes"] = stored["validity_codes"].map(lambda c: ",".join(str(v) for v in c))
        write_geoparquet_atomic(stored, table_path)
    counts = frame["method"].value_counts().to_dict() if rows else {}
    meta = {"buildings": len(results), "methods": dg.MetadataValue.json(counts), "seconds": t["seconds"],
            "buildings_per_s": round(len(results) / t["seconds"], 1) if t["seconds"] else 0.0,
            "cityjsonseq": dg.MetadataValue.path(str(seq_path))}
    if rows:
        meta.update(_point_to_roof_metadata(frame, f"tile {tile.id}"))
    if rows:
        meta["bbox"] = bbox_metadata(frame.total_bounds)
        rmse = frame.loc[frame["method"] == "lod2_fitted", "roof_rmse_m"].astype(float).dropna()
        if len(rmse):
            meta["roof_rmse_histogram"] = histogram_plot(rmse.clip(upper=1.0), f"tile {tile.id}: {len(rmse)} fitted roofs",
                                                         "roof RMSE (m)", "buildings", bins=25)
            meta["roof_rmse_median_m"] = round(float(rmse.median()), 3)
    return dg.MaterializeResult(metadata=meta, check_results=_checks(LOD2_TILE_KEY, frame if rows else
                                                                     pd.DataFrame({"method": [], "validity_codes": [],
                                                                                   "roof_rmse_m": [], "building_id": []}),
                                                                     s.quality))


def _point_to_roof_metadata(frame: pd.DataFrame, title: str) -> dict:
    """Dagster metadata of the truth-free measure (distance between a building's points and its roof)."""
    from citymodel.lod2.summary import quality_summary

    q = quality_summary(pd.DataFrame(frame.drop(columns="geometry", errors="ignore")))
    d = q.get("point_to_roof", {})
    meta = {"quality_summary": dg.MetadataValue.json(q)}
    if d.get("buildings"):
        meta["point_to_roof_median_m"] = d["median_of_medians_m"]
        meta["point_to_roof_p90_m"] = d["median_p90_m"]
        meta["point_to_roof_far_share"] = d["far_share"]
        p90 = pd.to_numeric(frame["point_to_roof_p90_m"], errors="coerce").dropna()
        meta["point_to_roof_histogram"] = histogram_plot(
            p90.clip(upper=3.0), f"{title}: {len(p90)} buildings",
            "90th percentile distance of a building's points to its roof (m)", "buildings")
    return meta


def load_tile_buildings(settings: Settings, tile_ids) -> list:
    """The reconstructed buildings (CityBuilding) of some tiles, read from their CityJSONSeq."""
    return list(store.CityStore(settings).load_records(tile_ids).values())


def load_building_table(settings: Settings):
    """The reconstruction's attribute rows of every tile (footprints as geometry)."""
    return store.CityStore(settings).building_table()


def _model_check_specs():
    return [dg.AssetCheckSpec("cityjson_schema", asset=MODEL_KEY, blocking=True,
                              description="CityJSON 2.0 output valid against the official schemas"),
            dg.AssetCheckSpec("citygml_schema", asset=MODEL_KEY, blocking=True,
                              description="CityGML 2.0 output valid against the official XSDs"),
            dg.AssetCheckSpec("valid_share", asset=MODEL_KEY, blocking=True,
                              description=f"at least {MIN_VALID_SHARE:.1%} of all solids are valid")]


@dg.asset(key=MODEL_KEY, deps=[LOD2_TILE_KEY, LOD2_KEY], group_name="buildings", code_version="1",
          automation_condition=dg.AutomationCondition.eager(), check_specs=_model_check_specs(),
          kinds={"cityjson", "citygml", "gpkg", "geoparquet"},
          description="The city's buildings: CityJSON 2.0, CityGML 2.0 (AdV), GeoPackage, GeoParquet, "
                      "change report against the official LoD2.")
def building_model(context: AssetExecutionContext, settings: SettingsResource,
                   warehouse: WarehouseResource) -> dg.MaterializeResult:
    import geopandas as gpd

    from citymodel.citygml import validate_citygml_xsd, write_citygml
    from citymodel.cityjson import write_cityjson
    from citymodel.cityjson_schema import validate_cityjson_schema
    from citymodel.lod2.compare import compare_with_official, coverage_from_names
    from citymodel.release import write_geopackage

    s = settings.load()
    d = buildings_dir(s)
    with timer() as t:
        table = load_building_table(s)
        buildings = load_tile_buildings(s, s.tile_ids)
        cj = write_cityjson(d / "buildings.city.json", buildings, title=s.title or s.name,
                            horizontal_epsg=epsg_code(s.processing_crs), vertical_epsg=epsg_code(s.vertical_crs))
        attrs_by_id = {str(r["building_id"]): r for r in table.drop(columns="geometry").to_dict("records")} if len(table) else {}
        gml_records = citygml_records(buildings, attrs_by_id)
        gml = write_citygml(gml_records, d / "buildings.gml", crs=s.processing_crs, vertical_crs=s.vertical_crs,
                            creation_date="2026-01-01")
        stored = table.copy()
        if len(stored) and "validity_codes" in stored:
            stored["validity_codes"] = stored["validity_codes"].astype(str)
        write_geoparquet_atomic(stored, d / "buildings.parquet")
        write_geopackage(stored, d / "buildings.gpkg", layer="buildings")
        wh = pd.DataFrame(stored.drop(columns="geometry"))
        wh["geometry_wkb"] = stored.geometry.to_wkb()
        warehouse.replace_table("buildings_lod2", wh)
        # change report against the official LoD2
        changes = None
        off_path = s.staging_dir / "lod2_reference.parquet"
        if off_path.exists() and len(table):
            official = gpd.read_parquet(off_path)
            coverage = coverage_from_names(official["source_file"].map(lambda p: Path(str(p)).name).unique())
            excluded = []
            if "quarantine" in warehouse.tables():
                excluded = warehouse.query("SELECT record_id FROM quarantine WHERE role = 'buildings'")["record_id"].tolist()
            changes = compare_with_official(table, official, coverage, excluded_ids=excluded)
            write_csv_atomic(changes, d / "changes.csv")
            warehouse.replace_table("lod2_changes", changes)
    schema_dir = _schema_dir(s, "cityjson-2.0.2")
    cj_errors = validate_cityjson_schema(cj, schema_dir) if schema_dir else []
    gml_report = validate_citygml_xsd(gml)
    codes = table["validity_codes"].map(lambda c: len(c) == 0) if len(table) else pd.Series(dtype=bool)
    share_valid = float(codes.mean()) if len(codes) else 1.0
    checks = [
        dg.AssetCheckResult(asset_key=MODEL_KEY, check_name="cityjson_schema", passed=not cj_errors,
                            metadata={"errors": dg.MetadataValue.json(cj_errors[:20]), "schemas": str(schema_dir)})
        if schema_dir else skipped_check(MODEL_KEY, "cityjson_schema", "no CityJSON 2.0.2 schemas: set "
                                         "quality.schema_dir to a folder holding cityjson-2.0.2/"),
        dg.AssetCheckResult(asset_key=MODEL_KEY, check_name="citygml_schema", passed=gml_report.ok,
                            metadata={"errors": dg.MetadataValue.json([str(e) for e in gml_report.errors[:20]])}),
        dg.AssetCheckResult(asset_key=MODEL_KEY, check_name="valid_share", passed=share_valid >= MIN_VALID_SHARE,
                            metadata={"share_valid": round(share_valid, 4)}),
    ]
    meta = {"buildings": len(table), "seconds": t["seconds"], "cityjson": dg.MetadataValue.path(str(cj)),
            "citygml": dg.MetadataValue.path(str(gml)),
            "methods": dg.MetadataValue.json(table["method"].value_counts().to_dict() if len(table) else {})}
    if len(table):
        meta.update(_point_to_roof_metadata(table, "city"))
    if changes is not None:
        meta["changes"] = dg.MetadataValue.json(changes["status"].value_counts().to_dict())
    return dg.MaterializeResult(metadata=meta, check_results=checks)


def citygml_records(buildings, attrs_by_id: dict | None = None) -> list[dict]:
    """Records for :func:`citymodel.citygml.write_citygml` from CityBuildings (attributes from
    ``attrs_by_id`` where given, else the building's own)."""
    out = []
    for b in buildings:
        a = (attrs_by_id or {}).get(b.id, b.attributes)
        solids = list(b.solids.values()) if isinstance(b.solids, dict) else list(b.solids)
        rec = {"id": _gml_id(b.id), "external_id": b.id, "function": a.get("function_code"),
               "roof_type": _str_or_none(a.get("roofType")), "storeys": _int_or_none(a.get("storeys")),
               "measured_height_m": _float_or_none(a.get("measured_height_m")),
               "solid": solids[0] if solids else None,
               "attributes": {k: a[k] for k in ("method", "eave_height_m", "ridge_height_m", "ground_height_m",
                                                 "roof_rmse_m") if a.get(k) is not None and a.get(k) == a.get(k)}}
        if b.parts:
            rec["solid"] = None
            rec["parts"] = [{"id": _gml_id(p.id), "solid": (list(p.solids.values()) if isinstance(p.solids, dict)
                                                            else p.solids)[0],
                             "roof_type": rec["roof_type"], "measured_height_m": None} for p in b.parts]
        out.append(rec)
    return out


def _gml_id(building_id: str) -> str:
    """A valid gml:id (XML NCName) for a building id; ids such as Dutch BAG numbers get a prefix
    (the original id stays in core:externalReference)."""
    import re

    bid = str(building_id)
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", bid):
        return bid
    return "BLDG_" + re.sub(r"[^A-Za-z0-9_.-]", "_", bid)


def _schema_dir(s: Settings, name: str) -> Path | None:
    base = s.quality.schema_dir
    if base is None:
        return None
    p = Path(base) / name
    return p if p.is_dir() else None


def _str_or_none(v):
    return None if v is None or v != v else str(int(v)) if isinstance(v, (int, float, np.integer, np.floating)) else str(v)


def _int_or_none(v):
    return None if v is None or v != v else int(v)


def _float_or_none(v):
    return None if v is None or v != v else float(v)
