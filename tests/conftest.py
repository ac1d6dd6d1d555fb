"""Shared fixtures: a real Postgres, never a mock.

``TEST_DATABASE_URL`` (a libpq URI with rights to CREATE DATABASE) picks an existing
server; otherwise one embedded pgserver cluster is started for the whole session in a
temporary directory and stopped at the end. Tests get their own databases from it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from sdk.db import embedded, migrate
from sdk.db.engine import create_engine
from sdk.db.url import with_database


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """libpq URI of a Postgres server the tests may create databases on."""
    external = os.environ.get("TEST_DATABASE_URL")
    if external:
        yield external
        return
    # Not under pytest's temporary root: every pytest session that starts resets that
    # folder to 0700, and a server running as the 'pgserver' user under it (as root)
    # then PANICs at its next checkpoint. A folder of our own is not touched.
    data_dir = Path(tempfile.mkdtemp(prefix="wdp-test-pg-"))
    url = embedded.start(data_dir)
    try:
        yield url
    finally:
        embedded.stop(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def database_factory(pg_server_url: str) -> Iterator[Callable[[], str]]:
    """Make empty databases on the test server; every one is dropped at session end."""
    created: list[str] = []

    def make() -> str:
        name = f"wdp_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(pg_server_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        return with_database(pg_server_url, name)

    yield make
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        for name in created:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def empty_db_url(database_factory: Callable[[], str]) -> str:
    """A fresh, empty database for one test."""
    return database_factory()


@pytest.fixture(scope="module")
def migrated_db_url(database_factory: Callable[[], str]) -> str:
    """A fresh database at the head revision, shared by the tests of one module."""
    url = database_factory()
    migrate.upgrade(url)
    return url


@pytest.fixture(scope="module")
def engine(migrated_db_url: str) -> Iterator[sa.Engine]:
    """An engine on :func:`migrated_db_url`."""
    eng = create_engine(migrated_db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def wdp_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Environment for code that reads settings: a private WDP_DATA_DIR, nothing inherited.

    Clears the settings cache before and after so no test sees another's configuration.
    """
    from sdk.settings import reset_settings_cache

    for var in ("DATABASE_URL", "EVENT_RETENTION_DAYS", "EVENT_PARTITIONS_AHEAD"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("WDP_DATA_DIR", str(tmp_path / "wdp"))
    reset_settings_cache()
    yield dict(os.environ)
    reset_settings_cache()
