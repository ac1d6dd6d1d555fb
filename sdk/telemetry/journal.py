"""The durable mode's journal (``TELEMETRY_DURABILITY=disk``): every event on disk before
``emit`` returns, so that a killed process loses nothing it had queued.

``record`` appends the event's JSON line to this process's journal segment with one
``os.write`` - handed to the operating system, not fsync'd: it survives the process
being killed (even ``kill -9``), not a power loss. The sender still sends from memory;
``settle`` is told which events are done with (acknowledged by the API, refused for
good, or copied into the ordinary spool), and a segment is deleted once all of its
events are settled - the current one is truncated instead, ready for more.

Journal segments are ordinary spool segments (same directory, same names, same
``flock``) that this process keeps out of its own replay (:attr:`Spool.private`): their
events are still in its memory. If the process dies, the kernel releases the locks and
the next process using the spool replays them like any other; events the API had
already stored come back as duplicates (the API dedupes by ``event_id``), so each is
stored exactly once.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sdk.telemetry.events import EventBase
from sdk.telemetry.spool import SEGMENT_MAX_BYTES, Spool

__all__ = ["Journal"]

log = logging.getLogger("sdk.telemetry")


@dataclass
class _Segment:
    path: Path
    fd: int
    written: int = 0  # events written
    settled: int = 0  # of those, how many are done with
    size: int = 0  # bytes


class Journal:
    """Write-ahead copies of queued events, in segments of ``spool``'s directory."""

    def __init__(self, spool: Spool) -> None:
        self._spool = spool
        self._lock = threading.Lock()
        self._segments: dict[int, _Segment] = {}
        self._current: int | None = None
        self._numbers = 0
        # id(event) -> the segments holding it (a list: one object may be emitted twice).
        # The queue holds each event until it is settled, so an id is never reused early.
        self._where: dict[int, list[int]] = {}
        self._failing = False  # a write failed: logged once until one succeeds again

    def record(self, event: EventBase) -> bool:
        """Write ``event`` to the journal; False if it could not (spool full, disk error),
        in which case it lives in memory only - logged, never raised."""
        line = event.model_dump_json().encode() + b"\n"
        with self._lock:
            try:
                if not self._spool.reserve(len(line)):
                    self._fail("the spool is full (TELEMETRY_SPOOL_MAX_BYTES)")
                    return False
                number = self._current if self._current is not None else self._open()
                segment = self._segments[number]
                view = memoryview(line)
                while view:  # a regular file takes it in one write; be exact anyway
                    view = view[os.write(segment.fd, view) :]
            except OSError as exc:
                self._spool.shrunk()  # reserved but maybe not written
                self._fail(f"{type(exc).__name__}: {exc}")
                return False
            segment.written += 1
            segment.size += len(line)
            self._where.setdefault(id(event), []).append(number)
            if segment.size >= SEGMENT_MAX_BYTES:
                self._current = None  # sealed: deleted once all its events are settled
            if self._failing:
                self._failing = False
                log.warning("telemetry journal writable again: emit is durable again")
        return True

    def holds(self, event: EventBase) -> bool:
        """Whether ``event`` has a journal copy not settled yet."""
        with self._lock:
            return bool(self._where.get(id(event)))

    def settle(self, events: Iterable[EventBase]) -> None:
        """These events need no journal copy any more (delivered, refused, or spooled)."""
        with self._lock:
            touched: set[int] = set()
            for event in events:
                numbers = self._where.get(id(event))
                if not numbers:  # not journaled, or settled already
                    continue
                number = numbers.pop()
                if not numbers:
                    del self._where[id(event)]
                self._segments[number].settled += 1
                touched.add(number)
            for number in touched:
                segment = self._segments[number]
                if segment.settled < segment.written:
                    continue
                try:
                    if number == self._current:
                        os.ftruncate(segment.fd, 0)  # O_APPEND: the next write starts at 0
                        segment.written = segment.settled = segment.size = 0
                    else:
                        self._remove(number)
                except OSError:
                    log.exception("could not clear telemetry journal segment %s", segment.path)
                self._spool.shrunk()

    def pending(self) -> int:
        """Events written and not settled yet."""
        with self._lock:
            return sum(s.written - s.settled for s in self._segments.values())

    def close(self) -> None:
        """Delete settled segments; leave the rest (and unlock them) for the next process."""
        with self._lock:
            for number in list(self._segments):
                segment = self._segments[number]
                if segment.settled >= segment.written:
                    self._remove(number)
                else:
                    os.close(segment.fd)
                    self._spool.private.discard(segment.path)
                    del self._segments[number]
            self._current = None
            self._where.clear()
        self._spool.shrunk()

    def reset_after_fork(self) -> None:
        """In a forked child: the parent's journal is the parent's. Close our copies of
        its descriptors (the parent's keep the locks) and start empty."""
        self._lock = threading.Lock()
        for segment in self._segments.values():
            os.close(segment.fd)
        self._segments.clear()
        self._where.clear()
        self._current = None
        self._failing = False

    def _open(self) -> int:
        fd, path = self._spool.create_segment()
        self._spool.private.add(path)
        self._numbers += 1
        self._segments[self._numbers] = _Segment(path, fd)
        self._current = self._numbers
        return self._numbers

    def _remove(self, number: int) -> None:
        # Unlink while still holding the lock: a replayer that opened the file just
        # before gets the lock only after this and then sees the path is gone.
        segment = self._segments.pop(number)
        segment.path.unlink(missing_ok=True)
        os.close(segment.fd)
        self._spool.private.discard(segment.path)
        if number == self._current:
            self._current = None

    def _fail(self, problem: str) -> None:
        if not self._failing:
            self._failing = True
            log.error(
                "telemetry journal not written (%s): new events are kept in memory only "
                "and a process kill would lose them",
                problem,
            )
