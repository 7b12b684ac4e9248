"""Stage ``analysis``: sun hours, solar irradiation, sight lines, noise, flood and traffic change.

Thin assets over :mod:`citymodel.analysis`: each resolves its inputs (the reconstructed buildings
of the tile and its neighbours, trees, the staged DTM tiles, roads, flood zones, viewpoints), calls
the core, writes its outputs atomically below ``<output_dir>/analysis/<layer>/`` and reports
counts, timings, method and parameters, a picture, and asset checks.

Tile-shaped layers are partitioned by tile and computed on ``tile ∩ extent``; buildings, trees and
terrain up to ``analysis.scene_margin_m`` beyond it take part in shading and screening (the
neighbour tiles' buildings are read from their CityJSONSeq). ``analysis/building_values`` gathers the
tiles into one row per building, the values the 3D Tiles and the open datasets carry.

Flood is per tile: its depth raster lives on the tile's DTM (a LiDAR update of one tile recomputes
only that tile), and the city-wide summary is the sum of the tiles' summaries (``building_values``
and the release add them up). Traffic change is per tile too: it is a noise computation on the same
receivers as ``analysis/noise`` and costs as much; only the changed roads are propagated twice.
"""


import json
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
from dagster import AssetExecutionContext

from citymodel.config import Settings
from citymodel.errors import ConfigError, SourceDataError, dataset_error
from pipelines.partitions import TILES
from resources.settings import SettingsResource

from .buildings import LOD2_TILE_KEY, load_building_table, load_tile_buildings, tile_outputs
from .common import new_figure, png_markdown, timer, write_json_atomic
from .staging import DTM_KEY, _write_geoparquet, point_cloud_paths

ANALYSIS_CODE_VERSION = "1"
GROUP = "analysis"

SUN_HOURS_KEY = dg.AssetKey(["analysis", "sun_hours"])
SOLAR_KEY = dg.AssetKey(["analysis", "solar"])
SIGHTLINES_KEY = dg.AssetKey(["analysis", "sightlines"])
NOISE_KEY = dg.AssetKey(["analysis", "noise"])
FLOOD_KEY = dg.AssetKey(["analysis", "flood"])
TRAFFIC_CHANGE_KEY = dg.AssetKey(["analysis", "traffic_change"])
BUILDING_VALUES_KEY = dg.AssetKey(["analysis", "building_values"])

#: tag of the tile assets that read the neighbour tiles' buildings (shading, screening): a refresh must
#: build every tile's buildings before it runs them, and a tile's new buildings make its neighbours stale
NEIGHBOUR_TAG = {"citymodel/reads_neighbour_tiles": "true"}
_STAGED = {role: dg.AssetKey(["staging", role]) for role in ("trees", "roads", "flood_zones", "viewpoints")}
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
#: suitability classes of the solar layer, best first (``solar_class_best`` is the best one present)
SOLAR_CLASS_ORDER = ("very suitable", "suitable", "less suitable", "too small")


# =============================================================================== paths, inputs
def analysis_dir(settings: Settings, layer: str | None = None) -> Path:
    """``<output_dir>/analysis`` or one layer's folder in it."""
    d = settings.output_dir / "analysis"
    return d / layer if layer else d


def tile_files(settings: Settings, layer: str, tile_id: str) -> dict[str, Path]:
    """The files one tile of a layer writes (stable names; the release reads them)."""
    d = analysis_dir(settings, layer)
    names = {
        "sun_hours": {"raster": f"{tile_id}.tif", "facades": f"{tile_id}_facades.parquet",
                      "din17037": f"{tile_id}_din17037.parquet"},
        "solar": {"roofs": f"{tile_id}.parquet", "roofs_gpkg": f"{tile_id}.gpkg"},
        "noise": {"raster": f"{tile_id}.tif", "isophones": f"{tile_id}_isophones.gpkg",
                  "facades": f"{tile_id}_facades.parquet", "buildings": f"{tile_id}_buildings.parquet",
                  "exposure": f"{tile_id}_exposure.csv"},
        "flood": {"buildings": f"{tile_id}_buildings.parquet", "summary": f"{tile_id}_summary.csv"},
        "traffic_change": {"raster": f"{tile_id}.tif", "buildings": f"{tile_id}_buildings.parquet",
                           "summary": f"{tile_id}_summary.json"},
    }[layer]
    return {k: d / v for k, v in names.items()}


def flood_raster_path(settings: Settings, tile_id: str, scenario: str) -> Path:
    return analysis_dir(settings, "flood") / f"{tile_id}_{scenario}.tif"


def building_values_path(settings: Settings) -> Path:
    return analysis_dir(settings) / "building_values.parquet"


def analysis_bounds(settings: Settings, tile_id: str) -> tuple[float, float, float, float] | None:
    """``tile ∩ extent`` (None where they do not overlap)."""
    t = settings.tile(tile_id).bounds
    e = settings.extent
    b = (max(t[0], e[0]), max(t[1], e[1]), min(t[2], e[2]), min(t[3], e[3]))
    return b if b[2] > b[0] and b[3] > b[1] else None


def _grow(bounds, margin: float) -> tuple[float, float, float, float]:
    return (bounds[0] - margin, bounds[1] - margin, bounds[2] + margin, bounds[3] + margin)


