"""Two demonstration planning variants of the sample city, written as variant files (schema 1.0).

- ``variante-quartier-a.geojson``: a planning office's district in the inner courtyard of a block:
  two five-storey gable blocks, a nine-storey flat-roofed tower and a two-storey hall, a garage
  removed, a neighbouring house raised by one storey, three trees planted and one felled; in the
  processing CRS (EPSG:25832, as CAD tools export), with ``"crs"`` saying so.
- ``buergerentwurf-laermschutz.geojson``: a citizen's sketch: one three-storey house in another
  courtyard and a road change (half the traffic and 30 km/h on one street), in WGS84 longitude /
  latitude as the viewer's sketch tool writes it.

Placement is derived from the generated plan (free space inside block courtyards, away from
buildings and roads), so the variants stay valid when the layout changes. Deterministic.
"""

from __future__ import annotations

import json
from typing import Sequence

import numpy as np
import shapely
from shapely.geometry import Polygon, box
from shapely.ops import unary_union

from .layout import EXTENT

CREATED = "2026-12-01T09:00:00Z"
PLANNING_ID = "variante-quartier-a"
CITIZEN_ID = "buergerentwurf-laermschutz"
GAP_M = 5.0          # new buildings keep this distance to existing ones
ROAD_CLEAR_M = 12.0  # and this distance to road centre lines


def free_space(footprints: Sequence[Polygon], roads: Sequence, water) -> object:
    inner = box(EXTENT[0] + 20, EXTENT[1] + 20, EXTENT[2] - 20, EXTENT[3] - 20)
    blocked = unary_union([f.buffer(GAP_M) for f in footprints] + [r.buffer(ROAD_CLEAR_M) for r in roads]
                          + ([water] if water is not None else []))
    return inner.difference(blocked)


def place(free, sizes: Sequence[tuple[float, float]], start: tuple[float, float], step_m: float = 2.0,
           spacing_m: float = 8.0) -> list[Polygon]:
    """Axis-aligned rectangles of ``sizes`` inside ``free``, scanning rows from ``start`` (south-west),
    each at least ``spacing_m`` from the others. Raises where one does not fit."""
    placed: list[Polygon] = []
    minx, miny, maxx, maxy = free.bounds
    x0, y0 = max(minx, start[0]), max(miny, start[1])
    for w, h in sizes:
        done = False
        for y in np.arange(y0, maxy - h, step_m):
            for x in np.arange(x0, maxx - w, step_m):
                r = box(x, y, x + w, y + h)
                if free.contains(r) and all(r.distance(p) >= spacing_m for p in placed):
                    placed.append(r)
                    done = True
                    break
            if done:
                break
        if not done:
            raise ValueError(f"no free space for a {w} x {h} m building")
    return placed


def largest_courtyard(free, exclude=None) -> Polygon:
    parts = [p for p in shapely.get_parts(free) if exclude is None or not p.intersects(exclude)]
    parts = [p for p in parts if p.minimum_rotated_rectangle.area > 0]
    # a courtyard: roughly square free areas of 3,000-10,000 m², most compact first
    court = [p for p in parts if 3000 <= p.area <= 10000]
    court.sort(key=lambda p: (-round(p.area / p.minimum_rotated_rectangle.area, 2), p.bounds[1], p.bounds[0]))
    if not court:
        raise ValueError("no block courtyard with free space in the sample city")
    return court[0]


def _tree_spots(court, district, n: int, spacing_m: float = 8.0) -> list[tuple[float, float]]:
    """``n`` places for new trees in the courtyard, clear of the new buildings, nearest to them first."""
    inner = court.buffer(-3.0)
    minx, miny, maxx, maxy = court.bounds
    xs, ys = np.meshgrid(np.arange(minx, maxx, 2.0), np.arange(miny, maxy, 2.0))
    pts = [shapely.Point(x, y) for x, y in zip(xs.ravel(), ys.ravel())]
    ok = [p for p in pts if inner.contains(p) and p.distance(district) >= 6.0]
    ok.sort(key=lambda p: (round(p.distance(district), 3), p.y, p.x))
    out: list[shapely.Point] = []
    for p in ok:
        if all(p.distance(q) >= spacing_m for q in out):
            out.append(p)
        if len(out) == n:
            break
    return [(p.x, p.y) for p in out]


def _ring(poly: Polygon, to_wgs84=None) -> list:
    xy = np.asarray(poly.exterior.coords)
    if to_wgs84 is not None:
        lon, lat = to_wgs84.transform(xy[:, 0], xy[:, 1])
        return [[round(float(a), 8), round(float(b), 8)] for a, b in zip(lon, lat)]
    return [[round(float(a), 2), round(float(b), 2)] for a, b in xy]


def _feature(geom, props: dict) -> dict:
    return {"type": "Feature", "geometry": geom, "properties": props}


