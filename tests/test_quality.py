"""Great-expectations suites (each passes on a good frame, fails on exactly the defect put in) and
the quality report files."""

from __future__ import annotations

import json
import sys

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import LineString, Point, Polygon

from citymodel.config import CatalogSettings, LidarSettings, QualitySettings, Settings, SourceSettings
from citymodel.vector import validate_records
from quality.report import write_report
from quality.suites import SUITE_ROLES, check_specs, quarantine_check, run_suite, suite_specs

CRS = "EPSG:25832"


@pytest.fixture(scope="module")
def settings() -> Settings:
    return Settings(name="test", processing_crs=CRS, extent=(681000, 5644000, 683000, 5646000),
                    catalog=CatalogSettings(url="catalog.jsonld"),
                    sources={"buildings": SourceSettings(dataset="alkis"), "lidar": SourceSettings(dataset="dom")},
                    quality=QualitySettings(storeys_max=60, tree_height_max_m=60),
                    lidar=LidarSettings(min_density_m2=4.0, required_classes=[2]))


def _box(x, y, w=10.0):
    return Polygon([(x, y), (x + w, y), (x + w, y + w), (x, y + w)])


def _s(values):
    return pd.Series(values, dtype="str")


def good_frame(role: str) -> gpd.GeoDataFrame:
    """Three clean records of a role, typed like the output of citymodel.vector.read_role."""
    if role == "buildings":
        data = {"building_id": _s(["b1", "b2", "b3"]), "function_code": _s(["31001", "31001", "2000"]),
                "storeys": pd.array([2, 5, 0], dtype="Int64"), "roof_form": _s(["3100", "1000", "3200"])}
        geom = [_box(0, 0), _box(20, 0), _box(40, 0)]
    elif role == "trees":
        data = {"tree_id": _s(["t1", "t2", "t3"]), "height_m": [12.0, 25.5, 8.0],
                "crown_diameter_m": [6.0, 12.0, 3.0], "trunk_circumference_cm": [120.0, 250.0, 40.0],
                "species": _s(["Tilia cordata", "Acer platanoides", "Quercus robur"]),
                "vitality": _s(["vital", "geschwaecht", "vital"])}
        geom = [Point(0, 0), Point(5, 5), Point(9, 1)]
    elif role == "roads":
        data = {"road_id": _s(["r1", "r2", "r3"]), "name": _s(["Löbdergraben", "Saalbahnhofstr.", "Am Anger"]),
                "dtv": [18000.0, np.nan, 6000.0], "m_day": [1000.0, 400.0, 350.0],
                "m_night": [150.0, 50.0, 40.0], "p1_day": [3.0, 2.0, 1.0], "p2_day": [2.0, 1.0, 0.5],
                "pmc_day": [1.0, 1.0, 1.0], "p1_night": [2.0, 2.0, 1.0], "p2_night": [3.0, 1.0, 0.0],
                "pmc_night": [0.5, 0.5, 0.5], "speed_car_kmh": [50.0, 30.0, 50.0],
                "speed_truck_kmh": [50.0, 30.0, 50.0], "surface": _s(["SMA", "AC11", "Pflaster"])}
        geom = [LineString([(0, 0), (100, 0)]), LineString([(0, 10), (50, 60)]), LineString([(5, 5), (5, 90)])]
    elif role == "flood_zones":
        data = {"zone_id": _s(["z1", "z2", "z3"]), "scenario": _s(["HQ100", "HQextrem", "HQ100"]),
                "water_level_m": [148.2, 149.0, 150.5]}
        geom = [_box(0, 0, 50), _box(100, 0, 50), _box(200, 0, 50)]
    elif role == "viewpoints":
        data = {"viewpoint_id": _s(["v1", "v2", "v3"]), "name": _s(["Markt", "JenTower", "Fuchsturm"]),
                "kind": _s(["observer", "target", "target"]), "eye_height_m": [1.6, 0.0, 0.0],
                "target_id": _s(["v2", None, None])}
        geom = [Point(0, 0), Point(500, 100), Point(900, 800)]
    else:
        raise KeyError(role)
    return gpd.GeoDataFrame(pd.DataFrame(data), geometry=geom, crs=CRS)


