"""Concurrent writers of one artifact: consecutive versions, no duplicates, nothing lost."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa

from sdk.artifacts import ArtifactService, WriteResult
from sdk.artifacts.stores import BlobStore
from tests.integration.artifact_support import INLINE_MAX, all_keys

pytest_plugins = ["tests.integration.artifact_fixtures"]


def _race(n: int, write: Callable[[int], WriteResult]) -> list[WriteResult]:
    """Run ``write(i)`` for i in 0..n-1 on n threads released at the same instant."""
    barrier = threading.Barrier(n)

    def one(i: int) -> WriteResult:
        barrier.wait()
        return write(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def _stored_versions(engine: sa.Engine, artifact_id: str) -> tuple[list[int], int]:
    with engine.connect() as conn:
        versions = conn.execute(
            sa.text("SELECT version FROM work.artifact_versions WHERE artifact_id = :a ORDER BY 1"),
            {"a": artifact_id},
        ).scalars()
        latest = conn.execute(
            sa.text("SELECT latest_version FROM work.artifacts WHERE artifact_id = :a"),
            {"a": artifact_id},
        ).scalar_one()
    return list(versions), int(latest)


def test_twenty_threads_get_versions_2_to_21(engine: sa.Engine, service: ArtifactService) -> None:
    first = service.write_artifact(type="counter", content="version 1")
    results = _race(20, lambda i: service.create_version(first.artifact_id, content=f"writer {i}"))

    assert sorted(r.version for r in results) == list(range(2, 22))
    assert not any(r.deduplicated for r in results)
    assert _stored_versions(engine, first.artifact_id) == (list(range(1, 22)), 21)
    # Each writer's content is under the version number it was told.
    for r in results:
        assert service.read_content(r.artifact_id, r.version) == r.preview_text.encode()  # type: ignore[union-attr]


def test_concurrent_offloaded_versions_each_get_their_blob(
    engine: sa.Engine, service: ArtifactService, artifact_store: BlobStore
) -> None:
    first = service.write_artifact(type="big", content=b"small first version")
    payloads = [os.urandom(INLINE_MAX + 1000) for _ in range(4)]
    results = _race(
        4,
        lambda i: service.create_version(
            first.artifact_id, content=payloads[i], mime_type="application/octet-stream"
        ),
    )
    assert sorted(r.version for r in results) == [2, 3, 4, 5]
    assert _stored_versions(engine, first.artifact_id) == ([1, 2, 3, 4, 5], 5)
    for i, r in enumerate(results):
        assert r.storage_key is not None
        assert f"/v{r.version}/" in r.storage_key
        assert service.read_content(first.artifact_id, r.version) == payloads[i]
    assert all_keys(artifact_store) == sorted(r.storage_key for r in results)  # type: ignore[misc]


def test_identical_concurrent_writes_create_one_version(
    engine: sa.Engine, service: ArtifactService
) -> None:
    first = service.write_artifact(type="same", content="v1")
    results = _race(10, lambda _: service.create_version(first.artifact_id, content="v2"))
    assert sorted(r.deduplicated for r in results) == [False] + [True] * 9
    assert {r.version for r in results} == {2}
    assert _stored_versions(engine, first.artifact_id) == ([1, 2], 2)
