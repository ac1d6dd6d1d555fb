"""Artifact versions into the knowledge base, a batch per transaction.

A batch takes the oldest versions the artifact service lists as pending
(:mod:`sdk.artifacts.kb_queue`, the owner of the ingested flag), extracts and chunks
their text (outside any transaction), then writes their documents, their chunks and
the flags in one transaction: a crash anywhere leaves the batch as it was, to be taken
again whole, so nothing is ever half-ingested or duplicated. One run at a time (a
session advisory lock), which also keeps ``is_latest`` right. Content is read through
the artifact service's :func:`~sdk.artifacts.reader.open_stored`, sha256-verified.

Content that cannot be indexed (binary types, too large, a missing or corrupt blob, a
version whose chunks the database refuses) still gets a document, with zero chunks and
``skipped_reason``, so every version is accounted for exactly once and no version can
block the ones behind it. An unreachable store or database is different: the batch
fails and is retried later, rather than marking versions ingested that were never read.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import psycopg
import sqlalchemy as sa

from sdk.artifacts import kb_queue
from sdk.artifacts.errors import ArtifactIntegrityError, StoreMismatch
from sdk.artifacts.kb_queue import PendingVersion
from sdk.artifacts.reader import open_stored
from sdk.artifacts.stores.base import BlobStore
from sdk.db.errors import DATABASE_ERRORS, describe, refused_row
from sdk.db.locks import KB_LOCK_KEY
from sdk.kb.embedders import Embedder, vector_literal
from sdk.kb.errors import KbError

if TYPE_CHECKING:
    from sdk.kb.chunking import Chunk

log = logging.getLogger(__name__)


# A version taken again after `wdp kb reindex` or a manual flag reset replaces its
# document instead of colliding with it.
DELETE_DOCUMENTS_SQL = sa.text("""
DELETE FROM kb.documents d USING unnest(CAST(:ids AS text[]), CAST(:versions AS int[])) AS t(a, v)
WHERE d.artifact_id = t.a AND d.version = t.v
""")

INSERT_DOCUMENTS_SQL = sa.text("""
INSERT INTO kb.documents (artifact_id, version, type, tags, title, mime_type, content_hash,
                          chunk_count, skipped_reason, embedding_model)
SELECT * FROM unnest(
  CAST(:ids AS text[]), CAST(:versions AS int[]), CAST(:types AS text[]),
  CAST(:tags AS jsonb[]), CAST(:titles AS text[]), CAST(:mimes AS text[]),
  CAST(:hashes AS text[]), CAST(:counts AS int[]), CAST(:reasons AS text[]),
  CAST(:models AS text[]))
RETURNING document_id, artifact_id, version
""")

# The newest ingested version of each artifact is what search returns by default.
MARK_LATEST_SQL = sa.text("""
UPDATE kb.documents d SET is_latest = (d.version = m.newest)
FROM (SELECT artifact_id, max(version) AS newest FROM kb.documents
      WHERE artifact_id = ANY(CAST(:ids AS text[])) GROUP BY artifact_id) m
