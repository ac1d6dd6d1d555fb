"""The knowledge base's queue on artifact versions (``sdk.artifacts.kb_queue``) and the one
reader of stored content (``open_stored``), on a real Postgres and real blob stores.

The artifact package owns the ``work`` tables: these are the operations the knowledge
base and the Dagster asset and sensor use instead of SQL of their own. Each test has a
fresh migrated database, since each changes what is pending.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from sdk.artifacts import (
    ArtifactIntegrityError,
    ArtifactService,
    StoreMismatch,
    kb_queue,
)
from sdk.artifacts.reader import open_stored
from sdk.artifacts.stores import BlobStore, FileStore
from sdk.kb import IngestOptions, KbError, KnowledgeBase
from tests.integration.kb_support import documents, pending

pytest_plugins = ["tests.integration.artifact_fixtures"]

INLINE_MAX = 64  # anything longer goes to the blob store


@pytest.fixture
def db(kb_engine: sa.Engine) -> sa.Engine:
    """A fresh migrated database of this test alone (artifact_fixtures.kb_engine)."""
    return kb_engine


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path / "store")


@pytest.fixture
def service(db: sa.Engine, store: FileStore) -> ArtifactService:
    return ArtifactService(engine=db, store=store, inline_max_bytes=INLINE_MAX)


def _write_four(service: ArtifactService) -> list[tuple[str, int]]:
    """Four versions, in creation order: inline, stored, and a second version."""
    a = service.write_artifact(type="note", content="short note", tags=["team=a"])
    b = service.write_artifact(type="report", content="a long report " * 20, tags=[])
    a2 = service.create_version(a.artifact_id, content="short note, revised")
    c = service.write_artifact(type="note", content="another note", tags=["x"])
    return [(r.artifact_id, r.version) for r in (a, b, a2, c)]


def test_pending_versions_are_the_unflagged_ones_oldest_first_with_what_reading_needs(
    db: sa.Engine, service: ArtifactService
) -> None:
    keys = _write_four(service)
    with db.connect() as conn:
        listed = kb_queue.pending_versions(conn, limit=10)
        first_two = kb_queue.pending_versions(conn, limit=2)
        summary = kb_queue.pending_summary(conn)
        count = kb_queue.count_pending(conn)
    assert [v.key for v in listed] == keys
    assert [v.key for v in first_two] == keys[:2]
    note, report = listed[0], listed[1]
    assert (note.type, note.tags, note.storage_backend) == ("note", ["team=a"], "inline")
    assert (note.inline_content_text, note.storage_key) == ("short note", None)
    assert (report.type, report.storage_backend) == ("report", "file")
    assert report.storage_key is not None
    assert report.inline_content_text is None
    meta = service.read_artifact(report.artifact_id)
    assert (report.content_hash, report.size_bytes) == (meta.content_hash, meta.size_bytes)
    created = [service.read_artifact(a, v).created_at for a, v in keys]
    assert (count, summary.count) == (4, 4)
    assert (summary.oldest, summary.newest) == (min(created), max(created))


def test_an_empty_queue_has_no_oldest_or_newest(db: sa.Engine) -> None:
    with db.connect() as conn:
        assert kb_queue.pending_versions(conn, limit=10) == []
        assert kb_queue.pending_summary(conn) == kb_queue.PendingSummary(0, None, None)


def test_marking_happens_in_the_callers_transaction(
    db: sa.Engine, service: ArtifactService
) -> None:
    keys = _write_four(service)

    with db.connect() as conn:
        conn.begin()
        assert kb_queue.mark_ingested(conn, keys[:3]) == 3
        assert kb_queue.count_pending(conn) == 1  # visible inside the transaction
        assert pending(db) == 4  # and nowhere else: nothing committed on its own
        conn.rollback()  # the caller rolls back: so does the marking
    assert pending(db) == 4

    with db.begin() as conn:
        kb_queue.mark_ingested(conn, keys[:3])
    assert pending(db) == 1
    assert service.read_artifact(*keys[0]).is_kb_ingested is True
    with db.connect() as conn:
        assert [v.key for v in kb_queue.pending_versions(conn, limit=10)] == keys[3:]
        assert kb_queue.mark_ingested(conn, []) == 0
        assert kb_queue.lock_still_pending(conn, []) == set()


def test_reset_clears_the_flags_of_one_artifact_one_type_or_all(
    db: sa.Engine, service: ArtifactService
) -> None:
    keys = _write_four(service)
    note_id = keys[0][0]

    def mark_all() -> None:
        with db.begin() as conn:
            kb_queue.mark_ingested(conn, keys)

    mark_all()
    with db.begin() as conn:
        assert kb_queue.reset_ingested(conn, artifact_id=note_id) == 2
    assert pending(db) == 2
    mark_all()
    with db.begin() as conn:
        assert kb_queue.reset_ingested(conn, type="report") == 1
        assert [v.key for v in kb_queue.pending_versions(conn, limit=10)] == [keys[1]]
        assert kb_queue.reset_ingested(conn, artifact_id=note_id, type="report") == 0
        assert kb_queue.reset_ingested(conn) == 3  # the one still pending is not counted
    assert pending(db) == 4


def _backend_pid(conn: sa.Connection) -> int:
    return int(conn.execute(sa.select(sa.func.pg_backend_pid())).scalar_one())


def _wait_until_blocked(db: sa.Engine, pid: int) -> None:
    """Until backend ``pid`` waits for a lock (a generous deadline; no timing asserted)."""
    deadline = time.monotonic() + 30
    with db.connect() as watcher:
        while time.monotonic() < deadline:
            state = watcher.execute(
                sa.text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"),
                {"pid": pid},
            ).scalar_one_or_none()
            watcher.rollback()
            if state == "Lock":
                return
            time.sleep(0.05)
    raise AssertionError(f"backend {pid} never waited for a lock")


def test_lock_still_pending_waits_for_a_concurrent_marker_and_leaves_its_versions_out(
    db: sa.Engine, service: ArtifactService
) -> None:
    """What keeps a version from being written twice: the lock waits, Postgres re-checks
    the row once the other transaction commits, and the locks then last until the
    caller's transaction ends."""
    keys = _write_four(service)
    result: dict[str, Any] = {}
    locker_ready = threading.Event()
    locker_done = threading.Event()

    def locker() -> None:
        try:
            with db.begin() as conn:
                result["pid"] = _backend_pid(conn)
                locker_ready.set()
                result["still"] = kb_queue.lock_still_pending(conn, keys)
                locker_done.wait(timeout=60)  # hold the locks while the test looks
        except BaseException as exc:  # surfaced below
            result["error"] = exc
            locker_ready.set()

    with db.begin() as marker:
        kb_queue.mark_ingested(marker, keys[:1])  # holds that row's lock, uncommitted
        thread = threading.Thread(target=locker)
        thread.start()
        assert locker_ready.wait(timeout=30)
        _wait_until_blocked(db, result["pid"])
    # The marker committed: the locker goes on without the version it marked.
    deadline = time.monotonic() + 30
    while "still" not in result and "error" not in result and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        assert "error" not in result, result.get("error")
        assert result["still"] == set(keys[1:])
        with db.connect() as other:
            with pytest.raises(sa.exc.OperationalError) as refused:
                other.execute(
                    sa.text(
                        "SELECT 1 FROM work.artifact_versions "
                        "WHERE artifact_id = :a AND version = :v FOR UPDATE NOWAIT"
                    ),
                    {"a": keys[1][0], "v": keys[1][1]},
                )
            assert isinstance(refused.value.orig, psycopg.errors.LockNotAvailable)
    finally:
        locker_done.set()
        thread.join(timeout=60)


