"""DCAT-AP catalogs (JSON-LD) and verified, conditional downloads of their distributions.

The city's open data platform (piveau) and CKAN portals with DCAT output serve DCAT-AP as JSON-LD.
This module reads such a document, from an http(s) URL or a local file, into plain dataclasses
(:class:`Catalog`, :class:`Dataset`, :class:`Distribution`) and downloads distributions to a
folder: streamed to a temporary file beside the target, verified (byte size, checksum), then
renamed atomically. A second download of an unchanged distribution transfers nothing.

Parsing goes through rdflib's JSON-LD parser and graph queries over ``dcat:``, ``dct:`` and
``spdx:`` terms, so compacted, expanded and ``@graph`` documents all work. rdflib never fetches a
remote ``@context``: the well-known DCAT-AP / DCAT context URLs are replaced by an inline context
(:data:`DCAT_AP_CONTEXT`) and any other remote context is a :class:`CatalogError`.

Where a live and an offline implementation differ, a *fetcher* strategy is picked from the URL
scheme (:func:`fetcher_for`): :class:`HttpFetcher` (retries with exponential backoff, conditional
requests with ETag / Last-Modified) and :class:`FileFetcher` (``file:`` URLs and plain paths,
copied with the same verification; size and modification time stand in for an ETag).

Nothing here imports dagster.
"""

from __future__ import annotations

import copy
import email.utils
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urljoin, urlparse
from urllib.request import url2pathname

import rdflib
import requests
from rdflib import BNode, Literal, Namespace, URIRef
from rdflib.namespace import RDF, RDFS

from .errors import CatalogError, CityModelError, DownloadError, SourceDataError, dataset_error

__all__ = [
    "Catalog", "Dataset", "Distribution", "DownloadResult", "FetchOutcome", "Fetcher",
    "HttpFetcher", "FileFetcher", "fetcher_for", "load_catalog", "parse_catalog", "download",
    "extract_zip", "format_of", "fingerprint", "local_name", "select_distributions",
    "ROLE_FORMATS", "DCAT_AP_CONTEXT", "WELL_KNOWN_CONTEXTS", "STATE_DIR",
]

DCAT = Namespace("http://www.w3.org/ns/dcat#")
DCT = Namespace("http://purl.org/dc/terms/")
SPDX = Namespace("http://spdx.org/rdf/terms#")
LOCN = Namespace("http://www.w3.org/ns/locn#")
GSP = Namespace("http://www.opengis.net/ont/geosparql#")
HYDRA = Namespace("http://www.w3.org/ns/hydra/core#")
IANA_MEDIA_TYPES = "http://www.iana.org/assignments/media-types/"

#: Languages preferred when a title or description is given in several languages.
PREFERRED_LANGUAGES = ("de", "en")

#: Sub-folder of a download folder that holds the JSON state of each downloaded file.
STATE_DIR = ".download_state"

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


# ---------------------------------------------------------------------------------------------
# Data model


@dataclass(frozen=True)
class Distribution:
    """One downloadable file of a dataset (``dcat:Distribution``).

    ``download_url`` is absolute (resolved against the catalog document's URL or path); where the
    catalog gives only ``dcat:accessURL`` (CKAN does so for plain resource links), that is used.
    ``media_type`` is the bare IANA type (``application/zip``), ``format`` the ``dct:format``
    label (the last segment of an EU file-type IRI, e.g. ``LAZ``). ``checksum_algorithm`` is the
    lower-case algorithm name (``sha256``, ``sha1``, ``md5``) taken from the spdx algorithm IRI.
    """

    title: str
    download_url: str | None
    access_url: str | None = None
    media_type: str | None = None
    format: str | None = None
    byte_size: int | None = None
    checksum_algorithm: str | None = None
    checksum_value: str | None = None
    modified: datetime | None = None
    iri: str | None = None

    @property
    def url(self) -> str | None:
        """The URL to download from: ``download_url``, else ``access_url``."""
        return self.download_url or self.access_url


@dataclass(frozen=True)
class Dataset:
    """A ``dcat:Dataset``, found by its ``dct:identifier``.

    ``modified`` keeps the timezone the catalog gave (naive where it gave none; an ``xsd:date``
    becomes midnight). ``spatial_wkt`` is the WKT of ``dct:spatial``'s ``locn:geometry`` or
    ``dcat:bbox`` (GeoJSON geometries are converted; a leading GeoSPARQL CRS IRI is dropped).
    """

    identifier: str
    title: str
    description: str = ""
    modified: datetime | None = None
    license: str | None = None
    spatial_wkt: str | None = None
    distributions: list[Distribution] = field(default_factory=list)
    iri: str | None = None


@dataclass
class Catalog:
    """A parsed DCAT-AP catalog.

    ``datasets`` maps ``dct:identifier`` to :class:`Dataset`. Datasets that could not be read
    (e.g. an unparseable date) are kept out of ``datasets`` and listed in ``invalid`` with the
    reason, so that one broken entry does not stop the datasets that are used; asking for such a
    dataset with :meth:`dataset` raises that reason.
    """

    title: str
    datasets: dict[str, Dataset]
    source_url: str
    invalid: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict, repr=False)

    def dataset(self, identifier: str, require_distributions: bool = True) -> Dataset:
        """The dataset with this ``dct:identifier`` (or dataset IRI).

        Raises
        ------
        CatalogError
            The identifier is not in the catalog (the message lists those that are), the
            dataset could not be read, or it has no distribution (``require_distributions``).
        """
        key = self.aliases.get(identifier, identifier)
        if key in self.invalid:
            raise CatalogError(self.invalid[key])
        ds = self.datasets.get(key)
        if ds is None:
            known = ", ".join(sorted(self.datasets)) or "(none)"
            raise dataset_error(
                CatalogError, identifier,
                f"no dataset with this dct:identifier in the catalog {self.source_url}; "
                f"the catalog holds: {known}",
                "correct the dataset identifier in the deployment file (sources.<role>.dataset) "
                "or publish the dataset in the catalog")
        if require_distributions and not ds.distributions:
            raise dataset_error(
                CatalogError, identifier,
                f"the dataset has no dcat:distribution in the catalog {self.source_url}, so "
                f"there is nothing to download",
                "add a distribution with a dcat:downloadURL to the dataset in the catalog, or "
                "configure another dataset for this role")
        return ds


