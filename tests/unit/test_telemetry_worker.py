"""The generic queue-and-worker (``sdk.telemetry.worker``) on its own, with an in-process
fake exporter, gate and backlog: batching, flush and shutdown with timeouts, parking
while the exporter is unavailable, and surviving an exporter that raises."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from sdk.backoff import SYSTEM_TIMER
from sdk.telemetry.state import ClientState
from sdk.telemetry.worker import BatchWorker


class Gate:
    """Closed until ``until`` (monotonic seconds); a flush opens it."""

    def __init__(self) -> None:
        self.until = 0.0

    def remaining(self) -> float:
        return max(0.0, self.until - time.monotonic())

    def attempt_now(self) -> None:
        self.until = 0.0

    def close_for(self, seconds: float) -> None:
        self.until = time.monotonic() + seconds


class Exporter:
    """Records batches and the threads that exported them; can hang, fail or raise."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate
        self.batches: list[list[int]] = []
        self.threads: list[threading.Thread] = []
        self.on_worker: list[bool] = []
        self.hang: threading.Event | None = None  # export waits until it is set
        self.raise_next = 0
        self.interrupted = threading.Event()
        self.worker: BatchWorker[int, int] | None = None

    def export(self, batch: Sequence[int]) -> bool:
        self.threads.append(threading.current_thread())
        if self.worker is not None:
            self.on_worker.append(self.worker.threads.current())
        if self.hang is not None:
            self.hang.wait(10)
        if self.raise_next:
            self.raise_next -= 1
            raise RuntimeError("exporter bug")
        if self.gate.remaining() > 0:
            return False
        self.batches.append(list(batch))
        return True

    def interrupt(self) -> None:
        self.interrupted.set()

    @property
    def exported(self) -> list[int]:
        return [item for batch in self.batches for item in batch]


class Backlog:
    def __init__(self) -> None:
        self.items: list[int] = []
        self.replayed: list[int] = []
        self.available = True
        self.checkpoints = 0

    def pending(self) -> bool:
        return bool(self.items)

    def replay(self, *, urgent: bool) -> bool:
        if not self.available:
            return False
        self.replayed += self.items
        self.items = []
        return True

    def park(self, batch: Sequence[int]) -> None:
        self.items += batch

    def checkpoint(self) -> None:
        self.checkpoints += 1


def keep_non_negative(items: Sequence[int]) -> list[int]:
    return [item for item in items if item >= 0]


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
def exporter(gate: Gate) -> Exporter:
    return Exporter(gate)


@pytest.fixture
def make(exporter: Exporter, gate: Gate) -> Iterator[Callable[..., BatchWorker[int, int]]]:
    made: list[BatchWorker[int, int]] = []

    def build(**options: Any) -> BatchWorker[int, int]:
        settings: dict[str, Any] = {
            "prepare": keep_non_negative,
            "gate": gate,
            "backlog": None,
            "batch_size": 10,
            "queue_size": 1000,
            "interval_s": 0.02,
            "workers": 1,
            "timer": SYSTEM_TIMER,
            "name": "test-worker",
        }
        worker: BatchWorker[int, int] = BatchWorker(exporter, **(settings | options))
        exporter.worker = worker
        made.append(worker)
        return worker

    yield build
    if exporter.hang is not None:
        exporter.hang.set()
    for worker in made:
        worker.shutdown(0, lambda leftover: None)


def test_batches_are_exported_in_order_on_the_workers_own_thread(
    make: Callable[..., BatchWorker[int, int]], exporter: Exporter
) -> None:
    worker = make(interval_s=30)
    for n in range(25):
        worker.put(n)
    assert worker.flush(timeout=10)
    assert exporter.batches == [list(range(10)), list(range(10, 20)), list(range(20, 25))]
    assert threading.current_thread() not in exporter.threads
    assert exporter.on_worker == [True, True, True]
    assert worker.threads.current() is False  # the caller is not a worker
    assert worker.queued() == 0


def test_a_thread_named_like_a_worker_is_not_one(
    make: Callable[..., BatchWorker[int, int]],
) -> None:
    worker = make()
    worker.put(1)
    assert worker.flush(timeout=10)
    seen: list[bool] = []
    impostor = threading.Thread(
        target=lambda: seen.append(worker.threads.current()), name="test-worker-0"
    )
    impostor.start()
    impostor.join()
    assert seen == [False]


