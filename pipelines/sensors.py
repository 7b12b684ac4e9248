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
