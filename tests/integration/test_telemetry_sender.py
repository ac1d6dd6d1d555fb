"""The synchronous sender (the batch worker's exporter, and sync mode's whole path) and
sync mode's defined behaviour after shutdown, over real loopback HTTP."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import pytest

from sdk.backoff import SYSTEM_TIMER
from sdk.telemetry import TelemetryClient, emit_step_completed
from sdk.telemetry.custody import Custody
from sdk.telemetry.delivery import Counters, Poster
from sdk.telemetry.events import EventBase, StepCompleted
from sdk.telemetry.outage import Outage
from sdk.telemetry.sender import Sender, SendResult
from sdk.telemetry.spool import Spool
from sdk.telemetry.state import ClientState
from sdk.telemetry.transport import HttpTransport
from sdk.telemetry.values import new_ulid
from tests.support.scripted_http import Reply, scripted_api
from tests.support.servers import free_port


def events(n: int) -> list[EventBase]:
    return [
        StepCompleted.model_validate(
            {
                "event_id": new_ulid(),
                "ts": "2026-01-01T00:00:00Z",
                "run_id": "r",
                "payload": {"node": "n", "step": i, "status": "ok", "duration_ms": 1.0},
            }
        )
        for i in range(n)
    ]


def sender_for(url: str, spool: Spool | None) -> tuple[Sender, Counters]:
    counters = Counters()
    transport = HttpTransport(url, api_key="k")
    poster = Poster(
        transport=lambda: transport,
        counters=counters,
        stop=threading.Event(),
        timeout_s=2.0,
        retry_base_s=0.01,
        retry_max_s=0.02,
    )
    custody = Custody(counters, spool, None, on_sender_thread=lambda: False)
    outage = Outage(SYSTEM_TIMER, base_s=0.01, cap_s=0.02)
    return Sender(poster, custody, outage, retries=1), counters


def test_the_sender_returns_each_events_result() -> None:
    body: dict[str, Any] = {
        "results": [
            {"index": 0, "event_id": "a", "status": "created"},
            {"index": 1, "event_id": "b", "status": "duplicate"},
            {"index": 2, "event_id": "c", "status": "conflict", "reason": "differs in: ts"},
        ]
    }
    with scripted_api([Reply(207, body=body), Reply(413)]) as api:
        sender, counters = sender_for(api.url, None)
        assert sender.send(events(3)) == SendResult(True, ("created", "duplicate", "conflict"))
        # A 413 splits the batch; the halves' results come back in order.
        assert sender.send(events(4)) == SendResult(True, ("created",) * 4)
    stats = counters.stats(queued=0)
    assert (stats.sent, stats.duplicates, stats.rejected) == (5, 1, 1)


def test_the_sender_spools_what_the_api_cannot_take_and_never_raises(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    spool = Spool(tmp_path, max_bytes=900)  # room for a few events, not for ten
    sender, counters = sender_for(closed, spool)
    result = sender.send(events(10))
    assert result.delivered is False
    stored = result.statuses.count("spooled")
    assert 0 < stored < 10
    assert result.statuses == ("spooled",) * stored + ("dropped",) * (10 - stored)
    stats = counters.stats(queued=0)
    assert (stats.spooled, stats.dropped, stats.retried) == (stored, 10 - stored, 1)
    spool.close()


def test_the_sender_drops_a_batch_refused_for_good(caplog: pytest.LogCaptureFixture) -> None:
    with scripted_api([Reply(400)]) as api, caplog.at_level(logging.ERROR, "sdk.telemetry"):
        sender, counters = sender_for(api.url, None)
        assert sender.send(events(2)) == SendResult(True, ("dropped", "dropped"))
    assert counters.stats(queued=0).dropped == 2
    assert "HTTP 400" in caplog.text


def test_sync_mode_still_sends_an_event_emitted_after_shutdown(tmp_path: Path) -> None:
    with scripted_api() as api:
        client = TelemetryClient(endpoint=api.url, api_key="k", spool_dir=tmp_path, sync=True)
        assert client.state is ClientState.NEW
        emit_step_completed(node="n", step=0, status="ok", duration_ms=1, run_id="r", client=client)
        assert client.state is ClientState.RUNNING
        assert client.shutdown() is True
        assert client.state is ClientState.CLOSED
        emit_step_completed(node="n", step=1, status="ok", duration_ms=1, run_id="r", client=client)
        assert [e["payload"]["step"] for e in api.events] == [0, 1]
    assert client.stats().sent == 2
    assert client.flush(timeout=5) is True  # closed: reports (nothing spooled) at once
