"""Abuse the API takes over real HTTP: key guessing, slow headers, anonymous ops probes.

Different client addresses are real: Linux routes all of 127.0.0.0/8 to loopback, so a
client socket bound to 127.0.0.2 reaches the server on 127.0.0.1 from another address.
"""

from __future__ import annotations

import contextlib
import select
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from sdk.db import migrate
from sdk.telemetry.values import new_ulid
from tests.support.servers import TEST_API_KEYS, ApiServer, run_api

EVENTS = "/telemetry/events"
WRONG = {"Authorization": "Bearer not-a-key"}
METRICS_KEY = "test-metrics-key"


def event() -> dict[str, Any]:
    return {
        "event_id": new_ulid(),
        "event_name": "workflow.run_started",
        "ts": datetime.now(UTC).isoformat(),
        "run_id": "run-1",
    }


def client_from(server: ApiServer, address: str) -> httpx.Client:
    """An HTTP client whose connections come from ``address`` (a loopback address)."""
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=server.base_url, transport=transport, timeout=30)


@pytest.fixture(scope="module")
def guarded(migrated_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """An API with a small failure limit, a metrics key and a short header deadline."""
    log = tmp_path_factory.mktemp("api") / "api.log"
    env = {
        "INGEST_AUTH_FAILURE_LIMIT": "5",
        "INGEST_AUTH_FAILURE_WINDOW_S": "600",
        "METRICS_API_KEY": METRICS_KEY,
        "INGEST_HEADER_TIMEOUT_S": "1",
    }
    with run_api(migrated_db_url, log, extra_env=env) as server:
        yield server


# --- failed authentication is limited per client address ----------------------------------


def test_repeated_wrong_keys_get_429_with_retry_after_and_block_that_address_only(
    guarded: ApiServer,
) -> None:
    with (
        client_from(guarded, "127.0.0.2") as attacker,
        client_from(guarded, "127.0.0.3") as neighbour,
        client_from(guarded, "127.0.0.1") as honest,
    ):
        statuses = [
            attacker.post(EVENTS, json=event(), headers=WRONG).status_code for _ in range(300)
        ]
        assert statuses[:5] == [401] * 5
        assert statuses[5:] == [429] * 295
        refused = attacker.post(EVENTS, json=event(), headers=WRONG)
        assert refused.json()["error"] == "too_many_failed_attempts"
        assert 1 <= int(refused.headers["retry-after"]) <= 600
        # Blocked means blocked: a right guess now would teach the attacker nothing.
        assert attacker.post(EVENTS, json=event(), headers=guarded.auth).status_code == 429
        # Other addresses: their own budget, and valid keys work.
        assert honest.post(EVENTS, json=event(), headers=guarded.auth).status_code == 201
        assert neighbour.post(EVENTS, json=event(), headers=WRONG).status_code == 401
        assert neighbour.post(EVENTS, json=event(), headers=guarded.auth).status_code == 201
        # Probing readiness without a key is never limited.
        assert attacker.get("/readyz").status_code == 200
        assert attacker.get("/healthz").status_code == 200


def test_a_forwarded_for_header_does_not_choose_the_address_charged(
    migrated_db_url: str, tmp_path: Path
) -> None:
    """Without INGEST_TRUSTED_PROXIES no client picks the address its failures count to.

    uvicorn believes X-Forwarded-For from 127.0.0.1 by default: rotating the header
    dodged the limit, and naming someone else's address locked them out. (Its own
    server: the attacker here blocks 127.0.0.1, which other tests use.)
    """
    env = {"INGEST_AUTH_FAILURE_LIMIT": "3", "INGEST_AUTH_FAILURE_WINDOW_S": "600"}
    with (
        run_api(migrated_db_url, tmp_path / "api.log", extra_env=env) as server,
        client_from(server, "127.0.0.1") as attacker,
        client_from(server, "127.0.0.8") as victim,
    ):
        framing = {**WRONG, "X-Forwarded-For": "127.0.0.8"}
        for _ in range(4):
            attacker.post(EVENTS, json=event(), headers=framing)
        assert victim.post(EVENTS, json=event(), headers=server.auth).status_code == 201
        rotating = [
            attacker.post(
                EVENTS, json=event(), headers={**WRONG, "X-Forwarded-For": f"10.0.0.{i}"}
            ).status_code
            for i in range(4)
        ]
        assert rotating == [429] * 4


def test_a_trusted_proxy_forwards_the_client_address(migrated_db_url: str, tmp_path: Path) -> None:
    env = {
        "INGEST_AUTH_FAILURE_LIMIT": "2",
        "INGEST_AUTH_FAILURE_WINDOW_S": "600",
        "INGEST_TRUSTED_PROXIES": "127.0.0.1",
    }
    with (
        run_api(migrated_db_url, tmp_path / "api.log", extra_env=env) as server,
        client_from(server, "127.0.0.1") as proxy,
    ):
        one = {**WRONG, "X-Forwarded-For": "192.0.2.1"}
        assert [proxy.post(EVENTS, json=event(), headers=one).status_code for _ in range(3)] == [
            401,
            401,
            429,
        ]
        other = {**server.auth, "X-Forwarded-For": "192.0.2.2"}
        assert proxy.post(EVENTS, json=event(), headers=other).status_code == 201


def test_missing_keys_count_as_failures(guarded: ApiServer) -> None:
    with client_from(guarded, "127.0.0.4") as client:
        statuses = [client.post(EVENTS, json=event()).status_code for _ in range(6)]
    assert statuses == [401] * 5 + [429]


def test_blocks_end_with_the_window_and_memory_is_bounded(
    migrated_db_url: str, tmp_path: Path
) -> None:
    env = {
        "INGEST_AUTH_FAILURE_LIMIT": "1",
        "INGEST_AUTH_FAILURE_WINDOW_S": "1",
        "INGEST_AUTH_FAILURE_CLIENTS": "2",
    }
    with run_api(migrated_db_url, tmp_path / "api.log", extra_env=env) as server:
        clients = {a: client_from(server, a) for a in ("127.0.0.2", "127.0.0.3", "127.0.0.4")}
        try:
            first, second, third = clients.values()
            assert first.post(EVENTS, json=event(), headers=WRONG).status_code == 401
            blocked = first.post(EVENTS, json=event(), headers=WRONG)
            assert blocked.status_code == 429
            time.sleep(int(blocked.headers["retry-after"]) + 0.2)
            assert first.post(EVENTS, json=event(), headers=WRONG).status_code == 401
            assert first.post(EVENTS, json=event(), headers=WRONG).status_code == 429
            # Two more failing addresses push the first out of the two remembered.
            assert second.post(EVENTS, json=event(), headers=WRONG).status_code == 401
            assert third.post(EVENTS, json=event(), headers=WRONG).status_code == 401
            assert first.post(EVENTS, json=event(), headers=WRONG).status_code == 401
        finally:
            for client in clients.values():
                client.close()


def test_the_limit_is_on_by_default(api_server: ApiServer) -> None:
    with client_from(api_server, "127.0.0.9") as client:
        statuses = [client.post(EVENTS, json=event(), headers=WRONG).status_code for _ in range(21)]
    assert statuses == [401] * 20 + [429]


# --- /metrics and /readyz --------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}],
    ids=["no-key", "wrong-key"],
)
def test_metrics_need_the_metrics_key_when_one_is_set(
    guarded: ApiServer, headers: dict[str, str]
) -> None:
    with client_from(guarded, "127.0.0.5") as client:
        response = client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "wdp_ingest" not in response.text