def good_lidar() -> pd.DataFrame:
    return pd.DataFrame({"tile_id": ["32_681_5644", "32_682_5644"], "point_count": [14_000_000, 9_000_000],
                         "density_m2": [14.0, 9.0], "coverage_share": [0.99, 0.93],
                         "z_min_m": [141.2, 150.0], "z_max_m": [212.9, 240.3],
                         "class_2_count": [5_100_000, 3_000_000]})


def _failing(result) -> list[str]:
    return sorted(result.failed + result.warnings)


VECTOR_ROLES = ["buildings", "trees", "roads", "flood_zones", "viewpoints"]


@pytest.mark.parametrize("role", VECTOR_ROLES)
def test_suite_passes_on_good_frame(role, settings):
    r = run_suite(role, good_frame(role), settings)
    assert _failing(r) == [], [e for e in r.expectations if not e["success"]]
    assert r.success and not r.blocking and r.status == "pass" and r.row_count == 3
    assert [e["name"] for e in r.expectations] == [s.name for s in suite_specs(role, settings)]


def test_lidar_suite_passes_on_good_stats(settings):
    r = run_suite("lidar", good_lidar(), settings)
    assert _failing(r) == [] and r.status == "pass"


def _dup_id(g):
    g.loc[2, "building_id"] = "b1"
    return g


def _bowtie(g):
    g.loc[1, "geometry"] = Polygon([(0, 0), (10, 10), (10, 0), (0, 10)])
    return g


def _float_storeys(g):
    g["storeys"] = g["storeys"].astype("float64")
    return g


def _missing_column(g):
    return g.drop(columns=["function_code"])


def _tree_75(g):
    g.loc[0, "height_m"] = 75.0
    return g


def _line_tree(g):
    g.loc[1, "geometry"] = LineString([(0, 0), (1, 1)])
    return g


def _neg_traffic(g):
    g.loc[1, "m_night"] = -3.0
    return g


def _share_120(g):
    g.loc[0, "p2_day"] = 120.0
    return g


def _no_level(g):
    g.loc[1, "water_level_m"] = np.nan
    return g


def _null_id(g):
    g.loc[0, "zone_id"] = np.nan
    return g


def _other_crs(g):
    return g.to_crs("EPSG:25833")


def _bad_kind(g):
    g.loc[0, "kind"] = "tower"
    return g


DEFECTS = [
    ("buildings", _dup_id, "building_id_unique", True),
    ("buildings", _bowtie, "geometry_valid", True),
    ("buildings", _float_storeys, "type_storeys", True),
    ("trees", _tree_75, "height_m_range", False),
    ("trees", _line_tree, "geometry_type", True),
    ("roads", _neg_traffic, "m_night_range", False),
    ("roads", _share_120, "p2_day_range", False),
    ("flood_zones", _no_level, "water_level_m_not_null", True),
    ("flood_zones", _null_id, "zone_id_not_null", True),
    ("viewpoints", _other_crs, "crs_is_processing_crs", True),
    ("viewpoints", _bad_kind, "kind_known", False),
]


@pytest.mark.parametrize("role,defect,expected,blocking", DEFECTS, ids=[d[2] for d in DEFECTS])
def test_suite_fails_on_exactly_the_defect(role, defect, expected, blocking, settings):
    r = run_suite(role, defect(good_frame(role)), settings)
    assert _failing(r) == [expected]
    assert r.blocking is blocking
    assert r.status == ("fail" if blocking else "warn")
    e = r.expectation(expected)
    assert e["success"] is False and e["severity"] == ("ERROR" if blocking else "WARN")


def test_missing_column_fails_schema_and_its_type(settings):
    r = run_suite("buildings", _missing_column(good_frame("buildings")), settings)
    assert _failing(r) == ["function_code_present_share", "schema_columns", "type_function_code"]
    assert "function_code" in json.dumps(r.expectation("schema_columns")["observed"])


