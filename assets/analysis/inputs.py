"""What the analysis layers compute on: extents, terrain, buildings, trees, roads and the sun path.

Everything here reads staged or reconstructed data and assembles it for the core
(:mod:`citymodel.analysis`); nothing writes. A tile's layers are computed on ``tile ∩ extent``
(:func:`analysis_bounds`); :class:`SceneInputs` (ray casting: sun hours, solar) and
:class:`NoiseInputs` (RLS-19: noise, traffic change) gather what lies around it.
"""

import numpy as np
import pandas as pd

from citymodel.config import Settings
from citymodel.errors import SourceDataError, dataset_error

from ..buildings import load_building_table, load_tile_buildings, tile_outputs
from ..staging import point_cloud_paths
from .days import month_day


def analysis_bounds(settings: Settings, tile_id: str) -> tuple[float, float, float, float] | None:
    """``tile ∩ extent`` (None where they do not overlap)."""
    t = settings.tile(tile_id).bounds
    e = settings.extent
    b = (max(t[0], e[0]), max(t[1], e[1]), min(t[2], e[2]), min(t[3], e[3]))
    return b if b[2] > b[0] and b[3] > b[1] else None


def grow_bounds(bounds, margin: float) -> tuple[float, float, float, float]:
    """``bounds`` grown by ``margin`` on every side."""
    return (bounds[0] - margin, bounds[1] - margin, bounds[2] + margin, bounds[3] + margin)


def bounds_overlap(a, b) -> bool:
    """Whether two ``(minx, miny, maxx, maxy)`` overlap (touching is not overlapping)."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def neighbour_tiles(settings: Settings, tile_id: str, margin_m: float) -> list[str]:
    """The configured tiles within ``margin_m`` of a tile (the tile itself included)."""
    own = grow_bounds(settings.tile(tile_id).bounds, margin_m)
    return [t.id for t in settings.tiles if bounds_overlap(t.bounds, own)]


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


def solids_bounds(solids) -> tuple[float, float, float, float]:
    """2D ``(minx, miny, maxx, maxy)`` of some solids."""
    b = np.array([s.bounds for s in solids])
    return (b[:, 0].min(), b[:, 1].min(), b[:, 3].max(), b[:, 4].max())


def read_staged(settings: Settings, role: str):
    """The staged GeoParquet of a role, or None where the role is not staged."""
    import geopandas as gpd

    p = settings.staging_dir / f"{role}.parquet"
    return gpd.read_parquet(p) if p.exists() else None


def dataset_name(settings: Settings, role: str) -> str:
    """The configured dataset name of a role (the role itself where no source is configured)."""
    src = settings.source(role)
    return src.dataset if src is not None else role


def clip_points(frame, bounds):
    """The points of ``frame`` inside ``bounds`` (edges included); None or empty stays as it is."""
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
        self.scene_bounds = grow_bounds(self.bounds, a.scene_margin_m)
        own = building_solids(load_tile_buildings(settings, [tile_id]))
        others = building_solids(load_tile_buildings(
            settings, [t for t in neighbour_tiles(settings, tile_id, a.scene_margin_m) if t != tile_id]))
        near = {k: v for k, v in others.items() if k not in own and bounds_overlap(solids_bounds(v), self.scene_bounds)}
        self.own = own
        self.buildings = {**own, **near}
        self.trees = clip_points(read_staged(settings, "trees"), self.scene_bounds)
        self.terrain_raster = terrain_raster(settings, self.scene_bounds, a.terrain_cell_m)
        self.terrain = TerrainModel.from_raster(self.terrain_raster)
        self.scene = Scene.build(self.buildings, self.trees, self.terrain,
                                 crown_transmissivity=a.crown_transmissivity,
                                 terrain_step_m=a.terrain_cell_m, terrain_far_step_m=4 * a.terrain_cell_m)

    def counts(self) -> dict[str, int]:
        return {"buildings_assessed": len(self.own), "buildings_in_scene": len(self.buildings),
                "trees_in_scene": 0 if self.trees is None else len(self.trees)}


def ground_heights(settings: Settings, tile_id: str) -> dict[str, float]:
    """Building id -> ground height (m) of a tile's reconstructed buildings (where finite)."""
    import geopandas as gpd

    p = tile_outputs(settings, tile_id)[1]
    if not p.exists():
        return {}
    t = gpd.read_parquet(p)
    if "ground_height_m" not in t or not len(t):
        return {}
    g = pd.to_numeric(t["ground_height_m"], errors="coerce")
    return {str(b): float(v) for b, v in zip(t["building_id"], g) if np.isfinite(v)}


def extent_sun_path(settings: Settings, days: list[str], step_min: float):
    """The sun path (:func:`citymodel.analysis.sun.sun_path`) at the configured extent on ``days``
    (``'MM-DD'``) of ``analysis.year``."""
    from citymodel.analysis.sun import sun_path

    return sun_path(settings.extent, settings.processing_crs, dates=[month_day(d) for d in days],
                    step_min=step_min, tz=settings.timezone, year=settings.analysis.year)


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

    roads = read_staged(settings, "roads")
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
        self.roads_dataset = dataset_name(settings, "roads")
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
        self.dtm = terrain_raster(settings, grow_bounds(area, 250.0), settings.analysis.terrain_cell_m)

    def facade_receivers(self, settings: Settings):
        from citymodel.analysis.noise import facade_receivers

        return facade_receivers(self.own, storey_height_m=settings.analysis.storey_height_m, dtm=self.dtm)
