"""Generic multi-plane LoD2 roof: a footprint partitioned by roof planes, lifted, closed by walls.

1. Every cell of a grid (``cell_m``) over the footprint takes the plane of the nearest segmented
   point; small patches are absorbed by their neighbours.
2. The label raster is polygonised (rasterio), the polygons simplified as a coverage (shared
   edges stay shared: ``shapely.coverage_simplify``) and clipped to the footprint.
3. Every plane is clipped to its support: no piece rises above the highest point of its plane's
   own points (plus ``cap_margin_m``; by more than ``CAP_TOLERANCE_M`` = 5 cm). Where a piece
   would, it is split along the plane's contour at that height and the part above becomes a flat
   cap at it, so a steep plane is not extended beyond where its points end (the solid is not
   higher than the points say).
4. Pieces are noded (every vertex that lies on another piece's edge is inserted there) so that
   the 2D partition is edge-matched.
5. Each piece is lifted onto its plane (RoofSurface); every partition edge gets a vertical wall
   between the two heights on its sides (a step edge; between a roof and the ground on the
   outline: WallSurface); an edge whose two heights cross is split at the crossing; vertical wall
   sides carry every height found at their node so that the shell is closed. Each piece also gives
   a GroundSurface at ``ground_z``.

Returns a :class:`~citymodel.geometry3d.Solid`; the caller validates it and falls back to LoD1 when
it is not valid.
"""

from __future__ import annotations

import math

import numpy as np
import rasterio.features
import shapely
from affine import Affine
from scipy import ndimage
from scipy.spatial import cKDTree
from shapely.geometry import Polygon
from shapely.geometry.polygon import orient

from ..errors import GeometryError, dataset_error
from ..geometry3d import Solid, Surface
from .planes import Plane

__all__ = ["generic_roof_solid", "partition_footprint", "support_heights"]

_PREC = 0.01        # grid of the partition's vertices (m): distinct vertices are >= 1 cm apart
_ZTOL = 0.0008      # heights closer than this at a node are one vertex (below the validator's 1 mm snap)


def partition_footprint(footprint: Polygon, xy: np.ndarray, labels: np.ndarray, *, cell_m: float = 0.5,
                        simplify_m: float = 0.5, min_patch_m2: float = 2.0, min_piece_m2: float = 0.3
                        ) -> list[tuple[Polygon, int]]:
    """Split ``footprint`` into pieces, one plane label each.

    Parameters
    ----------
    footprint : Polygon
    xy : (n, 2) array
        Points with a plane label.
    labels : (n,) int array
        Plane label per point (>= 0).
    cell_m : float
        Grid cell size.
    simplify_m : float
        Tolerance of the coverage simplification (removes the raster staircase).
    min_patch_m2 : float
        Raster patches smaller than this take the label of their surroundings.
    min_piece_m2 : float
        Clipped pieces smaller than this are merged into the neighbour they share most boundary with.

    Returns
    -------
    list of (Polygon, label)
    """
    minx, miny, maxx, maxy = footprint.bounds
    pad = 2 * cell_m
    x0, y1 = minx - pad, maxy + pad
    ncol = int(math.ceil((maxx + pad - x0) / cell_m))
    nrow = int(math.ceil((y1 - (miny - pad)) / cell_m))
    cx = x0 + (np.arange(ncol) + 0.5) * cell_m
    cy = y1 - (np.arange(nrow) + 0.5) * cell_m
    CX, CY = np.meshgrid(cx, cy)
    _, nn = cKDTree(xy).query(np.column_stack([CX.ravel(), CY.ravel()]), k=1)
    lab = labels[nn].reshape(nrow, ncol).astype(np.int32)
    # absorb small patches (connected components of one label)
    min_cells = max(1, int(round(min_patch_m2 / cell_m ** 2)))
    small = np.zeros_like(lab, dtype=bool)
    for v in np.unique(lab):
        comp, ncomp = ndimage.label(lab == v)
        if ncomp == 0:
            continue
        sizes = np.bincount(comp.ravel())
        sizes[0] = min_cells
        small |= (sizes < min_cells)[comp]
    if small.any() and not small.all():
        _, (ir, ic) = ndimage.distance_transform_edt(small, return_indices=True)
        lab = lab[ir, ic]
    transform = Affine(cell_m, 0.0, x0, 0.0, -cell_m, y1)
    polys, vals = [], []
    for geom, val in rasterio.features.shapes(lab, transform=transform, connectivity=4):
        polys.append(shapely.geometry.shape(geom))
        vals.append(int(val))
    polys = np.array(polys, dtype=object)
    if len(polys) > 1 and simplify_m > 0:
        polys = shapely.coverage_simplify(polys, simplify_m, simplify_boundary=False)
    fp = shapely.set_precision(footprint, _PREC)
    pieces: list[tuple[Polygon, int]] = []
    for g, v in zip(polys, vals):
        clipped = shapely.set_precision(shapely.intersection(g, fp), _PREC)
        for part in shapely.get_parts(clipped):
            if part.geom_type == "Polygon" and part.area > 1e-6:
                pieces.append((part, v))
    return _merge_small(pieces, min_piece_m2)


