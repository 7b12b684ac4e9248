"""What the analysis layers compute on, read through the city's store.

The city's data for an area comes from :class:`citymodel.store.CityStore` (the one place that knows
where staged and reconstructed data live); the layers are the pure functions of
:mod:`citymodel.analysis.layers` with the parameters of :mod:`citymodel.analysis.parameters`. The
variant assets read a variant's store the same way. Nothing here writes.
"""

from citymodel.analysis.parameters import day_sun_path, sun_path
from citymodel.citydata import BuildingSet, normalised_function_code
from citymodel.config import Settings
from citymodel.store import CityStore, analysis_bounds

__all__ = ["CityStore", "analysis_bounds", "day_sun_path", "sun_path", "normalised_function_code",
           "screening_buildings", "tile_building_ids", "counts"]


def tile_building_ids(store: CityStore, tile_id: str) -> list[str]:
    """The reconstructed buildings of a tile (those whose representative point lies in it)."""
    return store.buildings().in_tiles([tile_id]).ids


def screening_buildings(settings: Settings, table=None):
    """The reconstructed buildings (default: all) as 2.5D noise-screening blocks
    (:meth:`citymodel.citydata.BuildingSet.screening_blocks` with ``analysis.noise.building_height``)."""
    t = CityStore(settings).building_table() if table is None else table
    return BuildingSet(t).screening_blocks(settings.analysis.noise.building_height)


def counts(area, assessed: list[str]) -> dict[str, int]:
    """Metadata: buildings assessed, buildings and trees in the scene of an area."""
    return {"buildings_assessed": len(assessed), "buildings_in_scene": len(area.buildings),
            "trees_in_scene": 0 if area.trees is None else len(area.trees)}
