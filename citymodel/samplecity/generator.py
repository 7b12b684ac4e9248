"""Generate the sample city: every source dataset in its real format, a DCAT-AP catalog, ground truth.

:func:`generate` writes into ``out_dir``::

    catalog.jsonld              DCAT-AP (JSON-LD, inline @context), download URLs relative to it
    files/gebaeude.gpkg         ALKIS-like footprints             jena-sample-alkis-gebaeude
    files/las_32_*_1_th.laz     LAS 1.4 / PF 6, one per 1 km tile jena-sample-dom-lidar
    files/LoD2_32_680_5644_2_TH.zip  official-style LoD2 CityGML  jena-sample-lod2
    files/baumkataster.csv      tree cadastre (EPSG:3044, N first) jena-sample-baumkataster
    files/verkehrsmengen.geojson  road traffic                     jena-sample-verkehrsmengen
    files/ueberschwemmungsgebiete.geojson  flood zones             jena-sample-ueberschwemmungsgebiete
    files/sichtpunkte.geojson   observers and targets              jena-sample-sichtpunkte
    files/TRY_beispielstadt_mittleres_jahr.dat  synthetic test reference year (DWD TRY format)
                                                                   jena-sample-testreferenzjahr
    ground_truth.json, ground_truth.parquet
    .samplecity.json            marker: generator version, seed, checksums of all of the above

The output is byte-identical for the same seed and generator version (fixed timestamps). When the
marker in ``out_dir`` matches (version, seed, every checksum), :func:`generate` returns at once.

``ground_truth.json`` holds: ``summary`` (counts), ``files`` (dataset id -> relative paths),
``buildings`` (per building: ``building_id`` = ALKIS ``gml_id``, ``archetype``, ``function``,
``storeys``, ``roof_form``/``roof_code`` of the main part, ``eave_height_m``/``ridge_height_m`` above
ground, ``ground_height_m`` = terrain minimum along the footprint (the solids' base), ``roof_top_z``,
``footprint_wkt``, ``tile_id`` (tile of the representative point), ``in_lod2``, ``lod2_status``
(``current``/``heightened``/``new``; ``outside`` = not covered by the LoD2 tile),
``lod2_ridge_height_m``, ``flood_depth_m`` per scenario, ``overhanging_trees`` and ``parts``
(:meth:`citymodel.roofs.RoofPart.to_dict`, absolute ``ground_z``; asymmetric gables carry
``eave2_m``/``ridge_offset_m``, four-sided mansards ``mansard_sides``); the hard cases of issue #14
(``archetype`` in :data:`citymodel.samplecity.layout.CASES`) also ``case``, ``eave2_height_m`` (the
main part's other eave), ``overhang_m``, ``structure``, ``touches`` (ids), ``clipped``),
``bad_records`` (dataset,
record, field, problem), ``lod2`` (demolished / heightened / new), ``demolished_building_id``,
``trees`` (true height, crown, ``overhanging``; ``recorded_height_m`` is what the CSV says),
``terrain`` (river parameters; the function is :func:`citymodel.samplecity.terrain_height`),
``flood_zones`` (water levels per zone and reach), ``roads`` and ``viewpoints``.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import Point, Polygon, box, mapping

from ..errors import ConfigError, SourceDataError, dataset_error
from ..roofs import RoofForm, RoofPart, building_footprint, part_solid
from ..tiles import tile_of_point, tiles_for_extent
from . import layout
from .layout import EXTENT, LIDAR_MARGIN_M, Building, Plan, plan_city
from .pointcloud import sample_tile, write_laz
from .terrain import river_axis_x, river_parameters, terrain_height, water_level
from ..fileio import sha256_file

GENERATOR_VERSION = "1.3.0"
DEFAULT_SEED = 2026
MARKER = ".samplecity.json"
#: dct:modified of every dataset and distribution (fixed, so that a re-generation is byte-equal).
MODIFIED = "2026-01-15T06:00:00Z"
LOD2_MODIFIED = "2024-05-31T00:00:00Z"
LOD2_CREATION_DATE = "2024-05-31"
GPKG_DATE = "2026-01-15T06:00:00.000Z"
ZIP_DATE = (2024, 5, 31, 0, 0, 0)

LIDAR_AREA = (EXTENT[0] - LIDAR_MARGIN_M, EXTENT[1] - LIDAR_MARGIN_M,
              EXTENT[2] + LIDAR_MARGIN_M, EXTENT[3] + LIDAR_MARGIN_M)
LOD2_ZIP = "LoD2_32_680_5644_2_TH.zip"
LOD2_TILE_BOUNDS = (680000.0, 5644000.0, 682000.0, 5646000.0)
#: Rise of the flood scenarios' water surface above the mean water level.
FLOOD_RISE_M = {"HQ100": 2.75, "HQextrem": 3.4}
#: Flood reaches (the zones are split where the water level is re-set): (id, y from, y to).
FLOOD_REACHES = [("01", LIDAR_AREA[1], 5645000.0), ("02", 5645000.0, LIDAR_AREA[3])]
LOD2_HEIGHTENED_BY_M = 3.2

DATASETS = {
    "buildings": "jena-sample-alkis-gebaeude",
    "lidar": "jena-sample-dom-lidar",
    "lod2_reference": "jena-sample-lod2",
    "trees": "jena-sample-baumkataster",
    "roads": "jena-sample-verkehrsmengen",
    "flood_zones": "jena-sample-ueberschwemmungsgebiete",
    "viewpoints": "jena-sample-sichtpunkte",
    "variants": "jena-sample-planungsvarianten",
    "weather": "jena-sample-testreferenzjahr",
}

CONTEXT = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "spdx": "http://spdx.org/rdf/terms#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "adms": "http://www.w3.org/ns/adms#",
    "dcatde": "http://dcat-ap.de/def/dcatde/",
    "locn": "http://www.w3.org/ns/locn#",
    "gsp": "http://www.opengis.net/ont/geosparql#",
}
#: Ids of catalog, datasets and distributions are fragment IRIs relative to the catalog document.
BASE_IRI = "#"
FILE_TYPE = "http://publications.europa.eu/resource/authority/file-type/"
IANA = "https://www.iana.org/assignments/media-types/"
CRS_IRI = "http://www.opengis.net/def/crs/EPSG/0/25832"


# =============================================================================================
@dataclass
class SampleCity:
    """What :func:`generate` wrote: paths and the ground truth.

    Attributes
    ----------
    out_dir : Path
    seed : int
    catalog_path : Path
        ``catalog.jsonld``.
    ground_truth_path : Path
        ``ground_truth.json``.
    files : dict
        Dataset identifier -> list of data files (absolute paths).
    ground_truth : dict
        The content of ``ground_truth.json``.
    seconds : float
        Time taken by this call.
    generated : bool
        False when an existing complete city was found and reused.
    """

    out_dir: Path
    seed: int
    catalog_path: Path
    ground_truth_path: Path
    files: dict[str, list[Path]]
    ground_truth: dict
    seconds: float = 0.0
    generated: bool = True

    @property
    def buildings_path(self) -> Path:
        return self.files[DATASETS["buildings"]][0]

    @property
    def lidar_paths(self) -> list[Path]:
        return list(self.files[DATASETS["lidar"]])

    @property
    def lod2_path(self) -> Path:
        return self.files[DATASETS["lod2_reference"]][0]

    @property
    def trees_path(self) -> Path:
        return self.files[DATASETS["trees"]][0]

    @property
    def roads_path(self) -> Path:
        return self.files[DATASETS["roads"]][0]

    @property
    def flood_zones_path(self) -> Path:
        return self.files[DATASETS["flood_zones"]][0]

    @property
    def viewpoints_path(self) -> Path:
        return self.files[DATASETS["viewpoints"]][0]

    @property
    def buildings(self) -> list[dict]:
        """Ground truth of every building (footprint + LiDAR)."""
        return self.ground_truth["buildings"]

    def building(self, building_id: str) -> dict:
        for b in self.ground_truth["buildings"]:
            if b["building_id"] == building_id:
                return b
        raise KeyError(building_id)

    def parts(self, building_id: str) -> list[RoofPart]:
        """The roof-model parts of a building, ready for :func:`citymodel.roofs.roof_height`."""
        return [RoofPart.from_dict(p) for p in self.building(building_id)["parts"]]

    @property
    def tile_ids(self) -> list[str]:
        return [t.id for t in tiles_for_extent(EXTENT)]


# =============================================================================================
def _sha256(path: Path) -> str:
    return sha256_file(path)


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8", newline="\n")
    tmp.replace(path)


def _json_dump(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, indent=1, sort_keys=False) + "\n"


def _r2(v: float) -> float:
    return round(float(v), 2)


def _coords2(geom) -> dict:
    """GeoJSON geometry with coordinates rounded to cm."""
    return mapping(shapely.set_precision(geom, 0.01)) if geom.geom_type != "Point" else \
        {"type": "Point", "coordinates": [_r2(geom.x), _r2(geom.y)]}


def _geojson(features: list[dict], name: str) -> str:
    fc = {"type": "FeatureCollection", "name": name,
          "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::25832"}},
          "features": features}
    return json.dumps(fc, ensure_ascii=False, default=_listify) + "\n"


def _listify(o):
    if isinstance(o, tuple):
        return list(o)
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    raise TypeError(type(o))


def _fmt_dec(v: float, nd: int = 1) -> str:
    return f"{v:.{nd}f}".replace(".", ",")


def _read_marker(out_dir: Path) -> dict | None:
    p = out_dir / MARKER
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _marker_valid(out_dir: Path, seed: int) -> bool:
    m = _read_marker(out_dir)
    if not m or m.get("generator_version") != GENERATOR_VERSION or m.get("seed") != seed:
        return False
    for rel, entry in m.get("files", {}).items():
        p = out_dir / rel
        if not p.is_file() or p.stat().st_size != entry["bytes"] or _sha256(p) != entry["sha256"]:
            return False
    return bool(m.get("files"))


def _load(out_dir: Path, seed: int, seconds: float, generated: bool) -> SampleCity:
    gt_path = out_dir / "ground_truth.json"
    gt = json.loads(gt_path.read_text(encoding="utf-8"))
    files = {ds: [out_dir / p for p in rels] for ds, rels in gt["files"].items()}
    return SampleCity(out_dir, seed, out_dir / "catalog.jsonld", gt_path, files, gt, seconds, generated)


# =============================================================================================
def generate(out_dir: str | os.PathLike, seed: int = DEFAULT_SEED, *, force: bool = False,
             verbose: bool = True) -> SampleCity:
    """Write the sample city into ``out_dir`` (or reuse a complete one of the same version and seed).

    Parameters
    ----------
    out_dir
        Target folder (created). Data files go to ``out_dir/files``.
    seed
        Seed of the layout and the point cloud.
    force
        Regenerate even if the marker says the folder is complete.
    verbose
        Print what was written and the time taken.

    Returns
    -------
    SampleCity
    """
    t0 = time.perf_counter()
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise dataset_error(ConfigError, "sample city", f"seed {seed!r} is not a non-negative integer",
                            f"pass an integer >= 0 (default {DEFAULT_SEED})")
    seed = int(seed)
    out_dir = Path(out_dir).resolve()
    if out_dir.exists() and not out_dir.is_dir():
        raise dataset_error(ConfigError, "sample city", f"output path {out_dir} exists and is not a folder",
                            "give a folder (new or holding a sample city) as OUT_DIR", record=str(out_dir))
    if not force and _marker_valid(out_dir, seed):
        city = _load(out_dir, seed, time.perf_counter() - t0, generated=False)
        if verbose:
            print(f"sample city: {out_dir} is complete (generator {GENERATOR_VERSION}, seed {seed}); "
                  f"reused in {city.seconds:.2f} s")
        return city
    files_dir = out_dir / "files"
    files_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MARKER).unlink(missing_ok=True)

    timings: dict[str, float] = {}
    tic = time.perf_counter()
    plan = plan_city(seed)
    rng = np.random.default_rng([seed, 1])
    roles = _assign_roles(plan, rng)
    timings["layout"] = time.perf_counter() - tic

    written: dict[str, list[Path]] = {}
    tic = time.perf_counter()
    written[DATASETS["buildings"]] = [_write_buildings(plan, roles, files_dir / "gebaeude.gpkg")]
    timings["buildings"] = time.perf_counter() - tic
    tic = time.perf_counter()
    written[DATASETS["lidar"]] = _write_lidar(plan, files_dir, seed)
    timings["lidar"] = time.perf_counter() - tic
    tic = time.perf_counter()
    written[DATASETS["lod2_reference"]] = [_write_lod2(plan, roles, files_dir / LOD2_ZIP)]
    timings["lod2"] = time.perf_counter() - tic
    tic = time.perf_counter()
    written[DATASETS["trees"]] = [_write_trees(plan, roles, files_dir / "baumkataster.csv")]
    road_features = _road_features(np.random.default_rng([seed, 2]))
    written[DATASETS["roads"]] = [files_dir / "verkehrsmengen.geojson"]
    _write_text(written[DATASETS["roads"]][0], _geojson(road_features, "verkehrsmengen"))
    flood_features, flood_levels = _flood_features()
    written[DATASETS["flood_zones"]] = [files_dir / "ueberschwemmungsgebiete.geojson"]
    _write_text(written[DATASETS["flood_zones"]][0], _geojson(flood_features, "ueberschwemmungsgebiete"))
    vp_features = _viewpoint_features(plan)
    written[DATASETS["viewpoints"]] = [files_dir / "sichtpunkte.geojson"]
    _write_text(written[DATASETS["viewpoints"]][0], _geojson(vp_features, "sichtpunkte"))
    timings["vectors"] = time.perf_counter() - tic
    tic = time.perf_counter()
    written[DATASETS["variants"]] = _write_variants(plan, roles, road_features, files_dir / "varianten")
    timings["variants"] = time.perf_counter() - tic
    tic = time.perf_counter()
    written[DATASETS["weather"]] = [_write_weather(files_dir / "TRY_beispielstadt_mittleres_jahr.dat", seed)]
    timings["weather"] = time.perf_counter() - tic

    _write_catalog(out_dir, written)
    gt = _ground_truth(plan, roles, seed, out_dir, written, road_features, flood_levels, vp_features)
    gt["weather"] = _weather_truth(written[DATASETS["weather"]][0])
    gt_path = out_dir / "ground_truth.json"
    _write_text(gt_path, _json_dump(gt))
    _write_parquet(gt, out_dir / "ground_truth.parquet")

    rel_files = [p.relative_to(out_dir) for ps in written.values() for p in ps]
    rel_files += [Path("catalog.jsonld"), Path("ground_truth.json"), Path("ground_truth.parquet")]
    marker = {"generator_version": GENERATOR_VERSION, "seed": seed,
              "files": {str(r): {"sha256": _sha256(out_dir / r), "bytes": (out_dir / r).stat().st_size}
                        for r in rel_files}}
    _write_text(out_dir / MARKER, _json_dump(marker))
    seconds = time.perf_counter() - t0
    city = _load(out_dir, seed, seconds, generated=True)
    if verbose:
        print(f"sample city: {len(plan.buildings)} buildings, {len(plan.trees)} trees, "
              f"{len(written[DATASETS['lidar']])} LiDAR tiles -> {out_dir}")
        for r in rel_files:
            print(f"  {r}  ({marker['files'][str(r)]['bytes']:,} bytes)")
        print("sample city: generated in {:.1f} s ({})".format(
            seconds, ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())))
    return city


# =============================================================================================
@dataclass
class _Roles:
    """Which buildings play the special parts (bad records, LoD2 status)."""

    bowtie: str
    storeys99: str
    bad_tree: str
    heightened: str
    new: str
    demolished: Building
    in_lod2: set[str] = field(default_factory=set)
    dachform_null: set[str] = field(default_factory=set)


def _west(b: Building) -> bool:
    p = b.footprint.representative_point()
    x0, y0, x1, y1 = LOD2_TILE_BOUNDS
    return x0 <= p.x < x1 and y0 <= p.y < y1


def _assign_roles(plan: Plan, rng: np.random.Generator) -> _Roles:
    bs = plan.buildings
    def pick(cands: list[Building]) -> Building:
        return cands[int(rng.integers(0, len(cands)))]
    taken: set[str] = set()
    def pick_free(pred) -> Building:
        b = pick([b for b in bs if pred(b) and b.building_id not in taken])
        taken.add(b.building_id)
        return b
    bowtie = pick_free(lambda b: b.archetype == "gable")
    st99 = pick_free(lambda b: b.archetype == "flat")
    heightened = pick_free(lambda b: _west(b) and b.archetype == "gable" and b.storeys >= 2)
    new = pick_free(lambda b: _west(b) and b.archetype in ("hip", "gable", "flat"))
    in_lod2 = {b.building_id for b in bs if _west(b) and b.building_id != new.building_id}
    null = {b.building_id for b in bs if rng.random() < 0.08} - taken
    # the demolished building: a workshop in a free courtyard spot of the LoD2 tile
    footprints = shapely.STRtree([b.footprint for b in bs])
    trees = shapely.STRtree([Point(t.x, t.y).buffer(t.crown_diameter_m / 2) for t in plan.trees])
    dem = None
    for _ in range(500):
        blk = plan.blocks[int(rng.integers(0, len(plan.blocks)))]
        x0, y0, x1, y1 = blk.bounds
        cx, cy = rng.uniform(x0 + 10, x1 - 10), rng.uniform(y0 + 8, y1 - 8)
        if cx >= LOD2_TILE_BOUNDS[2] - 10:
            continue
        part = RoofPart(_r2(cx), _r2(cy), 10.0, 7.5, 0.0, 0.0, 4.2, 4.2, RoofForm.FLAT, part_id="DETHL51P00009001")
        fp = building_footprint([part])
        if not blk.buffer(-1.0).contains(fp):
            continue
        if len(footprints.query(fp, predicate="dwithin", distance=4.0)) or len(trees.query(fp, predicate="intersects")):
            continue
        ring = np.asarray(shapely.segmentize(fp.exterior, 0.5).coords)
        gz = round(float(terrain_height(ring[:, 0], ring[:, 1]).min()), 3)
        dem = Building("DETHL51P00009001", "demolished", [part.with_ground(gz)], "31001_2000", 1, fp, gz)
        break
    if dem is None:  # pragma: no cover - the layout always leaves courtyards
        raise RuntimeError("no free spot for the demolished building")
    bad_tree = plan.trees[int(rng.integers(0, len(plan.trees)))].tree_id
    return _Roles(bowtie.building_id, st99.building_id, bad_tree, heightened.building_id, new.building_id,
                  dem, in_lod2, null)


# =============================================================================================
def _bowtie(poly: Polygon) -> Polygon:
    c = np.asarray(poly.exterior.coords)[:-1]
    return Polygon([c[0], c[2], c[1], c[3]])


def _write_buildings(plan: Plan, roles: _Roles, path: Path) -> Path:
    """GeoPackage layer ``gebaeude`` (written with pyogrio's raw API: no geopandas import needed)."""
    import pyogrio
    import pyogrio.raw

    geoms, ids, funcs, storeys, dach, dach_mask, storeys_mask = [], [], [], [], [], [], []
    for b in plan.buildings:
        geom = shapely.set_precision(b.footprint, 0.01)
        if b.building_id == roles.bowtie:
            geom = _bowtie(geom)
        geoms.append(geom)
        ids.append(b.building_id)
        funcs.append(b.function)
        storeys.append(99 if b.building_id == roles.storeys99 else (0 if b.storeys is None else b.storeys))
        storeys_mask.append(b.storeys is None)
        null = b.building_id in roles.dachform_null
        dach.append("" if null else str(b.form.code))
        dach_mask.append(null)
    wkb = shapely.to_wkb(np.array(geoms, dtype=object))
    n = len(ids)
    tmp = path.with_name(path.name + ".tmp.gpkg")
    tmp.unlink(missing_ok=True)
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": GPKG_DATE})
    try:
        pyogrio.raw.write(tmp, wkb, [np.array(ids, dtype=object), np.array(funcs, dtype=object),
                                     np.array(storeys, dtype=np.int32), np.array(dach, dtype=object)],
                          ["gml_id", "gebaeudefunktion", "anzahl_og", "dachform"],
                          field_mask=[np.zeros(n, bool), np.zeros(n, bool), np.array(storeys_mask, dtype=bool),
                                      np.array(dach_mask, dtype=bool)],
                          layer="gebaeude", driver="GPKG", geometry_type="Polygon", crs="EPSG:25832")
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": None})
    tmp.replace(path)
    return path


def _write_lidar(plan: Plan, files_dir: Path, seed: int, only: set[str] | None = None) -> list[Path]:
    """One LAZ per tile (``only``: tile ids to write, for tests); each tile has its own random stream."""
    out = []
    lx0, ly0, lx1, ly1 = LIDAR_AREA
    for i, tile in enumerate(tiles_for_extent(EXTENT)):
        if only is not None and tile.id not in only:
            continue
        tx0, ty0, tx1, ty1 = tile.bounds
        bounds = (max(tx0, lx0), max(ty0, ly0), min(tx1, lx1), min(ty1, ly1))
        rng = np.random.default_rng([seed, 100 + i])
        area = box(*bounds).buffer(40.0)
        bs = [b for b in plan.buildings if b.footprint.intersects(area)]
        ts = [t for t in plan.trees if area.contains(Point(t.x, t.y))]
        pts = sample_tile(bounds, bs, ts, rng)
        path = files_dir / f"{tile.lidar_name}.laz"
        write_laz(path, pts, (tx0, ty0), gps_start_s=4.0e8 + i * 1.0e4)
        out.append(path)
    return out


def _lod2_dict(b: Building, lower_by: float = 0.0, storeys_minus: int = 0) -> dict:
    parts = [RoofPart(**{**p.__dict__, "eave_m": p.eave_m - lower_by, "ridge_m": p.ridge_m - lower_by,
                         "mansard_break_m": (p.mansard_break - lower_by) if p.form is RoofForm.MANSARD else None,
                         "mansard_inset_m": p.mansard_inset if p.form is RoofForm.MANSARD else None,
                         "eave2_m": (p.eave2 - lower_by) if p.asymmetric else None})
             for p in b.parts]
    attrs = {"Gemeindeschluessel": "16053000", "DatenquelleDachhoehe": "1000", "DatenquelleLage": "1000",
             "DatenquelleBodenhoehe": "1100", "Grundrissaktualitaet": "2023-11-30"}
    d = {"id": b.building_id, "function": b.function, "roof_type": str(b.form.code),
         "storeys": None if b.storeys is None else b.storeys - storeys_minus,
         "measured_height_m": round(max(p.ridge_m for p in parts), 3),
         "solid": None, "attributes": attrs, "creation_date": LOD2_CREATION_DATE}
    if len(parts) == 1:
        d["solid"] = part_solid(parts[0])
    else:
        d["parts"] = [{"id": p.part_id, "solid": part_solid(p), "roof_type": str(p.form.code),
                       "measured_height_m": round(p.ridge_m, 3), "function": b.function,
                       "attributes": {}} for p in parts]
    return d


def _write_lod2(plan: Plan, roles: _Roles, path: Path) -> Path:
    try:
        from ..citygml import write_citygml
    except ImportError as exc:  # pragma: no cover - the writer is part of the package
        raise dataset_error(SourceDataError, DATASETS["lod2_reference"], f"no CityGML writer ({exc})",
                            "install the complete citymodel package (citymodel/citygml/)") from exc
    blds = []
    for b in plan.buildings:
        if b.building_id not in roles.in_lod2:
            continue
        if b.building_id == roles.heightened:
            blds.append(_lod2_dict(b, LOD2_HEIGHTENED_BY_M, 1))
        else:
            blds.append(_lod2_dict(b))
    blds.append(_lod2_dict(roles.demolished))
    blds.sort(key=lambda d: d["id"])
    stem = path.name[:-4]
    gml = path.with_name(stem + ".gml")
    write_citygml(blds, gml, crs="EPSG:25832", vertical_crs="EPSG:7837", name=stem,
                  creation_date=LOD2_CREATION_DATE)
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        info = zipfile.ZipInfo(stem + ".gml", date_time=ZIP_DATE)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        zf.writestr(info, gml.read_bytes())
    gml.unlink()
    tmp.replace(path)
    return path


def _write_trees(plan: Plan, roles: _Roles, path: Path) -> Path:
    lines = ["baumnummer;ga_lang;baumhoehe;kr_durchm;st_umfang;vitalitaet;geometrie"]
    for t in plan.trees:
        h = 75.0 if t.tree_id == roles.bad_tree else t.height_m
        # EPSG:3044 (ETRS89 / ETRS-TM32) has the same projection as EPSG:25832, axes northing, easting
        lines.append(f"{t.tree_id};{t.species};{_fmt_dec(h)};{_fmt_dec(t.crown_diameter_m)};"
                     f"{t.trunk_circumference_cm};{t.vitality};POINT ({t.y:.2f} {t.x:.2f})")
    _write_text(path, "\n".join(lines) + "\n")
    return path


# --------------------------------------------------------------------------------------------
def _road_segments() -> list[tuple[str, shapely.LineString]]:
    """~25 segments: NS streets split at two crossings, EW streets at Johannisstraße (and the bridge)."""
    x0, y0, x1, y1 = EXTENT
    segs = []
    for x, name in layout.NS_STREETS:
        cuts = [y0, 5644850.0, 5645080.0, y1]
        segs += [(name, shapely.LineString([(x, a), (x, b)])) for a, b in zip(cuts, cuts[1:])]
    east_end = layout.NS_STREETS[-1][0]
    for y, name in layout.EW_STREETS:
        cuts = [x0, 681965.0, east_end] + ([x1] if name == layout.BRIDGE_STREET else [])
        segs += [(name, shapely.LineString([(a, y), (b, y)])) for a, b in zip(cuts, cuts[1:])]
    return segs


def _road_features(rng: np.random.Generator) -> list[dict]:
    main = {layout.BRIDGE_STREET: (18000, 24000), "Leutragraben": (11000, 15000), "Am Saaleufer": (7000, 9000)}
    paving = {"Wagnergasse": "Pflaster", "Oberlauengasse": "Pflaster"}
    feats = []
    for i, (name, line) in enumerate(_road_segments(), start=1):
        lo, hi = main.get(name, (1500, 6000))
        dtv = int(round(rng.uniform(lo, hi), -1))
        is_main = name in main
        belag = paving.get(name, "SMA" if is_main else "Asphaltbeton")
        only_dtv = (not is_main) and rng.random() < 0.25
        props = {
            "strassen_id": f"S{i:03d}", "name": name, "dtv": dtv,
            "m_tag": None if only_dtv else _r2(dtv * 0.0575 * rng.uniform(0.95, 1.05)),
            "m_nacht": None if only_dtv else _r2(dtv * 0.0100 * rng.uniform(0.9, 1.1)),
            "p1_tag": _r2(rng.uniform(2, 5) if is_main else rng.uniform(0.5, 2.5)),
            "p2_tag": _r2(rng.uniform(1, 4) if is_main else rng.uniform(0.2, 1.5)),
            "pkrad_tag": _r2(rng.uniform(0.8, 2.0)),
            "p1_nacht": _r2(rng.uniform(1.5, 4) if is_main else rng.uniform(0.3, 2)),
            "p2_nacht": _r2(rng.uniform(1, 5) if is_main else rng.uniform(0.1, 1)),
            "pkrad_nacht": _r2(rng.uniform(0.3, 1.2)),
            "v_pkw": 50 if is_main else 30, "v_lkw": 50 if is_main else 30,
            "belag": belag,
        }
        feats.append({"type": "Feature", "id": props["strassen_id"], "properties": props,
                      "geometry": _coords2(line)})
    return feats


def _write_variants(plan: Plan, roles: _Roles, road_features: list[dict], folder: Path) -> list[Path]:
    """The two demonstration planning variants (see ``demo_variants``), placed on this plan: only
    records that staging keeps are named (not the deliberately bad ones)."""
    from .demo_variants import demo_variants, dumps

    bad = {roles.bowtie, roles.storeys99}
    buildings = [{"building_id": b.building_id, "archetype": b.archetype, "storeys": b.storeys,
                  "footprint": b.footprint} for b in plan.buildings
                 if b.building_id not in bad and b.footprint is not None]
    roads = [{"road_id": f["properties"]["strassen_id"], "name": f["properties"]["name"],
              "geometry": shapely.geometry.shape(f["geometry"])} for f in road_features]
    trees = [{"tree_id": t.tree_id, "x": t.x, "y": t.y} for t in plan.trees if t.tree_id != roles.bad_tree]
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, doc in sorted(demo_variants(buildings, roads, trees).items()):
        paths.append(folder / name)
        _write_text(paths[-1], dumps(doc))
    return paths


def _write_weather(path: Path, seed: int) -> Path:
    """The sample city's weather dataset: a synthetic test reference year in the DWD TRY format at
    the site, consistent with the default monthly means (:mod:`citymodel.samplecity.weather`)."""
    from ..analysis.climate import JENA_MONTHLY_GHI_KWH_M2
    from ..analysis.sun import site_location
    from .weather import write_synthetic_try

    lat, lon = site_location(EXTENT, "EPSG:25832")
    return write_synthetic_try(path, JENA_MONTHLY_GHI_KWH_M2, lat, lon, seed)


def _weather_truth(path: Path) -> dict:
    """What the weather file holds: its monthly and annual global horizontal irradiation (kWh/m²)."""
    from ..analysis.climate import JENA_MONTHLY_GHI_KWH_M2

    return {"file": path.name, "synthetic": True, "monthly_ghi_kwh_m2": list(JENA_MONTHLY_GHI_KWH_M2),
            "annual_ghi_kwh_m2": float(sum(JENA_MONTHLY_GHI_KWH_M2))}


def _flood_features() -> tuple[list[dict], list[dict]]:
    return flood_features(LIDAR_AREA, FLOOD_REACHES)


def flood_features(area: tuple[float, float, float, float],
                   reaches: list[tuple[str, float, float]]) -> tuple[list[dict], list[dict]]:
    """Flood zones of the river (:mod:`citymodel.samplecity.terrain`) over ``area``: per scenario of
    :data:`FLOOD_RISE_M` and reach ``(id, y from, y to)``, the cells of a 2 m grid below the water
    surface that touch the river. Returns (GeoJSON features, water levels per zone)."""
    from affine import Affine
    from rasterio import features

    cell = 2.0
    x0, y0, x1, y1 = area
    nx, ny = int((x1 - x0) / cell), int((y1 - y0) / cell)
    xs = x0 + (np.arange(nx) + 0.5) * cell
    ys = y1 - (np.arange(ny) + 0.5) * cell
    X, Y = np.meshgrid(xs, ys)
    Z = terrain_height(X, Y)
    transform = Affine(cell, 0.0, x0, 0.0, -cell, y1)
    feats, levels = [], []
    for scen, rise in FLOOD_RISE_M.items():
        for reach, ya, yb in reaches:
            wsp = round(float(water_level((ya + yb) / 2)) + rise, 2)
            mask = (Z < wsp) & (Y >= ya) & (Y < yb)
            if not mask.any():
                continue
            polys = [shapely.geometry.shape(g) for g, v in
                     features.shapes(mask.astype(np.uint8), mask=mask, transform=transform) if v == 1]
            geom = shapely.union_all(polys).simplify(0.5)
            yy = np.linspace(ya, yb, 50)
            river = shapely.LineString(np.column_stack([river_axis_x(yy), yy]))
            if geom.geom_type == "MultiPolygon":
                geom = shapely.MultiPolygon([g for g in geom.geoms if g.intersects(river)])
                if len(geom.geoms) == 1:
                    geom = geom.geoms[0]
            gid = f"UEG-SAALE-{reach}-{scen}"
            props = {"gebiet_id": gid, "szenario": scen, "wsp_m": wsp,
                     "gewaesser": "Saale", "hoehensystem": "DHHN2016"}
            feats.append({"type": "Feature", "id": gid, "properties": props, "geometry": _coords2(geom)})
            levels.append({"gebiet_id": gid, "szenario": scen, "wsp_m": wsp, "y_from": ya, "y_to": yb})
    return feats, levels


def _viewpoint_features(plan: Plan) -> list[dict]:
    tallest = max(plan.buildings, key=lambda b: b.ground_z + b.ridge_m)
    c = tallest.footprint.representative_point()
    top_z = tallest.ground_z + tallest.ridge_m + 1.0
    targets = [
        ("Z1", "Saaleufer Ost", 682290.0, 5644965.0, 2.0),
        ("Z2", f"Dach {tallest.building_id}", _r2(c.x), _r2(c.y),
         round(top_z - float(terrain_height(c.x, c.y)), 2)),
        ("Z3", "Aussichtspunkt Westhang", 681712.0, 5645250.0, 1.6),
    ]
    observers = [
        ("B1", "Brücke Löbdergraben", 682120.0, 5644965.0, 1.6, "Z1"),
        ("B2", "Kreuzung Lutherstraße/Löbdergraben", 681850.0, 5644965.0, 1.6, "Z2"),
        ("B3", "Am Saaleufer Nord", 682160.0, 5645250.0, 1.6, "Z3"),
        ("B4", "Westbahnhofstraße/Löbdergraben", 681735.0, 5644965.0, 1.6, "Z1"),
    ]
    feats = []
    for sp, name, x, y, h, ziel in observers:
        feats.append({"type": "Feature", "id": sp, "properties": {
            "sp_id": sp, "name": name, "art": "beobachter", "augenhoehe_m": h, "ziel_id": ziel},
            "geometry": {"type": "Point", "coordinates": [x, y]}})
    for sp, name, x, y, h in targets:
        feats.append({"type": "Feature", "id": sp, "properties": {
            "sp_id": sp, "name": name, "art": "ziel", "augenhoehe_m": h, "ziel_id": None},
            "geometry": {"type": "Point", "coordinates": [x, y]}})
    return feats


# --------------------------------------------------------------------------------------------
def _wkt_bbox(b) -> str:
    x0, y0, x1, y1 = b
    return (f"<{CRS_IRI}> POLYGON (({x0:.0f} {y0:.0f}, {x1:.0f} {y0:.0f}, {x1:.0f} {y1:.0f}, "
            f"{x0:.0f} {y1:.0f}, {x0:.0f} {y0:.0f}))")


_DS_META = {
    DATASETS["buildings"]: ("Gebäude (ALKIS, Beispielstadt)", "Gebäudegrundrisse aus dem Liegenschaftskataster "
                            "(ALKIS) mit Gebäudefunktion, Anzahl der Obergeschosse und Dachform.",
                            "GPKG", "application/geopackage+sqlite3", ["Gebäude", "ALKIS"]),
    DATASETS["lidar"]: ("Digitales Oberflächenmodell: Laserscanning-Punktwolke (Beispielstadt)",
                        "Klassifizierte Laserscanning-Punkte (Klasse 2 Boden, 1 sonstige) in 1-km-Kacheln, "
                        "LAS 1.4 komprimiert (LAZ), ETRS89/UTM32, Höhen DHHN2016.",
                        "LAZ", "application/vnd.laszip", ["Laserscanning", "DOM", "Punktwolke"]),
    DATASETS["lod2_reference"]: ("3D-Gebäudemodelle LoD2 (Beispielstadt)", "Amtliche 3D-Gebäudemodelle im "
                                 "Detaillierungsgrad LoD2, CityGML 2.0 (AdV-Profil), 2-km-Kachel.",
                                 "ZIP", "application/zip", ["LoD2", "CityGML", "3D-Gebäudemodell"]),
    DATASETS["trees"]: ("Baumkataster (Beispielstadt)", "Straßen- und Parkbäume mit Art, Höhe, Kronendurchmesser, "
                        "Stammumfang und Vitalität; Koordinaten ETRS89 / ETRS-TM32 (EPSG:3044, Rechtswert nach "
                        "Hochwert: Hochwert zuerst).", "CSV", "text/csv", ["Bäume", "Baumkataster"]),
    DATASETS["roads"]: ("Verkehrsmengen (Beispielstadt)", "Straßenabschnitte mit DTV, maßgebenden stündlichen "
                        "Verkehrsstärken Tag/Nacht, Lkw- und Kraftradanteilen, Geschwindigkeiten und "
                        "Fahrbahnbelag (RLS-19).", "GEOJSON", "application/geo+json", ["Verkehr", "Lärm"]),
    DATASETS["flood_zones"]: ("Überschwemmungsgebiete der Saale (Beispielstadt)", "Überflutungsflächen für "
                              "HQ100 und HQextrem mit Wasserspiegellage (m ü. NHN, DHHN2016).",
                              "GEOJSON", "application/geo+json", ["Hochwasser", "Überschwemmungsgebiet"]),
    DATASETS["weather"]: ("Testreferenzjahr, mittleres Jahr (Beispielstadt, SYNTHETISCHE Daten)",
                          "Synthetische Beispieldaten im Format der Testreferenzjahre des DWD (kein Produkt des "
                          "DWD): stündliche direkte und diffuse Sonnenbestrahlungsstärke auf die Horizontale, je "
                          "Monat auf die langjährige Monatssumme der Globalstrahlung skaliert (1.072 kWh/m² im Jahr). "
                          "Synthetic sample data in the DWD TRY format, not a DWD product.",
                          "TXT", "text/plain", ["Klima", "Testreferenzjahr", "Solarstrahlung"]),
    DATASETS["viewpoints"]: ("Sichtpunkte (Beispielstadt)", "Standorte von Beobachtern mit Augenhöhe und "
                             "ihre Zielpunkte für Sichtachsen.", "GEOJSON", "application/geo+json",
                             ["Sichtachsen", "Stadtplanung"]),
    DATASETS["variants"]: ("Planungsvarianten (Beispielstadt)", "Planungsvarianten als Änderungen am Bestand "
                           "(GeoJSON, Variantenschema 1.0): ein Quartier des Planungsamts und ein Bürgerentwurf.",
                           "GEOJSON", "application/geo+json", ["Planungsvarianten", "Bürgerbeteiligung"]),
}


#: Publisher and licence named in the sample city's catalog (as in config/sample_city.yaml).
SAMPLE_PUBLISHER = "Stadt Jena, Fachdienst Geoinformation"
SAMPLE_LICENSE = "http://dcat-ap.de/def/licenses/dl-by-de/2.0"


def _write_catalog(out_dir: Path, written: dict[str, list[Path]]) -> Path:
    return write_catalog(out_dir, written)


def write_catalog(out_dir: Path, written: dict[str, list[Path]], *, meta: dict | None = None,
                  bboxes: dict[str, tuple] | None = None, modified: dict[str, str] | None = None,
                  title: str = "Jena Beispielstadt: offene Geodaten (generiert)",
                  description: str = "Generierter Beispieldatenbestand rund um die Jenaer Innenstadt für "
                                     "Tests und Vorführungen der 3D-Stadtmodell-Pipeline.") -> Path:
    """Write ``out_dir/catalog.jsonld``: a DCAT-AP catalog of ``written`` (dataset id -> data files).

    Download URLs are relative to the catalog; every distribution carries its size and SHA-256.
    ``meta`` maps dataset id -> (title, description, format, media type, keywords) (default: the
    sample city's datasets), ``bboxes`` dataset id -> extent (default: the sample city's LiDAR area
    for its LiDAR, else its extent), ``modified`` dataset id -> ``dct:modified`` (default: fixed dates).
    """
    from types import SimpleNamespace

    meta = _DS_META if meta is None else meta
    publish = SimpleNamespace(publisher=SAMPLE_PUBLISHER, license=SAMPLE_LICENSE)
    publisher = {"@id": BASE_IRI + "publisher", "@type": "foaf:Agent", "foaf:name": publish.publisher}
    datasets = []
    for ds_id, paths in written.items():
        ds_title, desc, fmt, media, keywords = meta[ds_id]
        if modified is not None and ds_id in modified:
            ds_modified = modified[ds_id]
        else:
            ds_modified = LOD2_MODIFIED if ds_id == DATASETS["lod2_reference"] else MODIFIED
        dists = []
        for p in paths:
            rel = p.relative_to(out_dir).as_posix()
            dists.append({
                "@id": f"{BASE_IRI}distribution-{ds_id}-{p.name}",
                "@type": "dcat:Distribution",
                "dct:title": p.name,
                "dcat:downloadURL": {"@id": rel},
                "dcat:accessURL": {"@id": rel},
                "dcat:mediaType": {"@id": IANA + media},
                "dct:format": {"@id": FILE_TYPE + fmt},
                "dcat:byteSize": {"@value": str(p.stat().st_size), "@type": "xsd:decimal"},
                "spdx:checksum": {"@type": "spdx:Checksum",
                                  "spdx:algorithm": {"@id": "spdx:checksumAlgorithm_sha256"},
                                  "spdx:checksumValue": {"@value": _sha256(p), "@type": "xsd:hexBinary"}},
                "dct:modified": {"@value": ds_modified, "@type": "xsd:dateTime"},
                "dct:license": {"@id": publish.license},
            })
        if bboxes is not None and ds_id in bboxes:
            bbox = bboxes[ds_id]
        else:
            bbox = LIDAR_AREA if ds_id == DATASETS["lidar"] else EXTENT
        datasets.append({
            "@id": f"{BASE_IRI}dataset-{ds_id}",
            "@type": "dcat:Dataset",
            "dct:identifier": ds_id,
            "adms:identifier": {"@type": "adms:Identifier", "skos:notation": ds_id},
            "dct:title": {"@value": ds_title, "@language": "de"},
            "dct:description": {"@value": desc, "@language": "de"},
            "dct:modified": {"@value": ds_modified, "@type": "xsd:dateTime"},
            "dct:issued": {"@value": "2026-01-01T00:00:00Z", "@type": "xsd:dateTime"},
            "dct:license": {"@id": publish.license},
            "dct:publisher": {"@id": publisher["@id"]},
            "dcatde:contributorID": {"@id": "http://dcat-ap.de/def/contributors/stadtJena"},
            "dcatde:politicalGeocodingLevelURI": {"@id": "http://dcat-ap.de/def/politicalGeocoding/Level/municipality"},
            "dcatde:politicalGeocodingURI": {"@id": "http://dcat-ap.de/def/politicalGeocoding/municipalityKey/16053000"},
            "dcatde:licenseAttributionByText": "Stadt Jena (Beispieldaten, generiert)",
            "dcat:keyword": [{"@value": k, "@language": "de"} for k in keywords],
            "dcat:theme": {"@id": "http://publications.europa.eu/resource/authority/data-theme/REGI"},
            "dct:spatial": {"@type": "dct:Location",
                            "locn:geometry": {"@value": _wkt_bbox(bbox), "@type": "gsp:wktLiteral"},
                            "dcat:bbox": {"@value": _wkt_bbox(bbox), "@type": "gsp:wktLiteral"}},
            "dcat:distribution": dists,
        })
    catalog = {
        "@id": BASE_IRI + "catalog",
        "@type": "dcat:Catalog",
        "dct:title": {"@value": title, "@language": "de"},
        "dct:description": {"@value": description, "@language": "de"},
        "dct:publisher": {"@id": publisher["@id"]},
        "dct:modified": {"@value": MODIFIED, "@type": "xsd:dateTime"},
        "dct:language": {"@id": "http://publications.europa.eu/resource/authority/language/DEU"},
        "dct:license": {"@id": publish.license},
        "dcat:dataset": [{"@id": d["@id"]} for d in datasets],
    }
    doc = {"@context": {**CONTEXT, "skos": "http://www.w3.org/2004/02/skos/core#"},
           "@graph": [catalog, publisher] + datasets}
    path = out_dir / "catalog.jsonld"
    _write_text(path, _json_dump(doc))
    return path


# --------------------------------------------------------------------------------------------
def _flood_depths(b: Building, levels: list[dict]) -> dict[str, float]:
    y = b.footprint.centroid.y
    out = {}
    for lv in levels:
        if lv["y_from"] <= y < lv["y_to"]:
            out[lv["szenario"]] = round(max(0.0, lv["wsp_m"] - b.ground_z), 3)
    return out


def _building_truth(b: Building, roles: _Roles, levels: list[dict], trees_over: dict[str, list[str]]) -> dict:
    rp = b.footprint.representative_point()
    west = _west(b)
    if b.building_id in roles.in_lod2:
        status = "heightened" if b.building_id == roles.heightened else "current"
    else:
        status = "new" if west else "outside"
    return {
        "building_id": b.building_id,
        "archetype": b.archetype,
        "function": b.function,
        "function_name": layout.FUNCTION_NAMES.get(b.function),
        "storeys": b.storeys,
        "roof_form": b.form.label,
        "roof_code": b.form.code,
        "eave_height_m": b.eave_m,
        "ridge_height_m": b.ridge_m,
        "ground_height_m": b.ground_z,
        "roof_top_z": round(b.ground_z + b.ridge_m, 3),
        "n_parts": len(b.parts),
        "footprint_area_m2": round(b.footprint.area, 3),
        "footprint_wkt": shapely.set_precision(b.footprint, 0.01).wkt,
        "tile_id": tile_of_point(rp.x, rp.y).id,
        "in_lod2": b.building_id in roles.in_lod2,
        "lod2_status": status,
        "lod2_ridge_height_m": (round(b.ridge_m - LOD2_HEIGHTENED_BY_M, 3) if status == "heightened"
                                else (b.ridge_m if status == "current" else None)),
        "alkis_dachform": None if b.building_id in roles.dachform_null else str(b.form.code),
        "flood_depth_m": _flood_depths(b, levels),
        "overhanging_trees": trees_over.get(b.building_id, []),
        "parts": [p.to_dict() for p in b.parts],
        **_case_truth(b),
    }


def _case_truth(b: Building) -> dict:
    """The extra ground truth of the hard cases of issue #14 (nothing for the other buildings)."""
    if b.archetype not in layout.CASES:
        return {}
    main = b.parts[0]
    return {"case": b.archetype, "eave2_height_m": round(main.eave2, 3),
            "overhang_m": b.attributes.get("overhang_m", 0.0), "structure": b.attributes.get("structure", ""),
            "touches": b.attributes.get("touches", []), "clipped": bool(b.attributes.get("clipped", False))}


def _ground_truth(plan: Plan, roles: _Roles, seed: int, out_dir: Path, written, road_features,
                  levels, vp_features) -> dict:
    trees_over: dict[str, list[str]] = {}
    for t in plan.trees:
        for bid in t.overhangs:
            trees_over.setdefault(bid, []).append(t.tree_id)
    buildings = [_building_truth(b, roles, levels, trees_over) for b in plan.buildings]
    counts: dict[str, int] = {}
    for b in buildings:
        counts[b["roof_form"]] = counts.get(b["roof_form"], 0) + 1
    dem = roles.demolished
    return {
        "generator": "citymodel.samplecity", "generator_version": GENERATOR_VERSION, "seed": seed,
        "crs": "EPSG:25832", "vertical_crs": "EPSG:7837",
        "extent": list(EXTENT), "lidar_area": list(LIDAR_AREA),
        "tiles": [t.id for t in tiles_for_extent(EXTENT)],
        "datasets": DATASETS,
        "files": {ds: [p.relative_to(out_dir).as_posix() for p in ps] for ds, ps in written.items()},
        "summary": {
            "buildings": len(buildings), "trees": len(plan.trees),
            "roof_forms": dict(sorted(counts.items())),
            "archetypes": {a: sum(1 for b in buildings if b["archetype"] == a)
                           for a in sorted({b["archetype"] for b in buildings})},
            "multi_part": sum(1 for b in buildings if b["n_parts"] > 1),
            "cases": {c: sum(1 for b in buildings if b["archetype"] == c) for c in layout.CASES},
            "in_lod2": sum(1 for b in buildings if b["in_lod2"]),
            "flooded_hq100": sum(1 for b in buildings if b["flood_depth_m"].get("HQ100", 0) > 0),
            "flooded_hqextrem": sum(1 for b in buildings if b["flood_depth_m"].get("HQextrem", 0) > 0),
            "overhanging_trees": sum(1 for t in plan.trees if t.overhangs),
            "lidar_density_m2": 10.0, "lidar_noise_m": 0.03,
        },
        "bad_records": [
            {"dataset": DATASETS["buildings"], "record": roles.bowtie, "field": "geometry",
             "problem": "self-intersecting (bow-tie) footprint"},
            {"dataset": DATASETS["buildings"], "record": roles.storeys99, "field": "anzahl_og",
             "problem": "storeys 99 out of range", "value": 99,
             "true_value": next(b.storeys for b in plan.buildings if b.building_id == roles.storeys99)},
            {"dataset": DATASETS["trees"], "record": roles.bad_tree, "field": "baumhoehe",
             "problem": "tree height 75 m out of range", "value": 75.0,
             "true_value": next(t.height_m for t in plan.trees if t.tree_id == roles.bad_tree)},
        ],
        "lod2": {
            "dataset": DATASETS["lod2_reference"], "file": f"files/{LOD2_ZIP}",
            "coverage": list(LOD2_TILE_BOUNDS),
            "demolished": {"building_id": dem.building_id, "footprint_wkt": dem.footprint.wkt,
                           "ground_height_m": dem.ground_z, "eave_height_m": dem.eave_m,
                           "ridge_height_m": dem.ridge_m, "roof_form": dem.form.label},
            "heightened": {"building_id": roles.heightened, "lowered_by_m": LOD2_HEIGHTENED_BY_M},
            "new": roles.new,
        },
        "demolished_building_id": dem.building_id,
        "buildings": buildings,
        "trees": [{"tree_id": t.tree_id, "x": t.x, "y": t.y, "height_m": t.height_m,
                   "crown_diameter_m": t.crown_diameter_m, "crown_depth_m": t.crown_depth_m,
                   "trunk_circumference_cm": t.trunk_circumference_cm, "species": t.species,
                   "vitality": t.vitality, "kind": t.kind, "ground_height_m": t.ground_z,
                   "overhanging": bool(t.overhangs), "overhangs": t.overhangs,
                   "recorded_height_m": 75.0 if t.tree_id == roles.bad_tree else t.height_m}
                  for t in plan.trees],
        "terrain": {"function": "citymodel.samplecity.terrain_height(x, y)", "river": river_parameters()},
        "flood_zones": levels,
        "roads": [f["properties"] | {"wkt": shapely.geometry.shape(f["geometry"]).wkt} for f in road_features],
        "viewpoints": [f["properties"] | {"x": f["geometry"]["coordinates"][0],
                                          "y": f["geometry"]["coordinates"][1]} for f in vp_features],
    }


def _write_parquet(gt: dict, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols = ["building_id", "archetype", "function", "storeys", "roof_form", "roof_code", "eave_height_m",
            "ridge_height_m", "ground_height_m", "n_parts", "footprint_area_m2", "footprint_wkt", "tile_id",
            "in_lod2", "lod2_status"]
    table = pa.table({c: [b[c] for b in gt["buildings"]] for c in cols})
    table = table.append_column("parts_json", pa.array([json.dumps(b["parts"]) for b in gt["buildings"]]))
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp, compression="zstd")
    tmp.replace(path)
