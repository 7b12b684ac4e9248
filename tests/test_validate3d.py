"""val3dity-style validation: one tiny broken solid per error code, built here by hand."""

from __future__ import annotations

import time

import numpy as np
import pytest

from citymodel.errors import GeometryError
from citymodel.geometry3d import Solid, Surface, prism
from citymodel.validate3d import IMPLEMENTED_CODES, validate_indexed, validate_solid

# unit cube: 0-3 bottom (z=0), 4-7 top (z=1); faces counter-clockwise seen from outside
CUBE_V = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0],
                   [0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1]], dtype=float)
CUBE_F = [[0, 3, 2, 1], [4, 5, 6, 7], [0, 1, 5, 4], [1, 2, 6, 5], [2, 3, 7, 6], [3, 0, 4, 7]]


def cube(offset=(0.0, 0.0, 0.0), size=1.0, flip=False):
    """(vertices, faces as single-ring polygons)."""
    v = CUBE_V * size + np.asarray(offset, dtype=float)
    faces = [[f[::-1]] if flip else [list(f)] for f in CUBE_F]
    return v, faces


def codes_of(vertices, polys, **kw):
    return validate_indexed(vertices, [polys], **kw).codes


def shifted(polys, k):
    return [[[i + k for i in ring] for ring in p] for p in polys]


def gable_house(x0=0.0, y0=0.0, z0=0.0, length=10.0, width=6.0, eave=5.0, ridge=8.0) -> Solid:
    """A gable house with the ridge along x; volume = l*w*eave + l*w*(ridge-eave)/2."""
    L, W = length, width
    p = lambda x, y, z: [x0 + x, y0 + y, z0 + z]  # noqa: E731
    a = np.array
    return Solid([
        Surface("GroundSurface", [a([p(0, 0, 0), p(0, W, 0), p(L, W, 0), p(L, 0, 0)])]),
        Surface("WallSurface", [a([p(0, 0, 0), p(L, 0, 0), p(L, 0, eave), p(0, 0, eave)])]),
        Surface("WallSurface", [a([p(L, W, 0), p(0, W, 0), p(0, W, eave), p(L, W, eave)])]),
        Surface("WallSurface", [a([p(L, 0, 0), p(L, W, 0), p(L, W, eave), p(L, W / 2, ridge), p(L, 0, eave)])]),
        Surface("WallSurface", [a([p(0, W, 0), p(0, 0, 0), p(0, 0, eave), p(0, W / 2, ridge), p(0, W, eave)])]),
        Surface("RoofSurface", [a([p(0, 0, eave), p(L, 0, eave), p(L, W / 2, ridge), p(0, W / 2, ridge)])]),
        Surface("RoofSurface", [a([p(L, W, eave), p(0, W, eave), p(0, W / 2, ridge), p(L, W / 2, ridge)])]),
    ], lod=2)


# ----------------------------------------------------------------------------------------- valid

def test_valid_unit_cube_indexed_and_as_solid():
    v, f = cube()
    assert validate_indexed(v, [f]).valid
    rep = validate_solid(prism(np.array([[0, 0], [1, 0], [1, 1], [0, 1]]), 0.0, 1.0))
    assert rep.valid and rep.codes == [] and rep.errors == []


def test_valid_gable_house_in_utm_coordinates():
    s = gable_house(682_400.0, 5_645_300.0, 151.2)
    assert gable_house().volume_m3 == pytest.approx(10 * 6 * 5 + 10 * 6 * 3 / 2)   # fixture is sane
    rep = validate_solid(s, feature="house-1")
    assert rep.valid, rep.errors


def test_valid_l_shaped_prism_with_courtyard_hole():
    outer = np.array([[0, 0], [20, 0], [20, 20], [0, 20]], float)
    hole = np.array([[5, 5], [15, 5], [15, 15], [5, 15]], float)
    rep = validate_solid(prism(outer, 0.0, 9.0, holes_xy=[hole]))
    assert rep.valid, rep.errors


# ------------------------------------------------------------------------------------ ring level

def test_101_too_few_points():
    v, f = cube()
    f[1] = [[4, 5]]
    assert codes_of(v, f) == [101]


