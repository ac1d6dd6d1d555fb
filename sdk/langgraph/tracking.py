"""What the handler remembers about live runs, and how it reads LangGraph's values.

Kept apart from the callback plumbing so the rules - which run is a node, what a node's
output says about the state, what a model call used - can be read (and tested) alone.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any, NamedTuple, TypedDict
from uuid import UUID

from langgraph.types import Command

from sdk.langgraph.prices import Estimate
from sdk.prices.providers import provider_id
from sdk.telemetry.client import TelemetryClient
from sdk.telemetry.context import Correlation
from sdk.telemetry.fields import MAX_USD
from sdk.telemetry.payloads import ModelCallDict
from sdk.telemetry.values import printable

MAX_NAME = 200
CANCELLED = ("CancelledError", "GeneratorExit", "KeyboardInterrupt")
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
    # What its run_completed is priced from: its steps' estimates, and the calls made
    # outside any node (priced on the day the run ends).
    estimates: list[Estimate] = field(default_factory=list)
    loose: list[ModelCallDict] = field(default_factory=list)
    interrupted: bool = False
    live: int = 0  # callback runs of this invocation still tracked
    # Executions started per (task, step): a retried task's next attempt number.
    attempts: dict[tuple[str, int], int] = field(default_factory=dict)


class EventIds(TypedDict):
    """What the tracker passes ``emit_deferred`` besides the payload: as a TypedDict,
    mypy checks its keys against that signature (a wrong one would fail at runtime,
    during a replay that may only log it)."""

    run_id: str
    item_id: str | None
    workflow_name: str
    agent_role: str | None
    client: TelemetryClient
    minted_at: datetime
    correlation: Correlation


class At(NamedTuple):
    """Where and when a callback happened, as the handler captured it on the graph's
    thread: ``time.perf_counter()`` (durations), the client's clock (event ids and
    times), the correlation ids in effect there, and the client its events go to."""

    perf: float
    wall: datetime
    correlation: Correlation
    client: TelemetryClient


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
    calls: list[ModelCallDict] = field(default_factory=list)
    cache_reported: bool = False  # a call reported its cache reads: tokens_cached_in is known
    attempt: int = 1

    def duration_ms(self, ended: float) -> float:
        """Milliseconds from its start to ``ended`` (both ``time.perf_counter``)."""
        return max(0.0, (ended - self.started) * 1000)


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs several times more
class Usage:
    """What a model call reported; ``known`` is False when it reported no token counts
    (then its cost is unknown, not zero, unless the provider reported the cost).

    The parts are within their totals (``cached_in + cache_written <= tokens_in``,
    ``reasoning <= tokens_out``), as the events require: :func:`usage_of` clamps what
    a provider reported inconsistently rather than lose the call's event.
    """

    tokens_in: int = 0
    tokens_out: int = 0
    cached_in: int = 0
    served_model: str | None = None
    known: bool = True
    cache_written: int = 0
    cache_reported: bool = False  # the call said how many prompt tokens it read from cache
    reasoning: int = 0
    cost_reported: float | None = None  # the provider's own USD figure for the call


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


def state_in(output: Any, key: str) -> Any:
    """The value a node's output sets for ``key`` (None when it returned nothing)."""
    return field_of(update_of(output), key) if output is not None else None


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


def provider_of(metadata: dict[str, Any] | None) -> str | None:
    """The provider a call went to: LangChain's ``ls_provider`` metadata, as the price
    data names providers (``google_genai`` -> ``google``); None where it says none."""
    return provider_id((metadata or {}).get("ls_provider"))


def _count(value: Any) -> int:
    """A token count as reported; anything that is not a non-negative number is 0."""
    if type(value) is int:  # nearly always: checked first, this runs for every call
        return value if value > 0 else 0
    if type(value) is not float or not value > 0:  # bool, str, None, negative, NaN
        return 0
    return int(value) if math.isfinite(value) else 0


