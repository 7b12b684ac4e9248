"""Which role each scanned file plays, and how its columns map to the role's canonical schema.

Rules (first match wins, per file):

* LAZ/LAS (or a zip of them) → ``lidar``; the tile is read from the name (state naming
  ``*_32_<E>_<N>_*``, E/N in km) where it has one, else from the header bounds.
* CityGML (``.gml``/``.xml``, or inside a zip) → ``lod2_reference``.
* A GeoJSON with a top-level ``variant`` member → ``variants`` (a planning variant).
* Polygons with a scenario or water-level column → ``flood_zones``; other polygons → ``buildings``
  (certain where ALKIS attribute names are present: ``gml_id``, ``gebaeudefunktion``/``funktion``,
  ``anzahlDerOberirdischenGeschosse``, ``dachform``; a guess otherwise).
* Lines with a traffic column (``dtv``, ``m_tag``/``m_day``, ...) → ``roads``.
* Points (or a CSV with WKT or x/y columns) with an eye-height or target column → ``viewpoints``;
  with a tree column (height, crown, trunk, species) → ``trees``.

Column names are compared case- and accent-insensitively (``Baumhöhe`` = ``baumhoehe``). A column
found under the canonical name or the name the sample city uses (the ALKIS/cadastre names of
:data:`citymodel.vector.DEFAULT_COLUMNS`) is certain; one found under another synonym is a guess,
marked for the user to confirm.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from ..vector import DEFAULT_COLUMNS, ID_COLUMN, ROLE_SCHEMAS
from .scan import FileFacts

#: canonical column -> source names tried after the canonical and the default name, per role
SYNONYMS: dict[str, dict[str, tuple[str, ...]]] = {
    "buildings": {
        "building_id": ("gml_id", "oid", "objectid", "gebaeude_id", "id"),
        "function_code": ("gebaeudefunktion", "funktion", "gfk", "function", "building_function"),
        "storeys": ("anzahlderoberirdischengeschosse", "anzahl_og", "geschosse", "anzahl_geschosse",
                    "storeys", "floors"),
        "roof_form": ("dachform", "dachtyp", "roofform", "roof_type"),
    },
    "trees": {
        "tree_id": ("baumnummer", "baum_id", "baumnr", "tree_id", "objectid", "nr", "id"),
        "height_m": ("baumhoehe", "hoehe", "height", "hoehe_m", "baumhoehe_m"),
        "crown_diameter_m": ("kr_durchm", "kronendurchmesser", "kronendm", "krone", "kronendurchmesser_m",
                             "crown_diameter", "crown"),
        "trunk_circumference_cm": ("st_umfang", "stammumfang", "umfang", "stammumfang_cm", "trunk_circumference"),
        "species": ("ga_lang", "baumart", "art", "gattung_art", "art_deutsch", "art_botanisch", "species"),
        "vitality": ("vitalitaet", "zustand", "vitality"),
    },
    "roads": {
        "road_id": ("strassen_id", "abschnitt_id", "objectid", "id"),
        "name": ("name", "strassenname", "str_name", "strasse"),
        "dtv": ("dtv", "aadt"),
        "m_day": ("m_tag", "mt", "m_t", "m_day"),
        "m_night": ("m_nacht", "mn", "m_n", "m_night"),
        "p1_day": ("p1_tag", "p1_t", "p1_day"),
        "p2_day": ("p2_tag", "p2_t", "p2_day"),
        "pmc_day": ("pkrad_tag", "pkrad_t", "pmc_day"),
        "p1_night": ("p1_nacht", "p1_n", "p1_night"),
        "p2_night": ("p2_nacht", "p2_n", "p2_night"),
        "pmc_night": ("pkrad_nacht", "pkrad_n", "pmc_night"),
        "speed_car_kmh": ("v_pkw", "vpkw", "speed_car"),
        "speed_truck_kmh": ("v_lkw", "vlkw", "speed_truck"),
        "surface": ("belag", "fahrbahnbelag", "deckschicht", "surface"),
    },
    "flood_zones": {
        "zone_id": ("gebiet_id", "zone_id", "objectid", "id"),
        "scenario": ("szenario", "scenario", "hq", "jaehrlichkeit"),
        "water_level_m": ("wsp_m", "wsp", "wasserspiegel", "wasserspiegellage", "water_level"),
    },
    "viewpoints": {
        "viewpoint_id": ("sp_id", "punkt_id", "objectid", "id"),
        "name": ("name", "bezeichnung"),
        "kind": ("art", "typ", "kind"),
        "eye_height_m": ("augenhoehe_m", "augenhoehe", "eye_height"),
        "target_id": ("ziel_id", "target_id", "ziel"),
    },
}

#: columns whose presence says which role a table plays
SIGNATURES: dict[str, tuple[str, ...]] = {
    "buildings": ("gebaeudefunktion", "funktion", "anzahlderoberirdischengeschosse", "anzahl_og", "dachform"),
    "flood_zones": SYNONYMS["flood_zones"]["scenario"] + SYNONYMS["flood_zones"]["water_level_m"],
    "roads": ("dtv", "m_tag", "m_day", "m_nacht", "m_night", "aadt"),
    "viewpoints": SYNONYMS["viewpoints"]["eye_height_m"] + ("ziel_id", "target_id"),
    "trees": (SYNONYMS["trees"]["height_m"] + SYNONYMS["trees"]["crown_diameter_m"]
              + SYNONYMS["trees"]["trunk_circumference_cm"] + ("baumart", "ga_lang", "baumnummer")),
}

#: names of WKT and coordinate columns in a CSV
WKT_NAMES = ("geometrie", "geometry_wkt", "wkt", "geometry", "geom", "the_geom", "shape")
X_NAMES = ("x", "rechtswert", "rw", "easting", "ostwert", "x_koord", "xkoord", "lon", "lng", "longitude")
Y_NAMES = ("y", "hochwert", "hw", "northing", "nordwert", "y_koord", "ykoord", "lat", "latitude")


def norm(name: str) -> str:
    """A column name for comparison: lower case, umlauts spelled out, accents and separators dropped
    except ``_``."""
    s = str(name).strip().lower()
    for a, b in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss")):
        s = s.replace(a, b)
    s = unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9_]", "", s.replace(" ", "_").replace("-", "_").replace(".", "_"))


@dataclass
class Recognised:
    """One file's role, its column mapping and what of it is a guess."""

    facts: FileFacts
    role: str
    columns: dict[str, str] = field(default_factory=dict)
    guesses: dict[str, str] = field(default_factory=dict)  # key (e.g. "columns.storeys", "role") -> why
    missing: list[str] = field(default_factory=list)       # canonical columns not found
    geometry: dict[str, str] = field(default_factory=dict)  # CSV: geometry_wkt or x/y or easting/northing
    crs: str | None = None
    options: dict = field(default_factory=dict)


