"""GML 3.1.1 geometry of a CityGML building as numpy rings.

Reads polygons with their exterior and interior rings (``gml:LinearRing`` with ``gml:posList``,
``gml:pos`` or the old ``gml:coordinates``), follows ``gml:OrientableSurface`` orientation and
resolves ``xlink:href`` references to polygons elsewhere in the same building.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from lxml import etree

from .namespaces import GML_ID, GML_NS, XLINK_HREF, local_name


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


class PolygonIndex(dict):
    """gml:id -> gml:Polygon element of one building, with a cache of parsed rings (a polygon is
    met twice: in the boundary surface and through the lod2Solid's xlink)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.rings: dict[str, list[np.ndarray]] = {}


def surface_polygons(geom_prop: etree._Element, polys: dict[str, etree._Element]
                     ) -> list[tuple[str | None, list[np.ndarray]]]:
    """Polygons of a geometry property (Solid / MultiSurface / CompositeSurface), xlinks resolved.

    Returns ``(polygon id, rings)`` in document order; raises ValueError on an unresolved xlink.
    """
    out: list[tuple[str | None, list[np.ndarray]]] = []
    cache = polys.rings if isinstance(polys, PolygonIndex) else {}

    def visit(node: etree._Element, reverse: bool) -> None:
        for child in node:
            if not isinstance(child.tag, str):
                continue
            local = local_name(child.tag)
            href = child.get(XLINK_HREF)
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
                pid = child.get(GML_ID)
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
                out.append((child.get(GML_ID), [r[::-1] for r in rings] if reverse else rings))
            else:
                visit(child, reverse)

    visit(geom_prop, False)
    return out
