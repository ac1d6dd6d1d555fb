"""Schedules (UTC): partitions first, then yesterday's aggregates, the lookback, retention.

Spaced out so each normally finishes before the next starts; retention still verifies
aggregates itself rather than trusting the order.
"""

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import dagster as dg

from platform_defs.jobs import daily_aggregates_job, partition_maintenance_job, retention_job
from sdk.settings import get_settings

RUNNING = dg.DefaultScheduleStatus.RUNNING

partition_maintenance_schedule = dg.ScheduleDefinition(
    name="partition_maintenance_daily",
    job=partition_maintenance_job,
    cron_schedule="10 0 * * *",
    execution_timezone="UTC",
    default_status=RUNNING,
)

# The last complete daily partition, i.e. yesterday.
daily_aggregates_schedule = dg.build_schedule_from_partitioned_job(
    daily_aggregates_job,
    name="daily_aggregates_yesterday",
    hour_of_day=0,
    minute_of_hour=30,
    default_status=RUNNING,
)


def lookback_days(scheduled: datetime, lookback: int) -> list[date]:
    """The ``lookback`` days before yesterday (yesterday itself has its own schedule)."""
    yesterday = scheduled.astimezone(UTC).date() - timedelta(days=1)
    return [yesterday - timedelta(days=i) for i in range(lookback, 0, -1)]


@dg.schedule(
    name="daily_aggregates_lookback",
    job=daily_aggregates_job,
    cron_schedule="0 2 * * *",
    execution_timezone="UTC",
    default_status=RUNNING,
    description="Re-aggregate the AGGREGATE_LOOKBACK_DAYS days before yesterday: late events.",
)
def daily_aggregates_lookback(context: dg.ScheduleEvaluationContext) -> Iterator[dg.RunRequest]:
    scheduled = context.scheduled_execution_time or datetime.now(UTC)
    for day in lookback_days(scheduled, get_settings().aggregate_lookback_days):
        key = day.isoformat()
        yield dg.RunRequest(run_key=f"lookback-{scheduled.date()}-{key}", partition_key=key)


retention_schedule = dg.ScheduleDefinition(
    name="event_retention_daily",
    job=retention_job,
    cron_schedule="0 4 * * *",
    execution_timezone="UTC",
    default_status=RUNNING,
)

schedules = [
    partition_maintenance_schedule,
    daily_aggregates_schedule,
    daily_aggregates_lookback,
    retention_schedule,
]
