"""The code location: ``dagster … -m platform_defs.definitions`` or ``workspace.yaml``.

Loading it opens no connection and reads one setting, ``AGGREGATE_START_DATE`` (the
daily partitions need their first day when they are defined); resources resolve the
database and everything else from :mod:`sdk.settings` when a run starts.
"""

from __future__ import annotations

import dagster as dg

from platform_defs.assets.aggregates import daily_event_aggregates
from platform_defs.assets.knowledge_base import kb_ingestion, kb_ingestion_job, kb_ingestion_sensor
from platform_defs.assets.partitions import event_partitions
from platform_defs.assets.prices import model_prices
from platform_defs.assets.repricing import (
    usage_repricing,
    usage_repricing_after_prices,
    usage_repricing_daily,
    usage_repricing_job,
)
from platform_defs.assets.retention import event_retention
from platform_defs.checks import (
    aggregates_reconcile,
    next_month_partition_exists,
    no_rows_outside_partition_range,
)
from platform_defs.clock import ClockResource
from platform_defs.jobs import (
    daily_aggregates_job,
    model_prices_job,
    partition_maintenance_job,
    retention_job,
)
from platform_defs.resources import ArtifactStoreResource, KnowledgeBaseResource, PostgresResource
from platform_defs.schedules import schedules
from platform_defs.sensors import log_run_failures

defs = dg.Definitions(
    assets=[
        event_partitions,
        model_prices,
        daily_event_aggregates,
        event_retention,
        kb_ingestion,
        usage_repricing,
    ],
    asset_checks=[
        next_month_partition_exists,
        no_rows_outside_partition_range,
        aggregates_reconcile,
    ],
    jobs=[
        partition_maintenance_job,
        model_prices_job,
        daily_aggregates_job,
        retention_job,
        kb_ingestion_job,
        usage_repricing_job,
    ],
    schedules=[*schedules, usage_repricing_daily],
    sensors=[log_run_failures, kb_ingestion_sensor, usage_repricing_after_prices],
    resources={
        "postgres": PostgresResource(),
        "clock": ClockResource(),
        "artifacts": ArtifactStoreResource(),
        "kb": KnowledgeBaseResource(),
    },
)
