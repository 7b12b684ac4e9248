"""Benchmark of the LoD2 reconstruction (``citymodel.lod2.reconstruct_tile``).

Run from the project root::

    .venv/bin/python -m benchmarks.bench_lod2               # sample city + Delft, 2 worker processes
    .venv/bin/python -m benchmarks.bench_lod2 --workers 1 --profile

Prints, per data set, buildings per second for reconstruction + validation (inside
``reconstruct_tile``, including reading the staged LAS (``--staged laz``: LAZ) and DTM) +
writing CityJSONSeq per tile (``citymodel.cityjson``), with a pool of warm worker processes over tiles
(imports are done before the clock starts, including numba and the compiled loops of
:mod:`citymodel.lod2.kernels` and :mod:`citymodel.validate3d_kernels`: ~0.7 s CPU once per process), and the peak memory (max RSS) of the
worker after each tile (an upper bound of the tile's peak: a worker keeps its high-water mark).
Goal: >= 50 buildings/s on 2 cores.

Then the accuracy figures (issue #14): roof type accuracy and the median and 90th-percentile ridge
and eave errors against the sample city's ground truth (all buildings, and the hard cases alone),
the share of LoD1 fallbacks, valid LoD2 buildings, the truth-free distance between the buildings'
points and their roofs (median of the medians, median and 90th percentile of the 90th
percentiles) and how far the highest roof vertex lies above the ridge attribute and above the 99th
percentile of the building's own points (Delft: class 6 of the raw LAZ). Delft has no roof-type or
ridge reference: those figures are printed as n/a. Staging (``citymodel.lidar.stage_tile``) is done first and
not counted. ``--profile`` runs the largest tile under cProfile in-process (one process: the
buildings are not spread over worker processes) and prints where the time goes.

``reconstruct_tile`` itself forks worker processes over the buildings of a large tile (one per
40 buildings, at most the CPU count; ``CITYMODEL_LOD2_WORKERS`` overrides, 1 = none): a tile of
135 buildings next to one of 25 no longer leaves a core idle. ``--tile-workers`` sets that
variable for the run.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
# the pipeline's default staged format (lidar.staged_format); --staged laz for the compressed one
STAGED = "las"
SAMPLE_TRUTH: dict | None = None


def _tile_job(args):
    """Reconstruct + validate + write one tile; runs in its own process."""
    footprints_path, laz, tif, tile_id, prefix, out, epsg, vertical = args
    import geopandas as gpd

    from citymodel.cityjson import write_cityjsonseq
    from citymodel.lod2 import reconstruct_tile
    from citymodel.raster import read_geotiff
    from citymodel.tiles import parse_tile_id

    fp = gpd.read_parquet(footprints_path)
    tile = parse_tile_id(tile_id)
    if not prefix:
        tile = type(tile)(tile.e_km, tile.n_km, tile.size_m, "")
    c0 = _cpu_s()
    t0 = time.perf_counter()
    results = reconstruct_tile(fp, laz, read_geotiff(tif), tile)
    t1 = time.perf_counter()
    write_cityjsonseq(Path(out) / f"{tile.id}.city.jsonl", [r.to_city_building() for r in results if r.solids],
                      horizontal_epsg=epsg, vertical_epsg=vertical)
    t2 = time.perf_counter()
    cpu = _cpu_s() - c0
    methods: dict[str, int] = {}
    for r in results:
        methods[r.method] = methods.get(r.method, 0) + 1
    rows = []
    for r in results:
        a = r.attributes()
        a["top_z"] = max((s.bounds[5] for s in r.solids), default=float("nan"))
        rows.append(a)
    return {"tile": tile.id, "buildings": len(results), "reconstruct_validate_s": round(t1 - t0, 2),
            "write_s": round(t2 - t1, 2), "cpu_s": round(cpu, 2), "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                                                                / 1024, 1),
            "methods": methods, "invalid": sum(bool(r.validity_codes) for r in results), "rows": rows}


def _cpu_s() -> float:
    """CPU seconds of this process and its (waited-for) children: the work, whatever the machine's load."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _warm(_=None):
    """Import what a tile job needs (done before the clock starts: workers are reused)."""
    import geopandas  # noqa: F401

    import citymodel.cityjson  # noqa: F401
    import citymodel.lod2  # noqa: F401
    import citymodel.lod2.kernels  # noqa: F401  (numba, ~0.6 s once per process: loads the compiled loops)
    import citymodel.validate3d_kernels  # noqa: F401
    return True


