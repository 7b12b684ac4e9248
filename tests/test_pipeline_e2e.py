"""End to end on the sample city, served by a real local HTTP server: the whole asset graph, then
a refresh with no source change (nothing runs, nothing is downloaded) and a refresh after one
dataset changed (only what depends on it runs)."""

import datetime as dt
import hashlib
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from catalog_server import CatalogServer
from conftest import write_config
from citymodel.config import load_config
from pipelines.definitions import build_definitions
from pipelines.refresh_runner import execute_plan, plan_for
from resources.settings import SettingsResource


def _materializations(instance, key: str, partition: str | None = None) -> int:
    flt = dg.AssetRecordsFilter(asset_key=dg.AssetKey(key.split("/")),
                                asset_partitions=[partition] if partition else None)
    return len(instance.fetch_materializations(flt, limit=1000).records)


def _bump_distribution(catalog_path: Path, file_name: str, data_path: Path) -> None:
    """Record a new version of ``file_name`` in the catalog (size, checksum, modified)."""
    doc = json.loads(catalog_path.read_text(encoding="utf-8"))
    digest = hashlib.sha256(data_path.read_bytes()).hexdigest()
    found = 0

    def url_of(node):
        v = node.get("dcat:downloadURL")
        return v.get("@id") if isinstance(v, dict) else v

    def walk(node):
        nonlocal found
        if isinstance(node, dict):
            url = url_of(node)
            if isinstance(url, str) and url.endswith(file_name):
                found += 1
                node["dcat:byteSize"] = {"@value": str(data_path.stat().st_size), "@type": "xsd:decimal"}
                node["spdx:checksum"]["spdx:checksumValue"] = digest
                node["dct:modified"] = {"@value": "2026-11-20T06:00:00Z", "@type": "xsd:dateTime"}
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(doc)
    assert found == 1, f"{file_name} not found in the catalog"
    catalog_path.write_text(json.dumps(doc, indent=1), encoding="utf-8")


@pytest.fixture(scope="module")
def city(pipeline_city):
    return pipeline_city


def test_first_refresh_builds_every_asset_and_tile(city):
    assert city.outcome.ok, city.outcome.failed
    s = city.settings
    graph = city.defs.resolve_asset_graph()
    for key in graph.materializable_asset_keys:
        pdef = graph.get(key).partitions_def
        if pdef is not None and pdef.name == "variants":
            continue  # planning variants are assessed by their own job, never by the city's refresh
        parts = s.tile_ids if pdef else [None]
        for p in parts:
            assert _materializations(city.instance, key.to_user_string(), p) == 1, (key, p)
    for role in ("buildings", "trees", "roads", "flood_zones", "viewpoints", "lod2_reference"):
        assert (s.staging_dir / f"{role}.parquet").is_file()
    for t in s.tile_ids:
        assert (s.staging_dir / "lidar" / f"{t}.{s.lidar.staged_format}").is_file()
        assert (s.staging_dir / "lidar" / f"dtm_{t}.tif").is_file()
    report = json.loads((s.quality_dir / "report.json").read_text())
    assert report["status"] == "pass"
    assert (s.quality_dir / "report.html").is_file()
    # the report lists the checks of the whole model and every analysis, each tile of the tile assets,
    # not only those of the run that happened to build the report (that made a rebuilt city another release)
    checked = {(c["asset"], c["partition"]) for c in report["analysis_checks"]["checks"]}
    assert {("buildings/lod2", t) for t in s.tile_ids} <= checked
    assert {("analysis/solar", t) for t in s.tile_ids} <= checked
    assert ("buildings/model", None) in checked and ("analysis/building_values", None) in checked