def _overlaps(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def neighbour_tiles(settings: Settings, tile_id: str, margin_m: float) -> list[str]:
    """The configured tiles within ``margin_m`` of a tile (the tile itself included)."""
    own = _grow(settings.tile(tile_id).bounds, margin_m)
    return [t.id for t in settings.tiles if _overlaps(t.bounds, own)]


def day_label(day: str) -> str:
    """``'03-21'`` -> ``'mar21'`` (used in column and property names)."""
    m, d = (int(p) for p in day.split("-"))
    return f"{_MONTHS[m - 1]}{d:02d}"


def date_label(date) -> str:
    """A ``datetime.date`` -> ``'mar21'``."""
    return f"{_MONTHS[date.month - 1]}{date.day:02d}"


def _month_day(day: str) -> tuple[int, int]:
    m, d = (int(p) for p in day.split("-"))
    return m, d


def terrain_raster(settings: Settings, bounds, cell_m: float):
    """The staged DTM tiles resampled (nearest cell) onto one grid over ``bounds``.

    Cells no DTM covers take the nearest covered cell's height (the terrain beyond the LiDAR is
    extended flat); ``raster.tags['filled_share']`` says how much. A :class:`citymodel.raster.Raster`.

    Raises
    ------
    SourceDataError
        No staged DTM covers any part of ``bounds`` (dataset ``dtm``).
    """
    from affine import Affine
    from scipy.ndimage import distance_transform_edt

    from citymodel.dtm import DtmMosaic
    from citymodel.raster import Raster

    paths = [p for t in settings.tile_ids if (p := point_cloud_paths(settings, t)[1]).exists()]
    x0 = np.floor(bounds[0] / cell_m) * cell_m
    y1 = np.ceil(bounds[3] / cell_m) * cell_m
    cols = max(2, int(np.ceil((bounds[2] - x0) / cell_m)))
    rows = max(2, int(np.ceil((y1 - bounds[1]) / cell_m)))
    xs = x0 + (np.arange(cols) + 0.5) * cell_m
    ys = y1 - (np.arange(rows) + 0.5) * cell_m
    X, Y = np.meshgrid(xs, ys)
    z = DtmMosaic(paths)(X.ravel(), Y.ravel()).reshape(rows, cols) if paths else np.full((rows, cols), np.nan)
    bad = ~np.isfinite(z)
    if bad.all():
        raise dataset_error(SourceDataError, "dtm", f"no staged DTM covers {tuple(round(v) for v in bounds)}",
                            "materialize staging/dtm for the tiles of the extent (sources.lidar must cover them)")
    if bad.any():
        idx = distance_transform_edt(bad, return_distances=False, return_indices=True)
        z = z[tuple(idx)]
    return Raster(z, Affine(cell_m, 0.0, x0, 0.0, -cell_m, y1), None, None,
                  tags={"filled_share": f"{bad.mean():.4f}"})


def _lod_rank(key: str) -> float:
    try:
        return float(key)
    except ValueError:
        return -1.0


def building_solids(buildings) -> dict[str, list]:
    """Building id -> its solids (highest LoD of the building and of each part)."""
    out: dict[str, list] = {}
    for b in buildings:
        solids = []
        for obj in [b, *b.parts]:
            if obj.solids:
                solids.append(obj.solids[max(obj.solids, key=_lod_rank)])
        if solids:
            out[str(b.id)] = solids
    return out


def _solids_bounds(solids) -> tuple[float, float, float, float]:
    b = np.array([s.bounds for s in solids])
    return (b[:, 0].min(), b[:, 1].min(), b[:, 3].max(), b[:, 4].max())


def _staged(settings: Settings, role: str):
    """The staged GeoParquet of a role, or None where the role is not staged."""
    import geopandas as gpd

    p = settings.staging_dir / f"{role}.parquet"
    return gpd.read_parquet(p) if p.exists() else None


def _dataset_name(settings: Settings, role: str) -> str:
    src = settings.source(role)
    return src.dataset if src is not None else role


def _clip_points(frame, bounds):
    if frame is None or not len(frame):
        return frame
    x, y = frame.geometry.x.to_numpy(), frame.geometry.y.to_numpy()
    return frame[(x >= bounds[0]) & (x <= bounds[2]) & (y >= bounds[1]) & (y <= bounds[3])]


class SceneInputs:
    """Buildings (own and neighbours'), trees and terrain around one tile, and the built scene."""

    def __init__(self, settings: Settings, tile_id: str):
        from citymodel.analysis.scene import Scene, TerrainModel

        a = settings.analysis
        self.bounds = analysis_bounds(settings, tile_id)
        self.scene_bounds = _grow(self.bounds, a.scene_margin_m)
        own = building_solids(load_tile_buildings(settings, [tile_id]))
        others = building_solids(load_tile_buildings(
            settings, [t for t in neighbour_tiles(settings, tile_id, a.scene_margin_m) if t != tile_id]))
        near = {k: v for k, v in others.items() if k not in own and _overlaps(_solids_bounds(v), self.scene_bounds)}
        self.own = own
        self.buildings = {**own, **near}
        self.trees = _clip_points(_staged(settings, "trees"), self.scene_bounds)
        self.terrain_raster = terrain_raster(settings, self.scene_bounds, a.terrain_cell_m)
        self.terrain = TerrainModel.from_raster(self.terrain_raster)
        self.scene = Scene.build(self.buildings, self.trees, self.terrain,
                                 crown_transmissivity=a.crown_transmissivity,
                                 terrain_step_m=a.terrain_cell_m, terrain_far_step_m=4 * a.terrain_cell_m)

    def counts(self) -> dict[str, int]:
        return {"buildings_assessed": len(self.own), "buildings_in_scene": len(self.buildings),
                "trees_in_scene": 0 if self.trees is None else len(self.trees)}


def _ground_heights(settings: Settings, tile_id: str) -> dict[str, float]:
    import geopandas as gpd

    p = tile_outputs(settings, tile_id)[1]
    if not p.exists():
        return {}
    t = gpd.read_parquet(p)
    if "ground_height_m" not in t or not len(t):
        return {}
    g = pd.to_numeric(t["ground_height_m"], errors="coerce")
    return {str(b): float(v) for b, v in zip(t["building_id"], g) if np.isfinite(v)}


def _sun_path(settings: Settings, days: list[str], step_min: float):
    from citymodel.analysis.sun import sun_path

    return sun_path(settings.extent, settings.processing_crs, dates=[_month_day(d) for d in days],
                    step_min=step_min, tz=settings.timezone, year=settings.analysis.year)


def _json_meta(d: dict) -> dg.MetadataValue:
    return dg.MetadataValue.json(json.loads(json.dumps(d, default=_jsonable)))


def _jsonable(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, np.ndarray):
        return v.tolist()
    return str(v)


def _raster_plot(arr, bounds, title: str, label: str, cmap: str = "viridis", vmin=None, vmax=None):
    fig, ax = new_figure(4, 3.6)
    im = ax.imshow(np.ma.masked_invalid(arr), extent=(bounds[0], bounds[2], bounds[1], bounds[3]),
                   cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    fig.colorbar(im, ax=ax, shrink=0.8, label=label)
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=6)
    return png_markdown(fig)


def _points_frame(table: pd.DataFrame, crs: str, x="x", y="y"):
    import geopandas as gpd

    return gpd.GeoDataFrame(table, geometry=gpd.points_from_xy(table[x], table[y]), crs=crs)


def _write_table(frame, path: Path, gpkg: Path | None = None, layer: str | None = None) -> None:
    """GeoParquet (and GeoPackage) atomically; list/dict columns JSON-encoded for the GeoPackage."""
    from citymodel.release import write_geopackage

    _write_geoparquet(frame, path)
    if gpkg is not None:
        out = frame.copy()
        for c in out.columns:
            if c != out.geometry.name and out[c].dtype == object and \
                    out[c].map(lambda v: isinstance(v, (list, dict, tuple, np.ndarray))).any():
                out[c] = out[c].map(lambda v: json.dumps(list(v) if isinstance(v, (tuple, np.ndarray)) else v))
        write_geopackage(out, gpkg, layer=layer)


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    frame.to_csv(tmp, index=False)
    tmp.replace(path)


def _empty_tile(key, note: str, checks: list[str]) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"note": note}, check_results=[
        dg.AssetCheckResult(asset_key=key, check_name=c, passed=True, metadata={"skipped": note}) for c in checks])


# ================================================================================= sun hours
def _sun_checks():
    return [dg.AssetCheckSpec("hours_within_day_length", asset=SUN_HOURS_KEY, blocking=True,
                              description="every ground and facade value lies in [0, hours of sun above the "
                                          "horizon that day]")]


@dg.asset(key=SUN_HOURS_KEY, tags=NEIGHBOUR_TAG, deps=[LOD2_TILE_KEY, DTM_KEY, _STAGED["trees"]], partitions_def=TILES,
          group_name=GROUP, code_version=ANALYSIS_CODE_VERSION, check_specs=_sun_checks(),
          kinds={"geotiff", "geoparquet"},
          description="Hours of direct sun on the ground (GeoTIFF, one band per configured day) and per "
                      "facade wall and storey, with the DIN EN 17037 sunlight level per building; shading "
                      "by buildings, tree crowns and terrain (embree ray casting, pvlib NREL SPA).")
def sun_hours(context: AssetExecutionContext, settings: SettingsResource) -> dg.MaterializeResult:
    from citymodel.analysis.shadow import (din17037_sunlight, facade_points, facade_sun_hours,
                                           sun_hours_ground, write_sun_hours_geotiff)

    s = settings.load()
    a = s.analysis
    tile_id = context.partition_key
    files = tile_files(s, "sun_hours", tile_id)
    if analysis_bounds(s, tile_id) is None:
        return _empty_tile(SUN_HOURS_KEY, "tile outside the extent", ["hours_within_day_length"])
    with timer() as t:
        inp = SceneInputs(s, tile_id)
        sun = _sun_path(s, a.sun.days, a.sun.time_step_min)
        grid = sun_hours_ground(inp.scene, sun, inp.bounds, a.sun.cell_m)
        write_sun_hours_geotiff(files["raster"], grid, s.processing_crs)
        pts = facade_points(inp.own, storey_height_m=a.storey_height_m, spacing_m=a.sun.facade_spacing_m,
                            ground_z=_ground_heights(s, tile_id))
        pt_table, walls = facade_sun_hours(inp.scene, sun, pts)
        m, d = _month_day(a.sun.din17037_date)
        din = din17037_sunlight(inp.scene, pts, sun.latitude, sun.longitude, sun.convergence_deg, (m, d),
                                year=a.year, step_min=a.sun.din17037_step_min, tz=s.timezone,
                                min_elevation_deg=a.sun.din17037_min_elevation_deg)
        # per wall and storey, at the mean position of its points
        if len(pt_table):
            pos = pt_table.groupby(["building_id", "surface_index", "storey"], sort=True)[["x", "y", "z"]].mean()
            walls = walls.merge(pos.reset_index(), on=["building_id", "surface_index", "storey"], how="left")
        else:
            walls = walls.assign(x=[], y=[], z=[])
        labels = [date_label(dd) for dd in sun.dates]  # band order = sorted dates
        walls = walls.rename(columns={f"sun_h_{k}_{dd.isoformat()}": f"sun_h_{k}_{lab}"
                                      for k in ("mean", "max") for dd, lab in zip(sun.dates, labels)})
        _write_table(_points_frame(walls, s.processing_crs), files["facades"])
        _write_table(_points_frame(din, s.processing_crs), files["din17037"])
        inp.scene.close()
    # checks and metadata
    day_len = {lab: float(sun.above_horizon[sun.day_mask(dd)].sum() * sun.step_h)
               for dd, lab in zip(sun.dates, labels)}
    worst = []
    for k, lab in enumerate(labels):
        g = grid.hours[k][np.isfinite(grid.hours[k])]
        f = walls[f"sun_h_max_{lab}"].to_numpy(float) if len(walls) else np.zeros(0)
        vals = np.concatenate([g, f])
        if len(vals):
            worst.append({"day": lab, "min_h": float(vals.min()), "max_h": float(vals.max()),
                          "day_length_h": day_len[lab]})
    ok = all(w["min_h"] >= -1e-6 and w["max_h"] <= w["day_length_h"] + 1e-6 for w in worst)
    june = next((k for k, dd in enumerate(sun.dates) if dd.month == 6), 0)
    means = {lab: round(float(np.nanmean(grid.hours[k])), 3) if np.isfinite(grid.hours[k]).any()
             else None for k, lab in enumerate(labels)}
    levels = din["level"].value_counts().to_dict() if len(din) else {}
    method = {k: v for k, v in grid.metadata.items() if k not in ("seconds",)}
    meta = {
        **inp.counts(), "seconds": t["seconds"], "cells": int(grid.hours[0].size),
        "cells_under_roof": int(grid.metadata.get("cells_under_roof", 0)), "facade_points": len(pts),
        "walls_storeys": len(walls), "mean_hours": _json_meta(means), "day_length_h": _json_meta(day_len),
        "din17037_levels": _json_meta(levels),
        "method": "ray casting (embree) towards the sun per time step; DIN EN 17037 sunlight exposure "
                  "(best facade point per building)",
        "parameters": _json_meta({**method, "din17037_date": a.sun.din17037_date,
                                  "din17037_step_min": a.sun.din17037_step_min,
                                  "storey_height_m": a.storey_height_m, "scene_margin_m": a.scene_margin_m,
                                  "terrain_filled_share": inp.terrain_raster.tags.get("filled_share")}),
        "raster": dg.MetadataValue.path(str(files["raster"])),
        "thumbnail": _raster_plot(grid.hours[june], grid.bounds,
                                  f"tile {tile_id}: sun hours {sun.dates[june].isoformat()}", "h", "inferno", 0,
                                  max(day_len.values()) if day_len else None),
    }
    return dg.MaterializeResult(metadata=meta, check_results=[
        dg.AssetCheckResult(asset_key=SUN_HOURS_KEY, check_name="hours_within_day_length", passed=bool(ok),
                            metadata={"per_day": _json_meta({"days": worst})})])


