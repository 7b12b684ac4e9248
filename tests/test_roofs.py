"""Parametric roof models: volumes against closed-form geometry, closed and outward-oriented solids."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import trimesh

from citymodel.errors import GeometryError
from citymodel.geometry3d import Solid, Surface
from citymodel.roofs import (BuildingSpec, RoofForm, RoofPart, building_footprint, building_roof_height,
                             part_solid, part_volume_m3, roof_form_from_code, roof_height)

L, W, E, R = 14.0, 9.0, 6.0, 10.5      # length along ridge, width, eave, ridge (m)
H = R - E
GZ = 152.25                            # ground height (m)


def make(form: RoofForm, angle: float = 27.0, **kw) -> RoofPart:
    ridge = E if form is RoofForm.FLAT else R
    length = W if form is RoofForm.PYRAMID else L
    return RoofPart(682010.0, 5645020.0, length, W, angle, GZ, E, ridge, form, **kw)


def analytic_volume(form: RoofForm) -> float:
    """Volumes derived by hand (slicing), independent of the module's own formula."""
    box = L * W * E
    if form is RoofForm.FLAT:
        return box
    if form is RoofForm.SHED:                       # a wedge on the box
        return box + L * W * H / 2
    if form is RoofForm.GABLE:                      # a triangular prism
        return box + L * W * H / 2
    if form is RoofForm.PYRAMID:                    # square base W x W
        return W * W * E + W * W * H / 3
    if form is RoofForm.HIP:
        # hip depth W/2: a triangular prism of length L - W plus a pyramid of base W x W
        return box + (L - W) * W * H / 2 + W * W * H / 3
    if form is RoofForm.HALF_HIP:
        # gable prism minus the two cut-off end corners; each corner is a pyramid with apex at the
        # ridge end, base a triangle (width f*W, height f*H) in the gable plane, depth d = f*W/2
        f = 0.35
        d = f * W / 2
        corner = (f * W) * (f * H) / 2 * d / 3
        return box + L * W * H / 2 - 2 * corner
    if form is RoofForm.MANSARD:
        b = E + 0.6 * H
        i = min(0.4 * (b - E), 0.3 * W)
        section = (W + (W - 2 * i)) / 2 * (b - E) + (W - 2 * i) * (R - b) / 2
        return box + L * section
    raise AssertionError(form)


def volume(solid) -> float:
    """``Solid.volume_m3`` of the solid moved near the origin (triple products at UTM coordinates lose
    digits: about 4e-5 relative error at x = 682 km)."""
    origin = np.array(solid.bounds[:3])
    return Solid([Surface(s.kind, [r - origin for r in s.rings]) for s in solid.surfaces]).volume_m3


def edges_of(solid) -> Counter:
    counts: Counter = Counter()
    verts, polys, _ = solid.indexed(decimals=6)
    for poly in polys:
        ring = poly[0]
        for a, b in zip(ring, ring[1:] + ring[:1]):
            counts[(a, b)] += 1
    return counts


def to_trimesh(solid) -> trimesh.Trimesh:
    verts, polys, _ = solid.indexed(decimals=6)
    faces = []
    for poly in polys:      # every face of these convex roofs is a convex polygon: fan triangulation
        ring = poly[0]
        faces += [[ring[0], ring[k], ring[k + 1]] for k in range(1, len(ring) - 1)]
    return trimesh.Trimesh(vertices=verts - verts.mean(axis=0), faces=np.array(faces), process=False)


ALL_FORMS = list(RoofForm)


def test_codes():
    assert {f.code for f in RoofForm} == {1000, 2100, 3100, 3200, 3300, 3400, 3500}
    assert RoofForm.HALF_HIP.german == "Krüppelwalmdach"
    assert roof_form_from_code("3400") is RoofForm.MANSARD
    assert roof_form_from_code(3500) is RoofForm.PYRAMID
    assert roof_form_from_code("half_hip") is RoofForm.HALF_HIP
    with pytest.raises(GeometryError, match="Fix:"):
        roof_form_from_code("9999")


