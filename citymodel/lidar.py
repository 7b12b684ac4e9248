"""LiDAR staging: LAS/LAZ reading, CRS handling, tile statistics, DTM and height above ground.

PDAL is not available on the target machines; this module uses laspy + lazrs, numpy and scipy.

LAZ backend
-----------
Headers and :func:`iter_points` use ``laspy.LazBackend.Lazrs``, the **single-threaded** lazrs
backend (:data:`LAZ_BACKEND`); so does :func:`stage_tile` by default. :func:`stage_tile` can decode
its sources and compress its output with the **parallel** backend (:data:`LAZ_PARALLEL_BACKEND`,
lazrs on rayon): ``parallel_laz=True`` or ``CITYMODEL_LAZ_PARALLEL=1``. It is opt-in because on the
shared 2-core machine (load 3-4) it was *slower* than single-threaded (12 points/m² tile: 30.6 s
against 21.3 s; oversubscription), and a city's tiles are staged one per process anyway, which
keeps the cores busy. It pays on an idle machine staging one tile at a time.

Fork safety (the choice, measured in ``benchmarks/bench_lidar.py``): the parallel backend runs on
rayon's *global* thread pool, which is started on first use and **stays alive for the life of the
process** (it cannot be shut down from Python). That is harmless for the process itself and for
children started with fork + exec (``subprocess``, our py3dtiles call, dagster's multiprocess
executor, which spawns), because exec replaces the whole image. It is not harmless for a child
that is forked *without* exec (``multiprocessing`` with the ``fork`` start method) and then uses
rayon itself: the child inherits a pool whose threads do not exist and deadlocks (the py3dtiles
trap in TOOLCHAIN.md). So a process that was created by ``os.fork()`` (detected with
``os.register_at_fork``) never uses the parallel backend and stages single-threaded; so does every
process where ``CITYMODEL_LAZ_PARALLEL=0`` is set or that has one CPU. The Python helper threads of
:func:`stage_tile` (read-ahead, write-behind) are always joined before it returns, also on errors.

CRS rules (:func:`resolve_las_crs`)
-----------------------------------
* A CRS record in the file that parses wins. A configured override that differs from it is an
  error (:class:`~citymodel.errors.CRSError` naming both), not a warning.
* No CRS record: the configured override (``sources.lidar.crs``); without one, ``CRSError``.
* A CRS record that is present but cannot be understood (broken WKT, GeoTIFF keys of a
  user-defined projection): ``CRSError`` unless an override is configured; then the override is
  used and the resolution says so (``source='override'`` and a ``note``).
* Only the horizontal part is compared and transformed. Heights stay as they are, converted to
  metres where the file's CRS is in feet (the vertical axis unit if the CRS has one, else the
  horizontal unit, which is how US state-plane LiDAR stores heights).
* A geographic CRS (EPSG:4326) is accepted and always transformed to the processing CRS, which must
  be projected and in metres; a geographic file whose coordinates are not valid longitudes and
  latitudes is rejected.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import queue
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import laspy
import numpy as np
import pyproj
from laspy.vlrs.known import GeoKeyDirectoryVlr, WktCoordinateSystemVlr
from scipy import ndimage

from .errors import ConfigError, CRSError, SourceDataError, dataset_error
from .raster import write_geotiff
from .tiles import Tile

log = logging.getLogger(__name__)

LAZ_BACKEND = laspy.LazBackend.Lazrs
"""Single-threaded lazrs: headers, :func:`iter_points`, and :func:`stage_tile` where the parallel
backend is not allowed (see module doc)."""
LAZ_PARALLEL_BACKEND = laspy.LazBackend.LazrsParallel
"""lazrs on rayon's global thread pool: :func:`stage_tile` decoding and compression (module doc)."""
PARALLEL_ENV = "CITYMODEL_LAZ_PARALLEL"
IN_MEMORY_MAX_POINTS = 30_000_000
"""Tiles with at most this many candidate points (sum of the header counts of the files that touch
tile + halo) are kept in memory between the passes (about 34 bytes/point), larger ones spooled."""

_FORKED_CHILD = False


def _mark_forked_child() -> None:
    global _FORKED_CHILD
    _FORKED_CHILD = True


os.register_at_fork(after_in_child=_mark_forked_child)


def staging_laz_backend(parallel: bool | None = None) -> laspy.LazBackend:
    """The lazrs backend :func:`stage_tile` uses in this process.

    Parameters
    ----------
    parallel : bool, optional
        ``True`` asks for the parallel backend, ``False`` forces the single-threaded one; ``None``
        (default) follows ``CITYMODEL_LAZ_PARALLEL`` (``1``: parallel; unset or other: single-threaded).
        The parallel backend is never used in a process that was forked without exec or on one CPU.
    """
    if parallel is None:
        parallel = os.environ.get(PARALLEL_ENV, "0").strip() == "1"
    if not parallel or _FORKED_CHILD:
        return LAZ_BACKEND
    if (os.cpu_count() or 1) < 2 or not LAZ_PARALLEL_BACKEND.is_available():
        return LAZ_BACKEND
    return LAZ_PARALLEL_BACKEND

CRS_CONFIG_KEY = "sources.lidar.crs"
HAG_DIMENSION = "HeightAboveGround"
DTM_NODATA = -9999.0
COVERAGE_CELL_M = 2.0
OUTLIER_HAG_HIGH_M = 60.0
OUTLIER_HAG_LOW_M = -2.0
GROUND_CLASS = 2
_ALL = np.zeros(0, dtype=np.bool_)        # "no mask" for the compiled loops


def _kernels():
    """The compiled loops (:mod:`citymodel._lidar_kernels`), imported when staging first needs
    them: numba costs ~0.3 s to import, which a code location that only lists assets should not pay."""
    from . import _lidar_kernels
    return _lidar_kernels


def _bit_layout(point_format_id: int) -> tuple[str, int, int, int, int]:
    """Where a point format keeps class and returns: ``(class byte field, class mask,
    return-number mask, number-of-returns shift, number-of-returns mask)`` (LAS 1.4 R15, tables
    7-8 and 15: formats 0-5 pack 5 class bits with 3 flags and 3 + 3 return bits; 6-10 have a class
    byte and 4 + 4 return bits)."""
    if point_format_id >= 6:
        return "classification", 0xFF, 0x0F, 4, 0x0F
    return "raw_classification", 0x1F, 0x07, 3, 0x07
_SPLIT_SOLVE_CELLS = 20_000               # DTM gap systems from this size are solved as two halves

POINT_DTYPE = np.dtype([
    ("x", "f8"), ("y", "f8"), ("z", "f8"), ("classification", "u1"), ("intensity", "u2"),
    ("return_number", "u1"), ("number_of_returns", "u1"),
])
"""dtype of the chunks yielded by :func:`iter_points` (x, y in the processing CRS, z in metres)."""

Bounds = tuple[float, float, float, float]

# errors that laspy / lazrs / numpy raise on corrupt or truncated input
_READ_ERRORS: tuple[type[BaseException], ...] = (laspy.errors.LaspyException, RuntimeError, ValueError,
                                                  OSError, EOFError, IndexError, KeyError)


# ---------------------------------------------------------------------------------------------
# CRS
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CrsResolution:
    """The CRS that applies to one LAS/LAZ file and where it came from.

    Attributes
    ----------
    crs : pyproj.CRS
    source : str
        ``'file-wkt'``, ``'file-geotiff'`` (the file's own record) or ``'override'`` (configuration).
    note : str
        Human-readable remark (e.g. why the override was used); empty when there is nothing to say.
    """

    crs: pyproj.CRS
    source: str
    note: str = ""


