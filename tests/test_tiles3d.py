"""3D Tiles 1.1 writers: geometry against pyproj, tile volumes, metadata, bad input, and the
independent validators (Khronos glTF-Validator, the official 3D Tiles schemas, CesiumGS
3d-tiles-tools)."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pyproj
import pytest
import shapely

from citymodel.errors import ConfigError, SourceDataError
from citymodel.geometry3d import Solid, Surface, prism
from citymodel.roofs import RoofForm, RoofPart, part_solid
from citymodel.tiles3d import geo as geo_mod
from citymodel.tiles3d import read_glb, resolve_geoid, triangulate_solid, validate_tileset_schema, write_building_tiles
from citymodel.tiles3d.trees import write_tree_tiles
from jsvalidators import JS_DIR, node_or_skip, run_node  # noqa: F401

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SCHEMA_DIR = PROJECT_ROOT.parent / "shared" / "schemas" / "3d-tiles-1.1"
E0, N0 = 682000.0, 5645000.0
TO_ECEF = pyproj.Transformer.from_crs("EPSG:25832", "EPSG:4978", always_xy=True)  # z taken as ellipsoidal
TO_GEOD = pyproj.Transformer.from_crs("EPSG:4978", "EPSG:4979", always_xy=True)


# ------------------------------------------------------------------------------ helpers
def accessor(doc: dict, binary: bytes, index: int) -> np.ndarray:
    acc = doc["accessors"][index]
    view = doc["bufferViews"][acc["bufferView"]]
    dtype = {5121: np.uint8, 5123: np.uint16, 5125: np.uint32, 5126: np.float32}[acc["componentType"]]
    k = {"SCALAR": 1, "VEC3": 3, "VEC4": 4}[acc["type"]]
    start = view["byteOffset"] + acc.get("byteOffset", 0)
    a = np.frombuffer(binary, dtype=dtype, count=acc["count"] * k, offset=start)
    return a.reshape(-1, k) if k > 1 else a


def view_bytes(doc: dict, binary: bytes, index: int) -> bytes:
    v = doc["bufferViews"][index]
    return binary[v["byteOffset"]: v["byteOffset"] + v["byteLength"]]


def walk(tile: dict, parents=()):
    yield tile, parents
    for c in tile.get("children", []):
        yield from walk(c, parents + (tile,))


def tile_matrix(chain) -> np.ndarray:
    m = np.eye(4)
    for t in chain:
        if "transform" in t:
            m = m @ np.array(t["transform"]).reshape(4, 4).T
    return m


Y_UP_TO_Z_UP = np.array([[1, 0, 0, 0], [0, 0, -1, 0], [0, 1, 0, 0], [0, 0, 0, 1]], dtype=float)


def content_ecef(tileset_dir: Path, tile: dict, parents) -> tuple[np.ndarray, dict, bytes]:
    """ECEF of every vertex of a tile's GLB content (node matrices are not used by the writer)."""
    doc, binary = read_glb((tileset_dir / tile["content"]["uri"]).read_bytes())
    assert all("matrix" not in n and "translation" not in n for n in doc["nodes"])
    pos = accessor(doc, binary, doc["meshes"][0]["primitives"][0]["attributes"]["POSITION"]).astype(float)
    m = tile_matrix(parents + (tile,)) @ Y_UP_TO_Z_UP
    return (np.c_[pos, np.ones(len(pos))] @ m.T)[:, :3], doc, binary


def write_gtx(path: Path, lat0: float, lon0: float, dlat: float, dlon: float, values: np.ndarray) -> None:
    """A PROJ GTX geoid grid (big-endian header + float32 rows from south to north)."""
    rows, cols = values.shape
    path.write_bytes(struct.pack(">4d2i", lat0, lon0, dlat, dlon, rows, cols)
                     + values.astype(">f4").tobytes())


def house(i: int, x: float, y: float, form=RoofForm.GABLE, angle=20.0) -> dict:
    ridge = 6.0 if form is RoofForm.FLAT else 10.0
    p = RoofPart(cx=x, cy=y, length_m=12.0, width_m=8.0, angle_deg=angle, ground_z=150.0 + i % 7, eave_m=6.0,
                 ridge_m=ridge, form=form)
    return {"id": f"B{i}", "solid": part_solid(p),
            "attributes": {"function_code": "31001_1010", "roof_code": form.code, "eave_height_m": 6.0,
                           "ridge_height_m": ridge, "ground_height_m": p.ground_z, "storeys": 2 if i % 3 else None,
                           "method": "parametric", "solar_kwh_a": 1000.0 + i}}


