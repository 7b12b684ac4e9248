"""Declarative 3D Tiles styles (``Cesium3DTileStyle`` JSON) from the project's colourings.

A building tileset carries its values as ``EXT_structural_metadata`` properties; a style colours the
buildings by one property without any per-feature code in the viewer. The style is written from the
same Python definition as the legend (:mod:`citymodel.legends`, :mod:`citymodel.tiles3d.colormap`):

- :class:`~citymodel.legends.ColorClasses`: ``${p} < edge`` conditions in ascending order;
- :class:`~citymodel.legends.Categories`: ``${p} === 'value'`` conditions;
- :class:`~citymodel.tiles3d.colormap.ColorRamp`: ``mix(c0, c1, (${p} - v0) / (v1 - v0))`` between
  stops (linear in sRGB, as the Python ramp), clamped outside.

A missing value (the property's ``noData``, which CesiumJS reads as ``undefined``, or the noData
value itself) gets the no-data colour. The same style JSON is used by VC Map (``DeclarativeStyleItem``).
"""

from __future__ import annotations

import json
import math
from typing import Any

from ..errors import ConfigError, dataset_error
from ..legends import Categories, ColorClasses, category_key
from ..tiles3d.colormap import NO_DATA_RGBA, ColorRamp

__all__ = ["tile_style", "color_expression", "property_reference", "number_literal"]


def property_reference(name: str) -> str:
    """``${name}`` for a plain property id (letters, digits, '_')."""
    if not name or not all(c.isalnum() or c == "_" for c in name):
        raise dataset_error(ConfigError, "3D Tiles style", f"property name {name!r} is not a plain identifier",
                            "use the metadata property id, e.g. 'solarKwhM2aMax'", name)
    return "${" + name + "}"


def number_literal(x: float) -> str:
    """A number for a style expression (always with a decimal point, no exponent for normal sizes)."""
    x = float(x)
    if not math.isfinite(x):
        raise dataset_error(ConfigError, "3D Tiles style", f"{x} is not a finite number", "give finite class edges")
    s = repr(x)
    return s if ("." in s or "e" in s) else s + ".0"


def color_expression(rgba: Any) -> str:
    r, g, b, *a = [int(c) for c in rgba]
    alpha = (a[0] if a else 255) / 255.0
    hexc = f"#{r:02x}{g:02x}{b:02x}"
    return f"color('{hexc}')" if alpha >= 1 else f"color('{hexc}', {alpha:.3f})"


def _string_literal(s: str) -> str:
    return "'" + str(s).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _missing(p: str, no_data: Any) -> str:
    cond = f"{p} === undefined"
    if no_data is None:
        return cond
    if isinstance(no_data, str):
        return f"{cond} || {p} === {_string_literal(no_data)}"
    return f"{cond} || {p} === {number_literal(no_data)}"


def tile_style(colouring: ColorClasses | Categories | ColorRamp, prop: str, *, no_data: Any = None,
               no_data_rgba: Any = NO_DATA_RGBA) -> dict:
    """The ``Cesium3DTileStyle`` JSON colouring features by ``prop``.

    Parameters
    ----------
    colouring : ColorClasses, Categories or ColorRamp
    prop : str
        Metadata property id (``measuredHeight``, ``roofType``).
    no_data : number or str, optional
        The property's noData value (``-9999``, ``255``, ``""``).
    no_data_rgba : (r, g, b, a)
        Colour of features without a value.

    Returns
    -------
    dict
        ``{"color": {"conditions": [[condition, colour], ...]}}``
    """
    p = property_reference(prop)
    nd = color_expression(no_data_rgba)
    conds: list[list[str]] = [[_missing(p, no_data), nd]]
    if isinstance(colouring, ColorClasses):
        e = colouring.edges
        if not math.isinf(e[0]):
            conds.append([f"{p} < {number_literal(e[0])}", nd])
        for i, c in enumerate(colouring.colors):
            hi = e[i + 1]
            col = nd if c[3] == 0 else color_expression(c)  # a transparent class shows as no value on a building
            conds.append(["true" if math.isinf(hi) else f"{p} < {number_literal(hi)}", col])
        if not math.isinf(e[-1]):
            conds.append(["true", nd])
    elif isinstance(colouring, Categories):
        for v, c in zip(colouring.values, colouring.colors):
            conds.append([f"{p} === {_string_literal(category_key(v))}", color_expression(c)])
        conds.append(["true", color_expression(colouring.other)])
    elif isinstance(colouring, ColorRamp):
        v, cols = colouring.values, colouring.colors
        conds.append([f"{p} <= {number_literal(v[0])}", color_expression(cols[0])])
        for i in range(len(v) - 1):
            t = f"({p} - {number_literal(v[i])}) / {number_literal(v[i + 1] - v[i])}"
            conds.append([f"{p} < {number_literal(v[i + 1])}",
                          f"mix({color_expression(cols[i])}, {color_expression(cols[i + 1])}, {t})"])
        conds.append(["true", color_expression(cols[-1])])
    else:
        raise dataset_error(ConfigError, "3D Tiles style", f"{type(colouring).__name__} is not a colouring",
                            "pass ColorClasses, Categories or a ColorRamp", prop)
    return {"color": {"conditions": conds}}


def style_json(style: dict) -> str:
    return json.dumps(style, ensure_ascii=False)
