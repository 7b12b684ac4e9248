"""Stage ``staging``: every role read, reprojected to the processing CRS, validated and stored.

Vector roles become GeoParquet (``staging/<role>.parquet``) and a warehouse table; records that
cannot be used go to the ``quarantine`` table with their reason. LiDAR tiles become a staged LAS/LAZ
with height above ground, a DTM GeoTIFF and statistics. Every asset runs its great-expectations
suite and reports one asset check per expectation (blocking where publishing must stop).
"""


import json
from pathlib import Path

import dagster as dg
from dagster import AssetExecutionContext
import pandas as pd

from citymodel.config import Settings
from citymodel.errors import SourceDataError, dataset_error
from pipelines.partitions import TILES
from resources.settings import SettingsResource
from resources.warehouse import WarehouseResource

from .common import (bbox_metadata, new_figure, no_retry_on_permanent_errors, png_markdown, read_json,
                     skipped_check, timer, write_geoparquet_atomic, write_json_atomic)
from .sources import manifest_path

STAGING_CODE_VERSION = "1"
#: 2: PVGIS' irradiance time offset is applied (kept with the staged table)
WEATHER_CODE_VERSION = f"{STAGING_CODE_VERSION}.2"
NOT_CONFIGURED = "role not configured in the deployment file (sources)"
VECTOR_ROLES = ("buildings", "trees", "roads", "flood_zones", "viewpoints")


def results_path(settings: Settings, name: str) -> Path:
    """Where a staging asset leaves its quality result for the report."""
    return settings.quality_dir / "results" / f"{name}.json"


def _manifest(settings: Settings, role: str, tile: str | None = None) -> dict:
    p = manifest_path(settings.raw_dir, role, tile)
    if not p.exists():
        raise dataset_error(SourceDataError, role, f"no download manifest at {p}",
                            f"materialize sources/{role} first")
    return read_json(p)


def _data_files(manifest: dict, suffixes: tuple[str, ...]) -> list[Path]:
    out = []
    for f in manifest["files"]:
        members = f.get("members")
        cands = [Path(m) for m in members] if members else [Path(f["path"])]
        out += [p for p in cands if p.name.lower().endswith(suffixes)]
    return out


def _to_warehouse_frame(gdf) -> pd.DataFrame:
    df = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
    df["geometry_wkb"] = gdf.geometry.to_wkb()
    return df


QUARANTINE_COLUMNS = ["dataset", "role", "record_id", "reason", "geometry_wkt", "values_json", "reason_codes"]


def _quarantine_rows(q: pd.DataFrame) -> pd.DataFrame:
    """The quarantine table's rows as text columns (nulls stay null)."""
    out = pd.DataFrame({c: (q[c] if c in q else pd.Series([None] * len(q), index=q.index, dtype=object))
                        for c in QUARANTINE_COLUMNS})
    return out.astype(object).where(out.notna(), None).astype("string")


def _check_results(asset_key, results: list[dict]) -> list[dg.AssetCheckResult]:
    return [dg.AssetCheckResult(asset_key=asset_key, check_name=c["name"], passed=c["passed"],
                                severity=dg.AssetCheckSeverity(c["severity"]),
                                metadata={"description": c["description"],
                                          "details": dg.MetadataValue.json(c["metadata"])})
            for c in results]


def _map_plot(gdf, title: str):
    fig, ax = new_figure(4, 4)
    if len(gdf):
        gdf.plot(ax=ax, linewidth=0.5, markersize=2)
    ax.set_title(title, fontsize=9)
    ax.set_aspect("equal")
    ax.tick_params(labelsize=6)
    return png_markdown(fig)


def _vector_check_specs(role: str, settings: Settings | None, key) -> list[dg.AssetCheckSpec]:
    from quality.suites import check_specs

    if settings is None:
        return []
    return [dg.AssetCheckSpec(name=c["name"], asset=key, blocking=c["blocking"], description=c["description"])
            for c in check_specs(role, settings, include_quarantine=True)]


