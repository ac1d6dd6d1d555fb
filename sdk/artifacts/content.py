"""What content is: its kind (text, JSON, binary), its hash, and the cheap facts about it.

Everything here works on a stream of chunks, so a 1 GiB artifact is hashed, validated
and counted in one pass with bounded memory, while the same bytes are being uploaded.

The kind decides how inline content is stored, so :func:`content_kind` is part of the
storage format: changing the answer for a mime type that already has rows would make
those rows unreadable (the sha256 check would catch it, loudly). Add types, never move one.
"""

from __future__ import annotations

import base64
import codecs
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from sdk.artifacts.errors import InvalidArtifact
from sdk.telemetry.values import find_unsafe_value

ContentKind = Literal["text", "json", "binary"]

PREVIEW_CHARS = 1000
JSON_KEYS_LISTED = 50

_MIME_RE = re.compile(r"^([a-z0-9][a-z0-9!#$&^_.+-]*)/([a-z0-9][a-z0-9!#$&^_.+-]*)$")
_TEXT_APPLICATION_TYPES = frozenset(
    {
        "application/xml",
        "application/yaml",
        "application/x-yaml",
        "application/toml",
        "application/x-ndjson",
        "application/jsonl",
        "application/javascript",
        "application/sql",
        "application/x-sh",
    }
)
_UTF8_CHARSETS = frozenset({"utf-8", "utf8", "us-ascii", "ascii"})


def normalise_mime(mime_type: str) -> str:
    """``mime_type`` with a lower-case ``type/subtype`` and tidy parameters.

    Raises InvalidArtifact when it is malformed: it ends up in keys and HTTP headers.
    """
    stripped = mime_type.strip()
    base, _, params = stripped.partition(";")
    base = base.strip().lower()
    controls = any(ord(c) < 32 or ord(c) == 127 for c in stripped)
    if not _MIME_RE.fullmatch(base) or len(mime_type) > 255 or controls:
        raise InvalidArtifact(f"mime_type {mime_type!r} is not of the form type/subtype")
    parts = [p.strip() for p in params.split(";") if p.strip()]
    cleaned = []
    for part in parts:
        name, eq, value = part.partition("=")
        if not eq or not name.strip():
            raise InvalidArtifact(f"mime_type {mime_type!r} has a malformed parameter {part!r}")
        cleaned.append(f"{name.strip().lower()}={value.strip()}")
    return "; ".join([base, *cleaned])


def base_and_charset(mime_type: str) -> tuple[str, str | None]:
    """The lower-case ``type/subtype`` and the declared charset, if any."""
    base, *params = (p.strip() for p in mime_type.split(";"))
    charset = None
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip("\"'").lower() or None
    return base.lower(), charset


def content_kind(mime_type: str) -> ContentKind:
    """How content of ``mime_type`` is treated: JSON, UTF-8 text, or opaque bytes."""
    base, _charset = base_and_charset(mime_type)
    if base == "application/json" or base.endswith("+json"):
        return "json"
    if base.startswith("text/") or base in _TEXT_APPLICATION_TYPES or base.endswith("+xml"):
        return "text"
    return "binary"


def check_charset(mime_type: str) -> None:
    """Text is stored as UTF-8: refuse a textual type that declares another charset."""
    _base, charset = base_and_charset(mime_type)
    if content_kind(mime_type) != "binary" and charset and charset not in _UTF8_CHARSETS:
        raise InvalidArtifact(
            f"text content must be UTF-8, but mime_type {mime_type!r} declares charset "
            f"{charset!r}: convert it to UTF-8, or declare application/octet-stream"
        )


@dataclass
class ContentFacts:
    """What one pass over the content found."""

    content_hash: str
    size_bytes: int
    head_text: str | None  # the first PREVIEW_CHARS characters of text, None for binary
    fields: dict[str, Any] = field(default_factory=dict)


