"""The spans of one OTLP export as workflow events (the table: ``docs/otlp.md``).

- A **node span** (a LangGraph node traced by OpenInference: its name is its
  ``langgraph_node`` metadata; a span with ``graph.node.id``; an agent span:
  ``gen_ai.operation.name`` ``invoke_agent`` or OpenInference kind AGENT) becomes one
  ``workflow.step_completed``.
- A **model span** (GenAI ``chat``/``text_completion``/``generate_content``/
  ``embeddings``, or OpenInference kind LLM/EMBEDDING) is a call of the innermost node
  span above it in the same export, as the SDK's own handler attributes calls. One
  whose node is not in the export becomes a step of its own (node from its
  ``langgraph_node`` metadata, else its name): its tokens are never lost nor counted
  twice, whichever export its node span arrives in.
- A **root span** (no parent) of a trace with GenAI spans becomes
  ``workflow.run_started`` + ``workflow.run_completed``; the run's totals are those of
  the steps in the same export.
- Anything else (HTTP, DB, plain chain spans) is counted and skipped.

Idempotency: an event's id is a ULID whose time is the span's start and whose 80
random bits are a hash of (trace id, span id, event kind), so a retried or duplicated
export maps to the very same ids and the store answers "duplicate"; a span re-sent with
other content maps to the same id with other content: a conflict, reported per span.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ingest_api.otlp.attributes import otel_field
from ingest_api.otlp.correlation import CORRELATION, NO_CORRELATION, correlation, metadata
from ingest_api.otlp.spans import SpanView
from sdk.prices.providers import provider_id
from sdk.telemetry.fields import MAX_TOKENS, MAX_USD
from sdk.telemetry.model_calls import MAX_CALLS, STEP_EVENT_VERSION
from sdk.telemetry.values import encode_ulid

MAX_NAME = 200
MAX_TEXT = 10_000
MODEL_OPERATIONS = frozenset({"chat", "text_completion", "generate_content", "embeddings"})
MODEL_KINDS = frozenset({"LLM", "EMBEDDING"})
AGENT_OPERATIONS = frozenset({"invoke_agent"})
GENAI_PREFIXES = ("gen_ai.", "llm.", "openinference.", "graph.node.", "wdp.")

# Attribute names, first found wins (span, then resource).
MODEL_ATTRS = ("gen_ai.response.model", "gen_ai.request.model", "llm.model_name")
PROVIDER_ATTRS = ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")
IN_ATTRS = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt")
OUT_ATTRS = (
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
    "llm.token_count.completion",
)
CACHED_ATTRS = (
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_read_input_tokens",
    "llm.token_count.prompt_details.cache_read",
)
CACHE_WRITE_ATTRS = (
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.cache_creation_input_tokens",
    "llm.token_count.prompt_details.cache_write",
)
REASONING_ATTRS = (
    "gen_ai.usage.reasoning.output_tokens",
    "gen_ai.usage.reasoning_tokens",
    "llm.token_count.completion_details.reasoning",
)
COST_ATTRS = ("gen_ai.usage.cost", "llm.cost.total")
# A call's fields and the attributes each is read from, first found wins.
CALL_FIELDS = (
    ("tokens_in", IN_ATTRS),
    ("tokens_out", OUT_ATTRS),
    ("tokens_cached_in", CACHED_ATTRS),
    ("tokens_cache_write", CACHE_WRITE_ATTRS),
    ("tokens_reasoning", REASONING_ATTRS),
    ("model", MODEL_ATTRS),
    ("provider", PROVIDER_ATTRS),
    ("cost", COST_ATTRS),
)
# name -> (field, rank): one pass over a span's attributes finds every field's value.
CALL_ATTRS = {name: (f, rank) for f, names in CALL_FIELDS for rank, name in enumerate(names)}
TOKEN_FIELDS = CALL_FIELDS[:5]


@dataclass(slots=True)
class MappedEvent:
    """An event and the spans it was made of (refused together, counted together)."""

    event: dict[str, Any]
    spans: tuple[int, ...]


@dataclass(slots=True)
class Mapped:
    events: list[MappedEvent] = field(default_factory=list)
    skipped: int = 0  # spans that are no run, node or model call


def event_id(span: SpanView, kind: str) -> str:
    """The deterministic ULID of ``kind``'s event for ``span`` (see the module docstring)."""
    ms = min(span.start_ns // 1_000_000, 2**48 - 1)
    digest = hashlib.sha256(f"{span.trace_id}:{span.span_id}:{kind}".encode()).digest()
    return encode_ulid((ms << 80) | int.from_bytes(digest[:10], "big"))


def is_model_span(span: SpanView) -> bool:
    return (
        span.attrs.get("openinference.span.kind") in MODEL_KINDS
        or span.attrs.get("gen_ai.operation.name") in MODEL_OPERATIONS
    )


def node_name(span: SpanView) -> str | None:
    """The node ``span`` is the execution of, or None if it is no node span."""
    graph_node = span.attrs.get("graph.node.name") or span.attrs.get("graph.node.id")
    if graph_node is not None:
        return text(graph_node, MAX_NAME) or text(span.name, MAX_NAME) or "node"
    langgraph_node = metadata(span).get("langgraph_node")
    if isinstance(langgraph_node, str) and langgraph_node and span.name == langgraph_node:
        return text(langgraph_node, MAX_NAME)
    if (
        span.attrs.get("gen_ai.operation.name") in AGENT_OPERATIONS
        or span.attrs.get("openinference.span.kind") == "AGENT"
    ):
        agent = text(span.attrs.get("gen_ai.agent.name"), MAX_NAME)
        return agent or text(span.name, MAX_NAME) or "agent"
    return None


def is_genai(span: SpanView) -> bool:
    return any(key.startswith(GENAI_PREFIXES) for key in span.attrs)


def map_export(spans: Iterable[SpanView]) -> Mapped:
    """The events of one export's spans (see the module docstring)."""
    by_id: dict[tuple[str, str], SpanView] = {}
    for span in spans:
        by_id[(span.trace_id, span.span_id)] = span
    nodes = {key: name for key, s in by_id.items() if (name := node_name(s)) is not None}
    calls: dict[tuple[str, str], list[SpanView]] = {}
    orphans: list[SpanView] = []
    for span in by_id.values():
        if not is_model_span(span):
            continue
        key = (span.trace_id, span.span_id)
        owner = key if key in nodes else _innermost_node(span, by_id, nodes)
        if owner is None:
            orphans.append(span)
        else:
            calls.setdefault(owner, []).append(span)
    genai_traces = {
        s.trace_id for k, s in by_id.items() if k in nodes or is_model_span(s) or is_genai(s)
    }
    roots = {s.trace_id: s for s in by_id.values() if not s.parent_span_id}
    mapped = Mapped()
    steps: dict[str, list[dict[str, Any]]] = {}
    used: set[int] = set()
    for key, node in nodes.items():
        span = by_id[key]
        # In time order, so that the same spans exported in another order map to the
        # same event (anything else would be a conflict with the first export).
        own = sorted(calls.get(key, []), key=lambda c: (c.start_ns, c.span_id))
        event = _step(span, node, own, roots.get(span.trace_id))
        mapped.events.append(MappedEvent(event, (span.index, *(c.index for c in own))))
        steps.setdefault(span.trace_id, []).append(event["payload"])
        used.update((span.index, *(c.index for c in own)))
    for span in orphans:
        name = metadata(span).get("langgraph_node")
        node = text(name if isinstance(name, str) and name else span.name, MAX_NAME) or "model"
        event = _step(span, node, [span], roots.get(span.trace_id))
        mapped.events.append(MappedEvent(event, (span.index,)))
        steps.setdefault(span.trace_id, []).append(event["payload"])
        used.add(span.index)
    for trace_id, root in roots.items():
        if trace_id not in genai_traces:
            continue
        mapped.events.extend(_run(root, steps.get(trace_id, [])))
        used.add(root.index)
    mapped.skipped = len(by_id) - len(used)
    return mapped


def _innermost_node(
    span: SpanView,
    by_id: dict[tuple[str, str], SpanView],
    nodes: dict[tuple[str, str], str],
) -> tuple[str, str] | None:
    seen = 0
    current = span
    while current.parent_span_id and seen < 256:  # a cycle in crafted input ends here
        key = (current.trace_id, current.parent_span_id)
        if key in nodes:
            return key
        parent = by_id.get(key)
        if parent is None:
            return None
        current, seen = parent, seen + 1
    return None


def _envelope(span: SpanView, kind: str, ts_ns: int, root: SpanView | None) -> dict[str, Any]:
    own = correlation(span)
    base = correlation(root) if root is not None else NO_CORRELATION
    envelope: dict[str, Any] = {
        "event_id": event_id(span, kind),
        "ts": _ts(ts_ns),
        "run_id": text(own[0] or base[0], MAX_NAME) or span.trace_id,
    }
    for index in range(1, len(CORRELATION)):
        value = text(own[index] or base[index], MAX_NAME)
        if value:
            envelope[CORRELATION[index][0]] = value
    return envelope


def _step(
    span: SpanView, node: str, call_spans: list[SpanView], root: SpanView | None
) -> dict[str, Any]:
    calls = [_call(c) for c in call_spans[:MAX_CALLS]]
    models = sorted({c["model"] for c in calls})
    reported = [c.get("cost_usd_reported") for c in calls]
    priced = bool(calls) and all(r is not None for r in reported)
    step = metadata(span).get("langgraph_step")
    payload: dict[str, Any] = {
        "node": node,
        "step": step if type(step) is int and 0 <= step < 2**31 else 0,
        "status": "error" if span.error else "ok",
        "duration_ms": max(0, span.end_ns - span.start_ns) / 1e6,
        "model": text(",".join(models), MAX_NAME) or None,
        # The sums exactly (the contract checks them against the calls): a step whose
        # calls add up beyond MAX_TOKENS is refused, not silently capped.
        "tokens_in": sum(c["tokens_in"] for c in calls),
        "tokens_out": sum(c["tokens_out"] for c in calls),
        "tokens_cached_in": sum(c["tokens_cached_in"] for c in calls)
        if any(c["tokens_cached_in"] for c in calls)
        else None,
        "cost_usd_est": min(MAX_USD, sum(r or 0.0 for r in reported)) if priced else None,
        "cost_unknown": bool(calls) and not priced,
        "calls": calls,
        "otel": otel_field(span),
    }
    if span.error:
        payload["error_type"] = text(span.exception_type, MAX_NAME) or "SpanStatusError"
        payload["error_message"] = text(span.status_message, MAX_TEXT) or None
    return {
        **_envelope(span, "step", span.end_ns, root),
        "event_name": "workflow.step_completed",
        "event_version": STEP_EVENT_VERSION,
        "payload": payload,
    }


def _call(span: SpanView) -> dict[str, Any]:
    found = _call_attributes(span)
    counts = {name: _count(found.get(name)) for name, _ in TOKEN_FIELDS}
    reported = any(c is not None for c in counts.values())
    call: dict[str, Any] = {k: v or 0 for k, v in counts.items()}
    # Instrumentations differ on whether input counts include cached tokens (the GenAI
    # conventions say they do): a count that cannot hold its parts is raised to them.
    # Absurd counts stay within the cap: the parts first, the whole then holds them.
    call["tokens_cache_write"] = min(
        call["tokens_cache_write"], MAX_TOKENS - call["tokens_cached_in"]
    )
    parts = call["tokens_cached_in"] + call["tokens_cache_write"]
    call["tokens_in"] = max(call["tokens_in"], parts)
    call["tokens_out"] = max(call["tokens_out"], call["tokens_reasoning"])
    call["model"] = text(found.get("model"), MAX_NAME) or "unknown"
    call["provider"] = provider_id(text(found.get("provider"), MAX_NAME))
    call["usage_reported"] = reported
    cost: Any = found.get("cost")
    if type(cost) in (int, float) and 0 <= cost <= MAX_USD:
        call["cost_usd_reported"] = float(cost)
    return call


def _call_attributes(span: SpanView) -> dict[str, Any]:
    """Each call field's value: ``span.attr(*names)`` of its CALL_FIELDS names, in one
    pass over the span's attributes (and its resource's, for fields the span lacks)."""
    found: dict[str, Any] = {}
    ranks: dict[str, int] = {}
    for name in span.attrs.keys() & CALL_ATTRS.keys():
        f, rank = CALL_ATTRS[name]
        if rank < ranks.get(f, len(CALL_ATTRS)):
            found[f], ranks[f] = span.attrs[name], rank
    if not CALL_ATTRS.keys().isdisjoint(span.resource):
        for f, names in CALL_FIELDS:
            if f not in ranks:
                found[f] = next((span.resource[n] for n in names if n in span.resource), None)
    return found


def _run(root: SpanView, steps: list[dict[str, Any]]) -> list[MappedEvent]:
    started = {
        **_envelope(root, "run_started", root.start_ns, root),
        "event_name": "workflow.run_started",
        "payload": {"trigger": "otlp", "otel": otel_field(root)},
    }
    unknown = any(s["cost_unknown"] for s in steps)
    completed = {
        **_envelope(root, "run_completed", root.end_ns, root),
        "event_name": "workflow.run_completed",
        "payload": {
            "status": "failed" if root.error else "succeeded",
            "duration_ms": max(0, root.end_ns - root.start_ns) / 1e6,
            "steps": len(steps),
            "tokens_in": min(MAX_TOKENS, sum(s["tokens_in"] for s in steps)),
            "tokens_out": min(MAX_TOKENS, sum(s["tokens_out"] for s in steps)),
            "cost_usd_est": None
            if unknown
            else min(MAX_USD, sum((s["cost_usd_est"] or 0.0 for s in steps), 0.0)),
            "cost_unknown": unknown,
            "otel": otel_field(root),
        },
    }
    if root.error:
        completed["payload"]["error_type"] = (
            text(root.exception_type, MAX_NAME) or "SpanStatusError"
        )
        completed["payload"]["error_message"] = text(root.status_message, MAX_TEXT) or None
    return [MappedEvent(started, (root.index,)), MappedEvent(completed, (root.index,))]


def _ts(ns: int) -> str:
    seconds = min(max(ns, 0), 253_402_300_799 * 10**9) / 1e9
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def _count(value: Any) -> int | None:
    """A token count as reported (ints, floats or digit strings); None if not a count."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        digits = value.strip()
        if not (digits.isascii() and digits.isdigit()):  # isdigit alone takes "²"
            return None
        # Beyond the cap anyway; and int() refuses more than 4,300 digits (a 500).
        value = int(digits) if len(digits.lstrip("0")) <= 13 else MAX_TOKENS
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, int | float) and value >= 0:
        return min(int(value), MAX_TOKENS)
    return None


def text(value: Any, limit: int) -> str:
    """``value`` as storable text of at most ``limit`` characters ('' for none)."""
    if type(value) is str and value.isascii() and "\x00" not in value:
        return value.strip()[:limit]  # the usual case, as below without the copies
    if value is None or isinstance(value, bool | dict | list):
        return ""
    out = str(value).replace("\x00", "\ufffd")
    if not out.isascii():
        out = out.encode("utf-8", "replace").decode("utf-8")
    return out.strip()[:limit]
