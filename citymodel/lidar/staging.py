"""Staging of one tile (:func:`stage_tile`): statistics, DTM GeoTIFF, and a LAS/LAZ of tile + halo
with height above ground.

Pass 1 streams the sources through the compiled loops (:mod:`citymodel.lidar.kernels`, imported on
first use: numba costs ~0.3 s to import, which a code location that only lists assets should not
pay); pass 2 adds ``HeightAboveGround`` and writes the LAS/LAZ through
:func:`citymodel.fileio.atomic_output` (the DTM through :func:`citymodel.raster.write_geotiff`).
Points kept between the passes of a large tile are spooled to a temporary working file beside the
output, removed before :func:`stage_tile` returns.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import laspy
import numpy as np
import pyproj
from scipy import ndimage

from ..errors import SourceDataError
from ..fileio import atomic_output
from ..raster import write_geotiff
from ..tiles import Tile
from .backend import LAZ_BACKEND, staging_laz_backend
from .crs import crs_label, parse_processing_crs
from .dtm_grid import BilinearInterpolator, Grid, complete_dtm
from .output_records import HAG_DIMENSION, convert_chunk, integer_shifts, is_prefix, output_header
from .reading import FileStream, LasInfo, intersects, scan_las
from .threads import WriteBehind, read_ahead

IN_MEMORY_MAX_POINTS = 30_000_000
"""Tiles with at most this many candidate points (sum of the header counts of the files that touch
tile + halo) are kept in memory between the passes (about 34 bytes/point), larger ones spooled."""
DTM_NODATA = -9999.0
COVERAGE_CELL_M = 2.0
OUTLIER_HAG_HIGH_M = 60.0
OUTLIER_HAG_LOW_M = -2.0
GROUND_CLASS = 2
_ALL = np.zeros(0, dtype=np.bool_)        # "no mask" for the compiled loops


def _bit_layout(point_format_id: int) -> tuple[str, int, int, int, int]:
    """Where a point format keeps class and returns: ``(class byte field, class mask,
    return-number mask, number-of-returns shift, number-of-returns mask)`` (LAS 1.4 R15, tables
    7-8 and 15: formats 0-5 pack 5 class bits with 3 flags and 3 + 3 return bits; 6-10 have a class
    byte and 4 + 4 return bits)."""
    if point_format_id >= 6:
        return "classification", 0xFF, 0x0F, 4, 0x0F
    return "raw_classification", 0x1F, 0x07, 3, 0x07


@dataclass
class TileStats:
    """Result of :func:`stage_tile` (all figures for the tile proper unless named otherwise).

    Coverage and density are measured over the part of the tile that the deployment covers (tile
    ∩ extent; the whole tile without an extent), on a grid of ``COVERAGE_CELL_M`` cells (a cell
    belongs to it when its centre does): ``extent_area_m2`` its area, ``covered_area_m2`` the
    area of its cells holding at least one point, ``coverage_share`` their share,
    ``density_m2`` points per m² of the covered area (the density where there is data),
    ``extent_density_m2`` points per m² of the whole part (``coverage_share x density_m2``).
    A cloud with every point at one spot has a high ``density_m2`` but a ``coverage_share``
    near 0.
    """

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
    extent_area_m2: float = 0.0
    extent_density_m2: float = 0.0
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
    halo_files_unreadable: list[dict[str, Any]] = field(default_factory=list)   # see _halo_gap
    laz_path: str | None = None
    dtm_path: str | None = None
    point_format: int | None = None
    laz_backend: str = LAZ_BACKEND.name
    seconds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (plain ints, floats, strings, lists)."""
        return asdict(self)


def _overlaps_tile(b, tile_bounds) -> bool:
    """True when a file's bounds may hold points of the tile proper (half-open: a point on the
    tile's min edge is the tile's)."""
    return b[2] >= tile_bounds[0] and b[0] < tile_bounds[2] and b[3] >= tile_bounds[1] and b[1] < tile_bounds[3]


def _reaches_into_tile(b, tile_bounds) -> bool:
    """True when a file's bounds cover part of the tile proper, not just its min edge line: a west or
    south neighbour's file whose points end at the shared edge (682000.00 after the LAS scale) only
    feeds the halo, so that when it breaks the tile is built without it (its edge-line points are
    part of the recorded halo gap) instead of failing with it."""
    return b[2] > tile_bounds[0] and b[0] < tile_bounds[2] and b[3] > tile_bounds[1] and b[1] < tile_bounds[3]


