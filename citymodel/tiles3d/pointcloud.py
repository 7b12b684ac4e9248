"""Point clouds as 3D Tiles with py3dtiles (``.pnts`` content in a 3D Tiles 1.1 tileset).

Each LAS/LAZ is first prepared in this process with laspy: cropped to its tile (staged tiles
carry a halo that would otherwise be published twice), coloured by class or by height, heights
made ellipsoidal with the geoid model (the undulation at the file's centre: it changes by
centimetres over a 1 km tile) and written as an uncompressed LAS 1.4 (point format 7, whose
classification is a plain byte field py3dtiles can export). The
``py3dtiles convert`` CLI then runs in a subprocess on those LAS files (``--srs_out 4978``,
``--extra-fields classification``): reading LAS there avoids py3dtiles' deadlock on LAZ read with
lazrs' threads before it forks its workers. py3dtiles' 3D Tiles 1.0 ``.pnts`` output is used (its
1.1 glb point output failed validation); ``tileset.json`` is rewritten as version 1.1 (1.1
tilesets may reference ``.pnts``) with the geoid model and colour scheme in ``asset.extras``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import ConfigError, SourceDataError, dataset_error
from .geo import GeoTransformer, resolve_geoid
from .tileset import write_json_atomic

__all__ = ["write_pointcloud_tiles", "PointCloudInfo", "CLASS_COLORS", "prepare_las", "py3dtiles_command"]

DATASET = "lidar"

#: Colours (RGB bytes) of the ASPRS classes; others are grey.
CLASS_COLORS: dict[int, tuple[int, int, int]] = {
    0: (160, 160, 160), 1: (190, 190, 170), 2: (166, 122, 74), 3: (120, 190, 90), 4: (70, 160, 60),
    5: (30, 120, 40), 6: (200, 70, 60), 7: (255, 0, 255), 9: (60, 120, 220), 17: (150, 150, 220),
    26: (240, 200, 60),
}


@dataclass
class PointCloudInfo:
    """What :func:`write_pointcloud_tiles` wrote and how long it took."""

    tileset_path: Path
    n_points: int = 0
    n_files: int = 0
    geoid: dict = field(default_factory=dict)
    classes: dict = field(default_factory=dict)
    prepare_seconds: float = 0.0
    convert_seconds: float = 0.0
    seconds: float = 0.0
    bytes_total: int = 0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["tileset_path"] = str(self.tileset_path)
        return d


def _colours(cls: np.ndarray, z: np.ndarray, mode: str) -> np.ndarray:
    if mode == "classification":
        lut = np.tile(np.array([[160, 160, 160]], dtype=np.uint16), (256, 1))
        for c, rgb in CLASS_COLORS.items():
            lut[c] = rgb
        return lut[cls.astype(np.uint8)]
    if mode == "height":
        lo, hi = np.percentile(z, [1, 99]) if len(z) else (0.0, 1.0)
        t = np.clip((z - lo) / max(hi - lo, 1e-6), 0.0, 1.0)
        # blue -> green -> yellow -> red
        stops = np.array([[40, 60, 200], [60, 180, 90], [240, 220, 60], [200, 50, 40]], dtype=float)
        pos = t * 3.0
        i = np.minimum(pos.astype(int), 2)
        f = (pos - i)[:, None]
        return np.round(stops[i] * (1 - f) + stops[i + 1] * f).astype(np.uint16)
    raise dataset_error(ConfigError, DATASET, f"unknown colour mode {mode!r}",
                        "use colour='classification', 'height' or 'rgb'")


def prepare_las(src: str | Path, dst: str | Path, geo: GeoTransformer, *, bounds: Sequence[float] | None = None,
                colour: str = "classification") -> tuple[int, dict]:
    """Write the points of ``src`` (LAS/LAZ) as a coloured LAS 1.4 with ellipsoidal heights.

    Returns the number of points written and ``{class: count}``.

    Raises
    ------
    SourceDataError
        If the file cannot be read.
    """
    import laspy

    from ..lidar import read_las_complete

    las = read_las_complete(src, DATASET, "check the file (LAS/LAZ 1.0-1.4) or re-stage the tile", str(src))
    x, y, z = np.asarray(las.x), np.asarray(las.y), np.asarray(las.z)
    cls = np.asarray(las.classification, dtype=np.uint8)
    keep = np.ones(len(x), dtype=bool)
    if bounds is not None:
        x0, y0, x1, y1 = bounds
        keep = (x >= x0) & (x < x1) & (y >= y0) & (y < y1)
    x, y, z, cls = x[keep], y[keep], z[keep], cls[keep]
    if colour == "rgb":
        if not {"red", "green", "blue"} <= set(las.point_format.dimension_names):
            raise dataset_error(SourceDataError, DATASET, f"{Path(src).name} has no RGB",
                                "use colour='classification' or 'height'", str(src))
        rgb16 = np.column_stack([np.asarray(las.red)[keep], np.asarray(las.green)[keep],
                                 np.asarray(las.blue)[keep]]).astype(np.uint16)
        if rgb16.size and rgb16.max() <= 255:
            rgb16 = rgb16 * 257
    else:
        rgb16 = _colours(cls, z, colour) * 257
    if len(x):
        xc, yc = 0.5 * (x.min() + x.max()), 0.5 * (y.min() + y.max())
        lon, lat = geo._to_lonlat.transform(np.array([xc]), np.array([yc]))
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


def _epsg(crs: str) -> int:
    import pyproj

    c = pyproj.CRS.from_user_input(crs)
    if c.is_compound:
        c = c.sub_crs_list[0]
    code = c.to_epsg()
    if code is None:
        raise dataset_error(ConfigError, DATASET, f"CRS {crs!r} has no EPSG code", "give an EPSG CRS for py3dtiles")
    return int(code)


def write_pointcloud_tiles(laz_paths: Sequence[str | Path], out_dir: str | Path, crs: str = "EPSG:25832", *,
                           bounds: Sequence[Sequence[float] | None] | None = None, colour: str = "classification",
                           vertical_crs: str = "EPSG:7837", geoid: str | float | Path = "auto",
                           geoid_search_dirs: Sequence[str | Path] | None = None,
                           fallback_undulation_m: float | None = None, jobs: int = 2, timeout_s: float = 3600.0,
                           extras: Mapping[str, Any] | None = None) -> PointCloudInfo:
    """Tile LAS/LAZ files into a 3D Tiles point cloud with py3dtiles (``out_dir/tileset.json``).

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
    jobs : int
        py3dtiles worker processes.
    timeout_s : float
        The CLI is stopped after this time (an error says so).

    Raises
    ------
    SourceDataError
        A file is missing or unreadable, or py3dtiles fails (its message is included).
    """
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    paths = [Path(p) for p in laz_paths]
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
    info = PointCloudInfo(tileset_path=out_dir / "tileset.json", n_files=len(paths), geoid=model.to_dict())
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        las_files = []
        for i, p in enumerate(paths):
            dst = work / "las" / f"{i:04d}_{p.stem}.las"
            dst.parent.mkdir(parents=True, exist_ok=True)
            n, classes = prepare_las(p, dst, geo, bounds=None if bounds is None else bounds[i], colour=colour)
            if n:
                las_files.append(dst)
            info.n_points += n
            for c, k in classes.items():
                info.classes[c] = info.classes.get(c, 0) + k
        info.prepare_seconds = time.perf_counter() - t0
        if not las_files:
            raise dataset_error(SourceDataError, DATASET, "no point inside the given bounds",
                                "check the bounds and the files' CRS", ", ".join(p.name for p in paths))
        tiles = work / "tiles"
        cmd = py3dtiles_command(las_files, tiles, srs_in=_epsg(crs), jobs=jobs,
                                extra=["--extra-fields", "classification"])
        t1 = time.perf_counter()
        env = dict(os.environ)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise dataset_error(SourceDataError, DATASET, f"py3dtiles did not finish within {timeout_s:.0f} s",
                                "raise timeout_s or tile fewer points per run") from None
        info.convert_seconds = time.perf_counter() - t1
        if proc.returncode != 0 or not (tiles / "tileset.json").is_file():
            tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-5:]
            raise dataset_error(SourceDataError, DATASET, f"py3dtiles convert failed ({proc.returncode}): "
                                + " | ".join(tail), "see the py3dtiles message; check CRS and files")
        doc = json.loads((tiles / "tileset.json").read_text(encoding="utf-8"))
        asset = dict(doc.get("asset") or {})
        asset["version"] = "1.1"
        asset["generator"] = "citymodel.tiles3d + py3dtiles"
        ext = {"geoid": model.to_dict(), "crs": str(crs), "verticalCrs": vertical_crs, "colour": colour,
               "points": info.n_points, "classes": {str(k): v for k, v in sorted(info.classes.items())},
               "classColors": {str(k): list(v) for k, v in CLASS_COLORS.items()} if colour == "classification"
               else None, "contentFormat": "pnts (3D Tiles 1.0 content, allowed in 1.1)"}
        ext = {k: v for k, v in ext.items() if v is not None}
        if extras:
            ext.update(dict(extras))
        asset["extras"] = ext
        doc["asset"] = asset
        write_json_atomic(tiles / "tileset.json", doc)
        info.bytes_total = sum(f.stat().st_size for f in tiles.rglob("*") if f.is_file())
        # swap in the new tileset
        old = None
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(out_dir, old)
        os.replace(tiles, out_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    info.seconds = time.perf_counter() - t0
    return info
