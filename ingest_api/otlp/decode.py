"""From an OTLP/HTTP request body to an ``ExportTraceServiceRequest``.

Decoded with the official ``opentelemetry-proto`` classes and protobuf's own parsers,
never by hand. One thing protobuf's JSON parser does not know: OTLP/JSON spells trace
and span ids as hex strings (the spec's one deviation from the proto3 JSON mapping),
where protobuf expects base64 - they are converted before parsing.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Literal

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from ingest_api.errors import MalformedJson, UnsupportedMediaType
from ingest_api.parsing import decompress
from sdk.telemetry.values import printable

Format = Literal["protobuf", "json"]
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
MEDIA_TYPES: dict[str, Format] = {PROTOBUF: "protobuf", JSON: "json"}
# Fields of the trace protos that hold ids (bytes): hex in OTLP/JSON.
_ID_FIELDS = frozenset(
    {"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"}
)


def body_format(content_type: str | None) -> Format:
    """The format of a body by its Content-Type; 415 for any other media type."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    try:
        return MEDIA_TYPES[media_type]
    except KeyError:
        raise UnsupportedMediaType(
            f"Content-Type must be {PROTOBUF} or {JSON} (got {media_type or 'none'!r})"
        ) from None


def decode_request(
    raw: bytes, *, fmt: Format, content_encoding: str | None, limit: int
) -> ExportTraceServiceRequest:
    """Gunzip within ``limit`` (413 beyond), then parse; 400 for what does not parse."""
    raw = decompress(raw, content_encoding=content_encoding, limit=limit)
    request = ExportTraceServiceRequest()
    if fmt == "protobuf":
        try:
            request.ParseFromString(raw)
        except (DecodeError, RecursionError, ValueError) as exc:
            raise MalformedJson(f"body is not a valid OTLP protobuf message: {exc}") from None
        return request
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise MalformedJson(f"body is not valid JSON: {exc}") from None
    try:
        json_format.ParseDict(_ids_to_base64(data), request, ignore_unknown_fields=True)
    # SystemError/UnicodeError: upb's parser meeting a lone surrogate in a field name or
    # enum (json.loads lets \ud800 escapes through).
    except (
        json_format.ParseError,
        ValueError,
        TypeError,
        RecursionError,
        SystemError,
        UnicodeError,
    ) as exc:
        raise MalformedJson(
            f"body is not a valid OTLP/JSON trace export: {printable(str(exc))}"
        ) from None
    return request


def _ids_to_base64(value: Any, depth: int = 0) -> Any:
    if depth > 64:
        raise ValueError("JSON nesting is too deep")
    if isinstance(value, dict):
        return {
            k: _hex_id(v)
            if k in _ID_FIELDS and isinstance(v, str)
            else _ids_to_base64(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_ids_to_base64(v, depth + 1) for v in value]
    return value


def _hex_id(value: str) -> str:
    try:
        return base64.b64encode(bytes.fromhex(value)).decode()
    except ValueError:
        raise ValueError(f"an id must be a hex string (got {value[:40]!r})") from None


def encode_response(response: ExportTraceServiceResponse, fmt: Format) -> bytes:
    """The response in the request's format (the spec: the same Content-Type)."""
    if fmt == "protobuf":
        encoded: bytes = response.SerializeToString()
        return encoded
    return json.dumps(json_format.MessageToDict(response)).encode()


__all__ = ["Format", "body_format", "decode_request", "encode_response"]
