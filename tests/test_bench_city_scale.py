"""The city-scale benchmark's generator (citymodel.samplecity.scale), run quick (500 m per tile).

The whole benchmark (two pipeline runs over full tiles) is not run here: it prints figures
(``python -m benchmarks.bench_city_scale``). These tests check what it generates: the point density
(read back from the LAZ files), the buildings per km² (read back from the GeoPackage), trees, roads,
flood zones, and a catalog and deployment file that the pipeline's own readers accept.
"""

from __future__ import annotations

import json

import laspy
import numpy as np
import pyogrio
import pytest
import shapely

from citymodel.catalog import load_catalog, select_distributions
from citymodel.config import load_config
from citymodel.errors import ConfigError
from citymodel.samplecity.scale import (BUILDINGS_PER_KM2, DATASETS, DENSITY_M2, change_tile, generate_scale_city,
                                        load_scale_city, plan_buildings, scale_extent, tile_grid)
from citymodel.tiles import tiles_for_extent


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    return generate_scale_city(tmp_path_factory.mktemp("scale") / "city", 2, tile_area_m=500.0)


def test_tile_grid_is_a_rectangle_of_adjacent_tiles():
    assert [t.id for t in tile_grid(2)] == ["32_681_5644", "32_682_5644"]
    six = tile_grid(6)
    assert len(six) == 6 and len({t.e_km for t in six}) == 3 and len({t.n_km for t in six}) == 2
    five = tile_grid(5)                      # prime: a row
    assert len({t.n_km for t in five}) == 1 and len({t.e_km for t in five}) == 5
    # the extent of full tiles holds exactly these tiles (no empty tile in the deployment)
    assert [t.id for t in tiles_for_extent(scale_extent(six))] == [t.id for t in six]


def test_point_density_within_10_percent_of_the_target(city):
    assert len(city.lidar_paths) == 2
    for tile_id, path in city.lidar_paths.items():
        with laspy.open(path) as f:
            h = f.header
            n = h.point_count
            assert h.point_format.id == 6
            x0, y0, x1, y1 = h.mins[0], h.mins[1], h.maxs[0], h.maxs[1]
        tile_x0 = int(tile_id.split("_")[1]) * 1000.0
        assert tile_x0 - 0.01 <= x0 and x1 <= tile_x0 + 1000.01       # the tile's own points only
        density = n / ((x1 - x0) * (y1 - y0))
        assert abs(density - DENSITY_M2) / DENSITY_M2 < 0.10, (tile_id, density)


def test_buildings_per_km2_storeys_and_footprints(city):
    path = city.files[DATASETS["buildings"]][0]
    info = pyogrio.read_info(path, layer="gebaeude")
    assert info["crs"] == "EPSG:25832"
    meta, _, geoms, fields = pyogrio.raw.read(path, layer="gebaeude")
    cols = dict(zip(meta["fields"], fields))
    polys = shapely.from_wkb(geoms)
    x0, y0, x1, y1 = city.extent
    per_km2 = len(polys) / ((x1 - x0) * (y1 - y0) / 1e6)
    assert abs(per_km2 - BUILDINGS_PER_KM2) / BUILDINGS_PER_KM2 < 0.10, per_km2
    assert shapely.is_valid(polys).all()
    assert len(set(cols["gml_id"])) == len(polys)
    assert (np.asarray(cols["anzahl_og"]) >= 1).all()
    assert all(c.startswith("31001_") for c in cols["gebaeudefunktion"])   # ALKIS Gebäudefunktion codes
    assert len(set(cols["gebaeudefunktion"])) >= 4                         # houses, flats, trade, garages
    assert len(set(cols["dachform"])) >= 5                       # flat, shed, gable, hip, ... roofs
    tree = shapely.STRtree(polys)
    pairs = tree.query(polys, predicate="intersects")
    assert (pairs[0] == pairs[1]).all(), "footprints overlap"
    # every footprint stands inside the extent and off the river
    assert shapely.contains(shapely.box(*city.extent), polys).all()
    # both tiles are populated at the target density
    for tile_id, n in city.buildings_per_tile.items():
        assert abs(n - BUILDINGS_PER_KM2 * 0.25) <= 0.10 * BUILDINGS_PER_KM2 * 0.25, (tile_id, n)