@pytest.fixture(autouse=True)
def no_system_grids(monkeypatch):
    """Grid search limited to explicit folders, so results do not depend on the machine."""
    monkeypatch.setattr(geo_mod, "_default_dirs", lambda: [])


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    """Houses over two grid tiles, one dense enough to be split into quadrants, plus bad records."""
    out = tmp_path_factory.mktemp("tiles3d") / "buildings"
    rng = np.random.default_rng(7)
    forms = [RoofForm.GABLE, RoofForm.HIP, RoofForm.MANSARD, RoofForm.FLAT, RoofForm.HALF_HIP, RoofForm.PYRAMID]
    recs = [house(i, E0 + rng.uniform(50, 950), N0 + rng.uniform(50, 950), angle=rng.uniform(0, 180),
                  form=forms[i % len(forms)]) for i in range(60)]
    recs += [house(100 + i, E0 + 1000 + 200 * i, N0 + 300) for i in range(3)]
    # bad records: flagged invalid, open shell (found by validate=True), non-finite coordinates
    bad_flag = house(200, E0 + 500, N0 + 500)
    bad_flag["valid"] = False
    open_shell = house(201, E0 + 520, N0 + 520)
    open_shell["solid"] = Solid([s for s in open_shell["solid"].surfaces if s.kind != "GroundSurface"])
    nan_solid = house(202, E0 + 540, N0 + 540)
    nan_solid["solid"].surfaces[0].rings[0][0, 2] = np.nan
    nan_solid["valid"] = True
    recs += [bad_flag, open_shell, nan_solid]
    info = write_building_tiles(recs, out, geoid=46.31, max_buildings_per_tile=25,
                                properties=[("solarKwhA", "FLOAT32")], validate=True)
    return out, info, recs


# ------------------------------------------------------------------------------ triangulation
def test_triangulation_of_a_box_is_closed_and_outward():
    solid = prism(np.array([[0, 0], [10, 0], [10, 6], [0, 6]], float), 100.0, 108.0)
    v, t, vs, kinds = triangulate_solid(solid)
    assert len(t) == 12
    tri = v[t]
    cr = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    area = 0.5 * np.linalg.norm(cr, axis=1).sum()
    assert area == pytest.approx(2 * 60 + 2 * 80 + 2 * 48)
    outward = ((tri.mean(axis=1) - [5, 3, 104]) * cr).sum(axis=1)
    assert np.all(outward > 0)
    # divergence theorem on the triangles: the box volume
    assert np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6 == pytest.approx(480.0)


def test_triangulation_of_non_convex_polygons_and_holes_keeps_the_area():
    l_shape = np.array([[0, 0], [20, 0], [20, 8], [8, 8], [8, 20], [0, 20]], float)
    hole = np.array([[2, 2], [5, 2], [5, 5], [2, 5]], float)
    solid = prism(l_shape, 0.0, 5.0, holes_xy=[hole])
    v, t, vs, kinds = triangulate_solid(solid)
    poly = shapely.Polygon(l_shape, [hole])
    tri = v[t]
    cr = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    roof = kinds[vs[t[:, 0]]] == 2
    assert 0.5 * np.linalg.norm(cr[roof], axis=1).sum() == pytest.approx(poly.area)
    assert np.all(cr[roof][:, 2] > 0)  # roof faces up
    ground = kinds[vs[t[:, 0]]] == 0
    assert np.all(cr[ground][:, 2] < 0)
    assert 0.5 * np.linalg.norm(cr, axis=1).sum() == pytest.approx(2 * poly.area + poly.length * 5.0)


# ------------------------------------------------------------------------------ geometry
@pytest.mark.parametrize("use_grid", [False, True])
def test_box_vertices_equal_pyproj_ecef(tmp_path, use_grid):
    """A 10 x 6 x 8 m box at a known place: GLB vertices through the tile transforms = pyproj ECEF."""
    x0, y0, ground = E0 + 400.0, N0 + 300.0, 155.0
    fp = np.array([[x0, y0], [x0 + 10, y0], [x0 + 10, y0 + 6], [x0, y0 + 6]])
    if use_grid:
        # synthetic geoid grid, linear in lon and lat (bilinear interpolation is exact): N = 40 + 2 dlon + 3 dlat
        lats = 50.0 + 0.25 * np.arange(8)
        lons = 11.0 + 0.25 * np.arange(8)
        values = 40.0 + 2.0 * (lons[None, :] - 11.0) + 3.0 * (lats[:, None] - 50.0)
        grid = tmp_path / "test_geoid.gtx"
        write_gtx(grid, 50.0, 11.0, 0.25, 0.25, values)
        geoid = str(grid)
        lon, lat = pyproj.Transformer.from_crs("EPSG:25832", "EPSG:4326", always_xy=True).transform(fp[:, 0], fp[:, 1])
        undulation = 40.0 + 2.0 * (np.asarray(lon) - 11.0) + 3.0 * (np.asarray(lat) - 50.0)
    else:
        geoid = 46.31
        undulation = np.full(4, 46.31)
    info = write_building_tiles([{"id": "box", "solid": prism(fp, ground, ground + 8.0), "attributes": {}}],
                                tmp_path / "t", geoid=geoid)
    ts = json.loads(info.tileset_path.read_text())
    assert ts["asset"]["version"] == "1.1"
    expected = np.vstack([np.column_stack(TO_ECEF.transform(fp[:, 0], fp[:, 1], ground + dz + undulation))
                          for dz in (0.0, 8.0)])
    leaves = [(t, p) for t, p in walk(ts["root"]) if "content" in t]
    assert len(leaves) == 1
    got, _, _ = content_ecef(info.tileset_path.parent, *leaves[0])
    d = np.linalg.norm(got[:, None, :] - expected[None, :, :], axis=2)
    assert d.min(axis=0).max() < 0.01  # every corner is a vertex (1 cm)
    assert d.min(axis=1).max() < 0.01  # every vertex is a corner
    assert ts["asset"]["extras"]["geoid"]["name"] == ("grid" if use_grid else "constant")