# ===================================================================================== solar
def _solar_checks():
    return [dg.AssetCheckSpec("shaded_not_above_unshaded", asset=SOLAR_KEY, blocking=True,
                              description="no roof surface receives more than the same plane unshaded"),
            dg.AssetCheckSpec("every_roof_assessed", asset=SOLAR_KEY, blocking=False,
                              description="every reconstructed building of the tile has roof surfaces")]


@dg.asset(key=SOLAR_KEY, tags=NEIGHBOUR_TAG, deps=[LOD2_TILE_KEY, DTM_KEY, _STAGED["trees"]], partitions_def=TILES,
          group_name=GROUP, code_version=ANALYSIS_CODE_VERSION, check_specs=_solar_checks(),
          kinds={"geoparquet", "gpkg"},
          description="Annual irradiation per roof surface (kWh/m²·a, clear-sky year, shading by ray "
                      "casting and a sky-view factor) with solar-cadastre suitability classes.")
def solar(context: AssetExecutionContext, settings: SettingsResource) -> dg.MaterializeResult:
    from citymodel.analysis.solar import clear_sky_year, roof_irradiation
    from citymodel.analysis.sun import grid_convergence_deg, site_location

    s = settings.load()
    a = s.analysis
    tile_id = context.partition_key
    files = tile_files(s, "solar", tile_id)
    if analysis_bounds(s, tile_id) is None:
        return _empty_tile(SOLAR_KEY, "tile outside the extent", ["shaded_not_above_unshaded", "every_roof_assessed"])
    with timer() as t:
        inp = SceneInputs(s, tile_id)
        lat, lon = site_location(s.extent, s.processing_crs)
        sky = clear_sky_year(lat, lon, grid_convergence_deg(lat, lon, s.processing_crs), year=a.year,
                             tz=s.timezone)
        roofs = roof_irradiation(inp.scene, inp.own, sky, spacing_m=a.solar.spacing_m, model=a.solar.model,
                                 albedo=a.solar.albedo, sun_bin_deg=a.solar.sun_bin_deg,
                                 min_area_m2=a.solar.min_area_m2, crs=s.processing_crs)
        attrs = dict(roofs.attrs)
        roofs.attrs = {}
        roofs["tile_id"] = tile_id
        _write_table(roofs, files["roofs"], files["roofs_gpkg"], layer="roof_irradiation")
        inp.scene.close()
    over = roofs[roofs["irradiation_kwh_m2a"] > roofs["unshaded_kwh_m2a"] * (1 + 1e-6) + 1e-6]
    missing = sorted(set(inp.own) - set(roofs["building_id"]))
    by_class = roofs.groupby("suitability")["area_m2"].sum().round(1).to_dict() if len(roofs) else {}
    meta = {**inp.counts(), "seconds": t["seconds"], "roof_surfaces": len(roofs),
            "roof_area_m2": round(float(roofs["area_m2"].sum()), 1),
            "total_kwh_a": round(float(roofs["irradiation_kwh_a"].sum()), 0),
            "mean_kwh_m2a": round(float(np.average(roofs["irradiation_kwh_m2a"], weights=roofs["area_m2"])), 1)
            if len(roofs) and roofs["area_m2"].sum() > 0 else None,
            "area_by_class_m2": _json_meta(by_class),
            "method": attrs.get("method", ""), "parameters": _json_meta(attrs),
            "table": dg.MetadataValue.path(str(files["roofs"]))}
    if len(roofs):
        fig, ax = new_figure(4, 2.6)
        ax.hist(roofs["irradiation_kwh_m2a"], bins=30, weights=roofs["area_m2"])
        ax.set_xlabel("kWh/m²·a")
        ax.set_ylabel("roof area (m²)")
        ax.set_title(f"tile {tile_id}: {len(roofs)} roof surfaces", fontsize=9)
        meta["histogram"] = png_markdown(fig)
    return dg.MaterializeResult(metadata=meta, check_results=[
        dg.AssetCheckResult(asset_key=SOLAR_KEY, check_name="shaded_not_above_unshaded", passed=len(over) == 0,
                            metadata={"surfaces_above": len(over)}),
        dg.AssetCheckResult(asset_key=SOLAR_KEY, check_name="every_roof_assessed", passed=not missing,
                            severity=dg.AssetCheckSeverity.WARN,
                            metadata={"without_roof": dg.MetadataValue.json(missing[:50])})])


# ================================================================================ sight lines
def _sightline_checks():
    return [dg.AssetCheckSpec("every_observer_assessed", asset=SIGHTLINES_KEY, blocking=False,
                              description="every observer has its sight line and a viewshed")]


@dg.asset(key=SIGHTLINES_KEY, deps=[dg.AssetKey(["buildings", "model"]), DTM_KEY, _STAGED["viewpoints"],
                                    _STAGED["trees"]],
          group_name=GROUP, code_version=ANALYSIS_CODE_VERSION, check_specs=_sightline_checks(),
          automation_condition=dg.AutomationCondition.eager(), kinds={"geoparquet", "gpkg", "geotiff"},
          description="Sight lines from the observers to their targets (visible, blocked, the buildings in "
                      "the way) and a viewshed GeoTIFF per observer.")
def sightlines(context: AssetExecutionContext, settings: SettingsResource) -> dg.MaterializeResult:
    import geopandas as gpd
    from shapely.geometry import LineString

    from citymodel.analysis.scene import Scene, TerrainModel
    from citymodel.analysis.sightlines import VISIBLE, sight_lines_from_viewpoints, viewshed
    from citymodel.raster import write_geotiff

    s = settings.load()
    a = s.analysis.sightlines
    d = analysis_dir(s, "sightlines")
    vp = _staged(s, "viewpoints")
    observers = vp[vp["kind"].astype(str) == "observer"] if vp is not None and len(vp) else None
    if observers is None or not len(observers):
        return _empty_tile(SIGHTLINES_KEY, "no viewpoints configured or staged", ["every_observer_assessed"])
    with timer() as t:
        x, y = vp.geometry.x.to_numpy(), vp.geometry.y.to_numpy()
        bounds = _grow((x.min(), y.min(), x.max(), y.max()), a.viewshed_radius_m + s.analysis.scene_margin_m)
        tiles = [tt.id for tt in s.tiles if _overlaps(tt.bounds, bounds)]
        blds = {k: v for k, v in building_solids(load_tile_buildings(s, tiles)).items()
                if _overlaps(_solids_bounds(v), bounds)}
        terr = terrain_raster(s, bounds, s.analysis.terrain_cell_m)
        scene = Scene.build(blds, _clip_points(_staged(s, "trees"), bounds), TerrainModel.from_raster(terr),
                            crown_transmissivity=s.analysis.crown_transmissivity,
                            terrain_step_m=s.analysis.terrain_cell_m)
        lines = sight_lines_from_viewpoints(scene, vp, target_tolerance_m=a.target_tolerance_m,
                                            crowns_block=a.crowns_block)
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
        frame = gpd.GeoDataFrame(lines, geometry=geoms, crs=s.processing_crs)
        _write_table(frame, d / "sightlines.parquet", d / "sightlines.gpkg", layer="sightlines")
        sheds = {}
        for o in observers.itertuples():
            eh = float(o.eye_height_m) if o.eye_height_m is not None and np.isfinite(o.eye_height_m) else 1.6
            vs = viewshed(scene, (o.geometry.x, o.geometry.y), eye_height_m=eh, radius_m=a.viewshed_radius_m,
                          cell_m=a.viewshed_cell_m, target_height_m=a.target_height_m,
                          target_tolerance_m=a.target_tolerance_m, crowns_block=a.crowns_block)
            write_geotiff(d / f"viewshed_{o.viewpoint_id}.tif", vs.visible, transform=vs.transform,
                          crs=s.processing_crs, nodata=255,
                          tags={k: v for k, v in vs.metadata.items() if k != "seconds"},
                          band_descriptions=["visible (1) / hidden (0)"])
            sheds[str(o.viewpoint_id)] = {"visible_area_m2": vs.visible_area_m2,
                                          "visible_share": round(float((vs.visible == VISIBLE).sum()
                                                                       / max((vs.visible != 255).sum(), 1)), 4)}
        write_json_atomic(d / "viewsheds.json", sheds)
        scene.close()
        # pictures: the sight lines over the buildings
        fig, ax = new_figure(4, 4)
        fp = load_building_table(s)
        if len(fp):
            fp.plot(ax=ax, color="0.8", linewidth=0)
        for r in frame.itertuples():
            xy = np.asarray(r.geometry.coords)[:, :2]
            ax.plot(xy[:, 0], xy[:, 1], color="tab:green" if r.visible else "tab:red", linewidth=1.2)
        ax.set_aspect("equal")
        ax.tick_params(labelsize=6)
        ax.set_title("sight lines (green visible, red blocked)", fontsize=9)
    missing = sorted(set(observers["viewpoint_id"].astype(str)) - set(lines["observer_id"]) - set())
    missing += sorted(set(observers["viewpoint_id"].astype(str)) - set(sheds))
    table = frame.drop(columns="geometry")[["observer_id", "target_id", "distance_m", "visible",
                                            "blocked_by_buildings", "blocked_by_terrain", "blocked_by_trees"]]
    meta = {"observers": len(observers), "visible": int(frame["visible"].sum()), "blocked": int((~frame["visible"]).sum()),
            "buildings_in_scene": len(blds), "seconds": t["seconds"],
            "lines": dg.MetadataValue.md(table.round(1).to_markdown(index=False)),
            "viewsheds": _json_meta(sheds), "method": attrs.get("method", "segment ray casting (embree)"),
            "parameters": _json_meta({**a.model_dump(), **{k: v for k, v in attrs.items() if k != "method"}}),
            "map": png_markdown(fig)}
    return dg.MaterializeResult(metadata=meta, check_results=[
        dg.AssetCheckResult(asset_key=SIGHTLINES_KEY, check_name="every_observer_assessed", passed=not missing,
                            severity=dg.AssetCheckSeverity.WARN, metadata={"missing": dg.MetadataValue.json(missing)})])


