"""Geometric validation of building solids with val3dity's rules and error codes.

The checks follow the definitions of val3dity (https://val3dity.readthedocs.io, "Errors"), level by
level, and stop at the first failing level as val3dity does: a shell is only checked when all its
polygons are valid, shell self-intersection (306) only when the shell's topology is valid, and the
solid level only when all shells are valid.

Before checking, vertices closer than ``snap_m`` (default 0.001 m) are merged (val3dity's
``--snap_tol``). Polygons are projected onto their least-squares plane for the 2D ring tests
(shapely 2), and triangulated (earcut) for 204, 306 and the volume.

Implemented codes
-----------------
- ring: 101 TOO_FEW_POINTS, 102 CONSECUTIVE_POINTS_SAME, 103 RING_NOT_CLOSED (only for indexed input
  with explicitly closed rings, ``closed_rings=True``; rings of :class:`~citymodel.geometry3d.Solid`
  and CityJSON are unclosed by definition, as in val3dity), 104 RING_SELF_INTERSECTION (incl. rings
  collapsed to a line and non-consecutive repeated vertices);
- polygon: 201 INTERSECTION_RINGS, 202 DUPLICATED_RINGS, 203 NON_PLANAR_POLYGON_DISTANCE_PLANE,
  204 NON_PLANAR_POLYGON_NORMALS_DEVIATION (checked only where 203 passes; degenerate triangles of
  zero area are skipped because their normal is undefined), 205 POLYGON_INTERIOR_DISCONNECTED,
  206 INNER_RING_OUTSIDE, 207 INNER_RINGS_NESTED, 208 ORIENTATION_RINGS_SAME;
- shell: 301 TOO_FEW_POLYGONS, 302 SHELL_NOT_CLOSED, 303 NON_MANIFOLD_CASE (edges with more than two
  polygons and vertices whose polygons do not form one umbrella), 305 MULTIPLE_CONNECTED_COMPONENTS
  (polygons connected through shared vertices), 306 SHELL_SELF_INTERSECTION, 307
  POLYGON_WRONG_ORIENTATION (polygons whose orientation disagrees with the rest of the shell),
  309 VERTICES_NOT_USED (indexed input with its own vertex list only);
- solid: 401 INTERSECTION_SHELLS, 402 DUPLICATED_SHELLS, 403 INNER_SHELL_OUTSIDE,
  405 WRONG_ORIENTATION_SHELL (a consistently oriented shell whose volume has the wrong sign: an
  all-inverted outer shell, or an inner shell oriented outwards, as val3dity reports it).

Not implemented
---------------
- 304 NON_MANIFOLD_EDGE: val3dity 2.x merged it into 303, which is reported instead.
- 404 SOLID_INTERIOR_DISCONNECTED: needs boolean operations between shells (val3dity uses CGAL Nef
  polyhedra); the case arises only with several inner shells touching each other and the outer
  shell, which building solids (:class:`~citymodel.geometry3d.Solid` has no inner shells) never have.
- 5xx/6xx (CompositeSolid, BuildingParts overlap) and 9xx (input file) are outside a single solid.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Sequence

import mapbox_earcut
import numpy as np
import shapely
from scipy.spatial import cKDTree

from .errors import GeometryError, dataset_error
from .geometry3d import Solid

ERROR_NAMES: dict[int, str] = {
    101: "TOO_FEW_POINTS", 102: "CONSECUTIVE_POINTS_SAME", 103: "RING_NOT_CLOSED",
    104: "RING_SELF_INTERSECTION",
    201: "INTERSECTION_RINGS", 202: "DUPLICATED_RINGS", 203: "NON_PLANAR_POLYGON_DISTANCE_PLANE",
    204: "NON_PLANAR_POLYGON_NORMALS_DEVIATION", 205: "POLYGON_INTERIOR_DISCONNECTED",
    206: "INNER_RING_OUTSIDE", 207: "INNER_RINGS_NESTED", 208: "ORIENTATION_RINGS_SAME",
    301: "TOO_FEW_POLYGONS", 302: "SHELL_NOT_CLOSED", 303: "NON_MANIFOLD_CASE",
    305: "MULTIPLE_CONNECTED_COMPONENTS", 306: "SHELL_SELF_INTERSECTION",
    307: "POLYGON_WRONG_ORIENTATION", 309: "VERTICES_NOT_USED",
    401: "INTERSECTION_SHELLS", 402: "DUPLICATED_SHELLS", 403: "INNER_SHELL_OUTSIDE",
    404: "SOLID_INTERIOR_DISCONNECTED", 405: "WRONG_ORIENTATION_SHELL",
}
IMPLEMENTED_CODES: tuple[int, ...] = (101, 102, 103, 104, 201, 202, 203, 204, 205, 206, 207, 208,
                                      301, 302, 303, 305, 306, 307, 309, 401, 402, 403, 405)

_LEVEL = {1: "ring", 2: "polygon", 3: "shell", 4: "solid"}
_EPS_PLANE_M = 1e-7      # distance below which a vertex counts as lying on a triangle's plane
_EPS_LEN_M = 1e-6        # overlap length below which two triangles only touch
_EPS_AREA_M2 = 1e-12     # triangles below this area are degenerate
_EPS_REL = 1e-9          # ... and those whose doubled area is below this times their longest edge²
                         # (collinear vertices at T-junctions: their normal is numerical noise)


def _degenerate(tri_pts: np.ndarray, doubled_area: np.ndarray) -> np.ndarray:
    """Triangles ``(n, 3, 3)`` whose area is too small, absolutely or relative to their size."""
    e = np.stack([tri_pts[:, 1] - tri_pts[:, 0], tri_pts[:, 2] - tri_pts[:, 1], tri_pts[:, 0] - tri_pts[:, 2]], 1)
    longest2 = np.einsum("ijk,ijk->ij", e, e).max(axis=1)
    return doubled_area <= np.maximum(2 * _EPS_AREA_M2, _EPS_REL * longest2)


@dataclass(frozen=True)
class ValidationError:
    """One error, val3dity style.

    ``surface`` is the polygon index inside its shell (``None`` for shell/solid-wide errors).
    """

    code: int
    name: str
    level: str
    feature: str | None
    shell: int | None
    surface: int | None
    description: str


@dataclass
class ValidationReport:
    """Result of validating one solid: ``valid`` and the list of errors."""

    valid: bool
    errors: list[ValidationError] = field(default_factory=list)
    feature: str | None = None

    @property
    def codes(self) -> list[int]:
        """Sorted distinct error codes (the form stored as a building attribute)."""
        return sorted({e.code for e in self.errors})

    def to_dict(self) -> dict:
        return {"feature": self.feature, "valid": self.valid, "codes": self.codes,
                "errors": [asdict(e) for e in self.errors]}


# --------------------------------------------------------------------------------------------- API

def validate_solid(solid: Solid, planarity_d2p_m: float = 0.01, planarity_n_deg: float = 20.0,
                   snap_m: float = 0.001, *, feature: str | None = None) -> ValidationReport:
    """Validate a :class:`~citymodel.geometry3d.Solid` (one outer shell) with val3dity's rules.

    Parameters
    ----------
    solid : Solid
        Surfaces with unclosed rings, exterior counter-clockwise seen from outside.
    planarity_d2p_m : float
        Tolerance of 203: largest distance of a vertex to the polygon's fitted plane (m).
    planarity_n_deg : float
        Tolerance of 204: largest deviation of a triangle normal from the polygon normal (degrees).
    snap_m : float
        Vertices closer than this are merged before checking (m).
    feature : str, optional
        Id of the building (or part) reported with every error.

    Returns
    -------
    ValidationReport
        ``valid``, ``errors`` and ``codes`` (sorted ints).
    """
    rings: list[np.ndarray] = []
    polys: list[list[np.ndarray]] = []
    start = 0
    for s in solid.surfaces:
        poly = []
        for r in s.rings:
            r = np.asarray(r, dtype=float).reshape(-1, 3)
            rings.append(r)
            poly.append(np.arange(start, start + len(r)))
            start += len(r)
        polys.append(poly)
    if not rings:
        raise dataset_error(GeometryError, "buildings", "solid has no surfaces",
                            "build the solid from at least 4 polygons", record=feature)
    verts = np.concatenate(rings, axis=0)
    return _validate(verts, [polys], planarity_d2p_m, planarity_n_deg, snap_m, closed_rings=False,
                     check_unused=False, feature=feature)


def validate_indexed(vertices: np.ndarray, shells: Sequence[Sequence[Sequence[Sequence[int]]]],
                     planarity_d2p_m: float = 0.01, planarity_n_deg: float = 20.0,
                     snap_m: float = 0.001, *, closed_rings: bool = False,
                     check_unused_vertices: bool = True,
                     feature: str | None = None) -> ValidationReport:
    """Validate a solid given as a vertex list and index rings (CityJSON ``Solid`` boundaries).

    Parameters
    ----------
    vertices : (n, 3) array
        Coordinates (m), already decoded from any CityJSON ``transform``.
    shells : list
        ``[outer_shell, inner_shell, ...]``; a shell is a list of polygons, a polygon a list of
        rings (exterior first), a ring a list of vertex indices.
    closed_rings : bool
        Rings repeat their first vertex at the end (GML style); enables 103.
    check_unused_vertices : bool
        Report 309 when ``vertices`` holds vertices no ring uses (OBJ/OFF-style input; switch off
        for a file-wide vertex list shared by many solids).

    Returns
    -------
    ValidationReport
    """
    v = np.asarray(vertices, dtype=float)
    if v.ndim != 2 or v.shape[1] != 3 or not np.isfinite(v).all():
        raise dataset_error(GeometryError, "buildings", f"vertices must be a finite (n, 3) array, got "
                            f"shape {v.shape}", "pass decoded x, y, z coordinates", record=feature)
    polys_all = []
    for sh in shells:
        shell = []
        for poly in sh:
            prings = []
            for ring in poly:
                idx = np.asarray(ring, dtype=np.int64).reshape(-1)
                if idx.size and (idx.min() < 0 or idx.max() >= len(v)):
                    raise dataset_error(GeometryError, "buildings",
                                        f"ring references vertex {int(idx.max())} of {len(v)}",
                                        "fix the boundaries' vertex indices", record=feature)
                prings.append(idx)
            shell.append(prings)
        polys_all.append(shell)
    if not polys_all:
        raise dataset_error(GeometryError, "buildings", "solid has no shell",
                            "give at least the outer shell", record=feature)
    return _validate(v, polys_all, planarity_d2p_m, planarity_n_deg, snap_m, closed_rings=closed_rings,
                     check_unused=check_unused_vertices, feature=feature)


# ------------------------------------------------------------------------------------- internals

class _Collector:
    def __init__(self, feature: str | None):
        self.feature = feature
        self.errors: list[ValidationError] = []

    def add(self, code: int, shell: int | None, surface: int | None, description: str) -> None:
        self.errors.append(ValidationError(code, ERROR_NAMES[code], _LEVEL[code // 100], self.feature,
                                           shell, surface, description))


def _snap(verts: np.ndarray, snap_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Merge vertices closer than ``snap_m``; returns (labels per input vertex, cluster coords)."""
    n = len(verts)
    if snap_m <= 0:
        return np.arange(n), verts
    pairs = cKDTree(verts).query_pairs(snap_m, output_type="ndarray")
    if len(pairs) == 0:
        return np.arange(n), verts
    lab = _components(n, pairs[:, 0], pairs[:, 1])   # label = smallest member index
    rep, labels = np.unique(lab, return_inverse=True)
    return labels, verts[rep]


