"""The on-disk spool: where events wait while the ingest API cannot take them.

Events are appended as JSON lines to segment files in one directory; segments are
replayed oldest first and deleted once every event in them was delivered (the API is
idempotent on event_id, so a crash mid-replay only causes duplicates, never loss).
Each process writes its own segment and holds an exclusive ``flock`` on it while it
is open, so another process sharing the directory replays only closed segments or
those of processes that died - which is how a restarted orchestrator delivers what its
predecessor could not. The total size is bounded; beyond it events are dropped and
counted. Hand-written: no maintained library offers a cross-process, size-bounded,
fsync-batched spool with these replay semantics.

The durable mode's journal (:mod:`sdk.telemetry.journal`) writes segments of the same
kind in the same directory; this process never replays those (``private``), but once
it dies they are ordinary segments to whoever replays next.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

__all__ = ["SEGMENT_MAX_BYTES", "Segment", "Spool"]

log = logging.getLogger("sdk.telemetry")

SEGMENT_MAX_BYTES = 8 * 1024 * 1024


@dataclass
class Segment:
    """A closed segment claimed for replay; ``release`` unlocks it, ``delete`` removes it."""

    path: Path
    handle: IO[bytes]
    spool: Spool  # whose claim this is: releasing unlocks and unclaims under its lock

    def events(self) -> Iterator[bytes]:
        """Each spooled event's JSON, as written."""
        self.handle.seek(0)
        for number, line in enumerate(self.handle, 1):
            if not line.endswith(b"\n"):
                # A torn last line from a crash mid-append: that event was never
                # acknowledged to anyone, and the rest of the file is still good.
                log.warning("skipping a torn line %d of spool segment %s", number, self.path)
                continue
            if line.strip():
                yield line[:-1]

    def delete(self) -> None:
        self.path.unlink(missing_ok=True)
        self.release()

    def release(self) -> None:
        self.spool.release(self)