def test_staged_buildings_match_the_source_and_bad_records_are_quarantined(city):
    import duckdb
    import geopandas as gpd

    s = city.settings
    truth = city.truth.ground_truth
    staged = gpd.read_parquet(s.staging_dir / "buildings.parquet")
    assert staged.crs.to_epsg() == 25832
    raw = gpd.read_file(city.truth.buildings_path)
    bad = set(_bad_ids(truth, "buildings"))
    assert len(bad) == 2
    assert len(staged) == len(raw) - len(bad)
    assert bad.isdisjoint(set(staged["building_id"]))
    con = duckdb.connect(str(s.warehouse_path), read_only=True)
    q = con.execute("SELECT role, record_id, reason FROM quarantine").df()
    con.close()
    assert bad <= set(q.loc[q.role == "buildings", "record_id"])
    assert set(_bad_ids(truth, "trees")) <= set(q.loc[q.role == "trees", "record_id"])
    # reasons are stated, not just flags
    assert q["reason"].str.len().min() > 5


def _bad_ids(truth: dict, role: str) -> list[str]:
    dataset = {"buildings": "jena-sample-alkis-gebaeude", "trees": "jena-sample-baumkataster"}[role]
    return [str(b["record"]) for b in truth["bad_records"] if b["dataset"] == dataset]


def test_dtm_matches_the_true_terrain(city):
    from citymodel.raster import read_geotiff
    from citymodel.samplecity import in_water, terrain_height

    s = city.settings
    errors = []
    for t in s.tile_ids:
        r = read_geotiff(s.staging_dir / "lidar" / f"dtm_{t}.tif")
        z = r.masked
        rows, cols = np.nonzero(np.isfinite(z))
        xs, ys = r.transform @ (cols + 0.5, rows + 0.5)
        xs, ys = np.asarray(xs), np.asarray(ys)
        dry = ~np.asarray(in_water(xs, ys), dtype=bool)
        errors.append(np.abs(z[rows, cols][dry] - terrain_height(xs[dry], ys[dry])))
    err = np.concatenate(errors)
    assert len(err) > 100_000
    assert np.median(err) < 0.10, np.median(err)
    assert np.percentile(err, 95) < 0.5


def test_second_refresh_downloads_and_rebuilds_nothing(city):
    hits_before = dict(city.server.hits)
    plan = plan_for(city.instance, city.settings, city.defs.resolve_asset_graph())
    assert plan.empty, plan.summary()
    # the nightly schedule says so too
    sched = city.defs.resolve_schedule_def("nightly_refresh")
    ctx = dg.build_schedule_context(instance=city.instance, repository_def=city.defs.get_repository_def(),
                                    resources={"settings": SettingsResource(config_path=str(city.cfg))},
                                    scheduled_execution_time=dt.datetime(2026, 11, 26, 2, 0))
    result = sched.evaluate_tick(ctx)
    assert not result.run_requests and result.skip_message
    # only the catalog document was read again
    new = {p: n - hits_before.get(p, 0) for p, n in city.server.hits.items() if n != hits_before.get(p, 0)}
    assert set(new) <= {"catalog.jsonld"}, new


