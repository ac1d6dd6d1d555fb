"""Writing events to ``telemetry.workflow_events``: idempotent, one transaction per call.

The store speaks psycopg 3 directly (async pool, server-side ``unnest`` of arrays):
for the hot path this is several times cheaper than building SQLAlchemy statements.
Arrays go as binary parameters (``%b``): in text format psycopg quotes and escapes
every JSON payload, which profiled at ~40% of the API's CPU on the batch path; and they
are encoded by :mod:`ingest_api.arrays` rather than psycopg's generic list dumper.
It never issues UPDATE or DELETE: an id already stored is compared, not overwritten.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import psycopg
import sqlalchemy as sa
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.dialects.postgresql import JSONB

from ingest_api.arrays import Int4Array, TextArray, TimestamptzArray
from ingest_api.arrays import register as register_arrays
from ingest_api.errors import StoreUnavailable, database_error
from sdk.db.errors import no_partition_for_row
from sdk.db.partitions import PARTITION_TABLES_SQL, Month, partition_tables
from sdk.db.schema import TELEMETRY_SCHEMA, WORKFLOW_EVENT_COLUMNS, workflow_events
from sdk.telemetry.events import EventBase
from sdk.telemetry.values import ulid_datetime

log = logging.getLogger(__name__)

# On psycopg's global map, which every connection made afterwards starts from: the
# store works on whatever pool it is given. The types are ours, so nothing else changes.
register_arrays(psycopg.adapters)

TABLE = f"{TELEMETRY_SCHEMA}.{workflow_events.name}"
COLUMNS = WORKFLOW_EVENT_COLUMNS
_KEYS = tuple(c.name for c in workflow_events.primary_key.columns)
# What a resend of an id must match to be a duplicate: every written column but the key.
COMPARED = tuple(name for name in COLUMNS if name not in _KEYS)


ArrayKind = type[TextArray] | type[Int4Array] | type[TimestamptzArray]


def _array_kind(column: sa.Column[Any]) -> ArrayKind:
    """The parameter array type of ``column`` (JSON goes as text, cast in SQL)."""
    kind = column.type
    if isinstance(kind, sa.DateTime):
        return TimestamptzArray
    if isinstance(kind, sa.Integer):
        return Int4Array
    if isinstance(kind, sa.String | JSONB):
        return TextArray
    raise TypeError(f"no parameter type for {column.name} ({kind!r}): add it here")


def _value(alias: str, name: str) -> str:
    """``alias.name`` as the column's type: JSON arrives as text."""
    cast = "::jsonb" if isinstance(workflow_events.c[name].type, JSONB) else ""
    return f"{alias}.{name}{cast}"


# Built once, at import, from the table (sdk.db.schema): the hot path only executes them.
# One array parameter per column, unnested server-side into rows.
_ARRAY_KINDS = tuple(_array_kind(workflow_events.c[name]) for name in COLUMNS)
_ARRAYS = ", ".join(f"%b::{kind.SQL_TYPE}[]" for kind in _ARRAY_KINDS)
_NAMES = ", ".join(COLUMNS)

INSERT_SQL = f"""
INSERT INTO {TABLE} ({_NAMES})
SELECT {", ".join(_value("e", name) for name in COLUMNS)}
FROM unnest({_ARRAYS}) AS e({_NAMES})
ON CONFLICT DO NOTHING
RETURNING {_KEYS[0]}
"""

# Compare in SQL, as jsonb and timestamptz: the stored payload is jsonb, whose numbers
# are decimals (2.033294502061387e16 comes back as 20332945020613870), so an honest
# resend must be compared the way it was stored, not as Python floats.
_SAME = ",\n       ".join(
    f"e.{name} IS NOT DISTINCT FROM {_value('i', name)} AS {name}" for name in COMPARED
)
EXISTING_SQL = f"""
SELECT i.ord,
       e.{_KEYS[0]} IS NOT NULL AS found,
       {_SAME}
FROM unnest(%b::{Int4Array.SQL_TYPE}[], {_ARRAYS}) AS i(ord, {_NAMES})
LEFT JOIN {TABLE} e ON {" AND ".join(f"e.{key} = i.{key}" for key in _KEYS)}
"""


class Outcome(enum.StrEnum):
    CREATED = "created"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"


@dataclass(frozen=True, slots=True)
class WriteResult:
    outcome: Outcome
    reason: str | None = None


class EventRow(NamedTuple):
    """An event ready for the database: validated and with event_time derived from its id.

    A named tuple (immutable, and built in a third of a frozen dataclass's time, once per
    event on the hot path) whose fields are the table's COLUMNS in order, so the
    statement's arrays are its columns (``_columns``; a test holds the order).
    """

    event_id: str
    event_time: datetime
    event_version: int
    event_name: str
    ts: datetime
    run_id: str | None
    item_id: str | None
    workflow_name: str | None
    agent_role: str | None
    payload_json: str

    @classmethod
    def from_event(cls, event: EventBase) -> EventRow:
        return cls(
            event_id=event.event_id,
            event_time=ulid_datetime(event.event_id),
            event_version=event.event_version,
            event_name=getattr(event, "event_name"),  # noqa: B009 - defined on every subclass
            ts=event.ts,
            run_id=event.run_id,
            item_id=event.item_id,
            workflow_name=event.workflow_name,
            agent_role=event.agent_role,
            payload_json=getattr(event, "payload").model_dump_json(),  # noqa: B009
        )


