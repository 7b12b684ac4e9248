"""The code location loads and holds what users rely on (a refactor cannot drop an asset silently)."""

from pathlib import Path

import dagster as dg
import yaml

from citymodel.config import PROJECT_ROOT
from pipelines.definitions import build_definitions

EXPECTED_ASSETS = {
    "sources/buildings", "sources/lidar", "sources/lod2_reference", "sources/trees", "sources/roads",
    "sources/flood_zones", "sources/viewpoints", "sources/variants", "sources/weather",
    "staging/buildings", "staging/trees", "staging/roads", "staging/flood_zones", "staging/viewpoints",
    "staging/lod2_reference", "staging/weather", "staging/point_cloud", "staging/dtm",
    "quality/report",
    "buildings/lod2", "buildings/model",
    "analysis/sun_hours", "analysis/solar", "analysis/sightlines", "analysis/noise", "analysis/flood",
    "analysis/traffic_change", "analysis/building_values",
    "publish/tree_tiles", "publish/pointcloud_tiles", "publish/building_tiles", "publish/analysis_tiles",
    "publish/release",
    "variants/catalog_submissions",
    "variants/model", "variants/analysis", "variants/comparison", "variants/tiles", "variants/publication",
}


def test_asset_graph_snapshot():
    defs = build_definitions()
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert keys == EXPECTED_ASSETS
    # stage = group = key prefix
    for k in graph.get_all_asset_keys():
        assert graph.get(k).group_name == k.path[0]
    # tile-shaped assets are partitioned by tile
    for name in ("sources/lidar", "staging/point_cloud", "staging/dtm", "publish/pointcloud_tiles", "buildings/lod2",
                 "analysis/sun_hours", "analysis/solar", "analysis/noise", "analysis/flood", "analysis/traffic_change"):
        pd = graph.get(dg.AssetKey(name.split("/"))).partitions_def
        assert isinstance(pd, dg.DynamicPartitionsDefinition) and pd.name == "tiles"
    assert graph.get(dg.AssetKey(["staging", "buildings"])).partitions_def is None
    # planning variants are partitioned by variant version
    for k in graph.get_all_asset_keys():
        if k.path[0] == "variants" and k.path[1] != "catalog_submissions":
            pd = graph.get(k).partitions_def
            assert isinstance(pd, dg.DynamicPartitionsDefinition) and pd.name == "variants"
    # the catalog's variants are checked with the city (one unpartitioned asset)
    assert graph.get(dg.AssetKey(["variants", "catalog_submissions"])).partitions_def is None


def test_checks_blocking_where_publishing_must_stop():
    from citymodel.vector import ID_COLUMN

    graph = build_definitions().resolve_asset_graph()
    checks = {(c.asset_key.to_user_string(), c.name): graph.get_check_spec(c).blocking
              for c in graph.asset_check_keys}
    for role in ("buildings", "trees", "roads", "flood_zones", "viewpoints"):
        for name in ("crs_is_processing_crs", f"{ID_COLUMN[role]}_unique", "geometry_valid",
                     "schema_columns", "quarantine_share"):
            assert checks[(f"staging/{role}", name)] is True, (role, name)
    assert checks[("staging/buildings", "storeys_range")] is False  # warns (records are quarantined)
    assert checks[("staging/point_cloud", "density")] is True
    assert checks[("staging/point_cloud", "class_2_present")] is True


def test_the_catalog_intake_of_variants_runs_with_the_city_and_not_with_the_assessment():
    from pipelines.jobs import CITY_SELECTION

    defs = build_definitions()
    graph = defs.resolve_asset_graph()
    intake = dg.AssetKey(["variants", "catalog_submissions"])
    city = CITY_SELECTION.resolve(graph)
    assert intake in city and dg.AssetKey(["variants", "model"]) not in city
    assess = set(defs.resolve_job_def("variant_assess").asset_layer.selected_asset_keys)
    assert dg.AssetKey(["variants", "model"]) in assess and intake not in assess
    assert intake in set(defs.resolve_job_def("city_refresh").asset_layer.selected_asset_keys)
    assert graph.get(intake).partitions_def is None and graph.get(intake).automation_condition is not None


def test_schedule_and_jobs():
    defs = build_definitions()
    sched = defs.resolve_schedule_def("nightly_refresh")
    assert sched.cron_schedule == "0 2 * * *"
    assert sched.execution_timezone == "Europe/Berlin"
    assert defs.resolve_job_def("city_refresh") is not None
    assert defs.resolve_sensor_def("tile_registry") is not None
    # the city's refresh never assesses a planning variant (a variant never blocks the city); it only
    # checks the variant files the catalog lists (variants/catalog_submissions)
    city = {k.to_user_string() for k in defs.resolve_job_def("city_refresh").asset_layer.executable_asset_keys}
    assert {k for k in city if k.startswith("variants/")} == {"variants/catalog_submissions"}
    assert {"sources", "analysis", "publish"} <= {k.split("/")[0] for k in city}
    variant_job = defs.resolve_job_def("variant_assess")
    assert variant_job.partitions_def.name == "variants"
    assert {k.path[0] for k in variant_job.asset_layer.executable_asset_keys} == {"variants"}
    for name in ("variant_inbox", "variant_rebase"):
        assert defs.resolve_sensor_def(name).job_name == "variant_assess"

def test_workspace_loads_the_module():
    ws = yaml.safe_load((PROJECT_ROOT / "workspace.yaml").read_text())
    assert ws["load_from"][0]["python_module"]["module_name"] == "pipelines.definitions"
    import importlib

    mod = importlib.import_module("pipelines.definitions")
    assert isinstance(mod.defs(), dg.Definitions) if callable(mod.defs) else isinstance(mod.defs, dg.Definitions)


def test_core_library_does_not_import_dagster():
    offenders = [p for p in (PROJECT_ROOT / "citymodel").rglob("*.py")
                 if any(line.strip().startswith(("import dagster", "from dagster"))
                        for line in p.read_text(encoding="utf-8").splitlines())]
    assert offenders == []


def test_assets_that_gather_tiles_are_automated():
    """The schedule leaves them to the `city_automation` sensor: each needs an automation condition."""
    graph = build_definitions().resolve_asset_graph()
    partitioned = {k for k in graph.materializable_asset_keys if graph.get(k).partitions_def}
    gathering = set()
    stack = list(partitioned)
    while stack:
        for child in graph.get(stack.pop()).child_keys:
            if child not in partitioned and child not in gathering:
                gathering.add(child)
                stack.append(child)
    assert gathering
    for k in gathering:
        assert graph.get(k).automation_condition is not None, k


def test_staged_lidar_format_is_part_of_the_code_version():
    """Switching lidar.staged_format changes the staging code version, so the refresh restages."""
    from assets.staging import DTM_KEY, POINT_CLOUD_KEY, build_lidar_asset
    from citymodel.config import load_config

    s = load_config()
    versions = {}
    for fmt in ("las", "laz"):
        a = build_lidar_asset(s.model_copy(update={"lidar": s.lidar.model_copy(update={"staged_format": fmt})}))
        versions[fmt] = a.code_versions_by_key[POINT_CLOUD_KEY]
        assert a.code_versions_by_key[DTM_KEY] == versions[fmt]
        assert a.specs_by_key[POINT_CLOUD_KEY].kinds == {fmt}
    assert versions["las"] != versions["laz"]