def test_changed_dataset_rebuilds_only_what_depends_on_it(city):
    s = city.settings
    csv = city.src / "files" / "baumkataster.csv"
    text = csv.read_text(encoding="utf-8")
    second = text.splitlines()[2]  # a valid tree; its copy gets a new number
    csv.write_text(text + "99999" + second[second.index(";"):] + "\n", encoding="utf-8")
    _bump_distribution(city.src / "catalog.jsonld", "baumkataster.csv", csv)
    before = {k.to_user_string(): _materializations(city.instance, k.to_user_string())
              for k in city.defs.resolve_asset_graph().materializable_asset_keys
              if not city.defs.resolve_asset_graph().get(k).partitions_def}
    hits_before = dict(city.server.hits)
    plan = plan_for(city.instance, s, city.defs.resolve_asset_graph())
    planned = [(r.partition_key, sorted(k.to_user_string() for k in r.asset_keys)) for r in plan.runs]
    # trees shade the ground and roofs: sun hours and solar of every tile, then what gathers them
    assert planned == [(None, ["sources/trees", "staging/trees"])] + \
        [(t, ["analysis/solar", "analysis/sun_hours"]) for t in s.tile_ids] + \
        [(None, ["analysis/building_values", "analysis/sightlines", "publish/analysis_tiles", "publish/building_tiles",
                 "publish/release", "publish/tree_tiles", "quality/report", "variants/catalog_submissions"])], planned
    outcome = execute_plan(city.defs, city.instance, plan, log=lambda *_: None)
    assert outcome.ok, outcome.failed
    after = {k: _materializations(city.instance, k) for k in before}
    changed = {k for k in before if after[k] != before[k]}
    assert changed == {"sources/trees", "staging/trees", "quality/report", "publish/tree_tiles", "publish/release",
                       "analysis/sightlines", "analysis/building_values", "publish/building_tiles",
                       "publish/analysis_tiles",
                       "variants/catalog_submissions"}   # the catalog's variant files are checked against the new trees
    for t in s.tile_ids:  # per tile: only the layers trees feed
        assert _materializations(city.instance, "analysis/sun_hours", t) == 2
        assert _materializations(city.instance, "analysis/noise", t) == 1
        assert _materializations(city.instance, "buildings/lod2", t) == 1
    for t in s.tile_ids:
        assert _materializations(city.instance, "staging/point_cloud", t) == 1
    new = {p for p, n in city.server.hits.items() if n != hits_before.get(p, 0)}
    assert new == {"catalog.jsonld", "files/baumkataster.csv"}, new
    import geopandas as gpd

    trees = gpd.read_parquet(s.staging_dir / "trees.parquet")
    assert "99999" in set(trees["tree_id"])


# ----------------------------------------------------------------------------- buildings and release
SCHEMAS = Path(__file__).resolve().parent.parent.parent / "shared" / "schemas"


def test_buildings_reconstructed_valid_and_close_to_the_truth(city):
    import geopandas as gpd

    table = gpd.read_parquet(city.settings.output_dir / "buildings" / "buildings.parquet")
    truth = {b["building_id"]: b for b in city.truth.ground_truth["buildings"]}
    assert len(table) == len(truth) - 2  # the two quarantined footprints
    assert (table["validity_codes"].astype(str).str.strip("[] ") == "").mean() >= 0.995
    lod2 = table[table["method"] == "lod2_fitted"]
    assert len(lod2) / len(table) >= 0.95
    ridge_err = [abs(r.ridge_height_m - truth[r.building_id]["ridge_height_m"]) for r in lod2.itertuples()]
    assert np.median(ridge_err) <= 0.25
    form_ok = np.mean([int(r.roofType) == int(truth[r.building_id]["roof_code"]) for r in lod2.itertuples()])
    assert form_ok >= 0.95


def test_change_report_finds_the_planted_changes(city):
    truth = city.truth.ground_truth
    changes = pd.read_csv(city.settings.output_dir / "buildings" / "changes.csv", dtype=str)
    status = dict(zip(changes["building_id"].fillna(changes["official_id"]), changes["status"]))
    assert status[truth["demolished_building_id"]] == "demolished"
    lod2 = truth["lod2"]
    assert status[lod2["demolished"]["building_id"]] == "demolished"
    assert status[lod2["heightened"]["building_id"]] == "changed_height"
    assert status[lod2["new"]] == "new"
    # nothing else is reported as demolished or changed
    assert sum(1 for v in status.values() if v in ("demolished", "changed_height", "changed_footprint")) == 2


