"""Airborne LiDAR of the sample city, sampled from the ground truth (vectorised over points).

Per 1 km tile, points are drawn uniformly over the part of the LiDAR area inside the tile
(``DENSITY_M2`` per m²) and put on the highest surface a scanner would hit first: roofs (the
maximum over a building's parts), tree crowns (noisy ellipsoids; some pulses pass through to what
lies below), else the terrain. Additionally: a few wall points, birds (20-80 m above ground) and low
noise (1-5 m below ground), measurement noise ``NOISE_M``, and almost no returns from the water.
Classes as in Thuringia's DOM data: 2 ground, 1 everything else (no building class 6).

The hard cases of issue #14 add what real scans show there: a roof with ``overhang_m`` is hit that
far beyond its walls (over a lower neighbour too: the highest surface wins), wall points hidden
inside a touching building are not seen, and an open ``lattice`` tower returns
:data:`LATTICE_SHARES` of its pulses from its top platform, its horizontal bracing levels, members
at any height and the ground below.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import laspy
import numpy as np
import pyproj
import shapely

from ..roofs import building_roof_height
from .layout import Building, Tree
from .terrain import in_water, terrain_height, water_level

DENSITY_M2 = 10.0
NOISE_M = 0.03
WALL_DENSITY_M2 = 0.4          # points per m² of facade
WATER_RETURN_SHARE = 0.02
CROWN_HIT_SHARE = 0.75
#: an open lattice tower: shares of the pulses inside its footprint hitting (platform on top, one of
#: the LATTICE_LEVELS bracing levels, a member at any height); the rest reach the ground
LATTICE_SHARES = (0.3, 0.4, 0.15)
LATTICE_LEVELS = 4
BIRDS_PER_TILE = 40
LOW_NOISE_PER_TILE = 40
LAS_CREATION_DATE = _dt.date(2026, 1, 15)
SOFTWARE = "citymodel.samplecity"


CELL_M = 5.0


class _Cells:
    """Points drawn stratified: a fixed number per square cell, stored cell by cell, so that the
    points in a box are found by index arithmetic (no sort, no search)."""

    def __init__(self, bounds, density_m2: float, rng: np.random.Generator) -> None:
        minx, miny, maxx, maxy = bounds
        self.minx, self.miny = minx, miny
        self.ncx = max(1, int(round((maxx - minx) / CELL_M)))
        self.ncy = max(1, int(round((maxy - miny) / CELL_M)))
        self.cw = (maxx - minx) / self.ncx
        self.ch = (maxy - miny) / self.ncy
        self.k = int(round(self.cw * self.ch * density_m2))
        n = self.ncx * self.ncy * self.k
        cell = np.arange(n) // self.k
        self.x = minx + (cell % self.ncx + rng.random(n)) * self.cw
        self.y = miny + (cell // self.ncx + rng.random(n)) * self.ch

    def in_box(self, bounds) -> np.ndarray:
        """Indices of the points in the cells that ``bounds`` touches (a superset of the box)."""
        bx0, by0, bx1, by1 = bounds
        ix0 = max(0, int(np.floor((bx0 - self.minx) / self.cw)))
        ix1 = min(self.ncx - 1, int(np.floor((bx1 - self.minx) / self.cw)))
        iy0 = max(0, int(np.floor((by0 - self.miny) / self.ch)))
        iy1 = min(self.ncy - 1, int(np.floor((by1 - self.miny) / self.ch)))
        if ix1 < ix0 or iy1 < iy0:
            return np.empty(0, dtype=np.int64)
        cells = (np.arange(iy0, iy1 + 1)[:, None] * self.ncx + np.arange(ix0, ix1 + 1)[None, :]).ravel()
        return (cells[:, None] * self.k + np.arange(self.k)[None, :]).ravel()


def sample_tile(bounds: tuple[float, float, float, float], buildings: list[Building], trees: list[Tree],
                rng: np.random.Generator, density_m2: float = DENSITY_M2) -> dict[str, np.ndarray]:
    """Points of one tile part ``bounds`` (minx, miny, maxx, maxy) as arrays x, y, z, classification,
    intensity, return_number, number_of_returns.

    ``density_m2`` sets the pulses per m² (default :data:`DENSITY_M2`); the wall points scale with it.
    """
    minx, miny, maxx, maxy = bounds
    cells = _Cells(bounds, density_m2, rng)
    x, y = cells.x, cells.y
    n = len(x)
    z = terrain_height(x, y)
    cls = np.full(n, 2, dtype=np.uint8)
    intensity = rng.integers(300, 700, n).astype(np.uint16)
    ret = np.ones(n, dtype=np.uint8)
    nret = np.ones(n, dtype=np.uint8)
    keep = np.ones(n, dtype=bool)
    # water: almost no returns; the few that come back lie on the water surface (class 1)
    water = in_water(x, y)
    wkeep = rng.random(n) < WATER_RETURN_SHARE
    keep &= ~water | wkeep
    z = np.where(water, water_level(y), z)
    cls[water] = 1
    # roofs (an overhanging roof is seen beyond its walls, above a lower neighbour too)
    lattice = []
    for b in buildings:
        ov = float(b.attributes.get("overhang_m", 0.0))
        outline = b.footprint.buffer(ov, join_style=2) if ov > 0 else b.footprint
        idx = cells.in_box(outline.bounds)
        if len(idx) == 0:
            continue
        zr = building_roof_height(b.parts, x[idx], y[idx], tolerance_m=max(ov, 1e-6))
        hit = np.isfinite(zr)
        if ov > 0 or b.attributes.get("clipped"):
            hit &= shapely.contains_xy(outline, x[idx], y[idx])
        idx, zr = idx[hit], zr[hit]
        top = zr > z[idx]
        z[idx] = np.where(top, zr, z[idx])
        cls[idx] = 1
        intensity[idx] = rng.integers(900, 1600, len(idx))
        if b.attributes.get("structure") == "lattice":
            lattice.append((b, idx))
    # open lattice towers: most pulses pass the platform and hit members further down
    for b, idx in lattice:
        top_z = z[idx].copy()
        u = rng.random(len(idx))
        level = b.ground_z + b.eave_m * rng.integers(1, LATTICE_LEVELS + 1, len(idx)) / (LATTICE_LEVELS + 1)
        member = rng.uniform(b.ground_z + 2.0, b.ground_z + b.eave_m, len(idx))
        a, c, m = np.cumsum(LATTICE_SHARES)
        ground = terrain_height(x[idx], y[idx])
        z[idx] = np.where(u < a, top_z, np.where(u < c, level, np.where(u < m, member, ground)))
        cls[idx] = np.where(u < m, 1, 2).astype(np.uint8)
    # tree crowns: noisy ellipsoids; a share of pulses hits the crown, the others pass through
    for t in trees:
        r = t.crown_diameter_m / 2
        idx = cells.in_box((t.x - r * 1.1, t.y - r * 1.1, t.x + r * 1.1, t.y + r * 1.1))
        if len(idx) == 0:
            continue
        r_eff = r * (1.0 + 0.08 * rng.standard_normal(len(idx)))
        rho = np.hypot(x[idx] - t.x, y[idx] - t.y) / r_eff
        inside = rho < 1.0
        idx, rho = idx[inside], rho[inside]
        c = t.crown_depth_m / 2
        zc = t.ground_z + t.height_m - c
        top = zc + c * np.sqrt(1.0 - rho ** 2)
        bottom = zc - c * np.sqrt(1.0 - rho ** 2)
        depth = rng.exponential(0.5, len(idx))
        zt = np.maximum(top - depth, bottom) + rng.normal(0, 0.1, len(idx))
        hits = rng.random(len(idx)) < CROWN_HIT_SHARE
        above = zt > z[idx]
        crown = idx[hits & above]
        z[crown] = zt[hits & above]
        cls[crown] = 1
        intensity[crown] = rng.integers(80, 400, len(crown))
        ret[crown] = 1
        nret[crown] = 2
        through = idx[~hits]
        ret[through] = 2
        nret[through] = 2
    # few points on the walls (vertical facades; seen by oblique pulses)
    wx, wy, wz = [], [], []
    by_id = {b.building_id: b for b in buildings}
    for b in buildings:
        ring = np.asarray(b.footprint.exterior.coords)
        seg = np.diff(ring, axis=0)
        seg_len = np.hypot(seg[:, 0], seg[:, 1])
        area = seg_len.sum() * b.eave_m
        m = rng.poisson(area * WALL_DENSITY_M2 * density_m2 / DENSITY_M2)
        if m == 0:
            continue
        k = rng.choice(len(seg_len), size=m, p=seg_len / seg_len.sum())
        s = rng.random(m)
        normal = np.column_stack([seg[k, 1], -seg[k, 0]]) / seg_len[k, None]   # outward for a CCW ring
        px = ring[k, 0] + s * seg[k, 0] + 0.05 * normal[:, 0]
        py = ring[k, 1] + s * seg[k, 1] + 0.05 * normal[:, 1]
        inx = (px >= minx) & (px < maxx) & (py >= miny) & (py < maxy)
        if not inx.any():
            continue
        px, py = px[inx], py[inx]
        zin = building_roof_height(b.parts, px - 0.1 * normal[inx, 0], py - 0.1 * normal[inx, 1])
        zg = terrain_height(px, py)
        top = np.where(np.isfinite(zin), zin, b.ground_z + b.eave_m)
        lo = np.minimum(zg, top)
        pz = lo + rng.random(len(px)) * (top - lo)
        # a wall point inside a touching building (below its roof) is not seen
        seen = np.ones(len(px), dtype=bool)
        for other in (by_id[i] for i in b.attributes.get("touches", []) if i in by_id):
            zo = building_roof_height(other.parts, px, py)
            seen &= ~(np.isfinite(zo) & (zo > pz))
        wx.append(px[seen])
        wy.append(py[seen])
        wz.append(pz[seen])
    # birds and low noise
    nb, nl = BIRDS_PER_TILE, LOW_NOISE_PER_TILE
    bx = rng.uniform(minx, maxx, nb + nl)
    by = rng.uniform(miny, maxy, nb + nl)
    bz = terrain_height(bx, by) + np.concatenate([rng.uniform(20, 80, nb), -rng.uniform(1, 5, nl)])
    wx = np.concatenate(wx + [bx]) if wx else bx
    wy = np.concatenate(wy + [by]) if wy else by
    wz = np.concatenate(wz + [bz]) if wz else bz
    m = len(wx)
    x = np.concatenate([x[keep], wx])
    y = np.concatenate([y[keep], wy])
    z = np.concatenate([z[keep], wz]) + rng.normal(0, NOISE_M, int(keep.sum()) + m)
    cls = np.concatenate([cls[keep], np.ones(m, dtype=np.uint8)])
    intensity = np.concatenate([intensity[keep], rng.integers(100, 900, m).astype(np.uint16)])
    ret = np.concatenate([ret[keep], np.ones(m, dtype=np.uint8)])
    nret = np.concatenate([nret[keep], np.ones(m, dtype=np.uint8)])
    return {"x": x, "y": y, "z": z, "classification": cls, "intensity": intensity,
            "return_number": ret, "number_of_returns": nret}


def write_laz(path: Path, pts: dict[str, np.ndarray], origin_xy: tuple[float, float],
              gps_start_s: float) -> None:
    """Write LAS 1.4 point format 6 (scale 0.01, EPSG:25832 WKT record) as LAZ, reproducibly."""
    header = laspy.LasHeader(point_format=6, version="1.4")
    header.scales = np.array([0.01, 0.01, 0.01])
    header.offsets = np.array([origin_xy[0], origin_xy[1], 0.0])
    header.add_crs(pyproj.CRS.from_epsg(25832))
    header.creation_date = LAS_CREATION_DATE
    header.generating_software = SOFTWARE
    header.system_identifier = "citymodel sample city (synthetic)"
    las = laspy.LasData(header)
    las.x = pts["x"]
    las.y = pts["y"]
    las.z = pts["z"]
    las.classification = pts["classification"]
    las.intensity = pts["intensity"]
    las.return_number = pts["return_number"]
    las.number_of_returns = pts["number_of_returns"]
    n = len(pts["x"])
    las.gps_time = gps_start_s + np.arange(n) * 2e-6
    las.point_source_id = np.full(n, 1, dtype=np.uint16)
    tmp = path.with_suffix(".tmp.laz")
    las.write(str(tmp), do_compress=True, laz_backend=laspy.LazBackend.LazrsParallel)
    tmp.replace(path)