def test_missing_optional_attribute_only_warns(settings):
    g = good_frame("buildings")
    g["roof_form"] = pd.Series([None, None, "3100"], dtype="str")
    r = run_suite("buildings", g, settings)
    assert _failing(r) == ["roof_form_present_share"] and r.status == "warn" and not r.blocking


def test_empty_frame_is_blocking(settings):
    r = run_suite("trees", good_frame("trees").iloc[:0], settings)
    assert _failing(r) == ["not_empty"] and r.blocking


@pytest.mark.parametrize("column,value,expected", [
    ("density_m2", 3.5, "density"),
    ("coverage_share", 0.0001, "coverage"),
    ("class_2_count", 0, "class_2_present"),
    ("z_max_m", 12_000.0, "z_max_plausible"),
])
def test_lidar_suite_defects(column, value, expected, settings):
    stats = good_lidar()
    stats.loc[1, column] = value
    r = run_suite("lidar", stats, settings)
    assert _failing(r) == [expected]
    assert r.blocking is (expected != "z_max_plausible")


def test_lidar_density_threshold_follows_settings(settings):
    strict = settings.model_copy(update={"lidar": LidarSettings(min_density_m2=10.0)})
    r = run_suite("lidar", good_lidar(), strict)  # 9 points/m² < 10
    assert _failing(r) == ["density"]
    assert r.expectation("density")["observed"]["unexpected_examples"] == [9.0]


def test_check_results_are_dagster_shaped(settings):
    r = run_suite("buildings", _dup_id(good_frame("buildings")), settings)
    checks = r.check_results()
    assert [c["name"] for c in checks] == [s["name"] for s in check_specs("buildings", settings)]
    c = {c["name"]: c for c in checks}["building_id_unique"]
    assert c["passed"] is False and c["severity"] == "ERROR" and c["blocking"] is True
    json.dumps(checks)  # metadata is JSON-safe
    for c in checks:
        assert c["name"].replace("_", "").isalnum() and c["name"].islower()


def test_specs_need_no_great_expectations(settings, monkeypatch):
    """Declaring checks (Dagster load time) must not import great-expectations (3 s)."""
    import importlib.util

    import quality.suites as mod

    monkeypatch.setitem(sys.modules, "great_expectations", None)  # any import of it now fails
    spec = importlib.util.spec_from_file_location("suites_without_gx", mod.__file__)
    fresh = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "suites_without_gx", fresh)
    spec.loader.exec_module(fresh)
    for role in fresh.SUITE_ROLES:
        assert fresh.check_specs(role, settings)
    with pytest.raises(ImportError):
        import great_expectations  # noqa: F401  (the guard works)


def test_quarantine_share_check(settings):
    # limit 5 %: 5 of 100 passes, 6 of 100 fails
    assert quarantine_check(100, 5, settings.quality)["passed"] is True
    c = quarantine_check(100, 6, settings.quality)
    assert c["passed"] is False and c["severity"] == "ERROR" and c["metadata"]["share"] == 0.06
    assert quarantine_check(0, 0, settings.quality)["passed"] is True
    names = [s["name"] for s in check_specs("trees", settings, include_quarantine=True)]
    assert names[-1] == "quarantine_share" and len(names) == len(set(names))


def test_all_roles_have_suites(settings):
    for role in SUITE_ROLES:
        names = [s.name for s in suite_specs(role, settings)]
        assert len(names) == len(set(names))
    with pytest.raises(KeyError, match="lod2_reference"):
        suite_specs("lod2_reference", settings)


# ------------------------------------------------------------------------------------------------
# Report

