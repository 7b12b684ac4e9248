"""Compiled per-point loops of the LoD2 reconstruction (numba, ``nogil``).

The segmentation visits every point's k neighbours three times: the neighbourhood's covariance
and its smallest eigenpair (normal, roughness), the link tests between neighbours and the
connected components of the links. As numpy expressions those passes gather (n, k, 3) arrays and
allocate a dozen temporaries per building; as loops over the points they cost a fraction of it.
The parametric roof fit solves some hundred small least-squares problems per rectangle
(:func:`trimmed_fits`), each with a trimmed refit: one loop per candidate instead of a dozen
stacked array passes.

The results are those of the numpy formulation they replace up to rounding:
:func:`neighbourhood_pca` evaluates the closed form of
:func:`citymodel.lod2.points.smallest_eigenpairs` per point, and :func:`component_labels` numbers
the components as ``scipy.sparse.csgraph.connected_components`` does (by their lowest point
index), :func:`trimmed_fits` solves the normal equations of ``citymodel.lod2.fit``;
``tests/test_lod2_reconstruct.py`` checks them against LAPACK, scipy and ``numpy.linalg.lstsq``.
Compiled functions are cached on disk (``cache=True``): only the first run on a machine compiles.
They are compiled for their signatures when this module is imported (loaded from the cache: with
numba's own import ~0.6 s CPU once per process), so the first building pays nothing more. Import
this module only where the loops run: ``import citymodel.lod2`` does not import it.
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["neighbourhood_pca", "link_components", "component_labels", "best_plane_inliers", "trimmed_fits",
           "fit_plane_members", "design_columns", "DESIGN_CODES"]


@numba.njit(nogil=True, cache=True, inline="always")
def _smallest_eigenpair(a00, a11, a22, a01, a02, a12, v):
    """Smallest eigenvalue of a symmetric 3x3 matrix, its unit eigenvector in ``v``; (w0, ill-conditioned)."""
    m = (a00 + a11 + a22) / 3.0
    b00, b11, b22 = a00 - m, a11 - m, a22 - m
    p2 = (b00 * b00 + b11 * b11 + b22 * b22 + 2.0 * (a01 * a01 + a02 * a02 + a12 * a12)) / 6.0
    p = math.sqrt(p2)
    det = b00 * (b11 * b22 - a12 * a12) - a01 * (a01 * b22 - a12 * a02) + a02 * (a01 * a12 - b11 * a02)
    r = det / (2.0 * p * p2) if p2 > 0 else 0.0
    r = min(max(r, -1.0), 1.0)
    phi = math.acos(r) / 3.0
    w0 = m + 2.0 * p * math.cos(phi + 2.0 * math.pi / 3.0)
    w2 = m + 2.0 * p * math.cos(phi)
    d0, d1, d2 = a00 - w0, a11 - w0, a22 - w0
    # cross products of the rows (d0 a01 a02), (a01 d1 a12), (a02 a12 d2); the longest one
    c00, c01, c02 = a01 * a12 - a02 * d1, a02 * a01 - d0 * a12, d0 * d1 - a01 * a01
    c10, c11, c12 = a01 * d2 - a02 * a12, a02 * a02 - d0 * d2, d0 * a12 - a01 * a02
    c20, c21, c22 = d1 * d2 - a12 * a12, a12 * a02 - a01 * d2, a01 * a12 - d1 * a02
    n0 = c00 * c00 + c01 * c01 + c02 * c02
    n1 = c10 * c10 + c11 * c11 + c12 * c12
    n2 = c20 * c20 + c21 * c21 + c22 * c22
    big, x, y, z = n0, c00, c01, c02
    if n1 > big:
        big, x, y, z = n1, c10, c11, c12
    if n2 > big:
        big, x, y, z = n2, c20, c21, c22
    s = math.sqrt(big if big > 0 else 1.0)
    v[0], v[1], v[2] = x / s, y / s, z / s
    w1 = 3.0 * m - w0 - w2
    top = max(w2, 1e-300)
    bad = not (big > 1e-12 * top ** 4) or not (w1 - w0 > 1e-8 * top)
    return w0, bad


@numba.njit(nogil=True, cache=True, inline="always")
def _centred_moments(p, idx):
    """Mean of the points ``p[idx]`` and their second moments about it (sums, not divided):
    ``(mx, my, mz, sxx, syy, szz, sxy, sxz, syz)``."""
    n = len(idx)
    mx = my = mz = 0.0
    for t in range(n):
        j = idx[t]
        mx += p[j, 0]
        my += p[j, 1]
        mz += p[j, 2]
    mx /= n
    my /= n
    mz /= n
    sxx = syy = szz = sxy = sxz = syz = 0.0
    for t in range(n):
        j = idx[t]
        dx = p[j, 0] - mx
        dy = p[j, 1] - my
        dz = p[j, 2] - mz
        sxx += dx * dx
        syy += dy * dy
        szz += dz * dz
        sxy += dx * dy
        sxz += dx * dz
        syz += dy * dz
    return mx, my, mz, sxx, syy, szz, sxy, sxz, syz


@numba.njit("Tuple((f8[::1], f8[:, ::1], f8[:, ::1], b1[::1]))(f8[:, ::1], i8[:, ::1])", nogil=True, cache=True)
def neighbourhood_pca(p, nb):
    """Covariance of every point's neighbourhood and its smallest eigenpair.

    Parameters
    ----------
    p : (n, 3) float64 array
        Points (m).
    nb : (n, k) int64 array
        Neighbour indices of every point (itself included).

    Returns
    -------
    w0 : (n,) smallest eigenvalues (m²)
    v0 : (n, 3) their unit eigenvectors (sign as computed)
    cov : (n, 6) the covariances (xx, yy, zz, xy, xz, yz)
    bad : (n,) bool, True where the closed form is ill-conditioned (two equal smallest
        eigenvalues: collinear or identical points); the caller solves those by ``eigh``.
    """
    n, k = nb.shape
    w0 = np.empty(n)
    v0 = np.empty((n, 3))
    cov = np.empty((n, 6))
    bad = np.zeros(n, dtype=np.bool_)
    for i in range(n):
        _, _, _, sxx, syy, szz, sxy, sxz, syz = _centred_moments(p, nb[i])
        cov[i, 0], cov[i, 1], cov[i, 2] = sxx / k, syy / k, szz / k
        cov[i, 3], cov[i, 4], cov[i, 5] = sxy / k, sxz / k, syz / k
        w0[i], bad[i] = _smallest_eigenpair(cov[i, 0], cov[i, 1], cov[i, 2], cov[i, 3], cov[i, 4], cov[i, 5],
                                            v0[i])
    return w0, v0, cov, bad


@numba.njit(nogil=True, cache=True, inline="always")
def _find(parent, a):
    root = a
    while parent[root] != root:
        root = parent[root]
    while parent[a] != root:            # path compression
        nxt = parent[a]
        parent[a] = root
        a = nxt
    return root


@numba.njit(nogil=True, cache=True, inline="always")
def _union(parent, a, b):
    ra = _find(parent, a)
    rb = _find(parent, b)
    if ra < rb:
        parent[rb] = ra
    elif rb < ra:
        parent[ra] = rb


@numba.njit(nogil=True, cache=True, inline="always")
def _number(parent):
    """Component labels 0, 1, ... in the order of each component's lowest node (as scipy numbers them)."""
    n = len(parent)
    labels = np.empty(n, dtype=np.int64)
    count = 0
    for a in range(n):
        r = _find(parent, a)
        if r == a:                       # the root is the component's lowest node
            labels[a] = count
            count += 1
        else:
            labels[a] = labels[r]
    return labels


