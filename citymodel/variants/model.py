"""The variant model: the current city with a variant's changes applied.

New and modified buildings are built by the parametric LoD2 builder
(:func:`citymodel.lod2.build_parametric`: the same roof models as the reconstruction, validated the
same way, ``method: lod2_parametric``) from footprint, heights or storeys and the AdV roof form, or
taken from a designed CityJSON building; removed buildings are gone. Trees and road traffic change as
the variant says. :class:`VariantStore` offers the same reading interface as
:class:`citymodel.store.CityStore`, so the analysis layers read a variant exactly as they read the city.

Heights from storeys (documented in the README): eave = storeys × ``storey_height_m``; a pitched
roof without a ridge height rises by ``tan(35°)`` × half the building's width (a 35° roof), a shed
roof by ``tan(15°)`` × its width.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Sequence

import numpy as np
import pandas as pd

from ..citydata import BuildingSet, CityArea, grow
from ..cityjson import CityBuilding
from ..errors import GeometryError, dataset_error
from .changes import ROAD_VALUES, AddBuilding, ModifyBuilding, Variant

METHOD = "lod2_parametric"
PITCH_DEG = 35.0
SHED_PITCH_DEG = 15.0


@dataclass
class BuiltBuilding:
    """A variant building as built: its CityJSON record and its attribute row."""

    record: CityBuilding
    row: dict
    note: str = ""


def _tile_of(settings, point) -> str | None:
    from ..tiles import tiles_for_extent

    for t in settings.tiles:
        b = t.bounds
        if b[0] <= point.x < b[2] and b[1] <= point.y < b[3]:
            return t.id
    return None


def heights_for(change: AddBuilding | ModifyBuilding, footprint, storey_height_m: float,
                current: dict | None = None) -> tuple[float, float, int, int | None]:
    """``(eave_m, ridge_m, roof_code, storeys)`` of a new or modified building (above ground).

    Given values win; a modified building keeps its current values where the change gives none.
    """
    from ..lod2 import rect_of

    cur = current or {}
    form = change.roof_form if change.roof_form is not None else cur.get("roofType")
    try:
        form = int(form) if form is not None and np.isfinite(float(form)) else 1000
    except (TypeError, ValueError):
        form = 1000
    if form not in (1000, 2100, 3100, 3200, 3300, 3400, 3500):
        form = 1000  # a generic (5000) roof cannot be rebuilt parametrically: flat at the eave
    storeys = change.storeys if change.storeys is not None else cur.get("storeys")
    storeys = int(storeys) if storeys is not None and not (isinstance(storeys, float) and math.isnan(storeys)) else None
    eave = change.eave_height_m
    ridge = change.ridge_height_m
    if eave is None and change.storeys is not None:
        eave = change.storeys * storey_height_m
    if eave is None:
        eave = cur.get("eave_height_m")
    if ridge is None and change.eave_height_m is None and change.storeys is None:
        ridge = cur.get("ridge_height_m")
    if eave is None or not np.isfinite(eave):
        raise dataset_error(GeometryError, "variant", "the building has neither heights nor storeys",
                            "give eave_height_m and ridge_height_m, or storeys", record=getattr(change, "id", None)
                            or getattr(change, "building_id", None))
    if form == 1000:
        # a flat roof has one height: the one the change gives (ridge or eave), else the current one
        ridge = eave = float(change.ridge_height_m if change.ridge_height_m is not None and change.eave_height_m is None
                             and change.storeys is None else eave)
    elif ridge is None or not np.isfinite(ridge) or ridge < eave:
        r = rect_of(footprint)
        width = min(r.length_m, r.width_m)
        rise = math.tan(math.radians(SHED_PITCH_DEG)) * width if form == 2100 else \
            math.tan(math.radians(PITCH_DEG)) * width / 2.0
        ridge = eave + rise
    return float(eave), float(ridge), form, storeys


def build_building(building_id: str, footprint, ground_z: float, eave_m: float, ridge_m: float, roof_code: int,
                   *, ridge_direction_deg: float | None, storeys: int | None, function_code: str | None,
                   tile_id: str | None, status: str) -> BuiltBuilding:
    """One building from footprint, heights and roof form (the parametric LoD2 builder), validated."""
    from ..lod2 import build_parametric
    from ..validate3d import validate_solid

    # the variant file gives the ridge direction clockwise from grid north; the builder wants
    # degrees counter-clockwise from east
    angle = None if ridge_direction_deg is None else (90.0 - float(ridge_direction_deg)) % 360.0
    solid, note = build_parametric(footprint, ground_z, eave_m, ridge_m, roof_code, ridge_direction_deg=angle,
                                   building_id=building_id)
    rep = validate_solid(solid, feature=building_id)
    top = float(max(v[2] for s in solid.surfaces for r in s.rings for v in r))
    row = {"building_id": building_id, "function_code": function_code, "storeys": storeys,
           "roofType": 1000 if note.startswith("lod1") else roof_code,
           "eave_height_m": round(ridge_m if note.startswith("lod1") else eave_m, 3),
           "ridge_height_m": round(ridge_m, 3), "ground_height_m": round(float(ground_z), 3),
           "measured_height_m": round(top - float(ground_z), 3), "roof_rmse_m": float("nan"),
           "point_density_m2": 0.0, "point_count": 0, "method": METHOD,
           "roof_model": "lod1" if note.startswith("lod1") else "parametric", "fallback_reason": note,
           "validity_codes": str(list(rep.codes)) if rep.codes else "", "n_parts": 1, "issues": "",
           "tile_id": tile_id, "top_z_m": round(top, 3), "variant_status": status, "geometry": footprint}
    lod = "1.2" if note.startswith("lod1") else "2.2"
    attrs = {k: v for k, v in row.items() if k != "geometry"}
    return BuiltBuilding(CityBuilding(building_id, attrs, {lod: solid}), row, note)


def design_building(change: AddBuilding, ground_z: float, tile_id: str | None) -> BuiltBuilding:
    """A designed CityJSON building of ``change.design`` as the variant's building (lifted onto the
    terrain where its heights are relative: lowest vertex more than 50 m from the ground)."""
    from ..cityjson import read_cityjson_document
    from ..geometry3d import Solid, Surface
    from ..validate3d import validate_solid

    data = read_cityjson_document(change.design, dataset="variant design")
    solids = [s for b in data.buildings for obj in [b, *b.parts] for s in obj.solids.values()]
    if not solids:
        raise dataset_error(GeometryError, "variant", "the designed CityJSON has no building solid",
                            "give a Building with a Solid geometry", record=change.id)
    zmin = min(float(np.min(np.concatenate([r[:, 2] for srf in s.surfaces for r in srf.rings]))) for s in solids)
    dz = ground_z - zmin if abs(zmin - ground_z) > 50.0 else 0.0
    if dz:
        solids = [Solid([Surface([r + np.array([0.0, 0.0, dz]) for r in srf.rings], srf.kind) for srf in s.surfaces],
                        lod=s.lod) for s in solids]
    zs = np.concatenate([r[:, 2] for s in solids for srf in s.surfaces for r in srf.rings])
    top = float(zs.max())
    roof_z = [float(np.min(r[:, 2])) for s in solids for srf in s.of_kind("RoofSurface") for r in srf.rings[:1]]
    eave = (min(roof_z) if roof_z else top) - ground_z
    codes = sorted({c for s in solids for c in validate_solid(s, feature=change.id).codes})
    row = {"building_id": change.id, "function_code": change.function_code, "storeys": change.storeys,
           "roofType": 5000, "eave_height_m": round(eave, 3), "ridge_height_m": round(top - ground_z, 3),
           "ground_height_m": round(ground_z, 3), "measured_height_m": round(top - ground_z, 3),
           "roof_rmse_m": float("nan"), "point_density_m2": 0.0, "point_count": 0, "method": "design",
           "roof_model": "design", "fallback_reason": "", "validity_codes": str(codes) if codes else "",
           "n_parts": len(solids), "issues": "", "tile_id": tile_id, "top_z_m": round(top, 3),
           "variant_status": "added", "geometry": change.footprint}
    attrs = {k: v for k, v in row.items() if k != "geometry"}
    if len(solids) == 1:
        rec = CityBuilding(change.id, attrs, {"2.2": solids[0]})
    else:
        rec = CityBuilding(change.id, attrs, {}, [CityBuilding(f"{change.id}_p{k + 1}", {"building_id": change.id},
                                                               {"2.2": s}, type="BuildingPart")
                                                  for k, s in enumerate(solids)])
    return BuiltBuilding(rec, row)


class VariantStore:
    """The city of ``base`` (a :class:`citymodel.store.CityStore`) with ``variant``'s changes applied.

    Same reading interface as the city's store: ``buildings(bounds)``, ``trees(bounds)``,
    ``roads(bounds, distance_m)``, ``terrain(bounds, cell_m)``, ``flood_zones()``, ``viewpoints()``,
    ``area(...)``.
    """

    def __init__(self, base, variant: Variant, storey_height_m: float | None = None):
        self.base = base
        self.variant = variant
        self.settings = base.settings
        self.crs = base.crs
        self.storey_height_m = storey_height_m if storey_height_m is not None else \
            base.settings.analysis.storey_height_m

    # ------------------------------------------------------------------------ pass-through
    def dataset(self, role: str) -> str:
        return self.base.dataset(role)

    @property
    def datasets(self) -> dict[str, str]:
        return self.base.datasets

    @property
    def tile_ids(self) -> list[str]:
        return self.base.tile_ids

    def tiles_near(self, bounds, margin_m: float = 0.0) -> list[str]:
        return self.base.tiles_near(bounds, margin_m)

    def terrain(self, bounds, cell_m: float):
        return self.base.terrain(bounds, cell_m)

    def flood_zones(self):
        return self.base.flood_zones()

    def viewpoints(self):
        return self.base.viewpoints()

    def dtm_paths(self):
        return self.base.dtm_paths()

    # --------------------------------------------------------------------------- buildings
    @property
    def removed_ids(self) -> list[str]:
        return [c.building_id for c in self.variant.removed]

    @property
    def modified_ids(self) -> list[str]:
        return [c.building_id for c in self.variant.modified]

    @property
    def added_ids(self) -> list[str]:
        return [c.id for c in self.variant.added]

    def _ground(self, footprint) -> float:
        from ..lod2 import ground_height

        b = grow(footprint.bounds, 5.0)
        dtm = self.base.terrain(b, 0.5)
        z = ground_height(footprint, dtm)
        if not np.isfinite(z):
            z = float(np.nanmin(dtm.array))
        return float(z)

    @cached_property
    def built(self) -> dict[str, BuiltBuilding]:
        """The variant's new and modified buildings, built (id -> :class:`BuiltBuilding`)."""
        out: dict[str, BuiltBuilding] = {}
        current = self.base.buildings().select(self.modified_ids).table
        cur_rows = {str(r["building_id"]): r for r in current.to_dict("records")}
        for c in self.variant.added:
            fp = c.footprint
            z = self._ground(fp)
            tile = _tile_of(self.settings, fp.representative_point())
            if c.design is not None:
                out[c.id] = design_building(c, z, tile)
                continue
            eave, ridge, form, storeys = heights_for(c, fp, self.storey_height_m)
            out[c.id] = build_building(c.id, fp, z, eave, ridge, form, ridge_direction_deg=c.ridge_direction_deg,
                                       storeys=storeys, function_code=c.function_code, tile_id=tile, status="added")
        for c in self.variant.modified:
            cur = cur_rows[c.building_id]
            fp = c.footprint if c.footprint is not None else cur["geometry"]
            z = self._ground(fp) if c.footprint is not None else float(cur["ground_height_m"])
            eave, ridge, form, storeys = heights_for(c, fp, self.storey_height_m, cur)
            fc = c.function_code if c.function_code is not None else cur.get("function_code")
            out[c.building_id] = build_building(
                c.building_id, fp, z, eave, ridge, form, ridge_direction_deg=c.ridge_direction_deg, storeys=storeys,
                function_code=fc, tile_id=cur.get("tile_id"), status="modified")
        return out

    @cached_property
    def changed_buildings(self) -> BuildingSet:
        """The new and modified buildings as a :class:`BuildingSet` (records at hand)."""
        import geopandas as gpd

        rows = [b.row for b in self.built.values()]
        table = gpd.GeoDataFrame(rows, geometry="geometry", crs=self.crs) if rows else \
            gpd.GeoDataFrame({"building_id": pd.Series([], dtype=str)}, geometry=[], crs=self.crs)
        return BuildingSet(table, {k: b.record for k, b in self.built.items()})

    @cached_property
    def _all_buildings(self) -> BuildingSet:
        return self.base.buildings().drop(self.removed_ids + self.modified_ids).concat(self.changed_buildings)

    def buildings(self, bounds: Sequence[float] | None = None) -> BuildingSet:
        b = self._all_buildings
        return b if bounds is None else b.within(bounds)

    def building_table(self, tiles=None):
        t = self._all_buildings.table
        return t if tiles is None else t[t["tile_id"].astype(str).isin(set(tiles))].reset_index(drop=True)

    # ------------------------------------------------------------------------------- trees
    @cached_property
    def _trees(self):
        import geopandas as gpd

        from ..store import clip_points

        base = self.base.trees()
        gone = {c.tree_id for c in self.variant.trees_removed}
        if base is not None and gone:
            base = base[~base["tree_id"].astype(str).isin(gone)].reset_index(drop=True)
        new = self.variant.trees_added
        if not new:
            return base
        rows = [{"tree_id": c.id, "height_m": float(c.height_m),
                 "crown_diameter_m": float(c.crown_diameter_m) if c.crown_diameter_m is not None
                 else crown_from_height(c.height_m), "species": c.species or "", "geometry": c.point}
                for c in new]
        added = gpd.GeoDataFrame(rows, geometry="geometry", crs=self.crs)
        if base is None:
            return added
        return gpd.GeoDataFrame(pd.concat([base, added], ignore_index=True), geometry="geometry", crs=self.crs)

    def trees(self, bounds=None):
        from ..store import clip_points

        return clip_points(self._trees, bounds)

    # ------------------------------------------------------------------------------- roads
    @cached_property
    def _roads(self):
        return apply_road_changes(self.base.roads(), self.variant, self.crs)

    def roads(self, bounds=None, distance_m: float = 0.0):
        import shapely

        roads = self._roads
        if roads is None or bounds is None or not len(roads):
            return roads
        near = shapely.dwithin(np.asarray(roads.geometry.values, dtype=object), shapely.box(*bounds), distance_m)
        return roads[near].reset_index(drop=True)

    @property
    def changed_road_ids(self) -> list[str]:
        return [c.road_id or c.new_id for c in self.variant.road_changes]

    # ------------------------------------------------------------------------------- areas
    def area(self, bounds, *, margin_m: float, terrain_cell_m: float, roads_distance_m: float | None = None,
             terrain_margin_m: float | None = None, include: Sequence[str] = ()) -> CityArea:
        """See :func:`citymodel.store.area_of`."""
        from ..store import area_of

        return area_of(self, bounds, margin_m=margin_m, terrain_cell_m=terrain_cell_m,
                       roads_distance_m=roads_distance_m, terrain_margin_m=terrain_margin_m, include=include)


