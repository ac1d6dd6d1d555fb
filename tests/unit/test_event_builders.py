"""The builders and the payload TypedDicts against the models, the one source of the contract.

The builders and TypedDicts are generated from the models (sdk/telemetry/codegen.py);
these tests fail when a generated file is stale, when a builder's signature or a
TypedDict drifts from its model however it came about (an edit by hand, a generator
bug), and when a builder does not build exactly what its model says.
"""

from __future__ import annotations

import functools
import inspect
import operator
import types
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Optional, Union, get_args, get_origin, get_type_hints

import pytest
from pydantic import AwareDatetime, BaseModel, ValidationError

from sdk.errors import WdpError
from sdk.telemetry import builders, codegen, payloads
from sdk.telemetry.client import TelemetryClient
from sdk.telemetry.deferred import DeferredEvent
from sdk.telemetry.errors import InvalidEventError
from sdk.telemetry.events import (
    EVENT_TYPE_BY_NAME,
    EVENT_TYPES,
    EventBase,
    ItemStateChanged,
    RunCompleted,
    StepCompleted,
)
from sdk.telemetry.model_calls import ModelCall
from sdk.telemetry.values import new_ulid

PACKAGE = Path(codegen.__file__).resolve().parent
EMPTY = inspect.Parameter.empty

# --- the comparison -------------------------------------------------------------------


def expected_envelope() -> dict[str, Any]:
    """The builders' envelope arguments: the envelope's fields (but event_version), all
    optional (ids from the correlation, event_id and ts minted), and the client."""
    hints = get_type_hints(EventBase)
    fields = {n: hints[n] for n in EventBase.model_fields if n != "event_version"}
    fields["ts"] = datetime if fields["ts"] is AwareDatetime else fields["ts"]
    return {name: Optional[hint] for name, hint in fields.items()} | {  # noqa: UP045
        "client": Optional[TelemetryClient]  # noqa: UP045
    }


def as_dicts(hint: Any) -> Any:
    """A model's field type as builders and TypedDicts spell it: a nested model (a
    step's calls) is its generated TypedDict."""
    if isinstance(hint, type) and issubclass(hint, BaseModel):
        return getattr(payloads, f"{hint.__name__}Dict")
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        return functools.reduce(operator.or_, map(as_dicts, args))
    if origin is list:
        return list[as_dicts(args[0])]  # type: ignore[misc]
    return hint


def signature_drift(
    signature: inspect.Signature, hints: dict[str, Any], event_type: type[EventBase]
) -> list[str]:
    """Every way a builder's signature differs from its model: names, keyword-only,
    required-ness, defaults, annotations (constraints aside) and the return type."""
    model = codegen.payload_model(event_type)
    fields, field_hints = model.model_fields, get_type_hints(model)
    envelope = expected_envelope()
    params = signature.parameters
    problems = [f"{n}: not keyword-only" for n, p in params.items() if p.kind is not p.KEYWORD_ONLY]
    payload = {n: p for n, p in params.items() if n not in envelope}
    of = model.__name__
    problems += [f"{n}: a field of {of}, not an argument" for n in fields - payload.keys()]
    problems += [f"{n}: not a field of {of}" for n in payload.keys() - fields.keys()]
    for name in sorted(payload.keys() & fields.keys()):
        field, param, hint = fields[name], payload[name], as_dicts(field_hints[name])
        if codegen.filled_by_model(field):  # None here: the model's default applies
            hint, default = Optional[hint], None  # noqa: UP045
        else:
            default = field.default
        if field.is_required() and param.default is not EMPTY:
            problems.append(f"{name}: required in the model, has a default here")
        elif not field.is_required() and param.default is EMPTY:
            problems.append(f"{name}: optional in the model (default {default!r}), required here")
        elif not field.is_required() and (
            type(param.default) is not type(default) or param.default != default
        ):
            problems.append(f"{name}: default {param.default!r} here, {default!r} in the model")
        if hints.get(name) != hint:
            problems.append(f"{name}: annotated {hints.get(name)} here, {hint} in the model")
    for name, hint in envelope.items():
        if name not in params:
            problems.append(f"{name}: envelope argument missing")
        elif params[name].default is not None or hints.get(name) != hint:
            problems.append(f"{name}: envelope argument should be {hint} = None")
    if hints.get("return") is not event_type:
        problems.append(f"returns {hints.get('return')}, not {event_type.__name__}")
    return problems


def drift(builder: Callable[..., Any], event_type: type[EventBase]) -> list[str]:
    return signature_drift(inspect.signature(builder), get_type_hints(builder), event_type)


