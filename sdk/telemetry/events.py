"""The workflow event contract, defined once for the SDK and the ingest API.

An event is an envelope (id, version, name, time, correlation ids) around a payload
typed per event name. ``Event`` is a discriminated union on ``event_name``; validate
untrusted input with :func:`parse_event`. Every model forbids unknown fields so a typo
in a producer is an error, not silently lost data.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

# Re-exported (`X as X`): callers know the bounds as events.MAX_TOKENS / MAX_USD.
from sdk.telemetry.fields import MAX_TOKENS as MAX_TOKENS
from sdk.telemetry.fields import MAX_USD as MAX_USD
from sdk.telemetry.fields import (
    DurationMs,
    Id,
    Name,
    NonNegInt,
    Score,
    Sha256,
    Text,
    Tokens,
    Ulid,
    Usd,
    _Model,
)
from sdk.telemetry.model_calls import MAX_CALLS, STEP_EVENT_VERSION, ModelCall, calls_problem
from sdk.telemetry.values import UnsafeValue, find_unsafe_value, ulid_ms

PRESCREENED = "wdp_prescreened"

# RFC 3339 section 5.6 date-time ("T" and "Z" may be lower case). The offset is
# optional here only so that pydantic can say precisely that it is missing.
RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})?\Z", re.ASCII
)

# 9999-12-31T23:59:59.999Z: Python datetimes (and so event_time) end there.
MAX_EVENT_MS = 253_402_300_799_999


def _free_form_storable(value: Any) -> Any:
    # Free-form JSON is walked on its own even when the envelope walk is skipped for
    # pre-screened API input: only here can nesting be deep.
    problem = find_unsafe_value(value)
    if problem is not None:
        raise _unstorable(problem)
    return value


def _unstorable(problem: UnsafeValue) -> PydanticCustomError:
    # "loc" (inside the validated value) lets the API report the full location.
    return PydanticCustomError(
        "unstorable_value",
        "{path}{message}",
        {
            "path": f"{problem.path}: " if problem.path else "",
            "message": problem.message,
            "loc": problem.loc,
        },
    )


def _kind(value: Any) -> str:
    """What a wrong value is, in JSON's words, for an error message."""
    if value is None or isinstance(value, bool):
        return "null" if value is None else "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "a string in another format" if isinstance(value, str) else type(value).__name__


JsonObject = Annotated[dict[str, Any], AfterValidator(_free_form_storable)]
JsonValue = Annotated[Any, AfterValidator(_free_form_storable)]

TargetType = Literal["run", "step", "item", "artifact", "example", "policy", "other"]
StepStatus = Literal["ok", "error"]
RunStatus = Literal["succeeded", "failed", "cancelled", "interrupted"]


# --- payloads: core ----------------------------------------------------------------


class RunStartedPayload(_Model):
    """A graph invocation began."""

    trigger: Name | None = Field(None, description="What started the run (api, schedule, …).")
    graph_version: Name | None = None
    attempt: int = Field(1, ge=1, le=10_000)
    input_summary: Text | None = None
    metadata: JsonObject = Field(default_factory=dict)
    otel: JsonObject | None = Field(
        None,
        description=(
            "The OpenTelemetry span this event was mapped from (POST /v1/traces): ids, "
            "name, kind and its attributes, bounded and redacted (docs/otlp.md)."
        ),
    )


