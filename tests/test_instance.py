"""One Dagster instance per deployment (dagster.yaml from the deployment file: run queue, pools,
storage), the engine setting, concurrent runs of a refresh wave, and the reasons `citymodel plan` prints."""

from __future__ import annotations

import time
from pathlib import Path

import dagster as dg
import pytest
import yaml

from citymodel.config import DEFAULT_CONFIG, load_config
from citymodel.errors import ConfigError
from pipelines.instance import apply_pools, dagster_home, instance_config, prepare_instance
from pipelines.refresh import NEIGHBOUR_TAG, plan_refresh
from pipelines.refresh_runner import execute_plan


def _deployment(tmp: Path, name: str, **orchestration) -> Path:
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    raw["name"] = name
    raw["output_dir"] = str(tmp / name / "out")
    raw["catalog"]["url"] = str(tmp / name / "catalog.jsonld")
    raw.pop("orchestration", None)
    if orchestration:
        raw["orchestration"] = orchestration
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def no_dagster_home(monkeypatch):
    """No DAGSTER_HOME from the environment: the deployment decides (and is restored afterwards)."""
    monkeypatch.delenv("DAGSTER_HOME", raising=False)


def test_each_deployment_has_its_own_instance_under_its_output_dir(tmp_path, no_dagster_home, monkeypatch):
    a = load_config(_deployment(tmp_path, "a"))
    b = load_config(_deployment(tmp_path, "b", dagster_home="../elsewhere/home"))
    assert dagster_home(a) == (tmp_path / "a" / "out" / "dagster_home").resolve()
    # relative to the deployment file's folder, like every other path in it
    assert dagster_home(b) == (tmp_path.parent / "elsewhere" / "home").resolve()
    home, instance = prepare_instance(a)
    assert home == dagster_home(a) and (home / "dagster.yaml").is_file()
    assert Path(instance.root_directory).resolve() == home
    # an explicit DAGSTER_HOME wins for both `make ui` and `citymodel run`
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "explicit"))
    assert dagster_home(a) == dagster_home(b) == (tmp_path / "explicit").resolve()


def test_prepare_home_prints_the_instance_the_run_uses(tmp_path, no_dagster_home, capsys):
    """`make ui` starts `dagster dev` with the folder `citymodel prepare-home` prints."""
    from pipelines.cli import main

    cfg = _deployment(tmp_path, "other-city", max_concurrent_runs=3)
    assert main(["--config", str(cfg), "prepare-home"]) == 0
    printed = Path(capsys.readouterr().out.strip())
    assert printed == (tmp_path / "other-city" / "out" / "dagster_home").resolve()
    with dg.DagsterInstance.from_config(str(printed)) as inst:
        assert inst.get_concurrency_config().run_queue_config.max_concurrent_runs == 3
        assert type(inst.run_coordinator).__name__ == "QueuedRunCoordinator"


def test_run_queue_defaults_to_the_cores_and_pools_follow_the_file(tmp_path, no_dagster_home):
    import os

    s = load_config(_deployment(tmp_path, "c", pools={"lod2": 2, "noise": 1}))
    home, inst = prepare_instance(s)
    cores = len(os.sched_getaffinity(0))
    assert inst.get_concurrency_config().run_queue_config.max_concurrent_runs == cores
    storage = inst.event_log_storage
    assert {k: storage.get_concurrency_info(k).slot_count for k in storage.get_concurrency_keys()} == \
        {"lod2": 2, "noise": 1}
    # a pool dropped from the file is no longer limited; a changed limit is applied
    s.orchestration.pools = {"lod2": 1}
    apply_pools(inst, s)
    assert {k: storage.get_concurrency_info(k).slot_count for k in storage.get_concurrency_keys()} == {"lod2": 1}


def test_postgres_storage_names_the_environment_variable_not_the_secret(tmp_path, no_dagster_home):
    s = load_config(_deployment(tmp_path, "d", engine="celery", postgres_url_env="JENA_PG_URL",
                                celery={"broker_url_env": "JENA_BROKER", "backend_url_env": "JENA_BACKEND"}))
    cfg = instance_config(s)
    assert cfg["storage"] == {"postgres": {"postgres_url": {"env": "JENA_PG_URL"}}}
    assert "postgresql://" not in yaml.safe_dump(cfg)


def test_memory_heavy_assets_carry_their_pools():
    from pipelines.definitions import build_definitions
    from pipelines.instance import POOLS

    graph = build_definitions().resolve_asset_graph()
    pools = {k.to_user_string(): next(iter(graph.get(k).pools)) for k in graph.materializable_asset_keys
             if graph.get(k).pools}
    assert pools["buildings/lod2"] == "lod2"
    assert pools["analysis/noise"] == "noise"
    assert pools["analysis/solar"] == pools["analysis/sun_hours"] == "raycast"
    assert pools["staging/point_cloud"] == "lidar"
    assert set(pools.values()) <= set(POOLS)


