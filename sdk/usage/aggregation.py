"""The daily aggregates: one SQL computes them, for the stored rows and for live figures.

``telemetry.daily_event_aggregates`` is written here and nowhere else. A day is
recomputed from the raw events whose own ``ts`` falls in it (UTC) and replaces that
day's rows in the caller's transaction, so readers see the old day or the new one,
never a mix. A day whose raw events retention has dropped is refused: recomputing it
would overwrite history with partial counts.

The same transaction, under the same locks and the same refusal, replaces the day's
``telemetry.daily_model_usage`` rows (its model calls summed per model, provider,
context band and basis: :mod:`sdk.usage.model_usage`) and prices them with the price
table as it stands then (:mod:`sdk.usage.pricing`), so the two tables always describe
the same events. Here ``cost_usd`` stays what the events emitted; the priced cost, its
source and its price row are the usage table's, and re-pricing changes only those.

:data:`GROUPED_SQL` is the grouping itself, as a SELECT over any ``[lo, hi)``: the
Dagster asset stores its rows, and the read API and CLI run the same text for the days
that have no stored rows yet (today), so a live figure and the stored one it becomes
cannot disagree. Its placeholders are psycopg's (``%(lo)s``), so it runs unchanged on a
psycopg connection, sync or async, and through SQLAlchemy's ``exec_driver_sql``.

What each figure means (docs/usage.md says it for users):

* a **step** is one ``workflow.step_completed`` event: one execution of one node (each
  retry attempt is its own step);
* tokens, cost and the unknown-cost count are those of steps; other event rows carry 0,
  so summing any set of rows never counts a run's totals twice;
* a step's cost is **unknown** when it says so (``cost_unknown``) or gives none
  (``cost_usd_est`` null) although it called a model (names one, or reports tokens):
  it adds nothing to ``cost_usd`` and one to ``cost_unknown_steps``. A step with no
  model, no tokens and no cost called nothing billable and costs a known $0.
  ``cost_usd`` is therefore "at least", and every reader shows the count beside it;
* an **error** is a step with status ``error`` or a run completed as ``failed``;
* durations are those of steps: p50, p95 (``percentile_cont``) and max, per row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from sdk.db.locks import AGGREGATE_DAY_LOCK_CLASS, RETENTION_LOCK_KEY
from sdk.db.partitions import Month, list_partitions
from sdk.db.schema import AGGREGATE_VERSION, TELEMETRY_SCHEMA, daily_event_aggregates
from sdk.prices.repository import load_book
from sdk.usage.day_usage import UsageWritten, replace_day_usage
from sdk.usage.errors import RawEventsDropped
from sdk.usage.payload import STEP_EVENT, cost_is_unknown, payload_number

__all__ = [
    "AGGREGATE_COLUMNS",
    "GROUPED_SQL",
    "STEP_EVENT",
    "DayWritten",
    "aggregate_day",
    "cost_is_unknown",
    "day_bounds",
    "payload_number",
]

TABLE = f"{TELEMETRY_SCHEMA}.{daily_event_aggregates.name}"
_STEP = f"'{STEP_EVENT}'"

# The table's columns GROUPED_SQL yields, in its order (all but computed_at).
AGGREGATE_COLUMNS: tuple[str, ...] = tuple(
    c.name for c in daily_event_aggregates.columns if c.name != "computed_at"
)


def _step_only(expression: str) -> str:
    return f"CASE WHEN event_name = {_STEP} THEN {expression} END"


GROUPED_SQL = f"""
SELECT
  CAST(%(day)s AS date) AS day, event_name, workflow_name, agent_role, model, node,
  count(*) AS events, count(DISTINCT run_id) AS distinct_runs,
  count(DISTINCT item_id) AS distinct_items,
  coalesce(sum(tokens_in), 0)::bigint AS tokens_in,
  coalesce(sum(tokens_out), 0)::bigint AS tokens_out,
  coalesce(sum(tokens_cached_in), 0)::bigint AS tokens_cached_in,
  coalesce(sum(cost_usd) FILTER (WHERE NOT cost_unknown), 0) AS cost_usd,
  count(*) FILTER (WHERE cost_unknown) AS cost_unknown_steps,
  count(*) FILTER (WHERE is_error) AS errors,
  percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms) AS duration_p50_ms,
  percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) AS duration_p95_ms,
  max(duration_ms) AS duration_max_ms,
  CAST({AGGREGATE_VERSION} AS smallint) AS aggregate_version
