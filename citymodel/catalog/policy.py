"""Where a catalog may send the pipeline: the URL policy for download URLs, pages and redirects.

A catalog is untrusted input. What it names is only fetched when :class:`UrlPolicy` allows it:

* **Scheme.** A catalog read over http(s) may name http(s) URLs only: never ``file:`` URLs, plain
  paths or anything that resolves to a file of this machine (it would make the pipeline read and
  publish local files). A catalog on disk (the operator's own file) may name local files and
  http(s) URLs. Other schemes (``ftp:``, ``data:``, ...) are refused.
* **No downgrade.** Under an https catalog, plain-http download URLs and redirects from https to
  http are refused unless ``catalog.allow_insecure_http`` says otherwise.
* **Hosts.** Download URLs and redirect targets must be on an allowed host:
  ``catalog.allowed_hosts`` where configured, else the catalog's own host. For a catalog on disk
  without an allow-list, a download URL may name any host, but a redirect must stay on the host
  of the URL it came from. An entry ``name`` allows every port of that host, ``name:port`` that
  port only.

Every refusal is a permanent :class:`~citymodel.errors.DownloadError` naming the dataset, the URL
and the fix.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlparse

from ..errors import DownloadError, dataset_error
from .urls import to_url

REMOTE_SCHEMES = ("http", "https")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _host_port(url: str) -> tuple[str, int | None]:
    p = urlparse(url)
    try:
        port = p.port
    except ValueError:
        port = None
    return (p.hostname or "").lower(), port or _DEFAULT_PORTS.get(p.scheme.lower())


def _describe_host(host: str, port: int | None, scheme: str) -> str:
    return host if port is None or port == _DEFAULT_PORTS.get(scheme) else f"{host}:{port}"


@dataclass(frozen=True)
class UrlPolicy:
    """What URLs a catalog read from ``catalog_url`` may make the pipeline fetch (module docstring).

    Parameters
    ----------
    catalog_url : str
        The catalog's URL or local path.
    allowed_hosts : iterable of str, optional
        ``catalog.allowed_hosts``; None: the catalog's own host.
    allow_insecure_http : bool
        ``catalog.allow_insecure_http``.
    """

    catalog_url: str
    allowed_hosts: tuple[str, ...] | None = None
    allow_insecure_http: bool = False

    def __init__(self, catalog_url: str, allowed_hosts: Iterable[str] | None = None,
                 allow_insecure_http: bool = False):
        object.__setattr__(self, "catalog_url", to_url(catalog_url))
        object.__setattr__(self, "allowed_hosts",
                           None if allowed_hosts is None else tuple(h.strip().lower() for h in allowed_hosts))
        object.__setattr__(self, "allow_insecure_http", bool(allow_insecure_http))

    # -- facts about the catalog -----------------------------------------------------------------
    @property
    def catalog_scheme(self) -> str:
        return urlparse(self.catalog_url).scheme.lower()

    @property
    def remote_catalog(self) -> bool:
        """The catalog is read over http(s) (else it is a file on disk)."""
        return self.catalog_scheme in REMOTE_SCHEMES

    def _allowed(self, host: str, port: int | None, origin: tuple[str, int | None] | None) -> bool:
        """Whether ``host:port`` is allowed; ``origin``: the host a redirect comes from."""
        if self.allowed_hosts is not None:
            entries = self.allowed_hosts
        elif self.remote_catalog:
            entries = (_host_port(self.catalog_url)[0],)
        elif origin is not None:
            entries = (origin[0],)
        else:
            return True  # a catalog on disk names whatever host the operator wrote in it
        for e in entries:
            name, sep, p = e.rpartition(":") if e.count(":") == 1 else ("", "", "")
            if sep and p.isdigit():
                if host == name and port == int(p):
                    return True
            elif host == e.strip("[]"):
                return True
        return False

    def _hosts_text(self) -> str:
        if self.allowed_hosts is not None:
            return f"catalog.allowed_hosts = {list(self.allowed_hosts)}"
        if self.remote_catalog:
            return f"the catalog's own host {_host_port(self.catalog_url)[0]!r} (catalog.allowed_hosts is not set)"
        return "the host of the download URL (catalog.allowed_hosts is not set)"

    # -- checks ------------------------------------------------------------------------------------
    def check_download(self, url: str | None, *, dataset: str, what: str = "download URL") -> None:
        """Refuse a download URL (or catalog page) the catalog may not name.

        Raises
        ------
        DownloadError
            Local file under an online catalog, an unsupported scheme, a scheme downgrade or a
            host that is not allowed (permanent).
        """
        if not url:
            return
        absolute = to_url(url) if not self.remote_catalog else url
        scheme = urlparse(absolute).scheme.lower()
        if self.remote_catalog and scheme not in REMOTE_SCHEMES:
            raise dataset_error(
                DownloadError, dataset,
                f"the catalog {self.catalog_url} is read over {self.catalog_scheme}, but its {what} "
                f"{url} names {'a local file' if scheme in ('file', '') else f'the scheme {scheme!r}'}; "
                f"an online catalog never makes the pipeline read files of this machine (nothing was read)",
                "the publisher must give an http(s) dcat:downloadURL; only a catalog on disk "
                "(catalog.url a local path) may name local files")
        if scheme not in REMOTE_SCHEMES + ("file",):
            raise dataset_error(DownloadError, dataset,
                                f"the {what} {url} has the scheme {scheme!r}, which is not supported",
                                "use an http(s) URL (or, in a catalog on disk, a file path)")
        if scheme == "file":
            return
        if self.catalog_scheme == "https" and scheme == "http" and not self.allow_insecure_http:
            raise dataset_error(
                DownloadError, dataset,
                f"the catalog is read over https, but its {what} {url} is plain http (a scheme "
                f"downgrade: the file could be altered on the way); nothing was downloaded",
                "the publisher should give an https URL; if the host serves http only and you accept "
                "that, set catalog.allow_insecure_http: true")
        host, port = _host_port(url)
        if not self._allowed(host, port, None):
            shown = _describe_host(host, port, scheme)
            raise dataset_error(
                DownloadError, dataset,
                f"the {what} {url} is on the host {shown!r}, which is not allowed ({self._hosts_text()}); "
                f"nothing was downloaded",
                f"if you trust that host, add '{shown}' to catalog.allowed_hosts in the deployment file; "
                f"otherwise ask the publisher to correct the URL")

    def check_redirect(self, from_url: str, to_url_: str, *, dataset: str) -> None:
        """Refuse a redirect the policy does not allow (other scheme, downgrade, foreign host).

        Raises
        ------
        DownloadError
            Permanent; names both URLs and the fix.
        """
        src_scheme = urlparse(from_url).scheme.lower()
        scheme = urlparse(to_url_).scheme.lower()
        if scheme not in REMOTE_SCHEMES:
            raise dataset_error(
                DownloadError, dataset,
                f"{from_url} redirects to {to_url_}, which is not an http(s) URL; the redirect was "
                f"not followed", "ask the publisher to correct the redirect or the download URL")
        if src_scheme == "https" and scheme == "http" and not self.allow_insecure_http:
            raise dataset_error(
                DownloadError, dataset,
                f"{from_url} redirects from https to plain http ({to_url_}): a scheme downgrade, "
                f"refused; nothing was downloaded",
                "ask the publisher to redirect to https; if you accept plain http, set "
                "catalog.allow_insecure_http: true")
        host, port = _host_port(to_url_)
        origin = _host_port(from_url)
        if host == origin[0]:
            return
        if not self._allowed(host, port, origin):
            shown = _describe_host(host, port, scheme)
            raise dataset_error(
                DownloadError, dataset,
                f"{from_url} redirects to another host, {shown!r} ({to_url_}), which is not allowed "
                f"({self._hosts_text()}); the redirect was not followed and nothing was downloaded",
                f"if you trust that host, add '{shown}' to catalog.allowed_hosts in the deployment file")
