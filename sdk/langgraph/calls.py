"""Model, tool and retriever calls inside a graph: charged to the node they run in.

A mixin of :class:`sdk.langgraph.handler.WdpCallbackHandler`, apart because it is the
half that knows LangChain's model callbacks (the other half knows LangGraph's runs).
Tools and retrievers are tracked only so that what runs inside them - a model called
by a tool, a chain inside a retriever - still finds its node.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from datetime import UTC, date
from typing import Any, ParamSpec, TypeVar
from uuid import UUID

from sdk.langgraph.prices import Pricer
from sdk.langgraph.tracking import (
    MAX_NAME,
    CallRecord,
    NodeState,
    RunState,
    Usage,
    clip,
    model_names,
    provider_of,
    usage_of,
)
from sdk.prices import CallTokens
from sdk.telemetry.client import TelemetryClient
from sdk.telemetry.default import get_client
from sdk.telemetry.payloads import ModelCallDict

log = logging.getLogger("sdk.langgraph.handler")

P = ParamSpec("P")
R = TypeVar("R")


def guarded(method: Callable[P, R]) -> Callable[P, R | None]:
    """Instrumentation must never break the graph: log with the traceback and go on."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | None:
        try:
            return method(*args, **kwargs)
        except Exception:
            log.exception("wdp LangGraph instrumentation failed in %s", method.__name__)
            return None

    return wrapper


class CallTracking:
    """Callbacks for calls made inside nodes; state lives in the handler."""

    _lock: threading.Lock
    _owner: dict[UUID, tuple[RunState, NodeState | None]]
    # Live model calls -> (the model asked for, the provider), from their start.
    _models: dict[UUID, tuple[str | None, str | None]]
    _client: TelemetryClient | None
    pricer: Pricer

    def _track(self, run_id: UUID, owner: tuple[RunState, NodeState | None]) -> None:
        """Under the lock: ``run_id`` is live, counted on its invocation."""
        self._owner[run_id] = owner
        owner[0].live += 1

    def _untrack(self, run_id: UUID) -> tuple[RunState, NodeState | None] | None:
        """Under the lock: ``run_id`` ended; its owner, if it was tracked."""
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

    @guarded
    def on_chat_model_start(
        self,
        serialized: dict[str, Any] | None,
        messages: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._model_start(run_id, parent_run_id, metadata, kwargs.get("invocation_params"))

    @guarded
    def on_llm_start(
        self,
        serialized: dict[str, Any] | None,
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._model_start(run_id, parent_run_id, metadata, kwargs.get("invocation_params"))

    def _model_start(
        self,
        run_id: UUID,
        parent_run_id: UUID | None,
        metadata: dict[str, Any] | None,
        invocation_params: dict[str, Any] | None,
    ) -> None:
        with self._lock:
            if self._adopt(run_id, parent_run_id):
                self._models[run_id] = (
                    model_names(metadata, invocation_params),
                    provider_of(metadata),
                )

    @guarded
    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._model_done(run_id, usage_of(response))

    @guarded
    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        # A failed or cancelled stream still used (and is billed for) what it produced.
        self._model_done(run_id, usage_of(kwargs.get("response")))

    def _model_done(self, run_id: UUID, usage: Usage) -> None:
        with self._lock:
            owner = self._untrack(run_id)
            requested, provider = self._models.pop(run_id, (None, None))
        if owner is None:
            return
        # Priced outside the lock: the first call may wait for the bundled prices.
        record = self._record(requested, provider, usage, self._today())
        with self._lock:
            run, node = owner
            run.tokens_in += usage.tokens_in
            run.tokens_out += usage.tokens_out
            if record.cost is None:  # no price, or no token counts: unknown, never zero
                run.cost_unknown = True
            else:
                run.cost += record.cost
            if node is not None:
                node.calls.append(record)
                node.cache_reported |= usage.cache_reported

    def _today(self) -> date:
        """The UTC day events are dated now (by the client's clock, as they will be)."""
        return (self._client or get_client()).clock().astimezone(UTC).date()

    def _record(
        self, requested: str | None, provider: str | None, usage: Usage, day: date
    ) -> CallRecord:
        model = clip(requested or usage.served_model or "unknown", MAX_NAME)
        call: ModelCallDict = {
            "model": model,
            "provider": provider,
            "tokens_in": usage.tokens_in,
            "tokens_cached_in": usage.cached_in,
            "tokens_cache_write": usage.cache_written,
            "tokens_out": usage.tokens_out,
            "tokens_reasoning": usage.reasoning,
            "usage_reported": usage.known,
            "cost_usd_reported": usage.cost_reported,
        }
        tokens = None
        if usage.known:
            tokens = CallTokens(
                input=usage.tokens_in,
                output=usage.tokens_out,
                cache_read=usage.cached_in,
                cache_write=usage.cache_written,
                reasoning=usage.reasoning,
            )
        cost = self.pricer.cost(model, provider, tokens, usage.cost_reported, day)
        return CallRecord(call, tokens, day, cost)

    def _repriced(self, record: CallRecord, day: date) -> CallRecord:
        """``record`` priced for ``day`` (its step's event is dated after midnight): the
        platform prices a call on the day of its step's event."""
        if record.day == day:
            return record
        call = record.call
        cost = self.pricer.cost(
            call["model"], call.get("provider"), record.tokens, call.get("cost_usd_reported"), day
        )
        return CallRecord(call, record.tokens, day, cost)

    # --- tools and retrievers: only so that what they call finds its node ---------------

    @guarded
    def on_tool_start(
        self,
        serialized: dict[str, Any] | None,
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        with self._lock:
            self._adopt(run_id, parent_run_id)

    @guarded
    def on_retriever_start(
        self,
        serialized: dict[str, Any] | None,
        query: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        with self._lock:
            self._adopt(run_id, parent_run_id)

    def _call_done(self, run_id: UUID) -> None:
        with self._lock:
            self._untrack(run_id)

    @guarded
    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._call_done(run_id)

    @guarded
    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._call_done(run_id)

    @guarded
    def on_retriever_end(self, documents: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._call_done(run_id)

    @guarded
    def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._call_done(run_id)
