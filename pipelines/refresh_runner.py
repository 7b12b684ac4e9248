"""Glue between the catalog, the refresh plan and Dagster runs (schedule and `citymodel run`)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import dagster as dg

from citymodel.config import Settings
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
class RefreshOutcome:
    plan: RefreshPlan
    succeeded: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed


def execute_plan(defs: dg.Definitions, instance: dg.DagsterInstance, plan: RefreshPlan,
                 quiet: bool = True, log=print) -> RefreshOutcome:
    """Run the plan in this process, in order; a failing run (a tile) does not stop the others.

    Runs after a failed run still go ahead (the rest of the city), but assets downstream of a failed
    asset in the same tile are skipped by Dagster itself.
    """
    t0 = time.perf_counter()
    job = defs.resolve_job_def("city_refresh")
    out = RefreshOutcome(plan)
    for r in plan.runs:
        log(f"run {r.label}")
        result = job.execute_in_process(instance=instance, partition_key=r.partition_key,
                                        asset_selection=r.asset_keys, raise_on_error=False,
                                        run_config=QUIET if quiet else None,
                                        tags={"citymodel/reason": r.reason})
        if result.success:
            out.succeeded.append(r.label)
        else:
            out.failed.append((r.label, failure_messages(result)))
            log(f"  FAILED: {out.failed[-1][1]}")
    out.seconds = time.perf_counter() - t0
    return out


def failure_messages(result) -> str:
    """The failed steps' own messages of an in-process run (``"; "``-joined)."""
    msgs = [str(e.event_specific_data.error.message).strip()
            for e in result.all_events if e.is_step_failure and e.event_specific_data
            and getattr(e.event_specific_data, "error", None)]
    return "; ".join(msgs) or "run failed"