@pytest.mark.parametrize("form", ALL_FORMS, ids=[f.label for f in ALL_FORMS])
def test_volume_matches_analytic(form):
    solid = part_solid(make(form))
    assert volume(solid) == pytest.approx(analytic_volume(form), rel=1e-9)
    # an independent library agrees: closed, consistently wound, same volume
    mesh = to_trimesh(solid)
    assert mesh.is_watertight and mesh.is_winding_consistent
    assert mesh.volume == pytest.approx(analytic_volume(form), rel=1e-6)


@pytest.mark.parametrize("form", ALL_FORMS, ids=[f.label for f in ALL_FORMS])
def test_solid_closed_planar_outward(form):
    part = make(form)
    solid = part_solid(part)
    # closed 2-manifold: every directed edge exactly once, and its reverse exactly once
    edges = edges_of(solid)
    for (a, b), n in edges.items():
        assert n == 1, f"edge {a}-{b} used {n} times"
        assert edges.get((b, a)) == 1, f"edge {a}-{b} has no opposite"
    centre = np.array([part.cx, part.cy, GZ + E / 2])
    for s in solid.surfaces:
        ring = s.exterior
        # planar: distance of every vertex to the best-fit plane
        c = ring.mean(axis=0)
        _, sv, vt = np.linalg.svd(ring - c)
        assert np.max(np.abs((ring - c) @ vt[2])) < 1e-8
        n = s.normal
        assert np.dot(n, ring.mean(axis=0) - centre) > 0, f"{s.kind} points inwards"
        if s.kind == "RoofSurface":
            assert n[2] > 0
        elif s.kind == "GroundSurface":
            assert n[2] == pytest.approx(-1.0)
            assert np.allclose(ring[:, 2], GZ)
        else:
            assert abs(n[2]) < 1e-9
    kinds = Counter(s.kind for s in solid.surfaces)
    assert kinds["GroundSurface"] == 1 and kinds["RoofSurface"] >= 1 and kinds["WallSurface"] == 4
    assert solid.bounds[5] == pytest.approx(GZ + part.ridge_m)


def test_wall_shapes():
    """Gable walls are pentagons up to the ridge; half-hip hexagons; mansard heptagons; hip rectangles."""
    def wall_sizes(form):
        return sorted(len(s.exterior) for s in part_solid(make(form)).of_kind("WallSurface"))
    assert wall_sizes(RoofForm.GABLE) == [4, 4, 5, 5]
    assert wall_sizes(RoofForm.HALF_HIP) == [4, 4, 6, 6]
    assert wall_sizes(RoofForm.MANSARD) == [4, 4, 7, 7]
    assert wall_sizes(RoofForm.HIP) == [4, 4, 4, 4]
    gable_top = max(s.exterior[:, 2].max() for s in part_solid(make(RoofForm.GABLE)).of_kind("WallSurface"))
    assert gable_top == pytest.approx(GZ + R)
    # half-hip: the gable wall stops at 1 - 0.35 of the roof height
    hh_top = max(s.exterior[:, 2].max() for s in part_solid(make(RoofForm.HALF_HIP)).of_kind("WallSurface"))
    assert hh_top == pytest.approx(GZ + E + 0.65 * H)
    assert len(part_solid(make(RoofForm.PYRAMID)).of_kind("RoofSurface")) == 4
    assert all(len(s.exterior) == 3 for s in part_solid(make(RoofForm.PYRAMID)).of_kind("RoofSurface"))


def grid_in(part: RoofPart, n: int = 401):
    """A regular grid over the part in local coordinates, mapped to world x, y (cell centres)."""
    u = (np.arange(n) + 0.5) / n * part.length_m - part.length_m / 2
    v = (np.arange(n) + 0.5) / n * part.width_m - part.width_m / 2
    uu, vv = np.meshgrid(u, v)
    xy = part.to_world(uu.ravel(), vv.ravel())
    return xy[:, 0], xy[:, 1], part.length_m * part.width_m / n ** 2


