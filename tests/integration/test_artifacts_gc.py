"""gc: unreferenced blobs go once past the grace period; referenced ones never do."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from sdk.artifacts import ArtifactService
from sdk.artifacts.gc import collect_garbage
from sdk.artifacts.keys import object_key
from sdk.artifacts.stores import BlobStore, FileStore
from tests.integration.artifact_support import INLINE_MAX, all_keys, sha

pytest_plugins = ["tests.integration.artifact_fixtures"]

LATER = datetime.now(UTC) + timedelta(days=3)  # "now" for gc: every blob is 3 days old


def _orphans(service: ArtifactService, store: BlobStore) -> dict[str, str]:
    """One of each kind of garbage, plus what must survive."""
    kept = service.write_artifact(type="kept", content=os.urandom(INLINE_MAX + 1))
    assert kept.storage_key is not None
    failed_version = object_key(  # an upload whose transaction rolled back
        artifact_type="kept",
        artifact_id=kept.artifact_id,
        version=2,
        content_hash=sha(b"rolled back"),
        mime_type="application/octet-stream",
    )
    store.put(failed_version, [b"rolled back"])
    never_created = object_key(  # write_artifact failed: the artifact row never existed
        artifact_type="lost",
        artifact_id="01J0000000000000000000AAAA",
        version=1,
        content_hash=sha(b"lost"),
        mime_type="text/plain",
    )
    store.put(never_created, [b"lost"])
    store.put("staging/01J00000000000000000STAGE", [b"crashed mid-commit"])
    store.put("artifacts/not/the/convention.tmp", [b"stray"])
    return {
        "kept": kept.storage_key,
        "failed_version": failed_version,
        "never_created": never_created,
        "staging": "staging/01J00000000000000000STAGE",
        "stray": "artifacts/not/the/convention.tmp",
    }


def test_gc_removes_only_old_unreferenced_blobs(
    service: ArtifactService, artifact_store: BlobStore
) -> None:
    keys = _orphans(service, artifact_store)
    garbage = sorted(v for k, v in keys.items() if k != "kept")

    young = service.collect_garbage()  # default grace: 24 h; everything is seconds old
    assert young.garbage_keys == []
    assert young.too_young == 5
    assert all_keys(artifact_store) == sorted(keys.values())

    dry = service.collect_garbage(dry_run=True, now=LATER)
    assert sorted(dry.garbage_keys) == garbage
    assert dry.referenced == 1
    assert all_keys(artifact_store) == sorted(keys.values())  # a dry run deletes nothing

    report = service.collect_garbage(now=LATER)
    assert sorted(report.garbage_keys) == garbage
    assert report.garbage_bytes == sum(
        len(b) for b in (b"rolled back", b"lost", b"crashed mid-commit", b"stray")
    )
    assert all_keys(artifact_store) == [keys["kept"]]
    assert service.read_content(service.read_artifact(_id(keys["kept"])).artifact_id)
    assert service.collect_garbage(now=LATER).garbage_keys == []


def _id(key: str) -> str:
    return key.split("/")[2]


def test_gc_works_page_by_page(
    engine: sa.Engine, service: ArtifactService, artifact_store: BlobStore
) -> None:
    kept = [
        service.write_artifact(type="paged", content=os.urandom(INLINE_MAX + i)).storage_key
        for i in range(3)
    ]
    orphans = [f"staging/01J000000000000000000PAGE{i}" for i in range(3)] + [
        object_key(
            artifact_type="paged",
            artifact_id=f"01J00000000000000000000PG{i}",
            version=1,
            content_hash=sha(bytes([i])),
            mime_type="application/octet-stream",
        )
        for i in range(4)
    ]
    for key in orphans:
        artifact_store.put(key, [b"x"])
    report = collect_garbage(
        db=service._db, store=artifact_store, cutoff=LATER, dry_run=False, batch_size=2
    )
    assert sorted(report.garbage_keys) == sorted(orphans)
    assert report.referenced == 3
    assert all_keys(artifact_store) == sorted(k for k in kept if k)


def test_gc_waits_for_a_writer_holding_the_artifact_lock(
    engine: sa.Engine, service: ArtifactService, artifact_store: BlobStore
) -> None:
    """A leftover blob that a writer is reusing right now survives gc."""
    first = service.write_artifact(type="race", content=b"v1")
    data = os.urandom(INLINE_MAX + 1)
    key = object_key(
        artifact_type="race",
        artifact_id=first.artifact_id,
        version=2,
        content_hash=sha(data),
        mime_type="application/octet-stream",
    )
    artifact_store.put(key, [data])  # an old leftover: gc's listing sees it as garbage

    with engine.connect() as writer:  # a writer in the middle of committing version 2
        tx = writer.begin()
        writer.execute(
            sa.text("SELECT 1 FROM work.artifacts WHERE artifact_id = :a FOR UPDATE"),
            {"a": first.artifact_id},
        )
        outcome: dict[str, object] = {}
        gc = threading.Thread(
            target=lambda: outcome.update(report=service.collect_garbage(now=LATER))
        )
        gc.start()
        gc.join(timeout=1.0)
        assert gc.is_alive(), "gc must wait for the artifact's row lock"
        assert artifact_store.exists(key)
        writer.execute(
            sa.text(
                "INSERT INTO work.artifact_versions (artifact_id, version, mime_type, size_bytes,"
                " content_hash, storage_backend, storage_key) VALUES (:a, 2, "
                "'application/octet-stream', :n, :h, CAST(:b AS work.storage_backend), :k)"
            ),
            {
                "a": first.artifact_id,
                "n": len(data),
                "h": sha(data),
                "b": artifact_store.backend,
                "k": key,
            },
        )
        writer.execute(
            sa.text("UPDATE work.artifacts SET latest_version = 2 WHERE artifact_id = :a"),
            {"a": first.artifact_id},
        )
        tx.commit()
    gc.join(timeout=30)
    assert key not in outcome["report"].garbage_keys  # type: ignore[attr-defined]
    assert service.read_content(first.artifact_id) == data


@pytest.mark.parametrize("dry_run", [True, False])
def test_stale_unfinished_uploads_are_reported_and_aborted(
    backend: str, service: ArtifactService, artifact_store: BlobStore, dry_run: bool
) -> None:
    if backend == "s3":
        client = artifact_store.client  # type: ignore[attr-defined]
        client.create_multipart_upload(Bucket=artifact_store._bucket, Key="staging/01J0ABANDONED")  # type: ignore[attr-defined]
    else:
        root = artifact_store.root  # type: ignore[attr-defined]
        (root / "staging").mkdir(parents=True)
        (root / "staging" / ".01J0ABANDONED.abc.part").write_bytes(b"half")
    report = service.collect_garbage(now=LATER, dry_run=dry_run)
    assert report.aborted_uploads == 1
    again = service.collect_garbage(now=LATER)
    assert again.aborted_uploads == (1 if dry_run else 0)


class CaseInsensitiveFileStore(FileStore):
    """The file store on a file system that ignores case, as macOS's and Windows' default
    ones do: a name finds an existing entry whatever its case, and listings show the
    name the entry was created with. (Linux CI cannot mount one, so this emulates it at
    the one place the store turns keys into paths.)"""

    def _path(self, key: str) -> Path:
        path = super()._path(key)
        real = self.root
        for part in path.relative_to(self.root).parts:
            names = [e.name for e in real.iterdir()] if real.is_dir() else []
            real = real / next((n for n in names if n.lower() == part.lower()), part)
        return real


def test_types_differing_only_in_case_keep_their_blobs_on_a_case_insensitive_store(
    engine: sa.Engine, tmp_path: Path
) -> None:
    store = CaseInsensitiveFileStore(tmp_path / "case-insensitive")
    service = ArtifactService(engine=engine, store=store, inline_max_bytes=INLINE_MAX)
    upper = service.write_artifact(type="Plan", content=os.urandom(INLINE_MAX + 1))
    lower = service.write_artifact(type="plan", content=os.urandom(INLINE_MAX + 1))
    assert [p.name for p in (store.root / "artifacts").iterdir()] == ["Plan"]  # one folder
    assert lower.storage_key is not None
    assert lower.storage_key.startswith("artifacts/plan/")

    report = service.collect_garbage(now=LATER)
    assert report.garbage_keys == []
    assert report.referenced == 2
    for written in (upper, lower):
        assert len(service.read_content(written.artifact_id)) == INLINE_MAX + 1