def _merge_small(pieces, min_m2):
    changed = True
    while changed and len(pieces) > 1:
        changed = False
        order = sorted(range(len(pieces)), key=lambda i: pieces[i][0].area)
        for i in order:
            g, v = pieces[i]
            if g.area >= min_m2:
                break
            best, best_len = None, 0.0
            for j, (h, w) in enumerate(pieces):
                if j == i:
                    continue
                s = shapely.intersection(g.boundary, h.boundary).length
                if s > best_len:
                    best, best_len = j, s
            if best is None:
                continue
            merged = shapely.set_precision(shapely.union(pieces[best][0], g), _PREC)
            new = [(p, pieces[best][1]) for p in shapely.get_parts(merged) if p.geom_type == "Polygon"]
            pieces = [p for k, p in enumerate(pieces) if k not in (i, best)] + new
            changed = True
            break
    return pieces


def _rings(poly: Polygon) -> list[np.ndarray]:
    poly = orient(poly, 1.0)
    out = [np.asarray(poly.exterior.coords)[:-1, :2]]
    out += [np.asarray(r.coords)[:-1, :2] for r in poly.interiors]
    return out


def _node_rings(rings_per_piece: list[list[np.ndarray]], tol: float = 2e-3) -> list[list[np.ndarray]]:
    """Insert into every ring edge the vertices of all rings that lie on it (T-junctions).

    A vertex lies on an edge when it is within ``tol`` of the edge's line and more than ``tol``
    from its ends; the inserted vertices follow each other along the edge. All edges of all rings
    are tested at once (one ball query per edge, vectorised tests).
    """
    flat = [r for rs in rings_per_piece for r in rs]
    allv = np.unique(np.round(np.concatenate(flat), 2), axis=0)
    tree = cKDTree(allv)
    A = np.concatenate(flat)                                           # every edge a -> b
    B = np.concatenate([np.concatenate([r[1:], r[:1]]) for r in flat])
    seg = B - A
    L = np.hypot(seg[:, 0], seg[:, 1])
    edge = np.flatnonzero(L >= tol)
    cand = tree.query_ball_point((A[edge] + B[edge]) / 2, L[edge] / 2 + tol)
    count = np.fromiter((len(c) for c in cand), dtype=np.int64, count=len(edge))
    e = np.repeat(edge, count)                                         # (edge, candidate vertex) pairs
    q = allv[np.fromiter((i for c in cand for i in c), dtype=np.int64, count=int(count.sum()))]
    a, sg, le = A[e], seg[e], L[e]
    t = ((q[:, 0] - a[:, 0]) * sg[:, 0] + (q[:, 1] - a[:, 1]) * sg[:, 1]) / (le * le)
    d = np.abs((q[:, 0] - a[:, 0]) * sg[:, 1] - (q[:, 1] - a[:, 1]) * sg[:, 0]) / le
    m = (t > tol / le) & (t < 1 - tol / le) & (d < tol)
    e, t = e[m], t[m]
    # each edge's start vertex (t = -1), then its inserted vertices by t
    owner = np.concatenate([np.arange(len(A)), e])
    key = np.concatenate([np.full(len(A), -1.0), t])
    order = np.lexsort((key, owner))
    pts = np.concatenate([A, A[e] + t[:, None] * seg[e]])[order]
    ring_of = np.repeat(np.arange(len(flat)), [len(r) for r in flat])
    ends = np.cumsum(np.bincount(ring_of[owner], minlength=len(flat)))
    noded = np.split(pts, ends[:-1])
    out, k = [], 0
    for rs in rings_per_piece:
        out.append(noded[k:k + len(rs)])
        k += len(rs)
    return out


