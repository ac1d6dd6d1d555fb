"""What the run and usage queries return: plain dataclasses, and their one JSON shape.

``as_json()`` is the shape the read API answers with and ``wdp … --json`` prints, so the
two cannot drift. Money is a ``Decimal`` here (Postgres ``numeric`` sums, exact) and a
JSON number there. A cost is always accompanied by the count of what could not be
priced: a sum of known costs alone would read as "$0" for calls nobody could price.

Two kinds of cost, kept apart on purpose. The **usage report** shows the platform's
*priced* cost (``telemetry.daily_model_usage``: each call priced from the dated price
table, the provider's reported cost where it gave one), with its unknown **calls**
counted. **Runs** show the cost each step *emitted* (``cost_usd_est`` on the raw event,
the SDK's estimate when it ran, never changed), with its unknown **steps** counted: a
run is read from its raw events, one by one.
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
    """Figures summed over a run's ``workflow.step_completed`` events. The cost is the
    steps' emitted estimate (``cost_usd_est``), not the priced cost of the usage report."""

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
class ModelCallView(JsonShaped):
    """One model call of a step, as the step event reported it (``calls``, event_version 2)."""

    model: str
    provider: str | None
    tokens_in: int  # cache reads and writes included
    tokens_cached_in: int
    tokens_cache_write: int
    tokens_out: int  # reasoning included
    tokens_reasoning: int
    usage_reported: bool  # false: the call reported no token counts (its cost is unknown)
    cost_usd_reported: Decimal | None  # the provider's own figure, if it gave one


@dataclass(frozen=True)
class Step(JsonShaped):
    """One ``workflow.step_completed`` event: one execution (attempt) of one node.

    ``cost_usd`` is the step's emitted estimate (None when unknown); ``calls`` its
    model calls when the event carries them (None: an event_version 1 step, totals only).
    """

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
    calls: list[ModelCallView] | None = None


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


COST_SOURCES = ("computed", "reported", "estimate")


@dataclass(frozen=True)
class UsageFigures(JsonShaped):
    """What a group of the usage report (or its total) adds up to; see docs/read-api.md.

    Two tables, one group. ``steps``, ``errors``, durations and runs are counted from
    ``workflow.step_completed`` events (``daily_event_aggregates``). ``calls``, tokens and
    cost come from the model calls (``daily_model_usage``), each call priced: ``cost_usd``
    is the sum of the known costs, ``cost_usd_by_source`` splits it into ``computed``
    (tokens x the price valid that day), ``reported`` (the provider's own figure) and
    ``estimate`` (a step without per-call usage: its emitted estimate), and
    ``cost_unknown_calls`` counts the calls without a cost (no price for their model, or
    no usage reported). Grouped by model, calls and their cost are under each call's
    model, steps under the step's ``model`` field (comma-joined for a step that called
    several). ``cost_unknown_calls`` and the cache and reasoning token counts are None
    when some of the group's rows were aggregated before they were recorded
    (``legacy_rows``): a partial count would read as "none". Percentiles cannot be
    merged: p50/p95 are set only when the group is a single aggregate row. ``runs`` and
    ``runs_failed`` count ``workflow.run_started`` / failed ``workflow.run_completed``
    events; None when grouped by node, model or agent role, which a run does not have
    one of.
    """

    steps: int = 0
    errors: int = 0
    calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    tokens_cached_in: int | None = 0
    tokens_cache_write: int | None = 0
    tokens_reasoning: int | None = 0
    cost_usd: Decimal = Decimal(0)
    cost_unknown_calls: int | None = 0
    cost_usd_by_source: dict[str, Decimal] = field(
        default_factory=lambda: {s: Decimal(0) for s in COST_SOURCES}
    )
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
