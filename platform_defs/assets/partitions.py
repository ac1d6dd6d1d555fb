"""Asset ``event_partitions``: keep the monthly window of raw-event partitions rolling."""

import dagster as dg

from platform_defs.clock import ClockResource
from platform_defs.resources import PostgresResource
from platform_defs.window import wanted_months
from sdk.db.partitions import ensure_partitions, list_partitions
from sdk.settings import get_settings

GROUP = "telemetry"


@dg.asset(
    group_name=GROUP,
    description=(
        "Monthly partitions of telemetry.workflow_events from the oldest month within "
        "EVENT_RETENTION_DAYS through EVENT_PARTITIONS_AHEAD months ahead (UTC). Idempotent; "
        "each month is attached with a short lock_timeout and retried, so ingestion never "
        "queues behind it."
    ),
    kinds={"postgres"},
)
def event_partitions(
    context: dg.AssetExecutionContext, postgres: PostgresResource, clock: ClockResource
) -> dg.MaterializeResult[None]:
    settings = get_settings()
    now = clock.now()
    months = wanted_months(now, settings.event_retention_days, settings.event_partitions_ahead)
    with postgres.engine() as engine:
        created = ensure_partitions(engine, months)
        with engine.connect() as conn:
            present = list_partitions(conn)
    context.log.info(
        f"now={now.isoformat()}: wanted {months[0]}..{months[-1]}, "
        f"created {[str(m) for m in created] or 'none'}"
    )
    return dg.MaterializeResult(
        metadata={
            "created": dg.MetadataValue.json([str(m) for m in created]),
            "created_count": len(created),
            "present": dg.MetadataValue.json([str(m) for m in present]),
            "present_count": len(present),
            "now": now.isoformat(),
        }
    )