class EventStore:
    """Idempotent writes of events, and the live partition window.

    The pool's connections must be in autocommit mode (the app's lifespan opens them so).
    """

    def __init__(self, pool: AsyncConnectionPool, *, window_ttl_s: float = 30.0) -> None:
        self._pool = pool
        self._window_ttl_s = window_ttl_s
        self._months: list[Month] = []
        self._changing: frozenset[Month] = frozenset()
        self._months_at = -window_ttl_s

    async def live_months(self, *, refresh: bool = False) -> list[Month]:
        """Months that have a partition now, oldest first (cached for a few seconds).

        Partitions change once a day at most, so a short cache saves a catalog query
        per request; a write that still misses a partition refreshes it.
        """
        if refresh or time.monotonic() - self._months_at > self._window_ttl_s:
            live: list[Month] = []
            changing: set[Month] = set()
            try:
                async with self._pool.connection() as conn:
                    cur = await conn.execute(PARTITION_TABLES_SQL)
                    for table in partition_tables(await cur.fetchall()):
                        if table.live:
                            live.append(table.month)
                        else:
                            changing.add(table.month)
            except psycopg.Error as exc:
                raise database_error(exc) from exc
            self._months, self._changing = live, frozenset(changing)
            self._months_at = time.monotonic()
        return self._months

    def changing_months(self) -> frozenset[Month]:
        """Months whose table exists but is detached or detaching (as of live_months).

        Retention detaches a month, then drops it or, if late events turned up, attaches
        it again. An event for such a month is neither storable nor known to be too old
        until that decision: the caller answers 503, so the client retries, never 422.
        """
        return self._changing

    async def write(self, rows: Sequence[EventRow]) -> list[WriteResult]:
        """Store ``rows`` in one statement (one transaction); return an outcome per row.

        A row whose id is already stored is a duplicate if its content is identical and
        a conflict otherwise; the stored row is never changed. Repeats of one id inside
        ``rows`` are judged against the first occurrence, which the same transaction
        has just stored.
        """
        first: dict[str, int] = {}
        unique: list[EventRow] = []
        for index, row in enumerate(rows):
            if row.event_id not in first:
                first[row.event_id] = index
                unique.append(row)
        results: list[WriteResult | None] = [None] * len(rows)
        try:
            # Autocommit: the INSERT is one statement, so it is its own transaction
            # (all rows or none) and costs one round trip instead of BEGIN/INSERT/COMMIT,
            # which dominated group commit. The comparison of rows that already existed
            # reads immutable rows, so it needs no shared transaction.
            async with self._pool.connection() as conn:
                cur = await conn.execute(INSERT_SQL, _columns(unique), prepare=True)
                created = {r[0] for r in await cur.fetchall()}
                for event_id in created:
                    results[first[event_id]] = WriteResult(Outcome.CREATED)
                seen = [i for i, r in enumerate(rows) if results[i] is None]
                if seen:
                    cur = await conn.execute(
                        EXISTING_SQL,
                        (Int4Array(seen), *_columns([rows[i] for i in seen])),
                        prepare=True,
                    )
                    for ordinal, found, *same in await cur.fetchall():
                        results[ordinal] = _judge(rows[ordinal], found, same)
        except psycopg.Error as exc:
            if no_partition_for_row(exc):
                # No partition took a row: one vanished between the window check and
                # the insert (retention detached it). Nothing was written; the client
                # retries, and gets 503 until retention drops the month (then 422) or
                # attaches it again (then it is stored).
                self._months_at = -self._window_ttl_s
                raise StoreUnavailable("event partitions changed during the write; retry") from exc
            # Unavailable or aborted: 503. Refused (a value Postgres rejects although it
            # passed validation): 422 for this statement, which stored nothing;
            # write_isolating then isolates the row.
            raise database_error(exc) from exc
        assert all(r is not None for r in results)
        return [r for r in results if r is not None]

    async def write_isolating(self, rows: Sequence[EventRow]) -> list[WriteResult | Exception]:
        """:meth:`write` ``rows`` together; if the database refuses the statement, write
        them one by one so one bad row fails alone (its exception in its place).

        Without this, one poisonous request would fail every request of its group commit,
        and one bad event every event of its batch. A :class:`StoreUnavailable` (what
        :func:`ingest_api.errors.database_error` makes of a database that is unavailable,
        aborted the write or is not migrated) is about every row alike: it fails them all,
        at once, and none is written one by one.
        """
        try:
            return list(await self.write(rows))
        except StoreUnavailable:
            raise
        except Exception as exc:
            if len(rows) == 1:
                return [exc]
            log.warning(
                "a write of %d events failed (%s); retrying them one by one", len(rows), exc
            )
        outcomes: list[WriteResult | Exception] = []
        for row in rows:
            try:
                outcomes.extend(await self.write([row]))
            except StoreUnavailable:
                raise
            except Exception as exc:
                outcomes.append(exc)
        return outcomes


def _columns(rows: Sequence[EventRow]) -> tuple[list[Any], ...]:
    """The statement's array parameters: the rows' columns, each typed for the one-pass
    binary encoders of :mod:`ingest_api.arrays`."""
    if not rows:
        return tuple(kind() for kind in _ARRAY_KINDS)
    columns = zip(*rows, strict=True)  # every row has every column: it is a NamedTuple
    return tuple(kind(column) for kind, column in zip(_ARRAY_KINDS, columns, strict=True))


def _judge(row: EventRow, found: bool, same: list[bool]) -> WriteResult:
    if not found:  # cannot happen while rows are append-only; never guess "duplicate"
        raise StoreUnavailable(f"event {row.event_id} was neither stored nor found; retry")
    differing = [name for name, equal in zip(COMPARED, same, strict=True) if not equal]
    if not differing:
        return WriteResult(Outcome.DUPLICATE)
    return WriteResult(
        Outcome.CONFLICT,
        f"event_id {row.event_id} is already stored with different content "
        f"(differs in: {', '.join(differing)}); stored events are never overwritten - "
        "send changes as a new event with a new event_id",
    )
