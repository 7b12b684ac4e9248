"""Atomic, versioned releases: open datasets, a DCAT-AP catalog, ``SHA256SUMS`` and ``index.html``.

Layout (relative to the output directory; promised to users, see DESIGN.md)::

    latest -> releases/<release-id>/      relative symlink, switched atomically by finalize()
    LATEST                                 text file holding <release-id> (mirror of the symlink)
    releases/<release-id>/
        index.html, catalog.jsonld, SHA256SUMS, release.json, quality/..., tiles/..., data/...
    releases/<stamp>.partial/              a release being built (or kept after a refusal/crash)

How a release is made (:class:`ReleaseBuilder`)::

    rb = ReleaseBuilder(out, keep=5, publisher="Stadt Jena", title="3D-Stadtmodell Jena",
                        spatial_wkt=extent_wkt_crs84(settings.extent, settings.processing_crs))
    rb.begin()                                   # cleans leftovers of crashed runs, takes the lock
    rb.dataset("buildings", "Gebäude LoD2", "...")
    rb.add_file(gml, "data/buildings.gml", dataset="buildings")
    write_geopackage(frame, rb.path("data/buildings.gpkg", dataset="buildings"))
    rb.add_folder(tiles_dir, "tiles/buildings", dataset="buildings-3dtiles", entry="tileset.json")
    info = rb.finalize(checks)                   # refuses on a failed blocking check

Decisions (documented here because users and operators rely on them):

- **Release id**: ``YYYYMMDDTHHMMSSZ-<first 8 hex of the content digest>`` (UTC), so ids sort
  chronologically by name. ``begin(release_id=...)`` sets an explicit id instead.
- **Atomicity**: everything is written into ``releases/<stamp>.partial/``; ``finalize`` writes
  ``catalog.jsonld``, ``release.json``, ``index.html`` and ``SHA256SUMS`` last, renames the folder
  to ``releases/<id>`` (one ``rename``), then creates a relative symlink under a temporary name and
  ``os.replace``s it over ``latest`` (atomic on POSIX). Readers following ``latest`` see the old
  or the new release, never a mix. The plain-text ``LATEST`` file (also replaced atomically)
  mirrors it for hosts that cannot follow symlinks (static web hosting, object stores); where
  symlinks cannot be made at all (Windows without the privilege), ``LATEST`` alone is the pointer
  and :func:`latest_release` reads it.
- **Refusal and crashes**: a failed blocking check raises :class:`ReleaseError` naming every
  failing check; ``latest`` is untouched and the partial folder is **kept for inspection** (the
  error names it). Any other error inside ``finalize`` (or in the caller's ``with`` block) also
  leaves ``latest`` as it was and keeps the partial folder. Every ``begin`` removes leftover
  ``*.partial`` (and half-pruned ``*.deleting``) folders before it starts; a lock file
  (``.release.lock``, ``flock``) makes sure that only one builder works on an output directory
  at a time, so ``begin`` never removes the folder of a live build.
- **No new release when nothing changed**: the *content digest* is a SHA-256 over the sorted list
  of (path, SHA-256) of every file (except ``catalog.jsonld``, ``index.html``, ``SHA256SUMS``,
  ``release.json``, which hold timestamps, and files registered with ``in_digest=False``) plus
  the catalog metadata without dates. JSON files registered with ``digest_ignore_keys`` (e.g. the
  quality report's ``generated_at``) are hashed without those top-level keys. If the digest
  equals the one recorded in ``latest``'s ``release.json``, ``finalize`` discards the partial
  folder and returns ``ReleaseInfo(unchanged=True)`` for the current release. Writers must
  therefore be deterministic: :func:`write_geopackage` pins the GeoPackage ``last_change``
  timestamp for that reason.
- **Pruning**: after the switch, releases (folders holding a ``release.json``) beyond ``keep``
  are removed, oldest first; the one ``latest`` points to is never removed. A folder is renamed
  to ``<id>.deleting`` before it is deleted, so a crash mid-way leaves nothing that looks like a
  release.

Nothing here imports dagster.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import math
import os
import re
import shutil
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

from .errors import CityModelError, dataset_error
from .tiles import Tile, parse_tile_id
from .fileio import sha256_file

try:  # POSIX advisory locks; on other systems the lock is a no-op (documented)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "ReleaseBuilder", "ReleaseInfo", "ReleaseError", "DatasetEntry", "DistributionEntry",
    "latest_release", "list_releases", "read_sha256sums", "checks_from_quality_report",
    "buildings_csv", "tile_index", "write_geopackage", "write_geoparquet", "extent_wkt_crs84",
    "DEFAULT_LICENSE", "RESERVED_FILES", "TILE_INDEX_PATH", "SPECS",
]

#: Licence of published data unless configured: Datenlizenz Deutschland - Namensnennung 2.0.
DEFAULT_LICENSE = "http://dcat-ap.de/def/licenses/dl-by-de/2.0"
#: Files that finalize() writes itself (they hold timestamps and are not part of the digest).
CATALOG_FILE, INDEX_FILE, SUMS_FILE, MANIFEST_FILE = "catalog.jsonld", "index.html", "SHA256SUMS", "release.json"
RESERVED_FILES = (CATALOG_FILE, INDEX_FILE, SUMS_FILE, MANIFEST_FILE)
#: Where the tile index lives in a release; index.html draws it as a map picture.
TILE_INDEX_PATH = "data/tile_index.geojson"
QUALITY_REPORT_PATH = "quality/report.json"
LATEST_LINK, LATEST_FILE, RELEASES_DIR, LOCK_FILE = "latest", "LATEST", "releases", ".release.lock"
PARTIAL_SUFFIX, DELETING_SUFFIX = ".partial", ".deleting"

#: Specifications referenced with dct:conformsTo.
SPECS = {
    "cityjson": "https://www.cityjson.org/specs/2.0.1/",
    "cityjsonseq": "https://www.cityjson.org/cityjsonseq/",
    "citygml": "http://www.opengis.net/spec/citygml/2.0",
    "3dtiles": "http://www.opengis.net/doc/CS/3D-Tiles/1.1",
    "geoparquet": "https://geoparquet.org/",
    "geopackage": "http://www.opengis.net/doc/IS/geopackage/1.4",
    "geojson": "https://www.rfc-editor.org/rfc/rfc7946",
}

FILE_TYPE = "http://publications.europa.eu/resource/authority/file-type/"
IANA = "https://www.iana.org/assignments/media-types/"
EPSG_IRI = "http://www.opengis.net/def/crs/EPSG/0/"
CRS84_IRI = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
THEME_REGI = "http://publications.europa.eu/resource/authority/data-theme/REGI"
LANGUAGES = {"de": "DEU", "en": "ENG", "fr": "FRA", "nl": "NLD", "pl": "POL", "cs": "CES"}

# (suffix or exact name, media type, registered with IANA, EU file-type code or None, label,
#  spec key). First match wins, so compound suffixes come first.
_FILE_KINDS: tuple[tuple[str, str | None, bool, str | None, str, str | None], ...] = (
    ("tileset.json", "application/json", True, "JSON", "3D Tiles", "3dtiles"),
    (".city.jsonl", "application/city+json-seq", False, None, "CityJSONSeq", "cityjsonseq"),
    (".city.json", "application/city+json", True, "JSON", "CityJSON", "cityjson"),
    (".gml", "application/gml+xml", True, "GML", "GML", None),
    (".gpkg", "application/geopackage+sqlite3", True, "GPKG", "GeoPackage", "geopackage"),
    (".parquet", "application/vnd.apache.parquet", True, "PARQUET", "GeoParquet", "geoparquet"),
    (".geojson", "application/geo+json", True, "GEOJSON", "GeoJSON", "geojson"),
    (".csv", "text/csv", True, "CSV", "CSV", None),
    (".tif", "image/tiff", True, "GEOTIFF", "GeoTIFF", None),
    (".tiff", "image/tiff", True, "GEOTIFF", "GeoTIFF", None),
    (".png", "image/png", True, "PNG", "PNG", None),
    (".html", "text/html", True, "HTML", "HTML", None),
    (".jsonld", "application/ld+json", True, "JSON_LD", "JSON-LD", None),
    (".json", "application/json", True, "JSON", "JSON", None),
    (".glb", "model/gltf-binary", True, None, "glTF (binary)", None),
    (".gltf", "model/gltf+json", True, None, "glTF", None),
    (".laz", "application/vnd.laszip", True, "LAZ", "LAZ", None),
    (".las", "application/vnd.las", True, "LAS", "LAS", None),
    (".zip", "application/zip", True, "ZIP", "ZIP", None),
    (".txt", "text/plain", True, "TXT", "Text", None),
    ("SHA256SUMS", "text/plain", True, "TXT", "Text", None),
    (".pnts", "application/octet-stream", True, None, "3D Tiles pnts", None),
    (".b3dm", "application/octet-stream", True, None, "3D Tiles b3dm", None),
)
_REGISTERED_MEDIA = {k[1] for k in _FILE_KINDS if k[1] and k[2]}
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

JSONLD_CONTEXT: dict[str, str] = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "dcatde": "http://dcat-ap.de/def/dcatde/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "spdx": "http://spdx.org/rdf/terms#",
    "locn": "http://www.w3.org/ns/locn#",
    "gsp": "http://www.opengis.net/ont/geosparql#",
    "adms": "http://www.w3.org/ns/adms#",
    "owl": "http://www.w3.org/2002/07/owl#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
}


class ReleaseError(CityModelError):
    """A release cannot be built or published (failed blocking checks, write errors, bad paths)."""


# ---------------------------------------------------------------------------------------------
# Data model


@dataclass
class DatasetEntry:
    """A ``dcat:Dataset`` of the release; ``spatial_wkt`` is WKT in CRS84 (lon, lat)."""

    identifier: str
    title: str
    description: str = ""
    spatial_wkt: str | None = None
    keywords: tuple[str, ...] = ()
    conforms_to: tuple[str, ...] = ()
    license: str | None = None
    political_geocoding_uri: str | None = None
    theme: str | None = None


@dataclass
class DistributionEntry:
    """A file of the release, registered with its dataset (``None``: only in ``SHA256SUMS``).

    ``role`` is ``"download"`` (a file to download: accessURL and downloadURL),
    ``"service"`` (the entry point of a folder such as a 3D Tiles ``tileset.json``: accessURL
    only, the folder ``folder`` belongs to it) or ``"documentation"``.
    """

    rel_path: str
    dataset: str | None
    title: str
    description: str = ""
    media_type: str | None = None
    format: str | None = None
    role: str = "download"
    folder: str | None = None
    conforms_to: tuple[str, ...] = ()
    in_digest: bool = True
    digest_ignore_keys: tuple[str, ...] = ()


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


# ---------------------------------------------------------------------------------------------
# Small helpers


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def _iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _sha256_file(path: Path) -> str:
    return sha256_file(path)


def _atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to a temporary file beside ``path``, fsync, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


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


def _kind(rel_path: str) -> tuple[str | None, bool, str | None, str, str | None]:
    name = PurePosixPath(rel_path).name
    low = name.lower()
    for suffix, media, registered, code, label, spec in _FILE_KINDS:
        if low == suffix.lower() or (suffix.startswith(".") and low.endswith(suffix)):
            return media, registered, code, label, spec
    return None, False, None, PurePosixPath(name).suffix.lstrip(".").upper() or "file", None


def _check_rel(rel_path: str | os.PathLike, dataset: str | None, reserved_ok: bool = False) -> str:
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


def extent_wkt_crs84(extent: Sequence[float], crs: str = "EPSG:25832", densify: int = 21) -> str:
    """WKT polygon (lon/lat, CRS84) of the bounding box of ``extent`` given in ``crs``.

    The box is densified (``densify`` points per edge) before it is transformed, so the lon/lat
    box encloses the whole projected extent.
    """
    from pyproj import Transformer

    minx, miny, maxx, maxy = (float(v) for v in extent)
    if not (maxx > minx and maxy > miny):
        raise dataset_error(ReleaseError, "release", f"extent {tuple(extent)} is empty",
                            "give the extent as (minx, miny, maxx, maxy) with max > min")
    tr = Transformer.from_crs(crs, "OGC:CRS84", always_xy=True)
    w, s, e, n = tr.transform_bounds(minx, miny, maxx, maxy, densify_pts=densify)
    return _bbox_wkt(w, s, e, n)


def _bbox_wkt(w: float, s: float, e: float, n: float) -> str:
    f = lambda v: f"{v:.7f}".rstrip("0").rstrip(".")  # noqa: E731
    return (f"POLYGON(({f(w)} {f(s)}, {f(e)} {f(s)}, {f(e)} {f(n)}, {f(w)} {f(n)}, "
            f"{f(w)} {f(s)}))")


def _human_size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


def _tool_version() -> str:
    try:
        from importlib.metadata import version
        return version("citymodel-pipeline")
    except Exception:  # pragma: no cover - not installed
        return "unknown"


# ---------------------------------------------------------------------------------------------
# Pointer to the current release


def _releases_dir(output_dir: Path) -> Path:
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
        if rid and _ID_RE.match(rid):
            target = _releases_dir(out) / rid
            return target if target.is_dir() else None
    return None


def list_releases(output_dir: str | os.PathLike) -> list[str]:
    """Ids of the finished releases (folders with a ``release.json``), oldest first."""
    rel = _releases_dir(Path(output_dir))
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


def _link_or_copy(src: str, dst: str) -> str:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
    return dst


def checks_from_quality_report(report: Mapping | str | os.PathLike) -> list[dict]:
    """Blocking checks for :meth:`ReleaseBuilder.finalize` from a ``quality/report.json``.

    One failed check per entry of ``summary.blocking_failures``, plus one passed check
    ``quality_report`` when there are none.
    """
    if not isinstance(report, Mapping):
        report = json.loads(Path(report).read_text(encoding="utf-8"))
    failures = list((report.get("summary") or {}).get("blocking_failures") or [])
    if not failures:
        return [{"name": "quality_report", "passed": True, "blocking": True,
                 "description": f"quality report status {report.get('status')!r}"}]
    return [{"name": f"quality/{f}", "passed": False, "blocking": True,
             "description": "blocking failure in the quality report"} for f in failures]


# ---------------------------------------------------------------------------------------------
# The builder


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
    clock : callable, optional
        Returns the current UTC time (tests).
    lock_timeout_s : float
        How long ``begin`` waits for another builder on the same output directory.
    """

    def __init__(self, output_dir: str | os.PathLike, keep: int = 5, license: str = DEFAULT_LICENSE,
                 publisher: str = "Stadt Jena", title: str = "3D city model", *,
                 description: str = "", base_url: str | None = None, language: str = "de",
                 spatial_wkt: str | None = None, keywords: Iterable[str] = (),
                 crs: str = "EPSG:25832", vertical_crs: str | None = "EPSG:7837",
                 geoid_model: str | None = None, political_geocoding_uri: str | None = None,
                 contributor_id: str | None = None, publisher_uri: str | None = None,
                 version_notes: str | None = None, theme: str | None = THEME_REGI,
                 clock: Callable[[], datetime] | None = None, lock_timeout_s: float = 30.0):
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
        self.clock = clock or _now
        self.lock_timeout_s = float(lock_timeout_s)
        self._reset()

    # -- state ---------------------------------------------------------------------------------
    def _reset(self) -> None:
        self.partial_dir: Path | None = None
        self._explicit_id: str | None = None
        self._stamp: str | None = None
        self._datasets: dict[str, DatasetEntry] = {}
        self._dists: dict[str, DistributionEntry] = {}
        self._lock_fd: int | None = None

    @property
    def releases_dir(self) -> Path:
        return _releases_dir(self.output_dir)

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
    def begin(self, release_id: str | None = None) -> Path:
        """Open a new release: clean leftovers, take the lock, create ``releases/<x>.partial/``.

        ``release_id`` fixes the id of the release (it must not exist yet); by default the id
        is made by :meth:`finalize` from the start time and the content digest.

        Returns
        -------
        Path
            The partial folder to write into.
        """
        if self.partial_dir is not None:
            raise dataset_error(ReleaseError, "release", f"a release is already open in {self.partial_dir}",
                                "finalize() or abort() it before begin()")
        if release_id is not None and (not _ID_RE.match(release_id)
                                       or release_id.endswith((PARTIAL_SUFFIX, DELETING_SUFFIX))):
            raise dataset_error(ReleaseError, "release", f"release id {release_id!r} is not usable",
                                "use letters, digits, '.', '_' and '-' only (no .partial/.deleting suffix)")
        self._lock()
        try:
            self.releases_dir.mkdir(parents=True, exist_ok=True)
            self._clean_leftovers()
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

    def abort(self, remove: bool = True) -> None:
        """Give up the open release (removes its partial folder unless ``remove=False``)."""
        if self.partial_dir is not None and remove and self.partial_dir.exists():
            shutil.rmtree(self.partial_dir)
        self._unlock()
        self._reset()

    # -- registration ----------------------------------------------------------------------------
    def dataset(self, identifier: str, title: str | None = None, description: str | None = None, *,
                spatial_wkt: str | None = None, keywords: Iterable[str] | None = None,
                conforms_to: Iterable[str] | None = None, license: str | None = None,
                political_geocoding_uri: str | None = None, theme: str | None = None) -> DatasetEntry:
        """Declare (or update) a dataset of the catalog; returns its entry.

        Datasets named by ``dataset=`` in the add/write calls are declared automatically with
        the identifier as title; call this for a proper title, description and extent.
        """
        if not identifier or not _ID_RE.match(identifier):
            raise dataset_error(ReleaseError, identifier or "(empty)", "the dataset identifier is not usable",
                                "use letters, digits, '.', '_' and '-' only")
        entry = self._datasets.get(identifier) or DatasetEntry(identifier, identifier)
        if title is not None:
            entry.title = title
        if description is not None:
            entry.description = description
        if spatial_wkt is not None:
            _check_wkt(spatial_wkt, identifier)
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
        media, _, code, label, spec = _kind(rel)
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
        rel = _check_rel(rel_path, dataset)
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
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            shutil.copyfile(src, tmp)
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                tmp.unlink()
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
        rel = _check_rel(rel_path, dataset)
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
        shutil.copytree(src, target, symlinks=False, copy_function=_link_or_copy)
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
        rel = _check_rel(rel_path, dataset)
        if entry is not None:
            entry_rel = _check_rel(f"{rel}/{entry}", dataset)
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
        _atomic_write_bytes(target, bytes(data))
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
                           title: str = "Quality report", description: str | None = None) -> Path:
        """Copy ``report.json`` and ``report.html`` of ``report_dir`` to ``quality/``.

        ``report.json`` counts for the content digest without its ``generated_at`` timestamp;
        ``report.html`` (rendered from the same data, with the timestamp) does not count.
        """
        src = Path(report_dir)
        self.dataset(dataset, title, description if description is not None else
                     "Results of the quality checks of this release: expectation suites, blocking "
                     "checks and quarantined records.")
        target = self.add_file(src / "report.json", QUALITY_REPORT_PATH, dataset=dataset,
                               title="report.json", digest_ignore_keys=("generated_at",))
        if (src / "report.html").is_file():
            self.add_file(src / "report.html", "quality/report.html", dataset=dataset,
                          title="report.html", role="documentation", in_digest=False)
        return target

    # -- finalize ------------------------------------------------------------------------------
    def finalize(self, checks: Sequence[Mapping[str, Any]] = ()) -> ReleaseInfo:
        """Check, describe, publish and switch ``latest``; see the module docstring.

        Parameters
        ----------
        checks : sequence of dict
            ``{"name": str, "passed": bool, "blocking": bool (default: severity != "WARN"),
            "severity": "ERROR" | "WARN", "description": str, "asset": str}``; Dagster-style
            ``check_name``/``asset_key`` are accepted too.

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
        try:
            failed, warnings, check_rows = _evaluate_checks(checks)
            if failed:
                raise dataset_error(
                    ReleaseError, "release",
                    f"{len(failed)} blocking check(s) failed: {'; '.join(failed)}. Nothing was "
                    f"published; latest still points to {self._latest_id() or '(none)'}; the "
                    f"unpublished release is kept for inspection in {partial}",
                    "fix the data or the checks named above and run the release again")
            info = self._publish(partial, check_rows, warnings)
        except BaseException as exc:
            self._unlock()
            self._reset()
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

    def _publish(self, partial: Path, check_rows: list[dict], warnings: list[str]) -> ReleaseInfo:
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
        files = _list_files(partial)
        hashes = {rel: _sha256_file(partial / rel) for rel in files}
        digest = self._content_digest(partial, files, hashes)

        current = latest_release(self.output_dir)
        previous_id = current.name if current is not None else None
        if current is not None and _manifest(current).get("content_digest") == digest:
            shutil.rmtree(partial)
            m = _manifest(current)
            return ReleaseInfo(current.name, current, True, digest,
                               _parse_iso(m.get("created")) or created, int(m.get("files", 0)),
                               int(m.get("bytes", 0)), previous_id=previous_id,
                               pruned=self._prune(current.name), datasets=sorted(self._datasets),
                               warnings=warnings, pointer=self._pointer_kind())

        release_id = self._explicit_id or f"{self._stamp}-{digest[:8]}"
        final = self.releases_dir / release_id
        n = 2
        while final.exists():  # same second and same content as a release that is not latest
            final = self.releases_dir / f"{self._stamp}-{digest[:8]}-{n}"
            n += 1
        release_id = final.name
        urls = self._url_base(release_id)

        catalog = self._catalog(release_id, created, hashes, partial, urls)
        _atomic_write_bytes(partial / CATALOG_FILE, (json.dumps(catalog, ensure_ascii=False, indent=1)
                                                     + "\n").encode("utf-8"))
        total = sum((partial / r).stat().st_size for r in files)
        unregistered = self._unregistered(files)
        manifest = {
            "release_id": release_id, "created": _iso(created), "content_digest": digest,
            "previous_release": previous_id, "files": len(files),
            "bytes": total, "tool": "citymodel", "tool_version": _tool_version(),
            "crs": self.crs, "vertical_crs": self.vertical_crs, "geoid_model": self.geoid_model,
            "license": self.license, "checks": check_rows, "warnings": warnings,
            "datasets": sorted(self._datasets),
        }
        _atomic_write_bytes(partial / MANIFEST_FILE,
                            (json.dumps(manifest, ensure_ascii=False, indent=1) + "\n").encode("utf-8"))
        page = self._index_html(release_id, created, hashes, partial, check_rows, warnings, urls)
        _atomic_write_bytes(partial / INDEX_FILE, page.encode("utf-8"))
        for name in (CATALOG_FILE, MANIFEST_FILE, INDEX_FILE):
            hashes[name] = _sha256_file(partial / name)
        _write_sha256sums(partial / SUMS_FILE, hashes)
        _fsync_dir(partial)

        os.rename(partial, final)
        _fsync_dir(self.releases_dir)
        try:
            pointer = self._switch_latest(release_id)
        except BaseException:
            os.rename(final, partial)  # back to unpublished; latest was not replaced
            raise
        pruned = self._prune(release_id)
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

    def _content_digest(self, partial: Path, files: list[str], hashes: dict[str, str]) -> str:
        excluded_folders = [d.folder for d in self._dists.values() if d.folder and not d.in_digest]
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
            "datasets": [asdict(self._datasets[k]) for k in sorted(self._datasets)],
            "distributions": [asdict(self._dists[k]) for k in sorted(self._dists)],
        }
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
        _atomic_write_bytes(out / LATEST_FILE, (release_id + "\n").encode("ascii"))
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
            src = self.releases_dir / rid
            doomed = self.releases_dir / f"{rid}{DELETING_SUFFIX}"
            os.rename(src, doomed)
            shutil.rmtree(doomed, ignore_errors=True)
            pruned.append(rid)
        return pruned

    # -- catalog -------------------------------------------------------------------------------
    def _lit(self, text: str) -> dict:
        return {"@value": text, "@language": self.language}

    def _catalog(self, release_id: str, created: datetime, hashes: dict[str, str], partial: Path,
                 urls: str) -> dict:
        when = {"@value": _iso(created), "@type": "xsd:dateTime"}
        lic = {"@id": self.license}
        attribution = self.publisher
        publisher = {"@id": self.publisher_uri or "#publisher", "@type": "foaf:Agent",
                     "foaf:name": self.publisher}
        crs_iris = [_crs_iri(c) for c in (self.crs,) if c]
        provenance_bits = [f"Built by citymodel {_tool_version()} (release {release_id})."]
        if self.crs:
            provenance_bits.append(f"Data files in {self.crs}"
                                   + (f" with heights in {self.vertical_crs}" if self.vertical_crs else "") + ".")
        if self.geoid_model:
            provenance_bits.append(f"3D Tiles heights are ellipsoidal (WGS84), converted with the "
                                   f"{self.geoid_model} geoid model.")
        provenance = " ".join(provenance_bits)
        datasets = []
        used = sorted({d.dataset for d in self._dists.values() if d.dataset})
        for ds_id in used:
            ds = self._datasets[ds_id]
            dists = []
            for n, d in enumerate(sorted((d for d in self._dists.values() if d.dataset == ds_id),
                                         key=lambda d: d.rel_path)):
                url = {"@id": urls + d.rel_path}
                media = d.media_type
                dist = {
                    "@id": f"#distribution-{ds_id}-{n + 1}",
                    "@type": "dcat:Distribution",
                    "dct:title": d.title,
                    "dcat:accessURL": url,
                    "dct:format": _format_node(d.format),
                    "dcat:byteSize": {"@value": str((partial / d.rel_path).stat().st_size),
                                      "@type": "xsd:nonNegativeInteger"},
                    "spdx:checksum": {"@type": "spdx:Checksum",
                                      "spdx:algorithm": {"@id": "spdx:checksumAlgorithm_sha256"},
                                      "spdx:checksumValue": {"@value": hashes[d.rel_path],
                                                             "@type": "xsd:hexBinary"}},
                    "dct:modified": when, "dct:issued": when,
                    "dct:license": {"@id": ds.license or self.license},
                    "dcatde:licenseAttributionByText": attribution,
                }
                if d.role != "service":
                    dist["dcat:downloadURL"] = url
                if media and media in _REGISTERED_MEDIA:
                    dist["dcat:mediaType"] = {"@id": IANA + media}
                if d.description:
                    dist["dct:description"] = self._lit(d.description)
                if d.conforms_to:
                    dist["dct:conformsTo"] = [{"@id": c} for c in d.conforms_to]
                if d.folder:
                    fsize = sum(p.stat().st_size for p in (partial / d.folder).rglob("*") if p.is_file())
                    nfiles = sum(1 for p in (partial / d.folder).rglob("*") if p.is_file())
                    dist["rdfs:comment"] = (f"Entry point of the folder {d.folder}/ ({nfiles} files, "
                                            f"{fsize} bytes); every file is listed in SHA256SUMS.")
                dists.append(dist)
            spatial = ds.spatial_wkt or self.spatial_wkt
            entry: dict[str, Any] = {
                "@id": f"#dataset-{ds_id}",
                "@type": "dcat:Dataset",
                "dct:identifier": ds_id,
                "dct:title": self._lit(ds.title),
                "dct:description": self._lit(ds.description or ds.title),
                "dct:license": {"@id": ds.license or self.license},
                "dct:modified": when, "dct:issued": when,
                "dct:publisher": {"@id": publisher["@id"]},
                "dcatde:licenseAttributionByText": attribution,
                "owl:versionInfo": release_id,
                "dcat:landingPage": {"@id": urls + INDEX_FILE},
                "dct:provenance": {"@type": "dct:ProvenanceStatement", "rdfs:label": self._lit_en(provenance)},
                "dcat:distribution": dists,
            }
            kws = list(dict.fromkeys(list(self.keywords) + list(ds.keywords)))
            if kws:
                entry["dcat:keyword"] = [self._lit(k) for k in kws]
            theme = ds.theme or self.theme
            if theme:
                entry["dcat:theme"] = {"@id": theme}
            if spatial:
                wkt = {"@value": spatial, "@type": "gsp:wktLiteral"}
                entry["dct:spatial"] = {"@type": "dct:Location", "dcat:bbox": wkt, "locn:geometry": wkt}
            geocoding = ds.political_geocoding_uri or self.political_geocoding_uri
            if geocoding:
                entry["dcatde:politicalGeocodingURI"] = {"@id": geocoding}
            if self.contributor_id:
                entry["dcatde:contributorID"] = {"@id": self.contributor_id}
            conforms = list(dict.fromkeys(crs_iris + list(ds.conforms_to)))
            if conforms:
                entry["dct:conformsTo"] = [{"@id": c} for c in conforms]
            if self.version_notes:
                entry["adms:versionNotes"] = self._lit(self.version_notes)
            datasets.append(entry)
        catalog = {
            "@id": "#catalog",
            "@type": "dcat:Catalog",
            "dct:title": self._lit(self.title),
            "dct:description": self._lit(self.description or self.title),
            "dct:publisher": {"@id": publisher["@id"]},
            "dct:license": lic,
            "dct:modified": when, "dct:issued": when,
            "dct:language": {"@id": "http://publications.europa.eu/resource/authority/language/"
                                    + LANGUAGES.get(self.language.split("-")[0].lower(), "MUL")},
            "owl:versionInfo": release_id,
            "foaf:homepage": {"@id": urls + INDEX_FILE},
            "dcat:dataset": [{"@id": d["@id"]} for d in datasets],
        }
        if self.spatial_wkt:
            wkt = {"@value": self.spatial_wkt, "@type": "gsp:wktLiteral"}
            catalog["dct:spatial"] = {"@type": "dct:Location", "dcat:bbox": wkt, "locn:geometry": wkt}
        return {"@context": dict(JSONLD_CONTEXT), "@graph": [catalog, publisher] + datasets}

    @staticmethod
    def _lit_en(text: str) -> dict:
        return {"@value": text, "@language": "en"}

    # -- index.html ----------------------------------------------------------------------------
    def _index_html(self, release_id: str, created: datetime, hashes: dict[str, str], partial: Path,
                    check_rows: list[dict], warnings: list[str], urls: str) -> str:
        return _render_index(self, release_id, created, hashes, partial, check_rows, warnings, urls)


# ---------------------------------------------------------------------------------------------
# finalize helpers


def _evaluate_checks(checks: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[str], list[dict]]:
    failed, warnings, rows = [], [], []
    for i, c in enumerate(checks or ()):
        if not isinstance(c, Mapping):
            raise dataset_error(ReleaseError, "release", f"check #{i} is a {type(c).__name__}, not a dict",
                                "pass checks as dicts with 'name' and 'passed'", record=str(i))
        name = str(c.get("name") or c.get("check_name") or f"check #{i}")
        asset = c.get("asset") or c.get("asset_key")
        if asset:
            name = f"{asset}:{name}"
        if "passed" not in c or not isinstance(c["passed"], (bool, int)):
            raise dataset_error(ReleaseError, "release", f"check {name!r} has no boolean 'passed'",
                                "give every check a 'passed': True/False", record=name)
        severity = str(c.get("severity", "ERROR")).upper()
        blocking = bool(c["blocking"]) if "blocking" in c else severity != "WARN"
        desc = str(c.get("description") or "")
        passed = bool(c["passed"])
        rows.append({"name": name, "passed": passed, "blocking": blocking, "description": desc})
        if not passed:
            label = f"{name} ({desc})" if desc else name
            (failed if blocking else warnings).append(label)
    return failed, warnings, rows


def _list_files(root: Path) -> list[str]:
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
            _check_rel(rel, None)
            out.append(rel)
    return sorted(out)


def _json_digest_without(path: Path, keys: Iterable[str]) -> str | None:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(obj, dict):
        for k in keys:
            obj.pop(k, None)
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


def _write_sha256sums(path: Path, hashes: Mapping[str, str]) -> Path:
    """``<sha256>  <path>`` per file, sorted by path (the format ``sha256sum -c`` reads)."""
    lines = "".join(f"{hashes[rel]}  {rel}\n" for rel in sorted(hashes) if rel != SUMS_FILE)
    return _atomic_write_bytes(path, lines.encode("utf-8"))


def _manifest(release: Path) -> dict:
    try:
        return json.loads((release / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _parse_iso(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def _crs_iri(crs: str) -> str:
    m = re.match(r"^EPSG:(\d+)$", crs.strip(), re.I)
    return f"{EPSG_IRI}{m.group(1)}" if m else crs


def _format_node(fmt: str | None) -> dict:
    if fmt and re.match(r"^[A-Z0-9_]+$", fmt) and fmt in {k[3] for k in _FILE_KINDS if k[3]}:
        return {"@id": FILE_TYPE + fmt}
    if fmt and fmt.startswith("http"):
        return {"@id": fmt}
    return {"@type": "dct:MediaTypeOrExtent", "rdfs:label": fmt or "file"}


def _check_wkt(wkt: str, dataset: str) -> None:
    import shapely

    try:
        g = shapely.from_wkt(wkt)
    except Exception as exc:  # shapely raises GEOSException
        raise dataset_error(ReleaseError, dataset, f"spatial extent {wkt[:60]!r} is not WKT ({exc})",
                            "give the extent as WKT in CRS84, e.g. from extent_wkt_crs84()") from exc
    minx, miny, maxx, maxy = g.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise dataset_error(ReleaseError, dataset,
                            f"spatial extent {wkt[:60]!r} is not in lon/lat (bounds {g.bounds})",
                            "transform it to CRS84 first, e.g. with extent_wkt_crs84(extent, crs)")


# ---------------------------------------------------------------------------------------------
# index.html

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2430;background:#f6f7f9}
header{background:#1f3b57;color:#fff;padding:1.2em 2em}header h1{margin:0 0 .2em;font-size:1.6em}
header p{margin:.1em 0;opacity:.9}main{max-width:1100px;margin:0 auto;padding:1em 2em 3em}
section{background:#fff;border:1px solid #dde2e8;border-radius:6px;padding:.6em 1.4em 1.2em;margin:1.2em 0}
h2{font-size:1.2em;border-bottom:1px solid #e3e7ec;padding-bottom:.3em}
table{border-collapse:collapse;width:100%;font-size:.92em}th,td{text-align:left;padding:.35em .5em;
border-bottom:1px solid #eceff3;vertical-align:top}th{background:#f0f3f6}
td.num{text-align:right;white-space:nowrap}code,pre{font-family:ui-monospace,Consolas,monospace;font-size:.88em}
pre{background:#f3f5f8;border:1px solid #e1e5ea;border-radius:4px;padding:.8em;overflow:auto}
.badge{display:inline-block;padding:.15em .7em;border-radius:1em;font-weight:600;color:#fff}
.pass{background:#2e7d32}.warn{background:#b26a00}.fail{background:#c62828}.none{background:#6b7785}
.muted{color:#6b7785}img.map{max-width:100%;border:1px solid #dde2e8;border-radius:4px}
a{color:#1f5f99}
"""


