"""Benchmark of LiDAR staging (``citymodel.lidar.stage_tile``).

Run from the project root::

    .venv/bin/python -m benchmarks.bench_lidar                 # 1 km tile at 12 points/m² (12 M points)
    .venv/bin/python -m benchmarks.bench_lidar --points-m2 2   # quick check

Prints
(a) LAZ ingest throughput (points/s) of ``stage_tile`` next to plain lazrs decoding of the same
    file in the same run, like with like: "plain lazrs decoding" is ``laspy.read`` of the whole
    file, once with single-threaded lazrs (``LazBackend.Lazrs``) and once with parallel lazrs
    (``LazBackend.LazrsParallel``, rayon, all CPUs). ``stage_tile`` is run, staging to the default
    ``lidar.staged_format`` (LAS), with ``parallel_laz=True`` (parallel lazrs decoding) and with its
    default ``parallel_laz=False`` (single-threaded lazrs; the compiled per-point loops run on the
    read-ahead thread's spare core), and once more to LAZ (re-compressed, for information). Decode
    and staging alternate for ``--repeat`` rounds (default 3) and the medians are reported.
    Ratios: single-threaded staging / single-threaded decode (the pipeline's default), parallel
    staging / parallel decode (goal >= 0.5 each), and parallel staging / single-threaded decode for
    information. Also for the real Delft AHN3 crops when ../shared/data is present;
(b) peak memory (max RSS of a child process that only imports the core and stages the tile; goal
    <= 2 GB).

The synthetic tile (tilted, undulating ground, 1,000 flat-roofed buildings, trees with multiple
returns; point format 1, like the Thuringian files; points in acquisition order, ``--order``) is
generated into a temporary folder.
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

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TILE_E, TILE_N = 682, 5645


def generate_tile(path: Path, points_m2: float, halo_m: float = 25.0, seed: int = 7,
                  chunk: int = 1_000_000, order: str = "scan") -> int:
    """Write a synthetic 1 km tile (+ halo) of ``points_m2`` density as LAZ; returns the point count.

    ``order='scan'``: points in acquisition order, as in a real tile: the aircraft flies east-west
    lines one after the other (each chunk of ``chunk`` points is one band of the tile, south to
    north) and the scanner sweeps across track (points sorted by 0.25 m scan line, then along it).
    ``order='random'``: every chunk spread uniformly over the whole tile (no real tile looks like
    this; it is the worst case for memory locality).
    """
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
            if order == "scan":
                band = size * chunk / n_total
                y = y0 + done / chunk * band + rng.uniform(0, band * n / chunk, n)
                k = np.lexsort((x, np.floor(y / 0.25)))
                x, y = x[k], y[k]
            else:
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
    stats = stage_tile(paths, tile, "bench", out / f"t.{args.format}", out / "t.tif", args.crs, crs_override=args.crs,
                       chunk_points=args.chunk_points, parallel_laz=not args.single_threaded)  # staging default is single
    dt = time.perf_counter() - t
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"seconds": dt, "points": stats.staged_point_count, "tile_points": stats.point_count,
                      "stage_seconds": stats.seconds, "peak_rss_mb": rss_mb,
                      "laz_backend": stats.laz_backend, "format": args.format,
                      "dtm_info": stats.dtm_info, "density_m2": stats.density_m2}))


def run_child(paths: list[Path], out: Path, e: int, n: int, size: float, prefix: str, crs: str,
              chunk_points: int, single_threaded: bool = False, fmt: str = "las") -> dict:
    cmd = [sys.executable, "-m", "benchmarks.bench_lidar", "--child", "--out", str(out), "--e", str(e), "--format", fmt,
           "--n", str(n), "--size", str(size), "--prefix", prefix, "--crs", crs,
           "--chunk-points", str(chunk_points), "--paths", *map(str, paths)]
    if single_threaded:
        cmd.append("--single-threaded")
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise SystemExit(f"child failed:\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def _median_run(runs: list[dict]) -> dict:
    """The run of median duration (its own timings and memory); peak memory is the largest of all."""
    runs = sorted(runs, key=lambda r: r["seconds"])
    return {**runs[len(runs) // 2], "peak_rss_mb": max(r["peak_rss_mb"] for r in runs)}


def report(label: str, path: Path, staged: dict, staged_1: dict, n_decode: int, t_single: float,
           t_par: float, t_encode: float | None = None, staged_laz: dict | None = None) -> None:
    """Print throughput and like-with-like ratios (staged: default/parallel, staged_1: single-threaded)."""
    rate_par = staged["points"] / staged["seconds"]
    rate_one = staged_1["points"] / staged_1["seconds"]
    dec_one, dec_par = n_decode / t_single, n_decode / t_par
    print(f"\n[{label}] {path.name}: {n_decode:,} points, {path.stat().st_size / 1e6:.1f} MB")
    print(f"  plain lazrs decode, single-threaded (laspy.read, Lazrs)        : {dec_one / 1e6:6.2f} M points/s "
          f"({t_single:.2f} s)")
    print(f"  plain lazrs decode, parallel (laspy.read, LazrsParallel)       : {dec_par / 1e6:6.2f} M points/s "
          f"({t_par:.2f} s)")
    print(f"  stage_tile -> {staged_1['format'].upper()}, single-threaded lazrs (the default)     : {rate_one / 1e6:6.2f} M points/s "
          f"({staged_1['seconds']:.2f} s: {staged_1['stage_seconds']})")
    print(f"  stage_tile -> {staged['format'].upper()}, parallel lazrs ({staged['laz_backend']})       : {rate_par / 1e6:6.2f} M points/s "
          f"({staged['seconds']:.2f} s: {staged['stage_seconds']})")
    print(f"  ratio single-threaded staging / single-threaded decode (default): {rate_one / dec_one:6.2f}  (goal >= 0.5)")
    print(f"  ratio parallel staging / parallel decode (like with like)     : {rate_par / dec_par:6.2f}  (goal >= 0.5)")
    print(f"  ratio parallel staging / single-threaded decode (information) : {rate_par / dec_one:6.2f}")
    if staged_laz is not None:
        rate_laz = staged_laz["points"] / staged_laz["seconds"]
        print(f"  stage_tile -> LAZ (lidar.staged_format: laz), single-threaded  : {rate_laz / 1e6:6.2f} M points/s "
              f"({staged_laz['seconds']:.2f} s: {staged_laz['stage_seconds']}); ratio to single-threaded decode "
              f"{rate_laz / dec_one:.2f} (information)")
    if t_encode is not None and staged_laz is not None:
        # staging to LAZ cannot beat decoding plus compressing the same points
        floor = t_single + t_encode
        print(f"  floor of staging to LAZ: decode + encode (single-threaded)    : {n_decode / floor / 1e6:6.2f} M points/s "
              f"({floor:.2f} s); LAZ staging reaches {floor / staged_laz['seconds']:.2f} of it")
    print(f"  peak RSS of the staging process (parallel / single-threaded)  : {staged['peak_rss_mb']:5.0f} / "
          f"{staged_1['peak_rss_mb']:5.0f} MB  (goal <= 2048 MB)")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points-m2", type=float, default=12.0, help="density of the synthetic tile")
    ap.add_argument("--chunk-points", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3, help="rounds of decode + staging; medians are reported")
    ap.add_argument("--order", choices=["scan", "random"], default="scan",
                    help="point order of the synthetic tile: acquisition order (real tiles) or shuffled")
    ap.add_argument("--no-delft", action="store_true", help="skip the real Delft AHN3 files")
    ap.add_argument("--tmp-dir", default=None, help="where the synthetic tile is generated")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--single-threaded", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--paths", nargs="*", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--e", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--size", type=float, default=1000.0, help=argparse.SUPPRESS)
    ap.add_argument("--prefix", default="32", help=argparse.SUPPRESS)
    ap.add_argument("--crs", default="EPSG:25832", help=argparse.SUPPRESS)
    ap.add_argument("--format", default="las", choices=["las", "laz"], help=argparse.SUPPRESS)
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
        n = generate_tile(src, args.points_m2, order=args.order)
        print(f"generated {n:,} points ({args.points_m2:g} points/m² over tile + 25 m halo, {args.order} order) "
              f"in {time.perf_counter() - t:.1f} s")
        # back to back, alternating, so that a change of the machine's load hits both alike; the
        # median of --repeat rounds (a shared VM's disk and CPU vary by 20-30 % from run to run)
        rounds = []
        for r in range(args.repeat):
            n_dec, t_single = decode_rate(src, "Lazrs")
            s1 = run_child([src], td / f"out1_{r}", TILE_E, TILE_N, 1000.0, "32", "EPSG:25832", args.chunk_points,
                           single_threaded=True)
            _, t_par = decode_rate(src, "LazrsParallel")
            sp = run_child([src], td / f"out_{r}", TILE_E, TILE_N, 1000.0, "32", "EPSG:25832", args.chunk_points)
            rounds.append((t_single, s1, t_par, sp))
            shutil.rmtree(td / f"out1_{r}")
            shutil.rmtree(td / f"out_{r}")
        t_single = float(np.median([x[0] for x in rounds]))
        t_par = float(np.median([x[2] for x in rounds]))
        staged_1 = _median_run([x[1] for x in rounds])
        staged = _median_run([x[3] for x in rounds])
        if args.repeat > 1:
            print("rounds (decode single, stage single, decode parallel, stage parallel; s): "
                  + "; ".join(f"{a:.2f} {b['seconds']:.2f} {c:.2f} {d['seconds']:.2f}" for a, b, c, d in rounds))
        t_enc = encode_seconds(src, td / "reencoded.laz")
        staged_laz = run_child([src], td / "outz", TILE_E, TILE_N, 1000.0, "32", "EPSG:25832", args.chunk_points,
                               single_threaded=True, fmt="laz")
        delft_rows = []
        delft = ROOT.parent / "shared" / "data" / "delft-ahn3"
        if not args.no_delft and delft.is_dir():
            files = sorted(delft.glob("*.laz"))
            d_staged_1 = run_child(files, td / "delft1", 84, 447, 1100.0, "", "EPSG:28992", args.chunk_points,
                                   single_threaded=True)
            d_staged = run_child(files, td / "delft", 84, 447, 1100.0, "", "EPSG:28992", args.chunk_points)
            d_n = d_t = d_tp = 0.0
            for f in files:
                k, s1 = decode_rate(f, "Lazrs")
                _, sp = decode_rate(f, "LazrsParallel")
                d_n += k
                d_t += s1
                d_tp += sp
            delft_rows.append((files, d_staged, d_staged_1, int(d_n), d_t, d_tp))
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")
        report(f"synthetic 1 km tile, {args.points_m2:g} points/m²", src, staged, staged_1, n_dec, t_single, t_par,
               t_enc, staged_laz)
        print(f"  DTM: {staged['dtm_info']}")
        for files, d_staged, d_staged_1, d_n, d_t, d_tp in delft_rows:
            report("Delft AHN3, 2 real files (849k points)", files[0], d_staged, d_staged_1, d_n, d_t, d_tp)


if __name__ == "__main__":
    main()
