"""Map styles of a release's 2D layers, as data, and as SLD files for the city's map services.

One definition per layer serves the QGIS project (:mod:`.qgis`) and the SLD 1.0 files
(GeoServer, MapServer, QGIS Server) in ``styles/``. Colours and class limits come from the
definitions the 3D Tiles use where they exist (:mod:`citymodel.tiles3d.colormap`: the sun-hours
ramp with the DIN EN 17037 stops, the solar ramp at 40/60/80 % of the reference) and from the
analysis itself (DIN EN 17037 levels, solar-cadastre classes, AdV roof codes). Noise uses the
colour scheme recommended at European level for strategic noise maps (5 dB bands from 35 dB,
:data:`citymodel.tiles3d.colormap.NOISE_BAND_COLORS`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from ..roofs import RoofForm
from ..tiles3d.colormap import (DIN17037_HOURS, NO_DATA_RGBA, NOISE_BAND_COLORS, NOISE_BANDS_DB, SOLAR_COLORS,
                                SOLAR_FRACTIONS, SUN_HOURS_COLORS)

RGBA = tuple[int, int, int, int]


@dataclass(frozen=True)
class Rule:
    """One class of a style: a category value (``value``) or a range ``[lo, hi)`` of a number."""

    label: str
    rgba: RGBA
    value: str | None = None
    lo: float | None = None
    hi: float | None = None


@dataclass(frozen=True)
class VectorStyle:
    """A vector layer's style: ``kind`` is ``categorized`` (rules by value), ``graduated`` (by
    range) or ``single`` (one rule); ``geometry`` is ``polygon``, ``line`` or ``point``."""

    name: str
    title: str
    geometry: str
    kind: str
    attribute: str | None
    rules: tuple[Rule, ...]
    outline: RGBA = (60, 60, 60, 255)
    fill: bool = True
    size_mm: float = 2.0
    width_mm: float = 0.26


@dataclass(frozen=True)
class RasterStyle:
    """A raster band's style: ``interpolated`` (a ramp through the stops) or ``discrete`` (each
    rule colours ``[lo, hi)``; values outside every rule are transparent)."""

    name: str
    title: str
    band: int
    kind: str
    rules: tuple[Rule, ...]
    unit: str = ""
    extras: dict = field(default_factory=dict)


def rgba_text(c: RGBA) -> str:
    return ",".join(str(int(v)) for v in c)


def hex_rgb(c: RGBA) -> str:
    return "#{:02x}{:02x}{:02x}".format(*c[:3])


# ---------------------------------------------------------------------------------------- styles

#: AdV roof codes -> colour (a qualitative palette; flat roofs grey)
ROOF_COLORS: dict[RoofForm, RGBA] = {
    RoofForm.FLAT: (166, 166, 166, 255), RoofForm.SHED: (253, 191, 111, 255),
    RoofForm.GABLE: (227, 26, 28, 255), RoofForm.HIP: (31, 120, 180, 255),
    RoofForm.HALF_HIP: (166, 206, 227, 255), RoofForm.MANSARD: (106, 61, 154, 255),
    RoofForm.PYRAMID: (51, 160, 44, 255),
}


def roof_type_style(attribute: str = "roofType") -> VectorStyle:
    """Buildings by roof form (AdV ``Dachform`` codes, German names)."""
    rules = tuple(Rule(f"{f.german} ({f.code})", ROOF_COLORS[f], value=str(f.code)) for f in RoofForm)
    return VectorStyle("buildings_roof_type", "Gebäude nach Dachform", "polygon", "categorized", attribute,
                       rules + (Rule("andere / generisches Dach", NO_DATA_RGBA, value=""),))


#: building height classes (m) and their colours (light to dark)
HEIGHT_CLASSES_M = (0.0, 6.0, 10.0, 15.0, 20.0, 30.0, 1000.0)
HEIGHT_COLORS: tuple[RGBA, ...] = ((255, 255, 204, 255), (254, 217, 118, 255), (253, 141, 60, 255),
                                   (227, 26, 28, 255), (177, 0, 38, 255), (90, 0, 40, 255))


def height_style(attribute: str = "measured_height_m") -> VectorStyle:
    """Buildings by height above ground (m)."""
    rules = []
    for i, (lo, hi) in enumerate(zip(HEIGHT_CLASSES_M[:-1], HEIGHT_CLASSES_M[1:])):
        label = f"{lo:g}–{hi:g} m" if hi < 1000 else f"≥ {lo:g} m"
        rules.append(Rule(label, HEIGHT_COLORS[i], lo=lo, hi=hi))
    return VectorStyle("buildings_height", "Gebäude nach Höhe", "polygon", "graduated", attribute, tuple(rules))


#: DIN EN 17037 levels -> the sun-hours ramp's colour at the level's lower limit
def din17037_style(attribute: str = "din17037_level") -> VectorStyle:
    """Buildings by DIN EN 17037 sunlight exposure level (the colours of the sun-hours ramp at
    0, 1.5, 3 and 4 h, the levels' limits)."""
    names = (("none", "keine (< 1,5 h)"), ("minimum", "gering (≥ 1,5 h)"), ("medium", "mittel (≥ 3 h)"),
             ("high", "hoch (≥ 4 h)"))
    rules = tuple(Rule(f"{de}", SUN_HOURS_COLORS[i], value=v) for i, (v, de) in enumerate(names))
    return VectorStyle("din17037", "Besonnung DIN EN 17037", "polygon", "categorized", attribute, rules)


def solar_style(attribute: str = "suitability") -> VectorStyle:
    """Roof surfaces by solar-cadastre class (the solar ramp's colours at 40, 60 and 80 % of the
    reference: the lower limits of the classes)."""
    at = {f: SOLAR_COLORS[i] for i, f in enumerate(SOLAR_FRACTIONS)}
    rules = (Rule("sehr gut geeignet (≥ 80 %)", at[0.8], value="very suitable"),
             Rule("geeignet (≥ 60 %)", at[0.6], value="suitable"),
             Rule("weniger geeignet (< 60 %)", at[0.4], value="less suitable"),
             Rule("zu klein", NO_DATA_RGBA, value="too small"))
    return VectorStyle("solar", "Solarpotenzial der Dachflächen", "polygon", "categorized", attribute, rules)


def _noise_rules() -> tuple[Rule, ...]:
    bands = list(NOISE_BANDS_DB) + [None]
    out = []
    for i, lo in enumerate(NOISE_BANDS_DB):
        hi = bands[i + 1]
        label = f"{lo:g}–{hi:g} dB(A)" if hi is not None else f"≥ {lo:g} dB(A)"
        out.append(Rule(label, NOISE_BAND_COLORS[i], lo=float(lo), hi=float(hi) if hi is not None else 1000.0))
    return tuple(out)


def noise_raster_style(band: int, indicator: str) -> RasterStyle:
    """The noise grid (``LrT`` band 1, ``LrN`` band 2) in 5 dB bands, the EU noise-map colours."""
    title = {"LrT": "Straßenlärm tags (LrT, RLS-19)", "LrN": "Straßenlärm nachts (LrN, RLS-19)"}[indicator]
    return RasterStyle(f"noise_{indicator.lower()}", title, band, "discrete", _noise_rules(), "dB(A)")


def isophone_style(attribute: str = "band_lo_db", indicator: str = "LrT") -> VectorStyle:
    """Isophone bands (polygons of 5 dB bands) by their lower limit, the EU noise-map colours."""
    rules = tuple(Rule(r.label, r.rgba, value=f"{r.lo:g}") for r in _noise_rules())
    return VectorStyle(f"isophones_{indicator.lower()}", f"Isophonen {indicator}", "polygon", "categorized",
                       attribute, rules, outline=(80, 80, 80, 255))


def sun_hours_raster_style(band: int, day: str, day_length_h: float) -> RasterStyle:
    """Ground sun hours of one day: the 3D Tiles' sun-hours ramp (0, 1.5, 3, 4 h, day length)."""
    top = max(float(day_length_h), DIN17037_HOURS[-1] + 0.5)
    stops = (0.0, *DIN17037_HOURS, top)
    rules = tuple(Rule(f"{v:g} h", c, lo=v) for v, c in zip(stops, SUN_HOURS_COLORS))
    import re

    key = re.sub(r"[^A-Za-z0-9]+", "-", str(day)).strip("-") or str(band)
    return RasterStyle(f"sun_hours_{key}", f"Sonnenstunden am Boden {day}", band, "interpolated", rules, "h")


#: flood depth ramp (m): light to dark blue
FLOOD_STOPS_M = (0.0, 0.5, 1.0, 2.0, 4.0)
FLOOD_COLORS: tuple[RGBA, ...] = ((198, 219, 239, 255), (107, 174, 214, 255), (33, 113, 181, 255),
                                  (8, 69, 148, 255), (8, 29, 88, 255))


def flood_raster_style(scenario: str) -> RasterStyle:
    """Water depth (m) of a flood scenario; dry cells (0 or no data) transparent."""
    rules = tuple(Rule(f"{v:g} m", c, lo=v) for v, c in zip(FLOOD_STOPS_M, FLOOD_COLORS))
    return RasterStyle(f"flood_depth_{scenario}", f"Wassertiefe {scenario}", 1, "interpolated", rules, "m")


def trees_style() -> VectorStyle:
    return VectorStyle("trees", "Bäume", "point", "single", None,
                       (Rule("Baum", (51, 160, 44, 200)),), outline=(0, 90, 0, 255), size_mm=2.4)


def tile_index_style() -> VectorStyle:
    return VectorStyle("tile_index", "Kachelübersicht (1 km)", "polygon", "single", None,
                       (Rule("Kachel", (0, 0, 0, 0)),), outline=(200, 0, 200, 255), fill=False, width_mm=0.5)


# ---------------------------------------------------------------------------------------- SLD

_SLD_HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n'
             '<StyledLayerDescriptor version="1.0.0" xmlns="http://www.opengis.net/sld" '
             'xmlns:ogc="http://www.opengis.net/ogc" xmlns:xlink="http://www.w3.org/1999/xlink" '
             'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
             'xsi:schemaLocation="http://www.opengis.net/sld http://schemas.opengis.net/sld/1.0.0/'
             'StyledLayerDescriptor.xsd">\n')


