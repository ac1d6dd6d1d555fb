"""POST /telemetry/events and /batch over real HTTP against a real Postgres."""

from __future__ import annotations

import gzip
import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from sdk.db import migrate
from sdk.db.partitions import Month
from sdk.telemetry.values import new_ulid
from tests.support.servers import TEST_API_KEYS, ApiServer


def step_event(**overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": new_ulid(),
        "event_name": "workflow.step_completed",
        "ts": datetime.now(UTC).isoformat(),
        "run_id": "run-1",
        "item_id": "item-1",
        "workflow_name": "triage",
        "agent_role": "planner",
        "payload": {
            "node": "plan",
            "step": 3,
            "status": "ok",
            "duration_ms": 12.5,
            "model": "gpt-x",
            "tokens_in": 100,
            "tokens_out": 20,
            "cost_usd_est": 0.0012,
        },
    }
    event.update(overrides)
    return event


@pytest.fixture
def client(api_server: ApiServer) -> httpx.Client:
    with httpx.Client(base_url=api_server.base_url, headers=api_server.auth, timeout=30) as c:
        yield c


@pytest.fixture
def db(migrated_db_url: str) -> psycopg.Connection:
    with psycopg.connect(migrated_db_url, autocommit=True) as conn:
        yield conn


def stored(db: psycopg.Connection, *event_ids: str) -> int:
    row = db.execute(
        "SELECT count(*) FROM telemetry.workflow_events WHERE event_id = ANY(%s)",
        [list(event_ids)],
    ).fetchone()
    return int(row[0])


def error_locs(response: httpx.Response) -> list[list[Any]]:
    return [e["loc"] for e in response.json()["errors"]]


# --- one event: the status codes ----------------------------------------------------


def test_new_event_is_201_and_stored_with_event_time_from_its_id(
    client: httpx.Client, db: psycopg.Connection
) -> None:
    event = step_event()
    response = client.post("/telemetry/events", json=event)
    assert response.status_code == 201
    assert response.json() == {"event_id": event["event_id"], "status": "created"}
    row = db.execute(
        "SELECT event_time = telemetry.ulid_time(event_id), payload->>'node', agent_role "
        "FROM telemetry.workflow_events WHERE event_id = %s",
        [event["event_id"]],
    ).fetchone()
    assert row == (True, "plan", "planner")


def test_exact_duplicate_is_200_and_stored_once(
    client: httpx.Client, db: psycopg.Connection
) -> None:
    event = step_event()
    assert client.post("/telemetry/events", json=event).status_code == 201
    # Same content, different formatting: key order, offset notation of the same instant.
    same = dict(reversed(list(event.items())))
    same["ts"] = (
        datetime.fromisoformat(event["ts"])
        .astimezone(datetime.now().astimezone().tzinfo)
        .isoformat()
    )
    response = client.post("/telemetry/events", json=same)
    assert response.status_code == 200
    assert response.json()["status"] == "duplicate"
    assert stored(db, event["event_id"]) == 1


def test_same_id_different_content_is_409_and_never_overwrites(
    client: httpx.Client, db: psycopg.Connection
) -> None:
    event = step_event()
    assert client.post("/telemetry/events", json=event).status_code == 201
    changed = step_event(event_id=event["event_id"], run_id="run-2")
    changed["payload"]["tokens_in"] = 999
    response = client.post("/telemetry/events", json=changed)
    assert response.status_code == 409
    detail = response.json()["detail"]
    assert "run_id" in detail
    assert "payload" in detail
    assert "new event_id" in detail
    row = db.execute(
        "SELECT run_id, payload->>'tokens_in' FROM telemetry.workflow_events WHERE event_id = %s",
        [event["event_id"]],
    ).fetchone()
    assert row == ("run-1", "100")


