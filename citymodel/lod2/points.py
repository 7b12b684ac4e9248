"""Building points per footprint: selection, outlier and vegetation removal (vectorised over points).

The Thuringian point clouds have no building class: building points are the points inside the
footprint, above ground (``HeightAboveGround``), not isolated (birds, multipath) and on locally
planar patches (tree crowns over roofs are rough). Where the source has class 6 (Delft, AHN), the
class-6 points are used and the other classes are only a fallback.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import laspy
import numpy as np
import shapely
from scipy.spatial import cKDTree

from ..errors import SourceDataError, dataset_error

HAG_DIMENSION = "HeightAboveGround"
BUILDING_CLASS = 6
GROUND_CLASS = 2
#: classes never taken as building points (ground, low/medium/high vegetation, noise, water, bridge)
EXCLUDED_CLASSES = (2, 3, 4, 5, 7, 9, 17, 18, 26)

__all__ = ["TilePoints", "read_tile_points", "points_by_footprint", "clean_building_points",
           "local_roughness"]


@dataclass
class TilePoints:
    """Candidate building points of a staged tile (above ground, not ground class).

    Attributes
    ----------
    xyz : numpy.ndarray
        (n, 3) coordinates in the processing CRS (m).
    hag : numpy.ndarray
        (n,) height above ground (m).
    classification, return_number, number_of_returns : numpy.ndarray
        (n,) as in the source.
    has_building_class : bool
        True when the tile holds class-6 points (then only those are used per building).
    bounds : tuple
        (minx, miny, maxx, maxy) of **all** points of the file (coverage test).
    total_count : int
        Points in the file (all classes).
    """

    xyz: np.ndarray
    hag: np.ndarray
    classification: np.ndarray
    return_number: np.ndarray
    number_of_returns: np.ndarray
    has_building_class: bool
    bounds: tuple[float, float, float, float]
    total_count: int

    def __len__(self) -> int:
        return len(self.hag)


def read_tile_points(laz_path: str | os.PathLike, min_hag_m: float = 2.0, dataset: str = "lidar") -> TilePoints:
    """Read a staged LAZ (with ``HeightAboveGround``) and keep the candidate building points.

    Parameters
    ----------
    laz_path : path-like
        Output of :func:`citymodel.lidar.stage_tile`.
    min_hag_m : float
        Points lower than this above the DTM are not roof points.
    dataset : str
        Name for messages.

    Raises
    ------
    SourceDataError
        If the file cannot be read or has no ``HeightAboveGround`` dimension.
    """
    try:
        las = laspy.read(str(laz_path), laz_backend=laspy.LazBackend.Lazrs)
    except Exception as exc:  # laspy/lazrs raise many kinds
        raise dataset_error(SourceDataError, dataset, f"cannot read staged point cloud {laz_path}: {exc}",
                            "re-run the LiDAR staging of this tile", None) from exc
    names = set(las.point_format.dimension_names)
    if HAG_DIMENSION not in names:
        raise dataset_error(SourceDataError, dataset, f"{laz_path} has no '{HAG_DIMENSION}' dimension",
                            "stage the tile with citymodel.lidar.stage_tile (it adds height above ground)")
    cls = np.asarray(las.classification, dtype=np.uint8)
    hag = np.asarray(las[HAG_DIMENSION], dtype=np.float64)
    x, y, z = np.asarray(las.x), np.asarray(las.y), np.asarray(las.z)
    total = len(x)
    bounds = (float(x.min()), float(y.min()), float(x.max()), float(y.max())) if total else (np.nan,) * 4
    has6 = bool((cls == BUILDING_CLASS).any())
    keep = ~np.isin(cls, EXCLUDED_CLASSES) & np.isfinite(hag)
    keep &= (hag >= min_hag_m) | (cls == BUILDING_CLASS)
    return TilePoints(np.column_stack([x[keep], y[keep], z[keep]]), hag[keep], cls[keep],
                      np.asarray(las.return_number, dtype=np.uint8)[keep],
                      np.asarray(las.number_of_returns, dtype=np.uint8)[keep], has6, bounds, total)


def points_by_footprint(points: TilePoints, footprints) -> list[np.ndarray]:
    """Indices of the candidate points inside each footprint (STRtree on the footprints).

    Parameters
    ----------
    points : TilePoints
    footprints : sequence of shapely geometries (Polygon or MultiPolygon; None/empty allowed)

    Returns
    -------
    list of numpy.ndarray
        One index array (into ``points``) per footprint, in input order.
    """
    geoms = np.array([g if g is not None else shapely.Polygon() for g in footprints], dtype=object)
    out = [np.empty(0, dtype=np.int64) for _ in range(len(geoms))]
    if len(points) == 0 or len(geoms) == 0:
        return out
    valid = ~shapely.is_empty(geoms)
    tree = shapely.STRtree(np.where(valid, geoms, None))
    pts = shapely.points(points.xyz[:, 0], points.xyz[:, 1])
    pi, fi = tree.query(pts, predicate="intersects")
    order = np.argsort(fi, kind="stable")
    pi, fi = pi[order], fi[order]
    cuts = np.searchsorted(fi, np.arange(len(geoms) + 1))
    for k in range(len(geoms)):
        out[k] = pi[cuts[k]:cuts[k + 1]]
    return out


def local_roughness(xyz: np.ndarray, k: int = 10, tree: cKDTree | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normals and roughness of the k-neighbourhood of every point (PCA, vectorised).

    Returns
    -------
    normals : (n, 3) unit normals with non-negative z
    roughness_m : (n,) square root of the smallest eigenvalue (m): ~noise on a plane, large in crowns
    neighbours : (n, k) neighbour indices (including the point itself)
    """
    n = len(xyz)
    k = int(min(k, n))
    if tree is None:
        tree = cKDTree(xyz)
    _, nb = tree.query(xyz, k=k)
    nb = np.asarray(nb).reshape(n, k)
    q = xyz[nb] - xyz[nb].mean(axis=1, keepdims=True)
    cov = np.einsum("nki,nkj->nij", q, q) / k
    w, v = np.linalg.eigh(cov)
    normals = v[:, :, 0]
    normals = normals * np.where(normals[:, 2:3] < 0, -1.0, 1.0)
    return normals, np.sqrt(np.clip(w[:, 0], 0.0, None)), nb


def clean_building_points(points: TilePoints, idx: np.ndarray, *, outlier_radius_m: float = 1.0,
                          outlier_min_neighbours: int = 4) -> np.ndarray:
    """Remove isolated points (birds, noise) from the points ``idx`` of one building.

    Class 6 is used where the tile has it (if at least 20 such points fall in the footprint).
    Vegetation is removed later by the plane segmentation (points not on a planar segment).

    Returns
    -------
    numpy.ndarray
        The kept subset of ``idx``.
    """
    if points.has_building_class and len(idx):
        six = idx[points.classification[idx] == BUILDING_CLASS]
        if len(six) >= 20:
            idx = six
    if len(idx) < outlier_min_neighbours:
        return idx
    xyz = points.xyz[idx]
    cnt = cKDTree(xyz).query_ball_point(xyz, outlier_radius_m, return_length=True)
    return idx[np.asarray(cnt) >= outlier_min_neighbours]
