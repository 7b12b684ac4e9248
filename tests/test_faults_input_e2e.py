"""Fault injection, untrusted input, end to end: ``citymodel run`` on the sample city.

One good run of the whole sample city (served over HTTP by tests/catalog_server.py) is shared with
test_faults_city.py (``served_city`` in conftest.py); each test then injects one fault into the served catalog or server, runs
``citymodel run`` as an operator would, and asserts the exit status, the message (dataset, URL,
fix), that nothing was recorded as downloaded (``raw/`` unchanged), that ``latest`` still verifies
with ``sha256sum -c SHA256SUMS`` and still points at the same release, and that the next good run
recovers. The same faults on small inputs, with more variants, are in test_faults_input.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import citymodel_cli, write_config

# a run per fault and per recovery after the shared good run: 50 min on a busy 2-core machine
# (load 15; the first run alone 29 min)
pytestmark = [pytest.mark.slow, pytest.mark.timeout(5400)]

FLOOD = "jena-sample-ueberschwemmungsgebiete"
FLOOD_FILE = "files/ueberschwemmungsgebiete.geojson"


def citymodel(cfg: Path, *args: str, timeout: float = 3600) -> subprocess.CompletedProcess:
    return citymodel_cli(cfg, *args, timeout=timeout)


def latest_state(out: Path) -> tuple[str, bytes]:
    """The release ``latest`` points at, and its SHA256SUMS."""
    latest = out / "latest"
    return os.readlink(latest), (latest / "SHA256SUMS").read_bytes()


def latest_verifies(out: Path) -> bool:
    r = subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=out / "latest",
                       capture_output=True, text=True)
    return r.returncode == 0


def raw_state(out: Path) -> dict[str, str]:
    """Every file under raw/ (downloads, records, extracted members, manifests) with its sha256."""
    raw = out / "raw"
    return {p.relative_to(raw).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(raw.rglob("*")) if p.is_file()}


def edit_distribution(catalog: Path, dataset: str, **changes) -> None:
    """Change the (first) distribution of ``dataset`` in the served catalog: ``url`` (download and
    access URL), ``data`` (byte size and sha256 of new content), ``fmt`` (format and media type),
    ``modified``."""
    doc = json.loads(catalog.read_text(encoding="utf-8"))
    node = next(n for n in doc["@graph"] if n.get("dct:identifier") == dataset)
    d = node["dcat:distribution"][0]
    if "url" in changes:
        d["dcat:downloadURL"] = d["dcat:accessURL"] = {"@id": changes["url"]}
    if "data" in changes:
        data = changes["data"]
        d["dcat:byteSize"] = {"@value": str(len(data)), "@type": "xsd:decimal"}
        d["spdx:checksum"]["spdx:checksumValue"]["@value"] = hashlib.sha256(data).hexdigest()
    if "fmt" in changes:
        fmt, media = changes["fmt"]
        d["dct:format"] = {"@id": f"http://publications.europa.eu/resource/authority/file-type/{fmt}"}
        d["dcat:mediaType"] = {"@id": f"https://www.iana.org/assignments/media-types/{media}"}
    if "modified" in changes:
        d["dct:modified"] = {"@value": changes["modified"], "@type": "xsd:dateTime"}
    catalog.write_text(json.dumps(doc, indent=1), encoding="utf-8")


@pytest.fixture(scope="module")
def city(served_city):
    """The sample city over HTTP after one good ``citymodel run`` (a release in ``latest``)."""
    assert latest_verifies(served_city.out)
    return served_city


@pytest.fixture()
def fault(city):
    """The state before the fault; the served catalog and the server are restored afterwards, and
    where the test ended before its recovery run, that run is made here (the served city is shared
    with the next tests)."""
    before = SimpleNamespace(latest=latest_state(city.out), raw=raw_state(city.out))
    city.recovered = False
    yield before
    city.server.clear_faults()
    city.catalog.write_bytes(city.good_catalog)
    if not city.recovered:
        citymodel(city.cfg, "run")


def assert_nothing_changed(city, before) -> None:
    assert raw_state(city.out) == before.raw, "a refused download left something in raw/"
    assert latest_state(city.out) == before.latest, "latest moved after a failed source"
    assert latest_verifies(city.out)


def recovers(city) -> subprocess.CompletedProcess:
    city.server.clear_faults()
    city.catalog.write_bytes(city.good_catalog)
    r = citymodel(city.cfg, "run")
    city.recovered = True
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert latest_verifies(city.out)
    return r


def test_local_file_url_in_the_online_catalog(city, fault):
    secret = city.root / "secret.geojson"
    secret.write_text('{"type": "FeatureCollection", "features": []}', encoding="utf-8")
    edit_distribution(city.catalog, FLOOD, url=secret.as_uri())
    r = citymodel(city.cfg, "run")
    assert r.returncode == 1, r.stdout[-2000:] + r.stderr[-2000:]
    assert f"dataset '{FLOOD}'" in r.stderr and secret.as_uri() in r.stderr and "names a local file" in r.stderr
    assert "Fix: the publisher must give an http(s) dcat:downloadURL" in r.stderr
    assert_nothing_changed(city, fault)
    recovers(city)
    assert latest_state(city.out) == fault.latest


def test_cross_host_redirect(city, fault):
    edit_distribution(city.catalog, FLOOD, modified="2026-02-01T06:00:00Z")   # so the file is fetched again
    city.server.redirect(FLOOD_FILE, f"http://localhost:{city.server.port}/{FLOOD_FILE}")
    r = citymodel(city.cfg, "run")
    assert r.returncode == 1, r.stdout[-2000:] + r.stderr[-2000:]
    assert f"dataset '{FLOOD}'" in r.stderr and "redirects to another host, 'localhost" in r.stderr
    assert "add 'localhost" in r.stderr and "catalog.allowed_hosts" in r.stderr
    assert city.server.statuses(FLOOD_FILE)[-1:] == [302] and len(city.server.statuses(FLOOD_FILE)) >= 1
    assert_nothing_changed(city, fault)
    recovers(city)


def test_drip_fed_catalog_is_cut_off_by_the_deadline(city, fault):
    (city.root / "drip").mkdir(exist_ok=True)
    cfg = write_config(city.root / "drip", city.server.url("catalog.jsonld"), city.out,
                       catalog={"url": city.server.url("catalog.jsonld"), "backoff_s": 0.05,
                                "download_deadline_s": 4, "timeout_s": 30})
    city.server.drip("catalog.jsonld", step_bytes=1, interval_s=0.5)   # one byte every 0.5 s: ~2 days
    r = citymodel(cfg, "run", timeout=600)
    assert r.returncode == 2, r.stdout[-2000:] + r.stderr[-2000:]
    assert "did not complete within catalog.download_deadline_s = 4 s" in r.stderr
    took = float(re.search(r"attempt\(s\) in ([\d.]+) s", r.stderr).group(1))
    assert took < 4 + 1.0
    assert_nothing_changed(city, fault)
    recovers(city)


def test_unsafe_zip_then_a_good_one(city, fault):
    """Before: the zip was recorded, the step's retry saw it 'unchanged' and stale data was
    published with exit 0. Now: exit 1, fetched once (no retry), nothing recorded; then the
    publisher's good zip is taken, and raw/ keeps only what the catalog lists."""
    geojson = (city.src / FLOOD_FILE).read_bytes()
    bad = city.src / "files" / "ueberschwemmungsgebiete.zip"
    with zipfile.ZipFile(bad, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ueberschwemmungsgebiete.geojson", geojson)
        zf.writestr("../../../outside.txt", b"evil")
    edit_distribution(city.catalog, FLOOD, url="files/ueberschwemmungsgebiete.zip", data=bad.read_bytes(),
                      fmt=("ZIP", "application/zip"))
    r = citymodel(city.cfg, "run")
    assert r.returncode == 1, r.stdout[-2000:] + r.stderr[-2000:]
    assert f"dataset '{FLOOD}', record '../../../outside.txt'" in r.stderr and "'..' path segment" in r.stderr
    assert "Fix: the archive is unsafe" in r.stderr
    assert city.server.hits["files/ueberschwemmungsgebiete.zip"] == 1    # a permanent error: no step retry
    assert_nothing_changed(city, fault)
    assert not list(city.out.rglob("outside.txt"))
    # the publisher replaces it with a clean archive: the next run takes it
    with zipfile.ZipFile(bad, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ueberschwemmungsgebiete.geojson", geojson)
    edit_distribution(city.catalog, FLOOD, data=bad.read_bytes())
    good_catalog = city.catalog.read_bytes()
    r = citymodel(city.cfg, "run")
    city.recovered = True
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert latest_verifies(city.out)
    folder = city.out / "raw" / FLOOD
    names = sorted(p.name for p in folder.iterdir())
    assert "ueberschwemmungsgebiete.geojson" not in names          # no longer listed: removed
    assert [n for n in names if n.endswith(".d")] and "ueberschwemmungsgebiete.zip" in names
    # leave the module's catalog as it is now
    city.good_catalog = good_catalog
