"""Blobs in S3 or an S3-compatible server (MinIO): ``ARTIFACT_STORE=s3``.

boto3 is imported when an :class:`S3Store` is built, never at module import, so the
SDK stays importable (and ``import sdk.telemetry`` stays light) without the ``s3`` extra.

* With ``S3_ENDPOINT_URL`` set (MinIO), addressing is path-style, as MinIO expects.
* ``request_checksum_calculation`` / ``response_checksum_validation`` are
  ``when_required``: botocore >= 1.36 otherwise adds CRC checksums that several
  S3-compatible servers reject. Our own sha256 is the integrity check that counts
  (S3's multipart checksum is a hash of part hashes, not of the content).
* Writes send ``If-None-Match: *`` (PutObject, CompleteMultipartUpload), so a key is
  never overwritten; the server answers 412 and we raise BlobExists.
* Content at least ``multipart_threshold`` long goes up in parts of ``part_size`` (doubled
  every 1,000 parts, so any size fits in S3's 10,000), up to ``max_concurrency`` at once:
  memory is that many parts. Each part is retried on its own on top of botocore's
  retries: losing a large upload to one blip is expensive. The wait between part
  attempts is :func:`sdk.backoff.backoff_delay`, capped at ``PART_RETRY_MAX_S``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager, suppress
from datetime import datetime
from itertools import chain
from typing import Any

from sdk.artifacts.errors import (
    ArtifactError,
    BlobExists,
    BlobNotFound,
    InvalidArtifact,
    StorageUnavailable,
)
from sdk.artifacts.keys import ARTIFACTS_PREFIX, STAGING_PREFIX
from sdk.artifacts.stores.base import BlobInfo, StoreBackend
from sdk.backoff import backoff_delay
from sdk.errors import ConfigurationError

MiB = 1024 * 1024
GiB = 1024 * MiB
MAX_PARTS = 10_000
PART_RETRY_MAX_S = 20.0  # longest wait between two attempts at one part
_MISSING_CODES = {"NoSuchKey", "404", "NotFound"}
_EXISTS_CODES = {"PreconditionFailed", "412", "ConditionalRequestConflict"}
_DENIED_CODES = {"AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"}
_THROTTLE_CODES = {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout"}


def _exc() -> Any:
    """``botocore.exceptions``, imported on first use like the rest of boto3."""
    import botocore.exceptions  # type: ignore[import-untyped]

    return botocore.exceptions


class _S3Reader:
    """A GetObject body whose network errors surface as StorageUnavailable."""

    def __init__(self, store: S3Store, body: Any, key: str) -> None:
        self._store = store
        self._body = body
        self._key = key

    def read(self, size: int = -1, /) -> bytes:

        try:
            data: bytes = self._body.read(None if size < 0 else size)
        except (_exc().BotoCoreError, OSError) as exc:
            raise StorageUnavailable(
                f"S3 {self._store.location}: reading {self._key!r} failed: {exc}"
            ) from exc
        return data

    def close(self) -> None:
        self._body.close()


class S3Store:
    """Blobs in one S3 bucket (which must exist)."""

    def __init__(
        self,
        *,
        bucket: str,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        multipart_threshold: int = 16 * MiB,
        part_size: int = 8 * MiB,
        max_concurrency: int = 4,
        part_attempts: int = 3,
        retry_backoff_s: float = 0.5,
        max_attempts: int = 3,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 60.0,
        list_page_size: int = 1000,
        single_copy_max: int = 5 * GiB,
        copy_part_size: int = 1 * GiB,
    ) -> None:
        try:
            import boto3  # type: ignore[import-untyped]
            from botocore.config import Config  # type: ignore[import-untyped]
        except ImportError as exc:
            raise ConfigurationError(
                "ARTIFACT_STORE=s3 needs boto3: install the s3 extra (pip install 'wdp[s3]')"
            ) from exc

        self._bucket = bucket
        self._threshold = multipart_threshold
        self._part_size = part_size
        self._concurrency = max_concurrency
        self._part_attempts = part_attempts
        self._backoff = retry_backoff_s
        self._page_size = list_page_size
        self._single_copy_max = single_copy_max
        self._copy_part_size = copy_part_size
        self.location = f"{endpoint_url or f'AWS ({region})'}, bucket {bucket!r}"
        config = Config(
            region_name=region,
            signature_version="s3v4",
            s3={"addressing_style": "path"} if endpoint_url else {},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"mode": "standard", "total_max_attempts": max_attempts},
            connect_timeout=connect_timeout_s,
            read_timeout=read_timeout_s,
            max_pool_connections=max(10, 2 * max_concurrency),
        )
        # A session of our own: boto3's default session is not thread-safe to create
        # clients from, and this client is shared by the part-upload threads.
        self._client: Any = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=config,
        )

    @property
    def backend(self) -> StoreBackend:
        return "s3"

    @property
    def client(self) -> Any:
        """The boto3 client (tests use it to reach behind the store's back)."""
        return self._client

    # --- error translation -------------------------------------------------------------

    def _translate(self, exc: Exception, action: str, key: str) -> ArtifactError:

        if isinstance(exc, _exc().ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            message = error.get("Message") or code
            if code in _EXISTS_CODES:
                return BlobExists(f"S3 {self.location}: {key!r} exists and is never overwritten")
            if code in _MISSING_CODES:
                return BlobNotFound(f"S3 {self.location}: no blob {key!r}")
            if code == "NoSuchBucket":
                return StorageUnavailable(
                    f"S3 {self.location}: the bucket does not exist; create it "
                    "(docker compose's minio-init service does) or set ARTIFACT_BUCKET"
                )
            if code in _DENIED_CODES:
                return StorageUnavailable(
                    f"S3 {self.location}: access denied to {action} {key!r} ({code}); check "
                    "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and the bucket policy"
                )
            return StorageUnavailable(f"S3 {self.location}: {action} {key!r} failed: {message}")
        if isinstance(exc, _exc().NoCredentialsError):
            return StorageUnavailable(
                f"S3 {self.location}: no credentials; set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (or give the host an IAM role)"
            )
        return StorageUnavailable(f"S3 {self.location} is unreachable ({action} {key!r}): {exc}")

    def _call(self, action: str, key: str, operation: str, **params: Any) -> Any:

        try:
            return getattr(self._client, operation)(Bucket=self._bucket, **params)
        except (_exc().ClientError, _exc().BotoCoreError) as exc:
            raise self._translate(exc, action, key) from exc

    # --- writes --------------------------------------------------------------------------

    def put(self, key: str, chunks: Iterable[bytes]) -> int:
        head = bytearray()
        rest = iter(chunks)
        for chunk in rest:
            head += chunk
            if len(head) >= self._threshold:
                return self._put_multipart(key, self._parts(head, rest))
        self._call("upload", key, "put_object", Key=key, Body=bytes(head), IfNoneMatch="*")
        return len(head)

    def _part_size_for(self, number: int) -> int:
        # S3 allows 10,000 parts. Doubling the part size every 1,000 parts keeps small
        # uploads' memory small and still reaches any object size S3 accepts.
        return min(self._part_size << ((number - 1) // 1000), 5 * GiB)

    def _parts(self, head: bytearray, rest: Iterator[bytes]) -> Iterator[bytearray]:
        """``head`` then ``rest``, re-cut into parts; each part is filled in place, once."""
        number = 1
        part, filled = bytearray(self._part_size_for(number)), 0
        sources: Iterator[bytes | bytearray] = chain((head,), rest)
        for chunk in sources:
            view = memoryview(chunk)
            while len(view):
                n = min(len(view), len(part) - filled)
                part[filled : filled + n] = view[:n]
                filled += n
                view = view[n:]
                if filled == len(part):
                    yield part
                    number += 1
                    part, filled = bytearray(self._part_size_for(number)), 0
            view.release()
            if chunk is head:
                head.clear()  # the threshold buffer is not needed for the rest of the upload
        if filled:
            del part[filled:]
            yield part

    @contextmanager
    def _multipart(
        self, key: str, *, action: str
    ) -> Iterator[tuple[str, Callable[[list[dict[str, Any]]], None]]]:
        """A multipart upload to ``key``: yields its id and a function that completes it
        (never overwriting an existing key); any failure inside aborts the upload, so
        no parts are left to bill or to collect."""
        upload_id = self._call(f"start {action}", key, "create_multipart_upload", Key=key)[
            "UploadId"
        ]

        def complete(parts: list[dict[str, Any]]) -> None:
            self._call(
                f"finish {action}",
                key,
                "complete_multipart_upload",
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
                IfNoneMatch="*",
            )

        try:
            yield upload_id, complete
        except BaseException:
            with suppress(ArtifactError):
                self._call("abort", key, "abort_multipart_upload", Key=key, UploadId=upload_id)
            raise

    def _put_multipart(self, key: str, parts: Iterator[bytearray]) -> int:
        etags: dict[int, str] = {}
        size = 0
        with self._multipart(key, action="uploading") as (upload_id, complete):
            with ThreadPoolExecutor(self._concurrency, thread_name_prefix="wdp-s3-part") as pool:
                pending: set[Future[tuple[int, str]]] = set()

                def collect(done: set[Future[tuple[int, str]]]) -> None:
                    for future in done:
                        number, etag = future.result()
                        etags[number] = etag

                number = 0
                while True:
                    # Wait for a free slot before filling the next part: at most
                    # `max_concurrency` parts are in memory at any time.
                    if len(pending) >= self._concurrency:
                        done, pending = wait(pending, return_when=FIRST_COMPLETED)
                        collect(done)
                    body = next(parts, None)
                    if body is None:
                        break
                    number += 1
                    if number > MAX_PARTS:
                        raise InvalidArtifact("content is larger than S3 accepts (10,000 parts)")
                    size += len(body)
                    pending.add(pool.submit(self._upload_part, key, upload_id, number, body))
                done, pending = wait(pending)
                collect(done)
            complete([{"PartNumber": n, "ETag": etags[n]} for n in sorted(etags)])
        return size

    def _upload_part(
        self, key: str, upload_id: str, number: int, body: bytearray
    ) -> tuple[int, str]:

        for attempt in range(1, self._part_attempts + 1):
            try:
                response = self._client.upload_part(
                    Bucket=self._bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body
                )
                return number, str(response["ETag"])
            except (_exc().ClientError, _exc().BotoCoreError) as exc:
                retryable = isinstance(exc, _exc().BotoCoreError) or (
                    exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500
                    or exc.response.get("Error", {}).get("Code") in _THROTTLE_CODES
                )
                if not retryable or attempt == self._part_attempts:
                    raise self._translate(exc, f"upload part {number} of", key) from exc
                time.sleep(backoff_delay(attempt - 1, base_s=self._backoff, cap_s=PART_RETRY_MAX_S))
        raise AssertionError("unreachable")  # pragma: no cover

    def promote(self, src: str, dst: str) -> None:
        # A server-side copy. S3 servers differ on If-None-Match for CopyObject (moto
        # ignores it), so existence is checked first. That is not a race: a version's
        # key is only ever written by the holder of its artifact's row lock.
        if self.exists(dst):
            raise BlobExists(f"S3 {self.location}: {dst!r} exists and is never overwritten")
        size = int(self._call("inspect", src, "head_object", Key=src)["ContentLength"])
        source = {"Bucket": self._bucket, "Key": src}
        if size <= self._single_copy_max:
            self._call("copy to", dst, "copy_object", Key=dst, CopySource=source)
        else:
            self._copy_multipart(source, dst, size)
        self.delete(src)

    def _copy_multipart(self, source: dict[str, str], dst: str, size: int) -> None:
        """CopyObject stops at 5 GiB; larger blobs are copied range by range."""
        with self._multipart(dst, action="copying to") as (upload_id, complete):
            parts = []
            for number, start in enumerate(range(0, size, self._copy_part_size), start=1):
                end = min(start + self._copy_part_size, size) - 1
                result = self._call(
                    f"copy part {number} to",
                    dst,
                    "upload_part_copy",
                    Key=dst,
                    UploadId=upload_id,
                    PartNumber=number,
                    CopySource=source,
                    CopySourceRange=f"bytes={start}-{end}",
                )
                parts.append({"PartNumber": number, "ETag": result["CopyPartResult"]["ETag"]})
            complete(parts)

    # --- reads and housekeeping ----------------------------------------------------------

    def open(self, key: str) -> _S3Reader:
        response = self._call("download", key, "get_object", Key=key)
        return _S3Reader(self, response["Body"], key)

    def delete(self, key: str) -> None:
        self._call("delete", key, "delete_object", Key=key)

    def exists(self, key: str) -> bool:
        try:
            self._call("inspect", key, "head_object", Key=key)
        except BlobNotFound:
            return False
        return True

    def presigned_url(self, key: str, *, expires_in: int = 3600) -> str:
        return str(
            self._client.generate_presigned_url(
                "get_object", Params={"Bucket": self._bucket, "Key": key}, ExpiresIn=expires_in
            )
        )

    def _pages(self, operation: str, prefix: str, **params: Any) -> Iterator[dict[str, Any]]:

        paginator = self._client.get_paginator(operation)
        pages = paginator.paginate(
            Bucket=self._bucket,
            Prefix=prefix,
            PaginationConfig={"PageSize": self._page_size},
            **params,
        )
        try:
            yield from pages
        except (_exc().ClientError, _exc().BotoCoreError) as exc:
            raise self._translate(exc, "list", prefix) from exc

    def list_blobs(self, prefix: str) -> Iterator[BlobInfo]:
        for page in self._pages("list_objects_v2", prefix):
            for item in page.get("Contents", []):
                yield BlobInfo(
                    key=item["Key"],
                    size_bytes=int(item["Size"]),
                    last_modified=item["LastModified"],
                )

    def abort_stale_uploads(self, *, older_than: datetime, dry_run: bool = False) -> int:
        """Abort multipart uploads under our prefixes that were started before ``older_than``."""
        count = 0
        for prefix in (ARTIFACTS_PREFIX, STAGING_PREFIX):
            for page in self._pages("list_multipart_uploads", prefix):
                for upload in page.get("Uploads", []):
                    if upload["Initiated"] >= older_than:
                        continue
                    if not dry_run:
                        self._call(
                            "abort",
                            upload["Key"],
                            "abort_multipart_upload",
                            Key=upload["Key"],
                            UploadId=upload["UploadId"],
                        )
                    count += 1
        return count
