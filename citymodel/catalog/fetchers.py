"""Fetchers: the strategy that reads catalog documents and fetches distributions.

Where a live and an offline implementation differ, a fetcher is picked from the URL scheme
(:func:`fetcher_for`): :class:`HttpFetcher` (timeouts, retries with exponential backoff,
conditional requests with ETag / Last-Modified, redirects checked by the URL policy, a total
deadline, a minimum rate and a largest body: :mod:`.policy`, :mod:`.transfer`) and
:class:`FileFetcher` (``file:`` URLs and plain paths, copied with the same verification; size and
modification time stand in for an ETag). A fetch streams the body into a temporary file beside the
target and computes its digests on the way; :func:`citymodel.catalog.downloads.download` verifies
it and renames it into place.
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
from urllib.parse import urljoin, urlparse

import requests
import urllib3

from ..errors import CityModelError, DownloadError, dataset_error, transient_error
from .policy import UrlPolicy
from .transfer import Deadline, RateGuard, TooSlow, TransferLimits
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
              algorithms: Iterable[str] = ("sha256",),
              max_bytes: int | None = None) -> FetchOutcome: ...


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


class _DeadlineHit(Exception):
    """The download's total deadline passed during an attempt."""


def _length(r: requests.Response) -> int | None:
    value = r.headers.get("Content-Length")
    return int(value) if value and value.strip().isdigit() else None


