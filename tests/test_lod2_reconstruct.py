"""Unit tests of the LoD2 reconstruction on synthetic houses (fast, no files).

Points are sampled from the closed-form roof models of citymodel.roofs with known parameters;
expected values are those parameters, analytic volumes, or simple geometry.
"""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from affine import Affine
from shapely.geometry import MultiPolygon, Polygon, box

from citymodel.errors import GeometryError
from citymodel.lod2 import (TilePoints, build_lod1, build_parametric, fit_footprint, generic_roof_solid,
                            reconstruct_building, reconstruct_tile, segment_planes)
from citymodel.raster import Raster
from citymodel.roofs import RoofForm, RoofPart, building_roof_height, part_volume_m3
from citymodel.tiles import Tile
from citymodel.validate3d import validate_solid

GROUND = 150.0
X0, Y0 = 682100.0, 5645100.0


def sample_roof(parts, density_m2=10.0, noise_m=0.03, seed=1):
    """Points on the roofs of ``parts`` (absolute z), uniform in the parts' bounding box."""
    rng = np.random.default_rng(seed)
    fp = shapely.union_all([Polygon(p.corners_xy()) for p in parts])
    minx, miny, maxx, maxy = fp.bounds
    n = int((maxx - minx) * (maxy - miny) * density_m2)
    x = rng.uniform(minx, maxx, n)
    y = rng.uniform(miny, maxy, n)
    z = building_roof_height(parts, x, y)
    ok = np.isfinite(z)
    return np.column_stack([x[ok], y[ok], z[ok] + rng.normal(0, noise_m, ok.sum())]), fp


def flat_dtm(bounds=(X0 - 100, Y0 - 100, X0 + 1100, Y0 + 1100), z=GROUND):
    minx, miny, maxx, maxy = bounds
    arr = np.full((int(maxy - miny), int(maxx - minx)), z, dtype=np.float32)
    return Raster(arr, Affine(1.0, 0, minx, 0, -1.0, maxy), None, -9999.0)


def part(form, L=12.0, W=9.0, angle=30.0, eave=6.0, ridge=10.0, cx=X0 + 50, cy=Y0 + 50, **kw):
    if form is RoofForm.FLAT:
        ridge = eave
    return RoofPart(cx, cy, L, W, angle, GROUND, eave, ridge, form, **kw)


# ------------------------------------------------------------------------------------- fits
FORMS = [(RoofForm.FLAT, {}), (RoofForm.SHED, {}), (RoofForm.GABLE, {}), (RoofForm.HIP, {}),
         (RoofForm.HALF_HIP, {"half_hip_fraction": 0.4}), (RoofForm.PYRAMID, {}),
         (RoofForm.MANSARD, {"mansard_break_m": 9.0, "mansard_inset_m": 1.2})]


@pytest.mark.parametrize("form,kw", FORMS, ids=[f.label for f, _ in FORMS])
def test_fit_recovers_form_and_heights(form, kw):
    L = 10.0 if form is RoofForm.PYRAMID else 14.0
    p = part(form, L=L, W=10.0, **kw)
    xyz, fp = sample_roof([p])
    fit = fit_footprint(fp, xyz, GROUND, "B1")
    assert fit is not None
    got = fit.parts[0]
    assert got.form is form
    assert abs(got.eave_m - p.eave_m) < 0.1
    assert abs(got.ridge_m - p.ridge_m) < 0.1
    assert fit.rmse_m < 0.06        # noise is 0.03 m


SHAPES = {
    "asymmetric_gable": (RoofForm.GABLE, {"eave2_m": 7.5}),                      # equal slopes, ridge off centre
    "gable_two_slopes": (RoofForm.GABLE, {"eave2_m": 7.0, "ridge_offset_m": -1.0}),
    "shed_with_back_slope": (RoofForm.GABLE, {"eave2_m": 9.0, "ridge_offset_m": 3.5}),
    "hipped_mansard": (RoofForm.MANSARD, {"mansard_sides": 4, "mansard_break_m": 9.0, "mansard_inset_m": 1.2}),
}


@pytest.mark.parametrize("density", [10.0, 3.0])
@pytest.mark.parametrize("name", list(SHAPES))
def test_fit_recovers_asymmetric_gables_and_hipped_mansards(name, density):
    """The generating parameters come back: AdV form, both eaves and the ridge within 0.1 m."""
    form, kw = SHAPES[name]
    p = part(form, L=14.0, W=10.0, **kw)
    xyz, fp = sample_roof([p], density_m2=density)
    fit = fit_footprint(fp, xyz, GROUND, "B1")
    assert fit is not None and len(fit.parts) == 1
    got = fit.parts[0]
    assert got.form is form and got.form.code == {RoofForm.GABLE: 3100, RoofForm.MANSARD: 3400}[form]
    if form is RoofForm.MANSARD:
        assert got.mansard_sides == 4
        assert abs(got.mansard_break - 9.0) < 0.15
    # the fitted frame may be turned by 180°: compare the two eaves as a set
    assert np.allclose(sorted([got.eave_m, got.eave2]), sorted([p.eave_m, p.eave2]), atol=0.1)
    assert abs(got.ridge_m - p.ridge_m) < 0.1
    assert fit.rmse_m < 0.06


def test_symmetric_gable_stays_symmetric():
    """The asymmetric shapes cost parameters: a symmetric gable is not fitted as an asymmetric one."""
    for seed in range(4):
        xyz, fp = sample_roof([part(RoofForm.GABLE, L=14.0, W=10.0)], seed=seed)
        got = fit_footprint(fp, xyz, GROUND, "B1").parts[0]
        assert got.form is RoofForm.GABLE and not got.asymmetric


