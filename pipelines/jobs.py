"""Jobs: ``city_refresh`` covers the city's asset graph (runs select assets and a tile);
``variant_assess`` assesses one planning variant version (the ``variants`` group, one partition)."""

from __future__ import annotations

import dagster as dg

from .partitions import VARIANTS
from .refresh import CITY_INTAKE_TAG

VARIANT_GROUP = "variants"
#: the intake of the catalog's variant files (variants/catalog_submissions): validated and stored with
#: the city's refresh, not assessed there
CITY_INTAKE = dg.AssetSelection.tag(CITY_INTAKE_TAG, "true")
#: the city's assets: everything but the planning variants (a variant never blocks the city)
CITY_SELECTION = (dg.AssetSelection.all() - dg.AssetSelection.groups(VARIANT_GROUP)) | CITY_INTAKE

city_refresh_job = dg.define_asset_job(
    "city_refresh",
    selection=CITY_SELECTION,
    description="Refresh the city: the assets (and tiles) whose sources or code changed.",
)

variant_assess_job = dg.define_asset_job(
    "variant_assess",
    selection=dg.AssetSelection.groups(VARIANT_GROUP) - CITY_INTAKE,
    partitions_def=VARIANTS,
    description="Assess one planning variant version: model, analysis in its impact area, comparison, 3D Tiles, "
                "publication beside the city's releases.",
)
