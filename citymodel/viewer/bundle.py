"""The files of the viewer in a release: the app (plain ES modules, ``viewer/app`` of the repository)
and the parts of CesiumJS's build it needs (``viewer/node_modules/cesium/Build/Cesium``, installed
from the npm registry by ``npm ci --prefix viewer --ignore-scripts``, pinned in
``viewer/package-lock.json``).

From Cesium's build only the ES module (``index.js``), its workers, assets, third-party decoders and
widget styles are published, with Cesium's licence; the IIFE and CommonJS builds (``Cesium.js``,
``index.cjs``, about 10 MB) are not needed by ES modules and are left out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..config import PROJECT_ROOT
from ..errors import ConfigError, dataset_error

__all__ = ["ViewerSource", "viewer_source", "viewer_files", "install_viewer", "viewer_code_version", "CESIUM_PARTS"]

DATASET = "viewer"
#: Parts of ``Build/Cesium`` published (files and folders).
CESIUM_PARTS = ("index.js", "Assets", "Workers", "ThirdParty", "Widgets")
#: Files of the cesium package published beside them (licence).
CESIUM_LICENCE_FILES = ("LICENSE.md", "ThirdParty.json")


@dataclass(frozen=True)
class ViewerSource:
    """Where the viewer's files are: the app folder and the installed cesium package."""

    app_dir: Path
    cesium_package: Path

    @property
    def cesium_build(self) -> Path:
        return self.cesium_package / "Build" / "Cesium"

    @property
    def cesium_version(self) -> str:
        try:
            return json.loads((self.cesium_package / "package.json").read_text(encoding="utf-8"))["version"]
        except (OSError, ValueError, KeyError):
            return ""

    def missing(self) -> str | None:
        """Why the viewer cannot be published (None when it can)."""
        if not (self.app_dir / "index.html").is_file():
            return f"the viewer app is missing ({self.app_dir / 'index.html'})"
        if not (self.cesium_build / "index.js").is_file():
            return (f"CesiumJS is not installed ({self.cesium_build / 'index.js'} is missing): run "
                    "'npm ci --prefix viewer --ignore-scripts' (make install does it where npm exists)")
        return None


def viewer_source(root: str | Path | None = None) -> ViewerSource:
    """The viewer of the repository (``<root>/viewer``; default: the project root)."""
    base = Path(root) if root is not None else PROJECT_ROOT / "viewer"
    return ViewerSource(app_dir=base / "app", cesium_package=base / "node_modules" / "cesium")


def viewer_files(src: ViewerSource) -> list[tuple[Path, str]]:
    """``(source file, path in the viewer folder)`` of every file to publish, sorted.

    The app's files keep their paths (``index.html``, ``js/main.js``, ...); Cesium's go to
    ``cesium/`` (``cesium/index.js``, ``cesium/Workers/...``), its licence files too.

    Raises
    ------
    ConfigError
        The app or CesiumJS is missing (the message says how to install it).
    """
    why = src.missing()
    if why:
        raise dataset_error(ConfigError, DATASET, why, "install the viewer's npm package")
    out: list[tuple[Path, str]] = []
    for p in sorted(src.app_dir.rglob("*")):
        if p.is_file() and not p.name.startswith("."):
            rel = p.relative_to(src.app_dir).as_posix()
            if rel == "config.json":
                continue  # written per release
            out.append((p, rel))
    build = src.cesium_build
    for part in CESIUM_PARTS:
        q = build / part
        if q.is_file():
            out.append((q, f"cesium/{part}"))
        elif q.is_dir():
            out += [(f, "cesium/" + f.relative_to(build).as_posix()) for f in sorted(q.rglob("*")) if f.is_file()]
    for name in CESIUM_LICENCE_FILES:
        q = src.cesium_package / name
        if q.is_file():
            out.append((q, f"cesium/{name}"))
    return out


def install_viewer(target: str | Path, src: ViewerSource) -> list[str]:
    """Put the viewer's files into ``target`` (a release's ``viewer/`` folder); returns their paths.

    The app's own files are copied (an edit of the working copy must never change a published
    release); Cesium's files are hard-linked where the file system allows (``npm ci`` replaces them,
    it never edits them in place), so releases share them on disk.
    """
    import os
    import shutil

    target = Path(target)
    written = []
    for f, rel in viewer_files(src):
        dst = target / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.exists():
            dst.unlink()
        if rel.startswith("cesium/"):
            try:
                os.link(f, dst)
            except OSError:
                shutil.copyfile(f, dst)
        else:
            shutil.copyfile(f, dst)
        written.append(rel)
    return written


def viewer_code_version(src: ViewerSource | None = None) -> str:
    """A short digest of the viewer's app files and the pinned CesiumJS (``package-lock.json``): the
    release is rebuilt when the viewer changes."""
    import hashlib

    src = src or viewer_source()
    h = hashlib.sha256()
    files = sorted(p for p in src.app_dir.rglob("*") if p.is_file()) if src.app_dir.is_dir() else []
    lock = src.app_dir.parent / "package-lock.json"
    for p in files + ([lock] if lock.is_file() else []):
        h.update(p.relative_to(src.app_dir.parent).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:12]