# ===================================================================================== noise
def normalised_function_code(code) -> str:
    """ALKIS function codes as the noise exposure expects them: ``'31001_1010'`` -> ``'1010'``."""
    if code is None or (isinstance(code, float) and np.isnan(code)):
        return ""
    return str(code).strip().split("_")[-1]


def screening_buildings(settings: Settings, table=None):
    """The reconstructed buildings as 2.5D noise-screening blocks (``height_m`` above ``ground_height_m``).

    ``height_m`` follows ``analysis.noise.building_height`` (ridge, eave or their mean); where the
    reconstruction has no height (rejected footprints) the building is left out and counted in
    ``.attrs['without_height']``.
    """
    t = load_building_table(settings) if table is None else table
    t = t.copy()
    mode = settings.analysis.noise.building_height
    eave = pd.to_numeric(t.get("eave_height_m", pd.Series(np.nan, index=t.index)), errors="coerce")
    ridge = pd.to_numeric(t.get("ridge_height_m", pd.Series(np.nan, index=t.index)), errors="coerce")
    h = {"ridge": ridge.fillna(eave), "eave": eave.fillna(ridge), "mean": ((eave + ridge) / 2).fillna(ridge).fillna(eave)}[mode]
    if "measured_height_m" in t:
        h = h.fillna(pd.to_numeric(t["measured_height_m"], errors="coerce"))
    t["height_m"] = h
    ok = np.isfinite(t["height_m"].to_numpy(float)) & np.isfinite(
        pd.to_numeric(t.get("ground_height_m", pd.Series(np.nan, index=t.index)), errors="coerce").to_numpy(float))
    if "method" in t:
        ok &= (t["method"].astype(str) != "rejected").to_numpy()
    out = t[ok].reset_index(drop=True)
    if "function_code" in out:
        out["function_code"] = out["function_code"].map(normalised_function_code)
    out.attrs["without_height"] = sorted(t.loc[~ok, "building_id"].astype(str))
    return out


def _noise_params(settings: Settings):
    from citymodel.analysis.noise import NoiseParameters

    n = settings.analysis.noise
    return NoiseParameters(grid_spacing_m=n.grid_spacing_m, grid_height_m=n.grid_height_m,
                           max_distance_m=n.max_distance_m)


def _roads_near(settings: Settings, bounds, max_distance_m: float):
    """Staged roads within ``max_distance_m`` of ``bounds`` (None where roads are not staged)."""
    import shapely

    roads = _staged(settings, "roads")
    if roads is None or not len(roads):
        return None
    near = shapely.dwithin(np.asarray(roads.geometry.values, dtype=object), shapely.box(*bounds), max_distance_m)
    return roads[near].reset_index(drop=True)


class NoiseInputs:
    """Roads, emissions, screening blocks, terrain and the tile's own buildings for RLS-19."""

    def __init__(self, settings: Settings, tile_id: str):
        from citymodel.analysis.rls19 import road_emissions

        n = settings.analysis.noise
        self.bounds = analysis_bounds(settings, tile_id)
        self.params = _noise_params(settings)
        self.roads_dataset = _dataset_name(settings, "roads")
        self.roads = _roads_near(settings, self.bounds, n.max_distance_m)
        if self.roads is None or not len(self.roads):
            self.emissions = None
            return
        self.emissions = road_emissions(self.roads, self.roads_dataset, road_type=n.road_type)
        rb = self.roads.total_bounds
        area = (min(rb[0], self.bounds[0]), min(rb[1], self.bounds[1]), max(rb[2], self.bounds[2]),
                max(rb[3], self.bounds[3]))
        blds = screening_buildings(settings)
        self.without_height = blds.attrs.get("without_height", [])
        if len(blds):
            bb = blds.geometry.bounds
            keep = ((bb["maxx"] >= area[0] - 200) & (bb["minx"] <= area[2] + 200) &
                    (bb["maxy"] >= area[1] - 200) & (bb["miny"] <= area[3] + 200))
            blds = blds[keep.to_numpy()].reset_index(drop=True)
        self.buildings = blds
        self.own = blds[blds["tile_id"].astype(str) == tile_id].reset_index(drop=True) if len(blds) \
            else blds
        self.dtm = terrain_raster(settings, _grow(area, 250.0), settings.analysis.terrain_cell_m)

    def facade_receivers(self, settings: Settings):
        from citymodel.analysis.noise import facade_receivers

        return facade_receivers(self.own, storey_height_m=settings.analysis.storey_height_m, dtm=self.dtm)


def _noise_checks():
    return [dg.AssetCheckSpec("facade_levels_finite", asset=NOISE_KEY, blocking=False,
                              description="every facade receiver with a road in range has a finite level"),
            dg.AssetCheckSpec("levels_plausible", asset=NOISE_KEY, blocking=False,
                              description="every grid and facade level (LrT, LrN) lies within 0..100 dB(A)")]


def _in_range(receivers: pd.DataFrame, roads, max_distance_m: float) -> np.ndarray:
    import shapely

    if roads is None or not len(roads) or not len(receivers):
        return np.zeros(len(receivers), dtype=bool)
    pts = shapely.points(receivers["x"].to_numpy(float), receivers["y"].to_numpy(float))
    tree = shapely.STRtree(np.asarray(roads.geometry.values, dtype=object))
    hit = tree.query(pts, predicate="dwithin", distance=max_distance_m)
    out = np.zeros(len(receivers), dtype=bool)
    out[np.unique(hit[0])] = True
    return out


@dg.asset(key=NOISE_KEY, tags=NEIGHBOUR_TAG, deps=[LOD2_TILE_KEY, DTM_KEY, _STAGED["roads"]], partitions_def=TILES,
          group_name=GROUP, code_version=ANALYSIS_CODE_VERSION, check_specs=_noise_checks(),
          kinds={"geotiff", "gpkg", "geoparquet"},
          description="Road traffic noise after RLS-19: LrT/LrN grid (GeoTIFF), isophones (GeoPackage), "
                      "facade levels per wall and storey, highest facade level per building, residents "
                      "per level band; buildings screen as 2.5D blocks from the reconstruction.")