def support_heights(planes: list[Plane], xyz: np.ndarray, labels: np.ndarray, *, margin_m: float = 0.0,
                    min_slope_deg: float = 3.0) -> dict[int, float]:
    """Height of each sloped plane's support: the plane's highest value at its own points, plus ``margin_m``.

    Flatter planes than ``min_slope_deg`` and planes without points are left out (not clipped).
    """
    out: dict[int, float] = {}
    for lab, pl in enumerate(planes):
        m = labels == lab
        if m.any() and pl.slope_deg >= min_slope_deg:
            out[lab] = float(np.max(pl.z(xyz[m, 0], xyz[m, 1]))) + margin_m
    return out


def _key(p) -> tuple[float, float]:
    return (round(float(p[0]), 2), round(float(p[1]), 2))


def _keys(r: np.ndarray) -> list[tuple[float, float]]:
    """:func:`_key` of every vertex of a ring."""
    return [tuple(k) for k in np.round(r, 2).tolist()]


#: a piece is clipped only where its plane rises more than this above the plane's support
CAP_TOLERANCE_M = 0.05


def _cap_rings(rings_per_piece, labs, planes, tops: dict[int, float], tol_m: float = CAP_TOLERANCE_M):
    """Clip every piece to its plane's support height (see :func:`generic_roof_solid`, step 3).

    Works on the noded rings: the plane's contour at the support height crosses piece edges at
    exact points, which are inserted into every ring that uses the edge (the neighbour too), so the
    partition stays edge-matched. A piece partly above the contour is split along it (shapely), the
    part above labelled with a new flat plane at the support height; a piece wholly above is
    relabelled. Returns ``(rings, labs, planes, source, exact, crossing, uncapped)``: ``source`` maps
    the cap labels to their plane, ``exact`` the node keys whose coordinates must not be rounded,
    ``crossing`` the node keys on a contour (plane label, cap label), ``uncapped`` the planes of
    pieces that could not be split (they keep their whole plane).
    """
    planes = list(planes)
    cap_of: dict[int, int] = {}
    source: dict[int, int] = {}

    def cap_label(lab: int) -> int:
        if lab not in cap_of:
            cap_of[lab] = len(planes)
            source[len(planes)] = lab
            planes.append(Plane(np.array([0.0, 0.0, tops[lab]]), planes[lab].origin.copy(), 0, 0.0))
        return cap_of[lab]

    def excess(lab: int, pts: np.ndarray) -> np.ndarray:
        return planes[lab].z(pts[:, 0], pts[:, 1]) - tops[lab]

    # 1. crossing points of the contours on the piece edges, per undirected edge (rounded keys)
    split_pieces: set[int] = set()
    labs = list(labs)
    on_edge: dict[tuple, list[np.ndarray]] = {}
    crossing: dict[tuple[float, float], tuple[int, int]] = {}
    taken = {k for rs in rings_per_piece for r in rs for k in _keys(r)}     # node keys in use
    for f, rs in enumerate(rings_per_piece):
        lab = labs[f]
        if lab not in tops:
            continue
        d = [excess(lab, r) for r in rs]
        if max(float(x.max()) for x in d) <= tol_m:
            continue                              # not (or hardly) above its support
        if min(float(x.min()) for x in d) >= -_ZTOL:
            labs[f] = cap_label(lab)                 # the whole piece lies above the contour
            continue
        split_pieces.add(f)
        for r, dr in zip(rs, d):
            nxt = np.roll(np.arange(len(r)), -1)
            for a, b in zip(range(len(r)), nxt):
                da, db = dr[a], dr[b]
                if da * db < 0 and abs(da) > _ZTOL and abs(db) > _ZTOL:
                    c = r[a] + da / (da - db) * (r[b] - r[a])
                    ka, kb, kc = _key(r[a]), _key(r[b]), _key(c)
                    if kc in (ka, kb) or kc in taken:
                        continue        # within 1 cm of a vertex: that vertex stands for it (no new node)
                    taken.add(kc)
                    on_edge.setdefault((ka, kb) if ka < kb else (kb, ka), []).append(c)
                    crossing[kc] = (lab, cap_label(lab))
    if not on_edge:
        return rings_per_piece, labs, planes, source, set(), {}, []
    # 2. insert them into every ring using the edge (both directions)
    ends = {k for edge in on_edge for k in edge}
    new_rings = []
    for rs in rings_per_piece:
        out_rs = []
        for r in rs:
            keys = _keys(r)
            if not ends.intersection(keys):
                out_rs.append(r)
                continue
            pts = []
            for a in range(len(r)):
                p, q = r[a], r[(a + 1) % len(r)]
                pts.append(p[None])
                ka, kb = keys[a], keys[(a + 1) % len(r)]
                extra = on_edge.get((ka, kb) if ka < kb else (kb, ka))
                if extra:
                    seg = q - p
                    ll = float(seg @ seg)
                    ts = sorted((float((c - p) @ seg) / ll, i) for i, c in enumerate(extra)) if ll > 0 else []
                    pts += [extra[i][None] for t, i in ts if 0.0 < t < 1.0]
            out_rs.append(np.concatenate(pts))
        new_rings.append(out_rs)
    # 3. split the pieces that straddle their contour
    out_rings, out_labs, uncapped = [], [], []
    for f, rs in enumerate(new_rings):
        lab = labs[f]
        if f not in split_pieces:
            out_rings.append(rs)
            out_labs.append(lab)
            continue
        a, b, c = (float(v) for v in planes[lab].coef)
        o = planes[lab].origin
        level = tops[lab] - c + a * o[0] + b * o[1]          # a x + b y = level on the contour
        pieces = _split_ring_at_contour(rs, (a, b), level) if len(rs) == 1 else None
        if pieces is None:
            pieces = _split_rings_shapely(rs, (a, b), level)
        if pieces is not None:
            pieces = [(prs, cap_label(lab) if above else lab) for prs, above in pieces]
        else:
            uncapped.append(lab)
        if not pieces:
            out_rings.append(rs)
            out_labs.append(lab)
            continue
        for prs, pl in pieces:
            out_rings.append(prs)
            out_labs.append(pl)
    exact = {_key(c) for cs in on_edge.values() for c in cs}
    return out_rings, out_labs, planes, source, exact, crossing, uncapped