class Spool:
    """A bounded, append-only, multi-process event spool in ``directory``."""

    def __init__(self, directory: Path, *, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._writer: IO[bytes] | None = None
        self._writer_path: Path | None = None
        self._dirty = False
        self._seq = 0
        self._size_cache: tuple[float, int] | None = None
        # Segments this process writes and tracks itself (the journal's): never replayed
        # or counted as pending here; the next process replays them if this one dies.
        self.private: set[Path] = set()
        self._claimed: set[Path] = set()  # segments our replay holds right now

    # -- writing ---------------------------------------------------------------------

    def append(self, events: list[bytes], *, sync: bool) -> int:
        """Append encoded events (one JSON object each, no newlines); fsync when ``sync``.

        Returns how many fit; the caller counts the rest as dropped.
        """
        lines = [e + b"\n" for e in events]
        with self._lock:
            room = self.max_bytes - self._total_size()
            accepted: list[bytes] = []
            for line in lines:
                if len(line) > room:
                    break
                accepted.append(line)
                room -= len(line)
            if accepted:
                writer = self._open_writer()
                data = b"".join(accepted)
                writer.write(data)
                writer.flush()
                self._dirty = True
                self._grow(len(data))
                if sync:
                    self._fsync()
                if writer.tell() >= SEGMENT_MAX_BYTES:
                    self._close_writer()
            return len(accepted)

    def sync(self) -> None:
        """fsync what was appended since the last sync (batched durability)."""
        with self._lock:
            self._fsync()

    def seal(self) -> None:
        """Close the current segment so it can be replayed (also by other processes)."""
        with self._lock:
            self._close_writer()

    def reserve(self, size: int) -> bool:
        """Account for ``size`` bytes about to be written by the journal; False if full."""
        with self._lock:
            if size > self.max_bytes - self._total_size():
                return False
            self._grow(size)
            return True

    def shrunk(self) -> None:
        """A segment was truncated or deleted behind the size cache's back."""
        with self._lock:
            self._size_cache = None

    def create_segment(self) -> tuple[int, Path]:
        """A new, empty segment, already locked: an append-only descriptor and its path."""
        with self._lock:
            return self._create_segment()

    def _create_segment(self) -> tuple[int, Path]:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._seq += 1
        name = f"seg-{time.time_ns():020d}-{os.getpid()}-{self._seq:06d}.jsonl"
        path = self.directory / name
        # Lock before the segment becomes visible under its name: another process
        # must never claim (and delete) a segment its writer has not locked yet.
        hidden = self.directory / f".{name}.new"
        fd = os.open(hidden, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            hidden.rename(path)
        except BaseException:
            os.close(fd)
            raise
        return fd, path

    def _open_writer(self) -> IO[bytes]:
        if self._writer is None:
            fd, path = self._create_segment()
            self._writer, self._writer_path = os.fdopen(fd, "ab"), path
        return self._writer

    def _fsync(self) -> None:
        if self._writer is not None and self._dirty:
            os.fsync(self._writer.fileno())
            self._dirty = False

    def _close_writer(self) -> None:
        if self._writer is not None:
            self._fsync()
            self._writer.close()  # closing releases the flock
            self._writer = self._writer_path = None

    def _grow(self, size: int) -> None:
        # Keep the cache current instead of dropping it: the journal appends once per
        # event, and re-listing the directory each time would cost more than the write.
        if self._size_cache is not None:
            self._size_cache = (self._size_cache[0], self._size_cache[1] + size)

    def _total_size(self) -> int:
        # Listing the directory per append would cost a syscall per file; a short
        # cache is plenty since only this process grows its own segments.
        now = time.monotonic()
        if self._size_cache is None or now - self._size_cache[0] > 1.0:
            total = 0
            for path in self._segments():
                try:
                    total += path.stat().st_size
                except FileNotFoundError:
                    continue
            self._size_cache = (now, total)
        return self._size_cache[1]

    # -- reading ---------------------------------------------------------------------

    def _segments(self) -> list[Path]:
        if not self.directory.exists():
            return []
        return sorted(self.directory.glob("seg-*.jsonl"))

    def has_pending(self) -> bool:
        """Whether a segment holds events for this process to deliver: its own open or
        claimed segment, or one nobody holds (closed, or left by a process that died).
        A segment another live process is writing or replaying is that process's - so a
        flush here does not wait for another process's queue (its journal).

        Under the lock: a claim (claimed, then locked) or a release (unlocked, then
        unclaimed) seen half-way would look like another process's segment, and a flush
        would report events still in the spool as delivered."""
        with self._lock:
            for path in self._segments():
                if path in self.private:
                    continue
                try:
                    if path.stat().st_size == 0:
                        continue
                except FileNotFoundError:  # replayed and deleted meanwhile
                    continue
                if path == self._writer_path or path in self._claimed or _unheld(path):
                    return True
            return False

    def claim_oldest(self) -> Segment | None:
        """Lock and return the oldest segment nobody is writing or replaying."""
        with self._lock:
            for path in self._segments():
                if path == self._writer_path or path in self.private:
                    continue
                try:
                    handle = path.open("rb")
                except FileNotFoundError:
                    continue
                # Claimed and locked under the lock, so has_pending sees both or neither.
                self._claimed.add(path)
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    self._claimed.discard(path)
                    handle.close()
                    continue
                if not path.exists():  # deleted by another replayer before we locked it
                    self._claimed.discard(path)
                    handle.close()
                    continue
                return Segment(path, handle, self)
        return None

    def release(self, segment: Segment) -> None:
        """Unlock and unclaim ``segment`` in one step under the lock, as it was claimed:
        :meth:`has_pending` must never see it neither claimed nor unlocked."""
        with self._lock:
            segment.handle.close()
            self._claimed.discard(segment.path)

    def close(self) -> None:
        with self._lock:
            self._close_writer()

    def reset_after_fork(self) -> None:
        """In a forked child: let go of the parent's open segment.

        The inherited descriptor shares the parent's flock; closing the child's copy
        (its buffer is always flushed) keeps that lock from outliving the parent's use.
        """
        self._lock = threading.Lock()
        if self._writer is not None:
            self._writer.close()
        self._writer = self._writer_path = None
        self._dirty = False
        self._size_cache = None
        self.private = set()
        self._claimed = set()


def _unheld(path: Path) -> bool:
    """Whether no process holds ``path``'s lock (a shared probe, released at once)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True
