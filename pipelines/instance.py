"""One Dagster instance per deployment, shared by ``make ui`` and ``citymodel run``.

The instance folder (``DAGSTER_HOME``) is derived from the deployment file:
``orchestration.dagster_home``, by default ``<output_dir>/dagster_home``; an explicitly set
``DAGSTER_HOME`` environment variable wins (then ``make ui`` and ``citymodel run`` still agree, as
both read it). Its ``dagster.yaml`` is written from the deployment's settings:

- a queued run coordinator with ``concurrency.runs.max_concurrent_runs`` =
  ``orchestration.max_concurrent_runs`` (default: the CPU cores);
- op-level concurrency pools (``orchestration.pools``): the limits are stored in the instance
  (what ``dagster instance concurrency set POOL N`` does), as Dagster keeps them there, not in the
  YAML; assets name their pool with ``pool=`` (:data:`POOLS`);
- with ``orchestration.postgres_url_env``, run, event and schedule storage in PostgreSQL; the URL
  is read from that environment variable by Dagster (``{env: NAME}``), so no secret is written.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from citymodel.config import Settings
from citymodel.fileio import atomic_write_text

#: the concurrency pools of the pipeline's memory- or CPU-heavy steps (``pool=`` on the assets)
POOLS = {
    "lidar": "LiDAR staging and point-cloud tiles (whole tiles of points in memory)",
    "lod2": "LoD2 reconstruction of a tile",
    "raycast": "sun hours, solar irradiation, sight lines (ray-casting scenes)",
    "noise": "noise maps and the traffic change (receiver grids)",
}


def dagster_home(settings: Settings) -> Path:
    """The deployment's instance folder (``$DAGSTER_HOME`` if set, else from the deployment file)."""
    env = os.environ.get("DAGSTER_HOME")
    if env:
        return Path(env).resolve()
    home = settings.orchestration.dagster_home or settings.output_dir / "dagster_home"
    return Path(home).resolve()


def instance_config(settings: Settings) -> dict:
    """The content of the deployment's ``dagster.yaml`` (a plain mapping)."""
    orch = settings.orchestration
    cfg: dict = {
        "telemetry": {"enabled": False},
        "run_coordinator": {"module": "dagster.core.run_coordinator", "class": "QueuedRunCoordinator"},
        "concurrency": {"runs": {"max_concurrent_runs": orch.concurrent_runs()},
                        "pools": {"granularity": "op"}},
    }
    if orch.postgres_url_env:
        cfg["storage"] = {"postgres": {"postgres_url": {"env": orch.postgres_url_env}}}
    return cfg


def write_instance_config(settings: Settings) -> Path:
    """Create the instance folder and (re)write its ``dagster.yaml`` when its content changes."""
    home = dagster_home(settings)
    home.mkdir(parents=True, exist_ok=True)
    path = home / "dagster.yaml"
    text = ("# written by `citymodel` from the deployment file " + str(settings.config_path or "")
            + "; edit orchestration.* there, not here\n"
            + yaml.safe_dump(instance_config(settings), sort_keys=False))
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        atomic_write_text(path, text)
    return home


def apply_pools(instance, settings: Settings) -> dict[str, int]:
    """Set the configured pool limits in the instance; pools of :data:`POOLS` not configured are
    removed (unlimited). Returns the limits now in force."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return {}
    wanted = dict(settings.orchestration.pools)
    for pool, limit in wanted.items():
        info = storage.get_concurrency_info(pool)
        if info.slot_count != limit:
            storage.set_concurrency_slots(pool, limit)
    for pool in storage.get_concurrency_keys():
        if pool in POOLS and pool not in wanted:
            storage.delete_concurrency_limit(pool)
    return wanted


def prepare_instance(settings: Settings):
    """Write the instance's ``dagster.yaml``, point ``DAGSTER_HOME`` at it, open it and apply the pools.

    Returns ``(home, instance)``.
    """
    import dagster as dg

    home = write_instance_config(settings)
    os.environ["DAGSTER_HOME"] = str(home)
    instance = dg.DagsterInstance.get()
    apply_pools(instance, settings)
    return home, instance
