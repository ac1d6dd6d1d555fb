"""Month arithmetic for partition names is UTC and wraps years correctly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from sdk.db.partitions import Month, month_of_table, months_from


def test_month_is_taken_in_utc_whatever_the_offset() -> None:
    # 23:30 on Jan 31 at UTC-5 is already February in UTC.
    moment = datetime(2026, 1, 31, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert Month.of(moment) == Month(2026, 2)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        Month.of(datetime(2026, 1, 1))


def test_plus_wraps_years_both_ways() -> None:
    assert Month(2026, 11).plus(3) == Month(2027, 2)
    assert Month(2026, 1).plus(-1) == Month(2025, 12)
    assert months_from(Month(2026, 12), 3) == [Month(2026, 12), Month(2027, 1), Month(2027, 2)]


def test_bounds_and_names_round_trip() -> None:
    month = Month(2026, 12)
    assert month.start == datetime(2026, 12, 1, tzinfo=UTC)
    assert month.end == datetime(2027, 1, 1, tzinfo=UTC)
    assert month.table_name == "workflow_events_p2026_12"
    assert month_of_table(month.table_name) == month
    assert month_of_table("workflow_events") is None
    assert month_of_table("workflow_events_p2026_1") is None
