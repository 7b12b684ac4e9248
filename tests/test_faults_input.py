"""Fault injection, untrusted input (issue #11): what a catalog, a server or a file may do to us.

Small inputs only: a tiny DCAT-AP catalog served by a real local HTTP(S) server
(tests/catalog_server.py) with drip-fed bodies, redirects to other hosts and schemes, crafted zips,
XML with entity declarations, floods of tiny polygons and a CSV with empty numeric cells. Each
case asserts the error (dataset, record where there is one, the fix), that nothing was recorded as
downloaded (no file, no download record, no extraction folder, no temporary file), and where the
pipeline's own step runs it: that a permanent error is not retried and the next good run recovers.
The end-to-end cases with ``citymodel run`` on the sample city are in test_faults_input_e2e.py.
"""

from __future__ import annotations

import hashlib
import json
import stat
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from catalog_server import CatalogServer, self_signed_cert
from citymodel.catalog import (
    Distribution,
    UrlPolicy,
    ZipLimits,
    check_zip,
    download,
    extraction_dir,
    load_catalog,
    unpack_version,
    zip_verifier,
)
from citymodel.catalog.downloads import STATE_DIR
from citymodel.catalog.transfer import TransferLimits
from citymodel.errors import CatalogError, DownloadError, SourceDataError, is_transient

DCAT = "http://www.w3.org/ns/dcat#"
DCT = "http://purl.org/dc/terms/"
SPDX = "http://spdx.org/rdf/terms#"
CTX = {"dcat": DCAT, "dct": DCT, "spdx": SPDX,
       "downloadURL": {"@id": "dcat:downloadURL", "@type": "@id"}}
EXTENT = [681700, 5644700, 682300, 5645300]
GEOJSON = json.dumps({"type": "FeatureCollection", "features": []}).encode()


# ----------------------------------------------------------------------------------------------
# A tiny catalog, its server and its deployment file

def dist(url: str, fmt: str, data: bytes | None = None, title: str | None = None,
         modified: str | None = None) -> dict:
    """A distribution node; with ``data`` its byte size and sha256 are stated."""
    node = {"dct:title": title or url.rsplit("/", 1)[-1], "downloadURL": url, "dct:format": fmt}
    if data is not None:
        node["dcat:byteSize"] = len(data)
        node["spdx:checksum"] = {"@type": "spdx:Checksum",
                                 "spdx:algorithm": {"@id": "spdx:checksumAlgorithm_sha256"},
                                 "spdx:checksumValue": hashlib.sha256(data).hexdigest()}
    if modified:
        node["dct:modified"] = modified
    return node


def catalog_doc(datasets: dict[str, list[dict]], extra: dict | None = None) -> dict:
    graph: list[dict] = [{"@id": "catalog", "@type": "dcat:Catalog", "dct:title": "Faults",
                          "dcat:dataset": [{"@id": f"ds/{i}"} for i in datasets], **(extra or {})}]
    for ident, dists in datasets.items():
        graph.append({"@id": f"ds/{ident}", "@type": "dcat:Dataset", "dct:identifier": ident,
                      "dct:title": ident,
                      "dcat:distribution": [{"@id": f"dist/{ident}/{k}", "@type": "dcat:Distribution", **d}
                                            for k, d in enumerate(dists)]})
    return {"@context": CTX, "@graph": graph}


def write_catalog(folder: Path, datasets: dict[str, list[dict]], **kw) -> Path:
    path = folder / "catalog.jsonld"
    path.write_text(json.dumps(catalog_doc(datasets, **kw)), encoding="utf-8")
    return path


def tiny_config(tmp: Path, catalog_url: str, sources: dict | None = None, catalog: dict | None = None,
                quality: dict | None = None) -> Path:
    """A deployment file for a few assets of a tiny city (the required roles name datasets that
    the tests never materialize)."""
    raw = {"name": "faults", "extent": EXTENT, "output_dir": str(tmp / "out"),
           "catalog": {"url": catalog_url, "timeout_s": 2.0, "retries": 1, "backoff_s": 0.01,
                       **(catalog or {})},
           "sources": {"buildings": {"dataset": "buildings"}, "lidar": {"dataset": "lidar"},
                       **(sources or {})},
           "quality": quality or {},
           "publish": {"publisher": "Faults test", "license": "dl-de/by-2-0", "contact": "test@example.org"}}
    path = tmp / "citymodel.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture()
def site(tmp_path: Path) -> Path:
    (tmp_path / "site" / "data").mkdir(parents=True)
    return tmp_path / "site"


@pytest.fixture()
def server(site: Path):
    with CatalogServer(site) as srv:
        yield srv


def leftovers(folder: Path) -> list[str]:
    """Every file under a download folder (downloads, records, extracted members, temporary files)."""
    if not folder.exists():
        return []
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if not p.is_dir())


def run_assets(cfg: Path, keys: list[list[str]], instance):
    """Materialize ``keys`` with the project's job, as ``citymodel run`` does (no raise)."""
    import dagster as dg

    from pipelines.definitions import build_definitions

    defs = build_definitions(config_path=str(cfg))
    job = defs.resolve_job_def("city_refresh")
    return job.execute_in_process(instance=instance, asset_selection=[dg.AssetKey(k) for k in keys],
                                  raise_on_error=False)


def step_failures(result) -> list[str]:
    return [str(e.event_specific_data.error.message) for e in result.all_events
            if e.is_step_failure and e.event_specific_data and getattr(e.event_specific_data, "error", None)]


def step_retries(result) -> int:
    return sum(1 for e in result.all_events if e.event_type_value in ("STEP_UP_FOR_RETRY", "STEP_RESTARTED"))


# ----------------------------------------------------------------------------------------------
# Scheme: an online catalog never makes the pipeline read local files