def test_fit_l_shape_as_two_parts():
    # L: a hip main wing and a gable side wing, touching (as the sample city builds them)
    p1 = RoofPart(X0 + 50, Y0 + 50, 16.0, 9.0, 90.0, GROUND, 7.0, 11.0, RoofForm.HIP, part_id="a")
    p2 = RoofPart(X0 + 50 - 4.5 - 4.0, Y0 + 50 + 8.0 - 4.0, 8.0, 8.0, 180.0, GROUND, 7.0, 10.5, RoofForm.GABLE,
                  part_id="b")
    xyz, fp = sample_roof([p1, p2])
    fit = fit_footprint(fp, xyz, GROUND, "L1")
    assert fit is not None and len(fit.parts) == 2
    assert fit.parts[0].form is RoofForm.HIP            # the larger part comes first
    assert abs(max(p.ridge_m for p in fit.parts) - 11.0) < 0.1
    assert sorted(p.form.label for p in fit.parts) == ["gable", "hip"]


def test_segment_planes_gable_and_crown():
    p = part(RoofForm.GABLE, angle=0.0)
    xyz, fp = sample_roof([p])
    rng = np.random.default_rng(5)
    crown = rng.normal(0, 1.5, (300, 3)) + [p.cx + 3, p.cy, GROUND + 13]   # a tree crown above the roof
    labels, planes = segment_planes(np.vstack([xyz, crown]))
    assert len(planes) == 2
    slope = np.degrees(np.arctan((10.0 - 6.0) / 4.5))
    assert all(abs(pl.slope_deg - slope) < 1.0 for pl in planes)
    assert (labels[len(xyz):] < 0).mean() > 0.9      # crown points are not roof
    assert (labels[:len(xyz)] >= 0).mean() > 0.9


def test_overhanging_tree_keeps_roof():
    p = part(RoofForm.GABLE, angle=0.0)
    xyz, fp = sample_roof([p])
    rng = np.random.default_rng(7)
    n = 600       # crown over a third of the roof, points between 0.5 and 4 m above the roof
    cx, cy = rng.uniform(p.cx - 6, p.cx - 1, n), rng.uniform(p.cy - 4.5, p.cy + 4.5, n)
    cz = building_roof_height([p], cx, cy) + rng.uniform(0.5, 4.0, n)
    r = reconstruct_building(fp, np.vstack([xyz, np.column_stack([cx, cy, cz])]), flat_dtm(), building_id="T1")
    assert r.method == "lod2_fitted" and r.roofType == 3100
    assert abs(r.ridge_height_m - 10.0) < 0.15 and abs(r.eave_height_m - 6.0) < 0.15
    assert r.validity_codes == []


# ----------------------------------------------------------------------------- builders
def test_build_lod1_volume_and_validity():
    s = build_lod1(box(0, 0, 10, 6), 100.0, 7.5)
    assert s.volume_m3 == pytest.approx(450.0)
    assert validate_solid(s).valid


def test_build_lod1_rejects_bad_input():
    with pytest.raises(GeometryError, match="record 'X'.*not positive"):
        build_lod1(box(0, 0, 1, 1), 0.0, 0.0, building_id="X")
    bowtie = Polygon([(0, 0), (2, 2), (2, 0), (0, 2)])
    with pytest.raises(GeometryError, match="invalid footprint.*Fix"):
        build_lod1(bowtie, 0.0, 3.0, building_id="X")
    with pytest.raises(GeometryError, match="MultiPolygon"):
        build_lod1(MultiPolygon([box(0, 0, 1, 1), box(3, 3, 4, 4)]), 0.0, 3.0)


@pytest.mark.parametrize("form,kw", FORMS, ids=[f.label for f, _ in FORMS])
def test_build_parametric_rectangle_exact(form, kw):
    fp = box(X0, Y0, X0 + 14, Y0 + 10)
    solid, note = build_parametric(fp, GROUND, 6.0, 10.0, form, **kw)
    assert note == ""
    assert validate_solid(solid).valid
    ridge = 6.0 if form is RoofForm.FLAT else 10.0
    ref = RoofPart(X0 + 7, Y0 + 5, 14, 10, 0.0, GROUND, 6.0, ridge, form, **kw)
    assert solid.volume_m3 == pytest.approx(part_volume_m3(ref), rel=1e-6)
    assert solid.bounds[5] == pytest.approx(GROUND + ridge)


def test_build_parametric_l_shape_clipped_or_lod1():
    fp = Polygon([(0, 0), (16, 0), (16, 8), (8, 8), (8, 14), (0, 14)])
    fp = shapely.affinity.translate(fp, X0, Y0)
    solid, note = build_parametric(fp, GROUND, 5.0, 9.0, "gable", building_id="V1")
    assert validate_solid(solid).valid
    area = fp.area
    assert area * 5.0 - 1e-6 <= solid.volume_m3 <= area * 9.0 + 1e-6
    assert note in ("clipped",) or note.startswith("lod1")


# ------------------------------------------------------------------------------ generic roof
def test_generic_roof_two_flat_levels_volume():
    # L-shaped footprint, two flat roofs: 5 m over the west part, 9 m over the east part
    fp = shapely.affinity.translate(Polygon([(0, 0), (20, 0), (20, 10), (10, 10), (10, 16), (0, 16)]), X0, Y0)
    rng = np.random.default_rng(3)
    x = rng.uniform(X0, X0 + 20, 4000)
    y = rng.uniform(Y0, Y0 + 16, 4000)
    m = shapely.contains_xy(fp, x, y)
    x, y = x[m], y[m]
    z = np.where(x < X0 + 10, GROUND + 5.0, GROUND + 9.0) + rng.normal(0, 0.02, len(x))
    xyz = np.column_stack([x, y, z])
    labels, planes = segment_planes(xyz)
    assert len(planes) == 2
    solid = generic_roof_solid(fp, xyz, labels, planes, GROUND, building_id="G1")
    assert validate_solid(solid).valid
    expected = (10 * 16) * 5.0 + (10 * 10) * 9.0      # the step lies on x = 10 within a cell
    assert solid.volume_m3 == pytest.approx(expected, rel=0.03)


