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
