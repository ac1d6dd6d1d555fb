"""Asset jobs: what schedules launch and operators run by hand from the UI."""

from __future__ import annotations

import dagster as dg

from platform_defs.assets.aggregates import daily_event_aggregates
from platform_defs.assets.partitions import event_partitions
from platform_defs.assets.prices import model_prices
from platform_defs.assets.retention import event_retention

partition_maintenance_job = dg.define_asset_job(
    "partition_maintenance_job",
    selection=dg.AssetSelection.assets(event_partitions),
    description="Create the monthly event partitions the retention window and look-ahead need.",
)

daily_aggregates_job = dg.define_asset_job(
    "daily_aggregates_job",
    selection=dg.AssetSelection.assets(daily_event_aggregates),
    description="Aggregate one UTC day (backfill a date range from the asset's page).",
)

retention_job = dg.define_asset_job(
    "event_retention_job",
    selection=dg.AssetSelection.assets(event_retention),
    description="Drop raw-event months past EVENT_RETENTION_DAYS once they are aggregated.",
)

model_prices_job = dg.define_asset_job(
    "model_prices_job",
    selection=dg.AssetSelection.assets(model_prices),
    description="Sync telemetry.model_prices from the pinned genai-prices data (new, changed).",
)
