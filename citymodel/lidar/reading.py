"""Reading the points of LAS/LAZ files: header scan (:class:`LasInfo`), chunked streams in the
processing CRS (:class:`FileStream`) and :func:`iter_points`.

A file's header is read first (cheap: no points decoded) to pick the files that touch a tile and
to decide its CRS (:mod:`citymodel.lidar.crs`); its points are then decoded in chunks, so memory is
bounded by the chunk size, not the file size. Corrupt and truncated files fail with
:class:`~citymodel.errors.SourceDataError` naming the file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import laspy
import numpy as np
import pyproj

from ..errors import ConfigError, CRSError, SourceDataError, dataset_error
from ..raster import Bounds
from .backend import LAZ_BACKEND
from .crs import crs_label, horizontal_crs, parse_processing_crs, resolve_las_crs, same_horizontal_crs, z_factor_to_m
from .lasfile import READ_ERRORS, corrupt_file_error, open_las_header

POINT_DTYPE = np.dtype([
    ("x", "f8"), ("y", "f8"), ("z", "f8"), ("classification", "u1"), ("intensity", "u2"),
    ("return_number", "u1"), ("number_of_returns", "u1"),
])
"""dtype of the chunks yielded by :func:`iter_points` (x, y in the processing CRS, z in metres)."""


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
        tr = pyproj.Transformer.from_crs(horizontal_crs(self.crs), horizontal_crs(target), always_xy=True)
        return tuple(float(v) for v in tr.transform_bounds(minx, miny, maxx, maxy, densify_pts=21))  # type: ignore[return-value]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["path"] = str(self.path)
        d["crs"] = crs_label(self.crs)
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
    header = open_las_header(path, dataset)
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


class FileStream:
    """Chunked reader of one file with reprojection to the processing CRS and clipping.

    Made from the file's :class:`LasInfo`; checks at once that a geographic CRS fits the
    coordinates. :meth:`chunks` yields float coordinates in the processing CRS,
    :meth:`records_masked` the records as stored with a mask (the integer fast path of staging,
    for :attr:`integer_xyz` streams). ``points_read`` counts the decoded points.
    """

    def __init__(self, info: LasInfo, dataset: str, processing_crs: pyproj.CRS):
        self.info = info
        self.dataset = dataset
        self.reprojected = not same_horizontal_crs(info.crs, processing_crs)
        self.z_factor = z_factor_to_m(info.crs)
        self.transformer = None
        if self.reprojected:
            if horizontal_crs(info.crs).is_geographic:
                minx, miny, _, maxx, maxy, _ = info.bounds
                if not (-180.0 <= minx and maxx <= 360.0 and -90.0 <= miny and maxy <= 90.0):
                    raise dataset_error(
                        CRSError, dataset,
                        f"the file's CRS is geographic ({crs_label(info.crs)}) but its coordinates "
                        f"x {minx:g}..{maxx:g}, y {miny:g}..{maxy:g} are not valid longitudes/latitudes",
                        "the CRS record of the file is wrong: repair it (or exclude the file)",
                        record=str(info.path))
            self.transformer = pyproj.Transformer.from_crs(horizontal_crs(info.crs),
                                                           horizontal_crs(processing_crs), always_xy=True)
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
        except READ_ERRORS as exc:
            raise corrupt_file_error(path, self.dataset, exc) from exc
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
                        f"{int(bad.sum())} point(s) cannot be transformed from {crs_label(self.info.crs)} "
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
        from . import kernels      # numba: imported on first use (see citymodel.lidar.staging)

        if not self.integer_xyz:
            raise ValueError("records_masked needs a stream without reprojection or height conversion")
        b = np.asarray(bounds, dtype=np.float64)
        for rec in self._records(chunk_points, backend):
            raw = rec.array
            mask = np.empty(len(rec), dtype=np.bool_)
            k = kernels.inside_bounds(raw["X"], raw["Y"], np.asarray(rec.scales, dtype=np.float64),
                                      np.asarray(rec.offsets, dtype=np.float64), b, mask)
            if k == 0:
                continue
            yield rec, (None if k == len(rec) else mask)


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
    proc = parse_processing_crs(processing_crs, dataset)
    for p in paths:
        info = scan_las(p, dataset, crs_override)
        stream = FileStream(info, dataset, proc)
        if bounds is not None and not intersects(info.bounds_in(proc), bounds):
            continue
        for rec, x, y, z in stream.chunks(bounds, chunk_points):
            yield _as_point_chunk(rec, x, y, z)


def intersects(a: Bounds, b: Bounds) -> bool:
    """True when the closed boxes ``a`` and ``b`` (minx, miny, maxx, maxy) overlap or touch."""
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]