@dataclass(frozen=True)
class DownloadResult:
    """What :func:`download` did: ``changed`` is False when nothing new was written."""

    path: Path
    changed: bool
    bytes: int
    sha256: str
    etag: str | None
    last_modified: str | None
    seconds: float


# ---------------------------------------------------------------------------------------------
# Parsing


def _to_url(source: str | os.PathLike) -> str:
    """An http(s)/file URL for ``source`` (plain paths become absolute ``file:`` URLs)."""
    s = os.fspath(source)
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", s) or s.startswith("file:"):
        return s
    return Path(s).expanduser().resolve().as_uri()


def _url_to_path(url: str) -> Path:
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        if parsed.scheme == "":
            return Path(url)
        return Path(url2pathname(parsed.path))
    raise ValueError(f"not a file URL: {url}")


def _inline_contexts(node: Any, source_url: str, label: str) -> Any:
    """Copy of a JSON-LD document whose every ``@context`` is inline (never a remote URL)."""
    if isinstance(node, dict):
        return {k: (_resolve_context(v, source_url, label) if k == "@context"
                    else _inline_contexts(v, source_url, label)) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline_contexts(v, source_url, label) for v in node]
    return node


def _context_from_url(url: str, source_url: str, label: str) -> Any:
    absolute = urljoin(source_url, url)
    if _well_known(absolute):
        return copy.deepcopy(DCAT_AP_CONTEXT)
    if urlparse(absolute).scheme == "file":
        # a context file beside a local catalog is read from disk, never through rdflib
        path = _url_to_path(absolute)
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
            out[k] = _inline_contexts(v, source_url, label) if isinstance(v, (dict, list)) else v
        return out
    return ctx


def _parse_into(graph: rdflib.Graph, data: bytes | str, source_url: str, label: str) -> None:
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise dataset_error(CatalogError, label, f"{source_url} is not UTF-8 text: {exc}",
                                "serve the catalog as UTF-8 JSON-LD") from exc
    else:
        text = data
    try:
        doc = json.loads(text)
    except ValueError as exc:
        snippet = text[:80].replace("\n", " ")
        raise dataset_error(
            CatalogError, label,
            f"{source_url} is not valid JSON ({exc}); it starts with {snippet!r}",
            "point catalog.url at the DCAT-AP JSON-LD document (for piveau e.g. "
            ".../catalogues/<id>?format=jsonld, for CKAN .../catalog.jsonld)") from exc
    if not isinstance(doc, (dict, list)):
        raise dataset_error(CatalogError, label,
                            f"{source_url} holds a JSON {type(doc).__name__}, not a JSON-LD document",
                            "point catalog.url at the DCAT-AP JSON-LD document")
    doc = _inline_contexts(doc, source_url, label)
    try:
        graph.parse(data=json.dumps(doc), format="json-ld", publicID=source_url)
    except CityModelError:
        raise
    except Exception as exc:  # rdflib raises plain exceptions of many kinds for bad JSON-LD
        raise dataset_error(CatalogError, label, f"{source_url} is not valid JSON-LD: {exc}",
                            "validate the catalog with a JSON-LD processor and correct it") from exc


def _next_pages(graph: rdflib.Graph, page_url: str) -> list[str]:
    """Next-page links of hydra paged collections (piveau and CKAN page big catalogs)."""
    out = []
    for pred in (HYDRA.nextPage, HYDRA.next):
        for o in graph.objects(None, pred):
            out.append(urljoin(page_url, str(o)))
    return sorted(set(out))


def parse_catalog(data: bytes | str, source_url: str) -> Catalog:
    """Parse one DCAT-AP JSON-LD document.

    Parameters
    ----------
    data : bytes or str
        The document.
    source_url : str
        Its URL or path; relative IRIs (download URLs) are resolved against it.
    """
    url = _to_url(source_url)
    graph = rdflib.Graph()
    _parse_into(graph, data, url, "catalog")
    return _catalog_from_graph(graph, url)


def load_catalog(source: str | os.PathLike, *, fetcher: Fetcher | None = None,
                 timeout_s: float = 30.0, retries: int = 3, backoff_s: float = 1.0,
                 max_pages: int = 1000) -> Catalog:
    """Read a DCAT-AP catalog from an http(s) URL, a ``file:`` URL or a local path.

    Paged catalogs (``hydra:nextPage`` / ``hydra:next``) are followed up to ``max_pages``.

    Raises
    ------
    CatalogError
        The document cannot be fetched or read, or is not DCAT-AP JSON-LD.
    """
    url = _to_url(source)
    fetcher = fetcher or fetcher_for(url, timeout_s=timeout_s, retries=retries, backoff_s=backoff_s)
    graph = rdflib.Graph()
    queue, seen = [url], set()
    while queue:
        page = queue.pop(0)
        if page in seen:
            continue
        if len(seen) >= max_pages:
            raise dataset_error(CatalogError, "catalog",
                                f"{url} has more than {max_pages} pages",
                                "raise max_pages or ask the platform for a larger page size")
        seen.add(page)
        try:
            data = fetcher.read(page, label="catalog")
        except DownloadError as exc:
            raise CatalogError(str(exc)) from exc
        _parse_into(graph, data, page, "catalog")
        queue.extend(p for p in _next_pages(graph, page) if p not in seen)
    return _catalog_from_graph(graph, url)


