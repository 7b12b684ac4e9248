"""Benchmark of the 3D Tiles writers (``citymodel.tiles3d``).

Run from the project root::

    .venv/bin/python -m benchmarks.bench_tiles3d                      # 5,000 houses
    .venv/bin/python -m benchmarks.bench_tiles3d --houses 2000

Prints buildings to 3D Tiles in buildings/s (synthetic LoD2 gable houses made with
``citymodel.roofs.part_solid``, spread over 4 km²; goal >= 2,000/s on 2 cores) and the size of
the building tiles per building (bytes). Point-cloud tiling: ``benchmarks.bench_pointcloud``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from citymodel.geometry3d import Solid, Surface
from citymodel.roofs import RoofForm, RoofPart, part_solid
from citymodel.tiles3d import write_building_tiles

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


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--houses", type=int, default=5000)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_tiles3d_") as d:
        tmp = Path(d)
        res = {"buildings": bench_buildings(args.houses, tmp)}
        print(json.dumps(res["buildings"]), flush=True)
    b = res["buildings"]
    print(f"buildings: {b['buildings_per_s']:.0f} buildings/s (goal >= 2000), {b['bytes_per_building']:.0f} B/building")


if __name__ == "__main__":
    main(sys.argv[1:])
