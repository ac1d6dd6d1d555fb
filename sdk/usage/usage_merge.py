"""The usage report's merge: rolled-up rows of each part, summed per group in Python.

The rules (:mod:`sdk.usage.usage` says why): step rows add their sums, the max duration
is the max, percentiles survive only for a group that is a single aggregate row; call
rows add their calls and tokens, their known cost by source (computed, reported,
estimate) and their unknown calls; rows written before migration 0005 make the figures
they did not record None for their group.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sdk.db.queries import Row
from sdk.usage.models import COST_SOURCES, UsageFigures, UsageGroup, UsageReport

if TYPE_CHECKING:
    from sdk.usage.usage import UsageQuery

STORED, LIVE, MIXED = "stored", "live", "mixed"
STEPS, CALLS = "steps", "calls"  # the two kinds of rows a part holds
UNKNOWN = "unknown"  # the cost_source of a call without a cost
# What a call row adds to its group, summed (the cost, by source, apart).
CALL_SUMS = (
    "calls",
    "tokens_in",
    "tokens_cached_in",
    "tokens_cache_write",
    "tokens_out",
    "tokens_reasoning",
)


_SUMMED = (
    "step_rows",
    "steps",
    "errors",
    "legacy_rows",
    "runs",
    "runs_failed",
)


@dataclass
class _Acc:
    """A group's figures while rows are merged into it (rules: the module docstring)."""

    sources: set[str]
    step_rows: int = 0
    steps: int = 0
    errors: int = 0
    duration_max_ms: float | None = None
    duration_p50_ms: float | None = None
    duration_p95_ms: float | None = None
    legacy_rows: int = 0
    runs: int = 0
    runs_failed: int = 0
    calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    tokens_cached_in: int = 0
    tokens_cache_write: int = 0
    tokens_reasoning: int = 0
    cost_unknown_calls: int = 0
    by_source: dict[str, Decimal] = field(
        default_factory=lambda: {s: Decimal(0) for s in COST_SOURCES}
    )

    @classmethod
    def of_row(cls, row: Row, source: str) -> _Acc:
        """One rolled-up step row of one part (the stored days, or one live day)."""
        acc = cls(
            sources={source},
            duration_max_ms=_float(row["duration_max_ms"]),
            duration_p50_ms=_float(row["duration_p50_ms"]),
            duration_p95_ms=_float(row["duration_p95_ms"]),
        )
        for name in _SUMMED:
            setattr(acc, name, int(row[name] or 0))
        return acc

    def add_calls(self, row: Row, source: str) -> None:
        """A call row: stored ones rolled up per cost source, live ones priced."""
        self.sources.add(source)
        for name in CALL_SUMS:
            setattr(self, name, getattr(self, name) + int(row[name] or 0))
        if row["cost_source"] == UNKNOWN:
            self.cost_unknown_calls += int(row["calls"] or 0)
        else:
            self.by_source[row["cost_source"]] += Decimal(row["cost_usd"] or 0)

    def merge(self, other: _Acc) -> None:
        if other.step_rows:  # a single row's percentiles survive only while it stays single
            self.duration_p50_ms, self.duration_p95_ms = (
                other.duration_p50_ms,
                other.duration_p95_ms,
            )
        for name in (*_SUMMED, *CALL_SUMS, "cost_unknown_calls"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name, usd in other.by_source.items():
            self.by_source[name] += usd
        self.sources |= other.sources
        if other.duration_max_ms is not None:
            current = self.duration_max_ms
            longest = other.duration_max_ms
            self.duration_max_ms = longest if current is None else max(current, longest)

    def figures(self, *, counts_runs: bool) -> UsageFigures:
        single = self.step_rows == 1
        complete = self.legacy_rows == 0  # else: not recorded by some row
        return UsageFigures(
            steps=self.steps,
            errors=self.errors,
            calls=self.calls,
            tokens_in=self.tokens_in,
            tokens_out=self.tokens_out,
            tokens_cached_in=self.tokens_cached_in if complete else None,
            tokens_cache_write=self.tokens_cache_write if complete else None,
            tokens_reasoning=self.tokens_reasoning if complete else None,
            cost_usd=sum(self.by_source.values(), Decimal(0)),
            cost_unknown_calls=self.cost_unknown_calls if complete else None,
            cost_usd_by_source=dict(self.by_source),
            duration_max_ms=self.duration_max_ms if complete else None,
            duration_p50_ms=self.duration_p50_ms if single else None,
            duration_p95_ms=self.duration_p95_ms if single else None,
            runs=self.runs if counts_runs else None,
            runs_failed=self.runs_failed if counts_runs else None,
            legacy_rows=self.legacy_rows,
        )

    def source(self) -> str:
        return next(iter(self.sources)) if len(self.sources) == 1 else MIXED


def _float(value: Any) -> float | None:
    return float(value) if value is not None else None


def _key(query: UsageQuery, row: Row) -> tuple[Any, ...]:
    # '' is the aggregates' "none" (it can be part of their key): None to readers.
    return tuple(row[k] if row[k] != "" else None for k in query.group_by)


def _sort_key(key: tuple[Any, ...]) -> list[tuple[bool, Any]]:
    # None last within each key part. A list comprehension: this runs once per group
    # (1,200 for a month by day and node), where a generator costs twice as much.
    return [(part is None, "" if part is None else part) for part in key]


@dataclass(frozen=True)
class Part:
    """Rolled-up rows of the stored days or of one live day: step rows, or call rows."""

    source: str  # STORED or LIVE
    kind: str  # STEPS or CALLS
    rows: Sequence[Row]


def shape_report(
    query: UsageQuery,
    parts: Sequence[Part],
    stored_days: list[date],
    live_days: list[date],
    unpriced_days: Sequence[date] = (),
) -> UsageReport:
    """Merge the rolled-up rows of each part into the report."""
    groups: dict[tuple[Any, ...], _Acc] = {}
    for part in parts:
        for row in part.rows:
            if part.kind == CALLS:
                groups.setdefault(_key(query, row), _Acc(set())).add_calls(row, part.source)
                continue
            if not row["step_rows"] and not row["runs"] and not row["runs_failed"]:
                continue  # an empty rollup (no grouping keys, no rows)
            groups.setdefault(_key(query, row), _Acc(set())).merge(_Acc.of_row(row, part.source))
    total = _Acc(set())
    for acc in groups.values():
        total.merge(acc)
    report_groups = [
        UsageGroup(
            key=dict(zip(query.group_by, key, strict=True)),
            figures=acc.figures(counts_runs=query.counts_runs),
            source=acc.source(),
        )
        for key, acc in sorted(groups.items(), key=lambda item: _sort_key(item[0]))
    ]
    totals = total.figures(counts_runs=query.counts_runs)
    notes = []
    if totals.legacy_rows:
        notes.append(
            f"{totals.legacy_rows} aggregate rows were written before migration 0005 "
            "(aggregate_version 1): they recorded no node (their steps are under node "
            "null), no unknown-cost count, no cached, cache-write or reasoning tokens and "
            "no max duration, so those figures are null wherever such a row is included."
        )
    if unpriced_days:
        notes.append(
            f"{len(unpriced_days)} stored day(s) have step aggregates but no model usage "
            f"rows ({', '.join(d.isoformat() for d in unpriced_days[:10])}"
            f"{', ...' if len(unpriced_days) > 10 else ''}): they were aggregated before "
            "calls were priced, so their calls, tokens and cost are missing here, not 0. "
            "Re-materialise them (daily_event_aggregates in Dagster) while their raw "
            "events exist."
        )
    return UsageReport(
        from_day=query.from_day,
        to_day=query.to_day,
        group_by=query.group_by,
        groups=report_groups,
        totals=totals,
        stored_days=stored_days,
        live_days=live_days,
        notes=notes,
    )
