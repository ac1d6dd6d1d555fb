"""Runs: the runs list (newest first, keyset pages) and one run with everything it did.

A run is listed from its ``workflow.run_started`` event: its start time, workflow and
item are that event's (the earliest one, if a run_started was stored twice). Its end
and status are its latest ``workflow.run_completed`` (``running`` while there is none);
its totals are summed over its ``workflow.step_completed`` events.

Costs here are what each step **emitted** (``cost_usd_est``, the SDK's estimate when it
ran; unknown steps counted): a run is read from its raw events, which are never changed.
The platform's priced cost of the same calls (the dated price table, re-priced when a
price is corrected) is per day and grouping, in the usage report (:mod:`sdk.usage.usage`).
A step's own ``calls`` (event_version 2) are shown as the event carries them, with the
provider-reported cost where a call gave one.

Why a page costs index lookups and not a scan: the page walks the ``(event_name, ts)``
index of each monthly partition backwards from the cursor and stops after ``limit + 1``
runs; each run's end, totals and "is this its first run_started" are lookups in the
``(run_id, ts)`` index. The cursor is the last run's ``(started_at, run_id)``, and the
order is exactly that pair, so runs inserted between two page fetches are either newer
than the cursor (never on later pages) or started before it (late events of an old run)
- no run that existed at the first fetch is skipped or repeated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sdk.artifacts.links import RunArtifact, run_artifacts
from sdk.db.queries import Query, Row, Statement
from sdk.db.schema import TELEMETRY_SCHEMA, workflow_events
from sdk.usage import params
from sdk.usage.aggregation import cost_is_unknown, payload_number
from sdk.usage.errors import RunNotFound
from sdk.usage.models import (
    RunDetail,
    RunPage,
    RunSummary,
    RunTotals,
)
from sdk.usage.run_events import LEARNING_PREFIX, STATE_CHANGED, STEP_COMPLETED, shape_events

EVENTS = f"{TELEMETRY_SCHEMA}.{workflow_events.name}"
RUN_STARTED = "workflow.run_started"
RUN_COMPLETED = "workflow.run_completed"
MAX_RUN_EVENTS = 10_000


# --- one run's summary: shared by the list and the detail ------------------------------

_SUMMARY_SELECT = f"""
SELECT s.run_id, s.workflow_name, s.item_id, s.ts AS started_at,
       s.event_name = '{RUN_STARTED}' AS start_recorded,
       c.ts AS ended_at, c.status, c.duration_ms, c.error_type, c.error_message,
       t.steps, t.errors, t.tokens_in, t.tokens_out, t.tokens_cached_in, t.cost_usd,
       t.cost_unknown_steps
"""

_END_JOIN = f"""
LEFT JOIN LATERAL (
  SELECT e.ts, e.payload->>'status' AS status, {payload_number("duration_ms", "e")} AS duration_ms,
         e.payload->>'error_type' AS error_type, e.payload->>'error_message' AS error_message
  FROM {EVENTS} e
  WHERE e.run_id = s.run_id AND e.event_name = '{RUN_COMPLETED}'
  ORDER BY e.ts DESC, e.event_id DESC
  LIMIT 1
) c ON true
"""

_TOTALS_JOIN = f"""
CROSS JOIN LATERAL (
  SELECT count(*) AS steps,
         count(*) FILTER (WHERE st.status = 'error') AS errors,
         coalesce(sum(st.tokens_in), 0) AS tokens_in,
         coalesce(sum(st.tokens_out), 0) AS tokens_out,
         coalesce(sum(st.tokens_cached_in), 0) AS tokens_cached_in,
         coalesce(sum(st.cost) FILTER (WHERE NOT st.unknown), 0) AS cost_usd,
         count(*) FILTER (WHERE st.unknown) AS cost_unknown_steps
  FROM (
    SELECT e.payload->>'status' AS status,
           {payload_number("tokens_in", "e")} AS tokens_in,
           {payload_number("tokens_out", "e")} AS tokens_out,
           {payload_number("tokens_cached_in", "e")} AS tokens_cached_in,
           {payload_number("cost_usd_est", "e")} AS cost, {cost_is_unknown("e")} AS unknown
    FROM {EVENTS} e
    WHERE e.run_id = s.run_id AND e.event_name = '{STEP_COMPLETED}'
  ) st
) t
"""

# Sums stay numeric, never bigint: each token count is below 2**63, their sum need not be.
_SUMMARY_JOINS = _END_JOIN + _TOTALS_JOIN

# The runs list's outer SELECT: the page's columns already carry the end (``c``'s).
_PAGE_SELECT = (
    """
