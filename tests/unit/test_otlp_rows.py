"""The OTLP path's rows built without a second validation agree with the contract:
on random hostile exports, an event mapped from spans fits exactly when the pydantic
models accept it, and its direct row is the validated row (see ingest_api.otlp.rows)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from pydantic import ValidationError

from ingest_api.otlp.mapping import map_export
from ingest_api.otlp.rows import direct_row, fits
from ingest_api.otlp.spans import iter_spans
from ingest_api.store import EventRow
from sdk.telemetry.events import parse_event
from tests.support.otlp_strategies import exports


def typed(text: str) -> object:
    """The JSON with its numbers tagged by type: 0 and 0.0 (and 1 and true) differ."""
    return json.loads(text, parse_int=lambda v: ("int", v), parse_float=lambda v: ("float", v))


PROPERTIES = settings(derandomize=True, database=None, deadline=None, max_examples=300)


@PROPERTIES
@given(request=exports())
def test_fits_exactly_when_the_models_accept_and_the_rows_agree(
    request: ExportTraceServiceRequest,
) -> None:
    for mapped in map_export(iter_spans(request)).events:
        event = mapped.event
        try:
            validated = EventRow.from_event(parse_event(event))
        except ValidationError:
            assert not fits(event), event
            continue
        assert fits(event), event
        direct = direct_row(event)
        assert typed(direct.payload_json) == typed(validated.payload_json)
        assert direct._replace(payload_json="") == validated._replace(payload_json="")


def test_a_step_over_the_token_cap_does_not_fit() -> None:
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    for n in (1, 2):
        span = scope.spans.add(trace_id=bytes(16), span_id=bytes([n] * 8), name="chat")
        span.parent_span_id = bytes([9] * 8)
        span.start_time_unix_nano = 10**18
        span.attributes.add(key="gen_ai.operation.name").value.string_value = "chat"
        span.attributes.add(key="gen_ai.usage.input_tokens").value.int_value = 10**12
    node = scope.spans.add(trace_id=bytes(16), span_id=bytes([9] * 8), name="plan")
    node.attributes.add(key="graph.node.id").value.string_value = "plan"
    events = [m.event for m in map_export(iter_spans(request)).events]
    (step,) = [e for e in events if e["event_name"] == "workflow.step_completed"]
    assert step["payload"]["tokens_in"] == 2 * 10**12
    assert not fits(step)
    with pytest.raises(ValidationError, match="less than or equal"):
        parse_event(step)