def all_builders() -> dict[str, Callable[..., Any]]:
    """Every per-event builder the SDK exports (``emit_*``, and any ``build_*``)."""
    generic = {"emit_batch", "emit_deferred"}
    return {
        name: getattr(builders, name)
        for name in dir(builders)
        if name.startswith(("emit_", "build_")) and name not in generic
    }


# --- generated files are current; builders and TypedDicts match the models ------------


@pytest.mark.parametrize("name", sorted(codegen.GENERATED))
def test_generated_modules_are_current(name: str) -> None:
    assert (PACKAGE / name).read_text() == codegen.GENERATED[name](), (
        f"sdk/telemetry/{name} is stale: python -m sdk.telemetry.codegen"
    )


def test_there_is_exactly_one_builder_per_event() -> None:
    returned = [get_type_hints(b)["return"] for b in all_builders().values()]
    assert sorted(t.__name__ for t in returned) == sorted(t.__name__ for t in EVENT_TYPES)
    assert {codegen.builder_name(t) for t in EVENT_TYPES} == set(all_builders())


@pytest.mark.parametrize("event_type", EVENT_TYPES, ids=lambda t: t.__name__)
def test_each_builder_signature_matches_its_model(event_type: type[EventBase]) -> None:
    assert drift(getattr(builders, codegen.builder_name(event_type)), event_type) == []


def _mutated(
    change: Callable[[dict[str, inspect.Parameter], dict[str, Any]], None],
) -> list[str]:
    """The drift of emit_step_completed's signature after ``change``."""
    signature = inspect.signature(builders.emit_step_completed)
    params, hints = dict(signature.parameters), get_type_hints(builders.emit_step_completed)
    change(params, hints)
    return signature_drift(
        signature.replace(parameters=list(params.values())), hints, StepCompleted
    )


def _rename(params: dict[str, inspect.Parameter], hints: dict[str, Any]) -> None:
    params["modell"] = params.pop("model").replace(name="modell")
    hints["modell"] = hints.pop("model")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (_rename, ["model: a field of StepCompletedPayload, not an argument",
                   "modell: not a field of StepCompletedPayload"]),
        (lambda p, h: p.pop("cost_unknown"),
         ["cost_unknown: a field of StepCompletedPayload, not an argument"]),
        (lambda p, h: p.update(tokens_in=p["tokens_in"].replace(default=1)),
         ["tokens_in: default 1 here, 0 in the model"]),
        (lambda p, h: p.update(cost_unknown=p["cost_unknown"].replace(default=0)),
         ["cost_unknown: default 0 here, False in the model"]),
        (lambda p, h: p.update(node=p["node"].replace(default=None)),
         ["node: required in the model, has a default here"]),
        (lambda p, h: p.update(model=p["model"].replace(default=EMPTY)),
         ["model: optional in the model (default None), required here"]),
        (lambda p, h: h.update(step=str),
         ["step: annotated <class 'str'> here, <class 'int'> in the model"]),
        (lambda p, h: h.update(status=Literal["ok", "failed"]),
         ["status: annotated typing.Literal['ok', 'failed'] here, "
          "typing.Literal['ok', 'error'] in the model"]),
        (lambda p, h: p.pop("client"), ["client: envelope argument missing"]),
        (lambda p, h: p.update(run_id=p["run_id"].replace(default="r")),
         ["run_id: envelope argument should be typing.Optional[str] = None"]),
        (lambda p, h: h.update({"return": RunCompleted}),
         [f"returns {RunCompleted}, not StepCompleted"]),
    ],
    ids=["renamed", "missing", "default", "bool-default", "made-optional", "made-required",
         "annotation", "literal", "no-client", "envelope-default", "return"],
)  # fmt: skip
def test_the_comparison_finds_each_kind_of_drift(
    change: Callable[[dict[str, inspect.Parameter], dict[str, Any]], None], expected: list[str]
) -> None:
    assert _mutated(change) == expected


def emit_item_state_changed_by_hand(  # what a hand-edited builder with two slips looks like
    *,
    from_state: str | None = None,
    to_state: str | None = None,
    reason: str | None = None,
    nodes: str | None = None,
    run_id: str | None = None,
    item_id: str | None = None,
    workflow_name: str | None = None,
    agent_role: str | None = None,
    event_id: str | None = None,
    ts: datetime | None = None,
    client: TelemetryClient | None = None,
) -> ItemStateChanged:
    raise NotImplementedError


def test_the_comparison_fails_on_a_wrong_function() -> None:
    assert drift(emit_item_state_changed_by_hand, ItemStateChanged) == [
        "node: a field of ItemStateChangedPayload, not an argument",
        "nodes: not a field of ItemStateChangedPayload",
        "to_state: required in the model, has a default here",
        "to_state: annotated str | None here, <class 'str'> in the model",
    ]