def test_an_ingest_key_on_metrics_is_403_naming_the_scope_and_not_a_failure(
    guarded: ApiServer,
) -> None:
    auth = {"Authorization": f"Bearer {TEST_API_KEYS[0]}"}
    with client_from(guarded, "127.0.0.9") as client:
        statuses = [client.get("/metrics", headers=auth).status_code for _ in range(7)]
        response = client.get("/metrics", headers=auth)
    # More than INGEST_AUTH_FAILURE_LIMIT (5) times, and never 429: the key is valid.
    assert statuses == [403] * 7
    assert response.json()["error"] == "forbidden"
    assert "'metrics' scope (METRICS_API_KEY)" in response.json()["detail"]
    assert "wdp_ingest" not in response.text


def test_the_metrics_key_reads_metrics_and_nothing_else(guarded: ApiServer) -> None:
    auth = {"Authorization": f"Bearer {METRICS_KEY}"}
    with client_from(guarded, "127.0.0.6") as client:
        response = client.get("/metrics", headers=auth)
        assert response.status_code == 200
        assert "wdp_ingest_events_total" in response.text
        refused = client.post(EVENTS, json=event(), headers=auth)
        assert refused.status_code == 403
        assert "'ingest' scope (INGEST_API_KEYS)" in refused.json()["detail"]


def test_readiness_shows_the_revision_only_to_a_valid_key(guarded: ApiServer) -> None:
    with client_from(guarded, "127.0.0.7") as client:
        anonymous = client.get("/readyz")
        assert anonymous.status_code == 200
        assert anonymous.json() == {"status": "ready"}
        assert migrate.head_revision() not in anonymous.text
        for key in (TEST_API_KEYS[0], METRICS_KEY):
            keyed = client.get("/readyz", headers={"Authorization": f"Bearer {key}"})
            assert keyed.json() == {"status": "ready", "revision": migrate.head_revision()}
        wrong = client.get("/readyz", headers=WRONG)
        assert wrong.status_code == 401
        assert migrate.head_revision() not in wrong.text


# --- slow request heads ------------------------------------------------------------------