@pytest.mark.parametrize("form", ALL_FORMS, ids=[f.label for f in ALL_FORMS])
def test_roof_height_surface(form):
    part = make(form)
    x, y, cell = grid_in(part)
    z = roof_height(part, x, y)
    assert np.isfinite(z).all()
    # the surface integrates to the analytic volume (midpoint rule on a 401 x 401 grid)
    assert np.sum(z - GZ) * cell == pytest.approx(analytic_volume(form), rel=2e-3)
    assert z.max() == pytest.approx(GZ + part.ridge_m, abs=0.05)
    assert z.max() <= GZ + part.ridge_m + 1e-9 and z.min() >= GZ + part.eave_m - 1e-9
    # eave line: along the long sides (except the high side of a shed)
    t = np.linspace(-part.length_m / 2, part.length_m / 2, 51)
    low = part.to_world(t, np.full_like(t, -part.width_m / 2))
    assert np.allclose(roof_height(part, low[:, 0], low[:, 1]), GZ + E)
    if form is not RoofForm.SHED:
        high = part.to_world(t, np.full_like(t, part.width_m / 2))
        assert np.allclose(roof_height(part, high[:, 0], high[:, 1]), GZ + E)
    # every roof-surface vertex of the solid lies on the surface
    for s in part_solid(part).of_kind("RoofSurface"):
        ring = s.exterior
        assert np.allclose(roof_height(part, ring[:, 0], ring[:, 1], tolerance_m=1e-6), ring[:, 2], atol=1e-6)
    # NaN outside
    out = part.to_world(np.array([part.length_m / 2 + 0.1, 0.0]), np.array([0.0, part.width_m / 2 + 0.1]))
    assert np.isnan(roof_height(part, out[:, 0], out[:, 1])).all()


@pytest.mark.parametrize("angle", [0.0, 27.0, 90.0, 145.0])
def test_ridge_follows_angle(angle):
    part = make(RoofForm.GABLE, angle=angle)
    ridge_pts = np.unique(np.round(np.concatenate(
        [s.exterior for s in part_solid(part).of_kind("RoofSurface")]), 6), axis=0)
    ridge_pts = ridge_pts[np.isclose(ridge_pts[:, 2], GZ + R)]
    assert len(ridge_pts) == 2
    d = ridge_pts[1, :2] - ridge_pts[0, :2]
    assert np.linalg.norm(d) == pytest.approx(L)
    a = math.radians(angle)
    assert abs(np.cross(d / np.linalg.norm(d), [math.cos(a), math.sin(a)])) < 1e-6
    # along the ridge direction the roof stays at ridge height; across it, it falls
    s = np.linspace(-L / 2 + 0.01, L / 2 - 0.01, 9)
    z_along = roof_height(part, part.cx + s * math.cos(a), part.cy + s * math.sin(a))
    assert np.allclose(z_along, GZ + R)
    z_across = roof_height(part, part.cx - 2.0 * math.sin(a), part.cy + 2.0 * math.cos(a))
    assert z_across == pytest.approx(GZ + R - H * 2.0 / (W / 2))


def test_shed_rises_across_width():
    part = make(RoofForm.SHED, angle=0.0)
    z = roof_height(part, np.full(3, part.cx), part.cy + np.array([-W / 2, 0.0, W / 2]))
    assert np.allclose(z, GZ + np.array([E, (E + R) / 2, R]))


def test_hip_length_and_mansard_parameters():
    hip = make(RoofForm.HIP, hip_length_m=2.0)
    d = 2.0
    # gable prism minus two corner pyramids (gable triangle as base, apex at the ridge end)
    expected = L * W * E + L * W * H / 2 - 2 * (W * H / 2) * d / 3
    assert volume(part_solid(hip)) == pytest.approx(expected)
    man = make(RoofForm.MANSARD, mansard_break_m=9.0, mansard_inset_m=1.0)
    section = (W + W - 2) / 2 * 3.0 + (W - 2) * 1.5 / 2
    assert volume(part_solid(man)) == pytest.approx(L * W * E + L * section)
    assert roof_height(man, np.array([man.cx]), np.array([man.cy]))[0] == pytest.approx(GZ + R)


