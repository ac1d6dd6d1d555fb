"""``wdp usage``: steps, tokens and cost over the last days, by day or by what ran them.

Answered by the read API's usage report (:mod:`sdk.usage.usage`): stored days from the
daily aggregates (kept forever), today and days not aggregated yet computed live from
the raw events; ``--json`` prints the API's response body. What the table shows:

* One row per day by default (``--by day``). ``--by`` replaces the grouping rather than
  adding to it: ``--by node`` is one row per node over the whole period, the question
  "what did each node cost this week"; ``--by day,node`` splits each day. Groupings
  other than by day are ordered by cost, the most expensive first.
* A cost is the platform's **priced** cost of the model calls (the dated price table,
  or the provider's reported cost; for steps without per-call usage, the estimate they
  emitted), and the count of calls without one: ``≥ $0.0123 + 3 unknown calls``, never
  a bare sum that would read as "$0". ``+ ? unknown``: the group includes version-1
  aggregate rows, which did not count them. ``cost from`` (shown when the costs come
  from more than one source) says which share of each known cost was computed,
  reported or estimated; the legend gives the total per source unless every known cost
  was computed from prices.
* ``calls`` counts model calls; cache-write and reasoning tokens appear when there are
  any. Grouped by model, calls, tokens and cost are under each call's model, steps under
  the step's model field (comma-joined for a step that called several).
* ``data`` says where each row comes from: ``stored`` (aggregates), ``live`` (raw
  events, now: today, or a day not aggregated yet) or ``mixed``.
* Runs are counted only when grouping by day and/or workflow: a run has no single node,
  model or role.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from sdk.cli import reads, tables
from sdk.cli.reads import shown
from sdk.cli.tables import Column

if TYPE_CHECKING:
    from sdk.usage.models import UsageFigures, UsageReport
    from sdk.usage.usage import UsageQuery

# --by names (the API's names are accepted too) -> the report's grouping keys.
ALIASES = {"workflow": "workflow_name", "role": "agent_role", "agent": "agent_role"}
HEADERS = {
    "day": "day",
    "workflow_name": "workflow",
    "agent_role": "role",
    "model": "model",
    "node": "node",
}
OPTIONS = {"days": "--days", "from": "--from", "to": "--to", "group_by": "--by"}
NONE = "(none)"
SOURCES = ("computed", "reported", "estimate")  # sdk.usage.models.COST_SOURCES


def usage(
    days: str | None = typer.Option(
        None,
        "--days",
        "-d",
        help="The last N days, today (UTC) included: 1-366, default 7.",
        metavar="N",
    ),
    by: Annotated[
        list[str] | None,
        typer.Option(
            "--by",
            "-b",
            help="Group by day (default), workflow, node, model or role: comma-separated or "
            "repeated, e.g. --by day,node. --by '' gives the totals only.",
            metavar="KEYS",
        ),
    ] = None,
    from_day: str | None = typer.Option(
        None, "--from", help="The first day, YYYY-MM-DD (instead of --days).", metavar="DAY"
    ),
    to_day: str | None = typer.Option(
        None, "--to", help="The last day, YYYY-MM-DD (default: today, UTC).", metavar="DAY"
    ),
    as_json: bool = typer.Option(
        False, "--json", help="The read API's JSON (groups, totals, days) instead of a table."
    ),
) -> None:
    """Steps, calls, tokens and priced cost per day, workflow, node, model or role (calls
    without a price counted, never $0)."""
    from sdk.usage.errors import InvalidQuery
    from sdk.usage.usage import usage_report

    try:
        query = _query(days, by, from_day, to_day)
    except InvalidQuery as exc:
        reads.refuse(exc, OPTIONS)
    report = reads.answer(usage_report(query), tables="telemetry tables")
    if as_json:
        reads.print_json(report.as_json())
        return
    print_report(Console(), query, report)


def _query(
    days: str | None, by: list[str] | None, from_day: str | None, to_day: str | None
) -> UsageQuery:
    """The report's query: --days is counted back from --to (default today)."""
    from sdk.usage import params
    from sdk.usage.usage import usage_query

    problems = params.Problems()
    count = params.integer(
        problems, "days", days, default=params.DEFAULT_USAGE_DAYS, lo=1, hi=params.MAX_USAGE_DAYS
    )
    if days is not None and from_day is not None:
        problems.add("days", "give --days or --from, not both")
    last = params.day(problems, "to", to_day)
    keys = None
    if by is not None:
        keys = [ALIASES.get(k.strip(), k.strip()) for v in by for k in v.split(",") if k.strip()]
        unknown = [k for k in keys if k not in params.GROUP_KEYS]
        if unknown:  # named as this command line names them
            problems.add(
                "group_by",
                f"unknown grouping {shown(unknown[0])[:40]!r}: use day, workflow, node, model "
                "or role (comma-separated, or --by repeated)",
            )
    problems.check()
    today = datetime.now(UTC).date()
    end = last or today
    first: date | str | None = from_day
    if first is None:
        first = date.fromordinal(max(end.toordinal() - (count - 1), 1))
    return usage_query(from_day=first, to_day=end, group_by=keys, today=today)


