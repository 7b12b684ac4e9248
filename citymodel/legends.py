"""Colour classes of the published quantities: one Python definition serves the ground overlays
(colour-mapped PNGs, :mod:`citymodel.overlays`), the viewer's building styles
(:mod:`citymodel.viewer.styles`) and every legend, so that a value and its colour cannot disagree.

Three kinds of colouring:

- :class:`ColorClasses`: numeric classes ``[edges[i], edges[i+1])`` with one colour each (noise
  bands, flood depth, building heights, sun hours on the ground, differences of a variant). Values
  below the first edge, at or above the last one, or missing (NaN) belong to no class: transparent in
  an overlay, the no-data colour on a building. A class may be transparent itself (alpha 0: "no
  change" of a difference layer).
- :class:`Categories`: one colour per value (AdV roof form, DIN EN 17037 level).
- :class:`citymodel.tiles3d.colormap.ColorRamp`: a piecewise linear ramp (annual roof irradiation,
  facade sun hours), as the analysis tilesets are coloured.

Legends are JSON: classes ``{"from", "to", "color", "label"}`` (``from``/``to`` null for an open
end, ``color`` ``#rrggbb`` or ``"transparent"``), categories ``{"value", "color", "label": {"de", "en"}}``,
ramps ``{"value", "color"}`` stops.

The named definitions below are the project's choices; each says where its breaks come from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .errors import ConfigError, dataset_error
from .tiles3d.colormap import DIN17037_HOURS, NO_DATA_RGBA, SUN_HOURS_COLORS, ColorRamp, hex_color

__all__ = ["ColorClasses", "Categories", "TRANSPARENT", "noise_classes", "flood_depth_classes",
           "sun_hours_classes", "height_classes", "difference_classes", "roof_form_categories",
           "din17037_categories", "ROOF_FORMS", "legend_json", "category_key", "color_json"]

DATASET = "colour classes"

#: Colour of "no class": fully transparent.
TRANSPARENT = (0, 0, 0, 0)

#: AdV Dachform codes with German and English names (ALKIS/AdV CityGML profile, the roof forms the
#: reconstruction and the variant builder produce; 5000 is the generic multi-plane roof).
ROOF_FORMS: dict[str, tuple[str, str]] = {
    "1000": ("Flachdach", "flat"), "2100": ("Pultdach", "shed"), "3100": ("Satteldach", "gable"),
    "3200": ("Walmdach", "hip"), "3300": ("Krüppelwalmdach", "half-hip"), "3400": ("Mansarddach", "mansard"),
    "3500": ("Zeltdach", "pyramid"), "5000": ("Mischform", "mixed (generic)"),
}


def _rgba(c: Sequence[int], what: str, name: str) -> tuple[int, int, int, int]:
    try:
        a = [int(x) for x in c]
    except (TypeError, ValueError):
        a = []
    if len(a) not in (3, 4) or any(x < 0 or x > 255 for x in a) or any(float(x) != float(y) for x, y in zip(a, c)):
        raise dataset_error(ConfigError, DATASET, f"{what} {c!r} is not an sRGB byte colour (r, g, b[, a])",
                            "give colours like (215, 48, 39) or (215, 48, 39, 255)", name)
    return tuple(a + [255] * (4 - len(a)))  # type: ignore[return-value]


def _fmt(x: float) -> str:
    """A class edge for a German label: decimal comma, no trailing zeros."""
    s = f"{x:.2f}".rstrip("0").rstrip(".")
    return s.replace("-", "−").replace(".", ",")


def color_json(rgba: Sequence[int]) -> str:
    return "transparent" if rgba[3] == 0 else hex_color(rgba)


@dataclass(frozen=True)
class ColorClasses:
    """Numeric classes with one colour each.

    Parameters
    ----------
    edges : sequence of float
        ``n + 1`` strictly ascending class edges; the first may be ``-inf``, the last ``inf``.
    colors : sequence of (r, g, b[, a])
        ``n`` sRGB byte colours; alpha 0 makes a class transparent.
    name, quantity, unit : str
    labels : sequence of str, optional
        One label per class (German); default ``"a–b unit"``.
    labels_en : sequence of str, optional
        English labels where they differ from the default.

    Raises
    ------
    ConfigError
        Fewer than one class, edges not ascending or NaN, a colour count that differs from the
        class count, colours that are not bytes.
    """

    edges: tuple[float, ...]
    colors: tuple[tuple[int, int, int, int], ...]
    name: str = "classes"
    quantity: str = ""
    unit: str = ""
    labels: tuple[str, ...] | None = None
    labels_en: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        e = np.asarray(self.edges, dtype=float).reshape(-1)
        if len(e) < 2 or np.any(np.isnan(e)) or np.any(np.diff(e) <= 0) or np.isinf(e[1:-1]).any():
            raise dataset_error(ConfigError, DATASET, f"class edges {list(self.edges)} are not at least two strictly "
                                "ascending numbers (only the first may be -inf, only the last inf)",
                                "give ascending class edges", self.name)
        cols = tuple(_rgba(c, "colour", self.name) for c in self.colors)
        if len(cols) != len(e) - 1:
            raise dataset_error(ConfigError, DATASET, f"{len(cols)} colours for {len(e) - 1} classes",
                                "give one colour per class (edges has one entry more)", self.name)
        for what in ("labels", "labels_en"):
            v = getattr(self, what)
            if v is not None and len(v) != len(cols):
                raise dataset_error(ConfigError, DATASET, f"{len(v)} {what} for {len(cols)} classes",
                                    "give one label per class", self.name)
            if v is not None:
                object.__setattr__(self, what, tuple(str(x) for x in v))
        object.__setattr__(self, "edges", tuple(float(x) for x in e))
        object.__setattr__(self, "colors", cols)

    @property
    def n_classes(self) -> int:
        return len(self.colors)

    def classify(self, values: Any) -> np.ndarray:
        """Class index of each value (int array); -1 for NaN and values outside the edges."""
        v = np.asarray(values, dtype=float)
        idx = np.searchsorted(np.asarray(self.edges), v, side="right") - 1
        idx[~np.isfinite(v) & ~np.isinf(v)] = -1  # NaN
        idx[(idx < 0) | (idx >= self.n_classes)] = -1
        return idx.astype(np.int64)

    def colors_of(self, values: Any) -> np.ndarray:
        """RGBA bytes of each value (shape ``values.shape + (4,)``); transparent where no class."""
        idx = self.classify(values)
        table = np.vstack([np.asarray(self.colors, dtype=np.uint8), np.asarray([TRANSPARENT], dtype=np.uint8)])
        return table[np.where(idx < 0, self.n_classes, idx)]

    def label(self, i: int, lang: str = "de") -> str:
        own = self.labels_en if lang == "en" else self.labels
        if own is not None:
            return own[i]
        lo, hi = self.edges[i], self.edges[i + 1]
        unit = f" {self.unit}" if self.unit else ""
        f = _fmt if lang == "de" else (lambda x: f"{x:.2f}".rstrip("0").rstrip(".").replace("-", "−"))
        if math.isinf(lo):
            return f"< {f(hi)}{unit}"
        if math.isinf(hi):
            return f"≥ {f(lo)}{unit}"
        if lo < 0:
            return f"{f(lo)} {'bis' if lang == 'de' else 'to'} {f(hi)}{unit}"
        return f"{f(lo)}–{f(hi)}{unit}"

    def legend(self) -> list[dict]:
        """The legend entries ``{"from", "to", "color", "label", "label_en"}`` (null for an open end)."""
        out = []
        for i, c in enumerate(self.colors):
            lo, hi = self.edges[i], self.edges[i + 1]
            out.append({"from": None if math.isinf(lo) else lo, "to": None if math.isinf(hi) else hi,
                        "color": color_json(c), "label": self.label(i, "de"), "label_en": self.label(i, "en")})
        return out


@dataclass(frozen=True)
class Categories:
    """One colour per value of a categorical attribute.

    Parameters
    ----------
    values : sequence of str
        The values (compared as text).
    colors : sequence of (r, g, b[, a])
    labels : sequence of (de, en)
        A German and an English label per value.
    other : (r, g, b[, a])
        Colour of any other value; missing values get :data:`NO_DATA_RGBA`.
    """

    values: tuple[str, ...]
    colors: tuple[tuple[int, int, int, int], ...]
    labels: tuple[tuple[str, str], ...]
    name: str = "categories"
    quantity: str = ""
    other: tuple[int, int, int, int] = (160, 160, 160, 255)
    no_data: tuple[int, int, int, int] = NO_DATA_RGBA

    def __post_init__(self) -> None:
        vals = tuple(str(v) for v in self.values)
        if not vals or len(set(vals)) != len(vals):
            raise dataset_error(ConfigError, DATASET, f"category values {list(vals)} are empty or repeat",
                                "give each value once", self.name)
        cols = tuple(_rgba(c, "colour", self.name) for c in self.colors)
        if len(cols) != len(vals) or len(self.labels) != len(vals):
            raise dataset_error(ConfigError, DATASET, f"{len(vals)} values, {len(cols)} colours, {len(self.labels)} labels",
                                "give one colour and one (de, en) label per value", self.name)
        object.__setattr__(self, "values", vals)
        object.__setattr__(self, "colors", cols)
        object.__setattr__(self, "labels", tuple((str(a), str(b)) for a, b in self.labels))
        object.__setattr__(self, "other", _rgba(self.other, "other colour", self.name))
        object.__setattr__(self, "no_data", _rgba(self.no_data, "no-data colour", self.name))

    def color_of(self, value: Any) -> tuple[int, int, int, int]:
        if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
            return self.no_data
        key = category_key(value)
        return self.colors[self.values.index(key)] if key in self.values else self.other

    def legend(self) -> list[dict]:
        return [{"value": v, "color": color_json(c), "label": {"de": de, "en": en}}
                for v, c, (de, en) in zip(self.values, self.colors, self.labels)]


def category_key(value: Any) -> str:
    """A value as the text the 3D Tiles carry: integral floats without '.0' (3100.0 -> '3100')."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def legend_json(colouring: ColorClasses | Categories | ColorRamp) -> dict:
    """``{"kind": "classes"|"categories"|"ramp", "unit", "items", ...}`` of any colouring."""
    if isinstance(colouring, ColorClasses):
        return {"kind": "classes", "name": colouring.name, "quantity": colouring.quantity, "unit": colouring.unit,
                "items": colouring.legend()}
    if isinstance(colouring, Categories):
        return {"kind": "categories", "name": colouring.name, "quantity": colouring.quantity, "unit": "",
                "items": colouring.legend(), "other": color_json(colouring.other)}
    if isinstance(colouring, ColorRamp):
        return {"kind": "ramp", "name": colouring.name, "quantity": colouring.quantity, "unit": colouring.unit,
                "items": [{"value": v, "color": hex_color(c)} for v, c in zip(colouring.values, colouring.colors)],
                "no_data": hex_color(colouring.no_data)}
    raise dataset_error(ConfigError, DATASET, f"{type(colouring).__name__} is not a colouring",
                        "pass ColorClasses, Categories or a ColorRamp")


