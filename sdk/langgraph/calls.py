"""Model, tool and retriever calls inside a graph: charged to the node they run in.

A mixin of :class:`sdk.langgraph.replay.Tracker`, apart because it is the half that
knows what LangChain's model callbacks report (the other half knows LangGraph's runs).
Tools and retrievers are tracked only so that what runs inside them - a model called
by a tool, a chain inside a retriever - still finds its node. Like the rest of the
tracker it runs where the handler's records are replayed, one replay at a time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypedDict
from uuid import UUID

from sdk.langgraph.prices import Estimate, Pricer
from sdk.langgraph.tracking import (
    MAX_NAME,
    NodeState,
    RunState,
    Usage,
    clip,
    model_names,
    provider_of,
    usage_of,
)
from sdk.telemetry.model_calls import MAX_CALLS
from sdk.telemetry.payloads import ModelCallDict


class StepUsage(TypedDict):
    """The usage keys of a step's payload (``StepCompletedPayloadDict``), from its calls."""

    model: str | None
    tokens_in: int
    tokens_out: int
    tokens_cached_in: int | None
    calls: list[ModelCallDict] | None


_NO_CALLS: StepUsage = {
    "model": None,
    "tokens_in": 0,
    "tokens_out": 0,
    "tokens_cached_in": None,
    "calls": None,  # replaced by a fresh list per event
}


def _call_of(requested: str | None, provider: str | None, usage: Usage) -> ModelCallDict:
    """A call as the step event lists it: the model asked for, else the one served."""
    return {
        "model": clip(requested or usage.served_model or "unknown", MAX_NAME),
        "provider": provider,
        "tokens_in": usage.tokens_in,
        "tokens_cached_in": usage.cached_in,
        "tokens_cache_write": usage.cache_written,
        "tokens_out": usage.tokens_out,
        "tokens_reasoning": usage.reasoning,
        "usage_reported": usage.known,
        "cost_usd_reported": usage.cost_reported,
    }


class CallTracking:
    """What calls made inside nodes leave behind; the state lives in the tracker."""

    _owner: dict[UUID, tuple[RunState, NodeState | None]]
    # Live model calls -> (the model asked for, the provider), from their start.
    _models: dict[UUID, tuple[str | None, str | None]]
    pricer: Pricer

    def _track(self, run_id: UUID, owner: tuple[RunState, NodeState | None]) -> None:
        """``run_id`` is live, counted on its invocation."""
        self._owner[run_id] = owner
        owner[0].live += 1

    def _untrack(self, run_id: UUID) -> tuple[RunState, NodeState | None] | None:
        """``run_id`` ended; its owner, if it was tracked."""
        owner = self._owner.pop(run_id, None)
        if owner is not None:
            owner[0].live -= 1
        return owner

    def _adopt(self, run_id: UUID, parent_run_id: UUID | None) -> bool:
        """Track ``run_id`` as part of its parent's node; False if the parent is unknown."""
        owner = self._owner.get(parent_run_id) if parent_run_id is not None else None
        if owner is None:
            return False
        self._track(run_id, owner)
        return True

    # --- models ------------------------------------------------------------------------

    def _model_start(
        self,
        run_id: UUID,
        parent_run_id: UUID | None,
        metadata: dict[str, Any] | None,
        invocation_params: dict[str, Any] | None,
    ) -> None:
        if self._adopt(run_id, parent_run_id):
            self._models[run_id] = (model_names(metadata, invocation_params), provider_of(metadata))

    def _model_done(self, run_id: UUID, response: Any) -> None:
        owner = self._untrack(run_id)
        requested, provider = self._models.pop(run_id, (None, None))
        if owner is None:
            return
        usage = usage_of(response)
        call = _call_of(requested, provider, usage)
        run, node = owner
        run.tokens_in += usage.tokens_in
        run.tokens_out += usage.tokens_out
        if node is None:
            run.loose.append(call)
        else:
            node.calls.append(call)
            node.cache_reported |= usage.cache_reported

    def _usage_of(
        self, node: NodeState, ts: datetime
    ) -> tuple[datetime | None, StepUsage, Estimate | None]:
        """The step's calls and token totals, the time its event is dated (``ts``, the
        client's clock when the node ended) and the estimate of its calls, priced
        where the event is built (None: it called no model, a known $0).

        The calls are priced for the UTC day of the event, the day the platform
        aggregates and prices them on.
        """
        calls = list(node.calls)
        if not calls:
            return None, {**_NO_CALLS, "calls": []}, None
        tokens_in = tokens_out = cached = 0
        for call in calls:
            tokens_in += call["tokens_in"]
            tokens_out += call["tokens_out"]
            cached += call["tokens_cached_in"]
        usage: StepUsage = {
            "model": clip(",".join(dict.fromkeys(c["model"] for c in calls)), 200),
            "tokens_in": tokens_in,
            "tokens_out": tokens_out,
            "tokens_cached_in": cached if node.cache_reported else None,
            # More calls than one event may list: the totals alone (priced as estimated).
            "calls": calls if len(calls) <= MAX_CALLS else None,
        }
        return ts, usage, Estimate(self.pricer, calls, ts.astimezone(UTC).date())
