"""Asset ``event_retention``: drop whole raw-event months once they expire.

A month is dropped when its whole month ended more than ``EVENT_RETENTION_DAYS`` before
"now": ``DETACH PARTITION … CONCURRENTLY`` (ingestion keeps writing to the other months)
then ``DROP TABLE``. Rows are never DELETEd.

Aggregates are all that remains of a dropped month, so retention refuses to drop any
month (and drops nothing at all in that run) unless every UTC day that has events in it
is fully counted in ``daily_event_aggregates``: the day's aggregate rows add up to as
many events as the raw tables now hold for that day. Raw events are append-only, so an
aggregate that counted as many events as exist counted every one of them, whenever and
in whatever order their transactions committed (timestamps could not tell: an ingest
transaction that commits after an aggregation read its day has an earlier
``received_at`` than the aggregate's ``computed_at``). A day without events needs no
aggregate. A run refused by that check changes nothing.

The decision to drop is made where no event can slip in: after the detach, when the
table is no longer a partition (the parent refuses that month's rows, so the API
answers 503 and the client retries), in one transaction that holds the table's ACCESS
EXCLUSIVE lock (a writer on the table itself waits, then finds it gone) and that
counts again, records the dropped days and drops it, or attaches the table back if an
event came in between the first check and the detach. A failure while dropping stops
the run there: months dropped before it stay dropped, and the failure names the month.

One gap is left, outside the month being dropped: a day becomes history when a month
holding some of its events is dropped (an event's partition follows its id's time, its
day its own ``ts``), and an event of that day that arrives later in a live month can
no longer be aggregated; it stays raw until its own month expires.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import dagster as dg
import sqlalchemy as sa

from platform_defs.assets.aggregates import AGGREGATES_START
from platform_defs.clock import ClockResource
from platform_defs.resources import PostgresResource
from platform_defs.window import is_expired
from sdk.db.locks import RETENTION_LOCK_KEY
from sdk.db.partitions import (
    PARENT,
    PARTITION_NAME_PATTERN,
    PARTITION_TABLES_SQL,
    Month,
    list_partitions,
    partition_tables,
)
from sdk.db.schema import TELEMETRY_SCHEMA
from sdk.settings import get_settings

GROUP = "telemetry"
# Every table but :table that can hold raw events: the partitions, and partition tables
# detached (or pending detach) by an interrupted run, which aggregates may have counted.
OTHER_SOURCES_SQL = f"""
SELECT c.oid::regclass::text FROM pg_class c
WHERE c.relkind = 'r' AND c.oid <> CAST(:table AS regclass) AND (
  c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = '{PARENT}'::regclass)
  OR (c.relnamespace = '{TELEMETRY_SCHEMA}'::regnamespace
      AND c.relname ~ '{PARTITION_NAME_PATTERN}'))