def _split_ring_at_contour(rs, grad, level, on_m: float = 0.011):
    """Split a ring (no holes) that crosses the contour exactly twice, along the chord between the crossings.

    The crossing vertices are in the ring already (inserted, or an existing vertex within 1 cm of
    the contour). Returns ``[(rings, above), (rings, above)]`` or None when the ring crosses more
    often or the chord leaves the piece.
    """
    r = rs[0]
    gn = math.hypot(*grad)
    d = (r @ np.asarray(grad) - level) / max(gn, 1e-12)          # signed horizontal distance to the contour
    sign = np.where(np.abs(d) <= on_m, 0, np.sign(d)).astype(int)
    n = len(r)
    nz = np.flatnonzero(sign)
    if len(nz) == 0:
        return None
    # rotate so that the ring starts at a non-zero vertex; find the runs of equal sign
    start = int(nz[0])
    order = [(start + k) % n for k in range(n)]
    runs = []                      # (sign, first index, last index) over the non-zero vertices
    for i in order:
        if sign[i] == 0:
            continue
        if runs and runs[-1][0] == sign[i]:
            runs[-1][2] = i
        else:
            runs.append([sign[i], i, i])
    if len(runs) > 1 and runs[0][0] == runs[-1][0]:
        runs[0][1] = runs[-1][1]
        runs.pop()
    if len(runs) != 2:
        return None
    pieces = []
    for sg, first, last in runs:
        # the piece: the on-vertex before the run, the run, the on-vertex after it
        before, after = (first - 1) % n, (last + 1) % n
        if sign[before] != 0 or sign[after] != 0:
            return None
        idx = [before]
        k = first
        while True:
            idx.append(k)
            if k == last:
                break
            k = (k + 1) % n
        idx.append(after)
        ring = r[idx]
        poly = shapely.Polygon(ring)
        if not poly.is_valid or poly.area <= 1e-6:
            return None
        pieces.append(([np.asarray(orient(poly, 1.0).exterior.coords)[:-1]], sg > 0))
    total = shapely.Polygon(r).area
    if abs(sum(shapely.Polygon(p[0][0]).area for p in pieces) - total) > 1e-6 * max(total, 1.0):
        return None                # the chord left the piece
    return pieces


