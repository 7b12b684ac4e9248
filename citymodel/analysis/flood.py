"""Flood exposure: water depth per scenario from flood-zone water levels and the terrain.

Method ("water level - DTM"): inside the zones of a scenario, depth = water surface level of the
zone - terrain height; cells where this is <= 0 (dry ground inside the zone) or outside every zone
are NaN. Where zones of one scenario overlap, the higher water level counts. No hydraulics: the
water level of a zone is taken as flat (the flood maps' own levels per reach).

Per building the depth is sampled on the footprint boundary (every ``sample_spacing_m``) and on a
grid inside it; a building is affected where any sample is wet; ``ground_floor_flooded`` where
the maximum depth exceeds ``floor_offset_m`` (the assumed height of the ground floor above the
terrain).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import shapely
from affine import Affine

from ..errors import SourceDataError, dataset_error

METHOD = "water level - DTM"


@dataclass
class FloodDepth:
    """Water depth (m) of one scenario on the DTM's grid; NaN where dry or outside the zones."""

    scenario: str
    depth_m: np.ndarray
    transform: Affine
    crs: Any = None
    zones: list[str] = field(default_factory=list)
    method: str = METHOD

    @property
    def cell_area_m2(self) -> float:
        return abs(self.transform.a * self.transform.e)

    @property
    def flooded_area_m2(self) -> float:
        return float(np.isfinite(self.depth_m).sum() * self.cell_area_m2)


def check_zones(zones, dataset: str = "flood_zones") -> None:
    """Raise a :class:`SourceDataError` for a zone without scenario or water level."""
    ids = zones["zone_id"].astype(str).to_numpy() if "zone_id" in zones else np.arange(len(zones)).astype(str)
    if "water_level_m" not in zones:
        raise dataset_error(SourceDataError, dataset, "no water_level_m column",
                            "map the source's water surface elevation column to water_level_m")
    wl = pd.to_numeric(zones["water_level_m"], errors="coerce").to_numpy(float)
    for i in np.flatnonzero(~np.isfinite(wl)):
        raise dataset_error(SourceDataError, dataset, "flood zone without water level (water_level_m)",
                            "give the zone's water surface elevation in m (same height system as the DTM)",
                            record=ids[i])
    sc = zones["scenario"] if "scenario" in zones else pd.Series([None] * len(zones))
    for i in np.flatnonzero(sc.isna().to_numpy()):
        raise dataset_error(SourceDataError, dataset, "flood zone without scenario",
                            "give the scenario (e.g. HQ100, HQextrem)", record=ids[i])


def flood_depth(zones, dtm, scenario: str, dataset: str = "flood_zones") -> FloodDepth:
    """Water depth raster of ``scenario`` on the DTM's grid.

    Parameters
    ----------
    zones : geopandas.GeoDataFrame
        The staged ``flood_zones`` role (``zone_id, scenario, water_level_m``, polygons).
    dtm : citymodel.raster.Raster
        Terrain heights (same height system as the water levels).
    scenario : str
        E.g. ``"HQ100"``.

    Raises
    ------
    SourceDataError
        A zone without water level or scenario, or no zone of the scenario.
    """
    from rasterio import features

    check_zones(zones, dataset)
    sel = zones[zones["scenario"].astype(str) == scenario]
    if len(sel) == 0:
        raise dataset_error(SourceDataError, dataset, f"no flood zone of scenario '{scenario}'",
                            f"use one of {sorted(zones['scenario'].astype(str).unique())}")
    ground = dtm.masked if dtm.array.ndim == 2 else dtm.masked[0]
    wl = pd.to_numeric(sel["water_level_m"]).to_numpy(float)
    order = np.argsort(wl)  # higher level burnt last
    geoms = np.asarray(sel.geometry.values, dtype=object)
    level = features.rasterize([(geoms[i], float(wl[i])) for i in order], out_shape=ground.shape,
                               transform=dtm.transform, fill=np.nan, dtype="float64")
    depth = level - ground
    depth[~(depth > 0)] = np.nan
    return FloodDepth(scenario, depth, dtm.transform, dtm.crs, sel["zone_id"].astype(str).tolist())


def _footprint_samples(geom, spacing_m: float) -> np.ndarray:
    """Points on the boundary (every ``spacing_m``) and on a grid inside the footprint."""
    pts = []
    for ring in shapely.get_rings(geom):
        n = max(4, int(math.ceil(ring.length / spacing_m)))
        pts.append(shapely.get_coordinates(shapely.line_interpolate_point(ring, np.linspace(0, ring.length, n,
                                                                                             endpoint=False))))
    minx, miny, maxx, maxy = geom.bounds
    xs = np.arange(minx + spacing_m / 2, maxx, spacing_m)
    ys = np.arange(miny + spacing_m / 2, maxy, spacing_m)
    if xs.size and ys.size:
        gx, gy = np.meshgrid(xs, ys)
        inside = shapely.contains_xy(geom, gx.ravel(), gy.ravel())
        pts.append(np.column_stack([gx.ravel()[inside], gy.ravel()[inside]]))
    return np.vstack(pts)


