"""OpenAPI for the read endpoints: their parameters, answers and errors.

The handlers read every query parameter as text (``sdk.usage`` checks it, for the CLI
too), which leaves Litestar nothing to describe; these operation classes say what the
parameters are and what comes back, so the docs and the schema-driven fuzzer
(schemathesis, which also checks answers against these schemas) see the real contract.
The limits quoted come from :mod:`sdk.usage.params`, so they cannot drift from the checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar.openapi.spec import OpenAPIResponse, Operation, Parameter

from ingest_api.openapi import ERROR_SCHEMA, error_responses, json_content
from ingest_api.read_schemas import RUN_DETAIL, RUN_PAGE, TEXT, TIME, USAGE_REPORT
from sdk.usage import params


def _query(name: str, schema: dict[str, Any], description: str, **extra: Any) -> Parameter:
    return Parameter(
        name=name,
        param_in="query",
        schema=schema,  # type: ignore[arg-type]
        description=description,
        required=False,
        **extra,
    )


_SINCE = "RFC 3339 date-time with a time zone, or a day (YYYY-MM-DD, its midnight UTC)"

RUNS_PARAMETERS = [
    _query("workflow_name", TEXT, "Only runs of this workflow (from their run_started)."),
    _query("item_id", TEXT, "Only runs of this work item (from their run_started)."),
    _query(
        "status",
        {"type": "string", "enum": list(params.RUN_STATUSES)},
        "Only runs in this status (`running`: no run_completed stored yet).",
    ),
    _query("since", TIME, f"Runs started at or after this instant: {_SINCE}."),
    _query("until", TIME, f"Runs started before this instant: {_SINCE}."),
    _query(
        "limit",
        {
            "type": "integer",
            "minimum": 1,
            "maximum": params.MAX_PAGE,
            "default": params.DEFAULT_PAGE,
        },
        "Runs per page.",
    ),
    _query(
        "cursor",
        {"type": "string", "maxLength": params.MAX_CURSOR},
        "The `next_cursor` of the previous page, unchanged (opaque); a malformed one is 422.",
    ),
]

USAGE_PARAMETERS = [
    _query(
        "from",
        {"type": "string", "format": "date"},
        f"First UTC day (default: {params.DEFAULT_USAGE_DAYS - 1} days before `to`); at most "
        f"{params.MAX_USAGE_DAYS} days from `from` to `to`.",
    ),
    _query("to", {"type": "string", "format": "date"}, "Last UTC day, included (default: today)."),
    _query(
        "group_by",
        {
            "type": "array",
            "items": {"type": "string", "enum": list(params.GROUP_KEYS)},
            "uniqueItems": True,
        },
        "Comma-separated grouping keys (default `day`; empty: totals only).",
        style="form",
        explode=False,
    ),
]

RUN_ID = Parameter(
    name="run_id",
    param_in="path",
    schema=TEXT,  # type: ignore[arg-type]
    description="The run id, as the events carry it.",
    required=True,
)

_READ_ERRORS = {
    "401": OpenAPIResponse(
        description="Missing or invalid API key", content=json_content(ERROR_SCHEMA)
    ),
    "403": OpenAPIResponse(
        description="A valid key without the `read` scope (an ingest key): READ_API_KEYS",
        content=json_content(ERROR_SCHEMA),
    ),
    "422": OpenAPIResponse(
        description="Invalid parameters: one field error per parameter (`loc` "
        '["query", name] or ["path", name])',
        content=json_content(ERROR_SCHEMA),
    ),
    **error_responses(429, 503),
}


@dataclass
class RunsOperation(Operation):
    def __post_init__(self) -> None:
        self.parameters = list(RUNS_PARAMETERS)
        self.security = [{"bearer": []}]
        self.description = (
            "Runs newest first, each listed from its `workflow.run_started` event, with its "
            "status, end and step totals (the cost the steps emitted, from the raw events). "
            "Keyset pages: stable while runs are inserted."
        )
        self.responses = {
            "200": OpenAPIResponse(description="A page of runs", content=json_content(RUN_PAGE)),
            **_READ_ERRORS,
        }


@dataclass
class RunOperation(Operation):
    def __post_init__(self) -> None:
        self.parameters = [RUN_ID]
        self.security = [{"bearer": []}]
        self.responses = {
            "200": OpenAPIResponse(description="The run", content=json_content(RUN_DETAIL)),
            "404": OpenAPIResponse(
                description="No stored event carries this run id",
                content=json_content(ERROR_SCHEMA),
            ),
            **_READ_ERRORS,
        }


@dataclass
class UsageOperation(Operation):
    def __post_init__(self) -> None:
        self.parameters = list(USAGE_PARAMETERS)
        self.security = [{"bearer": []}]
        self.description = (
            "Steps, calls, tokens, priced cost (known costs summed by source, calls without "
            "a cost counted) and durations per group, from the daily aggregates and the "
            "daily model usage, plus live figures from raw events (their calls priced with "
            "the current price table) for today and for days not aggregated yet "
            "(`live_days`)."
        )
        self.responses = {
            "200": OpenAPIResponse(
                description="The usage report", content=json_content(USAGE_REPORT)
            ),
            **_READ_ERRORS,
        }