def test_reconstruct_generic_for_non_rectilinear_footprint():
    # a footprint with a 30° cut corner: not a rectangle, not rectilinear -> generic roof
    p = part(RoofForm.GABLE, angle=0.0, L=16.0, W=10.0)
    xyz, rect = sample_roof([p])
    cut = shapely.Polygon([(p.cx + 8, p.cy - 5), (p.cx + 8, p.cy + 1), (p.cx + 2, p.cy - 5)])
    fp = rect.difference(cut)
    xyz = xyz[shapely.contains_xy(fp, xyz[:, 0], xyz[:, 1])]
    r = reconstruct_building(fp, xyz, flat_dtm(), building_id="C1")
    assert r.method == "lod2_fitted"
    assert r.validity_codes == []
    assert r.roof_rmse_m < 0.15
    assert abs(r.ridge_height_m - 10.0) < 0.3


def test_generic_roof_not_higher_than_its_points():
    """A steep plane whose points end 4 m before the footprint does: without clipping it would be
    extended 3.3 m above them; clipped to its support it stays at the height of its highest point,
    and the part beyond is a flat cap (a shed: one plane)."""
    rng = np.random.default_rng(4)
    fp = shapely.affinity.translate(Polygon([(0, 0), (16, 0), (14, 10), (2, 10)]), X0 + 50, Y0 + 50)
    x = rng.uniform(X0 + 50, X0 + 66, 3000)
    y = rng.uniform(Y0 + 50, Y0 + 56, 3000)        # points only on the southern 6 m
    m = shapely.contains_xy(fp, x, y)
    x, y = x[m], y[m]
    slope = np.tan(np.radians(40.0))
    z = GROUND + 4.0 + slope * (y - (Y0 + 50)) + rng.normal(0, 0.02, len(x))
    xyz = np.column_stack([x, y, z])
    labels, planes = segment_planes(xyz)
    unclipped = generic_roof_solid(fp, xyz, labels, planes, GROUND, cap_margin_m=None)
    assert unclipped.bounds[5] > z.max() + 3.0                 # what the plane alone would do
    r = reconstruct_building(fp, xyz, flat_dtm(), building_id="S1")
    assert r.method == "lod2_fitted" and r.roof_model == "generic" and r.validity_codes == []
    top = max(sol.bounds[5] for sol in r.solids)
    assert z.max() - 0.1 <= top <= z.max() + 0.02
    assert r.roofType == 2100 and r.ridge_height_m == pytest.approx(top - GROUND, abs=0.02)
    # volume: the plane up to the top, flat beyond (numerical integral over the footprint)
    gx, gy = np.meshgrid(np.arange(X0 + 50, X0 + 66, 0.05) + 0.025, np.arange(Y0 + 50, Y0 + 60, 0.05) + 0.025)
    inside = shapely.contains_xy(fp, gx, gy)
    h = np.minimum(4.0 + slope * (gy - (Y0 + 50)), top - GROUND)
    assert sum(sol.volume_m3 for sol in r.solids) == pytest.approx(float(h[inside].sum()) * 0.05 ** 2, rel=0.02)


def test_split_footprint_halves():
    from citymodel.lod2.build import split_footprint

    # a long hall with a wing: the cut runs through the wing's corner near the middle
    hall = Polygon([(0, 0), (40, 0), (40, 15), (22, 15), (22, 25), (10, 25), (10, 15), (0, 15)])
    parts = split_footprint(shapely.affinity.translate(hall, X0, Y0))
    assert len(parts) == 2
    assert sum(p.area for p in parts) == pytest.approx(hall.area)
    xs = sorted({round(x - X0, 6) for p in parts for x, _ in p.exterior.coords})
    assert 22.0 in xs or 10.0 in xs                      # the cut lies on the wing's side wall
    assert split_footprint(box(X0, Y0, X0 + 5, Y0 + 4)) == [box(X0, Y0, X0 + 5, Y0 + 4)]   # too small to split


# ------------------------------------------------- neighbours, towers, point-to-roof distances
def points_on(poly, z, rng, density=10.0):
    minx, miny, maxx, maxy = poly.bounds
    n = int((maxx - minx) * (maxy - miny) * density)
    x, y = rng.uniform(minx, maxx, n), rng.uniform(miny, maxy, n)
    m = shapely.contains_xy(poly, x, y)
    zz = z(x[m], y[m]) if callable(z) else np.full(int(m.sum()), float(z))
    return np.column_stack([x[m], y[m], zz + rng.normal(0, 0.03, int(m.sum()))])


def touching_pair(rng, overhang_m=0.6):
    """A 16 m block with a roof overhang and a 2.8 m garage against its east wall: the garage's
    footprint holds the block's overhanging roof edge and wall points (what the scanner sees)."""
    hx, hy = X0 + 100, Y0 + 100
    high, garage = box(hx, hy, hx + 12, hy + 10), box(hx + 12, hy + 2, hx + 15.2, hy + 8)
    eaves = high.buffer(overhang_m, join_style=2)
    roof_hi = points_on(eaves, GROUND + 16.0, rng)
    roof_gar = points_on(garage, GROUND + 2.8, rng)
    roof_gar = roof_gar[~shapely.contains_xy(eaves, roof_gar[:, 0], roof_gar[:, 1])]   # under the overhang
    wall = np.column_stack([np.full(60, hx + 12.05), rng.uniform(hy + 2, hy + 8, 60), GROUND + rng.uniform(2.8, 16.0, 60)])
    return high, garage, np.vstack([roof_hi, roof_gar, wall])


