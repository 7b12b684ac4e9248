"""The onboarding guide's worked example (README, 'Onboarding a city'), as a test: a folder with
footprints, LiDAR tiles and a tree cadastre (the sample city's files; no roads, no flood zones),
``citymodel init`` with the publication options, then ``citymodel run`` on the written deployment
file, with no hand-written or hand-edited file. Expected counts come from the input files
(read with pyogrio / pandas), not from the pipeline.
"""

from __future__ import annotations

import json

import pandas as pd
import pyogrio
import pytest

from citymodel.onboarding.example import make_example_folder
from pipelines.cli import DEPLOYMENT_ENV_VARS
from pipelines.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]  # a whole pipeline run: ~15 min on a busy 2-core machine


def test_worked_example_from_a_folder_to_a_first_release(tmp_path, sample_city_session, monkeypatch, capsys):
    city = make_example_folder(sample_city_session.out_dir, tmp_path / "musterstadt")
    for var in DEPLOYMENT_ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    assert main(["init", str(city), "--publisher", "Stadt Musterstadt, Fachdienst Geoinformation",
                 "--license", "dl-de/by-2-0", "--contact", "geodaten@musterstadt.example"]) == 0
    out = capsys.readouterr().out
    assert "buildings" in out and "lidar" in out and "trees" in out
    deployment = city / "deployment.yaml"
    text = deployment.read_text(encoding="utf-8")
    assert "roads:" not in text and "flood_zones:" not in text
    assert main(["--config", str(deployment), "run"]) == 0
    capsys.readouterr()

    latest = city / "outputs" / "latest"
    assert (latest / "index.html").is_file() and (latest / "catalog.jsonld").is_file()
    rel = latest.resolve()
    # every footprint of the input is in the model (the sample city plants a few bad records: those
    # are in the quarantine with their reason, not lost)
    footprints = pyogrio.read_info(city / "gebaeude.gpkg")["features"]
    import geopandas as gpd

    model = gpd.read_file(rel / "data" / "buildings.gpkg")
    import duckdb

    con = duckdb.connect(str(city / "outputs" / "warehouse.duckdb"), read_only=True) \
        if (city / "outputs" / "warehouse.duckdb").exists() else None
    quarantined = 0
    if con is not None:
        quarantined = con.execute("select count(*) from quarantine where role = 'buildings'").fetchone()[0]
    assert 0 < len(model) <= footprints
    assert len(model) + quarantined >= footprints * 0.95
    # the trees of the cadastre are staged (crowns present or estimated), their 3D Tiles published
    trees_csv = pd.read_csv(city / "baumkataster.csv", sep=";")
    staged = pd.read_parquet(city / "outputs" / "staging" / "trees.parquet")
    assert 0 < len(staged) <= len(trees_csv)
    assert (rel / "tiles" / "trees" / "tileset.json").is_file()
    # the quality report covers the model; the release holds the QGIS project
    report = json.loads((rel / "quality" / "report.json").read_text(encoding="utf-8"))
    assert report["model"]["buildings"] == len(model)
    assert sum(report["buildings"]["methods"].values()) == len(model)
    assert report["model"]["fallbacks"]["count"] == report["buildings"]["methods"].get("lod1_fallback", 0)
    assert report["analysis_checks"]["total"] > 0
    assert (rel / "qgis" / "musterstadt.qgz").is_file() and (rel / "data" / "trees.gpkg").is_file()
    # the release's catalog names the publisher, licence and contact given to init
    doc = (rel / "catalog.jsonld").read_text(encoding="utf-8")
    assert "Stadt Musterstadt, Fachdienst Geoinformation" in doc and "geodaten@musterstadt.example" in doc
    assert "dl-by-de/2.0" in doc
    # a second init finds nothing new; a second run has nothing to do
    assert main(["init", str(city)]) == 0
    assert "0 new, 0 changed, 0 removed" in capsys.readouterr().out
    assert deployment.read_text(encoding="utf-8") == text
    assert main(["--config", str(deployment), "run"]) == 0
    assert "nothing changed" in capsys.readouterr().out
    json.loads((rel / "catalog.jsonld").read_text(encoding="utf-8"))
