"""Per-building LoD2 reconstruction, the parametric builder and the LoD1 fallback.

:func:`reconstruct_tile` is the entry point of the buildings stage: footprints of one tile + the
staged LiDAR of the tile (with halo) + its DTM -> one :class:`BuildingResult` per building.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np
import shapely
from scipy.spatial import cKDTree
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.polygon import orient

from ..errors import GeometryError, dataset_error
from ..geometry3d import Solid, prism
from ..raster import Raster
from ..roofs import (RoofForm, RoofPart, part_footprint, part_solid, part_volume_m3,
                     roof_form_from_code, roof_height)
from ..tiles import Tile
from ..validate3d import validate_solid
from .fit import fit_footprint, rect_of
from .generic import generic_roof_solid
from .planes import segment_planes
from .points import TilePoints, clean_building_points, points_by_footprint, read_tile_points

__all__ = ["BuildingResult", "reconstruct_building", "reconstruct_tile", "build_parametric", "build_lod1",
           "ground_height", "roof_height_from_solids", "METHODS", "ALGORITHM_VERSION", "fallback_height",
           "split_footprint", "drop_neighbour_points", "slender_structure", "upper_envelope", "plane_cover",
           "point_roof_distances", "roof_surface_heights"]

ALGORITHM_VERSION = "2.0.0"
METHODS = ("lod2_fitted", "lod2_parametric", "lod1_fallback", "rejected")
DEFAULT_HEIGHT_M = 6.0
GENERIC_ROOF_CODE = 5000      # AdV "Mischform" for generic multi-plane roofs


# ============================================================================== result
#: issue of a building that reaches into a part of the halo whose neighbour file could not be read
HALO_MISSING = "halo_missing"

#: how ``fallback_reason`` begins when a building fell back to LoD1 for lack of points
NO_POINTS_REASONS = ("footprint outside the point cloud", "too few points")


def lacks_points(fallback_reason: str | None) -> bool:
    """True when a LoD1 fallback's reason is missing points (outside the cloud, too few)."""
    return bool(fallback_reason) and str(fallback_reason).startswith(NO_POINTS_REASONS)


@dataclass
class BuildingResult:
    """Reconstruction result of one building.

    ``solids`` holds one solid per building part (one for most buildings; several for a
    multipolygon footprint or a building of rectangular parts). ``method`` is ``lod2_fitted``
    (roof fitted to points: parametric or generic, see ``roof_model``), ``lod2_parametric``
    (roof from given parameters, no points), ``lod1_fallback`` (a block, see ``fallback_reason``)
    or ``rejected`` (no usable footprint: nothing built, see ``issues``).
    """

    building_id: str
    function_code: str | None = None
    storeys: int | None = None
    roofType: int | None = None
    eave_height_m: float = float("nan")
    ridge_height_m: float = float("nan")
    ground_height_m: float = float("nan")
    measured_height_m: float = float("nan")
    roof_rmse_m: float = float("nan")
    point_density_m2: float = 0.0
    point_count: int = 0
    method: str = "lod1_fallback"
    fallback_reason: str = ""
    validity_codes: list[int] = field(default_factory=list)
    roof_model: str = ""                       # parametric | generic | lod1 | ""
    solids: list[Solid] = field(default_factory=list)
    part_ids: list[str] = field(default_factory=list)
    roof_parts: list[RoofPart] = field(default_factory=list)
    tile_id: str | None = None
    issues: list[str] = field(default_factory=list)
    height_source: str = ""                    # points | storeys | official_lod2 | unknown
    point_to_roof_median_m: float = float("nan")
    point_to_roof_p90_m: float = float("nan")
    structure: str = ""                         # "" or "slender" (towers, masts: roof from the upper envelope)

    @property
    def solid(self) -> Solid | None:
        """The building's solid when it has exactly one."""
        return self.solids[0] if len(self.solids) == 1 else None

    @property
    def valid(self) -> bool:
        return bool(self.solids) and not self.validity_codes

    @property
    def lod(self) -> str:
        return "2.2" if self.method in ("lod2_fitted", "lod2_parametric") else "1.2"

    def attributes(self) -> dict[str, Any]:
        """Flat attributes (CityJSON / GeoPackage columns)."""
        def r(v, nd=3):
            return None if v is None or (isinstance(v, float) and not math.isfinite(v)) else round(float(v), nd)
        return {"building_id": self.building_id, "function_code": self.function_code, "storeys": self.storeys,
                "roofType": self.roofType, "eave_height_m": r(self.eave_height_m),
                "ridge_height_m": r(self.ridge_height_m), "ground_height_m": r(self.ground_height_m),
                "measured_height_m": r(self.measured_height_m), "roof_rmse_m": r(self.roof_rmse_m),
                "point_density_m2": r(self.point_density_m2, 2), "point_count": int(self.point_count),
                "method": self.method, "roof_model": self.roof_model, "fallback_reason": self.fallback_reason,
                "validity_codes": list(self.validity_codes), "n_parts": len(self.solids),
                "issues": "; ".join(self.issues), "tile_id": self.tile_id,
                "height_source": self.height_source,
                "point_to_roof_median_m": r(self.point_to_roof_median_m),
                "point_to_roof_p90_m": r(self.point_to_roof_p90_m), "structure": self.structure,
                "algorithm_version": ALGORITHM_VERSION}

    def to_city_building(self):
        """A :class:`citymodel.cityjson.CityBuilding` (parts as BuildingPart children)."""
        from ..cityjson import CityBuilding
        attrs = self.attributes()
        if len(self.solids) == 1:
            return CityBuilding(self.building_id, attrs, {self.lod: self.solids[0]})
        parts = [CityBuilding(pid, {"building_id": self.building_id}, {self.lod: s}, type="BuildingPart")
                 for pid, s in zip(self.part_ids, self.solids)]
        return CityBuilding(self.building_id, attrs, {}, parts)


# ========================================================================= heights & builders
def ground_height(footprint: Polygon | MultiPolygon, dtm: Raster, step_m: float = 0.5) -> float:
    """Lowest DTM height along the footprint's outline (bilinear, sampled every ``step_m``).

    Cells without value are ignored; NaN when the whole outline lies outside the DTM.
    """
    xy = np.concatenate([np.asarray(shapely.segmentize(p.exterior, step_m).coords)
                         for p in shapely.get_parts(footprint)])
    z = _bilinear(dtm, xy[:, 0], xy[:, 1])
    return float(np.nanmin(z)) if np.isfinite(z).any() else float("nan")


def _dtm_array(dtm: Raster) -> np.ndarray:
    """The DTM as float with NaN at nodata, computed once per Raster object."""
    cached = getattr(dtm, "_lod2_nan_array", None)
    if cached is None:
        cached = dtm.masked if dtm.array.ndim == 2 else dtm.masked[0]
        try:
            object.__setattr__(dtm, "_lod2_nan_array", cached)
        except (AttributeError, TypeError):
            pass
    return cached


