"""Monthly partitions of ``telemetry.workflow_events``.

Partitions are named ``workflow_events_pYYYY_MM`` and cover one UTC calendar month of
``event_time``. There is deliberately no DEFAULT partition: it would block
``DETACH … CONCURRENTLY`` and turn maintenance into data moves. A new month is made as a
plain table with a matching CHECK and then attached: with the CHECK in place Postgres
skips the validation scan, and ATTACH takes only SHARE UPDATE EXCLUSIVE on the parent,
so ingestion keeps writing while partitions are added.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa

from sdk.backoff import backoff_delay
from sdk.db.errors import DbFailure, classify
from sdk.db.locks import PARTITION_LOCK_KEY
from sdk.db.schema import TELEMETRY_SCHEMA, workflow_events

PARENT = f"{TELEMETRY_SCHEMA}.{workflow_events.name}"
# A partition's table name: the parent's name, "_p", the year and the month. The one
# spelling of it, written in the regular-expression syntax Python's ``re`` and Postgres's
# ``~`` share (anchors, ``[0-9]``, ``{n}``, groups), so catalog queries and
# :func:`month_of_table` can never disagree about which tables are partitions.
PARTITION_PREFIX = f"{workflow_events.name}_p"
PARTITION_NAME_PATTERN = f"^{PARTITION_PREFIX}([0-9]{{4}})_([0-9]{{2}})$"
_NAME_RE = re.compile(PARTITION_NAME_PATTERN)


@dataclass(frozen=True, order=True)
class Month:
    """A UTC calendar month."""

    year: int
    month: int

    @classmethod
    def of(cls, moment: datetime | date) -> Month:
        if isinstance(moment, datetime):
            if moment.tzinfo is None:
                raise ValueError("a naive datetime has no month in UTC; pass an aware datetime")
            moment = moment.astimezone(UTC)
        return cls(moment.year, moment.month)

    @classmethod
    def current(cls) -> Month:
        return cls.of(datetime.now(UTC))

    def plus(self, months: int) -> Month:
        index = self.year * 12 + (self.month - 1) + months
        return Month(index // 12, index % 12 + 1)

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        return self.plus(1).start

    @property
    def table_name(self) -> str:
        return f"{PARTITION_PREFIX}{self.year:04d}_{self.month:02d}"

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def month_of_table(name: str) -> Month | None:
    """Parse a partition's table name back into its month (None if not a partition name)."""
    match = _NAME_RE.fullmatch(name)  # fullmatch: Python's $ also matches before a final \n
    return Month(int(match[1]), int(match[2])) if match else None


def months_from(first: Month, count: int) -> list[Month]:
    return [first.plus(i) for i in range(count)]


# Table names of the attached partitions; parse them with month_of_table().
PARTITION_NAMES_SQL = (
    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
    f"WHERE i.inhparent = '{PARENT}'::regclass"
)


# Every partition table, attached or not: (relname, attached, detach_pending). A table
# that exists but is detached (or detaching) is in transition: retention is deciding
# whether to drop it or to attach it again.
PARTITION_TABLES_SQL = f"""
SELECT c.relname, i.inhrelid IS NOT NULL AS attached, coalesce(i.inhdetachpending, false)
FROM pg_class c
LEFT JOIN pg_inherits i ON i.inhrelid = c.oid AND i.inhparent = '{PARENT}'::regclass
WHERE c.relnamespace = '{TELEMETRY_SCHEMA}'::regnamespace AND c.relkind = 'r'
  AND c.relname ~ '{PARTITION_NAME_PATTERN}'
"""


@dataclass(frozen=True)
class PartitionTable:
    """A row of :data:`PARTITION_TABLES_SQL`: a partition table and whether it is live."""

    name: str
    month: Month
    attached: bool
    detach_pending: bool

    @property
    def live(self) -> bool:
        """Attached and not being detached: it takes the month's rows."""
        return self.attached and not self.detach_pending


def partition_tables(rows: Iterable[Sequence[Any]]) -> list[PartitionTable]:
    """The rows of :data:`PARTITION_TABLES_SQL`, oldest month first (other names skipped)."""
    found = [
        PartitionTable(name, month, bool(attached), bool(pending))
        for name, attached, pending in rows
        if (month := month_of_table(name)) is not None
    ]
    return sorted(found, key=lambda t: t.month)