@pytest.mark.parametrize(
    ("mutate", "loc", "fragment"),
    [
        (lambda e: e["payload"].pop("node"), ["payload", "node"], "Field required"),
        (lambda e: e.update(event_name="workflow.nope"), ["event_name"], "unknown event name"),
        (lambda e: e.pop("event_name"), ["event_name"], "missing"),
        (lambda e: e.update(event_id="not-a-ulid"), ["event_id"], "pattern"),
        (lambda e: e.update(ts="2026-11-28T10:00:00"), ["ts"], "timezone"),
        # The contract says RFC 3339: Unix times are not guessed at, as numbers or text.
        (lambda e: e.update(ts=1700000000), ["ts"], "RFC 3339"),
        (lambda e: e.update(ts="1700000000"), ["ts"], "RFC 3339"),
        (lambda e: e.update(ts="2026-11-28 10:00:00Z"), ["ts"], "RFC 3339"),
        (lambda e: e["payload"].update(status="maybe"), ["payload", "status"], "'ok' or 'error'"),
        (lambda e: e["payload"].update(tokens_in=-1), ["payload", "tokens_in"], "greater than"),
        (lambda e: e.pop("run_id"), [], "requires run_id"),
        (lambda e: e.update(surprise=1), ["surprise"], "Extra inputs"),
    ],
)
def test_invalid_event_is_422_with_field_errors(
    client: httpx.Client, mutate: Any, loc: list[Any], fragment: str
) -> None:
    event = step_event()
    mutate(event)
    response = client.post("/telemetry/events", json=event)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "invalid_event"
    matching = [e for e in body["errors"] if e["loc"] == loc]
    assert matching, body
    assert fragment in matching[0]["msg"]


def test_event_id_outside_the_live_partitions_is_422_naming_the_window(
    client: httpx.Client,
) -> None:
    far = Month.current().plus(24).start + timedelta(days=1)
    ms = int(far.timestamp() * 1000)
    response = client.post("/telemetry/events", json=step_event(event_id=new_ulid(ms)))
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert error["loc"] == ["event_id"]
    assert "outside the live event partitions" in error["msg"]
    assert Month.current().start.isoformat() in error["msg"]


