"""The viewer's terrain: the DTM as a heightmap on a lon/lat grid with ellipsoidal heights.

CesiumJS places 3D Tiles by ellipsoidal (WGS84) heights; the buildings' heights were made
ellipsoidal with the geoid model of :mod:`citymodel.tiles3d.geo`. The heightmap uses the same
:class:`~citymodel.tiles3d.geo.GeoTransformer`, so the buildings stand on the ground. Published as
``terrain/heightmap.json`` (grid size, rectangle, height reference, geoid) and
``terrain/heightmap.f32`` (little-endian float32, ``height`` rows of ``width`` values, row 0 north,
values at the grid nodes: ``lon = west + i (east - west) / (width - 1)``, ``lat = north - j (north -
south) / (height - 1)``); the viewer samples it bilinearly (CustomHeightmapTerrainProvider).
Nodes outside the DTM take the nearest DTM value.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pyproj

from ..errors import ConfigError, SourceDataError, dataset_error
from ..fileio import atomic_write_bytes, atomic_write_text
from ..tiles3d.geo import GeoTransformer

__all__ = ["Heightmap", "heightmap_grid", "write_heightmap"]

DATASET = "viewer terrain"
#: Metres per degree of latitude (mean), for the grid size only.
M_PER_DEG_LAT = 111_320.0
MAX_NODES = 4096 * 4096


@dataclass
class Heightmap:
    """Heights (m, ellipsoidal WGS84) at the nodes of a lon/lat grid.

    Attributes
    ----------
    heights : (height, width) float32
        Row 0 is the north edge.
    rectangle_deg : (west, south, east, north)
    filled : int
        Nodes outside the DTM that took the nearest DTM value.
    """

    heights: np.ndarray
    rectangle_deg: tuple[float, float, float, float]
    filled: int = 0

    @property
    def width(self) -> int:
        return int(self.heights.shape[1])

    @property
    def height(self) -> int:
        return int(self.heights.shape[0])

    def node_lonlat(self) -> tuple[np.ndarray, np.ndarray]:
        w, s, e, n = self.rectangle_deg
        lon = w + (e - w) * np.arange(self.width) / (self.width - 1)
        lat = n - (n - s) * np.arange(self.height) / (self.height - 1)
        return np.meshgrid(lon, lat)


def heightmap_grid(sample: Callable[[np.ndarray, np.ndarray], np.ndarray], extent: Sequence[float], crs: str,
                   geo: GeoTransformer, cell_m: float = 2.0) -> Heightmap:
    """Sample the terrain on a lon/lat grid over ``extent`` and make the heights ellipsoidal.

    Parameters
    ----------
    sample : callable
        ``sample(x, y) -> heights`` in the processing CRS (orthometric; NaN where no value), e.g.
        :class:`citymodel.dtm.DtmMosaic`.
    extent : (minx, miny, maxx, maxy)
        In the processing CRS; the grid covers its lon/lat bounding rectangle.
    crs : str
        The processing CRS.
    geo : GeoTransformer
        The transformer of the 3D Tiles (same geoid model).
    cell_m : float
        Grid spacing (about, in metres).

    Raises
    ------
    ConfigError
        ``cell_m`` not positive, an empty extent, a grid larger than 4096² nodes.
    SourceDataError
        The terrain has no value anywhere in the extent.
    """
    if not (isinstance(cell_m, (int, float)) and math.isfinite(cell_m) and cell_m > 0):
        raise dataset_error(ConfigError, DATASET, f"cell size {cell_m!r} m", "give viewer.terrain_cell_m > 0")
    x0, y0, x1, y1 = (float(v) for v in extent)
    if not (x1 > x0 and y1 > y0):
        raise dataset_error(ConfigError, DATASET, f"extent {list(extent)} is empty", "give minx < maxx, miny < maxy")
    to_ll = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    to_xy = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    ex = np.array([x0, x1, x1, x0, (x0 + x1) / 2, (x0 + x1) / 2, x0, x1])
    ey = np.array([y0, y0, y1, y1, y0, y1, (y0 + y1) / 2, (y0 + y1) / 2])
    lon, lat = to_ll.transform(ex, ey)
    west, east, south, north = float(np.min(lon)), float(np.max(lon)), float(np.min(lat)), float(np.max(lat))
    lat_c = math.radians((south + north) / 2)
    nx = int(math.ceil((east - west) * M_PER_DEG_LAT * math.cos(lat_c) / cell_m)) + 1
    ny = int(math.ceil((north - south) * M_PER_DEG_LAT / cell_m)) + 1
    if nx * ny > MAX_NODES:
        raise dataset_error(ConfigError, DATASET, f"a grid of {nx} × {ny} nodes at {cell_m} m",
                            "give a larger viewer.terrain_cell_m")
    hm = Heightmap(np.zeros((ny, nx), dtype=np.float32), (west, south, east, north))
    glon, glat = hm.node_lonlat()
    x, y = to_xy.transform(glon.ravel(), glat.ravel())
    z = np.asarray(sample(np.asarray(x), np.asarray(y)), dtype=float).reshape(ny, nx)
    bad = ~np.isfinite(z)
    if bad.all():
        raise dataset_error(SourceDataError, DATASET, "the DTM has no value in the extent",
                            "materialize staging/dtm for the configured tiles")
    if bad.any():
        from scipy.ndimage import distance_transform_edt

        idx = distance_transform_edt(bad, return_distances=False, return_indices=True)
        z = z[tuple(idx)]
    _, _, h = geo.to_geodetic(np.asarray(x), np.asarray(y), z.ravel())
    hm.heights = np.asarray(h, dtype=np.float32).reshape(ny, nx)
    hm.filled = int(bad.sum())
    return hm


def write_heightmap(out_dir: str | Path, hm: Heightmap, *, geoid: dict | None = None,
                    vertical_crs: str = "EPSG:7837", cell_m: float | None = None) -> Path:
    """Write ``heightmap.f32`` and ``heightmap.json`` into ``out_dir``; returns the JSON path."""
    out_dir = Path(out_dir)
    data = np.ascontiguousarray(hm.heights, dtype="<f4")
    atomic_write_bytes(out_dir / "heightmap.f32", data.tobytes())
    doc = {"schema_version": "1.0", "data": "heightmap.f32", "format": "float32 little-endian, row 0 north",
           "width": hm.width, "height": hm.height, "rectangle_deg": [round(v, 9) for v in hm.rectangle_deg],
           "nodes": "values at grid nodes: lon = west + i (east-west)/(width-1), lat = north - j (north-south)/(height-1)",
           "height_reference": f"ellipsoidal (WGS84) = {vertical_crs} + geoid undulation",
           "geoid": geoid or {}, "cell_m": cell_m, "filled_nodes": hm.filled,
           "min_m": float(np.min(data)), "max_m": float(np.max(data))}
    return atomic_write_text(out_dir / "heightmap.json", json.dumps(doc, indent=1) + "\n")
