"""Stage ``variants``: planning variants modelled, analysed, compared, tiled and published.

Partitioned by variant version (dynamic partitions ``variants``, keys ``<id>.v<version>``); run by the
``variant_assess`` job (the inbox sensor, ``citymodel variant submit --assess``, ``citymodel run`` and the
re-assessment sensor request it). The city's refresh never includes this group: a failing variant never
blocks the city's release, and the city never waits for variants.

``variants/model``
    The variant city (:class:`citymodel.variants.model.VariantStore`): new and modified buildings by
    the parametric LoD2 builder, validated; CityJSON 2.0 and CityGML 2.0 of them.
``variants/analysis``
    Every analysis layer of the city, recomputed inside the layer's impact area only
    (:func:`citymodel.variants.assess.assess_variant`), saved in the city's layout.
``variants/comparison``
    What changes for whom (:mod:`citymodel.variants.compare`): JSON, GeoJSON, CSV, GeoTIFF, the page.
``variants/tiles``
    3D Tiles of the buildings that differ from the base release (added, modified, removed as
    ghosts, affected) with their values and differences.
``variants/publication``
    ``variants/<id>/<version>/`` published atomically (its own DCAT-AP catalog and SHA256SUMS,
    naming the base release), and ``variants/index.json``.
"""

import json
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
from dagster import AssetExecutionContext

from citymodel.config import Settings
from pipelines.partitions import VARIANTS
from resources.settings import SettingsResource

from .common import json_metadata, timer, write_geoparquet_atomic

GROUP = "variants"
CODE_VERSION = "1"
MODEL_KEY = dg.AssetKey(["variants", "model"])
ANALYSIS_KEY = dg.AssetKey(["variants", "analysis"])
COMPARISON_KEY = dg.AssetKey(["variants", "comparison"])
TILES_KEY = dg.AssetKey(["variants", "tiles"])
PUBLICATION_KEY = dg.AssetKey(["variants", "publication"])
CITY_RELEASE_KEY = dg.AssetKey(["publish", "release"])


def work_dir(settings: Settings, key: str) -> Path:
    """Where a variant version's assets write before publication."""
    from citymodel.variants.registry import variants_dir

    return variants_dir(settings) / "work" / key


def _store(settings: Settings, key: str):
    from citymodel.store import CityStore
    from citymodel.variants import registry
    from citymodel.variants.model import VariantStore

    vid, version = registry.parse_key(key)
    return VariantStore(CityStore(settings), registry.load(settings, vid, version))


def base_release_id(settings: Settings) -> str:
    """The city release a variant is compared with (the current one)."""
    from citymodel.release import latest_release

    cur = latest_release(settings.output_dir)
    if cur is None:
        raise dg.Failure("no city release to compare the variant with. Fix: run the city refresh first "
                         "(citymodel run), then assess the variant")
    return cur.name


# ===================================================================================== model
@dg.asset(key=MODEL_KEY, deps=[dg.AssetKey(["buildings", "model"]), CITY_RELEASE_KEY], partitions_def=VARIANTS,
          group_name=GROUP, code_version=CODE_VERSION, kinds={"cityjson", "citygml"},
          check_specs=[dg.AssetCheckSpec("new_solids_valid", asset=MODEL_KEY, blocking=True,
                                         description="every new or modified building is a valid solid "
                                                     "(val3dity rules)")],
          description="The variant city: new and modified buildings by the parametric LoD2 builder (same roof "
                      "models and validation as the reconstruction, method lod2_parametric), removed ones gone; "
                      "CityJSON 2.0 and CityGML 2.0 of the variant's buildings.")
