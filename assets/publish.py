"""Stage ``publish``: 3D Tiles and the versioned release (``releases/<id>``, ``latest``)."""

import json
import shutil
from pathlib import Path

import dagster as dg
from dagster import AssetExecutionContext

from citymodel.config import Settings
from pipelines.partitions import TILES
from resources.settings import SettingsResource

from .common import timer, write_json_atomic
from .quality_report import REPORT_KEY
from .staging import DTM_KEY, POINT_CLOUD_KEY, point_cloud_paths

PUBLISH_CODE_VERSION = "1"
TREE_TILES_KEY = dg.AssetKey(["publish", "tree_tiles"])
POINTCLOUD_TILES_KEY = dg.AssetKey(["publish", "pointcloud_tiles"])
RELEASE_KEY = dg.AssetKey(["publish", "release"])
BUILDING_TILES_KEY = dg.AssetKey(["publish", "building_tiles"])


def publish_dir(settings: Settings) -> Path:
    return settings.output_dir / "publish"


def _dtm_paths(settings: Settings) -> list[Path]:
    return [p for t in settings.tile_ids if (p := point_cloud_paths(settings, t)[1]).exists()]


@dg.asset(key=TREE_TILES_KEY, deps=[dg.AssetKey(["staging", "trees"]), DTM_KEY], group_name="publish",
          code_version=PUBLISH_CODE_VERSION, automation_condition=dg.AutomationCondition.eager(),
          kinds={"3dtiles"}, description="Trees as instanced 3D Tiles 1.1 (height and crown diameter).")
def tree_tiles(context: AssetExecutionContext, settings: SettingsResource) -> dg.MaterializeResult:
    import geopandas as gpd

    from citymodel.dtm import DtmMosaic
    from citymodel.tiles3d import write_tree_tiles

    s = settings.load()
    out = publish_dir(s) / "tiles" / "trees"
    path = s.staging_dir / "trees.parquet"
    trees = gpd.read_parquet(path) if path.exists() else None
    if trees is None or not len(trees):
        shutil.rmtree(out, ignore_errors=True)
        return dg.MaterializeResult(metadata={"trees": 0, "note": "no trees staged"})
    with timer() as t:
        info = write_tree_tiles(trees, out, ground_heights=DtmMosaic(_dtm_paths(s)), crs=s.processing_crs,
                                vertical_crs=s.vertical_crs, extent=s.extent)
    return dg.MaterializeResult(metadata={
        "trees": info.n_features, "content_tiles": info.n_content_tiles, "skipped": len(info.skipped),
        "geoid": dg.MetadataValue.json(info.geoid), "bytes": info.bytes_total, "seconds": t["seconds"],
        "tileset": dg.MetadataValue.path(str(info.tileset_path))})


@dg.asset(key=POINTCLOUD_TILES_KEY, deps=[POINT_CLOUD_KEY], group_name="publish", partitions_def=TILES,
          code_version=PUBLISH_CODE_VERSION, kinds={"3dtiles", "py3dtiles"},
          description="The tile's points (without halo) as 3D Tiles (py3dtiles), coloured by class.")
def pointcloud_tiles(context: AssetExecutionContext, settings: SettingsResource) -> dg.MaterializeResult:
    from citymodel.tiles3d import write_pointcloud_tiles

    s = settings.load()
    tile = s.tile(context.partition_key)
    laz = point_cloud_paths(s, tile.id)[0]
    out = publish_dir(s) / "tiles" / "pointcloud" / tile.id
    if not laz.exists():
        shutil.rmtree(out, ignore_errors=True)
        return dg.MaterializeResult(metadata={"points": 0, "note": "empty tile: no staged points"})
    with timer() as t:
        info = write_pointcloud_tiles([laz], out, s.processing_crs, bounds=[tile.bounds],
                                      vertical_crs=s.vertical_crs, colour="classification")
    return dg.MaterializeResult(metadata={
        "points": info.n_points, "classes": dg.MetadataValue.json(info.classes), "bytes": info.bytes_total,
        "geoid": dg.MetadataValue.json(info.geoid), "seconds": t["seconds"],
        "tileset": dg.MetadataValue.path(str(info.tileset_path))})