def demo_variants(buildings: Sequence[dict], roads: Sequence[dict], trees: Sequence[dict], water=None,
                  crs: str = "EPSG:25832") -> dict[str, dict]:
    """The two demonstration variants (file name -> variant document).

    Parameters
    ----------
    buildings : list of dict
        Ground-truth buildings (``building_id``, ``archetype``, ``storeys``, ``footprint`` shapely),
        without the deliberately bad records (they are quarantined: a variant cannot name them).
    roads : list of dict
        ``road_id``, ``name``, ``geometry`` (shapely line).
    trees : list of dict
        ``tree_id``, ``x``, ``y`` (without the bad records).
    water : shapely geometry, optional
        Where nothing can be built.
    """
    from pyproj import Transformer

    fps = [b["footprint"] for b in buildings]
    free = free_space(fps, [r["geometry"] for r in roads], water)
    court = largest_courtyard(free)
    cx, cy = court.bounds[0], court.bounds[1]
    # --------------------------------------------------------------------------- planning office
    blocks = place(court, [(30.0, 12.0), (30.0, 12.0), (16.0, 16.0), (24.0, 14.0)], (cx, cy))
    forms = [("3100", 5, 0.0), ("3100", 5, 0.0), ("1000", 9, None), ("1000", 2, None)]
    feats = []
    names = ["Haus A", "Haus B", "Turm", "Halle"]
    for k, (poly, (form, storeys, ridge_dir)) in enumerate(zip(blocks, forms)):
        props = {"change": "add_building", "id": f"neubau-{k + 1}", "name": names[k], "storeys": storeys,
                 "roof_form": form, "function_code": "31001_1000" if k < 3 else "31001_2000"}
        if form != "1000":
            props["ridge_direction_deg"] = 90.0  # ridges east-west: roofs face south
        feats.append(_feature({"type": "Polygon", "coordinates": [_ring(poly)]}, props))
    district = unary_union(blocks)
    near = sorted(buildings, key=lambda b: (b["footprint"].distance(district), b["building_id"]))
    garage = next((b for b in near if b["archetype"] == "garage"), None)
    if garage is not None:
        feats.append(_feature(None, {"change": "remove_building", "building_id": garage["building_id"],
                                     "reason": "Garage weicht dem neuen Quartier"}))
    house = next(b for b in near if b["archetype"] in ("gable", "hip", "flat", "shed")
                 and (garage is None or b["building_id"] != garage["building_id"]))
    feats.append(_feature(None, {"change": "modify_building", "building_id": house["building_id"],
                                 "storeys": int(house["storeys"]) + 1}))
    for k, (x, y) in enumerate(_tree_spots(court, district, 3)):
        feats.append(_feature({"type": "Point", "coordinates": [round(x, 2), round(y, 2)]},
                              {"change": "add_tree", "id": f"baum-neu-{k + 1}", "height_m": 8.0,
                               "crown_diameter_m": 5.0, "species": "Tilia cordata, Winter-Linde"}))
    felled = min(trees, key=lambda t: (shapely.Point(t["x"], t["y"]).distance(district), str(t["tree_id"])))
    feats.append(_feature(None, {"change": "remove_tree", "tree_id": str(felled["tree_id"])}))
    planning = {"type": "FeatureCollection", "schema_version": "1.0", "crs": crs,
                "variant": {"id": PLANNING_ID, "title": "Quartier im Blockinnenhof – Variante A",
                            "description": "Vier Neubauten (zwei fünfgeschossige Wohnhäuser mit Satteldach, ein "
                                           "neungeschossiger Turm, eine zweigeschossige Halle) im Blockinnenhof; "
                                           "eine Garage entfällt, ein Nachbarhaus wird um ein Geschoss aufgestockt.",
                            "author_role": "planning_office", "parent": None, "created": CREATED},
                "features": feats}
    # ---------------------------------------------------------------------------------- citizen
    free2 = free.difference(court.buffer(1.0))
    court2 = largest_courtyard(free2)
    house2 = place(court2, [(12.0, 10.0)], (court2.centroid.x - 6, court2.centroid.y - 5))[0]
    to_wgs = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    street = min(roads, key=lambda r: (r["geometry"].distance(house2), r["road_id"]))
    citizen = {"type": "FeatureCollection", "schema_version": "1.0",
               "variant": {"id": CITIZEN_ID, "title": "Bürgerentwurf: Wohnhaus und Tempo 30",
                           "description": f"Ein dreigeschossiges Wohnhaus im Innenhof; auf der {street['name']} "
                                          "halb so viel Verkehr und Tempo 30.",
                           "author_role": "citizen", "parent": None, "created": CREATED},
               "features": [
                   _feature({"type": "Polygon", "coordinates": [_ring(house2, to_wgs)]},
                            {"change": "add_building", "id": "wohnhaus-1", "storeys": 3, "roof_form": "3100",
                             "function_code": "31001_1010"}),
                   _feature(None, {"change": "road_change", "road_id": str(street["road_id"]), "factor": 0.5,
                                   "speed_car_kmh": 30, "speed_truck_kmh": 30})]}
    return {f"{PLANNING_ID}.geojson": planning, f"{CITIZEN_ID}.geojson": citizen}


def dumps(doc: dict) -> str:
    """The variant document as written (stable key order, UTF-8, one trailing newline)."""
    return json.dumps(doc, ensure_ascii=False, indent=1) + "\n"