# --- the table ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Row:
    key: dict[str, Any]
    figures: UsageFigures
    source: str
    total: bool = False


def _key(row: _Row, *, name: str, first: bool) -> str | Text:
    if row.total:
        return "total" if first else ""
    value = row.key.get(name)
    if value is None:
        return Text(NONE, style="dim")
    return value.isoformat() if isinstance(value, date) else shown(value)


def _source(row: _Row, today: date) -> str | Text:
    if row.total:
        return ""
    if row.key.get("day") == today:
        return Text("live (today)", style="yellow")
    return Text(row.source, style="yellow" if row.source != "stored" else "")


def _cost(row: _Row) -> str:
    return reads.cost(row.figures.cost_usd, row.figures.cost_unknown_calls, "call")


def _mix(figures: UsageFigures) -> str:
    """Which sources the known cost came from: ``computed 75%, estimate 25%``."""
    parts = [(s, figures.cost_usd_by_source.get(s, Decimal(0))) for s in SOURCES]
    known = [(s, usd) for s, usd in parts if usd]
    if len(known) == 1 or not figures.cost_usd.is_finite():
        return known[0][0] if known else ""
    return ", ".join(f"{s} {usd / figures.cost_usd:.0%}" for s, usd in known)


def _sources(report: UsageReport) -> list[str]:
    """The sources the report's known cost came from."""
    return [s for s in SOURCES if report.totals.cost_usd_by_source.get(s)]


def _any(report: UsageReport, kind: str) -> bool:
    """Does some group have tokens of ``kind`` (None, not recorded, is not some)."""
    return any(getattr(g.figures, kind) for g in report.groups)


