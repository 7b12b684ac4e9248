"""Where the city's data lives, and the city's content for an area.

:class:`CityStore` is the one place that knows the paths of what staging and the reconstruction write
(staged GeoParquet per role, the staged weather year, the DTM GeoTIFF per tile, the buildings' CityJSONSeq and attribute table
per tile) and returns that content for an area: buildings (solids and attributes together, as a
:class:`~citymodel.citydata.BuildingSet`), trees, terrain, roads, flood zones and viewpoints. The
city's tile assets and the variant assets read through it (a variant's store is this store with the
variant's changes applied), so both hand the analysis layers the same kind of input.

Nothing here imports dagster.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from .citydata import Bounds, BuildingSet, CityArea, grow, overlaps
from .config import Settings
from .errors import SourceDataError, dataset_error

ROLE_TABLES = ("buildings", "trees", "roads", "flood_zones", "viewpoints")


# ================================================================================ paths
def buildings_dir(settings: Settings) -> Path:
    """``<output_dir>/buildings``: the reconstruction's outputs."""
    return settings.output_dir / "buildings"


def building_tile_paths(settings: Settings, tile_id: str) -> tuple[Path, Path]:
    """The reconstruction of one tile: CityJSONSeq (solids) and GeoParquet (one row per building)."""
    d = buildings_dir(settings) / "tiles"
    return d / f"{tile_id}.city.jsonl", d / f"{tile_id}.parquet"


def lidar_paths(settings: Settings, tile_id: str) -> tuple[Path, Path, Path]:
    """The staged LiDAR of one tile: points (tile + halo, LAS or LAZ), DTM GeoTIFF, statistics JSON."""
    d = settings.staging_dir / "lidar"
    ext = settings.lidar.staged_format
    return d / f"{tile_id}.{ext}", d / f"dtm_{tile_id}.tif", d / f"{tile_id}.stats.json"


def staged_table_path(settings: Settings, role: str) -> Path:
    """The staged GeoParquet of a vector role."""
    return settings.staging_dir / f"{role}.parquet"


def staged_weather_path(settings: Settings) -> Path:
    """The staged hourly weather year (Parquet; its metadata in the pandas attrs)."""
    return settings.staging_dir / "weather.parquet"


def analysis_dir(settings: Settings, layer: str | None = None) -> Path:
    """``<output_dir>/analysis`` or one layer's folder in it."""
    d = settings.output_dir / "analysis"
    return d / layer if layer else d


#: the files one tile of an analysis layer writes: part -> name pattern (stable: the release, the
#: building values, the 3D Tiles and the variants read them)
ANALYSIS_TILE_FILES = {
    "sun_hours": {"raster": "{tile}.tif", "facades": "{tile}_facades.parquet", "din17037": "{tile}_din17037.parquet"},
    "solar": {"roofs": "{tile}.parquet", "roofs_gpkg": "{tile}.gpkg"},
    "noise": {"raster": "{tile}.tif", "isophones": "{tile}_isophones.gpkg", "facades": "{tile}_facades.parquet",
              "buildings": "{tile}_buildings.parquet", "exposure": "{tile}_exposure.csv"},
    "flood": {"buildings": "{tile}_buildings.parquet", "summary": "{tile}_summary.csv"},
    "traffic_change": {"raster": "{tile}.tif", "buildings": "{tile}_buildings.parquet", "summary": "{tile}_summary.json"},
}


def analysis_tile_files(settings: Settings, layer: str, tile_id: str, root: Path | None = None) -> dict[str, Path]:
    """The files one tile of a layer writes, below ``root`` (default ``<output_dir>/analysis``)."""
    d = (analysis_dir(settings) if root is None else Path(root)) / layer
    return {k: d / v.format(tile=tile_id) for k, v in ANALYSIS_TILE_FILES[layer].items()}


def flood_raster_path(settings: Settings, tile_id: str, scenario: str, root: Path | None = None) -> Path:
    """The water depth raster of one tile and scenario."""
    d = (analysis_dir(settings) if root is None else Path(root)) / "flood"
    return d / f"{tile_id}_{scenario}.tif"