HEAD = (
    b"POST /telemetry/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b"Authorization: Bearer " + TEST_API_KEYS[0].encode() + b"\r\nContent-Length: 2\r\n\r\n"
)


def _trickle(sockets: list[socket.socket], *, seconds: float, byte_every_s: float = 0.25) -> int:
    """Send ``HEAD`` one byte at a time on every socket, never its last byte, until the
    server has closed them all or ``seconds`` pass; return how many it closed."""
    alive = set(sockets)
    deadline = time.monotonic() + seconds
    sent = 0
    while alive and time.monotonic() < deadline:
        readable, _, _ = select.select(list(alive), [], [], 0)
        for sock in readable:  # only a closing server makes an unanswered socket readable
            with contextlib.suppress(OSError):
                sock.recv(1024)
            alive.discard(sock)
        if sent < len(HEAD) - 1:
            for sock in list(alive):
                try:
                    sock.send(HEAD[sent : sent + 1])
                except OSError:
                    alive.discard(sock)
            sent += 1
        time.sleep(byte_every_s)
    return len(sockets) - len(alive)


@pytest.mark.parametrize("server_name", ["uvicorn", "granian"])
def test_slow_request_heads_are_cut_off(
    migrated_db_url: str, tmp_path: Path, server_name: str
) -> None:
    """50 connections sending their headers a byte per 0.25 s (the whole head would take
    about 40 s) are all closed by the server, while it keeps serving everyone else."""
    env = {"INGEST_HEADER_TIMEOUT_S": "1"}
    with run_api(migrated_db_url, tmp_path / "api.log", extra_env=env, server=server_name) as api:
        sockets = [
            socket.create_connection(("127.0.0.1", int(api.base_url.rsplit(":", 1)[1])))
            for _ in range(50)
        ]
        try:
            start = time.monotonic()
            # Served meanwhile (its own connection, headers sent at once).
            assert (
                httpx.post(f"{api.base_url}{EVENTS}", json=event(), headers=api.auth).status_code
                == 201
            )
            closed = _trickle(sockets, seconds=20)
            elapsed = time.monotonic() - start
        finally:
            for sock in sockets:
                sock.close()
    print(f"{server_name}: {closed}/50 slow connections closed after {elapsed:.1f} s")
    assert closed == 50


def test_a_silent_connection_and_a_slow_second_request_are_cut_off(guarded: ApiServer) -> None:
    port = int(guarded.base_url.rsplit(":", 1)[1])
    with (
        socket.create_connection(("127.0.0.1", port)) as silent,
        socket.create_connection(("127.0.0.1", port)) as kept_alive,
    ):
        kept_alive.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert kept_alive.recv(4096).startswith(b"HTTP/1.1 200")
        assert _trickle([kept_alive], seconds=10) == 1  # the next request on it: too slow
        readable, _, _ = select.select([silent], [], [], 10)  # sends nothing at all
        assert readable == [silent]
        assert silent.recv(1024) == b""


def test_a_head_sent_in_pieces_within_the_deadline_is_served(guarded: ApiServer) -> None:
    port = int(guarded.base_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(HEAD[:20])
        time.sleep(0.3)
        sock.sendall(HEAD[20:] + b"{}")
        assert sock.recv(4096).startswith(b"HTTP/1.1 422")


# --- the key is checked before anything of the body is read ------------------------------


@pytest.mark.parametrize("path", [EVENTS, "/telemetry/events/batch"])
def test_without_a_key_nothing_of_the_body_is_looked_at(guarded: ApiServer, path: str) -> None:
    # The ingest endpoints check the key in the handler, not in a guard: what a guard
    # guaranteed by construction is pinned here. A body that is too big, not JSON or
    # of the wrong type still gets 401 from a keyless client (never 413/400/415).
    bodies = [
        (b"x" * (3 * 1024 * 1024), "application/json"),
        (b"{not json", "application/json"),
        (b"<xml/>", "application/xml"),
    ]
    address = "127.0.0.9" if path == EVENTS else "127.0.0.11"  # a failure budget each
    with client_from(guarded, address) as anonymous:
        for body, media in bodies:
            response = anonymous.post(path, content=body, headers={"Content-Type": media})
            assert response.status_code == 401, (path, media, response.text)
            assert response.headers["www-authenticate"] == "Bearer"


def test_the_failure_limit_also_guards_the_batch_endpoint(guarded: ApiServer) -> None:
    batch = {"events": [event()]}
    with client_from(guarded, "127.0.0.10") as attacker:
        statuses = [
            attacker.post("/telemetry/events/batch", json=batch, headers=WRONG).status_code
            for _ in range(7)
        ]
        assert statuses == [401] * 5 + [429] * 2
        assert (
            attacker.post("/telemetry/events/batch", json=batch, headers=guarded.auth).status_code
            == 429
        )