def test_every_vertex_lies_in_its_tile_and_content_volumes(city):
    out, info, _ = city
    ts = json.loads((out / "tileset.json").read_text())
    n_checked = 0
    for tile, parents in walk(ts["root"]):
        if "content" not in tile:
            continue
        ecef, _, _ = content_ecef(out, tile, parents)
        lon, lat, h = TO_GEOD.transform(ecef[:, 0], ecef[:, 1], ecef[:, 2])
        lon, lat = np.radians(lon), np.radians(lat)
        for t in (tile, *parents):
            w, s, e, n, hmin, hmax = t["boundingVolume"]["region"]
            assert np.all((lon >= w) & (lon <= e) & (lat >= s) & (lat <= n) & (h >= hmin) & (h <= hmax))
        w, s, e, n, hmin, hmax = tile["content"]["boundingVolume"]["region"]
        assert np.all((lon >= w) & (lon <= e) & (lat >= s) & (lat <= n) & (h >= hmin) & (h <= hmax))
        # tight: the region is no more than 10 cm larger than the content
        assert h.max() > hmax - 0.1 and h.min() < hmin + 0.1
        n_checked += len(ecef)
    assert n_checked > 1000


def test_hierarchy_quadtree_split_and_geometric_errors(city):
    out, info, recs = city
    ts = json.loads((out / "tileset.json").read_text())
    leaves = [t for t, _ in walk(ts["root"]) if "content" in t]
    assert info.n_content_tiles == len(leaves) and len(leaves) >= 4  # 60 houses > 25: split, plus tile 683_5645
    uris = {t["content"]["uri"] for t in leaves}
    assert "content/683_5645.glb" in uris
    assert any(u.startswith("content/682_5645_") for u in uris)
    for tile, parents in walk(ts["root"]):
        if "content" in tile:
            assert tile["geometricError"] == 0.0
        else:
            assert tile["geometricError"] > 0
            for c in tile["children"]:
                assert c["geometricError"] < tile["geometricError"]
    assert ts["geometricError"] > ts["root"]["geometricError"]
    assert info.n_features == 63 and sum(c["features"] for c in info.contents) == 63


def test_feature_ids_and_property_tables(city):
    out, info, recs = city
    by_id = {r["id"]: r for r in recs}
    ts = json.loads((out / "tileset.json").read_text())
    props = ts["schema"]["classes"]["building"]["properties"]
    assert props["storeys"] == {"type": "SCALAR", "componentType": "UINT8", "noData": 255,
                                "description": "storeys above ground"}
    assert props["solarKwhA"]["componentType"] == "FLOAT32"
    seen = set()
    for tile, parents in walk(ts["root"]):
        if "content" not in tile:
            continue
        doc, binary = read_glb((out / tile["content"]["uri"]).read_bytes())
        assert doc["extensionsUsed"] == ["EXT_mesh_features", "EXT_structural_metadata"]
        prim = doc["meshes"][0]["primitives"][0]
        table = doc["extensions"]["EXT_structural_metadata"]["propertyTables"][0]
        p = table["properties"]
        offs = np.frombuffer(view_bytes(doc, binary, p["id"]["stringOffsets"]), dtype=np.uint32)
        text = view_bytes(doc, binary, p["id"]["values"])
        ids = [text[offs[i]:offs[i + 1]].decode() for i in range(table["count"])]
        storeys = np.frombuffer(view_bytes(doc, binary, p["storeys"]["values"]), dtype=np.uint8)
        solar = np.frombuffer(view_bytes(doc, binary, p["solarKwhA"]["values"]), dtype=np.float32)
        fid = accessor(doc, binary, prim["attributes"]["_FEATURE_ID_0"]).astype(int)
        kind = accessor(doc, binary, prim["attributes"]["_FEATURE_ID_1"]).astype(int)
        colour = accessor(doc, binary, prim["attributes"]["COLOR_0"])
        ecef, _, _ = content_ecef(out, tile, parents)
        back = pyproj.Transformer.from_crs("EPSG:4978", "EPSG:25832", always_xy=True)
        x, y, _ = back.transform(ecef[:, 0], ecef[:, 1], ecef[:, 2])
        for f, rid in enumerate(ids):
            rec = by_id[rid]
            want = rec["attributes"]["storeys"]
            assert storeys[f] == (255 if want is None else want)
            assert solar[f] == pytest.approx(rec["attributes"]["solar_kwh_a"])
            # the vertices of feature f are the corners of building rid
            lo = rec["solid"].vertices_array().min(axis=0) - 0.01
            hi = rec["solid"].vertices_array().max(axis=0) + 0.01
            sel = fid == f
            assert sel.any()
            assert np.all((x[sel] >= lo[0]) & (x[sel] <= hi[0]) & (y[sel] >= lo[1]) & (y[sel] <= hi[1]))
        # surface kinds: roofs red-brown, walls light grey; roofs are above the walls' base
        assert set(np.unique(kind)) <= {0, 1, 2}
        assert np.all(colour[kind == 2] == [150, 62, 44, 255]) and np.all(colour[kind == 1] == [224, 224, 220, 255])
        seen.update(ids)
    assert len(seen) == 63


