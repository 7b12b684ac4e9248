"""Ready to be shared between municipalities: the licence text, publiccode.yml (standard v0.4), the
changelog, and README statements that must match the code.

The required keys of publiccode.yml are those the standard v0.4 marks mandatory
(https://yml.publiccode.tools/schema.core.html, version 0.4): publiccodeYmlVersion, name, url,
platforms, categories, developmentStatus, softwareType, description.<lang>.{shortDescription
(<= 150 characters), longDescription (150..10000 characters), features}, legal.license (SPDX),
maintenance.type (with contacts for internal/contract/community), localisation.localisationReady,
localisation.availableLanguages; releaseDate where softwareVersion is given.
"""

from __future__ import annotations

import re
import tomllib
from datetime import date

import yaml

from citymodel.config import PROJECT_ROOT

DEVELOPMENT_STATUS = {"concept", "development", "beta", "stable", "obsolete"}
SOFTWARE_TYPES = {"standalone/mobile", "standalone/iot", "standalone/desktop", "standalone/web",
                  "standalone/backend", "standalone/other", "addon", "library", "configurationFiles"}
MAINTENANCE_TYPES = {"internal", "contract", "community", "none"}


def test_licence_text_is_the_eupl_1_2_named_by_pyproject():
    text = (PROJECT_ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("EUROPEAN UNION PUBLIC LICENCE v. 1.2")
    for heading in ("1.Definitions", "2.Scope of the rights granted by the Licence", "Appendix",
                    "Compatible Licences"):
        assert heading in text, heading
    py = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert py["project"]["license"]["text"] == "EUPL-1.2"


def test_publiccode_yml_has_what_the_standard_requires():
    doc = yaml.safe_load((PROJECT_ROOT / "publiccode.yml").read_text(encoding="utf-8"))
    for key in ("publiccodeYmlVersion", "name", "url", "platforms", "categories", "developmentStatus",
                "softwareType", "description", "legal", "maintenance", "localisation"):
        assert key in doc, key
    assert doc["publiccodeYmlVersion"] == "0.4"
    assert re.match(r"^https://", doc["url"])
    assert doc["platforms"] and doc["categories"]
    assert all(re.match(r"^[a-z0-9-]+$", c) for c in doc["categories"])
    assert doc["developmentStatus"] in DEVELOPMENT_STATUS
    assert doc["softwareType"] in SOFTWARE_TYPES
    assert set(doc["description"]) >= {"de", "en"}
    for lang, d in doc["description"].items():
        assert len(d["shortDescription"].strip()) <= 150, lang
        assert 150 <= len(d["longDescription"].strip()) <= 10000, lang
        assert d["features"] and all(isinstance(f, str) and f for f in d["features"]), lang
    py = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert doc["legal"]["license"] == py["project"]["license"]["text"]
    assert doc["maintenance"]["type"] in MAINTENANCE_TYPES
    if doc["maintenance"]["type"] in ("internal", "contract", "community"):
        assert doc["maintenance"]["contacts"] and all(c.get("name") for c in doc["maintenance"]["contacts"])
    assert isinstance(doc["localisation"]["localisationReady"], bool)
    assert set(doc["localisation"]["availableLanguages"]) >= {"de", "en"}
    if "softwareVersion" in doc:
        assert doc["softwareVersion"] == py["project"]["version"]
        date.fromisoformat(doc["releaseDate"])


def test_changelog_follows_keep_a_changelog():
    text = (PROJECT_ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert text.startswith("# Changelog") and "keepachangelog.com" in text
    assert "## [Unreleased]" in text
    versions = re.findall(r"^## \[(\d+\.\d+\.\d+)\] - (\d{4}-\d{2}-\d{2})$", text, flags=re.M)
    assert versions, "no released version"
    for _, day in versions:
        date.fromisoformat(day)
    sections = set(re.findall(r"^### (\w+)$", text, flags=re.M))
    assert sections <= {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}


def test_readme_names_the_reconstruction_methods_the_data_carries():
    from citymodel.lod2.build import METHODS

    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    for m in METHODS:
        assert f"`{m}`" in readme, m
    for wrong in ("`lod2_fit`", "`lod1_block`"):
        assert wrong not in readme
