"""Small file helpers shared by every writer: atomic writes, checksums, JSON-safe values."""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np


def _atomic_write(path: str | os.PathLike, mode: str, write) -> Path:
    """Call ``write(file)`` on a temporary file beside ``path``, fsync, then rename it over ``path``.

    A failure leaves neither ``path`` changed nor a temporary file behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        kw = {"encoding": "utf-8", "newline": "\n"} if "b" not in mode else {}
        with os.fdopen(fd, mode, **kw) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


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