def test_invalid_buildings_are_left_out_and_reported(city):
    out, info, _ = city
    reasons = {s["id"]: s["reason"] for s in info.skipped}
    assert set(reasons) == {"B200", "B201", "B202"}
    assert "flagged" in reasons["B200"]
    assert "302" in reasons["B201"]  # SHELL_NOT_CLOSED from the val3dity-style validator
    assert "not finite" in reasons["B202"]
    ts = json.loads((out / "tileset.json").read_text())
    assert {s["id"] for s in ts["asset"]["extras"]["skipped"]} == set(reasons)


def test_valid_ids_list_filters(tmp_path):
    recs = [house(i, E0 + 100 + 30 * i, N0 + 100) for i in range(4)]
    info = write_building_tiles(recs, tmp_path / "t", geoid=46.31, valid_ids=["B0", "B2"])
    assert info.n_features == 2
    assert {s["id"] for s in info.skipped} == {"B1", "B3"}


def test_empty_input_writes_an_empty_tileset_or_says_what_is_missing(tmp_path):
    info = write_building_tiles([], tmp_path / "t", geoid=46.31, extent=(E0, N0, E0 + 1000, N0 + 1000))
    ts = json.loads(info.tileset_path.read_text())
    assert "content" not in ts["root"] and info.n_content_tiles == 0
    if SCHEMA_DIR.is_dir():
        assert validate_tileset_schema(ts, SCHEMA_DIR) == []
    with pytest.raises(ConfigError, match=r"dataset '3D Tiles buildings'.*Fix: pass extent"):
        write_building_tiles([], tmp_path / "u", geoid=46.31)


def test_bad_records_raise_errors_naming_the_record(tmp_path):
    with pytest.raises(ConfigError, match=r"record '#0'.*Fix: give every building an 'id'"):
        write_building_tiles([{"solid": prism(np.eye(3)[:, :2] * 5, 0, 1)}], tmp_path / "a", geoid=46.31)
    with pytest.raises(ConfigError, match=r"record 'X'.*not a Solid"):
        write_building_tiles([{"id": "X", "solid": None}], tmp_path / "b", geoid=46.31)
    r = house(1, E0 + 10, N0 + 10)
    with pytest.raises(ConfigError, match=r"record 'B1'.*twice"):
        write_building_tiles([r, dict(r)], tmp_path / "c", geoid=46.31)
    bad = house(2, E0 + 10, N0 + 10)
    bad["attributes"]["storeys"] = 300
    with pytest.raises(ConfigError, match=r"record 'B2'.*storeys.*UINT8"):
        write_building_tiles([bad], tmp_path / "d", geoid=46.31)


# ------------------------------------------------------------------------------ geoid
def test_missing_geoid_grid_falls_back_to_a_recorded_constant(tmp_path):
    model = resolve_geoid("auto", search_dirs=[tmp_path], fallback_undulation_m=47.0)
    assert model.name == "constant" and model.fallback and model.undulation_m == 47.0
    assert "no geoid grid found" in model.note
    info = write_building_tiles([house(0, E0 + 10, N0 + 10)], tmp_path / "t", geoid="GCG2016",
                                geoid_search_dirs=[tmp_path])
    extras = json.loads(info.tileset_path.read_text())["asset"]["extras"]
    assert extras["geoid"]["fallback"] is True and info.geoid["fallback"] is True
    with pytest.raises(ConfigError, match="geoid model"):
        resolve_geoid(str(tmp_path / "absent.gtx"))
    with pytest.raises(ConfigError, match="unknown geoid model"):
        resolve_geoid("EGM2020")


def test_egm96_is_found_as_fallback_for_gcg2016(tmp_path):
    write_gtx(tmp_path / "egm96_15.gtx", 50.0, 11.0, 0.5, 0.5, np.full((4, 4), 46.0))
    model = resolve_geoid("auto", search_dirs=[tmp_path])
    assert model.name == "EGM96" and model.fallback and "de_bkg_gcg2016.tif" in model.note
    write_gtx(tmp_path / "de_bkg_gcg2016.tif", 50.0, 11.0, 0.5, 0.5, np.full((4, 4), 46.0))
    assert resolve_geoid("auto", search_dirs=[tmp_path]).name == "GCG2016"


