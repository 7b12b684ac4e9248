"""Compiled per-point loops of LiDAR staging (numba, ``nogil``).

Staging touches every point a few times: the ground grid, the statistics of the tile proper, the
height above the DTM. As numpy expressions those passes allocate a dozen temporary arrays per chunk
and cost about as much as decoding the LAZ; as one loop per chunk they cost a fraction of it. The
loops release the GIL, so they overlap with the lazrs decoding of the next chunk in the read-ahead
thread (lazrs itself holds the GIL).

The results are those of the numpy formulation they replace (same floor/compare semantics, the same
summation order as ``numpy.bincount``); ``tests/test_lidar.py`` checks that on random points.
Compiled functions are cached on disk (``cache=True``): only the first run on a machine compiles.
Import this module only where the loops run (numba costs ~0.3 s to import): ``import citymodel.lidar``
does not import it.
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["accumulate_pass1", "accumulate_pass1_scaled", "copy_records", "pass1_records", "inside_bounds",
           "bilinear_hag"]


@numba.njit(nogil=True, cache=True, inline="always")
def _add_point(xi, yi, zi, c, b, rn_mask, nr_shift, nr_mask, ground_class, grid, any_cnt, g_sum, g_cnt, tile,
               cov, cov_cnt, cls_hist, ret_hist, bmin, bmax):
    """One point of :func:`accumulate_pass1`; returns (in tile, multi-return in tile) as 0/1."""
    col = math.floor((xi - grid[0]) / grid[2])
    row = math.floor((grid[1] - yi) / grid[2])
    gcols = int(grid[4])
    if row >= 0 and row < grid[3] and col >= 0 and col < gcols:
        k = int(row) * gcols + int(col)
        any_cnt[k] += 1
        if c == ground_class:
            g_sum[k] += zi
            g_cnt[k] += 1
    if not (xi >= tile[0] and xi < tile[2] and yi >= tile[1] and yi < tile[3]):
        return 0, 0
    cls_hist[c] += 1
    ret_hist[min(b & rn_mask, 15)] += 1
    multi = 1 if ((b >> nr_shift) & nr_mask) > 1 else 0
    ccol = math.floor((xi - cov[0]) / cov[2])
    crow = math.floor((cov[1] - yi) / cov[2])
    ccols = int(cov[4])
    if crow >= 0 and crow < cov[3] and ccol >= 0 and ccol < ccols:
        cov_cnt[int(crow) * ccols + int(ccol)] += 1
    bmin[0] = min(bmin[0], xi)
    bmin[1] = min(bmin[1], yi)
    bmin[2] = min(bmin[2], zi)
    bmax[0] = max(bmax[0], xi)
    bmax[1] = max(bmax[1], yi)
    bmax[2] = max(bmax[2], zi)
    return 1, multi


@numba.njit(nogil=True, cache=True)
def accumulate_pass1(x, y, z, cls_raw, cls_mask, bits, rn_mask, nr_shift, nr_mask, ground_class,
                     grid, any_cnt, g_sum, g_cnt, tile, cov, cov_cnt, cls_hist, ret_hist, bmin, bmax):
    """Add one chunk of points to the ground grid and the statistics of the tile proper.

    Parameters
    ----------
    x, y, z : float64 arrays
        Coordinates in the processing CRS (metres).
    cls_raw : uint8 array
        The byte that holds the class; ``cls_raw & cls_mask`` is the class (31 for point formats
        0-5, whose byte also holds the synthetic/key-point/withheld flags; 255 for 6-10).
    bits : uint8 array
        The return byte: return number ``bits & rn_mask``, number of returns
        ``(bits >> nr_shift) & nr_mask``.
    ground_class : int
        Class of ground points (2).
    grid : float64 array ``(minx, maxy, resolution, rows, cols)``
        The ground grid (tile + halo); ``any_cnt``, ``g_sum``, ``g_cnt`` are its flat per-cell
        point count, sum of ground z and ground count (updated in place).
    tile : float64 array ``(minx, miny, maxx, maxy)``
        The tile proper, half-open.
    cov : float64 array ``(minx, maxy, resolution, rows, cols)``
        The coverage grid of the tile; ``cov_cnt`` its flat per-cell count (updated).
    cls_hist, ret_hist : int64 arrays (256, 16)
        Class and return-number histograms of the tile's points (return numbers above 15 count as 15).
    bmin, bmax : float64 arrays (3,)
        Bounds of the tile's points (updated).

    Returns
    -------
    (points in the tile, points of multi-return pulses in the tile)
    """
    n_tile = 0
    multi = 0
    for i in range(x.shape[0]):
        t, m = _add_point(x[i], y[i], z[i], cls_raw[i] & cls_mask, bits[i], rn_mask, nr_shift, nr_mask,
                          ground_class, grid, any_cnt, g_sum, g_cnt, tile, cov, cov_cnt, cls_hist, ret_hist,
                          bmin, bmax)
        n_tile += t
        multi += m
    return n_tile, multi


@numba.njit(nogil=True, cache=True)
def accumulate_pass1_scaled(X, Y, Z, scales, offsets, cls_raw, cls_mask, bits, rn_mask, nr_shift, nr_mask,
                            ground_class, grid, any_cnt, g_sum, g_cnt, tile, cov, cov_cnt, cls_hist, ret_hist,
                            bmin, bmax, keep):
    """:func:`accumulate_pass1` on the integer LAS coordinates (``x = X * scale + offset``, as laspy
    computes it): no float coordinate arrays are made. Only points where ``keep`` is True count
    (an empty ``keep``: all)."""
    every = keep.shape[0] == 0
    n_tile = 0
    multi = 0
    for i in range(X.shape[0]):
        if not every and not keep[i]:
            continue
        t, m = _add_point(X[i] * scales[0] + offsets[0], Y[i] * scales[1] + offsets[1],
                          Z[i] * scales[2] + offsets[2], cls_raw[i] & cls_mask, bits[i], rn_mask, nr_shift,
                          nr_mask, ground_class, grid, any_cnt, g_sum, g_cnt, tile, cov, cov_cnt, cls_hist,
                          ret_hist, bmin, bmax)
        n_tile += t
        multi += m
    return n_tile, multi


@numba.njit(nogil=True, cache=True)
def copy_records(src, dst, x_src, y_src, z_src, x_dst, y_dst, z_dst, shifts, keep):
    """Copy records whose layout is the leading part of the output layout, shifting X, Y, Z.

    ``src`` ``(n, a)`` and ``dst`` ``(m, b)`` (``b >= a``) are the records as bytes; the bytes of
    ``dst`` beyond ``a`` (the added dimensions) are zeroed. ``x_dst`` etc. are the integer coordinate
    fields of ``dst``: ``X_out = X_in + shifts[0]`` (offsets a whole number of units apart).
    ``keep``: only the records where it is True are copied, in order (``m`` of them); an empty
    ``keep`` copies all (``m == n``). Returns the number copied.
    """
    n, a = src.shape
    b = dst.shape[1]
    every = keep.shape[0] == 0
    k = 0
    for i in range(n):
        if not every and not keep[i]:
            continue
        for j in range(a):
            dst[k, j] = src[i, j]
        for j in range(a, b):
            dst[k, j] = 0
        x_dst[k] = x_src[i] + shifts[0]
        y_dst[k] = y_src[i] + shifts[1]
        z_dst[k] = z_src[i] + shifts[2]
        k += 1
    return k


@numba.njit(nogil=True, cache=True)
def pass1_records(X, Y, Z, scales, offsets, cls_raw, cls_mask, bits, rn_mask, nr_shift, nr_mask, ground_class,
                  grid, any_cnt, g_sum, g_cnt, tile, cov, cov_cnt, cls_hist, ret_hist, bmin, bmax,
                  src, dst, x_dst, y_dst, z_dst, shifts, keep):
    """:func:`accumulate_pass1_scaled` and :func:`copy_records` of the kept records of one chunk, in
    one call.

    One call per chunk matters: lazrs holds the GIL while it decodes the next chunk on the
    read-ahead thread, and every return of the consumer into Python waits for that decode to end.
    """
    r = accumulate_pass1_scaled(X, Y, Z, scales, offsets, cls_raw, cls_mask, bits, rn_mask, nr_shift, nr_mask,
                                ground_class, grid, any_cnt, g_sum, g_cnt, tile, cov, cov_cnt, cls_hist,
                                ret_hist, bmin, bmax, keep)
    copy_records(src, dst, X, Y, Z, x_dst, y_dst, z_dst, shifts, keep)
    return r


@numba.njit(nogil=True, cache=True)
def inside_bounds(X, Y, scales, offsets, bounds, mask):
    """``mask[i]``: point ``i`` (integer LAS coordinates) lies in ``bounds`` (minx, miny, maxx, maxy;
    half-open). Returns the number inside."""
    n = 0
    for i in range(X.shape[0]):
        x = X[i] * scales[0] + offsets[0]
        y = Y[i] * scales[1] + offsets[1]
        ok = x >= bounds[0] and x < bounds[2] and y >= bounds[1] and y < bounds[3]
        mask[i] = ok
        n += ok
    return n


@numba.njit(nogil=True, cache=True)
def bilinear_hag(X, Y, Z, scales, offsets, coef, rows, cols, minx, maxy, inv_res, tile, low, high, out):
    """Height above the DTM of integer LAS coordinates, with outlier counts of the tile's points.

    ``coef`` is the ``((rows - 1) * (cols - 1), 4)`` patch table of
    :class:`citymodel.lidar.dtm_grid.BilinearInterpolator` (``rows x cols`` cell-centre lattice of
    the grid whose upper-left corner is ``(minx, maxy)``); beyond the outer centres the position is
    clamped. Writes ``out`` (float32, may be a strided
    field of a structured array) and returns ``(above high, below low, NaN)`` counted over the points
    inside ``tile`` (minx, miny, maxx, maxy; half-open).
    """
    hi = 0
    lo = 0
    missing = 0
    for i in range(X.shape[0]):
        x = X[i] * scales[0] + offsets[0]
        y = Y[i] * scales[1] + offsets[1]
        z = Z[i] * scales[2] + offsets[2]
        fc = (x - minx) * inv_res - 0.5
        fr = (maxy - y) * inv_res - 0.5
        fc = min(max(fc, 0.0), cols - 1.0)
        fr = min(max(fr, 0.0), rows - 1.0)
        c0 = min(int(fc), cols - 2)
        r0 = min(int(fr), rows - 2)
        tc = fc - c0
        tr = fr - r0
        k = r0 * (cols - 1) + c0
        g = coef[k, 0] + coef[k, 1] * tc + tr * (coef[k, 2] + coef[k, 3] * tc)
        h = np.float32(z - g)
        out[i] = h
        if x >= tile[0] and x < tile[2] and y >= tile[1] and y < tile[3]:
            if h != h:
                missing += 1
            elif h > high:
                hi += 1
            elif h < low:
                lo += 1
    return hi, lo, missing
