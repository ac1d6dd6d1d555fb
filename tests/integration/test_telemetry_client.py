"""TelemetryClient over real loopback HTTP against a scripted server: batching, retries,
the spool, auth failures, fork, and the builders' validation at the call site."""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from sdk.telemetry import (
    TelemetryClient,
    correlation,
    emit_feedback_received,
    emit_item_state_changed,
    emit_run_started,
    emit_step_completed,
)
from sdk.telemetry.builders import emit_deferred
from sdk.telemetry.events import StepCompleted
from sdk.telemetry.transport import HttpTransport, TransportResponse
from sdk.telemetry.values import ulid_datetime
from tests.support.scripted_http import Reply, ScriptedApi, scripted_api


def make_client(api: ScriptedApi | None, spool: Path | None, **options: Any) -> TelemetryClient:
    defaults: dict[str, Any] = {
        "endpoint": api.url if api else "http://127.0.0.1:9",
        "api_key": "k",
        "spool_dir": spool,
        "flush_interval_s": 0.05,
        "retry_base_s": 0.01,
        "retry_max_s": 0.05,
        "max_retries": 2,
        "timeout_s": 2.0,
    }
    return TelemetryClient(**(defaults | options))


def step(client: TelemetryClient, n: int = 0, **ids: Any) -> Any:
    return emit_step_completed(
        node="plan", step=n, status="ok", duration_ms=1.5, client=client, **({"run_id": "r"} | ids)
    )


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    return tmp_path / "spool"


# --- the builders ---------------------------------------------------------------------


def test_invalid_input_raises_at_the_call_site_and_queues_nothing(spool: Path) -> None:
    client = make_client(None, spool)
    with pytest.raises(ValidationError, match="duration_ms"):
        emit_step_completed(
            node="n", step=1, status="ok", duration_ms=-1, run_id="r", client=client
        )
    with pytest.raises(ValidationError, match="requires item_id"):
        emit_item_state_changed(to_state="done", client=client)
    with pytest.raises(ValidationError, match="NUL"):
        emit_run_started(run_id="r", metadata={"k": "a\x00"}, client=client)
    with pytest.raises(ValidationError, match=r"payload\.node: contains a NUL"):
        emit_step_completed(
            node="a\x00", step=1, status="ok", duration_ms=1, run_id="r", client=client
        )
    with pytest.raises(ValidationError, match="surrogate"):
        emit_step_completed(
            node="n", step=1, status="ok", duration_ms=1, run_id="\udc80", client=client
        )
    with pytest.raises(ValidationError, match="64 bits"):
        emit_step_completed(
            node="n", step=1, status="ok", duration_ms=1, tokens_in=2**64, run_id="r", client=client
        )
    with pytest.raises(ValidationError, match="at least one of"):
        emit_feedback_received(target_type="run", target_id="r", client=client)
    assert client.stats().queued == 0
    client.shutdown(timeout=0)


def test_ids_come_from_the_correlation_unless_given(spool: Path) -> None:
    client = make_client(None, spool, disabled=True)
    with correlation(run_id="r1", item_id="i1", workflow_name="wf", agent_role="planner"):
        event = step(client, run_id=None)
        explicit = step(client, item_id="i2")
    assert (event.run_id, event.item_id, event.workflow_name, event.agent_role) == (
        "r1",
        "i1",
        "wf",
        "planner",
    )
    assert (explicit.run_id, explicit.item_id) == ("r", "i2")


def test_the_clock_is_injectable_and_dates_the_event_id(spool: Path) -> None:
    fixed = datetime(2026, 3, 4, 5, 6, 7, 8000, tzinfo=UTC)
    client = make_client(None, spool, disabled=True, clock=lambda: fixed)
    event = step(client)
    assert event.ts == fixed
    assert ulid_datetime(event.event_id) == fixed


# --- delivery ---------------------------------------------------------------------------


