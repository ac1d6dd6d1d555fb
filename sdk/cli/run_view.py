"""How ``wdp runs show`` draws a run: summary lines, then steps, state changes, learning
events and artifacts, each a table that fits the terminal (:func:`sdk.cli.tables.print_table`).

The summary is key-value lines rather than a table, so the run id, the item id and
error messages are printed whole and unwrapped. Costs are what the steps emitted (the
SDK's estimate when they ran, on the raw events: ``est. cost``); the platform's priced
cost is per day, in ``wdp usage``. Steps that carry their model calls (event_version 2)
get a table of those calls, with every token kind that is not zero everywhere and the
provider's reported cost. Times in the tables are offsets from
the run's start (``+1.2s``); the JSON output (``--json``) has the exact timestamps.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from rich.console import Console
from rich.filesize import decimal
from rich.text import Text

from sdk.cli import reads, tables, timeline
from sdk.cli.reads import shown
from sdk.cli.tables import Column

if TYPE_CHECKING:
    from sdk.artifacts.links import RunArtifact
    from sdk.usage.models import LearningEvent, ModelCallView, RunDetail, StateChange, Step

PAYLOAD_VALUE_CHARS = 200  # each value of a learning event's payload; --json has all


def _line(console: Console, label: str, value: str | Text) -> None:
    text = Text(f"  {label:<9} ", style="bold")
    text.append(value if isinstance(value, Text) else Text(value))
    console.print(text, soft_wrap=True, highlight=False)


def _since(start: datetime, ts: datetime) -> str:
    return reads.offset((ts - start) / timedelta(milliseconds=1))


def print_run(console: Console, detail: RunDetail) -> None:
    run = detail.run
    start = run.started_at
    console.print(
        Text.assemble(("Run ", "bold"), shown(run.run_id)), soft_wrap=True, highlight=False
    )
    _line(console, "workflow", shown(run.workflow_name) or "-")
    _line(console, "item", shown(run.item_id) or "-")
    status = Text.assemble(
        (shown(run.status), reads.status_style(run.status)),
        f"  {shown(run.error_type)}: {shown(run.error_message)}" if run.error_type else "",
    )
    _line(console, "status", status)
    started = f"{reads.when(start, seconds=True)} UTC"
    if not run.start_recorded:
        started += " (no run_started stored: the run's earliest event)"
    _line(console, "started", started)
    if run.ended_at is not None:
        _line(
            console,
            "ended",
            f"{reads.when(run.ended_at, seconds=True)} UTC, took {reads.duration(run.duration_ms)}",
        )
    t = run.totals
    _line(console, "steps", f"{t.steps:,}" + (f" ({t.errors:,} failed)" if t.errors else ""))
    _line(console, "tokens", f"{t.tokens_in:,} in / {t.tokens_out:,} out")
    _line(console, "est. cost", reads.cost(t.cost_usd, t.cost_unknown_steps, "step"))
    if detail.truncated:
        console.print(
            "[yellow]only the run's first events are shown (the totals count every step); "
            "--json has the same limit[/yellow]"
        )
    _steps(console, detail)
    if detail.state_changes:
        console.print("\n[bold]State changes[/bold]")
        tables.print_table(console, _change_columns(start), detail.state_changes)
    if detail.learning_events:
        console.print("\n[bold]Learning events[/bold]")
        tables.print_table(console, _learning_columns(start), detail.learning_events)
    if detail.artifacts:
        console.print("\n[bold]Artifacts[/bold]")
        tables.print_table(console, _artifact_columns(detail.artifacts), detail.artifacts)
        console.print(
            Text(
                f"  content: wdp artifacts get {shown(detail.artifacts[0].artifact_id)}",
                style="dim",
            ),
            soft_wrap=True,
            highlight=False,
        )


# --- steps -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _StepRow:
    step: Step
    span: timeline.Span
    bar: Text


def _step_cost(row: _StepRow) -> str:
    s = row.step
    if s.cost_unknown or s.cost_usd is None:
        return "unknown"
    return reads.money(s.cost_usd)


def _step_number(row: _StepRow) -> str:
    """The step's number, and which attempt it was when it was a retry."""
    s = row.step
    number = "" if s.step is None else str(s.step)
    return f"{number} (try {s.attempt})" if s.attempt and s.attempt > 1 else number


def _step_columns(total_ms: float) -> list[Column[_StepRow]]:
    right = {"justify": "right"}
    return [
        Column("node", lambda r: shown(r.step.node) or "-"),
        Column("status", lambda r: reads.status_text(r.step.status)),
        Column("start", lambda r: reads.offset(r.span.start_ms), 3, right),
        Column("took", lambda r: reads.duration(r.step.duration_ms), 0, right),
        Column(f"time line ({reads.duration(total_ms)})", lambda r: r.bar, 2, {"no_wrap": True}),
        Column("est. cost", _step_cost, 1, right),
        Column(
            "tokens in/out", lambda r: f"{r.step.tokens_in:,} / {r.step.tokens_out:,}", 4, right
        ),
        Column("model", lambda r: shown(", ".join(r.step.models)), 5),
        Column("step", _step_number, 6, right),
        Column("role", lambda r: shown(r.step.agent_role), 7),
    ]