class StepCompletedPayload(_Model):
    """One node execution finished; tokens and cost are summed over the LLM calls made inside it."""

    node: Name
    step: int = Field(ge=0, le=2**31 - 1, description="The orchestrator's step number.")
    attempt: int = Field(
        1, ge=1, le=10_000, description="1 for the first execution of this node at this step."
    )
    status: StepStatus
    duration_ms: DurationMs
    model: Name | None = Field(None, description="Model(s) called in the step, comma-separated.")
    tokens_in: Tokens = 0
    tokens_out: Tokens = 0
    tokens_cached_in: Tokens | None = Field(
        None,
        description=(
            "Of tokens_in, those read from the provider's prompt cache; None when no call "
            "reported it."
        ),
    )
    cost_usd_est: Usd | None = Field(
        None,
        description=(
            "None when the price is unknown; for a step that called no model (no model, "
            "no tokens) None means there was nothing to price: a known $0."
        ),
    )
    cost_unknown: bool = Field(False, description="A model without a price was called.")
    error_type: Name | None = None
    error_message: Text | None = None
    calls: list[ModelCall] | None = Field(
        None,
        max_length=MAX_CALLS,
        description=(
            "The model calls made in the step, one entry each (event_version 2 and "
            "later); the totals above must add up to them. None: not reported per call."
        ),
    )
    otel: JsonObject | None = Field(
        None,
        description=(
            "The OpenTelemetry span this event was mapped from (POST /v1/traces): ids, "
            "name, kind and its attributes, bounded and redacted (docs/otlp.md)."
        ),
    )

    @model_validator(mode="after")
    def _totals_of_calls(self) -> StepCompletedPayload:
        if self.calls is not None:
            problem = calls_problem(
                self.calls, self.tokens_in, self.tokens_out, self.tokens_cached_in
            )
            if problem is not None:
                raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _error_details(self) -> StepCompletedPayload:
        if self.status == "error" and not self.error_type:
            raise ValueError("error_type is required when status is 'error'")
        if self.status == "ok" and (self.error_type or self.error_message):
            raise ValueError("error_type/error_message are only allowed when status is 'error'")
        return self


class ItemStateChangedPayload(_Model):
    """A work item moved from one state to another."""

    from_state: Name | None = Field(None, description="None when the item is new.")
    to_state: Name
    reason: Text | None = None
    node: Name | None = None


class ArtifactCreatedPayload(_Model):
    """An artifact version was stored (see sdk.artifacts)."""

    artifact_id: Ulid
    version: int = Field(ge=1, le=2**31 - 1)
    type: Name
    content_hash: Sha256
    size_bytes: NonNegInt


class RunCompletedPayload(_Model):
    """A graph invocation ended, with its totals."""

    status: RunStatus = Field(
        description="interrupted: paused by interrupt() for input; a resume is a new run."
    )
    duration_ms: DurationMs
    steps: NonNegInt = 0
    tokens_in: Tokens = 0
    tokens_out: Tokens = 0
    cost_usd_est: Usd | None = Field(
        None, description="None when a call's price is unknown (see cost_unknown)."
    )
    cost_unknown: bool = Field(False, description="A model without a price was called.")
    error_type: Name | None = None
    error_message: Text | None = None
    otel: JsonObject | None = Field(
        None,
        description=(
            "The OpenTelemetry span this event was mapped from (POST /v1/traces): ids, "
            "name, kind and its attributes, bounded and redacted (docs/otlp.md)."
        ),
    )


# --- payloads: learning ------------------------------------------------------------


class FeedbackReceivedPayload(_Model):
    """Someone or something rated a run, step, item or artifact."""

    target_type: TargetType
    target_id: Id
    rating: Score | None = Field(None, description="Numeric rating, e.g. 1-5 or -1/+1.")
    label: Name | None = Field(None, description="Categorical verdict, e.g. 'thumbs_up'.")
    comment: Text | None = None
    source: Literal["human", "agent", "system"] = "human"
    given_by: Id | None = None

    @model_validator(mode="after")
    def _has_content(self) -> FeedbackReceivedPayload:
        if self.rating is None and self.label is None and self.comment is None:
            raise ValueError("feedback needs at least one of rating, label or comment")
        return self


class CorrectionSubmittedPayload(_Model):
    """An output was corrected; original and corrected are any JSON values."""

    target_type: TargetType
    target_id: Id
    field: Name | None = Field(None, description="Path of the corrected field, if any.")
    original: JsonValue = None
    corrected: JsonValue
    reason: Text | None = None
    submitted_by: Id | None = None


class OutcomeRecordedPayload(_Model):
    """A downstream outcome of the work became known (accepted, merged, refunded, …)."""

    target_type: TargetType
    target_id: Id
    outcome: Name = Field(description="What happened, e.g. 'accepted', 'merged', 'refunded'.")
    success: bool | None = None
    value: Score | None = None
    unit: Name | None = None
    metadata: JsonObject = Field(default_factory=dict)