@pytest.mark.parametrize("kwargs, match", [
    (dict(width_m=0.0), "not positive"),
    (dict(eave_m=-1.0), "eave height"),
    (dict(ridge_m=5.0), "below the eave"),
    (dict(form=RoofForm.FLAT), "flat roof"),
    (dict(form=RoofForm.MANSARD, mansard_break_m=12.0), "mansard break"),
    (dict(form=RoofForm.MANSARD, mansard_inset_m=5.0), "mansard inset"),
    (dict(form=RoofForm.HALF_HIP, half_hip_fraction=1.5), "half_hip_fraction"),
    (dict(form=RoofForm.HIP, hip_length_m=8.0), "hip length"),
])
def test_bad_parameters(kwargs, match):
    args = dict(cx=0.0, cy=0.0, length_m=L, width_m=W, angle_deg=0.0, ground_z=0.0, eave_m=E, ridge_m=R,
                form=RoofForm.GABLE, part_id="B1-p2")
    args.update(kwargs)
    with pytest.raises(GeometryError, match=match) as info:
        RoofPart(**args)
    assert "Fix:" in str(info.value) and "B1-p2" in str(info.value)


def test_l_shape_and_multipart_building():
    main = RoofPart(10.0, 5.0, 20.0, 10.0, 0.0, 100.0, 6.0, 10.0, RoofForm.GABLE, part_id="a")
    # wing behind the main part's east end, ridge perpendicular, lower ridge
    wing = RoofPart(16.0, 14.0, 8.0, 8.0, 90.0, 100.0, 6.0, 9.0, RoofForm.GABLE, part_id="b")
    fp = building_footprint([main, wing])
    assert fp.geom_type == "Polygon"
    assert fp.area == pytest.approx(200.0 + 64.0)
    assert len(fp.exterior.coords) - 1 == 6          # an L: six corners, no slivers
    spec = BuildingSpec("DETHL51P00000001", [main, wing], storeys=2)
    z = spec.roof_height(np.array([10.0, 16.0, 16.0, 40.0]), np.array([5.0, 14.0, 5.0, 5.0]))
    assert z[0] == pytest.approx(110.0) and z[1] == pytest.approx(109.0)
    assert z[2] == pytest.approx(110.0)          # on the main part's ridge
    assert np.isnan(z[3])
    assert spec.ridge_m == 10.0 and spec.roof_form is RoofForm.GABLE
    # overlapping parts of different heights: the roof is the higher one where they overlap
    tower = RoofPart(10.0, 5.0, 4.0, 4.0, 0.0, 100.0, 20.0, 20.0, RoofForm.FLAT, part_id="t")
    zz = building_roof_height([main, tower], np.array([10.0, 4.0]), np.array([5.0, 1.0]))
    assert zz[0] == pytest.approx(120.0)
    assert zz[1] == pytest.approx(100.0 + 6.0 + 4.0 * (1 - 2 * 4.0 / 10.0))
    assert [s.volume_m3 > 0 for s in spec.solids()] == [True, True]
    far = RoofPart(100.0, 100.0, 5.0, 5.0, 0.0, 100.0, 3.0, 3.0, RoofForm.FLAT, part_id="far")
    with pytest.raises(GeometryError, match="MultiPolygon"):
        building_footprint([main, far])


