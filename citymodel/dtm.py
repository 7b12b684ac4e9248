"""The staged DTM tiles as one terrain: sample heights anywhere in the configured extent."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

from .raster import Raster, read_geotiff, sample_geotiff


class DtmMosaic:
    """Terrain heights from several (overlapping) DTM GeoTIFFs, e.g. one per tile with halo.

    A point takes the first raster (in the given order) that holds a value for it; points that no
    raster covers get NaN.
    """

    def __init__(self, paths: Iterable[str | Path]):
        self.paths = [Path(p) for p in paths]
        self.rasters: list[Raster] = [read_geotiff(p, dataset="dtm") for p in self.paths]

    def __call__(self, x, y) -> np.ndarray:
        return self.sample(x, y)

    def sample(self, x, y) -> np.ndarray:
        x = np.asarray(x, dtype=float).reshape(-1)
        y = np.asarray(y, dtype=float).reshape(-1)
        out = np.full(x.shape, np.nan)
        for r in self.rasters:
            todo = np.isnan(out)
            if not todo.any():
                break
            minx, miny, maxx, maxy = r.bounds
            inside = todo & (x >= minx) & (x < maxx) & (y >= miny) & (y < maxy)
            if inside.any():
                out[inside] = sample_geotiff(r, x[inside], y[inside])
        return out
