"""What the run and usage queries return: plain dataclasses, and their one JSON shape.

``as_json()`` is the shape the read API answers with and ``wdp … --json`` prints, so the
two cannot drift. Money is a ``Decimal`` here (Postgres ``numeric`` sums, exact) and a
JSON number there. A cost is always accompanied by the count of steps whose cost was
unknown: a sum of known costs alone would read as "$0" for steps nobody could price.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any


def _iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _money(value: Decimal | None) -> float | None:
    return float(value) if value is not None else None


@dataclass(frozen=True)
class RunTotals:
    """Figures summed over a run's ``workflow.step_completed`` events."""

    steps: int
    errors: int
    tokens_in: int
    tokens_out: int
    tokens_cached_in: int  # of tokens_in; steps that did not report it count 0
    cost_usd: Decimal  # known costs only
    cost_unknown_steps: int  # steps without a price: not in cost_usd

    def as_json(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "errors": self.errors,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "tokens_cached_in": self.tokens_cached_in,
            "cost_usd": _money(self.cost_usd),
            "cost_unknown_steps": self.cost_unknown_steps,
        }


@dataclass(frozen=True)
class RunSummary:
    """One run: its start, its end as ``workflow.run_completed`` reported it, its totals.

    ``status`` is the run_completed status (succeeded, failed, cancelled, interrupted),
    or ``running`` while none is stored. ``start_recorded`` is false for a run without a
    stored ``workflow.run_started`` (its earliest event stands in; such a run is not
    listed by the runs query, only found by id).
    """

    run_id: str
    workflow_name: str | None
    item_id: str | None
    status: str
    started_at: datetime
    ended_at: datetime | None
    duration_ms: float | None
    error_type: str | None
    error_message: str | None
    totals: RunTotals
    start_recorded: bool = True

    def as_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "workflow_name": self.workflow_name,
            "item_id": self.item_id,
            "status": self.status,
            "started_at": _iso(self.started_at),
            "ended_at": _iso(self.ended_at),
            "duration_ms": self.duration_ms,
            "error_type": self.error_type,
            "error_message": self.error_message,
            "start_recorded": self.start_recorded,
            "totals": self.totals.as_json(),
        }


@dataclass(frozen=True)
class RunPage:
    """Runs newest first; ``next_cursor`` fetches the next (older) page, None at the end."""

    runs: list[RunSummary]
    next_cursor: str | None
    limit: int

    def as_json(self) -> dict[str, Any]:
        return {
            "runs": [r.as_json() for r in self.runs],
            "next_cursor": self.next_cursor,
            "limit": self.limit,
        }


@dataclass(frozen=True)
class Step:
    """One ``workflow.step_completed`` event: one execution (attempt) of one node."""

    event_id: str
    ts: datetime
    node: str | None
    step: int | None
    attempt: int | None  # 1 for a node's first execution at this step; None: not recorded
    agent_role: str | None
    status: str | None
    duration_ms: float | None
    models: list[str]
    tokens_in: int
    tokens_out: int
    tokens_cached_in: int | None  # None: the step did not report it
    cost_usd: Decimal | None  # None when unknown
    cost_unknown: bool
    error_type: str | None
    error_message: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "ts": _iso(self.ts),
            "node": self.node,
            "step": self.step,
            "attempt": self.attempt,
            "agent_role": self.agent_role,
            "status": self.status,
            "duration_ms": self.duration_ms,
            "models": self.models,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "tokens_cached_in": self.tokens_cached_in,
            "cost_usd": _money(self.cost_usd),
            "cost_unknown": self.cost_unknown,
            "error_type": self.error_type,
            "error_message": self.error_message,
        }


@dataclass(frozen=True)
class StateChange:
    """A ``workflow.item_state_changed`` event of the run."""

    event_id: str
    ts: datetime
    item_id: str | None
    from_state: str | None
    to_state: str | None
    reason: str | None
    node: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "ts": _iso(self.ts),
            "item_id": self.item_id,
            "from_state": self.from_state,
            "to_state": self.to_state,
            "reason": self.reason,
            "node": self.node,
        }


