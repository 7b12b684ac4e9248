"""The generated sample city: formats, determinism, and that the data agree with the ground truth."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import zipfile
from pathlib import Path

import laspy
import numpy as np
import pandas as pd
import pyogrio
import pyproj
import pytest
import rdflib
import shapely
import yaml
from lxml import etree

from citymodel.errors import ConfigError
from citymodel.samplecity import (DATASETS, EXTENT, LIDAR_AREA, generate, in_water, terrain_height,
                                  water_level)
from citymodel.samplecity import generator as gen
from citymodel.samplecity.layout import plan_city

PROJECT_ROOT = Path(__file__).resolve().parent.parent
FOUR_TILES = {"32_681_5644", "32_681_5645", "32_682_5644", "32_682_5645"}
FORM_CODES = {"flat": 1000, "shed": 2100, "gable": 3100, "hip": 3200, "half_hip": 3300, "mansard": 3400,
              "pyramid": 3500}


@pytest.fixture(scope="session")
def sample_city(tmp_path_factory):
    """The sample city, generated once per session (the lead may move this to conftest)."""
    city = generate(tmp_path_factory.mktemp("sample_city"), seed=2026, verbose=True)
    print(f"sample city generated in {city.seconds:.1f} s")
    assert city.generated
    return city


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def footprints(city) -> list:
    return [shapely.from_wkt(b["footprint_wkt"]) for b in city.buildings]


# ------------------------------------------------------------------------------------ run
def test_generation_time_and_reuse(sample_city):
    assert sample_city.seconds < 60.0
    again = generate(sample_city.out_dir, seed=2026, verbose=True)
    assert not again.generated and again.seconds < 5.0
    assert again.ground_truth == sample_city.ground_truth


def test_marker_detects_changed_file(sample_city, tmp_path):
    copy = tmp_path / "city"
    shutil.copytree(sample_city.out_dir, copy)
    assert gen._marker_valid(copy, 2026)
    assert not gen._marker_valid(copy, 2027)
    with open(copy / "files" / "baumkataster.csv", "a", encoding="utf-8") as fh:
        fh.write("\n")
    assert not gen._marker_valid(copy, 2026)


def test_deterministic_parts(sample_city, tmp_path):
    """Layout, vector files and one LiDAR tile regenerated into another folder are byte-identical."""
    plan = plan_city(2026)
    roles = gen._assign_roles(plan, np.random.default_rng([2026, 1]))
    files = tmp_path / "files"
    files.mkdir()
    gen._write_buildings(plan, roles, files / "gebaeude.gpkg")
    gen._write_trees(plan, roles, files / "baumkataster.csv")
    gen._write_lidar(plan, files, 2026, only={"32_682_5645"})
    for name in ("gebaeude.gpkg", "baumkataster.csv", "las_32_682_5645_1_th.laz"):
        assert sha256(files / name) == sha256(sample_city.out_dir / "files" / name), name
    assert [b.building_id for b in plan.buildings] == [b["building_id"] for b in sample_city.buildings]


@pytest.mark.slow
def test_deterministic_full(sample_city, tmp_path):
    other = generate(tmp_path / "again", seed=2026, verbose=True)
    m1 = json.loads((sample_city.out_dir / gen.MARKER).read_text())
    m2 = json.loads((other.out_dir / gen.MARKER).read_text())
    assert m1["files"] == m2["files"]


def test_bad_arguments(tmp_path):
    f = tmp_path / "not_a_folder"
    f.write_text("x")
    with pytest.raises(ConfigError, match="not a folder.*Fix:"):
        generate(f)
    with pytest.raises(ConfigError, match="seed.*Fix:"):
        generate(tmp_path / "x", seed=-1)


def test_cli_reuses(sample_city, capsys):
    from citymodel.samplecity.__main__ import main
    assert main([str(sample_city.out_dir)]) == 0
    out = capsys.readouterr().out
    assert "is complete" in out and "catalog.jsonld" in out


# ------------------------------------------------------------------------------------ plan
def test_buildings_as_promised(sample_city):
    gt = sample_city.ground_truth
    bs = sample_city.buildings
    assert 270 <= len(bs) <= 330
    forms: dict[str, int] = {}
    for b in bs:
        forms[b["roof_form"]] = forms.get(b["roof_form"], 0) + 1
        assert FORM_CODES[b["roof_form"]] == b["roof_code"]
    assert set(forms) == set(FORM_CODES) and min(forms.values()) >= 15, forms
    lt = [b for b in bs if b["archetype"] in ("L", "T")]
    assert len(lt) >= 15
    for b in lt:      # L/T: one footprint of six or eight corners
        n = len(shapely.from_wkt(b["footprint_wkt"]).exterior.coords) - 1
        assert n in (6, 8), (b["building_id"], n)
    multi = [b for b in bs if b["archetype"] == "multi"]
    assert len(multi) >= 10
    for b in multi:   # parts of different heights
        assert len({round(p["eave_m"], 2) for p in b["parts"]}) == len(b["parts"])
    # the four tiles each hold buildings; all inside the extent, none overlapping
    assert {b["tile_id"] for b in bs} == FOUR_TILES
    fps = footprints(sample_city)
    ext = shapely.box(*EXTENT)
    assert all(ext.contains(f) for f in fps)
    tree = shapely.STRtree(fps)
    pairs = tree.query(fps, predicate="dwithin", distance=1.0)
    ids = [b["building_id"] for b in bs]
    touching = {(b["building_id"], t) for b in bs for t in b.get("touches", [])}    # designed to touch
    assert all(i == j or (ids[i], ids[j]) in touching for i, j in pairs.T), "buildings closer than 1 m"
    covered = shapely.union_all(fps).area
    assert 25_000 < covered < 80_000
    # storeys consistent with heights; garages small and flat
    for b in bs:
        if b["archetype"] == "garage":
            assert b["roof_form"] == "flat" and b["footprint_area_m2"] < 30 and b["eave_height_m"] < 3.5
            assert b["function"] == "31001_2463"
        elif b["storeys"] is not None:            # the tower has none (AX_Turm)
            assert 2.5 <= b["eave_height_m"] / b["storeys"] <= 4.2, b
        assert b["ridge_height_m"] >= b["eave_height_m"]
        if b["roof_form"] == "flat" and b["n_parts"] == 1:
            assert b["ridge_height_m"] == b["eave_height_m"]
    # terrain min along the footprint
    for b, f in zip(bs[:40], fps[:40]):
        ring = np.asarray(shapely.segmentize(f.exterior, 0.25).coords)
        assert b["ground_height_m"] == pytest.approx(terrain_height(ring[:, 0], ring[:, 1]).min(), abs=0.02)
    assert gt["summary"]["flooded_hq100"] >= 2


def test_cases_of_issue_14(sample_city):
    """The hard cases: asymmetric gables, four-sided mansards, a lattice tower, touching pairs of very
    different heights, a large multi-part hall; east of x = 682000 (outside the official LoD2)."""
    bs = [b for b in sample_city.buildings if b.get("case")]
    assert sample_city.ground_truth["summary"]["cases"] == {"hall": 1, "touching_high": 2, "touching_low": 2,
                                                            "tower": 1, "mansard4": 2, "asym_gable": 3}
    assert len(sample_city.buildings) <= 320                 # a modest addition
    by_id = {b["building_id"]: b for b in sample_city.buildings}
    for b in bs:
        fp = shapely.from_wkt(b["footprint_wkt"])
        assert fp.representative_point().x >= 682000 and not b["in_lod2"] and b["lod2_status"] == "outside"
        main = b["parts"][0]
        if b["case"] == "asym_gable":
            assert b["roof_code"] == 3100 and main["eave2_m"] > main["eave_m"] + 0.5
            assert b["eave2_height_m"] == main["eave2_m"] and abs(main["ridge_offset_m"]) > 0.3
        if b["case"] == "mansard4":
            assert b["roof_code"] == 3400 and main["mansard_sides"] == 4
        if b["case"] == "tower":
            assert b["storeys"] is None and b["structure"] == "lattice" and b["function"].startswith("51001_")
            assert b["eave_height_m"] >= 2.5 * np.sqrt(b["footprint_area_m2"])
        if b["case"] == "hall":
            assert b["footprint_area_m2"] > 1000 and b["n_parts"] == 3 and b["clipped"]
            parts_area = sum(p["length_m"] * p["width_m"] for p in b["parts"])
            assert b["footprint_area_m2"] < parts_area - 1.0              # the cut corner
        if b["case"] in ("touching_high", "touching_low"):
            other = by_id[b["touches"][0]]
            shared = shapely.from_wkt(b["footprint_wkt"]).intersection(shapely.from_wkt(other["footprint_wkt"]))
            assert shared.length >= 3.0 and shared.area < 1e-6                  # a shared wall
            if b["case"] == "touching_high":
                assert b["overhang_m"] > 0 and b["eave_height_m"] > other["ridge_height_m"] + 8.0


def test_cases_in_lidar(sample_city):
    """The LiDAR shows what makes the cases hard: the tower has points over its whole height, and
    the higher building's overhang and wall are seen inside the lower one's footprint."""
    las = read_tile(sample_city, "32_682_5644")
    x, y, z = np.asarray(las.x), np.asarray(las.y), np.asarray(las.z)
    bs = {b["case"] + str(i): b for i, b in enumerate(sample_city.buildings) if b.get("case")}
    tower = next(b for b in bs.values() if b["case"] == "tower")
    fp = shapely.from_wkt(tower["footprint_wkt"])
    hag = z[shapely.contains_xy(fp, x, y)] - tower["ground_height_m"]
    hag = hag[hag > 2.0]
    top = tower["eave_height_m"]
    assert np.mean(np.abs(hag - top) < 0.2) < 0.5                     # most points are not on the top
    counts, _ = np.histogram(hag, bins=8, range=(2.0, top - 1.0))
    assert (counts > 0).all()                                          # and there are some at every height
    for low in (b for b in bs.values() if b["case"] == "touching_low"):
        high = next(b for b in sample_city.buildings if b["building_id"] == low["touches"][0])
        fp = shapely.from_wkt(low["footprint_wkt"])
        zin = z[shapely.contains_xy(fp, x, y)] - low["ground_height_m"]
        above = zin > low["ridge_height_m"] + 1.0
        assert 0.05 < above.mean() < 0.5, low["building_id"]           # the neighbour's edge and wall
        assert np.max(zin) >= high["eave_height_m"] - 1.0


def test_terrain_and_river():
    x, y = np.meshgrid(np.linspace(LIDAR_AREA[0], LIDAR_AREA[2], 200), np.linspace(LIDAR_AREA[1], LIDAR_AREA[3], 200))
    z = terrain_height(x, y)
    dry = ~in_water(x, y)
    assert 145 < z[dry].min() and z[dry].max() < 205
    assert z[dry].max() - z[dry].min() > 25           # sloped
    assert in_water(x, y).any() and in_water(x, y).mean() < 0.15
    wet = in_water(x, y)
    assert np.all(z[wet] <= water_level(y[wet]) + 1e-9)   # the bed is below the water
    # the river crosses the whole area from south to north
    assert in_water(x[0], y[0]).any() and in_water(x[-1], y[-1]).any()


# ------------------------------------------------------------------------------------ files
def test_alkis_geopackage(sample_city):
    path = sample_city.buildings_path
    info = pyogrio.read_info(path, layer="gebaeude")
    assert pyproj.CRS(info["crs"]).to_epsg() == 25832
    df = pyogrio.read_dataframe(path, layer="gebaeude")
    assert list(df.columns) == ["gml_id", "gebaeudefunktion", "anzahl_og", "dachform", "geometry"]
    assert len(df) == len(sample_city.buildings)
    assert df["gml_id"].str.fullmatch(r"DETHL51P0000\d{4}").all() and df["gml_id"].is_unique
    assert set(df["gebaeudefunktion"]) <= {"31001_1000", "31001_1010", "31001_2000", "31001_3000", "31001_2463",
                                           "51001_9999"}                 # the last: the tower (AX_Turm)
    bad = {r["field"]: r["record"] for r in sample_city.ground_truth["bad_records"]
           if r["dataset"] == DATASETS["buildings"]}
    invalid = df.loc[~df.geometry.is_valid, "gml_id"].tolist()
    assert invalid == [bad["geometry"]]
    assert "Self-intersection" in shapely.is_valid_reason(df.geometry[~df.geometry.is_valid].iloc[0])
    assert df.loc[df["anzahl_og"] == 99, "gml_id"].tolist() == [bad["anzahl_og"]]
    assert df["anzahl_og"].between(1, 8).sum() == len(df) - 2 and df["anzahl_og"].isna().sum() == 1   # 99, tower
    assert 0 < df["dachform"].isna().sum() < len(df) * 0.2
    assert set(df["dachform"].dropna()) <= {str(c) for c in FORM_CODES.values()}
    # valid footprints agree with the truth (union of the parts)
    truth = dict(zip([b["building_id"] for b in sample_city.buildings], footprints(sample_city)))
    for gid, geom in zip(df["gml_id"], df.geometry):
        if gid != bad["geometry"]:
            assert geom.symmetric_difference(truth[gid]).area < 0.05


_TILES: dict = {}


def read_tile(city, tile_id):
    """A LiDAR tile of the session's city, read once (LAZ decompression is the slow part)."""
    path = city.out_dir / "files" / f"las_{tile_id}_1_th.laz"
    if path not in _TILES:
        _TILES[path] = laspy.read(path)
    return _TILES[path]