def test_real_egm96_grid_at_jena(monkeypatch):
    monkeypatch.undo()
    path = geo_mod.find_grid(geo_mod.GEOID_GRIDS["EGM96"])
    if path is None:
        pytest.skip("no EGM96 grid on this machine (Debian package proj-data installs egm96_15.gtx)")
    t = geo_mod.GeoTransformer("EPSG:25832", resolve_geoid("EGM96"))
    lon, lat, h = t.to_geodetic(np.array([E0]), np.array([N0]), np.array([0.0]))
    assert 45.0 < h[0] < 48.0  # EGM96 undulation in Thuringia


# ------------------------------------------------------------------------------ trees
def test_trees_instanced_at_pyproj_positions(tmp_path):
    rng = np.random.default_rng(3)
    recs = [{"tree_id": f"T{i}", "x": E0 + rng.uniform(0, 1800), "y": N0 + rng.uniform(0, 900),
             "height_m": float(rng.uniform(5, 25)), "crown_diameter_m": float(rng.uniform(3, 12)),
             "species": "Tilia", "trunk_circumference_cm": 120.0} for i in range(40)]
    recs.append({"tree_id": "no-height", "x": E0 + 5, "y": N0 + 5, "height_m": None, "crown_diameter_m": 4.0})
    info = write_tree_tiles(recs, tmp_path / "trees", ground_heights=lambda x, y: 150.0 + 0.01 * (x - E0),
                            geoid=46.31)
    assert info.n_features == 40 and info.skipped == [{"id": "no-height", "reason": "height_m is missing or "
                                                       "not positive"}]
    ts = json.loads(info.tileset_path.read_text())
    by_id = {r["tree_id"]: r for r in recs}
    for tile, parents in walk(ts["root"]):
        if "content" not in tile:
            continue
        doc, binary = read_glb((info.tileset_path.parent / tile["content"]["uri"]).read_bytes())
        inst = doc["nodes"][0]["extensions"]["EXT_mesh_gpu_instancing"]["attributes"]
        tr = accessor(doc, binary, inst["TRANSLATION"]).astype(float)
        q = accessor(doc, binary, inst["ROTATION"]).astype(float)
        sc = accessor(doc, binary, inst["SCALE"])
        table = doc["extensions"]["EXT_structural_metadata"]["propertyTables"][0]
        offs = np.frombuffer(view_bytes(doc, binary, table["properties"]["treeId"]["stringOffsets"]), np.uint32)
        text = view_bytes(doc, binary, table["properties"]["treeId"]["values"])
        ids = [text[offs[i]:offs[i + 1]].decode() for i in range(table["count"])]
        m = tile_matrix(parents + (tile,)) @ Y_UP_TO_Z_UP
        got = (np.c_[tr, np.ones(len(tr))] @ m.T)[:, :3]
        xs = np.array([by_id[i]["x"] for i in ids])
        ys = np.array([by_id[i]["y"] for i in ids])
        want = np.column_stack(TO_ECEF.transform(xs, ys, 150.0 + 0.01 * (xs - E0) + 46.31))
        assert np.abs(got - want).max() < 0.01
        assert np.allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-6)
        assert np.allclose(sc[:, 1], [by_id[i]["height_m"] for i in ids], rtol=1e-6)
        assert np.allclose(sc[:, 0], [by_id[i]["crown_diameter_m"] for i in ids], rtol=1e-6)


def test_trees_without_ground_height_raise(tmp_path):
    with pytest.raises(ConfigError, match=r"dataset 'trees'.*Fix: pass ground_heights"):
        write_tree_tiles([{"tree_id": "a", "x": E0, "y": N0, "height_m": 10, "crown_diameter_m": 5}],
                         tmp_path / "t", geoid=46.31)


# ------------------------------------------------------------------------------ independent validators
@pytest.fixture(scope="module")
def trees_tileset(tmp_path_factory):
    out = tmp_path_factory.mktemp("trees3d") / "trees"
    rng = np.random.default_rng(5)
    recs = [{"tree_id": f"T{i}", "x": E0 + rng.uniform(0, 1500), "y": N0 + rng.uniform(0, 900),
             "z": 150.0, "height_m": 12.0, "crown_diameter_m": 6.0, "species": "Acer"} for i in range(25)]
    return write_tree_tiles(recs, out, geoid=46.31)


def test_tilesets_valid_against_official_schemas(city, trees_tileset):
    if not SCHEMA_DIR.is_dir():
        pytest.skip(f"3D Tiles 1.1 schemas not found at {SCHEMA_DIR}")
    assert validate_tileset_schema(city[0] / "tileset.json", SCHEMA_DIR) == []
    assert validate_tileset_schema(trees_tileset.tileset_path, SCHEMA_DIR) == []
    broken = json.loads((city[0] / "tileset.json").read_text())
    broken["root"]["boundingVolume"]["region"] = [0, 1]
    assert validate_tileset_schema(broken, SCHEMA_DIR)  # the check can fail