def _run(name, jobs, workers):
    with ProcessPoolExecutor(max_workers=workers, initializer=_warm) as ex:
        list(ex.map(_warm, range(workers)))          # start and warm every worker
        t0 = time.perf_counter()
        rows = list(ex.map(_tile_job, jobs))
        wall = time.perf_counter() - t0
    n = sum(r["buildings"] for r in rows)
    cpu = sum(r["reconstruct_validate_s"] + r["write_s"] for r in rows)
    cpu_s = sum(r["cpu_s"] for r in rows)
    buildings = [b for r in rows for b in r.pop("rows")]
    out = {"dataset": name, "workers": workers, "tile_workers": os.environ.get("CITYMODEL_LOD2_WORKERS", "auto"),
           "buildings": n, "wall_s": round(wall, 2),
           "buildings_per_s": round(n / wall, 1), "buildings_per_s_per_process": round(n / cpu, 1) if cpu else None,
           # CPU time does not grow with other jobs on the machine: buildings per CPU second, times the
           # processes, is what the processes would do on otherwise idle cores
           "cpu_s": round(cpu_s, 2), "buildings_per_cpu_s": round(n / cpu_s, 1) if cpu_s else None,
           "buildings_per_s_idle_estimate": round(min(workers, os.cpu_count() or 1) * n / cpu_s, 1) if cpu_s else None,
           "tiles": rows, "peak_rss_mb_max": max(r["max_rss_mb"] for r in rows),
           "load_average": [round(x, 2) for x in os.getloadavg()]}
    print(json.dumps(out, indent=1))
    out["rows"] = buildings
    return out


def _pct(values, q):
    import numpy as np

    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    return float(np.percentile(v, q)) if len(v) else float("nan")


def accuracy(rows: list[dict], truth: dict[str, dict] | None, top_reference: dict[str, float] | None = None) -> dict:
    """The issue-#14 figures of one data set (see the module docstring)."""
    import numpy as np

    out: dict = {"buildings": len(rows)}
    built = [r for r in rows if r["method"] != "rejected"]
    out["lod1_fallback_share"] = round(float(np.mean([r["method"] == "lod1_fallback" for r in built])), 4)
    lod2 = [r for r in built if r["method"] == "lod2_fitted" and not r["validity_codes"]]
    out["valid_lod2"] = len(lod2)
    out["point_to_roof_median_of_medians_m"] = round(_pct([r.get("point_to_roof_median_m") for r in built], 50), 3)
    out["point_to_roof_median_p90_m"] = round(_pct([r.get("point_to_roof_p90_m") for r in built], 50), 3)
    out["point_to_roof_p90_p90_m"] = round(_pct([r.get("point_to_roof_p90_m") for r in built], 90), 3)
    over = [r["top_z"] - r["ground_height_m"] - r["ridge_height_m"] for r in lod2]
    out["top_minus_ridge_median_m"] = round(_pct(over, 50), 3)
    out["top_minus_ridge_max_m"] = round(max(over), 3) if over else None
    if top_reference:
        over = [r["top_z"] - top_reference[r["building_id"]] for r in lod2 if r["building_id"] in top_reference]
        out["top_minus_p99_points_median_m"] = round(_pct(over, 50), 3)
        out["top_minus_p99_points_p90_m"] = round(_pct(over, 90), 3)

    def errors(sel):
        t = [truth[r["building_id"]] for r in sel]
        ridge = [abs(r["ridge_height_m"] - x["ridge_height_m"]) for r, x in zip(sel, t) if r["ridge_height_m"] is not None]
        eave = [abs(r["eave_height_m"] - x["eave_height_m"]) for r, x in zip(sel, t) if r["eave_height_m"] is not None]
        return {"n": len(sel), "roof_type_accuracy": round(float(np.mean([r["roofType"] == x["roof_code"]
                                                                           for r, x in zip(sel, t)])), 4),
                "ridge_error_median_m": round(_pct(ridge, 50), 3), "ridge_error_p90_m": round(_pct(ridge, 90), 3),
                "eave_error_median_m": round(_pct(eave, 50), 3), "eave_error_p90_m": round(_pct(eave, 90), 3)}

    if truth is None:
        out["vs_truth"] = "n/a (no roof-type or ridge reference)"
    else:
        out["vs_truth"] = errors([r for r in built if r["building_id"] in truth])
        cases = [r for r in built if truth.get(r["building_id"], {}).get("case")]
        if cases:
            out["cases_vs_truth"] = errors(cases)
    return out


def delft_top_reference(q: float = 99.0) -> dict[str, float]:
    """The ``q``-th percentile of each Delft footprint's class-6 points (raw LAZ)."""
    import geopandas as gpd
    import laspy
    import numpy as np
    import shapely

    d = SHARED / "delft-ahn3"
    xs, ys, zs = [], [], []
    for f in sorted(d.glob("*.laz")):
        las = laspy.read(f)
        m = np.asarray(las.classification) == 6
        xs.append(np.asarray(las.x)[m])
        ys.append(np.asarray(las.y)[m])
        zs.append(np.asarray(las.z)[m])
    x, y, z = map(np.concatenate, (xs, ys, zs))
    fp = gpd.read_file(d / "footprints.geojson")
    out = {}
    for bid, g in zip(fp["identificatiebagpnd"].astype(str), fp.geometry):
        m = shapely.contains_xy(g, x, y)
        if m.any():
            out[bid] = float(np.percentile(z[m], q))
    return out


