"""Compiled per-point loops of the point-cloud tiler (:mod:`citymodel.tiles3d.pointcloud_octree`).

:func:`route_las_chunk` (LAS integers -> local frame, colour, octree routing of one decoded
chunk), :func:`sort_by_dest` (the routed chunk grouped for the spill file), :func:`route_records`
(a dense bucket routed once more), :func:`build_subtree` (the octree below a bucket, in memory)
and :func:`fill_point_buffers` (a node's glTF vertex buffers). They are numba ``nogil`` loops, so
they run while lazrs decodes the next chunk on the read-ahead thread, and the buckets of a tile are
built on two threads at once. Compiled functions are cached on disk (``cache=True``).

Octree arithmetic (shared by all loops, so that every loop puts a point in the same cell):
the position ``p`` (float32, local frame) gives ``u = (p - origin) / edge`` (float64, in [0, 1)
inside the root cube); at level ``l`` the node index is ``floor(u * 2**l)`` and the subsampling
cell (``G`` cells per node edge, a power of two) is ``floor(u * G * 2**l)``. Products with powers
of two are exact, so a child's cells are exactly the parent's cells split in two.
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["RECORD_DTYPE", "bitmap_bytes", "route_las_chunk", "route_records", "sort_by_dest", "build_subtree",
           "fill_point_buffers", "NODE_FIELDS"]

#: One point between the passes (20 bytes): position in the tile's local frame (float32, metres),
#: colour, ASPRS class, intensity.
RECORD_DTYPE = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("r", "u1"), ("g", "u1"), ("b", "u1"),
                         ("cls", "u1"), ("intensity", "<u2"), ("pad", "<u2")])

#: Columns of the node table :func:`build_subtree` returns.
NODE_FIELDS = ("level", "i", "j", "k", "start", "n_content", "parent")


@numba.njit(nogil=True, cache=True, inline="always")
def _unit(p, o, edge):
    return (np.float64(p) - o) / edge


@numba.njit(nogil=True, cache=True, inline="always")
def _cell(u, g):
    """floor(u * g) clamped to [0, g - 1] (u is in [0, 1) for points inside the root cube)."""
    c = int(math.floor(u * g))
    if c < 0:
        return 0
    if c >= g:
        return g - 1
    return c


@numba.njit(nogil=True, cache=True, inline="always")
def _bit(cx, cy, cz, g):
    """Bit of cell (cx, cy, cz) in a bitmap of ``g**3`` cells stored in 8 x 8 x 8 blocks (one
    64-byte cache line each), so that the cells around a point share a cache line."""
    nb = (g + 7) >> 3
    return (((cx >> 3) + nb * ((cy >> 3) + nb * (cz >> 3))) << 9) | (cx & 7) | ((cy & 7) << 3) | ((cz & 7) << 6)


def bitmap_bytes(g: int) -> int:
    """Bytes of the bitmap of ``g**3`` cells (see :func:`_bit`)."""
    return (((g + 7) >> 3) ** 3) * 64


@numba.njit(nogil=True, cache=True, inline="always")
def _route(u, v, w, G, l0, i0, j0, k0, D, bitmaps, bm_off, node_off):
    """Destination of a point in a pass over the subtree of node (l0, i0, j0, k0).

    Levels ``l0 .. l0 + D - 1`` subsample (first point per cell, bit set in ``bitmaps``); a point
    kept by none of them goes to its bucket at level ``l0 + D``. Destinations are numbered per
    relative level ``d`` from ``node_off[d]``: ``x + 2**d * (y + 2**d * z)`` (node coordinates
    relative to the pass root).
    """
    for d in range(D):
        gd = G << d
        base = G << (l0 + d)
        cx = _cell(u, base) - i0 * gd
        cy = _cell(v, base) - j0 * gd
        cz = _cell(w, base) - k0 * gd
        if cx < 0 or cy < 0 or cz < 0 or cx >= gd or cy >= gd or cz >= gd:
            return -1
        bit = _bit(cx, cy, cz, gd)
        byte = bm_off[d] + (bit >> 3)
        mask = np.uint8(1 << (bit & 7))
        if bitmaps[byte] & mask == 0:
            bitmaps[byte] |= mask
            nd = 1 << d
            return node_off[d] + (cx // G) + nd * ((cy // G) + nd * (cz // G))
    nd = 1 << D
    base = 1 << (l0 + D)
    bx = _cell(u, base) - i0 * nd
    by = _cell(v, base) - j0 * nd
    bz = _cell(w, base) - k0 * nd
    if bx < 0 or by < 0 or bz < 0 or bx >= nd or by >= nd or bz >= nd:
        return -1
    return node_off[D] + bx + nd * (by + nd * bz)


@numba.njit(nogil=True, cache=True, inline="always")
def _lerp(P, U, r0, c0, a, w00, w01, w10, w11, z):
    """Bilinear ``P + z * U`` (component ``a``) in the lattice cell (r0, c0)."""
    pa = w00 * P[r0, c0, a] + w01 * P[r0, c0 + 1, a] + w10 * P[r0 + 1, c0, a] + w11 * P[r0 + 1, c0 + 1, a]
    ua = w00 * U[r0, c0, a] + w01 * U[r0, c0 + 1, a] + w10 * U[r0 + 1, c0, a] + w11 * U[r0 + 1, c0 + 1, a]
    return pa + z * ua


@numba.njit(nogil=True, cache=True)
def route_las_chunk(X, Y, Z, scales, offsets, cls_raw, cls_mask, intensity, red, green, blue, rgb_shift,
                    colour_mode, lut, z_lo, z_inv, crop, grid, P, U, origin, edge, G, D, bitmaps, bm_off,
                    node_off, out, dest, cls_hist, outside):
    """Convert and route one chunk of LAS points.

    Parameters
    ----------
    X, Y, Z : int32 arrays
        Integer LAS coordinates (``x = X * scale + offset``).
    cls_raw : uint8 array
        The class byte; ``cls_raw & cls_mask`` is the class.
    intensity : uint16 array
    red, green, blue : uint16 arrays (empty unless ``colour_mode == 1``)
        LAS colours, shifted right by ``rgb_shift`` (8 for 16-bit colours, 0 for 8-bit).
    colour_mode : int
        0: ``lut[class]``; 1: the LAS colour; 2: ``lut[height index]`` with index
        ``(z - z_lo) * z_inv`` clamped to 0..255.
    crop : float64 (5,)
        ``(use, minx, miny, maxx, maxy)``: with ``use`` 1 only points inside (half-open) count.
    grid : float64 (5,)
        ``(x0, y0, cell, nx, ny)`` of the local-frame lattice; ``P`` and ``U`` (ny, nx, 3) are the
        local position at orthometric height 0 and the local "up" vector at its nodes
        (:class:`citymodel.tiles3d.geo.LocalFrameGrid`).
    origin, edge, G, D, bitmaps, bm_off, node_off
        The root cube and the routing of :func:`_route` (pass root = the root node).
    out : RECORD_DTYPE array, dest : int32 array
        Written for the kept points, in input order.
    cls_hist : int64 (256,)
        Class histogram of the kept points (updated).
    outside : int64 (1,)
        Points outside the lattice or the root cube (updated; the caller raises an error).

    Returns
    -------
    The number of points written.
    """
    nx = int(grid[3])
    ny = int(grid[4])
    inv_cell = 1.0 / grid[2]
    use_crop = crop[0] != 0.0
    k = 0
    for i in range(X.shape[0]):
        x = X[i] * scales[0] + offsets[0]
        y = Y[i] * scales[1] + offsets[1]
        z = Z[i] * scales[2] + offsets[2]
        if use_crop and not (x >= crop[1] and x < crop[3] and y >= crop[2] and y < crop[4]):
            continue
        fx = (x - grid[0]) * inv_cell
        fy = (y - grid[1]) * inv_cell
        if not (fx >= 0.0 and fx <= nx - 1.0 and fy >= 0.0 and fy <= ny - 1.0):
            outside[0] += 1
            continue
        c0 = min(int(fx), nx - 2)
        r0 = min(int(fy), ny - 2)
        tx = fx - c0
        ty = fy - r0
        w00 = (1.0 - tx) * (1.0 - ty)
        w01 = tx * (1.0 - ty)
        w10 = (1.0 - tx) * ty
        w11 = tx * ty
        p0 = np.float32(_lerp(P, U, r0, c0, 0, w00, w01, w10, w11, z))
        p1 = np.float32(_lerp(P, U, r0, c0, 1, w00, w01, w10, w11, z))
        p2 = np.float32(_lerp(P, U, r0, c0, 2, w00, w01, w10, w11, z))
        u = _unit(p0, origin[0], edge)
        v = _unit(p1, origin[1], edge)
        w = _unit(p2, origin[2], edge)
        if not (u >= 0.0 and u < 1.0 and v >= 0.0 and v < 1.0 and w >= 0.0 and w < 1.0):
            outside[0] += 1
            continue
        dst = _route(u, v, w, G, 0, 0, 0, 0, D, bitmaps, bm_off, node_off)
        if dst < 0:
            outside[0] += 1
            continue
        c = cls_raw[i] & cls_mask
        cls_hist[c] += 1
        rec = out[k]
        rec.x = p0
        rec.y = p1
        rec.z = p2
        if colour_mode == 1:
            rec.r = np.uint8(min(red[i] >> rgb_shift, 255))
            rec.g = np.uint8(min(green[i] >> rgb_shift, 255))
            rec.b = np.uint8(min(blue[i] >> rgb_shift, 255))
        else:
            if colour_mode == 2:
                t = int((z - z_lo) * z_inv)
                li = min(max(t, 0), 255)
            else:
                li = c
            rec.r = lut[li, 0]
            rec.g = lut[li, 1]
            rec.b = lut[li, 2]
        rec.cls = np.uint8(c)
        rec.intensity = intensity[i]
        rec.pad = 0
        dest[k] = dst
        k += 1
    return k


@numba.njit(nogil=True, cache=True)
def route_records(recs, origin, edge, G, l0, i0, j0, k0, D, bitmaps, bm_off, node_off, dest):
    """:func:`route_las_chunk`'s routing for points already converted (a pass over a bucket's
    subtree: root ``(l0, i0, j0, k0)``). Returns the number of points outside that node (an error)."""
    bad = 0
    for i in range(recs.shape[0]):
        r = recs[i]
        d = _route(_unit(r.x, origin[0], edge), _unit(r.y, origin[1], edge), _unit(r.z, origin[2], edge),
                   G, l0, i0, j0, k0, D, bitmaps, bm_off, node_off)
        dest[i] = d
        if d < 0:
            bad += 1
    return bad


@numba.njit(nogil=True, cache=True)
def sort_by_dest(recs, dest, n, n_dest, out, counts):
    """Stable counting sort of ``recs[:n]`` by ``dest`` into ``out``; ``counts[d]`` the sizes."""
    for d in range(n_dest):
        counts[d] = 0
    for i in range(n):
        counts[dest[i]] += 1
    start = np.empty(n_dest, dtype=np.int64)
    s = 0
    for d in range(n_dest):
        start[d] = s
        s += counts[d]
    for i in range(n):
        d = dest[i]
        out[start[d]] = recs[i]
        start[d] += 1


@numba.njit(nogil=True, cache=True)
def build_subtree(recs, l0, i0, j0, k0, origin, edge, G, max_leaf, max_level):
    """The octree below node ``(l0, i0, j0, k0)`` over all of ``recs`` (in memory).

    A node with at most ``max_leaf`` points, or at ``max_level``, is a leaf and keeps them all;
    any other node keeps the first point (in ``recs`` order) of each of its ``G**3`` cells and
    passes the others to its children.

    Returns
    -------
    perm : int64 (n,)
        Point order: the content of node ``m`` is ``perm[start:start + n_content]``.
    nodes : int64 (m, 7)
        ``level, i, j, k, start, n_content, parent`` (:data:`NODE_FIELDS`; parent -1 for the
        subtree's root, else a row of this table).
    """
    n = recs.shape[0]
    perm = np.arange(n)
    tmp = np.empty(n, dtype=np.int64)
    cat = np.empty(n, dtype=np.int8)
    half = G // 2
    nb = (G + 7) >> 3
    bitmap = np.zeros(nb * nb * nb * 64, dtype=np.uint8)
    cap = 64
    nodes = np.empty((cap, 7), dtype=np.int64)
    m = 0
    scap = 64
    stack = np.empty((scap, 7), dtype=np.int64)
    sp = 0
    stack[0, 0] = 0
    stack[0, 1] = n
    stack[0, 2] = l0
    stack[0, 3] = i0
    stack[0, 4] = j0
    stack[0, 5] = k0
    stack[0, 6] = -1
    sp = 1
    counts = np.zeros(9, dtype=np.int64)
    offs = np.zeros(9, dtype=np.int64)
    while sp > 0:
        sp -= 1
        start = stack[sp, 0]
        count = stack[sp, 1]
        level = stack[sp, 2]
        ni = stack[sp, 3]
        nj = stack[sp, 4]
        nk = stack[sp, 5]
        parent = stack[sp, 6]
        if m == cap:
            bigger = np.empty((cap * 2, 7), dtype=np.int64)
            bigger[:cap] = nodes
            nodes = bigger
            cap *= 2
        me = m
        m += 1
        nodes[me, 0] = level
        nodes[me, 1] = ni
        nodes[me, 2] = nj
        nodes[me, 3] = nk
        nodes[me, 4] = start
        nodes[me, 6] = parent
        if count <= max_leaf or level >= max_level:
            nodes[me, 5] = count
            continue
        base = G << level
        for c in range(9):
            counts[c] = 0
        for t in range(start, start + count):
            r = recs[perm[t]]
            cx = _cell(_unit(r.x, origin[0], edge), base) - ni * G
            cy = _cell(_unit(r.y, origin[1], edge), base) - nj * G
            cz = _cell(_unit(r.z, origin[2], edge), base) - nk * G
            bit = _bit(cx, cy, cz, G)
            mask = np.uint8(1 << (bit & 7))
            if bitmap[bit >> 3] & mask == 0:
                bitmap[bit >> 3] |= mask
                cat[t] = 0
                counts[0] += 1
            else:
                o = 1 + (1 if cx >= half else 0) + (2 if cy >= half else 0) + (4 if cz >= half else 0)
                cat[t] = o
                counts[o] += 1
        s = start
        for c in range(9):
            offs[c] = s
            s += counts[c]
        for t in range(start, start + count):
            c = cat[t]
            tmp[offs[c]] = perm[t]
            offs[c] += 1
        for t in range(start, start + count):
            perm[t] = tmp[t]
        # clear the cells this node used
        for t in range(start, start + counts[0]):
            r = recs[perm[t]]
            cx = _cell(_unit(r.x, origin[0], edge), base) - ni * G
            cy = _cell(_unit(r.y, origin[1], edge), base) - nj * G
            cz = _cell(_unit(r.z, origin[2], edge), base) - nk * G
            bit = _bit(cx, cy, cz, G)
            bitmap[bit >> 3] = 0
        nodes[me, 5] = counts[0]
        s = start + counts[0]
        for o in range(8):
            cnt = counts[1 + o]
            if cnt > 0:
                if sp == scap:
                    bigger = np.empty((scap * 2, 7), dtype=np.int64)
                    bigger[:scap] = stack
                    stack = bigger
                    scap *= 2
                stack[sp, 0] = s
                stack[sp, 1] = cnt
                stack[sp, 2] = level + 1
                stack[sp, 3] = 2 * ni + (o & 1)
                stack[sp, 4] = 2 * nj + ((o >> 1) & 1)
                stack[sp, 5] = 2 * nk + ((o >> 2) & 1)
                stack[sp, 6] = me
                sp += 1
            s += cnt
    return perm, nodes[:m].copy()


@numba.njit(nogil=True, cache=True)
def fill_point_buffers(recs, perm, start, count, pos, rgb, cls, inten, lo, hi):
    """The glTF vertex data of one node: ``pos`` (n, 3) float32 in glTF's y-up axes
    (``east, up, -north``), ``rgb`` (n, 4) uint8, ``cls`` (n, 4) uint8 (class in column 0),
    ``inten`` (n, 2) uint16 (intensity in column 0); ``lo``/``hi`` (3,) get the min/max of ``pos``."""
    for a in range(3):
        lo[a] = np.inf
        hi[a] = -np.inf
    for t in range(count):
        r = recs[perm[start + t]]
        p0 = r.x
        p1 = r.z
        p2 = -r.y
        pos[t, 0] = p0
        pos[t, 1] = p1
        pos[t, 2] = p2
        lo[0] = min(lo[0], p0)
        lo[1] = min(lo[1], p1)
        lo[2] = min(lo[2], p2)
        hi[0] = max(hi[0], p0)
        hi[1] = max(hi[1], p1)
        hi[2] = max(hi[2], p2)
        rgb[t, 0] = r.r
        rgb[t, 1] = r.g
        rgb[t, 2] = r.b
        rgb[t, 3] = 0
        cls[t, 0] = r.cls
        cls[t, 1] = 0
        cls[t, 2] = 0
        cls[t, 3] = 0
        inten[t, 0] = r.intensity
        inten[t, 1] = 0
