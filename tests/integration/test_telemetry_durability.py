"""TELEMETRY_DURABILITY: what a killed process loses in memory mode, and that disk mode
loses nothing - real subprocesses, SIGKILL, the real ingest API and Postgres."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sdk.telemetry import TelemetryClient, emit_step_completed
from sdk.telemetry import journal as journal_module
from sdk.telemetry.builders import emit_deferred
from sdk.telemetry.events import StepCompleted
from tests.support.rows import rows_for_run
from tests.support.scripted_http import scripted_api
from tests.support.servers import TEST_API_KEYS, ApiServer, free_port

EVENTS = 20_000
QUEUE_SIZE = 10_000  # the default
BATCH_SIZE = 500  # the default

# Emits EVENTS events against an API that never answers, says so, then waits to be killed.
PRODUCER = textwrap.dedent(
    """
    import sys, time
    from sdk.telemetry import TelemetryClient, emit_step_completed
    endpoint, spool, durability, run_id = sys.argv[1:5]
    client = TelemetryClient(endpoint=endpoint, api_key="k", spool_dir=spool,
                             durability=durability, timeout_s=300)
    for n in range(int(sys.argv[5])):
        emit_step_completed(node="a", step=n, status="ok", duration_ms=1, run_id=run_id,
                            client=client)
    print("emitted", flush=True)
    time.sleep(300)
    """
)


@pytest.fixture
def hung_api() -> Iterator[str]:
    """A port that accepts connections and never answers: every batch hangs in flight."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def spooled_steps(spool: Path) -> list[int]:
    steps = []
    for segment in spool.glob("seg-*.jsonl"):
        for line in segment.read_bytes().splitlines():
            steps.append(json.loads(line)["payload"]["step"])
    return steps


