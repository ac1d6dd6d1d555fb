"""Artifact versions into the knowledge base, a batch per transaction.

A batch takes the oldest versions with ``is_kb_ingested = false``, extracts and chunks
their text, and writes their documents, their chunks and the flags in one transaction:
a crash anywhere leaves the batch as it was, to be taken again whole, so nothing is
ever half-ingested or duplicated. Batches are serialised by a transaction-level
advisory lock, which also keeps ``is_latest`` right when two versions of one artifact
are ingested by overlapping runs.

Content that cannot be indexed (binary types, too large, a missing or corrupt blob)
still gets a document, with zero chunks and ``skipped_reason``, so every version is
accounted for exactly once. An unreachable store is different: the batch fails and is
retried later, rather than marking versions ingested that were never read.
"""

from __future__ import annotations

import binascii
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from sdk.artifacts.content import decode_inline
from sdk.artifacts.errors import ArtifactIntegrityError, BlobNotFound
from sdk.artifacts.reader import VerifiedReader
from sdk.artifacts.stores.base import BlobStore
from sdk.kb.embedders import Embedder, vector_literal
from sdk.kb.errors import KbError

if TYPE_CHECKING:
    from sdk.kb.chunking import Chunk

log = logging.getLogger(__name__)

# Held for each batch's transaction (and by reindex): one writer of kb.* at a time.
KB_LOCK_KEY = 0x77647003

PENDING_SQL = sa.text("""
SELECT v.artifact_id, v.version, v.mime_type, v.size_bytes, v.content_hash,
       v.storage_backend::text AS storage_backend, v.storage_key, v.inline_content_text,
       a.type, a.tags
FROM work.artifact_versions v JOIN work.artifacts a USING (artifact_id)
WHERE NOT v.is_kb_ingested
ORDER BY v.created_at, v.artifact_id, v.version
LIMIT :limit
""")

COUNT_PENDING_SQL = sa.text("SELECT count(*) FROM work.artifact_versions WHERE NOT is_kb_ingested")

# A version taken again after `wdp kb reindex` or a manual flag reset replaces its
# document instead of colliding with it.
DELETE_DOCUMENTS_SQL = sa.text("""
DELETE FROM kb.documents d USING unnest(CAST(:ids AS text[]), CAST(:versions AS int[])) AS t(a, v)
WHERE d.artifact_id = t.a AND d.version = t.v
""")

INSERT_DOCUMENT_SQL = sa.text("""
INSERT INTO kb.documents (artifact_id, version, type, tags, title, mime_type, content_hash,
                          chunk_count, skipped_reason, embedding_model)
VALUES (:artifact_id, :version, :type, CAST(:tags AS jsonb), :title, :mime_type,
        :content_hash, :chunk_count, :skipped_reason, :embedding_model)
RETURNING document_id
""")

MARK_INGESTED_SQL = sa.text("""
UPDATE work.artifact_versions v SET is_kb_ingested = true
FROM unnest(CAST(:ids AS text[]), CAST(:versions AS int[])) AS t(a, n)
WHERE v.artifact_id = t.a AND v.version = t.n
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
class _Prepared:
    row: Any
    title: str | None
    chunks: list[Chunk]
    skipped_reason: str | None


def count_pending(conn: sa.Connection) -> int:
    return int(conn.execute(COUNT_PENDING_SQL).scalar_one())


def ingest_pending(
    engine: sa.Engine,
    *,
    store: BlobStore,
    options: IngestOptions,
    embedder: Embedder | None = None,
    max_batches: int | None = None,
    on_batch: Callable[[BatchReport], None] | None = None,
) -> IngestReport:
    """Ingest batches until nothing is pending (or ``max_batches`` were committed)."""
    report = IngestReport()
    while max_batches is None or report.batches < max_batches:
        with engine.begin() as conn:
            batch = ingest_batch(conn, store=store, options=options, embedder=embedder)
        if batch.versions == 0:
            break
        report.add(batch)
        if on_batch is not None:
            on_batch(batch)
    with engine.connect() as conn:
        report.pending = count_pending(conn)
    return report


def ingest_batch(
    conn: sa.Connection,
    *,
    store: BlobStore,
    options: IngestOptions,
    embedder: Embedder | None = None,
) -> BatchReport:
    """One batch inside the caller's transaction; the caller commits (or rolls back)."""
    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(KB_LOCK_KEY)))
    rows = conn.execute(PENDING_SQL, {"limit": options.batch_size}).fetchall()
    report = BatchReport(versions=len(rows))
    if not rows:
        return report
    prepared = [_prepare(row, store=store, options=options) for row in rows]
    vectors = _embed(prepared, embedder)
    ids = [row.artifact_id for row in rows]
    versions = [row.version for row in rows]
    conn.execute(DELETE_DOCUMENTS_SQL, {"ids": ids, "versions": versions})
    chunk_rows: list[dict[str, Any]] = []
    for item in prepared:
        document_id = _insert_document(conn, item, embedder if vectors is not None else None)
        if item.skipped_reason is not None:
            report.skipped += 1
            key = item.skipped_reason.split(":", 1)[0]
            report.reasons[key] = report.reasons.get(key, 0) + 1
        for chunk in item.chunks:
            chunk_rows.append(
                {
                    "document_id": document_id,
                    "ordinal": chunk.ordinal,
                    "text": chunk.text,
                    "start_char": chunk.start,
                    "end_char": chunk.end,
                }
            )
    if vectors is not None:
        for chunk_row, vector in zip(chunk_rows, vectors, strict=True):
            chunk_row["embedding"] = vector_literal(vector)
    _insert_chunks(conn, chunk_rows, with_embeddings=vectors is not None)
    report.chunks = len(chunk_rows)
    conn.execute(MARK_INGESTED_SQL, {"ids": ids, "versions": versions})
    conn.execute(MARK_LATEST_SQL, {"ids": sorted(set(ids))})
    return report


