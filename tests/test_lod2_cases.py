"""The hard LoD2 cases of issue #14, rebuilt from the sample city's points.

Each case of the sample city (asymmetric gables, four-sided mansards, a lattice tower, touching
buildings of very different heights, a large multi-part hall) must come back within 0.3 m of its
true ridge and eave, with the right AdV roof type: from the pipeline's own run on the sample city
(10 points/m²), and from points drawn with the sample city's sampler at 3 points/m². Expected values
are the generator's ground truth.
"""

from __future__ import annotations

import numpy as np
import pytest

TOLERANCE_M = 0.3


def _cases(truth: dict) -> dict[str, dict]:
    return {b["building_id"]: b for b in truth["buildings"] if b.get("case")}


def _check(result: dict, t: dict) -> list[str]:
    """What is wrong with one rebuilt case (empty when it is right)."""
    bad = []
    if int(result["roofType"]) != t["roof_code"]:
        bad.append(f"roof type {result['roofType']} != {t['roof_code']}")
    for key in ("eave_height_m", "ridge_height_m"):
        v = result[key]
        if v is None or not np.isfinite(v) or abs(v - t[key]) > TOLERANCE_M:
            bad.append(f"{key} {v} vs {t[key]}")
    return bad


def test_cases_rebuilt_by_the_pipeline(pipeline_city):
    """The pipeline's run on the sample city (10 points/m²)."""
    import geopandas as gpd

    truth = _cases(pipeline_city.truth.ground_truth)
    table = gpd.read_parquet(pipeline_city.settings.output_dir / "buildings" / "buildings.parquet")
    rows = {r["building_id"]: r for r in table.drop(columns="geometry").to_dict("records")}
    assert set(truth) <= set(rows)
    wrong = {bid: _check(rows[bid], t) for bid, t in truth.items()}
    wrong = {k: v for k, v in wrong.items() if v}
    assert not wrong, wrong
    for bid, t in truth.items():
        r = rows[bid]
        assert r["method"] == "lod2_fitted" and r["validity_codes"] in ("", "[]"), (bid, r["fallback_reason"])
        assert r["height_source"] == "points"
        if t["case"] == "tower":
            assert r["structure"] == "slender"
            # its lattice is far from its roof: the truth-free measure says so
            assert r["point_to_roof_p90_m"] > 10.0
        else:
            assert r["point_to_roof_median_m"] < 0.05, bid


@pytest.fixture(scope="module")
def rebuilt_at_3_points(sample_city_session):
    """The cases rebuilt from 3 points/m² drawn with the sample city's point sampler.

    Points of the area around the cases (with the other buildings and trees there) are sampled
    like the sample city's LiDAR, only sparser; ground and points lower than 2 m above the terrain
    are left out as the staging does; the DTM is the sample city's terrain function.
    """
    import geopandas as gpd
    import shapely
    from affine import Affine

    from citymodel.lod2 import TilePoints, reconstruct_tile
    from citymodel.raster import Raster
    from citymodel.samplecity.layout import plan_city
    from citymodel.samplecity.pointcloud import sample_tile
    from citymodel.samplecity.terrain import terrain_height
    from citymodel.tiles import parse_tile_id, tile_of_point

    plan = plan_city(sample_city_session.seed)
    cases = [b for b in plan.buildings if b.attributes.get("case")]
    area = shapely.union_all([b.footprint for b in cases]).buffer(10.0)
    x0, y0, x1, y1 = area.bounds
    near = [b for b in plan.buildings if b.footprint.intersects(area.buffer(30.0))]
    trees = [t for t in plan.trees if area.buffer(30.0).contains(shapely.Point(t.x, t.y))]
    pts = sample_tile((x0, y0, x1, y1), near, trees, np.random.default_rng([sample_city_session.seed, 314]),
                      density_m2=3.0)
    hag = pts["z"] - terrain_height(pts["x"], pts["y"])
    keep = (pts["classification"] != 2) & (hag >= 2.0)
    n = int(keep.sum())
    xyz = np.column_stack([pts["x"][keep], pts["y"][keep], pts["z"][keep]])
    tile_points = TilePoints(xyz, hag[keep], pts["classification"][keep], np.ones(n, np.uint8),
                             np.ones(n, np.uint8), False, (x0, y0, x1, y1), len(hag))
    gx, gy = np.arange(x0 - 20, x1 + 20, 1.0), np.arange(y1 + 20, y0 - 20, -1.0)
    cx, cy = np.meshgrid(gx + 0.5, gy - 0.5)
    dtm = Raster(terrain_height(cx, cy).astype(np.float32), Affine(1.0, 0, gx[0], 0, -1.0, gy[0]), None, -9999.0)
    footprints = gpd.GeoDataFrame({"building_id": [b.building_id for b in plan.buildings],
                                   "function_code": [b.function for b in plan.buildings],
                                   "storeys": [b.storeys for b in plan.buildings]},
                                  geometry=[b.footprint for b in plan.buildings], crs="EPSG:25832")
    tiles = {tile_of_point(*b.footprint.representative_point().coords[0]).id for b in cases}
    assert len(tiles) == 1                     # the cases stand in one tile
    results = reconstruct_tile(footprints, tile_points, dtm, parse_tile_id(tiles.pop()))
    density = {b.building_id: float(np.sum(shapely.contains_xy(b.footprint, xyz[:, 0], xyz[:, 1])) / b.footprint.area)
               for b in cases}
    return {r.building_id: r for r in results}, density


def test_cases_rebuilt_at_3_points_per_m2(rebuilt_at_3_points, sample_city_session):
    results, density = rebuilt_at_3_points
    truth = _cases(sample_city_session.ground_truth)
    assert set(truth) <= set(results)
    for bid, t in truth.items():
        if t["case"] != "tower":               # the open tower returns fewer pulses from its structure
            assert 2.0 <= density[bid] <= 4.0, (bid, density[bid])
    wrong = {bid: _check(results[bid].attributes(), t) for bid, t in truth.items()}
    wrong = {k: v for k, v in wrong.items() if v}
    assert not wrong, wrong
    for bid, t in truth.items():
        r = results[bid]
        assert r.validity_codes == [], bid
        # a LoD2 roof for all but possibly the tower: at 3 points/m² its top platform may hold no
        # plane, and it becomes a block up to its top (the right height and type all the same)
        if t["case"] == "tower":
            assert r.structure == "slender" and r.height_source == "points"
        else:
            assert r.method == "lod2_fitted", (bid, r.fallback_reason)