def test_the_queue_reads_through_the_partial_index(db: sa.Engine, service: ArtifactService) -> None:
    """The predicate is written once, as the index ``ix_artifact_versions_kb_pending``
    states it: a differently worded one would scan every version ever written."""
    _write_four(service)
    seen: list[tuple[str, Any]] = []

    def capture(_c: Any, _cur: Any, statement: str, params: Any, *_rest: Any) -> None:
        seen.append((statement, params))

    with db.connect() as conn:
        sa.event.listen(conn, "before_cursor_execute", capture)
        kb_queue.pending_versions(conn, limit=2)
        kb_queue.count_pending(conn)
        kb_queue.pending_summary(conn)
        sa.event.remove(conn, "before_cursor_execute", capture)
        conn.exec_driver_sql("SET enable_seqscan = off")
        for statement, params in seen:
            plan = conn.exec_driver_sql(f"EXPLAIN {statement}", params).scalars().all()
            assert any("ix_artifact_versions_kb_pending" in line for line in plan), plan


# --- reading content: open_stored, shared by open_content and KB ingestion ---------------


def _stored(db: sa.Engine, key: tuple[str, int]) -> kb_queue.PendingVersion:
    with db.connect() as conn:
        return next(v for v in kb_queue.pending_versions(conn, limit=100) if v.key == key)


