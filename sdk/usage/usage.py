"""Usage over a range of days, grouped by day, workflow, agent role, model and node.

A group's figures come from two tables, each for what it knows: steps, errors,
durations and runs from ``telemetry.daily_event_aggregates`` (one row per day and
grouping of events), calls, tokens and **priced** cost from
``telemetry.daily_model_usage`` (the model calls of each day, each priced from the dated
price table, or at the provider's reported cost, or - for a step without per-call usage
- at the estimate it emitted; a call with none of these is unknown: counted in
``cost_unknown_calls``, never $0). The cost the SDK emitted on each step stays on its raw
event; runs (:mod:`sdk.usage.runs`) show that one.

A day is answered from the stored tables when its rows there are final - computed
after the day ended (UTC), so no event of the day can be missing except a late one -
or are all that is left of it (no raw events: kept forever, so this answers after
retention too). The aggregation writes a day's rows in both tables in one transaction,
so the census reads the finality of a day from ``daily_event_aggregates`` alone. A day
is answered from the raw events - with :data:`sdk.usage.aggregation.GROUPED_SQL` and
:data:`sdk.usage.model_usage.MODEL_USAGE_SQL`, the very SELECTs the stored rows were
written with, the calls priced by :func:`sdk.usage.pricing.price_usage_row` with the
price book read in the same snapshot - when it is today, or has raw events but no final
rows (none yet, or rows of an hourly run before midnight while the run after it has not
happened). How many days one request computes live is bounded (``max_live_days``): each
is two passes over its events. Step rows of both kinds are rolled up by one SQL
(:func:`rollup_sql`), stored calls by :func:`calls_rollup_sql` and live calls, once
priced, by the same sums in Python, so a live day and the stored day it becomes report
the same figures (until a price changes: a stored day keeps the cost it was priced with
until it is re-priced).

Rows are merged per group in Python (:mod:`sdk.usage.usage_merge`) across the stored
part and each live day: sums
add up (the cost by its source: computed, reported, estimate; unknown calls counted),
``duration_max_ms`` is the max, and percentiles, which cannot be merged, are kept only
for a group that is a single aggregate row. Grouped by ``model``, step rows are keyed by
the step's ``model`` field (comma-joined for a step that called several models) and
call rows by each call's own model, so a multi-model step's steps and its calls' cost
appear under different groups. Rows written before migration 0005 (``aggregate_version``
1) did not record unknown costs, cached tokens or the max duration: a group with such a
row reports those (and the cache-write and reasoning tokens, recorded even later) as
None (never a partial count that would read as "none unknown") and counts the rows in
``legacy_rows``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from sdk.db.queries import Query, Row, Statement
from sdk.db.schema import (
    TELEMETRY_SCHEMA,
    daily_event_aggregates,
    daily_model_usage,
    workflow_events,
)
from sdk.prices.book import PriceBook
from sdk.prices.repository import book_query
from sdk.usage import params
from sdk.usage.aggregation import GROUPED_SQL, STEP_EVENT, day_bounds
from sdk.usage.errors import InvalidQuery
from sdk.usage.model_usage import MODEL_USAGE_SQL
from sdk.usage.models import UsageReport
from sdk.usage.pricing import PriceResolver, price_usage_row
from sdk.usage.runs import RUN_COMPLETED, RUN_STARTED
from sdk.usage.usage_merge import CALL_SUMS, CALLS, LIVE, STEPS, STORED, Part, shape_report

AGGREGATES = f"{TELEMETRY_SCHEMA}.{daily_event_aggregates.name}"
MODEL_USAGE = f"{TELEMETRY_SCHEMA}.{daily_model_usage.name}"
EVENTS = f"{TELEMETRY_SCHEMA}.{workflow_events.name}"
# A run has no single node, model or agent role: grouped by one, runs are not counted.
RUNLESS_KEYS = frozenset({"node", "model", "agent_role"})


@dataclass(frozen=True)
class UsageQuery:
    """Checked parameters of the usage report (build with :func:`usage_query`)."""

    from_day: date
    to_day: date
    group_by: tuple[str, ...]
    today: date
    max_live_days: int | None = None

    @property
    def counts_runs(self) -> bool:
        return not RUNLESS_KEYS & set(self.group_by)

    @property
    def days(self) -> list[date]:
        return [
            self.from_day + timedelta(days=i) for i in range((self.to_day - self.from_day).days + 1)
        ]


def usage_query(
    *,
    from_day: date | str | None = None,
    to_day: date | str | None = None,
    group_by: str | list[str] | tuple[str, ...] | None = None,
    today: date,
    max_live_days: int | None = None,
) -> UsageQuery:
    """Check the parameters; unset ``to_day`` is ``today``, unset ``from_day`` the
    sixth day before ``to_day`` (a week). Raises InvalidQuery naming every bad one.
    ``max_live_days``: most days computed from raw events (None: no bound); the report
    refuses a range with more (only the database knows which days they are)."""
    problems = params.Problems()
    lo = params.day(problems, "from", from_day)
    hi = params.day(problems, "to", to_day)
    keys = params.group_by(problems, "group_by", group_by)
    problems.check()
    hi = hi if hi is not None else min(today, params.LAST_DAY)
    if lo is None:
        first = date.min + timedelta(days=params.DEFAULT_USAGE_DAYS - 1)
        lo = hi - timedelta(days=params.DEFAULT_USAGE_DAYS - 1) if hi >= first else date.min
    if lo > hi:
        problems.add("from", f"is after to ({hi.isoformat()})")
    elif (hi - lo).days + 1 > params.MAX_USAGE_DAYS:
        problems.add(
            "to",
            f"the range covers {(hi - lo).days + 1} days; at most {params.MAX_USAGE_DAYS} "
            "are answered at once",
        )
    problems.check()
    return UsageQuery(
        from_day=lo, to_day=hi, group_by=keys, today=today, max_live_days=max_live_days
    )


# --- SQL --------------------------------------------------------------------------------

_STEP = f"a.event_name = '{STEP_EVENT}'"
_FIGURES = f"""
  count(*) FILTER (WHERE {_STEP}) AS step_rows,
  coalesce(sum(a.events) FILTER (WHERE {_STEP}), 0) AS steps,
  coalesce(sum(a.errors) FILTER (WHERE {_STEP}), 0) AS errors,
  max(a.duration_max_ms) FILTER (WHERE {_STEP}) AS duration_max_ms,
  max(a.duration_p50_ms) FILTER (WHERE {_STEP}) AS duration_p50_ms,
  max(a.duration_p95_ms) FILTER (WHERE {_STEP}) AS duration_p95_ms,
  count(*) FILTER (WHERE {_STEP} AND a.aggregate_version = 1) AS legacy_rows,
  coalesce(sum(a.distinct_runs) FILTER (WHERE a.event_name = '{RUN_STARTED}'), 0) AS runs,
  coalesce(sum(a.errors) FILTER (WHERE a.event_name = '{RUN_COMPLETED}'), 0) AS runs_failed"""


def rollup_sql(source: str, query: UsageQuery, *, where: str = "") -> str:
    """Roll aggregate-shaped rows (``source``, aliased ``a``: the stored table or
    GROUPED_SQL's output) up to the query's groups. Step figures from step rows only;
    ``where``: a further condition on ``a``."""
    keys = ", ".join(f"a.{k}" for k in query.group_by)
    names = [STEP_EVENT, RUN_STARTED, RUN_COMPLETED] if query.counts_runs else [STEP_EVENT]
    listed = ", ".join(f"'{n}'" for n in names)
    conditions = [f"a.event_name IN ({listed})", *([where] if where else [])]
    return (
        f"SELECT {keys + ',' if keys else ''}{_FIGURES}\nFROM {source}"
        f"\nWHERE {' AND '.join(conditions)}" + (f"\nGROUP BY {keys}" if keys else "")
    )


def calls_rollup_sql(query: UsageQuery) -> str:
    """Roll stored ``daily_model_usage`` rows (aliased ``u``) of ``%(stored_days)s`` up to
    the query's groups and each cost source (``model``: the calls' model)."""
    keys = [f"u.{k}" for k in query.group_by]
    by = ", ".join([*keys, "u.cost_source"])
    sums = ", ".join(f"sum(u.{c}) AS {c}" for c in CALL_SUMS)
    return (
        f"SELECT {by}, {sums}, sum(u.cost_usd) AS cost_usd\nFROM {MODEL_USAGE} u"
        f"\nWHERE u.day = ANY(%(stored_days)s::date[])\nGROUP BY {by}"
    )


# Per day: has it stored rows, are they final (all computed after the day ended: a day
# is replaced in one transaction, so its rows share one computed_at), and - asked only
# for the days that may be computed live: today and the days without final rows - has
# it raw events to compute from. ``unpriced``: stored step rows that called something
# billable without any model usage row of the day: aggregated by code that did not
# write daily_model_usage (a day that must be re-materialised; its cost is not shown).
CENSUS_SQL = f"""
SELECT d.day, d.computed_at IS NOT NULL AS stored, coalesce(d.computed_at >= d.hi, false) AS final,
       CASE WHEN d.day = %(today)s OR NOT coalesce(d.computed_at >= d.hi, false) THEN EXISTS (
         SELECT 1 FROM {EVENTS} e
         WHERE e.event_name IN ('{STEP_EVENT}', '{RUN_STARTED}', '{RUN_COMPLETED}')
           AND e.ts >= d.lo AND e.ts < d.hi) END AS raw,
       d.computed_at IS NOT NULL AND NOT EXISTS (
         SELECT 1 FROM {MODEL_USAGE} u WHERE u.day = d.day) AND EXISTS (
         SELECT 1 FROM {AGGREGATES} s
         WHERE s.day = d.day AND s.event_name = '{STEP_EVENT}'
           AND (s.model <> '' OR s.tokens_in > 0 OR s.tokens_out > 0 OR s.cost_usd > 0
                OR s.cost_unknown_steps > 0)) AS unpriced