def test_release_is_complete_and_verifiable(city):
    import rdflib

    from citymodel.catalog import parse_catalog
    from citymodel.cityjson_schema import validate_cityjson_schema
    from citymodel.citygml import validate_citygml_xsd

    out = city.settings.output_dir
    latest = out / "latest"
    assert latest.is_symlink() and latest.resolve().parent.name == "releases"
    rel = latest.resolve()
    for p in ("index.html", "catalog.jsonld", "SHA256SUMS", "quality/report.json", "quality/report.html",
              "tiles/buildings/tileset.json", "tiles/pointcloud/tileset.json", "tiles/trees/tileset.json",
              "data/buildings.city.json", "data/buildings.gml", "data/buildings.gpkg", "data/buildings.parquet",
              "data/buildings.csv", "data/tile_index.geojson"):
        assert (rel / p).is_file(), p
    # what the release holds covers every part it is made from, the tiles' too (not only the assets of
    # the run that made it), and says it is complete
    contents = json.loads((rel / "release.json").read_text(encoding="utf-8"))["contents"]
    assert contents["status"] == "complete" and contents["gaps"] == [], contents["gaps"]
    labels = {p["asset"] + (f"[{p['tile']}]" if p["tile"] else "") for p in contents["parts"]}
    for t in city.settings.tile_ids:
        assert {f"staging/point_cloud[{t}]", f"buildings/lod2[{t}]", f"analysis/sun_hours[{t}]"} <= labels, labels
    assert {"staging/trees", "buildings/model", "quality/report"} <= labels
    assert not any(label.startswith("variants/") for label in labels)
    # every file is in SHA256SUMS and matches
    sums = dict(line.split("  ", 1)[::-1] for line in (rel / "SHA256SUMS").read_text().splitlines())
    files = {str(p.relative_to(rel)) for p in rel.rglob("*") if p.is_file()} - {"SHA256SUMS"}
    assert set(sums) == files
    for name in list(files)[:200]:
        assert hashlib.sha256((rel / name).read_bytes()).hexdigest() == sums[name], name
    # the catalog is RDF (rdflib), and our own DCAT reader sees each distribution with a matching checksum
    g = rdflib.Graph().parse(data=(rel / "catalog.jsonld").read_text(), format="json-ld")
    assert len(g) > 50
    cat = parse_catalog((rel / "catalog.jsonld").read_bytes(), (rel / "catalog.jsonld").as_uri())
    n = 0
    for ds in cat.datasets.values():
        for d in ds.distributions:
            if d.checksum_value:
                p = Path(d.url.removeprefix("file://"))
                assert hashlib.sha256(p.read_bytes()).hexdigest() == d.checksum_value
                n += 1
    assert n >= 8
    if SCHEMAS.is_dir():
        from citymodel.tiles3d import validate_tileset_schema

        assert validate_cityjson_schema(rel / "data/buildings.city.json", SCHEMAS / "cityjson-2.0.2") == []
        for ts in ("buildings", "trees", "pointcloud"):
            assert validate_tileset_schema(rel / f"tiles/{ts}/tileset.json", SCHEMAS / "3d-tiles-1.1") == [], ts
    assert validate_citygml_xsd(rel / "data/buildings.gml").ok
    # the analysis layers as coloured 3D Tiles: legend in asset.extras and as tileset metadata, in the catalog
    from citymodel.tiles3d import read_glb
    from citymodel.tiles3d.colormap import ColorRamp

    assert {"solar-3dtiles", "facade-sun-3dtiles"} <= set(cat.datasets)
    for ts, unit, kind, layer in (("solar", "kWh/m²·a", 2, "solar"), ("facade_sun", "h", 1, "sun_hours")):
        doc = json.loads((rel / f"tiles/{ts}/tileset.json").read_text())
        legend, meta = doc["asset"]["extras"]["legend"], doc["metadata"]
        assert legend["unit"] == unit and legend["maximum"] > legend["minimum"] == 0.0, ts
        assert meta["class"] == "legend" and meta["properties"]["stopValues"] == [st["value"] for st in legend["stops"]]
        if SCHEMAS.is_dir():
            assert validate_tileset_schema(rel / f"tiles/{ts}/tileset.json", SCHEMAS / "3d-tiles-1.1") == [], ts
        # vertex colours of the coloured kind: ramp colours of the layer's values, few surfaces without one
        ramp = ColorRamp(tuple(st["value"] for st in legend["stops"]), tuple(tuple(st["rgba"]) for st in legend["stops"]))
        table = pd.concat([pd.read_parquet(p) for p in (out / "analysis" / layer).glob(
            "*_facades.parquet" if layer == "sun_hours" else "*.parquet")])
        if layer == "solar":
            vals = table["irradiation_kwh_m2a"]
        else:  # a wall's value is the mean over its storeys (day: the DIN EN 17037 date, 21 March)
            assert meta["properties"]["day"].endswith("-03-21")
            vals = table.groupby(["building_id", "surface_index"])["sun_h_mean_mar21"].mean()
        allowed = {tuple(c) for c in ramp.colors_of(vals.to_numpy(float))} | {(128, 128, 128, 255)}
        coloured = grey = 0
        for glb in sorted((rel / f"tiles/{ts}/content").glob("*.glb"))[:5]:
            g, binary = read_glb(glb.read_bytes())
            attrs = g["meshes"][0]["primitives"][0]["attributes"]

            def acc(i, dtype, k):
                a, v = g["accessors"][i], g["bufferViews"][g["accessors"][i]["bufferView"]]
                return np.frombuffer(binary, dtype=dtype, count=a["count"] * k, offset=v["byteOffset"]).reshape(-1, k)

            kinds = acc(attrs["_FEATURE_ID_1"], np.float32, 1)[:, 0].astype(int)
            rgba = acc(attrs["COLOR_0"], np.uint8, 4)[kinds == kind]
            assert {tuple(c) for c in rgba.tolist()} <= allowed, ts
            grey += int(np.all(rgba == 128, axis=1).sum())
            coloured += len(rgba)
        assert coloured > 0 and grey / coloured < 0.2, (ts, grey, coloured)