def test_gltf_validator_reports_no_errors(city, trees_tileset):
    files = sorted(city[0].glob("content/*.glb")) + sorted(trees_tileset.tileset_path.parent.glob("content/*.glb"))
    report = run_node("validate_gltf.mjs", *map(str, files))
    assert len(report["results"]) == len(files)
    for r in report["results"]:
        assert r["numErrors"] == 0, (r["path"], r["messages"])
    warnings = [m for r in report["results"] for m in r["messages"] if m["severity"] == 1]
    print("glTF-Validator warnings:", warnings)


def test_gltf_validator_catches_a_broken_glb(city, tmp_path):
    glb = sorted(city[0].glob("content/*.glb"))[0]
    doc, binary = read_glb(glb.read_bytes())
    doc["accessors"][0]["count"] += 10_000  # past the end of its buffer view
    from citymodel.tiles3d.glb import GltfBuilder
    js = json.dumps(doc).encode()
    js += b" " * (-len(js) % 4)
    data = struct.pack("<4sII", b"glTF", 2, 28 + len(js) + len(binary)) + struct.pack("<I4s", len(js), b"JSON") + js \
        + struct.pack("<I4s", len(binary), b"BIN\0") + binary
    (tmp_path / "broken.glb").write_bytes(data)
    report = run_node("validate_gltf.mjs", str(tmp_path / "broken.glb"))
    assert report["results"][0]["numErrors"] > 0


def test_3d_tiles_tools_reads_buildings_and_trees(city, trees_tileset):
    out, info, _ = city
    r = run_node("check_tileset.mjs", str(out / "tileset.json"))
    assert r["errors"] == []
    assert r["contents"] == info.n_content_tiles and r["types"] == {"CONTENT_TYPE_GLB": info.n_content_tiles}
    assert r["features"] == info.n_features + 4 * info.n_content_tiles  # buildings + 4 surface-type rows per tile
    r = run_node("check_tileset.mjs", str(trees_tileset.tileset_path))
    assert r["errors"] == [] and r["features"] == 25


# ------------------------------------------------------------------------------ point clouds
def _small_las(path: Path, n: int = 4000) -> np.ndarray:
    import laspy

    rng = np.random.default_rng(11)
    x = E0 - 20 + rng.uniform(0, 140, n)  # 20 m halo west of the tile
    y = N0 + rng.uniform(0, 100, n)
    z = 150 + rng.uniform(0, 20, n)
    cls = np.where(z < 155, 2, 1).astype(np.uint8)
    header = laspy.LasHeader(point_format=1, version="1.2")
    header.scales = [0.01, 0.01, 0.01]
    header.offsets = [E0, N0, 0]
    las = laspy.LasData(header)
    las.x, las.y, las.z, las.classification = x, y, z, cls
    las.write(str(path))
    return x


@pytest.mark.slow
def test_pointcloud_tiles_with_py3dtiles(tmp_path):
    from citymodel.tiles3d.pointcloud import write_pointcloud_tiles

    x = _small_las(tmp_path / "tile.laz")
    info = write_pointcloud_tiles([tmp_path / "tile.laz"], tmp_path / "pc", "EPSG:25832", geoid=46.31,
                                  bounds=[(E0, N0, E0 + 1000, N0 + 1000)], tiler="py3dtiles")
    assert info.n_points == int((x >= E0).sum())  # halo dropped
    assert set(info.classes) == {1, 2}
    ts = json.loads(info.tileset_path.read_text())
    assert ts["asset"]["version"] == "1.1" and ts["asset"]["extras"]["geoid"]["undulation_m"] == 46.31
    if SCHEMA_DIR.is_dir():
        assert validate_tileset_schema(ts, SCHEMA_DIR) == []
    pnts = sorted(info.tileset_path.parent.rglob("*.pnts"))
    assert pnts and any(b"classification" in p.read_bytes()[:2000] for p in pnts)
    if shutil.which("node") and (JS_DIR / "node_modules" / "3d-tiles-tools").is_dir():
        r = run_node("check_tileset.mjs", str(info.tileset_path))
        assert r["errors"] == [] and r["features"] >= info.n_points


def test_pointcloud_missing_file_is_an_error(tmp_path):
    from citymodel.tiles3d.pointcloud import write_pointcloud_tiles

    with pytest.raises(SourceDataError, match=r"dataset 'lidar'.*absent.laz.*Fix: stage"):
        write_pointcloud_tiles([tmp_path / "absent.laz"], tmp_path / "pc", geoid=46.31)


def test_pointcloud_truncated_las_is_an_error_and_nothing_is_written(tmp_path):
    """A LAS cut at a record boundary would read as a smaller tile; it is refused, no tileset appears."""
    import laspy

    from citymodel.tiles3d.pointcloud import write_pointcloud_tiles

    _small_las(tmp_path / "tile.las")
    h = laspy.open(tmp_path / "tile.las").header
    data = (tmp_path / "tile.las").read_bytes()
    (tmp_path / "cut.las").write_bytes(data[:h.offset_to_point_data + 100 * h.point_format.size])
    with pytest.raises(SourceDataError, match=r"dataset 'lidar'.*cut\.las holds 100 points.*truncated.*Fix"):
        write_pointcloud_tiles([tmp_path / "cut.las"], tmp_path / "pc", geoid=46.31)
    assert not (tmp_path / "pc").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.las", "tile.las"]     # no work folder left