FROM (
  SELECT u.day, u.lo, u.hi,
         (SELECT min(s.computed_at) FROM {AGGREGATES} s WHERE s.day = u.day) AS computed_at
  FROM unnest(%(days)s::date[], %(los)s::timestamptz[], %(his)s::timestamptz[]) AS u(day, lo, hi)
) d
ORDER BY d.day
"""


def census_statement(query: UsageQuery) -> Statement:
    days = query.days
    bounds = [day_bounds(d) for d in days]
    return Statement(
        CENSUS_SQL,
        {
            "today": query.today,
            "days": days,
            "los": [lo for lo, _ in bounds],
            "his": [hi for _, hi in bounds],
        },
    )


def stored_statement(query: UsageQuery, days: Sequence[date]) -> Statement:
    sql = rollup_sql(f"{AGGREGATES} a", query, where="a.day = ANY(%(stored_days)s::date[])")
    return Statement(sql, {"stored_days": list(days)})


def stored_calls_statement(query: UsageQuery, days: Sequence[date]) -> Statement:
    return Statement(calls_rollup_sql(query), {"stored_days": list(days)})


def live_statement(query: UsageQuery, day: date) -> Statement:
    lo, hi = day_bounds(day)
    return Statement(rollup_sql(f"({GROUPED_SQL}) a", query), {"day": day, "lo": lo, "hi": hi})


def live_calls_statement(day: date) -> Statement:
    """The day's model usage rows as the aggregation would store them, not priced yet."""
    lo, hi = day_bounds(day)
    return Statement(MODEL_USAGE_SQL, {"day": day, "lo": lo, "hi": hi})


