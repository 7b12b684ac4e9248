"""Change detection against the official LoD2 on hand-made footprints of known heights."""

import geopandas as gpd
import shapely

from citymodel.lod2.compare import compare_with_official, coverage_from_names


def test_statuses_from_known_changes():
    box = shapely.box
    current = gpd.GeoDataFrame({
        "building_id": ["same", "higher", "extended", "brand_new", "far_away", "renumbered"],
        "top_z_m": [210.0, 216.0, 210.0, 205.0, 205.0, 208.0],
        "geometry": [box(0, 0, 10, 10), box(20, 0, 30, 10), box(40, 0, 60, 10), box(32, 12, 38, 18),
                     box(500, 500, 510, 510), box(20, 20, 30, 30)]}, crs="EPSG:25832")
    official = gpd.GeoDataFrame({
        "building_id": ["same", "higher", "extended", "gone", "OLD-7"], "external_id": [None] * 5,
        "max_z_m": [210.3, 212.0, 210.0, 209.0, 208.2],
        "geometry": [box(0, 0, 10, 10), box(20, 0, 30, 10), box(40, 0, 50, 10), box(40, 20, 50, 30),
                     box(20.2, 20, 30.2, 30)]}, crs="EPSG:25832")
    r = compare_with_official(current, official).set_index(["building_id", "official_id"], drop=False)
    status = {(b if isinstance(b, str) else o): s for b, o, s in zip(r.building_id, r.official_id, r.status)}
    assert status == {"same": "unchanged", "higher": "changed_height", "extended": "changed_footprint",
                      "brand_new": "new", "far_away": "not_covered", "gone": "demolished",
                      "renumbered": "unchanged"}
    higher = r[r.building_id == "higher"].iloc[0]
    assert abs(higher.height_diff_m - 4.0) < 1e-9
    assert r[r.building_id == "renumbered"].iloc[0].matched_by == "overlap"
    assert abs(r[r.building_id == "extended"].iloc[0].iou - 0.5) < 1e-9


def test_quarantined_footprints_are_not_reported_as_demolished():
    box = shapely.box
    current = gpd.GeoDataFrame({"building_id": ["a"], "top_z_m": [10.0], "geometry": [box(0, 0, 5, 5)]})
    official = gpd.GeoDataFrame({"building_id": ["a", "q", "gone"], "external_id": [None] * 3,
                                 "max_z_m": [10.0, 10.0, 10.0],
                                 "geometry": [box(0, 0, 5, 5), box(10, 0, 15, 5), box(20, 0, 25, 5)]})
    r = compare_with_official(current, official, excluded_ids=["q"])
    assert dict(zip(r.official_id, r.status)) == {"a": "unchanged", "q": "not_compared", "gone": "demolished"}


def test_coverage_from_thuringian_tile_names():
    cov = coverage_from_names(["LoD2_32_680_5644_2_TH.gml"])
    assert cov.bounds == (680000.0, 5644000.0, 682000.0, 5646000.0)
    assert coverage_from_names(["berlin.gml"]) is None
