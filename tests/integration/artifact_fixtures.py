"""Fixtures of the artifact tests: real blob stores and a service on a real Postgres.

The s3 store talks HTTP to moto's ThreadedMotoServer on a free loopback port, through
the same S3Store code production uses against MinIO or AWS. Each test gets its own
bucket (moto keeps all servers' state in one process-wide backend). Test modules load
these with ``pytest_plugins = ["tests.integration.artifact_fixtures"]``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from moto.server import ThreadedMotoServer

from sdk.artifacts import ArtifactService
from sdk.artifacts.stores import BlobStore, FileStore
from sdk.db import migrate
from sdk.db.engine import create_engine
from tests.integration.artifact_support import INLINE_MAX, s3_store
from tests.support.servers import free_port


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """A real S3 HTTP endpoint (moto) on a free loopback port, for one test module."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., BlobStore]:
    """``make_store("file" | "s3", **S3Store options)``; moto starts only when needed."""

    def make(backend: str, **options: Any) -> BlobStore:
        if backend == "file":
            return FileStore(tmp_path / f"store-{uuid.uuid4().hex[:8]}")
        return s3_store(request.getfixturevalue("moto_endpoint"), **options)

    return make


@pytest.fixture(params=["file", "s3"])
def backend(request: pytest.FixtureRequest) -> str:
    """Each test that uses it runs once per blob store backend."""
    return str(request.param)


@pytest.fixture
def artifact_store(backend: str, make_store: Callable[..., BlobStore]) -> BlobStore:
    """A fresh store of the test's backend."""
    return make_store(backend)


@pytest.fixture
def service(engine: sa.Engine, artifact_store: BlobStore) -> ArtifactService:
    """The service on this module's migrated database and the test's store."""
    return ArtifactService(engine=engine, store=artifact_store, inline_max_bytes=INLINE_MAX)


@pytest.fixture
def kb_engine(database_factory: Callable[[], str]) -> Iterator[sa.Engine]:
    """An engine on a fresh migrated database of this test alone: for tests that change
    what is pending for the knowledge base."""
    url = database_factory()
    migrate.upgrade(url)
    eng = create_engine(url)
    yield eng
    eng.dispose()
