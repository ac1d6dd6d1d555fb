"""Knowledge base: documents and chunks of artifact versions, full-text indexed.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28

Chunks carry a stored, generated ``tsvector`` with a GIN index. Where the pgvector
extension is available (the embedded pgserver Postgres ships it; Debian's Postgres
packages do not), it is installed and ``kb.chunks`` gets a dimensionless ``embedding
vector`` column for the optional embedder; elsewhere the knowledge base is full-text
only. That column is optional, so ``sdk/db/schema.py`` does not declare it and
``migrations/env.py`` leaves it out of ``alembic check``.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOW = sa.text("now()")

# Installing an extension needs privileges a production role may lack: then the KB
# stays full-text only instead of failing the migration (the NOTICE says why).
ADD_EMBEDDING_COLUMN = """
DO $$
DECLARE
  nsp text;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector') THEN
    RAISE NOTICE 'pgvector is not available: the knowledge base is full-text only';
    RETURN;
  END IF;
  BEGIN
    CREATE EXTENSION IF NOT EXISTS vector;
  EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'cannot create extension vector (%): the knowledge base is full-text only', SQLERRM;
    RETURN;
  END;
  SELECT n.nspname INTO nsp FROM pg_extension e
    JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'vector';
  EXECUTE format('ALTER TABLE kb.chunks ADD COLUMN embedding %I.vector', nsp);
END
$$
"""

# Search returns each artifact's latest ingested version (documents.is_latest, set by
# ingestion). When the latest document goes - its version deleted through the admin
# path, the FK cascading - the newest one left takes over.
KEEP_LATEST = """
CREATE FUNCTION kb.documents_keep_latest() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE kb.documents d SET is_latest = true
  FROM (SELECT artifact_id, max(version) AS newest FROM kb.documents
        WHERE artifact_id IN (SELECT artifact_id FROM gone WHERE is_latest)
        GROUP BY artifact_id) m
  WHERE d.artifact_id = m.artifact_id AND d.version = m.newest AND NOT d.is_latest;
  RETURN NULL;
END
$$;
CREATE TRIGGER documents_keep_latest AFTER DELETE ON kb.documents
  REFERENCING OLD TABLE AS gone FOR EACH STATEMENT
  EXECUTE FUNCTION kb.documents_keep_latest();
"""

DROP_SCHEMA_IF_EMPTY = """
DO $$
BEGIN
  IF NOT EXISTS (
    SELECT 1 FROM pg_class WHERE relnamespace = 'kb'::regnamespace
    UNION ALL SELECT 1 FROM pg_proc WHERE pronamespace = 'kb'::regnamespace
    UNION ALL SELECT 1 FROM pg_type WHERE typnamespace = 'kb'::regnamespace
  ) THEN
    DROP SCHEMA kb;
  END IF;
END
$$
"""


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS kb")
    op.create_index(
        "ix_artifact_versions_kb_pending",
        "artifact_versions",
        ["created_at"],
        schema="work",
        postgresql_where=sa.text("NOT is_kb_ingested"),
    )
    op.create_table(
        "documents",
        sa.Column("document_id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("artifact_id", sa.String(26), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("tags", pg.JSONB(), server_default=sa.text("'[]'::jsonb"), nullable=False),
        sa.Column("title", sa.Text()),
        sa.Column("mime_type", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
        sa.Column("skipped_reason", sa.Text()),
        sa.Column("is_latest", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("embedding_model", sa.Text()),
        sa.Column("ingested_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("document_id", name="pk_documents"),
        sa.ForeignKeyConstraint(
            ["artifact_id", "version"],
            ["work.artifact_versions.artifact_id", "work.artifact_versions.version"],
            name="fk_documents_artifact_id_version_artifact_versions",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("artifact_id", "version", name="uq_documents_artifact_id_version"),
        sa.CheckConstraint("chunk_count >= 0", name=op.f("ck_documents_chunk_count_nonnegative")),
        sa.CheckConstraint("jsonb_typeof(tags) = 'array'", name=op.f("ck_documents_tags_array")),
        schema="kb",
    )
    op.create_index("ix_documents_tags", "documents", ["tags"], schema="kb", postgresql_using="gin")
    op.create_index("ix_documents_type", "documents", ["type"], schema="kb")
    op.create_table(
        "chunks",
        sa.Column("chunk_id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("document_id", sa.BigInteger(), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("start_char", sa.Integer(), nullable=False),
        sa.Column("end_char", sa.Integer(), nullable=False),
        sa.Column(
            "tsv",
            pg.TSVECTOR(),
            sa.Computed("to_tsvector('english'::regconfig, text)", persisted=True),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("chunk_id", name="pk_chunks"),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["kb.documents.document_id"],
            name="fk_chunks_document_id_documents",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("document_id", "ordinal", name="uq_chunks_document_id_ordinal"),
        sa.CheckConstraint("ordinal >= 0", name=op.f("ck_chunks_ordinal_nonnegative")),
        sa.CheckConstraint(
            "0 <= start_char AND start_char < end_char", name=op.f("ck_chunks_offsets_ordered")
        ),
        schema="kb",
    )
    op.create_index("ix_chunks_tsv", "chunks", ["tsv"], schema="kb", postgresql_using="gin")
    op.execute(KEEP_LATEST)
    op.execute(ADD_EMBEDDING_COLUMN)


def downgrade() -> None:
    # The vector extension stays: other schemas may use it.
    op.drop_table("chunks", schema="kb")
    op.drop_table("documents", schema="kb")
    op.execute("DROP FUNCTION kb.documents_keep_latest()")
    op.execute(DROP_SCHEMA_IF_EMPTY)
    op.drop_index("ix_artifact_versions_kb_pending", table_name="artifact_versions", schema="work")
