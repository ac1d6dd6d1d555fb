"""The ``otel`` field of a mapped event: a span's raw attributes, bounded and redacted.

What the mapping reads into event fields is not all a span says; the rest is kept for
whoever debugs the run, within limits: at most ``MAX_OTEL_BYTES`` of JSON per event
(GenAI and correlation attributes first, then the others by name, the remainder
counted in ``dropped``), strings cut at ``MAX_STRING`` characters, and the values of
attributes whose names say they hold credentials (authorization and cookie headers, API
keys, passwords, secrets, access tokens) replaced by ``"[redacted]"``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ingest_api.otlp.spans import SpanView

MAX_OTEL_BYTES = 8_192
MAX_STRING = 512
MAX_ITEMS = 32
REDACTED = "[redacted]"
FIRST = ("gen_ai.", "llm.", "openinference.", "graph.", "wdp.", "session.", "user.", "error.")
# A name holds a credential: a header or key of these names, or one ending in "token"
# (not token counts: "llm.token_count.prompt", "gen_ai.usage.input_tokens").
SECRET_NAME = re.compile(
    r"(authorization|cookie|api[._-]?key|apikey|password|passwd|secret|credential|"
    r"private[._-]?key|x-api-key|(^|[._-])(access|auth|bearer|refresh|session|id)?[._-]?token)$"
    r"|authorization|cookie|password|secret|api[._-]?key",
    re.IGNORECASE,
)


def is_secret(name: str) -> bool:
    return SECRET_NAME.search(name) is not None


def clean(value: Any, depth: int = 0) -> Any:
    """``value`` made storable and small: strings cut, lists and dicts shortened."""
    if isinstance(value, str):
        out = value.replace("\x00", "\ufffd")
        if not out.isascii():
            out = out.encode("utf-8", "replace").decode("utf-8")
        return out if len(out) <= MAX_STRING else out[:MAX_STRING] + "…"
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
            clean(str(k)): REDACTED if is_secret(str(k)) else clean(v, depth + 1)
            for k, v in list(value.items())[:MAX_ITEMS]
        }
    return clean(str(value))


def otel_field(span: SpanView) -> dict[str, Any]:
    """The bounded, redacted record of ``span`` kept in its event's payload."""
    out: dict[str, Any] = {
        "trace_id": span.trace_id,
        "span_id": span.span_id,
        "parent_span_id": span.parent_span_id or None,
        "name": clean(span.name),
        "kind": span.kind,
        "scope": clean(span.scope),
    }
    budget = MAX_OTEL_BYTES - len(json.dumps(out))
    kept: dict[str, Any] = {}
    dropped = 0
    names = sorted(span.attrs, key=lambda n: (not n.startswith(FIRST), n))
    for name in names:
        value = REDACTED if is_secret(name) else clean(span.attrs[name])
        key = clean(name)
        size = len(json.dumps({key: value}, ensure_ascii=False).encode()) + 2
        if size > budget:
            dropped += 1
            continue
        kept[key] = value
        budget -= size
    out["attributes"] = kept
    if dropped:
        out["dropped"] = dropped
    return out
