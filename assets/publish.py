"""Stage ``publish``: 3D Tiles and the versioned release (``releases/<id>``, ``latest``)."""

import json
import shutil
from pathlib import Path

import dagster as dg
import numpy as np
from dagster import AssetExecutionContext

from citymodel.config import Settings
from citymodel.viewer.bundle import viewer_code_version
from pipelines.partitions import TILES
from resources.settings import SettingsResource

from .common import check_status, latest_check_evaluations, timer, write_json_atomic
from .quality_report import REPORT_KEY
from .staging import DTM_KEY, POINT_CLOUD_KEY, point_cloud_paths

PUBLISH_CODE_VERSION = "2"  # "2": the QGIS project and SLD styles
#: "2": the project's own octree tiler (glTF point content) replaced py3dtiles' .pnts
POINTCLOUD_CODE_VERSION = "2"
TREE_TILES_KEY = dg.AssetKey(["publish", "tree_tiles"])
POINTCLOUD_TILES_KEY = dg.AssetKey(["publish", "pointcloud_tiles"])
RELEASE_KEY = dg.AssetKey(["publish", "release"])
BUILDING_TILES_KEY = dg.AssetKey(["publish", "building_tiles"])
ANALYSIS_TILES_KEY = dg.AssetKey(["publish", "analysis_tiles"])
#: the analysis tilesets: folder below publish/tiles (and the release's tiles/), dataset, title
ANALYSIS_TILESETS = (("solar", "solar-3dtiles", "Roof solar irradiation (3D Tiles 1.1, roofs coloured by kWh/m²·a)"),
                     ("facade_sun", "facade-sun-3dtiles", "Facade sun hours (3D Tiles 1.1, walls coloured by hours "
                                                          "of direct sun on one day)"))


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


