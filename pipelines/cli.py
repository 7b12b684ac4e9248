"""``citymodel``: the command line of the pipeline (used by the Makefile).

    citymodel init DIR [--publisher P --license L --contact C] [--crs EPSG:x] [--name N] [--url URL ...]
                                       write DIR/catalog.jsonld and DIR/deployment.yaml from the
                                       files in DIR (re-run: update the catalog, keep your edits)
    citymodel samplecity [--out DIR]   generate the bundled sample city (skipped if current)
    citymodel run [--force]            refresh: run what changed (everything the first time)
    citymodel plan                     show what a refresh would run, and why
    citymodel prepare-home             write the deployment's Dagster instance; prints its folder
    citymodel variant submit FILE [--assess]
                                       validate a planning variant and store it as a new version
                                       (exit status 0 accepted, 3 rejected: the report names every problem)
    citymodel variant list             the submitted variants: id, versions, title, role, created, status
    citymodel serve [--port N]         serve the output folder; prints the URL of the latest release's 3D viewer

``citymodel run`` holds the refresh lock of the output folder while it runs (one refresh at a time,
:mod:`citymodel.refresh_lock`) and ends with each failed step's own message (dataset, record, fix),
what the release did, and the outputs the deployment does not compute. Exit status: 0 everything
ran, 1 a step failed or the release was refused, 2 the configuration is unusable, 75 another
refresh of the same output folder is running (``refresh.lock_wait_s``).
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from citymodel.config import PROJECT_ROOT


def cmd_init(args) -> int:
    from citymodel.onboarding import init_folder

    result = init_folder(args.dir, name=args.name, title=args.title, crs=args.crs, publisher=args.publisher,
                         license=args.license, contact=args.contact, urls=args.url)
    print(result.summary())
    return 0


def cmd_samplecity(args) -> int:
    from citymodel.samplecity import generate

    out = Path(args.out) if args.out else PROJECT_ROOT / "outputs" / "sample_city"
    generate(out)
    print(f"sample city: {out}")
    return 0


def _setup(args):
    from citymodel.config import load_config

    from .definitions import build_definitions
    from .instance import prepare_instance

    settings = load_config(args.config)
    home, instance = prepare_instance(settings)
    defs = build_definitions(config_path=args.config, settings=settings)
    return settings, home, instance, defs


def cmd_plan(args) -> int:
    from .refresh_runner import plan_for

    settings, _, instance, defs = _setup(args)
    plan = plan_for(instance, settings, defs.resolve_asset_graph(), force=args.force)
    print(plan.summary())
    return 0


EXIT_FAILED, EXIT_CONFIG, EXIT_BUSY = 1, 2, 75


def _release_outcome(instance, refresh_id: str) -> str | None:
    """What the release asset did in this refresh, in one line (None: it did not run)."""
    import dagster as dg

    from assets.publish import RELEASE_KEY

    res = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=RELEASE_KEY), limit=1)
    if not res.records:
        return None
    rec = res.records[0]
    run = instance.get_run_by_id(rec.run_id)
    if run is None or run.tags.get("citymodel/refresh") != refresh_id:
        return None
    meta = rec.asset_materialization.metadata if rec.asset_materialization else {}

    def val(k):
        v = meta.get(k)
        return getattr(v, "value", v)

    rid, status = val("release_id"), val("contents")
    if val("unchanged"):
        return f"release: content unchanged, no new release (latest: {rid})"
    gaps = f" WITH GAPS: {status}" if status and status != "complete" else ""
    return f"release: {rid} published ({val('files')} files){gaps}"


def cmd_run(args) -> int:
    import time

    from citymodel.refresh_lock import RefreshBusyError, RefreshLock

    from .run_state import mark_dead_refresh_runs

    t0 = time.perf_counter()
    settings, home, instance, defs = _setup(args)
    lock = RefreshLock(settings.output_dir, wait_s=settings.refresh.lock_wait_s,
                       command="citymodel run" + (" --force" if args.force else ""))
    try:
        stale = lock.acquire()
    except RefreshBusyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BUSY
    try:
        if stale is not None:
            print(f"note: took over the refresh lock of {stale.describe()}: that process is gone")
        dead = mark_dead_refresh_runs(instance, "the `citymodel run` that started this run is gone (its refresh "
                                                "lock was taken over); marked failed")
        if dead:
            print(f"note: {len(dead)} run(s) of an earlier refresh that died were marked failed")
        code = _run_locked(args, settings, home, instance, defs, t0)
    finally:
        lock.release()
    return code


def _run_locked(args, settings, home, instance, defs, t0: float) -> int:
    """The refresh itself, with the refresh lock held: plan, run, report."""
    import time

    from citymodel.requirements import not_computed

    from .refresh_runner import execute_plan, plan_for
    from .run_state import new_refresh_id

    plan = plan_for(instance, settings, defs.resolve_asset_graph(), force=args.force)
    outcome = None
    if plan.empty:
        print(f"nothing changed since the last refresh ({time.perf_counter() - t0:.1f} s)")
    else:
        orch = settings.orchestration
        refresh_id = new_refresh_id()
        print(f"refresh {refresh_id} of '{settings.name}': {len(plan.runs)} run(s), up to {orch.concurrent_runs()} "
              f"at once (engine {orch.engine})")
        outcome = execute_plan(defs, instance, plan, quiet=not args.verbose, settings=settings,
                               refresh_id=refresh_id, tile_ids=settings.tile_ids)
        print(f"{len(outcome.succeeded)} run(s) succeeded, {len(outcome.failed)} failed "
              f"in {time.perf_counter() - t0:.1f} s")
        if outcome.skipped:
            print(f"{len(outcome.skipped)} asset partition(s) not run because an upstream step failed")
        release = _release_outcome(instance, refresh_id)
        if release:
            print(release)
    missing = not_computed(settings)
    if missing:
        print("not computed (the deployment lacks their input):")
        for n in missing:
            print(f"  {n.text_en}")
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
    if latest.exists() and (latest / "viewer" / "index.html").exists():
        print(f"3D viewer: run '.venv/bin/citymodel serve', then open {viewer_url(settings)}")
    if outcome is not None and not outcome.ok:  # last: each failed step's own message (dataset, record, fix)
        print(f"{len(outcome.steps_failed)} step(s) failed:", file=sys.stderr)
        for f in outcome.steps_failed:
            print(f"  failed {f.label}: {f.message}", file=sys.stderr)
    return 0 if (outcome is None or outcome.ok) and variants.ok else EXIT_FAILED


DEFAULT_PORT = 8765

#: Environment variables that point a ``citymodel`` process at a deployment, its outputs or an instance.
DEPLOYMENT_ENV_VARS = ("DAGSTER_HOME", "CITYMODEL_CONFIG", "CITYMODEL_OUTPUT_DIR")


def executable() -> str:
    """The ``citymodel`` command of this environment (beside the running interpreter)."""
    return str(Path(sys.executable).parent / "citymodel")


def fresh_environment(**extra: str) -> dict[str, str]:
    """The environment for a ``citymodel`` process that takes its deployment from ``--config`` only
    (this process's :data:`DEPLOYMENT_ENV_VARS` left out), plus ``extra``."""
    import os

    env = {k: v for k, v in os.environ.items() if k not in DEPLOYMENT_ENV_VARS}
    env.update(extra)
    return env


def viewer_url(settings, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> str:
    """The URL of the latest release's viewer as ``citymodel serve`` serves it."""
    from citymodel.viewer.serve import viewer_path

    return f"http://{host}:{port}/{viewer_path(settings.output_dir)}"


def cmd_serve(args) -> int:
    from citymodel.config import load_config
    from citymodel.viewer.serve import StaticServer, viewer_path

    settings = load_config(args.config)
    out = settings.output_dir
    path = viewer_path(out)
    server = StaticServer(out, host=args.host, port=args.port, verbose=args.verbose)
    print(f"serving {out.resolve()} at {server.url()} (Ctrl+C stops)")
    print(f"3D viewer: {server.url(path)}", flush=True)

    def stop(signum, frame):  # SIGTERM (systemd, docker, kill) ends the server like Ctrl+C, also where
        raise KeyboardInterrupt  # the parent process left SIGTERM ignored (an ignored signal is inherited)

    signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.httpd.server_close()
    return 0


def cmd_prepare_home(args) -> int:
    """Write the deployment's instance (dagster.yaml, pools) and print its folder (for `make ui`)."""
    from citymodel.config import load_config

    from .instance import prepare_instance

    home, _ = prepare_instance(load_config(args.config))
    print(home)
    return 0


VARIANT_ASSESS_JOB = "variant_assess"
EXIT_REJECTED = 3


def _read_bounded(path: Path, limit: int) -> tuple[bytes, int]:
    """At most ``limit + 1`` bytes of a file, and its size."""
    size = path.stat().st_size
    with path.open("rb") as f:
        return f.read(limit + 1), size


def cmd_variant_submit(args) -> int:
    from citymodel.config import load_config
    from citymodel.errors import ConfigError, dataset_error
    from citymodel.store import CityStore
    from citymodel.variants.registry import submit, write_rejection
    from citymodel.variants.validation import VariantRejected, context_for, rejection, size_problem

    settings = load_config(args.config)
    path = Path(args.file)
    if not path.is_file():
        raise dataset_error(ConfigError, "variants", f"file {path} not found", "name an existing variant file")
    ctx = context_for(settings, CityStore(settings))
    if not ctx.building_footprints:
        print(f"note: no reconstructed buildings in {settings.output_dir / 'buildings'}: building ids and overlaps "
              "are checked against an empty city (run `citymodel run` first)", file=sys.stderr)
    data, size = _read_bounded(path, ctx.limits.max_file_bytes)
    try:
        if size > ctx.limits.max_file_bytes:
            r = rejection(path.name, "", [size_problem(size, ctx.limits)])
            r.report_path = write_rejection(settings, r.report)
            raise r
        v = submit(data, path.name, settings, ctx)
    except VariantRejected as r:
        print(f"rejected: {path.name}: {len(r.problems)} problem(s)")
        for p in r.problems:
            where = "file" if p.get("feature") is None else f"feature {p['feature']}"
            if p.get("field"):
                where += f", {p['field']}"
            print(f"  - {where}: {p['problem']}. Fix: {p['fix']}")
        print(f"report: {r.report_path}")
        return EXIT_REJECTED
    print(f"accepted: {v.id} version {v.version} (partition {v.key})")
    if args.assess:
        return _assess(args, v.key)
    return 0


def _assess(args, key: str) -> int:
    """Run the job ``variant_assess`` for one variant partition, where this version has that job."""
    import dagster as dg

    settings, _, instance, defs = _setup(args)
    try:
        job = defs.resolve_job_def(VARIANT_ASSESS_JOB)
    except dg.DagsterInvariantViolationError:
        print(f"assessment is not available yet (this version has no job '{VARIANT_ASSESS_JOB}'); the variant is "
              "stored and can be assessed later")
        return 0
    pdef = job.partitions_def
    if isinstance(pdef, dg.DynamicPartitionsDefinition) and pdef.name \
            and not instance.has_dynamic_partition(pdef.name, key):
        instance.add_dynamic_partitions(pdef.name, [key])
    print(f"assessing {key} ...")
    result = job.execute_in_process(instance=instance, partition_key=key, raise_on_error=False)
    print(f"assessment of {key}: {'done' if result.success else 'FAILED'}")
    return 0 if result.success else 1


def cmd_variant_list(args) -> int:
    from citymodel.config import load_config
    from citymodel.variants.registry import list_submissions, variants_dir

    settings = load_config(args.config)
    subs = list_submissions(settings)
    if not subs:
        print(f"no variants submitted yet (inbox: {settings.variants_inbox_dir})")
        return 0
    by_id: dict[str, list] = {}
    for s in subs:
        by_id.setdefault(s.id, []).append(s)
    rows = [("id", "versions", "title", "role", "created", "status")]
    for vid, vs in sorted(by_id.items()):
        cur = vs[-1]
        published = (variants_dir(settings) / vid / str(cur.version) / "variant.json").is_file()
        rows.append((vid, ",".join(str(x.version) for x in vs), cur.title, cur.author_role, cur.created,
                     f"v{cur.version} {'published' if published else 'submitted'}"))
    widths = [min(40, max(len(str(r[k])) for r in rows)) for k in range(len(rows[0]))]
    for r in rows:
        print("  ".join(str(v)[:w].ljust(w) for v, w in zip(r, widths)).rstrip())
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="citymodel", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="deployment file (default: $CITYMODEL_CONFIG or the sample city)")
    sub = p.add_subparsers(dest="cmd", required=True)
    i = sub.add_parser("init", help="catalog and deployment file from a folder of the city's files")
    i.add_argument("dir", help="the folder with footprints, LiDAR tiles, trees, ...")
    i.add_argument("--name", help="short name of the deployment (default: from the folder name)")
    i.add_argument("--title", help="title, e.g. the city's name (default: the folder name)")
    i.add_argument("--crs", help="processing CRS where no file names one, e.g. EPSG:25832")
    i.add_argument("--publisher", help="publish.publisher, e.g. 'Stadt Musterstadt, Fachdienst Geoinformation'")
    i.add_argument("--license", help="publish.license: a licence IRI or a short name such as dl-de/by-2-0")
    i.add_argument("--contact", help="publish.contact: an e-mail address or a web page URL")
    i.add_argument("--url", action="append", default=[], metavar="URL",
                   help="a file that stays on a server (repeatable): downloaded to inspect it, named by its URL")
    i.set_defaults(fn=cmd_init)
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
    v = sub.add_parser("variant", help="planning variants: submit, list")
    vsub = v.add_subparsers(dest="variant_cmd", required=True)
    vs = vsub.add_parser("submit", help="validate a variant file and store it as a new version")
    vs.add_argument("file", help="variant GeoJSON (schema 1.0) or CityJSON 2.0 with \"+variant\"")
    vs.add_argument("--assess", action="store_true", help="assess the accepted version right away")
    vs.set_defaults(fn=cmd_variant_submit)
    vl = vsub.add_parser("list", help="the submitted variants")
    vl.set_defaults(fn=cmd_variant_list)
    sv = sub.add_parser("serve", help="serve the output folder (releases and their 3D viewer) over HTTP")
    sv.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1; 0.0.0.0 for the network)")
    sv.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any free port)")
    sv.add_argument("--verbose", action="store_true", help="log every request")
    sv.set_defaults(fn=cmd_serve)
    args = p.parse_args(argv)
    try:
        return args.fn(args)
    except Exception as exc:  # noqa: BLE001 - the CLI reports the project's errors plainly
        from citymodel.errors import CityModelError

        if isinstance(exc, CityModelError):
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_CONFIG
        raise


if __name__ == "__main__":
    sys.exit(main())
