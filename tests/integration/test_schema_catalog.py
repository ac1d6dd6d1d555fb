"""The migrated schema, read back from Postgres' catalog (not from our own metadata)."""

from __future__ import annotations

import re

import psycopg
import pytest

from sdk.settings import get_settings

EXPECTED_COLUMNS = {
    ("work", "artifacts"): {
        "artifact_id": ("character varying", "NO"),
        "type": ("text", "NO"),
        "latest_version": ("integer", "NO"),
        "tags": ("jsonb", "NO"),
        "owner_item_id": ("text", "YES"),
        "owner_run_id": ("text", "YES"),
        "created_at": ("timestamp with time zone", "NO"),
        "updated_at": ("timestamp with time zone", "NO"),
    },
    ("work", "artifact_versions"): {
        "artifact_id": ("character varying", "NO"),
        "version": ("integer", "NO"),
        "mime_type": ("text", "NO"),
        "size_bytes": ("bigint", "NO"),
        "content_hash": ("character varying", "NO"),
        "storage_backend": ("USER-DEFINED", "NO"),
        "storage_key": ("text", "YES"),
        "inline_content_text": ("text", "YES"),
        "inline_content_json": ("jsonb", "YES"),
        "preview_text": ("text", "YES"),
        "extracted_fields": ("jsonb", "NO"),
        "is_kb_ingested": ("boolean", "NO"),
        "created_at": ("timestamp with time zone", "NO"),
    },
    ("work", "artifact_links"): {
        "link_id": ("bigint", "NO"),
        "artifact_id": ("character varying", "NO"),
        "version": ("integer", "NO"),
        "link_type": ("text", "NO"),
        "item_id": ("text", "YES"),
        "run_id": ("text", "YES"),
        "event_id": ("character varying", "YES"),
        "workflow_name": ("text", "YES"),
        "created_at": ("timestamp with time zone", "NO"),
    },
    ("telemetry", "workflow_events"): {
        "event_id": ("character varying", "NO"),
        "event_time": ("timestamp with time zone", "NO"),
        "event_version": ("integer", "NO"),
        "event_name": ("text", "NO"),
        "ts": ("timestamp with time zone", "NO"),
        "run_id": ("text", "YES"),
        "item_id": ("text", "YES"),
        "workflow_name": ("text", "YES"),
        "agent_role": ("text", "YES"),
        "payload": ("jsonb", "NO"),
        "received_at": ("timestamp with time zone", "NO"),
    },
    ("kb", "documents"): {
        "document_id": ("bigint", "NO"),
        "artifact_id": ("character varying", "NO"),
        "version": ("integer", "NO"),
        "type": ("text", "NO"),
        "tags": ("jsonb", "NO"),
        "title": ("text", "YES"),
        "mime_type": ("text", "NO"),
        "content_hash": ("character varying", "NO"),
        "chunk_count": ("integer", "NO"),
        "skipped_reason": ("text", "YES"),
        "is_latest": ("boolean", "NO"),
        "embedding_model": ("text", "YES"),
        "ingested_at": ("timestamp with time zone", "NO"),
    },
    ("kb", "chunks"): {
        "chunk_id": ("bigint", "NO"),
        "document_id": ("bigint", "NO"),
        "ordinal": ("integer", "NO"),
        "text": ("text", "NO"),
        "start_char": ("integer", "NO"),
        "end_char": ("integer", "NO"),
        "tsv": ("tsvector", "NO"),
        # The embedded pgserver Postgres ships pgvector, so migration 0003 adds it.
        "embedding": ("USER-DEFINED", "YES"),
    },
}

EXPECTED_PKS = {
    ("work", "artifacts"): ["artifact_id"],
    ("work", "artifact_versions"): ["artifact_id", "version"],
    ("work", "artifact_links"): ["link_id"],
    ("telemetry", "workflow_events"): ["event_id", "event_time"],
    ("kb", "documents"): ["document_id"],
    ("kb", "chunks"): ["chunk_id"],
}

