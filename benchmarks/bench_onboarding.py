"""From an empty folder to a first release: the onboarding guide's worked example, timed.

    .venv/bin/python -m benchmarks.bench_onboarding [--keep DIR] [--sample DIR]

The folder gets the sample city's footprints, LiDAR tiles and tree cadastre (no roads, no flood
zones, no catalog, no deployment file); then ``citymodel init`` (with the publication options)
and ``citymodel run`` as fresh processes, as a new user would type them. Prints the time of each
step, the number of hand edits needed (files written or changed by hand between the commands:
none) and the number of guesses init marked for the user to confirm.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from citymodel.onboarding.example import make_example_folder
from pipelines.cli import executable, fresh_environment


def _run(cmd: list[str], env: dict) -> tuple[float, str]:
    t0 = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.stderr.write(out.stdout[-3000:] + out.stderr[-3000:])
        raise SystemExit(f"{' '.join(cmd[:3])} failed ({out.returncode})")
    return time.perf_counter() - t0, out.stdout


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--keep", help="work folder to keep (default: a temporary folder)")
    p.add_argument("--sample", help="a generated sample city to take the files from (default: generate one)")
    args = p.parse_args(argv)
    work = Path(args.keep or tempfile.mkdtemp(prefix="bench_onboarding_"))
    work.mkdir(parents=True, exist_ok=True)
    exe, env = executable(), fresh_environment()
    sample = Path(args.sample) if args.sample else work / "sample_city"
    if not args.sample:
        _run([exe, "samplecity", "--out", str(sample)], env)
    city = make_example_folder(sample, work / "musterstadt")
    files = sorted(p for p in city.rglob("*") if p.is_file())
    t_init, out = _run([exe, "init", str(city), "--publisher", "Stadt Musterstadt, Fachdienst Geoinformation",
                        "--license", "dl-de/by-2-0", "--contact", "geodaten@musterstadt.example"], env)
    deployment = city / "deployment.yaml"
    guesses = sum(1 for line in deployment.read_text(encoding="utf-8").splitlines()
                  if "# GUESS:" in line and not line.lstrip().startswith("#"))
    t_run, _ = _run([exe, "--config", str(deployment), "run"], env)
    release = city / "outputs" / "latest"
    ok = (release / "index.html").is_file() and any((release / "qgis").glob("*.qgz"))
    print(f"example folder: {len(files)} files ({sum(f.stat().st_size for f in files) / 1e6:.1f} MB): "
          f"{', '.join(sorted({f.suffix for f in files}))}")
    print(f"citymodel init:  {t_init:7.1f} s")
    print(f"citymodel run:   {t_run:7.1f} s (first release: {'yes' if ok else 'NO'})")
    print(f"empty folder -> first release: {t_init + t_run:.1f} s")
    print("hand edits needed: 0 (no file written or changed between the commands)")
    print(f"guesses marked for the user to confirm: {guesses}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
