"""City-scale sample data: N full-density 1 km tiles like Jena's, for the city-scale benchmark.

:func:`generate_scale_city` writes, deterministically from a seed, what a Jena deployment reads,
over ``n_tiles`` adjacent 1 km tiles (a row, or a rectangle where ``n_tiles`` allows one):

- ALKIS-like footprints (GeoPackage, the sample city's columns ``gml_id``, ``gebaeudefunktion``,
  ``anzahl_og``, ``dachform``): the sample city's building designs (every roof form, L/T and
  multi-part buildings, garages) placed along a street grid (streets every
  :data:`STREET_SPACING_M`), thinned to about :data:`BUILDINGS_PER_KM2` per km² (Jena: about 35,000
  buildings on 115 tiles);
- LiDAR per tile (LAZ, LAS 1.4 point format 6, ``las_32_E_N_1_th``) at ``density_m2`` points per m²
  (Thuringia's DOM data: 10-12), sampled from the buildings, trees and terrain by the sample city's
  point generator (:func:`citymodel.samplecity.pointcloud.sample_tile`);
- a tree cadastre (the sample city's CSV format), roads with traffic (main streets every
  :data:`MAIN_STREET_EVERY` th), flood zones of the sample city's river where it crosses the area;
- a DCAT-AP catalog (``catalog.jsonld``), and :meth:`ScaleCity.deployment` gives a deployment file.

The terrain and the river are the sample city's closed-form functions
(:mod:`citymodel.samplecity.terrain`); tiles start west of the river so that it crosses the second
tile. :func:`change_tile` re-samples one tile's LiDAR with another random stream (a re-flown tile)
and rewrites the catalog: the "night with one changed tile" of the benchmark.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import shapely
import shapely.geometry
from shapely.geometry import LineString, Point, Polygon, box

from ..errors import ConfigError, dataset_error
from ..roofs import RoofPart, building_footprint
from ..tiles import Tile, tile_of_point
from .generator import flood_features, write_catalog
from .layout import (ARCHETYPE_WEIGHTS, EDGE_INSET_M, MIN_GAP_M, ROAD_HALF_WIDTH_M, TREE_OFFSET_M,
                     Building, Tree, design_building, place_design, sample_tree)
from .pointcloud import sample_tile, write_laz
from .terrain import BANK_WIDTH_M, RIVER_HALF_WIDTH_M, in_water, river_axis_x, terrain_height

#: points per m² of the state LiDAR (Thuringia's DOM data: 10-12)
DENSITY_M2 = 11.0
#: buildings per km² (Jena: about 35,000 buildings on 115 tiles of 1 km²)
BUILDINGS_PER_KM2 = 300
#: trees of the cadastre per km²
TREES_PER_KM2 = 200
#: street grid: a street every this many metres, the first this far from a tile's edge
STREET_SPACING_M = 160.0
STREET_OFFSET_M = 80.0
#: every this many th street (counted per direction over the grid) is a main street
MAIN_STREET_EVERY = 3
#: LiDAR reaches this far beyond the extent (as in the sample city)
LIDAR_MARGIN_M = 30.0
#: south-west tile of the grid (km): the sample city's river crosses the tile east of it
FIRST_TILE_KM = (681, 5644)

DATASETS = {
    "buildings": "scale-alkis-gebaeude",
    "lidar": "scale-dom-lidar",
    "trees": "scale-baumkataster",
    "roads": "scale-verkehrsmengen",
    "flood_zones": "scale-ueberschwemmungsgebiete",
}
_META = {
    DATASETS["buildings"]: ("Gebäude (ALKIS, Großstadt-Benchmark)", "Gebäudegrundrisse mit Gebäudefunktion, "
                            "Anzahl der Obergeschosse und Dachform (generiert).", "GPKG",
                            "application/geopackage+sqlite3", ["Gebäude", "ALKIS"]),
    DATASETS["lidar"]: ("Laserscanning-Punktwolke (Großstadt-Benchmark)", "Klassifizierte Laserscanning-Punkte "
                        "in 1-km-Kacheln, LAZ, ETRS89/UTM32 (generiert).", "LAZ", "application/vnd.laszip",
                        ["Laserscanning", "Punktwolke"]),
    DATASETS["trees"]: ("Baumkataster (Großstadt-Benchmark)", "Bäume mit Art, Höhe und Kronendurchmesser; "
                        "EPSG:3044, Hochwert zuerst (generiert).", "CSV", "text/csv", ["Bäume"]),
    DATASETS["roads"]: ("Verkehrsmengen (Großstadt-Benchmark)", "Straßenabschnitte mit DTV und maßgebenden "
                        "Verkehrsstärken (RLS-19, generiert).", "GEOJSON", "application/geo+json", ["Verkehr"]),
    DATASETS["flood_zones"]: ("Überschwemmungsgebiete (Großstadt-Benchmark)", "HQ100 und HQextrem mit "
                              "Wasserspiegellage (generiert).", "GEOJSON", "application/geo+json",
                              ["Hochwasser"]),
}


@dataclass
class ScaleCity:
    """What :func:`generate_scale_city` wrote.

    Attributes
    ----------
    out_dir : Path
    catalog_path : Path
    extent : tuple
        ``(minx, miny, maxx, maxy)`` of the generated area (EPSG:25832), the deployment's extent.
    tile_ids : list of str
    lidar_paths : dict
        Tile id -> LAZ file.
    points : dict
        Tile id -> number of LiDAR points.
    lidar_bounds : dict
        Tile id -> (minx, miny, maxx, maxy) the tile's points cover.
    n_buildings, n_trees, n_roads : int
    buildings_per_tile : dict
        Tile id -> buildings whose representative point lies in the tile.
    density_m2 : float
        Target point density.
    seed : int
    seconds : float
    datasets : dict
        Role -> dataset identifier (flood zones only where the river crosses the area).
    files : dict
        Dataset identifier -> data files.
    buildings_km2, trees_km2 : float
        The target densities the city was planned with.
    """

    out_dir: Path
    catalog_path: Path
    extent: tuple[float, float, float, float]
    tile_ids: list[str]
    lidar_paths: dict[str, Path]
    points: dict[str, int]
    lidar_bounds: dict[str, tuple[float, float, float, float]]
    n_buildings: int
    n_trees: int
    n_roads: int
    buildings_per_tile: dict[str, int]
    density_m2: float
    seed: int
    seconds: float = 0.0
    datasets: dict[str, str] = field(default_factory=dict)
    files: dict[str, list[Path]] = field(default_factory=dict)
    buildings_km2: float = BUILDINGS_PER_KM2
    trees_km2: float = TREES_PER_KM2

    @property
    def area_km2(self) -> float:
        x0, y0, x1, y1 = self.extent
        return (x1 - x0) * (y1 - y0) / 1e6

    @property
    def buildings_per_km2(self) -> float:
        return self.n_buildings / self.area_km2

    def density_of(self, tile_id: str) -> float:
        """Points per m² of a tile's LiDAR over the area it covers."""
        x0, y0, x1, y1 = self.lidar_bounds[tile_id]
        return self.points[tile_id] / ((x1 - x0) * (y1 - y0))

    def deployment(self, output_dir: str | Path, *, analysis: str = "default",
                   schema_dir: str | Path | None = None) -> dict:
        """A deployment file (as a dict, ready for ``yaml.safe_dump``) for this city.

        Based on the sample city's file (same column mappings, quality and publish settings);
        ``analysis='default'`` uses the documented defaults of the analysis settings (what a real
        deployment such as Jena's would use), ``'sample'`` the sample city's coarser ones (faster).
        There is no traffic change, no official LoD2, no viewpoints and no planning variants.
        """
        import yaml

        from ..config import DEFAULT_CONFIG

        if analysis not in ("default", "sample"):
            raise dataset_error(ConfigError, "city-scale benchmark", f"analysis {analysis!r} is unknown",
                                "use 'default' or 'sample'")
        raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
        raw["name"] = "jena-scale"
        raw["title"] = f"City-scale benchmark: {len(self.tile_ids)} generated tiles like Jena's"
        raw["extent"] = [float(v) for v in self.extent]
        raw["output_dir"] = str(Path(output_dir).resolve())
        raw["catalog"]["url"] = str(self.catalog_path)
        sources = {}
        for role, ds in self.datasets.items():
            sources[role] = dict(raw["sources"][role], dataset=ds)
        raw["sources"] = sources
        if schema_dir is not None and Path(schema_dir).is_dir():
            raw["quality"]["schema_dir"] = str(Path(schema_dir).resolve())
        else:
            raw["quality"].pop("schema_dir", None)
        raw["analysis"].pop("traffic_change", None)
        if analysis == "default":
            raw["analysis"]["sun"].update(time_step_min=15, cell_m=1.0)
            raw["analysis"]["solar"].update(spacing_m=1.0, sun_bin_deg=3.0)
            raw["analysis"]["sightlines"].update(viewshed_cell_m=1.0)
        return raw


