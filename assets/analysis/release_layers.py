"""The analysis layers in a release: the tiles' files merged into one file per layer.

Kept beside the layers rather than in :mod:`assets.publish`: it reads the layers' tile files by
their names (:mod:`assets.analysis.files`), so a layer that changes its files changes this too.
"""

from pathlib import Path

import pandas as pd

from citymodel.config import Settings
from citymodel.errors import SourceDataError, dataset_error

from ..common import write_csv_atomic
from .files import analysis_dir, building_values_path, flood_raster_path, tile_files


def _mosaic(paths: list[Path], out: Path) -> Path | None:
    """Merge tile GeoTIFFs (same grid spacing, no overlap) into one, atomically; tags of the first."""
    import rasterio
    from rasterio.merge import merge

    from citymodel.raster import write_geotiff

    paths = [p for p in paths if p.exists()]
    if not paths:
        return None
    srcs = [rasterio.open(p) for p in paths]
    try:
        arr, transform = merge(srcs, nodata=srcs[0].nodata)
        tags = srcs[0].tags()
        desc = list(srcs[0].descriptions) if any(srcs[0].descriptions) else None
        crs = srcs[0].crs.to_wkt() if srcs[0].crs else None
        nodata = srcs[0].nodata
    finally:
        for r in srcs:
            r.close()
    return write_geotiff(out, arr, transform=transform, crs=crs, nodata=nodata, tags=tags, band_descriptions=desc)


def _concat_tiles(settings: Settings, layer: str, part: str):
    import geopandas as gpd

    frames = [gpd.read_parquet(p) for t in settings.tile_ids
              if (p := tile_files(settings, layer, t)[part]).exists()]
    frames = [f for f in frames if len(f)]
    if not frames:
        return None
    if all(isinstance(f, gpd.GeoDataFrame) for f in frames):
        return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=frames[0].crs)
    return pd.concat([pd.DataFrame(f) for f in frames], ignore_index=True)


