"""What Dagster shows of the aggregates: the tables' schemas, each day's figures and top spenders.

Numbers go in as Int/Float metadata because that is what the asset's **Plots** view draws,
one point per partition (day). The column schemas are built from
:data:`sdk.db.schema.daily_event_aggregates` and :data:`~sdk.db.schema.daily_model_usage`
themselves (their columns' ``doc``): the asset writes both tables, and the UI cannot
drift from either. Costs are the priced cost of the day's model calls, never shown
alone: every cost has its count of calls of unknown cost beside it, so a missing price
never reads as $0.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import dagster as dg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql.base import PGDialect

from sdk.db.schema import daily_event_aggregates, daily_model_usage
from sdk.usage.aggregation import TABLE
from sdk.usage.summary import MODEL_USAGE, SOURCES, DaySummary, Spend

TOP = 5  # rows per Markdown table
NONE_LABEL = "(none)"
_PUNCTUATION = re.compile(r"[!-/:-@\[-`{-~]")  # ASCII punctuation, as CommonMark counts it
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_POSTGRES = PGDialect()  # type: ignore[no-untyped-call]  # types as Postgres spells them

# The numeric entries of every materialisation, in the order the docs explain them.
NUMERIC_FIGURES = (
    "cost_usd",
    "cost_unknown_calls",
    "cost_computed_usd",
    "cost_reported_usd",
    "cost_estimate_usd",
    "calls",
    "tokens_in",
    "tokens_out",
    "tokens_cached_in",
    "tokens_cache_write",
    "tokens_reasoning",
    "events",
    "steps",
    "runs",
    "errors",
    "step_p95_ms",
)


def _column(column: sa.Column[object]) -> dg.TableColumn:
    other = ["part of the primary key"] if column.primary_key else []
    return dg.TableColumn(
        name=column.name,
        type=column.type.compile(dialect=_POSTGRES).lower(),
        description=column.doc,
        constraints=dg.TableColumnConstraints(nullable=bool(column.nullable), other=other),
    )


def column_schema(table: sa.Table = daily_event_aggregates) -> dg.TableSchema:
    """The table's columns, types, nullability and descriptions, as Dagster shows them."""
    key = ", ".join(c.name for c in table.primary_key.columns)
    return dg.TableSchema(
        columns=[_column(c) for c in table.columns],
        constraints=dg.TableConstraints(other=[f"primary key ({key})"]),
    )


def definition_metadata() -> dict[str, dg.MetadataValue[Any]]:
    """``dagster/table_name`` and ``dagster/column_schema`` of the asset definition (the
    keys of Dagster's ``TableMetadataSet``, which 1.13 does not export at top level), and
    the same for the second table the asset writes: Dagster knows one table per asset, so
    ``daily_model_usage`` has keys of its own."""
    return {
        "dagster/table_name": dg.MetadataValue.text(TABLE),
        "dagster/column_schema": dg.MetadataValue.table_schema(column_schema()),
        "model_usage/table_name": dg.MetadataValue.text(MODEL_USAGE),
        "model_usage/column_schema": dg.MetadataValue.table_schema(
            column_schema(daily_model_usage)
        ),
    }


def usd(amount: Decimal) -> str:
    """``$1.2346``: four decimals, as small per-call costs need."""
    return f"${amount:,.4f}"


def cost_text(cost: Decimal, unknown: int) -> str:
    """A cost with its unknown-cost count: "$0.0300 + 1 call of unknown cost"."""
    if unknown == 0:
        return usd(cost)
    return f"{usd(cost)} + {unknown:,} call{'s' if unknown != 1 else ''} of unknown cost"


def markdown_text(text: str) -> str:
    """A name in a table cell, as plain text. Names are whatever agents sent: every ASCII
    punctuation character is backslash-escaped (CommonMark lets any of them be), so no
    name becomes an image (``![x](https://…)``, which the UI would fetch), a link, HTML,
    emphasis or a cell border; control characters (a newline would end the row) become
    spaces."""
    if not text:
        return NONE_LABEL
    return _CONTROLS.sub(" ", _PUNCTUATION.sub(r"\\\g<0>", text))


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _table(title: str, heads: list[str], rows: Iterable[list[str]], total: int) -> list[str]:
    rows = list(rows)
    lines = [f"**{title}**" + (f" (top {len(rows)} of {total})" if total > len(rows) else ""), ""]
    if not rows:
        return [*lines, "_no steps_", ""]
    lines.append("| " + " | ".join(heads) + " |")
    lines.append("|" + "---|" * len(heads))
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def _figures(spend: Spend) -> list[str]:
    return [
        _count(spend.steps),
        _count(spend.errors),
        _count(spend.calls),
        usd(spend.cost_usd),
        _count(spend.cost_unknown_calls),
        f"{spend.tokens_in:,} / {spend.tokens_out:,}",
    ]


