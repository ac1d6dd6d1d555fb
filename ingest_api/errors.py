"""Domain errors of the ingest API and their one mapping to HTTP responses.

Handlers raise :class:`ApiError` subclasses (or let a domain error escape); the
exception handlers registered in :mod:`ingest_api.app` turn each into a JSON body
``{"status", "error", "detail", "errors"?}``. Nothing else reaches the client: an
unexpected exception is logged with its traceback and answered with a bare 500.
Database failures reach HTTP through :func:`database_error` (writes) and
:func:`read_database_error` (reads) only, which map :func:`sdk.db.errors.classify`'s
answer to a status; refusals of the read queries (:mod:`sdk.usage`) through
:func:`usage_error`.
"""

from __future__ import annotations

import logging
from typing import Any

from sdk.db.errors import DbFailure, classify, describe, refused_row
from sdk.errors import WdpError
from sdk.usage.errors import InvalidQuery, RunNotFound, UsageError

log = logging.getLogger(__name__)


class ApiError(WdpError):
    status_code = 500
    error = "internal_error"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "status": self.status_code,
            "error": self.error,
            "detail": self.detail,
        }
        if self.errors is not None:
            body["errors"] = self.errors
        return body


class MalformedJson(ApiError):
    status_code = 400
    error = "malformed_json"


class ClientDisconnected(ApiError):
    """The client went away before its whole body arrived: what came is dropped,
    nothing is stored. Nobody reads the answer; it keeps such requests out of the 500s."""

    status_code = 400
    error = "client_disconnected"


class Unauthorized(ApiError):
    status_code = 401
    error = "unauthorized"


class Forbidden(ApiError):
    """A valid key without the scope the endpoint needs (the body names the scope)."""

    status_code = 403
    error = "forbidden"


class NotFound(ApiError):
    status_code = 404
    error = "not_found"


class EventConflict(ApiError):
    status_code = 409
    error = "conflict"


class BodyTooLarge(ApiError):
    status_code = 413
    error = "body_too_large"


class UnsupportedMediaType(ApiError):
    status_code = 415
    error = "unsupported_media_type"


class InvalidEvent(ApiError):
    status_code = 422
    error = "invalid_event"


class InvalidParameters(ApiError):
    """Query or path parameters of a read endpoint that cannot be answered."""

    status_code = 422
    error = "invalid_parameters"


class UnstorableEvent(InvalidEvent):
    """Postgres refused a value in a validated event (the validation missed something)."""


class TooManyFailedAttempts(ApiError):
    """This client address failed authentication too often; it waits ``Retry-After`` seconds."""

    status_code = 429
    error = "too_many_failed_attempts"

    def __init__(self, detail: str, *, retry_after_s: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after_s)})


class StoreUnavailable(ApiError):
    """The database could not be used or aborted the write; the client retries."""

    status_code = 503
    error = "unavailable"

    def __init__(self, detail: str, *, retry_after_s: int = 1) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after_s)})


class DatabaseNotMigrated(StoreUnavailable):
    """The database lacks the tables this code writes: someone must run ``wdp migrate``."""

    error = "not_migrated"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, retry_after_s=30)  # nothing changes until a migration


def database_error(exc: BaseException) -> ApiError:
    """The HTTP answer to a database failure: 503 unless the database refused the event.

    Unavailable and retryable (a deadlock, a lock or statement timeout) are the same to
    a client: nothing it sent was wrong, it retries after ``Retry-After``. A refusal is
    about this event (Postgres cannot store one of its values, or rejects the row): 422,
    and :meth:`ingest_api.store.EventStore.write_isolating` keeps it from failing its neighbours.
    """
    failure = classify(exc)
    if failure is DbFailure.UNAVAILABLE:
        return StoreUnavailable("database unavailable; retry later")
    if failure is DbFailure.RETRYABLE:
        return StoreUnavailable(
            f"the database aborted the write ({type(exc).__name__}: a deadlock, lock or "
            "statement timeout); retry"
        )
    if failure is DbFailure.NOT_MIGRATED:
        return DatabaseNotMigrated(
            "the database lacks the telemetry tables this server writes "
            "(not migrated to its revision): run `wdp migrate`"
        )
    if refused_row(exc):
        return UnstorableEvent(
            f"Postgres refused to store this event ({type(exc).__name__}); nothing was stored"
        )
    # Refused for a reason not in the event (a bug, a server at another version): a 422
    # would make the client drop a good event. 503: it keeps it and retries later.
    log.error("the database refused a write for a reason not in the event: %s", type(exc).__name__)
    return StoreUnavailable(
        f"the database refused the write for a reason not in the event ({type(exc).__name__}); "
        "nothing was stored, retry later",
        retry_after_s=30,
    )


def usage_error(exc: UsageError, *, path_params: frozenset[str] = frozenset()) -> ApiError:
    """The HTTP answer to a refusal of :mod:`sdk.usage`: 422 with one field error per bad
    parameter (the body shape of the ingest endpoints' validation errors), 404 for a run
    without events. ``path_params``: the parameters that are in the path, not the query."""
    if isinstance(exc, InvalidQuery):
        errors: list[dict[str, Any]] = [
            {
                "loc": ["path" if name in path_params else "query", name],
                "msg": message,
                "type": "invalid_parameter",
            }
            for name, message in exc.field_errors.items()
        ]
        return InvalidParameters("invalid parameters", errors=errors)
    if isinstance(exc, RunNotFound):
        return NotFound(f"no run {exc.run_id!r}: no stored event carries this run_id")
    log.error("unmapped usage error: %r", exc)
    return StoreUnavailable(
        f"the read failed ({type(exc).__name__}); retry later", retry_after_s=30
    )


def read_database_error(exc: BaseException) -> ApiError:
    """The HTTP answer to a database failure of a read: always 503, nothing the caller
    sent was wrong (read parameters are checked before any SQL runs)."""
    failure = classify(exc)
    if failure is DbFailure.UNAVAILABLE:
        return StoreUnavailable("database unavailable; retry later")
    if failure is DbFailure.RETRYABLE:
        return StoreUnavailable(
            f"the database aborted the read ({type(exc).__name__}: a lock or statement "
            "timeout, or a conflict); retry"
        )
    if failure is DbFailure.NOT_MIGRATED:
        return DatabaseNotMigrated(
            "the database lacks the telemetry tables this server reads "
            "(not migrated to its revision): run `wdp migrate`"
        )
    log.error("the database refused a read query: %s", describe(exc))
    return StoreUnavailable(
        f"the database refused the read ({type(exc).__name__}); this is a bug of the "
        "server, reported in its log; retry later",
        retry_after_s=30,
    )