@pytest.mark.parametrize("orchestration, fragment", [
    ({"engine": "celery"}, "postgres_url_env"),
    ({"pools": {"lod2": 0}}, "pool limits"),
    ({"max_concurrent_runs": 0}, "max_concurrent_runs"),
    ({"engine": "dask"}, "engine"),
])
def test_bad_orchestration_settings_are_named(tmp_path, orchestration, fragment):
    with pytest.raises(ConfigError, match=fragment):
        load_config(_deployment(tmp_path, "e", **orchestration))


def test_engine_selects_the_executor(tmp_path):
    from pipelines.definitions import executor_for

    assert executor_for(load_config(_deployment(tmp_path, "f"))).name == "in_process"
    assert executor_for(load_config(_deployment(tmp_path, "g", engine="multiprocess"))).name == "multiprocess"
    pytest.importorskip("dagster_celery")
    celery = load_config(_deployment(tmp_path, "h", engine="celery", postgres_url_env="PG"))
    assert executor_for(celery).name == "celery"


# --- concurrent runs of one wave, on a tiny graph whose steps record when they ran -----------------
TILE_IDS = ["32_0_0", "32_1_0", "32_5_0"]
STEP_S = 0.5


def _stamp(context) -> dg.MaterializeResult:
    """Record when the step ran. A tile step waits (up to 60 s) until a second step of its asset has
    started, so that two runs given at once overlap however slowly the worker processes start;
    run one at a time, it waits in vain and the overlap assertion fails."""
    import os

    t0 = time.time()
    if os.environ.get("CITYMODEL_TEST_MARKERS") and context.has_partition_key:
        markers = Path(os.environ["CITYMODEL_TEST_MARKERS"]) / context.asset_key.to_python_identifier()
        markers.mkdir(parents=True, exist_ok=True)
        (markers / context.partition_key).touch()
        while len(list(markers.iterdir())) < 2 and time.time() < t0 + 60:
            time.sleep(0.1)
    time.sleep(STEP_S)
    return dg.MaterializeResult(metadata={"t0": t0, "t1": time.time()})


@dg.asset(key=["staging", "tile"], partitions_def=dg.DynamicPartitionsDefinition(name="tiles"), code_version="1")
def tile_asset(context):
    return _stamp(context)


@dg.asset(key=["analysis", "shade"], deps=[tile_asset], partitions_def=dg.DynamicPartitionsDefinition(name="tiles"),
          code_version="1", tags={NEIGHBOUR_TAG: "true"})
def shade_asset(context):
    return _stamp(context)


@dg.asset(key=["publish", "city"], deps=[shade_asset], code_version="1")
def city_asset(context):
    return _stamp(context)


def tiny_defs() -> dg.Definitions:
    return dg.Definitions(assets=[tile_asset, shade_asset, city_asset], jobs=[dg.define_asset_job("city_refresh")],
                          executor=dg.in_process_executor)


def _intervals(instance, key):
    flt = dg.AssetRecordsFilter(asset_key=dg.AssetKey(key))
    out = {}
    for rec in instance.fetch_materializations(flt, limit=100).records:
        m = rec.asset_materialization
        out[m.partition] = (m.metadata["t0"].value, m.metadata["t1"].value)
    return out


def test_a_wave_runs_two_at_a_time_and_waves_stay_ordered(tmp_path, monkeypatch):
    monkeypatch.setenv("CITYMODEL_TEST_MARKERS", str(tmp_path / "markers"))
    defs = tiny_defs()
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        instance.add_dynamic_partitions("tiles", TILE_IDS)
        plan = plan_refresh(instance, defs.resolve_asset_graph(), TILE_IDS, lambda k, t: None)
        assert [r.wave for r in plan.runs] == [1, 1, 1, 2, 2, 2, 3]
        out = execute_plan(defs, instance, plan, log=lambda m: None, max_concurrent_runs=2,
                           defs_factory="test_instance:tiny_defs")
        assert out.ok, out.failed
        tiles, shades = _intervals(instance, ["staging", "tile"]), _intervals(instance, ["analysis", "shade"])
        city = _intervals(instance, ["publish", "city"])[None]
    assert set(tiles) == set(shades) == set(TILE_IDS)
    spans = sorted(tiles.values()) + sorted(shades.values())
    # never more than two steps at once, and at some moment two (the runs overlap)
    moments = [t0 + 1e-3 for t0, _ in spans]
    at_once = [sum(1 for a, b in spans if a <= m < b) for m in moments]
    assert max(at_once) == 2, at_once
    # a wave starts when the previous one is done: every neighbour-reading step after every tile step
    assert min(a for a, _ in shades.values()) >= max(b for _, b in tiles.values())
    assert city[0] >= max(b for _, b in shades.values())


def test_plan_says_why_each_run_is_requested(tmp_path):
    defs = tiny_defs()
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        instance.add_dynamic_partitions("tiles", TILE_IDS)
        plan = plan_refresh(instance, defs.resolve_asset_graph(), TILE_IDS[:1], lambda k, t: None)
        text = plan.summary()
        assert "[32_0_0] staging/tile\n    why: never materialized: staging/tile" in text
        assert "[-] publish/city\n    why: never materialized: publish/city" in text
        execute_plan(defs, instance, plan, log=lambda m: None)
        assert plan_refresh(instance, defs.resolve_asset_graph(), TILE_IDS[:1], lambda k, t: None).empty