def _css(name: str, value) -> str:
    return f'<CssParameter name="{name}">{escape(str(value))}</CssParameter>'


def _symbolizer(style: VectorStyle, rgba: RGBA) -> str:
    stroke = (f"<Stroke>{_css('stroke', hex_rgb(style.outline))}{_css('stroke-opacity', round(style.outline[3] / 255, 3))}"
              f"{_css('stroke-width', round(style.width_mm * 3.78, 2))}</Stroke>")
    fill = f"<Fill>{_css('fill', hex_rgb(rgba))}{_css('fill-opacity', round(rgba[3] / 255, 3))}</Fill>"
    if style.geometry == "polygon":
        return f"<PolygonSymbolizer>{fill if style.fill else ''}{stroke}</PolygonSymbolizer>"
    if style.geometry == "line":
        return (f"<LineSymbolizer><Stroke>{_css('stroke', hex_rgb(rgba))}"
                f"{_css('stroke-width', round(style.width_mm * 3.78, 2))}</Stroke></LineSymbolizer>")
    return (f"<PointSymbolizer><Graphic><Mark><WellKnownName>circle</WellKnownName>{fill}{stroke}</Mark>"
            f"<Size>{round(style.size_mm * 3.78, 1)}</Size></Graphic></PointSymbolizer>")


