"""The blob store interface: the few operations the artifact service needs, nothing more.

Two implementations: :class:`~sdk.artifacts.stores.file.FileStore` (files under
``WDP_DATA_DIR``, the embedded default) and :class:`~sdk.artifacts.stores.s3.S3Store`
(S3, MinIO). Both promise the same things, and one test suite runs against both:

* ``put`` and ``promote`` never overwrite an existing key (:class:`BlobExists`), and a
  reader never sees a half-written blob;
* ``open`` streams; nothing here holds a whole blob in memory;
* failures are :class:`~sdk.artifacts.errors.ArtifactError` subclasses, never driver
  exceptions.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

StoreBackend = Literal["file", "s3"]


@dataclass(frozen=True)
class BlobInfo:
    """One listed blob."""

    key: str
    size_bytes: int
    last_modified: datetime  # timezone-aware, UTC


class BlobReader(Protocol):
    """A streaming read: ``read(n)`` returns at most ``n`` bytes, ``b""`` at the end."""

    def read(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


class BlobStore(Protocol):
    """Where artifact content above the inline limit is kept."""

    @property
    def backend(self) -> StoreBackend:
        """The ``storage_backend`` value recorded in version rows."""
        ...

    def put(self, key: str, chunks: Iterable[bytes]) -> int:
        """Write a new blob from ``chunks``; return its size. BlobExists if ``key`` exists."""
        ...

    def promote(self, src: str, dst: str) -> None:
        """Make the blob at ``src`` available at ``dst`` and remove ``src``.

        BlobExists (and ``src`` kept) if ``dst`` exists.
        """
        ...

    def open(self, key: str) -> BlobReader:
        """Stream a blob. BlobNotFound if there is none."""
        ...

    def delete(self, key: str) -> None:
        """Remove a blob; a missing one is not an error."""
        ...

    def exists(self, key: str) -> bool: ...

    def presigned_url(self, key: str, *, expires_in: int = 3600) -> str:
        """A URL that GETs the blob without credentials (until it expires, for S3)."""
        ...

    def list_blobs(self, prefix: str) -> Iterator[BlobInfo]:
        """Every blob under ``prefix``, fetched page by page."""
        ...

    def abort_stale_uploads(self, *, older_than: datetime, dry_run: bool = False) -> int:
        """Discard unfinished uploads started before ``older_than``; return how many."""
        ...
