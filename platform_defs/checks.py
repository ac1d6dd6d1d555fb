"""Asset checks: the partition window is ready, and aggregates agree with the raw events."""

from datetime import UTC, datetime

import dagster as dg
import sqlalchemy as sa

from platform_defs.assets.aggregates import daily_event_aggregates
from platform_defs.assets.partitions import event_partitions
from platform_defs.clock import ClockResource
from platform_defs.resources import PostgresResource
from platform_defs.window import oldest_retained_month
from sdk.db.partitions import PARENT, Month, month_of_table
from sdk.settings import get_settings


@dg.asset_check(
    asset=event_partitions,
    blocking=True,
    description="The partition for next month exists, so ingestion never hits a missing month.",
)
def next_month_partition_exists(
    postgres: PostgresResource, clock: ClockResource
) -> dg.AssetCheckResult:
    now = clock.now()
    wanted = Month.of(now).plus(1)
    with postgres.engine() as engine, engine.connect() as conn:
        present = {month for _, month, _ in _bounds(conn) if month is not None}
    return dg.AssetCheckResult(
        passed=wanted in present,
        metadata={"next_month": str(wanted), "present": sorted(str(m) for m in present)},
        description=None if wanted in present else f"no partition for {wanted}",
    )


BOUNDS_SQL = (
    "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
    f"JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = '{PARENT}'::regclass"
)


def _bounds(conn: sa.Connection) -> list[tuple[str, Month | None, str]]:
    """Attached partitions: (table name, its month or None, bound expression)."""
    return [(n, month_of_table(n), b) for n, b in conn.exec_driver_sql(BOUNDS_SQL)]


def _expected_bound(month: Month, conn: sa.Connection) -> str:
    # Rendered by Postgres itself, so the comparison is independent of the session time zone.
    lo, hi = conn.execute(
        sa.text("SELECT CAST(:lo AS timestamptz)::text, CAST(:hi AS timestamptz)::text"),
        {"lo": month.start, "hi": month.end},
    ).one()
    return f"FOR VALUES FROM ('{lo}') TO ('{hi}')"


@dg.asset_check(
    asset=event_partitions,
    description=(
        "No event row lies outside its partition's month. Postgres enforces each partition's "
        "bound on every row, so this holds exactly when every partition's bound is the UTC "
        "month its name says (checked in the catalog: no scan of the raw data)."
    ),
)
def no_rows_outside_partition_range(postgres: PostgresResource) -> dg.AssetCheckResult:
    with postgres.engine() as engine, engine.connect() as conn:
        wrong = {
            name: bound
            for name, month, bound in _bounds(conn)
            if month is None or bound != _expected_bound(month, conn)
        }
    return dg.AssetCheckResult(
        passed=not wrong, metadata={"mismatched": dg.MetadataValue.json(wrong)}
    )


RECONCILE_SQL = """
WITH raw AS (
  SELECT (ts AT TIME ZONE 'UTC')::date AS day, count(*) AS n FROM telemetry.workflow_events
  WHERE ts >= :lo AND ts < :hi GROUP BY 1
), agg AS (
  SELECT day, sum(events) AS n FROM telemetry.daily_event_aggregates
  WHERE day >= CAST(:lo AS date) AND day < CAST(:hi AS date) GROUP BY 1
)
SELECT coalesce(agg.day, raw.day) AS day, coalesce(raw.n, 0), agg.n
FROM agg FULL JOIN raw USING (day) ORDER BY 1
"""


@dg.asset_check(
    asset=daily_event_aggregates,
    description=(
        "For every day still within retention, up to yesterday (UTC; today is still being "
        "written), that has aggregates, their event count equals the raw events of that day. "
        "A mismatch usually means late events the lookback schedule has not re-aggregated "
        "yet. Days with events but no aggregate are listed, not failed (not yet "
        "materialised), unless no day could be compared at all: events exist but nothing "
        "is aggregated, which fails (WARN) instead of passing on zero days. No events and "
        "no aggregates passes: there is nothing to reconcile."
    ),
)
def aggregates_reconcile(postgres: PostgresResource, clock: ClockResource) -> dg.AssetCheckResult:
    now = clock.now()
    lo = oldest_retained_month(now, get_settings().event_retention_days).start
    hi = datetime(now.year, now.month, now.day, tzinfo=UTC)
    with postgres.engine() as engine, engine.connect() as conn:
        rows = conn.execute(sa.text(RECONCILE_SQL), {"lo": lo, "hi": hi}).all()
    mismatched = {
        str(d): {"raw": int(r), "aggregated": int(a)}
        for d, r, a in rows
        if a is not None and r != a
    }
    missing = [str(d) for d, _, a in rows if a is None]
    compared = sum(1 for _, _, a in rows if a is not None)
    if compared == 0 and missing:
        description = (
            f"Nothing to compare: {len(missing)} days have raw events but no aggregate "
            f"(first {missing[0]}, last {missing[-1]}). Materialise them (a backfill from the "
            "asset's page) so the aggregates can be checked."
        )
    elif mismatched:
        description = (
            f"{len(mismatched)} of {compared} days differ from their raw events: "
            "re-materialise them (late events)."
        )
    else:
        description = (
            f"{compared} days agree with their raw events."
            if compared
            else ("No events and no aggregates within retention: nothing to reconcile.")
        )
    return dg.AssetCheckResult(
        passed=not mismatched and (compared > 0 or not missing),
        severity=dg.AssetCheckSeverity.WARN,
        description=description,
        metadata={
            "days_compared": compared,
            "mismatched": dg.MetadataValue.json(mismatched),
            "days_without_aggregate": dg.MetadataValue.json(missing),
        },
    )