def priced_rows(rows: Sequence[Row], prices: PriceResolver, day: date) -> list[Row]:
    """Live model usage rows with the cost the aggregation would store for them."""
    priced = []
    for row in rows:
        p = price_usage_row(row, prices, day)
        priced.append({**row, "cost_usd": p.cost_usd, "cost_source": p.cost_source})
    return priced


def _is_live(query: UsageQuery, row: Row) -> bool:
    return bool(row["raw"]) and (row["day"] == query.today or not row["final"])


def usage_report(query: UsageQuery) -> Query[UsageReport]:
    """The report: a census of the days, the stored part, then each live day.

    A day is live when it has raw events and is today or has no final rows; stored when
    it has rows and is not live (rows that are not final but all that is left of the day
    - its raw events are gone - are still what there is). Raises InvalidQuery (field
    ``from``) when more than ``query.max_live_days`` days would be computed live. The
    price book, needed only to price live days, is read in the same snapshot."""
    census = yield census_statement(query)
    live = [r["day"] for r in census if _is_live(query, r)]
    stored = [
        r["day"]
        for r in census
        if r["stored"] and r["day"] != query.today and not _is_live(query, r)
    ]
    if query.max_live_days is not None and len(live) > query.max_live_days:
        raise InvalidQuery({"from": _too_many_live(query, live)})
    parts: list[Part] = []
    if stored:
        parts.append(Part(STORED, STEPS, (yield stored_statement(query, stored))))
        parts.append(Part(STORED, CALLS, (yield stored_calls_statement(query, stored))))
    if live:
        book: PriceBook = yield from book_query()
        prices = PriceResolver(book)  # one lookup per model and price epoch
        for day in live:
            parts.append(Part(LIVE, STEPS, (yield live_statement(query, day))))
            rows = yield live_calls_statement(day)
            parts.append(Part(LIVE, CALLS, priced_rows(rows, prices, day)))
    unpriced = [r["day"] for r in census if r["unpriced"] and r["day"] in set(stored)]
    if query.from_day <= query.today <= query.to_day:
        live = sorted({*live, query.today})  # live even without events: never stale rows
    return shape_report(query, parts, stored, live, unpriced)


def _too_many_live(query: UsageQuery, live: Sequence[date]) -> str:
    past = [d.isoformat() for d in live if d != query.today]
    shown = ", ".join(past[:10]) + (f" and {len(past) - 10} more" if len(past) > 10 else "")
    return (
        f"the range has {len(live)} days to compute from raw events, at most "
        f"{query.max_live_days} are computed per request: materialise the days without final "
        f"aggregates ({shown}) of the daily_event_aggregates asset in Dagster (a backfill), "
        "or ask for a narrower range"
    )
