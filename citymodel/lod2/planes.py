"""Roof plane segmentation: region growing on normals as connected components (vectorised).

Every point gets a PCA normal and a roughness from its k neighbours. Two neighbouring points are
linked when both are smooth, their normals agree and each lies on the other's tangent plane; the
connected components of that graph (a compiled union-find, :mod:`.kernels`) are the regions a
sequential region grower would find. Each region gets a least-squares plane; points far from it are released;
coplanar neighbouring regions are merged; tiny regions are dropped; released points join the
plane of a nearby segment when they lie on it. What remains unassigned is vegetation or noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from .points import local_roughness

__all__ = ["Plane", "segment_planes", "fit_plane"]


@dataclass
class Plane:
    """A roof plane ``z = a x + b y + c`` in coordinates relative to ``origin``.

    Attributes
    ----------
    coef : numpy.ndarray
        (a, b, c).
    origin : numpy.ndarray
        (x0, y0) subtracted from the coordinates (precision at UTM coordinates).
    count : int
        Points in the segment.
    rmse_m : float
        RMS vertical residual of its points.
    """

    coef: np.ndarray
    origin: np.ndarray
    count: int
    rmse_m: float

    def z(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        a, b, c = self.coef
        return a * (np.asarray(x) - self.origin[0]) + b * (np.asarray(y) - self.origin[1]) + c

    @property
    def normal(self) -> np.ndarray:
        n = np.array([-self.coef[0], -self.coef[1], 1.0])
        return n / np.linalg.norm(n)

    @property
    def slope_deg(self) -> float:
        return float(np.degrees(np.arccos(self.normal[2])))


def fit_plane(xyz: np.ndarray, origin: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares plane ``z = a x + b y + c`` (relative to ``origin``); returns coef, rmse."""
    A = np.column_stack([xyz[:, 0] - origin[0], xyz[:, 1] - origin[1], np.ones(len(xyz))])
    coef, *_ = np.linalg.lstsq(A, xyz[:, 2], rcond=None)
    res = xyz[:, 2] - A @ coef
    return coef, float(np.sqrt(np.mean(res ** 2))) if len(res) else 0.0


def _fit_plane_fast(p: np.ndarray, members: np.ndarray) -> tuple[np.ndarray, float]:
    """Coefficients of :func:`fit_plane` (origin 0) of the points ``p[members]``, by the normal
    equations on centred coordinates (a compiled loop, :func:`.kernels.fit_plane_members`).

    For the intermediate fits of the segmentation (membership tests at decimetres); the planes
    returned to the caller are fitted by :func:`fit_plane` (the generic roof is sensitive to the
    last bits of its planes).
    """
    from .kernels import fit_plane_members   # numba: imported on first use (see the kernels module)

    a, b, c, rmse, ok = fit_plane_members(p, members)
    if ok:
        return np.array([a, b, c]), rmse
    return fit_plane(p[members], np.zeros(2))


