"""The viewer's parts in the sample city's release (runs before test_pipeline_e2e changes a source):
the viewer and everything its config names are in the release, the terrain carries the buildings,
the overlays and portal configurations point at real files, the index page links the viewer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from citymodel.viewer.bundle import viewer_source


@pytest.fixture(scope="module")
def release(pipeline_city) -> Path:
    from citymodel.release import latest_release

    rel = latest_release(pipeline_city.settings.output_dir)
    assert rel is not None
    if not (rel / "viewer" / "index.html").exists():
        pytest.skip(f"the release has no viewer: {viewer_source().missing() or 'viewer.enabled is false'}")
    return rel


def test_the_viewer_and_everything_its_config_names_are_in_the_release(release):
    cfg = json.loads((release / "viewer" / "config.json").read_text(encoding="utf-8"))
    for rel in [t["url"] for t in cfg["tilesets"]] + [cfg["terrain"], cfg["overlays"], cfg["building_index"]]:
        assert (release / rel).is_file(), rel
    assert {t["name"] for t in cfg["tilesets"]} == {"buildings", "trees", "pointcloud", "solar", "facade_sun"}
    assert (release / "viewer" / "cesium" / "index.js").is_file()
    assert not (release / "viewer" / "cesium" / "Cesium.js").exists()
    # every colouring's property is a property of the building tiles, every legend has entries
    schema = json.loads((release / "tiles" / "buildings" / "tileset.json").read_text())["schema"]
    props = schema["classes"]["building"]["properties"]
    names = {c["name"] for c in cfg["colourings"]}
    assert {"roof_type", "height", "solar", "din17037", "noise_lrt", "tileset_solar", "tileset_facade_sun"} <= names
    for c in cfg["colourings"]:
        assert c["legend"]["items"], c["name"]
        if "property" in c:
            assert c["property"] in props, c["name"]
    # the viewer is in the checksums and the catalog, and the index page links it first
    sums = (release / "SHA256SUMS").read_text(encoding="utf-8")
    assert "viewer/index.html" in sums and "viewer/cesium/index.js" in sums and "overlays/index.json" in sums
    catalog = (release / "catalog.jsonld").read_text(encoding="utf-8")
    assert "viewer/index.html" in catalog
    page = (release / "index.html").read_text(encoding="utf-8")
    assert page.index("href='viewer/index.html'") < page.index("What is here")


def test_the_buildings_stand_on_the_terrain(release):
    """At each building's position the heightmap is at or a little above the building's ground
    height made ellipsoidal with the geoid model recorded in the building tiles (the reconstruction
    puts a building's base at the lowest ground around its footprint; the heightmap is the DTM grid):
    no building floats, none is sunk."""
    import csv

    from citymodel.tiles3d.geo import GeoidModel, GeoTransformer

    meta = json.loads((release / "terrain" / "heightmap.json").read_text())
    hm = np.fromfile(release / "terrain" / meta["data"], dtype="<f4").reshape(meta["height"], meta["width"])
    w, s, e, n = meta["rectangle_deg"]
    index = json.loads((release / "viewer" / "buildings.json").read_text())["buildings"]
    with open(release / "data" / "buildings.csv", encoding="utf-8") as f:
        ground = {r["building_id"]: float(r["ground_height_m"]) for r in csv.DictReader(f) if r["ground_height_m"]}
    tiles = json.loads((release / "tiles" / "buildings" / "tileset.json").read_text())
    geoid = tiles["asset"]["extras"]["geoid"]
    geo = GeoTransformer("EPSG:25832", GeoidModel(**geoid), "EPSG:7837")
    diffs = []
    for bid, lon, lat, _, _ in index:
        if bid not in ground:
            continue
        fx = (lon - w) / (e - w) * (meta["width"] - 1)
        fy = (n - lat) / (n - s) * (meta["height"] - 1)
        x0, y0 = int(fx), int(fy)
        tx, ty = fx - x0, fy - y0
        h = ((hm[y0, x0] * (1 - tx) + hm[y0, x0 + 1] * tx) * (1 - ty)
             + (hm[y0 + 1, x0] * (1 - tx) + hm[y0 + 1, x0 + 1] * tx) * ty)
        want = ground[bid] + float(geo.undulation(np.array([lon]), np.array([lat]))[0])
        diffs.append(h - want)
    diffs = np.array(diffs)
    assert len(diffs) > 100
    assert diffs.min() > -0.1, "a building floats above the terrain"
    # the heightmap is read at the building's centre, its ground height is the lowest ground around the
    # footprint: on the slope a large footprint (the multi-part hall of the hard cases, ~60 m across)
    # puts its centre a few metres higher than its lowest corner
    assert np.median(diffs) < 1.0 and np.percentile(diffs, 99) < 3.0 and diffs.max() < 5.0, \
        np.percentile(diffs, [50, 95, 99, 100])


def test_overlays_and_portal_configurations_point_at_release_files(release):
    from PIL import Image

    ov = json.loads((release / "overlays" / "index.json").read_text())["overlays"]
    names = {o["name"] for o in ov}
    assert {"sun_hours_0321", "noise_lrt", "noise_lrn"} <= names
    for o in ov:
        if "image" in o:
            img = Image.open(release / "overlays" / o["image"])
            assert img.mode == "RGBA" and list(img.size) == o["size_px"]
            assert (release / o["source"]).is_file()
            assert np.asarray(img)[..., 3].max() == 255  # something is drawn
        else:
            assert (release / "overlays" / o["geojson"]).is_file()
    services = json.loads((release / "portals" / "masterportal" / "services.json").read_text())
    vc = json.loads((release / "portals" / "vcmap" / "config.json").read_text())
    urls = [s["url"] for s in services] + [l["url"] for l in vc["layers"]]
    assert urls and all("/latest/" in u for u in urls)
    for u in urls:
        assert (release / u.split("/latest/", 1)[1]).is_file(), u
    assert {s["typ"] for s in services} == {"TileSet3D"}