SELECT s.run_id, s.workflow_name, s.item_id, s.ts AS started_at,
       s.event_name = '"""
    + RUN_STARTED
    + """' AS start_recorded,
       s.ended_at, s.status, s.duration_ms, s.error_type, s.error_message,
       t.steps, t.errors, t.tokens_in, t.tokens_out, t.tokens_cached_in, t.cost_usd,
       t.cost_unknown_steps
"""
)

# The runs that ended: one read of the run_completed events, for the status filters.
_ENDED = (
    f"SELECT e.run_id FROM {EVENTS} e "
    f"WHERE e.event_name = '{RUN_COMPLETED}' AND e.run_id IS NOT NULL"
)

# A run is listed once, at its earliest run_started (ties broken by event id).
_FIRST_START = f"""NOT EXISTS (
    SELECT 1 FROM {EVENTS} f
    WHERE f.run_id = s.run_id AND f.event_name = '{RUN_STARTED}'
      AND (f.ts < s.ts OR (f.ts = s.ts AND f.event_id < s.event_id)))"""


def _int(value: Any) -> int:
    return int(value) if value is not None else 0


def shape_summary(row: Row) -> RunSummary:
    started_at: datetime = row["started_at"]
    ended_at: datetime | None = row["ended_at"]
    duration = row["duration_ms"]
    if duration is None and ended_at is not None:
        duration = (ended_at - started_at).total_seconds() * 1000
    return RunSummary(
        run_id=row["run_id"],
        workflow_name=row["workflow_name"],
        item_id=row["item_id"],
        status=row["status"] if ended_at is not None and row["status"] else params.RUNNING,
        started_at=started_at,
        ended_at=ended_at,
        duration_ms=float(duration) if duration is not None else None,
        error_type=row["error_type"],
        error_message=row["error_message"],
        totals=RunTotals(
            steps=_int(row["steps"]),
            errors=_int(row["errors"]),
            tokens_in=_int(row["tokens_in"]),
            tokens_out=_int(row["tokens_out"]),
            tokens_cached_in=_int(row["tokens_cached_in"]),
            cost_usd=Decimal(row["cost_usd"] or 0),
            cost_unknown_steps=_int(row["cost_unknown_steps"]),
        ),
        start_recorded=bool(row["start_recorded"]),
    )


# --- the runs list ----------------------------------------------------------------------


@dataclass(frozen=True)
class RunsQuery:
    """Checked parameters of the runs list (build with :func:`runs_query`)."""

    workflow_name: str | None = None
    item_id: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = params.DEFAULT_PAGE
    cursor: params.Cursor | None = None


def runs_query(
    *,
    workflow_name: str | None = None,
    item_id: str | None = None,
    status: str | None = None,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    limit: int | str | None = None,
    cursor: str | None = None,
) -> RunsQuery:
    """Check the parameters (strings as a query string has them, or typed values);
    raises :class:`~sdk.usage.errors.InvalidQuery` naming every bad one."""
    problems = params.Problems()
    query = RunsQuery(
        workflow_name=params.text(problems, "workflow_name", workflow_name),
        item_id=params.text(problems, "item_id", item_id),
        status=params.choice(problems, "status", status, params.RUN_STATUSES),
        since=params.instant(problems, "since", since),
        until=params.instant(problems, "until", until),
        limit=params.integer(
            problems, "limit", limit, default=params.DEFAULT_PAGE, lo=1, hi=params.MAX_PAGE
        ),
        cursor=params.cursor(problems, "cursor", cursor),
    )
    if query.since is not None and query.until is not None and query.since > query.until:
        problems.add("since", "is after until")
    problems.check()
    return query