@numba.njit("i8[::1](i8, i8[::1], i8[::1])", nogil=True, cache=True)
def component_labels(n, i, j):
    """Connected components of the undirected graph on ``n`` nodes with the edges ``(i[e], j[e])``.

    Returns
    -------
    (n,) int64 array
        Component labels, numbered in the order of each component's lowest node (the numbering of
        ``scipy.sparse.csgraph.connected_components(..., directed=False)``).
    """
    parent = np.arange(n)
    for e in range(len(i)):
        _union(parent, i[e], j[e])
    return _number(parent)


@numba.njit("i8[::1](f8[:, ::1], f8[:, ::1], i8[:, ::1], b1[::1], f8, f8)", nogil=True, cache=True)
def link_components(p, normals, nb, smooth, min_cos, max_offset_m):
    """Components of the region-growing links between neighbouring smooth points.

    Points ``a`` and its neighbour ``b = nb[a, t]`` are linked when both are smooth, distinct, their
    normals' dot product is at least ``min_cos`` and each lies within ``max_offset_m`` of the
    other's tangent plane (``|n · (p_b - p_a)|``).

    Returns
    -------
    (n,) int64 array
        Component labels as :func:`component_labels` numbers them (every point has one; a point
        without links is a component of its own).
    """
    n, k = nb.shape
    parent = np.arange(n)
    for a in range(n):
        if not smooth[a]:
            continue
        for t in range(k):
            b = nb[a, t]
            if b == a or not smooth[b]:
                continue
            if not (normals[a, 0] * normals[b, 0] + normals[a, 1] * normals[b, 1] + normals[a, 2] * normals[b, 2]
                    >= min_cos):
                continue
            dx = p[b, 0] - p[a, 0]
            dy = p[b, 1] - p[a, 1]
            dz = p[b, 2] - p[a, 2]
            if not abs(normals[a, 0] * dx + normals[a, 1] * dy + normals[a, 2] * dz) <= max_offset_m:
                continue
            if not abs(normals[b, 0] * dx + normals[b, 1] * dy + normals[b, 2] * dz) <= max_offset_m:
                continue
            _union(parent, a, b)
    return _number(parent)


