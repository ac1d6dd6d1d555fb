"""Spans of an export as plain values: ids in hex, attributes as a flat dict.

OTLP nests spans in resource and scope groups and wraps every attribute value in an
``AnyValue``; the mapping wants each span with its resource's attributes at hand and
attribute values as Python values. Arrays and key-value lists become lists and dicts,
bytes become hex; depth is bounded (a crafted export cannot recurse without end).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status

MAX_VALUE_DEPTH = 8
STATUS_ERROR = Status.STATUS_CODE_ERROR
SPAN_KINDS = {
    ProtoSpan.SPAN_KIND_INTERNAL: "internal",
    ProtoSpan.SPAN_KIND_SERVER: "server",
    ProtoSpan.SPAN_KIND_CLIENT: "client",
    ProtoSpan.SPAN_KIND_PRODUCER: "producer",
    ProtoSpan.SPAN_KIND_CONSUMER: "consumer",
}


@dataclass(slots=True)
class SpanView:
    """One span, with what the mapping reads of it."""

    index: int  # position in the export, for the response's counts
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: str
    start_ns: int
    end_ns: int
    error: bool
    status_message: str
    exception_type: str | None
    attrs: dict[str, Any]
    resource: dict[str, Any]
    scope: str
    meta: dict[str, Any] | None = None  # the parsed ``metadata`` attribute, once read
    corr: tuple[Any, ...] | None = None  # its correlation attributes, once looked up

    def attr(self, *names: str) -> Any:
        """The first of ``names`` set on the span, else on its resource, else None."""
        for name in names:
            if name in self.attrs:
                return self.attrs[name]
        for name in names:
            if name in self.resource:
                return self.resource[name]
        return None


def iter_spans(request: ExportTraceServiceRequest) -> Iterator[SpanView]:
    index = 0
    for resource_spans in request.resource_spans:
        resource = attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope.name
            for span in scope_spans.spans:
                yield _view(index, span, resource, scope)
                index += 1


def _view(index: int, span: ProtoSpan, resource: dict[str, Any], scope: str) -> SpanView:
    exception_type = None
    for event in span.events:
        if event.name == "exception":
            found = attributes(event.attributes).get("exception.type")
            if isinstance(found, str) and found:
                exception_type = found
    return SpanView(
        index=index,
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_span_id=span.parent_span_id.hex(),
        name=span.name,
        kind=SPAN_KINDS.get(span.kind, "unspecified"),
        start_ns=span.start_time_unix_nano,
        end_ns=span.end_time_unix_nano,
        error=span.status.code == STATUS_ERROR,
        status_message=span.status.message,
        exception_type=exception_type,
        attrs=attributes(span.attributes),
        resource=resource,
        scope=scope,
    )


def attributes(pairs: Any) -> dict[str, Any]:
    """``KeyValue``s as a dict (a repeated key: the last wins, as in the SDKs)."""
    return {kv.key: value(kv.value) for kv in pairs}


def value(any_value: AnyValue, depth: int = 0) -> Any:
    kind = any_value.WhichOneof("value")
    if kind is None:
        return None
    if kind in ("array_value", "kvlist_value"):
        if depth >= MAX_VALUE_DEPTH:
            return "[nested too deep]"
        if kind == "array_value":
            return [value(v, depth + 1) for v in any_value.array_value.values]
        pairs: list[KeyValue] = list(any_value.kvlist_value.values)
        return {kv.key: value(kv.value, depth + 1) for kv in pairs}
    if kind == "bytes_value":
        return any_value.bytes_value.hex()
    return getattr(any_value, kind)
