"""Foundation: work (artifacts) and telemetry (monthly-partitioned events) schemas.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from sdk.db.partitions import Month, create_missing_partitions, months_from
from sdk.settings import get_settings

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ULID = "^[0-7][0-9A-HJKMNP-TV-Z]{25}$"
NOW = sa.text("now()")

# Decodes the 48-bit millisecond timestamp in a ULID's first 10 characters (NULL for a
# string that is not a ULID). IMMUTABLE so it can sit in a CHECK constraint, which runs
# it for every inserted event: PL/pgSQL over bytes measured 5 us a call where the SQL
# version (strpos per character, generate_series) took 15 us, three times the insert
# itself. Seconds and milliseconds are added separately so the interval arithmetic
# (float8 inside) stays exact over the whole ULID range.
ULID_TIME_FN = r"""
CREATE FUNCTION telemetry.ulid_time(ulid text) RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  head bytea;
  ms bigint := 0;
  v int;
BEGIN
  IF length(ulid) <> 26 OR ulid !~ '^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$' THEN
    RETURN NULL;
  END IF;
  head := convert_to(upper(left(ulid, 10)), 'SQL_ASCII');
  FOR i IN 0..9 LOOP
    v := get_byte(head, i);
    v := CASE
      WHEN v <= 57 THEN v - 48  -- 0-9
      WHEN v <= 72 THEN v - 55  -- A-H
      WHEN v <= 75 THEN v - 56  -- J-K (no I)
      WHEN v <= 78 THEN v - 57  -- M-N (no L)
      WHEN v <= 84 THEN v - 58  -- P-T (no O)
      ELSE v - 59               -- V-Z (no U)
    END;
    ms := (ms << 5) | v;
  END LOOP;
  RETURN timestamptz 'epoch' + (ms / 1000) * interval '1 second'
                             + (ms % 1000) * interval '1 millisecond';
END
$$
"""

APPEND_ONLY_FN = """
CREATE FUNCTION telemetry.reject_event_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'restrict_violation',
          HINT = 'retention removes whole monthly partitions, never rows';
END
$$
"""

REJECT_TRUNCATE_FN = """
CREATE FUNCTION work.reject_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'TRUNCATE of %.% is not allowed: rows are immutable', TG_TABLE_SCHEMA, TG_TABLE_NAME
    USING ERRCODE = 'restrict_violation';
END
$$
"""

# Versions are immutable except for the bookkeeping columns that later stages fill in.
# Comparing the rows as JSON minus those columns keeps the rule right when columns are
# added. DELETE is possible only on the explicit admin path, which sets
# wdp.allow_artifact_delete for its own transaction (SET LOCAL).
IMMUTABLE_VERSION_FN = """
CREATE FUNCTION work.guard_artifact_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    IF (to_jsonb(NEW) - 'is_kb_ingested' - 'extracted_fields')
       IS DISTINCT FROM (to_jsonb(OLD) - 'is_kb_ingested' - 'extracted_fields') THEN
      RAISE EXCEPTION 'artifact versions are immutable: only is_kb_ingested and extracted_fields may change'
        USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
  END IF;
  IF coalesce(current_setting('wdp.allow_artifact_delete', true), '') <> 'on' THEN
    RAISE EXCEPTION 'artifact versions cannot be deleted outside the admin path'
      USING ERRCODE = 'restrict_violation';
  END IF;
  RETURN OLD;
END
$$
"""


# Another application may have put its own objects into a schema of the same name.
DROP_SCHEMA_IF_EMPTY = """
DO $$
BEGIN
  IF NOT EXISTS (
    SELECT 1 FROM pg_class WHERE relnamespace = '{schema}'::regnamespace
    UNION ALL SELECT 1 FROM pg_proc WHERE pronamespace = '{schema}'::regnamespace
    UNION ALL SELECT 1 FROM pg_type WHERE typnamespace = '{schema}'::regnamespace
  ) THEN
    DROP SCHEMA {schema};
  END IF;
