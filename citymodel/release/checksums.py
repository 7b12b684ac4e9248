"""``SHA256SUMS`` of a release: written in the text format of ``sha256sum -c``, and read back."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from ..errors import ReleaseError, dataset_error
from ..fileio import atomic_write_bytes
from .layout import SUMS_FILE


def read_sha256sums(path: str | os.PathLike) -> dict[str, str]:
    """``{relative path: sha256}`` from a ``SHA256SUMS`` file (``sha256sum`` text format)."""
    out = {}
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        m = re.match(r"^([0-9a-f]{64}) [ *](.+)$", line)
        if not m:
            raise dataset_error(ReleaseError, "release", f"{path}: line {n} is not '<sha256>  <path>'",
                                "regenerate SHA256SUMS", record=str(n))
        out[m.group(2)] = m.group(1)
    return out


def write_sha256sums(path: Path, hashes: Mapping[str, str]) -> Path:
    """``<sha256>  <path>`` per file, sorted by path (the format ``sha256sum -c`` reads)."""
    lines = "".join(f"{hashes[rel]}  {rel}\n" for rel in sorted(hashes) if rel != SUMS_FILE)
    return atomic_write_bytes(path, lines.encode("utf-8"))