def _present(fields: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for f in fields:
        out.setdefault(norm(f), f)
    return out


def map_columns(role: str, fields: list[str]) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """Canonical -> source column for ``role``; the guessed ones with why; canonical columns not found."""
    present = _present(fields)
    columns, guesses, missing, used = {}, {}, [], set()
    for canon in ROLE_SCHEMAS[role]:
        sure = [canon, DEFAULT_COLUMNS.get(role, {}).get(canon, "")]
        found, certain = None, False
        for cand in sure + list(SYNONYMS.get(role, {}).get(canon, ())):
            key = norm(cand)
            if key and key in present and present[key] not in used:
                found, certain = present[key], cand in sure or key in (norm(s) for s in sure if s)
                break
        if found is None:
            missing.append(canon)
            continue
        used.add(found)
        columns[canon] = found
        if not certain:
            guesses[f"columns.{canon}"] = f"column '{found}' taken for {canon}"
    return columns, guesses, missing


def _signature_hits(role: str, fields: list[str]) -> list[str]:
    present = _present(fields)
    return [present[norm(s)] for s in SIGNATURES[role] if norm(s) in present]


def recognise(facts: FileFacts) -> Recognised | None:
    """The role of one file, or None where no rule matches (the caller lists it as unrecognised)."""
    if facts.kind == "lidar":
        return Recognised(facts, "lidar", crs=facts.crs)
    if facts.kind == "citygml":
        return Recognised(facts, "lod2_reference", crs=facts.crs)
    if facts.kind == "variant":
        return Recognised(facts, "variants")
    if facts.kind == "csv":
        return _recognise_csv(facts)
    if facts.kind != "vector":
        return None
    gt = (facts.geometry_type or "").replace("3D ", "").replace(" Z", "").replace("Multi", "")
    role = None
    guesses: dict[str, str] = {}
    if gt == "Polygon":
        if _signature_hits("flood_zones", facts.fields):
            role = "flood_zones"
        else:
            role = "buildings"
            if not _signature_hits("buildings", facts.fields):
                guesses["role"] = (f"polygons without ALKIS attributes ({', '.join(facts.fields[:8]) or 'none'}) "
                                   f"taken as building footprints")
    elif gt == "LineString":
        if _signature_hits("roads", facts.fields):
            role = "roads"
    elif gt == "Point":
        if _signature_hits("viewpoints", facts.fields):
            role = "viewpoints"
        elif _signature_hits("trees", facts.fields):
            role = "trees"
    if role is None:
        return None
    columns, col_guesses, missing = map_columns(role, facts.fields)
    guesses.update(col_guesses)
    rec = Recognised(facts, role, columns, guesses, missing, crs=facts.crs)
    if facts.layer:
        rec.guesses["layer"] = f"layer '{facts.layer}' of {len(facts.layers)} ({', '.join(facts.layers)})"
    return rec


def _float(text) -> float | None:
    if text is None:
        return None
    try:
        return float(str(text).strip().replace(",", "."))
    except ValueError:
        return None


_WKT_POINT = re.compile(r"^\s*POINT\s*Z?\s*\(\s*([-+0-9.eE,]+)\s+([-+0-9.eE,]+)", re.IGNORECASE)


def _recognise_csv(facts: FileFacts) -> Recognised | None:
    if not _signature_hits("trees", facts.fields):
        return None
    columns, guesses, missing = map_columns("trees", facts.fields)
    rec = Recognised(facts, "trees", columns, guesses, missing,
                     options={"sep": facts.csv_sep, "decimal": facts.csv_decimal})
    if facts.csv_encoding and facts.csv_encoding != "utf-8":
        rec.options["encoding"] = facts.csv_encoding
    present = _present(facts.fields)
    wkt = next((present[norm(n)] for n in WKT_NAMES if norm(n) in present), None)
    first_pairs: list[tuple[float, float]] = []
    if wkt is not None:
        rec.geometry = {"geometry_wkt": wkt}
        for r in facts.rows:
            m = _WKT_POINT.match(str(r.get(wkt) or ""))
            if m:
                a, b = _float(m.group(1)), _float(m.group(2))
                if a is not None and b is not None:
                    first_pairs.append((a, b))
    else:
        xs = next((present[norm(n)] for n in X_NAMES if norm(n) in present), None)
        ys = next((present[norm(n)] for n in Y_NAMES if norm(n) in present), None)
        if xs is None or ys is None:
            rec.guesses["geometry"] = (f"no WKT column and no x/y columns among {facts.fields}: set "
                                       f"columns.geometry_wkt or columns.x and columns.y")
            return rec
        rec.geometry = {"x": xs, "y": ys}
        for r in facts.rows:
            a, b = _float(r.get(xs)), _float(r.get(ys))
            if a is not None and b is not None:
                first_pairs.append((a, b))
    rec.options["_pairs"] = first_pairs  # read by the deployment builder, not written
    return rec


def csv_crs_guess(rec: Recognised, processing_crs: str) -> tuple[dict[str, str], str | None, str]:
    """Geometry columns and CRS of a CSV's coordinates, guessed from their magnitudes.

    In a UTM processing CRS (EPSG:258xx) an easting has 6 digits and a northing 7: where the first
    coordinate is the northing, WKT points are read in a northing-first CRS of the same projection
    (ETRS89 / ETRS-TM32 = EPSG:3044, TM33 = EPSG:3045) and x/y columns are mapped as
    ``easting``/``northing`` (never swapped). Degrees are read as WGS84.

    Returns
    -------
    geometry : dict
        The geometry keys of ``columns`` (``geometry_wkt``, or ``easting``/``northing``, or ``x``/``y``).
    crs : str or None
    why : str
        The reason, for the GUESS comment.
    """
    pairs = rec.options.get("_pairs") or []
    geometry = dict(rec.geometry)
    if not pairs:
        return geometry, processing_crs, "no coordinates could be read: the processing CRS is assumed"
    import statistics

    a = statistics.median(p[0] for p in pairs)
    b = statistics.median(p[1] for p in pairs)
    utm = {"EPSG:25832": "EPSG:3044", "EPSG:25833": "EPSG:3045"}
    if abs(a) <= 180 and abs(b) <= 180:
        if "x" in geometry:
            lon_first = abs(a) < abs(b)  # Germany: longitude 5..15, latitude 47..55
            geometry = ({"easting": geometry["x"], "northing": geometry["y"]} if lon_first
                        else {"easting": geometry["y"], "northing": geometry["x"]})
            return geometry, "OGC:CRS84", "coordinates in degrees: WGS84 longitude/latitude"
        return geometry, "EPSG:4326" if abs(a) > abs(b) else "OGC:CRS84", \
            "coordinates in degrees: WGS84 (" + ("latitude first" if abs(a) > abs(b) else "longitude first") + ")"
    northing_first = a >= 1_000_000 > b
    if "x" in geometry:
        if northing_first:
            geometry = {"easting": geometry["y"], "northing": geometry["x"]}
            why = (f"column '{geometry['northing']}' holds 7-digit values (northings), "
                   f"'{geometry['easting']}' 6-digit ones (eastings)")
        else:
            geometry = {"easting": geometry["x"], "northing": geometry["y"]}
            why = f"column '{geometry['easting']}' holds eastings, '{geometry['northing']}' northings"
        return geometry, processing_crs, why + f"; the CRS of the data ({processing_crs}) assumed"
    if northing_first and processing_crs in utm:
        return geometry, utm[processing_crs], (f"WKT points give the northing first (about {a:.0f}, {b:.0f}): "
                                               f"{utm[processing_crs]} (the northing-first twin of "
                                               f"{processing_crs}) assumed")
    return geometry, processing_crs, f"WKT points near ({a:.0f}, {b:.0f}): the CRS of the data assumed"


def id_column(role: str) -> str | None:
    return ID_COLUMN.get(role)
