"""Which raw-event months are live, from "now" and the retention settings (pure functions)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sdk.db.partitions import Month


def oldest_retained_month(now: datetime, retention_days: int) -> Month:
    """The oldest month that retention must keep: the one containing ``now - retention``.

    A month is dropped only once its *end* is more than ``retention_days`` ago, so the
    month containing that instant still has at least one retained day.
    """
    return Month.of(now - timedelta(days=retention_days))


def is_expired(month: Month, now: datetime, retention_days: int) -> bool:
    """True when the whole month ended more than ``retention_days`` before ``now``."""
    return month.end + timedelta(days=retention_days) < now


def wanted_months(now: datetime, retention_days: int, ahead: int) -> list[Month]:
    """Every month that should have a partition: oldest retained through ``ahead`` months on."""
    first = oldest_retained_month(now, retention_days)
    last = Month.of(now).plus(ahead)
    months = []
    month = first
    while month <= last:
        months.append(month)
        month = month.plus(1)
    return months
