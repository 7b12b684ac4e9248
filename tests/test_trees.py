"""Tree crowns without a diameter: filled from the trunk (Coombes et al. 2019: crown diameter ≈ 25 ×
stem diameter) or the height (half of it, 2 m at least), said per tree, counted by a warning check.

Expected values are computed here from the stated relations (circumference / π is the stem
diameter), not taken from the code under test.
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point

from citymodel.config import CatalogSettings, QualitySettings, Settings, SourceSettings
from citymodel.trees import (SOURCE_HEIGHT, SOURCE_MEASURED, SOURCE_NONE, SOURCE_TRUNK,
                             crown_diameter_from_height_m,
                             crown_diameter_from_trunk_m, fill_crown_diameters)
from citymodel.vector import read_role, validate_records
from quality.suites import CROWN_CHECK, check_specs, run_suite, suite_frame

CRS = "EPSG:25832"


def _trees(rows):
    df = pd.DataFrame(rows, columns=["tree_id", "height_m", "crown_diameter_m", "trunk_circumference_cm"])
    df["tree_id"] = df["tree_id"].astype("str")
    for c in ("height_m", "crown_diameter_m", "trunk_circumference_cm"):
        df[c] = df[c].astype("float64")
    df["species"] = pd.Series([None] * len(df), dtype="str")
    df["vitality"] = pd.Series([None] * len(df), dtype="str")
    return gpd.GeoDataFrame(df, geometry=[Point(681000 + 10 * i, 5644000) for i in range(len(df))], crs=CRS)


def test_trunk_relation():
    # 100 cm circumference: stem diameter 1/π m, crown 25/π m ≈ 7.96 m
    assert crown_diameter_from_trunk_m(100.0) == pytest.approx(25.0 / math.pi)
    # a thin trunk gives at least 2 m; no trunk (missing, zero) gives nothing
    assert crown_diameter_from_trunk_m(10.0) == pytest.approx(2.0)
    assert np.isnan(crown_diameter_from_trunk_m(np.nan)) and np.isnan(crown_diameter_from_trunk_m(0.0))


def test_height_relation():
    np.testing.assert_allclose(crown_diameter_from_height_m([12.0, 3.0]), [6.0, 2.0])
    assert np.isnan(crown_diameter_from_height_m(np.nan)) and np.isnan(crown_diameter_from_height_m(-4.0))


def test_fill_keeps_measured_and_says_how():
    gdf = _trees([("m", 12.0, 7.5, 150.0),          # measured: kept although trunk and height would differ
                  ("t", 12.0, np.nan, 157.08),      # trunk known: 25 × 1.5708 / π ≈ 12.5 m
                  ("h", 14.0, np.nan, np.nan),      # height only: 7 m
                  ("n", np.nan, np.nan, np.nan),    # nothing to estimate from
                  ("x", 10.0, -3.0, 100.0)])        # given but out of range: left for validation
    out = fill_crown_diameters(gdf)
    assert out["crown_diameter_m"].iloc[0] == 7.5
    assert out["crown_diameter_m"].iloc[1] == pytest.approx(25 * 1.5708 / math.pi)
    assert out["crown_diameter_m"].iloc[2] == pytest.approx(7.0)
    assert np.isnan(out["crown_diameter_m"].iloc[3])
    assert out["crown_diameter_m"].iloc[4] == -3.0
    assert out["crown_diameter_source"].tolist() == [SOURCE_MEASURED, SOURCE_TRUNK, SOURCE_HEIGHT, SOURCE_NONE,
                                                     SOURCE_MEASURED]
    assert out["crown_diameter_estimated"].tolist() == [False, True, True, False, False]
    assert np.isnan(gdf["crown_diameter_m"].iloc[1])  # the input is not changed


def test_tree_without_anything_is_quarantined_not_dropped():
    out = fill_crown_diameters(_trees([("ok", 10.0, np.nan, np.nan), ("bare", np.nan, np.nan, np.nan)]))
    ok, q = validate_records("trees", out, QualitySettings())
    assert ok["tree_id"].tolist() == ["ok"]
    assert q["record_id"].tolist() == ["bare"]
    assert "height_m is missing" in q["reason"].iloc[0] and "crown_diameter_m is missing" in q["reason"].iloc[0]


@pytest.fixture(scope="module")
def settings() -> Settings:
    return Settings(name="test", processing_crs=CRS, extent=(681000, 5644000, 683000, 5646000),
                    catalog=CatalogSettings(url="catalog.jsonld"),
                    sources={"buildings": SourceSettings(dataset="alkis"), "lidar": SourceSettings(dataset="dom"),
                             "trees": SourceSettings(dataset="baumkataster")},
                    quality=QualitySettings(tree_height_max_m=60))


def test_warning_check_counts_estimated_crowns(settings):
    spec = {c["name"]: c for c in check_specs("trees", settings)}[CROWN_CHECK]
    assert spec["blocking"] is False and spec["severity"] == "WARN"
    measured = fill_crown_diameters(_trees([("a", 10.0, 5.0, np.nan), ("b", 12.0, 6.0, np.nan)]))
    assert CROWN_CHECK not in run_suite("trees", suite_frame(measured), settings).warnings
    mixed = fill_crown_diameters(_trees([("a", 10.0, 5.0, np.nan), ("b", 12.0, np.nan, np.nan),
                                         ("c", 8.0, np.nan, 90.0)]))
    result = run_suite("trees", suite_frame(mixed), settings)
    assert CROWN_CHECK in result.warnings and CROWN_CHECK not in result.failed
    check = {c["name"]: c for c in result.check_results()}[CROWN_CHECK]
    assert check["passed"] is False and check["severity"] == "WARN"
    assert check["metadata"]["observed"]["unexpected_count"] == 2


def test_cadastre_csv_without_crown_column(tmp_path):
    """A cadastre that has no crown column at all: every tree gets one from its height or trunk."""
    path = tmp_path / "baeume.csv"
    path.write_text("baumnummer;baumhoehe;st_umfang;x;y\nB1;12,0;0;681010;5644010\nB2;20,0;126;681020;5644010\n",
                    encoding="utf-8")
    src = SourceSettings(dataset="baumkataster", crs=CRS, columns={"x": "x", "y": "y"},
                         options={"sep": ";", "decimal": ","})
    gdf = fill_crown_diameters(read_role("trees", path, src, CRS))
    ok, q = validate_records("trees", gdf, QualitySettings())
    assert len(q) == 0
    np.testing.assert_allclose(ok["crown_diameter_m"], [6.0, 25 * 1.26 / math.pi])
    assert ok["crown_diameter_source"].tolist() == [SOURCE_HEIGHT, SOURCE_TRUNK]