# ================================================================================ the store
class CityStore:
    """The city as it is: its staged and reconstructed data, for any area.

    Reads lazily and keeps what it read (one store per asset run): build a new one after the data
    changed.
    """

    def __init__(self, settings: Settings):
        self.settings = settings
        self.crs = settings.processing_crs

    # ----------------------------------------------------------------------------- names
    def dataset(self, role: str) -> str:
        """The catalog dataset of a role (for messages), or the role."""
        src = self.settings.source(role)
        return src.dataset if src is not None else role

    @property
    def datasets(self) -> dict[str, str]:
        return {r: self.dataset(r) for r in (*ROLE_TABLES, "lidar", "dtm")}

    @property
    def tile_ids(self) -> list[str]:
        return self.settings.tile_ids

    def tiles_near(self, bounds: Sequence[float], margin_m: float = 0.0) -> list[str]:
        """The configured tiles that overlap ``bounds`` grown by ``margin_m``."""
        b = grow(bounds, margin_m)
        return [t.id for t in self.settings.tiles if overlaps(t.bounds, b)]

    # --------------------------------------------------------------------------- buildings
    def building_table(self, tiles: Iterable[str] | None = None):
        """The reconstruction's attribute rows (footprint geometry) of some tiles (default: all)."""
        import geopandas as gpd

        tiles = self.tile_ids if tiles is None else list(tiles)
        frames = [gpd.read_parquet(p) for t in tiles if (p := building_tile_paths(self.settings, t)[1]).exists()]
        frames = [f for f in frames if len(f)]
        if not frames:
            return gpd.GeoDataFrame({"building_id": pd.Series([], dtype=str), "tile_id": pd.Series([], dtype=str)},
                                    geometry=[], crs=self.crs)
        return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=frames[0].crs)

    def load_records(self, tiles: Iterable[str]) -> dict:
        """``building_id -> CityBuilding`` read from the CityJSONSeq of some tiles."""
        from .cityjson import read_cityjson

        out = {}
        for t in tiles:
            p = building_tile_paths(self.settings, t)[0]
            if p.exists():
                for b in read_cityjson(p, dataset="buildings").buildings:
                    out[str(b.id)] = b
        return out

    @cached_property
    def _all_buildings(self) -> BuildingSet:
        table = self.building_table()
        tile_of = dict(zip(table["building_id"].astype(str), table["tile_id"].astype(str))) if len(table) else {}
        cache: dict = {}
        read_tiles: set[str] = set()

        def loader(ids):
            need = sorted({tile_of[i] for i in ids if i in tile_of} - read_tiles)
            cache.update(self.load_records(need))
            read_tiles.update(need)
            return {i: cache[i] for i in ids if i in cache}

        return BuildingSet(table, loader=loader)

    def buildings(self, bounds: Sequence[float] | None = None) -> BuildingSet:
        """The reconstructed buildings whose footprint overlaps ``bounds`` (default: all)."""
        b = self._all_buildings
        return b if bounds is None else b.within(bounds)

    # ---------------------------------------------------------------------------- tables
    def _table(self, role: str):
        import geopandas as gpd

        p = staged_table_path(self.settings, role)
        return gpd.read_parquet(p) if p.exists() else None

    @cached_property
    def _trees(self):
        return self._table("trees")

    @cached_property
    def _roads(self):
        return self._table("roads")

    def trees(self, bounds: Sequence[float] | None = None):
        """Staged trees (points) inside ``bounds`` (default: all); None where trees are not staged."""
        return clip_points(self._trees, bounds)

    def roads(self, bounds: Sequence[float] | None = None, distance_m: float = 0.0):
        """Staged roads within ``distance_m`` of ``bounds`` (default: all); None where not staged."""
        import shapely

        roads = self._roads
        if roads is None or bounds is None or not len(roads):
            return roads
        near = shapely.dwithin(np.asarray(roads.geometry.values, dtype=object), shapely.box(*bounds), distance_m)
        return roads[near].reset_index(drop=True)

    def flood_zones(self):
        return self._table("flood_zones")

    def viewpoints(self):
        return self._table("viewpoints")

    def weather(self):
        """The staged hourly weather year (:class:`citymodel.analysis.climate.WeatherData`), or None
        where none is staged."""
        from .analysis.climate import WeatherData

        p = staged_weather_path(self.settings)
        return WeatherData.from_table(pd.read_parquet(p)) if p.exists() else None

    # ----------------------------------------------------------------------------- terrain
    def tile_dtm(self, tile_id: str):
        """The staged DTM GeoTIFF of one tile (with its halo) as a Raster, or None where not staged."""
        from .raster import read_geotiff

        p = lidar_paths(self.settings, tile_id)[1]
        return read_geotiff(p, dataset="dtm") if p.exists() else None

    def dtm_paths(self) -> list[Path]:
        return [p for t in self.tile_ids if (p := lidar_paths(self.settings, t)[1]).exists()]

    def terrain(self, bounds: Sequence[float], cell_m: float):
        """The staged DTM tiles resampled (nearest cell) onto one grid over ``bounds``.

        Cells no DTM covers take the nearest covered cell's height (the terrain beyond the LiDAR is
        extended flat); ``raster.tags['filled_share']`` says how much. A :class:`citymodel.raster.Raster`.

        Raises
        ------
        SourceDataError
            No staged DTM covers any part of ``bounds`` (dataset ``dtm``).
        """
        return terrain_raster(self.dtm_paths(), bounds, cell_m)

    # ------------------------------------------------------------------------------ areas
    def area(self, bounds: Sequence[float], *, margin_m: float, terrain_cell_m: float,
             roads_distance_m: float | None = None, terrain_margin_m: float | None = None,
             include: Sequence[str] = ()) -> CityArea:
        """See :func:`area_of`."""
        return area_of(self, bounds, margin_m=margin_m, terrain_cell_m=terrain_cell_m,
                       roads_distance_m=roads_distance_m, terrain_margin_m=terrain_margin_m, include=include)


