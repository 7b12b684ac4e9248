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

#: Dagster's console log of a run without ``--verbose``: none of its step logs (a failed step's stack
#: trace in Dagster's wrapper included); the command prints each failed step's own message at the end
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


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
                 quiet: bool = True, log=print, settings: Settings | None = None,
                 max_concurrent_runs: int | None = None, defs_factory: str | None = None,
                 refresh_id: str | None = None, tile_ids: list[str] | None = None) -> RefreshOutcome:
    """Run the plan wave by wave; a failing run (a tile) does not stop the others.

    Runs of one wave (:attr:`RunSpec.wave`: the tiles, then the tile assets that read neighbour
    tiles) are independent: up to ``max_concurrent_runs`` of them (default: the deployment's
    ``orchestration.max_concurrent_runs``, else 1) run at once, each in a worker process of its own
    that writes to the same ``instance`` (which must then be stored on disk or in PostgreSQL, not
    ephemeral). With ``orchestration.engine`` ``multiprocess`` or ``celery`` a run's steps go to
    that executor (:func:`run_one`).

    Every run is tagged with the refresh id (``citymodel/refresh``, :mod:`pipelines.run_state`), so
    that the release can tell what this refresh built. A tile run leaves out the assets downstream of
    a step of the same tile that failed in an earlier wave of this refresh (they would only be rebuilt
    from old inputs); tiles next to a failed one are built from what is there. The last run (the
    city-wide results and the release) always runs: the release decides, from the states of the
    parts, whether it may be published (with gaps where the deployment allows them). Assets
    downstream of a failed asset in the same run are skipped by Dagster itself. The failed steps'
    own messages are read from the instance, wherever the run was executed.

    ``defs_factory`` (``"module:function"``, no arguments) builds the definitions in a worker process;
    default: :func:`pipelines.definitions.build_definitions` with the settings resource of ``defs``.
    """
    from .run_state import REFRESH_TAG, RUNNER_TAG, new_refresh_id

    t0 = time.perf_counter()
    out = RefreshOutcome(plan, refresh_id=refresh_id or new_refresh_id())
    tags = {REFRESH_TAG: out.refresh_id, RUNNER_TAG: "cli"}
    graph = defs.resolve_asset_graph()
    tiles = list(tile_ids) if tile_ids is not None else sorted({r.partition_key for r in plan.runs if r.partition_key})
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
    failed: set[tuple[str, str | None]] = set()
    pool = None
    if width > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(max_workers=width, mp_context=multiprocessing.get_context("spawn"))
    try:
        for wave in sorted(waves):
            todo = []
            for r in waves[wave]:
                keys = _keys_to_run(out, graph, failed, r, tiles, log)
                if keys:
                    todo.append((r, keys, f"[{r.partition_key or '-'}] " + ", ".join(k.to_user_string() for k in keys)))
            if pool is None or len(todo) <= 1:
                for r, keys, label in todo:
                    log(f"run {label}")
                    run_id = run_one(defs, instance, keys, r.partition_key, r.reason, quiet, engine, tags)
                    _record(out, instance, failed, r, keys, label, run_id, "", log)
            else:
                ref = instance.get_ref()
                futures = []
                for r, keys, label in todo:
                    log(f"run {label} (concurrent)")
                    futures.append((r, keys, label, pool.submit(
                        _run_in_worker, ref, *worker_args, [k.to_user_string() for k in keys], r.partition_key,
                        r.reason, tags)))
                for r, keys, label, fut in futures:
                    run_id, lost = None, ""
                    try:
                        run_id = fut.result()
                    except Exception as exc:  # noqa: BLE001 - a lost worker fails its run, not the refresh
                        lost = f"worker process failed: {exc!r}"
                    _record(out, instance, failed, r, keys, label, run_id, lost, log)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    out.seconds = time.perf_counter() - t0
    return out