FROM (
  SELECT
    event_name,
    coalesce(workflow_name, '') AS workflow_name,
    coalesce(agent_role, '') AS agent_role,
    coalesce({_step_only("payload->>'model'")}, '') AS model,
    coalesce({_step_only("payload->>'node'")}, '') AS node,
    run_id, item_id,
    {_step_only(payload_number("tokens_in"))} AS tokens_in,
    {_step_only(payload_number("tokens_out"))} AS tokens_out,
    {_step_only(payload_number("tokens_cached_in"))} AS tokens_cached_in,
    {_step_only(payload_number("cost_usd_est"))} AS cost_usd,
    (event_name = {_STEP} AND {cost_is_unknown()}) AS cost_unknown,
    ({_step_only(payload_number("duration_ms"))})::double precision AS duration_ms,
    coalesce(
      (event_name = {_STEP} AND payload->>'status' = 'error')
      OR (event_name = 'workflow.run_completed' AND payload->>'status' = 'failed'),
      false) AS is_error
  FROM {TELEMETRY_SCHEMA}.workflow_events
  WHERE ts >= %(lo)s AND ts < %(hi)s
) ev
GROUP BY event_name, workflow_name, agent_role, model, node
"""

_COLUMN_LIST = ", ".join(AGGREGATE_COLUMNS)
_INSERT_SQL = f"INSERT INTO {TABLE} ({_COLUMN_LIST}) SELECT {_COLUMN_LIST} FROM ({GROUPED_SQL}) g"


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """``[lo, hi)`` of a UTC day, as GROUPED_SQL's ``lo`` and ``hi``."""
    lo = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return lo, lo + timedelta(days=1)


@dataclass(frozen=True)
class DayWritten:
    """What :func:`aggregate_day` stored."""

    day: date
    rows: int
    events: int
    usage: UsageWritten  # the day's daily_model_usage rows, priced


def _refuse_if_dropped(conn: sa.Connection, day: date) -> None:
    month = Month.of(day)
    dropped = conn.execute(
        sa.text(f"SELECT partition FROM {TELEMETRY_SCHEMA}.dropped_event_days WHERE day = :day"),
        {"day": day},
    ).scalar_one_or_none()
    if dropped is not None:  # recorded at the drop, also for events filed in another month
        raise RawEventsDropped(day, dropped)
    # A day older than every live partition: its month may have been dropped by hand
    # (or before the record existed), or never existed (a new database, whose late events
    # stamped earlier sit in newer partitions, filed by their id's time). It is rewritten
    # only when nothing stored would be lost: at least as many raw events as its stored
    # rows counted (none stored: nothing to lose). Fewer raw events mean history.
    live = list_partitions(conn)
    if not live or month < live[0]:
        lo, hi = day_bounds(day)
        stored, raw = conn.execute(
            sa.text(
                f"SELECT (SELECT coalesce(sum(events), 0) FROM {TABLE} WHERE day = :day), "
                f"(SELECT count(*) FROM {TELEMETRY_SCHEMA}.workflow_events "
                "WHERE ts >= :lo AND ts < :hi)"
            ),
            {"day": day, "lo": lo, "hi": hi},
        ).one()
        if not live or raw < stored:
            raise RawEventsDropped(day, f"{TELEMETRY_SCHEMA}.{month.table_name}")


def aggregate_day(conn: sa.Connection, day: date) -> DayWritten:
    """Replace ``day``'s aggregate rows, and its model-usage rows priced with the price
    table read in this transaction, inside the caller's transaction.

    Raises :class:`~sdk.usage.errors.RawEventsDropped`, before writing anything, when
    some of the day's raw events are gone. Holds retention's lock shared for the rest of
    the transaction, so no month can be dropped between that check and the commit, and
    the day's own lock, so two aggregations of one day run one after the other.
    """
    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock_shared({RETENTION_LOCK_KEY})")
    # Two runs of one day (the hourly refresh of today, an operator's re-run) would
    # each delete the day and insert it: the second insert would then fail on the
    # first's rows. They take turns; the later one wins with the fresher figures.
    conn.exec_driver_sql(
        f"SELECT pg_advisory_xact_lock({AGGREGATE_DAY_LOCK_CLASS}, {day.toordinal()})"
    )
    _refuse_if_dropped(conn, day)
    lo, hi = day_bounds(day)
    conn.execute(sa.text(f"DELETE FROM {TABLE} WHERE day = :day"), {"day": day})
    rows = conn.exec_driver_sql(_INSERT_SQL, {"day": day, "lo": lo, "hi": hi}).rowcount
    events = conn.execute(
        sa.text(f"SELECT coalesce(sum(events), 0) FROM {TABLE} WHERE day = :day"), {"day": day}
    ).scalar_one()
    # The book is read after the day's lock: a re-pricing of this day that committed
    # before is then never undone with an older table (see sdk.usage.pricing).
    usage = replace_day_usage(conn, day, lo, hi, load_book(conn))
    return DayWritten(day=day, rows=rows, events=int(events), usage=usage)