def _build_vector_asset(role: str, settings_at_load: Settings | None) -> dg.AssetsDefinition:
    key = dg.AssetKey(["staging", role])

    @dg.asset(
        key=key,
        deps=[dg.AssetKey(["sources", role])],
        group_name="staging",
        code_version=STAGING_CODE_VERSION,
        check_specs=_vector_check_specs(role, settings_at_load, key),
        kinds={"geoparquet", "duckdb"},
        description=f"'{role}' in the canonical schema and the processing CRS; invalid records quarantined.",
    )
    def _stage(context: AssetExecutionContext, settings: SettingsResource,
               warehouse: WarehouseResource) -> dg.MaterializeResult:
        from citymodel.vector import (INVALID_COLUMN, OUTSIDE_EXTENT, check_feature_count, empty_quarantine,
                                      frame_summary, read_role, validate_records)
        from quality.suites import quarantine_check, run_suite, suite_frame

        s = settings.load()
        src = s.source(role)
        manifest = _manifest(s, role)
        if src is None or not manifest.get("configured"):
            # a role left out of the deployment file is simply not part of this city: its checks
            # (and its entry in the quality report) say skipped, not passed
            write_json_atomic(results_path(s, role), {"dataset": role, "role": role, "tile": None, "suite": None,
                                                      "checks": [], "skipped": NOT_CONFIGURED})
            return dg.MaterializeResult(metadata={"configured": False}, check_results=[
                skipped_check(key, c.name, NOT_CONFIGURED) for c in _vector_check_specs(role, s, key)])
        with timer() as t, no_retry_on_permanent_errors():
            files = _data_files(manifest, (".gpkg", ".geojson", ".json", ".csv", ".zip", ".shp"))
            if not files:
                raise dg.Failure(f"dataset '{src.dataset}' ({role}): no readable file in the download "
                                 f"({[f['path'] for f in manifest['files']]}). Fix: publish GeoPackage, "
                                 f"GeoJSON, CSV or zipped Shapefile", allow_retries=False)
            max_features = s.quality.max_features.get(role)
            frames = [read_role(role, f, src, s.processing_crs, src.dataset, max_features=max_features,
                                max_file_bytes=s.quality.max_file_bytes.get(role)) for f in files]
            check_feature_count(sum(len(f) for f in frames), role, src.dataset, max_features,
                                f"the {len(frames)} file(s) of the role together", when="before validation")
            import geopandas as gpd

            gdf = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=frames[0].crs)
            if role == "trees":
                from citymodel.trees import fill_crown_diameters

                gdf = fill_crown_diameters(gdf)  # a crown for trees without one, counted by a warning check
            valid, quarantine = validate_records(role, gdf, s.quality, src.dataset, extent=s.extent,
                                                 margin_m=s.analysis.scene_margin_m)
            if quarantine is None:
                quarantine = empty_quarantine()
            out = write_geoparquet_atomic(valid, s.staging_dir / f"{role}.parquet")
            warehouse.replace_table(role, _to_warehouse_frame(valid))
            warehouse.replace_rows("quarantine", _quarantine_rows(quarantine), {"role": role})
            # the suite measures the records as delivered (before quarantine): its checks can fail
            delivered = gdf.drop(columns=[INVALID_COLUMN], errors="ignore")
            suite = run_suite(role, suite_frame(delivered), s, staged_rows=len(valid))
            outside = int((quarantine["reason_codes"] == OUTSIDE_EXTENT).sum()) if len(quarantine) else 0
            faulty = quarantine[quarantine["reason_codes"] != OUTSIDE_EXTENT] if len(quarantine) else quarantine
            reasons = faulty["reason"].value_counts().head(5).to_dict() if len(faulty) else None
            checks = suite.check_results() + [quarantine_check(len(gdf), len(quarantine), s.quality, outside,
                                                               reasons)]
        write_json_atomic(results_path(s, role), {
            "dataset": src.dataset, "role": role, "tile": None, "suite": suite.to_dict(), "checks": checks[-1:],
            "counts": {"records": len(gdf), "valid": len(valid), "quarantined": len(quarantine)},
            "quarantine": json.loads(quarantine.to_json(orient="records")) if len(quarantine) else []})
        summary = frame_summary(valid)
        meta = {"records": len(gdf), "valid": len(valid), "quarantined": len(quarantine),
                "crs": s.processing_crs, "path": str(out), "seconds": t["seconds"],
                "geometry_types": dg.MetadataValue.json(summary.get("geometry_types")),
                "map": _map_plot(valid, f"{role} ({len(valid)})")}
        if len(valid):
            meta["bbox"] = bbox_metadata(valid.total_bounds)
        if "crown_diameter_source" in valid:
            meta["crown_diameter_sources"] = dg.MetadataValue.json(
                valid["crown_diameter_source"].astype(str).value_counts().to_dict())
        if len(quarantine):
            meta["quarantine_reasons"] = dg.MetadataValue.json(
                quarantine["reason"].value_counts().head(20).to_dict())
        return dg.MaterializeResult(metadata=meta, check_results=_check_results(key, checks))

    return _stage


