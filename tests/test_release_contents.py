"""What a release holds, part by part, on a tiny asset graph with real Dagster runs.

The graph mirrors the city's shape: a source and a staging asset per tile, an analysis asset that
reads the neighbour tiles, a city-wide asset and a release-like asset at the end. Faults are injected
into the steps (a project error, a crash, a Dagster Failure); the states are read back from the
instance by :mod:`pipelines.run_state` and judged by :mod:`citymodel.release.contents`. Expected
states follow from what was run, never from the code under test.
"""

from __future__ import annotations

import json

import dagster as dg
import pytest
import rdflib

from citymodel.errors import SourceDataError, dataset_error
from citymodel.release.contents import (CARRIED_OVER, CURRENT, DEGRADED, FAILED, FRESH, NOT_CONFIGURED,
                                        WHY_CODE, WHY_ERROR, WHY_INPUT, WHY_NEVER, Part, PublishPolicy,
                                        ReleaseContents)
from citymodel.requirements import NotComputed
from pipelines.partitions import TILES
from pipelines.refresh import NEIGHBOUR_TAG, plan_refresh
from pipelines.refresh_runner import execute_plan
from pipelines.run_state import REFRESH_TAG, city_asset_keys, error_message, part_states

TILE_IDS = ["32_0_0", "32_1_0", "32_3_0"]  # 32_3_0 touches neither of the others
FAULTS: dict[tuple[str, str | None], str] = {}  # (asset, tile) -> "error" | "crash" | "failure"
STAGING_MESSAGE = ("dataset 'lidar', record 'las_32_0_0.laz': the file ends after 1,000 of 2,000 declared "
                   "points. Fix: publish the complete file")


def _maybe_fail(name: str, tile: str | None) -> None:
    kind = FAULTS.get((name, tile))
    if kind == "error":
        raise dataset_error(SourceDataError, "lidar", "the file ends after 1,000 of 2,000 declared points",
                            "publish the complete file", record=f"las_{tile}.laz")
    if kind == "crash":
        raise AttributeError("'float' object has no attribute 'strip'")
    if kind == "failure":
        raise dg.Failure(description="tile 32_1_0: no staged point cloud. Fix: materialize staging/point_cloud")


@dg.asset(key=["sources", "x"], partitions_def=TILES, code_version="1", retry_policy=dg.RetryPolicy(max_retries=1))
def src(context):  # a download: retried by its policy, like the real sources
    _maybe_fail("sources/x", context.partition_key)
    return dg.MaterializeResult(data_version=dg.DataVersion("v1"))


@dg.asset(key=["staging", "a"], deps=[src], partitions_def=TILES, code_version="1")
def a(context):
    _maybe_fail("staging/a", context.partition_key)
    return dg.MaterializeResult()


@dg.asset(key=["analysis", "b"], deps=[a], partitions_def=TILES, code_version="1", tags={NEIGHBOUR_TAG: "true"})
def b(context):
    _maybe_fail("analysis/b", context.partition_key)
    return dg.MaterializeResult()


@dg.asset(key=["analysis", "n"], deps=[a], partitions_def=TILES, code_version="1")
def n(context):  # an optional layer (like noise without roads)
    return dg.MaterializeResult(metadata={"note": "not configured"})


@dg.asset(key=["quality", "c"], deps=[b, n], code_version="1")
def c(context):
    _maybe_fail("quality/c", None)
    return dg.MaterializeResult()


@dg.asset(key=["publish", "r"], deps=[c])
def r(context):
    return dg.MaterializeResult()


DEFS = dg.Definitions(assets=[src, a, b, n, c, r], jobs=[dg.define_asset_job("city_refresh")],
                      executor=dg.in_process_executor)
GRAPH = DEFS.resolve_asset_graph()
R = dg.AssetKey(["publish", "r"])
KEYS = city_asset_keys(GRAPH, R)


def _fp(key, tile):
    return "v1"


@pytest.fixture
def instance():
    FAULTS.clear()
    with dg.instance_for_test() as inst:
        inst.add_dynamic_partitions("tiles", TILE_IDS)
        yield inst
    FAULTS.clear()


def _refresh(instance, refresh_id: str, force: bool = False):
    plan = plan_refresh(instance, GRAPH, TILE_IDS, _fp, force=force)
    return execute_plan(DEFS, instance, plan, log=lambda *_: None, refresh_id=refresh_id, tile_ids=TILE_IDS)


def _states(instance, refresh_id, **kw):
    parts = part_states(instance, GRAPH, TILE_IDS, KEYS, refresh_id=refresh_id, **kw)
    return {p.label: p for p in parts}