def test_102_repeated_vertex():
    v, f = cube()
    f[1] = [[4, 5, 5, 6, 7]]
    rep = validate_indexed(v, [f])
    assert rep.codes == [102]
    assert rep.errors[0].surface == 1 and rep.errors[0].level == "ring"


def test_102_after_snapping_two_points_0_4_mm_apart():
    v, f = cube()
    v = np.vstack([v, v[5] + [0.0004, 0, 0]])
    f[1] = [[4, 5, 8, 6, 7]]
    assert codes_of(v, f) == [102]


def test_103_only_for_explicitly_closed_rings():
    v, f = cube()
    closed = [[r + [r[0]] for r in p] for p in f]
    assert codes_of(v, closed, closed_rings=True) == []
    closed[2] = [closed[2][0][:-1]]
    assert codes_of(v, closed, closed_rings=True) == [103]


def test_104_bowtie_ring():
    v, f = cube()
    f[1] = [[4, 5, 7, 6]]
    assert codes_of(v, f) == [104]


def test_104_collapsed_ring():
    v = np.vstack([CUBE_V, [[0.5, 0, 1]]])
    _, f = cube()
    f.append([[4, 8, 5]])          # three collinear points: a ring collapsed to a line
    assert codes_of(v, f) == [104]


# --------------------------------------------------------------------------------- polygon level

def _top_with_holes(holes_xy):
    """Unit cube whose top face (z=1) carries the given holes (lists of (x, y))."""
    v, f = cube()
    verts = [v]
    top = [[4, 5, 6, 7]]
    k = len(v)
    for h in holes_xy:
        verts.append(np.column_stack([np.asarray(h, float), np.ones(len(h))]))
        top.append(list(range(k, k + len(h))))
        k += len(h)
    f[1] = top
    return np.vstack(verts), f


CW_SQUARE = lambda x0, y0, x1, y1: [(x0, y0), (x0, y1), (x1, y1), (x1, y0)]  # noqa: E731


def test_201_hole_crossing_exterior():
    v, f = _top_with_holes([CW_SQUARE(0.5, 0.4, 1.5, 0.6)])
    assert codes_of(v, f) == [201]


def test_valid_hole_is_accepted_in_a_polygon():
    v, f = _top_with_holes([CW_SQUARE(0.4, 0.4, 0.6, 0.6)])
    # the polygon level passes; the shell is then open around the hole (302), as it should be
    assert codes_of(v, f) == [302]


def test_202_duplicated_rings():
    v, f = cube()
    f[1] = [[4, 5, 6, 7], [7, 6, 5, 4]]
    assert codes_of(v, f) == [202]


def test_203_vertex_pushed_5_cm_out_of_plane():
    v, f = cube()
    v[6, 2] += 0.05
    rep = validate_indexed(v, [f])
    assert rep.codes == [203]
    assert {e.surface for e in rep.errors} == {1}   # the side faces stay planar (moved in-plane)
    assert "0.0" in rep.errors[0].description


def test_203_tolerance_is_a_parameter():
    v, f = cube()
    v[6, 2] += 0.005
    assert codes_of(v, f) == []
    assert codes_of(v, f, planarity_d2p_m=0.001) == [203]


def test_204_small_fold_within_the_distance_tolerance():
    v = np.vstack([CUBE_V, [[0.51, 1, 1], [0.5, 0.99, 1.008], [0.49, 1, 1]]])
    _, f = cube()
    f[1] = [[4, 5, 6, 8, 9, 10, 7]]   # a 8 mm high fold over 1 cm: ~39 deg, but < 1 cm off-plane
    assert codes_of(v, f) == [204]
    assert codes_of(v, f, planarity_n_deg=60.0) != [204]


def test_205_interior_disconnected():
    v, f = _top_with_holes([[(0, 0.5), (0.5, 0.7), (1, 0.5), (0.5, 0.3)]])
    assert codes_of(v, f) == [205]


def test_206_inner_ring_outside():
    v, f = _top_with_holes([CW_SQUARE(2, 2, 3, 3)])
    assert codes_of(v, f) == [206]


