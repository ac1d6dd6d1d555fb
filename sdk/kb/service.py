"""The knowledge base as one object: search it, ingest into it, reindex it.

    from sdk.kb import KnowledgeBase

    kb = KnowledgeBase.from_settings()
    for hit in kb.search("retry budget", k=5, type="report"):
        print(hit.artifact_id, hit.version, hit.snippet)

``sdk.kb.search(...)`` does the same through a default instance built on first use.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa

from sdk.artifacts import kb_queue
from sdk.artifacts.stores import build_store
from sdk.artifacts.stores.base import BlobStore
from sdk.db.engine import create_engine
from sdk.db.errors import DATABASE_ERRORS, describe, unavailable_reason
from sdk.db.lifecycle import EngineHolder
from sdk.db.schema import KB_EMBEDDING_COLUMN, KB_SCHEMA
from sdk.kb.embedders import Embedder, build_embedder
from sdk.kb.errors import EmbeddingsUnavailable, KbError, KbUnavailable
from sdk.kb.ingest import BatchReport, IngestOptions, IngestReport, ingest_pending
from sdk.kb.search import SearchFilters, SearchHit, check_arguments, search_chunks
from sdk.settings import WdpSettings, get_settings

HAS_EMBEDDING_COLUMN_SQL = sa.text(
    "SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = :schema "
    "AND table_name = 'chunks' AND column_name = :column)"
)

COUNT_EMBEDDED_SQL = sa.text(
    f"SELECT count(*) FROM {KB_SCHEMA}.chunks WHERE {KB_EMBEDDING_COLUMN} IS NOT NULL"
)

VECTOR_SCHEMA_SQL = sa.text(
    "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
    "WHERE e.extname = 'vector'"
)

# What migration 0003 does where pgvector is available, for a database migrated before
# it was installed.
# Run through exec_driver_sql: psycopg reads % as a placeholder, hence %%I.
ENABLE_VECTORS_SQL = """
CREATE EXTENSION IF NOT EXISTS vector;
DO $$
DECLARE nsp text;
BEGIN
  SELECT n.nspname INTO nsp FROM pg_extension e
    JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'vector';
  EXECUTE format('ALTER TABLE kb.chunks ADD COLUMN IF NOT EXISTS embedding %%I.vector', nsp);
