"""Analyse a variant: the city's results, recomputed only where the variant's changes reach.

:func:`assess_variant` reads the city's per-tile results (what the city's analysis assets wrote) and,
per tile and layer, recomputes with the variant's store (:class:`~citymodel.variants.model.VariantStore`)
only the cells, facades, roofs and receivers inside the layer's impact area
(:mod:`citymodel.variants.impact`); everything else is the city's result. With ``full=True`` every
value is recomputed for the variant: the result must be the same (tests/test_variant_impact.py), and
:attr:`VariantAnalysis.work` says what share of the city's analysis work the impact area needed.

The same layer functions (:mod:`citymodel.analysis.layers`) with the same parameters
(:mod:`citymodel.analysis.parameters`) compute the city and the variant.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import shapely

from ..analysis import layers as L
from ..analysis import parameters as P
from ..citydata import BuildingSet
from ..store import analysis_bounds, analysis_tile_files, flood_raster_path, lidar_paths
from .impact import ImpactAreas, impact_areas

SUN_KEYS = ["building_id", "surface_index", "storey"]


@dataclass
class SunTile:
    hours: np.ndarray          # (days, rows, cols) ground sun hours, NaN under roofs
    base_hours: np.ndarray
    transform: Any
    walls: pd.DataFrame        # facade sun hours per wall and storey
    din: pd.DataFrame          # DIN EN 17037 per building
    recomputed_cells: int = 0
    recomputed_buildings: list[str] = field(default_factory=list)


@dataclass
class NoiseTile:
    lrt: np.ndarray
    lrn: np.ndarray
    base_lrt: np.ndarray
    base_lrn: np.ndarray
    transform: Any
    facades: pd.DataFrame
    per_building: pd.DataFrame
    exposure: pd.DataFrame
    recomputed_cells: int = 0
    recomputed_buildings: list[str] = field(default_factory=list)


@dataclass
class VariantAnalysis:
    """A variant's analysis results (merged with the city's where unchanged)."""

    sun: dict[str, SunTile] = field(default_factory=dict)
    solar: dict[str, Any] = field(default_factory=dict)          # tile -> roofs GeoDataFrame
    noise: dict[str, NoiseTile] = field(default_factory=dict)
    flood: pd.DataFrame | None = None                             # per building and scenario
    sightlines: Any = None                                        # lines GeoDataFrame (or None)
    viewsheds: dict[str, dict] = field(default_factory=dict)      # observer -> {visible_area_m2, ...}
    impact: ImpactAreas | None = None
    work: dict[str, dict[str, int]] = field(default_factory=dict)  # layer -> {recomputed, total}
    seconds: dict[str, float] = field(default_factory=dict)
    full: bool = False

    def work_share(self) -> dict[str, float]:
        """Recomputed ÷ total units per layer (cells, facades, roofs, receivers), and overall."""
        out = {k: (v["recomputed"] / v["total"] if v["total"] else 0.0) for k, v in self.work.items()}
        tot = sum(v["total"] for v in self.work.values())
        out["all"] = sum(v["recomputed"] for v in self.work.values()) / tot if tot else 0.0
        return out


# =============================================================================== helpers
def _cell_mask(region, transform, shape) -> np.ndarray:
    """Cells of a north-up grid whose centre lies in ``region``."""
    rows, cols = shape
    if region is None or region.is_empty:
        return np.zeros(shape, dtype=bool)
    xs = transform.c + (np.arange(cols) + 0.5) * transform.a
    ys = transform.f + (np.arange(rows) + 0.5) * transform.e
    X, Y = np.meshgrid(xs, ys)
    return shapely.contains_xy(region, X, Y)


def _ids_touching(buildings: BuildingSet, region, buffer_m: float = 1.0) -> list[str]:
    if region is None or region.is_empty or not len(buildings):
        return []
    geoms = np.asarray(buildings.table.geometry.values, dtype=object)
    hit = shapely.intersects(shapely.buffer(geoms, buffer_m), region)
    return [i for i, h in zip(buildings.ids, hit) if h]


def _read_parquet(path):
    import geopandas as gpd

    if not path.exists():
        return None
    try:
        return gpd.read_parquet(path)
    except ValueError:
        return pd.read_parquet(path)


def _read_raster(path):
    from ..raster import read_geotiff

    r = read_geotiff(path, dataset="analysis")
    arr = r.array if r.array.ndim == 3 else r.array[None]
    arr = arr.astype(np.float64)
    if r.nodata is not None and np.isfinite(r.nodata):
        arr[arr == r.nodata] = np.nan
    return arr, r.transform


def _replace_rows(base: pd.DataFrame | None, new: pd.DataFrame, drop_ids) -> pd.DataFrame:
    """``base`` without the rows of ``drop_ids``, plus ``new`` (sorted by building id for a stable order)."""
    parts = []
    if base is not None and len(base):
        parts.append(base[~base["building_id"].astype(str).isin(set(drop_ids))])
    if new is not None and len(new):
        parts.append(new)
    if not parts:
        return new if new is not None else pd.DataFrame()
    out = pd.concat(parts, ignore_index=True)
    keys = [k for k in SUN_KEYS if k in out]
    return out.sort_values(keys, kind="stable").reset_index(drop=True) if keys else out


def _sun_directions(*paths) -> np.ndarray:
    vs = [p.vectors[p.elevation_deg > 0] for p in paths]
    return np.concatenate(vs) if vs else np.zeros((0, 3))


# =============================================================================== the layers
def _assess_sun(settings, vstore, tile, bounds, region, changed_here, full, sun, scene_p, facade_p, out):
    files = analysis_tile_files(settings, "sun_hours", tile)
    base_hours, transform = _read_raster(files["raster"])
    base_walls = _read_parquet(files["facades"])
    base_din = _read_parquet(files["din17037"])
    gone = set(vstore.removed_ids) | set(vstore.modified_ids)
    mine = vstore.buildings().in_tiles([tile])
    mask = np.ones(base_hours.shape[1:], dtype=bool) if full else _cell_mask(region, transform, base_hours.shape[1:])
    ids = mine.ids if full else sorted(set(_ids_touching(mine, region)) | (set(changed_here) & set(mine.ids)))
    walls = base_walls.drop(columns="geometry", errors="ignore") if base_walls is not None else None
    din = base_din.drop(columns="geometry", errors="ignore") if base_din is not None else None
    hours = base_hours.copy()
    if mask.any() or ids:
        area = L.scene_area(vstore, bounds, margin_m=settings.analysis.scene_margin_m,
                            terrain_cell_m=settings.analysis.terrain_cell_m)
        scene = L.build_scene(area, scene_p)
        try:
            if mask.any():
                from ..analysis.shadow import sun_hours_ground

                g = sun_hours_ground(scene, sun, bounds, settings.analysis.sun.cell_m, cells=mask)
                hours[:, mask] = g.hours[:, mask]
            if ids:
                fs = L.facade_sun(area, sun, ids, facade_p, scene=scene)
                walls = _replace_rows(walls, fs.walls, set(ids) | gone)
                din = _replace_rows(din, fs.din, set(ids) | gone)
        finally:
            scene.close()
    walls = _replace_rows(walls, None, gone - set(ids))
    din = _replace_rows(din, None, gone - set(ids))
    out.sun[tile] = SunTile(hours, base_hours, transform, walls, din, int(mask.sum()), ids)
    w = out.work.setdefault("sun_hours", {"recomputed": 0, "total": 0})
    w["recomputed"] += int(mask.sum()) + len(ids)
    w["total"] += int(mask.size) + len(mine)


def _assess_solar(settings, vstore, tile, bounds, region, changed_here, full, sky, scene_p, solar_p, out):
    files = analysis_tile_files(settings, "solar", tile)
    base = _read_parquet(files["roofs"])
    gone = set(vstore.removed_ids) | set(vstore.modified_ids)
    mine = vstore.buildings().in_tiles([tile])
    ids = mine.ids if full else sorted(set(_ids_touching(mine, region)) | (set(changed_here) & set(mine.ids)))
    roofs = base
    if ids:
        area = L.scene_area(vstore, bounds, margin_m=settings.analysis.scene_margin_m,
                            terrain_cell_m=settings.analysis.terrain_cell_m)
        new = L.roof_irradiation(area, sky, ids, solar_p, scene_params=scene_p)
        new.attrs = {}
        new["tile_id"] = tile
        roofs = _replace_rows(base, new, set(ids) | gone)
    else:
        roofs = _replace_rows(base, None, gone)
    out.solar[tile] = roofs
    w = out.work.setdefault("solar", {"recomputed": 0, "total": 0})
    w["recomputed"] += len(ids)
    w["total"] += len(mine)


def _assess_noise(settings, vstore, tile, bounds, region, changed_here, full, noise_p, out):
    from ..analysis.noise import building_max_levels, exposure_by_band

    files = analysis_tile_files(settings, "noise", tile)
    if not files["raster"].exists():
        return
    (base_lrt, base_lrn), transform = (lambda a: ((a[0][0], a[0][1]), a[1]))(_read_raster(files["raster"]))
    base_fac = _read_parquet(files["facades"])
    base_fac = base_fac.drop(columns="geometry", errors="ignore") if base_fac is not None else None
    gone = set(vstore.removed_ids) | set(vstore.modified_ids)
    mine = vstore.buildings().in_tiles([tile])
    mask = np.ones(base_lrt.shape, dtype=bool) if full else _cell_mask(region, transform, base_lrt.shape)
    ids = mine.ids if full else sorted(set(_ids_touching(mine, region)) | (set(changed_here) & set(mine.ids)))
    lrt, lrn = base_lrt.copy(), base_lrn.copy()
    fac = base_fac
    area = L.noise_area(vstore, bounds, max_distance_m=noise_p.max_distance_m,
                        terrain_cell_m=settings.analysis.terrain_cell_m)
    got = L.noise_inputs(area, noise_p, mine.ids)
    if got is not None and (mask.any() or ids):
        from ..analysis.noise import facade_levels, noise_grid

        emissions, blocks, assessed = got
        prop = noise_p.propagation()
        if mask.any():
            g = noise_grid(emissions, bounds, blocks, area.terrain, prop, cells=mask)
            # the city's grid is stored as float32 GeoTIFF: recomputed cells at the same precision
            lrt[mask] = g.lrt_db[mask].astype(np.float32)
            lrn[mask] = g.lrn_db[mask].astype(np.float32)
        if ids:
            sel = assessed[assessed["building_id"].astype(str).isin(set(ids))].reset_index(drop=True)
            rec = L.facade_receivers_of(sel, area, noise_p)
            new = facade_levels(emissions, rec, blocks, area.terrain, prop) if len(rec) else \
                rec.assign(lrt_db=[], lrn_db=[], method=[])
            new = new.assign(lrt_db=new["lrt_db"].astype(float), lrn_db=new["lrn_db"].astype(float))
            fac = _replace_rows(base_fac, new, set(ids) | gone)
    fac = _replace_rows(fac, None, gone - set(ids))
    per_b = building_max_levels(fac) if fac is not None and len(fac) else \
        pd.DataFrame(columns=["building_id", "lrt_max_db", "lrn_max_db", "method"])
    blocks_mine = mine.screening_blocks(noise_p.building_height)
    expo = exposure_by_band(per_b, blocks_mine)
    out.noise[tile] = NoiseTile(lrt, lrn, base_lrt, base_lrn, transform, fac, per_b, expo, int(mask.sum()), ids)
    w = out.work.setdefault("noise", {"recomputed": 0, "total": 0})
    w["recomputed"] += int(mask.sum()) + len(ids)
    w["total"] += int(mask.size) + len(mine)


def _assess_flood(settings, vstore, tiles, changed_ids, full, flood_p, out):
    from ..raster import read_geotiff

    zones = vstore.flood_zones()
    frames = []
    gone = set(vstore.removed_ids) | set(vstore.modified_ids)
    total = recomputed = 0
    for tile in tiles:
        p = analysis_tile_files(settings, "flood", tile)["buildings"]
        base = _read_parquet(p)
        mine = vstore.buildings().in_tiles([tile])
        total += len(mine)
        ids = mine.ids if full else [i for i in changed_ids if i in set(mine.ids)]
        new = None
        if ids and zones is not None and len(zones) and lidar_paths(settings, tile)[1].exists():
            dtm = read_geotiff(lidar_paths(settings, tile)[1], dataset="dtm")
            _, new, _ = L.flood(zones, dtm, mine.select(ids), flood_p, dataset=vstore.dataset("flood_zones"))
            new = new.assign(tile_id=tile) if len(new) else new
            recomputed += len(ids)
        b = base.drop(columns="geometry", errors="ignore") if base is not None else None
        frames.append(_replace_rows(b, new, set(ids) | gone))
    frames = [f for f in frames if f is not None and len(f)]
    out.flood = pd.concat(frames, ignore_index=True) if frames else None
    out.work["flood"] = {"recomputed": recomputed, "total": total}


def _assess_sightlines(settings, vstore, impact, full, out):
    import json

    from ..analysis.sightlines import VISIBLE, sight_lines, viewpoint_pairs, viewshed
    from ..store import analysis_dir

    d = analysis_dir(settings, "sightlines")
    base = _read_parquet(d / "sightlines.parquet")
    vp = vstore.viewpoints()
    if base is None or vp is None or not len(vp):
        return
    sp = P.sightline_parameters(settings)
    objs = impact.sightline_objects if impact is not None else []
    changed = shapely.union_all([o.footprint for o in objs]) if objs else None
    lines = base.copy()
    redo_lines = np.ones(len(lines), dtype=bool) if full else (
        shapely.intersects(shapely.buffer(np.asarray(lines.geometry.values, dtype=object), 1.0), changed)
        if changed is not None else np.zeros(len(lines), dtype=bool))
    observers = vp[vp["kind"].astype(str) == "observer"]
    base_sheds = json.loads((d / "viewsheds.json").read_text(encoding="utf-8")) if (d / "viewsheds.json").exists() else {}
    redo_sheds = [str(o.viewpoint_id) for o in observers.itertuples()
                  if full or (changed is not None and o.geometry.buffer(sp.viewshed_radius_m).intersects(changed))]
    sheds = dict(base_sheds)
    if redo_lines.any() or redo_sheds:
        area = L.sightline_area(vstore, vp, radius_m=sp.viewshed_radius_m, margin_m=settings.analysis.scene_margin_m,
                                terrain_cell_m=settings.analysis.terrain_cell_m)
        scene = L.build_scene(area, P.sightline_scene_parameters(settings))
        try:
            if redo_lines.any():
                eyes, targets, ids = viewpoint_pairs(vp, scene.terrain.height)
                keys = list(zip(lines["observer_id"].astype(str), lines["target_id"].astype(str)))
                want = {k for k, r in zip(keys, redo_lines) if r}
                pick = [i for i, k in enumerate(ids) if (str(k[0]), str(k[1])) in want]
                new = sight_lines(scene, eyes[pick], targets[pick], ids=[ids[i] for i in pick],
                                  target_tolerance_m=sp.target_tolerance_m, crowns_block=sp.crowns_block)
                by_key = {(str(r.observer_id), str(r.target_id)): r for r in new.itertuples()}
                for i, k in enumerate(keys):
                    if k in by_key:
                        r = by_key[k]
                        blk = json.dumps(list(r.blocked_by_buildings))
                        lines.loc[lines.index[i], ["visible", "blocked_by_terrain", "blocked_by_trees"]] = \
                            [bool(r.visible), bool(r.blocked_by_terrain), bool(r.blocked_by_trees)]
                        lines.loc[lines.index[i], "blocked_by_buildings"] = blk
                        lines.loc[lines.index[i], "n_blocking_buildings"] = len(json.loads(blk))
            for o in observers.itertuples():
                if str(o.viewpoint_id) not in redo_sheds:
                    continue
                eh = float(o.eye_height_m) if o.eye_height_m is not None and np.isfinite(o.eye_height_m) else 1.6
                vs = viewshed(scene, (o.geometry.x, o.geometry.y), eye_height_m=eh, radius_m=sp.viewshed_radius_m,
                              cell_m=sp.viewshed_cell_m, target_height_m=sp.target_height_m,
                              target_tolerance_m=sp.target_tolerance_m, crowns_block=sp.crowns_block)
                sheds[str(o.viewpoint_id)] = {"visible_area_m2": vs.visible_area_m2,
                                              "visible_share": round(float((vs.visible == VISIBLE).sum()
                                                                           / max((vs.visible != 255).sum(), 1)), 4)}
        finally:
            scene.close()
    out.sightlines = lines
    out.viewsheds = sheds
    out.work["sightlines"] = {"recomputed": int(redo_lines.sum()) + len(redo_sheds),
                              "total": len(lines) + len(observers)}


# =============================================================================== the whole
def assess_variant(vstore, *, full: bool = False) -> VariantAnalysis:
    """The variant's analysis (see the module docstring).

    Parameters
    ----------
    vstore : citymodel.variants.model.VariantStore
        The variant over the city's store (whose results on disk are the base).
    full : bool
        Recompute everything (the reference the impact-limited result must equal).
    """
    settings = vstore.settings
    out = VariantAnalysis(full=full)
    t0 = time.perf_counter()
    sun = P.day_sun_path(settings)
    din = P.din17037_sun_path(settings)
    sky = P.solar_sky(settings)
    scene_p = P.scene_parameters(settings)
    facade_p = P.facade_sun_parameters(settings)
    solar_p = P.solar_parameters(settings)
    noise_p = P.noise_parameters(settings)
    tiles = [t for t in settings.tile_ids if analysis_bounds(settings, t) is not None]
    terr = vstore.base.terrain(settings.extent, 8.0)
    z_min = float(np.nanmin(terr.array)) - 1.0
    from ..analysis.solar import shading_directions

    impact = impact_areas(vstore, sun_directions=_sun_directions(sun, din),
                          solar_directions=shading_directions(sky, solar_p.sun_bin_deg), z_min=z_min,
                          noise_max_distance_m=noise_p.max_distance_m,
                          noise_reflection_distance_m=noise_p.reflection_distance_m if noise_p.reflection_order else 0.0)
    out.impact = impact
    out.seconds["impact"] = time.perf_counter() - t0
    changed = list(vstore.built)
    tile_of = dict(zip(vstore.changed_buildings.ids, vstore.changed_buildings.table["tile_id"].astype(str))) \
        if len(vstore.changed_buildings) else {}
    for tile in tiles:
        bounds = analysis_bounds(settings, tile)
        here = [i for i in changed if tile_of.get(i) == tile]
        t = time.perf_counter()
        if analysis_tile_files(settings, "sun_hours", tile)["raster"].exists():
            _assess_sun(settings, vstore, tile, bounds, impact.sun, here, full, sun, scene_p, facade_p, out)
        out.seconds["sun_hours"] = out.seconds.get("sun_hours", 0.0) + time.perf_counter() - t
        t = time.perf_counter()
        if analysis_tile_files(settings, "solar", tile)["roofs"].exists():
            _assess_solar(settings, vstore, tile, bounds, impact.solar, here, full, sky, scene_p, solar_p, out)
        out.seconds["solar"] = out.seconds.get("solar", 0.0) + time.perf_counter() - t
        t = time.perf_counter()
        _assess_noise(settings, vstore, tile, bounds, impact.noise, here, full, noise_p, out)
        out.seconds["noise"] = out.seconds.get("noise", 0.0) + time.perf_counter() - t
    t = time.perf_counter()
    _assess_flood(settings, vstore, tiles, impact.flood_buildings, full, P.flood_parameters(settings), out)
    out.seconds["flood"] = time.perf_counter() - t
    t = time.perf_counter()
    _assess_sightlines(settings, vstore, impact, full, out)
    out.seconds["sightlines"] = time.perf_counter() - t
    return out
