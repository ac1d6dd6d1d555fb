"""Text extraction: every mime family, and untrusted bytes never raise."""

from __future__ import annotations

import io

import pypdf
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sdk.kb.extract import Extraction, extract_text


def make_pdf(pages: list[str], *, title: str | None = None) -> bytes:
    """A minimal valid PDF: one Helvetica text line per page, xref offsets computed."""
    font = 3 + 2 * len(pages)
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(len(pages)))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode(),
    ]
    for i, text in enumerate(pages):
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {4 + 2 * i} 0 R"
            f" /Resources << /Font << /F1 {font} 0 R >> >> >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    info = ""
    if title is not None:
        objects.append(f"<< /Title ({title}) >>".encode())
        info = f" /Info {len(objects)} 0 R"
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n%s\nendobj\n" % (number, body))
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.writelines(b"%010d 00000 n \n" % offset for offset in offsets)
    out.write(
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R{info} >>\n"
        f"startxref\n{xref}\n%%EOF\n".encode()
    )
    return out.getvalue()


def encrypted(pdf: bytes, *, user_password: str) -> bytes:
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(pdf)))
    writer.encrypt(user_password=user_password, owner_password="owner", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


# -- plain text and markdown ---------------------------------------------------------


@pytest.mark.parametrize(
    "mime",
    [
        "text/plain",
        "text/csv",
        "text/x-python",
        "application/x-yaml",
        "application/yaml",
        "application/xml",
        "text/xml",
        "application/x-ndjson",
    ],
)
def test_textual_types_are_indexed_as_they_are(mime: str) -> None:
    content = '# not a title\nkey: <value a="1"/>\n\nsecond paragraph, 42'
    assert extract_text(content.encode(), mime_type=mime) == Extraction(
        text=content, title=None, skipped_reason=None
    )


@pytest.mark.parametrize("mime", ["text/markdown", "text/x-markdown; charset=utf-8"])
def test_markdown_title_is_the_first_level_one_heading_outside_code(mime: str) -> None:
    content = b"```sh\n# a shell comment\n```\nIntro\n## Section\n#   Real  Title ##\n# Later\n"
    result = extract_text(content, mime_type=mime)
    assert result.title == "Real Title"
    assert result.text == content.decode().strip()


def test_markdown_without_a_level_one_heading_has_no_title() -> None:
    result = extract_text(b"## Install\n\n#hashtag is no heading", mime_type="text/markdown")
    assert result.title is None
    assert result.text == "## Install\n\n#hashtag is no heading"


def test_whitespace_is_tidied_but_paragraph_breaks_are_kept() -> None:
    content = b"\r\n  first line  \r\nsecond\t\r\n\r\n\r\n\r\n\n third\rfourth   \n\n\n"
    result = extract_text(content, mime_type="text/plain")
    assert result.text == "first line\nsecond\n\n third\nfourth"


def test_nul_characters_are_removed() -> None:
    assert extract_text(b"a\x00b\x00\x00 c", mime_type="text/plain").text == "ab c"
    assert extract_text(b'{"k": "v\\u0000w"}', mime_type="application/json").text == "k: vw"


@pytest.mark.parametrize("content", [b"", b"   \n\t\r\n  ", b"\x00\x00"])
@pytest.mark.parametrize("mime", ["text/plain", "text/html", "application/json"])
def test_content_without_text_is_skipped(content: bytes, mime: str) -> None:
    assert extract_text(content, mime_type=mime) == Extraction(
        text="", title=None, skipped_reason="no text"
    )


@pytest.mark.parametrize(
    ("content", "mime"),
    [(b"<title>T</title><p> </p>", "text/html"), (b'" \\n "', "application/json")],
)
def test_markup_without_text_is_skipped(content: bytes, mime: str) -> None:
    assert extract_text(content, mime_type=mime).skipped_reason == "no text"


# -- charsets --------------------------------------------------------------------------


def test_declared_charset_is_used() -> None:
    content = "Café Straße".encode("latin-1")
    assert extract_text(content, mime_type="text/plain; charset=latin-1").text == "Café Straße"
    assert extract_text(content, mime_type='text/plain; charset="ISO-8859-1"').text == (
        "Café Straße"
    )
    utf16 = "naïve".encode("utf-16")
    assert extract_text(utf16, mime_type="text/plain; charset=utf-16").text == "naïve"


def test_undecodable_bytes_are_replaced_not_raised() -> None:
    latin1 = "Café".encode("latin-1")
    assert extract_text(latin1, mime_type="text/plain").text == "Caf\ufffd"
    for charset in ("no-such-charset", "base64", "rot13"):
        result = extract_text(latin1, mime_type=f"text/plain; charset={charset}")
        assert result.text == "Caf\ufffd"


def test_a_utf8_byte_order_mark_is_not_text() -> None:
    assert extract_text(b"\xef\xbb\xbfhello", mime_type="text/plain").text == "hello"


# -- JSON ------------------------------------------------------------------------------


def test_json_is_flattened_to_one_line_per_leaf() -> None:
    content = """{
        "title": "Runbook",
        "steps": [{"name": "ping", "args": ["-c", 3]}, "done"],
        "owner": {"name": "Zoë", "city": "Zürich", "tags": {}, "aliases": []},
        "ok": true, "ratio": 0.5, "missing": null,
        "note": "two\\nlines"
    }"""
    result = extract_text(content.encode(), mime_type="application/json")
    assert result.text.split("\n") == [
        "title: Runbook",
        "steps[0].name: ping",
        "steps[0].args[0]: -c",
        "steps[0].args[1]: 3",
        "steps[1]: done",
        "owner.name: Zoë",
        "owner.city: Zürich",
        "owner.tags: {}",
        "owner.aliases: []",
        "ok: true",
        "ratio: 0.5",
        "missing: null",
        "note: two",
        "lines",
    ]
    assert result.title == "Runbook"


@pytest.mark.parametrize(
    ("content", "title"),
    [
        (b'{"name": "by name", "x": 1}', "by name"),
        (b'{"name": "n", "title": "t"}', "t"),
        (b'{"title": 3, "name": "n"}', "n"),
        (b'{"title": ["t"]}', None),
        (b'[{"title": "nested"}]', None),
    ],
)
def test_json_title_is_a_top_level_title_or_name(content: bytes, title: str | None) -> None:
    assert extract_text(content, mime_type="application/json").title == title


def test_structured_json_types_and_top_level_scalars() -> None:
    vendor = extract_text(b'[1, {"a": "b"}]', mime_type="application/vnd.api+json")
    assert vendor.text == "[0]: 1\n[1].a: b"
    assert extract_text(b'"just text"', mime_type="application/json").text == "just text"
    assert extract_text(b"12.5", mime_type="application/json").text == "12.5"


def test_invalid_json_is_indexed_as_raw_text() -> None:
    content = b'{"unterminated": "value", '
    result = extract_text(content, mime_type="application/json")
    assert result == Extraction(text='{"unterminated": "value",', title=None, skipped_reason=None)


def test_json_nesting_deeper_than_python_recursion_is_raw_text() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    assert extract_text(deep, mime_type="application/json").text == deep.decode()
    nested = b'{"a":' * 900 + b'"leaf"' + b"}" * 900
    assert extract_text(nested, mime_type="application/json").text.endswith(".a.a: leaf")


def test_lone_surrogates_from_json_escapes_are_replaced() -> None:
    # They cannot be encoded as UTF-8, so Postgres could not store the text.
    result = extract_text(
        b'{"s": "\\ud800 lone", "title": "\\udfff"}', mime_type="application/json"
    )
    assert result.text == "s: \ufffd lone\ntitle: \ufffd"
    assert result.title == "\ufffd"


# -- HTML ------------------------------------------------------------------------------


def test_html_text_has_no_script_or_style_and_the_title_is_kept() -> None:
    content = (
        b"<!doctype html><html><head><title>\n  Release   notes </title>"
        b"<style>.secret { color: red }</style><script>var secret = 1;</script></head>"
        b"<body><h1>Version 2</h1><p>Faster &amp; smaller.</p>"
        b"<script>alert('secret')</script><noscript></noscript><p>Caf\xc3\xa9</p></body></html>"
    )
    result = extract_text(content, mime_type="text/html")
    assert result.title == "Release notes"
    assert result.text == "Version 2\n\nFaster & smaller.\n\nCafé"
    assert "secret" not in result.text


def test_html_uses_the_declared_charset() -> None:
    content = "<title>Résumé</title><p>Naïve</p>".encode("latin-1")
    result = extract_text(content, mime_type="text/html; charset=latin-1")
    assert (result.title, result.text) == ("Résumé", "Naïve")


def test_xhtml_with_an_xml_declaration() -> None:
    content = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<html xmlns="http://www.w3.org/1999/xhtml">'
        b"<head><title>X</title></head><body><p>hello</p></body></html>"
    )
    result = extract_text(content, mime_type="application/xhtml+xml")
    assert (result.title, result.text) == ("X", "hello")