class ContentProbe:
    """Hash, size and (for text) UTF-8 validation, NUL check and counts over chunks.

    Text content may not contain NUL: Postgres ``text`` cannot hold it, and refusing it
    at every size keeps "what is text" the same for inline and offloaded content.
    """

    def __init__(self, *, mime_type: str) -> None:
        self.mime_type = mime_type
        self.kind = content_kind(mime_type)
        self._hash = hashlib.sha256()
        self._size = 0
        self._decoder = (
            codecs.getincrementaldecoder("utf-8")("strict") if self.kind != "binary" else None
        )
        self._head: list[str] = []
        self._head_len = 0
        self._chars = 0
        self._newlines = 0
        self._last_byte = b""

    def feed(self, chunk: bytes | memoryview) -> None:
        """Account for the next chunk; raises InvalidArtifact as soon as text goes wrong."""
        self._hash.update(chunk)
        if self._decoder is not None and len(chunk):
            data = bytes(chunk) if isinstance(chunk, memoryview) else chunk
            if b"\x00" in data:
                offset = self._size + data.index(b"\x00")
                raise InvalidArtifact(
                    f"content declared as {self.mime_type} contains a NUL byte at offset "
                    f"{offset}: text may not contain NUL; declare application/octet-stream"
                )
            try:
                text = self._decoder.decode(data)
            except UnicodeDecodeError as exc:
                raise InvalidArtifact(
                    f"content declared as {self.mime_type} is not valid UTF-8 (near byte "
                    f"{self._size + exc.start}); declare application/octet-stream for binary"
                ) from exc
            self._chars += len(text)
            self._newlines += data.count(b"\n")
            if self._head_len < PREVIEW_CHARS:
                piece = text[: PREVIEW_CHARS - self._head_len]
                self._head.append(piece)
                self._head_len += len(piece)
            self._last_byte = data[-1:]
        self._size += len(chunk)

    @property
    def size(self) -> int:
        return self._size

    def finish(self) -> ContentFacts:
        """The facts of the whole content; raises InvalidArtifact on truncated UTF-8."""
        fields: dict[str, Any] = {}
        head: str | None = None
        if self._decoder is not None:
            try:
                self._decoder.decode(b"", final=True)
            except UnicodeDecodeError as exc:
                raise InvalidArtifact(
                    f"content declared as {self.mime_type} is not valid UTF-8 "
                    "(it ends inside a multi-byte character)"
                ) from exc
            head = "".join(self._head)
            lines = self._newlines + (1 if self._size and self._last_byte != b"\n" else 0)
            fields = {"line_count": lines, "char_count": self._chars}
        return ContentFacts(
            content_hash=self._hash.hexdigest(),
            size_bytes=self._size,
            head_text=head,
            fields=fields,
        )


@dataclass
class InlineForm:
    """How small content is kept in its version row (see docs/architecture.md, Artifacts)."""

    text: str  # inline_content_text: the exact text, or base64 of binary content
    json_value: Any = None  # inline_content_json (only when has_json)
    has_json: bool = False
    preview: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def jsonb_can_hold(value: Any) -> bool:
    """Whether the parsed JSON ``value`` can go into a jsonb column as it is.

    Not for NUL characters, lone surrogates, non-finite numbers (``1e400`` parses to
    ``inf``), integers beyond 64 bits or nesting past 32 levels: the events' screening
    (:func:`sdk.telemetry.values.find_unsafe_value`), so the two refuse the same values.
    """
    return find_unsafe_value(value) is None


def inline_form(data: bytes, *, mime_type: str, head_text: str | None) -> InlineForm:
    """The inline columns, preview and automatic fields of small, already validated content."""
    kind = content_kind(mime_type)
    if kind == "binary":
        return InlineForm(text=base64.b64encode(data).decode("ascii"))
    text = data.decode("utf-8")
    fields: dict[str, Any] = {"word_count": len(text.split())}
    if kind == "text":
        return InlineForm(text=text, preview=head_text, fields=fields)
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise InvalidArtifact(f"content declared as {mime_type} is not valid JSON: {exc}") from exc
    fields["json_type"] = _json_type(value)
    if isinstance(value, dict):
        fields["json_keys"] = list(value)[:JSON_KEYS_LISTED]
        fields["json_length"] = len(value)
    elif isinstance(value, list):
        fields["json_length"] = len(value)
    preview = json.dumps(value, indent=2, ensure_ascii=False)[:PREVIEW_CHARS]
    holdable = jsonb_can_hold(value)
    return InlineForm(
        text=text,
        json_value=value if holdable else None,
        has_json=holdable,
        preview=preview if holdable else head_text,
        fields=fields,
    )


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


def decode_inline(*, mime_type: str, text: str) -> bytes:
    """The exact bytes of an inline version from its ``inline_content_text``."""
    if content_kind(mime_type) == "binary":
        return base64.b64decode(text.encode("ascii"), validate=True)
    return text.encode("utf-8")
