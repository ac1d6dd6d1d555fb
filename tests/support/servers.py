"""The API on loopback for integration tests: the product's launcher with the test keys."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sdk.cli import launch
from sdk.cli.launch import ApiServer, free_port

TEST_API_KEYS = ("test-key-primary", "test-key-secondary")

__all__ = ["TEST_API_KEYS", "ApiServer", "free_port", "run_api"]


@contextmanager
def run_api(database_url: str, log_path: Path, **options: Any) -> Iterator[ApiServer]:
    """:func:`sdk.cli.launch.run_api` accepting :data:`TEST_API_KEYS` (its options:
    workers, extra_env, server, port, wait_for, startup_timeout)."""
    with launch.run_api(database_url, log_path, api_keys=TEST_API_KEYS, **options) as server:
        yield server