def test_lidar_tiles_format(sample_city):
    names = sorted(p.name for p in sample_city.lidar_paths)
    assert names == sorted(f"las_{t}_1_th.laz" for t in FOUR_TILES)
    total, land_area = 0, 0.0
    for t in sorted(FOUR_TILES):
        las = read_tile(sample_city, t)
        h = las.header
        assert (h.version.major, h.version.minor) == (1, 4) and h.point_format.id == 6
        assert np.allclose(h.scales, 0.01)
        crs = h.parse_crs()
        assert crs is not None and crs.to_epsg() == 25832
        assert set(np.unique(las.classification)) == {1, 2}
        x, y = np.asarray(las.x), np.asarray(las.y)
        e, n = (int(v) * 1000 for v in t.split("_")[1:])
        b = (max(e, LIDAR_AREA[0]), max(n, LIDAR_AREA[1]), min(e + 1000, LIDAR_AREA[2]), min(n + 1000, LIDAR_AREA[3]))
        assert x.min() >= b[0] - 0.01 and x.max() <= b[2] + 0.01 and y.min() >= b[1] - 0.01 and y.max() <= b[3] + 0.01
        # density over the covered land (the water returns almost nothing)
        gx, gy = np.meshgrid(np.linspace(b[0], b[2], 300), np.linspace(b[1], b[3], 300))
        land = (b[2] - b[0]) * (b[3] - b[1]) * (1 - in_water(gx, gy).mean())
        assert 8.0 <= np.count_nonzero(~in_water(x, y)) / land <= 12.0
        total += len(x)
        land_area += land
    assert 8.0 <= total / land_area <= 12.0


