"""Schedules, the retention window and the clock, without a database."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import pytest

from platform_defs.clock import ClockResource
from platform_defs.schedules import daily_aggregates_lookback
from platform_defs.window import is_expired, wanted_months
from sdk.db.partitions import Month
from sdk.settings import reset_settings_cache


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