def test_open_stored_verifies_and_names_what_is_wrong(
    db: sa.Engine, service: ArtifactService, store: FileStore, make_store: Callable[..., BlobStore]
) -> None:
    keys = _write_four(service)
    inline, blob = _stored(db, keys[0]), _stored(db, keys[1])
    with open_stored(inline, store) as reader:
        assert reader.readall() == b"short note"
    with open_stored(blob, store) as reader:
        assert reader.readall() == b"a long report " * 20

    with pytest.raises(StoreMismatch, match="in the file store, but the configured store is s3"):
        open_stored(blob, make_store("s3"))

    assert blob.storage_key is not None
    path = store.root / blob.storage_key
    path.chmod(0o644)
    path.write_bytes(b"A long report " + b"a long report " * 19)
    with pytest.raises(ArtifactIntegrityError, match="sha256") as corrupt:
        open_stored(blob, store).readall()
    assert not isinstance(corrupt.value, StoreMismatch)

    store.delete(blob.storage_key)
    with pytest.raises(ArtifactIntegrityError, match="is missing from the store") as missing:
        open_stored(blob, store)
    assert not isinstance(missing.value, StoreMismatch)
    # The service reads through the same function: the same errors.
    with pytest.raises(ArtifactIntegrityError, match="is missing from the store"):
        service.read_content(*keys[1])


def test_a_version_in_another_store_fails_the_kb_batch_and_a_corrupt_one_is_skipped(
    db: sa.Engine, service: ArtifactService, store: FileStore, make_store: Callable[..., BlobStore]
) -> None:
    """A store mismatch is configuration (ARTIFACT_STORE), so nothing is marked; corrupt
    content is the version's own fault, so it is recorded and not taken again."""
    keys = _write_four(service)
    options = IngestOptions(batch_size=10)
    elsewhere = KnowledgeBase(engine=db, store=make_store("s3"), options=options)
    with pytest.raises(KbError, match=r"cannot read its store: .* configured store is s3"):
        elsewhere.ingest()
    assert pending(db) == 4
    assert documents(db) == {}

    blob = _stored(db, keys[1])
    assert blob.storage_key is not None
    (store.root / blob.storage_key).chmod(0o644)
    (store.root / blob.storage_key).write_bytes(b"x" * blob.size_bytes)
    report = KnowledgeBase(engine=db, store=store, options=options).ingest()
    assert (report.versions, report.skipped, report.pending) == (4, 1, 0)
    reason = documents(db)[keys[1]].skipped_reason
    assert reason is not None
    assert reason.startswith("content unreadable: ")
    assert "sha256" in reason
