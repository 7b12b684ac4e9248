"""Shadow casting and hours of direct sun on the ground and on facades; DIN EN 17037 sunlight exposure.

A receptor gets direct sun at a time step when the sun is above the horizon, in front of the
receptor's surface (``dot(normal, sun) > 0``: the ground's normal from the DTM, a wall's outward
normal) and the ray towards the sun is free of buildings and terrain; a tree crown passes
``crown_transmissivity`` of the light (0 = opaque). Sun hours are the sum over the time steps of
``step_h * transmittance`` (see :mod:`citymodel.analysis.sun` for the time steps).

Ground grid: cell centres of a ``cell_m`` grid over the bounds, 0.05 m above the terrain; cells under
a roof (a vertical ray upwards hits a building) get NaN. Facade points: per wall surface and storey,
points at storey mid-height 0.1 m in front of the wall.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from affine import Affine
from shapely.geometry import LineString, Polygon

from ..errors import ConfigError, GeometryError, dataset_error
from ..geometry3d import Solid
from ..raster import write_geotiff
from .scene import Scene
from .sun import SunPath, day_times, solar_positions, sun_vectors

__all__ = [
    "GROUND_OFFSET_M", "SunHoursGrid", "ground_grid", "sun_hours_ground", "write_sun_hours_geotiff",
    "FacadePoints", "facade_points", "sun_hours_points", "facade_sun_hours", "DIN17037_LEVELS",
    "din17037_level", "din17037_sunlight",
]

GROUND_OFFSET_M = 0.05

#: DIN EN 17037 sunlight exposure levels: minimum hours of possible sun on the chosen day.
DIN17037_LEVELS: tuple[tuple[str, float], ...] = (("high", 4.0), ("medium", 3.0), ("minimum", 1.5))


# ===================================================================================== ground
@dataclass
class SunHoursGrid:
    """Hours of direct sun on a ground grid, one band per day.

    Attributes
    ----------
    hours : numpy.ndarray
        float32 ``(days, rows, cols)``, row 0 north; NaN under roofs.
    bounds : (minx, miny, maxx, maxy)
    cell_m : float
    dates : list of datetime.date
    metadata : dict
        Method and parameters (sun model, time step, scene parameters, rays cast, timings).
    """

    hours: np.ndarray
    bounds: tuple[float, float, float, float]
    cell_m: float
    dates: list[dt.date]
    metadata: dict = field(default_factory=dict)

    @property
    def transform(self) -> Affine:
        return Affine(self.cell_m, 0.0, self.bounds[0], 0.0, -self.cell_m, self.bounds[3])


def ground_grid(bounds: Sequence[float], cell_m: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Cell-centre coordinates ``(X, Y)`` of shape ``(rows, cols)``, row 0 north."""
    minx, miny, maxx, maxy = bounds
    if not (cell_m > 0 and maxx > minx and maxy > miny):
        raise ConfigError(f"grid bounds {tuple(bounds)} / cell {cell_m} m are not usable. Fix: give "
                          "minx < maxx, miny < maxy and cell_m > 0")
    cols = int(round((maxx - minx) / cell_m))
    rows = int(round((maxy - miny) / cell_m))
    xs = minx + (np.arange(cols) + 0.5) * cell_m
    ys = maxy - (np.arange(rows) + 0.5) * cell_m
    return np.meshgrid(xs, ys)