def _lod2_check_specs(key) -> list[dg.AssetCheckSpec]:
    return [dg.AssetCheckSpec("geometry_present", asset=key, blocking=False,
                              description="every official LoD2 building has a solid"),
            dg.AssetCheckSpec("crs_known", asset=key, blocking=True,
                              description="every file names a CRS that matches or can be transformed")]


LOD2_KEY = dg.AssetKey(["staging", "lod2_reference"])


@dg.asset(key=LOD2_KEY, deps=[dg.AssetKey(["sources", "lod2_reference"])], group_name="staging",
          code_version=STAGING_CODE_VERSION, check_specs=_lod2_check_specs(LOD2_KEY),
          kinds={"citygml", "geoparquet"},
          description="Official LoD2 buildings (CityGML 2.0, AdV) as footprints with heights and surfaces.")
def lod2_reference(context: AssetExecutionContext, settings: SettingsResource,
                   warehouse: WarehouseResource) -> dg.MaterializeResult:
    from citymodel.citygml import citygml_to_frame, iter_citygml
    from citymodel.vector import check_feature_count, check_file_size

    s = settings.load()
    src = s.source("lod2_reference")
    manifest = _manifest(s, "lod2_reference")
    if src is None or not manifest.get("configured"):
        write_json_atomic(results_path(s, "lod2_reference"), {
            "dataset": "lod2_reference", "role": "lod2_reference", "tile": None, "suite": None, "checks": [],
            "skipped": NOT_CONFIGURED})
        return dg.MaterializeResult(metadata={"configured": False}, check_results=[
            skipped_check(LOD2_KEY, n, NOT_CONFIGURED) for n in ("geometry_present", "crs_known")])
    with timer() as t, no_retry_on_permanent_errors():
        files = _data_files(manifest, (".gml", ".xml", ".zip"))
        max_features = s.quality.max_features.get("lod2_reference")
        buildings = []
        for f in files:
            check_file_size(f, "lod2_reference", src.dataset, s.quality.max_file_bytes.get("lod2_reference"))
            for b in iter_citygml(f, src.dataset, src.crs, config_key="sources.lod2_reference.crs"):
                buildings.append(b)
                if len(buildings) > max_features:   # stop reading at once
                    check_feature_count(len(buildings), "lod2_reference", src.dataset, max_features,
                                        f"'{f.name}' (with the files before it)",
                                        when="as soon as the limit was passed")
        frame = citygml_to_frame(buildings, s.processing_crs)
        missing = frame[frame["reason"].notna()] if "reason" in frame else frame.iloc[0:0]
        valid = frame.drop(index=missing.index)
        out = write_geoparquet_atomic(valid, s.staging_dir / "lod2_reference.parquet")
        warehouse.replace_table("lod2_reference", _to_warehouse_frame(valid.drop(columns=["surfaces_json"])))
        q = pd.DataFrame({"dataset": src.dataset, "role": "lod2_reference",
                          "record_id": missing["building_id"].astype(str), "reason": missing["reason"].astype(str),
                          "geometry_wkt": "", "values_json": "", "reason_codes": "no_geometry"})
        warehouse.replace_rows("quarantine", _quarantine_rows(q), {"role": "lod2_reference"})
    checks = [{"name": "geometry_present", "passed": len(missing) == 0, "severity": "WARN",
               "description": "every official LoD2 building has a solid",
               "metadata": {"without_geometry": len(missing)}},
              {"name": "crs_known", "passed": True, "severity": "ERROR",
               "description": "every file names a CRS", "metadata": {"files": len(files)}}]
    write_json_atomic(results_path(s, "lod2_reference"), {
        "dataset": src.dataset, "role": "lod2_reference", "tile": None, "suite": None, "checks": checks,
        "counts": {"records": len(frame), "valid": len(valid), "quarantined": len(missing)},
        "quarantine": json.loads(q.to_json(orient="records")) if len(q) else []})
    meta = {"buildings": len(frame), "with_geometry": len(valid), "files": len(files), "crs": s.processing_crs,
            "path": str(out), "seconds": t["seconds"], "map": _map_plot(valid, f"official LoD2 ({len(valid)})"),
            "roof_types": dg.MetadataValue.json(valid["roof_type"].value_counts().to_dict() if len(valid) else {})}
    if len(valid):
        meta["bbox"] = bbox_metadata(valid.total_bounds)
    return dg.MaterializeResult(metadata=meta, check_results=_check_results(LOD2_KEY, checks))


