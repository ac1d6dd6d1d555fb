"""One builder per event: keyword-only, typed, validated before anything is queued.

Each ``emit_*`` builds its event (ULID ``event_id`` and ``ts`` from the client's clock),
fills ``run_id``/``item_id``/``workflow_name``/``agent_role`` from the current
:func:`~sdk.telemetry.context.correlation` unless given, validates it - bad input raises
``pydantic.ValidationError`` here, at the call site - and hands it to the client's queue.
It returns the event, so callers can log or link its id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, TypeVar

from sdk.telemetry import context
from sdk.telemetry.client import TelemetryClient
from sdk.telemetry.default import get_client
from sdk.telemetry.deferred import DeferredEvent
from sdk.telemetry.events import (
    PRESCREENED,
    ArtifactCreated,
    CorrectionSubmitted,
    EvaluationScored,
    EventBase,
    ExamplePromoted,
    FeedbackReceived,
    ItemStateChanged,
    OutcomeRecorded,
    PolicyUpdated,
    RunCompleted,
    RunStarted,
    StepCompleted,
    TargetType,
)
from sdk.telemetry.values import flat_values_are_plain, new_ulid

_PLAIN = {PRESCREENED: True}

E = TypeVar("E", bound=EventBase)


def emit(event: EventBase, *, client: TelemetryClient | None = None) -> EventBase:
    """Queue an event built by hand (already validated by its model)."""
    (client or get_client()).emit(event)
    return event


def emit_batch(events: list[EventBase], *, client: TelemetryClient | None = None) -> None:
    (client or get_client()).emit_batch(events)


def _correlated(
    run_id: str | None, item_id: str | None, workflow_name: str | None, agent_role: str | None
) -> dict[str, Any]:
    """The ids given, else those of the caller's current correlation."""
    ctx = context.current()
    return {
        "run_id": run_id if run_id is not None else ctx.run_id,
        "item_id": item_id if item_id is not None else ctx.item_id,
        "workflow_name": workflow_name if workflow_name is not None else ctx.workflow_name,
        "agent_role": agent_role if agent_role is not None else ctx.agent_role,
    }


def _envelope(
    target: TelemetryClient,
    *,
    run_id: str | None,
    item_id: str | None,
    workflow_name: str | None,
    agent_role: str | None,
    event_id: str | None,
    ts: datetime | None,
) -> dict[str, Any]:
    now = target.clock()
    return {
        # The id is minted from the clock, not from ts: an event about the past (a
        # backfill, late feedback) still lands in a live partition.
        "event_id": event_id or new_ulid(int(now.timestamp() * 1000)),
        "ts": ts or now,
        **_correlated(run_id, item_id, workflow_name, agent_role),
    }


def _emit(
    event_type: type[E],
    payload: dict[str, Any],
    *,
    run_id: str | None,
    item_id: str | None,
    workflow_name: str | None,
    agent_role: str | None,
    event_id: str | None,
    ts: datetime | None,
    client: TelemetryClient | None,
) -> E:
    target = client or get_client()
    envelope = _envelope(
        target,
        run_id=run_id,
        item_id=item_id,
        workflow_name=workflow_name,
        agent_role=agent_role,
        event_id=event_id,
        ts=ts,
    )
    # Keyword arguments are flat: a quick look proves them storable far cheaper than
    # the general walk, which still runs for anything out of the ordinary.
    plain = flat_values_are_plain(envelope.values()) and flat_values_are_plain(payload.values())
    envelope["payload"] = payload
    event = event_type.model_validate(envelope, context=_PLAIN if plain else None)
    target.emit(event)
    return event


def emit_deferred(
    event_type: type[EventBase],
    payload: dict[str, Any],
    *,
    run_id: str | None = None,
    item_id: str | None = None,
    workflow_name: str | None = None,
    agent_role: str | None = None,
    ts: datetime | None = None,
    client: TelemetryClient | None = None,
) -> None:
    """Queue an event that the sender thread validates (:mod:`sdk.telemetry.deferred`).

    For instrumentation on a host's hot path, which must not raise and should not pay
    for validation there: the id, time and correlation are fixed now; an invalid event
    is logged and counted as rejected later instead of raising here.
    """
    target = client or get_client()
    envelope = _correlated(run_id, item_id, workflow_name, agent_role)
    envelope["minted_at"] = target.clock()
    if ts is not None:
        envelope["ts"] = ts
    target.emit(DeferredEvent(event_type, envelope, payload))


def emit_run_started(
    *,
    trigger: str | None = None,
    graph_version: str | None = None,
    attempt: int = 1,
    input_summary: str | None = None,
    metadata: dict[str, Any] | None = None,
    run_id: str | None = None,
    item_id: str | None = None,
    workflow_name: str | None = None,
    agent_role: str | None = None,
    event_id: str | None = None,
    ts: datetime | None = None,
    client: TelemetryClient | None = None,
) -> RunStarted:
    payload = {
        "trigger": trigger,
        "graph_version": graph_version,
        "attempt": attempt,
        "input_summary": input_summary,
        "metadata": metadata or {},
    }
    return _emit(
        RunStarted, payload, run_id=run_id, item_id=item_id, workflow_name=workflow_name,
        agent_role=agent_role, event_id=event_id, ts=ts, client=client,
    )  # fmt: skip