def crown_from_height(height_m: float) -> float:
    """Crown diameter of a new tree without one: the relation staging uses for cadastre trees
    without one (:func:`citymodel.trees.crown_diameter_from_height_m`: half the height, 2 m at least)."""
    from ..trees import crown_diameter_from_height_m

    return float(crown_diameter_from_height_m(float(height_m)))


def apply_road_changes(roads, variant: Variant, crs: str):
    """The roads after the variant's road changes (a copy).

    ``factor`` multiplies ``dtv``, ``m_day`` and ``m_night``; a new ``dtv`` of a road with hourly
    volumes scales them by new ÷ old DTV (the hourly volumes are what RLS-19 uses); other values
    replace the current ones; a new road (``new_id`` with a line) is appended with its values.
    """
    import geopandas as gpd

    changes = variant.road_changes
    if not changes:
        return roads
    out = roads.copy() if roads is not None else gpd.GeoDataFrame({"road_id": pd.Series([], dtype=str)},
                                                                  geometry=[], crs=crs)
    ids = out["road_id"].astype(str)
    new_rows = []
    for c in changes:
        if c.road_id is None:
            row = {"road_id": c.new_id, **{k: v for k, v in c.values.items() if k in ROAD_VALUES},
                   "geometry": c.geometry}
            new_rows.append(row)
            continue
        m = (ids == str(c.road_id)).to_numpy()
        v = dict(c.values)
        if "factor" in v:
            for col in ("dtv", "m_day", "m_night"):
                if col in out:
                    out.loc[m, col] = pd.to_numeric(out.loc[m, col], errors="coerce") * float(v["factor"])
        if "dtv" in v and "dtv" in out:
            old = pd.to_numeric(out.loc[m, "dtv"], errors="coerce").to_numpy(float)
            new = float(v["dtv"])
            ratio = np.where(old > 0, new / np.where(old > 0, old, 1.0), np.nan)
            for col in ("m_day", "m_night"):
                if col in out and not ("m_day" in v or "m_night" in v):
                    cur = pd.to_numeric(out.loc[m, col], errors="coerce").to_numpy(float)
                    out.loc[m, col] = np.where(np.isfinite(ratio), cur * ratio, np.nan)
        for k in ROAD_VALUES:
            if k in v:
                out.loc[m, k] = v[k]
        if c.geometry is not None:
            out.loc[m, "geometry"] = c.geometry
    if new_rows:
        out = gpd.GeoDataFrame(pd.concat([out, gpd.GeoDataFrame(new_rows, geometry="geometry", crs=crs)],
                                         ignore_index=True), geometry="geometry", crs=crs)
    return out.reset_index(drop=True)
