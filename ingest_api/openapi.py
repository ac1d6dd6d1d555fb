"""OpenAPI for the event endpoints, generated from the shared pydantic event models.

The handlers read raw bytes (so each kind of bad input gets its own status), which
hides the body from Litestar's schema generation; these operation classes put the
event contract back, so the docs and schema-driven fuzzers (schemathesis) see it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Litestar
from litestar.openapi.spec import (
    Components,
    OpenAPIMediaType,
    OpenAPIResponse,
    Operation,
    RequestBody,
    SecurityScheme,
)

from sdk.telemetry.events import EVENT_ADAPTER

REF = "#/components/schemas/{model}"


def _event_schema() -> tuple[dict[str, Any], dict[str, Any]]:
    schema = EVENT_ADAPTER.json_schema(ref_template=REF)
    defs = schema.pop("$defs", {})
    return schema, defs


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["status", "error", "detail"],
    "properties": {
        "status": {"type": "integer"},
        "error": {"type": "string"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {"type": "array", "items": {"type": ["string", "integer"]}},
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
}

RESULT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "event_id": {"type": "string"},
        "status": {"type": "string", "enum": ["created", "duplicate"]},
    },
}

BATCH_RESULT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
        "results": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "index": {"type": "integer"},
                    "event_id": {"type": ["string", "null"]},
                    "status": {
                        "type": "string",
                        "enum": ["created", "duplicate", "conflict", "invalid"],
                    },
                    "reason": {"type": "string"},
                },
            },
        },
    },
}


def json_content(schema: dict[str, Any]) -> dict[str, OpenAPIMediaType]:
    return {"application/json": OpenAPIMediaType(schema=schema)}  # type: ignore[arg-type]


def error_responses(*codes: int) -> dict[str, OpenAPIResponse]:
    text = {
        400: "Body is not valid JSON, or the client disconnected before sending all of it",
        401: "Missing or invalid API key",
        403: "A valid key without this endpoint's scope (the body names the scope needed)",
        409: "Same event_id already stored with different content",
        413: "Body over the size limit",
        415: "Content-Type is not application/json (or unsupported Content-Encoding)",
        422: "Invalid event(s): field-level errors",
        429: (
            "Too many failed authentications from this client address: every request "
            "with a key is refused until Retry-After (seconds) has passed"
        ),
        503: (
            "Database unavailable, aborted the write (deadlock, lock or statement timeout) "
            "or not migrated (error `not_migrated`): retry after Retry-After (seconds)"
        ),
    }
    return {
        str(c): OpenAPIResponse(description=text[c], content=json_content(ERROR_SCHEMA))
        for c in codes
    }


def add_event_schemas(app: Litestar) -> None:
    """Put the event models into ``components.schemas`` (Litestar regenerates that map
    from the handlers' types, which do not mention the events). Runs at startup."""
    _, defs = _event_schema()
    openapi = app.openapi_schema  # built once and cached by Litestar
    schemas = openapi.components.schemas if openapi.components.schemas is not None else {}
    schemas.update(defs)
    openapi.components.schemas = schemas


def openapi_components() -> Components:
    return Components(
        security_schemes={
            "bearer": SecurityScheme(
                type="http",
                scheme="bearer",
                description=(
                    "An API key: INGEST_API_KEYS for posting events, READ_API_KEYS for the "
                    "read endpoints, METRICS_API_KEY for /metrics. A valid key of another "
                    "scope gets 403."
                ),
            )
        },
    )


@dataclass
class SingleEventOperation(Operation):
    def __post_init__(self) -> None:
        schema, _ = _event_schema()
        self.request_body = RequestBody(content=json_content(schema), required=True)
        self.security = [{"bearer": []}]
        self.responses = {
            "201": OpenAPIResponse(description="Stored", content=json_content(RESULT_SCHEMA)),
            "200": OpenAPIResponse(
                description="Exact duplicate of a stored event", content=json_content(RESULT_SCHEMA)
            ),
            **error_responses(400, 401, 403, 409, 413, 415, 422, 429, 503),
        }


@dataclass
class BatchOperation(Operation):
    def __post_init__(self) -> None:
        schema, _ = _event_schema()
        body = {
            "type": "object",
            "required": ["events"],
            "properties": {
                "events": {"type": "array", "minItems": 1, "maxItems": 1000, "items": schema}
            },
        }
        self.request_body = RequestBody(content=json_content(body), required=True)
        self.security = [{"bearer": []}]
        self.responses = {
            "200": OpenAPIResponse(
                description="Nothing rejected", content=json_content(BATCH_RESULT_SCHEMA)
            ),
            "207": OpenAPIResponse(
                description="Some rejected", content=json_content(BATCH_RESULT_SCHEMA)
            ),
            "422": OpenAPIResponse(
                description="All rejected, or the batch itself is invalid",
                content=json_content(BATCH_RESULT_SCHEMA),
            ),
            **error_responses(400, 401, 403, 413, 415, 429, 503),
        }


# Both ops endpoints also answer without a key: security is optional ({}).
OPTIONAL_KEY: list[dict[str, list[str]]] = [{}, {"bearer": []}]

READY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["status"],
    "properties": {
        "status": {"type": "string", "enum": ["ready", "unavailable"]},
        "revision": {"type": "string", "description": "Only for a caller with a valid key."},
        "detail": {"type": "string"},
    },
}


@dataclass
class ReadyOperation(Operation):
    def __post_init__(self) -> None:
        self.security = OPTIONAL_KEY
        self.responses = {
            "200": OpenAPIResponse(
                description="Ready; with a valid key, the migration revision too",
                content=json_content(READY_SCHEMA),
            ),
            "503": OpenAPIResponse(
                description="Database unreachable or not migrated to the expected revision",
                content=json_content(READY_SCHEMA),
            ),
            **error_responses(429),
            "401": OpenAPIResponse(
                description="A key was sent and it is not valid (send none to probe)",
                content=json_content(ERROR_SCHEMA),
            ),
        }


@dataclass
class MetricsOperation(Operation):
    def __post_init__(self) -> None:
        self.security = OPTIONAL_KEY
        self.responses = {
            "200": OpenAPIResponse(
                description="Prometheus text format",
                content={"text/plain": OpenAPIMediaType(schema={"type": "string"})},  # type: ignore[arg-type]
            ),
            "401": OpenAPIResponse(
                description="METRICS_API_KEY is set and the request lacks a valid key",
                content=json_content(ERROR_SCHEMA),
            ),
            "403": OpenAPIResponse(
                description="METRICS_API_KEY is set and the key sent is another (an ingest "
                "or read key)",
                content=json_content(ERROR_SCHEMA),
            ),
            **error_responses(429),
        }
