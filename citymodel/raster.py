"""GeoTIFF writing and reading helpers (rasterio), shared by the DTM and the analysis layers.

Rasters are written tiled (256 x 256 blocks) and deflate-compressed, to a temporary file beside the
target that is renamed over it when complete (``os.replace``), so that a reader never sees half a
file. Arrays are ``(rows, cols)`` or ``(bands, rows, cols)``, row 0 at the top (north).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyproj
import rasterio
from affine import Affine

from .errors import SourceDataError, dataset_error
from .fileio import atomic_output

Bounds = tuple[float, float, float, float]


@dataclass
class Raster:
    """A raster read back from a GeoTIFF.

    Attributes
    ----------
    array : numpy.ndarray
        ``(rows, cols)`` for one band, ``(bands, rows, cols)`` otherwise; nodata cells keep the
        nodata value (see :attr:`masked` for a NaN view).
    transform : affine.Affine
        pixel (col, row) -> map (x, y) of the upper-left corner of a cell.
    crs : pyproj.CRS or None
    nodata : float or None
    tags : dict
        dataset-level GDAL metadata tags.
    """

    array: np.ndarray
    transform: Affine
    crs: pyproj.CRS | None
    nodata: float | None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def bounds(self) -> Bounds:
        """(minx, miny, maxx, maxy) in the raster's CRS."""
        rows, cols = self.array.shape[-2:]
        return rasterio.transform.array_bounds(rows, cols, self.transform)[0:4]

    @property
    def resolution_m(self) -> tuple[float, float]:
        return (abs(self.transform.a), abs(self.transform.e))

    @property
    def masked(self) -> np.ndarray:
        """A float64 copy with NaN at nodata cells."""
        out = self.array.astype(np.float64, copy=True)
        if self.nodata is not None:
            out[self.array == self.nodata] = np.nan
        return out


#: tags that describe a run, not the data (timings): never written, so that the same input gives
#: the same bytes (a release is new only when its content changed)
RUNTIME_TAGS = frozenset({"seconds"})


def write_geotiff(path: str | os.PathLike, array: np.ndarray, bounds: Bounds | None = None,
                  transform: Affine | None = None, crs: str | pyproj.CRS | None = None,
                  nodata: float | None = None, tags: dict[str, Any] | None = None, *,
                  band_descriptions: list[str] | None = None, blocksize: int = 256) -> Path:
    """Write ``array`` as a tiled, deflate-compressed GeoTIFF, atomically.

    Parameters
    ----------
    path : path-like
        Target file; its folder is created. An existing file is replaced only once the new one is
        complete.
    array : numpy.ndarray
        ``(rows, cols)`` or ``(bands, rows, cols)``; row 0 is the northern edge.
    bounds : (minx, miny, maxx, maxy), optional
        Extent of the whole raster (cell edges, not centres). Give ``bounds`` or ``transform``.
    transform : affine.Affine, optional
        Pixel-to-map transform of the upper-left cell corner.
    crs : str or pyproj.CRS, optional
        The raster's CRS (anything pyproj understands, e.g. ``"EPSG:25832"``).
    nodata : float, optional
        Value of cells without data.
    tags : dict, optional
        Dataset-level metadata (values are stored as strings), e.g. method and parameters;
        run-time figures (:data:`RUNTIME_TAGS`, e.g. ``seconds``) are left out.
    band_descriptions : list of str, optional
        One description per band.
    blocksize : int
        Tile size in cells (multiple of 16).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    arr = np.asarray(array)
    if arr.ndim == 2:
        arr = arr[np.newaxis]
    if arr.ndim != 3 or arr.shape[1] == 0 or arr.shape[2] == 0:
        raise ValueError(f"write_geotiff({path.name}): array must be (rows, cols) or (bands, rows, cols) "
                         f"and not empty, got shape {np.shape(array)}")
    if (bounds is None) == (transform is None):
        raise ValueError(f"write_geotiff({path.name}): give exactly one of bounds or transform")
    bands, rows, cols = arr.shape
    if transform is None:
        minx, miny, maxx, maxy = bounds  # type: ignore[misc]
        transform = Affine((maxx - minx) / cols, 0.0, minx, 0.0, -(maxy - miny) / rows, maxy)
    if blocksize % 16:
        raise ValueError("blocksize must be a multiple of 16")
    profile: dict[str, Any] = dict(
        driver="GTiff", width=cols, height=rows, count=bands, dtype=arr.dtype.name,
        transform=transform, nodata=nodata, compress="deflate", tiled=True,
        blockxsize=blocksize, blockysize=blocksize, BIGTIFF="IF_SAFER",
    )
    if arr.dtype.kind == "f":
        profile["predictor"] = 3
    if crs is not None:
        profile["crs"] = rasterio.crs.CRS.from_wkt(pyproj.CRS.from_user_input(crs).to_wkt())
    tags = {str(k): str(v) for k, v in (tags or {}).items() if str(k) not in RUNTIME_TAGS}
    with atomic_output(path, suffix=".tif") as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(arr)
            if tags:
                dst.update_tags(**tags)
            if band_descriptions:
                for i, d in enumerate(band_descriptions, start=1):
                    dst.set_band_description(i, d)
    return path


def read_geotiff(path: str | os.PathLike, dataset: str = "raster") -> Raster:
    """Read a whole GeoTIFF (all bands) into a :class:`Raster`.

    Raises
    ------
    SourceDataError
        The file is missing or not a readable raster; the message names ``dataset`` and the file.
    """
    path = Path(path)
    try:
        with rasterio.open(path) as src:
            arr = src.read()
            crs = pyproj.CRS.from_wkt(src.crs.to_wkt()) if src.crs else None
            out = Raster(array=arr[0] if src.count == 1 else arr, transform=src.transform, crs=crs,
                         nodata=src.nodata, tags=dict(src.tags()))
    except rasterio.errors.RasterioError as exc:
        raise dataset_error(SourceDataError, dataset, f"'{path}' is not a readable GeoTIFF ({exc})",
                            "re-create or re-download the file", record=path.name) from exc
    return out


def sample_geotiff(raster: Raster, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Value of the cell that holds each point (nearest cell, first band); NaN outside or at nodata."""
    arr = raster.masked if raster.array.ndim == 2 else raster.masked[0]
    inv = ~raster.transform
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    col = inv.a * x + inv.b * y + inv.c
    row = inv.d * x + inv.e * y + inv.f
    col = np.floor(col).astype(np.int64)
    row = np.floor(row).astype(np.int64)
    ok = (row >= 0) & (row < arr.shape[0]) & (col >= 0) & (col < arr.shape[1])
    out = np.full(np.shape(x), np.nan)
    out[ok] = arr[row[ok], col[ok]]
    return out