def emit_step_completed(
    *,
    node: str,
    step: int,
    status: Literal["ok", "error"],
    duration_ms: float,
    model: str | None = None,
    tokens_in: int = 0,
    tokens_out: int = 0,
    cost_usd_est: float | None = None,
    cost_unknown: bool = False,
    error_type: str | None = None,
    error_message: str | None = None,
    run_id: str | None = None,
    item_id: str | None = None,
    workflow_name: str | None = None,
    agent_role: str | None = None,
    event_id: str | None = None,
    ts: datetime | None = None,
    client: TelemetryClient | None = None,
) -> StepCompleted:
    payload = {
        "node": node,
        "step": step,
        "status": status,
        "duration_ms": duration_ms,
        "model": model,
        "tokens_in": tokens_in,
        "tokens_out": tokens_out,
        "cost_usd_est": cost_usd_est,
        "cost_unknown": cost_unknown,
        "error_type": error_type,
        "error_message": error_message,
    }
    return _emit(
        StepCompleted, payload, run_id=run_id, item_id=item_id, workflow_name=workflow_name,
        agent_role=agent_role, event_id=event_id, ts=ts, client=client,
    )  # fmt: skip


def emit_item_state_changed(
    *,
    to_state: str,
    from_state: str | None = None,
    reason: str | None = None,
    node: str | None = None,
    run_id: str | None = None,
    item_id: str | None = None,
    workflow_name: str | None = None,
    agent_role: str | None = None,
    event_id: str | None = None,
    ts: datetime | None = None,
    client: TelemetryClient | None = None,
) -> ItemStateChanged:
    payload = {"from_state": from_state, "to_state": to_state, "reason": reason, "node": node}
    return _emit(
        ItemStateChanged, payload, run_id=run_id, item_id=item_id, workflow_name=workflow_name,
        agent_role=agent_role, event_id=event_id, ts=ts, client=client,
    )  # fmt: skip


def emit_artifact_created(
    *,
    artifact_id: str,
    version: int,
    type: str,
    content_hash: str,
    size_bytes: int,
    run_id: str | None = None,
    item_id: str | None = None,
    workflow_name: str | None = None,
    agent_role: str | None = None,
    event_id: str | None = None,
    ts: datetime | None = None,
    client: TelemetryClient | None = None,
) -> ArtifactCreated:
    payload = {
        "artifact_id": artifact_id,
        "version": version,
        "type": type,
        "content_hash": content_hash,
        "size_bytes": size_bytes,
    }
    return _emit(
        ArtifactCreated, payload, run_id=run_id, item_id=item_id, workflow_name=workflow_name,
        agent_role=agent_role, event_id=event_id, ts=ts, client=client,
    )  # fmt: skip


def emit_run_completed(
    *,
    status: Literal["succeeded", "failed", "cancelled", "interrupted"],
    duration_ms: float,
    steps: int = 0,
    tokens_in: int = 0,
    tokens_out: int = 0,
    cost_usd_est: float | None = None,
    cost_unknown: bool = False,
    error_type: str | None = None,
    error_message: str | None = None,
    run_id: str | None = None,
    item_id: str | None = None,
    workflow_name: str | None = None,
    agent_role: str | None = None,
    event_id: str | None = None,
    ts: datetime | None = None,
    client: TelemetryClient | None = None,
) -> RunCompleted:
    payload = {
        "status": status,
        "duration_ms": duration_ms,
        "steps": steps,
        "tokens_in": tokens_in,
        "tokens_out": tokens_out,
        "cost_usd_est": cost_usd_est,
        "cost_unknown": cost_unknown,
        "error_type": error_type,
        "error_message": error_message,
    }
    return _emit(
        RunCompleted, payload, run_id=run_id, item_id=item_id, workflow_name=workflow_name,
        agent_role=agent_role, event_id=event_id, ts=ts, client=client,
    )  # fmt: skip


def emit_feedback_received(
    *,
    target_type: TargetType,
    target_id: str,
    rating: float | None = None,
    label: str | None = None,
    comment: str | None = None,
    source: Literal["human", "agent", "system"] = "human",
    given_by: str | None = None,
    run_id: str | None = None,
    item_id: str | None = None,
    workflow_name: str | None = None,
    agent_role: str | None = None,
    event_id: str | None = None,
    ts: datetime | None = None,
    client: TelemetryClient | None = None,
) -> FeedbackReceived:
    payload = {
        "target_type": target_type,
        "target_id": target_id,
        "rating": rating,
        "label": label,
        "comment": comment,
        "source": source,
        "given_by": given_by,
    }
    return _emit(
        FeedbackReceived, payload, run_id=run_id, item_id=item_id, workflow_name=workflow_name,
        agent_role=agent_role, event_id=event_id, ts=ts, client=client,
    )  # fmt: skip


