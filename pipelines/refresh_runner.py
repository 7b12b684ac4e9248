"""Glue between the catalog, the refresh plan and Dagster runs (schedule and `citymodel run`)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import dagster as dg

from citymodel.config import ENV_VAR, Settings
from citymodel.sources import not_configured_version, source_version

from .partitions import sync_tiles
from .refresh import RefreshPlan, plan_refresh

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def source_fingerprints(settings: Settings):
    """``(source asset key, tile) -> fingerprint`` from one read of the catalog."""
    from assets.common import catalog_client

    catalog = catalog_client(settings).load()
    cache: dict[tuple[str, str | None], str] = {}

    def fp(key: dg.AssetKey, tile: str | None) -> str | None:
        role = key.path[-1]
        if (role, tile) in cache:
            return cache[(role, tile)]
        src = settings.source(role)
        if src is None:
            value = not_configured_version(role)
        else:
            ds = catalog.dataset(src.dataset, require_distributions=False)
            value = source_version(ds, role, settings.tile(tile) if tile else None,
                                   settings.lidar.halo_m).fingerprint
        cache[(role, tile)] = value
        return value

    return fp


def plan_for(instance: dg.DagsterInstance, settings: Settings, asset_graph, force: bool = False) -> RefreshPlan:
    sync_tiles(instance, settings)
    return plan_refresh(instance, asset_graph, settings.tile_ids, source_fingerprints(settings), force=force)


@dataclass
class StepFailure:
    """A failed step of a refresh: its assets, tile and its own message (dataset, record, fix)."""

    assets: list[str]
    tile: str | None
    message: str

    @property
    def label(self) -> str:
        return f"[{self.tile or '-'}] {', '.join(self.assets)}"


@dataclass
class RefreshOutcome:
    plan: RefreshPlan
    refresh_id: str = ""
    succeeded: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    steps_failed: list[StepFailure] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed


def _step_failures(instance: dg.DagsterInstance, result, partition: str | None) -> list[StepFailure]:
    """The failed steps of a run, each with its assets and its own (unwrapped) message."""
    from .run_state import step_failures

    return [StepFailure(assets, partition, msg) for assets, msg in step_failures(instance, result.run_id)]


def _downstream_of_failures(asset_graph, failed: set[tuple[str, str | None]], key: dg.AssetKey,
                            partition: str | None, tile_ids: list[str]) -> tuple[str, str | None] | None:
    """A failed (asset, tile) upstream of ``key`` for ``partition`` (the same tile, or any tile for a
    city-wide asset), or None. Neighbour tiles do not count: a tile whose neighbour failed is still
    built from what is there (and the release calls it degraded), so that a broken tile fails alone."""
    seen: set[tuple[dg.AssetKey, str | None]] = set()
    stack = [(key, partition)]
    while stack:
        k, part = stack.pop()
        for parent in asset_graph.get(k).parent_keys:
            if parent not in asset_graph.materializable_asset_keys:
                continue
            if asset_graph.get(parent).partitions_def is not None:
                targets = list(tile_ids) if part is None else [part]
            else:
                targets = [None]
            for t in targets:
                if (parent.to_user_string(), t) in failed:
                    return parent.to_user_string(), t
                if (parent, t) not in seen:
                    seen.add((parent, t))
                    stack.append((parent, t))
    return None


def execute_plan(defs: dg.Definitions, instance: dg.DagsterInstance, plan: RefreshPlan,
<<<<<<< HEAD
                 quiet: bool = True, log=print, settings: Settings | None = None,
                 max_concurrent_runs: int | None = None, defs_factory: str | None = None) -> RefreshOutcome:
    """Run the plan wave by wave; a failing run (a tile) does not stop the others.

    Runs of one wave (:attr:`RunSpec.wave`: the tiles, then the tile assets that read neighbour
    tiles) are independent: up to ``max_concurrent_runs`` of them (default: the deployment's
    ``orchestration.max_concurrent_runs``, else 1) run at once, each in a worker process of its own
    that writes to the same ``instance`` (which must then be stored on disk or in PostgreSQL, not
    ephemeral). With ``orchestration.engine`` ``multiprocess`` or ``celery`` a run's steps go to
    that executor (:func:`run_one`). Runs after a failed run still go ahead (the rest of the city),
    but assets downstream of a failed asset in the same tile are skipped by Dagster itself.

    ``defs_factory`` (``"module:function"``, no arguments) builds the definitions in a worker process;
    default: :func:`pipelines.definitions.build_definitions` with the settings resource of ``defs``.
