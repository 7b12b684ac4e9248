"""Where the analysis layers keep their files, and reading a layer's tiles back.

The names are stable: the release (:mod:`assets.analysis.release_layers`), the building values and
the 3D Tiles of the ``publish`` stage read them.
"""

from pathlib import Path

import pandas as pd

from citymodel.config import Settings


def analysis_dir(settings: Settings, layer: str | None = None) -> Path:
    """``<output_dir>/analysis`` or one layer's folder in it."""
    d = settings.output_dir / "analysis"
    return d / layer if layer else d


def tile_files(settings: Settings, layer: str, tile_id: str) -> dict[str, Path]:
    """The files one tile of a layer writes (stable names; the release reads them)."""
    d = analysis_dir(settings, layer)
    names = {
        "sun_hours": {"raster": f"{tile_id}.tif", "facades": f"{tile_id}_facades.parquet",
                      "din17037": f"{tile_id}_din17037.parquet"},
        "solar": {"roofs": f"{tile_id}.parquet", "roofs_gpkg": f"{tile_id}.gpkg"},
        "noise": {"raster": f"{tile_id}.tif", "isophones": f"{tile_id}_isophones.gpkg",
                  "facades": f"{tile_id}_facades.parquet", "buildings": f"{tile_id}_buildings.parquet",
                  "exposure": f"{tile_id}_exposure.csv"},
        "flood": {"buildings": f"{tile_id}_buildings.parquet", "summary": f"{tile_id}_summary.csv"},
        "traffic_change": {"raster": f"{tile_id}.tif", "buildings": f"{tile_id}_buildings.parquet",
                           "summary": f"{tile_id}_summary.json"},
    }[layer]
    return {k: d / v for k, v in names.items()}


def flood_raster_path(settings: Settings, tile_id: str, scenario: str) -> Path:
    return analysis_dir(settings, "flood") / f"{tile_id}_{scenario}.tif"


def building_values_path(settings: Settings) -> Path:
    return analysis_dir(settings) / "building_values.parquet"


def read_tiles(settings: Settings, layer: str, part: str) -> pd.DataFrame:
    """One part of a layer's tile files (:func:`tile_files`), all tiles concatenated, without geometry."""
    frames = []
    for t in settings.tile_ids:
        p = tile_files(settings, layer, t)[part]
        if p.exists():
            f = pd.read_parquet(p)
            if len(f):
                frames.append(pd.DataFrame(f.drop(columns=[c for c in ("geometry",) if c in f])))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({"building_id": []})