def test_the_release_target_gathers_every_upstream_asset_in_order():
    names = [k.to_user_string() for k in KEYS]
    assert set(names) == {"sources/x", "staging/a", "analysis/b", "analysis/n", "quality/c"}
    assert names.index("sources/x") < names.index("staging/a") < names.index("analysis/b") < names.index("quality/c")


def test_everything_fresh_in_its_refresh_and_current_in_the_next(instance):
    out = _refresh(instance, "R1")
    assert out.ok
    st = _states(instance, "R1")
    assert len(st) == 4 * 3 + 1
    assert {p.state for p in st.values()} == {FRESH}
    # the next refresh built nothing: every part is current, none is a gap
    later = _states(instance, "R2")
    assert {p.state for p in later.values()} == {CURRENT}
    contents = ReleaseContents(list(later.values()), tiles=TILE_IDS, buildings=10, points=100)
    assert contents.status == "complete" and contents.refusals(PublishPolicy()) == []


def test_a_failed_staging_step_makes_its_tile_and_what_gathers_it_not_current(instance):
    _refresh(instance, "R1")
    FAULTS[("staging/a", "32_0_0")] = "error"
    out = _refresh(instance, "R2", force=True)
    # the step's own message, not Dagster's wrapper
    assert [(f.assets, f.tile, f.message) for f in out.steps_failed] == [(["staging/a"], "32_0_0", STAGING_MESSAGE)]
    # the failed tile's assets in its later run were not run (n[32_0_0] was skipped by Dagster in its own
    # run); the neighbour that reads tile 0 was built from what is there
    assert [label for label, _ in out.skipped] == ["[32_0_0] analysis/b"]
    st = _states(instance, "R2")
    own = st["staging/a[32_0_0]"]
    assert own.state == CARRIED_OVER and own.why == WHY_ERROR and own.detail == STAGING_MESSAGE
    old = st["analysis/b[32_0_0]"]  # not rebuilt: carried over because its input failed
    assert old.state == CARRIED_OVER and old.why == WHY_INPUT
    assert old.cause == "staging/a[32_0_0]" and old.detail == STAGING_MESSAGE
    nb = st["analysis/b[32_1_0]"]  # rebuilt, but with the neighbour's old input: degraded
    assert nb.state == DEGRADED and nb.cause == "staging/a[32_0_0]"
    assert st["analysis/b[32_3_0]"].state == FRESH  # far from the failure
    assert st["sources/x[32_0_0]"].state == FRESH
    c_ = st["quality/c"]  # built in this refresh from an old tile: degraded
    assert c_.state == DEGRADED and c_.cause == "staging/a[32_0_0]" and c_.root_state == CARRIED_OVER
    contents = ReleaseContents(list(st.values()), tiles=TILE_IDS, buildings=10, points=100)
    refusals = contents.refusals(PublishPolicy())
    assert any(line.startswith("staging/a[32_0_0] carried over from the run of") and STAGING_MESSAGE in line
               for line in refusals)
    assert any(line.startswith("quality/c built in this refresh") for line in refusals)
    # allowed: the old results of staging/a, and with them what they degrade
    assert contents.refusals(PublishPolicy(allow_carry_over=("a",))) == []
    assert contents.refusals(PublishPolicy(allow_carry_over=("staging/a",))) == []
    assert contents.refusals(PublishPolicy(allow_carry_over=("b",))) != []
    assert contents.refusals(PublishPolicy(allow_gaps=True)) == []


def test_the_next_refresh_rebuilds_a_failed_part_even_when_nothing_else_changed(instance):
    from pipelines.refresh import RefreshPlan, RunSpec

    _refresh(instance, "R1")
    FAULTS[("staging/a", "32_3_0")] = "error"
    # only the step itself is retried (nothing upstream of it is newer), and it fails again
    only = RefreshPlan(runs=[RunSpec([dg.AssetKey(["staging", "a"])], "32_3_0", "test")])
    assert not execute_plan(DEFS, instance, only, log=lambda *_: None, refresh_id="R2", tile_ids=TILE_IDS).ok
    FAULTS.clear()
    plan = plan_refresh(instance, GRAPH, TILE_IDS, _fp)
    planned = [(r.partition_key, sorted(k.to_user_string() for k in r.asset_keys)) for r in plan.runs]
    # the tile's own assets, then (after every tile's own) the one that reads neighbour tiles, then the city
    assert planned == [("32_3_0", ["analysis/n", "staging/a"]), ("32_3_0", ["analysis/b"]),
                       (None, ["publish/r", "quality/c"])]
    assert plan.reasons["staging/a[32_3_0]"] == "its last attempt failed"
    out = execute_plan(DEFS, instance, plan, log=lambda *_: None, refresh_id="R3", tile_ids=TILE_IDS)
    assert out.ok
    st = _states(instance, "R3")
    assert {p.state for p in st.values()} <= {FRESH, CURRENT}


