"""LiDAR staging: LAS/LAZ reading, CRS handling, tile statistics, DTM and height above ground.

PDAL is not available on the target machines; this package uses laspy + lazrs, numpy and scipy.
Its parts, one concern each:

* :mod:`~citymodel.lidar.backend` -- which lazrs backend decodes and compresses. Single-threaded
  by default; the parallel one (rayon) only on request (``parallel_laz=True`` or
  ``CITYMODEL_LAZ_PARALLEL=1``) and never in a process forked without exec (fork safety).
* :mod:`~citymodel.lidar.lasfile` -- opening LAS/LAZ files so that a corrupt or truncated file
  fails with :class:`~citymodel.errors.SourceDataError` (:func:`read_las_complete`).
* :mod:`~citymodel.lidar.crs` -- the CRS of a file (:func:`resolve_las_crs`): the file's own
  record wins, ``sources.lidar.crs`` applies to files without a usable one, a contradiction is a
  :class:`~citymodel.errors.CRSError`; heights in feet become metres; geographic files are
  reprojected to the processing CRS (projected, in metres).
* :mod:`~citymodel.lidar.reading` -- header scan (:func:`scan_las`) and chunked point streams in
  the processing CRS (:func:`iter_points`).
* :mod:`~citymodel.lidar.dtm_grid` -- the DTM grid, its gap filling (:func:`complete_dtm`,
  harmonic interpolation) and bilinear sampling (:func:`bilinear`).
* :mod:`~citymodel.lidar.threads` -- the read-ahead and write-behind helper threads (always
  joined before a staging call returns).
* :mod:`~citymodel.lidar.output_records` -- point format and header of the staged file, and the
  conversion of source chunks into it.
* :mod:`~citymodel.lidar.staging` -- :func:`stage_tile`: statistics, DTM GeoTIFF and a LAS/LAZ of
  tile + halo with ``HeightAboveGround``.
* :mod:`~citymodel.lidar.kernels` -- the compiled per-point loops (numba), imported on first use,
  not with this package.
"""

from ..raster import Bounds
from .backend import LAZ_BACKEND, LAZ_PARALLEL_BACKEND, PARALLEL_ENV, staging_laz_backend
from .crs import CRS_CONFIG_KEY, CrsResolution, read_las_crs, resolve_las_crs, same_horizontal_crs
from .dtm_grid import Grid, bilinear, complete_dtm
from .lasfile import read_las_complete
from .output_records import HAG_DIMENSION
from .reading import POINT_DTYPE, LasInfo, iter_points, scan_las
from .staging import (
    COVERAGE_CELL_M, DTM_NODATA, GROUND_CLASS, IN_MEMORY_MAX_POINTS, OUTLIER_HAG_HIGH_M, OUTLIER_HAG_LOW_M,
    TileStats, stage_tile,
)

__all__ = [
    "Bounds", "COVERAGE_CELL_M", "CRS_CONFIG_KEY", "CrsResolution", "DTM_NODATA", "GROUND_CLASS", "Grid",
    "HAG_DIMENSION", "IN_MEMORY_MAX_POINTS", "LAZ_BACKEND", "LAZ_PARALLEL_BACKEND", "LasInfo",
    "OUTLIER_HAG_HIGH_M", "OUTLIER_HAG_LOW_M", "PARALLEL_ENV", "POINT_DTYPE", "TileStats", "bilinear",
    "complete_dtm", "iter_points", "read_las_complete", "read_las_crs", "resolve_las_crs",
    "same_horizontal_crs", "scan_las", "stage_tile", "staging_laz_backend",
]
