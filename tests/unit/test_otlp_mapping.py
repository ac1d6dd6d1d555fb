"""The OTLP mapping on spans made by the real OpenTelemetry SDK: hostile and odd
attribute values still give valid events, secrets stay out, order does not matter."""

from __future__ import annotations

import json
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan

from ingest_api.errors import MalformedJson
from ingest_api.otlp.decode import decode_request
from ingest_api.otlp.mapping import Mapped, map_export
from ingest_api.otlp.spans import iter_spans
from sdk.telemetry.events import parse_event
from tests.support.otel_spans import SpanRecorder, chat_span, export_request


def mapped(spans: tuple[ReadableSpan, ...] | list[ReadableSpan]) -> Mapped:
    result = map_export(iter_spans(export_request(list(spans))))
    for m in result.events:
        parse_event(m.event)  # every mapped event is valid, or this raises
    return result


def steps(result: Mapped) -> list[dict[str, Any]]:
    return [
        m.event["payload"]
        for m in result.events
        if m.event["event_name"] == "workflow.step_completed"
    ]


def one_agent(recorder: SpanRecorder, **chat: Any) -> None:
    with (
        recorder.tracer.start_as_current_span("run"),
        recorder.tracer.start_as_current_span("invoke_agent a") as agent,
    ):
        agent.set_attributes({"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "a"})
        chat_span(recorder.tracer, **chat)


@pytest.mark.parametrize("bad", [float("inf"), float("nan"), "²", "12³", -5, "lots"])
def test_a_token_count_that_is_no_count_is_not_reported(bad: Any) -> None:
    recorder = SpanRecorder()
    one_agent(recorder, tokens_in=bad, tokens_out=bad)
    (step,) = steps(mapped(recorder.spans()))
    (call,) = step["calls"]
    assert (call["tokens_in"], call["tokens_out"]) == (0, 0)
    assert call["usage_reported"] is False


def test_absurd_cache_counts_stay_within_the_cap_and_valid() -> None:
    recorder = SpanRecorder()
    one_agent(
        recorder,
        **{
            "gen_ai.usage.cache_read.input_tokens": 10**12,
            "gen_ai.usage.cache_creation.input_tokens": 10**12,
        },
    )
    (step,) = steps(mapped(recorder.spans()))
    assert step["calls"][0]["tokens_in"] == 10**12


def test_a_span_that_is_node_and_model_call_is_one_step_with_its_own_tokens() -> None:
    recorder = SpanRecorder()
    with recorder.tracer.start_as_current_span("lonely") as span:
        span.set_attributes(
            {
                "graph.node.id": "solo",
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "m",
                "gen_ai.usage.input_tokens": 9,
                "gen_ai.usage.output_tokens": 2,
            }
        )
    result = mapped(recorder.spans())
    (step,) = steps(result)
    assert (step["node"], step["tokens_in"], step["tokens_out"]) == ("solo", 9, 2)
    ids = [m.event["event_id"] for m in result.events]
    assert len(ids) == len(set(ids))


def test_the_same_spans_in_another_order_map_to_the_same_events() -> None:
    recorder = SpanRecorder()
    with (
        recorder.tracer.start_as_current_span("run"),
        recorder.tracer.start_as_current_span("invoke_agent a") as agent,
    ):
        agent.set_attributes({"gen_ai.operation.name": "invoke_agent"})
        chat_span(recorder.tracer, model="first", tokens_in=1)
        chat_span(recorder.tracer, model="second", tokens_in=2)
    spans = list(recorder.spans())
    forward = [m.event for m in mapped(spans).events]
    backward = [m.event for m in mapped(spans[::-1]).events]
    key = lambda e: e["event_id"]  # noqa: E731
    assert sorted(forward, key=key) == sorted(backward, key=key)


def test_credentials_stay_out_of_the_otel_field() -> None:
    recorder = SpanRecorder()
    with recorder.tracer.start_as_current_span("lonely") as span:
        span.set_attributes(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "m",
                "llm.invocation_parameters": json.dumps({"api_key": "sk-1", "temperature": 0}),
                "metadata": json.dumps({"openai_api_key": "sk-2", "langgraph_node": "x"}),
                "url.full": "https://user:sk-3@api.example/v1?key=sk-4",
                "apitoken": "sk-5",
                "http.request.header.authorization": "Bearer sk-6",
            }
        )
    dumped = json.dumps([m.event for m in mapped(recorder.spans()).events])
    assert "sk-" not in dumped
    assert "api.example" in dumped  # the URL itself is kept
    assert '"temperature": 0' in dumped


def test_nul_in_the_provider_and_empty_node_names_do_not_refuse_the_step() -> None:
    recorder = SpanRecorder()
    with recorder.tracer.start_as_current_span("") as node:
        node.set_attribute("graph.node.id", "")
        chat_span(recorder.tracer, **{"gen_ai.provider.name": "open\x00ai"})
    (step,) = steps(mapped(recorder.spans()))
    assert step["node"] == "node"
    assert "\x00" not in step["calls"][0]["provider"]


def test_correlation_ids_from_langgraph_metadata() -> None:
    recorder = SpanRecorder()
    with recorder.tracer.start_as_current_span("agent") as node:
        node.set_attribute(
            "metadata", json.dumps({"langgraph_node": "agent", "wdp.item_id": "item-9"})
        )
        node.set_attribute("openinference.span.kind", "CHAIN")
    (event,) = [m.event for m in mapped(recorder.spans()).events if "payload" in m.event
                and m.event["event_name"] == "workflow.step_completed"]  # fmt: skip
    assert event["item_id"] == "item-9"


def test_lone_surrogates_in_otlp_json_are_a_400_not_a_crash() -> None:
    body = b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"kind": "\\ud800x"}]}]}]}'
    with pytest.raises(MalformedJson):
        decode_request(body, fmt="json", content_encoding=None, limit=10_000)


def test_names_that_look_like_json_stay_text_in_the_otel_field() -> None:
    # A JSON-object-looking attribute name was parsed like a value and became a dict
    # key: TypeError, a 500 for the whole export. Names (and span names) are text.
    recorder = SpanRecorder()
    with recorder.tracer.start_as_current_span('{"span": "name"}') as span:
        span.set_attributes(
            {"gen_ai.operation.name": "chat", "gen_ai.request.model": "m", '{"a": 1}': "v"}
        )
    (event,) = [m.event for m in mapped(recorder.spans()).events if "calls" in m.event["payload"]]
    otel = event["payload"]["otel"]
    assert otel["attributes"]['{"a": 1}'] == "v"
    assert otel["name"] == '{"span": "name"}'
