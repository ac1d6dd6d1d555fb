"""Schedules, the retention window and the clock, without a database."""

from __future__ import annotations

from datetime import UTC, date, datetime

import dagster as dg
import pytest

from platform_defs.assets.aggregates import daily_partitions
from platform_defs.clock import ClockResource
from platform_defs.schedules import (
    daily_aggregates_lookback,
    daily_aggregates_today,
    daily_aggregates_yesterday,
    schedules,
)
from platform_defs.window import is_expired, wanted_months
from sdk.db.partitions import Month
from sdk.settings import WdpSettings, reset_settings_cache


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def requested(schedule: dg.ScheduleDefinition, tick: datetime) -> list[dg.RunRequest]:
    """What ``schedule`` asks for at ``tick``, through Dagster's own tick evaluation."""
    from platform_defs.definitions import defs

    # With the repository, Dagster also checks that each requested key is a partition of
    # the job at the tick's time (today's only exists thanks to end_offset=1).
    context = dg.build_schedule_context(
        scheduled_execution_time=tick, repository_def=defs.get_repository_def()
    )
    return list(schedule.evaluate_tick(context).run_requests or [])


def keys(schedule: dg.ScheduleDefinition, tick: datetime) -> list[str | None]:
    return [r.partition_key for r in requested(schedule, tick)]


def valid_at(tick: datetime) -> set[str]:
    return set(daily_partitions.get_partition_keys(current_time=tick))


def test_today_is_a_partition_while_it_is_in_progress() -> None:
    tick = at("2026-03-02T13:05:00")
    # end_offset=1: the last partition is the day in progress, not yesterday.
    assert daily_partitions.get_partition_keys(current_time=tick)[-1] == "2026-03-02"
    assert "2026-03-03" not in valid_at(tick)


@pytest.mark.parametrize(
    ("tick", "day"),
    [
        ("2026-03-02T00:05:00", "2026-03-02"),  # the first refresh of a new day
        ("2026-03-02T13:05:00", "2026-03-02"),
        ("2026-03-02T23:05:00", "2026-03-02"),
        ("2028-02-29T06:05:00", "2028-02-29"),
    ],
)
def test_the_hourly_schedule_refreshes_today(tick: str, day: str) -> None:
    assert daily_aggregates_today.cron_schedule == "5 * * * *"
    assert keys(daily_aggregates_today, at(tick)) == [day]
    assert day in valid_at(at(tick))


def test_the_hourly_refresh_runs_the_days_checks_but_not_the_reconcile() -> None:
    (today,) = requested(daily_aggregates_today, at("2026-03-02T13:05:00"))
    assert {k.name for k in today.asset_check_keys or []} == {
        "spend_within_budget",
        "models_have_prices",
    }
    (yesterday,) = requested(daily_aggregates_yesterday, at("2026-03-02T00:30:00"))
    assert yesterday.asset_check_keys is None  # the job's checks, reconcile included


def test_each_hourly_refresh_is_its_own_run() -> None:
    ticks = [at(f"2026-03-02T{hour:02d}:05:00") for hour in range(24)]
    run_keys = {r.run_key for t in ticks for r in requested(daily_aggregates_today, t)}
    assert len(run_keys) == 24


@pytest.mark.parametrize(
    ("tick", "day"),
    [
        ("2026-03-02T00:30:00", "2026-03-01"),
        ("2026-03-01T00:30:00", "2026-02-28"),  # across a month
        ("2028-03-01T00:30:00", "2028-02-29"),  # a leap day
        ("2027-01-01T00:30:00", "2026-12-31"),  # across a year
    ],
)
def test_the_yesterday_schedule_requests_yesterday_not_today(tick: str, day: str) -> None:
    assert daily_aggregates_yesterday.cron_schedule == "30 0 * * *"
    (request,) = requested(daily_aggregates_yesterday, at(tick))
    assert request.partition_key == day
    assert request.run_key == f"yesterday-{day}"
    # What build_schedule_from_partitioned_job would have asked for (the last partition)
    # is today, which this schedule must not request.
    assert daily_partitions.get_partition_keys(current_time=at(tick))[-1] != day
    assert day in valid_at(at(tick))


