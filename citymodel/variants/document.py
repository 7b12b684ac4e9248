"""Variant documents (schema 1.0) to typed changes, and back to the stored GeoJSON.

:func:`parse_variant` reads a document that is already valid (:mod:`citymodel.variants.validation`
checks untrusted input first) into a :class:`~citymodel.variants.changes.Variant`, transforming
coordinates from the document's CRS (``"crs"``; default WGS84 longitude/latitude, RFC 7946) into the
processing CRS with ``always_xy=True``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely
from shapely.geometry import shape

from .changes import (ROAD_CHANGE_KEYS, AddBuilding, AddTree, ModifyBuilding, RemoveBuilding, RemoveTree,
                      RoadChange, Variant, VariantMeta)

DEFAULT_CRS = "EPSG:4326"


def document_crs(doc: dict) -> str:
    return str(doc.get("crs") or DEFAULT_CRS)


def transformer(doc: dict, processing_crs: str):
    """A function ``geom -> geom`` from the document's CRS to the processing CRS (2D)."""
    from pyproj import CRS, Transformer

    src = CRS(document_crs(doc))
    dst = CRS(processing_crs)
    if src.equals(dst):
        return lambda g: shapely.force_2d(g)
    t = Transformer.from_crs(src, dst, always_xy=True)

    def apply(g):
        return shapely.force_2d(shapely.transform(g, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1]))))
    return apply


def _geom(feature: dict, to_proc):
    g = feature.get("geometry")
    return None if g is None else to_proc(shape(g))


def _opt_int(v) -> int | None:
    return None if v is None else int(v)


def _opt_float(v) -> float | None:
    return None if v is None else float(v)


def parse_variant(doc: dict, processing_crs: str, *, version: int | None = None, sha256: str = "",
                  source_name: str = "") -> Variant:
    """The typed variant of a valid document (see the module docstring).

    A designed building (``design``, an inline CityJSON) without a footprint gets the footprint of
    its design (the union of its solids' ground surfaces, or their 2D hull) in the processing CRS.
    """
    meta = doc["variant"]
    parent = meta.get("parent") or {}
    vm = VariantMeta(id=meta["id"], title=meta["title"], author_role=meta["author_role"], created=meta["created"],
                     description=meta.get("description") or "", parent_id=parent.get("id"),
                     parent_version=parent.get("version"))
    to_proc = transformer(doc, processing_crs)
    changes: list = []
    for i, f in enumerate(doc["features"]):
        p = f["properties"]
        kind = p["change"]
        if kind == "add_building":
            fp = _geom(f, to_proc)
            if fp is None and p.get("design") is not None:
                fp = design_footprint(p["design"])
            changes.append(AddBuilding(i, p["id"], fp, storeys=_opt_int(p.get("storeys")),
                                       eave_height_m=_opt_float(p.get("eave_height_m")),
                                       ridge_height_m=_opt_float(p.get("ridge_height_m")),
                                       roof_form=int(p.get("roof_form", 1000)),
                                       ridge_direction_deg=_opt_float(p.get("ridge_direction_deg")),
                                       function_code=p.get("function_code"), name=p.get("name"),
                                       design=p.get("design")))
        elif kind == "remove_building":
            changes.append(RemoveBuilding(i, str(p["building_id"])))
        elif kind == "modify_building":
            changes.append(ModifyBuilding(i, str(p["building_id"]), footprint=_geom(f, to_proc),
                                          storeys=_opt_int(p.get("storeys")),
                                          eave_height_m=_opt_float(p.get("eave_height_m")),
                                          ridge_height_m=_opt_float(p.get("ridge_height_m")),
                                          roof_form=_opt_int(p.get("roof_form")),
                                          ridge_direction_deg=_opt_float(p.get("ridge_direction_deg")),
                                          function_code=p.get("function_code")))
        elif kind == "road_change":
            changes.append(RoadChange(i, road_id=None if p.get("road_id") is None else str(p["road_id"]),
                                      new_id=p.get("id"), geometry=_geom(f, to_proc),
                                      values={k: p[k] for k in ROAD_CHANGE_KEYS if k in p}))
        elif kind == "add_tree":
            changes.append(AddTree(i, p.get("id") or f"tree-{i}", _geom(f, to_proc), float(p["height_m"]),
                                   _opt_float(p.get("crown_diameter_m")), p.get("species")))
        elif kind == "remove_tree":
            changes.append(RemoveTree(i, str(p["tree_id"])))
    return Variant(vm, tuple(changes), sha256=sha256, source_name=source_name, version=version, document=doc)


def design_footprint(design: dict):
    """The 2D footprint of a designed CityJSON building: its GroundSurfaces, else the hull of all vertices."""
    from shapely.geometry import Polygon
    from shapely.ops import unary_union

    from ..cityjson import read_cityjson_document

    data = read_cityjson_document(design, dataset="variant design")
    grounds, pts = [], []
    for b in data.buildings:
        for obj in [b, *b.parts]:
            for s in obj.solids.values():
                for srf in s.surfaces:
                    pts.append(srf.rings[0][:, :2])
                    if srf.kind == "GroundSurface":
                        grounds.append(Polygon(srf.rings[0][:, :2]))
    if grounds:
        fp = unary_union([g.buffer(0) for g in grounds])
        if fp.geom_type == "Polygon":
            return fp
    return shapely.MultiPoint(np.concatenate(pts)).convex_hull if pts else None


def variant_document(variant: Variant) -> dict[str, Any]:
    """The stored document of a variant (as submitted)."""
    return variant.document or {}
