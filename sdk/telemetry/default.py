"""The process-wide default client, created on first use from the shared settings."""

from __future__ import annotations

import logging
import threading

from sdk.settings import get_settings
from sdk.telemetry.client import TelemetryClient
from sdk.telemetry.delivery import TelemetryStats
from sdk.telemetry.transport import HttpTransport

log = logging.getLogger("sdk.telemetry")
UNREACHABLE = "http://127.0.0.1:9"  # the discard port: every send fails, events are spooled

_lock = threading.Lock()
_default: TelemetryClient | None = None


def get_client() -> TelemetryClient:
    """The default client (built from TELEMETRY_* settings on first call)."""
    global _default
    if _default is None:
        with _lock:
            if _default is None:
                _default = _from_settings()
    return _default


def set_client(client: TelemetryClient | None) -> TelemetryClient | None:
    """Replace the default client (None: rebuild from settings next time); returns the old."""
    global _default
    with _lock:
        old, _default = _default, client
    return old


def _from_settings() -> TelemetryClient:
    settings = get_settings()
    key = settings.telemetry_api_key.get_secret_value() if settings.telemetry_api_key else None
    if key is None:
        # The local stack (make run) writes its generated key here; using it makes the
        # SDK work against `make run` with no configuration at all.
        local = settings.wdp_data_dir / "ingest-api-key"
        if local.is_file():
            key = local.read_text().strip() or None
    endpoint = settings.telemetry_endpoint
    try:
        HttpTransport(endpoint)
    except ValueError:
        # Instrumentation must not raise into the host: say so loudly and keep every
        # event in the spool until the setting is fixed and a process replays it.
        log.exception("TELEMETRY_ENDPOINT is invalid; telemetry goes to the spool only")
        endpoint = UNREACHABLE
    return TelemetryClient(
        endpoint=endpoint,
        api_key=key,
        spool_dir=settings.telemetry_spool_path,
        spool_max_bytes=settings.telemetry_spool_max_bytes,
        durability=settings.telemetry_durability,
        batch_size=settings.telemetry_batch_size,
        flush_interval_s=settings.telemetry_flush_interval_s,
        queue_size=settings.telemetry_queue_size,
        timeout_s=settings.telemetry_timeout_s,
        max_retries=settings.telemetry_max_retries,
        sync=settings.telemetry_sync,
        disabled=settings.telemetry_disabled,
        shutdown_timeout_s=settings.telemetry_shutdown_timeout_s,
    )


def flush(timeout: float | None = None) -> bool:
    return get_client().flush(timeout)


def shutdown(timeout: float | None = 5.0) -> bool:
    return get_client().shutdown(timeout)


def stats() -> TelemetryStats:
    return get_client().stats()