def test_touching_low_building_keeps_its_own_roof():
    high, garage, xyz = touching_pair(np.random.default_rng(3))
    rows = [dict(building_id="block", function_code=None, storeys=5, roof_form=None, geometry=high),
            dict(building_id="garage", function_code="31001_2463", storeys=1, roof_form=None, geometry=garage)]
    res = {r.building_id: r for r in reconstruct_tile(frame(rows), tile_points(xyz), flat_dtm(), TILE)}
    g = res["garage"]
    assert g.method == "lod2_fitted" and g.roofType == 1000 and g.validity_codes == []
    assert abs(g.ridge_height_m - 2.8) < 0.1 and abs(g.eave_height_m - 2.8) < 0.1
    assert max(s.bounds[5] for s in g.solids) < GROUND + 3.0
    assert any("touching buildings" in i for i in g.issues)
    assert g.point_to_roof_p90_m < 0.1                       # its own points lie on its roof
    assert abs(res["block"].ridge_height_m - 16.0) < 0.1
    # the same points without knowing the neighbour: the block's edge becomes the garage's roof
    own = xyz[shapely.contains_xy(garage, xyz[:, 0], xyz[:, 1])]
    blind = reconstruct_building(garage, own, flat_dtm(), building_id="garage")
    assert blind.ridge_height_m > 10.0


def test_roof_rising_to_a_shared_wall_keeps_its_points():
    """A shed rising towards the higher neighbour it touches is not mistaken for the neighbour's edge."""
    rng = np.random.default_rng(5)
    hx, hy = X0 + 200, Y0 + 100
    high, shed = box(hx, hy, hx + 10, hy + 10), box(hx + 10, hy, hx + 18, hy + 10)
    z_shed = lambda x, y: GROUND + 3.0 + 4.0 * (hx + 18 - x) / 8.0      # 3 m at the east wall, 7 m at the block
    xyz = np.vstack([points_on(high, GROUND + 14.0, rng), points_on(shed, z_shed, rng)])
    rows = [dict(building_id="block", function_code=None, storeys=4, roof_form=None, geometry=high),
            dict(building_id="shed", function_code=None, storeys=1, roof_form=None, geometry=shed)]
    res = {r.building_id: r for r in reconstruct_tile(frame(rows), tile_points(xyz), flat_dtm(), TILE)}
    r = res["shed"]
    assert r.roofType == 2100 and abs(r.ridge_height_m - 7.0) < 0.1 and abs(r.eave_height_m - 3.0) < 0.1
    assert not any("touching buildings" in i for i in r.issues)


def lattice_tower(rng, top_m=38.0, side_m=6.0, density=10.0):
    """An open (lattice) tower with a platform on top: 35 % of the pulses hit the platform, 35 % one
    of the four bracing levels (horizontal: planar patches at 7.6, 15.2, 22.8 and 30.4 m), 15 % a
    member at any height, 15 % reach the ground (not building points)."""
    fp = box(X0 + 300, Y0 + 300, X0 + 300 + side_m, Y0 + 300 + side_m)
    n = int(side_m * side_m * density)
    x, y = rng.uniform(X0 + 300, X0 + 300 + side_m, n), rng.uniform(Y0 + 300, Y0 + 300 + side_m, n)
    kind = rng.random(n)
    level = top_m * rng.integers(1, 5, n) / 5.0
    z = np.where(kind < 0.35, top_m, np.where(kind < 0.7, level, rng.uniform(2.0, top_m, n)))
    keep = kind < 0.85
    return fp, np.column_stack([x[keep], y[keep], GROUND + z[keep] + rng.normal(0, 0.03, int(keep.sum()))])


@pytest.mark.parametrize("function_code", [None, "51001_9999"])
@pytest.mark.parametrize("density", [10.0, 3.0])
def test_tower_roof_at_its_top(function_code, density):
    fp, xyz = lattice_tower(np.random.default_rng(11), density=density)
    r = reconstruct_building(fp, xyz, flat_dtm(), building_id="T", function_code=function_code)
    assert r.structure == "slender" and r.method == "lod2_fitted" and r.roofType == 1000
    assert abs(r.ridge_height_m - 38.0) < 0.3 and abs(r.eave_height_m - 38.0) < 0.3
    assert r.validity_codes == []


def test_tower_without_envelope_handling_is_far_too_low(monkeypatch):
    """The lattice tower of the test above, with the slender-structure detection switched off."""
    import citymodel.lod2.build as build

    monkeypatch.setattr(build, "slender_structure", lambda *a, **k: "")
    fp, xyz = lattice_tower(np.random.default_rng(11))
    r = reconstruct_building(fp, xyz, flat_dtm(), building_id="T")
    low = min(sf.exterior[:, 2].min() for sol in r.solids for sf in sol.of_kind("RoofSurface"))
    assert low < GROUND + 38.0 - 5.0                    # part of the roof on a bracing level
    assert abs(r.eave_height_m - 38.0) > 3.0


def test_tree_over_a_garage_is_not_a_tower():
    """A garage (3 x 6 m) under a 17 m tree looks tall and slender; its own roof plane wins."""
    rng = np.random.default_rng(8)
    fp = box(X0 + 400, Y0 + 400, X0 + 403.2, Y0 + 406)
    roof = points_on(fp, GROUND + 2.7, rng)
    cx, cy, n = X0 + 401.0, Y0 + 403.0, 500
    a, rr = rng.uniform(0, 2 * np.pi, n), 3.0 * np.sqrt(rng.uniform(0, 1, n))
    crown = np.column_stack([cx + rr * np.cos(a), cy + rr * np.sin(a), GROUND + rng.uniform(11.0, 17.0, n)])
    crown = crown[shapely.contains_xy(fp, crown[:, 0], crown[:, 1])]
    r = reconstruct_building(fp, np.vstack([roof, crown]), flat_dtm(), building_id="G")
    assert r.structure == "" and abs(r.ridge_height_m - 2.7) < 0.1 and r.roofType == 1000


