"""Checks of CityGML 2.0 files: XML schema validity and the structure the AdV profile requires.

:func:`validate_citygml_xsd` validates against the official XML schemas (CityGML 2.0, GML 3.1.1,
xAL), read from local copies without network; :func:`check_citygml_structure` checks, streaming,
the rules of the AdV profile that an XML schema cannot express (xlinks resolve, rings closed, ids
unique, element order, srsName present). Both return a :class:`ValidationReport` and check a zip
member by member.
"""

from __future__ import annotations

import os
import re
import zipfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

import numpy as np
from lxml import etree

from citymodel.errors import SourceDataError, dataset_error

from .namespaces import (BLDG_NS, CORE_NS, GEN_NS, GML_ID, GML_NS, XLINK_HREF, local_name,
                         tag_namespace)
from .xml_input import iterparse_untrusted, open_citygml_sources, parse_untrusted


def _default_schema_dir() -> Path:
    """The official CityGML 2.0 / GML 3.1.1 / xAL XSDs, unmodified, from the PyPI package
    ``citysmith`` (a dependency), laid out by their original URLs so imports resolve offline."""
    try:
        import citysmith
    except ImportError:  # pragma: no cover - citysmith is a declared dependency
        return Path(__file__).resolve().parent.parent / "schemas" / "citygml"
    return Path(citysmith.__file__).resolve().parent / "data" / "schemas"


SCHEMA_DIR = _default_schema_dir()


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
    for source, fh in open_citygml_sources(Path(path), "citygml check"):
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
    try:
        doc = parse_untrusted(_src(path), name=_name(path))
    except etree.XMLSyntaxError as exc:
        report.errors.append(f"line {exc.lineno}: not well-formed XML: {exc.msg}")
        return report
    except SourceDataError as exc:  # a DOCTYPE declaring entities
        report.errors.append(str(exc))
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
        ns, local = tag_namespace(child.tag), local_name(child.tag)
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
    try:
        context = iterparse_untrusted(_src(path), tags, name=_name(path))
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
            record = el.get(GML_ID) or f"building at line {el.sourceline}"
            for node in el.iter(tag=etree.Element):
                gid = node.get(GML_ID)
                if gid is not None:
                    if gid in ids:
                        err(f"gml:id {gid!r} is not unique (line {node.sourceline})")
                    ids.add(gid)
                    if node.tag == f"{{{GML_NS}}}Polygon":
                        polygon_ids.add(gid)
                href = node.get(XLINK_HREF)
                if href is not None:
                    hrefs.setdefault(href, f"{record} line {node.sourceline}")
                local = local_name(node.tag)
                if local in ("Building", "BuildingPart") and tag_namespace(node.tag) == BLDG_NS:
                    for e in _order_errors(node, node.get(GML_ID) or record):
                        err(e)
                elif local == "measuredHeight" and node.get("uom") is None:
                    if len(report.warnings) < max_errors:
                        report.warnings.append(f"{record}: measuredHeight has no uom "
                                               f"(line {node.sourceline})")
                elif local == "LinearRing" and tag_namespace(node.tag) == GML_NS:
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
    except SourceDataError as exc:  # a DOCTYPE declaring entities
        err(str(exc))
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