@pytest.mark.parametrize("url", ["file:///etc/hostname", "file:secret.geojson", "FILE:///etc/hostname"])
def test_online_catalog_naming_a_local_file_is_refused(site, server, tmp_path, url):
    from resources.catalog import CatalogResource

    secret = tmp_path / "secret.geojson"
    secret.write_bytes(b'{"secret": 1}')
    write_catalog(site, {"zones": [dist(url, "GeoJSON")]})
    res = CatalogResource(url=server.url("catalog.jsonld"), download_dir=str(tmp_path / "raw"), timeout_s=2)
    with pytest.raises(DownloadError) as err:
        res.download("zones", role="flood_zones")
    msg = str(err.value)
    assert "dataset 'zones'" in msg and url in msg and "local file" in msg
    assert "Fix: the publisher must give an http(s) dcat:downloadURL" in msg
    assert not is_transient(err.value)
    assert leftovers(tmp_path / "raw") == []          # nothing read, nothing recorded


def test_relative_and_absolute_paths_of_an_online_catalog_stay_on_its_server(site, server, tmp_path):
    """A path in an online catalog resolves against the catalog's URL: the file comes from the
    server (404 here), never from this machine's disk."""
    from resources.catalog import CatalogResource

    (tmp_path / "etc").mkdir()
    write_catalog(site, {"zones": [dist("/etc/hostname", "GeoJSON"), dist("../zones.geojson", "GeoJSON")]})
    (site / "zones.geojson").write_bytes(GEOJSON)
    res = CatalogResource(url=server.url("data/../catalog.jsonld"), download_dir=str(tmp_path / "raw"),
                          timeout_s=2)
    ds = res.dataset("zones")
    assert sorted(d.url for d in ds.distributions) == [server.url("etc/hostname"), server.url("zones.geojson")]
    with pytest.raises(DownloadError, match=r"was not found \(HTTP 404\)"):
        res.download("zones", distribution=server.url("etc/hostname"))
    assert res.download("zones", distribution=server.url("zones.geojson")).path.read_bytes() == GEOJSON


def test_local_catalog_may_name_local_files_and_http(site, server, tmp_path):
    """The operator's own catalog on disk may name files beside it and http(s) URLs."""
    from resources.catalog import CatalogResource

    (site / "data" / "zones.geojson").write_bytes(GEOJSON)
    local = tmp_path / "local"
    local.mkdir()
    (local / "zones.geojson").write_bytes(GEOJSON)
    cat = write_catalog(local, {"zones": [dist("zones.geojson", "GeoJSON"),
                                          dist(server.url("data/zones.geojson"), "GeoJSON", title="remote")]})
    res = CatalogResource(url=str(cat), download_dir=str(tmp_path / "raw"), timeout_s=2)
    a = res.download("zones", distribution=0)
    b = res.download("zones", distribution="remote")
    assert a.path.read_bytes() == b.path.read_bytes() == GEOJSON
    assert server.hits["data/zones.geojson"] == 1


def test_online_catalog_context_and_next_page_may_not_name_local_files(site, server, tmp_path):
    ctx_file = tmp_path / "ctx.jsonld"
    ctx_file.write_text(json.dumps({"@context": CTX}), encoding="utf-8")
    doc = catalog_doc({"zones": [dist("data/z.geojson", "GeoJSON")]})
    doc["@context"] = ctx_file.as_uri()
    (site / "catalog.jsonld").write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(CatalogError, match=r"@context names the local file .*ctx\.jsonld.*Fix:"):
        load_catalog(server.url("catalog.jsonld"), timeout_s=2, retries=0)
    # a hydra next page on this machine
    paged = catalog_doc({"zones": [dist("data/z.geojson", "GeoJSON")]},
                        extra={"http://www.w3.org/ns/hydra/core#nextPage": {"@id": (tmp_path / "p2.jsonld").as_uri()}})
    (site / "catalog.jsonld").write_text(json.dumps(paged), encoding="utf-8")
    (tmp_path / "p2.jsonld").write_text(json.dumps(catalog_doc({"other": []})), encoding="utf-8")
    with pytest.raises(CatalogError, match=r"next page \(hydra:next\) file:///.*p2\.jsonld names a local file"):
        load_catalog(server.url("catalog.jsonld"), timeout_s=2, retries=0)


# ----------------------------------------------------------------------------------------------
# Hosts and redirects

@pytest.fixture()
def other_server(tmp_path: Path):
    """A second server: ``localhost:<its port>`` is another host than the catalog's 127.0.0.1."""
    root = tmp_path / "other"
    root.mkdir()
    (root / "zones.geojson").write_bytes(GEOJSON)
    with CatalogServer(root) as srv:
        yield srv


def _other_url(srv: CatalogServer, path: str) -> str:
    return f"http://localhost:{srv.port}/{path}"


def test_download_url_on_another_host_is_refused_unless_allowed(site, server, other_server, tmp_path):
    from resources.catalog import CatalogResource

    url = _other_url(other_server, "zones.geojson")
    write_catalog(site, {"zones": [dist(url, "GeoJSON", GEOJSON)]})
    res = CatalogResource(url=server.url("catalog.jsonld"), download_dir=str(tmp_path / "raw"), timeout_s=2)
    with pytest.raises(DownloadError) as err:
        res.download("zones")
    msg = str(err.value)
    assert "host 'localhost:" in msg and "catalog's own host '127.0.0.1'" in msg
    assert f"add 'localhost:{other_server.port}' to catalog.allowed_hosts" in msg
    assert other_server.hits["zones.geojson"] == 0 and leftovers(tmp_path / "raw") == []
    allowed = CatalogResource(url=server.url("catalog.jsonld"), download_dir=str(tmp_path / "raw2"),
                              timeout_s=2, allowed_hosts=["127.0.0.1", f"localhost:{other_server.port}"])
    assert allowed.download("zones").path.read_bytes() == GEOJSON


