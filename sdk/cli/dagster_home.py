"""Dagster's own instance for the local stack: DAGSTER_HOME under WDP_DATA_DIR.

Dagster keeps its runs, event logs and schedules in Postgres (dagster-postgres), on
the same server as the platform but in a database of its own (``dagster``), so its
tables never mix with wdp's schemas. Creating it needs the CREATEDB privilege on an
external ``DATABASE_URL`` (or create the database once by hand). The ``dagster.yaml``
written here reads the URL
from ``WDP_DAGSTER_PG_URL``, which ``wdp run`` sets for the Dagster processes; no
credentials are written to disk.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg

from sdk.db.url import with_database

DAGSTER_DATABASE = "dagster"
URL_VARIABLE = "WDP_DAGSTER_PG_URL"

DAGSTER_YAML = f"""\
# Written by `wdp run`: Dagster's instance storage on the platform's Postgres server,
# in its own database. The URL comes from {URL_VARIABLE} at run time.
storage:
  postgres:
    postgres_url:
      env: {URL_VARIABLE}
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    max_concurrent_runs: 2
telemetry:
  enabled: false
"""


def _database_exists(conn: psycopg.Connection[Any]) -> bool:
    query = "SELECT 1 FROM pg_database WHERE datname = %s"
    return conn.execute(query, [DAGSTER_DATABASE]).fetchone() is not None


def prepare(data_dir: Path, database_url: str) -> tuple[Path, str]:
    """Make DAGSTER_HOME and Dagster's database; return (home, libpq URL for Dagster)."""
    home = (data_dir / "dagster").resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists() or config.read_text() != DAGSTER_YAML:
        config.write_text(DAGSTER_YAML)
    with psycopg.connect(database_url, autocommit=True) as conn:
        if not _database_exists(conn):
            try:
                conn.execute(f'CREATE DATABASE "{DAGSTER_DATABASE}"')
            except psycopg.Error:
                # Another stack starting at the same moment may have made it first
                # (asked again rather than read from the error: sdk.db.errors owns those).
                if not _database_exists(conn):
                    raise
    # dagster-postgres is written for psycopg2; SQLAlchemy 2.1 would pick psycopg 3 for a
    # bare postgresql:// URL, whose connections Dagster's storage then finds closed.
    url = with_database(database_url, DAGSTER_DATABASE)
    return home, "postgresql+psycopg2://" + url.split("://", 1)[1]
