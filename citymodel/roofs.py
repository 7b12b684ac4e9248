"""Parametric roof models of rectangular building parts (AdV ``Dachform`` codes).

A building is one or more rectangular :class:`RoofPart` objects (L and T shapes, and multi-part
buildings of different heights, are several parts). Each part knows its roof surface
(:func:`roof_height`, vectorised over points) and its closed LoD2 solid (:func:`part_solid`).
The same models serve the sample city generator (ground truth, LiDAR sampling) and the parametric
builder of planning variants (new buildings from footprint, heights and roof form alone).

Local frame of a part: ``u`` along the ridge (the part's length axis, direction ``angle_deg``
counter-clockwise from the x axis = east), ``v`` across it (``u`` rotated by +90°), origin at the
part's centre. All lengths in metres; heights ``eave_m``/``ridge_m`` are above ``ground_z``
(absolute, e.g. DHHN2016).

Supported forms (all convex, so the roof is the lower envelope of its planes):

=========  =====  ==============================================================================
form       code   shape
=========  =====  ==============================================================================
FLAT       1000   horizontal at ``eave_m`` (``ridge_m == eave_m``)
SHED       2100   one plane rising across the width, from the eave (``v = -W/2``) to the ridge
                  (``v = +W/2``)
GABLE      3100   two planes meeting in the ridge; the two gable walls reach up to the ridge.
                  Asymmetric gables (also: a "shed" with a short back slope) are gables too: the
                  eave of the ``+v`` side at ``eave2_m`` and/or the ridge off the centre line at
                  ``v = ridge_offset_m`` (see below)
HIP        3200   gable plus two hip planes at the ends (``hip_length_m``, default ``W/2``:
                  all four planes equally steep)
HALF_HIP   3300   hip planes only in the top ``half_hip_fraction`` of the roof height; the gable
                  walls reach up to the half-hip
MANSARD    3400   steep lower planes from the eave to ``mansard_break_m``, inset by
                  ``mansard_inset_m``, and a shallow roof above: ``mansard_sides=2`` (default) a
                  gable above, vertical gable walls; ``mansard_sides=4`` the hipped mansard
                  (Mansardwalmdach, see below)
PYRAMID    3500   four planes meeting in one apex above the centre
=========  =====  ==============================================================================

Asymmetric gable (GABLE): ``eave_m`` is the eave at ``v = -W/2``, ``eave2_m`` the eave at
``v = +W/2`` (default ``eave_m``), ``ridge_offset_m`` the ridge's position ``v_r`` across the part
(``-W/2 < v_r < W/2``). Without ``ridge_offset_m`` both planes are equally steep, which puts the
ridge at ``v_r = W/2 (e2 - e1) / (2 r - e1 - e2)`` (towards the higher eave); with it and without
``eave2_m`` the eaves are equal and the slopes differ. The roof is the lower envelope of the two
planes through (``v = -W/2``, ``e1``), (``v_r``, ``r``) and (``v_r``, ``r``), (``W/2``, ``e2``).

Four-sided (hipped) mansard (MANSARD, ``mansard_sides=4``): four lower planes, all inset by ``i =
mansard_inset_m`` (so all four equally steep: ``(b - e) / i``) rise from the eave ``e`` on every
wall to the break ``b = mansard_break_m``; the break line is the rectangle ``(L - 2i) x (W - 2i)``.
Above it a hip roof with all four upper planes equally steep, ``(r - b) / (min(L, W)/2 - i)``,
rises to the ridge ``r`` (ridge length ``|L - W|``, along the longer side; a point for a square
part). All four walls are rectangles up to the eave. Convexity: the lower planes must be steeper
than the upper ones.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field, replace
from typing import Iterable, Sequence

import numpy as np
import shapely
from shapely.geometry import Polygon

from .errors import GeometryError, dataset_error
from .geometry3d import Solid, Surface, newell_normal

__all__ = [
    "RoofForm", "RoofPart", "BuildingSpec", "roof_height", "part_solid", "part_footprint",
    "part_volume_m3", "building_roof_height", "building_footprint", "building_solids",
    "roof_form_from_code",
]

_EPS = 1e-9


class RoofForm(enum.Enum):
    """Roof forms with their AdV ``Dachform`` code (``RoofForm.GABLE.code == 3100``)."""

    FLAT = 1000
    SHED = 2100
    GABLE = 3100
    HIP = 3200
    HALF_HIP = 3300
    MANSARD = 3400
    PYRAMID = 3500

    @property
    def code(self) -> int:
        return int(self.value)

    @property
    def german(self) -> str:
        """The AdV name (``Satteldach``)."""
        return _GERMAN[self]

    @property
    def label(self) -> str:
        """Lower-case English name used in ground truth and attributes (``half_hip``)."""
        return self.name.lower()


_GERMAN = {
    RoofForm.FLAT: "Flachdach", RoofForm.SHED: "Pultdach", RoofForm.GABLE: "Satteldach",
    RoofForm.HIP: "Walmdach", RoofForm.HALF_HIP: "Krüppelwalmdach", RoofForm.MANSARD: "Mansardendach",
    RoofForm.PYRAMID: "Zeltdach",
}


def roof_form_from_code(code: int | str | RoofForm) -> RoofForm:
    """The :class:`RoofForm` of an AdV code (``3100``, ``"3100"``) or a name (``"gable"``, ``"GABLE"``).

    Raises
    ------
    GeometryError
        If the code or name is not one of the supported forms.
    """
    if isinstance(code, RoofForm):
        return code
    text = str(code).strip()
    try:
        return RoofForm(int(float(text)))
    except ValueError:
        pass
    try:
        return RoofForm[text.upper().replace("-", "_")]
    except KeyError:
        raise dataset_error(GeometryError, "roof model", f"unknown roof form {code!r}",
                            f"use one of the AdV codes {[f.code for f in RoofForm]} or the names "
                            f"{[f.label for f in RoofForm]}") from None


@dataclass(frozen=True)
class RoofPart:
    """A rectangular building part with a parametric roof.

    Parameters
    ----------
    cx, cy : float
        Centre of the rectangle in the processing CRS (m).
    length_m : float
        Extent along the ridge (the ``u`` axis).
    width_m : float
        Extent across the ridge (the ``v`` axis); the eaves run along the length.
    angle_deg : float
        Direction of the ridge, degrees counter-clockwise from the x axis (east).
    ground_z : float
        Absolute height of the part's base (m).
    eave_m, ridge_m : float
        Eave and ridge height above ``ground_z`` (m); ``ridge_m == eave_m`` for a flat roof.
    form : RoofForm
    hip_length_m : float, optional
        HIP/HALF_HIP: horizontal depth of the hip plane at each end, measured from the gable wall
        to the ridge end. Default: the value that makes the hip plane as steep as the side planes
        (``W/2`` for HIP, ``half_hip_fraction * W/2`` for HALF_HIP), at most ``L/2``.
    half_hip_fraction : float
        HALF_HIP: share of the roof height (from the top) taken by the hip, in (0, 1).
    mansard_break_m : float, optional
        MANSARD: height of the slope break above ground; default ``eave + 0.6 (ridge - eave)``.
    mansard_inset_m : float, optional
        MANSARD: horizontal inset of the break line from the eave; default
        ``min(0.4 (break - eave), 0.3 W)`` (and ``0.3 L`` for four sides).
    part_id : str
        Identifier of the part (for multi-part buildings).
    eave2_m : float, optional
        GABLE: eave height above ground of the ``+v`` side (default ``eave_m``): an asymmetric gable.
    ridge_offset_m : float, optional
        GABLE: position of the ridge across the part, ``v`` from the centre line (m, ``|v| < W/2``);
        default: where both planes are equally steep (0 when the eaves are equal).
    mansard_sides : {2, 4}
        MANSARD: 2 for steep planes on the two long sides (vertical gable walls), 4 for the hipped
        (four-sided) mansard.
    """

    cx: float
    cy: float
    length_m: float
    width_m: float
    angle_deg: float
    ground_z: float
    eave_m: float
    ridge_m: float
    form: RoofForm = RoofForm.GABLE
    hip_length_m: float | None = None
    half_hip_fraction: float = 0.35
    mansard_break_m: float | None = None
    mansard_inset_m: float | None = None
    part_id: str = ""
    eave2_m: float | None = None
    ridge_offset_m: float | None = None
    mansard_sides: int = 2

    def __post_init__(self) -> None:
        object.__setattr__(self, "form", roof_form_from_code(self.form))
        rec = self.part_id or None
        if not (self.length_m > 0 and self.width_m > 0):
            raise dataset_error(GeometryError, "roof model", f"part size {self.length_m} x {self.width_m} m "
                                "is not positive", "give length_m > 0 and width_m > 0", rec)
        if not self.eave_m > 0:
            raise dataset_error(GeometryError, "roof model", f"eave height {self.eave_m} m is not positive",
                                "give eave_m > 0 (height above ground)", rec)
        if self.ridge_m < self.eave_m - _EPS:
            raise dataset_error(GeometryError, "roof model", f"ridge height {self.ridge_m} m is below the "
                                f"eave height {self.eave_m} m", "give ridge_m >= eave_m", rec)
        if self.form is RoofForm.FLAT and abs(self.ridge_m - self.eave_m) > 1e-6:
            raise dataset_error(GeometryError, "roof model", f"flat roof with ridge {self.ridge_m} m != eave "
                                f"{self.eave_m} m", "set ridge_m = eave_m for a flat roof", rec)
        if self.form is RoofForm.HALF_HIP and not 0 < self.half_hip_fraction < 1:
            raise dataset_error(GeometryError, "roof model", f"half_hip_fraction {self.half_hip_fraction} "
                                "is outside (0, 1)", "give a fraction of the roof height, e.g. 0.35", rec)
        if self.hip_length_m is not None and not 0 < self.hip_length_m <= self.length_m / 2 + _EPS:
            raise dataset_error(GeometryError, "roof model", f"hip length {self.hip_length_m} m is outside "
                                f"(0, L/2 = {self.length_m / 2} m]", "give 0 < hip_length_m <= length_m/2",
                                rec)
        if (self.eave2_m is not None or self.ridge_offset_m is not None) and self.form is not RoofForm.GABLE:
            raise dataset_error(GeometryError, "roof model", f"eave2_m / ridge_offset_m given for a "
                                f"{self.form.label} roof", "give them only for a gable (3100)", rec)
        if self.form is RoofForm.GABLE and self.asymmetric:
            e2 = self.eave2
            if not e2 > 0:
                raise dataset_error(GeometryError, "roof model", f"second eave height {e2} m is not positive",
                                    "give eave2_m > 0 (height above ground)", rec)
            if not self.ridge_m > max(self.eave_m, e2) + _EPS:
                raise dataset_error(GeometryError, "roof model", f"ridge {self.ridge_m} m is not above both eaves "
                                    f"({self.eave_m} m, {e2} m)", "give ridge_m > eave_m and eave2_m", rec)
            if not abs(self.ridge_offset) < self.width_m / 2:
                raise dataset_error(GeometryError, "roof model", f"ridge offset {self.ridge_offset} m is outside "
                                    f"(-W/2, W/2) = ±{self.width_m / 2} m",
                                    "give |ridge_offset_m| < width_m/2", rec)
        if self.mansard_sides not in (2, 4):
            raise dataset_error(GeometryError, "roof model", f"mansard_sides {self.mansard_sides!r} is not 2 or 4",
                                "give 2 (gable mansard) or 4 (hipped mansard)", rec)
        if self.form is RoofForm.MANSARD:
            b, i = self.mansard_break, self.mansard_inset
            if not self.eave_m < b < self.ridge_m:
                raise dataset_error(GeometryError, "roof model", f"mansard break {b} m is not between eave "
                                    f"{self.eave_m} m and ridge {self.ridge_m} m",
                                    "give eave_m < mansard_break_m < ridge_m", rec)
            half = self.width_m / 2 if self.mansard_sides == 2 else min(self.length_m, self.width_m) / 2
            if not 0 < i < half:
                raise dataset_error(GeometryError, "roof model", f"mansard inset {i} m is outside "
                                    f"(0, {'W' if self.mansard_sides == 2 else 'min(L, W)'}/2 = {half} m)",
                                    "give 0 < mansard_inset_m < width_m/2 (and < length_m/2 for four sides)",
                                    rec)
            # convexity: the lower planes must be steeper than the upper ones
            if (b - self.eave_m) / i <= (self.ridge_m - b) / (half - i):
                raise dataset_error(GeometryError, "roof model", "mansard lower planes are not steeper than "
                                    "the upper planes", "lower mansard_break_m or reduce mansard_inset_m", rec)

    # ---------------------------------------------------------------- derived parameters
    @property
    def roof_height_m(self) -> float:
        """Ridge minus eave (m)."""
        return self.ridge_m - self.eave_m

    @property
    def hip_fraction(self) -> float:
        """Share of the roof height taken by the end planes (0 gable, 1 hip/pyramid)."""
        if self.form in (RoofForm.HIP, RoofForm.PYRAMID):
            return 1.0
        if self.form is RoofForm.HALF_HIP:
            return float(self.half_hip_fraction)
        return 0.0

    @property
    def hip_depth(self) -> float:
        """Horizontal depth of the end planes (0 for a gable)."""
        if self.form is RoofForm.PYRAMID:
            return self.length_m / 2
        if self.form not in (RoofForm.HIP, RoofForm.HALF_HIP):
            return 0.0
        if self.hip_length_m is not None:
            return float(self.hip_length_m)
        return min(self.hip_fraction * self.width_m / 2, self.length_m / 2)

    @property
    def mansard_break(self) -> float:
        if self.mansard_break_m is not None:
            return float(self.mansard_break_m)
        return self.eave_m + 0.6 * (self.ridge_m - self.eave_m)

    @property
    def mansard_inset(self) -> float:
        if self.mansard_inset_m is not None:
            return float(self.mansard_inset_m)
        side = self.width_m if self.mansard_sides == 2 else min(self.length_m, self.width_m)
        return min(0.4 * (self.mansard_break - self.eave_m), 0.3 * side)

    @property
    def asymmetric(self) -> bool:
        """A gable whose eaves differ or whose ridge is off the centre line."""
        return self.form is RoofForm.GABLE and (
            (self.eave2_m is not None and abs(self.eave2_m - self.eave_m) > 1e-9)
            or (self.ridge_offset_m is not None and abs(self.ridge_offset_m) > 1e-9))

    @property
    def eave2(self) -> float:
        """Eave height of the ``+v`` side (m above ground): ``eave2_m``, else ``eave_m``."""
        return float(self.eave2_m) if self.eave2_m is not None else float(self.eave_m)

    @property
    def ridge_offset(self) -> float:
        """Ridge position across the part (``v``, m): given, else where both gable planes are equally steep."""
        if self.ridge_offset_m is not None:
            return float(self.ridge_offset_m)
        if self.form is not RoofForm.GABLE:
            return 0.0
        e1, e2, r = self.eave_m, self.eave2, self.ridge_m
        denom = 2.0 * r - e1 - e2
        return self.width_m / 2 * (e2 - e1) / denom if denom > _EPS else 0.0

    @property
    def eave_low_m(self) -> float:
        """The lowest eave above ground (m): ``min(eave_m, eave2)`` for a gable, else ``eave_m``."""
        return min(float(self.eave_m), self.eave2) if self.form is RoofForm.GABLE else float(self.eave_m)

    @property
    def ridge_direction(self) -> np.ndarray:
        """Unit vector (x, y) along the ridge."""
        a = np.radians(self.angle_deg)
        return np.array([np.cos(a), np.sin(a)])

    def corners_xy(self) -> np.ndarray:
        """The rectangle's four corners (4, 2), counter-clockwise."""
        hl, hw = self.length_m / 2, self.width_m / 2
        return self.to_world(np.array([-hl, hl, hl, -hl]), np.array([-hw, -hw, hw, hw]))

    def to_local(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a = np.radians(self.angle_deg)
        c, s = np.cos(a), np.sin(a)
        dx = np.asarray(x, dtype=float) - self.cx
        dy = np.asarray(y, dtype=float) - self.cy
        return dx * c + dy * s, -dx * s + dy * c

    def to_world(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        a = np.radians(self.angle_deg)
        c, s = np.cos(a), np.sin(a)
        u = np.asarray(u, dtype=float)
        v = np.asarray(v, dtype=float)
        return np.column_stack([self.cx + u * c - v * s, self.cy + u * s + v * c])

    def with_ground(self, ground_z: float) -> "RoofPart":
        return replace(self, ground_z=float(ground_z))

    def to_dict(self) -> dict:
        """JSON-ready parameters (form as label and code; derived defaults filled in)."""
        return {
            "part_id": self.part_id, "cx": float(self.cx), "cy": float(self.cy),
            "length_m": float(self.length_m), "width_m": float(self.width_m),
            "angle_deg": float(self.angle_deg), "ground_z": float(self.ground_z),
            "eave_m": float(self.eave_m), "ridge_m": float(self.ridge_m),
            "roof_form": self.form.label, "roof_code": self.form.code,
            "hip_length_m": float(self.hip_depth) if self.form in (RoofForm.HIP, RoofForm.HALF_HIP) else None,
            "half_hip_fraction": float(self.half_hip_fraction) if self.form is RoofForm.HALF_HIP else None,
            "mansard_break_m": float(self.mansard_break) if self.form is RoofForm.MANSARD else None,
            "mansard_inset_m": float(self.mansard_inset) if self.form is RoofForm.MANSARD else None,
            "mansard_sides": int(self.mansard_sides) if self.form is RoofForm.MANSARD else None,
            "eave2_m": float(self.eave2) if self.asymmetric else None,
            "ridge_offset_m": float(self.ridge_offset) if self.asymmetric else None,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "RoofPart":
        form = roof_form_from_code(d.get("roof_code", d.get("roof_form", d.get("form"))))
        return cls(cx=d["cx"], cy=d["cy"], length_m=d["length_m"], width_m=d["width_m"],
                   angle_deg=d["angle_deg"], ground_z=d["ground_z"], eave_m=d["eave_m"],
                   ridge_m=d["ridge_m"], form=form,
                   hip_length_m=d.get("hip_length_m") if form in (RoofForm.HIP, RoofForm.HALF_HIP) else None,
                   half_hip_fraction=d.get("half_hip_fraction") or 0.35,
                   mansard_break_m=d.get("mansard_break_m"), mansard_inset_m=d.get("mansard_inset_m"),
                   part_id=d.get("part_id", ""),
                   eave2_m=d.get("eave2_m") if form is RoofForm.GABLE else None,
                   ridge_offset_m=d.get("ridge_offset_m") if form is RoofForm.GABLE else None,
                   mansard_sides=int(d.get("mansard_sides") or 2))


# ==================================================================================== surface
def _local_roof_height(part: RoofPart, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Roof height above ground in local coordinates (no inside test)."""
    L, W = part.length_m, part.width_m
    e, r = part.eave_m, part.ridge_m
    h = r - e
    f = part.form
    av = np.abs(v)
    if f is RoofForm.FLAT:
        return np.full(np.broadcast(u, v).shape, e, dtype=float)
    if f is RoofForm.SHED:
        return e + h * (v + W / 2) / W + 0.0 * u
    if f is RoofForm.MANSARD:
        b, i = part.mansard_break, part.mansard_inset
        lower = e + (b - e) * (W / 2 - av) / i
        if part.mansard_sides == 4:
            au = np.abs(u)
            lower = np.minimum(lower, e + (b - e) * (L / 2 - au) / i)
            a, c, k = _hipped_upper(part)
            upper = r - k * np.maximum(au - a, av - c)
        else:
            upper = r - (r - b) * av / (W / 2 - i)
        return np.minimum(lower, upper) + 0.0 * u
    if f is RoofForm.GABLE and part.asymmetric:
        vr, e2 = part.ridge_offset, part.eave2
        left = r - (r - e) * (vr - v) / (vr + W / 2)
        right = r - (r - e2) * (v - vr) / (W / 2 - vr)
        return np.minimum(left, right) + 0.0 * u
    side = e + h * (1.0 - 2.0 * av / W)
    d = part.hip_depth
    if d <= 0:
        return side + 0.0 * u
    fr = part.hip_fraction
    s = L / 2 - np.abs(u)                      # distance from the nearer end wall
    end = r - fr * h * (1.0 - s / d)
    return np.minimum(side, end)


def _hipped_upper(part: RoofPart) -> tuple[float, float, float]:
    """Upper hip of a four-sided mansard: ridge half-lengths along ``u`` and ``v`` and the slope."""
    i = part.mansard_inset
    li, wi = part.length_m - 2 * i, part.width_m - 2 * i
    return max(0.0, (li - wi) / 2), max(0.0, (wi - li) / 2), (part.ridge_m - part.mansard_break) / (min(li, wi) / 2)


def roof_height(part: RoofPart, x: np.ndarray, y: np.ndarray, tolerance_m: float = 1e-6) -> np.ndarray:
    """Absolute height of the roof surface at ``x, y``; NaN outside the part's rectangle.

    Parameters
    ----------
    part : RoofPart
    x, y : array_like
        Coordinates in the processing CRS (broadcast together).
    tolerance_m : float
        Points this far outside the rectangle still count as inside (edges are inclusive).

    Returns
    -------
    numpy.ndarray
        ``ground_z + roof height`` (m), NaN outside.
    """
    u, v = part.to_local(x, y)
    z = part.ground_z + _local_roof_height(part, u, v)
    inside = (np.abs(u) <= part.length_m / 2 + tolerance_m) & (np.abs(v) <= part.width_m / 2 + tolerance_m)
    return np.where(inside, z, np.nan)


# ====================================================================================== solid
def _roof_faces_local(part: RoofPart) -> list[tuple[str, list[tuple[float, float, float]]]]:
    """The part's boundary polygons in local (u, v, z-above-ground) coordinates, any orientation."""
    L, W = part.length_m, part.width_m
    hl, hw = L / 2, W / 2
    e, r = part.eave_m, part.ridge_m
    f = part.form
    faces: list[tuple[str, list[tuple[float, float, float]]]] = []
    ground = [(-hl, -hw, 0.0), (hl, -hw, 0.0), (hl, hw, 0.0), (-hl, hw, 0.0)]
    faces.append(("GroundSurface", ground))
    if f is RoofForm.FLAT:
        faces.append(("RoofSurface", [(x, y, e) for x, y, _ in ground]))
        for (x0, y0, _), (x1, y1, _) in zip(ground, ground[1:] + ground[:1]):
            faces.append(("WallSurface", [(x0, y0, 0.0), (x1, y1, 0.0), (x1, y1, e), (x0, y0, e)]))
        return faces
    if f is RoofForm.SHED:
        zs = {-hw: e, hw: r}
        faces.append(("RoofSurface", [(x, y, zs[y]) for x, y, _ in ground]))
        for (x0, y0, _), (x1, y1, _) in zip(ground, ground[1:] + ground[:1]):
            faces.append(("WallSurface", [(x0, y0, 0.0), (x1, y1, 0.0), (x1, y1, zs[y1]), (x0, y0, zs[y0])]))
        return faces
    if f is RoofForm.MANSARD and part.mansard_sides == 4:
        return faces + _hipped_mansard_faces(part)
    if f is RoofForm.GABLE and part.asymmetric:
        vr, e2 = part.ridge_offset, part.eave2
        faces.append(("WallSurface", [(-hl, -hw, 0.0), (hl, -hw, 0.0), (hl, -hw, e), (-hl, -hw, e)]))
        faces.append(("WallSurface", [(hl, hw, 0.0), (-hl, hw, 0.0), (-hl, hw, e2), (hl, hw, e2)]))
        for xe in (-hl, hl):
            faces.append(("WallSurface", [(xe, -hw, 0.0), (xe, hw, 0.0), (xe, hw, e2), (xe, vr, r), (xe, -hw, e)]))
        faces.append(("RoofSurface", [(-hl, -hw, e), (hl, -hw, e), (hl, vr, r), (-hl, vr, r)]))
        faces.append(("RoofSurface", [(-hl, hw, e2), (hl, hw, e2), (hl, vr, r), (-hl, vr, r)]))
        return faces
    # eave walls (the long sides) are rectangles up to the eave
    faces.append(("WallSurface", [(-hl, -hw, 0.0), (hl, -hw, 0.0), (hl, -hw, e), (-hl, -hw, e)]))
    faces.append(("WallSurface", [(hl, hw, 0.0), (-hl, hw, 0.0), (-hl, hw, e), (hl, hw, e)]))
    if f is RoofForm.MANSARD:
        b, i = part.mansard_break, part.mansard_inset
        profile = [(-hw, e), (-hw + i, b), (0.0, r), (hw - i, b), (hw, e)]   # cross-section over v
        for xe in (-hl, hl):
            faces.append(("WallSurface", [(xe, hw, 0.0), (xe, -hw, 0.0)] + [(xe, y, z) for y, z in profile]))
        for k in range(len(profile) - 1):
            (y0, z0), (y1, z1) = profile[k], profile[k + 1]
            faces.append(("RoofSurface", [(-hl, y0, z0), (hl, y0, z0), (hl, y1, z1), (-hl, y1, z1)]))
        return faces
    # gable / hip / half-hip / pyramid: side planes and (possibly degenerate) end planes
    h = r - e
    fr = part.hip_fraction
    d = part.hip_depth
    zb = r - fr * h                      # top of the end wall (= ridge for gable, eave for hip)
    wb = hw * fr                         # half-width of the end wall at zb
    ridge_u = hl - d                     # ridge runs from -ridge_u to +ridge_u
    for sgn in (-1.0, 1.0):              # the two side planes
        faces.append(("RoofSurface", [(-hl, sgn * hw, e), (hl, sgn * hw, e), (hl, sgn * wb, zb),
                                      (ridge_u, 0.0, r), (-ridge_u, 0.0, r), (-hl, sgn * wb, zb)]))
    for xe in (-hl, hl):                 # end walls (pentagon for gable, hexagon for half-hip)
        faces.append(("WallSurface", [(xe, -hw, 0.0), (xe, hw, 0.0), (xe, hw, e), (xe, wb, zb),
                                      (xe, -wb, zb), (xe, -hw, e)]))
        if fr > 0:                       # hip plane (triangle)
            sx = np.sign(xe)
            faces.append(("RoofSurface", [(xe, -wb, zb), (xe, wb, zb), (sx * ridge_u, 0.0, r)]))
    return faces


def _hipped_mansard_faces(part: RoofPart) -> list[tuple[str, list[tuple[float, float, float]]]]:
    """Walls and roof planes of a four-sided mansard (local coordinates, any orientation)."""
    hl, hw = part.length_m / 2, part.width_m / 2
    e, b, r, i = part.eave_m, part.mansard_break, part.ridge_m, part.mansard_inset
    a, c, _ = _hipped_upper(part)
    outer = [(-hl, -hw), (hl, -hw), (hl, hw), (-hl, hw)]             # counter-clockwise
    inner = [(-hl + i, -hw + i), (hl - i, -hw + i), (hl - i, hw - i), (-hl + i, hw - i)]
    # ridge ends above each inner corner's side: the ridge runs along the longer inner side
    top = [(-a, -c), (a, -c), (a, c), (-a, c)]
    faces: list[tuple[str, list[tuple[float, float, float]]]] = []
    for k in range(4):
        (x0, y0), (x1, y1) = outer[k], outer[(k + 1) % 4]
        (p0, q0), (p1, q1) = inner[k], inner[(k + 1) % 4]
        (s0, t0), (s1, t1) = top[k], top[(k + 1) % 4]
        faces.append(("WallSurface", [(x0, y0, 0.0), (x1, y1, 0.0), (x1, y1, e), (x0, y0, e)]))
        faces.append(("RoofSurface", [(x0, y0, e), (x1, y1, e), (p1, q1, b), (p0, q0, b)]))
        faces.append(("RoofSurface", [(p0, q0, b), (p1, q1, b), (s1, t1, r), (s0, t0, r)]))
    return faces


def _clean_ring(ring: np.ndarray, tol: float = 1e-7) -> np.ndarray:
    """Drop consecutive duplicate vertices (degenerate parameters collapse edges)."""
    keep = []
    pts = ring.tolist()                  # Python floats: a few vertices, math.dist without array overhead
    for k, p in enumerate(pts):
        if not keep or math.dist(p, pts[keep[-1]]) > tol:
            keep.append(k)
    if len(keep) > 1 and math.dist(pts[keep[0]], pts[keep[-1]]) <= tol:
        keep.pop()
    return ring[keep]


def part_solid(part: RoofPart) -> Solid:
    """The part as a closed LoD2 solid with Ground-, Wall- and RoofSurfaces.

    Every polygon is planar and its exterior ring is counter-clockwise seen from outside. Gable
    walls are pentagons up to the roof edge (hexagons for a half-hip, heptagons for a mansard).
    Degenerate edges (a pyramid's ridge of length 0) are removed.

    Returns
    -------
    Solid
        ``lod=2``; each surface has ``attributes['roof_code']`` of the part (roofs only) and
        ``attributes['part_id']``.
    """
    centre = np.array([0.0, 0.0, max(part.eave_m, 1e-3) / 2.0])
    surfaces: list[Surface] = []
    for kind, verts in _roof_faces_local(part):
        ring = _clean_ring(np.asarray(verts, dtype=float))
        if len(ring) < 3:
            continue
        n = newell_normal(ring)
        if np.linalg.norm(n) < 1e-9:
            continue
        # the part is convex: orient every face away from an interior point
        if np.dot(n, ring.mean(axis=0) - centre) < 0:
            ring = ring[::-1]
        xy = part.to_world(ring[:, 0], ring[:, 1])
        world = np.column_stack([xy, ring[:, 2] + part.ground_z])
        attrs = {"part_id": part.part_id}
        if kind == "RoofSurface":
            attrs["roof_code"] = part.form.code
        surfaces.append(Surface(kind, [world], attrs))
    return Solid(surfaces, lod=2)


def part_footprint(part: RoofPart) -> Polygon:
    """The part's rectangle as a shapely polygon (counter-clockwise)."""
    return Polygon(part.corners_xy())


def part_volume_m3(part: RoofPart) -> float:
    """Analytic volume of the part (m³), from the closed-form formulas of each roof form.

    ``L W e`` plus the roof: shed ``L W h/2``; gable/hip/half-hip/pyramid
    ``W h (L/2 - d f²/3)`` with end-plane depth ``d`` and hip fraction ``f``; asymmetric gable
    ``L ((W/2 + v_r)(r - e1) + (W/2 - v_r)(r - e2)) / 2`` over a box to ``e1``/``e2`` per side;
    mansard ``L ((W - i)(b - e) + (W - 2i)(r - b)/2)``; four-sided mansard
    ``(b - e)(L W - i (L + W) + 4 i²/3) + m h_u (M/2 - m/6)`` with the inner rectangle's sides
    ``m <= M`` and ``h_u = r - b``.
    """
    L, W, e, r = part.length_m, part.width_m, part.eave_m, part.ridge_m
    h = r - e
    base = L * W * e
    f = part.form
    if f is RoofForm.FLAT:
        return base
    if f is RoofForm.SHED:
        return base + L * W * h / 2
    if f is RoofForm.MANSARD and part.mansard_sides == 4:
        b, i = part.mansard_break, part.mansard_inset
        m, M = sorted((L - 2 * i, W - 2 * i))
        return base + (b - e) * (L * W - i * (L + W) + 4 * i * i / 3) + m * (r - b) * (M / 2 - m / 6)
    if f is RoofForm.MANSARD:
        b, i = part.mansard_break, part.mansard_inset
        return base + L * ((W - i) * (b - e) + (W - 2 * i) * (r - b) / 2)
    if f is RoofForm.GABLE and part.asymmetric:
        vr, e2 = part.ridge_offset, part.eave2
        return L * ((W / 2 + vr) * (e + r) + (W / 2 - vr) * (e2 + r)) / 2
    return base + W * h * (L / 2 - part.hip_depth * part.hip_fraction ** 2 / 3)


# ================================================================================== buildings
@dataclass
class BuildingSpec:
    """A building as 1..n rectangular parts.

    Attributes
    ----------
    building_id : str
    parts : list of RoofPart
        The first part is the main part (its form is the building's roof form).
    function : str
        AdV ``Gebäudefunktion`` code, e.g. ``"31001_1010"``.
    storeys : int
        Storeys above ground.
    attributes : dict
        Anything else carried along.
    """

    building_id: str
    parts: list[RoofPart]
    function: str = "31001_1010"
    storeys: int = 1
    attributes: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.parts:
            raise dataset_error(GeometryError, "roof model", "building without parts",
                                "give at least one RoofPart", self.building_id)

    @property
    def roof_form(self) -> RoofForm:
        return self.parts[0].form

    @property
    def eave_m(self) -> float:
        """Eave height above ground of the main part (m)."""
        return self.parts[0].eave_m

    @property
    def ridge_m(self) -> float:
        """Highest ridge above ground over all parts (m), relative to each part's ground."""
        return max(p.ridge_m for p in self.parts)

    @property
    def footprint(self) -> Polygon:
        return building_footprint(self.parts)

    def roof_height(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return building_roof_height(self.parts, x, y)

    def solids(self) -> list[Solid]:
        return building_solids(self.parts)


def building_roof_height(parts: Sequence[RoofPart], x: np.ndarray, y: np.ndarray,
                         tolerance_m: float = 1e-6) -> np.ndarray:
    """Absolute roof height of a building at ``x, y``: the maximum over its parts; NaN outside all.

    ``tolerance_m`` (see :func:`roof_height`) also serves roof overhangs: the roof planes are
    extended that far beyond the walls.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    out = np.full(np.broadcast(x, y).shape, np.nan)
    for p in parts:
        z = roof_height(p, x, y, tolerance_m)
        out = np.fmax(out, z)
    return out


def building_footprint(parts: Iterable[RoofPart], grid_m: float = 0.001) -> Polygon:
    """Union of the parts' rectangles, snapped to ``grid_m`` (removes slivers between touching parts).

    Raises
    ------
    GeometryError
        If the parts do not form one connected polygon.
    """
    parts = list(parts)
    union = shapely.union_all([part_footprint(p) for p in parts], grid_size=grid_m)
    union = shapely.simplify(union, grid_m)     # drop collinear vertices left on shared edges
    if union.geom_type != "Polygon" or union.is_empty:
        ids = ",".join(p.part_id for p in parts) or None
        raise dataset_error(GeometryError, "roof model", f"the parts' union is a {union.geom_type}, not one "
                            "polygon", "make the parts touch or overlap", ids)
    return shapely.geometry.polygon.orient(union, 1.0)


def building_solids(parts: Iterable[RoofPart]) -> list[Solid]:
    """One closed solid per part."""
    return [part_solid(p) for p in parts]
