"""The ``otel`` field of a mapped event: a span's raw attributes, bounded and redacted.

What the mapping reads into event fields is not all a span says; the rest is kept for
whoever debugs the run, within limits: at most ``MAX_OTEL_BYTES`` of JSON per event
(GenAI and correlation attributes first, then the others by name, the remainder
counted in ``dropped``), strings cut at ``MAX_STRING`` characters, and the values of
attributes whose names say they hold credentials (authorization and cookie headers, API
keys, passwords, secrets, access tokens) replaced by ``"[redacted]"``.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ingest_api.otlp.spans import SpanView

MAX_OTEL_BYTES = 8_192
MAX_STRING = 512
MAX_ITEMS = 32
REDACTED = "[redacted]"
FIRST = ("gen_ai.", "llm.", "openinference.", "graph.", "wdp.", "session.", "user.", "error.")
# A name holds a credential: a header or key of these names, or one ending in "token"
# (not token counts: "llm.token_count.prompt", "gen_ai.usage.input_tokens").
SECRET_NAME = re.compile(
    r"authorization|cookie|api[._-]?key|apikey|password|passwd|secret|credential|"
    r"private[._-]?key|token$|(^|[._-])key$",
    re.IGNORECASE,
)
URL_NAME = re.compile(r"(^|\.)(url(\.full|\.query)?|http\.url|http\.target|db\.connection_string)$")


PLAIN, SECRET, URL = 0, 1, 2


@functools.lru_cache(maxsize=4096)
def name_kind(name: str) -> int:
    """What an attribute's name says of its value (cached: names repeat across spans)."""
    if SECRET_NAME.search(name) is not None:
        return SECRET
    return URL if URL_NAME.search(name) is not None else PLAIN


def is_secret(name: str) -> bool:
    return name_kind(name) == SECRET


def clean_text(value: str) -> str:
    """``value`` as storable text, cut at MAX_STRING (names and keys: never parsed)."""
    if value.isascii() and len(value) <= MAX_STRING and "\x00" not in value:
        return value  # the usual attribute name or value: nothing to do
    out = value.replace("\x00", "\ufffd")
    if not out.isascii():
        out = out.encode("utf-8", "replace").decode("utf-8")
    return out if len(out) <= MAX_STRING else out[:MAX_STRING] + "…"


def clean(value: Any, depth: int = 0) -> Any:
    """``value`` made storable and small: strings cut, lists and dicts shortened; a JSON
    object in a string (OpenInference's ``metadata``, ``llm.invocation_parameters``)
    parsed, so that its keys are redacted like attribute names."""
    if isinstance(value, str) and value.startswith("{") and len(value) <= 65_536:
        try:
            parsed = json.loads(value)
        except (ValueError, RecursionError):
            parsed = None
        if isinstance(parsed, dict):
            return clean(parsed, depth)
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else str(value)
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else str(value)
    if depth >= 4:
        return "[nested too deep]"
    if isinstance(value, list):
        return [clean(v, depth + 1) for v in value[:MAX_ITEMS]]
    if isinstance(value, dict):
        return {
            clean_text(str(k)): REDACTED if is_secret(str(k)) else clean(v, depth + 1)
            for k, v in list(value.items())[:MAX_ITEMS]
        }
    return clean(str(value))


def otel_field(span: SpanView) -> dict[str, Any]:
    """The bounded, redacted record of ``span`` kept in its event's payload."""
    out: dict[str, Any] = {
        "trace_id": span.trace_id,
        "span_id": span.span_id,
        "parent_span_id": span.parent_span_id or None,
        "name": clean_text(span.name),
        "kind": span.kind,
        "scope": clean_text(span.scope),
    }
    values: dict[str, Any] = {}
    bound = 2  # an upper bound of the JSON size of ``values``, in bytes
    for name, raw in span.attrs.items():
        kind = name_kind(name)
        if kind == SECRET:
            value: Any = REDACTED
        elif kind == URL and isinstance(raw, str):
            value = clean(without_credentials(raw))
        else:
            value = clean(raw)
        key = clean_text(name)
        values[key] = value
        bound += 6 * len(key) + 6 + _size_bound(value)  # quotes, ": " and ", "
    # Nearly always everything fits, which the bounds show without encoding anything.
    # The head as measured below (ASCII-escaped: up to 12 bytes for a character beyond
    # the BMP): the ids (hex, any length in crafted input), the name and scope, the rest.
    ids = len(span.trace_id) + len(span.span_id) + len(span.parent_span_id)
    head = 12 * (len(out["name"]) + len(out["scope"])) + ids + 200
    if bound + head <= MAX_OTEL_BYTES:
        kept, dropped = values, 0
    else:
        budget = MAX_OTEL_BYTES - len(json.dumps(out))
        if len(json.dumps(values, ensure_ascii=False).encode()) <= budget:
            kept, dropped = values, 0
        else:
            kept, dropped = _within(values, budget)
    out["attributes"] = kept
    if dropped:
        out["dropped"] = dropped
    return out


def _size_bound(value: Any) -> int:
    """At least the size of ``value`` as UTF-8 JSON: a character is at most 6 bytes
    (an escape such as \\u001f; 4 in UTF-8), a 64-bit integer or a float at most 24."""
    if isinstance(value, str):
        return 6 * len(value) + 2
    if value is None or isinstance(value, bool | int | float):
        return 24
    return len(json.dumps(value, ensure_ascii=False).encode())


def _within(values: dict[str, Any], budget: int) -> tuple[dict[str, Any], int]:
    """The attributes that fit ``budget`` bytes of JSON, GenAI and correlation names
    first, then by name; and how many did not."""
    kept: dict[str, Any] = {}
    dropped = 0
    for key in sorted(values, key=lambda n: (not n.startswith(FIRST), n)):
        size = len(json.dumps({key: values[key]}, ensure_ascii=False).encode()) + 2
        if size > budget:
            dropped += 1
            continue
        kept[key] = values[key]
        budget -= size
    return kept, dropped


def without_credentials(url: str) -> str:
    """``url`` without its user info and with every query value replaced: credentials
    travel there (``https://user:key@host/?api_key=...``)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
    except ValueError:
        return REDACTED
    query = "&".join(
        f"{pair.split('=', 1)[0]}={REDACTED}" if "=" in pair else pair
        for pair in parts.query.split("&")
        if pair
    )
    if parts.scheme or parts.netloc:
        return urlunsplit((parts.scheme, host, parts.path, query, ""))
    # A bare query (url.query) or path (http.target)
    if "=" in url and "?" not in url and "/" not in url:
        return "&".join(
            f"{p.split('=', 1)[0]}={REDACTED}" if "=" in p else p for p in url.split("&") if p
        )
    return urlunsplit(("", "", parts.path, query, ""))
