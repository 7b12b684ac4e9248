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

Modules: :mod:`.builder` (:class:`ReleaseBuilder`: begin, register, finalize, switch of
``latest``, pruning), :mod:`.layout` (folder layout, where ``latest`` points, listing releases),
:mod:`.dcat` (``catalog.jsonld``), :mod:`.checksums` (``SHA256SUMS``), :mod:`.checks` (blocking
checks), :mod:`.index_page` (``index.html``), :mod:`.tileindex` (``data/tile_index.geojson``),
:mod:`.formats` (media types and formats by file name), :mod:`.provenance` (time stamps, tool
version). The dataset writers (:func:`write_geopackage`, :func:`write_geoparquet`,
:func:`buildings_csv`) live in :mod:`citymodel.geofiles` and are re-exported here.

Nothing here imports dagster.
"""

from ..errors import ReleaseError
from ..geofiles import buildings_csv, write_geopackage, write_geoparquet
from .builder import ReleaseBuilder, ReleaseInfo
from .checks import checks_from_quality_report
from .checksums import read_sha256sums
from .dcat import DEFAULT_LICENSE, DatasetEntry, DistributionEntry, extent_wkt_crs84
from .formats import SPECS
from .layout import (CATALOG_FILE, INDEX_FILE, LATEST_FILE, LATEST_LINK, MANIFEST_FILE, QUALITY_REPORT_PATH,
                     RELEASES_DIR, RESERVED_FILES, SUMS_FILE, TILE_INDEX_PATH, latest_release, list_releases)
from .tileindex import tile_index

__all__ = [
    "ReleaseBuilder", "ReleaseInfo", "ReleaseError", "DatasetEntry", "DistributionEntry",
    "latest_release", "list_releases", "read_sha256sums", "checks_from_quality_report",
    "buildings_csv", "tile_index", "write_geopackage", "write_geoparquet", "extent_wkt_crs84",
    "DEFAULT_LICENSE", "RESERVED_FILES", "TILE_INDEX_PATH", "SPECS",
    "CATALOG_FILE", "INDEX_FILE", "SUMS_FILE", "MANIFEST_FILE", "QUALITY_REPORT_PATH",
    "LATEST_LINK", "LATEST_FILE", "RELEASES_DIR",
]
