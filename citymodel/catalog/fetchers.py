"""Fetchers: the strategy that reads catalog documents and fetches distributions.

Where a live and an offline implementation differ, a fetcher is picked from the URL scheme
(:func:`fetcher_for`): :class:`HttpFetcher` (timeouts, retries with exponential backoff,
conditional requests with ETag / Last-Modified) and :class:`FileFetcher` (``file:`` URLs and plain
paths, copied with the same verification; size and modification time stand in for an ETag).
A fetch streams the body into a temporary file beside the target and computes its digests on the
way; :func:`citymodel.catalog.downloads.download` verifies it and renames it into place.
"""

from __future__ import annotations

import email.utils
import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

import requests

from ..errors import CityModelError, DownloadError, dataset_error
from .urls import to_url, url_to_path

#: Checksum algorithms a download can compute and verify (spdx name: :mod:`hashlib` name).
CHECKSUM_ALGORITHMS = {"sha256": "sha256", "sha1": "sha1", "md5": "md5", "sha224": "sha224",
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
    return {a: hashlib.new(CHECKSUM_ALGORITHMS[a]) for a in set(algorithms) | {"sha256"}}


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
        path = url_to_path(url)
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
    scheme = urlparse(to_url(url)).scheme.lower()
    if scheme in ("http", "https"):
        return HttpFetcher(timeout_s=timeout_s, retries=retries, backoff_s=backoff_s)
    if scheme == "file":
        return FileFetcher()
    raise dataset_error(DownloadError, url, f"URL scheme '{scheme}' is not supported",
                        "use an http(s) URL, a file: URL or a local path")