def test_events_are_sent_in_gzip_batches_off_the_callers_thread(spool: Path) -> None:
    senders: set[str] = set()

    class RecordingTransport(HttpTransport):
        def send(self, body: bytes, *, timeout: float) -> TransportResponse:
            senders.add(threading.current_thread().name)
            return super().send(body, timeout=timeout)

    with scripted_api() as api:
        client = make_client(
            api,
            spool,
            batch_size=500,
            flush_interval_s=30,
            transport=RecordingTransport(api.url, api_key="k"),
        )
        for n in range(1200):
            step(client, n)
        assert client.flush(timeout=10)
        client.shutdown()
    assert len(senders) == 1
    assert senders.pop().startswith("wdp-telemetry")
    assert [len(b) for b in api.received] == [500, 500, 200]  # one sender: in order
    assert [e["payload"]["step"] for e in api.events] == list(range(1200))
    assert client.stats().sent == 1200


def test_two_senders_deliver_everything_exactly_once(spool: Path) -> None:
    with scripted_api() as api:
        client = make_client(api, spool, batch_size=50, senders=2)
        for n in range(2000):
            step(client, n)
        assert client.flush(timeout=20)
        client.shutdown()
    assert sorted(e["payload"]["step"] for e in api.events) == list(range(2000))
    assert client.stats().sent == 2000


def test_retryable_statuses_are_retried_honouring_retry_after(spool: Path) -> None:
    script = [Reply(503, {"Retry-After": "0"}), Reply(429, {"Retry-After": "1"}), Reply(500)]
    with scripted_api(script) as api:
        client = make_client(api, spool, max_retries=3)
        started = time.monotonic()
        step(client)
        assert client.flush(timeout=10)
        elapsed = time.monotonic() - started
        client.shutdown()
    assert api.statuses == [503, 429, 500, 200]
    assert elapsed >= 1.0  # the Retry-After: 1 was waited out
    stats = client.stats()
    assert (stats.sent, stats.retried, stats.spooled) == (1, 3, 0)


def test_past_the_retry_budget_events_are_spooled_then_replayed_in_order(spool: Path) -> None:
    script = [Reply(503)] * 3 + [Reply(502)] * 3
    with scripted_api(script) as api:
        # One sender: with two, concurrent batches may reach the spool in either order.
        client = make_client(api, spool, max_retries=2, batch_size=10, senders=1)
        for n in range(25):
            step(client, n)
        assert client.flush(timeout=15)
        client.shutdown()
    stats = client.stats()
    assert stats.spooled > 0
    assert stats.sent == 25
    assert sorted(e["payload"]["step"] for e in api.events) == list(range(25))
    # Replay keeps the order in which events were spooled.
    assert [e["payload"]["step"] for e in api.events] == list(range(25))
    assert not list(spool.glob("seg-*"))