def segment_planes(xyz: np.ndarray, *, k: int = 10, max_roughness_m: float = 0.08,
                   max_angle_deg: float = 12.0, max_offset_m: float = 0.12, max_dist_m: float = 0.25,
                   min_points: int = 15, merge_angle_deg: float = 5.0, merge_offset_m: float = 0.15,
                   max_slope_deg: float = 85.0, split_rmse_m: float = 0.07) -> tuple[np.ndarray, list[Plane]]:
    """Segment roof points into planes.

    Parameters
    ----------
    xyz : (n, 3) array
        Building points (m).
    k : int
        Neighbourhood size for normals and links.
    max_roughness_m : float
        Points rougher than this do not seed or link regions (ridges, crowns).
    max_angle_deg, max_offset_m : float
        Link tests between neighbours: normal angle and distance to the other's tangent plane.
    max_dist_m : float
        Largest vertical distance of a point to its segment's plane.
    min_points : int
        Smaller segments are dropped.
    merge_angle_deg, merge_offset_m : float
        Coplanarity test for merging two touching segments.
    max_slope_deg : float
        Steeper segments (walls) are dropped.
    split_rmse_m : float
        A region whose plane fits worse than this has leaked (over a shallow ridge): it is split
        into RANSAC planes.

    Returns
    -------
    labels : (n,) int array, -1 for unassigned points
    planes : list of Plane, indexed by label
    """
    from .kernels import link_components     # numba: imported on first use (see the kernels module)

    n = len(xyz)
    labels = np.full(n, -1, dtype=np.int64)
    if n < max(min_points, 4):
        return labels, []
    origin = xyz[:, :2].mean(axis=0)
    p = xyz - np.array([origin[0], origin[1], 0.0])
    tree = cKDTree(p)
    normals, rough, nb = local_roughness(p, k, tree)
    smooth = rough <= max_roughness_m
    # region growing: links between smooth neighbours with agreeing normals and tangent planes
    comp = link_components(p, normals, nb, smooth, np.cos(np.radians(max_angle_deg)), max_offset_m)
    comp = np.where(smooth, comp, -1)
    sizes = np.bincount(comp[comp >= 0], minlength=1) if (comp >= 0).any() else np.zeros(1, int)

    # fit, release far points, keep big enough and not too steep
    segs: list[np.ndarray] = []
    coefs: list[np.ndarray] = []
    # members of each big enough component, ascending (a stable sort groups the points by component)
    order = np.argsort(comp, kind="stable")
    first = int((comp < 0).sum()) + np.cumsum(sizes) - sizes
    comps = [(order[first[c]:first[c] + sizes[c]], True) for c in np.flatnonzero(sizes >= min_points)]
    rng = np.random.default_rng(0)
    while comps:
        members, splittable = comps.pop()
        coef, rmse = _fit_plane_fast(p, members)
        if splittable and rmse > split_rmse_m and len(members) >= 2 * min_points:
            # leaked over a ridge or a step: split by RANSAC planes, each its largest connected piece
            for piece in _ransac_split(p, members, nb, rng, max_offset_m, min_points):
                comps.append((piece, False))
            continue
        for _ in range(2):
            res = np.abs(p[members, 2] - (coef[0] * p[members, 0] + coef[1] * p[members, 1] + coef[2]))
            members = members[res <= max_dist_m]
            if len(members) < min_points:
                break
            coef, _ = _fit_plane_fast(p, members)
        if len(members) < min_points:
            continue
        if np.degrees(np.arctan(np.hypot(coef[0], coef[1]))) > max_slope_deg:
            continue
        segs.append(members)
        coefs.append(coef)

    # merge coplanar touching segments (few segments: loops are fine)
    segs, coefs = _merge(p, tree, segs, coefs, merge_angle_deg, merge_offset_m)
    for lab, members in enumerate(segs):
        labels[members] = lab
    # released points join a nearby segment's plane when they lie on it
    labels = _assign_rest(p, labels, coefs, max_dist_m)
    planes = []
    for lab, coef in enumerate(coefs):
        m = labels == lab
        coef, rmse = fit_plane(p[m], np.zeros(2))
        c = coef.copy()
        planes.append(Plane(c, origin.copy(), int(m.sum()), rmse))
    return labels, planes