def _pick_literal(values: Iterable[Any]) -> str | None:
    """The preferred value among several (language-tagged) literals or IRIs."""
    vals = list(values)
    if not vals:
        return None

    def rank(v: Any) -> tuple[int, str]:
        lang = getattr(v, "language", None)
        if lang is None:
            return (0, str(v))
        lang = lang.lower().split("-")[0]
        if lang in PREFERRED_LANGUAGES:
            return (1 + PREFERRED_LANGUAGES.index(lang), str(v))
        return (1 + len(PREFERRED_LANGUAGES), str(v))

    return str(sorted(vals, key=rank)[0]).strip()


_DATE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(Z|[+-]\d{2}:\d{2})?$")
_YEAR_RE = re.compile(r"^(\d{4})(?:-(\d{2}))?$")


def _parse_datetime(value: Any, dataset: str, what: str) -> datetime | None:
    """``xsd:date`` / ``xsd:dateTime`` (with or without timezone) as a datetime."""
    if value is None:
        return None
    s = str(value).strip()
    m = _DATE_RE.match(s)
    try:
        if m:
            tz = None
            if m.group(4):
                tz = timezone.utc if m.group(4) == "Z" else timezone(
                    (1 if m.group(4)[0] == "+" else -1)
                    * timedelta(hours=int(m.group(4)[1:3]), minutes=int(m.group(4)[4:6])))
            return datetime(int(m.group(1)), int(m.group(2)), int(m.group(3)), tzinfo=tz)
        y = _YEAR_RE.match(s)
        if y:  # xsd:gYear / gYearMonth
            return datetime(int(y.group(1)), int(y.group(2) or 1), 1)
        return datetime.fromisoformat(s)
    except ValueError as exc:
        raise dataset_error(CatalogError, dataset,
                            f"{what} {s!r} is not an xsd:date or xsd:dateTime ({exc})",
                            "write dates as 2024-05-31 or 2024-05-31T12:00:00+02:00 in the catalog") from exc


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt is not None else None


def _label_of(graph: rdflib.Graph, node: Any) -> str | None:
    """Text of a format / media type: a literal, the last segment of an IRI, or rdf:value/label."""
    if node is None:
        return None
    if isinstance(node, BNode):
        inner = _first(graph, node, RDF.value) or _first(graph, node, RDFS.label)
        return _label_of(graph, inner) if inner is not None else None
    return str(node).strip()


def _normalise_media_type(value: str | None) -> str | None:
    if not value:
        return None
    v = value.strip()
    for prefix in (IANA_MEDIA_TYPES, IANA_MEDIA_TYPES.replace("http:", "https:")):
        if v.startswith(prefix):
            v = v[len(prefix):]
    if re.match(r"^https?://", v):
        # a plain "type/subtype" that a context coerced to an IRI, resolved against the catalog
        v = "/".join(v.rstrip("/").split("/")[-2:])
    return v.lower() or None


def _normalise_format(value: str | None) -> str | None:
    if not value:
        return None
    v = value.strip()
    if re.match(r"^https?://", v):
        v = re.split(r"[/#]", v.rstrip("/"))[-1]
    return v or None


def _first(graph: rdflib.Graph, s: Any, p: Any) -> Any:
    return next(iter(sorted(graph.objects(s, p), key=str)), None)


def _algorithm_name(node: Any) -> str:
    local = re.split(r"[#/:]", str(node).strip())[-1]   # IRI, CURIE left as text, or a name
    if local.startswith("checksumAlgorithm_"):
        local = local[len("checksumAlgorithm_"):]
    return local.lower().replace("-", "").replace("_", "")


def _spatial_wkt(graph: rdflib.Graph, dataset_node: Any) -> str | None:
    for loc in sorted(graph.objects(dataset_node, DCT.spatial), key=str):
        for pred in (LOCN.geometry, DCAT.bbox, GSP.asWKT, GSP.asGeoJSON):
            for lit in sorted(graph.objects(loc, pred), key=str):
                if not isinstance(lit, Literal):
                    continue
                text = str(lit).strip()
                if text.startswith("{"):
                    try:
                        import shapely.geometry
                        return shapely.geometry.shape(json.loads(text)).wkt
                    except Exception:
                        continue
                text = re.sub(r"^<[^>]*>\s*", "", text)  # GeoSPARQL CRS IRI prefix
                if re.match(r"^(MULTI)?(POINT|LINESTRING|POLYGON)|^GEOMETRYCOLLECTION", text, re.I):
                    return text
    return None


def _int_or_none(value: Any, dataset: str, what: str) -> int | None:
    if value is None:
        return None
    s = str(value).strip()
    try:
        f = float(s)
    except ValueError:
        f = float("nan")
    if not (f == f) or f < 0 or f != int(f):
        raise dataset_error(CatalogError, dataset, f"{what} {s!r} is not a non-negative whole number",
                            "write dcat:byteSize as the file size in bytes")
    return int(f)


def _distribution(graph: rdflib.Graph, node: Any, catalog_url: str, dataset: str) -> Distribution:
    def url_of(pred: Any) -> str | None:
        v = _first(graph, node, pred)
        if v is None:
            return None
        return urljoin(catalog_url, str(v).strip())  # literals are resolved like IRIs

    checksum = _first(graph, node, SPDX.checksum)
    alg = val = None
    if checksum is not None:
        a = _first(graph, checksum, SPDX.algorithm)
        v = _first(graph, checksum, SPDX.checksumValue)
        alg = _algorithm_name(a) if a is not None else None
        val = str(v).strip().lower() if v is not None else None
    download = url_of(DCAT.downloadURL)
    access = url_of(DCAT.accessURL)
    title = _pick_literal(graph.objects(node, DCT.title)) or ""
    return Distribution(
        title=title,
        download_url=download or access,
        access_url=access,
        media_type=_normalise_media_type(_label_of(graph, _first(graph, node, DCAT.mediaType))),
        format=_normalise_format(_label_of(graph, _first(graph, node, DCT["format"]))),
        byte_size=_int_or_none(_first(graph, node, DCAT.byteSize), dataset,
                               f"distribution {title or download!r}: dcat:byteSize"),
        checksum_algorithm=alg,
        checksum_value=val,
        modified=_parse_datetime(_first(graph, node, DCT.modified), dataset,
                                 f"distribution {title or download!r}: dct:modified"),
        iri=str(node) if isinstance(node, URIRef) else None,
    )