def test_ground_points_on_terrain(sample_city):
    las = read_tile(sample_city, "32_681_5645")
    g = np.asarray(las.classification) == 2
    x, y, z = np.asarray(las.x)[g], np.asarray(las.y)[g], np.asarray(las.z)[g]
    dz = z - terrain_height(x, y)
    assert abs(np.mean(dz)) < 0.005
    assert 0.02 < np.std(dz) < 0.04                     # 3 cm noise
    assert np.max(np.abs(dz)) < 0.2
    # nothing but ground and low noise below the terrain
    other = ~g
    dz_other = np.asarray(las.z)[other] - terrain_height(np.asarray(las.x)[other], np.asarray(las.y)[other])
    low = dz_other < -0.5
    assert 10 <= low.sum() <= 100 and dz_other[low].min() >= -5.2
    assert ((dz_other > 19.5) & (dz_other < 80.5)).sum() >= 10  # birds


def test_roof_points_reach_ridge(sample_city):
    las = read_tile(sample_city, "32_681_5644")
    x, y, z = np.asarray(las.x), np.asarray(las.y), np.asarray(las.z)
    cls = np.asarray(las.classification)
    tested = 0
    for b in sample_city.buildings:
        if b["roof_form"] != "gable" or b["n_parts"] != 1 or b["overhanging_trees"] or b["tile_id"] != "32_681_5644":
            continue
        fp = shapely.from_wkt(b["footprint_wkt"])
        minx, miny, maxx, maxy = fp.bounds
        sel = (x > minx) & (x < maxx) & (y > miny) & (y < maxy)
        inside = shapely.contains_xy(fp.buffer(-0.3), x[sel], y[sel])
        zin = z[sel][inside]
        assert np.all(cls[sel][inside] == 1)
        ridge = b["ground_height_m"] + b["ridge_height_m"]
        eave = b["ground_height_m"] + b["eave_height_m"]
        birds = zin > ridge + 3.0           # the odd bird above a roof (birds fly 20-80 m above ground)
        assert birds.sum() <= 2
        zin = zin[~birds]
        assert zin.max() == pytest.approx(ridge, abs=0.15), b["building_id"]
        assert np.mean(zin > ridge - 0.3) > 0.01     # not one stray point: a band along the ridge
        assert np.percentile(zin, 1) == pytest.approx(eave, abs=0.6)
        tested += 1
    assert tested >= 5


