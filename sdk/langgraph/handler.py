"""The LangChain callback handler that turns a LangGraph run into wdp events.

LangGraph reports every graph invocation, node execution and model call as a callback
run with a ``run_id`` and a ``parent_run_id``. On the graph's thread the handler only
records each callback: a tuple of the identifiers, the state fields it will need (read
now, so that a node changing its input later changes nothing), ``time.perf_counter()``,
the client's clock and the correlation ids in effect. Everything else - which run is a
node, state diffs, payloads, usage parsing, prices, event ids, validation - happens
where :class:`sdk.langgraph.replay.Tracker` replays the records: on the telemetry
client's sender thread, which takes the handler's queued work
(:class:`sdk.telemetry.deferred.DeferredWork`) like an event. Measured (issue 19,
docs/benchmarks.md): this leaves wdp's caller-thread cost per node near that of an empty
callback handler.

One item of queued work stands for every record made since the last replay, so a run
of ten nodes queues one item, not thirty events; past ``WAKE_AT`` unreplayed records
the sender is woken early, and past ``MAX_RECORDS`` (a client that never takes work) the
records are replayed on the spot, so memory stays bounded whatever the client does.

It never raises into the graph: every callback catches, logs with the traceback, and
carries on; so does the replay, record by record. ``run_inline`` makes LangChain call
it on the event loop's thread under ``ainvoke`` instead of hopping to an executor
thread per callback (measured: that hop alone cost ~240 µs per node).
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from time import perf_counter
from typing import Any, ParamSpec, TypeVar
from uuid import UUID

from langgraph.callbacks import GraphCallbackHandler, GraphInterruptEvent
from langgraph.types import Command

from sdk.langgraph.prices import ModelPrice, Pricer
from sdk.langgraph.replay import (
    CALL_END,
    CALL_START,
    CHAIN_END,
    CHAIN_ERROR,
    CHAIN_START,
    INTERRUPT,
    KIND_NAMES,
    MODEL_END,
    MODEL_START,
    Record,
    Tracker,
)
from sdk.langgraph.tracking import At, field_of, state_in
from sdk.telemetry import context
from sdk.telemetry.client import TelemetryClient
from sdk.telemetry.default import get_client
from sdk.telemetry.deferred import DeferredWork

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

_new_at = tuple.__new__
_correlation = context.current

WAKE_AT = 1_000  # unreplayed records that wake the sender before its interval is up
MAX_RECORDS = 20_000  # unreplayed records that are replayed on the spot


_handlers: weakref.WeakSet[WdpCallbackHandler] = weakref.WeakSet()


def _after_fork() -> None:
    for handler in list(_handlers):
        handler._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


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


class _Replay(DeferredWork):
    """The handler's queued work: replays its records when a sender takes it."""

    __slots__ = ("handler",)

    def __init__(self, handler: WdpCallbackHandler) -> None:
        self.handler = handler

    def run(self) -> None:
        self.handler.replay()


class InlineGraphHandler(GraphCallbackHandler):
    """How LangChain dispatches to wdp's handler: inline (on the event loop's thread
    under ``ainvoke``, not an executor thread per callback), errors never raised, and
    whole families of callbacks skipped. The benchmarks' empty handler subclasses it
    too, so the floor it measures is the same dispatch."""

    run_inline = True
    raise_error = False

    # LangChain reads these to skip whole families of callbacks. (Not ignore_agent: it
    # also silences tools, and a model called by a tool must find its node.)
    @property
    def ignore_retry(self) -> bool:
        return True

    @property
    def ignore_custom_event(self) -> bool:
        return True