def sun_hours_ground(scene: Scene, sun: SunPath, bounds: Sequence[float], cell_m: float = 1.0,
                     ground_z_m: float | None = None, offset_m: float = GROUND_OFFSET_M,
                     cells: np.ndarray | None = None) -> SunHoursGrid:
    """Hours of direct sun per ground cell and day.

    Parameters
    ----------
    scene : Scene
        Buildings, crowns and (optionally) terrain.
    sun : SunPath
        Time steps of one or more days (each day gets a band).
    bounds : (minx, miny, maxx, maxy)
        Grid extent, e.g. ``Tile.bounds``.
    cell_m : float
        Grid spacing (m), default 1.
    ground_z_m : float, optional
        Ground height where the scene has no terrain (default 0).
    offset_m : float
        Height of the receptor above the ground.
    cells : (rows, cols) bool array, optional
        Compute only these cells (the others are NaN); each cell's value is the same as in a
        computation of the whole grid (a planning variant recomputes only its impact area).

    Returns
    -------
    SunHoursGrid
    """
    import time
    t0 = time.perf_counter()
    X, Y = ground_grid(bounds, cell_m)
    sel = np.ones(X.size, dtype=bool) if cells is None else np.asarray(cells, dtype=bool).ravel()
    x, y = X.ravel()[sel], Y.ravel()[sel]
    if scene.terrain is not None:
        z = scene.terrain.height(x, y)
        normals = scene.terrain.normal(x, y)
    else:
        z = np.full(x.size, 0.0 if ground_z_m is None else float(ground_z_m))
        normals = np.tile([0.0, 0.0, 1.0], (x.size, 1))
    pts = np.column_stack([x, y, z + offset_m])
    under_roof = scene.occluded(pts, np.array([0.0, 0.0, 1.0]), terrain=False, crowns=False)
    open_idx = np.flatnonzero(~under_roof)
    p_open, n_open = pts[open_idx], normals[open_idx]
    dates = sun.dates
    hours = np.full((len(dates), X.size), np.nan, dtype=np.float32)
    at = np.flatnonzero(sel)
    rays = 0
    for k, day in enumerate(dates):
        acc = np.zeros(len(open_idx), dtype=np.float64)
        for i in np.flatnonzero(sun.day_mask(day) & sun.above_horizon):
            s = sun.vectors[i]
            front = np.flatnonzero(n_open @ s > 0)
            if len(front) == 0:
                continue
            tr = scene.transmittance(p_open[front], s)
            acc[front] += tr * sun.step_h
            rays += len(front)
        hours[k, at[open_idx]] = acc.astype(np.float32)
    rows, cols = X.shape
    meta = {"layer": "sun_hours_ground", "method": "ray casting (embree) towards the sun per time step",
            "cell_m": cell_m, "receptor_offset_m": offset_m, "cells_under_roof": int(under_roof.sum()),
            "rays": int(rays), "seconds": round(time.perf_counter() - t0, 3), "units": "h/day",
            **sun.metadata(), **scene.metadata()}
    return SunHoursGrid(hours.reshape(len(dates), rows, cols), tuple(map(float, bounds)), float(cell_m), dates, meta)


def write_sun_hours_geotiff(path: str | os.PathLike, grid: SunHoursGrid, crs: str) -> os.PathLike:
    """Write a :class:`SunHoursGrid` (one band per day, NaN nodata) with its method as tags.

    The computing time is left out: the published file depends only on the inputs (the release's
    content digest is the same for every run of the same inputs, in any process or worker)."""
    return write_geotiff(path, grid.hours, bounds=grid.bounds, crs=crs, nodata=float("nan"),
                         tags={k: v for k, v in grid.metadata.items() if k != "seconds"},
                         band_descriptions=[f"sun hours {d.isoformat()}" for d in grid.dates])


# ==================================================================================== facades
@dataclass
class FacadePoints:
    """Receptor points in front of walls.

    Attributes
    ----------
    xyz : (n, 3) world coordinates (``offset_m`` in front of the wall)
    normal : (n, 3) outward horizontal unit normal of the wall
    table : pandas.DataFrame
        One row per point: ``building_id, surface_index`` (index of the wall in the building's
        surfaces, solids concatenated in order), ``storey`` (0 = ground floor), ``x, y, z``.
    """

    xyz: np.ndarray
    normal: np.ndarray
    table: pd.DataFrame

    def __len__(self) -> int:
        return len(self.xyz)


def _solids_list(solids: Solid | Sequence[Solid]) -> list[Solid]:
    return [solids] if isinstance(solids, Solid) else list(solids)


