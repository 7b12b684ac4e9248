"""A published planning variant made from real parts, laid out as the variant contract says
(variants/index.json, variants/<id>/<version>/variant.json, tiles/buildings, overlays, comparison/).

Used by the browser tests of the viewer until the variant pipeline publishes its demonstration
variants: the tileset is written by the project's own 3D Tiles writer from the release's buildings
(one removed as a ghost, its neighbours "affected") plus one new building made by the parametric
LoD2 builder, each feature carrying ``variant_status``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

VARIANT_ID = "testvariante-markt"
NEW_ID = "neu-1"


@dataclass
class VariantFixture:
    root: Path                  # the output folder (holds variants/)
    folder: Path                # variants/<id>/1/
    new_id: str
    new_lonlat: tuple[float, float]
    removed_id: str
    removed_lonlat: tuple[float, float]
    affected_ids: list[str]


def make_variant(output_dir: Path, settings, release_id: str) -> VariantFixture:
    """Write the variant into ``output_dir/variants``."""
    import geopandas as gpd
    import pyproj
    import shapely
    from shapely.geometry import box

    from assets.analysis import building_value_properties, building_values_by_id
    from assets.publish import building_records
    from citymodel.dtm import DtmMosaic
    from citymodel.legends import difference_classes
    from citymodel.lod2 import build_parametric
    from citymodel.overlays import write_overlay, write_overlay_index
    from citymodel.raster import write_geotiff
    from citymodel.tiles3d import write_building_tiles
    from citymodel.tiles3d.glb import PropertySpec
    from assets.staging import point_cloud_paths

    s = settings
    table = gpd.read_parquet(s.output_dir / "buildings" / "buildings.parquet")
    table = table[table["method"].astype(str) != "rejected"].reset_index(drop=True)
    x0, y0, x1, y1 = s.extent
    # the new building: the free spot (farthest from every footprint) in the middle of the extent
    xs, ys = np.meshgrid(np.linspace(x0 + 150, x1 - 150, 41), np.linspace(y0 + 150, y1 - 150, 41))
    pts = shapely.points(xs.ravel(), ys.ravel())
    tree = shapely.STRtree(table.geometry.values)
    _, dist = tree.query_nearest(pts, return_distance=True, all_matches=False)
    best = int(np.argmax(dist))
    cx, cy = float(xs.ravel()[best]), float(ys.ravel()[best])
    half = min(7.0, max(3.0, float(dist[best]) - 3.0))
    footprint = box(cx - half * 1.4, cy - half, cx + half * 1.4, cy + half)
    dtm = DtmMosaic([p for t in s.tile_ids if (p := point_cloud_paths(s, t)[1]).exists()])
    ground = float(np.nanmin(dtm(np.array(footprint.exterior.xy[0]), np.array(footprint.exterior.xy[1]))))
    solid, _note = build_parametric(footprint, ground, 12.0, 17.0, 3100, building_id=NEW_ID)
    # the removed building: the one nearest the new one; affected: its three next neighbours
    order = np.argsort(table.geometry.distance(shapely.Point(cx, cy)).to_numpy())
    removed_id = str(table.loc[order[0], "building_id"])
    affected = [str(table.loc[i, "building_id"]) for i in order[1:4]]
    records = {r["id"]: r for r in building_records(s)}
    values = building_values_by_id(s)
    out_records = []
    for bid, status in [(removed_id, "removed")] + [(a, "affected") for a in affected]:
        r = records[bid]
        attrs = dict(r["attributes"])
        attrs.update(values.get(bid, {}))
        attrs["variant_status"] = status
        out_records.append({"id": bid, "solid": r["solid"], "attributes": attrs, "valid": True})
    out_records.append({"id": NEW_ID, "solid": solid, "valid": True,
                        "attributes": {"building_id": NEW_ID, "roof_code": 3100, "eave_height_m": 12.0,
                                       "ridge_height_m": 17.0, "storeys": 4, "ground_height_m": ground,
                                       "measured_height_m": 17.0, "method": "lod2_parametric",
                                       "variant_status": "added"}})
    folder = output_dir / "variants" / VARIANT_ID / "1"
    props = list(building_value_properties(s)) + [
        PropertySpec("variant_status", "STRING", None, "", ("variant_status",), "added/modified/removed/affected")]
    write_building_tiles(out_records, folder / "tiles" / "buildings", crs=s.processing_crs,
                         vertical_crs=s.vertical_crs, extent=s.extent, properties=props)
    # a difference layer: 2 h less sun north of the new building (a stand-in for the computed one)
    cell = 2.0
    w, h = 60, 60
    from affine import Affine

    t = Affine(cell, 0, cx - w, 0, -cell, cy + h * cell - half)
    arr = np.zeros((h, w), dtype="float32")
    arr[: h // 2, w // 4: 3 * w // 4] = -2.0
    tif = folder / "comparison" / "sun_hours_mar21_diff.tif"
    tif.parent.mkdir(parents=True, exist_ok=True)
    write_geotiff(tif, arr, transform=t, crs=s.processing_crs, nodata=float("nan"))
    entry = write_overlay(tif, folder / "overlays", "sun_hours_mar21_diff", difference_classes(1.0, "h"),
                          title={"de": "Sonnenstunden 21. März: Differenz", "en": "sun hours 21 March: difference"},
                          source="comparison/sun_hours_mar21_diff.tif")
    write_overlay_index(folder / "overlays", [entry])
    (folder / "comparison" / "index.html").write_text("<!doctype html><html lang=de><title>Vergleich</title>"
                                                      "<h1>Vergleich</h1></html>", encoding="utf-8")
    to_ll = pyproj.Transformer.from_crs(s.processing_crs, "EPSG:4326", always_xy=True)
    new_ll = to_ll.transform(cx, cy)
    rp = table.loc[order[0]].geometry.representative_point()
    removed_ll = to_ll.transform(rp.x, rp.y)
    ring = [list(to_ll.transform(x, y)) for x, y in footprint.exterior.coords]
    geojson = {"type": "FeatureCollection", "schema_version": "1.0",
               "variant": {"id": VARIANT_ID, "title": "Testvariante Markt", "author_role": "planning_office",
                           "parent": None, "created": "2026-12-06T10:00:00Z"},
               "features": [{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
                             "properties": {"change": "add_building", "id": NEW_ID, "storeys": 4,
                                            "eave_height_m": 12.0, "ridge_height_m": 17.0, "roof_form": "3100"}},
                            {"type": "Feature", "geometry": None,
                             "properties": {"change": "remove_building", "building_id": removed_id}}]}
    (folder / "variant.geojson").write_text(json.dumps(geojson), encoding="utf-8")
    doc = {"schema_version": "1.0", "id": VARIANT_ID, "version": 1, "title": "Testvariante Markt",
           "author_role": "planning_office", "base_release": release_id, "added_ids": [NEW_ID],
           "removed_ids": [removed_id], "modified_ids": [], "replaced_ids": [removed_id] + affected,
           "camera": {"lon": new_ll[0], "lat": new_ll[1], "height_m": 250.0},
           "summary": {"buildings_added": 1, "buildings_removed": 1}, "comparison": "comparison/index.html"}
    (folder / "variant.json").write_text(json.dumps(doc), encoding="utf-8")
    index = {"schema_version": "1.0", "updated": "2026-12-06T10:00:00Z",
             "variants": [{"id": VARIANT_ID, "version": 1, "title": "Testvariante Markt",
                           "description": "Ein neues Haus am Markt, ein altes fällt weg.",
                           "author_role": "planning_office", "created": "2026-12-06T10:00:00Z",
                           "base_release": release_id, "path": f"{VARIANT_ID}/1/", "current": True,
                           "summary": doc["summary"]}]}
    (output_dir / "variants" / "index.json").write_text(json.dumps(index), encoding="utf-8")
    return VariantFixture(output_dir, folder, NEW_ID, tuple(new_ll), removed_id, tuple(removed_ll), affected)
