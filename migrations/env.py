"""Alembic environment: wdp's schemas only, database from the shared settings.

The version table is ``public.wdp_alembic_version`` so wdp can share a database with
other Alembic users (Dagster's own storage keeps an ``alembic_version`` table).
Autogenerate and ``alembic check`` look only at wdp's schemas and ignore the monthly
partitions of ``telemetry.workflow_events``, which are data, not schema, and the
optional ``kb.chunks.embedding`` column (present only where pgvector is available).
"""

from __future__ import annotations

import logging.config
import warnings
from typing import Any

import sqlalchemy as sa
from alembic import context

from sdk.db.engine import create_engine
from sdk.db.partitions import month_of_table
from sdk.db.schema import KB_EMBEDDING_COLUMN, KB_SCHEMA, SCHEMAS, metadata

VERSION_TABLE = "wdp_alembic_version"

config = context.config
if config.config_file_name is not None and not config.attributes.get("skip_logging_config"):
    logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)


def include_name(name: str | None, type_: str, parent_names: dict[str, Any]) -> bool:
    if type_ == "schema":
        return name in SCHEMAS
    if type_ == "table":
        return name != VERSION_TABLE and month_of_table(name or "") is None
    if type_ == "column":
        # Optional: present only where pgvector was available (migration 0003).
        return not (
            name == KB_EMBEDDING_COLUMN
            and parent_names.get("schema_name") == KB_SCHEMA
            and parent_names.get("table_name") == "chunks"
        )
    return True


def _configure(connection: sa.Connection) -> None:
    # Reflection warns about pgvector's type before include_name can skip the column.
    warnings.filterwarnings(
        "ignore", message="Did not recognize type 'vector'", category=sa.exc.SAWarning
    )
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        include_schemas=True,
        include_name=include_name,
        compare_type=True,
        compare_server_default=True,
        transaction_per_migration=True,
    )


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = config.get_main_option("sqlalchemy.url") or None
    engine = create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            _configure(conn)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit(
        "offline (--sql) migrations are not supported: partitions are created from "
        "the live clock; run against a database"
    )
run_migrations_online()
