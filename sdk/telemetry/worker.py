"""A bounded queue drained by worker threads: the generic half of the batch client.

Shaped like OpenTelemetry's ``BatchProcessor``, which is separate from its exporter:
this module knows nothing about HTTP, events or files. Callers ``put`` items; worker
threads take batches of them, ``prepare`` each batch (the client validates deferred
events there) and hand it to an :class:`Exporter`. When the exporter is unavailable its
:class:`Gate` (the client's outage backoff) says how long to wait, and the queue is
moved meanwhile to the optional :class:`Backlog` (the spool), which the first worker
also replays before new batches, so replay keeps its order. ``flush`` waits until the
queue, the batches in flight and the backlog are empty; ``shutdown`` flushes within its
timeout, stops the threads and hands whatever is left to its owner.

Nothing here raises into the host: a failing worker cycle is logged and the worker
goes on. Which threads are workers is known by identity (:class:`WorkerThreads`, a
thread-local flag), never by a thread's name, which a host thread may share.

Fork: a worker serves the process that built it. In a forked child its threads do not
exist, its locks may be held by threads that do not either, and its queue is the
parent's to send, so the owner builds a new worker there (the client does, from
:mod:`sdk.telemetry.lifecycle`) and never touches the parent's one again.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Generic, Protocol, TypeVar

from sdk.backoff import Timer
from sdk.telemetry.state import ClientState, StateMachine

__all__ = ["Backlog", "BatchWorker", "Exporter", "Gate", "WorkerThreads"]

log = logging.getLogger("sdk.telemetry")

Q = TypeVar("Q")  # what callers queue
T = TypeVar("T")  # what a prepared batch holds
T_contra = TypeVar("T_contra", contravariant=True)


class Exporter(Protocol[T_contra]):
    """Delivers one batch at a time; called on a worker thread."""

    def export(self, batch: Sequence[T_contra]) -> bool:
        """Deliver ``batch``, never raising; False if the destination is unavailable
        (the exporter has kept the batch itself, and its gate now says when to retry)."""
        ...

    def interrupt(self) -> None:
        """Shutdown: cut short any retry the exporter is waiting out."""
        ...


class Gate(Protocol):
    """When the exporter may be tried next (a backoff after failures)."""

    def remaining(self) -> float:
        """Seconds until the next attempt is allowed; 0 when it is."""
        ...

    def attempt_now(self) -> None:
        """Allow one attempt at once (a flush)."""
        ...


class Backlog(Protocol[T_contra]):
    """Where batches wait while the exporter is unavailable; only the first worker
    (the primary) uses it, so what it holds keeps its order."""

    def pending(self) -> bool:
        """Whether it holds anything to deliver (``flush`` waits for it too)."""
        ...

    def replay(self, *, urgent: bool) -> bool:
        """Deliver what it holds, oldest first; False if the exporter is still
        unavailable. ``urgent`` (a flush is waiting): spend the full retry budget."""
        ...

    def park(self, batch: Sequence[T_contra]) -> None:
        """Keep a batch that cannot be exported now."""
        ...

    def checkpoint(self) -> None:
        """After each cycle: make what was parked durable (batched, off the caller)."""
        ...


class WorkerThreads:
    """Which threads are a worker's: each sets its own thread-local flag on start."""

    def __init__(self) -> None:
        self._local = threading.local()

    def enter(self) -> None:
        self._local.member = True

    def current(self) -> bool:
        """Whether the calling thread is one of the workers."""
        member: bool = getattr(self._local, "member", False)
        return member


