"""Who publishes, under which licence, whom to ask, and which code made a release.

Every deployment names publisher, licence and contact (nothing defaults to the sample city's
publisher); a release's catalog carries them, names the code version (package version and git
commit) and gives every dataset a German and an English title and description. Expected values
come from the deployment file written here, from ``git rev-parse`` run by the test itself and from
rdflib's own JSON-LD parser.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import rdflib
import yaml
from rdflib import Literal, Namespace, URIRef
from rdflib.namespace import RDF

from citymodel.config import DEFAULT_CONFIG, LICENSE_NAMES, load_config
from citymodel.errors import ConfigError
from citymodel.release import ReleaseBuilder
from citymodel.release.titles import DATASET_TEXTS, dataset_texts

DCAT = Namespace("http://www.w3.org/ns/dcat#")
DCT = Namespace("http://purl.org/dc/terms/")
PROV = Namespace("http://www.w3.org/ns/prov#")
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
OWL = Namespace("http://www.w3.org/2002/07/owl#")
ROOT = Path(__file__).resolve().parent.parent


def _deployment(tmp_path: Path, publish: dict | None) -> Path:
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    raw["catalog"]["url"] = str(tmp_path / "catalog.jsonld")
    raw["output_dir"] = str(tmp_path / "out")
    raw["name"] = "musterstadt"
    if publish is None:
        raw.pop("publish", None)
    else:
        raw["publish"] = publish
    path = tmp_path / "musterstadt.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def test_a_deployment_without_publisher_licence_and_contact_is_refused(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(_deployment(tmp_path, None))
    msg = str(err.value)
    for key in ("publish.publisher", "publish.license", "publish.contact"):
        assert key in msg
    assert "Fix:" in msg and "dl-de/by-2-0" in msg and "citymodel init" in msg
    # the sample city's publisher is not assumed anywhere
    assert "Stadt Jena" not in msg


@pytest.mark.parametrize("missing", ["publisher", "license", "contact"])
def test_each_publication_key_is_required(tmp_path, missing):
    publish = {"publisher": "Stadt Musterstadt", "license": "dl-de/by-2-0", "contact": "geo@musterstadt.de"}
    publish.pop(missing)
    with pytest.raises(ConfigError, match=f"publish.{missing} is not set"):
        load_config(_deployment(tmp_path, publish))


def test_licence_short_names_and_contact_forms(tmp_path):
    s = load_config(_deployment(tmp_path, {"publisher": "Stadt Musterstadt", "license": "dl-de/zero-2-0",
                                           "contact": "geo@musterstadt.de"}))
    assert s.publish.license == "http://dcat-ap.de/def/licenses/dl-zero-de/2.0"
    assert s.publish.contact == "mailto:geo@musterstadt.de"
    assert s.publish.publisher == "Stadt Musterstadt"
    with pytest.raises(ConfigError, match="neither a licence IRI nor one of the short names"):
        load_config(_deployment(tmp_path, {"publisher": "X", "license": "public domain", "contact": "a@b.de"}))
    with pytest.raises(ConfigError, match="neither an e-mail address nor an http"):
        load_config(_deployment(tmp_path, {"publisher": "X", "license": "cc-by-4.0", "contact": "call Mr X"}))
    # every short name maps to a DCAT-AP.de licence IRI
    assert all(v.startswith("http://dcat-ap.de/def/licenses/") for v in LICENSE_NAMES.values())


def test_the_sample_city_names_its_publication_metadata():
    s = load_config(DEFAULT_CONFIG)
    assert s.publish.publisher and s.publish.license and s.publish.contact
    assert s.publish.contact.endswith("@example.org")  # an example address, not a real mailbox


def _release(tmp_path: Path) -> Path:
    rb = ReleaseBuilder(tmp_path / "out", publisher="Stadt Musterstadt", license="http://x.test/licence",
                        contact="mailto:geo@musterstadt.de", title="Musterstadt 3D",
                        facts={"place": "Musterstadt", "buildings": 1234, "tiles": 2, "days": ["03-21", "06-21"]})
    rb.begin()
    rb.write_text("data/buildings.csv", "building_id\nB1\n", dataset="buildings-csv")
    rb.write_text("data/analysis/sun.csv", "x\n1\n", dataset="analysis-sun_hours")
    rb.write_text("data/readme.txt", "hello\n", dataset="readme")
    info = rb.finalize([])
    return info.path


def test_release_catalog_names_contact_code_version_and_bilingual_titles(tmp_path):
    path = _release(tmp_path)
    g = rdflib.Graph().parse(path / "catalog.jsonld", format="json-ld")
    catalog = next(g.subjects(RDF.type, DCAT.Catalog))
    # contact point of the catalog and of every dataset
    datasets = list(g.subjects(RDF.type, DCAT.Dataset))
    assert len(datasets) == 3
    for node in [catalog] + datasets:
        cp = g.value(node, DCAT.contactPoint)
        assert cp is not None and g.value(cp, VCARD.hasEmail) == URIRef("mailto:geo@musterstadt.de")
    # the code that made it: package version and git commit (as git itself reports it)
    activity = g.value(catalog, PROV.wasGeneratedBy)
    agent = g.value(activity, PROV.wasAssociatedWith)
    from importlib.metadata import version

    assert str(g.value(agent, OWL.versionInfo)) == version("citymodel-pipeline")
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode == 0:
        assert str(g.value(agent, DCT.identifier)).startswith(f"git:{head.stdout.strip()}")
    manifest = json.loads((path / "release.json").read_text())
    assert manifest["code"]["version"] == version("citymodel-pipeline")
    if head.returncode == 0:
        assert manifest["code"]["commit"].startswith(head.stdout.strip())
    # titles in German and English, from the kind of dataset and its content
    by_id = {str(g.value(d, DCT.identifier)): d for d in datasets}
    titles = {lit.language: str(lit) for lit in g.objects(by_id["buildings-csv"], DCT.title)}
    assert titles == {"de": "Gebäudeattribute (CSV)", "en": "Building attributes (CSV)"}
    desc = {lit.language: str(lit) for lit in g.objects(by_id["buildings-csv"], DCT.description)}
    assert "1.234 Gebäude" in desc["de"] and "Musterstadt" in desc["de"]
    assert "1,234 buildings" in desc["en"]
    sun = {lit.language: str(lit) for lit in g.objects(by_id["analysis-sun_hours"], DCT.description)}
    assert "21. März, 21. Juni" in sun["de"] and "21 March, 21 June" in sun["en"]
    # no title is a bare identifier, also for a dataset the texts do not know
    for d in datasets:
        for lit in g.objects(d, DCT.title):
            assert str(lit) != str(g.value(d, DCT.identifier))
    assert {lit.language for lit in g.objects(by_id["readme"], DCT.title)} == {"de", "en"}
    page = (path / "index.html").read_text()
    assert "Gebäudeattribute (CSV)" in page and "Building attributes (CSV)" in page


def test_every_known_dataset_has_distinct_german_and_english_texts():
    for ident in DATASET_TEXTS:
        t = dataset_texts(ident, {"place": "X", "buildings": 2, "trees": 1, "tiles": 1})
        assert t.title_de and t.title_en and t.title_de != t.title_en, ident
        assert t.description_de != t.description_en, ident
        assert "{" not in t.description_de + t.description_en, ident
        assert t.description_de.endswith(".") and t.description_en.endswith("."), ident
