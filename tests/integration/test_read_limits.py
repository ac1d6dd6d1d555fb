"""What bounds the read endpoints, and which stored days usage trusts, over real HTTP.

One server with small read limits (2 read connections, a 1.5 s statement timeout, at most
3 live days per usage request) on a database of its own. Slow reads are made by holding
an ACCESS EXCLUSIVE lock on the aggregates table: every usage read waits on it (until its
statement timeout), while ingestion, which never touches that table, must not notice.
Each test uses days of its own, relative to today (UTC).
"""

from __future__ import annotations

import asyncio
import threading
import time as clock
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import httpx
import psycopg
import pytest
import sqlalchemy as sa

from sdk.db.engine import create_engine
from sdk.db.partitions import Month, ensure_partitions
from sdk.db.queries import Query, Row, Statement, read_async, read_sync, single
from sdk.usage.aggregation import aggregate_day
from tests.integration.read_support import INGEST, event, get, post, read_server, step
from tests.support.servers import ApiServer

TODAY = datetime.now(UTC).date()
STATEMENT_TIMEOUT_MS = 1500
MAX_LIVE_DAYS = 3
STALE_DAY = TODAY - timedelta(days=2)
LIVE_DAYS = [TODAY - timedelta(days=n) for n in (10, 9, 8, 7)]
RUNS_DAY = TODAY - timedelta(days=12)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), UTC)


@pytest.fixture(scope="module")
def engine(migrated_db_url: str) -> Iterator[sa.Engine]:
    eng = create_engine(migrated_db_url)
    ensure_partitions(eng, [Month.of(RUNS_DAY), Month.of(TODAY)])
    yield eng
    eng.dispose()