def _usd(value: Any) -> float | None:
    """A reported cost: a plain number, or (ChatPerplexity) a breakdown with its
    ``total_cost``; None unless finite, non-negative and storable."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        value = value.get("total_cost")
    if isinstance(value, Decimal):
        value = float(value)
    if type(value) is not int and type(value) is not float:  # bool and str too
        return None
    return float(value) if math.isfinite(value) and 0 <= value <= MAX_USD else None


def reported_cost(metadata: Mapping[str, Any]) -> float | None:
    """The provider's own cost of a call, where LangChain integrations put it:

    * ``response_metadata["cost"]``: langchain-openrouter's ``ChatOpenRouter`` copies
      OpenRouter's ``usage.cost`` there (USD); langchain-perplexity's ``ChatPerplexity``
      puts a breakdown there whose ``total_cost`` is the call's;
    * ``token_usage["cost"]`` (in ``response_metadata``, or the call's ``llm_output``):
      OpenAI-compatible integrations (``ChatOpenAI`` pointed at OpenRouter with usage
      accounting) keep the provider's raw ``usage`` object there.
    """
    value = _usd(metadata.get("cost"))
    if value is None:
        usage = metadata.get("token_usage")
        if usage is not None and isinstance(usage, Mapping):
            value = _usd(usage.get("cost"))
    return value


def usage_of(response: Any) -> Usage:
    """Token usage of a finished (or failed, partially streamed) model call.

    ``usage_metadata`` on the generated message is the total also when the model
    streamed (LangChain merges the chunks), so nothing is summed per token here:
    ``input_tokens`` (cache reads and writes included), ``input_token_details``
    ``cache_read`` and ``cache_creation``, ``output_tokens`` (reasoning included) and
    ``output_token_details.reasoning``. Old LLM integrations report
    ``llm_output["token_usage"]`` (OpenAI's names) instead.
    """
    if response is None:
        return Usage(known=False)
    tokens_in = tokens_out = cached = written = reasoning = 0
    served: str | None = None
    found = cache_reported = False
    cost_reported: float | None = None
    for generations in getattr(response, "generations", None) or []:
        for generation in generations:
            message = getattr(generation, "message", None)
            usage = getattr(message, "usage_metadata", None)
            metadata = getattr(message, "response_metadata", None) or {}
            served = served or metadata.get("model_name") or metadata.get("model")
            if (cost := reported_cost(metadata)) is not None:
                cost_reported = cost + (cost_reported or 0.0)
            if usage:
                found = True
                tokens_in += _count(usage.get("input_tokens"))
                tokens_out += _count(usage.get("output_tokens"))
                details = usage.get("input_token_details") or {}
                if "cache_read" in details:
                    cache_reported = True
                    cached += _count(details.get("cache_read"))
                written += _count(details.get("cache_creation"))
                reasoning += _count((usage.get("output_token_details") or {}).get("reasoning"))
    output = getattr(response, "llm_output", None) or {}
    served = served or output.get("model_name")
    if cost_reported is None:
        cost_reported = reported_cost(output)
    elif cost_reported > MAX_USD:
        cost_reported = MAX_USD
    if not found:
        legacy = output.get("token_usage") or output.get("usage") or {}
        if not legacy:
            return Usage(served_model=served, known=False, cost_reported=cost_reported)
        tokens_in = _count(legacy.get("prompt_tokens") or legacy.get("input_tokens"))
        tokens_out = _count(legacy.get("completion_tokens") or legacy.get("output_tokens"))
        prompt = legacy.get("prompt_tokens_details") or {}
        if "cached_tokens" in prompt:
            cache_reported = True
            cached = _count(prompt.get("cached_tokens"))
        reasoning = _count((legacy.get("completion_tokens_details") or {}).get("reasoning_tokens"))
    cached = min(cached, tokens_in)
    return Usage(
        tokens_in,
        tokens_out,
        cached,
        served,
        cache_written=min(written, tokens_in - cached),
        cache_reported=cache_reported,
        reasoning=min(reasoning, tokens_out),
        cost_reported=cost_reported,
    )


def error_message(error: BaseException | None) -> str | None:
    """An error's text for the event (storable: no NUL, no lone surrogate); none for
    cancellation, whose text is noise."""
    if error is None or type(error).__name__ in CANCELLED:
        return None
    return clip(printable(error).replace("\x00", "\ufffd")) or None


def thread_of(metadata: dict[str, Any]) -> str | None:
    thread_id = metadata.get("thread_id")
    return str(thread_id) if isinstance(thread_id, str | int) else None
