"""Long API outages: the client backs off (capped, never overflowing), logs once, does
not spin - and delivers everything when the API returns. Real sockets throughout; a
simulated timer lets a day-long outage pass in seconds."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from sdk.settings import reset_settings_cache
from sdk.telemetry import TelemetryClient, emit_step_completed, get_client, set_client
from sdk.telemetry.transport import HttpTransport, TransportResponse
from tests.support.scripted_http import scripted_api
from tests.support.servers import free_port

DAY = 24 * 3600.0


class SimulatedTimer:
    """A clock that moves only when the client waits: each wait that is not interrupted
    advances it by its whole timeout, after a real millisecond (so other threads run and
    an idle sender cannot spin)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits = 0
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        return self.now

    def wait(self, event: threading.Event, timeout: float) -> bool:
        with self._lock:
            self.waits += 1
        if event.wait(0.001):
            return True
        with self._lock:
            self.now += max(0.0, timeout)
        return event.is_set()


def step(client: TelemetryClient | None, n: int) -> None:
    emit_step_completed(node="n", step=n, status="ok", duration_ms=1.0, run_id="r", client=client)


def assert_quiet(caplog: pytest.LogCaptureFixture, *, most: int) -> None:
    records = [r for r in caplog.records if r.name.startswith("sdk.telemetry")]
    assert not [r for r in records if r.exc_info], "a traceback was logged"
    assert "OverflowError" not in caplog.text
    assert len(records) <= most, [r.getMessage() for r in records]


def test_the_default_client_against_a_closed_port_logs_no_traceback(
    wdp_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The reported case: TELEMETRY_ENDPOINT at a closed port, TELEMETRY_MAX_RETRIES=0,
    # three events, flush(timeout=...). It used to spin past 1,024 failures and log an
    # OverflowError traceback every half second.
    monkeypatch.setenv("TELEMETRY_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("TELEMETRY_MAX_RETRIES", "0")
    reset_settings_cache()
    set_client(None)
    try:
        with caplog.at_level(logging.DEBUG, logger="sdk.telemetry"):
            for n in range(3):
                step(None, n)
            client = get_client()
            assert client.flush(timeout=3) is False
            client.shutdown(timeout=0)
        assert_quiet(caplog, most=2)
        assert client.stats().spooled == 3
        assert client.stats().dropped == 0
    finally:
        set_client(None)


def test_flush_during_an_outage_waits_between_attempts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    attempts: list[float] = []

    class CountingTransport(HttpTransport):
        def send(self, body: bytes, *, timeout: float) -> TransportResponse:
            attempts.append(time.monotonic())
            return super().send(body, timeout=timeout)

    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens: connection refused
    client = TelemetryClient(
        endpoint=closed,
        transport=CountingTransport(closed),
        spool_dir=tmp_path / "spool",
        max_retries=0,
        retry_base_s=0.2,
        retry_max_s=10.0,
    )
    with caplog.at_level(logging.DEBUG, logger="sdk.telemetry"):
        for n in range(3):
            step(client, n)
        assert client.flush(timeout=3) is False
        client.shutdown(timeout=0)
    # Backoff 0.2-0.4 s, then 0.4-0.8 s, 0.8-1.6 s, ...: a handful of attempts in 3 s,
    # where the spinning loop made hundreds.
    assert 1 <= len(attempts) <= 8
    assert_quiet(caplog, most=2)
    assert client.stats().spooled == 3


def test_a_day_long_outage_is_probed_with_capped_backoff_then_fully_delivered(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    timer = SimulatedTimer()
    spool = tmp_path / "spool"
    options: dict[str, Any] = {
        "api_key": "k",
        "spool_dir": spool,
        "senders": 1,
        "max_retries": 0,
        "retry_base_s": 0.2,
        "retry_max_s": 60.0,
        "flush_interval_s": 1.0,
        "timer": timer,
    }
    with scripted_api() as api, caplog.at_level(logging.DEBUG, logger="sdk.telemetry"):
        api.down = True
        client = TelemetryClient(endpoint=api.url, **options)
        for n in range(3):
            step(client, n)
        assert client.flush(timeout=DAY / 2) is False  # flushing through half of it
        for n in range(3, 6):  # the host keeps emitting during the outage
            step(client, n)
        deadline = time.monotonic() + 120  # real seconds: a guard, not a measurement
        while timer.now < DAY and time.monotonic() < deadline:
            time.sleep(0.05)
        assert timer.now >= DAY
        probes, waits = api.refused, timer.waits
        assert client.stats().spooled == 6

        api.down = False  # the API returns; no flush: the sender's next probe finds it
        while client.stats().sent < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.flush(timeout=60)
        client.shutdown()

    assert sorted(e["payload"]["step"] for e in api.events) == list(range(6))
    assert client.stats().sent == 6
    assert client.stats().dropped == 0
    assert not list(spool.glob("seg-*.jsonl"))
    # Probes at least 30 s apart once the backoff reaches its 60 s cap (equal jitter),
    # plus the climb to it: about 2,000 for the day - not one per loop.
    assert 100 <= probes <= DAY / 30 + 20
    assert waits <= 3 * probes + 100  # the sender sleeps between probes, never spins
    # One warning when the outage began, one line when it ended: not one per probe.
    assert_quiet(caplog, most=2)
    messages = [r.getMessage() for r in caplog.records]
    assert sum("unavailable" in m for m in messages) == 1
    assert sum("available again" in m for m in messages) == 1
