"""The Litestar application: ``create_app()`` is the factory servers load."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from litestar import Litestar, MediaType, Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.response.base import ASGIResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from psycopg_pool import AsyncConnectionPool

from ingest_api.auth import Authenticator, Scope
from ingest_api.docs_ui import docs_asset, swagger_plugin
from ingest_api.errors import (
    ApiError,
    EventConflict,
    InvalidEvent,
)
from ingest_api.headers import header
from ingest_api.metrics import LatencyMiddleware, Metrics
from ingest_api.openapi import (
    BatchOperation,
    MetricsOperation,
    ReadyOperation,
    SingleEventOperation,
    add_event_schemas,
    openapi_components,
)
from ingest_api.otlp.route import post_traces
from ingest_api.parsing import Body, check_all, decode_body, read_body
from ingest_api.read import READ_HANDLERS
from ingest_api.store import EventStore, Outcome
from ingest_api.ui import TEMPLATE_CONFIG, UI_ROUTER
from ingest_api.writer import GroupCommitWriter
from sdk.db.engine import resolve_database_url
from sdk.db.migrate import VERSION_TABLE, head_revision
from sdk.errors import ConfigurationError
from sdk.logs import configure_logging
from sdk.settings import WdpSettings, get_settings

log = logging.getLogger("ingest_api")


@dataclass
class Services:
    """What the handlers use, built once per process at startup."""

    settings: WdpSettings
    auth: Authenticator
    metrics: Metrics
    pool: AsyncConnectionPool
    read_pool: AsyncConnectionPool
    store: EventStore
    writer: GroupCommitWriter
    head: str | None


def _services(request: Request[Any, Any, Any] | ASGIConnection[Any, Any, Any, Any]) -> Services:
    services: Services = request.app.state.services
    return services


# --- auth (the checks themselves: ingest_api/auth.py) ----------------------------------


def _ingest_key(request: Request[Any, Any, Any]) -> Services:
    """The ingest endpoints' key check, first thing in the handler (before the body is
    read). Not a Litestar guard: Litestar copies the route handler object for every
    guard call, which measured ~20 us of the ~220 us of API CPU a single event costs."""
    services = _services(request)
    services.auth.check(request, Scope.INGEST)
    return services


async def require_metrics_key(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    _services(connection).auth.check(connection, Scope.METRICS)


# --- handlers -------------------------------------------------------------------------


async def _decode(request: Request[Any, Any, Any], limit: int) -> Body:
    raw = await read_body(request, limit)
    return decode_body(
        raw,
        content_type=header(request, "content-type"),
        content_encoding=header(request, "content-encoding"),
        limit=limit,
    )


@post(
    "/telemetry/events",
    request_max_body_size=None,
    operation_class=SingleEventOperation,
    summary="Store one event (idempotent on event_id)",
    tags=["telemetry"],
)
async def post_event(request: Request[Any, Any, Any]) -> ASGIResponse:
    services = _ingest_key(request)
    body = await _decode(request, services.settings.ingest_max_event_bytes)
    (checked,) = await check_all(services.store, [body.data], plain=body.plain)
    if checked.row is None:
        services.metrics.count_event("invalid")
        raise InvalidEvent("the event is invalid", errors=checked.errors)
    result = await services.writer.submit(checked.row)
    services.metrics.count_event(result.outcome.value)
    if result.outcome is Outcome.CONFLICT:
        raise EventConflict(result.reason or "conflict")
    status = 201 if result.outcome is Outcome.CREATED else 200
    # Encoded here: a ULID and an outcome name need no escaping. An ASGIResponse, not a
    # Response: Litestar passes it through instead of converting it (same bytes on the
    # wire; ~4 us of the hottest path's CPU, docs/benchmarks.md, issue 18).
    answer = b'{"event_id":"%s","status":"%s"}' % (
        checked.row.event_id.encode(),
        result.outcome.value.encode(),
    )
    return ASGIResponse(body=answer, status_code=status, media_type=MediaType.JSON)


@post(
    "/telemetry/events/batch",
    request_max_body_size=None,
    operation_class=BatchOperation,
    summary="Store up to 1000 events in one transaction, with a result per event",
    tags=["telemetry"],
)
async def post_batch(request: Request[Any, Any, Any]) -> Response[Any]:
    services = _ingest_key(request)
    settings = services.settings
    body = await _decode(request, settings.ingest_max_batch_bytes)
    events = body.data.get("events") if isinstance(body.data, dict) else None
    if not isinstance(events, list) or not events:
        raise InvalidEvent(
            "the body must be an object with a non-empty 'events' array",
            errors=[{"loc": ["events"], "msg": "a non-empty array is required", "type": "missing"}],
        )
    if len(events) > settings.ingest_max_batch_events:
        raise InvalidEvent(
            f"a batch holds at most {settings.ingest_max_batch_events} events "
            f"(got {len(events)}); split it",
            errors=[{"loc": ["events"], "msg": "too many events", "type": "too_long"}],
        )
    services.metrics.batch_size.observe(len(events))
    checked = await check_all(services.store, events, plain=body.plain)
    valid = [c for c in checked if c.row is not None]
    outcomes = await services.store.write_isolating([c.row for c in valid if c.row is not None])
    results: list[dict[str, Any]] = []
    by_index = {c.index: r for c, r in zip(valid, outcomes, strict=True)}
    counts = {"created": 0, "duplicate": 0, "conflict": 0, "invalid": 0}
    for c in checked:
        entry: dict[str, Any] = {"index": c.index, "event_id": c.event_id}
        if c.row is None:
            entry |= {"status": "invalid", "reason": c.reason, "errors": c.errors}
        elif isinstance(outcome := by_index[c.index], Exception):
            entry |= {"status": "invalid", "reason": str(outcome)}
        else:
            entry["status"] = outcome.outcome.value
            if outcome.reason:
                entry["reason"] = outcome.reason
        counts[entry["status"]] += 1
        results.append(entry)
    for outcome_name, count in counts.items():
        if count:
            services.metrics.count_event(outcome_name, count)
    rejected = counts["conflict"] + counts["invalid"]
    status = 200 if rejected == 0 else 422 if rejected == len(events) else 207
    return Response({"counts": counts, "results": results}, status_code=status)


@get("/healthz", tags=["ops"], summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get(
    "/readyz",
    tags=["ops"],
    summary="The database is reachable and migrated to head",
    operation_class=ReadyOperation,
)
async def readyz(request: Request[Any, Any, Any]) -> Response[Any]:
    services = _services(request)
    # Anyone may probe readiness; only a caller it knows learns the revisions.
    detailed = services.auth.knows_caller(request)
    try:
        async with services.pool.connection(timeout=2) as conn:
            row = None
            cur = await conn.execute("SELECT to_regclass(%s)", [f"public.{VERSION_TABLE}"])
            exists = await cur.fetchone()
            if exists is not None and exists[0] is not None:  # never migrated otherwise
                cur = await conn.execute(f"SELECT version_num FROM public.{VERSION_TABLE}")
                row = await cur.fetchone()
    except Exception:
        log.warning("readiness check failed", exc_info=True)
        return Response(
            {"status": "unavailable", "detail": "database unreachable"}, status_code=503
        )
    current = row[0] if row else None
    if current != services.head:
        detail = (
            f"database at {current}, code expects {services.head}"
            if detailed
            else "database not migrated to the revision this code expects"
        )
        return Response({"status": "unavailable", "detail": detail}, status_code=503)
    body = {"status": "ready", "revision": current} if detailed else {"status": "ready"}
    return Response(body, status_code=200)


@get(
    "/metrics",
    tags=["ops"],
    summary="Prometheus metrics (with METRICS_API_KEY set, only for that key)",
    media_type=CONTENT_TYPE_LATEST,
    guards=[require_metrics_key],
    operation_class=MetricsOperation,
)
async def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    return Response(
        generate_latest(_services(request).metrics.registry), media_type=CONTENT_TYPE_LATEST
    )


# --- errors ---------------------------------------------------------------------------


def _api_error(request: Request[Any, Any, Any], exc: ApiError) -> Response[Any]:
    # The services exist from the lifespan's start on; a request answered before that
    # (none is, under a server) goes uncounted rather than failing in its error handler.
    services: Services | None = getattr(request.app.state, "services", None)
    if services is not None and exc.status_code != 401:  # 401s: counted by the authenticator
        services.metrics.rejected.labels(exc.error).inc()
    headers = dict(exc.headers)
    if exc.status_code == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if exc.status_code >= 500:
        log.warning("request failed: %s", exc.detail, exc_info=exc.__cause__ is not None)
    return Response(
        exc.body(), status_code=exc.status_code, headers=headers, media_type=MediaType.JSON
    )


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    error = {413: "body_too_large", 404: "not_found", 405: "method_not_allowed"}.get(
        exc.status_code, "http_error"
    )
    return _api_error(request, _as_api_error(exc, error))


def _as_api_error(exc: HTTPException, error: str) -> ApiError:
    api = ApiError(str(exc.detail))
    api.status_code = exc.status_code
    api.error = error
    api.headers = dict(exc.headers or {})
    return api


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return Response(
        {"status": 500, "error": "internal_error", "detail": "internal error; see the server log"},
        status_code=500,
        media_type=MediaType.JSON,
    )


# --- assembly -------------------------------------------------------------------------


def _pool(settings: WdpSettings, size: int, name: str) -> AsyncConnectionPool:
    """An unopened pool of autocommit connections named ``name`` in pg_stat_activity.
    Waiting longer than 5 s for a connection means the database (or the pool) is in
    trouble: the request gets 503 at once instead of being held (default 30 s)."""
    return AsyncConnectionPool(
        resolve_database_url(settings),
        min_size=1,
        max_size=size,
        timeout=5.0,
        open=False,
        kwargs={"application_name": name, "autocommit": True},
    )


def create_app(settings: WdpSettings | None = None) -> Litestar:
    """Build the API. Refuses to start without API keys unless auth is disabled explicitly."""
    settings = settings or get_settings()
    if not settings.api_keys and not settings.ingest_auth_disabled:
        raise ConfigurationError(
            "INGEST_API_KEYS is empty: set one or more comma-separated keys, or set "
            "INGEST_AUTH_DISABLED=true to run without authentication"
        )
    if settings.ingest_group_commit_writers >= settings.ingest_db_pool_size:
        raise ConfigurationError(
            f"INGEST_GROUP_COMMIT_WRITERS ({settings.ingest_group_commit_writers}) must be "
            f"below INGEST_DB_POOL_SIZE ({settings.ingest_db_pool_size}): each writer holds a "
            "connection while it commits, and batch requests need the others"
        )
    metrics_ = Metrics()
    auth = Authenticator.from_settings(settings, metrics_)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        pool = _pool(settings, settings.ingest_db_pool_size, "wdp-ingest")
        # The read endpoints' own connections: however many reads run, and however long,
        # ingestion and /readyz keep theirs (each read is also bounded by
        # READ_STATEMENT_TIMEOUT_MS).
        read_pool = _pool(settings, settings.read_db_pool_size, "wdp-read")
        # Whatever fails from here on (opening, the writer's start or stop), both pools
        # are closed: nothing is left connected behind a server that did not come up.
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(pool.close)
            stack.push_async_callback(read_pool.close)
            await pool.open(wait=False)
            await read_pool.open(wait=False)
            store = EventStore(pool)
            writer = GroupCommitWriter(
                store,
                max_batch=settings.ingest_group_commit_max,
                writers=settings.ingest_group_commit_writers,
            )
            writer.on_group = metrics_.group_size.observe
            await writer.start()
            stack.push_async_callback(writer.stop)
            app.state.services = Services(
                settings, auth, metrics_, pool, read_pool, store, writer, head_revision()
            )
            # Everything loaded so far lives as long as the process: out of the garbage
            # collector's reach, a full collection no longer walks it (one added ~50 ms
            # to a usage request that allocates a few thousand rows).
            gc.freeze()
            yield

    app = Litestar(
        route_handlers=[
            post_event,
            post_batch,
            *READ_HANDLERS,
            post_traces,
            healthz,
            readyz,
            metrics,
            docs_asset,
            UI_ROUTER,
        ],
        template_config=TEMPLATE_CONFIG,
        lifespan=[lifespan],
        on_startup=[add_event_schemas],
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _http_error,
            Exception: _unexpected,
        },
        openapi_config=OpenAPIConfig(
            title="wdp ingest API",
            version="1",
            description=(
                "Workflow telemetry ingestion, and reading back runs and usage. Authenticate "
                "with `Authorization: Bearer <key>`: an ingest key to post events, a read key "
                "to read (docs/read-api.md)."
            ),
            path="/docs",
            render_plugins=[swagger_plugin()],
            components=openapi_components(),
        ),
        middleware=[lambda app: LatencyMiddleware(app, metrics_)],
        logging_config=None,
        debug=False,
    )
    return app


def create_app_from_env() -> Litestar:
    """Server entry point: logs in WDP_LOG_FORMAT (JSON unless set), settings from the
    environment."""
    configure_logging(default="json")
    return create_app()


__all__ = ["create_app", "create_app_from_env"]
