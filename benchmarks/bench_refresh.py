"""Refresh figures on the sample city: the first full run and a nightly run with no source change.

    .venv/bin/python -m benchmarks.bench_refresh [--keep DIR]

Each refresh is a fresh `citymodel run` process (imports, catalog read, plan and runs included),
as the nightly schedule or `make run` would start it. Goal for the run without changes: <= 30 s.
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
from pipelines.cli import executable, fresh_environment


def _run(cmd: list[str], env: dict) -> tuple[float, str]:
    t0 = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return time.perf_counter() - t0, out.stdout


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--keep", help="work folder to keep (default: a temporary folder)")
    args = p.parse_args(argv)
    work = Path(args.keep or tempfile.mkdtemp(prefix="bench_refresh_"))
    work.mkdir(parents=True, exist_ok=True)
    exe, env = executable(), fresh_environment(DAGSTER_HOME=str(work / "dagster_home"))
    t_gen, _ = _run([exe, "samplecity", "--out", str(work / "city")], env)
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    raw["catalog"]["url"] = str(work / "city" / "catalog.jsonld")
    raw["output_dir"] = str(work / "out")
    cfg = work / "citymodel.yaml"
    cfg.write_text(yaml.safe_dump(raw), encoding="utf-8")
    t_first, out_first = _run([exe, "--config", str(cfg), "run"], env)
    t_second, out_second = _run([exe, "--config", str(cfg), "run"], env)
    print(f"sample city generation:              {t_gen:7.1f} s")
    print(f"first refresh (everything):          {t_first:7.1f} s")
    print(f"refresh with no source change:       {t_second:7.1f} s   (goal <= 30 s)")
    print(f"  -> {out_second.strip().splitlines()[0]}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
