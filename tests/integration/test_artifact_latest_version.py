"""``work.artifacts.latest_version`` is guarded by the database (migration 0004).

It names the newest version and the next write takes ``latest_version + 1``, so set back
by SQL it made every later write of the artifact fail with a duplicate key, forever.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from psycopg import errors
from ulid import ULID

from sdk.artifacts import ArtifactService
from sdk.artifacts.stores import FileStore

INSERT_VERSION = (
    "INSERT INTO work.artifact_versions (artifact_id, version, mime_type, size_bytes, "
    "content_hash, storage_backend, inline_content_text) "
    "VALUES (%s, %s, 'text/plain', 1, %s, 'inline', 'x')"
)
HASH = hashlib.sha256(b"x").hexdigest()


@pytest.fixture
def service(engine: sa.Engine, tmp_path: Path) -> ArtifactService:
    return ArtifactService(engine=engine, store=FileStore(tmp_path / "store"))


@pytest.fixture
def db(migrated_db_url: str) -> psycopg.Connection:
    with psycopg.connect(migrated_db_url, autocommit=True) as conn:
        yield conn


def _latest(db: psycopg.Connection, artifact_id: str) -> int:
    row = db.execute(
        "SELECT latest_version FROM work.artifacts WHERE artifact_id = %s", [artifact_id]
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_setting_latest_version_back_is_refused_and_writes_go_on(
    service: ArtifactService, db: psycopg.Connection
) -> None:
    first = service.write_artifact(type="plan", content="version 1")
    for n in range(2, 82):
        service.create_version(first.artifact_id, content=f"version {n}")
    assert _latest(db, first.artifact_id) == 81

    with pytest.raises(errors.RestrictViolation, match="cannot move back from 81 to 1"):
        db.execute(
            "UPDATE work.artifacts SET latest_version = 1 WHERE artifact_id = %s",
            [first.artifact_id],
        )
    assert _latest(db, first.artifact_id) == 81
    nxt = service.create_version(first.artifact_id, content="version 82")
    assert (nxt.version, nxt.latest_version) == (82, 82)


def test_latest_version_cannot_point_at_a_version_that_does_not_exist(
    service: ArtifactService, db: psycopg.Connection
) -> None:
    first = service.write_artifact(type="plan", content="only version")
    with pytest.raises(errors.RestrictViolation, match="cannot be 2: there is no such version"):
        db.execute(
            "UPDATE work.artifacts SET latest_version = 2 WHERE artifact_id = %s",
            [first.artifact_id],
        )
    assert service.read_artifact(first.artifact_id).version == 1


def test_other_columns_stay_updatable_and_an_unchanged_latest_version_passes(
    service: ArtifactService, db: psycopg.Connection
) -> None:
    first = service.write_artifact(type="plan", content="v1", tags=["a"])
    db.execute(
        "UPDATE work.artifacts SET tags = '[\"b\"]', latest_version = latest_version "
        "WHERE artifact_id = %s",
        [first.artifact_id],
    )
    assert service.read_artifact(first.artifact_id).tags == ["b"]


def test_moving_forward_to_a_version_inserted_first_is_the_write_paths_order(
    service: ArtifactService, db: psycopg.Connection
) -> None:
    first = service.write_artifact(type="plan", content="v1")
    with db.transaction():
        db.execute(INSERT_VERSION, [first.artifact_id, 2, HASH])
        db.execute(
            "UPDATE work.artifacts SET latest_version = 2 WHERE artifact_id = %s",
            [first.artifact_id],
        )
    assert service.read_artifact(first.artifact_id).version == 2


def test_a_new_artifact_row_is_checked_at_commit(db: psycopg.Connection) -> None:
    # The write path inserts the artifact (already saying latest_version = 1) before its
    # version 1: the check waits for COMMIT, when the version rows are in.
    ok = str(ULID())
    with db.transaction():
        db.execute(
            "INSERT INTO work.artifacts (artifact_id, type, latest_version) VALUES (%s, 'n', 2)",
            [ok],
        )
        db.execute(INSERT_VERSION, [ok, 1, HASH])
        db.execute(INSERT_VERSION, [ok, 2, HASH])
    assert _latest(db, ok) == 2

    dangling = str(ULID())
    with pytest.raises(errors.RestrictViolation, match="latest_version 3, but its highest ver"):
        db.execute(
            "INSERT INTO work.artifacts (artifact_id, type, latest_version) VALUES (%s, 'n', 3)",
            [dangling],
        )
    behind = str(ULID())

    def insert_behind() -> None:
        with db.transaction():  # the COMMIT is what fails
            db.execute("INSERT INTO work.artifacts (artifact_id, type) VALUES (%s, 'n')", [behind])
            db.execute(INSERT_VERSION, [behind, 1, HASH])

    with pytest.raises(errors.RestrictViolation, match="latest_version 0, but its highest ver"):
        insert_behind()
    found = db.execute(
        "SELECT count(*) FROM work.artifacts WHERE artifact_id IN (%s, %s)", [dangling, behind]
    ).fetchone()
    assert found == (0,)


def test_an_artifact_without_versions_may_say_zero(db: psycopg.Connection) -> None:
    empty = str(ULID())
    db.execute("INSERT INTO work.artifacts (artifact_id, type) VALUES (%s, 'n')", [empty])
    assert _latest(db, empty) == 0