def emit_then_kill(endpoint: str, spool: Path, durability: str, run_id: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    argv = [sys.executable, "-c", PRODUCER, endpoint, str(spool), durability, run_id]
    with subprocess.Popen(
        [*argv, str(EVENTS)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as producer:
        try:
            line = producer.stdout.readline() if producer.stdout else b""
            assert line.strip() == b"emitted", producer.stderr.read() if producer.stderr else ""
        finally:
            os.kill(producer.pid, signal.SIGKILL)  # right after the emit loop: no exit hook
            producer.wait(30)
    assert producer.returncode == -signal.SIGKILL


def deliver(api: ApiServer, spool: Path) -> TelemetryClient:
    """A new client on the same spool, with the API up."""
    client = TelemetryClient(endpoint=api.base_url, api_key=TEST_API_KEYS[0], spool_dir=spool)
    assert client.flush(timeout=120)
    client.shutdown()
    return client


def test_disk_mode_survives_kill_9_and_the_next_client_delivers_exactly_once(
    api_server: ApiServer, migrated_db_url: str, hung_api: str, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    run_id = f"kill9-disk-{uuid.uuid4().hex[:8]}"
    emit_then_kill(hung_api, spool, "disk", run_id)
    # Every event reached the spool directory before its emit returned.
    assert set(spooled_steps(spool)) == set(range(EVENTS))
    client = deliver(api_server, spool)
    assert rows_for_run(migrated_db_url, run_id) == (EVENTS, EVENTS)
    stats = client.stats()
    assert stats.replayed >= EVENTS
    assert stats.sent + stats.duplicates == stats.replayed
    assert (stats.dropped, stats.rejected) == (0, 0)
    assert not list(spool.glob("seg-*.jsonl"))


def test_memory_mode_loses_what_was_queued_when_killed(
    api_server: ApiServer, migrated_db_url: str, hung_api: str, tmp_path: Path
) -> None:
    # The documented loss: what overflowed the queue was spooled and survives; the queue
    # and the batches in flight (up to TELEMETRY_QUEUE_SIZE + a batch per sender) do not.
    spool = tmp_path / "spool"
    run_id = f"kill9-memory-{uuid.uuid4().hex[:8]}"
    emit_then_kill(hung_api, spool, "memory", run_id)
    survivors = len(set(spooled_steps(spool)))
    lost = EVENTS - survivors
    assert 0 < lost <= QUEUE_SIZE + 2 * BATCH_SIZE
    deliver(api_server, spool)
    assert rows_for_run(migrated_db_url, run_id) == (survivors, survivors)


# --- the journal within one process (scripted API) ----------------------------------------


def make_client(url: str, spool: Path, **options: Any) -> TelemetryClient:
    defaults: dict[str, Any] = {
        "endpoint": url,
        "api_key": "k",
        "spool_dir": spool,
        "flush_interval_s": 60,  # nothing is sent until the test flushes
        "batch_size": 1000,
        "retry_base_s": 0.01,
        "retry_max_s": 0.05,
    }
    return TelemetryClient(**(defaults | options))


def step(client: TelemetryClient, n: int) -> str:
    event = emit_step_completed(
        node="n", step=n, status="ok", duration_ms=1, run_id="r", client=client
    )
    return event.event_id


def test_memory_mode_writes_nothing_per_emit(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    with scripted_api() as api:
        client = make_client(api.url, spool, durability="memory")
        for n in range(100):
            step(client, n)
        assert not list(spool.glob("*"))  # queued in memory only
        assert client.flush(timeout=10)
        client.shutdown()
    assert len(api.events) == 100


def test_disk_mode_writes_each_event_before_emit_returns_and_clears_it_once_sent(
    tmp_path: Path,
) -> None:
    spool = tmp_path / "spool"
    with scripted_api() as api:
        client = make_client(api.url, spool, durability="disk")
        ids = [step(client, n) for n in range(100)]
        assert api.received == []  # nothing sent yet...
        written = [json.loads(line)["event_id"] for line in _lines(spool)]
        assert written == ids  # ...but every event is on disk, in emit order
        assert client.flush(timeout=10)
        assert _lines(spool) == []  # acknowledged: the journal copy is gone
        more = [step(client, n) for n in range(100, 110)]
        assert [json.loads(line)["event_id"] for line in _lines(spool)] == more
        client.shutdown()
    assert [e["payload"]["step"] for e in api.events] == list(range(110))
    assert not list(spool.glob("seg-*.jsonl"))


def test_disk_mode_during_an_outage_keeps_one_copy_and_delivers_it(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    with scripted_api() as api:
        api.down = True
        client = make_client(api.url, spool, durability="disk", max_retries=0)
        for n in range(50):
            step(client, n)
        assert client.flush(timeout=1) is False
        # The batch moved to the ordinary spool; its journal copy was let go.
        assert sorted(json.loads(line)["payload"]["step"] for line in _lines(spool)) == list(
            range(50)
        )
        api.down = False
        assert client.flush(timeout=10)
        client.shutdown()
    assert sorted(e["payload"]["step"] for e in api.events) == list(range(50))
    assert not list(spool.glob("seg-*.jsonl"))


def test_disk_mode_validates_deferred_events_at_emit(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = tmp_path / "spool"
    good = {"node": "n", "step": 1, "status": "ok", "duration_ms": 1.0}
    bad = {"node": "n", "step": -1, "status": "ok", "duration_ms": 1.0}
    with scripted_api() as api:
        client = make_client(api.url, spool, durability="disk")
        emit_deferred(StepCompleted, good, run_id="r1", client=client)
        emit_deferred(StepCompleted, bad, run_id="r2", client=client)  # never raises
        assert [json.loads(line)["run_id"] for line in _lines(spool)] == ["r1"]
        assert client.stats().rejected == 1
        assert client.flush(timeout=10)
        client.shutdown()
    assert [e["run_id"] for e in api.events] == ["r1"]
    assert "workflow.step_completed is invalid, not sent" in caplog.text


def test_disk_mode_rotates_segments_and_deletes_each_once_acknowledged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal_module, "SEGMENT_MAX_BYTES", 2000)  # a few events a segment
    spool = tmp_path / "spool"
    with scripted_api() as api:
        client = make_client(api.url, spool, durability="disk")
        for n in range(50):
            step(client, n)
        assert len(list(spool.glob("seg-*.jsonl"))) >= 5
        assert len(_lines(spool)) == 50
        assert client.flush(timeout=10)
        assert _lines(spool) == []
        assert len(list(spool.glob("seg-*.jsonl"))) <= 1  # the current one, emptied
        client.shutdown()
    assert len(api.events) == 50
    assert not list(spool.glob("seg-*.jsonl"))


def test_a_full_spool_in_disk_mode_keeps_events_in_memory_and_says_so_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = tmp_path / "spool"
    with scripted_api() as api, caplog.at_level(logging.WARNING, logger="sdk.telemetry"):
        client = make_client(api.url, spool, durability="disk", spool_max_bytes=2000)
        for n in range(30):
            step(client, n)  # never raises, though most do not fit in the journal
        assert 0 < len(_lines(spool)) < 30
        assert client.flush(timeout=10)
        client.shutdown()
    assert sorted(e["payload"]["step"] for e in api.events) == list(range(30))
    assert client.stats().dropped == 0
    full = [r for r in caplog.records if "journal not written" in r.getMessage()]
    assert len(full) == 1
    assert "spool is full" in full[0].getMessage()


def test_another_live_clients_journal_is_neither_replayed_nor_waited_for(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    with scripted_api() as api:
        writer = make_client(api.url, spool, durability="disk")
        for n in range(10):
            step(writer, n)  # queued and journaled; its sender waits for the interval
        other = make_client(api.url, spool)
        assert other.flush(timeout=5)  # nothing of its own, and nothing orphaned
        other.shutdown()
        assert api.received == []  # it left the live writer's journal alone
        assert writer.flush(timeout=10)
        writer.shutdown()
    assert sorted(e["payload"]["step"] for e in api.events) == list(range(10))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_in_disk_mode_leaves_the_parents_journal_alone(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    with scripted_api() as api:
        client = make_client(api.url, spool, durability="disk")
        step(client, 1)  # journaled and queued in the parent when it forks
        pid = os.fork()
        if pid == 0:  # child
            code = 1
            try:
                step(client, 2)
                code = 0 if client.flush(timeout=10) else 3
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert [json.loads(line)["payload"]["step"] for line in _lines(spool)] == [1]
        assert client.flush(timeout=10)
        client.shutdown()
    assert sorted(e["payload"]["step"] for e in api.events) == [1, 2]
    # The child left (os._exit, no exit hook) an empty journal segment: nothing to replay.
    assert _lines(spool) == []


def test_the_setting_selects_disk_mode_for_the_default_client(
    wdp_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from pydantic import ValidationError

    from sdk.settings import WdpSettings, reset_settings_cache
    from sdk.telemetry import get_client, set_client

    monkeypatch.setenv("TELEMETRY_DURABILITY", "fsync")
    with pytest.raises(ValidationError, match="telemetry_durability"):
        WdpSettings()
    spool = tmp_path / "default-spool"
    monkeypatch.setenv("TELEMETRY_DURABILITY", "disk")
    monkeypatch.setenv("TELEMETRY_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("TELEMETRY_SPOOL_DIR", str(spool))
    monkeypatch.setenv("TELEMETRY_FLUSH_INTERVAL_S", "60")
    reset_settings_cache()
    set_client(None)
    try:
        emit_step_completed(node="n", step=7, status="ok", duration_ms=1, run_id="r")
        client = get_client()
        assert client.durability == "disk"
        assert [json.loads(line)["payload"]["step"] for line in _lines(spool)] == [7]
        client.shutdown(timeout=0)
    finally:
        set_client(None)


def test_disk_mode_needs_a_spool_and_a_known_mode(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs a spool directory"):
        TelemetryClient(endpoint="http://127.0.0.1:9", durability="disk")
    with pytest.raises(ValueError, match="memory or disk"):
        TelemetryClient(endpoint="http://127.0.0.1:9", spool_dir=tmp_path, durability="ram")  # type: ignore[arg-type]


def _lines(spool: Path) -> list[bytes]:
    return [line for s in sorted(spool.glob("seg-*.jsonl")) for line in s.read_bytes().splitlines()]


def test_a_nearly_full_spool_in_disk_mode_drops_nothing_already_journaled(tmp_path: Path) -> None:
    """The journal's copies count against the spool cap, so during an outage the copy of
    a batch into the spool may not fit: what is journaled must then stay journaled (and
    reach the API through the next client), not be let go as "dropped"."""
    sizing = tmp_path / "sizing"
    with scripted_api() as api:
        api.down = True
        probe = make_client(api.url, sizing, durability="disk", max_retries=0)
        for n in range(20):
            step(probe, n)
        journal_bytes = sum(len(line) + 1 for line in _lines(sizing))
        probe.shutdown(timeout=0)
    spool = tmp_path / "spool"
    with scripted_api() as api:
        api.down = True
        # Room for the journal and half a copy of it.
        client = make_client(
            api.url, spool, durability="disk", max_retries=0, spool_max_bytes=journal_bytes * 3 // 2
        )
        for n in range(20):
            step(client, n)
        assert client.flush(timeout=1) is False
        assert client.stats().dropped == 0
        client.shutdown(timeout=1)
        assert sorted(set(json.loads(line)["payload"]["step"] for line in _lines(spool))) == list(
            range(20)
        )
        api.down = False
        after = make_client(api.url, spool, durability="memory")
        assert after.flush(timeout=10)
        after.shutdown()
    assert sorted({e["payload"]["step"] for e in api.events}) == list(range(20))
    ids = [e["event_id"] for e in api.events]
    assert len(set(ids)) == 20
