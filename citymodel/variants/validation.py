"""Validation of untrusted variant files: every problem, with the feature, the field and the fix.

:func:`validate_variant` takes the bytes of a submitted file (a variant GeoJSON of schema 1.0, or a
whole CityJSON 2.0 file of designed buildings with the variant metadata in the root member
``"+variant"``) and either returns the typed :class:`~citymodel.variants.changes.Variant` (parsed by
:func:`citymodel.variants.document.parse_variant`, coordinates in the processing CRS) or raises
:class:`VariantRejected`, whose ``report`` lists every problem found (validation does not stop at
the first one)::

    {"file": "entwurf.geojson", "sha256": "…", "accepted": false, "schema_version": "1.0",
     "format": "geojson", "problems": [{"feature": 3, "field": "properties.ridge_height_m",
     "check": "height", "problem": "…", "fix": "…"}], "skipped": []}

``feature`` is the index of the feature in ``features`` (for a CityJSON submission: of the Building
in ``CityObjects`` order), or null for the file as a whole. Checks, in this order:

1. **Untrusted input** (before anything else): the size limit (bytes, before parsing), UTF-8, JSON
   syntax (line and column), no NaN/Infinity, no duplicate members, nesting depth, number of
   features and of coordinates (``variants.*`` limits of the deployment).
2. **No external references of any kind**: no member ``$ref``, ``$id``, ``$schema``, no JSON-LD
   member (``@context``, ``@id``, …), nothing named ``*href*`` (``xlink:href``), no CityJSON
   ``textures`` (image files); no string that holds a URL or URI (``scheme://…``; ``http:``,
   ``https:``, ``ftp:``, ``file:/``, ``data:…``, ``javascript:``, ``mailto:``, ``blob:``, ``tel:``
   directly followed by text; ``//host``; ``\\\\host\\share``; ``www.host.tld``). The one exception is the
   CRS identifier of a CityJSON ``metadata.referenceSystem``
   (``https://www.opengis.net/def/crs/EPSG/0/<code>``), which the CityJSON standard requires and
   nothing fetches.
3. **The JSON Schema** ``variant-1.0.schema.json`` (Draft 2020-12, formats checked: ``created`` is
   an RFC 3339 date-time); each schema error becomes a problem at its feature and field with a fix
   in words.
4. **Geometry** (features that passed the schema): rings closed, WGS84 coordinates within
   longitude/latitude range, the file's CRS either EPSG:4326 (default, RFC 7946) or the
   processing CRS; then, transformed into the processing CRS (pyproj, ``always_xy=True``):
   polygons valid (shapely ``is_valid``; the reason from ``explain_validity``), footprints of at
   least ``variants.min_footprint_area_m2``, everything inside the deployment's ``extent``.
5. **Heights**: 0 < eave <= ridge <= 300 m; a flat roof (1000) has one height (eave == ridge, or
   only the eave), a pitched roof its ridge above its eave; with storeys and an eave height both
   given, the eave lies within storeys × [``variants.storey_height_min_m``,
   ``variants.storey_height_max_m``] (default 2.2–4.5 m per storey; for a flat roof given by its
   ridge alone, the ridge counts as the eave). A modified building's new heights are checked
   together with its current ones where the context knows them.
6. **References**: removed and modified buildings exist, changed roads exist, removed trees exist;
   nothing removed or modified twice, nothing modified and removed; ids of new buildings, roads
   and trees are unique in the file and not taken by the city; the parent variant (and version)
   was accepted; the variant id is not a folder name of the variants layout (:data:`RESERVED_IDS`).
   A changed road changes something; a new road has a line and its traffic (``dtv`` or ``m_day``
   and ``m_night``).
7. **Overlaps**: new footprints (and the new footprints of modified buildings) overlap neither the
   kept buildings (current minus removed; a modified building counts with its new footprint) nor
   each other by more than ``variants.overlap_tolerance_m2`` (touching edges are fine).
8. **Designs** (``design``: inline CityJSON 2.0 of designed buildings): the official CityJSON 2.0.2
   schemas (``quality.schema_dir``; where absent the report says the check was skipped), the CRS
   (``metadata.referenceSystem`` must name the processing CRS), only ``Building`` and
   ``BuildingPart`` objects, every building a closed ``Solid`` (``MultiSolid``/``CompositeSolid``
   parts each) valid by the project's val3dity-rule validator (:mod:`citymodel.validate3d`; the
   problem carries the error ``codes``), template references inside the file, a height up to
   300 m. A feature without geometry gets its footprint from the design.

Everything here is pure: bytes and a :class:`ValidationContext` in, a variant or a report out.
Nothing imports dagster; nothing is written (the registry writes, :mod:`.registry`).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from ..config import VariantSettings
from ..errors import CityModelError
from . import SCHEMA_VERSION, schema_text
from .changes import ROAD_CHANGE_KEYS, AddBuilding, AddTree, ModifyBuilding, RoadChange, Variant
from .document import DEFAULT_CRS, parse_variant

#: folder names below ``<output_dir>/variants/`` (submissions, rejection reports, the inbox, work and
#: published folders): a variant id must not take one of them
RESERVED_IDS = frozenset({"submissions", "rejected", "inbox", "done", "work", "index", "latest", "published",
                          "releases", "schemas"})
MAX_HEIGHT_M = 300.0
FLAT = 1000
#: a flat roof's eave and ridge may differ by this much (rounding)
HEIGHT_TOLERANCE_M = 0.01
_OGC_CRS_URL = re.compile(r"^https?://www\.opengis\.net/def/crs/EPSG/0/(\d{4,6})$")
_FORBIDDEN_KEYS = frozenset({"$ref", "$id", "$schema", "$anchor", "$dynamicref", "$dynamicanchor",
                             "$recursiveref", "$recursiveanchor", "textures"})
_URL_RE = re.compile(r"""(?ix)
    \b[a-z][a-z0-9+.\-]{1,31}://                                           # any scheme://...
  | \b(?:https?|ftps?|sftp|mailto|javascript|vbscript|blob|tel|jar|smb)\s*:(?=\S)  # scheme:... (no space)
  | \bfile:/                                                               # file:/path
  | \bdata:[a-z0-9.+\-]*/?[a-z0-9.+\-]*[;,]                                # data:[type][;base64],
  | (?:^|[\s"'(<\[=])//[a-z0-9\-]+(?:\.[a-z0-9\-]+)*                         # //host (protocol-relative)
  | \\\\[a-z0-9\-.$]+\\                                                    # \\host\share (UNC)
  | \bwww\.[a-z0-9\-]+(?:\.[a-z0-9\-]+)+                                   # www.host.tld
  | xlink:href
""")
_NO_REF_FIX = ("remove it: a variant file must be self-contained (no links, URLs, URIs, schema or file "
               "references); describe sources in words")


# ============================================================================= context and limits
@dataclass(frozen=True)
class ValidationContext:
    """What a variant is checked against: the deployment and the current city.

    Parameters
    ----------
    extent : (minx, miny, maxx, maxy)
        The deployment's extent in the processing CRS; every geometry must lie inside.
    processing_crs : str
        E.g. ``"EPSG:25832"``.
    building_footprints : mapping
        ``building_id -> shapely footprint`` (processing CRS) of the current city's buildings.
    road_ids, tree_ids : frozenset of str
        Ids of the current roads and trees.
    variants : mapping
        ``variant id -> accepted versions`` (a parent must be one of them).
    building_heights : mapping
        ``building_id -> (eave_height_m, ridge_height_m)`` above ground where known (modified
        buildings' new heights are checked together with them).
    limits : citymodel.config.VariantSettings
    cityjson_schema_dir : Path, optional
        Folder of the official CityJSON 2.0.2 schemas; without it (or where it is absent) the
        schema check of designs is skipped and the report says so.
    """

    extent: tuple[float, float, float, float]
    processing_crs: str
    building_footprints: Mapping[str, Any] = field(default_factory=dict)
    road_ids: frozenset[str] = frozenset()
    tree_ids: frozenset[str] = frozenset()
    variants: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    building_heights: Mapping[str, tuple[float | None, float | None]] = field(default_factory=dict)
    limits: VariantSettings = field(default_factory=VariantSettings)
    cityjson_schema_dir: Path | None = None

    @property
    def building_ids(self) -> frozenset[str]:
        return frozenset(self.building_footprints)

    def with_variant(self, variant_id: str, version: int) -> "ValidationContext":
        """This context with one more accepted version (a later file may name it as its parent)."""
        known = dict(self.variants)
        known[variant_id] = tuple(sorted({*known.get(variant_id, ()), int(version)}))
        return replace(self, variants=known)


def context_for(settings, store) -> ValidationContext:
    """The validation context of a deployment and its current city.

    Parameters
    ----------
    settings : citymodel.config.Settings
    store : citymodel.store.CityStore
        The city as reconstructed: its buildings' footprints and heights (the attribute tables of
        the building tiles), staged roads and trees.
    """
    from .registry import list_submissions

    table = store.building_table()
    ids = table["building_id"].astype(str).tolist() if len(table) else []
    footprints = dict(zip(ids, table.geometry.values)) if ids else {}
    heights: dict[str, tuple[float | None, float | None]] = {}
    if ids and "eave_height_m" in table and "ridge_height_m" in table:
        for i, e, r in zip(ids, table["eave_height_m"], table["ridge_height_m"]):
            heights[i] = (_finite(e), _finite(r))
    roads = store.roads()
    trees = store.trees()
    road_ids = frozenset(roads["road_id"].astype(str)) if roads is not None and "road_id" in roads else frozenset()
    tree_ids = frozenset(trees["tree_id"].astype(str)) if trees is not None and "tree_id" in trees else frozenset()
    known: dict[str, list[int]] = {}
    for s in list_submissions(settings):
        known.setdefault(s.id, []).append(s.version)
    schema_dir = settings.quality.schema_dir
    return ValidationContext(
        extent=tuple(float(v) for v in settings.extent), processing_crs=settings.processing_crs,
        building_footprints=footprints, road_ids=road_ids, tree_ids=tree_ids,
        variants={k: tuple(sorted(v)) for k, v in known.items()}, building_heights=heights,
        limits=settings.variants,
        cityjson_schema_dir=None if schema_dir is None else Path(schema_dir) / "cityjson-2.0.2")


def _finite(v) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


# ================================================================================== the report
class VariantRejected(CityModelError):
    """A variant file was rejected. ``report`` is the machine-readable rejection report (see the
    module docstring); ``report_path`` is where the registry wrote it (None before)."""

    def __init__(self, report: dict):
        self.report = report
        self.report_path: Path | None = None
        super().__init__(readable_report(report))

    @property
    def problems(self) -> list[dict]:
        return self.report["problems"]


def readable_report(report: dict) -> str:
    """The rejection report as text (the message of :class:`VariantRejected`, the ``.txt`` file)."""
    probs = report.get("problems", [])
    lines = [f"variant file '{report.get('file')}' rejected: {len(probs)} problem(s) "
             f"(sha256 {str(report.get('sha256', ''))[:12]}…)"]
    for p in probs:
        where = "file" if p.get("feature") is None else f"feature {p['feature']}"
        if p.get("field"):
            where += f", {p['field']}"
        lines.append(f"  - {where}: {p['problem']}. Fix: {p['fix']}")
    for s in report.get("skipped", []):
        lines.append(f"  (skipped: {s})")
    return "\n".join(lines)


def size_problem(n_bytes: int, limits: VariantSettings) -> dict:
    """The problem of a file above the size limit."""
    return {"feature": None, "field": None, "check": "size",
            "problem": f"the file has {n_bytes:,} bytes; at most {limits.max_file_bytes:,} are accepted",
            "fix": "split the variant into smaller files or simplify its geometry (fewer vertices)"}


def rejection(source_name: str, sha256: str, problems: list[dict], fmt: str | None = None) -> VariantRejected:
    """A :class:`VariantRejected` with the standard report (for files rejected before validation,
    e.g. links or oversized files in the inbox)."""
    return VariantRejected({"file": source_name, "sha256": sha256, "accepted": False,
                            "schema_version": SCHEMA_VERSION, "format": fmt, "problems": list(problems),
                            "skipped": []})


class _Problems:
    def __init__(self):
        self.items: list[dict] = []
        self._seen: set = set()

    def add(self, feature: int | None, field_: str | None, check: str, problem: str, fix: str, **extra) -> None:
        key = (feature, field_, problem)
        if key in self._seen:
            return
        self._seen.add(key)
        self.items.append({"feature": feature, "field": field_ or None, "check": check, "problem": problem,
                           "fix": fix, **extra})

    @property
    def features(self) -> set[int]:
        return {p["feature"] for p in self.items if p["feature"] is not None}

    def __bool__(self) -> bool:
        return bool(self.items)


def _field(path: Iterable) -> str:
    out = ""
    for p in path:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out


def _where(path: list) -> tuple[int | None, str | None]:
    """JSON path -> (feature index, field below the feature)."""
    if len(path) >= 2 and path[0] == "features" and isinstance(path[1], int):
        return path[1], _field(path[2:]) or None
    return None, _field(path) or None


# =============================================================================== entry points
@dataclass(frozen=True)
class Validated:
    """An accepted file: the typed variant, the submitted format and what was not checked."""

    variant: Variant
    format: str  # "geojson" | "cityjson"
    skipped: tuple[str, ...] = ()


def validate_variant(data: bytes, source_name: str, context: ValidationContext) -> Variant:
    """Validate an untrusted variant file (see the module docstring).

    Parameters
    ----------
    data : bytes
        The file as submitted.
    source_name : str
        Its name (reported; not opened).
    context : ValidationContext

    Returns
    -------
    Variant
        In the processing CRS, ``sha256`` of ``data``, ``version`` None (the registry numbers it).

    Raises
    ------
    VariantRejected
        With the report of every problem found.
    """
    return validate_submission(data, source_name, context).variant


def validate_submission(data: bytes, source_name: str, context: ValidationContext) -> Validated:
    """:func:`validate_variant` with the submitted format and the skipped checks."""
    sha = hashlib.sha256(data).hexdigest()
    problems = _Problems()
    skipped: list[str] = []
    report = {"file": source_name, "sha256": sha, "accepted": False, "schema_version": SCHEMA_VERSION,
              "format": None, "problems": problems.items, "skipped": skipped}
    doc = _load_json(data, context.limits, problems)
    if problems:
        raise VariantRejected(report)
    if not isinstance(doc, dict):
        problems.add(None, None, "schema", f"the file holds a JSON {type(doc).__name__}, not an object",
                     "submit a GeoJSON FeatureCollection of schema 1.0 (or a CityJSON 2.0 file with \"+variant\")")
        raise VariantRejected(report)
    if not _check_untrusted(doc, context.limits, problems):   # bounds exceeded: nothing else is looked at
        raise VariantRejected(report)
    cityjson = doc.get("type") == "CityJSON"
    report["format"] = "cityjson" if cityjson else "geojson"
    _check_references_in_strings(doc, problems)
    if cityjson:
        doc = cityjson_to_variant(doc, context.processing_crs, problems)
    variant = _check_document(doc, context, problems, skipped, cityjson=cityjson)
    if cityjson:
        _rename_for_cityjson(problems.items)
    problems.items.sort(key=lambda p: (p["feature"] is not None, p["feature"] or 0))
    if problems or variant is None:
        if not problems:   # pragma: no cover - a typed variant is always there without problems
            problems.add(None, None, "internal", "the variant could not be read", "report this file to the operators")
        raise VariantRejected(report)
    variant = replace(variant, sha256=sha, source_name=source_name, version=None, document=doc)
    return Validated(variant, report["format"], tuple(skipped))


# ============================================================================ 1. untrusted input
def _load_json(data: bytes, limits: VariantSettings, problems: _Problems):
    n = len(data)
    if n > limits.max_file_bytes:
        sp = size_problem(n, limits)
        problems.add(None, None, "size", sp["problem"], sp["fix"])
        return None
    if n == 0:
        problems.add(None, None, "json", "the file is empty", "submit the variant GeoJSON file")
        return None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        problems.add(None, None, "json", f"the file is not UTF-8 text (byte {exc.start}: {exc.reason})",
                     "save the file as UTF-8 (JSON is UTF-8)")
        return None
    dupes: list[str] = []

    def pairs(items):
        d = {}
        for k, v in items:
            if k in d:
                dupes.append(k)
            d[k] = v
        return d

    def constant(name):
        raise ValueError(f"{name} is not a JSON number")

    try:
        doc = json.loads(text, object_pairs_hook=pairs, parse_constant=constant)
    except json.JSONDecodeError as exc:
        problems.add(None, None, "json", f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
                     "correct the JSON syntax at that position, or export the file again")
        return None
    except ValueError as exc:
        problems.add(None, None, "json", f"not valid JSON: {exc}", "write numbers only (no NaN or Infinity)")
        return None
    except RecursionError:
        problems.add(None, None, "depth", "the JSON is nested too deeply to be read",
                     f"nest arrays and objects at most {limits.max_nesting_depth} levels deep")
        return None
    for k in dict.fromkeys(dupes):
        problems.add(None, None, "json", f"the member {k!r} appears more than once in one object",
                     "give each member of an object once (readers disagree about which one counts)")
    return doc


def _numbers_only(v: list) -> bool:
    return all(type(x) in (int, float) for x in v)


def _check_untrusted(doc: dict, limits: VariantSettings, problems: _Problems) -> bool:
    """Depth, feature and coordinate counts, and forbidden members; iterative (no recursion).
    False where a bound is exceeded (then nothing else is looked at)."""
    depth_max = 0
    stack: list[tuple[Any, tuple, int]] = [(doc, (), 1)]
    while stack:
        obj, path, depth = stack.pop()
        depth_max = max(depth_max, depth)
        if depth > limits.max_nesting_depth:
            problems.add(*_where(list(path)), "depth", f"arrays and objects are nested more than "
                         f"{limits.max_nesting_depth} levels deep", "flatten the structure (the variant schema "
                         "needs no deep nesting)")
            return False
        if isinstance(obj, dict):
            for k, v in obj.items():
                kl = str(k).lower()
                if kl in _FORBIDDEN_KEYS or kl.startswith("@") or "href" in kl:
                    what = "image files" if kl == "textures" else "an external reference"
                    problems.add(*_where([*path, k]), "external_reference",
                                 f"the member {k!r} refers to {what}", _NO_REF_FIX)
                elif _URL_RE.search(str(k)):
                    problems.add(*_where([*path, k]), "external_reference",
                                 f"the member name {str(k)[:80]!r} holds a URL or URI", _NO_REF_FIX)
                if isinstance(v, (dict, list)):
                    stack.append((v, (*path, k), depth + 1))
        elif isinstance(obj, list):
            if _numbers_only(obj):
                continue
            if all(type(x) is list and _numbers_only(x) for x in obj):
                depth_max = max(depth_max, depth + 1)
                continue
            for i, v in enumerate(obj):
                if isinstance(v, (dict, list)):
                    stack.append((v, (*path, i), depth + 1))
    within = True
    feats = doc.get("features")
    if isinstance(feats, list) and len(feats) > limits.max_features:
        within = False
        problems.add(None, "features", "limit", f"the file has {len(feats)} features; at most "
                     f"{limits.max_features} are accepted", "split the variant into several files")
    n = count_vertices(doc)
    if n > limits.max_vertices:
        within = False
        problems.add(None, None, "limit", f"the file has {n:,} coordinates; at most {limits.max_vertices:,} "
                     "are accepted", "simplify the geometry (fewer vertices) or split the variant")
    return within


def count_vertices(doc: dict) -> int:
    """Coordinates of a variant document: positions of its geometries and vertices of its designs
    (or of a CityJSON document itself)."""
    def positions(c) -> int:
        if isinstance(c, list):
            if c and all(type(x) in (int, float) for x in c):
                return 1
            return sum(positions(x) for x in c)
        return 0

    n = 0
    if doc.get("type") == "CityJSON":
        v = doc.get("vertices")
        return len(v) if isinstance(v, list) else 0
    for f in doc.get("features") or []:
        if not isinstance(f, dict):
            continue
        g = f.get("geometry")
        if isinstance(g, dict):
            n += positions(g.get("coordinates"))
        p = f.get("properties")
        if isinstance(p, dict) and isinstance(p.get("design"), dict):
            v = p["design"].get("vertices")
            n += len(v) if isinstance(v, list) else 0
    return n


def _check_references_in_strings(doc: dict, problems: _Problems) -> None:
    """Every string value that holds a URL or URI (except the CRS id of a CityJSON referenceSystem)."""
    stack: list[tuple[Any, tuple]] = [(doc, ())]
    while stack:
        obj, path = stack.pop()
        items = obj.items() if isinstance(obj, dict) else enumerate(obj)
        for k, v in items:
            if isinstance(v, str):
                if k == "referenceSystem" and _OGC_CRS_URL.match(v):
                    continue
                m = _URL_RE.search(v)
                if m:
                    frag = v[max(0, m.start() - 10): m.end() + 30].strip()
                    problems.add(*_where([*path, k]), "external_reference",
                                 f"the text holds a URL or URI ({frag[:80]!r})", _NO_REF_FIX)
            elif isinstance(v, dict) or (isinstance(v, list) and not _numbers_only(v)):
                if isinstance(v, list) and all(type(x) is list and _numbers_only(x) for x in v):
                    continue
                stack.append((v, (*path, k)))


# ============================================================================ CityJSON submission
_VARIANT_META_FIX = ('add a root member "+variant": {"id": "my-variant", "title": "…", "author_role": '
                     '"planning_office" or "citizen", "created": "2026-12-06T10:00:00Z"} (optional: '
                     '"description", "parent")')


def _slug(text: str) -> str:
    s = re.sub(r"[^a-z0-9_-]+", "-", str(text).lower()).strip("-_")[:63]
    return s if len(s) >= 2 else ""


def cityjson_to_variant(city: dict, processing_crs: str, problems: _Problems | None = None) -> dict:
    """A variant document (schema 1.0) from a CityJSON 2.0 file of designed buildings.

    Every top-level ``Building`` becomes an ``add_building`` whose ``design`` is a CityJSON
    document of that building and its parts (same ``version``, ``transform``, ``metadata`` and
    ``geometry-templates``, its own vertices); the feature id is the CityObject id in lower case
    with other characters than ``a-z 0-9 _ -`` replaced by ``-`` (unique). The root member
    ``"+variant"`` is the variant metadata. Problems found on the way (no ``"+variant"``, objects
    that are not buildings) go to ``problems``.
    """
    problems = problems if problems is not None else _Problems()
    meta = city.get("+variant")
    if meta is None:
        problems.add(None, "+variant", "schema", "the CityJSON file has no variant metadata", _VARIANT_META_FIX)
    objs = city.get("CityObjects") if isinstance(city.get("CityObjects"), dict) else {}
    verts = city.get("vertices") if isinstance(city.get("vertices"), list) else []
    features, used = [], set()
    for oid, co in objs.items():
        if not isinstance(co, dict) or co.get("parents"):
            continue
        if co.get("type") != "Building":
            problems.add(None, _field(["CityObjects", oid]), "design",
                         f"the object {oid!r} is a {co.get('type')!r}; only buildings can be submitted",
                         "keep only Building objects (with their BuildingParts) in the file")
            continue
        ids = _family(objs, oid)
        design = {k: city[k] for k in ("type", "version", "transform", "metadata", "geometry-templates")
                  if k in city}
        sub = {i: objs[i] for i in ids}
        design["CityObjects"], design["vertices"] = _reindexed(sub, verts)
        fid = _slug(oid) or f"building-{len(features) + 1}"
        base, n = fid, 2
        while fid in used:
            fid = f"{base[:58]}-{n}"
            n += 1
        used.add(fid)
        features.append({"type": "Feature", "geometry": None,
                         "properties": {"change": "add_building", "id": fid, "design": design}})
    doc = {"type": "FeatureCollection", "schema_version": SCHEMA_VERSION, "crs": processing_crs,
           "features": features}
    if meta is not None:
        doc["variant"] = meta
    if not features:
        problems.add(None, "CityObjects", "design", "the CityJSON file holds no Building",
                     "export the designed buildings as CityJSON Building objects")
    return doc


def _family(objs: dict, oid: str) -> list[str]:
    out, todo = [], [oid]
    while todo:
        i = todo.pop(0)
        if i in out or i not in objs:
            continue
        out.append(i)
        ch = objs[i].get("children") if isinstance(objs[i], dict) else None
        todo.extend(c for c in (ch or []) if isinstance(c, str))
    return out


def _reindexed(objs: dict, verts: list) -> tuple[dict, list]:
    """The objects with their vertices only (indices renumbered); unchanged where an index is not a
    valid vertex (the checks report it)."""
    used: dict[int, int] = {}

    def collect(b) -> bool:
        if isinstance(b, list):
            return all(collect(x) for x in b)
        if type(b) is int and 0 <= b < len(verts):
            used.setdefault(b, len(used))
            return True
        return b is None

    def remap(b):
        return [remap(x) for x in b] if isinstance(b, list) else (None if b is None else used[b])

    geoms = [g for co in objs.values() if isinstance(co, dict) for g in (co.get("geometry") or [])
             if isinstance(g, dict)]
    if not all(collect(g.get("boundaries")) for g in geoms):
        return json.loads(json.dumps(objs)), verts
    out = json.loads(json.dumps(objs))
    for co in out.values():
        for g in co.get("geometry") or []:
            if isinstance(g, dict) and "boundaries" in g:
                g["boundaries"] = remap(g["boundaries"])
    order = sorted(used, key=used.get)
    return out, [verts[i] for i in order]


def _rename_for_cityjson(items: list[dict]) -> None:
    """Fields of a CityJSON submission as they are in the submitted file."""
    for p in list(items):
        f = p.get("field") or ""
        if f == "variant" or f.startswith("variant."):
            p["field"] = "+variant" + f[len("variant"):]
            if p["check"] == "schema" and f == "variant":
                p["problem"], p["fix"] = "the CityJSON file has no variant metadata", _VARIANT_META_FIX
        elif f.startswith("properties.design."):
            p["field"] = f[len("properties.design."):]
        elif f.startswith("properties."):
            p["field"] = f[len("properties."):]
    seen, keep = set(), []
    for p in items:
        key = (p["feature"], p["field"], p["problem"])
        if key not in seen:
            seen.add(key)
            keep.append(p)
    items[:] = keep


# ================================================================================= 3. the schema
@lru_cache(maxsize=1)
def _validator():
    from jsonschema import Draft202012Validator

    schema = json.loads(schema_text())
    Draft202012Validator.check_schema(schema)
    checker = Draft202012Validator.FORMAT_CHECKER
    if "date-time" not in checker.checkers:  # jsonschema checks it only with rfc3339-validator
        raise ImportError("variant validation needs the package rfc3339-validator (a dependency in "
                          "pyproject.toml): run 'make install'")
    return Draft202012Validator(schema, format_checker=checker)


def _defs() -> dict:
    return _validator().schema["$defs"]


def _resolve(schema: Any) -> dict:
    if isinstance(schema, dict) and isinstance(schema.get("$ref"), str) and schema["$ref"].startswith("#/$defs/"):
        return _defs()[schema["$ref"].rsplit("/", 1)[1]]
    return schema if isinstance(schema, dict) else {}


def _declared(schema: dict) -> list[str]:
    """Member names a subschema declares (its ``properties``, through ``allOf`` and ``$ref``)."""
    schema = _resolve(schema)
    names = list(schema.get("properties", {}))
    for sub in schema.get("allOf", []):
        names += [n for n in _declared(sub) if n not in names]
    return names


def _branch_errors(err) -> list | None:
    """Of a failed oneOf/anyOf: the errors of the branch the value was meant for, or None."""
    branches: dict[Any, list] = {}
    for c in err.context:
        branches.setdefault(c.relative_schema_path[0] if c.relative_schema_path else None, []).append(c)
    meant = [errs for errs in branches.values()
             if not any(not list(c.relative_path) and c.validator in ("type", "const", "enum") for c in errs)]
    if not meant:
        return None
    return min(meant, key=len)


def _leaves(err) -> list:
    if err.validator in ("oneOf", "anyOf") and err.context and not _special(err):
        errs = _branch_errors(err)
        if errs is not None:
            return [leaf for c in errs for leaf in _leaves(c)]
    return [err]


def _special(err) -> str | None:
    vv = err.validator_value if isinstance(err.validator_value, list) else []
    req = [b.get("required") for b in vv if isinstance(b, dict)]
    if ["storeys"] in req:
        return "shape"
    if ["road_id"] in req and ["id"] in req:
        return "road"
    return None


def _json_type(v) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "true/false", type(None): "null",
            int: "a number", float: "a number"}.get(type(v), type(v).__name__)


def _short(v) -> str:
    s = json.dumps(v, ensure_ascii=False)
    return s if len(s) <= 60 else s[:57] + "…"


_HEIGHT_FIX = "give the height in metres above ground, above 0 and at most 300 m"


def _schema_problems(doc: dict, problems: _Problems) -> None:
    for err in _validator().iter_errors(doc):
        for e in _leaves(err):
            path = list(e.absolute_path)
            feature, fld = _where(path)
            v, inst, sch = e.validator, e.instance, e.schema if isinstance(e.schema, dict) else {}
            kind = _special(e) if v in ("oneOf", "anyOf") else None
            desc = sch.get("description")
            name = str(path[-1]) if path and not isinstance(path[-1], int) else ""
            sub = path[2:] if feature is not None else path

            def add(problem, fix, f=fld):
                problems.add(feature, f, "schema", problem, fix)

            if kind == "shape":
                add("an add_building has neither storeys nor heights nor a design",
                    "give storeys, or eave_height_m and ridge_height_m, or only eave_height_m with roof_form "
                    "1000 (flat), or a design (CityJSON)")
            elif kind == "road":
                both = isinstance(inst, dict) and "road_id" in inst and "id" in inst
                add("a road_change names both road_id and id" if both else "a road_change names no road",
                    "give road_id (an existing road) to change its traffic, or id (a new road, with a LineString "
                    "geometry), not both")
            elif v == "required":
                for r in e.validator_value:
                    if isinstance(inst, dict) and r not in inst:
                        rs = _resolve(sch.get("properties", {}).get(r, {}))
                        hint = f" ({rs['description']})" if rs.get("description") else \
                            f": {_short(rs['const'])}" if "const" in rs else \
                            " (null where the change needs none)" if r == "geometry" else ""
                        problems.add(feature, _field([*sub, r]), "schema",
                                     f"the member {r!r} is missing", f"add {r!r}{hint}")
            elif v in ("additionalProperties", "unevaluatedProperties"):
                allowed = _declared(sch)
                extra = [k for k in (inst if isinstance(inst, dict) else {}) if k not in allowed]
                if not extra:
                    extra = re.findall(r"'([^']+)'", e.message)[:5]
                for k in extra:
                    problems.add(feature, _field([*sub, k]), "schema",
                                 f"unknown member {k!r}",
                                 f"remove {k!r}" + (f" (allowed here: {', '.join(allowed)})" if allowed else ""))
            elif v == "type":
                add(f"is {_json_type(inst)}, must be {e.validator_value}", f"give {e.validator_value}"
                    + (f": {desc}" if desc else ""))
            elif v == "const":
                add(f"is {_short(inst)}, must be {_short(e.validator_value)}", f"set it to {_short(e.validator_value)}")
            elif v == "enum":
                opts = ", ".join(_short(o) for o in e.validator_value)
                add(f"{_short(inst)} is not allowed here", f"use one of {opts}" + (f" ({desc})" if desc else ""))
            elif v == "pattern":
                add(f"{_short(inst)} has not the required form", desc or f"match the pattern {e.validator_value}")
            elif v in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
                rel = {"minimum": "below the minimum", "exclusiveMinimum": "not above", "maximum": "above the maximum",
                       "exclusiveMaximum": "not below"}[v]
                fix = _HEIGHT_FIX if name.endswith("height_m") and name != "height_m" else \
                    f"give a value {'≥' if v == 'minimum' else '>' if v == 'exclusiveMinimum' else '≤' if v == 'maximum' else '<'} {e.validator_value}"
                add(f"{_short(inst)} is {rel} {e.validator_value}", fix)
            elif v in ("minItems", "maxItems"):
                n = len(inst) if isinstance(inst, list) else 0
                if v == "minItems" and fld and fld.startswith("geometry.coordinates") and fld.count("[") == 1:
                    fix = "a ring needs at least 4 positions: 3 corners and the first repeated at the end"
                elif v == "minItems":
                    fix = f"give at least {e.validator_value}"
                else:
                    fix = f"give at most {e.validator_value} (split or simplify)"
                add(f"has {n} item(s)", fix)
            elif v in ("minLength", "maxLength"):
                add(f"has {len(inst) if isinstance(inst, str) else 0} characters",
                    f"give {'at least' if v == 'minLength' else 'at most'} {e.validator_value} characters")
            elif v == "format":
                add(f"{_short(inst)} is not a valid {e.validator_value}",
                    "give an RFC 3339 date and time with time zone, e.g. 2026-12-06T10:00:00Z"
                    if e.validator_value == "date-time" else f"give a valid {e.validator_value}")
            elif v in ("oneOf", "anyOf"):
                if fld and fld.endswith("geometry"):
                    add(f"{_short(inst)} is not an allowed geometry here",
                        "give a GeoJSON Polygon (buildings), LineString (roads) or Point (trees), or null where the "
                        "change needs none")
                else:
                    add(f"{_short(inst)} is not allowed here", "see the schema variant-1.0.schema.json for this member")
            else:
                add(e.message[:200], "correct the value (see the schema variant-1.0.schema.json)")


# ============================================================================== 4.-8. semantics
def _crs_ok(name: str, processing_crs: str) -> bool:
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    try:
        c = CRS(name)
    except CRSError:
        return False
    return c.equals(CRS("EPSG:4326")) or c.equals(CRS(processing_crs))


def _check_document(doc: dict, ctx: ValidationContext, problems: _Problems, skipped: list[str],
                    cityjson: bool) -> Variant | None:
    """Schema, then geometry, heights, references, designs and overlaps of the schema-valid features."""
    _schema_problems(doc, problems)
    schema_bad = problems.features
    feats = doc.get("features") if isinstance(doc.get("features"), list) else []
    meta = doc.get("variant") if isinstance(doc.get("variant"), dict) else {}
    meta_ok = not any(p["feature"] is None and (p["field"] or "").startswith("variant") for p in problems.items) \
        and bool(meta)
    # --------------------------------------------------------------- metadata: reserved id, parent
    if meta_ok:
        vid = meta["id"]
        if vid in RESERVED_IDS:
            problems.add(None, "variant.id", "reference", f"{vid!r} is a reserved name",
                         f"choose another variant id (not one of {', '.join(sorted(RESERVED_IDS))})")
        parent = meta.get("parent")
        if isinstance(parent, dict):
            pid, pv = parent["id"], parent.get("version")
            if pid not in ctx.variants:
                problems.add(None, "variant.parent.id", "reference", f"there is no accepted variant {pid!r}",
                             "name an accepted variant as parent (citymodel variant list), or set parent to null")
            elif pv is not None and pv not in ctx.variants[pid]:
                problems.add(None, "variant.parent.version", "reference",
                             f"variant {pid!r} has no accepted version {pv} (accepted: "
                             f"{', '.join(map(str, ctx.variants[pid]))})",
                             "name an accepted version, or leave out the version (the newest)")
    crs = doc.get("crs") or DEFAULT_CRS
    crs_ok = not any(p["field"] == "crs" for p in problems.items)
    if crs_ok and not _crs_ok(str(crs), ctx.processing_crs):
        crs_ok = False
        problems.add(None, "crs", "geometry", f"the coordinates are in {crs}, which is neither EPSG:4326 nor the "
                     f"processing CRS {ctx.processing_crs}",
                     f"give WGS84 longitude/latitude (leave out \"crs\") or coordinates in {ctx.processing_crs} "
                     f"with \"crs\": \"{ctx.processing_crs}\"")
    ok = [i for i, f in enumerate(feats) if i not in schema_bad and isinstance(f, dict)]
    _check_heights(feats, ok, ctx, problems)
    _check_ids(feats, ok, ctx, problems)
    is_wgs84 = crs_ok and _is_wgs84(str(crs))
    geom_ok = []
    for i in ok:
        good = _check_raw_geometry(i, feats[i], is_wgs84, problems)
        design = feats[i]["properties"].get("design")
        if design is not None:
            good &= _check_design(i, design, ctx, problems, skipped)
        if good:
            geom_ok.append(i)
    if not crs_ok:
        return None
    sub = dict(doc, features=[feats[i] for i in geom_ok])
    if not meta_ok:
        sub["variant"] = {"id": "xx", "title": "x", "author_role": "citizen", "created": "2000-01-01T00:00:00Z"}
    try:
        parsed = parse_variant(sub, ctx.processing_crs)
    except (CityModelError, ValueError, TypeError, KeyError, IndexError) as exc:
        problems.add(None, None, "geometry", f"the geometry cannot be read ({exc})",
                     "check the coordinates and designs of the features")
        return None
    changes = [replace(c, index=geom_ok[c.index]) for c in parsed.changes]
    _check_geometry(changes, feats, ctx, problems)
    _check_overlaps(changes, ctx, problems)
    return replace(parsed, changes=tuple(changes))


def _is_wgs84(name: str) -> bool:
    from pyproj import CRS

    return CRS(name).equals(CRS("EPSG:4326"))


# ---------------------------------------------------------------------------------- heights
def _check_heights(feats: list, ok: list[int], ctx: ValidationContext, problems: _Problems) -> None:
    lim = ctx.limits
    for i in ok:
        p = feats[i]["properties"]
        kind = p["change"]
        if kind not in ("add_building", "modify_building"):
            continue
        eave, ridge, storeys = p.get("eave_height_m"), p.get("ridge_height_m"), p.get("storeys")
        given_form = p.get("roof_form")
        if kind == "modify_building":
            if not any(k in p for k in ("storeys", "eave_height_m", "ridge_height_m", "roof_form",
                                        "ridge_direction_deg", "function_code", "name")) \
                    and feats[i].get("geometry") is None:
                problems.add(i, "properties", "schema", "the modify_building changes nothing",
                             "give at least one new value (storeys, eave_height_m, ridge_height_m, roof_form, "
                             "ridge_direction_deg, function_code) or a new footprint")
            cur_e, cur_r = ctx.building_heights.get(str(p["building_id"]), (None, None))
            if (eave is not None) != (ridge is not None):   # one new height: check it against the current other
                eave_c = eave if eave is not None else cur_e
                ridge_c = ridge if ridge is not None else cur_r
                if eave_c is not None and ridge_c is not None and eave_c > ridge_c + HEIGHT_TOLERANCE_M:
                    which = "eave_height_m" if eave is not None else "ridge_height_m"
                    problems.add(i, f"properties.{which}", "height",
                                 f"the eave ({eave_c:g} m) would be above the ridge ({ridge_c:g} m) of the building",
                                 "give both eave_height_m and ridge_height_m, the eave not above the ridge")
        form = int(given_form) if given_form is not None else (FLAT if kind == "add_building" else None)
        if eave is not None and ridge is not None:
            if eave > ridge + HEIGHT_TOLERANCE_M:
                problems.add(i, "properties.eave_height_m", "height",
                             f"the eave height {eave:g} m is above the ridge height {ridge:g} m",
                             "the eave (where the roof starts) must not be above the ridge (the top): correct or "
                             "swap the two heights")
            elif form == FLAT and abs(eave - ridge) > HEIGHT_TOLERANCE_M:
                problems.add(i, "properties.ridge_height_m", "height",
                             f"a flat roof (1000) has one height, but eave ({eave:g} m) and ridge ({ridge:g} m) differ",
                             "give eave_height_m equal to ridge_height_m (or only eave_height_m), or choose a "
                             "pitched roof_form")
            elif form is not None and form != FLAT and ridge - eave < HEIGHT_TOLERANCE_M and "design" not in p:
                problems.add(i, "properties.ridge_height_m", "height",
                             f"a pitched roof ({form}) needs its ridge above its eave (both {eave:g} m)",
                             "give a ridge_height_m above eave_height_m, or roof_form 1000 (flat)")
        if storeys is not None:
            ref = eave if eave is not None else (ridge if form == FLAT else None)
            if ref is not None:
                lo, hi = storeys * lim.storey_height_min_m, storeys * lim.storey_height_max_m
                if not (lo - HEIGHT_TOLERANCE_M <= ref <= hi + HEIGHT_TOLERANCE_M):
                    which = "eave" if eave is not None else "ridge (flat roof)"
                    problems.add(i, "properties.storeys", "height",
                                 f"{storeys} storey(s) do not fit a {which} height of {ref:g} m (expected "
                                 f"{lo:g}–{hi:g} m: {lim.storey_height_min_m:g}–{lim.storey_height_max_m:g} m per storey)",
                                 "correct storeys or the eave height (or give only one of them)")


# -------------------------------------------------------------------------------- references
def _check_ids(feats: list, ok: list[int], ctx: ValidationContext, problems: _Problems) -> None:
    buildings = ctx.building_footprints
    removed: dict[str, int] = {}
    modified: dict[str, int] = {}
    roads: dict[str, int] = {}
    trees_removed: dict[str, int] = {}
    new_b: dict[str, int] = {}
    new_r: dict[str, int] = {}
    new_t: dict[str, int] = {}
    unknown_b = ("use the building_id of a building of the current city model (data/buildings.csv of the "
                 "release, or pick it in the viewer)")
    for i in ok:
        p = feats[i]["properties"]
        kind = p["change"]
        if kind in ("remove_building", "modify_building"):
            bid = str(p["building_id"])
            fld = "properties.building_id"
            if bid not in buildings:
                problems.add(i, fld, "reference", f"there is no building {bid!r} in the current city", unknown_b)
            mine, other = (removed, modified) if kind == "remove_building" else (modified, removed)
            verb = "removed" if kind == "remove_building" else "modified"
            if bid in mine:
                problems.add(i, fld, "reference", f"building {bid!r} is {verb} twice (also feature {mine[bid]})",
                             f"{'remove' if verb == 'removed' else 'modify'} each building once (merge the changes "
                             "into one feature)")
            elif bid in other:
                problems.add(i, fld, "reference", f"building {bid!r} is both modified and removed (feature "
                             f"{other[bid]})", "either remove the building or modify it, not both")
            else:
                mine[bid] = i
        elif kind == "add_building":
            _new_id(i, str(p["id"]), new_b, buildings, "building", problems)
        elif kind == "road_change":
            if p.get("road_id") is not None:
                rid = str(p["road_id"])
                if rid not in ctx.road_ids:
                    problems.add(i, "properties.road_id", "reference", f"there is no road {rid!r} in the city's roads",
                                 "use the road_id of a road of the city's traffic data, or give a new road as "
                                 "id with a LineString geometry")
                if rid in roads:
                    problems.add(i, "properties.road_id", "reference",
                                 f"road {rid!r} is changed twice (also feature {roads[rid]})",
                                 "change each road once (merge the changes into one feature)")
                roads.setdefault(rid, i)
                # a new name alone changes no analysis
                if not any(k in p for k in ROAD_CHANGE_KEYS if k != "name") and feats[i].get("geometry") is None:
                    problems.add(i, "properties", "schema", "the road_change changes nothing",
                                 "give a new traffic value (factor, dtv, m_day, m_night, shares, speeds, surface) "
                                 "or a new course (LineString)")
            else:
                _new_id(i, str(p["id"]), new_r, ctx.road_ids, "road", problems)
                if feats[i].get("geometry") is None:
                    problems.add(i, "geometry", "geometry", "a new road needs its course",
                                 "give a LineString geometry for the new road")
                if "factor" in p:
                    problems.add(i, "properties.factor", "schema", "a new road has no traffic to multiply",
                                 "give its traffic as dtv (or m_day and m_night) instead of factor")
                if "dtv" not in p and not ("m_day" in p and "m_night" in p):
                    problems.add(i, "properties.dtv", "schema", "a new road needs its traffic",
                                 "give dtv (vehicles per day), or m_day and m_night (vehicles per hour)")
        elif kind == "add_tree":
            if p.get("id") is not None:
                _new_id(i, str(p["id"]), new_t, ctx.tree_ids, "tree", problems)
        elif kind == "remove_tree":
            tid = str(p["tree_id"])
            if tid not in ctx.tree_ids:
                problems.add(i, "properties.tree_id", "reference", f"there is no tree {tid!r} in the tree cadastre",
                             "use the tree_id of a tree of the city's tree cadastre")
            if tid in trees_removed:
                problems.add(i, "properties.tree_id", "reference",
                             f"tree {tid!r} is removed twice (also feature {trees_removed[tid]})",
                             "remove each tree once")
            trees_removed.setdefault(tid, i)


def _new_id(i: int, nid: str, seen: dict, existing, what: str, problems: _Problems) -> None:
    if nid in seen:
        problems.add(i, "properties.id", "reference", f"the id {nid!r} is used twice in the file (also feature "
                     f"{seen[nid]})", f"give each new {what} its own id")
    elif nid in existing:
        problems.add(i, "properties.id", "reference", f"the id {nid!r} is already the id of a {what} of the city",
                     f"give the new {what} an id no existing {what} has")
    seen.setdefault(nid, i)


# ---------------------------------------------------------------------------------- geometry
def _check_raw_geometry(i: int, f: dict, is_wgs84: bool, problems: _Problems) -> bool:
    """Closed rings and longitude/latitude ranges, on the coordinates as written."""
    g = f.get("geometry")
    if not isinstance(g, dict):
        return True
    good = True
    coords = g.get("coordinates")
    if g.get("type") == "Polygon":
        for k, ring in enumerate(coords):
            if ring[0][:2] != ring[-1][:2]:
                problems.add(i, f"geometry.coordinates[{k}]", "geometry", f"ring {k} is not closed (it ends at "
                             f"{_short(ring[-1])}, not at its first position {_short(ring[0])})",
                             "repeat the first position at the end of the ring (RFC 7946)")
                good = False
        pts = [pt for ring in coords for pt in ring]
    elif g.get("type") == "LineString":
        pts = coords
    else:
        pts = [coords]
    if is_wgs84:
        bad = [pt for pt in pts if not (-180.0 <= pt[0] <= 180.0 and -90.0 <= pt[1] <= 90.0)]
        if bad:
            problems.add(i, "geometry.coordinates", "geometry",
                         f"{_short(bad[0][:2])} is not a longitude/latitude (the file has no \"crs\", so WGS84 "
                         "lon/lat is expected)",
                         "give WGS84 longitude, latitude (RFC 7946), or add \"crs\" naming the processing CRS when "
                         "the coordinates are projected")
            good = False
    return good


def _check_geometry(changes: list, feats: list, ctx: ValidationContext, problems: _Problems) -> None:
    import shapely
    from shapely.geometry import box
    from shapely.validation import explain_validity

    ext = box(*ctx.extent)
    ext_txt = f"[{', '.join(f'{v:.1f}' for v in ctx.extent)}] ({ctx.processing_crs})"
    outside_fix = ("place it inside the city's extent (check the coordinates: without \"crs\" they are WGS84 "
                   "longitude, latitude in this order)")
    for c in changes:
        geom, what, fld = None, "", "geometry"
        if isinstance(c, (AddBuilding, ModifyBuilding)):
            geom, what = c.footprint, "footprint"
            if geom is None:
                if isinstance(c, AddBuilding):
                    problems.add(c.index, "geometry", "geometry", "the new building has no footprint",
                                 "give a Polygon geometry, or a design (CityJSON) with the building's solid")
                continue
            if feats[c.index].get("geometry") is None:   # the footprint of a design
                fld, what = "properties.design", "footprint of the design"
            if not geom.is_valid:
                problems.add(c.index, fld, "geometry", f"the {what} is not a valid polygon: {explain_validity(geom)}",
                             "draw the outline without crossing or touching edges and without spikes (one "
                             "closed ring, holes inside it)")
                continue
            if geom.area < ctx.limits.min_footprint_area_m2:
                problems.add(c.index, fld, "geometry", f"the {what} has {geom.area:.1f} m²; at least "
                             f"{ctx.limits.min_footprint_area_m2:g} m² are required",
                             "draw the whole building (check the units and the CRS of the coordinates)")
        elif isinstance(c, RoadChange):
            geom, what = c.geometry, "road"
            if geom is None:
                continue
            if geom.length < 1.0 or not geom.is_valid:
                problems.add(c.index, fld, "geometry", f"the road line is degenerate ({geom.length:.2f} m long)",
                             "give a LineString of at least two different positions")
                continue
        elif isinstance(c, AddTree):
            geom, what = c.point, "tree"
        if geom is None:
            continue
        if not np.isfinite(shapely.get_coordinates(geom)).all():
            problems.add(c.index, fld, "geometry", f"the {what}'s coordinates cannot be transformed to "
                         f"{ctx.processing_crs}", outside_fix)
        elif not ext.covers(geom):
            b = ", ".join(f"{v:.1f}" for v in geom.bounds)
            problems.add(c.index, fld, "extent", f"the {what} (bounds {b}) lies outside the deployment's extent "
                         f"{ext_txt}", outside_fix)


def _check_overlaps(changes: list, ctx: ValidationContext, problems: _Problems) -> None:
    from shapely import STRtree

    tol = ctx.limits.overlap_tolerance_m2
    removed = {c.building_id for c in changes if type(c).__name__ == "RemoveBuilding"}
    modified_new = {c.building_id: c for c in changes if isinstance(c, ModifyBuilding) and c.footprint is not None}
    new = [(c.index, c.id if isinstance(c, AddBuilding) else c.building_id, c.footprint,
            "new" if isinstance(c, AddBuilding) else "modified")
           for c in changes if isinstance(c, (AddBuilding, ModifyBuilding)) and c.footprint is not None
           and c.footprint.is_valid]
    if not new:
        return
    kept_ids = [b for b in ctx.building_footprints if b not in removed and b not in modified_new]
    kept = [ctx.building_footprints[b] for b in kept_ids]
    fix_kept = ("move or shrink the building so that it does not overlap {0}, or remove {0} in the same variant "
                "(remove_building)")
    if kept:
        tree = STRtree(kept)
        for idx, nid, g, what in new:
            for j in tree.query(g, predicate="intersects"):
                other = kept[int(j)]
                if other is None or other.is_empty:
                    continue
                try:
                    a = g.intersection(other).area
                except Exception:  # noqa: BLE001 - an invalid city footprint: fall back to a buffered copy
                    a = g.intersection(other.buffer(0)).area
                if a > tol:
                    problems.add(idx, "geometry", "overlap", f"the {what} footprint of {nid!r} overlaps the existing "
                                 f"building {kept_ids[int(j)]!r} by {a:.1f} m²",
                                 fix_kept.format(repr(kept_ids[int(j)])))
    tree = STRtree([g for _, _, g, _ in new])
    for k, (idx, nid, g, what) in enumerate(new):
        for j in sorted(int(j) for j in tree.query(g, predicate="intersects")):
            if j >= k:
                continue
            oidx, oid, og, _ = new[j]
            a = g.intersection(og).area
            if a > tol:
                problems.add(idx, "geometry", "overlap", f"the {what} footprint of {nid!r} overlaps the footprint of "
                             f"{oid!r} (feature {oidx}) by {a:.1f} m²",
                             "move or shrink one of the two buildings so that they do not overlap")


# ------------------------------------------------------------------------------------ designs
def _design_crs_ok(design: dict, processing_crs: str) -> tuple[bool, str]:
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    rs = (design.get("metadata") or {}).get("referenceSystem") if isinstance(design.get("metadata"), dict) else None
    if not rs:
        return False, "the design names no CRS (metadata.referenceSystem)"
    m = _OGC_CRS_URL.match(str(rs)) or re.match(r"^(?:EPSG:|urn:ogc:def:crs:EPSG::?)(\d{4,6})$", str(rs))
    if not m:
        return False, f"the design's CRS {rs!r} is not an EPSG CRS"
    try:
        c = CRS.from_epsg(int(m.group(1)))
    except CRSError:
        return False, f"the design's CRS EPSG:{m.group(1)} is unknown"
    target = CRS(processing_crs)
    parts = [c, *c.sub_crs_list]
    if any(p.equals(target) for p in parts):
        return True, ""
    return False, f"the design is in EPSG:{m.group(1)}, not in the processing CRS {processing_crs}"


def _check_design(i: int, design: dict, ctx: ValidationContext, problems: _Problems, skipped: list[str]) -> bool:
    """Official schema, CRS, objects, solids (val3dity rules), templates and height of one design."""
    from ..validate3d import ERROR_NAMES, validate_indexed

    before = len(problems.items)
    pre = "properties.design"
    # ---------------------------------------------------------------- the official CityJSON schema
    sdir = ctx.cityjson_schema_dir
    if sdir is not None and (Path(sdir) / "cityjson.schema.json").is_file():
        from ..cityjson_schema import validate_cityjson_schema

        for msg in validate_cityjson_schema(design, sdir)[:50]:
            loc, _, text = msg.partition(": ")
            fld = pre if loc == "(root)" else f"{pre}.{loc.replace('/', '.')}"
            problems.add(i, fld, "design", f"not valid CityJSON 2.0: {text}",
                         "correct the CityJSON (official CityJSON 2.0.2 schema) or export it again from the CAD tool")
        schema_ok = len(problems.items) == before
    else:
        note = (f"CityJSON 2.0.2 schema validation of designs: schemas not found at {sdir}" if sdir is not None else
                "CityJSON 2.0.2 schema validation of designs: no schema folder configured (quality.schema_dir)")
        if note not in skipped:
            skipped.append(note)
        schema_ok = True
    # ------------------------------------------------------------------------------------- CRS
    ok, why = _design_crs_ok(design, ctx.processing_crs)
    if not ok:
        code = ctx.processing_crs.split(":")[-1]
        problems.add(i, f"{pre}.metadata.referenceSystem", "design", why,
                     f"export the design in {ctx.processing_crs} and set metadata.referenceSystem to "
                     f"\"https://www.opengis.net/def/crs/EPSG/0/{code}\"")
    # ---------------------------------------------------------- template references (always checked)
    objs = design.get("CityObjects") if isinstance(design.get("CityObjects"), dict) else {}
    templates = design.get("geometry-templates", {}).get("templates", []) \
        if isinstance(design.get("geometry-templates"), dict) else []
    for oid, co in objs.items():
        for g, geom in enumerate((co.get("geometry") or []) if isinstance(co, dict) else []):
            if isinstance(geom, dict) and geom.get("type") == "GeometryInstance":
                t = geom.get("template")
                if not (isinstance(t, int) and 0 <= t < len(templates)):
                    problems.add(i, f"{pre}.CityObjects.{oid}.geometry[{g}].template", "external_reference",
                                 f"the geometry refers to template {t!r}, which the file does not hold",
                                 "reference only templates in the file's \"geometry-templates\", or give the "
                                 "geometry itself")
    if not schema_ok:
        return False
    # ------------------------------------------------------------------------ objects and solids
    try:
        verts = np.asarray(design.get("vertices", []), dtype=float).reshape(-1, 3)
        tr = design.get("transform")
        if isinstance(tr, dict):
            verts = verts * np.asarray(tr["scale"], dtype=float) + np.asarray(tr["translate"], dtype=float)
    except (ValueError, TypeError, KeyError) as exc:
        problems.add(i, f"{pre}.vertices", "design", f"the vertices cannot be read ({exc})",
                     "give vertices as [x, y, z] integers with a transform (CityJSON 2.0)")
        return False
    n_solids, zs = 0, []
    for oid, co in objs.items():
        if not isinstance(co, dict):
            continue
        if co.get("type") not in ("Building", "BuildingPart"):
            problems.add(i, f"{pre}.CityObjects.{oid}", "design", f"the object {oid!r} is a {co.get('type')!r}",
                         "keep only Building and BuildingPart objects in a design")
            continue
        for g, geom in enumerate(co.get("geometry") or []):
            fld = f"{pre}.CityObjects.{oid}.geometry[{g}]"
            gt = geom.get("type") if isinstance(geom, dict) else None
            if gt == "GeometryInstance":
                if isinstance(geom.get("template"), int) and 0 <= geom["template"] < len(templates):
                    problems.add(i, fld, "design", "a template instance is not a solid of its own",
                                 "export the building as a Solid (the analysis needs closed volumes)")
                continue
            if gt == "Solid":
                solids = [geom.get("boundaries")]
            elif gt in ("MultiSolid", "CompositeSolid"):
                solids = list(geom.get("boundaries") or [])
            else:
                problems.add(i, fld, "design", f"a {gt} is not a solid",
                             "export the building as a closed Solid (the analysis needs closed volumes)")
                continue
            for s, shells in enumerate(solids):
                n_solids += 1
                try:
                    rep = validate_indexed(verts, shells, feature=oid, check_unused_vertices=False)
                except CityModelError as exc:
                    problems.add(i, fld, "design", f"the solid cannot be read: {exc}",
                                 "fix the boundaries' vertex indices (export the file again)")
                    continue
                except (ValueError, TypeError, IndexError) as exc:
                    problems.add(i, fld, "design", f"the solid cannot be read ({exc})",
                                 "fix the boundaries (export the file again)")
                    continue
                idx = [k for sh in shells for poly in sh for ring in poly for k in ring]
                zs.extend(verts[np.asarray(idx, dtype=np.int64), 2].tolist() if idx else [])
                if not rep.valid:
                    found = []
                    for code in rep.codes:
                        srf = sorted({e.surface for e in rep.errors if e.code == code and e.surface is not None})
                        found.append(f"{code} {ERROR_NAMES.get(code, '')}" + (
                            f" (surface{'s' if len(srf) > 1 else ''} {', '.join(map(str, srf[:8]))}"
                            f"{', …' if len(srf) > 8 else ''})" if srf else ""))
                    problems.add(i, fld + (f"[{s}]" if gt != "Solid" else ""), "design",
                                 f"the solid of {oid!r} is invalid (val3dity: {'; '.join(found)})",
                                 "repair the solid in the CAD tool: one closed, watertight shell without "
                                 "self-intersections, planar faces, faces oriented outwards (the codes are "
                                 "val3dity's)",
                                 codes=rep.codes)
    if not objs or not any(isinstance(co, dict) and co.get("type") == "Building" for co in objs.values()):
        problems.add(i, f"{pre}.CityObjects", "design", "the design holds no Building",
                     "give the designed building as a CityJSON Building with a Solid geometry")
    elif n_solids == 0 and len(problems.items) == before:
        problems.add(i, f"{pre}.CityObjects", "design", "the design's buildings have no Solid geometry",
                     "export the building as a closed Solid")
    if zs:
        h = max(zs) - min(zs)
        if not (0 < h <= MAX_HEIGHT_M):
            problems.add(i, f"{pre}.vertices", "height", f"the designed building is {h:.1f} m high",
                         "give a building higher than 0 and at most 300 m (check the units: metres)")
    return len(problems.items) == before
