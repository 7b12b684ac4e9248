"""Benchmark of LiDAR staging (``citymodel.lidar.stage_tile``).

Run from the project root::

    .venv/bin/python -m benchmarks.bench_lidar                 # 1 km tile at 12 points/m² (12 M points)
    .venv/bin/python -m benchmarks.bench_lidar --points-m2 2   # quick check

Prints
(a) LAZ ingest throughput (points/s) of ``stage_tile`` next to plain lazrs decoding of the same
    file (``laspy.read`` with the same single-threaded lazrs backend; the parallel backend is
    shown for information), and their ratio (goal >= 0.5); also for the real Delft AHN3 crops
    when ../shared/data is present;
(b) peak memory (max RSS of a child process that only imports the core and stages the tile; goal
    <= 2 GB).

The synthetic tile (tilted, undulating ground, 1,000 flat-roofed buildings, trees with multiple
returns; point format 1, like the Thuringian files) is generated into a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TILE_E, TILE_N = 682, 5645


def generate_tile(path: Path, points_m2: float, halo_m: float = 25.0, seed: int = 7,
                  chunk: int = 1_000_000) -> int:
    """Write a synthetic 1 km tile (+ halo) of ``points_m2`` density as LAZ; returns the point count."""
    import laspy
    import pyproj

    rng = np.random.default_rng(seed)
    x0, y0 = TILE_E * 1000.0 - halo_m, TILE_N * 1000.0 - halo_m
    size = 1000.0 + 2 * halo_m
    n_total = int(points_m2 * 1000.0 * 1000.0)          # density over the tile; halo adds ~10 %
    n_total = int(n_total * (size / 1000.0) ** 2)
    # buildings: a 32 x 32 grid of boxes, 10-22 m wide, 6-25 m high
    gx, gy = np.meshgrid(np.arange(32), np.arange(32))
    bx0 = x0 + 20 + gx.ravel() * 32.0
    by0 = y0 + 20 + gy.ravel() * 32.0
    bw = rng.uniform(10, 22, bx0.size)
    bh = rng.uniform(8, 22, bx0.size)
    bz = rng.uniform(6, 25, bx0.size)

    header = laspy.LasHeader(point_format=1, version="1.2")
    header.scales = np.array([0.01, 0.01, 0.01])
    header.offsets = np.array([TILE_E * 1000.0, TILE_N * 1000.0, 0.0])
    header.add_crs(pyproj.CRS("EPSG:25832"))
    with laspy.open(path, mode="w", header=header, laz_backend=laspy.LazBackend.Lazrs, do_compress=True) as w:
        done = 0
        while done < n_total:
            n = min(chunk, n_total - done)
            x = x0 + rng.uniform(0, size, n)
            y = y0 + rng.uniform(0, size, n)
            ground = 180.0 + 0.03 * (x - x0) - 0.01 * (y - y0) + 3.0 * np.sin((x - x0) / 90.0)
            z = ground + rng.normal(0, 0.02, n)
            cls = np.full(n, 2, np.uint8)
            rn = np.ones(n, np.uint8)
            nr = np.ones(n, np.uint8)
            col = np.clip(((x - x0 - 20) // 32).astype(int), 0, 31)
            row = np.clip(((y - y0 - 20) // 32).astype(int), 0, 31)
            b = row * 32 + col
            inb = ((x >= bx0[b]) & (x < bx0[b] + bw[b]) & (y >= by0[b]) & (y < by0[b] + bh[b]))
            z[inb] = ground[inb] + bz[b[inb]]
            cls[inb] = 1
            tree = ~inb & (rng.random(n) < 0.08)
            z[tree] = ground[tree] + rng.uniform(2, 18, tree.sum())
            cls[tree] = 1
            nr[tree] = 2
            rec = laspy.ScaleAwarePointRecord.zeros(n, header=header)
            rec.x, rec.y, rec.z = x, y, z
            rec.classification = cls
            rec.return_number = rn
            rec.number_of_returns = nr
            rec.intensity = rng.integers(0, 4000, n).astype(np.uint16)
            rec.gps_time = np.linspace(done, done + n, n)
            w.write_points(rec)
            done += n
    return n_total


def decode_rate(path: Path, backend_name: str) -> tuple[int, float]:
    """(points, seconds) of decoding the whole file with laspy.read."""
    import laspy

    backend = getattr(laspy.LazBackend, backend_name)
    t = time.perf_counter()
    las = laspy.read(path, laz_backend=backend)
    n = len(las.points)
    return n, time.perf_counter() - t


def encode_seconds(path: Path, out: Path) -> float:
    """Seconds to compress the decoded points of ``path`` again (single-threaded lazrs)."""
    import laspy

    las = laspy.read(path, laz_backend=laspy.LazBackend.Lazrs)
    t = time.perf_counter()
    las.write(out, laz_backend=laspy.LazBackend.Lazrs)
    dt = time.perf_counter() - t
    out.unlink()
    return dt


def child(args: argparse.Namespace) -> None:
    """Stage one tile in this (fresh) process and print timings and peak RSS as JSON."""
    from citymodel.lidar import stage_tile
    from citymodel.tiles import Tile

    paths = [Path(p) for p in args.paths]
    tile = Tile(args.e, args.n, size_m=args.size, prefix=args.prefix)
    out = Path(args.out)
    t = time.perf_counter()
    stats = stage_tile(paths, tile, "bench", out / "t.laz", out / "t.tif", args.crs, crs_override=args.crs,
                       chunk_points=args.chunk_points)
    dt = time.perf_counter() - t
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"seconds": dt, "points": stats.staged_point_count, "tile_points": stats.point_count,
                      "stage_seconds": stats.seconds, "peak_rss_mb": rss_mb,
                      "dtm_info": stats.dtm_info, "density_m2": stats.density_m2}))


def run_child(paths: list[Path], out: Path, e: int, n: int, size: float, prefix: str, crs: str,
              chunk_points: int) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.bench_lidar", "--child", "--out", str(out), "--e", str(e),
           "--n", str(n), "--size", str(size), "--prefix", prefix, "--crs", crs,
           "--chunk-points", str(chunk_points), "--paths", *map(str, paths)]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise SystemExit(f"child failed:\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def report(label: str, path: Path, staged: dict, n_decode: int, t_single: float, t_par: float | None,
           t_encode: float | None = None) -> None:
    rate_stage = staged["points"] / staged["seconds"]
    rate_dec = n_decode / t_single
    print(f"\n[{label}] {path.name}: {n_decode:,} points, {path.stat().st_size / 1e6:.1f} MB")
    print(f"  lazrs decode (laspy.read, single-threaded) : {rate_dec / 1e6:6.2f} M points/s ({t_single:.2f} s)")
    if t_par is not None:
        print(f"  lazrs decode (laspy.read, parallel)        : {n_decode / t_par / 1e6:6.2f} M points/s "
              f"({t_par:.2f} s, information only)")
    print(f"  stage_tile (2 passes, DTM, HAG, LAZ write) : {rate_stage / 1e6:6.2f} M points/s "
          f"({staged['seconds']:.2f} s: {staged['stage_seconds']})")
    print(f"  ratio stage_tile / decode                  : {rate_stage / rate_dec:6.2f}  (goal >= 0.5)")
    if t_encode is not None:
        floor = t_single + t_encode
        print(f"  floor: decode + encode (single-threaded)   : {n_decode / floor / 1e6:6.2f} M points/s "
              f"({floor:.2f} s); ratio stage_tile / floor: {floor / staged['seconds']:.2f}")
    print(f"  peak RSS of the staging process            : {staged['peak_rss_mb']:7.0f} MB  (goal <= 2048 MB)")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points-m2", type=float, default=12.0, help="density of the synthetic tile")
    ap.add_argument("--chunk-points", type=int, default=1_000_000)
    ap.add_argument("--no-delft", action="store_true", help="skip the real Delft AHN3 files")
    ap.add_argument("--tmp-dir", default=None, help="where the synthetic tile is generated")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--paths", nargs="*", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--e", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--size", type=float, default=1000.0, help=argparse.SUPPRESS)
    ap.add_argument("--prefix", default="32", help=argparse.SUPPRESS)
    ap.add_argument("--crs", default="EPSG:25832", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args)
        return

    print(f"LiDAR staging benchmark, {os.cpu_count()} CPU(s), python {sys.version.split()[0]}, "
          f"load average {os.getloadavg()[0]:.1f} (the machine may be shared)")
    with tempfile.TemporaryDirectory(dir=args.tmp_dir, prefix="bench_lidar_") as td:
        td = Path(td)
        src = td / f"synthetic_{args.points_m2:g}pm2.laz"
        t = time.perf_counter()
        n = generate_tile(src, args.points_m2)
        print(f"generated {n:,} points ({args.points_m2:g} points/m² over tile + 25 m halo) "
              f"in {time.perf_counter() - t:.1f} s")
        staged = run_child([src], td / "out", TILE_E, TILE_N, 1000.0, "32", "EPSG:25832", args.chunk_points)
        n_dec, t_single = decode_rate(src, "Lazrs")
        t_enc = encode_seconds(src, td / "reencoded.laz")
        delft_rows = []
        delft = ROOT.parent / "shared" / "data" / "delft-ahn3"
        if not args.no_delft and delft.is_dir():
            files = sorted(delft.glob("*.laz"))
            d_staged = run_child(files, td / "delft", 84, 447, 1100.0, "", "EPSG:28992", args.chunk_points)
            d_n = d_t = 0.0
            for f in files:
                k, s = decode_rate(f, "Lazrs")
                d_n += k
                d_t += s
            delft_rows.append((files, d_staged, int(d_n), d_t))
        # the parallel backend last: it leaves a rayon thread pool in this process
        _, t_par = decode_rate(src, "LazrsParallel")
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")
        report(f"synthetic 1 km tile, {args.points_m2:g} points/m²", src, staged, n_dec, t_single, t_par, t_enc)
        print(f"  DTM: {staged['dtm_info']}")
        for files, d_staged, d_n, d_t in delft_rows:
            report("Delft AHN3, 2 real files (849k points)", files[0], d_staged, d_n, d_t, None)


if __name__ == "__main__":
    main()