# =============================================================================================
def tile_grid(n_tiles: int) -> list[Tile]:
    """``n_tiles`` adjacent tiles from :data:`FIRST_TILE_KM`: ``rows x cols`` with ``rows`` the largest
    divisor of ``n_tiles`` not above its square root (a row for a prime number of tiles)."""
    if isinstance(n_tiles, bool) or not isinstance(n_tiles, (int, np.integer)) or n_tiles < 1:
        raise dataset_error(ConfigError, "city-scale benchmark", f"n_tiles {n_tiles!r} is not a positive integer",
                            "give the number of tiles as an integer >= 1")
    rows = max(r for r in range(1, int(math.isqrt(int(n_tiles))) + 1) if n_tiles % r == 0)
    cols = int(n_tiles) // rows
    e0, n0 = FIRST_TILE_KM
    return sorted(Tile(e0 + c, n0 + r) for r in range(rows) for c in range(cols))


def scale_extent(tiles: list[Tile], tile_area_m: float = 1000.0) -> tuple[float, float, float, float]:
    """The generated area: the tiles' union, or with ``tile_area_m`` < 1000 (quick runs) a centred
    rectangle of ``tile_area_m`` per tile and direction (every tile keeps a ``tile_area_m`` square)."""
    if not 100.0 <= tile_area_m <= 1000.0:
        raise dataset_error(ConfigError, "city-scale benchmark", f"tile area {tile_area_m} m is out of range",
                            "give a tile side between 100 and 1000 m")
    e = [t.e_km for t in tiles]
    n = [t.n_km for t in tiles]
    cols, rows = max(e) - min(e) + 1, max(n) - min(n) + 1
    cx, cy = (min(e) + cols / 2) * 1000.0, (min(n) + rows / 2) * 1000.0
    hx, hy = cols * tile_area_m / 2, rows * tile_area_m / 2
    return (cx - hx, cy - hy, cx + hx, cy + hy)