class WdpCallbackHandler(InlineGraphHandler):
    """Emits ``workflow.run_started``, ``step_completed``, ``item_state_changed`` and
    ``run_completed`` for every invocation of the graphs it is attached to.

    Use :func:`sdk.langgraph.instrument`; one handler may serve any number of
    concurrent invocations.
    """

    def __init__(
        self,
        *,
        workflow_name: str,
        agent_roles: Mapping[str, str] | None = None,
        state_key: str = "status",
        item_id_key: str = "item_id",
        prices: Mapping[str, ModelPrice] | None = None,
        client: TelemetryClient | None = None,
    ) -> None:
        super().__init__()
        self.workflow_name = workflow_name
        self.agent_roles = dict(agent_roles or {})
        self.state_key = state_key
        self.item_id_key = item_id_key
        self.pricer = Pricer(prices)  # starts loading the bundled prices, off this thread
        self._client = client
        self._tracker = self._new_tracker()
        # Appended to by any thread (deque.append is atomic), replayed under the lock.
        self._records: deque[Record] = deque()
        self._lock = threading.Lock()
        self._scheduled = False  # work is queued that will replay what is recorded
        self._woken = False
        self._work = _Replay(self)
        _handlers.add(self)

    def _new_tracker(self) -> Tracker:
        return Tracker(
            workflow_name=self.workflow_name,
            agent_roles=self.agent_roles,
            state_key=self.state_key,
            pricer=self.pricer,
        )

    def _after_fork_in_child(self) -> None:
        """The parent's records are the parent's to replay (here they would be emitted
        twice), and its lock may have been held by a thread this process does not have."""
        self._lock = threading.Lock()
        self._records.clear()
        self._scheduled = self._woken = False
        self._tracker = self._new_tracker()  # nor are its live runs this child's to end

    @property
    def live_runs(self) -> int:
        """Callback runs being tracked (0 when every invocation has ended); replays what
        is recorded first, on the calling thread."""
        self.replay()
        return self._tracker.live_runs

    def replay(self) -> None:
        """Replay every record made so far, in order, emitting the events they make.

        Where the queued work runs (a sender thread; the emitting thread itself in sync
        and disk-durability modes), or on the spot when too much is unreplayed. The
        flag is cleared before the records are counted: a record made after that
        queues new work (and waits for it), one made before is replayed here, so one
        replay never grows longer than what was there when it started.
        """
        with self._lock:
            self._scheduled = False
            self._woken = False
            records, tracker = self._records, self._tracker
            for _ in range(len(records)):
                record = records.popleft()
                try:
                    tracker.apply(record)
                except Exception:
                    kind = record[0] if record else None
                    name = (
                        KIND_NAMES[kind]
                        if isinstance(kind, int) and 0 <= kind < len(KIND_NAMES)
                        else repr(kind)
                    )
                    log.exception("wdp LangGraph instrumentation failed replaying %s", name)

    def _at(self) -> At:
        client = self._client or get_client()
        # tuple.__new__, not At(...): a NamedTuple's own __new__ is a Python function,
        # and this runs twice per node on the graph's thread.
        return _new_at(At, (perf_counter(), client.clock(), _correlation(), client))

    def _queued(self, client: TelemetryClient) -> None:
        """After a record: make sure queued work will replay it. (The callbacks that
        run per node test the usual case, work queued and few records, inline.)"""
        if not self._scheduled:
            self._scheduled = True
            try:
                client.emit(self._work)
            except BaseException:
                self._scheduled = False
                raise
        elif len(self._records) >= WAKE_AT:
            if len(self._records) >= MAX_RECORDS:
                self.replay()  # the client is not taking work: memory stays bounded
            elif not self._woken:
                self._woken = True
                client.wake()

    # --- graph invocations and nodes: every node passes here twice --------------------
    # try/except written out, not @guarded, and the record built inline: these run for
    # every node, and each call showed in profiles.

    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        try:
            at = self._at()
            records = self._records
            if type(inputs) is dict:  # nearly always: field_of's first case, inlined
                item, state = inputs.get(self.item_id_key), inputs.get(self.state_key)
            else:
                item, state = field_of(inputs, self.item_id_key), field_of(inputs, self.state_key)
            records.append(
                (
                    CHAIN_START,
                    run_id,
                    parent_run_id,
                    tags,
                    metadata,
                    # invoke(None) resumes from a breakpoint; Command(resume=) an interrupt()
                    inputs is None or isinstance(inputs, Command),
                    item,
                    state,
                    at,
                )
            )
            if not self._scheduled or len(records) >= WAKE_AT:
                self._queued(at.client)
        except Exception:
            log.exception("wdp LangGraph instrumentation failed in on_chain_start")

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            at = self._at()
            records = self._records
            if type(outputs) is dict:  # nearly always: state_in's commonest case, inlined
                state = outputs.get(self.state_key)
            else:
                state = state_in(outputs, self.state_key)
            records.append((CHAIN_END, run_id, state, at))
            if not self._scheduled or len(records) >= WAKE_AT:
                self._queued(at.client)
        except Exception:
            log.exception("wdp LangGraph instrumentation failed in on_chain_end")

    @guarded
    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        at = self._at()
        self._record((CHAIN_ERROR, run_id, error, at), at.client)

    @guarded
    def on_interrupt(self, event: GraphInterruptEvent) -> None:
        self._record((INTERRUPT, event.run_id))

    def _record(self, record: Record, client: TelemetryClient | None = None) -> None:
        """Record a callback and see that queued work will replay it, for every
        callback but the two per node (which do the same inline). Also for those that
        make no event themselves: else a model called outside any graph, or a node
        calling one in a loop, would leave records that nothing replays."""
        self._records.append(record)
        if not self._scheduled or len(self._records) >= WAKE_AT:
            self._queued(client or self._client or get_client())

    # --- calls inside nodes: recorded, charged to their node in the replay ------------

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
        invocation = kwargs.get("invocation_params")
        self._record((MODEL_START, run_id, parent_run_id, metadata, invocation))

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
        invocation = kwargs.get("invocation_params")
        self._record((MODEL_START, run_id, parent_run_id, metadata, invocation))

    @guarded
    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        # The result is read in the replay: LangChain hands it on unchanged (its usage
        # and metadata are set when the model answers).
        self._record((MODEL_END, run_id, response))

    @guarded
    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        # A failed or cancelled stream still used (and is billed for) what it produced.
        self._record((MODEL_END, run_id, kwargs.get("response")))

    # Tools and retrievers: only so that what they call finds its node. (One method
    # per callback, not aliases: LangChain's signatures name their arguments apart.)

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
        self._record((CALL_START, run_id, parent_run_id))

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
        self._record((CALL_START, run_id, parent_run_id))

    @guarded
    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._record((CALL_END, run_id))

    @guarded
    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._record((CALL_END, run_id))

    @guarded
    def on_retriever_end(self, documents: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._record((CALL_END, run_id))

    @guarded
    def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._record((CALL_END, run_id))
