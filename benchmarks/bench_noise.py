"""Benchmark of the noise (RLS-19) and flood layers on a synthetic 1 km tile.

Run from the project root::

    .venv/bin/python -m benchmarks.bench_noise               # full: 10,000 receivers, 200 segments, 1,500 buildings
    .venv/bin/python -m benchmarks.bench_noise --quick       # 2,500 receivers (20 m grid)
    .venv/bin/python -m benchmarks.bench_noise --reflections 0   # without reflections at facades

Prints (a) noise: receivers, road segments, screening buildings, rays (receiver x road piece),
emission/obstacle/propagation times (goal <= 120 s on 2 cores); (b) flood: depth raster (1 m)
and exposure of 1,500 buildings for one scenario (goal <= 10 s); (c) peak memory (max RSS).
"""

from __future__ import annotations

import argparse
import resource
import time

import geopandas as gpd
import numpy as np
import shapely
from affine import Affine

X0, Y0 = 682000.0, 5645000.0


def synthetic_tile(n_buildings: int = 1500, seed: int = 11):
    rng = np.random.default_rng(seed)
    # 10 EW and 10 NS streets 100 m apart, each cut into 10 segments of 100 m: 200 segments
    recs, geoms = [], []
    k = 0
    for i in range(10):
        c = 50.0 + 100.0 * i
        for j in range(10):
            a, b = 100.0 * j, 100.0 * (j + 1)
            for geom in (shapely.LineString([(X0 + a, Y0 + c), (X0 + b, Y0 + c)]),
                         shapely.LineString([(X0 + c, Y0 + a), (X0 + c, Y0 + b)])):
                k += 1
                main = i in (2, 7)
                dtv = float(rng.uniform(12000, 20000) if main else rng.uniform(1500, 6000))
                recs.append(dict(road_id=f"S{k:03d}", name="x", dtv=dtv, m_day=0.0575 * dtv, m_night=0.01 * dtv,
                                 p1_day=3.0, p2_day=2.0, pmc_day=1.0, p1_night=2.0, p2_night=2.0, pmc_night=0.5,
                                 speed_car_kmh=50.0, speed_truck_kmh=50.0, surface="Asphaltbeton"))
                geoms.append(geom)
    roads = gpd.GeoDataFrame(recs, geometry=geoms, crs="EPSG:25832")
    road_zone = shapely.union_all(shapely.buffer(np.asarray(geoms, dtype=object), 9.0))
    tree_geoms, b = [], []
    while len(b) < n_buildings:
        m = 4000
        x = X0 + rng.uniform(0, 985, m)
        y = Y0 + rng.uniform(0, 985, m)
        w = rng.uniform(8, 16, m)
        h = rng.uniform(8, 16, m)
        boxes = shapely.box(x, y, x + w, y + h)
        free = ~shapely.intersects(boxes, road_zone)
        for bx in boxes[free]:
            if len(b) >= n_buildings:
                break
            if tree_geoms and shapely.STRtree(tree_geoms).query(bx, predicate="intersects").size:
                continue
            tree_geoms.append(bx)
            b.append(bx)
        if len(b) < n_buildings and len(tree_geoms) > 100000:
            break
    n = len(b)
    buildings = gpd.GeoDataFrame({"building_id": [f"B{i:04d}" for i in range(n)],
                                  "height_m": rng.uniform(6, 22, n), "ground_height_m": np.zeros(n),
                                  "storeys": rng.integers(2, 7, n), "function_code": ["1000"] * n},
                                 geometry=b, crs="EPSG:25832")
    return roads, buildings


def bench_noise(spacing_m: float, reflection_order: int = 1):
    from citymodel.analysis import noise as nz
    from citymodel.analysis.rls19 import road_emissions

    t0 = time.perf_counter()
    roads, buildings = synthetic_tile()
    t_gen = time.perf_counter() - t0
    t0 = time.perf_counter()
    em = road_emissions(roads)
    t_em = time.perf_counter() - t0
    params = nz.NoiseParameters(grid_spacing_m=spacing_m, reflection_order=reflection_order)
    t0 = time.perf_counter()
    grid = nz.noise_grid(em, (X0, Y0, X0 + 1000, Y0 + 1000), buildings, None, params)
    t_grid = time.perf_counter() - t0
    ok = np.isfinite(grid.lrt_db)
    print(f"noise: {grid.lrt_db.size} grid receivers ({ok.sum()} outside buildings), {len(roads)} road segments, "
          f"{len(buildings)} screening buildings (synthetic tile generated in {t_gen:.1f} s); reflections: "
          + (f"first order at facades within {params.reflection_distance_m:g} m" if reflection_order else "none"))
    print(f"  emission (RLS-19) {t_em:.2f} s; grid propagation incl. obstacle raster {t_grid:.1f} s "
          f"(goal <= 120 s); LrT {np.nanmin(grid.lrt_db):.1f}..{np.nanmax(grid.lrt_db):.1f} dB(A)")
    t0 = time.perf_counter()
    fac = nz.facade_receivers(buildings)
    lv = nz.facade_levels(em, fac, buildings, None, params)
    t_fac = time.perf_counter() - t0
    top = nz.building_max_levels(lv)
    ex = nz.exposure_by_band(top, buildings)
    print(f"  facades: {len(fac)} receivers in {t_fac:.1f} s; residents >= 55 dB(A) LrT: "
          f"{ex[ex.indicator == 'LrT'].residents.sum():.0f}")
    return t_grid


def bench_flood():
    from citymodel.analysis import flood
    from citymodel.raster import Raster

    _, buildings = synthetic_tile()
    xs = X0 + np.arange(1000) + 0.5
    ys = Y0 + 1000 - np.arange(1000) - 0.5
    gx, gy = np.meshgrid(xs, ys)
    dtm = Raster(150.0 + 0.01 * (gx - X0) + 2.0 * np.sin((gy - Y0) / 80.0), Affine(1, 0, X0, 0, -1, Y0 + 1000),
                 None, None)
    zones = gpd.GeoDataFrame({"zone_id": ["Z1", "Z2"], "scenario": ["HQ100", "HQ100"], "water_level_m": [154.0, 155.0]},
                             geometry=[shapely.box(X0, Y0, X0 + 600, Y0 + 500), shapely.box(X0, Y0 + 500, X0 + 700, Y0 + 1000)])
    t0 = time.perf_counter()
    depths, per, summary = flood.flood_exposure(zones, dtm, buildings)
    t = time.perf_counter() - t0
    s = summary.iloc[0]
    print(f"flood: 1 km tile at 1 m, {len(buildings)} buildings: {t:.2f} s (goal <= 10 s); "
          f"{s.buildings_affected} affected, max depth {s.max_depth_m:.2f} m, {s.flooded_area_m2 / 1e4:.1f} ha")
    return t


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="20 m grid (2,500 receivers)")
    ap.add_argument("--skip-noise", action="store_true")
    ap.add_argument("--reflections", type=int, default=1, choices=(0, 1), help="reflection order (default 1)")
    args = ap.parse_args(argv)
    if not args.skip_noise:
        bench_noise(20.0 if args.quick else 10.0, args.reflections)
    bench_flood()
    print(f"peak memory (max RSS): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
