"""Safe extraction of zip archives (downloaded distributions)."""

from __future__ import annotations

import os
import re
import shutil
import stat
import zipfile
from pathlib import Path

from ..errors import DownloadError, dataset_error
from ..fileio import atomic_output


def extract_zip(path: str | os.PathLike, target_dir: str | os.PathLike, *,
                dataset: str | None = None) -> list[Path]:
    """Extract a zip archive safely into ``target_dir``; returns the extracted files.

    Every member is checked before anything is written: absolute paths, drive letters, ``..``
    segments, paths resolving outside ``target_dir`` and symbolic links are refused. Each file is
    written to a temporary name and renamed, so no half-written member is left.

    Raises
    ------
    DownloadError
        Not a zip, a corrupt member (CRC), or an unsafe member (names archive and member).
    """
    archive = Path(path)
    target = Path(target_dir)
    label = dataset or archive.name
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise dataset_error(DownloadError, label, f"{archive} is not a readable zip archive ({exc})",
                            "download it again; if it stays broken, the published file is corrupt") from exc
    with zf:
        target.mkdir(parents=True, exist_ok=True)
        root = target.resolve()
        plan: list[tuple[zipfile.ZipInfo, Path]] = []
        for info in zf.infolist():
            member = info.filename
            mode = info.external_attr >> 16
            problem = None
            parts = re.split(r"[\\/]+", member)
            if stat.S_ISLNK(mode):
                problem = "is a symbolic link"
            elif member.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", member):
                problem = "has an absolute path"
            elif ".." in parts:
                problem = "has a '..' path segment"
            else:
                dest = (target / member.replace("\\", "/")).resolve()
                if dest != root and root not in dest.parents:
                    problem = "resolves outside the target folder"
            if problem:
                raise dataset_error(DownloadError, label,
                                    f"archive {archive.name}: member {member!r} {problem} and would "
                                    f"escape {target}; nothing was extracted",
                                    "the archive is unsafe: do not use it; ask the publisher for a "
                                    "clean archive", record=member)
            plan.append((info, dest))
        written: list[Path] = []
        for info, dest in plan:
            if info.is_dir():
                dest.mkdir(parents=True, exist_ok=True)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                with atomic_output(dest) as tmp, open(tmp, "wb") as fout, zf.open(info) as fin:
                    shutil.copyfileobj(fin, fout, 1 << 20)
            except (zipfile.BadZipFile, OSError) as exc:
                raise dataset_error(DownloadError, label,
                                    f"archive {archive.name}: member {info.filename!r} cannot be "
                                    f"extracted ({exc})", "download the archive again",
                                    record=info.filename) from exc
            written.append(dest)
    return written