@numba.njit("b1[::1](f8[:, ::1], f8[:, ::1], f8[::1], f8)", nogil=True, cache=True)
def best_plane_inliers(q, normals, offsets, tol_m):
    """Inliers of the RANSAC hypothesis with the most of them.

    Point ``q[i]`` is an inlier of plane ``h`` when ``|q[i] · normals[h] - offsets[h]| <= tol_m``.

    Returns
    -------
    (n,) bool array
        The inliers of the plane with the most inliers (the first one on ties).
    """
    best_h = 0
    best = -1
    for h in range(len(normals)):
        nx, ny, nz, c = normals[h, 0], normals[h, 1], normals[h, 2], offsets[h]
        count = 0
        for i in range(len(q)):
            if abs(q[i, 0] * nx + q[i, 1] * ny + q[i, 2] * nz - c) <= tol_m:
                count += 1
        if count > best:
            best, best_h = count, h
    nx, ny, nz, c = normals[best_h, 0], normals[best_h, 1], normals[best_h, 2], offsets[best_h]
    out = np.empty(len(q), dtype=np.bool_)
    for i in range(len(q)):
        out[i] = abs(q[i, 0] * nx + q[i, 1] * ny + q[i, 2] * nz - c) <= tol_m
    return out


@numba.njit(nogil=True, cache=True, inline="always")
def _weighted_fit(X, z, w, reg, A, b, theta):
    """``theta`` of ``min sum w (z - X theta)²`` by the normal equations ``(X'WX + reg I) theta = X'Wz``
    (Gaussian elimination with partial pivoting; ``A``, ``b`` are work space; 1 to 3 columns)."""
    p, n = X.shape
    s00 = s01 = s02 = s11 = s12 = s22 = b0 = b1 = b2 = 0.0
    for i in range(n):
        wi = w[i]
        x0 = X[0, i]
        x1 = X[1, i] if p > 1 else 0.0
        x2 = X[2, i] if p > 2 else 0.0
        wz = wi * z[i]
        w0, w1 = wi * x0, wi * x1
        s00 += w0 * x0
        s01 += w0 * x1
        s02 += w0 * x2
        s11 += w1 * x1
        s12 += w1 * x2
        s22 += wi * x2 * x2
        b0 += x0 * wz
        b1 += x1 * wz
        b2 += x2 * wz
    A[0, 0], A[0, 1], A[0, 2] = s00 + reg, s01, s02
    A[1, 0], A[1, 1], A[1, 2] = s01, s11 + reg, s12
    A[2, 0], A[2, 1], A[2, 2] = s02, s12, s22 + reg
    b[0], b[1], b[2] = b0, b1, b2
    for col in range(p):
        piv = col
        for r in range(col + 1, p):
            if abs(A[r, col]) > abs(A[piv, col]):
                piv = r
        if piv != col:
            for c in range(p):
                A[col, c], A[piv, c] = A[piv, c], A[col, c]
            b[col], b[piv] = b[piv], b[col]
        for r in range(col + 1, p):
            f = A[r, col] / A[col, col]
            for c in range(col, p):
                A[r, c] -= f * A[col, c]
            b[r] -= f * b[col]
    for r in range(p - 1, -1, -1):
        acc = b[r]
        for c in range(r + 1, p):
            acc -= A[r, c] * theta[c]
        theta[r] = acc / A[r, r]


