"""Blob stores, file and s3 (moto over HTTP), through the one interface the service uses."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
from botocore.exceptions import ConnectionClosedError

from sdk.artifacts.errors import BlobExists, BlobNotFound, InvalidArtifact, StorageUnavailable
from sdk.artifacts.stores import BlobStore, FileStore
from sdk.artifacts.stores import s3 as s3_module
from sdk.artifacts.stores.s3 import S3Store
from tests.integration.artifact_support import MiB
from tests.support.servers import free_port

pytest_plugins = ["tests.integration.artifact_fixtures"]


def _chunks(data: bytes, size: int = MiB) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def _read(store: BlobStore, key: str) -> bytes:
    reader = store.open(key)
    try:
        parts = []
        while chunk := reader.read(256 * 1024):
            parts.append(chunk)
        return b"".join(parts)
    finally:
        reader.close()


def _count_calls(store: BlobStore, operation: str) -> list[dict[str, Any]]:
    """Record the parameters of every ``operation`` call an S3Store makes."""
    calls: list[dict[str, Any]] = []
    assert isinstance(store, S3Store)
    store.client.meta.events.register(
        f"before-parameter-build.s3.{operation}", lambda params, **_: calls.append(params)
    )
    return calls


def test_put_open_exists_delete(artifact_store: BlobStore) -> None:
    data = os.urandom(300_000)
    assert artifact_store.put("staging/a", _chunks(data, 100_000)) == len(data)
    assert artifact_store.exists("staging/a")
    assert _read(artifact_store, "staging/a") == data
    artifact_store.delete("staging/a")
    assert not artifact_store.exists("staging/a")
    artifact_store.delete("staging/a")  # deleting what is gone is not an error
    with pytest.raises(BlobNotFound):
        artifact_store.open("staging/a")


def test_put_never_overwrites(artifact_store: BlobStore) -> None:
    artifact_store.put("artifacts/t/one", [b"original"])
    with pytest.raises(BlobExists):
        artifact_store.put("artifacts/t/one", [b"replacement"])
    assert _read(artifact_store, "artifacts/t/one") == b"original"


def test_multipart_upload_roundtrip_and_no_overwrite(backend: str, make_store: Any) -> None:
    store = make_store(backend)
    data = os.urandom(11 * MiB + 123)  # 5 MiB parts: 3 parts
    uploads = _count_calls(store, "UploadPart") if backend == "s3" else []
    assert store.put("staging/big", _chunks(data)) == len(data)
    assert _read(store, "staging/big") == data
    if backend == "s3":
        assert sorted(c["PartNumber"] for c in uploads) == [1, 2, 3]
        with pytest.raises(BlobExists):  # CompleteMultipartUpload with If-None-Match: *
            store.put("staging/big", _chunks(os.urandom(6 * MiB)))
        # The refused upload was aborted, not left behind.
        listed = store.client.list_multipart_uploads(Bucket=store._bucket)
        assert listed.get("Uploads", []) == []
    assert _read(store, "staging/big") == data


def test_a_failed_part_is_retried_on_its_own(make_store: Any) -> None:
    store = make_store("s3", max_attempts=1, part_attempts=3)  # botocore itself: no retry
    failures: list[int] = []
    lock = threading.Lock()

    def flaky(request: Any, **_: Any) -> None:
        if "partNumber=2" in request.url:
            with lock:
                if len(failures) < 2:
                    failures.append(2)
                    raise ConnectionClosedError(endpoint_url=request.url)

    store.client.meta.events.register("before-send.s3.UploadPart", flaky)
    data = os.urandom(11 * MiB)
    store.put("staging/flaky", _chunks(data))
    assert failures == [2, 2]
    assert _read(store, "staging/flaky") == data


def test_a_part_failing_every_time_fails_the_upload_and_aborts_it(make_store: Any) -> None:
    store = make_store("s3", max_attempts=1, part_attempts=2)

    def broken(request: Any, **_: Any) -> None:
        if "partNumber=3" in request.url:
            raise ConnectionClosedError(endpoint_url=request.url)

    store.client.meta.events.register("before-send.s3.UploadPart", broken)
    with pytest.raises(StorageUnavailable, match="unreachable"):
        store.put("staging/doomed", _chunks(os.urandom(11 * MiB)))
    assert not store.exists("staging/doomed")
    assert store.client.list_multipart_uploads(Bucket=store._bucket).get("Uploads", []) == []


def test_part_retry_waits_are_capped_however_many_attempts(
    make_store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The wait used to be base * 2**attempt with no cap: hours after a dozen attempts,
    # and an OverflowError (not a StorageUnavailable) past 1,024 of them.
    store = make_store("s3", max_attempts=1, part_attempts=1100, retry_backoff_s=0.01)
    waits: list[float] = []
    monkeypatch.setattr(s3_module, "time", SimpleNamespace(sleep=waits.append))

    def broken(request: Any, **_: Any) -> None:
        if "partNumber=1" in request.url:
            raise ConnectionClosedError(endpoint_url=request.url)

    store.client.meta.events.register("before-send.s3.UploadPart", broken)
    with pytest.raises(StorageUnavailable, match="unreachable"):
        store.put("staging/patient", _chunks(os.urandom(6 * MiB)))
    assert len(waits) == 1099
    assert max(waits) <= s3_module.PART_RETRY_MAX_S
    assert min(waits[20:]) >= s3_module.PART_RETRY_MAX_S / 2  # capped, still backing off


def test_promote_moves_and_never_overwrites(artifact_store: BlobStore) -> None:
    artifact_store.put("staging/s1", [b"first"])
    artifact_store.promote("staging/s1", "artifacts/t/A/v1/x.bin")
    assert not artifact_store.exists("staging/s1")
    assert _read(artifact_store, "artifacts/t/A/v1/x.bin") == b"first"

    artifact_store.put("staging/s2", [b"second"])
    with pytest.raises(BlobExists):
        artifact_store.promote("staging/s2", "artifacts/t/A/v1/x.bin")
    assert _read(artifact_store, "artifacts/t/A/v1/x.bin") == b"first"
    assert artifact_store.exists("staging/s2")  # kept for the caller to decide


def test_s3_copies_beyond_the_single_copy_limit_in_parts(make_store: Any) -> None:
    store = make_store("s3", single_copy_max=6 * MiB, copy_part_size=5 * MiB)
    copies = _count_calls(store, "UploadPartCopy")
    data = os.urandom(11 * MiB + 7)
    store.put("staging/huge", _chunks(data))
    store.promote("staging/huge", "artifacts/t/B/v1/y.bin")
    assert [c["CopySourceRange"] for c in copies] == [
        f"bytes=0-{5 * MiB - 1}",
        f"bytes={5 * MiB}-{10 * MiB - 1}",
        f"bytes={10 * MiB}-{11 * MiB + 6}",
    ]
    assert _read(store, "artifacts/t/B/v1/y.bin") == data


def test_presigned_url_downloads_without_credentials(
    backend: str, artifact_store: BlobStore
) -> None:
    data = os.urandom(2048)
    artifact_store.put("artifacts/t/C/v1/z.bin", [data])
    url = artifact_store.presigned_url("artifacts/t/C/v1/z.bin", expires_in=60)
    if backend == "s3":
        assert "X-Amz-Signature=" in url
        assert "X-Amz-Expires=60" in url
        assert httpx.get(url).content == data
        unsigned = url.split("?", 1)[0]
        assert httpx.get(unsigned).status_code == 403
    else:
        assert url.startswith("file://")
        assert Path(urlparse(url).path).read_bytes() == data


def test_listing_is_paginated_and_complete(backend: str, make_store: Any) -> None:
    store = make_store(backend, list_page_size=2) if backend == "s3" else make_store(backend)
    pages = _count_calls(store, "ListObjectsV2") if backend == "s3" else []
    keys = [f"artifacts/t/D/v{i}/k.bin" for i in range(1, 6)]
    for key in keys:
        store.put(key, [key.encode()])
    store.put("staging/other", [b"x"])
    listed = list(store.list_blobs("artifacts/"))
    assert sorted(b.key for b in listed) == keys
    assert all(b.size_bytes == len(b.key) for b in listed)
    now = datetime.now(UTC)
    assert all(
        now - timedelta(minutes=5) < b.last_modified <= now + timedelta(minutes=5) for b in listed
    )
    if backend == "s3":
        assert len(pages) == 3  # 5 keys, 2 per page


def test_stale_unfinished_uploads_are_aborted(backend: str, make_store: Any) -> None:
    store = make_store(backend)
    if backend == "s3":
        store.client.create_multipart_upload(Bucket=store._bucket, Key="staging/abandoned")
    else:
        assert isinstance(store, FileStore)
        (store.root / "staging").mkdir(parents=True)
        (store.root / "staging" / ".abandoned.x1.part").write_bytes(b"half")
    if backend == "file":  # moto reports every upload as initiated in 2010
        past = datetime.now(UTC) - timedelta(hours=1)
        assert store.abort_stale_uploads(older_than=past) == 0  # too recent
    future = datetime.now(UTC) + timedelta(hours=1)
    assert store.abort_stale_uploads(older_than=future, dry_run=True) == 1
    assert store.abort_stale_uploads(older_than=future) == 1
    assert store.abort_stale_uploads(older_than=future) == 0


@pytest.mark.parametrize("key", ["../escape", "/etc/passwd", "a//b", "a/../b", "", "a/.hidden"])
def test_file_store_refuses_keys_that_leave_its_root(tmp_path: Path, key: str) -> None:
    store = FileStore(tmp_path / "root")
    with pytest.raises(InvalidArtifact):
        store.put(key, [b"x"])
    assert not (tmp_path / "escape").exists()


def test_file_store_refuses_a_symlink_out_of_its_root(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "root")
    (tmp_path / "root" / "artifacts").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (tmp_path / "root" / "artifacts" / "link").symlink_to(tmp_path / "outside")
    with pytest.raises(InvalidArtifact, match="outside"):
        store.put("artifacts/link/x", [b"x"])
    assert list((tmp_path / "outside").iterdir()) == []


def test_unreachable_s3_is_a_clear_error() -> None:
    store = S3Store(
        bucket="artifacts",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        access_key_id="x",
        secret_access_key="y",
        connect_timeout_s=1,
    )
    for action in (
        lambda: store.put("staging/x", [b"abc"]),
        lambda: store.exists("staging/x"),
        lambda: list(store.list_blobs("artifacts/")),
    ):
        with pytest.raises(StorageUnavailable, match=r"127\.0\.0\.1.*unreachable"):
            action()


def test_a_missing_bucket_says_so(moto_endpoint: str) -> None:
    store = S3Store(
        bucket="no-such-bucket",
        endpoint_url=moto_endpoint,
        access_key_id="x",
        secret_access_key="y",
    )
    with pytest.raises(StorageUnavailable, match="bucket does not exist"):
        store.put("staging/x", [b"abc"])


def test_an_unwritable_file_store_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the store's root should be")
    store = FileStore(blocker / "store")
    with pytest.raises(StorageUnavailable, match="file store"):
        store.put("staging/x", [b"abc"])


def test_content_errors_pass_through_the_store_and_leave_nothing(artifact_store: BlobStore) -> None:
    class Boom(Exception):
        pass

    def chunks() -> Any:
        yield b"x" * MiB
        raise Boom

    with pytest.raises(Boom):
        artifact_store.put("staging/bad", chunks())
    assert not artifact_store.exists("staging/bad")
    assert list(artifact_store.list_blobs("staging/")) == []
    if isinstance(artifact_store, FileStore):
        assert not any(p.is_file() for p in artifact_store.root.rglob("*"))


def test_a_write_failing_on_the_writer_thread_fails_cleanly(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "root")
    chunks = [b"x" * MiB] * 20 + ["not bytes"] + [b"y" * MiB] * 20  # the writer chokes
    with pytest.raises(TypeError):
        store.put("staging/choked", chunks)  # type: ignore[list-item]
    assert not store.exists("staging/choked")
    assert [p for p in (tmp_path / "root").rglob("*") if p.is_file()] == []


def test_file_store_writes_survive_a_concurrent_delete_pruning_their_folder(
    tmp_path: Path,
) -> None:
    """delete() prunes folders a blob leaves empty; a write racing it into the same
    folder must not fail (it once did, about 1 in 2,000 under 4 threads)."""
    from sdk.artifacts.stores.file import FileStore

    store = FileStore(tmp_path / "store")
    failures: list[BaseException] = []

    def churn(worker: int) -> None:
        try:
            for n in range(300):
                key = f"staging/w{worker}-{n}"
                store.put(key, [b"x" * 64])
                store.delete(key)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=churn, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert (tmp_path / "store" / "staging").is_dir()  # top-level folders are kept
