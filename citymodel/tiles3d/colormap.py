"""Colour ramps for analysis layers in 3D Tiles: value -> sRGB colour, with a legend a viewer can show.

A :class:`ColorRamp` is a piecewise linear ramp through colour stops ``(value, sRGB bytes)``:

- between two stops the colour is interpolated linearly in sRGB byte space and rounded to the
  nearest byte, ties to even (``rint(c0 + t * (c1 - c0))``, ``t = (v - v0) / (v1 - v0)``);
- values below the first stop get the first colour, values above the last stop the last one
  (clamped), so the legend's range is the range of distinct colours;
- values that are missing (NaN, None) get :data:`NO_DATA_RGBA`, a neutral grey.

:meth:`ColorRamp.legend` is the JSON legend written to ``asset.extras.legend`` of a tileset;
:meth:`ColorRamp.tileset_metadata` is the same legend as 3D Tiles 1.1 tileset metadata (class
:data:`LEGEND_CLASS_ID` of :data:`LEGEND_CLASS`), which viewers read through the tileset's
``metadata`` (e.g. CesiumJS ``tileset.metadata.getProperty("maximum")``).

Two ramps are defined for the analysis layers:

- :func:`solar_ramp`: annual irradiation of roof surfaces (kWh/m²·a). Its stops sit at 0, 40 %,
  60 %, 80 % and 100 % of the site's best unshaded plane, so the colour changes where the
  solar-cadastre classes of :mod:`citymodel.analysis.solar` change (less suitable < 60 % <=
  suitable < 80 % <= very suitable); blue (poor) through pale yellow to red (very suitable).
- :func:`sun_hours_ramp`: hours of direct sun on a facade on one day (h). Its stops sit at 0, 1.5,
  3 and 4 h (the DIN EN 17037 sunlight exposure levels minimum, medium and high) and at the day's
  length; dark indigo (no sun) through coral and amber to light yellow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import ConfigError, dataset_error

__all__ = ["ColorRamp", "NO_DATA_RGBA", "LEGEND_CLASS_ID", "LEGEND_CLASS", "SOLAR_COLORS", "SUN_HOURS_COLORS",
           "NOISE_BANDS_DB", "NOISE_BAND_COLORS",
           "solar_ramp", "sun_hours_ramp", "hex_color"]

DATASET = "3D Tiles colour ramp"

#: Colour (sRGB bytes, alpha) of surfaces without a value: a neutral grey, darker than the walls'
#: default light grey and lighter than the ground's dark grey.
NO_DATA_RGBA = (128, 128, 128, 255)

#: Solar ramp colours, poor to very suitable: dark blue, light blue, pale yellow, orange, red.
SOLAR_COLORS = ((49, 54, 149, 255), (116, 173, 209, 255), (255, 255, 191, 255), (253, 174, 97, 255),
                (215, 48, 39, 255))
#: Solar stop positions as fractions of the reference (best unshaded plane) irradiation.
SOLAR_FRACTIONS = (0.0, 0.4, 0.6, 0.8, 1.0)

#: Sun-hours ramp colours, no sun to long sun: dark indigo, purple, coral, amber, light yellow.
SUN_HOURS_COLORS = ((38, 38, 77, 255), (94, 60, 153, 255), (215, 92, 79, 255), (253, 190, 60, 255),
                    (255, 247, 170, 255))
#: DIN EN 17037 sunlight exposure thresholds (h of direct sun on the day): minimum, medium, high.
DIN17037_HOURS = (1.5, 3.0, 4.0)

#: Noise maps: lower limits (dB(A)) of the 5 dB bands and their colours, the colour scheme
#: recommended at European level for strategic noise maps (Lden/Lnight, END 2002/49/EC), as
#: listed by the Dutch government's guidance (InfoMil, "kleurcodes kleurschema geografische
#: geluidsbelastingkaarten"): 35-39 #238443, 40-44 #78C679, 45-49 #C2E699, 50-54 #FFFFB2,
#: 55-59 #FECC5C, 60-64 #FD8D3C, 65-69 #FF0909, 70-74 #B30622, 75-79 #67033B, >= 80 #1C0054.
NOISE_BANDS_DB = (35.0, 40.0, 45.0, 50.0, 55.0, 60.0, 65.0, 70.0, 75.0, 80.0)
NOISE_BAND_COLORS = ((35, 132, 67, 255), (120, 198, 121, 255), (194, 230, 153, 255), (255, 255, 178, 255),
                     (254, 204, 92, 255), (253, 141, 60, 255), (255, 9, 9, 255), (179, 6, 34, 255),
                     (103, 3, 59, 255), (28, 0, 84, 255))

#: Id of the tileset metadata class of a legend.
LEGEND_CLASS_ID = "legend"
#: The class (3D Tiles 1.1 metadata schema) of :meth:`ColorRamp.tileset_metadata`.
LEGEND_CLASS: dict[str, Any] = {
    "description": "colour legend of the analysis values shown as vertex colours",
    "properties": {
        "name": {"type": "STRING", "description": "name of the ramp"},
        "quantity": {"type": "STRING", "description": "what the colours show"},
        "unit": {"type": "STRING", "description": "unit of the values"},
        "appliesTo": {"type": "STRING", "description": "CityGML surface type that is coloured"},
        "day": {"type": "STRING", "description": "day of the values (ISO date), where they are for one day"},
        "climate": {"type": "STRING", "description": "climate the values were computed with, where it matters"},
        "minimum": {"type": "SCALAR", "componentType": "FLOAT64", "description": "value of the first stop"},
        "maximum": {"type": "SCALAR", "componentType": "FLOAT64", "description": "value of the last stop"},
        "stopValues": {"type": "SCALAR", "componentType": "FLOAT64", "array": True,
                       "description": "values of the colour stops, ascending"},
        "stopColors": {"type": "STRING", "array": True,
                       "description": "sRGB colours of the stops (#rrggbb); linear in between, clamped outside"},
        "noDataColor": {"type": "STRING", "description": "colour (#rrggbb) of surfaces without a value"},
    },
}


def hex_color(rgba: Sequence[int]) -> str:
    """``(r, g, b[, a])`` bytes -> ``'#rrggbb'``."""
    return "#" + "".join(f"{int(c):02x}" for c in list(rgba)[:3])


def _rgba_array(colors: Any, what: str) -> np.ndarray:
    try:
        a = np.asarray(colors, dtype=float)
    except (TypeError, ValueError):
        a = np.zeros((0, 0))
    if a.ndim != 2 or a.shape[1] not in (3, 4) or not np.all(np.isfinite(a)) \
            or np.any(a < 0) or np.any(a > 255) or np.any(a != np.round(a)):
        raise dataset_error(ConfigError, DATASET, f"{what} are not sRGB byte colours (r, g, b[, a]) in 0..255",
                            "give colours like (215, 48, 39) or (215, 48, 39, 255)")
    if a.shape[1] == 3:
        a = np.column_stack([a, np.full(len(a), 255.0)])
    return a.astype(np.uint8)


@dataclass(frozen=True)
class ColorRamp:
    """A piecewise linear colour ramp over values, with its legend.

    Parameters
    ----------
    values : sequence of float
        Stop values, strictly ascending (at least two).
    colors : sequence of (r, g, b[, a])
        sRGB bytes (0..255) of the stops, one per value; alpha defaults to 255.
    name : str
        Short name (``"solar_irradiation"``).
    quantity : str
        What the values are (``"annual solar irradiation of roof surfaces"``).
    unit : str
        Unit of the values (``"kWh/m²·a"``, ``"h"``).
    no_data : (r, g, b, a)
        Colour of missing values (default :data:`NO_DATA_RGBA`).
    extras : mapping
        More legend entries (``applies_to``, ``day``, ``reference_kwh_m2a``, ``climate_label``, ...);
        ``applies_to``, ``day`` and ``climate_label`` also go to the tileset metadata (``appliesTo``,
        ``day``, ``climate``).

    Raises
    ------
    ConfigError
        Fewer than two stops, values not strictly ascending or not finite, colours not bytes.
    """

    values: tuple[float, ...]
    colors: tuple[tuple[int, int, int, int], ...]
    name: str = "ramp"
    quantity: str = ""
    unit: str = ""
    no_data: tuple[int, int, int, int] = NO_DATA_RGBA
    extras: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        v = np.asarray(self.values, dtype=float).reshape(-1)
        if len(v) < 2 or not np.all(np.isfinite(v)) or np.any(np.diff(v) <= 0):
            raise dataset_error(ConfigError, DATASET, f"stop values {list(self.values)} are not at least two "
                                "finite, strictly ascending numbers", "give ascending stop values", self.name)
        c = _rgba_array(self.colors, f"the colours of ramp {self.name!r}")
        if len(c) != len(v):
            raise dataset_error(ConfigError, DATASET, f"{len(c)} colours for {len(v)} stop values",
                                "give one colour per stop value", self.name)
        nd = _rgba_array([self.no_data], f"the no-data colour of ramp {self.name!r}")[0]
        object.__setattr__(self, "values", tuple(float(x) for x in v))
        object.__setattr__(self, "colors", tuple(tuple(int(x) for x in row) for row in c))
        object.__setattr__(self, "no_data", tuple(int(x) for x in nd))
        object.__setattr__(self, "extras", dict(self.extras))

    @property
    def minimum(self) -> float:
        return self.values[0]

    @property
    def maximum(self) -> float:
        return self.values[-1]

    def colors_of(self, values: Any) -> np.ndarray:
        """Colours of many values: ``(n, 4)`` uint8 (sRGB, alpha). NaN / None -> the no-data colour."""
        v = np.asarray(_as_float(values), dtype=float).reshape(-1)
        stops = np.asarray(self.values)
        cols = np.asarray(self.colors, dtype=float)
        ok = np.isfinite(v)
        vc = np.clip(np.where(ok, v, stops[0]), stops[0], stops[-1])
        seg = np.clip(np.searchsorted(stops, vc, side="right") - 1, 0, len(stops) - 2)
        t = (vc - stops[seg]) / (stops[seg + 1] - stops[seg])
        rgba = np.rint(cols[seg] + t[:, None] * (cols[seg + 1] - cols[seg]))
        out = rgba.astype(np.uint8)
        out[~ok] = self.no_data
        return out

    def color_of(self, value: float | None) -> tuple[int, int, int, int]:
        """The colour of one value (``(r, g, b, a)`` bytes)."""
        return tuple(int(c) for c in self.colors_of([value])[0])

    def legend(self) -> dict[str, Any]:
        """The legend as JSON: name, quantity, unit, range, stops (value, ``#rrggbb``), no-data colour."""
        return {"name": self.name, "quantity": self.quantity, "unit": self.unit,
                "minimum": self.minimum, "maximum": self.maximum,
                "stops": [{"value": v, "color": hex_color(c), "rgba": list(c)} for v, c in zip(self.values, self.colors)],
                "interpolation": "linear in sRGB bytes between stops; clamped below the first and above the last",
                "noDataColor": hex_color(self.no_data), "noData": "surface without a value (no sample)",
                **{k: v for k, v in self.extras.items()}}

    def tileset_metadata(self) -> dict[str, Any]:
        """The legend as a 3D Tiles 1.1 metadata entity of class :data:`LEGEND_CLASS_ID`."""
        props: dict[str, Any] = {"name": self.name, "quantity": self.quantity, "unit": self.unit,
                                 "minimum": self.minimum, "maximum": self.maximum,
                                 "stopValues": list(self.values), "stopColors": [hex_color(c) for c in self.colors],
                                 "noDataColor": hex_color(self.no_data)}
        if self.extras.get("applies_to"):
            props["appliesTo"] = str(self.extras["applies_to"])
        if self.extras.get("day"):
            props["day"] = str(self.extras["day"])
        if self.extras.get("climate_label"):
            props["climate"] = str(self.extras["climate_label"])
        return {"class": LEGEND_CLASS_ID, "properties": props}


def _as_float(values: Any) -> Any:
    """Values as floats with None (and pandas' NA) as NaN, without importing pandas."""
    if isinstance(values, np.ndarray) and values.dtype.kind == "f":
        return values
    out = []
    for x in np.asarray(values, dtype=object).reshape(-1):
        try:
            out.append(float(x) if x is not None else np.nan)
        except (TypeError, ValueError):
            out.append(np.nan)
    return np.asarray(out, dtype=float)


def solar_ramp(reference_kwh_m2a: float, *, applies_to: str = "RoofSurface", **extras: Any) -> ColorRamp:
    """The ramp of annual roof irradiation (kWh/m²·a) at a site.

    Parameters
    ----------
    reference_kwh_m2a : float
        Irradiation of the best unshaded plane at the site (the reference of the suitability
        classes); the stops are at 0, 40, 60, 80 and 100 % of it.
    applies_to : str
        Surface type coloured.
    **extras
        More legend entries.
    """
    ref = float(reference_kwh_m2a)
    if not (np.isfinite(ref) and ref > 0):
        raise dataset_error(ConfigError, DATASET, f"reference irradiation {reference_kwh_m2a!r} kWh/m²·a is not "
                            "a positive number", "give the best unshaded plane's irradiation", "solar")
    return ColorRamp(tuple(round(f * ref, 1) for f in SOLAR_FRACTIONS), SOLAR_COLORS, name="solar_irradiation",
                     quantity="annual solar irradiation per roof surface (with shading)", unit="kWh/m²·a",
                     extras={"applies_to": applies_to, "reference_kwh_m2a": round(ref, 1),
                             "classes": "stops at 60 % and 80 % of the reference are the limits of the "
                                        "suitability classes (less suitable / suitable / very suitable)",
                             **extras})


def sun_hours_ramp(day_length_h: float, day: str, *, applies_to: str = "WallSurface", **extras: Any) -> ColorRamp:
    """The ramp of hours of direct sun on one day (h).

    Parameters
    ----------
    day_length_h : float
        Hours the sun is above the horizon that day (the last stop; at least 4.5 h is used so
        that the DIN EN 17037 stops stay ascending).
    day : str
        The day (ISO date, ``"2025-03-21"``), recorded in the legend.
    applies_to : str
        Surface type coloured.
    """
    top = float(day_length_h)
    if not np.isfinite(top) or top < 0:
        raise dataset_error(ConfigError, DATASET, f"day length {day_length_h!r} h is not a number >= 0",
                            "give the hours of sun above the horizon on the day", day)
    top = max(round(top, 2), DIN17037_HOURS[-1] + 0.5)
    return ColorRamp((0.0, *DIN17037_HOURS, top), SUN_HOURS_COLORS, name="facade_sun_hours",
                     quantity="hours of direct sun on the facade (mean over its storeys)", unit="h",
                     extras={"applies_to": applies_to, "day": str(day), "day_length_h": round(float(day_length_h), 2),
                             "classes": "stops at 1.5, 3 and 4 h are the DIN EN 17037 sunlight exposure levels "
                                        "minimum, medium and high", **extras})