def _steps(console: Console, detail: RunDetail) -> None:
    run = detail.run
    if not detail.steps:
        console.print("\nno steps stored for this run", highlight=False)
        return
    spans = [timeline.step_span(run.started_at, s.ts, s.duration_ms) for s in detail.steps]
    total = max([s.end_ms for s in spans] + [run.duration_ms or 0.0])
    # The bar gets what a terminal of 100 columns or more leaves over the other columns.
    width = max(10, min(40, console.width - 90))
    rows = [
        _StepRow(step, span, timeline.bar_text(span, total, width, _bar_style(step.status)))
        for step, span in zip(detail.steps, spans, strict=True)
    ]
    console.print(f"\n[bold]Steps[/bold] ({len(rows):,})", highlight=False)
    tables.print_table(console, _step_columns(total), rows)
    _calls(console, rows)
    for row in rows:
        if row.step.status == "error" or row.step.error_type:
            console.print(
                Text.assemble(
                    ("  failed: ", "red"),
                    f"{shown(row.step.node)} at {reads.offset(row.span.start_ms)}: ",
                    f"{shown(row.step.error_type)}: {shown(row.step.error_message)}",
                ),
                soft_wrap=True,
                highlight=False,
            )


def _bar_style(status: str | None) -> str:
    return "red" if status == "error" else "cyan"


@dataclass(frozen=True)
class _CallRow:
    row: _StepRow
    call: ModelCallView


def _reported(c: _CallRow) -> str:
    if not c.call.usage_reported:
        return "no usage"
    reported = c.call.cost_usd_reported
    return "" if reported is None else reads.money(reported)


def _tokens_of(attr: str) -> Callable[[_CallRow], str]:
    return lambda c: f"{getattr(c.call, attr):,}"


def _calls(console: Console, rows: list[_StepRow]) -> None:
    """The steps' model calls, as their events reported them; token kinds that are zero
    in every call are left out."""
    calls = [_CallRow(r, c) for r in rows for c in r.step.calls or []]
    if not calls:
        return
    right = {"justify": "right"}
    columns: list[Column[_CallRow]] = [
        Column("node", lambda c: shown(c.row.step.node) or "-"),
        Column("start", lambda c: reads.offset(c.row.span.start_ms), 4, right),
        Column("model", lambda c: shown(c.call.model)),
        Column("provider", lambda c: shown(c.call.provider), 3),
        Column("in", lambda c: f"{c.call.tokens_in:,}", 0, right),
        Column("out", lambda c: f"{c.call.tokens_out:,}", 0, right),
    ]
    kinds = {
        "cached in": "tokens_cached_in",
        "cache write": "tokens_cache_write",
        "reasoning": "tokens_reasoning",
    }
    for n, (name, attr) in enumerate(kinds.items()):
        if any(getattr(c.call, attr) for c in calls):
            columns.append(Column(name, _tokens_of(attr), 5 + n, right))
    if any(c.call.cost_usd_reported is not None or not c.call.usage_reported for c in calls):
        columns.append(Column("reported cost", _reported, 1, right))
    console.print(f"\n[bold]Model calls[/bold] ({len(calls):,})", highlight=False)
    tables.print_table(console, columns, calls)


# --- state changes, learning events, artifacts ------------------------------------------


def _change_columns(start: datetime) -> list[Column[StateChange]]:
    return [
        Column("at", lambda c: _since(start, c.ts), 0, {"justify": "right"}),
        Column("from", lambda c: shown(c.from_state) or "-", 0),
        Column("to", lambda c: shown(c.to_state), 0),
        Column("node", lambda c: shown(c.node), 1),
        Column("reason", lambda c: shown(c.reason), 2, squeeze=20),
        Column("item", lambda c: shown(c.item_id), 3),
    ]


def _payload(event: LearningEvent) -> str:
    """``key=value`` for every value that is set; a long value (never an id: ids are
    at most 200 characters, and cut only beyond that) ends in an ellipsis."""
    parts = []
    for key, value in event.payload.items():
        if value is None:
            continue
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        if len(text) > PAYLOAD_VALUE_CHARS:
            text = text[: PAYLOAD_VALUE_CHARS - 1] + "…"
        parts.append(f"{key}={text}")
    return shown("  ".join(parts))


def _learning_columns(start: datetime) -> list[Column[LearningEvent]]:
    return [
        Column("at", lambda e: _since(start, e.ts), 0, {"justify": "right"}),
        Column("event", lambda e: shown(e.event_name), 0),
        Column("payload", _payload, 1, squeeze=30),
    ]


def _artifact_columns(links: list[RunArtifact]) -> list[Column[RunArtifact]]:
    return [
        tables.id_column("artifact_id", lambda a: a.artifact_id, [a.artifact_id for a in links]),
        Column("v", lambda a: str(a.version), 0, {"justify": "right"}),
        Column("type", lambda a: shown(a.type), 1),
        Column("link", lambda a: shown(a.link_type), 2),
        Column("title", lambda a: shown(a.title), 3, squeeze=20),
        Column("size", lambda a: decimal(a.size_bytes), 4, {"justify": "right"}),
        Column("mime", lambda a: shown(a.mime_type), 5),
    ]