def _components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connected-component labels of an undirected graph on ``n`` nodes with edges (a, b).

    Min-label propagation with pointer jumping: a few vectorised passes for the small, shallow
    graphs of one building (faster than building a sparse matrix for scipy's csgraph).
    """
    lab = np.arange(n)
    if n == 0 or len(a) == 0:
        return lab
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    while True:
        m = np.minimum(lab[a], lab[b])
        new = lab.copy()
        np.minimum.at(new, a, m)
        np.minimum.at(new, b, m)
        new = new[new]
        new = new[new]
        if np.array_equal(new, lab):
            return lab
        lab = new


def _validate(verts, shells, d2p, n_deg, snap_m, *, closed_rings, check_unused, feature):
    out = _Collector(feature)
    origin = verts.mean(axis=0)
    local = verts - origin
    labels, pts = _snap(local, snap_m)

    # ---------------------------------------------------------------- flatten rings (snapped ids)
    ring_ids: list[np.ndarray] = []
    ring_poly: list[int] = []        # global polygon number of each ring
    ring_is_ext: list[bool] = []
    poly_shell: list[int] = []
    poly_local: list[int] = []       # index of the polygon inside its shell
    poly_rings: list[list[int]] = []
    used = np.zeros(len(verts), dtype=bool)
    ring_error_polys: set[int] = set()
    for si, shell in enumerate(shells):
        for pi, poly in enumerate(shell):
            g = len(poly_shell)
            poly_shell.append(si)
            poly_local.append(pi)
            poly_rings.append([])
            if len(poly) == 0:
                out.add(101, si, pi, "polygon has no ring")
                ring_error_polys.add(g)
            for ri, raw in enumerate(poly):
                used[raw] = True
                ids = labels[raw]
                if closed_rings:
                    if len(ids) < 2 or ids[0] != ids[-1]:
                        out.add(103, si, pi, f"ring {ri}: first and last points differ")
                        ring_error_polys.add(g)
                    else:
                        ids = ids[:-1]
                poly_rings[g].append(len(ring_ids))
                ring_ids.append(ids)
                ring_poly.append(g)
                ring_is_ext.append(ri == 0)
    n_poly = len(poly_shell)
    poly_shell_a = np.asarray(poly_shell)
    poly_local_a = np.asarray(poly_local)

    # ---------------------------------------------------------------------------- ring level 101/102
    lens = np.array([len(r) for r in ring_ids], dtype=np.int64)
    for k in np.nonzero(lens < 3)[0]:
        g = ring_poly[k]
        out.add(101, poly_shell[g], poly_local[g], f"ring has {lens[k]} point(s), at least 3 needed")
        ring_error_polys.add(g)
    ok_ring = lens >= 3
    if ok_ring.any():
        R = np.concatenate([ring_ids[k] for k in np.nonzero(ok_ring)[0]])
        rk = np.repeat(np.nonzero(ok_ring)[0], lens[ok_ring])
        starts = np.concatenate([[0], np.cumsum(lens[ok_ring])[:-1]])
        nxt = np.arange(len(R)) + 1
        ends = starts + lens[ok_ring]
        nxt[ends - 1] = starts
        same = R == R[nxt]
        if same.any():
            for k in np.unique(rk[same]):
                g = ring_poly[k]
                out.add(102, poly_shell[g], poly_local[g], "two consecutive points are the same "
                        f"(after snapping to {snap_m} m)")
                ring_error_polys.add(g)

    # -------------------------------------------------------------------------- polygon level
    good_polys = np.array([g not in ring_error_polys for g in range(n_poly)], dtype=bool)
    tri_by_poly: dict[int, np.ndarray] = {}
    normals = np.zeros((n_poly, 3))
    poly_errors = set(ring_error_polys)
    if good_polys.any():
        _polygon_checks(pts, ring_ids, poly_rings, np.nonzero(good_polys)[0], poly_shell, poly_local,
                        d2p, n_deg, out, poly_errors, tri_by_poly, normals)
    if check_unused and not used.all():
        out.add(309, None, None, f"{int((~used).sum())} vertex/vertices not used by any polygon")
    if poly_errors:
        return ValidationReport(False, out.errors, feature)

    # ----------------------------------------------------------------------------- shell level
    shell_ok = []
    shell_tris: list[np.ndarray] = []
    shell_vol: list[float] = []
    for si, shell in enumerate(shells):
        gpolys = np.nonzero(poly_shell_a == si)[0]
        ok, tris, vol = _shell_checks(si, gpolys, pts, ring_ids, poly_rings, poly_local_a, tri_by_poly,
                                      out)
        shell_ok.append(ok)
        shell_tris.append(tris)
        shell_vol.append(vol)
    if not all(shell_ok):
        return ValidationReport(not out.errors, out.errors, feature)

    # ----------------------------------------------------------------------------- solid level
    bad = False
    for si, vol in enumerate(shell_vol):
        if (si == 0 and vol <= 0) or (si > 0 and vol >= 0):
            want = "outwards" if si == 0 else "inwards"
            out.add(405, si, None, f"{'outer' if si == 0 else 'inner'} shell has all normals "
                    f"pointing the wrong way (signed volume {vol:.3f} m3, normals must point {want})")
            bad = True
    if not bad and len(shells) > 1:
        _solid_checks(pts, shells, shell_tris, poly_shell_a, ring_ids, poly_rings, out)
    return ValidationReport(not out.errors, out.errors, feature)


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cross product (numpy's np.cross has a large per-call overhead)."""
    out = np.empty(np.broadcast_shapes(a.shape, b.shape))
    out[..., 0] = a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1]
    out[..., 1] = a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2]
    out[..., 2] = a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]
    return out


