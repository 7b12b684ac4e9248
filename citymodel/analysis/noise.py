"""Road traffic noise propagation after RLS-19 (ISO 9613-2 style), levels, isophones, exposure.

Emission: :mod:`citymodel.analysis.rls19` gives L'_W (dB(A)/m) per road for day and night.

Propagation (per receiver and per piece of road)::

    L_i  = L'_W + 10 lg(l_i) - D_div - D_atm - max(D_gr, D_z) [+ D_K,KT at the piece]
    L_r  = 10 lg sum_i 10^(0.1 L_i)                      (LrT day 06-22 h, LrN night 22-06 h)

* line sources are cut into pieces per receiver: a road segment of length L at the smallest
  distance d from the receiver is split into ``ceil(L / max(min_piece_m, d/2))`` equal pieces, so
  that every piece is at most half as long as its distance (RLS-19's rule), each a point source
  at its middle, ``source_height_m`` (0.5 m) above the road;
* ``D_div = 10 lg(2 pi s^2) = 20 lg s + 7.98`` (hemispherical spreading of a source on reflecting
  ground, s in m: 3D distance of the piece's middle);
* ``D_atm = s * air_absorption_db_km / 1000`` (5 dB/km = ``s / 200``, broadband A-weighted);
* ``D_gr = max(4.8 - (h_m / s) (34 + 600 / s), 0)`` with h_m the mean height of the path above
  ground, taken as the mean of the source and receiver heights above their own ground (the
  flat-ground form; terrain between them is not profiled);
* ``D_z`` screening by buildings, as 2.5D blocks (footprint + flat top at the building's height,
  rasterised at ``obstacle_cell_m``): the path over the obstacles in the vertical plane through
  source and receiver is the taut string over the highest edges seen from the source and from the
  receiver (at most two edges: single diffraction, or double with the edge distance e); path
  difference ``z = A + e + B - s``; ``D_z = 10 lg(3 + 80 z K_met)`` with
  ``K_met = exp(-sqrt(A B s / (2 z)) / 2000)``; capped at 20 dB (one edge) / 25 dB (two edges).
  Optionally (``iso_double_edge_c3=True``, off by default) the ISO 9613-2 eq. 15 factor
  ``C3 = (1 + (5 lambda/e)^2) / (1/3 + (5 lambda/e)^2)`` multiplies ``80 z`` for two edges.
  Diffraction round the sides of buildings and terrain screening are not computed. When the line
  of sight is free, D_z = 0. Screening replaces the ground term: ``max(D_gr, D_z)``.
* ``D_RV`` first-order reflections at the facades of the screening blocks (mirror sources,
  :func:`reflected_energies`, ``reflection_order = 1``): each road piece mirrored at a facade that
  the receiver sees it in counts as a source of its own, along the unfolded path S -> P -> R,
  with the same divergence, air, ground and screening terms (screening over the obstacles along
  both legs) and the reflection loss of RLS-19 Table 8 (0.5 dB building facades and reflecting
  walls, 3 dB absorbing, 5 dB highly absorbing). A reflection counts where its reflection point
  lies within ``reflection_distance_m`` of the source piece and of the receiver, the line of
  sight meets the facade below its top, and the facade is high enough (``h_R >= 1 m``,
  ``h_R >= 0.3 sqrt(a_R)``). Facade receivers get no reflection from their own building (RLS-19
  facade levels exclude the own facade). Higher orders are not computed.

Sources and verification
------------------------
The RLS-19 text could not be retrieved. The propagation terms were checked against MATSim
(``matsim-org/matsim-libs``, ``contribs/noise/src/main/java/org/matsim/contrib/noise/
RLS19NoiseImmission.java``, ``RLS19ShieldingCorrection.java``, ``ShieldingContext.java``; test
``contribs/noise/src/test/java/org/matsim/contrib/noise/NoiseRLS19IT.java``) and Aconiq
(``CWBudde/Aconiq``, ``backend/internal/standards/rls19/road/propagation.go``, ``shielding.go``):

* pieces ``l_i <= s_i / 2`` and ``+ 10 lg l_i`` per piece: MATSim (which quotes the RLS-19 rule of
  thumb verbatim in a comment) and Aconiq (``10 lg`` of the piece length share) agree.
* ``D_div``: MATSim ``20 lg s + 10 lg(2 pi)`` (= ``10 lg(2 pi s^2)``, kept); Aconiq ``20 lg s + 11``
  (ISO 9613-2 free-space spreading, 3 dB more attenuation) -- they DISAGREE. Kept MATSim's form: it
  is written in the RLS-19 notation, a source 0.5 m above a reflecting road radiates into the half
  space, and Aconiq's term matches ISO 9613-2 Adiv rather than any RLS notation.
* ``D_atm``: MATSim ``s / 200`` (5 dB/km, kept, also the RLS-90 value); Aconiq 1 dB/km
  ("500 Hz", ISO 9613-1) -- they DISAGREE.
* ``D_gr``: MATSim ``4.8 - (h_m/s)(34 + 600/s)``, Aconiq ``4.8 - (2 h_m/s)(17 + 300/s)``: the same
  -- agree. MATSim fixes h_m = 2.5 m; here h_m is computed from the heights.
* ``D_z = 10 lg(3 + 80 z K_met)`` with ``K_met = exp(-sqrt(A B s/(2 z))/2000)``, ``z = A + B + e - s``
  (MATSim: ``a + b + c - s`` with c the path between the first and the last edge): MATSim and
  Aconiq agree, neither has an ISO 9613-2 ``C3`` factor (the previous version applied C3 for double
  diffraction; now off by default). ``max(D_gr, D_z)``: MATSim; Aconiq replaces D_gr by D_z
  whenever the path is screened (differs only where D_z < D_gr). Neither caps ``D_z``; the caps
  20/25 dB (ISO 9613-2) are kept here as a conservative choice (they only ever raise levels) --
  NOT verified for RLS-19; ``max_single_db``/``max_multiple_db`` = ``inf`` turns them off.
* Reflections: image sources with a reflection loss per reflection as Aconiq (``reflections.go``:
  mirror the source at the wall line, the segment from the image to the receiver must cross the
  wall, the wall must be high enough at the crossing); the loss values of RLS-19 Table 8 as
  Aconiq's typed reflectors (0.5 / 3 / 5 dB). MATSim computes no reflections.

The profile scan runs in a numba kernel when numba is importable (it ships with py3dtiles), else
in chunked numpy; both give the same result (a test checks).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import shapely
from affine import Affine

from ..errors import GeometryError, SourceDataError, dataset_error
from .rls19 import METHOD

#: rays from which the numba kernel is used (importing numba and loading the cached kernel cost
#: seconds; below this the numpy scan is faster)
NUMBA_MIN_RAYS = 20_000


# ------------------------------------------------------------------------------------------------
# Parameters

@dataclass(frozen=True)
class NoiseParameters:
    """Parameters of the propagation; recorded in every output (``parameters``)."""

    source_height_m: float = 0.5
    grid_height_m: float = 4.0
    grid_spacing_m: float = 10.0
    min_piece_m: float = 1.0
    max_pieces: int = 20000
    max_distance_m: float = 2000.0
    profile_step_m: float = 1.0
    obstacle_cell_m: float = 1.0
    end_clearance_m: float = 0.75
    air_absorption_db_km: float = 5.0
    ground_effect: bool = True
    diffraction_c2: float = 80.0
    wavelength_m: float = 0.25          # used only with iso_double_edge_c3
    iso_double_edge_c3: bool = False    # ISO 9613-2 eq. 15 C3 for two edges (not in RLS-19 sources)
    max_single_db: float = 20.0
    max_multiple_db: float = 25.0
    receiver_chunk: int = 1024
    use_numba: bool = True
    reflection_order: int = 1           # 0: no reflections; 1: first-order reflections at facades
    reflection_distance_m: float = 100.0  # a reflection point farther than this from source or receiver is ignored
    reflection_loss_db: float = 0.5     # D_RV of building facades (RLS-19 Table 8, "facade")
    reflection_pairs_chunk: int = 400_000

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# ------------------------------------------------------------------------------------------------
# Inputs: line sources, obstacles, receivers

@dataclass
class LineSources:
    """Straight road segments with their emissions (arrays of equal length)."""

    ax: np.ndarray
    ay: np.ndarray
    az: np.ndarray          # absolute source height at a (ground + source height)
    bx: np.ndarray
    by: np.ndarray
    bz: np.ndarray
    lw_day_db_m: np.ndarray
    lw_night_db_m: np.ndarray
    road_index: np.ndarray  # row of the emissions frame

    @property
    def length_m(self) -> np.ndarray:
        return np.hypot(self.bx - self.ax, self.by - self.ay)

    def subset(self, mask: np.ndarray) -> "LineSources":
        return LineSources(*(getattr(self, f)[mask] for f in
                             ("ax", "ay", "az", "bx", "by", "bz", "lw_day_db_m", "lw_night_db_m", "road_index")))


@dataclass
class Obstacles:
    """Building tops as a raster of absolute heights (``-inf`` where there is no building)."""

    top_m: np.ndarray       # (rows, cols) float64
    x0: float               # west edge
    y0: float               # north edge
    cell_m: float

    @property
    def transform(self) -> Affine:
        return Affine(self.cell_m, 0.0, self.x0, 0.0, -self.cell_m, self.y0)


def _ground(dtm, x, y) -> np.ndarray:
    """Terrain height at points (nearest DTM cell); 0 without DTM; NaN outside is an error."""
    x = np.asarray(x, float)
    if dtm is None:
        return np.zeros_like(x)
    from ..raster import sample_geotiff

    z = sample_geotiff(dtm, x, np.asarray(y, float))
    if np.isnan(z).any():
        i = int(np.flatnonzero(np.isnan(z))[0])
        raise dataset_error(SourceDataError, "dtm", f"no terrain height at ({x[i]:.1f}, {float(np.asarray(y)[i]):.1f})"
                            " (outside the DTM or nodata)", "stage a DTM that covers the roads, buildings and "
                            "receivers (tile + halo)")
    return z


def line_sources(emissions, dtm=None, params: NoiseParameters = NoiseParameters()) -> LineSources:
    """Cut the road lines of an emissions frame into straight segments with emission and height.

    Parameters
    ----------
    emissions : geopandas.GeoDataFrame
        Output of :func:`citymodel.analysis.rls19.road_emissions` (``lw_day_db_m``,
        ``lw_night_db_m``, LineString/MultiLineString geometry).
    dtm : citymodel.raster.Raster, optional
        Terrain; the source lies ``source_height_m`` above it (0 m terrain without).
    """
    geoms = np.asarray(emissions.geometry.values, dtype=object)
    if len(geoms) and (shapely.is_empty(geoms) | pd.isna(geoms)).any():
        i = int(np.flatnonzero(shapely.is_empty(geoms) | pd.isna(geoms))[0])
        raise dataset_error(GeometryError, "roads", "empty road geometry", "fix or drop the record",
                            record=str(emissions["road_id"].iloc[i]) if "road_id" in emissions else str(i))
    parts, part_idx = shapely.get_parts(geoms, return_index=True)
    coords, cidx = shapely.get_coordinates(parts, return_index=True)
    same = cidx[1:] == cidx[:-1]
    a = coords[:-1][same]
    b = coords[1:][same]
    road = part_idx[cidx[:-1][same]]
    keep = np.hypot(*(b - a).T) > 1e-6
    a, b, road = a[keep], b[keep], road[keep]
    za = _ground(dtm, a[:, 0], a[:, 1]) + params.source_height_m
    zb = _ground(dtm, b[:, 0], b[:, 1]) + params.source_height_m
    lwd = emissions["lw_day_db_m"].to_numpy(float)[road]
    lwn = emissions["lw_night_db_m"].to_numpy(float)[road]
    return LineSources(a[:, 0], a[:, 1], za, b[:, 0], b[:, 1], zb, lwd, lwn, road)


def _block_heights(buildings, dtm, height_column: str = "height_m"):
    """``(ids, ground_m, height_m)`` of screening blocks; the ground from ``ground_height_m`` where
    present, else the DTM at the representative point. Raises on a missing or negative height."""
    if height_column not in buildings:
        raise dataset_error(SourceDataError, "buildings", f"no '{height_column}' column for noise screening",
                            "give each building its height above ground (m), e.g. from the LoD2 model")
    h = pd.to_numeric(buildings[height_column], errors="coerce").to_numpy(float)
    ids = buildings["building_id"].astype(str).to_numpy() if "building_id" in buildings else np.arange(len(h)).astype(str)
    bad = np.isnan(h) | (h < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise dataset_error(SourceDataError, "buildings", f"{height_column} = {h[i]} is missing or negative",
                            "give every screening building a height >= 0 m", record=ids[i])
    if "ground_height_m" in buildings:
        g = pd.to_numeric(buildings["ground_height_m"], errors="coerce").to_numpy(float)
    else:
        rp = shapely.point_on_surface(np.asarray(buildings.geometry.values, dtype=object))
        g = _ground(dtm, shapely.get_x(rp), shapely.get_y(rp))
    return ids, g, h


def building_obstacles(buildings, bounds, dtm=None, params: NoiseParameters = NoiseParameters(),
                       height_column: str = "height_m") -> Obstacles:
    """Rasterise building blocks (footprint, flat top at ground + ``height_m``) over ``bounds``.

    The ground height of a building is its ``ground_height_m`` column where present, else the DTM
    at its representative point (0 without DTM).
    """
    from rasterio import features

    minx, miny, maxx, maxy = bounds
    cell = params.obstacle_cell_m
    cols = int(math.ceil((maxx - minx) / cell))
    rows = int(math.ceil((maxy - miny) / cell))
    top = np.full((rows, cols), -np.inf)
    obs = Obstacles(top, float(minx), float(miny + rows * cell), cell)
    if buildings is None or len(buildings) == 0:
        return obs
    ids, g, h = _block_heights(buildings, dtm, height_column)
    absolute = g + h
    order = np.argsort(absolute)  # higher buildings burnt last, so they win where footprints overlap
    geoms = np.asarray(buildings.geometry.values, dtype=object)
    shapes = [(geoms[i], float(absolute[i])) for i in order if geoms[i] is not None and not geoms[i].is_empty]
    burnt = features.rasterize(shapes, out_shape=(rows, cols), transform=obs.transform, fill=np.nan,
                               dtype="float64", all_touched=False)
    top[~np.isnan(burnt)] = burnt[~np.isnan(burnt)]
    return obs


@dataclass
class Reflectors:
    """The vertical facades of the screening blocks, as wall segments that reflect sound.

    Walls run along the blocks' rings (exterior and courtyard rings); ``nx, ny`` is the unit normal
    pointing out of the building, ``top_m`` the absolute height of the wall's top (ground + block
    height), ``height_m`` its height above the building's ground (RLS-19's ``h_R``), ``loss_db`` the
    reflection loss D_RV, ``building`` the index of the building in ``building_ids``.
    """

    ax: np.ndarray
    ay: np.ndarray
    bx: np.ndarray
    by: np.ndarray
    nx: np.ndarray
    ny: np.ndarray
    top_m: np.ndarray
    height_m: np.ndarray
    loss_db: np.ndarray
    building: np.ndarray
    building_ids: np.ndarray

    def __len__(self) -> int:
        return int(self.ax.size)


def facade_reflectors(buildings, dtm=None, params: NoiseParameters = NoiseParameters(),
                      height_column: str = "height_m", min_wall_m: float = 0.1) -> Reflectors | None:
    """The facades of the screening blocks as :class:`Reflectors` (None without buildings or with
    ``params.reflection_order == 0``).

    The reflection loss is ``params.reflection_loss_db`` (RLS-19 Table 8: 0.5 dB for building
    facades), or a building's ``reflection_loss_db`` column where present.
    """
    if params.reflection_order <= 0 or buildings is None or len(buildings) == 0:
        return None
    ids, g, h = _block_heights(buildings, dtm, height_column)
    loss = np.full(len(ids), float(params.reflection_loss_db))
    if "reflection_loss_db" in buildings:
        own = pd.to_numeric(buildings["reflection_loss_db"], errors="coerce").to_numpy(float)
        loss = np.where(np.isfinite(own), own, loss)
    geoms = np.asarray(buildings.geometry.values, dtype=object)
    ok = ~(pd.isna(geoms) | shapely.is_empty(np.where(pd.isna(geoms), shapely.Point(), geoms)))
    geoms = shapely.orient_polygons(np.where(ok, geoms, shapely.Point()))      # exterior CCW, holes CW
    parts, part_of = shapely.get_parts(geoms, return_index=True)
    polys = shapely.get_type_id(parts) == 3
    parts, part_of = parts[polys], part_of[polys]
    rings, ring_of = shapely.get_rings(parts, return_index=True)
    coords, cidx = shapely.get_coordinates(rings, return_index=True)
    same = cidx[1:] == cidx[:-1]
    a, b = coords[:-1][same], coords[1:][same]
    bld = part_of[ring_of[cidx[:-1][same]]]
    v = b - a
    ln = np.hypot(v[:, 0], v[:, 1])
    keep = ln >= min_wall_m
    a, b, v, ln, bld = a[keep], b[keep], v[keep], ln[keep], bld[keep]
    # CCW exterior (CW holes): the solid lies to the left of a -> b, outside is to the right
    nx, ny = v[:, 1] / ln, -v[:, 0] / ln
    return Reflectors(a[:, 0], a[:, 1], b[:, 0], b[:, 1], nx, ny, g[bld] + h[bld], h[bld], loss[bld],
                      bld.astype(np.int64), np.asarray(ids))


# ------------------------------------------------------------------------------------------------
# Screening: path difference over the obstacle raster

def _prange(n):
    """``range`` in Python; numba replaces calls of it inside the kernel by its ``prange``."""
    return range(n)

def _screen_numpy(sx, sy, sz, kx, ky, ck, rx, ry, rz, obs: Obstacles, step: float, clear: float,
                  chunk_samples: int = 3_000_000):
    n = sx.size
    za = np.zeros(n)
    aa = np.zeros(n)
    bb = np.zeros(n)
    ee = np.zeros(n)
    if n == 0:
        return za, aa, bb, ee
    d1 = np.hypot(kx - sx, ky - sy)
    d2 = np.hypot(rx - kx, ry - ky)
    d = d1 + d2
    nk = np.maximum(np.floor((d - 2 * clear) / step).astype(np.int64) + 1, 0)
    order = np.argsort(nk)
    rows, cols = obs.top_m.shape
    top = obs.top_m.ravel()
    start = 0
    while start < n:
        kmax = max(int(nk[order[min(n - 1, start)]]), 1)
        # grow the chunk while it fits the sample budget (rays sorted by sample count)
        end = start + max(1, chunk_samples // kmax)
        end = min(end, n)
        kmax = max(int(nk[order[end - 1]]), 1)
        idx = order[start:end]
        start = end
        if nk[idx].max() <= 0:
            continue
        t = clear + step * np.arange(kmax)[None, :]
        di = d[idx][:, None]
        e1 = d1[idx][:, None]
        valid = np.arange(kmax)[None, :] < nk[idx][:, None]
        cki = ck[idx][:, None]
        valid &= ~((cki > 0) & (np.abs(t - e1) < cki))
        u1x = np.where(e1 > 0, (kx - sx)[idx][:, None] / np.maximum(e1, 1e-9), 0.0)
        u1y = np.where(e1 > 0, (ky - sy)[idx][:, None] / np.maximum(e1, 1e-9), 0.0)
        e2 = d2[idx][:, None]
        u2x = (rx - kx)[idx][:, None] / np.maximum(e2, 1e-9)
        u2y = (ry - ky)[idx][:, None] / np.maximum(e2, 1e-9)
        first = t < e1
        px = np.where(first, sx[idx][:, None] + u1x * t, kx[idx][:, None] + u2x * (t - e1))
        py = np.where(first, sy[idx][:, None] + u1y * t, ky[idx][:, None] + u2y * (t - e1))
        c = np.floor((px - obs.x0) / obs.cell_m).astype(np.int64)
        r = np.floor((obs.y0 - py) / obs.cell_m).astype(np.int64)
        inside = valid & (c >= 0) & (c < cols) & (r >= 0) & (r < rows)
        h = np.full(px.shape, -np.inf)
        h[inside] = top[(r * cols + c)[inside]]
        s_z = sz[idx][:, None]
        r_z = rz[idx][:, None]
        los = s_z + (r_z - s_z) * t / di
        blocked = (h > los).any(axis=1)
        if not blocked.any():
            continue
        h, t2, s_z, r_z, di, sel = h[blocked], np.broadcast_to(t, h.shape)[blocked], s_z[blocked], r_z[blocked], \
            di[blocked], idx[blocked]
        finite = np.isfinite(h)
        with np.errstate(invalid="ignore", divide="ignore"):
            k1 = np.argmax(np.where(finite, (h - s_z) / t2, -np.inf), axis=1)
            k2 = np.argmax(np.where(finite, (h - r_z) / (di - t2), -np.inf), axis=1)
        ar = np.arange(sel.size)
        t1, h1 = t2[ar, k1], h[ar, k1]
        tt2, h2 = t2[ar, k2], h[ar, k2]
        s0, r0, dd = s_z[:, 0], r_z[:, 0], di[:, 0]
        a = np.hypot(t1, h1 - s0)
        b = np.hypot(dd - tt2, h2 - r0)
        e = np.where(k2 > k1, np.hypot(tt2 - t1, h2 - h1), 0.0)
        # one edge: the source-side and receiver-side edges coincide (or cross)
        single = k2 <= k1
        b = np.where(single, np.hypot(dd - t1, h1 - r0), b)
        s = np.hypot(dd, r0 - s0)
        za[sel] = a + e + b - s
        aa[sel], bb[sel], ee[sel] = a, b, e
    return za, aa, bb, ee


_KERNEL: list = []


def _get_kernel():
    """The numba profile-scan kernel (compiled on first use, cached on disk); None without numba."""
    if _KERNEL:
        return _KERNEL[0]
    try:
        import numba
    except Exception:  # pragma: no cover - numba missing
        _KERNEL.append(None)
        return None
    global _prange
    _prange = numba.prange
    _KERNEL.append(numba.njit(parallel=True, cache=True)(_screen_kernel_py))
    return _KERNEL[0]


# the kernel source is plain Python; numba compiles it (with _prange = numba.prange)
def _screen_kernel_py(sx, sy, sz, kx, ky, ck, rx, ry, rz, top, x0, y0, cell, step, clear,
                      za, aa, bb, ee):  # pragma: no cover
    n = sx.size
    rows, cols = top.shape
    for i in _prange(n):
        d1x = kx[i] - sx[i]
        d1y = ky[i] - sy[i]
        d1 = math.sqrt(d1x * d1x + d1y * d1y)
        dx = rx[i] - kx[i]
        dy = ry[i] - ky[i]
        d2 = math.sqrt(dx * dx + dy * dy)
        d = d1 + d2
        nk = int(math.floor((d - 2.0 * clear) / step)) + 1
        if nk <= 0 or d <= 0.0:
            continue
        u1x = 0.0
        u1y = 0.0
        if d1 > 0.0:
            u1x = d1x / d1
            u1y = d1y / d1
        ux = 0.0
        uy = 0.0
        if d2 > 0.0:
            ux = dx / d2
            uy = dy / d2
        best1 = -np.inf
        best2 = -np.inf
        t1 = 0.0
        h1 = 0.0
        t2 = 0.0
        h2 = 0.0
        k1 = -1
        k2 = -1
        blocked = False
        for k in range(nk):
            t = clear + step * k
            if ck[i] > 0.0 and abs(t - d1) < ck[i]:
                continue
            if t < d1:
                px = sx[i] + u1x * t
                py = sy[i] + u1y * t
            else:
                px = kx[i] + ux * (t - d1)
                py = ky[i] + uy * (t - d1)
            c = int(math.floor((px - x0) / cell))
            r = int(math.floor((y0 - py) / cell))
            if c < 0 or c >= cols or r < 0 or r >= rows:
                continue
            h = top[r, c]
            if h == -np.inf:
                continue
            if h > sz[i] + (rz[i] - sz[i]) * t / d:
                blocked = True
            v1 = (h - sz[i]) / t
            if v1 > best1:
                best1 = v1
                t1 = t
                h1 = h
                k1 = k
            v2 = (h - rz[i]) / (d - t)
            if v2 > best2:
                best2 = v2
                t2 = t
                h2 = h
                k2 = k
        if not blocked:
            continue
        a = math.sqrt(t1 * t1 + (h1 - sz[i]) ** 2)
        s = math.sqrt(d * d + (rz[i] - sz[i]) ** 2)
        if k2 > k1:
            e = math.sqrt((t2 - t1) ** 2 + (h2 - h1) ** 2)
            b = math.sqrt((d - t2) ** 2 + (h2 - rz[i]) ** 2)
        else:
            e = 0.0
            b = math.sqrt((d - t1) ** 2 + (h1 - rz[i]) ** 2)
        za[i] = a + e + b - s
        aa[i] = a
        bb[i] = b
        ee[i] = e


def path_difference(sx, sy, sz, rx, ry, rz, obstacles: Obstacles | None,
                    params: NoiseParameters = NoiseParameters(), kx=None, ky=None, clear_k=None):
    """Path difference z (m) over building tops for each source-receiver pair (0 where the line
    of sight is free), with the distances A (source to first edge), B (last edge to receiver) and
    e (between the edges; 0 for a single edge).

    A reflected path is given by its reflection point ``(kx, ky)``: the profile runs from the source
    to the reflection point and on to the receiver (the unfolded path, along which the line of
    sight rises straight from source to receiver height), and the samples within ``clear_k`` (m,
    per path) of the reflection point are skipped (the reflecting facade's own raster cells)."""
    arrs = [np.ascontiguousarray(np.asarray(v, dtype=np.float64).ravel()) for v in (sx, sy, sz, rx, ry, rz)]
    n = arrs[0].size
    if obstacles is None or not np.isfinite(obstacles.top_m).any():
        return np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    kx = arrs[0] if kx is None else np.ascontiguousarray(np.asarray(kx, dtype=np.float64).ravel())
    ky = arrs[1] if ky is None else np.ascontiguousarray(np.asarray(ky, dtype=np.float64).ravel())
    ck = np.zeros(n) if clear_k is None else np.ascontiguousarray(np.asarray(clear_k, dtype=np.float64).ravel())
    sx_, sy_, sz_, rx_, ry_, rz_ = arrs
    kernel = _get_kernel() if params.use_numba and n >= NUMBA_MIN_RAYS else None
    if kernel is not None:
        out = [np.zeros(n) for _ in range(4)]
        kernel(sx_, sy_, sz_, kx, ky, ck, rx_, ry_, rz_, obstacles.top_m, obstacles.x0, obstacles.y0,
               obstacles.cell_m, params.profile_step_m, params.end_clearance_m, *out)
        return tuple(out)
    # numpy path: same scan; ties resolved like the kernel (first maximum from the source side,
    # first maximum from the receiver side)
    return _screen_numpy(sx_, sy_, sz_, kx, ky, ck, rx_, ry_, rz_, obstacles, params.profile_step_m,
                         params.end_clearance_m)


def screening_db(z, a, b, e, params: NoiseParameters = NoiseParameters()) -> np.ndarray:
    """D_z (dB) from the path difference: ``10 lg(3 + 80 z K_met)``, capped; 0 where z <= 0.

    ``a``: source to first edge, ``b``: last edge to receiver, ``e``: between the edges (0 for one
    edge), all in m; ``K_met = exp(-sqrt(a b s / (2 z)) / 2000)`` with ``s = a + e + b - z``.
    With ``params.iso_double_edge_c3`` the ISO 9613-2 C3 factor multiplies ``80 z`` for e > 0.
    """
    z = np.asarray(z, float)
    out = np.zeros_like(z)
    pos = z > 0
    if not pos.any():
        return out
    zp, ap, bp, ep = z[pos], np.asarray(a, float)[pos], np.asarray(b, float)[pos], np.asarray(e, float)[pos]
    s = ap + ep + bp - zp
    kmet = np.exp(-np.sqrt(ap * bp * s / (2.0 * zp)) / 2000.0)
    c3 = np.ones_like(zp)
    if params.iso_double_edge_c3:
        lam = params.wavelength_m
        with np.errstate(divide="ignore", invalid="ignore"):
            q = np.where(ep > 0, (5.0 * lam / np.maximum(ep, 1e-9)) ** 2, 0.0)
            c3 = np.where(ep > 0, (1.0 + q) / (1.0 / 3.0 + q), 1.0)
    dz = 10.0 * np.log10(3.0 + params.diffraction_c2 * c3 * zp * kmet)
    cap = np.where(ep > 0, params.max_multiple_db, params.max_single_db)
    out[pos] = np.minimum(dz, cap)
    return out


def divergence_db(s_m) -> np.ndarray:
    """D_div = 10 lg(2 pi s^2) = 20 lg s + 10 lg(2 pi) (dB), s in m (RLS-19 form, as MATSim)."""
    return 10.0 * np.log10(2.0 * np.pi * np.asarray(s_m, float) ** 2)


def ground_db(h_m, s_m) -> np.ndarray:
    """D_gr = max(4.8 - (h_m / s)(34 + 600 / s), 0) (dB)."""
    s = np.asarray(s_m, float)
    return np.maximum(4.8 - (np.asarray(h_m, float) / s) * (34.0 + 600.0 / s), 0.0)


# ------------------------------------------------------------------------------------------------
# Core: energies at receivers

def _segment_distance(px, py, ax, ay, bx, by):
    """(R, S) horizontal distance from points to segments."""
    vx, vy = bx - ax, by - ay
    l2 = np.maximum(vx * vx + vy * vy, 1e-12)
    t = np.clip(((px[:, None] - ax) * vx + (py[:, None] - ay) * vy) / l2, 0.0, 1.0)
    return np.hypot(px[:, None] - (ax + t * vx), py[:, None] - (ay + t * vy))


def receiver_energies(rx, ry, rz, rground, sources: LineSources, obstacles: Obstacles | None = None,
                      params: NoiseParameters = NoiseParameters(), junctions=None,
                      reflectors: Reflectors | None = None, receiver_building=None):
    """Sum of 10^(0.1 L_i) over all road pieces at each receiver, day and night, directly and
    (with ``reflectors``) by first-order reflection at facades.

    Parameters
    ----------
    rx, ry, rz : array-like
        Receiver positions; ``rz`` absolute height (m).
    rground : array-like
        Terrain height at the receivers (for the mean path height).
    sources : LineSources
    obstacles : Obstacles, optional
    params : NoiseParameters
    junctions : (x, y, kind) arrays, optional
        Traffic lights / roundabouts; adds D_K,KT(x) per piece (RLS-19 eq. 8).
    reflectors : Reflectors, optional
        Facades reflecting sound (first order, :func:`reflected_energies`).
    receiver_building : array of str, optional
        The building a (facade) receiver belongs to: its own facades do not reflect to it
        (RLS-19 facade levels exclude the reflection at the own facade); None or "" for none.

    Returns
    -------
    (energy_day, energy_night) : numpy.ndarray
        Linear energy sums; ``10 lg`` of them is LrT/LrN (``-inf`` without any source in range).
    """
    from .rls19 import junction_correction_db

    rx, ry, rz, rg = (np.asarray(v, float).ravel() for v in (rx, ry, rz, rground))
    n = rx.size
    e_day = np.zeros(n)
    e_night = np.zeros(n)
    ns = sources.ax.size
    if ns == 0 or n == 0:
        return e_day, e_night
    seg_len = sources.length_m
    jtree = None
    if junctions is not None and len(junctions[0]):
        from scipy.spatial import cKDTree

        jx, jy, jkind = (np.asarray(v) for v in junctions)
        jtree = cKDTree(np.column_stack([jx, jy]))
    active_day = np.isfinite(sources.lw_day_db_m)
    active_night = np.isfinite(sources.lw_night_db_m)
    for c0 in range(0, n, params.receiver_chunk):
        sl = slice(c0, min(n, c0 + params.receiver_chunk))
        px, py = rx[sl], ry[sl]
        dmin = _segment_distance(px, py, sources.ax, sources.ay, sources.bx, sources.by)
        npiece = np.clip(np.ceil(seg_len[None, :] / np.maximum(params.min_piece_m, 0.5 * dmin)),
                         1, params.max_pieces).astype(np.int64)
        inrange = dmin <= params.max_distance_m
        ri, si = np.nonzero(inrange)
        cnt = npiece[ri, si]
        tot = int(cnt.sum())
        if tot == 0:
            continue
        pr = np.repeat(ri, cnt)
        ps = np.repeat(si, cnt)
        first = np.repeat(np.cumsum(cnt) - cnt, cnt)
        k = np.arange(tot) - first
        nn = np.repeat(cnt, cnt)
        t = (k + 0.5) / nn
        sx = sources.ax[ps] + t * (sources.bx[ps] - sources.ax[ps])
        sy = sources.ay[ps] + t * (sources.by[ps] - sources.ay[ps])
        sz = sources.az[ps] + t * (sources.bz[ps] - sources.az[ps])
        lpiece = seg_len[ps] / nn
        qx, qy, qz, qg = px[pr], py[pr], rz[sl][pr], rg[sl][pr]
        s = np.sqrt((qx - sx) ** 2 + (qy - sy) ** 2 + (qz - sz) ** 2)
        s = np.maximum(s, 0.5)
        h_m = 0.5 * (params.source_height_m + np.maximum(qz - qg, 0.0))
        z, a, b, e = path_difference(sx, sy, sz, qx, qy, qz, obstacles, params)
        att = divergence_db(s) + s * params.air_absorption_db_km / 1000.0 + \
            np.maximum(ground_db(h_m, s) if params.ground_effect else 0.0, screening_db(z, a, b, e, params))
        base = 10.0 * np.log10(lpiece) - att
        if jtree is not None:
            dist, j = jtree.query(np.column_stack([sx, sy]))
            base = base + junction_correction_db(jkind[j], dist)
        for lw, act, acc in ((sources.lw_day_db_m, active_day, e_day), (sources.lw_night_db_m, active_night, e_night)):
            ok = act[ps]
            energy = np.where(ok, 10.0 ** (0.1 * (np.where(ok, lw[ps], 0.0) + base)), 0.0)
            acc[sl] += np.bincount(pr, weights=energy, minlength=px.size)
    if reflectors is not None and len(reflectors) and params.reflection_order > 0:
        own = None
        if receiver_building is not None:
            index = {b: i for i, b in enumerate(reflectors.building_ids)}
            own = np.array([index.get(str(b), -1) if b is not None else -1 for b in receiver_building], dtype=np.int64)
        rd, rn = reflected_energies(rx, ry, rz, rg, sources, reflectors, obstacles, params, junctions, own)
        e_day += rd
        e_night += rn
    return e_day, e_night


def _clip_interval(lo, hi, g0, g1):
    """Narrow ``[lo, hi]`` (parameter t of a segment) to where the linear ``g(t) = g0 + t (g1 - g0)``
    is >= 0; an empty interval gets ``hi < lo``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ts = g0 / (g0 - g1)
    hi = np.where((g0 >= 0) & (g1 < 0), np.minimum(hi, ts), hi)
    lo = np.where((g0 < 0) & (g1 >= 0), np.maximum(lo, ts), lo)
    hi = np.where((g0 < 0) & (g1 < 0), -1.0, hi)
    return lo, hi


def _walls_and_segments(sources: LineSources, refl: Reflectors, distance_m: float):
    """For every wall, the source segments within ``distance_m`` with a part in front of it (CSR)."""
    walls = shapely.linestrings(np.stack([np.column_stack([refl.ax, refl.ay]), np.column_stack([refl.bx, refl.by])],
                                         axis=1))
    segs = shapely.linestrings(np.stack([np.column_stack([sources.ax, sources.ay]),
                                         np.column_stack([sources.bx, sources.by])], axis=1))
    wi, si = shapely.STRtree(segs).query(walls, predicate="dwithin", distance=distance_m)
    front = np.maximum(refl.nx[wi] * (sources.ax[si] - refl.ax[wi]) + refl.ny[wi] * (sources.ay[si] - refl.ay[wi]),
                       refl.nx[wi] * (sources.bx[si] - refl.ax[wi]) + refl.ny[wi] * (sources.by[si] - refl.ay[wi])) > 1e-6
    wi, si = wi[front], si[front]
    order = np.lexsort((si, wi))
    wi, si = wi[order], si[order]
    ptr = np.zeros(len(refl) + 1, dtype=np.int64)
    np.add.at(ptr, wi + 1, 1)
    return walls, np.cumsum(ptr), si


def reflected_energies(rx, ry, rz, rground, sources: LineSources, reflectors: Reflectors,
                       obstacles: Obstacles | None = None, params: NoiseParameters = NoiseParameters(),
                       junctions=None, own_building: np.ndarray | None = None):
    """Sum of 10^(0.1 L_i) over the first-order reflections of every road piece at facades.

    Mirror sources: a road segment seen from the receiver R in a facade W is mirrored at W's line;
    the part of the mirrored segment that R sees through W (the wedge from R over W's ends, behind
    W, of a segment part in front of W) is cut into pieces like a direct line source (each at most
    half as long as its distance). A piece's mirror image S' gives the reflection point P where
    S'R crosses W; the path S -> P -> R of length |S'R| (horizontal) is propagated like a direct
    path (divergence, air, ground, screening over the obstacles along both legs, the facade's own
    cells next to P skipped) and loses the facade's reflection loss D_RV. It counts where P lies
    within ``params.reflection_distance_m`` of both S and R, the unfolded line of sight passes P
    below the wall's top, and the wall fulfils RLS-19 Table 8 (``h_R >= 1 m``,
    ``h_R >= 0.3 sqrt(a_R)``). A facade receiver's own building does not reflect to it.

    Returns ``(energy_day, energy_night)`` per receiver (to add to the direct energies).
    """
    from .rls19 import junction_correction_db, reflector_counts

    rx, ry, rz, rg = (np.asarray(v, float).ravel() for v in (rx, ry, rz, rground))
    n = rx.size
    e_day, e_night = np.zeros(n), np.zeros(n)
    if n == 0 or sources.ax.size == 0 or len(reflectors) == 0:
        return e_day, e_night
    dist = float(params.reflection_distance_m)
    refl = reflectors
    walls, ptr, wseg = _walls_and_segments(sources, refl, dist)
    if not len(wseg):
        return e_day, e_night
    wall_tree = shapely.STRtree(walls)
    jtree = None
    if junctions is not None and len(junctions[0]):
        from scipy.spatial import cKDTree

        jx, jy, jkind = (np.asarray(v) for v in junctions)
        jtree = cKDTree(np.column_stack([jx, jy]))
    seg_len = sources.length_m
    cell = obstacles.cell_m if obstacles is not None else params.obstacle_cell_m
    ri, wi = wall_tree.query(shapely.points(rx, ry), predicate="dwithin", distance=dist)
    front = refl.nx[wi] * (rx[ri] - refl.ax[wi]) + refl.ny[wi] * (ry[ri] - refl.ay[wi]) > 1e-3
    if own_building is not None:
        front &= refl.building[wi] != np.asarray(own_building)[ri]
    ri, wi = ri[front], wi[front]
    order = np.lexsort((wi, ri))
    ri, wi = ri[order], wi[order]
    per_pair = ptr[wi + 1] - ptr[wi]
    # blocks of whole receivers (a receiver's reflections are summed in one go: the result does not
    # depend on which receivers are computed together)
    per_rec = np.bincount(ri, weights=per_pair, minlength=n)
    bounds_rec = [0]
    acc = 0.0
    for r in range(n):
        acc += per_rec[r]
        if acc >= params.reflection_pairs_chunk:
            bounds_rec.append(r + 1)
            acc = 0.0
    if bounds_rec[-1] != n:
        bounds_rec.append(n)
    pair_start = np.searchsorted(ri, bounds_rec)
    for b0, b1 in zip(pair_start[:-1], pair_start[1:]):
        if b1 <= b0:
            continue
        pr, pw, cnt = ri[b0:b1], wi[b0:b1], per_pair[b0:b1]
        tot = int(cnt.sum())
        if tot == 0:
            continue
        tr = np.repeat(pr, cnt)
        tw = np.repeat(pw, cnt)
        first = np.repeat(np.cumsum(cnt) - cnt, cnt)
        ts = wseg[np.repeat(ptr[pw], cnt) + (np.arange(tot) - first)]
        _reflect_block(tr, tw, ts, rx, ry, rz, rg, sources, refl, obstacles, params, seg_len, cell, dist,
                       jtree, jkind if jtree is not None else None, junction_correction_db, reflector_counts,
                       e_day, e_night)
    return e_day, e_night


def _reflect_block(tr, tw, ts, rx, ry, rz, rg, src: LineSources, refl: Reflectors, obstacles, params, seg_len,
                   cell, dist, jtree, jkind, junction_correction_db, reflector_counts, e_day, e_night):
    """The reflections of (receiver, wall, segment) triples: see :func:`reflected_energies`."""
    Rx, Ry = rx[tr], ry[tr]
    ax, ay, bx, by = src.ax[ts], src.ay[ts], src.bx[ts], src.by[ts]
    wax, way, wbx, wby = refl.ax[tw], refl.ay[tw], refl.bx[tw], refl.by[tw]
    nx, ny = refl.nx[tw], refl.ny[tw]
    # mirror images of the segment's ends
    fa = nx * (ax - wax) + ny * (ay - way)
    fb = nx * (bx - wax) + ny * (by - way)
    max_, may_ = ax - 2 * fa * nx, ay - 2 * fa * ny
    mbx, mby = bx - 2 * fb * nx, by - 2 * fb * ny
    # the wedge from R over the wall's ends
    wa_x, wa_y, wb_x, wb_y = wax - Rx, way - Ry, wbx - Rx, wby - Ry
    c = np.sign(wa_x * wb_y - wa_y * wb_x)
    g1 = lambda X, Y: c * (wa_x * (Y - Ry) - wa_y * (X - Rx))       # noqa: E731  left of R->Wa (oriented)
    g2 = lambda X, Y: c * ((X - Rx) * wb_y - (Y - Ry) * wb_x)       # noqa: E731  right of R->Wb (oriented)
    lo, hi = np.zeros(tr.size), np.ones(tr.size)
    lo, hi = _clip_interval(lo, hi, fa - 1e-6, fb - 1e-6)          # the source part in front of the wall
    lo, hi = _clip_interval(lo, hi, g1(max_, may_), g1(mbx, mby))
    lo, hi = _clip_interval(lo, hi, g2(max_, may_), g2(mbx, mby))
    ok = (hi - lo > 1e-9) & (c != 0)
    if not ok.any():
        return
    tr, tw, ts, lo, hi = tr[ok], tw[ok], ts[ok], lo[ok], hi[ok]
    Rx, Ry = rx[tr], ry[tr]
    max_, may_, mbx, mby = max_[ok], may_[ok], mbx[ok], mby[ok]
    # the visible mirrored part: length, distance to R, pieces (at most half their distance long)
    x0, y0 = max_ + lo * (mbx - max_), may_ + lo * (mby - may_)
    x1, y1 = max_ + hi * (mbx - max_), may_ + hi * (mby - may_)
    vx, vy = x1 - x0, y1 - y0
    l2 = np.maximum(vx * vx + vy * vy, 1e-12)
    tt = np.clip(((Rx - x0) * vx + (Ry - y0) * vy) / l2, 0.0, 1.0)
    dmin = np.hypot(Rx - (x0 + tt * vx), Ry - (y0 + tt * vy))
    lvis = (hi - lo) * seg_len[ts]
    keep = dmin <= params.max_distance_m
    tr, tw, ts, lo, hi, lvis, dmin = tr[keep], tw[keep], ts[keep], lo[keep], hi[keep], lvis[keep], dmin[keep]
    if not tr.size:
        return
    npiece = np.clip(np.ceil(lvis / np.maximum(params.min_piece_m, 0.5 * dmin)), 1, params.max_pieces).astype(np.int64)
    tot = int(npiece.sum())
    pr = np.repeat(tr, npiece)
    pw = np.repeat(tw, npiece)
    ps = np.repeat(ts, npiece)
    first = np.repeat(np.cumsum(npiece) - npiece, npiece)
    k = np.arange(tot) - first
    nn = np.repeat(npiece, npiece)
    t = np.repeat(lo, npiece) + (k + 0.5) / nn * np.repeat(hi - lo, npiece)
    lpiece = np.repeat(lvis, npiece) / nn
    sx = src.ax[ps] + t * (src.bx[ps] - src.ax[ps])
    sy = src.ay[ps] + t * (src.by[ps] - src.ay[ps])
    sz = src.az[ps] + t * (src.bz[ps] - src.az[ps])
    nx, ny = refl.nx[pw], refl.ny[pw]
    f = nx * (sx - refl.ax[pw]) + ny * (sy - refl.ay[pw])
    mx, my = sx - 2 * f * nx, sy - 2 * f * ny
    qx, qy, qz, qg = rx[pr], ry[pr], rz[pr], rg[pr]
    den = nx * (qx - mx) + ny * (qy - my)
    lam = np.where(den > 0, (nx * (refl.ax[pw] - mx) + ny * (refl.ay[pw] - my)) / np.where(den > 0, den, 1.0), -1.0)
    D = np.hypot(qx - mx, qy - my)
    sp, pq = lam * D, (1.0 - lam) * D
    px_, py_ = mx + lam * (qx - mx), my + lam * (qy - my)
    z_p = sz + lam * (qz - sz)
    valid = (den > 0) & (lam > 0) & (lam < 1) & (sp <= dist) & (pq <= dist) & (D <= params.max_distance_m) \
        & (z_p <= refl.top_m[pw] + 1e-9) & reflector_counts(refl.height_m[pw], np.minimum(sp, pq))
    if not valid.any():
        return
    sel = np.flatnonzero(valid)
    pr, pw, ps, sx, sy, sz, qx, qy, qz, qg = (v[sel] for v in (pr, pw, ps, sx, sy, sz, qx, qy, qz, qg))
    px_, py_, D, sp, lpiece = px_[sel], py_[sel], D[sel], sp[sel], lpiece[sel]
    # the facade's own cells next to the reflection point are not an obstacle: skip the samples
    # within 0.75 cells of the wall (measured across it) around P
    sin_inc = np.abs(refl.nx[pw] * (px_ - sx) + refl.ny[pw] * (py_ - sy)) / np.maximum(sp, 1e-9)
    clear_k = np.maximum(params.end_clearance_m, 0.75 * cell / np.maximum(sin_inc, 0.05))
    s3 = np.sqrt(D ** 2 + (qz - sz) ** 2)
    s3 = np.maximum(s3, 0.5)
    h_m = 0.5 * (params.source_height_m + np.maximum(qz - qg, 0.0))
    z, a, b, e = path_difference(sx, sy, sz, qx, qy, qz, obstacles, params, kx=px_, ky=py_, clear_k=clear_k)
    att = divergence_db(s3) + s3 * params.air_absorption_db_km / 1000.0 + \
        np.maximum(ground_db(h_m, s3) if params.ground_effect else 0.0, screening_db(z, a, b, e, params))
    base = 10.0 * np.log10(lpiece) - att - refl.loss_db[pw]
    if jtree is not None:
        dj, j = jtree.query(np.column_stack([sx, sy]))
        base = base + junction_correction_db(jkind[j], dj)
    for lw, acc in ((src.lw_day_db_m, e_day), (src.lw_night_db_m, e_night)):
        v = lw[ps]
        act = np.isfinite(v)
        energy = np.where(act, 10.0 ** (0.1 * (np.where(act, v, 0.0) + base)), 0.0)
        acc += np.bincount(pr, weights=energy, minlength=acc.size)


def energy_to_db(energy) -> np.ndarray:
    """10 lg(energy); -inf where the energy is 0."""
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(np.asarray(energy, float))


# ------------------------------------------------------------------------------------------------
# Receivers

def grid_receivers(bounds, params: NoiseParameters = NoiseParameters(), dtm=None, buildings=None) -> pd.DataFrame:
    """Cell centres of a ``grid_spacing_m`` grid over ``bounds``, ``grid_height_m`` above terrain.

    Returns a frame with ``row, col, x, y, ground_m, z_m, in_building`` (row 0 = north);
    receivers inside a building footprint are flagged (their level is not computed).
    """
    minx, miny, maxx, maxy = bounds
    sp = params.grid_spacing_m
    cols = int(math.ceil((maxx - minx) / sp - 1e-9))
    rows = int(math.ceil((maxy - miny) / sp - 1e-9))
    rr, cc = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    x = minx + (cc.ravel() + 0.5) * sp
    y = maxy - (rr.ravel() + 0.5) * sp
    g = _ground(dtm, x, y)
    inb = np.zeros(x.size, dtype=bool)
    if buildings is not None and len(buildings):
        tree = shapely.STRtree(np.asarray(buildings.geometry.values, dtype=object))
        hit = tree.query(shapely.points(x, y), predicate="intersects")
        inb[np.unique(hit[0])] = True
    return pd.DataFrame({"row": rr.ravel(), "col": cc.ravel(), "x": x, "y": y, "ground_m": g,
                         "z_m": g + params.grid_height_m, "in_building": inb})


def facade_receivers(buildings, offset_m: float = 0.5, storey_height_m: float = 3.0,
                     above_floor_m: float = 2.0, min_wall_m: float = 2.0, dtm=None,
                     height_column: str = "height_m") -> pd.DataFrame:
    """One receiver per wall and storey, ``offset_m`` in front of the wall's middle.

    Storey k (0 = ground floor) is at ``ground + k * storey_height_m + above_floor_m``; storeys
    from the ``storeys`` column (else from the height). Walls shorter than ``min_wall_m`` are
    skipped. Returns ``building_id, wall, storey, x, y, ground_m, z_m``.
    """
    rows = []
    geoms = np.asarray(buildings.geometry.values, dtype=object)
    ids = buildings["building_id"].astype(str).to_numpy()
    hs = pd.to_numeric(buildings[height_column], errors="coerce").to_numpy(float) if height_column in buildings \
        else np.full(len(ids), np.nan)
    st = pd.to_numeric(buildings["storeys"], errors="coerce").to_numpy(float) if "storeys" in buildings \
        else np.full(len(ids), np.nan)
    for i, g in enumerate(geoms):  # loop over buildings; vectorised over walls
        if g is None or g.is_empty:
            continue
        poly = shapely.orient_polygons(g) if hasattr(shapely, "orient_polygons") else shapely.geometry.polygon.orient(g)
        for part in shapely.get_parts(poly):
            ring = np.asarray(part.exterior.coords)[:, :2]
            a, b = ring[:-1], ring[1:]
            v = b - a
            ln = np.hypot(v[:, 0], v[:, 1])
            keep = ln >= min_wall_m
            if not keep.any():
                continue
            a, v, ln = a[keep], v[keep], ln[keep]
            mid = a + 0.5 * v
            normal = np.column_stack([v[:, 1], -v[:, 0]]) / ln[:, None]  # CCW exterior: right = outside
            p = mid + offset_m * normal
            n_st = int(st[i]) if np.isfinite(st[i]) and st[i] > 0 else \
                max(1, int(round(hs[i] / storey_height_m))) if np.isfinite(hs[i]) else 1
            for k in range(n_st):
                rows.append(pd.DataFrame({"building_id": ids[i], "wall": np.flatnonzero(keep), "storey": k,
                                          "x": p[:, 0], "y": p[:, 1]}))
    if not rows:
        return pd.DataFrame(columns=["building_id", "wall", "storey", "x", "y", "ground_m", "z_m"])
    out = pd.concat(rows, ignore_index=True)
    out["ground_m"] = _ground(dtm, out["x"].to_numpy(), out["y"].to_numpy())
    out["z_m"] = out["ground_m"] + out["storey"] * storey_height_m + above_floor_m
    return out


# ------------------------------------------------------------------------------------------------
# Results

@dataclass
class NoiseGrid:
    """Levels on the receiver grid: ``lrt_db``/``lrn_db`` (rows, cols), NaN inside buildings."""

    lrt_db: np.ndarray
    lrn_db: np.ndarray
    transform: Affine
    receivers: pd.DataFrame
    parameters: dict[str, Any] = field(default_factory=dict)
    method: str = METHOD

    @property
    def bounds(self):
        rows, cols = self.lrt_db.shape
        x0, y0 = self.transform.c, self.transform.f
        return (x0, y0 + rows * self.transform.e, x0 + cols * self.transform.a, y0)


def _junction_arrays(junctions):
    if junctions is None:
        return None
    return (shapely.get_x(np.asarray(junctions.geometry.values, dtype=object)),
            shapely.get_y(np.asarray(junctions.geometry.values, dtype=object)),
            junctions["kind"].astype(str).to_numpy())


def noise_grid(emissions, bounds, buildings=None, dtm=None, params: NoiseParameters = NoiseParameters(),
               junctions=None, obstacle_margin_m: float = 200.0, cells: np.ndarray | None = None) -> NoiseGrid:
    """LrT and LrN (RLS-19) on a grid ``grid_height_m`` above terrain over ``bounds``.

    Parameters
    ----------
    emissions : geopandas.GeoDataFrame
        :func:`citymodel.analysis.rls19.road_emissions` of the roads (roads beyond ``bounds``
        count too, up to ``max_distance_m``).
    bounds : (minx, miny, maxx, maxy)
        The grid's extent (e.g. a tile).
    buildings : geopandas.GeoDataFrame, optional
        Screening blocks with ``height_m`` (and ``ground_height_m`` or a DTM).
    dtm : citymodel.raster.Raster, optional
    junctions : geopandas.GeoDataFrame, optional
        Points with ``kind`` (``signal``/``roundabout``) for D_K,KT.
    cells : (rows, cols) bool array, optional
        Compute only these receivers (the others are NaN); each value is the same as in a
        computation of the whole grid (a planning variant recomputes only its impact area).
    """
    rec = grid_receivers(bounds, params, dtm, buildings)
    src = line_sources(emissions, dtm, params)
    obs = _obstacles_for(buildings, bounds, src, dtm, params, obstacle_margin_m)
    refl = facade_reflectors(buildings, dtm, params)
    calc = ~rec["in_building"].to_numpy()
    if cells is not None:
        calc &= np.asarray(cells, dtype=bool).ravel()
    ed = np.zeros(len(rec))
    en = np.zeros(len(rec))
    r = rec.loc[calc]
    ed[calc], en[calc] = receiver_energies(r["x"], r["y"], r["z_m"], r["ground_m"], src, obs, params,
                                           _junction_arrays(junctions), reflectors=refl)
    lrt = np.where(calc, energy_to_db(ed), np.nan)
    lrn = np.where(calc, energy_to_db(en), np.nan)
    rec = rec.assign(lrt_db=lrt, lrn_db=lrn)
    rows, cols = int(rec["row"].max()) + 1, int(rec["col"].max()) + 1
    sp = params.grid_spacing_m
    transform = Affine(sp, 0.0, bounds[0], 0.0, -sp, bounds[3])
    return NoiseGrid(lrt.reshape(rows, cols), lrn.reshape(rows, cols), transform, rec,
                     parameters=params.as_dict())


def _obstacles_for(buildings, bounds, src: LineSources, dtm, params, margin):
    if buildings is None or len(buildings) == 0:
        return None
    minx, miny, maxx, maxy = bounds
    # reflected paths run from a source to a facade within reflection_distance_m of the receiver
    margin = max(margin, params.reflection_distance_m if params.reflection_order > 0 else 0.0)
    # raster extent: receivers' bounds + margin, and the sources' extent (clipped to a sane size);
    # every path between a source and a receiver lies inside it. The raster is aligned to a fixed grid
    # of obstacle_cell_m (multiples of the cell size), so that a place falls into the same cell with the
    # same height whichever receivers are computed together (a planning variant recomputes only some)
    ex = (min(minx - margin, src.ax.min(initial=minx), src.bx.min(initial=minx)),
          min(miny - margin, src.ay.min(initial=miny), src.by.min(initial=miny)),
          max(maxx + margin, src.ax.max(initial=maxx), src.bx.max(initial=maxx)),
          max(maxy + margin, src.ay.max(initial=maxy), src.by.max(initial=maxy)))
    c = params.obstacle_cell_m
    ex = (math.floor(ex[0] / c) * c, math.floor(ex[1] / c) * c, math.ceil(ex[2] / c) * c, math.ceil(ex[3] / c) * c)
    return building_obstacles(buildings, ex, dtm, params)


def facade_levels(emissions, receivers: pd.DataFrame, buildings=None, dtm=None,
                  params: NoiseParameters = NoiseParameters(), junctions=None) -> pd.DataFrame:
    """LrT/LrN (RLS-19) at facade receivers (:func:`facade_receivers` or the pipeline's own:
    columns ``building_id, x, y, z_m, ground_m``), with the reflections at every facade but the
    receiver's own building's. Returns the receivers with ``lrt_db, lrn_db, method``."""
    src = line_sources(emissions, dtm, params)
    x, y = receivers["x"].to_numpy(float), receivers["y"].to_numpy(float)
    bounds = (x.min(), y.min(), x.max(), y.max()) if len(x) else (0, 0, 1, 1)
    obs = _obstacles_for(buildings, bounds, src, dtm, params, 200.0)
    own = receivers["building_id"].astype(str).to_numpy() if "building_id" in receivers else None
    ed, en = receiver_energies(x, y, receivers["z_m"], receivers["ground_m"], src, obs, params,
                               _junction_arrays(junctions), reflectors=facade_reflectors(buildings, dtm, params),
                               receiver_building=own)
    return receivers.assign(lrt_db=energy_to_db(ed), lrn_db=energy_to_db(en), method=METHOD)


def building_max_levels(facades: pd.DataFrame) -> pd.DataFrame:
    """Highest facade LrT and LrN per building (``building_id, lrt_max_db, lrn_max_db, method``)."""
    g = facades.groupby("building_id", sort=True)
    return pd.DataFrame({"lrt_max_db": g["lrt_db"].max(), "lrn_max_db": g["lrn_db"].max()}) \
        .reset_index().assign(method=METHOD)


def write_noise_raster(path, grid: NoiseGrid, crs) -> Any:
    """Write LrT and LrN as a 2-band float32 GeoTIFF (NaN nodata), method and parameters as tags."""
    from ..raster import write_geotiff

    arr = np.stack([grid.lrt_db, grid.lrn_db]).astype(np.float32)
    arr[~np.isfinite(arr)] = np.nan
    tags = {"method": grid.method, "indicators": "LrT (06-22 h), LrN (22-06 h), dB(A)",
            "parameters": str(grid.parameters)}
    return write_geotiff(path, arr, transform=grid.transform, crs=crs, nodata=float("nan"), tags=tags,
                         band_descriptions=["LrT_dB", "LrN_dB"])


def isophones(levels_db: np.ndarray, transform: Affine, lower_db: float = 45.0, upper_db: float = 80.0,
              step_db: float = 5.0, crs=None, indicator: str = "LrT"):
    """Isophone bands (polygons) of a level raster in ``step_db`` steps.

    Band ``[lo, lo + step)``; below ``lower_db`` nothing is drawn, the last band is open
    (``>= upper_db``). Returns a GeoDataFrame ``indicator, band_lo_db, band_hi_db, label, method,
    geometry`` (one multipolygon per band).
    """
    import geopandas as gpd
    from rasterio import features

    arr = np.asarray(levels_db, float)
    edges = np.arange(lower_db, upper_db + 1e-9, step_db)
    cls = np.full(arr.shape, -1, dtype=np.int32)
    ok = np.isfinite(arr) & (arr >= lower_db)
    cls[ok] = np.minimum(np.floor((arr[ok] - lower_db) / step_db), len(edges) - 1).astype(np.int32)
    recs = []
    for geom, v in features.shapes(cls, mask=cls >= 0, transform=transform):
        recs.append((int(v), shapely.geometry.shape(geom)))
    rows = []
    for b in sorted({v for v, _ in recs}):
        lo = float(edges[b])
        hi = float(edges[b] + step_db) if b < len(edges) - 1 else float("inf")
        geom = shapely.union_all([g for v, g in recs if v == b])
        label = f"{lo:g}-{hi:g} dB(A)" if np.isfinite(hi) else f">= {lo:g} dB(A)"
        rows.append({"indicator": indicator, "band_lo_db": lo, "band_hi_db": hi, "label": label,
                     "method": METHOD, "geometry": geom})
    return gpd.GeoDataFrame(rows, columns=["indicator", "band_lo_db", "band_hi_db", "label", "method", "geometry"],
                            geometry="geometry", crs=crs)


# ------------------------------------------------------------------------------------------------
# Exposure

@dataclass(frozen=True)
class ExposureParameters:
    """How residents are estimated from buildings (recorded in the output).

    residents = footprint area x storeys x residential share x net_to_gross / m2 per resident.
    The residential share comes from the ALKIS function code (Gebäudefunktion): codes starting
    ``1`` (Wohngebäude, 1000-1999) count fully, ``1100``-``1199`` (mixed use with housing) by
    ``mixed_share``; everything else 0.
    """

    living_space_m2_per_resident: float = 47.0
    net_to_gross: float = 0.8
    mixed_share: float = 0.5
    storey_height_m: float = 3.0

    def as_dict(self):
        return asdict(self)


def residential_share(function_code, params: ExposureParameters = ExposureParameters()) -> np.ndarray:
    codes = pd.Series(function_code).astype(str).str.strip()
    share = np.where(codes.str.match(r"^11\d\d$"), params.mixed_share,
                     np.where(codes.str.match(r"^1\d\d\d$"), 1.0, 0.0))
    return share.astype(float)


#: RLS-19 bands reported (dB(A)); EU END bands are Lden >= 55 and Lnight >= 50 in 5 dB steps
BANDS_DAY_DB = (55.0, 60.0, 65.0, 70.0, 75.0)
BANDS_NIGHT_DB = (50.0, 55.0, 60.0, 65.0, 70.0)


def residents(buildings, params: ExposureParameters = ExposureParameters()) -> pd.DataFrame:
    """Estimated residents per building (``building_id, residents``) from footprint, storeys, use."""
    area = shapely.area(np.asarray(buildings.geometry.values, dtype=object))
    st = pd.to_numeric(buildings["storeys"], errors="coerce").to_numpy(float) if "storeys" in buildings \
        else np.full(len(area), np.nan)
    if np.isnan(st).any() and "height_m" in buildings:
        h = pd.to_numeric(buildings["height_m"], errors="coerce").to_numpy(float)
        st = np.where(np.isnan(st), np.maximum(1.0, np.round(h / params.storey_height_m)), st)
    st = np.where(np.isnan(st), 1.0, st)
    share = residential_share(buildings["function_code"], params) if "function_code" in buildings \
        else np.zeros(len(area))
    res = area * st * share * params.net_to_gross / params.living_space_m2_per_resident
    return pd.DataFrame({"building_id": buildings["building_id"].astype(str).to_numpy(), "residents": res})


def exposure_by_band(building_levels: pd.DataFrame, buildings,
                     params: ExposureParameters = ExposureParameters()) -> pd.DataFrame:
    """Residents (estimated) per 5 dB band of the most exposed facade, day (LrT) and night (LrN).

    LrT/LrN are RLS-19 rating levels (16 h day, 8 h night, German periods), not the EU's Lden and
    Lnight: no evening period is modelled, so Lden is not derived. The bands are those of the EU
    reporting (day from 55, night from 50 dB(A), 5 dB steps), applied to LrT and LrN and labelled
    so. Returns ``indicator, band_lo_db, band_hi_db, residents, buildings, method, parameters``.
    """
    res = residents(buildings, params)
    m = building_levels.merge(res, on="building_id", how="left")
    m["residents"] = m["residents"].fillna(0.0)
    rows = []
    for ind, col, bands in (("LrT", "lrt_max_db", BANDS_DAY_DB), ("LrN", "lrn_max_db", BANDS_NIGHT_DB)):
        lv = m[col].to_numpy(float)
        for i, lo in enumerate(bands):
            hi = bands[i + 1] if i + 1 < len(bands) else float("inf")
            sel = (lv >= lo) & (lv < hi)
            rows.append({"indicator": ind, "band_lo_db": lo, "band_hi_db": hi,
                         "residents": float(m.loc[sel, "residents"].sum()),
                         "buildings": int((sel & (m["residents"].to_numpy() > 0)).sum()),
                         "method": METHOD, "parameters": str(params.as_dict())})
    return pd.DataFrame(rows)
