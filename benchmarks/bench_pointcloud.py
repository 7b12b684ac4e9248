"""Benchmark of point-cloud tiling (``citymodel.tiles3d.write_pointcloud_tiles``, the own octree tiler).

Run from the project root::

    .venv/bin/python -m benchmarks.bench_pointcloud                    # 1 km tile at 12 points/m² (13.2 M points)
    .venv/bin/python -m benchmarks.bench_pointcloud --points-m2 2      # quick check
    .venv/bin/python -m benchmarks.bench_pointcloud --laz some.laz     # a real LAZ (EPSG:25832)

Prints, on the same LAZ in the same run (all three read every point of the file; the tiler is run
without cropping so that it writes every point, like py3dtiles; cropping the halo is a compare per
point):

(a) plain lazrs decoding: ``laspy.read`` of the whole file with single-threaded lazrs (the backend
    the tiler uses), points/s;
(b) the own tiler with ``jobs=2`` (two threads in its second pass) in a fresh process: points/s
    (goal >= 1.5 M points/s on 2 cores), its two passes, content tiles, bytes per point, and the
    peak memory (max RSS of that process; the process first tiles a small file, so the compiled
    loops are loaded before the clock starts; that load, once per process, is printed apart);
(c) the ``py3dtiles convert`` CLI (``--jobs 2``; with ``--color_scale 1``, the documented way
    around its LAZ deadlock), points/s;

and the ratios tiler / decode (goal >= 0.4) and tiler / py3dtiles (goal >= 6). Decode and tiler
alternate for ``--repeat`` rounds (default 3) and the medians are reported; py3dtiles runs once.
For information, the tiler also runs on the same points as uncompressed LAS (the pipeline's
default ``lidar.staged_format``: what ``publish/pointcloud_tiles`` reads; no decoding).
The synthetic tile is ``benchmarks.bench_lidar.generate_tile`` (tilted undulating ground, 1,000
buildings, trees; point format 1, points in acquisition order; 25 m halo).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def decode_seconds(path: Path) -> tuple[int, float]:
    """(points, seconds) of ``laspy.read`` of the whole file with single-threaded lazrs."""
    import laspy

    t = time.perf_counter()
    las = laspy.read(path, laz_backend=laspy.LazBackend.Lazrs)
    n = len(las.points)
    return n, time.perf_counter() - t


def _status_mb(field: str) -> float | None:
    """``VmRSS`` / ``VmHWM`` of this process (MB) from /proc (Linux), None elsewhere."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def child(args: argparse.Namespace) -> None:
    """Tile ``args.laz`` in this fresh process (after a warm-up on ``args.warm``); print JSON.

    The peak memory of the tiling alone is the process's resident high-water mark (``VmHWM``)
    after resetting it (``/proc/self/clear_refs``) between warm-up and tiling; where that is not
    possible, the max RSS of the whole process."""
    from citymodel.tiles3d import write_pointcloud_tiles

    out = Path(args.out)
    t = time.perf_counter()
    write_pointcloud_tiles([args.warm], out / "warm", args.crs, geoid=46.31, jobs=args.jobs)
    warm_s = time.perf_counter() - t
    base_mb = _status_mb("VmRSS")
    try:
        Path("/proc/self/clear_refs").write_text("5")
        reset = True
    except OSError:
        reset = False
    t = time.perf_counter()
    info = write_pointcloud_tiles([args.laz], out / "pc", args.crs, geoid=46.31, jobs=args.jobs,
                                  chunk_points=args.chunk_points)
    dt = time.perf_counter() - t
    peak = _status_mb("VmHWM") if reset else None
    print(json.dumps({"seconds": dt, "points": info.n_points, "read_s": info.prepare_seconds,
                      "write_s": info.convert_seconds, "nodes": info.n_nodes, "levels": info.depth + 1,
                      "bytes": info.bytes_total, "warm_s": warm_s, "base_rss_mb": base_mb,
                      "peak_rss_mb": peak if peak is not None
                      else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}))


def run_child(laz: Path, warm: Path, out: Path, jobs: int, chunk_points: int, crs: str) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.bench_pointcloud", "--child", "--laz", str(laz), "--warm", str(warm),
           "--out", str(out), "--jobs", str(jobs), "--chunk-points", str(chunk_points), "--crs", crs]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise SystemExit(f"child failed:\n{res.stderr}")
    shutil.rmtree(out, ignore_errors=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def py3dtiles_seconds(laz: Path, out: Path, jobs: int, srs_in: int) -> float:
    from citymodel.tiles3d.pointcloud_py3dtiles import py3dtiles_command

    cmd = py3dtiles_command([laz], out, srs_in=srs_in, jobs=jobs, extra=["--color_scale", "1"])
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    dt = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"py3dtiles CLI failed: {proc.stderr[-2000:]}")
    shutil.rmtree(out, ignore_errors=True)
    return dt