def _prepare(row: Any, *, store: BlobStore, options: IngestOptions) -> _Prepared:
    # Imported here: searching needs neither the splitter nor the extractors (kb extra).
    from sdk.kb.chunking import split_text
    from sdk.kb.extract import extract_text

    if row.size_bytes > options.max_content_bytes:
        limit = options.max_content_bytes
        reason = f"too large: {row.size_bytes} bytes (KB_MAX_CONTENT_BYTES is {limit})"
        return _Prepared(row, None, [], reason)
    try:
        content = _read_content(row, store)
    except ArtifactIntegrityError as exc:
        log.warning("kb: artifact %s v%s is unreadable: %s", row.artifact_id, row.version, exc)
        return _Prepared(row, None, [], f"content unreadable: {exc}")
    extraction = extract_text(content, mime_type=row.mime_type)
    if extraction.skipped_reason is not None:
        return _Prepared(row, extraction.title, [], extraction.skipped_reason)
    chunks = split_text(extraction.text, chunk_size=options.chunk_size, overlap=options.overlap)
    return _Prepared(row, extraction.title, chunks, None if chunks else "no text")


def _read_content(row: Any, store: BlobStore) -> bytes:
    label = f"artifact {row.artifact_id} v{row.version}"
    if row.storage_backend == "inline":
        try:
            return decode_inline(mime_type=row.mime_type, text=row.inline_content_text or "")
        except (binascii.Error, ValueError) as exc:
            raise ArtifactIntegrityError(f"{label}: inline content is corrupt: {exc}") from exc
    if row.storage_backend != store.backend:
        # A configuration error (ARTIFACT_STORE), not a property of this version: fail
        # the batch rather than record the version as unreadable for good.
        raise KbError(
            f"{label} is in the {row.storage_backend} store, but the knowledge base reads "
            f"the {store.backend} store (ARTIFACT_STORE)"
        )
    try:
        raw = store.open(row.storage_key)
    except BlobNotFound as exc:
        raise ArtifactIntegrityError(f"{label}: blob {row.storage_key!r} is missing") from exc
    with VerifiedReader(
        raw, content_hash=row.content_hash, size_bytes=row.size_bytes, label=label
    ) as reader:
        return reader.readall()


def _embed(prepared: Sequence[_Prepared], embedder: Embedder | None) -> list[list[float]] | None:
    if embedder is None:
        return None
    texts = [chunk.text for item in prepared for chunk in item.chunks]
    vectors = embedder.embed(texts) if texts else []
    if len(vectors) != len(texts):
        raise KbError(f"embedder {embedder.name} returned {len(vectors)} vectors for {len(texts)}")
    return vectors


def _insert_document(conn: sa.Connection, item: _Prepared, embedder: Embedder | None) -> int:
    import json

    row = item.row
    return int(
        conn.execute(
            INSERT_DOCUMENT_SQL,
            {
                "artifact_id": row.artifact_id,
                "version": row.version,
                "type": row.type,
                "tags": json.dumps(row.tags),
                "title": item.title,
                "mime_type": row.mime_type,
                "content_hash": row.content_hash,
                "chunk_count": len(item.chunks),
                "skipped_reason": item.skipped_reason,
                "embedding_model": embedder.name if embedder is not None and item.chunks else None,
            },
        ).scalar_one()
    )


def _insert_chunks(
    conn: sa.Connection, rows: list[dict[str, Any]], *, with_embeddings: bool
) -> None:
    """COPY: several times faster than multi-row INSERTs for a batch's thousand chunks."""
    if not rows:
        return
    columns = ["document_id", "ordinal", "text", "start_char", "end_char"]
    if with_embeddings:
        columns.append("embedding")
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor.copy(f"COPY kb.chunks ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([row[c] for c in columns])