def test_release_tiles_pass_the_independent_validators(city):
    from jsvalidators import run_node

    rel = (city.settings.output_dir / "latest").resolve()
    glbs = sorted((rel / "tiles").rglob("*.glb"))
    assert glbs
    report = run_node("validate_gltf.mjs", *map(str, glbs))
    for r in report["results"]:
        assert r["numErrors"] == 0, (r["path"], r["messages"][:5])
    for ts in ("buildings", "trees", "pointcloud"):
        r = run_node("check_tileset.mjs", str(rel / "tiles" / ts / "tileset.json"))
        assert r["errors"] == [], (ts, r["errors"][:5])
        assert r["contents"] > 0
    assert any("/tiles/solar/" in str(p) for p in glbs) and any("/tiles/facade_sun/" in str(p) for p in glbs)
    for ts in ("solar", "facade_sun"):
        r = run_node("check_tileset.mjs", str(rel / "tiles" / ts / "tileset.json"))
        assert r["errors"] == [], (ts, r["errors"][:5])
        assert r["contents"] > 0


def test_release_holds_a_qgis_project_that_opens_in_qgis(city):
    """Every release has qgis/<name>.qgz and styles/*.sld; QGIS loads every layer of the sample
    city's release (skipped where QGIS is not installed)."""
    from test_qgis_project import check_with_qgis

    rel = (city.settings.output_dir / "latest").resolve()
    qgz = rel / "qgis" / f"{city.settings.name}.qgz"
    slds = sorted((rel / "styles").glob("*.sld"))
    assert qgz.is_file() and slds and (rel / "data" / "trees.gpkg").is_file()
    out = check_with_qgis(qgz, slds)
    names = {lyr["name"] for lyr in out["layers"]}
    for expected in ("Kachelübersicht (1 km)", "Bäume", "Gebäude nach Dachform", "Gebäude nach Höhe",
                     "Besonnung DIN EN 17037", "Solarpotenzial der Dachflächen", "Straßenlärm tags (LrT, RLS-19)",
                     "Straßenlärm nachts (LrN, RLS-19)", "Isophonen LrT"):
        assert expected in names, (expected, sorted(names))
    assert any(n.startswith("Sonnenstunden am Boden") for n in names)
    assert any(n.startswith("Wassertiefe") for n in names)
