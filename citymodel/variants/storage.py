"""A variant's analysis on disk: the same file layout as the city's analysis, below the variant's folder.

:func:`save_analysis` writes a :class:`~citymodel.variants.assess.VariantAnalysis` below ``root``
(``<layer>/<tile>...`` as :func:`citymodel.store.analysis_tile_files` names them, plus
``analysis.json``); :func:`load_analysis` reads it back and pairs it with the city's results (the
"before" of the comparison).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..fileio import atomic_output, atomic_write_text, json_safe
from ..store import analysis_tile_files
from .assess import NoiseTile, SunTile, VariantAnalysis, _read_parquet, _read_raster

META = "analysis.json"


def _write_frame(frame, path: Path) -> None:
    with atomic_output(path, suffix=".parquet") as tmp:
        pd.DataFrame(frame).drop(columns=["geometry"], errors="ignore").to_parquet(tmp, index=False)


def save_analysis(analysis: VariantAnalysis, settings, root: Path) -> list[Path]:
    """Write the variant's results below ``root``; returns the files written."""
    from ..raster import write_geotiff

    root = Path(root)
    out: list[Path] = []
    for tile, t in analysis.sun.items():
        f = analysis_tile_files(settings, "sun_hours", tile, root=root)
        out.append(write_geotiff(f["raster"], t.hours.astype(np.float32), transform=t.transform,
                                 crs=settings.processing_crs, nodata=float("nan")))
        _write_frame(t.walls, f["facades"])
        _write_frame(t.din, f["din17037"])
        out += [f["facades"], f["din17037"]]
    for tile, roofs in analysis.solar.items():
        f = analysis_tile_files(settings, "solar", tile, root=root)
        _write_frame(roofs, f["roofs"])
        out.append(f["roofs"])
    for tile, t in analysis.noise.items():
        f = analysis_tile_files(settings, "noise", tile, root=root)
        out.append(write_geotiff(f["raster"], np.stack([t.lrt, t.lrn]).astype(np.float32), transform=t.transform,
                                 crs=settings.processing_crs, nodata=float("nan")))
        _write_frame(t.facades, f["facades"])
        _write_frame(t.per_building, f["buildings"])
        with atomic_output(f["exposure"]) as tmp:
            t.exposure.to_csv(tmp, index=False)
        out += [f["facades"], f["buildings"], f["exposure"]]
    if analysis.flood is not None and len(analysis.flood):
        for tile, g in analysis.flood.groupby("tile_id"):
            f = analysis_tile_files(settings, "flood", str(tile), root=root)["buildings"]
            _write_frame(g, f)
            out.append(f)
    if analysis.sightlines is not None:
        _write_frame(analysis.sightlines, root / "sightlines" / "sightlines.parquet")
        out.append(atomic_write_text(root / "sightlines" / "viewsheds.json", json.dumps(json_safe(analysis.viewsheds))))
    meta = {"full": analysis.full, "work": analysis.work, "seconds": analysis.seconds,
            "sun_tiles": sorted(analysis.sun), "solar_tiles": sorted(analysis.solar),
            "noise_tiles": sorted(analysis.noise),
            "recomputed": {"sun_hours": {k: [t.recomputed_cells, t.recomputed_buildings] for k, t in analysis.sun.items()},
                           "noise": {k: [t.recomputed_cells, t.recomputed_buildings] for k, t in analysis.noise.items()}},
            "impact": analysis.impact.summary() if analysis.impact is not None else {},
            "impact_wkt": {k: getattr(analysis.impact, k).wkt for k in ("sun", "solar", "noise")}
            if analysis.impact is not None else {}}
    out.append(atomic_write_text(root / META, json.dumps(json_safe(meta), indent=1)))
    return out


def load_analysis(settings, root: Path) -> VariantAnalysis:
    """The variant's results saved below ``root``, with the city's results as their base."""
    import shapely

    from .impact import ImpactAreas

    root = Path(root)
    meta = json.loads((root / META).read_text(encoding="utf-8"))
    a = VariantAnalysis(full=bool(meta.get("full")), work=meta.get("work", {}), seconds=meta.get("seconds", {}))
    rec = meta.get("recomputed", {})
    for tile in meta.get("sun_tiles", []):
        f = analysis_tile_files(settings, "sun_hours", tile, root=root)
        base = analysis_tile_files(settings, "sun_hours", tile)
        hours, transform = _read_raster(f["raster"])
        base_hours, _ = _read_raster(base["raster"])
        cells, ids = rec.get("sun_hours", {}).get(tile, [0, []])
        a.sun[tile] = SunTile(hours, base_hours, transform, _read_parquet(f["facades"]), _read_parquet(f["din17037"]),
                              cells, ids)
    for tile in meta.get("solar_tiles", []):
        a.solar[tile] = _read_parquet(analysis_tile_files(settings, "solar", tile, root=root)["roofs"])
    for tile in meta.get("noise_tiles", []):
        f = analysis_tile_files(settings, "noise", tile, root=root)
        base = analysis_tile_files(settings, "noise", tile)
        (lrt, lrn), transform = (lambda r: ((r[0][0], r[0][1]), r[1]))(_read_raster(f["raster"]))
        (blrt, blrn), _ = (lambda r: ((r[0][0], r[0][1]), r[1]))(_read_raster(base["raster"]))
        cells, ids = rec.get("noise", {}).get(tile, [0, []])
        a.noise[tile] = NoiseTile(lrt, lrn, blrt, blrn, transform, _read_parquet(f["facades"]),
                                  _read_parquet(f["buildings"]), pd.read_csv(f["exposure"]), cells, ids)
    floods = [pd.read_parquet(p) for t in settings.tile_ids
              if (p := analysis_tile_files(settings, "flood", t, root=root)["buildings"]).exists()]
    a.flood = pd.concat(floods, ignore_index=True) if floods else None
    if (root / "sightlines" / "sightlines.parquet").exists():
        a.sightlines = pd.read_parquet(root / "sightlines" / "sightlines.parquet")
        a.viewsheds = json.loads((root / "sightlines" / "viewsheds.json").read_text(encoding="utf-8"))
    wkt = meta.get("impact_wkt") or {}
    if wkt:
        imp = meta.get("impact", {})
        a.impact = ImpactAreas(sun=shapely.from_wkt(wkt["sun"]), solar=shapely.from_wkt(wkt["solar"]),
                               noise=shapely.from_wkt(wkt["noise"]), flood_buildings=imp.get("flood_buildings", []),
                               changed_roads=imp.get("changed_roads", []))
    return a
