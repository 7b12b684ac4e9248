"""JSON-LD contexts of DCAT-AP documents, made inline so that rdflib never fetches one.

rdflib would fetch a remote ``@context`` from the network. :func:`inline_contexts` returns a copy
of a document whose every ``@context`` is inline: the well-known DCAT-AP / DCAT context URLs
(:data:`WELL_KNOWN_CONTEXTS`, any release of the SEMIC DCAT-AP contexts) are replaced by
:data:`DCAT_AP_CONTEXT`, a context file beside a local catalog is read from disk, and any other
remote context is a :class:`~citymodel.errors.CatalogError` (so is a ``file:`` context named
by a catalog read over http(s)).

The RDF namespaces of the terms the parser queries (``dcat:``, ``dct:``, ``spdx:``, ...) are
defined here, beside the context that maps DCAT-AP's labels to them.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any
from urllib.parse import urljoin, urlparse

from rdflib import Namespace
from rdflib.namespace import RDF, RDFS

from ..errors import CatalogError, dataset_error
from .urls import url_to_path

DCAT = Namespace("http://www.w3.org/ns/dcat#")
DCT = Namespace("http://purl.org/dc/terms/")
SPDX = Namespace("http://spdx.org/rdf/terms#")
LOCN = Namespace("http://www.w3.org/ns/locn#")
GSP = Namespace("http://www.opengis.net/ont/geosparql#")
HYDRA = Namespace("http://www.w3.org/ns/hydra/core#")

# ---------------------------------------------------------------------------------------------
# The inline context that stands in for the well-known remote DCAT-AP / DCAT contexts.
# It maps DCAT-AP 3 labels (British spelling: Catalogue, licence, ...) and the DCAT property
# names to their IRIs. Media type and format are left uncoerced, so both IANA / EU vocabulary
# IRIs and plain strings ("application/zip", "LAZ") come through.
def _term(iri: str, as_id: bool = False) -> Any:
    return {"@id": iri, "@type": "@id"} if as_id else iri


DCAT_AP_CONTEXT: dict[str, Any] = {
    "dcat": str(DCAT), "dct": str(DCT), "dcterms": str(DCT), "spdx": str(SPDX), "locn": str(LOCN),
    "gsp": str(GSP), "hydra": str(HYDRA), "foaf": "http://xmlns.com/foaf/0.1/",
    "xsd": "http://www.w3.org/2001/XMLSchema#", "rdf": str(RDF), "rdfs": str(RDFS),
    "adms": "http://www.w3.org/ns/adms#", "skos": "http://www.w3.org/2004/02/skos/core#",
    "vcard": "http://www.w3.org/2006/vcard/ns#", "prov": "http://www.w3.org/ns/prov#",
    "odrl": "http://www.w3.org/ns/odrl/2/",
    # classes
    "Catalog": str(DCAT.Catalog), "Catalogue": str(DCAT.Catalog), "Dataset": str(DCAT.Dataset),
    "Distribution": str(DCAT.Distribution), "DataService": str(DCAT.DataService),
    "CatalogRecord": str(DCAT.CatalogRecord), "CatalogueRecord": str(DCAT.CatalogRecord),
    "Checksum": str(SPDX.Checksum), "Location": str(DCT.Location),
    "LicenseDocument": str(DCT.LicenseDocument), "LicenceDocument": str(DCT.LicenseDocument),
    # literal properties
    "title": str(DCT.title), "description": str(DCT.description),
    "identifier": str(DCT.identifier), "modified": str(DCT.modified),
    "modificationDate": str(DCT.modified), "issued": str(DCT.issued),
    "releaseDate": str(DCT.issued), "byteSize": str(DCAT.byteSize),
    "checksumValue": str(SPDX.checksumValue), "keyword": str(DCAT.keyword),
    "geometry": str(LOCN.geometry), "bbox": str(DCAT.bbox), "centroid": str(DCAT.centroid),
    "mediaType": str(DCAT.mediaType), "format": str(DCT["format"]),
    # IRI-valued properties
    "dataset": _term(str(DCAT.dataset), True),
    "distribution": _term(str(DCAT.distribution), True),
    "datasetDistribution": _term(str(DCAT.distribution), True),
    "downloadURL": _term(str(DCAT.downloadURL), True),
    "downloadUrl": _term(str(DCAT.downloadURL), True),
    "accessURL": _term(str(DCAT.accessURL), True),
    "accessUrl": _term(str(DCAT.accessURL), True),
    "license": _term(str(DCT.license), True), "licence": _term(str(DCT.license), True),
    "spatial": _term(str(DCT.spatial), True),
    "geographicalCoverage": _term(str(DCT.spatial), True),
    "checksum": _term(str(SPDX.checksum), True), "algorithm": _term(str(SPDX.algorithm), True),
    "publisher": _term(str(DCT.publisher), True), "theme": _term(str(DCAT.theme), True),
    "landingPage": _term(str(DCAT.landingPage), True),
    "language": _term(str(DCT.language), True), "conformsTo": _term(str(DCT.conformsTo), True),
}

#: Remote context URLs that are replaced by :data:`DCAT_AP_CONTEXT` (never fetched).
WELL_KNOWN_CONTEXTS: tuple[str, ...] = (
    "https://www.w3.org/ns/dcat.jsonld",
    "https://www.w3.org/ns/dcat2.jsonld",
    "https://www.w3.org/ns/dcat3.jsonld",
    "https://semiceu.github.io/DCAT-AP/releases/2.0.1/dcat-ap_2.0.1.jsonld",
    "https://semiceu.github.io/DCAT-AP/releases/2.1.1/context/dcat-ap.jsonld",
    "https://semiceu.github.io/DCAT-AP/releases/3.0.0/context/dcat-ap.jsonld",
    "https://semiceu.github.io/DCAT-AP/releases/3.0.1/context/dcat-ap.jsonld",
)
# Any release of the SEMIC DCAT-AP contexts, http or https, with or without the generated path.
_WELL_KNOWN_PATTERNS = (
    re.compile(r"^https?://semiceu\.github\.io/(uri\.semic\.eu-generated/)?DCAT-AP/.+\.jsonld$"),
    re.compile(r"^https?://(www\.)?w3\.org/ns/dcat\d?\.jsonld$"),
)


def _well_known(url: str) -> bool:
    u = url.strip()
    return u in WELL_KNOWN_CONTEXTS or any(p.match(u) for p in _WELL_KNOWN_PATTERNS)


def inline_contexts(node: Any, source_url: str, label: str) -> Any:
    """Copy of a JSON-LD document whose every ``@context`` is inline (never a remote URL)."""
    if isinstance(node, dict):
        return {k: (_resolve_context(v, source_url, label) if k == "@context"
                    else inline_contexts(v, source_url, label)) for k, v in node.items()}
    if isinstance(node, list):
        return [inline_contexts(v, source_url, label) for v in node]
    return node


def _context_from_url(url: str, source_url: str, label: str) -> Any:
    absolute = urljoin(source_url, url)
    if _well_known(absolute):
        return copy.deepcopy(DCAT_AP_CONTEXT)
    if urlparse(absolute).scheme == "file" and urlparse(source_url).scheme == "file":
        # a context file beside a local catalog is read from disk, never through rdflib; an online
        # catalog never makes the pipeline read a local file (it falls through to the error below)
        path = url_to_path(absolute)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise dataset_error(CatalogError, label, f"the @context file {path} cannot be read: {exc}",
                                "fix or inline the @context of the catalog") from exc
        ctx = doc.get("@context") if isinstance(doc, dict) else None
        if ctx is None:
            raise dataset_error(CatalogError, label, f"the @context file {path} has no '@context'",
                                "fix or inline the @context of the catalog")
        return _resolve_context(ctx, absolute, label)
    if urlparse(absolute).scheme in ("file", ""):
        raise dataset_error(
            CatalogError, label,
            f"the catalog {source_url} is read over the network but its @context names the local "
            f"file {url}; an online catalog never makes the pipeline read files of this machine",
            "serve the catalog with an inline @context or a well-known DCAT-AP context URL")
    raise dataset_error(
        CatalogError, label,
        f"the document's @context is the remote URL {url}, which is not fetched (no network "
        f"access for contexts) and is not one of the well-known DCAT-AP contexts "
        f"({', '.join(WELL_KNOWN_CONTEXTS[:3])}, any https://semiceu.github.io/DCAT-AP/... .jsonld)",
        "serve the catalog with an inline @context (piveau and CKAN do so), or use a well-known "
        "DCAT-AP context URL")


def _resolve_context(ctx: Any, source_url: str, label: str) -> Any:
    if ctx is None:
        return None
    if isinstance(ctx, str):
        return _context_from_url(ctx, source_url, label)
    if isinstance(ctx, list):
        return [_resolve_context(c, source_url, label) for c in ctx]
    if isinstance(ctx, dict):
        out: dict[str, Any] = {}
        imported = ctx.get("@import")
        if isinstance(imported, str):
            base = _context_from_url(imported, source_url, label)
            if isinstance(base, dict):
                out.update(base)
        for k, v in ctx.items():
            if k == "@import":
                continue
            out[k] = inline_contexts(v, source_url, label) if isinstance(v, (dict, list)) else v
        return out
    return ctx

