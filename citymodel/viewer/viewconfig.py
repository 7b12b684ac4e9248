"""The viewer's ``config.json`` of a release: what the viewer shows and how.

The document lists the release's tilesets, the building colourings (each a declarative 3D Tiles
style with its legend, both from one Python definition), the attribute labels of the info panel,
the terrain, the ground overlays, the building index (find by id), the optional base map and the sun
settings. Paths are relative to the release folder (``tiles/buildings/tileset.json``), the variants'
index relative to the output folder.

A colouring is offered only when the buildings' tileset has its property (read from the tileset's
metadata schema), so a deployment without, say, flood zones gets no flood colouring.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ..legends import (ROOF_FORMS, Categories, ColorClasses, din17037_categories, difference_classes,
                       flood_depth_classes, height_classes, legend_json, noise_classes, roof_form_categories)
from ..tiles3d.colormap import ColorRamp, solar_ramp, sun_hours_ramp
from .styles import tile_style

__all__ = ["Colouring", "building_colourings", "attribute_labels", "viewer_config", "home_camera",
           "day_property", "MONTHS_DE"]

MONTHS_DE = ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
             "November", "Dezember")
MONTHS_EN = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
             "November", "December")
_MONTH_LABEL = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


def day_property(day: str) -> str:
    """The building property of the facade sun hours of a day ``'MM-DD'`` (``sunHoursMar21Max``)."""
    m, d = (int(p) for p in day.split("-"))
    return f"sunHours{_MONTH_LABEL[m - 1].capitalize()}{d:02d}Max"


def _day_title(day: str) -> tuple[str, str]:
    m, d = (int(p) for p in day.split("-"))
    return f"{d}. {MONTHS_DE[m - 1]}", f"{d} {MONTHS_EN[m - 1]}"


@dataclass(frozen=True)
class Colouring:
    """One way of colouring the buildings.

    ``prop`` and ``colouring`` for a style over the buildings' metadata; or ``tileset`` (an analysis
    tileset whose surfaces are coloured already) with its ``legend``.
    """

    name: str
    title_de: str
    title_en: str
    prop: str | None = None
    colouring: ColorClasses | Categories | ColorRamp | None = None
    tileset: str | None = None
    legend: dict | None = None

    def to_json(self, no_data: Any = None) -> dict:
        out: dict[str, Any] = {"name": self.name, "title": {"de": self.title_de, "en": self.title_en}}
        if self.tileset:
            out["tileset"] = self.tileset
            if self.legend:
                out["legend"] = self.legend
            return out
        out["property"] = self.prop
        out["style"] = tile_style(self.colouring, self.prop, no_data=no_data)
        out["legend"] = legend_json(self.colouring)
        return out


def building_colourings(properties: Mapping[str, Mapping[str, Any]], *, sun_days: Sequence[str] = (),
                        day_lengths_h: Mapping[str, float] | None = None, solar_reference_kwh_m2a: float | None = None,
                        noise_lower_db: float = 45.0, noise_step_db: float = 5.0,
                        analysis_tilesets: Mapping[str, dict] | None = None) -> list[Colouring]:
    """The colourings the buildings' properties allow, in the order the viewer offers them.

    Parameters
    ----------
    properties : mapping
        The ``building`` class properties of the buildings' tileset schema (id -> definition).
    sun_days : sequence of 'MM-DD'
        Days of the facade sun-hours properties.
    day_lengths_h : mapping 'MM-DD' -> h
        Hours of the sun above the horizon per day (the top stop of the sun-hours ramp, as the
        analysis tileset of that day has it).
    solar_reference_kwh_m2a : float, optional
        Irradiation of the best unshaded plane (the solar ramp's reference, as the solar tileset has it).
    noise_lower_db, noise_step_db : float
        The isophone bands (``analysis.noise``).
    analysis_tilesets : mapping name -> {"title": (de, en), "legend": legend JSON}
        Analysis tilesets offered as colourings (solar roofs, facade sun).
    """
    have = set(properties)
    out: list[Colouring] = []

    def add(c: Colouring) -> None:
        if c.tileset or c.prop in have:
            out.append(c)

    add(Colouring("roof_type", "Dachform", "roof form", "roofType", roof_form_categories()))
    add(Colouring("height", "Gebäudehöhe", "building height", "measuredHeight", height_classes()))
    if solar_reference_kwh_m2a and math.isfinite(solar_reference_kwh_m2a) and solar_reference_kwh_m2a > 0:
        add(Colouring("solar", "Solareinstrahlung (beste Dachfläche)", "solar irradiation (best roof surface)",
                      "solarKwhM2aMax", solar_ramp(solar_reference_kwh_m2a)))
    for day in sun_days:
        de, en = _day_title(day)
        length = (day_lengths_h or {}).get(day, 12.0)
        add(Colouring(f"facade_sun_{day}", f"Sonnenstunden Fassade {de} (max.)", f"facade sun hours {en} (max.)",
                      day_property(day), sun_hours_ramp(length, day)))
    add(Colouring("din17037", "Besonnung DIN EN 17037", "sunlight DIN EN 17037", "din17037Level",
                  din17037_categories()))
    noise = noise_classes(noise_lower_db, noise_step_db)
    add(Colouring("noise_lrt", "Lärm an der Fassade, Tag (LrT)", "facade noise, day (LrT)", "noiseLrtMaxDb", noise))
    add(Colouring("noise_lrn", "Lärm an der Fassade, Nacht (LrN)", "facade noise, night (LrN)", "noiseLrnMaxDb",
                  noise))
    for p in sorted(have):
        if p.startswith("floodDepthMaxM"):
            sc = p[len("floodDepthMaxM"):]
            add(Colouring(f"flood_{sc.lower()}", f"Hochwasser {sc}: Wassertiefe am Gebäude",
                          f"flood {sc}: water depth at the building", p, flood_depth_classes()))
    add(Colouring("traffic_change_lrt", "Verkehrsänderung: Lärm Tag (Differenz)", "traffic change: noise day "
                  "(difference)", "trafficChangeLrtDb", difference_classes(1.0, "dB", more_is_better=False)))
    for name, ts in (analysis_tilesets or {}).items():
        de, en = ts["title"]
        add(Colouring(f"tileset_{name}", de, en, tileset=name, legend=ts.get("legend")))
    return out


# ---------------------------------------------------------------------------- the info panel
_TITLES: dict[str, tuple[str, str, str, int | None]] = {
    # property: (German, English, unit, digits)
    "id": ("Gebäude-ID", "building id", "", None),
    "function": ("Gebäudefunktion (ALKIS)", "function (ALKIS)", "", None),
    "roofType": ("Dachform", "roof form", "", None),
    "measuredHeight": ("Gebäudehöhe", "height", "m", 1),
    "eaveHeight": ("Traufhöhe", "eave height", "m", 1),
    "ridgeHeight": ("Firsthöhe", "ridge height", "m", 1),
    "groundHeight": ("Geländehöhe (DHHN2016)", "ground height (DHHN2016)", "m", 1),
    "storeys": ("Geschosse", "storeys", "", 0),
    "method": ("Modellierung", "method", "", None),
    "din17037Hours": ("Besonnung DIN EN 17037: Stunden", "sunlight DIN EN 17037: hours", "h", 1),
    "din17037Level": ("Besonnung DIN EN 17037: Stufe", "sunlight DIN EN 17037: level", "", None),
    "solarKwhA": ("Solareinstrahlung Dach gesamt", "solar irradiation, whole roof", "kWh/a", 0),
    "solarKwhM2aMax": ("Solareinstrahlung beste Dachfläche", "solar irradiation, best roof surface", "kWh/m²·a", 0),
    "solarRoofAreaM2": ("Dachfläche bewertet", "roof area assessed", "m²", 0),
    "solarSuitableAreaM2": ("Dachfläche geeignet", "suitable roof area", "m²", 0),
    "solarClassBest": ("Solareignung (beste Fläche)", "solar suitability (best surface)", "", None),
    "noiseLrtMaxDb": ("Lärm Fassade Tag (LrT, max.)", "facade noise day (LrT, max.)", "dB(A)", 1),
    "noiseLrnMaxDb": ("Lärm Fassade Nacht (LrN, max.)", "facade noise night (LrN, max.)", "dB(A)", 1),
    "trafficChangeLrtDb": ("Verkehrsänderung: Lärm Tag", "traffic change: noise day", "dB", 1),
    "trafficChangeLrnDb": ("Verkehrsänderung: Lärm Nacht", "traffic change: noise night", "dB", 1),
    "variant_status": ("Variante: Status", "variant: status", "", None),
}
_STATUS = {"added": ("neu", "new"), "modified": ("geändert", "modified"), "removed": ("abgerissen", "removed"),
           "affected": ("betroffen", "affected")}
_LEVELS = {"none": ("nicht erfüllt", "not met"), "minimum": ("gering", "minimum"), "medium": ("mittel", "medium"),
           "high": ("hoch", "high")}


def attribute_labels(properties: Mapping[str, Mapping[str, Any]], sun_days: Sequence[str] = ()) -> list[dict]:
    """Labels of the info panel for the buildings' properties (and the variant differences), in order."""
    out: list[dict] = []
    titles = dict(_TITLES)
    for day in sun_days:
        de, en = _day_title(day)
        titles[day_property(day)] = (f"Sonnenstunden Fassade {de} (max.)", f"facade sun hours {en} (max.)", "h", 1)
    for p in properties:
        if p.startswith("floodDepthMaxM"):
            sc = p[len("floodDepthMaxM"):]
            titles[p] = (f"Hochwasser {sc}: Wassertiefe", f"flood {sc}: water depth", "m", 2)
        elif p.startswith("floodAffected"):
            sc = p[len("floodAffected"):]
            titles[p] = (f"Hochwasser {sc}: betroffen (1 = ja)", f"flood {sc}: affected (1 = yes)", "", 0)
        elif p.startswith("floodGroundFloor"):
            sc = p[len("floodGroundFloor"):]
            titles[p] = (f"Hochwasser {sc}: Erdgeschoss unter Wasser (1 = ja)",
                         f"flood {sc}: ground floor under water (1 = yes)", "", 0)
    names = list(titles) + [p for p in properties if p not in titles]
    for p in names:
        if p not in properties and p not in ("variant_status",):
            continue
        de, en, unit, digits = titles.get(p, (str(properties.get(p, {}).get("description") or p), p, "", None))
        entry: dict[str, Any] = {"property": p, "title": {"de": de, "en": en}, "unit": unit}
        if digits is not None:
            entry["digits"] = digits
        if p == "roofType":
            entry["values"] = {k: {"de": v[0], "en": v[1]} for k, v in ROOF_FORMS.items()}
        elif p == "variant_status":
            entry["values"] = {k: {"de": v[0], "en": v[1]} for k, v in _STATUS.items()}
        elif p == "din17037Level":
            entry["values"] = {k: {"de": v[0], "en": v[1]} for k, v in _LEVELS.items()}
        out.append(entry)
    return out


def home_camera(extent_lonlat: Sequence[float], ground_m: float = 0.0) -> dict:
    """A first view of the whole extent: from the south, 35° down, the extent filling the view."""
    w, s, e, n = extent_lonlat
    lat_c = (s + n) / 2
    lon_c = (w + e) / 2
    size_m = max((e - w) * 111_320.0 * math.cos(math.radians(lat_c)), (n - s) * 111_320.0)
    dist = max(size_m * 1.1, 200.0)
    pitch = math.radians(35.0)
    height = ground_m + dist * math.sin(pitch)
    back = dist * math.cos(pitch)
    return {"lon": lon_c, "lat": lat_c - back / 111_320.0, "height_m": round(height, 1), "heading_deg": 0.0,
            "pitch_deg": -35.0, "ground_m": round(ground_m, 1)}


def viewer_config(*, title: str, timezone: str, year: int, sun_days: Sequence[str],
                  storey_height_m: float, extent_lonlat: Sequence[float], ground_m: float,
                  tilesets: Sequence[Mapping[str, Any]], colourings: Sequence[Colouring],
                  properties: Mapping[str, Mapping[str, Any]], terrain: str | None, overlays: str | None,
                  building_index: str | None, base_map: Mapping[str, Any] | None = None,
                  variants_index: str = "variants/index.json", cesium_version: str = "") -> dict:
    """The ``config.json`` document of the viewer (see the module docstring)."""
    no_data = {p: d.get("noData") for p, d in properties.items()}
    return {
        "schema_version": "1.0",
        "title": title,
        "timezone": timezone,
        "year": int(year),
        "sun_days": list(sun_days),
        "storey_height_m": float(storey_height_m),
        "extent_deg": [round(float(v), 7) for v in extent_lonlat],
        "home": home_camera(extent_lonlat, ground_m),
        "tilesets": [dict(t) for t in tilesets],
        "colourings": [c.to_json(no_data.get(c.prop)) for c in colourings],
        "attributes": attribute_labels(properties, sun_days),
        "terrain": terrain,
        "overlays": overlays,
        "building_index": building_index,
        "base_map": dict(base_map) if base_map else None,
        "variants_index": variants_index,
        "cesium_version": cesium_version,
    }
