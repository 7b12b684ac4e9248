"""Fault injection, checks that can fail (issue #11, items 2 and 3).

Each case asserts the check result, the message (dataset, record, fix) and what it does to what is
published. Expected values come from geometry (squares, tiles, a cloud of points at one spot), not
from the code under test.
"""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from shapely.geometry import Polygon

from citymodel.config import QualitySettings
from citymodel.vector import OUTSIDE_EXTENT, validate_records
from quality.suites import quarantine_check


@pytest.fixture()
def settings_for_checks():
    from citymodel.config import CatalogSettings, LidarSettings, Settings, SourceSettings

    return Settings(name="t", extent=(500_000, 5_600_000, 500_100, 5_600_100),
                    catalog=CatalogSettings(url="catalog.jsonld"),
                    sources={"buildings": SourceSettings(dataset="alkis"), "lidar": SourceSettings(dataset="dom")},
                    lidar=LidarSettings(min_density_m2=4.0, required_classes=[2]))


def _square(x: float, y: float, w: float = 10.0) -> Polygon:
    return shapely.box(x, y, x + w, y + w)


def _buildings(rows: list[tuple[str, Polygon]]) -> gpd.GeoDataFrame:
    df = pd.DataFrame({"building_id": [r[0] for r in rows], "function_code": None,
                       "storeys": pd.array([2] * len(rows), dtype="Int64"), "roof_form": None})
    return gpd.GeoDataFrame(df, geometry=[r[1] for r in rows], crs="EPSG:25832")


# ----------------------------------------------------------------------------------------------
# A building outside the extent is quarantined with a reason (before: silently missing)

EXTENT = (1000.0, 2000.0, 1100.0, 2100.0)


def test_building_outside_the_extent_is_quarantined_with_a_reason():
    gdf = _buildings([
        ("inside", _square(1010, 2010)),
        ("far", _square(1500, 2010)),                        # wholly outside
        ("mostly_out", shapely.box(1090, 2010, 1130, 2020)),   # interior midline 1090..1130: point at x=1110
        ("mostly_in", shapely.box(1080, 2010, 1105, 2020)),    # midline 1080..1105: point at x=1092.5
        ("on_max_edge", shapely.box(1100, 2010, 1110, 2020)),  # touches maxx from outside (half-open)
    ])
    valid, q = validate_records("buildings", gdf, QualitySettings(), "alkis", extent=EXTENT)
    assert sorted(valid["building_id"]) == ["inside", "mostly_in"]
    assert sorted(q["record_id"]) == ["far", "mostly_out", "on_max_edge"]
    assert set(q["reason_codes"]) == {OUTSIDE_EXTENT}
    r = q.set_index("record_id")["reason"]
    assert r["far"].startswith("outside the extent: the footprint's representative point (1505.0, 2015.0)")
    assert "(1110.0, 2015.0) is not in extent [1000, 2000, 1100, 2100]" in r["mostly_out"]
    assert "widen 'extent'" in r["far"]
    # without an extent nothing is checked (other callers)
    valid_all, _ = validate_records("buildings", gdf, QualitySettings(), "alkis")
    assert len(valid_all) == 5


def test_outside_extent_does_not_count_as_faulty_in_the_quarantine_share():
    """A source that covers more than the city is not faulty: 3 of 5 outside, none faulty passes;
    one faulty record of the 2 inside (50 %) fails."""
    q = QualitySettings(max_quarantine_share=0.05)
    ok = quarantine_check(5, 3, q, outside_extent=3)
    assert ok["passed"] and ok["metadata"]["share"] == 0 and ok["metadata"]["outside_extent"] == 3
    bad = quarantine_check(5, 4, q, outside_extent=3)
    assert not bad["passed"] and bad["metadata"]["share"] == 0.5


# ----------------------------------------------------------------------------------------------
# The density gate: coverage of tile ∩ extent (before: every point at one spot passed)

def _write_las(path, x, y, z, cls):
    import laspy
    import numpy as np

    header = laspy.LasHeader(point_format=1, version="1.2")
    header.scales = np.array([0.01, 0.01, 0.01])
    header.offsets = np.array([float(np.floor(x.min())), float(np.floor(y.min())), 0.0])
    header.add_crs(__import__("pyproj").CRS.from_epsg(25832))
    las = laspy.LasData(header)
    las.x, las.y, las.z = x, y, z
    las.classification = cls
    las.return_number = np.ones(len(x), dtype=np.uint8)
    las.number_of_returns = np.ones(len(x), dtype=np.uint8)
    las.write(path, laz_backend=laspy.LazBackend.Lazrs)
    return path