def _sample(depth: FloodDepth, xy: np.ndarray) -> np.ndarray:
    t = depth.transform  # north-up grid (no rotation)
    col = np.floor((xy[:, 0] - t.c) / t.a).astype(np.int64)
    row = np.floor((xy[:, 1] - t.f) / t.e).astype(np.int64)
    rows, cols = depth.depth_m.shape
    ok = (row >= 0) & (row < rows) & (col >= 0) & (col < cols)
    out = np.full(len(xy), np.nan)
    out[ok] = depth.depth_m[row[ok], col[ok]]
    return out


def building_exposure(depth: FloodDepth, buildings, floor_offset_m: float = 0.3,
                      sample_spacing_m: float = 1.0) -> pd.DataFrame:
    """Flood depth at each building for one scenario.

    Returns
    -------
    pandas.DataFrame
        ``building_id, scenario, affected, max_depth_m, mean_depth_m`` (mean over the wet samples;
        NaN when dry), ``wet_fraction`` (share of samples that are wet), ``ground_floor_flooded``,
        ``floor_offset_m``, ``method``.
    """
    ids = buildings["building_id"].astype(str).to_numpy()
    geoms = np.asarray(buildings.geometry.values, dtype=object)
    rows = []
    for bid, g in zip(ids, geoms):  # loop over buildings; vectorised over the samples
        d = _sample(depth, _footprint_samples(g, sample_spacing_m))
        wet = np.isfinite(d)
        mx = float(np.nanmax(d)) if wet.any() else 0.0
        rows.append({"building_id": bid, "scenario": depth.scenario, "affected": bool(wet.any()),
                     "max_depth_m": mx, "mean_depth_m": float(np.nanmean(d)) if wet.any() else float("nan"),
                     "wet_fraction": float(wet.mean()) if d.size else 0.0,
                     "ground_floor_flooded": bool(mx > floor_offset_m), "floor_offset_m": floor_offset_m,
                     "method": METHOD})
    return pd.DataFrame(rows)


def flood_exposure(zones, dtm, buildings, scenarios=None, floor_offset_m: float = 0.3,
                   sample_spacing_m: float = 1.0, dataset: str = "flood_zones"):
    """Depth rasters, building exposure and a summary for every scenario.

    Returns
    -------
    depths : dict[str, FloodDepth]
    per_building : pandas.DataFrame
        :func:`building_exposure` of all scenarios, stacked.
    summary : pandas.DataFrame
        Per scenario: ``buildings_affected, ground_floors_flooded, max_depth_m,
        flooded_area_m2, zones, floor_offset_m, method``.
    """
    check_zones(zones, dataset)
    if scenarios is None:
        scenarios = sorted(zones["scenario"].astype(str).unique())
    depths, per, summ = {}, [], []
    for sc in scenarios:
        d = flood_depth(zones, dtm, sc, dataset)
        depths[sc] = d
        ex = building_exposure(d, buildings, floor_offset_m, sample_spacing_m)
        per.append(ex)
        summ.append({"scenario": sc, "buildings_affected": int(ex["affected"].sum()) if len(ex) else 0,
                     "ground_floors_flooded": int(ex["ground_floor_flooded"].sum()) if len(ex) else 0,
                     "max_depth_m": float(np.nanmax(d.depth_m)) if np.isfinite(d.depth_m).any() else 0.0,
                     "flooded_area_m2": d.flooded_area_m2, "zones": ",".join(d.zones),
                     "floor_offset_m": floor_offset_m, "method": METHOD})
    return depths, pd.concat(per, ignore_index=True) if per else pd.DataFrame(), pd.DataFrame(summ)


def write_depth_raster(path, depth: FloodDepth, crs=None):
    """Write the depth raster (float32, NaN nodata) with method and scenario tags."""
    from ..raster import write_geotiff

    return write_geotiff(path, depth.depth_m.astype(np.float32), transform=depth.transform,
                         crs=crs if crs is not None else depth.crs, nodata=float("nan"),
                         tags={"method": METHOD, "scenario": depth.scenario, "unit": "m",
                               "zones": ",".join(depth.zones)}, band_descriptions=["water_depth_m"])