def _street_positions(lo: float, hi: float) -> list[float]:
    """Street axes (x or y) between ``lo`` and ``hi``: every STREET_SPACING_M from each km + offset."""
    out = []
    k0 = math.floor(lo / 1000.0)
    for km in range(k0, math.ceil(hi / 1000.0) + 1):
        v = km * 1000.0 + STREET_OFFSET_M
        while v < (km + 1) * 1000.0:
            if lo + 20.0 < v < hi - 20.0:
                out.append(v)
            v += STREET_SPACING_M
    return out


def _river_zone(extent) -> shapely.Geometry:
    x0, y0, x1, y1 = extent
    yy = np.linspace(y0 - 100, y1 + 100, 200)
    axis = LineString(np.column_stack([river_axis_x(yy), yy]))
    return axis.buffer(RIVER_HALF_WIDTH_M + BANK_WIDTH_M + 3.0)


def plan_buildings(extent, seed: int, buildings_km2: float = BUILDINGS_PER_KM2) -> tuple[list[Building], dict]:
    """Buildings along the street grid of ``extent``, thinned to ``buildings_km2`` per km² and tile.

    Returns (buildings, streets) with ``streets = {"x": [...], "y": [...]}`` (the street axes).
    """
    rng = np.random.default_rng([seed, 11])
    x0, y0, x1, y1 = extent
    xs, ys = _street_positions(x0, x1), _street_positions(y0, y1)
    river = _river_zone(extent)
    names = list(ARCHETYPE_WEIGHTS)
    w = np.array([ARCHETYPE_WEIGHTS[k] for k in names], dtype=float)
    w /= w.sum()
    placed: list[tuple[str, list[RoofPart], object, Polygon]] = []
    bx = [x0] + xs + [x1]
    by = [y0] + ys + [y1]
    for i in range(len(bx) - 1):
        for j in range(len(by) - 1):
            street = {"west": i > 0, "east": i < len(bx) - 2, "south": j > 0, "north": j < len(by) - 2}
            b0x = bx[i] + (ROAD_HALF_WIDTH_M if street["west"] else EDGE_INSET_M)
            b1x = bx[i + 1] - (ROAD_HALF_WIDTH_M if street["east"] else EDGE_INSET_M)
            b0y = by[j] + (ROAD_HALF_WIDTH_M if street["south"] else EDGE_INSET_M)
            b1y = by[j + 1] - (ROAD_HALF_WIDTH_M if street["north"] else EDGE_INSET_M)
            if b1x - b0x < 15 or b1y - b0y < 15:
                continue
            block = box(b0x, b0y, b1x, b1y)
            polys: list = []
            sides = [("south", np.array([b0x, b0y]), np.array([1.0, 0.0]), b1x - b0x, b1y - b0y),
                     ("east", np.array([b1x, b0y]), np.array([0.0, 1.0]), b1y - b0y, b1x - b0x),
                     ("north", np.array([b1x, b1y]), np.array([-1.0, 0.0]), b1x - b0x, b1y - b0y),
                     ("west", np.array([b0x, b1y]), np.array([0.0, -1.0]), b1y - b0y, b1x - b0x)]
            for side, origin, e1, length, depth in sides:
                if not street[side]:
                    continue
                e2 = np.array([-e1[1], e1[0]])
                t = float(rng.uniform(1.0, 4.0))
                while t < length - 6.0:
                    name = names[int(rng.choice(len(names), p=w))]
                    design = design_building(rng, name)
                    setback = float(rng.uniform(2.0, 5.0))
                    if t + design.frontage > length - 1.0 or setback + design.depth > depth - 1.0:
                        t += 3.0
                        continue
                    parts = place_design(design, origin, e1, e2, t, setback)
                    fp = building_footprint(parts)
                    if (block.contains(fp) and not river.intersects(fp)
                            and all(fp.distance(o) >= MIN_GAP_M for o in polys)):
                        polys.append(fp)
                        placed.append((name, parts, design, fp))
                        t += design.frontage + float(rng.uniform(MIN_GAP_M + 0.5, 9.0))
                    else:
                        t += 3.0
            inner = block.buffer(-3.0)
            for _ in range(int(rng.integers(1, 4))):
                gx0, gy0, gx1, gy1 = inner.bounds
                if gx1 - gx0 < 8 or gy1 - gy0 < 8:
                    break
                design = design_building(rng, "garage")
                origin = np.array([rng.uniform(gx0, gx1 - 7), rng.uniform(gy0, gy1 - 7)])
                e1 = np.array([1.0, 0.0]) if rng.random() < 0.5 else np.array([0.0, 1.0])
                parts = place_design(design, origin, e1, np.array([-e1[1], e1[0]]), 0.0, 0.0)
                fp = building_footprint(parts)
                if inner.contains(fp) and not river.intersects(fp) and all(fp.distance(o) >= MIN_GAP_M for o in polys):
                    polys.append(fp)
                    placed.append(("garage", parts, design, fp))
    # thin out per tile to the target density
    by_tile: dict[str, list[int]] = {}
    for k, (_, _, _, fp) in enumerate(placed):
        rp = fp.representative_point()
        by_tile.setdefault(tile_of_point(rp.x, rp.y).id, []).append(k)
    keep = np.zeros(len(placed), dtype=bool)
    for tid, idx in sorted(by_tile.items()):
        e_km, n_km = (int(v) for v in tid.split("_")[1:])
        tx0, ty0, tx1, ty1 = Tile(e_km, n_km).bounds
        area_km2 = max(0.0, min(tx1, x1) - max(tx0, x0)) * max(0.0, min(ty1, y1) - max(ty0, y0)) / 1e6
        target = int(round(buildings_km2 * area_km2))
        chosen = rng.permutation(len(idx))[:target]
        keep[np.asarray(idx)[chosen]] = True
    buildings = []
    n = 0
    for (name, parts, design, fp), kp in zip(placed, keep):
        if not kp:
            continue
        n += 1
        bid = f"DETHL51S{n:08d}"
        parts = [RoofPart(**{**p.__dict__, "part_id": f"{bid}_p{j + 1}" if len(parts) > 1 else bid})
                 for j, p in enumerate(parts)]
        ring = np.asarray(shapely.segmentize(fp.exterior, 0.5).coords)
        gz = round(float(np.min(terrain_height(ring[:, 0], ring[:, 1]))), 3)
        buildings.append(Building(bid, name, [p.with_ground(gz) for p in parts], design.function,
                                  design.storeys, fp, gz))
    return buildings, {"x": xs, "y": ys}