# ------------------------------------------------------------------------------ analysis colours
def _colours_by_feature(tileset_dir: Path) -> dict[str, dict[int, np.ndarray]]:
    """Building id -> surface kind index -> the distinct vertex colours (k, 4) of that kind."""
    ts = json.loads((tileset_dir / "tileset.json").read_text())
    out: dict[str, dict[int, np.ndarray]] = {}
    for tile, _ in walk(ts["root"]):
        if "content" not in tile:
            continue
        doc, binary = read_glb((tileset_dir / tile["content"]["uri"]).read_bytes())
        prim = doc["meshes"][0]["primitives"][0]
        table = doc["extensions"]["EXT_structural_metadata"]["propertyTables"][0]
        offs = np.frombuffer(view_bytes(doc, binary, table["properties"]["id"]["stringOffsets"]), dtype=np.uint32)
        text = view_bytes(doc, binary, table["properties"]["id"]["values"])
        ids = [text[offs[i]:offs[i + 1]].decode() for i in range(table["count"])]
        fid = accessor(doc, binary, prim["attributes"]["_FEATURE_ID_0"]).astype(int)
        kind = accessor(doc, binary, prim["attributes"]["_FEATURE_ID_1"]).astype(int)
        colour = accessor(doc, binary, prim["attributes"]["COLOR_0"])
        for f, rid in enumerate(ids):
            out[rid] = {int(k): np.unique(colour[(fid == f) & (kind == k)], axis=0)
                        for k in np.unique(kind[fid == f])}
    return out


def _box(rid: str, x: float, y: float) -> dict:
    fp = np.array([[x, y], [x + 10, y], [x + 10, y + 6], [x, y + 6]])
    return {"id": rid, "solid": prism(fp, 150.0, 158.0), "attributes": {"function_code": "31001_1010"}}


def test_colour_ramp_values_by_hand_and_bad_ramps():
    from citymodel.tiles3d.colormap import NO_DATA_RGBA, ColorRamp, solar_ramp

    ramp = ColorRamp((0.0, 100.0, 300.0), ((0, 0, 0), (200, 100, 40), (200, 200, 240)), name="t", unit="u")
    got = ramp.colors_of([-5.0, 0.0, 25.0, 100.0, 200.0, 300.0, 1e9, np.nan, None])
    want = [[0, 0, 0, 255], [0, 0, 0, 255], [50, 25, 10, 255], [200, 100, 40, 255], [200, 150, 140, 255],
            [200, 200, 240, 255], [200, 200, 240, 255], list(NO_DATA_RGBA), list(NO_DATA_RGBA)]
    assert got.tolist() == want
    assert NO_DATA_RGBA[0] == NO_DATA_RGBA[1] == NO_DATA_RGBA[2]  # neutral grey
    # solar: stops at 0, 40, 60, 80, 100 % of the reference (the suitability class limits)
    s = solar_ramp(2000.0)
    assert s.values == (0.0, 800.0, 1200.0, 1600.0, 2000.0)
    assert s.legend()["unit"] == "kWh/m²·a" and s.legend()["maximum"] == 2000.0
    for stops, colours in [((0.0, 0.0), ((0, 0, 0), (1, 1, 1))), ((1.0,), ((0, 0, 0),)),
                           ((0.0, 1.0), ((0, 0, 0), (256, 0, 0))), ((0.0, 1.0), ((0, 0, 0),))]:
        with pytest.raises(ConfigError, match=r"dataset '3D Tiles colour ramp'.*Fix:"):
            ColorRamp(stops, colours, name="bad")
    with pytest.raises(ConfigError, match=r"record 'solar'.*Fix: give the best"):
        solar_ramp(0.0)


@pytest.fixture(scope="module")
def coloured(tmp_path_factory):
    """Three boxes: roof value X, roof without value, and a gable house; walls keep their colour."""
    from citymodel.tiles3d.colormap import solar_ramp

    out = tmp_path_factory.mktemp("coloured") / "solar"
    ramp = solar_ramp(2000.0)
    x_value = 1000.0  # halfway between the 800 (light blue) and 1200 (pale yellow) stops
    values = {("A", 0): x_value, ("G", 0): 1600.0}  # (building, roof ordinal) -> kWh/m²·a; G's roof 1 has none
    roof_ordinal = {}
    recs = [_box("A", E0 + 100, N0 + 100), _box("N", E0 + 140, N0 + 100), house(7, E0 + 200, N0 + 100)]
    recs[2]["id"] = "G"
    for r in recs:
        kinds = [s.kind for s in r["solid"].surfaces]
        roof_ordinal[r["id"]] = np.cumsum([k == "RoofSurface" for k in kinds]) - 1
    calls = []

    def colour(rec, j, kind):
        calls.append((rec["id"], j, kind))
        if kind != "RoofSurface":
            return None
        return ramp.color_of(values.get((rec["id"], int(roof_ordinal[rec["id"]][j]))))

    info = write_building_tiles(recs, out, geoid=46.31, surface_colors=colour, legend=ramp,
                                extras={"layer": "solar"})
    return out, info, ramp, x_value, recs, calls