END
$$
"""


@dataclass(frozen=True)
class KbStats:
    """Counts of the knowledge base, and how far embeddings are: three separate facts,
    since a vector column without an embedder (or the reverse) embeds nothing."""

    documents: int
    chunks: int
    pending: int  # artifact versions waiting for ingestion
    skipped: int  # documents recorded without text (binary, too large, ...)
    vector_column: bool  # kb.chunks has its pgvector embedding column
    embedder: str | None  # the configured embedder (KB_EMBEDDER); None: full-text only
    embedded_chunks: int  # chunks with a vector stored


class KnowledgeBase(EngineHolder):
    """Search and ingestion over one database, blob store and (optional) embedder.

    ``close()`` (or ``with``) disposes of the engine if :meth:`from_settings` created it.
    """

    def __init__(
        self,
        *,
        engine: sa.Engine,
        store: BlobStore,
        options: IngestOptions | None = None,
        embedder: Embedder | None = None,
        rank_pool: int = 2000,
        owns_engine: bool = False,
    ) -> None:
        super().__init__(engine, owns_engine=owns_engine)
        self._store = store
        self._options = options or IngestOptions()
        self._embedder = embedder
        self._rank_pool = rank_pool
        self._vector_schema: str | None = None

    @classmethod
    def from_settings(
        cls, settings: WdpSettings | None = None, *, engine: sa.Engine | None = None
    ) -> KnowledgeBase:
        settings = settings or get_settings()
        options = IngestOptions(
            chunk_size=settings.kb_chunk_size,
            overlap=settings.kb_chunk_overlap,
            batch_size=settings.kb_batch_size,
            max_content_bytes=settings.kb_max_content_bytes,
        )
        return cls(
            engine=engine or create_engine(settings=settings),
            store=build_store(settings),
            options=options,
            embedder=build_embedder(settings),
            rank_pool=settings.kb_search_rank_pool,
            owns_engine=engine is None,
        )

    @property
    def embedder(self) -> Embedder | None:
        return self._embedder

    @contextmanager
    def _db(self) -> Iterator[sa.Connection]:
        """A transaction; driver failures become KbError or KbUnavailable."""
        with _translated(), self._engine.begin() as conn:
            yield conn

    def _active_embedder(self, conn: sa.Connection) -> Embedder | None:
        """The embedder, once the database is known to store its vectors."""
        if self._embedder is None:
            return None
        if self._vector_schema is None:
            has_column = conn.execute(
                HAS_EMBEDDING_COLUMN_SQL, {"schema": KB_SCHEMA, "column": KB_EMBEDDING_COLUMN}
            ).scalar_one()
            schema = conn.execute(VECTOR_SCHEMA_SQL).scalar_one_or_none()
            if not has_column or schema is None:
                raise EmbeddingsUnavailable(
                    f"embedder {self._embedder.name} is configured, but kb.chunks has no "
                    "embedding column: install the pgvector extension in Postgres, then "
                    "run `wdp kb enable-vectors` (or set KB_EMBEDDER=none)"
                )
            self._vector_schema = str(schema)
        return self._embedder

    def enable_vectors(self) -> None:
        """Install pgvector (it must be available to Postgres) and add the embedding
        column, where migration 0003 could not."""
        with self._db() as conn:
            conn.exec_driver_sql(ENABLE_VECTORS_SQL)
        self._vector_schema = None

    def search(
        self,
        query: str,
        *,
        k: int = 10,
        type: str | None = None,
        tags: Sequence[str] | None = None,
        artifact_id: str | None = None,
        all_versions: bool = False,
    ) -> list[SearchHit]:
        """The ``k`` best-matching chunks, best first, from each artifact's latest
        ingested version unless ``all_versions``. ``tags`` must all be present."""
        filters = SearchFilters(
            type=type, tags=tags, artifact_id=artifact_id, all_versions=all_versions
        )
        query = check_arguments(query, k, filters)
        with self._db() as conn:
            embedder = self._active_embedder(conn)
            return search_chunks(
                conn,
                query,
                k=k,
                filters=filters,
                embedder=embedder,
                vector_schema=self._vector_schema or "public",
                rank_pool=self._rank_pool,
            )

    def ingest(
        self,
        *,
        max_batches: int | None = None,
        on_batch: Callable[[BatchReport], None] | None = None,
    ) -> IngestReport:
        """Ingest every pending artifact version, a transaction per batch."""
        with self._db() as conn:
            embedder = self._active_embedder(conn)
        with _translated("an ingestion batch failed and was rolled back"):
            return ingest_pending(
                self._engine,
                store=self._store,
                options=self._options,
                embedder=embedder,
                max_batches=max_batches,
                on_batch=on_batch,
            )

    def reset(self, *, artifact_id: str | None = None, type: str | None = None) -> int:
        """Mark versions (all, one artifact's, or one type's) for ingestion again, so the
        next run redoes them with today's extraction, chunking and embedder. Their
        documents stay searchable until replaced. Returns how many versions are pending
        in all (these and any that were already)."""
        with self._db() as conn:
            self._active_embedder(conn)  # refuse before changing anything
            # Only the flags: each version's old document keeps answering searches until
            # its batch replaces it (ingest.DELETE_DOCUMENTS_SQL): a reindex never empties
            # the knowledge base.
            kb_queue.reset_ingested(conn, artifact_id=artifact_id, type=type)
            return kb_queue.count_pending(conn)

    def stats(self) -> KbStats:
        with self._db() as conn:
            documents, chunks, skipped = conn.execute(
                sa.text(
                    "SELECT count(*), coalesce(sum(chunk_count), 0), "
                    "count(*) FILTER (WHERE skipped_reason IS NOT NULL) FROM kb.documents"
                )
            ).one()
            has_column = bool(
                conn.execute(
                    HAS_EMBEDDING_COLUMN_SQL, {"schema": KB_SCHEMA, "column": KB_EMBEDDING_COLUMN}
                ).scalar_one()
            )
            embedded = conn.execute(COUNT_EMBEDDED_SQL).scalar_one() if has_column else 0
            return KbStats(
                documents=int(documents),
                chunks=int(chunks),
                pending=kb_queue.count_pending(conn),
                skipped=int(skipped),
                vector_column=has_column,
                embedder=self._embedder.name if self._embedder is not None else None,
                embedded_chunks=int(embedded),
            )


@contextmanager
def _translated(doing: str = "the database refused the request") -> Iterator[None]:
    """Driver errors raised inside become KbError or KbUnavailable (:func:`_translate`).

    psycopg's own errors too: COPY runs on the driver connection, so they arrive unwrapped.
    """
    try:
        yield
    except DATABASE_ERRORS as exc:
        raise _translate(exc, doing) from exc


def _translate(exc: BaseException, doing: str = "the database refused the request") -> KbError:
    """Driver error -> domain error, by :func:`sdk.db.errors.classify`'s answer."""
    if (reason := unavailable_reason(exc, tables="knowledge-base tables")) is not None:
        return KbUnavailable(reason)
    return KbError(f"{doing}: {describe(exc)}")


_default: KnowledgeBase | None = None
_default_lock = threading.Lock()


def default_knowledge_base() -> KnowledgeBase:
    """The process-wide instance :func:`sdk.kb.search` uses, built from the settings."""
    global _default
    with _default_lock:
        if _default is None:
            _default = KnowledgeBase.from_settings()
        return _default


def set_default_knowledge_base(kb: KnowledgeBase | None) -> None:
    """Replace (or with None, forget) the default instance; tests and hosts use it."""
    global _default
    with _default_lock:
        _default = kb
