"""The process-wide default client, created on first use from the shared settings."""

from __future__ import annotations

import threading

from sdk.telemetry.client import TelemetryClient
from sdk.telemetry.delivery import TelemetryStats

__all__ = ["flush", "get_client", "set_client", "shutdown", "stats"]

_lock = threading.Lock()
_default: TelemetryClient | None = None


def get_client() -> TelemetryClient:
    """The default client (built from TELEMETRY_* settings on first call)."""
    global _default
    if _default is None:
        with _lock:
            if _default is None:
                _default = TelemetryClient.from_settings()
    return _default


def set_client(client: TelemetryClient | None) -> TelemetryClient | None:
    """Replace the default client (None: rebuild from settings next time); returns the old."""
    global _default
    with _lock:
        old, _default = _default, client
    return old


def flush(timeout: float | None = None) -> bool:
    return get_client().flush(timeout)


def shutdown(timeout: float | None = 5.0) -> bool:
    return get_client().shutdown(timeout)


def stats() -> TelemetryStats:
    return get_client().stats()