def test_report_files(tmp_path, settings):
    buildings = good_frame("buildings")
    buildings = pd.concat([buildings, gpd.GeoDataFrame(
        {"building_id": _s(["bad-storeys", "b1"]), "function_code": _s(["31001", "31001"]),
         "storeys": pd.array([99, 1], dtype="Int64"), "roof_form": _s(["1000", "1000"])},
        geometry=[_box(60, 0), _box(80, 0)], crs=CRS)], ignore_index=True)
    valid, quarantine = validate_records("buildings", buildings, settings.quality, dataset_id="alkis")
    assert sorted(quarantine["record_id"]) == ["b1", "b1", "bad-storeys"]
    r_buildings = run_suite("buildings", valid, settings)
    r_trees = run_suite("trees", _tree_75(good_frame("trees")), settings)
    r_lidar = run_suite("lidar", good_lidar().assign(density_m2=[14.0, 2.0]), settings)
    results = [
        {"dataset": "alkis", "role": "buildings", "suite": r_buildings,
         "counts": {"records": len(buildings), "valid": len(valid), "quarantined": len(quarantine)},
         "checks": [{"name": "quarantine_share", "passed": False, "severity": "ERROR",
                     "description": "quarantined share <= 5 %", "metadata": {"share": 0.6}}]},
        {"dataset": "baumkataster", "role": "trees", "suite": r_trees.to_dict(), "counts": {"records": 3}},
        {"dataset": "32_682_5644", "role": "lidar", "tile": "32_682_5644", "suite": r_lidar},
    ]
    json_path, html_path = write_report(results, quarantine, tmp_path / "quality")
    assert json_path.name == "report.json" and html_path.name == "report.html"
    assert sorted(p.name for p in (tmp_path / "quality").iterdir()) == ["report.html", "report.json"]
    rep = json.loads(json_path.read_text(encoding="utf-8"))
    assert rep["status"] == "fail"
    assert rep["summary"]["fail"] == 2 and rep["summary"]["warn"] == 1 and rep["summary"]["quarantined"] == 3
    assert "alkis/quarantine_share" in rep["summary"]["blocking_failures"]
    assert "32_682_5644/32_682_5644/density" in rep["summary"]["blocking_failures"]
    entries = {e["dataset"]: e for e in rep["entries"]}
    assert entries["alkis"]["quarantine"] == {"total": 3, "by_reason": {"duplicate_id": 2, "out_of_range": 1}}
    assert entries["baumkataster"]["status"] == "warn"
    trees_exp = {e["name"]: e for e in entries["baumkataster"]["suite"]["expectations"]}
    assert trees_exp["height_m_range"]["success"] is False
    assert rep["quarantine"]["by_reason"] == {"duplicate_id": 2, "out_of_range": 1}
    assert {r["record_id"] for r in rep["quarantine"]["records"]} == {"b1", "bad-storeys"}

    page = html_path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    for needle in ("height_m_range", "density", "quarantine_share", "bad-storeys", "b1",
                   "storeys = 99 out of range", "duplicate building_id"):
        assert needle in page
    assert "<script" not in page and "<link" not in page and "http" not in page.lower().replace(
        "http-equiv", "")


def test_report_without_anything_passes(tmp_path):
    json_path, html_path = write_report([], None, tmp_path)
    rep = json.loads(json_path.read_text())
    assert rep["status"] == "pass" and rep["quarantine"]["total"] == 0
    assert "No record was quarantined" in html_path.read_text()


def test_report_result_without_dataset_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="'dataset'"):
        write_report([{"role": "trees"}], None, tmp_path)
    assert not list(tmp_path.iterdir())