def test_a_first_deployment_with_a_corrupt_tile_has_missing_parts(instance):
    FAULTS[("staging/a", "32_1_0")] = "error"
    _refresh(instance, "R1")
    st = _states(instance, "R1")
    assert st["staging/a[32_1_0]"].state == FAILED and st["staging/a[32_1_0]"].why == WHY_ERROR
    # skipped in its own run (by Dagster) and in its later run (by the refresh)
    for label in ("analysis/b[32_1_0]", "analysis/n[32_1_0]"):
        assert st[label].state == FAILED and st[label].cause == "staging/a[32_1_0]", label
    # the neighbour was built without it (a broken tile fails alone), and says so
    assert st["analysis/b[32_0_0]"].state == DEGRADED and st["analysis/b[32_0_0]"].cause == "staging/a[32_1_0]"
    assert st["analysis/b[32_3_0]"].state == FRESH
    contents = ReleaseContents(list(st.values()), tiles=TILE_IDS, buildings=10, points=100)
    assert contents.coverage_share == pytest.approx(2 / 3)
    refusals = contents.refusals(PublishPolicy())
    assert any("staging/a[32_1_0] missing" in line for line in refusals)
    # missing parts are never allowed by allow_carry_over; allow_gaps does, but the coverage gate still holds
    assert contents.refusals(PublishPolicy(allow_carry_over=("a", "b", "n", "c"))) != []
    gated = contents.refusals(PublishPolicy(allow_gaps=True))
    assert gated == ["only 67% of the 3 tiles are complete, less than publish.min_coverage_share = 1"]
    assert contents.refusals(PublishPolicy(allow_gaps=True, min_coverage_share=0.6)) == []


@pytest.mark.parametrize("kind,expected", [
    ("crash", "AttributeError: 'float' object has no attribute 'strip'"),
    ("failure", "tile 32_1_0: no staged point cloud. Fix: materialize staging/point_cloud"),
])
def test_step_messages_are_unwrapped_from_dagster(instance, kind, expected):
    FAULTS[("analysis/b", "32_1_0")] = kind
    out = _refresh(instance, "R1")
    assert [f.message for f in out.steps_failed] == [expected]
    assert "DagsterExecutionStepExecutionError" not in out.failed[0][1]
    st = _states(instance, "R1")
    assert st["analysis/b[32_1_0]"].detail == expected


def test_a_step_that_used_up_its_retries_says_what_failed(instance):
    # Dagster wraps the last error in RetryRequestedFromPolicy ("Exceeded max_retries of 1")
    FAULTS[("sources/x", "32_1_0")] = "error"
    out = _refresh(instance, "R1")
    expected = ("dataset 'lidar', record 'las_32_1_0.laz': the file ends after 1,000 of 2,000 declared points. "
                "Fix: publish the complete file")
    assert [f.message for f in out.steps_failed] == [expected]
    assert _states(instance, "R1")["sources/x[32_1_0]"].detail == expected


def test_not_configured_layers_are_listed_and_block_nothing(instance):
    _refresh(instance, "R1")
    needs = NotComputed("n", "analysis/n", ("sources.roads",), "Lärm", "noise")
    st = _states(instance, "R1", not_configured={"analysis/n": needs})
    assert {st[f"analysis/n[{t}]"].state for t in TILE_IDS} == {NOT_CONFIGURED}
    assert st["quality/c"].state == FRESH  # its optional input does not make it incomplete
    contents = ReleaseContents(list(st.values()), [needs], tiles=TILE_IDS, buildings=1, points=1)
    assert contents.refusals(PublishPolicy()) == []
    assert contents.lines("en")[-1] == "noise: not computed, needs sources.roads"
    assert contents.lines("de")[-1] == "Lärm: nicht berechnet, benötigt sources.roads"
    assert st["analysis/n[32_0_0]"].text("en") == "not computed: needs sources.roads"


def test_a_changed_code_version_is_carried_over_until_rebuilt(instance):
    _refresh(instance, "R1")
    # a new code version of staging/a: the graph says 2, the materializations say 1
    a2 = dg.asset(key=["staging", "a"], deps=[src], partitions_def=TILES, code_version="2")(lambda context: None)
    graph = dg.Definitions(assets=[src, a2, b, n, c, r]).resolve_asset_graph()
    parts = {p.label: p for p in part_states(instance, graph, TILE_IDS, city_asset_keys(graph, R), refresh_id="R2")}
    assert parts["staging/a[32_0_0]"].state == CARRIED_OVER and parts["staging/a[32_0_0]"].why == WHY_CODE
    assert parts["quality/c"].state == CARRIED_OVER and parts["quality/c"].why == WHY_INPUT


