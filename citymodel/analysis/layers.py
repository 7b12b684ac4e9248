"""The analysis layers as pure functions over a :class:`~citymodel.citydata.CityArea`.

One seam for the city and its planning variants: the city's tile assets and the variant assets both
build a :class:`CityArea` from their store (:class:`citymodel.store.CityStore`, or a variant's store
that applies its changes) and call the same functions here. They return results in memory; writing
files is the caller's business.

=====================  ===================================================================
function               result
=====================  ===================================================================
:func:`sun_hours`      hours of direct sun on a ground grid over ``area.bounds``, per day
:func:`facade_sun`     hours of direct sun per facade wall and storey, and the DIN EN 17037
                       sunlight level per building
:func:`roof_irradiation`  annual irradiation per roof surface with solar-cadastre classes
:func:`noise`          RLS-19 LrT/LrN grid, isophones, facade levels, per building maxima,
                       residents per level band
:func:`flood`          water depth per scenario and exposure per building
:func:`sightlines`     sight lines between viewpoints and a viewshed per observer
=====================  ===================================================================

The areas: :func:`scene_area` (buildings, trees and terrain a margin around the assessed area, for
the ray-casting layers), :func:`noise_area` (roads within the propagation distance, screening
buildings around them) and :func:`sightline_area` (around the viewpoints).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..citydata import BuildingSet, CityArea, grow, union_bounds

MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


def date_label(date) -> str:
    """A ``datetime.date`` -> ``'mar21'`` (used in column and property names)."""
    return f"{MONTHS[date.month - 1]}{date.day:02d}"


def day_label(day: str) -> str:
    """``'03-21'`` -> ``'mar21'``."""
    m, d = (int(p) for p in day.split("-"))
    return f"{MONTHS[m - 1]}{d:02d}"


# =============================================================================== areas
def scene_area(store, bounds: Sequence[float], *, margin_m: float, terrain_cell_m: float,
               include: Sequence[str] = ()) -> CityArea:
    """Buildings, trees and terrain up to ``margin_m`` beyond ``bounds``: what shades it (and the
    buildings ``include`` names, wherever they are: those assessed)."""
    return store.area(bounds, margin_m=margin_m, terrain_cell_m=terrain_cell_m, include=include)


def noise_area(store, bounds: Sequence[float], *, max_distance_m: float, terrain_cell_m: float,
               building_margin_m: float = 200.0, terrain_margin_m: float = 250.0) -> CityArea:
    """Roads within ``max_distance_m`` of ``bounds``, the buildings that may screen them (those
    within ``building_margin_m`` of the roads and the area) and the terrain under all of it.

    ``area.roads`` is None where no staged road is in range (the noise layer is then empty).
    """
    roads = store.roads(bounds, max_distance_m)
    if roads is None or not len(roads):
        return CityArea(bounds=tuple(bounds), buildings=store.buildings(bounds), roads=None, crs=store.crs,
                        datasets=store.datasets)
    rb = roads.total_bounds
    outer = union_bounds(bounds, rb)
    return CityArea(bounds=tuple(float(v) for v in bounds), buildings=store.buildings(grow(outer, building_margin_m)),
                    terrain=store.terrain(grow(outer, terrain_margin_m), terrain_cell_m), roads=roads,
                    crs=store.crs, datasets=store.datasets)


def sightline_area(store, viewpoints, *, radius_m: float, margin_m: float, terrain_cell_m: float) -> CityArea:
    """Everything within ``radius_m + margin_m`` of the viewpoints (None without viewpoints)."""
    x, y = viewpoints.geometry.x.to_numpy(), viewpoints.geometry.y.to_numpy()
    bounds = grow((x.min(), y.min(), x.max(), y.max()), radius_m + margin_m)
    return CityArea(bounds=bounds, buildings=store.buildings(bounds),
                    terrain=store.terrain(bounds, terrain_cell_m), trees=store.trees(bounds),
                    viewpoints=viewpoints, crs=store.crs, datasets=store.datasets)


# =============================================================================== scene
@dataclass(frozen=True)
class SceneParameters:
    """How an area becomes a ray-casting scene."""

    crown_transmissivity: float = 0.0
    terrain_step_m: float = 2.0
    terrain_far_step_m: float | None = None  # None: Scene.build's default


def build_scene(area: CityArea, params: SceneParameters = SceneParameters()):
    """The embree scene of an area's buildings, tree crowns and terrain. Close it when done."""
    from .scene import Scene, TerrainModel

    kw = {} if params.terrain_far_step_m is None else {"terrain_far_step_m": params.terrain_far_step_m}
    return Scene.build(area.buildings.solids(), area.trees, TerrainModel.from_raster(area.terrain),
                       crown_transmissivity=params.crown_transmissivity, terrain_step_m=params.terrain_step_m, **kw)


