"""Catalog parsing (several JSON-LD shapes) and downloads against a real local HTTP server."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import stat
import time
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from citymodel.catalog import (
    Distribution,
    FileFetcher,
    HttpFetcher,
    download,
    extract_zip,
    fingerprint,
    format_of,
    load_catalog,
    parse_catalog,
    select_distributions,
)
from citymodel.errors import CatalogError, DownloadError, SourceDataError

from catalog_server import CatalogServer  # tests/ is on sys.path (rootdir conftest)

DCAT = "http://www.w3.org/ns/dcat#"
DCT = "http://purl.org/dc/terms/"
SPDX = "http://spdx.org/rdf/terms#"
XSD = "http://www.w3.org/2001/XMLSchema#"
LOCN = "http://www.w3.org/ns/locn#"

# Tiny fast retries for every test.
FAST = dict(timeout_s=0.3, retries=2, backoff_s=0.01)


def payload(n: int, seed: int) -> bytes:
    """Deterministic pseudo-random bytes."""
    out = bytearray()
    block = str(seed).encode()
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:n])


LAZ = payload(40_000, 1)
GEOJSON = b'{"type": "FeatureCollection", "features": []}\n'
CSV = "baumnummer;baumhoehe\nB-1;12,5\n".encode()


# ----------------------------------------------------------------------------------------------
# Catalogs in several JSON-LD shapes, all describing the same three datasets.

INLINE_CONTEXT = {
    "dcat": DCAT, "dct": DCT, "spdx": SPDX, "xsd": XSD, "locn": LOCN,
    "gsp": "http://www.opengis.net/ont/geosparql#",
    "downloadURL": {"@id": "dcat:downloadURL", "@type": "@id"},
    "modified": {"@id": "dct:modified"},
}


def compacted_catalog(laz: bytes = LAZ, laz_sha: str | None = None, with_checksum: bool = True,
                      laz_modified: str = "2024-03-01T10:00:00+01:00") -> dict:
    """The sample city's shape: inline @context, @graph, relative download URLs."""
    laz_dist = {
        "@id": "dist/lidar-1", "@type": "dcat:Distribution",
        "dct:title": "Kachel 32_682_5645",
        "downloadURL": "data/32_682_5645.laz",
        "dcat:mediaType": "application/vnd.laszip",
        "dct:format": "LAZ",
        "dcat:byteSize": {"@value": str(len(laz)), "@type": "xsd:nonNegativeInteger"},
        "modified": {"@value": laz_modified, "@type": "xsd:dateTime"},
    }
    if with_checksum:
        laz_dist["spdx:checksum"] = {
            "@type": "spdx:Checksum",
            "spdx:algorithm": {"@id": "spdx:checksumAlgorithm_sha256"},
            "spdx:checksumValue": laz_sha or hashlib.sha256(laz).hexdigest(),
        }
    return {
        "@context": INLINE_CONTEXT,
        "@graph": [
            {"@id": "catalog", "@type": "dcat:Catalog", "dct:title": "Jena Testkatalog",
             "dcat:dataset": [{"@id": "ds/lidar"}, {"@id": "ds/trees"}, {"@id": "ds/empty"}]},
            {"@id": "ds/lidar", "@type": "dcat:Dataset", "dct:identifier": "jena-lidar",
             "dct:title": [{"@value": "DOM LiDAR", "@language": "de"},
                           {"@value": "DSM LiDAR", "@language": "en"}],
             "dct:description": "Punktwolke",
             "modified": {"@value": "2024-03-01", "@type": "xsd:date"},
             "dct:license": {"@id": "http://dcat-ap.de/def/licenses/dl-by-de/2.0"},
             "dct:spatial": {"@type": "dct:Location", "locn:geometry": {
                 "@value": "POLYGON((682000 5645000,683000 5645000,683000 5646000,682000 5645000))",
                 "@type": "gsp:wktLiteral"}},
             "dcat:distribution": [{"@id": "dist/lidar-1"}]},
            laz_dist,
            {"@id": "ds/trees", "@type": "dcat:Dataset", "dct:identifier": "jena-trees",
             "dct:title": "Baumkataster",
             "modified": {"@value": "2024-02-01T08:30:00", "@type": "xsd:dateTime"},
             "dcat:distribution": [
                 {"@id": "dist/trees-csv", "dct:title": "Baumkataster CSV",
                  "downloadURL": "data/baeume.csv", "dcat:mediaType": "text/csv",
                  "dct:format": "CSV", "dcat:byteSize": len(CSV),
                  "modified": {"@value": "2024-02-01T07:30:00Z", "@type": "xsd:dateTime"}},
             ]},
            {"@id": "ds/empty", "@type": "dcat:Dataset", "dct:identifier": "jena-empty",
             "dct:title": "Ohne Verteilung"},
        ],
    }


