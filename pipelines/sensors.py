"""Sensors: keep the tile partitions in step with the configured extent."""


import dagster as dg

from resources.settings import SettingsResource

from .partitions import TILES


@dg.sensor(name="tile_registry", minimum_interval_seconds=300,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Registers the 1 km tiles of the configured extent as partitions.")
def tile_registry(context: dg.SensorEvaluationContext, settings: SettingsResource):
    s = settings.load()
    known = set(context.instance.get_dynamic_partitions(TILES.name))
    new = [t for t in s.tile_ids if t not in known]
    if not new:
        return dg.SkipReason(f"all {len(s.tile_ids)} configured tiles are registered")
    return dg.SensorResult(dynamic_partitions_requests=[TILES.build_add_request(new)])


# City-wide assets that gather every tile (quality report, release, ...) carry an eager automation
# condition: after the schedule's per-tile runs they are built once everything upstream is done.
city_automation = dg.AutomationConditionSensorDefinition(
    "city_automation",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    description="Materializes the city-wide assets once the tiles they gather are refreshed.",
)