def _uniform(bounds, density_m2, seed=3):
    import numpy as np

    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = bounds
    n = int(density_m2 * (x1 - x0) * (y1 - y0))
    return rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)


def _lidar_row(tile_id, stats):
    return {"tile_id": tile_id, "point_count": stats.point_count, "density_m2": stats.density_m2,
            "coverage_share": stats.coverage_share, "z_min_m": stats.z_min_m, "z_max_m": stats.z_max_m,
            "class_2_count": int(stats.class_counts.get("2", 0))}


def test_every_point_at_one_spot_fails_the_coverage_check(tmp_path, settings_for_checks):
    """40,000 points within 1 m² of a 100 m tile: 10,000 points per m² where there is data (the
    density check passes, as before) but one 2 m cell of 2,500 covered: coverage 0.0004."""
    import numpy as np

    from citymodel.lidar import stage_tile
    from citymodel.tiles import Tile
    from quality.suites import run_suite

    tile = Tile(500, 5600, size_m=100.0)
    x0, y0 = 500_000.0, 5_600_000.0
    rng = np.random.default_rng(1)
    n = 40_000
    x = x0 + 50.2 + rng.uniform(0, 0.9, n)
    y = y0 + 50.2 + rng.uniform(0, 0.9, n)
    z = 200.0 + rng.uniform(0, 0.5, n)
    cls = np.where(np.arange(n) % 2 == 0, 2, 1).astype(np.uint8)
    f = _write_las(tmp_path / "spot.laz", x, y, z, cls)
    stats = stage_tile([f], tile, "dom", tmp_path / "s.laz", tmp_path / "s.tif", "EPSG:25832")
    assert stats.point_count == n
    assert stats.coverage_share == pytest.approx(4.0 / 10_000)
    assert stats.density_m2 == pytest.approx(n / 4.0)                 # the old gate: far above 4/m²
    assert stats.extent_density_m2 == pytest.approx(n / 10_000)
    r = run_suite("lidar", pd.DataFrame([_lidar_row(tile.id, stats)]), settings_for_checks)
    assert r.failed == ["coverage"] and r.blocking
    assert r.expectation("coverage")["observed"]["unexpected_examples"] == [pytest.approx(0.0004)]


def test_coverage_and_density_are_measured_over_tile_and_extent(tmp_path):
    """A 100 m tile of which the extent holds the western 40 m; points at 6/m² cover the western
    60 m: within the extent everything is covered (share 1, 6/m²); without the extent the tile is
    60 % covered."""
    import numpy as np

    from citymodel.lidar import stage_tile
    from citymodel.tiles import Tile

    tile = Tile(500, 5600, size_m=100.0)
    x0, y0 = 500_000.0, 5_600_000.0
    x, y = _uniform((x0, y0, x0 + 60, y0 + 100), 6.0)
    f = _write_las(tmp_path / "west.laz", x, y, 200.0 + 0 * x, np.full(len(x), 2, dtype=np.uint8))
    inside = stage_tile([f], tile, "dom", tmp_path / "a.laz", tmp_path / "a.tif", "EPSG:25832",
                        extent=(x0 - 500, y0 - 500, x0 + 40, y0 + 500))
    assert inside.extent_area_m2 == pytest.approx(4000.0)
    assert inside.coverage_share == pytest.approx(1.0)
    assert inside.density_m2 == pytest.approx(6.0, rel=0.05)
    assert inside.extent_density_m2 == pytest.approx(6.0, rel=0.05)
    whole = stage_tile([f], tile, "dom", tmp_path / "b.laz", tmp_path / "b.tif", "EPSG:25832")
    assert whole.coverage_share == pytest.approx(0.6, abs=0.005)
    assert whole.density_m2 == pytest.approx(6.0, rel=0.05)
    assert whole.extent_density_m2 == pytest.approx(3.6, rel=0.05)
    # the extent's eastern 60 m hold no points: 40 % covered
    east = stage_tile([f], tile, "dom", tmp_path / "c.laz", tmp_path / "c.tif", "EPSG:25832",
                      extent=(x0 + 36, y0, x0 + 136, y0 + 100))
    assert east.coverage_share == pytest.approx(24 / 64, abs=0.005)