def _catalog_from_graph(graph: rdflib.Graph, source_url: str) -> Catalog:
    catalogs = sorted(graph.subjects(RDF.type, DCAT.Catalog), key=str)
    nodes = set(graph.subjects(RDF.type, DCAT.Dataset))
    for cat in catalogs:
        nodes.update(graph.objects(cat, DCAT.dataset))
    nodes.difference_update(catalogs)
    if not catalogs and not nodes:
        raise dataset_error(
            CatalogError, "catalog",
            f"{source_url} is JSON but holds no dcat:Catalog and no dcat:Dataset "
            f"({len(graph)} RDF statements found; a JSON file without a DCAT @context yields none)",
            "point catalog.url at a DCAT-AP JSON-LD document (with an @context mapping to "
            "http://www.w3.org/ns/dcat#)")
    title = _pick_literal(graph.objects(catalogs[0], DCT.title)) if catalogs else None
    datasets: dict[str, Dataset] = {}
    invalid: dict[str, str] = {}
    aliases: dict[str, str] = {}
    for node in sorted(nodes, key=str):
        ids = sorted(str(i).strip() for i in graph.objects(node, DCT.identifier))
        ident = ids[0] if ids else (str(node) if isinstance(node, URIRef) else None)
        if ident is None:
            t = _pick_literal(graph.objects(node, DCT.title)) or "(untitled)"
            invalid[f"_:{t}"] = str(dataset_error(
                CatalogError, t, "the dataset has neither a dct:identifier nor an IRI",
                "give the dataset a dct:identifier in the catalog"))
            continue
        if ident in datasets or ident in invalid:
            other = datasets.pop(ident).iri if ident in datasets else "another dataset"
            invalid[ident] = str(dataset_error(
                CatalogError, ident,
                f"two datasets in {source_url} share this dct:identifier ({other} and {node})",
                "give every dataset in the catalog a unique dct:identifier"))
            continue
        try:
            dists = [_distribution(graph, d, source_url, ident)
                     for d in graph.objects(node, DCAT.distribution)]
            dists.sort(key=lambda d: (d.url or "", d.title))
            datasets[ident] = Dataset(
                identifier=ident,
                title=_pick_literal(graph.objects(node, DCT.title)) or "",
                description=_pick_literal(graph.objects(node, DCT.description)) or "",
                modified=_parse_datetime(_first(graph, node, DCT.modified), ident, "dct:modified"),
                license=(str(_first(graph, node, DCT.license))
                         if _first(graph, node, DCT.license) is not None else None),
                spatial_wkt=_spatial_wkt(graph, node),
                distributions=dists,
                iri=str(node) if isinstance(node, URIRef) else None,
            )
        except CatalogError as exc:
            invalid[ident] = str(exc)
        for alias in ids[1:] + ([str(node)] if isinstance(node, URIRef) else []):
            aliases.setdefault(alias, ident)
    return Catalog(title=title or "", datasets=datasets, source_url=source_url,
                   invalid=invalid, aliases=aliases)


# ---------------------------------------------------------------------------------------------
# Formats

#: Formats each role accepts (keys of the format detection below).
ROLE_FORMATS: dict[str, frozenset[str]] = {
    "buildings": frozenset({"geojson", "gpkg", "shp", "zip"}),
    "lidar": frozenset({"laz", "las", "zip"}),
    "dtm": frozenset({"geotiff", "zip"}),
    "lod2_reference": frozenset({"citygml", "cityjson", "zip"}),
    "trees": frozenset({"csv", "geojson", "gpkg"}),
    "roads": frozenset({"geojson", "gpkg", "zip"}),
    "flood_zones": frozenset({"geojson", "gpkg", "zip"}),
    "viewpoints": frozenset({"geojson", "gpkg"}),
}

_FORMAT_NAMES = {
    "laz": "laz", "las": "las", "laszip": "laz", "gpkg": "gpkg", "geopackage": "gpkg",
    "geojson": "geojson", "csv": "csv", "zip": "zip", "gml": "citygml", "citygml": "citygml",
    "cityjson": "cityjson", "tiff": "geotiff", "tif": "geotiff", "geotiff": "geotiff",
    "shp": "shp", "shapefile": "shp", "esri shapefile": "shp",
}
_MEDIA_TYPES = {
    "application/vnd.laszip": "laz", "application/vnd.las": "las",
    "application/geopackage+sqlite3": "gpkg", "application/geo+json": "geojson",
    "application/vnd.geo+json": "geojson", "text/csv": "csv", "application/zip": "zip",
    "application/x-zip-compressed": "zip", "application/gml+xml": "citygml",
    "application/city+json": "cityjson", "image/tiff": "geotiff", "image/geotiff": "geotiff",
    "application/x-shapefile": "shp", "x-gis/x-shapefile": "shp",
}
_EXTENSIONS = {
    ".laz": "laz", ".las": "las", ".gpkg": "gpkg", ".geojson": "geojson", ".csv": "csv",
    ".zip": "zip", ".gml": "citygml", ".cityjson": "cityjson", ".city.json": "cityjson",
    ".tif": "geotiff", ".tiff": "geotiff", ".shp": "shp",
}
_EXT_FOR_FORMAT = {"laz": ".laz", "las": ".las", "gpkg": ".gpkg", "geojson": ".geojson",
                   "csv": ".csv", "zip": ".zip", "citygml": ".gml", "cityjson": ".city.json",
                   "geotiff": ".tif", "shp": ".shp"}


def _extension(url: str | None) -> str:
    if not url:
        return ""
    name = unquote(urlparse(url).path).rsplit("/", 1)[-1].lower()
    if name.endswith(".city.json"):
        return ".city.json"
    return os.path.splitext(name)[1]