def test_cross_host_redirect_is_refused_and_nothing_is_fetched_there(site, server, other_server, tmp_path):
    from resources.catalog import CatalogResource

    write_catalog(site, {"zones": [dist("data/zones.geojson", "GeoJSON", GEOJSON)]})
    server.redirect("data/zones.geojson", _other_url(other_server, "zones.geojson"))
    res = CatalogResource(url=server.url("catalog.jsonld"), download_dir=str(tmp_path / "raw"), timeout_s=2)
    with pytest.raises(DownloadError) as err:
        res.download("zones")
    msg = str(err.value)
    assert "redirects to another host" in msg and "the redirect was not followed" in msg
    assert server.url("data/zones.geojson") in msg and "catalog.allowed_hosts" in msg
    assert other_server.hits["zones.geojson"] == 0                    # the other host saw nothing
    assert server.hits["data/zones.geojson"] == 1                     # permanent: not retried
    assert leftovers(tmp_path / "raw") == []
    # an allowed host is followed
    ok = CatalogResource(url=server.url("catalog.jsonld"), download_dir=str(tmp_path / "raw2"), timeout_s=2,
                         allowed_hosts=["127.0.0.1", "localhost"])
    assert ok.download("zones").path.read_bytes() == GEOJSON and other_server.hits["zones.geojson"] == 1


def test_same_host_redirect_is_followed(site, server, tmp_path):
    (site / "data" / "moved.geojson").write_bytes(GEOJSON)
    server.redirect("data/zones.geojson", "/data/moved.geojson", status=301)
    d = Distribution("zones", server.url("data/zones.geojson"), format="GeoJSON")
    r = download(d, tmp_path / "raw", dataset="zones", policy=UrlPolicy(server.url("catalog.jsonld")))
    assert r.path.name == "zones.geojson" and r.path.read_bytes() == GEOJSON


def test_redirect_to_a_local_file_is_refused(site, server, tmp_path):
    server.redirect("data/zones.geojson", "file:///etc/hostname")
    d = Distribution("zones", server.url("data/zones.geojson"), format="GeoJSON")
    with pytest.raises(DownloadError, match=r"redirects to file:///etc/hostname, which is not an http\(s\) URL"):
        download(d, tmp_path / "raw", dataset="zones", policy=UrlPolicy(server.url("catalog.jsonld")))
    assert leftovers(tmp_path / "raw") == []


@pytest.fixture()
def https_server(site: Path, tmp_path: Path, monkeypatch):
    pytest.importorskip("cryptography", reason="cryptography makes the test certificate (pip install cryptography)")
    cert, key = self_signed_cert(tmp_path / "tls")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    with CatalogServer(site, tls=(cert, key)) as srv:
        yield srv


def test_https_to_http_downgrade_is_refused(site, https_server, server, tmp_path):
    from resources.catalog import CatalogResource

    (site / "data" / "zones.geojson").write_bytes(GEOJSON)
    write_catalog(site, {"zones": [dist("data/zones.geojson", "GeoJSON", GEOJSON)],
                         "plain": [dist(server.url("data/zones.geojson"), "GeoJSON", GEOJSON)]})
    res = CatalogResource(url=https_server.url("catalog.jsonld"), download_dir=str(tmp_path / "raw"), timeout_s=2)
    assert res.download("zones").path.read_bytes() == GEOJSON            # https itself works
    # a redirect from https to plain http (same host, another port)
    https_server.redirect("data/zones.geojson", server.url("data/zones.geojson"))
    res2 = CatalogResource(url=https_server.url("catalog.jsonld"), download_dir=str(tmp_path / "raw2"), timeout_s=2)
    with pytest.raises(DownloadError) as err:
        res2.download("zones")
    assert "redirects from https to plain http" in str(err.value) and "catalog.allow_insecure_http" in str(err.value)
    assert server.hits["data/zones.geojson"] == 0 and leftovers(tmp_path / "raw2") == []
    # a plain-http download URL under an https catalog
    with pytest.raises(DownloadError, match=r"is plain http \(a scheme downgrade"):
        res2.download("plain")
    assert server.hits["data/zones.geojson"] == 0
    https_server.clear_faults()
    lax = CatalogResource(url=https_server.url("catalog.jsonld"), download_dir=str(tmp_path / "raw3"), timeout_s=2,
                          allow_insecure_http=True)
    assert lax.download("plain").path.read_bytes() == GEOJSON


# ----------------------------------------------------------------------------------------------
# Drip-fed bodies: a minimum rate and a total deadline

def test_drip_fed_download_is_cut_off_by_the_minimum_rate(site, server, tmp_path):
    data = bytes(range(256)) * 40
    (site / "data" / "z.laz").write_bytes(data)
    server.drip("data/z.laz", step_bytes=1, interval_s=0.1)
    d = Distribution("z", server.url("data/z.laz"), format="LAZ", byte_size=len(data))
    t0 = time.monotonic()
    with pytest.raises(DownloadError) as err:
        download(d, tmp_path / "raw", dataset="lidar", timeout_s=0.6, retries=1, backoff_s=0.01,
                 limits=TransferLimits(deadline_s=60, min_rate_bytes_s=1000, window_s=0.6))
    took = time.monotonic() - t0
    msg = str(err.value)
    assert "below catalog.min_rate_bytes_s = 1000" in msg and "failed 2 time(s)" in msg and "Fix:" in msg
    assert is_transient(err.value)             # a slow server may be fast tomorrow: worth a retry later
    assert took < 10, f"cut off after {took:.1f} s"   # two windows of 0.6 s, not 40 s of dripping
    assert server.hits["data/z.laz"] == 2
    assert leftovers(tmp_path / "raw") == []


