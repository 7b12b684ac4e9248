"""The bundled sample city: a deterministic, generated district around Jena's centre.

``generate(out_dir, seed=2026)`` writes every source dataset (ALKIS footprints, LiDAR tiles,
official-style LoD2, tree cadastre, traffic, flood zones, viewpoints) in its real format with a
local DCAT-AP catalog and the ground truth; ``python -m citymodel.samplecity OUT_DIR`` runs it.
The terrain and river are closed-form functions (:func:`terrain_height`, :func:`water_level`, ...),
the truth any DTM can be compared with.
"""

from .generator import DATASETS, DEFAULT_SEED, GENERATOR_VERSION, LIDAR_AREA, SampleCity, generate
from .layout import EXTENT
from .terrain import (RIVER_HALF_WIDTH_M, RIVER_NAME, in_water, river_axis_x, river_offset,
                      river_parameters, terrain_height, water_level)

__all__ = ["generate", "SampleCity", "DATASETS", "DEFAULT_SEED", "GENERATOR_VERSION", "EXTENT", "LIDAR_AREA",
           "terrain_height", "water_level", "river_axis_x", "river_offset", "in_water", "river_parameters",
           "RIVER_NAME", "RIVER_HALF_WIDTH_M"]
