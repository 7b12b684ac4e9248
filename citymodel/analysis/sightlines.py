"""Sight lines between observers and targets, and viewsheds, over the 3D scene.

A sight line from an eye point to a target point is **visible** when no building, no terrain and
(with ``crowns_block``) no tree crown lies on the segment. The last ``target_tolerance_m`` before the
target do not count (a target on a roof or facade must not be hidden by its own surface); terrain
is tested from ``scene.terrain_skip_m`` after the eye to as far before the target (the coarse terrain
mesh must not hide the ground an eye stands on). Blocking buildings are reported with the ids of
every building the segment passes.

A **viewshed** casts one ray per grid cell within ``radius_m`` from the eye, to the cell centre at
``target_height_m`` above the terrain, or (``target_height_m=None``) to the visible surface (roof
or ground) of the cell.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
from affine import Affine

from ..errors import ConfigError, SourceDataError, dataset_error
from .scene import Scene
from .shadow import ground_grid

__all__ = ["sight_lines", "viewpoint_pairs", "sight_lines_from_viewpoints", "Viewshed", "viewshed",
           "VISIBLE", "HIDDEN", "OUTSIDE"]

VISIBLE, HIDDEN, OUTSIDE = 1, 0, 255


def _ground(scene: Scene, x, y, ground_z_m: float | None) -> np.ndarray:
    if scene.terrain is not None:
        return scene.terrain.height(x, y)
    return np.full(np.shape(x), 0.0 if ground_z_m is None else float(ground_z_m))


def _segment_visibility(scene: Scene, eyes: np.ndarray, targets: np.ndarray, target_tolerance_m: float,
                        crowns_block: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(blocked_by_buildings, blocked_by_terrain, blocked_by_trees, length_m) per segment."""
    v = targets - eyes
    length = np.linalg.norm(v, axis=1)
    d = v / np.where(length > 0, length, 1.0)[:, None]
    reach = np.maximum(length - target_tolerance_m, 0.0)
    o = eyes - scene.origin
    b = scene._run("buildings", o, d, np.maximum(reach, 1e-6), "OCCLUDED") >= 0
    b &= reach > 0
    t = np.zeros(len(o), dtype=bool)
    if scene.groups["terrain"].scene is not None:
        s = scene.terrain_skip_m
        span = length - 2 * s
        m = np.flatnonzero(span > 0)
        if len(m):
            t[m] = scene._run("terrain", o[m] + d[m] * s, d[m], span[m], "OCCLUDED") >= 0
    c = np.zeros(len(o), dtype=bool)
    if crowns_block and scene.groups["crowns"].scene is not None:
        c = (scene._run("crowns", o, d, np.maximum(reach, 1e-6), "OCCLUDED") >= 0) & (reach > 0)
    return b, t, c, length


def sight_lines(scene: Scene, eyes_xyz: np.ndarray, targets_xyz: np.ndarray, *,
                target_tolerance_m: float = 0.5, crowns_block: bool = True,
                ids: Sequence[tuple[str, str]] | None = None) -> pd.DataFrame:
    """Visibility of each (eye, target) segment and the buildings that block it.

    Parameters
    ----------
    scene : Scene
    eyes_xyz, targets_xyz : (n, 3)
        World coordinates (absolute heights).
    target_tolerance_m : float
        Hits this close to the target are ignored.
    crowns_block : bool
        Tree crowns block the view (a sight line is not attenuated, it is blocked or not).
    ids : list of (observer_id, target_id), optional

    Returns
    -------
    pandas.DataFrame
        ``observer_id, target_id, distance_m, visible, blocked_by_buildings`` (list of building ids,
        every building the segment passes, sorted), ``blocked_by_terrain, blocked_by_trees``.
    """
    e = np.asarray(eyes_xyz, dtype=float).reshape(-1, 3)
    t = np.asarray(targets_xyz, dtype=float).reshape(-1, 3)
    if e.shape != t.shape:
        raise ConfigError(f"{len(e)} eye points but {len(t)} targets. Fix: give one target per eye point")
    b, ter, c, length = _segment_visibility(scene, e, t, target_tolerance_m, crowns_block)
    reach = np.maximum(length - target_tolerance_m, 1e-6)
    names = [sorted(h) for h in scene.building_hits(e, t - e, reach)]
    if ids is None:
        ids = [(str(i), str(i)) for i in range(len(e))]
    return pd.DataFrame({
        "observer_id": [i[0] for i in ids], "target_id": [i[1] for i in ids], "distance_m": length,
        "visible": ~(b | ter | c), "blocked_by_buildings": names,
        "blocked_by_terrain": ter, "blocked_by_trees": c,
    })


def viewpoint_pairs(viewpoints, ground_height=None, dataset: str = "viewpoints") -> tuple[np.ndarray, np.ndarray, list]:
    """Eye and target points of the staged ``viewpoints`` role.

    Observers (``kind == 'observer'``) look at the viewpoint named by their ``target_id``; both
    points stand ``eye_height_m`` above the ground (``ground_height(x, y)``, default 0).

    Raises
    ------
    SourceDataError
        An observer names a target that does not exist (the record and the fix are named).
    """
    vp = viewpoints
    by_id = {str(r.viewpoint_id): r for r in vp.itertuples()}
    gh = ground_height or (lambda x, y: np.zeros(np.shape(x)))
    eyes, targets, ids = [], [], []
    for r in vp.itertuples():
        if str(r.kind) != "observer":
            continue
        tid = getattr(r, "target_id", None)
        if tid is None or (isinstance(tid, float) and np.isnan(tid)) or str(tid) not in by_id:
            raise dataset_error(SourceDataError, dataset, f"observer names target {tid!r}, which is not a "
                                "viewpoint", "set target_id to the viewpoint_id of a target", str(r.viewpoint_id))
        tg = by_id[str(tid)]
        for p, row, out in ((r.geometry, r, eyes), (tg.geometry, tg, targets)):
            h = float(row.eye_height_m) if row.eye_height_m is not None and np.isfinite(row.eye_height_m) else 1.6
            out.append([p.x, p.y, float(np.asarray(gh(np.array([p.x]), np.array([p.y])))[0]) + h])
        ids.append((str(r.viewpoint_id), str(tid)))
    return np.array(eyes).reshape(-1, 3), np.array(targets).reshape(-1, 3), ids


