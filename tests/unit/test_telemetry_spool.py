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
    # A flush asks has_pending (no lock) while the replay claims a segment. Between the
    # replay's flock and its bookkeeping the segment looked like another process's, so
    # the flush saw nothing pending and reported an undelivered spool as delivered.
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
    claimer = threading.Thread(target=lambda: claimed.append(spool.claim_oldest()), name="claimer")
    claimer.start()
    try:
        assert locked.wait(10)
        assert spool.has_pending()
    finally:
        go_on.set()
        claimer.join(10)
    segment = claimed[0]
    assert segment is not None
    assert spool.has_pending()  # claimed by us: still ours to deliver
    segment.release()
    assert spool.has_pending()
    assert spool.claim_oldest() is not None