=======
                 quiet: bool = True, log=print, refresh_id: str | None = None,
                 tile_ids: list[str] | None = None) -> RefreshOutcome:
    """Run the plan in this process, in order; a failing run (a tile) does not stop the others.

    Every run is tagged with the refresh id (``citymodel/refresh``, :mod:`pipelines.run_state`), so
    that the release can tell what this refresh built. A tile run leaves out the assets downstream of
    a step of the same tile that failed earlier in this refresh (they would only be rebuilt from old
    inputs); tiles next to a failed one are built from what is there. The last run (the city-wide
    results and the release) always runs: the release decides, from the states of the parts, whether
    it may be published (with gaps where the deployment allows them). Assets downstream of a failed asset in the same run are
    skipped by Dagster itself.
>>>>>>> trust-release
    """
    from .run_state import REFRESH_TAG, RUNNER_TAG, new_refresh_id

    t0 = time.perf_counter()
<<<<<<< HEAD
    out = RefreshOutcome(plan)
    engine = settings.orchestration.engine if settings is not None else "in_process"
    if max_concurrent_runs is None:
        max_concurrent_runs = settings.orchestration.concurrent_runs() if settings is not None else 1
    if engine != "in_process" and settings is not None and settings.config_path is not None:
        # the executor's processes (and Celery workers started from here) rebuild the definitions
        os.environ[ENV_VAR] = str(settings.config_path)
    res = (defs.resources or {}).get("settings")
    worker_args = (defs_factory, getattr(res, "config_path", None), getattr(res, "output_dir", None), engine, quiet)
    waves: dict[int, list] = {}
    for r in plan.runs:
        waves.setdefault(r.wave, []).append(r)
    width = max([1] + [min(max_concurrent_runs, len(w)) for w in waves.values()])
    pool = None
    if width > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(max_workers=width, mp_context=multiprocessing.get_context("spawn"))
    try:
        for wave in sorted(waves):
            runs = waves[wave]
            if pool is None or len(runs) == 1:
                for r in runs:
                    log(f"run {r.label}")
                    ok, msg = run_one(defs, instance, r.asset_keys, r.partition_key, r.reason, quiet, engine)
                    _record(out, r, ok, msg, log)
            else:
                ref = instance.get_ref()
                futures = []
                for r in runs:
                    log(f"run {r.label} (concurrent)")
                    keys = [k.to_user_string() for k in r.asset_keys]
                    futures.append((r, pool.submit(_run_in_worker, ref, *worker_args, keys, r.partition_key,
                                                   r.reason)))
                for r, fut in futures:
                    try:
                        ok, msg = fut.result()
                    except Exception as exc:  # noqa: BLE001 - a lost worker fails its run, not the refresh
                        ok, msg = False, f"worker process failed: {exc!r}"
                    _record(out, r, ok, msg, log)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
=======
    job = defs.resolve_job_def("city_refresh")
    graph = defs.resolve_asset_graph()
    tiles = list(tile_ids) if tile_ids is not None else sorted({r.partition_key for r in plan.runs if r.partition_key})
    out = RefreshOutcome(plan, refresh_id=refresh_id or new_refresh_id())
    failed: set[tuple[str, str | None]] = set()
    for r in plan.runs:
        keys = list(r.asset_keys)
        if failed and not r.gathers_tiles:
            kept = []
            for k in keys:
                hit = _downstream_of_failures(graph, failed, k, r.partition_key, tiles)
                if hit is None:
                    kept.append(k)
                else:
                    why = f"not run: upstream {hit[0]}{f'[{hit[1]}]' if hit[1] else ''} failed in this refresh"
                    out.skipped.append((f"[{r.partition_key or '-'}] {k.to_user_string()}", why))
            if not kept:
                log(f"skip {r.label}: upstream failed in this refresh")
                continue
            keys = kept
        label = f"[{r.partition_key or '-'}] " + ", ".join(k.to_user_string() for k in keys)
        log(f"run {label}")
        result = job.execute_in_process(instance=instance, partition_key=r.partition_key,
                                        asset_selection=keys, raise_on_error=False,
                                        run_config=QUIET if quiet else None,
                                        tags={"citymodel/reason": r.reason, REFRESH_TAG: out.refresh_id,
                                              RUNNER_TAG: "cli"})
        if result.success:
            out.succeeded.append(label)
            continue
        steps = _step_failures(instance, result, r.partition_key)
        out.steps_failed += steps
        out.failed.append((label, "; ".join(f"{', '.join(s.assets)}: {s.message}" for s in steps) or "run failed"))
        for s in steps:
            for a in s.assets:
                failed.add((a, r.partition_key))
        # assets of the run that were skipped because of a failure before them in the same run
        done = {e.asset_key.to_user_string() for e in result.all_events
                if e.event_type_value == "ASSET_MATERIALIZATION" and e.asset_key is not None}
        for k in keys:
            if k.to_user_string() not in done:
                failed.add((k.to_user_string(), r.partition_key))
        for s in steps:
            log(f"  FAILED {s.label}: {s.message}")
