"""One database-error vocabulary, on a real Postgres: artifacts, the knowledge base,
partition maintenance and the ingest API answer a failure the same way.

The statement timeouts are real: connections opened with ``statement_timeout`` in
their options, a statement that waits on a lock another connection holds, and the
server cancelling it (SQLSTATE 57014) - through each package's own code path.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import httpx
import psycopg
import pytest
import sqlalchemy as sa

from ingest_api.errors import database_error
from sdk.artifacts import ArtifactService
from sdk.artifacts.errors import DatabaseUnavailable
from sdk.artifacts.service import _translate as artifacts_translate
from sdk.artifacts.stores import FileStore
from sdk.db import partitions
from sdk.db.engine import create_engine
from sdk.db.errors import DbFailure, classify
from sdk.db.partitions import Month, ensure_partitions, list_partitions
from sdk.kb import KnowledgeBase
from sdk.kb.errors import KbUnavailable
from sdk.kb.service import _translate as kb_translate
from sdk.telemetry.values import new_ulid
from tests.integration.kb_support import documents, pending
from tests.integration.read_support import READ, READ_KEY
from tests.support.servers import free_port, run_api

TIMEOUT_MS = 1000  # far above what an unblocked statement here takes


def with_statement_timeout(url: str, ms: int = TIMEOUT_MS) -> str:
    """``url`` whose connections start with ``SET statement_timeout``."""
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query), ("options", f"-c statement_timeout={ms}")]
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


@contextmanager
def locked(url: str, table: str) -> Iterator[None]:
    """``table`` held in ACCESS EXCLUSIVE mode by another connection until the block ends."""
    with psycopg.connect(url) as holder:
        holder.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        try:
            yield
        finally:
            holder.rollback()


@pytest.fixture(scope="module")
def slow_url(migrated_db_url: str) -> str:
    return with_statement_timeout(migrated_db_url)


@pytest.fixture(scope="module")
def slow_engine(slow_url: str) -> Iterator[sa.Engine]:
    eng = create_engine(slow_url)
    yield eng
    eng.dispose()


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path / "blobs")


def _step_event() -> dict[str, Any]:
    return {
        "event_id": new_ulid(),
        "event_name": "workflow.run_started",
        "ts": datetime.now(UTC).isoformat(),
        "run_id": "run-timeout",
        "payload": {},
    }


# --- a statement timeout through each package's own code ------------------------------


def test_artifacts_call_a_statement_timeout_retryable(
    engine: sa.Engine, slow_engine: sa.Engine, migrated_db_url: str, store: FileStore
) -> None:
    written = ArtifactService(engine=engine, store=store).write_artifact(type="note", content="x")
    service = ArtifactService(engine=slow_engine, store=store)
    with locked(migrated_db_url, "work.artifacts"), pytest.raises(DatabaseUnavailable) as caught:
        service.read_artifact(written.artifact_id)
    assert "retry it" in str(caught.value)
    assert isinstance(cause := caught.value.__cause__, sa.exc.DBAPIError)
    assert classify(cause) is DbFailure.RETRYABLE
    assert service.read_artifact(written.artifact_id).version == 1


def test_kb_search_calls_a_statement_timeout_retryable(
    slow_engine: sa.Engine, migrated_db_url: str, store: FileStore
) -> None:
    kb = KnowledgeBase(engine=slow_engine, store=store)
    with locked(migrated_db_url, "kb.chunks"), pytest.raises(KbUnavailable) as caught:
        kb.search("anything")
    assert "retry it" in str(caught.value)
    assert isinstance(cause := caught.value.__cause__, sa.exc.DBAPIError)
    assert classify(cause) is DbFailure.RETRYABLE


def test_a_statement_timeout_fails_the_kb_batch_instead_of_skipping_its_versions(
    engine: sa.Engine, slow_engine: sa.Engine, migrated_db_url: str, store: FileStore
) -> None:
    """A timeout is not the version's fault: recording the versions as "could not be
    stored" would drop them from the knowledge base for good."""
    artifacts = ArtifactService(engine=engine, store=store)
    for n in range(3):
        artifacts.write_artifact(type="note", content=f"timeout notes number {n}")
    before = pending(engine)
    docs_before = len(documents(engine))
    kb = KnowledgeBase(engine=slow_engine, store=store)
    with locked(migrated_db_url, "kb.chunks"), pytest.raises(KbUnavailable, match="retry it"):
        kb.ingest()
    assert pending(engine) == before
    assert len(documents(engine)) == docs_before
    report = kb.ingest()  # once the lock is gone: everything, none of it skipped
    assert report.pending == 0
    assert report.versions == before
    assert not any(
        (d.skipped_reason or "").startswith("could not be stored")
        for d in documents(engine).values()
    )