def expanded_catalog() -> list:
    """The same catalog in expanded JSON-LD (no context, full IRIs, @value objects)."""
    laz_sha = hashlib.sha256(LAZ).hexdigest()
    return [
        {"@id": "catalog", "@type": [DCAT + "Catalog"], DCT + "title": [{"@value": "Jena Testkatalog"}],
         DCAT + "dataset": [{"@id": "ds/lidar"}, {"@id": "ds/trees"}, {"@id": "ds/empty"}]},
        {"@id": "ds/lidar", "@type": [DCAT + "Dataset"],
         DCT + "identifier": [{"@value": "jena-lidar"}],
         DCT + "title": [{"@value": "DSM LiDAR", "@language": "en"},
                         {"@value": "DOM LiDAR", "@language": "de"}],
         DCT + "description": [{"@value": "Punktwolke"}],
         DCT + "modified": [{"@value": "2024-03-01", "@type": XSD + "date"}],
         DCT + "license": [{"@id": "http://dcat-ap.de/def/licenses/dl-by-de/2.0"}],
         DCT + "spatial": [{"@id": "_:loc", }],
         DCAT + "distribution": [{"@id": "dist/lidar-1"}]},
        {"@id": "_:loc", LOCN + "geometry": [{
            "@value": "POLYGON((682000 5645000,683000 5645000,683000 5646000,682000 5645000))",
            "@type": "http://www.opengis.net/ont/geosparql#wktLiteral"}]},
        {"@id": "dist/lidar-1", "@type": [DCAT + "Distribution"],
         DCT + "title": [{"@value": "Kachel 32_682_5645"}],
         DCAT + "downloadURL": [{"@id": "data/32_682_5645.laz"}],
         DCAT + "mediaType": [{"@value": "application/vnd.laszip"}],
         DCT + "format": [{"@value": "LAZ"}],
         DCAT + "byteSize": [{"@value": str(len(LAZ)), "@type": XSD + "nonNegativeInteger"}],
         DCT + "modified": [{"@value": "2024-03-01T10:00:00+01:00", "@type": XSD + "dateTime"}],
         SPDX + "checksum": [{"@id": "_:ck"}]},
        {"@id": "_:ck", SPDX + "algorithm": [{"@id": SPDX + "checksumAlgorithm_sha256"}],
         SPDX + "checksumValue": [{"@value": laz_sha}]},
        {"@id": "ds/trees", "@type": [DCAT + "Dataset"], DCT + "identifier": [{"@value": "jena-trees"}],
         DCT + "title": [{"@value": "Baumkataster"}],
         DCT + "modified": [{"@value": "2024-02-01T08:30:00", "@type": XSD + "dateTime"}],
         DCAT + "distribution": [{"@id": "dist/trees-csv"}]},
        {"@id": "dist/trees-csv", DCT + "title": [{"@value": "Baumkataster CSV"}],
         DCAT + "downloadURL": [{"@id": "data/baeume.csv"}],
         DCAT + "mediaType": [{"@value": "text/csv"}], DCT + "format": [{"@value": "CSV"}],
         DCAT + "byteSize": [{"@value": len(CSV)}],
         DCT + "modified": [{"@value": "2024-02-01T07:30:00Z", "@type": XSD + "dateTime"}]},
        {"@id": "ds/empty", "@type": [DCAT + "Dataset"], DCT + "identifier": [{"@value": "jena-empty"}],
         DCT + "title": [{"@value": "Ohne Verteilung"}]},
    ]


def write_site(root: Path, catalog: dict | list, name: str = "catalog.jsonld",
               laz: bytes = LAZ) -> Path:
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "data" / "32_682_5645.laz").write_bytes(laz)
    (root / "data" / "baeume.csv").write_bytes(CSV)
    path = root / name
    path.write_text(json.dumps(catalog, indent=1), encoding="utf-8")
    return path


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    write_site(root, compacted_catalog())
    return root


@pytest.fixture
def server(site: Path):
    with CatalogServer(site) as srv:
        yield srv