@pytest.mark.parametrize("event_type", EVENT_TYPES, ids=lambda t: t.__name__)
def test_each_payload_typed_dict_matches_its_model(event_type: type[EventBase]) -> None:
    model = codegen.payload_model(event_type)
    typed = getattr(payloads, codegen.dict_name(event_type))
    fields = model.model_fields
    assert set(typed.__annotations__) == set(fields)
    assert typed.__required_keys__ == {n for n, f in fields.items() if f.is_required()}
    assert typed.__optional_keys__ == {n for n, f in fields.items() if not f.is_required()}
    hints, field_hints = get_type_hints(typed), get_type_hints(model)
    assert {n: hints[n] for n in fields} == {n: as_dicts(field_hints[n]) for n in fields}


def test_the_model_calls_typed_dict_matches_its_model() -> None:
    typed, fields = payloads.ModelCallDict, ModelCall.model_fields
    assert typed.__required_keys__ == {n for n, f in fields.items() if f.is_required()}
    assert typed.__optional_keys__ == {n for n, f in fields.items() if not f.is_required()}
    assert get_type_hints(typed) == get_type_hints(ModelCall)


# --- every builder builds what its model says, and refuses what it refuses -------------

FULL: dict[str, dict[str, Any]] = {
    "workflow.run_started": {
        "trigger": "api", "graph_version": "g1", "attempt": 2, "input_summary": "in",
        "metadata": {"k": "v"}, "otel": {"span_id": "ab"},
    },
    "workflow.step_completed": {
        "node": "plan", "step": 3, "attempt": 2, "status": "error", "duration_ms": 1.5,
        "model": "m", "tokens_in": 10, "tokens_out": 2, "tokens_cached_in": 4,
        "cost_usd_est": 0.01, "cost_unknown": True,
        "error_type": "ValueError", "error_message": "boom",
        "calls": [
            {"model": "m", "provider": "openai", "tokens_in": 7, "tokens_cached_in": 4,
             "tokens_cache_write": 1, "tokens_out": 2, "tokens_reasoning": 1,
             "cost_usd_reported": 0.002},
            {"model": "n", "tokens_in": 3},
        ],
        "otel": {"span_id": "cd"},
    },
    "workflow.item_state_changed": {
        "from_state": "new", "to_state": "planned", "reason": "why", "node": "plan",
    },
    "workflow.artifact_created": {
        "artifact_id": new_ulid(), "version": 2, "type": "draft", "content_hash": "a" * 64,
        "size_bytes": 7,
    },
    "workflow.run_completed": {
        "status": "failed", "duration_ms": 9.0, "steps": 4, "tokens_in": 10, "tokens_out": 2,
        "cost_usd_est": None, "cost_unknown": True, "error_type": "E", "error_message": "m",
        "otel": {"span_id": "ef"},
    },
    "learning.feedback_received": {
        "target_type": "run", "target_id": "r", "rating": 4.0, "label": "good",
        "comment": "c", "source": "agent", "given_by": "u",
    },
    "learning.correction_submitted": {
        "target_type": "artifact", "target_id": "a", "field": "title", "original": [1],
        "corrected": {"x": 2}, "reason": "r", "submitted_by": "u",
    },
    "learning.outcome_recorded": {
        "target_type": "item", "target_id": "i", "outcome": "merged", "success": True,
        "value": 3.5, "unit": "usd", "metadata": {"pr": 1},
    },
    "learning.evaluation_scored": {
        "target_type": "step", "target_id": "s", "evaluator": "judge", "metric": "f1",
        "score": 0.9, "threshold": 0.5, "passed": True, "dataset": "golden",
        "details": {"n": 3},
    },
    "learning.example_promoted": {
        "example_id": "e", "dataset": "golden", "source_type": "artifact", "source_id": "a",
        "source_version": 2, "promoted_by": "u", "reason": "r",
    },
    "learning.policy_updated": {
        "policy_name": "router", "from_version": "v1", "to_version": "v2",
        "change_summary": "s", "updated_by": "u", "metrics": {"acc": 0.9},
    },
}  # fmt: skip

# One invalid value per builder, and the field the error must name.
INVALID: dict[str, tuple[dict[str, Any], str]] = {
    "workflow.run_started": ({"attempt": 0}, "attempt"),
    "workflow.step_completed": ({"duration_ms": -1.0}, "duration_ms"),
    "workflow.item_state_changed": ({"to_state": ""}, "to_state"),
    "workflow.artifact_created": ({"content_hash": "not-hex"}, "content_hash"),
    "workflow.run_completed": ({"status": "done"}, "status"),
    "learning.feedback_received": ({"target_type": "planet"}, "target_type"),
    "learning.correction_submitted": ({"corrected": {"k": "a\x00"}}, "corrected"),
    "learning.outcome_recorded": ({"value": float("nan")}, "value"),
    "learning.evaluation_scored": ({"score": float("inf")}, "score"),
    "learning.example_promoted": ({"source_version": 0}, "source_version"),
    "learning.policy_updated": ({"policy_name": "x" * 201}, "policy_name"),
}