# ---------------------------------------------------------------------------- the project's classes
#: Noise map colours, quiet to loud: light green through yellow, orange and red to violet and blue.
NOISE_COLORS = ((199, 233, 192), (161, 217, 155), (255, 255, 153), (254, 217, 118), (253, 141, 60),
                (240, 59, 32), (189, 0, 38), (128, 0, 125), (74, 20, 134), (8, 48, 107))


def noise_classes(lower_db: float = 45.0, step_db: float = 5.0, upper_db: float = 80.0) -> ColorClasses:
    """Rating level bands (dB(A)): the isophone bands of ``analysis.noise`` (``isophone_lower_db``,
    ``isophone_step_db``), so that the grid's colours and the isophones agree; below the lowest
    band transparent, an open top band."""
    if not (step_db > 0 and upper_db > lower_db):
        raise dataset_error(ConfigError, DATASET, f"noise bands {lower_db}..{upper_db} step {step_db} dB",
                            "give step_db > 0 and upper_db > lower_db", "noise")
    edges = list(np.arange(lower_db, upper_db + step_db / 2, step_db)) + [math.inf]
    n = len(edges) - 1
    cols = [NOISE_COLORS[min(i, len(NOISE_COLORS) - 1)] for i in range(n)] if n <= len(NOISE_COLORS) \
        else [NOISE_COLORS[round(i * (len(NOISE_COLORS) - 1) / (n - 1))] for i in range(n)]
    return ColorClasses(tuple(edges), tuple(cols), name="noise", quantity="road traffic noise rating level (RLS-19)",
                        unit="dB(A)")


