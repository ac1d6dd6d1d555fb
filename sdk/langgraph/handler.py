"""The LangChain callback handler that turns a LangGraph run into wdp events.

LangGraph reports every graph invocation, node execution and model call as a callback
run with a ``run_id`` and a ``parent_run_id``. The handler keeps, for every live run,
the graph invocation it belongs to and the innermost node around it, so a model call
is charged to exactly one node however deeply it is nested (subgraphs, routers, tools),
and concurrent invocations sharing one handler never mix.

It never raises into the graph: every callback catches, logs with the traceback, and
carries on. It does no I/O: events go to the SDK's in-memory queue as deferred events
(:mod:`sdk.telemetry.deferred`: validated on the sender thread, which halves the cost
on the graph's thread; the calls' cost estimate is priced there too), and
``run_inline`` makes LangChain call it on the event loop's thread under ``ainvoke``
instead of hopping to an executor thread per callback (measured: that hop alone cost
~240 µs per node).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from langgraph.callbacks import GraphCallbackHandler, GraphInterruptEvent
from langgraph.errors import GraphBubbleUp, ParentCommand
from langgraph.types import Command

from sdk.langgraph.calls import CallTracking, guarded
from sdk.langgraph.prices import Estimate, ModelPrice, Pricer
from sdk.langgraph.tracking import (
    CANCELLED,
    EventIds,
    NodeState,
    RunState,
    as_name,
    error_message,
    field_of,
    is_node_run,
    thread_of,
    update_of,
)
from sdk.telemetry import events, payloads
from sdk.telemetry.client import TelemetryClient
from sdk.telemetry.default import get_client
from sdk.telemetry.emitting import emit_deferred

log = logging.getLogger(__name__)

MAX_ENDED = 10_000


class WdpCallbackHandler(CallTracking, GraphCallbackHandler):
    """Emits ``workflow.run_started``, ``step_completed``, ``item_state_changed`` and
    ``run_completed`` for every invocation of the graphs it is attached to.

    Use :func:`sdk.langgraph.instrument`; one handler may serve any number of
    concurrent invocations.
    """

    run_inline = True
    raise_error = False

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
        self._lock = threading.Lock()
        self._runs: dict[UUID, RunState] = {}
        # Every live callback run -> (its graph invocation, innermost enclosing node).
        self._owner: dict[UUID, tuple[RunState, NodeState | None]] = {}
        self._nodes: dict[UUID, NodeState] = {}
        self._models: dict[UUID, tuple[str | None, str | None]] = {}
        # Runs a cancelled invocation left behind: a child starting under one comes from
        # a sync node still running in its thread, not from a new invocation.
        self._ended: OrderedDict[UUID, None] = OrderedDict()
        # Item and state of invocations paused by interrupt(), by thread id: a resume's
        # input is a Command, and its first node may be a Send worker without either.
        self._paused: OrderedDict[str, tuple[str | None, str | None]] = OrderedDict()

    # LangChain reads these to skip whole families of callbacks. (Not ignore_agent: it
    # also silences tools, and a model called by a tool must find its node.)
    @property
    def ignore_retry(self) -> bool:
        return True

    @property
    def ignore_custom_event(self) -> bool:
        return True

    @property
    def live_runs(self) -> int:
        """Callback runs being tracked (0 when every invocation has ended)."""
        with self._lock:
            return len(self._owner) + len(self._runs)

    # --- graph invocations and nodes ---------------------------------------------------

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
        # try/except written out, not @guarded: this and on_chain_end run for every
        # node, and the wrapper's extra call showed in profiles.
        try:
            self._chain_start(inputs, run_id, parent_run_id, tags, metadata)
        except Exception:
            log.exception("wdp LangGraph instrumentation failed in on_chain_start")

    def _chain_start(
        self,
        inputs: Any,
        run_id: UUID,
        parent_run_id: UUID | None,
        tags: list[str] | None,
        metadata: dict[str, Any] | None,
    ) -> None:
        with self._lock:
            if run_id in self._owner:
                return  # the same handler attached twice: LangGraph delivers twice
            if parent_run_id is not None and parent_run_id in self._ended:
                self._bury(run_id)
                return
            owner = self._owner.get(parent_run_id) if parent_run_id is not None else None
            if owner is None:
                run = self._start_run(run_id, inputs, metadata or {}, nested=parent_run_id)
                self._track(run_id, (run, None))
                announce = run.announced
            else:
                run, node = owner
                if is_node_run(tags, metadata):
                    node = self._start_node(run, node, inputs, metadata or {})
                    self._nodes[run_id] = node
                self._track(run_id, (run, node))
                announce = False
        if announce:
            self._emit_run_started(run)

    def _bury(self, run_id: UUID) -> None:
        self._ended[run_id] = None
        if len(self._ended) > MAX_ENDED:
            self._ended.popitem(last=False)

    def _start_run(
        self, lc_run_id: UUID, inputs: Any, metadata: dict[str, Any], *, nested: UUID | None
    ) -> RunState:
        # invoke(None) resumes from a static breakpoint; a Command(resume=...) from interrupt().
        resumed = inputs is None or isinstance(inputs, Command)
        thread = thread_of(metadata)
        paused = self._paused.pop(thread, None) if resumed and thread is not None else None
        run = RunState(
            lc_run_id=lc_run_id,
            # metadata["run_id"] names the outermost invocation: a graph started inside
            # another runnable (another graph's node) inherits it, and gets its own id.
            run_id=(None if nested else as_name(metadata.get("run_id"))) or str(lc_run_id),
            started=time.perf_counter(),
            started_at=datetime.now(UTC),
            item_id=None if resumed else as_name(field_of(inputs, self.item_id_key)),
            state=None if resumed else as_name(field_of(inputs, self.state_key)),
            metadata=metadata,
        )
        run.item_id = run.item_id or as_name(metadata.get("item_id"))
        if paused is not None:
            run.item_id = run.item_id or paused[0]
            run.state = paused[1]
        # A resume's input is a Command: its item and state show in the first node's
        # input, so run_started waits for that (with this start time).
        run.announced = not resumed
        self._runs[lc_run_id] = run
        return run

    def _start_node(
        self, run: RunState, outer: NodeState | None, inputs: Any, metadata: dict[str, Any]
    ) -> NodeState:
        name = str(metadata["langgraph_node"])
        qualified = f"{outer.name}/{name}" if outer is not None else name
        item = as_name(field_of(inputs, self.item_id_key))
        if run.item_id is None:
            run.item_id = item
        # A node of another item's graph nested in this one (its own item id): its
        # state is not this item's state.
        if outer is not None:
            outer.nested = True
        foreign = (outer is not None and outer.foreign) or (
            item is not None and item != run.item_id
        )
        before = None if foreign else as_name(field_of(inputs, self.state_key))
        # Until a resumed run's first node ends, the innermost node starting is the one
        # that paused, and its input is the latest state (a subgraph's, when it paused).
        if before is not None and (run.state is None or not run.announced):
            run.state = before
        role = (
            self.agent_roles.get(qualified)
            or self.agent_roles.get(name)
            or as_name(metadata.get("agent_role"))
        )
        step = metadata.get("langgraph_step")
        step = step if isinstance(step, int) and step >= 0 else 0
        # A retry (RetryPolicy) runs the same task again, under the same checkpoint
        # namespace (it names the task); fan-out branches of one node are other tasks.
        task = str(metadata.get("langgraph_checkpoint_ns") or qualified)
        attempt = run.attempts.get((task, step), 0) + 1
        run.attempts[(task, step)] = attempt
        return NodeState(
            run=run,
            name=qualified[:200],
            step=step,
            started=time.perf_counter(),
            agent_role=role,
            state_before=before,
            foreign=foreign,
            attempt=attempt,
        )

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            self._chain_end(outputs, run_id)
        except Exception:
            log.exception("wdp LangGraph instrumentation failed in on_chain_end")

    def _chain_end(self, outputs: Any, run_id: UUID) -> None:
        with self._lock:
            self._untrack(run_id)
            node = self._nodes.pop(run_id, None)
            run = self._runs.pop(run_id, None) if node is None else None
        if node is not None:
            self._finish_node(node, status="ok", output=outputs)
        elif run is not None:
            self._finish_run(run, status="interrupted" if run.interrupted else "succeeded")

    @guarded
    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            if self._untrack(run_id) is not None and type(error).__name__ in CANCELLED:
                self._bury(run_id)  # its code may still be running (a sync node's thread)
            node = self._nodes.pop(run_id, None)
            run = self._runs.pop(run_id, None) if node is None else None
        if node is not None:
            if isinstance(error, ParentCommand):  # Command(graph=PARENT): a normal exit
                self._finish_node(node, status="ok", output=error.args[0] if error.args else None)
            elif isinstance(error, GraphBubbleUp):  # interrupt(): paused, not failed
                node.run.interrupted = True
                self._finish_node(node, status="ok")
            else:
                self._finish_node(node, status="error", error=error)
        elif run is not None:
            if isinstance(error, ParentCommand):  # this graph handed over to its parent
                self._finish_run(run, status="succeeded")
            elif isinstance(error, GraphBubbleUp):
                self._finish_run(run, status="interrupted")
            else:
                cancelled = type(error).__name__ in CANCELLED
                self._finish_run(run, status="cancelled" if cancelled else "failed", error=error)

    def on_interrupt(self, event: GraphInterruptEvent) -> None:
        try:
            with self._lock:
                run = self._runs.get(event.run_id) if event.run_id is not None else None
                if run is not None:
                    run.interrupted = True
        except Exception:
            log.exception("wdp LangGraph instrumentation failed in on_interrupt")

    def _finish_node(
        self,
        node: NodeState,
        *,
        status: str,
        output: Any = None,
        error: BaseException | None = None,
    ) -> None:
        run = node.run
        new_state: str | None = None
        with self._lock:
            run.steps += 1
            if output is not None and not node.foreign:
                new_state = as_name(field_of(update_of(output), self.state_key))
            # Between the node's input and its output; the run's last known state when
            # the input has none (a Send worker's payload) or when the node ran a
            # subgraph, whose own nodes reported the changes inside it.
            from_state = node.state_before
            if from_state is None or node.nested:
                from_state = run.state
            changed = new_state is not None and new_state != from_state
            if new_state is not None:
                run.state = new_state
            announce = not run.announced
            run.announced = True
        if announce:
            self._emit_run_started(run)
        common = self._ids(run, node.agent_role)
        ts, usage, estimate = self._usage_of(node)
        # Typed dicts, so that mypy rejects a misspelled or missing key: at runtime the
        # payloads are validated only on the sender thread, where a typo would be lost.
        payload: payloads.StepCompletedPayloadDict = {
            "node": node.name,
            "step": node.step,
            "attempt": node.attempt,
            "status": "error" if error is not None else "ok",
            "duration_ms": round(node.duration_ms(), 3),
            **usage,
            # A step that called no model cost a known $0; else its estimate replaces
            # these where the event is built (priced there, off this thread).
            "cost_usd_est": 0.0,
            "cost_unknown": False,
            "error_type": type(error).__name__[:200] if error is not None else None,
            "error_message": error_message(error),
            "otel": None,
        }
        finish = None
        if estimate is not None:
            run.estimates.append(estimate)
            finish = estimate.fields
        emit_deferred(events.StepCompleted, payload, ts=ts, finish=finish, **common)
        if changed and new_state is not None and run.item_id is not None:
            change: payloads.ItemStateChangedPayloadDict = {
                "from_state": from_state,
                "to_state": new_state,
                "node": node.name,
            }
            emit_deferred(events.ItemStateChanged, change, **common)

    def _finish_run(
        self, run: RunState, *, status: events.RunStatus, error: BaseException | None = None
    ) -> None:
        with self._lock:
            # Runs a cancelled graph never closed (their end callbacks do not come). The
            # count spares every normal ending a scan of all invocations' live runs.
            leftovers = [k for k, (r, _) in self._owner.items() if r is run] if run.live else []
            for key in leftovers:
                self._untrack(key)
                self._bury(key)
                left = self._nodes.pop(key, None)
                if left is not None:  # its calls were made: the run's total prices them
                    run.loose.extend(left.calls)
                self._models.pop(key, None)
            thread = thread_of(run.metadata)
            if status == "interrupted" and thread is not None:
                self._paused[thread] = (run.item_id, run.state)
                if len(self._paused) > MAX_ENDED:
                    self._paused.popitem(last=False)
            announce = not run.announced
            run.announced = True
        if announce:
            self._emit_run_started(run)
        ts, finish = None, None
        if run.loose or run.estimates:  # priced where the event is built
            ts = (self._client or get_client()).clock()
            day = ts.astimezone(UTC).date()
            finish = Estimate(self.pricer, run.loose, day, run.estimates).fields
        payload: payloads.RunCompletedPayloadDict = {
            "status": status,
            "duration_ms": round(max(0.0, (time.perf_counter() - run.started) * 1000), 3),
            "steps": run.steps,
            "tokens_in": run.tokens_in,
            "tokens_out": run.tokens_out,
            "cost_usd_est": 0.0,  # no model called: a known $0 (else replaced by finish)
            "cost_unknown": False,
            "error_type": type(error).__name__[:200] if error is not None else None,
            "error_message": error_message(error),
        }
        emit_deferred(events.RunCompleted, payload, ts=ts, finish=finish, **self._ids(run, None))

    def _emit_run_started(self, run: RunState) -> None:
        metadata: dict[str, Any] = {}
        thread_id = thread_of(run.metadata)
        if thread_id is not None:
            metadata["thread_id"] = thread_id[:200]
        payload: payloads.RunStartedPayloadDict = {"trigger": "langgraph", "metadata": metadata}
        emit_deferred(events.RunStarted, payload, ts=run.started_at, **self._ids(run, None))

    def _ids(self, run: RunState, agent_role: str | None) -> EventIds:
        return {
            "run_id": run.run_id,
            "item_id": run.item_id,
            "workflow_name": self.workflow_name,
            "agent_role": agent_role,
            "client": self._client,
        }
