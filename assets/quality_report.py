"""Stage ``quality``: the run's quality report (``quality/report.json`` and ``.html``).

It covers the staged sources and, once they are built, the reconstructed buildings (a summary with
the truth-free distance between each building's points and its roof; roof fit errors, the fallbacks'
reasons and the validity codes) and the latest result of every check of the model and the analyses.
"""


import dagster as dg
import pandas as pd
from dagster import AssetExecutionContext

from pipelines.run_state import full_asset_graph
from resources.settings import SettingsResource
from resources.warehouse import WarehouseResource

from .buildings import MODEL_KEY, load_building_table
from .common import latest_check_results, read_json
from .staging import DTM_KEY, POINT_CLOUD_KEY, VECTOR_ROLES, WEATHER_KEY

REPORT_KEY = dg.AssetKey(["quality", "report"])


def staging_states(context, settings, graph) -> list[dict]:
    """The staged parts whose results on disk are not from this refresh (their staging or download
    failed, or an input did), as the quality report takes them: role, tile, state and words."""
    from citymodel.release.contents import GAP_STATES
    from citymodel.requirements import not_configured_assets
    from pipelines.run_state import REFRESH_TAG, city_asset_keys, part_states

    keys = city_asset_keys(graph, REPORT_KEY)
    parts = part_states(context.instance, graph, settings.tile_ids, keys,
                        refresh_id=context.run.tags.get(REFRESH_TAG), current_run_id=context.run_id,
                        not_configured=not_configured_assets(settings))
    out: dict[tuple[str, str | None], dict] = {}
    for p in parts:
        if p.state not in GAP_STATES:
            continue
        stage, name = p.asset.split("/", 1)
        role = "lidar" if name in ("point_cloud", "dtm") else name
        if (role, p.tile) not in out or stage == "staging":
            out[(role, p.tile)] = {"role": role, "tile": p.tile, "state": p.state, "text": p.text("en")}
    return list(out.values())


@dg.asset(
    key=REPORT_KEY,
    deps=[dg.AssetKey(["staging", r]) for r in VECTOR_ROLES]
    + [dg.AssetKey(["staging", "lod2_reference"]), WEATHER_KEY, POINT_CLOUD_KEY, DTM_KEY, MODEL_KEY,
       dg.AssetKey(["analysis", "building_values"])],
    group_name="quality",
    code_version="4",
    automation_condition=dg.AutomationCondition.eager(),
    kinds={"html", "json"},
    description="Quality report of the staged sources (suites, checks, quarantined records), of the "
                "reconstructed buildings (methods, fallbacks and their reasons, roof fit errors, validity, distance "
                "of the points to their roofs) and the checks of the model and the analysis layers.",
)
def quality_report(context: AssetExecutionContext, settings: SettingsResource,
                   warehouse: WarehouseResource) -> dg.MaterializeResult:
    from quality.report import write_report

    s = settings.load()
    results_dir = s.quality_dir / "results"
    tiles = set(s.tile_ids)
    results = []
    for p in sorted(results_dir.glob("*.json")) if results_dir.exists() else []:
        r = read_json(p)
        if r.get("tile") and r["tile"] not in tiles:
            continue  # a tile that left the configured extent
        r.pop("quarantine", None)
        results.append(r)
    quarantine = None
    if "quarantine" in warehouse.tables():
        quarantine = warehouse.query("SELECT * FROM quarantine")
    buildings = model = None
    table = load_building_table(s)
    if len(table):
        from citymodel.lod2.summary import quality_summary
        from quality.report import model_details

        frame = pd.DataFrame(table.drop(columns="geometry"))
        buildings = quality_summary(frame)
        model = model_details(frame)
    graph = full_asset_graph(context, s)
    checks = latest_check_results(context, ("buildings", "analysis"), graph)
    states = staging_states(context, s, graph)
    json_path, html_path = write_report(results, quarantine, s.quality_dir, title=f"Quality report: {s.title or s.name}",
                                        buildings=buildings, model=model, analysis_checks=checks, states=states)
    report = read_json(json_path)
    summary = report["summary"]
    extra = {}
    if buildings and buildings.get("point_to_roof", {}).get("buildings"):
        d = buildings["point_to_roof"]
        extra = {"point_to_roof_median_m": d["median_of_medians_m"], "point_to_roof_p90_m": d["median_p90_m"],
                 "lod1_fallback_share": buildings["lod1_fallback_share"]}
    return dg.MaterializeResult(metadata={**extra,
        "status": report["status"], "entries": summary.get("entries"), "quarantined": summary.get("quarantined"),
        "blocking_failures": dg.MetadataValue.json(summary.get("blocking_failures", [])),
        "not_current": dg.MetadataValue.json(summary.get("not_current", [])),
        "report_json": dg.MetadataValue.path(str(json_path)), "report_html": dg.MetadataValue.path(str(html_path))})