# =============================================================================== sun
def sun_hours(area: CityArea, sun, cell_m: float, *, scene=None, params: SceneParameters = SceneParameters()):
    """Hours of direct sun on the ground of ``area.bounds`` per day of ``sun``
    (:class:`citymodel.analysis.shadow.SunHoursGrid`; cells under a roof are NaN)."""
    from .shadow import sun_hours_ground

    own = scene is None
    scene = build_scene(area, params) if own else scene
    try:
        return sun_hours_ground(scene, sun, area.bounds, cell_m)
    finally:
        if own:
            scene.close()


@dataclass(frozen=True)
class FacadeSunParameters:
    storey_height_m: float = 3.0
    spacing_m: float | None = None
    din17037_date: tuple[int, int] = (3, 21)
    din17037_step_min: float = 5.0
    din17037_min_elevation_deg: float = 0.0
    year: int = 2025
    timezone: str = "Europe/Berlin"


@dataclass
class FacadeSun:
    """Facade sun hours (``walls``: per building, wall and storey, at the mean position of its points,
    columns ``sun_h_mean_<day>``, ``sun_h_max_<day>``), the DIN EN 17037 level per building (``din``)
    and the number of facade points."""

    walls: pd.DataFrame
    din: pd.DataFrame
    points: int


def facade_sun(area: CityArea, sun, building_ids: Sequence[str], params: FacadeSunParameters, *,
               scene=None, scene_params: SceneParameters = SceneParameters()) -> FacadeSun:
    """Hours of direct sun on the facades of ``building_ids`` per day of ``sun``, and their DIN EN
    17037 sunlight exposure, with everything in ``area`` shading."""
    from .shadow import din17037_sunlight, facade_points, facade_sun_hours

    assessed = area.buildings.select(building_ids)
    own = scene is None
    scene = build_scene(area, scene_params) if own else scene
    try:
        pts = facade_points(assessed.solids(), storey_height_m=params.storey_height_m, spacing_m=params.spacing_m,
                            ground_z=assessed.ground_heights())
        pt_table, walls = facade_sun_hours(scene, sun, pts)
        din = din17037_sunlight(scene, pts, sun.latitude, sun.longitude, sun.convergence_deg, params.din17037_date,
                                year=params.year, step_min=params.din17037_step_min, tz=params.timezone,
                                min_elevation_deg=params.din17037_min_elevation_deg)
    finally:
        if own:
            scene.close()
    if len(pt_table):
        pos = pt_table.groupby(["building_id", "surface_index", "storey"], sort=True)[["x", "y", "z"]].mean()
        walls = walls.merge(pos.reset_index(), on=["building_id", "surface_index", "storey"], how="left")
    else:
        walls = walls.assign(x=[], y=[], z=[])
    labels = [date_label(dd) for dd in sun.dates]  # band order = sorted dates
    walls = walls.rename(columns={f"sun_h_{k}_{dd.isoformat()}": f"sun_h_{k}_{lab}"
                                  for k in ("mean", "max") for dd, lab in zip(sun.dates, labels)})
    return FacadeSun(walls, din, len(pts))


# =============================================================================== solar
@dataclass(frozen=True)
class SolarParameters:
    spacing_m: float = 1.0
    model: str = "isotropic"
    albedo: float = 0.2
    sun_bin_deg: float = 3.0
    min_area_m2: float = 10.0


def roof_irradiation(area: CityArea, sky, building_ids: Sequence[str], params: SolarParameters, *,
                     scene=None, scene_params: SceneParameters = SceneParameters()):
    """Annual irradiation per roof surface of ``building_ids`` (GeoDataFrame; ``.attrs`` holds the
    method and parameters) with everything in ``area`` shading."""
    from .solar import roof_irradiation as _roofs

    assessed = area.buildings.select(building_ids)
    own = scene is None
    scene = build_scene(area, scene_params) if own else scene
    try:
        return _roofs(scene, assessed.solids(), sky, spacing_m=params.spacing_m, model=params.model,
                      albedo=params.albedo, sun_bin_deg=params.sun_bin_deg, min_area_m2=params.min_area_m2,
                      crs=area.crs)
    finally:
        if own:
            scene.close()