def noise(context: AssetExecutionContext, settings: SettingsResource) -> dg.MaterializeResult:
    import geopandas as gpd

    from citymodel.analysis.noise import (building_max_levels, exposure_by_band, facade_levels, isophones,
                                          noise_grid, write_noise_raster)
    from citymodel.analysis.rls19 import METHOD
    from citymodel.release import write_geopackage

    s = settings.load()
    n = s.analysis.noise
    tile_id = context.partition_key
    files = tile_files(s, "noise", tile_id)
    names = ["facade_levels_finite", "levels_plausible"]
    if analysis_bounds(s, tile_id) is None:
        return _empty_tile(NOISE_KEY, "tile outside the extent", names)
    with timer() as t:
        inp = NoiseInputs(s, tile_id)
        if inp.emissions is None:
            return _empty_tile(NOISE_KEY, "no staged roads within range of the tile", names)
        grid = noise_grid(inp.emissions, inp.bounds, inp.buildings, inp.dtm, inp.params)
        write_noise_raster(files["raster"], grid, s.processing_crs)
        iso = pd.concat([isophones(grid.lrt_db, grid.transform, n.isophone_lower_db, step_db=n.isophone_step_db,
                                   crs=s.processing_crs, indicator="LrT"),
                         isophones(grid.lrn_db, grid.transform, n.isophone_lower_db - 10.0,
                                   step_db=n.isophone_step_db, crs=s.processing_crs, indicator="LrN")],
                        ignore_index=True)
        iso = gpd.GeoDataFrame(iso, geometry="geometry", crs=s.processing_crs)
        write_geopackage(iso, files["isophones"], layer="isophones")
        rec = inp.facade_receivers(s)
        fac = facade_levels(inp.emissions, rec, inp.buildings, inp.dtm, inp.params) if len(rec) else \
            rec.assign(lrt_db=[], lrn_db=[], method=[])
        fac = fac.assign(lrt_db=fac["lrt_db"].astype(float), lrn_db=fac["lrn_db"].astype(float))
        _write_table(_points_frame(fac, s.processing_crs), files["facades"])
        per_b = building_max_levels(fac) if len(fac) else pd.DataFrame(
            columns=["building_id", "lrt_max_db", "lrn_max_db", "method"])
        _write_geoparquet(per_b, files["buildings"])
        expo = exposure_by_band(per_b, inp.own)
        _write_csv(expo, files["exposure"])
    in_range = _in_range(fac, inp.roads, n.max_distance_m)
    bad = fac[in_range & ~(np.isfinite(fac["lrt_db"].to_numpy(float)) & np.isfinite(fac["lrn_db"].to_numpy(float)))]
    vals = np.concatenate([grid.lrt_db.ravel(), grid.lrn_db.ravel(), fac["lrt_db"].to_numpy(float),
                           fac["lrn_db"].to_numpy(float)])
    vals = vals[np.isfinite(vals)]
    implausible = int(((vals < 0) | (vals > 100)).sum())
    meta = {"roads": len(inp.roads), "screening_buildings": len(inp.buildings),
            "buildings_without_height": len(inp.without_height), "receivers_grid": int(np.isfinite(grid.lrt_db).sum()),
            "receivers_facade": len(fac), "buildings_assessed": len(per_b), "seconds": t["seconds"],
            "lrt_max_db": round(float(np.nanmax(grid.lrt_db)), 1) if np.isfinite(grid.lrt_db).any() else None,
            "lrt_mean_db": round(float(np.nanmean(grid.lrt_db[np.isfinite(grid.lrt_db)])), 1)
            if np.isfinite(grid.lrt_db).any() else None,
            "exposure": dg.MetadataValue.md(expo[["indicator", "band_lo_db", "band_hi_db", "residents",
                                                  "buildings"]].round(1).to_markdown(index=False)),
            "method": METHOD,
            "parameters": _json_meta({**grid.parameters, "building_height": n.building_height,
                                      "road_type_for_dtv": n.road_type,
                                      "terrain_filled_share": inp.dtm.tags.get("filled_share")}),
            "raster": dg.MetadataValue.path(str(files["raster"])),
            "thumbnail": _raster_plot(grid.lrt_db, grid.bounds, f"tile {tile_id}: LrT (RLS-19)", "dB(A)",
                                      "magma", 40, 80)}
    return dg.MaterializeResult(metadata=meta, check_results=[
        dg.AssetCheckResult(asset_key=NOISE_KEY, check_name="facade_levels_finite", passed=len(bad) == 0,
                            severity=dg.AssetCheckSeverity.WARN,
                            metadata={"receivers_without_level": len(bad),
                                      "buildings": dg.MetadataValue.json(sorted(set(bad["building_id"].astype(str)))[:50])}),
        dg.AssetCheckResult(asset_key=NOISE_KEY, check_name="levels_plausible", passed=implausible == 0,
                            severity=dg.AssetCheckSeverity.WARN, metadata={"outside_0_100_db": implausible})])


# ===================================================================================== flood
def _flood_checks():
    return [dg.AssetCheckSpec("depths_non_negative", asset=FLOOD_KEY, blocking=True,
                              description="every water depth (raster and buildings) is >= 0 m"),
            dg.AssetCheckSpec("every_building_assessed", asset=FLOOD_KEY, blocking=False,
                              description="every building of the tile has a result per scenario")]


def _crop(depth, bounds):
    """A FloodDepth cut to ``bounds`` (whole cells)."""
    from citymodel.analysis.flood import FloodDepth
    from affine import Affine

    t = depth.transform
    c0 = max(0, int(np.floor((bounds[0] - t.c) / t.a + 1e-9)))
    c1 = min(depth.depth_m.shape[1], int(np.ceil((bounds[2] - t.c) / t.a - 1e-9)))
    r0 = max(0, int(np.floor((bounds[3] - t.f) / t.e + 1e-9)))
    r1 = min(depth.depth_m.shape[0], int(np.ceil((bounds[1] - t.f) / t.e - 1e-9)))
    return FloodDepth(depth.scenario, depth.depth_m[r0:r1, c0:c1],
                      Affine(t.a, 0.0, t.c + c0 * t.a, 0.0, t.e, t.f + r0 * t.e), depth.crs, depth.zones, depth.method)


@dg.asset(key=FLOOD_KEY, deps=[LOD2_TILE_KEY, DTM_KEY, _STAGED["flood_zones"]], partitions_def=TILES,
          group_name=GROUP, code_version=ANALYSIS_CODE_VERSION, check_specs=_flood_checks(),
          kinds={"geotiff", "geoparquet"},
          description="Water depth per flood scenario (water level - DTM, GeoTIFF) and per building: "
                      "affected, maximum and mean depth, ground floor flooded; a summary per scenario.")
def flood(context: AssetExecutionContext, settings: SettingsResource) -> dg.MaterializeResult:
    from citymodel.analysis.flood import METHOD, flood_exposure, write_depth_raster
    from citymodel.raster import read_geotiff

    s = settings.load()
    f = s.analysis.flood
    tile_id = context.partition_key
    files = tile_files(s, "flood", tile_id)
    names = ["depths_non_negative", "every_building_assessed"]
    bounds = analysis_bounds(s, tile_id)
    if bounds is None:
        return _empty_tile(FLOOD_KEY, "tile outside the extent", names)
    zones = _staged(s, "flood_zones")
    if zones is None or not len(zones):
        return _empty_tile(FLOOD_KEY, "no flood zones configured or staged", names)
    dtm_path = point_cloud_paths(s, tile_id)[1]
    if not dtm_path.exists():
        raise dg.Failure(f"tile {tile_id}: no staged DTM at {dtm_path}. Fix: materialize staging/dtm for the tile")
    with timer() as t:
        dtm = read_geotiff(dtm_path, dataset="dtm")
        own = screening_buildings(s)
        own = own[own["tile_id"].astype(str) == tile_id].reset_index(drop=True)
        depths, per_b, summary = flood_exposure(zones, dtm, own, scenarios=f.scenarios,
                                                floor_offset_m=f.floor_offset_m,
                                                sample_spacing_m=f.sample_spacing_m,
                                                dataset=_dataset_name(s, "flood_zones"))
        rasters = {}
        for sc, dep in depths.items():
            cut = _crop(dep, bounds)
            rasters[sc] = cut
            write_depth_raster(flood_raster_path(s, tile_id, sc), cut, crs=s.processing_crs)
        # the tile's own part of the flooded area (the DTM carries a halo)
        summary["flooded_area_m2"] = [rasters[sc].flooded_area_m2 for sc in summary["scenario"]]
        summary["tile_id"] = tile_id
        geo = dict(zip(own["building_id"].astype(str), own.geometry))
        import geopandas as gpd

        per_b = gpd.GeoDataFrame(per_b, geometry=[geo.get(str(b)) for b in per_b["building_id"]]
                                 if len(per_b) else [], crs=s.processing_crs)
        per_b["tile_id"] = tile_id
        _write_table(per_b, files["buildings"])
        _write_csv(summary, files["summary"])
    neg = sum(int((r.depth_m[np.isfinite(r.depth_m)] < 0).sum()) for r in rasters.values())
    if len(per_b):
        neg += int((per_b["max_depth_m"].to_numpy(float) < 0).sum())
    expected = len(own) * len(depths)
    meta = {"buildings": len(own), "scenarios": dg.MetadataValue.json(sorted(depths)), "seconds": t["seconds"],
            "summary": dg.MetadataValue.md(summary.drop(columns=["method"]).round(2).to_markdown(index=False)),
            "method": METHOD, "parameters": _json_meta(f.model_dump())}
    first = sorted(rasters)[-1] if rasters else None
    if first:
        r = rasters[first]
        rows, cols = r.depth_m.shape
        b = (r.transform.c, r.transform.f + rows * r.transform.e, r.transform.c + cols * r.transform.a, r.transform.f)
        meta["thumbnail"] = _raster_plot(r.depth_m, b, f"tile {tile_id}: water depth {first}", "m", "Blues", 0)
    return dg.MaterializeResult(metadata=meta, check_results=[
        dg.AssetCheckResult(asset_key=FLOOD_KEY, check_name="depths_non_negative", passed=neg == 0,
                            metadata={"negative_values": neg}),
        dg.AssetCheckResult(asset_key=FLOOD_KEY, check_name="every_building_assessed", passed=len(per_b) == expected,
                            severity=dg.AssetCheckSeverity.WARN,
                            metadata={"rows": len(per_b), "expected": expected})])


