"""Fixtures for integration tests that need a running ingest API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.servers import ApiServer, run_api


@pytest.fixture(scope="module")
def api_server(
    migrated_db_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    """``wdp api`` on a free loopback port, on this module's migrated database."""
    log = tmp_path_factory.mktemp("api") / "api.log"
    with run_api(migrated_db_url, log) as server:
        yield server
