"""The layout of an output directory and of a release folder; where ``latest`` points.

Layout (relative to the output directory; promised to users, see DESIGN.md)::

    latest -> releases/<release-id>/      relative symlink, switched atomically by finalize()
    LATEST                                 text file holding <release-id> (mirror of the symlink)
    releases/<release-id>/
        index.html, catalog.jsonld, SHA256SUMS, release.json, quality/..., tiles/..., data/...
    releases/<stamp>.partial/              a release being built (or kept after a refusal/crash)

A finished release is a folder of ``releases/`` holding a ``release.json`` (its manifest).
Paths inside a release are relative POSIX paths, checked by :func:`check_release_path`.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path, PurePosixPath

from ..errors import ReleaseError, dataset_error

#: Files that finalize() writes itself (they hold timestamps and are not part of the digest).
CATALOG_FILE, INDEX_FILE, SUMS_FILE, MANIFEST_FILE = "catalog.jsonld", "index.html", "SHA256SUMS", "release.json"
RESERVED_FILES = (CATALOG_FILE, INDEX_FILE, SUMS_FILE, MANIFEST_FILE)
#: Where the tile index lives in a release; index.html draws it as a map picture.
TILE_INDEX_PATH = "data/tile_index.geojson"
QUALITY_REPORT_PATH = "quality/report.json"
LATEST_LINK, LATEST_FILE, RELEASES_DIR, LOCK_FILE = "latest", "LATEST", "releases", ".release.lock"
PARTIAL_SUFFIX, DELETING_SUFFIX = ".partial", ".deleting"
#: Identifiers of releases and datasets.
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def check_release_path(rel_path: str | os.PathLike, dataset: str | None, reserved_ok: bool = False) -> str:
    """The normalised release-relative POSIX path, or a ReleaseError naming the fix."""
    s = os.fspath(rel_path).replace(os.sep, "/") if os.sep != "/" else os.fspath(rel_path)
    label = dataset or "release"
    p = PurePosixPath(s)
    problem = None
    if not s or s.startswith("/") or re.match(r"^[A-Za-z]:", s):
        problem = "is empty or absolute"
    elif any(part in ("..", ".", "") for part in s.split("/")):
        problem = "has '.', '..' or empty segments"
    elif any(c in s for c in "\n\r\\\0"):
        problem = "contains a newline, backslash or NUL (not representable in SHA256SUMS)"
    elif not reserved_ok and s in RESERVED_FILES:
        problem = f"is one of the files finalize() writes itself ({', '.join(RESERVED_FILES)})"
    elif p.name.endswith(".tmp") or p.name.startswith(".latest"):
        problem = "uses a name reserved for temporary files"
    if problem:
        raise dataset_error(ReleaseError, label, f"release path {s!r} {problem}",
                            "give a relative path inside the release such as data/buildings.gpkg",
                            record=s)
    return p.as_posix()


def releases_dir(output_dir: Path) -> Path:
    """The ``releases/`` folder of an output directory."""
    return Path(output_dir) / RELEASES_DIR


def latest_release(output_dir: str | os.PathLike) -> Path | None:
    """The release folder ``latest`` points to (symlink first, else the ``LATEST`` file), or None."""
    out = Path(output_dir)
    link = out / LATEST_LINK
    if link.is_symlink():
        target = (out / os.readlink(link)).resolve()
        return target if target.is_dir() else None
    pointer = out / LATEST_FILE
    if pointer.is_file():
        rid = pointer.read_text(encoding="utf-8").strip()
        if rid and ID_PATTERN.match(rid):
            target = releases_dir(out) / rid
            return target if target.is_dir() else None
    return None


def list_releases(output_dir: str | os.PathLike) -> list[str]:
    """Ids of the finished releases (folders with a ``release.json``), oldest first."""
    rel = releases_dir(Path(output_dir))
    if not rel.is_dir():
        return []
    items = []
    for d in rel.iterdir():
        if not d.is_dir() or d.is_symlink() or d.name.endswith((PARTIAL_SUFFIX, DELETING_SUFFIX)):
            continue
        manifest = d / MANIFEST_FILE
        if not manifest.is_file():
            continue
        try:
            created = json.loads(manifest.read_text(encoding="utf-8")).get("created", "")
        except (OSError, ValueError):
            created = ""
        items.append((str(created), d.name))
    return [name for _, name in sorted(items)]


def read_manifest(release: Path) -> dict:
    """The ``release.json`` of a release folder, or ``{}`` when it is missing or unreadable."""
    try:
        return json.loads((release / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def list_release_files(root: Path) -> list[str]:
    """All files below ``root`` as sorted POSIX relative paths; symlinks are refused."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        for name in list(dirnames) + filenames:
            p = d / name
            if p.is_symlink():
                rel = p.relative_to(root).as_posix()
                raise dataset_error(ReleaseError, "release", f"{rel} is a symbolic link",
                                    "copy the file into the release instead of linking it", record=rel)
        for name in filenames:
            rel = (d / name).relative_to(root).as_posix()
            if rel in RESERVED_FILES:
                continue
            check_release_path(rel, None)
            out.append(rel)
    return sorted(out)