class EvaluationScoredPayload(_Model):
    """An evaluator scored a target on a metric."""

    target_type: TargetType
    target_id: Id
    evaluator: Name = Field(description="Who or what scored: a model, a rubric, a person.")
    metric: Name
    score: Score
    threshold: Score | None = None
    passed: bool | None = None
    dataset: Name | None = None
    details: JsonObject = Field(default_factory=dict)


class ExamplePromotedPayload(_Model):
    """An output was promoted into a dataset of examples."""

    example_id: Id
    dataset: Name
    source_type: TargetType
    source_id: Id
    source_version: int | None = Field(None, ge=1, le=2**31 - 1)
    promoted_by: Id | None = None
    reason: Text | None = None


class PolicyUpdatedPayload(_Model):
    """A prompt, routing or model policy moved to a new version."""

    policy_name: Name
    from_version: Name | None = None
    to_version: Name
    change_summary: Text | None = None
    updated_by: Id | None = None
    metrics: JsonObject = Field(default_factory=dict)


# --- envelopes ----------------------------------------------------------------------


def _event_name_required(schema: dict[str, Any]) -> None:
    # event_name has a default so builders need not repeat it, but on the wire it is
    # the discriminator and required: say so in the published schema.
    if "event_name" in schema.get("properties", {}):
        schema["required"] = sorted({*schema.get("required", []), "event_name"})