def flood_depth_classes() -> ColorClasses:
    """Water depth (m): light to dark blue; 0.3 m is the default ground floor offset
    (``analysis.flood.floor_offset_m``), 0.5 m knee-deep, 1 and 2 m storey-relevant."""
    return ColorClasses((0.0, 0.1, 0.3, 0.5, 1.0, 2.0, math.inf),
                        ((222, 235, 247), (158, 202, 225), (107, 174, 214), (49, 130, 189), (8, 81, 156), (8, 48, 107)),
                        name="flood_depth", quantity="water depth", unit="m")


def sun_hours_classes(day_length_h: float = 12.0) -> ColorClasses:
    """Hours of direct sun on the ground on one day (h): the DIN EN 17037 thresholds 1.5, 3 and 4 h,
    then every 2 h to the day's length; the colours are those of the facade sun-hours ramp
    (:func:`citymodel.tiles3d.colormap.sun_hours_ramp`) at each class's lower edge, so that ground
    and facades read alike."""
    from .tiles3d.colormap import sun_hours_ramp

    top = max(float(day_length_h), DIN17037_HOURS[-1] + 0.5)
    edges = [0.0, *DIN17037_HOURS]
    h = DIN17037_HOURS[-1] + 2.0
    while h < top:
        edges.append(h)
        h += 2.0
    edges.append(math.inf)
    ramp = sun_hours_ramp(top, "")
    cols = [tuple(int(x) for x in ramp.color_of(e)) for e in edges[:-1]]
    return ColorClasses(tuple(edges), tuple(cols), name="sun_hours", quantity="hours of direct sun on one day",
                        unit="h")