class HttpFetcher:
    """HTTP(S) with timeouts, retries with exponential backoff, conditional GETs, checked redirects,
    a total deadline, a minimum rate and a largest body.

    Timeouts, connection errors, 5xx (and 408/429, which ask the client to come back), truncated
    bodies and transfers below the minimum rate are retried ``retries`` times, sleeping
    ``backoff_s``, ``2*backoff_s``, ...; other 4xx fail at once. When the retries are used up the
    error is transient (:func:`~citymodel.errors.is_transient`: worth a later retry); when the
    deadline (``limits.deadline_s``, all attempts together) passes first it is permanent.
    Redirects are followed by hand, each hop checked by ``policy``
    (:class:`~citymodel.catalog.policy.UrlPolicy`; without one: the requested URL's own host,
    no https-to-http downgrade).
    """

    RETRY_STATUS = frozenset({408, 429})
    MAX_REDIRECTS = 10

    def __init__(self, timeout_s: float = 30.0, retries: int = 3, backoff_s: float = 1.0,
                 session: requests.Session | None = None, chunk_bytes: int = 1 << 20, *,
                 policy: UrlPolicy | None = None, limits: TransferLimits | None = None,
                 max_catalog_bytes: int | None = 256 << 20):
        self.timeout_s = float(timeout_s)
        self.retries = int(retries)
        self.backoff_s = float(backoff_s)
        if session is None:
            session = requests.Session()
            session.headers["User-Agent"] = "citymodel-pipeline"
        self.session = session
        self.chunk_bytes = chunk_bytes
        self.policy = policy
        self.limits = limits or TransferLimits(window_s=self.timeout_s)
        self.max_catalog_bytes = max_catalog_bytes

    # -- retries and the deadline ---------------------------------------------------------------
    def _with_retries(self, op: Callable[[Deadline], Any], url: str, label: str,
                      error: type[CityModelError]) -> Any:
        deadline = Deadline(self.limits.deadline_s)
        last: Exception | None = None
        attempts = 0
        for attempt in range(self.retries + 1):
            if attempt:
                wait = self.backoff_s * 2 ** (attempt - 1)
                if deadline.remaining() <= wait:
                    break
                time.sleep(wait)
            if deadline.expired:
                break
            attempts += 1
            try:
                return op(deadline)
            except _Retryable as exc:
                last = exc
            except _DeadlineHit as exc:
                last = exc
                break
        else:
            raise transient_error(dataset_error(
                error, label,
                f"GET {url} failed {self.retries + 1} time(s); last failure: {last}",
                "check that the server is reachable and serves the file; if it is slow, raise "
                "catalog.timeout_s / catalog.retries in the deployment file")) from last
        raise dataset_error(
            error, label,
            f"GET {url} did not complete within catalog.download_deadline_s = "
            f"{self.limits.deadline_s:g} s ({attempts} attempt(s) in {deadline.elapsed():.1f} s; last "
            f"failure: {last or 'none'}); the download was cut off and nothing was kept",
            "the server is too slow or hangs: try again later; if the file is large and the server "
            "slow but steady, raise catalog.download_deadline_s") from last

    def _timeout(self, deadline: Deadline) -> float:
        left = deadline.remaining()
        if left <= 0:
            raise _DeadlineHit("before the request")
        return max(0.05, min(self.timeout_s, left))

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

    def _describe(self, exc: Exception) -> str:
        if isinstance(exc, (requests.Timeout, urllib3.exceptions.TimeoutError)):
            return f"timed out after {self.timeout_s:g} s ({type(exc).__name__})"
        if isinstance(exc, (requests.exceptions.ChunkedEncodingError, urllib3.exceptions.ProtocolError)):
            return f"connection broken, body truncated ({exc})"
        return f"connection error ({exc})"

    # -- one request: redirects by hand, the body in bounded reads ------------------------------
    def _open(self, url: str, headers: dict[str, str], label: str, error: type[CityModelError],
              deadline: Deadline) -> tuple[requests.Response, str]:
        """The response of ``url`` after the redirects the policy allows, and its final URL."""
        policy = self.policy or UrlPolicy(url)
        current = url
        for _ in range(self.MAX_REDIRECTS + 1):
            timeout = self._timeout(deadline)
            try:
                r = self.session.get(current, headers=headers, stream=True, timeout=timeout,
                                     allow_redirects=False)
            except (requests.Timeout, requests.ConnectionError,
                    requests.exceptions.ChunkedEncodingError) as exc:
                raise _Retryable(self._describe(exc)) from exc
            if not r.is_redirect:
                return r, current
            target = urljoin(current, r.headers.get("Location", ""))
            r.close()
            policy.check_redirect(current, target, dataset=label)
            current = target
        raise dataset_error(error, label, f"{url} redirects more than {self.MAX_REDIRECTS} times",
                            "correct the download URL in the catalog (a redirect loop)")

    def _body(self, r: requests.Response, sink: Callable[[bytes], Any], url: str, label: str,
              deadline: Deadline, max_bytes: int | None, error: type[CityModelError],
              what: str) -> int:
        """Stream the body into ``sink`` in reads of what has arrived; returns its length."""
        length = _length(r)
        if max_bytes is not None and length is not None and length > max_bytes:
            raise dataset_error(error, label,
                                f"{url} announces {length} bytes (Content-Length), more than the "
                                f"{max_bytes} bytes allowed for {what}; nothing was downloaded",
                                _too_large_fix(what))
        guard = RateGuard(self.limits.min_rate_bytes_s, self.limits.window_s)
        n = 0
        while True:
            if deadline.expired:
                raise _DeadlineHit(f"still transferring after {n} bytes")
            try:
                chunk = r.raw.read1(self.chunk_bytes, decode_content=True)
            except (urllib3.exceptions.TimeoutError, urllib3.exceptions.ProtocolError,
                    urllib3.exceptions.DecodeError, OSError) as exc:
                raise _Retryable(self._describe(exc) + (f" after {n} bytes" if n else "")) from exc
            if not chunk:
                break
            n += len(chunk)
            if max_bytes is not None and n > max_bytes:
                raise dataset_error(error, label,
                                    f"{url} sent more than the {max_bytes} bytes allowed for {what}; "
                                    f"the transfer was cut off and nothing was kept", _too_large_fix(what))
            sink(chunk)
            try:
                guard.update(n)
            except TooSlow as exc:
                raise _Retryable(str(exc)) from exc
        if length is not None and "Content-Encoding" not in r.headers and n < length:
            raise _Retryable(f"truncated body: {n} of {length} bytes (Content-Length)")
        return n

    # -- the Fetcher protocol --------------------------------------------------------------------
    def read(self, url: str, *, label: str, error: type[CityModelError] = DownloadError) -> bytes:
        """The whole body of ``url`` (a catalog document), with retries, within the deadline and
        at most ``max_catalog_bytes``."""

        def op(deadline: Deadline) -> bytes:
            r, final = self._open(url, {"Accept": "application/ld+json, application/json;q=0.9, */*;q=0.1"},
                                  label, error, deadline)
            with r:
                self._fatal_status(r, final, label, error)
                buf = bytearray()
                self._body(r, buf.extend, final, label, deadline, self.max_catalog_bytes, error,
                           "a catalog document (catalog.max_catalog_bytes)")
                return bytes(buf)

        return self._with_retries(op, url, label, error)

    def fetch(self, url: str, target_dir: Path, name: str, *, label: str,
              conditional: dict[str, str | None] | None = None,
              expected_size: int | None = None,
              algorithms: Iterable[str] = ("sha256",),
              max_bytes: int | None = None) -> FetchOutcome:
        """Stream ``url`` into a temporary file in ``target_dir`` (or report 304)."""
        headers = {"Accept-Encoding": "identity"}
        if conditional:
            if conditional.get("etag"):
                headers["If-None-Match"] = conditional["etag"]
            if conditional.get("last_modified"):
                headers["If-Modified-Since"] = conditional["last_modified"]

        def op(deadline: Deadline) -> FetchOutcome:
            tmp: Path | None = None
            try:
                r, final = self._open(url, headers, label, DownloadError, deadline)
                with r:
                    if r.status_code == 304 and conditional:
                        return FetchOutcome(not_modified=True, etag=r.headers.get("ETag"),
                                            last_modified=r.headers.get("Last-Modified"))
                    self._fatal_status(r, final, label, DownloadError)
                    if r.status_code != 200:
                        raise dataset_error(DownloadError, label,
                                            f"{final} answered HTTP {r.status_code} instead of 200",
                                            "serve the file with a plain 200 response")
                    hashers = _hashers(algorithms)
                    fh, tmp = _new_tmp(target_dir, name)

                    def sink(chunk: bytes) -> None:
                        fh.write(chunk)
                        for h in hashers.values():
                            h.update(chunk)

                    with fh:
                        n = self._body(r, sink, final, label, deadline, max_bytes, DownloadError,
                                       f"this dataset (quality.max_file_bytes)")
                    if expected_size is not None and n < expected_size:
                        raise _Retryable(f"truncated body: {n} of {expected_size} bytes (dcat:byteSize)")
                    return FetchOutcome(False, tmp, n, {a: h.hexdigest() for a, h in hashers.items()},
                                        r.headers.get("ETag"), r.headers.get("Last-Modified"))
            except BaseException:
                _unlink(tmp)
                raise

        return self._with_retries(op, url, label, DownloadError)


