"""The DCAT-AP data model: :class:`Catalog`, :class:`Dataset`, :class:`Distribution`.

Plain dataclasses, filled by :mod:`.parse` and read by the rest of the pipeline;
:func:`fingerprint` identifies what a dataset's files are without downloading them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime

from ..errors import CatalogError, dataset_error


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


def isoformat_or_none(dt: datetime | None) -> str | None:
    """``dt`` as an ISO 8601 string (None stays None): how dates are hashed and recorded."""
    return dt.isoformat() if dt is not None else None


def fingerprint(dataset: Dataset) -> str:
    """A cheap hash of what identifies a dataset's files, without downloading anything.

    Each distribution contributes its URL, modification date, checksum and byte size; the
    order of distributions does not matter. A schedule compares fingerprints to see changes.
    """
    rows = sorted(
        json.dumps([d.url, isoformat_or_none(d.modified), d.checksum_algorithm, d.checksum_value,
                    d.byte_size])
        for d in dataset.distributions)
    return hashlib.sha256("\n".join(rows).encode("utf-8")).hexdigest()