def _keys_to_run(out: RefreshOutcome, graph, failed, r, tiles, log) -> list[dg.AssetKey]:
    """The run's assets less those downstream of a failure earlier in this refresh (recorded as skipped)."""
    keys = list(r.asset_keys)
    if not failed or r.gathers_tiles:
        return keys
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
    return kept


def _record(out: RefreshOutcome, instance: dg.DagsterInstance, failed: set, r, keys, label: str,
            run_id: str | None, lost: str, log) -> None:
    """The outcome of one run, read from the instance: its failed steps with their own messages, and
    every asset it did not materialize (failed or skipped by Dagster) as failed for this refresh."""
    from .run_state import step_failures

    run = instance.get_run_by_id(run_id) if run_id else None
    if run is not None and run.status == dg.DagsterRunStatus.SUCCESS:
        out.succeeded.append(label)
        return
    steps = ([StepFailure(assets, r.partition_key, msg) for assets, msg in step_failures(instance, run_id)]
             if run_id else [])
    if lost:
        steps.append(StepFailure([k.to_user_string() for k in keys], r.partition_key, lost))
    out.steps_failed += steps
    out.failed.append((label, "; ".join(f"{', '.join(s.assets)}: {s.message}" for s in steps) or "run failed"))
    # a failed step's assets are among those the run did not materialize
    done = _materialized(instance, run_id) if run_id else set()
    for k in keys:
        if k.to_user_string() not in done:
            failed.add((k.to_user_string(), r.partition_key))
    for s in steps:
        log(f"  FAILED {s.label}: {s.message}")


def _materialized(instance: dg.DagsterInstance, run_id: str) -> set[str]:
    """The assets a run materialized."""
    return {e.dagster_event.asset_key.to_user_string()
            for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
            if e.dagster_event is not None and e.dagster_event.asset_key is not None}


def run_one(defs: dg.Definitions, instance: dg.DagsterInstance, asset_keys, partition_key: str | None,
            reason: str, quiet: bool = True, engine: str = "in_process", tags: dict | None = None) -> str:
    """One run of ``city_refresh`` (the assets, one tile or none); returns its run id (its outcome and
    failed steps are in ``instance``).

    ``in_process``: every step in this process. ``multiprocess`` / ``celery``: the run is launched
    from its reconstructable definition (``pipelines.definitions:defs``, loaded with
    ``$CITYMODEL_CONFIG``) and its steps go to the executor of the definitions (a process per step,
    or the Celery workers behind the broker).
    """
    tags = {**(tags or {}), "citymodel/reason": reason}
    run_config = QUIET if quiet else None
    if engine == "in_process":
        job = defs.resolve_job_def("city_refresh")
        result = job.execute_in_process(instance=instance, partition_key=partition_key,
                                        asset_selection=list(asset_keys), raise_on_error=False,
                                        run_config=run_config, tags=tags)
        return result.run_id
    from dagster._core.definitions.reconstruct import ReconstructableRepository

    recon = ReconstructableRepository.for_module("pipelines.definitions", "defs").get_reconstructable_job(
        "city_refresh")
    if partition_key is not None:
        tags["dagster/partition"] = partition_key
    with dg.execute_job(recon, instance, run_config=run_config, tags=tags, raise_on_error=False,
                        asset_selection=list(asset_keys)) as result:
        return result.run_id


_WORKER_DEFS: dict = {}


def _run_in_worker(instance_ref, defs_factory, config_path, output_dir, engine, quiet, keys, partition_key, reason,
                   tags=None):
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
                       quiet, engine, tags)


def failure_messages(result) -> str:
    """The failed steps' own messages of an in-process run (``"; "``-joined), unwrapped from Dagster's
    wrappers (:func:`pipelines.run_state.error_message`)."""
    from .run_state import error_message

    msgs = [error_message(e.event_specific_data.error)
            for e in result.all_events if e.is_step_failure and e.event_specific_data
            and getattr(e.event_specific_data, "error", None)]
    return "; ".join(msgs) or "run failed"
