"""``citymodel``: the command line of the pipeline (used by the Makefile).

    citymodel samplecity [--out DIR]   generate the bundled sample city (skipped if current)
    citymodel run [--force]            refresh: run what changed (everything the first time)
    citymodel plan                     show what a refresh would run
    citymodel prepare-home             create the Dagster instance folder ($DAGSTER_HOME)
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from citymodel.config import PROJECT_ROOT


def _dagster_home(settings) -> Path:
    home = Path(os.environ.get("DAGSTER_HOME") or settings.output_dir / "dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    cfg = home / "dagster.yaml"
    if not cfg.exists():
        cfg.write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def cmd_samplecity(args) -> int:
    from citymodel.samplecity import generate

    out = Path(args.out) if args.out else PROJECT_ROOT / "outputs" / "sample_city"
    generate(out)
    print(f"sample city: {out}")
    return 0


def _setup(args):
    from citymodel.config import load_config

    settings = load_config(args.config)
    home = _dagster_home(settings)
    import dagster as dg

    from .definitions import build_definitions

    defs = build_definitions(config_path=args.config, settings=settings)
    return settings, home, dg.DagsterInstance.get(), defs


def cmd_plan(args) -> int:
    from .refresh_runner import plan_for

    settings, _, instance, defs = _setup(args)
    plan = plan_for(instance, settings, defs.resolve_asset_graph(), force=args.force)
    print(plan.summary())
    return 0


def cmd_run(args) -> int:
    import time

    from .refresh_runner import execute_plan, plan_for

    t0 = time.perf_counter()
    settings, home, instance, defs = _setup(args)
    plan = plan_for(instance, settings, defs.resolve_asset_graph(), force=args.force)
    if plan.empty:
        print(f"nothing changed since the last refresh ({time.perf_counter() - t0:.1f} s)")
    else:
        print(f"refresh of '{settings.name}': {len(plan.runs)} run(s)")
        outcome = execute_plan(defs, instance, plan, quiet=not args.verbose)
        print(f"{len(outcome.succeeded)} run(s) succeeded, {len(outcome.failed)} failed "
              f"in {time.perf_counter() - t0:.1f} s")
        if not outcome.ok:
            for label, msg in outcome.failed:
                print(f"  failed {label}: {msg}", file=sys.stderr)
    from .variant_runner import assess_pending

    variants = assess_pending(defs, instance, settings, quiet=not args.verbose)
    if variants.assessed or variants.failed:
        print(f"{len(variants.assessed)} variant(s) assessed, {len(variants.failed)} failed")
        for key, msg in variants.failed:
            print(f"  failed variant {key}: {msg}", file=sys.stderr)
    out = settings.output_dir
    print("results:")
    latest = out / "latest"
    if latest.exists():
        print(f"  release (3D Tiles, datasets):   {latest} -> {latest.resolve().name}  (open {latest / 'index.html'})")
    print(f"  staging (GeoParquet, LAS, DTM): {settings.staging_dir}")
    print(f"  warehouse (DuckDB):             {settings.warehouse_path}")
    print(f"  quality report:                 {settings.quality_dir / 'report.html'}")
    vindex = out / "variants" / "index.json"
    if vindex.exists():
        print(f"  planning variants:              {vindex}")
    print(f"  Dagster instance ({'make ui'}):    {home}")
    return 0 if (plan.empty or outcome.ok) and variants.ok else 1


def cmd_prepare_home(args) -> int:
    from citymodel.config import load_config

    print(_dagster_home(load_config(args.config)))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="citymodel", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="deployment file (default: $CITYMODEL_CONFIG or the sample city)")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("samplecity", help="generate the sample city")
    s.add_argument("--out", help="folder (default outputs/sample_city)")
    s.set_defaults(fn=cmd_samplecity)
    for name, fn in (("run", cmd_run), ("plan", cmd_plan)):
        r = sub.add_parser(name)
        r.add_argument("--force", action="store_true", help="rebuild everything")
        r.add_argument("--verbose", action="store_true", help="show Dagster's event log")
        r.set_defaults(fn=fn)
    h = sub.add_parser("prepare-home")
    h.set_defaults(fn=cmd_prepare_home)
    args = p.parse_args(argv)
    try:
        return args.fn(args)
    except Exception as exc:  # noqa: BLE001 - the CLI reports the project's errors plainly
        from citymodel.errors import CityModelError

        if isinstance(exc, CityModelError):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