def _bilinear(dtm: Raster, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    arr = _dtm_array(dtm)
    inv = ~dtm.transform
    col, row = inv @ (np.asarray(x, float), np.asarray(y, float))
    col, row = col - 0.5, row - 0.5
    c0 = np.clip(np.floor(col).astype(np.int64), 0, arr.shape[1] - 2)
    r0 = np.clip(np.floor(row).astype(np.int64), 0, arr.shape[0] - 2)
    fc = np.clip(col - c0, 0, 1)
    fr = np.clip(row - r0, 0, 1)
    v = (arr[r0, c0] * (1 - fc) * (1 - fr) + arr[r0, c0 + 1] * fc * (1 - fr)
         + arr[r0 + 1, c0] * (1 - fc) * fr + arr[r0 + 1, c0 + 1] * fc * fr)
    outside = (col < -0.5) | (row < -0.5) | (col > arr.shape[1] - 0.5) | (row > arr.shape[0] - 0.5)
    return np.where(outside, np.nan, v)


def _nearest_dtm(dtm: Raster, x: float, y: float) -> float:
    arr = _dtm_array(dtm)
    rows, cols = np.nonzero(np.isfinite(arr))
    if len(rows) == 0:
        return float("nan")
    cx, cy = dtm.transform @ (cols + 0.5, rows + 0.5)
    k = int(np.argmin((cx - x) ** 2 + (cy - y) ** 2))
    return float(arr[rows[k], cols[k]])


def _polygon_or_raise(footprint, building_id: str | None) -> Polygon:
    if footprint is None or footprint.is_empty:
        raise dataset_error(GeometryError, "buildings", "empty footprint", "give a polygon footprint", building_id)
    if footprint.geom_type != "Polygon":
        raise dataset_error(GeometryError, "buildings", f"footprint is a {footprint.geom_type}, not a Polygon",
                            "split multipolygons into parts (reconstruct_tile does this)", building_id)
    if not footprint.is_valid:
        raise dataset_error(GeometryError, "buildings",
                            f"invalid footprint ({shapely.is_valid_reason(footprint)})",
                            "repair the footprint (e.g. shapely.make_valid) or fix it at the source", building_id)
    return orient(footprint, 1.0)


def build_lod1(footprint: Polygon, ground_z: float, height_m: float, building_id: str | None = None) -> Solid:
    """LoD1 block of ``footprint`` from ``ground_z`` to ``ground_z + height_m``.

    Raises
    ------
    GeometryError
        Empty, non-polygon or invalid footprint, or ``height_m <= 0``.
    """
    poly = _polygon_or_raise(footprint, building_id)
    if not (np.isfinite(height_m) and height_m > 0):
        raise dataset_error(GeometryError, "buildings", f"LoD1 height {height_m} m is not positive",
                            "give a height above ground > 0", building_id)
    ext = np.asarray(poly.exterior.coords)[:-1]
    holes = [np.asarray(r.coords)[:-1] for r in poly.interiors]
    return prism(ext, float(ground_z), float(ground_z) + float(height_m), holes)


def build_parametric(footprint: Polygon, ground_z: float, eave_height_m: float, ridge_height_m: float,
                     roof_form: RoofForm | int | str, *, ridge_direction_deg: float | None = None,
                     rect_ratio: float = 0.97, building_id: str | None = None, **shape: Any
                     ) -> tuple[Solid, str]:
    """A building from footprint, heights and roof form alone (planning variants, no points).

    Rectangle-like footprints (area >= ``rect_ratio`` of the minimum rotated rectangle) get the
    exact roof form on that rectangle. Other footprints get the roof form applied to the minimum
    rotated rectangle, **clipped** to the footprint as a generic roof (the roof planes of the form
    over the footprint, with walls); when that is not a valid solid: an LoD1 block at the
    ridge height, and the note says so.

    Parameters
    ----------
    footprint : Polygon
    ground_z : float
        Absolute ground height (m).
    eave_height_m, ridge_height_m : float
        Above ground (m); equal for a flat roof.
    roof_form : RoofForm, AdV code or name
    ridge_direction_deg : float, optional
        Ridge direction (degrees ccw from east); default: along the rectangle's longer side.
    shape : dict
        Extra RoofPart parameters (``hip_length_m``, ``half_hip_fraction``, ``mansard_break_m``,
        ``mansard_inset_m``, ``mansard_sides``; ``eave2_m``, ``ridge_offset_m`` for an asymmetric gable).

    Returns
    -------
    (Solid, note)
        ``note`` is ``""`` for the exact form, ``"clipped"`` or ``"lod1: <why>"``.
    """
    poly = _polygon_or_raise(footprint, building_id)
    form = roof_form_from_code(roof_form)
    if form is RoofForm.FLAT:
        ridge_height_m = eave_height_m
    rect = rect_of(poly)
    if ridge_direction_deg is None:
        if rect.width_m > rect.length_m:
            rect = rect.turned()
    else:
        diff = (ridge_direction_deg - rect.angle_deg) % 180.0
        if 45.0 < diff < 135.0:
            rect = rect.turned()
        if form is RoofForm.SHED and abs(((ridge_direction_deg - rect.angle_deg + 180) % 360) - 180) > 90:
            rect = rect.flipped()
    part = RoofPart(rect.cx, rect.cy, rect.length_m, rect.width_m, rect.angle_deg, float(ground_z),
                    float(eave_height_m), float(ridge_height_m), form, part_id=building_id or "", **shape)
    if poly.area >= rect_ratio * rect.length_m * rect.width_m:
        return part_solid(part), ""
    # clip: sample the form's roof over the footprint as planes and build a generic roof
    try:
        solid = _clipped_form(poly, part, building_id)
        if validate_solid(solid).valid:
            return solid, "clipped"
        why = "clipped roof is not a valid solid"
    except GeometryError as exc:
        why = str(exc)
    return build_lod1(poly, ground_z, ridge_height_m, building_id), f"lod1: {why}"


def _clipped_form(poly: Polygon, part: RoofPart, building_id: str | None) -> Solid:
    """The roof planes of ``part`` (covering its rectangle) clipped to ``poly`` as a generic roof."""
    from .planes import Plane, fit_plane
    # sample the roof densely, label samples by the plane they lie on (the lower envelope's faces)
    minx, miny, maxx, maxy = shapely.bounds(poly)
    step = 0.25
    gx, gy = np.meshgrid(np.arange(minx + step / 2, maxx, step), np.arange(miny + step / 2, maxy, step))
    x, y = gx.ravel(), gy.ravel()
    inside = shapely.contains_xy(poly.buffer(step), x, y)
    x, y = x[inside], y[inside]
    z = roof_height(part, x, y)
    ok = np.isfinite(z)
    x, y, z = x[ok], y[ok], z[ok]
    solid = part_solid(part)
    planes, labels = [], np.full(len(x), -1)
    origin = np.array([part.cx, part.cy])
    for s in solid.of_kind("RoofSurface"):
        ring = s.exterior
        coef, _ = fit_plane(ring, origin)
        m = shapely.contains_xy(shapely.Polygon(ring[:, :2]).buffer(1e-6), x, y) & (labels < 0)
        labels[m] = len(planes)
        planes.append(Plane(coef, origin, int(m.sum()), 0.0))
    xyz = np.column_stack([x, y, z])
    return generic_roof_solid(poly, xyz, labels, planes, part.ground_z, cell_m=0.25, simplify_m=0.2,
                              building_id=building_id)


def roof_height_from_solids(solids: Iterable[Solid], x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Height of the highest RoofSurface above each (x, y); NaN where no roof polygon covers it."""
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    out = np.full(x.shape, np.nan)
    for s in solids:
        for surf in s.of_kind("RoofSurface"):
            ext = surf.rings[0]
            n = surf.normal
            if abs(n[2]) < 1e-6:
                continue
            poly = shapely.Polygon(ext[:, :2], [r[:, :2] for r in surf.rings[1:]])
            m = shapely.contains_xy(poly, x, y)
            if not m.any():
                continue
            p0 = ext[0]
            z = p0[2] - (n[0] * (x[m] - p0[0]) + n[1] * (y[m] - p0[1])) / n[2]
            out[m] = np.fmax(out[m], z)
    return out


# ============================================================================ per building
#: fewer points than this do not give a LoD1 height (the next source is used)
MIN_HEIGHT_POINTS = 3


def fallback_height(xyz: np.ndarray, ground_z: float, storeys, official: Mapping | None, storey_height_m: float
                    ) -> tuple[float | None, str, str]:
    """Height of a LoD1 block: from the points where there are any, else storeys, else the official LoD2.

    Returns
    -------
    (height_m, how, source)
        ``source`` is ``points``, ``storeys``, ``official_lod2`` or ``unknown`` (then ``height_m``
        is None: no source gives a height).
    """
    if len(xyz) >= MIN_HEIGHT_POINTS:
        h, how = _robust_height(xyz, ground_z)
        return h, how, "points"
    if storeys is not None and not (isinstance(storeys, float) and math.isnan(storeys)) and int(storeys) > 0:
        return int(storeys) * storey_height_m, f"storeys x {storey_height_m} m", "storeys"
    if official:
        h = official.get("measured_height_m")
        if h is not None and np.isfinite(h) and h > 0:
            return float(h), "official LoD2 measured height", "official_lod2"
    return None, "no source", "unknown"


def _none_if_missing(v):
    """None for None, NaN and pandas' NA (nullable columns of the staged footprints)."""
    if v is None:
        return None
    try:
        import pandas as pd

        return None if pd.isna(v) else v
    except (TypeError, ValueError):
        return v


def reconstruct_building(footprint: Polygon | MultiPolygon, xyz: np.ndarray, dtm: Raster | None, *,
                         building_id: str, function_code: str | None = None, storeys: int | None = None,
                         official: Mapping | None = None, storey_height_m: float = 3.0,
                         default_height_m: float = DEFAULT_HEIGHT_M, min_points: int = 20,
                         min_density_m2: float = 1.0, in_coverage: bool = True,
                         ground_z: float | None = None, min_region_points: int = 15,
                         neighbours: Iterable[Polygon] = ()) -> BuildingResult:
    """Reconstruct one building from its footprint and its (cleaned) points.

    Parameters
    ----------
    footprint : Polygon or MultiPolygon
        Valid footprint; each polygon of a multipolygon becomes its own part (solid).
    xyz : (n, 3) array
        Points above ground inside the footprint, outliers removed (:func:`clean_building_points`).
    dtm : Raster or None
        Terrain for the ground height (lowest DTM value along the outline).
    official : mapping, optional
        ``measured_height_m`` (and optionally ``roof_type``, ``eave_height_m``, ``ridge_height_m``)
        of the official LoD2 building, used when the points cannot carry a roof.
    min_points, min_density_m2 : int, float
        Below either the roof is not fitted (LoD1 fallback).
    in_coverage : bool
        False when the footprint lies outside the point cloud (the reason says so).
    ground_z : float, optional
        Overrides the DTM ground height.
    min_region_points : int
        Planes with fewer points help the parametric fit but get no region of a generic roof.
    neighbours : iterable of Polygon
        Footprints of the buildings touching this one: points near the shared walls that lie
        clearly above this building's own roof (the neighbour's wall, eaves or roof edge) are left
        out (:func:`drop_neighbour_points`).

    Notes
    -----
    A LoD1 block (``method='lod1_fallback'``) takes its height from the points where there are
    any (the 70th percentile), else from storeys x ``storey_height_m``, else from the official
    LoD2; without any of them the height is unknown (``height_source='unknown'``, heights None)
    and the block is a placeholder of ``default_height_m``. Tall slender structures (towers,
    masts: :func:`slender_structure`) take their roof from the upper envelope of their points.

    Returns
    -------
    BuildingResult
    """
    res = BuildingResult(building_id=str(building_id), function_code=_none_if_missing(function_code),
                         storeys=None if _none_if_missing(storeys) is None else int(storeys))
    polys = [orient(p, 1.0) for p in shapely.get_parts(footprint) if not p.is_empty]
    if not polys:
        res.method, res.fallback_reason = "rejected", "empty footprint"
        res.issues.append("empty footprint: nothing built")
        return res
    if ground_z is None:
        ground_z = ground_height(footprint, dtm) if dtm is not None else float("nan")
        if not np.isfinite(ground_z) and dtm is not None:
            c = footprint.centroid
            ground_z = _nearest_dtm(dtm, c.x, c.y)
            res.issues.append("ground height from the nearest DTM cell (footprint outside the DTM)")
    if not np.isfinite(ground_z):
        ground_z = float(np.min(xyz[:, 2])) - 3.0 if len(xyz) else 0.0
        res.issues.append("no DTM value: ground height guessed")
    res.ground_height_m = float(ground_z)
    neighbours = [n for n in neighbours if n is not None and not n.is_empty]
    if neighbours and len(xyz):
        xyz, dropped = drop_neighbour_points(footprint, xyz, neighbours)
        if dropped:
            res.issues.append(f"{dropped} points near touching buildings above this roof left out")
    area = float(sum(p.area for p in polys))
    res.point_count = int(len(xyz))
    res.point_density_m2 = res.point_count / area if area > 0 else 0.0
    if len(xyz):
        res.measured_height_m = float(np.percentile(xyz[:, 2], 99) - ground_z)

    own = xyz                    # the building's points: the point-to-roof distances are measured on them
    hxyz = xyz                   # points that give a LoD1 height (the upper envelope for slender structures)

    def fallback(reason: str, height: float | None = None, how: str = "") -> BuildingResult:
        source = "points"
        if height is None:
            height, how, source = fallback_height(hxyz, ground_z, res.storeys, official, storey_height_m)
        res.method = "lod1_fallback"
        res.roof_model = "lod1"
        res.height_source = source
        res.solids, res.part_ids, res.roof_parts = [], [], []
        if height is None:
            # no height at all: a placeholder block keeps the footprint in the model; its heights
            # stay unknown (None), so analyses and users do not take it for a measured 6 m
            res.fallback_reason = (f"{reason}; height unknown (no points, storeys or official LoD2): "
                                   f"placeholder block of {default_height_m} m")
            res.issues.append(f"height unknown: placeholder block of {default_height_m} m")
            block = default_height_m
            res.eave_height_m = res.ridge_height_m = res.measured_height_m = float("nan")
        else:
            res.fallback_reason = f"{reason}; LoD1 from {how}"
            block = float(height)
            res.eave_height_m = res.ridge_height_m = block
        for k, p in enumerate(polys):
            res.solids.append(build_lod1(p, ground_z, block, building_id))
            res.part_ids.append(building_id if len(polys) == 1 else f"{building_id}_p{k + 1}")
        res.roofType = RoofForm.FLAT.code
        res.roof_rmse_m = float("nan")
        _validate(res)
        _distance_attributes(res, own)
        return res

    if not in_coverage:
        return fallback(NO_POINTS_REASONS[0])
    if res.point_count < min_points or res.point_density_m2 < min_density_m2:
        return fallback(f"{NO_POINTS_REASONS[1]} ({res.point_count}, {res.point_density_m2:.1f}/m²; need "
                        f"{min_points} and {min_density_m2}/m²)")

    why = slender_structure(polys, xyz, ground_z, function_code)
    labels = planes = None
    if why:
        # a tower or mast has points over its whole height: its roof is the upper envelope, if the
        # envelope's planes cover the footprint. Otherwise the building's own points are used as
        # for any building (a tree crown over a garage looks tall and slender too); only a tower by
        # its function code whose envelope holds no roof plane (a lattice mast) becomes a block up
        # to its envelope.
        env = upper_envelope(xyz, cell_m=max(1.0, 4.0 / math.sqrt(max(res.point_density_m2, 1e-9))))
        elabels, eplanes = segment_planes(env)
        if plane_cover(polys, env, elabels, eplanes, min_region_points) >= SLENDER_MIN_COVER:
            res.structure = "slender"
            xyz = hxyz = env
            labels, planes = elabels, eplanes
            res.issues.append(f"{why}: roof from the upper envelope of the points ({len(env)} of {len(own)})")
        elif is_tower_code(function_code):
            res.structure = "slender"
            hxyz = env
            return fallback(f"{why}, no roof plane on its top", *_robust_height(env, ground_z))
    if labels is None:
        labels, planes = segment_planes(xyz)
    roof = labels >= 0
    if roof.sum() < min_points:
        return fallback(f"no roof planes found ({int(roof.sum())} points on planes)",
                        *_robust_height(xyz, ground_z))
    rxyz = xyz[roof]
    big_planes = np.array([k for k, pl in enumerate(planes) if pl.count >= min_region_points], dtype=np.int64)
    glabels = np.where(np.isin(labels, big_planes), labels, -1)     # tiny planes do not get regions
    builder = _PartBuilder(xyz, glabels, planes, rxyz, ground_z, min_points, res.issues)
    built: list[_BuiltPart] = []
    for k, p in enumerate(polys):
        pid = building_id if len(polys) == 1 else f"{building_id}_p{k + 1}"
        got = builder.build(p, pid)
        if got is None:                      # last resort: planes not clipped where they cannot be
            got = builder.build(p, pid, strict=False)
            if got is not None:
                res.issues.append(f"{pid}: some roof planes could not be clipped to the height of their points")
        if got is None:
            h, how = _robust_height(rxyz, ground_z)
            return fallback("generic roof could not be made valid, not even in parts", h, how)
        built += got
    res.solids = [b.solid for b in built]
    res.part_ids = [b.part_id for b in built]
    res.roof_parts = [b.roof_part for b in built if b.roof_part is not None]
    res.method = "lod2_fitted"
    res.roof_model = "parametric" if all(b.model == "parametric" for b in built) else "generic"
    # the fit error is measured on the points of the roof planes (>= min_region_points points);
    # vegetation, chimneys and other small objects are not roof
    # one spatial query for both: the roof above the building's own points
    z_own, d_own = roof_surface_heights(res.solids, own)
    on_plane = glabels >= 0
    if xyz is own and on_plane.any():
        _roof_attributes(res, built, xyz[on_plane], ground_z, z_own[on_plane])
    else:
        _roof_attributes(res, built, xyz[on_plane] if on_plane.any() else rxyz, ground_z)
    _validate(res, {id(b.solid): b.codes for b in built if b.codes is not None})
    res.height_source = "points"
    if res.validity_codes:
        h, how = _robust_height(rxyz, ground_z)
        codes = res.validity_codes
        fallback(f"LoD2 solid invalid (codes {codes})", h, how)
        return res
    _distance_attributes(res, own, d_own)
    return res


# ===================================================================== neighbours, towers
#: points within this distance of a wall shared with a touching building are checked
NEIGHBOUR_BAND_M = 1.0
#: ... and left out when higher than the building's own points (98th percentile) by this much
NEIGHBOUR_ABOVE_M = 0.5
#: buildings closer than this count as touching
TOUCH_M = 0.3


def drop_neighbour_points(footprint, xyz: np.ndarray, neighbours: Iterable[Polygon], *,
                          band_m: float = NEIGHBOUR_BAND_M, above_m: float = NEIGHBOUR_ABOVE_M,
                          min_inner: int = 10) -> tuple[np.ndarray, int]:
    """Leave out the points that belong to a touching, higher neighbour.

    A low building touching a much higher one gets the neighbour's wall points and eave or roof
    edge (overhang, misregistration) inside its footprint. Points within ``band_m`` of a wall
    shared with a neighbour (outline within ``TOUCH_M`` of the neighbour's footprint) that lie more
    than ``above_m`` above the 98th percentile of the building's other points, and more than
    ``above_m`` off the plane through their nearest other points (so a roof that rises towards
    the shared wall keeps its points), are dropped. Nothing is dropped when fewer than
    ``min_inner`` points lie away from the shared walls.

    Returns
    -------
    (xyz, dropped)
        The kept points and the number left out.
    """
    if len(xyz) == 0:
        return xyz, 0
    near = shapely.union_all([shapely.buffer(n, TOUCH_M) for n in neighbours])
    shared = shapely.intersection(shapely.boundary(footprint), near)
    if shared.is_empty or shared.length < 0.5:
        return xyz, 0
    band = shapely.buffer(shared, band_m)
    in_band = shapely.contains_xy(band, xyz[:, 0], xyz[:, 1])
    if (~in_band).sum() < min_inner or not in_band.any():
        return xyz, 0
    inner = xyz[~in_band]
    ref = float(np.percentile(inner[:, 2], 98))
    cand = np.flatnonzero(in_band & (xyz[:, 2] > ref + above_m))
    if len(cand) == 0:
        return xyz, 0
    # a high point that continues the building's own roof (a shed rising to the shared wall) stays:
    # it lies on the plane through its nearest inner points
    k = min(8, len(inner))
    _, nn = cKDTree(inner[:, :2]).query(xyz[cand, :2], k=k)
    nn = np.asarray(nn).reshape(len(cand), k)
    own = np.zeros(len(cand), dtype=bool)
    for j, c in enumerate(cand):
        q = inner[nn[j]]
        A = np.column_stack([q[:, 0] - q[0, 0], q[:, 1] - q[0, 1], np.ones(k)])
        coef, *_ = np.linalg.lstsq(A, q[:, 2], rcond=None)
        pred = coef[0] * (xyz[c, 0] - q[0, 0]) + coef[1] * (xyz[c, 1] - q[0, 1]) + coef[2]
        own[j] = abs(xyz[c, 2] - pred) <= above_m
    drop = np.zeros(len(xyz), dtype=bool)
    drop[cand[~own]] = True
    return xyz[~drop], int(drop.sum())


#: AdV object type of towers (AX_Turm, any Bauwerksfunktion): function codes ``51001_*``
TOWER_FUNCTION_PREFIX = "51001_"
#: tall slender structures by geometry: the footprint's longer side at most this ...
SLENDER_MAX_SIDE_M = 12.0
#: ... and the top of the points at least this high and this many times the longer side
SLENDER_MIN_HEIGHT_M = 15.0
SLENDER_RATIO = 2.5


def is_tower_code(function_code) -> bool:
    """True for a function code of AX_Turm (``51001_*``)."""
    code = _none_if_missing(function_code)
    return code is not None and str(code).startswith(TOWER_FUNCTION_PREFIX)


def slender_structure(polys, xyz: np.ndarray, ground_z: float, function_code=None) -> str:
    """Why a building is a tall slender structure (tower, mast), or ``""``.

    By its function code (AX_Turm, ``51001_*``) or by its geometry: a small footprint (longer side
    of the minimum rotated rectangle <= ``SLENDER_MAX_SIDE_M``) whose points reach at least
    ``SLENDER_RATIO`` times that side and ``SLENDER_MIN_HEIGHT_M`` above the ground. Such a
    structure has points over its whole height (walls, galleries, a lattice): its roof is the
    upper envelope of its points, not the biggest plane among them.
    """
    if is_tower_code(function_code):
        return f"tower by its function code {function_code}"
    if len(xyz) < 10:
        return ""
    rect = rect_of(shapely.union_all(list(polys)))
    side = max(rect.length_m, rect.width_m)
    top = float(np.percentile(xyz[:, 2], 99)) - ground_z
    if side <= SLENDER_MAX_SIDE_M and top >= max(SLENDER_MIN_HEIGHT_M, SLENDER_RATIO * side):
        return f"tall slender structure ({top:.0f} m high on a {side:.1f} m footprint)"
    return ""


#: the planes of a slender structure's upper envelope must cover this share of its footprint
SLENDER_MIN_COVER = 0.5


def plane_cover(polys, xyz: np.ndarray, labels: np.ndarray, planes, min_region_points: int = 15,
                cell_m: float = 1.0) -> float:
    """Share of the footprint's ``cell_m`` cells holding a point of a plane with ``min_region_points`` points."""
    big = [k for k, pl in enumerate(planes) if pl.count >= min_region_points]
    fp = shapely.union_all(list(polys))
    minx, miny, maxx, maxy = fp.bounds
    gx, gy = np.meshgrid(np.arange(minx, maxx, cell_m) + cell_m / 2, np.arange(miny, maxy, cell_m) + cell_m / 2)
    inside = shapely.contains_xy(fp, gx, gy)
    if not inside.any():
        return 0.0
    on = np.isin(labels, big)
    if not on.any():
        return 0.0
    ix = np.floor((xyz[on, 0] - minx) / cell_m).astype(np.int64)
    iy = np.floor((xyz[on, 1] - miny) / cell_m).astype(np.int64)
    ok = (ix >= 0) & (ix < gx.shape[1]) & (iy >= 0) & (iy < gx.shape[0])
    hit = np.zeros(gx.shape, dtype=bool)
    hit[iy[ok], ix[ok]] = True
    return float((hit & inside).sum() / inside.sum())


def upper_envelope(xyz: np.ndarray, cell_m: float = 1.0, depth_m: float | None = None) -> np.ndarray:
    """The points near the top of their ``cell_m`` grid cell: within ``depth_m`` (default ``1.5 cell_m``,
    at least 1 m, so steep roof planes keep their points) of the cell's highest point."""
    if len(xyz) == 0:
        return xyz
    depth = max(1.0, 1.5 * cell_m) if depth_m is None else depth_m
    ix = np.floor((xyz[:, 0] - xyz[:, 0].min()) / cell_m).astype(np.int64)
    iy = np.floor((xyz[:, 1] - xyz[:, 1].min()) / cell_m).astype(np.int64)
    cell = ix * (int(iy.max()) + 1) + iy
    _, inv = np.unique(cell, return_inverse=True)
    top = np.full(int(inv.max()) + 1, -np.inf)
    np.maximum.at(top, inv, xyz[:, 2])
    return xyz[xyz[:, 2] >= top[inv] - depth]


# =================================================================== truth-free quality
def roof_surface_heights(solids: Iterable[Solid], xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Height of the roof above or below each point, and the point's distance to it (m).

    The roof is the highest RoofSurface whose outline holds the point (what a scanner sees from
    above); the distance is perpendicular to that surface's plane, signed (positive above the
    roof). Points outside every roof outline get NaN. One spatial-index query for all points.
    """
    xyz = np.asarray(xyz, float)
    z_roof = np.full(len(xyz), np.nan)
    dist = np.full(len(xyz), np.nan)
    surfs = [sf for solid in solids for sf in solid.of_kind("RoofSurface")]
    normals = [sf.normal for sf in surfs]
    keep = [k for k, n in enumerate(normals) if abs(n[2]) >= 1e-6]
    if len(xyz) == 0 or not keep:
        return z_roof, dist
    polys = [shapely.Polygon(surfs[k].rings[0][:, :2], [r[:, :2] for r in surfs[k].rings[1:]]) for k in keep]
    pi, si = shapely.STRtree(polys).query(shapely.points(xyz[:, :2]), predicate="intersects")
    if len(pi) == 0:
        return z_roof, dist
    n = np.array([normals[k] for k in keep])[si]
    p0 = np.array([surfs[k].rings[0][0] for k in keep])[si]
    q = xyz[pi] - p0
    z = p0[:, 2] - (n[:, 0] * q[:, 0] + n[:, 1] * q[:, 1]) / n[:, 2]
    d = np.einsum("ij,ij->i", q, n) * np.sign(n[:, 2])
    order = np.lexsort((-z, pi))              # per point, the highest surface first
    first = np.ones(len(order), dtype=bool)
    first[1:] = pi[order][1:] != pi[order][:-1]
    z_roof[pi[order][first]] = z[order][first]
    dist[pi[order][first]] = d[order][first]
    return z_roof, dist


def point_roof_distances(solids: Iterable[Solid], xyz: np.ndarray) -> np.ndarray:
    """Distance (m) of each point to the roof surface above or below it, perpendicular to that surface.

    The surface is the highest RoofSurface whose outline holds the point (what a scanner sees
    from above); points outside every roof outline get NaN. Signed: positive above the roof.
    """
    return roof_surface_heights(solids, xyz)[1]


def _distance_attributes(res: BuildingResult, xyz: np.ndarray, dist: np.ndarray | None = None) -> None:
    """Median and 90th percentile of the points' distances to the building's roof (truth-free)."""
    if dist is None:
        dist = point_roof_distances(res.solids, xyz) if res.solids and len(xyz) else np.empty(0)
    d = np.abs(dist)
    d = d[np.isfinite(d)]
    if len(d):
        res.point_to_roof_median_m = float(np.median(d))
        res.point_to_roof_p90_m = float(np.percentile(d, 90))


@dataclass
class _BuiltPart:
    """One solid of a building: a fitted parametric part or a generic roof over a (sub-)footprint."""

    solid: Solid
    part_id: str
    polygon: Polygon
    model: str                                  # parametric | generic
    roof_part: RoofPart | None = None
    codes: list[int] | None = None              # validity codes when already validated

    @property
    def area_m2(self) -> float:
        return float(self.polygon.area)

    def size_m3(self, ground_z: float) -> float:
        """Volume of a parametric part; footprint area x mean roof-vertex height of a generic one (to rank parts)."""
        if self.roof_part is not None:
            return part_volume_m3(self.roof_part)
        z = np.concatenate([sf.exterior[:, 2] for sf in self.solid.of_kind("RoofSurface")])
        return self.area_m2 * float(np.mean(z) - ground_z)


#: a parametric fit must explain all but this share of the roof points (within 0.3 m): a model that
#: fits the main part of a composite building but not its wing or annex is not taken
MAX_OUTLIER_SHARE = 0.10
#: generic roof attempts before a footprint is split: (simplify_m, cap_margin_m)
GENERIC_ATTEMPTS = ((0.5, 0.0), (1.0, 0.0), (0.5, 0.05), (1.0, 0.05))
#: a footprint whose generic roof fails is split in two, down to this depth (at most 2**depth parts)
MAX_SPLIT_DEPTH = 3
MIN_SPLIT_PART_M2 = 12.0
#: a footprint at least this large that no single parametric model explains is tried in parts first
LARGE_BUILDING_M2 = 400.0


class _PartBuilder:
    """Roof solids for a footprint: parametric fit, else a generic roof, else the footprint split in parts."""

    def __init__(self, xyz, labels, planes, rxyz, ground_z, min_points, issues):
        self.xyz, self.labels, self.planes, self.rxyz = xyz, labels, planes, rxyz
        self.ground_z, self.min_points, self.issues = ground_z, min_points, issues

    def build(self, p: Polygon, pid: str, depth: int = 0, strict: bool = True) -> list[_BuiltPart] | None:
        rxyz = self.rxyz
        m = shapely.contains_xy(p, rxyz[:, 0], rxyz[:, 1])
        fit = fit_footprint(p, rxyz[m], self.ground_z, pid) if m.sum() >= self.min_points else None
        if (fit is not None and fit.rmse_m <= 0.15 and fit.cost / max(fit.n, 1) <= 0.02
                and fit.outlier_share <= MAX_OUTLIER_SHARE):
            return [_BuiltPart(part_solid(rp), rp.part_id, part_footprint(rp), "parametric", rp) for rp in fit.parts]
        if depth == 0 and p.area >= LARGE_BUILDING_M2:
            # a large multi-part building (a hall with aisles and an office block): its parts first,
            # taken when most of it is explained by parametric parts
            parts = self._split(p, pid, depth, strict)
            if parts is not None and sum(b.area_m2 for b in parts if b.model == "parametric") >= 0.5 * p.area:
                self.issues.append(f"{pid}: built in {len(parts)} parts (a large multi-part building)")
                return parts
        sel = shapely.contains_xy(p.buffer(0.5), self.xyz[:, 0], self.xyz[:, 1])
        if (self.labels[sel] >= 0).any():
            for simp, margin in GENERIC_ATTEMPTS:
                try:
                    cand = generic_roof_solid(p, self.xyz[sel], self.labels[sel], self.planes, self.ground_z,
                                              simplify_m=simp, cap_margin_m=margin, building_id=pid,
                                              strict_cap=strict)
                except GeometryError as exc:
                    self.issues.append(f"{pid}: generic roof failed (simplify {simp} m, cap margin {margin} m): "
                                       f"{exc.args[0] if exc.args else exc}")
                    continue
                rep = validate_solid(cand, feature=pid)
                if rep.valid:
                    return [_BuiltPart(cand, pid, p, "generic", None, list(rep.codes))]
                self.issues.append(f"{pid}: generic roof invalid (codes {rep.codes}, simplify {simp} m, "
                                   f"cap margin {margin} m)")
        out = self._split(p, pid, depth, strict)
        if out is not None and depth == 0:
            self.issues.append(f"{pid}: split into {len(out)} parts (no valid roof over the whole footprint)")
        return out

    def _split(self, p: Polygon, pid: str, depth: int, strict: bool) -> list[_BuiltPart] | None:
        if depth >= MAX_SPLIT_DEPTH:
            return None
        halves = split_footprint(p, MIN_SPLIT_PART_M2)
        if len(halves) < 2:
            return None
        out: list[_BuiltPart] = []
        for k, h in enumerate(halves):
            got = self.build(h, f"{pid}_{k + 1}", depth + 1, strict)
            if got is None:
                return None
            out += got
        return out


def split_footprint(poly: Polygon, min_part_m2: float = MIN_SPLIT_PART_M2) -> list[Polygon]:
    """Cut a footprint in two across its longer axis (of the minimum rotated rectangle).

    The cut runs through the footprint vertex nearest to the middle (within the middle 60 % of
    the length), so that wings and annexes tend to become parts of their own; without one, through
    the middle. Returns the pieces (each a Polygon, counter-clockwise), or ``[poly]`` when a piece
    would be smaller than ``min_part_m2``.
    """
    rect = rect_of(poly)
    if rect.width_m > rect.length_m:
        rect = rect.turned()
    ring = np.asarray(poly.exterior.coords)[:-1]
    u, _ = rect.local(ring[:, 0], ring[:, 1])
    half = rect.length_m / 2
    inner = u[np.abs(u) <= 0.3 * rect.length_m]
    cut = float(inner[np.argmin(np.abs(inner))]) if len(inner) else 0.0
    a = math.radians(rect.angle_deg)
    c, s_ = math.cos(a), math.sin(a)
    pad = rect.width_m + rect.length_m

    def box_local(u0, u1):
        uu = np.array([u0, u1, u1, u0])
        vv = np.array([-pad, -pad, pad, pad])
        return shapely.Polygon(np.column_stack([rect.cx + uu * c - vv * s_, rect.cy + uu * s_ + vv * c]))

    pieces = []
    for lo, hi in ((-half - pad, cut), (cut, half + pad)):
        part = shapely.intersection(poly, box_local(lo, hi))
        pieces += [orient(g, 1.0) for g in shapely.get_parts(part) if g.geom_type == "Polygon" and g.area > 1e-6]
    if len(pieces) < 2 or min(g.area for g in pieces) < min_part_m2:
        return [poly]
    return pieces


def _robust_height(xyz: np.ndarray, ground_z: float) -> tuple[float, str]:
    if len(xyz) == 0:
        return DEFAULT_HEIGHT_M, f"default height {DEFAULT_HEIGHT_M} m"
    return max(float(np.percentile(xyz[:, 2], 70) - ground_z), 1.0), "the 70th percentile of the roof points"


def _roof_attributes(res: BuildingResult, built: list[_BuiltPart], rxyz: np.ndarray, ground_z: float,
                     z_roof: np.ndarray | None = None) -> None:
    """Roof type, eave, ridge and RMSE of a building from its parts.

    All parts parametric: the main (largest) part's form and lowest eave, the highest ridge.
    Otherwise the ridge of a generic part is the lower of its highest vertex and its highest roof
    point (its planes are clipped to their points; where a plane could not be, the points say);
    the eave is the lowest wall top of the main part (all parts when none is parametric); the roof
    type is the main part's form, or flat / shed / 5000 (Mischform) from its planes.
    """
    main = built[0] if len(built) == 1 else max(built, key=lambda b: b.size_m3(ground_z))
    ridges = []
    for b in built:
        if b.roof_part is not None:
            ridges.append(b.roof_part.ridge_m)
            continue
        zs = np.concatenate([s.exterior[:, 2] for s in b.solid.of_kind("RoofSurface")])
        inside = shapely.contains_xy(b.polygon, rxyz[:, 0], rxyz[:, 1])
        top = min(zs.max(), rxyz[inside, 2].max()) if inside.sum() >= 5 else zs.max()
        ridges.append(float(top) - ground_z)
    res.ridge_height_m = float(max(ridges))
    parametric = [b for b in built if b.roof_part is not None]
    generic = [b for b in built if b.roof_part is None]
    if main.roof_part is not None:
        res.roofType = main.roof_part.form.code
        res.eave_height_m = float(main.roof_part.eave_low_m)
    else:
        scope = [main] if parametric else built
        roofs = [s for b in scope for s in b.solid.of_kind("RoofSurface")]
        walls_top = [w.exterior[:, 2].max() for b in scope for w in b.solid.of_kind("WallSurface")
                     if abs(w.exterior[:, 2].min() - ground_z) <= 1e-6]
        zs = np.concatenate([s.exterior[:, 2] for s in roofs])
        res.eave_height_m = float((min(walls_top) if walls_top else zs.min()) - ground_z)
        slopes = [s.slope_deg for s in roofs]
        if max(slopes) < 5.0:
            res.roofType = RoofForm.FLAT.code
        elif len({s.attributes.get("plane") for s in roofs}) == 1:
            res.roofType = RoofForm.SHED.code
        else:
            res.roofType = GENERIC_ROOF_CODE
    if z_roof is None:
        z_roof = roof_surface_heights([b.solid for b in built], rxyz)[0]
    d = rxyz[:, 2] - z_roof
    d = d[np.isfinite(d)]
    res.roof_rmse_m = float(np.sqrt(np.mean(d ** 2))) if len(d) else float("nan")


def _validate(res: BuildingResult, checked: Mapping[int, list[int]] | None = None) -> None:
    """Validity codes of all solids; ``checked`` maps ``id(solid)`` to codes already computed."""
    codes: set[int] = set()
    for pid, s in zip(res.part_ids, res.solids):
        known = checked.get(id(s)) if checked else None
        codes.update(known if known is not None else validate_solid(s, feature=pid).codes)
    res.validity_codes = sorted(codes)


# ================================================================================ per tile
def _official_lookup(official_lod2) -> dict[str, dict]:
    if official_lod2 is None:
        return {}
    if isinstance(official_lod2, Mapping):
        return {str(k): dict(v) for k, v in official_lod2.items()}
    out = {}
    cols = set(official_lod2.columns)
    for row in official_lod2.itertuples(index=False):
        d = row._asdict()
        out[str(d["building_id"])] = {k: d.get(k) for k in ("measured_height_m", "roof_type", "ground_height_m")
                                      if k in cols}
    return out


def reconstruct_tile(footprints_gdf, laz_path: str | os.PathLike | TilePoints, dtm_raster: Raster, tile: Tile, *,
                     official_lod2=None, storey_height_m: float = 3.0, min_hag_m: float = 2.0,
                     min_points: int = 20, min_density_m2: float = 1.0, on_duplicate: str = "raise",
                     default_height_m: float = DEFAULT_HEIGHT_M,
                     missing_halo: list[dict] | None = None) -> list[BuildingResult]:
    """Reconstruct the buildings of one tile.

    Parameters
    ----------
    footprints_gdf : geopandas.GeoDataFrame
        Staged buildings (``building_id, function_code, storeys, roof_form, geometry``), processing
        CRS; may hold more than the tile: a building belongs to the tile holding its footprint's
        representative point.
    laz_path : path-like or TilePoints
        Staged LAS/LAZ of tile + halo (``HeightAboveGround``), or its points already read.
    dtm_raster : Raster
        DTM of tile + halo.
    tile : Tile
    official_lod2 : DataFrame or mapping, optional
        Official LoD2 per ``building_id`` (``measured_height_m``), for LoD1 fallbacks.
    on_duplicate : {"raise", "flag"}
        Duplicate ``building_id``: raise :class:`GeometryError`, or reconstruct each and flag it
        (``issues``; later duplicates get ``#2``, ``#3`` appended to their id).
    missing_halo : list of dict, optional
        Parts of the halo without points because a neighbour's file could not be read
        (:attr:`citymodel.lidar.TileStats.halo_files_unreadable`: ``missing_bounds``, ``tile``,
        ``file``): a building whose footprint reaches into one is built from the points there are
        and says so in ``issues`` (``halo_missing:<neighbour tile>``, see :data:`HALO_MISSING`).

    Returns
    -------
    list of BuildingResult
        In footprint order. Footprints without geometry cannot be placed in a tile: every call
        returns them as ``method='rejected'`` (staging quarantines them first); invalid ones are
        repaired with ``make_valid`` (a self-intersecting one becomes a multi-part building) and
        flagged in ``issues``.

    Notes
    -----
    By default a tile is reconstructed in this process. With the environment variable
    ``CITYMODEL_LOD2_WORKERS`` (read at call time) set to N > 1, a tile with many buildings is
    spread over up to N forked worker processes (one per ``BUILDINGS_PER_WORKER`` buildings). The
    results do not depend on it.

    Raises
    ------
    GeometryError
        Duplicate ids with ``on_duplicate="raise"``.
    ConfigError
        ``CITYMODEL_LOD2_WORKERS`` is not a positive integer.
    """
    gdf = footprints_gdf
    ids = [str(b) for b in gdf["building_id"]]
    geoms = list(gdf.geometry.values)
    x0, y0, x1, y1 = tile.bounds
    # footprints without geometry cannot be placed: reported as rejected (see Returns)
    arr = np.array([shapely.Polygon() if g is None else g for g in geoms], dtype=object)
    empty = shapely.is_empty(arr)
    valid = shapely.is_valid(arr)
    placed = np.where(valid | empty, arr, None)
    bad = np.flatnonzero(~valid & ~empty)
    if len(bad):
        placed[bad] = shapely.make_valid(arr[bad])
    rp = shapely.get_coordinates(shapely.point_on_surface(np.where(empty, shapely.Point(0, 0), placed)))
    inside = (x0 <= rp[:, 0]) & (rp[:, 0] < x1) & (y0 <= rp[:, 1]) & (rp[:, 1] < y1)
    mine = [int(k) for k in np.flatnonzero(empty | inside)]
    seen: dict[str, int] = {}
    count: dict[str, int] = {}
    for b in ids:
        count[b] = count.get(b, 0) + 1
    dups = sorted({ids[k] for k in mine if count[ids[k]] > 1})
    if dups and on_duplicate == "raise":
        raise dataset_error(GeometryError, "buildings", f"duplicate building_id(s) {dups[:5]}"
                            f"{' ...' if len(dups) > 5 else ''}", "make building ids unique at the source or pass "
                            "on_duplicate='flag'", dups[0])
    pts = laz_path if isinstance(laz_path, TilePoints) else read_tile_points(laz_path, min_hag_m)
    official = _official_lookup(official_lod2)
    fixed: list = []
    notes: list[list[str]] = []
    for k in mine:
        g = geoms[k]
        nt = []
        if g is not None and not g.is_empty and not g.is_valid:
            nt.append(f"invalid footprint ({shapely.is_valid_reason(g)}) repaired with make_valid")
            g = shapely.make_valid(g)
            g = shapely.union_all([p for p in shapely.get_parts(g) if p.geom_type == "Polygon" and p.area > 0.5])
        fixed.append(g)
        notes.append(nt)
    idxs = points_by_footprint(pts, fixed)
    cov = pts.bounds
    # footprints of all buildings (this tile's and the neighbouring tiles'): who touches whom
    others = placed
    tree = shapely.STRtree(others)
    results: list[BuildingResult | None] = []
    tasks: list[tuple[int, tuple, dict]] = []        # (position in results, args, kwargs)
    gaps = [(shapely.box(*m["missing_bounds"]), m.get("tile") or m.get("file") or "?") for m in (missing_halo or [])
            if m.get("missing_bounds") and m["missing_bounds"][2] > m["missing_bounds"][0]
            and m["missing_bounds"][3] > m["missing_bounds"][1]]
    for k, g, idx, nt in zip(mine, fixed, idxs, notes):
        for box, name in gaps:
            if g is not None and not g.is_empty and g.intersection(box).area > 0:
                nt.append(f"{HALO_MISSING}:{name}")
        bid = ids[k]
        if bid in seen:
            seen[bid] += 1
            nt.append(f"duplicate building_id '{bid}' (occurrence {seen[bid]})")
            bid_out = f"{bid}#{seen[bid]}"
        else:
            seen[bid] = 1
            bid_out = bid
            if bid in dups:
                nt.append(f"duplicate building_id '{bid}' (occurrence 1)")
        row = gdf.iloc[k]
        fc = row.get("function_code") if hasattr(row, "get") else None
        st = row.get("storeys") if hasattr(row, "get") else None
        if g is None or g.is_empty:
            r = BuildingResult(bid_out, fc, None, method="rejected", fallback_reason="empty footprint",
                               issues=nt + ["empty footprint: nothing built"], tile_id=tile.id)
            results.append(r)
            continue
        minx, miny, maxx, maxy = g.bounds
        in_cov = len(pts.xyz) > 0 and not (maxx < cov[0] or minx > cov[2] or maxy < cov[1] or miny > cov[3])
        touching = [int(j) for j in tree.query(g, predicate="dwithin", distance=TOUCH_M) if int(j) != k]
        kwargs = dict(building_id=bid_out, function_code=fc,
                      storeys=None if st is None or (isinstance(st, float) and math.isnan(st)) else st,
                      official=official.get(bid), storey_height_m=storey_height_m,
                      default_height_m=default_height_m, min_points=min_points,
                      min_density_m2=min_density_m2, in_coverage=in_cov,
                      neighbours=[others[j] for j in touching])
        tasks.append((len(results), (g, idx, nt), kwargs))
        results.append(None)
    if dtm_raster is not None:
        _dtm_array(dtm_raster)          # cached once, before worker processes inherit the raster
    for pos, r in zip((t[0] for t in tasks), _run_tasks(pts, dtm_raster, [t[1:] for t in tasks])):
        r.tile_id = tile.id
        results[pos] = r
    return results


# ====================================================================== parallel buildings
#: environment variable: worker processes per tile (default and 1: in-process; opt-in, see _workers)
WORKERS_ENV = "CITYMODEL_LOD2_WORKERS"
#: a tile gets one worker process per this many buildings at most (a process costs ~0.1 s)
BUILDINGS_PER_WORKER = 40
_BATCH = 4
_SHARED: tuple | None = None        # (points, dtm, tasks) inherited by forked workers


def _workers(n_tasks: int) -> int:
    """Worker processes for ``n_tasks`` buildings (read at run time from ``CITYMODEL_LOD2_WORKERS``)."""
    raw = os.environ.get(WORKERS_ENV, "").strip()
    if raw:
        try:
            want = int(raw)
        except ValueError:
            want = 0
        if want < 1:
            from ..errors import ConfigError
            raise dataset_error(ConfigError, "buildings", f"{WORKERS_ENV}={raw!r} is not a positive integer",
                                f"set {WORKERS_ENV} to the number of processes per tile (1: no extra processes) "
                                "or unset it")
    else:
        # default: in-process. Forking inside an orchestrator's process (threads of Dagster, embree,
        # lazrs) risks deadlocks; tiles are the unit of parallelism. Opt in with the variable.
        want = 1
    return max(1, min(want, n_tasks // BUILDINGS_PER_WORKER))


def _run_task(pts: TilePoints, dtm: Raster, task) -> BuildingResult:
    (g, idx, notes), kwargs = task
    idx = clean_building_points(pts, idx)
    r = reconstruct_building(g, pts.xyz[idx], dtm, **kwargs)
    r.issues = notes + r.issues
    return r


def _run_batch(lo_hi: tuple[int, int]) -> list[BuildingResult]:
    pts, dtm, tasks = _SHARED
    return [_run_task(pts, dtm, tasks[i]) for i in range(*lo_hi)]


def _run_tasks(pts: TilePoints, dtm: Raster, tasks: list) -> list[BuildingResult]:
    """Reconstruct the buildings of ``tasks`` in order: in-process, or in forked worker processes.

    Every building is independent and deterministic (its RANSAC has its own seed): the results
    are the same whatever the number of processes. Workers are forked (they inherit the tile's
    points and DTM, nothing is pickled but the results); where forking is not possible (no fork
    on the platform, a daemonic process) the buildings are done in-process.
    """
    global _SHARED
    workers = _workers(len(tasks))
    if workers > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor
        from concurrent.futures.process import BrokenProcessPool
        batches = [(i, min(i + _BATCH, len(tasks))) for i in range(0, len(tasks), _BATCH)]
        _SHARED = (pts, dtm, tasks)
        try:
            with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as ex:
                return [r for batch in ex.map(_run_batch, batches) for r in batch]
        except (ValueError, OSError, AssertionError, BrokenProcessPool):
            pass            # no fork here (or a daemonic parent, or a killed worker): in-process
        finally:
            _SHARED = None
    return [_run_task(pts, dtm, t) for t in tasks]
