"""What the Dagster instance says about each asset partition: fresh, unchanged, carried over or failed.

"This refresh"
    Every run started for one refresh carries the tag ``citymodel/refresh=<id>``: ``citymodel run``
    makes a new id per invocation (:func:`new_refresh_id`), the nightly schedule uses its tick's time
    stamp. A part is *fresh* when its latest materialization was made by a run of the refresh the
    asking run belongs to. A run without the tag (started in the UI, or by the automation sensor)
    counts as its own refresh: fresh then means "materialized after ``since``" (the release asset
    passes the creation time of the current release).

What is read (no state of our own)
    Per asset and partition: the latest materialization (storage id, time, run, code version) and
    the latest *planned* materialization (Dagster records one for every asset a run selects when the
    run starts). A planned materialization newer than the latest materialization means the last
    attempt did not produce one: its step failed (the step's own error message, unwrapped from
    Dagster's wrappers by :func:`error_message`), it was skipped because a step before it in the same
    run failed, or the run is still going. Run status and step failures come from the run's event log.

The states (:mod:`citymodel.release.contents`) follow in topological order: a part is
``carried_over`` (it has an earlier result) or ``failed`` (it has none) when its own last attempt
failed, when an input was rebuilt after it or its code version changed (out of date), or when an input
is itself not current; a part built in this refresh from an input that is not current is
``degraded``; otherwise ``fresh`` or ``current``. Assets the deployment does not
compute (:mod:`citymodel.requirements`) are ``not_configured`` and never make their children stale.

The planner (:mod:`pipelines.refresh`) uses :func:`last_attempt_failed` so that a failed part is
rebuilt by the next refresh even when nothing else changed.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone

import dagster as dg
from dagster._core.events import DagsterEventType

from citymodel.release.contents import (CARRIED_OVER, CURRENT, DEGRADED, FAILED, FRESH, GAP_STATES, NOT_CONFIGURED,
                                        WHY_CODE, WHY_ERROR, WHY_INPUT, WHY_NEVER, WHY_OUTDATED, WHY_RUNNING, Part)

REFRESH_TAG = "citymodel/refresh"
RUNNER_TAG = "citymodel/runner"
VARIANT_GROUP = "variants"
NEIGHBOUR_TAG = "citymodel/reads_neighbour_tiles"
IN_PROGRESS = frozenset({dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
                         dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING})
#: Dagster's wrappers around the error a step raised (the cause is the message people need)
#: Dagster's wrappers around what a step raised (the last error of a step that used up its retries
#: comes as RetryRequestedFromPolicy "Exceeded max_retries of N", the real one as its cause)
_WRAPPERS = ("DagsterExecutionStepExecutionError", "DagsterUserCodeExecutionError", "DagsterExecutionInterruptedError",
             "RetryRequestedFromPolicy")


def new_refresh_id(now: datetime | None = None) -> str:
    """A new refresh id: UTC time stamp and a random suffix (``20261206T020000Z-3f9a1c``)."""
    now = now or datetime.now(timezone.utc)
    return f"{now.astimezone(timezone.utc):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def error_message(error) -> str:
    """The message of a step's error as the person running the refresh needs it.

    Dagster wraps what a step raised (``DagsterExecutionStepExecutionError: Error occurred while
    executing op ...``) and keeps the original as the ``cause``; ``dg.Failure`` carries its
    description. This follows the causes down to the first error that is not a Dagster wrapper and
    returns its text without the module and class prefix, e.g. ``dataset 'lidar', record 'x.laz':
    ... Fix: ...`` for the project's errors.
    """
    if error is None:
        return "unknown error"
    e = error
    while e.cls_name in _WRAPPERS and e.cause is not None:
        e = e.cause
    text = (e.message or "").strip()
    prefix, sep, rest = text.partition(": ")
    if sep and (prefix == e.cls_name or prefix.endswith("." + e.cls_name)):  # "citymodel.errors.X: ..."
        text = rest.strip()
    if not text:
        return e.cls_name
    if e.cls_name == "Failure" or _is_project_error(e):
        return text
    return f"{e.cls_name}: {text}"  # a crash: the class says what kind of crash


def _is_project_error(e) -> bool:
    from citymodel import errors

    return isinstance(getattr(errors, e.cls_name, None), type) and issubclass(getattr(errors, e.cls_name),
                                                                               errors.CityModelError)


# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Materialization:
    """The latest materialization of a part: its event number (global, increasing), time, run and tags."""

    storage_id: int
    time: datetime
    run_id: str
    code_version: str | None
    tags: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Attempt:
    """The latest planned materialization of a part (a run that selected it)."""

    storage_id: int
    run_id: str


def latest_materialization(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str | None):
    flt = dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition] if partition else None)
    res = instance.fetch_materializations(flt, limit=1)
    if not res.records:
        return None
    rec = res.records[0]
    mat = rec.asset_materialization
    tags = dict(mat.tags or {}) if mat is not None else {}
    return Materialization(rec.storage_id, datetime.fromtimestamp(rec.timestamp, timezone.utc).replace(microsecond=0),
                           rec.run_id, tags.get("dagster/code_version"), tags)


def latest_attempt(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str | None) -> Attempt | None:
    info = instance.get_latest_planned_materialization_info(key, partition)
    return Attempt(info.storage_id, info.run_id) if info is not None else None


def last_attempt_failed(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str | None,
                        mat_storage_id: int | None) -> bool:
    """The latest run that selected the part did not materialize it and is no longer running."""
    att = latest_attempt(instance, key, partition)
    if att is None or (mat_storage_id is not None and att.storage_id < mat_storage_id):
        return False
    run = instance.get_run_by_id(att.run_id)
    return run is None or run.status not in IN_PROGRESS


class _RunLog:
    """Step failures and planned assets of runs, read once per run."""

    def __init__(self, instance: dg.DagsterInstance):
        self.instance = instance
        self._cache: dict[str, tuple] = {}

    def get(self, run_id: str):
        if run_id not in self._cache:
            run = self.instance.get_run_by_id(run_id)
            failures: dict[str, str] = {}
            step_of: dict[str, str] = {}
            for e in self.instance.all_logs(run_id, of_type={DagsterEventType.STEP_FAILURE,
                                                             DagsterEventType.ASSET_MATERIALIZATION_PLANNED}):
                ev = e.dagster_event
                if ev is None:
                    continue
                if ev.event_type == DagsterEventType.STEP_FAILURE:
                    failures[ev.step_key] = error_message(getattr(ev.event_specific_data, "error", None))
                elif ev.step_key:
                    step_of[ev.event_specific_data.asset_key.to_user_string()] = ev.step_key
            self._cache[run_id] = (run, failures, step_of)
        return self._cache[run_id]


def step_failures(instance: dg.DagsterInstance, run_id: str) -> list[tuple[list[str], str]]:
    """The failed steps of a run: the assets each step was to materialize and its own message."""
    _, failures, step_of = _RunLog(instance).get(run_id)
    out = []
    for step, message in sorted(failures.items()):
        assets = sorted(a for a, st in step_of.items() if st == step) or [step]
        out.append((assets, message))
    return out


def _neighbours(tile: str, tiles: list[str]) -> list[str]:
    from .refresh import _neighbours as n

    return n(tile, tiles)


def city_asset_keys(asset_graph, target: dg.AssetKey | None = None) -> list[dg.AssetKey]:
    """The city's materializable assets (not the planning variants), in topological order; with
    ``target``: those upstream of it."""
    keys = [k for k in asset_graph.toposorted_asset_keys
            if k in asset_graph.materializable_asset_keys and asset_graph.get(k).group_name != VARIANT_GROUP]
    if target is None:
        return keys
    up: set[dg.AssetKey] = set()
    stack = [target]
    while stack:
        k = stack.pop()
        for p in asset_graph.get(k).parent_keys:
            if p not in up and p in asset_graph.materializable_asset_keys:
                up.add(p)
                stack.append(p)
    return [k for k in keys if k in up]


def full_asset_graph(context, settings=None):
    """The whole asset graph of the code location, as seen from an asset's ``context``.

    ``context.job_def`` of a run that selected some assets knows only those (a refresh runs the
    city-wide results on their own), so the parts upstream of the release are taken from the code
    location's repository where the run has one (the UI, the daemon), else from the definitions
    built for ``settings`` (``citymodel run`` executes in process, without a repository).
    """
    try:
        return context.repository_def.asset_graph
    except Exception:  # no repository on an in-process run
        from .definitions import build_definitions

        return build_definitions(settings=settings).resolve_asset_graph()


def part_states(instance: dg.DagsterInstance, asset_graph, tile_ids: Iterable[str], keys: Iterable[dg.AssetKey], *,
                refresh_id: str | None = None, since: datetime | None = None, current_run_id: str | None = None,
                not_configured: dict | None = None) -> list[Part]:
    """The state of every part (asset x tile) of ``keys`` (given in topological order).

    Parameters
    ----------
    refresh_id
        The refresh of the asking run (its ``citymodel/refresh`` tag); None: fresh means
        materialized after ``since``.
    current_run_id
        The asking run: its own planned materializations are not failed attempts.
    not_configured
        ``{asset key path: NotComputed}`` (:func:`citymodel.requirements.not_configured_assets`).
    """
    tiles = list(tile_ids)
    keys = list(keys)
    not_configured = not_configured or {}
    runs = _RunLog(instance)
    refresh_runs: set[str] = set()
    if refresh_id:
        refresh_runs = {r.run_id for r in instance.get_runs(filters=dg.RunsFilter(tags={REFRESH_TAG: refresh_id}))}
    partitioned = {k for k in keys if asset_graph.get(k).partitions_def is not None}
    readers = {k for k in keys if (asset_graph.get(k).tags or {}).get(NEIGHBOUR_TAG) == "true"}
    key_set = set(keys)
    states: dict[tuple[dg.AssetKey, str | None], Part] = {}
    mats: dict[tuple[dg.AssetKey, str | None], Materialization | None] = {}

    for key in keys:
        node = asset_graph.get(key)
        name = key.to_user_string()
        for part in (tiles if key in partitioned else [None]):
            mat = latest_materialization(instance, key, part)
            mats[(key, part)] = mat
            built = mat.time if mat else None
            if name in not_configured:
                states[(key, part)] = Part(name, part, NOT_CONFIGURED, built, needs=tuple(not_configured[name].needs))
                continue
            fresh = mat is not None and ((mat.run_id in refresh_runs or mat.run_id == current_run_id) if refresh_id
                                         else (since is None or mat.time > since or mat.run_id == current_run_id))
            gap = CARRIED_OVER if mat else FAILED
            me = _label(name, part)
            found: Part | None = None
            # 1. its own last attempt
            att = latest_attempt(instance, key, part)
            if att is not None and att.run_id != current_run_id and (mat is None or att.storage_id > mat.storage_id):
                run, failures, step_of = runs.get(att.run_id)
                step = step_of.get(name)
                if run is not None and run.status in IN_PROGRESS:
                    found = Part(name, part, gap, built, WHY_RUNNING, f"run {att.run_id[:8]} is in progress",
                                 cause=me, root_asset=name, root_state=gap)
                elif step in failures:
                    found = Part(name, part, gap, built, WHY_ERROR, failures[step], cause=me,
                                 root_asset=name, root_state=gap)
                elif failures:  # skipped: a step before it in the same run failed
                    first = sorted(failures)[0]
                    cause = next((a for a, st in step_of.items() if st == first), first)
                    cause_part = run.tags.get("dagster/partition") if run is not None else None
                    root = states.get((dg.AssetKey.from_user_string(cause), cause_part))
                    found = Part(name, part, gap, built, WHY_INPUT, failures[first], cause=_label(cause, cause_part),
                                 root_asset=cause, root_state=root.state if root is not None else FAILED)
                else:
                    status = run.status.value if run is not None else "unknown"
                    found = Part(name, part, gap, built, WHY_ERROR,
                                 f"run {att.run_id[:8]} ended ({status}) without building it", cause=me,
                                 root_asset=name, root_state=gap)
            # 2. its inputs
            parents = list(_parent_parts(asset_graph, key, part, tiles, partitioned, readers, key_set))
            if found is None:  # an input that is not current (the root cause), before inputs rebuilt later
                for pk, pp in parents:
                    ps = states.get((pk, pp))
                    if ps is not None and ps.state in GAP_STATES:
                        state = DEGRADED if fresh else gap
                        found = Part(name, part, state, built, WHY_INPUT,
                                     ps.detail if ps.why in (WHY_ERROR, WHY_INPUT) else ps.reason("en"),
                                     cause=ps.cause or ps.label, root_asset=ps.root_asset or ps.asset,
                                     root_state=ps.root_state or ps.state)
                        break
            if found is None:
                for pk, pp in parents:
                    pm = mats.get((pk, pp))
                    if mat is not None and pm is not None and pm.storage_id > mat.storage_id:
                        found = Part(name, part, CARRIED_OVER, built, WHY_OUTDATED, cause=_label(pk.to_user_string(), pp),
                                     root_asset=name, root_state=CARRIED_OVER)
                        break
            # 3. never built, or built by other code
            if found is None and mat is None:
                found = Part(name, part, FAILED, None, WHY_NEVER, cause=me, root_asset=name, root_state=FAILED)
            if found is None and node.code_version is not None and mat.code_version is not None \
                    and mat.code_version != node.code_version:
                found = Part(name, part, CARRIED_OVER, built, WHY_CODE, f"{mat.code_version}, now {node.code_version}",
                             cause=me, root_asset=name, root_state=CARRIED_OVER)
            if found is None:
                found = Part(name, part, FRESH if fresh else CURRENT, built)
            states[(key, part)] = found
    return list(states.values())


def _label(asset: str, tile: str | None) -> str:
    return f"{asset}[{tile}]" if tile else asset


def _parent_parts(asset_graph, key, part, tiles, partitioned, readers, key_set):
    for parent in sorted(asset_graph.get(key).parent_keys, key=lambda k: k.to_user_string()):
        if parent not in key_set:
            continue
        if parent in partitioned:
            if part is None:
                targets = tiles
            else:
                targets = [part] + (_neighbours(part, tiles) if key in readers else [])
        else:
            targets = [None]
        for t in targets:
            yield parent, t


def mark_dead_refresh_runs(instance: dg.DagsterInstance, message: str) -> list[str]:
    """Mark the runs of earlier ``citymodel run`` refreshes that still say "started" as failed.

    Called by ``citymodel run`` after it took the refresh lock: no other refresh of this output
    folder runs, so such runs belong to a process that died (killed, machine restarted). Their
    parts then count as failed attempts and are rebuilt.
    """
    out = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=list(IN_PROGRESS), tags={RUNNER_TAG: "cli"})):
        instance.report_run_failed(run, message)
        out.append(run.run_id)
    return out