def test_fresh_without_a_refresh_tag_means_built_after_the_current_release(instance):
    _refresh(instance, "R1")
    parts = part_states(instance, GRAPH, TILE_IDS, KEYS, refresh_id=None, since=None)
    assert {p.state for p in parts} == {FRESH}
    from datetime import datetime, timezone

    later = part_states(instance, GRAPH, TILE_IDS, KEYS, refresh_id=None,
                        since=datetime(2999, 1, 1, tzinfo=timezone.utc))
    assert {p.state for p in later} == {CURRENT}


def test_never_built_parts_are_missing(instance):
    st = _states(instance, "R1")
    assert {p.state for p in st.values()} == {FAILED}
    assert st["sources/x[32_0_0]"].why == WHY_NEVER and st["sources/x[32_0_0]"].text("en") == "missing: never built"


def test_error_message_keeps_the_project_message_and_names_crashes():
    from dagster._utils.error import serializable_error_info_from_exc_info

    def info(exc):
        try:
            raise exc
        except Exception:
            import sys

            return serializable_error_info_from_exc_info(sys.exc_info())

    assert error_message(info(dataset_error(SourceDataError, "trees", "bad", "fix it", record="7"))) == \
        "dataset 'trees', record '7': bad. Fix: fix it"
    assert error_message(info(KeyError("height_m"))) == "KeyError: 'height_m'"


# -------------------------------------------------------------------------- words and documents
def _contents_with_gaps() -> ReleaseContents:
    from datetime import datetime, timezone

    t = datetime(2026, 11, 20, 2, 14, 3, tzinfo=timezone.utc)
    parts = [Part("staging/point_cloud", "32_681_5644", CARRIED_OVER, t, WHY_ERROR, STAGING_MESSAGE,
                  cause="staging/point_cloud[32_681_5644]", root_asset="staging/point_cloud", root_state=CARRIED_OVER),
             Part("buildings/model", None, DEGRADED, t, WHY_INPUT, STAGING_MESSAGE,
                  cause="staging/point_cloud[32_681_5644]", root_asset="staging/point_cloud",
                  root_state=CARRIED_OVER),
             Part("analysis/sun_hours", "32_681_5645", FRESH, t)]
    nc = [NotComputed("noise", "analysis/noise", ("sources.roads",), "Straßenverkehrslärm (RLS-19)",
                      "road traffic noise (RLS-19)")]
    return ReleaseContents(parts, nc, "R9", ["32_681_5644", "32_681_5645"], 12, 3400,
                           {"buildings-gpkg": ("buildings/model",), "analysis-sun_hours": ("analysis/sun_hours",)})


