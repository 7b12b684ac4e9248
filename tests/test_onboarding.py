"""``citymodel init``: roles recognised from small files made here, the catalog read back by the
pipeline's own parser (sizes and SHA-256 against hashlib), guesses marked, re-runs that update the
catalog and keep the user's edits, and the clear errors.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import yaml
from shapely.geometry import LineString, Point, Polygon

from citymodel.catalog import load_catalog, select_distributions
from citymodel.config import load_config
from citymodel.errors import ConfigError
from citymodel.onboarding import CATALOG_NAME, DEPLOYMENT_NAME, init_folder
from citymodel.vector import read_role
from pipelines.cli import main

CRS = "EPSG:25832"
PUB = dict(publisher="Stadt Beispiel, Geoinformation", license="dl-de/by-2-0", contact="geo@example.org")


def _box(x, y, w=10.0):
    return Polygon([(x, y), (x + w, y), (x + w, y + w), (x, y + w)])


def _laz(path: Path, x0: float, y0: float, crs: str | None = CRS) -> Path:
    import laspy
    from pyproj import CRS as PCRS

    header = laspy.LasHeader(point_format=6, version="1.4")
    header.offsets = [x0, y0, 0.0]
    header.scales = [0.01, 0.01, 0.01]
    if crs:
        header.add_crs(PCRS.from_user_input(crs))
    las = laspy.LasData(header)
    rng = np.random.default_rng(1)
    las.x = x0 + rng.uniform(0, 1000, 500)
    las.y = y0 + rng.uniform(0, 1000, 500)
    las.z = rng.uniform(150, 170, 500)
    las.classification = np.full(500, 2, dtype=np.uint8)
    las.write(path)
    return path


def _buildings(path: Path, alkis=True) -> Path:
    cols = ({"gml_id": ["DETHL1", "DETHL2"], "gebaeudefunktion": ["31001", "2000"],
             "anzahlDerOberirdischenGeschosse": [2, 3], "dachform": ["3100", "1000"]} if alkis
            else {"oid": ["a", "b"], "hoehe_ok": [9.0, 12.0]})
    gpd.GeoDataFrame(cols, geometry=[_box(681100, 5644100), _box(681300, 5644300)], crs=CRS).to_file(path)
    return path


def _folder(tmp_path: Path) -> Path:
    d = tmp_path / "musterstadt"
    (d / "laz").mkdir(parents=True)
    _laz(d / "laz" / "dom_32_681_5644_1_th.laz", 681000, 5644000)
    _laz(d / "laz" / "dom_32_682_5644_1_th.laz", 682000, 5644000)
    _buildings(d / "gebaeude.gpkg")
    # tree cadastre: x holds the northing, y the easting (as some exports do), decimal comma
    (d / "baeume.csv").write_text(
        "Baumnummer;Baumart;Baumhöhe;Kronendurchmesser;X;Y\n"
        "1;Tilia cordata;12,5;6,0;5644150,0;681150,0\n2;Acer platanoides;9,0;;5644250,5;681250,5\n",
        encoding="utf-8")
    return d


def test_first_run_recognises_roles_and_writes_a_catalog_the_pipeline_reads(tmp_path):
    d = _folder(tmp_path)
    gpd.GeoDataFrame({"strassen_id": ["r1"], "dtv": [12000.0], "name": ["Hauptstraße"]},
                     geometry=[LineString([(681000, 5644500), (681900, 5644500)])], crs=CRS).to_file(
        d / "verkehr.geojson", driver="GeoJSON")
    gpd.GeoDataFrame({"szenario": ["HQ100"], "wsp_m": [150.2]}, geometry=[_box(681500, 5644500, 100)],
                     crs=CRS).to_file(d / "hochwasser.gpkg")
    (d / "notes.txt").write_text("hello", encoding="utf-8")
    (d / "dgm1_32_681_5644.tif").write_bytes(b"II*\x00")      # a terrain raster: said to be unused
    res = init_folder(d, **PUB)
    assert set(res.roles) == {"buildings", "lidar", "trees", "roads", "flood_zones"}
    assert res.roles["lidar"] == ["laz/dom_32_681_5644_1_th.laz", "laz/dom_32_682_5644_1_th.laz"]
    assert any("notes.txt" in s for s in res.skipped)
    assert any("dgm1_32_681_5644.tif" in s and "derived from the LiDAR" in s for s in res.skipped)
    cat = load_catalog(d / CATALOG_NAME)
    for role, files in res.roles.items():
        ds = cat.dataset(f"musterstadt-{role.replace('_', '-')}")
        dists = select_distributions(ds, role)  # formats the role accepts
        assert sorted(Path(x.url).name for x in dists) == sorted(Path(f).name for f in files)
        for dist, rel in zip(sorted(dists, key=lambda x: Path(x.url).name), sorted(files, key=lambda f: Path(f).name)):
            data = (d / rel).read_bytes()
            assert dist.byte_size == len(data)
            assert dist.checksum_algorithm == "sha256" and dist.checksum_value == hashlib.sha256(data).hexdigest()
            assert dist.modified is not None
    raw = json.loads((d / CATALOG_NAME).read_text(encoding="utf-8"))
    trees = next(n for n in raw["@graph"] if n.get("dct:identifier") == "musterstadt-trees")
    langs = {t["@language"]: t["@value"] for t in trees["dct:title"]}
    assert langs["de"].startswith("Baumkataster") and langs["en"].startswith("Tree cadastre")
    descs = {t["@language"]: t["@value"] for t in trees["dct:description"]}
    assert descs["de"].startswith("2 Bäume") and descs["en"].startswith("2 trees")  # the CSV's two rows
    # the deployment file loads as it is written
    s = load_config(d / DEPLOYMENT_NAME)
    assert s.processing_crs == CRS and s.tile_prefix == "32"
    assert s.sources["buildings"].columns["storeys"] == "anzahlDerOberirdischenGeschosse"
    assert s.publish.contact == "mailto:geo@example.org"
    # extent: footprints (681100..681310, 5644100..5644310) inside the LiDAR, rounded out to 10 m
    assert s.extent == (681100.0, 5644100.0, 681310.0, 5644310.0)


def test_csv_axes_taken_from_the_values_and_marked(tmp_path):
    d = _folder(tmp_path)
    init_folder(d, **PUB)
    text = (d / DEPLOYMENT_NAME).read_text(encoding="utf-8")
    s = load_config(d / DEPLOYMENT_NAME)
    t = s.sources["trees"]
    assert t.columns["easting"] == "Y" and t.columns["northing"] == "X"
    assert t.columns["height_m"] == "Baumhöhe" and t.columns["crown_diameter_m"] == "Kronendurchmesser"
    assert t.options == {"sep": ";", "decimal": ","}
    assert re.search(r"northing: \"X\".*# GUESS: .*7-digit.*confirm", text)
    gdf = read_role("trees", d / "baeume.csv", t, s.processing_crs)
    np.testing.assert_allclose(np.column_stack([gdf.geometry.x, gdf.geometry.y]),
                               [[681150.0, 5644150.0], [681250.5, 5644250.5]])


def test_wkt_northing_first_guesses_the_northing_first_crs(tmp_path):
    d = _folder(tmp_path)
    (d / "baeume.csv").write_text("baumnummer;baumhoehe;geometrie\n1;12,5;POINT (5644150 681150)\n",
                                  encoding="utf-8")
    init_folder(d, **PUB)
    s = load_config(d / DEPLOYMENT_NAME)
    assert s.sources["trees"].crs == "EPSG:3044"
    gdf = read_role("trees", d / "baeume.csv", s.sources["trees"], s.processing_crs)
    assert (round(gdf.geometry.x[0]), round(gdf.geometry.y[0])) == (681150, 5644150)
    assert "crs: \"EPSG:3044\"   # GUESS:" in (d / DEPLOYMENT_NAME).read_text(encoding="utf-8")


def test_polygons_without_alkis_names_are_a_marked_guess(tmp_path):
    d = _folder(tmp_path)
    _buildings(d / "gebaeude.gpkg", alkis=False)
    res = init_folder(d, **PUB)
    text = (d / DEPLOYMENT_NAME).read_text(encoding="utf-8")
    assert "# GUESS: polygons without ALKIS attributes" in text
    assert re.search(r"building_id: \"oid\"\s+# GUESS: column 'oid' taken for building_id: confirm", text)
    assert "not found in the files" in text and "function_code" in text
    assert res.guesses >= 2


def test_rerun_updates_the_catalog_and_keeps_the_users_edits(tmp_path):
    d = _folder(tmp_path)
    init_folder(d, **PUB)
    path = d / DEPLOYMENT_NAME
    edited = path.read_text(encoding="utf-8").replace(
        'title: "musterstadt"', 'title: "Musterstadt an der Saale"  # my title')
    edited = re.sub(r"extent: \[.*", "extent: [681000, 5644000, 682000, 5645000]   # my district", edited)
    path.write_text(edited, encoding="utf-8")
    _laz(d / "laz" / "dom_32_681_5645_1_th.laz", 681000, 5645000)          # new
    (d / "baeume.csv").write_text((d / "baeume.csv").read_text(encoding="utf-8") +
                                  "3;Quercus robur;20,0;9,0;5644350,0;681350,0\n", encoding="utf-8")  # changed
    (d / "laz" / "dom_32_682_5644_1_th.laz").unlink()                      # removed
    gpd.GeoDataFrame({"strassen_id": ["r1"], "m_tag": [800.0], "m_nacht": [90.0]},
                     geometry=[LineString([(681000, 5644500), (681900, 5644500)])], crs=CRS).to_file(
        d / "verkehr.geojson", driver="GeoJSON")
    res = init_folder(d)  # no publication options: taken from the user's file
    assert res.new_files == ["laz/dom_32_681_5645_1_th.laz", "verkehr.geojson"]
    assert res.changed_files == ["baeume.csv"]
    assert res.removed_files == ["laz/dom_32_682_5644_1_th.laz"]
    assert res.roles_added == ["roads"] and not res.deployment_written
    text = path.read_text(encoding="utf-8")
    assert text.startswith(edited.rstrip("\n")) or "# my title" in text and "# my district" in text
    s = load_config(path)
    assert s.title == "Musterstadt an der Saale" and s.extent == (681000, 5644000, 682000, 5645000)
    assert s.sources["roads"].columns["m_day"] == "m_tag"
    cat = load_catalog(d / CATALOG_NAME)
    assert cat.dataset("musterstadt-roads") and len(cat.dataset("musterstadt-lidar").distributions) == 2
    assert cat.dataset("musterstadt-buildings").license == "http://dcat-ap.de/def/licenses/dl-by-de/2.0"
    # a role whose files are gone is reported, not deleted
    (d / "verkehr.geojson").unlink()
    res = init_folder(d)
    assert res.roles_gone == ["roads"] and "sources.roads is configured but no file" in res.summary()
    assert "roads:" in path.read_text(encoding="utf-8")


def test_without_publication_keys_the_file_says_what_to_set(tmp_path):
    d = _folder(tmp_path)
    init_folder(d)
    text = (d / DEPLOYMENT_NAME).read_text(encoding="utf-8")
    assert "publisher: null   # REQUIRED" in text
    with pytest.raises(ConfigError, match=r"publish\.publisher, publish\.license, publish\.contact are not set"):
        load_config(d / DEPLOYMENT_NAME)


def test_a_dtm_source_is_refused_with_what_to_do(tmp_path):
    """No stage reads a 'dtm' role (the terrain comes from the LiDAR ground points): configuring one
    is an error that says so, not a silently ignored dataset."""
    import yaml
    d = _folder(tmp_path)
    init_folder(d, **PUB)
    cfg = yaml.safe_load((d / DEPLOYMENT_NAME).read_text(encoding="utf-8"))
    cfg["sources"]["dtm"] = {"dataset": "musterstadt-dgm1"}
    (d / DEPLOYMENT_NAME).write_text(yaml.safe_dump(cfg), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"role 'dtm' is not read.*ground points.*Fix: remove 'dtm' from sources"):
        load_config(d / DEPLOYMENT_NAME)


def test_missing_lidar_or_crs_is_a_clear_error(tmp_path):
    d = tmp_path / "nur_gebaeude"
    d.mkdir()
    _buildings(d / "gebaeude.gpkg")
    with pytest.raises(ConfigError, match=r"no lidar found.*LiDAR tiles \(LAZ/LAS\)"):
        init_folder(d, **PUB)
    _laz(d / "kachel.laz", 681000, 5644000, crs=None)
    gpd.GeoDataFrame({"gml_id": ["a"], "dachform": ["1000"]}, geometry=[_box(681100, 5644100)]).to_file(
        d / "gebaeude.gpkg")
    with pytest.raises(ConfigError, match=r"--crs EPSG:"):
        init_folder(d, **PUB)
    res = init_folder(d, crs=CRS, **PUB)
    text = (d / DEPLOYMENT_NAME).read_text(encoding="utf-8")
    assert re.search(r"lidar:\n.*\n    crs: \"EPSG:25832\"   # GUESS: for LiDAR files without a CRS record", text)
    assert "tile_prefix: \"32\"   # GUESS: the LiDAR file names carry no tile numbers" in text
    assert res.roles["lidar"] == ["kachel.laz"]


def test_cli_init_prints_the_summary(tmp_path, capsys):
    d = _folder(tmp_path)
    assert main(["init", str(d), "--publisher", PUB["publisher"], "--license", PUB["license"],
                 "--contact", PUB["contact"]]) == 0
    out = capsys.readouterr().out
    assert "trees" in out and "catalog:" in out and f"citymodel --config {d / DEPLOYMENT_NAME} run" in out
    assert main(["init", str(tmp_path / "nope")]) == 2


def test_urls_are_inspected_and_named_by_their_url(tmp_path):
    from catalog_server import CatalogServer

    served = tmp_path / "server"
    served.mkdir()
    _laz(served / "dom_32_681_5644_1_th.laz", 681000, 5644000)
    d = tmp_path / "stadt"
    d.mkdir()
    _buildings(d / "gebaeude.gpkg")
    with CatalogServer(served) as server:
        url = server.url("dom_32_681_5644_1_th.laz")
        res = init_folder(d, urls=[url], **PUB)
        assert res.roles["lidar"] == [url]
        cat = load_catalog(d / CATALOG_NAME)
        (dist,) = cat.dataset("stadt-lidar").distributions
        data = (served / "dom_32_681_5644_1_th.laz").read_bytes()
        assert dist.url == url and dist.checksum_value == hashlib.sha256(data).hexdigest()
        assert dist.byte_size == len(data)
        s = load_config(d / DEPLOYMENT_NAME)
        assert s.processing_crs == CRS and s.extent == (681100.0, 5644100.0, 681310.0, 5644310.0)
        with pytest.raises(ConfigError, match="could not be downloaded"):
            init_folder(d, urls=[server.url("missing.laz")], **PUB)
    with pytest.raises(ConfigError, match="not an http"):
        init_folder(d, urls=["ftp://example.org/x.laz"], **PUB)