def test_point_roof_distances_perpendicular():
    from citymodel.lod2.build import point_roof_distances

    block = build_lod1(box(X0, Y0, X0 + 10, Y0 + 10), GROUND, 5.0)
    pts = np.array([[X0 + 5, Y0 + 5, GROUND + 5.2], [X0 + 1, Y0 + 1, GROUND + 4.9], [X0 + 20, Y0, GROUND + 5]])
    d = point_roof_distances([block], pts)
    assert d[0] == pytest.approx(0.2) and d[1] == pytest.approx(-0.1) and np.isnan(d[2])
    # a 45° shed: 1 m above it vertically is 1/sqrt(2) m away from it
    shed = RoofPart(X0 + 5, Y0 + 5, 10.0, 10.0, 0.0, GROUND, 4.0, 14.0, RoofForm.SHED)
    from citymodel.roofs import part_solid
    q = np.array([[X0 + 5, Y0 + 5, GROUND + 9.0 + 1.0]])
    assert point_roof_distances([part_solid(shed)], q)[0] == pytest.approx(1 / np.sqrt(2))


# --------------------------------------------------------------------------- bad input, tile
def tile_points(xyz, cls=1):
    n = len(xyz)
    return TilePoints(xyz, xyz[:, 2] - GROUND, np.full(n, cls, np.uint8), np.ones(n, np.uint8),
                      np.ones(n, np.uint8), False,
                      (float(xyz[:, 0].min()), float(xyz[:, 1].min()), float(xyz[:, 0].max()),
                       float(xyz[:, 1].max())), n)


def frame(rows):
    import geopandas as gpd
    return gpd.GeoDataFrame([{k: v for k, v in r.items() if k != "geometry"} for r in rows],
                            geometry=[r["geometry"] for r in rows], crs="EPSG:25832")


TILE = Tile(682, 5645)


def test_lod1_height_from_points_then_storeys_then_official_else_unknown():
    """Issue #14's order for a LoD1 block: the points where there are any, else storeys, else the
    official LoD2; with none of them the height is unknown (not a silent 6 m)."""
    fp = box(X0 + 10, Y0 + 10, X0 + 20, Y0 + 18)
    r = reconstruct_building(fp, np.empty((0, 3)), flat_dtm(), building_id="N1", storeys=3)
    assert r.method == "lod1_fallback" and "too few points" in r.fallback_reason
    assert "storeys" in r.fallback_reason and r.ridge_height_m == pytest.approx(9.0)
    assert r.height_source == "storeys"
    assert r.solid.volume_m3 == pytest.approx(80 * 9.0) and r.validity_codes == []
    both = reconstruct_building(fp, np.empty((0, 3)), flat_dtm(), building_id="N1", storeys=3,
                                official={"measured_height_m": 11.5})
    assert both.height_source == "storeys" and both.ridge_height_m == pytest.approx(9.0)
    r2 = reconstruct_building(fp, np.empty((0, 3)), flat_dtm(), building_id="N1", storeys=None,
                              official={"measured_height_m": 11.5})
    assert "official" in r2.fallback_reason and r2.ridge_height_m == pytest.approx(11.5)
    assert r2.height_source == "official_lod2"
    # a few points (too few for a roof): their height, not the storeys'
    rng = np.random.default_rng(2)
    few = np.column_stack([rng.uniform(X0 + 11, X0 + 19, 8), rng.uniform(Y0 + 11, Y0 + 17, 8),
                           GROUND + 4.2 + rng.normal(0, 0.02, 8)])
    r3 = reconstruct_building(fp, few, flat_dtm(), building_id="N1", storeys=3)
    assert r3.height_source == "points" and r3.ridge_height_m == pytest.approx(4.2, abs=0.05)
    assert r3.point_to_roof_median_m < 0.05          # the block's top is where its points are
    # nothing: unknown height, a placeholder block, and the attributes say so
    r4 = reconstruct_building(fp, np.empty((0, 3)), flat_dtm(), building_id="N1")
    assert r4.height_source == "unknown" and "height unknown" in r4.fallback_reason
    attrs = r4.attributes()
    assert attrs["ridge_height_m"] is None and attrs["eave_height_m"] is None and attrs["height_source"] == "unknown"
    assert r4.solid.volume_m3 == pytest.approx(80 * 6.0) and r4.validity_codes == []