def test_prepare_may_drop_a_whole_batch_without_holding_up_the_next(
    make: Callable[..., BatchWorker[int, int]], exporter: Exporter
) -> None:
    worker = make(batch_size=5)
    for n in [-1] * 5 + [7]:
        worker.put(n)
    assert worker.flush(timeout=10)
    assert exporter.exported == [7]
    assert worker.queued() == 0


def test_flush_and_shutdown_keep_to_their_timeouts_and_hand_back_a_stuck_batch(
    make: Callable[..., BatchWorker[int, int]], exporter: Exporter
) -> None:
    exporter.hang = threading.Event()
    worker = make(batch_size=3)
    for n in range(5):
        worker.put(n)
    assert worker.flush(timeout=0.2) is False  # a batch hangs in the exporter
    finished: list[list[int]] = []
    assert worker.shutdown(0.2, finished.append) is False
    assert exporter.interrupted.is_set()
    assert worker.state.current is ClientState.CLOSED
    # Handed back once: the batch stuck in flight and what was still queued.
    assert len(finished) == 1
    assert sorted(finished[0]) == [0, 1, 2, 3, 4]
    assert worker.shutdown(0.2, finished.append) is True  # already shut down
    assert len(finished) == 1
    assert worker.refusal() == "client is shut down"
    assert worker.flush(timeout=5) is False  # closed: reports at once, never waits


def test_an_exporter_that_raises_is_logged_and_the_worker_goes_on(
    make: Callable[..., BatchWorker[int, int]],
    exporter: Exporter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    exporter.raise_next = 1
    worker = make(batch_size=2)
    with caplog.at_level(logging.ERROR, logger="sdk.telemetry"):
        worker.put(1)
        worker.put(2)  # a full batch: exported at once, and the export raises
        deadline = time.monotonic() + 10
        while not any("sender failed" in r.getMessage() for r in caplog.records):
            assert time.monotonic() < deadline, "the failure was never logged"
            time.sleep(0.01)
        worker.put(3)
        assert worker.flush(timeout=10)  # nothing raised into this thread
    assert exporter.exported == [3]


def test_while_the_gate_is_closed_the_queue_waits_in_the_backlog_and_is_replayed_first(
    make: Callable[..., BatchWorker[int, int]], exporter: Exporter, gate: Gate
) -> None:
    backlog = Backlog()
    gate.close_for(60)
    worker = make(backlog=backlog, batch_size=3, interval_s=0.01)
    for n in range(7):
        worker.put(n)
    deadline = time.monotonic() + 10
    while backlog.items != list(range(7)):
        assert time.monotonic() < deadline, "the queue was not parked"
        time.sleep(0.01)
    assert exporter.batches == []
    assert backlog.checkpoints > 0  # parked items made durable after each cycle
    gate.attempt_now()  # as a flush does; the API is back
    worker.put(7)
    assert worker.flush(timeout=10)  # the backlog first, then the queue
    assert backlog.replayed == list(range(7))
    assert exporter.exported == [7]


def test_a_backlog_that_cannot_replay_keeps_new_items_behind_it(
    make: Callable[..., BatchWorker[int, int]], exporter: Exporter
) -> None:
    backlog = Backlog()
    backlog.items = [100]
    backlog.available = False
    worker = make(backlog=backlog)
    worker.put(1)
    assert worker.flush(timeout=0.3) is False
    assert backlog.items == [100, 1]
    assert exporter.batches == []


def test_without_a_backlog_items_wait_in_the_queue_while_the_gate_is_closed(
    make: Callable[..., BatchWorker[int, int]], exporter: Exporter, gate: Gate
) -> None:
    gate.close_for(0.3)
    worker = make()
    for n in range(3):
        worker.put(n)
    time.sleep(0.1)
    assert worker.queued() == 3
    assert exporter.batches == []
    assert worker.flush(timeout=10)
    assert exporter.exported == [0, 1, 2]


def test_a_full_queue_is_refused_and_nothing_is_lost(
    make: Callable[..., BatchWorker[int, int]], exporter: Exporter
) -> None:
    worker = make(queue_size=3, batch_size=100, interval_s=60)
    assert worker.state.current is ClientState.NEW
    for n in range(3):
        assert worker.refusal() is None
        worker.put(n)
    assert worker.state.current is ClientState.RUNNING
    assert worker.refusal() == "queue full"
    finished: list[list[int]] = []
    worker.shutdown(1, finished.append)
    assert sorted(exporter.exported + finished[0]) == [0, 1, 2]