def _render_index(rb: ReleaseBuilder, release_id: str, created: datetime, hashes: Mapping[str, str],
                  partial: Path, check_rows: list[dict], warnings: list[str], urls: str) -> str:
    e = html.escape
    parts: list[str] = []
    parts.append(f"<!DOCTYPE html>\n<html lang='{e(rb.language)}'><head><meta charset='utf-8'>"
                 f"<meta name='viewport' content='width=device-width,initial-scale=1'>"
                 f"<title>{e(rb.title)}: release {e(release_id)}</title><style>{_CSS}</style></head><body>")
    parts.append(f"<header><h1>{e(rb.title)}</h1><p>Release <code>{e(release_id)}</code> of "
                 f"{e(_iso(created))} &middot; published by {e(rb.publisher)} &middot; licence "
                 f"<a style='color:#fff' href='{e(rb.license)}'>{e(_license_label(rb.license))}</a></p>"
                 f"</header><main>")
    if rb.description:
        parts.append(f"<p>{e(rb.description)}</p>")

    # --- what is here
    parts.append("<section><h2>What is here</h2><p>Every file of this release is listed in "
                 "<a href='SHA256SUMS'>SHA256SUMS</a> and described in the DCAT-AP catalog "
                 "<a href='catalog.jsonld'>catalog.jsonld</a> (JSON-LD; harvestable by open data portals). "
                 "The 3D Tiles under <code>tiles/</code> are for web viewers, the files under "
                 "<code>data/</code> for GIS and CAD software.</p><table><tr><th>Dataset</th><th>File</th>"
                 "<th>Format</th><th class='num'>Size</th><th>Licence</th><th>SHA-256</th></tr>")
    by_ds: dict[str, list[DistributionEntry]] = {}
    for d in rb._dists.values():
        if d.dataset:
            by_ds.setdefault(d.dataset, []).append(d)
    for ds_id in sorted(by_ds):
        ds = rb._datasets[ds_id]
        dists = sorted(by_ds[ds_id], key=lambda d: d.rel_path)
        for i, d in enumerate(dists):
            size = (partial / d.rel_path).stat().st_size
            extra = ""
            if d.folder:
                files = [p for p in (partial / d.folder).rglob("*") if p.is_file()]
                size = sum(p.stat().st_size for p in files)
                extra = f" <span class='muted'>(folder, {len(files)} files)</span>"
            head = (f"<td rowspan='{len(dists)}'><b>{e(ds.title)}</b><br><span class='muted'>"
                    f"{e(ds.description)}</span></td>") if i == 0 else ""
            lic = ds.license or rb.license
            parts.append(f"<tr>{head}<td><a href='{e(d.rel_path)}'>{e(d.rel_path)}</a>{extra}</td>"
                         f"<td>{e(_format_label(d))}</td><td class='num'>{_human_size(size)}</td>"
                         f"<td><a href='{e(lic)}'>{e(_license_label(lic))}</a></td>"
                         f"<td><code title='{hashes.get(d.rel_path, '')}'>{hashes.get(d.rel_path, '')[:12]}…</code></td></tr>")
    parts.append("</table></section>")

    # --- viewers
    tileset = "tiles/buildings/tileset.json"
    url = (urls + tileset) if urls else tileset
    latest_url = (f"{rb.base_url}{LATEST_LINK}/{tileset}") if rb.base_url else None
    lon, lat = _center(rb)
    cesium = (
        "// CesiumJS (https://cesium.com/platform/cesiumjs/): 3D Tiles 1.1 with per-building metadata\n"
        "const viewer = new Cesium.Viewer(\"cesiumContainer\");\n"
        f"const tileset = await Cesium.Cesium3DTileset.fromUrl(\"{url}\");\n"
        "viewer.scene.primitives.add(tileset);\n"
        "await viewer.zoomTo(tileset);\n"
        "// show the attributes of a clicked building\n"
        "viewer.screenSpaceEventHandler.setInputAction((click) => {\n"
        "  const f = viewer.scene.pick(click.position);\n"
        "  if (f instanceof Cesium.Cesium3DTileFeature) {\n"
        "    console.log(Object.fromEntries(f.getPropertyIds().map((k) => [k, f.getProperty(k)])));\n"
        "  }\n"
        "}, Cesium.ScreenSpaceEventType.LEFT_CLICK);\n")
    deck = (
        "// deck.gl (https://deck.gl) with loaders.gl's 3D Tiles loader\n"
        "import {Deck} from '@deck.gl/core';\n"
        "import {Tile3DLayer} from '@deck.gl/geo-layers';\n"
        "import {Tiles3DLoader} from '@loaders.gl/3d-tiles';\n\n"
        "new Deck({\n"
        f"  initialViewState: {{longitude: {lon:.5f}, latitude: {lat:.5f}, zoom: 15, pitch: 50}},\n"
        "  controller: true,\n"
        "  layers: [new Tile3DLayer({\n"
        "    id: 'buildings',\n"
        f"    data: '{url}',\n"
        "    loader: Tiles3DLoader,\n"
        "    pickable: true\n"
        "  })]\n"
        "});\n")
    parts.append("<section><h2>View the 3D model</h2><p>Load <code>tiles/buildings/tileset.json</code> "
                 "(3D Tiles 1.1, glTF content) in any 3D Tiles viewer. Serve the release over HTTP (e.g. "
                 "<code>python -m http.server</code> in this folder); browsers do not load tiles from "
                 "<code>file://</code>.")
    if latest_url:
        parts.append(f" The address <code>{e(latest_url)}</code> always points to the newest release; "
                     f"the address below is fixed to this one.")
    parts.append(f"</p><h3>CesiumJS</h3><pre>{e(cesium)}</pre><h3>deck.gl</h3><pre>{e(deck)}</pre></section>")

    # --- tile index map
    ti = partial / TILE_INDEX_PATH
    if ti.is_file():
        parts.append("<section><h2>Tile index</h2><p>The model is cut into 1&nbsp;km tiles. "
                     f"<a href='{TILE_INDEX_PATH}'>{TILE_INDEX_PATH}</a> (GeoJSON, WGS84) holds one polygon "
                     "per tile with links to its files.</p>")
        try:
            png = _tile_index_png(json.loads(ti.read_text(encoding="utf-8")), rb.title)
            parts.append(f"<img class='map' alt='Map of the tiles' src='data:image/png;base64,"
                         f"{base64.b64encode(png).decode('ascii')}'>")
        except Exception as exc:  # a broken tile index must not stop the release page
            parts.append(f"<p class='muted'>The tile index could not be drawn: {e(str(exc))}</p>")
        parts.append("</section>")

    # --- quality
    parts.append("<section><h2>Quality</h2>")
    report_path = partial / QUALITY_REPORT_PATH
    if report_path.is_file():
        try:
            report = json.loads(report_path.read_text(encoding="utf-8"))
        except ValueError:
            report = {}
        status = str(report.get("status", "unknown"))
        summary = report.get("summary") or {}
        css = status if status in ("pass", "warn", "fail") else "none"
        parts.append(f"<p>Quality report status: <span class='badge {css}'>{e(status)}</span> &middot; "
                     f"{summary.get('entries', 0)} checked datasets/tiles ({summary.get('pass', 0)} pass, "
                     f"{summary.get('warn', 0)} warn, {summary.get('fail', 0)} fail), "
                     f"{summary.get('quarantined', 0)} quarantined records. Full report: "
                     f"<a href='quality/report.html'>quality/report.html</a>, "
                     f"<a href='quality/report.json'>report.json</a>.</p>")
        bf = summary.get("blocking_failures") or []
        if bf:
            parts.append("<p>Blocking failures:</p><ul>" + "".join(f"<li>{e(str(x))}</li>" for x in bf) + "</ul>")
        else:
            parts.append("<p>No blocking failures.</p>")
    else:
        parts.append("<p class='muted'>No quality report in this release.</p>")
    if check_rows:
        parts.append("<p>Checks run before publishing:</p><table><tr><th>Check</th><th>Result</th>"
                     "<th>Blocking</th><th>Description</th></tr>")
        for r in check_rows:
            res = "pass" if r["passed"] else ("fail" if r["blocking"] else "warn")
            parts.append(f"<tr><td>{e(r['name'])}</td><td><span class='badge {res}'>{res}</span></td>"
                         f"<td>{'yes' if r['blocking'] else 'no'}</td><td>{e(r['description'])}</td></tr>")
        parts.append("</table>")
    parts.append("</section>")

    # --- CRS notes
    parts.append("<section><h2>Coordinate reference systems and heights</h2><ul>")
    parts.append(f"<li>Files under <code>data/</code>: <b>{e(rb.crs)}</b>"
                 + (f", heights in <b>{e(rb.vertical_crs)}</b> (above sea level)" if rb.vertical_crs else "")
                 + ".</li>")
    parts.append("<li>3D Tiles under <code>tiles/</code>: Earth-centred coordinates (EPSG:4978) with "
                 "ellipsoidal heights (WGS84)"
                 + (f"; heights were converted with the <b>{e(rb.geoid_model)}</b> geoid model, so they "
                    f"differ from the sea-level heights of the data files by the geoid undulation"
                    if rb.geoid_model else "") + ".</li>")
    parts.append(f"<li>Catalog extents (<code>dcat:bbox</code>) and <code>{TILE_INDEX_PATH}</code>: "
                 "longitude/latitude, WGS84 (CRS84).</li></ul></section>")

    # --- verify
    parts.append("<section><h2>Verify your download</h2><p>In the release folder:</p>"
                 "<pre>sha256sum -c SHA256SUMS</pre><p>On macOS <code>shasum -a 256 -c SHA256SUMS</code>; "
                 "on Windows PowerShell <code>Get-FileHash -Algorithm SHA256 data\\buildings.gpkg</code> "
                 "and compare with the line in SHA256SUMS. The catalog carries the same checksums "
                 "(<code>spdx:checksum</code>) and sizes (<code>dcat:byteSize</code>).</p></section>")
    parts.append(f"<p class='muted'>Made by citymodel {e(_tool_version())} &middot; release "
                 f"{e(release_id)} &middot; attribution: {e(rb.publisher)}</p></main></body></html>\n")
    return "".join(parts)


