"""From the caller's content to what a version row needs, in one streaming pass.

The content is read once. The first ``inline_max_bytes`` are buffered; if the content
ends before that, it is kept inline (no store call at all). Otherwise the buffered head
and the rest of the stream go straight to a *staging* key in the blob store while the
sha256, size and text checks run over the same chunks, so memory stays bounded by the
inline limit plus the store's part buffers, whatever the size of the content.

The staged blob is moved to its final key only when the version row is being committed
(:mod:`sdk.artifacts.service`): the final key contains the version number, which is
known only under the artifact's row lock, and the sha256, which is known only at the end.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ulid import ULID

from sdk.artifacts.content import ContentFacts, ContentProbe, InlineForm, inline_form
from sdk.artifacts.errors import ArtifactError, InvalidArtifact, StorageUnavailable
from sdk.artifacts.keys import guess_mime_type, staging_key
from sdk.artifacts.stores.base import BlobStore

CHUNK_BYTES = 1024 * 1024

Content = bytes | bytearray | memoryview | str | dict[str, Any] | list[Any]


@dataclass(frozen=True)
class Source:
    """Exactly one of: bytes (str and JSON values already encoded), a binary stream, a path."""

    content: bytes | None = None
    stream: IO[bytes] | None = None
    path: Path | None = None
    content_mime: str = "application/octet-stream"  # the default for ``content``

    @classmethod
    def of(
        cls,
        *,
        content: Content | None,
        stream: IO[bytes] | None,
        path: str | os.PathLike[str] | None,
    ) -> Source:
        """Check the arguments and encode str/JSON content now, so content that cannot be
        UTF-8 fails here, before anything is read from the database or uploaded."""
        given = [
            name
            for name, v in (("content", content), ("stream", stream), ("path", path))
            if v is not None
        ]
        if len(given) != 1:
            raise InvalidArtifact(
                f"give exactly one of content=, stream=, path= (got {', '.join(given) or 'none'})"
            )
        if content is None:
            return cls(stream=stream, path=Path(path) if path is not None else None)
        mime = (
            "text/plain; charset=utf-8"
            if isinstance(content, str)
            else "application/json"
            if isinstance(content, dict | list)
            else "application/octet-stream"
        )
        return cls(content=_content_bytes(content), content_mime=mime)

    def default_mime_type(self) -> str:
        """The mime type when the caller gives none: from the value's kind or the file name."""
        if self.path is not None:
            return guess_mime_type(self.path.name) or "application/octet-stream"
        if self.content is not None:
            return self.content_mime
        return "application/octet-stream"

    def chunks(self, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
        """The content, ``chunk_bytes`` at a time."""
        if self.path is not None:
            yield from _file_chunks(self.path, chunk_bytes)
        elif self.stream is not None:
            yield from _stream_chunks(self.stream, chunk_bytes)
        else:
            view = memoryview(self.content or b"")
            for start in range(0, len(view), chunk_bytes):
                yield bytes(view[start : start + chunk_bytes])


def _surrogate_message(exc: UnicodeEncodeError, where: str) -> str:
    return (
        f"content contains a lone surrogate (U+{ord(exc.object[exc.start]):04X}{where}), "
        "which is not valid Unicode text and cannot be stored as UTF-8"
    )


def _content_bytes(content: Content) -> bytes:
    if isinstance(content, str):
        try:
            return content.encode("utf-8", errors="strict")
        except UnicodeEncodeError as exc:
            raise InvalidArtifact(_surrogate_message(exc, f" at character {exc.start}")) from exc
    if isinstance(content, dict | list):
        try:
            text = json.dumps(content, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError, RecursionError) as exc:
            raise InvalidArtifact(f"content is not serialisable as JSON: {exc}") from exc
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidArtifact(_surrogate_message(exc, " in a string or key")) from exc
    if isinstance(content, bytes | bytearray | memoryview):
        return bytes(content)
    raise InvalidArtifact(f"content must be bytes, str, dict or list, not {type(content).__name__}")


def _file_chunks(path: Path, chunk_bytes: int) -> Iterator[bytes]:
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise InvalidArtifact(f"cannot read {path}: {exc.strerror or exc}") from exc
    with handle:
        while True:
            try:
                chunk = handle.read(chunk_bytes)
            except OSError as exc:
                raise InvalidArtifact(f"reading {path} failed: {exc}") from exc
            if not chunk:
                return
            yield chunk


def _stream_chunks(stream: IO[bytes], chunk_bytes: int) -> Iterator[bytes]:
    while True:
        chunk = stream.read(chunk_bytes)
        if not chunk:
            return
        if not isinstance(chunk, bytes | bytearray | memoryview):
            raise InvalidArtifact("stream= must be opened in binary mode (it returned str)")
        yield bytes(chunk)


@dataclass
class Prepared:
    """Validated content, either inline or staged in the blob store."""

    mime_type: str
    facts: ContentFacts
    inline: InlineForm | None
    staging_key: str | None
    preview_text: str | None
    extracted_fields: dict[str, Any] = field(default_factory=dict)


def prepare(
    source: Source,
    *,
    mime_type: str,
    inline_max_bytes: int,
    store: BlobStore | None,
    caller_preview: str | None,
    caller_fields: dict[str, Any] | None,
    chunk_bytes: int = CHUNK_BYTES,
) -> Prepared:
    """Read ``source`` once: validate, hash, and keep it inline or stage it in ``store``.

    ``store`` is touched only for content of at least ``inline_max_bytes``. The caller
    owns the staged blob from here: it must promote or delete ``Prepared.staging_key``.
    """
    probe = ContentProbe(mime_type=mime_type)
    chunks = source.chunks(chunk_bytes)
    head = bytearray()
    offload = False
    for chunk in chunks:
        probe.feed(chunk)
        head += chunk
        if len(head) >= inline_max_bytes:
            offload = True
            break
    if not offload and len(head) >= inline_max_bytes:  # inline_max_bytes == 0
        offload = True

    if not offload:
        facts = probe.finish()
        form = inline_form(bytes(head), mime_type=mime_type, head_text=facts.head_text)
        auto_preview = form.preview
        auto_fields = {**facts.fields, **form.fields}
        key = None
    else:
        if store is None:  # pragma: no cover - the service always passes one
            raise StorageUnavailable("content above the inline limit needs a blob store")
        key = staging_key(str(ULID()))

        def everything() -> Iterator[bytes]:
            yield bytes(head)
            head.clear()  # do not hold the inline buffer for the whole upload
            for chunk in chunks:
                probe.feed(chunk)
                yield chunk

        # A failed put leaves nothing behind (the stores clean up their own partial
        # writes), so only content found bad at the very end needs its blob removed.
        store.put(key, everything())
        try:
            facts = probe.finish()
        except BaseException:
            discard(store, key)
            raise
        form = None
        auto_preview = facts.head_text
        auto_fields = dict(facts.fields)
    return Prepared(
        mime_type=mime_type,
        facts=facts,
        inline=form,
        staging_key=key,
        preview_text=caller_preview if caller_preview is not None else auto_preview,
        extracted_fields={**auto_fields, **(caller_fields or {})},
    )


def discard(store: BlobStore, key: str | None) -> None:
    """Best-effort removal of a staged blob (gc removes what this misses)."""
    if key is not None:
        with suppress(ArtifactError):
            store.delete(key)
