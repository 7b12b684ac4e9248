"""Ground overlays (citymodel.overlays) and the colour classes behind them (citymodel.legends).

Expected positions come from pyproj (an independent transformation of known points), expected colours
from the legend entries (the published JSON), so an image whose colours disagreed with its legend
would fail.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pyproj
import pytest
import rasterio
from affine import Affine
from PIL import Image

from citymodel.errors import ConfigError, CRSError, SourceDataError
from citymodel.legends import (Categories, ColorClasses, difference_classes, flood_depth_classes, noise_classes,
                               roof_form_categories, sun_hours_classes)
from citymodel.overlays import render_overlay, write_overlay, write_overlay_index

X0, Y1 = 681700.0, 5645300.0  # north-west corner (EPSG:25832), near Jena's centre
CELL = 10.0


def _quadrants() -> np.ndarray:
    """40 x 40 cells: NW 47 dB, NE 52, SW 63, SE NaN; one cell of 90 dB in the NW quadrant."""
    a = np.full((40, 40), np.nan)
    a[:20, :20] = 47.0
    a[:20, 20:] = 52.0
    a[20:, :20] = 63.0
    a[5, 5] = 90.0
    return a


def _pixel(img, lon: float, lat: float) -> tuple[int, int]:
    w, s, e, n = img.rectangle_deg
    h, wd = img.rgba.shape[:2]
    col = int((lon - w) / (e - w) * wd)
    row = int((n - lat) / (n - s) * h)
    return row, col


def _lonlat(x: float, y: float) -> tuple[float, float]:
    return pyproj.Transformer.from_crs("EPSG:25832", "EPSG:4326", always_xy=True).transform(x, y)


def _legend_color(legend: list[dict], v: float) -> str:
    for e in legend:
        lo = -math.inf if e["from"] is None else e["from"]
        hi = math.inf if e["to"] is None else e["to"]
        if lo <= v < hi:
            return e["color"]
    return "transparent"


def test_overlay_is_in_wgs84_where_pyproj_puts_the_raster_and_coloured_like_its_legend():
    classes = noise_classes(45, 5)
    t = Affine(CELL, 0, X0, 0, -CELL, Y1)
    img = render_overlay(_quadrants(), t, "EPSG:25832", classes)
    # the rectangle holds the raster's four corners, transformed independently
    w, s, e, n = img.rectangle_deg
    for x, y in [(X0, Y1), (X0 + 400, Y1), (X0, Y1 - 400), (X0 + 400, Y1 - 400)]:
        lon, lat = _lonlat(x, y)
        assert w - 1e-9 <= lon <= e + 1e-9 and s - 1e-9 <= lat <= n + 1e-9
    # the centre of each quadrant lands on that quadrant's colour
    legend = classes.legend()
    for (x, y), value in [((X0 + 100, Y1 - 100), 47.0), ((X0 + 300, Y1 - 100), 52.0), ((X0 + 100, Y1 - 300), 63.0)]:
        r, c = _pixel(img, *_lonlat(x, y))
        assert img.values[r, c] == value
        assert "#%02x%02x%02x" % tuple(img.rgba[r, c, :3]) == _legend_color(legend, value)
        assert img.rgba[r, c, 3] == 255
    # no value -> transparent
    r, c = _pixel(img, *_lonlat(X0 + 300, Y1 - 300))
    assert np.isnan(img.values[r, c]) and img.rgba[r, c, 3] == 0
    # every opaque pixel's colour is the legend colour of its value
    ok = np.isfinite(img.values)
    for v in np.unique(img.values[ok]):
        cols = {tuple(p) for p in img.rgba[img.values == v][:, :3]}
        assert len(cols) == 1
        assert "#%02x%02x%02x" % cols.pop() == _legend_color(legend, v)


def test_values_below_the_lowest_class_and_transparent_classes_are_transparent():
    t = Affine(CELL, 0, X0, 0, -CELL, Y1)
    a = np.array([[30.0, 44.9], [45.0, 80.0]])
    img = render_overlay(a, t, "EPSG:25832", noise_classes(45, 5), max_side_px=64)
    alpha = {v: img.rgba[img.values == v][:, 3].max() for v in np.unique(img.values[np.isfinite(img.values)])}
    assert alpha[30.0] == 0 and alpha[44.9] == 0 and alpha[45.0] == 255 and alpha[80.0] == 255
    d = difference_classes(1.0, "h")
    img = render_overlay(np.array([[0.2, -0.49], [0.5, -3.0]]), t, "EPSG:25832", d, max_side_px=64)
    alpha = {v: img.rgba[img.values == v][:, 3].max() for v in np.unique(img.values[np.isfinite(img.values)])}
    assert alpha[0.2] == 0 and alpha[-0.49] == 0 and alpha[0.5] == 255 and alpha[-3.0] == 255


def test_write_overlay_reads_a_band_by_description_and_the_png_matches_the_legend(tmp_path):
    src = tmp_path / "noise.tif"
    t = Affine(CELL, 0, X0, 0, -CELL, Y1)
    a = _quadrants().astype("float32")
    with rasterio.open(src, "w", driver="GTiff", width=40, height=40, count=2, dtype="float32", crs="EPSG:25832",
                       transform=t, nodata=float("nan")) as ds:
        ds.write(a, 1)
        ds.write(a - 10.0, 2)
        ds.set_band_description(1, "LrT_dB")
        ds.set_band_description(2, "LrN_dB")
    classes = noise_classes(45, 5)
    entry = write_overlay(src, tmp_path / "overlays", "noise_lrn", classes, band="LrN_dB",
                          title={"de": "Lärm Nacht", "en": "noise night"}, source="data/analysis/noise.tif")
    assert entry["band"] == 2 and entry["image"] == "noise_lrn.png" and entry["unit"] == "dB(A)"
    assert entry["value_range"] == [37.0, 80.0]
    png = np.asarray(Image.open(tmp_path / "overlays" / "noise_lrn.png").convert("RGBA"))
    assert png.shape[1::-1] == tuple(entry["size_px"])
    # NW quadrant of band 2: 37 dB, below the lowest band: transparent; NE: 42 -> transparent; SW: 53
    w, s, e, n = entry["rectangle_deg"]
    lon, lat = _lonlat(X0 + 100, Y1 - 300)
    r = int((n - lat) / (n - s) * png.shape[0])
    c = int((lon - w) / (e - w) * png.shape[1])
    assert "#%02x%02x%02x" % tuple(png[r, c, :3]) == _legend_color(entry["legend"], 53.0)
    lon, lat = _lonlat(X0 + 100, Y1 - 100)
    r = int((n - lat) / (n - s) * png.shape[0])
    c = int((lon - w) / (e - w) * png.shape[1])
    assert png[r, c, 3] == 0
    index = write_overlay_index(tmp_path / "overlays", [entry])
    doc = json.loads(index.read_text())
    assert doc["overlays"][0]["name"] == "noise_lrn" and doc["schema_version"] == "1.0"


def test_bad_inputs_are_clear_errors(tmp_path):
    t = Affine(CELL, 0, X0, 0, -CELL, Y1)
    classes = flood_depth_classes()
    with pytest.raises(SourceDataError, match="does not exist"):
        write_overlay(tmp_path / "missing.tif", tmp_path, "flood", classes)
    with pytest.raises(ConfigError, match="not \\[a-z0-9_-\\]"):
        write_overlay(tmp_path / "missing.tif", tmp_path, "../evil", classes)
    src = tmp_path / "one.tif"
    with rasterio.open(src, "w", driver="GTiff", width=4, height=4, count=1, dtype="float32", crs="EPSG:25832",
                       transform=t) as ds:
        ds.write(np.ones((4, 4), dtype="float32"), 1)
    with pytest.raises(SourceDataError, match="band 3 does not exist"):
        write_overlay(src, tmp_path, "flood", classes, band=3)
    with pytest.raises(SourceDataError, match="no band described as 'LrT_dB'"):
        write_overlay(src, tmp_path, "flood", classes, band="LrT_dB")
    with pytest.raises(CRSError, match="no CRS"):
        render_overlay(np.ones((2, 2)), t, None, classes)
    with pytest.raises(SourceDataError, match="rotated"):
        render_overlay(np.ones((2, 2)), Affine(1, 0.5, X0, 0.5, -1, Y1), "EPSG:25832", classes)
    with pytest.raises(SourceDataError, match="2D raster"):
        render_overlay(np.ones(4), t, "EPSG:25832", classes)
    with pytest.raises(ConfigError, match="repeat"):
        write_overlay_index(tmp_path, [{"name": "a"}, {"name": "a"}])


def test_colour_classes_edges_and_validation():
    c = ColorClasses((0.0, 1.0, 2.0), ((0, 0, 0), (255, 255, 255)), unit="m")
    # [a, b): an edge value belongs to the upper class; outside and NaN to none
    assert c.classify([0.0, 0.999, 1.0, 1.999, 2.0, -0.1, np.nan]).tolist() == [0, 0, 1, 1, -1, -1, -1]
    assert c.legend()[0] == {"from": 0.0, "to": 1.0, "color": "#000000", "label": "0–1 m", "label_en": "0–1 m"}
    with pytest.raises(ConfigError, match="ascending"):
        ColorClasses((0.0, 0.0, 1.0), ((0, 0, 0), (1, 1, 1)))
    with pytest.raises(ConfigError, match="2 colours for 1 classes"):
        ColorClasses((0.0, 1.0), ((0, 0, 0), (1, 1, 1)))
    with pytest.raises(ConfigError, match="not an sRGB byte colour"):
        ColorClasses((0.0, 1.0), ((0, 0, 300),))
    with pytest.raises(ConfigError, match="repeat"):
        Categories(("a", "a"), ((0, 0, 0), (1, 1, 1)), (("a", "a"), ("b", "b")))
    with pytest.raises(ConfigError, match="step"):
        difference_classes(0.0, "h")
    with pytest.raises(ConfigError, match="step_db"):
        noise_classes(45, 0)


def test_named_classes_follow_their_sources():
    # noise bands are the isophone bands: lower edge and step from the configuration
    n = noise_classes(50, 10)
    assert n.edges[:3] == (50.0, 60.0, 70.0) and math.isinf(n.edges[-1])
    # sun hours on the ground: the DIN EN 17037 thresholds are class edges, and the colours are the
    # facade ramp's at the class's lower edge
    from citymodel.tiles3d.colormap import sun_hours_ramp

    s = sun_hours_classes(12.2)
    assert {1.5, 3.0, 4.0} <= set(s.edges)
    ramp = sun_hours_ramp(12.2, "")
    for lo, col in zip(s.edges[:-1], s.colors):
        assert tuple(col) == ramp.color_of(lo)
    # differences: symmetric, no change transparent, sign colours swap with more_is_better
    d = difference_classes(1.0, "dB", more_is_better=False)
    assert d.edges[1:-1] == (-2.0, -1.0, -0.5, 0.5, 1.0, 2.0)
    assert d.colors[3][3] == 0 and d.legend()[3]["color"] == "transparent"
    up = difference_classes(1.0, "h", more_is_better=True)
    assert d.colors[-1] == up.colors[0] and d.colors[0] == up.colors[-1]
    # roof forms: every AdV code the reconstruction writes, labelled in German and English
    r = roof_form_categories()
    assert r.color_of(3100.0) == r.color_of("3100") != r.color_of("9999") == r.other
    assert r.legend()[2]["label"] == {"de": "Satteldach", "en": "gable"}
