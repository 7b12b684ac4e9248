"""The one Dagster code location of the pipeline.

Loaded by ``workspace.yaml`` (``python_module: pipelines.definitions``). The definitions are built
lazily by the ``@dg.definitions`` function when the code location loads, from the deployment file
(``CITYMODEL_CONFIG``): that fixes the schedule's cron/time zone and the names of the per-role
checks. Everything else (paths, catalog, thresholds, tiles) is read at run time.
"""

from __future__ import annotations

import dagster as dg

from assets.analysis import analysis_assets
from assets.buildings import building_model, lod2_tile
from assets.publish import analysis_tiles, building_tiles, pointcloud_tiles, release, tree_tiles
from assets.quality_report import quality_report
from assets.sources import source_assets
from assets.variants import variant_assets
from assets.staging import VECTOR_ROLES, _build_vector_asset, build_lidar_asset, lod2_reference, weather
from assets.variant_intake import variant_intake_assets
from citymodel.config import Settings, load_config
from citymodel.errors import ConfigError
from resources.settings import SettingsResource
from resources.warehouse import WarehouseResource

from .jobs import city_refresh_job, variant_assess_job
from .schedules import build_nightly_schedule
from .settings_versions import with_settings_versions
from .sensors import city_automation, tile_registry, variant_inbox, variant_rebase


def build_definitions(config_path: str | None = None, output_dir: str | None = None,
                      settings: Settings | None = None) -> dg.Definitions:
    """All assets, checks, jobs, schedules, sensors and resources of the code location."""
    if settings is None:
        # a broken deployment file fails the load (the UI shows the code location's error with the
        # file, key and fix), never a silently smaller graph
        settings = load_config(config_path)
    settings_res = SettingsResource(config_path=config_path, output_dir=output_dir)
    assets = [*source_assets, *[_build_vector_asset(r, settings) for r in VECTOR_ROLES], lod2_reference, weather,
              build_lidar_asset(settings), quality_report,
              lod2_tile, building_model, *analysis_assets, tree_tiles, pointcloud_tiles, building_tiles,
              analysis_tiles, release, *variant_assets, *variant_intake_assets]
    assets = with_settings_versions(assets, settings)
    schedule = build_nightly_schedule(settings)
    return dg.Definitions(
        assets=assets,
        jobs=[city_refresh_job, variant_assess_job],
        schedules=[schedule],
        sensors=[tile_registry, city_automation, variant_inbox, variant_rebase],
        resources={"settings": settings_res,
                   "warehouse": WarehouseResource(settings=settings_res)},
        executor=executor_for(settings),
    )


def executor_for(settings: Settings | None) -> dg.ExecutorDefinition:
    """The executor of a run's steps from ``orchestration.engine``.

    ``in_process`` (default): every step of a run in the run's process (runs go in parallel through
    the instance's run queue). ``multiprocess``: a process per step. ``celery``: each step is a
    Celery task on the workers listening to the broker (``dagster-celery worker start``); broker
    and result backend URLs come from the environment variables the deployment names.
    """
    engine = settings.orchestration.engine if settings is not None else "in_process"
    if engine == "multiprocess":
        return dg.multiprocess_executor
    if engine == "celery":
        try:
            from dagster_celery import celery_executor
        except ImportError as exc:
            raise ConfigError("orchestration.engine 'celery' needs the optional packages of the distributed "
                              "engine. Fix: pip install -e '.[distributed]' (make install does)") from exc
        c = settings.orchestration.celery
        return celery_executor.configured({"broker": {"env": c.broker_url_env},
                                           "backend": {"env": c.backend_url_env}},
                                          name="celery")
    return dg.in_process_executor


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