def emit_correction_submitted(
    *,
    target_type: TargetType,
    target_id: str,
    corrected: Any,
    original: Any = None,
    field: str | None = None,
    reason: str | None = None,
    submitted_by: str | None = None,
    run_id: str | None = None,
    item_id: str | None = None,
    workflow_name: str | None = None,
    agent_role: str | None = None,
    event_id: str | None = None,
    ts: datetime | None = None,
    client: TelemetryClient | None = None,
) -> CorrectionSubmitted:
    payload = {
        "target_type": target_type,
        "target_id": target_id,
        "field": field,
        "original": original,
        "corrected": corrected,
        "reason": reason,
        "submitted_by": submitted_by,
    }
    return _emit(
        CorrectionSubmitted, payload, run_id=run_id, item_id=item_id,
        workflow_name=workflow_name, agent_role=agent_role, event_id=event_id, ts=ts,
        client=client,
    )  # fmt: skip


def emit_outcome_recorded(
    *,
    target_type: TargetType,
    target_id: str,
    outcome: str,
    success: bool | None = None,
    value: float | None = None,
    unit: str | None = None,
    metadata: dict[str, Any] | None = None,
    run_id: str | None = None,
    item_id: str | None = None,
    workflow_name: str | None = None,
    agent_role: str | None = None,
    event_id: str | None = None,
    ts: datetime | None = None,
    client: TelemetryClient | None = None,
) -> OutcomeRecorded:
    payload = {
        "target_type": target_type,
        "target_id": target_id,
        "outcome": outcome,
        "success": success,
        "value": value,
        "unit": unit,
        "metadata": metadata or {},
    }
    return _emit(
        OutcomeRecorded, payload, run_id=run_id, item_id=item_id, workflow_name=workflow_name,
        agent_role=agent_role, event_id=event_id, ts=ts, client=client,
    )  # fmt: skip


def emit_evaluation_scored(
    *,
    target_type: TargetType,
    target_id: str,
    evaluator: str,
    metric: str,
    score: float,
    threshold: float | None = None,
    passed: bool | None = None,
    dataset: str | None = None,
    details: dict[str, Any] | None = None,
    run_id: str | None = None,
    item_id: str | None = None,
    workflow_name: str | None = None,
    agent_role: str | None = None,
    event_id: str | None = None,
    ts: datetime | None = None,
    client: TelemetryClient | None = None,
) -> EvaluationScored:
    payload = {
        "target_type": target_type,
        "target_id": target_id,
        "evaluator": evaluator,
        "metric": metric,
        "score": score,
        "threshold": threshold,
        "passed": passed,
        "dataset": dataset,
        "details": details or {},
    }
    return _emit(
        EvaluationScored, payload, run_id=run_id, item_id=item_id, workflow_name=workflow_name,
        agent_role=agent_role, event_id=event_id, ts=ts, client=client,
    )  # fmt: skip


def emit_example_promoted(
    *,
    example_id: str,
    dataset: str,
    source_type: TargetType,
    source_id: str,
    source_version: int | None = None,
    promoted_by: str | None = None,
    reason: str | None = None,
    run_id: str | None = None,
    item_id: str | None = None,
    workflow_name: str | None = None,
    agent_role: str | None = None,
    event_id: str | None = None,
    ts: datetime | None = None,
    client: TelemetryClient | None = None,
) -> ExamplePromoted:
    payload = {
        "example_id": example_id,
        "dataset": dataset,
        "source_type": source_type,
        "source_id": source_id,
        "source_version": source_version,
        "promoted_by": promoted_by,
        "reason": reason,
    }
    return _emit(
        ExamplePromoted, payload, run_id=run_id, item_id=item_id, workflow_name=workflow_name,
        agent_role=agent_role, event_id=event_id, ts=ts, client=client,
    )  # fmt: skip


def emit_policy_updated(
    *,
    policy_name: str,
    to_version: str,
    from_version: str | None = None,
    change_summary: str | None = None,
    updated_by: str | None = None,
    metrics: dict[str, Any] | None = None,
    run_id: str | None = None,
    item_id: str | None = None,
    workflow_name: str | None = None,
    agent_role: str | None = None,
    event_id: str | None = None,
    ts: datetime | None = None,
    client: TelemetryClient | None = None,
) -> PolicyUpdated:
    payload = {
        "policy_name": policy_name,
        "from_version": from_version,
        "to_version": to_version,
        "change_summary": change_summary,
        "updated_by": updated_by,
        "metrics": metrics or {},
    }
    return _emit(
        PolicyUpdated, payload, run_id=run_id, item_id=item_id, workflow_name=workflow_name,
        agent_role=agent_role, event_id=event_id, ts=ts, client=client,
    )  # fmt: skip