class BatchWorker(Generic[Q, T]):
    """A bounded FIFO queue and ``workers`` daemon threads that export it in batches."""

    def __init__(
        self,
        exporter: Exporter[T],
        *,
        prepare: Callable[[Sequence[Q]], list[T]],
        gate: Gate,
        backlog: Backlog[T] | None,
        batch_size: int,
        queue_size: int,
        interval_s: float,
        workers: int,
        timer: Timer,
        name: str,
        threads: WorkerThreads | None = None,
    ) -> None:
        """``prepare`` turns taken items into a batch and may drop some (invalid ones);
        without a ``backlog``, items wait in the queue while the gate is closed."""
        self._exporter, self._prepare, self._gate, self._backlog = exporter, prepare, gate, backlog
        self._batch_size, self._queue_size, self._interval = batch_size, queue_size, interval_s
        self._workers, self._timer, self._name = max(1, workers), timer, name
        self.threads = threads or WorkerThreads()
        self.state = StateMachine()
        self._queue: collections.deque[Q] = collections.deque()
        self._wake = threading.Event()  # a full batch, a flush or shutdown
        self._stop = threading.Event()
        self._idle = threading.Condition()  # guards the in-flight accounting
        self._in_flight = 0
        self._batches: dict[int, list[T]] = {}  # thread ident -> the batch it is exporting
        self._flushing = 0
        self._start_lock = threading.Lock()
        self._running: list[threading.Thread] = []

    # -- the caller's side -----------------------------------------------------------

    def refusal(self, *, bounded: bool = False) -> str | None:
        """Why an item cannot be queued now (the caller keeps it elsewhere), or None.

        ``bounded``: an item whose memory its producer bounds (deferred work, one item
        standing for a LangGraph handler's records) is never refused for a full queue:
        refused, it would be run at once on the caller's thread, and its events,
        refused in turn, dropped while the API may be healthy. Nor is a worker's own
        emit: those are the events of deferred work it is running, which it exports
        next in the same cycle."""
        if self.state.current is ClientState.CLOSED:
            return "client is shut down"
        if len(self._queue) >= self._queue_size and not (bounded or self.threads.current()):
            return "queue full"
        return None

    def put(self, item: Q) -> None:
        """Queue ``item`` (after :meth:`refusal` said None); starts the workers on first use."""
        self._queue.append(item)
        if not self._running:
            self._start()
        # Set once, not per item: Event.set takes a lock and notifies even when already
        # set (~2 us, measured on every emit while a full queue waits for the sender).
        # No wake-up is lost: a set event means a worker has yet to clear it, and after
        # clearing it takes the queue, this item included.
        if len(self._queue) >= self._batch_size and not self._wake.is_set():
            self._wake.set()

    def queued(self) -> int:
        """Items queued or in flight."""
        return len(self._queue) + self._in_flight

    def wake(self) -> None:
        """Have a sleeping worker start its next cycle now."""
        self._wake.set()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything queued, in flight and in the backlog is delivered; True
        if nothing is left when it returns. A closed worker reports without waiting."""
        if self.state.current is ClientState.CLOSED:
            return self._drained()
        deadline = None if timeout is None else self._timer.monotonic() + timeout
        with self._idle:
            self._flushing += 1
        try:
            if not self._running and self._backlog is not None and self._backlog.pending():
                self._start()
            # A flush tries now, even in the middle of a backoff; after that the workers
            # keep to the backoff, and this loop only waits for them (no spinning).
            self._gate.attempt_now()
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

    def shutdown(self, timeout: float | None, finish: Callable[[list[T]], None]) -> bool:
        """Flush within ``timeout``, stop the workers, and call ``finish`` once with what
        is left (queued, or stuck in flight); see :meth:`StateMachine.shut_down`."""
        started = time.monotonic()
        return self.state.shut_down(
            lambda: self.flush(timeout), lambda: self._stop_workers(started, timeout, finish)
        )

    # -- the workers -----------------------------------------------------------------

    def _start(self) -> None:
        with self._start_lock:
            if not self._running:
                self.state.start()
                for index in range(self._workers):
                    thread = threading.Thread(
                        target=self._run,
                        args=(index == 0,),
                        name=f"{self._name}-{index}",
                        daemon=True,
                    )
                    thread.start()
                    self._running.append(thread)

    def _stop_workers(
        self, started: float, timeout: float | None, finish: Callable[[list[T]], None]
    ) -> None:
        self._stop.set()
        self._wake.set()
        self._exporter.interrupt()
        # The workers get what is left of the timeout (at least a moment) to finish.
        budget = 5.0 if timeout is None else timeout
        deadline = started + max(budget, 0.2)
        for thread in self._running:
            thread.join(timeout=max(0.1, deadline - time.monotonic()))
        with self._idle:
            # Workers stuck in an export: their batches are left over too. If such an
            # export did land, delivering it again must be harmless to the owner.
            leftover = [item for batch in self._batches.values() for item in batch]
        # popleft until empty, not copy-then-clear: an item put meanwhile (an emit that
        # passed refusal() just before the state moved) is taken, never cleared unseen.
        taken: list[Q] = []
        while True:
            try:
                taken.append(self._queue.popleft())
            except IndexError:
                break
        leftover += self._prepare(taken)
        finish(leftover)

    def _drained(self) -> bool:
        return (
            not self._queue
            and self._in_flight == 0
            and not (self._backlog is not None and self._backlog.pending())
        )

    def _run(self, primary: bool) -> None:
        self.threads.enter()
        while not self._stop.is_set():
            pause = self._pause()
            if pause > 0:
                self._timer.wait(self._wake, pause)
            self._wake.clear()
            try:
                self._cycle(primary=primary)
                if primary and self._backlog is not None:
                    self._backlog.checkpoint()
            except Exception:  # the worker must survive anything; never take the host down
                log.exception("telemetry sender failed; continuing")
                self._timer.wait(self._stop, 0.5)
            with self._idle:
                self._idle.notify_all()

    def _pause(self) -> float:
        """How long a worker may sleep before its next cycle (woken early by a full
        batch, a flush or shutdown)."""
        backoff = self._gate.remaining()
        if backoff > 0:
            # Nothing can be exported before the next attempt; queued items still move
            # to the backlog every interval.
            return min(backoff, self._interval) if self._queue else backoff
        if not self._queue:
            # Flushing with nothing queued: the backlog may still need replaying.
            return 0.05 if self._flushing else self._interval
        if len(self._queue) < self._batch_size and not self._flushing:
            return self._interval
        return 0.0

    def _cycle(self, *, primary: bool) -> None:
        backlog = self._backlog if primary else None
        if self._gate.remaining() > 0:
            # Backing off after a failure: no exporting. Keep order by parking new items
            # behind the backlog (without one they wait in the queue).
            if backlog is not None:
                self._park_queue(backlog)
            return
        if (
            backlog is not None
            and backlog.pending()
            and not backlog.replay(urgent=bool(self._flushing))
        ):
            self._park_queue(backlog)  # still unavailable
            return
        # Stopped: what is still queued is the shutdown's to hand over, not ours to send
        # (a worker that outlived its join would race the leftover hand-over).
        while not self._stop.is_set() and (batch := self._take_batch()):
            try:
                if not self._exporter.export(batch):
                    return
            finally:
                self._done_batch()

    def _take_batch(self) -> list[T]:
        """The next batch, counted in flight from the moment it leaves the queue (so
        flush never sees it nowhere)."""
        while True:
            taken: list[Q] = []
            with self._idle:
                try:
                    while len(taken) < self._batch_size:
                        taken.append(self._queue.popleft())
                except IndexError:  # empty, possibly emptied by another worker meanwhile
                    pass
                self._in_flight += len(taken)
            if not taken:
                return []
            batch = self._prepare(taken)
            with self._idle:
                self._in_flight -= len(taken) - len(batch)
                if batch:
                    self._batches[threading.get_ident()] = batch
                    return batch
            # prepare dropped every item of this batch: take the next one at once.

    def _done_batch(self) -> None:
        with self._idle:
            batch = self._batches.pop(threading.get_ident(), [])
            self._in_flight -= len(batch)

    def _park_queue(self, backlog: Backlog[T]) -> None:
        # Stopped: what is still queued is the shutdown's to hand over, not ours to send
        # (a worker that outlived its join would race the leftover hand-over).
        while not self._stop.is_set() and (batch := self._take_batch()):
            try:
                backlog.park(batch)
            finally:
                self._done_batch()
