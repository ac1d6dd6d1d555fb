"""Spans made by the real OpenTelemetry SDK, for the /v1/traces tests.

``SpanRecorder`` is a TracerProvider whose finished spans are kept in memory (the
SDK's own ``InMemorySpanExporter``); ``export_request`` encodes them with the SDK's own
OTLP encoder, exactly as ``OTLPSpanExporter`` sends them.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode, Tracer


class SpanRecorder:
    def __init__(self, **resource: Any) -> None:
        self.memory = InMemorySpanExporter()
        self.provider = TracerProvider(
            resource=Resource.create({"service.name": "otel-workflow", **resource})
        )
        self.provider.add_span_processor(SimpleSpanProcessor(self.memory))
        self.tracer: Tracer = self.provider.get_tracer("wdp-tests")

    def spans(self) -> tuple[ReadableSpan, ...]:
        return self.memory.get_finished_spans()


def export_request(spans: Sequence[ReadableSpan]) -> ExportTraceServiceRequest:
    request: ExportTraceServiceRequest = encode_spans(spans)
    return request


def export_json(spans: Sequence[ReadableSpan]) -> dict[str, Any]:
    """The export as OTLP/JSON: protobuf's JSON mapping with ids in hex (the OTLP spec)."""
    data = json_format.MessageToDict(export_request(spans))
    for resource in data.get("resourceSpans", []):
        for scope in resource.get("scopeSpans", []):
            for span in scope.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = _b64_to_hex(span[key])
    return data


def _b64_to_hex(value: str) -> str:
    return base64.b64decode(value).hex()


def chat_span(
    tracer: Tracer,
    *,
    model: str = "gpt-4o-mini",
    tokens_in: int = 100,
    tokens_out: int = 20,
    **attributes: Any,
) -> None:
    """One GenAI chat span (semantic conventions) under the current span."""
    with tracer.start_as_current_span(f"chat {model}") as span:
        span.set_attributes(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": model,
                "gen_ai.usage.input_tokens": tokens_in,
                "gen_ai.usage.output_tokens": tokens_out,
                **attributes,
            }
        )


def agent_run(
    recorder: SpanRecorder,
    *,
    agents: Sequence[str] = ("planner", "writer"),
    fail: str | None = None,
    **root_attributes: Any,
) -> None:
    """A root span, one invoke_agent span per agent, each with one chat call."""
    tracer = recorder.tracer
    with tracer.start_as_current_span("workflow", attributes=root_attributes):
        for name in agents:
            with tracer.start_as_current_span(f"invoke_agent {name}") as agent:
                agent.set_attributes(
                    {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": name}
                )
                chat_span(tracer, **{"http.request.header.authorization": "Bearer sk-secret"})
                if name == fail:
                    agent.record_exception(ValueError("bad plan"))
                    agent.set_status(Status(StatusCode.ERROR, "bad plan"))
