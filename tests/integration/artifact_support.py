"""Helpers of the artifact tests; the fixtures are in artifact_fixtures.py."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import sqlalchemy as sa

from sdk.artifacts.stores import BlobStore
from sdk.artifacts.stores.s3 import S3Store

MiB = 1024 * 1024
INLINE_MAX = 512_000


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def s3_store(endpoint: str, **options: Any) -> S3Store:
    """An S3Store on a new bucket of ``endpoint``; small parts so tests stay fast."""
    bucket = f"test-{uuid.uuid4().hex[:16]}"
    options.setdefault("multipart_threshold", 5 * MiB)
    options.setdefault("part_size", 5 * MiB)
    options.setdefault("retry_backoff_s", 0.01)
    store = S3Store(
        bucket=bucket,
        endpoint_url=endpoint,
        region="us-east-1",
        access_key_id="testing",
        secret_access_key="testing",
        **options,
    )
    store.client.create_bucket(Bucket=bucket)
    return store


class ExplodingStore:
    """A store that fails the test on any use at all - even reading an attribute."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the blob store was used ({name})")


def count_rows(engine: sa.Engine) -> tuple[int, int]:
    """(artifacts, artifact_versions) row counts."""
    with engine.connect() as conn:
        artifacts = conn.execute(sa.text("SELECT count(*) FROM work.artifacts")).scalar_one()
        versions = conn.execute(sa.text("SELECT count(*) FROM work.artifact_versions")).scalar_one()
    return int(artifacts), int(versions)


def all_keys(store: BlobStore) -> list[str]:
    """Every blob of the store under wdp's prefixes."""
    return sorted(b.key for p in ("artifacts/", "staging/") for b in store.list_blobs(p))