# ----------------------------------------------------------------------------------------------
# LoD1 fallbacks for lack of points block (before: 40 buildings silently became LoD1, "pass")

def test_fallbacks_for_lack_of_points_block_above_the_share():
    from citymodel.lod2.build import lacks_points
    from quality.suites import no_points_fallback_check

    assert lacks_points("too few points (3, 0.1/m²; need 20 and 2.0/m²); LoD1 from storeys")
    assert lacks_points("footprint outside the point cloud; LoD1 from official LoD2")
    assert not lacks_points("no roof plane found; LoD1 from points") and not lacks_points("")
    q = QualitySettings(max_fallback_share=0.1)
    few = "too few points (0, 0.0/m²; need 20 and 2.0/m²); LoD1 from storeys"
    # 40 of 40 buildings without points: the one-spot cloud
    ids = [f"B{i}" for i in range(40)]
    c = no_points_fallback_check(["lod1_fallback"] * 40, [few] * 40, ids, q)
    assert not c["passed"] and c["blocking"] and c["metadata"]["lacking_points"] == 40
    assert c["metadata"]["examples"][:2] == ["B0", "B1"]
    # 4 of 40 (10 %): at the limit, passes; 5 of 40 fails
    methods = ["lod1_fallback"] * 5 + ["lod2_fitted"] * 35
    reasons = [few] * 5 + [""] * 35
    assert not no_points_fallback_check(methods, reasons, ids, q)["passed"]
    assert no_points_fallback_check(methods[1:] + ["lod2_fitted"], reasons[1:] + [""], ids, q)["passed"]
    # fallbacks for other reasons do not count; 2 of 4 is above the share but below 3 buildings
    assert no_points_fallback_check(["lod1_fallback"] * 40, ["no roof plane found"] * 40, ids, q)["passed"]
    assert no_points_fallback_check(["lod1_fallback"] * 2 + ["lod2_fitted"] * 2, [few] * 2 + [""] * 2,
                                    ids[:4], q)["passed"]


def test_reconstruction_on_a_one_spot_cloud_fails_the_no_points_check(tmp_path):
    """Twelve 10 m x 10 m houses on a 100 m tile whose points all lie in one corner cell: no house
    holds a point, every one falls back for lack of points, and the blocking check fails."""
    import numpy as np

    from citymodel.lidar import stage_tile
    from citymodel.lod2.build import reconstruct_tile
    from citymodel.raster import read_geotiff
    from citymodel.tiles import Tile
    from quality.suites import no_points_fallback_check

    tile = Tile(500, 5600, size_m=100.0)
    x0, y0 = 500_000.0, 5_600_000.0
    rng = np.random.default_rng(2)
    n = 20_000
    x, y = x0 + 0.5 + rng.uniform(0, 1, n), y0 + 0.5 + rng.uniform(0, 1, n)
    f = _write_las(tmp_path / "spot.laz", x, y, 200.0 + rng.uniform(0, 0.2, n), np.full(n, 2, dtype=np.uint8))
    stage_tile([f], tile, "dom", tmp_path / "s.las", tmp_path / "s.tif", "EPSG:25832")
    houses = _buildings([(f"H{i}{j}", _square(x0 + 15 + 25 * i, y0 + 15 + 25 * j)) for i in range(3) for j in range(4)])
    results = reconstruct_tile(houses, tmp_path / "s.las", read_geotiff(tmp_path / "s.tif"), tile)
    assert len(results) == 12 and {r.method for r in results} == {"lod1_fallback"}
    c = no_points_fallback_check([r.method for r in results], [r.fallback_reason for r in results],
                                 [r.building_id for r in results], QualitySettings())
    assert not c["passed"] and c["metadata"]["lacking_points"] == 12 and c["metadata"]["share"] == 1.0


# ----------------------------------------------------------------------------------------------
# A broken tile fails alone (before: one corrupt file failed the four tiles around it too)

def _tile_file(folder, e, n, density_m2=0.02, seed=0):
    import numpy as np

    x, y = _uniform((e * 1000.0, n * 1000.0, e * 1000.0 + 1000, n * 1000.0 + 1000), density_m2, seed=seed)
    cls = np.where(np.arange(len(x)) % 3 == 0, 2, 1).astype(np.uint8)
    return _write_las(folder / f"las_32_{e}_{n}_1_th.laz", x, y, 200.0 + 0 * x, cls)