WEATHER_KEY = dg.AssetKey(["staging", "weather"])


def _weather_check_specs(key) -> list[dg.AssetCheckSpec]:
    return [dg.AssetCheckSpec("annual_irradiation_plausible", asset=key, blocking=True,
                              description="annual global horizontal irradiation between 500 and 2,600 kWh/m²"),
            dg.AssetCheckSpec("site_near_the_city", asset=key, blocking=False,
                              description="the weather data's site (where the file states one) lies within 50 km "
                                          "of the city")]


@dg.asset(key=WEATHER_KEY, deps=[dg.AssetKey(["sources", "weather"])], group_name="staging",
          code_version=WEATHER_CODE_VERSION, check_specs=_weather_check_specs(WEATHER_KEY), kinds={"parquet"},
          description="Hourly typical-year weather (DWD TRY, EPW or PVGIS TMY): global and diffuse horizontal "
                      "irradiance per hour, the climate of the solar layer.")
def weather(context: AssetExecutionContext, settings: SettingsResource) -> dg.MaterializeResult:
    from citymodel.analysis.climate import annual_ghi_kwh_m2, monthly_ghi_kwh_m2, read_weather
    from citymodel.analysis.sun import site_location
    from citymodel.store import staged_weather_path

    s = settings.load()
    src = s.source("weather")
    manifest = _manifest(s, "weather")
    out = staged_weather_path(s)
    if src is None or not manifest.get("configured"):
        out.unlink(missing_ok=True)
        return dg.MaterializeResult(metadata={"configured": False, "note": "no weather dataset: the solar layer "
                                              "uses analysis.solar.monthly_ghi_kwh_m2"}, check_results=[
            dg.AssetCheckResult(asset_key=WEATHER_KEY, check_name=n, passed=True, metadata={"skipped": "not configured"})
            for n in ("annual_irradiation_plausible", "site_near_the_city")])
    with timer() as t:
        files = _data_files(manifest, (".dat", ".epw", ".csv"))
        if len(files) != 1:
            raise dg.Failure(f"dataset '{src.dataset}' (weather): {len(files)} weather files in the download "
                             f"({[f['path'] for f in manifest['files']]}). Fix: publish exactly one DWD TRY .dat, EPW "
                             "or PVGIS TMY CSV file")
        data = read_weather(files[0], src.dataset)
        write_geoparquet_atomic(data.to_table(), out)
    annual = annual_ghi_kwh_m2(data)
    monthly = monthly_ghi_kwh_m2(data)
    lat, lon = site_location(s.extent, s.processing_crs)
    dist_km = None
    if data.latitude is not None and data.longitude is not None:
        import pyproj

        dist_km = pyproj.Geod(ellps="GRS80").inv(lon, lat, float(data.longitude), float(data.latitude))[2] / 1000.0
    fig, ax = new_figure(4, 2.5)
    ax.bar(range(1, 13), monthly)
    ax.set_xlabel("month")
    ax.set_ylabel("kWh/m²")
    ax.set_title(f"{src.dataset}: {annual:.0f} kWh/m²·a global horizontal", fontsize=9)
    meta = {"format": data.format, "hours": len(data.frame), "annual_ghi_kwh_m2": round(annual, 1),
            "annual_dhi_kwh_m2": round(float(data.frame["dhi_w_m2"].sum()) / 1000.0, 1),
            "monthly_ghi_kwh_m2": dg.MetadataValue.json([round(float(v), 1) for v in monthly]),
            "site_distance_km": round(dist_km, 1) if dist_km is not None else "not stated in the file",
            "file_metadata": dg.MetadataValue.json({k: str(v) for k, v in data.metadata.items()}),
            "path": str(out), "seconds": t["seconds"], "months": png_markdown(fig)}
    checks = [{"name": "annual_irradiation_plausible", "passed": bool(500.0 <= annual <= 2600.0), "severity": "ERROR",
               "description": "annual global horizontal irradiation between 500 and 2,600 kWh/m²",
               "metadata": {"annual_ghi_kwh_m2": round(annual, 1)}},
              {"name": "site_near_the_city", "passed": bool(dist_km is None or dist_km <= 50.0), "severity": "WARN",
               "description": "the weather data's site lies within 50 km of the city",
               "metadata": {"distance_km": round(dist_km, 1) if dist_km is not None else None,
                            "city_site": [round(lat, 4), round(lon, 4)]}}]
    write_json_atomic(results_path(s, "weather"), {
        "dataset": src.dataset, "role": "weather", "tile": None, "suite": None, "checks": checks,
        "counts": {"records": len(data.frame), "valid": len(data.frame), "quarantined": 0}, "quarantine": []})
    return dg.MaterializeResult(metadata=meta, check_results=_check_results(WEATHER_KEY, checks))


