"""Where the analysis layers keep their files, and reading a layer's tiles back.

The names are stable: the release (:mod:`assets.analysis.release_layers`), the building values and
the 3D Tiles of the ``publish`` stage read them.
"""

from pathlib import Path

import pandas as pd

from citymodel import store
from citymodel.config import Settings


def analysis_dir(settings: Settings, layer: str | None = None) -> Path:
    """``<output_dir>/analysis`` or one layer's folder in it (:func:`citymodel.store.analysis_dir`)."""
    return store.analysis_dir(settings, layer)


def tile_files(settings: Settings, layer: str, tile_id: str) -> dict[str, Path]:
    """The files one tile of a layer writes (:func:`citymodel.store.analysis_tile_files`)."""
    return store.analysis_tile_files(settings, layer, tile_id)


def flood_raster_path(settings: Settings, tile_id: str, scenario: str) -> Path:
    return store.flood_raster_path(settings, tile_id, scenario)


def building_values_path(settings: Settings) -> Path:
    return store.analysis_dir(settings) / "building_values.parquet"


def read_tiles(settings: Settings, layer: str, part: str, root: Path | None = None) -> pd.DataFrame:
    """One part of a layer's tile files (:func:`tile_files`), all tiles concatenated, without geometry;
    below ``root`` instead of the city's analysis folder where given (a variant's results)."""
    frames = []
    for t in settings.tile_ids:
        p = store.analysis_tile_files(settings, layer, t, root=root)[part]
        if p.exists():
            f = pd.read_parquet(p)
            if len(f):
                frames.append(pd.DataFrame(f.drop(columns=[c for c in ("geometry",) if c in f])))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({"building_id": []})