def test_a_401_is_logged_once_per_batch_and_the_events_are_kept(
    spool: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with scripted_api([Reply(401)]) as api:
        client = make_client(api, spool, batch_size=100, max_retries=0)
        with caplog.at_level(logging.ERROR, logger="sdk.telemetry"):
            for n in range(100):
                step(client, n)
            assert client.flush(timeout=10)
        client.shutdown()
    auth_errors = [r for r in caplog.records if "answered 401" in r.getMessage()]
    assert len(auth_errors) == 1
    assert "100 events" in auth_errors[0].getMessage()
    assert client.stats().sent == 100  # delivered from the spool once the key worked


def test_per_event_results_count_duplicates_and_rejections(
    spool: Path, caplog: pytest.LogCaptureFixture
) -> None:
    results = {
        "counts": {},
        "results": [
            {"index": 0, "event_id": "a", "status": "created"},
            {"index": 1, "event_id": "b", "status": "duplicate"},
            {"index": 2, "event_id": "c", "status": "conflict", "reason": "differs in: ts"},
        ],
    }
    with scripted_api([Reply(207, body=results)]) as api:
        client = make_client(api, spool)
        with caplog.at_level(logging.WARNING, logger="sdk.telemetry"):
            for n in range(3):
                step(client, n)
            assert client.flush(timeout=10)
        client.shutdown()
    stats = client.stats()
    assert (stats.sent, stats.duplicates, stats.rejected) == (1, 1, 1)
    assert any("differs in: ts" in r.getMessage() for r in caplog.records)


def test_a_413_splits_the_batch(spool: Path) -> None:
    with scripted_api([Reply(413)]) as api:
        client = make_client(api, spool, batch_size=8)
        for n in range(8):
            step(client, n)
        assert client.flush(timeout=10)
        client.shutdown()
    assert [len(b) for b in api.received] == [8, 4, 4]
    assert client.stats().sent == 8


def test_a_full_queue_spills_to_the_spool_without_blocking(spool: Path) -> None:
    client = make_client(None, spool, queue_size=10, flush_interval_s=60)
    for n in range(50):
        step(client, n)
    stats = client.stats()
    assert stats.spooled >= 40
    assert stats.dropped == 0
    client.shutdown(timeout=0)
    assert client.stats().spooled == 50


def test_a_full_spool_drops_and_counts(spool: Path, caplog: pytest.LogCaptureFixture) -> None:
    client = make_client(None, spool, queue_size=1, spool_max_bytes=2000, flush_interval_s=60)
    with caplog.at_level(logging.ERROR, logger="sdk.telemetry"):
        for n in range(30):
            step(client, n)
        client.shutdown(timeout=0)
    stats = client.stats()
    assert stats.dropped > 0
    assert stats.spooled + stats.dropped == 30
    assert sum(p.stat().st_size for p in spool.glob("seg-*")) <= 2000
    assert any("spool is full" in r.getMessage() for r in caplog.records)


def test_shutdown_spools_what_it_could_not_send_and_the_next_client_delivers_it(
    spool: Path,
) -> None:
    first = make_client(None, spool)
    for n in range(20):
        step(first, n)
    assert first.shutdown(timeout=0.5) is False
    assert first.stats().spooled == 20
    with scripted_api() as api:
        second = make_client(api, spool)
        assert second.flush(timeout=10)
        second.shutdown()
    assert sorted(e["payload"]["step"] for e in api.events) == list(range(20))
    assert second.stats().replayed == 20


def test_sync_mode_sends_on_the_callers_thread(spool: Path) -> None:
    with scripted_api() as api:
        client = make_client(api, spool, sync=True)
        step(client)
        assert len(api.received) == 1  # already sent when emit returned
        client.shutdown()
    assert client.stats().sent == 1


def test_disabled_client_sends_nothing(spool: Path) -> None:
    with scripted_api() as api:
        client = make_client(api, spool, disabled=True)
        step(client)
        assert client.flush(timeout=1)
        client.shutdown()
    assert api.received == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_emits_and_flushes(spool: Path) -> None:
    with scripted_api() as api:
        client = make_client(api, spool)
        step(client, 1)  # the parent's worker thread is running when we fork
        assert client.flush(timeout=10)
        pid = os.fork()
        if pid == 0:  # child
            code = 1
            try:
                step(client, 2)
                ok = client.flush(timeout=10)
                code = 0 if ok and client.stats().sent == 1 else 3
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        client.shutdown()
    assert os.waitstatus_to_exitcode(status) == 0
    assert sorted(e["payload"]["step"] for e in api.events) == [1, 2]


def test_a_torn_last_line_in_the_spool_is_skipped_and_the_rest_delivered(spool: Path) -> None:
    first = make_client(None, spool)
    for n in range(3):
        step(first, n)
    first.shutdown(timeout=0)
    (segment,) = spool.glob("seg-*.jsonl")
    with segment.open("ab") as handle:
        handle.write(b'{"event_id": "01M8GD99XBCM6SQJ')  # a crash mid-append
    with scripted_api() as api:
        second = make_client(api, spool)
        assert second.flush(timeout=10)
        second.shutdown()
    assert sorted(e["payload"]["step"] for e in api.events) == [0, 1, 2]


def test_shutdown_keeps_to_its_timeout_and_spools_a_batch_stuck_in_flight(spool: Path) -> None:
    with scripted_api([Reply(200, delay_s=5)]) as api:
        client = make_client(api, spool, timeout_s=10, senders=1)
        for n in range(5):
            step(client, n)
        client._mode.worker.wake()  # type: ignore[attr-defined]
        time.sleep(0.3)  # the batch is now in flight, waiting for the hung server
        started = time.monotonic()
        assert client.shutdown(timeout=1) is False
        assert time.monotonic() - started < 2.5
        assert client.stats().spooled == 5
        assert client.flush(timeout=5) is False  # closed: answers at once, never hangs


def test_an_event_about_the_past_gets_an_id_from_now(spool: Path) -> None:
    client = make_client(None, spool, disabled=True)
    long_ago = datetime(2020, 1, 1, tzinfo=UTC)
    event = step(client)
    old = emit_run_started(run_id="r", ts=long_ago, client=client)
    assert old.ts == long_ago
    assert ulid_datetime(old.event_id) >= ulid_datetime(event.event_id)


def test_a_malformed_endpoint_is_refused_at_construction(spool: Path) -> None:
    with pytest.raises(ValueError, match="TELEMETRY_ENDPOINT must be an http"):
        TelemetryClient(endpoint="127.0.0.1:8000", spool_dir=spool)


def test_the_default_client_with_a_bad_endpoint_spools_instead_of_raising(
    wdp_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from sdk.settings import reset_settings_cache
    from sdk.telemetry import get_client, set_client

    monkeypatch.setenv("TELEMETRY_ENDPOINT", "127.0.0.1:8000")
    monkeypatch.setenv("TELEMETRY_MAX_RETRIES", "0")
    reset_settings_cache()
    set_client(None)
    try:
        with caplog.at_level(logging.ERROR, logger="sdk.telemetry"):
            event = emit_step_completed(node="n", step=1, status="ok", duration_ms=1, run_id="r")
            client = get_client()
            client.shutdown(timeout=1)
        assert event.run_id == "r"
        assert client.stats().spooled == 1
        assert any("TELEMETRY_ENDPOINT is invalid" in r.getMessage() for r in caplog.records)
    finally:
        set_client(None)


# --- deferred events (instrumentation's hot path) ---------------------------------------


def test_deferred_events_are_validated_on_the_sender_thread(
    spool: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = {"node": "n", "step": 1, "status": "ok", "duration_ms": 1.0}
    bad = {"node": "n", "step": -1, "status": "ok", "duration_ms": 1.0}  # step < 0
    with scripted_api() as api:
        client = make_client(api, spool)
        with correlation(agent_role="captured-here"):
            emit_deferred(StepCompleted, good, run_id="r1", client=client)
        emit_deferred(StepCompleted, bad, run_id="r2", client=client)  # does not raise
        with caplog.at_level(logging.WARNING, logger="sdk.telemetry"):
            assert client.flush(timeout=10)
        client.shutdown()
    assert [(e["run_id"], e["agent_role"]) for e in api.events] == [("r1", "captured-here")]
    stats = client.stats()
    assert (stats.sent, stats.rejected) == (1, 1)
    assert "workflow.step_completed is invalid, not sent" in caplog.text


def test_deferred_events_left_at_shutdown_are_spooled_valid(spool: Path) -> None:
    client = make_client(None, spool, endpoint="http://127.0.0.1:9", flush_interval_s=60)
    for n in range(3):
        payload = {"node": "n", "step": n, "status": "ok", "duration_ms": 1.0}
        emit_deferred(StepCompleted, payload, run_id="r", client=client)
    client.shutdown(timeout=0.5)
    assert client.stats().spooled == 3
