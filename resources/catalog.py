"""The open data catalog as a Dagster resource: a thin wrapper around :mod:`citymodel.catalog`.

The live (HTTP) and offline (local file) behaviour is a strategy of the core picked from the URL
scheme (``HttpFetcher`` / ``FileFetcher``), so the same resource serves the city's piveau platform
and the bundled sample city's catalog file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from dagster import ConfigurableResource
from pydantic import Field, PrivateAttr

from citymodel.catalog import (
    Catalog,
    Dataset,
    Distribution,
    DownloadResult,
    download,
    fetcher_for,
    fingerprint,
    load_catalog,
    local_name,
    prune_downloads,
    select_distributions,
)
from citymodel.catalog.policy import UrlPolicy
from citymodel.catalog.transfer import TransferLimits
from citymodel.errors import CatalogError

if TYPE_CHECKING:
    from citymodel.config import Settings


def _folder_name(identifier: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", identifier).strip("._") or "dataset"


class CatalogResource(ConfigurableResource):
    """DCAT-AP catalog (http(s) URL or local path) and verified downloads of its distributions.

    Downloads go to ``download_dir/<dataset id>/<file name>``; the download record of each file
    (ETag, Last-Modified, catalog modified date and checksum) lives beside it, so a repeated run
    transfers nothing for unchanged files. Every download URL, catalog page and redirect is checked
    by the URL policy (``allowed_hosts``, ``allow_insecure_http``: :class:`UrlPolicy`), and every
    transfer is bounded by ``download_deadline_s`` and ``min_rate_bytes_s``.
    """

    url: str = Field(description="DCAT-AP catalog: http(s) URL or local path of a JSON-LD file")
    timeout_s: float = Field(30.0, description="timeout of one HTTP request, seconds")
    retries: int = Field(3, description="retries on timeouts, connection errors, 5xx, truncation")
    backoff_s: float = Field(1.0, description="first backoff in seconds; doubles on every retry")
    download_dir: str = Field("outputs/raw", description="folder that receives downloads")
    allowed_hosts: list[str] | None = Field(None, description="hosts download URLs and redirects may "
                                            "name (None: the catalog's own host)")
    allow_insecure_http: bool = Field(False, description="allow http downloads under an https catalog")
    download_deadline_s: float = Field(3600.0, description="total time of one download or catalog read")
    min_rate_bytes_s: float = Field(10_000.0, description="slower transfers (over timeout_s) are cut off")
    max_catalog_bytes: int = Field(256 << 20, description="largest catalog document read")

    _catalog: Catalog | None = PrivateAttr(default=None)

    @classmethod
    def from_settings(cls, settings: Settings,
                      download_dir: str | Path | None = None) -> CatalogResource:
        """Build from ``citymodel.config.Settings`` (``catalog`` section, ``raw_dir``)."""
        c = settings.catalog
        return cls(url=c.url, timeout_s=c.timeout_s, retries=c.retries, backoff_s=c.backoff_s,
                   download_dir=str(download_dir if download_dir is not None else settings.raw_dir),
                   allowed_hosts=c.allowed_hosts, allow_insecure_http=c.allow_insecure_http,
                   download_deadline_s=c.download_deadline_s, min_rate_bytes_s=c.min_rate_bytes_s,
                   max_catalog_bytes=c.max_catalog_bytes)

    @property
    def policy(self) -> UrlPolicy:
        """Which URLs this catalog may make the pipeline fetch."""
        return UrlPolicy(self.url, self.allowed_hosts, self.allow_insecure_http)

    @property
    def limits(self) -> TransferLimits:
        return TransferLimits(deadline_s=self.download_deadline_s, min_rate_bytes_s=self.min_rate_bytes_s,
                              window_s=self.timeout_s)

    def _fetcher(self, url: str):
        return fetcher_for(url, timeout_s=self.timeout_s, retries=self.retries,
                           backoff_s=self.backoff_s, policy=self.policy, limits=self.limits,
                           max_catalog_bytes=self.max_catalog_bytes)

    def load(self, refresh: bool = False) -> Catalog:
        """The parsed catalog (read once per resource instance unless ``refresh``)."""
        if self._catalog is None or refresh:
            self._catalog = load_catalog(self.url, fetcher=self._fetcher(self.url), policy=self.policy,
                                         limits=self.limits)
        return self._catalog

    def dataset(self, identifier: str) -> Dataset:
        """The dataset with this ``dct:identifier``; CatalogError lists the known ones."""
        return self.load().dataset(identifier)

    def fingerprint(self, identifier: str) -> str:
        """Cheap change marker of a dataset's distributions (nothing is downloaded)."""
        return fingerprint(self.load().dataset(identifier, require_distributions=False))

    def _pick(self, ds: Dataset, distribution: int | str | Distribution | None,
              role: str | None) -> Distribution:
        if isinstance(distribution, Distribution):
            return distribution
        candidates = select_distributions(ds, role)
        if distribution is None:
            return candidates[0]
        if isinstance(distribution, int):
            if not 0 <= distribution < len(ds.distributions):
                raise CatalogError(
                    f"dataset '{ds.identifier}': distribution index {distribution} is out of range "
                    f"(it has {len(ds.distributions)}). Fix: use 0..{len(ds.distributions) - 1}")
            return ds.distributions[distribution]
        for d in ds.distributions:
            if distribution in (d.title, d.url, local_name(d)):
                return d
        names = ", ".join(repr(d.title or local_name(d)) for d in ds.distributions)
        raise CatalogError(f"dataset '{ds.identifier}': no distribution titled or named "
                           f"{distribution!r}; it has {names}. Fix: use one of these titles")

    def folder(self, dataset_id: str) -> Path:
        """The download folder of a dataset."""
        return Path(self.download_dir) / _folder_name(self.dataset(dataset_id).identifier)

    def download(self, dataset_id: str, distribution: int | str | Distribution | None = None,
                 role: str | None = None, *, max_bytes: int | None = None,
                 verify=None) -> DownloadResult:
        """Download one distribution of a dataset (default: the first in a format ``role`` reads).

        ``distribution`` is an index into ``dataset.distributions``, a title, URL or file name,
        or a :class:`Distribution`. ``max_bytes`` and ``verify`` as in
        :func:`citymodel.catalog.download`; the URL policy is always applied.
        """
        ds = self.dataset(dataset_id)
        dist = self._pick(ds, distribution, role)
        target = Path(self.download_dir) / _folder_name(ds.identifier)
        self.policy.check_download(dist.url, dataset=ds.identifier)
        return download(dist, target, dataset=ds.identifier, policy=self.policy,
                        fetcher=self._fetcher(dist.url or self.url), max_bytes=max_bytes,
                        verify=verify)

    def download_all(self, dataset_id: str, role: str | None = None) -> list[DownloadResult]:
        """Download every distribution of a dataset that ``role`` can read (e.g. LiDAR tiles)."""
        ds = self.dataset(dataset_id)
        target = Path(self.download_dir) / _folder_name(ds.identifier)
        dists = select_distributions(ds, role)
        results = []
        for d, n in zip(dists, _file_names(dists)):
            self.policy.check_download(d.url, dataset=ds.identifier)
            results.append(download(d, target, dataset=ds.identifier, policy=self.policy,
                                    filename=n, fetcher=self._fetcher(d.url or self.url)))
        return results

    def prune(self, dataset_id: str, role: str | None = None) -> list[Path]:
        """Remove from the dataset's download folder the files (records, extraction folders) of
        distributions the current catalog no longer lists for ``role``."""
        ds = self.dataset(dataset_id)
        keep = set(_file_names(select_distributions(ds, role)))
        return prune_downloads(Path(self.download_dir) / _folder_name(ds.identifier), keep)


def _file_names(dists) -> list[str]:
    """The local file name of each distribution in a download folder: its own name, or
    ``NNNN_name`` (its position) where two distributions of one dataset share a name."""
    names = [local_name(d) for d in dists]
    dupes = {n for n in names if names.count(n) > 1}
    return [f"{i:04d}_{n}" if n in dupes else n for i, n in enumerate(names)]
