"""Jobs: ``city_refresh`` covers the whole asset graph; runs select assets and a tile."""

from __future__ import annotations

import dagster as dg

city_refresh_job = dg.define_asset_job(
    "city_refresh",
    selection=dg.AssetSelection.all(),
    description="Refresh the city: the assets (and tiles) whose sources or code changed.",
)
