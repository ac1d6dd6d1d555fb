"""Retention against late events, with deterministic interleavings on a real Postgres.

Each test stops retention at a named step (``apply_retention(..., pause=...)``) or holds
an ingest transaction open across an aggregation, and writes a late January event from
another connection there. Whatever the interleaving, the event ends up either refused
(its writer gets an error) or counted in ``daily_event_aggregates``; it is never dropped
without being aggregated.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from platform_defs.assets.retention import Candidate, RetentionBlocked, apply_retention
from sdk.db.partitions import Month, list_partitions
from sdk.telemetry.values import new_ulid
from tests.integration.test_dagster_assets import JAN, aggregate
from tests.integration.test_dagster_assets import db as db  # the same fixture: a migrated db
from tests.support.servers import run_api

FEB, MAR = Month(2026, 2), Month(2026, 3)
NOW = datetime(2026, 6, 15, 12, tzinfo=UTC)  # January and February are past 90 days
JANUARY = "telemetry.workflow_events_p2026_01"

INSERT = (
    "INSERT INTO {table} (event_id, event_time, event_name, ts, run_id) VALUES "
    "(CAST(:id AS text), telemetry.ulid_time(CAST(:id AS text)), 'workflow.run_started', "
    ":ts, :run)"
)


def insert(
    conn: sa.Connection,
    ts: str,
    run: str,
    *,
    minted: str | None = None,
    table: str = "telemetry.workflow_events",
) -> None:
    """One run_started event at ``ts``, its id (so its partition) from ``minted`` or ``ts``."""
    moment, mint = (datetime.fromisoformat(t).replace(tzinfo=UTC) for t in (ts, minted or ts))
    conn.execute(
        sa.text(INSERT.format(table=table)),
        {"id": new_ulid(int(mint.timestamp() * 1000)), "ts": moment, "run": run},
    )


def day_total(eng: sa.Engine, day: str) -> int:
    with eng.connect() as conn:
        return int(
            conn.execute(
                sa.text(
                    "SELECT coalesce(sum(events), 0) FROM telemetry.daily_event_aggregates "
                    "WHERE day = CAST(:d AS date)"
                ),
                {"d": day},
            ).scalar_one()
        )


def runs(eng: sa.Engine) -> set[str]:
    with eng.connect() as conn:
        return set(conn.exec_driver_sql("SELECT run_id FROM telemetry.workflow_events").scalars())


def attached(eng: sa.Engine) -> list[Month]:
    with eng.connect() as conn:
        return list_partitions(conn)


def retention(eng: sa.Engine, pause: Callable[[str, Candidate], None] | None = None) -> list[str]:
    return [str(d["month"]) for d in apply_retention(eng, NOW, 90, pause=pause)]


def test_an_event_committed_after_its_day_was_aggregated_blocks_retention(
    db: tuple[str, sa.Engine],
) -> None:
    """The ingest transaction starts (received_at) before the aggregation and commits
    after it read the day: by timestamps the day looks covered, by counts it is not."""
    url, eng = db
    with eng.begin() as conn:
        insert(conn, "2026-01-10T10:00:00", "seen")
    with eng.connect() as ingest:
        ingest.begin()
        insert(ingest, "2026-01-10T11:00:00", "late")
        assert aggregate(url, "2026-01-10").success  # does not see the uncommitted event
        ingest.commit()
    assert day_total(eng, "2026-01-10") == 1

    with pytest.raises(RetentionBlocked, match="2026-01: 2026-01-10"):
        retention(eng)
    assert JAN in attached(eng)
    assert {"seen", "late"} <= runs(eng)

    assert aggregate(url, "2026-01-10").success
    assert retention(eng) == ["2026-01", "2026-02"]
    assert day_total(eng, "2026-01-10") == 2


def test_a_late_event_between_the_check_and_the_detach_is_found_and_the_month_kept(
    db: tuple[str, sa.Engine],
) -> None:
    url, eng = db
    with eng.begin() as conn:
        insert(conn, "2026-01-10T10:00:00", "seen")
    assert aggregate(url, "2026-01-10").success

    def late_event(step: str, candidate: Candidate) -> None:
        if step == "checked" and candidate.month == JAN:
            with eng.begin() as conn:
                insert(conn, "2026-01-20T10:00:00", "late")

    with pytest.raises(RetentionBlocked, match=r"2026-01: 2026-01-20.*\n?") as info:
        retention(eng, late_event)
    assert "arrived during the detach" in str(info.value)
    assert JAN in attached(eng)  # attached again, and writable through the parent
    with eng.begin() as conn:
        insert(conn, "2026-01-21T10:00:00", "after")
    assert {"seen", "late", "after"} <= runs(eng)
    with pytest.raises(DBAPIError, match="append-only"), eng.begin() as conn:
        conn.exec_driver_sql("DELETE FROM telemetry.workflow_events WHERE run_id = 'late'")

    for day in ("2026-01-20", "2026-01-21"):
        assert aggregate(url, day).success
    assert retention(eng) == ["2026-01", "2026-02"]
    assert [day_total(eng, d) for d in ("2026-01-10", "2026-01-20", "2026-01-21")] == [1, 1, 1]


def _wait_until_blocked(eng: sa.Engine, pid: int) -> None:
    """Until backend ``pid`` waits for a heavyweight lock (a state, not a duration)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with eng.connect() as conn:
            waiting = conn.execute(
                sa.text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"),
                {"pid": pid},
            ).scalar_one_or_none()
        if waiting == "Lock":
            return
        time.sleep(0.02)
    raise AssertionError(f"backend {pid} never blocked on a lock")


