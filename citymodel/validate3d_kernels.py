"""Compiled triangle-pair loops of the shell self-intersection test (306) of :mod:`citymodel.validate3d`.

A generic roof of a few hundred triangles has some ten thousand triangle pairs whose boxes
overlap; the test of one pair is a few dozen arithmetic operations with branches. As numpy
expressions over all pairs it costs a dozen (pairs, 3, 3) temporaries; as one loop it costs a
fraction of it, and a small solid no longer pays the fixed cost of those array operations. The
pairs themselves come from a sweep over the triangles' boxes (:func:`box_pairs`).

The arithmetic is that of the numpy formulation it replaces, term by term (same formulas, same
tolerances); coplanar pairs are left to :func:`citymodel.validate3d._coplanar_overlap` (flagged
here). ``tests/test_validate3d.py`` covers the cases. Compiled for its signature on import, cached
on disk (``cache=True``); import this module only where the loop runs (numba costs ~0.3 s to
import): ``import citymodel.validate3d`` does not import it.
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["triangle_pairs", "box_pairs"]


@numba.njit(nogil=True, cache=True, inline="always")
def _degenerate(v, doubled_area, eps_area, eps_rel):
    """As ``validate3d._degenerate`` for one triangle ``v`` (3, 3)."""
    longest2 = 0.0
    for k in range(3):
        a, b = v[k], v[(k + 1) % 3]
        e0, e1, e2 = b[0] - a[0], b[1] - a[1], b[2] - a[2]
        longest2 = max(longest2, e0 * e0 + e1 * e1 + e2 * e2)
    return doubled_area <= max(2 * eps_area, eps_rel * longest2)


@numba.njit(nogil=True, cache=True, inline="always")
def _interval(v, d, line):
    """Interval of a triangle on ``line`` where it meets the other triangle's plane."""
    p0 = v[0, 0] * line[0] + v[0, 1] * line[1] + v[0, 2] * line[2]
    p1 = v[1, 0] * line[0] + v[1, 1] * line[1] + v[1, 2] * line[2]
    p2 = v[2, 0] * line[0] + v[2, 1] * line[1] + v[2, 2] * line[2]
    p = (p0, p1, p2)
    lo, hi = np.inf, -np.inf
    for a in range(3):
        b = (a + 1) % 3
        da, db = d[a], d[b]
        if da == 0:
            lo, hi = min(lo, p[a]), max(hi, p[a])
        if da * db < 0:
            t = p[a] + (p[b] - p[a]) * da / (da - db)
            lo, hi = min(lo, t), max(hi, t)
    return lo, hi


@numba.njit("Tuple((b1[::1], b1[::1]))(f8[:, ::1], i8[:, ::1], i8[:, ::1], i8[::1], f8, f8, f8, f8)",
            nogil=True, cache=True)