def facade_points(buildings: Mapping[str, Solid | Sequence[Solid]], storey_height_m: float = 3.0,
                  offset_m: float = 0.1, spacing_m: float | None = None, min_wall_slope_deg: float = 60.0,
                  ground_z: Mapping[str, float] | None = None) -> FacadePoints:
    """Sample points on the walls, per wall surface and storey, at storey mid-height.

    Parameters
    ----------
    buildings : mapping building id -> Solid or list of Solid
    storey_height_m : float
        Storey height; storey ``k`` is sampled at ``ground + (k + 0.5) * storey_height_m``.
    offset_m : float
        Distance in front of the wall (along its outward normal).
    spacing_m : float, optional
        Points every ``spacing_m`` along the wall; default one point in the middle of the wall.
    min_wall_slope_deg : float
        Surfaces steeper than this count as walls.
    ground_z : mapping, optional
        Ground height per building; default the building's lowest vertex.
    """
    if not storey_height_m > 0:
        raise ConfigError(f"storey height {storey_height_m} m is not positive. Fix: give e.g. 3.0")
    xyz, nrm, rows = [], [], []
    for bid, solids in buildings.items():
        solids = _solids_list(solids)
        surfaces = [s for so in solids for s in so.surfaces]
        if not surfaces:
            raise dataset_error(GeometryError, "buildings", "the building has no surfaces",
                                "give closed solids", str(bid))
        gz = float(ground_z[bid]) if ground_z is not None and bid in ground_z else \
            float(min(so.bounds[2] for so in solids))
        for si, s in enumerate(surfaces):
            if s.kind != "WallSurface" or s.slope_deg < min_wall_slope_deg:
                continue
            n = s.normal
            nh = np.array([n[0], n[1], 0.0])
            if np.linalg.norm(nh) < 1e-9:
                continue
            nh /= np.linalg.norm(nh)
            ua = np.array([-nh[1], nh[0], 0.0])            # along the wall, horizontal
            ring = np.asarray(s.exterior, dtype=float)
            p0 = ring[0]
            u = (ring - p0) @ ua
            poly = Polygon(np.column_stack([u, ring[:, 2]]))
            if not poly.is_valid or poly.area <= 0:
                continue
            umin, zmin, umax, zmax = poly.bounds
            k0 = max(0, int(np.floor((zmin - gz) / storey_height_m)))
            for k in range(k0, 1000):
                zk = gz + (k + 0.5) * storey_height_m
                if zk >= zmax:
                    break
                if zk <= zmin:
                    continue
                cut = poly.intersection(LineString([(umin - 1, zk), (umax + 1, zk)]))
                segs = [g for g in getattr(cut, "geoms", [cut]) if g.length > 1e-6 and g.geom_type == "LineString"]
                for seg in segs:
                    a, b = sorted([seg.coords[0][0], seg.coords[-1][0]])
                    if spacing_m is None:
                        us = np.array([(a + b) / 2])
                    else:
                        m = max(1, int(np.floor((b - a) / spacing_m)))
                        us = a + (b - a) * (np.arange(m) + 0.5) / m
                    p = p0 + us[:, None] * ua + (zk - p0[2]) * np.array([0.0, 0.0, 1.0]) + offset_m * nh
                    xyz.append(p)
                    nrm.append(np.tile(nh, (len(us), 1)))
                    rows.extend({"building_id": str(bid), "surface_index": si, "storey": k} for _ in us)
    if not xyz:
        return FacadePoints(np.zeros((0, 3)), np.zeros((0, 3)),
                            pd.DataFrame(columns=["building_id", "surface_index", "storey", "x", "y", "z"]))
    xyz = np.concatenate(xyz)
    table = pd.DataFrame(rows)
    table["x"], table["y"], table["z"] = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    return FacadePoints(xyz, np.concatenate(nrm), table)


def sun_hours_points(scene: Scene, sun: SunPath, xyz: np.ndarray, normals: np.ndarray | None = None,
                     min_elevation_deg: float = 0.0) -> np.ndarray:
    """Hours of direct sun at arbitrary receptors, per day: ``(n, days)`` float64.

    The sun counts when its elevation exceeds ``min_elevation_deg`` and, with ``normals``, when it
    is in front of the receptor's surface.
    """
    xyz = np.asarray(xyz, dtype=float).reshape(-1, 3)
    dates = sun.dates
    out = np.zeros((len(xyz), len(dates)))
    for k, day in enumerate(dates):
        for i in np.flatnonzero(sun.day_mask(day) & (sun.elevation_deg > max(0.0, min_elevation_deg))):
            s = sun.vectors[i]
            idx = np.arange(len(xyz)) if normals is None else np.flatnonzero(normals @ s > 0)
            if len(idx):
                out[idx, k] += scene.transmittance(xyz[idx], s) * sun.step_h
    return out