def _buildings_settings():
    """(SourceSettings of the buildings role, QualitySettings, processing CRS) of the sample city.

    Read from the bundled deployment file's own keys, so that unrelated keys being added to it by
    other stages do not matter here.
    """
    import yaml

    from citymodel.config import DEFAULT_CONFIG, QualitySettings, SourceSettings

    raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    return (SourceSettings(**raw["sources"]["buildings"]), QualitySettings(**raw.get("quality", {})),
            raw.get("processing_crs", "EPSG:25832"))


def sample_city_jobs(work: Path):
    from citymodel.lidar import stage_tile
    from citymodel.samplecity import generate
    from citymodel.tiles import parse_tile_id
    from citymodel.vector import read_role, validate_records

    sc = generate(work / "sample_city", verbose=False)
    global SAMPLE_TRUTH
    SAMPLE_TRUTH = {b["building_id"]: b for b in sc.ground_truth["buildings"]}
    source, quality, crs = _buildings_settings()
    gdf = read_role("buildings", sc.buildings_path, source, crs)
    good, _ = validate_records("buildings", gdf, quality)
    fp = work / "sample_footprints.parquet"
    good.to_parquet(fp)
    jobs = []
    for tid in sc.tile_ids:
        laz, tif = work / f"{tid}.{STAGED}", work / f"{tid}_dtm.tif"
        if not laz.exists():
            stage_tile(sc.lidar_paths, parse_tile_id(tid), "lidar", laz, tif, crs)
        jobs.append((str(fp), str(laz), str(tif), tid, "32", str(work / "out_sample"), 25832, 7837))
    (work / "out_sample").mkdir(exist_ok=True)
    return jobs


def delft_jobs(work: Path):
    import geopandas as gpd

    from citymodel.lidar import stage_tile
    from citymodel.tiles import Tile

    d = SHARED / "delft-ahn3"
    fp = gpd.read_file(d / "footprints.geojson")
    fp["building_id"] = fp["identificatiebagpnd"].astype(str)
    fp["function_code"] = None
    fp["storeys"] = None
    path = work / "delft_footprints.parquet"
    fp.to_parquet(path)
    jobs = []
    (work / "out_delft").mkdir(exist_ok=True)
    for t in (Tile(84, 447, prefix=""), Tile(85, 447, prefix="")):
        laz, tif = work / f"{t.id}.{STAGED}", work / f"{t.id}_dtm.tif"
        if not laz.exists():
            stage_tile(sorted(d.glob("*.laz")), t, "delft-ahn3", laz, tif, "EPSG:28992", crs_override="EPSG:28992")
        jobs.append((str(path), str(laz), str(tif), t.id, "", str(work / "out_delft"), 28992, 5709))
    return jobs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--work-dir", type=Path, default=None, help="keep staged inputs here (default: temp)")
    ap.add_argument("--profile", action="store_true", help="cProfile the largest sample-city tile")
    ap.add_argument("--tile-workers", type=int, default=None,
                    help="worker processes per tile inside reconstruct_tile (CITYMODEL_LOD2_WORKERS; default: auto)")
    ap.add_argument("--staged", choices=["las", "laz"], default="las", help="staged point format read by LoD2")
    args = ap.parse_args(argv)
    global STAGED
    STAGED = args.staged
    if args.tile_workers is not None:
        os.environ["CITYMODEL_LOD2_WORKERS"] = str(args.tile_workers)
    tmp = None
    if args.work_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="bench_lod2_")
        work = Path(tmp.name)
    else:
        work = args.work_dir
        work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    jobs = sample_city_jobs(work)
    print(f"sample city generated and staged in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    results = [_run("sample city", jobs, args.workers)]
    results[0]["accuracy"] = accuracy(results[0].pop("rows"), SAMPLE_TRUTH)
    if SHARED.is_dir():
        results.append(_run("delft-ahn3", delft_jobs(work), args.workers))
        results[-1]["accuracy"] = accuracy(results[-1].pop("rows"), None, delft_top_reference())
    if args.profile:
        big = max(jobs, key=lambda j: Path(j[1]).stat().st_size)
        prof = cProfile.Profile()
        saved = os.environ.get("CITYMODEL_LOD2_WORKERS")
        os.environ["CITYMODEL_LOD2_WORKERS"] = "1"          # profile all buildings in this process
        try:
            prof.runcall(_tile_job, big)
        finally:
            if saved is None:
                os.environ.pop("CITYMODEL_LOD2_WORKERS", None)
            else:
                os.environ["CITYMODEL_LOD2_WORKERS"] = saved
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats("cumulative").print_stats(25)
        print(s.getvalue())
    for r in results:
        goal = "meets" if r["buildings_per_s"] >= 50 else "below"
        print(f"{r['dataset']}: {r['buildings']} buildings, {r['buildings_per_s']} buildings/s on {r['workers']} "
              f"processes ({goal} the goal of 50/s), peak RSS per tile process {r['peak_rss_mb_max']} MB, "
              f"load average {r['load_average']}; {r['buildings_per_cpu_s']} buildings per CPU second, "
              f"{r['buildings_per_s_idle_estimate']} buildings/s on idle cores")
        print(f"{r['dataset']} accuracy: {json.dumps(r['accuracy'])}")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
