"""Failures on the write path: nothing half-done is ever visible, and errors say what broke."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sdk.artifacts import (
    ArtifactError,
    ArtifactService,
    DatabaseUnavailable,
    StorageUnavailable,
)
from sdk.artifacts.keys import object_key
from sdk.artifacts.stores import BlobStore, FileStore
from sdk.artifacts.stores.s3 import S3Store
from sdk.db.engine import create_engine
from tests.integration.artifact_support import INLINE_MAX, all_keys, count_rows, sha
from tests.support.servers import free_port

pytest_plugins = ["tests.integration.artifact_fixtures"]

BIG = INLINE_MAX + 1000


def _unreachable(backend: str, tmp_path: Path) -> BlobStore:
    if backend == "s3":  # nothing listens on that port
        return S3Store(
            bucket="artifacts",
            endpoint_url=f"http://127.0.0.1:{free_port()}",
            access_key_id="x",
            secret_access_key="y",
            connect_timeout_s=1,
            max_attempts=2,
        )
    blocker = tmp_path / "a-file"
    blocker.write_text("the store's root cannot be created under a file")
    return FileStore(blocker / "store")


def test_an_unreachable_store_is_a_clear_error_and_leaves_no_row(
    backend: str, engine: sa.Engine, tmp_path: Path
) -> None:
    service = ArtifactService(
        engine=engine, store=_unreachable(backend, tmp_path), inline_max_bytes=INLINE_MAX
    )
    existing = service.write_artifact(type="note", content="inline needs no store")
    before = count_rows(engine)

    with pytest.raises(
        StorageUnavailable, match="unreachable" if backend == "s3" else "file store"
    ):
        service.write_artifact(type="blob", content=os.urandom(BIG))
    with pytest.raises(StorageUnavailable):
        service.create_version(
            existing.artifact_id, content=os.urandom(BIG), mime_type="application/octet-stream"
        )

    assert count_rows(engine) == before
    assert service.read_artifact(existing.artifact_id).latest_version == 1


class FailingPromote:
    """A real store whose ``promote`` fails once: the commit step's store call."""

    def __init__(self, inner: BlobStore) -> None:
        self.inner = inner
        self.failures = 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def promote(self, src: str, dst: str) -> None:
        if self.failures:
            self.failures -= 1
            raise StorageUnavailable("injected: the store went away during the commit")
        self.inner.promote(src, dst)


def test_a_store_failure_while_committing_rolls_back_and_cleans_up(
    engine: sa.Engine, artifact_store: BlobStore
) -> None:
    store = FailingPromote(artifact_store)
    service = ArtifactService(engine=engine, store=store, inline_max_bytes=INLINE_MAX)  # type: ignore[arg-type]
    first = service.write_artifact(type="blob", content=b"v1")
    before = count_rows(engine)
    with pytest.raises(StorageUnavailable, match="injected"):
        service.create_version(first.artifact_id, content=os.urandom(BIG))
    assert count_rows(engine) == before
    assert all_keys(artifact_store) == []  # the staged upload was removed
    retry = service.create_version(first.artifact_id, content=os.urandom(BIG))
    assert retry.version == 2  # no gap left by the failed attempt


def test_a_database_failure_after_the_upload_leaves_no_row_and_no_blob(
    engine: sa.Engine, service: ArtifactService, artifact_store: BlobStore
) -> None:
    with engine.begin() as conn:  # fail the version INSERT after the blob is in place
        conn.execute(
            sa.text(
                "CREATE FUNCTION public.wdp_test_fail() RETURNS trigger LANGUAGE plpgsql AS $$ "
                "BEGIN RAISE EXCEPTION 'injected insert failure'; END $$"
            )
        )
        conn.execute(
            sa.text(
                "CREATE TRIGGER fail_test BEFORE INSERT ON work.artifact_versions "
                "FOR EACH ROW WHEN (NEW.mime_type = 'application/x-fail') "
                "EXECUTE FUNCTION public.wdp_test_fail()"
            )
        )
    try:
        before = count_rows(engine)
        with pytest.raises(ArtifactError, match="injected insert failure"):
            service.write_artifact(
                type="blob", content=os.urandom(BIG), mime_type="application/x-fail"
            )
        assert count_rows(engine) == before
        assert all_keys(artifact_store) == []
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TRIGGER fail_test ON work.artifact_versions"))
            conn.execute(sa.text("DROP FUNCTION public.wdp_test_fail()"))


def test_a_blob_left_by_an_uncommitted_attempt_is_reused_not_overwritten(
    service: ArtifactService, artifact_store: BlobStore
) -> None:
    first = service.write_artifact(type="report", content=b"v1")
    data = os.urandom(BIG)
    key = object_key(
        artifact_type="report",
        artifact_id=first.artifact_id,
        version=2,
        content_hash=sha(data),
        mime_type="application/octet-stream",
    )
    artifact_store.put(key, [data])  # what a crash between upload and COMMIT leaves
    second = service.create_version(first.artifact_id, content=data)
    assert (second.version, second.storage_key) == (2, key)
    assert service.read_content(first.artifact_id) == data
    assert all_keys(artifact_store) == [key]


def _chunks_then_fail(data: bytes) -> Iterable[bytes]:
    yield data
    raise OSError("injected: the source disk failed")


def test_a_source_that_fails_midway_leaves_nothing(
    engine: sa.Engine, service: ArtifactService, artifact_store: BlobStore
) -> None:
    class BrokenStream:
        def __init__(self) -> None:
            self.chunks = iter(_chunks_then_fail(os.urandom(BIG)))

        def read(self, _size: int = -1) -> bytes:
            return next(self.chunks)

    before = count_rows(engine)
    with pytest.raises(OSError, match="source disk failed"):
        service.write_artifact(type="blob", stream=BrokenStream())  # type: ignore[arg-type]
    assert count_rows(engine) == before
    assert all_keys(artifact_store) == []


def test_an_unreachable_database_is_a_clear_error(tmp_path: Path) -> None:
    engine = create_engine(f"postgresql://wdp@127.0.0.1:{free_port()}/wdp")
    service = ArtifactService(engine=engine, store=FileStore(tmp_path))
    with pytest.raises(DatabaseUnavailable, match="the database is unavailable"):
        service.read_artifact("01J00000000000000000000000")
    engine.dispose()


def test_an_unmigrated_database_says_to_migrate(empty_db_url: str, tmp_path: Path) -> None:
    engine = create_engine(empty_db_url)
    service = ArtifactService(engine=engine, store=FileStore(tmp_path))
    with pytest.raises(DatabaseUnavailable, match="run `wdp migrate`"):
        service.write_artifact(type="x", content="x")
    engine.dispose()
