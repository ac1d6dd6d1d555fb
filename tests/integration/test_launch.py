"""sdk.cli.launch: the one launcher of ``wdp api`` (tests, benchmarks, examples use it)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
import pytest

from sdk.cli.launch import ApiServer, ApiStartError, free_port, run_api


def _refused(base_url: str) -> bool:
    host, port = base_url.removeprefix("http://").split(":")
    with socket.socket() as sock:
        return sock.connect_ex((host, int(port))) != 0


def _group_alive(server: ApiServer) -> list[str]:
    """States of the processes still in the server's process group (zombies excepted:
    SIGKILLed workers wait there for their new parent to reap them)."""
    states = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == server.process.pid and fields[0] != "Z":  # pgrp, state
            states.append(f"{stat.parent.name}:{fields[0]}")
    return states


def test_it_starts_waits_until_ready_and_stops_with_its_workers(
    migrated_db_url: str, tmp_path: Path
) -> None:
    port = free_port()
    with run_api(
        migrated_db_url, tmp_path / "api.log", api_keys=["k1", "k2"], workers=2, port=port
    ) as server:
        assert server.base_url == f"http://127.0.0.1:{port}"
        assert httpx.get(f"{server.base_url}/readyz").status_code == 200  # already ready
        response = httpx.post(f"{server.base_url}/telemetry/events", json={}, headers=server.auth)
        assert response.status_code == 422  # the key was accepted: the body is what is wrong
        assert server.auth == {"Authorization": "Bearer k1"}
    assert server.process.returncode is not None
    assert _refused(server.base_url)
    # No worker left behind. A SIGKILLed worker is still "R" until the kernel has torn
    # it down, which under load (CI, 2 cores) took longer than the check: wait a little.
    deadline = time.monotonic() + 5
    while _group_alive(server) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _group_alive(server) == []
    assert server.stop() == server.process.returncode  # stopping again is harmless


def test_a_server_that_exits_is_a_clear_error_with_its_log_tail(
    migrated_db_url: str, tmp_path: Path
) -> None:
    env = {"INGEST_API_KEYS": "", "INGEST_AUTH_DISABLED": "false"}
    with pytest.raises(ApiStartError) as failed:
        run_api(migrated_db_url, tmp_path / "api.log", extra_env=env)
    message = str(failed.value)
    assert "exited with status 2" in message
    assert "INGEST_API_KEYS is empty" in message  # the server's own words, from its log
    assert str(tmp_path / "api.log") in message


def test_a_server_that_never_gets_ready_is_stopped_and_reported(
    empty_db_url: str, tmp_path: Path
) -> None:
    port = free_port()
    with pytest.raises(ApiStartError, match=r"did not answer 200 on /readyz within 3 s"):
        run_api(empty_db_url, tmp_path / "api.log", api_keys=["k"], port=port, startup_timeout=3)
    assert _refused(f"http://127.0.0.1:{port}")  # not left running


def test_the_log_tail_starts_at_a_line(tmp_path: Path) -> None:
    log = tmp_path / "api.log"
    log.write_text("".join(f"line {i}\n" for i in range(1000)))
    server = ApiServer("http://127.0.0.1:1", None, log)  # type: ignore[arg-type]
    tail = server.log_tail(100)
    assert tail.endswith("line 999\n")
    assert tail.startswith("line ")
    assert len(tail) <= 100
