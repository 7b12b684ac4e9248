"""The QGIS project and SLD styles of a release: written from Python, checked by QGIS itself.

A small release folder is made here (footprints, trees, tile index, a two-band noise grid,
isophones, sun hours, solar roofs, DIN EN 17037 per building, a flood depth raster). The project is
loaded with QGIS's own Python API (Debian ``python3-qgis``, run with the system python3 and
``QT_QPA_PLATFORM=offscreen``) from a copy of the release in another folder (relative paths): every
layer must be valid, with the renderer and the classes the style definitions give. Skipped with the
reason where QGIS is not installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from lxml import etree
from shapely.geometry import Point, Polygon, box

from citymodel.release.qgis import project_xml, release_layers, sld_documents, write_qgz
from citymodel.release.styles import hex_rgb, noise_raster_style, roof_type_style, solar_style
from citymodel.roofs import RoofForm
from citymodel.tiles3d.colormap import NOISE_BAND_COLORS, NOISE_BANDS_DB, SOLAR_COLORS, SUN_HOURS_COLORS

CRS = "EPSG:25832"
X0, Y0 = 681000.0, 5644000.0
SYSTEM_PYTHON = "/usr/bin/python3"
CHECK = Path(__file__).parent / "qgis_check.py"


def _tif(path: Path, bands: list[np.ndarray], descriptions=None) -> None:
    import rasterio
    from rasterio.transform import from_origin

    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = bands[0].shape
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=len(bands), dtype="float32",
                       crs=CRS, transform=from_origin(X0, Y0 + h * 10, 10, 10), nodata=-9999) as ds:
        for i, b in enumerate(bands, start=1):
            ds.write(b.astype("float32"), i)
            if descriptions:
                ds.set_band_description(i, descriptions[i - 1])


@pytest.fixture()
def release(tmp_path) -> Path:
    r = tmp_path / "release"
    (r / "data" / "analysis").mkdir(parents=True)
    polys = [box(X0 + 20 * i, Y0 + 20, X0 + 20 * i + 12, Y0 + 32) for i in range(7)]
    gpd.GeoDataFrame({"building_id": [f"b{i}" for i in range(7)], "roofType": [f.code for f in RoofForm],
                      "measured_height_m": [3.0, 7.0, 12.0, 16.0, 25.0, 40.0, 9.0]},
                     geometry=polys, crs=CRS).to_file(r / "data" / "buildings.gpkg", layer="buildings")
    gpd.GeoDataFrame({"tree_id": ["t1", "t2"], "height_m": [10.0, 14.0]},
                     geometry=[Point(X0 + 5, Y0 + 5), Point(X0 + 50, Y0 + 5)], crs=CRS).to_file(
        r / "data" / "trees.gpkg", layer="trees")
    gpd.GeoDataFrame({"tile_id": ["32_681_5644"]}, geometry=[box(X0, Y0, X0 + 1000, Y0 + 1000)], crs=CRS).to_file(
        r / "data" / "tile_index.geojson", driver="GeoJSON")
    lrt = np.linspace(30, 85, 100 * 100).reshape(100, 100)
    _tif(r / "data/analysis/noise.tif", [lrt, lrt - 10], ["LrT_dB", "LrN_dB"])
    _tif(r / "data/analysis/sun_hours.tif", [np.full((20, 20), 6.0), np.full((20, 20), 1.0)], ["03-21", "12-21"])
    _tif(r / "data/analysis/flood_depth_HQ100.tif", [np.linspace(0, 3, 400).reshape(20, 20)])
    iso = [(ind, lo) for ind in ("LrT", "LrN") for lo in (55.0, 60.0)]
    gpd.GeoDataFrame({"indicator": [i for i, _ in iso], "band_lo_db": [lo for _, lo in iso],
                      "band_hi_db": [lo + 5 for _, lo in iso], "label": [f"{lo:g}" for _, lo in iso]},
                     geometry=[box(X0 + 100 * k, Y0 + 100, X0 + 100 * k + 90, Y0 + 190) for k in range(4)],
                     crs=CRS).to_file(r / "data/analysis/noise_isophones.gpkg", layer="noise_isophones")
    gpd.GeoDataFrame({"building_id": ["b0", "b1"], "suitability": ["very suitable", "too small"]},
                     geometry=polys[:2], crs=CRS).to_file(r / "data/analysis/solar.gpkg", layer="solar")
    gpd.GeoDataFrame({"building_id": ["b0", "b1"], "din17037_level": ["high", "none"]},
                     geometry=polys[:2], crs=CRS).to_file(r / "data/analysis/building_values.gpkg",
                                                          layer="building_values")
    return r


def _write_project(release: Path) -> tuple[Path, list]:
    layers = release_layers(release, days=["03-21", "12-21"])
    qgz = release / "qgis" / "city.qgz"
    qgz.parent.mkdir(exist_ok=True)
    write_qgz(qgz, project_xml(layers, CRS, (X0, Y0, X0 + 1000, Y0 + 1000), "Musterstadt"))
    for rel, text in sld_documents(layers).items():
        (release / rel).parent.mkdir(exist_ok=True)
        (release / rel).write_text(text, encoding="utf-8")
    return qgz, layers


def test_layers_of_the_release_and_their_styles(release):
    qgz, layers = _write_project(release)
    ids = [lyr.id.rsplit("_", 1)[0] for lyr in layers]
    assert ids == ["tile_index", "trees", "isophones_lrn", "isophones_lrt", "noise_lrn", "noise_lrt", "solar",
                   "din17037", "sun_hours_2", "sun_hours_1", "flood_depth_HQ100", "buildings_roof_type",
                   "buildings_height"]
    # the project names relative paths only
    xml = zipfile.ZipFile(qgz).read("city.qgs").decode("utf-8")
    root = etree.fromstring(xml.split("\n", 1)[1].encode("utf-8"))
    sources = [e.text for e in root.iter("datasource")]
    assert sources and all(s.startswith("../data/") for s in sources)
    assert root.find("properties/Paths/Absolute").text == "false"
    # colours: from the 3D Tiles' definitions
    noise = noise_raster_style(1, "LrT")
    assert [r.rgba for r in noise.rules] == list(NOISE_BAND_COLORS)
    assert [r.lo for r in noise.rules] == list(NOISE_BANDS_DB)
    solar = {r.value: r.rgba for r in solar_style().rules}
    assert solar["very suitable"] == SOLAR_COLORS[3] and solar["suitable"] == SOLAR_COLORS[2]
    sun = next(lyr for lyr in layers if lyr.id.startswith("sun_hours_1_")).style
    assert [r.lo for r in sun.rules] == [0.0, 1.5, 3.0, 4.0, 6.0] and sun.rules[0].rgba == SUN_HOURS_COLORS[0]


def test_sld_files_are_sld_1_0_with_one_rule_per_class(release):
    _, layers = _write_project(release)
    files = sorted((release / "styles").glob("*.sld"))
    assert {f.stem for f in files} == {lyr.style.name for lyr in layers}
    ns = {"sld": "http://www.opengis.net/sld", "ogc": "http://www.opengis.net/ogc"}
    roof = etree.parse(str(release / "styles" / "buildings_roof_type.sld")).getroot()
    assert roof.tag == "{http://www.opengis.net/sld}StyledLayerDescriptor" and roof.get("version") == "1.0.0"
    rules = roof.findall(".//sld:Rule", ns)
    assert len(rules) == len(roof_type_style().rules)
    literals = [r.findtext(".//ogc:Literal", namespaces=ns) for r in rules]
    assert literals[:len(RoofForm)] == [str(f.code) for f in RoofForm]
    assert rules[-1].find("sld:ElseFilter", ns) is not None
    gable = rules[[f for f in RoofForm].index(RoofForm.GABLE)]
    assert gable.findtext(".//sld:Fill/sld:CssParameter[@name='fill']", namespaces=ns) == hex_rgb(
        roof_type_style().rules[2].rgba)
    noise = etree.parse(str(release / "styles" / "noise_lrt.sld")).getroot()
    cmap = noise.find(".//sld:ColorMap", ns)
    assert cmap.get("type") == "intervals"
    entries = cmap.findall("sld:ColorMapEntry", ns)
    assert [e.get("color") for e in entries[1:]] == [hex_rgb(c) for c in NOISE_BAND_COLORS]


def _qgis_available() -> str | None:
    if not Path(SYSTEM_PYTHON).exists():
        return f"{SYSTEM_PYTHON} not found"
    r = subprocess.run([SYSTEM_PYTHON, "-c", "import qgis.core"], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        return ("QGIS's Python API is not installed (Debian: apt-get install python3-qgis; `make install` does "
                "it as root): " + r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "import failed")
    return None


def _run_qgis(qgz: Path, slds: list[Path]) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(QT_QPA_PLATFORM="offscreen", XDG_RUNTIME_DIR=str(qgz.parent))
    r = subprocess.run([SYSTEM_PYTHON, str(CHECK), str(qgz), *map(str, slds)], capture_output=True, text=True,
                       env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def check_with_qgis(qgz: Path, slds: list[Path]) -> dict:
    """Load a project in QGIS (skip where QGIS is absent); every layer valid, the SLDs readable."""
    why = _qgis_available()
    if why:
        pytest.skip(why)
    out = _run_qgis(qgz, slds)
    assert out["read"] is True
    assert out["layers"], "the project holds no layer"
    bad = [lyr for lyr in out["layers"] if not lyr["valid"]]
    assert not bad, bad
    for path, res in out["sld"].items():
        assert res["ok"] in (True, None), (path, res)
    return out


def test_project_opens_in_qgis_with_every_layer_valid(release, tmp_path):
    _write_project(release)
    moved = tmp_path / "downloaded" / "release-copy"          # relative paths: another folder works
    shutil.copytree(release, moved)
    shutil.rmtree(release)
    out = check_with_qgis(moved / "qgis" / "city.qgz", sorted((moved / "styles").glob("*.sld")))
    assert out["crs"] == CRS
    by_name = {lyr["name"]: lyr for lyr in out["layers"]}
    assert len(out["layers"]) == 13
    roof = by_name["Gebäude nach Dachform"]
    assert roof["renderer"] == "categorizedSymbol" and roof["feature_count"] == 7
    assert [c[0] for c in roof["classes"]][:7] == [str(f.code) for f in RoofForm]
    assert by_name["Gebäude nach Höhe"]["renderer"] == "graduatedSymbol"
    lrt = by_name["Straßenlärm tags (LrT, RLS-19)"]
    assert lrt["type"] == "raster" and lrt["renderer"] == "singlebandpseudocolor" and lrt["band"] == 1
    colours = [c[1] for c in lrt["classes"] if c[2] > 0]
    assert colours == [hex_rgb(c) for c in NOISE_BAND_COLORS]
    assert by_name["Isophonen LrN"]["feature_count"] == 2     # the subset: LrN only
    assert by_name["Bäume"]["feature_count"] == 2
    assert all(lyr["source"].startswith(str(moved)) for lyr in out["layers"])
    # the vector SLDs load into QGIS as rule-based styles
    vector_slds = {p: r for p, r in out["sld"].items() if r["ok"] is not None}
    assert vector_slds and all(r["renderer"] in ("RuleRenderer", "singleSymbol") for r in vector_slds.values())
    assert out["sld"][str(moved / "styles" / "buildings_roof_type.sld")]["rules"] == len(RoofForm) + 1