def _horizontal(crs: pyproj.CRS) -> pyproj.CRS:
    if crs.is_compound:
        for sub in crs.sub_crs_list:
            if not sub.is_vertical:
                return sub
    return crs


def same_horizontal_crs(a: pyproj.CRS, b: pyproj.CRS) -> bool:
    """True when the horizontal parts of ``a`` and ``b`` are the same CRS.

    Equivalence as PROJ judges it (names ignored, axis order of geographic CRSs ignored), or the
    same EPSG code identified with at least 70 % confidence (ESRI-flavoured WKT from LAS files).
    """
    ha, hb = _horizontal(a), _horizontal(b)
    if ha.equals(hb, ignore_axis_order=True):
        return True
    ea, eb = ha.to_epsg(min_confidence=70), hb.to_epsg(min_confidence=70)
    return ea is not None and ea == eb


def _crs_label(crs: pyproj.CRS) -> str:
    code = crs.to_epsg(min_confidence=70)
    return f"EPSG:{code} ({crs.name})" if code else f"'{crs.name}'"


def _parse_override(crs_override: str | pyproj.CRS | None, dataset: str) -> pyproj.CRS | None:
    if crs_override is None or isinstance(crs_override, pyproj.CRS):
        return crs_override
    try:
        return pyproj.CRS.from_user_input(crs_override)
    except pyproj.exceptions.CRSError as exc:
        raise dataset_error(ConfigError, dataset, f"the configured CRS '{crs_override}' is not a CRS ({exc})",
                            f"set {CRS_CONFIG_KEY} to an EPSG code such as 'EPSG:25832'") from exc


def _processing_crs(processing_crs: str | pyproj.CRS, dataset: str) -> pyproj.CRS:
    try:
        crs = pyproj.CRS.from_user_input(processing_crs)
    except pyproj.exceptions.CRSError as exc:
        raise dataset_error(ConfigError, dataset, f"processing CRS '{processing_crs}' is not a CRS ({exc})",
                            "set processing_crs to a projected CRS in metres, e.g. EPSG:25832") from exc
    h = _horizontal(crs)
    if not h.is_projected or abs(h.axis_info[0].unit_conversion_factor - 1.0) > 1e-12:
        raise dataset_error(CRSError, dataset, f"processing CRS {_crs_label(crs)} is not a projected CRS in "
                            "metres (geographic coordinates are only accepted as a source, with reprojection)",
                            "set processing_crs to a projected CRS in metres, e.g. EPSG:25832")
    return crs


def _file_crs_records(header: laspy.LasHeader) -> list[tuple[str, pyproj.CRS | None, str]]:
    """(kind, parsed CRS or None, problem) for every CRS record of the header, WKT first."""
    records = list(header.vlrs.get_by_id("LASF_Projection"))
    if header.evlrs is not None:
        records.extend(header.evlrs.get_by_id("LASF_Projection"))
    out: list[tuple[str, pyproj.CRS | None, str]] = []
    for rec in records:
        if isinstance(rec, WktCoordinateSystemVlr):
            kind = "file-wkt"
        elif isinstance(rec, GeoKeyDirectoryVlr):
            kind = "file-geotiff"
        else:
            continue
        try:
            crs = rec.parse_crs()
            problem = "" if crs is not None else "record present but not understood"
        except Exception as exc:  # pyproj.CRSError, laspy errors on malformed keys
            crs, problem = None, f"record present but unparsable ({type(exc).__name__}: {exc})"
        out.append((kind, crs, problem))
    out.sort(key=lambda r: 0 if r[0] == "file-wkt" else 1)
    return out


def resolve_las_crs(path: str | os.PathLike, dataset: str, crs_override: str | pyproj.CRS | None = None,
                    header: laspy.LasHeader | None = None) -> CrsResolution:
    """Decide the CRS of one LAS/LAZ file (rules in the module docstring).

    Parameters
    ----------
    path : path-like
        The LAS/LAZ file (only its header is read; pass ``header`` to skip even that).
    dataset : str
        Dataset name for error messages (the lidar role's dataset id).
    crs_override : str or pyproj.CRS, optional
        The configured ``sources.lidar.crs``.

    Raises
    ------
    CRSError
        No usable CRS and no override, or the file's CRS differs from the override.
    SourceDataError
        The file is not LAS/LAZ or cannot be opened.
    """
    path = Path(path)
    override = _parse_override(crs_override, dataset)
    if header is None:
        header = _open_header(path, dataset)
    records = _file_crs_records(header)
    parsed = [(kind, crs) for kind, crs, _ in records if crs is not None]
    problems = [f"{kind}: {p}" for kind, crs, p in records if crs is None]
    if parsed:
        kind, crs = parsed[0]
        if override is not None and not same_horizontal_crs(crs, override):
            raise dataset_error(
                CRSError, dataset,
                f"the file's CRS record says {_crs_label(crs)} but the configuration says {_crs_label(override)}",
                f"remove or correct {CRS_CONFIG_KEY} (it only applies to files without a CRS record), "
                "or repair the file's CRS record", record=str(path))
        note = f"ignored unusable record(s): {'; '.join(problems)}" if problems else ""
        return CrsResolution(crs, kind, note)
    if override is not None:
        if problems:
            note = (f"CRS record(s) could not be used ({'; '.join(problems)}); "
                    f"used configured {CRS_CONFIG_KEY} = {_crs_label(override)}")
            log.warning("dataset '%s', file '%s': %s", dataset, path, note)
        else:
            note = f"file has no CRS record; used configured {CRS_CONFIG_KEY} = {_crs_label(override)}"
        return CrsResolution(override, "override", note)
    if problems:
        raise dataset_error(CRSError, dataset, f"the file's CRS record cannot be used ({'; '.join(problems)})",
                            f"set {CRS_CONFIG_KEY} in the deployment file to the file's CRS "
                            "(e.g. 'EPSG:25832'), or repair the file's CRS record", record=str(path))
    raise dataset_error(CRSError, dataset, "the file has no CRS record and no CRS is configured for it",
                        f"set {CRS_CONFIG_KEY} in the deployment file to the CRS of the files "
                        "(e.g. 'EPSG:25832' for Thuringia, 'EPSG:28992' for AHN)", record=str(path))


def read_las_crs(path: str | os.PathLike, dataset: str,
                 crs_override: str | pyproj.CRS | None = None) -> pyproj.CRS:
    """The CRS of a LAS/LAZ file, following the project's CRS rules (see :func:`resolve_las_crs`)."""
    return resolve_las_crs(path, dataset, crs_override).crs


def _z_factor_to_m(crs: pyproj.CRS) -> float:
    """Factor that turns the file's heights into metres."""
    if crs.is_compound:
        for sub in crs.sub_crs_list:
            if sub.is_vertical:
                return float(sub.axis_info[0].unit_conversion_factor)
    h = _horizontal(crs)
    if h.is_projected and h.axis_info:
        return float(h.axis_info[0].unit_conversion_factor)
    return 1.0