@numba.njit(nogil=True, cache=True, inline="always")
def _residuals(X, z, theta, res):
    p, n = X.shape
    t0 = theta[0]
    t1 = theta[1] if p > 1 else 0.0
    t2 = theta[2] if p > 2 else 0.0
    for i in range(n):
        x1 = X[1, i] if p > 1 else 0.0
        x2 = X[2, i] if p > 2 else 0.0
        res[i] = z[i] - (X[0, i] * t0 + x1 * t1 + x2 * t2)


@numba.njit("Tuple((f8[:, ::1], f8[:, ::1], f8[::1]))(f8[:, :, ::1], f8[::1], f8, f8)", nogil=True, cache=True)
def trimmed_fits(X, z, truncate_m, min_keep_m):
    """Least squares of ``z = X[c].T @ theta`` for a stack of design matrices, with one trimmed refit.

    Each fit is repeated on the points whose squared residual is at most
    ``max(min_keep_m, 3 s)²``, ``s`` the RMS of the residuals truncated at ``truncate_m``; the
    normal equations carry a ridge of 1e-9 (a column of zeros does not make them singular).

    Parameters
    ----------
    X : (m, p, n) array
        Design matrices, column by column (1 <= p <= 3 columns of comparable scale).
    z : (n,) array
        Heights (m).

    Returns
    -------
    theta : (m, p) parameters of the refit
    res : (m, n) residuals ``z - X[c].T theta`` of all points
    cost : (m,) truncated quadratic cost ``sum min(res², truncate_m²)`` (m²)
    """
    m, p, n = X.shape
    theta = np.empty((m, p))
    res = np.empty((m, n))
    cost = np.empty(m)
    A = np.empty((3, 3))
    b = np.empty(3)
    w = np.ones(n)
    t2 = truncate_m * truncate_m
    for c in range(m):
        Xc = X[c]
        r = res[c]
        for i in range(n):
            w[i] = 1.0
        _weighted_fit(Xc, z, w, 1e-9, A, b, theta[c])
        _residuals(Xc, z, theta[c], r)
        acc = 0.0
        for i in range(n):
            acc += min(r[i] * r[i], t2)
        lim = max(min_keep_m, 3.0 * math.sqrt(acc / n)) ** 2
        for i in range(n):
            w[i] = 1.0 if r[i] * r[i] <= lim else 0.0
        _weighted_fit(Xc, z, w, 1e-9, A, b, theta[c])
        _residuals(Xc, z, theta[c], r)
        acc = 0.0
        for i in range(n):
            acc += min(r[i] * r[i], t2)
        cost[c] = acc
    return theta, res, cost


