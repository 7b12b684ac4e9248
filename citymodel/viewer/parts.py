"""The viewer's parts of a release, written into the release folder.

::

    viewer/index.html, viewer/js/*.js, viewer/viewer.css   the app (plain ES modules)
    viewer/cesium/...                                      CesiumJS (ES module build, assets, workers)
    viewer/config.json                                     what the viewer shows (:mod:`.viewconfig`)
    viewer/buildings.json                                  building id -> position (find by id)
    overlays/index.json, overlays/*.png, *.geojson         ground layers (:mod:`citymodel.overlays`)
    terrain/heightmap.json, terrain/heightmap.f32          the terrain (:mod:`.terrain`)
    portals/masterportal/services.json, config.json        Masterportal layer entries (:mod:`.portals`)
    portals/vcmap/config.json                              VC Map module configuration

:func:`write_viewer_parts` writes them from what is already in the release (tilesets, analysis
rasters, the building table) and the deployment's settings (:class:`ViewerInputs`). Nothing depends
on the release id or the time, so an unchanged city gives byte-identical parts.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..errors import ConfigError, dataset_error
from ..fileio import atomic_write_text
from ..legends import (ColorClasses, difference_classes, flood_depth_classes, noise_classes, sun_hours_classes)
from ..overlays import write_overlay, write_overlay_index
from ..tiles3d.geo import GeoTransformer, GeoidModel
from .bundle import ViewerSource, install_viewer
from .portals import masterportal_config_snippet, masterportal_services, vcmap_module
from .terrain import heightmap_grid, write_heightmap
from .viewconfig import MONTHS_DE, MONTHS_EN, Colouring, building_colourings, viewer_config

__all__ = ["ViewerInputs", "ViewerParts", "write_viewer_parts", "raster_overlay_specs", "building_index",
           "TILESETS"]

#: The release's tilesets the viewer offers: name, path, kind, German and English title, shown at start.
TILESETS = (("buildings", "tiles/buildings/tileset.json", "buildings", "Gebäude", "buildings", True),
            ("trees", "tiles/trees/tileset.json", "trees", "Bäume", "trees", True),
            ("pointcloud", "tiles/pointcloud/tileset.json", "pointcloud", "Punktwolke (LiDAR)", "point cloud (LiDAR)",
             False),
            ("solar", "tiles/solar/tileset.json", "analysis", "Dachflächen: Solareinstrahlung", "roofs: solar irradiation",
             False),
            ("facade_sun", "tiles/facade_sun/tileset.json", "analysis", "Fassaden: Sonnenstunden",
             "facades: sun hours", False))


@dataclass
class ViewerInputs:
    """What the viewer's parts are made from, besides the release folder itself.

    Attributes
    ----------
    name, title : str
        The deployment's name and title.
    crs, vertical_crs : str
        Processing CRS and height reference.
    extent : (minx, miny, maxx, maxy)
    geoid : GeoidModel
        The geoid model of the 3D Tiles (the terrain uses the same).
    timezone : str
    year : int
    sun_days : sequence of 'MM-DD'
    day_lengths_h : mapping 'MM-DD' -> h
        Hours of the sun above the horizon (sun-hours legends).
    storey_height_m : float
    noise_lower_db, noise_step_db : float
        Isophone bands.
    dtm_sample : callable
        ``(x, y) -> orthometric heights`` (NaN outside), e.g. :class:`citymodel.dtm.DtmMosaic`.
    terrain_cell_m : float
    buildings : GeoDataFrame, optional
        ``building_id``, footprint geometry, ``ground_height_m``, ``measured_height_m``.
    base_map : mapping, optional
    public_url : str
        Where the output folder is served (portal configurations).
    attribution : str
    source : ViewerSource
    """

    name: str
    title: str
    crs: str
    vertical_crs: str
    extent: Sequence[float]
    geoid: GeoidModel
    timezone: str
    year: int
    sun_days: Sequence[str]
    storey_height_m: float
    source: ViewerSource
    dtm_sample: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
    day_lengths_h: Mapping[str, float] = field(default_factory=dict)
    noise_lower_db: float = 45.0
    noise_step_db: float = 5.0
    terrain_cell_m: float = 2.0
    buildings: Any = None
    base_map: Mapping[str, Any] | None = None
    public_url: str = "http://127.0.0.1:8765/"
    attribution: str = ""


@dataclass
class ViewerParts:
    """What :func:`write_viewer_parts` wrote (paths relative to the release folder)."""

    viewer_files: list[str] = field(default_factory=list)
    overlays: list[dict] = field(default_factory=list)
    terrain: str | None = None
    portals: list[str] = field(default_factory=list)
    colourings: list[str] = field(default_factory=list)
    bytes_viewer: int = 0
    bytes_cesium: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RasterOverlaySpec:
    path: str           # in the release
    band: int | str
    name: str
    title_de: str
    title_en: str
    classes: ColorClasses
    extras: Mapping[str, Any] = field(default_factory=dict)


def raster_overlay_specs(release_dir: Path, *, day_lengths_h: Mapping[str, float] | None = None,
                         noise_lower_db: float = 45.0, noise_step_db: float = 5.0) -> list[RasterOverlaySpec]:
    """The ground overlays of the analysis rasters a release holds (``data/analysis/*.tif``)."""
    import rasterio

    a = Path(release_dir) / "data" / "analysis"
    out: list[RasterOverlaySpec] = []
    p = a / "sun_hours.tif"
    if p.is_file():
        with rasterio.open(p) as ds:
            descs = list(ds.descriptions)
        for i, d in enumerate(descs, start=1):
            m = re.search(r"(\d{4})-(\d{2})-(\d{2})", d or "")
            if not m:
                continue
            mm, dd = int(m.group(2)), int(m.group(3))
            day = f"{mm:02d}-{dd:02d}"
            length = (day_lengths_h or {}).get(day, 12.0)
            out.append(RasterOverlaySpec(f"data/analysis/{p.name}", i, f"sun_hours_{day.replace('-', '')}",
                                         f"Sonnenstunden am Boden, {dd}. {MONTHS_DE[mm - 1]}",
                                         f"sun hours on the ground, {dd} {MONTHS_EN[mm - 1]}",
                                         sun_hours_classes(length), {"day": f"{m.group(1)}-{day}"}))
    p = a / "noise.tif"
    if p.is_file():
        noise = noise_classes(noise_lower_db, noise_step_db)
        out.append(RasterOverlaySpec(f"data/analysis/{p.name}", "LrT_dB", "noise_lrt", "Straßenlärm Tag (LrT, 4 m)",
                                     "road noise day (LrT, 4 m)", noise, {"indicator": "LrT"}))
        out.append(RasterOverlaySpec(f"data/analysis/{p.name}", "LrN_dB", "noise_lrn", "Straßenlärm Nacht (LrN, 4 m)",
                                     "road noise night (LrN, 4 m)", noise, {"indicator": "LrN"}))
    for p in sorted(a.glob("flood_depth_*.tif")):
        sc = p.stem[len("flood_depth_"):]
        out.append(RasterOverlaySpec(f"data/analysis/{p.name}", 1, f"flood_{sc.lower()}", f"Hochwasser {sc}: Wassertiefe",
                                     f"flood {sc}: water depth", flood_depth_classes(), {"scenario": sc}))
    p = a / "traffic_change.tif"
    if p.is_file():
        diff = difference_classes(1.0, "dB", name="noise_difference", more_is_better=False)
        out.append(RasterOverlaySpec(f"data/analysis/{p.name}", "dLrT_dB", "traffic_change_lrt",
                                     "Verkehrsänderung: Lärmdifferenz Tag", "traffic change: noise difference day",
                                     diff, {"indicator": "LrT"}))
    return out


def isophone_lines(release_dir: Path, out_dir: Path, *, noise_lower_db: float, noise_step_db: float,
                   extent: Sequence[float] | None = None) -> list[dict]:
    """The isophones as GeoJSON lines in EPSG:4326, one file per indicator: the boundaries of the
    published band polygons, without the edges of the computed area (``extent``)."""
    import geopandas as gpd
    from shapely.geometry import box

    p = Path(release_dir) / "data" / "analysis" / "noise_isophones.gpkg"
    if not p.is_file():
        return []
    iso = gpd.read_file(p)
    if not len(iso) or "indicator" not in iso:
        return []
    classes = noise_classes(noise_lower_db, noise_step_db)
    out = []
    edge = box(*extent).exterior.buffer(1.0) if extent is not None else None
    for ind in sorted(iso["indicator"].astype(str).unique()):
        sel = iso[iso["indicator"].astype(str) == ind].copy()
        lines = sel.geometry.boundary
        if edge is not None:
            lines = lines.difference(edge)
        sel = gpd.GeoDataFrame(sel.drop(columns=sel.geometry.name), geometry=lines.values, crs=iso.crs).to_crs("EPSG:4326")
        feats = []
        for _, r in sel.iterrows():
            lo = float(r.get("band_lo_db", np.nan))
            rgba = classes.colors_of([lo])[0]
            if rgba[3] == 0:
                continue
            geom = r.geometry
            if geom is None or geom.is_empty:
                continue
            feats.append({"type": "Feature", "geometry": json.loads(gpd.GeoSeries([geom]).to_json())["features"][0]["geometry"],
                          "properties": {"band_lo_db": lo, "band_hi_db": float(r.get("band_hi_db", np.nan)),
                                         "stroke": "#%02x%02x%02x" % tuple(int(c) for c in rgba[:3]), "stroke-width": 2}})
        if not feats:
            continue
        name = f"isophones_{ind.lower()}"
        text = json.dumps({"type": "FeatureCollection", "features": feats}, separators=(",", ":"))
        atomic_write_text(out_dir / f"{name}.geojson", text)
        out.append({"name": name, "title": {"de": f"Isophonen {ind}", "en": f"isophones {ind}"}, "unit": "dB(A)",
                    "geojson": f"{name}.geojson", "legend_kind": "classes", "legend": classes.legend(),
                    "source": "data/analysis/noise_isophones.gpkg", "indicator": ind})
    return out


def building_index(buildings, crs: str, geo: GeoTransformer) -> dict:
    """``{"buildings": [[id, lon, lat, ground_h, top_h], ...]}``: centroid and ellipsoidal heights (m)."""
    if buildings is None or not len(buildings):
        return {"buildings": []}
    cen = buildings.geometry.representative_point()
    x = np.asarray(cen.x, dtype=float)
    y = np.asarray(cen.y, dtype=float)
    ground = np.asarray(buildings.get("ground_height_m", np.zeros(len(x))), dtype=float)
    height = np.asarray(buildings.get("measured_height_m", np.full(len(x), 10.0)), dtype=float)
    ground = np.where(np.isfinite(ground), ground, 0.0)
    height = np.where(np.isfinite(height), height, 10.0)
    lon, lat, h = geo.to_geodetic(x, y, ground)
    rows = [[str(i), round(float(a), 7), round(float(b), 7), round(float(g), 2), round(float(g + t), 2)]
            for i, a, b, g, t in zip(buildings["building_id"], lon, lat, h, height)]
    return {"schema_version": "1.0", "columns": ["id", "lon", "lat", "ground_h_m", "top_h_m"],
            "height_reference": "ellipsoidal (WGS84)", "buildings": rows}


def _tileset_schema(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return ((doc.get("schema") or {}).get("classes") or {}).get("building", {}).get("properties", {}) or {}


def _tileset_legend(path: Path) -> dict | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return ((doc.get("asset") or {}).get("extras") or {}).get("legend")


def _analysis_legend_json(legend: Mapping[str, Any]) -> dict:
    """The legend of an analysis tileset (``asset.extras.legend``) in the viewer's legend format."""
    return {"kind": "ramp", "name": legend.get("name"), "quantity": legend.get("quantity"), "unit": legend.get("unit"),
            "items": [{"value": s["value"], "color": s["color"]} for s in legend.get("stops", [])],
            "no_data": legend.get("noDataColor")}


def _size(root: Path, rels: Sequence[str]) -> int:
    return sum((root / r).stat().st_size for r in rels if (root / r).is_file())


def write_viewer_parts(release_dir: str | Path, inp: ViewerInputs) -> ViewerParts:
    """Write the viewer, its config, the overlays, the terrain and the portal configurations.

    Parameters
    ----------
    release_dir : path
        The release folder being built (its tilesets and ``data/analysis`` are read).
    inp : ViewerInputs

    Returns
    -------
    ViewerParts

    Raises
    ------
    ConfigError
        The viewer app or CesiumJS is missing, or the buildings' tileset is missing.
    """
    rd = Path(release_dir)
    parts = ViewerParts()
    if not (rd / TILESETS[0][1]).is_file():
        raise dataset_error(ConfigError, "viewer", f"{TILESETS[0][1]} is not in the release",
                            "publish the building tiles before the viewer")
    geo = GeoTransformer(inp.crs, inp.geoid, inp.vertical_crs)
    # ---- the app and CesiumJS
    parts.viewer_files = install_viewer(rd / "viewer", inp.source)
    parts.bytes_cesium = _size(rd / "viewer", [r for r in parts.viewer_files if r.startswith("cesium/")])
    # ---- terrain
    terrain_rel = None
    if inp.dtm_sample is not None:
        hm = heightmap_grid(inp.dtm_sample, inp.extent, inp.crs, geo, inp.terrain_cell_m)
        write_heightmap(rd / "terrain", hm, geoid=inp.geoid.to_dict(), vertical_crs=inp.vertical_crs,
                        cell_m=inp.terrain_cell_m)
        terrain_rel = "terrain/heightmap.json"
        parts.terrain = terrain_rel
        ground_m = float(np.median(hm.heights))
    else:
        parts.notes.append("no DTM: the viewer has no terrain (buildings on the ellipsoid's surface)")
        ground_m = 0.0
    # ---- overlays
    specs = raster_overlay_specs(rd, day_lengths_h=inp.day_lengths_h, noise_lower_db=inp.noise_lower_db,
                                 noise_step_db=inp.noise_step_db)
    entries = []
    for sp in specs:
        entries.append(write_overlay(rd / sp.path, rd / "overlays", sp.name, sp.classes, band=sp.band,
                                     title={"de": sp.title_de, "en": sp.title_en}, source=sp.path, extras=sp.extras))
    entries += isophone_lines(rd, rd / "overlays", noise_lower_db=inp.noise_lower_db, noise_step_db=inp.noise_step_db,
                              extent=inp.extent)
    overlays_rel = None
    if entries:
        write_overlay_index(rd / "overlays", entries)
        overlays_rel = "overlays/index.json"
    parts.overlays = entries
    # ---- tilesets, colourings, config
    tilesets = [{"name": n, "url": rel, "kind": kind, "title": {"de": de, "en": en}, "show": show}
                for n, rel, kind, de, en, show in TILESETS if (rd / rel).is_file()]
    properties = _tileset_schema(rd / TILESETS[0][1])
    analysis = {}
    solar_ref = None
    for n, rel, kind, de, en, _ in TILESETS:
        if kind != "analysis" or not (rd / rel).is_file():
            continue
        lg = _tileset_legend(rd / rel)
        if lg:
            analysis[n] = {"title": (de, en), "legend": _analysis_legend_json(lg)}
            if n == "solar":
                solar_ref = lg.get("reference_kwh_m2a")
    colourings: list[Colouring] = building_colourings(
        properties, sun_days=inp.sun_days, day_lengths_h=inp.day_lengths_h, solar_reference_kwh_m2a=solar_ref,
        noise_lower_db=inp.noise_lower_db, noise_step_db=inp.noise_step_db, analysis_tilesets=analysis)
    parts.colourings = [c.name for c in colourings]
    w, s, e, n = _extent_lonlat(inp.extent, inp.crs)
    index_rel = None
    if inp.buildings is not None:
        atomic_write_text(rd / "viewer" / "buildings.json",
                          json.dumps(building_index(inp.buildings, inp.crs, geo), separators=(",", ":")) + "\n")
        index_rel = "viewer/buildings.json"
        parts.viewer_files.append("buildings.json")
    cfg = viewer_config(title=inp.title or inp.name, timezone=inp.timezone, year=inp.year,
                        sun_days=inp.sun_days, storey_height_m=inp.storey_height_m, extent_lonlat=(w, s, e, n),
                        ground_m=ground_m, tilesets=tilesets, colourings=colourings, properties=properties,
                        terrain=terrain_rel, overlays=overlays_rel, building_index=index_rel,
                        base_map=inp.base_map, cesium_version=inp.source.cesium_version)
    atomic_write_text(rd / "viewer" / "config.json", json.dumps(cfg, ensure_ascii=False, indent=1) + "\n")
    parts.viewer_files.append("config.json")
    parts.bytes_viewer = _size(rd / "viewer", parts.viewer_files)
    # ---- portals
    gfi = {a["property"]: a["title"]["de"] + (f" ({a['unit']})" if a.get("unit") else "") for a in cfg["attributes"]
           if a["property"] in properties}
    services = masterportal_services(tilesets, base_url=inp.public_url, id_prefix=inp.name, bbox=inp.extent,
                                     attribution=inp.attribution, gfi_attributes=gfi, dataset_title=inp.title or inp.name)
    atomic_write_text(rd / "portals" / "masterportal" / "services.json",
                      json.dumps(services, ensure_ascii=False, indent=1) + "\n")
    atomic_write_text(rd / "portals" / "masterportal" / "config.json",
                      json.dumps(masterportal_config_snippet(services), ensure_ascii=False, indent=1) + "\n")
    vc = vcmap_module(tilesets, cfg["colourings"], base_url=inp.public_url, name=inp.name, home=cfg["home"],
                      attribution=inp.attribution)
    atomic_write_text(rd / "portals" / "vcmap" / "config.json", json.dumps(vc, ensure_ascii=False, indent=1) + "\n")
    parts.portals = ["portals/masterportal/services.json", "portals/masterportal/config.json",
                     "portals/vcmap/config.json"]
    return parts


def _extent_lonlat(extent: Sequence[float], crs: str) -> tuple[float, float, float, float]:
    import pyproj

    x0, y0, x1, y1 = (float(v) for v in extent)
    t = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    lon, lat = t.transform(np.array([x0, x1, x1, x0]), np.array([y0, y0, y1, y1]))
    return float(np.min(lon)), float(np.min(lat)), float(np.max(lon)), float(np.max(lat))
