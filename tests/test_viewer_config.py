"""The Python side of the viewer: declarative building styles (evaluated by CesiumJS itself, in Node),
the viewer config, the terrain heightmap, the files of the bundle and the portal configurations."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pyproj
import pytest

from citymodel.config import PROJECT_ROOT
from citymodel.errors import ConfigError, SourceDataError
from citymodel.legends import (difference_classes, flood_depth_classes, height_classes, noise_classes,
                               roof_form_categories, din17037_categories)
from citymodel.tiles3d.colormap import NO_DATA_RGBA, solar_ramp, sun_hours_ramp
from citymodel.tiles3d.geo import GeoidModel, GeoTransformer
from citymodel.viewer.bundle import ViewerSource, viewer_files, viewer_source
from citymodel.viewer.portals import masterportal_services, vcmap_module
from citymodel.viewer.styles import tile_style
from citymodel.viewer.terrain import heightmap_grid, write_heightmap
from citymodel.viewer.viewconfig import attribute_labels, building_colourings, home_camera, viewer_config

CESIUM = PROJECT_ROOT / "viewer" / "node_modules" / "cesium"

_EVAL = r"""
const Cesium = require(process.argv[1]);
const jobs = JSON.parse(require("fs").readFileSync(0, "utf8"));
const out = jobs.map((d) => {
  const style = new Cesium.Cesium3DTileStyle(d.style);
  return d.values.map((v) => {
    const get = (n) => (n === d.prop && v !== null ? v : undefined);
    const f = { getProperty: get, getPropertyInherited: get };
    return style.color.evaluateColor(f, new Cesium.Color()).toBytes();
  });
});
process.stdout.write(JSON.stringify(out));
"""


def cesium_colours_many(jobs: list[tuple[dict, str, list]]) -> list[np.ndarray]:
    """Colours (RGBA bytes) CesiumJS's own style evaluator gives features with these values, for
    several ``(style, property, values)`` at once (one Node process)."""
    if shutil.which("node") is None or not (CESIUM / "package.json").is_file():
        pytest.skip("node or the viewer's cesium package is missing (npm ci --prefix viewer --ignore-scripts)")
    payload = json.dumps([{"style": st, "prop": p, "values": v} for st, p, v in jobs])
    r = subprocess.run(["node", "-e", _EVAL, str(CESIUM)], input=payload, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return [np.array(x, dtype=int) for x in json.loads(r.stdout)]


def cesium_colours(style: dict, prop: str, values: list) -> np.ndarray:
    return cesium_colours_many([(style, prop, values)])[0]


def _probe(edges) -> list[float]:
    vals = []
    for e in edges:
        if math.isfinite(e):
            vals += [e - 0.01, e, e + 0.01]
    fin = [e for e in edges if math.isfinite(e)]
    vals += [(a + b) / 2 for a, b in zip(fin, fin[1:])] + [fin[-1] + 100.0, fin[0] - 100.0]
    return vals


CLASSES = {"height": height_classes(), "noise": noise_classes(45, 5), "flood": flood_depth_classes(),
           "difference": difference_classes(1.0, "dB", more_is_better=False)}
RAMPS = {"solar": solar_ramp(1100.0), "sun": sun_hours_ramp(12.2, "2025-03-21")}


def _ramp_values(ramp) -> list[float]:
    return list(np.linspace(ramp.minimum - 50, ramp.maximum + 50, 61)) + list(ramp.values)


@pytest.fixture(scope="module")
def evaluated() -> dict:
    """Every class and ramp style evaluated by CesiumJS in one Node run."""
    jobs = [(tile_style(c, "v", no_data=-9999.0), "v", _probe(c.edges) + [None, -9999.0]) for c in CLASSES.values()]
    jobs += [(tile_style(r, "v", no_data=-9999.0), "v", _ramp_values(r) + [None]) for r in RAMPS.values()]
    got = cesium_colours_many(jobs)
    return dict(zip(list(CLASSES) + list(RAMPS), got))


@pytest.mark.parametrize("name", list(CLASSES))
def test_class_styles_colour_like_the_python_classes(name, evaluated):
    classes = CLASSES[name]
    values = _probe(classes.edges)
    got = evaluated[name]
    want = classes.colors_of(values).astype(int)
    nd = np.array(NO_DATA_RGBA)
    for v, g, w in zip(values, got, want):
        expect = nd if w[3] == 0 else w  # no class / transparent class: the no-data colour on a building
        assert g.tolist() == expect.tolist(), f"value {v}: Cesium {g.tolist()} vs Python {expect.tolist()}"
    assert got[-2].tolist() == nd.tolist() and got[-1].tolist() == nd.tolist()


@pytest.mark.parametrize("name", list(RAMPS))
def test_ramp_styles_interpolate_like_the_python_ramp(name, evaluated):
    ramp = RAMPS[name]
    got = evaluated[name]
    want = ramp.colors_of(_ramp_values(ramp)).astype(int)
    # CesiumJS mixes in float and rounds to bytes on output; the Python ramp rounds half to even
    assert np.abs(got[:-1] - want).max() <= 1
    assert got[-1].tolist() == list(ramp.no_data)


def test_category_styles_match_and_unknown_values_get_the_other_colour():
    cats = roof_form_categories()
    din = din17037_categories()
    values = list(cats.values) + ["9999", ""]
    got, got_din = cesium_colours_many([(tile_style(cats, "roofType", no_data=""), "roofType", values + [None]),
                                        (tile_style(din, "din17037Level", no_data=""), "din17037Level",
                                         ["high", "none"])])
    for v, g in zip(values, got):
        assert g.tolist() == list(cats.color_of(v) if v != "" else cats.no_data), v
    assert got_din.tolist() == [list(din.colors[3]), list(din.colors[0])]


def test_colourings_are_offered_only_for_the_properties_the_tiles_carry():
    props = {"id": {}, "roofType": {"noData": ""}, "measuredHeight": {"noData": -9999.0},
             "sunHoursMar21Max": {"noData": -9999.0}, "floodDepthMaxMHq100": {"noData": -9999.0}}
    cs = building_colourings(props, sun_days=["03-21", "06-21"], day_lengths_h={"03-21": 12.1},
                             solar_reference_kwh_m2a=1100.0)
    names = [c.name for c in cs]
    assert names == ["roof_type", "height", "facade_sun_03-21", "flood_hq100"]
    cfg = viewer_config(title="T", timezone="Europe/Berlin", year=2025, sun_days=["03-21"], storey_height_m=3.0,
                        extent_lonlat=(11.58, 50.92, 11.59, 50.93), ground_m=200.0, tilesets=[], colourings=cs,
                        properties=props, terrain=None, overlays=None, building_index=None)
    # the facade sun-hours legend ends at that day's length, as the analysis tileset's ramp does
    sun = next(c for c in cfg["colourings"] if c["name"] == "facade_sun_03-21")
    assert sun["legend"]["items"][-1]["value"] == 12.1
    # nothing depends on the time or the release id: two builds are identical
    again = viewer_config(title="T", timezone="Europe/Berlin", year=2025, sun_days=["03-21"], storey_height_m=3.0,
                          extent_lonlat=(11.58, 50.92, 11.59, 50.93), ground_m=200.0, tilesets=[], colourings=cs,
                          properties=props, terrain=None, overlays=None, building_index=None)
    assert json.dumps(cfg, sort_keys=True) == json.dumps(again, sort_keys=True)
    labels = {a["property"]: a for a in attribute_labels(props, ["03-21"])}
    assert labels["roofType"]["values"]["3100"] == {"de": "Satteldach", "en": "gable"}
    assert labels["floodDepthMaxMHq100"]["unit"] == "m" and "variant_status" in labels


def test_home_camera_looks_at_the_extent_from_the_south():
    w, s, e, n = 11.58, 50.92, 11.59, 50.93
    cam = home_camera((w, s, e, n), ground_m=150.0)
    assert w < cam["lon"] < e and cam["lat"] < (s + n) / 2 and cam["pitch_deg"] == -35.0
    # the line of sight (35 degrees down) meets the ground at the extent's centre
    back_m = ((s + n) / 2 - cam["lat"]) * 111_320.0
    assert (cam["height_m"] - 150.0) / back_m == pytest.approx(math.tan(math.radians(35.0)), rel=1e-3)


def test_heightmap_is_the_dtm_plus_the_geoid_at_every_node(tmp_path):
    extent = (681700.0, 5644700.0, 682300.0, 5645300.0)

    def plane(x, y):  # a tilted DTM, NaN outside the extent (as the DTM mosaic is)
        z = 150.0 + 0.01 * (x - extent[0]) + 0.02 * (y - extent[1])
        inside = (x >= extent[0]) & (x <= extent[2]) & (y >= extent[1]) & (y <= extent[3])
        return np.where(inside, z, np.nan)

    geo = GeoTransformer("EPSG:25832", GeoidModel("constant", undulation_m=47.5), "EPSG:7837")
    hm = heightmap_grid(plane, extent, "EPSG:25832", geo, cell_m=5.0)
    lon, lat = hm.node_lonlat()
    x, y = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:25832", always_xy=True).transform(lon, lat)
    z = plane(np.asarray(x), np.asarray(y))
    inside = np.isfinite(z)
    assert inside.mean() > 0.8
    assert np.abs(hm.heights[inside] - (z[inside] + 47.5)).max() < 1e-3
    # nodes outside the DTM take a DTM value (nearest node), never NaN
    assert np.all(np.isfinite(hm.heights)) and hm.filled == int((~inside).sum())
    assert hm.heights[~inside].min() >= 150.0 + 47.5 - 1e-3
    # the rectangle covers the extent (corners transformed independently)
    w, s, e, n = hm.rectangle_deg
    cx, cy = pyproj.Transformer.from_crs("EPSG:25832", "EPSG:4326", always_xy=True).transform(
        [extent[0], extent[2]], [extent[1], extent[3]])
    assert w <= min(cx) and e >= max(cx) and s <= min(cy) and n >= max(cy)
    path = write_heightmap(tmp_path, hm, geoid={"model": "constant"}, cell_m=5.0)
    doc = json.loads(path.read_text())
    raw = np.fromfile(tmp_path / doc["data"], dtype="<f4").reshape(doc["height"], doc["width"])
    assert np.array_equal(raw, hm.heights)
    with pytest.raises(SourceDataError, match="no value"):
        heightmap_grid(lambda x, y: np.full(np.shape(x), np.nan), extent, "EPSG:25832", geo, cell_m=50.0)
    with pytest.raises(ConfigError, match="cell size"):
        heightmap_grid(plane, extent, "EPSG:25832", geo, cell_m=0.0)
    with pytest.raises(ConfigError, match="larger viewer.terrain_cell_m"):
        heightmap_grid(plane, (0.0, 0.0, 1e6, 1e6), "EPSG:25832", geo, cell_m=0.1)


def test_the_bundle_takes_the_es_module_build_and_not_the_others(tmp_path):
    src = viewer_source()
    if src.missing():
        pytest.skip(src.missing())
    files = dict((rel, p) for p, rel in viewer_files(src))
    assert {"index.html", "js/main.js", "viewer.css", "cesium/index.js", "cesium/LICENSE.md"} <= set(files)
    assert any(r.startswith("cesium/Workers/") for r in files) and any(r.startswith("cesium/Assets/") for r in files)
    assert not any(r.endswith(("Cesium.js", "index.cjs")) for r in files)
    assert "config.json" not in files  # written per release
    # every module the app imports is in the bundle
    for rel, p in files.items():
        if rel.startswith("js/"):
            for imp in __import__("re").findall(r'from "(\.[^"]+)"', p.read_text(encoding="utf-8")):
                target = (Path("js") / imp).as_posix()
                norm = str(Path(__import__("os").path.normpath(target)).as_posix())
                assert norm in files, f"{rel} imports {imp}, not in the bundle"
    with pytest.raises(ConfigError, match="npm ci --prefix viewer"):
        viewer_files(ViewerSource(src.app_dir, tmp_path / "no-cesium"))


def test_portal_configurations_point_at_the_release_tilesets():
    tilesets = [{"name": "buildings", "url": "tiles/buildings/tileset.json", "kind": "buildings",
                 "title": {"de": "Gebäude", "en": "buildings"}, "show": True},
                {"name": "pointcloud", "url": "tiles/pointcloud/tileset.json", "kind": "pointcloud",
                 "title": {"de": "Punktwolke", "en": "point cloud"}, "show": False}]
    mp = masterportal_services(tilesets, base_url="https://geo.example.org/3d/", id_prefix="jena",
                               bbox=(681700, 5644700, 682300, 5645300), attribution="Stadt Jena",
                               gfi_attributes={"id": "Gebäude-ID"}, dataset_title="Jena")
    assert [e["typ"] for e in mp] == ["TileSet3D", "TileSet3D"]
    assert mp[0]["url"] == "https://geo.example.org/3d/latest/tiles/buildings/tileset.json"
    assert mp[0]["gfiAttributes"] == {"id": "Gebäude-ID"} and mp[1]["gfiAttributes"] == "showAll"
    assert len({e["id"] for e in mp}) == 2 and mp[0]["datasets"][0]["bbox"] == "681700.00,5644700.00,682300.00,5645300.00"
    style = {"name": "height", "title": {"de": "Höhe", "en": "height"}, "style": tile_style(height_classes(), "h"),
             "legend": {"items": [{"color": "#ffffcc", "label": "0–6 m"}]}}
    vc = vcmap_module(tilesets, [style], base_url="https://geo.example.org/3d/", name="jena",
                      home={"lon": 11.58, "lat": 50.92, "height_m": 500.0}, attribution="Stadt Jena")
    types = {l["name"]: l["type"] for l in vc["layers"]}
    assert types == {"jena_buildings": "CesiumTilesetLayer", "jena_pointcloud": "PointCloudLayer"}
    assert vc["styles"][0]["declarativeStyle"]["color"] == style["style"]["color"]
    assert vc["layers"][0]["properties"]["availableStyles"] == ["jena_height"]
    assert vc["startingViewpointName"] == vc["viewpoints"][0]["name"]


def test_viewer_settings_are_checked(tmp_path):
    import yaml

    from citymodel.config import DEFAULT_CONFIG, load_config

    raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))

    def load(viewer: dict):
        cfg = tmp_path / "c.yaml"
        cfg.write_text(yaml.safe_dump({**raw, "viewer": viewer}), encoding="utf-8")
        return load_config(cfg)

    s = load({"base_map": {"type": "wms", "url": "https://example.org/wms", "layers": "dop20"},
              "public_url": "https://geo.example.org/3d", "terrain_cell_m": 4})
    assert s.viewer.base_map.layers == "dop20" and s.viewer.public_url == "https://geo.example.org/3d/"
    assert load({}).viewer.base_map is None  # nothing online by default
    for bad, msg in [({"base_map": {"type": "wms", "url": "https://example.org/wms"}}, "needs 'layers'"),
                     ({"base_map": {"type": "wmts", "url": "https://x.org/wmts", "layer": "a"}}, "tile_matrix_set"),
                     ({"base_map": {"type": "wms", "url": "ftp://x.org", "layers": "a"}}, "not an http"),
                     ({"public_url": "geo.example.org"}, "not an http"), ({"terrain_cell_m": 0}, "terrain_cell_m"),
                     ({"basemap": {}}, "basemap")]:
        with pytest.raises(ConfigError, match=msg):
            load(bad)