EXPECTED_INDEXES = {
    ("work", "ix_artifacts_type_created_at"): ("artifacts", "(type, created_at)"),
    ("work", "ix_artifacts_owner_item_id"): ("artifacts", "(owner_item_id)"),
    ("work", "ix_artifacts_tags"): ("artifacts", "USING gin (tags)"),
    ("work", "ix_artifact_versions_content_hash"): ("artifact_versions", "(content_hash)"),
    ("work", "ix_artifact_links_item_id"): ("artifact_links", "(item_id)"),
    ("work", "ix_artifact_links_run_id"): ("artifact_links", "(run_id)"),
    ("work", "ix_artifact_links_artifact_id_version"): (
        "artifact_links",
        "(artifact_id, version)",
    ),
    ("telemetry", "ix_workflow_events_event_name_ts"): ("workflow_events", "(event_name, ts)"),
    ("telemetry", "ix_workflow_events_item_id_ts"): ("workflow_events", "(item_id, ts)"),
    ("telemetry", "ix_workflow_events_run_id_event_name_ts"): (
        "workflow_events",
        "(run_id, event_name, ts)",
    ),
    ("telemetry", "ix_workflow_events_run_completed_status"): (
        "workflow_events",
        "(((payload ->> 'status'::text)), run_id) "
        "WHERE (event_name = 'workflow.run_completed'::text)",
    ),
    ("telemetry", "ix_workflow_events_ts_brin"): ("workflow_events", "USING brin (ts)"),
    ("work", "ix_artifact_versions_kb_pending"): (
        "artifact_versions",
        "(created_at) WHERE (NOT is_kb_ingested)",
    ),
    ("kb", "ix_documents_tags"): ("documents", "USING gin (tags)"),
    ("kb", "ix_documents_type"): ("documents", "(type)"),
    ("kb", "uq_documents_artifact_id_version"): ("documents", "(artifact_id, version)"),
    ("kb", "ix_chunks_tsv"): ("chunks", "USING gin (tsv)"),
    ("kb", "uq_chunks_document_id_ordinal"): ("chunks", "(document_id, ordinal)"),
}


@pytest.fixture(scope="module")
def catalog(migrated_db_url: str) -> psycopg.Connection:
    with psycopg.connect(migrated_db_url) as conn:
        yield conn


@pytest.mark.parametrize(("table", "columns"), EXPECTED_COLUMNS.items())
def test_columns_and_types(
    catalog: psycopg.Connection, table: tuple[str, str], columns: dict[str, tuple[str, str]]
) -> None:
    rows = catalog.execute(
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = %s",
        table,
    ).fetchall()
    assert {name: (dtype, nullable) for name, dtype, nullable in rows} == columns


def test_identifier_and_hash_lengths(catalog: psycopg.Connection) -> None:
    rows = catalog.execute(
        "SELECT table_name, column_name, character_maximum_length "
        "FROM information_schema.columns WHERE table_schema IN ('work', 'telemetry', 'kb') "
        "AND data_type = 'character varying' AND table_name NOT LIKE 'workflow_events_p%'"
    ).fetchall()
    lengths = {(t, c): n for t, c, n in rows}
    assert lengths[("artifact_versions", "content_hash")] == 64
    assert lengths[("documents", "content_hash")] == 64
    assert {n for (t, c), n in lengths.items() if c != "content_hash"} == {26}


@pytest.mark.parametrize(("table", "pk"), EXPECTED_PKS.items())
def test_primary_keys(catalog: psycopg.Connection, table: tuple[str, str], pk: list[str]) -> None:
    rows = catalog.execute(
        "SELECT kcu.column_name FROM information_schema.table_constraints tc "
        "JOIN information_schema.key_column_usage kcu "
        "  ON kcu.constraint_name = tc.constraint_name AND kcu.table_schema = tc.table_schema "
        "WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = %s "
        "AND tc.table_name = %s ORDER BY kcu.ordinal_position",
        table,
    ).fetchall()
    assert [r[0] for r in rows] == pk


def test_foreign_keys(catalog: psycopg.Connection) -> None:
    rows = catalog.execute(
        "SELECT conrelid::regclass::text, "
        "  (SELECT array_agg(attname::text ORDER BY k.n) FROM unnest(conkey) WITH ORDINALITY "
        "   AS k(attnum, n) JOIN pg_attribute a ON a.attrelid = conrelid AND a.attnum = k.attnum),"
        "  confrelid::regclass::text, "
        "  (SELECT array_agg(attname::text ORDER BY k.n) FROM unnest(confkey) WITH ORDINALITY "
        "   AS k(attnum, n) JOIN pg_attribute a ON a.attrelid = confrelid AND a.attnum = k.attnum),"
        "  confdeltype "
        "FROM pg_constraint WHERE contype = 'f' "
        "AND connamespace IN ('work'::regnamespace, 'kb'::regnamespace) ORDER BY 1"
    ).fetchall()
    assert rows == [
        ("kb.chunks", ["document_id"], "kb.documents", ["document_id"], "c"),
        (
            "kb.documents",
            ["artifact_id", "version"],
            "work.artifact_versions",
            ["artifact_id", "version"],
            "c",
        ),
        (
            "work.artifact_links",
            ["artifact_id", "version"],
            "work.artifact_versions",
            ["artifact_id", "version"],
            "c",
        ),
        ("work.artifact_versions", ["artifact_id"], "work.artifacts", ["artifact_id"], "a"),
    ]