def test_total_deadline_bounds_a_download_and_is_permanent(site, server, tmp_path):
    data = b"x" * 4000
    (site / "data" / "z.laz").write_bytes(data)
    server.drip("data/z.laz", step_bytes=10, interval_s=0.1)      # 100 bytes/s: above the minimum rate
    d = Distribution("z", server.url("data/z.laz"), format="LAZ")
    t0 = time.monotonic()
    with pytest.raises(DownloadError) as err:
        download(d, tmp_path / "raw", dataset="lidar", timeout_s=5, retries=3, backoff_s=0.01,
                 limits=TransferLimits(deadline_s=1.5, min_rate_bytes_s=10, window_s=5))
    took = time.monotonic() - t0
    msg = str(err.value)
    assert "did not complete within catalog.download_deadline_s = 1.5 s" in msg
    assert "raise catalog.download_deadline_s" in msg and not is_transient(err.value)
    assert took < 1.5 + 2.0, f"deadline 1.5 s, took {took:.1f} s"
    assert server.hits["data/z.laz"] == 1 and leftovers(tmp_path / "raw") == []


def test_deadline_bounds_the_catalog_read(site, server, tmp_path):
    from resources.catalog import CatalogResource

    write_catalog(site, {"zones": [dist("data/z.geojson", "GeoJSON")]})
    server.drip("catalog.jsonld", step_bytes=5, interval_s=0.1)
    res = CatalogResource(url=server.url("catalog.jsonld"), download_dir=str(tmp_path / "raw"), timeout_s=5,
                          download_deadline_s=1.0, min_rate_bytes_s=1)
    t0 = time.monotonic()
    with pytest.raises(CatalogError, match=r"within catalog.download_deadline_s = 1 s.*Fix:") as err:
        res.load()
    assert time.monotonic() - t0 < 3.0 and not is_transient(err.value)


def test_too_large_file_is_refused_before_and_during_the_transfer(site, server, tmp_path):
    data = b"y" * 5000
    (site / "data" / "big.laz").write_bytes(data)
    d = Distribution("big", server.url("data/big.laz"), format="LAZ", byte_size=len(data))
    with pytest.raises(DownloadError, match=r"5000 bytes \(dcat:byteSize\), more than the 1000 bytes allowed "
                                            r"\(quality.max_file_bytes\); nothing was downloaded"):
        download(d, tmp_path / "raw", dataset="lidar", max_bytes=1000)
    assert server.hits["data/big.laz"] == 0                   # refused before any request
    undeclared = Distribution("big", server.url("data/big.laz"), format="LAZ")
    with pytest.raises(DownloadError, match=r"announces 5000 bytes \(Content-Length\), more than the 1000"):
        download(undeclared, tmp_path / "raw", dataset="lidar", max_bytes=1000)
    assert leftovers(tmp_path / "raw") == []


# ----------------------------------------------------------------------------------------------
# Crafted zips: checked before anything is recorded

def make_zip(path: Path, members: dict[str, bytes], *, special: dict[str, int] | None = None,
             compression: int = zipfile.ZIP_DEFLATED) -> Path:
    """A zip with ``members``; ``special`` adds members of a given file type (stat.S_IF*)."""
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name, kind in (special or {}).items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = (kind | 0o644) << 16
            zf.writestr(info, "/etc/passwd" if kind == stat.S_IFLNK else "")
    return path


@pytest.mark.parametrize("members, special, limits, expect", [
    ({"ok.shp": b"a", "../evil.shp": b"x"}, None, None, r"member '\.\./evil\.shp' has a '\.\.' path segment"),
    ({"ok.shp": b"a", "/etc/evil": b"x"}, None, None, r"member '/etc/evil' has an absolute path"),
    ({"ok.shp": b"a"}, {"link": stat.S_IFLNK}, None, r"member 'link' is a symbolic link"),
    ({"ok.shp": b"a"}, {"dev": stat.S_IFCHR}, None, r"member 'dev' is a device file"),
    ({"ok.shp": b"a"}, {"fifo": stat.S_IFIFO}, None, r"member 'fifo' is a FIFO or socket"),
    ({f"m{i}.txt": b"a" for i in range(60)}, None, ZipLimits(max_members=50),
     r"has 60 members, more than catalog.zip_max_members = 50"),
    ({"zeros.shp": bytes(8 << 20)}, None, None, r"member 'zeros\.shp' expands \d+ bytes to 8388608 \(ratio \d+, "
                                                r"more than catalog.zip_max_ratio = 200\): a zip bomb"),
    ({"noise.shp": np.random.default_rng(1).bytes(3 << 20)}, None, ZipLimits(max_total_bytes=2 << 20),
     r"expands to 3145728 bytes, more than catalog.zip_max_total_bytes = 2097152"),
])
def test_unsafe_zip_is_refused_and_nothing_is_recorded(site, server, tmp_path, members, special, limits, expect):
    data = make_zip(site / "data" / "zones.zip", members, special=special).read_bytes()
    d = Distribution("zones", server.url("data/zones.zip"), format="ZIP", byte_size=len(data),
                     checksum_algorithm="sha256", checksum_value=hashlib.sha256(data).hexdigest())
    with pytest.raises(DownloadError, match=expect) as err:
        download(d, tmp_path / "raw", dataset="zones", verify=zip_verifier(dataset="zones", limits=limits))
    msg = str(err.value)
    assert "dataset 'zones'" in msg and "zones.zip" in msg and "nothing was extracted" in msg and "Fix:" in msg
    assert not is_transient(err.value)
    # nothing recorded: no zip, no download record, no extraction folder, no temporary file
    assert leftovers(tmp_path / "raw") == []
    assert not (tmp_path / "evil.shp").exists() and not (tmp_path / "raw" / "evil.shp").exists()


