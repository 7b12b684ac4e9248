"""The release gathers every blocking check per tile: a later passing tile does not hide a failing one."""

from types import SimpleNamespace

import dagster as dg

from assets.publish import RELEASE_KEY, _blocking_check_results
from pipelines.partitions import TILES

BAD = {"32_0_0"}
KEY = dg.AssetKey(["analysis", "x"])


@dg.asset(key=KEY, partitions_def=TILES,
          check_specs=[dg.AssetCheckSpec("ok", asset=KEY, blocking=True),
                       dg.AssetCheckSpec("info", asset=KEY, blocking=False)])
def x(context):
    bad = context.partition_key in BAD
    return dg.MaterializeResult(check_results=[dg.AssetCheckResult(check_name="ok", passed=not bad),
                                               dg.AssetCheckResult(check_name="info", passed=False)])


@dg.asset(key=RELEASE_KEY, deps=[KEY])
def release():
    """The release gathers the checks of the assets it is made from."""


def test_failing_tile_is_not_hidden_by_a_later_passing_one():
    defs = dg.Definitions(assets=[x, release], jobs=[dg.define_asset_job("j", selection=[KEY])],
                          executor=dg.in_process_executor)
    job = defs.resolve_job_def("j")
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("tiles", ["32_0_0", "32_1_0"])
        job.execute_in_process(instance=instance, partition_key="32_0_0", raise_on_error=False)
        job.execute_in_process(instance=instance, partition_key="32_1_0")
        ctx = SimpleNamespace(instance=instance, job_def=job)
        checks = {c["name"]: c["passed"] for c in _blocking_check_results(ctx, defs.resolve_asset_graph())}
    assert checks == {"analysis/x/ok[32_0_0]": False, "analysis/x/ok[32_1_0]": True}