def _named_neighbour_box(path: Path, tile: Tile):
    """The 1 km tile a file's name gives (``las_32_682_5645_1_th.laz``) when it is not ``tile``
    itself: an unreadable file of a neighbour only costs the halo. None when the name gives no
    tile or gives this one."""
    from ..sources import tile_numbers_in_name

    numbers = tile_numbers_in_name(path.name)
    if numbers is None:
        return None
    box = (numbers[0] * 1000.0, numbers[1] * 1000.0, numbers[0] * 1000.0 + 1000.0, numbers[1] * 1000.0 + 1000.0)
    inner = (box[0], box[1], box[2] - 1e-6, box[3] - 1e-6)
    return None if _overlaps_tile(inner, tile.bounds) else box


def _halo_gap(path: Path, box, tile: Tile, halo_m: float, exc: BaseException) -> dict[str, Any]:
    """What :attr:`TileStats.halo_files_unreadable` records of a neighbour's file that could not be
    read: its name, the neighbour tile its name gives (else None), the part of tile + halo it would
    have covered (``missing_bounds``) and the error."""
    from ..sources import tile_numbers_in_name

    hb = tile.bounds_with_halo(halo_m)
    gap = [max(box[0], hb[0]), max(box[1], hb[1]), min(box[2], hb[2]), min(box[3], hb[3])]
    numbers = tile_numbers_in_name(path.name)
    neighbour = Tile(numbers[0], numbers[1], 1000.0, tile.prefix).id if numbers else None
    return {"file": path.name, "path": str(path), "tile": neighbour,
            "missing_bounds": [float(v) for v in gap], "error": str(exc)}


def _cells_in(cov: Grid, extent: tuple[float, float, float, float] | None) -> np.ndarray:
    """Flat mask of the coverage grid's cells whose centre lies in ``extent`` (all without one)."""
    if extent is None:
        return np.ones(cov.rows * cov.cols, dtype=bool)
    rows, cols = np.divmod(np.arange(cov.rows * cov.cols), cov.cols)
    cx, cy = cov.cell_centres(rows, cols)
    return (cx >= extent[0]) & (cx < extent[2]) & (cy >= extent[1]) & (cy < extent[3])


def _tmp_beside(path: Path, suffix: str) -> Path:
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}{suffix}")


