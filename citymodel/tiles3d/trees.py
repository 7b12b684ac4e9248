"""Trees as 3D Tiles 1.1: one instanced tree model per 1 km tile (``EXT_mesh_gpu_instancing``).

The prototype is a tree of height 1 and crown diameter 1 standing at the origin (glTF y-up): a
trunk cylinder (radius 0.06, up to 0.5) and a crown ellipsoid (centre 0.65, half-axes 0.5 / 0.35 /
0.5, so from 0.3 to 1.0). Each instance has TRANSLATION (tree base in the tile's local frame),
ROTATION (the tilt of the local vertical at the tree against the tile centre's, a few thousandths
of a degree) and SCALE (crown diameter, height, crown diameter). Per-tree feature ids are given
with ``EXT_instance_features`` (``_FEATURE_ID_0`` instance attribute, property table of class
``tree``: ``treeId``, ``height``, ``crownDiameter``, ``trunkCircumference``, ``species``).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from ..errors import ConfigError, SourceDataError, dataset_error
from .buildings import TilesetInfo, _parent, _quadtree, tile_transform
from .geo import GeoTransformer, enu_frame, geodetic_to_ecef, resolve_geoid
from .glb import ELEMENT_ARRAY_BUFFER, GltfBuilder, PropertySpec, add_property_table, schema_class
from .tileset import GEOMETRIC_ERROR_DIVISOR, Region, column_major, tileset_document, write_bytes_atomic, \
    write_json_atomic

__all__ = ["write_tree_tiles", "TREE_PROPERTIES", "tree_prototype"]

DATASET = "trees"

TREE_PROPERTIES: tuple[PropertySpec, ...] = (
    PropertySpec("treeId", "STRING", None, None, ("tree_id",), "tree cadastre number", required=True),
    PropertySpec("height", "SCALAR", "FLOAT32", None, ("height_m",), "tree height (m)"),
    PropertySpec("crownDiameter", "SCALAR", "FLOAT32", None, ("crown_diameter_m",), "crown diameter (m)"),
    PropertySpec("trunkCircumference", "SCALAR", "FLOAT32", -9999.0, ("trunk_circumference_cm",),
                 "trunk circumference at 1 m (cm)"),
    PropertySpec("species", "STRING", None, "", ("species",), "species"),
)

_TRUNK_R = 0.06
_TRUNK_TOP = 0.5
_CROWN_C, _CROWN_RY, _CROWN_RXZ = 0.65, 0.35, 0.5


def tree_prototype(sides: int = 8, rings: int = 6) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...]:
    """(positions, normals, indices) of the trunk and of the crown, glTF y-up, unit tree."""
    a = np.linspace(0.0, 2 * np.pi, sides, endpoint=False)
    # trunk: side walls with their own vertices (smooth around), no caps (hidden in crown/ground)
    ca, sa = np.cos(a), np.sin(a)
    bottom = np.column_stack([_TRUNK_R * ca, np.zeros(sides), -_TRUNK_R * sa])
    top = np.column_stack([_TRUNK_R * ca, np.full(sides, _TRUNK_TOP), -_TRUNK_R * sa])
    tp = np.vstack([bottom, top]).astype(np.float32)
    tn = np.vstack([np.column_stack([ca, np.zeros(sides), -sa])] * 2).astype(np.float32)
    i = np.arange(sides)
    j = (i + 1) % sides
    ti = np.column_stack([i, j, j + sides, i, j + sides, i + sides]).reshape(-1).astype(np.uint16)
    # crown: UV ellipsoid
    phi = np.linspace(0.0, np.pi, rings + 1)  # from top to bottom
    pts, nrm = [], []
    for p in phi:
        for t in a:
            d = np.array([np.sin(p) * np.cos(t), np.cos(p), -np.sin(p) * np.sin(t)])
            pts.append([_CROWN_RXZ * d[0], _CROWN_C + _CROWN_RY * d[1], _CROWN_RXZ * d[2]])
            g = np.array([d[0] / _CROWN_RXZ, d[1] / _CROWN_RY, d[2] / _CROWN_RXZ])
            nrm.append(g / np.linalg.norm(g))
    cp = np.array(pts, dtype=np.float32)
    cn = np.array(nrm, dtype=np.float32)
    idx = []
    for r in range(rings):
        for k in range(sides):
            k2 = (k + 1) % sides
            v00, v01 = r * sides + k, r * sides + k2
            v10, v11 = (r + 1) * sides + k, (r + 1) * sides + k2
            if r > 0:
                idx += [v00, v10, v01]
            if r < rings - 1:
                idx += [v01, v10, v11]
    ci = np.array(idx, dtype=np.uint16)
    return (tp, tn, ti), (cp, cn, ci)


def _quaternions(rot: np.ndarray) -> np.ndarray:
    """Unit quaternions (x, y, z, w) of rotation matrices (n, 3, 3) close to the identity."""
    w = 0.5 * np.sqrt(np.maximum(1.0 + rot[:, 0, 0] + rot[:, 1, 1] + rot[:, 2, 2], 1e-12))
    q = np.column_stack([(rot[:, 2, 1] - rot[:, 1, 2]) / (4 * w), (rot[:, 0, 2] - rot[:, 2, 0]) / (4 * w),
                         (rot[:, 1, 0] - rot[:, 0, 1]) / (4 * w), w])
    return q / np.linalg.norm(q, axis=1)[:, None]


def _table(trees: Any) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray | None]:
    """Columns, x, y (and z where the points have it) of a GeoDataFrame or a list of records."""
    if hasattr(trees, "geometry") and hasattr(trees, "columns"):
        geom = trees.geometry
        if len(trees) and not (geom.geom_type == "Point").all():
            bad = trees.index[geom.geom_type != "Point"][0]
            raise dataset_error(SourceDataError, DATASET, "geometry is not a point", "give trees as points",
                                str(trees.iloc[list(trees.index).index(bad)].get("tree_id", bad)))
        x = np.asarray(geom.x, dtype=float)
        y = np.asarray(geom.y, dtype=float)
        z = np.asarray(geom.z, dtype=float) if len(trees) and geom.has_z.all() else None
        cols = {c: np.asarray(trees[c]) for c in trees.columns if c != trees.geometry.name}
        return cols, x, y, z
    recs = list(trees)
    for i, r in enumerate(recs):
        if not isinstance(r, Mapping) or "x" not in r or "y" not in r:
            raise dataset_error(ConfigError, DATASET, "record is not a mapping with 'x' and 'y'",
                                "pass a GeoDataFrame of points or dicts {tree_id, x, y, height_m, ...}", str(i))
    keys = sorted({k for r in recs for k in r})
    cols = {k: np.array([r.get(k) for r in recs], dtype=object) for k in keys if k not in ("x", "y", "z")}
    x = np.array([float(r["x"]) for r in recs])
    y = np.array([float(r["y"]) for r in recs])
    z = np.array([float(r["z"]) for r in recs]) if recs and all("z" in r for r in recs) else None
    return cols, x, y, z


def write_tree_tiles(trees: Any, out_dir: str | Path, *,
                     ground_heights: Callable[[np.ndarray, np.ndarray], np.ndarray] | np.ndarray | None = None,
                     crs: str = "EPSG:25832", vertical_crs: str = "EPSG:7837", tile_size_m: float = 1000.0,
                     geoid: str | float | Path = "auto", geoid_search_dirs: Sequence[str | Path] | None = None,
                     fallback_undulation_m: float | None = None,
                     extent: tuple[float, float, float, float] | None = None,
                     extras: Mapping[str, Any] | None = None) -> TilesetInfo:
    """Write trees as instanced 3D Tiles 1.1 (``out_dir/tileset.json`` + ``content/*.glb``).

    Parameters
    ----------
    trees : GeoDataFrame or iterable of mapping
        Staged trees (``tree_id, height_m, crown_diameter_m, trunk_circumference_cm, species,
        geometry``) or dicts with ``x``, ``y`` (and optionally ``z``) instead of the geometry.
    ground_heights : callable, array or None
        Ground height (orthometric, m) per tree: a sampler ``f(x, y) -> z`` (e.g. of the DTM), an
        array aligned with ``trees``, or None to use the points' z or a ``ground_height_m`` column.
    crs, vertical_crs, tile_size_m, geoid, geoid_search_dirs, fallback_undulation_m, extent, extras
        As for :func:`~citymodel.tiles3d.buildings.write_building_tiles`.

    Returns
    -------
    TilesetInfo
        Trees without a positive height or crown diameter, or without ground height, are left
        out and listed in ``skipped``.
    """
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    kw = {} if fallback_undulation_m is None else {"fallback_undulation_m": fallback_undulation_m}
    model = resolve_geoid(geoid, search_dirs=geoid_search_dirs, **kw)
    geo = GeoTransformer(crs, model, vertical_crs)
    info = TilesetInfo(tileset_path=out_dir / "tileset.json", geoid=model.to_dict())
    cols, x, y, z = _table(trees)
    n = len(x)
    if "tree_id" not in cols and n:
        raise dataset_error(ConfigError, DATASET, "no column 'tree_id'", "map the tree number to 'tree_id'")
    tid = np.array([str(v) for v in cols.get("tree_id", [])], dtype=object)
    if callable(ground_heights):
        ground = np.asarray(ground_heights(x, y), dtype=float).reshape(-1)
    elif ground_heights is not None:
        ground = np.asarray(ground_heights, dtype=float).reshape(-1)
    elif "ground_height_m" in cols:
        ground = np.asarray(cols["ground_height_m"], dtype=float)
    elif z is not None:
        ground = z
    else:
        raise dataset_error(ConfigError, DATASET, "no ground height for the trees",
                            "pass ground_heights (a DTM sampler or an array), 3D points or a ground_height_m column")
    if len(ground) != n:
        raise dataset_error(ConfigError, DATASET, f"{len(ground)} ground heights for {n} trees",
                            "give one ground height per tree")

    def num(col: str) -> np.ndarray:
        if col not in cols:
            return np.full(n, np.nan)
        return np.array([np.nan if v is None else float(v) for v in cols[col]], dtype=float)

    height = num("height_m")
    crown = num("crown_diameter_m")
    ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(ground) & (height > 0) & (crown > 0)
    for k in np.flatnonzero(~ok):
        why = ("no ground height" if not np.isfinite(ground[k]) else "height_m is missing or not positive"
               if not height[k] > 0 else "crown_diameter_m is missing or not positive"
               if not crown[k] > 0 else "coordinates are not finite")
        info.skipped.append({"id": tid[k], "reason": why})
    rows_all = [{c: cols[c][k] for c in cols} for k in range(n)]
    grid: dict[tuple[int, int], list[int]] = {}
    for k in np.flatnonzero(ok):
        grid.setdefault((math.floor(x[k] / tile_size_m), math.floor(y[k] / tile_size_m)), []).append(int(k))
    tile_nodes = {}
    for (e, nn), keys in sorted(grid.items()):
        keys_a = np.array(keys)
        glb, region, transform = _tree_glb(x[keys_a], y[keys_a], ground[keys_a], height[keys_a], crown[keys_a],
                                           [rows_all[k] for k in keys], [tid[k] for k in keys], geo)
        name = f"{e}_{nn}" if tile_size_m == 1000.0 else f"{int(e * tile_size_m)}_{int(nn * tile_size_m)}"
        uri = f"content/{name}.glb"
        write_bytes_atomic(out_dir / uri, glb)
        info.n_features += len(keys)
        info.n_content_tiles += 1
        info.bytes_total += len(glb)
        info.contents.append({"uri": uri, "tile": name, "features": len(keys), "bytes": len(glb)})
        tile_nodes[(e, nn)] = {"boundingVolume": region.to_json(), "geometricError": 0.0,
                               "transform": column_major(transform),
                               "content": {"uri": uri, "boundingVolume": region.to_json()}, "_region": region}
    if not tile_nodes:
        if extent is None:
            raise dataset_error(ConfigError, DATASET, f"no tree to publish ({len(info.skipped)} skipped) and no "
                                "extent given", "pass extent=(minx, miny, maxx, maxy) to write an empty tileset")
        x0, y0, x1, y1 = extent
        lon, lat, h = geo.to_geodetic(np.array([x0, x1, x0, x1]), np.array([y0, y0, y1, y1]), np.zeros(4))
        region = Region.from_geodetic(lon, lat, h)
        root = {"boundingVolume": region.to_json(), "geometricError": region.diagonal_m / GEOMETRIC_ERROR_DIVISOR}
    else:
        root = _quadtree(tile_nodes)
    root["refine"] = "ADD"
    ext = {"geoid": model.to_dict(), "crs": str(crs), "verticalCrs": vertical_crs, "trees": info.n_features,
           "skipped": info.skipped,
           "geometricErrorRule": f"leaf 0; tile without content: horizontal diagonal / {GEOMETRIC_ERROR_DIVISOR:g}"}
    if extras:
        ext.update(dict(extras))
    doc = tileset_document(root, extras=ext, schema=tree_schema())
    write_json_atomic(info.tileset_path, doc)
    info.seconds = time.perf_counter() - t0
    return info


def tree_schema() -> dict:
    return {"id": "citymodel_trees", "name": "citymodel trees", "version": "1.0",
            "classes": {"tree": schema_class(TREE_PROPERTIES, "a tree of the tree cadastre")}}


def _tree_glb(x, y, ground, height, crown, rows, ids, geo: GeoTransformer) -> tuple[bytes, Region, np.ndarray]:
    n = len(x)
    lon, lat, h = geo.to_geodetic(x, y, ground)
    base = geodetic_to_ecef(lon, lat, h)
    # region: crown box corners at the ground and at the top
    r = 0.5 * crown
    cx = np.concatenate([x - r, x + r, x - r, x + r] * 2)
    cy = np.concatenate([y - r, y - r, y + r, y + r] * 2)
    cz = np.concatenate([ground] * 4 + [ground + height] * 4)
    blon, blat, bh = geo.to_geodetic(cx, cy, cz)
    region = Region.from_geodetic(blon, blat, bh)
    lon_c = 0.5 * (float(lon.min()) + float(lon.max()))
    lat_c = 0.5 * (float(lat.min()) + float(lat.max()))
    h_c = float(np.mean(h))
    centre = geodetic_to_ecef(np.array([lon_c]), np.array([lat_c]), np.array([h_c]))[0]
    rc = enu_frame(lon_c, lat_c)
    local = (base - centre) @ rc
    translation = np.column_stack([local[:, 0], local[:, 2], -local[:, 1]]).astype(np.float32)
    # per-tree ENU frames relative to the centre's, in glTF axes (x=e, y=u, z=-n)
    lo, la = np.radians(lon), np.radians(lat)
    e = np.column_stack([-np.sin(lo), np.cos(lo), np.zeros(n)])
    nn = np.column_stack([-np.sin(la) * np.cos(lo), -np.sin(la) * np.sin(lo), np.cos(la)])
    u = np.column_stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)])
    rel = np.stack([e @ rc, nn @ rc, u @ rc], axis=2)  # columns: tree's e, n, u in the centre's ENU
    c = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
    rot_g = c @ rel @ c.T
    quat = _quaternions(rot_g).astype(np.float32)
    scale = np.column_stack([crown, height, crown]).astype(np.float32)

    gb = GltfBuilder()
    (tp, tn, ti), (cp, cn, ci) = tree_prototype()
    m_trunk = gb.add_material([0.36, 0.25, 0.15, 1.0], "trunk")
    m_crown = gb.add_material([0.30, 0.55, 0.22, 1.0], "crown")
    prims = []
    for (p, nr, ix), mat in (((tp, tn, ti), m_trunk), ((cp, cn, ci), m_crown)):
        prims.append({"attributes": {"POSITION": gb.add_accessor(p, min_max=True), "NORMAL": gb.add_accessor(nr)},
                      "indices": gb.add_accessor(ix, target=ELEMENT_ARRAY_BUFFER), "material": mat, "mode": 4})
    gb.gltf["meshes"].append({"name": "tree", "primitives": prims})
    inst = {"TRANSLATION": gb.add_accessor(translation, target=None),
            "ROTATION": gb.add_accessor(quat, target=None),
            "SCALE": gb.add_accessor(scale, target=None),
            "_FEATURE_ID_0": gb.add_accessor(np.arange(n, dtype=np.float32), target=None)}
    gb.gltf["nodes"].append({"name": "trees", "mesh": 0, "extensions": {
        "EXT_mesh_gpu_instancing": {"attributes": inst},
        "EXT_instance_features": {"featureIds": [{"featureCount": n, "attribute": 0, "propertyTable": 0,
                                                  "label": "tree"}]}}})
    gb.gltf["scenes"][0]["nodes"].append(0)
    table = add_property_table(gb, "tree", TREE_PROPERTIES, rows, dataset=DATASET, ids=ids)
    gb.gltf["extensions"] = {"EXT_structural_metadata": {"schema": tree_schema(), "propertyTables": [table]}}
    gb.use_extension("EXT_mesh_gpu_instancing", required=True)
    gb.use_extension("EXT_instance_features")
    gb.use_extension("EXT_structural_metadata")
    return gb.to_glb(), region, tile_transform(centre, rc)