def variant_model(context: AssetExecutionContext, settings: SettingsResource) -> dg.MaterializeResult:
    from citymodel.cityjson import write_cityjson
    from citymodel.citygml import write_citygml

    from .buildings import epsg_code, citygml_records

    s = settings.load()
    key = context.partition_key
    out = work_dir(s, key) / "model"
    with timer() as t:
        vs = _store(s, key)
        built = vs.built
        records = [b.record for b in built.values()]
        write_cityjson(out / "variant.city.json", records, title=f"{vs.variant.meta.title} (variant {key})",
                       horizontal_epsg=epsg_code(s.processing_crs), vertical_epsg=epsg_code(s.vertical_crs))
        write_citygml(citygml_records(records), out / "variant.gml", crs=s.processing_crs,
                      vertical_crs=s.vertical_crs, creation_date=vs.variant.meta.created[:10])
        table = vs.changed_buildings.table
        from citymodel.release import write_geoparquet

        write_geoparquet(table, out / "buildings.parquet")
    bad = {k: b.row["validity_codes"] for k, b in built.items() if b.row["validity_codes"]}
    notes = {k: b.note for k, b in built.items() if b.note}
    meta = {"variant": key, "title": vs.variant.meta.title, "changes": json_metadata(vs.variant.summary()),
            "built": len(built), "removed": json_metadata(vs.removed_ids), "notes": json_metadata(notes),
            "seconds": t["seconds"], "path": dg.MetadataValue.path(str(out))}
    return dg.MaterializeResult(metadata=meta, check_results=[
        dg.AssetCheckResult(asset_key=MODEL_KEY, check_name="new_solids_valid", passed=not bad,
                            metadata={"invalid": json_metadata(bad)})])


# =================================================================================== analysis
@dg.asset(key=ANALYSIS_KEY, deps=[MODEL_KEY], partitions_def=VARIANTS, group_name=GROUP, code_version=CODE_VERSION,
          kinds={"geotiff", "geoparquet"},
          check_specs=[dg.AssetCheckSpec("impact_recomputed_only", asset=ANALYSIS_KEY, blocking=False,
                                         description="only the impact areas were recomputed (share of the city's "
                                                     "analysis work below 1 for at least one layer)")],
          description="Every analysis layer of the city recomputed for the variant inside the layer's impact area "
                      "(shadow reach of the changed heights at the lowest analysed sun, noise behind changed "
                      "screens and near changed roads, sight lines crossing changes, flood of new buildings); "
                      "the city's results elsewhere.")
def variant_analysis(context: AssetExecutionContext, settings: SettingsResource) -> dg.MaterializeResult:
    from citymodel.variants.assess import assess_variant
    from citymodel.variants.storage import save_analysis

    s = settings.load()
    key = context.partition_key
    root = work_dir(s, key) / "analysis"
    with timer() as t:
        vs = _store(s, key)
        analysis = assess_variant(vs)
        save_analysis(analysis, s, root)
    share = analysis.work_share()
    meta = {"variant": key, "work_share": json_metadata({k: round(v, 4) for k, v in share.items()}),
            "impact": json_metadata(analysis.impact.summary() if analysis.impact else {}),
            "seconds_per_layer": json_metadata({k: round(v, 2) for k, v in analysis.seconds.items()}),
            "seconds": t["seconds"]}
    return dg.MaterializeResult(metadata=meta, check_results=[
        dg.AssetCheckResult(asset_key=ANALYSIS_KEY, check_name="impact_recomputed_only",
                            passed=any(v < 1.0 for k, v in share.items() if k != "all"),
                            severity=dg.AssetCheckSeverity.WARN, metadata={"work_share": json_metadata(share)})])


def _parameters(s: Settings) -> dict:
    a = s.analysis
    return {"sun": a.sun.model_dump(), "solar": a.solar.model_dump(), "noise": a.noise.model_dump(),
            "flood": a.flood.model_dump(), "sightlines": a.sightlines.model_dump(),
            "storey_height_m": a.storey_height_m, "scene_margin_m": a.scene_margin_m, "year": a.year,
            "parametric_builder": "citymodel.lod2.build_parametric (eave = storeys × storey height; pitched "
                                  "roofs without a ridge height: 35°, shed 15°)"}