# ============================================================================ traffic change
def traffic_edits(settings: Settings, roads) -> list[dict]:
    """The configured demonstration change as edits for :func:`citymodel.analysis.traffic.apply_edits`.

    Raises
    ------
    ConfigError
        No change configured, the named road is not in the roads dataset, or the roads have no
        ``name`` column to select by.
    """
    tc = settings.analysis.traffic_change
    ds = _dataset_name(settings, "roads")
    if tc is None:
        raise ConfigError("no analysis.traffic_change configured. Fix: add analysis.traffic_change with "
                          "road_name or road_ids and a factor or speed")
    ids = [str(r) for r in tc.road_ids]
    if tc.road_name:
        if "name" not in roads:
            raise dataset_error(ConfigError, ds, "the roads have no 'name' column to select "
                                f"analysis.traffic_change.road_name = {tc.road_name!r} by",
                                "map the road name column (sources.roads.columns: {name: ...}) or give road_ids")
        sel = roads.loc[roads["name"].astype(str) == tc.road_name, "road_id"].astype(str).tolist()
        if not sel:
            names = sorted(roads["name"].dropna().astype(str).unique())
            raise dataset_error(ConfigError, ds, "analysis.traffic_change.road_name names no road",
                                f"use one of {names[:20]}", record=tc.road_name)
        ids += [i for i in sel if i not in ids]
    known = set(roads["road_id"].astype(str))
    for i in ids:
        if i not in known:
            raise dataset_error(ConfigError, ds, "analysis.traffic_change.road_ids names a road that does not exist",
                                "use a road_id of the staged roads", record=i)
    edit = {k: v for k, v in (("factor", tc.factor), ("speed_car_kmh", tc.speed_car_kmh),
                              ("speed_truck_kmh", tc.speed_truck_kmh), ("surface", tc.surface)) if v is not None}
    return [{"road_id": i, **edit} for i in ids]


def _traffic_checks():
    return [dg.AssetCheckSpec("change_bounded_by_emission_change", asset=TRAFFIC_CHANGE_KEY, blocking=False,
                              description="no receiver changes by more than the largest emission change of "
                                          "the changed roads (energy sum)")]


@dg.asset(key=TRAFFIC_CHANGE_KEY, tags=NEIGHBOUR_TAG, deps=[LOD2_TILE_KEY, DTM_KEY, _STAGED["roads"]], partitions_def=TILES,
          group_name=GROUP, code_version=ANALYSIS_CODE_VERSION, check_specs=_traffic_checks(),
          kinds={"geotiff", "geoparquet"},
          description="The configured demonstration traffic change as a change of noise (RLS-19, after - "
                      "before): difference map (GeoTIFF) and the buildings whose highest facade level "
                      "changes by >= 1 dB and >= 3 dB.")
def traffic_change(context: AssetExecutionContext, settings: SettingsResource) -> dg.MaterializeResult:
    from citymodel.analysis.rls19 import METHOD, road_emissions
    from citymodel.analysis.traffic import apply_edits, noise_change
    from citymodel.raster import write_geotiff

    s = settings.load()
    tc = s.analysis.traffic_change
    tile_id = context.partition_key
    files = tile_files(s, "traffic_change", tile_id)
    names = ["change_bounded_by_emission_change"]
    if tc is None:
        return _empty_tile(TRAFFIC_CHANGE_KEY, "no analysis.traffic_change configured", names)
    if analysis_bounds(s, tile_id) is None:
        return _empty_tile(TRAFFIC_CHANGE_KEY, "tile outside the extent", names)
    all_roads = _staged(s, "roads")
    if all_roads is None or not len(all_roads):
        return _empty_tile(TRAFFIC_CHANGE_KEY, "no staged roads", names)
    edits = traffic_edits(s, all_roads)  # validated against every road, not only the nearby ones
    with timer() as t:
        inp = NoiseInputs(s, tile_id)
        if inp.emissions is None:
            return _empty_tile(TRAFFIC_CHANGE_KEY, "no staged roads within range of the tile", names)
        near_ids = set(inp.roads["road_id"].astype(str))
        local = [e for e in edits if e["road_id"] in near_ids]
        rec = inp.facade_receivers(s)
        res = noise_change(inp.roads, edits=local, bounds=inp.bounds, facade_receivers=rec if len(rec) else None,
                           buildings=inp.buildings, dtm=inp.dtm, params=inp.params, dataset=inp.roads_dataset) \
            if local else None
        if res is not None:
            arr = np.stack([res.diff_lrt_db, res.diff_lrn_db]).astype(np.float32)
            transform = res.grid_before.transform
            blds = res.buildings if res.buildings is not None else pd.DataFrame(columns=["building_id"])
        else:  # the changed roads are out of range of this tile: no change anywhere
            from citymodel.analysis.noise import grid_receivers

            gr = grid_receivers(inp.bounds, inp.params)
            shape = (int(gr["row"].max()) + 1, int(gr["col"].max()) + 1)
            arr = np.zeros((2, *shape), dtype=np.float32)
            from affine import Affine

            sp = inp.params.grid_spacing_m
            transform = Affine(sp, 0, inp.bounds[0], 0, -sp, inp.bounds[3])
            blds = pd.DataFrame({"building_id": inp.own["building_id"].astype(str), "diff_lrt_db": 0.0,
                                 "diff_lrn_db": 0.0, "change_ge_1db": False, "change_ge_3db": False,
                                 "method": METHOD})
        write_geotiff(files["raster"], arr, transform=transform, crs=s.processing_crs, nodata=float("nan"),
                      tags={"method": METHOD, "change": tc.label, "edits": json.dumps(edits),
                            "indicators": "LrT and LrN after - before (dB)"},
                      band_descriptions=["dLrT_dB", "dLrN_dB"])
        _write_geoparquet(blds.assign(tile_id=tile_id), files["buildings"])
        # the emission change of the changed roads (the bound of any level change)
        if local:
            sel = inp.roads[inp.roads["road_id"].astype(str).isin({e["road_id"] for e in local})]
            eb = road_emissions(sel, inp.roads_dataset, road_type=s.analysis.noise.road_type)
            ea = road_emissions(apply_edits(sel, local), inp.roads_dataset, road_type=s.analysis.noise.road_type)
            with np.errstate(invalid="ignore"):
                dlw = np.concatenate([ea["lw_day_db_m"].to_numpy() - eb["lw_day_db_m"].to_numpy(),
                                      ea["lw_night_db_m"].to_numpy() - eb["lw_night_db_m"].to_numpy()])
            bound = float(np.nanmax(np.abs(dlw))) if np.isfinite(dlw).any() else float("inf")
        else:
            bound = 0.0
        summary = {"label": tc.label, "edits": edits, "changed_roads_in_range": sorted(e["road_id"] for e in local),
                   "tile_id": tile_id, "method": METHOD, "max_emission_change_db": bound,
                   "buildings_change_ge_1db": int(blds["change_ge_1db"].sum()) if len(blds) else 0,
                   "buildings_change_ge_3db": int(blds["change_ge_3db"].sum()) if len(blds) else 0,
                   "min_diff_lrt_db": float(np.nanmin(arr[0])) if np.isfinite(arr[0]).any() else None,
                   "max_diff_lrt_db": float(np.nanmax(arr[0])) if np.isfinite(arr[0]).any() else None}
        write_json_atomic(files["summary"], summary)
    vals = np.concatenate([arr[np.isfinite(arr)].ravel(),
                           blds["diff_lrt_db"].to_numpy(float) if len(blds) else np.zeros(0),
                           blds["diff_lrn_db"].to_numpy(float) if len(blds) else np.zeros(0)])
    vals = vals[np.isfinite(vals)]
    worst = float(np.abs(vals).max()) if len(vals) else 0.0
    b = (transform.c, transform.f + arr.shape[1] * transform.e, transform.c + arr.shape[2] * transform.a, transform.f)
    meta = {**{k: v for k, v in summary.items() if isinstance(v, (int, float, str)) and v is not None},
            "edits": _json_meta(edits), "seconds": t["seconds"], "receivers_facade": len(rec),
            "parameters": _json_meta(inp.params.as_dict()),
            "thumbnail": _raster_plot(arr[0], b, f"tile {tile_id}: ΔLrT ({tc.label})", "dB", "RdBu_r", -3, 3)}
    return dg.MaterializeResult(metadata=meta, check_results=[
        dg.AssetCheckResult(asset_key=TRAFFIC_CHANGE_KEY, check_name="change_bounded_by_emission_change",
                            passed=worst <= bound + 1e-6, severity=dg.AssetCheckSeverity.WARN,
                            metadata={"largest_level_change_db": round(worst, 3),
                                      "largest_emission_change_db": round(bound, 3)})])