def test_tile_bad_inputs():
    p = part(RoofForm.GABLE, angle=0.0, cx=X0 + 100, cy=Y0 + 100)
    xyz, fp_ok = sample_roof([p])
    # a building on the tile edge (x = 683000 = X0 + 900): points from the halo make it complete
    pe = part(RoofForm.HIP, angle=0.0, cx=X0 + 900 - 5.0, cy=Y0 + 200, L=16.0)
    xyz_e, fp_edge = sample_roof([pe])
    pts = tile_points(np.vstack([xyz, xyz_e]))
    bowtie = Polygon([(X0 + 300, Y0 + 300), (X0 + 310, Y0 + 310), (X0 + 310, Y0 + 300), (X0 + 300, Y0 + 310)])
    multi = MultiPolygon([box(X0 + 400, Y0 + 400, X0 + 410, Y0 + 408), box(X0 + 420, Y0 + 400, X0 + 428, Y0 + 410)])
    far = box(X0 + 700, Y0 + 700, X0 + 710, Y0 + 710)      # inside the tile, outside the point cloud
    other_tile = box(X0 + 1200, Y0 + 100, X0 + 1210, Y0 + 110)
    rows = [dict(building_id="ok", function_code="31001_1010", storeys=2, roof_form=None, geometry=fp_ok),
            dict(building_id="edge", function_code=None, storeys=3, roof_form=None, geometry=fp_edge),
            dict(building_id="bow", function_code=None, storeys=1, roof_form=None, geometry=bowtie),
            dict(building_id="multi", function_code=None, storeys=2, roof_form=None, geometry=multi),
            dict(building_id="far", function_code=None, storeys=4, roof_form=None, geometry=far),
            dict(building_id="elsewhere", function_code=None, storeys=4, roof_form=None, geometry=other_tile)]
    res = {r.building_id: r for r in reconstruct_tile(frame(rows), pts, flat_dtm(), TILE)}
    assert "elsewhere" not in res
    assert res["ok"].method == "lod2_fitted" and res["ok"].roofType == 3100
    assert res["edge"].roofType == 3200 and abs(res["edge"].ridge_height_m - 10.0) < 0.1
    assert res["edge"].solid.bounds[3] == pytest.approx(X0 + 903, abs=0.05)   # complete over the tile edge
    assert len(res["bow"].solids) == 2 and "self-intersection" in res["bow"].issues[0].lower()
    assert len(res["multi"].solids) == 2 and res["multi"].part_ids == ["multi_p1", "multi_p2"]
    assert res["far"].method == "lod1_fallback" and "outside the point cloud" in res["far"].fallback_reason
    assert res["far"].ridge_height_m == pytest.approx(12.0)
    for r in res.values():
        assert r.validity_codes == [], r.building_id
        assert r.ground_height_m == pytest.approx(GROUND, abs=1e-3)
    # the neighbouring tile gets the 'elsewhere' building, not the edge one
    nxt = [r.building_id for r in reconstruct_tile(frame(rows), pts, flat_dtm(), Tile(683, 5645))]
    assert nxt == ["elsewhere"]


def test_duplicate_ids_raise_or_flag():
    p = part(RoofForm.FLAT, cx=X0 + 100, cy=Y0 + 100)
    xyz, fp = sample_roof([p])
    fp2 = shapely.affinity.translate(fp, 30, 0)
    rows = [dict(building_id="D", function_code=None, storeys=1, roof_form=None, geometry=fp),
            dict(building_id="D", function_code=None, storeys=1, roof_form=None, geometry=fp2)]
    with pytest.raises(GeometryError, match="duplicate building_id.*'D'.*Fix"):
        reconstruct_tile(frame(rows), tile_points(xyz), flat_dtm(), TILE)
    res = reconstruct_tile(frame(rows), tile_points(xyz), flat_dtm(), TILE, on_duplicate="flag")
    assert [r.building_id for r in res] == ["D", "D#2"]
    assert all(any("duplicate" in i for i in r.issues) for r in res)


def test_empty_footprint_rejected():
    xyz, _ = sample_roof([part(RoofForm.FLAT)])
    rows = [dict(building_id="E", function_code=None, storeys=1, roof_form=None, geometry=Polygon())]
    res = reconstruct_tile(frame(rows), tile_points(xyz), flat_dtm(), TILE)
    assert res[0].method == "rejected" and res[0].solids == []


def test_results_write_valid_cityjson(tmp_path):
    from pathlib import Path

    from citymodel.cityjson import read_cityjson, write_cityjson
    from citymodel.cityjson_schema import validate_cityjson_schema

    schemas = Path(__file__).resolve().parent.parent.parent / "shared" / "schemas"
    p = part(RoofForm.HIP, angle=20.0, cx=X0 + 100, cy=Y0 + 100)
    xyz, fp = sample_roof([p])
    multi = MultiPolygon([box(X0 + 400, Y0 + 400, X0 + 410, Y0 + 408), box(X0 + 420, Y0 + 400, X0 + 428, Y0 + 410)])
    rows = [dict(building_id="H", function_code="31001_1010", storeys=2, roof_form=None, geometry=fp),
            dict(building_id="M", function_code=None, storeys=2, roof_form=None, geometry=multi)]
    res = reconstruct_tile(frame(rows), tile_points(xyz), flat_dtm(), TILE)
    path = write_cityjson(tmp_path / "b.city.json", [r.to_city_building() for r in res])
    back = {b.id: b for b in read_cityjson(path).buildings}
    assert back["H"].attributes["roofType"] == 3200 and back["H"].attributes["method"] == "lod2_fitted"
    assert len(back["M"].parts) == 2 and back["M"].attributes["method"] == "lod1_fallback"
    if not schemas.is_dir():
        pytest.skip(f"CityJSON schemas not found at {schemas}")
    schema_dir = next(d for d in sorted(schemas.iterdir()) if d.name.startswith("cityjson"))
    assert validate_cityjson_schema(path, schema_dir) == []


# ------------------------------------------------------------------- speed-ups keep results
def test_smallest_eigenpairs_match_lapack():
    """The closed-form smallest eigenpair equals numpy's LAPACK eigh (planes, edges, degenerate)."""
    from citymodel.lod2.points import smallest_eigenpairs

    rng = np.random.default_rng(3)
    q = rng.normal(size=(500, 10, 3)) * np.array([2.0, 1.0, 0.02])          # noisy planes
    q[:50, :, 1] = 0.0                                                       # flat in two directions
    q[50:60] = np.linspace(0, 1, 10)[:, None] * np.array([1.0, 2.0, 0.5])    # collinear: 2 zero eigenvalues
    q[60:70] = 0.0                                                           # identical points
    rot = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    q = q @ rot.T
    q = q - q.mean(axis=1, keepdims=True)
    cov = np.matmul(q.transpose(0, 2, 1), q) / 10
    w, v = np.linalg.eigh(cov)
    w0, v0 = smallest_eigenpairs(cov)
    scale = w[:, 2:3]                       # accuracy is relative to the matrix norm (largest eigenvalue)
    assert np.all(np.abs(w0 - w[:, 0]) <= 1e-11 * scale[:, 0])
    assert np.all(np.linalg.norm(v0, axis=1) == pytest.approx(1.0))
    assert np.all(np.abs(np.einsum("nij,nj->ni", cov, v0) - w0[:, None] * v0) <= 1e-9 * scale)   # an eigenpair
    well = w[:, 1] - w[:, 0] > 1e-6                                          # unique eigenvector
    assert np.allclose(np.abs(np.einsum("ni,ni->n", v0[well], v[well, :, 0])), 1.0, atol=1e-9)


