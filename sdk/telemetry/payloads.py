"""The event payloads as TypedDicts, for code that builds a payload as a plain dict.

Generated from the models in :mod:`sdk.telemetry.events` by
``python -m sdk.telemetry.codegen``: do not edit; a unit test fails when this file is
stale. mypy checks a dict declared as one of these (an unknown or misspelled key, a
missing required one, a value of the wrong type) at no runtime cost, a TypedDict being
a plain dict. Limits on values (lengths, ranges) are the models' to check, when the
event is validated.
"""

from typing import Any, Literal, NotRequired, TypeAlias, TypedDict

from sdk.telemetry.events import (
    RunStatus,
    StepStatus,
    TargetType,
)


class ModelCallDict(TypedDict):
    """``ModelCall`` as a dict (:mod:`sdk.telemetry.model_calls`)."""

    model: str
    provider: NotRequired[str | None]
    tokens_in: NotRequired[int]
    tokens_cached_in: NotRequired[int]
    tokens_cache_write: NotRequired[int]
    tokens_out: NotRequired[int]
    tokens_reasoning: NotRequired[int]
    usage_reported: NotRequired[bool]
    cost_usd_reported: NotRequired[float | None]


class RunStartedPayloadDict(TypedDict):
    """The payload of ``workflow.run_started`` (``RunStartedPayload``)."""

    trigger: NotRequired[str | None]
    graph_version: NotRequired[str | None]
    attempt: NotRequired[int]
    input_summary: NotRequired[str | None]
    metadata: NotRequired[dict[str, Any]]
    otel: NotRequired[dict[str, Any] | None]


class StepCompletedPayloadDict(TypedDict):
    """The payload of ``workflow.step_completed`` (``StepCompletedPayload``)."""

    node: str
    step: int
    attempt: NotRequired[int]
    status: StepStatus
    duration_ms: float
    model: NotRequired[str | None]
    tokens_in: NotRequired[int]
    tokens_out: NotRequired[int]
    tokens_cached_in: NotRequired[int | None]
    cost_usd_est: NotRequired[float | None]
    cost_unknown: NotRequired[bool]
    error_type: NotRequired[str | None]
    error_message: NotRequired[str | None]
    calls: NotRequired[list[ModelCallDict] | None]
    otel: NotRequired[dict[str, Any] | None]


class ItemStateChangedPayloadDict(TypedDict):
    """The payload of ``workflow.item_state_changed`` (``ItemStateChangedPayload``)."""

    from_state: NotRequired[str | None]
    to_state: str
    reason: NotRequired[str | None]
    node: NotRequired[str | None]


class ArtifactCreatedPayloadDict(TypedDict):
    """The payload of ``workflow.artifact_created`` (``ArtifactCreatedPayload``)."""

    artifact_id: str
    version: int
    type: str
    content_hash: str
    size_bytes: int


class RunCompletedPayloadDict(TypedDict):
    """The payload of ``workflow.run_completed`` (``RunCompletedPayload``)."""

    status: RunStatus
    duration_ms: float
    steps: NotRequired[int]
    tokens_in: NotRequired[int]
    tokens_out: NotRequired[int]
    cost_usd_est: NotRequired[float | None]
    cost_unknown: NotRequired[bool]
    error_type: NotRequired[str | None]
    error_message: NotRequired[str | None]
    otel: NotRequired[dict[str, Any] | None]


class FeedbackReceivedPayloadDict(TypedDict):
    """The payload of ``learning.feedback_received`` (``FeedbackReceivedPayload``)."""

    target_type: TargetType
    target_id: str
    rating: NotRequired[float | None]
    label: NotRequired[str | None]
    comment: NotRequired[str | None]
    source: NotRequired[Literal["human", "agent", "system"]]
    given_by: NotRequired[str | None]


class CorrectionSubmittedPayloadDict(TypedDict):
    """The payload of ``learning.correction_submitted`` (``CorrectionSubmittedPayload``)."""

    target_type: TargetType
    target_id: str
    field: NotRequired[str | None]
    original: NotRequired[Any]
    corrected: Any
    reason: NotRequired[str | None]
    submitted_by: NotRequired[str | None]


class OutcomeRecordedPayloadDict(TypedDict):
    """The payload of ``learning.outcome_recorded`` (``OutcomeRecordedPayload``)."""

    target_type: TargetType
    target_id: str
    outcome: str
    success: NotRequired[bool | None]
    value: NotRequired[float | None]
    unit: NotRequired[str | None]
    metadata: NotRequired[dict[str, Any]]


class EvaluationScoredPayloadDict(TypedDict):
    """The payload of ``learning.evaluation_scored`` (``EvaluationScoredPayload``)."""

    target_type: TargetType
    target_id: str
    evaluator: str
    metric: str
    score: float
    threshold: NotRequired[float | None]
    passed: NotRequired[bool | None]
    dataset: NotRequired[str | None]
    details: NotRequired[dict[str, Any]]


class ExamplePromotedPayloadDict(TypedDict):
    """The payload of ``learning.example_promoted`` (``ExamplePromotedPayload``)."""

    example_id: str
    dataset: str
    source_type: TargetType
    source_id: str
    source_version: NotRequired[int | None]
    promoted_by: NotRequired[str | None]
    reason: NotRequired[str | None]


class PolicyUpdatedPayloadDict(TypedDict):
    """The payload of ``learning.policy_updated`` (``PolicyUpdatedPayload``)."""

    policy_name: str
    from_version: NotRequired[str | None]
    to_version: str
    change_summary: NotRequired[str | None]
    updated_by: NotRequired[str | None]
    metrics: NotRequired[dict[str, Any]]


PayloadDict: TypeAlias = (
    RunStartedPayloadDict
    | StepCompletedPayloadDict
    | ItemStateChangedPayloadDict
    | ArtifactCreatedPayloadDict
    | RunCompletedPayloadDict
    | FeedbackReceivedPayloadDict
    | CorrectionSubmittedPayloadDict
    | OutcomeRecordedPayloadDict
    | EvaluationScoredPayloadDict
    | ExamplePromotedPayloadDict
    | PolicyUpdatedPayloadDict
)
"""Any event's payload as a dict."""
