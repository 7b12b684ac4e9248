"""The city's content for an area, as the analysis layers take it: buildings (solids and attributes
together), trees, terrain, roads, flood zones and viewpoints.

:class:`BuildingSet` keeps each building's solids (the reconstruction's :class:`CityBuilding` records)
and its row of attributes (footprint, heights, function, tile) together, so that a layer that needs
3D solids (shading) and one that needs 2.5D blocks (noise screening) read the same buildings. Solids are
loaded on first use through a loader (the city's CityJSONSeq tiles are read only where a layer needs
them); a planning variant's new buildings carry theirs from the start.

:class:`CityArea` bundles what one analysis of an area reads. It is made by a store
(:class:`citymodel.store.CityStore` for the city as it is, :class:`citymodel.variants.store.VariantStore`
for a variant), and the layer functions of :mod:`citymodel.analysis.layers` take it.

Nothing here reads files on its own; nothing imports dagster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from .cityjson import CityBuilding
from .geometry3d import Solid

Bounds = tuple[float, float, float, float]

#: ``loader(ids) -> {id: CityBuilding}`` for the ids it knows
RecordLoader = Callable[[Sequence[str]], dict[str, CityBuilding]]


def lod_rank(key: str) -> float:
    """Order of LoD keys (``"1"`` < ``"2"`` < ``"2.2"``); unknown keys first."""
    try:
        return float(key)
    except ValueError:
        return -1.0


def building_solids(buildings: Iterable[CityBuilding]) -> dict[str, list[Solid]]:
    """Building id -> its solids (the highest LoD of the building and of each of its parts)."""
    out: dict[str, list[Solid]] = {}
    for b in buildings:
        solids = []
        for obj in [b, *b.parts]:
            if obj.solids:
                solids.append(obj.solids[max(obj.solids, key=lod_rank)])
        if solids:
            out[str(b.id)] = solids
    return out


def solids_bounds(solids: Sequence[Solid]) -> Bounds:
    """2D bounds ``(minx, miny, maxx, maxy)`` of some solids."""
    b = np.array([s.bounds for s in solids])
    return (float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 3].max()), float(b[:, 4].max()))


def grow(bounds: Sequence[float], margin_m: float) -> Bounds:
    return (bounds[0] - margin_m, bounds[1] - margin_m, bounds[2] + margin_m, bounds[3] + margin_m)


def overlaps(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether two 2D bounds overlap (touching edges do not)."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def union_bounds(*bounds: Sequence[float]) -> Bounds:
    b = np.array([list(x) for x in bounds], dtype=float)
    return (float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()), float(b[:, 3].max()))


class BuildingSet:
    """Buildings as solids and attributes together.

    Parameters
    ----------
    table : geopandas.GeoDataFrame
        One row per building: ``building_id`` (str), the footprint as geometry and the attributes
        of the reconstruction (``ground_height_m``, ``eave_height_m``, ``ridge_height_m``,
        ``measured_height_m``, ``storeys``, ``function_code``, ``method``, ``tile_id``, ...).
    records : dict, optional
        ``building_id -> CityBuilding`` already at hand (a variant's new buildings).
    loader : callable, optional
        Loads the records of the other ids on first use (``loader(ids) -> {id: CityBuilding}``).
    """

    def __init__(self, table, records: dict[str, CityBuilding] | None = None,
                 loader: RecordLoader | None = None):
        table = table.copy()
        table["building_id"] = table["building_id"].astype(str)
        if table["building_id"].duplicated().any():
            dup = sorted(table.loc[table["building_id"].duplicated(), "building_id"])[:5]
            raise ValueError(f"building ids are not unique: {dup}")
        self.table = table.reset_index(drop=True)
        self._records: dict[str, CityBuilding] = dict(records or {})
        self._loader = loader
        self._solids: dict[str, list[Solid]] | None = None

    # ------------------------------------------------------------------------------ basics
    @property
    def crs(self):
        return self.table.crs

    @property
    def ids(self) -> list[str]:
        return self.table["building_id"].tolist()

    def __len__(self) -> int:
        return len(self.table)

    def __contains__(self, building_id: str) -> bool:
        return str(building_id) in set(self.table["building_id"])

    def records(self) -> dict[str, CityBuilding]:
        """``building_id -> CityBuilding`` of every building that has solids (loaded on first use)."""
        missing = [i for i in self.ids if i not in self._records]
        if missing and self._loader is not None:
            self._records.update(self._loader(missing))
        keep = set(self.ids)
        return {k: v for k, v in self._records.items() if k in keep}

    def solids(self) -> dict[str, list[Solid]]:
        """``building_id -> solids`` (highest LoD of the building and its parts), in table order."""
        if self._solids is None:
            recs = self.records()
            by_id = building_solids(recs[i] for i in self.ids if i in recs)
            self._solids = {i: by_id[i] for i in self.ids if i in by_id}
        return self._solids

    def ground_heights(self) -> dict[str, float]:
        """``building_id -> ground_height_m`` where the table has a finite one."""
        if "ground_height_m" not in self.table:
            return {}
        g = pd.to_numeric(self.table["ground_height_m"], errors="coerce").to_numpy(float)
        return {b: float(v) for b, v in zip(self.ids, g) if np.isfinite(v)}

    # ----------------------------------------------------------------------------- subsets
    def _subset(self, mask) -> "BuildingSet":
        out = BuildingSet.__new__(BuildingSet)
        out.table = self.table[np.asarray(mask, dtype=bool)].reset_index(drop=True)
        out._records = self._records
        out._loader = self._loader
        out._solids = None
        return out

    def select(self, ids: Iterable[str]) -> "BuildingSet":
        """The buildings with these ids (in table order)."""
        want = {str(i) for i in ids}
        return self._subset(self.table["building_id"].isin(want).to_numpy())

    def drop(self, ids: Iterable[str]) -> "BuildingSet":
        """All buildings but these."""
        gone = {str(i) for i in ids}
        return self._subset(~self.table["building_id"].isin(gone).to_numpy())

    def in_tiles(self, tile_ids: Iterable[str]) -> "BuildingSet":
        """The buildings whose ``tile_id`` is one of ``tile_ids``."""
        want = {str(t) for t in tile_ids}
        return self._subset(self.table["tile_id"].astype(str).isin(want).to_numpy())

    def footprint_bounds(self) -> np.ndarray:
        """``(n, 4)`` bounds of the footprints."""
        if not len(self.table):
            return np.zeros((0, 4))
        return np.asarray(self.table.geometry.bounds.to_numpy(), dtype=float)

    def within(self, bounds: Sequence[float]) -> "BuildingSet":
        """The buildings whose footprint's bounds overlap ``bounds``."""
        fb = self.footprint_bounds()
        if not len(fb):
            return self._subset(np.zeros(0, dtype=bool))
        m = (fb[:, 0] < bounds[2]) & (bounds[0] < fb[:, 2]) & (fb[:, 1] < bounds[3]) & (bounds[1] < fb[:, 3])
        return self._subset(m)

    def concat(self, other: "BuildingSet") -> "BuildingSet":
        """These buildings and ``other``'s; where an id is in both, ``other``'s building wins."""
        import geopandas as gpd

        mine = self.drop(other.ids)
        table = gpd.GeoDataFrame(pd.concat([mine.table, other.table], ignore_index=True), crs=self.crs or other.crs)
        records = {**{k: v for k, v in self._records.items()}, **other._records}
        loaders = [f for f in (self._loader, other._loader) if f is not None]

        def loader(ids):
            out: dict[str, CityBuilding] = {}
            for f in loaders:
                out.update(f([i for i in ids if i not in out]))
            return out

        return BuildingSet(table, records, loader if loaders else None)

    # -------------------------------------------------------------------- 2.5D noise screens
    def screening_blocks(self, building_height: str = "mean"):
        """The buildings as 2.5D blocks for noise screening: ``height_m`` above ``ground_height_m``.

        ``building_height`` is ``ridge``, ``eave`` or ``mean`` (of the two); a missing one falls back
        to the other and then to ``measured_height_m``. Buildings without a height or a ground height,
        and rejected footprints, are left out and listed in ``.attrs['without_height']``.
        """
        t = self.table.copy()
        nan = pd.Series(np.nan, index=t.index)
        eave = pd.to_numeric(t.get("eave_height_m", nan), errors="coerce")
        ridge = pd.to_numeric(t.get("ridge_height_m", nan), errors="coerce")
        h = {"ridge": ridge.fillna(eave), "eave": eave.fillna(ridge),
             "mean": ((eave + ridge) / 2).fillna(ridge).fillna(eave)}[building_height]
        if "measured_height_m" in t:
            h = h.fillna(pd.to_numeric(t["measured_height_m"], errors="coerce"))
        t["height_m"] = h
        ok = np.isfinite(t["height_m"].to_numpy(float)) & np.isfinite(
            pd.to_numeric(t.get("ground_height_m", nan), errors="coerce").to_numpy(float))
        if "method" in t:
            ok &= (t["method"].astype(str) != "rejected").to_numpy()
        out = t[ok].reset_index(drop=True)
        if "function_code" in out:
            out["function_code"] = out["function_code"].map(normalised_function_code)
        out.attrs["without_height"] = sorted(t.loc[~ok, "building_id"].astype(str))
        return out


def normalised_function_code(code) -> str:
    """ALKIS function codes as the noise exposure expects them: ``'31001_1010'`` -> ``'1010'``."""
    if code is None or (isinstance(code, float) and np.isnan(code)):
        return ""
    return str(code).strip().split("_")[-1]


@dataclass
class CityArea:
    """What one analysis of an area reads.

    Attributes
    ----------
    bounds : tuple
        The area whose results are wanted (e.g. ``tile ∩ extent``).
    buildings : BuildingSet
        Every building that takes part: those assessed and those around that shade or screen.
    terrain : citymodel.raster.Raster or None
        The DTM resampled onto one grid over the area and its margin.
    trees, roads, flood_zones, viewpoints : geopandas.GeoDataFrame or None
        Staged tables (None where the role is not configured).
    crs : str
        The processing CRS.
    datasets : dict
        Role -> dataset name, for messages.
    """

    bounds: Bounds
    buildings: BuildingSet
    terrain: object | None = None
    trees: object | None = None
    roads: object | None = None
    flood_zones: object | None = None
    viewpoints: object | None = None
    crs: str = "EPSG:25832"
    datasets: dict[str, str] = field(default_factory=dict)

    def dataset(self, role: str) -> str:
        return self.datasets.get(role, role)
