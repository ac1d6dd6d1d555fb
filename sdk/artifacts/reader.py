"""Reading content back: a stream that checks the sha256 and size it was stored with.

:func:`open_stored` is the one way from a version row to its bytes: the service's
``open_content`` and the knowledge base's ingestion both read through it, so inline
decoding, the store check and the sha256 check cannot drift apart.
"""

from __future__ import annotations

import binascii
import hashlib
import io
from dataclasses import dataclass
from typing import Any

from sdk.artifacts.content import decode_inline
from sdk.artifacts.errors import ArtifactIntegrityError, BlobNotFound, StoreMismatch
from sdk.artifacts.stores.base import BlobReader, BlobStore

READ_BYTES = 1024 * 1024


@dataclass(frozen=True)
class StoredContent:
    """Where one version's content is and what it must hash to: the columns reading needs."""

    artifact_id: str
    version: int
    mime_type: str
    size_bytes: int
    content_hash: str
    storage_backend: str
    storage_key: str | None
    inline_content_text: str | None

    @property
    def label(self) -> str:
        return f"artifact {self.artifact_id} v{self.version}"


def open_stored(stored: StoredContent, store: BlobStore) -> VerifiedReader:
    """A sha256-verifying stream of a version's content, inline or from ``store``.

    Raises ArtifactIntegrityError when the inline content is corrupt or the blob is
    missing (and, while reading, when the bytes do not match), StoreMismatch (also an
    ArtifactIntegrityError) when the version is in another backend than ``store``, and
    lets the store's StorageUnavailable through: an outage is not the version's fault.
    """
    label = stored.label
    raw: Any
    if stored.storage_backend == "inline":
        try:
            text = stored.inline_content_text or ""
            raw = io.BytesIO(decode_inline(mime_type=stored.mime_type, text=text))
        except (binascii.Error, ValueError) as exc:
            raise ArtifactIntegrityError(f"{label}: inline content is corrupt: {exc}") from exc
    else:
        if stored.storage_backend != store.backend:
            raise StoreMismatch(
                f"{label} is in the {stored.storage_backend} store, but the configured store "
                f"is {store.backend} (ARTIFACT_STORE)"
            )
        if stored.storage_key is None:  # the schema forbids it; say so if it happens
            raise ArtifactIntegrityError(f"{label}: no storage key is recorded")
        try:
            raw = store.open(stored.storage_key)
        except BlobNotFound as exc:
            raise ArtifactIntegrityError(
                f"{label}: its blob {stored.storage_key!r} is missing from the store"
            ) from exc
    return VerifiedReader(
        raw, content_hash=stored.content_hash, size_bytes=stored.size_bytes, label=label
    )


class VerifiedReader(io.RawIOBase):
    """A binary stream over one version's content that fails loudly on corruption.

    The sha256 is checked when the recorded size is reached, before the last chunk is
    handed out, so corrupt content never reads to its end without an error; earlier
    chunks are already out by then, so write to a temporary file and keep it only
    once reading finished (``wdp artifacts get -o`` does). Reading more bytes than the
    recorded size fails at once. Works with ``shutil.copyfileobj``,
    ``io.BufferedReader`` and ``for chunk in``.
    """

    def __init__(self, raw: BlobReader, *, content_hash: str, size_bytes: int, label: str) -> None:
        super().__init__()
        self._raw = raw
        self._expected_hash = content_hash
        self._expected_size = size_bytes
        self._label = label
        self._hash = hashlib.sha256()
        self._seen = 0
        self._verified = False

    @property
    def size_bytes(self) -> int:
        """The recorded size: what a progress bar counts to."""
        return self._expected_size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._raw.read(len(view))
        n = len(data)
        if n == 0:
            self._verify()
            return 0
        self._hash.update(data)
        self._seen += n
        if self._seen > self._expected_size:
            raise ArtifactIntegrityError(
                f"{self._label}: more than the recorded {self._expected_size} bytes are stored"
            )
        if self._seen == self._expected_size:
            # Check before handing out the last bytes: a caller that reads exactly the
            # recorded size and stops never gets corrupt content without an error.
            self._verify()
        view[:n] = data
        return n

    def readall(self) -> bytes:
        chunks = []
        while chunk := self.read(READ_BYTES):
            chunks.append(chunk)
        return b"".join(chunks)

    def __iter__(self) -> Any:
        while chunk := self.read(READ_BYTES):
            yield chunk

    def _verify(self) -> None:
        if self._verified:
            return
        if self._seen != self._expected_size:
            raise ArtifactIntegrityError(
                f"{self._label}: {self._seen} bytes are stored, {self._expected_size} recorded"
            )
        actual = self._hash.hexdigest()
        if actual != self._expected_hash:
            raise ArtifactIntegrityError(
                f"{self._label}: content sha256 is {actual}, recorded {self._expected_hash}"
            )
        self._verified = True

    def close(self) -> None:
        if not self.closed:
            try:
                self._raw.close()
            finally:
                super().close()