# =============================================================================== noise
@dataclass(frozen=True)
class NoiseLayerParameters:
    """The settings of ``analysis.noise`` that the layer reads (see the README)."""

    grid_spacing_m: float = 10.0
    grid_height_m: float = 4.0
    max_distance_m: float = 2000.0
    building_height: str = "mean"
    road_type: str = "gemeindestrasse"
    isophone_step_db: float = 5.0
    isophone_lower_db: float = 45.0
    storey_height_m: float = 3.0
    reflection_order: int = 1
    reflection_distance_m: float = 100.0
    facade_type: str = "facade"

    def propagation(self):
        from .noise import NoiseParameters
        from .rls19 import REFLECTION_LOSS_DB

        return NoiseParameters(grid_spacing_m=self.grid_spacing_m, grid_height_m=self.grid_height_m,
                               max_distance_m=self.max_distance_m, reflection_order=self.reflection_order,
                               reflection_distance_m=self.reflection_distance_m,
                               reflection_loss_db=REFLECTION_LOSS_DB[self.facade_type])


@dataclass
class NoiseResult:
    """RLS-19 noise of an area: the grid, isophones, facade receivers' levels, the highest facade
    level per building, residents per band; plus the inputs that made them (emissions, screens)."""

    grid: Any
    isophones: Any
    facades: pd.DataFrame
    per_building: pd.DataFrame
    exposure: pd.DataFrame
    roads: Any
    emissions: Any
    screens: Any
    assessed: Any
    without_height: list[str] = field(default_factory=list)


def noise_inputs(area: CityArea, params: NoiseLayerParameters, building_ids: Sequence[str] | None = None):
    """Emissions, screening blocks and the assessed buildings' blocks of an area (the parts of
    :func:`noise` that a traffic change reuses). ``None`` where the area has no roads."""
    from .rls19 import road_emissions

    if area.roads is None or not len(area.roads):
        return None
    emissions = road_emissions(area.roads, area.dataset("roads"), road_type=params.road_type)
    blocks = area.buildings.screening_blocks(params.building_height)
    ids = set(area.buildings.ids if building_ids is None else (str(i) for i in building_ids))
    assessed = blocks[blocks["building_id"].astype(str).isin(ids)].reset_index(drop=True) if len(blocks) else blocks
    return emissions, blocks, assessed


def facade_receivers_of(assessed, area: CityArea, params: NoiseLayerParameters):
    from .noise import facade_receivers

    return facade_receivers(assessed, storey_height_m=params.storey_height_m, dtm=area.terrain)


def noise(area: CityArea, params: NoiseLayerParameters, building_ids: Sequence[str] | None = None) -> NoiseResult | None:
    """RLS-19 road traffic noise on a grid over ``area.bounds`` and at the facades of ``building_ids``
    (default: every building of the area); None where no road is in range."""
    import geopandas as gpd

    from .noise import building_max_levels, exposure_by_band, facade_levels, isophones, noise_grid

    got = noise_inputs(area, params, building_ids)
    if got is None:
        return None
    emissions, blocks, assessed = got
    prop = params.propagation()
    grid = noise_grid(emissions, area.bounds, blocks, area.terrain, prop)
    iso = pd.concat([isophones(grid.lrt_db, grid.transform, params.isophone_lower_db, step_db=params.isophone_step_db,
                               crs=area.crs, indicator="LrT"),
                     isophones(grid.lrn_db, grid.transform, params.isophone_lower_db - 10.0,
                               step_db=params.isophone_step_db, crs=area.crs, indicator="LrN")],
                    ignore_index=True)
    iso = gpd.GeoDataFrame(iso, geometry="geometry", crs=area.crs)
    rec = facade_receivers_of(assessed, area, params)
    fac = facade_levels(emissions, rec, blocks, area.terrain, prop) if len(rec) else \
        rec.assign(lrt_db=[], lrn_db=[], method=[])
    fac = fac.assign(lrt_db=fac["lrt_db"].astype(float), lrn_db=fac["lrn_db"].astype(float))
    per_b = building_max_levels(fac) if len(fac) else pd.DataFrame(
        columns=["building_id", "lrt_max_db", "lrn_max_db", "method"])
    expo = exposure_by_band(per_b, assessed)
    return NoiseResult(grid, iso, fac, per_b, expo, area.roads, emissions, blocks, assessed,
                       list(blocks.attrs.get("without_height", [])))