def test_tree_crowns_in_lidar(sample_city):
    las = read_tile(sample_city, "32_682_5645")
    x, y, z = np.asarray(las.x), np.asarray(las.y), np.asarray(las.z)
    for t in sample_city.ground_truth["trees"][:150]:
        if not (682000 < t["x"] < 682300 and 5645000 < t["y"] < 5645300) or t["overhanging"]:
            continue
        near = np.hypot(x - t["x"], y - t["y"]) < 0.3 * t["crown_diameter_m"] / 2
        top = z[near].max() - t["ground_height_m"]
        assert top == pytest.approx(t["height_m"], abs=0.6), t["tree_id"]


def test_lod2_reference(sample_city):
    gt = sample_city.ground_truth
    with zipfile.ZipFile(sample_city.lod2_path) as zf:
        assert zf.namelist() == ["LoD2_32_680_5644_2_TH.gml"]
        root = etree.parse(io.BytesIO(zf.read("LoD2_32_680_5644_2_TH.gml"))).getroot()
    ns = {"bldg": "http://www.opengis.net/citygml/building/2.0", "gml": "http://www.opengis.net/gml"}
    heights = {}
    for el in root.iterfind(".//bldg:Building", ns):
        gid = el.get("{http://www.opengis.net/gml}id")
        heights[gid] = float(el.findtext("bldg:measuredHeight", namespaces=ns))
        assert el.findtext("bldg:roofType", namespaces=ns) in {str(c) for c in FORM_CODES.values()}
    in_lod2 = {b["building_id"] for b in sample_city.buildings if b["in_lod2"]}
    dem = gt["demolished_building_id"]
    assert set(heights) == in_lod2 | {dem}
    assert 0.5 <= len(in_lod2) / len(sample_city.buildings) <= 0.7
    status = {b["building_id"]: b["lod2_status"] for b in sample_city.buildings}
    assert sum(s == "new" for s in status.values()) == 1 and status[gt["lod2"]["new"]] == "new"
    assert gt["lod2"]["new"] not in heights
    assert dem not in status
    hb = sample_city.building(gt["lod2"]["heightened"]["building_id"])
    assert hb["lod2_status"] == "heightened"
    assert heights[hb["building_id"]] <= hb["ridge_height_m"] - 3.0
    for bid, h in heights.items():
        if status.get(bid) == "current":
            assert h == pytest.approx(sample_city.building(bid)["ridge_height_m"], abs=0.002)
    # the demolished building is in neither footprints nor LiDAR
    gpkg_ids = set(pyogrio.read_dataframe(sample_city.buildings_path, read_geometry=False)["gml_id"])
    assert dem not in gpkg_ids
    d = shapely.from_wkt(gt["lod2"]["demolished"]["footprint_wkt"])
    las = read_tile(sample_city, "32_681_5644") if d.centroid.y < 5645000 else read_tile(sample_city, "32_681_5645")
    x, y, z = np.asarray(las.x), np.asarray(las.y), np.asarray(las.z)
    inside = shapely.contains_xy(d.buffer(-0.5), x, y)
    assert inside.sum() > 100
    assert np.median(z[inside] - terrain_height(x[inside], y[inside])) < 0.5