@pytest.mark.parametrize(
    ("raw", "loc", "fragment"),
    [
        # A NUL inside a payload string: Postgres text/jsonb cannot store it.
        (lambda e: e.replace('"plan"', '"pl\\u0000an"'), ["payload", "node"], "NUL"),
        # A lone surrogate is valid JSON syntax but not Unicode text.
        (lambda e: e.replace('"plan"', '"pl\\ud800an"'), ["payload", "node"], "surrogate"),
        # 2**64 does not fit in 64 bits.
        (
            lambda e: e.replace('"tokens_in": 100', '"tokens_in": 18446744073709551616'),
            ["payload", "tokens_in"],
            "64",
        ),
        (lambda e: e.replace('"run-1"', '"run\\u0000"'), ["run_id"], "NUL"),
    ],
)
def test_values_postgres_would_choke_on_are_422_not_500(
    client: httpx.Client, raw: Any, loc: list[Any], fragment: str
) -> None:
    body = raw(json.dumps(step_event()))
    response = client.post(
        "/telemetry/events", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    (error,) = response.json()["errors"]
    # The location in loc, like every other error, not in the message.
    assert error == {"loc": loc, "msg": error["msg"], "type": "unstorable_value"}
    assert fragment in error["msg"]
    assert loc[-1] not in error["msg"]


def test_unstorable_values_deep_in_free_form_json_are_located(client: httpx.Client) -> None:
    event = {
        "event_id": new_ulid(),
        "event_name": "learning.correction_submitted",
        "ts": datetime.now(UTC).isoformat(),
        "payload": {"target_type": "run", "target_id": "r", "corrected": {"a": ["ok", "@NUL@"]}},
    }
    # A marker no ULID holds ("XX" was one: a random event_id with it got the NUL).
    body = json.dumps({"events": [event]}).replace("@NUL@", "\\u0000")
    response = client.post(
        "/telemetry/events/batch", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    (result,) = response.json()["results"]
    assert [e["loc"] for e in result["errors"]] == [["payload", "corrected", "a", 1]]
    assert result["reason"].startswith("payload.corrected.a.1: contains a NUL")


def test_deep_nesting_in_free_form_json_is_422(client: httpx.Client) -> None:
    nested: dict[str, Any] = {}
    cursor = nested
    for _ in range(40):
        cursor["n"] = {}
        cursor = cursor["n"]
    event = {
        "event_id": new_ulid(),
        "event_name": "workflow.run_started",
        "ts": datetime.now(UTC).isoformat(),
        "run_id": "r",
        "payload": {"metadata": nested},
    }
    response = client.post("/telemetry/events", json=event)
    assert response.status_code == 422
    assert "nesting deeper than 32" in response.text


def test_pathological_nesting_is_rejected_cleanly(client: httpx.Client) -> None:
    body = "[" * 20_000 + "]" * 20_000
    response = client.post(
        "/telemetry/events", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert "Traceback" not in response.text


@pytest.mark.parametrize("body", [b"{not json", b"", b'{"a": NaN}', b"\xff\xfe"])
def test_unparseable_json_is_400(client: httpx.Client, body: bytes) -> None:
    response = client.post(
        "/telemetry/events", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "malformed_json"


def test_body_over_the_limit_is_413(client: httpx.Client) -> None:
    event = step_event()
    event["payload"]["error_message"] = "x" * (70 * 1024)
    response = client.post("/telemetry/events", json=event)
    assert response.status_code == 413
    assert "65536" in response.json()["detail"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_wrong_content_type_is_415(client: httpx.Client, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post(
        "/telemetry/events", content=json.dumps(step_event()).encode(), headers=headers
    )
    assert response.status_code == 415


def test_gzip_bodies_are_accepted(client: httpx.Client, db: psycopg.Connection) -> None:
    event = step_event()
    response = client.post(
        "/telemetry/events",
        content=gzip.compress(json.dumps(event).encode()),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert response.status_code == 201
    assert stored(db, event["event_id"]) == 1


def test_a_gzip_bomb_is_413_not_inflated(client: httpx.Client) -> None:
    bomb = gzip.compress(b" " * (50 * 1024 * 1024))  # ~50 KB on the wire, 50 MB inflated
    response = client.post(
        "/telemetry/events/batch",
        content=bomb,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert response.status_code == 413


def test_unknown_content_encoding_is_415(client: httpx.Client) -> None:
    response = client.post(
        "/telemetry/events",
        content=b"{}",
        headers={"Content-Type": "application/json", "Content-Encoding": "br"},
    )
    assert response.status_code == 415


# --- auth ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TEST_API_KEYS[0]}"}],
)
def test_missing_or_invalid_key_is_401(api_server: ApiServer, headers: dict[str, str]) -> None:
    event = step_event()
    response = httpx.post(f"{api_server.base_url}/telemetry/events", json=event, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert TEST_API_KEYS[0] not in response.text


def test_every_configured_key_is_accepted(api_server: ApiServer) -> None:
    for key in TEST_API_KEYS:
        response = httpx.post(
            f"{api_server.base_url}/telemetry/events",
            json=step_event(),
            headers={"Authorization": f"Bearer {key}"},
        )
        assert response.status_code == 201


def test_health_readiness_and_metrics_need_no_key(api_server: ApiServer) -> None:
    assert httpx.get(f"{api_server.base_url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{api_server.base_url}/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready"}  # the revision is for key holders
    keyed = httpx.get(f"{api_server.base_url}/readyz", headers=api_server.auth)
    assert keyed.json()["revision"] == migrate.head_revision()
    metrics = httpx.get(f"{api_server.base_url}/metrics")
    assert metrics.status_code == 200
    assert "wdp_ingest_events_total" in metrics.text
    assert "wdp_ingest_request_seconds_bucket" in metrics.text


def test_metrics_count_outcomes(client: httpx.Client, api_server: ApiServer) -> None:
    def created() -> float:
        text = httpx.get(f"{api_server.base_url}/metrics").text
        for line in text.splitlines():
            if line.startswith('wdp_ingest_events_total{outcome="created"}'):
                return float(line.split()[-1])
        return 0.0

    before = created()
    client.post("/telemetry/events", json=step_event())
    assert created() == before + 1


def test_metrics_count_rejections_by_error(client: httpx.Client, api_server: ApiServer) -> None:
    """Every 4xx the error handler answers is counted under its error name (not 401s:
    the authenticator counts those itself)."""

    def rejected() -> dict[str, float]:
        text = httpx.get(f"{api_server.base_url}/metrics").text
        prefix = 'wdp_ingest_rejected_total{reason="'
        return {
            line[len(prefix) :].split('"', 1)[0]: float(line.split()[-1])
            for line in text.splitlines()
            if line.startswith(prefix)
        }

    before = rejected()
    assert client.post("/telemetry/events", json={"event_name": "nope"}).status_code == 422
    malformed = client.post(
        "/telemetry/events", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert malformed.status_code == 400
    assert client.get("/no-such-page").status_code == 404
    after = rejected()
    for error in ("invalid_event", "malformed_json", "not_found"):
        assert after[error] == before.get(error, 0.0) + 1, error


def test_openapi_and_docs_are_served(api_server: ApiServer) -> None:
    spec = httpx.get(f"{api_server.base_url}/docs/openapi.json").json()
    body = spec["paths"]["/telemetry/events"]["post"]["requestBody"]
    assert "discriminator" in body["content"]["application/json"]["schema"]
    assert "StepCompletedPayload" in spec["components"]["schemas"]
    assert httpx.get(f"{api_server.base_url}/docs/swagger").status_code == 200


# --- idempotency under concurrency ----------------------------------------------------


def test_twenty_concurrent_posts_of_one_event_store_it_once(
    api_server: ApiServer, db: psycopg.Connection
) -> None:
    event = step_event()

    def post(_: int) -> int:
        with httpx.Client(headers=api_server.auth, timeout=30) as c:
            return c.post(f"{api_server.base_url}/telemetry/events", json=event).status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(post, range(20)))
    assert sorted(statuses) == [200] * 19 + [201]
    assert stored(db, event["event_id"]) == 1


# --- batches ------------------------------------------------------------------------


def test_batch_mixing_new_duplicate_conflict_and_invalid(
    client: httpx.Client, db: psycopg.Connection
) -> None:
    existing = step_event()
    assert client.post("/telemetry/events", json=existing).status_code == 201
    new = step_event()
    conflicting = step_event(event_id=existing["event_id"], agent_role="critic")
    invalid = step_event(ts="yesterday")
    response = client.post(
        "/telemetry/events/batch", json={"events": [new, existing, conflicting, invalid]}
    )
    assert response.status_code == 207
    body = response.json()
    assert body["counts"] == {"created": 1, "duplicate": 1, "conflict": 1, "invalid": 1}
    assert [r["status"] for r in body["results"]] == ["created", "duplicate", "conflict", "invalid"]
    assert [r["index"] for r in body["results"]] == [0, 1, 2, 3]
    assert "agent_role" in body["results"][2]["reason"]
    assert body["results"][3]["errors"][0]["loc"] == ["ts"]
    assert stored(db, new["event_id"], existing["event_id"]) == 2


def test_batch_with_nothing_rejected_is_200_and_all_rejected_is_422(client: httpx.Client) -> None:
    ok = client.post("/telemetry/events/batch", json={"events": [step_event(), step_event()]})
    assert ok.status_code == 200
    assert ok.json()["counts"]["created"] == 2
    bad = client.post(
        "/telemetry/events/batch", json={"events": [step_event(ts="x"), {"event_id": 1}]}
    )
    assert bad.status_code == 422
    assert bad.json()["counts"]["invalid"] == 2


def test_batch_repeating_one_id_stores_it_once(
    client: httpx.Client, db: psycopg.Connection
) -> None:
    event = step_event()
    changed = step_event(event_id=event["event_id"], run_id="other")
    response = client.post("/telemetry/events/batch", json={"events": [event, event, changed]})
    assert [r["status"] for r in response.json()["results"]] == [
        "created",
        "duplicate",
        "conflict",
    ]
    assert stored(db, event["event_id"]) == 1


def test_batch_spanning_two_month_partitions(client: httpx.Client, db: psycopg.Connection) -> None:
    this_month = step_event()
    next_ms = int((Month.current().plus(1).start + timedelta(hours=2)).timestamp() * 1000)
    next_month = step_event(event_id=new_ulid(next_ms))
    response = client.post("/telemetry/events/batch", json={"events": [this_month, next_month]})
    assert response.status_code == 200
    rows = db.execute(
        "SELECT tableoid::regclass::text FROM telemetry.workflow_events "
        "WHERE event_id = ANY(%s) ORDER BY event_time",
        [[this_month["event_id"], next_month["event_id"]]],
    ).fetchall()
    assert [r[0] for r in rows] == [
        f"telemetry.{Month.current().table_name}",
        f"telemetry.{Month.current().plus(1).table_name}",
    ]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"events": []}, "non-empty"),
        ({"evts": [1]}, "non-empty"),
        ([1, 2], "non-empty"),
        ({"events": [{}] * 1001}, "at most 1000"),
    ],
)
def test_malformed_batches_are_422(client: httpx.Client, body: Any, fragment: str) -> None:
    response = client.post("/telemetry/events/batch", json=body)
    assert response.status_code == 422
    assert fragment in response.json()["detail"]


# --- failures -------------------------------------------------------------------------


def test_killed_db_connection_mid_batch_is_503_with_nothing_stored_and_retry_works(
    api_server: ApiServer, migrated_db_url: str, db: psycopg.Connection
) -> None:
    events = [step_event() for _ in range(50)]
    ids = [e["event_id"] for e in events]
    partition = f"telemetry.{Month.current().table_name}"
    with psycopg.connect(migrated_db_url) as locker, ThreadPoolExecutor(1) as pool:
        # Hold the partition so the API's INSERT blocks mid-transaction...
        locker.execute(f"LOCK TABLE {partition} IN ACCESS EXCLUSIVE MODE")
        future = pool.submit(
            httpx.post,
            f"{api_server.base_url}/telemetry/events/batch",
            json={"events": events},
            headers=api_server.auth,
            timeout=60,
        )
        # ...then kill the API's backend while it waits inside the batch transaction.
        killed = False
        for _ in range(200):
            row = db.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'wdp-ingest' AND wait_event_type = 'Lock'"
            ).fetchone()
            if row is not None and row[0]:
                killed = True
                break
            time.sleep(0.05)
        locker.rollback()
        response = future.result()
    assert killed
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert "Traceback" not in response.text
    assert stored(db, *ids) == 0
    retry = httpx.post(
        f"{api_server.base_url}/telemetry/events/batch",
        json={"events": events},
        headers=api_server.auth,
        timeout=60,
    )
    assert retry.status_code == 200
    assert retry.json()["counts"]["created"] == 50
    assert stored(db, *ids) == 50


def test_a_lone_surrogate_in_a_key_is_422_and_spares_the_rest_of_the_batch(
    client: httpx.Client, db: psycopg.Connection
) -> None:
    good = step_event()
    bad = json.dumps(
        {
            "event_id": new_ulid(),
            "event_name": "workflow.run_started",
            "ts": datetime.now(UTC).isoformat(),
            "run_id": "r",
            "payload": {"metadata": {"@KEY@": 1}},  # a marker no ULID can hold
        }
    ).replace("@KEY@", "\\ud800")
    single = client.post(
        "/telemetry/events", content=bad, headers={"Content-Type": "application/json"}
    )
    assert single.status_code == 422, single.text
    body = '{"events": [' + json.dumps(good) + ", " + bad + "]}"
    batch = client.post(
        "/telemetry/events/batch", content=body, headers={"Content-Type": "application/json"}
    )
    assert batch.status_code == 207, batch.text
    assert [r["status"] for r in batch.json()["results"]] == ["created", "invalid"]
    assert stored(db, good["event_id"]) == 1


def test_a_body_that_is_not_utf8_is_400(client: httpx.Client) -> None:
    body = json.dumps(step_event()).encode("utf-16")
    response = client.post(
        "/telemetry/events", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400


def test_data_after_the_gzip_stream_is_400(client: httpx.Client) -> None:
    body = gzip.compress(json.dumps(step_event()).encode()) + b"trailing"
    response = client.post(
        "/telemetry/events",
        content=body,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert response.status_code == 400