def sight_lines_from_viewpoints(scene: Scene, viewpoints, **kwargs) -> pd.DataFrame:
    """:func:`sight_lines` for every observer of a staged ``viewpoints`` GeoDataFrame (heights above
    the scene's terrain)."""
    gh = scene.terrain.height if scene.terrain is not None else None
    eyes, targets, ids = viewpoint_pairs(viewpoints, gh)
    out = sight_lines(scene, eyes, targets, ids=ids, **kwargs)
    out.attrs.update({"method": "segment ray casting (embree)", **scene.metadata()})
    return out


@dataclass
class Viewshed:
    """Visibility raster: ``VISIBLE`` (1), ``HIDDEN`` (0), ``OUTSIDE`` the radius (255, nodata)."""

    visible: np.ndarray
    bounds: tuple[float, float, float, float]
    cell_m: float
    eye_xyz: np.ndarray
    metadata: dict = field(default_factory=dict)

    @property
    def transform(self) -> Affine:
        return Affine(self.cell_m, 0.0, self.bounds[0], 0.0, -self.cell_m, self.bounds[3])

    @property
    def visible_area_m2(self) -> float:
        return float((self.visible == VISIBLE).sum() * self.cell_m ** 2)


def viewshed(scene: Scene, eye_xy: Sequence[float], eye_height_m: float = 1.6, radius_m: float = 300.0,
             cell_m: float = 1.0, target_height_m: float | None = 1.5, *, ground_z_m: float | None = None,
             target_tolerance_m: float = 0.5, crowns_block: bool = True) -> Viewshed:
    """Cells visible from an eye point ``eye_height_m`` above the ground, within ``radius_m``.

    Parameters
    ----------
    eye_xy : (x, y)
    target_height_m : float or None
        Height of the target above the terrain in each cell; ``None``: the cell's visible surface
        (roof where a building covers it, else the ground).
    ground_z_m : float, optional
        Ground height where the scene has no terrain (default 0).

    Returns
    -------
    Viewshed
        ``uint8`` raster aligned to ``cell_m`` multiples around the eye.
    """
    t0 = time.perf_counter()
    if not (radius_m > 0 and cell_m > 0):
        raise ConfigError(f"viewshed radius {radius_m} m / cell {cell_m} m must be positive. "
                          "Fix: give e.g. radius_m=300, cell_m=1")
    ex, ey = float(eye_xy[0]), float(eye_xy[1])
    minx = np.floor((ex - radius_m) / cell_m) * cell_m
    miny = np.floor((ey - radius_m) / cell_m) * cell_m
    maxx = np.ceil((ex + radius_m) / cell_m) * cell_m
    maxy = np.ceil((ey + radius_m) / cell_m) * cell_m
    X, Y = ground_grid((minx, miny, maxx, maxy), cell_m)
    x, y = X.ravel(), Y.ravel()
    inside = np.hypot(x - ex, y - ey) <= radius_m
    out = np.full(x.size, OUTSIDE, dtype=np.uint8)
    idx = np.flatnonzero(inside)
    gz = _ground(scene, x[idx], y[idx], ground_z_m)
    eye = np.array([ex, ey, float(_ground(scene, np.array([ex]), np.array([ey]), ground_z_m)[0]) + eye_height_m])
    if target_height_m is None:
        top = scene.groups["buildings"].triangles
        ztop = (float(top[..., 2].max() + scene.origin[2]) if len(top) else float(gz.max())) + 10.0
        dist, _ = scene.first_hit(np.column_stack([x[idx], y[idx], np.full(len(idx), ztop)]),
                                  np.array([0.0, 0.0, -1.0]), "buildings")
        tz = np.where(np.isfinite(dist), ztop - dist, gz) + 0.05
    else:
        tz = gz + float(target_height_m)
    targets = np.column_stack([x[idx], y[idx], tz])
    eyes = np.broadcast_to(eye, targets.shape)
    b, t, c, _ = _segment_visibility(scene, np.ascontiguousarray(eyes), targets, target_tolerance_m, crowns_block)
    out[idx] = np.where(b | t | c, HIDDEN, VISIBLE).astype(np.uint8)
    meta = {"layer": "viewshed", "method": "ray casting (embree) from the eye to each cell",
            "eye_x": ex, "eye_y": ey, "eye_z": float(eye[2]), "eye_height_m": eye_height_m,
            "radius_m": radius_m, "cell_m": cell_m,
            "target": "surface" if target_height_m is None else f"{target_height_m} m above terrain",
            "target_tolerance_m": target_tolerance_m, "crowns_block": crowns_block,
            "seconds": round(time.perf_counter() - t0, 3), **scene.metadata()}
    return Viewshed(out.reshape(X.shape), (float(minx), float(miny), float(maxx), float(maxy)), float(cell_m), eye, meta)
