"""Hand-made variant files and a small hand-made city for the variant intake tests.

The city: the sample city's extent (EPSG:25832) with three buildings (20 m x 15 m boxes), two roads
and two trees. Geometry is written out here so that every expected value can be reasoned about.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from shapely.geometry import box

EXTENT = (681700.0, 5644700.0, 682300.0, 5645300.0)
CRS = "EPSG:25832"
SCHEMAS = Path(__file__).resolve().parent.parent.parent / "shared" / "schemas" / "cityjson-2.0.2"
#: the hand-made city: building id -> footprint (x0, y0, x1, y1)
BUILDINGS = {"DETHL-A": (681800.0, 5644800.0, 681820.0, 5644815.0),
             "DETHL-B": (681900.0, 5644800.0, 681920.0, 5644815.0),
             "DETHL-C": (682100.0, 5645100.0, 682120.0, 5645115.0)}
HEIGHTS = {"DETHL-A": (6.0, 10.0), "DETHL-B": (9.0, 9.0), "DETHL-C": (12.0, 16.0)}
ROADS = ("r1", "r2")
TREES = ("t1", "t2")
#: free space for new buildings (nothing of the city there)
FREE_X, FREE_Y = 682000.0, 5645000.0


def context(**limits):
    from citymodel.config import VariantSettings
    from citymodel.variants.validation import ValidationContext

    return ValidationContext(
        extent=EXTENT, processing_crs=CRS,
        building_footprints={k: box(*v) for k, v in BUILDINGS.items()},
        road_ids=frozenset(ROADS), tree_ids=frozenset(TREES), building_heights=HEIGHTS,
        limits=VariantSettings(**limits), cityjson_schema_dir=SCHEMAS if SCHEMAS.is_dir() else None)


def ring(x: float, y: float, w: float, h: float) -> list:
    """A closed counter-clockwise rectangle ring, lower-left corner (x, y)."""
    return [[x, y], [x + w, y], [x + w, y + h], [x, y + h], [x, y]]


def polygon(x: float, y: float, w: float, h: float) -> dict:
    return {"type": "Polygon", "coordinates": [ring(x, y, w, h)]}


def feature(geometry, **props) -> dict:
    return {"type": "Feature", "geometry": geometry, "properties": props}


def add(fid: str, x: float = FREE_X, y: float = FREE_Y, w: float = 20.0, h: float = 12.0, **props) -> dict:
    props = props or {"storeys": 4, "eave_height_m": 12.0, "ridge_height_m": 16.0, "roof_form": "3100"}
    return feature(polygon(x, y, w, h), change="add_building", id=fid, **props)


def doc(*features, vid: str = "quartier-test", crs: str | None = CRS, **meta) -> dict:
    d = {"type": "FeatureCollection", "schema_version": "1.0"}
    if crs is not None:
        d["crs"] = crs
    d["variant"] = {"id": vid, "title": "Testvariante", "author_role": "planning_office",
                    "created": "2026-12-06T10:00:00Z", "parent": None, **meta}
    d["features"] = list(features) or [add("neu-1")]
    return d


def good_doc(**meta) -> dict:
    """One of every change, all valid against :func:`context`."""
    return doc(add("neu-1"),
               feature(None, change="remove_building", building_id="DETHL-A"),
               feature(None, change="modify_building", building_id="DETHL-B", storeys=4, eave_height_m=12.0,
                       ridge_height_m=12.0, roof_form="1000"),
               feature(None, change="road_change", road_id="r1", factor=2),
               feature({"type": "LineString", "coordinates": [[681750.0, 5644750.0], [681750.0, 5644900.0]]},
                       change="road_change", id="neue-strasse", dtv=2000),
               feature({"type": "Point", "coordinates": [682050.0, 5645050.0]}, change="add_tree", height_m=12,
                       crown_diameter_m=6),
               feature(None, change="remove_tree", tree_id="t2"), **meta)


def dumps(d: dict) -> bytes:
    return json.dumps(d, ensure_ascii=False, indent=1).encode("utf-8")


def box_city(x0: float = FREE_X, y0: float = FREE_Y, w: float = 20.0, d: float = 12.0, h: float = 9.0,
             oid: str = "Entwurf_1", crs_code: int = 25832) -> dict:
    """A CityJSON 2.0 document of one box building (a valid Solid, outward faces), vertices in mm."""
    xs, ys = [0, w, w, 0], [0, 0, d, d]
    verts = [[round(x * 1000), round(y * 1000), 0] for x, y in zip(xs, ys)] + \
            [[round(x * 1000), round(y * 1000), round(h * 1000)] for x, y in zip(xs, ys)]
    shell = [[[0, 3, 2, 1]], [[4, 5, 6, 7]], [[0, 1, 5, 4]], [[1, 2, 6, 5]], [[2, 3, 7, 6]], [[3, 0, 4, 7]]]
    return {"type": "CityJSON", "version": "2.0",
            "transform": {"scale": [0.001, 0.001, 0.001], "translate": [x0, y0, 150.0]},
            "metadata": {"referenceSystem": f"https://www.opengis.net/def/crs/EPSG/0/{crs_code}"},
            "CityObjects": {oid: {"type": "Building", "geometry": [{
                "type": "Solid", "lod": "2", "boundaries": [shell],
                "semantics": {"surfaces": [{"type": "GroundSurface"}, {"type": "RoofSurface"},
                                           {"type": "WallSurface"}], "values": [[0, 1, 2, 2, 2, 2]]}}]}},
            "vertices": verts}


def cityjson_submission(**meta) -> dict:
    c = box_city()
    c["+variant"] = {"id": "entwurf-cad", "title": "CAD-Entwurf", "author_role": "planning_office",
                     "created": "2026-12-06T10:00:00Z", **meta}
    return c


def deep(d):
    return copy.deepcopy(d)
