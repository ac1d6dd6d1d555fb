"""The indexable text of an artifact version, whatever its mime type.

Extraction never raises on content: artifacts are untrusted bytes, and one odd version
must not stop an ingestion run. What cannot be indexed comes back with an empty text and
a ``skipped_reason`` that says why, so the caller can record it and move on.

The text is what the chunker splits and what chunk offsets point into, so it is tidied
once here: no NUL (Postgres ``text`` cannot hold it), no lone surrogates (they cannot be
encoded as UTF-8), ``\\n`` line ends, no trailing spaces, and at most one blank line in a
row. Paragraph breaks survive: the splitter prefers to cut at them.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pypdf
from inscriptis.html_engine import Inscriptis  # type: ignore[import-untyped]
from lxml.etree import ParserError  # type: ignore[import-untyped]
from lxml.html import HTMLParser, document_fromstring  # type: ignore[import-untyped]

from sdk.artifacts.content import base_and_charset, content_kind

DEFAULT_MAX_CHARS = 2_000_000
TITLE_MAX_CHARS = 500

_MARKDOWN_TYPES = frozenset({"text/markdown", "text/x-markdown"})
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})

_XML_DECLARATION = re.compile(r"^<\?xml [^>]+?\?>")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_BLANK_LINES = re.compile(r"\n{3,}")
_SURROGATES = re.compile("[\ud800-\udfff]")
# C0 controls other than tab and newline: never meaningful in indexed text, and search
# uses \x02/\x03 to mark matches in snippets, so they must not occur in chunks.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Extraction:
    """The text to index, its title, or why there is nothing to index."""

    text: str  # "" when nothing to index
    title: str | None
    skipped_reason: str | None  # set when the content is not indexable (then text == "")


def extract_text(
    content: bytes, *, mime_type: str, max_chars: int = DEFAULT_MAX_CHARS
) -> Extraction:
    """The tidied text and title of ``content``, or the reason it cannot be indexed.

    Text longer than ``max_chars`` is cut at the last word boundary before the limit and
    indexed anyway, without a ``skipped_reason``: the head of a huge document is still
    worth finding, and embedding all of it would cost more than it is worth.
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be at least 1, got {max_chars}")
    base, charset = base_and_charset(mime_type)
    raw = _extract_raw(content, base=base, charset=charset, max_chars=max_chars)
    if raw.skipped_reason is not None:
        return raw
    text = _truncate(_normalise(raw.text), max_chars=max_chars)
    if not text:
        return Extraction(text="", title=None, skipped_reason="no text")
    return Extraction(text=text, title=_clean_title(raw.title), skipped_reason=None)


def _extract_raw(content: bytes, *, base: str, charset: str | None, max_chars: int) -> Extraction:
    """Dispatch on the mime type; the result is not normalised yet."""
    if base == "application/pdf":
        return _from_pdf(content, max_chars=max_chars)
    if base in _HTML_TYPES:
        return _from_html(_decode(content, charset))
    # Which types are text is the artifact store's rule (it validated them as UTF-8 on
    # write); pictures (image/svg+xml) are markup, not text worth finding.
    kind = content_kind(base)
    if kind == "json":
        return _from_json(_decode(content, charset), max_chars=max_chars)
    if kind == "text" and not base.startswith("image/"):
        # No character takes more than 4 bytes in any charset: the rest would be cut.
        text = _decode(content[: 4 * max_chars + 4], charset)
        title = _markdown_title(text) if base in _MARKDOWN_TYPES else None
        return Extraction(text=text, title=title, skipped_reason=None)
    return Extraction(text="", title=None, skipped_reason=f"unsupported content type {base}")


def _decode(content: bytes, charset: str | None) -> str:
    """Decode leniently: a wrong or unknown charset must cost a few characters, not the text."""
    encoding = charset or "utf-8"
    if encoding.replace("_", "-") in {"utf-8", "utf8"}:
        encoding = "utf-8-sig"  # a byte order mark is not text
    try:
        return content.decode(encoding, errors="replace")
    except LookupError:  # unknown, or not a text encoding (base64, rot13, ...)
        return content.decode("utf-8-sig", errors="replace")


def _markdown_title(text: str) -> str | None:
    """The first level-1 ATX heading outside code fences (``# Title``)."""
    fence: str | None = None
    for line in text.splitlines():
        marker = _FENCE.match(line)
        if marker is not None:
            char = marker.group(1)[0]
            if fence is None:
                fence = char
            elif fence == char:
                fence = None
            continue
        if fence is None and (heading := _atx_h1(line)) is not None:
            return heading
    return None


