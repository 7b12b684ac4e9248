"""The DCAT-AP catalog of a scanned folder: one dataset per role, one distribution per file.

Written as JSON-LD in the shape the pipeline reads (:mod:`citymodel.catalog.parse`): datasets with
``dct:identifier``, German and English titles and descriptions from the role and the content,
distributions with a download URL relative to the catalog, ``dcat:mediaType``, ``dct:format``,
``dcat:byteSize``, ``spdx:checksum`` (SHA-256) and ``dct:modified`` (the file's modification time).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

from .roles import Recognised

#: suffix -> (dct:format label, IANA media type)
FORMATS = {
    "laz": ("LAZ", "application/vnd.laszip"), "las": ("LAS", "application/vnd.las"),
    "gpkg": ("GPKG", "application/geopackage+sqlite3"), "geojson": ("GEOJSON", "application/geo+json"),
    "json": ("GEOJSON", "application/geo+json"), "csv": ("CSV", "text/csv"), "tsv": ("CSV", "text/csv"),
    "zip": ("ZIP", "application/zip"), "gml": ("GML", "application/gml+xml"),
    "xml": ("GML", "application/gml+xml"),
}
FILE_TYPE = "http://publications.europa.eu/resource/authority/file-type/"
IANA = "http://www.iana.org/assignments/media-types/"

CONTEXT = {
    "dcat": "http://www.w3.org/ns/dcat#", "dct": "http://purl.org/dc/terms/",
    "foaf": "http://xmlns.com/foaf/0.1/", "spdx": "http://spdx.org/rdf/terms#",
    "xsd": "http://www.w3.org/2001/XMLSchema#", "vcard": "http://www.w3.org/2006/vcard/ns#",
    "locn": "http://www.w3.org/ns/locn#", "gsp": "http://www.opengis.net/ont/geosparql#",
}

#: role -> (title de, title en, description de, description en); {n}, {unit_de}, {unit_en}, {files}
ROLE_TEXTS: dict[str, tuple[str, str, str, str]] = {
    "buildings": ("Gebäudegrundrisse", "Building footprints",
                  "{n_de} Gebäudegrundrisse mit ihren Attributen ({columns}).",
                  "{n_en} building footprints with their attributes ({columns})."),
    "lidar": ("Laserscanning-Punktwolke", "Airborne laser scanning point cloud",
              "Klassifizierte Laserscanning-Punkte in {files} Kachel(n) (LAS/LAZ), {n_de} Punkte.",
              "Classified airborne laser scanning points in {files} tile(s) (LAS/LAZ), {n_en} points."),
    "lod2_reference": ("3D-Gebäudemodelle LoD2 (CityGML)", "3D building models LoD2 (CityGML)",
                       "Amtliche 3D-Gebäudemodelle im Detaillierungsgrad LoD2, CityGML, {files} Datei(en).",
                       "Official 3D building models at level of detail 2, CityGML, {files} file(s)."),
    "trees": ("Baumkataster", "Tree cadastre",
              "{n_de} Bäume mit ihren Attributen ({columns}).",
              "{n_en} trees with their attributes ({columns})."),
    "roads": ("Verkehrsmengen", "Traffic volumes",
              "{n_de} Straßenabschnitte mit Verkehrsmengen ({columns}).",
              "{n_en} road sections with traffic volumes ({columns})."),
    "flood_zones": ("Überschwemmungsgebiete", "Flood zones",
                    "{n_de} Überflutungsflächen mit Szenario und Wasserspiegellage ({columns}).",
                    "{n_en} flooded areas with scenario and water level ({columns})."),
    "viewpoints": ("Sichtpunkte", "Viewpoints",
                   "{n_de} Beobachter- und Zielpunkte für Sichtachsen ({columns}).",
                   "{n_en} observer and target points for sight lines ({columns})."),
    "variants": ("Planungsvarianten", "Planning variants",
                 "{files} Planungsvariante(n) (GeoJSON, Schema 1.0).",
                 "{files} planning variant(s) (GeoJSON, schema 1.0)."),
}


def dataset_id(name: str, role: str) -> str:
    """The ``dct:identifier`` init gives a role's dataset: ``<name>-<role>``."""
    return f"{name}-{role.replace('_', '-')}"


def _count(n: int | None, de: str, en: str) -> tuple[str, str]:
    if n is None:
        return de, en
    return f"{n:,}".replace(",", "."), f"{n:,}"


def role_texts(role: str, recs: list[Recognised], place: str) -> tuple[str, str, str, str]:
    """Title and description of a role's dataset in German and English, from the role and content."""
    tde, ten, dde, den = ROLE_TEXTS.get(role, (role, role, "{files} Datei(en).", "{files} file(s)."))
    counts = [r.facts.count for r in recs]
    n = sum(c for c in counts if c is not None) if any(c is not None for c in counts) else None
    n_de, n_en = _count(n, "Die", "The")
    cols = ", ".join(sorted({c for r in recs for c in r.columns})) or "–"
    facts = {"n_de": n_de, "n_en": n_en, "files": len(recs), "columns": cols}
    dde, den = dde.format(**facts), den.format(**facts)
    if place:
        tde, ten = f"{tde}: {place}", f"{ten}: {place}"
    return tde, ten, dde, den


