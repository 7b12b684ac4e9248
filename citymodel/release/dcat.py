"""The DCAT-AP (DCAT-AP.de) catalog of a release, ``catalog.jsonld``, and what it is made of.

The catalog is a JSON-LD document: a ``dcat:Catalog``, the publisher (``foaf:Agent``) and one
``dcat:Dataset`` per dataset, each with its distributions (files with size and SHA-256, or the entry
point of a folder such as a 3D Tiles ``tileset.json``). Extents are WKT in CRS84 (lon, lat).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ReleaseError, dataset_error
from .formats import FILE_TYPE_CODES, REGISTERED_MEDIA_TYPES
from .layout import INDEX_FILE
from .provenance import code_version, code_version_label, iso_utc
from .titles import entry_texts

if TYPE_CHECKING:
    from .builder import ReleaseBuilder
    from .contents import ReleaseContents

#: Licence of published data unless configured: Datenlizenz Deutschland - Namensnennung 2.0.
DEFAULT_LICENSE = "http://dcat-ap.de/def/licenses/dl-by-de/2.0"

FILE_TYPE = "http://publications.europa.eu/resource/authority/file-type/"
IANA = "https://www.iana.org/assignments/media-types/"
EPSG_IRI = "http://www.opengis.net/def/crs/EPSG/0/"
CRS84_IRI = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
THEME_REGI = "http://publications.europa.eu/resource/authority/data-theme/REGI"
LANGUAGES = {"de": "DEU", "en": "ENG", "fr": "FRA", "nl": "NLD", "pl": "POL", "cs": "CES"}

JSONLD_CONTEXT: dict[str, str] = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "dcatde": "http://dcat-ap.de/def/dcatde/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "spdx": "http://spdx.org/rdf/terms#",
    "locn": "http://www.w3.org/ns/locn#",
    "gsp": "http://www.opengis.net/ont/geosparql#",
    "adms": "http://www.w3.org/ns/adms#",
    "owl": "http://www.w3.org/2002/07/owl#",
    "prov": "http://www.w3.org/ns/prov#",
    "vcard": "http://www.w3.org/2006/vcard/ns#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
}


@dataclass
class DatasetEntry:
    """A ``dcat:Dataset`` of the release; ``spatial_wkt`` is WKT in CRS84 (lon, lat)."""

    identifier: str
    title: str
    description: str = ""
    title_en: str | None = None
    description_en: str | None = None
    spatial_wkt: str | None = None
    keywords: tuple[str, ...] = ()
    conforms_to: tuple[str, ...] = ()
    license: str | None = None
    political_geocoding_uri: str | None = None
    theme: str | None = None


@dataclass
class DistributionEntry:
    """A file of the release, registered with its dataset (``None``: only in ``SHA256SUMS``).

    ``role`` is ``"download"`` (a file to download: accessURL and downloadURL),
    ``"service"`` (the entry point of a folder such as a 3D Tiles ``tileset.json``: accessURL
    only, the folder ``folder`` belongs to it) or ``"documentation"``.
    """

    rel_path: str
    dataset: str | None
    title: str
    description: str = ""
    media_type: str | None = None
    format: str | None = None
    role: str = "download"
    folder: str | None = None
    conforms_to: tuple[str, ...] = ()
    in_digest: bool = True
    digest_ignore_keys: tuple[str, ...] = ()


def catalog_document(rb: ReleaseBuilder, release_id: str, created: datetime, hashes: dict[str, str],
                     partial: Path, urls: str, *, contents: ReleaseContents | None = None) -> dict:
    """The DCAT-AP catalog (JSON-LD) of a release being published by ``rb``.

    One ``dcat:Dataset`` per dataset that has distributions, one ``dcat:Distribution`` per
    registered file (with ``spdx:checksum`` from ``hashes`` and ``dcat:byteSize``); URLs are
    ``urls`` + the path in the release. With ``contents``: the catalog's ``rdfs:comment`` says
    in words (German and English) whether the release is complete, which parts are missing or
    old and what is not computed; a dataset with a gap says which in ``adms:versionNotes``.
    """
    when = {"@value": iso_utc(created), "@type": "xsd:dateTime"}
    lic = {"@id": rb.license}
    attribution = rb.publisher
    publisher = {"@id": rb.publisher_uri or "#publisher", "@type": "foaf:Agent",
                 "foaf:name": rb.publisher}
    crs_iris = [crs_iri(c) for c in (rb.crs,) if c]
    code = code_version()
    agent = {"@type": "prov:SoftwareAgent", "foaf:name": code["package"], "owl:versionInfo": code["version"]}
    if code["commit"]:
        agent["dct:identifier"] = f"git:{code['commit']}"
    build = {"@id": "#build", "@type": "prov:Activity", "prov:wasAssociatedWith": agent,
             "prov:endedAtTime": when}
    contact = None
    if getattr(rb, "contact", None):
        contact = {"@type": "vcard:Organization", "vcard:fn": rb.publisher}
        contact["vcard:hasEmail" if rb.contact.startswith("mailto:") else "vcard:hasURL"] = {"@id": rb.contact}
    provenance_bits = [f"Built by {code_version_label()} (release {release_id})."]
    if rb.crs:
        provenance_bits.append(f"Data files in {rb.crs}"
                               + (f" with heights in {rb.vertical_crs}" if rb.vertical_crs else "") + ".")
    if rb.geoid_model:
        provenance_bits.append(f"3D Tiles heights are ellipsoidal (WGS84), converted with the "
                               f"{rb.geoid_model} geoid model.")
    provenance = " ".join(provenance_bits)
    datasets = []
    used = sorted({d.dataset for d in rb.distributions.values() if d.dataset})
    for ds_id in used:
        ds = rb.datasets[ds_id]
        dists = []
        for n, d in enumerate(sorted((d for d in rb.distributions.values() if d.dataset == ds_id),
                                     key=lambda d: d.rel_path)):
            url = {"@id": urls + d.rel_path}
            media = d.media_type
            dist = {
                "@id": f"#distribution-{ds_id}-{n + 1}",
                "@type": "dcat:Distribution",
                "dct:title": d.title,
                "dcat:accessURL": url,
                "dct:format": format_node(d.format),
                "dcat:byteSize": {"@value": str((partial / d.rel_path).stat().st_size),
                                  "@type": "xsd:nonNegativeInteger"},
                "spdx:checksum": {"@type": "spdx:Checksum",
                                  "spdx:algorithm": {"@id": "spdx:checksumAlgorithm_sha256"},
                                  "spdx:checksumValue": {"@value": hashes[d.rel_path],
                                                         "@type": "xsd:hexBinary"}},
                "dct:modified": when, "dct:issued": when,
                "dct:license": {"@id": ds.license or rb.license},
                "dcatde:licenseAttributionByText": attribution,
            }
            if d.role != "service":
                dist["dcat:downloadURL"] = url
            if media and media in REGISTERED_MEDIA_TYPES:
                dist["dcat:mediaType"] = {"@id": IANA + media}
            if d.description:
                dist["dct:description"] = _lit(rb.language, d.description)
            if d.conforms_to:
                dist["dct:conformsTo"] = [{"@id": c} for c in d.conforms_to]
            if d.folder:
                fsize = sum(p.stat().st_size for p in (partial / d.folder).rglob("*") if p.is_file())
                nfiles = sum(1 for p in (partial / d.folder).rglob("*") if p.is_file())
                dist["rdfs:comment"] = (f"Entry point of the folder {d.folder}/ ({nfiles} files, "
                                        f"{fsize} bytes); every file is listed in SHA256SUMS.")
            dists.append(dist)
        spatial = ds.spatial_wkt or rb.spatial_wkt
        texts = entry_texts(ds, getattr(rb, "facts", None))
        entry: dict[str, Any] = {
            "@id": f"#dataset-{ds_id}",
            "@type": "dcat:Dataset",
            "dct:identifier": ds_id,
            "dct:title": _lits(texts.title_de, texts.title_en),
            "dct:description": _lits(texts.description_de, texts.description_en),
            "dct:license": {"@id": ds.license or rb.license},
            "dct:modified": when, "dct:issued": when,
            "dct:publisher": {"@id": publisher["@id"]},
            "dcatde:licenseAttributionByText": attribution,
            "owl:versionInfo": release_id,
            "dcat:landingPage": {"@id": urls + INDEX_FILE},
            "dct:provenance": {"@type": "dct:ProvenanceStatement", "rdfs:label": _lit_en(provenance)},
            "prov:wasGeneratedBy": {"@id": build["@id"]},
            "dcat:distribution": dists,
        }
        if contact:
            entry["dcat:contactPoint"] = dict(contact)
        kws = list(dict.fromkeys(list(rb.keywords) + list(ds.keywords)))
        if kws:
            entry["dcat:keyword"] = [_lit(rb.language, k) for k in kws]
        theme = ds.theme or rb.theme
        if theme:
            entry["dcat:theme"] = {"@id": theme}
        if spatial:
            wkt = {"@value": spatial, "@type": "gsp:wktLiteral"}
            entry["dct:spatial"] = {"@type": "dct:Location", "dcat:bbox": wkt, "locn:geometry": wkt}
        geocoding = ds.political_geocoding_uri or rb.political_geocoding_uri
        if geocoding:
            entry["dcatde:politicalGeocodingURI"] = {"@id": geocoding}
        if rb.contributor_id:
            entry["dcatde:contributorID"] = {"@id": rb.contributor_id}
        conforms = list(dict.fromkeys(crs_iris + list(ds.conforms_to)))
        if conforms:
            entry["dct:conformsTo"] = [{"@id": c} for c in conforms]
        notes = [_lit(rb.language, rb.version_notes)] if rb.version_notes else []
        if contents is not None and contents.dataset_gaps(ds_id):
            notes += [_lit("de", contents.dataset_note(ds_id, "de")), _lit_en(contents.dataset_note(ds_id, "en"))]
        if notes:
            entry["adms:versionNotes"] = notes if len(notes) > 1 else notes[0]
        datasets.append(entry)
    catalog = {
        "@id": "#catalog",
        "@type": "dcat:Catalog",
        "dct:title": _lit(rb.language, rb.title),
        "dct:description": _lit(rb.language, rb.description or rb.title),
        "dct:publisher": {"@id": publisher["@id"]},
        "dct:license": lic,
        "dct:modified": when, "dct:issued": when,
        "dct:language": {"@id": "http://publications.europa.eu/resource/authority/language/"
                                + LANGUAGES.get(rb.language.split("-")[0].lower(), "MUL")},
        "owl:versionInfo": release_id,
        "foaf:homepage": {"@id": urls + INDEX_FILE},
        "prov:wasGeneratedBy": {"@id": build["@id"]},
        "dcat:dataset": [{"@id": d["@id"]} for d in datasets],
    }
    if contact:
        catalog["dcat:contactPoint"] = dict(contact)
    if rb.spatial_wkt:
        wkt = {"@value": rb.spatial_wkt, "@type": "gsp:wktLiteral"}
        catalog["dct:spatial"] = {"@type": "dct:Location", "dcat:bbox": wkt, "locn:geometry": wkt}
    if contents is not None:
        catalog["rdfs:comment"] = [_lit("de", "\n".join(contents.lines("de"))),
                                  _lit_en("\n".join(contents.lines("en")))]
    return {"@context": dict(JSONLD_CONTEXT), "@graph": [catalog, publisher, build] + datasets}


def _lit(language: str, text: str) -> dict:
    return {"@value": text, "@language": language}


def _lits(de: str, en: str) -> list[dict] | dict:
    """German and English literals (one German literal where both are the same text)."""
    return [_lit("de", de), _lit("en", en)] if en and en != de else _lit("de", de)


def _lit_en(text: str) -> dict:
    return {"@value": text, "@language": "en"}


def crs_iri(crs: str) -> str:
    """The OGC IRI of an ``EPSG:<code>`` CRS (other values are returned as they are)."""
    m = re.match(r"^EPSG:(\d+)$", crs.strip(), re.I)
    return f"{EPSG_IRI}{m.group(1)}" if m else crs


def format_node(fmt: str | None) -> dict:
    """The ``dct:format`` node: an EU file-type IRI, a given IRI, or a labelled media type."""
    if fmt and re.match(r"^[A-Z0-9_]+$", fmt) and fmt in FILE_TYPE_CODES:
        return {"@id": FILE_TYPE + fmt}
    if fmt and fmt.startswith("http"):
        return {"@id": fmt}
    return {"@type": "dct:MediaTypeOrExtent", "rdfs:label": fmt or "file"}


def check_spatial_wkt(wkt: str, dataset: str) -> None:
    """Raise a :class:`ReleaseError` unless ``wkt`` is WKT with lon/lat bounds (CRS84)."""
    import shapely

    try:
        g = shapely.from_wkt(wkt)
    except Exception as exc:  # shapely raises GEOSException
        raise dataset_error(ReleaseError, dataset, f"spatial extent {wkt[:60]!r} is not WKT ({exc})",
                            "give the extent as WKT in CRS84, e.g. from extent_wkt_crs84()") from exc
    minx, miny, maxx, maxy = g.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise dataset_error(ReleaseError, dataset,
                            f"spatial extent {wkt[:60]!r} is not in lon/lat (bounds {g.bounds})",
                            "transform it to CRS84 first, e.g. with extent_wkt_crs84(extent, crs)")


def extent_wkt_crs84(extent: Sequence[float], crs: str = "EPSG:25832", densify: int = 21) -> str:
    """WKT polygon (lon/lat, CRS84) of the bounding box of ``extent`` given in ``crs``.

    The box is densified (``densify`` points per edge) before it is transformed, so the lon/lat
    box encloses the whole projected extent.
    """
    from pyproj import Transformer

    minx, miny, maxx, maxy = (float(v) for v in extent)
    if not (maxx > minx and maxy > miny):
        raise dataset_error(ReleaseError, "release", f"extent {tuple(extent)} is empty",
                            "give the extent as (minx, miny, maxx, maxy) with max > min")
    tr = Transformer.from_crs(crs, "OGC:CRS84", always_xy=True)
    w, s, e, n = tr.transform_bounds(minx, miny, maxx, maxy, densify_pts=densify)
    return _bbox_wkt(w, s, e, n)


def _bbox_wkt(w: float, s: float, e: float, n: float) -> str:
    f = lambda v: f"{v:.7f}".rstrip("0").rstrip(".")  # noqa: E731
    return (f"POLYGON(({f(w)} {f(s)}, {f(e)} {f(s)}, {f(e)} {f(n)}, {f(w)} {f(n)}, "
            f"{f(w)} {f(s)}))")