def _atx_h1(line: str) -> str | None:
    """``# Title`` (up to 3 spaces before, an optional closing ``#`` run after).

    String methods, not a regex: the obvious pattern backtracks quadratically on a
    heading line full of spaces.
    """
    stripped = line.lstrip(" ")
    if len(line) - len(stripped) > 3 or not stripped.startswith("#"):
        return None
    rest = stripped[1:]
    if not rest or rest[0] not in " \t":
        return None
    title = rest.strip(" \t")
    body = title.rstrip("#")
    if body != title and (not body or body[-1] in " \t"):
        title = body.rstrip(" \t")
    return title or None


def _from_json(text: str, *, max_chars: int) -> Extraction:
    """One ``path: value`` line per leaf, so keys are searchable next to their values."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return Extraction(text=text, title=None, skipped_reason=None)
    lines: list[str] = []
    size = 0
    for line in _json_lines(value):
        lines.append(line)
        size += len(line) + 1
        if size > max_chars:  # the rest would be truncated anyway
            break
    return Extraction(text="\n".join(lines), title=_json_title(value), skipped_reason=None)


def _json_title(value: Any) -> str | None:
    if isinstance(value, dict):
        for key in ("title", "name"):
            if isinstance(value.get(key), str):
                return str(value[key])
    return None


def _json_lines(value: Any) -> Iterator[str]:
    """Leaves in document order, iteratively: json.loads accepts nesting deeper than we recurse."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, dict) and item:
            children = [(f"{path}.{key}" if path else key, v) for key, v in item.items()]
            stack.extend(reversed(children))
        elif isinstance(item, list) and item:
            stack.extend(reversed([(f"{path}[{i}]", v) for i, v in enumerate(item)]))
        else:
            scalar = item if isinstance(item, str) else json.dumps(item, ensure_ascii=False)
            yield f"{path}: {scalar}" if path else scalar


def _from_html(text: str) -> Extraction:
    """Rendered text (no script or style) via inscriptis, and the ``<title>``."""
    html = _XML_DECLARATION.sub("", text.replace("\x00", "").strip(), count=1)
    if not html:
        return Extraction(text="", title=None, skipped_reason=None)
    # Without huge_tree, libxml2 silently drops what is nested deeper than 256 elements.
    # A parser per call: lxml parsers must not be shared between threads.
    parser = HTMLParser(huge_tree=True)
    try:
        tree = document_fromstring(html, parser=parser)
    except ParserError:  # e.g. only a comment: inscriptis renders such input as <pre>
        tree = document_fromstring(f"<pre>{html}</pre>", parser=parser)
    title = tree.findtext(".//title")
    return Extraction(
        text=_render_html(tree),
        title=title if isinstance(title, str) else None,
        skipped_reason=None,
    )


def _render_html(tree: Any) -> str:
    """inscriptis recurses per element: past Python's limit, keep the bare text instead."""
    try:
        return str(Inscriptis(tree).get_text())
    except RecursionError:
        body = tree.find("body")
        root = body if body is not None else tree
        for element in root.iter("script", "style"):
            element.drop_tree()
        return str(root.text_content())


def _from_pdf(content: bytes, *, max_chars: int) -> Extraction:
    """Page texts joined by blank lines; any failure of pypdf is a reason, not an error."""
    try:
        reader = pypdf.PdfReader(io.BytesIO(content))
        if reader.is_encrypted and not reader.decrypt(""):
            return _unreadable_pdf("it is encrypted")
        pages: list[str] = []
        size = 0
        for page in reader.pages:
            pages.append(page.extract_text())
            size += len(pages[-1]) + 2
            if size > max_chars:
                break
        title = reader.metadata.title if reader.metadata is not None else None
    except Exception as exc:  # pypdf raises many types on malformed input
        return _unreadable_pdf(f"{type(exc).__name__}: {exc}")
    return Extraction(text="\n\n".join(pages), title=title, skipped_reason=None)


def _unreadable_pdf(why: str) -> Extraction:
    short = " ".join(why.split())[:200]
    return Extraction(text="", title=None, skipped_reason=f"pdf could not be read: {short}")


def _normalise(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROLS.sub("", _SURROGATES.sub("\ufffd", text))
    # Line by line: a regex for "spaces before a newline" backtracks quadratically on
    # long runs of spaces (a degenerate model output took hours per megabyte).
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", text).strip()


def _truncate(text: str, *, max_chars: int) -> str:
    """At most ``max_chars``, cut before the last word that would not fit whole."""
    if len(text) <= max_chars:
        return text
    head = text[: max_chars + 1]
    cut = max(head.rfind(" "), head.rfind("\n"), head.rfind("\t"))
    return (head[:cut] if cut > 0 else head[:max_chars]).rstrip()


def _clean_title(title: str | None) -> str | None:
    if title is None:
        return None
    cleaned = _SURROGATES.sub("\ufffd", " ".join(title.replace("\x00", "").split()))
    return cleaned[:TITLE_MAX_CHARS] or None
