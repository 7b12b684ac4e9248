"""LiDAR staging: CRS rules, reading of real sample files, DTM, height above ground, bad input."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import laspy
import numpy as np
import pyproj
import pytest
import rasterio

from citymodel.errors import ConfigError, CRSError, SourceDataError
from citymodel.lidar import (
    HAG_DIMENSION, POINT_DTYPE, complete_dtm, iter_points, read_las_crs, resolve_las_crs, scan_las,
    stage_tile,
)
from citymodel.raster import read_geotiff, sample_geotiff, write_geotiff
from citymodel.tiles import Tile

SAMPLES = "lidar-samples"
DELFT = "delft-ahn3"

# --------------------------------------------------------------------------------------------
# synthetic data
# --------------------------------------------------------------------------------------------
# a 100 m test tile (Tile allows other sizes; the 1 km grid is only enforced for configured extents)
TILE = Tile(500, 5600, size_m=100.0)
X0, Y0 = 500_000.0, 5_600_000.0
SLOPE_X, SLOPE_Y, Z0 = 0.05, -0.03, 150.0
BOXES = [  # (minx, miny, maxx, maxy, height_m) relative to the tile origin
    (20.0, 20.0, 40.0, 35.0, 8.0),
    (60.0, 55.0, 85.0, 80.0, 12.5),
]


def plane_z(x, y):
    return Z0 + SLOPE_X * (x - X0) + SLOPE_Y * (y - Y0)


def write_las(path: Path, x, y, z, cls, crs: str | None = "EPSG:25832", point_format: int = 1,
              scale: float = 0.001, version: str | None = None) -> Path:
    header = laspy.LasHeader(point_format=point_format, version=version or ("1.4" if point_format >= 6 else "1.2"))
    header.scales = np.array([scale, scale, scale])
    header.offsets = np.array([np.floor(np.min(x)), np.floor(np.min(y)), 0.0])
    if crs is not None:
        header.add_crs(pyproj.CRS(crs))
    las = laspy.LasData(header)
    las.x, las.y, las.z = x, y, z
    las.classification = np.asarray(cls, dtype=np.uint8)
    las.intensity = np.full(len(x), 100, dtype=np.uint16)
    las.return_number = np.ones(len(x), dtype=np.uint8)
    las.number_of_returns = np.ones(len(x), dtype=np.uint8)
    las.write(path, laz_backend=laspy.LazBackend.Lazrs)
    return path


def synthetic_scene(density_m2: float = 4.0, seed: int = 1, extent=(-25.0, -25.0, 125.0, 125.0)):
    """Tilted ground plane with two flat-roofed boxes; ground under the boxes is occluded."""
    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = extent
    n = int(density_m2 * (maxx - minx) * (maxy - miny))
    x = X0 + rng.uniform(minx, maxx, n)
    y = Y0 + rng.uniform(miny, maxy, n)
    z = plane_z(x, y) + rng.normal(0, 0.01, n)
    cls = np.full(n, 2, dtype=np.uint8)
    for bx0, by0, bx1, by1, h in BOXES:
        inside = (x >= X0 + bx0) & (x < X0 + bx1) & (y >= Y0 + by0) & (y < Y0 + by1)
        # roof: flat at ground height of the box's centre + h (what a building on a slope does)
        zc = plane_z(X0 + (bx0 + bx1) / 2, Y0 + (by0 + by1) / 2)
        z[inside] = zc + h
        cls[inside] = 1  # Thuringian files: buildings are unclassified
    return x, y, z, cls


@pytest.fixture(scope="module")
def scene_file(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("scene")
    x, y, z, cls = synthetic_scene()
    return write_las(d / "scene.laz", x, y, z, cls)


@pytest.fixture(scope="module")
def staged_scene(scene_file, tmp_path_factory):
    d = tmp_path_factory.mktemp("staged")
    stats = stage_tile([scene_file], TILE, "test-lidar", d / "t.laz", d / "t.tif", "EPSG:25832")
    return stats, d / "t.laz", d / "t.tif"


# --------------------------------------------------------------------------------------------
# real sample files
# --------------------------------------------------------------------------------------------
# file -> (EPSG the README gives, processing CRS to read it in)
WITH_CRS = {
    "4_6_crop.las": (2903, "EPSG:26913"),
    "autzen-utm.las": (26910, "EPSG:26910"),
}
WITHOUT_CRS = ["simple.las", "plane.laz", "vegetation_1_3.las", "autzen-thin-srs.las"]


def _count(paths, **kw) -> int:
    return sum(len(c) for c in iter_points(paths, "lidar", **kw))


@pytest.mark.parametrize("name", sorted(WITH_CRS))
def test_sample_with_epsg_crs_is_read_completely(shared_data, name):
    path = shared_data / SAMPLES / name
    epsg, proc = WITH_CRS[name]
    assert read_las_crs(path, "lidar").to_epsg() == epsg
    header_count = laspy.open(path).header.point_count
    assert _count([path], crs_override=None, processing_crs=proc) == header_count


def test_sample_with_esri_wkt_is_oregon_lambert_in_feet(shared_data):
    path = shared_data / SAMPLES / "autzen_trim.laz"
    res = resolve_las_crs(path, "lidar")
    assert res.source == "file-wkt"
    assert res.crs.is_projected and "Lambert" in res.crs.name
    assert res.crs.axis_info[0].unit_name == "foot"
    chunks = list(iter_points([path], "lidar", None, "EPSG:26910"))
    pts = np.concatenate(chunks)
    assert len(pts) == 110_000
    # independent: transform with pyproj directly; heights from international feet to metres
    raw = laspy.read(path)
    tr = pyproj.Transformer.from_crs(res.crs, "EPSG:26910", always_xy=True)
    ex, ey = tr.transform(np.asarray(raw.x), np.asarray(raw.y))
    np.testing.assert_allclose(pts["x"], ex, atol=1e-6)
    np.testing.assert_allclose(pts["y"], ey, atol=1e-6)
    np.testing.assert_allclose(pts["z"], np.asarray(raw.z) * 0.3048, atol=1e-6)
    # Autzen stadium, Eugene (Oregon): about 123 W / 44 N, ground 120-180 m
    lon, lat = pyproj.Transformer.from_crs("EPSG:26910", "EPSG:4326", always_xy=True).transform(
        pts["x"].mean(), pts["y"].mean())
    assert -123.2 < lon < -122.9 and 43.9 < lat < 44.2
    assert 100 < np.median(pts["z"]) < 200


@pytest.mark.parametrize("name", WITHOUT_CRS)
def test_sample_without_crs_needs_override(shared_data, name):
    path = shared_data / SAMPLES / name
    with pytest.raises(CRSError) as ei:
        read_las_crs(path, "lidar")
    msg = str(ei.value)
    assert "sources.lidar.crs" in msg and name in msg and "dataset 'lidar'" in msg
    res = resolve_las_crs(path, "lidar", "EPSG:25832")
    assert res.source == "override" and res.crs.to_epsg() == 25832 and "sources.lidar.crs" in res.note
    header_count = laspy.open(path).header.point_count
    assert _count([path], crs_override="EPSG:25832", processing_crs="EPSG:25832") == header_count


def test_sample_with_broken_wkt(shared_data):
    path = shared_data / SAMPLES / "warsaw_small.las"
    with pytest.raises(CRSError, match="unparsable") as ei:
        read_las_crs(path, "lidar")
    assert "warsaw_small.las" in str(ei.value) and "sources.lidar.crs" in str(ei.value)
    res = resolve_las_crs(path, "lidar", "EPSG:2180")
    assert res.source == "override" and "could not be used" in res.note
    pts = np.concatenate(list(iter_points([path], "lidar", "EPSG:2180", "EPSG:2180")))
    assert len(pts) == 3000
    assert sorted(np.unique(pts["classification"])) == [0, 2, 3, 4, 5]


def test_file_crs_that_differs_from_override_is_an_error(shared_data):
    path = shared_data / SAMPLES / "autzen-utm.las"
    with pytest.raises(CRSError) as ei:
        read_las_crs(path, "lidar", "EPSG:25832")
    msg = str(ei.value)
    assert "EPSG:26910" in msg and "EPSG:25832" in msg and "autzen-utm.las" in msg
    assert read_las_crs(path, "lidar", "EPSG:26910").to_epsg() == 26910


def test_geographic_sample_has_impossible_coordinates(shared_data, tmp_path):
    """simple1_4.las says EPSG:4326 but holds x 1..226, y 1..100: no silent wrong answer."""
    path = shared_data / SAMPLES / "simple1_4.las"
    info = scan_las(path, "lidar")
    assert info.crs.to_epsg() == 4326 and info.crs.is_geographic
    assert info.version == "1.4" and info.point_format == 7 and info.point_count == 22_600
    with pytest.raises(CRSError, match="not valid longitudes/latitudes") as ei:
        list(iter_points([path], "lidar", None, "EPSG:32631"))
    assert "simple1_4.las" in str(ei.value)
    with pytest.raises(CRSError, match="not valid longitudes/latitudes"):
        stage_tile([path], Tile(0, 0), "lidar", tmp_path / "x.laz", tmp_path / "x.tif", "EPSG:32631")


def test_geographic_file_is_reprojected(tmp_path):
    rng = np.random.default_rng(3)
    lon = rng.uniform(11.57, 11.60, 2000)   # Jena
    lat = rng.uniform(50.92, 50.94, 2000)
    z = rng.uniform(150, 160, 2000)
    path = write_las(tmp_path / "geo.las", lon, lat, z, np.full(2000, 2), crs="EPSG:4326", scale=1e-7,
                     point_format=6)
    assert read_las_crs(path, "lidar").is_geographic
    pts = np.concatenate(list(iter_points([path], "lidar", None, "EPSG:25832")))
    raw = laspy.read(path)
    ex, ey = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:25832", always_xy=True).transform(
        np.asarray(raw.x), np.asarray(raw.y))
    np.testing.assert_allclose(pts["x"], ex, atol=1e-6)
    np.testing.assert_allclose(pts["y"], ey, atol=1e-6)
    np.testing.assert_allclose(pts["z"], z, atol=1e-3)
    assert 681_000 < pts["x"].mean() < 683_000 and 5_643_000 < pts["y"].mean() < 5_647_000
    # a geographic processing CRS is refused
    with pytest.raises(CRSError, match="projected CRS in metres"):
        list(iter_points([path], "lidar", None, "EPSG:4326"))


def test_bad_override_is_a_config_error(tmp_path, scene_file):
    with pytest.raises(ConfigError, match="sources.lidar.crs"):
        read_las_crs(scene_file, "lidar", "EPSG:999999")


# --------------------------------------------------------------------------------------------
# Delft (real AHN3, no CRS record)
# --------------------------------------------------------------------------------------------
DELFT_CLASSES = {1: 282_445, 2: 283_118, 6: 280_065, 9: 835, 26: 2_479}
# a 1.1 km tile that holds both crops (they straddle x = 85000)
DELFT_TILE = Tile(84, 447, size_m=1100.0, prefix="")


@pytest.fixture(scope="module")
def delft_staged(shared_data, tmp_path_factory):
    d = tmp_path_factory.mktemp("delft")
    paths = sorted((shared_data / DELFT).glob("*.laz"))
    stats = stage_tile(paths, DELFT_TILE, "ahn3", d / "delft.laz", d / "delft.tif", "EPSG:28992",
                       crs_override="EPSG:28992")
    return stats, d / "delft.laz", d / "delft.tif"


def test_delft_without_override_fails(shared_data, tmp_path):
    paths = sorted((shared_data / DELFT).glob("*.laz"))
    with pytest.raises(CRSError, match="sources.lidar.crs"):
        stage_tile(paths, DELFT_TILE, "ahn3", tmp_path / "a.laz", tmp_path / "a.tif", "EPSG:28992")
    assert not (tmp_path / "a.laz").exists()


def test_delft_class_histogram_matches_readme(shared_data, delft_staged):
    paths = sorted((shared_data / DELFT).glob("*.laz"))
    hist: dict[int, int] = {}
    for chunk in iter_points(paths, "ahn3", "EPSG:28992", "EPSG:28992", chunk_points=300_000):
        c, n = np.unique(chunk["classification"], return_counts=True)
        for ci, ni in zip(c, n):
            hist[int(ci)] = hist.get(int(ci), 0) + int(ni)
    assert hist == DELFT_CLASSES
    stats = delft_staged[0]
    assert stats.class_counts == {str(k): v for k, v in DELFT_CLASSES.items()}
    assert stats.point_count == stats.staged_point_count == 848_942
    # README: about 14 points/m² over about 60,300 m² (covered area counted in 2 m cells)
    assert 13.0 < stats.density_m2 < 16.5
    assert 50_000 < stats.covered_area_m2 < 64_000
    json.dumps(stats.to_dict())


def test_delft_dtm_agrees_with_ground_points(delft_staged):
    stats, laz, tif = delft_staged
    las = laspy.read(laz)
    cls = np.asarray(las.classification)
    g = cls == 2
    with rasterio.open(tif) as src:          # independent sampling: rasterio, nearest cell
        assert src.crs.to_epsg() == 28992
        rows, cols = rasterio.transform.rowcol(src.transform, np.asarray(las.x)[g], np.asarray(las.y)[g])
        vals = src.read(1)[np.asarray(rows), np.asarray(cols)]
        nodata = src.nodata
    assert (vals != nodata).all()
    assert np.median(np.abs(np.asarray(las.z)[g] - vals)) < 0.1
    hag = np.asarray(las[HAG_DIMENSION])
    assert np.median(np.abs(hag[g])) < 0.1
    b = hag[cls == 6]
    assert 5.0 < np.median(b) < 15.0 and (np.median(b) > 0)
    assert np.mean(b > 0) > 0.98
    # the staged file keeps class 6 and carries the processing CRS
    assert set(np.unique(cls)) == set(DELFT_CLASSES)
    assert las.header.parse_crs().to_epsg() == 28992
    assert laspy.open(laz).header.point_format.id == 1


# --------------------------------------------------------------------------------------------
# synthetic tiles
# --------------------------------------------------------------------------------------------
def test_dtm_equals_plane_including_under_boxes(staged_scene):
    stats, laz, tif = staged_scene
    r = read_geotiff(tif)
    assert r.crs.to_epsg() == 25832 and r.resolution_m == (1.0, 1.0)
    assert r.bounds == pytest.approx(TILE.bounds_with_halo(25.0))   # DTM covers tile + halo
    dtm = r.masked
    rows, cols = np.indices(dtm.shape)
    cx = r.transform.c + (cols + 0.5)
    cy = r.transform.f - (rows + 0.5)
    expected = plane_z(cx, cy)
    inner = (cx > X0 - 20) & (cx < X0 + 120) & (cy > Y0 - 20) & (cy < Y0 + 120)
    assert np.isfinite(dtm[inner]).all()
    # a cell holds the mean of its ~4 ground points, which sit up to half a cell off the centre:
    # bias <= 0.5 m * (0.05 + 0.03) = 0.04 m, plus 3 sigma of the mean of the 1 cm noise
    err = np.abs(dtm - expected)
    assert err[inner].max() < 0.08 and err[inner].mean() < 0.02
    for bx0, by0, bx1, by1, _ in BOXES:
        under = (cx > X0 + bx0) & (cx < X0 + bx1) & (cy > Y0 + by0) & (cy < Y0 + by1)
        assert err[under].max() < 0.08 and err[under].mean() < 0.02
    assert stats.dtm_info["filled_harmonic_cells"] >= 20 * 15 + 25 * 25 - 100


def test_hag_of_roofs_equals_box_height(staged_scene):
    stats, laz, _ = staged_scene
    las = laspy.read(laz)
    x, y, hag = np.asarray(las.x), np.asarray(las.y), np.asarray(las[HAG_DIMENSION])
    assert las[HAG_DIMENSION].dtype == np.float32
    for bx0, by0, bx1, by1, h in BOXES:
        inside = (x >= X0 + bx0) & (x < X0 + bx1) & (y >= Y0 + by0) & (y < Y0 + by1)
        # the roof is flat, the ground tilted: HAG = h + (plane at centre - plane at the point)
        zc = plane_z(X0 + (bx0 + bx1) / 2, Y0 + (by0 + by1) / 2)
        expected = h + zc - plane_z(x[inside], y[inside])
        np.testing.assert_allclose(hag[inside], expected, atol=0.05)
    ground = np.asarray(las.classification) == 2
    assert np.abs(hag[ground]).max() < 0.1


def test_stats_of_synthetic_tile(staged_scene, scene_file):
    stats, laz, _ = staged_scene
    raw = laspy.read(scene_file)
    x, y = np.asarray(raw.x), np.asarray(raw.y)
    minx, miny, maxx, maxy = TILE.bounds
    in_tile = (x >= minx) & (x < maxx) & (y >= miny) & (y < maxy)
    in_halo = (x >= minx - 25) & (x < maxx + 25) & (y >= miny - 25) & (y < maxy + 25)
    assert stats.point_count == in_tile.sum()
    assert stats.staged_point_count == in_halo.sum() == laspy.open(laz).header.point_count
    assert stats.class_counts == {"1": int((np.asarray(raw.classification)[in_tile] == 1).sum()),
                                  "2": int((np.asarray(raw.classification)[in_tile] == 2).sum())}
    assert stats.coverage_share == pytest.approx(1.0)
    assert stats.density_m2 == pytest.approx(in_tile.sum() / 10_000)
    assert stats.outliers_high_count == 0 and stats.outliers_low_count == 0
    assert not stats.empty and stats.point_format == 1
    json.dumps(stats.to_dict())


def test_partially_covered_tile_is_not_judged_sparse(tmp_path):
    x, y, z, cls = synthetic_scene(extent=(0.0, 0.0, 50.0, 100.0), density_m2=4.0)  # west half only
    f = write_las(tmp_path / "half.laz", x, y, z, cls)
    stats = stage_tile([f], TILE, "t", tmp_path / "h.laz", tmp_path / "h.tif", "EPSG:25832")
    assert stats.coverage_share == pytest.approx(0.5, abs=0.01)
    assert stats.density_m2 == pytest.approx(4.0, rel=0.05)
    dtm = read_geotiff(tmp_path / "h.tif")
    assert dtm.nodata is not None
    # east half has no data: nodata there
    assert (dtm.masked[:, -40:] != dtm.masked[:, -40:]).all()


def test_outliers_are_kept_and_counted(tmp_path):
    x, y, z, cls = synthetic_scene()
    x = np.append(x, [X0 + 10, X0 + 11, X0 + 12])
    y = np.append(y, [Y0 + 10, Y0 + 10, Y0 + 10])
    z = np.append(z, [plane_z(X0 + 10, Y0 + 10) + 300, plane_z(X0 + 11, Y0 + 10) + 250,
                      plane_z(X0 + 12, Y0 + 10) - 10])   # two birds, one low noise point
    cls = np.append(cls, [1, 1, 7])
    f = write_las(tmp_path / "o.laz", x, y, z, cls)
    stats = stage_tile([f], TILE, "t", tmp_path / "o_out.laz", tmp_path / "o.tif", "EPSG:25832")
    assert stats.outliers_high_count == 2 and stats.outliers_low_count == 1
    assert stats.class_counts["7"] == 1
    hag = np.asarray(laspy.read(tmp_path / "o_out.laz")[HAG_DIMENSION])
    assert (hag > 200).sum() == 2 and (hag < -5).sum() == 1


def test_tiny_chunks_give_the_same_result(scene_file, staged_scene, tmp_path):
    threads_before = threading.active_count()
    big = staged_scene[0]
    small = stage_tile([scene_file], TILE, "test-lidar", tmp_path / "s.laz", tmp_path / "s.tif",
                       "EPSG:25832", chunk_points=997)
    a, b = big.to_dict(), small.to_dict()
    for d in (a, b):
        for k in ("seconds", "laz_path", "dtm_path"):
            d.pop(k)
    assert a == b
    np.testing.assert_allclose(read_geotiff(tmp_path / "s.tif").array, read_geotiff(staged_scene[2]).array,
                               atol=1e-4)
    l1, l2 = laspy.read(tmp_path / "s.laz"), laspy.read(staged_scene[1])
    np.testing.assert_array_equal(l1.X, l2.X)
    np.testing.assert_allclose(l1[HAG_DIMENSION], l2[HAG_DIMENSION], atol=1e-4)
    assert threading.active_count() == threads_before


def test_empty_tile_is_a_result_not_a_crash(scene_file, tmp_path):
    far = Tile(510, 5610, size_m=100.0)
    stats = stage_tile([scene_file], far, "t", tmp_path / "e.laz", tmp_path / "e.tif", "EPSG:25832")
    assert stats.empty and stats.point_count == 0
    assert stats.files_skipped == [str(scene_file)]
    assert not (tmp_path / "e.laz").exists() and not (tmp_path / "e.tif").exists()
    assert list(tmp_path.iterdir()) == []          # no temp files left behind
    # a tile whose halo touches the data but whose interior does not
    near = Tile(500, 5600, size_m=100.0)
    x, y, z, cls = synthetic_scene(extent=(-20.0, -20.0, -5.0, -5.0))
    f = write_las(tmp_path / "corner.laz", x, y, z, cls)
    stats = stage_tile([f], near, "t", tmp_path / "c.laz", tmp_path / "c.tif", "EPSG:25832")
    assert stats.empty and stats.files_skipped == []
    assert stats.to_dict()["empty"] is True


def test_tile_without_ground_points(tmp_path):
    x, y, z, cls = synthetic_scene()
    f = write_las(tmp_path / "ng.laz", x, y, z, np.ones_like(cls))
    stats = stage_tile([f], TILE, "t", tmp_path / "ng_out.laz", tmp_path / "ng.tif", "EPSG:25832")
    assert not stats.empty and stats.ground_point_count == 0
    assert stats.hag_missing_count == stats.point_count
    assert any("no ground" in n for n in stats.notes)


def test_truncated_laz_is_a_source_data_error(tmp_path, scene_file):
    threads_before = threading.active_count()
    data = scene_file.read_bytes()
    cut = tmp_path / "cut.laz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(SourceDataError) as ei:
        stage_tile([cut], TILE, "lidar-th", tmp_path / "x.laz", tmp_path / "x.tif", "EPSG:25832")
    msg = str(ei.value)
    assert "cut.laz" in msg and "dataset 'lidar-th'" in msg and "re-download" in msg
    assert not (tmp_path / "x.laz").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.laz"]   # no temp/spool files left
    assert threading.active_count() == threads_before   # no helper thread outlives the call (fork safety)


def test_truncated_las_and_non_las_are_source_data_errors(tmp_path, shared_data):
    src = (shared_data / SAMPLES / "simple.las").read_bytes()
    cut = tmp_path / "cut.las"
    cut.write_bytes(src[:20_000])
    with pytest.raises(SourceDataError, match="cut.las"):
        list(iter_points([cut], "lidar", "EPSG:25832", "EPSG:25832"))
    junk = tmp_path / "junk.laz"
    junk.write_bytes(b"<html>404 Not Found</html>" * 20)
    with pytest.raises(SourceDataError, match="junk.laz.*Fix"):
        scan_las(junk, "lidar")
    with pytest.raises(SourceDataError, match="does not exist"):
        scan_las(tmp_path / "missing.laz", "lidar")


def test_iter_points_clips_and_reports_dtype(scene_file):
    b = (X0, Y0, X0 + 50, Y0 + 50)
    pts = np.concatenate(list(iter_points([scene_file], "t", None, "EPSG:25832", bounds=b, chunk_points=5000)))
    assert pts.dtype == POINT_DTYPE
    raw = laspy.read(scene_file)
    x, y = np.asarray(raw.x), np.asarray(raw.y)
    assert len(pts) == ((x >= b[0]) & (x < b[2]) & (y >= b[1]) & (y < b[3])).sum()
    assert (pts["x"] >= b[0]).all() and (pts["x"] < b[2]).all()


def test_point_format_14_family_is_kept(tmp_path):
    x, y, z, cls = synthetic_scene(density_m2=1.0)
    f = write_las(tmp_path / "p6.laz", x, y, z, cls, point_format=6)
    stats = stage_tile([f], TILE, "t", tmp_path / "p6_out.laz", tmp_path / "p6.tif", "EPSG:25832")
    h = laspy.open(tmp_path / "p6_out.laz").header
    assert h.point_format.id == 6 and HAG_DIMENSION in h.point_format.extra_dimension_names
    assert h.parse_crs().to_epsg() == 25832 and stats.point_format == 6


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def test_complete_dtm_fills_a_hole_in_a_plane_exactly():
    rows, cols = np.indices((60, 80)).astype(float)
    plane = 10 + 0.3 * cols - 0.2 * rows
    g = plane.copy()
    g[20:40, 30:55] = np.nan            # a building
    covered = np.ones_like(g, dtype=bool)
    covered[:, 75:] = False             # outside coverage
    g[:, 75:] = np.nan
    dtm, info = complete_dtm(g, covered)
    assert np.isnan(dtm[:, 75:]).all()
    np.testing.assert_allclose(dtm[20:40, 30:55], plane[20:40, 30:55], atol=1e-9)
    assert info["filled_harmonic_cells"] == 20 * 25
    # a gap with no ground neighbour at all (an island of roof points) takes the nearest ground value
    g2 = np.full((10, 10), np.nan)
    g2[0, 0] = 5.0
    cov2 = np.zeros((10, 10), bool)
    cov2[0, 0] = True
    cov2[5:8, 5:8] = True
    dtm2, info2 = complete_dtm(g2, cov2)
    assert (dtm2[5:8, 5:8] == 5.0).all() and info2["filled_nearest_cells"] == 9
    assert np.isnan(complete_dtm(np.full((4, 4), np.nan), np.ones((4, 4), bool))[0]).all()


def test_large_gap_systems_are_solved_in_two_halves_with_the_same_result(monkeypatch):
    """Above the split size the gaps (a lake and many buildings) are solved as two independent
    halves on two threads: still exact on a plane, and equal to the one-system solve."""
    from citymodel.lidar import dtm_grid

    rows, cols = np.indices((400, 400)).astype(float)
    plane = 200 + 0.04 * cols - 0.03 * rows
    g = plane.copy()
    g[50:200, 60:210] = np.nan                          # a lake: one large gap
    for i in range(8):
        for j in range(8):
            g[230 + 20 * i:242 + 20 * i, 230 + 20 * j:245 + 20 * j] = np.nan    # 64 buildings
    covered = np.ones_like(g, dtype=bool)
    assert np.isnan(g).sum() >= dtm_grid._SPLIT_SOLVE_CELLS
    half, n0 = dtm_grid._two_halves(np.array([0, 22_500] + [180] * 64))  # label 0 is no gap: the lake vs buildings
    assert n0 == 22_500 and half[1] == 0 and (half[2:] == 1).all()
    half, n0 = dtm_grid._two_halves(np.array([0, 5, 3, 3, 1]))
    assert n0 == 6 and sorted(half[1:].tolist()) == [0, 0, 1, 1]
    split, info = complete_dtm(g, covered)
    np.testing.assert_allclose(split, plane, atol=1e-8)
    monkeypatch.setattr(dtm_grid, "_SPLIT_SOLVE_CELLS", 10**9)
    whole, info_whole = complete_dtm(g, covered)
    np.testing.assert_allclose(split, whole, atol=1e-9)
    assert info == info_whole


def test_write_geotiff_roundtrip_and_atomic(tmp_path):
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    p = write_geotiff(tmp_path / "sub" / "a.tif", arr, bounds=(0, 0, 8, 6), crs="EPSG:25832", nodata=-1,
                      tags={"method": "test"})
    with rasterio.open(p) as src:        # independent reader
        assert src.profile["compress"] == "deflate" and src.profile["tiled"]
        assert src.res == (2.0, 2.0) and src.crs.to_epsg() == 25832 and src.nodata == -1
        np.testing.assert_array_equal(src.read(1), arr)
        assert src.tags()["method"] == "test"
    assert [q.name for q in p.parent.iterdir()] == ["a.tif"]
    r = read_geotiff(p)
    # cell (row 0, col 1) spans x 2..4, y 4..6; (row 2, col 3) spans x 6..8, y 0..2; nodata -> NaN
    np.testing.assert_array_equal(sample_geotiff(r, np.array([3.0, 7.5, 50.0]), np.array([5.0, 0.5, 1.0])),
                                  [1.0, 11.0, np.nan])
    with pytest.raises(ValueError):
        write_geotiff(tmp_path / "b.tif", arr, crs="EPSG:25832")


def test_bilinear_matches_scipy_map_coordinates():
    from scipy import ndimage

    from citymodel.lidar import Grid, bilinear

    rng = np.random.default_rng(5)
    grid = Grid(minx=100.0, maxy=200.0, resolution_m=2.0, rows=7, cols=9)
    values = rng.normal(size=(7, 9))
    x = rng.uniform(99.0, 120.0, 500)
    y = rng.uniform(184.0, 201.0, 500)
    expected = ndimage.map_coordinates(values, [(200.0 - y) / 2.0 - 0.5, (x - 100.0) / 2.0 - 0.5],
                                       order=1, mode="nearest")
    np.testing.assert_allclose(bilinear(grid, values, x, y), expected, atol=1e-12)


# --------------------------------------------------------------------------------------------
# LAZ backends and the in-memory / spool paths give the same result
# --------------------------------------------------------------------------------------------
def _comparable(stats) -> dict:
    d = stats.to_dict()
    for k in ("seconds", "laz_path", "dtm_path", "laz_backend"):
        d.pop(k)
    return d


def test_single_threaded_spooled_staging_equals_parallel_in_memory(scene_file, tmp_path):
    from citymodel.lidar import LAZ_BACKEND, LAZ_PARALLEL_BACKEND

    threads_before = threading.active_count()
    par = stage_tile([scene_file], TILE, "t", tmp_path / "p.laz", tmp_path / "p.tif", "EPSG:25832",
                     chunk_points=7_001, parallel_laz=True)
    one = stage_tile([scene_file], TILE, "t", tmp_path / "s.laz", tmp_path / "s.tif", "EPSG:25832",
                     chunk_points=7_001, parallel_laz=False, in_memory_max_points=0)
    assert par.laz_backend == LAZ_PARALLEL_BACKEND.name and one.laz_backend == LAZ_BACKEND.name
    assert _comparable(par) == _comparable(one)
    a, b = laspy.read(tmp_path / "p.laz"), laspy.read(tmp_path / "s.laz")
    np.testing.assert_array_equal(a.points.array, b.points.array)      # bit-identical points and HAG
    np.testing.assert_array_equal(read_geotiff(tmp_path / "p.tif").array, read_geotiff(tmp_path / "s.tif").array)
    # the spool is gone, only the outputs remain
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.laz", "p.tif", "s.laz", "s.tif"]
    assert threading.active_count() == threads_before
    # staged coordinates are the source coordinates (same scale: exact integer shift of the offset)
    raw = laspy.read(scene_file)
    x, y = np.asarray(raw.x), np.asarray(raw.y)
    m = (x >= TILE.bounds[0] - 25) & (x < TILE.bounds[2] + 25) & (y >= TILE.bounds[1] - 25) & (y < TILE.bounds[3] + 25)
    np.testing.assert_array_equal(np.sort(np.asarray(a.x)), np.sort(x[m]))
    np.testing.assert_array_equal(np.sort(np.asarray(a.z)), np.sort(np.asarray(raw.z)[m]))


def test_staged_las_holds_the_same_points_as_staged_laz(scene_file, tmp_path):
    """lidar.staged_format: '.las' writes the same records uncompressed (the default), '.laz' compressed."""
    a = stage_tile([scene_file], TILE, "t", tmp_path / "a.laz", tmp_path / "a.tif", "EPSG:25832")
    b = stage_tile([scene_file], TILE, "t", tmp_path / "b.las", tmp_path / "b.tif", "EPSG:25832")
    assert _comparable(a) == _comparable(b)
    la, lb = laspy.read(tmp_path / "a.laz"), laspy.read(tmp_path / "b.las")
    assert la.header.are_points_compressed and not lb.header.are_points_compressed
    np.testing.assert_array_equal(la.points.array, lb.points.array)
    assert HAG_DIMENSION in lb.point_format.extra_dimension_names
    n = len(lb.points)
    assert (tmp_path / "b.las").stat().st_size >= n * lb.header.point_format.size
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.laz", "a.tif", "b.las", "b.tif"]


@pytest.mark.parametrize("point_format", [1, 6])
def test_compiled_pass1_loop_equals_the_numpy_formulation(point_format):
    """The numba loop of pass 1 against the plain numpy statistics it replaces (bincount etc.)."""
    from citymodel.lidar import Grid
    from citymodel.lidar.kernels import accumulate_pass1
    from citymodel.lidar.staging import _bit_layout

    rng = np.random.default_rng(point_format)
    n = 50_000
    x = rng.uniform(-30, 1030, n)               # some points beyond grid and tile
    y = rng.uniform(-30, 1030, n)
    z = rng.normal(100, 5, n)
    rec = laspy.ScaleAwarePointRecord.zeros(n, point_format=laspy.PointFormat(point_format),
                                            scales=np.array([0.01] * 3), offsets=np.zeros(3))
    rec.classification = rng.choice([1, 2, 2, 6, 9], n)
    rec.return_number = rng.integers(1, 8 if point_format < 6 else 16, n)
    rec.number_of_returns = rng.integers(1, 8 if point_format < 6 else 16, n)
    if point_format < 6:
        rec.withheld = rng.integers(0, 2, n).astype(bool)          # a flag in the class byte
    grid = Grid.from_bounds((-20.0, -20.0, 1020.0, 1020.0), 1.0)
    cov = Grid.from_bounds((0.0, 0.0, 1000.0, 1000.0), 2.0)
    tb = (0.0, 0.0, 1000.0, 1000.0)
    ncell = grid.rows * grid.cols
    out = dict(any_cnt=np.zeros(ncell, np.int64), g_sum=np.zeros(ncell), g_cnt=np.zeros(ncell, np.int64),
               cov_cnt=np.zeros(cov.rows * cov.cols, np.int64), cls_hist=np.zeros(256, np.int64),
               ret_hist=np.zeros(16, np.int64), bmin=np.full(3, np.inf), bmax=np.full(3, -np.inf))
    raw = rec.array
    cls_field, cls_mask, rn_mask, nr_shift, nr_mask = _bit_layout(point_format)
    # the class and return bits as stored; the expected values below come from laspy's own accessors
    common = (raw[cls_field], cls_mask, raw["bit_fields"], rn_mask, nr_shift, nr_mask, 2,
              np.array([grid.minx, grid.maxy, grid.resolution_m, grid.rows, grid.cols], float))
    n_tile, multi = accumulate_pass1(
        x, y, z, *common, out["any_cnt"],
        out["g_sum"], out["g_cnt"], np.array(tb, float),
        np.array([cov.minx, cov.maxy, cov.resolution_m, cov.rows, cov.cols], float), out["cov_cnt"],
        out["cls_hist"], out["ret_hist"], out["bmin"], out["bmax"])
    # numpy
    cls = np.asarray(rec.classification)
    row, col, inside = grid.cell_index(x, y)
    flat = (row * grid.cols + col)[inside]
    g = cls[inside] == 2
    np.testing.assert_array_equal(out["any_cnt"], np.bincount(flat, minlength=ncell))
    np.testing.assert_array_equal(out["g_cnt"], np.bincount(flat[g], minlength=ncell))
    np.testing.assert_allclose(out["g_sum"], np.bincount(flat[g], weights=z[inside][g], minlength=ncell))
    t = (x >= tb[0]) & (x < tb[2]) & (y >= tb[1]) & (y < tb[3])
    assert n_tile == t.sum() and 0 < n_tile < n
    assert multi == np.count_nonzero(np.asarray(rec.number_of_returns)[t] > 1)
    np.testing.assert_array_equal(out["cls_hist"], np.bincount(cls[t], minlength=256))
    np.testing.assert_array_equal(out["ret_hist"], np.bincount(np.minimum(np.asarray(rec.return_number)[t], 15),
                                                               minlength=16))
    crow, ccol, cin = cov.cell_index(x[t], y[t])
    np.testing.assert_array_equal(out["cov_cnt"], np.bincount((crow * cov.cols + ccol)[cin],
                                                              minlength=cov.rows * cov.cols))
    np.testing.assert_array_equal(out["bmin"], [x[t].min(), y[t].min(), z[t].min()])
    np.testing.assert_array_equal(out["bmax"], [x[t].max(), y[t].max(), z[t].max()])

    # the integer-coordinate variant, on the record's own scaled coordinates, gives the same
    from citymodel.lidar.kernels import accumulate_pass1_scaled

    rec.x, rec.y, rec.z = x, y, z
    xs, ys, zs = (np.asarray(v, dtype=np.float64) for v in (rec.x, rec.y, rec.z))
    def fresh():
        o = {k: np.zeros_like(v) for k, v in out.items()}
        o["bmin"][:], o["bmax"][:] = np.inf, -np.inf
        return o

    again, ref = fresh(), fresh()
    tail = lambda o: (o["any_cnt"], o["g_sum"], o["g_cnt"], np.array(tb, float),  # noqa: E731
                      np.array([cov.minx, cov.maxy, cov.resolution_m, cov.rows, cov.cols], float), o["cov_cnt"],
                      o["cls_hist"], o["ret_hist"], o["bmin"], o["bmax"])
    r1 = accumulate_pass1_scaled(raw["X"], raw["Y"], raw["Z"], np.asarray(rec.scales, float),
                                 np.asarray(rec.offsets, float), *common, *tail(again), np.zeros(0, bool))
    r2 = accumulate_pass1(xs, ys, zs, *common, *tail(ref))
    assert r1 == r2 and r1[0] > 0
    for k in out:
        np.testing.assert_array_equal(again[k], ref[k])


def test_records_masked_keeps_the_points_of_chunks(scene_file):
    """The integer fast path of the reader keeps exactly the points the float path keeps."""
    from citymodel.lidar import scan_las
    from citymodel.lidar.reading import FileStream

    info = scan_las(scene_file, "t", "EPSG:25832")
    proc = pyproj.CRS("EPSG:25832")
    x0, y0, x1, y1 = TILE.bounds
    bounds = (x0 + 12.3456, y0 - 10.0, x1 - 30.0, y0 + 40.005)     # cuts through the file
    fast = FileStream(info, "t", proc)
    assert fast.integer_xyz
    a = np.concatenate([r.array if keep is None else r.array[keep]
                        for r, keep in fast.records_masked(bounds, 5_000)])
    b = np.concatenate([r.array for r, *_ in FileStream(info, "t", proc).chunks(bounds, 5_000)])
    assert 0 < len(a) < info.point_count
    np.testing.assert_array_equal(a, b)
    assert fast.points_read == info.point_count


def test_compiled_hag_loop_equals_bilinear_and_counts_outliers():
    from citymodel.lidar import Grid
    from citymodel.lidar.dtm_grid import BilinearInterpolator
    from citymodel.lidar.kernels import bilinear_hag

    rng = np.random.default_rng(9)
    grid = Grid(minx=100.0, maxy=200.0, resolution_m=2.0, rows=7, cols=9)
    values = rng.normal(50, 3, size=(7, 9))
    values[3, 4] = np.nan                                   # NaN spreads to the points of its patches
    n = 5_000
    sc, off = np.array([0.01, 0.01, 0.01]), np.array([100.0, 180.0, 0.0])
    X = rng.integers(-100, 2100, n).astype(np.int32)        # beyond the grid: clamped
    Y = rng.integers(0, 2100, n).astype(np.int32)
    Z = rng.integers(4000, 12500, n).astype(np.int32)       # HAG about -10 .. 75 m
    arr = np.zeros(n, dtype=[("X", "<i4"), ("Y", "<i4"), ("Z", "<i4"), ("hag", "<f4")])
    arr["X"], arr["Y"], arr["Z"] = X, Y, Z
    interp = BilinearInterpolator(grid, values)
    tile = np.array([102.0, 184.0, 112.0, 198.0])
    hi, lo, missing = bilinear_hag(arr["X"], arr["Y"], arr["Z"], sc, off, interp.coef, interp.rows, interp.cols,
                                   grid.minx, grid.maxy, 1.0 / grid.resolution_m, tile, -2.0, 60.0, arr["hag"])
    x, y, z = X * sc[0] + off[0], Y * sc[1] + off[1], Z * sc[2] + off[2]
    expected = (z - interp(x, y)).astype(np.float32)
    np.testing.assert_array_equal(arr["hag"], expected)
    t = (x >= tile[0]) & (x < tile[2]) & (y >= tile[1]) & (y < tile[3])
    e = expected[t]
    assert (hi, lo, missing) == (np.count_nonzero(e > 60), np.count_nonzero(e < -2), np.count_nonzero(np.isnan(e)))
    assert hi > 0 and lo > 0 and missing > 0


def test_parallel_backend_is_not_used_in_a_forked_child_or_when_disabled(monkeypatch):
    import os

    from citymodel.lidar import LAZ_BACKEND, LAZ_PARALLEL_BACKEND, PARALLEL_ENV, staging_laz_backend

    monkeypatch.delenv(PARALLEL_ENV, raising=False)
    assert staging_laz_backend() == LAZ_BACKEND                  # opt-in
    assert staging_laz_backend(False) == LAZ_BACKEND
    monkeypatch.setenv(PARALLEL_ENV, "0")
    assert staging_laz_backend() == LAZ_BACKEND
    if (os.cpu_count() or 1) >= 2:
        assert staging_laz_backend(True) == LAZ_PARALLEL_BACKEND
        monkeypatch.setenv(PARALLEL_ENV, "1")
        assert staging_laz_backend() == LAZ_PARALLEL_BACKEND
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:                      # child: forked without exec -> rayon's pool must not be used
        try:
            os.write(w, (staging_laz_backend(True).name + "," + staging_laz_backend().name).encode())
        finally:
            os._exit(0)
    os.close(w)
    name = os.read(r, 100).decode()
    os.close(r)
    os.waitpid(pid, 0)
    assert name == f"{LAZ_BACKEND.name},{LAZ_BACKEND.name}"


def test_integer_fast_path_equals_the_float_path(scene_file, tmp_path, monkeypatch):
    """Staging through the compiled integer path (masks, byte copy) writes exactly what the float
    path writes; with a 10 m halo the file reaches beyond it, so every chunk is masked."""
    from citymodel.lidar.reading import FileStream

    fast = stage_tile([scene_file], TILE, "t", tmp_path / "f.las", tmp_path / "f.tif", "EPSG:25832", halo_m=10.0,
                      chunk_points=7_001)
    monkeypatch.setattr(FileStream, "integer_xyz", property(lambda self: False))
    slow = stage_tile([scene_file], TILE, "t", tmp_path / "s.las", tmp_path / "s.tif", "EPSG:25832", halo_m=10.0,
                      chunk_points=7_001)
    assert _comparable(fast) == _comparable(slow)
    a, b = laspy.read(tmp_path / "f.las"), laspy.read(tmp_path / "s.las")
    assert 0 < len(a.points) < laspy.open(scene_file).header.point_count
    np.testing.assert_array_equal(a.points.array, b.points.array)
    np.testing.assert_array_equal(read_geotiff(tmp_path / "f.tif").array, read_geotiff(tmp_path / "s.tif").array)


@pytest.mark.parametrize("cut", ["record boundary", "mid-record"])
def test_truncated_staged_las_is_a_clear_error_downstream(scene_file, tmp_path, cut):
    """An uncompressed staged LAS cut short (disk full, killed copy) is not read as a smaller tile."""
    from citymodel.lod2.points import read_tile_points

    stage_tile([scene_file], TILE, "t", tmp_path / "t.las", tmp_path / "t.tif", "EPSG:25832")
    assert len(read_tile_points(tmp_path / "t.las")) > 0
    h = laspy.open(tmp_path / "t.las").header
    data = (tmp_path / "t.las").read_bytes()
    n = h.offset_to_point_data + h.point_format.size * 1000 + (0 if cut == "record boundary" else 7)
    (tmp_path / "cut.las").write_bytes(data[:n])
    with pytest.raises(SourceDataError, match=r"dataset 'lidar'.*cut\.las.*Fix: re-run the LiDAR staging"):
        read_tile_points(tmp_path / "cut.las")
