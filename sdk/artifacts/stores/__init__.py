"""Blob stores: the small interface and its two backends, chosen by ``ARTIFACT_STORE``.

:mod:`sdk.artifacts.stores.s3` is imported only by :func:`build_store` when the s3
backend is configured, so boto3 is never loaded for the file store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sdk.artifacts.stores.base import BlobInfo, BlobReader, BlobStore, StoreBackend
from sdk.artifacts.stores.file import FileStore

if TYPE_CHECKING:
    from sdk.settings import WdpSettings

__all__ = ["BlobInfo", "BlobReader", "BlobStore", "FileStore", "StoreBackend", "build_store"]


def build_store(settings: WdpSettings) -> BlobStore:
    """The store ``settings`` configure (``ARTIFACT_STORE``, ``S3_*``, ``AWS_*``, …)."""
    if settings.artifact_store == "file":
        return FileStore(settings.artifact_path)
    from sdk.artifacts.stores.s3 import S3Store

    secret = settings.aws_secret_access_key
    return S3Store(
        bucket=settings.artifact_bucket,
        endpoint_url=settings.s3_endpoint_url,
        region=settings.aws_region,
        access_key_id=settings.aws_access_key_id,
        secret_access_key=secret.get_secret_value() if secret is not None else None,
        multipart_threshold=settings.artifact_multipart_threshold_bytes,
        part_size=settings.artifact_multipart_part_bytes,
        max_concurrency=settings.artifact_multipart_concurrency,
    )
