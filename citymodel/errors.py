"""The project's exception hierarchy.

Every error names the dataset (role or identifier), the record where there is one, and the fix.
"""

from __future__ import annotations


class CityModelError(Exception):
    """Base class of all errors raised by the core library.

    ``transient`` is False for every error unless it was raised by :func:`transient_error`: a
    failure that may go away by itself (see :func:`is_transient`).
    """

    transient: bool = False


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


def is_transient(exc: BaseException) -> bool:
    """Whether retrying later may help: only errors marked by :func:`transient_error`.

    Those are download failures that may go away by themselves (timeouts, connection errors, 5xx
    answers, truncated bodies, a transfer slower than the minimum rate), after the fetcher's own
    retries. Everything else the project raises is permanent: a 404, an unsafe archive, a scheme or
    host the URL policy refuses, a checksum mismatch, a parse or schema error, a limit exceeded, a
    used-up download deadline. Retrying those repeats the same failure (or, worse, hides it).
    """
    return bool(getattr(exc, "transient", False))


def transient_error(exc: CityModelError) -> CityModelError:
    """Mark ``exc`` as transient (see :func:`is_transient`) and return it."""
    exc.transient = True
    return exc


def dataset_error(cls: type[CityModelError], dataset: str, problem: str, fix: str,
                  record: str | None = None) -> CityModelError:
    """Build an error message of the project's standard form.

    ``dataset 'trees': record 'B-17': <problem>. Fix: <fix>``
    """
    where = f"dataset '{dataset}'"
    if record is not None:
        where += f", record '{record}'"
    return cls(f"{where}: {problem}. Fix: {fix}")