def test_storage_backend_enum_labels(catalog: psycopg.Connection) -> None:
    rows = catalog.execute(
        "SELECT e.enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid "
        "WHERE t.typname = 'storage_backend' AND t.typnamespace = 'work'::regnamespace "
        "ORDER BY e.enumsortorder"
    ).fetchall()
    assert [r[0] for r in rows] == ["inline", "s3", "file"]


@pytest.mark.parametrize(("name", "columns"), EXPECTED_INDEXES.items())
def test_named_indexes(catalog: psycopg.Connection, name: tuple[str, str], columns: str) -> None:
    row = catalog.execute(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = %s AND indexname = %s", name
    ).fetchone()
    assert row is not None, f"index {name} missing"
    assert row[0].endswith(columns)


def test_event_indexes_exist_on_every_partition(catalog: psycopg.Connection) -> None:
    rows = catalog.execute(
        "SELECT c.relname, count(x.indexrelid) FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_index x ON x.indrelid = c.oid "
        "WHERE i.inhparent = 'telemetry.workflow_events'::regclass GROUP BY 1"
    ).fetchall()
    assert len(rows) == 1 + get_settings().event_partitions_ahead
    # PK + three secondary indexes + the BRIN on ts (migration 0002) + the partial one on
    # run_completed statuses (0006)
    assert all(count == 6 for _, count in rows), rows


def test_events_table_is_range_partitioned_on_event_time_without_default(
    catalog: psycopg.Connection,
) -> None:
    strategy, key = catalog.execute(
        "SELECT p.partstrat, pg_get_partkeydef(p.partrelid) FROM pg_partitioned_table p "
        "WHERE p.partrelid = 'telemetry.workflow_events'::regclass"
    ).fetchone()
    assert (strategy, key) == ("r", "RANGE (event_time)")
    defaults = catalog.execute(
        "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'telemetry.workflow_events'::regclass "
        "AND pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT'"
    ).fetchone()
    assert defaults == (0,)


def test_check_constraints_have_their_declared_names(catalog: psycopg.Connection) -> None:
    rows = catalog.execute(
        "SELECT conrelid::regclass::text, conname FROM pg_constraint "
        "WHERE contype = 'c' AND conrelid = ANY (ARRAY["
        "'work.artifacts', 'work.artifact_versions', 'telemetry.workflow_events']::regclass[])"
    ).fetchall()
    assert set(rows) == {
        ("work.artifacts", "ck_artifacts_artifact_id_ulid"),
        ("work.artifacts", "ck_artifacts_latest_version_nonnegative"),
        ("work.artifacts", "ck_artifacts_tags_array"),
        ("work.artifact_versions", "ck_artifact_versions_version_positive"),
        ("work.artifact_versions", "ck_artifact_versions_size_nonnegative"),
        ("work.artifact_versions", "ck_artifact_versions_content_hash_sha256"),
        ("work.artifact_versions", "ck_artifact_versions_storage_key_matches_backend"),
        ("telemetry.workflow_events", "ck_workflow_events_event_id_ulid"),
        ("telemetry.workflow_events", "ck_workflow_events_event_time_from_event_id"),
        ("telemetry.workflow_events", "ck_workflow_events_event_version_positive"),
        ("telemetry.workflow_events", "ck_workflow_events_payload_object"),
    }


def test_metadata_check_constraint_names_match_the_catalog(catalog: psycopg.Connection) -> None:
    """Alembic does not compare CHECK constraints, so compare their names here."""
    import sqlalchemy as sa

    from sdk.db.schema import metadata

    declared = set()
    for table in metadata.tables.values():
        for constraint in table.constraints:
            if isinstance(constraint, sa.CheckConstraint):
                # The naming convention has already resolved the final name.
                declared.add((f"{table.schema}.{table.name}", str(constraint.name)))
    rows = catalog.execute(
        "SELECT conrelid::regclass::text, conname FROM pg_constraint WHERE contype = 'c' "
        "AND connamespace IN ('work'::regnamespace, 'telemetry'::regnamespace, 'kb'::regnamespace) "
        "AND conrelid::regclass::text NOT LIKE 'telemetry.workflow_events_p%'"
    ).fetchall()
    assert set(rows) == declared