@numba.njit("Tuple((f8, f8, f8, f8, b1))(f8[:, ::1], i8[::1])", nogil=True, cache=True)
def fit_plane_members(p, members):
    """Least-squares plane ``z = a x + b y + c`` through the points ``p[members]`` (normal equations on
    centred coordinates).

    Returns
    -------
    (a, b, c, rmse_m, ok)
        ``ok`` is False (and the rest undefined) for fewer than 3 points or an ill-conditioned
        system (collinear points): the caller fits those by ``numpy.linalg.lstsq``.
    """
    n = len(members)
    if n < 3:
        return 0.0, 0.0, 0.0, 0.0, False
    mx, my, mz, sxx, syy, _, sxy, sxz, syz = _centred_moments(p, members)
    det = sxx * syy - sxy * sxy
    if not det > 1e-9 * max(sxx * syy, 1e-300):
        return 0.0, 0.0, 0.0, 0.0, False
    a = (syy * sxz - sxy * syz) / det
    b = (sxx * syz - sxy * sxz) / det
    ss = 0.0
    for t in range(n):
        i = members[t]
        r = (p[i, 2] - mz) - a * (p[i, 0] - mx) - b * (p[i, 1] - my)
        ss += r * r
    return a, b, mz - a * mx - b * my, math.sqrt(ss / n), True


#: shape family -> code of :func:`design_columns`
DESIGN_CODES = {"mansard": 0, "mansard4": 1, "gable_asym": 2, "gable_asym2": 3, "hip": 4, "half_hip": 5}


@numba.njit(nogil=True, cache=True, inline="always")
def _min(a, b):
    return a if a <= b else b          # numpy.minimum's choice between equal values (signed zeros)


@numba.njit(nogil=True, cache=True, inline="always")
def _max(a, b):
    return a if a >= b else b


@numba.njit("f8[:, :, ::1](i8, f8, f8, f8[::1], f8[::1], f8[::1], f8[::1])", nogil=True, cache=True)
def design_columns(code, L, W, a, b, u, v):
    """Design matrices of one shape family of ``citymodel.lod2.fit`` for many shape parameters.

    Parameters
    ----------
    code : int
        :data:`DESIGN_CODES` of the family.
    L, W : float
        Length and width of the rectangle (m).
    a, b : (m,) arrays
        The family's parameters: the inset ``i`` (mansard, mansard4), the ridge offset ``vr``
        (gable_asym, gable_asym2), the hip depth ``d`` (hip), the fraction ``q`` and the depth ``d``
        (half_hip: ``a = q``, ``b = d``); ``b`` is unused otherwise.
    u, v : (n,) arrays
        Point coordinates along and across the rectangle (m).

    Returns
    -------
    (m, p, n) array
        The columns of each design matrix (``z = X[c].T @ theta``), elementwise the formulas of
        ``fit._design_stack``.
    """
    m, n = len(a), len(u)
    p = 3 if code in (0, 1, 3) else 2
    X = np.empty((m, p, n))
    for c in range(m):
        for k in range(n):
            av = abs(v[k])
            if code == 0 or code == 1:
                i = a[c]
                if code == 1:
                    au = abs(u[k])
                    t = _min(W / 2 - av, L / 2 - au) / i
                    li, wi = L - 2 * i, W - 2 * i
                    sa, sc = _max(0.0, (li - wi) / 2), _max(0.0, (wi - li) / 2)
                    w = _max(au - sa, av - sc) / (_min(li, wi) / 2)
                else:
                    t = (W / 2 - av) / i
                    w = av / (W / 2 - i)
                if t <= 1.0:
                    X[c, 0, k], X[c, 1, k], X[c, 2, k] = 1 - t, t, 0.0
                else:
                    X[c, 0, k], X[c, 1, k], X[c, 2, k] = 0.0, w, 1 - w
                continue
            X[c, 0, k] = 1.0
            if code == 2:
                X[c, 1, k] = -abs(v[k] - a[c])
            elif code == 3:
                d = v[k] - a[c]
                X[c, 1, k] = -_max(-d, 0.0)
                X[c, 2, k] = -_max(d, 0.0)
            else:
                side = 1.0 - 2.0 * av / W
                s = L / 2 - abs(u[k])
                if code == 4:
                    X[c, 1, k] = _min(side, s / a[c])
                else:
                    X[c, 1, k] = _min(side, 1.0 - a[c] * (1.0 - s / b[c]))
    return X