def months_of_tables(names: Iterable[str]) -> list[Month]:
    """The months of the given partition table names, oldest first (others ignored)."""
    return sorted(m for m in (month_of_table(n) for n in names) if m is not None)


def list_partitions(conn: sa.Connection) -> list[Month]:
    """Months that currently have an attached partition, oldest first."""
    return months_of_tables(conn.exec_driver_sql(PARTITION_NAMES_SQL).scalars())


def create_missing_partitions(
    conn: sa.Connection, months: Iterable[Month], *, lock_timeout_ms: int | None = None
) -> list[Month]:
    """Create and attach, inside the caller's transaction, the partitions ``months`` lack.

    Used by the migration, whose transaction Alembic owns. Returns the months created.
    """
    if lock_timeout_ms is not None:
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{int(lock_timeout_ms)}ms'")
    # Serialise concurrent maintainers (Dagster, a migration) so neither trips over a
    # table the other has just created.
    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PARTITION_LOCK_KEY})")
    present = set(list_partitions(conn))
    missing = sorted(set(months) - present)
    for month in missing:
        _create_month(conn, month)
    return missing


def ensure_partitions(
    engine: sa.Engine,
    months: Iterable[Month],
    *,
    lock_timeout_ms: int = 2000,
    attempts: int = 5,
) -> list[Month]:
    """Create any missing partitions for ``months``, one short transaction per month.

    Idempotent. Each month gets a short ``lock_timeout`` and is retried with backoff
    on any failure :func:`sdk.db.errors.classify` calls retryable (that lock timeout, a
    statement timeout, a deadlock), so a long-running transaction on the parent delays
    maintenance instead of queueing ingestion behind the lock request. Returns the
    months created.
    """
    created: list[Month] = []
    for month in sorted(set(months)):
        for attempt in range(1, attempts + 1):
            try:
                with engine.begin() as conn:
                    made = create_missing_partitions(conn, [month], lock_timeout_ms=lock_timeout_ms)
                created += made  # only once committed: a failed attempt creates nothing
                break
            except sa.exc.DBAPIError as exc:
                # lock_timeout (or a statement timeout, a deadlock): another transaction
                # held the parent; anything else will not get better by waiting.
                if attempt == attempts or classify(exc) is not DbFailure.RETRYABLE:
                    raise
                time.sleep(backoff_delay(attempt, base_s=0.1, cap_s=5.0))
    return created


def _create_month(conn: sa.Connection, month: Month) -> None:
    table = f"{TELEMETRY_SCHEMA}.{month.table_name}"
    lo, hi = month.start.isoformat(), month.end.isoformat()
    conn.exec_driver_sql(
        f"CREATE TABLE {table} (LIKE {PARENT} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
    )
    conn.exec_driver_sql(
        f"ALTER TABLE {table} ADD CONSTRAINT {month.table_name}_range "
        f"CHECK (event_time >= '{lo}' AND event_time < '{hi}')"
    )
    conn.exec_driver_sql(
        f"ALTER TABLE {PARENT} ATTACH PARTITION {table} FOR VALUES FROM ('{lo}') TO ('{hi}')"
    )
    # The CHECK only let ATTACH skip its validation scan; the bound now does its job.
    conn.exec_driver_sql(f"ALTER TABLE {table} DROP CONSTRAINT {month.table_name}_range")
    # Row triggers are cloned from the parent, statement (TRUNCATE) triggers are not.
    conn.exec_driver_sql(
        f"CREATE TRIGGER {month.table_name}_no_truncate BEFORE TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION telemetry.reject_event_change()"
    )


def describe_window(months: Sequence[Month]) -> str:
    """Human description of the live partitions, for errors that tell a client what is live."""
    if not months:
        return "no event partitions exist (run the migrations / partition maintenance)"
    text = f"{months[0].start.isoformat()} to {months[-1].end.isoformat()} (UTC)"
    if months[-1] != months[0].plus(len(months) - 1):
        present = set(months)
        span = (months[-1].year - months[0].year) * 12 + months[-1].month - months[0].month + 1
        gaps = [m for m in months_from(months[0], span) if m not in present]
        text += f", except {', '.join(str(g) for g in gaps)}"
    return text
