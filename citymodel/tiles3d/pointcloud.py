"""Point clouds as 3D Tiles 1.1: the entry point :func:`write_pointcloud_tiles`.

Two tilers write the same kind of tileset (one per 1 km tile; ``publish/release`` joins them
under one root):

- ``tiler="own"`` (default; :mod:`citymodel.tiles3d.pointcloud_octree`): the project's octree
  with spacing-based subsampling per level and ``ADD`` refinement, glTF point content
  (``POSITION``, ``COLOR_0``, classification and intensity as ``EXT_structural_metadata``
  property attributes), streamed through the file in chunks with bounded memory, at LAZ decoding
  speed;
- ``tiler="py3dtiles"`` (:mod:`citymodel.tiles3d.pointcloud_py3dtiles`): the ``py3dtiles
  convert`` CLI (``.pnts`` content), about ten times slower; the reference of the benchmark.

Both crop each file to its tile (staged tiles carry a halo that would otherwise be published
twice), colour the points by class (:data:`CLASS_COLORS`), by height or by their LAS RGB, and make
heights ellipsoidal with the geoid model (:func:`citymodel.tiles3d.geo.resolve_geoid`; the own
tiler per point, py3dtiles with the undulation at the file's centre). The tileset is built in a
temporary folder beside ``out_dir`` and replaces it in one rename: nothing half-written is ever
published. ``asset.extras`` record the geoid model, CRSs, colour scheme, class counts and tiler.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from ..errors import ConfigError, SourceDataError, dataset_error
from .geo import GeoTransformer, resolve_geoid
from .tileset import write_json_atomic

if TYPE_CHECKING:
    from .pointcloud_octree import OctreeOptions

__all__ = ["write_pointcloud_tiles", "PointCloudInfo", "CLASS_COLORS", "TILERS", "point_colours",
           "height_colours"]

DATASET = "lidar"

#: The tilers :func:`write_pointcloud_tiles` knows (``publish.pointcloud_tiler``).
TILERS = ("own", "py3dtiles")

#: Colours (RGB bytes) of the ASPRS classes; others are grey.
CLASS_COLORS: dict[int, tuple[int, int, int]] = {
    0: (160, 160, 160), 1: (190, 190, 170), 2: (166, 122, 74), 3: (120, 190, 90), 4: (70, 160, 60),
    5: (30, 120, 40), 6: (200, 70, 60), 7: (255, 0, 255), 9: (60, 120, 220), 17: (150, 150, 220),
    26: (240, 200, 60),
}

_HEIGHT_STOPS = np.array([[40, 60, 200], [60, 180, 90], [240, 220, 60], [200, 50, 40]], dtype=float)


@dataclass
class PointCloudInfo:
    """What :func:`write_pointcloud_tiles` wrote and how long it took.

    ``prepare_seconds`` / ``convert_seconds``: the own tiler's pass 1 (read, route, spill) and
    pass 2 (octree, content); py3dtiles' LAS preparation and CLI run. ``n_nodes``, ``depth`` and
    ``points_per_level`` describe the own tiler's octree (0 / empty for py3dtiles).
    """

    tileset_path: Path
    tiler: str = "own"
    n_points: int = 0
    n_files: int = 0
    geoid: dict = field(default_factory=dict)
    classes: dict = field(default_factory=dict)
    prepare_seconds: float = 0.0
    convert_seconds: float = 0.0
    seconds: float = 0.0
    bytes_total: int = 0
    n_nodes: int = 0
    depth: int = 0
    points_per_level: list = field(default_factory=list)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["tileset_path"] = str(self.tileset_path)
        return d


def height_colours(t: np.ndarray) -> np.ndarray:
    """Colours (n, 3) uint8 of relative heights ``t`` in [0, 1]: blue -> green -> yellow -> red."""
    t = np.clip(np.asarray(t, dtype=float), 0.0, 1.0)
    pos = t * 3.0
    i = np.minimum(pos.astype(int), 2)
    f = (pos - i)[:, None]
    return np.round(_HEIGHT_STOPS[i] * (1 - f) + _HEIGHT_STOPS[i + 1] * f).astype(np.uint8)


def point_colours(cls: np.ndarray, z: np.ndarray, mode: str) -> np.ndarray:
    """Colours (n, 3) uint8 of points by class (:data:`CLASS_COLORS`, others grey) or by height
    (between the 1st and 99th percentile of ``z``)."""
    if mode == "classification":
        lut = np.full((256, 3), 160, dtype=np.uint8)
        for c, rgb in CLASS_COLORS.items():
            lut[c] = rgb
        return lut[np.asarray(cls, dtype=np.uint8)]
    if mode == "height":
        lo, hi = np.percentile(z, [1, 99]) if len(z) else (0.0, 1.0)
        return height_colours((np.asarray(z) - lo) / max(hi - lo, 1e-6))
    raise dataset_error(ConfigError, DATASET, f"unknown colour mode {mode!r}",
                        "use colour='classification', 'height' or 'rgb'")


def _swap_in(new: Path, out_dir: Path) -> None:
    """Replace ``out_dir`` by the folder ``new`` (renames; the old one is removed after)."""
    old = None
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old")
        if old.exists():
            shutil.rmtree(old)
        os.replace(out_dir, old)
    os.replace(new, out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_pointcloud_tiles(laz_paths: Sequence[str | Path], out_dir: str | Path, crs: str = "EPSG:25832", *,
                           bounds: Sequence[Sequence[float] | None] | None = None, colour: str = "classification",
                           vertical_crs: str = "EPSG:7837", geoid: str | float | Path = "auto",
                           geoid_search_dirs: Sequence[str | Path] | None = None,
                           fallback_undulation_m: float | None = None, jobs: int = 2, timeout_s: float = 3600.0,
                           extras: Mapping[str, Any] | None = None, tiler: str = "own",
                           chunk_points: int = 1_000_000, octree: OctreeOptions | None = None) -> PointCloudInfo:
    """Tile LAS/LAZ files into a 3D Tiles 1.1 point cloud (``out_dir/tileset.json``).

    Parameters
    ----------
    laz_paths : sequence of paths
        The staged LAS (or LAZ) files, all in ``crs``.
    out_dir : path
        Replaced by the new tileset (written to a sibling temporary folder, then renamed).
    crs : str
        Horizontal CRS of the points (files without a CRS record are fine).
    bounds : sequence of (minx, miny, maxx, maxy) or None, optional
        Per file, the tile bounds to keep (drops the staging halo); None keeps all points.
    colour : {"classification", "height", "rgb"}
        ``height``: the own tiler ramps between the lowest and highest height of the files'
        headers (it streams, so percentiles are not known in advance), py3dtiles between the 1st
        and 99th percentile.
    jobs : int
        Threads of the own tiler's second pass / py3dtiles worker processes.
    timeout_s : float
        py3dtiles only: the CLI is stopped after this time (an error says so).
    tiler : {"own", "py3dtiles"}
    chunk_points : int
        Own tiler: points decoded per chunk.
    octree : OctreeOptions, optional
        Own tiler: its parameters (:class:`citymodel.tiles3d.pointcloud_octree.OctreeOptions`);
        ``chunk_points`` and ``jobs`` override its ``chunk_points`` and ``workers``.

    Raises
    ------
    SourceDataError
        A file is missing, unreadable or truncated (named), no point lies inside the bounds, or
        py3dtiles fails (its message is included).
    ConfigError
        Unknown tiler or colour mode, bounds not one per file.
    """
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    paths = [Path(p) for p in laz_paths]
    if tiler not in TILERS:
        raise dataset_error(ConfigError, DATASET, f"unknown point-cloud tiler {tiler!r}",
                            f"use one of {list(TILERS)} (publish.pointcloud_tiler)")
    if colour not in ("classification", "height", "rgb"):
        raise dataset_error(ConfigError, DATASET, f"unknown colour mode {colour!r}",
                            "use colour='classification', 'height' or 'rgb'")
    if not paths:
        raise dataset_error(ConfigError, DATASET, "no point cloud file given", "pass the staged LAS/LAZ files")
    for p in paths:
        if not p.is_file():
            raise dataset_error(SourceDataError, DATASET, f"file {p} does not exist", "stage the LiDAR tile first",
                                p.name)
    if bounds is not None and len(bounds) != len(paths):
        raise dataset_error(ConfigError, DATASET, f"{len(bounds)} bounds for {len(paths)} files",
                            "give one (minx, miny, maxx, maxy) or None per file")
    kw = {} if fallback_undulation_m is None else {"fallback_undulation_m": fallback_undulation_m}
    model = resolve_geoid(geoid, search_dirs=geoid_search_dirs, **kw)
    geo = GeoTransformer(crs, model, vertical_crs)
    info = PointCloudInfo(tileset_path=out_dir / "tileset.json", tiler=tiler, n_files=len(paths),
                          geoid=model.to_dict())
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        ext: dict[str, Any] = {"geoid": model.to_dict(), "crs": str(crs), "verticalCrs": vertical_crs,
                               "colour": colour}
        if tiler == "py3dtiles":
            from .pointcloud_py3dtiles import convert_with_py3dtiles

            tiles, doc, info.n_points, info.classes, info.prepare_seconds, info.convert_seconds = \
                convert_with_py3dtiles(paths, bounds, work, geo, crs, colour=colour, jobs=jobs, timeout_s=timeout_s,
                                       dataset=DATASET)
            asset = dict(doc.get("asset") or {})
            asset["version"] = "1.1"
            asset["generator"] = "citymodel.tiles3d + py3dtiles"
            ext["contentFormat"] = "pnts (3D Tiles 1.0 content, allowed in 1.1)"
        else:
            try:  # TODO(pctiler): the lidar split makes it public as citymodel.lidar.threads.read_ahead
                from ..lidar.threads import read_ahead
            except ImportError:
                from ..lidar import _read_ahead as read_ahead
            from .pointcloud_octree import OctreeOptions, tile_octree

            opts = replace(octree or OctreeOptions(), chunk_points=int(chunk_points), workers=max(1, int(jobs)))
            tiles = work / "tiles"
            tiles.mkdir()
            sources = [(p, None if bounds is None else bounds[i]) for i, p in enumerate(paths)]
            res, root, frame = tile_octree(sources, tiles, work, geo, colour=colour, class_colors=CLASS_COLORS,
                                           options=opts, dataset=DATASET, read_ahead=read_ahead)
            info.n_points, info.classes = res.n_points, res.classes
            info.prepare_seconds, info.convert_seconds = res.read_seconds, res.write_seconds
            info.n_nodes, info.depth, info.points_per_level = res.n_nodes, res.depth, res.points_per_level
            root_error = max(float(root["geometricError"]), res.octree["edge_m"] / res.octree["cells_per_edge"]
                             * res.octree["error_per_spacing"])
            doc = {"geometricError": 2.0 * root_error, "root": root}
            asset = {"version": "1.1", "generator": "citymodel.tiles3d (octree)"}
            ext["contentFormat"] = ("glTF 2.0 points (3D Tiles 1.1): POSITION, COLOR_0, _CLASSIFICATION and "
                                    "_INTENSITY as EXT_structural_metadata property attributes")
            ext["octree"] = {**res.octree, "levels": res.depth + 1, "nodes": res.n_nodes,
                             "pointsPerLevel": res.points_per_level, "frameErrorM": res.frame_error_m}
        ext["points"] = info.n_points
        ext["classes"] = {str(k): v for k, v in sorted(info.classes.items())}
        if colour == "classification":
            ext["classColors"] = {str(k): list(v) for k, v in CLASS_COLORS.items()}
        if extras:
            ext.update(dict(extras))
        asset["extras"] = ext
        doc = {"asset": asset, **{k: v for k, v in doc.items() if k != "asset"}}
        write_json_atomic(tiles / "tileset.json", doc)
        info.bytes_total = sum(f.stat().st_size for f in tiles.rglob("*") if f.is_file())
        _swap_in(tiles, out_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    info.seconds = time.perf_counter() - t0
    return info
