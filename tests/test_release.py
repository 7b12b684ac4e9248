"""Releases: atomic switch of ``latest``, DCAT-AP catalog, SHA256SUMS, index.html, open datasets.

Expected values come from independent passes (hashlib over the files, ``sha256sum -c``, rdflib's
own JSON-LD parser, pyproj transformations back to the tile grid), never from the code under test.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rdflib
import shapely
from pyproj import Geod, Transformer
from rdflib import Namespace
from rdflib.namespace import RDF

import citymodel.release.builder as builder_mod
from citymodel.catalog import parse_catalog
from citymodel.release import (
    DEFAULT_LICENSE,
    TILE_INDEX_PATH,
    ReleaseBuilder,
    ReleaseError,
    buildings_csv,
    checks_from_quality_report,
    extent_wkt_crs84,
    latest_release,
    list_releases,
    read_sha256sums,
    tile_index,
    write_geopackage,
    write_geoparquet,
)
from citymodel.tiles import Tile

DCAT = Namespace("http://www.w3.org/ns/dcat#")
DCT = Namespace("http://purl.org/dc/terms/")
SPDX = Namespace("http://spdx.org/rdf/terms#")
LOCN = Namespace("http://www.w3.org/ns/locn#")
EXTENT = (682000.0, 5644000.0, 684000.0, 5646000.0)
OK = [{"name": "buildings_valid", "passed": True}]


def _clock(start=datetime(2025, 6, 21, 2, 0, 0, tzinfo=timezone.utc)):
    """A clock that advances one minute per call, so release ids are distinct and sorted."""
    counter = itertools.count()
    return lambda: start + timedelta(minutes=next(counter))


def _builder(out: Path, **kw) -> ReleaseBuilder:
    kw.setdefault("clock", _clock())
    kw.setdefault("lock_timeout_s", 0.3)
    return ReleaseBuilder(out, publisher="Stadt Jena, FD Geoinformation", title="3D-Stadtmodell Test",
                          spatial_wkt=extent_wkt_crs84(EXTENT, "EPSG:25832"), geoid_model="EGM96", **kw)


def _frame() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"building_id": ["B1", "B2"], "storeys": [2, 5], "ridge_height_m": [9.5, 17.25],
         "roof_form": ["gable", "flat"]},
        geometry=[shapely.box(682100, 5644100, 682112, 5644110),
                  shapely.Polygon([(682200, 5644200), (682230, 5644200), (682230, 5644220), (682200, 5644200)])],
        crs="EPSG:25832")


def _small_release(rb: ReleaseBuilder, payload: str = "v1") -> None:
    """A release of small files: text, JSON, a CityJSON stand-in and a 3D Tiles folder."""
    rb.dataset("buildings", "Gebäude LoD2", "Gebäudemodelle aus Grundriss und LiDAR", keywords=["LoD2"])
    rb.write_text("data/buildings.csv", f"building_id,storeys\nB1,2\nB2,{payload}\n", dataset="buildings")
    rb.write_json("data/buildings.city.json", {"type": "CityJSON", "version": "2.0", "payload": payload},
                  dataset="buildings")
    rb.write_bytes("data/tiles/32_682_5644.city.jsonl", b'{"type":"CityJSON"}\n', dataset="buildings")
    rb.write_json("tiles/buildings/tileset.json", {"asset": {"version": "1.1"}, "geometricError": 50,
                                                   "root": {"content": {"uri": "0.glb"}}})
    rb.write_bytes("tiles/buildings/0.glb", b"glTF\x02\x00\x00\x00")
    rb.register_folder("tiles/buildings", dataset="buildings-3dtiles", entry="tileset.json",
                       title="3D Tiles of the buildings")


def _independent_hashes(root: Path) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name != "SHA256SUMS":
            out[p.relative_to(root).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


# ---------------------------------------------------------------------------------------------
# Catalog, checksums


def test_catalog_parses_as_rdf_and_checksums_and_sizes_match(tmp_path):
    out = tmp_path / "out"
    rb = _builder(out, political_geocoding_uri="http://dcat-ap.de/def/politicalGeocoding/municipalityKey/16053000")
    rb.begin()
    _small_release(rb)
    info = rb.finalize(OK)
    rel = info.path
    doc = rel / "catalog.jsonld"
    g = rdflib.Graph()
    g.parse(data=doc.read_text(encoding="utf-8"), format="json-ld", publicID=doc.as_uri())

    cats = list(g.subjects(RDF.type, DCAT.Catalog))
    assert len(cats) == 1
    assert (cats[0], DCT.license, rdflib.URIRef(DEFAULT_LICENSE)) in g
    assert g.value(cats[0], DCT.modified) is not None
    datasets = set(g.subjects(RDF.type, DCAT.Dataset))
    assert {str(g.value(d, DCT.identifier)) for d in datasets} == {"buildings", "buildings-3dtiles"}
    dists = list(g.subjects(RDF.type, DCAT.Distribution))
    assert len(dists) == 4
    for d in dists:
        url = g.value(d, DCAT.accessURL)
        path = Path(url2pathname(urlparse(str(url)).path))
        assert path.is_file(), url
        assert int(g.value(d, DCAT.byteSize)) == path.stat().st_size
        ck = g.value(d, SPDX.checksum)
        assert str(g.value(ck, SPDX.algorithm)) == str(SPDX.checksumAlgorithm_sha256)
        assert str(g.value(ck, SPDX.checksumValue)) == hashlib.sha256(path.read_bytes()).hexdigest()
        assert (d, DCT.license, rdflib.URIRef(DEFAULT_LICENSE)) in g
        assert g.value(d, DCT["format"]) is not None
    # formats from the EU file-type vocabulary, media types from IANA
    by_name = {Path(str(g.value(d, DCAT.accessURL))).name: d for d in dists}
    assert str(g.value(by_name["buildings.csv"], DCT["format"])).endswith("/file-type/CSV")
    assert str(g.value(by_name["buildings.csv"], DCAT.mediaType)).endswith("/media-types/text/csv")
    # the 3D Tiles folder is one service distribution: access URL only
    assert g.value(by_name["tileset.json"], DCAT.downloadURL) is None
    assert g.value(by_name["buildings.csv"], DCAT.downloadURL) is not None
    # spatial extent in CRS84 encloses the extent transformed independently
    ds = next(d for d in datasets if str(g.value(d, DCT.identifier)) == "buildings")
    loc = g.value(ds, DCT.spatial)
    box = shapely.from_wkt(str(g.value(loc, DCAT.bbox)))
    tr = Transformer.from_crs("EPSG:25832", "EPSG:4326", always_xy=True)
    corners = [tr.transform(x, y) for x in EXTENT[::2] for y in EXTENT[1::2]]
    for lon, lat in corners:
        assert box.buffer(1e-7).contains(shapely.Point(lon, lat))
    assert 11.5 < box.centroid.x < 11.7 and 50.8 < box.centroid.y < 51.0  # Jena
    assert str(g.value(ds, rdflib.URIRef("http://dcat-ap.de/def/dcatde/politicalGeocodingURI"))).endswith("16053000")
    assert "EGM96" in str(g.value(g.value(ds, DCT.provenance), rdflib.RDFS.label))


def test_catalog_reads_back_with_our_own_reader(tmp_path):
    rb = _builder(tmp_path / "out")
    rb.begin()
    _small_release(rb)
    info = rb.finalize(OK)
    doc = info.path / "catalog.jsonld"
    cat = parse_catalog(doc.read_bytes(), str(doc))
    assert cat.title == "3D-Stadtmodell Test"
    ds = cat.dataset("buildings")
    assert ds.license == DEFAULT_LICENSE
    assert ds.spatial_wkt and ds.spatial_wkt.startswith("POLYGON")
    assert len(ds.distributions) == 3
    for d in ds.distributions:
        path = Path(url2pathname(urlparse(d.download_url).path))
        data = path.read_bytes()
        assert d.byte_size == len(data)
        assert d.checksum_algorithm == "sha256"
        assert d.checksum_value == hashlib.sha256(data).hexdigest()
    fmts = {Path(d.download_url).name: (d.format, d.media_type) for d in ds.distributions}
    assert fmts["buildings.csv"] == ("CSV", "text/csv")
    assert fmts["buildings.city.json"] == ("JSON", "application/city+json")
    assert fmts["32_682_5644.city.jsonl"][0] == "CityJSONSeq"   # no EU file type: a labelled extent


def test_base_url_makes_absolute_versioned_urls(tmp_path):
    rb = _builder(tmp_path / "out", base_url="https://daten.example.de/3d")
    rb.begin()
    _small_release(rb)
    info = rb.finalize(OK)
    doc = info.path / "catalog.jsonld"
    cat = parse_catalog(doc.read_bytes(), str(doc))
    url = cat.dataset("buildings").distributions[0].download_url
    assert url.startswith(f"https://daten.example.de/3d/releases/{info.release_id}/data/")


def test_sha256sums_verify_independently(tmp_path):
    rb = _builder(tmp_path / "out")
    rb.begin()
    _small_release(rb)
    info = rb.finalize(OK)
    sums = read_sha256sums(info.path / "SHA256SUMS")
    independent = _independent_hashes(info.path)
    assert sums == independent            # every file except SHA256SUMS itself, nothing else
    assert {"catalog.jsonld", "index.html", "release.json", "tiles/buildings/0.glb"} <= set(sums)
    if shutil.which("sha256sum") is None:
        pytest.skip("sha256sum not installed")
    res = subprocess.run(["sha256sum", "-c", "--strict", "SHA256SUMS"], cwd=info.path,
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    # and it catches a changed byte
    (info.path / "data" / "buildings.csv").write_text("tampered\n")
    res = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=info.path, capture_output=True, text=True)
    assert res.returncode != 0 and "data/buildings.csv: FAILED" in res.stdout


# ---------------------------------------------------------------------------------------------
# latest, refusal, crashes, pruning, unchanged


def test_latest_switches_only_after_finalize(tmp_path):
    out = tmp_path / "out"
    rb = _builder(out)
    rb.begin()
    _small_release(rb, "v1")
    assert latest_release(out) is None
    first = rb.finalize(OK)
    assert latest_release(out) == first.path.resolve()
    assert os.readlink(out / "latest") == f"releases/{first.release_id}"   # relative link
    assert (out / "LATEST").read_text().strip() == first.release_id

    partial = rb.begin()
    assert partial.name.endswith(".partial")
    _small_release(rb, "v2")
    assert latest_release(out) == first.path.resolve()       # still the old one while building
    second = rb.finalize(OK)
    assert second.release_id != first.release_id and second.release_id > first.release_id
    assert latest_release(out) == second.path.resolve()
    assert (out / "latest" / "data" / "buildings.csv").read_text().endswith("B2,v2\n")
    assert not partial.exists()
    assert second.previous_id == first.release_id


def test_blocking_check_failure_keeps_latest_and_names_the_checks(tmp_path):
    out = tmp_path / "out"
    rb = _builder(out)
    rb.begin()
    _small_release(rb, "v1")
    first = rb.finalize(OK)
    partial = rb.begin()
    _small_release(rb, "v2")
    checks = [{"name": "footprints_valid", "passed": True},
              {"name": "solids_closed", "passed": False, "description": "12 open shells"},
              {"check_name": "density", "asset_key": "lidar", "passed": False, "severity": "ERROR"},
              {"name": "tree_height_outliers", "passed": False, "severity": "WARN"}]
    with pytest.raises(ReleaseError) as err:
        rb.finalize(checks)
    msg = str(err.value)
    assert "solids_closed" in msg and "12 open shells" in msg and "lidar:density" in msg
    assert "tree_height_outliers" not in msg and "footprints_valid" not in msg
    assert "Fix:" in msg and str(partial) in msg
    assert latest_release(out) == first.path.resolve()
    assert partial.is_dir()                                  # kept for inspection
    assert list_releases(out) == [first.release_id]
    rb.begin()                                               # the next run cleans it up
    assert not partial.exists()
    rb.abort()


def test_warn_only_failure_publishes_with_warning(tmp_path):
    rb = _builder(tmp_path / "out")
    rb.begin()
    _small_release(rb)
    info = rb.finalize([{"name": "tree_height_outliers", "passed": False, "severity": "WARN"}])
    assert not info.unchanged and info.warnings == ["tree_height_outliers"]
    manifest = json.loads((info.path / "release.json").read_text())
    assert manifest["checks"][0]["blocking"] is False


def test_injected_write_error_leaves_latest_and_next_begin_cleans(tmp_path, monkeypatch):
    out = tmp_path / "out"
    rb = _builder(out)
    rb.begin()
    _small_release(rb, "v1")
    first = rb.finalize(OK)

    def broken(*args, **kwargs):  # (a full disk is tested in test_faults_release.py)
        raise OSError(13, "Permission denied")

    monkeypatch.setattr(builder_mod, "write_sha256sums", broken)
    partial = rb.begin()
    _small_release(rb, "v2")
    with pytest.raises(ReleaseError, match="Permission denied") as err:
        rb.finalize(OK)
    assert first.release_id in str(err.value)
    assert latest_release(out) == first.path.resolve()
    assert partial.is_dir()
    assert list_releases(out) == [first.release_id]
    monkeypatch.undo()
    # the lock was released: a new builder can begin at once, and it removes the leftover
    rb2 = _builder(out, clock=_clock(datetime(2025, 7, 1, tzinfo=timezone.utc)))
    rb2.begin()
    assert not partial.exists()
    _small_release(rb2, "v3")
    third = rb2.finalize(OK)
    assert latest_release(out) == third.path.resolve()


def test_error_in_callers_block_leaves_latest(tmp_path):
    out = tmp_path / "out"
    rb = _builder(out)
    rb.begin()
    _small_release(rb, "v1")
    first = rb.finalize(OK)
    with pytest.raises(RuntimeError):
        with rb:
            partial = rb.begin()
            rb.write_text("data/a.txt", "half")
            raise RuntimeError("writer crashed")
    assert latest_release(out) == first.path.resolve() and partial.is_dir()
    rb.begin()
    assert not partial.exists()
    rb.abort()


def test_pruning_keeps_n_newest(tmp_path):
    out = tmp_path / "out"
    rb = _builder(out, keep=2)
    ids = []
    for i in range(4):
        rb.begin()
        _small_release(rb, f"v{i}")
        info = rb.finalize(OK)
        ids.append(info.release_id)
    assert ids == sorted(ids)
    assert list_releases(out) == ids[-2:]
    assert info.pruned == [ids[1]]
    assert sorted(p.name for p in (out / "releases").iterdir()) == ids[-2:]
    assert latest_release(out).name == ids[-1]


def test_pruning_never_removes_the_release_latest_points_to(tmp_path):
    out = tmp_path / "out"
    rb = _builder(out, keep=1)
    rb.begin()
    _small_release(rb, "A")
    a = rb.finalize(OK)
    rb.keep = 5
    rb.begin()
    _small_release(rb, "B")
    b = rb.finalize(OK)
    # an operator rolls back to A
    os.replace(out / "latest", out / "old")
    os.symlink(f"releases/{a.release_id}", out / "latest")
    (out / "old").unlink()
    rb.keep = 1
    rb.begin()
    _small_release(rb, "A")                                   # same content as A
    info = rb.finalize(OK)
    assert info.unchanged and info.release_id == a.release_id
    assert list_releases(out) == [a.release_id]               # B pruned, A (latest) kept
    assert b.release_id in info.pruned


def test_unchanged_content_makes_no_new_release(tmp_path):
    out = tmp_path / "out"
    rb = _builder(out)
    rb.begin()
    _small_release(rb, "v1")
    first = rb.finalize(OK)
    partial = rb.begin()
    _small_release(rb, "v1")
    second = rb.finalize(OK)
    assert second.unchanged is True
    assert second.release_id == first.release_id and second.content_digest == first.content_digest
    assert not partial.exists()
    assert list_releases(out) == [first.release_id]
    # a changed catalog fact (the licence) is a change
    rb.license = "http://dcat-ap.de/def/licenses/dl-zero-de/2.0"
    rb.begin()
    _small_release(rb, "v1")
    third = rb.finalize(OK)
    assert not third.unchanged and len(list_releases(out)) == 2


def test_quality_report_timestamp_does_not_count_as_change(tmp_path):
    from quality.report import write_report

    out = tmp_path / "out"
    results = [{"dataset": "trees", "role": "trees", "checks": [
        {"name": "quarantine_share", "passed": True, "severity": "ERROR"}], "counts": {"records": 5}}]
    infos = []
    for day in (1, 2):
        qdir = tmp_path / f"q{day}"
        write_report(results, None, qdir, generated_at=datetime(2025, 6, day, tzinfo=timezone.utc))
        rb = _builder(out, clock=_clock(datetime(2025, 6, day, tzinfo=timezone.utc)))
        rb.begin()
        _small_release(rb)
        rb.add_quality_report(qdir)
        infos.append(rb.finalize(checks_from_quality_report(qdir / "report.json")))
    assert (tmp_path / "q1" / "report.json").read_bytes() != (tmp_path / "q2" / "report.json").read_bytes()
    assert infos[1].unchanged


def test_checks_from_quality_report_block_on_failures():
    report = {"status": "fail", "summary": {"blocking_failures": ["trees/geometry_valid"]}}
    checks = checks_from_quality_report(report)
    assert checks == [{"name": "quality/trees/geometry_valid", "passed": False, "blocking": True,
                       "description": "blocking failure in the quality report"}]
    assert checks_from_quality_report({"status": "pass", "summary": {}})[0]["passed"] is True


def test_symlink_impossible_falls_back_to_latest_file(tmp_path, monkeypatch):
    out = tmp_path / "out"
    rb = _builder(out)
    rb.begin()
    _small_release(rb, "v1")
    rb.finalize(OK)

    def no_symlinks(*args, **kwargs):
        raise OSError(1, "symbolic links are not permitted")

    monkeypatch.setattr(os, "symlink", no_symlinks)
    rb.begin()
    _small_release(rb, "v2")
    info = rb.finalize(OK)
    assert info.pointer == "file"
    assert not (out / "latest").is_symlink()                 # the stale link is gone
    assert (out / "LATEST").read_text().strip() == info.release_id
    assert latest_release(out) == info.path.resolve()


def test_second_builder_is_refused_while_one_is_open(tmp_path):
    out = tmp_path / "out"
    rb = _builder(out)
    partial = rb.begin()
    other = _builder(out, lock_timeout_s=0.2)
    with pytest.raises(ReleaseError, match="another release is being built"):
        other.begin()
    assert partial.is_dir()                                  # not cleaned by the refused builder
    rb.abort()
    assert not partial.exists()


# ---------------------------------------------------------------------------------------------
# bad input


def test_bad_paths_and_missing_files_are_clear_errors(tmp_path):
    rb = _builder(tmp_path / "out")
    with pytest.raises(ReleaseError, match="begin"):
        rb.write_text("data/x.txt", "x")
    rb.begin()
    for bad in ("../escape.txt", "/abs.txt", "data//x.txt", "SHA256SUMS", "a\nb.txt"):
        with pytest.raises(ReleaseError, match="release path") as err:
            rb.write_text(bad, "x", dataset="buildings")
        assert "dataset 'buildings'" in str(err.value) and "Fix:" in str(err.value)
    with pytest.raises(ReleaseError, match="does not exist"):
        rb.add_file(tmp_path / "nope.gpkg", "data/nope.gpkg", dataset="buildings")
    rb.path("data/buildings.gpkg", dataset="buildings")      # registered, never written
    with pytest.raises(ReleaseError) as err:
        rb.finalize(OK)
    assert "data/buildings.gpkg" in str(err.value) and "dataset 'buildings'" in str(err.value)
    rb.begin()
    with pytest.raises(ReleaseError, match="no boolean 'passed'"):
        rb.finalize([{"name": "half_a_check"}])
    rb.begin()
    with pytest.raises(ReleaseError, match="not in lon/lat"):
        rb.dataset("buildings", spatial_wkt="POLYGON((682000 5644000, 683000 5644000, 683000 5645000, 682000 5644000))")
    rb.abort()
    with pytest.raises(ReleaseError, match="keep"):
        ReleaseBuilder(tmp_path / "x", keep=0)


# ---------------------------------------------------------------------------------------------
# index.html


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs, self.imgs, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a" and a.get("href"):
            self.hrefs.append(a["href"])
        if tag == "img":
            self.imgs.append(a.get("src", ""))
        if tag in ("script", "link"):
            raise AssertionError(f"index.html must be self-contained, found <{tag}>")

    def handle_data(self, data):
        self.text.append(data)


def test_index_html_is_self_contained_and_links_resolve(tmp_path):
    from quality.report import write_report

    out = tmp_path / "out"
    qdir = tmp_path / "q"
    write_report([{"dataset": "trees", "checks": [{"name": "height_range", "passed": False,
                                                   "severity": "WARN"}]}], None, qdir)
    rb = _builder(out)
    rb.begin()
    _small_release(rb)
    tiles = [Tile(682, 5644), Tile(683, 5644)]
    rb.write_json(TILE_INDEX_PATH, tile_index(tiles), dataset="tile-index")
    rb.add_quality_report(qdir)
    info = rb.finalize(OK)
    page = (info.path / "index.html").read_text(encoding="utf-8")
    parser = _Links()
    parser.feed(page)
    text = " ".join(parser.text)
    for href in parser.hrefs:
        if href.startswith("http"):
            continue
        assert (info.path / href).exists(), href                # every local link resolves
    assert "tiles/buildings/tileset.json" in parser.hrefs
    assert "Cesium3DTileset.fromUrl" in text and "Tile3DLayer" in text
    assert "sha256sum -c SHA256SUMS" in text
    assert "warn" in text and "EGM96" in text and "EPSG:25832" in text
    import base64
    pngs = [s for s in parser.imgs if s.startswith("data:image/png;base64,")]
    assert len(pngs) == 1
    assert base64.b64decode(pngs[0].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------------------------------------
# open datasets


def test_tile_index_polygons_map_back_to_the_tile_grid(tmp_path):
    tiles = [Tile(682, 5644), "32_683_5645"]
    links = {"32_682_5644": {"cityjsonseq": "data/tiles/32_682_5644.city.jsonl",
                             "tileset": "tiles/buildings/tileset.json"}}
    fc = tile_index(tiles, links)
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == 2
    json.dumps(fc)                                            # plain JSON
    back = Transformer.from_crs("EPSG:4326", "EPSG:25832", always_xy=True)
    geod = Geod(ellps="GRS80")
    for f, (e, n) in zip(fc["features"], [(682, 5644), (683, 5645)]):
        ring = np.asarray(f["geometry"]["coordinates"][0])
        x, y = back.transform(ring[:, 0], ring[:, 1])
        assert abs(min(x) - e * 1000) < 0.05 and abs(max(x) - (e + 1) * 1000) < 0.05
        assert abs(min(y) - n * 1000) < 0.05 and abs(max(y) - (n + 1) * 1000) < 0.05
        area, _ = geod.polygon_area_perimeter(ring[:, 0], ring[:, 1])
        assert area > 0                                        # counter-clockwise (RFC 7946)
        # UTM scale factor near the zone's edge: ground area within 0.1 % of the grid's 1 km²
        assert abs(area - 1e6) / 1e6 < 1e-3
    assert fc["features"][0]["properties"]["links"]["cityjsonseq"].endswith("32_682_5644.city.jsonl")
    assert fc["features"][1]["properties"]["links"] == {}
    assert fc["features"][1]["id"] == "32_683_5645"
    w, s, e_, n_ = fc["bbox"]
    assert 11.5 < w < e_ < 11.7 and 50.9 < s < n_ < 51.0


def test_buildings_csv_round_trip():
    frame = _frame()
    frame["parts"] = [[{"kind": "gable"}], []]
    text = buildings_csv(frame, wkt=True)
    back = pd.read_csv(__import__("io").StringIO(text))
    assert list(back.columns) == ["building_id", "storeys", "ridge_height_m", "roof_form", "parts", "geometry_wkt"]
    assert back["ridge_height_m"].tolist() == [9.5, 17.25]
    assert json.loads(back["parts"][0]) == [{"kind": "gable"}]
    for wkt, geom in zip(back["geometry_wkt"], frame.geometry):
        assert shapely.from_wkt(wkt).equals_exact(geom, tolerance=1e-3)
    assert "geometry" not in buildings_csv(frame).splitlines()[0]


def test_geopackage_and_geoparquet_are_atomic_and_deterministic(tmp_path):
    frame = _frame()
    a = write_geopackage(frame, tmp_path / "a" / "buildings.gpkg")
    b = write_geopackage(frame, tmp_path / "b" / "buildings.gpkg")
    assert a.read_bytes() == b.read_bytes()                   # same data, same bytes
    back = gpd.read_file(a, layer="buildings")
    assert back.crs.to_epsg() == 25832 and back["building_id"].tolist() == ["B1", "B2"]
    assert back.geometry.area.round(3).tolist() == [120.0, 300.0]
    p = write_geoparquet(frame, tmp_path / "a" / "buildings.parquet")
    assert gpd.read_parquet(p).geometry.equals(frame.geometry)
    assert sorted(x.name for x in (tmp_path / "a").iterdir()) == ["buildings.gpkg", "buildings.parquet"]
    bad = frame.assign(parts=[[1], {"x": 1}])
    with pytest.raises(ReleaseError, match="buildings.parquet") as err:
        write_geoparquet(bad, tmp_path / "a" / "buildings.parquet")
    assert "Fix:" in str(err.value)
    assert gpd.read_parquet(p).geometry.equals(frame.geometry)  # old file intact
    assert sorted(x.name for x in (tmp_path / "a").iterdir()) == ["buildings.gpkg", "buildings.parquet"]