# ---------------------------------------------------------------------------------------------
# LiDAR tiles

POINT_CLOUD_KEY = dg.AssetKey(["staging", "point_cloud"])
DTM_KEY = dg.AssetKey(["staging", "dtm"])


def point_cloud_paths(settings: Settings, tile_id: str) -> tuple[Path, Path, Path]:
    """Staged points, DTM and statistics of a tile (:func:`citymodel.store.lidar_paths`)."""
    from citymodel.store import lidar_paths

    return lidar_paths(settings, tile_id)


def _lidar_check_specs(settings: Settings | None) -> list[dg.AssetCheckSpec]:
    from quality.suites import check_specs

    if settings is None:
        return []
    return [dg.AssetCheckSpec(name=c["name"], asset=POINT_CLOUD_KEY, blocking=c["blocking"],
                              description=c["description"])
            for c in check_specs("lidar", settings) if c["name"] not in ("tile_id_unique",)] + [
        dg.AssetCheckSpec(name=HALO_CHECK, asset=POINT_CLOUD_KEY, blocking=False,
                          description="every neighbour file that feeds the halo could be read (else the "
                                      "tile is built without it: a warning naming the file)")]


HALO_CHECK = "halo_files_readable"


def _halo_check(stats: dict) -> dg.AssetCheckResult:
    gaps = stats.get("halo_files_unreadable") or []
    return dg.AssetCheckResult(
        asset_key=POINT_CLOUD_KEY, check_name=HALO_CHECK, passed=not gaps, severity=dg.AssetCheckSeverity.WARN,
        metadata={"unreadable": len(gaps), "files": dg.MetadataValue.json(
            [{"file": g["file"], "tile": g["tile"], "missing_bounds": g["missing_bounds"], "error": g["error"][:500]}
             for g in gaps]),
                  "fix": "the tile was built without these neighbour files (its edge buildings say "
                         "halo_missing); repair the neighbour's download, then its neighbours restage"})


