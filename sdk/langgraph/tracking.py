"""What the handler remembers about live runs, and how it reads LangGraph's values.

Kept apart from the callback plumbing so the rules - which run is a node, what a node's
output says about the state, what a model call used - can be read (and tested) alone.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, TypedDict
from uuid import UUID

from langgraph.types import Command

from sdk.telemetry.client import TelemetryClient

MAX_NAME = 200
MAX_MESSAGE = 10_000


@dataclass(slots=True)
class RunState:
    """One graph invocation (the root run of a callback tree)."""

    lc_run_id: UUID
    run_id: str
    started: float
    started_at: datetime
    item_id: str | None
    state: str | None
    metadata: dict[str, Any]
    announced: bool = False
    steps: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    cost_unknown: bool = False
    interrupted: bool = False
    live: int = 0  # callback runs of this invocation still tracked
    # Executions started per (task, step): a retried task's next attempt number.
    attempts: dict[tuple[str, int], int] = field(default_factory=dict)


class EventIds(TypedDict):
    """What the handler passes ``emit_deferred`` besides the payload: as a TypedDict,
    mypy checks its keys against that signature (a wrong one would fail at runtime,
    inside a callback that may only log it)."""

    run_id: str
    item_id: str | None
    workflow_name: str
    agent_role: str | None
    client: TelemetryClient | None


@dataclass(slots=True)
class NodeState:
    """One execution of one node (each retry attempt is its own)."""

    run: RunState
    name: str
    step: int
    started: float
    agent_role: str | None
    state_before: str | None
    foreign: bool = False  # a nested graph's node for another item
    nested: bool = False  # runs a subgraph: its nodes report the state changes
    models: list[str] = field(default_factory=list)
    tokens_in: int = 0
    tokens_out: int = 0
    tokens_cached_in: int | None = None  # None until a call reports its cache reads
    cost: float = 0.0
    cost_unknown: bool = False
    attempt: int = 1

    def duration_ms(self) -> float:
        return max(0.0, (time.perf_counter() - self.started) * 1000)


@dataclass(frozen=True)
class Usage:
    """What a model call reported; ``known`` is False when it reported no token counts
    (then its cost is unknown, not zero)."""

    tokens_in: int = 0
    tokens_out: int = 0
    cached_in: int = 0
    served_model: str | None = None
    known: bool = True
    cache_written: int = 0
    cache_reported: bool = False  # the call said how many prompt tokens it read from cache


def is_node_run(tags: list[str] | None, metadata: dict[str, Any] | None) -> bool:
    """A node execution, not a router, model or subgraph chain inside one: LangGraph tags
    only node runs ``graph:step:N`` (inner runs inherit the ``langgraph_*`` metadata)."""
    return bool(
        metadata
        and "langgraph_node" in metadata
        and tags
        and any(t.startswith("graph:step:") for t in tags)
    )


def field_of(value: Any, key: str) -> Any:
    """``value[key]`` for a dict state, ``value.key`` for a pydantic or dataclass state."""
    if isinstance(value, dict):
        return value.get(key)
    return getattr(value, key, None)


def update_of(output: Any) -> Any:
    """The state update a node returned: a dict, a model, a Command's update, or the
    merged updates of a list of Commands (parallel Sends)."""
    if isinstance(output, Command):
        update = output.update
        if isinstance(update, list | tuple):
            return dict(u for u in update if isinstance(u, tuple) and len(u) == 2)
        return update if update is not None else {}
    if isinstance(output, list | tuple):
        merged: dict[str, Any] = {}
        for item in output:
            part = update_of(item)
            if isinstance(part, dict):
                merged.update(part)
        return merged
    return output


def as_name(value: Any) -> str | None:
    """A state or id value as the events' short string (enums by value); None if empty
    or not a plain value (an object's text would differ on every run).

    Events hold at most 200 characters: a longer value keeps its head and a hash of
    the whole, so two long ids that share a prefix stay apart.
    """
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, bool) or not isinstance(value, str | int | float | UUID):
        return None
    text = str(value).replace("\x00", "\ufffd").strip()
    if len(text) > MAX_NAME:
        digest = hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:16]
        text = f"{text[: MAX_NAME - 17]}~{digest}"
    return text or None


def clip(text: str, limit: int = MAX_MESSAGE) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def model_names(
    metadata: dict[str, Any] | None, invocation_params: dict[str, Any] | None
) -> str | None:
    """The model a call asked for: LangChain's ``ls_model_name``, else the provider's
    invocation parameters."""
    for source, key in (
        (metadata, "ls_model_name"),
        (invocation_params, "model"),
        (invocation_params, "model_name"),
    ):
        value = (source or {}).get(key)
        if isinstance(value, str) and value:
            return value
    return None


def usage_of(response: Any) -> Usage:
    """Token usage of a finished (or failed, partially streamed) model call.

    ``usage_metadata`` on the generated message is the total also when the model
    streamed (LangChain merges the chunks), so nothing is summed per token here. Old
    LLM integrations report ``llm_output["token_usage"]`` instead.
    """
    if response is None:
        return Usage(known=False)
    tokens_in = tokens_out = cached = written = 0
    served: str | None = None
    found = cache_reported = False
    for generations in getattr(response, "generations", None) or []:
        for generation in generations:
            message = getattr(generation, "message", None)
            usage = getattr(message, "usage_metadata", None)
            metadata = getattr(message, "response_metadata", None) or {}
            served = served or metadata.get("model_name") or metadata.get("model")
            if usage:
                found = True
                tokens_in += int(usage.get("input_tokens") or 0)
                tokens_out += int(usage.get("output_tokens") or 0)
                details = usage.get("input_token_details") or {}
                if "cache_read" in details:
                    cache_reported = True
                    cached += int(details.get("cache_read") or 0)
                written += int(details.get("cache_creation") or 0)
    output = getattr(response, "llm_output", None) or {}
    served = served or output.get("model_name")
    if not found:
        legacy = output.get("token_usage") or output.get("usage") or {}
        if not legacy:
            return Usage(served_model=served, known=False)
        tokens_in = int(legacy.get("prompt_tokens") or legacy.get("input_tokens") or 0)
        tokens_out = int(legacy.get("completion_tokens") or legacy.get("output_tokens") or 0)
    return Usage(
        tokens_in,
        tokens_out,
        cached,
        served,
        cache_written=written,
        cache_reported=cache_reported,
    )
