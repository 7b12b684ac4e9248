"""DCAT-AP catalogs (JSON-LD) and verified, conditional downloads of their distributions.

The city's open data platform (piveau) and CKAN portals with DCAT output serve DCAT-AP as JSON-LD.
This package reads such a document, from an http(s) URL or a local file, into plain dataclasses
(:class:`Catalog`, :class:`Dataset`, :class:`Distribution`) and downloads distributions to a
folder: streamed to a temporary file beside the target, verified (byte size, checksum), then
renamed atomically. A second download of an unchanged distribution transfers nothing.

rdflib never fetches a remote ``@context``: the well-known DCAT-AP / DCAT context URLs are
replaced by an inline context (:data:`DCAT_AP_CONTEXT`) and any other remote context is a
:class:`~citymodel.errors.CatalogError`. Where a live and an offline implementation differ, a
*fetcher* strategy is picked from the URL scheme (:func:`fetcher_for`): :class:`HttpFetcher`
(retries with exponential backoff, conditional requests with ETag / Last-Modified) and
:class:`FileFetcher` (``file:`` URLs and plain paths, copied with the same verification).

Modules: :mod:`.model` (the dataclasses, :func:`fingerprint`), :mod:`.parse` (JSON-LD to the
model), :mod:`.contexts` (inline JSON-LD contexts), :mod:`.urls` (URLs and local paths),
:mod:`.formats` (file formats, distributions a role reads), :mod:`.fetchers` (HTTP and file
fetchers), :mod:`.downloads` (verified conditional downloads and their record), :mod:`.archives`
(safe zip extraction).

Nothing here imports dagster.
"""

from .archives import extract_zip
from .contexts import DCAT_AP_CONTEXT, WELL_KNOWN_CONTEXTS
from .downloads import STATE_DIR, DownloadResult, download, local_name
from .fetchers import FetchOutcome, Fetcher, FileFetcher, HttpFetcher, fetcher_for
from .formats import ROLE_FORMATS, format_of, select_distributions
from .model import Catalog, Dataset, Distribution, fingerprint
from .parse import load_catalog, parse_catalog

__all__ = [
    "Catalog", "Dataset", "Distribution", "DownloadResult", "FetchOutcome", "Fetcher",
    "HttpFetcher", "FileFetcher", "fetcher_for", "load_catalog", "parse_catalog", "download",
    "extract_zip", "format_of", "fingerprint", "local_name", "select_distributions",
    "ROLE_FORMATS", "DCAT_AP_CONTEXT", "WELL_KNOWN_CONTEXTS", "STATE_DIR",
]
