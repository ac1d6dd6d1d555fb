"""Rules the database enforces itself: append-only events, immutable versions, unique ids."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import errors
from ulid import ULID

from sdk.db.partitions import Month

SQL_INSERT_EVENT = (
    "INSERT INTO telemetry.workflow_events "
    "(event_id, event_time, event_name, ts, payload) "
    "VALUES (%(id)s::text, telemetry.ulid_time(%(id)s::text), "
    "'workflow.run_started', %(ts)s, '{}') "
)


def _ulid_at(moment: datetime) -> str:
    return str(ULID.from_datetime(moment))


@pytest.fixture
def db(migrated_db_url: str) -> psycopg.Connection:
    with psycopg.connect(migrated_db_url, autocommit=True) as conn:
        yield conn


def _insert_event(db: psycopg.Connection, event_id: str, ts: datetime) -> None:
    db.execute(SQL_INSERT_EVENT, {"id": event_id, "ts": ts})


def test_ulid_time_matches_python_ulid_to_the_millisecond(db: psycopg.Connection) -> None:
    for _ in range(50):
        ulid = ULID()
        (decoded,) = db.execute("SELECT telemetry.ulid_time(%s)", [str(ulid)]).fetchone()
        assert decoded == ulid.datetime
        assert db.execute("SELECT telemetry.ulid_time(lower(%s))", [str(ulid)]).fetchone() == (
            decoded,
        )


def test_ulid_time_is_exact_at_the_extremes_and_null_for_non_ulids(
    db: psycopg.Connection,
) -> None:
    (latest,) = db.execute(
        "SELECT telemetry.ulid_time('7ZZZZZZZZZZZZZZZZZZZZZZZZZ')::text"
    ).fetchone()
    assert latest == "10889-08-02 05:31:50.655+00"  # 2**48 - 1 ms, exactly
    (epoch,) = db.execute("SELECT telemetry.ulid_time('00000000000000000000000000')").fetchone()
    assert epoch == datetime(1970, 1, 1, tzinfo=UTC)
    for bad in ("", "short", "0123456789ABCDEFGHJKMNPQRU", "8ZZZZZZZZZZZZZZZZZZZZZZZZZ"):
        assert db.execute("SELECT telemetry.ulid_time(%s)", [bad]).fetchone() == (None,)


def test_same_event_id_with_ts_in_another_month_is_stored_once(db: psycopg.Connection) -> None:
    event_id = _ulid_at(Month.current().start + timedelta(hours=1))
    _insert_event(db, event_id, datetime.now(UTC))
    next_month = Month.current().plus(1).start + timedelta(days=2)
    with pytest.raises(errors.UniqueViolation):
        _insert_event(db, event_id, next_month)
    cursor = db.execute(
        SQL_INSERT_EVENT + "ON CONFLICT DO NOTHING", {"id": event_id, "ts": next_month}
    )
    assert cursor.rowcount == 0
    rows = db.execute(
        "SELECT count(*) FROM telemetry.workflow_events WHERE event_id = %s", [event_id]
    ).fetchone()
    assert rows == (1,)


def test_event_time_must_be_the_instant_in_the_event_id(db: psycopg.Connection) -> None:
    event_id = _ulid_at(datetime.now(UTC))
    with pytest.raises(errors.CheckViolation, match="event_time_from_event_id"):
        db.execute(
            "INSERT INTO telemetry.workflow_events (event_id, event_time, event_name, ts) "
            "VALUES (%s, now() + interval '1 day', 'x', now())",
            [event_id],
        )


def test_event_id_outside_the_live_partitions_is_refused(db: psycopg.Connection) -> None:
    far_future = Month.current().plus(12).start
    with pytest.raises(errors.CheckViolation, match="no partition"):
        _insert_event(db, _ulid_at(far_future), far_future)


def test_events_are_append_only(db: psycopg.Connection) -> None:
    event_id = _ulid_at(datetime.now(UTC))
    _insert_event(db, event_id, datetime.now(UTC))
    with pytest.raises(errors.RestrictViolation, match="append-only: UPDATE"):
        db.execute(
            "UPDATE telemetry.workflow_events SET event_name = 'x' WHERE event_id = %s", [event_id]
        )
    with pytest.raises(errors.RestrictViolation, match="append-only: DELETE"):
        db.execute("DELETE FROM telemetry.workflow_events WHERE event_id = %s", [event_id])
    # The rule holds on the partition itself, not only through the parent.
    with pytest.raises(errors.RestrictViolation):
        db.execute(f"DELETE FROM telemetry.{Month.current().table_name}")


@pytest.mark.parametrize("table", ["work.artifact_versions", "telemetry.workflow_events"])
def test_truncate_is_refused(db: psycopg.Connection, table: str) -> None:
    with pytest.raises(errors.RestrictViolation, match="not allowed"):
        db.execute(f"TRUNCATE {table} CASCADE")


def test_truncate_of_a_single_partition_is_refused(db: psycopg.Connection) -> None:
    with pytest.raises(errors.RestrictViolation, match="not allowed"):
        db.execute(f"TRUNCATE telemetry.{Month.current().table_name}")


def _insert_version(db: psycopg.Connection) -> str:
    artifact_id = str(ULID())
    content = "hello"
    db.execute("INSERT INTO work.artifacts (artifact_id, type) VALUES (%s, 'note')", [artifact_id])
    db.execute(
        "INSERT INTO work.artifact_versions (artifact_id, version, mime_type, size_bytes, "
        "content_hash, storage_backend, inline_content_text) "
        "VALUES (%s, 1, 'text/plain', 5, %s, 'inline', %s)",
        [artifact_id, hashlib.sha256(content.encode()).hexdigest(), content],
    )
    return artifact_id


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("inline_content_text", "tampered"),
        ("content_hash", "0" * 64),
        ("mime_type", "text/html"),
        ("preview_text", "new preview"),
    ],
)
def test_version_content_columns_are_immutable(
    db: psycopg.Connection, column: str, value: str
) -> None:
    artifact_id = _insert_version(db)
    with pytest.raises(errors.RestrictViolation, match="immutable"):
        db.execute(
            f"UPDATE work.artifact_versions SET {column} = %s WHERE artifact_id = %s",
            [value, artifact_id],
        )


def test_kb_flag_and_extracted_fields_may_change(db: psycopg.Connection) -> None:
    artifact_id = _insert_version(db)
    db.execute(
        "UPDATE work.artifact_versions SET is_kb_ingested = true, "
        "extracted_fields = '{\"lines\": 1}' WHERE artifact_id = %s",
        [artifact_id],
    )
    row = db.execute(
        "SELECT is_kb_ingested, extracted_fields FROM work.artifact_versions "
        "WHERE artifact_id = %s",
        [artifact_id],
    ).fetchone()
    assert row == (True, {"lines": 1})


def test_versions_are_deleted_only_on_the_admin_path(db: psycopg.Connection) -> None:
    artifact_id = _insert_version(db)
    with pytest.raises(errors.RestrictViolation, match="admin path"):
        db.execute("DELETE FROM work.artifact_versions WHERE artifact_id = %s", [artifact_id])
    with db.transaction():
        db.execute("SET LOCAL wdp.allow_artifact_delete = 'on'")
        db.execute("DELETE FROM work.artifact_versions WHERE artifact_id = %s", [artifact_id])
    # SET LOCAL ended with the transaction: the guard is back.
    other = _insert_version(db)
    with pytest.raises(errors.RestrictViolation):
        db.execute("DELETE FROM work.artifact_versions WHERE artifact_id = %s", [other])


@pytest.mark.parametrize(
    ("column", "value", "constraint"),
    [
        ("content_hash", "ABC", "content_hash_sha256"),
        ("storage_key", "some/key", "storage_key_matches_backend"),
        ("version", 0, "version_positive"),
    ],
)
def test_version_rows_are_validated(
    db: psycopg.Connection, column: str, value: object, constraint: str
) -> None:
    artifact_id = str(ULID())
    db.execute("INSERT INTO work.artifacts (artifact_id, type) VALUES (%s, 'note')", [artifact_id])
    values = {
        "version": 1,
        "content_hash": "a" * 64,
        "storage_key": None,
        column: value,
    }
    with pytest.raises(errors.CheckViolation, match=constraint):
        db.execute(
            "INSERT INTO work.artifact_versions (artifact_id, version, mime_type, size_bytes, "
            "content_hash, storage_backend, storage_key) "
            "VALUES (%s, %s, 'text/plain', 1, %s, 'inline', %s)",
            [artifact_id, values["version"], values["content_hash"], values["storage_key"]],
        )