def _split_rings_shapely(rs, grad, level):
    """:func:`_split_ring_at_contour` for the other cases: shapely's split, its vertices snapped to the
    known ones; None when the split makes up a vertex (the piece is then kept whole)."""
    known = np.concatenate(rs)
    tree = cKDTree(known)
    out = []
    for part in _split_by_line(shapely.Polygon(rs[0], rs[1:]), grad, level):
        snapped = []
        for pr in _rings(part):
            dist, idx = tree.query(pr, k=1)
            if np.max(dist) > 0.011:          # a crossing within 1 cm of a vertex is that vertex
                return None
            snapped.append(known[idx])
        mid = np.asarray(part.representative_point().coords)[0]
        out.append((snapped, grad[0] * mid[0] + grad[1] * mid[1] > level))
    return out or None


def _split_by_line(poly: Polygon, grad: tuple[float, float], level: float) -> list[Polygon]:
    """The polygons of ``poly`` on either side of the line ``grad . (x, y) = level``."""
    from shapely.ops import split

    minx, miny, maxx, maxy = poly.bounds
    pad = 1.0 + max(maxx - minx, maxy - miny)
    gx, gy = grad
    if abs(gx) >= abs(gy):          # x = (level - gy y) / gx
        ys = np.array([miny - pad, maxy + pad])
        line = shapely.LineString(np.column_stack([(level - gy * ys) / gx, ys]))
    else:
        xs = np.array([minx - pad, maxx + pad])
        line = shapely.LineString(np.column_stack([xs, (level - gx * xs) / gy]))
    return [g for g in split(poly, line).geoms if g.geom_type == "Polygon" and g.area > 1e-6]


def generic_roof_solid(footprint: Polygon, xyz: np.ndarray, labels: np.ndarray, planes: list[Plane],
                       ground_z: float, *, cell_m: float = 0.5, simplify_m: float = 0.5,
                       snap_ridges_m: float = 0.0, building_id: str | None = None,
                       cap_margin_m: float | None = 0.0, strict_cap: bool = False) -> Solid:
    """Closed LoD2 solid with a generic multi-plane roof.

    Parameters
    ----------
    footprint : Polygon
    xyz : (n, 3) array
        Building points; ``labels`` gives their plane (-1: none).
    planes : list of Plane
    ground_z : float
        Absolute height of the GroundSurface.
    snap_ridges_m : float
        Inner partition vertices closer than this to the intersection of their faces' planes
        (ridges, valleys; the common point of three planes) are moved onto it, so that roof planes
        meet without a step. Not done when a piece would become invalid. Experimental (default
        off): outline vertices are not moved yet, so gable-end overshoots remain.
    cap_margin_m : float or None
        Every plane is clipped to the height of its own points plus this margin
        (:func:`support_heights`); None: planes are not clipped.
    strict_cap : bool
        Raise :class:`GeometryError` when a piece cannot be clipped (instead of keeping its plane
        whole above the support).

    Raises
    ------
    GeometryError
        When no partition can be made or a roof piece would reach below the ground.
    """
    m = labels >= 0
    if not m.any() or not planes:
        raise dataset_error(GeometryError, "buildings", "no roof plane to build a generic roof from",
                            "provide more building points or use the LoD1 fallback", building_id)
    pieces = partition_footprint(footprint, xyz[m, :2], labels[m], cell_m=cell_m, simplify_m=simplify_m)
    if not pieces:
        raise dataset_error(GeometryError, "buildings", "the roof partition is empty",
                            "check the footprint", building_id)
    rings = _node_rings([_rings(p) for p, _ in pieces])
    labs = [v for _, v in pieces]
    source, exact, crossing = {}, set(), {}
    if cap_margin_m is not None:
        tops = support_heights(planes, xyz[m], labels[m], margin_m=cap_margin_m)
        rings, labs, planes, source, exact, crossing, uncapped = _cap_rings(rings, labs, planes, tops)
        if uncapped and strict_cap:
            raise dataset_error(GeometryError, "buildings", f"roof plane(s) {sorted(set(uncapped))} could not be "
                                "clipped to the height of their points", "another partition or the footprint in "
                                "parts is tried", building_id)
    solid = _assemble(rings, labs, planes, ground_z, building_id, snap_ridges_m, exact, crossing)
    for surf in solid.of_kind("RoofSurface"):       # a cap belongs to the plane it clips
        if surf.attributes.get("plane") in source:
            surf.attributes["plane"] = source[surf.attributes["plane"]]
            surf.attributes["cap"] = True
    return solid