# ================================================================================= comparison
@dg.asset(key=COMPARISON_KEY, deps=[ANALYSIS_KEY], partitions_def=VARIANTS, group_name=GROUP,
          code_version=CODE_VERSION, kinds={"geojson", "csv", "html"},
          description="What the variant changes for whom: per building, facade and roof (sun hours, DIN EN 17037, "
                      "irradiation, noise, residents per band, sight lines, flood), difference rasters and a summary; "
                      "JSON, GeoJSON (WGS84, for CONSUL and DIPAS), CSV, GeoTIFF and a German/English page.")
def variant_comparison(context: AssetExecutionContext, settings: SettingsResource) -> dg.MaterializeResult:
    from citymodel.variants.compare import compare
    from citymodel.variants.outputs import write_comparison
    from citymodel.variants.storage import load_analysis

    s = settings.load()
    key = context.partition_key
    wd = work_dir(s, key)
    with timer() as t:
        vs = _store(s, key)
        analysis = load_analysis(s, wd / "analysis")
        comp = compare(vs, analysis)
        m = vs.variant.meta
        meta_v = {"id": m.id, "version": vs.variant.version, "title": m.title, "description": m.description,
                  "author_role": m.author_role, "created": m.created,
                  "parent": {"id": m.parent_id, "version": m.parent_version} if m.parent_id else None}
        # the page is read as variants/<id>/<v>/latest/comparison/ (variants/index.json links it so);
        # the viewer's URL state names a variant as <id>@<version>
        viewer = f"../../../../../latest/viewer/index.html#variant={m.id}@{vs.variant.version}"
        written = write_comparison(wd / "comparison", comp, vs, analysis, base_release=base_release_id(s),
                                   variant_meta=meta_v, viewer_link=viewer, parameters=_parameters(s))
        write_geoparquet_atomic(comp.buildings.drop(columns="geometry"), wd / "comparison_buildings.parquet")
    items = [i for i in comp.summary["items"] if not (isinstance(i["value"], (int, float)) and i["value"] == 0)]
    return dg.MaterializeResult(metadata={
        "variant": key, "summary": dg.MetadataValue.md("\n".join(f"- {i['text_de']}" for i in items) or "- keine Änderung"),
        "files": len(written), "seconds": t["seconds"], "page": dg.MetadataValue.path(str(wd / "comparison" / "index.html"))})


# ====================================================================================== tiles
@dg.asset(key=TILES_KEY, deps=[COMPARISON_KEY], partitions_def=VARIANTS, group_name=GROUP, code_version=CODE_VERSION,
          kinds={"3dtiles"},
          description="3D Tiles 1.1 of the buildings that differ from the base release: added, modified, removed (as "
                      "ghosts) and affected, with the analysis values and their differences (variant − base) and "
                      "variant_status as metadata.")
