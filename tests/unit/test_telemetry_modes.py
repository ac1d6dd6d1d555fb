"""The factory picks the client's mode once, from its arguments or the settings; each
mode's defined behaviour after shutdown; sender threads known by identity."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest

from sdk.settings import reset_settings_cache
from sdk.telemetry import TelemetryClient, emit_step_completed
from sdk.telemetry import client as client_module
from sdk.telemetry.modes import (
    BatchMode,
    ClientConfig,
    DisabledMode,
    JournaledBatchMode,
    Mode,
    SyncMode,
)
from sdk.telemetry.state import ClientState

CLOSED_PORT = "http://127.0.0.1:9"

CASES: list[tuple[dict[str, Any], str, type[Mode]]] = [
    ({}, "batch", BatchMode),
    ({"durability": "disk"}, "batch", JournaledBatchMode),
    ({"sync": True}, "sync", SyncMode),
    ({"sync": True, "durability": "disk"}, "sync", SyncMode),  # no queue to journal
    ({"disabled": True}, "disabled", DisabledMode),
    ({"disabled": True, "sync": True, "durability": "disk"}, "disabled", DisabledMode),
]


def step(client: TelemetryClient, n: int = 0) -> None:
    emit_step_completed(node="n", step=n, status="ok", duration_ms=1.0, run_id="r", client=client)


@pytest.mark.parametrize(("options", "name", "kind"), CASES)
def test_the_mode_is_chosen_once_when_the_client_is_built(
    options: dict[str, Any],
    name: str,
    kind: type[Mode],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chosen: list[ClientConfig] = []
    real = client_module.create_mode

    def counting(config: ClientConfig, *, disabled: bool, sync: bool) -> Mode:
        chosen.append(config)
        return real(config, disabled=disabled, sync=sync)

    monkeypatch.setattr(client_module, "create_mode", counting)
    client = TelemetryClient(
        endpoint=CLOSED_PORT, spool_dir=tmp_path, max_retries=0, retry_base_s=0.01, **options
    )
    assert type(client._mode) is kind
    assert client.mode == name
    assert client.disabled is (name == "disabled")
    for n in range(3):
        step(client, n)
        client.flush(timeout=0.1)
        client.stats()
    client.shutdown(timeout=0.2)
    step(client, 3)
    client.flush(timeout=0)
    assert len(chosen) == 1
    assert type(client._mode) is kind


def test_the_mode_cannot_be_switched_afterwards(tmp_path: Path) -> None:
    client = TelemetryClient(endpoint=CLOSED_PORT, spool_dir=tmp_path)
    with pytest.raises(AttributeError):
        client.disabled = True  # type: ignore[misc]
    client.shutdown(timeout=0)


@pytest.mark.parametrize(("options", "name", "kind"), CASES)
def test_from_settings_chooses_the_same_modes(
    options: dict[str, Any],
    name: str,
    kind: type[Mode],
    wdp_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TELEMETRY_ENDPOINT", CLOSED_PORT)
    for option, value in options.items():
        monkeypatch.setenv(f"TELEMETRY_{option.upper()}", str(value).lower())
    reset_settings_cache()
    client = TelemetryClient.from_settings()
    try:
        assert (client.mode, type(client._mode)) == (name, kind)
    finally:
        client.shutdown(timeout=0)


def test_batch_mode_spools_an_event_emitted_after_shutdown(tmp_path: Path) -> None:
    client = TelemetryClient(endpoint=CLOSED_PORT, spool_dir=tmp_path, flush_interval_s=60)
    assert client.state is ClientState.NEW
    step(client, 0)
    assert client.state is ClientState.RUNNING
    client.shutdown(timeout=0)
    assert client.state is ClientState.CLOSED
    step(client, 1)
    stats = client.stats()
    assert (stats.spooled, stats.queued, stats.dropped) == (2, 0, 0)
    assert client.flush(timeout=10) is False  # closed: reports the spool at once


def test_disabled_mode_drops_an_event_emitted_after_shutdown() -> None:
    client = TelemetryClient(disabled=True)
    client.shutdown()
    assert client.state is ClientState.CLOSED
    step(client)
    assert client.stats().queued == client.stats().spooled == 0
    assert client.flush() is True


def test_a_host_thread_named_like_a_sender_does_not_wait_for_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Queue overflow is spooled on the caller's thread, which must not wait on the
    # disk; only the client's own senders fsync. They used to be recognised by name.
    synced_on: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced_on.append(threading.get_ident())
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    client = TelemetryClient(
        endpoint=CLOSED_PORT, spool_dir=tmp_path, queue_size=1, flush_interval_s=60
    )
    host: list[int] = []

    def emit_from_host() -> None:
        host.append(threading.get_ident())
        for n in range(5):
            step(client, n)

    thread = threading.Thread(target=emit_from_host, name="wdp-telemetry-0")
    thread.start()
    thread.join()
    try:
        assert client.stats().spooled == 4  # the queue holds one
        assert host[0] not in synced_on
    finally:
        client.shutdown(timeout=0)