def triangle_pairs(pts, ti, tj, shared, eps_plane, eps_len, eps_area, eps_rel):
    """Triangle-triangle test of the pairs ``(ti[k], tj[k])`` (vertex indices into ``pts``).

    Parameters
    ----------
    shared : (m,) int array
        Vertices the two triangles of a pair share (0 to 3).
    eps_plane, eps_len, eps_area, eps_rel : float
        The tolerances of :mod:`citymodel.validate3d` (``_EPS_PLANE_M``, ``_EPS_LEN_M``,
        ``_EPS_AREA_M2``, ``_EPS_REL``).

    Returns
    -------
    hit : (m,) bool
        True where two non-coplanar triangles intersect beyond what they share.
    coplanar : (m,) bool
        Valid (non-degenerate) coplanar pairs: to be decided by the coplanar overlap test.
    """
    m = len(ti)
    hit = np.zeros(m, dtype=np.bool_)
    coplanar = np.zeros(m, dtype=np.bool_)
    v1 = np.empty((3, 3))
    v2 = np.empty((3, 3))
    n1 = np.empty(3)
    n2 = np.empty(3)
    d1 = np.empty(3)
    d2 = np.empty(3)
    line = np.empty(3)
    for k in range(m):
        sh = shared[k]
        if sh >= 3:
            continue
        for r in range(3):
            for c in range(3):
                v1[r, c] = pts[ti[k, r], c]
                v2[r, c] = pts[tj[k, r], c]
        for n, v in ((n1, v1), (n2, v2)):
            a0, a1, a2 = v[1, 0] - v[0, 0], v[1, 1] - v[0, 1], v[1, 2] - v[0, 2]
            b0, b1, b2 = v[2, 0] - v[0, 0], v[2, 1] - v[0, 1], v[2, 2] - v[0, 2]
            n[0] = a1 * b2 - a2 * b1
            n[1] = a2 * b0 - a0 * b2
            n[2] = a0 * b1 - a1 * b0
        l1 = math.sqrt(n1[0] * n1[0] + n1[1] * n1[1] + n1[2] * n1[2])
        l2 = math.sqrt(n2[0] * n2[0] + n2[1] * n2[1] + n2[2] * n2[2])
        if _degenerate(v1, l1, eps_area, eps_rel) or _degenerate(v2, l2, eps_area, eps_rel):
            continue
        for c in range(3):
            n1[c] = n1[c] / l1
            n2[c] = n2[c] / l2
        z1 = z2 = 0
        pos1 = neg1 = pos2 = neg2 = True          # all >= 0, all <= 0
        for r in range(3):
            x = ((v1[r, 0] - v2[0, 0]) * n2[0] + (v1[r, 1] - v2[0, 1]) * n2[1]) + (v1[r, 2] - v2[0, 2]) * n2[2]
            y = ((v2[r, 0] - v1[0, 0]) * n1[0] + (v2[r, 1] - v1[0, 1]) * n1[1]) + (v2[r, 2] - v1[0, 2]) * n1[2]
            x = 0.0 if abs(x) < eps_plane else x
            y = 0.0 if abs(y) < eps_plane else y
            d1[r], d2[r] = x, y
            z1 += x == 0
            z2 += y == 0
            pos1 &= x >= 0
            neg1 &= x <= 0
            pos2 &= y >= 0
            neg2 &= y <= 0
        if (z1 <= sh and (pos1 or neg1)) or (z2 <= sh and (pos2 or neg2)):
            continue                               # one triangle on one side of the other's plane
        if z1 == 3 and z2 == 3:
            coplanar[k] = True
            continue
        if sh >= 2:
            continue
        line[0] = n1[1] * n2[2] - n1[2] * n2[1]
        line[1] = n1[2] * n2[0] - n1[0] * n2[2]
        line[2] = n1[0] * n2[1] - n1[1] * n2[0]
        ll = math.sqrt(line[0] * line[0] + line[1] * line[1] + line[2] * line[2])
        if not ll > 0:
            continue                               # parallel planes: no line (numpy: NaN, no hit)
        for c in range(3):
            line[c] = line[c] / ll
        lo1, hi1 = _interval(v1, d1, line)
        lo2, hi2 = _interval(v2, d2, line)
        overlap = min(hi1, hi2) - max(lo1, lo2)
        hit[k] = overlap > (-eps_len if sh == 0 else eps_len)
    return hit, coplanar


@numba.njit(nogil=True, cache=True, inline="always")
def _boxes_overlap(lo, hi, a, b):
    for c in range(3):
        if not (lo[a, c] <= hi[b, c] and lo[b, c] <= hi[a, c]):
            return False
    return True


@numba.njit("UniTuple(i8[::1], 2)(f8[:, ::1], f8[:, ::1], i8[::1])", nogil=True, cache=True)
def box_pairs(lo, hi, order):
    """Index pairs of overlapping 3D boxes (``lo``, ``hi``: (T, 3)), by a sweep along x.

    ``order`` sorts the boxes by ``lo[:, 0]`` (stably); the pairs come by the first box's position
    in ``order``, then the second's. An empty ``order`` tests all pairs ``i < j`` in row order
    (fewer boxes than a sort is worth).
    """
    T = len(lo)
    count = 0
    for sweep in range(2):                 # count, then fill
        if sweep == 1:
            i_out = np.empty(count, dtype=np.int64)
            j_out = np.empty(count, dtype=np.int64)
            count = 0
        if len(order) == 0:
            for a in range(T):
                for b in range(a + 1, T):
                    if _boxes_overlap(lo, hi, a, b):
                        if sweep == 1:
                            i_out[count], j_out[count] = a, b
                        count += 1
        else:
            for x in range(T):
                a = order[x]
                for y in range(x + 1, T):
                    b = order[y]
                    if lo[b, 0] > hi[a, 0]:
                        break
                    if _boxes_overlap(lo, hi, a, b):
                        if sweep == 1:
                            i_out[count], j_out[count] = a, b
                        count += 1
    return i_out, j_out