# ---------------------------------------------------------------------------------------------
# header scan
# ---------------------------------------------------------------------------------------------
def _open_header(path: Path, dataset: str) -> laspy.LasHeader:
    if not path.is_file():
        raise dataset_error(SourceDataError, dataset, f"file '{path}' does not exist",
                            "re-run the download of the lidar source (raw stage)", record=str(path))
    try:
        with laspy.open(path, laz_backend=LAZ_BACKEND) as reader:
            return reader.header
    except _READ_ERRORS as exc:
        raise _corrupt(path, dataset, exc) from exc


def _corrupt(path: Path, dataset: str, exc: BaseException) -> SourceDataError:
    return dataset_error(SourceDataError, dataset,
                         f"'{path.name}' is not a readable LAS/LAZ file ({type(exc).__name__}: {exc})",
                         "the file is corrupt or truncated: delete it and re-download it from the catalog",
                         record=str(path))


@dataclass(frozen=True)
class LasInfo:
    """What the header of one LAS/LAZ file says (no points read).

    ``bounds`` are in the file's own CRS: (minx, miny, minz, maxx, maxy, maxz).
    """

    path: Path
    version: str
    point_format: int
    point_count: int
    bounds: tuple[float, float, float, float, float, float]
    scales: tuple[float, float, float]
    offsets: tuple[float, float, float]
    crs: pyproj.CRS
    crs_source: str
    crs_note: str
    extra_dims: tuple[str, ...]
    compressed: bool

    @property
    def has_extra_dims(self) -> bool:
        return bool(self.extra_dims)

    def bounds_in(self, crs: str | pyproj.CRS) -> Bounds:
        """2D bounds (minx, miny, maxx, maxy) transformed to ``crs`` (densified edges)."""
        target = pyproj.CRS.from_user_input(crs)
        minx, miny, _, maxx, maxy, _ = self.bounds
        if same_horizontal_crs(self.crs, target):
            return (minx, miny, maxx, maxy)
        tr = pyproj.Transformer.from_crs(_horizontal(self.crs), _horizontal(target), always_xy=True)
        return tuple(float(v) for v in tr.transform_bounds(minx, miny, maxx, maxy, densify_pts=21))  # type: ignore[return-value]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["path"] = str(self.path)
        d["crs"] = _crs_label(self.crs)
        return d


def scan_las(path: str | os.PathLike, dataset: str = "lidar",
             crs_override: str | pyproj.CRS | None = None) -> LasInfo:
    """Read the header of a LAS/LAZ file: version, point format, count, bounds, scales, CRS.

    Cheap (no points are decoded); used to pick the files that touch a tile and its halo.

    Raises
    ------
    SourceDataError
        Not a LAS/LAZ file, unreadable header.
    CRSError
        See :func:`resolve_las_crs`.
    """
    path = Path(path)
    header = _open_header(path, dataset)
    res = resolve_las_crs(path, dataset, crs_override, header=header)
    return LasInfo(
        path=path,
        version=str(header.version),
        point_format=int(header.point_format.id),
        point_count=int(header.point_count),
        bounds=tuple(float(v) for v in (*header.mins, *header.maxs)),  # type: ignore[arg-type]
        scales=tuple(float(v) for v in header.scales),  # type: ignore[arg-type]
        offsets=tuple(float(v) for v in header.offsets),  # type: ignore[arg-type]
        crs=res.crs, crs_source=res.source, crs_note=res.note,
        extra_dims=tuple(header.point_format.extra_dimension_names),
        compressed=bool(header.are_points_compressed),
    )


# ---------------------------------------------------------------------------------------------
# streaming
# ---------------------------------------------------------------------------------------------
class _FileStream:
    """Chunked reader of one file with reprojection to the processing CRS and clipping."""

    def __init__(self, info: LasInfo, dataset: str, processing_crs: pyproj.CRS):
        self.info = info
        self.dataset = dataset
        self.reprojected = not same_horizontal_crs(info.crs, processing_crs)
        self.z_factor = _z_factor_to_m(info.crs)
        self.transformer = None
        if self.reprojected:
            if _horizontal(info.crs).is_geographic:
                minx, miny, _, maxx, maxy, _ = info.bounds
                if not (-180.0 <= minx and maxx <= 360.0 and -90.0 <= miny and maxy <= 90.0):
                    raise dataset_error(
                        CRSError, dataset,
                        f"the file's CRS is geographic ({_crs_label(info.crs)}) but its coordinates "
                        f"x {minx:g}..{maxx:g}, y {miny:g}..{maxy:g} are not valid longitudes/latitudes",
                        "the CRS record of the file is wrong: repair it (or exclude the file)",
                        record=str(info.path))
            self.transformer = pyproj.Transformer.from_crs(_horizontal(info.crs), _horizontal(processing_crs),
                                                           always_xy=True)
        self.points_read = 0

    @property
    def integer_xyz(self) -> bool:
        """Coordinates are used as stored (no reprojection, heights in metres): the integer fast path applies."""
        return not self.reprojected and self.z_factor == 1.0

    def _records(self, chunk_points: int, backend: laspy.LazBackend) -> Iterator[laspy.ScaleAwarePointRecord]:
        """The file's non-empty chunks; read errors and a short file become :class:`SourceDataError`."""
        path = self.info.path
        try:
            with laspy.open(path, laz_backend=backend) as reader:
                for rec in reader.chunk_iterator(chunk_points):
                    if len(rec) == 0:
                        continue
                    self.points_read += len(rec)
                    yield rec
        except (SourceDataError, ConfigError):
            raise
        except _READ_ERRORS as exc:
            raise _corrupt(path, self.dataset, exc) from exc
        if self.points_read != self.info.point_count:
            raise dataset_error(SourceDataError, self.dataset,
                                f"'{path.name}' holds {self.points_read} points but its header says "
                                f"{self.info.point_count}",
                                "the file is truncated: delete it and re-download it from the catalog",
                                record=str(path))

    def chunks(self, bounds: Bounds | None, chunk_points: int, backend: laspy.LazBackend = LAZ_BACKEND
               ) -> Iterator[tuple[laspy.ScaleAwarePointRecord, np.ndarray, np.ndarray, np.ndarray]]:
        """Yield (record, x, y, z) of the points inside ``bounds`` (half-open), x/y/z float64."""
        for rec in self._records(chunk_points, backend):
            x = np.asarray(rec.x, dtype=np.float64)
            y = np.asarray(rec.y, dtype=np.float64)
            z = np.asarray(rec.z, dtype=np.float64)
            if self.z_factor != 1.0:
                z = z * self.z_factor
            if self.transformer is not None:
                x, y = self.transformer.transform(x, y)
                bad = ~(np.isfinite(x) & np.isfinite(y))
                if bad.any():
                    i = int(np.flatnonzero(bad)[0])
                    raise dataset_error(
                        SourceDataError, self.dataset,
                        f"{int(bad.sum())} point(s) cannot be transformed from {_crs_label(self.info.crs)} "
                        f"to the processing CRS (first: x={rec.x[i]!r}, y={rec.y[i]!r})",
                        "check the file's CRS record (or the configured sources.lidar.crs): the "
                        "coordinates do not fit it", record=str(self.info.path))
            if bounds is not None:
                m = (x >= bounds[0]) & (x < bounds[2]) & (y >= bounds[1]) & (y < bounds[3])
                if not m.all():
                    if not m.any():
                        continue
                    rec, x, y, z = rec[m], x[m], y[m], z[m]
            yield rec, x, y, z

    def records_masked(self, bounds: Bounds, chunk_points: int, backend: laspy.LazBackend = LAZ_BACKEND
                       ) -> Iterator[tuple[laspy.ScaleAwarePointRecord, np.ndarray | None]]:
        """Yield each chunk whole with its mask of the points inside ``bounds`` (half-open; None: all
        inside), without making float coordinates; the caller selects (no copy on this thread).

        Only for :attr:`integer_xyz` streams. The points inside are those of :meth:`chunks` (the
        bounds test computes ``X * scale + offset`` exactly as laspy does).
        """
        if not self.integer_xyz:
            raise ValueError("records_masked needs a stream without reprojection or height conversion")
        b = np.asarray(bounds, dtype=np.float64)
        for rec in self._records(chunk_points, backend):
            raw = rec.array
            mask = np.empty(len(rec), dtype=np.bool_)
            k = _kernels().inside_bounds(raw["X"], raw["Y"], np.asarray(rec.scales, dtype=np.float64),
                              np.asarray(rec.offsets, dtype=np.float64), b, mask)
            if k == 0:
                continue
            yield rec, (None if k == len(rec) else mask)


