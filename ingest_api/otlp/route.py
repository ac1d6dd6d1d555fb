"""``POST /v1/traces``: OTLP/HTTP trace export in, workflow events stored exactly once.

Answers as the OTLP/HTTP spec asks: 200 with an ``ExportTraceServiceResponse`` in the
request's format, with ``partial_success`` (``rejected_spans`` and a message) when some
spans' events were refused (invalid, outside the live partitions, or a conflict with
what the same span stored before); 400 for a body that does not decode, 413, 415,
401/403, and 429/503 with ``Retry-After``, which OTLP exporters retry. Duplicates (an
exporter's retry) are success. Every event of one export is written in one statement,
with the batch endpoint's per-event isolation.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format
from google.rpc import code_pb2, status_pb2
from litestar import MediaType, Request, Response, post
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from ingest_api.auth import Scope
from ingest_api.errors import ApiError
from ingest_api.otlp.decode import (
    JSON,
    MEDIA_TYPES,
    PROTOBUF,
    body_format,
    decode_request,
    encode_response,
)
from ingest_api.otlp.mapping import map_export
from ingest_api.otlp.rows import direct_row, fits
from ingest_api.otlp.spans import iter_spans
from ingest_api.parsing import check_all, read_body
from sdk.telemetry.values import printable

# Besides `Authorization: Bearer <key>`: the header OTLP exporters are often given
# (OTEL_EXPORTER_OTLP_HEADERS=x-api-key=<key>).
KEY_HEADER = "x-api-key"
MAX_MESSAGE_REASONS = 5
# The gRPC code a google.rpc.Status carries for each of our HTTP statuses.
GRPC_CODES = {
    400: code_pb2.INVALID_ARGUMENT,
    401: code_pb2.UNAUTHENTICATED,
    403: code_pb2.PERMISSION_DENIED,
    413: code_pb2.RESOURCE_EXHAUSTED,
    415: code_pb2.INVALID_ARGUMENT,
    429: code_pb2.RESOURCE_EXHAUSTED,
    503: code_pb2.UNAVAILABLE,
}


def otlp_error(request: Request[Any, Any, Any], exc: ApiError) -> Response[bytes]:
    """An error as the OTLP/HTTP spec wants it: a ``google.rpc.Status`` in the request's
    format (protobuf unless the request was JSON), with the status code and headers
    (``Retry-After``, ``WWW-Authenticate``) of wdp's own error mapping."""
    services = getattr(request.app.state, "services", None)
    if services is not None and exc.status_code != 401:  # 401s: counted by the authenticator
        services.metrics.rejected.labels(exc.error).inc()
    headers = dict(exc.headers)
    if exc.status_code == 401:
        headers["WWW-Authenticate"] = "Bearer"
    status = status_pb2.Status(
        code=GRPC_CODES.get(exc.status_code, code_pb2.INTERNAL), message=printable(exc.detail)
    )
    media = (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    if MEDIA_TYPES.get(media) == "json":
        body = json_format.MessageToJson(status).encode()
        media_type: str = MediaType.JSON
    else:
        body, media_type = status.SerializeToString(), PROTOBUF
    return Response(body, status_code=exc.status_code, headers=headers, media_type=media_type)


async def require_otlp_key(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    connection.app.state.services.auth.check(connection, Scope.INGEST, key_header=KEY_HEADER)


@post(
    "/v1/traces",
    guards=[require_otlp_key],
    request_max_body_size=None,
    summary="OTLP/HTTP trace export: GenAI spans become workflow events (docs/otlp.md)",
    tags=["otlp"],
    media_type=PROTOBUF,
    exception_handlers={ApiError: otlp_error},
)
async def post_traces(request: Request[Any, Any, Any]) -> Response[bytes]:
    services = request.app.state.services
    fmt = body_format(request.headers.get("content-type"))
    limit = services.settings.ingest_max_batch_bytes
    raw = await read_body(request, limit)
    export = decode_request(
        raw, fmt=fmt, content_encoding=request.headers.get("content-encoding"), limit=limit
    )
    mapped = map_export(iter_spans(export))
    services.metrics.otlp_spans.labels("skipped").inc(mapped.skipped)
    response = ExportTraceServiceResponse()
    if mapped.events:
        # Events that fit become rows without a second validation (ingest_api.otlp.rows);
        # the rest are validated, plain: the mapping made every envelope and call string
        # storable (text(): no NUL, no lone surrogate) and bounded every number, which is
        # what json_text_is_plain proves of a raw body; free-form fields are still walked.
        events = [m.event for m in mapped.events]
        rows = [direct_row(e) if fits(e) else None for e in events]
        checked = await check_all(services.store, events, plain=True, rows=rows)
        valid = [c for c in checked if c.row is not None]
        outcomes = await services.store.write_isolating([c.row for c in valid if c.row])
        by_index = dict(zip((c.index for c in valid), outcomes, strict=True))
        rejected: set[int] = set()
        reasons: list[str] = []
        refused = 0
        counts = {"created": 0, "duplicate": 0, "conflict": 0, "invalid": 0}
        for c in checked:
            outcome = by_index.get(c.index)
            if c.row is None or isinstance(outcome, Exception):
                status, reason = "invalid", c.reason if c.row is None else str(outcome)
            else:
                assert outcome is not None
                status, reason = outcome.outcome.value, outcome.reason or ""
            counts[status] += 1
            if status in ("invalid", "conflict"):
                refused += 1
                rejected.update(mapped.events[c.index].spans)
                if len(reasons) < MAX_MESSAGE_REASONS:
                    event = mapped.events[c.index].event
                    reasons.append(
                        f"span {event['payload'].get('otel', {}).get('span_id')} "
                        f"({event['event_name']}): {status}: {reason}"
                    )
        for name, count in counts.items():
            if count:
                services.metrics.count_event(name, count)
        services.metrics.otlp_spans.labels("rejected").inc(len(rejected))
        if rejected:
            response.partial_success.rejected_spans = len(rejected)
            more = refused - len(reasons)
            response.partial_success.error_message = "; ".join(reasons) + (
                f"; and {more} more refused events" if more > 0 else ""
            )
    return Response(
        encode_response(response, fmt),
        status_code=200,
        media_type=PROTOBUF if fmt == "protobuf" else JSON,
    )
