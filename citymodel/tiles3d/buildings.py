"""Buildings as 3D Tiles 1.1: one GLB per content tile with per-building metadata.

Each content tile is a glTF 2.0 binary with one triangle primitive:

- positions (FLOAT VEC3) in a local east-north-up frame at the tile's centre, in glTF's y-up
  axes (``x = east, y = up, z = -north``); the tile's ``transform`` takes them to ECEF
  (EPSG:4978) after the y-up to z-up rotation 3D Tiles applies to glTF content;
- flat normals (one per planar surface), vertex colours by surface kind (roof red-brown, walls
  light grey, ground dark grey) multiplying a white material; a caller may colour single surfaces
  instead (``surface_colors``: analysis layers coloured by value, see :mod:`.colormap`);
- ``EXT_mesh_features``: feature id set 0 = the building (``_FEATURE_ID_0``, property table 0 of
  class ``building``), feature id set 1 = the semantic surface type (``_FEATURE_ID_1``, property
  table 1 of class ``surface``);
- ``EXT_structural_metadata``: the schema (classes ``building`` and ``surface``) and the tables.

An analysis layer passes ``legend`` (a :class:`~citymodel.tiles3d.colormap.ColorRamp`): its legend
goes to ``asset.extras.legend`` and, as tileset metadata of class ``legend``, to ``metadata``.

Heights are orthometric in the input (DHHN2016) and made ellipsoidal by the geoid model of
:mod:`citymodel.tiles3d.geo`; the model used goes to ``asset.extras.geoid`` of ``tileset.json``.

Tiles: buildings are grouped into the 1 km grid tiles by the centre of their bounding box; a grid
tile with more than ``max_buildings_per_tile`` buildings is split into quadrants (down to
``min_tile_size_m``); the grid tiles are joined by a quadtree (2 km, 4 km, ...) up to one root.
Tiles without content carry the geometric error of :mod:`citymodel.tiles3d.tileset`.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

import mapbox_earcut
import numpy as np

from ..errors import ConfigError, GeometryError, dataset_error
from ..geometry3d import Solid
from .geo import GeoTransformer, GeoidModel, enu_frame, geodetic_to_ecef, resolve_geoid
from .glb import ARRAY_BUFFER, ELEMENT_ARRAY_BUFFER, GltfBuilder, PropertySpec, add_property_table, schema_class
from .tileset import (GEOMETRIC_ERROR_DIVISOR, Region, column_major, quadtree_parents, tileset_document,
                      write_bytes_atomic, write_json_atomic)

if TYPE_CHECKING:
    from .colormap import ColorRamp

#: ``surface_colors(record, surface_index, kind) -> (r, g, b[, a]) or None``
SurfaceColorFn = Callable[[Mapping[str, Any], int, str], "Sequence[int] | None"]

__all__ = ["write_building_tiles", "triangulate_solid", "TilesetInfo", "BUILDING_PROPERTIES", "SURFACE_KINDS",
           "SURFACE_COLORS", "Y_UP_TO_Z_UP", "building_glb", "SurfaceColorFn"]

DATASET = "3D Tiles buildings"

#: Semantic surface kinds in the order of the ``surface`` property table (feature id set 1).
SURFACE_KINDS = ("GroundSurface", "WallSurface", "RoofSurface", "ClosureSurface")
_KIND_INDEX = {k: i for i, k in enumerate(SURFACE_KINDS)}
#: Vertex colours (sRGB bytes, alpha) per surface kind.
SURFACE_COLORS = np.array([[90, 90, 90, 255], [224, 224, 220, 255], [150, 62, 44, 255], [200, 200, 255, 255]],
                          dtype=np.uint8)

#: The default properties of class ``building`` (the caller's analysis properties are appended).
BUILDING_PROPERTIES: tuple[PropertySpec, ...] = (
    PropertySpec("id", "STRING", None, None, ("id", "building_id"), "building identifier", required=True),
    PropertySpec("function", "STRING", None, "", ("function", "function_code"), "ALKIS building function code"),
    PropertySpec("roofType", "STRING", None, "", ("roofType", "roof_type", "roof_code"),
                 "AdV roof form code (Dachform)"),
    PropertySpec("eaveHeight", "SCALAR", "FLOAT32", -9999.0, ("eaveHeight", "eave_height_m"),
                 "eave height above ground (m)"),
    PropertySpec("ridgeHeight", "SCALAR", "FLOAT32", -9999.0, ("ridgeHeight", "ridge_height_m"),
                 "ridge height above ground (m)"),
    PropertySpec("groundHeight", "SCALAR", "FLOAT32", -9999.0, ("groundHeight", "ground_height_m"),
                 "ground height, DHHN2016 (m)"),
    PropertySpec("measuredHeight", "SCALAR", "FLOAT32", -9999.0, ("measuredHeight", "measured_height_m"),
                 "highest point above ground (m)"),
    PropertySpec("storeys", "SCALAR", "UINT8", 255, ("storeys", "storeys_above_ground"),
                 "storeys above ground"),
    PropertySpec("method", "STRING", None, "", ("method",), "how the model was made (lod2_fit, lod1_block, ...)"),
)

#: Rotation from 3D Tiles' z-up to glTF's y-up (the inverse of what a viewer applies).
Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, -1.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])


@dataclass
class TilesetInfo:
    """What :func:`write_building_tiles` (or the tree writer) wrote.

    Attributes
    ----------
    tileset_path : Path
    n_features : int
        Buildings (trees) published.
    n_content_tiles : int
    skipped : list of dict
        ``{"id", "reason"}`` of records left out (invalid solids, unusable records).
    empty_tiles : list of str
        Grid tiles that had records but nothing publishable.
    geoid : dict
        The geoid model used (:class:`~citymodel.tiles3d.geo.GeoidModel` as dict); ``fallback``
        True means a weaker model than asked for.
    bytes_total : int
        Bytes of all content files.
    seconds : float
    contents : list of dict
        Per content: ``uri``, ``tile``, ``features``, ``bytes``.
    """

    tileset_path: Path
    n_features: int = 0
    n_content_tiles: int = 0
    skipped: list[dict] = field(default_factory=list)
    empty_tiles: list[str] = field(default_factory=list)
    geoid: dict = field(default_factory=dict)
    bytes_total: int = 0
    seconds: float = 0.0
    contents: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["tileset_path"] = str(self.tileset_path)
        return d


# ---------------------------------------------------------------------- triangulation
def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.column_stack([a[:, 1] * b[:, 2] - a[:, 2] * b[:, 1], a[:, 2] * b[:, 0] - a[:, 0] * b[:, 2],
                            a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]])


@dataclass
class Triangulation:
    """Triangles of many solids, one vertex set per surface (flat shading).

    Attributes
    ----------
    vertices : (n, 3) float64
        In the input CRS.
    triangles : (m, 3) int64
        Indices into ``vertices``, counter-clockwise seen from outside.
    vertex_surface : (n,) int64
        Surface of each vertex.
    surface_kind : (s,) int64
        Index into :data:`SURFACE_KINDS`.
    surface_solid : (s,) int64
        Solid (input position) of each surface.
    bad : dict
        ``{solid position: reason}`` of solids left out (not finite, too few vertices, no area).
    """

    vertices: np.ndarray
    triangles: np.ndarray
    vertex_surface: np.ndarray
    surface_kind: np.ndarray
    surface_solid: np.ndarray
    bad: dict

    @property
    def vertex_solid(self) -> np.ndarray:
        return self.surface_solid[self.vertex_surface]


def triangulate_solids(solids: Sequence[Solid], _bad: dict | None = None) -> Triangulation:
    """Triangulate the planar surfaces of many solids at once.

    Convex polygons without holes are fanned, vectorised over all solids; the others are
    triangulated by earcut after projection onto the coordinate plane their normal is closest to.
    Triangles are oriented like their polygon (counter-clockwise seen from outside: the Newell
    normal of the polygon); degenerate triangles are dropped. Solids with non-finite coordinates,
    rings of fewer than 3 vertices or no surface are left out and named in ``bad``.
    """
    bad: dict[int, str] = dict(_bad or {})
    for i, sol in enumerate(solids):
        if not sol.surfaces:
            bad.setdefault(i, "solid has no surfaces")
    surf_solid_l = [i for i, sol in enumerate(solids) if i not in bad for _ in sol.surfaces]
    surfaces = [s for i, sol in enumerate(solids) if i not in bad for s in sol.surfaces]
    if not surfaces:
        z = np.zeros((0, 3))
        e = np.zeros(0, dtype=np.int64)
        return Triangulation(z, np.zeros((0, 3), dtype=np.int64), e, e, e, bad)
    ext = [s.rings[0] for s in surfaces]
    lens = np.fromiter(map(len, ext), dtype=np.int64, count=len(ext))
    surf_solid = np.array(surf_solid_l, dtype=np.int64)
    try:
        V = np.concatenate(ext).astype(float, copy=False)
    except ValueError:
        V = np.zeros((0, 3))
    if V.ndim != 2 or V.shape[1:] != (3,) or len(V) != lens.sum():
        # a malformed ring somewhere: find the solids one by one
        n_bad = len(bad)
        for i, sol in enumerate(solids):
            if i in bad:
                continue
            try:
                for srf in sol.surfaces:
                    r = np.asarray(srf.rings[0], dtype=float)
                    if r.ndim != 2 or r.shape[1] != 3:
                        raise ValueError
            except (ValueError, TypeError, IndexError):
                bad[i] = "rings are not (n, 3) coordinate arrays"
        if len(bad) == n_bad:
            raise GeometryError("rings are not (n, 3) coordinate arrays")
        return triangulate_solids([Solid([]) if i in bad else s for i, s in enumerate(solids)], bad)
    nsurf = len(surfaces)
    starts = np.zeros(nsurf, dtype=np.int64)
    np.cumsum(lens[:-1], out=starts[1:])
    ring_of = np.repeat(np.arange(nsurf), lens)
    badv = ~np.all(np.isfinite(V), axis=1)
    for i in np.unique(surf_solid[ring_of[badv]]):
        bad[int(i)] = "coordinates are not finite"
    for i in np.unique(surf_solid[lens < 3]):
        bad.setdefault(int(i), "a ring has fewer than 3 vertices")
    if len(bad) and any(int(i) in bad for i in np.unique(surf_solid)):
        return triangulate_solids([Solid([]) if i in bad else s for i, s in enumerate(solids)], bad)
    kinds = np.array([_KIND_INDEX.get(s.kind, 3) for s in surfaces], dtype=np.int64)
    holes = np.fromiter((len(s.rings) > 1 for s in surfaces), dtype=bool, count=nsurf)
    n = len(V)
    idx = np.arange(n)
    last = starts + lens - 1
    nxt = idx + 1
    nxt[last] = starts
    prv = idx - 1
    prv[starts] = last
    # Newell normals of the exterior rings, relative to each ring's first vertex (precision)
    a = V - V[np.repeat(starts, lens)]
    b = a[nxt]
    comp = np.column_stack([(a[:, 1] - b[:, 1]) * (a[:, 2] + b[:, 2]), (a[:, 2] - b[:, 2]) * (a[:, 0] + b[:, 0]),
                            (a[:, 0] - b[:, 0]) * (a[:, 1] + b[:, 1])])
    normal = np.add.reduceat(comp, starts, axis=0)
    for si in np.flatnonzero(holes):
        o = V[starts[si]]
        for hole in surfaces[si].rings[1:]:
            h = np.asarray(hole, dtype=float) - o
            hn = np.roll(h, -1, axis=0)
            normal[si] += [np.sum((h[:, 1] - hn[:, 1]) * (h[:, 2] + hn[:, 2])),
                           np.sum((h[:, 2] - hn[:, 2]) * (h[:, 0] + hn[:, 0])),
                           np.sum((h[:, 0] - hn[:, 0]) * (h[:, 1] + hn[:, 1]))]
    nlen = np.sqrt(np.einsum("ij,ij->i", normal, normal))
    unit = normal / np.where(nlen > 0, nlen, 1.0)[:, None]
    # convexity: the turn at every vertex agrees with the normal
    turn = np.einsum("ij,ij->i", _cross(a - a[prv], a[nxt] - a), unit[ring_of])
    convex = np.minimum.reduceat(turn, starts) >= -1e-9
    fan = convex & ~holes & (nlen > 1e-12)
    tris = []
    fl = lens[fan]
    if len(fl):
        nt = fl - 2
        base = np.repeat(starts[fan], nt)
        first = np.zeros(len(nt), dtype=np.int64)
        np.cumsum(nt[:-1], out=first[1:])
        i = np.arange(int(nt.sum())) - np.repeat(first, nt) + 1
        tris.append(np.column_stack([base, base + i, base + i + 1]))
    extra_pts = []
    extra_surf = []
    n_extra = n
    for si in np.flatnonzero(~fan & (nlen > 1e-12)):
        rings = [np.asarray(r, dtype=float) for r in surfaces[si].rings]
        o = rings[0][0]
        pts = np.concatenate(rings) - o
        drop = int(np.argmax(np.abs(unit[si])))
        keep = [k for k in range(3) if k != drop]
        ends = np.cumsum([len(r) for r in rings]).astype(np.uint32)
        t = mapbox_earcut.triangulate_float64(np.ascontiguousarray(pts[:, keep]), ends)
        t = t.astype(np.int64).reshape(-1, 3)
        m = np.empty(len(pts), dtype=np.int64)
        ne = len(rings[0])
        m[:ne] = starts[si] + np.arange(ne)
        nh = len(pts) - ne
        if nh:
            m[ne:] = n_extra + np.arange(nh)
            extra_pts.append(pts[ne:] + o)
            extra_surf.append(np.full(nh, si))
            n_extra += nh
        tris.append(m[t])
    if extra_pts:
        V = np.concatenate([V] + extra_pts)
        ring_of = np.concatenate([ring_of] + extra_surf)
    T = np.concatenate(tris) if tris else np.zeros((0, 3), dtype=np.int64)
    if len(T):
        o = V[T[:, 0]]
        cr = _cross(V[T[:, 1]] - o, V[T[:, 2]] - o)
        area2 = np.sqrt(np.einsum("ij,ij->i", cr, cr))
        keep = area2 > 1e-9
        T, cr = T[keep], cr[keep]
        flip = np.einsum("ij,ij->i", cr, unit[ring_of[T[:, 0]]]) < 0
        T[flip] = T[flip][:, [0, 2, 1]]
        # group the triangles by solid (earcut ones were appended at the end)
        order = np.argsort(surf_solid[ring_of[T[:, 0]]], kind="stable")
        T = T[order]
    with_tris = np.zeros(len(solids), dtype=bool)
    with_tris[surf_solid[ring_of[T[:, 0]]]] = True
    for i in np.flatnonzero(~with_tris):
        bad.setdefault(int(i), "no triangle of positive area")
    return Triangulation(V, T, ring_of, kinds, surf_solid, bad)


def triangulate_solid(solid: Solid) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Triangles of one solid: ``(vertices, triangles, vertex_surface, surface_kind)``.

    Raises
    ------
    GeometryError
        If the solid cannot be triangulated (see :func:`triangulate_solids`).
    """
    t = triangulate_solids([solid])
    if t.bad:
        raise GeometryError(t.bad[0])
    return t.vertices, t.triangles, t.vertex_surface, t.surface_kind


