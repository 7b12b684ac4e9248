"""The ray-casting scene of the sun, solar and sight-line layers: buildings, tree crowns, terrain.

Triangles live in three groups, each its own embree scene (``embreex``, Intel Embree 4; no
hand-written BVH):

``buildings``
    triangles of the building solids (:class:`citymodel.geometry3d.Solid`, polygons triangulated with
    ``mapbox_earcut`` in their own plane); each triangle knows its building (``building_ids``).
``crowns``
    tree crowns as closed ellipsoid or cylinder meshes from height and crown diameter. A ray through
    a crown is attenuated by ``crown_transmissivity`` per crown (0 = opaque, the default).
``terrain``
    the DTM as a triangulated grid, decimated: ``terrain_step_m`` inside ``detail_bounds`` and
    ``terrain_far_step_m`` outside. Rays test terrain only from ``terrain_skip_m`` onwards: the
    coarse mesh must not shade the point it starts from; nearby terrain is accounted for by the
    caller through the receptor's surface normal (a cell on a slope facing away from the sun).

All coordinates are shifted by a local ``origin`` (embree works in float32: at UTM coordinates a
float32 resolves only 0.5 m). Rays are run in chunks on ``threads`` threads (embree releases the
GIL). Callers offset ray origins off the surface they start from (e.g. 0.05 m above the ground).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import mapbox_earcut
import numpy as np
from affine import Affine
from embreex import rtcore_scene
from embreex.mesh_construction import TriangleMesh

from ..errors import GeometryError, SourceDataError, dataset_error
from ..geometry3d import Solid, Surface

__all__ = ["TerrainModel", "Scene", "triangulate_surface", "solid_triangles", "crown_mesh"]

_F32 = np.float32
_FAR = np.float32(1e30)


# =================================================================================== terrain
class TerrainModel:
    """A gridded terrain (DTM) with bilinear heights.

    Parameters
    ----------
    heights_m : numpy.ndarray
        ``(rows, cols)`` absolute heights, row 0 north; no NaN (fill gaps first).
    transform : affine.Affine
        Pixel (col, row) -> map (x, y) of the upper-left cell corner (north-up, no rotation).
    """

    def __init__(self, heights_m: np.ndarray, transform: Affine, dataset: str = "dtm") -> None:
        h = np.asarray(heights_m, dtype=np.float64)
        if h.ndim != 2 or min(h.shape) < 2:
            raise dataset_error(SourceDataError, dataset, f"terrain grid of shape {h.shape} is too small",
                                "give a DTM of at least 2 x 2 cells")
        if not np.isfinite(h).all():
            raise dataset_error(SourceDataError, dataset, f"{int((~np.isfinite(h)).sum())} terrain cells "
                                "have no height", "fill the DTM's gaps before building the scene")
        if transform.b != 0 or transform.d != 0 or transform.a <= 0 or transform.e >= 0:
            raise dataset_error(SourceDataError, dataset, "the DTM is not a north-up grid",
                                "resample the DTM to a north-up grid")
        self.heights_m = h
        self.transform = transform
        self.dataset = dataset

    @classmethod
    def from_raster(cls, raster, dataset: str = "dtm") -> "TerrainModel":
        """From a :class:`citymodel.raster.Raster`; nodata cells are filled by nearest valid cell."""
        arr = raster.masked if raster.array.ndim == 2 else raster.masked[0]
        bad = ~np.isfinite(arr)
        if bad.all():
            raise dataset_error(SourceDataError, dataset, "the DTM holds no valid height",
                                "re-create the DTM from ground points")
        if bad.any():
            from scipy.ndimage import distance_transform_edt
            idx = distance_transform_edt(bad, return_distances=False, return_indices=True)
            arr = arr[tuple(idx)]
        return cls(arr, raster.transform, dataset)

    @classmethod
    def flat(cls, z_m: float, bounds: Sequence[float], cell_m: float = 10.0) -> "TerrainModel":
        """A horizontal plane at ``z_m`` over ``bounds`` (minx, miny, maxx, maxy)."""
        minx, miny, maxx, maxy = bounds
        cols = max(2, int(np.ceil((maxx - minx) / cell_m)))
        rows = max(2, int(np.ceil((maxy - miny) / cell_m)))
        return cls(np.full((rows, cols), float(z_m)), Affine(cell_m, 0, minx, 0, -cell_m, miny + rows * cell_m),
                   "flat terrain")

    @property
    def cell_m(self) -> float:
        return float(self.transform.a)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        rows, cols = self.heights_m.shape
        t = self.transform
        return (t.c, t.f + rows * t.e, t.c + cols * t.a, t.f)

    def _frac_index(self, x, y):
        t = self.transform
        col = (np.asarray(x, dtype=np.float64) - t.c) / t.a - 0.5
        row = (np.asarray(y, dtype=np.float64) - t.f) / t.e - 0.5
        rows, cols = self.heights_m.shape
        return np.clip(col, 0, cols - 1.000001), np.clip(row, 0, rows - 1.000001)

    def height(self, x, y) -> np.ndarray:
        """Bilinear height between cell centres (clamped at the edges), vectorised."""
        col, row = self._frac_index(x, y)
        c0 = np.floor(col).astype(np.int64)
        r0 = np.floor(row).astype(np.int64)
        fc = col - c0
        fr = row - r0
        h = self.heights_m
        return ((h[r0, c0] * (1 - fc) + h[r0, c0 + 1] * fc) * (1 - fr)
                + (h[r0 + 1, c0] * (1 - fc) + h[r0 + 1, c0 + 1] * fc) * fr)

    def normal(self, x, y) -> np.ndarray:
        """Upward unit normals ``(n, 3)`` from central differences of the grid."""
        d = self.cell_m
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        gx = (self.height(x + d, y) - self.height(x - d, y)) / (2 * d)
        gy = (self.height(x, y + d) - self.height(x, y - d)) / (2 * d)
        n = np.column_stack([-gx.ravel(), -gy.ravel(), np.ones(gx.size)])
        return n / np.linalg.norm(n, axis=1)[:, None]

    def grid_mesh(self, step_m: float, keep=None) -> tuple[np.ndarray, np.ndarray]:
        """Triangulated grid of cell centres every ``step_m`` (world coordinates).

        ``keep(xc, yc) -> bool array`` selects the quads (by their centre) to keep.
        """
        k = max(1, int(round(step_m / self.cell_m)))
        rows, cols = self.heights_m.shape
        ri = np.unique(np.r_[np.arange(0, rows, k), rows - 1])
        ci = np.unique(np.r_[np.arange(0, cols, k), cols - 1])
        t = self.transform
        xs = t.c + (ci + 0.5) * t.a
        ys = t.f + (ri + 0.5) * t.e
        X, Y = np.meshgrid(xs, ys)
        Z = self.heights_m[np.ix_(ri, ci)]
        verts = np.column_stack([X.ravel(), Y.ravel(), Z.ravel()])
        nr, nc = len(ri), len(ci)
        r, c = np.meshgrid(np.arange(nr - 1), np.arange(nc - 1), indexing="ij")
        a = (r * nc + c).ravel()
        b = a + 1
        cc = a + nc
        dd = cc + 1
        if keep is not None:
            m = np.asarray(keep((X[:-1, :-1] + X[1:, 1:]).ravel() / 2, (Y[:-1, :-1] + Y[1:, 1:]).ravel() / 2))
            a, b, cc, dd = a[m], b[m], cc[m], dd[m]
        # rows run southwards: (a, cc, b) and (b, cc, dd) are counter-clockwise seen from above
        tris = np.concatenate([np.column_stack([a, cc, b]), np.column_stack([b, cc, dd])])
        return verts, tris.astype(np.int64)


# =============================================================================== triangulation
def triangulate_surface(surface: Surface | Sequence[np.ndarray]) -> np.ndarray:
    """Triangles ``(k, 3, 3)`` of a planar polygon with holes (mapbox_earcut in the polygon's plane).

    The triangles keep the orientation of the exterior ring.
    """
    rings = surface.rings if isinstance(surface, Surface) else list(surface)
    pts = np.concatenate([np.asarray(r, dtype=np.float64) for r in rings], axis=0)
    if len(pts) < 3:
        return np.zeros((0, 3, 3))
    n = Surface("WallSurface", [np.asarray(r, dtype=float) for r in rings]).area_vector()
    if np.linalg.norm(n) < 1e-12:
        return np.zeros((0, 3, 3))
    axis = int(np.argmax(np.abs(n)))
    keep = [i for i in range(3) if i != axis]
    p2 = pts[:, keep] - pts[:, keep].mean(axis=0)
    ends = np.cumsum([len(r) for r in rings]).astype(np.uint32)
    idx = np.asarray(mapbox_earcut.triangulate_float64(p2, ends), dtype=np.int64).reshape(-1, 3)
    tri = pts[idx]
    if len(tri):
        tn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        flip = tn @ n < 0
        tri[flip] = tri[flip][:, ::-1]
    return tri


def solid_triangles(solids: Solid | Iterable[Solid]) -> np.ndarray:
    """All triangles ``(k, 3, 3)`` of one or more solids."""
    if isinstance(solids, Solid):
        solids = [solids]
    tris = [triangulate_surface(s) for solid in solids for s in solid.surfaces]
    tris = [t for t in tris if len(t)]
    return np.concatenate(tris) if tris else np.zeros((0, 3, 3))


def crown_mesh(shape: str = "ellipsoid", segments: int = 8, rings: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Unit crown mesh (radius 1 horizontally, z from -1 to 1), closed, outward; ``(verts, tris)``."""
    if shape == "cylinder":
        a = np.linspace(0, 2 * np.pi, segments, endpoint=False)
        ring = np.column_stack([np.cos(a), np.sin(a)])
        verts = np.vstack([np.column_stack([ring, -np.ones(segments)]), np.column_stack([ring, np.ones(segments)]),
                           [[0, 0, -1], [0, 0, 1]]])
        i = np.arange(segments)
        j = (i + 1) % segments
        side = np.concatenate([np.column_stack([i, j, j + segments]), np.column_stack([i, j + segments, i + segments])])
        bot = np.column_stack([np.full(segments, 2 * segments), j, i])
        top = np.column_stack([np.full(segments, 2 * segments + 1), i + segments, j + segments])
        return verts, np.concatenate([side, bot, top])
    if shape != "ellipsoid":
        raise dataset_error(GeometryError, "trees", f"unknown crown shape {shape!r}",
                            "use 'ellipsoid' or 'cylinder'")
    lat = np.linspace(-np.pi / 2, np.pi / 2, rings + 1)[1:-1]
    a = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    La, A = np.meshgrid(lat, a, indexing="ij")
    verts = np.column_stack([(np.cos(La) * np.cos(A)).ravel(), (np.cos(La) * np.sin(A)).ravel(), np.sin(La).ravel()])
    verts = np.vstack([verts, [[0, 0, -1], [0, 0, 1]]])
    s_, n_ = len(verts) - 2, len(verts) - 1
    tris = []
    i = np.arange(segments)
    j = (i + 1) % segments
    for r in range(rings - 2):
        lo, hi = r * segments, (r + 1) * segments
        tris.append(np.column_stack([lo + i, lo + j, hi + j]))
        tris.append(np.column_stack([lo + i, hi + j, hi + i]))
    tris.append(np.column_stack([np.full(segments, s_), j, i]))
    top = (rings - 2) * segments
    tris.append(np.column_stack([np.full(segments, n_), top + i, top + j]))
    return verts, np.concatenate(tris)


# ======================================================================================= scene
@dataclass
class _Group:
    name: str
    triangles: np.ndarray          # (m, 3, 3) local float64
    owner: np.ndarray              # (m,) int64 owner index, -1 none
    scene: object | None = None

    def build(self) -> None:
        if len(self.triangles) == 0:
            self.scene = None
            return
        sc = rtcore_scene.EmbreeScene()
        verts = self.triangles.reshape(-1, 3).astype(_F32)
        TriangleMesh(scene=sc, vertices=verts, indices=np.arange(len(verts), dtype=np.int32).reshape(-1, 3))
        # embreex commits (builds the BVH) lazily on the first query: do it here, so that building
        # the scene costs what it costs and queries (and their timings) are queries only
        sc.run(np.zeros((1, 3), dtype=_F32), np.array([[0.0, 0.0, 1.0]], dtype=_F32), query="OCCLUDED")
        self.scene = sc


class Scene:
    """Buildings, tree crowns and terrain for ray casting (see module docstring).

    Build with :meth:`build`. Query with :meth:`transmittance` (shadows, any-hit),
    :meth:`occluded`, :meth:`first_hit` and :meth:`building_hits` (sight lines).

    Attributes
    ----------
    origin : numpy.ndarray
        ``(3,)`` world coordinates subtracted from everything handed to embree.
    building_ids : list of str
        Owner of building triangles (``building_owner`` indexes into this list).
    crown_transmissivity : float
        Share of direct light passing one crown (0 opaque).
    terrain : TerrainModel or None
    """

    def __init__(self, origin: np.ndarray, groups: dict[str, _Group], building_ids: list[str],
                 tree_ids: list[str], terrain: TerrainModel | None, crown_transmissivity: float,
                 terrain_skip_m: float, threads: int, parameters: dict) -> None:
        self.origin = np.asarray(origin, dtype=np.float64)
        self.groups = groups
        self.building_ids = building_ids
        self.tree_ids = tree_ids
        self.terrain = terrain
        self.crown_transmissivity = float(crown_transmissivity)
        self.terrain_skip_m = float(terrain_skip_m)
        self.threads = max(1, int(threads))
        self.parameters = parameters
        self._pool = ThreadPoolExecutor(self.threads) if self.threads > 1 else None
        for g in groups.values():
            g.build()

    # ------------------------------------------------------------------ building the scene
    @classmethod
    def build(cls, buildings: Mapping[str, Solid | Sequence[Solid]] | None = None,
              trees=None, terrain: TerrainModel | None = None, *,
              crowns: bool = True, crown_shape: str = "ellipsoid", crown_base_fraction: float = 0.35,
              crown_transmissivity: float = 0.0, terrain_step_m: float = 5.0,
              terrain_far_step_m: float = 20.0, detail_bounds: Sequence[float] | None = None,
              terrain_skip_m: float | None = None, origin: Sequence[float] | None = None,
              threads: int | None = None) -> "Scene":
        """Triangulate the inputs and build the embree scenes.

        Parameters
        ----------
        buildings : mapping building id -> Solid or list of Solid
        trees : DataFrame-like, optional
            Columns ``x, y, height_m, crown_diameter_m`` (or a point ``geometry``), optional
            ``tree_id`` and ``ground_z`` (else from ``terrain``, else 0). Trees with missing or
            non-positive height or crown diameter raise.
        terrain : TerrainModel, optional
        crowns : bool
            Put tree crowns into the scene at all.
        crown_shape : {'ellipsoid', 'cylinder'}
        crown_base_fraction : float
            Crown spans ``[f * height, height]`` above ground.
        crown_transmissivity : float
            In [0, 1]: light passing one crown.
        terrain_step_m, terrain_far_step_m : float
            Terrain mesh spacing inside / outside ``detail_bounds`` (default: the whole terrain is
            detail).
        terrain_skip_m : float, optional
            Terrain is ignored along the first metres of a ray; default ``3 * terrain_step_m``.
        origin : (3,), optional
            Local origin; default the centre of the inputs' bounding box.
        threads : int, optional
            Threads for ray queries; default the number of CPUs.
        """
        if not 0.0 <= crown_transmissivity <= 1.0:
            raise dataset_error(GeometryError, "trees", f"crown transmissivity {crown_transmissivity} is "
                                "outside [0, 1]", "give a share of light passing a crown, e.g. 0.3")
        b_tris, b_owner, b_ids = [], [], []
        for bid, solids in (buildings or {}).items():
            t = solid_triangles(solids)
            if len(t) == 0:
                raise dataset_error(GeometryError, "buildings", "the building has no triangles",
                                    "give closed solids with non-degenerate surfaces", str(bid))
            b_tris.append(t)
            b_owner.append(np.full(len(t), len(b_ids), dtype=np.int64))
            b_ids.append(str(bid))
        c_tris, c_owner, t_ids = [], [], []
        if trees is not None and crowns and len(trees):
            c_tris, c_owner, t_ids = _tree_crowns(trees, terrain, crown_shape, crown_base_fraction)
        terr_tris = np.zeros((0, 3, 3))
        if terrain is not None:
            if detail_bounds is None:
                v, f = terrain.grid_mesh(terrain_step_m)
                terr_tris = v[f]
            else:
                x0, y0, x1, y1 = detail_bounds
                inside = lambda x, y: (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)  # noqa: E731
                v, f = terrain.grid_mesh(terrain_step_m, keep=inside)
                vf, ff = terrain.grid_mesh(terrain_far_step_m, keep=lambda x, y: ~inside(x, y))
                terr_tris = np.concatenate([v[f], vf[ff]])
        all_world = [t.reshape(-1, 3) for t in b_tris + c_tris] + [terr_tris.reshape(-1, 3)]
        all_world = np.concatenate(all_world) if all_world else np.zeros((0, 3))
        if origin is None:
            origin = (all_world.min(axis=0) + all_world.max(axis=0)) / 2 if len(all_world) else np.zeros(3)
        origin = np.round(np.asarray(origin, dtype=np.float64), 0)

        def group(name, tris, owners):
            if tris:
                t = np.concatenate(tris) - origin
                o = np.concatenate(owners)
            else:
                t, o = np.zeros((0, 3, 3)), np.zeros(0, dtype=np.int64)
            return _Group(name, t, o)

        groups = {"buildings": group("buildings", b_tris, b_owner),
                  "crowns": group("crowns", c_tris, c_owner),
                  "terrain": _Group("terrain", terr_tris - origin, np.full(len(terr_tris), -1, dtype=np.int64))}
        if c_tris and crown_transmissivity <= 0.0:
            # opaque crowns: one any-hit pass over buildings and crowns together
            groups["opaque"] = _Group("opaque", np.concatenate([groups["buildings"].triangles,
                                                                 groups["crowns"].triangles]),
                                      np.full(len(groups["buildings"].triangles) + len(groups["crowns"].triangles),
                                              -1, dtype=np.int64))
        params = {"crowns": bool(crowns), "crown_shape": crown_shape, "crown_base_fraction": crown_base_fraction,
                  "crown_transmissivity": crown_transmissivity, "terrain_step_m": terrain_step_m,
                  "terrain_far_step_m": terrain_far_step_m,
                  "terrain_skip_m": terrain_skip_m if terrain_skip_m is not None else 3 * terrain_step_m,
                  "ray_engine": "embree 4 (embreex)"}
        return cls(origin, groups, b_ids, t_ids, terrain, crown_transmissivity, params["terrain_skip_m"],
                   threads or os.cpu_count() or 1, params)

    # ------------------------------------------------------------------------------ info
    @property
    def n_triangles(self) -> dict[str, int]:
        return {k: int(len(g.triangles)) for k, g in self.groups.items()}

    def metadata(self) -> dict:
        return {**self.parameters, **{f"triangles_{k}": v for k, v in self.n_triangles.items()},
                "buildings": len(self.building_ids), "trees": len(self.tree_ids)}

    def building_triangles(self, building_id: str) -> np.ndarray:
        """World-coordinate triangles of one building."""
        k = self.building_ids.index(str(building_id))
        g = self.groups["buildings"]
        return g.triangles[g.owner == k] + self.origin

    # ---------------------------------------------------------------------------- queries
    def _run(self, group: str, origins_local: np.ndarray, dirs: np.ndarray, dists: np.ndarray | None,
             query: str) -> np.ndarray:
        """One embree query in chunks on the thread pool.

        ``dirs`` is ``(n, 3)`` or ``(1, 3)`` (one direction for every ray: embreex then reads the same
        row for each ray, no ``(n, 3)`` copy). ``OCCLUDED`` and ``INTERSECT`` return the hit
        primitive (``>= 0``) or -1, ``DISTANCE`` the distance (``1e30``-ish when nothing is hit).
        """
        sc = self.groups[group].scene
        n = len(origins_local)
        if sc is None or n == 0:
            return np.full(n, -1, dtype=np.int32) if query != "DISTANCE" else np.full(n, _FAR, dtype=_F32)
        o = np.ascontiguousarray(origins_local, dtype=_F32)
        d = np.ascontiguousarray(dirs, dtype=_F32)
        single = len(d) == 1
        dd = None if dists is None else np.ascontiguousarray(dists, dtype=_F32)

        def call(sl):
            ds = d if single else d[sl]
            if dd is None:
                return sc.run(o[sl], ds, query=query)
            return sc.run(o[sl], ds, dists=dd[sl], query=query)

        if self._pool is None or n < 20_000:
            return call(slice(0, n))
        chunk = max(10_000, -(-n // (self.threads * 4)))
        parts = list(self._pool.map(call, [slice(i, min(n, i + chunk)) for i in range(0, n, chunk)]))
        return np.concatenate(parts)

    def _prepare(self, origins, directions, max_dist):
        """Local origins ``(n, 3)``, unit directions ``(n, 3)`` or ``(1, 3)`` (one for all), max distances."""
        o = np.asarray(origins, dtype=np.float64).reshape(-1, 3) - self.origin
        d = np.asarray(directions, dtype=np.float64).reshape(-1, 3)
        if len(d) != 1 and len(d) != len(o):
            raise ValueError(f"{len(d)} directions for {len(o)} origins: give one direction or one per origin")
        nrm = np.linalg.norm(d, axis=1)
        d = d / np.where(nrm > 0, nrm, 1.0)[:, None]
        if max_dist is None:
            md = np.full(len(o), np.inf)
        else:
            md = np.broadcast_to(np.asarray(max_dist, dtype=np.float64), (len(o),)).copy()
        return o, d, md

    def _blocked_solid(self, o, d, md, terrain: bool, group: str = "buildings") -> np.ndarray:
        """Any hit on buildings (and terrain beyond the skip distance) within ``md``.

        Rays that are above the terrain's highest point once past the skip distance are not tested
        against the terrain (exact cull).
        """
        fin = np.where(np.isfinite(md), md, 1e30)
        hit = self._run(group, o, d, fin, "OCCLUDED") >= 0
        tg = self.groups["terrain"]
        if terrain and tg.scene is not None:
            ztop = float(tg.triangles[..., 2].max())
            s0 = self.terrain_skip_m
            can = o[:, 2] + s0 * d[:, 2] < ztop + 1e-3
            rest = ~hit & (fin > s0) & can
            if rest.any():
                s = self.terrain_skip_m
                hit[rest] = self._run("terrain", o[rest] + _rows(d, rest) * s, _rows(d, rest),
                                       fin[rest] - s, "OCCLUDED") >= 0
        return hit

    def _crown_count(self, o, d, md, max_crowns: int = 4) -> np.ndarray:
        """Number of crowns crossed within ``md`` (entry/exit pairs; capped)."""
        n = len(o)
        count = np.zeros(n, dtype=np.int64)
        if self.groups["crowns"].scene is None or n == 0:
            return count
        live = np.arange(n)
        oo = o.copy()
        left = np.where(np.isfinite(md), md, 1e30)
        for _ in range(2 * max_crowns):
            dist = self._run("crowns", oo[live], _rows(d, live), left[live], "DISTANCE").astype(np.float64)
            hit = dist < left[live] * (1 - 1e-7)
            live = live[hit]
            if len(live) == 0:
                break
            step = dist[hit] + 1e-3
            count[live] += 1
            oo[live] += _rows(d, live) * step[:, None]
            left[live] -= step
        return (count + 1) // 2

    def transmittance(self, origins, directions, max_dist=None, terrain: bool = True) -> np.ndarray:
        """Share of direct light arriving along each ray (float32 in [0, 1]).

        0 where a building (or terrain) blocks; ``crown_transmissivity ** crowns`` otherwise (1 with
        no crown; opaque crowns block).

        Parameters
        ----------
        origins : (n, 3) world coordinates, already offset from the surface they start on
        directions : (n, 3) or (3,) towards the light (normalised here)
        max_dist : float or (n,), optional
            Only hits closer than this count (segments); default unbounded.
        """
        o, d, md = self._prepare(origins, directions, max_dist)
        out = np.ones(len(o), dtype=np.float32)
        if "opaque" in self.groups:
            out[self._blocked_solid(o, d, md, terrain, "opaque")] = 0.0
            return out
        blocked = self._blocked_solid(o, d, md, terrain)
        out[blocked] = 0.0
        if self.groups["crowns"].scene is not None:
            free = np.flatnonzero(~blocked)
            fin = np.where(np.isfinite(md), md, 1e30)
            if self.crown_transmissivity <= 0.0:
                occ = self._run("crowns", o[free], _rows(d, free), fin[free], "OCCLUDED") >= 0
                out[free[occ]] = 0.0
            elif self.crown_transmissivity < 1.0:
                c = self._crown_count(o[free], _rows(d, free), md[free])
                out[free] = (self.crown_transmissivity ** c).astype(np.float32)
        return out

    def occluded(self, origins, directions, max_dist=None, terrain: bool = True, crowns: bool = True) -> np.ndarray:
        """Boolean any-hit test (buildings, terrain, and tree crowns as opaque when ``crowns``)."""
        o, d, md = self._prepare(origins, directions, max_dist)
        hit = self._blocked_solid(o, d, md, terrain)
        if crowns and self.groups["crowns"].scene is not None:
            free = np.flatnonzero(~hit)
            fin = np.where(np.isfinite(md), md, 1e30)
            hit[free] = self._run("crowns", o[free], _rows(d, free), fin[free], "OCCLUDED") >= 0
        return hit

    def first_hit(self, origins, directions, group: str = "buildings", max_dist=None) -> tuple[np.ndarray, np.ndarray]:
        """Nearest hit in one group: ``(distance m (inf = none), owner index (-1 = none))``."""
        o, d, md = self._prepare(origins, directions, max_dist)
        fin = np.where(np.isfinite(md), md, 1e30)
        g = self.groups[group]
        if g.scene is None:
            return np.full(len(o), np.inf), np.full(len(o), -1, dtype=np.int64)
        res = g.scene.run(np.ascontiguousarray(o, dtype=_F32), np.ascontiguousarray(d, dtype=_F32),
                          dists=np.ascontiguousarray(fin, dtype=_F32), output=1)
        prim = res["primID"].astype(np.int64)
        dist = np.where(prim >= 0, res["tfar"].astype(np.float64), np.inf)
        owner = np.where(prim >= 0, g.owner[np.maximum(prim, 0)], -1)
        return dist, owner

    def building_hits(self, origins, directions, max_dist, max_hits: int = 64) -> list[set[str]]:
        """Ids of every building hit along each segment (origin .. origin + max_dist * dir)."""
        o, d, md = self._prepare(origins, directions, max_dist)
        g = self.groups["buildings"]
        hits: list[set[str]] = [set() for _ in range(len(o))]
        if g.scene is None:
            return hits
        live = np.arange(len(o))
        oo = o.copy()
        left = md.copy()
        for _ in range(max_hits):
            if len(live) == 0:
                break
            res = g.scene.run(np.ascontiguousarray(oo[live], dtype=_F32),
                              np.ascontiguousarray(_rows(d, live), dtype=_F32),
                              dists=np.ascontiguousarray(left[live], dtype=_F32), output=1)
            prim = res["primID"].astype(np.int64)
            ok = prim >= 0
            live, prim, dist = live[ok], prim[ok], res["tfar"][ok].astype(np.float64)
            for i, p in zip(live.tolist(), prim.tolist()):
                hits[i].add(self.building_ids[g.owner[p]])
            step = dist + 1e-3
            oo[live] += _rows(d, live) * step[:, None]
            left[live] -= step
            live = live[left[live] > 0]
        return hits

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None

    def __del__(self):  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass


def _rows(d: np.ndarray, sel) -> np.ndarray:
    """``d[sel]``, or ``d`` itself when it is one direction for every ray."""
    return d if len(d) == 1 else d[sel]


def _tree_crowns(trees, terrain, shape, base_fraction):
    cols = getattr(trees, "columns", None)
    if cols is not None and "geometry" in cols and "x" not in cols:
        xs = np.asarray(trees.geometry.x, dtype=float)
        ys = np.asarray(trees.geometry.y, dtype=float)
    else:
        xs = np.asarray(trees["x"], dtype=float)
        ys = np.asarray(trees["y"], dtype=float)
    hs = np.asarray(trees["height_m"], dtype=float)
    ds = np.asarray(trees["crown_diameter_m"], dtype=float)
    ids = [str(i) for i in (trees["tree_id"] if cols is not None and "tree_id" in cols else range(len(xs)))]
    bad = ~(np.isfinite(hs) & (hs > 0) & np.isfinite(ds) & (ds > 0))
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise dataset_error(GeometryError, "trees", f"{int(bad.sum())} tree(s) without a positive height and "
                            f"crown diameter (height {hs[k]}, crown {ds[k]})",
                            "drop the trees or fill height_m and crown_diameter_m in staging", ids[k])
    if cols is not None and "ground_z" in cols:
        gz = np.asarray(trees["ground_z"], dtype=float)
    elif terrain is not None:
        gz = terrain.height(xs, ys)
    else:
        gz = np.zeros(len(xs))
    uv, uf = crown_mesh(shape)
    z0 = gz + base_fraction * hs
    z1 = gz + hs
    cz = (z0 + z1) / 2
    rz = (z1 - z0) / 2
    r = ds / 2
    # (trees, verts, 3) by broadcasting: no loop over trees
    v = np.empty((len(xs), len(uv), 3))
    v[..., 0] = xs[:, None] + r[:, None] * uv[None, :, 0]
    v[..., 1] = ys[:, None] + r[:, None] * uv[None, :, 1]
    v[..., 2] = cz[:, None] + rz[:, None] * uv[None, :, 2]
    tris = v[:, uf]                                   # (trees, faces, 3, 3)
    owners = np.repeat(np.arange(len(xs)), len(uf))
    return [tris.reshape(-1, 3, 3)], [owners], ids