FIGURE_HEADS = ["Steps", "Errors", "Calls", "Known cost", "Unknown-cost calls", "Tokens in / out"]


def _sources(summary: DaySummary) -> str:
    """`` (computed $0.0400, estimate $0.0100)``: the known cost by source."""
    parts = [
        f"{s} {usd(summary.cost_by_source[s])}" for s in SOURCES if summary.cost_by_source.get(s)
    ]
    return f" ({', '.join(parts)})" if parts else ""


def _some(parts: list[tuple[int, str]]) -> str:
    named = [f"{n:,} {what}" for n, what in parts if n]
    return f" ({', '.join(named)})" if named else ""


def _tokens(s: DaySummary) -> str:
    """``tokens 100 in (60 cached) / 20 out``: every kind that is not 0."""
    cache = [(s.tokens_cached_in, "cached"), (s.tokens_cache_write, "cache write")]
    reasoning = [(s.tokens_reasoning, "reasoning")]
    return f"tokens {s.tokens_in:,} in{_some(cache)} / {s.tokens_out:,} out{_some(reasoning)}"


def top_spend_markdown(summary: DaySummary, top: int = TOP) -> str:
    """The day's totals, then its top workflows, nodes and models by known cost."""
    p95 = "no steps" if summary.step_p95_ms is None else f"{summary.step_p95_ms:,.1f} ms"
    lines = [
        f"**{summary.day}**: {cost_text(summary.cost_usd, summary.cost_unknown_calls)}"
        f"{_sources(summary)}; {summary.steps:,} steps in {summary.runs:,} runs, "
        f"{summary.errors:,} errors; {summary.calls:,} model calls, {_tokens(summary)}; "
        f"step p95 {p95}.",
        "",
        "Known cost is the priced cost of the calls (computed: tokens x the price valid that "
        "day; reported: the provider's own figure; estimate: steps without per-call usage, at "
        "the cost they emitted). It is a lower bound: a call without a price adds nothing to "
        "it and one to its unknown-cost count. Models are those of the calls, so they have "
        "calls but no steps of their own (-).",
        "",
    ]
    lines += _table(
        "Workflows",
        ["Workflow", *FIGURE_HEADS],
        ([markdown_text(w.name), *_figures(w)] for w in summary.workflows[:top]),
        len(summary.workflows),
    )
    lines += _table(
        "Nodes",
        ["Workflow", "Node", *FIGURE_HEADS],
        (
            [markdown_text(n.workflow), markdown_text(n.name), *_figures(n)]
            for n in summary.nodes[:top]
        ),
        len(summary.nodes),
    )
    lines += _table(
        "Models",
        ["Model", *FIGURE_HEADS],
        ([markdown_text(m.name), *_figures(m)] for m in summary.models[:top]),
        len(summary.models),
    )
    return "\n".join(lines).rstrip() + "\n"


def day_metadata(summary: DaySummary, rows: int) -> dict[str, dg.MetadataValue[Any]]:
    """A materialisation's metadata: the numbers the Plots view draws, and the tables."""
    p95 = summary.step_p95_ms
    by_source = {
        f"cost_{s}_usd": dg.MetadataValue.float(float(summary.cost_by_source.get(s, 0)))
        for s in SOURCES
    }
    figures: dict[str, dg.MetadataValue[Any]] = {
        "cost_usd": dg.MetadataValue.float(float(summary.cost_usd)),
        "cost_unknown_calls": dg.MetadataValue.int(summary.cost_unknown_calls),
        **by_source,
        "calls": dg.MetadataValue.int(summary.calls),
        "tokens_in": dg.MetadataValue.int(summary.tokens_in),
        "tokens_out": dg.MetadataValue.int(summary.tokens_out),
        "tokens_cached_in": dg.MetadataValue.int(summary.tokens_cached_in),
        "tokens_cache_write": dg.MetadataValue.int(summary.tokens_cache_write),
        "tokens_reasoning": dg.MetadataValue.int(summary.tokens_reasoning),
        "events": dg.MetadataValue.int(summary.events),
        "steps": dg.MetadataValue.int(summary.steps),
        "runs": dg.MetadataValue.int(summary.runs),
        "errors": dg.MetadataValue.int(summary.errors),
        # No step, no percentile: null rather than a 0 that would plot as "instant".
        "step_p95_ms": dg.MetadataValue.null() if p95 is None else dg.MetadataValue.float(p95),
    }
    return {
        "day": dg.MetadataValue.text(str(summary.day)),
        "rows": dg.MetadataValue.int(rows),
        **figures,
        "top_spend": dg.MetadataValue.md(top_spend_markdown(summary)),
    }