def test_chunk_tsvector_is_generated_from_the_text(catalog: psycopg.Connection) -> None:
    row = catalog.execute(
        "SELECT is_generated, generation_expression FROM information_schema.columns "
        "WHERE table_schema = 'kb' AND table_name = 'chunks' AND column_name = 'tsv'"
    ).fetchone()
    assert row == ("ALWAYS", "to_tsvector('english'::regconfig, text)")


# Every trigger on wdp's tables (partitions aside: each gets its own no-truncate trigger).
EXPECTED_TRIGGERS = {
    ("kb.documents", "documents_keep_latest"): (
        "AFTER DELETE ON kb.documents REFERENCING OLD TABLE AS gone FOR EACH STATEMENT "
        "EXECUTE FUNCTION kb.documents_keep_latest()"
    ),
    # 0007: a price change is a new row; costs name the row they used.
    ("telemetry.model_prices", "model_prices_append_only"): (
        "BEFORE DELETE OR UPDATE ON telemetry.model_prices FOR EACH ROW "
        "EXECUTE FUNCTION telemetry.reject_price_change()"
    ),
    ("telemetry.workflow_events", "workflow_events_append_only"): (
        "BEFORE DELETE OR UPDATE ON telemetry.workflow_events FOR EACH ROW "
        "EXECUTE FUNCTION telemetry.reject_event_change()"
    ),
    ("telemetry.workflow_events", "workflow_events_no_truncate"): (
        "BEFORE TRUNCATE ON telemetry.workflow_events FOR EACH STATEMENT "
        "EXECUTE FUNCTION telemetry.reject_event_change()"
    ),
    ("work.artifact_versions", "artifact_versions_immutable"): (
        "BEFORE DELETE OR UPDATE ON work.artifact_versions FOR EACH ROW "
        "EXECUTE FUNCTION work.guard_artifact_version()"
    ),
    ("work.artifact_versions", "artifact_versions_no_truncate"): (
        "BEFORE TRUNCATE ON work.artifact_versions FOR EACH STATEMENT "
        "EXECUTE FUNCTION work.reject_truncate()"
    ),
    # 0004: an UPDATE is checked at once; a new artifact's row only at COMMIT, because
    # the write path inserts it (saying latest_version = 1) before its version 1.
    ("work.artifacts", "artifacts_latest_version_forward"): (
        "BEFORE UPDATE OF latest_version ON work.artifacts FOR EACH ROW "
        "EXECUTE FUNCTION work.guard_latest_version()"
    ),
    ("work.artifacts", "artifacts_latest_version_exists"): (
        "AFTER INSERT ON work.artifacts DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
        "EXECUTE FUNCTION work.guard_latest_version()"
    ),
}


def test_triggers(catalog: psycopg.Connection) -> None:
    rows = catalog.execute(
        "SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t "
        "JOIN pg_class c ON c.oid = t.tgrelid WHERE NOT t.tgisinternal "
        "AND c.relnamespace IN ('work'::regnamespace, 'telemetry'::regnamespace, "
        "'kb'::regnamespace) AND NOT c.relispartition"
    ).fetchall()
    found = {
        (table, name): re.sub(rf"^CREATE (CONSTRAINT )?TRIGGER {name} ", "", definition)
        for table, name, definition in rows
    }
    assert found == EXPECTED_TRIGGERS


def test_postgres_and_python_agree_on_partition_names(catalog: psycopg.Connection) -> None:
    """The one partition-name pattern means the same in a catalog query (``~``) as in
    month_of_table, and the migrated database's partitions are exactly what it matches."""
    from sdk.db.partitions import PARTITION_NAME_PATTERN, PARTITION_PREFIX, month_of_table

    p = PARTITION_PREFIX
    names = [f"{p}2026_01", f"{p}1999_12", f"{p}2026_1", f"{p}2026_001", f"x{p}2026_01",
             f"{p}2026_01_old", f"{p}abcd_01", "workflow_events", f"{p}2026_01\n"]  # fmt: skip
    for name in names:
        (matched,) = catalog.execute("SELECT %s ~ %s", (name, PARTITION_NAME_PATTERN)).fetchone()
        assert matched == (month_of_table(name) is not None), name
    tables = catalog.execute(
        "SELECT relname FROM pg_class WHERE relnamespace = 'telemetry'::regnamespace "
        "AND relkind = 'r' AND relname ~ %s",
        (PARTITION_NAME_PATTERN,),
    ).fetchall()
    attached = catalog.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'telemetry.workflow_events'::regclass"
    ).fetchall()
    assert tables
    assert sorted(tables) == sorted(attached)