def _ransac_split(p, members, nb, rng, tol_m, min_points, hypotheses: int = 256):
    """Split ``members`` into planes: vectorised RANSAC, then the largest connected inlier set."""
    from .kernels import best_plane_inliers, component_labels    # numba: imported on first use (see the kernels module)

    out = []
    rest = members
    for _ in range(8):
        if len(rest) < min_points:
            break
        q = p[rest]
        tri = rng.integers(0, len(rest), size=(hypotheses, 3))
        a, b, c = q[tri[:, 0]], q[tri[:, 1]], q[tri[:, 2]]
        n = np.cross(b - a, c - a)
        norm = np.linalg.norm(n, axis=1)
        good = norm > 1e-6
        if not good.any():
            break
        n = n[good] / norm[good, None]
        inl = rest[best_plane_inliers(q, n, np.einsum("hk,hk->h", a[good], n), tol_m)]
        if len(inl) < min_points:
            break
        # largest connected piece of the inliers (k-neighbour graph)
        mask = np.zeros(len(p), dtype=bool)
        mask[inl] = True
        i = np.repeat(inl, nb.shape[1])
        j = nb[inl].ravel()
        ok = mask[j]
        lab = component_labels(len(inl), np.searchsorted(inl, i[ok]), np.searchsorted(inl, j[ok]))
        big = np.argmax(np.bincount(lab))
        piece = inl[lab == big]
        if len(piece) < min_points:
            break
        out.append(piece)
        rest = np.setdiff1d(rest, piece)
    return out


def _plane_angle(c1: np.ndarray, c2: np.ndarray) -> float:
    n1 = np.array([-c1[0], -c1[1], 1.0])
    n2 = np.array([-c2[0], -c2[1], 1.0])
    return float(np.degrees(np.arccos(np.clip(n1 @ n2 / np.linalg.norm(n1) / np.linalg.norm(n2), -1, 1))))


def _merge(p, tree, segs, coefs, angle_deg, offset_m):
    if len(segs) < 2:
        return segs, coefs
    changed = True
    while changed:
        changed = False
        for a in range(len(segs)):
            for b in range(a + 1, len(segs)):
                if _plane_angle(coefs[a], coefs[b]) > angle_deg:
                    continue
                pa, pb = p[segs[a]], p[segs[b]]
                za = coefs[a][0] * pb[:, 0] + coefs[a][1] * pb[:, 1] + coefs[a][2]
                zb = coefs[b][0] * pa[:, 0] + coefs[b][1] * pa[:, 1] + coefs[b][2]
                if max(np.median(np.abs(pb[:, 2] - za)), np.median(np.abs(pa[:, 2] - zb))) > offset_m:
                    continue
                dist, _ = cKDTree(pa[:, :2]).query(pb[:, :2], k=1, distance_upper_bound=1.5)
                if not np.isfinite(dist).any():
                    continue
                members = np.concatenate([segs[a], segs[b]])
                coef, _ = _fit_plane_fast(p, members)
                segs[a] = members
                coefs[a] = coef
                del segs[b], coefs[b]
                changed = True
                break
            if changed:
                break
    return segs, coefs


def _assign_rest(p, labels, coefs, max_dist_m, radius_m: float = 1.5):
    """Labels with the free points (-1) joined to the plane of one of their 6 nearest labelled points.

    Among the labelled points within ``radius_m`` (horizontally) the one whose segment's plane lies
    closest (vertically, at most ``max_dist_m``) to the free point wins; the nearest on ties.
    """
    free = np.flatnonzero(labels < 0)
    done = np.flatnonzero(labels >= 0)
    if len(free) == 0 or len(done) == 0:
        return labels
    t = cKDTree(p[done, :2])
    dist, nn = t.query(p[free, :2], k=min(6, len(done)), distance_upper_bound=radius_m)
    dist = np.asarray(dist).reshape(len(free), -1)
    nn = np.asarray(nn).reshape(len(free), -1)
    valid = np.isfinite(dist)
    lab = np.where(valid, labels[done[np.where(valid, nn, 0)]], -1)           # (free, 6)
    C = np.array(coefs)[np.clip(lab, 0, None)]                                  # (free, 6, 3)
    pf = p[free]
    res = np.abs(pf[:, 2:3] - (C[:, :, 0] * pf[:, 0:1] + C[:, :, 1] * pf[:, 1:2] + C[:, :, 2]))
    res[~valid] = np.inf
    col = np.argmin(res, axis=1)                  # the first of equal residuals: the nearest point
    rows = np.arange(len(free))
    best = res[rows, col]
    labels = labels.copy()
    labels[free] = np.where(best <= max_dist_m, lab[rows, col], -1)
    return labels