def building_records(settings: Settings):
    """Records for the 3D Tiles writer: one per building (parts merged into one feature)."""
    from citymodel.geometry3d import Solid

    from .buildings import load_building_table, load_tile_buildings

    table = load_building_table(settings)
    attrs = {str(r["building_id"]): r for r in table.drop(columns="geometry").to_dict("records")} if len(table) else {}
    records = []
    for b in load_tile_buildings(settings, settings.tile_ids):
        solids = list(b.solids.values()) if isinstance(b.solids, dict) else list(b.solids)
        for p in b.parts:
            solids += list(p.solids.values()) if isinstance(p.solids, dict) else list(p.solids)
        if not solids:
            continue
        a = dict(attrs.get(b.id, b.attributes))
        codes = str(a.get("validity_codes") or "").strip("[] ")
        records.append({"id": b.id, "solid": Solid([srf for sol in solids for srf in sol.surfaces]),
                        "attributes": a, "valid": codes == ""})
    return records


@dg.asset(key=BUILDING_TILES_KEY, deps=[dg.AssetKey(["buildings", "model"]), dg.AssetKey(["analysis", "building_values"])],
          group_name="publish",
          code_version=PUBLISH_CODE_VERSION, automation_condition=dg.AutomationCondition.eager(),
          kinds={"3dtiles"}, description="Buildings as 3D Tiles 1.1 (GLB, EXT_mesh_features, "
                                         "EXT_structural_metadata), ECEF with geoid-corrected heights.")
def building_tiles(context: AssetExecutionContext, settings: SettingsResource) -> dg.MaterializeResult:
    from citymodel.tiles3d import write_building_tiles

    from .analysis import building_value_properties, building_values_by_id

    s = settings.load()
    out = publish_dir(s) / "tiles" / "buildings"
    with timer() as t:
        records = building_records(s)
        values = building_values_by_id(s)
        for r in records:
            r["attributes"].update(values.get(r["id"], {}))
        info = write_building_tiles(records, out, crs=s.processing_crs, vertical_crs=s.vertical_crs,
                                    extent=s.extent, properties=building_value_properties(s))
    return dg.MaterializeResult(metadata={
        "buildings": info.n_features, "content_tiles": info.n_content_tiles,
        "skipped": dg.MetadataValue.json(info.skipped[:50]), "geoid": dg.MetadataValue.json(info.geoid),
        "bytes": info.bytes_total, "bytes_per_building": round(info.bytes_total / max(info.n_features, 1)),
        "seconds": t["seconds"], "tileset": dg.MetadataValue.path(str(info.tileset_path))})


def _add_buildings(builder, s: Settings, pub: Path) -> None:
    from .buildings import buildings_dir

    d = buildings_dir(s)
    files = [("buildings.city.json", "buildings-cityjson", "Buildings LoD2 (CityJSON 2.0)", "application/city+json", "CityJSON"),
             ("buildings.gml", "buildings-citygml", "Buildings LoD2 (CityGML 2.0, AdV profile)", "application/gml+xml", "GML"),
             ("buildings.gpkg", "buildings-gpkg", "Building footprints with attributes (GeoPackage)",
              "application/geopackage+sqlite3", "GPKG"),
             ("buildings.parquet", "buildings-geoparquet", "Building footprints with attributes (GeoParquet)",
              "application/vnd.apache.parquet", "Parquet"),
             ("changes.csv", "buildings-changes", "Changes against the official LoD2", "text/csv", "CSV")]
    for name, ds, title, media, fmt in files:
        if (d / name).exists():
            builder.add_file(d / name, f"data/{name}", dataset=ds, title=title, media_type=media, format=fmt)
    if (d / "buildings.parquet").exists():
        import geopandas as gpd

        from citymodel.release import buildings_csv

        frame = gpd.read_parquet(d / "buildings.parquet")
        buildings_csv(frame, builder.path("data/buildings.csv", dataset="buildings-csv",
                                          title="Building attributes (CSV)", media_type="text/csv", format="CSV"))
    for t_ in s.tile_ids:
        p = d / "tiles" / f"{t_}.city.jsonl"
        if p.exists():
            builder.add_file(p, f"data/tiles/{t_}.city.jsonl", dataset="buildings-cityjsonseq",
                             title="Buildings per tile (CityJSONSeq)", format="CityJSONSeq")
    tiles = pub / "tiles" / "buildings" / "tileset.json"
    if tiles.exists():
        builder.add_folder(tiles.parent, "tiles/buildings", dataset="buildings-3dtiles", entry="tileset.json",
                           title="Buildings (3D Tiles 1.1)")