def test_html_without_a_title_or_with_only_a_comment() -> None:
    assert extract_text(b"<p>just a fragment</p>", mime_type="text/html") == Extraction(
        text="just a fragment", title=None, skipped_reason=None
    )
    assert extract_text(b"<!-- nothing -->", mime_type="text/html").skipped_reason == "no text"


@pytest.mark.parametrize("depth", [300, 1500])
def test_deeply_nested_html_keeps_its_text(depth: int) -> None:
    # libxml2 drops content below 256 levels by default, and inscriptis recurses per level.
    content = (
        b"<title>Deep</title>"
        + b"<div>" * depth
        + b"deep <script>hidden()</script>text"
        + b"</div>" * depth
    )
    result = extract_text(content, mime_type="text/html")
    assert (result.text, result.title) == ("deep text", "Deep")


# -- PDF -------------------------------------------------------------------------------


def test_pdf_pages_are_joined_by_blank_lines_and_the_title_comes_from_metadata() -> None:
    pdf = make_pdf(["Hello PDF world", "Second page here"], title="Quarterly report")
    assert extract_text(pdf, mime_type="application/pdf") == Extraction(
        text="Hello PDF world\n\nSecond page here", title="Quarterly report", skipped_reason=None
    )


def test_pdf_without_metadata_has_no_title() -> None:
    result = extract_text(make_pdf(["Only text"]), mime_type="application/pdf")
    assert (result.text, result.title) == ("Only text", None)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not a pdf at all",
        b"%PDF-1.4\ngarbage without objects",
        make_pdf(["Hello PDF world"])[:200],
    ],
)
def test_a_broken_pdf_is_skipped_with_the_reason(content: bytes) -> None:
    result = extract_text(content, mime_type="application/pdf")
    assert result.text == ""
    assert result.skipped_reason is not None
    assert result.skipped_reason.startswith("pdf could not be read: ")
    assert len(result.skipped_reason) < 250


