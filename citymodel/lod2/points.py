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
from ..lidar import read_las_complete

HAG_DIMENSION = "HeightAboveGround"
BUILDING_CLASS = 6
GROUND_CLASS = 2
#: classes never taken as building points (ground, low/medium/high vegetation, noise, water, bridge)
EXCLUDED_CLASSES = (2, 3, 4, 5, 7, 9, 17, 18, 26)

_SELECTION = (laspy.DecompressionSelection.XY_RETURNS_CHANNEL | laspy.DecompressionSelection.Z
              | laspy.DecompressionSelection.CLASSIFICATION | laspy.DecompressionSelection.ALL_EXTRA_BYTES)

__all__ = ["TilePoints", "read_tile_points", "points_by_footprint", "clean_building_points",
           "local_roughness", "smallest_eigenpairs"]


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
    """Read a staged LAS/LAZ (with ``HeightAboveGround``) and keep the candidate building points.

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
        If the file cannot be read, holds fewer points than its header says (an uncompressed LAS
        cut at a record boundary reads without complaint otherwise) or has no
        ``HeightAboveGround`` dimension.
    """
    # only the fields used here are decompressed (point formats 6-10 store them in layers)
    las = read_las_complete(laz_path, dataset, "re-run the LiDAR staging of this tile",
                            decompression_selection=_SELECTION)
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
    """Indices of the candidate points inside each footprint (boundary included).

    The points are sorted by x once; each footprint tests only the points of its bounding box
    (``shapely.intersects_xy``).

    Parameters
    ----------
    points : TilePoints
    footprints : sequence of shapely geometries (Polygon or MultiPolygon; None/empty allowed)

    Returns
    -------
    list of numpy.ndarray
        One ascending index array (into ``points``) per footprint, in input order.
    """
    geoms = [g if g is not None else shapely.Polygon() for g in footprints]
    out = [np.empty(0, dtype=np.int64) for _ in range(len(geoms))]
    if len(points) == 0 or len(geoms) == 0:
        return out
    order = np.argsort(points.xyz[:, 0], kind="stable")
    xs = points.xyz[order, 0]
    for k, g in enumerate(geoms):
        if g.is_empty:
            continue
        minx, miny, maxx, maxy = g.bounds
        lo, hi = np.searchsorted(xs, minx, side="left"), np.searchsorted(xs, maxx, side="right")
        cand = order[lo:hi]
        y = points.xyz[cand, 1]
        cand = cand[(y >= miny) & (y <= maxy)]
        if len(cand) == 0:
            continue
        cand = np.sort(cand)
        out[k] = cand[shapely.intersects_xy(g, points.xyz[cand, 0], points.xyz[cand, 1])]
    return out


