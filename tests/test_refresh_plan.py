"""The refresh planner on a tiny asset graph: source changes, neighbour tiles, ordering, failures."""

import dagster as dg
import pytest

from pipelines.partitions import TILES
from pipelines.refresh import NEIGHBOUR_TAG, plan_refresh

TILE_IDS = ["32_0_0", "32_1_0", "32_3_0"]  # 32_3_0 touches neither of the others
FINGERPRINTS = {t: "v1" for t in TILE_IDS}
FAIL = set()


@dg.asset(key=["sources", "x"], partitions_def=TILES, code_version="1")
def src(context):
    return dg.MaterializeResult(data_version=dg.DataVersion(FINGERPRINTS[context.partition_key]))


@dg.asset(key=["staging", "a"], deps=[src], partitions_def=TILES, code_version="1")
def a(context):
    return dg.MaterializeResult()


@dg.asset(key=["analysis", "b"], deps=[a], partitions_def=TILES, code_version="1",
          tags={NEIGHBOUR_TAG: "true"})
def b(context):
    if context.partition_key in FAIL:
        raise RuntimeError("boom")
    return dg.MaterializeResult()


@dg.asset(key=["quality", "c"], deps=[b], code_version="1")
def c(context):
    return dg.MaterializeResult()


DEFS = dg.Definitions(assets=[src, a, b, c], jobs=[dg.define_asset_job("city_refresh")],
                      executor=dg.in_process_executor)


def _fp(key, tile):
    return FINGERPRINTS[tile] if tile else None


def _run(instance, plan):
    job = DEFS.resolve_job_def("city_refresh")
    for r in plan.runs:
        job.execute_in_process(instance=instance, partition_key=r.partition_key, asset_selection=r.asset_keys,
                               raise_on_error=False)


def _labels(plan):
    return [(r.partition_key, sorted(k.to_user_string() for k in r.asset_keys)) for r in plan.runs]


@pytest.fixture
def instance():
    FINGERPRINTS.update({t: "v1" for t in TILE_IDS})
    FAIL.clear()
    with dg.instance_for_test() as inst:
        inst.add_dynamic_partitions("tiles", TILE_IDS)
        yield inst


def test_first_plan_builds_everything_in_order(instance):
    plan = plan_refresh(instance, DEFS.resolve_asset_graph(), TILE_IDS, _fp)
    assert _labels(plan) == [(t, ["sources/x", "staging/a"]) for t in TILE_IDS] + \
        [(t, ["analysis/b"]) for t in TILE_IDS] + [(None, ["quality/c"])]
    assert plan.runs[-1].gathers_tiles


def test_nothing_changed_plans_nothing(instance):
    graph = DEFS.resolve_asset_graph()
    _run(instance, plan_refresh(instance, graph, TILE_IDS, _fp))
    assert plan_refresh(instance, graph, TILE_IDS, _fp).empty


def test_changed_tile_rebuilds_it_and_the_neighbours_that_read_it(instance):
    graph = DEFS.resolve_asset_graph()
    _run(instance, plan_refresh(instance, graph, TILE_IDS, _fp))
    FINGERPRINTS["32_0_0"] = "v2"
    plan = plan_refresh(instance, graph, TILE_IDS, _fp)
    assert _labels(plan) == [("32_0_0", ["sources/x", "staging/a"]), ("32_0_0", ["analysis/b"]),
                             ("32_1_0", ["analysis/b"]), (None, ["quality/c"])]


def test_a_failed_run_is_retried_next_time(instance):
    graph = DEFS.resolve_asset_graph()
    FAIL.add("32_1_0")
    _run(instance, plan_refresh(instance, graph, TILE_IDS, _fp))
    FAIL.clear()
    plan = plan_refresh(instance, graph, TILE_IDS, _fp)
    # b[32_1_0] never materialized; c ran without it earlier... and is rebuilt after it
    assert _labels(plan) == [("32_1_0", ["analysis/b"]), (None, ["quality/c"])]


def test_force_rebuilds_everything(instance):
    graph = DEFS.resolve_asset_graph()
    _run(instance, plan_refresh(instance, graph, TILE_IDS, _fp))
    plan = plan_refresh(instance, graph, TILE_IDS, _fp, force=True)
    assert sum(len(r.asset_keys) for r in plan.runs) == 3 * 3 + 1