def _plane_basis(n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors u, v with u x v = n (rows), vectorised over polygons."""
    a = np.zeros_like(n)
    idx = np.argmin(np.abs(n), axis=1)
    a[np.arange(len(n)), idx] = 1.0
    u = _cross(n, a)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    v = _cross(n, u)
    return u, v


def _polygon_checks(pts, ring_ids, poly_rings, gpolys, poly_shell, poly_local, d2p, n_deg, out,
                    poly_errors, tri_by_poly, normals_out):
    # concatenate the vertices of the checked polygons, ring by ring
    rings_sel = [k for g in gpolys for k in poly_rings[g]]
    lens = np.array([len(ring_ids[k]) for k in rings_sel])
    R = np.concatenate([ring_ids[k] for k in rings_sel])
    P = pts[R]
    ring_of = np.repeat(np.arange(len(rings_sel)), lens)
    poly_count = np.array([len(poly_rings[g]) for g in gpolys])
    poly_of_ring = np.repeat(np.arange(len(gpolys)), poly_count)
    poly_of = poly_of_ring[ring_of]
    rstart = np.concatenate([[0], np.cumsum(lens)[:-1]])
    nxt = np.arange(len(R)) + 1
    nxt[rstart + lens - 1] = rstart
    Q = P[nxt]
    npoly = len(gpolys)
    # Newell vector of each ring
    nw = np.stack([(P[:, 1] - Q[:, 1]) * (P[:, 2] + Q[:, 2]),
                   (P[:, 2] - Q[:, 2]) * (P[:, 0] + Q[:, 0]),
                   (P[:, 0] - Q[:, 0]) * (P[:, 1] + Q[:, 1])], axis=1)
    ring_newell = np.stack([np.bincount(ring_of, nw[:, j], minlength=len(rings_sel)) for j in range(3)], 1)
    ext_ring = np.concatenate([[0], np.cumsum(poly_count)[:-1]])
    ext_newell = ring_newell[ext_ring]
    # least-squares plane through all vertices of the polygon
    cnt = np.bincount(poly_of, minlength=npoly).astype(float)
    c = np.stack([np.bincount(poly_of, P[:, j], minlength=npoly) for j in range(3)], 1) / cnt[:, None]
    D = P - c[poly_of]
    cov = np.empty((npoly, 3, 3))
    for i in range(3):
        for j in range(i, 3):
            cov[:, i, j] = cov[:, j, i] = np.bincount(poly_of, D[:, i] * D[:, j], minlength=npoly)
    _, vecs = np.linalg.eigh(cov)
    n = vecs[:, :, 0]
    flip = np.einsum("ij,ij->i", n, ext_newell) < 0
    n[flip] *= -1
    ext_area2 = np.linalg.norm(ext_newell, axis=1)
    dist = np.abs(np.einsum("ij,ij->i", D, n[poly_of]))
    maxd = np.zeros(npoly)
    np.maximum.at(maxd, poly_of, dist)
    u, v = _plane_basis(n)
    P2 = np.stack([np.einsum("ij,ij->i", D, u[poly_of]), np.einsum("ij,ij->i", D, v[poly_of])], 1)
    # 2D signed area of each ring (exterior is counter-clockwise by construction)
    Q2 = P2[nxt]
    area2d = 0.5 * np.bincount(ring_of, P2[:, 0] * Q2[:, 1] - Q2[:, 0] * P2[:, 1],
                               minlength=len(rings_sel))
    # 104: each ring simple in the projection; collapsed rings too
    lr = shapely.linearrings(P2, indices=ring_of)
    simple = shapely.is_simple(lr)
    collapsed = np.abs(area2d) <= 1e-12 + 1e-9 * lens
    bad_poly = np.zeros(npoly, dtype=bool)
    for k in np.nonzero(~simple | collapsed)[0]:
        gi = poly_of_ring[k]
        g = gpolys[gi]
        what = "collapsed to a line or a point" if collapsed[k] else "self-intersects"
        out.add(104, poly_shell[g], poly_local[g],
                f"{'exterior' if k == ext_ring[gi] else 'interior'} ring {what} in the polygon's plane")
        bad_poly[gi] = True
    degenerate = ext_area2 <= 1e-12
    bad_poly |= degenerate
    # 203
    for gi in np.nonzero(maxd > d2p)[0]:
        g = gpolys[gi]
        out.add(203, poly_shell[g], poly_local[g],
                f"vertex {maxd[gi]:.4f} m from the fitted plane (tolerance {d2p} m)")
    nonplanar = maxd > d2p
    # 2xx relations between rings (polygons with holes only)
    for gi in np.nonzero((poly_count > 1) & ~bad_poly)[0]:
        g = gpolys[gi]
        ks = np.arange(ext_ring[gi], ext_ring[gi] + poly_count[gi])
        if _ring_relations(g, ks, [ring_ids[rings_sel[k]] for k in ks], P2, ring_of, area2d,
                           poly_shell, poly_local, out):
            bad_poly[gi] = True
    # triangulation (earcut in the plane): 204 and the triangles for the shell checks
    cos_tol = np.cos(np.radians(n_deg))
    tri_list, tri_owner = [], []
    rend = rstart + lens
    for gi in np.nonzero(~bad_poly)[0].tolist():
        k0 = ext_ring[gi]
        k1 = k0 + poly_count[gi] - 1
        s0, e0 = rstart[k0], rend[k1]
        if k0 == k1 and lens[k0] == 3:
            t = np.array([[0, 1, 2]])
        else:
            ends = (rend[k0:k1 + 1] - s0).astype(np.uint32)
            t = mapbox_earcut.triangulate_float64(P2[s0:e0], ends).reshape(-1, 3).astype(np.int64)
        if len(t) == 0:
            g = gpolys[gi]
            out.add(104, poly_shell[g], poly_local[g], "polygon cannot be triangulated in its plane")
            bad_poly[gi] = True
            continue
        tri_list.append(t + s0)
        tri_owner.append(np.full(len(t), gi))
    if tri_list:
        t = np.concatenate(tri_list)
        owner = np.concatenate(tri_owner)
        a2, b2, c2 = P2[t[:, 0]], P2[t[:, 1]], P2[t[:, 2]]
        sa = (b2[:, 0] - a2[:, 0]) * (c2[:, 1] - a2[:, 1]) - (b2[:, 1] - a2[:, 1]) * (c2[:, 0] - a2[:, 0])
        neg = sa < 0
        t[neg] = t[neg][:, [0, 2, 1]]
        ids = R[t]
        A, B, C = pts[ids[:, 0]], pts[ids[:, 1]], pts[ids[:, 2]]
        tn = _cross(B - A, C - A)
        ln = np.sqrt(np.einsum("ij,ij->i", tn, tn))
        cosang = np.einsum("ij,ij->i", tn, n[owner]) / np.where(ln > 0, ln, 1.0)
        cosang[_degenerate(np.stack([A, B, C], 1), ln) | nonplanar[owner]] = 1.0
        worst = np.ones(npoly)
        np.minimum.at(worst, owner, cosang)
        for gi in np.nonzero(worst < cos_tol)[0]:
            g = gpolys[gi]
            dev = float(np.degrees(np.arccos(np.clip(worst[gi], -1, 1))))
            out.add(204, poly_shell[g], poly_local[g],
                    f"a triangle's normal deviates {dev:.1f} deg from the polygon normal "
                    f"(tolerance {n_deg} deg)")
            bad_poly[gi] = True
        bounds = np.searchsorted(owner, np.arange(npoly + 1))
        for gi in np.unique(owner).tolist():
            tri_by_poly[int(gpolys[gi])] = ids[bounds[gi]:bounds[gi + 1]]
    for gi in np.nonzero(bad_poly | nonplanar)[0]:
        poly_errors.add(int(gpolys[gi]))


def _ring_relations(g, ks, ids_list, P2, ring_of, area2d, poly_shell, poly_local, out) -> bool:
    si, pi = poly_shell[g], poly_local[g]
    bad = False
    keys = [tuple(sorted(ids.tolist())) for ids in ids_list]
    seen: dict[tuple, int] = {}
    for j, key in enumerate(keys):
        if key in seen:
            out.add(202, si, pi, f"rings {seen[key]} and {j} are identical")
            bad = True
        seen.setdefault(key, j)
    if bad:
        return True
    polys = [shapely.Polygon(P2[ring_of == k]) for k in ks]
    ext = polys[0]
    for j in range(1, len(ks)):
        if area2d[ks[j]] > 0:
            out.add(208, si, pi, f"interior ring {j} has the same orientation as the exterior ring")
            bad = True
    for j in range(1, len(polys)):
        m = ext.relate(polys[j])
        if m[4] == "1" or (m[0] != "F" and m[6] != "F"):
            out.add(201, si, pi, f"interior ring {j} intersects the exterior ring")
            bad = True
        elif m[0] == "F":
            out.add(206, si, pi, f"interior ring {j} lies outside the exterior ring")
            bad = True
    for i in range(1, len(polys)):
        for j in range(i + 1, len(polys)):
            m = polys[i].relate(polys[j])
            if m[0] == "F" and m[4] != "1":
                continue
            if m[4] == "1":
                out.add(201, si, pi, f"interior rings {i} and {j} intersect")
            elif m[6] == "F" or m[2] == "F":
                out.add(207, si, pi, f"interior rings {i} and {j} are nested")
            else:
                out.add(201, si, pi, f"interior rings {i} and {j} intersect")
            bad = True
    if not bad:
        full = shapely.Polygon(polys[0].exterior.coords, [p.exterior.coords for p in polys[1:]])
        if not full.is_valid:
            reason = shapely.is_valid_reason(full)
            if "disconnected" in reason.lower():
                out.add(205, si, pi, "the interior rings split the polygon's interior")
            else:
                out.add(201, si, pi, f"rings intersect ({reason})")
            bad = True
    return bad


def _shell_checks(si, gpolys, pts, ring_ids, poly_rings, poly_local_a, tri_by_poly, out):
    """Topology (301-307) and, if it is sound, geometry (306) of one shell; returns (ok, tris, vol)."""
    n = len(gpolys)
    empty = np.empty((0, 3), dtype=np.int64)
    if n < 4:
        out.add(301, si, None, f"shell has {n} polygon(s), at least 4 needed")
        return False, empty, 0.0
    # directed edges of all rings
    rings = [ring_ids[k] for g in gpolys for k in poly_rings[g]]
    rlen = np.array([len(r) for r in rings])
    ea = np.concatenate(rings)
    ep = np.repeat(np.repeat(np.arange(n), [len(poly_rings[g]) for g in gpolys]), rlen)
    rs = np.concatenate([[0], np.cumsum(rlen)[:-1]])
    nxt = np.arange(len(ea)) + 1
    nxt[rs + rlen - 1] = rs
    eb = ea[nxt]
    cp, cv = ep, ea
    nv = int(pts.shape[0])
    lo = np.minimum(ea, eb)
    hi = np.maximum(ea, eb)
    key = lo * nv + hi
    order = np.argsort(key, kind="stable")
    ks, ea, eb, ep = key[order], ea[order], eb[order], ep[order]
    brk = np.flatnonzero(np.diff(ks)) + 1                  # ks is sorted: runs of equal edges
    first = np.concatenate([[0], brk])
    counts = np.diff(np.concatenate([first, [len(ks)]]))
    ok = True
    # 302: edges used once
    if (counts == 1).any():
        free = first[counts == 1]
        for li in np.unique(ep[free]):
            nfree = int((ep[free] == li).sum())
            out.add(302, si, int(poly_local_a[gpolys[li]]),
                    f"{nfree} edge(s) of this polygon are not shared with another polygon (hole)")
        ok = False
    # 303: edges used more than twice
    nm_vertices: set[int] = set()
    for f, c in zip(first[counts > 2], counts[counts > 2]):
        va, vb = int(min(ea[f], eb[f])), int(max(ea[f], eb[f]))
        nm_vertices.update((va, vb))
        out.add(303, si, int(poly_local_a[gpolys[ep[f]]]),
                f"non-manifold edge: {c} polygons share the edge {_fmt(pts[va])}-{_fmt(pts[vb])}")
        ok = False
    # 303: vertices whose incident polygons do not form one umbrella
    corner_key, corner_id = np.unique(cp * nv + cv, return_inverse=True)
    same_next = np.nonzero(ks[1:] == ks[:-1])[0]
    i0, i1 = same_next, same_next + 1
    pa, pb = ep[i0], ep[i1]
    va, vb = np.minimum(ea[i0], eb[i0]), np.maximum(ea[i0], eb[i0])
    link_a = np.searchsorted(corner_key, np.concatenate([pa * nv + va, pa * nv + vb]))
    link_b = np.searchsorted(corner_key, np.concatenate([pb * nv + va, pb * nv + vb]))
    comp = _components(len(corner_key), link_a, link_b)
    corner_vertex = corner_key % nv
    vc = np.unique(corner_vertex * (len(corner_key) + 1) + comp) // (len(corner_key) + 1)
    vcount = np.bincount(vc, minlength=nv)
    for vtx in np.nonzero(vcount > 1)[0]:
        if int(vtx) in nm_vertices:
            continue
        li = int(corner_key[corner_vertex == vtx][0] // nv)
        out.add(303, si, int(poly_local_a[gpolys[li]]),
                f"non-manifold vertex at {_fmt(pts[vtx])}: its polygons form {vcount[vtx]} umbrellas")
        ok = False
    # 305: polygons connected through shared vertices
    used_v, vid = np.unique(cv, return_inverse=True)
    comp2 = _components(n + len(used_v), cp, n + vid)
    ncomp = len(np.unique(comp2[:n]))
    if ncomp > 1:
        out.add(305, si, None, f"the shell's polygons form {ncomp} separate components")
        ok = False
    # 307: orientation consistency over manifold edges
    two = counts == 2
    f2 = first[two]
    pa2, pb2 = ep[f2], ep[f2 + 1]
    same_dir = ea[f2] == ea[f2 + 1]
    tris = np.concatenate([tri_by_poly[g] for g in gpolys])
    tri_poly = np.repeat(np.arange(n), [len(tri_by_poly[g]) for g in gpolys])
    A, B, C = pts[tris[:, 0]], pts[tris[:, 1]], pts[tris[:, 2]]
    vols = np.bincount(tri_poly, np.einsum("ij,ij->i", A, _cross(B, C)), minlength=n) / 6.0
    if same_dir.any():
        wrong = _wrong_oriented(n, pa2, pb2, same_dir, vols)
        for li in wrong:
            out.add(307, si, int(poly_local_a[gpolys[li]]),
                    "polygon is oriented against its neighbours (normal must point outwards)")
        ok = False
    if not ok:
        return False, np.empty((0, 3), dtype=np.int64), float(vols.sum())
    hits = _self_intersections(pts, tris, tri_poly)
    if hits:
        for li in sorted({int(x) for pair in hits for x in pair})[:10]:
            out.add(306, si, int(poly_local_a[gpolys[li]]), "polygon intersects another polygon of the "
                    "shell")
        return False, tris, float(vols.sum())
    return True, tris, float(vols.sum())


def _fmt(p: np.ndarray) -> str:
    return "(" + ", ".join(f"{x:.3f}" for x in p) + ")"


def _wrong_oriented(n, pa, pb, same_dir, vols) -> list[int]:
    """Polygons whose orientation disagrees with the majority-consistent, outward orientation."""
    adj: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    for a, b, s in zip(pa.tolist(), pb.tolist(), same_dir.tolist()):
        adj[a].append((b, int(s)))
        adj[b].append((a, int(s)))
    flip = np.full(n, -1)
    conflict: set[int] = set()
    for root in range(n):
        if flip[root] >= 0:
            continue
        flip[root] = 0
        comp = [root]
        dq = deque([root])
        while dq:
            x = dq.popleft()
            for y, s in adj[x]:
                want = flip[x] ^ s
                if flip[y] < 0:
                    flip[y] = want
                    comp.append(y)
                    dq.append(y)
                elif flip[y] != want:
                    conflict.update((x, y))
        comp_a = np.array(comp)
        signs = np.where(flip[comp_a] == 1, -1.0, 1.0)
        if (signs * vols[comp_a]).sum() < 0:
            flip[comp_a] ^= 1
    wrong = set(np.nonzero(flip == 1)[0].tolist()) | conflict
    return sorted(wrong)


def _self_intersections(pts, tris, tri_poly) -> list[tuple[int, int]]:
    """Pairs of polygons (local indices) whose triangles intersect improperly."""
    T = len(tris)
    A, B, C = pts[tris[:, 0]], pts[tris[:, 1]], pts[tris[:, 2]]
    lo = np.minimum(np.minimum(A, B), C) - _EPS_PLANE_M
    hi = np.maximum(np.maximum(A, B), C) + _EPS_PLANE_M
    i, j = _bbox_pairs(lo, hi)
    m = tri_poly[i] != tri_poly[j]
    i, j = i[m], j[m]
    if len(i) == 0:
        return []
    ti, tj = tris[i], tris[j]
    shared = (ti[:, :, None] == tj[:, None, :]).sum(axis=(1, 2))
    hit = _tri_tri(pts, ti, tj, shared)
    return list({(int(a), int(b)) for a, b in zip(tri_poly[i[hit]], tri_poly[j[hit]])})


def _bbox_pairs(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs of overlapping 3D boxes: all pairs ``i < j`` of a few boxes, else a sweep along x
    (compiled: :func:`citymodel.validate3d_kernels.box_pairs`)."""
    from .validate3d_kernels import box_pairs    # numba: imported on first use (see that module)

    T = len(lo)
    if T < 2:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    order = np.empty(0, dtype=np.int64) if T <= 48 else np.argsort(lo[:, 0], kind="stable")
    return box_pairs(np.ascontiguousarray(lo, dtype=np.float64), np.ascontiguousarray(hi, dtype=np.float64),
                     order.astype(np.int64))


def _tri_tri(pts, ti, tj, shared) -> np.ndarray:
    """Triangle-triangle test: True where a pair intersects beyond what it shares.

    Non-coplanar pairs in one compiled loop (:func:`citymodel.validate3d_kernels.triangle_pairs`:
    one triangle on one side of the other's plane, else the overlap of their intervals on the
    planes' intersection line); coplanar pairs by :func:`_coplanar_overlap`.
    """
    from .validate3d_kernels import triangle_pairs   # numba: imported on first use (see that module)

    ti = np.ascontiguousarray(ti, dtype=np.int64)
    tj = np.ascontiguousarray(tj, dtype=np.int64)
    shared = np.ascontiguousarray(shared, dtype=np.int64)
    res, coplanar = triangle_pairs(np.ascontiguousarray(pts, dtype=np.float64), ti, tj, shared,
                                   _EPS_PLANE_M, _EPS_LEN_M, _EPS_AREA_M2, _EPS_REL)
    cop = np.nonzero(coplanar)[0]
    if len(cop):
        V1, V2 = pts[ti[cop]], pts[tj[cop]]
        n1 = _cross(V1[:, 1] - V1[:, 0], V1[:, 2] - V1[:, 0])
        n1 = n1 / np.linalg.norm(n1, axis=1)[:, None]
        res[cop] = _coplanar_overlap(V1, V2, n1, shared[cop])
    return res


def _cross2(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    return p[..., 0] * q[..., 1] - p[..., 1] * q[..., 0]


def _coplanar_overlap(V1, V2, n, shared) -> np.ndarray:
    """Coplanar triangle pairs: sharing nothing -> any contact; sharing vertices -> area overlap."""
    u, v = _plane_basis(n)
    o = V1[:, :1]
    a = np.stack([np.einsum("ikj,ij->ik", V1 - o, u), np.einsum("ikj,ij->ik", V1 - o, v)], -1)
    b = np.stack([np.einsum("ikj,ij->ik", V2 - o, u), np.einsum("ikj,ij->ik", V2 - o, v)], -1)
    # counter-clockwise triangles
    for t in (a, b):
        cw = _cross2(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]) < 0
        t[cw] = t[cw][:, [0, 2, 1]]
    res = np.zeros(len(a), dtype=bool)
    eps = _EPS_LEN_M
    # shared == 0: separating axis test over the 6 edge normals (touching counts as contact)
    m0 = np.nonzero(shared == 0)[0]
    if len(m0):
        A, B = a[m0], b[m0]
        separated = np.zeros(len(m0), dtype=bool)
        for T in (A, B):
            for k in range(3):
                e = T[:, (k + 1) % 3] - T[:, k]
                nrm = np.stack([e[:, 1], -e[:, 0]], 1)
                nrm /= np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-300)
                pa = np.einsum("ikj,ij->ik", A, nrm)
                pb = np.einsum("ikj,ij->ik", B, nrm)
                separated |= (pa.max(1) < pb.min(1) - eps) | (pb.max(1) < pa.min(1) - eps)
        res[m0] = ~separated
    # shared >= 1: wedges around a shared vertex overlap (two triangles sharing an edge: same side)
    m1 = np.nonzero(shared >= 1)[0]
    if len(m1):
        A, B = a[m1], b[m1]
        eq = np.linalg.norm(A[:, :, None, :] - B[:, None, :, :], axis=-1) < 1e-9
        ia = np.argmax(eq.any(axis=2), axis=1)          # a shared vertex, index in A
        ib = np.argmax(eq[np.arange(len(m1)), ia], axis=1)
        r = np.arange(len(m1))
        vtx = A[r, ia]
        pa1, pa2 = A[r, (ia + 1) % 3] - vtx, A[r, (ia + 2) % 3] - vtx   # CCW wedge pa1 -> pa2
        pb1, pb2 = B[r, (ib + 1) % 3] - vtx, B[r, (ib + 2) % 3] - vtx

        def _unit(x):
            return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-300)
        pa1, pa2, pb1, pb2 = map(_unit, (pa1, pa2, pb1, pb2))
        tol = 1e-9

        def inside(x, p, q):
            return (_cross2(p, x) > tol) & (_cross2(x, q) > tol)

        def same(x, y):
            return (np.abs(_cross2(x, y)) <= tol) & (np.einsum("ij,ij->i", x, y) > 0)
        over = (inside(pb1, pa1, pa2) | inside(pb2, pa1, pa2) | inside(pa1, pb1, pb2)
                | inside(pa2, pb1, pb2) | (same(pa1, pb1) & same(pa2, pb2)))
        res[m1] = over
    return res