def facade_sun_hours(scene: Scene, sun: SunPath, points: FacadePoints,
                     min_elevation_deg: float = 0.0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sun hours at facade points, per point and aggregated per wall surface and storey.

    Returns
    -------
    (points_table, walls_table)
        ``points_table``: the point table plus ``sun_h_<date>`` per day.
        ``walls_table``: per ``building_id, surface_index, storey`` the mean and max hours per day
        (``sun_h_mean_<date>``, ``sun_h_max_<date>``).
    """
    h = sun_hours_points(scene, sun, points.xyz, points.normal, min_elevation_deg)
    pts = points.table.copy()
    cols = [f"sun_h_{d.isoformat()}" for d in sun.dates]
    for k, c in enumerate(cols):
        pts[c] = h[:, k]
    keys = ["building_id", "surface_index", "storey"]
    if len(pts):
        g = pts.groupby(keys, sort=True)[cols]
        walls = g.mean().add_prefix("mean_").join(g.max().add_prefix("max_")).reset_index()
        walls.columns = [c.replace("mean_sun_h_", "sun_h_mean_").replace("max_sun_h_", "sun_h_max_")
                         for c in walls.columns]
    else:
        walls = pd.DataFrame(columns=keys)
    pts.attrs.update({**sun.metadata(), **scene.metadata(), "min_elevation_deg": min_elevation_deg})
    walls.attrs.update(pts.attrs)
    return pts, walls


# ================================================================================ DIN EN 17037
def din17037_level(hours: np.ndarray) -> np.ndarray:
    """DIN EN 17037 sunlight exposure level per value: 'high' >= 4 h, 'medium' >= 3 h,
    'minimum' >= 1.5 h, otherwise 'none'."""
    h = np.asarray(hours, dtype=float)
    out = np.full(h.shape, "none", dtype=object)
    for name, lim in reversed(DIN17037_LEVELS):
        out[h >= lim - 1e-9] = name
    return out


def din17037_sunlight(scene: Scene, points: FacadePoints, latitude: float, longitude: float,
                      convergence_deg: float, date: dt.date | str | tuple = (3, 21), year: int = 2025,
                      step_min: float = 5.0, tz: str = "Europe/Berlin",
                      min_elevation_deg: float = 0.0) -> pd.DataFrame:
    """DIN EN 17037 sunlight exposure check per building: the best facade point's level.

    Parameters
    ----------
    scene : Scene
    points : FacadePoints
        Assessment points (e.g. window centres: :func:`facade_points`).
    latitude, longitude, convergence_deg : float
        Site (see :func:`citymodel.analysis.sun.site_location`, ``grid_convergence_deg``).
    date : date, ISO string or (month, day)
        The day of the check, between 1 February and 21 March (the standard's window).
    step_min : float
        Time step (minutes).
    min_elevation_deg : float
        Sun below this elevation does not count (the standard lets a national annex set a minimum
        altitude; 0 = the horizon).

    Returns
    -------
    pandas.DataFrame
        Per building: ``building_id, sun_hours_best, level`` (high/medium/minimum/none),
        ``surface_index, storey, x, y, z`` of the best point, ``date``.

    Raises
    ------
    ConfigError
        The date is outside 1 February .. 21 March.
    """
    if isinstance(date, str):
        d = dt.date.fromisoformat(date)
    elif isinstance(date, dt.date):
        d = date
    else:
        d = dt.date(year, int(date[0]), int(date[1]))
    if not (dt.date(d.year, 2, 1) <= d <= dt.date(d.year, 3, 21)):
        raise ConfigError(f"DIN EN 17037 sunlight date {d.isoformat()} is outside 1 February .. 21 March. "
                          "Fix: choose a day in that window, e.g. 21 March")
    times, step_h = day_times([d], step_min, tz, d.year)
    pos = solar_positions(times, latitude, longitude)
    az = pos["azimuth"].to_numpy(float)
    el = pos["apparent_elevation"].to_numpy(float)
    sp = SunPath(times, az, el, sun_vectors(az, el, convergence_deg), step_h, latitude, longitude,
                 convergence_deg, "")
    h = sun_hours_points(scene, sp, points.xyz, points.normal, min_elevation_deg)[:, 0]
    t = points.table.copy()
    t["sun_hours"] = h
    if len(t) == 0:
        return pd.DataFrame(columns=["building_id", "sun_hours_best", "level", "surface_index", "storey",
                                     "x", "y", "z", "date"])
    best = t.loc[t.groupby("building_id", sort=True)["sun_hours"].idxmax()].reset_index(drop=True)
    out = best.rename(columns={"sun_hours": "sun_hours_best"})[
        ["building_id", "sun_hours_best", "surface_index", "storey", "x", "y", "z"]]
    out.insert(2, "level", din17037_level(out["sun_hours_best"].to_numpy()))
    out["date"] = d.isoformat()
    out.attrs.update({"method": "DIN EN 17037 sunlight exposure (hours of possible sun on one day, "
                                "best assessment point per building)", "step_min": step_min,
                      "min_elevation_deg": min_elevation_deg, **sp.metadata(), **scene.metadata()})
    return out
