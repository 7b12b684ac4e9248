"""Sensors: keep the tile partitions in step with the configured extent; build the city-wide assets
after the tiles; take planning variants from the inbox and re-assess them when the city changes."""


import dagster as dg

from resources.settings import SettingsResource

from .jobs import CITY_SELECTION, variant_assess_job
from .partitions import TILES, VARIANTS


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
    target=CITY_SELECTION,
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    description="Materializes the city-wide assets once the tiles they gather are refreshed.",
)


@dg.sensor(name="variant_inbox", job=variant_assess_job, minimum_interval_seconds=30,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Submits the variant files dropped into the inbox folder (variants.inbox_dir): accepted "
                       "versions become partitions and are assessed; rejected files get a report beside them.")
def variant_inbox(context: dg.SensorEvaluationContext, settings: SettingsResource):
    from citymodel.store import CityStore
    from citymodel.variants.registry import process_inbox
    from citymodel.variants.validation import context_for

    s = settings.load()
    accepted, rejected = process_inbox(s, context_for(s, CityStore(s)))
    if not accepted:
        return dg.SkipReason(f"inbox empty ({len(rejected)} file(s) rejected)" if rejected else "inbox empty")
    keys = [v.key for v in accepted]
    return dg.SensorResult(run_requests=[dg.RunRequest(run_key=f"inbox-{k}", partition_key=k) for k in keys],
                           dynamic_partitions_requests=[VARIANTS.build_add_request(keys)])


@dg.sensor(name="variant_rebase", job=variant_assess_job, minimum_interval_seconds=120,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="When the city's release changes, re-assesses the current version of every variant "
                       "against the new base (the city never waits for this).")
def variant_rebase(context: dg.SensorEvaluationContext, settings: SettingsResource):
    from citymodel.variants.publish import stale_variants

    s = settings.load()
    stale = stale_variants(s)
    if not stale:
        return dg.SkipReason("every current variant is assessed against the current city release")
    release = stale[0][1]
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=f"rebase-{k}-{release}", partition_key=k) for k, _ in stale],
        dynamic_partitions_requests=[VARIANTS.build_add_request([k for k, _ in stale])])
