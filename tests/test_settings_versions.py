"""A changed deployment setting rebuilds exactly the assets that read it (issue #16 item 1).

The settings an asset reads are in its Dagster code version (pipelines/settings_versions.py). These
tests change one setting at a time in the sample city's deployment file and compare: the code
versions of the whole graph (which assets change), and the refresh plan against the instance of a
real run of the whole sample city (which assets the planner rebuilds, and that it says why).
"""

from __future__ import annotations

import types
import typing
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from citymodel.config import DEFAULT_CONFIG, ROLES, Settings, SourceSettings, load_config
from citymodel.errors import ConfigError
from pipelines.definitions import build_definitions
from pipelines.settings_versions import NO_REBUILD, READS, _covered, _no_rebuild, settings_digest

#: the variant assessment (analysed as the city is); not the intake
VARIANTS = {f"variants/{a}" for a in ("model", "analysis", "comparison", "tiles", "publication")}


def _config(tmp_path: Path, changes: dict, base: Path = DEFAULT_CONFIG) -> Path:
    """The deployment file ``base`` with ``changes`` (dotted path -> value) written to tmp_path."""
    raw = yaml.safe_load(base.read_text(encoding="utf-8"))
    for path, value in changes.items():
        node = raw
        *parents, last = path.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    out = tmp_path / f"changed_{abs(hash(tuple(changes))) % 10**8}.yaml"
    out.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return out


def _versions(settings: Settings) -> dict[str, str | None]:
    graph = build_definitions(settings=settings).resolve_asset_graph()
    return {k.to_user_string(): graph.get(k).code_version for k in graph.materializable_asset_keys}


def _changed(tmp_path: Path, changes: dict) -> set[str]:
    before = _versions(load_config(DEFAULT_CONFIG))
    after = _versions(load_config(_config(tmp_path, changes)))
    return {k for k in before if before[k] != after[k]}


def _setting_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every setting of the configuration model (dotted), also those the sample city leaves unset."""
    out = []
    for name, field in model.model_fields.items():
        if field.exclude:
            continue
        path = f"{prefix}{name}"
        ann = field.annotation
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        if typing.get_origin(ann) in (typing.Union, types.UnionType) and len(args) == 1:
            ann = args[0]
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out += _setting_paths(ann, path + ".")
        elif typing.get_origin(ann) is dict and typing.get_args(ann)[1] is SourceSettings:
            for role in ROLES:
                out += _setting_paths(SourceSettings, f"{path}.{role}.")
        elif typing.get_origin(ann) is dict and field.default_factory is not None and field.default_factory():
            out += [f"{path}.{k}" for k in field.default_factory()]   # per role: quality.max_features.trees
        else:
            out.append(path)
    return out


def test_every_setting_is_read_by_an_asset_or_changes_no_result():
    paths = _setting_paths(Settings)
    assert "analysis.noise.grid_spacing_m" in paths and "sources.weather.columns" in paths  # the walk is complete
    read = [p for ps in READS.values() for p in ps]
    unplaced = [p for p in paths if not _no_rebuild(p) and not _covered(p, read)]
    assert unplaced == [], f"place these settings in READS or NO_REBUILD of pipelines/settings_versions.py: {unplaced}"
    # and nothing is declared twice over: a setting that is read is not also 'no rebuild'
    assert not [p for p in read if _covered(p, NO_REBUILD)]


def test_a_lidar_setting_changes_the_point_cloud_staging_only(tmp_path):
    assert _changed(tmp_path, {"lidar.dtm_resolution_m": 0.5}) == {"staging/point_cloud", "staging/dtm"}


def test_a_lod2_setting_changes_the_lod2_buildings_only(tmp_path):
    assert _changed(tmp_path, {"quality.max_fallback_share": 0.2}) == {"buildings/lod2"}


def test_a_noise_setting_changes_noise_and_what_reads_the_noise_settings(tmp_path):
    # the traffic change is a noise computation; the release's legends and the variants read the
    # analysis settings; nothing else (not the LoD2 buildings, not sun or solar)
    assert _changed(tmp_path, {"analysis.noise.grid_spacing_m": 5.0}) == {
        "analysis/noise", "analysis/traffic_change", "publish/release"} | VARIANTS


def test_a_column_mapping_changes_its_staging_only(tmp_path):
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    columns = dict(raw["sources"]["trees"]["columns"], height_m="hoehe_m")
    assert _changed(tmp_path, {"sources.trees.columns": columns}) == {"staging/trees"}


@pytest.mark.parametrize("path, value", [("catalog.timeout_s", 5.0), ("orchestration.max_concurrent_runs", 1),
                                         ("schedule.cron", "0 3 * * *"), ("publish.keep_releases", 2)])
def test_settings_that_change_no_result_rebuild_nothing(tmp_path, path, value):
    assert _changed(tmp_path, {path: value}) == set()


def test_the_digest_is_of_values_not_of_the_file(tmp_path):
    s = load_config(DEFAULT_CONFIG)
    again = load_config(_config(tmp_path, {"analysis.noise.grid_spacing_m": s.analysis.noise.grid_spacing_m}))
    paths = READS["analysis/noise"]
    assert settings_digest(s, paths) == settings_digest(again, paths)   # same values, other file
    assert settings_digest(s, paths) != settings_digest(
        load_config(_config(tmp_path, {"analysis.noise.reflection_order": 0})), paths)


def test_a_broken_deployment_file_fails_the_definitions_load(tmp_path):
    broken = _config(tmp_path, {"analysis.noise.grid_spacing_m": "ten"})
    with pytest.raises(ConfigError) as err:
        build_definitions(config_path=str(broken))
    assert "grid_spacing_m" in str(err.value) and str(broken) in str(err.value)


def _planned(city, settings) -> dict[str, str]:
    """``asset[tile] -> why`` of the refresh plan against the real run's instance."""
    from pipelines.refresh_runner import plan_for

    defs = build_definitions(config_path=str(city.cfg), settings=settings)
    return dict(plan_for(city.instance, settings, defs.resolve_asset_graph()).reasons)


