"""The project's exception hierarchy.

Every error names the dataset (role or identifier), the record where there is one, and the fix.
"""

from __future__ import annotations


class CityModelError(Exception):
    """Base class of all errors raised by the core library."""


class ConfigError(CityModelError):
    """The deployment configuration is missing, unreadable or inconsistent."""


class CatalogError(CityModelError):
    """The DCAT-AP catalog cannot be read or does not hold what the configuration asks for."""


class DownloadError(CityModelError):
    """A distribution could not be downloaded or failed verification (size, checksum, archive)."""


class SourceDataError(CityModelError):
    """A source file is corrupt, truncated, in an unknown format or has an unusable CRS."""


class CRSError(SourceDataError):
    """A source has no CRS (and none is configured) or a CRS that cannot be used."""


class GeometryError(CityModelError):
    """A geometry cannot be processed (invalid, empty, wrong type)."""


class ReleaseError(CityModelError):
    """A release cannot be built or published (failed blocking checks, write errors, bad paths)."""


def dataset_error(cls: type[CityModelError], dataset: str, problem: str, fix: str,
                  record: str | None = None) -> CityModelError:
    """Build an error message of the project's standard form.

    ``dataset 'trees': record 'B-17': <problem>. Fix: <fix>``
    """
    where = f"dataset '{dataset}'"
    if record is not None:
        where += f", record '{record}'"
    return cls(f"{where}: {problem}. Fix: {fix}")
