"""Boundary representation of building solids shared by builders, validators and writers.

A :class:`Solid` is a list of planar :class:`Surface` polygons with a semantic kind. Rings are
``(n, 3)`` float arrays of x, y, z in the processing CRS (metres), **not closed** (the first vertex
is not repeated), the exterior ring first and counter-clockwise seen from outside the solid (its
Newell normal points outwards), inner rings (holes) after it in the opposite sense.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Literal

import numpy as np

SurfaceKind = Literal["GroundSurface", "WallSurface", "RoofSurface", "ClosureSurface"]


def newell_normal(ring: np.ndarray) -> np.ndarray:
    """Area-weighted normal of a ring (length = 2 × area); robust for non-convex polygons."""
    r = np.asarray(ring, dtype=float)
    nxt = np.concatenate([r[1:], r[:1]])            # the next vertex (np.roll, without its overhead)
    return np.array([
        np.sum((r[:, 1] - nxt[:, 1]) * (r[:, 2] + nxt[:, 2])),
        np.sum((r[:, 2] - nxt[:, 2]) * (r[:, 0] + nxt[:, 0])),
        np.sum((r[:, 0] - nxt[:, 0]) * (r[:, 1] + nxt[:, 1])),
    ])


@dataclass
class Surface:
    """One planar polygon of a solid's boundary."""

    kind: SurfaceKind
    rings: list[np.ndarray]
    attributes: dict = field(default_factory=dict)

    @property
    def exterior(self) -> np.ndarray:
        return self.rings[0]

    def area_vector(self) -> np.ndarray:
        """Newell vector of the polygon with its holes: 2 × area along the outward normal."""
        v = newell_normal(self.rings[0])
        for hole in self.rings[1:]:
            v = v + newell_normal(hole)
        return v

    @property
    def area_m2(self) -> float:
        return float(np.linalg.norm(self.area_vector()) / 2.0)

    @property
    def normal(self) -> np.ndarray:
        v = self.area_vector()
        n = np.linalg.norm(v)
        return v / n if n > 0 else v

    @property
    def slope_deg(self) -> float:
        """Inclination against the horizontal (0 = flat, 90 = vertical)."""
        return float(np.degrees(np.arccos(np.clip(abs(self.normal[2]), 0.0, 1.0))))

    @property
    def azimuth_deg(self) -> float:
        """Compass direction of the outward normal (0 = north, 90 = east); NaN for flat."""
        n = self.normal
        if np.hypot(n[0], n[1]) < 1e-9:
            return float("nan")
        return float(np.degrees(np.arctan2(n[0], n[1])) % 360.0)


@dataclass
class Solid:
    """A closed shell of semantic surfaces (LoD1 or LoD2)."""

    surfaces: list[Surface]
    lod: int = 2

    def of_kind(self, kind: SurfaceKind) -> list[Surface]:
        return [s for s in self.surfaces if s.kind == kind]

    @property
    def volume_m3(self) -> float:
        """Signed volume by the divergence theorem; positive for an outward-oriented closed shell."""
        vol = 0.0
        origin = self.vertices_array().mean(axis=0)  # precision at UTM coordinates
        for s in self.surfaces:
            for ring in s.rings:
                ring = np.asarray(ring, dtype=float) - origin
                # sum over a fan of triangles from the ring's first vertex (exact for planar rings)
                a = ring[0]
                b = ring[1:-1]
                c = ring[2:]
                vol += float(np.sum(np.einsum("ij,ij->i", np.broadcast_to(a, b.shape), np.cross(b, c))))
        return vol / 6.0

    @property
    def bounds(self) -> tuple[float, float, float, float, float, float]:
        pts = self.vertices_array()
        lo = pts.min(axis=0)
        hi = pts.max(axis=0)
        return (*lo.tolist(), *hi.tolist())

    def vertices_array(self) -> np.ndarray:
        return np.concatenate([r for s in self.surfaces for r in s.rings], axis=0)

    def indexed(self, decimals: int = 3) -> tuple[np.ndarray, list[list[list[int]]], list[str]]:
        """Shared vertex list (rounded to ``decimals``) and polygons as index rings.

        Returns ``(vertices (n,3), polygons [[exterior idx], [hole idx], ...], kinds)``; this is the
        form of CityJSON and of val3dity's checks.
        """
        lookup: dict[tuple[float, float, float], int] = {}
        verts: list[tuple[float, float, float]] = []
        polys: list[list[list[int]]] = []
        for s in self.surfaces:
            poly = []
            for ring in s.rings:
                idx = []
                for p in np.round(np.asarray(ring, dtype=float), decimals):
                    key = (float(p[0]), float(p[1]), float(p[2]))
                    i = lookup.get(key)
                    if i is None:
                        i = len(verts)
                        lookup[key] = i
                        verts.append(key)
                    idx.append(i)
                poly.append(idx)
            polys.append(poly)
        return np.array(verts, dtype=float).reshape(-1, 3), polys, [s.kind for s in self.surfaces]


def prism(footprint_xy: np.ndarray, z_bottom: float, z_top: float,
          holes_xy: Iterable[np.ndarray] = ()) -> Solid:
    """A LoD1 block: the footprint extruded from ``z_bottom`` to ``z_top``.

    ``footprint_xy`` is the exterior ring (n, 2), not closed, in any orientation.
    """
    ext = _ccw(np.asarray(footprint_xy, dtype=float))
    holes = [_ccw(np.asarray(h, dtype=float))[::-1] for h in holes_xy]
    def lift(r: np.ndarray, z: float) -> np.ndarray:
        return np.column_stack([r, np.full(len(r), z)])
    surfaces = [Surface("GroundSurface", [lift(ext[::-1], z_bottom)] + [lift(h[::-1], z_bottom) for h in holes]),
                Surface("RoofSurface", [lift(ext, z_top)] + [lift(h, z_top) for h in holes])]
    for ring in [ext] + holes:
        nxt = np.roll(ring, -1, axis=0)
        for a, b in zip(ring, nxt):
            surfaces.append(Surface("WallSurface", [np.array([[a[0], a[1], z_bottom], [b[0], b[1], z_bottom],
                                                              [b[0], b[1], z_top], [a[0], a[1], z_top]])]))
    return Solid(surfaces, lod=1)


def _ccw(ring_xy: np.ndarray) -> np.ndarray:
    """Ring in counter-clockwise order (positive signed area), unclosed."""
    r = ring_xy
    if len(r) > 1 and np.allclose(r[0], r[-1], rtol=0.0, atol=1e-9):
        r = r[:-1]
    x, y = r[:, 0], r[:, 1]
    signed = 0.5 * np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y)
    return r if signed > 0 else r[::-1]
