"""What the run and usage queries return: plain dataclasses, and their one JSON shape.

``as_json()`` is the shape the read API answers with and ``wdp … --json`` prints, so the
two cannot drift. Money is a ``Decimal`` here (Postgres ``numeric`` sums, exact) and a
JSON number there. A cost is always accompanied by the count of steps whose cost was
unknown: a sum of known costs alone would read as "$0" for steps nobody could price.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import date, datetime
from decimal import Decimal
from typing import Any


def json_value(value: Any) -> Any:
    """``value`` as JSON: a result (anything with ``as_json``, also
    ``sdk.artifacts.links.RunArtifact``) by it, money (Decimal) as a number, instants
    and days as ISO 8601, lists and dicts item by item."""
    shape = getattr(value, "as_json", None)
    if callable(shape):
        return shape()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: json_value(v) for k, v in value.items()}
    return value


class JsonShaped:
    """A result whose JSON is its fields, by name, each as :func:`json_value`; a class
    whose JSON differs (renamed, flattened or left-out fields) says so in its own
    ``as_json``."""

    def as_json(self) -> dict[str, Any]:
        return {
            f.name: json_value(getattr(self, f.name))
            for f in fields(self)  # type: ignore[arg-type]  # every subclass is a dataclass
        }


@dataclass(frozen=True)
class RunTotals(JsonShaped):
    """Figures summed over a run's ``workflow.step_completed`` events."""

    steps: int
    errors: int
    tokens_in: int
    tokens_out: int
    tokens_cached_in: int  # of tokens_in; steps that did not report it count 0
    cost_usd: Decimal  # known costs only
    cost_unknown_steps: int  # steps without a price: not in cost_usd


@dataclass(frozen=True)
class RunSummary(JsonShaped):
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


@dataclass(frozen=True)
class RunPage(JsonShaped):
    """Runs newest first; ``next_cursor`` fetches the next (older) page, None at the end."""

    runs: list[RunSummary]
    next_cursor: str | None
    limit: int


@dataclass(frozen=True)
class Step(JsonShaped):
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


@dataclass(frozen=True)
class StateChange(JsonShaped):
    """A ``workflow.item_state_changed`` event of the run."""

    event_id: str
    ts: datetime
    item_id: str | None
    from_state: str | None
    to_state: str | None
    reason: str | None
    node: str | None


@dataclass(frozen=True)
class LearningEvent(JsonShaped):
    """A ``learning.*`` event carrying the run's id, with its payload as stored."""

    event_id: str
    event_name: str
    ts: datetime
    item_id: str | None
    payload: dict[str, Any]


@dataclass(frozen=True)
class RunDetail(JsonShaped):
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


@dataclass(frozen=True)
class UsageFigures(JsonShaped):
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


@dataclass(frozen=True)
class UsageGroup(JsonShaped):
    """One combination of the grouping keys (None: events without that value)."""

    key: dict[str, Any]
    figures: UsageFigures
    source: str  # stored, live or mixed

    def as_json(self) -> dict[str, Any]:
        # Flat: the grouping keys beside the figures.
        return {**json_value(self.key), **self.figures.as_json(), "source": self.source}


@dataclass(frozen=True)
class UsageReport(JsonShaped):
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
        shaped = super().as_json()
        del shaped["from_day"], shaped["to_day"]
        return {
            **shaped,
            "from": self.from_day.isoformat(),
            "to": self.to_day.isoformat(),
        }