def area_of(store, bounds: Sequence[float], *, margin_m: float, terrain_cell_m: float,
            roads_distance_m: float | None = None, terrain_margin_m: float | None = None,
            include: Sequence[str] = ()) -> CityArea:
    """What an analysis of ``bounds`` reads from a store (the city's or a variant's): buildings,
    trees and terrain up to ``margin_m`` beyond it (and the buildings ``include`` names, wherever
    they are), roads within ``roads_distance_m`` (None: no roads), flood zones and viewpoints."""
    outer = grow(bounds, margin_m)
    buildings = store.buildings(outer)
    missing = sorted(set(map(str, include)) - set(buildings.ids))
    if missing:
        buildings = buildings.concat(store.buildings().select(missing))
    return CityArea(
        bounds=tuple(float(v) for v in bounds), buildings=buildings,
        terrain=store.terrain(grow(bounds, margin_m if terrain_margin_m is None else terrain_margin_m), terrain_cell_m),
        trees=store.trees(outer),
        roads=store.roads(bounds, roads_distance_m) if roads_distance_m is not None else None,
        flood_zones=store.flood_zones(), viewpoints=store.viewpoints(), crs=store.crs, datasets=store.datasets)


def clip_points(frame, bounds: Sequence[float] | None):
    """The rows of a point table inside ``bounds`` (edges included); None and empty pass through."""
    if frame is None or not len(frame) or bounds is None:
        return frame
    x, y = frame.geometry.x.to_numpy(), frame.geometry.y.to_numpy()
    return frame[(x >= bounds[0]) & (x <= bounds[2]) & (y >= bounds[1]) & (y <= bounds[3])]


def terrain_raster(dtm_paths: Sequence[Path], bounds: Sequence[float], cell_m: float):
    """DTM GeoTIFFs resampled (nearest cell) onto one grid over ``bounds``; see :meth:`CityStore.terrain`."""
    from affine import Affine
    from scipy.ndimage import distance_transform_edt

    from .dtm import DtmMosaic
    from .raster import Raster

    x0 = np.floor(bounds[0] / cell_m) * cell_m
    y1 = np.ceil(bounds[3] / cell_m) * cell_m
    cols = max(2, int(np.ceil((bounds[2] - x0) / cell_m)))
    rows = max(2, int(np.ceil((y1 - bounds[1]) / cell_m)))
    xs = x0 + (np.arange(cols) + 0.5) * cell_m
    ys = y1 - (np.arange(rows) + 0.5) * cell_m
    X, Y = np.meshgrid(xs, ys)
    z = DtmMosaic(dtm_paths)(X.ravel(), Y.ravel()).reshape(rows, cols) if dtm_paths else np.full((rows, cols), np.nan)
    bad = ~np.isfinite(z)
    if bad.all():
        raise dataset_error(SourceDataError, "dtm", f"no staged DTM covers {tuple(round(v) for v in bounds)}",
                            "materialize staging/dtm for the tiles of the extent (sources.lidar must cover them)")
    if bad.any():
        idx = distance_transform_edt(bad, return_distances=False, return_indices=True)
        z = z[tuple(idx)]
    return Raster(z, Affine(cell_m, 0.0, x0, 0.0, -cell_m, y1), None, None,
                  tags={"filled_share": f"{bad.mean():.4f}"})


def analysis_bounds(settings: Settings, tile_id: str) -> Bounds | None:
    """``tile ∩ extent`` (None where they do not overlap)."""
    t = settings.tile(tile_id).bounds
    e = settings.extent
    b = (max(t[0], e[0]), max(t[1], e[1]), min(t[2], e[2]), min(t[3], e[3]))
    return b if b[2] > b[0] and b[3] > b[1] else None