def stage_tile(paths: Iterable[str | os.PathLike], tile: Tile, dataset: str, out_laz: str | os.PathLike,
               out_dtm_tif: str | os.PathLike, processing_crs: str | pyproj.CRS,
               crs_override: str | pyproj.CRS | None = None, halo_m: float = 25.0,
               dtm_resolution_m: float = 1.0, chunk_points: int = 1_000_000, *,
               parallel_laz: bool | None = None,
               in_memory_max_points: int = IN_MEMORY_MAX_POINTS,
               extent: tuple[float, float, float, float] | None = None) -> TileStats:
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
    single-threaded lazrs unless the parallel backend is asked for (:mod:`citymodel.lidar.backend`).

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
    extent : (minx, miny, maxx, maxy), optional
        The deployment's extent: coverage and density are measured over tile ∩ extent (see
        :class:`TileStats`); default: the whole tile.

    A file that cannot be read fails the tile when it may hold points of the tile proper. A
    neighbour's file that only feeds the halo (by its header's bounds, or, when even the header
    cannot be read, by the tile its name gives) is left out instead: the tile is built from what
    is readable and :attr:`TileStats.halo_files_unreadable` names the file and the part of the
    halo it leaves without points (one broken tile fails alone, not its neighbours with it).

    Returns
    -------
    TileStats
        ``empty=True`` (and no files written) when no point lies in the tile proper.
        Points with HAG above 60 m or below -2 m are kept but counted as outliers.
    """
    t0 = time.perf_counter()
    proc = parse_processing_crs(processing_crs, dataset)
    out_laz, out_dtm_tif = Path(out_laz), Path(out_dtm_tif)
    tb = tile.bounds
    hb = tile.bounds_with_halo(halo_m)
    stats = TileStats(tile_id=tile.id, dataset=dataset, processing_crs=crs_label(proc), empty=True,
                      dtm_resolution_m=float(dtm_resolution_m))

    infos: list[LasInfo] = []
    for p in paths:
        try:
            info = scan_las(p, dataset, crs_override)
            FileStream(info, dataset, proc)      # checks the CRS against the coordinates
        except SourceDataError as exc:
            box = _named_neighbour_box(Path(p), tile)
            if box is None:
                raise                             # the tile's own data (or a file that does not say)
            stats.halo_files_unreadable.append(_halo_gap(Path(p), box, tile, halo_m, exc))
            continue
        if info.point_count > 0 and intersects(info.bounds_in(proc), hb):
            infos.append(info)
        else:
            stats.files_skipped.append(str(info.path))
    for i in infos:
        if i.crs_note:
            stats.notes.append(f"{i.path.name}: {i.crs_note}")

    grid = Grid.from_bounds(hb, dtm_resolution_m)
    cov = Grid.from_bounds(tb, COVERAGE_CELL_M)
    ncell = grid.rows * grid.cols
    grid_params = np.array([grid.minx, grid.maxy, grid.resolution_m, grid.rows, grid.cols], dtype=np.float64)
    cov_params = np.array([cov.minx, cov.maxy, cov.resolution_m, cov.rows, cov.cols], dtype=np.float64)
    tile_params = np.asarray(tb, dtype=np.float64)
    from . import kernels as K     # numba: imported on first use (module doc)

    backend = staging_laz_backend(parallel_laz)
    stats.laz_backend = backend.name
    staged: list[np.ndarray] = []          # output-format chunks (in memory)
    spool = _tmp_beside(out_laz, ".spool")
    out_laz.parent.mkdir(parents=True, exist_ok=True)
    try:
        while True:   # once, unless a file that only feeds the halo turns out unreadable: then without it
            streams = [FileStream(i, dataset, proc) for i in infos]
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
            header = output_header(infos, streams, proc, tile) if infos else None
            out_dtype = header.point_format.dtype() if header is not None else None
            in_memory = sum(i.point_count for i in infos) <= in_memory_max_points
            staged.clear()
            stats.files = []
            broken: tuple[LasInfo, SourceDataError] | None = None
            with contextlib.nullcontext() if in_memory else open(spool, "wb") as spool_f:
                for info, stream in zip(infos, streams):
                    try:
                        fast = stream.integer_xyz
                        source = (stream.records_masked(hb, chunk_points, backend) if fast
                                  else stream.chunks(hb, chunk_points, backend))
                        for item in read_ahead(source):
                            if fast:
                                rec, keep = item
                                x = y = z = None
                            else:
                                rec, x, y, z = item
                                keep = None
                            shifts = integer_shifts(rec, header, stream) if fast else None
                            # the common case (a tile of the deployment's own files): one compiled call
                            one_call = shifts is not None and is_prefix(rec.array.dtype, out_dtype)
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
                                arr = convert_chunk(rec, x, y, z, header, stream)
                            n_tile += nt
                            multi += nm
                            if in_memory:
                                staged.append(arr)
                            else:
                                arr.tofile(spool_f)
                            n_staged += len(arr)
                    except SourceDataError as exc:
                        if _reaches_into_tile(info.bounds_in(proc), tb):
                            raise                 # the tile's own points: the tile fails
                        broken = (info, exc)
                        break
                    stats.files.append({"path": str(info.path), "crs": crs_label(info.crs),
                                        "crs_source": info.crs_source, "crs_note": info.crs_note,
                                        "point_format": info.point_format, "points_read": stream.points_read,
                                        "reprojected": stream.reprojected, "z_factor_to_m": stream.z_factor})
            if broken is None:
                break
            info, exc = broken
            b = info.bounds_in(proc)
            stats.halo_files_unreadable.append(_halo_gap(info.path, (b[0], b[1], b[2], b[3]), tile, halo_m, exc))
            infos = [i for i in infos if i is not info]
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
        part = _cells_in(cov, extent)
        has_points = cov_cnt > 0
        cell_m2 = COVERAGE_CELL_M ** 2
        stats.extent_area_m2 = float(part.sum()) * cell_m2
        stats.covered_area_m2 = float((has_points & part).sum()) * cell_m2
        points_in_part = int(cov_cnt[part].sum())
        stats.coverage_share = stats.covered_area_m2 / stats.extent_area_m2 if stats.extent_area_m2 else 0.0
        stats.density_m2 = points_in_part / stats.covered_area_m2 if stats.covered_area_m2 else 0.0
        stats.extent_density_m2 = points_in_part / stats.extent_area_m2 if stats.extent_area_m2 else 0.0
        stats.ground_point_count = int(cls_hist[GROUND_CLASS])
        all_covered_m2 = float(has_points.sum()) * cell_m2
        stats.ground_density_m2 = stats.ground_point_count / all_covered_m2
        if extent is not None and not part.any():
            stats.notes.append(f"the tile does not overlap the extent {list(extent)}: coverage and density are 0")

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
        interp = BilinearInterpolator(grid, hag_dtm)
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
        hi = lo = missing = 0
        sc, off = header.scales, header.offsets
        with atomic_output(out_laz, suffix=out_laz.suffix.lower()) as tmp_laz:
            with laspy.open(tmp_laz, mode="w", header=header, laz_backend=backend, do_compress=compress) as w:
                behind = WriteBehind(w.write_points)
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

