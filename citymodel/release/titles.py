"""Titles and descriptions of a release's datasets, in German and English, from what they are and hold.

A dataset of a release is named by its identifier (``buildings-citygml``, ``analysis-noise``, ...);
:func:`dataset_texts` gives its title and description in both languages, built from the kind of the
dataset (:data:`DATASET_TEXTS`) and facts about the content that the publishing stage knows
(``place``, ``buildings``, ``trees``, ``tiles``, ``days``, ``scenarios``, ``crs``). A dataset that is
not listed gets a neutral text naming its identifier, never an empty one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Texts:
    """Title and description of a dataset in German (``de``) and English (``en``)."""

    title_de: str
    title_en: str
    description_de: str
    description_en: str


#: identifier -> (title de, title en, description de, description en); ``{...}`` are facts.
DATASET_TEXTS: dict[str, tuple[str, str, str, str]] = {
    "buildings-cityjson": (
        "3D-Gebäudemodell LoD2 (CityJSON 2.0)", "3D building model LoD2 (CityJSON 2.0)",
        "{buildings_de}als LoD2-Volumenkörper mit Dach-, Wand- und Bodenflächen, Attributen und "
        "Analysewerten je Gebäude (CityJSON 2.0){place_de}.",
        "{buildings_en}as LoD2 solids with roof, wall and ground surfaces, attributes and analysis values "
        "per building (CityJSON 2.0){place_en}."),
    "buildings-citygml": (
        "3D-Gebäudemodell LoD2 (CityGML 2.0, AdV-Profil)", "3D building model LoD2 (CityGML 2.0, AdV profile)",
        "{buildings_de}als LoD2-Gebäude im CityGML-2.0-Profil der AdV, geprüft gegen die amtlichen XSD{place_de}.",
        "{buildings_en}as LoD2 buildings in the AdV's CityGML 2.0 profile, checked against the official "
        "XSDs{place_en}."),
    "buildings-gpkg": (
        "Gebäudegrundrisse mit Attributen (GeoPackage)", "Building footprints with attributes (GeoPackage)",
        "{buildings_de}als Grundrisse mit Höhen, Dachform, Rekonstruktionsmethode und Gültigkeit{place_de}.",
        "{buildings_en}as footprints with heights, roof form, reconstruction method and validity{place_en}."),
    "buildings-geoparquet": (
        "Gebäudegrundrisse mit Attributen (GeoParquet)", "Building footprints with attributes (GeoParquet)",
        "{buildings_de}als Grundrisse mit Höhen, Dachform, Rekonstruktionsmethode und Gültigkeit{place_de}.",
        "{buildings_en}as footprints with heights, roof form, reconstruction method and validity{place_en}."),
    "buildings-csv": (
        "Gebäudeattribute (CSV)", "Building attributes (CSV)",
        "{buildings_de}als Tabelle ohne Geometrie: Höhen, Dachform, Methode, Gültigkeit{place_de}.",
        "{buildings_en}as a table without geometry: heights, roof form, method, validity{place_en}."),
    "buildings-changes": (
        "Änderungen gegenüber dem amtlichen LoD2", "Changes against the official LoD2",
        "Gebäude, deren Höhe oder Grundriss vom amtlichen LoD2-Modell abweicht, neue und abgerissene "
        "Gebäude{place_de}.",
        "Buildings whose height or footprint differs from the official LoD2 model, new and demolished "
        "buildings{place_en}."),
    "buildings-cityjsonseq": (
        "3D-Gebäudemodell je Kachel (CityJSONSeq)", "3D building model per tile (CityJSONSeq)",
        "Die LoD2-Gebäude {tiles_de}als CityJSON-Textsequenz je 1-km-Kachel{place_de}.",
        "The LoD2 buildings {tiles_en}as CityJSON text sequences per 1 km tile{place_en}."),
    "buildings-3dtiles": (
        "3D-Gebäude (3D Tiles 1.1)", "3D buildings (3D Tiles 1.1)",
        "{buildings_de}als 3D Tiles 1.1 (glTF) mit Metadaten je Gebäude für Webviewer wie CesiumJS{place_de}.",
        "{buildings_en}as 3D Tiles 1.1 (glTF) with metadata per building for web viewers such as "
        "CesiumJS{place_en}."),
    "trees-3dtiles": (
        "Bäume (3D Tiles 1.1)", "Trees (3D Tiles 1.1)",
        "{trees_de}als instanziierte 3D-Modelle mit Höhe und Kronendurchmesser{place_de}.",
        "{trees_en}as instanced 3D models with height and crown diameter{place_en}."),
    "pointcloud-3dtiles": (
        "Laserscanning-Punktwolke (3D Tiles)", "LiDAR point cloud (3D Tiles)",
        "Die klassifizierten Laserscanning-Punkte {tiles_de}als 3D Tiles, gefärbt nach Klasse{place_de}.",
        "The classified LiDAR points {tiles_en}as 3D Tiles, coloured by class{place_en}."),
    "solar-3dtiles": (
        "Solare Einstrahlung auf Dächern (3D Tiles 1.1)", "Solar irradiation on roofs (3D Tiles 1.1)",
        "Dachflächen eingefärbt nach jährlicher Einstrahlung (kWh/m²·a) mit Verschattung{place_de}.",
        "Roof surfaces coloured by annual irradiation (kWh/m²·a) with shading{place_en}."),
    "facade-sun-3dtiles": (
        "Besonnung der Fassaden (3D Tiles 1.1)", "Facade sun hours (3D Tiles 1.1)",
        "Wandflächen eingefärbt nach Stunden direkter Sonne an einem Tag{place_de}.",
        "Wall surfaces coloured by hours of direct sun on one day{place_en}."),
    "analysis-sun_hours": (
        "Besonnungsdauer (Boden, Fassaden, DIN EN 17037)", "Sun hours (ground, facades, DIN EN 17037)",
        "Stunden direkter Sonne am Boden (GeoTIFF) und je Fassade und Geschoss{days_de}, sowie die "
        "Besonnungsstufe nach DIN EN 17037 je Gebäude; Sonnenstand nach NREL SPA, Verschattung durch "
        "Gebäude, Baumkronen und Gelände{place_de}.",
        "Hours of direct sun on the ground (GeoTIFF) and per facade wall and storey{days_en}, and the "
        "DIN EN 17037 sunlight exposure level per building; sun positions by NREL SPA, shading by "
        "buildings, tree crowns and terrain{place_en}."),
    "analysis-solar": (
        "Solarpotenzial der Dachflächen", "Solar potential of roof surfaces",
        "Jährliche Einstrahlung je Dachfläche (kWh/m²·a) mit Verschattung und Eignungsklassen wie in einem "
        "Solarkataster{place_de}.",
        "Annual irradiation per roof surface (kWh/m²·a) with shading and suitability classes as in a solar "
        "cadastre{place_en}."),
    "analysis-noise": (
        "Straßenverkehrslärm (RLS-19)", "Road traffic noise (RLS-19)",
        "Beurteilungspegel LrT/LrN nach RLS-19 als Raster in 4 m Höhe, Isophonen, Fassadenpegel und "
        "Betroffenenzahlen{place_de}.",
        "Rating levels LrT/LrN after RLS-19 as a grid at 4 m, isophones, facade levels and exposure "
        "counts{place_en}."),
    "analysis-flood": (
        "Überflutungstiefen und betroffene Gebäude", "Flood depths and affected buildings",
        "Wassertiefe je Szenario{scenarios_de} aus Wasserspiegellage und Gelände, Betroffenheit je "
        "Gebäude{place_de}.",
        "Water depth per scenario{scenarios_en} from water level and terrain, exposure per building{place_en}."),
    "analysis-traffic_change": (
        "Lärmänderung durch eine Verkehrsänderung", "Noise change of a traffic change",
        "Differenz der Beurteilungspegel (nachher − vorher) für die konfigurierte Verkehrsänderung{place_de}.",
        "Difference of the rating levels (after − before) for the configured traffic change{place_en}."),
    "analysis-sightlines": (
        "Sichtachsen und Sichtfelder", "Sight lines and viewsheds",
        "Sichtbarkeit zwischen Beobachter- und Zielpunkten über dem 3D-Modell, verdeckende Gebäude und "
        "sichtbare Flächen{place_de}.",
        "Visibility between observers and targets over the 3D model, blocking buildings and visible "
        "areas{place_en}."),
    "analysis-building-values": (
        "Analysewerte je Gebäude", "Analysis values per building",
        "{buildings_de}mit den Werten aller Analysen (Besonnung, DIN EN 17037, Solarertrag, Lärm, "
        "Überflutung) in einer Tabelle{place_de}.",
        "{buildings_en}with the values of every analysis (sun hours, DIN EN 17037, solar yield, noise, "
        "flood) in one table{place_en}."),
    "tile-index": (
        "Kachelübersicht", "Tile index",
        "Die 1-km-Kacheln {tiles_de}mit Verweisen auf ihre Dateien (GeoJSON){place_de}.",
        "The 1 km tiles {tiles_en}with links to their files (GeoJSON){place_en}."),
    "quality-report": (
        "Qualitätsbericht", "Quality report",
        "Ergebnisse der Qualitätsprüfungen dieser Veröffentlichung: Eingangsdaten, 3D-Modell "
        "(Methoden, Ersatzmodelle, Passfehler, Gültigkeit) und Analysen; zurückgestellte Datensätze "
        "mit Grund{place_de}.",
        "Results of the quality checks of this release: input data, 3D model (methods, fallbacks, fit "
        "errors, validity) and analyses; quarantined records with their reason{place_en}."),
    "qgis-project": (
        "QGIS-Projekt mit allen 2D-Ebenen", "QGIS project with every 2D layer",
        "Ein QGIS-Projekt (.qgz) mit den 2D-Ebenen dieser Veröffentlichung, gestaltet wie in den 3D Tiles; "
        "relative Pfade, öffnet sich im entpackten Download{place_de}.",
        "A QGIS project (.qgz) with the 2D layers of this release, styled as in the 3D Tiles; relative "
        "paths, opens as downloaded{place_en}."),
    "map-styles": (
        "Kartenstile (SLD)", "Map styles (SLD)",
        "Styled Layer Descriptors (SLD 1.0) der 2D-Ebenen für GeoServer, MapServer und QGIS Server, mit "
        "denselben Farben und Klassen wie das QGIS-Projekt{place_de}.",
        "Styled Layer Descriptors (SLD 1.0) of the 2D layers for GeoServer, MapServer and QGIS Server, "
        "with the same colours and classes as the QGIS project{place_en}."),
    "trees": (
        "Bäume mit Höhe und Krone", "Trees with height and crown",
        "{trees_de}als Punkte mit Höhe, Kronendurchmesser (gemessen oder geschätzt) und Art{place_de}.",
        "{trees_en}as points with height, crown diameter (measured or estimated) and species{place_en}."),
}


def _count(n: Any, de: tuple[str, str], en: tuple[str, str]) -> tuple[str, str]:
    """'312 Gebäude ' / '312 buildings ' (with a trailing space), or '' where unknown."""
    try:
        n = int(n)
    except (TypeError, ValueError):
        return "", ""
    return (f"{n:,} {de[0] if n == 1 else de[1]} ".replace(",", "."),
            f"{n:,} {en[0] if n == 1 else en[1]} ")


def dataset_texts(identifier: str, facts: Mapping[str, Any] | None = None) -> Texts:
    """Title and description of a release dataset in German and English.

    Parameters
    ----------
    identifier : str
        The dataset's identifier in the release (``buildings-citygml``, ``analysis-noise``, ...).
    facts : mapping, optional
        What is known about the content: ``place`` (the deployment's title), ``buildings``,
        ``trees``, ``tiles`` (counts), ``days`` (``MM-DD`` of the sun-hours layers), ``scenarios``
        (flood scenarios). Missing facts are left out of the text.
    """
    f = dict(facts or {})
    place = str(f.get("place") or "").strip()
    b_de, b_en = _count(f.get("buildings"), ("Gebäude", "Gebäude"), ("building", "buildings"))
    t_de, t_en = _count(f.get("trees"), ("Baum", "Bäume"), ("tree", "trees"))
    k_de, k_en = _count(f.get("tiles"), ("Kachel", "Kacheln"), ("tile", "tiles"))
    days = [str(d) for d in f.get("days") or []]
    scen = [str(s) for s in f.get("scenarios") or []]
    values = {
        "place_de": f" – {place}" if place else "", "place_en": f" – {place}" if place else "",
        "buildings_de": (f"{b_de}" if b_de else "Die Gebäude "), "buildings_en": (f"{b_en}" if b_en else "The buildings "),
        "trees_de": (t_de or "Die Bäume "), "trees_en": (t_en or "The trees "),
        "tiles_de": (f"({k_de.strip()}) " if k_de else ""), "tiles_en": (f"({k_en.strip()}) " if k_en else ""),
        "days_de": (f" an den Tagen {', '.join(_day_de(d) for d in days)}" if days else ""),
        "days_en": (f" on {', '.join(_day_en(d) for d in days)}" if days else ""),
        "scenarios_de": (f" ({', '.join(scen)})" if scen else ""),
        "scenarios_en": (f" ({', '.join(scen)})" if scen else ""),
    }
    spec = DATASET_TEXTS.get(identifier)
    if spec is None:
        return Texts(f"Datensatz {identifier}{values['place_de']}", f"Dataset {identifier}{values['place_en']}",
                     f"Teil dieser Veröffentlichung: {identifier}{values['place_de']}.",
                     f"Part of this release: {identifier}{values['place_en']}.")
    title_de, title_en, desc_de, desc_en = spec
    return Texts(title_de, title_en, _sentence(desc_de.format(**values)), _sentence(desc_en.format(**values)))


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    return text[0].upper() + text[1:] if text else text


_MONTHS_DE = ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
              "November", "Dezember")
_MONTHS_EN = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
              "November", "December")


def _day_de(mm_dd: str) -> str:
    try:
        m, d = (int(x) for x in mm_dd.split("-"))
        return f"{d}. {_MONTHS_DE[m - 1]}"
    except (ValueError, IndexError):
        return mm_dd


def _day_en(mm_dd: str) -> str:
    try:
        m, d = (int(x) for x in mm_dd.split("-"))
        return f"{d} {_MONTHS_EN[m - 1]}"
    except (ValueError, IndexError):
        return mm_dd


def entry_texts(entry: Any, facts: Mapping[str, Any] | None = None) -> Texts:
    """The texts of a declared dataset (:class:`citymodel.release.dcat.DatasetEntry`).

    A title given when the dataset was declared wins (with its English title and descriptions where
    given, else the German ones stand for both); a dataset declared only by being named (its title
    is its identifier) gets :func:`dataset_texts`.
    """
    if entry.title and entry.title != entry.identifier:
        desc = entry.description or entry.title
        return Texts(entry.title, getattr(entry, "title_en", None) or entry.title, desc,
                     getattr(entry, "description_en", None) or desc)
    return dataset_texts(entry.identifier, facts)
