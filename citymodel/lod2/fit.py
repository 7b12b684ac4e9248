"""Fit of the parametric roof forms of :mod:`citymodel.roofs` to building points.

For a rectangle (and each of its two axis orientations) every form's roof height is written as
``z = X @ theta`` for fixed shape parameters (hip depth, half-hip fraction, mansard inset, the
ridge's offset of an asymmetric gable), with ``theta`` = (eave, ridge - eave), (eave, break,
ridge), (ridge, slope) or (ridge, slope 1, slope 2): a linear least-squares problem. The shape
parameters are searched on a grid; the fit is made robust by one trimmed refit; forms are compared
by a BIC on a truncated quadratic cost (vegetation or wall points left over cannot dominate).
Each shape family counts its own parameters: an asymmetric gable (3 with equal slopes, 4 with two
slopes) must fit clearly better than the symmetric one (2) to be chosen; a four-sided mansard
(4: eave, break, ridge, inset) competes with the two-sided one and with the hip.

Rectilinear footprints (L, T, U and multi-part buildings) are split into rectangles along their
own vertex lines; every split into at most four rectangles is tried and scored the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry import Polygon

from ..roofs import RoofForm, RoofPart, building_roof_height

__all__ = ["Rect", "FormFit", "PartitionFit", "rect_of", "fit_rect", "fit_footprint", "truncated_cost",
           "bic", "FORM_PARAMS"]

#: number of continuous parameters of each form (BIC complexity) in its basic shape
FORM_PARAMS = {RoofForm.FLAT: 1, RoofForm.SHED: 2, RoofForm.GABLE: 2, RoofForm.PYRAMID: 2,
               RoofForm.HIP: 3, RoofForm.HALF_HIP: 3, RoofForm.MANSARD: 4}
#: shape families fitted on a grid of one shape parameter: kind -> (form, parameters, grid)
#: hip: depth q W/2; half_hip: fraction q; mansard: inset q W; mansard4: inset q min(L, W);
#: gable_asym (equal slopes) and gable_asym2 (two slopes): ridge offset q W from the centre line
SHAPE_KINDS = {
    "hip": (RoofForm.HIP, 3, (0.5, 0.75, 1.0, 1.25, 1.5)),
    "half_hip": (RoofForm.HALF_HIP, 3, (0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75)),
    "mansard": (RoofForm.MANSARD, 4, (0.04, 0.07, 0.1, 0.14, 0.19, 0.25)),
    "mansard4": (RoofForm.MANSARD, 4, (0.04, 0.07, 0.1, 0.14, 0.19, 0.25)),
    "gable_asym": (RoofForm.GABLE, 3, (-0.4, -0.3, -0.2, -0.1, 0.1, 0.2, 0.3, 0.4)),
    "gable_asym2": (RoofForm.GABLE, 4, (-0.3, -0.15, 0.0, 0.15, 0.3)),
}
#: the richer shape families, fitted only when the basic forms leave a clear misfit (a model hierarchy:
#: a roof the basic forms explain to within noise does not need them)
EXTENDED_KINDS = ("mansard4", "gable_asym", "gable_asym2")
#: ... a clear misfit: the best basic form's truncated cost per point above this (m², about 7 cm RMS)
EXTENDED_MIN_COST_M2 = 0.005
TRUNCATE_M = 0.3
MIN_ROOF_RISE_M = 0.3


@dataclass(frozen=True)
class Rect:
    """A rectangle: centre, ``length_m`` along ``angle_deg`` (ccw from east), ``width_m`` across."""

    cx: float
    cy: float
    length_m: float
    width_m: float
    angle_deg: float

    def local(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a = math.radians(self.angle_deg)
        c, s = math.cos(a), math.sin(a)
        dx, dy = x - self.cx, y - self.cy
        return dx * c + dy * s, -dx * s + dy * c

    def turned(self) -> "Rect":
        return Rect(self.cx, self.cy, self.width_m, self.length_m, (self.angle_deg + 90.0) % 360.0)

    def flipped(self) -> "Rect":
        return Rect(self.cx, self.cy, self.length_m, self.width_m, (self.angle_deg + 180.0) % 360.0)

    def polygon(self) -> Polygon:
        a = math.radians(self.angle_deg)
        c, s = math.cos(a), math.sin(a)
        hl, hw = self.length_m / 2, self.width_m / 2
        u = np.array([-hl, hl, hl, -hl])
        v = np.array([-hw, -hw, hw, hw])
        return Polygon(np.column_stack([self.cx + u * c - v * s, self.cy + u * s + v * c]))


@dataclass
class FormFit:
    """Best fit of one form on one rectangle."""

    part: RoofPart
    cost: float           # truncated quadratic cost (m²)
    n: int
    k: int
    rmse_m: float         # RMS of the inlier residuals

    @property
    def bic(self) -> float:
        return bic(self.cost, self.n, self.k)


@dataclass
class PartitionFit:
    """A footprint explained by rectangular parts."""

    parts: list[RoofPart]
    cost: float
    n: int
    k: int
    rmse_m: float
    candidates: dict = field(default_factory=dict)   # form label -> bic (single rectangles)
    outlier_share: float = 0.0                        # share of points farther than TRUNCATE_M from the roof

    @property
    def bic(self) -> float:
        return bic(self.cost, self.n, self.k)


def truncated_cost(res: np.ndarray, c: float = TRUNCATE_M) -> float:
    return float(np.sum(np.minimum(res * res, c * c)))


def bic(cost: float, n: int, k: int) -> float:
    """BIC-like score: ``n ln(cost/n + 1e-4) + 2 k ln n`` (lower is better).

    The penalty is twice the BIC's: an extra parameter must buy a clear improvement (a half-hip
    with a tiny hip is a gable fitted to a few wall points).
    """
    n = max(n, 1)
    return float(n * math.log(cost / n + 1e-4) + 2.0 * k * math.log(n))


def rect_of(poly: Polygon) -> Rect:
    """The minimum rotated rectangle of a polygon as a :class:`Rect` (length along its first edge)."""
    mrr = shapely.minimum_rotated_rectangle(poly)
    c = np.asarray(mrr.exterior.coords)[:4]
    e1 = c[1] - c[0]
    e2 = c[2] - c[1]
    l1, l2 = float(np.hypot(*e1)), float(np.hypot(*e2))
    ang = math.degrees(math.atan2(e1[1], e1[0])) % 180.0
    ctr = c.mean(axis=0)
    return Rect(float(ctr[0]), float(ctr[1]), l1, l2, ang)


# --------------------------------------------------------------------------- design matrices
def _design_stack(kind: str, rect: Rect, qs, u: np.ndarray, v: np.ndarray):
    """Design matrices of a shape family (:data:`SHAPE_KINDS`) for many shape parameters ``qs`` at once.

    Parameters the form cannot take are skipped. Returns ``(shapes, qs, X)``: the shape dicts and
    parameters of the applicable ``qs`` (in order) and their design matrices stacked column by
    column, ``(m, p, n)``, with ``z = X[c].T @ theta`` (:func:`.kernels.design_columns`):

    - mansard, inset ``i = q W`` (mansard4: ``q min(L, W)``), ``theta`` = (eave, break, ridge):
      columns ``(1 - t, t, 0)`` below the break (``t`` = distance from the eave / ``i``), else
      ``(0, w, 1 - w)`` (``w`` = distance from the ridge line / its half width);
    - gable_asym ``z = r - s |v - vr|``, ``vr = q W``: theta = (r, s);
    - gable_asym2 ``z = r - s1 (vr - v)+ - s2 (v - vr)+``: theta = (r, s1, s2);
    - hip, depth ``d = q W / 2``: ``[1, min(1 - 2|v|/W, (L/2 - |u|) / d)]``;
    - half_hip, fraction ``q``: ``[1, min(1 - 2|v|/W, 1 - q (1 - (L/2 - |u|) / d))]``.
    """
    from .kernels import DESIGN_CODES, design_columns   # numba: imported on first use

    L, W = rect.length_m, rect.width_m
    q = np.asarray([float(x) for x in qs], dtype=float)
    u = np.ascontiguousarray(u, dtype=np.float64)
    v = np.ascontiguousarray(v, dtype=np.float64)
    code = DESIGN_CODES[kind]
    if kind in ("mansard", "mansard4"):
        four = kind == "mansard4"
        q = q[(q > 0) & (q < 0.5)]
        i = q * (min(L, W) if four else W)
        extra = {"mansard_sides": 4} if four else {}
        return ([{"mansard_inset_m": float(x), **extra} for x in i], [float(x) for x in q],
                design_columns(code, L, W, i, i, u, v))
    if kind in ("gable_asym", "gable_asym2"):
        q = q[np.abs(q) < 0.5]
        vr = q * W
        slopes = 1 if kind == "gable_asym" else 2
        return ([{"ridge_offset_m": float(x), "slopes": slopes} for x in vr], [float(x) for x in q],
                design_columns(code, L, W, vr, vr, u, v))
    d = q * W / 2
    if kind == "hip":
        ok = ~((d > L / 2 + 1e-9) | (d < 0.5))
        q, d = q[ok], d[ok]
        return ([{"hip_length_m": min(float(x), L / 2)} for x in d], [float(x) for x in q],
                design_columns(code, L, W, d, d, u, v))
    if kind == "half_hip":
        ok = ~((d > L / 2) | (d < 0.3) | ~((q > 0) & (q < 1)))
        q, d = q[ok], d[ok]
        return ([{"half_hip_fraction": float(a), "hip_length_m": float(b)} for a, b in zip(q, d)],
                [float(x) for x in q], design_columns(code, L, W, q, d, u, v))
    raise ValueError(kind)


def _candidate_groups(rect: Rect, u: np.ndarray, v: np.ndarray, forms=None, turned: bool = False,
                      kinds=None) -> list:
    """Candidates on ``rect`` as groups ``(form, kind, k, rect, shapes, qs, X (m, p, n))``, ``z = X[c].T @ theta``.

    Gable, the two sheds, and the shape families of :data:`SHAPE_KINDS`; ``theta`` = (e, h),
    (e, b, r), (r, s) or (r, s1, s2). The four-sided mansard does not depend on the orientation:
    it is left out on the ``turned`` rectangle.
    """
    W = rect.width_m
    n = len(u)
    out = []

    def single(form, r, col1):
        X = np.empty((1, 2, n))
        X[0, 0] = 1.0
        X[0, 1] = col1
        out.append((form, form.label, FORM_PARAMS[form], r, [{}], [None], X))

    basic = kinds is None or "basic" in kinds
    if basic and (forms is None or RoofForm.GABLE in forms):
        single(RoofForm.GABLE, rect, 1.0 - 2.0 * np.abs(v) / W)
    if basic and (forms is None or RoofForm.SHED in forms):
        single(RoofForm.SHED, rect, (v + W / 2) / W)
        single(RoofForm.SHED, rect.flipped(), (W / 2 - v) / W)
    for kind, (form, k, grid) in SHAPE_KINDS.items():
        if kinds is not None and kind not in kinds:
            continue
        if (forms is None or form in forms) and not (turned and kind == "mansard4"):
            shapes, qs, X = _design_stack(kind, rect, grid, u, v)
            if len(qs):
                out.append((form, kind, k, rect, shapes, qs, X))
    return out


def _make_part(form: RoofForm, rect: Rect, shape: dict, theta: np.ndarray, ground_z: float,
               part_id: str) -> RoofPart | None:
    W = rect.width_m
    if form is RoofForm.MANSARD:
        e, b, r = theta
        i = shape["mansard_inset_m"]
        sides = shape.get("mansard_sides", 2)
        half = W / 2 if sides == 2 else min(rect.length_m, W) / 2
        if not (e < b - 0.2 < r - 0.4) or (b - e) / i <= (r - b) / (half - i):
            return None
        eave, ridge = e - ground_z, r - ground_z
        extra = {"mansard_break_m": b - ground_z, "mansard_inset_m": i, "mansard_sides": sides}
    elif "slopes" in shape:             # asymmetric gable: theta = (r, s) or (r, s1, s2)
        vr = shape["ridge_offset_m"]
        r = theta[0]
        s1, s2 = (theta[1], theta[1]) if shape["slopes"] == 1 else (theta[1], theta[2])
        e1, e2 = r - s1 * (vr + W / 2), r - s2 * (W / 2 - vr)
        if min(r - e1, r - e2) < MIN_ROOF_RISE_M or min(e1, e2) - ground_z <= 0.5:
            return None
        eave, ridge = e1 - ground_z, r - ground_z
        extra = {"eave2_m": e2 - ground_z, "ridge_offset_m": vr}
    elif form is RoofForm.FLAT:
        eave = ridge = theta[0] - ground_z
        extra = {}
    else:
        e, h = theta
        if h < MIN_ROOF_RISE_M:
            return None
        eave, ridge = e - ground_z, e + h - ground_z
        extra = dict(shape)
    if eave <= 0.5:
        return None
    try:
        return RoofPart(rect.cx, rect.cy, rect.length_m, rect.width_m, rect.angle_deg, ground_z, float(eave),
                        float(ridge), form, part_id=part_id, **extra)
    except Exception:   # parameter combination the roof model rejects
        return None


def fit_rect(xyz: np.ndarray, rect: Rect, ground_z: float, part_id: str = "",
             forms: tuple[RoofForm, ...] | None = None, max_points: int = 800) -> dict[RoofForm, FormFit]:
    """Best fit of every roof form on ``rect`` (both axis orientations) to the points ``xyz``.

    At most ``max_points`` points (an even subsample) are used: enough for centimetre heights.

    Returns
    -------
    dict
        RoofForm -> FormFit (forms without a valid fit are missing).
    """
    if len(xyz) > max_points:       # an even subsample: the forms are compared on the same points
        xyz = xyz[np.linspace(0, len(xyz) - 1, max_points).astype(np.int64)]
    n = len(xyz)
    out: dict[RoofForm, FormFit] = {}
    if n < 5:
        return out
    z = np.ascontiguousarray(xyz[:, 2], dtype=np.float64)
    # flat
    med = float(np.median(z))
    res = z - med
    part = _make_part(RoofForm.FLAT, rect, {}, np.array([med]), ground_z, part_id)
    if part is not None and (forms is None or RoofForm.FLAT in forms):
        inl = np.abs(res) <= TRUNCATE_M
        out[RoofForm.FLAT] = FormFit(part, truncated_cost(res), n, 1,
                                     float(np.sqrt(np.mean(res[inl] ** 2))) if inl.any() else float("nan"))
    # pyramid (orientation-free)
    u, v = rect.local(xyz[:, 0], xyz[:, 1])
    groups = []
    if forms is None or RoofForm.PYRAMID in forms:
        g = np.minimum(1 - 2 * np.abs(v) / rect.width_m, 1 - 2 * np.abs(u) / rect.length_m)
        X = np.empty((1, 2, n))
        X[0, 0] = 1.0
        X[0, 1] = g
        groups.append((RoofForm.PYRAMID, "pyramid", FORM_PARAMS[RoofForm.PYRAMID], rect, [{}], [None], X))
    local = {}
    basic = ("basic",) + tuple(k for k in SHAPE_KINDS if k not in EXTENDED_KINDS)
    for r, turned in ((rect, False), (rect.turned(), True)):
        uu, vv = local[r] = r.local(xyz[:, 0], xyz[:, 1])
        groups.extend(_candidate_groups(r, uu, vv, forms, turned=turned, kinds=basic))
    best_q: dict[str, tuple[Rect, float]] = {}
    out, best_q = _run_groups(groups, z, ground_z, part_id, out, best_q)
    best = min((f.cost for f in out.values()), default=np.inf)
    if best / n > EXTENDED_MIN_COST_M2:
        groups = []
        for r, turned in ((rect, False), (rect.turned(), True)):
            groups.extend(_candidate_groups(r, *local[r], forms, turned=turned, kinds=EXTENDED_KINDS))
        out, best_q = _run_groups(groups, z, ground_z, part_id, out, best_q)
    # refine the shape parameter of each family between the neighbouring grid values
    refine = []
    for kind, (r, q) in best_q.items():
        form, k_params, grid = SHAPE_KINDS[kind]
        grid = np.asarray(grid)
        k = int(np.argmin(np.abs(grid - q)))
        lo = grid[max(k - 1, 0)]
        hi = grid[min(k + 1, len(grid) - 1)]
        if kind == "gable_asym2" and k in (0, len(grid) - 1):     # widen at the ends of the grid
            lo, hi = (max(lo - 0.15, -0.45), hi) if k == 0 else (lo, min(hi + 0.15, 0.45))
        uu, vv = local[r] if r in local else r.local(xyz[:, 0], xyz[:, 1])
        # the ridge offset moves a whole plane: a finer step (1-2 % of the width) than the other shapes
        steps = 21 if kind.startswith("gable_asym") else 11
        shapes, qs, X = _design_stack(kind, r, np.linspace(lo, hi, steps), uu, vv)
        if len(qs):
            refine.append((form, kind, k_params, r, shapes, qs, X))
    out, _ = _run_groups(refine, z, ground_z, part_id, out, {})
    return out


def _run_groups(groups, z, ground_z, part_id, out, best_q):
    """Solve all candidate groups ``(form, kind, k, rect, shapes, qs, X)``; keep the best valid one of each form.

    Every candidate is a least-squares fit with one trimmed refit (:func:`.kernels.trimmed_fits`:
    the fit, then again on the points within max(0.15 m, 3 x the truncated RMS)); within a form the lowest BIC wins
    (the shape families of a form may differ in their number of parameters); ties are broken by
    candidate order. ``best_q`` records the best shape parameter of each family.
    """
    if not groups:
        return out, best_q
    from .kernels import trimmed_fits        # numba: imported on first use (see the kernels module)

    meta = [(form, kind, kp, r, shape, q) for form, kind, kp, r, shapes, qs, _ in groups
            for shape, q in zip(shapes, qs)]
    fits = [trimmed_fits(g[6], z, TRUNCATE_M, 0.15) for g in groups]
    thetas = [t for theta, _, _ in fits for t in theta]
    resids = [r for _, res, _ in fits for r in res]
    costs = np.concatenate([cost for _, _, cost in fits])
    n = len(z)
    seen_kind: set[str] = set()
    for k in np.argsort(costs, kind="stable"):
        form, kind, kp, r, shape, q = meta[k]
        if kind in seen_kind:
            continue            # a worse candidate of a family that already has a valid one
        cost, theta, res = float(costs[k]), thetas[k], resids[k]
        best = out.get(form)
        score = bic(cost, n, kp)
        if best is not None and score >= best.bic and q is None:
            continue            # cannot win, and no shape parameter to refine
        if form is RoofForm.PYRAMID:
            part = _make_part(RoofForm.HIP, r, {"hip_length_m": r.length_m / 2}, theta, ground_z, part_id)
            part = None if part is None else RoofPart(**{**part.__dict__, "form": RoofForm.PYRAMID,
                                                         "hip_length_m": None})
        else:
            part = _make_part(form, r, shape, theta, ground_z, part_id)
        if part is None:
            continue
        seen_kind.add(kind)
        if q is not None:
            best_q[kind] = (r, q)
        if best is None or score < best.bic:
            inl = np.abs(res) <= TRUNCATE_M
            out[form] = FormFit(part, cost, n, kp,
                                float(np.sqrt(np.mean(res[inl] ** 2))) if inl.any() else float("nan"))
    return out, best_q


def best_form(fits: dict[RoofForm, FormFit]) -> FormFit | None:
    if not fits:
        return None
    return min(fits.values(), key=lambda f: f.bic)


# ------------------------------------------------------------------------- rectilinear split
def _axis_lines(vals: np.ndarray, tol: float) -> np.ndarray:
    vals = np.sort(vals)
    groups = [[vals[0]]]
    for x in vals[1:]:
        if x - groups[-1][-1] <= tol:
            groups[-1].append(x)
        else:
            groups.append([x])
    return np.array([np.mean(g) for g in groups])


def _partitions(inside: np.ndarray, max_rects: int):
    """All partitions of the True cells of ``inside`` into at most ``max_rects`` axis rectangles."""
    ny, nx = inside.shape
    results: list[list[tuple[int, int, int, int]]] = []

    def rec(covered: np.ndarray, acc: list):
        free = np.argwhere(inside & ~covered)
        if len(free) == 0:
            results.append(list(acc))
            return
        if len(acc) >= max_rects or len(results) > 200:
            return
        r0, c0 = free[0]
        for r1 in range(r0, ny):
            if not (inside[r1, c0] and not covered[r1, c0]):
                break
            for c1 in range(c0, nx):
                block = inside[r0:r1 + 1, c0:c1 + 1] & ~covered[r0:r1 + 1, c0:c1 + 1]
                if not block.all():
                    break
                cov = covered.copy()
                cov[r0:r1 + 1, c0:c1 + 1] = True
                acc.append((r0, r1, c0, c1))
                rec(cov, acc)
                acc.pop()

    rec(np.zeros_like(inside), [])
    return results


def rectilinear_cells(poly: Polygon, rect: Rect, snap_m: float = 0.3, max_angle_deg: float = 3.0):
    """Grid of the footprint's own vertex lines in the frame of ``rect``, or None if not rectilinear.

    Returns ``(us, vs, inside)``: cell edges along u and v and the (nv, nu) mask of cells inside.
    """
    ring = np.asarray(poly.exterior.coords)
    u, v = rect.local(ring[:, 0], ring[:, 1])
    du, dv = np.diff(u), np.diff(v)
    seg = np.hypot(du, dv)
    ang = np.degrees(np.arctan2(np.abs(dv), np.abs(du)))
    long = seg > 0.2
    if not np.all((ang[long] <= max_angle_deg) | (ang[long] >= 90 - max_angle_deg)):
        return None
    us = _axis_lines(u, snap_m)
    vs = _axis_lines(v, snap_m)
    if len(us) > 6 or len(vs) > 6:
        return None
    cu = (us[:-1] + us[1:]) / 2
    cv = (vs[:-1] + vs[1:]) / 2
    CU, CV = np.meshgrid(cu, cv)
    a = math.radians(rect.angle_deg)
    c, s = math.cos(a), math.sin(a)
    X = rect.cx + CU * c - CV * s
    Y = rect.cy + CU * s + CV * c
    inside = shapely.contains_xy(poly, X, Y)
    return us, vs, inside


def _cell_rect(rect: Rect, us, vs, r0, r1, c0, c1) -> Rect:
    u0, u1, v0, v1 = us[c0], us[c1 + 1], vs[r0], vs[r1 + 1]
    a = math.radians(rect.angle_deg)
    c, s = math.cos(a), math.sin(a)
    uc, vc = (u0 + u1) / 2, (v0 + v1) / 2
    return Rect(rect.cx + uc * c - vc * s, rect.cy + uc * s + vc * c, u1 - u0, v1 - v0, rect.angle_deg)


def _points_in(xyz: np.ndarray, r: Rect, inset_m: float) -> np.ndarray:
    u, v = r.local(xyz[:, 0], xyz[:, 1])
    m = (np.abs(u) <= r.length_m / 2 - inset_m) & (np.abs(v) <= r.width_m / 2 - inset_m)
    return xyz[m]


def _score(parts: list[RoofPart], xyz: np.ndarray, k: int) -> PartitionFit:
    zr = building_roof_height(parts, xyz[:, 0], xyz[:, 1])
    res = np.where(np.isfinite(zr), xyz[:, 2] - zr, TRUNCATE_M)
    inl = np.abs(res) <= TRUNCATE_M
    rmse = float(np.sqrt(np.mean(res[inl] ** 2))) if inl.any() else float("nan")
    return PartitionFit(parts, truncated_cost(res), len(xyz), k, rmse,
                        outlier_share=float(1.0 - inl.mean()) if len(inl) else 0.0)


def fit_footprint(poly: Polygon, xyz: np.ndarray, ground_z: float, building_id: str = "", *,
                  rect_ratio: float = 0.97, inset_m: float = 0.3, max_rects: int = 4,
                  min_points: int = 20, min_side_m: float = 2.0) -> PartitionFit | None:
    """Explain a footprint by one or more rectangular parametric parts.

    Parameters
    ----------
    poly : Polygon
        Footprint.
    xyz : (n, 3) array
        Roof points (vegetation and outliers removed), absolute z.
    ground_z : float
        Absolute ground height of the building.
    building_id : str
        Id for the parts (``<id>`` or ``<id>_p<k>``).
    rect_ratio : float
        A footprint whose area is at least this share of its minimum rotated rectangle is one part.
    inset_m : float
        Points closer than this to a part's edge are not used to fit it (walls, eaves).

    Returns
    -------
    PartitionFit or None
        None when the footprint is neither rectangular nor rectilinear, or the points do not
        carry a fit.
    """
    rect = rect_of(poly)
    area = rect.length_m * rect.width_m
    inner = _points_in(xyz, rect, 0.0)
    fp_pts = xyz[shapely.contains_xy(poly.buffer(-inset_m), xyz[:, 0], xyz[:, 1])]
    if len(fp_pts) < min_points:
        return None
    if area > 0 and poly.area / area >= rect_ratio:
        fits = fit_rect(_points_in(inner, rect, inset_m), rect, ground_z, building_id)
        b = best_form(fits)
        if b is None:
            return None
        out = _score([b.part], fp_pts, b.k)
        out.candidates = {f.label: round(ff.bic, 1) for f, ff in fits.items()}
        return out
    cells = rectilinear_cells(poly, rect)
    if cells is None:
        return None
    us, vs, inside = cells
    cell_area = float(np.sum(np.outer(np.diff(vs), np.diff(us))[inside]))
    if abs(cell_area - poly.area) > 0.03 * poly.area:
        return None
    cache: dict[tuple, FormFit | None] = {}
    best: PartitionFit | None = None
    for partition in _partitions(inside, max_rects):
        parts, k, ok = [], 0, True
        for key in partition:
            if key not in cache:
                r = _cell_rect(rect, us, vs, *key)
                if min(r.length_m, r.width_m) < min_side_m:
                    cache[key] = None
                else:
                    pts = _points_in(xyz, r, inset_m)
                    cache[key] = best_form(fit_rect(pts, r, ground_z)) if len(pts) >= min_points else None
            f = cache[key]
            if f is None:
                ok = False
                break
            parts.append(f.part)
            k += f.k
        if not ok:
            continue
        k += 3 * (len(parts) - 1)
        # main part first (largest), ids
        parts.sort(key=lambda p: -p.length_m * p.width_m)
        if len(parts) > 1:
            parts = [RoofPart(**{**p.__dict__, "part_id": f"{building_id}_p{j + 1}"}) for j, p in enumerate(parts)]
        else:
            parts = [RoofPart(**{**parts[0].__dict__, "part_id": building_id})]
        cand = _score(parts, fp_pts, k)
        if best is None or cand.bic < best.bic:
            best = cand
    return best