def test_catalog(sample_city):
    text = sample_city.catalog_path.read_text(encoding="utf-8")
    doc = json.loads(text)
    assert isinstance(doc["@context"], dict)               # inline, nothing to fetch
    for p in ("dcat", "dct", "foaf", "spdx", "xsd", "adms", "dcatde", "locn"):
        assert p in doc["@context"]
    g = rdflib.Graph().parse(data=text, format="json-ld", publicID=sample_city.catalog_path.as_uri())
    DCAT = rdflib.Namespace("http://www.w3.org/ns/dcat#")
    DCT = rdflib.Namespace("http://purl.org/dc/terms/")
    SPDX = rdflib.Namespace("http://spdx.org/rdf/terms#")
    cats = list(g.subjects(rdflib.RDF.type, DCAT.Catalog))
    assert len(cats) == 1 and g.value(cats[0], DCT.title) is not None
    datasets = set(g.objects(cats[0], DCAT.dataset))
    ids = {str(g.value(d, DCT.identifier)) for d in datasets}
    cfg = yaml.safe_load((PROJECT_ROOT / "config" / "sample_city.yaml").read_text(encoding="utf-8"))
    assert {s["dataset"] for s in cfg["sources"].values()} <= ids
    assert ids == set(DATASETS.values())
    n_dist = 0
    for d in datasets:
        for p in (DCT.title, DCT.description, DCT.license, DCT.spatial):
            assert g.value(d, p) is not None, (d, p)
        assert g.value(d, DCT.modified).datatype == rdflib.XSD.dateTime
        for dist in g.objects(d, DCAT.distribution):
            n_dist += 1
            assert (dist, rdflib.RDF.type, DCAT.Distribution) in g
            url = str(g.value(dist, DCAT.downloadURL))
            assert url.startswith(sample_city.out_dir.as_uri() + "/files/")
            rel = json.dumps(doc).count(url.rsplit("/", 1)[1])
            assert rel >= 1
            path = Path(url.removeprefix("file://"))
            assert path.is_file()
            assert int(g.value(dist, DCAT.byteSize)) == path.stat().st_size
            assert g.value(dist, DCAT.byteSize).datatype == rdflib.XSD.decimal
            ck = g.value(dist, SPDX.checksum)
            assert str(g.value(ck, SPDX.algorithm)) == "http://spdx.org/rdf/terms#checksumAlgorithm_sha256"
            assert str(g.value(ck, SPDX.checksumValue)) == sha256(path)
            assert g.value(dist, DCT.modified).datatype == rdflib.XSD.dateTime
            assert g.value(dist, DCAT.mediaType) is not None and g.value(dist, DCT["format"]) is not None
    assert n_dist == 4 + 6 + 1 + 2  # 4 LiDAR tiles, 6 vector/LoD2 files, the weather year, 2 demonstration variants
    # relative download URLs in the document itself
    for d in doc["@graph"]:
        for dist in d.get("dcat:distribution", []):
            assert dist["dcat:downloadURL"]["@id"].startswith("files/")
    # also parses without any base (as a consumer with only the text would)
    assert len(rdflib.Graph().parse(data=text, format="json-ld")) > 100