def _truncate(path, keep_share=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep_share)])
    return path


def test_unreadable_neighbour_files_cost_only_the_halo(tmp_path):
    import laspy
    import numpy as np

    from citymodel.errors import SourceDataError
    from citymodel.lidar import stage_tile
    from citymodel.lod2.build import reconstruct_tile
    from citymodel.raster import read_geotiff
    from citymodel.tiles import Tile

    tile = Tile(682, 5645)                 # 682000..683000 x 5645000..5646000, halo 25 m
    own = _tile_file(tmp_path, 682, 5645, seed=1)
    west = _tile_file(tmp_path, 681, 5645, seed=2)                        # good: feeds the halo
    east = _truncate(_tile_file(tmp_path, 683, 5645, seed=3))             # header fine, points cut
    north = tmp_path / "las_32_682_5646_1_th.laz"
    north.write_bytes(b"this is not a LAS file" * 40)                     # not even a header
    out = tmp_path / "out"
    stats = stage_tile([own, west, east, north], tile, "dom", out / "t.las", out / "t.tif", "EPSG:25832")
    gaps = {g["file"]: g for g in stats.halo_files_unreadable}
    assert sorted(gaps) == sorted([east.name, north.name])
    assert gaps[north.name]["tile"] == "32_682_5646"
    assert gaps[north.name]["missing_bounds"] == [682000.0, 5646000.0, 683000.0, 5646025.0]
    assert gaps[east.name]["tile"] == "32_683_5645"
    assert gaps[east.name]["missing_bounds"] == pytest.approx([683000, 5645000, 683025, 5646000], abs=1.0)
    assert "dom" in gaps[east.name]["error"] and east.name in gaps[east.name]["error"]
    # the staged points are the tile's own and the west halo's, nothing of the broken files
    ox, oy = (np.asarray(v) for v in (laspy.read(own).x, laspy.read(own).y))
    wx = np.asarray(laspy.read(west).x)
    staged = laspy.read(out / "t.las")
    assert stats.point_count == len(ox)
    assert len(staged.x) == len(ox) + int((wx >= 681975).sum())
    assert float(np.max(staged.x)) < 683000 and float(np.max(staged.y)) < 5646000
    # edge buildings reaching into a part of the halo without points say so; others do not
    houses = _buildings([("east_edge", shapely.box(682990, 5645500, 683004, 5645510)),   # 4 m into the gap
                         ("north_edge", shapely.box(682500, 5645992, 682510, 5646003)),
                         ("west_edge", shapely.box(681996, 5645500, 682010, 5645510)),   # west file was read
                         ("inner", _square(682500, 5645500))])
    results = {r.building_id: r for r in reconstruct_tile(houses, out / "t.las", read_geotiff(out / "t.tif"), tile,
                                                          missing_halo=stats.halo_files_unreadable)}
    assert results["east_edge"].issues.count("halo_missing:32_683_5645") == 1
    assert "halo_missing:32_682_5646" in results["north_edge"].issues
    assert not any(i.startswith("halo_missing") for i in results["west_edge"].issues + results["inner"].issues)
    assert "halo_missing:32_683_5645" in results["east_edge"].attributes()["issues"]
    # the broken file's own tile fails, naming the file and the fix
    with pytest.raises(SourceDataError) as err:
        stage_tile([east, own], Tile(683, 5645), "dom", out / "e.las", out / "e.tif", "EPSG:25832")
    assert f"dataset 'dom'" in str(err.value) and east.name in str(err.value) and "Fix:" in str(err.value)
    with pytest.raises(SourceDataError, match=north.name):
        stage_tile([north, own], Tile(682, 5646), "dom", out / "n.las", out / "n.tif", "EPSG:25832")