def test_report_summarises_the_buildings(tmp_path):
    """The buildings section: counts, shares and the truth-free point-to-roof distances, worked by hand."""
    from citymodel.lod2.summary import quality_summary

    table = pd.DataFrame({
        "building_id": ["a", "b", "c", "d", "e"],
        "method": ["lod2_fitted", "lod2_fitted", "lod2_fitted", "lod1_fallback", "rejected"],
        "validity_codes": ["", "", "104", "", ""],
        "roofType": [3100, 5000, 3100, 1000, None],
        "height_source": ["points", "points", "points", "storeys", ""],
        "structure": ["", "slender", "", "", ""],
        "point_to_roof_median_m": [0.02, 0.05, 0.30, 1.5, None],
        "point_to_roof_p90_m": [0.05, 12.0, 0.80, 2.5, None],
    })
    s = quality_summary(table)
    assert s["buildings"] == 5 and s["methods"] == {"lod2_fitted": 3, "lod1_fallback": 1, "rejected": 1}
    assert s["valid_share"] == 0.75 and s["lod1_fallback_share"] == 0.25      # of the 4 built
    assert s["height_sources"] == {"storeys": 1} and s["slender"] == 1
    assert s["roof_types"] == {"1000": 1, "3100": 2, "5000": 1}
    d = s["point_to_roof"]
    assert d["buildings"] == 4
    assert d["median_of_medians_m"] == pytest.approx(np.median([0.02, 0.05, 0.30, 1.5]))
    assert d["median_p90_m"] == pytest.approx(np.median([0.05, 12.0, 0.80, 2.5]))
    assert d["far_share"] == 0.5                                             # 12.0 and 2.5 m > 1 m
    assert [r["building_id"] for r in d["farthest"]] == ["b", "d", "c", "a"]
    json_path, html_path = write_report([], None, tmp_path, buildings=s)
    report = json.loads(json_path.read_text())
    assert report["buildings"]["point_to_roof"]["farthest"][0]["building_id"] == "b"
    page = html_path.read_text()
    assert "Buildings (LoD2)" in page and "Distance of the points to their roof" in page and "<code>b</code>" in page
    # without buildings the report has no such section
    json_path, html_path = write_report([], None, tmp_path / "none")
    assert "buildings" not in json.loads(json_path.read_text()) and "Buildings (LoD2)" not in html_path.read_text()


def test_report_covers_the_model_details_and_the_analysis_checks(tmp_path):
    """Roof models, fallbacks with their reasons, roof fit errors and validity codes counted from a
    model table made here (expected numbers counted by hand), and the analysis checks listed."""
    from quality.report import model_details

    model = pd.DataFrame({
        "method": ["lod2_fitted"] * 6 + ["lod1_fallback"] * 3 + ["rejected"],
        "roof_model": ["parametric"] * 5 + ["generic"] + ["lod1"] * 3 + [""],
        "fallback_reason": [None] * 6 + ["too few roof points", "too few roof points", "no points", "empty footprint"],
        "roof_rmse_m": [0.1, 0.2, 0.3, 0.4, 0.5, 1.0] + [np.nan] * 4,
        "validity_codes": [""] * 7 + [[], "[203]", ["203", "104"]],
    })
    m = model_details(model)
    assert m["buildings"] == 10
    assert m["roof_models"] == {"parametric": 5, "lod1": 3, "generic": 1}
    assert m["fallbacks"] == {"count": 3, "by_reason": {"too few roof points": 2, "no points": 1}}
    assert m["roof_rmse_m"]["count"] == 6 and m["roof_rmse_m"]["median"] == pytest.approx(0.35)
    assert m["roof_rmse_m"]["max"] == 1.0
    assert m["validity"] == {"valid": 8, "by_code": {"203": 2, "104": 1}}
    checks = [{"asset": "analysis/noise", "name": "levels_plausible", "partition": "32_682_5645", "passed": False,
               "blocking": False, "description": "levels within 0..120 dB"},
              {"asset": "buildings/model", "name": "valid_share", "partition": None, "passed": True,
               "blocking": True, "description": "share of valid solids"}]
    json_path, html_path = write_report([], None, tmp_path, model=m, analysis_checks=checks)
    report = json.loads(json_path.read_text(encoding="utf-8"))
    assert report["model"]["fallbacks"]["count"] == 3
    assert report["analysis_checks"]["total"] == 2 and report["analysis_checks"]["failed"] == 1
    assert report["summary"]["blocking_failures"] == []  # reported, not judged here (the release checks them)
    page = html_path.read_text(encoding="utf-8")
    assert "3D model: fits, fallbacks, validity" in page and "too few roof points: 2" in page
    assert "levels_plausible" in page and "Roof fit RMSE" in page
