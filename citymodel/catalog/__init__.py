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

A catalog is untrusted input: :class:`UrlPolicy` decides which URLs it may make the pipeline fetch
(an online catalog never names local files; allowed hosts; redirects checked hop by hop; no
https-to-http downgrade), :class:`TransferLimits` bound each transfer (total deadline, minimum
rate), and a zip is checked (member paths and types, count, size, compression ratio) and extracted
into a fresh folder per version before its download is recorded.

Modules: :mod:`.model` (the dataclasses, :func:`fingerprint`), :mod:`.parse` (JSON-LD to the
model), :mod:`.contexts` (inline JSON-LD contexts), :mod:`.urls` (URLs and local paths),
:mod:`.policy` (which URLs a catalog may name), :mod:`.transfer` (deadline, minimum rate),
:mod:`.formats` (file formats, distributions a role reads), :mod:`.fetchers` (HTTP and file
fetchers), :mod:`.downloads` (verified conditional downloads, their record, pruning),
:mod:`.archives` (safe zip checks and extraction per version).

Nothing here imports dagster.
"""

from .archives import (ZipLimits, check_zip, extract_zip, extraction_dir, prune_extractions,
                       unpack_version, zip_verifier)
from .contexts import DCAT_AP_CONTEXT, WELL_KNOWN_CONTEXTS
from .downloads import STATE_DIR, DownloadResult, download, local_name, prune_downloads
from .fetchers import FetchOutcome, Fetcher, FileFetcher, HttpFetcher, fetcher_for
from .formats import ROLE_FORMATS, format_of, select_distributions
from .model import Catalog, Dataset, Distribution, fingerprint
from .parse import load_catalog, parse_catalog
from .policy import UrlPolicy
from .transfer import TransferLimits

__all__ = [
    "Catalog", "Dataset", "Distribution", "DownloadResult", "FetchOutcome", "Fetcher",
    "HttpFetcher", "FileFetcher", "fetcher_for", "load_catalog", "parse_catalog", "download",
    "extract_zip", "check_zip", "unpack_version", "extraction_dir", "prune_extractions",
    "zip_verifier", "ZipLimits", "prune_downloads", "UrlPolicy", "TransferLimits",
    "format_of", "fingerprint", "local_name", "select_distributions",
    "ROLE_FORMATS", "DCAT_AP_CONTEXT", "WELL_KNOWN_CONTEXTS", "STATE_DIR",
]