# =========================================================================== building values
#: (column, 3D Tiles property, type, unit/description); the sun columns follow the configured days
def building_value_columns(settings: Settings) -> list[tuple[str, str, str, str]]:
    """The columns of ``analysis/building_values.parquet``: ``(column, type, unit, description)``.

    Types are 3D Tiles component types (``FLOAT32``, ``UINT8``, ``STRING``).
    """
    cols = []
    for day in settings.analysis.sun.days:
        lab = day_label(day)
        cols.append((f"sun_hours_{lab}_max", "FLOAT32", "h",
                     f"most hours of direct sun at a facade point of the building on {day}"))
    cols += [("din17037_hours", "FLOAT32", "h", "hours of possible sun at the best facade point on the "
                                                 "DIN EN 17037 day"),
             ("din17037_level", "STRING", "", "DIN EN 17037 sunlight exposure level (high/medium/minimum/none)"),
             ("solar_kwh_a", "FLOAT32", "kWh/a", "annual irradiation on all roof surfaces"),
             ("solar_kwh_m2a_max", "FLOAT32", "kWh/m²·a", "annual irradiation of the best roof surface"),
             ("solar_roof_area_m2", "FLOAT32", "m²", "roof area assessed"),
             ("solar_suitable_area_m2", "FLOAT32", "m²", "roof area classed 'very suitable' or 'suitable'"),
             ("solar_class_best", "STRING", "", "best solar-cadastre class of the roof surfaces"),
             ("noise_lrt_max_db", "FLOAT32", "dB(A)", "highest facade rating level, day (RLS-19 LrT)"),
             ("noise_lrn_max_db", "FLOAT32", "dB(A)", "highest facade rating level, night (RLS-19 LrN)")]
    scen = settings.analysis.flood.scenarios
    for sc in (scen if scen else _flood_scenarios(settings)):
        k = sc.lower()
        cols += [(f"flood_depth_max_m_{k}", "FLOAT32", "m", f"largest water depth at the building, {sc}"),
                 (f"flood_affected_{k}", "UINT8", "", f"1 where water reaches the building, {sc}"),
                 (f"flood_ground_floor_{k}", "UINT8", "", f"1 where the depth exceeds the ground floor "
                                                          f"height, {sc}")]
    if settings.analysis.traffic_change is not None:
        cols += [("traffic_change_lrt_db", "FLOAT32", "dB", "change of the highest facade LrT by the "
                                                             "demonstration traffic change"),
                 ("traffic_change_lrn_db", "FLOAT32", "dB", "change of the highest facade LrN by the "
                                                             "demonstration traffic change")]
    return cols


def _flood_scenarios(settings: Settings) -> list[str]:
    z = _staged(settings, "flood_zones")
    return sorted(z["scenario"].astype(str).unique()) if z is not None and len(z) and "scenario" in z else []


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def building_value_properties(settings: Settings) -> list:
    """:class:`citymodel.tiles3d.PropertySpec` of the building values, for ``write_building_tiles``.

    Property names are the camelCase of the columns (``solar_kwh_a`` -> ``solarKwhA``); each spec
    reads the snake_case column from the record's attributes; noData is -9999 (FLOAT32), 255 (UINT8)
    and "" (STRING).
    """
    from citymodel.tiles3d.glb import PropertySpec

    out = []
    for col, typ, unit, desc in building_value_columns(settings):
        text = f"{desc} ({unit})" if unit else desc
        if typ == "STRING":
            out.append(PropertySpec(_camel(col), "STRING", None, "", (col,), text))
        else:
            out.append(PropertySpec(_camel(col), "SCALAR", typ, -9999.0 if typ.startswith("FLOAT") else 255,
                                    (col,), text))
    return out


def _read_tiles(settings: Settings, layer: str, part: str) -> pd.DataFrame:
    frames = []
    for t in settings.tile_ids:
        p = tile_files(settings, layer, t)[part]
        if p.exists():
            f = pd.read_parquet(p)
            if len(f):
                frames.append(pd.DataFrame(f.drop(columns=[c for c in ("geometry",) if c in f])))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({"building_id": []})


def gather_building_values(settings: Settings):
    """One row per reconstructed building with the values of every analysis layer (GeoDataFrame)."""
    import geopandas as gpd

    table = load_building_table(settings)
    base = gpd.GeoDataFrame({"building_id": table["building_id"].astype(str),
                             "tile_id": table["tile_id"].astype(str) if "tile_id" in table else "",
                             "method": table["method"].astype(str) if "method" in table else ""},
                            geometry=table.geometry.values, crs=table.crs)
    base = base[base["method"] != "rejected"].reset_index(drop=True)
    parts = []
    walls = _read_tiles(settings, "sun_hours", "facades")
    if len(walls):
        cols = {f"sun_h_max_{day_label(d)}": f"sun_hours_{day_label(d)}_max" for d in settings.analysis.sun.days}
        parts.append(walls.groupby("building_id")[list(cols)].max().rename(columns=cols))
    din = _read_tiles(settings, "sun_hours", "din17037")
    if len(din):
        parts.append(din.set_index("building_id")[["sun_hours_best", "level"]]
                     .rename(columns={"sun_hours_best": "din17037_hours", "level": "din17037_level"}))
    roofs = _read_tiles(settings, "solar", "roofs")
    if len(roofs):
        rank = {c: i for i, c in enumerate(SOLAR_CLASS_ORDER)}
        roofs["rank"] = roofs["suitability"].map(rank).fillna(len(rank))
        roofs["suitable_area"] = roofs["area_m2"].where(roofs["suitability"].isin(SOLAR_CLASS_ORDER[:2]), 0.0)
        g = roofs.groupby("building_id")
        sol = pd.DataFrame({"solar_kwh_a": g["irradiation_kwh_a"].sum(),
                            "solar_kwh_m2a_max": g["irradiation_kwh_m2a"].max(),
                            "solar_roof_area_m2": g["area_m2"].sum(),
                            "solar_suitable_area_m2": g["suitable_area"].sum(),
                            "solar_class_best": g["rank"].min().map(lambda r: SOLAR_CLASS_ORDER[int(r)]
                                                                   if r < len(SOLAR_CLASS_ORDER) else "")})
        parts.append(sol)
    nb = _read_tiles(settings, "noise", "buildings")
    if len(nb):
        parts.append(nb.set_index("building_id")[["lrt_max_db", "lrn_max_db"]]
                     .rename(columns={"lrt_max_db": "noise_lrt_max_db", "lrn_max_db": "noise_lrn_max_db"}))
    fl = _read_tiles(settings, "flood", "buildings")
    if len(fl):
        for sc, g in fl.groupby("scenario"):
            k = str(sc).lower()
            g = g.set_index("building_id")
            parts.append(pd.DataFrame({f"flood_depth_max_m_{k}": g["max_depth_m"].astype(float),
                                       f"flood_affected_{k}": g["affected"].astype("uint8"),
                                       f"flood_ground_floor_{k}": g["ground_floor_flooded"].astype("uint8")}))
    tcb = _read_tiles(settings, "traffic_change", "buildings")
    if len(tcb) and "diff_lrt_db" in tcb:
        parts.append(tcb.set_index("building_id")[["diff_lrt_db", "diff_lrn_db"]]
                     .rename(columns={"diff_lrt_db": "traffic_change_lrt_db", "diff_lrn_db": "traffic_change_lrn_db"}))
    out = base.set_index("building_id")
    for p in parts:
        p.index = p.index.astype(str)
        out = out.join(p[~p.index.duplicated()], how="left")
    out = out.reset_index()
    for col, typ, _, _ in building_value_columns(settings):
        if col not in out:
            out[col] = "" if typ == "STRING" else np.nan
        elif typ == "STRING":
            out[col] = out[col].fillna("").astype(str)
    return gpd.GeoDataFrame(out, geometry="geometry", crs=table.crs)


def building_values_by_id(settings: Settings) -> dict[str, dict[str, Any]]:
    """``building_id -> {column: value}`` from ``analysis/building_values.parquet`` (NaN dropped):
    merge into the 3D Tiles records' attributes."""
    p = building_values_path(settings)
    if not p.exists():
        return {}
    f = pd.read_parquet(p)
    cols = [c for c, *_ in building_value_columns(settings) if c in f]
    out = {}
    for r in f[["building_id", *cols]].to_dict("records"):
        out[str(r.pop("building_id"))] = {k: v for k, v in r.items() if not (isinstance(v, float) and np.isnan(v))}
    return out


def _values_checks():
    return [dg.AssetCheckSpec("one_row_per_building", asset=BUILDING_VALUES_KEY, blocking=True,
                              description="one row per reconstructed building, ids unique"),
            dg.AssetCheckSpec("layers_cover_buildings", asset=BUILDING_VALUES_KEY, blocking=False,
                              description="every building has a value of every computed layer")]


_UPSTREAM = [SUN_HOURS_KEY, SOLAR_KEY, SIGHTLINES_KEY, NOISE_KEY, FLOOD_KEY, TRAFFIC_CHANGE_KEY]


@dg.asset(key=BUILDING_VALUES_KEY, deps=[*_UPSTREAM, dg.AssetKey(["buildings", "model"])], group_name=GROUP,
          code_version=ANALYSIS_CODE_VERSION, check_specs=_values_checks(),
          automation_condition=dg.AutomationCondition.eager(), kinds={"geoparquet", "gpkg", "csv"},
          description="One row per building with the analysis values the 3D Tiles and the open datasets "
                      "carry (sun hours, DIN EN 17037, solar, noise, flood, traffic change).")
