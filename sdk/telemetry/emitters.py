"""The ``emit_*`` builders, one per event: keyword-only, typed, validated at the call.

Generated from the models in :mod:`sdk.telemetry.events` by
``python -m sdk.telemetry.codegen``: do not edit; a unit test fails when this file is
stale. Each builder's payload arguments are its model's fields with the model's
defaults (None for a free-form field means the model's empty dict); what a builder
then does - envelope, correlation, validation, queueing - is
:func:`sdk.telemetry.emitting.emit_event`. Bad input raises
:class:`~sdk.telemetry.errors.InvalidEventError`. Each returns its event, so callers
can log or link its id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from sdk.telemetry import payloads
from sdk.telemetry.client import TelemetryClient
from sdk.telemetry.emitting import emit_event
from sdk.telemetry.events import (
    ArtifactCreated,
    CorrectionSubmitted,
    EvaluationScored,
    ExamplePromoted,
    FeedbackReceived,
    ItemStateChanged,
    OutcomeRecorded,
    PolicyUpdated,
    RunCompleted,
    RunStarted,
    RunStatus,
    StepCompleted,
    StepStatus,
    TargetType,
)

__all__ = [
    "emit_artifact_created",
    "emit_correction_submitted",
    "emit_evaluation_scored",
    "emit_example_promoted",
    "emit_feedback_received",
    "emit_item_state_changed",
    "emit_outcome_recorded",
    "emit_policy_updated",
    "emit_run_completed",
    "emit_run_started",
    "emit_step_completed",
]


def emit_run_started(
    *,
    trigger: str | None = None,
    graph_version: str | None = None,
    attempt: int = 1,
    input_summary: str | None = None,
    metadata: dict[str, Any] | None = None,
    otel: dict[str, Any] | None = None,
    run_id: str | None = None,
    item_id: str | None = None,
    workflow_name: str | None = None,
    agent_role: str | None = None,
    event_id: str | None = None,
    ts: datetime | None = None,
    client: TelemetryClient | None = None,
) -> RunStarted:
    """A graph invocation began.

    ``workflow.run_started``; needs ``run_id`` (given or from the correlation)."""
    payload: payloads.RunStartedPayloadDict = {
        "trigger": trigger,
        "graph_version": graph_version,
        "attempt": attempt,
        "input_summary": input_summary,
        "otel": otel,
    }
    if metadata is not None:
        payload["metadata"] = metadata
    envelope = run_id, item_id, workflow_name, agent_role, event_id, ts, client
    return emit_event(RunStarted, payload, envelope)


def emit_step_completed(
    *,
    node: str,
    step: int,
    attempt: int = 1,
    status: StepStatus,
    duration_ms: float,
    model: str | None = None,
    tokens_in: int = 0,
    tokens_out: int = 0,
    tokens_cached_in: int | None = None,
    cost_usd_est: float | None = None,
    cost_unknown: bool = False,
    error_type: str | None = None,
    error_message: str | None = None,
    calls: list[payloads.ModelCallDict] | None = None,
    otel: dict[str, Any] | None = None,
    run_id: str | None = None,
    item_id: str | None = None,
    workflow_name: str | None = None,
    agent_role: str | None = None,
    event_id: str | None = None,
    ts: datetime | None = None,
    client: TelemetryClient | None = None,
) -> StepCompleted:
    """One node execution finished; tokens and cost are summed over the LLM calls made
    inside it.

    ``workflow.step_completed``; needs ``run_id`` (given or from the correlation)."""
    payload: payloads.StepCompletedPayloadDict = {
        "node": node,
        "step": step,
        "attempt": attempt,
        "status": status,
        "duration_ms": duration_ms,
        "model": model,
        "tokens_in": tokens_in,
        "tokens_out": tokens_out,
        "tokens_cached_in": tokens_cached_in,
        "cost_usd_est": cost_usd_est,
        "cost_unknown": cost_unknown,
        "error_type": error_type,
        "error_message": error_message,
        "calls": calls,
        "otel": otel,
    }
    envelope = run_id, item_id, workflow_name, agent_role, event_id, ts, client
    return emit_event(StepCompleted, payload, envelope)


def emit_item_state_changed(
    *,
    from_state: str | None = None,
    to_state: str,
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
    """A work item moved from one state to another.

    ``workflow.item_state_changed``; needs ``item_id`` (given or from the correlation)."""
    payload: payloads.ItemStateChangedPayloadDict = {
        "from_state": from_state,
        "to_state": to_state,
        "reason": reason,
        "node": node,
    }
    envelope = run_id, item_id, workflow_name, agent_role, event_id, ts, client
    return emit_event(ItemStateChanged, payload, envelope)


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
    """An artifact version was stored (see sdk.artifacts).

    ``workflow.artifact_created``."""
    payload: payloads.ArtifactCreatedPayloadDict = {
        "artifact_id": artifact_id,
        "version": version,
        "type": type,
        "content_hash": content_hash,
        "size_bytes": size_bytes,
    }
    envelope = run_id, item_id, workflow_name, agent_role, event_id, ts, client
    return emit_event(ArtifactCreated, payload, envelope)


def emit_run_completed(
    *,
    status: RunStatus,
    duration_ms: float,
    steps: int = 0,
    tokens_in: int = 0,
    tokens_out: int = 0,
    cost_usd_est: float | None = None,
    cost_unknown: bool = False,
    error_type: str | None = None,
    error_message: str | None = None,
    otel: dict[str, Any] | None = None,
    run_id: str | None = None,
    item_id: str | None = None,
    workflow_name: str | None = None,
    agent_role: str | None = None,
    event_id: str | None = None,
    ts: datetime | None = None,
    client: TelemetryClient | None = None,
) -> RunCompleted:
    """A graph invocation ended, with its totals.

    ``workflow.run_completed``; needs ``run_id`` (given or from the correlation)."""
    payload: payloads.RunCompletedPayloadDict = {
        "status": status,
        "duration_ms": duration_ms,
        "steps": steps,
        "tokens_in": tokens_in,
        "tokens_out": tokens_out,
        "cost_usd_est": cost_usd_est,
        "cost_unknown": cost_unknown,
        "error_type": error_type,
        "error_message": error_message,
        "otel": otel,
    }
    envelope = run_id, item_id, workflow_name, agent_role, event_id, ts, client
    return emit_event(RunCompleted, payload, envelope)


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
    """Someone or something rated a run, step, item or artifact.

    ``learning.feedback_received``."""
    payload: payloads.FeedbackReceivedPayloadDict = {
        "target_type": target_type,
        "target_id": target_id,
        "rating": rating,
        "label": label,
        "comment": comment,
        "source": source,
        "given_by": given_by,
    }
    envelope = run_id, item_id, workflow_name, agent_role, event_id, ts, client
    return emit_event(FeedbackReceived, payload, envelope)


def emit_correction_submitted(
    *,
    target_type: TargetType,
    target_id: str,
    field: str | None = None,
    original: Any = None,
    corrected: Any,
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
    """An output was corrected; original and corrected are any JSON values.

    ``learning.correction_submitted``."""
    payload: payloads.CorrectionSubmittedPayloadDict = {
        "target_type": target_type,
        "target_id": target_id,
        "field": field,
        "original": original,
        "corrected": corrected,
        "reason": reason,
        "submitted_by": submitted_by,
    }
    envelope = run_id, item_id, workflow_name, agent_role, event_id, ts, client
    return emit_event(CorrectionSubmitted, payload, envelope)


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
    """A downstream outcome of the work became known (accepted, merged, refunded, …).

    ``learning.outcome_recorded``."""
    payload: payloads.OutcomeRecordedPayloadDict = {
        "target_type": target_type,
        "target_id": target_id,
        "outcome": outcome,
        "success": success,
        "value": value,
        "unit": unit,
    }
    if metadata is not None:
        payload["metadata"] = metadata
    envelope = run_id, item_id, workflow_name, agent_role, event_id, ts, client
    return emit_event(OutcomeRecorded, payload, envelope)


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
    """An evaluator scored a target on a metric.

    ``learning.evaluation_scored``."""
    payload: payloads.EvaluationScoredPayloadDict = {
        "target_type": target_type,
        "target_id": target_id,
        "evaluator": evaluator,
        "metric": metric,
        "score": score,
        "threshold": threshold,
        "passed": passed,
        "dataset": dataset,
    }
    if details is not None:
        payload["details"] = details
    envelope = run_id, item_id, workflow_name, agent_role, event_id, ts, client
    return emit_event(EvaluationScored, payload, envelope)


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
    """An output was promoted into a dataset of examples.

    ``learning.example_promoted``."""
    payload: payloads.ExamplePromotedPayloadDict = {
        "example_id": example_id,
        "dataset": dataset,
        "source_type": source_type,
        "source_id": source_id,
        "source_version": source_version,
        "promoted_by": promoted_by,
        "reason": reason,
    }
    envelope = run_id, item_id, workflow_name, agent_role, event_id, ts, client
    return emit_event(ExamplePromoted, payload, envelope)


def emit_policy_updated(
    *,
    policy_name: str,
    from_version: str | None = None,
    to_version: str,
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
    """A prompt, routing or model policy moved to a new version.

    ``learning.policy_updated``."""
    payload: payloads.PolicyUpdatedPayloadDict = {
        "policy_name": policy_name,
        "from_version": from_version,
        "to_version": to_version,
        "change_summary": change_summary,
        "updated_by": updated_by,
    }
    if metrics is not None:
        payload["metrics"] = metrics
    envelope = run_id, item_id, workflow_name, agent_role, event_id, ts, client
    return emit_event(PolicyUpdated, payload, envelope)