# ------------------------------------------------------- asymmetric gables, four-sided mansards
VARIANTS = {
    "asym_equal_slopes": dict(form=RoofForm.GABLE, eave2_m=7.5),
    "asym_offset_only": dict(form=RoofForm.GABLE, ridge_offset_m=1.5),
    "asym_general": dict(form=RoofForm.GABLE, eave2_m=7.0, ridge_offset_m=-1.0),
    "mansard4": dict(form=RoofForm.MANSARD, mansard_sides=4, mansard_break_m=9.0, mansard_inset_m=1.0),
    "mansard4_square": dict(form=RoofForm.MANSARD, mansard_sides=4, mansard_break_m=9.0, mansard_inset_m=1.0,
                            length_m=W),
    "mansard4_turned": dict(form=RoofForm.MANSARD, mansard_sides=4, mansard_break_m=9.0, mansard_inset_m=1.0,
                            length_m=6.0),
}


def make_variant(name: str, angle: float = 27.0) -> RoofPart:
    kw = dict(VARIANTS[name])
    length = kw.pop("length_m", L)
    form = kw.pop("form")
    return RoofPart(682010.0, 5645020.0, length, W, angle, GZ, E, R, form, **kw)


def hand_volume(part: RoofPart) -> float:
    """Volumes by slicing, written out independently of the module's formulas."""
    Lp, Wp = part.length_m, part.width_m
    if part.form is RoofForm.GABLE:
        e1 = E
        e2 = part.eave2_m if part.eave2_m is not None else E
        if part.ridge_offset_m is not None:
            vr = part.ridge_offset_m
        else:        # equal slopes s: R - e1 = s (vr + W/2) and R - e2 = s (W/2 - vr)
            s = (2 * R - e1 - e2) / Wp
            vr = (R - e1) / s - Wp / 2
        # cross-section over v: two trapezoids from the eaves up to the ridge
        return Lp * ((vr + Wp / 2) * (e1 + R) / 2 + (Wp / 2 - vr) * (e2 + R) / 2)
    # four-sided mansard: horizontal slices. Between e and b the slice at fraction t is the rectangle
    # shrunk by t i on every side; above b a hip roof over the inner rectangle (m <= M), equally steep
    b, i = part.mansard_break_m, part.mansard_inset_m
    ts = (np.arange(20000) + 0.5) / 20000
    lower = (b - E) * np.mean((Lp - 2 * ts * i) * (Wp - 2 * ts * i))
    m, M = sorted((Lp - 2 * i, Wp - 2 * i))
    upper = (R - b) * np.mean((M - ts * m) * (m - ts * m))      # slice: (M - m t) x m (1 - t)
    return Lp * Wp * E + lower + upper


@pytest.mark.parametrize("name", list(VARIANTS))
def test_variant_volume_closed_outward(name):
    part = make_variant(name)
    solid = part_solid(part)
    assert volume(solid) == pytest.approx(hand_volume(part), rel=1e-6)
    assert part_volume_m3(part) == pytest.approx(hand_volume(part), rel=1e-6)
    mesh = to_trimesh(solid)
    assert mesh.is_watertight and mesh.is_winding_consistent
    assert mesh.volume == pytest.approx(hand_volume(part), rel=1e-6)
    edges = edges_of(solid)
    assert all(n == 1 and edges.get((b, a)) == 1 for (a, b), n in edges.items())
    centre = np.array([part.cx, part.cy, GZ + E / 2])
    for s in solid.surfaces:
        assert np.dot(s.normal, s.exterior.mean(axis=0) - centre) > 0, f"{s.kind} points inwards"
    assert solid.bounds[5] == pytest.approx(GZ + R)
    # the surface integrates to the same volume, and every roof vertex lies on it
    x, y, cell = grid_in(part)
    z = roof_height(part, x, y)
    assert np.sum(z - GZ) * cell == pytest.approx(hand_volume(part), rel=2e-3)
    for s in solid.of_kind("RoofSurface"):
        ring = s.exterior
        assert np.allclose(roof_height(part, ring[:, 0], ring[:, 1]), ring[:, 2], atol=1e-6)
    # parameters survive the ground-truth dictionary
    back = RoofPart.from_dict(part.to_dict())
    assert np.allclose(roof_height(back, x, y), z)


