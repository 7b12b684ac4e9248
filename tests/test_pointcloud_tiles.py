"""The project's own point-cloud tiler (``citymodel.tiles3d.pointcloud_octree``): every point once
and where pyproj puts it, spacing per level, bounding volumes, the independent validators,
bounded memory while streaming, and bad input."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import pyproj
import pytest

from citymodel.errors import ConfigError, SourceDataError
from citymodel.tiles3d import read_glb, validate_tileset_schema
from citymodel.tiles3d.pointcloud import CLASS_COLORS, write_pointcloud_tiles
from citymodel.tiles3d.pointcloud_octree import OctreeOptions, _Tiler
from jsvalidators import run_node

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SCHEMA_DIR = PROJECT_ROOT.parent / "shared" / "schemas" / "3d-tiles-1.1"
E0, N0 = 682000.0, 5645000.0
TILE = (E0, N0, E0 + 1000.0, N0 + 1000.0)
UNDULATION_M = 46.31
TO_ECEF = pyproj.Transformer.from_crs("EPSG:25832", "EPSG:4978", always_xy=True)  # z taken as ellipsoidal
#: small nodes so that a few ten thousand points make several levels, coarse levels streamed in
#: pass 1, buckets, and a dense spot that is streamed once more
OPTS = OctreeOptions(cells_per_edge=16, max_leaf_points=1500, bucket_points=5000, chunk_points=4000)


# ------------------------------------------------------------------------------ helpers
def write_las(path: Path, n: int = 60_000, *, seed: int = 3, point_format: int = 1, rgb_bits: int = 16,
              dense: int = 12_000) -> dict:
    """A LAS/LAZ over 300 m x 300 m at the tile's south-west corner with a 20 m halo west of the
    tile, ground and roofs, and ``dense`` points in a 4 m x 4 m spot; returns the points as read back."""
    import laspy

    rng = np.random.default_rng(seed)
    m = n - dense
    spot = rng.choice(400 * 400, dense, replace=False)  # distinct 1 cm positions: no duplicate points
    x = np.concatenate([E0 - 20 + rng.uniform(0, 320, m), E0 + 100 + 0.01 * (spot % 400) + 0.002])
    y = np.concatenate([N0 + rng.uniform(0, 300, m), N0 + 150 + 0.01 * (spot // 400) + 0.002])
    roof = rng.random(n) < 0.3
    z = 150 + 0.02 * (x - E0) + np.where(roof, rng.uniform(5, 25, n), rng.normal(0, 0.05, n))
    order = rng.permutation(n)  # the dense spot spread over the file
    x, y, z, roof = x[order], y[order], z[order], roof[order]
    header = laspy.LasHeader(point_format=point_format, version="1.4" if point_format >= 6 else "1.2")
    header.scales = [0.01, 0.01, 0.01]
    header.offsets = [E0, N0, 0.0]
    las = laspy.LasData(header)
    las.x, las.y, las.z = x, y, z
    las.classification = np.where(roof, 6, 2).astype(np.uint8)
    las.intensity = rng.integers(0, 65536, n).astype(np.uint16)
    if point_format in (2, 3, 5, 7, 8, 10):
        top = (1 << rgb_bits) - 1
        las.red, las.green, las.blue = (rng.integers(0, top + 1, n).astype(np.uint16) for _ in range(3))
    las.write(str(path))
    back = laspy.read(str(path))
    out = {"x": np.asarray(back.x), "y": np.asarray(back.y), "z": np.asarray(back.z),
           "cls": np.asarray(back.classification, dtype=np.uint8), "intensity": np.asarray(back.intensity)}
    if point_format in (2, 3, 5, 7, 8, 10):
        out["rgb"] = np.column_stack([back.red, back.green, back.blue]).astype(np.uint16)
    return out


def inside(pts: dict, bounds=TILE) -> dict:
    m = (pts["x"] >= bounds[0]) & (pts["x"] < bounds[2]) & (pts["y"] >= bounds[1]) & (pts["y"] < bounds[3])
    return {k: v[m] for k, v in pts.items()}


def walk(tile: dict, parent=None):
    yield tile, parent
    for c in tile.get("children", []):
        yield from walk(c, tile)


def attribute(doc: dict, binary: bytes, name: str) -> np.ndarray:
    """An attribute of the first primitive, decoded with its byte stride (independent of the writer)."""
    acc = doc["accessors"][doc["meshes"][0]["primitives"][0]["attributes"][name]]
    view = doc["bufferViews"][acc["bufferView"]]
    dtype = np.dtype({5121: "u1", 5123: "<u2", 5126: "<f4"}[acc["componentType"]])
    k = {"SCALAR": 1, "VEC3": 3, "VEC4": 4}[acc["type"]]
    stride = view.get("byteStride", dtype.itemsize * k)
    start = view["byteOffset"] + acc.get("byteOffset", 0)
    raw = np.frombuffer(binary, dtype=np.uint8, count=stride * (acc["count"] - 1) + dtype.itemsize * k, offset=start)
    rows = np.lib.stride_tricks.as_strided(raw, shape=(acc["count"], dtype.itemsize * k), strides=(stride, 1))
    return np.ascontiguousarray(rows).view(dtype).reshape(acc["count"], k)


def decode(tileset_path: Path) -> tuple[dict, list[dict]]:
    """The tileset and, per tile, its key, points in the local z-up frame (float64), colour, class,
    intensity and the tile dict."""
    ts = json.loads(tileset_path.read_text())
    nodes = []
    for tile, parent in walk(ts["root"]):
        uri = tile["content"]["uri"]
        level = int(uri.split("/")[1])
        i, j, k = (int(v) for v in Path(uri).stem.split("_"))
        doc, binary = read_glb((tileset_path.parent / uri).read_bytes())
        prim = doc["meshes"][0]["primitives"][0]
        assert prim["mode"] == 0
        p = attribute(doc, binary, "POSITION").astype(np.float64)
        nodes.append({"key": (level, i, j, k), "tile": tile, "parent": parent,
                      "local": np.column_stack([p[:, 0], -p[:, 2], p[:, 1]]),  # glTF y-up -> z-up
                      "rgb": attribute(doc, binary, "COLOR_0"), "cls": attribute(doc, binary, "_CLASSIFICATION")[:, 0],
                      "intensity": attribute(doc, binary, "_INTENSITY")[:, 0], "doc": doc})
    return ts, nodes


def to_ecef(ts: dict, local: np.ndarray) -> np.ndarray:
    m = np.asarray(ts["root"]["transform"], dtype=float).reshape(4, 4).T
    return local @ m[:3, :3].T + m[:3, 3]


def box_contains(box: list, pts: np.ndarray, tol: float = 1e-6) -> np.ndarray:
    b = np.asarray(box, dtype=float)
    c, axes = b[:3], b[3:].reshape(3, 3)
    half = np.linalg.norm(axes, axis=1)
    u = (pts - c) @ (axes / half[:, None]).T
    return np.all(np.abs(u) <= half + tol, axis=1)


@pytest.fixture(scope="module")
def tiled(tmp_path_factory):
    d = tmp_path_factory.mktemp("pointcloud")
    pts = write_las(d / "tile.las")
    info = write_pointcloud_tiles([d / "tile.las"], d / "pc", "EPSG:25832", geoid=UNDULATION_M, bounds=[TILE],
                                  octree=OPTS, chunk_points=OPTS.chunk_points)
    ts, nodes = decode(info.tileset_path)
    return {"dir": d, "info": info, "pts": pts, "ts": ts, "nodes": nodes}


# ------------------------------------------------------------------------------ every point once
def test_every_point_is_in_exactly_one_tile_where_pyproj_puts_it(tiled):
    """Count, position (against pyproj's EPSG:25832 -> EPSG:4978), class and intensity of every
    point inside the tile; the halo is cropped off."""
    from scipy.spatial import cKDTree

    exp = inside(tiled["pts"])
    ts, nodes = tiled["ts"], tiled["nodes"]
    local = np.concatenate([n["local"] for n in nodes])
    got = to_ecef(ts, local)
    n = len(exp["x"])
    assert n < len(tiled["pts"]["x"])  # some of the file is halo
    assert tiled["info"].n_points == n == len(got)
    want = np.column_stack(TO_ECEF.transform(exp["x"], exp["y"], exp["z"] + UNDULATION_M))
    # checksum of the positions: float32 in a frame within ~300 m of its origin is good to 0.1 mm
    assert np.allclose(got.sum(axis=0), want.sum(axis=0), rtol=0, atol=n * 2e-4)
    # and one to one: every decoded point is the nearest of exactly one input point, within 1 mm
    dist, idx = cKDTree(got).query(want)
    assert dist.max() < 1e-3
    assert len(np.unique(idx)) == n
    cls = np.concatenate([n_["cls"] for n_ in nodes])
    inten = np.concatenate([n_["intensity"] for n_ in nodes])
    rgb = np.concatenate([n_["rgb"] for n_ in nodes])
    assert np.array_equal(cls[idx], exp["cls"]) and np.array_equal(inten[idx], exp["intensity"])
    assert np.array_equal(rgb[idx], np.array([CLASS_COLORS[c] for c in exp["cls"]], dtype=np.uint8))
    assert tiled["info"].classes == {int(c): int(k) for c, k in zip(*np.unique(exp["cls"], return_counts=True))}


def test_levels_keep_one_point_per_cell_of_their_spacing_and_leaves_the_rest(tiled):
    ts, nodes, info = tiled["ts"], tiled["nodes"], tiled["info"]
    oc = ts["asset"]["extras"]["octree"]
    origin, edge, G = np.asarray(oc["origin"]), oc["edge_m"], oc["cells_per_edge"]
    assert G == OPTS.cells_per_edge and info.depth >= 3
    levels = set()
    for n in nodes:
        level, i, j, k = n["key"]
        levels.add(level)
        u = (n["local"] - origin) / edge
        # the node's points lie in its octree cube
        assert np.array_equal(np.unique(np.floor(u * (1 << level)).astype(int), axis=0), [[i, j, k]]) or len(u) == 0
        tile = n["tile"]
        assert tile["refine"] == "ADD"
        spacing = edge / G / (1 << level)
        if "children" in tile:
            cells = np.floor(u * (G << level)).astype(np.int64)
            assert len(np.unique(cells, axis=0)) == len(cells), n["key"]  # at most one point per cell
            assert tile["geometricError"] == pytest.approx(spacing * OPTS.error_per_spacing)
            for c in tile["children"]:
                assert c["geometricError"] in (0.0, pytest.approx(tile["geometricError"] / 2))
        else:
            assert tile["geometricError"] == 0.0
            assert len(u) <= OPTS.max_leaf_points
    assert levels == set(range(info.depth + 1))
    # the coarse levels hold what their spacing allows, the finest level the rest
    per_level = np.array(info.points_per_level)
    assert per_level.sum() == info.n_points and per_level[0] <= G ** 3


def test_bounding_volumes_hold_their_content_and_their_children(tiled):
    for n in tiled["nodes"]:
        box = n["tile"]["boundingVolume"]["box"]
        assert box_contains(box, n["local"]).all(), n["key"]
        for c in n["tile"].get("children", []):
            b = np.asarray(c["boundingVolume"]["box"], dtype=float)
            signs = np.array([[a, b_, c_] for a in (-1, 1) for b_ in (-1, 1) for c_ in (-1, 1)], dtype=float)
            corners = b[:3] + signs @ b[3:].reshape(3, 3)
            assert box_contains(box, corners).all()
    # the root box is in the tile's local frame: its centre is within the tile, near the ground
    root = tiled["ts"]["root"]
    centre = to_ecef(tiled["ts"], np.asarray(root["boundingVolume"]["box"][:3])[None, :])[0]
    e, n_, h = pyproj.Transformer.from_crs("EPSG:4978", "EPSG:25832", always_xy=True).transform(*centre)
    assert TILE[0] <= e < TILE[0] + 320 and TILE[1] <= n_ < TILE[1] + 300


def test_the_result_does_not_depend_on_the_chunk_size(tiled, tmp_path):
    """Streaming in 4,000- or 100,000-point chunks gives byte-identical tiles."""
    info = write_pointcloud_tiles([tiled["dir"] / "tile.las"], tmp_path / "pc", "EPSG:25832", geoid=UNDULATION_M,
                                  bounds=[TILE], octree=OPTS, chunk_points=100_000)
    a, b = tiled["info"].tileset_path.parent, info.tileset_path.parent
    files = sorted(p.relative_to(a) for p in a.rglob("*.glb"))
    assert files == sorted(p.relative_to(b) for p in b.rglob("*.glb"))
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)


def test_a_dense_spot_is_streamed_again_not_loaded_whole(tmp_path):
    """The 4 m spot holds more than twice bucket_points: its bucket is routed once more in chunks."""
    write_las(tmp_path / "tile.las")
    calls = []
    original = _Tiler.stream_bucket

    def spy(self, spill, dest, key, D):
        calls.append((int(spill.totals[dest]), key, D))
        return original(self, spill, dest, key, D)

    with mock.patch.object(_Tiler, "stream_bucket", spy):
        info = write_pointcloud_tiles([tmp_path / "tile.las"], tmp_path / "pc", "EPSG:25832", geoid=UNDULATION_M,
                                      bounds=[TILE], octree=OPTS, chunk_points=OPTS.chunk_points)
    assert calls and all(n > 2 * OPTS.bucket_points for n, _, _ in calls)
    _, nodes = decode(info.tileset_path)
    assert sum(len(n["local"]) for n in nodes) == info.n_points


def test_heights_follow_the_geoid_grid_point_by_point(tmp_path):
    """A geoid grid rising about 4 m across the points: every point gets the undulation at its own
    place (PROJ interpolates the grid bilinearly, so a linear field is reproduced exactly)."""
    from scipy.spatial import cKDTree
    from test_tiles3d import write_gtx

    lat0, lon0, step = 50.5, 11.0, 0.25
    lats, lons = lat0 + step * np.arange(4), lon0 + step * np.arange(4)

    def undulation(lon, lat):
        return 40.0 + 1000.0 * (lat - 50.9) + 300.0 * (lon - 11.5)

    write_gtx(tmp_path / "steep.gtx", lat0, lon0, step, step, undulation(lons[None, :], lats[:, None]))
    pts = inside(write_las(tmp_path / "t.las", 20_000, dense=0))
    info = write_pointcloud_tiles([tmp_path / "t.las"], tmp_path / "pc", geoid=str(tmp_path / "steep.gtx"),
                                  bounds=[TILE])
    ts, nodes = decode(info.tileset_path)
    assert ts["asset"]["extras"]["geoid"]["name"] == "grid"
    lon, lat = pyproj.Transformer.from_crs("EPSG:25832", "EPSG:4326", always_xy=True).transform(pts["x"], pts["y"])
    n_m = undulation(lon, lat)
    assert n_m.max() - n_m.min() > 3.0  # over the 300 m the points cover
    want = np.column_stack(pyproj.Transformer.from_crs("EPSG:4979", "EPSG:4978", always_xy=True)
                           .transform(lon, lat, pts["z"] + n_m))
    dist, idx = cKDTree(to_ecef(ts, np.concatenate([n["local"] for n in nodes]))).query(want)
    assert dist.max() < 1e-3 and len(np.unique(idx)) == len(want)


# ------------------------------------------------------------------------------ validators
def test_tiles_pass_the_gltf_validator_and_3d_tiles_tools(tiled):
    glbs = sorted(str(p) for p in tiled["info"].tileset_path.parent.rglob("*.glb"))
    report = run_node("validate_gltf.mjs", *glbs)
    assert len(report["results"]) == len(glbs) == len(tiled["nodes"])
    for r in report["results"]:
        assert r["numErrors"] == 0 and r["numWarnings"] == 0, (r["path"], r["messages"][:5])
    r = run_node("check_tileset.mjs", str(tiled["info"].tileset_path))
    assert r["errors"] == [] and r["contents"] == len(glbs) and r["types"] == {"CONTENT_TYPE_GLB": len(glbs)}


def test_tileset_is_valid_3d_tiles_1_1_with_property_attributes(tiled):
    if not SCHEMA_DIR.is_dir():
        pytest.skip(f"official 3D Tiles schemas not found at {SCHEMA_DIR}")
    assert validate_tileset_schema(tiled["info"].tileset_path, SCHEMA_DIR) == []
    ts = tiled["ts"]
    assert ts["asset"]["version"] == "1.1" and ts["asset"]["extras"]["geoid"]["undulation_m"] == UNDULATION_M
    doc = tiled["nodes"][0]["doc"]
    meta = doc["extensions"]["EXT_structural_metadata"]
    props = meta["schema"]["classes"]["point"]["properties"]
    assert props["classification"]["componentType"] == "UINT8" and props["intensity"]["componentType"] == "UINT16"
    assert meta["propertyAttributes"][0]["properties"] == {"classification": {"attribute": "_CLASSIFICATION"},
                                                           "intensity": {"attribute": "_INTENSITY"}}
    assert doc["meshes"][0]["primitives"][0]["extensions"]["EXT_structural_metadata"] == {"propertyAttributes": [0]}


# ------------------------------------------------------------------------------ colours
@pytest.mark.parametrize("bits", [16, 8])
def test_las_rgb_becomes_the_colour(tmp_path, bits):
    pts = inside(write_las(tmp_path / "rgb.las", 20_000, point_format=3, rgb_bits=bits, dense=0))
    info = write_pointcloud_tiles([tmp_path / "rgb.las"], tmp_path / "pc", geoid=UNDULATION_M, bounds=[TILE],
                                  colour="rgb")
    from scipy.spatial import cKDTree

    ts, nodes = decode(info.tileset_path)
    got = to_ecef(ts, np.concatenate([n["local"] for n in nodes]))
    _, idx = cKDTree(got).query(np.column_stack(TO_ECEF.transform(pts["x"], pts["y"], pts["z"] + UNDULATION_M)))
    rgb = np.concatenate([n["rgb"] for n in nodes])[idx]
    want = pts["rgb"] >> 8 if bits == 16 else pts["rgb"]
    assert np.array_equal(rgb, want.astype(np.uint8))


def test_height_colours_run_from_blue_low_to_red_high(tmp_path):
    pts = inside(write_las(tmp_path / "h.las", 10_000, dense=0))
    info = write_pointcloud_tiles([tmp_path / "h.las"], tmp_path / "pc", geoid=UNDULATION_M, bounds=[TILE],
                                  colour="height")
    _, nodes = decode(info.tileset_path)
    up = np.concatenate([n["local"][:, 2] for n in nodes])
    rgb = np.concatenate([n["rgb"] for n in nodes]).astype(int)
    low, high = rgb[up < np.percentile(up, 2)], rgb[up > np.percentile(up, 98)]
    assert (low[:, 2] > low[:, 0]).all() and (high[:, 0] > high[:, 2]).all()
    assert info.n_points == len(pts["x"])


# ------------------------------------------------------------------------------ memory
_MEMORY_SCRIPT = r"""
import json, resource, sys
from pathlib import Path
from citymodel.tiles3d.pointcloud import write_pointcloud_tiles
from citymodel.tiles3d.pointcloud_octree import OctreeOptions
d = Path(sys.argv[1])
opts = OctreeOptions(cells_per_edge=32, max_leaf_points=5_000, bucket_points=20_000, chunk_points=20_000)
# warm up (imports, compiled loops) on the small file, then the baseline
write_pointcloud_tiles([d / "small.las"], d / "warm", geoid=46.31, octree=opts, chunk_points=20_000)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
info = write_pointcloud_tiles([d / "big.las"], d / "pc", geoid=46.31, octree=opts, chunk_points=20_000)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"base_kb": base, "peak_kb": peak, "points": info.n_points}))
"""


def test_memory_stays_bounded_on_a_file_much_larger_than_a_chunk(tmp_path):
    """2.4 M points (67 MB of LAS, 48 MB as the tiler's records) in 20,000-point chunks: the peak
    memory grows by far less than the points would take (in a fresh process: max RSS)."""
    import laspy

    write_las(tmp_path / "small.las", 30_000, dense=0)
    rng = np.random.default_rng(5)
    n = 2_400_000
    header = laspy.LasHeader(point_format=1, version="1.2")
    header.scales = [0.01, 0.01, 0.01]
    header.offsets = [E0, N0, 0.0]
    las = laspy.LasData(header)
    las.x, las.y = E0 + rng.uniform(0, 1000, n), N0 + rng.uniform(0, 1000, n)
    las.z = 150 + rng.uniform(0, 20, n)
    las.classification = np.full(n, 2, dtype=np.uint8)
    las.write(str(tmp_path / "big.las"))
    del las
    proc = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT, str(tmp_path)], capture_output=True, text=True,
                          timeout=600, cwd=PROJECT_ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    assert r["points"] == n
    grown_mb = (r["peak_kb"] - r["base_kb"]) / 1024
    assert grown_mb < 0.25 * n * 20 / 2**20, r  # less than a quarter of the points' records


# ------------------------------------------------------------------------------ bad input
def test_a_corrupt_laz_names_the_dataset_and_the_file(tmp_path):
    import laspy

    las = laspy.read(str(_write(tmp_path / "ok.las")))
    las.write(str(tmp_path / "tile.laz"))
    data = bytearray((tmp_path / "tile.laz").read_bytes())
    h = laspy.open(tmp_path / "tile.laz").header
    start = h.offset_to_point_data + 200
    data[start:start + 4000] = np.random.default_rng(1).integers(0, 256, 4000, dtype=np.uint8).tobytes()
    (tmp_path / "bad.laz").write_bytes(bytes(data))
    with pytest.raises(SourceDataError, match=r"dataset 'lidar'.*bad\.laz.*Fix: "):
        write_pointcloud_tiles([tmp_path / "bad.laz"], tmp_path / "pc", geoid=UNDULATION_M, chunk_points=5000)
    assert not (tmp_path / "pc").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.laz", "ok.las", "tile.laz"]
    (tmp_path / "text.las").write_text("not a point cloud")
    with pytest.raises(SourceDataError, match=r"dataset 'lidar'.*cannot read text\.las.*Fix: "):
        write_pointcloud_tiles([tmp_path / "text.las"], tmp_path / "pc", geoid=UNDULATION_M)


def test_a_truncated_laz_names_the_dataset_and_the_file(tmp_path):
    import laspy

    laspy.read(str(_write(tmp_path / "ok.las"))).write(str(tmp_path / "tile.laz"))
    data = (tmp_path / "tile.laz").read_bytes()
    (tmp_path / "cut.laz").write_bytes(data[:len(data) // 2])
    with pytest.raises(SourceDataError, match=r"dataset 'lidar'.*cut\.laz.*Fix: "):
        write_pointcloud_tiles([tmp_path / "cut.laz"], tmp_path / "pc", geoid=UNDULATION_M)
    assert not (tmp_path / "pc").exists()


def _write(path: Path) -> Path:
    write_las(path, 20_000, dense=0)
    return path


def test_points_outside_the_header_bounds_are_an_error(tmp_path):
    """A header whose bounds do not hold the points (the root cube is made from them) is refused."""
    _write(tmp_path / "tile.las")
    data = bytearray((tmp_path / "tile.las").read_bytes())
    max_x, min_x = struct.unpack_from("<dd", data, 179)  # LAS 1.2 header: max X, min X
    struct.pack_into("<d", data, 179, min_x + 50.0)
    (tmp_path / "lie.las").write_bytes(bytes(data))
    with pytest.raises(SourceDataError, match=r"dataset 'lidar'.*lie\.las lie outside the bounds its header.*Fix"):
        write_pointcloud_tiles([tmp_path / "lie.las"], tmp_path / "pc", geoid=UNDULATION_M)


def test_no_point_inside_the_bounds_is_an_error(tmp_path):
    _write(tmp_path / "tile.las")
    with pytest.raises(SourceDataError, match=r"no point inside the given bounds.*Fix"):
        write_pointcloud_tiles([tmp_path / "tile.las"], tmp_path / "pc", geoid=UNDULATION_M,
                               bounds=[(E0 + 5000, N0, E0 + 6000, N0 + 1000)])


def test_rgb_colours_of_a_file_without_rgb_are_an_error(tmp_path):
    _write(tmp_path / "tile.las")
    with pytest.raises(SourceDataError, match=r"tile\.las has no RGB.*Fix: use colour='classification'"):
        write_pointcloud_tiles([tmp_path / "tile.las"], tmp_path / "pc", geoid=UNDULATION_M, colour="rgb")


def test_unknown_tiler_and_bad_options_are_config_errors(tmp_path):
    _write(tmp_path / "tile.las")
    with pytest.raises(ConfigError, match=r"unknown point-cloud tiler 'potree'.*publish.pointcloud_tiler"):
        write_pointcloud_tiles([tmp_path / "tile.las"], tmp_path / "pc", geoid=UNDULATION_M, tiler="potree")
    with pytest.raises(ConfigError, match=r"cells_per_edge 100 is not a power of two"):
        OctreeOptions(cells_per_edge=100)
    with pytest.raises(ConfigError, match=r"bucket_points >= max_leaf_points"):
        OctreeOptions(max_leaf_points=10_000, bucket_points=5_000)
    with pytest.raises(ConfigError, match=r"min_spacing_m and error_per_spacing must be positive"):
        OctreeOptions(error_per_spacing=0.0)


def test_the_tiler_setting_defaults_to_own_and_refuses_unknown_values(tmp_path):
    import yaml

    from citymodel.config import DEFAULT_CONFIG, load_config

    raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    assert load_config(DEFAULT_CONFIG).publish.pointcloud_tiler == "own"
    for value, ok in (("py3dtiles", True), ("potree", False)):
        raw.setdefault("publish", {})["pointcloud_tiler"] = value
        path = tmp_path / f"{value}.yaml"
        path.write_text(yaml.safe_dump(raw), encoding="utf-8")
        if ok:
            assert load_config(path).publish.pointcloud_tiler == value
        else:
            with pytest.raises(ConfigError, match=r"publish\.pointcloud_tiler"):
                load_config(path)
