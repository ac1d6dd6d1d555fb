"""Posting one batch to the ingest API: retries, backoff, Retry-After, per-event results.

Kept apart from the client's queue and threads: this is the part that talks HTTP and
decides, from the status and the per-event results, what became of each event. The
sender (:mod:`sdk.telemetry.sender`) and the spool replayer (:mod:`sdk.telemetry.replay`)
both post through one :class:`Poster`.
"""

from __future__ import annotations

import gzip
import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sdk.backoff import SYSTEM_TIMER, Timer, backoff_delay
from sdk.telemetry.events import EventBase
from sdk.telemetry.transport import Transport, TransportError, TransportResponse

log = logging.getLogger("sdk.telemetry")

__all__ = [
    "AUTH_FAILURES",
    "RETRYABLE",
    "RETRY_AFTER_CAP_S",
    "Counters",
    "Poster",
    "TelemetryStats",
    "Unavailable",
    "encode",
    "retry_after",
]

RETRYABLE = {408, 425, 429, 500, 502, 503, 504}
AUTH_FAILURES = {401, 403}
RETRY_AFTER_CAP_S = 60.0


@dataclass(frozen=True)
class TelemetryStats:
    """Counters since the client started (or since fork, in a child)."""

    queued: int
    sent: int
    duplicates: int
    retried: int
    spooled: int
    replayed: int
    rejected: int
    dropped: int


class Counters:
    """Event counters shared by the caller's thread and the senders (hence the lock:
    ``x += 1`` on an attribute is not atomic across threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.values = dict.fromkeys(
            ("sent", "duplicates", "retried", "spooled", "replayed", "rejected", "dropped"), 0
        )

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self.values[name] += amount

    def stats(self, *, queued: int) -> TelemetryStats:
        with self._lock:
            return TelemetryStats(queued=queued, **self.values)


class Unavailable(Exception):
    """The batch could not be delivered now; it should be spooled and retried later."""


def encode(events: Sequence[EventBase]) -> list[bytes]:
    # pydantic's own JSON (Rust), one call per event: several times cheaper than
    # model_dump + json.dumps, and the GIL passes to the host's threads between events.
    return [e.model_dump_json().encode() for e in events]


@dataclass
class Poster:
    """Sends pre-encoded events as one gzip batch and accounts for every event.

    ``stop`` is set at shutdown: a retry wait under way ends, and no retry follows."""

    transport: Callable[[], Transport]
    counters: Counters
    stop: threading.Event
    timeout_s: float
    retry_base_s: float
    retry_max_s: float
    timer: Timer = field(default=SYSTEM_TIMER)

    def post(self, events: list[bytes], *, retries: int) -> list[str]:
        """Deliver ``events`` or raise :class:`Unavailable` (after ``retries`` retries).

        Returns what became of each event, in order: the API's own status (``created``,
        ``duplicate``, ``conflict``, ...), or ``rejected`` / ``dropped`` for a batch
        refused as a whole."""
        body = gzip.compress(b'{"events":[' + b",".join(events) + b"]}", compresslevel=1)
        attempt = 0
        while True:
            delay: float | None
            try:
                response = self.transport().send(body, timeout=self.timeout_s)
            except TransportError as exc:
                problem, delay = f"connection failed ({exc})", None
            else:
                if response.status in (200, 207, 422):
                    return self._account(events, response)
                if response.status == 413 and len(events) > 1:
                    half = len(events) // 2
                    first = self.post(events[:half], retries=retries)
                    return first + self.post(events[half:], retries=retries)
                if response.status in AUTH_FAILURES:
                    log.error(
                        "ingest API answered %d for a batch of %d events: check "
                        "TELEMETRY_API_KEY; the events are kept in the spool",
                        response.status,
                        len(events),
                    )
                    raise Unavailable(f"HTTP {response.status} from the ingest API")
                if response.status not in RETRYABLE:
                    return self._refused(events, response, "dropped")
                problem, delay = f"HTTP {response.status}", retry_after(response.headers)
            if attempt >= retries or self.stop.is_set():
                raise Unavailable(problem)
            attempt += 1
            self.counters.add("retried")
            if delay is None:
                delay = backoff_delay(attempt - 1, base_s=self.retry_base_s, cap_s=self.retry_max_s)
            else:  # the server's Retry-After wins over our backoff, within reason
                delay = min(delay, RETRY_AFTER_CAP_S)
            self.timer.wait(self.stop, delay)

    def _account(self, events: list[bytes], response: TransportResponse) -> list[str]:
        try:
            results = json.loads(response.body)["results"]
        except (ValueError, KeyError, TypeError):
            # A 422 for the batch as a whole (not per event) has no results: it will
            # never be accepted, so it is dropped loudly rather than retried forever.
            return self._refused(events, response, "rejected")
        statuses: list[str] = []
        for result in results:
            status = str(result.get("status"))
            statuses.append(status)
            if status == "created":
                self.counters.add("sent")
            elif status == "duplicate":
                self.counters.add("duplicates")
            else:
                self.counters.add("rejected")
                log.warning(
                    "ingest API rejected event %s (%s): %s",
                    result.get("event_id"),
                    status,
                    result.get("reason"),
                )
        return statuses

    def _refused(self, events: list[bytes], response: TransportResponse, outcome: str) -> list[str]:
        """The API refused the whole batch for good: log it, count it as ``outcome``."""
        log.error(
            "ingest API refused a batch of %d events with HTTP %d: %s; %s",
            len(events),
            response.status,
            response.body[:500].decode(errors="replace"),
            "dropping it" if outcome == "dropped" else "rejected for good",
        )
        self.counters.add(outcome, len(events))
        return [outcome] * len(events)


def retry_after(headers: dict[str, str]) -> float | None:
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
