"""The one place wdp reads its environment.

Every component (SDK, ingest API, Dagster definitions, CLI, migrations) builds its
configuration from :class:`WdpSettings`. Nothing reads ``os.environ`` at import time:
settings are constructed on first use by :func:`get_settings`, so a test or a host
application can set variables (or pass a settings object explicitly) before anything
connects anywhere. The one exception is the Dagster code location, which reads
``AGGREGATE_START_DATE`` when its definitions load: a partitions definition needs its
first day when it is built. Every field is documented in ``docs/configuration.md``; a unit test
keeps the two in step.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class WdpSettings(BaseSettings):
    """Typed configuration, read from environment variables of the same (upper-case) name."""

    model_config = SettingsConfigDict(
        env_prefix="",
        case_sensitive=False,
        extra="ignore",
        frozen=True,
    )

    database_url: SecretStr | None = Field(
        default=None,
        description=(
            "Postgres to use, as a libpq URI (postgresql://…) or a SQLAlchemy URL "
            "(postgresql+psycopg://…). Unset: an embedded Postgres from pgserver under "
            "WDP_DATA_DIR is started or reused."
        ),
    )
    wdp_data_dir: Path = Field(
        default=Path(".wdp"),
        description="Local state: embedded Postgres data, artifact files, telemetry spool.",
    )
    event_retention_days: int = Field(
        default=90,
        ge=1,
        description="Raw telemetry months that ended more than this many days ago are dropped.",
    )
    event_partitions_ahead: int = Field(
        default=3,
        ge=1,
        le=24,
        description="Monthly event partitions kept ready beyond the current month.",
    )
    aggregate_lookback_days: int = Field(
        default=3,
        ge=0,
        le=60,
        description="Days before yesterday that the late-data schedule re-aggregates daily.",
    )
    aggregate_start_date: date = Field(
        default=date(2026, 1, 1),
        description=(
            "First UTC day of the daily event aggregates (Dagster's daily partitions). "
            "Read when the Dagster definitions load."
        ),
    )
    usage_daily_budget_usd: Decimal | None = Field(
        default=None,
        gt=0,
        description=(
            "A day's (or one workflow's) known cost above this many USD makes the Dagster "
            "spend check warn; unset: no budget is checked."
        ),
    )
    prices_fetch_url: str | None = Field(
        default=None,
        description=(
            "Opt-in: `wdp prices sync` and the Dagster asset model_prices fetch genai-prices "
            "data (its data.json provider list) from this http(s) URL instead of syncing the "
            "pinned package's data. Unset: no network access; the pinned data is synced."
        ),
    )
    wdp_log_format: Literal["text", "json"] | None = Field(
        default=None,
        description=(
            "Format of every log line wdp prints: text or json (one object per line). "
            "Unset: json for `wdp api`, text for everything else."
        ),
    )
    artifact_inline_max_bytes: int = Field(
        default=512_000,
        ge=0,
        description="Artifact content smaller than this is stored inline in Postgres.",
    )

    # --- artifact storage -------------------------------------------------------------
    artifact_store: Literal["file", "s3"] = Field(
        default="file",
        description="Where artifact content above the inline limit goes: files or S3/MinIO.",
    )
    artifact_dir: Path | None = Field(
        default=None,
        description="Root of the file store; unset: WDP_DATA_DIR/artifact-store.",
    )
    artifact_bucket: str = Field(
        default="artifacts",
        min_length=3,
        max_length=63,
        pattern=r"^[a-z0-9][a-z0-9.-]+[a-z0-9]$",
        description="S3 bucket of the s3 store (it must exist).",
    )
    s3_endpoint_url: str | None = Field(
        default=None,
        description="S3-compatible endpoint (MinIO); unset: AWS. Set: path-style addressing.",
    )
    aws_access_key_id: str | None = Field(
        default=None, description="S3 access key; unset: boto3's default credential chain."
    )
    aws_secret_access_key: SecretStr | None = Field(
        default=None, description="S3 secret key; unset: boto3's default credential chain."
    )
    aws_region: str = Field(default="us-east-1", min_length=1, description="S3 region.")
    artifact_multipart_threshold_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=5 * 1024 * 1024,
        description="Blobs at least this large are uploaded to S3 in parts.",
    )
    artifact_multipart_part_bytes: int = Field(
        default=8 * 1024 * 1024,
        ge=5 * 1024 * 1024,
        le=5 * 1024 * 1024 * 1024,
        description="Size of one multipart part (S3 needs at least 5 MiB).",
    )
    artifact_multipart_concurrency: int = Field(
        default=4, ge=1, le=32, description="Parts uploaded at once (memory: this x part size)."
    )
    artifact_gc_grace_hours: float = Field(
        default=24.0,
        ge=0,
        description="gc removes unreferenced blobs only once they are older than this.",
    )

    # --- knowledge base ---------------------------------------------------------------
    kb_chunk_size: int = Field(
        default=1000,
        ge=100,
        le=20_000,
        description="Target characters per KB chunk (a word longer than this stays whole).",
    )
    kb_chunk_overlap: int = Field(
        default=150, ge=0, description="Characters shared by consecutive KB chunks."
    )
    kb_batch_size: int = Field(
        default=200,
        ge=1,
        le=10_000,
        description="Artifact versions ingested per KB transaction.",
    )
    kb_max_content_bytes: int = Field(
        default=50 * 1024 * 1024,
        ge=1024,
        description="Larger artifact versions are recorded in the KB with zero chunks.",
    )
    kb_search_rank_pool: int = Field(
        default=2000,
        ge=10,
        le=1_000_000,
        description="Most full-text matches ranked per search (bounds search time).",
    )
    kb_embedder: Literal["none", "minilm"] = Field(
        default="none",
        description=(
            "Chunk embeddings for hybrid search: none (full-text only) or minilm "
            "(all-MiniLM-L6-v2, local, needs the kb-embeddings extra and pgvector)."
        ),
    )

    # --- ingest API -----------------------------------------------------------------
    ingest_api_keys: SecretStr | None = Field(
        default=None,
        description="Comma-separated API keys accepted by POST /telemetry/events*.",
    )
    read_api_keys: SecretStr | None = Field(
        default=None,
        description=(
            "Comma-separated API keys accepted by the read endpoints (GET /telemetry/runs*, "
            "/telemetry/usage); ingest keys do not grant reading, read keys do not grant "
            "ingestion."
        ),
    )
    ingest_auth_disabled: bool = Field(
        default=False,
        description=(
            "Run the ingest API without authentication (must be set explicitly); reads too, "
            "unless READ_API_KEYS is set."
        ),
    )
    ingest_max_event_bytes: int = Field(
        default=64 * 1024, ge=1024, description="Largest body of POST /telemetry/events."
    )
    ingest_max_batch_bytes: int = Field(
        default=5 * 1024 * 1024,
        ge=1024,
        description="Largest body of POST /telemetry/events/batch and /v1/traces (after gunzip).",
    )
    ingest_max_batch_events: int = Field(
        default=1000, ge=1, le=10_000, description="Most events in one batch request."
    )
    ingest_db_pool_size: int = Field(
        default=8, ge=1, le=100, description="Postgres connections per API worker process."
    )
    read_db_pool_size: int = Field(
        default=3,
        ge=1,
        le=100,
        description=(
            "Postgres connections per API worker process for the read endpoints, a pool of "
            "their own: reads never take the connections ingestion needs."
        ),
    )
    read_statement_timeout_ms: int = Field(
        default=10_000,
        ge=100,
        le=600_000,
        description=(
            "A read query (read API, wdp runs, wdp usage) is cancelled after this long "
            "(API: 503 with Retry-After)."
        ),
    )
    read_max_live_days: int = Field(
        default=7,
        ge=1,
        le=366,
        description=(
            "Most days one usage request computes from raw events (today and days without "
            "final aggregates); beyond it 422."
        ),
    )
    ui_session_hours: float = Field(
        default=12,
        gt=0,
        le=24 * 30,
        description="How long a login to the web UI (/ui) lasts before the key is asked again.",
    )
    ingest_group_commit_max: int = Field(
        default=500,
        ge=1,
        description="Most single-event requests written together in one transaction.",
    )
    ingest_group_commit_writers: int = Field(
        default=1,
        ge=1,
        le=16,
        description=(
            "Transactions the group-commit writer keeps in flight at once: more overlap "
            "commits with a slow (remote) database, fewer make bigger groups."
        ),
    )
    ingest_auth_failure_limit: int = Field(
        default=20,
        ge=0,
        le=10_000,
        description=(
            "Failed key checks allowed per client address within "
            "INGEST_AUTH_FAILURE_WINDOW_S; beyond it 429. 0: no limit."
        ),
    )
    ingest_auth_failure_window_s: float = Field(
        default=60.0, gt=0, le=86_400, description="Sliding window of the failed-auth limit."
    )
    ingest_auth_failure_clients: int = Field(
        default=10_000,
        ge=1,
        le=1_000_000,
        description="Client addresses the failed-auth limit remembers (least recent forgotten).",
    )
    ingest_header_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description="Time a client has to send a request's headers before it is disconnected.",
    )
    ingest_trusted_proxies: str = Field(
        default="",
        description=(
            "Comma-separated proxy addresses (or *) whose X-Forwarded-For the API believes; "
            "empty: the header is ignored and the peer address counts."
        ),
    )
    metrics_api_key: SecretStr | None = Field(
        default=None,
        description="Bearer key GET /metrics requires; unset: /metrics is open.",
    )

    # --- telemetry SDK ----------------------------------------------------------------
    telemetry_endpoint: str = Field(
        default="http://127.0.0.1:8000",
        description="Base URL of the ingest API the SDK sends events to.",
    )
    telemetry_api_key: SecretStr | None = Field(
        default=None,
        description="API key the SDK sends; unset: the local stack's generated key, if any.",
    )
    telemetry_disabled: bool = Field(default=False, description="Validate but send nothing.")
    telemetry_sync: bool = Field(
        default=False, description="Send on the caller's thread (scripts and tests)."
    )
    telemetry_batch_size: int = Field(default=500, ge=1, le=1000)
    telemetry_flush_interval_s: float = Field(default=1.0, gt=0, le=60)
    telemetry_queue_size: int = Field(default=10_000, ge=1)
    telemetry_timeout_s: float = Field(default=10.0, gt=0)
    telemetry_max_retries: int = Field(default=4, ge=0, le=20)
    telemetry_spool_dir: Path | None = Field(
        default=None, description="Outage spool; unset: WDP_DATA_DIR/telemetry-spool."
    )
    telemetry_spool_max_bytes: int = Field(default=256 * 1024 * 1024, ge=0)
    telemetry_durability: Literal["memory", "disk"] = Field(
        default="memory",
        description=(
            "memory: queued events are lost if the process is killed; disk: emit writes "
            "each event to the spool directory first (survives kill -9, not power loss)."
        ),
    )
    telemetry_shutdown_timeout_s: float = Field(default=5.0, ge=0)

    @field_validator("kb_chunk_overlap")
    @classmethod
    def _overlap_below_chunk_size(cls, value: int, info: ValidationInfo) -> int:
        size = info.data.get("kb_chunk_size")
        if size is not None and value >= size:
            raise ValueError(f"must be smaller than KB_CHUNK_SIZE ({size})")
        return value

    @property
    def telemetry_spool_path(self) -> Path:
        return self.telemetry_spool_dir or self.wdp_data_dir / "telemetry-spool"

    @property
    def artifact_path(self) -> Path:
        """Root directory of the file artifact store."""
        return self.artifact_dir or self.wdp_data_dir / "artifact-store"

    @property
    def api_keys(self) -> tuple[str, ...]:
        """The accepted ingest API keys, blanks removed."""
        if self.ingest_api_keys is None:
            return ()
        raw = self.ingest_api_keys.get_secret_value()
        return tuple(k.strip() for k in raw.split(",") if k.strip())

    @property
    def read_keys(self) -> tuple[str, ...]:
        """The accepted read API keys, blanks removed."""
        if self.read_api_keys is None:
            return ()
        raw = self.read_api_keys.get_secret_value()
        return tuple(k.strip() for k in raw.split(",") if k.strip())

    @field_validator(
        "database_url",
        "ingest_api_keys",
        "read_api_keys",
        "metrics_api_key",
        "telemetry_api_key",
        "s3_endpoint_url",
        "aws_access_key_id",
        "aws_secret_access_key",
        "artifact_dir",
        "wdp_log_format",
        "usage_daily_budget_usd",
        "prices_fetch_url",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # `DATABASE_URL= make run`, or an .env line left empty for docker compose,
        # means "not configured", not an empty value.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("prices_fetch_url")
    @classmethod
    def _prices_url_is_http(cls, value: str | None) -> str | None:
        if value is not None and not value.strip().lower().startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return None if value is None else value.strip()

    @field_validator("wdp_log_format", mode="before")
    @classmethod
    def _format_name_any_case(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("wdp_data_dir")
    @classmethod
    def _expand_data_dir(cls, value: Path) -> Path:
        return value.expanduser()


@lru_cache(maxsize=1)
def get_settings() -> WdpSettings:
    """Return the process-wide settings, read from the environment on first call."""
    return WdpSettings()


def reset_settings_cache() -> None:
    """Forget cached settings so the next :func:`get_settings` re-reads the environment.

    Tests and long-lived hosts that change variables at run time call this.
    """
    get_settings.cache_clear()