def plan_trees(extent, buildings: list[Building], streets: dict, seed: int,
               trees_km2: float = TREES_PER_KM2) -> list[Tree]:
    """Street trees (both sides of every street, every 14-24 m) and courtyard trees, clear of the
    buildings and the river, thinned to ``trees_km2`` per km² and at least 8 m apart."""
    rng = np.random.default_rng([seed, 12])
    x0, y0, x1, y1 = extent
    index = shapely.STRtree([b.footprint for b in buildings])
    inside = box(x0 + 3, y0 + 3, x1 - 3, y1 - 3)

    def clear(px: float, py: float, dist: float) -> bool:
        p = Point(px, py)
        return (inside.contains(p) and not bool(in_water(px, py))
                and len(index.query(p, predicate="dwithin", distance=dist)) == 0)

    cand: list[tuple[float, float, str]] = []
    for x in streets["x"]:
        for side in (-1.0, 1.0):
            s = y0 + float(rng.uniform(4, 12))
            while s < y1:
                if all(abs(s - cy) > 10 for cy in streets["y"]) and clear(x + side * TREE_OFFSET_M, s, 1.5):
                    cand.append((x + side * TREE_OFFSET_M, s, "street"))
                s += float(rng.uniform(14, 24))
    for y in streets["y"]:
        for side in (-1.0, 1.0):
            s = x0 + float(rng.uniform(4, 12))
            while s < x1:
                if all(abs(s - cx) > 10 for cx in streets["x"]) and clear(s, y + side * TREE_OFFSET_M, 1.5):
                    cand.append((s, y + side * TREE_OFFSET_M, "street"))
                s += float(rng.uniform(14, 24))
    n_court = int(len(cand) * 0.4) + 10
    for _ in range(n_court * 3):
        px, py = rng.uniform(x0, x1), rng.uniform(y0, y1)
        if clear(px, py, 3.0):
            cand.append((px, py, "courtyard"))
    target = int(round(trees_km2 * (x1 - x0) * (y1 - y0) / 1e6))
    chosen: list[tuple[float, float, str]] = []
    grid: dict[tuple[int, int], list[tuple[float, float]]] = {}
    for i in rng.permutation(len(cand)):
        if len(chosen) >= target:
            break
        px, py, kind = cand[i]
        gx, gy = int(px // 8), int(py // 8)
        near = [q for dx in (-1, 0, 1) for dy in (-1, 0, 1) for q in grid.get((gx + dx, gy + dy), [])]
        if all((px - qx) ** 2 + (py - qy) ** 2 > 64.0 for qx, qy in near):
            chosen.append((px, py, kind))
            grid.setdefault((gx, gy), []).append((px, py))
    chosen.sort(key=lambda t: (round(t[1], 3), round(t[0], 3)))
    trees = []
    for i, (px, py, kind) in enumerate(chosen):
        trees.append(sample_tree(f"{100001 + i}", px, py, kind, rng))
    return trees


def road_features(extent, streets: dict, seed: int) -> list[dict]:
    """Street segments between crossings with RLS-19 traffic (main streets: DTV 8,000-20,000)."""
    rng = np.random.default_rng([seed, 13])
    x0, y0, x1, y1 = extent
    segs = []
    for k, x in enumerate(streets["x"]):
        cuts = [y0] + list(streets["y"]) + [y1]
        segs += [(f"Nord-Süd-Straße {k + 1}", k % MAIN_STREET_EVERY == 0, LineString([(x, a), (x, b)]))
                 for a, b in zip(cuts, cuts[1:])]
    for k, y in enumerate(streets["y"]):
        cuts = [x0] + list(streets["x"]) + [x1]
        segs += [(f"Ost-West-Straße {k + 1}", k % MAIN_STREET_EVERY == 0, LineString([(a, y), (b, y)]))
                 for a, b in zip(cuts, cuts[1:])]
    feats = []
    for i, (name, main, line) in enumerate(segs, start=1):
        dtv = int(round(rng.uniform(8000, 20000) if main else rng.uniform(1000, 5000), -1))
        props = {
            "strassen_id": f"S{i:05d}", "name": name, "dtv": dtv,
            "m_tag": round(dtv * 0.0575 * rng.uniform(0.95, 1.05), 2),
            "m_nacht": round(dtv * 0.0100 * rng.uniform(0.9, 1.1), 2),
            "p1_tag": round(rng.uniform(2, 5) if main else rng.uniform(0.5, 2.5), 2),
            "p2_tag": round(rng.uniform(1, 4) if main else rng.uniform(0.2, 1.5), 2),
            "pkrad_tag": round(rng.uniform(0.8, 2.0), 2),
            "p1_nacht": round(rng.uniform(1.5, 4) if main else rng.uniform(0.3, 2), 2),
            "p2_nacht": round(rng.uniform(1, 5) if main else rng.uniform(0.1, 1), 2),
            "pkrad_nacht": round(rng.uniform(0.3, 1.2), 2),
            "v_pkw": 50 if main else 30, "v_lkw": 50 if main else 30,
            "belag": "SMA" if main else "Asphaltbeton",
        }
        feats.append({"type": "Feature", "id": props["strassen_id"], "properties": props,
                      "geometry": shapely.geometry.mapping(shapely.set_precision(line, 0.01))})
    return feats


# =============================================================================================
def _lidar_area(extent) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = extent
    return (x0 - LIDAR_MARGIN_M, y0 - LIDAR_MARGIN_M, x1 + LIDAR_MARGIN_M, y1 + LIDAR_MARGIN_M)


def _tile_lidar_bounds(tile: Tile, extent) -> tuple[float, float, float, float]:
    lx0, ly0, lx1, ly1 = _lidar_area(extent)
    tx0, ty0, tx1, ty1 = tile.bounds
    return (max(tx0, lx0), max(ty0, ly0), min(tx1, lx1), min(ty1, ly1))


def write_tile_lidar(path: Path, tile: Tile, extent, buildings: list[Building], trees: list[Tree],
                     seed: int, density_m2: float, stream: int = 0) -> int:
    """Sample and write one tile's LAZ (``stream``: another random stream, a re-flown tile);
    returns the number of points."""
    bounds = _tile_lidar_bounds(tile, extent)
    area = box(*bounds).buffer(40.0)
    bs = [b for b in buildings if b.footprint.intersects(area)]
    ts = [t for t in trees if area.contains(Point(t.x, t.y))]
    rng = np.random.default_rng([seed, 100, tile.e_km, tile.n_km, stream])
    pts = sample_tile(bounds, bs, ts, rng, density_m2=density_m2)
    write_laz(path, pts, bounds[:2], gps_start_s=4.0e8 + (tile.e_km % 100) * 1.0e5 + (tile.n_km % 100) * 1.0e3)
    return len(pts["x"])


def _write_buildings(buildings: list[Building], path: Path) -> Path:
    import pyogrio

    geoms = shapely.to_wkb(np.array([shapely.set_precision(b.footprint, 0.01) for b in buildings], dtype=object))
    n = len(buildings)
    tmp = path.with_name(path.name + ".tmp.gpkg")
    tmp.unlink(missing_ok=True)
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": "2026-01-15T06:00:00.000Z"})   # reproducible bytes
    try:
        _write_gpkg(tmp, geoms, buildings, n)
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": None})
    tmp.replace(path)
    return path


def _write_gpkg(tmp: Path, geoms, buildings: list[Building], n: int) -> None:
    import pyogrio.raw

    pyogrio.raw.write(tmp, geoms, [np.array([b.building_id for b in buildings], dtype=object),
                                   np.array([b.function for b in buildings], dtype=object),
                                   np.array([b.storeys or 0 for b in buildings], dtype=np.int32),
                                   np.array([str(b.form.code) for b in buildings], dtype=object)],
                      ["gml_id", "gebaeudefunktion", "anzahl_og", "dachform"],
                      field_mask=[np.zeros(n, bool), np.zeros(n, bool),
                                  np.array([b.storeys is None for b in buildings]), np.zeros(n, bool)],
                      layer="gebaeude", driver="GPKG", geometry_type="Polygon", crs="EPSG:25832")


def _write_trees(trees: list[Tree], path: Path) -> Path:
    def dec(v: float) -> str:
        return f"{v:.1f}".replace(".", ",")
    lines = ["baumnummer;ga_lang;baumhoehe;kr_durchm;st_umfang;vitalitaet;geometrie"]
    for t in trees:   # EPSG:3044: northing first
        lines.append(f"{t.tree_id};{t.species};{dec(t.height_m)};{dec(t.crown_diameter_m)};"
                     f"{t.trunk_circumference_cm};{t.vitality};POINT ({t.y:.2f} {t.x:.2f})")
    _write_text(path, "\n".join(lines) + "\n")
    return path


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8", newline="\n")
    tmp.replace(path)


def _geojson(features: list[dict], name: str) -> str:
    fc = {"type": "FeatureCollection", "name": name,
          "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::25832"}},
          "features": features}
    return json.dumps(fc, ensure_ascii=False, default=_jsonable) + "\n"