def test_a_broken_west_neighbour_whose_points_end_on_the_edge_costs_only_the_halo(tmp_path):
    """Tiles cut at the 1 km line: after the LAS scale the west file's last points lie on x = 682000.00,
    the east tile's min edge. Its file is still a neighbour's: when it breaks, the tile is built."""
    import numpy as np

    from citymodel.lidar import stage_tile
    from citymodel.tiles import Tile

    tile = Tile(682, 5645)
    own = _tile_file(tmp_path, 682, 5645, seed=1)
    x, y = _uniform((681000.0, 5645000.0, 682000.0, 5646000.0), 0.02, seed=2)
    x[:5] = 681999.999                                   # written as 682000.00 at a 0.01 m scale
    cls = np.where(np.arange(len(x)) % 3 == 0, 2, 1).astype(np.uint8)
    west = _truncate(_write_las(tmp_path / "las_32_681_5645_1_th.laz", x, y, 200.0 + 0 * x, cls))
    import laspy

    assert laspy.open(west).header.maxs[0] == pytest.approx(682000.0)   # the header touches the tile
    out = tmp_path / "out"
    stats = stage_tile([own, west], tile, "dom", out / "t.las", out / "t.tif", "EPSG:25832")
    assert [g["file"] for g in stats.halo_files_unreadable] == [west.name]
    assert stats.halo_files_unreadable[0]["tile"] == "32_681_5645"
    assert stats.point_count > 0


# ----------------------------------------------------------------------------------------------
# Suites measure the input as delivered (before: after quarantine, so they could not fail)

