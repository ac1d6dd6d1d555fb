"""Knowledge-base ingestion against a real Postgres and real blob stores (files, S3/moto).

Each test gets its own migrated database: ingestion changes what is pending.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sdk.artifacts import ArtifactService, StorageUnavailable
from sdk.artifacts.stores import BlobStore, FileStore
from sdk.db.engine import create_engine
from sdk.kb import (
    EmbeddingsUnavailable,
    IngestOptions,
    KbError,
    KbUnavailable,
    KnowledgeBase,
)
from tests.integration.kb_support import (
    KB_INLINE_MAX,
    LONG_MARKDOWN,
    chunk_count,
    documents,
    pending,
    write_mixed_set,
)
from tests.support.embedders import HashingEmbedder
from tests.support.servers import free_port

pytest_plugins = ["tests.integration.artifact_fixtures"]

OPTIONS = IngestOptions(chunk_size=400, overlap=60, batch_size=4)


@pytest.fixture
def artifacts(kb_engine: sa.Engine, artifact_store: BlobStore) -> ArtifactService:
    """Artifacts on the test's database; content above 2 KiB goes to the blob store."""
    return ArtifactService(engine=kb_engine, store=artifact_store, inline_max_bytes=KB_INLINE_MAX)


@pytest.fixture
def kb(kb_engine: sa.Engine, artifact_store: BlobStore) -> KnowledgeBase:
    """The knowledge base on the same database and store, full-text only."""
    return KnowledgeBase(engine=kb_engine, store=artifact_store, options=OPTIONS)


def test_mixed_versions_become_documents_and_chunks_once(
    artifacts: ArtifactService, kb: KnowledgeBase, kb_engine: sa.Engine
) -> None:
    written = write_mixed_set(artifacts)
    with kb_engine.connect() as conn:
        backends = dict(
            conn.execute(
                sa.text("SELECT artifact_id, storage_backend::text FROM work.artifact_versions")
            ).fetchall()
        )
    assert backends[written["markdown"].artifact_id] != "inline"  # object-stored
    assert backends[written["text"].artifact_id] == "inline"

    batches: list[int] = []
    report = kb.ingest(on_batch=lambda b: batches.append(b.versions))

    assert (report.versions, report.batches, report.pending) == (6, 2, 0)
    assert batches == [4, 2]
    docs = documents(kb_engine)
    assert len(docs) == 6
    by_label = {label: docs[(w.artifact_id, w.version)] for label, w in written.items()}
    assert by_label["markdown"].title == "Incident review"
    assert by_label["markdown"].chunk_count > 5  # ~10 KB in 400-character chunks
    assert by_label["markdown"].tags == ["team=payments"]
    assert by_label["markdown"].type == "report"
    assert by_label["json"].title == "Deployment plan"
    assert by_label["html"].title == "Runbook"
    for label in ("text", "markdown", "json", "html"):
        assert by_label[label].skipped_reason is None
        assert by_label[label].chunk_count >= 1
    assert by_label["binary"].chunk_count == 0
    assert by_label["binary"].skipped_reason.startswith("unsupported content type")
    assert by_label["blank"].chunk_count == 0
    assert by_label["blank"].skipped_reason == "no text"
    assert report.skipped == 2
    assert report.chunks == chunk_count(kb_engine) == sum(d.chunk_count for d in docs.values())
    assert pending(kb_engine) == 0

    with kb_engine.connect() as conn:
        texts = conn.execute(
            sa.text(
                "SELECT c.text, c.start_char, c.end_char FROM kb.chunks c JOIN kb.documents d "
                "USING (document_id) WHERE d.artifact_id = :a ORDER BY c.ordinal"
            ),
            {"a": written["markdown"].artifact_id},
        ).fetchall()
        html_text = conn.execute(
            sa.text(
                "SELECT string_agg(c.text, ' ') FROM kb.chunks c JOIN kb.documents d "
                "USING (document_id) WHERE d.artifact_id = :a"
            ),
            {"a": written["html"].artifact_id},
        ).scalar_one()
    for text, start, end in texts:
        assert LONG_MARKDOWN[start:end] == text
        assert len(text) <= 400
    assert "standby replica" in html_text
    assert "secretScript" not in html_text

    again = kb.ingest()
    assert (again.versions, again.batches, again.chunks) == (0, 0, 0)
    assert chunk_count(kb_engine) == report.chunks