>>>>>>> trust-release
    out.seconds = time.perf_counter() - t0
    return out


def _record(out: RefreshOutcome, r, ok: bool, msg: str, log) -> None:
    if ok:
        out.succeeded.append(r.label)
    else:
        out.failed.append((r.label, msg))
        log(f"  FAILED {r.label}: {msg}")


def run_one(defs: dg.Definitions, instance: dg.DagsterInstance, asset_keys, partition_key: str | None,
            reason: str, quiet: bool = True, engine: str = "in_process") -> tuple[bool, str]:
    """One run of ``city_refresh`` (the assets, one tile or none); returns (success, failure messages).

    ``in_process``: every step in this process. ``multiprocess`` / ``celery``: the run is launched
    from its reconstructable definition (``pipelines.definitions:defs``, loaded with
    ``$CITYMODEL_CONFIG``) and its steps go to the executor of the definitions (a process per step,
    or the Celery workers behind the broker).
    """
    tags = {"citymodel/reason": reason}
    run_config = QUIET if quiet else None
    if engine == "in_process":
        job = defs.resolve_job_def("city_refresh")
        result = job.execute_in_process(instance=instance, partition_key=partition_key,
                                        asset_selection=list(asset_keys), raise_on_error=False,
                                        run_config=run_config, tags=tags)
        return result.success, ("" if result.success else failure_messages(result))
    from dagster._core.definitions.reconstruct import ReconstructableRepository

    recon = ReconstructableRepository.for_module("pipelines.definitions", "defs").get_reconstructable_job(
        "city_refresh")
    if partition_key is not None:
        tags["dagster/partition"] = partition_key
    with dg.execute_job(recon, instance, run_config=run_config, tags=tags, raise_on_error=False,
                        asset_selection=list(asset_keys)) as result:
        return result.success, ("" if result.success else failure_messages(result))


_WORKER_DEFS: dict = {}


def _run_in_worker(instance_ref, defs_factory, config_path, output_dir, engine, quiet, keys, partition_key, reason):
    """A run in a worker process of :func:`execute_plan` (definitions built once per process)."""
    cache_key = (defs_factory, config_path, output_dir)
    if cache_key not in _WORKER_DEFS:
        if defs_factory:
            import importlib

            module, _, fn = defs_factory.partition(":")
            _WORKER_DEFS[cache_key] = getattr(importlib.import_module(module), fn)()
        else:
            from .definitions import build_definitions

            _WORKER_DEFS[cache_key] = build_definitions(config_path=config_path, output_dir=output_dir)
    defs = _WORKER_DEFS[cache_key]
    with dg.DagsterInstance.from_ref(instance_ref) as instance:
        return run_one(defs, instance, [dg.AssetKey.from_user_string(k) for k in keys], partition_key, reason,
                       quiet, engine)


def failure_messages(result) -> str:
    """The failed steps' own messages of an in-process run (``"; "``-joined), unwrapped from Dagster's
    wrappers (:func:`pipelines.run_state.error_message`)."""
    from .run_state import error_message

    msgs = [error_message(e.event_specific_data.error)
            for e in result.all_events if e.is_step_failure and e.event_specific_data
            and getattr(e.event_specific_data, "error", None)]
    return "; ".join(msgs) or "run failed"