def read_las_complete(path: str | os.PathLike, dataset: str, fix: str, record: str | None = None,
                      **read_kw: Any) -> laspy.LasData:
    """``laspy.read`` of a whole LAS/LAZ file that fails loudly.

    Raises :class:`SourceDataError` (naming ``dataset``, the file and ``fix``) when the file cannot
    be read or holds fewer points than its header says: an uncompressed LAS cut at a record
    boundary is otherwise read without complaint as a smaller file.
    """
    kw = {"laz_backend": LAZ_BACKEND, **read_kw}
    try:
        las = laspy.read(str(path), **kw)
    except Exception as exc:  # laspy/lazrs raise many kinds for broken files
        raise dataset_error(SourceDataError, dataset, f"cannot read {path}: {exc}", fix, record) from exc
    if len(las.points) != las.header.point_count:
        raise dataset_error(SourceDataError, dataset, f"{path} holds {len(las.points)} points but its header "
                            f"says {las.header.point_count}: the file is truncated", fix, record)
    return las


def _as_point_chunk(rec: laspy.ScaleAwarePointRecord, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    out = np.empty(len(x), dtype=POINT_DTYPE)
    out["x"], out["y"], out["z"] = x, y, z
    out["classification"] = np.asarray(rec.classification, dtype=np.uint8)
    out["intensity"] = np.asarray(rec.intensity, dtype=np.uint16)
    out["return_number"] = np.asarray(rec.return_number, dtype=np.uint8)
    out["number_of_returns"] = np.asarray(rec.number_of_returns, dtype=np.uint8)
    return out


def iter_points(paths: Iterable[str | os.PathLike], dataset: str, crs_override: str | pyproj.CRS | None,
                processing_crs: str | pyproj.CRS, bounds: Bounds | None = None,
                chunk_points: int = 1_000_000) -> Iterator[np.ndarray]:
    """Stream the points of LAS/LAZ files in chunks, in the processing CRS.

    Parameters
    ----------
    paths : iterable of path-like
        LAS/LAZ files; files whose header bounds miss ``bounds`` are not decoded.
    dataset : str
        Dataset name for error messages.
    crs_override : str or pyproj.CRS or None
        ``sources.lidar.crs`` (applies to files without a usable CRS record).
    processing_crs : str or pyproj.CRS
        Projected CRS in metres; x/y are transformed to it (``always_xy=True``) where the file's
        CRS differs.
    bounds : (minx, miny, maxx, maxy), optional
        Clip box in the processing CRS, half-open (``minx <= x < maxx``).
    chunk_points : int
        Points decoded per step; memory is bounded by it, not by the file size.

    Yields
    ------
    numpy.ndarray
        Structured arrays of :data:`POINT_DTYPE` (x, y, z in metres; z unchanged except feet -> m).

    Raises
    ------
    SourceDataError
        Corrupt or truncated file, coordinates that do not fit the CRS.
    CRSError
        See :func:`resolve_las_crs`.
    """
    proc = _processing_crs(processing_crs, dataset)
    for p in paths:
        info = scan_las(p, dataset, crs_override)
        stream = _FileStream(info, dataset, proc)
        if bounds is not None and not _intersects(info.bounds_in(proc), bounds):
            continue
        for rec, x, y, z in stream.chunks(bounds, chunk_points):
            yield _as_point_chunk(rec, x, y, z)


def _intersects(a: Bounds, b: Bounds) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


# ---------------------------------------------------------------------------------------------
# DTM
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Grid:
    """A north-up raster grid: ``origin`` is the upper-left corner (minx, maxy)."""

    minx: float
    maxy: float
    resolution_m: float
    rows: int
    cols: int

    @classmethod
    def from_bounds(cls, bounds: Bounds, resolution_m: float) -> Grid:
        cols = int(math.ceil(round((bounds[2] - bounds[0]) / resolution_m, 9)))
        rows = int(math.ceil(round((bounds[3] - bounds[1]) / resolution_m, 9)))
        return cls(bounds[0], bounds[3], resolution_m, rows, cols)

    @property
    def bounds(self) -> Bounds:
        r = self.resolution_m
        return (self.minx, self.maxy - self.rows * r, self.minx + self.cols * r, self.maxy)

    def cell_index(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(row, col, inside) of the cells that hold the points."""
        col = np.floor((x - self.minx) / self.resolution_m).astype(np.int64)
        row = np.floor((self.maxy - y) / self.resolution_m).astype(np.int64)
        inside = (row >= 0) & (row < self.rows) & (col >= 0) & (col < self.cols)
        return row, col, inside

    def cell_centres(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r = self.resolution_m
        return self.minx + (cols + 0.5) * r, self.maxy - (rows + 0.5) * r


def complete_dtm(ground_z: np.ndarray, covered: np.ndarray) -> tuple[np.ndarray, dict[str, int | str]]:
    """Fill the cells of a ground grid that have no ground points.

    Gaps inside the covered area (under buildings, on water, between sparse ground points) are
    filled by **harmonic interpolation**: the discrete Laplace equation is solved over the gap cells
    with the ground cells around them as fixed values (scipy SuperLU; from 20,000 gap cells the
    gaps are split into two halves of whole gaps, solved on two threads). It reproduces a plane
    exactly, is smooth, meets the measured ground at the gap's rim and costs about 0.5-1 s for a
    1 M cell grid with 300-400 k gap cells. (A Delaunay TIN
    of the gap rims was measured first: 20 s just to triangulate 680 k rim cells, because grid
    points are degenerate for qhull, and minutes to locate the query cells.)
    Gaps that touch no ground cell at all take the value of the nearest ground cell. Cells outside
    ``covered`` stay NaN.

    Parameters
    ----------
    ground_z : (rows, cols) float array
        Ground height per cell, NaN where the cell has no ground point.
    covered : (rows, cols) bool array
        Cells the DTM must cover.

    Returns
    -------
    dtm : (rows, cols) float64 array, NaN outside ``covered``.
    info : dict with ``known_cells``, ``filled_harmonic_cells``, ``filled_nearest_cells``, ``method``.
    """
    from scipy import sparse
    from scipy.sparse.linalg import spsolve

    known = np.isfinite(ground_z)
    dtm = np.where(known, ground_z, np.nan)
    todo = covered & ~known
    info: dict[str, int | str] = {"known_cells": int(known.sum()), "filled_harmonic_cells": 0,
                                  "filled_nearest_cells": 0, "method": "none needed"}
    if not known.any():
        info["method"] = "no ground points"
        return np.full(ground_z.shape, np.nan), info
    if not todo.any():
        return dtm, info
    rows, cols = ground_z.shape
    # gaps (4-connected) without any ground neighbour cannot be solved: nearest value instead
    labels, nlab = ndimage.label(todo)
    touches = ndimage.binary_dilation(known) & todo
    solvable = np.zeros(nlab + 1, bool)
    solvable[np.unique(labels[touches])] = True
    solvable[0] = False
    near = todo & ~solvable[labels]
    todo = todo & solvable[labels]

    tr, tc = np.nonzero(todo)
    n = len(tr)
    if n:
        # gaps are independent systems: split them into two halves of about equal size (whole gaps
        # each) and solve the halves on two threads (SuperLU releases the GIL). The split depends
        # on the data only, so the result does not depend on the machine.
        n0 = n
        if n >= _SPLIT_SOLVE_CELLS:
            lab = labels[tr, tc]
            half, n0 = _two_halves(np.bincount(lab))
            order = np.argsort(half[lab], kind="stable")
            tr, tc = tr[order], tc[order]
        index = np.full(ground_z.shape, -1, dtype=np.int64)
        index[tr, tc] = np.arange(n)
        diag = np.zeros(n)
        rhs = np.zeros(n)
        ii, jj = [], []
        for dr, dc in ((0, 1), (0, -1), (1, 0), (-1, 0)):
            nr, nc = tr + dr, tc + dc
            ok = (nr >= 0) & (nr < rows) & (nc >= 0) & (nc < cols)
            nr, nc = np.where(ok, nr, 0), np.where(ok, nc, 0)
            is_known = ok & known[nr, nc]
            is_gap = ok & todo[nr, nc]
            diag += is_known | is_gap          # neighbours outside the coverage: no flux (Neumann)
            rhs[is_known] += ground_z[nr[is_known], nc[is_known]]
            ii.append(np.flatnonzero(is_gap))
            jj.append(index[nr[is_gap], nc[is_gap]])
        i_off, j_off = np.concatenate(ii), np.concatenate(jj)
        a = sparse.csc_matrix((np.concatenate([diag, -np.ones(len(i_off))]),
                               (np.concatenate([np.arange(n), i_off]), np.concatenate([np.arange(n), j_off]))),
                              shape=(n, n))
        # (orderings MMD_AT_PLUS_A vs the default COLAMD and conjugate gradients were measured on a
        # 275 k-cell system: 0.5-0.7 s each, within the machine's noise; kept the default)
        if 0 < n0 < n:
            with ThreadPoolExecutor(2) as pool:
                lo = pool.submit(spsolve, a[:n0, :n0], rhs[:n0])
                hi = pool.submit(spsolve, a[n0:, n0:], rhs[n0:])
                dtm[tr, tc] = np.concatenate([lo.result(), hi.result()])
        else:
            dtm[tr, tc] = spsolve(a, rhs)
    if near.any():
        _, (ir, ic) = ndimage.distance_transform_edt(~known, return_indices=True)
        nr_, nc_ = np.nonzero(near)
        dtm[nr_, nc_] = ground_z[ir[nr_, nc_], ic[nr_, nc_]]
    info.update(filled_harmonic_cells=int(n), filled_nearest_cells=int(near.sum()),
                method="harmonic (Laplace) interpolation of gaps; nearest ground cell for gaps without ground")
    return dtm, info


def _two_halves(sizes: np.ndarray) -> tuple[np.ndarray, int]:
    """Greedy split of items of ``sizes`` into halves 0 and 1 of about equal total, largest first.

    Returns the half of each item and the total of half 0 (deterministic: ties go to half 0).
    """
    half = np.zeros(len(sizes), dtype=np.int8)
    load = [0, 0]
    for c in np.argsort(-sizes, kind="stable"):
        if sizes[c] == 0:
            break
        g = 0 if load[0] <= load[1] else 1
        half[c] = g
        load[g] += int(sizes[c])
    return half, load[0]


class _Bilinear:
    """Bilinear interpolation of cell-centre values, prepared once for many point batches.

    Every cell of the centre lattice holds the four coefficients of its bilinear patch
    (``v00 + tc dx + tr dy + tc tr dxy``), so one point costs one gather of 32 contiguous bytes
    instead of four scattered ones. A lattice of one row or column is padded by repeating it (what
    the clamping does anyway). NaN corners make the whole patch NaN (as the four-gather form does).
    """

    def __init__(self, grid: Grid, values: np.ndarray):
        v = np.asarray(values, dtype=np.float64)
        if v.shape[0] == 1:
            v = np.vstack([v, v])
        if v.shape[1] == 1:
            v = np.hstack([v, v])
        self.grid = grid
        self.rows, self.cols = v.shape
        v00, v01, v10, v11 = v[:-1, :-1], v[:-1, 1:], v[1:, :-1], v[1:, 1:]
        coef = np.empty((self.rows - 1, self.cols - 1, 4))
        coef[..., 0] = v00
        coef[..., 1] = v01 - v00
        coef[..., 2] = v10 - v00
        coef[..., 3] = (v11 - v10) - (v01 - v00)
        self.coef = coef.reshape(-1, 4)

    def __call__(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        g = self.grid
        fc = (np.asarray(x, dtype=np.float64) - g.minx) * (1.0 / g.resolution_m) - 0.5
        fr = (g.maxy - np.asarray(y, dtype=np.float64)) * (1.0 / g.resolution_m) - 0.5
        np.clip(fc, 0.0, self.cols - 1.0, out=fc)
        np.clip(fr, 0.0, self.rows - 1.0, out=fr)
        c0 = np.minimum(fc.astype(np.int32), self.cols - 2)
        r0 = np.minimum(fr.astype(np.int32), self.rows - 2)
        fc -= c0                                  # now the weights tc, tr in [0, 1]
        fr -= r0
        k = np.take(self.coef, r0 * np.int32(self.cols - 1) + c0, axis=0)
        out = k[:, 1] * fc
        out += k[:, 0]
        out += fr * (k[:, 2] + k[:, 3] * fc)
        return out


def bilinear(grid: Grid, values: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear interpolation of cell-centre ``values`` at points (beyond the outer centres: clamped).

    NaN cells propagate NaN to the points that use them.
    """
    return _Bilinear(grid, values)(x, y)


# ---------------------------------------------------------------------------------------------
# one helper thread: decode (or compress) the next chunk while numpy works on this one
# ---------------------------------------------------------------------------------------------
_DONE = object()


def _read_ahead(iterator: Iterator[Any]) -> Iterator[Any]:
    """Yield the items of ``iterator``, produced one item ahead in a helper thread.

    lazrs holds the GIL while it decodes (measured: two decodes on two threads take longer than one
    after the other), but the compiled statistics loops (``citymodel._lidar_kernels``, ``nogil``)
    and numpy's large-array operations release it, so they run while the next chunk is decoded.
    The thread always ends (and is joined) before this generator finishes, also on errors
    or when the consumer stops early: no thread outlives the call (fork safety).
    """
    q: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in iterator:
                while not stop.is_set():
                    try:
                        q.put((True, item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put((True, _DONE))
        except BaseException as exc:  # re-raised in the consumer
            q.put((False, exc))

    t = threading.Thread(target=produce, name="citymodel-lidar-read", daemon=True)
    t.start()
    try:
        while True:
            ok, item = q.get()
            if not ok:
                raise item
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        while t.is_alive():
            try:
                q.get_nowait()
            except queue.Empty:
                pass
            t.join(timeout=0.05)
        close = getattr(iterator, "close", None)
        if close is not None:
            close()


class _WriteBehind:
    """Call ``write(item)`` in a helper thread, one item behind the caller (lazrs compresses without
    the GIL). ``close()`` waits for the queue to drain, joins the thread and re-raises its error."""

    def __init__(self, write):
        self._write = write
        self._q: queue.Queue = queue.Queue(maxsize=1)
        self._error: BaseException | None = None
        self._t = threading.Thread(target=self._run, name="citymodel-lidar-write", daemon=True)
        self._t.start()

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is _DONE:
                return
            if self._error is None:
                try:
                    self._write(item)
                except BaseException as exc:
                    self._error = exc

    def put(self, item: Any) -> None:
        if self._error is not None:
            raise self._error
        self._q.put(item)

    def close(self) -> None:
        self._q.put(_DONE)
        self._t.join()
        if self._error is not None:
            raise self._error


# ---------------------------------------------------------------------------------------------
# staging of one tile
# ---------------------------------------------------------------------------------------------
@dataclass
class TileStats:
    """Result of :func:`stage_tile` (all figures for the tile proper unless named otherwise)."""

    tile_id: str
    dataset: str
    processing_crs: str
    empty: bool
    point_count: int = 0
    staged_point_count: int = 0
    class_counts: dict[str, int] = field(default_factory=dict)
    return_number_counts: dict[str, int] = field(default_factory=dict)
    multi_return_share: float = 0.0
    bounds: list[float] | None = None
    z_min_m: float | None = None
    z_max_m: float | None = None
    covered_area_m2: float = 0.0
    coverage_share: float = 0.0
    density_m2: float = 0.0
    ground_point_count: int = 0
    ground_density_m2: float = 0.0
    outliers_high_count: int = 0
    outliers_low_count: int = 0
    outlier_thresholds_m: list[float] = field(default_factory=lambda: [OUTLIER_HAG_LOW_M, OUTLIER_HAG_HIGH_M])
    hag_missing_count: int = 0
    dtm_resolution_m: float = 1.0
    dtm_bounds: list[float] | None = None
    dtm_info: dict[str, Any] = field(default_factory=dict)
    files: list[dict[str, Any]] = field(default_factory=list)
    files_skipped: list[str] = field(default_factory=list)
    laz_path: str | None = None
    dtm_path: str | None = None
    point_format: int | None = None
    laz_backend: str = LAZ_BACKEND.name
    seconds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (plain ints, floats, strings, lists)."""
        return asdict(self)


_LEGACY_TO_14 = {0: 6, 1: 6, 2: 7, 3: 7, 4: 6, 5: 7, 6: 6, 7: 7, 8: 8, 9: 6, 10: 7}
_NO_WAVE = {4: 1, 5: 3, 9: 6, 10: 7}


def _output_point_format(formats: Sequence[int]) -> int:
    """One point format for the staged file: the sources' family, without waveform packets."""
    fs = [_NO_WAVE.get(f, f) for f in formats]
    if any(f >= 6 for f in fs):
        fs = [_LEGACY_TO_14[f] for f in fs]
    return max(fs)


def _output_header(infos: Sequence[LasInfo], streams: Sequence[_FileStream], proc: pyproj.CRS,
                   tile: Tile) -> laspy.LasHeader:
    fmt = _output_point_format([i.point_format for i in infos])
    header = laspy.LasHeader(point_format=fmt, version="1.4" if fmt >= 6 else "1.2")
    any_reproj = any(s.reprojected for s in streams)
    sx = min(i.scales[0] for i in infos)
    sy = min(i.scales[1] for i in infos)
    sz = min(i.scales[2] * s.z_factor for i, s in zip(infos, streams))
    if any_reproj:
        sx = sy = 0.001
    header.scales = np.array([max(sx, 1e-4), max(sy, 1e-4), max(sz, 1e-4)])
    minx, miny, _, _ = tile.bounds
    header.offsets = np.array([math.floor(minx / 1000.0) * 1000.0, math.floor(miny / 1000.0) * 1000.0, 0.0])
    header.add_extra_dims([laspy.ExtraBytesParams(name=HAG_DIMENSION, type=np.float32,
                                                  description="height above DTM (m)")])
    header.add_crs(proc)
    return header


def _convert_chunk(rec: laspy.ScaleAwarePointRecord, x: np.ndarray | None, y: np.ndarray | None,
                   z: np.ndarray | None, header: laspy.LasHeader, stream: _FileStream) -> np.ndarray:
    """The raw output-format array of one chunk (HAG left at 0).

    ``x, y, z`` are the processing-CRS coordinates, or None for an :attr:`_FileStream.integer_xyz`
    stream (then they are the record's own scaled coordinates, computed only where needed).
    """
    n = len(rec)
    src_fmt, dst_fmt = rec.point_format.id, header.point_format.id
    src_dt, dst_dt = rec.array.dtype, header.point_format.dtype()
    if _is_prefix(src_dt, dst_dt):
        # the source record is the leading part of the output record (same point format, the
        # output only adds HeightAboveGround): one copy of bytes instead of a copy per field
        out = np.zeros(n, dtype=dst_dt)
        src = np.ascontiguousarray(rec.array)
        out.view(np.uint8).reshape(n, dst_dt.itemsize)[:, :src_dt.itemsize] = \
            src.view(np.uint8).reshape(n, src_dt.itemsize)
    elif (src_fmt >= 6) == (dst_fmt >= 6):
        out = np.zeros(n, dtype=header.point_format.dtype())
        src_names = set(rec.array.dtype.names)
        for name in out.dtype.names:
            if name in src_names and name not in ("X", "Y", "Z"):
                out[name] = rec.array[name]
    else:
        rec_out = laspy.ScaleAwarePointRecord.zeros(n, header=header)
        src_dims = set(rec.point_format.dimension_names)
        for name in header.point_format.standard_dimension_names:
            if name in src_dims and name not in ("X", "Y", "Z"):
                rec_out[name] = rec[name]
        out = rec_out.array
    sc, off = header.scales, header.offsets
    for i, (dim, v) in enumerate((("X", x), ("Y", y), ("Z", z))):
        shift = _integer_shift(rec, header, stream, i)
        if shift is not None:      # same scale, offsets a whole number of units apart: exact integers
            out[dim] = rec.array[dim] + shift
        else:
            if v is None:
                v = rec.array[dim] * float(rec.scales[i]) + float(rec.offsets[i])
            out[dim] = np.round((v - off[i]) / sc[i]).astype(np.int32)
    return out


def _integer_shifts(rec: laspy.ScaleAwarePointRecord, header: laspy.LasHeader,
                    stream: _FileStream) -> np.ndarray | None:
    """``(X, Y, Z)`` output minus input integer shifts when all three are exact, else None."""
    shifts = [_integer_shift(rec, header, stream, i) for i in range(3)]
    return None if any(v is None for v in shifts) else np.array(shifts, dtype=np.int64)


def _is_prefix(src: np.dtype, dst: np.dtype) -> bool:
    """Every field of ``src`` is in ``dst`` at the same offset with the same type, and ``dst`` only adds fields."""
    if src.names is None or dst.names is None or len(src.names) > len(dst.names):
        return False
    return all(a == b and src.fields[a][:2] == dst.fields[b][:2] for a, b in zip(src.names, dst.names))


def _integer_shift(rec: laspy.ScaleAwarePointRecord, header: laspy.LasHeader, stream: _FileStream,
                   axis: int) -> int | None:
    """``X_out - X_in`` when it is the same integer for every point of the axis, else None."""
    if stream.reprojected and axis < 2:
        return None
    if axis == 2 and stream.z_factor != 1.0:
        return None
    s_in, s_out = float(rec.scales[axis]), float(header.scales[axis])
    if s_in != s_out:
        return None
    d = (float(rec.offsets[axis]) - float(header.offsets[axis])) / s_out
    if abs(d - round(d)) > 1e-6 or abs(d) > 2**30:
        return None
    return int(round(d))


def _tmp_beside(path: Path, suffix: str) -> Path:
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}{suffix}")


def stage_tile(paths: Iterable[str | os.PathLike], tile: Tile, dataset: str, out_laz: str | os.PathLike,
               out_dtm_tif: str | os.PathLike, processing_crs: str | pyproj.CRS,
               crs_override: str | pyproj.CRS | None = None, halo_m: float = 25.0,
               dtm_resolution_m: float = 1.0, chunk_points: int = 1_000_000, *,
               parallel_laz: bool | None = None,
               in_memory_max_points: int = IN_MEMORY_MAX_POINTS) -> TileStats:
    """Stage the point cloud of one tile: statistics, DTM GeoTIFF and a LAS/LAZ with height above ground.

    Pass 1 streams every source file that touches tile + halo: statistics of the tile proper
    (count, class and return histograms, bounds, z range, density over the covered area, ground
    density) and a ground grid (mean z of class 2 per cell) of tile + halo. The points of tile +
    halo are kept, in the output point format, in memory (up to ``in_memory_max_points`` candidate
    points) or else in a temporary uncompressed spool file beside ``out_laz`` (so the sources are
    decoded once). The DTM is completed where there is no ground (:func:`complete_dtm`) and written
    for the **tile + halo** extent (nodata outside the covered area). Pass 2 adds
    ``HeightAboveGround`` (float32, z - bilinear DTM) to the kept points (one compiled loop) and writes ``out_laz``.
    Both outputs are written under temporary names and renamed. Decoding and compression use
    single-threaded lazrs unless the parallel backend is asked for (module doc).

    Parameters
    ----------
    paths : iterable of path-like
        Candidate LAS/LAZ files (those whose header misses tile + halo are skipped).
    tile : Tile
        The tile; its bounds are in the processing CRS.
    dataset : str
        Dataset name for messages.
    out_laz, out_dtm_tif : path-like
        Outputs (folders are created). The staged points are compressed (lazrs) when ``out_laz``
        ends in ``.laz`` and written as uncompressed LAS otherwise (``lidar.staged_format``:
        re-compression costs about as much as decoding, and the file is read again downstream).
    processing_crs : str or pyproj.CRS
        Projected CRS in metres; the staged LAS/LAZ carries it as its CRS record.
    crs_override : str or pyproj.CRS, optional
        ``sources.lidar.crs``.
    halo_m : float
        Width of the band around the tile that is staged too (edge buildings).
    dtm_resolution_m : float
        DTM cell size.
    chunk_points : int
        Points per decoded chunk (memory bound).
    parallel_laz : bool, optional
        ``True``: decode and compress with parallel lazrs where :func:`staging_laz_backend` allows
        it (not in a process forked without exec); ``False``: single-threaded; default: the
        ``CITYMODEL_LAZ_PARALLEL`` environment variable (``1`` = parallel), else single-threaded.
    in_memory_max_points : int
        Tiles with at most this many candidate points are kept in memory between the passes;
        larger ones are spooled to an uncompressed temporary file beside ``out_laz``.

    Returns
    -------
    TileStats
        ``empty=True`` (and no files written) when no point lies in the tile proper.
        Points with HAG above 60 m or below -2 m are kept but counted as outliers.
    """
    t0 = time.perf_counter()
    proc = _processing_crs(processing_crs, dataset)
    out_laz, out_dtm_tif = Path(out_laz), Path(out_dtm_tif)
    tb = tile.bounds
    hb = tile.bounds_with_halo(halo_m)
    stats = TileStats(tile_id=tile.id, dataset=dataset, processing_crs=_crs_label(proc), empty=True,
                      dtm_resolution_m=float(dtm_resolution_m))

    infos: list[LasInfo] = []
    streams: list[_FileStream] = []
    for p in paths:
        info = scan_las(p, dataset, crs_override)
        stream = _FileStream(info, dataset, proc)      # checks the CRS against the coordinates
        if info.point_count > 0 and _intersects(info.bounds_in(proc), hb):
            infos.append(info)
            streams.append(stream)
        else:
            stats.files_skipped.append(str(info.path))
    for i in infos:
        if i.crs_note:
            stats.notes.append(f"{i.path.name}: {i.crs_note}")

    grid = Grid.from_bounds(hb, dtm_resolution_m)
    cov = Grid.from_bounds(tb, COVERAGE_CELL_M)
    ncell = grid.rows * grid.cols
    g_sum = np.zeros(ncell)
    g_cnt = np.zeros(ncell, dtype=np.int64)
    any_cnt = np.zeros(ncell, dtype=np.int64)
    cov_cnt = np.zeros(cov.rows * cov.cols, dtype=np.int64)
    cls_hist = np.zeros(256, dtype=np.int64)
    ret_hist = np.zeros(16, dtype=np.int64)
    multi = 0
    n_tile = 0
    n_staged = 0
    bmin = np.array([np.inf, np.inf, np.inf])
    bmax = -bmin
    grid_params = np.array([grid.minx, grid.maxy, grid.resolution_m, grid.rows, grid.cols], dtype=np.float64)
    cov_params = np.array([cov.minx, cov.maxy, cov.resolution_m, cov.rows, cov.cols], dtype=np.float64)
    tile_params = np.asarray(tb, dtype=np.float64)
    K = _kernels()

    header = _output_header(infos, streams, proc, tile) if infos else None
    out_dtype = header.point_format.dtype() if header is not None else None
    backend = staging_laz_backend(parallel_laz)
    stats.laz_backend = backend.name
    in_memory = sum(i.point_count for i in infos) <= in_memory_max_points
    staged: list[np.ndarray] = []          # output-format chunks (in memory)
    spool = _tmp_beside(out_laz, ".spool")
    out_laz.parent.mkdir(parents=True, exist_ok=True)
    try:
        with contextlib.nullcontext() if in_memory else open(spool, "wb") as spool_f:
            for info, stream in zip(infos, streams):
                fast = stream.integer_xyz
                source = (stream.records_masked(hb, chunk_points, backend) if fast
                          else stream.chunks(hb, chunk_points, backend))
                for item in _read_ahead(source):
                    if fast:
                        rec, keep = item
                        x = y = z = None
                    else:
                        rec, x, y, z = item
                        keep = None
                    shifts = _integer_shifts(rec, header, stream) if fast else None
                    # the common case (a tile of the deployment's own files): one compiled call
                    one_call = shifts is not None and _is_prefix(rec.array.dtype, out_dtype)
                    if not one_call and keep is not None:
                        rec = rec[keep]
                        keep = None
                    raw = rec.array
                    cls_field, cls_mask, rn_mask, nr_shift, nr_mask = _bit_layout(rec.point_format.id)
                    bit_args = (raw[cls_field], cls_mask, raw["bit_fields"], rn_mask, nr_shift, nr_mask,
                                GROUND_CLASS, grid_params, any_cnt, g_sum, g_cnt, tile_params, cov_params, cov_cnt,
                                cls_hist, ret_hist, bmin, bmax)
                    if one_call:
                        src = np.ascontiguousarray(raw)
                        arr = np.empty(len(src) if keep is None else int(keep.sum()), dtype=out_dtype)
                        nt, nm = K.pass1_records(
                            src["X"], src["Y"], src["Z"], np.asarray(rec.scales, dtype=np.float64),
                            np.asarray(rec.offsets, dtype=np.float64), *bit_args,
                            src.view(np.uint8).reshape(len(src), src.dtype.itemsize),
                            arr.view(np.uint8).reshape(len(arr), out_dtype.itemsize), arr["X"], arr["Y"],
                            arr["Z"], shifts, _ALL if keep is None else keep)
                    else:
                        if fast:
                            nt, nm = K.accumulate_pass1_scaled(raw["X"], raw["Y"], raw["Z"],
                                                             np.asarray(rec.scales, dtype=np.float64),
                                                             np.asarray(rec.offsets, dtype=np.float64), *bit_args,
                                                             _ALL)
                        else:
                            nt, nm = K.accumulate_pass1(x, y, z, *bit_args)
                        arr = _convert_chunk(rec, x, y, z, header, stream)
                    n_tile += nt
                    multi += nm
                    if in_memory:
                        staged.append(arr)
                    else:
                        arr.tofile(spool_f)
                    n_staged += len(arr)
                stats.files.append({"path": str(info.path), "crs": _crs_label(info.crs),
                                    "crs_source": info.crs_source, "crs_note": info.crs_note,
                                    "point_format": info.point_format, "points_read": stream.points_read,
                                    "reprojected": stream.reprojected, "z_factor_to_m": stream.z_factor})
        t1 = time.perf_counter()
        stats.seconds["pass1_read"] = round(t1 - t0, 3)

        if n_tile == 0:
            stats.notes.append("no point lies in the tile proper: empty tile, nothing written")
            stats.seconds["total"] = round(time.perf_counter() - t0, 3)
            return stats

        stats.empty = False
        stats.point_count = n_tile
        stats.class_counts = {str(c): int(n) for c, n in enumerate(cls_hist) if n}
        stats.return_number_counts = {str(r): int(n) for r, n in enumerate(ret_hist) if n}
        stats.multi_return_share = multi / n_tile
        stats.bounds = [float(bmin[0]), float(bmin[1]), float(bmax[0]), float(bmax[1])]
        stats.z_min_m, stats.z_max_m = float(bmin[2]), float(bmax[2])
        covered_cells = int((cov_cnt > 0).sum())
        stats.covered_area_m2 = covered_cells * COVERAGE_CELL_M ** 2
        stats.coverage_share = stats.covered_area_m2 / ((tb[2] - tb[0]) * (tb[3] - tb[1]))
        stats.density_m2 = n_tile / stats.covered_area_m2
        stats.ground_point_count = int(cls_hist[GROUND_CLASS])
        stats.ground_density_m2 = stats.ground_point_count / stats.covered_area_m2

        # DTM
        shape = (grid.rows, grid.cols)
        ground = np.full(ncell, np.nan)
        has = g_cnt > 0
        ground[has] = g_sum[has] / g_cnt[has]
        ground = ground.reshape(shape)
        covered = ndimage.binary_fill_holes(any_cnt.reshape(shape) > 0)
        dtm, dinfo = complete_dtm(ground, covered)
        t2 = time.perf_counter()
        stats.seconds["dtm"] = round(t2 - t1, 3)
        stats.dtm_info = {**dinfo, "covered_cells": int(covered.sum()),
                          "nodata_cells": int((~np.isfinite(dtm)).sum()),
                          "ground_cell_value": "mean z of class-2 points"}
        stats.dtm_bounds = list(grid.bounds)
        if not np.isfinite(dtm).any():
            stats.notes.append("no ground (class 2) points: DTM is all nodata, HeightAboveGround is NaN")
        write_geotiff(out_dtm_tif, np.where(np.isfinite(dtm), dtm, DTM_NODATA).astype(np.float32),
                      bounds=grid.bounds, crs=proc, nodata=DTM_NODATA,
                      tags={"tile": tile.id, "dataset": dataset, "extent": "tile + halo",
                            "halo_m": halo_m, "resolution_m": dtm_resolution_m,
                            "method": str(dinfo["method"]), "units": "m"})
        stats.dtm_path = str(out_dtm_tif)

        # the DTM for HAG: nodata cells take their nearest value so that bilinear is defined everywhere
        hag_dtm = dtm
        if np.isfinite(dtm).any() and not np.isfinite(dtm).all():
            _, (ir, ic) = ndimage.distance_transform_edt(~np.isfinite(dtm), return_indices=True)
            hag_dtm = dtm[ir, ic]
        interp = _Bilinear(grid, hag_dtm)
        t3 = time.perf_counter()

        # pass 2: staged chunks -> LAZ with HAG
        dtype = header.point_format.dtype()
        if in_memory:
            def batches() -> Iterator[np.ndarray]:
                while staged:
                    yield staged.pop(0)     # the writer owns the chunk from here: memory is freed as we go
        else:
            mm = np.memmap(spool, dtype=dtype, mode="r") if n_staged else np.zeros(0, dtype)

            def batches() -> Iterator[np.ndarray]:
                for start in range(0, n_staged, chunk_points):
                    yield np.array(mm[start:start + chunk_points])
        compress = out_laz.suffix.lower() == ".laz"
        tmp_laz = _tmp_beside(out_laz, out_laz.suffix.lower())
        hi = lo = missing = 0
        sc, off = header.scales, header.offsets
        try:
            with laspy.open(tmp_laz, mode="w", header=header, laz_backend=backend, do_compress=compress) as w:
                behind = _WriteBehind(w.write_points)
                try:
                    for arr in batches():
                        h, l_, m_ = K.bilinear_hag(arr["X"], arr["Y"], arr["Z"], sc, off, interp.coef, interp.rows,
                                                 interp.cols, grid.minx, grid.maxy, 1.0 / grid.resolution_m,
                                                 tile_params, OUTLIER_HAG_LOW_M, OUTLIER_HAG_HIGH_M,
                                                 arr[HAG_DIMENSION])
                        hi, lo, missing = hi + h, lo + l_, missing + m_
                        behind.put(laspy.ScaleAwarePointRecord(arr, header.point_format, sc, off))
                finally:
                    behind.close()
            if not in_memory:
                del mm
            os.replace(tmp_laz, out_laz)
        finally:
            if tmp_laz.exists():
                tmp_laz.unlink()
        stats.staged_point_count = n_staged
        stats.outliers_high_count, stats.outliers_low_count, stats.hag_missing_count = hi, lo, missing
        stats.laz_path = str(out_laz)
        stats.point_format = int(header.point_format.id)
        stats.seconds["pass2_write"] = round(time.perf_counter() - t3, 3)
        stats.seconds["total"] = round(time.perf_counter() - t0, 3)
        return stats
    finally:
        staged.clear()
        if spool.exists():
            spool.unlink()