def test_writers_are_refused_once_the_month_is_detached(db: tuple[str, sa.Engine]) -> None:
    """Through the parent a detached month takes no rows; a writer on the detached table
    itself waits for retention's lock, then finds the table gone. Neither row is lost
    silently: each writer gets an error."""
    url, eng = db
    with eng.begin() as conn:
        insert(conn, "2026-01-10T10:00:00", "seen")
    assert aggregate(url, "2026-01-10").success
    errors: dict[str, BaseException] = {}
    writers: list[threading.Thread] = []

    def direct_write(pid_box: list[int]) -> None:
        with eng.connect() as conn:
            pid_box.append(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
            conn.commit()
            try:
                with conn.begin():
                    insert(conn, "2026-01-25T10:00:00", "direct", table=JANUARY)
            except DBAPIError as exc:
                errors["direct"] = exc

    def interleave(step: str, candidate: Candidate) -> None:
        if candidate.month != JAN:
            return
        if step == "detached":
            try:
                with eng.begin() as conn:
                    insert(conn, "2026-01-24T10:00:00", "routed")
            except DBAPIError as exc:
                errors["routed"] = exc
        elif step == "locked":
            pid: list[int] = []
            writer = threading.Thread(target=direct_write, args=(pid,))
            writers.append(writer)
            writer.start()
            while not pid:
                time.sleep(0.01)
            _wait_until_blocked(eng, pid[0])

    assert retention(eng, interleave) == ["2026-01", "2026-02"]
    (writer,) = writers
    writer.join(timeout=30)
    assert not writer.is_alive()
    assert "no partition of relation" in str(errors["routed"])
    assert "does not exist" in str(errors["direct"]), errors["direct"]
    assert runs(eng) == set()
    assert day_total(eng, "2026-01-10") == 1


def test_a_month_left_detached_still_counts_for_the_days_it_shares(
    db: tuple[str, sa.Engine],
) -> None:
    """2026-02-01 has one event in each of January's and February's tables. A run that
    stopped after detaching January leaves it detached; the next run must still see both
    events behind the aggregate (else February's day looks over-counted and blocks)."""
    url, eng = db
    with eng.begin() as conn:
        insert(conn, "2026-02-01T10:00:00", "in-january", minted="2026-01-31T23:00:00")
        insert(conn, "2026-02-01T11:00:00", "in-february")
    assert aggregate(url, "2026-02-01").success
    assert day_total(eng, "2026-02-01") == 2
    with eng.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
            f"ALTER TABLE telemetry.workflow_events DETACH PARTITION {JANUARY} CONCURRENTLY"
        )

    assert retention(eng) == ["2026-01", "2026-02"]
    assert day_total(eng, "2026-02-01") == 2
    live = attached(eng)
    assert JAN not in live
    assert FEB not in live
    assert MAR in live


def test_a_day_re_aggregated_while_a_month_was_left_detached_can_be_made_whole(
    db: tuple[str, sa.Engine],
) -> None:
    """Aggregation reads the parent, so re-aggregating 2026-02-01 while January's table is
    left detached counts one event of two. The next retention run attaches January
    again, names the day, and once it is re-materialised drops both months."""
    url, eng = db
    with eng.begin() as conn:
        insert(conn, "2026-02-01T10:00:00", "in-january", minted="2026-01-31T23:00:00")
        insert(conn, "2026-02-01T11:00:00", "in-february")
    with eng.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
            f"ALTER TABLE telemetry.workflow_events DETACH PARTITION {JANUARY} CONCURRENTLY"
        )
    assert aggregate(url, "2026-02-01").success
    assert day_total(eng, "2026-02-01") == 1  # January's event was out of sight

    with pytest.raises(RetentionBlocked, match="2026-02-01"):
        retention(eng)
    assert JAN in attached(eng)
    assert aggregate(url, "2026-02-01").success
    assert day_total(eng, "2026-02-01") == 2
    assert retention(eng) == ["2026-01", "2026-02"]


def test_the_api_answers_503_while_a_month_is_detached_and_stores_the_event_once_it_is_back(
    db: tuple[str, sa.Engine], tmp_path: Path
) -> None:
    """While retention has a month detached, an event for it is not yet "too old": a 422
    would make the client drop an event the month may take back (here it does)."""
    url, eng = db
    with eng.begin() as conn:
        insert(conn, "2026-01-10T10:00:00", "seen")
    assert aggregate(url, "2026-01-10").success
    minted = int(datetime(2026, 1, 25, tzinfo=UTC).timestamp() * 1000)
    body = {
        "event_id": new_ulid(minted),
        "event_name": "workflow.run_started",
        "ts": "2026-01-25T10:00:00Z",
        "run_id": "posted-while-detached",
    }
    answers: list[httpx.Response] = []
    with run_api(url, tmp_path / "api.log") as api:

        def step(name: str, candidate: Candidate) -> None:
            if candidate.month != JAN:
                return
            if name == "checked":
                with eng.begin() as conn:
                    insert(conn, "2026-01-20T10:00:00", "late")  # makes retention keep it
            if name == "detached":
                # Twice: first through the API's cached window (the insert finds no
                # partition), then with the window refreshed (the month is detached).
                for _ in range(2):
                    answers.append(
                        httpx.post(f"{api.base_url}/telemetry/events", json=body, headers=api.auth)
                    )

        with pytest.raises(RetentionBlocked):
            retention(eng, step)
        assert [a.status_code for a in answers] == [503, 503]
        assert all(int(a.headers["retry-after"]) >= 1 for a in answers)
        assert JAN in attached(eng)
        retried = httpx.post(f"{api.base_url}/telemetry/events", json=body, headers=api.auth)
        assert retried.status_code == 201
    assert "posted-while-detached" in runs(eng)
