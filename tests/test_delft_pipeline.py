"""Real data through the pipeline: the Delft AHN3 LiDAR (no CRS record; the deployment file gives
EPSG:28992) and its real BGT footprints, as another city would configure them."""

import hashlib
import json

import dagster as dg
import geopandas as gpd
import laspy
import numpy as np
import pytest
import yaml

from citymodel.config import load_config
from pipelines.definitions import build_definitions
from pipelines.refresh_runner import execute_plan, plan_for


def _distribution(path, fmt, media):
    data = path.read_bytes()
    return {"@type": "dcat:Distribution", "dct:title": path.name,
            "dcat:downloadURL": {"@id": path.resolve().as_uri()}, "dct:format": fmt, "dcat:mediaType": media,
            "dcat:byteSize": {"@value": str(len(data)), "@type": "xsd:decimal"},
            "spdx:checksum": {"@type": "spdx:Checksum", "spdx:algorithm": {"@id": "spdx:checksumAlgorithm_sha256"},
                              "spdx:checksumValue": hashlib.sha256(data).hexdigest()}}


@pytest.fixture(scope="module")
def delft(tmp_path_factory, shared_data):
    root = tmp_path_factory.mktemp("delft")
    d = shared_data / "delft-ahn3"
    catalog = {
        "@context": {"dcat": "http://www.w3.org/ns/dcat#", "dct": "http://purl.org/dc/terms/",
                     "spdx": "http://spdx.org/rdf/terms#", "xsd": "http://www.w3.org/2001/XMLSchema#"},
        "@graph": [
            {"@id": "#catalog", "@type": "dcat:Catalog", "dct:title": "Delft test catalog",
             "dcat:dataset": [{"@id": "#bgt"}, {"@id": "#ahn3"}]},
            {"@id": "#bgt", "@type": "dcat:Dataset", "dct:identifier": "delft-bgt-pand", "dct:title": "BGT pand",
             "dcat:distribution": [_distribution(d / "footprints.geojson", "GeoJSON", "application/geo+json")]},
            {"@id": "#ahn3", "@type": "dcat:Dataset", "dct:identifier": "delft-ahn3", "dct:title": "AHN3",
             "dcat:distribution": [_distribution(d / f"ahn3_cropped_{i}.laz", "LAZ", "application/vnd.laszip")
                                   for i in (1, 2)]},
        ]}
    (root / "catalog.jsonld").write_text(json.dumps(catalog), encoding="utf-8")
    cfg = {"name": "delft", "processing_crs": "EPSG:28992", "vertical_crs": "EPSG:5709",
           "extent": [84800, 447400, 85080, 447650], "tile_prefix": "", "output_dir": str(root / "out"),
           "catalog": {"url": str(root / "catalog.jsonld"), "backoff_s": 0.05},
           "sources": {"buildings": {"dataset": "delft-bgt-pand", "columns": {"building_id": "identificatiebagpnd"}},
                       "lidar": {"dataset": "delft-ahn3", "crs": "EPSG:28992"}},
           "lidar": {"required_classes": [2, 6]},
           "publish": {"publisher": "Test", "license": "cc-by-4.0", "contact": "test@example.org"}}
    path = root / "delft.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    settings = load_config(path)
    defs = build_definitions(config_path=str(path))
    with dg.instance_for_test() as instance:
        plan = plan_for(instance, settings, defs.resolve_asset_graph())
        outcome = execute_plan(defs, instance, plan, log=lambda *_: None)
        yield settings, outcome, d


def test_delft_tiles_follow_the_configured_extent(delft):
    settings, outcome, _ = delft
    assert settings.tile_ids == ["84_447", "85_447"]
    assert outcome.ok, outcome.failed


def test_delft_footprints_staged_in_rd_new(delft):
    settings, _, d = delft
    staged = gpd.read_parquet(settings.staging_dir / "buildings.parquet")
    raw = gpd.read_file(d / "footprints.geojson")
    assert len(staged) == len(raw) == 160
    assert staged.crs.to_epsg() == 28992
    # leading zeros of the BAG ids survive
    assert set(staged["building_id"]) == set(raw["identificatiebagpnd"])
    np.testing.assert_allclose(staged.total_bounds, raw.total_bounds, atol=1e-6)


def test_delft_point_cloud_staged_per_tile(delft):
    settings, _, d = delft
    # points of the tile proper add up to the source points
    stats = [json.loads((settings.staging_dir / "lidar" / f"{t}.stats.json").read_text())
             for t in settings.tile_ids]
    assert sum(s["point_count"] for s in stats) == 848_942
    assert sum(s["class_counts"].get("6", 0) for s in stats) == 280_065
    for t in settings.tile_ids:
        las = laspy.read(settings.staging_dir / "lidar" / f"{t}.{settings.lidar.staged_format}")
        assert las.header.parse_crs().to_epsg() == 28992
        hag = np.asarray(las["HeightAboveGround"])
        ground = np.asarray(las.classification) == 2
        assert np.nanmedian(np.abs(hag[ground])) < 0.1
        assert 3.0 < np.nanmedian(hag[np.asarray(las.classification) == 6]) < 20.0
    report = json.loads((settings.quality_dir / "report.json").read_text())
    # no blocking failure; the warnings are the attributes BGT does not carry (function, storeys, roof form)
    assert report["summary"]["blocking_failures"] == []
    warned = {e["name"] for entry in report["entries"] if entry["suite"]
              for e in entry["suite"]["expectations"] if not e["success"]}
    assert warned and all(w.endswith("_present_share") for w in warned), warned
