"""Stage ``analysis``: sun hours, solar irradiation, sight lines, noise, flood and traffic change.

Thin assets over :mod:`citymodel.analysis`: each resolves its inputs through the city's store
(:class:`citymodel.store.CityStore`: buildings with solids and attributes, trees, terrain, roads, flood
zones, viewpoints for an area), calls the layer functions of :mod:`citymodel.analysis.layers` (the same
functions the planning variants are analysed with), writes its outputs atomically below ``<output_dir>/analysis/<layer>/`` and reports
counts, timings, method and parameters, a picture, and asset checks.

Tile-shaped layers are partitioned by tile and computed on ``tile ∩ extent``; buildings, trees and
terrain up to ``analysis.scene_margin_m`` beyond it take part in shading and screening (the
neighbour tiles' buildings are read from their CityJSONSeq). ``analysis/building_values`` gathers the
tiles into one row per building, the values the 3D Tiles and the open datasets carry.

Flood is per tile: its depth raster lives on the tile's DTM (a LiDAR update of one tile recomputes
only that tile), and the city-wide summary is the sum of the tiles' summaries (``building_values``
and the release add them up). Traffic change is per tile too: it is a noise computation on the same
receivers as ``analysis/noise`` and costs as much; only the changed roads are propagated twice.

Modules: :mod:`.keys` (asset keys, group, tags), :mod:`.files` (where each layer's files are),
:mod:`.inputs` (what the layers compute on), :mod:`.days` (day labels), one module per asset
(:mod:`.sun_hours`, :mod:`.solar`, :mod:`.sightlines`, :mod:`.noise`, :mod:`.flood`,
:mod:`.traffic_change`, :mod:`.building_values`) and :mod:`.release_layers` (the layers in a release).
This package re-exports what other code imports; note that the asset functions shadow the modules of
the same name as attributes of the package (import from the module, e.g.
``from assets.analysis.noise import noise``, to reach a module).
"""

from .building_values import (building_value_columns, building_value_properties, building_values,
                              building_values_by_id, gather_building_values)
from .days import date_label, day_label, month_day
from .files import analysis_dir, building_values_path, flood_raster_path, read_tiles, tile_files
from .flood import flood
from .inputs import analysis_bounds, normalised_function_code, screening_buildings
from .keys import (ANALYSIS_CODE_VERSION, BUILDING_VALUES_KEY, FLOOD_KEY, GROUP, NEIGHBOUR_TAG, NOISE_KEY,
                   SIGHTLINES_KEY, SOLAR_KEY, STAGED_KEYS, SUN_HOURS_KEY, TRAFFIC_CHANGE_KEY)
from .noise import noise
from .release_layers import add_analysis_to_release
from .sightlines import sightlines
from .solar import SOLAR_CLASS_ORDER, solar
from .sun_hours import sun_hours
from .traffic_change import traffic_change, traffic_edits

analysis_assets = [sun_hours, solar, sightlines, noise, flood, traffic_change, building_values]

__all__ = [
    "ANALYSIS_CODE_VERSION", "BUILDING_VALUES_KEY", "FLOOD_KEY", "GROUP", "NEIGHBOUR_TAG", "NOISE_KEY",
    "SIGHTLINES_KEY", "SOLAR_CLASS_ORDER", "SOLAR_KEY", "STAGED_KEYS", "SUN_HOURS_KEY", "TRAFFIC_CHANGE_KEY",
    "add_analysis_to_release", "analysis_assets", "analysis_bounds", "analysis_dir", "building_value_columns", "building_value_properties", "building_values",
    "building_values_by_id", "building_values_path", "date_label", "day_label", "flood",
    "flood_raster_path", "gather_building_values", "month_day", "noise",
    "normalised_function_code", "read_tiles", "screening_buildings", "sightlines", "solar", "sun_hours",
    "tile_files", "traffic_change", "traffic_edits",
]