def test_207_inner_rings_nested():
    v, f = _top_with_holes([CW_SQUARE(0.2, 0.2, 0.8, 0.8), CW_SQUARE(0.4, 0.4, 0.6, 0.6)])
    assert codes_of(v, f) == [207]


def test_208_inner_ring_same_orientation():
    ccw = CW_SQUARE(0.4, 0.4, 0.6, 0.6)[::-1]
    v, f = _top_with_holes([ccw])
    assert codes_of(v, f) == [208]


# ----------------------------------------------------------------------------------- shell level

def test_301_too_few_polygons():
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], float)
    f = [[[0, 2, 1]], [[0, 1, 3]], [[1, 2, 3]]]
    assert codes_of(v, f) == [301]
    f.append([[0, 3, 2]])
    assert codes_of(v, f) == []          # the tetrahedron is the smallest valid solid


def test_302_cube_with_missing_face():
    v, f = cube()
    del f[1]
    rep = validate_indexed(v, [f])
    assert rep.codes == [302]
    assert validate_solid(Solid([s for s in prism(np.array([[0, 0], [1, 0], [1, 1], [0, 1]]), 0, 1).surfaces
                                 if s.kind != "RoofSurface"])).codes == [302]


def test_302_when_vertices_are_farther_apart_than_the_snap_tolerance():
    v, f = cube()
    v = np.vstack([v, v[6] + [0.005, 0, 0]])
    f[1] = [[4, 5, 8, 7]]       # the top uses a copy of vertex 6 moved 5 mm
    assert 302 in codes_of(v, f)
    assert codes_of(v, f, snap_m=0.01) == []


def test_303_two_cubes_sharing_only_an_edge():
    v1, f1 = cube()
    v2, f2 = cube(offset=(1, 1, 0))
    assert codes_of(np.vstack([v1, v2]), f1 + shifted(f2, 8)) == [303]


def test_303_two_cubes_sharing_only_a_vertex():
    v1, f1 = cube()
    v2, f2 = cube(offset=(1, 1, 1))
    rep = validate_indexed(np.vstack([v1, v2]), [f1 + shifted(f2, 8)])
    assert rep.codes == [303]
    assert "vertex" in rep.errors[0].description


def test_305_two_disjoint_cubes_in_one_shell():
    v1, f1 = cube()
    v2, f2 = cube(offset=(3, 0, 0))
    assert codes_of(np.vstack([v1, v2]), f1 + shifted(f2, 8)) == [305]


def test_306_shell_self_intersection():
    # triangulated cube (a valid 2-manifold), then the top corner (1,1,1) is pushed through the floor
    tris = []
    for f in CUBE_F:
        tris += [[[f[0], f[1], f[2]]], [[f[0], f[2], f[3]]]]
    assert codes_of(CUBE_V, tris) == []
    v = CUBE_V.copy()
    v[6] = [0.6, 0.6, -0.5]
    assert codes_of(v, tris) == [306]


def test_307_cube_with_one_face_flipped():
    v, f = cube()
    f[3] = [f[3][0][::-1]]
    rep = validate_indexed(v, [f])
    assert rep.codes == [307]
    assert [e.surface for e in rep.errors] == [3]


def test_309_vertex_not_used():
    v, f = cube()
    v = np.vstack([v, [[5, 5, 5]]])
    assert codes_of(v, f) == [309]
    assert codes_of(v, f, check_unused_vertices=False) == []


# ----------------------------------------------------------------------------------- solid level

def test_405_all_faces_inverted():
    v, f = cube(flip=True)
    rep = validate_indexed(v, [f])
    assert rep.codes == [405]
    assert rep.errors[0].shell == 0 and rep.errors[0].level == "solid"


def _with_inner(inner_offset, inner_size, flip_inner=True, outer_size=3.0):
    vo, fo = cube(size=outer_size)
    vi, fi = cube(offset=inner_offset, size=inner_size, flip=flip_inner)
    return np.vstack([vo, vi]), [fo, shifted(fi, 8)]


