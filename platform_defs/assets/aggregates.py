"""Asset ``daily_event_aggregates``: one row per day and grouping, kept forever.

A day is recomputed from the raw events whose own ``ts`` falls in it (UTC) and replaces
that day's rows in one transaction, so readers see the old day or the new one, never a
mix. A day whose raw month has been dropped by retention is refused: recomputing it would
overwrite history with zeros.
"""

from datetime import UTC, date, datetime, timedelta

import dagster as dg
import sqlalchemy as sa

from platform_defs.resources import PostgresResource
from sdk.db.locks import RETENTION_LOCK_KEY
from sdk.db.partitions import Month, list_partitions
from sdk.settings import WdpSettings

GROUP = "telemetry"


def daily_partitions_definition(
    settings: WdpSettings | None = None,
) -> dg.DailyPartitionsDefinition:
    """The asset's daily partitions, from ``AGGREGATE_START_DATE`` (the first day operators
    can backfill; earlier days never had raw partitions).

    Dagster needs a partitions definition's first day when the asset is defined, so this
    is the one setting read when the definitions load rather than when a run starts
    (a fresh ``WdpSettings``, leaving the cached settings alone): change it, then reload
    the code location.
    """
    start = (settings or WdpSettings()).aggregate_start_date
    return dg.DailyPartitionsDefinition(start_date=start.isoformat(), timezone="UTC")


daily_partitions = daily_partitions_definition()
# The first aggregate day, as the partitions definition has it (retention needs it too).
AGGREGATES_START: date = daily_partitions.start.date()


def _num(key: str) -> str:
    """A payload number, NULL when absent or not a number (raw rows may predate validation)."""
    return (
        f"CASE WHEN jsonb_typeof(payload->'{key}') = 'number' THEN (payload->>'{key}')::numeric END"
    )


STEP = "'workflow.step_completed'"

AGGREGATE_SQL = f"""
INSERT INTO telemetry.daily_event_aggregates (
  day, event_name, workflow_name, agent_role, model, events, distinct_runs, distinct_items,
  tokens_in, tokens_out, cost_usd, errors, duration_p50_ms, duration_p95_ms)
SELECT
  CAST(:day AS date), event_name, workflow_name, agent_role, model,
  count(*), count(DISTINCT run_id), count(DISTINCT item_id),
  coalesce(sum(tokens_in), 0)::bigint, coalesce(sum(tokens_out), 0)::bigint,
  coalesce(sum(cost_usd), 0),
  count(*) FILTER (WHERE is_error),
  percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms) FILTER (WHERE event_name = {STEP}),
  percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) FILTER (WHERE event_name = {STEP})
FROM (
  SELECT
    event_name,
    coalesce(workflow_name, '') AS workflow_name,
    coalesce(agent_role, '') AS agent_role,
    CASE WHEN event_name = {STEP} THEN coalesce(payload->>'model', '') ELSE '' END AS model,
    run_id, item_id,
    {_num("tokens_in")} AS tokens_in,
    {_num("tokens_out")} AS tokens_out,
    {_num("cost_usd_est")} AS cost_usd,
    ({_num("duration_ms")})::double precision AS duration_ms,
    coalesce(
      (event_name = {STEP} AND payload->>'status' = 'error')
      OR (event_name = 'workflow.run_completed' AND payload->>'status' = 'failed'),
      false) AS is_error
  FROM telemetry.workflow_events
  WHERE ts >= :lo AND ts < :hi
) ev
GROUP BY event_name, workflow_name, agent_role, model
"""


class RawMonthDropped(dg.Failure):
    """The day's raw events are gone; its aggregates are history and must not be rewritten."""


def aggregate_day(conn: sa.Connection, day: date) -> tuple[int, int]:
    """Replace ``day``'s aggregate rows inside the caller's transaction.

    Returns (rows written, events counted). Raises :class:`RawMonthDropped`, before
    writing anything, when the day's month partition no longer exists.
    """
    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock_shared({RETENTION_LOCK_KEY})")
    month = Month.of(day)
    dropped = conn.execute(
        sa.text("SELECT partition FROM telemetry.dropped_event_days WHERE day = :day"),
        {"day": day},
    ).scalar_one_or_none()
    live = list_partitions(conn)
    # Refused: a day some of whose raw events retention dropped (recorded at the drop,
    # also for events filed in a neighbouring month), or a day older than every live
    # partition (dropped by hand, or before the record existed).
    if dropped is not None or (live and month < live[0]) or not live:
        where = dropped or f"telemetry.{month.table_name}"
        raise RawMonthDropped(
            description=(
                f"Refusing to aggregate {day}: raw events of that day were in {where}, "
                "which retention has dropped. Its stored aggregates are kept unchanged; "
                "recomputing them now would replace history with partial counts."
            ),
            metadata={"day": str(day), "month": str(month)},
        )
    lo = datetime(day.year, day.month, day.day, tzinfo=UTC)
    conn.execute(
        sa.text("DELETE FROM telemetry.daily_event_aggregates WHERE day = :day"), {"day": day}
    )
    written = conn.execute(
        sa.text(AGGREGATE_SQL), {"day": day, "lo": lo, "hi": lo + timedelta(days=1)}
    ).rowcount
    events = conn.execute(
        sa.text(
            "SELECT coalesce(sum(events), 0) FROM telemetry.daily_event_aggregates WHERE day = :day"
        ),
        {"day": day},
    ).scalar_one()
    return written, int(events)


@dg.asset(
    group_name=GROUP,
    partitions_def=daily_partitions,
    deps=["event_partitions"],
    description=(
        "telemetry.daily_event_aggregates for one UTC day: events, distinct runs and items, "
        "tokens, cost, errors and step duration p50/p95 per (event_name, workflow_name, "
        "agent_role, model). Re-materialising replaces the day atomically; a day whose raw "
        "month was dropped fails instead of being overwritten. Never pruned."
    ),
    kinds={"postgres"},
)
def daily_event_aggregates(
    context: dg.AssetExecutionContext, postgres: PostgresResource
) -> dg.MaterializeResult[None]:
    day = date.fromisoformat(context.partition_key)
    with postgres.engine() as engine, engine.begin() as conn:
        written, events = aggregate_day(conn, day)
    context.log.info(f"{day}: {events} events in {written} aggregate rows")
    return dg.MaterializeResult(metadata={"day": str(day), "rows": written, "events": events})