def add_analysis_to_release(builder, settings: Settings) -> list[str]:
    """Add the analysis layers to an open :class:`citymodel.release.ReleaseBuilder`.

    Writes ``data/analysis/<layer>.{tif,gpkg,parquet,csv}`` (tiles merged into one file per layer)
    and returns the release paths written. Layers not computed are left out.
    """
    import geopandas as gpd

    from citymodel.release import write_geopackage, write_geoparquet

    written: list[str] = []
    tiles = settings.tile_ids
    lic = {"sun_hours": "Sun hours", "solar": "Roof irradiation", "noise": "Road traffic noise (RLS-19)",
           "flood": "Flood exposure", "traffic_change": "Traffic change (noise difference)",
           "sightlines": "Sight lines and viewsheds", "building_values": "Analysis values per building"}

    def raster(layer, paths, name, title):
        rel = f"data/analysis/{name}.tif"
        if _mosaic(paths, builder.path(rel, dataset=f"analysis-{layer}", title=title,
                                       media_type="image/tiff; application=geotiff", format="GeoTIFF")) is None:
            raise dataset_error(SourceDataError, f"analysis/{layer}", f"no tile rasters for {rel}",
                                f"materialize analysis/{layer}")
        written.append(rel)

    def vector(layer, frame, name, title, gpkg=True):
        if frame is None or not len(frame):
            return
        if isinstance(frame, gpd.GeoDataFrame):
            write_geoparquet(frame, builder.path(f"data/analysis/{name}.parquet", dataset=f"analysis-{layer}",
                                                 title=f"{title} (GeoParquet)",
                                                 media_type="application/vnd.apache.parquet", format="Parquet"))
            written.append(f"data/analysis/{name}.parquet")
            if gpkg:
                out = frame.copy()
                write_geopackage(out, builder.path(f"data/analysis/{name}.gpkg", dataset=f"analysis-{layer}",
                                                   title=f"{title} (GeoPackage)",
                                                   media_type="application/geopackage+sqlite3", format="GPKG"),
                                 layer=name)
                written.append(f"data/analysis/{name}.gpkg")
        else:
            p = builder.path(f"data/analysis/{name}.csv", dataset=f"analysis-{layer}", title=f"{title} (CSV)",
                             media_type="text/csv", format="CSV")
            write_csv_atomic(frame, p)
            written.append(f"data/analysis/{name}.csv")

    sh = [tile_files(settings, "sun_hours", t)["raster"] for t in tiles]
    if any(p.exists() for p in sh):
        raster("sun_hours", sh, "sun_hours", "Hours of direct sun on the ground per day (GeoTIFF)")
        vector("sun_hours", _concat_tiles(settings, "sun_hours", "facades"), "facade_sun_hours",
               "Hours of direct sun per facade wall and storey")
        vector("sun_hours", _concat_tiles(settings, "sun_hours", "din17037"), "din17037",
               "DIN EN 17037 sunlight exposure per building")
    roofs = _concat_tiles(settings, "solar", "roofs")
    vector("solar", roofs, "solar", lic["solar"] + " per roof surface")
    if roofs is not None and len(roofs):
        from citymodel.analysis.parameters import solar_climate_text

        codes = sorted(set(roofs["climate"].astype(str))) if "climate" in roofs else ["unknown"]
        c = solar_climate_text(settings, codes[0] if len(codes) == 1 else "mixed: " + ", ".join(codes))
        builder.dataset("analysis-solar", lic["solar"] + " per roof surface", description=(
            f"Jährliche Einstrahlung je Dachfläche (kWh/m²·a) mit Verschattung und Solarkataster-Klassen. Klima: "
            f"{c['climate_label_de']}. — Annual irradiation per roof surface (kWh/m²·a) with shading and "
            f"solar-cadastre classes. Climate: {c['climate_label']}."))
    nz = [tile_files(settings, "noise", t)["raster"] for t in tiles]
    if any(p.exists() for p in nz):
        raster("noise", nz, "noise", "Road traffic noise LrT/LrN, RLS-19 (GeoTIFF)")
        iso = [gpd.read_file(p) for t in tiles if (p := tile_files(settings, "noise", t)["isophones"]).exists()]
        iso = [i for i in iso if len(i)]
        if iso:
            merged = gpd.GeoDataFrame(pd.concat(iso, ignore_index=True), crs=iso[0].crs)
            merged = merged.dissolve(by=["indicator", "band_lo_db", "band_hi_db", "label", "method"],
                                     as_index=False)
            vector("noise", merged, "noise_isophones", "Isophones LrT/LrN (RLS-19)", gpkg=True)
        vector("noise", _concat_tiles(settings, "noise", "facades"), "noise_facades",
               "Facade levels per wall and storey (RLS-19)")
        ex = [pd.read_csv(p).assign(tile_id=t) for t in tiles
              if (p := tile_files(settings, "noise", t)["exposure"]).exists()]
        if ex:
            e = pd.concat(ex, ignore_index=True)
            e = e.groupby(["indicator", "band_lo_db", "band_hi_db", "method"], as_index=False)[
                ["residents", "buildings"]].sum()
            vector("noise", e, "noise_exposure", "Residents per noise band (estimated)")
    scen = sorted({p.stem[len(t) + 1:] for t in tiles for p in analysis_dir(settings, "flood").glob(f"{t}_*.tif")})
    for sc in scen:
        raster("flood", [flood_raster_path(settings, t, sc) for t in tiles], f"flood_depth_{sc}",
               f"Water depth {sc} (GeoTIFF)")
    if scen:
        vector("flood", _concat_tiles(settings, "flood", "buildings"), "flood", lic["flood"] + " per building")
        sm = [pd.read_csv(p) for t in tiles if (p := tile_files(settings, "flood", t)["summary"]).exists()]
        if sm:
            s_ = pd.concat(sm, ignore_index=True).groupby(["scenario", "method", "floor_offset_m"], as_index=False)[
                ["buildings_affected", "ground_floors_flooded", "flooded_area_m2"]].sum()
            vector("flood", s_, "flood_summary", "Flood exposure per scenario")
    tc = [tile_files(settings, "traffic_change", t)["raster"] for t in tiles]
    if any(p.exists() for p in tc):
        raster("traffic_change", tc, "traffic_change", "Noise difference of the traffic change (GeoTIFF)")
    d = analysis_dir(settings, "sightlines")
    if (d / "sightlines.parquet").exists():
        vector("sightlines", gpd.read_parquet(d / "sightlines.parquet"), "sightlines", lic["sightlines"])
        for p in sorted(d.glob("viewshed_*.tif")):
            builder.add_file(p, f"data/analysis/{p.name}", dataset="analysis-sightlines",
                             title=f"Viewshed {p.stem.removeprefix('viewshed_')} (GeoTIFF)",
                             media_type="image/tiff; application=geotiff", format="GeoTIFF")
            written.append(f"data/analysis/{p.name}")
    bv = building_values_path(settings)
    if bv.exists():
        for suffix, media, fmt in ((".parquet", "application/vnd.apache.parquet", "Parquet"),
                                   (".gpkg", "application/geopackage+sqlite3", "GPKG"), (".csv", "text/csv", "CSV")):
            if bv.with_suffix(suffix).exists():
                builder.add_file(bv.with_suffix(suffix), f"data/analysis/building_values{suffix}",
                                 dataset="analysis-building-values", title=lic["building_values"],
                                 media_type=media, format=fmt)
                written.append(f"data/analysis/building_values{suffix}")
    return written