@dg.asset(key=POINTCLOUD_TILES_KEY, deps=[POINT_CLOUD_KEY], group_name="publish", partitions_def=TILES, pool="lidar",
          code_version=POINTCLOUD_CODE_VERSION, kinds={"3dtiles"},
          description="The tile's points (without halo) as 3D Tiles 1.1 (octree of glTF points with classification "
                      "and intensity; `publish.pointcloud_tiler`), coloured by class.")
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
                                      vertical_crs=s.vertical_crs, colour="classification",
                                      tiler=s.publish.pointcloud_tiler, chunk_points=s.lidar.chunk_points)
    octree = {"content_tiles": info.n_nodes, "levels": info.depth + 1} if info.tiler == "own" else {}
    return dg.MaterializeResult(metadata={
        "points": info.n_points, "tiler": info.tiler, **octree,
        "points_per_second": round(info.n_points / max(t["seconds"], 1e-9)),
        "classes": dg.MetadataValue.json(info.classes), "bytes": info.bytes_total,
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


def _write_cityjson_with_analysis(builder, s: Settings) -> None:
    """``data/buildings.city.json``: the city model with the analysis values of each building as
    CityJSON attributes (sun hours, DIN EN 17037, solar yield, noise, flood depth, ...)."""
    from citymodel.cityjson import write_cityjson

    from .analysis import building_values_by_id
    from .buildings import epsg_code, load_tile_buildings

    buildings = load_tile_buildings(s, s.tile_ids)
    if not buildings:
        return
    values = building_values_by_id(s)
    for b in buildings:
        b.attributes.update(values.get(b.id, {}))
    write_cityjson(builder.path("data/buildings.city.json", dataset="buildings-cityjson",
                                title="Buildings LoD2 with analysis values (CityJSON 2.0)",
                                media_type="application/city+json", format="CityJSON"),
                   buildings, title=s.title or s.name, horizontal_epsg=epsg_code(s.processing_crs),
                   vertical_epsg=epsg_code(s.vertical_crs))


# ============================================================================ analysis tiles
def facade_tiles_day(settings: Settings) -> str:
    """The day ('MM-DD') of the facade sun-hours tileset: the DIN EN 17037 date where it is one of
    ``analysis.sun.days`` (21 March by default), else the first configured day."""
    sun = settings.analysis.sun
    return sun.din17037_date if sun.din17037_date in sun.days else sun.days[0]


def analysis_records(settings: Settings) -> list[dict]:
    """Records for the 3D Tiles writer with the solids the analysis layers used.

    One record per building; its solid is the highest LoD of the building and of each of its parts,
    surfaces concatenated in that order (``citymodel.citydata.building_solids``, as the solar and
    sun-hours tiles saw them). So the ``surface_index`` of ``analysis/sun_hours`` (all surfaces of
    the building counted) is the position in ``record["solid"].surfaces``, and the
    ``surface_index`` of ``analysis/solar`` (RoofSurfaces counted) is the ordinal of a RoofSurface
    among them. Attributes and validity as in :func:`building_records`.
    """
    from citymodel.geometry3d import Solid

    from citymodel.citydata import building_solids
    from .buildings import load_building_table, load_tile_buildings

    table = load_building_table(settings)
    attrs = {str(r["building_id"]): r for r in table.drop(columns="geometry").to_dict("records")} if len(table) else {}
    records = []
    for b in load_tile_buildings(settings, settings.tile_ids):
        solids = building_solids([b]).get(str(b.id))
        if not solids:
            continue
        a = dict(attrs.get(str(b.id), b.attributes))
        codes = str(a.get("validity_codes") or "").strip("[] ")
        records.append({"id": str(b.id), "solid": Solid([srf for sol in solids for srf in sol.surfaces]),
                        "attributes": a, "valid": codes == ""})
    return records


def surface_values(records: list[dict], values: dict[tuple[str, int], float], kind: str,
                   count_kind_only: bool) -> tuple[dict[str, np.ndarray], int]:
    """Per record, the value of each surface (NaN where none or another kind).

    ``values`` maps ``(building_id, index)`` to a value; ``index`` counts the surfaces of ``kind``
    only (``count_kind_only``: solar's RoofSurface numbering) or all surfaces (sun hours' walls).
    Returns the arrays by building id and how many ``values`` matched no surface of that kind.
    """
    out: dict[str, np.ndarray] = {}
    matched = 0
    for r in records:
        kinds = np.array([srf.kind for srf in r["solid"].surfaces])
        is_kind = kinds == kind
        index = np.cumsum(is_kind) - 1 if count_kind_only else np.arange(len(kinds))
        v = np.full(len(kinds), np.nan)
        for j in np.flatnonzero(is_kind):
            x = values.get((r["id"], int(index[j])))
            if x is not None:
                v[j] = x
                matched += 1
        out[r["id"]] = v
    return out, len(values) - matched


def _ramp_picture(ramp, title: str) -> str:
    from matplotlib.colors import LinearSegmentedColormap

    from .common import new_figure, png_markdown

    lo, hi = ramp.minimum, ramp.maximum
    cmap = LinearSegmentedColormap.from_list(
        "ramp", [((v - lo) / (hi - lo), np.array(c) / 255.0) for v, c in zip(ramp.values, ramp.colors)])
    fig, ax = new_figure(4, 0.9)
    ax.imshow(np.linspace(0, 1, 256)[None, :], aspect="auto", cmap=cmap, extent=(lo, hi, 0, 1))
    ax.set_yticks([])
    ax.set_xticks(ramp.values)
    ax.set_xlabel(f"{ramp.quantity} ({ramp.unit})", fontsize=8)
    ax.set_title(title, fontsize=9)
    return png_markdown(fig)


@dg.asset(key=ANALYSIS_TILES_KEY, deps=[dg.AssetKey(["analysis", "solar"]), dg.AssetKey(["analysis", "sun_hours"]),
                                        dg.AssetKey(["buildings", "model"]), dg.AssetKey(["analysis", "building_values"])],
          group_name="publish", code_version=PUBLISH_CODE_VERSION, automation_condition=dg.AutomationCondition.eager(),
          kinds={"3dtiles"},
          description="The 3D analysis layers as 3D Tiles 1.1 (buildings with the building tiles' metadata): "
                      "roofs coloured by annual solar irradiation (kWh/m²·a, tiles/solar) and walls coloured by "
                      "hours of direct sun on one day (tiles/facade_sun); the colour legend in asset.extras and "
                      "as tileset metadata; surfaces without a value neutral grey.")
def analysis_tiles(context: AssetExecutionContext, settings: SettingsResource) -> dg.MaterializeResult:
    from citymodel.tiles3d import write_building_tiles
    from citymodel.tiles3d.colormap import solar_ramp, sun_hours_ramp

    from citymodel.analysis.parameters import solar_climate_text, sun_path

    from .analysis import building_value_properties, building_values_by_id, day_label, read_tiles

    s = settings.load()
    base = publish_dir(s) / "tiles"
    meta: dict = {}
    with timer() as t:
        records = analysis_records(s)
        values = building_values_by_id(s)
        for r in records:
            r["attributes"].update(values.get(r["id"], {}))
        common = dict(crs=s.processing_crs, vertical_crs=s.vertical_crs, extent=s.extent,
                      properties=building_value_properties(s))
        # roofs: annual irradiation per RoofSurface
        roofs = read_tiles(s, "solar", "roofs")
        if len(roofs):
            ok = roofs["suitability_ratio"].to_numpy(float) > 0
            ratio_ref = roofs["irradiation_kwh_m2a"].to_numpy(float)[ok] / roofs["suitability_ratio"].to_numpy(float)[ok]
            reference = float(np.median(ratio_ref)) if len(ratio_ref) else float(roofs["unshaded_kwh_m2a"].max())
        else:
            reference = float("nan")
        climates = sorted(set(roofs["climate"].astype(str))) if "climate" in roofs else []
        climate = solar_climate_text(s, climates[0] if len(climates) == 1 else "mixed: " + ", ".join(climates))
        ramp = solar_ramp(reference if np.isfinite(reference) and reference > 0 else 1000.0, **climate)
        roof_values = {(str(b), int(i)): float(v) for b, i, v in
                       zip(roofs.get("building_id", []), roofs.get("surface_index", []),
                           roofs.get("irradiation_kwh_m2a", []))}
        by_id, unmatched_roofs = surface_values(records, roof_values, "RoofSurface", count_kind_only=True)
        colours = {k: ramp.colors_of(v) for k, v in by_id.items()}
        solar_info = write_building_tiles(
            records, base / "solar", legend=ramp, extras={"layer": "solar"}, **common,
            surface_colors=lambda rec, j, kind: colours[rec["id"]][j] if kind == "RoofSurface" else None)
        n_roofs = sum(int(np.sum([s_.kind == "RoofSurface" for s_ in r["solid"].surfaces])) for r in records)
        n_roof_values = sum(int(np.isfinite(v).sum()) for v in by_id.values())
        meta["solar_legend"] = dg.MetadataValue.json(ramp.legend())
        meta["solar_climate"] = climate["climate_label"]
        meta["solar_legend_picture"] = _ramp_picture(ramp, "roofs: annual irradiation")
        # walls: sun hours on one day, mean over the wall's storeys
        day = facade_tiles_day(s)
        sun = sun_path(s, [day], s.analysis.sun.time_step_min)
        date = sun.dates[0]
        day_length_h = float(sun.above_horizon[sun.day_mask(date)].sum() * sun.step_h)
        fr = sun_hours_ramp(day_length_h, date.isoformat())
        walls = read_tiles(s, "sun_hours", "facades")
        col = f"sun_h_mean_{day_label(day)}"
        wall_values: dict[tuple[str, int], float] = {}
        if len(walls) and col in walls:
            g = walls.groupby(["building_id", "surface_index"])[col].mean()
            wall_values = {(str(b), int(i)): float(v) for (b, i), v in g.items()}
        wby_id, unmatched_walls = surface_values(records, wall_values, "WallSurface", count_kind_only=False)
        wcolours = {k: fr.colors_of(v) for k, v in wby_id.items()}
        facade_info = write_building_tiles(
            records, base / "facade_sun", legend=fr, extras={"layer": "facade_sun", "day": date.isoformat()},
            **common, surface_colors=lambda rec, j, kind: wcolours[rec["id"]][j] if kind == "WallSurface" else None)
        n_walls = sum(int(np.sum([s_.kind == "WallSurface" for s_ in r["solid"].surfaces])) for r in records)
        n_wall_values = sum(int(np.isfinite(v).sum()) for v in wby_id.values())
        meta["facade_legend"] = dg.MetadataValue.json(fr.legend())
        meta["facade_legend_picture"] = _ramp_picture(fr, f"walls: sun hours on {date.isoformat()}")
    meta.update({
        "buildings": solar_info.n_features, "skipped": dg.MetadataValue.json(solar_info.skipped[:50]),
        "roof_surfaces": n_roofs, "roof_surfaces_with_value": n_roof_values,
        "solar_values_without_surface": unmatched_roofs, "wall_surfaces": n_walls,
        "wall_surfaces_with_value": n_wall_values, "sun_values_without_surface": unmatched_walls,
        "facade_day": date.isoformat(), "content_tiles": solar_info.n_content_tiles + facade_info.n_content_tiles,
        "bytes": solar_info.bytes_total + facade_info.bytes_total, "geoid": dg.MetadataValue.json(solar_info.geoid),
        "seconds": t["seconds"], "solar_tileset": dg.MetadataValue.path(str(solar_info.tileset_path)),
        "facade_sun_tileset": dg.MetadataValue.path(str(facade_info.tileset_path))})
    return dg.MaterializeResult(metadata=meta)


def _add_buildings(builder, s: Settings, pub: Path) -> None:
    from .buildings import buildings_dir

    d = buildings_dir(s)
    _write_cityjson_with_analysis(builder, s)
    files = [
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


def _blocking_check_results(context, graph=None) -> list[dict]:
    """The latest result of every blocking asset check of the assets the release is made from, per
    tile for tile assets: a failed one stops the release (a later passing tile must not hide an
    earlier failing one). ``graph`` is the whole asset graph (:func:`pipelines.run_state.full_asset_graph`):
    the run's own job knows only the assets it selected."""
    from pipelines.run_state import city_asset_keys

    graph = graph if graph is not None else context.job_def.asset_layer.asset_graph
    upstream = set(city_asset_keys(graph, RELEASE_KEY)) | {RELEASE_KEY}
    out = []
    for key in graph.asset_check_keys:
        spec = graph.get_check_spec(key)
        if not spec.blocking or key.asset_key not in upstream:
            continue
        latest = latest_check_evaluations(context.instance, key)
        for partition, evaluation in sorted(latest.items(), key=lambda kv: str(kv[0])):
            name = f"{key.asset_key.to_user_string()}/{key.name}" + (f"[{partition}]" if partition else "")
            out.append({"name": name, "passed": bool(evaluation.passed), "blocking": True,
                        "description": spec.description or "",
                        "status": check_status(evaluation.passed, getattr(evaluation, "metadata", None))})
    return out


#: the assets each release dataset is made from (a dataset has a gap when one of their parts has one)
DATASET_ASSETS: dict[str, tuple[str, ...]] = {
    "quality-report": ("quality/report",),
    "buildings-cityjson": ("buildings/model", "analysis/building_values"),
    "buildings-citygml": ("buildings/model",), "buildings-gpkg": ("buildings/model",),
    "buildings-geoparquet": ("buildings/model",), "buildings-csv": ("buildings/model",),
    "buildings-changes": ("buildings/model",), "buildings-cityjsonseq": ("buildings/lod2",),
    "buildings-3dtiles": ("publish/building_tiles",), "solar-3dtiles": ("publish/analysis_tiles",),
    "facade-sun-3dtiles": ("publish/analysis_tiles",), "trees-3dtiles": ("publish/tree_tiles",),
    "pointcloud-3dtiles": ("publish/pointcloud_tiles",), "tile-index": ("buildings/lod2", "publish/pointcloud_tiles"),
    "analysis-building-values": ("analysis/building_values",),
    **{f"analysis-{layer}": (f"analysis/{layer}",)
       for layer in ("sun_hours", "solar", "noise", "flood", "traffic_change", "sightlines")},
}


def release_counts(s: Settings) -> tuple[int, int]:
    """Buildings of the city model and LiDAR points of the configured tiles (staged statistics)."""
    import pyarrow.parquet as pq

    from .buildings import buildings_dir

    table = buildings_dir(s) / "buildings.parquet"
    buildings = pq.read_metadata(table).num_rows if table.exists() else 0
    points = 0
    for t_ in s.tile_ids:
        stats = point_cloud_paths(s, t_)[2]
        if stats.exists():
            points += int(json.loads(stats.read_text(encoding="utf-8")).get("point_count") or 0)
    return buildings, points


def release_contents(context, s: Settings, graph=None):
    """What a release made now would hold, part by part (:mod:`citymodel.release.contents`), from the
    instance's records (:mod:`pipelines.run_state`): this run's refresh, the configured tiles, the
    outputs the deployment does not compute, the buildings and points that go in."""
    from citymodel.release import latest_release
    from citymodel.release.contents import ReleaseContents
    from citymodel.release.layout import read_manifest
    from citymodel.release.provenance import parse_iso
    from citymodel.requirements import not_computed, not_configured_assets
    from pipelines.run_state import REFRESH_TAG, city_asset_keys, full_asset_graph, part_states

    graph = graph if graph is not None else full_asset_graph(context, s)
    keys = city_asset_keys(graph, RELEASE_KEY)
    refresh_id = context.run.tags.get(REFRESH_TAG)
    current = latest_release(s.output_dir)
    since = parse_iso(read_manifest(current).get("created")) if current is not None else None
    parts = part_states(context.instance, graph, s.tile_ids, keys, refresh_id=refresh_id, since=since,
                        current_run_id=context.run_id, not_configured=not_configured_assets(s))
    buildings, points = release_counts(s)
    return ReleaseContents(parts, not_computed(s), refresh_id, s.tile_ids, buildings, points, DATASET_ASSETS)


def publish_policy(s: Settings, keys):
    """The deployment's :class:`~citymodel.release.contents.PublishPolicy`; a name in
    ``publish.allow_carry_over`` that is no asset is a configuration error."""
    from citymodel.errors import ConfigError
    from citymodel.release.contents import PublishPolicy

    names = {k.to_user_string() for k in keys} | {k.path[-1] for k in keys}
    unknown = [n for n in s.publish.allow_carry_over if n not in names]
    if unknown:
        raise ConfigError(f"publish.allow_carry_over names {unknown}, which are no assets of the city. Fix: use "
                          f"asset names such as {sorted(k.path[-1] for k in keys)[:8]}")
    return PublishPolicy.from_settings(s.publish)


def release_size_estimate(s: Settings) -> int:
    """Bytes a new release will take on the disk of ``releases/``: the building and analysis files
    and the quality report it copies or merges; the 3D Tiles folders only where they cannot be
    hard-linked (another file system)."""
    import os

    from citymodel.release.builder import folder_bytes

    from .buildings import buildings_dir

    total = folder_bytes(buildings_dir(s)) + folder_bytes(s.output_dir / "analysis") + folder_bytes(s.quality_dir)
    tiles = publish_dir(s) / "tiles"
    if tiles.exists():
        releases = s.output_dir / "releases"
        here = releases if releases.exists() else s.output_dir
        if os.stat(tiles).st_dev != os.stat(here).st_dev:
            total += folder_bytes(tiles)
    return total + 1_000_000  # catalog, index, sums, tile index


def _release_checks(context, s: Settings) -> list[dict]:
    from citymodel.release import checks_from_quality_report

    report = s.quality_dir / "report.json"
    if not report.exists():
        return [{"name": "quality_report", "passed": False, "blocking": True,
                 "description": "no quality report: materialize quality/report first"}]
    return checks_from_quality_report(report)


def _add_qgis_project(builder, s: Settings) -> list[str]:
    """The QGIS project (``qgis/<name>.qgz``) and the SLD styles (``styles/*.sld``) of the release's
    2D layers, with the staged trees as ``data/trees.gpkg`` (:mod:`citymodel.release.qgis`)."""
    from citymodel.release.qgis import add_qgis_project

    trees_path = s.staging_dir / "trees.parquet"
    trees = None
    if trees_path.exists():
        import geopandas as gpd

        trees = gpd.read_parquet(trees_path)
    return add_qgis_project(builder, name=s.name, crs=s.processing_crs, extent=tuple(s.extent),
                            title=s.title or s.name, days=list(s.analysis.sun.days), trees=trees)


def release_facts(s: Settings) -> dict:
    """What the datasets' titles and descriptions say about the content: the place, counts of
    buildings, trees and tiles, the sun-hours days and the flood scenarios
    (:func:`citymodel.release.titles.dataset_texts`)."""
    import pyarrow.parquet as pq

    from .buildings import buildings_dir

    def rows(path: Path) -> int | None:
        return pq.ParquetFile(path).metadata.num_rows if path.exists() else None

    facts: dict = {"place": s.title or s.name, "tiles": len(s.tile_ids), "days": list(s.analysis.sun.days),
                   "buildings": rows(buildings_dir(s) / "buildings.parquet"),
                   "trees": rows(s.staging_dir / "trees.parquet")}
    zones = s.staging_dir / "flood_zones.parquet"
    if zones.exists():
        import pandas as pd

        facts["scenarios"] = sorted(pd.read_parquet(zones, columns=["scenario"])["scenario"].dropna().astype(str).unique())
    return {k: v for k, v in facts.items() if v is not None}


@dg.asset(key=RELEASE_KEY, deps=[REPORT_KEY, TREE_TILES_KEY, POINTCLOUD_TILES_KEY, BUILDING_TILES_KEY, ANALYSIS_TILES_KEY,
                                 dg.AssetKey(["buildings", "model"]), dg.AssetKey(["analysis", "building_values"]),
                                 dg.AssetKey(["analysis", "sightlines"])], group_name="publish",
          code_version=f"{PUBLISH_CODE_VERSION}+viewer-{viewer_code_version()}",
          automation_condition=dg.AutomationCondition.eager(), kinds={"dcat"},
          description="A versioned release (3D Tiles, open datasets, DCAT-AP catalog, SHA256SUMS, index.html, the "
                      "offline 3D viewer with its ground overlays, terrain and portal configurations); "
                      "`latest` switches only when every blocking check passed.")
def release(context: AssetExecutionContext, settings: SettingsResource) -> dg.MaterializeResult:
    from citymodel.errors import ReleaseError, dataset_error
    from citymodel.release import ReleaseBuilder, extent_wkt_crs84, latest_release, tile_index
    from citymodel.tiles3d.compose import compose_tilesets
    from pipelines.run_state import city_asset_keys, full_asset_graph

    s = settings.load()
    pub = publish_dir(s)
    geoid = None
    # what the release would hold: refused before anything is written unless every part is current
    # or its gap is allowed by the deployment (publish.allow_carry_over, publish.allow_gaps)
    graph = full_asset_graph(context, s)
    contents = release_contents(context, s, graph)
    policy = publish_policy(s, city_asset_keys(graph, RELEASE_KEY))
    refusals = contents.refusals(policy)
    if refusals:
        cur = latest_release(s.output_dir)
        raise dataset_error(
            ReleaseError, "release",
            f"not published: {len(refusals)} reason(s): " + "; ".join(refusals)
            + f". Nothing was written; latest still points to {cur.name if cur is not None else '(none)'}",
            "fix the first failure named above (its message names the dataset, record and fix) and run "
            "`citymodel run` again; to publish anyway, allow the gap in the deployment file")
    builder = ReleaseBuilder(s.output_dir, keep=s.publish.keep_releases, license=s.publish.license,
                             publisher=s.publish.publisher, contact=s.publish.contact, title=s.title or s.name,
                             spatial_wkt=extent_wkt_crs84(s.extent, s.processing_crs),
                             crs=s.processing_crs, vertical_crs=s.vertical_crs, facts=release_facts(s),
                             min_free_bytes=int(s.publish.min_free_mb * 1e6))
    with timer() as t:
        builder.begin(expected_bytes=release_size_estimate(s))
        try:
            builder.add_quality_report(s.quality_dir)
            _add_buildings(builder, s, pub)
            from .analysis import add_analysis_to_release

            add_analysis_to_release(builder, s)
            for name, ds, title in ANALYSIS_TILESETS:
                ts_path = pub / "tiles" / name / "tileset.json"
                if ts_path.exists():
                    builder.add_folder(ts_path.parent, f"tiles/{name}", dataset=ds, entry="tileset.json", title=title)
                    legend = json.loads(ts_path.read_text()).get("asset", {}).get("extras", {}).get("legend", {})
                    if legend.get("climate_label"):
                        builder.dataset(ds, title, description=f"{title}. Klima: {legend.get('climate_label_de', '')}."
                                        f" — Climate: {legend['climate_label']}.")
            trees = pub / "tiles" / "trees" / "tileset.json"
            if trees.exists():
                geoid = json.loads(trees.read_text()).get("asset", {}).get("extras", {}).get("geoid")
                builder.add_folder(trees.parent, "tiles/trees", dataset="trees-3dtiles", entry="tileset.json",
                                   title="Trees (3D Tiles 1.1)")
            pc_children = [p for t_ in s.tile_ids
                           if (p := pub / "tiles" / "pointcloud" / t_ / "tileset.json").exists()]
            if pc_children:
                pc_root = builder.path("tiles/pointcloud/tileset.json", dataset="pointcloud-3dtiles",
                                       title="Point cloud (3D Tiles 1.1)", in_digest=True)
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
            from citymodel.variants.publish import release_listing

            listing = release_listing(s)
            if listing is not None:  # not in the digest: re-assessing a variant must not make a new city release
                builder.write_json("data/variants.json", listing, indent=1, dataset="planning-variants",
                                   title="Planungsvarianten / Planning variants", media_type="application/json",
                                   format="JSON", in_digest=False)
            _add_qgis_project(builder, s)
            from .viewer import add_viewer_to_release

            viewer, viewer_note = add_viewer_to_release(builder, s)
            info = builder.finalize(_release_checks(context, s) + _blocking_check_results(context, graph),
                                    contents=contents, policy=policy)
        except Exception as exc:
            error = builder.abort(remove=False, error=exc)
            if error is exc:
                raise
            raise error from exc
    counts = contents.counts()
    meta = {"release_id": info.release_id, "unchanged": info.unchanged, "files": info.files,
            "bytes": info.bytes, "pruned": dg.MetadataValue.json(info.pruned), "seconds": t["seconds"],
            "path": dg.MetadataValue.path(str(info.path)), "contents": contents.status,
            "parts": dg.MetadataValue.json(counts), "buildings": contents.buildings, "points": contents.points,
            "gaps": dg.MetadataValue.json(contents.lines("en")[1:]),
            "not_computed": dg.MetadataValue.json([n.text_en for n in contents.not_computed])}
    if geoid:
        meta["geoid"] = dg.MetadataValue.json(geoid)
    if viewer is not None:
        meta.update({"viewer_bytes": viewer.bytes_viewer, "viewer_cesium_bytes": viewer.bytes_cesium,
                     "viewer_colourings": dg.MetadataValue.json(viewer.colourings),
                     "viewer_overlays": dg.MetadataValue.json([o["name"] for o in viewer.overlays]),
                     "viewer_notes": dg.MetadataValue.json(viewer.notes)})
    else:
        meta["viewer"] = f"not published: {viewer_note}"
    return dg.MaterializeResult(metadata=meta)