def local_roughness(xyz: np.ndarray, k: int = 10, tree: cKDTree | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normals and roughness of the k-neighbourhood of every point (PCA).

    The covariances and their smallest eigenpairs are computed in one compiled loop over the
    points (:func:`citymodel.lod2.kernels.neighbourhood_pca`, the closed form of
    :func:`smallest_eigenpairs`), not by one LAPACK call per point; the few ill-conditioned
    neighbourhoods (collinear or identical points) are solved by ``numpy.linalg.eigh``.

    Returns
    -------
    normals : (n, 3) unit normals with non-negative z
    roughness_m : (n,) square root of the smallest eigenvalue (m): ~noise on a plane, large in crowns
    neighbours : (n, k) neighbour indices (including the point itself)
    """
    from .kernels import neighbourhood_pca      # numba: imported on first use (see the kernels module)

    n = len(xyz)
    k = int(min(k, n))
    if tree is None:
        tree = cKDTree(xyz)
    _, nb = tree.query(xyz, k=k)
    nb = np.asarray(nb, dtype=np.int64).reshape(n, k)
    w0, normals, cov, bad = neighbourhood_pca(np.ascontiguousarray(xyz, dtype=np.float64), nb)
    if bad.any():
        c = cov[bad]
        full = np.stack([c[:, [0, 3, 4]], c[:, [3, 1, 5]], c[:, [4, 5, 2]]], axis=1)
        wb, vb = np.linalg.eigh(full)
        w0[bad] = wb[:, 0]
        normals[bad] = vb[:, :, 0]
    normals *= np.where(normals[:, 2:3] < 0, -1.0, 1.0)
    return normals, np.sqrt(np.clip(w0, 0.0, None)), nb


def smallest_eigenpairs(cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Smallest eigenvalue and its unit eigenvector of each symmetric 3x3 matrix (closed form).

    Eigenvalues by the trigonometric solution of the characteristic cubic; the eigenvector as the
    longest cross product of two rows of ``A - w I`` (they span the plane orthogonal to it).
    Falls back to ``numpy.linalg.eigh`` for the matrices where that is ill-conditioned (two
    equal smallest eigenvalues, e.g. collinear or identical points).

    Parameters
    ----------
    cov : (n, 3, 3) array

    Returns
    -------
    w0 : (n,) smallest eigenvalues
    v0 : (n, 3) unit eigenvectors
    """
    a00, a11, a22 = cov[:, 0, 0], cov[:, 1, 1], cov[:, 2, 2]
    a01, a02, a12 = cov[:, 0, 1], cov[:, 0, 2], cov[:, 1, 2]
    m = (a00 + a11 + a22) / 3.0
    b00, b11, b22 = a00 - m, a11 - m, a22 - m
    p2 = (b00 * b00 + b11 * b11 + b22 * b22 + 2.0 * (a01 * a01 + a02 * a02 + a12 * a12)) / 6.0
    p = np.sqrt(p2)
    det = b00 * (b11 * b22 - a12 * a12) - a01 * (a01 * b22 - a12 * a02) + a02 * (a01 * a12 - b11 * a02)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(p2 > 0, det / (2.0 * p * p2), 0.0)
    phi = np.arccos(np.clip(r, -1.0, 1.0)) / 3.0
    w0 = m + 2.0 * p * np.cos(phi + 2.0 * np.pi / 3.0)
    w2 = m + 2.0 * p * np.cos(phi)
    d0, d1, d2 = a00 - w0, a11 - w0, a22 - w0
    # cross products of the rows (d0 a01 a02), (a01 d1 a12), (a02 a12 d2)
    c = np.empty((len(cov), 3, 3))
    c[:, 0] = np.column_stack([a01 * a12 - a02 * d1, a02 * a01 - d0 * a12, d0 * d1 - a01 * a01])
    c[:, 1] = np.column_stack([a01 * d2 - a02 * a12, a02 * a02 - d0 * d2, d0 * a12 - a01 * a02])
    c[:, 2] = np.column_stack([d1 * d2 - a12 * a12, a12 * a02 - a01 * d2, a01 * a12 - d1 * a02])
    nn = np.einsum("nij,nij->ni", c, c)
    rows = np.arange(len(cov))
    best = np.argmax(nn, axis=1)
    big = nn[rows, best]
    v = c[rows, best] / np.sqrt(np.where(big > 0, big, 1.0))[:, None]
    # ill-conditioned: the middle eigenvalue is (nearly) the smallest one
    w1 = 3.0 * m - w0 - w2
    bad = ~(big > 1e-12 * np.maximum(w2, 1e-300) ** 4) | ~(w1 - w0 > 1e-8 * np.maximum(w2, 1e-300))
    if bad.any():
        wb, vb = np.linalg.eigh(cov[bad])
        w0 = w0.copy()
        w0[bad] = wb[:, 0]
        v[bad] = vb[:, :, 0]
    return w0, v


def clean_building_points(points: TilePoints, idx: np.ndarray, *, outlier_radius_m: float = 1.0,
                          outlier_min_neighbours: int = 4, outlier_z_scale: float = 1.0 / 3.0) -> np.ndarray:
    """Remove isolated points (birds, noise) from the points ``idx`` of one building.

    Class 6 is used where the tile has it (if at least 20 such points fall in the footprint).
    Vegetation is removed later by the plane segmentation (points not on a planar segment).
    A point is isolated when fewer than ``outlier_min_neighbours`` points (itself included) lie
    within ``outlier_radius_m``, height differences counted with ``outlier_z_scale``: on a steep
    roof plane at a low point density the next point is a metre higher (a plain 3D ball would drop
    the plane's points); a bird tens of metres above the roof stays isolated.

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
    xyz = points.xyz[idx] * np.array([1.0, 1.0, outlier_z_scale])
    # at least ``outlier_min_neighbours`` points (itself included) within the radius: the k-th
    # nearest one is not farther (a bounded k-NN query is cheaper than counting the whole ball)
    bound = np.nextafter(outlier_radius_m, np.inf)
    dist, _ = cKDTree(xyz).query(xyz, k=[outlier_min_neighbours], distance_upper_bound=bound)
    return idx[np.isfinite(dist[:, 0]) & (dist[:, 0] <= outlier_radius_m)]