class EventBase(_Model):
    """Fields every event carries. ``required_ids`` lists the ids an event type needs."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_event_name_required)

    required_ids: ClassVar[tuple[str, ...]] = ()

    event_id: Ulid = Field(
        description=(
            "Client-generated ULID, the idempotency key; its time picks the monthly "
            "partition. The ingest API accepts an id only if that time falls in a month "
            "with a live partition (by default the months kept by EVENT_RETENTION_DAYS "
            "up to EVENT_PARTITIONS_AHEAD months ahead; mint ids from the current time): "
            "any other id is refused with 422, error type outside_partitions, whose "
            "message names the live window."
        )
    )
    event_version: int = Field(1, ge=1, le=2**31 - 1)
    ts: AwareDatetime = Field(
        description=(
            "When it happened: an RFC 3339 date-time string with a time zone, e.g. "
            "2026-11-28T10:00:00Z. Numbers (Unix times) are refused."
        )
    )
    run_id: Id | None = None
    item_id: Id | None = None
    workflow_name: Name | None = None
    agent_role: Name | None = None

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any, info: ValidationInfo) -> Any:
        if info.context and info.context.get(PRESCREENED):
            return data  # the caller proved the raw JSON holds no NUL/surrogate/huge int
        problem = find_unsafe_value(data)
        if problem is not None:
            raise _unstorable(problem)
        return data

    @model_validator(mode="after")
    def _ids_present(self) -> EventBase:
        missing = [name for name in self.required_ids if getattr(self, name) is None]
        if missing:
            event_name = getattr(self, "event_name", "this event")
            raise ValueError(f"{event_name} requires {', '.join(missing)}")
        return self

    @field_validator("ts", mode="before")
    @classmethod
    def _rfc3339(cls, value: Any) -> Any:
        # pydantic alone also takes Unix times (numbers, digit strings) and ISO 8601
        # spellings outside RFC 3339, none of which the published schema allows.
        if isinstance(value, datetime) or (isinstance(value, str) and RFC3339.match(value)):
            return value
        raise PydanticCustomError(
            "rfc3339_datetime",
            "must be an RFC 3339 date-time string with a time zone, e.g. "
            "2026-11-28T10:00:00Z (got {kind})",
            {"kind": _kind(value)},
        )

    @field_validator("ts")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise ValueError("ts is out of range once converted to UTC") from None

    @field_validator("event_id")
    @classmethod
    def _time_in_range(cls, value: str) -> str:
        if ulid_ms(value) > MAX_EVENT_MS:
            raise ValueError("the time in event_id is after the year 9999")
        return value


class RunStarted(EventBase):
    required_ids = ("run_id",)
    event_name: Literal["workflow.run_started"] = "workflow.run_started"
    payload: RunStartedPayload = Field(default_factory=RunStartedPayload)


class StepCompleted(EventBase):
    required_ids = ("run_id",)
    event_name: Literal["workflow.step_completed"] = "workflow.step_completed"
    event_version: int = Field(
        STEP_EVENT_VERSION,
        ge=1,
        le=2**31 - 1,
        description="2 (the default) since steps carry calls; 1: totals only, read as before.",
    )
    payload: StepCompletedPayload

    @model_validator(mode="after")
    def _calls_versioned(self) -> StepCompleted:
        if self.payload.calls is not None and self.event_version < STEP_EVENT_VERSION:
            raise ValueError(
                f"payload.calls needs event_version {STEP_EVENT_VERSION} or later "
                f"(got {self.event_version})"
            )
        return self


class ItemStateChanged(EventBase):
    required_ids = ("item_id",)
    event_name: Literal["workflow.item_state_changed"] = "workflow.item_state_changed"
    payload: ItemStateChangedPayload


class ArtifactCreated(EventBase):
    event_name: Literal["workflow.artifact_created"] = "workflow.artifact_created"
    payload: ArtifactCreatedPayload


class RunCompleted(EventBase):
    required_ids = ("run_id",)
    event_name: Literal["workflow.run_completed"] = "workflow.run_completed"
    payload: RunCompletedPayload


class FeedbackReceived(EventBase):
    event_name: Literal["learning.feedback_received"] = "learning.feedback_received"
    payload: FeedbackReceivedPayload


class CorrectionSubmitted(EventBase):
    event_name: Literal["learning.correction_submitted"] = "learning.correction_submitted"
    payload: CorrectionSubmittedPayload


class OutcomeRecorded(EventBase):
    event_name: Literal["learning.outcome_recorded"] = "learning.outcome_recorded"
    payload: OutcomeRecordedPayload


class EvaluationScored(EventBase):
    event_name: Literal["learning.evaluation_scored"] = "learning.evaluation_scored"
    payload: EvaluationScoredPayload


class ExamplePromoted(EventBase):
    event_name: Literal["learning.example_promoted"] = "learning.example_promoted"
    payload: ExamplePromotedPayload


class PolicyUpdated(EventBase):
    event_name: Literal["learning.policy_updated"] = "learning.policy_updated"
    payload: PolicyUpdatedPayload


EVENT_TYPES: tuple[type[EventBase], ...] = (
    RunStarted,
    StepCompleted,
    ItemStateChanged,
    ArtifactCreated,
    RunCompleted,
    FeedbackReceived,
    CorrectionSubmitted,
    OutcomeRecorded,
    EvaluationScored,
    ExamplePromoted,
    PolicyUpdated,
)
EVENT_NAMES: tuple[str, ...] = tuple(t.model_fields["event_name"].default for t in EVENT_TYPES)
EVENT_TYPE_BY_NAME: dict[str, type[EventBase]] = dict(zip(EVENT_NAMES, EVENT_TYPES, strict=True))

Event = Annotated[
    RunStarted
    | StepCompleted
    | ItemStateChanged
    | ArtifactCreated
    | RunCompleted
    | FeedbackReceived
    | CorrectionSubmitted
    | OutcomeRecorded
    | EvaluationScored
    | ExamplePromoted
    | PolicyUpdated,
    Field(discriminator="event_name"),
]
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def parse_event(data: Any, *, prescreened: bool = False) -> EventBase:
    """Validate one event from untrusted, already-decoded JSON (raises ValidationError).

    ``prescreened``: the raw JSON text passed :func:`~sdk.telemetry.values.json_text_is_plain`,
    so the per-value walk of the envelope can be skipped (free-form fields are still walked).
    """
    context = {PRESCREENED: True} if prescreened else None
    return EVENT_ADAPTER.validate_python(data, context=context)


def event_json_schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schema of every event, by event name (for docs and ``wdp events schema``)."""
    return {name: t.model_json_schema(mode="validation") for name, t in EVENT_TYPE_BY_NAME.items()}