@dataclass(frozen=True)
class LearningEvent:
    """A ``learning.*`` event carrying the run's id, with its payload as stored."""

    event_id: str
    event_name: str
    ts: datetime
    item_id: str | None
    payload: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "event_name": self.event_name,
            "ts": _iso(self.ts),
            "item_id": self.item_id,
            "payload": self.payload,
        }


@dataclass(frozen=True)
class RunDetail:
    """A run with its steps, state changes, learning events and linked artifacts.

    ``truncated``: the run has more events than one answer carries (the first ones, in
    time order, are here; the totals always count every step).
    """

    run: RunSummary
    steps: list[Step]
    state_changes: list[StateChange]
    learning_events: list[LearningEvent]
    artifacts: list[Any]  # sdk.artifacts.links.RunArtifact
    truncated: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "run": self.run.as_json(),
            "steps": [s.as_json() for s in self.steps],
            "state_changes": [c.as_json() for c in self.state_changes],
            "learning_events": [e.as_json() for e in self.learning_events],
            "artifacts": [a.as_json() for a in self.artifacts],
            "truncated": self.truncated,
        }


@dataclass(frozen=True)
class UsageFigures:
    """What a group of the usage report (or its total) adds up to; see docs/read-api.md.

    Step figures come from ``workflow.step_completed`` events only. ``cost_usd`` is the
    sum of known costs and ``cost_unknown_steps`` the steps without one; the latter is
    None when some of the group's rows were aggregated before unknown costs were counted
    (``legacy_rows``), because a partial count would read as "none unknown" (so are
    ``tokens_cached_in`` and ``duration_max_ms``, not recorded then either). Percentiles
    cannot be merged: p50/p95 are set only when the group is a single aggregate row.
    ``runs`` and ``runs_failed`` count ``workflow.run_started`` / failed
    ``workflow.run_completed`` events; None when grouped by node, model or agent role,
    which a run does not have one of.
    """

    steps: int = 0
    errors: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    tokens_cached_in: int | None = 0
    cost_usd: Decimal = Decimal(0)
    cost_unknown_steps: int | None = 0
    duration_max_ms: float | None = None
    duration_p50_ms: float | None = None
    duration_p95_ms: float | None = None
    runs: int | None = None
    runs_failed: int | None = None
    legacy_rows: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "errors": self.errors,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "tokens_cached_in": self.tokens_cached_in,
            "cost_usd": _money(self.cost_usd),
            "cost_unknown_steps": self.cost_unknown_steps,
            "duration_max_ms": self.duration_max_ms,
            "duration_p50_ms": self.duration_p50_ms,
            "duration_p95_ms": self.duration_p95_ms,
            "runs": self.runs,
            "runs_failed": self.runs_failed,
            "legacy_rows": self.legacy_rows,
        }


@dataclass(frozen=True)
class UsageGroup:
    """One combination of the grouping keys (None: events without that value)."""

    key: dict[str, Any]
    figures: UsageFigures
    source: str  # stored, live or mixed

    def as_json(self) -> dict[str, Any]:
        key = {k: _iso(v) if isinstance(v, date) else v for k, v in self.key.items()}
        return {**key, **self.figures.as_json(), "source": self.source}


@dataclass(frozen=True)
class UsageReport:
    """Usage over ``[from_day, to_day]``, by ``group_by``, with totals.

    ``stored_days`` were read from the daily aggregates, ``live_days`` computed from raw
    events now (today, and days with events but no aggregates yet).
    """

    from_day: date
    to_day: date
    group_by: tuple[str, ...]
    groups: list[UsageGroup]
    totals: UsageFigures
    stored_days: list[date]
    live_days: list[date]
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "from": self.from_day.isoformat(),
            "to": self.to_day.isoformat(),
            "group_by": list(self.group_by),
            "groups": [g.as_json() for g in self.groups],
            "totals": self.totals.as_json(),
            "stored_days": [d.isoformat() for d in self.stored_days],
            "live_days": [d.isoformat() for d in self.live_days],
            "notes": self.notes,
        }