def building_values(context: AssetExecutionContext, settings: SettingsResource) -> dg.MaterializeResult:
    from citymodel.release import write_geopackage

    s = settings.load()
    with timer() as t:
        values = gather_building_values(s)
        path = building_values_path(s)
        _write_geoparquet(values, path)
        write_geopackage(values, path.with_suffix(".gpkg"), layer="building_values")
        _write_csv(pd.DataFrame(values.drop(columns="geometry")), path.with_suffix(".csv"))
    cols = building_value_columns(s)
    n_model = len(load_building_table(s))
    coverage = {c: round(float((values[c].astype(str) != "").mean() if typ == "STRING"
                               else values[c].notna().mean()), 4) if len(values) else 0.0
                for c, typ, _, _ in cols}
    # a layer whose column is empty for every building was not computed (e.g. not configured): not a gap
    gaps = {c: v for c, v in coverage.items() if 0.0 < v < 1.0}
    dup = int(values["building_id"].duplicated().sum())
    stats = {c: {"min": float(values[c].min()), "mean": float(values[c].mean()), "max": float(values[c].max())}
             for c, typ, _, _ in cols if typ != "STRING" and values[c].notna().any()}
    meta = {"buildings": len(values), "columns": dg.MetadataValue.json(
                [{"column": c, "type": typ, "unit": u, "description": d} for c, typ, u, d in cols]),
            "coverage": _json_meta(coverage), "statistics": _json_meta(stats), "seconds": t["seconds"],
            "path": dg.MetadataValue.path(str(path))}
    return dg.MaterializeResult(metadata=meta, check_results=[
        dg.AssetCheckResult(asset_key=BUILDING_VALUES_KEY, check_name="one_row_per_building",
                            passed=dup == 0 and len(values) <= n_model,
                            metadata={"duplicates": dup, "rows": len(values), "buildings_in_model": n_model}),
        dg.AssetCheckResult(asset_key=BUILDING_VALUES_KEY, check_name="layers_cover_buildings", passed=not gaps,
                            severity=dg.AssetCheckSeverity.WARN, metadata={"partial": _json_meta(gaps)})])


analysis_assets = [sun_hours, solar, sightlines, noise, flood, traffic_change, building_values]


# ================================================================================== release
def _mosaic(paths: list[Path], out: Path) -> Path | None:
    """Merge tile GeoTIFFs (same grid spacing, no overlap) into one, atomically; tags of the first."""
    import rasterio
    from rasterio.merge import merge

    from citymodel.raster import write_geotiff

    paths = [p for p in paths if p.exists()]
    if not paths:
        return None
    srcs = [rasterio.open(p) for p in paths]
    try:
        arr, transform = merge(srcs, nodata=srcs[0].nodata)
        tags = srcs[0].tags()
        desc = list(srcs[0].descriptions) if any(srcs[0].descriptions) else None
        crs = srcs[0].crs.to_wkt() if srcs[0].crs else None
        nodata = srcs[0].nodata
    finally:
        for r in srcs:
            r.close()
    return write_geotiff(out, arr, transform=transform, crs=crs, nodata=nodata, tags=tags, band_descriptions=desc)


def _concat_tiles(settings: Settings, layer: str, part: str):
    import geopandas as gpd

    frames = [gpd.read_parquet(p) for t in settings.tile_ids
              if (p := tile_files(settings, layer, t)[part]).exists()]
    frames = [f for f in frames if len(f)]
    if not frames:
        return None
    if all(isinstance(f, gpd.GeoDataFrame) for f in frames):
        return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=frames[0].crs)
    return pd.concat([pd.DataFrame(f) for f in frames], ignore_index=True)


def add_analysis_to_release(builder, settings: Settings) -> list[str]:
    """Add the analysis layers to an open :class:`citymodel.release.ReleaseBuilder`.

    Writes ``data/analysis/<layer>.{tif,gpkg,parquet,csv}`` (tiles merged into one file per layer)
    and returns the release paths written. Layers not computed are left out.
    """
    import geopandas as gpd

    from citymodel.release import write_geopackage, write_geoparquet

    written: list[str] = []
    tiles = settings.tile_ids
    lic = {"sun_hours": "Sun hours", "solar": "Roof irradiation", "noise": "Road traffic noise (RLS-19)",
           "flood": "Flood exposure", "traffic_change": "Traffic change (noise difference)",
           "sightlines": "Sight lines and viewsheds", "building_values": "Analysis values per building"}

    def raster(layer, paths, name, title):
        rel = f"data/analysis/{name}.tif"
        if _mosaic(paths, builder.path(rel, dataset=f"analysis-{layer}", title=title,
                                       media_type="image/tiff; application=geotiff", format="GeoTIFF")) is None:
            raise dataset_error(SourceDataError, f"analysis/{layer}", f"no tile rasters for {rel}",
                                f"materialize analysis/{layer}")
        written.append(rel)

    def vector(layer, frame, name, title, gpkg=True):
        if frame is None or not len(frame):
            return
        if isinstance(frame, gpd.GeoDataFrame):
            write_geoparquet(frame, builder.path(f"data/analysis/{name}.parquet", dataset=f"analysis-{layer}",
                                                 title=f"{title} (GeoParquet)",
                                                 media_type="application/vnd.apache.parquet", format="Parquet"))
            written.append(f"data/analysis/{name}.parquet")
            if gpkg:
                out = frame.copy()
                write_geopackage(out, builder.path(f"data/analysis/{name}.gpkg", dataset=f"analysis-{layer}",
                                                   title=f"{title} (GeoPackage)",
                                                   media_type="application/geopackage+sqlite3", format="GPKG"),
                                 layer=name)
                written.append(f"data/analysis/{name}.gpkg")
        else:
            p = builder.path(f"data/analysis/{name}.csv", dataset=f"analysis-{layer}", title=f"{title} (CSV)",
                             media_type="text/csv", format="CSV")
            frame.to_csv(p, index=False)
            written.append(f"data/analysis/{name}.csv")

    sh = [tile_files(settings, "sun_hours", t)["raster"] for t in tiles]
    if any(p.exists() for p in sh):
        raster("sun_hours", sh, "sun_hours", "Hours of direct sun on the ground per day (GeoTIFF)")
        vector("sun_hours", _concat_tiles(settings, "sun_hours", "facades"), "facade_sun_hours",
               "Hours of direct sun per facade wall and storey")
        vector("sun_hours", _concat_tiles(settings, "sun_hours", "din17037"), "din17037",
               "DIN EN 17037 sunlight exposure per building")
    vector("solar", _concat_tiles(settings, "solar", "roofs"), "solar", lic["solar"] + " per roof surface")
    nz = [tile_files(settings, "noise", t)["raster"] for t in tiles]
    if any(p.exists() for p in nz):
        raster("noise", nz, "noise", "Road traffic noise LrT/LrN, RLS-19 (GeoTIFF)")
        iso = [gpd.read_file(p) for t in tiles if (p := tile_files(settings, "noise", t)["isophones"]).exists()]
        iso = [i for i in iso if len(i)]
        if iso:
            merged = gpd.GeoDataFrame(pd.concat(iso, ignore_index=True), crs=iso[0].crs)
            merged = merged.dissolve(by=["indicator", "band_lo_db", "band_hi_db", "label", "method"],
                                     as_index=False)
            vector("noise", merged, "noise_isophones", "Isophones LrT/LrN (RLS-19)", gpkg=True)
        vector("noise", _concat_tiles(settings, "noise", "facades"), "noise_facades",
               "Facade levels per wall and storey (RLS-19)")
        ex = [pd.read_csv(p).assign(tile_id=t) for t in tiles
              if (p := tile_files(settings, "noise", t)["exposure"]).exists()]
        if ex:
            e = pd.concat(ex, ignore_index=True)
            e = e.groupby(["indicator", "band_lo_db", "band_hi_db", "method"], as_index=False)[
                ["residents", "buildings"]].sum()
            vector("noise", e, "noise_exposure", "Residents per noise band (estimated)")
    scen = sorted({p.stem[len(t) + 1:] for t in tiles for p in analysis_dir(settings, "flood").glob(f"{t}_*.tif")})
    for sc in scen:
        raster("flood", [flood_raster_path(settings, t, sc) for t in tiles], f"flood_depth_{sc}",
               f"Water depth {sc} (GeoTIFF)")
    if scen:
        vector("flood", _concat_tiles(settings, "flood", "buildings"), "flood", lic["flood"] + " per building")
        sm = [pd.read_csv(p) for t in tiles if (p := tile_files(settings, "flood", t)["summary"]).exists()]
        if sm:
            s_ = pd.concat(sm, ignore_index=True).groupby(["scenario", "method", "floor_offset_m"], as_index=False)[
                ["buildings_affected", "ground_floors_flooded", "flooded_area_m2"]].sum()
            vector("flood", s_, "flood_summary", "Flood exposure per scenario")
    tc = [tile_files(settings, "traffic_change", t)["raster"] for t in tiles]
    if any(p.exists() for p in tc):
        raster("traffic_change", tc, "traffic_change", "Noise difference of the traffic change (GeoTIFF)")
    d = analysis_dir(settings, "sightlines")
    if (d / "sightlines.parquet").exists():
        vector("sightlines", gpd.read_parquet(d / "sightlines.parquet"), "sightlines", lic["sightlines"])
        for p in sorted(d.glob("viewshed_*.tif")):
            builder.add_file(p, f"data/analysis/{p.name}", dataset="analysis-sightlines",
                             title=f"Viewshed {p.stem.removeprefix('viewshed_')} (GeoTIFF)",
                             media_type="image/tiff; application=geotiff", format="GeoTIFF")
            written.append(f"data/analysis/{p.name}")
    bv = building_values_path(settings)
    if bv.exists():
        for suffix, media, fmt in ((".parquet", "application/vnd.apache.parquet", "Parquet"),
                                   (".gpkg", "application/geopackage+sqlite3", "GPKG"), (".csv", "text/csv", "CSV")):
            if bv.with_suffix(suffix).exists():
                builder.add_file(bv.with_suffix(suffix), f"data/analysis/building_values{suffix}",
                                 dataset="analysis-building-values", title=lic["building_values"],
                                 media_type=media, format=fmt)
                written.append(f"data/analysis/building_values{suffix}")
    return written
