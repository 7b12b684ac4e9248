"""CityGML 2.0 (AdV profile) reading and writing with lxml.

Germany's official LoD2 building models are CityGML 2.0 tiles in the profile of the AdV (the
surveying authorities' working committee), e.g. Thuringia's ``LoD2_32_{E}_{N}_2_TH.zip``. This
module

- **writes** buildings (:class:`citymodel.geometry3d.Solid` with semantic surfaces) as such tiles,
  streaming with :class:`lxml.etree.xmlfile` so that memory does not grow with the number of
  buildings (:func:`write_citygml`, :func:`write_citygml_zip`);
- **reads** them (plain ``.gml`` or zips holding them) with :func:`lxml.etree.iterparse`, one
  ``bldg:Building`` at a time (:func:`iter_citygml`, :func:`read_citygml`), and turns the result into
  a GeoDataFrame of footprints with the 3D surfaces as a compact JSON column
  (:func:`citygml_to_frame`, :func:`solids_from_json`);
- **checks** files: against the official XML schemas bundled in ``citymodel/schemas/citygml``
  (:func:`validate_citygml_xsd`) and against the structural rules of the AdV profile that an XML
  schema cannot express (:func:`check_citygml_structure`: xlinks resolve, rings closed, ids unique).

Element order inside ``bldg:Building`` follows the CityGML 2.0 schema (``building.xsd``):
``gml:name, gml:boundedBy, core:creationDate, core:externalReference, gen:*Attribute,
bldg:function, bldg:roofType, bldg:measuredHeight, bldg:storeysAboveGround, bldg:lod1Solid,
bldg:lod2Solid, bldg:boundedBy, bldg:consistsOfBuildingPart, bldg:address``.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import IO, Any, Iterable, Iterator

import numpy as np
from lxml import etree

from citymodel.errors import CRSError, GeometryError, SourceDataError, dataset_error
from citymodel.geometry3d import Solid, Surface

# --------------------------------------------------------------------------------------------
# namespaces
# --------------------------------------------------------------------------------------------
CORE_NS = "http://www.opengis.net/citygml/2.0"
BLDG_NS = "http://www.opengis.net/citygml/building/2.0"
GEN_NS = "http://www.opengis.net/citygml/generics/2.0"
GML_NS = "http://www.opengis.net/gml"
XLINK_NS = "http://www.w3.org/1999/xlink"
XAL_NS = "urn:oasis:names:tc:ciq:xsdschema:xAL:2.0"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"

# CityGML 1.0 differs in the namespace version only for what this module reads.
_CORE_NS_BY_VERSION = {"2.0": CORE_NS, "1.0": "http://www.opengis.net/citygml/1.0"}
_BLDG_NS_BY_VERSION = {"2.0": BLDG_NS, "1.0": "http://www.opengis.net/citygml/building/1.0"}
_GEN_NS_BY_VERSION = {"2.0": GEN_NS, "1.0": "http://www.opengis.net/citygml/generics/1.0"}
_VERSION_BY_BLDG_NS = {v: k for k, v in _BLDG_NS_BY_VERSION.items()}

NSMAP = {"core": CORE_NS, "bldg": BLDG_NS, "gen": GEN_NS, "gml": GML_NS, "xlink": XLINK_NS,
         "xAL": XAL_NS, "xsi": XSI_NS}

SCHEMA_LOCATION = (
    f"{CORE_NS} http://schemas.opengis.net/citygml/2.0/cityGMLBase.xsd "
    f"{BLDG_NS} http://schemas.opengis.net/citygml/building/2.0/building.xsd "
    f"{GEN_NS} http://schemas.opengis.net/citygml/generics/2.0/generics.xsd")

#: ``core:externalReference/core:informationSystem`` of AdV tiles: the object is an ALKIS building.
ADV_ALKIS_INFORMATION_SYSTEM = "http://repository.gdi-de.org/schemas/adv/citygml/fdv/art.htm#_9100"
#: unit of ``bldg:measuredHeight`` in AdV tiles.
ADV_UOM_M = "urn:adv:uom:m"

_GML_ID = f"{{{GML_NS}}}id"
_XLINK_HREF = f"{{{XLINK_NS}}}href"

def _default_schema_dir() -> Path:
    """The official CityGML 2.0 / GML 3.1.1 / xAL XSDs, unmodified, from the PyPI package
    ``citysmith`` (a dependency), laid out by their original URLs so imports resolve offline."""
    try:
        import citysmith
    except ImportError:  # pragma: no cover - citysmith is a declared dependency
        return Path(__file__).resolve().parent / "schemas" / "citygml"
    return Path(citysmith.__file__).resolve().parent / "data" / "schemas"


SCHEMA_DIR = _default_schema_dir()

_SEMANTIC_KINDS = ("RoofSurface", "WallSurface", "GroundSurface", "ClosureSurface",
                   "OuterCeilingSurface", "OuterFloorSurface")
_CANONICAL_KINDS = ("RoofSurface", "WallSurface", "GroundSurface", "ClosureSurface")

# --------------------------------------------------------------------------------------------
# CRS names
# --------------------------------------------------------------------------------------------
# AdV CRS names (the "AdV-CRS-Register") of the systems German state tiles use.
_ADV_HORIZONTAL = {
    "ETRS89_UTM31": 25831, "ETRS89_UTM32": 25832, "ETRS89_UTM33": 25833,
    "DE_DHDN_3GK2": 31466, "DE_DHDN_3GK3": 31467, "DE_DHDN_3GK4": 31468, "DE_DHDN_3GK5": 31469,
}
_ADV_VERTICAL = {"DE_DHHN2016_NH": 7837, "DE_DHHN92_NH": 5783}
_ADV_HORIZONTAL_NAME = {v: k for k, v in _ADV_HORIZONTAL.items()}
_ADV_VERTICAL_NAME = {v: k for k, v in _ADV_VERTICAL.items()}

DEFAULT_CONFIG_KEY = "sources.lod2_reference.crs"


@dataclass(frozen=True)
class CityGMLCRS:
    """The CRS a ``srsName`` stands for."""

    horizontal: str              #: e.g. ``"EPSG:25832"``
    vertical: str | None         #: e.g. ``"EPSG:7837"`` (DHHN2016), None where the name has none
    srs_name: str                #: the name as written in the file (or the override)


def _epsg_int(crs: str | int) -> int:
    """``"EPSG:25832"`` / ``25832`` / ``"urn:ogc:def:crs:EPSG::25832"`` -> 25832."""
    if isinstance(crs, (int, np.integer)):
        return int(crs)
    m = re.search(r"(\d+)\s*$", str(crs))
    if not m or "EPSG" not in str(crs).upper():
        raise CRSError(f"CRS '{crs}' is not an EPSG code. Fix: give the CRS as 'EPSG:<code>'")
    return int(m.group(1))


@lru_cache(maxsize=256)
def _classify_epsg(code: int) -> tuple[list[int], list[int]]:
    """Split an EPSG code into (horizontal codes, vertical codes) with pyproj; compound -> both."""
    import pyproj

    crs = pyproj.CRS.from_epsg(code)
    subs = crs.sub_crs_list if crs.is_compound else [crs]
    hor: list[int] = []
    ver: list[int] = []
    for sub in subs:
        auth = sub.to_epsg()
        if auth is None:
            continue
        (ver if sub.is_vertical else hor).append(auth)
    return hor, ver


@lru_cache(maxsize=256)
def parse_srs_name(srs_name: str) -> CityGMLCRS | None:
    """Resolve a GML ``srsName`` to EPSG codes; None where the name is not understood.

    Understood: EPSG URNs and URLs (``urn:ogc:def:crs:EPSG::25833``,
    ``urn:ogc:def:crs:EPSG:6.12:25832``, ``http://www.opengis.net/def/crs/EPSG/0/25832``,
    ``EPSG:25832``), OGC compound URNs (``urn:ogc:def:crs,crs:EPSG::25832,crs:EPSG::7837``), EPSG
    compound codes (5555 -> 25832 + 5783) and AdV names (``urn:adv:crs:ETRS89_UTM32*DE_DHHN2016_NH``,
    with or without a ``*GCG2016`` geoid suffix).
    """
    name = srs_name.strip()
    if name.lower().startswith("urn:adv:crs:"):
        parts = name[len("urn:adv:crs:"):].split("*")
        hor = _ADV_HORIZONTAL.get(parts[0])
        if hor is None:
            return None
        ver = None
        if len(parts) > 1:
            ver = _ADV_VERTICAL.get(parts[1])
            if ver is None:
                return None
        return CityGMLCRS(f"EPSG:{hor}", f"EPSG:{ver}" if ver else None, srs_name)
    codes = [int(c) for c in re.findall(
        r"EPSG(?:::|:[\d.]*:|/[\d.]+/|:)(\d+)", name, flags=re.IGNORECASE)]
    if not codes:
        return None
    hors: list[int] = []
    vers: list[int] = []
    for code in codes:
        try:
            h, v = _classify_epsg(code)
        except Exception:  # pyproj.exceptions.CRSError: an EPSG code PROJ does not know
            return None
        hors += h
        vers += v
    if len(hors) != 1 or len(vers) > 1:
        return None
    return CityGMLCRS(f"EPSG:{hors[0]}", f"EPSG:{vers[0]}" if vers else None, srs_name)


def srs_name_for(crs: str | int, vertical_crs: str | int | None) -> str:
    """The ``srsName`` the writer uses for a horizontal + vertical CRS.

    The AdV name (``urn:adv:crs:ETRS89_UTM32*DE_DHHN2016_NH``) where both parts have one: that is
    what the states' own LoD2 tiles carry, so a consumer who reads the official tiles reads ours
    the same way (the Berlin export's ``urn:ogc:def:crs:EPSG::25833`` names the horizontal system
    only and loses the height datum). Otherwise the EPSG compound code where EPSG has one
    (``urn:ogc:def:crs:EPSG::5555``), else the OGC compound URN, else the plain EPSG URN.
    """
    hor = _epsg_int(crs)
    if vertical_crs is None:
        return f"urn:ogc:def:crs:EPSG::{hor}"
    ver = _epsg_int(vertical_crs)
    if hor in _ADV_HORIZONTAL_NAME and ver in _ADV_VERTICAL_NAME:
        return f"urn:adv:crs:{_ADV_HORIZONTAL_NAME[hor]}*{_ADV_VERTICAL_NAME[ver]}"
    compound = _compound_epsg(hor, ver)
    if compound is not None:
        return f"urn:ogc:def:crs:EPSG::{compound}"
    return f"urn:ogc:def:crs,crs:EPSG::{hor},crs:EPSG::{ver}"


@lru_cache(maxsize=64)
def _compound_epsg(hor: int, ver: int) -> int | None:
    from pyproj.database import query_crs_info
    import pyproj

    for info in query_crs_info(auth_name="EPSG", pj_types=["COMPOUND_CRS"]):
        try:
            subs = pyproj.CRS.from_epsg(int(info.code)).sub_crs_list
        except Exception:
            continue
        if [s.to_epsg() for s in subs] == [hor, ver]:
            return int(info.code)
    return None


# --------------------------------------------------------------------------------------------
# writer
# --------------------------------------------------------------------------------------------
_NCNAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
# width reserved for the CityModel envelope corners, which are known only at the end
_CORNER_WIDTH = 96


_INDENT = ["\n" + "  " * i for i in range(64)]


class _Out:
    """Indenting wrapper around :class:`lxml.etree.xmlfile` (which does not indent nested contexts).

    Plain ``__enter__``/``__exit__`` objects rather than ``contextlib``: the writer opens ~200
    elements per building and the generator-based context manager tripled the time per element.
    """

    __slots__ = ("xf", "depth", "_children")

    def __init__(self, xf: Any) -> None:
        self.xf = xf
        self.depth = 0
        self._children: list[bool] = []

    def el(self, tag: str, attrib: dict[str, str] | None = None, nsmap: dict | None = None) -> "_El":
        return _El(self, tag, attrib, nsmap)

    def leaf(self, tag: str, text: str, attrib: dict[str, str] | None = None) -> None:
        if self._children:
            self._children[-1] = True
        self.xf.write(_INDENT[self.depth])
        with self.xf.element(tag, attrib or {}):
            if text:
                self.xf.write(text)


class _El:
    __slots__ = ("out", "tag", "attrib", "nsmap", "cm")

    def __init__(self, out: _Out, tag: str, attrib: dict | None, nsmap: dict | None) -> None:
        self.out, self.tag, self.attrib, self.nsmap = out, tag, attrib or {}, nsmap

    def __enter__(self) -> None:
        out = self.out
        if out._children:
            out._children[-1] = True
        if out.depth:
            out.xf.write(_INDENT[out.depth])
        out.depth += 1
        out._children.append(False)
        self.cm = out.xf.element(self.tag, self.attrib, nsmap=self.nsmap)
        self.cm.__enter__()

    def __exit__(self, *exc: Any) -> Any:
        out = self.out
        had = out._children.pop()
        out.depth -= 1
        if had and exc[0] is None:
            out.xf.write(_INDENT[out.depth])
        return self.cm.__exit__(*exc)


def _fmt_float(v: float) -> str:
    """xs:double lexical form without precision loss."""
    v = float(v)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "INF" if v > 0 else "-INF"
    return repr(v)


def _pos_list(ring: np.ndarray, decimals: int) -> str:
    """posList text of a ring, closed (first position repeated), ``decimals`` after the point."""
    r = np.asarray(ring, dtype=float)
    values = r.ravel().tolist()
    values += values[:3]
    return (" ".join([f"%.{decimals}f"] * len(values))) % tuple(values)


def _check_id(value: str, what: str, record: str) -> str:
    if not isinstance(value, str) or not _NCNAME.match(value):
        raise dataset_error(
            GeometryError, "citygml output", f"{what} {value!r} is not a valid gml:id (an XML NCName: "
            "a letter or '_' first, then letters, digits, '_', '-', '.')",
            "give buildings ids such as the ALKIS id 'DETHL51P0000abcd'", record=record)
    return value


def _gen_attribute(out: _Out, name: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, (bool, np.bool_)):
        tag, text = "stringAttribute", "true" if value else "false"
    elif isinstance(value, (int, np.integer)):
        tag, text = "intAttribute", str(int(value))
    elif isinstance(value, (float, np.floating)):
        tag, text = "doubleAttribute", _fmt_float(value)
    elif isinstance(value, _dt.datetime):
        tag, text = "stringAttribute", value.isoformat()
    elif isinstance(value, _dt.date):
        tag, text = "dateAttribute", value.isoformat()
    else:
        tag, text = "stringAttribute", str(value)
    with out.el(f"{{{GEN_NS}}}{tag}", {"name": str(name)}):
        out.leaf(f"{{{GEN_NS}}}value", text)


def _polygon(out: _Out, poly_id: str, rings: list[np.ndarray], decimals: int) -> None:
    with out.el(f"{{{GML_NS}}}Polygon", {_GML_ID: poly_id}):
        for i, ring in enumerate(rings):
            if len(ring) < 3:
                raise dataset_error(GeometryError, "citygml output",
                                    f"ring {i} of polygon {poly_id} has {len(ring)} vertices",
                                    "build rings of at least 3 distinct vertices", record=poly_id)
            with out.el(f"{{{GML_NS}}}{'exterior' if i == 0 else 'interior'}"):
                with out.el(f"{{{GML_NS}}}LinearRing"):
                    out.leaf(f"{{{GML_NS}}}posList", _pos_list(ring, decimals), {"srsDimension": "3"})


def _abstract_building(out: _Out, b: dict, *, is_part: bool, default_date: str, decimals: int,
                       bounds: list[float], seen_ids: set[str]) -> None:
    """Write the content of a bldg:Building or bldg:BuildingPart (already opened by the caller)."""
    bid = b["id"]
    date = b.get("creation_date") or default_date
    if isinstance(date, (_dt.date, _dt.datetime)):
        date = date.isoformat()[:10]
    out.leaf(f"{{{CORE_NS}}}creationDate", str(date))
    if not is_part:
        ext = b.get("external_id", bid)
        if ext:
            with out.el(f"{{{CORE_NS}}}externalReference"):
                out.leaf(f"{{{CORE_NS}}}informationSystem",
                         b.get("information_system", ADV_ALKIS_INFORMATION_SYSTEM))
                with out.el(f"{{{CORE_NS}}}externalObject"):
                    out.leaf(f"{{{CORE_NS}}}name", str(ext))
    for name, value in (b.get("attributes") or {}).items():
        _gen_attribute(out, name, value)
    if b.get("function"):
        out.leaf(f"{{{BLDG_NS}}}function", str(b["function"]))
    if b.get("roof_type"):
        out.leaf(f"{{{BLDG_NS}}}roofType", str(b["roof_type"]))
    h = b.get("measured_height_m")
    if h is not None and not (isinstance(h, float) and math.isnan(h)):
        out.leaf(f"{{{BLDG_NS}}}measuredHeight", _fmt_float(h), {"uom": ADV_UOM_M})
    if b.get("storeys") is not None:
        n = int(b["storeys"])
        if n < 0:
            raise dataset_error(GeometryError, "citygml output", f"storeys = {n} is negative",
                                "give storeys above ground as a count >= 0", record=bid)
        out.leaf(f"{{{BLDG_NS}}}storeysAboveGround", str(n))

    solid: Solid | None = b.get("solid")
    if solid is not None and solid.surfaces:
        pts = solid.vertices_array()
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        bounds[0:3] = np.minimum(bounds[0:3], lo).tolist()
        bounds[3:6] = np.maximum(bounds[3:6], hi).tolist()
        if solid.lod == 1:
            # CityGML 2.0 has no semantic surfaces at LoD1: inline polygons in bldg:lod1Solid
            with out.el(f"{{{BLDG_NS}}}lod1Solid"):
                with out.el(f"{{{GML_NS}}}Solid", {_GML_ID: f"{bid}_lod1"}):
                    with out.el(f"{{{GML_NS}}}exterior"):
                        with out.el(f"{{{GML_NS}}}CompositeSurface", {_GML_ID: f"{bid}_lod1_cs"}):
                            for i, s in enumerate(solid.surfaces):
                                with out.el(f"{{{GML_NS}}}surfaceMember"):
                                    _polygon(out, f"{bid}_lod1_p{i}", s.rings, decimals)
        else:
            poly_ids = [f"{bid}_p{i}" for i in range(len(solid.surfaces))]
            with out.el(f"{{{BLDG_NS}}}lod2Solid"):
                with out.el(f"{{{GML_NS}}}Solid", {_GML_ID: f"{bid}_solid"}):
                    with out.el(f"{{{GML_NS}}}exterior"):
                        with out.el(f"{{{GML_NS}}}CompositeSurface", {_GML_ID: f"{bid}_cs"}):
                            for pid in poly_ids:
                                out.leaf(f"{{{GML_NS}}}surfaceMember", "", {_XLINK_HREF: f"#{pid}"})
            for i, (s, pid) in enumerate(zip(solid.surfaces, poly_ids)):
                kind = s.kind if s.kind in _SEMANTIC_KINDS else _kind_by_normal(s)
                with out.el(f"{{{BLDG_NS}}}boundedBy"):
                    with out.el(f"{{{BLDG_NS}}}{kind}", {_GML_ID: f"{bid}_s{i}"}):
                        out.leaf(f"{{{CORE_NS}}}creationDate", str(date))
                        with out.el(f"{{{BLDG_NS}}}lod2MultiSurface"):
                            with out.el(f"{{{GML_NS}}}MultiSurface", {_GML_ID: f"{bid}_s{i}_ms"}):
                                with out.el(f"{{{GML_NS}}}surfaceMember"):
                                    _polygon(out, pid, s.rings, decimals)
    for part in b.get("parts") or []:
        pid = _check_id(part.get("id"), "building part id", bid)
        if pid in seen_ids:
            raise dataset_error(GeometryError, "citygml output", f"id {pid!r} is used twice",
                                "give every building and building part its own id", record=bid)
        seen_ids.add(pid)
        with out.el(f"{{{BLDG_NS}}}consistsOfBuildingPart"):
            with out.el(f"{{{BLDG_NS}}}BuildingPart", {_GML_ID: pid}):
                _abstract_building(out, {**part, "parts": None}, is_part=True,
                                   default_date=str(date), decimals=decimals, bounds=bounds,
                                   seen_ids=seen_ids)


def write_citygml(buildings: Iterable[dict], path: str | os.PathLike, crs: str = "EPSG:25832",
                  vertical_crs: str | None = "EPSG:7837", name: str | None = None, *,
                  creation_date: _dt.date | str | None = None, decimals: int = 3) -> Path:
    """Write buildings as a CityGML 2.0 file in the AdV profile, streaming.

    Parameters
    ----------
    buildings
        Iterable (may be a generator) of dicts: ``id`` (the gml:id, e.g. the ALKIS id),
        ``function`` (AdV code ``31001_1010``), ``roof_type`` (AdV Dachform ``3100``) or None,
        ``storeys`` or None, ``measured_height_m`` or None, ``solid`` (:class:`Solid` or None),
        optional ``parts`` (list of dicts with ``id``, ``solid``, ``roof_type``,
        ``measured_height_m``, ``storeys``, ``function``, ``attributes``), ``attributes`` (written
        as ``gen:stringAttribute`` / ``gen:intAttribute`` / ``gen:doubleAttribute`` /
        ``gen:dateAttribute`` by Python type; bools as strings "true"/"false"), optional
        ``creation_date`` and ``external_id`` (the ALKIS id of ``core:externalReference``; default
        ``id``). A solid with ``lod == 1`` is written as ``bldg:lod1Solid`` (no semantics); any
        other as ``bldg:lod2Solid`` with ``xlink:href`` to the polygons of its
        ``bldg:boundedBy`` surfaces.
    path
        Output file; written to a temporary file beside it and renamed atomically.
    crs, vertical_crs
        Horizontal and vertical CRS of the coordinates; see :func:`srs_name_for` for the srsName.
    name
        ``gml:name`` of the CityModel (e.g. ``LoD2_32_682_5645_2_TH``).
    creation_date
        ``core:creationDate`` of buildings that give none (default: today). Pass it for
        reproducible files.
    decimals
        Decimals of coordinates (3 = millimetres, as in the AdV tiles).

    Returns
    -------
    Path
        The written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    srs_name = srs_name_for(crs, vertical_crs)
    default_date = creation_date or _dt.date.today()
    if isinstance(default_date, (_dt.date, _dt.datetime)):
        default_date = default_date.isoformat()[:10]
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    bounds = [math.inf] * 3 + [-math.inf] * 3
    seen_ids: set[str] = set()
    placeholder = " " * _CORNER_WIDTH
    try:
        with open(tmp, "wb") as fh:
            with etree.xmlfile(fh, encoding="UTF-8") as xf:
                xf.write_declaration(standalone=True)
                out = _Out(xf)
                with out.el(f"{{{CORE_NS}}}CityModel",
                            {f"{{{XSI_NS}}}schemaLocation": SCHEMA_LOCATION}, nsmap=NSMAP):
                    if name:
                        out.leaf(f"{{{GML_NS}}}name", str(name))
                    with out.el(f"{{{GML_NS}}}boundedBy"):
                        with out.el(f"{{{GML_NS}}}Envelope", {"srsName": srs_name, "srsDimension": "3"}):
                            out.leaf(f"{{{GML_NS}}}lowerCorner", placeholder)
                            out.leaf(f"{{{GML_NS}}}upperCorner", placeholder)
                    for b in buildings:
                        bid = _check_id(b.get("id"), "building id", str(b.get("id")))
                        if bid in seen_ids:
                            raise dataset_error(GeometryError, "citygml output",
                                                f"id {bid!r} is used twice",
                                                "give every building its own id", record=bid)
                        seen_ids.add(bid)
                        with out.el(f"{{{CORE_NS}}}cityObjectMember"):
                            with out.el(f"{{{BLDG_NS}}}Building", {_GML_ID: bid}):
                                _abstract_building(out, b, is_part=False, default_date=default_date,
                                                   decimals=decimals, bounds=bounds,
                                                   seen_ids=seen_ids)
            fh.write(b"\n")
        _patch_envelope(tmp, bounds, decimals)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _patch_envelope(path: Path, bounds: list[float], decimals: int) -> None:
    """Overwrite the reserved corner texts of the CityModel envelope in place (same length)."""
    if not math.isfinite(bounds[0]):
        bounds = [0.0] * 6  # no geometry at all: a degenerate envelope at the origin
    with open(path, "r+b") as fh:
        head = fh.read(1 << 16)
        for tag, values in ((b"<gml:lowerCorner>", bounds[:3]), (b"<gml:upperCorner>", bounds[3:])):
            pos = head.find(tag)
            if pos < 0:  # pragma: no cover - written above
                raise RuntimeError("envelope placeholder not found")
            text = " ".join(f"{v:.{decimals}f}" for v in values).encode()
            if len(text) > _CORNER_WIDTH:
                raise GeometryError(f"dataset 'citygml output': envelope corner {text!r} too long. "
                                    "Fix: write coordinates in a projected CRS")
            fh.seek(pos + len(tag))
            fh.write(text.ljust(_CORNER_WIDTH))