def test_roof_gets_exactly_the_ramp_colour_and_walls_keep_theirs(coloured):
    out, info, ramp, x_value, recs, calls = coloured
    assert info.n_features == 3
    # one call per surface of every record, with the record, its surface index and kind
    assert calls == [(r["id"], j, s.kind) for r in recs for j, s in enumerate(r["solid"].surfaces)]
    c = _colours_by_feature(out)
    # X = 1000 lies halfway between (116, 173, 209) at 800 and (255, 255, 191) at 1200
    halfway = [round((116 + 255) / 2), round((173 + 255) / 2), round((209 + 191) / 2), 255]
    assert halfway == [186, 214, 200, 255]  # 185.5 rounds to the even 186
    assert ramp.color_of(x_value) == tuple(halfway)
    assert c["A"][2].tolist() == [halfway]                     # every roof vertex of A
    assert c["A"][1].tolist() == [[224, 224, 220, 255]]        # walls unchanged
    assert c["A"][0].tolist() == [[90, 90, 90, 255]]           # ground unchanged
    assert c["N"][2].tolist() == [[128, 128, 128, 255]]        # no value: neutral grey
    assert c["N"][1].tolist() == [[224, 224, 220, 255]]
    # the gable house: roof 0 at the 1600 stop (orange), roof 1 without value (grey)
    assert sorted(map(tuple, c["G"][2].tolist())) == [(128, 128, 128, 255), (253, 174, 97, 255)]


def test_default_colours_unchanged_without_surface_colors(tmp_path):
    info = write_building_tiles([_box("A", E0 + 100, N0 + 100)], tmp_path / "t", geoid=46.31)
    c = _colours_by_feature(info.tileset_path.parent)
    assert c["A"][2].tolist() == [[150, 62, 44, 255]] and c["A"][1].tolist() == [[224, 224, 220, 255]]
    ts = json.loads(info.tileset_path.read_text())
    assert "metadata" not in ts and "legend" not in ts["asset"]["extras"]
    assert set(ts["schema"]["classes"]) == {"building", "surface"}


def test_legend_in_extras_and_as_tileset_metadata(coloured):
    from citymodel.tiles3d.colormap import LEGEND_CLASS

    out, info, ramp, *_ = coloured
    ts = json.loads((out / "tileset.json").read_text())
    legend = ts["asset"]["extras"]["legend"]
    assert legend["unit"] == "kWh/m²·a" and legend["minimum"] == 0.0 and legend["maximum"] == 2000.0
    assert [s["color"] for s in legend["stops"]] == ["#313695", "#74add1", "#ffffbf", "#fdae61", "#d73027"]
    assert legend["noDataColor"] == "#808080" and ts["asset"]["extras"]["layer"] == "solar"
    meta = ts["metadata"]
    assert meta["class"] == "legend" and ts["schema"]["classes"]["legend"] == LEGEND_CLASS
    # every metadata value matches its class property (type, array-ness)
    props = LEGEND_CLASS["properties"]
    for name, v in meta["properties"].items():
        p = props[name]
        items = v if p.get("array") else [v]
        assert isinstance(v, list) == bool(p.get("array")), name
        assert all(isinstance(x, str) if p["type"] == "STRING" else isinstance(x, (int, float)) for x in items), name
    assert meta["properties"]["stopValues"] == [0.0, 800.0, 1200.0, 1600.0, 2000.0]
    assert meta["properties"]["appliesTo"] == "RoofSurface"
    # per-building metadata as in the building tiles
    assert "roofType" in ts["schema"]["classes"]["building"]["properties"]
    if SCHEMA_DIR.is_dir():
        assert validate_tileset_schema(ts, SCHEMA_DIR) == []


def test_coloured_tiles_pass_the_independent_validators(coloured):
    out, info, *_ = coloured
    files = sorted(out.glob("content/*.glb"))
    report = run_node("validate_gltf.mjs", *map(str, files))
    assert [r["numErrors"] for r in report["results"]] == [0] * len(files)
    r = run_node("check_tileset.mjs", str(out / "tileset.json"))
    assert r["errors"] == [] and r["contents"] == info.n_content_tiles


def test_bad_surface_colour_names_the_record_and_surface(tmp_path):
    for bad in [(300, 0, 0), (1, 2), "red", (0.5, 0.5, 0.5)]:
        with pytest.raises(ConfigError, match=r"record 'A'.*surface \d+ \(\w+Surface\).*Fix: return \(r, g, b"):
            write_building_tiles([_box("A", E0 + 100, N0 + 100)], tmp_path / "t", geoid=46.31,
                                 surface_colors=lambda rec, j, kind, bad=bad: bad)