def _columns(report: UsageReport, today: date) -> list[Column[_Row]]:
    right = {"justify": "right"}
    f = report.totals
    columns: list[Column[_Row]] = []
    for n, name in enumerate(report.group_by):
        columns.append(Column(HEADERS[name], functools.partial(_key, name=name, first=n == 0)))
    if not report.group_by:
        columns.append(Column("", lambda r: "total"))
    columns.append(Column("cost", _cost, 0, right))
    if len(_sources(report)) > 1:  # one source: the legend says which
        columns.append(Column("cost from", lambda r: _mix(r.figures), 9))
    if f.runs is not None:
        columns.append(Column("runs", lambda r: reads.count(r.figures.runs), 3, right))
        columns.append(Column("failed", lambda r: reads.count(r.figures.runs_failed), 5, right))
    columns += [
        Column("steps", lambda r: reads.count(r.figures.steps), 1, right),
        Column("errors", lambda r: reads.count(r.figures.errors), 4, right),
        Column("calls", lambda r: reads.count(r.figures.calls), 6, right),
        Column("tokens in/out", lambda r: f"{r.figures.tokens_in:,} / {r.figures.tokens_out:,}",
               2, right),
    ]  # fmt: skip
    if f.tokens_cached_in is None or f.tokens_cached_in:
        columns.append(Column("cached in", lambda r: reads.count(r.figures.tokens_cached_in),
                              7, right))  # fmt: skip
    if _any(report, "tokens_cache_write"):
        columns.append(Column("cache write", lambda r: reads.count(r.figures.tokens_cache_write),
                              8, right))  # fmt: skip
    if _any(report, "tokens_reasoning"):
        columns.append(Column("reasoning", lambda r: reads.count(r.figures.tokens_reasoning),
                              8, right))  # fmt: skip
    columns.append(Column("slowest step", lambda r: reads.duration(r.figures.duration_max_ms),
                          6, right))  # fmt: skip
    if any(g.figures.duration_p95_ms is not None for g in report.groups):
        columns.append(Column("p95 step", lambda r: reads.duration(r.figures.duration_p95_ms),
                              8, right))  # fmt: skip
    if f.legacy_rows:
        columns.append(Column("v1 rows", lambda r: reads.count(r.figures.legacy_rows), 0, right))
    columns.append(Column("data", lambda r: _source(r, today), 0))
    return columns


def print_report(console: Console, query: UsageQuery, report: UsageReport) -> None:
    days = (report.to_day - report.from_day).days + 1
    by = ", ".join(HEADERS[k] for k in report.group_by) or "nothing (totals only)"
    console.print(
        Text.assemble(
            ("Usage ", "bold"),
            f"{report.from_day.isoformat()} to {report.to_day.isoformat()} "
            f"({days} day{'s' if days != 1 else ''}, UTC), by {by}",
        ),
        soft_wrap=True,
        highlight=False,
    )
    if not report.groups:
        console.print("no steps or runs recorded in these days", highlight=False)
        return
    groups = report.groups
    if "day" not in report.group_by:  # the most expensive first
        groups = sorted(
            groups, key=lambda g: (-g.figures.cost_usd, -(g.figures.cost_unknown_calls or 0))
        )
    rows = [_Row(g.key, g.figures, g.source) for g in groups]
    if report.group_by:
        rows.append(_Row({}, report.totals, "", total=True))
    tables.print_table(
        console,
        _columns(report, query.today),
        rows,
        row_style=lambda r: "bold" if r.total else "",
    )
    _legend(console, query, report)


def _legend(console: Console, query: UsageQuery, report: UsageReport) -> None:
    lines = []
    late = [d for d in report.live_days if d != query.today]
    today = "today, and " if query.from_day <= query.today <= query.to_day else ""
    if late:
        shown_days = ", ".join(d.isoformat() for d in late[:5]) + (", ..." if len(late) > 5 else "")
        lines.append(
            f"live: computed now from raw events: {today}{len(late)} day(s) without final "
            f"aggregates ({shown_days}); stored: from the daily aggregates"
        )
    elif today:
        lines.append(
            "live (today): computed now from raw events; stored: from the daily aggregates"
        )
    totals = report.totals
    if _sources(report) not in ([], ["computed"]):
        by = ", ".join(
            f"{s} {reads.money(totals.cost_usd_by_source[s])}"
            for s in SOURCES
            if totals.cost_usd_by_source.get(s)
        )
        lines.append(
            f"cost from: {by} (computed: tokens x the price of the day; reported: the "
            "provider's figure; estimate: steps without per-call usage, at the cost they emitted)"
        )
    unknown = totals.cost_unknown_calls
    if unknown is None or unknown:
        lines.append(
            "unknown: model calls without a price on their day (or that reported no usage), "
            "not in the $ sum: add a price (wdp prices set) and re-price the day"
        )
    for line in lines:
        console.print(Text(line, style="dim"), highlight=False)
    for note in report.notes:
        console.print(Text(shown(note), style="yellow"), highlight=False)