def _assemble(rings_per_piece, labs, planes, ground_z, building_id, snap_ridges_m=0.0, exact_keys=frozenset(),
              pre_crossing=None):
    # node ids
    node_id: dict[tuple[float, float], int] = {}
    nodes: list[tuple[float, float]] = []

    def nid(p, exact: bool = False) -> int:
        key = (round(float(p[0]), 2), round(float(p[1]), 2))
        i = node_id.get(key)
        if i is None:
            i = len(nodes)
            node_id[key] = i
            nodes.append((float(p[0]), float(p[1])) if exact or key in exact_keys else key)
        return i

    faces: list[list[list[int]]] = []
    for rs in rings_per_piece:
        face = []
        for r in rs:
            ids = [nid(p) for p in r]
            ids = [i for k, i in enumerate(ids) if i != ids[k - 1]] if len(ids) > 1 else ids
            if len(ids) >= 3:
                face.append(ids)
        faces.append(face)
    P = np.array(nodes, dtype=float)

    # plane coefficients as Python floats: the same arithmetic as Plane.z, without array overhead
    pc = {lab: (float(planes[lab].coef[0]), float(planes[lab].coef[1]), float(planes[lab].coef[2]),
                float(planes[lab].origin[0]), float(planes[lab].origin[1])) for lab in set(labs)}

    def zf(f: int, i: int) -> float:
        # nodes[i] holds the Python floats of P[i] (P is rebuilt from nodes whenever they change)
        a, b, c, o0, o1 = pc[labs[f]]
        x, y = nodes[i]
        return a * (x - o0) + b * (y - o1) + c

    # split interior edges whose heights cross
    crossing: dict[int, tuple[int, int]] = {node_id[k]: v for k, v in (pre_crossing or {}).items() if k in node_id}
    for _ in range(3):
        edges = _edge_map(faces)
        split = False
        for (a, b), users in edges.items():
            if len(users) != 2:
                continue
            (f, ab), (g, _) = users
            da = zf(f, a) - zf(g, a)
            db = zf(f, b) - zf(g, b)
            if da * db < 0 and abs(da) > _ZTOL and abs(db) > _ZTOL:
                t = da / (da - db)
                c = P[a] + t * (P[b] - P[a])
                key = (round(float(c[0]), 2), round(float(c[1]), 2))
                if key in node_id:
                    # the crossing is at an existing node: move that node onto the planes' intersection
                    near = a if np.linalg.norm(c - P[a]) <= np.linalg.norm(c - P[b]) else b
                    grad = np.asarray(planes[labs[f]].coef[:2]) - np.asarray(planes[labs[g]].coef[:2])
                    dz = zf(f, near) - zf(g, near)
                    q = P[near] - dz * grad / max(float(grad @ grad), 1e-12)
                    if np.linalg.norm(q - P[near]) < 0.03:
                        nodes[near] = (float(q[0]), float(q[1]))
                        P = np.array(nodes, dtype=float)
                        crossing[near] = (labs[f], labs[g])
                        split = True
                    continue
                ci = nid(c, exact=True)
                crossing[ci] = (labs[f], labs[g])
                P = np.array(nodes, dtype=float)
                for face in (faces[f], faces[g]):
                    for ring in face:
                        n = len(ring)
                        for k in range(n):
                            if {ring[k], ring[(k + 1) % n]} == {a, b}:
                                ring.insert(k + 1, ci)
                                break
                split = True
        if not split:
            break
    P = np.array(nodes, dtype=float)
    if snap_ridges_m > 0:
        P = _snap_to_intersections(P, faces, labs, planes, snap_ridges_m)
        nodes[:] = [tuple(p) for p in P.tolist()]
    node_faces: dict[int, set[int]] = {}
    for f, face in enumerate(faces):
        for ring in face:
            for i in ring:
                node_faces.setdefault(i, set()).add(f)
    for i, fs in node_faces.items():
        if i in crossing:
            continue
        fs = sorted(fs)
        for x in range(len(fs)):
            for y in range(x + 1, len(fs)):
                if labs[fs[x]] != labs[fs[y]] and abs(zf(fs[x], i) - zf(fs[y], i)) < 0.01:
                    crossing[i] = (labs[fs[x]], labs[fs[y]])
    P = _kink_collinear(P, faces, labs, planes, crossing)
    nodes[:] = [tuple(p) for p in P.tolist()]
    edges = _edge_map(faces)
    # heights per (face, node), snapped per node
    zmap: dict[tuple[int, int], float] = {}
    node_levels: dict[int, list[float]] = {}
    for f, face in enumerate(faces):
        for ring in face:
            for i in ring:
                z = zf(f, i)
                if z < ground_z + 0.2:
                    raise dataset_error(GeometryError, "buildings", f"roof plane {labs[f]} reaches down to the "
                                        f"ground ({z - ground_z:.2f} m) at {P[i, 0]:.2f} {P[i, 1]:.2f}",
                                        "the LoD1 fallback is used for this building", building_id)
                zmap[(f, i)] = z
    boundary_nodes = {a for (a, b), users in edges.items() if len(users) == 1} | \
                     {b for (a, b), users in edges.items() if len(users) == 1}
    for (f, i), z in zmap.items():
        node_levels.setdefault(i, []).append(z)
    for i in boundary_nodes:
        node_levels.setdefault(i, []).append(ground_z)
    canon: dict[int, np.ndarray] = {}
    for i, zs in node_levels.items():
        zs = np.sort(np.array(zs))
        groups = [[zs[0]]]
        for z in zs[1:]:
            if z - groups[-1][-1] <= _ZTOL:
                groups[-1].append(z)
            else:
                groups.append([z])
        canon[i] = np.array([grp[0] for grp in groups])

    def between(i: int, lo: float, hi: float) -> list[float]:
        """Heights of other faces at node i strictly between lo and hi (vertical wall sides)."""
        return [float(z) for z in canon[i] if lo + _ZTOL < z < hi - _ZTOL]

    def v3(i: int, z: float) -> list[float]:
        x, y = nodes[i]
        return [x, y, z]

    surfaces: list[Surface] = []
    for f, face in enumerate(faces):
        if not face:
            continue
        roof = [np.array([v3(i, zmap[(f, i)]) for i in ring]) for ring in face]
        surfaces.append(Surface("RoofSurface", roof, {"plane": int(labs[f])}))
        ground = [np.array([v3(i, ground_z) for i in ring[::-1]]) for ring in face]
        surfaces.append(Surface("GroundSurface", ground))
    for (a, b), users in edges.items():
        if len(users) == 1:
            f, fwd = users[0]
            s, e = (a, b) if fwd else (b, a)
            hi = (zmap[(f, s)], zmap[(f, e)])
            lo = (ground_z, ground_z)
        elif len(users) == 2:
            (f, fwd), (g, _) = users
            s, e = (a, b) if fwd else (b, a)          # f is on the left of s -> e
            zf_s, zf_e = zmap[(f, s)], zmap[(f, e)]
            zg_s, zg_e = zmap[(g, s)], zmap[(g, e)]
            ds, de = zf_s - zg_s, zf_e - zg_e
            if abs(ds) <= _ZTOL and abs(de) <= _ZTOL:
                continue
            if ds >= -_ZTOL and de >= -_ZTOL:
                hi, lo = (zf_s, zf_e), (zg_s, zg_e)
            elif ds <= _ZTOL and de <= _ZTOL:
                s, e = e, s
                hi, lo = (zg_e, zg_s), (zf_e, zf_s)
            else:
                raise dataset_error(GeometryError, "buildings", "crossing heights on an edge could not be split",
                                    "the LoD1 fallback is used for this building", building_id)
        else:
            raise dataset_error(GeometryError, "buildings", f"partition edge used {len(users)} times",
                                "the LoD1 fallback is used for this building", building_id)
        ring = [v3(s, lo[0]), v3(e, lo[1])]
        if hi[1] - lo[1] > _ZTOL:
            ring += [v3(e, z) for z in between(e, lo[1], hi[1])]
            ring.append(v3(e, hi[1]))
        if hi[0] - lo[0] > _ZTOL:
            ring.append(v3(s, hi[0]))
            ring += [v3(s, z) for z in between(s, lo[0], hi[0])[::-1]]
        r = np.array(ring)
        if len(r) >= 3:
            surfaces.append(Surface("WallSurface", [r]))
    return Solid(surfaces, lod=2)