def _hundred_buildings(dup: int = 0, bowties: int = 0):
    rows = [(f"B{i:03d}", _square(500_000 + 12 * (i % 8), 5_600_000 + 12 * (i // 8))) for i in range(100)]
    for k in range(dup):                       # B001 -> B000, ...: pairs share an id
        rows[2 * k + 1] = (rows[2 * k][0], rows[2 * k + 1][1])
    for k in range(bowties):                   # self-intersecting footprints at the end
        x, y = 500_000 + 200 + 20 * k, 5_600_000
        rows[-1 - k] = (rows[-1 - k][0], Polygon([(x, y), (x + 10, y + 10), (x + 10, y), (x, y + 10)]))
    return _buildings(rows)


def test_suite_on_delivered_records_fails_where_the_quarantined_table_passed(settings_for_checks):
    from quality.suites import run_suite

    s = settings_for_checks
    delivered = _hundred_buildings(dup=1)
    valid, q = validate_records("buildings", delivered, s.quality, "alkis")
    assert len(q) == 2 and set(q["reason_codes"]) == {"duplicate_id"}
    after = run_suite("buildings", valid, s)
    assert after.failed == []                             # what the old suite saw: nothing to find
    r = run_suite("buildings", delivered, s, staged_rows=len(valid))
    assert r.failed == ["building_id_unique"] and r.blocking
    assert r.expectation("building_id_unique")["observed"]["unexpected_count"] == 2
    assert "error class duplicate_id: at most 0.0%" in r.expectation("building_id_unique")["description"]


def test_error_class_shares_come_from_the_deployment_file(settings_for_checks):
    from citymodel.config import QualitySettings
    from quality.suites import run_suite

    s = settings_for_checks
    two_bad = _hundred_buildings(bowties=2)               # 2 % invalid geometry
    r = run_suite("buildings", two_bad, s, staged_rows=98)
    assert r.failed == ["geometry_valid"]                  # default: at most 1 %
    lenient = s.model_copy(update={"quality": QualitySettings(blocking={"invalid_geometry": 0.05})})
    assert run_suite("buildings", two_bad, lenient, staged_rows=98).failed == []
    assert lenient.quality.blocking["duplicate_id"] == 0.0      # the other classes keep their defaults
    with pytest.raises(ValueError, match=r"unknown error class\(es\) \['duplicate_ids'\]"):
        QualitySettings(blocking={"duplicate_ids": 0})
    with pytest.raises(ValueError, match="must be a share between 0 and 1"):
        QualitySettings(blocking={"invalid_geometry": 5})


def test_a_table_whose_every_record_is_quarantined_is_empty(settings_for_checks):
    from quality.suites import run_suite

    r = run_suite("buildings", _hundred_buildings(), settings_for_checks, staged_rows=0)
    assert r.failed == ["not_empty"]
    assert r.expectation("not_empty")["observed"] == {"delivered_records": 100, "staged_records": 0}


# ----------------------------------------------------------------------------------------------
# Skipped checks are reported as skipped, not passed

def test_skipped_checks_say_skipped_in_dagster_the_report_and_the_release():
    import dagster as dg

    from assets.common import check_status, skipped_check
    from citymodel.release.checks import evaluate_checks
    from quality.report import build_report, render_html

    key = dg.AssetKey(["buildings", "model"])
    r = skipped_check(key, "cityjson_schema", "no CityJSON 2.0.2 schemas")
    assert r.passed and check_status(r.passed, r.metadata) == "skipped"
    assert r.metadata["reason"].value == "no CityJSON 2.0.2 schemas"
    # as the event log gives it back: MetadataValues
    assert check_status(True, {"status": dg.MetadataValue.text("skipped")}) == "skipped"
    assert check_status(True, {}) == "pass" and check_status(False, None) == "fail"
    # the release's check list
    _, _, rows = evaluate_checks([{"name": "buildings/model/cityjson_schema", "passed": True, "blocking": True,
                                   "status": "skipped"},
                                  {"name": "staging/buildings/geometry_valid", "passed": True, "blocking": True}])
    assert [row["status"] for row in rows] == ["skipped", "pass"]
    # the quality report: a role left out of the deployment file is an entry that says skipped
    report = build_report([{"dataset": "viewpoints", "role": "viewpoints", "tile": None, "suite": None,
                            "checks": [], "skipped": "role not configured in the deployment file (sources)"},
                           {"dataset": "alkis", "role": "buildings", "tile": None, "suite": None,
                            "checks": [{"name": "quarantine_share", "passed": True, "severity": "ERROR"}]}], None)
    by_role = {e["role"]: e for e in report["entries"]}
    assert by_role["viewpoints"]["status"] == "skipped" and by_role["buildings"]["status"] == "pass"
    assert report["summary"]["skipped"] == 1 and report["summary"]["pass"] == 1 and report["status"] == "pass"
    page = render_html(report)
    assert "Skipped: role not configured in the deployment file (sources)" in page and "1 skipped" in page


# ----------------------------------------------------------------------------------------------
# The same faults through the project's own steps (sources -> staging), as `citymodel run` runs
# them: the check results the release gathers

TILE_ID = "32_682_5645"      # of the extent test_faults_input.EXTENT: its part is 682000..682300 x 5645000..5645300


def _run_tile(cfg, keys, tile_id, instance):
    import dagster as dg

    from pipelines.definitions import build_definitions

    defs = build_definitions(config_path=str(cfg))
    instance.add_dynamic_partitions("tiles", ["32_681_5644", "32_681_5645", "32_682_5644", "32_682_5645"])
    job = defs.resolve_job_def("city_refresh")
    return job.execute_in_process(instance=instance, asset_selection=[dg.AssetKey(k) for k in keys],
                                  partition_key=tile_id, raise_on_error=False)


def _checks(result) -> dict:
    """check name -> (passed, metadata) of a run's check evaluations."""
    return {e.check_name: (e.passed, e.metadata) for e in result.get_asset_check_evaluations()}


def _lidar_catalog(site, files: dict, cfg_dir, server, **lidar):
    import yaml

    from test_faults_input import dist, tiny_config, write_catalog

    write_catalog(site, {"lidar": [dist(f"data/{name}", "LAZ", data) for name, data in files.items()]})
    cfg = tiny_config(cfg_dir, server.url("catalog.jsonld"))
    raw = yaml.safe_load(cfg.read_text())
    raw["lidar"] = {"min_density_m2": 2.0, **lidar}
    cfg.write_text(yaml.safe_dump(raw, sort_keys=False))
    return cfg


@pytest.fixture()
def site(tmp_path):
    (tmp_path / "site" / "data").mkdir(parents=True)
    return tmp_path / "site"


@pytest.fixture()
def server(site):
    from catalog_server import CatalogServer

    with CatalogServer(site) as srv:
        yield srv


def test_one_spot_tile_fails_its_blocking_coverage_check_in_the_step(site, server, tmp_path):
    import dagster as dg
    import numpy as np

    rng = np.random.default_rng(4)
    n = 30_000
    x, y = 682_100.2 + rng.uniform(0, 0.8, n), 5_645_100.2 + rng.uniform(0, 0.8, n)
    spot = _write_las(site / "data" / f"las_{TILE_ID}_1_th.laz", x, y, 200 + rng.uniform(0, 1, n),
                      np.where(np.arange(n) % 2 == 0, 2, 1).astype(np.uint8))
    cfg = _lidar_catalog(site, {spot.name: spot.read_bytes()}, tmp_path, server)
    with dg.instance_for_test() as instance:
        result = _run_tile(cfg, [["sources", "lidar"], ["staging", "point_cloud"], ["staging", "dtm"]],
                           TILE_ID, instance)
        checks = _checks(result)
        graph = __import__("pipelines.definitions", fromlist=["x"]).build_definitions(
            config_path=str(cfg)).resolve_asset_graph()
    assert checks["density"][0] is True                  # the old gate: 30,000 points on 4 m²
    passed, meta = checks["coverage"]
    assert passed is False
    details = meta["details"].value
    assert details["observed"]["unexpected_examples"] == [pytest.approx(4.0 / 90_000)]
    spec = next(graph.get_check_spec(k) for k in graph.asset_check_keys
                if k.name == "coverage" and k.asset_key == dg.AssetKey(["staging", "point_cloud"]))
    assert spec.blocking                                  # a failed blocking check stops the release


def test_unreadable_neighbour_file_leaves_the_tile_built_with_a_warning(site, server, tmp_path):
    """Before: the neighbour's corrupt file failed this tile's staging too (and the three others
    around it). Now the tile is staged from what is readable; a warning check names the file."""
    import dagster as dg
    import numpy as np

    x, y = _uniform((682_000, 5_645_000, 682_300, 5_645_300), 3.0, seed=5)
    own = _write_las(site / "data" / f"las_{TILE_ID}_1_th.laz", x, y, 200 + 0 * x,
                     np.where(np.arange(len(x)) % 2 == 0, 2, 1).astype(np.uint8))
    broken = site / "data" / "las_32_681_5645_1_th.laz"
    broken.write_bytes(b"LASF" + b"\x00" * 300)           # a LAS signature and nothing readable
    cfg = _lidar_catalog(site, {own.name: own.read_bytes(), broken.name: broken.read_bytes()}, tmp_path, server)
    with dg.instance_for_test() as instance:
        result = _run_tile(cfg, [["sources", "lidar"], ["staging", "point_cloud"], ["staging", "dtm"]],
                           TILE_ID, instance)
        assert result.success
        checks = _checks(result)
    assert checks["coverage"][0] and checks["density"][0]
    passed, meta = checks["halo_files_readable"]
    assert passed is False
    [gap] = meta["files"].value
    assert gap["file"] == broken.name and gap["tile"] == "32_681_5645"
    assert gap["missing_bounds"] == [681975.0, 5645000.0, 682000.0, 5646000.0]   # its tile ∩ tile + halo
    assert "dataset 'lidar'" in gap["error"] and broken.name in gap["error"]


def test_building_outside_the_extent_is_quarantined_by_the_staging_step(site, server, tmp_path):
    import dagster as dg
    import duckdb
    import geopandas as gpd
    import pandas as pd

    from test_faults_input import dist, run_assets, tiny_config, tiny_squares, write_catalog

    path = tiny_squares(site / "data" / "gebaeude.gpkg", 3, side_m=10.0)      # at 681800.. (inside)
    frame = gpd.read_file(path)
    far = frame.iloc[:1].copy()
    far["gml_id"] = "FAR"
    far["geometry"] = [shapely.box(690_000, 5_645_000, 690_010, 5_645_010)]   # 7.7 km east of the extent
    gpd.GeoDataFrame(pd.concat([frame, far]), crs="EPSG:25832").to_file(path, driver="GPKG", layer="gebaeude")
    write_catalog(site, {"buildings": [dist("data/gebaeude.gpkg", "GPKG", path.read_bytes())]})
    cfg = tiny_config(tmp_path, server.url("catalog.jsonld"))
    with dg.instance_for_test() as instance:
        result = run_assets(cfg, [["sources", "buildings"], ["staging", "buildings"]], instance)
    assert result.success
    checks = _checks(result)
    assert checks["quarantine_share"][0] is True and checks["quarantine_share"][1]["details"].value["outside_extent"] == 1
    staged = gpd.read_parquet(tmp_path / "out" / "staging" / "buildings.parquet")
    assert sorted(staged["building_id"]) == ["T0", "T1", "T2"]
    with duckdb.connect(str(tmp_path / "out" / "warehouse.duckdb"), read_only=True) as con:
        q = con.execute("SELECT record_id, reason, reason_codes FROM quarantine WHERE role = 'buildings'").fetchall()
    assert [(r[0], r[2]) for r in q] == [("FAR", "outside_extent")]
    assert "outside the extent" in q[0][1] and "(690005.0, 5645005.0)" in q[0][1]
