"""Where a span's correlation ids come from: the span, its resource, or OpenInference's
``metadata`` attribute (a LangGraph run's ``config["metadata"]`` as a JSON string); and
for every event of a trace, its root span as the fallback (``docs/otlp.md``)."""

from __future__ import annotations

import json
from typing import Any

from ingest_api.otlp.spans import SpanView

# Envelope field -> the attributes it is read from (span, resource, metadata; then root).
CORRELATION = (
    ("run_id", ("wdp.run_id",)),
    ("item_id", ("wdp.item_id",)),
    ("workflow_name", ("wdp.workflow_name", "service.name")),
    ("agent_role", ("wdp.agent_role", "gen_ai.agent.name")),
)
CORRELATION_NAMES = frozenset(name for _, names in CORRELATION for name in names)
NO_CORRELATION: tuple[Any, ...] = (None,) * len(CORRELATION)


def metadata(span: SpanView) -> dict[str, Any]:
    """OpenInference's ``metadata`` attribute (a JSON object in a string), else {}."""
    if span.meta is None:
        span.meta = {}
        raw = span.attrs.get("metadata")
        if isinstance(raw, dict):
            span.meta = raw
        elif isinstance(raw, str) and len(raw) <= 65_536:
            try:
                parsed = json.loads(raw)
            except (ValueError, RecursionError):
                parsed = None
            if isinstance(parsed, dict):
                span.meta = parsed
    return span.meta


def lookup(span: SpanView | None, *names: str) -> Any:
    """The first of ``names`` on the span, its resource, or its ``metadata`` (where
    OpenInference puts a LangGraph run's ``config["metadata"]``)."""
    if span is None:
        return None
    found = span.attr(*names)
    if found is None:
        meta = metadata(span)
        found = next((meta[n] for n in names if meta.get(n) is not None), None)
    return found


def correlation(span: SpanView) -> tuple[Any, ...]:
    """``lookup`` of each CORRELATION field on ``span``, once per span (a trace's root
    is asked for every event of the trace)."""
    if span.corr is None:
        if CORRELATION_NAMES.isdisjoint(span.attrs) and "metadata" not in span.attrs:
            # The usual span: only its resource can say (what lookup would find there).
            resource = span.resource
            found: list[Any] = []
            for _, names in CORRELATION:
                value = None
                for name in names:
                    if name in resource:
                        value = resource[name]
                        break
                found.append(value)
            span.corr = tuple(found)
        else:
            span.corr = tuple(lookup(span, *names) for _, names in CORRELATION)
    return span.corr