def write_citygml_zip(buildings: Iterable[dict], path: str | os.PathLike, crs: str = "EPSG:25832",
                      vertical_crs: str | None = "EPSG:7837", name: str | None = None, *,
                      member_name: str | None = None, creation_date: _dt.date | str | None = None,
                      decimals: int = 3) -> Path:
    """Write buildings as a zipped CityGML tile, the form Thuringia publishes.

    ``path`` is e.g. ``LoD2_32_682_5645_2_TH.zip``; the zip holds one member ``member_name``
    (default: the zip's stem + ``.gml``), and ``name`` defaults to that stem. Written to a
    temporary file and renamed atomically. Other parameters as :func:`write_citygml`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stem = path.name[:-4] if path.name.lower().endswith(".zip") else path.stem
    member_name = member_name or f"{stem}.gml"
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.") as tmpdir:
        gml = write_citygml(buildings, Path(tmpdir) / member_name, crs=crs, vertical_crs=vertical_crs,
                            name=name or stem, creation_date=creation_date, decimals=decimals)
        tmp_zip = Path(tmpdir) / "out.zip"
        with zipfile.ZipFile(tmp_zip, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.write(gml, arcname=member_name)
        os.replace(tmp_zip, path)
    return path


# --------------------------------------------------------------------------------------------
# reader
# --------------------------------------------------------------------------------------------
@dataclass
class CityGMLBuilding:
    """One ``bldg:Building`` (or ``bldg:BuildingPart``) read from a CityGML file.

    ``solid`` holds the building's own surfaces (not those of its parts); the height figures and
    the footprint cover the building with all its parts. Where there is no usable geometry,
    ``solid`` is None and ``reason`` says why (the caller quarantines such buildings).
    """

    building_id: str
    source_file: str
    crs: str | None = None                     #: horizontal, e.g. "EPSG:25833"
    vertical_crs: str | None = None            #: e.g. "EPSG:7837"; None where the file names none
    srs_name: str | None = None
    external_id: str | None = None
    function: str | None = None
    roof_type: str | None = None
    storeys: int | None = None
    measured_height_m: float | None = None
    creation_date: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    solid: Solid | None = None
    parts: list["CityGMLBuilding"] = field(default_factory=list)
    footprint: Any = None                      #: shapely (Multi)Polygon in the file's CRS, or None
    ground_height_m: float | None = None       #: lowest z of all surfaces (building and parts)
    max_z_m: float | None = None
    eave_z_m: float | None = None              #: lowest z of the roof surfaces' exterior rings
    reason: str | None = None                  #: why there is no solid (None where there is one)
    is_part: bool = False

    def all_solids(self) -> list[tuple[str, Solid]]:
        """``(id, solid)`` of the building itself (if it has geometry) and of each part."""
        out = [(self.building_id, self.solid)] if self.solid is not None else []
        for p in self.parts:
            out += p.all_solids()
        return out


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _ns(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


def _dimension(el: etree._Element) -> int:
    """srsDimension of a posList, inherited from ancestors; 3 where nothing says otherwise."""
    node = el
    while node is not None:
        d = node.get("srsDimension")
        if d:
            return int(d)
        node = node.getparent()
    return 3


def _ring_coords(ring: etree._Element) -> np.ndarray:
    """Coordinates of a gml:LinearRing as (n, 3), closing vertex dropped."""
    pos_list = ring.find(f"{{{GML_NS}}}posList")
    if pos_list is not None:
        values = np.array((pos_list.text or "").split(), dtype=float)
        dim = _dimension(pos_list)
    else:
        pos = ring.findall(f"{{{GML_NS}}}pos")
        if pos:
            values = np.array(" ".join(p.text or "" for p in pos).split(), dtype=float)
            dim = len(values) // len(pos)
        else:
            coords = ring.find(f"{{{GML_NS}}}coordinates")
            if coords is None:
                raise ValueError("ring has no gml:posList, gml:pos or gml:coordinates")
            tuples = [t.split(",") for t in (coords.text or "").split()]
            values = np.array([v for t in tuples for v in t], dtype=float)
            dim = len(tuples[0]) if tuples else 3
    if dim != 3:
        raise ValueError(f"ring has srsDimension {dim}, not 3")
    if values.size % 3:
        raise ValueError(f"ring has {values.size} numbers, not a multiple of 3")
    pts = values.reshape(-1, 3)
    if len(pts) > 1 and np.array_equal(pts[0], pts[-1]):
        pts = pts[:-1]
    if len(pts) < 3:
        raise ValueError(f"ring has {len(pts)} distinct positions")
    return pts


def _polygon_rings(poly: etree._Element) -> list[np.ndarray]:
    ext = poly.find(f"{{{GML_NS}}}exterior/{{{GML_NS}}}LinearRing")
    if ext is None:
        ext = poly.find(f"{{{GML_NS}}}outerBoundaryIs/{{{GML_NS}}}LinearRing")
    if ext is None:
        raise ValueError("polygon has no exterior LinearRing")
    rings = [_ring_coords(ext)]
    for inner in poly.iterfind(f"{{{GML_NS}}}interior/{{{GML_NS}}}LinearRing"):
        rings.append(_ring_coords(inner))
    for inner in poly.iterfind(f"{{{GML_NS}}}innerBoundaryIs/{{{GML_NS}}}LinearRing"):
        rings.append(_ring_coords(inner))
    return rings


def _kind_by_normal(surface: Surface) -> str:
    """Semantic kind of an unclassified surface: walls within 10° of vertical, roofs face up."""
    n = surface.normal
    if abs(n[2]) < math.sin(math.radians(10.0)):
        return "WallSurface"
    return "RoofSurface" if n[2] > 0 else "GroundSurface"


class _PolyIndex(dict):
    """gml:id -> gml:Polygon element of one building, with a cache of parsed rings (a polygon is
    met twice: in the boundary surface and through the lod2Solid's xlink)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.rings: dict[str, list[np.ndarray]] = {}


def _members(geom_prop: etree._Element, polys: dict[str, etree._Element]
             ) -> list[tuple[str | None, list[np.ndarray]]]:
    """Polygons of a geometry property (Solid / MultiSurface / CompositeSurface), xlinks resolved.

    Returns ``(polygon id, rings)`` in document order; raises ValueError on an unresolved xlink.
    """
    out: list[tuple[str | None, list[np.ndarray]]] = []
    cache = polys.rings if isinstance(polys, _PolyIndex) else {}

    def visit(node: etree._Element, reverse: bool) -> None:
        for child in node:
            if not isinstance(child.tag, str):
                continue
            local = _local(child.tag)
            href = child.get(_XLINK_HREF)
            if href is not None and len(child) == 0:
                pid = href.lstrip("#")
                rings = cache.get(pid)
                if rings is None:
                    target = polys.get(pid)
                    if target is None:
                        raise ValueError(f"xlink:href {href!r} does not resolve to a gml:Polygon "
                                         f"of this building")
                    rings = cache[pid] = _polygon_rings(target)
                out.append((pid, [r[::-1] for r in rings] if reverse else rings))
            elif local == "Polygon":
                pid = child.get(_GML_ID)
                rings = cache.get(pid) if pid else None
                if rings is None:
                    rings = _polygon_rings(child)
                    if pid:
                        cache[pid] = rings
                out.append((pid, [r[::-1] for r in rings] if reverse else rings))
            elif local == "OrientableSurface":
                visit(child, reverse ^ (child.get("orientation", "+") == "-"))
            elif local in ("Triangle", "Rectangle"):
                rings = _polygon_rings(child)
                out.append((child.get(_GML_ID), [r[::-1] for r in rings] if reverse else rings))
            else:
                visit(child, reverse)

    visit(geom_prop, False)
    return out


def _footprint_of(surfaces: list[Surface]) -> Any:
    """2D footprint: union of GroundSurface polygons, else of the projection of all surfaces."""
    import shapely

    ground = [s for s in surfaces if s.kind == "GroundSurface"]
    use = ground or surfaces
    polys = []
    for s in use:
        poly = shapely.Polygon(s.rings[0][:, :2], [r[:, :2] for r in s.rings[1:]])
        if poly.area <= 1e-9:
            continue  # vertical surfaces project to lines
        if not poly.is_valid:
            poly = shapely.make_valid(poly)
        polys.append(poly)
    if not polys:
        return None
    fp = shapely.union_all(polys)
    if fp.geom_type == "GeometryCollection":
        fp = shapely.union_all([g for g in fp.geoms if g.geom_type in ("Polygon", "MultiPolygon")])
    return fp


def _parse_abstract_building(el: etree._Element, version: str, source: str, is_part: bool,
                             polys: dict[str, etree._Element]) -> CityGMLBuilding:
    core_ns, bldg_ns, gen_ns = (_CORE_NS_BY_VERSION[version], _BLDG_NS_BY_VERSION[version],
                                _GEN_NS_BY_VERSION[version])
    b = CityGMLBuilding(building_id=el.get(_GML_ID) or "", source_file=source, is_part=is_part)
    lod2_solid = lod1_solid = lod2_ms = lod1_ms = None
    semantic: list[tuple[str, etree._Element]] = []
    reasons: list[str] = []
    for child in el:
        tag = child.tag
        if not isinstance(tag, str):
            continue
        ns, local = _ns(tag), _local(tag)
        if ns == core_ns:
            if local == "creationDate":
                b.creation_date = (child.text or "").strip() or None
            elif local == "externalReference" and b.external_id is None:
                name = child.find(f"{{{core_ns}}}externalObject/{{{core_ns}}}name")
                uri = child.find(f"{{{core_ns}}}externalObject/{{{core_ns}}}uri")
                node = name if name is not None else uri
                if node is not None and node.text:
                    b.external_id = node.text.strip()
        elif ns == gen_ns:
            _read_gen_attribute(child, local, gen_ns, b.attributes)
        elif ns == bldg_ns:
            text = (child.text or "").strip()
            if local == "function" and b.function is None:
                b.function = text or None
            elif local == "roofType":
                b.roof_type = text or None
            elif local == "measuredHeight":
                try:
                    b.measured_height_m = float(text)
                except ValueError:
                    reasons.append(f"measuredHeight {text!r} is not a number")
            elif local == "storeysAboveGround":
                try:
                    b.storeys = int(text)
                except ValueError:
                    reasons.append(f"storeysAboveGround {text!r} is not an integer")
            elif local == "lod2Solid":
                lod2_solid = child
            elif local == "lod1Solid":
                lod1_solid = child
            elif local == "lod2MultiSurface":
                lod2_ms = child
            elif local == "lod1MultiSurface":
                lod1_ms = child
            elif local == "boundedBy":
                for surf in child:
                    if isinstance(surf.tag, str):
                        semantic.append((_local(surf.tag), surf))
            elif local == "consistsOfBuildingPart":
                for part_el in child.iterfind(f"{{{bldg_ns}}}BuildingPart"):
                    b.parts.append(_parse_abstract_building(part_el, version, source, True, polys))

    surfaces: list[Surface] = []
    lod = 2
    try:
        kind_of: dict[str, str] = {}
        sem_surfaces: list[Surface] = []
        for kind, surf in semantic:
            ms = surf.find(f"{{{bldg_ns}}}lod2MultiSurface")
            if ms is None:
                continue  # lod3/lod4 only, or an opening
            for pid, rings in _members(ms, polys):
                s = Surface(kind if kind in _CANONICAL_KINDS else "RoofSurface", rings)
                if kind not in _CANONICAL_KINDS:
                    s.attributes["citygml_kind"] = kind
                    s.kind = _kind_by_normal(s)
                if pid:
                    kind_of[pid] = s.kind
                sem_surfaces.append(s)
        if lod2_solid is not None:
            for pid, rings in _members(lod2_solid, polys):
                s = Surface("WallSurface", rings)
                s.kind = kind_of.get(pid) if pid in kind_of else _kind_by_normal(s)
                surfaces.append(s)
        elif sem_surfaces:
            surfaces = sem_surfaces
        elif lod2_ms is not None:
            surfaces = [Surface("WallSurface", rings) for _, rings in _members(lod2_ms, polys)]
            for s in surfaces:
                s.kind = _kind_by_normal(s)
        elif lod1_solid is not None or lod1_ms is not None:
            lod = 1
            geom = lod1_solid if lod1_solid is not None else lod1_ms
            surfaces = [Surface("WallSurface", rings) for _, rings in _members(geom, polys)]
            for s in surfaces:
                s.kind = _kind_by_normal(s)
    except ValueError as exc:
        surfaces = []
        reasons.insert(0, f"unusable geometry: {exc}")

    if surfaces:
        b.solid = Solid(surfaces, lod=lod)
    elif not reasons and not b.parts:
        reasons.append("no LoD1/LoD2 geometry (no lod2Solid, boundary surfaces, lod2MultiSurface "
                       "or lod1Solid)")
    if b.solid is None and reasons:
        b.reason = "; ".join(reasons)
    elif reasons:
        b.reason = "; ".join(reasons)
    _summarise(b)
    return b


def _read_gen_attribute(el: etree._Element, local: str, gen_ns: str, attrs: dict) -> None:
    name = el.get("name")
    if local == "genericAttributeSet":
        for sub in el:
            if isinstance(sub.tag, str):
                _read_gen_attribute(sub, _local(sub.tag), gen_ns, attrs)
        return
    if name is None:
        return
    v = el.find(f"{{{gen_ns}}}value")
    text = (v.text or "").strip() if v is not None else ""
    try:
        if local == "intAttribute":
            attrs[name] = int(text)
        elif local in ("doubleAttribute", "measureAttribute"):
            attrs[name] = float(text)
        else:
            attrs[name] = text
    except ValueError:
        attrs[name] = text


def _summarise(b: CityGMLBuilding) -> None:
    """Heights and footprint of a building over its own surfaces and its parts'."""
    import shapely

    zs_min, zs_max, eaves, fps = [], [], [], []
    if b.solid is not None:
        pts = b.solid.vertices_array()
        zs_min.append(float(pts[:, 2].min()))
        zs_max.append(float(pts[:, 2].max()))
        roof = [s.rings[0][:, 2].min() for s in b.solid.of_kind("RoofSurface")]
        if roof:
            eaves.append(float(min(roof)))
        fp = _footprint_of(b.solid.surfaces)
        if fp is not None:
            fps.append(fp)
    for p in b.parts:
        if p.ground_height_m is not None:
            zs_min.append(p.ground_height_m)
            zs_max.append(p.max_z_m)
        if p.eave_z_m is not None:
            eaves.append(p.eave_z_m)
        if p.footprint is not None:
            fps.append(p.footprint)
    b.ground_height_m = min(zs_min) if zs_min else None
    b.max_z_m = max(zs_max) if zs_max else None
    b.eave_z_m = min(eaves) if eaves else None
    b.footprint = (fps[0] if len(fps) == 1 else shapely.union_all(fps)) if fps else None
    if b.solid is None and b.parts and all(p.solid is None for p in b.parts):
        b.reason = b.reason or "; ".join(f"part {p.building_id}: {p.reason}" for p in b.parts)


def _open_sources(path: Path, dataset: str) -> Iterator[tuple[str, IO[bytes]]]:
    """(display name, binary stream) of the .gml file or of each .gml/.xml member of a zip."""
    if not path.exists():
        raise dataset_error(SourceDataError, dataset, f"file {path} does not exist",
                            "download the tile again or fix the path in the catalog")
    if zipfile.is_zipfile(path):
        try:
            zf = zipfile.ZipFile(path)
        except zipfile.BadZipFile as exc:
            raise dataset_error(SourceDataError, dataset, f"{path} is a broken zip ({exc})",
                                "download the tile again", record=path.name) from exc
        with zf:
            members = [m for m in zf.namelist()
                       if m.lower().endswith((".gml", ".citygml")) and not m.endswith("/")]
            if not members:
                members = [m for m in zf.namelist() if m.lower().endswith(".xml")
                           and not m.lower().rsplit("/", 1)[-1].startswith(("meta", "_"))]
            if not members:
                raise dataset_error(
                    SourceDataError, dataset,
                    f"zip {path.name} holds no CityGML file (.gml); it has {zf.namelist()[:10]}",
                    "check that the catalog's distribution is the LoD2 CityGML tile", record=path.name)
            for m in members:
                with zf.open(m) as fh:
                    yield f"{path}!{m}", fh
    else:
        with open(path, "rb") as fh:
            yield str(path), fh


def iter_citygml(path_or_zip: str | os.PathLike, dataset: str, crs_override: str | None = None, *,
                 config_key: str = DEFAULT_CONFIG_KEY) -> Iterator[CityGMLBuilding]:
    """Stream the buildings of a CityGML file or of a zip of CityGML files, one at a time.

    Parameters
    ----------
    path_or_zip
        ``.gml`` file, or a zip holding ``.gml`` files (e.g. ``LoD2_32_682_5645_2_TH.zip``).
    dataset
        Name of the dataset for error messages (role or catalog identifier).
    crs_override
        CRS to assume where the file names none (``EPSG:25832`` or an AdV/EPSG srsName); from
        the configuration key ``config_key``.

    Raises
    ------
    CRSError
        No srsName and no override, or an srsName this reader does not know (without override).
    SourceDataError
        Missing file, zip without CityGML, malformed or truncated XML, not a CityModel.
    """
    path = Path(path_or_zip)
    override = _override_crs(crs_override, dataset, config_key) if crs_override else None
    tags = [f"{{{ns}}}Building" for ns in _BLDG_NS_BY_VERSION.values()] + [f"{{{GML_NS}}}Envelope"]
    for source, fh in _open_sources(path, dataset):
        file_srs: str | None = None
        seen_root = False
        context = etree.iterparse(fh, events=("end",), tag=tags, huge_tree=True,
                                  remove_blank_text=True, resolve_entities=False, no_network=True)
        try:
            for event, el in context:
                if not seen_root:
                    _check_root(el.getroottree().getroot(), source, dataset)
                    seen_root = True
                if _local(el.tag) == "Envelope":
                    owner = el.getparent().getparent() if el.getparent() is not None else None
                    if owner is not None and owner.getparent() is None and el.get("srsName"):
                        file_srs = el.get("srsName")
                    continue
                version = _VERSION_BY_BLDG_NS[_ns(el.tag)]
                yield _read_building(el, version, source, dataset, file_srs, override, config_key)
                # free what has been read: the building and the members before it
                member = el.getparent()
                el.clear()
                if member is not None:
                    while member.getprevious() is not None:
                        del member.getparent()[0]
        except etree.XMLSyntaxError as exc:
            line = exc.lineno if exc.lineno is not None else "?"
            raise dataset_error(
                SourceDataError, dataset,
                f"{source} is not well-formed XML at line {line}: {exc.msg} (a truncated download "
                "or not a CityGML file)", "download the tile again; if it stays broken, report it "
                "to the data provider", record=Path(source).name) from exc
        if not seen_root and context.root is not None:
            _check_root(context.root, source, dataset)  # well-formed, but without any building


def _check_root(root: etree._Element, source: str, dataset: str) -> None:
    if _local(root.tag) != "CityModel" or _ns(root.tag) not in _CORE_NS_BY_VERSION.values():
        raise dataset_error(
            SourceDataError, dataset, f"{source} is not a CityGML CityModel (root element {root.tag})",
            "check that the distribution is a CityGML 1.0/2.0 LoD2 tile", record=Path(source).name)


def _override_crs(value: str, dataset: str, config_key: str) -> CityGMLCRS:
    crs = parse_srs_name(value)
    if crs is None:
        raise dataset_error(CRSError, dataset, f"the configured CRS {value!r} is not understood",
                            f"set {config_key} to an EPSG code such as 'EPSG:25832' or an AdV name "
                            "such as 'urn:adv:crs:ETRS89_UTM32*DE_DHHN2016_NH'")
    return crs


def _read_building(el: etree._Element, version: str, source: str, dataset: str,
                   file_srs: str | None, override: CityGMLCRS | None, config_key: str
                   ) -> CityGMLBuilding:
    srs_values = el.xpath(".//@srsName")
    srs = str(srs_values[0]) if srs_values else file_srs
    polys = _PolyIndex((p.get(_GML_ID), p) for p in el.iter(f"{{{GML_NS}}}Polygon",
                                                             f"{{{GML_NS}}}Triangle")
                       if p.get(_GML_ID))
    b = _parse_abstract_building(el, version, source, False, polys)
    record = b.building_id or f"line {el.sourceline}"
    if srs is None:
        if override is None:
            raise dataset_error(
                CRSError, dataset, f"{source} names no CRS (no srsName on the CityModel envelope or "
                f"the building's geometry)",
                f"set {config_key} to the CRS of the tiles, e.g. 'EPSG:25832'", record=record)
        crs = override
    else:
        crs = parse_srs_name(srs)
        if crs is None:
            if override is None:
                raise dataset_error(
                    CRSError, dataset, f"{source}: srsName {srs!r} is not a known EPSG URN or AdV "
                    "CRS name", f"set {config_key} to the CRS the file uses, e.g. 'EPSG:25832'",
                    record=record)
            crs = override
    _set_crs(b, crs)
    return b


def _set_crs(b: CityGMLBuilding, crs: CityGMLCRS) -> None:
    b.crs, b.vertical_crs, b.srs_name = crs.horizontal, crs.vertical, crs.srs_name
    for p in b.parts:
        _set_crs(p, crs)


def read_citygml(path_or_zip: str | os.PathLike, dataset: str, crs_override: str | None = None, *,
                 config_key: str = DEFAULT_CONFIG_KEY) -> list[CityGMLBuilding]:
    """Read all buildings of a CityGML file or zip (see :func:`iter_citygml`)."""
    return list(iter_citygml(path_or_zip, dataset, crs_override, config_key=config_key))


# --------------------------------------------------------------------------------------------
# frame
# --------------------------------------------------------------------------------------------
def solids_to_json(solids: list[tuple[str, Solid]], decimals: int = 3) -> str:
    """CityJSON-like JSON of several solids sharing one vertex list.

    ``{"vertices": [[x, y, z], ...], "solids": [{"id", "lod", "surfaces": [{"type", "rings":
    [[i, ...], ...]}]}]}``; coordinates rounded to ``decimals``.
    """
    lookup: dict[tuple[float, float, float], int] = {}
    vertices: list[list[float]] = []
    out_solids = []
    for sid, solid in solids:
        verts, polys, kinds = solid.indexed(decimals)
        remap = np.empty(len(verts), dtype=int)
        for i, v in enumerate(map(tuple, verts.tolist())):
            j = lookup.get(v)
            if j is None:
                j = lookup[v] = len(vertices)
                vertices.append(list(v))
            remap[i] = j
        out_solids.append({"id": sid, "lod": solid.lod, "surfaces": [
            {"type": k, "rings": [remap[r].tolist() for r in poly]} for poly, k in zip(polys, kinds)]})
    return json.dumps({"vertices": vertices, "solids": out_solids}, separators=(",", ":"))


def solids_from_json(text: str) -> list[tuple[str, Solid]]:
    """Inverse of :func:`solids_to_json`: ``[(id, Solid), ...]``."""
    data = json.loads(text)
    verts = np.asarray(data["vertices"], dtype=float).reshape(-1, 3)
    return [(s["id"], Solid([Surface(f["type"], [verts[np.asarray(r, dtype=int)] for r in f["rings"]])
                             for f in s["surfaces"]], lod=s.get("lod", 2)))
            for s in data["solids"]]


def _transform_building(b: CityGMLBuilding, transformer: Any) -> None:
    import shapely

    def tr(solid: Solid | None) -> None:
        if solid is None:
            return
        rings = [r for s in solid.surfaces for r in s.rings]
        pts = np.concatenate(rings, axis=0)
        x, y = transformer.transform(pts[:, 0], pts[:, 1])
        new = np.column_stack([x, y, pts[:, 2]])
        k = 0
        for s in solid.surfaces:
            for i, r in enumerate(s.rings):
                s.rings[i] = new[k:k + len(r)]
                k += len(r)

    tr(b.solid)
    if b.footprint is not None:
        b.footprint = shapely.transform(b.footprint, lambda xy: np.column_stack(
            transformer.transform(xy[:, 0], xy[:, 1])))
    for p in b.parts:
        _transform_building(p, transformer)


@lru_cache(maxsize=64)
def _same_crs(a: str, b: str) -> bool:
    import pyproj

    return pyproj.CRS(a) == pyproj.CRS(b)


def citygml_to_frame(buildings: Iterable[CityGMLBuilding], crs: str | None = None):
    """Buildings as a GeoDataFrame of footprints with attributes and 3D surfaces.

    Parameters
    ----------
    buildings
        Output of :func:`read_citygml`.
    crs
        Target CRS; buildings in another horizontal CRS are transformed (x, y with
        ``always_xy=True``; heights kept as they are). Default: the buildings' own CRS.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per building: ``building_id, external_id, function_code, roof_type, storeys,
        measured_height_m, ground_height_m, max_z_m, eave_z_m, n_parts, creation_date,
        attributes_json, surfaces_json`` (see :func:`solids_to_json`), ``vertical_crs, reason,
        source_file`` and the footprint as geometry.
    """
    import geopandas as gpd
    import pyproj

    buildings = list(buildings)
    target = crs or next((b.crs for b in buildings if b.crs), None)
    transformers: dict[str, Any] = {}
    rows = []
    geoms = []
    for b in buildings:
        if target and b.crs and not _same_crs(b.crs, target):
            t = transformers.get(b.crs)
            if t is None:
                t = transformers[b.crs] = pyproj.Transformer.from_crs(b.crs, target, always_xy=True)
            _transform_building(b, t)
            b.crs = target
        solids = b.all_solids()
        rows.append({
            "building_id": b.building_id,
            "external_id": b.external_id,
            "function_code": b.function,
            "roof_type": b.roof_type,
            "storeys": b.storeys,
            "measured_height_m": b.measured_height_m,
            "ground_height_m": b.ground_height_m,
            "max_z_m": b.max_z_m,
            "eave_z_m": b.eave_z_m,
            "n_parts": len(b.parts),
            "creation_date": b.creation_date,
            "attributes_json": json.dumps(b.attributes, ensure_ascii=False, sort_keys=True),
            "surfaces_json": solids_to_json(solids) if solids else None,
            "vertical_crs": b.vertical_crs,
            "reason": b.reason,
            "source_file": b.source_file,
        })
        geoms.append(b.footprint)
    frame = gpd.GeoDataFrame(rows, geometry=geoms, crs=target)
    if len(frame):
        frame["storeys"] = frame["storeys"].astype("Int64")
        for col in ("measured_height_m", "ground_height_m", "max_z_m", "eave_z_m"):
            frame[col] = frame[col].astype(float)
    return frame


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------
class _LocalSchemaResolver(etree.Resolver):
    """Serve ``http(s)://schemas.opengis.net/...`` etc. from the bundled copies."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root

    def resolve(self, url, pubid, context):  # noqa: D401 - lxml API
        m = re.match(r"^https?://(.+)$", url or "")
        if m:
            local = self.root / m.group(1)
            if local.is_file():
                return self.resolve_filename(str(local), context)
        return None


@lru_cache(maxsize=4)
def _citygml_schema(schema_dir: str) -> etree.XMLSchema:
    root = Path(schema_dir)
    base = root / "schemas.opengis.net"
    if not (base / "citygml" / "building" / "2.0" / "building.xsd").is_file():
        raise SourceDataError(
            f"dataset 'citygml schemas': the CityGML 2.0 XML schemas are not in {root}. Fix: restore "
            "citymodel/schemas/citygml (official OGC schemas, see its NOTICE.md)")
    # a small driver schema importing the modules this project writes and reads
    driver = (
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" '
        'targetNamespace="urn:citymodel:driver" elementFormDefault="qualified">'
        f'<xs:import namespace="{CORE_NS}" schemaLocation="http://schemas.opengis.net/citygml/2.0/cityGMLBase.xsd"/>'
        f'<xs:import namespace="{BLDG_NS}" schemaLocation="http://schemas.opengis.net/citygml/building/2.0/building.xsd"/>'
        f'<xs:import namespace="{GEN_NS}" schemaLocation="http://schemas.opengis.net/citygml/generics/2.0/generics.xsd"/>'
        '</xs:schema>')
    parser = etree.XMLParser(no_network=True)
    parser.resolvers.add(_LocalSchemaResolver(root))
    doc = etree.fromstring(driver.encode(), parser, base_url=str(root / "driver.xsd"))
    return etree.XMLSchema(etree.ElementTree(doc))


@dataclass
class ValidationReport:
    """Result of :func:`validate_citygml_xsd` or :func:`check_citygml_structure`."""

    path: str
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    n_buildings: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    def raise_if_invalid(self, dataset: str = "citygml output") -> None:
        if self.errors:
            more = f" (and {len(self.errors) - 5} more)" if len(self.errors) > 5 else ""
            raise dataset_error(SourceDataError, dataset,
                                f"{self.path} is not valid CityGML 2.0: {'; '.join(self.errors[:5])}{more}",
                                "fix the writer or the input named in the messages",
                                record=Path(self.path).name)


def _is_zip(path: Any) -> bool:
    return isinstance(path, (str, os.PathLike)) and zipfile.is_zipfile(path)


def _src(path: Any) -> Any:
    return str(path) if isinstance(path, (str, os.PathLike)) else path


def _name(path: Any) -> str:
    return str(path) if isinstance(path, (str, os.PathLike)) else getattr(path, "name", "<stream>")


def _zip_report(path: Any, check: Any, **kw: Any) -> ValidationReport:
    """Run a check on each CityGML member of a zip; messages prefixed by the member name."""
    report = ValidationReport(str(path))
    for source, fh in _open_sources(Path(path), "citygml check"):
        member = check(fh, **kw)
        label = source.rsplit("!", 1)[-1]
        report.errors += [f"{label}: {e}" for e in member.errors]
        report.warnings += [f"{label}: {w}" for w in member.warnings]
        report.n_buildings += member.n_buildings
    return report


def validate_citygml_xsd(path: str | os.PathLike | IO[bytes], schema_dir: str | os.PathLike | None = None,
                         max_errors: int = 100) -> ValidationReport:
    """Validate a CityGML 2.0 file against the official XML schemas (GML 3.1.1, xAL, xlink).

    The schemas are the unmodified OGC/OASIS/W3C files bundled in ``citymodel/schemas/citygml``
    (laid out by their URL); no network is used. Modules other than core, building and generics
    are not loaded, so a file using e.g. appearance fails (this project writes none). A zip is
    checked member by member.
    """
    schema = _citygml_schema(str(Path(schema_dir) if schema_dir else SCHEMA_DIR))
    if _is_zip(path):
        return _zip_report(path, validate_citygml_xsd, schema_dir=schema_dir, max_errors=max_errors)
    report = ValidationReport(_name(path))
    parser = etree.XMLParser(huge_tree=True, no_network=True, resolve_entities=False)
    try:
        doc = etree.parse(_src(path), parser)
    except etree.XMLSyntaxError as exc:
        report.errors.append(f"line {exc.lineno}: not well-formed XML: {exc.msg}")
        return report
    report.n_buildings = len(doc.getroot().findall(f".//{{{BLDG_NS}}}Building"))
    if not schema.validate(doc):
        seen = set()
        for err in schema.error_log:
            key = (err.line, err.message)
            if key in seen:
                continue
            seen.add(key)
            report.errors.append(f"line {err.line}: {err.message}")
            if len(report.errors) >= max_errors:
                break
    return report


# order of the child elements of _AbstractBuilding (gml:_Feature, core:_CityObject, bldg) in the
# CityGML 2.0 schema; generic attributes are in core:_GenericApplicationPropertyOfCityObject
_BUILDING_ORDER = [
    (GML_NS, "metaDataProperty"), (GML_NS, "description"), (GML_NS, "name"), (GML_NS, "boundedBy"),
    (GML_NS, "location"),
    (CORE_NS, "creationDate"), (CORE_NS, "terminationDate"), (CORE_NS, "externalReference"),
    (CORE_NS, "generalizesTo"), (CORE_NS, "relativeToTerrain"), (CORE_NS, "relativeToWater"),
    ("generic", "*"),
    (BLDG_NS, "class"), (BLDG_NS, "function"), (BLDG_NS, "usage"), (BLDG_NS, "yearOfConstruction"),
    (BLDG_NS, "yearOfDemolition"), (BLDG_NS, "roofType"), (BLDG_NS, "measuredHeight"),
    (BLDG_NS, "storeysAboveGround"), (BLDG_NS, "storeysBelowGround"),
    (BLDG_NS, "storeyHeightsAboveGround"), (BLDG_NS, "storeyHeightsBelowGround"),
    (BLDG_NS, "lod0FootPrint"), (BLDG_NS, "lod0RoofEdge"),
    (BLDG_NS, "lod1Solid"), (BLDG_NS, "lod1MultiSurface"), (BLDG_NS, "lod1TerrainIntersection"),
    (BLDG_NS, "lod2Solid"), (BLDG_NS, "lod2MultiSurface"), (BLDG_NS, "lod2MultiCurve"),
    (BLDG_NS, "lod2TerrainIntersection"), (BLDG_NS, "outerBuildingInstallation"),
    (BLDG_NS, "interiorBuildingInstallation"), (BLDG_NS, "boundedBy"),
    (BLDG_NS, "lod3Solid"), (BLDG_NS, "lod3MultiSurface"), (BLDG_NS, "lod3MultiCurve"),
    (BLDG_NS, "lod3TerrainIntersection"), (BLDG_NS, "lod4Solid"), (BLDG_NS, "lod4MultiSurface"),
    (BLDG_NS, "lod4MultiCurve"), (BLDG_NS, "lod4TerrainIntersection"), (BLDG_NS, "interiorRoom"),
    (BLDG_NS, "consistsOfBuildingPart"), (BLDG_NS, "address"),
]
_ORDER_INDEX = {key: i for i, key in enumerate(_BUILDING_ORDER)}
_GENERIC_INDEX = _ORDER_INDEX[("generic", "*")]


def _order_errors(el: etree._Element, record: str) -> list[str]:
    errors = []
    last, last_name = -1, None
    for child in el:
        if not isinstance(child.tag, str):
            continue
        ns, local = _ns(child.tag), _local(child.tag)
        idx = _ORDER_INDEX.get((ns, local))
        if idx is None:
            if ns == GEN_NS or (ns not in (GML_NS, CORE_NS, BLDG_NS)):
                idx = _GENERIC_INDEX  # generic attributes and ADE properties of _CityObject
            else:
                errors.append(f"{record}: element {local} is not allowed in a building "
                              f"(line {child.sourceline})")
                continue
        if idx < last:
            errors.append(f"{record}: {local} after {last_name} breaks the CityGML 2.0 element "
                          f"order (line {child.sourceline})")
        elif idx == last and idx not in (_GENERIC_INDEX,) and _BUILDING_ORDER[idx][1] not in (
                "function", "usage", "externalReference", "generalizesTo", "boundedBy",
                "consistsOfBuildingPart", "address", "outerBuildingInstallation",
                "interiorBuildingInstallation", "interiorRoom"):
            errors.append(f"{record}: {local} appears twice (line {child.sourceline})")
        last, last_name = max(last, idx), local
    return errors


def check_citygml_structure(path: str | os.PathLike | IO[bytes], max_errors: int = 200) -> ValidationReport:
    """Check what the AdV profile requires beyond XML schema validity, streaming.

    Checked: root ``core:CityModel`` of CityGML 2.0 with the 2.0 building/generics namespaces and
    GML 3.1.1; an srsName on the CityModel envelope or on every building; the element order
    inside ``bldg:Building`` / ``bldg:BuildingPart``; every ``xlink:href`` resolving to a
    ``gml:Polygon`` in the file; every ``gml:LinearRing`` closed with >= 4 positions and
    ``srsDimension`` 3; ``gml:id`` unique. A ``bldg:measuredHeight`` without ``uom`` is a warning
    (schema-invalid, but the Berlin export has it). A zip is checked member by member.
    """
    if _is_zip(path):
        return _zip_report(path, check_citygml_structure, max_errors=max_errors)
    report = ValidationReport(_name(path))
    ids: set[str] = set()
    polygon_ids: set[str] = set()
    hrefs: dict[str, str] = {}
    file_srs = None
    errors = report.errors

    def err(msg: str) -> None:
        if len(errors) < max_errors:
            errors.append(msg)

    tags = [f"{{{BLDG_NS}}}Building", f"{{{GML_NS}}}Envelope"]
    root_checked = False
    context = etree.iterparse(_src(path), events=("end",), tag=tags, huge_tree=True,
                              resolve_entities=False, no_network=True)
    try:
        for _, el in context:
            if not root_checked:
                root = el.getroottree().getroot()
                if root.tag != f"{{{CORE_NS}}}CityModel":
                    err(f"root element is {root.tag}, not {{{CORE_NS}}}CityModel (CityGML 2.0)")
                nsmap = root.nsmap
                for pref, uri in nsmap.items():
                    if uri and uri.startswith("http://www.opengis.net/citygml/") and not uri.endswith(
                            ("/2.0", "texturedsurface/2.0")):
                        err(f"namespace {uri} (prefix {pref}) is not CityGML 2.0")
                    if pref == "gml" and uri != GML_NS:
                        err(f"gml prefix bound to {uri}, not GML 3.1.1 ({GML_NS})")
                root_checked = True
            if el.tag == f"{{{GML_NS}}}Envelope":
                parent = el.getparent()
                if parent is not None and parent.getparent() is not None and \
                        parent.getparent().getparent() is None:
                    file_srs = el.get("srsName")
                continue
            report.n_buildings += 1
            record = el.get(_GML_ID) or f"building at line {el.sourceline}"
            for node in el.iter(tag=etree.Element):
                gid = node.get(_GML_ID)
                if gid is not None:
                    if gid in ids:
                        err(f"gml:id {gid!r} is not unique (line {node.sourceline})")
                    ids.add(gid)
                    if node.tag == f"{{{GML_NS}}}Polygon":
                        polygon_ids.add(gid)
                href = node.get(_XLINK_HREF)
                if href is not None:
                    hrefs.setdefault(href, f"{record} line {node.sourceline}")
                local = _local(node.tag)
                if local in ("Building", "BuildingPart") and _ns(node.tag) == BLDG_NS:
                    for e in _order_errors(node, node.get(_GML_ID) or record):
                        err(e)
                elif local == "measuredHeight" and node.get("uom") is None:
                    if len(report.warnings) < max_errors:
                        report.warnings.append(f"{record}: measuredHeight has no uom "
                                               f"(line {node.sourceline})")
                elif local == "LinearRing" and _ns(node.tag) == GML_NS:
                    _ring_errors(node, record, err)
            if file_srs is None and not el.xpath(".//@srsName"):
                err(f"{record}: no srsName (neither on the CityModel envelope nor in the building)")
            member = el.getparent()
            el.clear()
            if member is not None:
                while member.getprevious() is not None:
                    del member.getparent()[0]
    except etree.XMLSyntaxError as exc:
        err(f"line {exc.lineno}: not well-formed XML: {exc.msg}")
        return report
    if not root_checked and context.root is not None and \
            context.root.tag != f"{{{CORE_NS}}}CityModel":
        err(f"root element is {context.root.tag}, not {{{CORE_NS}}}CityModel (CityGML 2.0)")
    for href, where in hrefs.items():
        target = href[1:] if href.startswith("#") else None
        if target is None or target not in polygon_ids:
            err(f"{where}: xlink:href {href!r} does not resolve to a gml:Polygon in the file")
    return report


def _ring_errors(ring: etree._Element, record: str, err) -> None:
    line = ring.sourceline
    pos_list = ring.find(f"{{{GML_NS}}}posList")
    if pos_list is None:
        pos = ring.findall(f"{{{GML_NS}}}pos")
        if not pos:
            err(f"{record}: LinearRing without gml:posList (line {line})")
            return
        values = " ".join(p.text or "" for p in pos).split()
        dim = pos[0].get("srsDimension") or _ancestor_dim(ring)
    else:
        values = (pos_list.text or "").split()
        dim = pos_list.get("srsDimension") or _ancestor_dim(ring)
    if dim != "3":
        err(f"{record}: srsDimension is {dim or 'missing'}, not 3 (line {line})")
        return
    try:
        arr = np.array(values, dtype=float)
    except ValueError:
        err(f"{record}: posList holds text that is not a number (line {line})")
        return
    if arr.size % 3:
        err(f"{record}: posList has {arr.size} numbers, not a multiple of 3 (line {line})")
        return
    pts = arr.reshape(-1, 3)
    if len(pts) < 4:
        err(f"{record}: LinearRing has {len(pts)} positions, fewer than 4 (line {line})")
    elif not np.array_equal(pts[0], pts[-1]):
        err(f"{record}: LinearRing is not closed (first != last position) (line {line})")


def _ancestor_dim(node: etree._Element) -> str | None:
    while node is not None:
        d = node.get("srsDimension")
        if d:
            return d
        node = node.getparent()
    return None
