"""Streaming CityGML 2.0 writer in the AdV profile: plain ``.gml`` files and zipped tiles.

Buildings (:class:`citymodel.geometry3d.Solid` with semantic surfaces) are written one at a time
with :class:`lxml.etree.xmlfile`, so memory does not grow with the number of buildings
(:func:`write_citygml`, :func:`write_citygml_zip`). The ``core:CityModel`` envelope is known only at
the end: the writer reserves room for its corners and fills them in afterwards.

Element order inside ``bldg:Building`` follows the CityGML 2.0 schema (``building.xsd``):
``gml:name, gml:boundedBy, core:creationDate, core:externalReference, gen:*Attribute,
bldg:function, bldg:roofType, bldg:measuredHeight, bldg:storeysAboveGround, bldg:lod1Solid,
bldg:lod2Solid, bldg:boundedBy, bldg:consistsOfBuildingPart, bldg:address``.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Iterable

import numpy as np
from lxml import etree

from citymodel.errors import GeometryError, dataset_error
from citymodel.fileio import atomic_output
from citymodel.geometry3d import Solid

from .crs import srs_name_for
from .namespaces import (BLDG_NS, CORE_NS, GEN_NS, GML_ID, GML_NS, NSMAP, SCHEMA_LOCATION,
                         XLINK_HREF, XSI_NS)
from .surfaces import SEMANTIC_KINDS, kind_by_normal

#: ``core:externalReference/core:informationSystem`` of AdV tiles: the object is an ALKIS building.
ADV_ALKIS_INFORMATION_SYSTEM = "http://repository.gdi-de.org/schemas/adv/citygml/fdv/art.htm#_9100"
#: unit of ``bldg:measuredHeight`` in AdV tiles.
ADV_UOM_M = "urn:adv:uom:m"

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
    with out.el(f"{{{GML_NS}}}Polygon", {GML_ID: poly_id}):
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
                with out.el(f"{{{GML_NS}}}Solid", {GML_ID: f"{bid}_lod1"}):
                    with out.el(f"{{{GML_NS}}}exterior"):
                        with out.el(f"{{{GML_NS}}}CompositeSurface", {GML_ID: f"{bid}_lod1_cs"}):
                            for i, s in enumerate(solid.surfaces):
                                with out.el(f"{{{GML_NS}}}surfaceMember"):
                                    _polygon(out, f"{bid}_lod1_p{i}", s.rings, decimals)
        else:
            poly_ids = [f"{bid}_p{i}" for i in range(len(solid.surfaces))]
            with out.el(f"{{{BLDG_NS}}}lod2Solid"):
                with out.el(f"{{{GML_NS}}}Solid", {GML_ID: f"{bid}_solid"}):
                    with out.el(f"{{{GML_NS}}}exterior"):
                        with out.el(f"{{{GML_NS}}}CompositeSurface", {GML_ID: f"{bid}_cs"}):
                            for pid in poly_ids:
                                out.leaf(f"{{{GML_NS}}}surfaceMember", "", {XLINK_HREF: f"#{pid}"})
            for i, (s, pid) in enumerate(zip(solid.surfaces, poly_ids)):
                kind = s.kind if s.kind in SEMANTIC_KINDS else kind_by_normal(s)
                with out.el(f"{{{BLDG_NS}}}boundedBy"):
                    with out.el(f"{{{BLDG_NS}}}{kind}", {GML_ID: f"{bid}_s{i}"}):
                        out.leaf(f"{{{CORE_NS}}}creationDate", str(date))
                        with out.el(f"{{{BLDG_NS}}}lod2MultiSurface"):
                            with out.el(f"{{{GML_NS}}}MultiSurface", {GML_ID: f"{bid}_s{i}_ms"}):
                                with out.el(f"{{{GML_NS}}}surfaceMember"):
                                    _polygon(out, pid, s.rings, decimals)
    for part in b.get("parts") or []:
        pid = _check_id(part.get("id"), "building part id", bid)
        if pid in seen_ids:
            raise dataset_error(GeometryError, "citygml output", f"id {pid!r} is used twice",
                                "give every building and building part its own id", record=bid)
        seen_ids.add(pid)
        with out.el(f"{{{BLDG_NS}}}consistsOfBuildingPart"):
            with out.el(f"{{{BLDG_NS}}}BuildingPart", {GML_ID: pid}):
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
    bounds = [math.inf] * 3 + [-math.inf] * 3
    seen_ids: set[str] = set()
    placeholder = " " * _CORNER_WIDTH
    with atomic_output(path) as tmp:
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
                            with out.el(f"{{{BLDG_NS}}}Building", {GML_ID: bid}):
                                _abstract_building(out, b, is_part=False, default_date=default_date,
                                                   decimals=decimals, bounds=bounds,
                                                   seen_ids=seen_ids)
            fh.write(b"\n")
        _patch_envelope(tmp, bounds, decimals)
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
        with atomic_output(path) as tmp_zip:
            with zipfile.ZipFile(tmp_zip, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                zf.write(gml, arcname=member_name)
    return path
