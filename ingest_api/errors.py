"""Domain errors of the ingest API and their one mapping to HTTP responses.

Handlers raise :class:`ApiError` subclasses (or let a domain error escape); the
exception handlers registered in :mod:`ingest_api.app` turn each into a JSON body
``{"status", "error", "detail", "errors"?}``. Nothing else reaches the client: an
unexpected exception is logged with its traceback and answered with a bare 500.
"""

from __future__ import annotations

from typing import Any

from sdk.errors import WdpError


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


class Unauthorized(ApiError):
    status_code = 401
    error = "unauthorized"


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


class UnstorableEvent(InvalidEvent):
    """Postgres refused a value in a validated event (the validation missed something)."""


class TooManyFailedAttempts(ApiError):
    """This client address failed authentication too often; it waits ``Retry-After`` seconds."""

    status_code = 429
    error = "too_many_failed_attempts"

    def __init__(self, detail: str, *, retry_after_s: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after_s)})


class StoreUnavailable(ApiError):
    """The database could not be reached or the write was aborted; nothing was stored."""

    status_code = 503
    error = "unavailable"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"Retry-After": "1"})