def _install_trigger(engine: sa.Engine, marker: str, action: str) -> None:
    """A real database-side failure for chunks containing ``marker``."""
    with engine.begin() as conn:
        conn.execute(
            sa.text(f"""
            CREATE FUNCTION kb.injected() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF NEW.text LIKE '%{marker}%' THEN {action}; END IF;
              RETURN NEW;
            END $$;
            CREATE TRIGGER injected BEFORE INSERT ON kb.chunks
              FOR EACH ROW EXECUTE FUNCTION kb.injected();
            """)
        )


def _drop_trigger(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TRIGGER injected ON kb.chunks; DROP FUNCTION kb.injected()"))


def _duplicate_chunks(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text(
                    "SELECT count(*) FROM (SELECT document_id, ordinal FROM kb.chunks "
                    "GROUP BY 1, 2 HAVING count(*) > 1) d"
                )
            ).scalar_one()
        )


def test_a_crash_mid_batch_leaves_no_partial_document(
    artifacts: ArtifactService, kb: KnowledgeBase, kb_engine: sa.Engine
) -> None:
    """The database connection dies while the second batch is writing its chunks (the
    backend terminates itself from a trigger, after that batch's first documents and
    chunks were written): that batch leaves nothing, the next run takes it whole."""
    write_mixed_set(artifacts)
    artifacts.write_artifact(type="note", content="fine text then CRASH here", tags=[])
    _install_trigger(kb_engine, "CRASH", "PERFORM pg_terminate_backend(pg_backend_pid())")
    with pytest.raises(KbUnavailable, match="the database is unavailable"):
        kb.ingest()
    docs = documents(kb_engine)
    assert len(docs) == 4  # the first batch committed
    assert pending(kb_engine) == 3
    assert chunk_count(kb_engine) == sum(d.chunk_count for d in docs.values())

    _drop_trigger(kb_engine)
    report = kb.ingest()
    assert report.versions == 3
    docs = documents(kb_engine)
    assert len(docs) == 7
    assert all(
        d.skipped_reason in (None, "no text") or "unsupported" in d.skipped_reason
        for d in docs.values()
    )
    assert chunk_count(kb_engine) == sum(d.chunk_count for d in docs.values())
    assert _duplicate_chunks(kb_engine) == 0


def test_a_version_the_database_refuses_is_recorded_and_does_not_block_others(
    artifacts: ArtifactService, kb: KnowledgeBase, kb_engine: sa.Engine
) -> None:
    written = write_mixed_set(artifacts)
    poisoned = artifacts.write_artifact(type="note", content="fine text then POISON here")
    _install_trigger(kb_engine, "POISON", "RAISE EXCEPTION 'injected refusal'")
    report = kb.ingest()
    assert (report.versions, report.pending) == (7, 0)
    assert report.reasons["could not be stored"] == 1
    docs = documents(kb_engine)
    bad = docs[(poisoned.artifact_id, 1)]
    assert bad.chunk_count == 0
    assert "injected refusal" in bad.skipped_reason
    assert docs[(written["markdown"].artifact_id, 1)].chunk_count > 5
    assert chunk_count(kb_engine) == sum(d.chunk_count for d in docs.values())


class _UnreachableStore:
    """The test's real store, except that reading fails like an S3 outage."""

    def __init__(self, inner: BlobStore) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def open(self, key: str) -> Any:
        raise StorageUnavailable("the store is down (injected)")


