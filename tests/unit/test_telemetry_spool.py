"""The spool's view of what is pending while its own replay claims a segment (real
files and locks; the lock call is only slowed down to hold the race open)."""

from __future__ import annotations

import fcntl
import threading
from pathlib import Path
from typing import Any

import pytest

from sdk.telemetry.spool import Segment, Spool


def test_a_segment_being_claimed_still_counts_as_pending(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A flush asks has_pending while the replay claims a segment. Between the replay's
    # flock and its bookkeeping the segment looked like another process's, so the flush
    # saw nothing pending and reported an undelivered spool as delivered. has_pending
    # now waits for the claim to finish instead of looking half-way through it.
    spool = Spool(tmp_path, max_bytes=10**6)
    spool.append([b'{"event_id": "a"}'], sync=False)
    spool.seal()
    locked, go_on = threading.Event(), threading.Event()
    real_flock = fcntl.flock

    def slow_flock(fd: Any, operation: int) -> None:
        real_flock(fd, operation)
        if threading.current_thread().name == "claimer" and operation & fcntl.LOCK_EX:
            locked.set()
            go_on.wait(10)

    monkeypatch.setattr(fcntl, "flock", slow_flock)
    claimed: list[Segment | None] = []
    answers: list[bool] = []
    claimer = threading.Thread(target=lambda: claimed.append(spool.claim_oldest()), name="claimer")
    asker = threading.Thread(target=lambda: answers.append(spool.has_pending()))
    claimer.start()
    try:
        assert locked.wait(10)
        asker.start()
        asker.join(0.3)
        assert answers == []  # waiting for the claim, not answering from half of it
    finally:
        go_on.set()
        claimer.join(10)
        asker.join(10)
    assert answers == [True]
    segment = claimed[0]
    assert segment is not None
    assert spool.has_pending()  # claimed by us: still ours to deliver
    segment.release()
    assert spool.has_pending()
    assert spool.claim_oldest() is not None


def test_pending_never_reads_false_while_our_replay_claims_and_releases(tmp_path: Path) -> None:
    # The race CI hit in the day-long outage test: a replay that fails releases its
    # segment (unlock, then unclaim); a flush asking in between saw a locked segment
    # that was not marked ours, took it for another process's, and returned True.
    spool = Spool(tmp_path, max_bytes=10**6)
    spool.append([b'{"event_id": "a"}'], sync=False)
    spool.seal()
    stop = threading.Event()
    falses: list[int] = []

    def ask() -> None:
        while not stop.is_set():
            if not spool.has_pending():
                falses.append(1)

    asker = threading.Thread(target=ask)
    asker.start()
    try:
        for _ in range(3000):
            segment = spool.claim_oldest()
            assert segment is not None
            segment.release()
    finally:
        stop.set()
        asker.join(10)
    assert falses == []