def test_neighbourhood_pca_kernel_matches_lapack():
    """The compiled neighbourhood PCA: covariances as numpy's, smallest eigenpairs as LAPACK's eigh."""
    from scipy.spatial import cKDTree

    from citymodel.lod2.kernels import neighbourhood_pca
    from citymodel.lod2.points import local_roughness

    rng = np.random.default_rng(4)
    p = rng.normal(size=(3000, 3)) * np.array([8.0, 5.0, 0.03])             # a noisy plane ...
    p[:500, 2] += 0.4 * p[:500, 0]                                            # ... with a tilted part
    p[2000:2100] = np.linspace(0, 1, 100)[:, None] * np.array([1.0, 2.0, 0.5])  # a line: degenerate
    p = p @ np.linalg.qr(rng.normal(size=(3, 3)))[0].T
    nb = cKDTree(p).query(p, k=10)[1].astype(np.int64)
    x = p[nb]
    q = x - x.mean(axis=1, keepdims=True)
    cov = np.matmul(q.transpose(0, 2, 1), q) / 10
    w, v = np.linalg.eigh(cov)
    w0, v0, c6, bad = neighbourhood_pca(p, nb)
    assert np.allclose(c6, cov[:, [0, 1, 2, 0, 0, 1], [0, 1, 2, 1, 2, 2]], rtol=0, atol=1e-12)
    scale = w[:, 2]
    ok = ~bad
    assert ok.sum() > 2500 and bad[2000:2100].sum() > 50                    # the line is flagged
    assert np.all(np.abs(w0[ok] - w[ok, 0]) <= 1e-11 * scale[ok])
    well = ok & (w[:, 1] - w[:, 0] > 1e-6)
    assert np.allclose(np.abs(np.einsum("ni,ni->n", v0[well], v[well, :, 0])), 1.0, atol=1e-9)
    normals, rough, _ = local_roughness(p)                                  # flagged ones by eigh
    assert np.allclose(rough, np.sqrt(np.clip(w[:, 0], 0, None)), rtol=0, atol=1e-7)
    assert np.all(normals[:, 2] >= 0)
    assert np.all(np.abs(np.einsum("nij,nj->ni", cov, normals) - w[:, :1] * normals) <= 1e-9 * scale[:, None])


