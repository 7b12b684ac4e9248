"""Speed-up of concurrent tile runs: the sample city's first refresh with 1 and with 2 runs at once.

    .venv/bin/python -m benchmarks.bench_concurrency [--runs 1 2] [--keep DIR]

Each refresh is a fresh `citymodel run` process on its own output folder (and so its own Dagster
instance), `orchestration.max_concurrent_runs` set to N, the sample city's pools. Printed per N: the
whole refresh, the tile waves alone (first tile run start to last tile run end, from the run records
of the instance), and the release content digest (must be equal for every N). Speed-up = time with
1 run at once / time with N. Goal (issue 16): two tiles at once on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from citymodel.config import DEFAULT_CONFIG


def _refresh(exe: str, cfg: Path, env: dict) -> float:
    t0 = time.perf_counter()
    subprocess.run([exe, "--config", str(cfg), "run"], env=env, capture_output=True, text=True, check=True)
    return time.perf_counter() - t0


def _tile_waves_s(home: Path) -> tuple[float, float]:
    """(first tile run start to last tile run end, sum of the tile runs' own durations) in s."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(home)) as inst:
        recs = [r for r in inst.get_run_records(dg.RunsFilter(job_name="city_refresh"))
                if r.dagster_run.tags.get("dagster/partition")]
    return (max(r.end_time for r in recs) - min(r.start_time for r in recs),
            sum(r.end_time - r.start_time for r in recs))


def main(argv: list[str] | None = None) -> int:
    from citymodel.release.layout import read_manifest
    from pipelines.cli import executable, fresh_environment

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, nargs="+", default=[1, 2], help="runs at once to compare (first: base)")
    p.add_argument("--keep", help="work folder to keep (default: a temporary folder)")
    args = p.parse_args(argv)
    work = Path(args.keep or tempfile.mkdtemp(prefix="bench_concurrency_"))
    work.mkdir(parents=True, exist_ok=True)
    exe, env = executable(), fresh_environment()
    subprocess.run([exe, "samplecity", "--out", str(work / "city")], env=env, capture_output=True, check=True)
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    raw["catalog"]["url"] = str(work / "city" / "catalog.jsonld")
    rows = []
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    for n in args.runs:
        raw["output_dir"] = str(work / f"out_{n}")
        raw.setdefault("orchestration", {})["max_concurrent_runs"] = n
        cfg = work / f"citymodel_{n}.yaml"
        cfg.write_text(yaml.safe_dump(raw), encoding="utf-8")
        load0 = os.getloadavg()[0]
        total = _refresh(exe, cfg, env)
        waves, busy = _tile_waves_s(work / f"out_{n}" / "dagster_home")
        digest = read_manifest((work / f"out_{n}" / "latest").resolve()).get("content_digest", "")
        rows.append((n, total, waves, busy, digest))
        print(f"{n} run(s) at once: refresh {total:7.1f} s, tile waves {waves:7.1f} s (tile runs' own time "
              f"{busy:7.1f} s), load {load0:.1f} -> {os.getloadavg()[0]:.1f}, digest {digest[:12]}", flush=True)
    base = rows[0]
    for n, total, waves, _, digest in rows[1:]:
        print(f"speed-up {n} over {base[0]}: whole refresh {base[1] / total:.2f}x, tile waves "
              f"{base[2] / waves:.2f}x; same release: {digest == base[4]}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