def test_partition_maintenance_retries_a_statement_timeout(
    slow_engine: sa.Engine, migrated_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    month = Month(2090, 1)
    backoffs: list[float] = []
    with psycopg.connect(migrated_db_url) as holder:
        holder.execute("LOCK TABLE telemetry.workflow_events IN ACCESS EXCLUSIVE MODE")

        def release_then_sleep(seconds: float) -> None:  # the backoff: the lock goes away
            backoffs.append(seconds)
            holder.rollback()

        monkeypatch.setattr(partitions.time, "sleep", release_then_sleep)
        # lock_timeout above the statement timeout: the statement timeout fires first.
        created = ensure_partitions(slow_engine, [month], lock_timeout_ms=10 * TIMEOUT_MS)
    assert created == [month]
    assert len(backoffs) == 1
    with slow_engine.connect() as conn:
        assert month in list_partitions(conn)


def test_the_ingest_api_answers_a_statement_timeout_with_503(
    slow_url: str, migrated_db_url: str, tmp_path: Path
) -> None:
    partition = f"telemetry.{Month.current().table_name}"
    with run_api(slow_url, tmp_path / "api.log") as api:
        with locked(migrated_db_url, partition):
            single = httpx.post(
                f"{api.base_url}/telemetry/events", json=_step_event(), headers=api.auth
            )
            batch = httpx.post(
                f"{api.base_url}/telemetry/events/batch",
                json={"events": [_step_event(), _step_event()]},
                headers=api.auth,
            )
        after = httpx.post(f"{api.base_url}/telemetry/events", json=_step_event(), headers=api.auth)
    for response in (single, batch):
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "1"
        assert response.json()["error"] == "unavailable"
        assert "QueryCanceled" in response.json()["detail"]
    assert after.status_code == 201


def test_the_ingest_api_on_an_unmigrated_database_says_so_with_503(
    empty_db_url: str, tmp_path: Path
) -> None:
    with run_api(empty_db_url, tmp_path / "api.log", wait_for="/healthz") as api:
        response = httpx.post(
            f"{api.base_url}/telemetry/events", json=_step_event(), headers=api.auth
        )
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "not_migrated"
    assert "wdp migrate" in response.json()["detail"]
    assert int(response.headers["retry-after"]) > 0


@pytest.mark.parametrize("path", ["/telemetry/runs", "/telemetry/runs/r1", "/telemetry/usage"])
def test_the_read_endpoints_answer_a_statement_timeout_with_503(
    slow_url: str, migrated_db_url: str, tmp_path: Path, path: str
) -> None:
    partition = f"telemetry.{Month.current().table_name}"
    # The read endpoints set their own statement timeout (SET LOCAL), 10 s by default.
    env = {"READ_API_KEYS": READ_KEY, "READ_STATEMENT_TIMEOUT_MS": str(TIMEOUT_MS)}
    with run_api(slow_url, tmp_path / "api.log", extra_env=env) as api:
        with locked(migrated_db_url, partition):
            response = httpx.get(f"{api.base_url}{path}", headers=READ, timeout=30)
        after = httpx.get(f"{api.base_url}{path}", headers=READ, timeout=30)
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "unavailable"
    assert "aborted the read (QueryCanceled" in response.json()["detail"]
    assert response.headers["retry-after"] == "1"
    assert after.status_code in (200, 404), after.text


def test_the_read_endpoints_on_an_unmigrated_database_say_so_with_503(
    empty_db_url: str, tmp_path: Path
) -> None:
    env = {"READ_API_KEYS": READ_KEY}
    with run_api(empty_db_url, tmp_path / "api.log", extra_env=env, wait_for="/healthz") as api:
        for path in ("/telemetry/runs", "/telemetry/runs/r1", "/telemetry/usage"):
            response = httpx.get(f"{api.base_url}{path}", headers=READ, timeout=30)
            assert response.status_code == 503, response.text
            assert response.json()["error"] == "not_migrated"
            assert "wdp migrate" in response.json()["detail"]


def test_the_read_endpoints_answer_503_while_the_database_is_unreachable(tmp_path: Path) -> None:
    # Nothing listens there: every connection attempt of the pool fails.
    url = f"postgresql://wdp@127.0.0.1:{free_port()}/wdp?connect_timeout=1"
    env = {"READ_API_KEYS": READ_KEY}
    with run_api(url, tmp_path / "api.log", extra_env=env, wait_for="/healthz") as api:
        response = httpx.get(f"{api.base_url}/telemetry/runs", headers=READ, timeout=30)
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "unavailable"


# --- the same real exception, through every package's translation ----------------------


def _raise_in(url: str, *statements: str) -> Callable[[], None]:
    def run() -> None:
        eng = create_engine(url)
        try:
            with eng.begin() as conn:
                for statement in statements:
                    conn.exec_driver_sql(statement)
        finally:
            eng.dispose()

    return run


def _raw_in(url: str, *statements: str) -> Callable[[], None]:
    def run() -> None:
        with psycopg.connect(url) as conn:
            for statement in statements:
                conn.execute(statement)

    return run


def _lock_timeout(url: str) -> Callable[[], None]:
    def run() -> None:
        table = f"lock_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(url, autocommit=True) as setup:
            setup.execute(f"CREATE TABLE {table} (x int)")
        with locked(url, table):
            _raise_in(url, "SET lock_timeout = '10ms'", f"LOCK TABLE {table}")()

    return run


def _connection_refused() -> None:
    psycopg.connect(f"postgresql://nobody@127.0.0.1:{free_port()}/none", connect_timeout=5)


CASES: dict[str, tuple[Callable[[str], Callable[[], None]], DbFailure]] = {
    "statement timeout (SQLAlchemy)": (
        lambda url: _raise_in(url, "SET statement_timeout = '10ms'", "SELECT pg_sleep(1)"),
        DbFailure.RETRYABLE,
    ),
    "statement timeout (psycopg)": (
        lambda url: _raw_in(url, "SET statement_timeout = '10ms'", "SELECT pg_sleep(1)"),
        DbFailure.RETRYABLE,
    ),
    "lock timeout": (_lock_timeout, DbFailure.RETRYABLE),
    "terminated backend": (
        lambda url: _raise_in(url, "SELECT pg_terminate_backend(pg_backend_pid())"),
        DbFailure.UNAVAILABLE,
    ),
    "connection refused": (lambda url: _connection_refused, DbFailure.UNAVAILABLE),
    "undefined table": (
        lambda url: _raise_in(url, "SELECT * FROM public.nothing_here"),
        DbFailure.NOT_MIGRATED,
    ),
    "undefined schema": (
        lambda url: _raw_in(url, "SELECT * FROM nowhere.nothing"),
        DbFailure.NOT_MIGRATED,
    ),
    "bad value": (lambda url: _raise_in(url, "SELECT 'x'::int"), DbFailure.REFUSED),
    "unique violation": (
        lambda url: _raise_in(
            url,
            "CREATE TEMP TABLE u (x int PRIMARY KEY)",
            "INSERT INTO u VALUES (1)",
            "INSERT INTO u VALUES (1)",
        ),
        DbFailure.REFUSED,
    ),
    "trigger RAISE": (
        lambda url: _raw_in(url, "DO $$ BEGIN RAISE EXCEPTION 'refused by a rule'; END $$"),
        DbFailure.REFUSED,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_every_package_derives_its_answer_from_the_same_class(
    case: str, migrated_db_url: str
) -> None:
    make, expected = CASES[case]
    with pytest.raises((sa.exc.DBAPIError, psycopg.Error)) as caught:
        make(migrated_db_url)()
    exc = caught.value
    assert classify(exc) is expected
    not_the_callers_fault = expected is not DbFailure.REFUSED
    assert isinstance(artifacts_translate(exc), DatabaseUnavailable) is not_the_callers_fault
    assert isinstance(kb_translate(exc), KbUnavailable) is not_the_callers_fault
    http = database_error(exc)
    assert http.status_code == (503 if not_the_callers_fault else 422)
    assert ("Retry-After" in http.headers) is not_the_callers_fault
    if expected is DbFailure.RETRYABLE:
        assert "retry" in str(artifacts_translate(exc))
        assert "retry" in str(kb_translate(exc))
        assert "retry" in http.detail
    if expected is DbFailure.NOT_MIGRATED:
        assert "wdp migrate" in str(artifacts_translate(exc))
        assert "wdp migrate" in str(kb_translate(exc))
        assert "wdp migrate" in http.detail


def test_a_missing_partition_and_a_check_violation_are_told_apart(migrated_db_url: str) -> None:
    """Both are SQLSTATE 23514; only the first is the month's (503, retry), the second
    the row's (refused)."""
    from sdk.db.errors import no_partition_for_row, refused_row

    conninfo = migrated_db_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE probe (t int, CONSTRAINT small CHECK (t < 5)) PARTITION BY RANGE (t);"
            "CREATE TABLE probe_1 PARTITION OF probe FOR VALUES FROM (0) TO (10)"
        )
        errors = []
        for value in (20, 7):
            with pytest.raises(psycopg.errors.CheckViolation) as info:
                conn.execute("INSERT INTO probe VALUES (%s)", [value])
            errors.append(info.value)
    no_partition, check = errors
    assert no_partition_for_row(no_partition)
    assert not refused_row(no_partition)
    assert not no_partition_for_row(check)
    assert refused_row(check)