def build_catalog(root: Path, name: str, place: str, by_role: dict[str, list[Recognised]],
                  processing_crs: str | None, publisher: str | None, license_iri: str | None,
                  contact: str | None) -> dict:
    """The catalog document (a JSON-LD dict) of the recognised files; URLs relative to ``root``."""
    base = "#"
    graph: list[dict] = []
    publisher_node = None
    if publisher:
        publisher_node = {"@id": base + "publisher", "@type": "foaf:Agent", "foaf:name": publisher}
    datasets = []
    for role in sorted(by_role):
        recs = sorted(by_role[role], key=lambda r: r.facts.rel)
        ident = dataset_id(name, role)
        tde, ten, dde, den = role_texts(role, recs, place)
        modified = max(r.facts.modified for r in recs)
        dists = []
        for r in recs:
            f = r.facts
            suffix = f.path.suffix.lower().lstrip(".")
            fmt, media = FORMATS.get(suffix, (suffix.upper(), "application/octet-stream"))
            url = f.url or quote(f.rel)
            dist = {
                "@id": f"{base}distribution-{quote(f.rel, safe='')}",
                "@type": "dcat:Distribution",
                "dct:title": f.path.name,
                "dcat:downloadURL": {"@id": url},
                "dcat:accessURL": {"@id": url},
                "dcat:mediaType": {"@id": IANA + media},
                "dct:format": {"@id": FILE_TYPE + fmt},
                "dcat:byteSize": {"@value": str(f.size), "@type": "xsd:decimal"},
                "spdx:checksum": {"@type": "spdx:Checksum",
                                  "spdx:algorithm": {"@id": "spdx:checksumAlgorithm_sha256"},
                                  "spdx:checksumValue": {"@value": f.sha256, "@type": "xsd:hexBinary"}},
                "dct:modified": {"@value": _iso(f.modified), "@type": "xsd:dateTime"},
            }
            if license_iri:
                dist["dct:license"] = {"@id": license_iri}
            dists.append(dist)
        ds = {
            "@id": f"{base}dataset-{ident}",
            "@type": "dcat:Dataset",
            "dct:identifier": ident,
            "dct:title": [{"@value": tde, "@language": "de"}, {"@value": ten, "@language": "en"}],
            "dct:description": [{"@value": dde, "@language": "de"}, {"@value": den, "@language": "en"}],
            "dct:modified": {"@value": _iso(modified), "@type": "xsd:dateTime"},
            "dcat:distribution": dists,
        }
        if license_iri:
            ds["dct:license"] = {"@id": license_iri}
        if publisher_node:
            ds["dct:publisher"] = {"@id": publisher_node["@id"]}
        if contact:
            ds["dcat:contactPoint"] = {"@type": "vcard:Kind", "vcard:hasEmail" if contact.startswith("mailto:")
                                       else "vcard:hasURL": {"@id": contact}}
        datasets.append(ds)
    catalog = {
        "@id": base + "catalog",
        "@type": "dcat:Catalog",
        "dct:title": [{"@value": f"Offene Geodaten: {place or name}", "@language": "de"},
                      {"@value": f"Open geodata: {place or name}", "@language": "en"}],
        "dct:description": [
            {"@value": f"Von citymodel init aus dem Ordner '{root.name}' erstellt: {len(datasets)} Datensätze.",
             "@language": "de"},
            {"@value": f"Written by citymodel init from the folder '{root.name}': {len(datasets)} datasets.",
             "@language": "en"}],
        "dct:modified": {"@value": _iso(max((max(r.facts.modified for r in v) for v in by_role.values()),
                                            default=datetime.now(timezone.utc))), "@type": "xsd:dateTime"},
        "dcat:dataset": [{"@id": d["@id"]} for d in datasets],
    }
    if publisher_node:
        catalog["dct:publisher"] = {"@id": publisher_node["@id"]}
    if license_iri:
        catalog["dct:license"] = {"@id": license_iri}
    graph.append(catalog)
    if publisher_node:
        graph.append(publisher_node)
    graph.extend(datasets)
    return {"@context": CONTEXT, "@graph": graph}


def _iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def catalog_files(doc: dict) -> dict[str, str]:
    """Relative download URL -> SHA-256 of every distribution of a catalog written by init."""
    out = {}
    for node in doc.get("@graph", []):
        for d in node.get("dcat:distribution", []) if isinstance(node, dict) else []:
            url = d.get("dcat:downloadURL", {})
            url = url.get("@id") if isinstance(url, dict) else url
            ck = (d.get("spdx:checksum") or {}).get("spdx:checksumValue")
            ck = ck.get("@value") if isinstance(ck, dict) else ck
            if url:
                out[str(url)] = str(ck or "")
    return out


def read_previous(path: Path) -> dict[str, str]:
    """:func:`catalog_files` of an existing catalog file (empty where there is none or it is unreadable)."""
    try:
        return catalog_files(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, AttributeError):
        return {}