def test_the_planner_rebuilds_what_reads_a_changed_setting_and_says_why(pipeline_city, tmp_path):
    city = pipeline_city
    base = _planned(city, city.settings)
    changed = _planned(city, load_config(_config(tmp_path, {"analysis.noise.grid_spacing_m": 5.0},
                                                 base=city.cfg)))
    new = {k: v for k, v in changed.items() if k not in base}
    own = {k.split("[")[0] for k, v in new.items() if v.startswith("deployment settings it reads changed")}
    assert own == {"analysis/noise", "analysis/traffic_change", "publish/release"}
    assert "analysis.noise" in new[next(k for k in new if k.startswith("analysis/noise["))]
    # every tile's noise, and downstream of it only what gathers the analyses
    assert {k for k in new if k.startswith("analysis/noise[")} == {f"analysis/noise[{t}]" for t in city.settings.tile_ids}
    assert {k.split("[")[0] for k in new} <= {"analysis/noise", "analysis/traffic_change", "analysis/building_values",
                                             "publish/analysis_tiles", "publish/building_tiles",  # per-building noise
                                             "publish/release", "quality/report"}
    assert not any(k.startswith(("buildings/", "staging/", "analysis/sun_hours", "analysis/solar")) for k in new)


def test_dagster_fails_the_code_location_of_a_broken_deployment_file(tmp_path):
    """What `make ui` loads, through Dagster's own loader: the code location fails with our error."""
    import subprocess
    import sys

    from conftest import PROJECT_ROOT
    from pipelines.cli import fresh_environment

    broken = _config(tmp_path, {"analysis.noise.grid_spacing_m": "ten"})
    dagster = str(Path(sys.executable).parent / "dagster")
    r = subprocess.run([dagster, "definitions", "validate", "-m", "pipelines.definitions"], cwd=PROJECT_ROOT,
                       env=fresh_environment(CITYMODEL_CONFIG=str(broken)), capture_output=True, text=True,
                       timeout=300)
    out = r.stdout + r.stderr
    assert r.returncode != 0 and "Validation for 1 code locations failed" in out, out[-2000:]
    assert f"configuration file '{broken}' is invalid" in out and "grid_spacing_m" in out and "Fix:" in out