def _snap_to_intersections(P: np.ndarray, faces, labs, planes, max_move_m: float) -> np.ndarray:
    """Move inner nodes onto the intersection of the planes of their faces (see generic_roof_solid)."""
    node_faces: dict[int, set[int]] = {}
    count: dict[tuple[int, int], int] = {}
    for f, face in enumerate(faces):
        for ring in face:
            n = len(ring)
            for k in range(n):
                node_faces.setdefault(ring[k], set()).add(f)
                key = (min(ring[k], ring[(k + 1) % n]), max(ring[k], ring[(k + 1) % n]))
                count[key] = count.get(key, 0) + 1
    boundary = {i for key, c in count.items() if c == 1 for i in key}
    Q = P.copy()
    for i, fs in node_faces.items():
        if i in boundary:
            continue
        labset = sorted({labs[f] for f in fs})
        if len(labset) < 2:
            continue
        C = [np.asarray(planes[lab].coef, float) for lab in labset]
        o = planes[labset[0]].origin
        A = np.array([c[:2] - C[0][:2] for c in C[1:]])
        b = np.array([C[0][2] - c[2] for c in C[1:]])
        p0 = P[i] - o
        if len(A) == 1:
            g = A[0]
            gg = float(g @ g)
            if gg < 1e-6:
                continue
            q = p0 - (g @ p0 - b[0]) * g / gg
        else:
            sol, *_ = np.linalg.lstsq(A, b, rcond=None)
            if np.max(np.abs(A @ sol - b)) > 0.05:
                continue
            q = sol
        if np.linalg.norm(q - p0) <= max_move_m:
            Q[i] = q + o
    # keep the move only when every piece stays a valid polygon
    for face in faces:
        if not face:
            continue
        poly = shapely.Polygon(Q[face[0]], [Q[r] for r in face[1:]])
        if not poly.is_valid:
            return P
    return Q


