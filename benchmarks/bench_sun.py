"""Benchmark of the sun, shadow and solar layers (``citymodel.analysis``).

Run from the project root::

    .venv/bin/python -m benchmarks.bench_sun                 # 1,500 gable houses on a 1 km tile
    .venv/bin/python -m benchmarks.bench_sun --houses 300    # quick check

Synthetic scene: ``--houses`` gable houses (12 x 8 m, eave 6 m, ridge 10 m, random ridge direction)
from ``citymodel.roofs`` on a regular grid over the tile 32_682_5645, on gently tilted terrain
(1 m DTM, mesh 5 m), and 400 street trees (opaque crowns).

Prints
(a) rays per second, any-hit (shadow rays from ground cells towards the sun; goal >= 5 M/s on 2
    cores), and first-hit for comparison;
(b) sun hours on the 1 km tile at 1 m, 15 min steps, one day (21 June; goal <= 60 s);
(c) annual roof irradiation (hourly clear-sky year, shading rays per binned sun position,
    Tregenza sky-view factor) for every roof surface (goal <= 120 s);
(d) peak memory (max RSS of this process).
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import pandas as pd

from citymodel.analysis import shadow as SH
from citymodel.analysis import solar as SO
from citymodel.analysis import sun as S
from citymodel.analysis.scene import Scene, TerrainModel
from citymodel.roofs import RoofForm, RoofPart, part_solid
from affine import Affine

E0, N0 = 682000.0, 5645000.0
Z0 = 150.0


def synthetic_city(houses: int, seed: int = 11):
    rng = np.random.default_rng(seed)
    n = int(np.ceil(np.sqrt(houses)))
    pitch = 1000.0 / n
    # terrain: 1 m DTM over tile + 50 m halo, tilted 2 % to the north-east with a gentle wave
    rows = cols = 1100
    xs = E0 - 50 + np.arange(cols) + 0.5
    ys = N0 + 1050 - np.arange(rows) - 0.5
    X, Y = np.meshgrid(xs, ys)
    dtm = Z0 + 0.02 * (X - E0) + 0.01 * (Y - N0) + 2.0 * np.sin((X - E0) / 150.0)
    terrain = TerrainModel(dtm, Affine(1.0, 0, E0 - 50, 0, -1.0, N0 + 1050))
    buildings = {}
    k = 0
    for i in range(n):
        for j in range(n):
            if k >= houses:
                break
            cx = E0 + (i + 0.5) * pitch + rng.uniform(-2, 2)
            cy = N0 + (j + 0.5) * pitch + rng.uniform(-2, 2)
            gz = float(terrain.height(np.array([cx]), np.array([cy]))[0])
            part = RoofPart(cx, cy, 12.0, 8.0, float(rng.uniform(0, 180)), gz, 6.0, 10.0, RoofForm.GABLE,
                            part_id=f"H{k:04d}")
            buildings[f"H{k:04d}"] = [part_solid(part)]
            k += 1
    # trees on the street axes between the houses
    tx = E0 + rng.integers(1, n, 400) * pitch + rng.uniform(-1, 1, 400)
    ty = N0 + rng.uniform(0, 1000, 400)
    trees = pd.DataFrame({"tree_id": [f"T{i}" for i in range(400)], "x": tx, "y": ty,
                          "height_m": rng.uniform(8, 18, 400), "crown_diameter_m": rng.uniform(4, 9, 400)})
    return buildings, trees, terrain


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--houses", type=int, default=1500)
    ap.add_argument("--cell", type=float, default=1.0, help="ground grid cell (m)")
    ap.add_argument("--step", type=float, default=15.0, help="time step (min)")
    ap.add_argument("--spacing", type=float, default=1.0, help="roof sample spacing (m)")
    args = ap.parse_args(argv)

    t = time.perf_counter()
    buildings, trees, terrain = synthetic_city(args.houses)
    t_gen = time.perf_counter() - t
    t = time.perf_counter()
    tile = (E0, N0, E0 + 1000, N0 + 1000)
    scene = Scene.build(buildings, trees=trees, terrain=terrain, detail_bounds=(E0 - 50, N0 - 50, E0 + 1050, N0 + 1050))
    t_scene = time.perf_counter() - t
    print(f"scene: {len(buildings)} houses, {len(trees)} trees, triangles {scene.n_triangles}, "
          f"built in {t_scene:.2f} s (geometry {t_gen:.2f} s), {scene.threads} threads")

    # (a) rays per second: ground cells towards the June-noon sun and a low evening sun
    sp = S.sun_path(tile, dates=[(6, 21)], step_min=args.step)
    rng = np.random.default_rng(1)
    n = 2_000_000
    x = rng.uniform(E0, E0 + 1000, n)
    y = rng.uniform(N0, N0 + 1000, n)
    o = np.column_stack([x, y, terrain.height(x, y) + 0.05])
    for label, k in (("noon", int(np.argmax(sp.elevation_deg))), ("evening (el ~10 deg)",
                     int(np.flatnonzero(sp.above_horizon)[-1] - 6))):
        d = sp.vectors[k]
        t = time.perf_counter()
        hit = scene.occluded(o, d, terrain=False, crowns=False)
        dt_any = time.perf_counter() - t
        t = time.perf_counter()
        tr = scene.transmittance(o, d)
        dt_tr = time.perf_counter() - t
        t = time.perf_counter()
        scene.first_hit(o, d)
        dt_first = time.perf_counter() - t
        print(f"(a) rays/s, sun {label} (el {sp.elevation_deg[k]:.1f} deg): any-hit buildings "
              f"{n / dt_any / 1e6:.2f} M/s ({hit.mean():.0%} blocked); full shadow test (buildings+terrain+"
              f"crowns) {n / dt_tr / 1e6:.2f} M/s; first-hit 1 thread {n / dt_first / 1e6:.2f} M/s")

    # (b) sun hours on the tile
    t = time.perf_counter()
    grid = SH.sun_hours_ground(scene, sp, tile, cell_m=args.cell)
    dt_sun = time.perf_counter() - t
    h = grid.hours[0]
    print(f"(b) sun hours 1 km tile at {args.cell} m, {args.step:g} min, 21 June: {dt_sun:.1f} s "
          f"(goal <= 60 s); {grid.metadata['rays'] / 1e6:.1f} M rays = {grid.metadata['rays'] / dt_sun / 1e6:.2f} M rays/s; "
          f"cells under roofs {grid.metadata['cells_under_roof']}; hours min/mean/max "
          f"{np.nanmin(h):.2f}/{np.nanmean(h):.2f}/{np.nanmax(h):.2f}")

    # (c) annual roof irradiation
    t = time.perf_counter()
    sky = _weather_year(sp)
    tab = SO.roof_irradiation(scene, buildings, sky, spacing_m=args.spacing, model="haydavies", crs="EPSG:25832")
    dt_sol = time.perf_counter() - t
    print(f"(c) roof irradiation, {len(buildings)} buildings, {len(tab)} roof surfaces, "
          f"{int(tab['samples'].sum())} sample points: {dt_sol:.1f} s (goal <= 120 s); "
          f"{tab.attrs['rays'] / 1e6:.1f} M rays ({tab.attrs['sun_bins']} sun bins, 145 sky patches); "
          f"kWh/m²a min/median/max {tab.irradiation_kwh_m2a.min():.0f}/{tab.irradiation_kwh_m2a.median():.0f}/"
          f"{tab.irradiation_kwh_m2a.max():.0f}; reference {tab.attrs['reference_kwh_m2a']:.0f}; classes "
          f"{tab.suitability.value_counts().to_dict()}; climate: {sky.metadata['climate_label']}")

    # (d) memory
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"(d) peak memory (max RSS): {peak_mb:.0f} MB")


def _weather_year(sp):
    """The default climate of the solar layer: an hourly typical year (the sample city's synthetic
    DWD TRY at the site, read and converted as the pipeline does)."""
    import tempfile
    from pathlib import Path

    from citymodel.analysis import climate as C
    from citymodel.samplecity.weather import write_synthetic_try

    with tempfile.TemporaryDirectory() as d:
        path = write_synthetic_try(Path(d) / "try.dat", C.JENA_MONTHLY_GHI_KWH_M2, sp.latitude, sp.longitude, seed=1)
        data = C.read_weather(path, "bench")
    return C.weather_year(data, sp.latitude, sp.longitude, sp.convergence_deg, source="synthetic TRY")


if __name__ == "__main__":
    main()
