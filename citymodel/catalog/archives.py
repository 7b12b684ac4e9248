"""Safe zip archives (downloaded distributions): checked before anything is kept, extracted per version.

A zip from a catalog is untrusted. :func:`check_zip` reads the central directory only and refuses
a member that is an absolute path, has a ``..`` segment or resolves outside the target folder, is
a symbolic link, a device, a FIFO or a socket, is encrypted or appears twice; and an archive with
more members, more uncompressed bytes or a higher compression ratio than :class:`ZipLimits` allow
(a zip bomb). Only then :func:`extract_zip` writes the members, each to a temporary name renamed
when complete, never more bytes than the checked sizes.

A downloaded zip is extracted into a fresh folder per version (:func:`extraction_dir`: the zip's
name and the first 16 hex digits of its SHA-256), built under a temporary name and renamed when
complete (:func:`unpack_version`); :func:`prune_extractions` removes the folders of other versions
only after that. :func:`zip_verifier` checks and extracts the temporary file of a download before
the download is renamed into place and recorded, so an unsafe archive leaves no trace.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import DownloadError, dataset_error
from ..fileio import atomic_output

MIB = 1 << 20


@dataclass(frozen=True)
class ZipLimits:
    """Limits of an archive (deployment keys ``catalog.zip_max_members``, ``zip_max_total_bytes``,
    ``zip_max_ratio``). The ratio is checked for the whole archive and for each member of at least
    ``ratio_floor_bytes`` uncompressed (a tiny member compresses at any ratio)."""

    max_members: int = 10_000
    max_total_bytes: int = 20 << 30
    max_ratio: float = 200.0
    ratio_floor_bytes: int = MIB


_UNSAFE_FIX = "the archive is unsafe: do not use it; ask the publisher for a clean archive"
_BOMB_FIX = ("if the archive is genuine, raise catalog.zip_max_members / zip_max_total_bytes / "
             "zip_max_ratio in the deployment file; otherwise ask the publisher for a clean archive")


def _open(archive: Path, label: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise dataset_error(DownloadError, label, f"{archive.name} is not a readable zip archive ({exc})",
                            "download it again; if it stays broken, the published file is corrupt") from exc


def _member_problem(info: zipfile.ZipInfo, target: Path, root: Path) -> tuple[str | None, Path | None]:
    member = info.filename
    mode = info.external_attr >> 16
    parts = re.split(r"[\\/]+", member)
    if info.create_system == 3 and mode:  # Unix attributes: the file type is meaningful
        if stat.S_ISLNK(mode):
            return "is a symbolic link", None
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            return "is a device file", None
        if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
            return "is a FIFO or socket", None
    elif stat.S_ISLNK(mode):
        return "is a symbolic link", None
    if member.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", member):
        return "has an absolute path", None
    if ".." in parts:
        return "has a '..' path segment", None
    if "\x00" in member:
        return "has a NUL byte in its name", None
    dest = (target / member.replace("\\", "/")).resolve()
    if dest != root and root not in dest.parents:
        return "resolves outside the target folder", None
    if info.flag_bits & 0x1:
        return "is encrypted (cannot be read)", None
    return None, dest


def check_zip(path: str | os.PathLike, target_dir: str | os.PathLike | None = None, *,
              dataset: str | None = None, limits: ZipLimits | None = None,
              name: str | None = None) -> list[tuple[zipfile.ZipInfo, Path]]:
    """Check every member of a zip before anything is extracted; returns ``(member, destination)``.

    Parameters
    ----------
    path
        The archive.
    target_dir
        Where it would be extracted (default: a folder beside it); members must stay inside.
    dataset
        Named in errors (default: the archive's name).
    limits
        Member count, total uncompressed size, compression ratio (default :class:`ZipLimits`).
    name
        The archive's name in messages (a download's temporary file has another).

    Raises
    ------
    DownloadError
        Not a zip, an unsafe member (names archive and member, ``record`` = the member) or limits
        exceeded (permanent: retrying gives the same archive).
    """
    archive = Path(path)
    shown = name or archive.name
    label = dataset or shown
    limits = limits or ZipLimits()
    target = Path(target_dir) if target_dir is not None else archive.with_name(archive.name + ".d")
    root = target.resolve()
    with _open(archive, label) as zf:
        infos = zf.infolist()
    if len(infos) > limits.max_members:
        raise dataset_error(DownloadError, label,
                            f"archive {shown} has {len(infos)} members, more than catalog.zip_max_members "
                            f"= {limits.max_members}; nothing was extracted", _BOMB_FIX)
    plan: list[tuple[zipfile.ZipInfo, Path]] = []
    seen: set[str] = set()
    total = packed = 0
    for info in infos:
        problem, dest = _member_problem(info, target, root)
        if problem is None:
            key = str(dest)
            if key in seen:
                problem = "appears twice in the archive"
            seen.add(key)
        if problem is not None:
            raise dataset_error(DownloadError, label,
                                f"archive {shown}: member {info.filename!r} {problem} and would not "
                                f"stay a plain file inside {target}; nothing was extracted",
                                _UNSAFE_FIX, record=info.filename)
        if not info.is_dir():
            total += info.file_size
            packed += info.compress_size
            if (info.file_size >= limits.ratio_floor_bytes
                    and info.file_size > limits.max_ratio * max(info.compress_size, 1)):
                raise dataset_error(
                    DownloadError, label,
                    f"archive {shown}: member {info.filename!r} expands {info.compress_size} bytes to "
                    f"{info.file_size} (ratio {info.file_size / max(info.compress_size, 1):.0f}, more "
                    f"than catalog.zip_max_ratio = {limits.max_ratio:g}): a zip bomb?; nothing was "
                    f"extracted", _BOMB_FIX, record=info.filename)
        plan.append((info, dest))  # type: ignore[arg-type]
    if total > limits.max_total_bytes:
        raise dataset_error(DownloadError, label,
                            f"archive {shown} expands to {total} bytes, more than "
                            f"catalog.zip_max_total_bytes = {limits.max_total_bytes}; nothing was extracted",
                            _BOMB_FIX)
    if total >= limits.ratio_floor_bytes and total > limits.max_ratio * max(packed, 1):
        raise dataset_error(DownloadError, label,
                            f"archive {shown} expands {packed} compressed bytes to {total} (ratio "
                            f"{total / max(packed, 1):.0f}, more than catalog.zip_max_ratio = "
                            f"{limits.max_ratio:g}): a zip bomb?; nothing was extracted", _BOMB_FIX)
    return plan


def extract_zip(path: str | os.PathLike, target_dir: str | os.PathLike, *,
                dataset: str | None = None, limits: ZipLimits | None = None,
                name: str | None = None) -> list[Path]:
    """Extract a zip archive safely into ``target_dir``; returns the extracted files.

    Every member is checked first (:func:`check_zip`); then each file is written to a temporary
    name and renamed, so no half-written member is left, and no member writes more bytes than
    the archive declares (zipfile stops there and checks the CRC).

    Raises
    ------
    DownloadError
        Not a zip, a corrupt member (CRC), an unsafe member or exceeded limits.
    """
    archive = Path(path)
    target = Path(target_dir)
    shown = name or archive.name
    label = dataset or shown
    plan = check_zip(archive, target, dataset=dataset, limits=limits, name=shown)
    target.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with _open(archive, label) as zf:
        for info, dest in plan:
            if info.is_dir():
                dest.mkdir(parents=True, exist_ok=True)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                with atomic_output(dest) as tmp, open(tmp, "wb") as fout, zf.open(info) as fin:
                    shutil.copyfileobj(fin, fout, MIB)
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise dataset_error(DownloadError, label,
                                    f"archive {shown}: member {info.filename!r} cannot be "
                                    f"extracted ({exc})", "download the archive again",
                                    record=info.filename) from exc
            written.append(dest)
    return written


# ---------------------------------------------------------------------------------------------
# One folder per version of a downloaded zip

def extraction_dir(zip_path: str | os.PathLike, sha256: str) -> Path:
    """The folder of one version of a downloaded zip: ``<name>.<sha256[:16]>.d`` beside it."""
    p = Path(zip_path)
    return p.with_name(f"{p.name}.{sha256[:16]}.d")


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def unpack_version(archive: str | os.PathLike, zip_path: str | os.PathLike, sha256: str, *,
                   dataset: str, limits: ZipLimits | None = None) -> list[Path]:
    """Extract ``archive`` (the zip, or a download's temporary file) into the version folder of
    ``zip_path`` (:func:`extraction_dir`); returns its files.

    A complete folder of this version is reused as it is; otherwise the members are extracted into
    a temporary folder beside it, renamed into place when all are written. Nothing of a failed
    extraction is left.
    """
    dest = extraction_dir(zip_path, sha256)
    if dest.is_dir():
        return _files(dest)
    work = dest.with_name(f".{dest.name}.{os.getpid()}.partial")
    shutil.rmtree(work, ignore_errors=True)
    try:
        extract_zip(archive, work, dataset=dataset, limits=limits, name=Path(zip_path).name)
        os.rename(work, dest)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        if not dest.is_dir():
            raise
        # another process finished the same version first: use it
    return _files(dest)


def prune_extractions(zip_path: str | os.PathLike, keep: Path | None = None) -> list[Path]:
    """Remove the extraction folders of other versions of ``zip_path`` (and of the older layout
    ``<name>.d``); ``keep`` stays. Returns what was removed."""
    p = Path(zip_path)
    removed = []
    if not p.parent.is_dir():
        return removed
    pattern = re.compile(re.escape(p.name) + r"(\.[0-9a-f]{16})?\.d$")
    for child in p.parent.iterdir():
        if child.is_dir() and pattern.fullmatch(child.name) and (keep is None or child != keep):
            shutil.rmtree(child, ignore_errors=True)
            removed.append(child)
    return removed


def zip_verifier(*, dataset: str, limits: ZipLimits | None = None
                 ) -> Callable[[Path, Path, str], None]:
    """A ``verify`` hook for :func:`~citymodel.catalog.downloads.download`: checks the downloaded
    temporary file and extracts it into the version folder of the final zip before the download is
    renamed into place and recorded (an unsafe or broken archive leaves nothing behind)."""

    def verify(tmp: Path, final: Path, sha256: str) -> None:
        unpack_version(tmp, final, sha256, dataset=dataset, limits=limits)

    return verify
