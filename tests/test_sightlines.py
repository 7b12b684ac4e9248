"""Sight lines (visible / blocked and by which buildings) and viewsheds, checked against 2D/3D
geometry computed with shapely."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely.geometry import LineString, Point, Polygon

from citymodel.analysis import sightlines as SL
from citymodel.analysis.scene import Scene, TerrainModel
from citymodel.errors import SourceDataError
from citymodel.geometry3d import prism

X0, Y0, Z0 = 682000.0, 5645000.0, 150.0


def _box(x, y, w, d, h, z=Z0):
    return prism(np.array([[x, y], [x + w, y], [x + w, y + d], [x, y + d]]), z, z + h)


@pytest.fixture(scope="module")
def street():
    """Observer west, target east at 20 m; a low (8 m) and a high (30 m, 'tower') building between,
    and a second high building ('hall') on a parallel line."""
    b = {"low": _box(X0 + 20, Y0 - 5, 10, 10, 8.0), "tower": _box(X0 + 50, Y0 - 5, 10, 10, 30.0),
         "hall": _box(X0 + 20, Y0 + 45, 10, 10, 30.0), "hall2": _box(X0 + 50, Y0 + 45, 10, 10, 25.0)}
    return Scene.build(b, terrain=TerrainModel.flat(Z0, (X0 - 200, Y0 - 200, X0 + 300, Y0 + 300), 5.0))


def test_sight_line_over_a_low_building_is_visible_through_a_high_one_blocked(street):
    eyes = np.array([[X0, Y0, Z0 + 20], [X0, Y0, Z0 + 20], [X0, Y0 + 50, Z0 + 20]])
    targets = np.array([[X0 + 40, Y0, Z0 + 20], [X0 + 80, Y0, Z0 + 20], [X0 + 80, Y0 + 50, Z0 + 20]])
    res = SL.sight_lines(street, eyes, targets, ids=[("A", "over-low"), ("A", "through-tower"), ("C", "halls")])
    assert res.visible.tolist() == [True, False, False]
    assert res.blocked_by_buildings[0] == []
    assert res.blocked_by_buildings[1] == ["tower"]                 # not the low one below the line
    assert res.blocked_by_buildings[2] == ["hall", "hall2"]         # every building along the line
    assert res.distance_m.tolist() == pytest.approx([40.0, 80.0, 80.0])
    assert not res.blocked_by_terrain.any()


def test_target_on_a_facade_is_not_hidden_by_its_own_wall(street):
    # the tower's west wall at x = X0+50: a target 0.2 m inside the wall still counts as seen
    res = SL.sight_lines(street, [[X0, Y0, Z0 + 20]], [[X0 + 50.2, Y0, Z0 + 20]])
    assert res.visible[0]


def test_viewpoints_pairs_and_missing_target(street):
    vp = gpd.GeoDataFrame({"viewpoint_id": ["B1", "Z1"], "name": ["obs", "target"],
                           "kind": ["observer", "target"], "eye_height_m": [1.6, 40.0],
                           "target_id": ["Z1", None]},
                          geometry=[Point(X0 - 20, Y0), Point(X0 + 150, Y0)], crs="EPSG:25832")
    res = SL.sight_lines_from_viewpoints(street, vp)
    assert len(res) == 1 and res.observer_id[0] == "B1" and res.target_id[0] == "Z1"
    # a line from 1.6 m up to 40 m: check against the tower's height where the line crosses it
    z_at = Z0 + 1.6 + (40 - 1.6) * (50 + 20) / 170                     # height at the tower's west wall
    assert z_at < Z0 + 30 and not res.visible[0] and res.blocked_by_buildings[0] == ["tower"]
    bad = vp.copy()
    bad.loc[0, "target_id"] = "Z9"
    with pytest.raises(SourceDataError, match=r"dataset 'viewpoints', record 'B1'.*Fix"):
        SL.sight_lines_from_viewpoints(street, bad)


def test_viewshed_matches_2d_occlusion_of_a_tall_box():
    box = _box(X0 + 20, Y0 - 10, 10, 20, 25.0)
    scene = Scene.build({"box": box}, terrain=TerrainModel.flat(Z0, (X0 - 200, Y0 - 200, X0 + 200, Y0 + 200), 5.0))
    vs = SL.viewshed(scene, (X0, Y0), eye_height_m=1.6, radius_m=80.0, cell_m=1.0, target_height_m=1.5)
    rows, cols = vs.visible.shape
    xs = vs.bounds[0] + (np.arange(cols) + 0.5)
    ys = vs.bounds[3] - (np.arange(rows) + 0.5)
    X, Y = np.meshgrid(xs, ys)
    inside = np.hypot(X - X0, Y - Y0) <= 80
    assert (vs.visible[~inside] == SL.OUTSIDE).all()
    # eye and targets are far below the 25 m box: hidden exactly where the 2D segment crosses the box
    foot = Polygon([(X0 + 20, Y0 - 10), (X0 + 30, Y0 - 10), (X0 + 30, Y0 + 10), (X0 + 20, Y0 + 10)])
    lines = shapely.linestrings(np.stack([np.broadcast_to([X0, Y0], (inside.sum(), 2)),
                                          np.column_stack([X[inside], Y[inside]])], axis=1))
    expected_hidden = shapely.intersects(lines, foot)
    got_hidden = vs.visible[inside] == SL.HIDDEN
    mismatch = (expected_hidden != got_hidden)
    # only cells within a cell width of the shadow edges may differ (the target tolerance is 0.5 m)
    edge = shapely.distance(shapely.points(X[inside], Y[inside]),
                            shapely.union_all([LineString([(X0, Y0), (X0 + 20 + 300 * dx, Y0 + 300 * dy)])
                                               for dx, dy in [(1, -0.5), (1, 0.5), (1, -1 / 3), (1, 1 / 3)]])) < 1.5
    assert not (mismatch & ~edge & ~shapely.contains_xy(foot.buffer(1.0), X[inside], Y[inside])).any()
    assert vs.visible_area_m2 == pytest.approx(np.pi * 80 ** 2 - expected_hidden.sum(), rel=0.02)
    assert vs.metadata["radius_m"] == 80.0


def test_viewshed_to_the_surface_sees_a_low_roof_but_not_behind_it():
    low = _box(X0 + 20, Y0 - 10, 10, 20, 3.0)
    scene = Scene.build({"low": low}, terrain=TerrainModel.flat(Z0, (X0 - 200, Y0 - 200, X0 + 200, Y0 + 200), 5.0))
    vs = SL.viewshed(scene, (X0, Y0), eye_height_m=10.0, radius_m=60.0, cell_m=1.0, target_height_m=None)
    r0 = int((vs.bounds[3] - Y0) // 1)
    def at(x):
        return vs.visible[r0, int((x - vs.bounds[0]) // 1)]
    assert at(X0 + 25) == SL.VISIBLE            # on the low roof, seen from 10 m
    # ground right behind the roof: the line from z=10 over the far roof edge (x=30, z=3) reaches the
    # ground at x = 30 * 10 / 7 = 42.9 m; closer ground is hidden, farther ground seen
    assert at(X0 + 35) == SL.HIDDEN
    assert at(X0 + 50) == SL.VISIBLE