def test_inner_shell_valid_cavity():
    v, shells = _with_inner((1, 1, 1), 1.0)
    assert validate_indexed(v, shells).codes == []


def test_405_inner_shell_oriented_outwards():
    v, shells = _with_inner((1, 1, 1), 1.0, flip_inner=False)
    rep = validate_indexed(v, shells)
    assert rep.codes == [405] and rep.errors[0].shell == 1


def test_401_inner_shell_crossing_outer():
    v, shells = _with_inner((2, 1, 1), 2.0)
    assert validate_indexed(v, shells).codes == [401]


def test_402_duplicated_shells():
    vo, fo = cube(size=3.0)
    _, fi = cube(size=3.0, flip=True)
    assert validate_indexed(vo, [fo, fi]).codes == [402]


def test_403_inner_shell_outside():
    v, shells = _with_inner((5, 5, 5), 1.0)
    assert validate_indexed(v, shells).codes == [403]


# --------------------------------------------------------------------------------- API and input

def test_report_fields_and_implemented_codes():
    v, f = cube()
    f[3] = [f[3][0][::-1]]
    rep = validate_indexed(v, [f], feature="DEBBAL0001")
    e = rep.errors[0]
    assert (e.code, e.name, e.level, e.feature, e.shell) == (307, "POLYGON_WRONG_ORIENTATION", "shell",
                                                             "DEBBAL0001", 0)
    d = rep.to_dict()
    assert d["valid"] is False and d["codes"] == [307]
    assert set(IMPLEMENTED_CODES) >= {101, 102, 103, 104, 201, 202, 203, 204, 205, 206, 207, 208,
                                      301, 302, 303, 305, 306, 307, 309, 401, 402, 403, 405}


def test_bad_input_index_out_of_range_names_record_and_fix():
    v, f = cube()
    f[0] = [[0, 3, 2, 99]]
    with pytest.raises(GeometryError, match=r"record 'B-7'.*vertex 99.*Fix:"):
        validate_indexed(v, [f], feature="B-7")


def test_bad_input_empty_solid_and_bad_vertices():
    with pytest.raises(GeometryError, match="no surfaces.*Fix:"):
        validate_solid(Solid([]), feature="B-8")
    with pytest.raises(GeometryError, match=r"\(n, 3\)"):
        validate_indexed(np.zeros((4, 2)), [[[[0, 1, 2]]]])


def test_speed_typical_lod2_solids_per_second(capsys):
    # 300 different gable houses in UTM coordinates (7 polygons each)
    houses = [gable_house(682_000 + 30 * i, 5_645_000, 150, length=8 + i % 12, width=6 + i % 5,
                          eave=3 + i % 6, ridge=3 + i % 6 + 2 + i % 4) for i in range(300)]
    validate_solid(houses[0])
    t0 = time.perf_counter()
    reps = [validate_solid(h) for h in houses]
    rate = len(houses) / (time.perf_counter() - t0)
    assert all(r.valid for r in reps)
    with capsys.disabled():
        print(f"\n[validate3d] {rate:.0f} gable-house solids/s on one core")
    assert rate > 100   # target 500/s; the floor leaves room for a loaded shared CI machine


def test_box_pairs_match_brute_force():
    """The compiled box sweep finds exactly the overlapping pairs of a brute-force comparison."""
    from citymodel.validate3d import _bbox_pairs

    rng = np.random.default_rng(2)
    for T in (0, 1, 2, 30, 48, 49, 400):
        lo = rng.uniform(0, 20, size=(T, 3))
        lo[: T // 4, 0] = 5.0                                   # equal sweep keys
        hi = lo + rng.uniform(0, 3, size=(T, 3))
        hi[T // 4: T // 2] = lo[T // 4: T // 2]                 # flat boxes (touching counts)
        i, j = _bbox_pairs(lo, hi)
        got = {(min(a, b), max(a, b)) for a, b in zip(i.tolist(), j.tolist())}
        assert len(got) == len(i)                               # no pair twice
        want = {(a, b) for a in range(T) for b in range(a + 1, T)
                if np.all(lo[a] <= hi[b]) and np.all(lo[b] <= hi[a])}
        assert got == want