@pytest.mark.parametrize("backend", ["file"], indirect=True)
def test_an_unreachable_store_fails_the_batch_instead_of_skipping_versions(
    artifacts: ArtifactService, kb_engine: sa.Engine, artifact_store: BlobStore
) -> None:
    write_mixed_set(artifacts)
    broken = KnowledgeBase(
        engine=kb_engine,
        store=_UnreachableStore(artifact_store),  # type: ignore[arg-type]
        options=IngestOptions(batch_size=100),
    )
    with pytest.raises(StorageUnavailable):
        broken.ingest()
    assert documents(kb_engine) == {}
    assert pending(kb_engine) == 6


@pytest.mark.parametrize("backend", ["file"], indirect=True)
def test_a_missing_blob_is_recorded_with_its_reason_not_retried_forever(
    artifacts: ArtifactService, kb: KnowledgeBase, kb_engine: sa.Engine, artifact_store: BlobStore
) -> None:
    written = write_mixed_set(artifacts)
    with kb_engine.connect() as conn:
        key = conn.execute(
            sa.text("SELECT storage_key FROM work.artifact_versions WHERE artifact_id = :a"),
            {"a": written["markdown"].artifact_id},
        ).scalar_one()
    artifact_store.delete(key)
    kb.ingest()
    doc = documents(kb_engine)[(written["markdown"].artifact_id, 1)]
    assert doc.chunk_count == 0
    assert doc.skipped_reason.startswith("content unreadable")
    assert pending(kb_engine) == 0


@pytest.mark.parametrize("backend", ["file"], indirect=True)
def test_newer_versions_become_latest_and_reset_reingests(
    artifacts: ArtifactService, kb: KnowledgeBase, kb_engine: sa.Engine
) -> None:
    first = artifacts.write_artifact(type="note", content="alpha release notes", tags=[])
    kb.ingest()
    artifacts.create_version(artifact_id=first.artifact_id, content="beta release notes")
    kb.ingest()
    docs = documents(kb_engine)
    assert docs[(first.artifact_id, 1)].is_latest is False
    assert docs[(first.artifact_id, 2)].is_latest is True

    assert kb.reset(artifact_id=first.artifact_id) == 2
    assert len(documents(kb_engine)) == 2  # still searchable until replaced
    report = kb.ingest()
    assert report.versions == 2
    docs = documents(kb_engine)
    assert [docs[(first.artifact_id, v)].is_latest for v in (1, 2)] == [False, True]

    # Deleting the latest version (the admin path) makes the one before it latest.
    with kb_engine.begin() as conn:
        conn.execute(sa.text("SET LOCAL wdp.allow_artifact_delete = 'on'"))
        conn.execute(
            sa.text("DELETE FROM work.artifact_versions WHERE artifact_id = :a AND version = 2"),
            {"a": first.artifact_id},
        )
    docs = documents(kb_engine)
    assert list(docs) == [(first.artifact_id, 1)]
    assert docs[(first.artifact_id, 1)].is_latest is True
    assert [h.version for h in kb.search("release notes")] == [1]


@pytest.mark.parametrize("backend", ["file"], indirect=True)
def test_concurrent_ingestion_runs_never_duplicate(
    artifacts: ArtifactService, kb_engine: sa.Engine, artifact_store: BlobStore
) -> None:
    for i in range(40):
        artifacts.write_artifact(type="note", content=f"note number {i} " * 50, tags=[])
    errors: list[BaseException] = []

    def run() -> None:
        try:
            KnowledgeBase(
                engine=kb_engine, store=artifact_store, options=IngestOptions(batch_size=3)
            ).ingest()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(documents(kb_engine)) == 40
    assert chunk_count(kb_engine) == sum(d.chunk_count for d in documents(kb_engine).values())


@pytest.mark.parametrize("backend", ["file"], indirect=True)
def test_embeddings_are_stored_with_their_model(
    artifacts: ArtifactService, kb_engine: sa.Engine, artifact_store: BlobStore
) -> None:
    write_mixed_set(artifacts)
    embedder = HashingEmbedder()
    kb = KnowledgeBase(engine=kb_engine, store=artifact_store, options=OPTIONS, embedder=embedder)
    kb.ingest()
    with kb_engine.connect() as conn:
        missing, dims = conn.execute(
            sa.text(
                "SELECT count(*) FILTER (WHERE embedding IS NULL), "
                "min(vector_dims(embedding)) FROM kb.chunks"
            )
        ).one()
    assert (missing, dims) == (0, 64)
    models = {d.embedding_model for d in documents(kb_engine).values() if d.chunk_count}
    assert models == {embedder.name}


