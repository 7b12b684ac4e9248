"""Streaming CityGML reader: ``bldg:Building`` elements into :class:`CityGMLBuilding` records.

:func:`iter_citygml` reads a plain ``.gml`` file or a zip holding them with
:func:`lxml.etree.iterparse`, one ``bldg:Building`` at a time, and frees each building once read,
so memory does not grow with the file. CityGML 2.0 and 1.0 are read. Each building gets its own
surfaces as a :class:`citymodel.geometry3d.Solid` (LoD2 where the file has it, else LoD1), its
parts, attributes, heights, 2D footprint and the CRS of its ``srsName`` (or of the configured
override); a building without usable geometry carries the ``reason`` instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from lxml import etree

from citymodel.errors import CRSError, SourceDataError, dataset_error
from citymodel.geometry3d import Solid, Surface

from .crs import CityGMLCRS, parse_srs_name
from .gml_geometry import PolygonIndex, surface_polygons
from .namespaces import (BLDG_NS_BY_VERSION, CORE_NS_BY_VERSION, GEN_NS_BY_VERSION, GML_ID, GML_NS,
                         VERSION_BY_BLDG_NS, local_name, tag_namespace)
from .surfaces import CANONICAL_KINDS, kind_by_normal
from .xml_input import iterparse_untrusted, open_citygml_sources

#: configuration key of the CRS override, named in the reader's error messages.
DEFAULT_CONFIG_KEY = "sources.lod2_reference.crs"


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
    core_ns, bldg_ns, gen_ns = (CORE_NS_BY_VERSION[version], BLDG_NS_BY_VERSION[version],
                                GEN_NS_BY_VERSION[version])
    b = CityGMLBuilding(building_id=el.get(GML_ID) or "", source_file=source, is_part=is_part)
    lod2_solid = lod1_solid = lod2_ms = lod1_ms = None
    semantic: list[tuple[str, etree._Element]] = []
    reasons: list[str] = []
    for child in el:
        tag = child.tag
        if not isinstance(tag, str):
            continue
        ns, local = tag_namespace(tag), local_name(tag)
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
                        semantic.append((local_name(surf.tag), surf))
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
            for pid, rings in surface_polygons(ms, polys):
                s = Surface(kind if kind in CANONICAL_KINDS else "RoofSurface", rings)
                if kind not in CANONICAL_KINDS:
                    s.attributes["citygml_kind"] = kind
                    s.kind = kind_by_normal(s)
                if pid:
                    kind_of[pid] = s.kind
                sem_surfaces.append(s)
        if lod2_solid is not None:
            for pid, rings in surface_polygons(lod2_solid, polys):
                s = Surface("WallSurface", rings)
                s.kind = kind_of.get(pid) if pid in kind_of else kind_by_normal(s)
                surfaces.append(s)
        elif sem_surfaces:
            surfaces = sem_surfaces
        elif lod2_ms is not None:
            surfaces = [Surface("WallSurface", rings) for _, rings in surface_polygons(lod2_ms, polys)]
            for s in surfaces:
                s.kind = kind_by_normal(s)
        elif lod1_solid is not None or lod1_ms is not None:
            lod = 1
            geom = lod1_solid if lod1_solid is not None else lod1_ms
            surfaces = [Surface("WallSurface", rings) for _, rings in surface_polygons(geom, polys)]
            for s in surfaces:
                s.kind = kind_by_normal(s)
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
                _read_gen_attribute(sub, local_name(sub.tag), gen_ns, attrs)
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
    tags = [f"{{{ns}}}Building" for ns in BLDG_NS_BY_VERSION.values()] + [f"{{{GML_NS}}}Envelope"]
    for source, fh in open_citygml_sources(path, dataset):
        file_srs: str | None = None
        seen_root = False
        context = iterparse_untrusted(fh, tags, remove_blank_text=True, name=source, dataset=dataset)
        try:
            for event, el in context:
                if not seen_root:
                    _check_root(el.getroottree().getroot(), source, dataset)
                    seen_root = True
                if local_name(el.tag) == "Envelope":
                    owner = el.getparent().getparent() if el.getparent() is not None else None
                    if owner is not None and owner.getparent() is None and el.get("srsName"):
                        file_srs = el.get("srsName")
                    continue
                version = VERSION_BY_BLDG_NS[tag_namespace(el.tag)]
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
    if (local_name(root.tag) != "CityModel"
            or tag_namespace(root.tag) not in CORE_NS_BY_VERSION.values()):
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
    polys = PolygonIndex((p.get(GML_ID), p) for p in el.iter(f"{{{GML_NS}}}Polygon",
                                                              f"{{{GML_NS}}}Triangle")
                         if p.get(GML_ID))
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