@pytest.fixture(scope="module")
def server(
    migrated_db_url: str, engine: sa.Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    env = {
        "READ_DB_POOL_SIZE": "2",
        "READ_STATEMENT_TIMEOUT_MS": str(STATEMENT_TIMEOUT_MS),
        "READ_MAX_LIVE_DAYS": str(MAX_LIVE_DAYS),
    }
    with read_server(migrated_db_url, tmp_path_factory.mktemp("api") / "api.log", **env) as api:
        yield api


def aggregate(engine: sa.Engine, day: date) -> None:
    with engine.begin() as conn:
        aggregate_day(conn, day)


def usage(server: ApiServer, first: date, last: date, **params: Any) -> dict[str, Any]:
    response = get(server, "/telemetry/usage", **{"from": first.isoformat()}, to=last.isoformat(),
                   **params)  # fmt: skip
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


class AggregatesLocked:
    """Holds ACCESS EXCLUSIVE on the aggregates table: every usage read blocks on it."""

    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(url)

    def __enter__(self) -> AggregatesLocked:
        self.conn.execute("LOCK TABLE telemetry.daily_event_aggregates IN ACCESS EXCLUSIVE MODE")
        return self

    def __exit__(self, *_: object) -> None:
        self.conn.rollback()
        self.conn.close()


def test_ingestion_and_readiness_answer_while_reads_hang(
    server: ApiServer, migrated_db_url: str
) -> None:
    """Eight hung reads, as many as the ingest pool has connections: ingestion keeps its
    own, and every read ends in 503 with Retry-After instead of hanging."""
    answers: list[httpx.Response] = []

    def read() -> None:
        answers.append(get(server, "/telemetry/usage", **{"from": TODAY.isoformat()}))

    with AggregatesLocked(migrated_db_url):
        readers = [threading.Thread(target=read) for _ in range(8)]
        for reader in readers:
            reader.start()
        clock.sleep(0.5)  # the reads hold their connections, waiting on the lock
        started = clock.monotonic()
        posted = httpx.post(
            f"{server.base_url}/telemetry/events",
            json=event("workflow.run_started", at(TODAY, 0), run_id="while-reading"),
            headers=INGEST,
            timeout=30,
        )
        post_s = clock.monotonic() - started
        ready = httpx.get(f"{server.base_url}/readyz", timeout=30)
        ready_s = clock.monotonic() - started - post_s
        for reader in readers:
            reader.join(timeout=30)
    assert posted.status_code == 201, posted.text
    assert post_s < 1.0, post_s
    assert ready.status_code == 200, ready.text
    assert ready_s < 1.0, ready_s
    assert len(answers) == 8
    assert {a.status_code for a in answers} == {503}, [a.text for a in answers]
    assert all(a.headers.get("Retry-After") for a in answers)
    # At least the two reads that had a connection were cancelled by the timeout (the
    # others may have given up waiting for a connection first).
    assert sum("QueryCanceled" in a.json()["detail"] for a in answers) >= 2


def test_a_statement_timeout_is_503_and_the_connection_serves_again(
    server: ApiServer, migrated_db_url: str
) -> None:
    with AggregatesLocked(migrated_db_url):
        started = clock.monotonic()
        response = get(server, "/telemetry/usage", **{"from": TODAY.isoformat()})
        took = clock.monotonic() - started
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "1"
    body = response.json()
    assert body["error"] == "unavailable"
    assert "QueryCanceled" in body["detail"]
    assert "statement timeout" in body["detail"]
    assert STATEMENT_TIMEOUT_MS / 1000 <= took < 5, took
    for _ in range(3):  # both read connections were handed back clean
        assert get(server, "/telemetry/usage").status_code == 200


def test_a_day_aggregated_before_it_ended_is_computed_live(
    server: ApiServer, engine: sa.Engine
) -> None:
    """Yesterday's last hourly run (23:05) left rows without its last hour: until the day
    is aggregated again after midnight, usage computes it from the raw events."""
    ids = {"run_id": "stale-day", "workflow_name": "wf-stale"}
    post(server, [step(at(STALE_DAY, 12), node="n", step=0, cost=0.1, **ids)])
    aggregate(engine, STALE_DAY)
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE telemetry.daily_event_aggregates SET computed_at = :t WHERE day = :d"),
            {"t": at(STALE_DAY, 23, 5), "d": STALE_DAY},
        )
    post(server, [step(at(STALE_DAY, 23, 30), node="n", step=1, cost=0.2, **ids)])
    body = usage(server, STALE_DAY, STALE_DAY)
    assert (body["stored_days"], body["live_days"]) == ([], [STALE_DAY.isoformat()])
    ((group),) = body["groups"]
    assert (group["steps"], group["cost_usd"], group["source"]) == (2, pytest.approx(0.3), "live")
    aggregate(engine, STALE_DAY)  # the 00:30 run: final rows, read from the table again
    body = usage(server, STALE_DAY, STALE_DAY)
    assert (body["stored_days"], body["live_days"]) == ([STALE_DAY.isoformat()], [])
    assert (body["groups"][0]["steps"], body["groups"][0]["source"]) == (2, "stored")


def test_rows_that_are_all_left_of_a_day_are_stored_even_if_not_final(
    server: ApiServer, engine: sa.Engine
) -> None:
    """No raw events to compute from (retention dropped them): the rows are served."""
    old = TODAY - timedelta(days=200)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO telemetry.daily_event_aggregates (day, event_name, workflow_name, "
                "agent_role, model, node, events, distinct_runs, distinct_items, tokens_in, "
                "tokens_out, cost_usd, cost_unknown_steps, tokens_cached_in, errors, "
                "aggregate_version, computed_at) VALUES (:day, 'workflow.step_completed', "
                "'wf-old', '', '', 'n', 3, 1, 0, 1, 1, 0.5, 0, 0, 0, 2, :at)"
            ),
            {"day": old, "at": at(old, 20)},
        )
    body = usage(server, old, old)
    assert (body["stored_days"], body["live_days"]) == ([old.isoformat()], [])
    assert body["totals"]["steps"] == 3