def _too_large_fix(what: str) -> str:
    if "catalog" in what:
        return "check that catalog.url is the catalog document; raise catalog.max_catalog_bytes if it is"
    return ("check that the download URL is the right file; if it is, raise quality.max_file_bytes "
            "for this role in the deployment file")


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
              algorithms: Iterable[str] = ("sha256",),
              max_bytes: int | None = None) -> FetchOutcome:
        src = self._path(url, label, DownloadError)
        st = src.stat()
        etag = self._etag(st)
        last_modified = email.utils.formatdate(st.st_mtime, usegmt=True)
        if conditional and conditional.get("etag") == etag:
            return FetchOutcome(True, etag=etag, last_modified=last_modified)
        if max_bytes is not None and st.st_size > max_bytes:
            raise dataset_error(DownloadError, label,
                                f"{src} has {st.st_size} bytes, more than the {max_bytes} bytes allowed "
                                f"for this dataset (quality.max_file_bytes); nothing was copied",
                                _too_large_fix("file"))
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
                backoff_s: float = 1.0, policy: UrlPolicy | None = None,
                limits: TransferLimits | None = None,
                max_catalog_bytes: int | None = 256 << 20) -> Fetcher:
    """The fetcher for ``url``'s scheme: :class:`HttpFetcher` or :class:`FileFetcher`.

    ``policy`` checks the redirects of an :class:`HttpFetcher`; ``limits`` bound its transfers
    (default: a one-hour deadline, 10 kB/s over ``timeout_s``).
    """
    scheme = urlparse(to_url(url)).scheme.lower()
    if scheme in ("http", "https"):
        return HttpFetcher(timeout_s=timeout_s, retries=retries, backoff_s=backoff_s, policy=policy,
                           limits=limits, max_catalog_bytes=max_catalog_bytes)
    if scheme == "file":
        return FileFetcher()
    raise dataset_error(DownloadError, url, f"URL scheme '{scheme}' is not supported",
                        "use an http(s) URL, a file: URL or a local path")
