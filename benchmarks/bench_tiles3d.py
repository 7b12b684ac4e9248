"""Benchmark of the 3D Tiles writers (``citymodel.tiles3d``).

Run from the project root::

    .venv/bin/python -m benchmarks.bench_tiles3d                      # 5,000 houses, 1 M points
    .venv/bin/python -m benchmarks.bench_tiles3d --houses 2000 --points 200000

Prints
(a) buildings to 3D Tiles in buildings/s (synthetic LoD2 gable houses made with
    ``citymodel.roofs.part_solid``, spread over 4 km²; goal >= 2,000/s on 2 cores) and the size of
    the building tiles per building (bytes);
(b) point cloud tiling time of ``write_pointcloud_tiles`` next to the plain ``py3dtiles convert``
    CLI on the same LAZ in the same run (CLI with ``--color_scale 1``, the documented way around
    its LAZ deadlock), and their ratio (goal <= 1.2).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from citymodel.geometry3d import Solid, Surface
from citymodel.roofs import RoofForm, RoofPart, part_solid
from citymodel.tiles3d import write_building_tiles
from citymodel.tiles3d.pointcloud import py3dtiles_command, write_pointcloud_tiles

E0, N0 = 682000.0, 5645000.0


def houses(n: int, seed: int = 1) -> list[dict]:
    """``n`` gable houses: 200 distinct part solids, moved to random places (part_solid is slow)."""
    rng = np.random.default_rng(seed)
    protos = []
    for i in range(200):
        p = RoofPart(cx=0.0, cy=0.0, length_m=rng.uniform(9, 16), width_m=rng.uniform(7, 11),
                     angle_deg=rng.uniform(0, 180), ground_z=0.0, eave_m=rng.uniform(5, 8), ridge_m=rng.uniform(9, 13),
                     form=RoofForm.GABLE)
        protos.append(part_solid(p))
    out = []
    for i in range(n):
        proto = protos[i % len(protos)]
        d = np.array([E0 + rng.uniform(20, 1980), N0 + rng.uniform(20, 1980), 150.0 + rng.uniform(0, 30)])
        solid = Solid([Surface(s.kind, [r + d for r in s.rings]) for s in proto.surfaces])
        out.append({"id": f"B{i:06d}", "solid": solid,
                    "attributes": {"function_code": "31001_1010", "roof_code": 3100, "eave_height_m": 6.0,
                                   "ridge_height_m": 10.0, "ground_height_m": float(d[2]), "storeys": 2,
                                   "method": "parametric"}})
    return out


def bench_buildings(n: int, tmp: Path) -> dict:
    recs = houses(n)
    write_building_tiles(recs[:50], tmp / "warm", geoid=46.31)  # imports, pyproj set-up
    t0 = time.perf_counter()
    info = write_building_tiles(recs, tmp / "buildings", geoid=46.31)
    dt = time.perf_counter() - t0
    return {"buildings": n, "seconds": round(dt, 3), "buildings_per_s": round(n / dt, 1),
            "content_tiles": info.n_content_tiles, "bytes_per_building": round(info.bytes_total / n, 1),
            "bytes_total": info.bytes_total}


def synthetic_laz(path: Path, n: int, seed: int = 2) -> None:
    import laspy

    rng = np.random.default_rng(seed)
    x = E0 + rng.uniform(0, 1000, n)
    y = N0 + rng.uniform(0, 1000, n)
    ground = 150 + 0.01 * (x - E0) + 2 * np.sin((y - N0) / 80)
    roof = rng.random(n) < 0.3
    z = ground + np.where(roof, rng.uniform(4, 15, n), rng.normal(0, 0.05, n))
    header = laspy.LasHeader(point_format=1, version="1.2")
    header.scales = [0.01, 0.01, 0.01]
    header.offsets = [E0, N0, 0.0]
    las = laspy.LasData(header)
    las.x, las.y, las.z = x, y, z
    las.classification = np.where(roof, 1, 2).astype(np.uint8)
    las.write(str(path))


def bench_pointcloud(n: int, tmp: Path, laz: Path | None) -> dict:
    if laz is None:
        laz = tmp / "synthetic.laz"
        synthetic_laz(laz, n)
    t0 = time.perf_counter()
    cmd = py3dtiles_command([laz], tmp / "pc_cli", srs_in=25832, extra=["--color_scale", "1"])
    proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    t_cli = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"py3dtiles CLI failed: {proc.stderr[-2000:]}")
    t0 = time.perf_counter()
    info = write_pointcloud_tiles([laz], tmp / "pc_ours", "EPSG:25832", geoid=46.31)
    t_ours = time.perf_counter() - t0
    return {"file": laz.name, "points": info.n_points, "py3dtiles_cli_s": round(t_cli, 2),
            "write_pointcloud_tiles_s": round(t_ours, 2), "prepare_s": round(info.prepare_seconds, 2),
            "convert_s": round(info.convert_seconds, 2), "ratio": round(t_ours / t_cli, 3)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--houses", type=int, default=5000)
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--laz", type=Path, default=None, help="a staged LAZ (EPSG:25832) instead of a synthetic one")
    ap.add_argument("--skip-pointcloud", action="store_true")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_tiles3d_") as d:
        tmp = Path(d)
        res = {"buildings": bench_buildings(args.houses, tmp)}
        print(json.dumps(res["buildings"]), flush=True)
        if not args.skip_pointcloud:
            res["pointcloud"] = bench_pointcloud(args.points, tmp, args.laz)
            print(json.dumps(res["pointcloud"]), flush=True)
    b = res["buildings"]
    print(f"buildings: {b['buildings_per_s']:.0f} buildings/s (goal >= 2000), {b['bytes_per_building']:.0f} B/building")
    if "pointcloud" in res:
        p = res["pointcloud"]
        print(f"point cloud: {p['write_pointcloud_tiles_s']:.1f} s vs py3dtiles CLI {p['py3dtiles_cli_s']:.1f} s "
              f"-> ratio {p['ratio']:.2f} (goal <= 1.2)")


if __name__ == "__main__":
    main(sys.argv[1:])
