"""Hypothesis strategies for OTLP exports that stress the mapping: GenAI and
OpenInference spans with hostile attribute values (blank, NUL, huge, non-finite,
nested, JSON in strings), shared and missing ids, parents in and out of the export."""

from __future__ import annotations

import json

from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

TRACE_IDS = [b"", bytes(range(16)), bytes(range(16, 32)), bytes(101)]  # 101: a run id too long
SPAN_IDS = [b"", *(bytes([n] * 8) for n in range(1, 7))]
NAMES = [
    "chat gpt-4o",
    "invoke_agent a",
    "plan",
    "  ",
    "",
    "\x00node",
    "é" * 250,
    "draft",
    "😀" * 600,
]
TEXTS = st.sampled_from(
    ["", " ", "gpt-4o", "openai", "\x00", "x" * 300, "résumé", "plan", "7", "1" * 5000, "😀" * 9]
)
NUMBERS = st.one_of(
    st.integers(min_value=-5, max_value=2_000),
    st.sampled_from([2**40, 10**12, 10**12 + 1, 2**63 - 1, -(2**63)]),
)
FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, 0.5, 1e9, 1e9 + 1, 1.5e308]),
)
METADATA = st.builds(
    lambda node, step, extra: json.dumps({"langgraph_node": node, "langgraph_step": step, **extra}),
    st.sampled_from(["plan", "draft", "", "  ", "\x00"]),
    st.one_of(st.integers(min_value=-2, max_value=2**32), st.text(max_size=3)),
    st.dictionaries(
        st.sampled_from(["wdp.run_id", "wdp.item_id", "api_key", "thread_id"]), TEXTS, max_size=2
    ),
)
KEYS = [
    "gen_ai.operation.name",
    "gen_ai.agent.name",
    "gen_ai.request.model",
    "gen_ai.response.model",
    "gen_ai.provider.name",
    "gen_ai.system",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.reasoning.output_tokens",
    "gen_ai.usage.cost",
    "llm.token_count.prompt",
    "llm.token_count.completion",
    "llm.model_name",
    "llm.cost.total",
    "openinference.span.kind",
    "graph.node.id",
    "graph.node.name",
    "metadata",
    "wdp.run_id",
    "wdp.item_id",
    "wdp.workflow_name",
    "wdp.agent_role",
    "service.name",
    "http.request.header.authorization",
    "url.full",
    "custom.attribute",
    '{"looks": "like JSON"}',
    "name\x00with NUL",
]
OPERATIONS = st.sampled_from(["chat", "embeddings", "invoke_agent", "execute_tool", "x"])
KINDS = st.sampled_from(["LLM", "EMBEDDING", "AGENT", "CHAIN", "TOOL"])


def _any_value(draw: st.DrawFn, key: str, depth: int = 0) -> AnyValue:
    if key == "gen_ai.operation.name":
        return AnyValue(string_value=draw(OPERATIONS))
    if key == "openinference.span.kind":
        return AnyValue(string_value=draw(KINDS))
    if key == "metadata" and draw(st.booleans()):
        return AnyValue(string_value=draw(METADATA))
    choice = draw(st.integers(min_value=0, max_value=7 if depth < 2 else 4))
    if choice == 0:
        return AnyValue(string_value=draw(TEXTS))
    if choice == 1:
        return AnyValue(int_value=draw(NUMBERS))
    if choice == 2:
        return AnyValue(double_value=draw(FLOATS))
    if choice == 3:
        return AnyValue(bool_value=draw(st.booleans()))
    if choice == 4:
        return AnyValue(string_value=str(draw(NUMBERS)))
    if choice == 5:
        return AnyValue(bytes_value=draw(st.binary(max_size=4)))
    value = AnyValue()
    if choice == 6:
        value.array_value.values.extend(
            _any_value(draw, "x", depth + 1) for _ in range(draw(st.integers(0, 2)))
        )
    else:
        for name in draw(st.lists(st.sampled_from(["a", "password", "k"]), max_size=2)):
            value.kvlist_value.values.append(KeyValue(key=name, value=_any_value(draw, name, 1)))
    return value


def _attributes(draw: st.DrawFn, most: int) -> list[KeyValue]:
    keys = draw(st.lists(st.sampled_from(KEYS), max_size=most))
    return [KeyValue(key=key, value=_any_value(draw, key)) for key in keys]


@st.composite
def exports(draw: st.DrawFn) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    for _ in range(draw(st.integers(min_value=1, max_value=2))):
        resource_spans = request.resource_spans.add()
        resource_spans.resource.attributes.extend(_attributes(draw, 2))
        scope = resource_spans.scope_spans.add()
        scope.scope.name = draw(st.sampled_from(["", "openinference", "\x00s"]))
        for _ in range(draw(st.integers(min_value=1, max_value=7))):
            start = draw(st.integers(min_value=0, max_value=2**64 - 1))
            span = Span(
                trace_id=draw(st.sampled_from(TRACE_IDS)),
                span_id=draw(st.sampled_from(SPAN_IDS)),
                parent_span_id=draw(st.sampled_from(SPAN_IDS)),
                name=draw(st.sampled_from(NAMES)),
                kind=draw(st.integers(min_value=0, max_value=5)),
                start_time_unix_nano=start,
                end_time_unix_nano=draw(
                    st.sampled_from([start, min(start + 5_000_000, 2**64 - 1), 0])
                ),
            )
            span.attributes.extend(_attributes(draw, 8))
            if draw(st.integers(min_value=0, max_value=9)) == 0:  # over the 8 KB otel budget
                span.attributes.extend(
                    KeyValue(key=f"custom.{n}", value=AnyValue(string_value="x" * 300))
                    for n in range(30)
                )
            if draw(st.booleans()):
                span.status.code = Status.STATUS_CODE_ERROR
                span.status.message = draw(TEXTS)
            if draw(st.booleans()):
                event = span.events.add()
                event.name = "exception"
                event.attributes.append(
                    KeyValue(key="exception.type", value=AnyValue(string_value=draw(TEXTS)))
                )
            scope.spans.append(span)
    return request