def test_trees_csv(sample_city):
    df = pd.read_csv(sample_city.trees_path, sep=";", decimal=",", dtype={"baumnummer": str})
    assert list(df.columns) == ["baumnummer", "ga_lang", "baumhoehe", "kr_durchm", "st_umfang", "vitalitaet",
                                "geometrie"]
    assert 130 <= len(df) <= 170
    m = df["geometrie"].str.extract(r"^POINT \(([\d.]+) ([\d.]+)\)$").astype(float)
    north, east = m[0].to_numpy(), m[1].to_numpy()
    tr = pyproj.Transformer.from_crs("EPSG:3044", "EPSG:25832", always_xy=True)
    x, y = tr.transform(east, north)          # always_xy: easting first for EPSG:3044 as well
    x0, y0, x1, y1 = EXTENT
    assert np.all((x > x0) & (x < x1) & (y > y0) & (y < y1))
    truth = {t["tree_id"]: t for t in sample_city.ground_truth["trees"]}
    for i, tid in enumerate(df["baumnummer"]):
        assert (x[i], y[i]) == pytest.approx((truth[tid]["x"], truth[tid]["y"]), abs=0.011)
    bad = [r for r in sample_city.ground_truth["bad_records"] if r["dataset"] == DATASETS["trees"]]
    assert df.loc[df["baumhoehe"] == 75, "baumnummer"].tolist() == [bad[0]["record"]]
    ok = df["baumhoehe"] != 75
    assert df.loc[ok, "baumhoehe"].between(4, 30).all() and df["kr_durchm"].between(3, 15).all()
    # no trunk inside a building; some crowns overhang roofs
    fps = shapely.union_all(footprints(sample_city))
    assert not shapely.intersects_xy(fps, x, y).any()
    assert sum(t["overhanging"] for t in truth.values()) >= 3