def test_default_member_limit_is_ten_thousand(tmp_path):
    z = make_zip(tmp_path / "many.zip", {f"d/{i}": b"" for i in range(10_001)}, compression=zipfile.ZIP_STORED)
    with pytest.raises(DownloadError, match=r"has 10001 members, more than catalog.zip_max_members = 10000"):
        check_zip(z, dataset="zones")
    assert len(check_zip(make_zip(tmp_path / "ok.zip", {f"d/{i}": b"" for i in range(100)}), dataset="z")) == 100


def test_zip_is_extracted_into_a_fresh_folder_per_version(site, server, tmp_path):
    """A new version gets a new folder; the old one goes only after the new one is complete, and
    members of the old version are never listed again."""
    raw = tmp_path / "raw"
    v1 = make_zip(site / "data" / "zones.zip", {"a.shp": b"1", "old_only.shp": b"1"}).read_bytes()
    d1 = Distribution("zones", server.url("data/zones.zip"), format="ZIP", byte_size=len(v1),
                      checksum_algorithm="sha256", checksum_value=hashlib.sha256(v1).hexdigest())
    r1 = download(d1, raw, dataset="zones", verify=zip_verifier(dataset="zones"))
    f1 = extraction_dir(r1.path, r1.sha256)
    assert sorted(p.name for p in unpack_version(r1.path, r1.path, r1.sha256, dataset="zones")) == ["a.shp", "old_only.shp"]
    # version 2 is unsafe: version 1 stays as it was, in place and recorded
    v2bad = make_zip(site / "data" / "zones.zip", {"a.shp": b"2", "../x": b"x"}).read_bytes()
    d2bad = Distribution("zones", d1.download_url, format="ZIP", byte_size=len(v2bad), checksum_algorithm="sha256",
                         checksum_value=hashlib.sha256(v2bad).hexdigest())
    with pytest.raises(DownloadError, match="'..' path segment"):
        download(d2bad, raw, dataset="zones", verify=zip_verifier(dataset="zones"))
    assert r1.path.read_bytes() == v1 and f1.is_dir()
    assert json.loads((raw / STATE_DIR / "zones.zip.json").read_text())["sha256"] == r1.sha256
    # version 2, good
    v2 = make_zip(site / "data" / "zones.zip", {"a.shp": b"2", "new_only.shp": b"2"}).read_bytes()
    d2 = Distribution("zones", d1.download_url, format="ZIP", byte_size=len(v2), checksum_algorithm="sha256",
                      checksum_value=hashlib.sha256(v2).hexdigest())
    r2 = download(d2, raw, dataset="zones", verify=zip_verifier(dataset="zones"))
    f2 = extraction_dir(r2.path, r2.sha256)
    assert f2 != f1 and f2.is_dir() and f1.is_dir()         # extracted before the zip was renamed into place
    from citymodel.catalog import prune_extractions

    prune_extractions(r2.path, keep=f2)
    assert not f1.exists()
    files = unpack_version(r2.path, r2.path, r2.sha256, dataset="zones")
    assert sorted(p.name for p in files) == ["a.shp", "new_only.shp"] and (f2 / "a.shp").read_bytes() == b"2"


# ----------------------------------------------------------------------------------------------
# The sources step: permanent errors are not retried, transient ones are; raw/ is pruned

def zones_zip(path: Path, unsafe: bool = False) -> bytes:
    members = {"zones.geojson": GEOJSON}
    if unsafe:
        members["../../escaped.txt"] = b"evil"
    return make_zip(path, members).read_bytes()


def test_unsafe_zip_fails_the_sources_step_once_and_records_nothing(site, server, tmp_path):
    """Before: the zip was renamed into place and recorded, the step's retry saw 'unchanged' and
    published stale data with exit 0. Now the step fails at once, for good, and leaves no trace."""
    import dagster as dg

    good = zones_zip(site / "data" / "zones.zip")
    write_catalog(site, {"zones": [dist("data/zones.zip", "ZIP", good)]})
    cfg = tiny_config(tmp_path, server.url("catalog.jsonld"), {"flood_zones": {"dataset": "zones"}})
    raw = tmp_path / "out" / "raw"
    with dg.instance_for_test() as instance:
        assert run_assets(cfg, [["sources", "flood_zones"]], instance).success
        before = leftovers(raw)
        manifest = (raw / "_manifests" / "flood_zones.json").read_bytes()
        assert "zones/zones.zip" in before and any(p.endswith(".d/zones.geojson") for p in before)
        bad = zones_zip(site / "data" / "zones.zip", unsafe=True)
        write_catalog(site, {"zones": [dist("data/zones.zip", "ZIP", bad)]})
        hits = server.hits["data/zones.zip"]
        result = run_assets(cfg, [["sources", "flood_zones"]], instance)
        assert not result.success
        [msg] = step_failures(result)
        assert "dataset 'zones', record '../../escaped.txt'" in msg and "has a '..' path segment" in msg
        assert "Fix: the archive is unsafe" in msg
        assert step_retries(result) == 0 and server.hits["data/zones.zip"] == hits + 1
        assert leftovers(raw) == before                                   # nothing recorded or extracted
        assert (raw / "_manifests" / "flood_zones.json").read_bytes() == manifest
        assert not (tmp_path / "out" / "escaped.txt").exists()
        # the publisher fixes the archive: the next run recovers
        fixed = make_zip(site / "data" / "zones.zip", {"zones.geojson": GEOJSON, "readme.txt": b"v2"}).read_bytes()
        write_catalog(site, {"zones": [dist("data/zones.zip", "ZIP", fixed)]})
        assert run_assets(cfg, [["sources", "flood_zones"]], instance).success
        members = json.loads((raw / "_manifests" / "flood_zones.json").read_text())["files"][0]["members"]
        assert sorted(Path(m).name for m in members) == ["readme.txt", "zones.geojson"]
        assert len([p for p in (raw / "zones").iterdir() if p.name.endswith(".d")]) == 1   # old version gone