def _jsonable(o):
    if isinstance(o, tuple):
        return list(o)
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    raise TypeError(type(o))


def _catalog(out_dir: Path, files: dict[str, list[Path]], extent, modified: dict[str, str] | None = None) -> Path:
    bboxes = {ds: (_lidar_area(extent) if ds == DATASETS["lidar"] else extent) for ds in files}
    return write_catalog(out_dir, files, meta=_META, bboxes=bboxes, modified=modified,
                         title="Großstadt-Benchmark: generierte Kacheln wie Jenas",
                         description="Generierte Datensätze in voller Dichte für den Großstadt-Benchmark "
                                     "der 3D-Stadtmodell-Pipeline.")


def generate_scale_city(out_dir: str | Path, n_tiles: int = 2, *, density_m2: float = DENSITY_M2,
                        tile_area_m: float = 1000.0, seed: int = 2026,
                        buildings_km2: float = BUILDINGS_PER_KM2, trees_km2: float = TREES_PER_KM2,
                        reuse_lidar: bool = False, verbose: bool = False) -> ScaleCity:
    """Write the city-scale data set into ``out_dir`` (see the module docstring).

    Parameters
    ----------
    out_dir
        Target folder (created); data files go to ``out_dir/files``.
    n_tiles
        Number of 1 km tiles.
    density_m2
        LiDAR points per m² (pulses; wall points add about 1 %, water returns are missing).
    tile_area_m
        Side of the generated square per tile: 1000 (full tiles) or less for a quick run.
    seed
        Seed of the layout and the points; the same seed writes the same files.
    buildings_km2, trees_km2
        Target densities of buildings (per tile) and trees.
    reuse_lidar
        Keep a tile's LAZ that is already in ``out_dir/files`` (written before with the same
        parameters: sampling a full tile takes minutes); everything else is written again.
    """
    t0 = time.perf_counter()
    if not density_m2 > 0:
        raise dataset_error(ConfigError, "city-scale benchmark", f"density {density_m2} points/m² is not positive",
                            "give a density > 0 (Thuringia: 10-12)")
    out_dir = Path(out_dir).resolve()
    files_dir = out_dir / "files"
    files_dir.mkdir(parents=True, exist_ok=True)
    tiles = tile_grid(n_tiles)
    extent = scale_extent(tiles, tile_area_m)
    buildings, streets = plan_buildings(extent, seed, buildings_km2)
    trees = plan_trees(extent, buildings, streets, seed, trees_km2)
    roads = road_features(extent, streets, seed)
    files: dict[str, list[Path]] = {}
    files[DATASETS["buildings"]] = [_write_buildings(buildings, files_dir / "gebaeude.gpkg")]
    lidar_paths, points, lidar_bounds = {}, {}, {}
    for tile in tiles:
        path = files_dir / f"{tile.lidar_name}.laz"
        tic = time.perf_counter()
        if reuse_lidar and path.is_file():
            import laspy

            with laspy.open(path) as f:
                points[tile.id] = int(f.header.point_count)
        else:
            points[tile.id] = write_tile_lidar(path, tile, extent, buildings, trees, seed, density_m2)
        lidar_paths[tile.id] = path
        lidar_bounds[tile.id] = _tile_lidar_bounds(tile, extent)
        if verbose:
            print(f"  LiDAR {tile.id}: {points[tile.id]:,} points in {time.perf_counter() - tic:.1f} s")
    files[DATASETS["lidar"]] = [lidar_paths[t.id] for t in tiles]
    files[DATASETS["trees"]] = [_write_trees(trees, files_dir / "baumkataster.csv")]
    files[DATASETS["roads"]] = [files_dir / "verkehrsmengen.geojson"]
    _write_text(files[DATASETS["roads"]][0], _geojson(roads, "verkehrsmengen"))
    datasets = {"buildings": DATASETS["buildings"], "lidar": DATASETS["lidar"], "trees": DATASETS["trees"],
                "roads": DATASETS["roads"]}
    flood, _levels = flood_features(_lidar_area(extent), [("01", _lidar_area(extent)[1], _lidar_area(extent)[3])])
    if flood:
        files[DATASETS["flood_zones"]] = [files_dir / "ueberschwemmungsgebiete.geojson"]
        _write_text(files[DATASETS["flood_zones"]][0], _geojson(flood, "ueberschwemmungsgebiete"))
        datasets["flood_zones"] = DATASETS["flood_zones"]
    catalog = _catalog(out_dir, files, extent)
    per_tile: dict[str, int] = {t.id: 0 for t in tiles}
    for b in buildings:
        rp = b.footprint.representative_point()
        tid = tile_of_point(rp.x, rp.y).id
        per_tile[tid] = per_tile.get(tid, 0) + 1
    city = ScaleCity(out_dir, catalog, extent, [t.id for t in tiles], lidar_paths, points, lidar_bounds,
                     len(buildings), len(trees), len(roads), per_tile, float(density_m2), int(seed),
                     time.perf_counter() - t0, datasets, files, float(buildings_km2), float(trees_km2))
    if verbose:
        print(f"scale city: {len(tiles)} tiles, {city.n_buildings} buildings ({city.buildings_per_km2:.0f}/km²), "
              f"{city.n_trees} trees, {city.n_roads} road segments, {sum(points.values()):,} points "
              f"in {city.seconds:.1f} s -> {out_dir}")
    return city


