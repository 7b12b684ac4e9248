"""Asset keys, group, code version and tags of the ``analysis`` stage (shared by its assets)."""

import dagster as dg


ANALYSIS_CODE_VERSION = "1"
#: the solar layer's own version: 2 = the real climate (weather data or monthly means), issue #14
SOLAR_CODE_VERSION = "2"
#: the noise layers' own version (noise, traffic change): 2 = first-order reflections at facades, issue #14
NOISE_CODE_VERSION = "2"
GROUP = "analysis"

SUN_HOURS_KEY = dg.AssetKey(["analysis", "sun_hours"])
SOLAR_KEY = dg.AssetKey(["analysis", "solar"])
SIGHTLINES_KEY = dg.AssetKey(["analysis", "sightlines"])
NOISE_KEY = dg.AssetKey(["analysis", "noise"])
FLOOD_KEY = dg.AssetKey(["analysis", "flood"])
TRAFFIC_CHANGE_KEY = dg.AssetKey(["analysis", "traffic_change"])
BUILDING_VALUES_KEY = dg.AssetKey(["analysis", "building_values"])

#: tag of the tile assets that read the neighbour tiles' buildings (shading, screening): a refresh must
#: build every tile's buildings before it runs them, and a tile's new buildings make its neighbours stale
NEIGHBOUR_TAG = {"citymodel/reads_neighbour_tiles": "true"}
STAGED_KEYS = {role: dg.AssetKey(["staging", role]) for role in ("trees", "roads", "flood_zones", "viewpoints")}