def test_transient_errors_are_retried_by_the_step(site, server, tmp_path):
    import dagster as dg

    (site / "data" / "z.geojson").write_bytes(GEOJSON)
    write_catalog(site, {"zones": [dist("data/z.geojson", "GeoJSON", GEOJSON)]})
    cfg = tiny_config(tmp_path, server.url("catalog.jsonld"), {"flood_zones": {"dataset": "zones"}},
                      catalog={"retries": 0})
    server.fail("data/z.geojson", status=503, times=1)     # the fetcher gives up, the step tries again
    with dg.instance_for_test() as instance:
        result = run_assets(cfg, [["sources", "flood_zones"]], instance)
    assert result.success and step_retries(result) >= 1 and server.hits["data/z.geojson"] == 2


def test_404_fails_the_step_without_retry(site, server, tmp_path):
    import dagster as dg

    write_catalog(site, {"zones": [dist("data/gone.geojson", "GeoJSON")]})
    cfg = tiny_config(tmp_path, server.url("catalog.jsonld"), {"flood_zones": {"dataset": "zones"}})
    with dg.instance_for_test() as instance:
        result = run_assets(cfg, [["sources", "flood_zones"]], instance)
    [msg] = step_failures(result)
    assert "dataset 'zones'" in msg and "HTTP 404" in msg and "Fix:" in msg
    assert step_retries(result) == 0 and server.hits["data/gone.geojson"] == 1


def test_raw_keeps_only_what_the_catalog_lists(site, server, tmp_path):
    import dagster as dg

    for name in ("a.geojson", "b.geojson"):
        (site / "data" / name).write_bytes(GEOJSON)
    zones_zip(site / "data" / "c.zip")
    write_catalog(site, {"zones": [dist("data/a.geojson", "GeoJSON"), dist("data/b.geojson", "GeoJSON"),
                                   dist("data/c.zip", "ZIP")]})
    cfg = tiny_config(tmp_path, server.url("catalog.jsonld"), {"flood_zones": {"dataset": "zones"}})
    folder = tmp_path / "out" / "raw" / "zones"
    with dg.instance_for_test() as instance:
        assert run_assets(cfg, [["sources", "flood_zones"]], instance).success
        assert {"a.geojson", "b.geojson", "c.zip"} <= {p.name for p in folder.iterdir()}
        write_catalog(site, {"zones": [dist("data/a.geojson", "GeoJSON")]})   # b and c withdrawn
        assert run_assets(cfg, [["sources", "flood_zones"]], instance).success
    assert leftovers(folder) == [".download_state/a.geojson.json", "a.geojson"]
    assert sorted(p.name for p in folder.iterdir()) == [".download_state", "a.geojson"]   # c.zip's folder gone


def test_prune_keeps_distributions_that_share_a_file_name(site, server, tmp_path):
    """Two tiles both called tile.laz are stored as 0000_tile.laz and 0001_tile.laz: pruning
    after the download keeps both (and their records)."""
    from resources.catalog import CatalogResource

    for sub, data in (("a", b"A" * 10), ("b", b"B" * 20)):
        (site / "data" / sub).mkdir()
        (site / "data" / sub / "tile.laz").write_bytes(data)
    write_catalog(site, {"lidar": [dist("data/a/tile.laz", "LAZ"), dist("data/b/tile.laz", "LAZ")]})
    res = CatalogResource(url=server.url("catalog.jsonld"), download_dir=str(tmp_path / "raw"), timeout_s=2)
    got = res.download_all("lidar")
    assert sorted(r.path.read_bytes() for r in got) == [b"A" * 10, b"B" * 20]
    before = leftovers(tmp_path / "raw" / "lidar")
    assert res.prune("lidar") == []
    assert leftovers(tmp_path / "raw" / "lidar") == before
    write_catalog(site, {"lidar": [dist("data/a/tile.laz", "LAZ")]})     # one withdrawn: no twins left
    res = CatalogResource(url=server.url("catalog.jsonld"), download_dir=str(tmp_path / "raw"), timeout_s=2)
    res.download_all("lidar")
    res.prune("lidar")
    assert sorted(p.name for p in (tmp_path / "raw" / "lidar").iterdir()) == [".download_state", "tile.laz"]


# ----------------------------------------------------------------------------------------------
# XML: a DOCTYPE that declares entities is rejected

BILLION_LAUGHS = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE core:CityModel [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
 <!ENTITY xxe SYSTEM "http://127.0.0.1:9/evil.dtd">
]>
<core:CityModel xmlns:core="http://www.opengis.net/citygml/2.0" xmlns:gml="http://www.opengis.net/gml"
    xmlns:bldg="http://www.opengis.net/citygml/building/2.0" xmlns:gen="http://www.opengis.net/citygml/generics/2.0">
 <gml:name>&lol9;&xxe;</gml:name>
 <gml:boundedBy><gml:Envelope srsName="EPSG:25832"><gml:lowerCorner>0 0 0</gml:lowerCorner>
  <gml:upperCorner>1 1 1</gml:upperCorner></gml:Envelope></gml:boundedBy>
 <core:cityObjectMember><bldg:Building gml:id="B1"><bldg:measuredHeight uom="m">&lol9;</bldg:measuredHeight>
 </bldg:Building></core:cityObjectMember>