# What a minimal valid event needs besides the required fields.
MINIMAL_EXTRA = {
    "workflow.step_completed": {"status": "ok"},  # "error" needs an error_type
    "learning.feedback_received": {"comment": "some content"},
}

MOMENT = datetime(2026, 11, 28, 10, tzinfo=UTC)


class RecordingClient(TelemetryClient):
    """A real, disabled client that keeps what it is handed."""

    def __init__(self) -> None:
        super().__init__(disabled=True, clock=lambda: MOMENT)
        self.received: list[EventBase | DeferredEvent] = []

    def emit(self, event: EventBase | DeferredEvent) -> None:
        self.received.append(event)


def _builder(name: str) -> Callable[..., EventBase]:
    builder: Callable[..., EventBase]
    builder = getattr(builders, codegen.builder_name(EVENT_TYPE_BY_NAME[name]))
    return builder


def test_every_event_has_a_full_and_an_invalid_example() -> None:
    assert set(FULL) == set(INVALID) == set(EVENT_TYPE_BY_NAME)
    for name, fields in FULL.items():  # every field given, so every argument is exercised
        assert set(fields) == set(codegen.payload_model(EVENT_TYPE_BY_NAME[name]).model_fields)


@pytest.mark.parametrize("name", sorted(FULL))
def test_each_builder_builds_what_its_model_validates(name: str) -> None:
    event_type, client = EVENT_TYPE_BY_NAME[name], RecordingClient()
    event = _builder(name)(**FULL[name], run_id="r", item_id="i", agent_role="a", client=client)
    expected = event_type.model_validate(
        {"event_id": event.event_id, "ts": MOMENT, "run_id": "r", "item_id": "i",
         "agent_role": "a", "payload": FULL[name]}
    )  # fmt: skip
    assert type(event) is event_type
    assert event == expected
    assert client.received == [event]


@pytest.mark.parametrize("name", sorted(FULL))
def test_each_builder_leaves_the_defaults_to_its_model(name: str) -> None:
    event_type = EVENT_TYPE_BY_NAME[name]
    model = codegen.payload_model(event_type)
    required = {k: v for k, v in FULL[name].items() if model.model_fields[k].is_required()}
    required |= MINIMAL_EXTRA.get(name, {})
    event = _builder(name)(**required, run_id="r", item_id="i", client=RecordingClient())
    assert event.payload == model.model_validate(required)  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", sorted(INVALID))
def test_each_builder_raises_the_sdks_error_for_invalid_input(name: str) -> None:
    change, field = INVALID[name]
    client = RecordingClient()
    with pytest.raises(InvalidEventError) as caught:
        _builder(name)(**(FULL[name] | change), run_id="r", item_id="i", client=client)
    error = caught.value
    assert isinstance(error, WdpError)
    assert isinstance(error, ValidationError)  # `except ValidationError` keeps working
    located = [(e["loc"][:2], e["msg"]) for e in error.errors()]
    assert any(loc == ("payload", field) or f"payload.{field}" in msg for loc, msg in located)
    assert client.received == []  # nothing queued


@pytest.mark.parametrize("name", sorted(INVALID))
def test_the_sdks_error_carries_the_models_errors_unchanged(name: str) -> None:
    with pytest.raises(ValidationError) as caught:
        EVENT_TYPE_BY_NAME[name].model_validate(
            {"event_id": new_ulid(), "ts": MOMENT, "run_id": "r", "item_id": "i",
             "payload": FULL[name] | INVALID[name][0]}
        )  # fmt: skip
    original = caught.value
    converted = InvalidEventError.of(original)
    assert converted.title == original.title
    assert str(converted) == str(original)
    assert converted.errors(include_url=False) == original.errors(include_url=False)


def test_the_error_keeps_the_context_of_the_contracts_own_error_types() -> None:
    with pytest.raises(InvalidEventError) as caught:
        builders.emit_run_started(run_id="r", metadata={"k": "a\x00"}, client=RecordingClient())
    (error,) = caught.value.errors()
    assert (error["type"], error["loc"]) == ("unstorable_value", ("payload", "metadata"))
    assert error["ctx"]["loc"] == ("k",)  # inside the value: what the API reports
    assert "NUL" in error["msg"]


def test_a_misspelled_argument_is_a_type_error_at_the_call() -> None:
    with pytest.raises(TypeError, match="modell"):
        builders.emit_step_completed(  # type: ignore[call-arg]
            node="n", step=1, status="ok", duration_ms=1.0, modell="m", client=RecordingClient()
        )