def test_lookback_requests_the_days_before_yesterday(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGGREGATE_LOOKBACK_DAYS", "3")
    reset_settings_cache()
    tick = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
    try:
        requests = requested(daily_aggregates_lookback, tick)
        monkeypatch.setenv("AGGREGATE_LOOKBACK_DAYS", "0")
        reset_settings_cache()
        none = requested(daily_aggregates_lookback, tick)
    finally:
        reset_settings_cache()
    assert [r.partition_key for r in requests] == ["2026-02-26", "2026-02-27", "2026-02-28"]
    assert len({r.run_key for r in requests}) == 3
    assert {r.partition_key for r in requests} <= valid_at(tick)
    assert none == []


def test_every_aggregate_day_is_requested_by_exactly_one_schedule_each_night(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One night (UTC): yesterday once, the lookback days once each, today hourly."""
    monkeypatch.setenv("AGGREGATE_LOOKBACK_DAYS", "2")
    reset_settings_cache()
    try:
        night = {
            "daily_aggregates_yesterday": keys(daily_aggregates_yesterday, at("2026-03-05T00:30")),
            "daily_aggregates_lookback": keys(daily_aggregates_lookback, at("2026-03-05T02:00")),
            "daily_aggregates_today": keys(daily_aggregates_today, at("2026-03-05T02:05")),
        }
    finally:
        reset_settings_cache()
    assert night == {
        "daily_aggregates_yesterday": ["2026-03-04"],
        "daily_aggregates_lookback": ["2026-03-02", "2026-03-03"],
        "daily_aggregates_today": ["2026-03-05"],
    }
    assert {s.name for s in schedules} >= set(night)


def test_wanted_months_span_retention_and_lookahead() -> None:
    now = datetime(2026, 6, 15, 12, tzinfo=UTC)
    assert wanted_months(now, 90, 3) == [Month(2026, m) for m in range(3, 10)]


def test_a_month_expires_only_once_it_ended_more_than_retention_ago() -> None:
    march = Month(2026, 3)  # ends 2026-04-01; + 90 days = 2026-06-30
    assert not is_expired(march, datetime(2026, 6, 30, tzinfo=UTC), 90)
    assert is_expired(march, datetime(2026, 6, 30, 0, 0, 1, tzinfo=UTC), 90)


def test_clock_is_fixed_or_wall_and_refuses_naive_times() -> None:
    fixed = ClockResource(fixed_now="2026-06-15T12:00:00Z").now()
    assert fixed == datetime(2026, 6, 15, 12, tzinfo=UTC)
    assert ClockResource().now().tzinfo is not None
    with pytest.raises(ValueError, match="UTC offset"):
        ClockResource(fixed_now="2026-06-15T12:00:00").now()


def test_the_daily_partitions_start_at_aggregate_start_date(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from platform_defs.assets.aggregates import (
        AGGREGATES_START,
        daily_event_aggregates,
        daily_partitions,
        daily_partitions_definition,
    )

    explicit = daily_partitions_definition(WdpSettings(aggregate_start_date=date(2025, 6, 1)))
    assert explicit.get_first_partition_key() == "2025-06-01"
    monkeypatch.setenv("AGGREGATE_START_DATE", "2025-07-15")
    assert daily_partitions_definition().get_first_partition_key() == "2025-07-15"
    # The loaded asset, and retention's idea of the first day, follow the same definition.
    assert daily_event_aggregates.partitions_def == daily_partitions
    assert daily_partitions.get_first_partition_key() == AGGREGATES_START.isoformat()


def test_model_prices_are_synced_daily_before_yesterday_is_aggregated() -> None:
    from platform_defs.schedules import model_prices_schedule

    assert model_prices_schedule.name == "model_prices_daily"
    assert model_prices_schedule.job_name == "model_prices_job"
    assert model_prices_schedule.execution_timezone == "UTC"
    assert model_prices_schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    (request,) = requested(model_prices_schedule, at("2026-03-02T00:20:00"))
    assert request.partition_key is None  # the whole table, not a day
    # Daily crons "M H * * *": prices run earlier in the same hour-of-day order.
    minute, hour, *every_day = model_prices_schedule.cron_schedule.split()
    assert every_day == ["*", "*", "*"]
    y_minute, y_hour, *_ = str(daily_aggregates_yesterday.cron_schedule).split()
    assert (int(hour), int(minute)) < (int(y_hour), int(y_minute))
    assert model_prices_schedule in schedules