WHERE d.artifact_id = m.artifact_id AND d.is_latest IS DISTINCT FROM (d.version = m.newest)
""")


@dataclass(frozen=True)
class IngestOptions:
    """How text becomes chunks, and what is read at all."""

    chunk_size: int = 1000
    overlap: int = 150
    batch_size: int = 200
    max_content_bytes: int = 50 * 1024 * 1024


@dataclass
class BatchReport:
    """What one committed batch did."""

    versions: int = 0
    chunks: int = 0
    skipped: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


@dataclass
class IngestReport:
    """What a whole ingestion run did; ``pending`` is what is left afterwards."""

    batches: int = 0
    versions: int = 0
    chunks: int = 0
    skipped: int = 0
    pending: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def add(self, batch: BatchReport) -> None:
        self.batches += 1
        self.versions += batch.versions
        self.chunks += batch.chunks
        self.skipped += batch.skipped
        for reason, n in batch.reasons.items():
            self.reasons[reason] = self.reasons.get(reason, 0) + n


@dataclass
class Prepared:
    """A version read, extracted and split, ready to be written."""

    row: PendingVersion
    title: str | None
    chunks: list[Chunk]
    skipped_reason: str | None


def ingest_pending(
    engine: sa.Engine,
    *,
    store: BlobStore,
    options: IngestOptions,
    embedder: Embedder | None = None,
    max_batches: int | None = None,
    on_batch: Callable[[BatchReport], None] | None = None,
) -> IngestReport:
    """Ingest batches until nothing is pending (or ``max_batches`` were committed).

    One run at a time: a session-level advisory lock, held by a connection of its own
    for the whole run, makes a second run wait. Content is read, extracted, split and
    embedded before each batch's transaction opens, so the transaction (and its locks)
    lasts only as long as the writes.
    """
    report = IngestReport()
    with engine.connect() as lock_conn:
        lock_conn.execute(sa.select(sa.func.pg_advisory_lock(KB_LOCK_KEY)))
        lock_conn.commit()  # the session lock stays; no transaction sits idle
        try:
            while max_batches is None or report.batches < max_batches:
                with engine.connect() as conn:
                    rows = kb_queue.pending_versions(conn, limit=options.batch_size)
                if not rows:
                    break
                prepared = [_prepare(row, store=store, options=options) for row in rows]
                vectors = _embed(prepared, embedder)
                with engine.begin() as conn:
                    batch = write_batch(conn, prepared, vectors=vectors, embedder=embedder)
                report.add(batch)
                if on_batch is not None:
                    on_batch(batch)
        finally:
            lock_conn.execute(sa.select(sa.func.pg_advisory_unlock(KB_LOCK_KEY)))
            lock_conn.commit()
        report.pending = kb_queue.count_pending(lock_conn)
    return report


def write_batch(
    conn: sa.Connection,
    prepared: Sequence[Prepared],
    *,
    vectors: list[list[float]] | None,
    embedder: Embedder | None,
) -> BatchReport:
    """Write prepared versions in the caller's transaction; the caller commits.

    The whole batch goes in with one INSERT and one COPY. If the database refuses
    something in it, the batch is written again version by version, each under a
    savepoint, and a version it still refuses is recorded with zero chunks and the
    reason instead of failing the batch (and every run after it). A database that is
    unavailable rolls back everything.
    """
    # Locked until the caller commits, and only those no one else ingested meanwhile.
    still = kb_queue.lock_still_pending(conn, [item.row.key for item in prepared])
    conn.execute(
        DELETE_DOCUMENTS_SQL, {"ids": [a for a, _ in still], "versions": [v for _, v in still]}
    )
    todo: list[tuple[Prepared, list[list[float]] | None]] = []
    offset = 0
    for item in prepared:
        item_vectors = None
        if vectors is not None:
            item_vectors = vectors[offset : offset + len(item.chunks)]
        offset += len(item.chunks)
        if item.row.key in still:
            todo.append((item, item_vectors))
        # else: ingested meanwhile by someone not holding the run lock
    model = embedder.name if vectors is not None and embedder is not None else None
    try:
        with conn.begin_nested():
            _write_all(conn, todo, model)
    except DATABASE_ERRORS as exc:
        if not refused_row(exc):  # down, busy, unmigrated or our bug: not the data
            raise
        log.info("kb: batch refused (%s); writing it version by version", describe(exc))
        for item, item_vectors in todo:
            _write_version(conn, item, item_vectors, model)
    report = BatchReport(versions=len(todo))
    for item, _ in todo:
        if item.skipped_reason is not None:
            report.skipped += 1
            key = item.skipped_reason.split(":", 1)[0]
            report.reasons[key] = report.reasons.get(key, 0) + 1
        report.chunks += len(item.chunks)
    kb_queue.mark_ingested(conn, still)
    conn.execute(MARK_LATEST_SQL, {"ids": sorted({a for a, _ in still})})
    return report


def _write_all(
    conn: sa.Connection,
    todo: Sequence[tuple[Prepared, list[list[float]] | None]],
    model: str | None,
) -> None:
    ids = _insert_documents(conn, [item for item, _ in todo], model)
    _copy_chunks(
        conn,
        [(ids[(i.row.artifact_id, i.row.version)], i.chunks, v) for i, v in todo],
        with_vectors=model is not None,
    )


def _write_version(
    conn: sa.Connection,
    item: Prepared,
    vectors: list[list[float]] | None,
    model: str | None,
) -> None:
    """One version under its own savepoint; if refused, its document with the reason."""
    try:
        with conn.begin_nested():
            _write_all(conn, [(item, vectors)], model)
    except DATABASE_ERRORS as exc:
        if not refused_row(exc):  # down, busy, unmigrated or our bug: not the data
            raise
        log.warning(
            "kb: artifact %s v%s could not be stored: %s",
            item.row.artifact_id,
            item.row.version,
            describe(exc),
        )
        item.chunks = []
        item.skipped_reason = f"could not be stored: {describe(exc)}"[:1000]
        _insert_documents(conn, [item], None)


def _prepare(row: PendingVersion, *, store: BlobStore, options: IngestOptions) -> Prepared:
    # Imported here: searching needs neither the splitter nor the extractors (kb extra).
    from sdk.kb.chunking import split_text
    from sdk.kb.extract import extract_text

    if row.size_bytes > options.max_content_bytes:
        limit = options.max_content_bytes
        reason = f"too large: {row.size_bytes} bytes (KB_MAX_CONTENT_BYTES is {limit})"
        return Prepared(row, None, [], reason)
    try:
        with open_stored(row, store) as reader:
            content = reader.readall()
    except StoreMismatch as exc:
        # A configuration error (ARTIFACT_STORE), not a property of this version: fail
        # the batch rather than record the version as unreadable for good.
        raise KbError(f"the knowledge base cannot read its store: {exc}") from exc
    except ArtifactIntegrityError as exc:
        log.warning("kb: artifact %s v%s is unreadable: %s", row.artifact_id, row.version, exc)
        return Prepared(row, None, [], f"content unreadable: {exc}")
    extraction = extract_text(content, mime_type=row.mime_type)
    if extraction.skipped_reason is not None:
        return Prepared(row, extraction.title, [], extraction.skipped_reason)
    chunks = split_text(extraction.text, chunk_size=options.chunk_size, overlap=options.overlap)
    return Prepared(row, extraction.title, chunks, None if chunks else "no text")


def _embed(prepared: Sequence[Prepared], embedder: Embedder | None) -> list[list[float]] | None:
    if embedder is None:
        return None
    texts = [chunk.text for item in prepared for chunk in item.chunks]
    vectors = embedder.embed(texts) if texts else []
    if len(vectors) != len(texts):
        raise KbError(f"embedder {embedder.name} returned {len(vectors)} vectors for {len(texts)}")
    wrong = next((len(v) for v in vectors if len(v) != embedder.dimensions), None)
    if wrong is not None:
        raise KbError(
            f"embedder {embedder.name} returned a vector of {wrong} dimensions; "
            f"it declares {embedder.dimensions}"
        )
    return vectors


def _insert_documents(
    conn: sa.Connection, items: Sequence[Prepared], model: str | None
) -> dict[tuple[str, int], int]:
    """One INSERT for all documents; their ids by (artifact id, version)."""
    if not items:
        return {}
    rows = conn.execute(
        INSERT_DOCUMENTS_SQL,
        {
            "ids": [i.row.artifact_id for i in items],
            "versions": [i.row.version for i in items],
            "types": [i.row.type for i in items],
            "tags": [json.dumps(i.row.tags) for i in items],
            "titles": [i.title for i in items],
            "mimes": [i.row.mime_type for i in items],
            "hashes": [i.row.content_hash for i in items],
            "counts": [len(i.chunks) for i in items],
            "reasons": [i.skipped_reason for i in items],
            "models": [model if i.chunks else None for i in items],
        },
    )
    return {(r.artifact_id, r.version): int(r.document_id) for r in rows}


def _copy_chunks(
    conn: sa.Connection,
    documents: Sequence[tuple[int, Sequence[Chunk], list[list[float]] | None]],
    *,
    with_vectors: bool,
) -> None:
    """COPY: several times faster than INSERTs for a batch's thousand chunks."""
    if not any(chunks for _, chunks, _ in documents):
        return
    columns = "document_id, ordinal, text, start_char, end_char"
    if with_vectors:
        columns += ", embedding"
    driver = conn.connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    with driver.cursor() as cursor, cursor.copy(f"COPY kb.chunks ({columns}) FROM STDIN") as copy:
        for document_id, chunks, vectors in documents:
            for n, chunk in enumerate(chunks):
                values: list[Any] = [document_id, chunk.ordinal, chunk.text, chunk.start, chunk.end]
                if with_vectors:
                    values.append(vector_literal(vectors[n]) if vectors is not None else None)
                copy.write_row(values)