def variant_tiles(context: AssetExecutionContext, settings: SettingsResource) -> dg.MaterializeResult:
    from citymodel.geometry3d import Solid
    from citymodel.tiles3d import write_building_tiles
    from citymodel.tiles3d.glb import PropertySpec

    from .analysis.building_values import building_value_columns, building_value_properties, camel, gather_building_values
    from .analysis.files import building_values_path

    s = settings.load()
    key = context.partition_key
    wd = work_dir(s, key)
    with timer() as t:
        vs = _store(s, key)
        status = pd.read_parquet(wd / "comparison_buildings.parquet")[["building_id", "variant_status"]]
        status = dict(zip(status["building_id"].astype(str), status["variant_status"]))
        shown = {i for i, st in status.items() if st != "unchanged"}
        after = gather_building_values(s, root=wd / "analysis", table=vs.building_table())
        after = after.set_index("building_id")
        before = pd.read_parquet(building_values_path(s)).set_index("building_id") \
            if building_values_path(s).exists() else pd.DataFrame()
        cols = building_value_columns(s)
        num = [c for c, typ, _, _ in cols if typ != "STRING"]
        records = []
        table_v = {str(r["building_id"]): r for r in vs.building_table().drop(columns="geometry").to_dict("records")}
        table_b = {str(r["building_id"]): r for r in vs.base.building_table().drop(columns="geometry").to_dict("records")}
        recs_v = vs.buildings().select(sorted(shown)).records()
        recs_b = vs.base.buildings().select(sorted(vs.removed_ids)).records()
        for bid in sorted(shown):
            rec = recs_v.get(bid) or recs_b.get(bid)
            if rec is None:
                continue
            solids = [sol for obj in [rec, *rec.parts] for sol in obj.solids.values()]
            attrs = dict(table_v.get(bid) or table_b.get(bid) or {})
            vals = after.loc[bid].to_dict() if bid in after.index else {}
            attrs.update({k: v for k, v in vals.items() if k in {c for c, *_ in cols}})
            attrs["variant_status"] = status[bid]
            for c in num:
                a_ = vals.get(c, np.nan) if status[bid] != "removed" else np.nan
                b_ = before.loc[bid, c] if (bid in before.index and c in before) else np.nan
                try:
                    attrs[f"diff_{c}"] = float(a_) - float(b_)
                except (TypeError, ValueError):
                    attrs[f"diff_{c}"] = np.nan
            records.append({"id": bid, "solid": Solid([srf for sol in solids for srf in sol.surfaces]),
                            "attributes": attrs, "valid": True})
        props = building_value_properties(s) + [
            PropertySpec("variantStatus", "STRING", None, "", ("variant_status",),
                         "added | modified | removed | affected")] + [
            PropertySpec(camel(f"diff_{c}"), "SCALAR", "FLOAT32", -9999.0, (f"diff_{c}",),
                         f"variant − base release of {c}") for c in num]
        info = write_building_tiles(records, wd / "tiles" / "buildings", crs=s.processing_crs,
                                    vertical_crs=s.vertical_crs, extent=s.extent, properties=props,
                                    extras={"variant": key, "base_release": base_release_id(s)})
    return dg.MaterializeResult(metadata={
        "variant": key, "buildings": info.n_features, "by_status": json_metadata(pd.Series(
            [status[r["id"]] for r in records]).value_counts().to_dict() if records else {}),
        "bytes": info.bytes_total, "seconds": t["seconds"], "tileset": dg.MetadataValue.path(str(info.tileset_path))})


# ================================================================================ publication
def _camera(vs, s: Settings) -> dict:
    from pyproj import Transformer

    geoms = [b.row["geometry"] for b in vs.built.values()]
    geoms += list(vs.base.buildings().select(vs.removed_ids).table.geometry)
    if not geoms:
        c = ((s.extent[0] + s.extent[2]) / 2, (s.extent[1] + s.extent[3]) / 2)
    else:
        import shapely

        cc = shapely.union_all(geoms).centroid
        c = (cc.x, cc.y)
    lon, lat = Transformer.from_crs(s.processing_crs, "EPSG:4326", always_xy=True).transform(*c)
    return {"lon": round(lon, 7), "lat": round(lat, 7), "height_m": 450.0}


@dg.asset(key=PUBLICATION_KEY, deps=[COMPARISON_KEY, TILES_KEY, MODEL_KEY], partitions_def=VARIANTS,
          group_name=GROUP, code_version=CODE_VERSION, kinds={"dcat"},
          description="The variant version published atomically as variants/<id>/<version>/ beside the releases "
                      "(3D Tiles, comparison, CityJSON/CityGML, the variant file and schema, its own DCAT-AP catalog "
                      "and SHA256SUMS, naming its base release), and variants/index.json of the current variants.")
def variant_publication(context: AssetExecutionContext, settings: SettingsResource) -> dg.MaterializeResult:
    from citymodel.variants.publish import publish_variant, write_index

    s = settings.load()
    key = context.partition_key
    wd = work_dir(s, key)
    with timer() as t:
        vs = _store(s, key)
        info = publish_variant(s, vs, wd, base_release=base_release_id(s), camera=_camera(vs, s))
        index = write_index(s)
    return dg.MaterializeResult(metadata={
        "variant": key, "release": info.release_id, "unchanged": info.unchanged, "files": info.files,
        "path": dg.MetadataValue.path(str(info.path)), "current_variants": len(index["variants"]),
        "seconds": t["seconds"]})


variant_assets = [variant_model, variant_analysis, variant_comparison, variant_tiles, variant_publication]