def test_asymmetric_gable_geometry():
    part = make_variant("asym_equal_slopes", angle=0.0)
    roofs = part_solid(part).of_kind("RoofSurface")
    slopes = sorted(math.degrees(math.acos(s.normal[2])) for s in roofs)
    assert slopes[0] == pytest.approx(slopes[1], abs=1e-6)                   # equally steep
    assert slopes[0] == pytest.approx(math.degrees(math.atan((2 * R - E - 7.5) / W)), abs=1e-6)
    # eaves along the long sides at 6.0 (v = -W/2) and 7.5 m (v = +W/2); the ridge is off the centre
    t = np.linspace(-L / 2, L / 2, 11)
    assert np.allclose(roof_height(part, part.cx + t, np.full_like(t, part.cy - W / 2)), GZ + E)
    assert np.allclose(roof_height(part, part.cx + t, np.full_like(t, part.cy + W / 2)), GZ + 7.5)
    vr = W / 2 * (7.5 - E) / (2 * R - E - 7.5)
    assert part.ridge_offset == pytest.approx(vr)
    assert roof_height(part, np.array([part.cx]), np.array([part.cy + vr])) == pytest.approx(GZ + R)
    assert part.eave_low_m == E and part.asymmetric and not make(RoofForm.GABLE).asymmetric
    walls = part_solid(part).of_kind("WallSurface")
    assert sorted(len(w.exterior) for w in walls) == [4, 4, 5, 5]


def test_hipped_mansard_geometry():
    part = make_variant("mansard4", angle=0.0)
    roofs = part_solid(part).of_kind("RoofSurface")
    slopes = np.array([math.degrees(math.acos(s.normal[2])) for s in roofs])
    lower = math.degrees(math.atan((9.0 - E) / 1.0))
    upper = math.degrees(math.atan((R - 9.0) / (W / 2 - 1.0)))
    assert np.sum(np.isclose(slopes, lower)) == 4 and np.sum(np.isclose(slopes, upper)) == 4
    assert len(roofs) == 8
    walls = part_solid(part).of_kind("WallSurface")
    assert len(walls) == 4 and all(np.isclose(w.exterior[:, 2].max(), GZ + E) for w in walls)
    # the eave runs round all four sides
    t = np.linspace(-W / 2, W / 2, 11)
    assert np.allclose(roof_height(part, np.full_like(t, part.cx + L / 2), part.cy + t), GZ + E)
    assert np.allclose(roof_height(part, np.full_like(t, part.cx - L / 2), part.cy + t), GZ + E)
    # the ridge runs along the longer side, L - W long
    ridge = np.unique(np.round(np.concatenate([s.exterior for s in roofs]), 6), axis=0)
    ridge = ridge[np.isclose(ridge[:, 2], GZ + R)]
    assert len(ridge) == 2 and np.linalg.norm(ridge[1, :2] - ridge[0, :2]) == pytest.approx(L - W)


@pytest.mark.parametrize("kwargs, match", [
    (dict(form=RoofForm.HIP, eave2_m=7.0), "only for a gable"),
    (dict(eave2_m=-1.0), "second eave"),
    (dict(eave2_m=11.0), "not above both eaves"),
    (dict(ridge_offset_m=4.5), "ridge offset"),
    (dict(form=RoofForm.MANSARD, mansard_sides=3), "mansard_sides"),
    (dict(form=RoofForm.MANSARD, mansard_sides=4, length_m=4.0, mansard_inset_m=2.5), "mansard inset"),
    (dict(form=RoofForm.MANSARD, mansard_sides=4, mansard_break_m=6.5, mansard_inset_m=1.0), "not steeper"),
])
def test_bad_variant_parameters(kwargs, match):
    args = dict(cx=0.0, cy=0.0, length_m=L, width_m=W, angle_deg=0.0, ground_z=0.0, eave_m=E, ridge_m=R,
                form=RoofForm.GABLE, part_id="B7")
    args.update(kwargs)
    with pytest.raises(GeometryError, match=match) as info:
        RoofPart(**args)
    assert "Fix:" in str(info.value) and "B7" in str(info.value)
