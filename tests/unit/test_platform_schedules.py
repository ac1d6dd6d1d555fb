"""Schedules, the retention window and the clock, without a database."""

from __future__ import annotations

from datetime import UTC, date, datetime

import dagster as dg
import pytest

from platform_defs.clock import ClockResource
from platform_defs.schedules import daily_aggregates_lookback
from platform_defs.window import is_expired, wanted_months
from sdk.db.partitions import Month
from sdk.settings import WdpSettings, reset_settings_cache


def test_lookback_requests_the_days_before_yesterday(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGGREGATE_LOOKBACK_DAYS", "3")
    reset_settings_cache()
    try:
        context = dg.build_schedule_context(
            scheduled_execution_time=datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
        )
        requests = list(daily_aggregates_lookback(context))  # type: ignore[arg-type]
    finally:
        reset_settings_cache()
    assert [r.partition_key for r in requests] == ["2026-02-26", "2026-02-27", "2026-02-28"]
    assert len({r.run_key for r in requests}) == 3


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