def _median(values: list) -> float:
    return sorted(values)[len(values) // 2]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points-m2", type=float, default=12.0)
    ap.add_argument("--laz", type=Path, default=None, help="a LAZ in --crs instead of the synthetic tile")
    ap.add_argument("--crs", default="EPSG:25832")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--chunk-points", type=int, default=1_000_000)
    ap.add_argument("--skip-py3dtiles", action="store_true")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--warm", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args)
        return
    from benchmarks.bench_lidar import generate_tile

    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench_pointcloud_") as d:
        tmp = Path(d)
        warm = tmp / "warm.laz"
        generate_tile(warm, 0.05, seed=3)
        if args.laz is None:
            laz = tmp / "tile.laz"
            t = time.perf_counter()
            generate_tile(laz, args.points_m2)
            print(f"generated {laz.name} ({args.points_m2} points/m²) in {time.perf_counter() - t:.0f} s", flush=True)
        else:
            laz = args.laz
        las = tmp / "tile.las"
        import laspy

        laspy.read(laz, laz_backend=laspy.LazBackend.Lazrs).write(las)
        decode, tiler, tiler_las = [], [], []
        for r in range(args.repeat):
            n, dt = decode_seconds(laz)
            decode.append(dt)
            tiler.append(run_child(laz, warm, tmp / "child", args.jobs, args.chunk_points, args.crs))
            tiler_las.append(run_child(las, warm, tmp / "child", args.jobs, args.chunk_points, args.crs))
            print(json.dumps({"round": r, "decode_s": round(dt, 2), **{k: (round(v, 2) if isinstance(v, float) else v)
                                                                       for k, v in tiler[-1].items()},
                              "las_s": round(tiler_las[-1]["seconds"], 2)}), flush=True)
        t_py3d = None
        if not args.skip_py3dtiles:
            import pyproj

            t_py3d = py3dtiles_seconds(laz, tmp / "py3dtiles", args.jobs, pyproj.CRS(args.crs).to_epsg())
            print(json.dumps({"py3dtiles_cli_s": round(t_py3d, 2)}), flush=True)
        size_mb = laz.stat().st_size / 1e6
    load1 = os.getloadavg()
    t_dec = _median(decode)
    mid = sorted(tiler, key=lambda r: r["seconds"])[len(tiler) // 2]
    dec_rate, own_rate = n / t_dec, n / mid["seconds"]
    rows = [("plain lazrs decode (laspy.read, single-threaded lazrs)", f"{dec_rate / 1e6:6.2f} M points/s ({t_dec:.2f} s)"),
            (f"own tiler, jobs={args.jobs} (median of {len(tiler)})",
             f"{own_rate / 1e6:6.2f} M points/s ({mid['seconds']:.2f} s: pass 1 {mid['read_s']:.2f} s, pass 2 "
             f"{mid['write_s']:.2f} s; {mid['nodes']} tiles on {mid['levels']} levels, "
             f"{mid['bytes'] / n:.1f} bytes/point)  goal >= 1.5"),
            ("ratio own tiler / decode", f"{own_rate / dec_rate:6.2f}  (goal >= 0.4)")]
    mid_las = sorted(tiler_las, key=lambda r: r["seconds"])[len(tiler_las) // 2]
    rows.append(("own tiler on the same points as LAS (staged default)",
                 f"{n / mid_las['seconds'] / 1e6:6.2f} M points/s ({mid_las['seconds']:.2f} s: pass 1 "
                 f"{mid_las['read_s']:.2f} s, pass 2 {mid_las['write_s']:.2f} s)"))
    if t_py3d is not None:
        py_rate = n / t_py3d
        rows += [(f"py3dtiles convert CLI, --jobs {args.jobs}", f"{py_rate / 1e6:6.2f} M points/s ({t_py3d:.2f} s)"),
                 ("ratio own tiler / py3dtiles", f"{own_rate / py_rate:6.2f}  (goal >= 6)")]
    base = mid["base_rss_mb"]
    rows.append(("peak memory of the tiler process while tiling",
                 f"{max(r['peak_rss_mb'] for r in tiler + tiler_las):6.0f} MB (resident before: "
                 f"{base:.0f} MB, imports and compiled loops; loading those loops: {mid['warm_s']:.2f} s once "
                 "per process, not in the figures above)" if base is not None else
                 f"{max(r['peak_rss_mb'] for r in tiler + tiler_las):6.0f} MB (max RSS of the process)"))
    print(f"\n{laz.name}: {n:,} points, {size_mb:.1f} MB; load average {load0[0]:.1f} at start, {load1[0]:.1f} at end")
    for label, value in rows:
        print(f"  {label:<56}: {value}")

if __name__ == "__main__":
    main(sys.argv[1:])
