"""Staging of the vector roles: readers, CRS rules, axis order, record validation with quarantine.

Expected coordinates come from pyproj transformers built independently in the tests (for EPSG:3044
in its authority axis order, northing first), expected validity from shapely on the raw file.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import LineString, Point, Polygon

from citymodel.config import QualitySettings, SourceSettings
from citymodel.errors import ConfigError, CRSError, SourceDataError
from citymodel.vector import (QUARANTINE_COLUMNS, frame_summary, read_role, validate_records)

# a building footprint near Jena's centre in EPSG:25833 (UTM 33N): a 20 m x 10 m rectangle
SQUARE_25833 = [(239000.0, 5646000.0), (239020.0, 5646000.0), (239020.0, 5646010.0), (239000.0, 5646010.0)]


def _feature_collection(features, crs_name=None):
    doc = {"type": "FeatureCollection", "features": features}
    if crs_name:
        doc["crs"] = {"type": "name", "properties": {"name": crs_name}}
    return doc


def _poly_feature(coords, **props):
    ring = [list(c) for c in coords] + [list(coords[0])]
    return {"type": "Feature", "properties": props, "geometry": {"type": "Polygon", "coordinates": [ring]}}


def _write_json(path: Path, doc) -> Path:
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def _exterior(gdf, i=0):
    return np.asarray(gdf.geometry.iloc[i].exterior.coords)[:-1]


# ------------------------------------------------------------------------------------------------
# Readers and reprojection

def test_geojson_legacy_crs_member_reprojected(tmp_path):
    path = _write_json(tmp_path / "b.geojson", _feature_collection(
        [_poly_feature(SQUARE_25833, gml_id="DETHL1", gebaeudefunktion="31001", anzahl_og=3, dachform="3100",
                       baujahr=1910)],
        "urn:ogc:def:crs:EPSG::25833"))
    gdf = read_role("buildings", path, SourceSettings(dataset="alkis"), "EPSG:25832")
    t = Transformer.from_crs("EPSG:25833", "EPSG:25832", always_xy=True)
    ex, ey = t.transform(*np.array(SQUARE_25833).T)
    np.testing.assert_allclose(_exterior(gdf), np.column_stack([ex, ey]), atol=1e-6)
    row = gdf.iloc[0]
    assert gdf.crs.to_epsg() == 25832
    assert row["building_id"] == "DETHL1" and row["function_code"] == "31001"
    assert row["storeys"] == 3 and str(gdf["storeys"].dtype) == "Int64"
    assert row["roof_form"] == "3100"
    assert row["src_baujahr"] == 1910  # extra source column kept with prefix
    assert {"gml_id", "anzahl_og"}.isdisjoint(gdf.columns)


def test_geopackage_with_column_mapping_from_wgs84(tmp_path):
    lonlat = [(11.58, 50.92), (11.5803, 50.92), (11.5803, 50.9202), (11.58, 50.9202)]
    src = gpd.GeoDataFrame({"OBJID": ["A1", "A2"], "FKT": [31001, 2000], "GESCH": [2.0, None]},
                           geometry=[Polygon(lonlat), Polygon([(x + 0.001, y) for x, y in lonlat])],
                           crs="EPSG:4326")
    path = tmp_path / "b.gpkg"
    src.to_file(path, layer="gebaeude", driver="GPKG")
    settings = SourceSettings(dataset="alkis", columns={"building_id": "OBJID", "function_code": "FKT",
                                                        "storeys": "GESCH"})
    gdf = read_role("buildings", path, settings, "EPSG:25832")
    t = Transformer.from_crs("EPSG:4326", "EPSG:25832", always_xy=True)
    ex, ey = t.transform(*np.array(lonlat).T)
    np.testing.assert_allclose(_exterior(gdf), np.column_stack([ex, ey]), atol=1e-4)
    assert gdf["building_id"].tolist() == ["A1", "A2"]
    assert gdf["function_code"].tolist() == ["31001", "2000"]  # integer codes as text, no ".0"
    assert gdf["storeys"].iloc[0] == 2 and pd.isna(gdf["storeys"].iloc[1])
    assert gdf["roof_form"].isna().all()  # absent optional column -> nulls


def test_geopackage_several_layers_need_layer_key(tmp_path):
    g = gpd.GeoDataFrame({"gml_id": ["a"]}, geometry=[Polygon(SQUARE_25833)], crs="EPSG:25833")
    path = tmp_path / "two.gpkg"
    g.to_file(path, layer="one", driver="GPKG")
    g.to_file(path, layer="two", driver="GPKG")
    with pytest.raises(SourceDataError, match=r"sources\.buildings\.layer"):
        read_role("buildings", path, SourceSettings(dataset="alkis"), "EPSG:25832")
    gdf = read_role("buildings", path, SourceSettings(dataset="alkis", layer="two"), "EPSG:25832")
    assert len(gdf) == 1


def _zip_shapefile(tmp_path: Path, crs: str | None, drop=(".prj",)) -> Path:
    folder = tmp_path / "shp"
    folder.mkdir(exist_ok=True)
    lines = [LineString([(4456000.0, 5645000.0), (4456100.0, 5645050.0)])]
    g = gpd.GeoDataFrame({"strassen_id": ["S1"], "dtv": [12000.0], "v_pkw": [50.0]}, geometry=lines, crs=crs)
    g.to_file(folder / "strassen.shp")
    z = tmp_path / f"roads_{len(drop)}_{crs is None}.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for f in folder.iterdir():
            if f.suffix not in drop:
                zf.write(f, f"daten/{f.name}")
    return z


def test_zipped_shapefile_with_prj(tmp_path):
    # Gauss-Krueger zone 4 (EPSG:31468), the CRS of many older Thuringian datasets
    z = _zip_shapefile(tmp_path, "EPSG:31468", drop=())
    gdf = read_role("roads", z, SourceSettings(dataset="verkehr"), "EPSG:25832")
    t = Transformer.from_crs("EPSG:31468", "EPSG:25832", always_xy=True)
    ex, ey = t.transform([4456000.0, 4456100.0], [5645000.0, 5645050.0])
    np.testing.assert_allclose(np.asarray(gdf.geometry.iloc[0].coords), np.column_stack([ex, ey]), atol=1e-3)
    assert gdf["road_id"].iloc[0] == "S1" and gdf["dtv"].iloc[0] == 12000.0
    assert gdf["speed_car_kmh"].iloc[0] == 50.0


def test_zipped_shapefile_without_prj(tmp_path):
    z = _zip_shapefile(tmp_path, "EPSG:31468", drop=(".prj",))
    with pytest.raises(CRSError, match=r"sources\.roads\.crs") as err:
        read_role("roads", z, SourceSettings(dataset="verkehr"), "EPSG:25832")
    assert "verkehr" in str(err.value)
    gdf = read_role("roads", z, SourceSettings(dataset="verkehr", crs="EPSG:31468"), "EPSG:25832")
    t = Transformer.from_crs("EPSG:31468", "EPSG:25832", always_xy=True)
    ex, ey = t.transform(4456000.0, 5645000.0)
    np.testing.assert_allclose(np.asarray(gdf.geometry.iloc[0].coords)[0], [ex, ey], atol=1e-3)


def test_zipped_shapefile_without_shx_is_an_error(tmp_path):
    z = _zip_shapefile(tmp_path, "EPSG:31468", drop=(".shx",))
    with pytest.raises(SourceDataError, match=r"strassen\.shx"):
        read_role("roads", z, SourceSettings(dataset="verkehr"), "EPSG:25832")


def test_geojson_without_crs_uses_configured_crs_or_fails(tmp_path):
    path = _write_json(tmp_path / "f.geojson", _feature_collection(
        [_poly_feature(SQUARE_25833, gebiet_id="Z1", szenario="HQ100", wsp_m=150.2)]))
    with pytest.raises(CRSError, match=r"sources\.flood_zones\.crs") as err:
        read_role("flood_zones", path, SourceSettings(dataset="hq"), "EPSG:25832")
    assert "'hq'" in str(err.value)
    gdf = read_role("flood_zones", path, SourceSettings(dataset="hq", crs="EPSG:25833"), "EPSG:25832")
    t = Transformer.from_crs("EPSG:25833", "EPSG:25832", always_xy=True)
    ex, ey = t.transform(*np.array(SQUARE_25833).T)
    np.testing.assert_allclose(_exterior(gdf), np.column_stack([ex, ey]), atol=1e-6)
    assert gdf["water_level_m"].iloc[0] == pytest.approx(150.2) and gdf["scenario"].iloc[0] == "HQ100"


def test_rfc7946_geojson_is_wgs84_without_configuration(tmp_path):
    lonlat = [(11.58, 50.92), (11.581, 50.92), (11.581, 50.921), (11.58, 50.921)]
    path = _write_json(tmp_path / "f.geojson", _feature_collection(
        [_poly_feature(lonlat, gebiet_id="Z1", szenario="HQ100", wsp_m=150.2)]))
    gdf = read_role("flood_zones", path, SourceSettings(dataset="hq"), "EPSG:25832")
    ex, ey = Transformer.from_crs("EPSG:4326", "EPSG:25832", always_xy=True).transform(*np.array(lonlat).T)
    np.testing.assert_allclose(_exterior(gdf), np.column_stack([ex, ey]), atol=1e-4)


def test_conflicting_crs_is_an_error_naming_both(tmp_path):
    path = _write_json(tmp_path / "b.geojson", _feature_collection(
        [_poly_feature(SQUARE_25833, gml_id="a")], "urn:ogc:def:crs:EPSG::25833"))
    with pytest.raises(CRSError) as err:
        read_role("buildings", path, SourceSettings(dataset="alkis", crs="EPSG:25832"), "EPSG:25832")
    msg = str(err.value)
    assert "EPSG:25833" in msg and "EPSG:25832" in msg and "sources.buildings.crs" in msg and "alkis" in msg
    # the same CRS written differently is no conflict
    gdf = read_role("buildings", path, SourceSettings(dataset="alkis", crs="epsg:25833"), "EPSG:25832")
    assert len(gdf) == 1


# ------------------------------------------------------------------------------------------------
# CSV and the axis order of EPSG:3044

# three trees near Jena's centre: (easting, northing) in ETRS89 / UTM 32N
TREES_EN = [(681950.25, 5644980.5), (682010.0, 5645120.75), (682240.5, 5645290.0)]
TREE_COLUMNS = {"tree_id": "baumnummer", "height_m": "baumhoehe", "species": "ga_lang",
                "trunk_circumference_cm": "st_umfang", "crown_diameter_m": "kr_durchm",
                "vitality": "vitalitaet", "geometry_wkt": "geometrie"}


def _fmt(v: float) -> str:
    return f"{v:.2f}".replace(".", ",")


def _tree_csv(path: Path, northing_first: bool) -> Path:
    lines = ["baumnummer;baumhoehe;ga_lang;st_umfang;kr_durchm;vitalitaet;geometrie;pflanzjahr"]
    for i, (e, n) in enumerate(TREES_EN):
        a, b = (n, e) if northing_first else (e, n)
        lines.append(f"B-{i + 1};{_fmt(12.5 + i)};Tilia cordata;{_fmt(120.0)};{_fmt(6.0)};vital;"
                     f"POINT ({a:.2f} {b:.2f});19{60 + i}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _expected_from_3044(target: str):
    # authority order on both sides: EPSG:3044 takes (northing, easting); EPSG:25833 returns (easting, northing)
    t = Transformer.from_crs("EPSG:3044", target, always_xy=False)
    e, n = np.array(TREES_EN).T
    return np.column_stack(t.transform(n, e))


def test_csv_epsg3044_northing_first(tmp_path):
    path = _tree_csv(tmp_path / "baeume.csv", northing_first=True)
    src = SourceSettings(dataset="baumkataster", crs="EPSG:3044", columns=TREE_COLUMNS,
                         options={"sep": ";", "decimal": ","})
    gdf = read_role("trees", path, src, "EPSG:25833")
    got = np.column_stack([gdf.geometry.x, gdf.geometry.y])
    np.testing.assert_allclose(got, _expected_from_3044("EPSG:25833"), atol=1e-6)
    # and into Jena's processing CRS (same projection, easting first): the points land where they are
    gdf32 = read_role("trees", path, src, "EPSG:25832")
    np.testing.assert_allclose(np.column_stack([gdf32.geometry.x, gdf32.geometry.y]), TREES_EN, atol=1e-6)
    assert gdf["height_m"].tolist() == [12.5, 13.5, 14.5]  # decimal comma
    assert gdf["tree_id"].tolist() == ["B-1", "B-2", "B-3"]
    assert gdf["src_pflanzjahr"].tolist() == ["1960", "1961", "1962"]


def test_csv_epsg3044_x_first_option(tmp_path):
    path = _tree_csv(tmp_path / "baeume.csv", northing_first=False)
    src = SourceSettings(dataset="baumkataster", crs="EPSG:3044", columns=TREE_COLUMNS,
                         options={"sep": ";", "decimal": ",", "axis_order": "xy"})
    gdf = read_role("trees", path, src, "EPSG:25833")
    np.testing.assert_allclose(np.column_stack([gdf.geometry.x, gdf.geometry.y]),
                               _expected_from_3044("EPSG:25833"), atol=1e-6)


def test_csv_bad_axis_order_option(tmp_path):
    path = _tree_csv(tmp_path / "baeume.csv", northing_first=True)
    src = SourceSettings(dataset="baumkataster", crs="EPSG:3044", columns=TREE_COLUMNS,
                         options={"sep": ";", "decimal": ",", "axis_order": "yx"})
    with pytest.raises(ConfigError, match=r"sources\.trees\.options\.axis_order"):
        read_role("trees", path, src, "EPSG:25832")


def test_csv_xy_columns_and_easting_northing(tmp_path):
    e, n = np.array(TREES_EN).T
    df = pd.DataFrame({"tree_id": ["t1", "t2", "t3"], "height_m": [10, 11, 12], "rw": e, "hw": n})
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    # x/y in the authority order of EPSG:3044: x is the first axis (northing)
    src = SourceSettings(dataset="trees", crs="EPSG:3044", columns={"x": "hw", "y": "rw"})
    gdf = read_role("trees", path, src, "EPSG:25832")
    np.testing.assert_allclose(np.column_stack([gdf.geometry.x, gdf.geometry.y]), TREES_EN, atol=1e-6)
    # easting/northing are never swapped
    src = SourceSettings(dataset="trees", crs="EPSG:3044", columns={"easting": "rw", "northing": "hw"})
    gdf = read_role("trees", path, src, "EPSG:25832")
    np.testing.assert_allclose(np.column_stack([gdf.geometry.x, gdf.geometry.y]), TREES_EN, atol=1e-6)
    assert gdf["height_m"].dtype == np.float64


def test_csv_without_crs_names_the_key(tmp_path):
    path = _tree_csv(tmp_path / "baeume.csv", northing_first=True)
    src = SourceSettings(dataset="baumkataster", columns=TREE_COLUMNS, options={"sep": ";", "decimal": ","})
    with pytest.raises(CRSError, match=r"sources\.trees\.crs"):
        read_role("trees", path, src, "EPSG:25832")


def test_configured_column_absent_is_an_error(tmp_path):
    path = _tree_csv(tmp_path / "baeume.csv", northing_first=True)
    cols = dict(TREE_COLUMNS, height_m="hoehe")
    src = SourceSettings(dataset="baumkataster", crs="EPSG:3044", columns=cols, options={"sep": ";"})
    with pytest.raises(SourceDataError, match=r"sources\.trees\.columns\.height_m"):
        read_role("trees", path, src, "EPSG:25832")


def test_bad_wkt_and_bad_number_are_quarantined_not_dropped(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("baumnummer;baumhoehe;kr_durchm;geometrie\nB1;12,5;6;POINT (5645000 682000)\n"
                    "B2;zwölf;6;POINT (5645010 682000)\nB3;9;6;POINT (5645\n", encoding="utf-8")
    src = SourceSettings(dataset="baumkataster", crs="EPSG:3044", options={"sep": ";", "decimal": ","})
    gdf = read_role("trees", path, src, "EPSG:25832")
    assert len(gdf) == 3
    ok, q = validate_records("trees", gdf, QualitySettings())
    assert ok["tree_id"].tolist() == ["B1"]
    reasons = dict(zip(q["record_id"], q["reason"]))
    assert "height_m 'zwölf'" in reasons["B2"] and "not a number" in reasons["B2"]
    assert "not valid WKT" in reasons["B3"] and "missing geometry" in reasons["B3"]


# ------------------------------------------------------------------------------------------------
# Record validation and quarantine

def _gdf(records, crs="EPSG:25832"):
    return gpd.GeoDataFrame(pd.DataFrame([{k: v for k, v in r.items() if k != "geometry"} for r in records]),
                            geometry=[r["geometry"] for r in records], crs=crs)


def _stage(role, tmp_path, features, **source_kwargs):
    path = _write_json(tmp_path / f"{role}.geojson", _feature_collection(features, "urn:ogc:def:crs:EPSG::25832"))
    return read_role(role, path, SourceSettings(dataset=f"{role}-ds", **source_kwargs), "EPSG:25832")


def _box(x, y, w=10.0):
    return [(x, y), (x + w, y), (x + w, y + w), (x, y + w)]


def test_buildings_quarantine_each_defect_with_its_reason(tmp_path):
    bowtie = [(0.0, 0.0), (10.0, 10.0), (10.0, 0.0), (0.0, 10.0)]
    feats = [
        _poly_feature(_box(0, 0), gml_id="ok1", anzahl_og=2),
        _poly_feature(_box(20, 0), gml_id="ok2", anzahl_og=0),
        _poly_feature(bowtie, gml_id="bow", anzahl_og=2),
        _poly_feature(_box(40, 0), gml_id="dup", anzahl_og=1),
        _poly_feature(_box(60, 0), gml_id="dup", anzahl_og=1),
        _poly_feature(_box(80, 0), gml_id="tall", anzahl_og=99),
        _poly_feature(_box(100, 0), gml_id="words", anzahl_og="drei"),
        _poly_feature(_box(120, 0), gml_id=None, anzahl_og=1),
        {"type": "Feature", "properties": {"gml_id": "pt", "anzahl_og": 1},
         "geometry": {"type": "Point", "coordinates": [5.0, 5.0]}},
        {"type": "Feature", "properties": {"gml_id": "nogeom", "anzahl_og": 1}, "geometry": None},
    ]
    gdf = _stage("buildings", tmp_path, feats)
    ok, q = validate_records("buildings", gdf, QualitySettings(storeys_max=60))
    assert ok["building_id"].tolist() == ["ok1", "ok2"]
    assert "_invalid_values" not in ok.columns and ok.crs.to_epsg() == 25832
    assert list(q.columns) == QUARANTINE_COLUMNS
    assert len(q) + len(ok) == len(gdf)  # nothing dropped silently
    by_id = {rid: r for rid, r in zip(q["record_id"], q["reason"]) if rid is not None}
    assert "Self-intersection" in by_id["bow"]
    dup_reasons = q.loc[q["record_id"] == "dup", "reason"].tolist()
    assert len(dup_reasons) == 2
    assert "also used by row(s) 4" in dup_reasons[0] and "also used by row(s) 3" in dup_reasons[1]
    assert "storeys = 99 out of range" in by_id["tall"]
    assert "storeys 'drei'" in by_id["words"]
    assert "geometry type Point" in by_id["pt"]
    assert "missing geometry" in by_id["nogeom"]
    missing = q[q["record_id"].isna()]
    assert len(missing) == 1 and "missing building_id" in missing["reason"].iloc[0]
    assert json.loads(missing["values_json"].iloc[0])["_row"] == 7
    assert set(q["dataset"]) == {"buildings-ds"} and set(q["role"]) == {"buildings"}
    assert q.loc[q["record_id"] == "bow", "geometry_wkt"].iloc[0].startswith("POLYGON")
    # the bowtie is quarantined as it was, not repaired
    kept = shapely.from_wkt(q.loc[q["record_id"] == "bow", "geometry_wkt"].iloc[0])
    assert not shapely.is_valid(kept) and shapely.equals_exact(kept, Polygon(bowtie), tolerance=1e-9)


def test_all_reasons_of_one_record_are_listed(tmp_path):
    bowtie = [(0.0, 0.0), (10.0, 10.0), (10.0, 0.0), (0.0, 10.0)]
    gdf = _stage("buildings", tmp_path, [_poly_feature(bowtie, gml_id="x", anzahl_og=99),
                                         _poly_feature(_box(20, 0), gml_id="y", anzahl_og=1)])
    ok, q = validate_records("buildings", gdf, QualitySettings())
    assert ok["building_id"].tolist() == ["y"]
    assert q["reason_codes"].iloc[0] == "invalid_geometry,out_of_range"


def test_trees_height_limits():
    recs = [{"tree_id": "t1", "height_m": 12.0, "geometry": Point(0, 0)},
            {"tree_id": "t2", "height_m": 75.0, "geometry": Point(1, 0)},
            {"tree_id": "t3", "height_m": -1.0, "geometry": Point(2, 0)},
            {"tree_id": "t4", "height_m": np.nan, "geometry": Point(3, 0)}]
    gdf = _gdf(recs)
    gdf["crown_diameter_m"] = 5.0
    for col in ("trunk_circumference_cm", "species", "vitality"):
        gdf[col] = np.nan
    ok, q = validate_records("trees", gdf, QualitySettings(tree_height_max_m=60))
    # a tree without a height cannot become a crown in the shading scene: quarantined, not kept
    assert ok["tree_id"].tolist() == ["t1"]
    reasons = dict(zip(q["record_id"], q["reason"]))
    assert "height_m = 75 m out of range (must be > 0 and <= 60)" in reasons["t2"]
    assert "height_m = -1 m out of range" in reasons["t3"]
    assert "height_m is missing" in reasons["t4"]


def _road(**kw):
    base = {"strassen_id": "r", "m_tag": 500.0, "m_nacht": 60.0, "p1_tag": 3.0, "p2_tag": 2.0, "v_pkw": 50.0}
    base.update(kw)
    return {"type": "Feature", "properties": base,
            "geometry": {"type": "LineString", "coordinates": [[0, 0], [100, 0]]}}


def test_roads_volumes_shares_speeds(tmp_path):
    feats = [_road(strassen_id="ok"),
             _road(strassen_id="dtv_only", m_tag=None, m_nacht=None, dtv=8000.0),
             _road(strassen_id="neg", m_tag=-5.0),
             _road(strassen_id="novol", m_tag=None, m_nacht=None),
             _road(strassen_id="half", m_nacht=None),
             _road(strassen_id="share", p2_tag=120.0),
             _road(strassen_id="slow", v_pkw=0.0)]
    gdf = _stage("roads", tmp_path, feats)
    ok, q = validate_records("roads", gdf, QualitySettings())
    assert ok["road_id"].tolist() == ["ok", "dtv_only"]
    reasons = dict(zip(q["record_id"], q["reason"]))
    assert "m_day = -5 out of range (must be >= 0)" in reasons["neg"]
    assert "no traffic volume" in reasons["novol"]
    assert "no traffic volume" in reasons["half"]
    assert "p2_day = 120 % out of range (must be >= 0 and <= 100)" in reasons["share"]
    assert "speed_car_kmh = 0 km/h out of range (must be > 0)" in reasons["slow"]


def test_flood_zone_without_level(tmp_path):
    feats = [_poly_feature(_box(0, 0), gebiet_id="z1", szenario="HQ100", wsp_m=150.0),
             _poly_feature(_box(20, 0), gebiet_id="z2", szenario="HQextrem", wsp_m=None)]
    ok, q = validate_records("flood_zones", _stage("flood_zones", tmp_path, feats), QualitySettings())
    assert ok["zone_id"].tolist() == ["z1"]
    assert q["record_id"].tolist() == ["z2"] and "without water level" in q["reason"].iloc[0]


def test_viewpoint_kinds_translated(tmp_path):
    def vp(i, art):
        return {"type": "Feature", "properties": {"sp_id": f"v{i}", "art": art, "augenhoehe_m": 1.6},
                "geometry": {"type": "Point", "coordinates": [i, 0]}}
    gdf = _stage("viewpoints", tmp_path, [vp(1, "Beobachter"), vp(2, "ziel"), vp(3, "target"), vp(4, "Turm")])
    ok, q = validate_records("viewpoints", gdf, QualitySettings())
    assert ok["kind"].tolist() == ["observer", "target", "target"]
    assert q["record_id"].tolist() == ["v4"] and "kind 'Turm'" in q["reason"].iloc[0]


def test_long_integer_ids_stay_exact(tmp_path):
    big = 9007199254740993  # 2**53 + 1: not representable as float64
    gdf = _stage("buildings", tmp_path, [_poly_feature(_box(0, 0), gml_id=big)])
    assert gdf["building_id"].iloc[0] == str(big)


def test_frame_summary(tmp_path):
    gdf = _stage("buildings", tmp_path, [_poly_feature(_box(0, 0), gml_id="a"),
                                         _poly_feature(_box(20, 5), gml_id="b")])
    s = frame_summary(gdf)
    assert s == {"count": 2, "bbox": [0.0, 0.0, 30.0, 15.0], "crs": "EPSG:25832",
                 "geometry_types": {"Polygon": 2}}


# ------------------------------------------------------------------------------------------------
# Real data: 160 Delft footprints (EPSG:28992)

def _delft_raw(shared_data):
    doc = json.loads((shared_data / "delft-ahn3" / "footprints.geojson").read_text())
    return doc["features"]


@pytest.mark.parametrize("target", ["EPSG:28992", "EPSG:25832"])
def test_delft_footprints_staged(shared_data, target):
    path = shared_data / "delft-ahn3" / "footprints.geojson"
    src = SourceSettings(dataset="bgt-pand", columns={"building_id": "identificatiebagpnd"})
    gdf = read_role("buildings", path, src, target)
    feats = _delft_raw(shared_data)
    assert len(gdf) == len(feats) == 160
    assert gdf["building_id"].tolist() == [f["properties"]["identificatiebagpnd"] for f in feats]
    assert gdf["building_id"].str.len().eq(16).all()  # BAG ids keep their leading zero
    assert "src_gml_id" in gdf.columns
    x0, y0 = feats[0]["geometry"]["coordinates"][0][0]
    if target == "EPSG:28992":
        expected = (x0, y0)
    else:
        expected = Transformer.from_crs("EPSG:28992", "EPSG:25832", always_xy=True).transform(x0, y0)
    np.testing.assert_allclose(np.asarray(gdf.geometry.iloc[0].exterior.coords)[0], expected, atol=1e-6)
    assert gdf.crs.to_epsg() == int(target.split(":")[1])
    ok, q = validate_records("buildings", gdf, QualitySettings())
    raw_invalid = sum(not shapely.is_valid(shapely.geometry.shape(f["geometry"])) for f in feats)
    assert len(q) == raw_invalid and len(ok) == 160 - raw_invalid


# ------------------------------------------------------------------------------------------------
# Axis order: coordinates outside the extent that swapping x and y would put inside

EXTENT = (681700.0, 5644700.0, 682300.0, 5645300.0)


def test_axis_order_suspects_by_geometry():
    from citymodel.vector import axis_order_suspects

    geoms = [Point(681800, 5644800),            # inside
             Point(5644800, 681800),            # swapped: suspect
             Point(690000, 5650000),            # far outside, swapped also outside: not a suspect
             Point(682310, 5645000),            # just outside, within the 50 m margin: inside
             LineString([(5644800, 681800), (5644900, 681900)]),  # a swapped line
             None]
    got = axis_order_suspects(np.array(geoms, dtype=object), EXTENT, margin_m=50.0)
    assert got.tolist() == [False, True, False, False, True, False]


def test_csv_in_the_wrong_axis_order_is_quarantined_with_the_reason(tmp_path):
    # the CSV holds northing first but is configured as plain EPSG:25832 (easting first)
    path = _tree_csv(tmp_path / "baeume.csv", northing_first=True)
    src = SourceSettings(dataset="baumkataster", crs="EPSG:25832", columns=TREE_COLUMNS,
                         options={"sep": ";", "decimal": ","})
    gdf = read_role("trees", path, src, "EPSG:25832")
    ok, q = validate_records("trees", gdf, QualitySettings(), extent=EXTENT, margin_m=150.0)
    assert len(ok) == 0 and len(q) == 3
    assert set(q["reason_codes"]) == {"axis_order"}
    reason = q["reason"].iloc[0]
    assert "inside it with x and y swapped" in reason and "sources.trees.crs" in reason
    assert "columns.easting" in reason
    # read in the right order, nothing is quarantined; without an extent nothing is checked
    src_ok = SourceSettings(dataset="baumkataster", crs="EPSG:3044", columns=TREE_COLUMNS,
                            options={"sep": ";", "decimal": ","})
    ok, q = validate_records("trees", read_role("trees", path, src_ok, "EPSG:25832"), QualitySettings(),
                             extent=EXTENT, margin_m=150.0)
    assert len(ok) == 3 and len(q) == 0
    assert len(validate_records("trees", gdf, QualitySettings())[1]) == 0


def test_a_record_far_outside_is_kept_not_suspected():
    gdf = _gdf([{"tree_id": "far", "height_m": 10.0, "geometry": Point(700000, 5700000)}])
    gdf["crown_diameter_m"] = 5.0
    for col in ("trunk_circumference_cm", "species", "vitality"):
        gdf[col] = np.nan
    ok, q = validate_records("trees", gdf, QualitySettings(), extent=EXTENT)
    assert ok["tree_id"].tolist() == ["far"] and len(q) == 0


def test_failing_quarantine_check_names_the_most_frequent_reason():
    from quality.suites import quarantine_check

    c = quarantine_check(10, 10, QualitySettings(), reasons={"outside the extent ..., x and y swapped": 10})
    assert c["passed"] is False and "x and y swapped" in c["description"]
    assert c["metadata"]["top_reasons"] == {"outside the extent ..., x and y swapped": 10}