def _blocking_check_results(context) -> list[dict]:
    """The latest result of every blocking asset check of the graph (a failed one stops the release)."""
    instance = context.instance
    graph = context.job_def.asset_layer.asset_graph
    out = []
    keys = list(graph.asset_check_keys)
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(keys) if keys else {}
    for key in keys:
        spec = graph.get_check_spec(key)
        record = latest.get(key)
        if not spec.blocking or record is None or record.event is None:
            continue
        evaluation = record.event.dagster_event.event_specific_data if record.event.dagster_event else None
        passed = getattr(evaluation, "passed", None)
        if passed is None:
            continue
        out.append({"name": f"{key.asset_key.to_user_string()}/{key.name}", "passed": bool(passed),
                    "blocking": True, "description": spec.description or ""})
    return out


def _release_checks(context, s: Settings) -> list[dict]:
    from citymodel.release import checks_from_quality_report

    report = s.quality_dir / "report.json"
    if not report.exists():
        return [{"name": "quality_report", "passed": False, "blocking": True,
                 "description": "no quality report: materialize quality/report first"}]
    return checks_from_quality_report(report)


@dg.asset(key=RELEASE_KEY, deps=[REPORT_KEY, TREE_TILES_KEY, POINTCLOUD_TILES_KEY, BUILDING_TILES_KEY,
                                 dg.AssetKey(["buildings", "model"]), dg.AssetKey(["analysis", "building_values"]),
                                 dg.AssetKey(["analysis", "sightlines"])], group_name="publish",
          code_version=PUBLISH_CODE_VERSION, automation_condition=dg.AutomationCondition.eager(),
          kinds={"dcat"},
          description="A versioned release (3D Tiles, open datasets, DCAT-AP catalog, SHA256SUMS, index.html); "
                      "`latest` switches only when every blocking check passed.")
def release(context: AssetExecutionContext, settings: SettingsResource) -> dg.MaterializeResult:
    from citymodel.release import ReleaseBuilder, extent_wkt_crs84, tile_index
    from citymodel.tiles3d.compose import compose_tilesets

    s = settings.load()
    pub = publish_dir(s)
    geoid = None
    builder = ReleaseBuilder(s.output_dir, keep=s.publish.keep_releases, license=s.publish.license,
                             publisher=s.publish.publisher, title=s.title or s.name,
                             spatial_wkt=extent_wkt_crs84(s.extent, s.processing_crs),
                             crs=s.processing_crs, vertical_crs=s.vertical_crs)
    with timer() as t:
        builder.begin()
        try:
            builder.add_quality_report(s.quality_dir)
            _add_buildings(builder, s, pub)
            from .analysis import add_analysis_to_release

            add_analysis_to_release(builder, s)
            trees = pub / "tiles" / "trees" / "tileset.json"
            if trees.exists():
                geoid = json.loads(trees.read_text()).get("asset", {}).get("extras", {}).get("geoid")
                builder.add_folder(trees.parent, "tiles/trees", dataset="trees-3dtiles", entry="tileset.json",
                                   title="Trees (3D Tiles 1.1)")
            pc_children = [p for t_ in s.tile_ids
                           if (p := pub / "tiles" / "pointcloud" / t_ / "tileset.json").exists()]
            if pc_children:
                pc_root = builder.path("tiles/pointcloud/tileset.json", dataset="pointcloud-3dtiles",
                                       title="Point cloud (3D Tiles 1.1, py3dtiles)", in_digest=True)
                for p in pc_children:
                    builder.add_folder(p.parent, f"tiles/pointcloud/{p.parent.name}", entry=None,
                                       dataset="pointcloud-3dtiles")
                compose_tilesets([pc_root.parent / p.parent.name / "tileset.json" for p in pc_children], pc_root)
            links = {t_: {} for t_ in s.tile_ids}
            for p in pc_children:
                links[p.parent.name]["pointcloud"] = f"tiles/pointcloud/{p.parent.name}/tileset.json"
            for t_ in s.tile_ids:
                if (s.output_dir / "buildings" / "tiles" / f"{t_}.city.jsonl").exists():
                    links[t_]["cityjsonseq"] = f"data/tiles/{t_}.city.jsonl"
            builder.write_json("data/tile_index.geojson", tile_index(s.tiles, links, crs=s.processing_crs),
                               dataset="tile-index", title="Tile index", media_type="application/geo+json",
                               format="GeoJSON")
            info = builder.finalize(_release_checks(context, s) + _blocking_check_results(context))
        except Exception:
            builder.abort(remove=False)
            raise
    meta = {"release_id": info.release_id, "unchanged": info.unchanged, "files": info.files,
            "bytes": info.bytes, "pruned": dg.MetadataValue.json(info.pruned), "seconds": t["seconds"],
            "path": dg.MetadataValue.path(str(info.path))}
    if geoid:
        meta["geoid"] = dg.MetadataValue.json(geoid)
    return dg.MaterializeResult(metadata=meta)
