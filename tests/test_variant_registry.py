"""Submitting variants: the registry's writing side, the inbox, the CLI, the catalog role and asset.

Most tests use a hand-made city (three buildings, two roads, two trees written as the reconstruction
and staging would write them: tests/variant_helpers.py); the last one uses the fully run sample city.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from shapely.geometry import LineString, Point, box

from citymodel.variants.registry import (current_submissions, list_submissions, load, process_inbox,
                                         read_submission, submission_dir, submit, versions)
from citymodel.variants.validation import VariantRejected, context_for
from conftest import write_config
from variant_helpers import (BUILDINGS, FREE_X, HEIGHTS, ROADS, SCHEMAS, TREES, add, cityjson_submission, doc,
                             dumps, feature, good_doc)


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} if root.exists() else set()


@pytest.fixture
def city(tmp_path):
    """Settings of a deployment whose output folder holds the hand-made city."""
    import geopandas as gpd

    from citymodel.config import load_config
    from citymodel.store import building_tile_paths, staged_table_path

    cfg = write_config(tmp_path, str(tmp_path / "catalog.jsonld"), tmp_path / "out",
                       variants={"inbox_settle_s": 0, "min_footprint_area_m2": 12})
    s = load_config(cfg)
    from citymodel.tiles import tile_of_point

    rows = [{"building_id": k, "tile_id": tile_of_point(v[0], v[1]).id, "eave_height_m": HEIGHTS[k][0],
             "ridge_height_m": HEIGHTS[k][1], "geometry": box(*v)} for k, v in BUILDINGS.items()]
    by_tile: dict[str, list] = {}
    for r in rows:
        by_tile.setdefault(r["tile_id"], []).append(r)
    for t, rs in by_tile.items():
        p = building_tile_paths(s, t)[1]
        p.parent.mkdir(parents=True, exist_ok=True)
        gpd.GeoDataFrame(rs, crs=s.processing_crs).to_parquet(p)
    staged_table_path(s, "roads").parent.mkdir(parents=True, exist_ok=True)
    gpd.GeoDataFrame({"road_id": list(ROADS)}, geometry=[LineString([(681750, 5644750 + 50 * k),
                                                                       (682250, 5644750 + 50 * k)]) for k in range(2)],
                     crs=s.processing_crs).to_parquet(staged_table_path(s, "roads"))
    gpd.GeoDataFrame({"tree_id": list(TREES)}, geometry=[Point(681760, 5645200), Point(681770, 5645200)],
                     crs=s.processing_crs).to_parquet(staged_table_path(s, "trees"))
    return s


@pytest.fixture
def ctx(city):
    from citymodel.store import CityStore

    return context_for(city, CityStore(city))


def test_context_for_reads_the_city_and_the_settings(city, ctx):
    assert ctx.building_ids == set(BUILDINGS) and ctx.road_ids == set(ROADS) and ctx.tree_ids == set(TREES)
    assert ctx.building_footprints["DETHL-A"].equals(box(*BUILDINGS["DETHL-A"]))
    assert ctx.building_heights["DETHL-C"] == HEIGHTS["DETHL-C"]
    assert ctx.extent == tuple(city.extent) and ctx.processing_crs == "EPSG:25832"
    assert ctx.limits.min_footprint_area_m2 == 12 and ctx.limits.max_file_bytes == city.variants.max_file_bytes
    assert ctx.cityjson_schema_dir == city.quality.schema_dir / "cityjson-2.0.2" and ctx.variants == {}


def test_the_variants_settings_block(tmp_path):
    from citymodel.config import load_config
    from citymodel.errors import ConfigError

    s = load_config(write_config(tmp_path, "c.jsonld", tmp_path / "out"))
    assert s.variants_inbox_dir == tmp_path / "out" / "variants" / "inbox"
    assert (s.variants.max_file_bytes, s.variants.min_footprint_area_m2, s.variants.overlap_tolerance_m2) == \
        (20_000_000, 10.0, 0.5)
    s = load_config(write_config(tmp_path, "c.jsonld", tmp_path / "out", variants={"inbox_dir": "eingang"}))
    assert s.variants_inbox_dir == (tmp_path / "eingang").resolve()
    with pytest.raises(ConfigError, match="variants.max_file_size"):
        load_config(write_config(tmp_path, "c.jsonld", tmp_path / "out", variants={"max_file_size": 5}))
    with pytest.raises(ConfigError, match="storey_height_min_m"):
        load_config(write_config(tmp_path, "c.jsonld", tmp_path / "out",
                                 variants={"storey_height_min_m": 5, "storey_height_max_m": 4}))


def test_an_accepted_file_is_stored_as_submitted(city, ctx):
    data = dumps(good_doc())
    v = submit(data, "entwurf.geojson", city, ctx)
    assert (v.id, v.version, v.key) == ("quartier-test", 1, "quartier-test.v1")
    d = submission_dir(city, v.id, 1)
    assert (d / "variant.geojson").read_bytes() == data
    assert _files(city.output_dir / "variants") == {"submissions/quartier-test/1/variant.geojson",
                                                    "submissions/quartier-test/1/submission.json"}
    sub = read_submission(city, v.id, 1)
    import hashlib
    assert sub.sha256 == hashlib.sha256(data).hexdigest() and sub.source_name == "entwurf.geojson"
    assert (sub.title, sub.author_role, sub.created) == ("Testvariante", "planning_office", "2026-12-06T10:00:00Z")
    assert sub.summary == v.summary() and sub.accepted.endswith("Z")
    loaded = load(city, v.id, 1)
    assert loaded.key == v.key and loaded.added[0].footprint.equals(v.added[0].footprint)
    assert [type(c) for c in loaded.changes] == [type(c) for c in v.changes]


def test_a_resubmitted_id_is_a_new_version_and_the_same_bytes_are_the_same_version(city, ctx):
    first = dumps(good_doc())
    second = dumps(good_doc(title="Testvariante, überarbeitet"))
    assert submit(first, "a.geojson", city, ctx).version == 1
    assert submit(second, "b.geojson", city, ctx).version == 2
    again = submit(first, "a-nochmal.geojson", city, ctx)
    assert again.version == 1 and again.sha256 == read_submission(city, "quartier-test", 1).sha256
    assert versions(city, "quartier-test") == [1, 2]
    assert (submission_dir(city, "quartier-test", 1) / "variant.geojson").read_bytes() == first
    assert [s.key for s in list_submissions(city)] == ["quartier-test.v1", "quartier-test.v2"]
    assert [(s.key, s.title) for s in current_submissions(city)] == [("quartier-test.v2", "Testvariante, überarbeitet")]


def test_a_rejected_file_writes_its_report_and_nothing_else(city, ctx):
    bad = good_doc()
    bad["features"][1]["properties"]["building_id"] = "DETHL-X"
    with pytest.raises(VariantRejected) as exc:
        submit(dumps(bad), "../../böser name.geojson", city, ctx)
    path = exc.value.report_path
    assert path.parent == city.output_dir / "variants" / "rejected" and path.name.endswith("-b_ser_name.geojson.json")
    assert _files(city.output_dir / "variants") == {f"rejected/{path.name}", f"rejected/{path.with_suffix('.txt').name}"}
    rep = json.loads(path.read_text(encoding="utf-8"))
    assert rep["accepted"] is False and rep["problems"] == exc.value.problems and rep["rejected"].endswith("Z")
    assert rep["problems"][0]["feature"] == 1 and rep["problems"][0]["field"] == "properties.building_id"
    txt = path.with_suffix(".txt").read_text(encoding="utf-8")
    assert "feature 1, properties.building_id" in txt and "Fix:" in txt
    assert list_submissions(city) == []


def test_a_failure_while_writing_leaves_no_partial_version(city, ctx, monkeypatch):
    import citymodel.variants.registry as reg

    real = reg.atomic_write_text

    def failing(path, text):
        if Path(path).name == "submission.json":
            raise OSError("disk full")
        return real(path, text)

    monkeypatch.setattr(reg, "atomic_write_text", failing)
    with pytest.raises(OSError, match="disk full"):
        submit(dumps(good_doc()), "a.geojson", city, ctx)
    assert _files(city.output_dir / "variants") == set() and versions(city, "quartier-test") == []
    assert not [p for p in (city.output_dir / "variants" / "submissions" / "quartier-test").iterdir()]
    monkeypatch.setattr(reg, "atomic_write_text", real)
    assert submit(dumps(good_doc()), "a.geojson", city, ctx).version == 1


def test_a_cityjson_submission_is_stored_with_its_variant_document(city, ctx):
    data = dumps(cityjson_submission())
    v = submit(data, "entwurf.city.json", city, ctx)
    d = submission_dir(city, "entwurf-cad", v.version)
    assert (d / "submitted.city.json").read_bytes() == data
    meta = json.loads((d / "submission.json").read_text(encoding="utf-8"))
    assert meta["format"] == "cityjson" and meta["files"] == {"document": "variant.geojson",
                                                              "submitted": "submitted.city.json"}
    assert meta["skipped"] == ([] if SCHEMAS.is_dir() else meta["skipped"])
    loaded = load(city, "entwurf-cad", v.version)
    assert loaded.added[0].footprint.equals(box(FREE_X, 5645000, FREE_X + 20, 5645012))
    assert loaded.added[0].design["CityObjects"]


def test_a_parent_accepted_in_the_same_inbox_run_may_be_named(city, ctx):
    inbox = city.variants_inbox_dir
    inbox.mkdir(parents=True)
    (inbox / "1-basis.geojson").write_bytes(dumps(doc(add("neu-1"), vid="basis")))
    (inbox / "2-kind.geojson").write_bytes(dumps(doc(add("neu-1"), vid="kind", parent={"id": "basis", "version": 1})))
    accepted, rejected = process_inbox(city, ctx)
    assert [v.key for v in accepted] == ["basis.v1", "kind.v1"] and rejected == []


def test_the_inbox_submits_each_file_once_and_moves_it(city, ctx):
    inbox = city.variants_inbox_dir
    inbox.mkdir(parents=True)
    bad = good_doc(id="schlecht")
    bad["features"][0]["properties"]["ridge_height_m"] = 400
    (inbox / "gut.geojson").write_bytes(dumps(good_doc()))
    (inbox / "schlecht.geojson").write_bytes(dumps(bad))
    (inbox / ".versteckt.geojson").write_bytes(dumps(good_doc()))
    (inbox / "halb.geojson.part").write_bytes(b"{")
    accepted, rejected = process_inbox(city, ctx)
    assert [v.key for v in accepted] == ["quartier-test.v1"]
    assert len(rejected) == 1 and rejected[0].report["file"] == "schlecht.geojson"
    assert rejected[0].problems[0]["field"] == "properties.ridge_height_m" and rejected[0].report_path.is_file()
    assert sorted(p.name for p in inbox.iterdir()) == [".versteckt.geojson", "done", "halb.geojson.part", "rejected"]
    assert [p.name for p in (inbox / "done").iterdir()] == ["gut.geojson"]
    assert [p.name for p in (inbox / "rejected").iterdir()] == ["schlecht.geojson"]
    assert process_inbox(city, ctx) == ([], [])
    # a new file with the same name: its own version, and the done/ copy is not overwritten
    (inbox / "gut.geojson").write_bytes(dumps(good_doc(title="zweite Fassung")))
    accepted, _ = process_inbox(city, ctx)
    assert [v.key for v in accepted] == ["quartier-test.v2"] and len(list((inbox / "done").iterdir())) == 2


def test_the_inbox_leaves_fresh_files_and_rejects_links_and_oversized_files(city, ctx, tmp_path):
    from dataclasses import replace

    from citymodel.config import VariantSettings

    inbox = city.variants_inbox_dir
    inbox.mkdir(parents=True)
    (inbox / "frisch.geojson").write_bytes(dumps(good_doc()))
    assert process_inbox(city, ctx, settle_s=60) == ([], []) and (inbox / "frisch.geojson").exists()
    old = time.time() - 120
    os.utime(inbox / "frisch.geojson", (old, old))
    secret = tmp_path / "geheim.txt"
    secret.write_text("x")
    (inbox / "link.geojson").symlink_to(secret)
    small = replace(ctx, limits=VariantSettings(max_file_bytes=100))
    (inbox / "gross.geojson").write_bytes(b" " * 101)
    accepted, rejected = process_inbox(city, small, settle_s=0)
    by_file = {r.report["file"]: r for r in rejected}
    assert accepted == [] and set(by_file) == {"frisch.geojson", "gross.geojson", "link.geojson"}
    assert by_file["link.geojson"].problems[0]["check"] == "file"
    assert by_file["gross.geojson"].problems[0]["check"] == "size"
    assert secret.read_text() == "x" and sorted(p.name for p in (inbox / "rejected").iterdir()) == \
        ["frisch.geojson", "gross.geojson", "link.geojson"]


def test_the_cli_submits_and_lists(city, tmp_path, capsys, monkeypatch):
    from pipelines.cli import main

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))

    cfg = city.config_path
    good = tmp_path / "gut.geojson"
    good.write_bytes(dumps(good_doc()))
    assert main(["--config", str(cfg), "variant", "submit", str(good)]) == 0
    out = capsys.readouterr().out
    assert "accepted: quartier-test version 1 (partition quartier-test.v1)" in out
    bad = good_doc(id="kaputt")
    bad["features"][3]["properties"]["road_id"] = "r9"
    badf = tmp_path / "kaputt.geojson"
    badf.write_bytes(dumps(bad))
    assert main(["--config", str(cfg), "variant", "submit", str(badf)]) == 3
    out = capsys.readouterr().out
    assert "rejected: kaputt.geojson: 1 problem(s)" in out and "feature 3, properties.road_id" in out
    report = Path(out.strip().splitlines()[-1].removeprefix("report: "))
    assert report.is_file() and report.parent.name == "rejected"
    good.write_bytes(dumps(good_doc(title="Zweite Fassung")))
    status = main(["--config", str(cfg), "variant", "submit", str(good), "--assess"])
    out = capsys.readouterr().out
    assert "accepted: quartier-test version 2" in out
    # --assess runs the job variant_assess for the new partition where the code location has it; the
    # hand-made city has no terrain, so the assessment fails there (exit status 1), the version stays
    if "assessment is not available yet" in out:
        assert status == 0
    else:
        import dagster as dg

        assert "assessment of quartier-test.v2: FAILED" in out and status == 1
        with dg.DagsterInstance.get() as instance:
            assert "quartier-test.v2" in instance.get_dynamic_partitions("variants")
    assert versions(city, "quartier-test") == [1, 2]
    assert main(["--config", str(cfg), "variant", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["id", "versions", "title", "role", "created", "status"]
    assert lines[1].split()[:2] == ["quartier-test", "1,2"] and "Zweite Fassung" in lines[1]
    assert "planning_office" in lines[1] and "v2 submitted" in lines[1] and len(lines) == 2
    assert main(["--config", str(cfg), "variant", "submit", str(tmp_path / "fehlt.geojson")]) == 2


def test_the_variants_role_reads_variant_files():
    from citymodel.catalog.formats import format_of
    from citymodel.catalog.model import Distribution

    def dist(url, fmt=None):
        return Distribution(title="v", download_url=url, format=fmt)

    assert format_of(dist("https://x/entwurf.geojson"), role="variants") == "geojson"
    assert format_of(dist("https://x/entwurf.city.json"), role="variants") == "cityjson"
    with pytest.raises(Exception, match="does not accept"):
        format_of(dist("https://x/plan.gpkg"), role="variants")


def test_catalog_submissions_submits_the_downloaded_files(city, tmp_path):
    import dagster as dg

    from assets.sources import manifest_path
    from assets.variant_intake import catalog_submissions
    from resources.settings import SettingsResource

    files = tmp_path / "raw"
    files.mkdir()
    good, bad = files / "gut.geojson", files / "schlecht.geojson"
    good.write_bytes(dumps(good_doc()))
    b = good_doc(id="schlecht")
    b["variant"]["description"] = "siehe https://example.org"
    bad.write_bytes(dumps(b))
    mp = manifest_path(city.raw_dir, "variants")
    mp.parent.mkdir(parents=True, exist_ok=True)
    mp.write_text(json.dumps({"role": "variants", "configured": True, "dataset": "jena-varianten",
                              "files": [{"path": str(good), "format": "geojson"},
                                        {"path": str(bad), "format": "geojson"}]}))
    res = dg.materialize([catalog_submissions],
                         resources={"settings": SettingsResource(config_path=str(city.config_path))})
    assert res.success
    md = res.asset_materializations_for_node("variants__catalog_submissions")[0].metadata
    assert md["accepted"].value == 1 and md["rejected"].value == 1
    assert md["accepted_files"].value == [{"file": "gut.geojson", "key": "quartier-test.v1", "title": "Testvariante"}]
    assert md["rejected_files"].value[0]["file"] == "schlecht.geojson"
    assert [s.key for s in list_submissions(city)] == ["quartier-test.v1"]
    # not configured: nothing to do
    mp.write_text(json.dumps({"role": "variants", "configured": False, "files": []}))
    res = dg.materialize([catalog_submissions],
                         resources={"settings": SettingsResource(config_path=str(city.config_path))})
    assert res.asset_materializations_for_node("variants__catalog_submissions")[0].metadata["configured"].value is False


# ========================================================================= the sample city
def test_the_sample_citys_demonstration_variants_are_accepted(pipeline_city, tmp_path):
    """On the fully run sample city: the two demonstration variants (placed from its plan) pass the
    validation against the reconstructed city; a variant naming a quarantined record does not."""
    from citymodel.samplecity.demo_variants import demo_variants, dumps as demo_dumps
    from citymodel.store import CityStore

    s = pipeline_city.settings
    store = CityStore(s)
    ctx = context_for(s, store)
    truth = {b["building_id"]: b for b in pipeline_city.truth.buildings}
    table = store.building_table()
    assert len(ctx.building_ids) == len(table) > 100
    bad_ids = {r["record"] for r in pipeline_city.truth.ground_truth["bad_records"]}
    assert not (bad_ids & ctx.building_ids), "quarantined records are not in the city a variant names"
    buildings = [{"building_id": str(r.building_id), "archetype": truth[str(r.building_id)]["archetype"],
                  "storeys": truth[str(r.building_id)]["storeys"], "footprint": r.geometry}
                 for r in table.itertuples() if str(r.building_id) in truth]
    roads = [{"road_id": str(r.road_id), "name": r.name, "geometry": r.geometry} for r in store.roads().itertuples()]
    trees = [{"tree_id": str(r.tree_id), "x": r.geometry.x, "y": r.geometry.y} for r in store.trees().itertuples()]
    out = s.model_copy(update={"output_dir": tmp_path / "out"})
    for name, d in demo_variants(buildings, roads, trees).items():
        v = submit(demo_dumps(d).encode("utf-8"), name, out, ctx)
        assert v.version == 1 and v.summary()["buildings_added"] >= 1
    bowtie = next(r["record"] for r in pipeline_city.truth.ground_truth["bad_records"] if r["field"] == "geometry")
    with pytest.raises(VariantRejected) as exc:
        submit(dumps(doc(feature(None, change="remove_building", building_id=bowtie))), "q.geojson", out, ctx)
    assert exc.value.problems[0]["field"] == "properties.building_id" and bowtie in exc.value.problems[0]["problem"]