def test_a_release_with_allowed_gaps_says_so_in_index_release_json_and_catalog(tmp_path):
    from citymodel.release import ReleaseBuilder, extent_wkt_crs84, read_sha256sums

    contents = _contents_with_gaps()
    policy = PublishPolicy(allow_carry_over=("point_cloud",))
    rb = ReleaseBuilder(tmp_path / "out", title="Test", spatial_wkt=extent_wkt_crs84((682000, 5644000, 683000, 5645000)))
    rb.begin()
    rb.write_text("data/buildings.csv", "building_id\nB1\n", dataset="buildings-gpkg")
    rb.write_text("data/sun.csv", "x\n1\n", dataset="analysis-sun_hours")
    info = rb.finalize([{"name": "ok", "passed": True}], contents=contents, policy=policy)
    rel = info.path
    manifest = json.loads((rel / "release.json").read_text(encoding="utf-8"))
    c = manifest["contents"]
    assert c["status"] == "gaps" and c["refresh"] == "R9"
    assert [g["asset"] for g in c["gaps"]] == ["buildings/model", "staging/point_cloud"]
    assert c["not_computed"][0]["text"]["en"] == "road traffic noise (RLS-19): not computed, needs sources.roads"
    assert set(c["datasets"]) == {"buildings-gpkg"}
    assert manifest["warnings"] and all("32_681_5644" in w for w in manifest["warnings"])
    # index.html: the section in German first, English beside it
    page = (rel / "index.html").read_text(encoding="utf-8")
    de, en = page.index("Stand und Vollständigkeit"), page.index("Status and completeness")
    assert de < en
    assert "übernommen aus dem Lauf vom 2026-11-20T02:14:03Z" in page
    assert "carried over from the run of 2026-11-20T02:14:03Z" in page
    assert "nicht berechnet, benötigt sources.roads" in page
    # catalog: words per dataset (adms:versionNotes) and for the catalog (rdfs:comment), read by rdflib
    g = rdflib.Graph().parse(data=(rel / "catalog.jsonld").read_text(encoding="utf-8"), format="json-ld",
                             publicID=(rel / "catalog.jsonld").as_uri())
    ADMS, DCT, RDFS = (rdflib.Namespace("http://www.w3.org/ns/adms#"), rdflib.Namespace("http://purl.org/dc/terms/"),
                       rdflib.RDFS)
    notes = {}
    for ds in g.subjects(DCT.identifier, None):
        notes[str(g.value(ds, DCT.identifier))] = {(lit.language, str(lit)) for lit in g.objects(ds, ADMS.versionNotes)}
    assert {lang for lang, _ in notes["buildings-gpkg"]} == {"de", "en"}
    assert any(t.startswith("Unvollständig: buildings/model") for lang, t in notes["buildings-gpkg"] if lang == "de")
    assert notes["analysis-sun_hours"] == set()
    comments = {lit.language: str(lit) for cat in g.subjects(rdflib.RDF.type, rdflib.Namespace(
        "http://www.w3.org/ns/dcat#").Catalog) for lit in g.objects(cat, RDFS.comment)}
    assert comments["de"].startswith("Unvollständig: 0 Teil(e) fehlen, 1 Teil(e) sind veraltet")
    assert "not computed, needs sources.roads" in comments["en"]
    assert set(read_sha256sums(rel / "SHA256SUMS")) >= {"release.json", "index.html", "catalog.jsonld"}


def test_the_same_files_with_other_gaps_are_a_new_release(tmp_path):
    from citymodel.release import ReleaseBuilder

    def publish(contents):
        rb = ReleaseBuilder(tmp_path / "out", title="Test")
        rb.begin()
        rb.write_text("data/a.csv", "x\n1\n", dataset="buildings-gpkg")
        return rb.finalize([], contents=contents, policy=PublishPolicy(allow_gaps=True))

    complete = ReleaseContents([Part("buildings/model", None, FRESH)], tiles=[], buildings=1, points=1)
    first = publish(complete)
    assert publish(ReleaseContents([Part("buildings/model", None, CURRENT)], tiles=[], buildings=1,
                                   points=1)).unchanged  # fresh or unchanged: the same release
    gaps = publish(_contents_with_gaps())
    assert not gaps.unchanged and gaps.release_id != first.release_id


def test_a_refused_release_names_every_reason_and_publishes_nothing(tmp_path):
    from citymodel.errors import ReleaseError
    from citymodel.release import ReleaseBuilder, latest_release

    empty = ReleaseContents([Part("buildings/model", None, FRESH)], tiles=["32_0_0"], buildings=0, points=0)
    rb = ReleaseBuilder(tmp_path / "out", title="Test")
    rb.begin()
    rb.write_text("data/a.csv", "x\n", dataset="buildings-gpkg")
    with pytest.raises(ReleaseError) as err:
        rb.finalize([], contents=empty, policy=PublishPolicy())
    msg = str(err.value)
    assert "0 buildings, fewer than publish.min_buildings = 1" in msg
    assert "0 LiDAR points, fewer than publish.min_points = 1" in msg
    assert latest_release(tmp_path / "out") is None


def test_a_refresh_tag_names_the_runs_of_one_refresh(instance):
    out = _refresh(instance, "R7")
    runs = instance.get_runs(filters=dg.RunsFilter(tags={REFRESH_TAG: "R7"}))
    assert len(runs) == len(out.succeeded) > 0


def test_the_release_sees_the_whole_graph_not_only_its_own_run():
    """A refresh builds the city-wide results in a run of their own, whose job knows only them; the
    parts upstream of the release come from the whole graph (here: the definitions, as in an
    in-process run without a repository)."""
    from types import SimpleNamespace

    from assets.publish import RELEASE_KEY
    from pipelines.run_state import full_asset_graph

    graph = full_asset_graph(SimpleNamespace(), None)
    names = {k.to_user_string() for k in city_asset_keys(graph, RELEASE_KEY)}
    assert {"sources/lidar", "staging/point_cloud", "buildings/lod2", "analysis/sun_hours", "staging/trees",
            "buildings/model", "quality/report"} <= names
    assert not any(n.startswith("variants/") for n in names)
    assert graph.get(dg.AssetKey(["staging", "point_cloud"])).partitions_def is not None
