"""The reference point-cloud route through py3dtiles (``publish.pointcloud_tiler: py3dtiles``).

Each LAS/LAZ is first prepared in this process with laspy: cropped to its tile (staged tiles
carry a halo that would otherwise be published twice), coloured by class or by height, heights
made ellipsoidal with the geoid model (the undulation at the file's centre: it changes by
centimetres over a 1 km tile) and written as an uncompressed LAS 1.4 (point format 7, whose
classification is a plain byte field py3dtiles can export). The ``py3dtiles convert`` CLI then
runs in a subprocess on those LAS files (``--srs_out 4978``, ``--extra-fields classification``):
reading LAS there avoids py3dtiles' deadlock on LAZ read with lazrs' threads before it forks its
workers. py3dtiles' 3D Tiles 1.0 ``.pnts`` output is used (its 1.1 glb point output failed
validation); the caller rewrites ``tileset.json`` as version 1.1 (1.1 tilesets may reference
``.pnts``). About 0.25-0.35 M points/s: the project's own tiler
(:mod:`citymodel.tiles3d.pointcloud_octree`) is the default, this route the reference its
benchmark compares against.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import ConfigError, SourceDataError, dataset_error
from .geo import GeoTransformer

__all__ = ["prepare_las", "py3dtiles_command", "convert_with_py3dtiles"]


def prepare_las(src: str | Path, dst: str | Path, geo: GeoTransformer, *, bounds: Sequence[float] | None = None,
                colour: str = "classification", dataset: str = "lidar") -> tuple[int, dict]:
    """Write the points of ``src`` (LAS/LAZ) as a coloured LAS 1.4 with ellipsoidal heights.

    Returns the number of points written and ``{class: count}``.

    Raises
    ------
    SourceDataError
        If the file cannot be read.
    """
    import laspy

    from ..lidar import read_las_complete
    from .pointcloud import point_colours

    las = read_las_complete(src, dataset, "check the file (LAS/LAZ 1.0-1.4) or re-stage the tile", str(src))
    x, y, z = np.asarray(las.x), np.asarray(las.y), np.asarray(las.z)
    cls = np.asarray(las.classification, dtype=np.uint8)
    keep = np.ones(len(x), dtype=bool)
    if bounds is not None:
        x0, y0, x1, y1 = bounds
        keep = (x >= x0) & (x < x1) & (y >= y0) & (y < y1)
    x, y, z, cls = x[keep], y[keep], z[keep], cls[keep]
    if colour == "rgb":
        if not {"red", "green", "blue"} <= set(las.point_format.dimension_names):
            raise dataset_error(SourceDataError, dataset, f"{Path(src).name} has no RGB",
                                "use colour='classification' or 'height'", str(src))
        rgb16 = np.column_stack([np.asarray(las.red)[keep], np.asarray(las.green)[keep],
                                 np.asarray(las.blue)[keep]]).astype(np.uint16)
        if rgb16.size and rgb16.max() <= 255:
            rgb16 = rgb16 * 257
    else:
        rgb16 = point_colours(cls, z, colour).astype(np.uint16) * 257
    if len(x):
        xc, yc = 0.5 * (x.min() + x.max()), 0.5 * (y.min() + y.max())
        lon, lat, _ = geo.to_geodetic(np.array([xc]), np.array([yc]), np.zeros(1))
        undulation = float(geo.undulation(np.asarray(lon), np.asarray(lat))[0])
    else:
        undulation = 0.0
    header = laspy.LasHeader(point_format=7, version="1.4")  # format 7: a plain "classification" byte
    header.scales = np.array([0.001, 0.001, 0.001])
    header.offsets = np.array([np.floor(x.min()) if len(x) else 0.0, np.floor(y.min()) if len(y) else 0.0, 0.0])
    out = laspy.LasData(header)
    out.x, out.y, out.z = x, y, z + undulation
    out.classification = cls
    out.red, out.green, out.blue = rgb16[:, 0], rgb16[:, 1], rgb16[:, 2]
    out.write(str(dst))
    u, c = np.unique(cls, return_counts=True)
    return int(len(x)), {int(a): int(b) for a, b in zip(u, c)}


def py3dtiles_command(files: Sequence[str | Path], out_dir: str | Path, *, srs_in: int, jobs: int = 2,
                      extra: Sequence[str] = ()) -> list[str]:
    """The ``py3dtiles convert`` command line (run with this interpreter's py3dtiles)."""
    exe = Path(sys.executable).with_name("py3dtiles")
    base = [str(exe)] if exe.exists() else [sys.executable, "-c", "from py3dtiles.command_line import main; main()"]
    return [*base, "convert", "--out", str(out_dir), "--overwrite", "--srs_in", str(srs_in), "--srs_out", "4978",
            "--jobs", str(jobs), *extra, *[str(f) for f in files]]


def _epsg(crs: str, dataset: str) -> int:
    import pyproj

    c = pyproj.CRS.from_user_input(crs)
    if c.is_compound:
        c = c.sub_crs_list[0]
    code = c.to_epsg()
    if code is None:
        raise dataset_error(ConfigError, dataset, f"CRS {crs!r} has no EPSG code", "give an EPSG CRS for py3dtiles")
    return int(code)


def convert_with_py3dtiles(paths: Sequence[Path], bounds: Sequence[Sequence[float] | None] | None, work: Path,
                           geo: GeoTransformer, crs: str, *, colour: str, jobs: int, timeout_s: float,
                           dataset: str = "lidar") -> tuple[Path, dict, int, dict, float, float]:
    """Prepare the files and run ``py3dtiles convert`` into ``work/tiles``.

    Returns ``(tiles folder, its tileset.json as written by py3dtiles, points, classes,
    prepare seconds, convert seconds)``.

    Raises
    ------
    SourceDataError
        A file is unreadable, no point is inside the bounds, or py3dtiles fails (its message is
        included) or times out.
    """
    t0 = time.perf_counter()
    las_files, n_points, classes = [], 0, {}
    for i, p in enumerate(paths):
        dst = work / "las" / f"{i:04d}_{p.stem}.las"
        dst.parent.mkdir(parents=True, exist_ok=True)
        n, cls = prepare_las(p, dst, geo, bounds=None if bounds is None else bounds[i], colour=colour,
                             dataset=dataset)
        if n:
            las_files.append(dst)
        n_points += n
        for c, k in cls.items():
            classes[c] = classes.get(c, 0) + k
    prepare_s = time.perf_counter() - t0
    if not las_files:
        raise dataset_error(SourceDataError, dataset, "no point inside the given bounds",
                            "check the bounds and the files' CRS", ", ".join(p.name for p in paths))
    tiles = work / "tiles"
    cmd = py3dtiles_command(las_files, tiles, srs_in=_epsg(crs, dataset), jobs=jobs,
                            extra=["--extra-fields", "classification"])
    t1 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=dict(os.environ),
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise dataset_error(SourceDataError, dataset, f"py3dtiles did not finish within {timeout_s:.0f} s",
                            "raise timeout_s or tile fewer points per run") from None
    convert_s = time.perf_counter() - t1
    if proc.returncode != 0 or not (tiles / "tileset.json").is_file():
        tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-5:]
        raise dataset_error(SourceDataError, dataset, f"py3dtiles convert failed ({proc.returncode}): "
                            + " | ".join(tail), "see the py3dtiles message; check CRS and files")
    doc = json.loads((tiles / "tileset.json").read_text(encoding="utf-8"))
    return tiles, doc, n_points, classes, prepare_s, convert_s