def height_classes() -> ColorClasses:
    """Building height above ground (m): bands of about two, three, five and more storeys."""
    return ColorClasses((0.0, 6.0, 10.0, 15.0, 20.0, 30.0, 50.0, math.inf),
                        ((255, 255, 204), (199, 233, 180), (127, 205, 187), (65, 182, 196), (29, 145, 192),
                         (34, 94, 168), (12, 44, 132)),
                        name="height", quantity="height above ground", unit="m")


def difference_classes(step: float, unit: str, *, name: str = "difference",
                       quantity: str = "difference (variant − base)", more_is_better: bool = True) -> ColorClasses:
    """Symmetric classes of a signed difference: ``±step/2`` is "no change" (transparent), then three
    classes each way with the edges ``step/2``, ``step`` and ``2 step``. Gains are blue and losses red
    where more is better (sun hours), the other way round where more is worse (noise)."""
    if not (isinstance(step, (int, float)) and math.isfinite(step) and step > 0):
        raise dataset_error(ConfigError, DATASET, f"difference step {step!r}", "give a step > 0", name)
    pos = [step / 2, step, 2 * step]
    edges = [-math.inf] + [-p for p in reversed(pos)] + pos + [math.inf]
    blues = [(33, 102, 172), (103, 169, 207), (209, 229, 240)]  # strong to weak
    reds = [(178, 24, 43), (239, 138, 98), (253, 219, 199)]
    down, up = (reds, blues[::-1]) if more_is_better else (blues, reds[::-1])
    cols = down + [TRANSPARENT] + up
    plain = ColorClasses(tuple(edges), tuple(cols), name=name, quantity=quantity, unit=unit)
    de = [plain.label(i, "de") for i in range(len(cols))]
    en = [plain.label(i, "en") for i in range(len(cols))]
    de[3], en[3] = "keine Änderung", "no change"
    return ColorClasses(tuple(edges), tuple(cols), name=name, quantity=quantity, unit=unit, labels=tuple(de),
                        labels_en=tuple(en))


def roof_form_categories() -> Categories:
    """AdV roof forms (:data:`ROOF_FORMS`), flat grey to pitched reds and browns."""
    colours = {"1000": (150, 150, 150), "2100": (230, 171, 2), "3100": (178, 34, 34), "3200": (217, 95, 2),
               "3300": (166, 86, 40), "3400": (117, 112, 179), "3500": (231, 41, 138), "5000": (102, 166, 30)}
    return Categories(tuple(ROOF_FORMS), tuple(colours[k] for k in ROOF_FORMS), tuple(ROOF_FORMS.values()),
                      name="roof_form", quantity="AdV roof form (Dachform)")


def din17037_categories() -> Categories:
    """DIN EN 17037 sunlight exposure levels; the colours are the facade sun-hours ramp's at the
    level's threshold (0, 1.5, 3, 4 h), so that levels and hours read alike."""
    return Categories(("none", "minimum", "medium", "high"), tuple(SUN_HOURS_COLORS[:4]),
                      (("nicht erfüllt", "not met"), ("gering (≥ 1,5 h)", "minimum (≥ 1.5 h)"),
                       ("mittel (≥ 3 h)", "medium (≥ 3 h)"), ("hoch (≥ 4 h)", "high (≥ 4 h)")),
                      name="din17037_level", quantity="DIN EN 17037 sunlight exposure level")
