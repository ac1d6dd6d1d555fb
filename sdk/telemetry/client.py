"""TelemetryClient: a queue on the caller's side, a sender thread, a spool for outages.

``emit`` validates (already done by the event model) and appends to an in-memory
queue - no network I/O on the caller's thread. A daemon thread sends batches when one
is full or after ``flush_interval_s``; it retries connection errors, 408, 429 and 5xx
with capped exponential backoff and jitter (honouring Retry-After), and after the
retry budget spools the batch to disk and replays the spool, oldest first, once the
API answers - probing it with the same capped backoff (:mod:`sdk.backoff`) however
long the outage lasts. A full queue also spills to the spool.

A clean exit (the exit hook spools what it could not send) or an outage loses nothing;
a killed process loses what was still queued unless ``durability="disk"``, where emit
first appends the event to the spool directory (:mod:`sdk.telemetry.journal`). A full
spool drops events, counted and logged. Modelled on OpenTelemetry's
BatchSpanProcessor; unlike it, an outage does not drop data.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from sdk.backoff import SYSTEM_TIMER, Timer
from sdk.telemetry import lifecycle
from sdk.telemetry.custody import SENDER_THREAD, Custody, Queued
from sdk.telemetry.deferred import DeferredEvent
from sdk.telemetry.delivery import Counters, Poster, TelemetryStats, Unavailable, encode
from sdk.telemetry.events import EventBase
from sdk.telemetry.journal import Journal
from sdk.telemetry.outage import Outage
from sdk.telemetry.spool import Spool
from sdk.telemetry.transport import HttpTransport, Transport

Durability = Literal["memory", "disk"]

log = logging.getLogger("sdk.telemetry")


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
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self._timer: Timer = timer or SYSTEM_TIMER
        self.disabled = disabled
        self._transport: Transport | None = transport
        # Two batches in flight keep a multi-worker API busy while one response is
        # pending; an injected transport may not be thread-safe, so it gets one sender.
        self._senders = 1 if transport is not None else max(1, senders)
        self._endpoint, self._api_key = endpoint, api_key
        self._spool = Spool(Path(spool_dir), max_bytes=spool_max_bytes) if spool_dir else None
        # Sync mode has no queue to lose: emit returns once the event is sent or spooled.
        self.durability: Durability = durability
        self._journal = (
            Journal(self._spool)
            if durability == "disk" and self._spool is not None and not sync
            else None
        )
        self._batch_size = batch_size
        self._interval = flush_interval_s
        self._queue_size = queue_size
        self._timeout = timeout_s
        self._max_retries = max_retries
        self._retry_base, self._retry_max = retry_base_s, retry_max_s
        self._sync = sync
        self.shutdown_timeout_s = shutdown_timeout_s
        self._init_runtime()
        lifecycle.register(self)

    def _init_runtime(self) -> None:
        self._queue: collections.deque[Queued] = collections.deque()
        self._wake = threading.Event()
        self._idle = threading.Condition()
        self._in_flight = 0
        self._batches: dict[int, list[EventBase]] = {}
        self._local = threading.local()
        self._transports: list[Transport] = []
        self._sync_lock = threading.Lock()
        self._sync_transport: Transport | None = None
        self._flushing = 0
        self._send_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._stopping = False
        self._closed = False
        self._outage = Outage(self._timer, base_s=self._retry_base, cap_s=self._retry_max)
        self._counters = Counters()
        self._custody = Custody(self._counters, self._spool, self._journal)
        self._poster = Poster(
            transport=self._get_transport,
            counters=self._counters,
            stop=self._stop,
            timeout_s=self._timeout,
            retry_base_s=self._retry_base,
            retry_max_s=self._retry_max,
            timer=self._timer,
        )

    # -- public API ------------------------------------------------------------------

    def emit(self, event: EventBase | DeferredEvent) -> None:
        """Queue one validated event (or a deferred one, validated by the sender: see
        :mod:`sdk.telemetry.deferred`). Never blocks, never raises for transport reasons."""
        if self.disabled:
            return
        if self._sync:
            self._deliver_now([event])
            return
        if self._closed:
            self._custody.spill([event], reason="client is shut down")
            return
        if len(self._queue) >= self._queue_size:
            self._custody.spill([event], reason="queue full")
            return
        if self._journal is not None:
            journaled = self._custody.journaled(event)
            if journaled is None:
                return
            event = journaled
        self._queue.append(event)
        if not self._threads:
            self._start()
        if len(self._queue) >= self._batch_size:
            self._wake.set()

    def emit_batch(self, events: Iterable[EventBase]) -> None:
        for event in events:
            self.emit(event)

    def flush(self, timeout: float | None = None) -> bool:
        """Deliver everything queued or spooled; True if nothing is left when it returns."""
        if self.disabled:
            return True
        if self._closed:  # nothing sends any more: report, do not wait
            return self._drained()
        if self._sync:
            with self._sync_lock:
                return self._replay_spool(force=True)
        deadline = None if timeout is None else self._timer.monotonic() + timeout
        with self._idle:
            self._flushing += 1
        try:
            if not self._threads and self._spool and self._spool.has_pending():
                self._start()
            # A flush tries now, even in the middle of a backoff; after that the sender
            # keeps to its backoff, and this loop only waits for it (no spinning).
            self._outage.attempt_now()
            self._wake.set()
            while True:
                with self._idle:
                    if self._drained():
                        return True
                    remaining = None if deadline is None else deadline - self._timer.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._idle.wait(0.05 if remaining is None else min(0.05, remaining))
        finally:
            with self._idle:
                self._flushing -= 1

    def shutdown(self, timeout: float | None = 5.0) -> bool:
        """Flush within ``timeout``, stop the sender, and spool whatever is left."""
        if self._closed:
            return True
        started = time.monotonic()
        delivered = False
        try:
            delivered = self.flush(timeout)
        except Exception:
            log.exception("telemetry flush during shutdown failed; spooling what is left")
        finally:
            self._closed = True
            self._stopping = True
            self._stop.set()
            self._wake.set()
            # The senders get what is left of the timeout (at least a moment) to finish.
            budget = 5.0 if timeout is None else timeout
            deadline = started + max(budget, 0.2)
            for thread in self._threads:
                thread.join(timeout=max(0.1, deadline - time.monotonic()))
            with self._idle:
                # Senders stuck in a send: spool their batches too. If a send did land,
                # the replay is a harmless duplicate (the API is idempotent on event_id).
                leftover = [event for batch in self._batches.values() for event in batch]
            leftover += self._custody.resolve(list(self._queue))
            self._queue.clear()
            if leftover:
                self._custody.spill(leftover, reason="shutdown before delivery")
            if self._journal is not None:
                self._journal.close()
            if self._spool is not None:
                self._spool.close()
            for transport in [*self._transports, *([self._transport] if self._transport else [])]:
                transport.close()
        return delivered

    def stats(self) -> TelemetryStats:
        return self._counters.stats(queued=len(self._queue) + self._in_flight)

    # -- sender thread ---------------------------------------------------------------

    def _start(self) -> None:
        with self._send_lock:
            if not self._threads:
                for index in range(self._senders):
                    thread = threading.Thread(
                        target=self._run,
                        args=(index == 0,),
                        name=f"{SENDER_THREAD}-{index}",
                        daemon=True,
                    )
                    thread.start()
                    self._threads.append(thread)

    def _drained(self) -> bool:
        return (
            not self._queue
            and self._in_flight == 0
            and not (self._spool is not None and self._spool.has_pending())
        )

    def _run(self, primary: bool) -> None:
        while not self._stopping:
            pause = self._pause()
            if pause > 0:
                self._timer.wait(self._wake, pause)
            self._wake.clear()
            try:
                self._cycle(primary=primary)
                if primary and self._spool is not None:
                    # Queue overflow is spooled on the caller's thread without fsync (it
                    # must not wait on the disk); make it durable here, in batches.
                    self._spool.sync()
            except Exception:  # the sender must survive anything; never take the host down
                log.exception("telemetry sender failed; continuing")
                self._timer.wait(self._stop, 0.5)
            with self._idle:
                self._idle.notify_all()

    def _pause(self) -> float:
        """How long the sender may sleep before its next cycle (woken early by a full
        batch, a flush or shutdown)."""
        backoff = self._outage.remaining()
        if backoff > 0:
            # The API is down and nothing can be sent before the next probe; queued
            # events still move to the spool every interval.
            return min(backoff, self._interval) if self._queue else backoff
        if not self._queue:
            # Flushing with nothing queued: the spool may still need replaying.
            return 0.05 if self._flushing else self._interval
        if len(self._queue) < self._batch_size and not self._flushing:
            return self._interval
        return 0.0

    def _cycle(self, *, primary: bool) -> None:
        if self._outage.remaining() > 0:
            # Backing off after a failure: no sending. Keep order by appending new
            # events behind the spooled ones (without a spool they wait in the queue).
            if primary and self._spool is not None:
                self._move_queue_to_spool()
            return
        # Only the primary sender touches the spool, so replay stays in order.
        replay = primary and self._spool is not None and self._spool.has_pending()
        if replay and not self._replay_spool(force=bool(self._flushing)):
            self._move_queue_to_spool()  # still down
            return
        while batch := self._take_batch():
            try:
                self._send_with_retries(batch)
                self._custody.settle(batch)
                self._outage.succeeded()
            except Unavailable as exc:
                self._custody.spill(batch, reason=str(exc))
                self._outage.failed(str(exc))
                return
            except Exception as exc:  # a bug or a bad setting: keep the events regardless
                log.exception("telemetry send failed unexpectedly; spooling the batch")
                self._custody.spill(batch, reason=f"unexpected {type(exc).__name__}")
                self._outage.failed(f"unexpected {type(exc).__name__}")
                return
            finally:
                self._done_batch()

    def _take_batch(self) -> list[EventBase]:
        """The next batch, counted in flight from the moment it leaves the queue (so
        flush never sees it nowhere); deferred events are validated here."""
        while True:
            taken: list[Queued] = []
            with self._idle:
                try:
                    while len(taken) < self._batch_size:
                        taken.append(self._queue.popleft())
                except IndexError:  # empty, possibly emptied by the other sender meanwhile
                    pass
                self._in_flight += len(taken)
            if not taken:
                return []
            batch = self._custody.resolve(taken)
            with self._idle:
                self._in_flight -= len(taken) - len(batch)
                if batch:
                    self._batches[threading.get_ident()] = batch
                    return batch
            # Every event of this batch was invalid: take the next one at once.

    def _done_batch(self) -> None:
        with self._idle:
            batch = self._batches.pop(threading.get_ident(), [])
            self._in_flight -= len(batch)

    def _move_queue_to_spool(self) -> None:
        while batch := self._take_batch():
            try:
                self._custody.spill(batch, reason="endpoint unavailable")
            finally:
                self._done_batch()

    def _replay_spool(self, *, force: bool) -> bool:
        """Send spooled segments oldest first; False if the endpoint is still unavailable."""
        if self._spool is None:
            return True
        self._spool.seal()  # our own open segment becomes replayable too
        while (segment := self._spool.claim_oldest()) is not None:
            try:
                pending: list[bytes] = []
                for event in segment.events():
                    pending.append(event)
                    if len(pending) >= self._batch_size:
                        self._poster.post(pending, retries=self._max_retries if force else 0)
                        self._counters.add("replayed", len(pending))
                        pending = []
                if pending:
                    self._poster.post(pending, retries=self._max_retries if force else 0)
                    self._counters.add("replayed", len(pending))
            except Unavailable as exc:
                segment.release()
                self._outage.failed(str(exc))
                return False
            segment.delete()
        self._outage.succeeded()
        return True

    # -- delivery --------------------------------------------------------------------

    def _deliver_now(self, items: list[Queued]) -> None:
        """Synchronous mode: send on the caller's thread, spool on failure, never raise."""
        events = self._custody.resolve(items)
        if not events:
            return
        with self._sync_lock:  # one connection for every calling thread
            try:
                self._send_with_retries(events)
            except Unavailable as exc:
                self._custody.spill(events, reason=str(exc))
            except Exception as exc:
                log.exception("telemetry send failed unexpectedly; spooling the events")
                self._custody.spill(events, reason=f"unexpected {type(exc).__name__}")

    def _send_with_retries(self, events: list[EventBase]) -> None:
        self._poster.post(encode(events), retries=self._max_retries)

    def _get_transport(self) -> Transport:
        if self._transport is not None:  # injected: used by the single sender
            return self._transport
        if self._sync:  # callers hold _sync_lock: one shared connection
            if self._sync_transport is None:
                assert self._endpoint is not None
                self._sync_transport = HttpTransport(self._endpoint, api_key=self._api_key)
                self._transports.append(self._sync_transport)
            return self._sync_transport
        transport: Transport | None = getattr(self._local, "transport", None)
        if transport is None:  # one keep-alive connection per sender thread
            assert self._endpoint is not None
            transport = HttpTransport(self._endpoint, api_key=self._api_key)
            self._local.transport = transport
            self._transports.append(transport)
        return transport

    def _after_fork_in_child(self) -> None:
        # The parent's thread does not exist here and its queue is the parent's to send.
        self._init_runtime()
        if self._spool is not None:
            self._spool.reset_after_fork()
        if self._journal is not None:
            self._journal.reset_after_fork()
        # _init_runtime gave the child fresh per-thread transports. An injected one
        # shares the parent's socket: drop the child's copy (the parent's stays open)
        # so the child reconnects on first use.
        if isinstance(self._transport, HttpTransport):
            self._transport.close()