def test_trees_roads_and_flood_zones(city):
    meta, _, geoms, _ = pyogrio.raw.read(city.files[DATASETS["buildings"]][0], layer="gebaeude")
    polys = shapely.from_wkb(geoms)
    lines = city.files[DATASETS["trees"]][0].read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("baumnummer;")
    pts = []
    for line in lines[1:]:
        n, e = line.split("POINT (")[1].rstrip(")").split()      # EPSG:3044: northing first
        pts.append(shapely.Point(float(e), float(n)))
    assert len(pts) >= 50
    assert not shapely.STRtree(polys).query(pts, predicate="intersects").size, "a tree stands in a building"
    roads = json.loads(city.files[DATASETS["roads"]][0].read_text(encoding="utf-8"))["features"]
    dtv = [f["properties"]["dtv"] for f in roads]
    assert len(roads) == city.n_roads > 10 and max(dtv) >= 8000 and min(dtv) <= 5000
    flood = json.loads(city.files[DATASETS["flood_zones"]][0].read_text(encoding="utf-8"))["features"]
    assert {f["properties"]["szenario"] for f in flood} == {"HQ100", "HQextrem"}


def test_catalog_and_deployment_are_accepted_by_the_pipeline(city, tmp_path):
    import yaml

    cfg = tmp_path / "citymodel.yaml"
    cfg.write_text(yaml.safe_dump(city.deployment(tmp_path / "out")), encoding="utf-8")
    settings = load_config(cfg)
    assert settings.tile_ids == city.tile_ids
    catalog = load_catalog(city.catalog_path)
    assert catalog.title.startswith("Großstadt-Benchmark")
    for role, ds_id in city.datasets.items():
        src = settings.source(role)
        assert src is not None and src.dataset == ds_id
        ds = catalog.dataset(ds_id)
        dists = select_distributions(ds, role)
        assert dists and all(d.byte_size and d.checksum_value for d in dists)
    lidar = catalog.dataset(DATASETS["lidar"])
    names = sorted(d.download_url.rsplit("/", 1)[-1] for d in lidar.distributions)
    assert names == [f"las_{t}_1_th.laz" for t in city.tile_ids]
    # the documented analysis defaults, not the sample city's coarser settings
    assert settings.analysis.sun.cell_m == 1.0 and settings.analysis.solar.spacing_m == 1.0


def test_a_written_city_reads_back_unchanged(city):
    back = load_scale_city(city.out_dir, 2, tile_area_m=500.0)
    for attr in ("extent", "tile_ids", "points", "n_buildings", "n_trees", "n_roads", "datasets",
                 "buildings_per_tile", "lidar_bounds"):
        assert getattr(back, attr) == getattr(city, attr), attr
    with pytest.raises(ConfigError, match="no complete city"):
        load_scale_city(city.out_dir / "nothing", 2)


def test_same_seed_same_layout_and_a_changed_tile_changes_its_checksum(city):
    a, _ = plan_buildings(city.extent, city.seed)
    b, _ = plan_buildings(city.extent, city.seed)
    assert [x.footprint.wkt for x in a] == [x.footprint.wkt for x in b]
    before = {d.download_url: d.checksum_value for d in load_catalog(city.catalog_path).dataset(DATASETS["lidar"]).distributions}
    change_tile(city, city.tile_ids[-1])
    lidar = load_catalog(city.catalog_path).dataset(DATASETS["lidar"])
    after = {d.download_url: d.checksum_value for d in lidar.distributions}
    changed = [u for u in after if after[u] != before[u]]
    assert len(changed) == 1 and city.tile_ids[-1] in changed[0]


@pytest.mark.parametrize("kwargs, word", [({"n_tiles": 0}, "n_tiles"), ({"density_m2": 0}, "density"),
                                          ({"tile_area_m": 50.0}, "tile area")])
def test_bad_parameters_are_clear_errors(tmp_path, kwargs, word):
    args = {"n_tiles": 1, **kwargs}
    with pytest.raises(ConfigError, match=word):
        generate_scale_city(tmp_path / "c", args.pop("n_tiles"), **args)


def test_changing_an_unknown_tile_is_a_clear_error(city):
    with pytest.raises(ConfigError, match="32_999_5644"):
        change_tile(city, "32_999_5644")