def test_component_labels_match_scipy():
    """Union-find components numbered as scipy's connected_components numbers them."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    from citymodel.lod2.kernels import component_labels

    rng = np.random.default_rng(6)
    for n, m in ((1, 0), (50, 0), (200, 120), (1000, 900), (1000, 3000)):
        i = rng.integers(0, n, m).astype(np.int64)
        j = rng.integers(0, n, m).astype(np.int64)
        count, ref = connected_components(coo_matrix((np.ones(m), (i, j)), shape=(n, n)), directed=False)
        got = component_labels(n, i, j)
        assert got.max() + 1 == count
        assert np.array_equal(got, ref)


def test_trimmed_fits_kernel_matches_lstsq():
    """Each candidate: numpy lstsq, then lstsq again on the points within max(0.15, 3 x truncated RMS)."""
    from citymodel.lod2.kernels import trimmed_fits

    rng = np.random.default_rng(8)
    n = 400
    for p in (1, 2, 3):
        X = rng.uniform(-1, 1, size=(5, p, n))
        X[:, 0] = 1.0
        truth = np.array([160.0, 2.0, -1.5])[:p]
        z = truth @ X[0] + rng.normal(0, 0.03, n)
        z[:40] += rng.uniform(1, 5, 40)                       # outliers (vegetation over the roof)
        theta, res, cost = trimmed_fits(X, z, 0.3, 0.15)
        for c in range(len(X)):
            A = X[c].T
            t0 = np.linalg.lstsq(A, z, rcond=None)[0]
            r = z - A @ t0
            keep = r * r <= max(0.15, 3 * np.sqrt(np.mean(np.minimum(r * r, 0.09)))) ** 2
            t1 = np.linalg.lstsq(A[keep], z[keep], rcond=None)[0]
            assert np.allclose(theta[c], t1, rtol=0, atol=1e-6)
            assert np.allclose(res[c], z - A @ t1, rtol=0, atol=1e-6)
            assert cost[c] == pytest.approx(np.sum(np.minimum((z - A @ t1) ** 2, 0.09)), rel=1e-9)
        assert np.allclose(theta[0], truth, atol=0.02)        # the outliers are trimmed away


def test_design_matrices_reproduce_the_roof_models():
    """X.T @ theta of every shape family = the closed-form roof height of citymodel.roofs."""
    from citymodel.lod2.fit import Rect, _design_stack

    rng = np.random.default_rng(9)
    L, W, g = 14.0, 9.0, 150.0
    rect = Rect(0.0, 0.0, L, W, 0.0)
    u, v = rng.uniform(-L / 2, L / 2, 500), rng.uniform(-W / 2, W / 2, 500)
    e, b, r = 156.0, 158.5, 160.0                 # eave, mansard break, ridge (absolute)
    cases = [  # kind, q, form, RoofPart extras, theta
        ("hip", 1.0, RoofForm.HIP, {"hip_length_m": 4.5}, (e, r - e)),
        ("half_hip", 0.45, RoofForm.HALF_HIP, {"half_hip_fraction": 0.45, "hip_length_m": 0.45 * 4.5}, (e, r - e)),
        ("mansard", 0.14, RoofForm.MANSARD, {"mansard_break_m": b - g, "mansard_inset_m": 0.14 * W}, (e, b, r)),
        ("mansard4", 0.14, RoofForm.MANSARD, {"mansard_break_m": b - g, "mansard_inset_m": 0.14 * W,
                                              "mansard_sides": 4}, (e, b, r)),
        ("gable_asym", 0.2, RoofForm.GABLE, {"ridge_offset_m": 1.8, "eave2_m": r - g - 0.8 * (W / 2 - 1.8)},
         (r, 0.8)),
        ("gable_asym2", 0.3, RoofForm.GABLE, {"ridge_offset_m": 2.7, "eave2_m": r - g - 1.1 * (W / 2 - 2.7)},
         (r, 0.6, 1.1)),
    ]
    for kind, q, form, extra, theta in cases:
        shapes, qs, X = _design_stack(kind, rect, [q], u, v)
        assert qs == [q] and X.shape == (1, len(theta), len(u))
        eave = theta[0] - theta[1] * (W / 2 + 2.7) if kind == "gable_asym2" else (
            theta[0] - theta[1] * (W / 2 + 1.8) if kind == "gable_asym" else e)
        part = RoofPart(0.0, 0.0, L, W, 0.0, g, eave - g, r - g, form, **extra)
        want = building_roof_height([part], u, v)
        assert np.allclose(X[0].T @ np.array(theta), want, atol=1e-9), kind


def test_points_by_footprint_and_outliers_match_reference():
    """Point selection = shapely STRtree 'intersects' (boundary included); outlier test = ball counts."""
    from scipy.spatial import cKDTree

    from citymodel.lod2 import clean_building_points, points_by_footprint

    rng = np.random.default_rng(5)
    xy = np.round(rng.uniform(0, 60, size=(20000, 2)), 1)          # on a 0.1 m grid: points on outlines
    xyz = np.column_stack([xy + [X0, Y0], rng.uniform(155, 165, len(xy))])
    pts = tile_points(xyz)
    fps = [box(X0 + 5, Y0 + 5, X0 + 15.5, Y0 + 12.3), None, Polygon(),
           MultiPolygon([box(X0 + 20, Y0 + 20, X0 + 25, Y0 + 30), box(X0 + 30, Y0 + 20, X0 + 35, Y0 + 30)]),
           Polygon([(X0 + 40, Y0 + 40), (X0 + 55, Y0 + 41), (X0 + 50, Y0 + 58)], [[(X0 + 45, Y0 + 45),
                                                                                 (X0 + 49, Y0 + 45),
                                                                                 (X0 + 47, Y0 + 48)]])]
    got = points_by_footprint(pts, fps)
    tree = shapely.STRtree([g if g is not None else Polygon() for g in fps])
    pi, fi = tree.query(shapely.points(xyz[:, :2]), predicate="intersects")
    for k in range(len(fps)):
        assert np.array_equal(got[k], np.sort(pi[fi == k])), k
    assert len(got[0]) > 0 and len(got[1]) == len(got[2]) == 0
    assert shapely.touches(fps[0], shapely.points(xyz[got[0], :2])).any()      # boundary points kept
    # outliers: fewer than 4 points (itself included) within 1 m, heights counted a third, by the ball query
    sparse = np.vstack([xyz[got[3]], [[X0 + 22, Y0 + 25, 200.0]], [[X0 + 32, Y0 + 25, 170.0]]])
    pts2 = tile_points(sparse)
    idx = np.arange(len(sparse))
    kept = clean_building_points(pts2, idx)
    scaled = sparse * np.array([1.0, 1.0, 1.0 / 3.0])
    cnt = np.asarray(cKDTree(scaled).query_ball_point(scaled, 1.0, return_length=True))
    assert np.array_equal(kept, idx[cnt >= 4])
    assert len(sparse) - 2 not in kept and len(sparse) - 1 not in kept


def test_tile_results_do_not_depend_on_worker_processes(monkeypatch):
    """Forked worker processes over the buildings of a tile give the in-process results."""
    import citymodel.lod2.build as build

    parts = [part(f, cx=X0 + 40 + 30 * (k % 6), cy=Y0 + 40 + 30 * (k // 6), angle=10.0 * k, **kw)
             for k, (f, kw) in enumerate(FORMS * 2)]
    xyz = np.vstack([sample_roof([p], seed=k)[0] for k, p in enumerate(parts)])
    rows = [dict(building_id=f"B{k}", function_code=None, storeys=2, roof_form=None,
                 geometry=Polygon(p.corners_xy())) for k, p in enumerate(parts)]
    monkeypatch.setattr(build, "BUILDINGS_PER_WORKER", 3)
    out = {}
    for w in ("1", "2"):
        monkeypatch.setenv(build.WORKERS_ENV, w)
        out[w] = reconstruct_tile(frame(rows), tile_points(xyz), flat_dtm(), TILE)
    assert build._workers(len(rows)) == 2
    for a, b in zip(out["1"], out["2"]):
        assert a.building_id == b.building_id and a.method == b.method == "lod2_fitted"
        assert a.attributes() == b.attributes()
        assert [s.vertices_array().tolist() for s in a.solids] == [s.vertices_array().tolist() for s in b.solids]


def test_bad_worker_setting_is_a_config_error(monkeypatch):
    import citymodel.lod2.build as build
    from citymodel.errors import ConfigError

    monkeypatch.setenv(build.WORKERS_ENV, "two")
    with pytest.raises(ConfigError, match="CITYMODEL_LOD2_WORKERS.*Fix"):
        build._workers(100)
    monkeypatch.setenv(build.WORKERS_ENV, "1")
    assert build._workers(1000) == 1