def _kink_collinear(P: np.ndarray, faces, labs, planes, crossing, shift_m: float = 0.003) -> np.ndarray:
    """Move vertices that lie exactly on a straight roof edge by a few millimetres.

    A straight run a-b-c (b is a T-junction needed by a wall or a neighbour) triangulates into a
    zero-area triangle whose normal is numerical noise; validators then report 204. The shared
    node is moved for every polygon at once (topology unchanged): across the edge, or for a node
    where two roof heights cross, along the two planes' intersection line (heights stay equal).
    """
    P = P.copy()
    moved: set[int] = set()
    for face in faces:
        for ring in face:
            n = len(ring)
            if n < 3:
                continue
            idx = np.array(ring)
            a, b, c = P[np.concatenate([idx[-1:], idx[:-1]])], P[idx], P[np.concatenate([idx[1:], idx[:1]])]
            u, w = b - a, c - b
            cross = u[:, 0] * w[:, 1] - u[:, 1] * w[:, 0]
            denom = np.linalg.norm(u, axis=1) * np.linalg.norm(w, axis=1)
            straight = (np.abs(cross) <= 1e-7 * np.maximum(denom, 1e-12)) & (np.einsum("ij,ij->i", u, w) > 0)
            for k in np.flatnonzero(straight):
                node = int(idx[k])
                if node in moved:
                    continue
                d = c[k] - a[k]
                d = d / max(np.linalg.norm(d), 1e-12)
                step = np.array([-d[1], d[0]])
                if node in crossing:
                    pf, pg = planes[crossing[node][0]], planes[crossing[node][1]]
                    grad = np.array(pf.coef[:2]) - np.array(pg.coef[:2])
                    if np.linalg.norm(grad) > 1e-9:
                        step = np.array([-grad[1], grad[0]]) / np.linalg.norm(grad)
                P[node] = P[node] + shift_m * step
                moved.add(node)
    return P


def _edge_map(faces) -> dict[tuple[int, int], list[tuple[int, bool]]]:
    """Undirected edge (a < b) -> [(face, True if the face runs a -> b)]."""
    edges: dict[tuple[int, int], list[tuple[int, bool]]] = {}
    for f, face in enumerate(faces):
        for ring in face:
            n = len(ring)
            for k in range(n):
                a, b = ring[k], ring[(k + 1) % n]
                key = (a, b) if a < b else (b, a)
                edges.setdefault(key, []).append((f, a < b))
    return edges
