"""Reading DCAT-AP JSON-LD documents into the data model (:mod:`.model`).

Parsing goes through rdflib's JSON-LD parser and graph queries over ``dcat:``, ``dct:`` and
``spdx:`` terms, so compacted, expanded and ``@graph`` documents all work; every ``@context`` is
made inline first (:mod:`.contexts`). Paged catalogs (hydra) are followed page by page.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urljoin

import rdflib
from rdflib import BNode, Literal, URIRef
from rdflib.namespace import RDF, RDFS

from ..errors import CatalogError, CityModelError, DownloadError, dataset_error
from .contexts import DCAT, DCT, GSP, HYDRA, LOCN, SPDX, inline_contexts
from .fetchers import Fetcher, fetcher_for
from .model import Catalog, Dataset, Distribution
from .policy import UrlPolicy
from .transfer import Deadline, TransferLimits
from .urls import to_url

IANA_MEDIA_TYPES = "http://www.iana.org/assignments/media-types/"

#: Languages preferred when a title or description is given in several languages.
PREFERRED_LANGUAGES = ("de", "en")


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
    doc = inline_contexts(doc, source_url, label)
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
    url = to_url(source_url)
    graph = rdflib.Graph()
    _parse_into(graph, data, url, "catalog")
    return _catalog_from_graph(graph, url)


def load_catalog(source: str | os.PathLike, *, fetcher: Fetcher | None = None,
                 timeout_s: float = 30.0, retries: int = 3, backoff_s: float = 1.0,
                 max_pages: int = 1000, policy: UrlPolicy | None = None,
                 limits: TransferLimits | None = None,
                 max_catalog_bytes: int | None = 256 << 20) -> Catalog:
    """Read a DCAT-AP catalog from an http(s) URL, a ``file:`` URL or a local path.

    Paged catalogs (``hydra:nextPage`` / ``hydra:next``) are followed up to ``max_pages``; every
    next page must be allowed by ``policy`` (default: the catalog's own scheme and host), and all
    pages together are read within ``limits.deadline_s``.

    Raises
    ------
    CatalogError
        The document cannot be fetched or read, or is not DCAT-AP JSON-LD (transient where the
        fetch failed for a transient reason, :func:`~citymodel.errors.is_transient`).
    """
    url = to_url(source)
    limits = limits or TransferLimits(window_s=timeout_s)
    policy = policy or UrlPolicy(url)
    fetcher = fetcher or fetcher_for(url, timeout_s=timeout_s, retries=retries, backoff_s=backoff_s,
                                     policy=policy, limits=limits, max_catalog_bytes=max_catalog_bytes)
    deadline = Deadline(limits.deadline_s)
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
        if deadline.expired:
            raise dataset_error(CatalogError, "catalog",
                                f"reading {url} took longer than catalog.download_deadline_s = "
                                f"{limits.deadline_s:g} s ({len(seen)} page(s) read)",
                                "try again later; raise catalog.download_deadline_s for a very large catalog")
        seen.add(page)
        try:
            if page != url:
                policy.check_download(page, dataset="catalog", what="next page (hydra:next)")
            data = fetcher.read(page, label="catalog")
        except DownloadError as exc:
            err = CatalogError(str(exc))
            err.transient = exc.transient
            raise err from exc
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

