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


def _release_checks(context, s: Settings) -> list[dict]:
    from citymodel.release import checks_from_quality_report

    report = s.quality_dir / "report.json"
    if not report.exists():
        return [{"name": "quality_report", "passed": False, "blocking": True,
                 "description": "no quality report: materialize quality/report first"}]
    return checks_from_quality_report(report)


@dg.asset(key=RELEASE_KEY, deps=[REPORT_KEY, TREE_TILES_KEY, POINTCLOUD_TILES_KEY], group_name="publish",
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
            links = {t_: {"pointcloud": f"tiles/pointcloud/{t_}/tileset.json"} for t_ in
                     [p.parent.name for p in pc_children]}
            builder.write_json("data/tile_index.geojson", tile_index(s.tiles, links, crs=s.processing_crs),
                               dataset="tile-index", title="Tile index", media_type="application/geo+json",
                               format="GeoJSON")
            info = builder.finalize(_release_checks(context, s))
        except Exception:
            builder.abort(remove=False)
            raise
    meta = {"release_id": info.release_id, "unchanged": info.unchanged, "files": info.files,
            "bytes": info.bytes, "pruned": dg.MetadataValue.json(info.pruned), "seconds": t["seconds"],
            "path": dg.MetadataValue.path(str(info.path))}
    if geoid:
        meta["geoid"] = dg.MetadataValue.json(geoid)
    return dg.MaterializeResult(metadata=meta)