def load_scale_city(out_dir: str | Path, n_tiles: int = 2, *, density_m2: float = DENSITY_M2,
                    tile_area_m: float = 1000.0, seed: int = 2026, buildings_km2: float = BUILDINGS_PER_KM2,
                    trees_km2: float = TREES_PER_KM2) -> ScaleCity:
    """The :class:`ScaleCity` that :func:`generate_scale_city` wrote into ``out_dir`` with these
    parameters, read back without writing anything (counts from the files themselves)."""
    import laspy
    import pyogrio

    out_dir = Path(out_dir).resolve()
    files_dir = out_dir / "files"
    tiles = tile_grid(n_tiles)
    extent = scale_extent(tiles, tile_area_m)
    catalog = out_dir / "catalog.jsonld"
    lidar_paths = {t.id: files_dir / f"{t.lidar_name}.laz" for t in tiles}
    missing = [p for p in [catalog, files_dir / "gebaeude.gpkg", *lidar_paths.values()] if not p.is_file()]
    if missing:
        raise dataset_error(ConfigError, "city-scale benchmark", f"{out_dir} holds no complete city ({missing[0]} "
                            "is missing)", "generate it first (generate_scale_city)", record=str(out_dir))
    points = {}
    for tid, path in lidar_paths.items():
        with laspy.open(path) as f:
            points[tid] = int(f.header.point_count)
    files = {DATASETS["buildings"]: [files_dir / "gebaeude.gpkg"], DATASETS["lidar"]: list(lidar_paths.values()),
             DATASETS["trees"]: [files_dir / "baumkataster.csv"], DATASETS["roads"]: [files_dir / "verkehrsmengen.geojson"]}
    datasets = {"buildings": DATASETS["buildings"], "lidar": DATASETS["lidar"], "trees": DATASETS["trees"],
                "roads": DATASETS["roads"]}
    if (files_dir / "ueberschwemmungsgebiete.geojson").is_file():
        files[DATASETS["flood_zones"]] = [files_dir / "ueberschwemmungsgebiete.geojson"]
        datasets["flood_zones"] = DATASETS["flood_zones"]
    n_buildings = int(pyogrio.read_info(files_dir / "gebaeude.gpkg", layer="gebaeude")["features"])
    n_trees = len((files_dir / "baumkataster.csv").read_text(encoding="utf-8").splitlines()) - 1
    n_roads = len(json.loads((files_dir / "verkehrsmengen.geojson").read_text(encoding="utf-8"))["features"])
    buildings, _ = plan_buildings(extent, seed, buildings_km2)
    per_tile: dict[str, int] = {t.id: 0 for t in tiles}
    for b in buildings:
        rp = b.footprint.representative_point()
        tid = tile_of_point(rp.x, rp.y).id
        per_tile[tid] = per_tile.get(tid, 0) + 1
    return ScaleCity(out_dir, catalog, extent, [t.id for t in tiles], lidar_paths, points,
                     {t.id: _tile_lidar_bounds(t, extent) for t in tiles}, n_buildings, n_trees, n_roads, per_tile,
                     float(density_m2), int(seed), 0.0, datasets, files, float(buildings_km2), float(trees_km2))


def change_tile(city: ScaleCity, tile_id: str) -> int:
    """Re-sample ``tile_id``'s LiDAR with another random stream (the same buildings and trees: a
    re-flown tile) and rewrite the catalog (the tile's new size and checksum); returns the number
    of points."""
    if tile_id not in city.lidar_paths:
        raise dataset_error(ConfigError, "city-scale benchmark", f"tile {tile_id} is not one of {city.tile_ids}",
                            "name a tile of the generated city", record=tile_id)
    tiles = {t.id: t for t in tile_grid(len(city.tile_ids))}
    buildings, streets = plan_buildings(city.extent, city.seed, city.buildings_km2)
    trees = plan_trees(city.extent, buildings, streets, city.seed, city.trees_km2)
    n = write_tile_lidar(city.lidar_paths[tile_id], tiles[tile_id], city.extent, buildings, trees, city.seed,
                         city.density_m2, stream=1)
    city.points[tile_id] = n
    _catalog(city.out_dir, city.files, city.extent)   # the new size and checksum tell the change
    return n