ORDER BY 1
"""

# Days with events in {table} whose aggregate rows do not count exactly the events that
# exist for that day: {table}'s own plus those of the same ts-day in {others}.
UNCOVERED_DAYS_SQL = """
WITH own AS (
  SELECT (ts AT TIME ZONE 'UTC')::date AS day, count(*) AS n FROM ONLY {table} GROUP BY 1
), raw AS (
  SELECT day, n{others} AS n FROM own
), agg AS (
  SELECT day, sum(events) AS n FROM telemetry.daily_event_aggregates
  WHERE day IN (SELECT day FROM own) GROUP BY day
)
SELECT raw.day FROM raw LEFT JOIN agg USING (day)
WHERE agg.n IS DISTINCT FROM raw.n
ORDER BY raw.day
"""
_SAME_DAY_IN = (
    "\n    + (SELECT count(*) FROM ONLY {source} e"
    " WHERE e.ts >= (own.day::timestamp AT TIME ZONE 'UTC')"
    " AND e.ts < ((own.day + 1)::timestamp AT TIME ZONE 'UTC'))"
)


@dataclass(frozen=True)
class Candidate:
    table: str
    month: Month
    attached: bool
    detach_pending: bool

    @property
    def qualified(self) -> str:
        return f"{TELEMETRY_SCHEMA}.{self.table}"


# Called at each step of dropping one month ("checked": every month passed the check,
# this one is not detached yet; "detached"; "locked": its lock is held, not re-checked
# yet), so tests can interleave late events deterministically. Production passes none.
Pause = Callable[[str, Candidate], None]


def expired_partitions(conn: sa.Connection, now: datetime, retention_days: int) -> list[Candidate]:
    """Partition tables whose month is wholly past retention, oldest first."""
    return [
        Candidate(t.name, t.month, t.attached, t.detach_pending)
        for t in partition_tables(conn.exec_driver_sql(PARTITION_TABLES_SQL))
        if is_expired(t.month, now, retention_days)
    ]


def uncovered_days(conn: sa.Connection, candidate: Candidate) -> list[str]:
    """Days of ``candidate`` whose events are not (or not all) in the aggregates.

    Only days that can still be aggregated count: a day before the aggregates' first
    partition, one older than every live partition, or one already recorded as dropped
    is refused by ``aggregate_day`` and would otherwise block retention for good.
    """
    others = conn.execute(sa.text(OTHER_SOURCES_SQL), {"table": candidate.qualified}).scalars()
    same_day = "".join(_SAME_DAY_IN.format(source=source) for source in others)
    sql = UNCOVERED_DAYS_SQL.format(table=candidate.qualified, others=same_day)
    days = [day for (day,) in conn.exec_driver_sql(sql)]
    if not days:
        return []
    live = list_partitions(conn)
    oldest = min([*live, candidate.month])
    dropped = set(
        conn.execute(
            sa.text("SELECT day FROM telemetry.dropped_event_days WHERE day = ANY(:days)"),
            {"days": days},
        ).scalars()
    )
    return [
        str(day)
        for day in days
        if day >= AGGREGATES_START and Month.of(day) >= oldest and day not in dropped
    ]


class RetentionBlocked(dg.Failure):
    """An expired month still holds events that no aggregate accounts for."""


def _blocked(blocked: dict[str, list[str]], *, detail: str = "") -> RetentionBlocked:
    lines = [f"{month}: {', '.join(days)}" for month, days in blocked.items()]
    return RetentionBlocked(
        description=(
            "Retention refused to drop anything: these expired months have days with events "
            "but no up-to-date daily_event_aggregates; materialise those partitions of "
            f"daily_event_aggregates first. {detail}\n" + "\n".join(lines)
        ),
        metadata={"blocked": dg.MetadataValue.json(blocked)},
    )


def _no_pause(step: str, candidate: Candidate) -> None:
    return None


def _record_and_drop(tx: sa.Connection, candidate: Candidate) -> int:
    """Make the month's days history and drop its table, in the caller's transaction."""
    rows = tx.exec_driver_sql(f"SELECT count(*) FROM {candidate.qualified}").scalar_one()
    # Every day of the month, and every ts-day its events belong to, becomes history in
    # the same commit as the drop: aggregate_day refuses those days from then on.
    first, last = candidate.month.start.date(), candidate.month.end.date()
    tx.exec_driver_sql(
        "INSERT INTO telemetry.dropped_event_days (day, partition) "
        f"SELECT d::date, '{candidate.qualified}' "
        f"FROM generate_series('{first}'::date, '{last}'::date - 1, interval '1 day') AS d "
        f"UNION SELECT (ts AT TIME ZONE 'UTC')::date, '{candidate.qualified}' "
        f"FROM ONLY {candidate.qualified} ON CONFLICT (day) DO NOTHING"
    )
    tx.exec_driver_sql(f"DROP TABLE {candidate.qualified}")
    return int(rows)


def _drop(engine: sa.Engine, conn: sa.Connection, candidate: Candidate, pause: Pause) -> int:
    """Detach (concurrently, on autocommit ``conn``) and drop one partition; its row count.

    Raises :class:`RetentionBlocked`, with the table attached again, if events came in
    that no aggregate counted.
    """
    if candidate.attached:
        mode = "FINALIZE" if candidate.detach_pending else "CONCURRENTLY"
        conn.exec_driver_sql(f"ALTER TABLE {PARENT} DETACH PARTITION {candidate.qualified} {mode}")
    pause("detached", candidate)
    with engine.begin() as tx:
        # No one can write to the table from here to the commit (and every writer that
        # could have has finished): what is counted is exactly what is dropped.
        tx.exec_driver_sql(f"LOCK TABLE {candidate.qualified} IN ACCESS EXCLUSIVE MODE")
        pause("locked", candidate)
        late = uncovered_days(tx, candidate)
        if not late:
            return _record_and_drop(tx, candidate)
        _attach(tx, candidate)
    # Raised after the commit, so the table is attached again.
    raise _blocked({str(candidate.month): late}, detail="(events arrived during the detach)")


def _attach(conn: sa.Connection, candidate: Candidate) -> None:
    lo, hi = candidate.month.start.isoformat(), candidate.month.end.isoformat()
    conn.exec_driver_sql(
        f"ALTER TABLE {PARENT} ATTACH PARTITION {candidate.qualified} "
        f"FOR VALUES FROM ('{lo}') TO ('{hi}')"
    )


def _reattach_leftovers(conn: sa.Connection, candidates: list[Candidate]) -> list[Candidate]:
    """Attach again the months an interrupted run left detached (or detaching).

    A detached table is invisible to aggregation (it reads the parent): a day it shares
    with an attached month, re-aggregated meanwhile, would count too few events and block
    retention for good. Attached, its events count again; the coverage check then names
    any such day, and re-materialising it makes it whole. The API answers 503 for a
    detached month's events, so this also ends that.
    """
    result = []
    for c in candidates:
        if c.attached and not c.detach_pending:
            result.append(c)
            continue
        if c.detach_pending:
            conn.exec_driver_sql(f"ALTER TABLE {PARENT} DETACH PARTITION {c.qualified} FINALIZE")
        _attach(conn, c)
        result.append(Candidate(c.table, c.month, attached=True, detach_pending=False))
    return result


def apply_retention(
    engine: sa.Engine, now: datetime, retention_days: int, *, pause: Pause | None = None
) -> Sequence[dict[str, object]]:
    """Drop every expired month, or nothing if any of them is not fully aggregated."""
    pause = pause or _no_pause
    # DETACH … CONCURRENTLY cannot run inside a transaction block.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(f"SELECT pg_advisory_lock({RETENTION_LOCK_KEY})")
        try:
            candidates = _reattach_leftovers(conn, expired_partitions(conn, now, retention_days))
            blocked = {str(c.month): days for c in candidates if (days := uncovered_days(conn, c))}
            if blocked:
                raise _blocked(blocked)
            dropped: list[dict[str, object]] = []
            for c in candidates:
                pause("checked", c)
                rows = _drop(engine, conn, c, pause)
                dropped.append({"partition": c.qualified, "month": str(c.month), "rows": rows})
            return dropped
        finally:
            conn.exec_driver_sql(f"SELECT pg_advisory_unlock({RETENTION_LOCK_KEY})")


@dg.asset(
    group_name=GROUP,
    deps=["daily_event_aggregates"],
    description=(
        "Detaches (CONCURRENTLY) and drops monthly partitions of telemetry.workflow_events "
        "whose whole month ended more than EVENT_RETENTION_DAYS ago. Refuses while any day "
        "with events in such a month lacks an up-to-date aggregate. Never deletes rows; "
        "never touches daily_event_aggregates."
    ),
    kinds={"postgres"},
)
def event_retention(
    context: dg.AssetExecutionContext, postgres: PostgresResource, clock: ClockResource
) -> dg.MaterializeResult[None]:
    settings = get_settings()
    now = clock.now()
    with postgres.engine() as engine:
        dropped = apply_retention(engine, now, settings.event_retention_days)
    for item in dropped:
        context.log.info(f"dropped {item['partition']} ({item['rows']} rows)")
    if not dropped:
        context.log.info(f"now={now.isoformat()}: no month past retention")
    return dg.MaterializeResult(
        metadata={
            "dropped": dg.MetadataValue.json(list(dropped)),
            "dropped_count": len(dropped),
            "dropped_rows": sum(int(str(d["rows"])) for d in dropped),
            "now": now.isoformat(),
            "retention_days": settings.event_retention_days,
        }
    )
