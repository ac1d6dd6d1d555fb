"""Content kinds, validation while streaming, previews and automatic fields."""

from __future__ import annotations

import hashlib

import pytest

from sdk.artifacts.content import (
    PREVIEW_CHARS,
    ContentProbe,
    check_charset,
    content_kind,
    decode_inline,
    inline_form,
    normalise_mime,
)
from sdk.artifacts.errors import InvalidArtifact


@pytest.mark.parametrize(
    ("mime", "kind"),
    [
        ("text/plain", "text"),
        ("text/markdown; charset=utf-8", "text"),
        ("application/json", "json"),
        ("application/vnd.api+json", "json"),
        ("application/yaml", "text"),
        ("image/svg+xml", "text"),
        ("application/octet-stream", "binary"),
        ("image/png", "binary"),
        ("application/pdf", "binary"),
    ],
)
def test_content_kinds_are_part_of_the_storage_format(mime: str, kind: str) -> None:
    # Inline binary is base64 and inline text is UTF-8: moving a type between kinds
    # would make its existing rows unreadable. This table may only grow.
    assert content_kind(mime) == kind


def test_mime_types_are_normalised_and_malformed_ones_refused() -> None:
    assert normalise_mime(" Text/Plain ;Charset=UTF-8 ") == "text/plain; charset=UTF-8"
    for bad in (
        "text",
        "text/",
        "/plain",
        "a b/c",
        "text/plain; broken",
        "x/y\nz",
        "text/plain; a=b\nc",
    ):
        with pytest.raises(InvalidArtifact):
            normalise_mime(bad)
    check_charset("text/plain; charset=utf-8")
    check_charset("application/octet-stream; charset=latin-1")  # binary: charset is moot
    with pytest.raises(InvalidArtifact, match="UTF-8"):
        check_charset("text/csv; charset=windows-1252")


def _probe(mime: str, chunks: list[bytes]) -> ContentProbe:
    probe = ContentProbe(mime_type=mime)
    for chunk in chunks:
        probe.feed(chunk)
    return probe


def test_utf8_split_across_chunks_is_fine() -> None:
    data = "añb€c\n".encode() * 3
    chunks = [data[i : i + 1] for i in range(len(data))]  # every character split
    facts = _probe("text/plain", chunks).finish()
    assert facts.content_hash == hashlib.sha256(data).hexdigest()
    assert facts.size_bytes == len(data)
    assert facts.head_text == "añb€c\n" * 3
    assert facts.fields == {"line_count": 3, "char_count": 18}


def test_the_error_names_the_offset_across_chunks() -> None:
    with pytest.raises(InvalidArtifact, match="near byte 7"):
        _probe("text/plain", [b"abcd", b"efg\xff"])
    with pytest.raises(InvalidArtifact, match="NUL byte at offset 5"):
        _probe("text/plain", [b"abc", b"de\x00"])
    with pytest.raises(InvalidArtifact, match="ends inside"):
        _probe("text/plain", [b"ab\xe2\x82"]).finish()


def test_binary_is_only_hashed() -> None:
    facts = _probe("image/png", [b"\x00\xff", b"\xfe"]).finish()
    assert facts.head_text is None
    assert facts.fields == {}
    assert facts.size_bytes == 3


def test_preview_is_the_head_of_the_text() -> None:
    text = "x" * (PREVIEW_CHARS + 50)
    facts = _probe("text/plain", [text.encode()]).finish()
    assert facts.head_text == "x" * PREVIEW_CHARS
    assert facts.fields["line_count"] == 1


def test_inline_forms_round_trip_exactly() -> None:
    for mime, data in [
        ("text/plain", "héllo wörld\n".encode()),
        ("application/json", b'{"z": 1, "a": [true, null]}'),
        ("image/png", bytes(range(256))),
        ("application/octet-stream", b""),
    ]:
        form = inline_form(data, mime_type=mime, head_text=None)
        assert decode_inline(mime_type=mime, text=form.text) == data


def test_json_gets_keys_type_and_a_pretty_preview() -> None:
    form = inline_form(b'{"b":1,"a":[1,2]}', mime_type="application/json", head_text=None)
    assert form.has_json
    assert form.json_value == {"b": 1, "a": [1, 2]}
    assert form.fields == {
        "word_count": 1,
        "json_type": "object",
        "json_keys": ["b", "a"],
        "json_length": 2,
    }
    assert form.preview == '{\n  "b": 1,\n  "a": [\n    1,\n    2\n  ]\n}'


@pytest.mark.parametrize("bad", [b"{", b"NaN", b'{"a": Infinity}', b"[1,]"])
def test_invalid_json_is_refused(bad: bytes) -> None:
    with pytest.raises(InvalidArtifact, match="not valid JSON"):
        inline_form(bad, mime_type="application/json", head_text=None)


@pytest.mark.parametrize("raw", [b'["a\\u0000b"]', b'{"\\ud800": 1}'])
def test_json_jsonb_cannot_hold_is_kept_as_text_only(raw: bytes) -> None:
    form = inline_form(raw, mime_type="application/json", head_text=raw.decode())
    assert not form.has_json
    assert form.text == raw.decode()
    assert form.preview == raw.decode()
