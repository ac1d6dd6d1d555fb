"""Every wdp table, in one SQLAlchemy ``MetaData``.

The Alembic migrations in ``migrations/`` must produce exactly this (``alembic check``
is clean; a test enforces it). What SQLAlchemy cannot express - triggers, the
ULID-decoding function, the monthly partitions - lives in the migrations and in
:mod:`sdk.db.partitions`, and is verified against the catalog by the integration tests.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

WORK_SCHEMA = "work"
TELEMETRY_SCHEMA = "telemetry"
KB_SCHEMA = "kb"
SCHEMAS = (WORK_SCHEMA, TELEMETRY_SCHEMA, KB_SCHEMA)

# The text-search configuration of the chunks' stored tsvector. Queries must use the
# same one; changing it means a migration that rewrites the generated column.
KB_TEXT_SEARCH_CONFIG = "english"

# Crockford base32, upper case, first character ≤ 7 (a ULID's 128 bits fit in 26 chars).
ULID_PATTERN = "^[0-7][0-9A-HJKMNP-TV-Z]{25}$"
SHA256_HEX_PATTERN = "^[0-9a-f]{64}$"

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

_now = sa.text("now()")

storage_backend = pg.ENUM("inline", "s3", "file", name="storage_backend", schema=WORK_SCHEMA)

# --- work: artifacts -----------------------------------------------------------------

artifacts = sa.Table(
    "artifacts",
    metadata,
    sa.Column("artifact_id", sa.String(26), primary_key=True),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("latest_version", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("tags", pg.JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
    sa.Column("owner_item_id", sa.Text),
    sa.Column("owner_run_id", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
    sa.CheckConstraint(f"artifact_id ~ '{ULID_PATTERN}'", name="artifact_id_ulid"),
    sa.CheckConstraint("latest_version >= 0", name="latest_version_nonnegative"),
    sa.CheckConstraint("jsonb_typeof(tags) = 'array'", name="tags_array"),
    sa.Index(None, "type", "created_at"),
    sa.Index(None, "owner_item_id"),
    sa.Index("ix_artifacts_tags", "tags", postgresql_using="gin"),
    schema=WORK_SCHEMA,
)

artifact_versions = sa.Table(
    "artifact_versions",
    metadata,
    sa.Column(
        "artifact_id",
        sa.String(26),
        sa.ForeignKey(artifacts.c.artifact_id),
        primary_key=True,
    ),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("mime_type", sa.Text, nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("storage_backend", storage_backend, nullable=False),
    sa.Column("storage_key", sa.Text),
    sa.Column("inline_content_text", sa.Text),
    sa.Column("inline_content_json", pg.JSONB),
    sa.Column("preview_text", sa.Text),
    sa.Column("extracted_fields", pg.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.Column("is_kb_ingested", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
    sa.CheckConstraint("version >= 1", name="version_positive"),
    sa.CheckConstraint("size_bytes >= 0", name="size_nonnegative"),
    sa.CheckConstraint(f"content_hash ~ '{SHA256_HEX_PATTERN}'", name="content_hash_sha256"),
    sa.CheckConstraint(
        "(storage_backend = 'inline') = (storage_key IS NULL)", name="storage_key_matches_backend"
    ),
    sa.Index(None, "content_hash"),
    # What KB ingestion picks from, oldest first; stays small as versions are ingested.
    sa.Index(
        "ix_artifact_versions_kb_pending",
        "created_at",
        postgresql_where=sa.text("NOT is_kb_ingested"),
    ),
    schema=WORK_SCHEMA,
)

artifact_links = sa.Table(
    "artifact_links",
    metadata,
    sa.Column("link_id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
    sa.Column("artifact_id", sa.String(26), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("link_type", sa.Text, nullable=False),
    sa.Column("item_id", sa.Text),
    sa.Column("run_id", sa.Text),
    sa.Column("event_id", sa.String(26)),
    sa.Column("workflow_name", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
    sa.ForeignKeyConstraint(
        ["artifact_id", "version"],
        [artifact_versions.c.artifact_id, artifact_versions.c.version],
        ondelete="CASCADE",
    ),
    sa.Index(None, "item_id"),
    sa.Index(None, "run_id"),
    sa.Index(None, "artifact_id", "version"),
    schema=WORK_SCHEMA,
)

# --- telemetry: workflow events ------------------------------------------------------

# Partitioned by month on event_time, which is the instant embedded in the ULID
# event_id (a CHECK enforces it). The primary key (event_id, event_time) is therefore
# exactly as unique as event_id alone, across all partitions: see docs/architecture.md.
workflow_events = sa.Table(
    "workflow_events",
    metadata,
    sa.Column("event_id", sa.String(26), primary_key=True),
    sa.Column("event_time", sa.DateTime(timezone=True), primary_key=True),
    sa.Column("event_version", sa.Integer, nullable=False, server_default=sa.text("1")),
    sa.Column("event_name", sa.Text, nullable=False),
    sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
    sa.Column("run_id", sa.Text),
    sa.Column("item_id", sa.Text),
    sa.Column("workflow_name", sa.Text),
    sa.Column("agent_role", sa.Text),
    sa.Column("payload", pg.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
    sa.CheckConstraint(f"event_id ~ '{ULID_PATTERN}'", name="event_id_ulid"),
    sa.CheckConstraint(
        "event_time = telemetry.ulid_time(event_id)", name="event_time_from_event_id"
    ),
    sa.CheckConstraint("event_version >= 1", name="event_version_positive"),
    sa.CheckConstraint("jsonb_typeof(payload) = 'object'", name="payload_object"),
    sa.Index(None, "event_name", "ts"),
    sa.Index(None, "item_id", "ts"),
    # One run's events of one kind (its end, its steps), also its events in time order
    # (migration 0006; it replaced (run_id, ts), which made every such lookup read all of
    # the run's events).
    sa.Index(None, "run_id", "event_name", "ts"),
    # The runs that ended, by status: what the runs list's status filter reads (0006).
    # Partial: only run_completed rows, about one event in a hundred.
    sa.Index(
        "ix_workflow_events_run_completed_status",
        sa.text("(payload->>'status')"),
        "run_id",
        postgresql_where=sa.text("event_name = 'workflow.run_completed'"),
    ),
    # Day-by-ts scans for the daily aggregates (migration 0002).
    sa.Index("ix_workflow_events_ts_brin", "ts", postgresql_using="brin"),
    schema=TELEMETRY_SCHEMA,
    postgresql_partition_by="RANGE (event_time)",
)

# The columns an event is written with, in table order: all but received_at, which the
# database stamps on arrival. The ingest store's SQL and the ingest benchmark's are built
# from it, so a column added to the table cannot be left out of them.
WORKFLOW_EVENT_COLUMNS: tuple[str, ...] = tuple(
    c.name for c in workflow_events.columns if c.name != "received_at"
)

# --- telemetry: daily aggregates -----------------------------------------------------

# What remains of raw events once retention drops their month: kept forever. The
# grouping columns use '' for "none" so they can be part of the primary key, whose
# leading `day` column also serves every per-day lookup (no separate index needed).
# Written only by sdk/usage/aggregation.py. Tokens, cost and the unknown-cost count are
# those of step events (other rows carry 0), so a sum over rows never counts a run twice.
# `aggregate_version` says which aggregation wrote a row: 1 before migration 0005 (no
# node; NULL unknown-cost count, cached tokens and max duration: "not recorded", never
# zero), 2 since. A v1 row whose raw month is gone stays v1 forever.
_empty = sa.text("''")
_zero = sa.text("0")
AGGREGATE_VERSION = 2

daily_event_aggregates = sa.Table(
    "daily_event_aggregates",
    metadata,
    # `doc` (Python-side only, no DDL) describes each column once: the Dagster asset's
    # column schema is built from it, and docs/usage.md explains the same figures.
    sa.Column("day", sa.Date, primary_key=True, doc="UTC day of the events' own ts."),
    sa.Column(
        "event_name", sa.Text, primary_key=True, doc="Event type, e.g. workflow.step_completed."
    ),
    sa.Column(
        "workflow_name",
        sa.Text,
        primary_key=True,
        server_default=_empty,
        doc="Workflow the events belong to; '' when they name none.",
    ),
    sa.Column(
        "agent_role",
        sa.Text,
        primary_key=True,
        server_default=_empty,
        doc="Agent role of the events; '' when they name none.",
    ),
    sa.Column(
        "model",
        sa.Text,
        primary_key=True,
        server_default=_empty,
        doc="Model a step used; '' for other events and steps without a model.",
    ),
    sa.Column(
        "node",
        sa.Text,
        primary_key=True,
        server_default=_empty,
        doc="Graph node of a step (subgraph nodes qualified, e.g. sub/inner); '' for other events.",
    ),
    sa.Column("events", sa.BigInteger, nullable=False, doc="Events in the group."),
    sa.Column("distinct_runs", sa.BigInteger, nullable=False, doc="Distinct run_ids in the group."),
    sa.Column(
        "distinct_items", sa.BigInteger, nullable=False, doc="Distinct item_ids in the group."
    ),
    sa.Column(
        "tokens_in",
        sa.BigInteger,
        nullable=False,
        server_default=_zero,
        doc="Input tokens of the group's steps (0 for other events).",
    ),
    sa.Column(
        "tokens_out",
        sa.BigInteger,
        nullable=False,
        server_default=_zero,
        doc="Output tokens of the group's steps (0 for other events).",
    ),
    sa.Column(
        "tokens_cached_in",
        sa.BigInteger,
        doc="Of tokens_in, those read from the prompt cache; NULL in version-1 rows.",
    ),
    sa.Column(
        "cost_usd",
        sa.Numeric,
        nullable=False,
        server_default=_zero,
        doc="Sum of the known step costs in USD: at least this much (see cost_unknown_steps).",
    ),
    sa.Column(
        "cost_unknown_steps",
        sa.BigInteger,
        doc="Steps whose cost is unknown (no price): never counted as $0; NULL in version-1 rows.",
    ),
    sa.Column(
        "errors",
        sa.BigInteger,
        nullable=False,
        server_default=_zero,
        doc="Steps with status error plus runs completed as failed.",
    ),
    sa.Column("duration_p50_ms", sa.Double, doc="Median step duration of the group, ms."),
    sa.Column("duration_p95_ms", sa.Double, doc="95th percentile step duration of the group, ms."),
    sa.Column(
        "duration_max_ms",
        sa.Double,
        doc="Longest step duration of the group, ms; NULL in version-1 rows.",
    ),
    sa.Column(
        "aggregate_version",
        sa.SmallInteger,
        nullable=False,
        doc="Aggregation that wrote the row: 1 before migration 0005 (no node), 2 since.",
    ),
    sa.Column(
        "computed_at",
        sa.DateTime(timezone=True),
        nullable=False,
        server_default=_now,
        doc="When the row was written.",
    ),
    sa.CheckConstraint(
        "aggregate_version = 1 "
        "OR (cost_unknown_steps IS NOT NULL AND tokens_cached_in IS NOT NULL)",
        name="current_rows_complete",
    ),
    schema=TELEMETRY_SCHEMA,
)


# Days whose raw events retention has (partly) dropped; their aggregates are never
# recomputed (platform_defs/assets/aggregates.py refuses them).
dropped_event_days = sa.Table(
    "dropped_event_days",
    metadata,
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("partition", sa.Text, nullable=False),
    sa.Column("dropped_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
    schema=TELEMETRY_SCHEMA,
)


# --- telemetry: model prices and priced usage ----------------------------------------

# Written only by sdk/prices/repository.py. Append-only (a trigger of migration 0007
# refuses UPDATE and DELETE): a price change or a correction is a new row, so every
# cost ever computed can name the row it used (`price_id`). See sdk/prices/book.py for
# which row prices a call on a day.
_rate = sa.Numeric
model_prices = sa.Table(
    "model_prices",
    metadata,
    sa.Column("price_id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
    sa.Column("model", sa.Text, nullable=False, doc="The model's canonical name."),
    sa.Column(
        "provider",
        sa.Text,
        nullable=False,
        server_default=_empty,
        doc="Provider id (genai-prices' ids); '' on a manual row for every provider.",
    ),
    sa.Column(
        "match_exact",
        pg.ARRAY(sa.Text),
        nullable=False,
        server_default=sa.text("'{}'::text[]"),
        doc="Lower-cased names and aliases matched exactly (before any pattern).",
    ),
    sa.Column("match_pattern", sa.Text, doc="Python regex searched in the lower-cased name."),
    sa.Column("valid_from", sa.Date, nullable=False, doc="First UTC day the price is in force."),
    sa.Column("input_per_mtok", _rate, nullable=False),
    sa.Column("output_per_mtok", _rate, nullable=False),
    sa.Column("cache_read_per_mtok", _rate, doc="NULL: cache reads billed as input."),
    sa.Column("cache_write_per_mtok", _rate, doc="NULL: cache writes billed as input."),
    sa.Column("reasoning_per_mtok", _rate, doc="NULL: reasoning tokens billed as output."),
    sa.Column(
        "tiers",
        pg.JSONB,
        nullable=False,
        server_default=sa.text("'{}'::jsonb"),
        doc='Context tiers per kind: {"input": [[above, rate], ...], ...}.',
    ),
    sa.Column("source", sa.Text, nullable=False, doc="'manual' or 'genai-prices <version>'."),
    sa.Column("provider_rank", sa.Integer, nullable=False, server_default=_zero),
    sa.Column("rank", sa.Integer, nullable=False, server_default=_zero),
    sa.Column("provider_pattern", sa.Text, doc="Synced rows: the names their provider serves."),
    sa.Column("note", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
    sa.CheckConstraint(
        "input_per_mtok >= 0 AND output_per_mtok >= 0 AND coalesce(cache_read_per_mtok, 0) >= 0 "
        "AND coalesce(cache_write_per_mtok, 0) >= 0 AND coalesce(reasoning_per_mtok, 0) >= 0",
        name="rates_nonnegative",
    ),
    sa.CheckConstraint(
        "cardinality(match_exact) > 0 OR match_pattern IS NOT NULL", name="matches_something"
    ),
    sa.CheckConstraint("jsonb_typeof(tiers) = 'object'", name="tiers_object"),
    sa.Index(None, "model", "provider", "valid_from"),
    schema=TELEMETRY_SCHEMA,
)

# Written only by sdk/usage: model calls summed per day and grouping, priced. Kept
# forever (like daily_event_aggregates) so a day can be re-priced from its token sums
# after retention dropped its raw events. `input_band` keeps calls apart by context
# size (sdk/prices/model.py BANDS), so tiered prices apply exactly. `basis` says what
# the cost rests on: 'tokens' (priced from the table), 'reported' (the provider's
# figure: it wins), 'estimate' (a step event without per-call usage: the emitted
# estimate, as before event_version 2), 'none' (a call that reported no usage: unknown).
model_usage_bases = ("tokens", "reported", "estimate", "none")
cost_sources = ("computed", "reported", "estimate", "unknown")
daily_model_usage = sa.Table(
    "daily_model_usage",
    metadata,
    sa.Column("day", sa.Date, primary_key=True, doc="UTC day of the step events' own ts."),
    sa.Column("workflow_name", sa.Text, primary_key=True, doc="Workflow; '' when none."),
    sa.Column("agent_role", sa.Text, primary_key=True, doc="Agent role; '' when none."),
    sa.Column("node", sa.Text, primary_key=True, doc="Graph node of the calls' step."),
    sa.Column(
        "step_model",
        sa.Text,
        primary_key=True,
        doc="The step's model field (as daily_event_aggregates.model): joins the two tables.",
    ),
    sa.Column("model", sa.Text, primary_key=True, doc="Model of the calls, as reported."),
    sa.Column("provider", sa.Text, primary_key=True, doc="Provider of the calls; '' when unknown."),
    sa.Column("input_band", sa.BigInteger, primary_key=True, doc="Context band of the calls."),
    sa.Column("basis", sa.Text, primary_key=True, doc="What the cost rests on (see above)."),
    sa.Column("steps", sa.BigInteger, nullable=False, doc="Step events with calls in the row."),
    sa.Column("calls", sa.BigInteger, nullable=False, doc="Model calls in the row."),
    sa.Column("tokens_in", sa.BigInteger, nullable=False, doc="Input tokens, cache included."),
    sa.Column("tokens_cached_in", sa.BigInteger, nullable=False, doc="Read from the cache."),
    sa.Column("tokens_cache_write", sa.BigInteger, nullable=False, doc="Written to the cache."),
    sa.Column(
        "tokens_out", sa.BigInteger, nullable=False, doc="Output tokens, reasoning included."
    ),
    sa.Column("tokens_reasoning", sa.BigInteger, nullable=False, doc="Reasoning tokens."),
    sa.Column("reported_usd", sa.Numeric, doc="Provider-reported (or emitted) USD, summed."),
    sa.Column("cost_usd", sa.Numeric, doc="The row's cost in USD; NULL when unknown."),
    sa.Column("cost_source", sa.Text, nullable=False, doc="computed, reported, estimate, unknown."),
    sa.Column("price_id", sa.BigInteger, doc="The model_prices row a computed cost used."),
    sa.Column(
        "computed_at",
        sa.DateTime(timezone=True),
        nullable=False,
        server_default=_now,
        doc="When the day's rows were aggregated from the raw events.",
    ),
    sa.Column(
        "priced_at",
        sa.DateTime(timezone=True),
        nullable=False,
        server_default=_now,
        doc="When the row's cost was last set (aggregation or re-pricing).",
    ),
    sa.CheckConstraint(
        "basis IN (" + ", ".join(f"'{b}'" for b in model_usage_bases) + ")", name="basis_known"
    ),
    sa.CheckConstraint(
        "cost_source IN (" + ", ".join(f"'{c}'" for c in cost_sources) + ")",
        name="cost_source_known",
    ),
    sa.CheckConstraint(
        "(cost_usd IS NULL) = (cost_source = 'unknown') "
        "AND (price_id IS NOT NULL) = (cost_source = 'computed')",
        name="cost_explained",
    ),
    schema=TELEMETRY_SCHEMA,
)


# --- kb: the knowledge base ----------------------------------------------------------

# One document per ingested artifact version, also for versions without text (then
# with zero chunks and the reason), so "ingested" is visible and explainable. Type and
# tags are copied at ingestion so search filters need no join into `work`. `is_latest`
# marks the newest ingested version of each artifact: what search returns by default.
kb_documents = sa.Table(
    "documents",
    metadata,
    sa.Column("document_id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
    sa.Column("artifact_id", sa.String(26), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("tags", pg.JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
    sa.Column("title", sa.Text),
    sa.Column("mime_type", sa.Text, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("chunk_count", sa.Integer, nullable=False),
    sa.Column("skipped_reason", sa.Text),
    sa.Column("is_latest", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("embedding_model", sa.Text),
    sa.Column("ingested_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
    sa.ForeignKeyConstraint(
        ["artifact_id", "version"],
        [artifact_versions.c.artifact_id, artifact_versions.c.version],
        ondelete="CASCADE",
    ),
    sa.UniqueConstraint("artifact_id", "version"),
    sa.CheckConstraint("chunk_count >= 0", name="chunk_count_nonnegative"),
    sa.CheckConstraint("jsonb_typeof(tags) = 'array'", name="tags_array"),
    sa.Index("ix_documents_tags", "tags", postgresql_using="gin"),
    sa.Index(None, "type"),
    schema=KB_SCHEMA,
)

# Chunks of a document's text, with their character offsets into the extracted text.
# `tsv` is generated by Postgres, so it can never disagree with `text`. An optional
# `embedding vector` column exists only where the pgvector extension was available
# (migration 0003); it is not declared here because it is optional, and migrations/
# env.py leaves it out of the autogenerate comparison.
kb_chunks = sa.Table(
    "chunks",
    metadata,
    sa.Column("chunk_id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
    sa.Column(
        "document_id",
        sa.BigInteger,
        sa.ForeignKey(kb_documents.c.document_id, ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("ordinal", sa.Integer, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("start_char", sa.Integer, nullable=False),
    sa.Column("end_char", sa.Integer, nullable=False),
    sa.Column(
        "tsv",
        pg.TSVECTOR,
        sa.Computed(f"to_tsvector('{KB_TEXT_SEARCH_CONFIG}'::regconfig, text)", persisted=True),
        nullable=False,
    ),
    sa.UniqueConstraint("document_id", "ordinal"),
    sa.CheckConstraint("ordinal >= 0", name="ordinal_nonnegative"),
    sa.CheckConstraint("0 <= start_char AND start_char < end_char", name="offsets_ordered"),
    sa.Index("ix_chunks_tsv", "tsv", postgresql_using="gin"),
    schema=KB_SCHEMA,
)

# The optional pgvector column of kb.chunks (see above).
KB_EMBEDDING_COLUMN = "embedding"
