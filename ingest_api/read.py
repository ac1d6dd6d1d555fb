"""The read endpoints: runs, one run, and usage, answered by :mod:`sdk.usage`.

The handlers only move strings in and JSON out: parameter checks, SQL and the shape of
the answer are :mod:`sdk.usage`'s, the same the CLI uses, so both refuse the same inputs
and report the same figures. Every query-string parameter arrives as text and is checked
there (not by Litestar's signature parsing), so a bad value is a 422 with a field error
in the ingest endpoints' shape, never Litestar's 400. Refusals and database failures
reach HTTP through :mod:`ingest_api.errors` only. Guarded by the ``read`` scope
(``READ_API_KEYS``): an ingest key gets 403.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
from litestar import Request, Response, get
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from ingest_api.auth import Scope
from ingest_api.errors import read_database_error, usage_error
from ingest_api.read_openapi import RunOperation, RunsOperation, UsageOperation
from sdk.db.queries import Query, read_async
from sdk.usage.errors import InvalidQuery, UsageError
from sdk.usage.runs import list_runs, run_detail, runs_query
from sdk.usage.usage import usage_query, usage_report

if TYPE_CHECKING:
    from ingest_api.app import Services

T = TypeVar("T")

RUNS_PARAMS = ("workflow_name", "item_id", "status", "since", "until", "limit", "cursor")
USAGE_PARAMS = ("from", "to", "group_by")
PATH_PARAMS = frozenset({"run_id"})


def _services(connection: ASGIConnection[Any, Any, Any, Any]) -> Services:
    services: Services = connection.app.state.services
    return services


async def require_read_key(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    _services(connection).auth.check(connection, Scope.READ)


def _checked(
    request: Request[Any, Any, Any],
    known: tuple[str, ...],
    build: Callable[[dict[str, str | None]], T],
    *,
    repeatable: frozenset[str] = frozenset(),
) -> T:
    """``build`` (sdk.usage's check) of each known parameter's one value (None if absent).

    Unknown parameters and repeats are refused too, a misspelt filter must not silently
    widen the answer, all in one 422 with the value errors. A repeatable parameter's
    values are joined with commas (``group_by=day&group_by=node``).
    """
    problems: dict[str, str] = {}
    values: dict[str, str | None] = {}
    for name in known:
        given = request.query_params.getall(name, [])
        if len(given) > 1 and name not in repeatable:
            problems[name] = "is given more than once"
        values[name] = ",".join(given) if given else None
    for name in request.query_params:
        if name not in known:
            shown = name.encode("utf-8", "backslashreplace").decode()[:60]
            allowed = f"use {', '.join(known)}" if known else "this endpoint takes none"
            problems.setdefault(name, f"unknown parameter {shown!r}: {allowed}")
    try:
        built = build(values)
    except InvalidQuery as exc:
        raise InvalidQuery({**exc.field_errors, **problems}) from None
    if problems:
        raise InvalidQuery(problems)
    return built


@contextmanager
def answering() -> Iterator[None]:
    """Turn the read layer's refusals and the database's failures into API errors."""
    try:
        yield
    except UsageError as exc:
        raise usage_error(exc, path_params=PATH_PARAMS) from exc
    except psycopg.Error as exc:
        raise read_database_error(exc) from exc


async def run_read(services: Services, query: Query[T]) -> T:
    """On the read pool (never ingestion's), in one read-only snapshot with the read
    statement timeout: a cancelled statement is a 503 like every database failure."""
    async with services.read_pool.connection() as conn:
        return await read_async(
            conn, query, statement_timeout_ms=services.settings.read_statement_timeout_ms
        )


@get(
    "/telemetry/runs",
    guards=[require_read_key],
    operation_class=RunsOperation,
    summary="Runs, newest first, one page at a time",
    tags=["read"],
)
async def get_runs(request: Request[Any, Any, Any]) -> Response[Any]:
    with answering():
        query = _checked(request, RUNS_PARAMS, lambda raw: runs_query(**raw))
        page = await run_read(_services(request), list_runs(query))
    return Response(page.as_json())


@get(
    "/telemetry/runs/{run_id:str}",
    guards=[require_read_key],
    operation_class=RunOperation,
    summary="One run: its steps, state changes, learning events and linked artifacts",
    tags=["read"],
)
async def get_run(request: Request[Any, Any, Any], run_id: str) -> Response[Any]:
    with answering():
        query = _checked(request, (), lambda _: run_detail(run_id))
        detail = await run_read(_services(request), query)
    return Response(detail.as_json())


@get(
    "/telemetry/usage",
    guards=[require_read_key],
    operation_class=UsageOperation,
    summary="Usage and cost by day, workflow, agent role, model and node",
    tags=["read"],
)
async def get_usage(request: Request[Any, Any, Any]) -> Response[Any]:
    with answering():
        query = _checked(
            request,
            USAGE_PARAMS,
            lambda raw: usage_query(
                from_day=raw["from"],
                to_day=raw["to"],
                group_by=raw["group_by"],
                today=datetime.now(UTC).date(),
                max_live_days=_services(request).settings.read_max_live_days,
            ),
            repeatable=frozenset({"group_by"}),
        )
        report = await run_read(_services(request), usage_report(query))
    return Response(report.as_json())


READ_HANDLERS = (get_runs, get_run, get_usage)