def _filter(style: VectorStyle, rule: Rule) -> str:
    prop = f"<ogc:PropertyName>{escape(style.attribute or '')}</ogc:PropertyName>"
    if style.kind == "categorized":
        if rule.value == "":
            return ""  # the fallback rule: ElseFilter
        return (f"<ogc:Filter><ogc:PropertyIsEqualTo>{prop}<ogc:Literal>{escape(str(rule.value))}</ogc:Literal>"
                f"</ogc:PropertyIsEqualTo></ogc:Filter>")
    if style.kind == "graduated":
        return (f"<ogc:Filter><ogc:And><ogc:PropertyIsGreaterThanOrEqualTo>{prop}<ogc:Literal>{rule.lo:g}"
                f"</ogc:Literal></ogc:PropertyIsGreaterThanOrEqualTo><ogc:PropertyIsLessThan>{prop}"
                f"<ogc:Literal>{rule.hi:g}</ogc:Literal></ogc:PropertyIsLessThan></ogc:And></ogc:Filter>")
    return ""


def vector_sld(style: VectorStyle, layer_name: str) -> str:
    """SLD 1.0 of a vector style (one ``Rule`` per class, ``ogc:Filter`` on the attribute)."""
    rules = []
    for r in style.rules:
        flt = _filter(style, r)
        if style.kind == "categorized" and r.value == "":
            flt = "<ElseFilter/>"
        rules.append(f"<Rule><Name>{escape(r.label)}</Name><Title>{escape(r.label)}</Title>{flt}"
                     f"{_symbolizer(style, r.rgba)}</Rule>")
    return (_SLD_HEAD + f"<NamedLayer><Name>{escape(layer_name)}</Name><UserStyle><Name>{escape(style.name)}</Name>"
            f"<Title>{escape(style.title)}</Title><FeatureTypeStyle>" + "".join(rules)
            + "</FeatureTypeStyle></UserStyle></NamedLayer></StyledLayerDescriptor>\n")


def raster_sld(style: RasterStyle, layer_name: str) -> str:
    """SLD 1.0 of a raster style (``RasterSymbolizer`` with a ``ColorMap``: ``ramp`` or ``intervals``)."""
    entries = []
    if style.kind == "discrete":
        # intervals: an entry colours the values below its quantity (down to the previous one)
        entries.append(f'<ColorMapEntry color="#ffffff" quantity="{style.rules[0].lo:g}" opacity="0" label="nodata"/>')
        for r in style.rules:
            entries.append(f'<ColorMapEntry color="{hex_rgb(r.rgba)}" quantity="{r.hi:g}" '
                           f'label="{escape(r.label)}"/>')
        kind = "intervals"
    else:
        for r in style.rules:
            entries.append(f'<ColorMapEntry color="{hex_rgb(r.rgba)}" quantity="{r.lo:g}" '
                           f'opacity="{round(r.rgba[3] / 255, 3)}" label="{escape(r.label)}"/>')
        kind = "ramp"
    return (_SLD_HEAD + f"<NamedLayer><Name>{escape(layer_name)}</Name><UserStyle><Name>{escape(style.name)}</Name>"
            f"<Title>{escape(style.title)}</Title><FeatureTypeStyle><Rule><RasterSymbolizer><Opacity>1.0</Opacity>"
            f"<ChannelSelection><GrayChannel><SourceChannelName>{style.band}</SourceChannelName></GrayChannel>"
            f"</ChannelSelection><ColorMap type=\"{kind}\">" + "".join(entries)
            + "</ColorMap></RasterSymbolizer></Rule></FeatureTypeStyle></UserStyle></NamedLayer>"
              "</StyledLayerDescriptor>\n")