def _solid_checks(pts, shells, shell_tris, poly_shell_a, ring_ids, poly_rings, out) -> None:
    """401/402/403 between the outer shell and inner shells (all shells already valid)."""
    keys = []
    for si in range(len(shells)):
        gp = np.nonzero(poly_shell_a == si)[0]
        keys.append(frozenset(tuple(sorted(ring_ids[poly_rings[g][0]].tolist())) for g in gp))
    dup = set()
    for a in range(len(shells)):
        for b in range(a + 1, len(shells)):
            if keys[a] == keys[b]:
                out.add(402, b, None, f"shell {b} duplicates shell {a}")
                dup.update((a, b))
    if dup:
        return
    for a in range(len(shells)):
        for b in range(a + 1, len(shells)):
            ta, tb = shell_tris[a], shell_tris[b]
            ii, jj = np.meshgrid(np.arange(len(ta)), np.arange(len(tb)), indexing="ij")
            ii, jj = ii.ravel(), jj.ravel()
            ti, tj = ta[ii], tb[jj]
            shared = (ti[:, :, None] == tj[:, None, :]).sum(axis=(1, 2))
            hit = _tri_tri(pts, ti, tj, np.zeros_like(shared)) | (shared > 0)
            if hit.any():
                out.add(401, b, None, f"shells {a} and {b} intersect or touch")
    if any(e.code == 401 for e in out.errors):
        return
    outer = shell_tris[0]
    for b in range(1, len(shells)):
        probe = pts[shell_tris[b][0]].mean(axis=0)
        if abs(_winding_number(pts, outer, probe)) < 0.5:
            out.add(403, b, None, f"inner shell {b} lies outside the outer shell")


def _winding_number(pts, tris, q) -> float:
    """Generalised winding number of point ``q`` w.r.t. a closed triangle mesh (1 inside, 0 out)."""
    a = pts[tris[:, 0]] - q
    b = pts[tris[:, 1]] - q
    c = pts[tris[:, 2]] - q
    la, lb, lc = (np.linalg.norm(x, axis=1) for x in (a, b, c))
    num = np.einsum("ij,ij->i", a, _cross(b, c))
    den = (la * lb * lc + np.einsum("ij,ij->i", a, b) * lc + np.einsum("ij,ij->i", b, c) * la
           + np.einsum("ij,ij->i", c, a) * lb)
    return float(np.arctan2(num, den).sum() / (2 * np.pi))