def test_an_encrypted_pdf_is_skipped_unless_it_opens_without_a_password() -> None:
    pdf = make_pdf(["Confidential"], title="Secret")
    locked = extract_text(encrypted(pdf, user_password="pw"), mime_type="application/pdf")
    assert locked == Extraction(
        text="", title=None, skipped_reason="pdf could not be read: it is encrypted"
    )
    # Only an owner password (restrictions on printing etc.): readers open it as is.
    opened = extract_text(encrypted(pdf, user_password=""), mime_type="application/pdf")
    assert (opened.text, opened.title) == ("Confidential", "Secret")


# -- unsupported and limits ------------------------------------------------------------


@pytest.mark.parametrize(
    "mime",
    ["image/png", "image/svg+xml", "application/octet-stream", "application/zip", "video/mp4"],
)
def test_binary_types_are_skipped(mime: str) -> None:
    assert extract_text(b"\x89PNG\r\n\x1a\n\x00", mime_type=f"{mime}; foo=bar") == Extraction(
        text="", title=None, skipped_reason=f"unsupported content type {mime}"
    )


def test_mime_type_case_and_parameters_do_not_matter() -> None:
    result = extract_text(b"# T\nx", mime_type=" Text/Markdown ; Charset=UTF-8 ")
    assert (result.text, result.title) == ("# T\nx", "T")


def test_long_text_is_cut_at_a_word_boundary_and_still_indexed() -> None:
    result = extract_text(b"alpha beta gamma delta", mime_type="text/plain", max_chars=13)
    assert result == Extraction(text="alpha beta", title=None, skipped_reason=None)
    exact = extract_text(b"alpha beta gamma", mime_type="text/plain", max_chars=10)
    assert exact.text == "alpha beta"
    one_word = extract_text(b"supercalifragilistic", mime_type="text/plain", max_chars=5)
    assert one_word.text == "super"


def test_long_json_stops_flattening_at_the_limit() -> None:
    content = ("[" + ",".join(f'"item {i}"' for i in range(100_000)) + "]").encode()
    result = extract_text(content, mime_type="application/json", max_chars=1000)
    assert 900 < len(result.text) <= 1000
    assert result.text.startswith("[0]: item 0\n[1]: item 1\n")


def test_max_chars_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_chars"):
        extract_text(b"x", mime_type="text/plain", max_chars=0)


MIMES = [
    "text/plain",
    "text/markdown",
    "text/html",
    "application/json",
    "application/pdf",
    "text/plain; charset=utf-16",
    "text/html; charset=shift_jis",
    "image/png",
]


@settings(derandomize=True, database=None, deadline=None, max_examples=300)
@given(content=st.binary(max_size=400), mime=st.sampled_from(MIMES))
def test_arbitrary_bytes_never_raise_and_the_text_is_tidy(content: bytes, mime: str) -> None:
    result = extract_text(content, mime_type=mime)
    assert (result.text == "") == (result.skipped_reason is not None)
    assert "\x00" not in result.text
    assert "\r" not in result.text
    assert "\n\n\n" not in result.text
    assert result.text == result.text.strip()
    assert all(line == line.rstrip() for line in result.text.split("\n"))
    result.text.encode("utf-8")  # no lone surrogates


@pytest.mark.parametrize("mime", ["application/javascript", "application/sql", "application/x-sh"])
def test_every_type_the_artifact_store_keeps_as_text_is_indexed(mime: str) -> None:
    from sdk.artifacts.content import content_kind

    assert content_kind(mime) == "text"
    assert extract_text(b"select retry_budget from plans", mime_type=mime).text == (
        "select retry_budget from plans"
    )