def test_roads_flood_viewpoints(sample_city):
    roads = json.loads(sample_city.roads_path.read_text(encoding="utf-8"))
    assert roads["crs"]["properties"]["name"].endswith("25832")
    feats = roads["features"]
    assert 20 <= len(feats) <= 30
    keys = {"strassen_id", "name", "dtv", "m_tag", "m_nacht", "p1_tag", "p2_tag", "pkrad_tag", "p1_nacht",
            "p2_nacht", "pkrad_nacht", "v_pkw", "v_lkw", "belag"}
    for f in feats:
        assert set(f["properties"]) == keys and f["geometry"]["type"] == "LineString"
        assert f["properties"]["dtv"] > 0
    assert 0 < sum(f["properties"]["m_tag"] is None for f in feats) < len(feats)
    assert {f["properties"]["belag"] for f in feats} == {"SMA", "Asphaltbeton", "Pflaster"}

    flood = json.loads(sample_city.flood_zones_path.read_text(encoding="utf-8"))
    assert flood["crs"]["properties"]["name"].endswith("25832")
    zones = {(f["properties"]["szenario"], f["properties"]["gebiet_id"]): f for f in flood["features"]}
    assert {s for s, _ in zones} == {"HQ100", "HQextrem"}
    for (scen, gid), f in zones.items():
        geom = shapely.geometry.shape(f["geometry"])
        wsp = f["properties"]["wsp_m"]
        pts = shapely.get_coordinates(geom.buffer(-3).representative_point())
        # inside the zone the terrain is below the water surface, and the zone touches the river
        assert terrain_height(pts[:, 0], pts[:, 1])[0] < wsp
        assert in_water(*shapely.get_coordinates(geom.buffer(-1)).T).any() or geom.area > 1000
    area = {s: sum(shapely.geometry.shape(f["geometry"]).area for (sc, _), f in zones.items() if sc == s)
            for s in ("HQ100", "HQextrem")}
    assert area["HQextrem"] > area["HQ100"]
    flooded = [b for b in sample_city.buildings if b["flood_depth_m"].get("HQ100", 0) > 0]
    assert flooded
    hq = shapely.union_all([shapely.geometry.shape(f["geometry"]) for (s, _), f in zones.items() if s == "HQ100"])
    assert any(hq.intersects(shapely.from_wkt(b["footprint_wkt"])) for b in flooded)

    vp = json.loads(sample_city.viewpoints_path.read_text(encoding="utf-8"))
    assert vp["crs"]["properties"]["name"].endswith("25832")
    props = [f["properties"] for f in vp["features"]]
    targets = {p["sp_id"] for p in props if p["art"] == "ziel"}
    observers = [p for p in props if p["art"] == "beobachter"]
    assert targets and observers
    assert all(p["ziel_id"] in targets and 1.0 <= p["augenhoehe_m"] <= 2.0 for p in observers)
