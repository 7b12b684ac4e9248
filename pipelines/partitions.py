"""Partitions: the 1 km tiles of the configured extent.

The tiles are a dynamic partition set: the configuration (read at run time) defines them, and
the refresh (schedule, `citymodel run`) and the `tile_registry` sensor register the configured
tiles with the instance. Nothing is derived from data or a database at load time.
"""

from __future__ import annotations

import dagster as dg

from citymodel.config import Settings

TILES = dg.DynamicPartitionsDefinition(name="tiles")
#: accepted planning variant versions, ``<id>.v<version>`` (registered when a submission is accepted)
VARIANTS = dg.DynamicPartitionsDefinition(name="variants")


def sync_tiles(instance: dg.DagsterInstance, settings: Settings) -> list[str]:
    """Register the configured tiles; returns the ones that were new."""
    known = set(instance.get_dynamic_partitions(TILES.name))
    new = [t for t in settings.tile_ids if t not in known]
    if new:
        instance.add_dynamic_partitions(TILES.name, new)
    return new


def sync_variants(instance: dg.DagsterInstance, keys: list[str]) -> list[str]:
    """Register variant versions as partitions; returns the ones that were new."""
    known = set(instance.get_dynamic_partitions(VARIANTS.name))
    new = [k for k in keys if k not in known]
    if new:
        instance.add_dynamic_partitions(VARIANTS.name, new)
    return new