def runs_statement(query: RunsQuery) -> Statement:
    """The page's SQL: only the conditions the query uses, so each variant plans well."""
    where = [f"s.event_name = '{RUN_STARTED}'", "s.run_id IS NOT NULL"]
    values: dict[str, Any] = {"limit": query.limit + 1}
    if query.workflow_name is not None:
        where.append("s.workflow_name = %(workflow_name)s")
        values["workflow_name"] = query.workflow_name
    if query.item_id is not None:
        where.append("s.item_id = %(item_id)s")
        values["item_id"] = query.item_id
    if query.since is not None:
        where.append("s.ts >= %(since)s")
        values["since"] = query.since
    if query.until is not None:
        where.append("s.ts < %(until)s")
        values["until"] = query.until
    if query.cursor is not None:
        # ts <= first, so it bounds the index scan; then the exact keyset condition.
        where.append("s.ts <= %(after_ts)s")
        where.append("(s.ts < %(after_ts)s OR s.run_id < %(after_run)s)")
        values |= {"after_ts": query.cursor.started_at, "after_run": query.cursor.run_id}
    where.append(_FIRST_START)
    # A status filter may match few runs: walking every run and looking up its end
    # would then cost one index probe per run ever started. The set of runs that ended
    # (with that status) is read once instead, hashed, and the walk skips the others;
    # the latest end decides (c.status), the set only narrows the walk.
    if query.status == params.RUNNING:
        where.append(f"s.run_id NOT IN ({_ENDED})")
        where.append("c.ts IS NULL")
    elif query.status is not None:
        where.append(f"s.run_id IN ({_ENDED} AND e.payload->>'status' = %(status)s)")
        where.append("c.status = %(status)s")
        values["status"] = query.status
    # The page is chosen first, with only each candidate's end looked up (a status
    # filter needs it); the totals, which read every step of a run, are then summed for
    # the page's runs alone.
    page = (
        "SELECT s.run_id, s.workflow_name, s.item_id, s.ts, s.event_name, "
        "c.ts AS ended_at, c.status, c.duration_ms, c.error_type, c.error_message\n"
        f"FROM {EVENTS} s{_END_JOIN}WHERE "
        + "\n  AND ".join(where)
        + "\nORDER BY s.ts DESC, s.run_id DESC\nLIMIT %(limit)s"
    )
    sql = f"{_PAGE_SELECT}FROM (\n{page}\n) s{_TOTALS_JOIN}ORDER BY s.ts DESC, s.run_id DESC"
    return Statement(sql, values)


def shape_runs(query: RunsQuery, rows: Sequence[Row]) -> RunPage:
    runs = [shape_summary(r) for r in rows[: query.limit]]
    more = len(rows) > query.limit
    last = runs[-1] if more and runs else None
    next_cursor = params.Cursor(last.started_at, last.run_id).encode() if last else None
    return RunPage(runs=runs, next_cursor=next_cursor, limit=query.limit)


def list_runs(query: RunsQuery) -> Query[RunPage]:
    """One page of runs, newest first."""
    rows = yield runs_statement(query)
    return shape_runs(query, rows)


# --- one run ----------------------------------------------------------------------------


def run_id_param(run_id: str | None) -> str:
    """Check a run id the way the runs list checks its filters."""
    problems = params.Problems()
    checked = params.text(problems, "run_id", run_id)
    if checked is None and not problems.errors:
        problems.add("run_id", "is required")
    problems.check()
    assert checked is not None
    return checked


# The run's own start event, or its earliest event when no run_started was stored.
_SUMMARY_OF_ONE = f"""{_SUMMARY_SELECT}FROM (
  SELECT e.* FROM {EVENTS} e
  WHERE e.run_id = %(run_id)s
  ORDER BY e.event_name <> '{RUN_STARTED}', e.ts, e.event_id
  LIMIT 1
) s{_SUMMARY_JOINS}"""

_RUN_EVENTS = f"""
SELECT e.event_id, e.event_name, e.ts, e.item_id, e.agent_role, e.payload,
       CASE WHEN e.event_name = '{STEP_COMPLETED}' THEN {cost_is_unknown("e")} END AS cost_unknown,
       CASE WHEN e.event_name = '{STEP_COMPLETED}'
         THEN {payload_number("cost_usd_est", "e")} END AS cost
FROM {EVENTS} e
WHERE e.run_id = %(run_id)s
  AND (e.event_name IN ('{STEP_COMPLETED}', '{STATE_CHANGED}')
       OR starts_with(e.event_name, '{LEARNING_PREFIX}'))
ORDER BY e.ts, e.event_id
LIMIT %(limit)s
"""


def run_detail(run_id: str, *, max_events: int = MAX_RUN_EVENTS) -> Query[RunDetail]:
    """Everything about one run. Checks ``run_id`` at once (InvalidQuery); running the
    query raises :class:`~sdk.usage.errors.RunNotFound` for a run without events."""
    return _run_detail(run_id_param(run_id), max_events)


def _run_detail(run_id: str, max_events: int) -> Query[RunDetail]:
    summary_rows = yield Statement(_SUMMARY_OF_ONE, {"run_id": run_id})
    if not summary_rows:
        raise RunNotFound(run_id)
    event_rows = yield Statement(_RUN_EVENTS, {"run_id": run_id, "limit": max_events + 1})
    steps, changes, learning = shape_events(event_rows[:max_events])
    linked: list[RunArtifact] = yield from run_artifacts(run_id)
    return RunDetail(
        run=shape_summary(summary_rows[0]),
        steps=steps,
        state_changes=changes,
        learning_events=learning,
        artifacts=linked,
        truncated=len(event_rows) > max_events,
    )
