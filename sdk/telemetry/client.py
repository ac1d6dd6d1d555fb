"""TelemetryClient: sends events to the ingest API without blocking or losing them.

``emit`` validates (already done by the event model) and appends to an in-memory
queue - no network I/O on the caller's thread. Worker threads send batches when one is
full or after ``flush_interval_s``; they retry connection errors, 408, 429 and 5xx with
capped exponential backoff and jitter (honouring Retry-After), and after the retry
budget spool the batch to disk and replay the spool, oldest first, once the API
answers - probing it with the same capped backoff (:mod:`sdk.backoff`) however long the
outage lasts. A full queue also spills to the spool.

A clean exit (the exit hook spools what it could not send) or an outage loses nothing;
a killed process loses what was still queued unless ``durability="disk"``, where emit
first appends the event to the spool directory (:mod:`sdk.telemetry.journal`). A full
spool drops events, counted and logged. Modelled on OpenTelemetry's
BatchSpanProcessor; unlike it, an outage does not drop data.

The client is a facade over parts that each do one thing: the generic queue and its
worker threads (:mod:`~sdk.telemetry.worker`), the sender that posts one batch
(:mod:`~sdk.telemetry.sender`, over :mod:`~sdk.telemetry.delivery`), the spool
replayer (:mod:`~sdk.telemetry.replay`), and the mode chosen once when the client is
built (:mod:`~sdk.telemetry.modes`), whose lifecycle is an explicit state machine
(:mod:`~sdk.telemetry.state`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

from sdk.backoff import SYSTEM_TIMER, Timer
from sdk.settings import WdpSettings, get_settings
from sdk.telemetry import lifecycle
from sdk.telemetry.deferred import DeferredEvent, DeferredWork
from sdk.telemetry.delivery import TelemetryStats
from sdk.telemetry.events import EventBase
from sdk.telemetry.modes import ClientConfig, Durability, Mode, ModeName, create_mode
from sdk.telemetry.state import ClientState
from sdk.telemetry.transport import HttpTransport, Transport

__all__ = ["UNREACHABLE", "ClientState", "Durability", "TelemetryClient"]

log = logging.getLogger("sdk.telemetry")

# Settings read as TELEMETRY_<NAME> into the keyword argument of the same name.
_SAME_NAMED_SETTINGS = (
    "spool_max_bytes",
    "durability",
    "batch_size",
    "flush_interval_s",
    "queue_size",
    "timeout_s",
    "max_retries",
    "sync",
    "disabled",
    "shutdown_timeout_s",
)
UNREACHABLE = "http://127.0.0.1:9"  # the discard port: every send fails, events are spooled


def _utc_now() -> datetime:
    return datetime.now(UTC)


class TelemetryClient:
    """Sends events to the ingest API without blocking or losing them."""

    def __init__(
        self,
        *,
        endpoint: str | None = None,
        api_key: str | None = None,
        transport: Transport | None = None,
        spool_dir: Path | str | None = None,
        spool_max_bytes: int = 256 * 1024 * 1024,
        batch_size: int = 500,
        flush_interval_s: float = 1.0,
        queue_size: int = 10_000,
        timeout_s: float = 10.0,
        max_retries: int = 4,
        retry_base_s: float = 0.2,
        retry_max_s: float = 10.0,
        sync: bool = False,
        disabled: bool = False,
        shutdown_timeout_s: float = 5.0,
        senders: int = 2,
        durability: Durability = "memory",
        clock: Callable[[], datetime] | None = None,
        timer: Timer | None = None,
    ) -> None:
        """``clock`` dates events; ``timer`` is what the sender's backoff, flush deadlines
        and waits run on (tests inject a simulated one to live through long outages)."""
        if transport is None and endpoint is None and not disabled:
            raise ValueError("TelemetryClient needs an endpoint or a transport")
        if transport is None and endpoint is not None:
            HttpTransport(endpoint)  # raises ValueError now for a malformed endpoint
        if durability not in ("memory", "disk"):
            raise ValueError(f"TELEMETRY_DURABILITY must be memory or disk (got {durability!r})")
        if durability == "disk" and not spool_dir and not disabled:
            raise ValueError("TELEMETRY_DURABILITY=disk needs a spool directory")
        self.clock: Callable[[], datetime] = clock or _utc_now
        self.shutdown_timeout_s = shutdown_timeout_s  # what the exit hook allows
        self._durability: Durability = durability
        config = ClientConfig(
            endpoint=endpoint,
            api_key=api_key,
            transport=transport,
            spool_dir=Path(spool_dir) if spool_dir else None,
            spool_max_bytes=spool_max_bytes,
            batch_size=batch_size,
            flush_interval_s=flush_interval_s,
            queue_size=queue_size,
            timeout_s=timeout_s,
            max_retries=max_retries,
            retry_base_s=retry_base_s,
            retry_max_s=retry_max_s,
            senders=senders,
            durability=durability,
            timer=timer or SYSTEM_TIMER,
        )
        self._mode: Mode = create_mode(config, disabled=disabled, sync=sync)
        lifecycle.register(self)

    @classmethod
    def from_settings(cls, settings: WdpSettings | None = None) -> Self:
        """A client configured by the ``TELEMETRY_*`` settings (the default client).

        Never raises for a bad endpoint: instrumentation must not take the host down, so
        an invalid ``TELEMETRY_ENDPOINT`` is logged and every event kept in the spool
        until the setting is fixed and a process replays it."""
        settings = settings or get_settings()
        key = settings.telemetry_api_key.get_secret_value() if settings.telemetry_api_key else None
        if key is None:
            # The local stack (make run) writes its generated key here; using it makes
            # the SDK work against `make run` with no configuration at all.
            local = settings.wdp_data_dir / "ingest-api-key"
            if local.is_file():
                key = local.read_text().strip() or None
        endpoint = settings.telemetry_endpoint
        try:
            HttpTransport(endpoint)
        except ValueError:
            log.exception("TELEMETRY_ENDPOINT is invalid; telemetry goes to the spool only")
            endpoint = UNREACHABLE
        options: dict[str, Any] = {
            n: getattr(settings, f"telemetry_{n}") for n in _SAME_NAMED_SETTINGS
        }
        return cls(
            endpoint=endpoint, api_key=key, spool_dir=settings.telemetry_spool_path, **options
        )

    # -- public API ------------------------------------------------------------------

    def emit(self, event: EventBase | DeferredEvent | DeferredWork) -> None:
        """Queue one validated event (or a deferred one, validated by the sender: see
        :mod:`sdk.telemetry.deferred`). Never blocks, never raises for transport reasons.
        After ``shutdown`` batch mode spools the event, sync mode still sends it (or
        spools it), disabled mode drops it."""
        self._mode.emit(event)

    def wake(self) -> None:
        """Have the sender start its next cycle now instead of at the flush interval
        (for producers that queue :class:`~sdk.telemetry.deferred.DeferredWork` standing
        for many events, which the queue's batch-size trigger does not count)."""
        self._mode.wake()

    def emit_batch(self, events: Iterable[EventBase]) -> None:
        for event in events:
            self.emit(event)

    def flush(self, timeout: float | None = None) -> bool:
        """Deliver everything queued or spooled; True if nothing is left when it returns.
        After ``shutdown`` it reports without waiting."""
        return self._mode.flush(timeout)

    def shutdown(self, timeout: float | None = 5.0) -> bool:
        """Flush within ``timeout``, stop the sender, and spool whatever is left."""
        return self._mode.shutdown(timeout)

    def stats(self) -> TelemetryStats:
        return self._mode.stats()

    @property
    def state(self) -> ClientState:
        """Where the client is in its lifecycle (:mod:`sdk.telemetry.state`)."""
        return self._mode.state

    @property
    def mode(self) -> ModeName:
        """``disabled``, ``sync`` or ``batch``: chosen once, when the client was built."""
        return self._mode.name

    @property
    def disabled(self) -> bool:
        """Read-only: the mode cannot change after the client is built."""
        return self._mode.name == "disabled"

    @property
    def durability(self) -> Durability:
        """As given; only batch mode journals (sync mode has no queue to lose)."""
        return self._durability

    def _after_fork_in_child(self) -> None:
        self._mode.after_fork()
