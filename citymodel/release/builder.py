"""Build one release in a ``.partial`` folder and publish it atomically; prune old releases.

See the package docstring (:mod:`citymodel.release`) for the decisions users and operators rely on:
release ids, atomicity, refusal and crashes, the content digest, pruning.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any

from ..errors import CityModelError, ReleaseError, dataset_error
from ..fileio import atomic_output, atomic_write_bytes, dir_mode, file_mode, sha256_file
from .checks import evaluate_checks
from .checksums import write_sha256sums
from .contents import PublishPolicy, ReleaseContents
from .dcat import (DEFAULT_LICENSE, THEME_REGI, DatasetEntry, DistributionEntry, catalog_document,
                   check_spatial_wkt)
from .formats import SPECS, file_kind
from .index_page import render_index_page
from .layout import (CATALOG_FILE, DELETING_SUFFIX, ID_PATTERN, INDEX_FILE, LATEST_FILE, LATEST_LINK,
                     LOCK_FILE, MANIFEST_FILE, PARTIAL_SUFFIX, QUALITY_REPORT_PATH, RELEASES_DIR, SUMS_FILE,
                     check_release_path, latest_release, list_release_files, list_releases, read_manifest,
                     releases_dir)
from .provenance import code_version, iso_utc, parse_iso, tool_version, utc_now

try:  # POSIX advisory locks; on other systems the lock is a no-op (documented)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


@dataclass
class ReleaseInfo:
    """What :meth:`ReleaseBuilder.finalize` did.

    ``unchanged`` is True when the content equalled the current release: then no release was
    made and ``release_id``/``path`` are those of the current one. ``pointer`` is ``"symlink"``
    or ``"file"`` (``LATEST`` only). ``unregistered`` lists files that are in the release (and in
    ``SHA256SUMS``) but in no catalog distribution or registered folder.
    """

    release_id: str
    path: Path
    unchanged: bool  # True: nothing published, release_id/path are the current release
    content_digest: str
    created: datetime
    files: int = 0
    bytes: int = 0
    previous_id: str | None = None
    pruned: list[str] = field(default_factory=list)
    datasets: list[str] = field(default_factory=list)
    unregistered: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    pointer: str = "symlink"
    seconds: float = 0.0


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _link_or_copy(src: Path, dst: Path) -> None:
    """A hard link where the file system allows (no space needed), else a copy (mode from the umask)."""
    try:
        os.link(src, dst)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise
        shutil.copyfile(src, dst)


def _copy_tree(src: Path, dst: Path) -> None:
    """Copy the folder ``src`` to ``dst`` (which must not exist), files hard-linked where possible.

    Stops at the first error and raises it as it is (``shutil.copytree`` would gather an error
    per file into one ``shutil.Error`` line of many kilobytes when the disk is full).
    """
    dst.mkdir()
    for dirpath, dirnames, filenames in os.walk(src):
        here = Path(dirpath)
        target = dst / here.relative_to(src)
        for d in sorted(dirnames):
            (target / d).mkdir()
        for f in sorted(filenames):
            _link_or_copy(here / f, target / f)


def _mb(n: float) -> str:
    """Bytes as MB for messages: one decimal below 1,000 MB (never 0.0 for a positive amount)."""
    mb = n / 1e6
    if mb >= 1000:
        return f"{mb:,.0f} MB"
    return f"{max(mb, 0.1) if n > 0 else 0.0:.1f} MB"


def disk_full(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or an error it was raised from) says the disk or quota is full."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        text = str(exc)[:2000].lower()
        if "no space left on device" in text or "database or disk is full" in text or "disk quota exceeded" in text:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def folder_bytes(path: str | os.PathLike) -> int:
    """Total size of the files below ``path`` (0 when it does not exist)."""
    total = 0
    for dirpath, _, filenames in os.walk(path):
        for f in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total


def _normalise_modes(root: Path) -> None:
    """Every folder of a release ``0777 & ~umask`` and every file ``0666 & ~umask`` (0755/0644 under
    the usual umask 022), whatever the writer did: a web server running as another user must be
    able to serve every file."""
    fm, dm = file_mode(), dir_mode()
    for dirpath, dirnames, filenames in os.walk(root):
        for d in [dirpath] + [os.path.join(dirpath, n) for n in dirnames]:
            if (os.stat(d).st_mode & 0o7777) != dm:
                os.chmod(d, dm)
        for f in filenames:
            path = os.path.join(dirpath, f)
            if (os.lstat(path).st_mode & 0o7777) != fm:
                os.chmod(path, fm)


class ReleaseBuilder:
    """Build one release in a ``.partial`` folder and publish it atomically.

    Parameters
    ----------
    output_dir : path
        The output directory (holds ``latest``, ``LATEST`` and ``releases/``).
    keep : int
        Releases kept after pruning (the current one always among them).
    license : str
        Licence IRI of every dataset and distribution (default dl-de/by-2-0).
    publisher : str
        Name of the publishing body (``foaf:Agent``); also the attribution text of dl-de/by.
    title, description : str
        Title and description of the catalog.
    base_url : str, optional
        URL at which ``output_dir`` is served (e.g. ``https://daten.jena.de/3d/``). Distribution
        URLs become ``<base_url>releases/<id>/<path>``; without it they are relative to the
        catalog document (JSON-LD resolves them against its location).
    language : str
        Language of the given titles and descriptions (``de``).
    spatial_wkt : str, optional
        Default ``dct:spatial`` of the datasets, WKT in CRS84 (see :func:`extent_wkt_crs84`).
    keywords : sequence of str
        Keywords added to every dataset.
    crs, vertical_crs : str
        CRS of the data files (``dct:conformsTo`` of the datasets and the notes in index.html).
    geoid_model : str, optional
        Geoid model used for ellipsoidal heights of the 3D Tiles (e.g. ``EGM96``); recorded.
    political_geocoding_uri : str, optional
        ``dcatde:politicalGeocodingURI`` (e.g. the municipality key IRI of Jena).
    contributor_id : str, optional
        ``dcatde:contributorID`` IRI.
    version_notes : str, optional
        ``adms:versionNotes`` of every dataset (what changed).
    contact : str, optional
        Contact point (``mailto:`` address or web page URL), ``dcat:contactPoint`` of the catalog
        and of every dataset.
    facts : dict, optional
        Facts about the content (``place``, ``buildings``, ``trees``, ``tiles``, ``days``,
        ``scenarios``) from which datasets declared without a title get their German and English
        titles and descriptions (:mod:`citymodel.release.titles`).
    clock : callable, optional
        Returns the current UTC time (tests).
    lock_timeout_s : float
        How long ``begin`` waits for another builder on the same output directory.
    min_free_bytes : int
        Space that must remain free on the disk of ``releases/`` after the release is written
        (``publish.min_free_mb``); see :meth:`begin`.
    """

    def __init__(self, output_dir: str | os.PathLike, keep: int = 5, license: str = DEFAULT_LICENSE,
                 publisher: str = "Stadt Jena", title: str = "3D city model", *,
                 description: str = "", base_url: str | None = None, language: str = "de",
                 spatial_wkt: str | None = None, keywords: Iterable[str] = (),
                 crs: str = "EPSG:25832", vertical_crs: str | None = "EPSG:7837",
                 geoid_model: str | None = None, political_geocoding_uri: str | None = None,
                 contributor_id: str | None = None, publisher_uri: str | None = None,
                 version_notes: str | None = None, theme: str | None = THEME_REGI,
                 contact: str | None = None, facts: dict[str, Any] | None = None,
                 clock: Callable[[], datetime] | None = None, lock_timeout_s: float = 30.0,
                 min_free_bytes: int = 0):
        if int(keep) < 1:
            raise dataset_error(ReleaseError, "release", f"keep={keep} would delete the current release",
                                "set publish.keep_releases to 1 or more")
        self.output_dir = Path(output_dir)
        self.keep = int(keep)
        self.license = license
        self.publisher = publisher
        self.title = title
        self.description = description
        self.base_url = (base_url.rstrip("/") + "/") if base_url else None
        self.language = language
        self.spatial_wkt = spatial_wkt
        self.keywords = tuple(keywords)
        self.crs = crs
        self.vertical_crs = vertical_crs
        self.geoid_model = geoid_model
        self.political_geocoding_uri = political_geocoding_uri
        self.contributor_id = contributor_id
        self.publisher_uri = publisher_uri
        self.version_notes = version_notes
        self.theme = theme
        self.contact = contact
        #: facts about the content (place, counts, days, scenarios) for the datasets' titles and
        #: descriptions (:func:`citymodel.release.titles.dataset_texts`); callers may add to it
        self.facts: dict[str, Any] = dict(facts or {})
        self.clock = clock or utc_now
        self.lock_timeout_s = float(lock_timeout_s)
        self.min_free_bytes = int(min_free_bytes)
        self._reset()

    # -- state ---------------------------------------------------------------------------------
    def _reset(self) -> None:
        self.partial_dir: Path | None = None
        self._explicit_id: str | None = None
        self._stamp: str | None = None
        self._datasets: dict[str, DatasetEntry] = {}
        self._dists: dict[str, DistributionEntry] = {}
        self._lock_fd: int | None = None
        self._expected_bytes = 0
        self._space_pruned: list[str] = []

    @property
    def releases_dir(self) -> Path:
        return releases_dir(self.output_dir)

    @property
    def datasets(self) -> Mapping[str, DatasetEntry]:
        """The datasets declared so far, by identifier (read-only view)."""
        return MappingProxyType(self._datasets)

    @property
    def distributions(self) -> Mapping[str, DistributionEntry]:
        """The registered files and folders, by release path (folders end with ``/``; read-only view)."""
        return MappingProxyType(self._dists)

    def _require_open(self) -> Path:
        if self.partial_dir is None:
            raise dataset_error(ReleaseError, "release", "no release is open",
                                "call begin() before adding files or finalizing")
        return self.partial_dir

    def __enter__(self) -> ReleaseBuilder:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        # an error in the caller's block: keep the partial folder for inspection (next begin
        # removes it); latest was never touched
        self._unlock()
        self._reset()

    # -- lock ----------------------------------------------------------------------------------
    def _lock(self) -> None:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        if fcntl is None:  # pragma: no cover
            return
        path = self.output_dir / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.lock_timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
                    os.close(fd)
                    raise dataset_error(
                        ReleaseError, "release",
                        f"another release is being built in {self.output_dir} (lock {path} held by "
                        f"process {holder or '?'})",
                        "wait for that run to finish, or stop it; the lock is freed when its process ends")
                time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._lock_fd = fd

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            try:
                if fcntl is not None:
                    fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            finally:
                os.close(self._lock_fd)
                self._lock_fd = None

    # -- begin ---------------------------------------------------------------------------------
    def begin(self, release_id: str | None = None, expected_bytes: int | None = None) -> Path:
        """Open a new release: clean leftovers, take the lock, check the space, create
        ``releases/<x>.partial/``.

        ``release_id`` fixes the id of the release (it must not exist yet); by default the id
        is made by :meth:`finalize` from the start time and the content digest.

        ``expected_bytes`` is the estimated size of what goes in (files that will be hard-linked
        need none). When less than ``expected_bytes + min_free_bytes`` is free, old releases are
        pruned first, oldest first (never the one ``latest`` points to); if that is not enough,
        nothing is written and a :class:`ReleaseError` says how much to free.

        Returns
        -------
        Path
            The partial folder to write into.
        """
        if self.partial_dir is not None:
            raise dataset_error(ReleaseError, "release", f"a release is already open in {self.partial_dir}",
                                "finalize() or abort() it before begin()")
        if release_id is not None and (not ID_PATTERN.match(release_id)
                                       or release_id.endswith((PARTIAL_SUFFIX, DELETING_SUFFIX))):
            raise dataset_error(ReleaseError, "release", f"release id {release_id!r} is not usable",
                                "use letters, digits, '.', '_' and '-' only (no .partial/.deleting suffix)")
        self._lock()
        try:
            self.releases_dir.mkdir(parents=True, exist_ok=True)
            self._clean_leftovers()
            self._expected_bytes = int(expected_bytes or 0)
            self._space_pruned = self._ensure_space(self._expected_bytes) if expected_bytes is not None else []
            if release_id is not None and (self.releases_dir / release_id).exists():
                raise dataset_error(ReleaseError, "release", f"release {release_id} already exists",
                                    "choose another release id or let finalize() make one")
            self._started = self.clock()
            self._stamp = self._started.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
            self._explicit_id = release_id
            partial = self.releases_dir / f"{release_id or self._stamp}{PARTIAL_SUFFIX}"
            partial.mkdir()
        except BaseException:
            self._unlock()
            raise
        self.partial_dir = partial
        return partial

    def _clean_leftovers(self) -> None:
        for d in self.releases_dir.iterdir():
            if d.name.endswith((PARTIAL_SUFFIX, DELETING_SUFFIX)):
                if d.is_dir() and not d.is_symlink():
                    shutil.rmtree(d)
                else:
                    d.unlink()
        for p in self.output_dir.glob(".latest.*"):
            p.unlink()

    def abort(self, remove: bool = True, error: BaseException | None = None) -> BaseException | None:
        """Give up the open release (removes its partial folder unless ``remove=False``).

        With ``error`` (what went wrong while the release was being filled), returns the exception
        to raise for it: a full disk becomes one readable :class:`ReleaseError` with the fix, and
        the partial folder is removed whatever ``remove`` says (it would only hold the space);
        any other error is returned as it is.
        """
        partial = self.partial_dir
        full = error is not None and not isinstance(error, ReleaseError) and disk_full(error)
        if partial is not None and (remove or full) and partial.exists():
            shutil.rmtree(partial, ignore_errors=True)
        out = self._disk_full_error() if full else error
        self._unlock()
        self._reset()
        return out

    # -- space -----------------------------------------------------------------------------------
    def _free_bytes(self) -> int:
        return shutil.disk_usage(self.releases_dir).free

    def _ensure_space(self, expected_bytes: int) -> list[str]:
        need = expected_bytes + self.min_free_bytes
        free = self._free_bytes()
        pruned: list[str] = []
        if free >= need:
            return pruned
        cur = latest_release(self.output_dir)
        for rid in list_releases(self.output_dir):  # oldest first
            if cur is not None and rid == cur.name:
                continue
            self._remove_release(rid)
            pruned.append(rid)
            free = self._free_bytes()
            if free >= need:
                return pruned
        latest = cur.name if cur is not None else "(none)"
        raise dataset_error(
            ReleaseError, "release",
            f"not enough free space for a new release in {self.releases_dir}: about {_mb(need)} needed "
            f"({_mb(expected_bytes)} for the release, {_mb(self.min_free_bytes)} to stay free), {_mb(free)} free"
            + (f" after pruning {len(pruned)} old release(s)" if pruned else "")
            + f"; nothing was written, latest still points to {latest}",
            f"free {_mb(need - free)} in {self.releases_dir} (or lower publish.keep_releases, now {self.keep}, "
            f"or publish.min_free_mb), then run again")

    def _disk_full_error(self) -> ReleaseError:
        """One line for a disk that became full: where, what is free, the fix."""
        where = self.releases_dir
        try:
            free = self._free_bytes()
        except OSError:  # pragma: no cover
            free = 0
        cur = latest_release(self.output_dir)
        estimate = (f" (about {_mb(self._expected_bytes + self.min_free_bytes)} by the estimate)"
                    if self._expected_bytes else "")
        return dataset_error(
            ReleaseError, "release",
            f"the disk of {where} became full while the release was written; the unfinished release was "
            f"removed, nothing was published, latest still points to {cur.name if cur is not None else '(none)'}",
            f"the release needs more than the {_mb(free)} free now{estimate}: free space in {where} or lower "
            f"publish.keep_releases (now {self.keep}), then run again")

    # -- registration ----------------------------------------------------------------------------
    def dataset(self, identifier: str, title: str | None = None, description: str | None = None, *,
                title_en: str | None = None, description_en: str | None = None,
                spatial_wkt: str | None = None, keywords: Iterable[str] | None = None,
                conforms_to: Iterable[str] | None = None, license: str | None = None,
                political_geocoding_uri: str | None = None, theme: str | None = None) -> DatasetEntry:
        """Declare (or update) a dataset of the catalog; returns its entry.

        Datasets named by ``dataset=`` in the add/write calls are declared automatically with
        the identifier as title and get their German and English texts from
        :mod:`citymodel.release.titles`; call this for another title (``title`` German,
        ``title_en`` English), description and extent.
        """
        if not identifier or not ID_PATTERN.match(identifier):
            raise dataset_error(ReleaseError, identifier or "(empty)", "the dataset identifier is not usable",
                                "use letters, digits, '.', '_' and '-' only")
        entry = self._datasets.get(identifier) or DatasetEntry(identifier, identifier)
        if title is not None:
            entry.title = title
        if description is not None:
            entry.description = description
        if title_en is not None:
            entry.title_en = title_en
        if description_en is not None:
            entry.description_en = description_en
        if spatial_wkt is not None:
            check_spatial_wkt(spatial_wkt, identifier)
            entry.spatial_wkt = spatial_wkt
        if keywords is not None:
            entry.keywords = tuple(keywords)
        if conforms_to is not None:
            entry.conforms_to = tuple(conforms_to)
        if license is not None:
            entry.license = license
        if political_geocoding_uri is not None:
            entry.political_geocoding_uri = political_geocoding_uri
        if theme is not None:
            entry.theme = theme
        self._datasets[identifier] = entry
        return entry

    def _register(self, rel: str, dataset: str | None, *, title: str | None, description: str | None,
                  media_type: str | None, format: str | None, role: str, folder: str | None,
                  conforms_to: Iterable[str] | None, in_digest: bool,
                  digest_ignore_keys: Iterable[str]) -> DistributionEntry:
        if role not in ("download", "service", "documentation"):
            raise dataset_error(ReleaseError, dataset or "release", f"distribution role {role!r} is unknown",
                                "use role='download', 'service' or 'documentation'", record=rel)
        if dataset is not None and dataset not in self._datasets:
            self.dataset(dataset)
        media, _, code, label, spec = file_kind(rel)
        entry = DistributionEntry(
            rel_path=rel, dataset=dataset, title=title or PurePosixPath(rel).name,
            description=description or "", media_type=media_type or media,
            format=format or code or label, role=role, folder=folder,
            conforms_to=tuple(conforms_to) if conforms_to is not None else
            ((SPECS[spec],) if spec else ()),
            in_digest=in_digest, digest_ignore_keys=tuple(digest_ignore_keys))
        self._dists[rel] = entry
        return entry

    def _target(self, rel_path: str | os.PathLike, dataset: str | None) -> tuple[str, Path]:
        partial = self._require_open()
        rel = check_release_path(rel_path, dataset)
        target = partial / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        return rel, target

    def add_file(self, src: str | os.PathLike, rel_path: str | os.PathLike, *, dataset: str | None = None,
                 title: str | None = None, description: str | None = None, media_type: str | None = None,
                 format: str | None = None, role: str = "download", conforms_to: Iterable[str] | None = None,
                 in_digest: bool = True, digest_ignore_keys: Iterable[str] = ()) -> Path:
        """Copy ``src`` into the release at ``rel_path`` and register it.

        ``media_type`` (IANA, e.g. ``text/csv``) and ``format`` (EU file-type code such as
        ``GPKG``, or a label) are derived from the file name when not given. ``dataset=None``
        keeps the file out of the catalog (it is still in ``SHA256SUMS``).

        Raises
        ------
        ReleaseError
            ``src`` is missing, or ``rel_path`` is not a plain relative path.
        """
        rel, target = self._target(rel_path, dataset)
        src = Path(src)
        if not src.is_file():
            raise dataset_error(ReleaseError, dataset or "release", f"source file {src} does not exist",
                                "write the file before adding it to the release", record=rel)
        with atomic_output(target) as tmp:
            shutil.copyfile(src, tmp)
        self._register(rel, dataset, title=title, description=description, media_type=media_type,
                       format=format, role=role, folder=None, conforms_to=conforms_to,
                       in_digest=in_digest, digest_ignore_keys=digest_ignore_keys)
        return target

    def add_folder(self, src: str | os.PathLike, rel_path: str | os.PathLike, *, dataset: str | None = None,
                   entry: str | None = None, title: str | None = None, description: str | None = None,
                   media_type: str | None = None, format: str | None = None,
                   conforms_to: Iterable[str] | None = None, in_digest: bool = True) -> Path:
        """Copy the folder ``src`` into the release at ``rel_path``.

        With ``entry`` (e.g. ``"tileset.json"``) and ``dataset``, the folder becomes one
        distribution (role ``service``) whose URL is ``<rel_path>/<entry>``; its checksum and
        size are those of the entry file, the other files are covered by ``SHA256SUMS``.
        """
        partial = self._require_open()
        rel = check_release_path(rel_path, dataset)
        src = Path(src)
        if not src.is_dir():
            raise dataset_error(ReleaseError, dataset or "release", f"source folder {src} does not exist",
                                "write the folder before adding it to the release", record=rel)
        target = partial / rel
        if target.exists():
            raise dataset_error(ReleaseError, dataset or "release", f"{rel} is already in the release",
                                "add each folder once", record=rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        # hard links where the file system allows: tiles are written once and never changed in place
        _copy_tree(src, target)
        self.register_folder(rel, dataset=dataset, entry=entry, title=title, description=description,
                             media_type=media_type, format=format, conforms_to=conforms_to,
                             in_digest=in_digest)
        return target

    def register_folder(self, rel_path: str | os.PathLike, *, dataset: str | None = None,
                        entry: str | None = None, title: str | None = None, description: str | None = None,
                        media_type: str | None = None, format: str | None = None,
                        conforms_to: Iterable[str] | None = None, in_digest: bool = True) -> Path:
        """Register a folder that a writer filled in place (``path(rel)`` of a folder)."""
        partial = self._require_open()
        rel = check_release_path(rel_path, dataset)
        if entry is not None:
            entry_rel = check_release_path(f"{rel}/{entry}", dataset)
            self._register(entry_rel, dataset, title=title, description=description,
                           media_type=media_type, format=format, role="service", folder=rel,
                           conforms_to=conforms_to, in_digest=in_digest, digest_ignore_keys=())
        else:
            self._dists[rel + "/"] = DistributionEntry(rel, None, PurePosixPath(rel).name, folder=rel,
                                                       role="service", in_digest=in_digest)
        return partial / rel

    def write_bytes(self, rel_path: str | os.PathLike, data: bytes, **meta: Any) -> Path:
        """Write ``data`` atomically at ``rel_path`` and register it (keywords of :meth:`add_file`)."""
        rel, target = self._target(rel_path, meta.get("dataset"))
        atomic_write_bytes(target, bytes(data))
        self._register_meta(rel, meta)
        return target

    def write_text(self, rel_path: str | os.PathLike, text: str, **meta: Any) -> Path:
        """Write UTF-8 ``text`` (``\\n`` line ends) at ``rel_path`` and register it."""
        return self.write_bytes(rel_path, text.encode("utf-8"), **meta)

    def write_json(self, rel_path: str | os.PathLike, obj: Any, *, indent: int | None = None,
                   **meta: Any) -> Path:
        """Write ``obj`` as UTF-8 JSON (NaN refused) at ``rel_path`` and register it."""
        try:
            text = json.dumps(obj, ensure_ascii=False, indent=indent, allow_nan=False)
        except ValueError as exc:
            raise dataset_error(ReleaseError, meta.get("dataset") or "release",
                                f"{rel_path} cannot be written as JSON: {exc}",
                                "replace NaN/inf by null before publishing", record=str(rel_path)) from exc
        return self.write_bytes(rel_path, (text + "\n").encode("utf-8"), **meta)

    def path(self, rel_path: str | os.PathLike, **meta: Any) -> Path:
        """The absolute path of ``rel_path`` in the partial folder, registered now.

        For writers that write in place (e.g. :func:`write_geopackage`). The file must exist when
        :meth:`finalize` runs, else that is a :class:`ReleaseError` naming it.
        """
        rel, target = self._target(rel_path, meta.get("dataset"))
        self._register_meta(rel, meta)
        return target

    def _register_meta(self, rel: str, meta: Mapping[str, Any]) -> None:
        allowed = {"dataset", "title", "description", "media_type", "format", "role", "conforms_to",
                   "in_digest", "digest_ignore_keys"}
        unknown = sorted(set(meta) - allowed)
        if unknown:
            raise TypeError(f"unknown keyword(s) {unknown}; allowed: {sorted(allowed)}")
        self._register(rel, meta.get("dataset"), title=meta.get("title"),
                       description=meta.get("description"), media_type=meta.get("media_type"),
                       format=meta.get("format"), role=meta.get("role", "download"), folder=None,
                       conforms_to=meta.get("conforms_to"), in_digest=meta.get("in_digest", True),
                       digest_ignore_keys=meta.get("digest_ignore_keys", ()))

    def add_quality_report(self, report_dir: str | os.PathLike, *, dataset: str = "quality-report",
                           title: str | None = None, description: str | None = None) -> Path:
        """Copy ``report.json`` and ``report.html`` of ``report_dir`` to ``quality/``.

        ``report.json`` counts for the content digest without its ``generated_at`` timestamp;
        ``report.html`` (rendered from the same data, with the timestamp) does not count.
        """
        src = Path(report_dir)
        self.dataset(dataset, title, description)
        target = self.add_file(src / "report.json", QUALITY_REPORT_PATH, dataset=dataset,
                               title="report.json", digest_ignore_keys=("generated_at",))
        if (src / "report.html").is_file():
            self.add_file(src / "report.html", "quality/report.html", dataset=dataset,
                          title="report.html", role="documentation", in_digest=False)
        return target

    # -- finalize ------------------------------------------------------------------------------
    def finalize(self, checks: Sequence[Mapping[str, Any]] = (), contents: ReleaseContents | None = None,
                 policy: PublishPolicy | None = None) -> ReleaseInfo:
        """Check, describe, publish and switch ``latest``; see the module docstring.

        Parameters
        ----------
        checks : sequence of dict
            ``{"name": str, "passed": bool, "blocking": bool (default: severity != "WARN"),
            "severity": "ERROR" | "WARN", "description": str, "asset": str}``; Dagster-style
            ``check_name``/``asset_key`` are accepted too.
        contents : ReleaseContents, optional
            What the release holds, part by part (:mod:`citymodel.release.contents`). A part that is
            carried over or failed refuses the release unless ``policy`` allows it; allowed gaps
            are said in words in ``index.html``, ``release.json`` and ``catalog.jsonld`` and count
            for the content digest.
        policy : PublishPolicy, optional
            What the deployment allows (default: no gaps, at least one building and one point).

        Returns
        -------
        ReleaseInfo
            ``unchanged=True`` when the content equals the current release (nothing published).

        Raises
        ------
        ReleaseError
            A blocking check failed (all failing checks are named), a registered file is missing,
            or writing/publishing failed. ``latest`` is unchanged and the partial folder is kept.
        """
        t0 = time.perf_counter()
        partial = self._require_open()
        policy = policy or PublishPolicy()
        try:
            failed, warnings, check_rows = evaluate_checks(checks)
            refusals = contents.refusals(policy) if contents is not None else []
            if failed or refusals:
                raise dataset_error(
                    ReleaseError, "release",
                    (f"{len(failed)} blocking check(s) failed: {'; '.join(failed)}. " if failed else "")
                    + (f"{len(refusals)} part(s) not publishable: {'; '.join(refusals)}. " if refusals else "")
                    + f"Nothing was published; latest still points to {self._latest_id() or '(none)'}; the "
                    f"unpublished release is kept for inspection in {partial}",
                    "fix the data or the checks named above and run the release again")
            if contents is not None:
                warnings = warnings + [f"{p.label} {p.text('en')}" for p in contents.gaps]
            info = self._publish(partial, check_rows, warnings, contents, policy)
        except BaseException as exc:
            full = isinstance(exc, Exception) and disk_full(exc)
            if full:
                shutil.rmtree(partial, ignore_errors=True)
                error = self._disk_full_error()
            self._unlock()
            self._reset()
            if full:
                raise error from exc
            if isinstance(exc, CityModelError) or not isinstance(exc, Exception):
                raise
            raise dataset_error(
                ReleaseError, "release",
                f"publishing {partial.name} failed ({type(exc).__name__}: {exc}); latest still points "
                f"to {self._latest_id() or '(none)'}; the partial folder {partial} is kept and removed "
                f"by the next begin()", "fix the cause (disk space, permissions) and run the release again"
            ) from exc
        self._unlock()
        self._reset()
        info.seconds = time.perf_counter() - t0
        return info

    def _latest_id(self) -> str | None:
        cur = latest_release(self.output_dir)
        return cur.name if cur is not None else None

    def _publish(self, partial: Path, check_rows: list[dict], warnings: list[str],
                 contents: ReleaseContents | None = None, policy: PublishPolicy | None = None) -> ReleaseInfo:
        created = self._started
        # every registered file must exist
        for rel, d in sorted(self._dists.items()):
            p = partial / d.rel_path
            ok = p.is_dir() if rel.endswith("/") else p.is_file()
            if not ok:
                raise dataset_error(ReleaseError, d.dataset or "release",
                                    f"{d.rel_path} was registered but is not in the release {partial}",
                                    "write the file (or folder) before finalize(), or do not register it",
                                    record=d.rel_path)
        files = list_release_files(partial)
        hashes = {rel: sha256_file(partial / rel) for rel in files}
        digest = self._content_digest(partial, files, hashes, contents)

        current = latest_release(self.output_dir)
        previous_id = current.name if current is not None else None
        if current is not None and read_manifest(current).get("content_digest") == digest:
            shutil.rmtree(partial)
            m = read_manifest(current)
            return ReleaseInfo(current.name, current, True, digest,
                               parse_iso(m.get("created")) or created, int(m.get("files", 0)),
                               int(m.get("bytes", 0)), previous_id=previous_id,
                               pruned=self._space_pruned + self._prune(current.name),
                               datasets=sorted(self._datasets), warnings=warnings, pointer=self._pointer_kind())

        release_id = self._explicit_id or f"{self._stamp}-{digest[:8]}"
        final = self.releases_dir / release_id
        n = 2
        while final.exists():  # same second and same content as a release that is not latest
            final = self.releases_dir / f"{self._stamp}-{digest[:8]}-{n}"
            n += 1
        release_id = final.name
        urls = self._url_base(release_id)

        catalog = catalog_document(self, release_id, created, hashes, partial, urls, contents=contents)
        atomic_write_bytes(partial / CATALOG_FILE, (json.dumps(catalog, ensure_ascii=False, indent=1)
                                                    + "\n").encode("utf-8"))
        total = sum((partial / r).stat().st_size for r in files)
        unregistered = self._unregistered(files)
        manifest = {
            "release_id": release_id, "created": iso_utc(created), "content_digest": digest,
            "previous_release": previous_id, "files": len(files),
            "bytes": total, "tool": "citymodel", "tool_version": tool_version(), "code": code_version(),
            "crs": self.crs, "vertical_crs": self.vertical_crs, "geoid_model": self.geoid_model,
            "license": self.license, "checks": check_rows, "warnings": warnings,
            "datasets": sorted(self._datasets),
        }
        if contents is not None:
            manifest["contents"] = contents.to_dict(policy)
        atomic_write_bytes(partial / MANIFEST_FILE,
                           (json.dumps(manifest, ensure_ascii=False, indent=1) + "\n").encode("utf-8"))
        page = render_index_page(self, release_id, created, hashes, partial, check_rows, warnings, urls,
                                 contents=contents)
        atomic_write_bytes(partial / INDEX_FILE, page.encode("utf-8"))
        for name in (CATALOG_FILE, MANIFEST_FILE, INDEX_FILE):
            hashes[name] = sha256_file(partial / name)
        write_sha256sums(partial / SUMS_FILE, hashes)
        _normalise_modes(partial)
        _fsync_dir(partial)

        os.rename(partial, final)
        _fsync_dir(self.releases_dir)
        try:
            pointer = self._switch_latest(release_id)
        except BaseException:
            os.rename(final, partial)  # back to unpublished; latest was not replaced
            raise
        pruned = self._space_pruned + self._prune(release_id)
        return ReleaseInfo(release_id, final, False, digest, created, len(files), total,
                           previous_id=previous_id, pruned=pruned, datasets=sorted(self._datasets),
                           unregistered=unregistered, warnings=warnings, pointer=pointer)

    def _unregistered(self, files: list[str]) -> list[str]:
        folders = [d.folder for d in self._dists.values() if d.folder]
        out = []
        for rel in files:
            if rel in self._dists:
                continue
            if any(rel.startswith(f + "/") for f in folders):
                continue
            out.append(rel)
        return out

    def _content_digest(self, partial: Path, files: list[str], hashes: dict[str, str],
                        contents: ReleaseContents | None = None) -> str:
        excluded_folders = [d.folder for d in self._dists.values() if d.folder and not d.in_digest]
        # a dataset whose distributions are all outside the digest (e.g. the variants listing) is too
        counted = {d.dataset for d in self._dists.values() if d.in_digest}
        outside = {d.dataset for d in self._dists.values() if not d.in_digest} - counted
        h = hashlib.sha256(b"citymodel-release-digest-v1\n")
        for rel in files:
            d = self._dists.get(rel)
            if d is not None and not d.in_digest:
                continue
            if any(rel.startswith(f + "/") for f in excluded_folders):
                continue
            value = hashes[rel]
            if d is not None and d.digest_ignore_keys:
                value = _json_digest_without(partial / rel, d.digest_ignore_keys) or value
            h.update(f"{rel}\0{value}\n".encode("utf-8"))
        meta = {
            "catalog": [self.title, self.description, self.publisher, self.publisher_uri, self.license,
                        self.base_url, self.language, self.crs, self.vertical_crs, self.geoid_model,
                        self.political_geocoding_uri, self.contributor_id, self.version_notes,
                        self.spatial_wkt, list(self.keywords), self.theme],
            "datasets": [asdict(self._datasets[k]) for k in sorted(self._datasets) if k not in outside],
            "distributions": [asdict(self._dists[k]) for k in sorted(self._dists) if self._dists[k].in_digest],
        }
        if contents is not None:  # the same files with other gaps are another release
            meta["contents"] = contents.digest_items()
        h.update(json.dumps(meta, sort_keys=True, default=list).encode("utf-8"))
        return h.hexdigest()

    def _url_base(self, release_id: str) -> str:
        return f"{self.base_url}{RELEASES_DIR}/{release_id}/" if self.base_url else ""

    # -- latest and pruning --------------------------------------------------------------------
    def _pointer_kind(self) -> str:
        return "symlink" if (self.output_dir / LATEST_LINK).is_symlink() else "file"

    def _switch_latest(self, release_id: str) -> str:
        out = self.output_dir
        link = out / LATEST_LINK
        if link.exists() and not link.is_symlink():
            raise dataset_error(ReleaseError, "release",
                                f"{link} is a real folder or file, not the symlink this tool manages",
                                "move it away (it is not a release) and run the release again")
        tmp_link = out / f".latest.{os.getpid()}.tmp"
        try:
            if tmp_link.is_symlink() or tmp_link.exists():
                tmp_link.unlink()
            os.symlink(f"{RELEASES_DIR}/{release_id}", tmp_link, target_is_directory=True)
            os.replace(tmp_link, link)
            kind = "symlink"
        except (OSError, NotImplementedError):
            if tmp_link.is_symlink():
                tmp_link.unlink()
            kind = "file"
        # the LATEST file mirrors the symlink (or is the only pointer where symlinks fail)
        atomic_write_bytes(out / LATEST_FILE, (release_id + "\n").encode("ascii"))
        if kind == "file" and link.is_symlink():
            link.unlink()  # a stale symlink would shadow the LATEST file
        _fsync_dir(out)
        return kind

    def _prune(self, current_id: str) -> list[str]:
        # the release latest points to always stays; the other slots go to the newest releases
        cur = latest_release(self.output_dir)
        keep_ids = {cur.name if cur is not None else current_id}
        for rid in reversed(list_releases(self.output_dir)):
            if len(keep_ids) >= self.keep:
                break
            keep_ids.add(rid)
        pruned = []
        for rid in list_releases(self.output_dir):
            if rid in keep_ids:
                continue
            self._remove_release(rid)
            pruned.append(rid)
        return pruned

    def _remove_release(self, rid: str) -> None:
        """Rename to ``<id>.deleting`` (nothing that looks like a release is left if this stops
        half-way), then delete."""
        doomed = self.releases_dir / f"{rid}{DELETING_SUFFIX}"
        os.rename(self.releases_dir / rid, doomed)
        shutil.rmtree(doomed, ignore_errors=True)


def _json_digest_without(path: Path, keys: Iterable[str]) -> str | None:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(obj, dict):
        for k in keys:
            obj.pop(k, None)
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()
