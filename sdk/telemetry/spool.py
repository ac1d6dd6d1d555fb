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

log = logging.getLogger("sdk.telemetry")

SEGMENT_MAX_BYTES = 8 * 1024 * 1024


@dataclass
class Segment:
    """A closed segment claimed for replay; ``release`` unlocks it, ``delete`` removes it."""

    path: Path
    handle: IO[bytes]

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
        self.handle.close()


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
                writer.write(b"".join(accepted))
                writer.flush()
                self._dirty = True
                self._size_cache = None
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

    def _open_writer(self) -> IO[bytes]:
        if self._writer is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._seq += 1
            name = f"seg-{time.time_ns():020d}-{os.getpid()}-{self._seq:06d}.jsonl"
            path = self.directory / name
            # Lock before the segment becomes visible under its name: another process
            # must never claim (and delete) a segment its writer has not locked yet.
            hidden = self.directory / f".{name}.new"
            handle = hidden.open("ab")
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            hidden.rename(path)
            self._writer, self._writer_path = handle, path
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

    def _total_size(self) -> int:
        # Listing the directory per append would cost a syscall per file; a short
        # cache is plenty since only this process grows its own segment.
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
        """Whether any segment (this process's open one included) holds events."""
        for path in self._segments():
            try:
                if path.stat().st_size > 0:
                    return True
            except FileNotFoundError:  # replayed and deleted meanwhile
                continue
        return False

    def claim_oldest(self) -> Segment | None:
        """Lock and return the oldest segment nobody is writing or replaying."""
        with self._lock:
            for path in self._segments():
                if path == self._writer_path:
                    continue
                try:
                    handle = path.open("rb")
                except FileNotFoundError:
                    continue
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    handle.close()
                    continue
                if not path.exists():  # deleted by another replayer before we locked it
                    handle.close()
                    continue
                return Segment(path, handle)
        return None

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