# =============================================================================== flood
@dataclass(frozen=True)
class FloodParameters:
    floor_offset_m: float = 0.3
    sample_spacing_m: float = 1.0
    scenarios: tuple[str, ...] | None = None


def flood(zones, terrain, buildings: BuildingSet, params: FloodParameters, dataset: str = "flood_zones",
          building_height: str = "mean"):
    """Water depth per scenario on ``terrain`` (a DTM :class:`~citymodel.raster.Raster`) and the
    exposure of ``buildings`` (those with a height and a ground height):
    ``(depths, per_building, summary)`` of :func:`citymodel.analysis.flood.flood_exposure`."""
    from .flood import flood_exposure

    blocks = buildings.screening_blocks(building_height)
    return flood_exposure(zones, terrain, blocks, scenarios=list(params.scenarios) if params.scenarios else None,
                          floor_offset_m=params.floor_offset_m, sample_spacing_m=params.sample_spacing_m,
                          dataset=dataset)


# =============================================================================== sight lines
@dataclass(frozen=True)
class SightlineParameters:
    viewshed_radius_m: float = 300.0
    viewshed_cell_m: float = 1.0
    target_height_m: float = 1.5
    target_tolerance_m: float = 0.5
    crowns_block: bool = True


@dataclass
class SightlineResult:
    """Sight lines (GeoDataFrame, 3D line per observer–target pair, ``blocked_by_buildings`` as a
    JSON list) and one viewshed per observer (``viewpoint_id -> Viewshed``)."""

    lines: Any
    viewsheds: dict
    attrs: dict


def sightlines(area: CityArea, params: SightlineParameters, *,
               scene_params: SceneParameters = SceneParameters()) -> SightlineResult:
    """Sight lines between the area's viewpoints and a viewshed per observer, over everything in it."""
    import geopandas as gpd
    from shapely.geometry import LineString

    from .sightlines import sight_lines_from_viewpoints, viewshed

    vp = area.viewpoints
    observers = vp[vp["kind"].astype(str) == "observer"]
    scene = build_scene(area, scene_params)
    try:
        lines = sight_lines_from_viewpoints(scene, vp, target_tolerance_m=params.target_tolerance_m,
                                            crowns_block=params.crowns_block)
        attrs = dict(lines.attrs)
        lines.attrs = {}
        by_id = {str(r.viewpoint_id): r for r in vp.itertuples()}
        gz = scene.terrain.height
        geoms = []
        for r in lines.itertuples():
            o, tg = by_id[r.observer_id], by_id[r.target_id]
            z0 = float(gz(np.array([o.geometry.x]), np.array([o.geometry.y]))[0]) + float(o.eye_height_m)
            z1 = float(gz(np.array([tg.geometry.x]), np.array([tg.geometry.y]))[0]) + float(tg.eye_height_m)
            geoms.append(LineString([(o.geometry.x, o.geometry.y, z0), (tg.geometry.x, tg.geometry.y, z1)]))
        lines["blocked_by_buildings"] = lines["blocked_by_buildings"].map(lambda v: json.dumps(list(v)))
        lines["n_blocking_buildings"] = lines["blocked_by_buildings"].map(lambda v: len(json.loads(v)))
        frame = gpd.GeoDataFrame(lines, geometry=geoms, crs=area.crs)
        sheds = {}
        for o in observers.itertuples():
            eh = float(o.eye_height_m) if o.eye_height_m is not None and np.isfinite(o.eye_height_m) else 1.6
            sheds[str(o.viewpoint_id)] = viewshed(
                scene, (o.geometry.x, o.geometry.y), eye_height_m=eh, radius_m=params.viewshed_radius_m,
                cell_m=params.viewshed_cell_m, target_height_m=params.target_height_m,
                target_tolerance_m=params.target_tolerance_m, crowns_block=params.crowns_block)
    finally:
        scene.close()
    return SightlineResult(frame, sheds, attrs)
