"""Where a variant's changes can change an analysis result: its impact area per layer.

A variant is analysed only inside these areas; everywhere else the city's results stand. The areas
are conservative (they may be larger than the true change, never smaller), which is what makes the
impact-limited result equal a full recomputation of the variant (tests/test_variant_impact.py).

Shading (sun hours on ground and facades, DIN EN 17037, roof irradiation)
    A receptor P can change only if a ray it casts towards the sun (or the sky) passes a changed
    object: a new, modified or removed building (old and new solid), or an added or removed tree
    crown. For a ray direction with elevation e and horizontal direction d, the receptors whose ray
    meets an object of top height z_top lie in the object's footprint swept backwards along -d by
    (z_top - z_min) / tan(e), z_min being the lowest terrain of the area (receptors are on or above
    the terrain). The impact area is the union of these sweeps over every ray direction the layer
    uses (the time steps of the analysed days and the DIN EN 17037 day; for irradiation the binned
    sun positions of the year and the Tregenza sky patches), plus the changed footprints themselves
    (cells that come under or out from under a roof).
Noise (RLS-19)
    A changed road changes every receiver within the propagation distance of it (old and new line).
    A changed screening block changes the receivers whose straight path to some road piece crosses
    the block's raster cells: the union, over sample points of every road within reach, of the
    "shadow wedge" behind the changed footprint seen from that point, out to the propagation distance.
    Reflections (first order, :func:`citymodel.analysis.noise.reflected_energies`): a reflection
    S -> P -> R counts only where the reflection point P lies within the reflection distance d of
    the source piece S and of the receiver R. A changed building F (old or new footprint) changes
    a receiver's reflections in three ways, each bounded by a distance from F:

    * F's own facades reflect (or no longer reflect): P lies on F's boundary and |PR| <= d, so
      R lies within d of F;
    * F screens the leg P -> R of a reflection at another facade: the leg crosses F and is at most
      d long, so R lies within d of F;
    * F screens the leg S -> P: a point of that leg lies in F, and R is at most |RP| + |PS| <= 2 d
      from it, so R lies within 2 d of F.

    The receivers inside the new or old footprint change too (they lie within F). So with
    reflections the noise area of a changed building grows by its footprint buffered by 2 d. A
    changed road's reflections reach only receivers within 2 d of it, which the propagation
    distance already covers where 2 d <= it (else the road is buffered by 2 d). Which facades
    reflect does not depend on other buildings (no visibility test between facades), so an
    unchanged facade reflects the same whatever changed elsewhere; its paths are screened by the
    changed building only in the ways above.
Sight lines
    A line whose 2D path passes within a small buffer of a changed footprint or crown; a viewshed
    whose radius reaches one.
Flood
    The new and modified buildings (the depth raster does not depend on buildings).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
import shapely
from shapely.geometry import Polygon
from shapely.ops import unary_union

#: extra buffer (m) around every impact area: receptor offsets from walls and roofs, raster cells
SAFETY_M = 2.0


@dataclass
class ChangedObject:
    """A building or tree crown that the variant adds, changes or removes (old and new count apart)."""

    id: str
    footprint: Polygon
    top_z: float
    kind: str  # building | tree
    status: str  # added | modified | removed | removed_tree | added_tree | modified_old


@dataclass
class ImpactAreas:
    """The impact area of each layer (shapely geometries in the processing CRS; empty: no impact)."""

    sun: object
    solar: object
    noise: object
    sightline_objects: list[ChangedObject] = field(default_factory=list)
    flood_buildings: list[str] = field(default_factory=list)
    changed_roads: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        return {"sun_area_m2": round(float(self.sun.area), 1), "solar_area_m2": round(float(self.solar.area), 1),
                "noise_area_m2": round(float(self.noise.area), 1), "changed_roads": list(self.changed_roads),
                "flood_buildings": list(self.flood_buildings)}


def changed_objects(vstore) -> list[ChangedObject]:
    """The buildings and tree crowns a variant adds, changes or removes, old and new."""
    out: list[ChangedObject] = []
    base = vstore.base.buildings()
    gone = base.select(vstore.removed_ids + vstore.modified_ids).table
    for r in gone.itertuples():
        top = float(getattr(r, "top_z_m", np.nan))
        if not np.isfinite(top):
            top = float(r.ground_height_m) + float(np.nanmax([r.ridge_height_m, r.eave_height_m,
                                                               getattr(r, "measured_height_m", np.nan)]))
        out.append(ChangedObject(str(r.building_id), r.geometry, top, "building",
                                 "removed" if str(r.building_id) in set(vstore.removed_ids) else "modified_old"))
    for bid, b in vstore.built.items():
        out.append(ChangedObject(bid, b.row["geometry"], float(b.row["top_z_m"]), "building", b.row["variant_status"]))
    base_trees = vstore.base.trees()
    gone_trees = {c.tree_id for c in vstore.variant.trees_removed}
    if base_trees is not None and gone_trees:
        for r in base_trees[base_trees["tree_id"].astype(str).isin(gone_trees)].itertuples():
            out.append(_crown(str(r.tree_id), r.geometry, r.height_m, r.crown_diameter_m, vstore, "removed_tree"))
    new_trees = vstore.trees()
    added = {c.id for c in vstore.variant.trees_added}
    if new_trees is not None and added:
        for r in new_trees[new_trees["tree_id"].astype(str).isin(added)].itertuples():
            out.append(_crown(str(r.tree_id), r.geometry, r.height_m, r.crown_diameter_m, vstore, "added_tree"))
    return out


def _crown(tid, point, height_m, crown_m, vstore, status) -> ChangedObject:
    d = float(crown_m) if crown_m is not None and np.isfinite(crown_m) else 2.0
    g = vstore.base.terrain(point.buffer(d).bounds, 1.0)
    ground = float(np.nanmax(g.array))
    return ChangedObject(tid, point.buffer(d / 2.0 + 0.5, 16), ground + float(height_m) + 0.5, "tree", status)


def sweep(footprint: Polygon, direction: np.ndarray, top_z: float, z_min: float, max_length_m: float) -> Polygon:
    """The receptors (2D) whose ray towards ``direction`` (unit, pointing to the sky) passes over
    ``footprint`` below ``top_z``: the footprint swept backwards along the ray's horizontal direction.

    A superset for non-convex footprints (the convex hull of the footprint and its translate)."""
    d = np.asarray(direction, float)
    h = float(np.hypot(d[0], d[1]))
    if h < 1e-9 or top_z <= z_min:
        return footprint
    tan_e = d[2] / h
    length = max_length_m if tan_e <= 0 else min(max_length_m, (top_z - z_min) / tan_e)
    dx, dy = -d[0] / h * length, -d[1] / h * length
    moved = shapely.affinity.translate(footprint, dx, dy)
    return unary_union([footprint, moved]).convex_hull


def shading_area(objects: Sequence[ChangedObject], directions: np.ndarray, z_min: float,
                 max_length_m: float = 5000.0) -> object:
    """Union over objects and directions of :func:`sweep`, plus the footprints, grown by SAFETY_M."""
    dirs = np.asarray(directions, float).reshape(-1, 3)
    dirs = dirs[dirs[:, 2] > 0]
    dirs = np.unique(np.round(dirs, 12), axis=0)
    parts = []
    for o in objects:
        parts.append(o.footprint)
        parts.extend(sweep(o.footprint, d, o.top_z, z_min, max_length_m) for d in dirs)
    if not parts:
        return Polygon()
    return unary_union(parts).buffer(SAFETY_M)


def noise_area(objects: Sequence[ChangedObject], roads, changed_roads, max_distance_m: float,
               reflection_distance_m: float = 0.0) -> object:
    """Receivers whose noise can change: near changed roads, behind a changed screening block, or
    (with reflections, ``reflection_distance_m`` > 0) within twice the reflection distance of a
    changed building (see the module docstring).

    A receiver R is screened differently only if the straight path from some point S of a road
    segment AB to R crosses a changed block F, i.e. the triangle (A, B, R) meets F. For a convex F
    that set lies in the convex hull of F and of F's vertices v moved away from A and from B
    (``v + L (v - A)/|v - A|``) by ``L = 2 max_distance + |AB|`` (no receiver farther than
    ``max_distance`` from AB hears it). That hull, per segment within reach and per changed block,
    is the noise impact area of the block (see the module docstring).
    """
    parts = []
    reach = 2.0 * float(reflection_distance_m)
    if changed_roads is not None and len(changed_roads):
        parts.append(unary_union(list(changed_roads.geometry)).buffer(max(max_distance_m, reach)))
    blds = [o for o in objects if o.kind == "building"]
    if reach > 0:
        parts.extend(o.footprint.buffer(reach + SAFETY_M) for o in blds)
    if blds and roads is not None and len(roads):
        coords, idx = shapely.get_coordinates(shapely.get_parts(np.asarray(roads.geometry.values, dtype=object)),
                                              return_index=True)
        same = idx[1:] == idx[:-1]
        seg_a, seg_b = coords[:-1][same], coords[1:][same]
        for o in blds:
            hull = o.footprint.convex_hull.buffer(SAFETY_M)
            v = np.asarray(hull.exterior.coords)[:-1]
            segs = shapely.linestrings(np.stack([seg_a, seg_b], axis=1))
            near = shapely.dwithin(segs, hull, max_distance_m)
            pieces = [hull]
            for a, b in zip(seg_a[near], seg_b[near]):
                far_len = 2.0 * max_distance_m + float(np.hypot(*(b - a)))
                pts = [v]
                for s in (a, b):
                    d = v - s
                    n = np.hypot(d[:, 0], d[:, 1])
                    n = np.where(n < 1e-6, 1e-6, n)
                    pts.append(v + d / n[:, None] * far_len)
                pieces.append(shapely.MultiPoint(np.vstack(pts)).convex_hull)
            parts.append(unary_union(pieces))
    if not parts:
        return Polygon()
    return unary_union(parts).buffer(SAFETY_M)


def impact_areas(vstore, *, sun_directions: np.ndarray, solar_directions: np.ndarray, z_min: float,
                 noise_max_distance_m: float, noise_reflection_distance_m: float = 0.0) -> ImpactAreas:
    """The impact area of every layer for a variant (see the module docstring).

    Parameters
    ----------
    vstore : citymodel.variants.model.VariantStore
    sun_directions, solar_directions : (n, 3) arrays
        Every ray direction of the sun-hours layers (days and DIN EN 17037 day) and of the
        irradiation layer (:func:`citymodel.analysis.solar.shading_directions`).
    z_min : float
        Lowest terrain height of the area (m).
    noise_max_distance_m, noise_reflection_distance_m : float
        Propagation distance of the noise layer and its reflection distance (0: no reflections).
    """
    objs = changed_objects(vstore)
    sun = shading_area(objs, sun_directions, z_min)
    solar = shading_area(objs, solar_directions, z_min)
    roads_after = vstore.roads()
    changed_ids = vstore.changed_road_ids
    changed = None
    if changed_ids:
        import pandas as pd

        before = vstore.base.roads()
        frames = [r[r["road_id"].astype(str).isin(set(changed_ids))] for r in (before, roads_after) if r is not None]
        changed = pd.concat(frames, ignore_index=True) if frames else None
    noise = noise_area(objs, roads_after, changed, noise_max_distance_m, noise_reflection_distance_m)
    flood = [o.id for o in objs if o.kind == "building" and o.status in ("added", "modified")]
    return ImpactAreas(sun=sun, solar=solar, noise=noise, sightline_objects=objs, flood_buildings=flood,
                       changed_roads=list(changed_ids))
