"""Asset ``event_retention``: drop whole raw-event months once they expire.

A month is dropped when its whole month ended more than ``EVENT_RETENTION_DAYS`` before
"now": ``DETACH PARTITION … CONCURRENTLY`` (ingestion keeps writing to the other months)
then ``DROP TABLE``. Rows are never DELETEd.

Aggregates are all that remains of a dropped month, so retention refuses to drop any
month (and drops nothing at all in that run) unless every UTC day that has events in it
has aggregate rows computed after the last of that day's events in the month arrived
(``computed_at >= max(received_at)``). A day without events needs no aggregate. A run
refused by that check changes nothing. A failure while dropping (late events found
after a detach, a failed DETACH) stops the run there: months dropped before it stay
dropped, and the failure names the month it stopped at. (``computed_at`` and
``received_at`` are transaction start times, so an ingest transaction that commits
after a concurrent aggregation read its day can look covered: a known gap, which
storing what each aggregate actually counted would close.)
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import dagster as dg
import sqlalchemy as sa

from platform_defs.assets.aggregates import AGGREGATES_START_DATE
from platform_defs.clock import ClockResource
from platform_defs.locks import RETENTION_LOCK_KEY
from platform_defs.resources import PostgresResource
from platform_defs.window import is_expired
from sdk.db.partitions import PARENT, Month, list_partitions, month_of_table
from sdk.db.schema import TELEMETRY_SCHEMA
from sdk.settings import get_settings

GROUP = "telemetry"

# Partition tables, attached or left detached by an interrupted earlier run.
CANDIDATES_SQL = f"""
SELECT c.relname, i.inhrelid IS NOT NULL AS attached, coalesce(i.inhdetachpending, false)
FROM pg_class c
LEFT JOIN pg_inherits i ON i.inhrelid = c.oid AND i.inhparent = '{PARENT}'::regclass
WHERE c.relnamespace = '{TELEMETRY_SCHEMA}'::regnamespace AND c.relkind = 'r'
  AND c.relname ~ '^workflow_events_p[0-9]{{4}}_[0-9]{{2}}$'
"""

# Days with events in one partition whose aggregate is missing or older than the events.
UNCOVERED_DAYS_SQL = """
WITH raw AS (
  SELECT (ts AT TIME ZONE 'UTC')::date AS day, max(received_at) AS last_received
  FROM ONLY {table} GROUP BY 1
), agg AS (
  SELECT day, min(computed_at) AS computed_at FROM telemetry.daily_event_aggregates
  WHERE day IN (SELECT day FROM raw) GROUP BY day
)
SELECT raw.day FROM raw LEFT JOIN agg USING (day)
WHERE agg.computed_at IS NULL OR agg.computed_at < raw.last_received
ORDER BY raw.day
"""


@dataclass(frozen=True)
class Candidate:
    table: str
    month: Month
    attached: bool
    detach_pending: bool

    @property
    def qualified(self) -> str:
        return f"{TELEMETRY_SCHEMA}.{self.table}"


def expired_partitions(conn: sa.Connection, now: datetime, retention_days: int) -> list[Candidate]:
    """Partition tables whose month is wholly past retention, oldest first."""
    found = []
    for name, attached, pending in conn.exec_driver_sql(CANDIDATES_SQL):
        month = month_of_table(name)
        if month is not None and is_expired(month, now, retention_days):
            found.append(Candidate(name, month, bool(attached), bool(pending)))
    return sorted(found, key=lambda c: c.month)


def uncovered_days(conn: sa.Connection, candidate: Candidate) -> list[str]:
    """Days of ``candidate`` whose events are not (or not fully) in the aggregates.

    Only days that can still be aggregated count: a day before the aggregates' first
    partition, one older than every live partition, or one already recorded as dropped
    is refused by ``aggregate_day`` and would otherwise block retention for good.
    """
    rows = conn.exec_driver_sql(UNCOVERED_DAYS_SQL.format(table=candidate.qualified))
    days = [day for (day,) in rows]
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
    start = date.fromisoformat(AGGREGATES_START_DATE)
    return [
        str(day) for day in days if day >= start and Month.of(day) >= oldest and day not in dropped
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


def _drop(conn: sa.Connection, candidate: Candidate) -> int:
    """Detach (concurrently) and drop one partition; returns its row count. Autocommit."""
    if candidate.attached:
        mode = "FINALIZE" if candidate.detach_pending else "CONCURRENTLY"
        conn.exec_driver_sql(f"ALTER TABLE {PARENT} DETACH PARTITION {candidate.qualified} {mode}")
    # Detached, the table takes no more inserts: what we count now is what we drop.
    late = uncovered_days(conn, candidate)
    if late:
        lo, hi = candidate.month.start.isoformat(), candidate.month.end.isoformat()
        conn.exec_driver_sql(
            f"ALTER TABLE {PARENT} ATTACH PARTITION {candidate.qualified} "
            f"FOR VALUES FROM ('{lo}') TO ('{hi}')"
        )
        raise _blocked({str(candidate.month): late}, detail="(events arrived during the detach)")
    rows = conn.exec_driver_sql(f"SELECT count(*) FROM {candidate.qualified}").scalar_one()
    # Record first (a failed DROP then leaves a day refused, never a day recomputed
    # without its events): the month's own days, and the ts-days its events belong to.
    first, last = candidate.month.start.date(), candidate.month.end.date()
    conn.exec_driver_sql(
        "INSERT INTO telemetry.dropped_event_days (day, partition) "
        f"SELECT d::date, '{candidate.qualified}' "
        f"FROM generate_series('{first}'::date, '{last}'::date - 1, interval '1 day') AS d "
        f"UNION SELECT (ts AT TIME ZONE 'UTC')::date, '{candidate.qualified}' "
        f"FROM ONLY {candidate.qualified} ON CONFLICT (day) DO NOTHING"
    )
    conn.exec_driver_sql(f"DROP TABLE {candidate.qualified}")
    return int(rows)


def apply_retention(
    engine: sa.Engine, now: datetime, retention_days: int
) -> Sequence[dict[str, object]]:
    """Drop every expired month, or nothing if any of them is not fully aggregated."""
    # DETACH … CONCURRENTLY cannot run inside a transaction block.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(f"SELECT pg_advisory_lock({RETENTION_LOCK_KEY})")
        try:
            candidates = expired_partitions(conn, now, retention_days)
            blocked = {str(c.month): days for c in candidates if (days := uncovered_days(conn, c))}
            if blocked:
                raise _blocked(blocked)
            return [
                {"partition": c.qualified, "month": str(c.month), "rows": _drop(conn, c)}
                for c in candidates
            ]
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