def format_of(distribution: Distribution, accepted: Iterable[str] | None = None, *,
              role: str | None = None, dataset: str | None = None) -> str:
    """The file format of a distribution, one of :data:`ROLE_FORMATS`' values.

    ``dct:format`` is asked first, then ``dcat:mediaType``, then the download URL's extension; the
    first that names a format among ``accepted`` (default: those of ``role``, else all) wins.

    Raises
    ------
    SourceDataError
        No signal names a known format, or none names an accepted one; the message names the
        media type, format and extension seen.
    """
    if accepted is None:
        accepted = ROLE_FORMATS.get(role, None) if role else None
    accepted_set = set(accepted) if accepted is not None else set(_EXT_FOR_FORMAT)
    fmt = (distribution.format or "").strip().lower()
    media = (distribution.media_type or "").split(";")[0].strip().lower()
    ext = _extension(distribution.url)
    candidates = [_FORMAT_NAMES.get(fmt), _MEDIA_TYPES.get(media), _EXTENSIONS.get(ext)]
    if media == "image/tiff" and "application=geotiff" in (distribution.media_type or ""):
        candidates[1] = "geotiff"
    for c in candidates:
        if c is not None and c in accepted_set:
            return c
    seen = (f"media type {distribution.media_type!r}, format {distribution.format!r}, "
            f"file extension {ext!r} of {distribution.url}")
    who = dataset or role or "distribution"
    known = [c for c in candidates if c]
    if known:
        problem = (f"distribution {distribution.title!r} is {known[0]}, which "
                   f"{'role ' + repr(role) if role else 'the caller'} does not accept "
                   f"(accepted: {', '.join(sorted(accepted_set))}); seen: {seen}")
    else:
        problem = f"distribution {distribution.title!r} has an unknown format; seen: {seen}"
    raise dataset_error(SourceDataError, who, problem,
                        "set dct:format (e.g. LAZ, GeoJSON, GPKG, CSV, ZIP, GML, GeoTIFF) or "
                        "dcat:mediaType of the distribution in the catalog, or configure a dataset "
                        "in a format this role reads")


def select_distributions(dataset: Dataset, role: str | None = None) -> list[Distribution]:
    """The distributions of ``dataset`` in a format ``role`` accepts (all when role is None).

    Raises
    ------
    CatalogError
        The dataset has no distribution at all.
    SourceDataError
        None of its distributions is in an accepted format (names what was seen).
    """
    if not dataset.distributions:
        raise dataset_error(CatalogError, dataset.identifier,
                            "the dataset has no dcat:distribution",
                            "add a distribution with a dcat:downloadURL in the catalog")
    if role is None:
        return list(dataset.distributions)
    out, errors = [], []
    for d in dataset.distributions:
        try:
            format_of(d, role=role, dataset=dataset.identifier)
            out.append(d)
        except SourceDataError as exc:
            errors.append(exc)
    if not out:
        raise errors[0]
    return out