@pytest.fixture
def no_network(monkeypatch):
    """Fail any outbound connection attempt to a non-loopback address."""
    real_connect = socket.socket.connect

    def guarded(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise AssertionError(f"network access attempted: {address}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


def part_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*.part")]


# ----------------------------------------------------------------------------------------------
# Parsing


def test_parse_compacted_graph_from_file(site: Path, no_network):
    cat = load_catalog(site / "catalog.jsonld")
    assert cat.title == "Jena Testkatalog"
    assert sorted(cat.datasets) == ["jena-empty", "jena-lidar", "jena-trees"]
    lidar = cat.dataset("jena-lidar")
    assert lidar.title == "DOM LiDAR"                     # German preferred over English
    assert lidar.description == "Punktwolke"
    assert lidar.modified == datetime(2024, 3, 1)         # xsd:date -> midnight, naive
    assert lidar.license == "http://dcat-ap.de/def/licenses/dl-by-de/2.0"
    assert lidar.spatial_wkt.startswith("POLYGON((682000 5645000")
    (d,) = lidar.distributions
    assert d.download_url == (site / "data" / "32_682_5645.laz").resolve().as_uri()
    assert d.media_type == "application/vnd.laszip" and d.format == "LAZ"
    assert d.byte_size == len(LAZ)
    assert d.checksum_algorithm == "sha256"
    assert d.checksum_value == hashlib.sha256(LAZ).hexdigest()
    assert d.modified == datetime(2024, 3, 1, 10, tzinfo=timezone(timedelta(hours=1)))
    assert d.modified == datetime(2024, 3, 1, 9, tzinfo=timezone.utc)
    trees = cat.dataset("jena-trees")
    assert trees.modified == datetime(2024, 2, 1, 8, 30) and trees.modified.tzinfo is None
    assert trees.distributions[0].modified == datetime(2024, 2, 1, 7, 30, tzinfo=timezone.utc)
    assert trees.distributions[0].byte_size == len(CSV)
    assert trees.distributions[0].checksum_value is None


def test_expanded_and_compacted_forms_give_the_same_datasets(tmp_path: Path, no_network):
    a = write_site(tmp_path / "a", compacted_catalog())
    b = write_site(tmp_path / "a", expanded_catalog(), name="expanded.jsonld")
    ca, cb = load_catalog(a), load_catalog(b)
    assert ca.title == cb.title
    assert ca.datasets == cb.datasets


def test_nested_ckan_style_document(tmp_path: Path, no_network):
    """No @graph, nested nodes, prefixed keys, literal URLs, vocabulary IRIs for type/format."""
    doc = {
        "@context": {"dcat": DCAT, "dct": DCT, "spdx": SPDX, "rdf":
                     "http://www.w3.org/1999/02/22-rdf-syntax-ns#"},
        "@type": "dcat:Catalog",
        "dct:title": {"@value": "CKAN", "@language": "en"},
        "dcat:dataset": {
            "@id": "https://ckan.example/dataset/abc", "@type": "dcat:Dataset",
            "dct:identifier": "abc",
            "dct:title": [{"@value": "Trees", "@language": "en"}, {"@value": "Bäume", "@language": "de"}],
            "dct:spatial": {"http://www.w3.org/ns/locn#geometry": {
                "@value": '{"type": "Point", "coordinates": [11.58, 50.92]}',
                "@type": "https://www.iana.org/assignments/media-types/application/vnd.geo+json"}},
            "dcat:distribution": [
                {"dcat:accessURL": "files/trees.geojson",   # literal, only accessURL (CKAN)
                 "dcat:mediaType": {"@id": "http://www.iana.org/assignments/media-types/application/geo+json"},
                 "dct:format": {"@id": "http://publications.europa.eu/resource/authority/file-type/GEOJSON"},
                 "dcat:byteSize": {"@value": "1234.0", "@type": "http://www.w3.org/2001/XMLSchema#decimal"},
                 "spdx:checksum": {"spdx:algorithm": {"@id": "spdx:checksumAlgorithm_md5"},
                                   "spdx:checksumValue": "D41D8CD98F00B204E9800998ECF8427E"}},
                {"dcat:downloadURL": {"@id": "https://other.example/x.csv"},
                 "dct:format": {"@type": "dct:IMT", "rdf:value": "CSV"}},
            ],
        },
    }
    path = tmp_path / "cat" / "ckan.jsonld"
    path.parent.mkdir()
    path.write_text(json.dumps(doc))
    cat = load_catalog(path)
    assert cat.title == "CKAN"
    ds = cat.dataset("abc")
    assert cat.dataset("https://ckan.example/dataset/abc") is ds   # the IRI is an alias
    assert ds.title == "Bäume"
    assert ds.spatial_wkt == "POINT (11.58 50.92)"
    csv, geo = sorted(ds.distributions, key=lambda d: d.format)
    assert csv.download_url == "https://other.example/x.csv" and csv.format == "CSV"
    assert geo.download_url == (tmp_path / "cat" / "files" / "trees.geojson").as_uri()
    assert geo.access_url == geo.download_url
    assert geo.media_type == "application/geo+json" and geo.format == "GEOJSON"
    assert geo.byte_size == 1234
    assert geo.checksum_algorithm == "md5"
    assert geo.checksum_value == "d41d8cd98f00b204e9800998ecf8427e"
    assert format_of(geo, role="trees") == "geojson"


def test_well_known_remote_context_is_replaced_not_fetched(tmp_path: Path, no_network):
    doc = {
        "@context": "https://semiceu.github.io/DCAT-AP/releases/3.0.0/context/dcat-ap.jsonld",
        "@graph": [
            {"@id": "https://data.jena.de/catalogue", "@type": "Catalogue", "title": "Jena",
             "dataset": ["https://data.jena.de/set/1"]},
            {"@id": "https://data.jena.de/set/1", "@type": "Dataset", "identifier": "set-1",
             "title": "Gebäude", "modificationDate": "2023-12-24T18:00:00+01:00",
             "licence": "http://dcat-ap.de/def/licenses/dl-by-de/2.0",
             "datasetDistribution": [{
                 "@type": "Distribution", "downloadUrl": "https://data.jena.de/files/g.gpkg",
                 "mediaType": "http://www.iana.org/assignments/media-types/application/geopackage+sqlite3",
                 "checksum": {"@type": "Checksum",
                              "algorithm": "http://spdx.org/rdf/terms#checksumAlgorithm_sha1",
                              "checksumValue": "a" * 40}}]},
        ],
    }
    path = tmp_path / "piveau.jsonld"
    path.write_text(json.dumps(doc))
    cat = load_catalog(path)
    ds = cat.dataset("set-1")
    assert cat.title == "Jena" and ds.title == "Gebäude"
    assert ds.modified == datetime(2023, 12, 24, 17, tzinfo=timezone.utc)
    assert ds.license == "http://dcat-ap.de/def/licenses/dl-by-de/2.0"
    (d,) = ds.distributions
    assert d.download_url == "https://data.jena.de/files/g.gpkg"
    assert d.media_type == "application/geopackage+sqlite3"
    assert (d.checksum_algorithm, d.checksum_value) == ("sha1", "a" * 40)
    assert format_of(d, role="buildings") == "gpkg"


def test_unknown_remote_context_is_a_clear_error(tmp_path: Path, no_network):
    path = tmp_path / "c.jsonld"
    path.write_text(json.dumps({"@context": "https://example.org/my-context.jsonld",
                                "@type": "Dataset"}))
    with pytest.raises(CatalogError, match=r"https://example.org/my-context.jsonld.*Fix: .*inline"):
        load_catalog(path)


def test_invalid_json(tmp_path: Path):
    path = tmp_path / "c.jsonld"
    path.write_text("<html><body>Portal</body></html>")
    with pytest.raises(CatalogError, match=r"not valid JSON.*<html>.*Fix: point catalog.url"):
        load_catalog(path)


@pytest.mark.parametrize("doc", [
    {"datasets": [{"id": "a", "url": "x.csv"}]},       # JSON, but no @context: no triples
    {"@context": {"ex": "http://example.org/"}, "ex:thing": "no dcat here"},
])
def test_json_that_is_not_dcat(tmp_path: Path, doc):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(CatalogError, match="no dcat:Catalog and no dcat:Dataset"):
        load_catalog(path)


def test_json_scalar_is_not_json_ld():
    with pytest.raises(CatalogError, match="JSON str, not a JSON-LD document"):
        parse_catalog('"just a string"', "/tmp/x.jsonld")


@pytest.mark.parametrize("ctx", [5, {"dcat": {"@id": 5}}, [True]])
def test_broken_json_ld(ctx):
    doc = {"@context": ctx, "@type": "dcat:Dataset"}
    with pytest.raises(CatalogError, match=r"x.jsonld is not valid JSON-LD: .*Fix: validate"):
        parse_catalog(json.dumps(doc), "/tmp/x.jsonld")


def test_context_file_beside_a_local_catalog_and_curie_algorithm(tmp_path: Path, no_network):
    (tmp_path / "context.jsonld").write_text(json.dumps({"@context": INLINE_CONTEXT}))
    doc = {"@context": "context.jsonld", "@type": "dcat:Dataset", "dct:identifier": "x",
           "dcat:distribution": {"downloadURL": "x.csv", "spdx:checksum": {
               "spdx:algorithm": "spdx:checksumAlgorithm_sha256",   # a string, not an @id
               "spdx:checksumValue": "ab"}}}
    (tmp_path / "c.jsonld").write_text(json.dumps(doc))
    d = load_catalog(tmp_path / "c.jsonld").dataset("x").distributions[0]
    assert d.download_url == (tmp_path / "x.csv").as_uri()
    assert (d.checksum_algorithm, d.checksum_value) == ("sha256", "ab")


def test_unknown_dataset_lists_known_ids(site: Path):
    cat = load_catalog(site / "catalog.jsonld")
    with pytest.raises(CatalogError) as err:
        cat.dataset("jena-gebaeude")
    msg = str(err.value)
    assert "jena-gebaeude" in msg and "jena-lidar, jena-trees" in msg and "Fix:" in msg


def test_dataset_without_distributions(site: Path):
    cat = load_catalog(site / "catalog.jsonld")
    with pytest.raises(CatalogError, match=r"'jena-empty'.*no dcat:distribution.*Fix:"):
        cat.dataset("jena-empty")
    assert cat.dataset("jena-empty", require_distributions=False).distributions == []


def test_bad_date_spoils_only_its_dataset(tmp_path: Path):
    doc = compacted_catalog()
    doc["@graph"][3]["modified"] = {"@value": "31.12.2023", "@type": "xsd:date"}
    path = write_site(tmp_path, doc)
    cat = load_catalog(path)
    assert cat.dataset("jena-lidar").title == "DOM LiDAR"
    with pytest.raises(CatalogError, match=r"'jena-trees'.*'31.12.2023'.*Fix: write dates"):
        cat.dataset("jena-trees")


def test_http_and_file_give_the_same_datasets(site: Path, server: CatalogServer):
    from_file = load_catalog(site / "catalog.jsonld")
    from_http = load_catalog(server.url("catalog.jsonld"), **FAST)
    assert sorted(from_file.datasets) == sorted(from_http.datasets)
    for ident, a in from_file.datasets.items():
        b = from_http.datasets[ident]
        assert (a.title, a.description, a.modified, a.license, a.spatial_wkt) == \
               (b.title, b.description, b.modified, b.license, b.spatial_wkt)
        for da, db in zip(a.distributions, b.distributions):
            rel_a = da.download_url.removeprefix(site.resolve().as_uri() + "/")
            rel_b = db.download_url.removeprefix(server.url())
            assert rel_a == rel_b and rel_a.startswith("data/")
            assert (da.byte_size, da.checksum_value, da.modified, da.format) == \
                   (db.byte_size, db.checksum_value, db.modified, db.format)


def test_paged_catalog_is_followed(tmp_path: Path):
    root = tmp_path / "site"
    full = compacted_catalog()
    graph = full["@graph"]
    ctx = dict(INLINE_CONTEXT, hydra="http://www.w3.org/ns/hydra/core#")
    page1 = {"@context": ctx, "@graph": graph[:3] + [
        {"@id": "catalog.jsonld", "@type": "hydra:PagedCollection",
         "hydra:nextPage": "page2.jsonld"}]}
    page2 = {"@context": ctx, "@graph": graph[3:]}
    write_site(root, page1)
    (root / "page2.jsonld").write_text(json.dumps(page2))
    with CatalogServer(root) as srv:
        cat = load_catalog(srv.url("catalog.jsonld"), **FAST)
        assert srv.hits["page2.jsonld"] == 1
    assert sorted(cat.datasets) == ["jena-empty", "jena-lidar", "jena-trees"]


def test_catalog_404_over_http(server: CatalogServer):
    with pytest.raises(CatalogError, match=r"missing.jsonld was not found \(HTTP 404\).*Fix:"):
        load_catalog(server.url("missing.jsonld"), **FAST)
    assert server.hits["missing.jsonld"] == 1   # no retry on 4xx


# ----------------------------------------------------------------------------------------------
# Downloads over HTTP


def lidar_dist(server: CatalogServer, **kw) -> Distribution:
    cat = load_catalog(server.url("catalog.jsonld"), **FAST)
    d = cat.dataset("jena-lidar").distributions[0]
    if kw:
        d = Distribution(**{**d.__dict__, **kw})
    return d


def test_download_verifies_and_writes_atomically(server: CatalogServer, tmp_path: Path):
    d = lidar_dist(server)
    out = tmp_path / "raw"
    r = download(d, out, dataset="lidar", **FAST)
    assert r.changed is True
    assert r.path == out / "32_682_5645.laz"
    assert r.path.read_bytes() == LAZ
    assert r.bytes == len(LAZ) and r.sha256 == hashlib.sha256(LAZ).hexdigest()
    assert r.etag and r.last_modified
    assert server.hits["data/32_682_5645.laz"] == 1
    assert part_files(out) == []
    state = json.loads((out / ".download_state" / "32_682_5645.laz.json").read_text())
    assert state["etag"] == r.etag and state["sha256"] == r.sha256


def test_unchanged_catalog_checksum_means_no_request(server: CatalogServer, tmp_path: Path):
    d = lidar_dist(server)
    first = download(d, tmp_path, dataset="lidar", **FAST)
    second = download(d, tmp_path, dataset="lidar", **FAST)
    assert second.changed is False and second.sha256 == first.sha256
    assert server.hits["data/32_682_5645.laz"] == 1


def test_second_download_is_conditional_304(server: CatalogServer, tmp_path: Path):
    d = lidar_dist(server, checksum_value=None, checksum_algorithm=None, modified=None)
    download(d, tmp_path, dataset="lidar", **FAST)
    mtime = (tmp_path / "32_682_5645.laz").stat().st_mtime_ns
    r = download(d, tmp_path, dataset="lidar", **FAST)
    assert r.changed is False
    assert server.statuses("data/32_682_5645.laz") == [200, 304]
    assert "If-None-Match" in server.request_headers("data/32_682_5645.laz")[1]
    assert (tmp_path / "32_682_5645.laz").stat().st_mtime_ns == mtime
    assert r.sha256 == hashlib.sha256(LAZ).hexdigest()


def test_last_modified_alone_gives_304(site: Path, tmp_path: Path):
    with CatalogServer(site, etag=False) as srv:
        d = lidar_dist(srv, checksum_value=None, checksum_algorithm=None, modified=None)
        download(d, tmp_path, dataset="lidar", **FAST)
        r = download(d, tmp_path, dataset="lidar", **FAST)
        assert r.changed is False
        assert srv.statuses("data/32_682_5645.laz") == [200, 304]
        assert "If-Modified-Since" in srv.request_headers("data/32_682_5645.laz")[1]


def test_changed_file_is_downloaded_again(site: Path, server: CatalogServer, tmp_path: Path):
    d = lidar_dist(server)
    download(d, tmp_path, dataset="lidar", **FAST)
    new = payload(41_000, 2)
    (site / "data" / "32_682_5645.laz").write_bytes(new)
    write_site(site, compacted_catalog(laz=new, laz_modified="2024-06-01T00:00:00Z"), laz=new)
    d2 = lidar_dist(server)
    assert d2.modified != d.modified and d2.checksum_value == hashlib.sha256(new).hexdigest()
    r = download(d2, tmp_path, dataset="lidar", **FAST)
    assert r.changed is True and r.path.read_bytes() == new
    assert server.statuses("data/32_682_5645.laz") == [200, 200]


def test_500_twice_then_success(server: CatalogServer, tmp_path: Path):
    d = lidar_dist(server)
    server.fail("data/32_682_5645.laz", status=500, times=2)
    r = download(d, tmp_path, dataset="lidar", **FAST)
    assert r.path.read_bytes() == LAZ
    assert server.statuses("data/32_682_5645.laz") == [500, 500, 200]


def test_backoff_doubles_between_retries(server: CatalogServer, tmp_path: Path):
    d = lidar_dist(server)
    server.fail("data/32_682_5645.laz", status=502, times=2)
    t0 = time.perf_counter()
    download(d, tmp_path, dataset="lidar", timeout_s=1.0, retries=2, backoff_s=0.1)
    assert time.perf_counter() - t0 >= 0.1 + 0.2          # slept 0.1 s, then 0.2 s
    assert server.statuses("data/32_682_5645.laz") == [502, 502, 200]


def test_429_asks_to_come_back_and_is_retried(server: CatalogServer, tmp_path: Path):
    d = lidar_dist(server)
    server.fail("data/32_682_5645.laz", status=429, times=1)
    assert download(d, tmp_path, dataset="lidar", **FAST).path.read_bytes() == LAZ
    assert server.statuses("data/32_682_5645.laz") == [429, 200]


def test_duplicate_identifier_spoils_only_that_id(tmp_path: Path):
    doc = compacted_catalog()
    doc["@graph"].append({"@id": "ds/trees-copy", "@type": "dcat:Dataset",
                          "dct:identifier": "jena-trees"})
    cat = load_catalog(write_site(tmp_path, doc))
    assert cat.dataset("jena-lidar").title == "DOM LiDAR"
    with pytest.raises(CatalogError, match=r"'jena-trees'.*two datasets.*share.*Fix:"):
        cat.dataset("jena-trees")


def test_slow_server_times_out_after_retries(server: CatalogServer, tmp_path: Path):
    d = lidar_dist(server)
    server.slow("data/32_682_5645.laz", seconds=2.0)
    with pytest.raises(DownloadError) as err:
        download(d, tmp_path / "raw", dataset="lidar", timeout_s=0.2, retries=2, backoff_s=0.01)
    msg = str(err.value)
    assert "dataset 'lidar'" in msg and d.download_url in msg
    assert "3 time(s)" in msg and "timed out after 0.2 s" in msg and "Fix:" in msg
    assert server.hits["data/32_682_5645.laz"] == 3
    assert not (tmp_path / "raw" / "32_682_5645.laz").exists()
    assert part_files(tmp_path) == []


def test_truncated_body_is_retried_then_an_error(server: CatalogServer, tmp_path: Path):
    d = lidar_dist(server)
    server.truncate("data/32_682_5645.laz")
    with pytest.raises(DownloadError, match=r"truncated"):
        download(d, tmp_path, dataset="lidar", **FAST)
    assert server.hits["data/32_682_5645.laz"] == 3
    assert not (tmp_path / "32_682_5645.laz").exists()
    assert part_files(tmp_path) == []


def test_truncated_once_then_complete(server: CatalogServer, tmp_path: Path):
    d = lidar_dist(server)
    server.truncate("data/32_682_5645.laz", times=1)
    r = download(d, tmp_path, dataset="lidar", **FAST)
    assert r.path.read_bytes() == LAZ and server.hits["data/32_682_5645.laz"] == 2


def test_shorter_than_byte_size_counts_as_truncated(server: CatalogServer, tmp_path: Path):
    d = lidar_dist(server, byte_size=len(LAZ) + 10, checksum_value=None, checksum_algorithm=None)
    with pytest.raises(DownloadError, match=r"truncated body: 40000 of 40010 bytes \(dcat:byteSize\)"):
        download(d, tmp_path, dataset="lidar", **FAST)
    assert not (tmp_path / "32_682_5645.laz").exists()


def test_larger_than_byte_size_is_an_error(server: CatalogServer, tmp_path: Path):
    d = lidar_dist(server, byte_size=100, checksum_value=None, checksum_algorithm=None)
    with pytest.raises(DownloadError, match=r"delivered 40000 bytes.*dcat:byteSize is 100.*Fix:"):
        download(d, tmp_path, dataset="lidar", **FAST)
    assert not (tmp_path / "32_682_5645.laz").exists() and part_files(tmp_path) == []


def test_checksum_mismatch_leaves_no_file(server: CatalogServer, tmp_path: Path):
    d = lidar_dist(server, checksum_value="0" * 64)
    with pytest.raises(DownloadError) as err:
        download(d, tmp_path, dataset="lidar", **FAST)
    msg = str(err.value)
    assert "sha256 checksum mismatch" in msg and hashlib.sha256(LAZ).hexdigest() in msg
    assert d.download_url in msg and "Fix:" in msg
    assert not (tmp_path / "32_682_5645.laz").exists() and part_files(tmp_path) == []


def test_failed_update_keeps_the_previous_good_file(site: Path, server: CatalogServer,
                                                    tmp_path: Path):
    d = lidar_dist(server)
    download(d, tmp_path, dataset="lidar", **FAST)
    (site / "data" / "32_682_5645.laz").write_bytes(payload(40_000, 3))   # catalog not updated
    stale = lidar_dist(server, modified=datetime(2025, 1, 1))               # forces a request
    with pytest.raises(DownloadError, match="checksum mismatch"):
        download(stale, tmp_path, dataset="lidar", **FAST)
    assert (tmp_path / "32_682_5645.laz").read_bytes() == LAZ


def test_md5_and_sha1_checksums(server: CatalogServer, tmp_path: Path):
    for alg in ("md5", "sha1"):
        d = lidar_dist(server, checksum_algorithm=alg, checksum_value=hashlib.new(alg, LAZ).hexdigest())
        r = download(d, tmp_path / alg, dataset="lidar", **FAST)
        assert r.changed and r.path.read_bytes() == LAZ
    bad = lidar_dist(server, checksum_algorithm="crc32", checksum_value="1234")
    with pytest.raises(DownloadError, match="'crc32', which is not supported"):
        download(bad, tmp_path / "x", dataset="lidar", **FAST)


def test_404_names_url_and_is_not_retried(server: CatalogServer, tmp_path: Path):
    d = lidar_dist(server, download_url=server.url("data/gone.laz"))
    with pytest.raises(DownloadError) as err:
        download(d, tmp_path, dataset="lidar", **FAST)
    msg = str(err.value)
    assert "dataset 'lidar'" in msg and server.url("data/gone.laz") in msg and "404" in msg
    assert "Fix:" in msg
    assert server.hits["data/gone.laz"] == 1


def test_403_is_not_retried(server: CatalogServer, tmp_path: Path):
    d = lidar_dist(server)
    server.fail("data/32_682_5645.laz", status=403, times=None)
    with pytest.raises(DownloadError, match=r"refused access \(HTTP 403\)"):
        download(d, tmp_path, dataset="lidar", **FAST)
    assert server.hits["data/32_682_5645.laz"] == 1


def test_server_without_validators_reports_unchanged_content(site: Path, tmp_path: Path):
    with CatalogServer(site, etag=False, last_modified=False) as srv:
        d = lidar_dist(srv, checksum_value=None, checksum_algorithm=None, modified=None)
        assert download(d, tmp_path, dataset="lidar", **FAST).changed is True
        r = download(d, tmp_path, dataset="lidar", **FAST)
        assert r.changed is False          # same bytes arrived again
        assert srv.statuses("data/32_682_5645.laz") == [200, 200]


def test_caller_held_state_dict(server: CatalogServer, tmp_path: Path):
    d = lidar_dist(server, checksum_value=None, checksum_algorithm=None, modified=None)
    state: dict = {}
    download(d, tmp_path, dataset="lidar", state=state, **FAST)
    assert state["sha256"] == hashlib.sha256(LAZ).hexdigest() and state["etag"]
    assert not (tmp_path / ".download_state").exists()
    assert download(d, tmp_path, dataset="lidar", state=state, **FAST).changed is False
    assert server.statuses("data/32_682_5645.laz") == [200, 304]


# ----------------------------------------------------------------------------------------------
# Local files


def test_local_file_download_copies_verifies_and_skips(site: Path, tmp_path: Path):
    cat = load_catalog(site / "catalog.jsonld")
    d = cat.dataset("jena-trees").distributions[0]
    out = tmp_path / "raw"
    r = download(d, out, dataset="trees")
    assert r.changed and r.path.read_bytes() == CSV and r.sha256 == hashlib.sha256(CSV).hexdigest()
    mtime = r.path.stat().st_mtime_ns
    r2 = download(d, out, dataset="trees")
    assert r2.changed is False and r2.path.stat().st_mtime_ns == mtime
    # the source changes (the catalog's dates do not): copied again, reported as changed
    d_nodate = Distribution(**{**d.__dict__, "modified": None, "byte_size": None})
    download(d_nodate, out, dataset="trees")
    (site / "data" / "baeume.csv").write_bytes(CSV + b"B-2;8,0\n")
    r3 = download(d_nodate, out, dataset="trees")
    assert r3.changed is True and r3.path.read_bytes().endswith(b"B-2;8,0\n")
    assert part_files(out) == []


def test_local_file_missing(tmp_path: Path):
    d = Distribution(title="x", download_url=(tmp_path / "nope.csv").as_uri())
    with pytest.raises(DownloadError, match=r"nope.csv.*does not exist.*Fix:"):
        download(d, tmp_path / "raw", dataset="trees")


def test_local_file_checksum_mismatch(tmp_path: Path):
    src = tmp_path / "a.csv"
    src.write_bytes(CSV)
    d = Distribution(title="x", download_url=src.as_uri(), checksum_algorithm="sha256",
                     checksum_value="f" * 64)
    with pytest.raises(DownloadError, match="checksum mismatch"):
        download(d, tmp_path / "raw", dataset="trees", fetcher=FileFetcher())
    assert not (tmp_path / "raw" / "a.csv").exists() and part_files(tmp_path) == []


def test_modified_local_file_same_size_is_detected(site: Path, tmp_path: Path):
    """A file edited in place (same size) after download is re-fetched, not trusted."""
    d = Distribution(title="x", download_url=(site / "data" / "baeume.csv").as_uri(),
                     modified=datetime(2024, 1, 1))
    r = download(d, tmp_path, dataset="trees")
    r.path.write_bytes(b"X" * len(CSV))
    os.utime(r.path, ns=(1, 1))
    r2 = download(d, tmp_path, dataset="trees")
    assert r2.path.read_bytes() == CSV


# ----------------------------------------------------------------------------------------------
# Archives, formats, fingerprints


def make_zip(path: Path, members: dict[str, bytes], symlink: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return path


def test_extract_zip_good_archive(tmp_path: Path):
    z = make_zip(tmp_path / "lod2.zip", {"tiles/a.gml": b"<a/>", "b.gml": b"<b/>"})
    files = extract_zip(z, tmp_path / "out")
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in files) == ["b.gml", "tiles/a.gml"]
    assert (tmp_path / "out" / "tiles" / "a.gml").read_bytes() == b"<a/>"


@pytest.mark.parametrize("member, why", [
    ("../evil.txt", "'..' path segment"),
    ("ok/../../evil.txt", "'..' path segment"),
    ("/tmp/evil.txt", "absolute path"),
    ("C:/evil.txt", "absolute path"),
])
def test_zip_slip_member_refused(tmp_path: Path, member: str, why: str):
    z = make_zip(tmp_path / "bad.zip", {"fine.txt": b"ok", member: b"evil"})
    with pytest.raises(DownloadError) as err:
        extract_zip(z, tmp_path / "out", dataset="lod2_reference")
    msg = str(err.value)
    assert "bad.zip" in msg and repr(member) in msg and why in msg and "Fix:" in msg
    assert not (tmp_path / "out" / "fine.txt").exists()       # nothing extracted
    assert not (tmp_path / "evil.txt").exists()


def test_zip_symlink_member_refused(tmp_path: Path):
    z = make_zip(tmp_path / "link.zip", {"a.txt": b"a"}, symlink="passwd")
    with pytest.raises(DownloadError, match=r"member 'passwd' is a symbolic link"):
        extract_zip(z, tmp_path / "out")
    assert not (tmp_path / "out" / "passwd").exists()


def test_not_a_zip(tmp_path: Path):
    p = tmp_path / "x.zip"
    p.write_bytes(b"not a zip")
    with pytest.raises(DownloadError, match="not a readable zip archive"):
        extract_zip(p, tmp_path / "out")


def test_format_detection():
    f = lambda **kw: Distribution(title="t", download_url=kw.pop("url", "http://h/x"), **kw)  # noqa: E731
    assert format_of(f(format="LAZ")) == "laz"
    assert format_of(f(media_type="application/geopackage+sqlite3")) == "gpkg"
    assert format_of(f(url="http://h/dgm1_32_682_5645.tif")) == "geotiff"
    assert format_of(f(url="http://h/LoD2_32_682_5645.GML")) == "citygml"
    assert format_of(f(url="http://h/b.city.json")) == "cityjson"
    assert format_of(f(media_type="image/tiff; application=geotiff")) == "geotiff"
    # a zipped LAZ: the format says ZIP, the role lidar accepts zip
    assert format_of(f(format="ZIP", url="http://h/t.laz.zip"), role="lidar") == "zip"
    # format unknown, extension known and accepted
    assert format_of(f(format="Punktwolke", url="http://h/t.las"), role="lidar") == "las"


def test_unknown_format_names_what_it_saw():
    d = Distribution(title="Karte", download_url="http://h/karte.pdf", media_type="application/pdf",
                     format="PDF")
    with pytest.raises(SourceDataError) as err:
        format_of(d, role="buildings", dataset="jena-alkis")
    msg = str(err.value)
    assert "'jena-alkis'" in msg and "'application/pdf'" in msg and "'PDF'" in msg
    assert "'.pdf'" in msg and "unknown format" in msg and "Fix:" in msg


def test_format_not_accepted_by_role():
    d = Distribution(title="Bäume", download_url="http://h/baeume.csv", format="CSV")
    with pytest.raises(SourceDataError, match=r"is csv, which role 'lidar' does not accept"):
        format_of(d, role="lidar")


def test_select_distributions_by_role(site: Path):
    cat = load_catalog(site / "catalog.jsonld")
    assert len(select_distributions(cat.dataset("jena-lidar"), "lidar")) == 1
    with pytest.raises(SourceDataError):
        select_distributions(cat.dataset("jena-trees"), "lidar")


def test_fingerprint_changes_only_with_distributions(site: Path):
    cat = load_catalog(site / "catalog.jsonld")
    ds = cat.dataset("jena-lidar")
    d = ds.distributions[0]
    other = Distribution(title="b", download_url="http://h/b.laz", byte_size=5)
    fp = fingerprint(ds)
    assert len(fp) == 64 and fp == fingerprint(load_catalog(site / "catalog.jsonld").dataset("jena-lidar"))
    swap = lambda **kw: type(ds)(**{**ds.__dict__, **kw})  # noqa: E731
    assert fingerprint(swap(title="renamed")) == fp                       # metadata only
    assert fingerprint(swap(distributions=[d, other])) == fingerprint(swap(distributions=[other, d]))
    for change in ({"checksum_value": "1" * 64}, {"modified": datetime(2030, 1, 1)},
                   {"byte_size": 1}, {"download_url": "http://h/other.laz"}):
        assert fingerprint(swap(distributions=[Distribution(**{**d.__dict__, **change})])) != fp


def test_http_fetcher_read_retries_5xx(server: CatalogServer):
    server.fail("catalog.jsonld", status=503, times=1)
    data = HttpFetcher(**FAST).read(server.url("catalog.jsonld"), label="catalog")
    assert json.loads(data)["@graph"][0]["dct:title"] == "Jena Testkatalog"
    assert server.statuses("catalog.jsonld") == [503, 200]


# ----------------------------------------------------------------------------------------------
# The Dagster resource


def test_catalog_resource_over_http(server: CatalogServer, tmp_path: Path):
    from resources.catalog import CatalogResource

    res = CatalogResource(url=server.url("catalog.jsonld"), timeout_s=0.5, retries=1,
                          backoff_s=0.01, download_dir=str(tmp_path / "raw"))
    assert res.load().title == "Jena Testkatalog"
    assert res.dataset("jena-trees").title == "Baumkataster"
    r = res.download("jena-lidar", role="lidar")
    assert r.path == tmp_path / "raw" / "jena-lidar" / "32_682_5645.laz"
    assert r.path.read_bytes() == LAZ and r.changed
    assert res.download("jena-lidar", 0, role="lidar").changed is False
    assert [x.changed for x in res.download_all("jena-trees", role="trees")] == [True]
    assert res.fingerprint("jena-lidar") == fingerprint(res.dataset("jena-lidar"))
    with pytest.raises(SourceDataError):
        res.download("jena-trees", role="lidar")
    with pytest.raises(CatalogError, match="jena-lidar"):
        res.dataset("nope")


def test_catalog_resource_from_sample_config_shape(site: Path, tmp_path: Path):
    from resources.catalog import CatalogResource

    res = CatalogResource(url=str(site / "catalog.jsonld"), download_dir=str(tmp_path / "raw"))
    r = res.download("jena-trees", "Baumkataster CSV", role="trees")
    assert r.path.read_bytes() == CSV
    with pytest.raises(CatalogError, match="no distribution titled or named 'nope'"):
        res.download("jena-trees", "nope")
