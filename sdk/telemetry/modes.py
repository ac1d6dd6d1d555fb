"""The client's modes, one class each, and the factory that picks one once.

:class:`sdk.telemetry.client.TelemetryClient` is a facade: when it is built,
:func:`create_mode` chooses what its methods do for the rest of its life -

* :class:`DisabledMode` (``TELEMETRY_DISABLED``): events are validated by the caller and
  sent nowhere;
* :class:`SyncMode` (``TELEMETRY_SYNC``): the caller's thread sends each event through
  the :class:`~sdk.telemetry.sender.Sender` and spools it on failure;
* :class:`BatchMode` (the default): a :class:`~sdk.telemetry.worker.BatchWorker`
  queues events and its threads export them through the sender, with the spool
  (:class:`~sdk.telemetry.replay.Replayer`) as its backlog; :class:`JournaledBatchMode`
  (``TELEMETRY_DURABILITY=disk``) also journals each event before ``emit`` returns.

No method below asks which mode it is in. Each keeps a
:class:`~sdk.telemetry.state.StateMachine`; a forked child rebuilds its mode's
per-process parts (:meth:`Mode.after_fork`).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal, Protocol

from sdk.backoff import Timer
from sdk.telemetry.custody import Custody, Queued
from sdk.telemetry.deferred import DeferredWork
from sdk.telemetry.delivery import Counters, Poster, TelemetryStats
from sdk.telemetry.events import EventBase
from sdk.telemetry.journal import Journal
from sdk.telemetry.outage import Outage
from sdk.telemetry.replay import Replayer
from sdk.telemetry.sender import Sender
from sdk.telemetry.spool import Spool
from sdk.telemetry.state import ClientState, StateMachine
from sdk.telemetry.transport import (
    InjectedTransport,
    PerThreadTransports,
    SharedTransport,
    Transport,
    TransportPool,
)
from sdk.telemetry.worker import BatchWorker, WorkerThreads

__all__ = [
    "BatchMode",
    "ClientConfig",
    "DisabledMode",
    "Durability",
    "JournaledBatchMode",
    "Mode",
    "ModeName",
    "SyncMode",
    "create_mode",
]

Durability = Literal["memory", "disk"]
ModeName = Literal["disabled", "sync", "batch"]
SENDER_THREAD_NAME = "wdp-telemetry"  # for people reading thread dumps; never checked


@dataclass(frozen=True)
class ClientConfig:
    """What :class:`~sdk.telemetry.client.TelemetryClient` was built with (validated)."""

    endpoint: str | None
    api_key: str | None
    transport: Transport | None
    spool_dir: Path | None
    spool_max_bytes: int
    batch_size: int
    flush_interval_s: float
    queue_size: int
    timeout_s: float
    max_retries: int
    retry_base_s: float
    retry_max_s: float
    senders: int
    durability: Durability
    timer: Timer


class Mode(Protocol):
    """What the facade delegates to; see the module docstring."""

    name: ClassVar[ModeName]

    @property
    def state(self) -> ClientState: ...

    def emit(self, event: Queued) -> None: ...

    def wake(self) -> None: ...

    def flush(self, timeout: float | None) -> bool: ...

    def shutdown(self, timeout: float | None) -> bool: ...

    def stats(self) -> TelemetryStats: ...

    def after_fork(self) -> None: ...


def create_mode(config: ClientConfig, *, disabled: bool, sync: bool) -> Mode:
    """The one place that looks at ``disabled``, ``sync`` and ``durability``."""
    if disabled:
        return DisabledMode()
    spool = Spool(config.spool_dir, max_bytes=config.spool_max_bytes) if config.spool_dir else None
    if sync:  # sync mode has no queue to lose: emit returns once sent or spooled
        return SyncMode(config, spool)
    if config.durability == "disk" and spool is not None:
        return JournaledBatchMode(config, spool, Journal(spool))
    return BatchMode(config, spool)


class DisabledMode:
    """Validate, send nothing: ``emit`` drops the event in every state."""

    name: ClassVar[ModeName] = "disabled"

    def __init__(self) -> None:
        self._machine = StateMachine()

    @property
    def state(self) -> ClientState:
        return self._machine.current

    def emit(self, event: Queued) -> None:
        if isinstance(event, DeferredWork):
            # Run, not dropped: work holds its producer's records until it runs (the
            # events it emits come back here and are dropped).
            event.run()

    def wake(self) -> None:
        return None

    def flush(self, timeout: float | None) -> bool:
        return True

    def shutdown(self, timeout: float | None) -> bool:
        return self._machine.shut_down(lambda: True, lambda: None)

    def stats(self) -> TelemetryStats:
        return Counters().stats(queued=0)

    def after_fork(self) -> None:
        self._machine = StateMachine()


@dataclass(frozen=True)
class _Parts:
    """The per-process delivery parts both sending modes share (rebuilt after fork)."""

    counters: Counters
    outage: Outage
    custody: Custody
    sender: Sender
    replayer: Replayer | None

    @classmethod
    def build(
        cls,
        config: ClientConfig,
        spool: Spool | None,
        journal: Journal | None,
        transports: TransportPool,
        threads: WorkerThreads | None,
    ) -> _Parts:
        counters = Counters()
        outage = Outage(config.timer, base_s=config.retry_base_s, cap_s=config.retry_max_s)
        on_sender = threads.current if threads is not None else _not_a_sender
        custody = Custody(counters, spool, journal, on_sender_thread=on_sender)
        poster = Poster(
            transport=transports.get,
            counters=counters,
            stop=threading.Event(),
            timeout_s=config.timeout_s,
            retry_base_s=config.retry_base_s,
            retry_max_s=config.retry_max_s,
            timer=config.timer,
        )
        sender = Sender(poster, custody, outage, retries=config.max_retries)
        replayer = None
        if spool is not None:
            replayer = Replayer(
                spool,
                poster=poster,
                custody=custody,
                counters=counters,
                outage=outage,
                batch_size=config.batch_size,
                retries=config.max_retries,
            )
        return cls(counters, outage, custody, sender, replayer)


def _not_a_sender() -> bool:
    return False


def _pool(config: ClientConfig, kind: type[PerThreadTransports | SharedTransport]) -> TransportPool:
    if config.transport is not None:
        return InjectedTransport(config.transport)
    assert config.endpoint is not None  # the facade checked: an endpoint or a transport
    return kind(config.endpoint, api_key=config.api_key)


class SyncMode:
    """Send on the caller's thread, one connection shared by every calling thread.

    ``emit`` returns once the event is sent or spooled, also after ``shutdown`` (nothing
    is queued, so nothing can be missed). ``flush`` replays the spool.
    """

    name: ClassVar[ModeName] = "sync"

    def __init__(self, config: ClientConfig, spool: Spool | None) -> None:
        self._config, self._spool = config, spool
        self._transports = _pool(config, SharedTransport)
        self._build()

    def _build(self) -> None:
        self._machine = StateMachine()
        self._lock = threading.Lock()  # callers take turns on the one connection
        self._parts = _Parts.build(self._config, self._spool, None, self._transports, None)

    @property
    def state(self) -> ClientState:
        return self._machine.current

    def emit(self, event: Queued) -> None:
        events = self._parts.custody.resolve([event])
        if not events:
            return
        self._machine.start()
        with self._lock:
            self._parts.sender.send(events)

    def wake(self) -> None:
        return None  # nothing waits: every emit is sent at once

    def flush(self, timeout: float | None) -> bool:
        replayer = self._parts.replayer
        if replayer is None:
            return True
        if self._machine.current is ClientState.CLOSED:  # report, do not send
            return not replayer.pending()
        self._machine.start()
        with self._lock:
            return replayer.replay(urgent=True)

    def shutdown(self, timeout: float | None) -> bool:
        return self._machine.shut_down(lambda: self.flush(timeout), self._close)

    def _close(self) -> None:
        self._parts.sender.interrupt()
        if self._spool is not None:
            self._spool.close()
        self._transports.close()

    def stats(self) -> TelemetryStats:
        return self._parts.counters.stats(queued=0)

    def after_fork(self) -> None:
        if self._spool is not None:
            self._spool.reset_after_fork()
        self._transports.after_fork()
        self._build()


class BatchMode:
    """Queue on the caller's thread; worker threads send batches (the default)."""

    name: ClassVar[ModeName] = "batch"

    def __init__(self, config: ClientConfig, spool: Spool | None, journal: Journal | None = None):
        self._config, self._spool, self._journal = config, spool, journal
        self._transports = _pool(config, PerThreadTransports)
        # Two batches in flight keep a multi-worker API busy while one response is
        # pending; an injected transport may not be thread-safe, so it gets one sender.
        self._senders = 1 if config.transport is not None else max(1, config.senders)
        self._build()

    def _build(self) -> None:
        threads = WorkerThreads()
        parts = _Parts.build(self._config, self._spool, self._journal, self._transports, threads)
        self._parts, self._custody = parts, parts.custody
        self.worker: BatchWorker[Queued, EventBase] = BatchWorker(
            parts.sender,
            prepare=parts.custody.resolve,
            gate=parts.outage,
            backlog=parts.replayer,
            batch_size=self._config.batch_size,
            queue_size=self._config.queue_size,
            interval_s=self._config.flush_interval_s,
            workers=self._senders,
            timer=self._config.timer,
            name=SENDER_THREAD_NAME,
            threads=threads,
        )

    @property
    def state(self) -> ClientState:
        return self.worker.state.current

    def emit(self, event: Queued) -> None:
        refusal = self.worker.refusal(bounded=isinstance(event, DeferredWork))
        if refusal is None:
            self.worker.put(event)
        else:
            self._custody.spill([event], reason=refusal)

    def wake(self) -> None:
        self.worker.wake()

    def flush(self, timeout: float | None) -> bool:
        return self.worker.flush(timeout)

    def shutdown(self, timeout: float | None) -> bool:
        return self.worker.shutdown(timeout, self._finish)

    def _finish(self, leftover: Sequence[EventBase]) -> None:
        if leftover:
            self._custody.spill(leftover, reason="shutdown before delivery")
        if self._journal is not None:
            self._journal.close()
        if self._spool is not None:
            self._spool.close()
        self._transports.close()

    def stats(self) -> TelemetryStats:
        return self._parts.counters.stats(queued=self.worker.queued())

    def after_fork(self) -> None:
        # The parent's threads do not exist here and its queue is the parent's to send.
        if self._spool is not None:
            self._spool.reset_after_fork()
        if self._journal is not None:
            self._journal.reset_after_fork()
        self._transports.after_fork()
        self._build()


class JournaledBatchMode(BatchMode):
    """``TELEMETRY_DURABILITY=disk``: each event is in the journal before ``emit``
    returns (:mod:`sdk.telemetry.journal`); a deferred one is validated first."""

    def emit(self, event: Queued) -> None:
        refusal = self.worker.refusal(bounded=isinstance(event, DeferredWork))
        if refusal is not None:
            self._custody.spill([event], reason=refusal)
            return
        journaled = self._custody.journaled(event)
        if journaled is not None:
            self.worker.put(journaled)