def test_too_many_live_days_is_422_naming_them(server: ApiServer) -> None:
    post(server, [step(at(day, 12), node="n", step=0, cost=0.1, run_id=f"live-{day}")
                  for day in LIVE_DAYS])  # fmt: skip
    first, last = LIVE_DAYS[0], LIVE_DAYS[-1]
    response = get(server, "/telemetry/usage", **{"from": first.isoformat()}, to=last.isoformat())
    assert response.status_code == 422, response.text
    (error,) = response.json()["errors"]
    assert error["loc"] == ["query", "from"]
    assert f"4 days to compute from raw events, at most {MAX_LIVE_DAYS}" in error["msg"]
    assert "Dagster" in error["msg"]
    assert "narrower range" in error["msg"]
    assert all(day.isoformat() in error["msg"] for day in LIVE_DAYS)
    narrower = usage(server, LIVE_DAYS[1], last)
    assert narrower["live_days"] == [d.isoformat() for d in LIVE_DAYS[1:]]
    assert narrower["totals"]["steps"] == 3


def test_runs_count_distinct_runs_started_and_failed_completions(
    server: ApiServer, engine: sa.Engine
) -> None:
    """A run whose run_started was sent twice is one run; a run that failed and then
    succeeded is one run and one failed completion, live and stored alike."""
    wf = "wf-runs"
    twice = {"run_id": "started-twice", "workflow_name": wf}
    retried = {"run_id": "failed-then-succeeded", "workflow_name": wf}
    failed = {"status": "failed", "duration_ms": 5.0}
    succeeded = {"status": "succeeded", "duration_ms": 9.0}
    post(
        server,
        [
            event("workflow.run_started", at(RUNS_DAY, 9), **twice),
            event("workflow.run_started", at(RUNS_DAY, 9, 1), **twice),
            event("workflow.run_started", at(RUNS_DAY, 10), **retried),
            event("workflow.run_completed", at(RUNS_DAY, 10, 5), payload=failed, **retried),
            event("workflow.run_completed", at(RUNS_DAY, 11), payload=succeeded, **retried),
        ],
    )
    live = usage(server, RUNS_DAY, RUNS_DAY, group_by="day,workflow_name")
    assert live["live_days"] == [RUNS_DAY.isoformat()]
    aggregate(engine, RUNS_DAY)
    stored = usage(server, RUNS_DAY, RUNS_DAY, group_by="day,workflow_name")
    assert stored["stored_days"] == [RUNS_DAY.isoformat()]
    for body in (live, stored):
        (group,) = body["groups"]
        assert (group["runs"], group["runs_failed"]) == (2, 1), body
        assert (body["totals"]["runs"], body["totals"]["runs_failed"]) == (2, 1)
    listed = get(server, "/telemetry/runs", workflow_name=wf).json()["runs"]
    assert sorted((r["run_id"], r["status"]) for r in listed) == [
        ("failed-then-succeeded", "succeeded"),
        ("started-twice", "running"),
    ]


def test_a_read_is_one_read_only_snapshot_with_its_timeout(migrated_db_url: str) -> None:
    """What sdk.db.queries' read helpers give every statement of a query (both drivers)."""
    settings = Statement(
        "SELECT current_setting('transaction_isolation') AS isolation, "
        "current_setting('transaction_read_only') AS read_only, "
        "current_setting('statement_timeout') AS timeout, txid_current_if_assigned() AS xid, "
        "pg_current_snapshot()::text AS snapshot"
    )

    def twice() -> Query[list[Row]]:
        first = yield settings
        second = yield settings
        return [*first, *second]

    with psycopg.connect(migrated_db_url, autocommit=True) as conn:
        rows = read_sync(conn, twice(), statement_timeout_ms=1234)
        assert conn.execute("SHOW statement_timeout").fetchone() == ("0",)  # LOCAL only

    async def run_async_side() -> list[Row]:
        async with await psycopg.AsyncConnection.connect(migrated_db_url, autocommit=True) as a:
            return await read_async(a, twice(), statement_timeout_ms=1234)

    for row in [*rows, *asyncio.run(run_async_side())]:
        assert (row["isolation"], row["read_only"], row["timeout"]) == (
            "repeatable read",
            "on",
            "1234ms",
        )
    assert rows[0]["snapshot"] == rows[1]["snapshot"]
    with psycopg.connect(migrated_db_url, autocommit=True) as conn:
        refused = single(Statement("CREATE TABLE public.not_here (x int)"), lambda rows: rows)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            read_sync(conn, refused)