def fingerprint(dataset: Dataset) -> str:
    """A cheap hash of what identifies a dataset's files, without downloading anything.

    Each distribution contributes its URL, modification date, checksum and byte size; the
    order of distributions does not matter. A schedule compares fingerprints to see changes.
    """
    rows = sorted(
        json.dumps([d.url, _iso(d.modified), d.checksum_algorithm, d.checksum_value, d.byte_size])
        for d in dataset.distributions)
    return hashlib.sha256("\n".join(rows).encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------------------------
# Fetchers

_HASH_NAMES = {"sha256": "sha256", "sha1": "sha1", "md5": "md5", "sha224": "sha224",
               "sha384": "sha384", "sha512": "sha512"}


@dataclass
class FetchOutcome:
    """What a fetcher delivered: a verified-length temporary file, or ``not_modified``."""

    not_modified: bool
    tmp_path: Path | None = None
    bytes: int = 0
    digests: dict[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None


class Fetcher(Protocol):
    """Strategy that reads catalog documents and fetches distributions (HTTP or local files)."""

    def read(self, url: str, *, label: str) -> bytes: ...

    def fetch(self, url: str, target_dir: Path, name: str, *, label: str,
              conditional: dict[str, str | None] | None = None,
              expected_size: int | None = None,
              algorithms: Iterable[str] = ("sha256",)) -> FetchOutcome: ...


class _Retryable(Exception):
    """A transient failure (timeout, connection error, 5xx, truncated body)."""


def _hashers(algorithms: Iterable[str]) -> dict[str, Any]:
    return {a: hashlib.new(_HASH_NAMES[a]) for a in set(algorithms) | {"sha256"}}


def _new_tmp(target_dir: Path, name: str) -> tuple[Any, Path]:
    fd, tmp = tempfile.mkstemp(dir=target_dir, prefix=f".{name}.", suffix=".part")
    return os.fdopen(fd, "wb"), Path(tmp)


def _unlink(path: Path | None) -> None:
    if path is not None:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


class HttpFetcher:
    """HTTP(S) with timeouts, retries with exponential backoff and conditional GETs.

    Timeouts, connection errors, 5xx (and 408/429, which ask the client to come back) and
    truncated bodies are retried ``retries`` times, sleeping ``backoff_s``, ``2*backoff_s``, ...;
    other 4xx fail at once.
    """

    RETRY_STATUS = frozenset({408, 429})

    def __init__(self, timeout_s: float = 30.0, retries: int = 3, backoff_s: float = 1.0,
                 session: requests.Session | None = None, chunk_bytes: int = 1 << 20):
        self.timeout_s = float(timeout_s)
        self.retries = int(retries)
        self.backoff_s = float(backoff_s)
        if session is None:
            session = requests.Session()
            session.headers["User-Agent"] = "citymodel-pipeline"
        self.session = session
        self.chunk_bytes = chunk_bytes

    def _with_retries(self, op: Callable[[], Any], url: str, label: str,
                      error: type[CityModelError]) -> Any:
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                return op()
            except _Retryable as exc:
                last = exc
        raise dataset_error(
            error, label,
            f"GET {url} failed {self.retries + 1} time(s); last failure: {last}",
            "check that the server is reachable and serves the file; if it is slow, raise "
            "catalog.timeout_s / catalog.retries in the deployment file") from last

    def _fatal_status(self, r: requests.Response, url: str, label: str,
                      error: type[CityModelError]) -> None:
        status = r.status_code
        if status >= 500 or status in self.RETRY_STATUS:
            raise _Retryable(f"HTTP {status} {r.reason}")
        if status == 404 or status == 410:
            raise dataset_error(error, label, f"{url} was not found (HTTP {status})",
                                "check the dcat:downloadURL / catalog URL; the file may have moved, "
                                "so reload the catalog or correct it")
        if status in (401, 403):
            raise dataset_error(error, label, f"{url} refused access (HTTP {status})",
                                "the file is not public: publish it openly or use another dataset")
        if status >= 400:
            raise dataset_error(error, label, f"{url} answered HTTP {status} {r.reason}",
                                "correct the URL in the catalog")

    def read(self, url: str, *, label: str, error: type[CityModelError] = DownloadError) -> bytes:
        """The whole body of ``url`` (a catalog document), with retries."""

        def op() -> bytes:
            try:
                with self.session.get(url, timeout=self.timeout_s, stream=True, headers={
                        "Accept": "application/ld+json, application/json;q=0.9, */*;q=0.1"}) as r:
                    self._fatal_status(r, url, label, error)
                    data = r.content
                    expected = r.headers.get("Content-Length")
                    if (expected is not None and "Content-Encoding" not in r.headers
                            and len(data) < int(expected)):
                        raise _Retryable(f"truncated body: {len(data)} of {expected} bytes")
                    return data
            except (requests.Timeout, requests.ConnectionError,
                    requests.exceptions.ChunkedEncodingError) as exc:
                raise _Retryable(self._describe(exc)) from exc

        return self._with_retries(op, url, label, error)

    def _describe(self, exc: Exception) -> str:
        if isinstance(exc, requests.Timeout):
            return f"timed out after {self.timeout_s:g} s ({type(exc).__name__})"
        if isinstance(exc, requests.exceptions.ChunkedEncodingError):
            return f"connection broken, body truncated ({exc})"
        return f"connection error ({exc})"

    def fetch(self, url: str, target_dir: Path, name: str, *, label: str,
              conditional: dict[str, str | None] | None = None,
              expected_size: int | None = None,
              algorithms: Iterable[str] = ("sha256",)) -> FetchOutcome:
        """Stream ``url`` into a temporary file in ``target_dir`` (or report 304)."""
        headers = {"Accept-Encoding": "identity"}
        if conditional:
            if conditional.get("etag"):
                headers["If-None-Match"] = conditional["etag"]
            if conditional.get("last_modified"):
                headers["If-Modified-Since"] = conditional["last_modified"]

        def op() -> FetchOutcome:
            tmp: Path | None = None
            n = 0
            try:
                with self.session.get(url, headers=headers, stream=True,
                                      timeout=self.timeout_s) as r:
                    if r.status_code == 304 and conditional:
                        return FetchOutcome(not_modified=True, etag=r.headers.get("ETag"),
                                            last_modified=r.headers.get("Last-Modified"))
                    self._fatal_status(r, url, label, DownloadError)
                    if r.status_code != 200:
                        raise dataset_error(DownloadError, label,
                                            f"{url} answered HTTP {r.status_code} instead of 200",
                                            "serve the file with a plain 200 response")
                    length = r.headers.get("Content-Length")
                    length_i = int(length) if length and length.isdigit() else None
                    hashers = _hashers(algorithms)
                    fh, tmp = _new_tmp(target_dir, name)
                    with fh:
                        for chunk in r.iter_content(self.chunk_bytes):
                            fh.write(chunk)
                            n += len(chunk)
                            for h in hashers.values():
                                h.update(chunk)
                    if length_i is not None and n < length_i:
                        raise _Retryable(f"truncated body: {n} of {length_i} bytes (Content-Length)")
                    if expected_size is not None and n < expected_size:
                        raise _Retryable(f"truncated body: {n} of {expected_size} bytes (dcat:byteSize)")
                    return FetchOutcome(False, tmp, n, {a: h.hexdigest() for a, h in hashers.items()},
                                        r.headers.get("ETag"), r.headers.get("Last-Modified"))
            except (requests.Timeout, requests.ConnectionError,
                    requests.exceptions.ChunkedEncodingError) as exc:
                _unlink(tmp)
                raise _Retryable(self._describe(exc) + (f" after {n} bytes" if n else "")) from exc
            except BaseException:
                _unlink(tmp)
                raise

        return self._with_retries(op, url, label, DownloadError)


class FileFetcher:
    """Local files (``file:`` URLs and plain paths), copied with the same verification.

    The file's size and modification time (ns) stand in for an HTTP ETag, so an untouched
    source is "not modified" without reading it.
    """

    chunk_bytes = 1 << 20

    def _path(self, url: str, label: str, error: type[CityModelError]) -> Path:
        path = _url_to_path(url)
        if not path.is_file():
            raise dataset_error(error, label, f"{path} (from {url}) does not exist or is not a file",
                                "check the path in the catalog / deployment file (relative download "
                                "URLs are resolved against the catalog file's folder)")
        return path

    def read(self, url: str, *, label: str, error: type[CityModelError] = DownloadError) -> bytes:
        return self._path(url, label, error).read_bytes()

    @staticmethod
    def _etag(st: os.stat_result) -> str:
        return f'"{st.st_size:x}-{st.st_mtime_ns:x}"'

    def fetch(self, url: str, target_dir: Path, name: str, *, label: str,
              conditional: dict[str, str | None] | None = None,
              expected_size: int | None = None,
              algorithms: Iterable[str] = ("sha256",)) -> FetchOutcome:
        src = self._path(url, label, DownloadError)
        st = src.stat()
        etag = self._etag(st)
        last_modified = email.utils.formatdate(st.st_mtime, usegmt=True)
        if conditional and conditional.get("etag") == etag:
            return FetchOutcome(True, etag=etag, last_modified=last_modified)
        hashers = _hashers(algorithms)
        fh, tmp = _new_tmp(target_dir, name)
        n = 0
        try:
            with fh, src.open("rb") as fin:
                while chunk := fin.read(self.chunk_bytes):
                    fh.write(chunk)
                    n += len(chunk)
                    for h in hashers.values():
                        h.update(chunk)
            if expected_size is not None and n < expected_size:
                raise dataset_error(DownloadError, label,
                                    f"{src} has {n} bytes, fewer than dcat:byteSize {expected_size}",
                                    "the file is truncated: replace it, or correct dcat:byteSize")
        except BaseException:
            _unlink(tmp)
            raise
        return FetchOutcome(False, tmp, n, {a: h.hexdigest() for a, h in hashers.items()},
                            etag, last_modified)


def fetcher_for(url: str, *, timeout_s: float = 30.0, retries: int = 3,
                backoff_s: float = 1.0) -> Fetcher:
    """The fetcher for ``url``'s scheme: :class:`HttpFetcher` or :class:`FileFetcher`."""
    scheme = urlparse(_to_url(url)).scheme.lower()
    if scheme in ("http", "https"):
        return HttpFetcher(timeout_s=timeout_s, retries=retries, backoff_s=backoff_s)
    if scheme == "file":
        return FileFetcher()
    raise dataset_error(DownloadError, url, f"URL scheme '{scheme}' is not supported",
                        "use an http(s) URL, a file: URL or a local path")


# ---------------------------------------------------------------------------------------------
# Download


def local_name(distribution: Distribution) -> str:
    """A safe file name for a distribution: the URL's last path segment, else title + extension."""
    raw = unquote(urlparse(distribution.url or "").path).rsplit("/", 1)[-1]
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", raw).strip("._")
    if not name or "." not in name:
        base = re.sub(r"[^A-Za-z0-9._-]+", "_", distribution.title).strip("._") or name or "download"
        try:
            ext = _EXT_FOR_FORMAT[format_of(distribution)]
        except SourceDataError:
            ext = ""
        name = base + ext
    return name


def _load_state(path: Path) -> dict[str, Any]:
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        return state if isinstance(state, dict) else {}
    except (OSError, ValueError):
        return {}


def _save_state(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(state, fh, indent=1, sort_keys=True)
    os.replace(tmp, path)


def _file_digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(_HASH_NAMES[algorithm])
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _local_ok(path: Path, state: dict[str, Any]) -> bool:
    """The downloaded file is present and is what was recorded (size + mtime, else sha256)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return False
    if st.st_size != state.get("bytes"):
        return False
    if st.st_mtime_ns == state.get("mtime_ns"):
        return True
    if _file_digest(path, "sha256") == state.get("sha256"):
        state["mtime_ns"] = st.st_mtime_ns
        return True
    return False


def _catalog_checksum(d: Distribution) -> str | None:
    return f"{d.checksum_algorithm}:{d.checksum_value}" if d.checksum_value else None


def _catalog_unchanged(d: Distribution, state: dict[str, Any]) -> bool:
    """The catalog still describes what was fetched (checksum and/or modified date recorded)."""
    signal = False
    if d.checksum_value:
        if state.get("catalog_checksum") != _catalog_checksum(d):
            return False
        signal = True
    if d.modified is not None:
        if state.get("catalog_modified") != _iso(d.modified):
            return False
        signal = True
    if d.byte_size is not None and d.byte_size != state.get("bytes"):
        return False
    return signal


def download(distribution: Distribution, target_dir: str | os.PathLike, *,
             dataset: str = "distribution", filename: str | None = None,
             state: dict[str, Any] | None = None, fetcher: Fetcher | None = None,
             timeout_s: float = 30.0, retries: int = 3, backoff_s: float = 1.0,
             force: bool = False) -> DownloadResult:
    """Download a distribution into ``target_dir``, verified, atomically, only when changed.

    The body is streamed to a temporary file in ``target_dir``, checked against ``dcat:byteSize``
    and the spdx checksum, then renamed with :func:`os.replace`; a failed download leaves no file
    under the final name. What was fetched (ETag, Last-Modified, the catalog's modified date and
    checksum, size, sha256) is recorded in ``state`` if given (the caller persists it), else in
    ``target_dir/.download_state/<name>.json``. Next time nothing is transferred when the catalog's
    checksum / modified date are unchanged and the file is intact, or when the server answers a
    conditional GET with 304; ``changed`` is then False (it is also False when a transfer brought
    the same bytes).

    Parameters
    ----------
    distribution : Distribution
    target_dir : path
        Folder of the download (created).
    dataset : str
        Dataset identifier or role, named in errors.
    filename : str, optional
        File name in ``target_dir``; default :func:`local_name`.
    state : dict, optional
        Download record kept by the caller instead of the state file; updated in place.
    fetcher : Fetcher, optional
        Default: picked from the URL scheme with ``timeout_s``, ``retries``, ``backoff_s``.
    force : bool
        Download even if the record says the file is current.

    Raises
    ------
    DownloadError
        Not found (404), retries exhausted, size or checksum mismatch, unsupported algorithm.
    """
    t0 = time.perf_counter()
    url = distribution.url
    if not url:
        raise dataset_error(DownloadError, dataset,
                            f"distribution {distribution.title!r} has neither dcat:downloadURL nor "
                            f"dcat:accessURL", "add a dcat:downloadURL to the distribution in the catalog")
    alg = distribution.checksum_algorithm
    if distribution.checksum_value and alg not in _HASH_NAMES:
        raise dataset_error(DownloadError, dataset,
                            f"distribution {url} has a checksum with algorithm {alg!r}, which "
                            f"is not supported (supported: {', '.join(sorted(_HASH_NAMES))})",
                            "publish an spdx:checksumAlgorithm_sha256 checksum in the catalog")
    target = Path(target_dir)
    target.mkdir(parents=True, exist_ok=True)
    name = filename or local_name(distribution)
    final = target / name
    state_path = None if state is not None else target / STATE_DIR / f"{name}.json"
    record: dict[str, Any] = state if state is not None else _load_state(state_path)  # type: ignore[arg-type]

    def result(changed: bool) -> DownloadResult:
        return DownloadResult(final, changed, int(record["bytes"]), record["sha256"],
                              record.get("etag"), record.get("last_modified"),
                              time.perf_counter() - t0)

    def persist() -> None:
        if state_path is not None:
            _save_state(state_path, record)

    conditional = None
    local_intact = record.get("url") == url and _local_ok(final, record)
    if not force and local_intact:
        if _catalog_unchanged(distribution, record):
            persist()
            return result(False)
        conditional = {"etag": record.get("etag"), "last_modified": record.get("last_modified")}

    fetcher = fetcher or fetcher_for(url, timeout_s=timeout_s, retries=retries, backoff_s=backoff_s)
    algorithms = [alg] if distribution.checksum_value and alg else []
    out = fetcher.fetch(url, target, name, label=dataset, conditional=conditional,
                        expected_size=distribution.byte_size, algorithms=algorithms)
    if out.not_modified:
        if distribution.checksum_value and record.get("catalog_checksum") != _catalog_checksum(distribution):
            # the server says unchanged but the catalog's checksum differs from what we recorded:
            # verify the local file against the catalog before trusting it
            if _file_digest(final, alg) != distribution.checksum_value.lower():
                return download(distribution, target, dataset=dataset, filename=name, state=state,
                                fetcher=fetcher, force=True)
        record.update(catalog_modified=_iso(distribution.modified),
                      catalog_checksum=_catalog_checksum(distribution),
                      etag=out.etag or record.get("etag"),
                      last_modified=out.last_modified or record.get("last_modified"))
        persist()
        return result(False)

    tmp = out.tmp_path
    try:
        if distribution.byte_size is not None and out.bytes != distribution.byte_size:
            raise dataset_error(DownloadError, dataset,
                                f"{url} delivered {out.bytes} bytes but the catalog's dcat:byteSize "
                                f"is {distribution.byte_size}",
                                "the catalog is out of date or the file is wrong: correct dcat:byteSize "
                                "or re-publish the file")
        if distribution.checksum_value:
            got = out.digests.get(alg, "")
            if got != distribution.checksum_value.lower():
                raise dataset_error(DownloadError, dataset,
                                    f"{url}: {alg} checksum mismatch (catalog "
                                    f"{distribution.checksum_value}, downloaded file {got})",
                                    "the file changed without the catalog (or was corrupted): "
                                    "update spdx:checksumValue in the catalog or re-publish the file")
        changed = not (local_intact and record.get("sha256") == out.digests["sha256"])
        if changed:
            os.replace(tmp, final)
        else:  # the same bytes again: keep the file (and its mtime) as it is
            _unlink(tmp)
        tmp = None
    finally:
        _unlink(tmp)
    st = final.stat()
    record.update(url=url, etag=out.etag, last_modified=out.last_modified,
                  catalog_modified=_iso(distribution.modified),
                  catalog_checksum=_catalog_checksum(distribution),
                  bytes=out.bytes, sha256=out.digests["sha256"], digests=out.digests,
                  mtime_ns=st.st_mtime_ns,
                  fetched_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    persist()
    return result(changed)


# ---------------------------------------------------------------------------------------------
# Archives


def extract_zip(path: str | os.PathLike, target_dir: str | os.PathLike, *,
                dataset: str | None = None) -> list[Path]:
    """Extract a zip archive safely into ``target_dir``; returns the extracted files.

    Every member is checked before anything is written: absolute paths, drive letters, ``..``
    segments, paths resolving outside ``target_dir`` and symbolic links are refused. Each file is
    written to a temporary name and renamed, so no half-written member is left.

    Raises
    ------
    DownloadError
        Not a zip, a corrupt member (CRC), or an unsafe member (names archive and member).
    """
    archive = Path(path)
    target = Path(target_dir)
    label = dataset or archive.name
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise dataset_error(DownloadError, label, f"{archive} is not a readable zip archive ({exc})",
                            "download it again; if it stays broken, the published file is corrupt") from exc
    with zf:
        target.mkdir(parents=True, exist_ok=True)
        root = target.resolve()
        plan: list[tuple[zipfile.ZipInfo, Path]] = []
        for info in zf.infolist():
            member = info.filename
            mode = info.external_attr >> 16
            problem = None
            parts = re.split(r"[\\/]+", member)
            if stat.S_ISLNK(mode):
                problem = "is a symbolic link"
            elif member.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", member):
                problem = "has an absolute path"
            elif ".." in parts:
                problem = "has a '..' path segment"
            else:
                dest = (target / member.replace("\\", "/")).resolve()
                if dest != root and root not in dest.parents:
                    problem = "resolves outside the target folder"
            if problem:
                raise dataset_error(DownloadError, label,
                                    f"archive {archive.name}: member {member!r} {problem} and would "
                                    f"escape {target}; nothing was extracted",
                                    "the archive is unsafe: do not use it; ask the publisher for a "
                                    "clean archive", record=member)
            plan.append((info, dest))
        written: list[Path] = []
        for info, dest in plan:
            if info.is_dir():
                dest.mkdir(parents=True, exist_ok=True)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
            try:
                with os.fdopen(fd, "wb") as fout, zf.open(info) as fin:
                    shutil.copyfileobj(fin, fout, 1 << 20)
                os.replace(tmp, dest)
            except (zipfile.BadZipFile, OSError) as exc:
                _unlink(Path(tmp))
                raise dataset_error(DownloadError, label,
                                    f"archive {archive.name}: member {info.filename!r} cannot be "
                                    f"extracted ({exc})", "download the archive again",
                                    record=info.filename) from exc
            written.append(dest)
    return written
