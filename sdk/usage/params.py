"""Checking the parameters of the run and usage queries: one set of rules for API and CLI.

Every parser takes what a caller has - a query-string value, a CLI option, or an already
typed value - and returns the typed value or collects a message for the field, so a
request with three bad parameters hears about all three. :class:`Problems` raises them
together as :class:`~sdk.usage.errors.InvalidQuery`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, get_args

from sdk.telemetry.events import RunStatus
from sdk.telemetry.values import printable
from sdk.usage.errors import InvalidQuery

MAX_TEXT = 200  # event ids and names are at most 200 characters (sdk.telemetry.events)
DEFAULT_PAGE, MAX_PAGE = 50, 500
MAX_CURSOR = 1000
MAX_USAGE_DAYS = 366
DEFAULT_USAGE_DAYS = 7
RUNNING = "running"
RUN_STATUSES: tuple[str, ...] = (RUNNING, *get_args(RunStatus))
GROUP_KEYS: tuple[str, ...] = ("day", "workflow_name", "agent_role", "model", "node")
DEFAULT_GROUP_BY: tuple[str, ...] = ("day",)
# The last day whose end (the next midnight) a datetime can still hold.
LAST_DAY = date.max - timedelta(days=1)

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}\Z", re.ASCII)
_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:[Zz]|[+-]\d{2}:\d{2})\Z", re.ASCII
)
_INT = re.compile(r"[0-9]{1,9}\Z", re.ASCII)
_CURSOR = re.compile(r"[A-Za-z0-9_-]+\Z", re.ASCII)


class Problems:
    """Messages per field, collected while parsing; :meth:`check` raises them all."""

    def __init__(self) -> None:
        self.errors: dict[str, str] = {}

    def add(self, name: str, message: str) -> None:
        self.errors.setdefault(name, message)

    def check(self) -> None:
        if self.errors:
            raise InvalidQuery(self.errors)


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def text(problems: Problems, name: str, value: str | None) -> str | None:
    """An id or name to filter on: 1-200 characters Postgres can hold, or unset."""
    if _blank(value):
        return None
    if not isinstance(value, str):
        problems.add(name, "must be a string")
        return None
    if len(value) > MAX_TEXT:
        problems.add(name, f"is longer than {MAX_TEXT} characters, so no event carries it")
        return None
    if "\x00" in value or printable(value) != value:
        problems.add(name, "contains a NUL character or a lone surrogate")
        return None
    return value


def integer(
    problems: Problems, name: str, value: int | str | None, *, default: int, lo: int, hi: int
) -> int:
    """A whole number in [lo, hi]; ``default`` when unset."""
    if _blank(value):
        return default
    if isinstance(value, bool) or not isinstance(value, int | str):
        problems.add(name, "must be a whole number")
        return default
    if isinstance(value, str):
        if not _INT.match(value.strip()):
            problems.add(name, f"must be a whole number from {lo} to {hi}")
            return default
        value = int(value.strip())
    if not lo <= value <= hi:
        problems.add(name, f"must be from {lo} to {hi} (got {value})")
        return default
    return value


def instant(problems: Problems, name: str, value: datetime | date | str | None) -> datetime | None:
    """A point in time, in UTC: an RFC 3339 date-time with an offset, or a day
    (YYYY-MM-DD, meaning its midnight UTC)."""
    if _blank(value):
        return None
    message = "must be an RFC 3339 date-time with a time zone (2026-03-01T12:00:00Z) or a day"
    try:
        if isinstance(value, datetime):
            if value.tzinfo is None:
                problems.add(name, message)
                return None
            return value.astimezone(UTC)
        if isinstance(value, date):
            return datetime.combine(value, time(), UTC)
        if not isinstance(value, str):
            problems.add(name, message)
            return None
        raw = value.strip()
        if _DAY.match(raw):
            return datetime.combine(date.fromisoformat(raw), time(), UTC)
        if _DATETIME.match(raw):
            return datetime.fromisoformat(raw.upper()).astimezone(UTC)
    except (ValueError, OverflowError):
        problems.add(name, f"{message}, within the years 1 to 9999")
        return None
    problems.add(name, message)
    return None


def day(problems: Problems, name: str, value: date | str | None) -> date | None:
    """A UTC day, YYYY-MM-DD."""
    if _blank(value):
        return None
    message = f"must be a day, YYYY-MM-DD, from 0001-01-01 to {LAST_DAY.isoformat()}"
    parsed: date | None = None
    if isinstance(value, date) and not isinstance(value, datetime):  # a day, not an instant
        parsed = value
    elif isinstance(value, str) and _DAY.match(value.strip()):
        try:
            parsed = date.fromisoformat(value.strip())
        except ValueError:
            parsed = None
    if parsed is None or parsed > LAST_DAY:
        problems.add(name, message)
        return None
    return parsed


def choice(
    problems: Problems, name: str, value: str | None, allowed: tuple[str, ...]
) -> str | None:
    if _blank(value):
        return None
    if not isinstance(value, str) or value.strip() not in allowed:
        problems.add(name, f"must be one of {', '.join(allowed)}")
        return None
    return value.strip()


def group_by(
    problems: Problems, name: str, value: str | list[str] | tuple[str, ...] | None
) -> tuple[str, ...]:
    """Grouping keys, comma-separated, each at most once; empty: totals only."""
    if value is None:
        return DEFAULT_GROUP_BY
    if isinstance(value, str):
        parts = [p.strip() for p in value.split(",")] if value.strip() else []
    elif isinstance(value, list | tuple) and all(isinstance(p, str) for p in value):
        parts = [p.strip() for p in value]
    else:
        problems.add(name, "must be a comma-separated list")
        return DEFAULT_GROUP_BY
    unknown = [p for p in parts if p not in GROUP_KEYS]
    if unknown:
        shown = ", ".join(repr(printable(p)[:40]) for p in unknown[:5])
        problems.add(name, f"unknown grouping {shown}: use any of {', '.join(GROUP_KEYS)}")
        return DEFAULT_GROUP_BY
    if len(set(parts)) != len(parts):
        problems.add(name, "names a grouping more than once")
        return DEFAULT_GROUP_BY
    return tuple(parts)


# --- the runs cursor --------------------------------------------------------------------


@dataclass(frozen=True)
class Cursor:
    """Where a page of runs ended: its last run's start and id (runs are ordered by both)."""

    started_at: datetime
    run_id: str

    def encode(self) -> str:
        """Opaque to clients: URL-safe base64 of a small JSON array, without padding."""
        raw = json.dumps([self.started_at.isoformat(), self.run_id], separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def cursor(problems: Problems, name: str, value: str | None) -> Cursor | None:
    """A cursor this module encoded, or unset; anything else is refused."""
    if _blank(value):
        return None
    message = "is not a cursor returned by this API (pass next_cursor unchanged)"
    if not isinstance(value, str) or len(value) > MAX_CURSOR or not _CURSOR.match(value):
        problems.add(name, message)
        return None
    try:
        decoded: Any = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except (binascii.Error, ValueError):
        problems.add(name, message)
        return None
    if (
        not isinstance(decoded, list)
        or len(decoded) != 2
        or not all(isinstance(part, str) for part in decoded)
    ):
        problems.add(name, message)
        return None
    inner = Problems()
    started_at = instant(inner, name, decoded[0])
    run_id = text(inner, name, decoded[1])
    if inner.errors or started_at is None or run_id is None:
        problems.add(name, message)
        return None
    return Cursor(started_at, run_id)
