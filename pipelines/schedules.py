"""The nightly refresh: observe the catalog, re-materialize only what changed."""


import dagster as dg

from citymodel.config import ScheduleSettings, Settings
from resources.settings import SettingsResource

from .jobs import city_refresh_job


def build_nightly_schedule(settings: Settings | None) -> dg.ScheduleDefinition:
    sched = settings.schedule if settings is not None else ScheduleSettings()

    @dg.schedule(
        name="nightly_refresh",
        job=city_refresh_job,
        cron_schedule=sched.cron,
        execution_timezone=sched.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Reads the catalog and requests runs only for sources, tiles and code that changed.",
    )
    def nightly_refresh(context: dg.ScheduleEvaluationContext, settings: SettingsResource):
        from .refresh_runner import plan_for

        from citymodel.refresh_lock import current_holder

        s = settings.load()
        holder = current_holder(s.output_dir)
        if holder is not None:  # one refresh at a time per output folder
            return dg.SkipReason(f"another refresh of {s.output_dir} is running: {holder.describe()}")
        plan = plan_for(context.instance, s, context.repository_def.asset_graph)
        if plan.empty:
            return dg.SkipReason("no source, tile or code version changed since the last refresh")
        stamp = context.scheduled_execution_time.strftime("%Y%m%dT%H%M") if context.scheduled_execution_time else "now"
        # city-wide assets that gather every tile are left to the `city_automation` sensor, which
        # builds them once the tile runs are done (runs requested together are not ordered)
        runs = [r for r in plan.runs if not r.gathers_tiles]
        if not runs:
            runs = plan.runs
        return [dg.RunRequest(run_key=f"{stamp}-{i}", asset_selection=r.asset_keys, partition_key=r.partition_key,
                              tags={"citymodel/refresh": stamp, "citymodel/reason": r.reason})
                for i, r in enumerate(runs)]

    return nightly_refresh