END
$$
"""


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS work")
    op.execute("CREATE SCHEMA IF NOT EXISTS telemetry")
    storage_backend = pg.ENUM("inline", "s3", "file", name="storage_backend", schema="work")
    storage_backend.create(op.get_bind())
    op.execute(ULID_TIME_FN)
    op.execute(APPEND_ONLY_FN)
    op.execute(IMMUTABLE_VERSION_FN)
    op.execute(REJECT_TRUNCATE_FN)

    op.create_table(
        "artifacts",
        sa.Column("artifact_id", sa.String(26), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("latest_version", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("tags", pg.JSONB(), server_default=sa.text("'[]'::jsonb"), nullable=False),
        sa.Column("owner_item_id", sa.Text()),
        sa.Column("owner_run_id", sa.Text()),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.CheckConstraint(f"artifact_id ~ '{ULID}'", name=op.f("ck_artifacts_artifact_id_ulid")),
        sa.CheckConstraint(
            "latest_version >= 0", name=op.f("ck_artifacts_latest_version_nonnegative")
        ),
        sa.CheckConstraint("jsonb_typeof(tags) = 'array'", name=op.f("ck_artifacts_tags_array")),
        sa.PrimaryKeyConstraint("artifact_id", name="pk_artifacts"),
        schema="work",
    )
    op.create_index(
        "ix_artifacts_type_created_at", "artifacts", ["type", "created_at"], schema="work"
    )
    op.create_index("ix_artifacts_owner_item_id", "artifacts", ["owner_item_id"], schema="work")
    op.create_index(
        "ix_artifacts_tags", "artifacts", ["tags"], schema="work", postgresql_using="gin"
    )

    op.create_table(
        "artifact_versions",
        sa.Column("artifact_id", sa.String(26), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("mime_type", sa.Text(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column(
            "storage_backend",
            pg.ENUM(name="storage_backend", schema="work", create_type=False),
            nullable=False,
        ),
        sa.Column("storage_key", sa.Text()),
        sa.Column("inline_content_text", sa.Text()),
        sa.Column("inline_content_json", pg.JSONB()),
        sa.Column("preview_text", sa.Text()),
        sa.Column(
            "extracted_fields", pg.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False
        ),
        sa.Column("is_kb_ingested", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.CheckConstraint("version >= 1", name=op.f("ck_artifact_versions_version_positive")),
        sa.CheckConstraint("size_bytes >= 0", name=op.f("ck_artifact_versions_size_nonnegative")),
        sa.CheckConstraint(
            "content_hash ~ '^[0-9a-f]{64}$'", name=op.f("ck_artifact_versions_content_hash_sha256")
        ),
        sa.CheckConstraint(
            "(storage_backend = 'inline') = (storage_key IS NULL)",
            name=op.f("ck_artifact_versions_storage_key_matches_backend"),
        ),
        sa.ForeignKeyConstraint(
            ["artifact_id"],
            ["work.artifacts.artifact_id"],
            name="fk_artifact_versions_artifact_id_artifacts",
        ),
        sa.PrimaryKeyConstraint("artifact_id", "version", name="pk_artifact_versions"),
        schema="work",
    )
    op.create_index(
        "ix_artifact_versions_content_hash", "artifact_versions", ["content_hash"], schema="work"
    )
    op.execute(
        "CREATE TRIGGER artifact_versions_immutable BEFORE UPDATE OR DELETE ON work.artifact_versions "
        "FOR EACH ROW EXECUTE FUNCTION work.guard_artifact_version()"
    )
    op.execute(
        "CREATE TRIGGER artifact_versions_no_truncate BEFORE TRUNCATE ON work.artifact_versions "
        "FOR EACH STATEMENT EXECUTE FUNCTION work.reject_truncate()"
    )

    op.create_table(
        "artifact_links",
        sa.Column("link_id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("artifact_id", sa.String(26), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("link_type", sa.Text(), nullable=False),
        sa.Column("item_id", sa.Text()),
        sa.Column("run_id", sa.Text()),
        sa.Column("event_id", sa.String(26)),
        sa.Column("workflow_name", sa.Text()),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.ForeignKeyConstraint(
            ["artifact_id", "version"],
            ["work.artifact_versions.artifact_id", "work.artifact_versions.version"],
            name="fk_artifact_links_artifact_id_version_artifact_versions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("link_id", name="pk_artifact_links"),
        schema="work",
    )
    op.create_index("ix_artifact_links_item_id", "artifact_links", ["item_id"], schema="work")
    op.create_index("ix_artifact_links_run_id", "artifact_links", ["run_id"], schema="work")
    op.create_index(
        "ix_artifact_links_artifact_id_version",
        "artifact_links",
        ["artifact_id", "version"],
        schema="work",
    )

    op.create_table(
        "workflow_events",
        sa.Column("event_id", sa.String(26), nullable=False),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("event_name", sa.Text(), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("run_id", sa.Text()),
        sa.Column("item_id", sa.Text()),
        sa.Column("workflow_name", sa.Text()),
        sa.Column("agent_role", sa.Text()),
        sa.Column("payload", pg.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.CheckConstraint(f"event_id ~ '{ULID}'", name=op.f("ck_workflow_events_event_id_ulid")),
        sa.CheckConstraint(
            "event_time = telemetry.ulid_time(event_id)",
            name=op.f("ck_workflow_events_event_time_from_event_id"),
        ),
        sa.CheckConstraint(
            "event_version >= 1", name=op.f("ck_workflow_events_event_version_positive")
        ),
        sa.CheckConstraint(
            "jsonb_typeof(payload) = 'object'", name=op.f("ck_workflow_events_payload_object")
        ),
        sa.PrimaryKeyConstraint("event_id", "event_time", name="pk_workflow_events"),
        schema="telemetry",
        postgresql_partition_by="RANGE (event_time)",
    )
    op.create_index(
        "ix_workflow_events_event_name_ts",
        "workflow_events",
        ["event_name", "ts"],
        schema="telemetry",
    )
    op.create_index(
        "ix_workflow_events_item_id_ts", "workflow_events", ["item_id", "ts"], schema="telemetry"
    )
    op.create_index(
        "ix_workflow_events_run_id_ts", "workflow_events", ["run_id", "ts"], schema="telemetry"
    )
    op.execute(
        "CREATE TRIGGER workflow_events_append_only BEFORE UPDATE OR DELETE ON telemetry.workflow_events "
        "FOR EACH ROW EXECUTE FUNCTION telemetry.reject_event_change()"
    )
    # Statement triggers are not cloned to partitions: each partition gets its own too.
    op.execute(
        "CREATE TRIGGER workflow_events_no_truncate BEFORE TRUNCATE ON telemetry.workflow_events "
        "FOR EACH STATEMENT EXECUTE FUNCTION telemetry.reject_event_change()"
    )

    # The current month plus EVENT_PARTITIONS_AHEAD; Dagster keeps the window rolling.
    ahead = get_settings().event_partitions_ahead
    create_missing_partitions(op.get_bind(), months_from(Month.current(), 1 + ahead))


def downgrade() -> None:
    # Only wdp's own objects; the schemas go only if nothing else lives in them.
    op.drop_table("workflow_events", schema="telemetry")  # drops every partition with it
    op.drop_table("artifact_links", schema="work")
    op.drop_table("artifact_versions", schema="work")
    op.drop_table("artifacts", schema="work")
    op.execute("DROP FUNCTION telemetry.reject_event_change()")
    op.execute("DROP FUNCTION telemetry.ulid_time(text)")
    op.execute("DROP FUNCTION work.guard_artifact_version()")
    op.execute("DROP FUNCTION work.reject_truncate()")
    pg.ENUM(name="storage_backend", schema="work").drop(op.get_bind())
    op.execute(DROP_SCHEMA_IF_EMPTY.format(schema="telemetry"))
    op.execute(DROP_SCHEMA_IF_EMPTY.format(schema="work"))