# ---------------------------------------------------------------------- content
def _local_frame(lon: np.ndarray, lat: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre (ECEF) and ENU rotation of a tile's points."""
    lon_c = 0.5 * (float(lon.min()) + float(lon.max()))
    lat_c = 0.5 * (float(lat.min()) + float(lat.max()))
    h_c = 0.5 * (float(h.min()) + float(h.max()))
    centre = geodetic_to_ecef(np.array([lon_c]), np.array([lat_c]), np.array([h_c]))[0]
    return centre, enu_frame(lon_c, lat_c)


def tile_transform(centre: np.ndarray, rot: np.ndarray) -> np.ndarray:
    """4x4 matrix from the local ENU (z-up) frame to ECEF."""
    m = np.eye(4)
    m[:3, :3] = rot
    m[:3, 3] = centre
    return m


def building_glb(tri: Triangulation, members: np.ndarray, rows: Sequence[Mapping[str, Any]],
                 specs: Sequence[PropertySpec], geo: GeoTransformer, ids: Sequence[str],
                 surface_rgba: np.ndarray | None = None) -> tuple[bytes, Region, np.ndarray]:
    """The GLB of one content tile.

    ``members`` are the positions (in the triangulation's solids) of the tile's buildings, in the
    order of their feature ids; ``rows`` and ``ids`` are their attributes and ids in that order.
    ``surface_rgba`` (s, 4) uint8, optional: the vertex colour of every surface of the
    triangulation (default :data:`SURFACE_COLORS` by kind).
    Returns the GLB bytes, the content's region and the tile transform (4x4, local ENU -> ECEF).
    """
    nsol = int(tri.surface_solid.max()) + 1 if len(tri.surface_solid) else 0
    rank = np.full(max(nsol, int(members.max()) + 1), -1, dtype=np.int64)
    rank[members] = np.arange(len(members))
    vsol = tri.vertex_solid
    vmask = rank[vsol] >= 0
    vsel = np.flatnonzero(vmask)
    remap = np.full(len(vmask), -1, dtype=np.int64)
    remap[vsel] = np.arange(len(vsel))
    tmask = vmask[tri.triangles[:, 0]]
    T = remap[tri.triangles[tmask]]
    V = tri.vertices[vsel]
    vsurf_global = tri.vertex_surface[vsel]
    vkind = tri.surface_kind[vsurf_global]
    usurf, vsurf = np.unique(vsurf_global, return_inverse=True)
    fid = rank[vsol[vsel]].astype(np.float32)
    nsurf = len(usurf)

    lon, lat, h = geo.to_geodetic(V[:, 0], V[:, 1], V[:, 2])
    ecef = geodetic_to_ecef(lon, lat, h)
    region = Region.from_geodetic(lon, lat, h)
    centre, rot = _local_frame(lon, lat, h)
    local = (ecef - centre) @ rot  # east, north, up
    # flat normals in the local frame: area-weighted sum of the triangle normals per surface
    cr = _cross(local[T[:, 1]] - local[T[:, 0]], local[T[:, 2]] - local[T[:, 0]])
    sn = np.zeros((nsurf, 3))
    np.add.at(sn, vsurf[T[:, 0]], cr)
    sl = np.sqrt(np.einsum("ij,ij->i", sn, sn))
    sn = sn / np.where(sl > 0, sl, 1.0)[:, None]
    vn = sn[vsurf]
    pos_gltf = np.column_stack([local[:, 0], local[:, 2], -local[:, 1]]).astype(np.float32)
    nrm_gltf = np.column_stack([vn[:, 0], vn[:, 2], -vn[:, 1]]).astype(np.float32)
    # vertices of surfaces without a triangle (degenerate) get "up" as their normal
    nrm_gltf[sl[vsurf] == 0] = (0.0, 1.0, 0.0)
    parts = members  # feature count below

    gb = GltfBuilder()
    index_dtype = np.uint16 if len(V) < 65535 else np.uint32
    attrs = {
        "POSITION": gb.add_accessor(pos_gltf, min_max=True),
        "NORMAL": gb.add_accessor(nrm_gltf),
        "COLOR_0": gb.add_accessor(SURFACE_COLORS[vkind] if surface_rgba is None else surface_rgba[vsurf_global],
                                   normalized=True),
        "_FEATURE_ID_0": gb.add_accessor(fid),
        "_FEATURE_ID_1": gb.add_accessor(vkind.astype(np.float32)),
    }
    indices = gb.add_accessor(T.astype(index_dtype).reshape(-1), target=ELEMENT_ARRAY_BUFFER)
    material = gb.add_material([1.0, 1.0, 1.0, 1.0], "building")
    kinds_present = np.unique(vkind)
    prim = {"attributes": attrs, "indices": indices, "material": material, "mode": 4,
            "extensions": {"EXT_mesh_features": {"featureIds": [
                {"featureCount": len(parts), "attribute": 0, "propertyTable": 0, "label": "building"},
                {"featureCount": int(len(kinds_present)), "attribute": 1, "propertyTable": 1, "label": "surface"},
            ]}}}
    gb.gltf["meshes"].append({"name": "buildings", "primitives": [prim]})
    gb.gltf["nodes"].append({"name": "buildings", "mesh": 0})
    gb.gltf["scenes"][0]["nodes"].append(0)
    t_build = add_property_table(gb, "building", specs, rows, dataset=DATASET, ids=ids)
    surface_spec = [PropertySpec("surfaceType", "STRING", None, None, ("surfaceType",), "CityGML semantic surface")]
    t_surf = add_property_table(gb, "surface", surface_spec, [{"surfaceType": k} for k in SURFACE_KINDS])
    gb.gltf["extensions"] = {"EXT_structural_metadata": {
        "schema": building_schema(specs), "propertyTables": [t_build, t_surf]}}
    gb.use_extension("EXT_mesh_features")
    gb.use_extension("EXT_structural_metadata")
    return gb.to_glb(), region, tile_transform(centre, rot)


def building_schema(specs: Sequence[PropertySpec]) -> dict:
    surface_spec = [PropertySpec("surfaceType", "STRING", None, None, ("surfaceType",), "CityGML semantic surface")]
    return {"id": "citymodel_buildings", "name": "citymodel buildings", "version": "1.0",
            "classes": {"building": schema_class(specs, "a building (LoD2 or LoD1)"),
                        "surface": schema_class(surface_spec, "semantic surface type of a triangle")}}


# ---------------------------------------------------------------------- tiling
def _split(keys: list[int], centres: np.ndarray, bounds: tuple[float, float, float, float], max_n: int,
           min_size_m: float, name: str) -> dict:
    """A tile node over ``keys``: a leaf, or four quadrants when dense."""
    x0, y0, x1, y1 = bounds
    if len(keys) <= max_n or (x1 - x0) / 2 < min_size_m:
        return {"name": name, "bounds": bounds, "keys": keys, "children": []}
    xm, ym = 0.5 * (x0 + x1), 0.5 * (y0 + y1)
    c = centres[keys]
    children = []
    for q, (qb, mask) in enumerate([((x0, y0, xm, ym), (c[:, 0] < xm) & (c[:, 1] < ym)),
                                    ((xm, y0, x1, ym), (c[:, 0] >= xm) & (c[:, 1] < ym)),
                                    ((x0, ym, xm, y1), (c[:, 0] < xm) & (c[:, 1] >= ym)),
                                    ((xm, ym, x1, y1), (c[:, 0] >= xm) & (c[:, 1] >= ym))]):
        sub = [k for k, m in zip(keys, mask) if m]
        if sub:
            children.append(_split(sub, centres, qb, max_n, min_size_m, f"{name}_{q}"))
    return {"name": name, "bounds": bounds, "keys": [], "children": children}


def _record(rec: Any, i: int) -> tuple[str, Solid, dict, Any]:
    if not isinstance(rec, Mapping):
        raise dataset_error(ConfigError, DATASET, f"record {i} is a {type(rec).__name__}, not a mapping",
                            "pass records {'id', 'solid', 'attributes'}", str(i))
    rid = rec.get("id")
    if rid is None:
        rid = (rec.get("attributes") or {}).get("id")
    if rid is None:
        raise dataset_error(ConfigError, DATASET, "record has no 'id'", "give every building an 'id'", f"#{i}")
    solid = rec.get("solid")
    if not isinstance(solid, Solid):
        raise dataset_error(ConfigError, DATASET, f"'solid' is {type(solid).__name__}, not a Solid",
                            "pass a citymodel.geometry3d.Solid as 'solid'", str(rid))
    attrs = dict(rec.get("attributes") or {})
    attrs.setdefault("id", str(rid))
    return str(rid), solid, attrs, rec.get("valid", None)


def write_building_tiles(buildings: Iterable[Mapping[str, Any]], out_dir: str | Path, *, crs: str = "EPSG:25832",
                         vertical_crs: str = "EPSG:7837", tile_size_m: float = 1000.0,
                         properties: Sequence[PropertySpec | str | tuple | Mapping] = (),
                         geoid: str | float | Path = "auto", geoid_search_dirs: Sequence[str | Path] | None = None,
                         fallback_undulation_m: float | None = None, valid_ids: Iterable[str] | None = None,
                         validate: bool = False, max_buildings_per_tile: int = 2000,
                         min_tile_size_m: float = 125.0, extent: tuple[float, float, float, float] | None = None,
                         extras: Mapping[str, Any] | None = None, surface_colors: SurfaceColorFn | None = None,
                         legend: "ColorRamp | None" = None) -> TilesetInfo:
    """Write buildings as a 3D Tiles 1.1 tileset (``out_dir/tileset.json`` + ``content/*.glb``).

    Parameters
    ----------
    buildings : iterable of mapping
        Records ``{"id", "solid": Solid, "attributes": dict, "valid": bool (optional)}``. The
        attributes feed the ``building`` class (see :data:`BUILDING_PROPERTIES` for the keys read,
        e.g. ``function_code``, ``roof_code``, ``eave_height_m``, ``storeys``, ``method``).
    out_dir : path
    crs, vertical_crs : str
        Processing CRS of the coordinates and the vertical CRS of their heights (orthometric).
    tile_size_m : float
        Grid tile size (m).
    properties : sequence
        Extra (analysis) properties of class ``building``: :class:`PropertySpec`, a name
        (FLOAT32, noData -9999), ``(name, component_type or "STRING")`` or a dict.
    geoid : {"auto", "GCG2016", "EGM96"}, path or float
        See :func:`citymodel.tiles3d.geo.resolve_geoid`.
    valid_ids : iterable of str, optional
        Only these buildings are published; the others are reported in ``skipped``.
    validate : bool
        Run :func:`citymodel.validate3d.validate_solid` on records without a ``valid`` flag.
    max_buildings_per_tile, min_tile_size_m : int, float
        A grid tile with more buildings is split into quadrants, down to ``min_tile_size_m``.
    extent : (minx, miny, maxx, maxy), optional
        Used for the root's region when nothing is publishable (an empty tileset).
    extras : mapping, optional
        Added to ``asset.extras``.
    surface_colors : callable, optional
        ``surface_colors(record, surface_index, kind)`` -> ``(r, g, b)`` or ``(r, g, b, a)`` sRGB
        bytes (0..255), or None to keep the kind's colour of :data:`SURFACE_COLORS`. Called once
        per surface of every published record: ``record`` is the input mapping,
        ``surface_index`` the position in ``record["solid"].surfaces`` and ``kind`` its
        ``Surface.kind``. Default: every surface coloured by its kind.
    legend : ColorRamp, optional
        The colour ramp of an analysis layer: :meth:`~.colormap.ColorRamp.legend` goes to
        ``asset.extras.legend``, :meth:`~.colormap.ColorRamp.tileset_metadata` to the tileset's
        ``metadata`` (class ``legend`` added to the tileset schema).

    Returns
    -------
    TilesetInfo

    Raises
    ------
    ConfigError
        Malformed records or properties, an unknown CRS, nothing to publish without ``extent``, or
        a ``surface_colors`` result that is not a colour (names the record and surface).
    """
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    kw = {} if fallback_undulation_m is None else {"fallback_undulation_m": fallback_undulation_m}
    model = resolve_geoid(geoid, search_dirs=geoid_search_dirs, **kw)
    geo = GeoTransformer(crs, model, vertical_crs)
    specs = list(BUILDING_PROPERTIES)
    names = {s.name for s in specs}
    for p in properties:
        s = PropertySpec.coerce(p)
        if s.type == "SCALAR" and s.no_data is None and s.component_type.startswith("FLOAT"):
            s = PropertySpec(s.name, s.type, s.component_type, -9999.0, s.sources, s.description)
        if s.name in names:
            raise dataset_error(ConfigError, DATASET, f"property {s.name!r} is defined twice",
                                "give analysis properties names other than the default ones", s.name)
        names.add(s.name)
        specs.append(s)
    allowed = None if valid_ids is None else {str(v) for v in valid_ids}

    info = TilesetInfo(tileset_path=out_dir / "tileset.json", geoid=model.to_dict())
    ids: list[str] = []
    solids: list[Solid] = []
    rows: list[dict] = []
    kept: list[Mapping[str, Any]] = []
    seen: set[str] = set()
    for i, rec in enumerate(buildings):
        rid, solid, attrs, flag = _record(rec, i)
        if rid in seen:
            raise dataset_error(ConfigError, DATASET, "building id occurs twice", "give unique ids", rid)
        seen.add(rid)
        if allowed is not None and rid not in allowed:
            info.skipped.append({"id": rid, "reason": "not in the list of valid buildings"})
            continue
        if flag is False:
            info.skipped.append({"id": rid, "reason": "invalid solid (flagged by the caller)"})
            continue
        if flag is None and validate:
            from ..validate3d import validate_solid
            rep = validate_solid(solid)
            if not rep.valid:
                info.skipped.append({"id": rid, "reason": f"invalid solid: val3dity codes {sorted(set(rep.codes))}"})
                continue
        ids.append(rid)
        solids.append(solid)
        rows.append(attrs)
        kept.append(rec)
    tri = triangulate_solids(solids)
    for k, reason in sorted(tri.bad.items()):
        info.skipped.append({"id": ids[k], "reason": f"unusable solid: {reason}"})
    surface_rgba = None if surface_colors is None else _surface_rgba(tri, kept, solids, ids, surface_colors)
    # building centres (bounding box of the exterior ring vertices) -> grid tiles
    n_ext = int(np.sum([len(s_.rings[0]) for sol in solids for s_ in sol.surfaces])) if solids else 0
    vsol = tri.vertex_solid[:n_ext]
    lo = np.full((len(solids), 2), np.inf)
    hi = np.full((len(solids), 2), -np.inf)
    if len(vsol):
        np.minimum.at(lo, vsol, tri.vertices[:n_ext, :2])
        np.maximum.at(hi, vsol, tri.vertices[:n_ext, :2])
    with np.errstate(invalid="ignore"):  # solids left out (non-finite) have no centre
        cen = 0.5 * (lo + hi)
    good = np.ones(len(solids), dtype=bool)
    good[list(tri.bad)] = False
    grid: dict[tuple[int, int], list[int]] = {}
    for k in np.flatnonzero(good):
        grid.setdefault((math.floor(cen[k, 0] / tile_size_m), math.floor(cen[k, 1] / tile_size_m)), []).append(int(k))
    content_dir = out_dir / "content"
    tile_nodes: dict[tuple[int, int], dict] = {}
    for (e, n), keys in sorted(grid.items()):
        b = (e * tile_size_m, n * tile_size_m, (e + 1) * tile_size_m, (n + 1) * tile_size_m)
        tree = _split(keys, cen, b, max_buildings_per_tile, min_tile_size_m, _tile_name(e, n, tile_size_m))
        tile_nodes[(e, n)] = _materialise(tree, tri, rows, ids, specs, geo, content_dir, info, surface_rgba)

    if not tile_nodes:
        if extent is None:
            raise dataset_error(ConfigError, DATASET, "no building to publish "
                                f"({len(info.skipped)} skipped) and no extent given",
                                "pass extent=(minx, miny, maxx, maxy) to write an empty tileset")
        x0, y0, x1, y1 = extent
        lon, lat, h = geo.to_geodetic(np.array([x0, x1, x0, x1]), np.array([y0, y0, y1, y1]), np.zeros(4))
        region = Region.from_geodetic(lon, lat, h)
        root = {"boundingVolume": region.to_json(), "geometricError": region.diagonal_m / GEOMETRIC_ERROR_DIVISOR,
                "refine": "ADD"}
    else:
        root = _quadtree(tile_nodes)
    root["refine"] = "ADD"
    ext = {"geoid": model.to_dict(), "crs": str(crs), "verticalCrs": vertical_crs,
           "geometricErrorRule": f"leaf 0; tile without content: horizontal diagonal / {GEOMETRIC_ERROR_DIVISOR:g}",
           "buildings": info.n_features, "skipped": info.skipped}
    if legend is not None:
        ext["legend"] = legend.legend()
    if extras:
        ext.update(dict(extras))
    schema = building_schema(specs)
    if legend is not None:
        from .colormap import LEGEND_CLASS, LEGEND_CLASS_ID

        schema["classes"][LEGEND_CLASS_ID] = LEGEND_CLASS
    doc = tileset_document(root, extras=ext, schema=schema)
    if legend is not None:
        doc["metadata"] = legend.tileset_metadata()
    write_json_atomic(info.tileset_path, doc)
    info.seconds = time.perf_counter() - t0
    return info


def _surface_rgba(tri: Triangulation, records: Sequence[Mapping[str, Any]], solids: Sequence[Solid],
                  ids: Sequence[str], fn: SurfaceColorFn) -> np.ndarray:
    """Vertex colour (s, 4) uint8 of every surface of the triangulation: ``fn``'s or the kind's.

    The triangulation lists the surfaces of each usable solid in order, so the surfaces of solid
    ``k`` are ``first[k] + j`` for its ``j``-th surface.
    """
    rgba = SURFACE_COLORS[tri.surface_kind].copy()
    first = np.searchsorted(tri.surface_solid, np.arange(len(solids)), side="left")
    for k, (rec, sol) in enumerate(zip(records, solids)):
        if k in tri.bad:
            continue
        for j, srf in enumerate(sol.surfaces):
            c = fn(rec, j, srf.kind)
            if c is None:
                continue
            try:
                a = np.asarray(c, dtype=float).reshape(-1)
            except (TypeError, ValueError):
                a = np.zeros(0)
            if a.size not in (3, 4) or not np.all(np.isfinite(a)) or np.any(a < 0) or np.any(a > 255) \
                    or np.any(a != np.round(a)):
                raise dataset_error(ConfigError, DATASET, f"surface_colors gave {c!r} for surface {j} ({srf.kind}), "
                                    "not an sRGB byte colour", "return (r, g, b[, a]) with integers 0..255 or None",
                                    ids[k])
            rgba[first[k] + j, :a.size] = a.astype(np.uint8)
            if a.size == 3:
                rgba[first[k] + j, 3] = 255
    return rgba


def _tile_name(e: int, n: int, size_m: float) -> str:
    if size_m == 1000.0:
        return f"{e}_{n}"
    return f"{int(e * size_m)}_{int(n * size_m)}_{int(size_m)}m"


def _materialise(tree: dict, tri: Triangulation, rows, ids, specs, geo, content_dir: Path,
                 info: TilesetInfo, surface_rgba: np.ndarray | None = None) -> dict:
    """Tile JSON of a split tree; writes the contents of its leaves."""
    if not tree["children"]:
        keys = tree["keys"]
        glb, region, transform = building_glb(tri, np.asarray(keys, dtype=np.int64), [rows[k] for k in keys],
                                              specs, geo, [ids[k] for k in keys], surface_rgba)
        uri = f"content/{tree['name']}.glb"
        write_bytes_atomic(content_dir / f"{tree['name']}.glb", glb)
        info.n_features += len(keys)
        info.n_content_tiles += 1
        info.bytes_total += len(glb)
        info.contents.append({"uri": uri, "tile": tree["name"], "features": len(keys), "bytes": len(glb)})
        return {"boundingVolume": region.to_json(), "geometricError": 0.0, "transform": column_major(transform),
                "content": {"uri": uri, "boundingVolume": region.to_json()}, "_region": region}
    children = [_materialise(c, tri, rows, ids, specs, geo, content_dir, info, surface_rgba)
                for c in tree["children"]]
    return _parent(children)


def _parent(children: list[dict]) -> dict:
    region = children[0]["_region"]
    for c in children[1:]:
        region = region.union(c["_region"])
    for c in children:
        c.pop("_region", None)
    return {"boundingVolume": region.to_json(), "geometricError": region.diagonal_m / GEOMETRIC_ERROR_DIVISOR,
            "children": children, "_region": region}


def _quadtree(tile_nodes: dict[tuple[int, int], dict]) -> dict:
    nodes = dict(tile_nodes)
    if len(nodes) == 1:
        root = next(iter(nodes.values()))
        if "content" in root:  # a single content tile: wrap it so the root has an error > 0
            root = _parent([root])
    else:
        level_nodes = {(0, e, n): t for (e, n), t in nodes.items()}
        root = None
        for level, e, n, ch in quadtree_parents(nodes.keys()):
            node = _parent([level_nodes[(level - 1, ce, cn)] for ce, cn in ch])
            level_nodes[(level, e, n)] = node
            root = node
    root.pop("_region", None)
    return root
