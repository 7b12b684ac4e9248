"""Opening LAS/LAZ files so that a bad file fails loudly: the header, a whole-file read, and the
:class:`~citymodel.errors.SourceDataError` for a corrupt or truncated file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import laspy

from ..errors import SourceDataError, dataset_error
from .backend import LAZ_BACKEND

# errors that laspy / lazrs / numpy raise on corrupt or truncated input
READ_ERRORS: tuple[type[BaseException], ...] = (laspy.errors.LaspyException, RuntimeError, ValueError,
                                                 OSError, EOFError, IndexError, KeyError)


def open_las_header(path: Path, dataset: str) -> laspy.LasHeader:
    """The header of a LAS/LAZ file (no points decoded).

    Raises
    ------
    SourceDataError
        The file does not exist, or it is not a readable LAS/LAZ file (:func:`corrupt_file_error`).
    """
    if not path.is_file():
        raise dataset_error(SourceDataError, dataset, f"file '{path}' does not exist",
                            "re-run the download of the lidar source (raw stage)", record=str(path))
    try:
        with laspy.open(path, laz_backend=LAZ_BACKEND) as reader:
            return reader.header
    except READ_ERRORS as exc:
        raise corrupt_file_error(path, dataset, exc) from exc


def corrupt_file_error(path: Path, dataset: str, exc: BaseException) -> SourceDataError:
    """The error for a file that laspy/lazrs cannot read (``exc``, one of :data:`READ_ERRORS`):
    names ``dataset`` and the file and says to re-download it."""
    return dataset_error(SourceDataError, dataset,
                         f"'{path.name}' is not a readable LAS/LAZ file ({type(exc).__name__}: {exc})",
                         "the file is corrupt or truncated: delete it and re-download it from the catalog",
                         record=str(path))


def read_las_complete(path: str | os.PathLike, dataset: str, fix: str, record: str | None = None,
                      **read_kw: Any) -> laspy.LasData:
    """``laspy.read`` of a whole LAS/LAZ file that fails loudly.

    Raises :class:`SourceDataError` (naming ``dataset``, the file and ``fix``) when the file cannot
    be read or holds fewer points than its header says: an uncompressed LAS cut at a record
    boundary is otherwise read without complaint as a smaller file.
    """
    kw = {"laz_backend": LAZ_BACKEND, **read_kw}
    try:
        las = laspy.read(str(path), **kw)
    except Exception as exc:  # laspy/lazrs raise many kinds for broken files
        raise dataset_error(SourceDataError, dataset, f"cannot read {path}: {exc}", fix, record) from exc
    if len(las.points) != las.header.point_count:
        raise dataset_error(SourceDataError, dataset, f"{path} holds {len(las.points)} points but its header "
                            f"says {las.header.point_count}: the file is truncated", fix, record)
    return las