@pytest.mark.parametrize("backend", ["file"], indirect=True)
def test_text_without_spaces_is_cut_into_bounded_chunks(
    artifacts: ArtifactService, kb: KnowledgeBase, kb_engine: sa.Engine
) -> None:
    """A 1.5 MB single-line CSV and a page of Chinese: without cuts inside the run, one
    chunk would exceed Postgres' tsvector limit and fail every batch it is in."""
    csv = ",".join(f"w{i:07d}x" for i in range(150_000)).encode()
    line = artifacts.write_artifact(type="table", content=csv, mime_type="text/csv")
    chinese = artifacts.write_artifact(type="note", content="这是一个测试句子。" * 2000)
    report = kb.ingest()
    assert (report.versions, report.skipped) == (2, 0)
    with kb_engine.connect() as conn:
        longest = conn.execute(sa.text("SELECT max(length(text)) FROM kb.chunks")).scalar_one()
    assert longest <= OPTIONS.chunk_size
    assert {h.artifact_id for h in kb.search("w0123456x")} == {line.artifact_id}
    assert documents(kb_engine)[(chinese.artifact_id, 1)].chunk_count > 10


class _WrongSizeEmbedder(HashingEmbedder):
    @property
    def dimensions(self) -> int:
        return 10  # declares 10, returns 64


@pytest.mark.parametrize("backend", ["file"], indirect=True)
def test_an_embedder_returning_other_dimensions_than_declared_writes_nothing(
    artifacts: ArtifactService, kb_engine: sa.Engine, artifact_store: BlobStore
) -> None:
    write_mixed_set(artifacts)
    kb = KnowledgeBase(
        engine=kb_engine, store=artifact_store, options=OPTIONS, embedder=_WrongSizeEmbedder()
    )
    with pytest.raises(KbError, match="64 dimensions; it declares 10"):
        kb.ingest()
    assert documents(kb_engine) == {}


@pytest.mark.parametrize("backend", ["file"], indirect=True)
def test_without_the_vector_column_an_embedder_is_refused_before_anything_changes(
    artifacts: ArtifactService, kb_engine: sa.Engine, artifact_store: BlobStore
) -> None:
    write_mixed_set(artifacts)
    KnowledgeBase(engine=kb_engine, store=artifact_store, options=OPTIONS).ingest()
    with kb_engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE kb.chunks DROP COLUMN embedding"))
    kb = KnowledgeBase(
        engine=kb_engine, store=artifact_store, options=OPTIONS, embedder=HashingEmbedder()
    )
    for attempt in (kb.reset, kb.ingest, lambda: kb.search("notes")):
        with pytest.raises(EmbeddingsUnavailable, match="wdp kb enable-vectors"):
            attempt()
    assert pending(kb_engine) == 0
    assert len(documents(kb_engine)) == 6

    kb.enable_vectors()
    assert kb.reset() == 6
    kb.ingest()
    models = {d.embedding_model for d in documents(kb_engine).values() if d.chunk_count}
    assert models == {HashingEmbedder().name}


def test_database_errors_become_kb_errors(
    database_factory: Callable[[], str], tmp_path: Path
) -> None:
    empty = create_engine(database_factory())
    try:
        kb = KnowledgeBase(engine=empty, store=FileStore(tmp_path))
        with pytest.raises(KbUnavailable, match="run `wdp migrate`"):
            kb.search("anything")
    finally:
        empty.dispose()
    down = create_engine(f"postgresql://nobody@127.0.0.1:{free_port()}/none")
    try:
        with pytest.raises(KbUnavailable, match="the database is unavailable"):
            KnowledgeBase(engine=down, store=FileStore(tmp_path)).search("anything")
    finally:
        down.dispose()
