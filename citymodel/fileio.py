"""Small file helpers shared by every writer: atomic writes, checksums, JSON-safe values.

Every file the pipeline writes goes through :func:`atomic_output` (or its shorthands
:func:`atomic_write_text` / :func:`atomic_write_bytes`): the content is written to a temporary file
beside the target, flushed to disk, given the permissions of a normally created file (``0666`` minus
the process umask, so ``0644`` under the usual umask: a web server running as another user can
serve what is published) and renamed over the target. A failure leaves the target unchanged and no
temporary file behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import numpy as np


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """Mode of a newly created file under the current umask (``0o644`` with umask 022)."""
    return 0o666 & ~_umask()


def dir_mode() -> int:
    """Mode of a newly created folder under the current umask (``0o755`` with umask 022)."""
    return 0o777 & ~_umask()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, *, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success make it ``path`` atomically.

    For writers that want a file name (GDAL/rasterio, pyarrow, lxml, zipfile, ...)::

        with atomic_output(target) as tmp:
            frame.to_parquet(tmp)

    ``suffix`` is appended to the temporary name (some writers choose the format by extension).
    The temporary file is flushed to disk and given :func:`file_mode` before the rename. On an
    exception the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if tmp.is_file():
            _fsync(tmp)
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a new temporary folder beside ``path``; on success rename it to ``path`` atomically.

    For a set of files that must appear together or not at all (write them into the yielded
    folder, e.g. with :func:`atomic_write_bytes`). ``path`` must not exist yet: when it does (or
    appears meanwhile, e.g. another process took the name) :class:`FileExistsError` is raised. On
    any exception the temporary folder and its content are removed and ``path`` is untouched.
    """
    import shutil

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, dir_mode())
        if path.exists():
            raise FileExistsError(f"{path} exists")
        try:
            os.rename(tmp, path)
        except OSError as exc:
            if path.exists():
                raise FileExistsError(f"{path} exists") from exc
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _atomic_write(path: str | os.PathLike, mode: str, write) -> Path:
    """Call ``write(file)`` on a temporary file beside ``path`` (see :func:`atomic_output`)."""
    kw = {"encoding": "utf-8", "newline": "\n"} if "b" not in mode else {}
    with atomic_output(path) as tmp:
        with open(tmp, mode, **kw) as f:
            write(f)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, chunks: str | Iterable[str]) -> Path:
    """Write text atomically (see :func:`_atomic_write`); ``chunks`` may be a generator, and a
    failure inside it leaves the old file in place."""
    def write(f):
        for c in ([chunks] if isinstance(chunks, str) else chunks):
            f.write(c)
    return _atomic_write(path, "w", write)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Binary counterpart of :func:`atomic_write_text`."""
    return _atomic_write(path, "wb", lambda f: f.write(data))


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB blocks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    return file_digest(path, "sha256")


def json_safe(v: Any) -> Any:
    """A JSON-serialisable copy: numpy scalars and arrays to Python, NaN/inf/NA to None,
    mappings and sequences recursed, dates to ISO strings, anything else to ``str``."""
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return f if math.isfinite(f) else None
    if isinstance(v, Mapping):
        return {str(k): json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, set, np.ndarray)):
        return [json_safe(x) for x in (v.tolist() if isinstance(v, np.ndarray) else v)]
    if hasattr(v, "isoformat"):
        try:
            import pandas as pd

            if v is pd.NaT:
                return None
        except ImportError:
            pass
        return v.isoformat()
    try:
        import pandas as pd

        if pd.isna(v):
            return None
    except (ImportError, TypeError, ValueError):
        pass
    return str(v)
