"""Schedules (UTC): partitions first, then model prices, then the aggregates (today
hourly, yesterday, the lookback), retention last.

The aggregates' daily partitions run through today (``end_offset=1``), so Dagster's
``build_schedule_from_partitioned_job`` would request *today* at 00:30 (it asks for the
last partition). Each aggregate schedule therefore names its days itself, from the tick's
scheduled time, and the unit tests pin which partition keys each requests at a given
tick. Spaced out so each normally finishes before the next starts; retention still
verifies aggregates itself rather than trusting the order.
"""

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import dagster as dg

from platform_defs.jobs import (
    daily_aggregates_job,
    model_prices_job,
    partition_maintenance_job,
    retention_job,
)
from platform_defs.spend_checks import ASSET, BUDGET_CHECK, PRICES_CHECK
from sdk.settings import get_settings

RUNNING = dg.DefaultScheduleStatus.RUNNING

partition_maintenance_schedule = dg.ScheduleDefinition(
    name="partition_maintenance_daily",
    job=partition_maintenance_job,
    cron_schedule="10 0 * * *",
    execution_timezone="UTC",
    default_status=RUNNING,
)


def _tick(context: dg.ScheduleEvaluationContext) -> datetime:
    return (context.scheduled_execution_time or datetime.now(UTC)).astimezone(UTC)


# Today's hourly runs evaluate the day's own checks only: aggregates_reconcile compares
# the days up to yesterday over the whole retention window, which the daily runs cover.
TODAY_CHECKS = [dg.AssetCheckKey(dg.AssetKey(ASSET), name) for name in (BUDGET_CHECK, PRICES_CHECK)]


def today_of(scheduled: datetime) -> date:
    """The UTC day a tick falls in: the partition still in progress."""
    return scheduled.astimezone(UTC).date()


def yesterday_of(scheduled: datetime) -> date:
    """The last complete UTC day before a tick."""
    return today_of(scheduled) - timedelta(days=1)


def lookback_days(scheduled: datetime, lookback: int) -> list[date]:
    """The ``lookback`` days before yesterday (yesterday itself has its own schedule)."""
    yesterday = yesterday_of(scheduled)
    return [yesterday - timedelta(days=i) for i in range(lookback, 0, -1)]


@dg.schedule(
    name="daily_aggregates_today",
    job=daily_aggregates_job,
    cron_schedule="5 * * * *",
    execution_timezone="UTC",
    default_status=RUNNING,
    description=(
        "Every hour: re-aggregate today so far (the partition in progress), so today's "
        "figures and plots are at most an hour old. Spend checks only: the reconcile "
        "check covers the days up to yesterday and runs with their daily runs."
    ),
)
def daily_aggregates_today(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    scheduled = _tick(context)
    key = today_of(scheduled).isoformat()
    return dg.RunRequest(
        run_key=f"today-{scheduled:%Y-%m-%dT%H:%M}",
        partition_key=key,
        asset_selection=[dg.AssetKey(ASSET)],
        asset_check_keys=TODAY_CHECKS,
    )


@dg.schedule(
    name="daily_aggregates_yesterday",
    job=daily_aggregates_job,
    cron_schedule="30 0 * * *",
    execution_timezone="UTC",
    default_status=RUNNING,
    description="After midnight: aggregate yesterday, now complete.",
)
def daily_aggregates_yesterday(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    key = yesterday_of(_tick(context)).isoformat()
    return dg.RunRequest(run_key=f"yesterday-{key}", partition_key=key)


@dg.schedule(
    name="daily_aggregates_lookback",
    job=daily_aggregates_job,
    cron_schedule="0 2 * * *",
    execution_timezone="UTC",
    default_status=RUNNING,
    description="Re-aggregate the AGGREGATE_LOOKBACK_DAYS days before yesterday: late events.",
)
def daily_aggregates_lookback(context: dg.ScheduleEvaluationContext) -> Iterator[dg.RunRequest]:
    scheduled = _tick(context)
    for day in lookback_days(scheduled, get_settings().aggregate_lookback_days):
        key = day.isoformat()
        yield dg.RunRequest(run_key=f"lookback-{scheduled.date()}-{key}", partition_key=key)


# Before yesterday is aggregated (00:30): a day is first priced with the newest data.
model_prices_schedule = dg.ScheduleDefinition(
    name="model_prices_daily",
    job=model_prices_job,
    cron_schedule="20 0 * * *",
    execution_timezone="UTC",
    default_status=RUNNING,
    description=(
        "Sync model prices from the pinned genai-prices data: inserts only new or changed "
        "prices (nothing, until the pin changes)."
    ),
)

retention_schedule = dg.ScheduleDefinition(
    name="event_retention_daily",
    job=retention_job,
    cron_schedule="0 4 * * *",
    execution_timezone="UTC",
    default_status=RUNNING,
)

schedules = [
    partition_maintenance_schedule,
    model_prices_schedule,
    daily_aggregates_today,
    daily_aggregates_yesterday,
    daily_aggregates_lookback,
    retention_schedule,
]