</core:CityModel>
"""


def test_citygml_with_entity_declarations_is_rejected(tmp_path):
    from citymodel.citygml import check_citygml_structure, read_citygml

    gml = tmp_path / "LoD2_32_682_5645.gml"
    gml.write_text(BILLION_LAUGHS, encoding="utf-8")
    with pytest.raises(SourceDataError) as err:
        read_citygml(gml, "jena-lod2")
    msg = str(err.value)
    assert "dataset 'jena-lod2', record 'LoD2_32_682_5645.gml'" in msg
    assert "declares 11 XML entities in its DOCTYPE (lol, lol1, lol2, lol3, lol4 and 6 more)" in msg
    assert "the file was not read" in msg and "Fix: ask the publisher for the file without a DOCTYPE" in msg
    zipped = make_zip(tmp_path / "lod2.zip", {"tile.gml": BILLION_LAUGHS.encode()})
    with pytest.raises(SourceDataError, match=r"lod2\.zip!tile\.gml declares 11 XML entities"):
        read_citygml(zipped, "jena-lod2")
    assert any("declares 11 XML entities" in e for e in check_citygml_structure(gml).errors)
    # a DOCTYPE without entity declarations is harmless and read
    plain = tmp_path / "plain.gml"
    plain.write_text(BILLION_LAUGHS.split("[", 1)[0] + ">" + BILLION_LAUGHS.split("]>", 1)[1]
                     .replace("&lol9;&xxe;", "x").replace("&lol9;", "12.5"), encoding="utf-8")
    assert [b.building_id for b in read_citygml(plain, "jena-lod2")] == ["B1"]


def test_entity_citygml_fails_lod2_staging_without_retry(site, server, tmp_path):
    import dagster as dg

    data = make_zip(site / "data" / "lod2.zip", {"LoD2_32_682_5645_2_TH.gml": BILLION_LAUGHS.encode()}).read_bytes()
    write_catalog(site, {"lod2": [dist("data/lod2.zip", "ZIP", data)]})
    cfg = tiny_config(tmp_path, server.url("catalog.jsonld"), {"lod2_reference": {"dataset": "lod2"}})
    with dg.instance_for_test() as instance:
        result = run_assets(cfg, [["sources", "lod2_reference"], ["staging", "lod2_reference"]], instance)
    [msg] = step_failures(result)
    assert "dataset 'lod2', record 'LoD2_32_682_5645_2_TH.gml'" in msg and "declares 11 XML entities" in msg
    assert step_retries(result) == 0
    assert not (tmp_path / "out" / "staging" / "lod2_reference.parquet").exists()


# ----------------------------------------------------------------------------------------------
# Limits on counts and sizes; tiny footprints

def tiny_squares(path: Path, n: int, side_m: float = 1.0, crs: str = "EPSG:25832") -> Path:
    """``n`` squares of ``side_m`` metres in a GeoPackage with the sample city's building columns."""
    import geopandas as gpd
    import shapely

    i = np.arange(n)
    x0 = 681800 + (i % 1000) * 1.5
    y0 = 5644800 + (i // 1000) * 1.5
    geoms = shapely.box(x0, y0, x0 + side_m, y0 + side_m)
    frame = gpd.GeoDataFrame({"gml_id": [f"T{k}" for k in i], "gebaeudefunktion": "31001", "anzahl_og": 1,
                              "dachform": "1000"}, geometry=geoms, crs=crs)
    frame.to_file(path, driver="GPKG", layer="gebaeude")
    return path


def test_flood_of_tiny_polygons_fails_fast(tmp_path):
    from citymodel.config import QualitySettings, SourceSettings
    from citymodel.vector import read_role

    path = tiny_squares(tmp_path / "gebaeude.gpkg", 5000)
    src = SourceSettings(dataset="alkis")
    q = QualitySettings(max_features={"buildings": 1000})
    with pytest.raises(SourceDataError) as err:
        read_role("buildings", path, src, "EPSG:25832", max_features=q.max_features["buildings"])
    msg = str(err.value)
    assert "dataset 'alkis'" in msg and "'gebaeude.gpkg' holds 5000 or more records" in msg
    assert "more than quality.max_features.buildings = 1000" in msg and "before reading any geometry" in msg
    assert "raise quality.max_features.buildings" in msg
    with pytest.raises(SourceDataError, match=r"more than quality.max_file_bytes.buildings = 1000; it was not read"):
        read_role("buildings", path, src, "EPSG:25832", max_file_bytes=1000)


def test_tiny_footprints_are_quarantined_with_a_reason(tmp_path):
    import geopandas as gpd
    import pandas as pd
    import shapely

    from citymodel.config import QualitySettings, SourceSettings
    from citymodel.vector import read_role, validate_records

    path = tiny_squares(tmp_path / "gebaeude.gpkg", 20, side_m=1.0)            # 1 m² each
    big = gpd.read_file(path).iloc[:1].copy()
    big["gml_id"] = "BIG"
    big["geometry"] = [shapely.box(682000, 5645000, 682010, 5645012)]       # 120 m²
    gpd.GeoDataFrame(pd.concat([gpd.read_file(path), big]), crs="EPSG:25832").to_file(
        tmp_path / "mixed.gpkg", driver="GPKG", layer="gebaeude")
    gdf = read_role("buildings", tmp_path / "mixed.gpkg", SourceSettings(dataset="alkis"), "EPSG:25832")
    valid, q = validate_records("buildings", gdf, QualitySettings())
    assert valid["building_id"].tolist() == ["BIG"]
    assert len(q) == 20 and set(q["reason_codes"]) == {"too_small"}           # quarantined, not dropped
    assert q["reason"].iloc[0] == "footprint area 1.00 m² is below quality.min_footprint_area_m2 = 2 m²"
    valid0, q0 = validate_records("buildings", gdf, QualitySettings(min_footprint_area_m2=0))
    assert len(valid0) == 21 and len(q0) == 0


def test_tiny_polygon_flood_fails_the_staging_step(site, server, tmp_path):
    import dagster as dg

    data = tiny_squares(site / "data" / "gebaeude.gpkg", 3000).read_bytes()
    write_catalog(site, {"buildings": [dist("data/gebaeude.gpkg", "GPKG", data)]})
    cfg = tiny_config(tmp_path, server.url("catalog.jsonld"), quality={"max_features": {"buildings": 2000}})
    with dg.instance_for_test() as instance:
        result = run_assets(cfg, [["sources", "buildings"], ["staging", "buildings"]], instance)
    [msg] = step_failures(result)
    assert "dataset 'buildings'" in msg and "holds 3000 or more records" in msg and "quality.max_features" in msg
    assert step_retries(result) == 0
    assert not (tmp_path / "out" / "staging" / "buildings.parquet").exists()


def test_oversized_download_is_refused_by_the_role_limit(site, server, tmp_path):
    import dagster as dg

    data = b"z" * 4096
    (site / "data" / "z.geojson").write_bytes(data)
    write_catalog(site, {"zones": [dist("data/z.geojson", "GeoJSON")]})
    cfg = tiny_config(tmp_path, server.url("catalog.jsonld"), {"flood_zones": {"dataset": "zones"}},
                      quality={"max_file_bytes": {"flood_zones": 1024}})
    with dg.instance_for_test() as instance:
        result = run_assets(cfg, [["sources", "flood_zones"]], instance)
    [msg] = step_failures(result)
    assert "announces 4096 bytes" in msg and "quality.max_file_bytes" in msg and step_retries(result) == 0
    assert leftovers(tmp_path / "out" / "raw" / "zones") == []


@pytest.mark.slow
def test_two_million_tiny_polygons_fail_fast_with_the_default_limit(tmp_path):
    """The issue's case at full size: 2 million 1 m² polygons stop at the count, before any geometry
    is read (the default quality.max_features.buildings is one million)."""
    from citymodel.config import QualitySettings, SourceSettings
    from citymodel.vector import read_role

    path = tiny_squares(tmp_path / "gebaeude.gpkg", 2_000_000)
    t0 = time.monotonic()
    with pytest.raises(SourceDataError, match=r"holds 2000000 or more records, more than "
                                              r"quality.max_features.buildings = 1000000"):
        read_role("buildings", path, SourceSettings(dataset="alkis"), "EPSG:25832",
                  max_features=QualitySettings().max_features["buildings"])
    assert time.monotonic() - t0 < 60


# ----------------------------------------------------------------------------------------------
# CSV: an empty numeric cell

TREES = ("baumnummer;ga_lang;baumhoehe;kr_durchm;st_umfang;vitalitaet;geometrie\n"
         "T1;Tilia;12,5;6,0;120;1;POINT (5645000 682000)\n"
         "T2;Acer;;5,0;90;1;POINT (5645010 682000)\n"          # empty height: required
         "T3;Acer;10,0;4,0;;2;POINT (5645020 682000)\n"        # empty trunk: optional
         "T4;Quercus; ;  ;80;1;POINT (5645030 682000)\n")      # blank height and crown


def test_empty_numeric_cells_in_the_tree_csv(tmp_path):
    from citymodel.config import QualitySettings, SourceSettings
    from citymodel.vector import read_role, validate_records

    path = tmp_path / "baeume.csv"
    path.write_text(TREES, encoding="utf-8")
    src = SourceSettings(dataset="baumkataster", crs="EPSG:3044", options={"sep": ";", "decimal": ","})
    gdf = read_role("trees", path, src, "EPSG:25832")          # used to raise AttributeError
    assert gdf["height_m"].tolist()[0] == 12.5 and np.isnan(gdf["height_m"].iloc[1])
    valid, q = validate_records("trees", gdf, QualitySettings())
    assert valid["tree_id"].tolist() == ["T1", "T3"] and np.isnan(valid["trunk_circumference_cm"].iloc[1])
    reasons = dict(zip(q["record_id"], q["reason"]))
    assert reasons["T2"] == "height_m is missing (an empty cell): the record cannot be used without it"
    assert "height_m is missing" in reasons["T4"] and "crown_diameter_m is missing" in reasons["T4"]
    assert set(q["reason_codes"]) == {"missing_value"}


def test_empty_csv_cell_is_quarantined_by_the_trees_staging_step(site, server, tmp_path):
    import dagster as dg
    import duckdb

    (site / "data" / "baeume.csv").write_text(TREES, encoding="utf-8")
    write_catalog(site, {"trees": [dist("data/baeume.csv", "CSV")]})
    cfg = tiny_config(tmp_path, server.url("catalog.jsonld"),
                      {"trees": {"dataset": "trees", "crs": "EPSG:3044", "options": {"sep": ";", "decimal": ","}}},
                      quality={"max_quarantine_share": 0.9})
    with dg.instance_for_test() as instance:
        result = run_assets(cfg, [["sources", "trees"], ["staging", "trees"]], instance)
    assert result.success, step_failures(result)
    with duckdb.connect(str(tmp_path / "out" / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute("select record_id, reason from quarantine where role = 'trees' order by 1").fetchall()
        kept = con.execute("select tree_id from trees order by 1").fetchall()
    assert [r[0] for r in rows] == ["T2", "T4"] and "height_m is missing" in rows[0][1]
    assert [k[0] for k in kept] == ["T1", "T3"]