def build_lidar_asset(settings_at_load: Settings | None) -> dg.AssetsDefinition:
    # the staged format is part of the code version: switching lidar.staged_format restages every tile
    fmt = settings_at_load.lidar.staged_format if settings_at_load is not None else "las"
    version = f"{STAGING_CODE_VERSION}-{fmt}"

    @dg.multi_asset(
        specs=[dg.AssetSpec(POINT_CLOUD_KEY, deps=[dg.AssetKey(["sources", "lidar"])], group_name="staging",
                            code_version=version, partitions_def=TILES, kinds={fmt},
                            description=f"Points of tile + halo ({fmt.upper()}) with HeightAboveGround; "
                                        "tile statistics."),
                 dg.AssetSpec(DTM_KEY, deps=[dg.AssetKey(["sources", "lidar"])], group_name="staging",
                              code_version=version, partitions_def=TILES, kinds={"geotiff"},
                              description="Terrain model (GeoTIFF) from the ground points of tile + halo.")],
        check_specs=_lidar_check_specs(settings_at_load),
        partitions_def=TILES,
        can_subset=False,
        pool="lidar",  # concurrency pool (orchestration.pools)
    )
    def lidar_tile(context: AssetExecutionContext, settings: SettingsResource,
                   warehouse: WarehouseResource):
        from citymodel.lidar import stage_tile
        from quality.suites import run_suite

        s = settings.load()
        tile = s.tile(context.partition_key)
        src = s.source("lidar")
        manifest = _manifest(s, "lidar", tile.id)
        files = _data_files(manifest, (".laz", ".las"))
        out_laz, out_dtm, out_stats = point_cloud_paths(s, tile.id)
        with timer() as t:
            stats = stage_tile(files, tile, src.dataset, out_laz, out_dtm, s.processing_crs,
                               crs_override=src.crs, halo_m=s.lidar.halo_m,
                               dtm_resolution_m=s.lidar.dtm_resolution_m, chunk_points=s.lidar.chunk_points,
                               extent=s.extent)
        st = stats.to_dict()
        write_json_atomic(out_stats, st)
        other = out_laz.with_suffix(".laz" if out_laz.suffix == ".las" else ".las")
        other.unlink(missing_ok=True)          # left from staging in the other lidar.staged_format
        row = {"tile_id": tile.id, "point_count": int(st["point_count"]), "density_m2": float(st["density_m2"]),
               "z_min_m": st["z_min_m"], "z_max_m": st["z_max_m"]}
        for c in s.lidar.required_classes:
            row[f"class_{c}_count"] = int(st["class_counts"].get(str(c), 0))
        frame = pd.DataFrame([{**row, "coverage_share": float(st["coverage_share"])}])
        frame["z_min_m"] = frame["z_min_m"].astype(float)
        frame["z_max_m"] = frame["z_max_m"].astype(float)
        suite = run_suite("lidar", frame, s)
        checks = [c for c in suite.check_results() if c["name"] != "tile_id_unique"]
        wh = pd.DataFrame([{**row, "ground_density_m2": st["ground_density_m2"],
                            "covered_area_m2": st["covered_area_m2"],
                            "outliers_high": st["outliers_high_count"], "outliers_low": st["outliers_low_count"],
                            "class_counts": json.dumps(st["class_counts"]), "laz_path": str(out_laz),
                            "dtm_path": str(out_dtm)}])
        warehouse.replace_rows("lidar_tiles", wh, {"tile_id": tile.id})
        write_json_atomic(results_path(s, f"lidar__{tile.id}"), {
            "dataset": src.dataset, "role": "lidar", "tile": tile.id, "suite": suite.to_dict(), "checks": [],
            "counts": {"points": int(st["point_count"])}})
        fig, ax = new_figure(4, 2.5)
        cc = {k: v for k, v in sorted(st["class_counts"].items(), key=lambda kv: int(kv[0]))}
        ax.bar([str(k) for k in cc], list(cc.values()))
        ax.set_xlabel("ASPRS class")
        ax.set_ylabel("points")
        ax.set_title(f"tile {tile.id}", fontsize=9)
        yield dg.MaterializeResult(asset_key=POINT_CLOUD_KEY, metadata={
            "points": int(st["point_count"]), "staged_points": int(st["staged_point_count"]),
            "density_m2": round(float(st["density_m2"]), 2), "empty": bool(st["empty"]),
            "coverage_share": round(float(st["coverage_share"]), 4),
            "extent_density_m2": round(float(st["extent_density_m2"]), 2),
            "class_counts": dg.MetadataValue.json(st["class_counts"]),
            "z_range_m": dg.MetadataValue.json([st["z_min_m"], st["z_max_m"]]),
            "outliers": int(st["outliers_high_count"]) + int(st["outliers_low_count"]),
            "bbox": bbox_metadata(st["bounds"]) if st["bounds"] else "empty",
            "crs": s.processing_crs, "path": str(out_laz), "seconds": t["seconds"],
            "halo_files_unreadable": dg.MetadataValue.json([g["file"] for g in st["halo_files_unreadable"]]),
            "classes": png_markdown(fig)})
        yield dg.MaterializeResult(asset_key=DTM_KEY, metadata={
            "path": str(out_dtm), "resolution_m": s.lidar.dtm_resolution_m, "crs": s.processing_crs,
            "fill": dg.MetadataValue.json(st.get("dtm_info", {}))})
        for r in _check_results(POINT_CLOUD_KEY, checks):
            yield r
        yield _halo_check(st)

    return lidar_tile