def _license_label(iri: str) -> str:
    known = {
        "http://dcat-ap.de/def/licenses/dl-by-de/2.0": "Datenlizenz Deutschland – Namensnennung – 2.0",
        "http://dcat-ap.de/def/licenses/dl-zero-de/2.0": "Datenlizenz Deutschland – Zero – 2.0",
        "http://dcat-ap.de/def/licenses/cc-by/4.0": "CC BY 4.0",
        "http://dcat-ap.de/def/licenses/cc-zero": "CC0",
    }
    return known.get(iri, iri.rstrip("/").rsplit("/", 1)[-1])


def _format_label(d: DistributionEntry) -> str:
    _, _, _, label, _ = _kind(d.rel_path)
    return label if label else (d.format or "")


def _center(rb: ReleaseBuilder) -> tuple[float, float]:
    import shapely

    wkt = rb.spatial_wkt or next((d.spatial_wkt for d in rb._datasets.values() if d.spatial_wkt), None)
    if not wkt:
        return 0.0, 0.0
    c = shapely.from_wkt(wkt).centroid
    return float(c.x), float(c.y)


def _tile_index_png(geojson: Mapping, title: str) -> bytes:
    """A map picture of the tile index (lon/lat, aspect corrected), as PNG bytes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    import shapely.geometry

    feats = list(geojson.get("features") or [])
    if not feats:
        raise ValueError("the tile index has no features")
    fig = Figure(figsize=(7, 6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    lats = []
    for f in feats:
        g = shapely.geometry.shape(f["geometry"])
        polys = getattr(g, "geoms", [g])
        for p in polys:
            x, y = p.exterior.xy
            ax.fill(x, y, facecolor="#cfe0f1", edgecolor="#1f3b57", linewidth=1.2)
        c = g.representative_point()
        lats.append(c.y)
        label = str((f.get("properties") or {}).get("tile_id", f.get("id", "")))
        ax.text(c.x, c.y, label, ha="center", va="center", fontsize=8, color="#1f3b57")
    mean_lat = sum(lats) / len(lats)
    ax.set_aspect(1.0 / max(math.cos(math.radians(mean_lat)), 1e-6))
    ax.set_xlabel("longitude (°E)")
    ax.set_ylabel("latitude (°N)")
    ax.set_title(f"{title}: {len(feats)} tiles")
    ax.ticklabel_format(useOffset=False)
    ax.grid(True, color="#dde2e8", linewidth=0.5)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------
# Open datasets


def buildings_csv(frame, path: str | os.PathLike | None = None, *, wkt: bool = False,
                  wkt_precision: int = 3) -> str | Path:
    """Attributes of ``frame`` as CSV (UTF-8, ``,``-separated, ``\\n`` line ends, header row).

    The geometry column is dropped, or with ``wkt=True`` written as ``geometry_wkt`` (in the
    frame's CRS, rounded to ``wkt_precision`` decimals). List, dict and array values become JSON
    text. With ``path`` the file is written atomically and its path returned, else the text.
    """
    import numpy as np
    import pandas as pd

    df = pd.DataFrame(frame).copy()
    geom_col = getattr(frame, "_geometry_column_name", None) if hasattr(frame, "geometry") else None
    if geom_col is not None and geom_col in df.columns:
        geoms = df.pop(geom_col)
        if wkt:
            import shapely
            df["geometry_wkt"] = shapely.to_wkt(np.asarray(geoms, dtype=object),
                                                rounding_precision=wkt_precision, trim=True)
    for col in df.columns:
        if df[col].dtype == object:
            df[col] = [json.dumps(v.tolist() if isinstance(v, np.ndarray) else v, ensure_ascii=False,
                                  default=str)
                       if isinstance(v, (list, dict, tuple, np.ndarray)) else v for v in df[col]]
    text = df.to_csv(index=False, lineterminator="\n")
    if path is None:
        return text
    return _atomic_write_bytes(Path(path), text.encode("utf-8"))


def tile_index(tiles: Iterable[Tile | str], links: Mapping[str, Mapping[str, str]]
               | Callable[[Tile], Mapping[str, str]] | None = None, *, crs: str = "EPSG:25832",
               precision: int = 7, segment_m: float = 100.0) -> dict:
    """GeoJSON FeatureCollection (RFC 7946, lon/lat WGS84): one polygon per tile.

    Parameters
    ----------
    tiles : iterable of Tile or tile id
    links : mapping tile id -> {name: relative path or URL}, or callable(Tile) -> mapping
        Files of the tile, e.g. ``{"cityjsonseq": "data/tiles/32_682_5645.city.jsonl"}``;
        stored in ``properties.links``.
    crs : str
        The processing CRS of the tile grid.
    precision : int
        Decimals of lon/lat (7: about 1 cm).
    segment_m : float
        Tile edges are densified to this spacing before the transformation.
    """
    import numpy as np
    import shapely
    from pyproj import Transformer
    from shapely.geometry.polygon import orient

    tr = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    feats = []
    all_x, all_y = [], []
    for t in tiles:
        tile = parse_tile_id(t) if isinstance(t, str) else t
        minx, miny, maxx, maxy = tile.bounds
        ring = shapely.segmentize(shapely.box(minx, miny, maxx, maxy), segment_m)
        xy = shapely.get_coordinates(ring)
        lon, lat = tr.transform(xy[:, 0], xy[:, 1])
        poly = orient(shapely.Polygon(np.column_stack([np.round(lon, precision), np.round(lat, precision)])), 1.0)
        all_x.extend(lon)
        all_y.extend(lat)
        if links is None:
            lk: Mapping[str, str] = {}
        elif callable(links):
            lk = links(tile)
        else:
            lk = links.get(tile.id, {})
        feats.append({
            "type": "Feature", "id": tile.id,
            "geometry": shapely.geometry.mapping(poly),
            "properties": {"tile_id": tile.id, "crs": crs, "minx": minx, "miny": miny,
                           "maxx": maxx, "maxy": maxy, "links": dict(lk)},
        })
    for f in feats:  # mapping() gives tuples; make it plain JSON lists
        f["geometry"] = json.loads(json.dumps(f["geometry"]))
    out: dict[str, Any] = {"type": "FeatureCollection", "features": feats}
    if feats:
        out["bbox"] = [round(min(all_x), precision), round(min(all_y), precision),
                       round(max(all_x), precision), round(max(all_y), precision)]
    return out


def _stable_last_change(last_change: datetime | str | None) -> str:
    if isinstance(last_change, datetime):
        return last_change.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    if isinstance(last_change, str):
        return last_change
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch and epoch.isdigit():
        return datetime.fromtimestamp(int(epoch), timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return "2000-01-01T00:00:00.000Z"


def write_geopackage(frame, path: str | os.PathLike, *, layer: str | None = None,
                     last_change: datetime | str | None = None) -> Path:
    """Write a GeoDataFrame as a one-layer GeoPackage, atomically (temporary file, then rename).

    The layer is named ``layer`` or the file stem (``buildings`` for ``buildings.gpkg``). The
    GeoPackage ``last_change`` timestamp is pinned (``last_change``, else ``SOURCE_DATE_EPOCH``,
    else 2000-01-01) so that the same data gives the same bytes, which keeps unchanged releases
    from being republished.
    """
    import pyogrio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    name = layer or path.name.split(".")[0]
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.gpkg")
    previous = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": _stable_last_change(last_change)})
    try:
        if tmp.exists():
            tmp.unlink()
        frame.to_file(tmp, driver="GPKG", layer=name, engine="pyogrio")
        os.replace(tmp, path)
    except Exception as exc:
        raise dataset_error(ReleaseError, path.name, f"writing the GeoPackage {path} failed "
                            f"({type(exc).__name__}: {exc})",
                            "make the columns GeoPackage types (no lists/dicts: JSON-encode them first)") from exc
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": previous})
        for p in (tmp, Path(f"{tmp}-journal"), Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            if p.exists():
                p.unlink()
    return path


def write_geoparquet(frame, path: str | os.PathLike, **kwargs: Any) -> Path:
    """Write a GeoDataFrame as GeoParquet, atomically (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.parquet")
    try:
        frame.to_parquet(tmp, **kwargs)
        os.replace(tmp, path)
    except Exception as exc:
        raise dataset_error(ReleaseError, path.name, f"writing the GeoParquet {path} failed "
                            f"({type(exc).__name__}: {exc})",
                            "give every column one Arrow type (e.g. JSON-encode mixed list/dict values)") from exc
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
