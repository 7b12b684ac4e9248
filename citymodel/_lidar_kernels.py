"""Compiled per-point loops of LiDAR staging (numba, ``nogil``).

Staging touches every point a few times: the ground grid, the statistics of the tile proper, the
height above the DTM. As numpy expressions those passes allocate a dozen temporary arrays per chunk
and cost about as much as decoding the LAZ; as one loop per chunk they cost a fraction of it. The
loops release the GIL, so they overlap with the lazrs decoding of the next chunk in the read-ahead
thread (lazrs itself holds the GIL).

The results are those of the numpy formulation they replace (same floor/compare semantics, the same
summation order as ``numpy.bincount``); ``tests/test_lidar_kernels.py`` checks that on random points.
Compiled functions are cached on disk (``cache=True``): only the first run on a machine compiles.
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["accumulate_pass1", "bilinear_hag"]


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
    gminx, gmaxy, gres = grid[0], grid[1], grid[2]
    grows, gcols = int(grid[3]), int(grid[4])
    cminx, cmaxy, cres = cov[0], cov[1], cov[2]
    crows, ccols = int(cov[3]), int(cov[4])
    tx0, ty0, tx1, ty1 = tile[0], tile[1], tile[2], tile[3]
    n_tile = 0
    multi = 0
    for i in range(x.shape[0]):
        xi = x[i]
        yi = y[i]
        zi = z[i]
        c = cls_raw[i] & cls_mask
        col = math.floor((xi - gminx) / gres)
        row = math.floor((gmaxy - yi) / gres)
        if row >= 0 and row < grows and col >= 0 and col < gcols:
            k = int(row) * gcols + int(col)
            any_cnt[k] += 1
            if c == ground_class:
                g_sum[k] += zi
                g_cnt[k] += 1
        if xi >= tx0 and xi < tx1 and yi >= ty0 and yi < ty1:
            n_tile += 1
            cls_hist[c] += 1
            b = bits[i]
            rn = b & rn_mask
            ret_hist[min(rn, 15)] += 1
            if ((b >> nr_shift) & nr_mask) > 1:
                multi += 1
            ccol = math.floor((xi - cminx) / cres)
            crow = math.floor((cmaxy - yi) / cres)
            if crow >= 0 and crow < crows and ccol >= 0 and ccol < ccols:
                cov_cnt[int(crow) * ccols + int(ccol)] += 1
            if xi < bmin[0]:
                bmin[0] = xi
            if yi < bmin[1]:
                bmin[1] = yi
            if zi < bmin[2]:
                bmin[2] = zi
            if xi > bmax[0]:
                bmax[0] = xi
            if yi > bmax[1]:
                bmax[1] = yi
            if zi > bmax[2]:
                bmax[2] = zi
    return n_tile, multi


@numba.njit(nogil=True, cache=True)
def bilinear_hag(X, Y, Z, scales, offsets, coef, rows, cols, minx, maxy, inv_res, tile, low, high, out):
    """Height above the DTM of integer LAS coordinates, with outlier counts of the tile's points.

    ``coef`` is the ``((rows - 1) * (cols - 1), 4)`` patch table of :class:`citymodel.lidar._Bilinear`
    (``rows x cols`` cell-centre lattice of the grid whose upper-left corner is ``(minx, maxy)``);
    beyond the outer centres the position is clamped. Writes ``out`` (float32, may be a strided
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
