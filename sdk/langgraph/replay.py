"""The handler's records replayed: LangGraph invocations, their nodes and calls, as events.

:class:`sdk.langgraph.handler.WdpCallbackHandler` records each callback on the graph's
thread (identifiers, the state fields it reads, timestamps) and nothing more; this
tracker replays the records, in the order they were made, where the telemetry client's
sender takes the handler's queued work (:class:`sdk.telemetry.deferred.DeferredWork`).
It keeps, for every live run, the graph invocation it belongs to and the innermost node
around it, so a model call is charged to exactly one node however deeply it is nested
(subgraphs, routers, tools), and concurrent invocations sharing one handler never mix.

Invariants:

* One replay at a time (the handler's lock), in record order: the tracker's state
  needs no lock of its own, and it sees the callbacks in the order LangGraph made them.
* Every time and id comes from the record (:class:`~sdk.langgraph.tracking.At`), never
  from the clock or the context at replay: a step's duration, an event's id and the
  correlation ids it carries are those of the moment the callback happened.
* The values read from a node's input and output (item id, state) were read when the
  callback came, so a node that later changes its input dict cannot change the record.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from datetime import UTC, timedelta
from typing import Any
from uuid import UUID

from langgraph.errors import GraphBubbleUp, ParentCommand

from sdk.langgraph.calls import CallTracking
from sdk.langgraph.prices import Estimate, Pricer
from sdk.langgraph.tracking import (
    CANCELLED,
    At,
    EventIds,
    NodeState,
    RunState,
    as_name,
    error_message,
    is_node_run,
    state_in,
    thread_of,
)
from sdk.telemetry import events, payloads
from sdk.telemetry.emitting import emit_deferred

MAX_ENDED = 10_000

# Record kinds: the first item of every record tuple (see WdpCallbackHandler).
CHAIN_START, CHAIN_END, CHAIN_ERROR, INTERRUPT, MODEL_START, MODEL_END, CALL_START, CALL_END = (
    range(8)
)
KIND_NAMES = (
    "on_chain_start", "on_chain_end", "on_chain_error", "on_interrupt",
    "on_chat_model_start", "on_llm_end", "on_tool_start", "on_tool_end",
)  # fmt: skip

Record = tuple[Any, ...]
_TICK = timedelta(microseconds=1)


class Tracker(CallTracking):
    """The state the records build up, and the events it emits on the way."""

    def __init__(
        self,
        *,
        workflow_name: str,
        agent_roles: Mapping[str, str],
        state_key: str,
        pricer: Pricer,
    ) -> None:
        self.workflow_name = workflow_name
        self.agent_roles = agent_roles
        self.state_key = state_key
        self.pricer = pricer
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

    @property
    def live_runs(self) -> int:
        return len(self._owner) + len(self._runs)

    def apply(self, record: Record) -> None:
        """Replay one record (the handler's callbacks, in their order)."""
        kind = record[0]
        if kind == CHAIN_START:
            self._chain_start(*record[1:])
        elif kind == CHAIN_END:
            self._chain_end(*record[1:])
        elif kind == CHAIN_ERROR:
            self._chain_error(*record[1:])
        elif kind == MODEL_START:
            self._model_start(*record[1:])
        elif kind == MODEL_END:
            self._model_done(*record[1:])
        elif kind == CALL_START:
            self._adopt(record[1], record[2])
        elif kind == CALL_END:
            self._untrack(record[1])
        elif kind == INTERRUPT:
            run = self._runs.get(record[1]) if record[1] is not None else None
            if run is not None:
                run.interrupted = True

    # --- graph invocations and nodes ---------------------------------------------------

    def _chain_start(
        self,
        run_id: UUID,
        parent_run_id: UUID | None,
        tags: list[str] | None,
        metadata: dict[str, Any] | None,
        resumed: bool,
        item: Any,
        state: Any,
        at: At,
    ) -> None:
        if run_id in self._owner:
            return  # the same handler attached twice: LangGraph delivers twice
        if parent_run_id is not None and parent_run_id in self._ended:
            self._bury(run_id)
            return
        owner = self._owner.get(parent_run_id) if parent_run_id is not None else None
        if owner is None:
            run = self._start_run(
                run_id, resumed, item, state, metadata or {}, at, nested=parent_run_id
            )
            self._track(run_id, (run, None))
            if run.announced:
                self._emit_run_started(run, at)
        else:
            run, node = owner
            if is_node_run(tags, metadata):
                node = self._start_node(run, node, item, state, metadata or {}, at)
                self._nodes[run_id] = node
            self._track(run_id, (run, node))

    def _bury(self, run_id: UUID) -> None:
        self._ended[run_id] = None
        if len(self._ended) > MAX_ENDED:
            self._ended.popitem(last=False)

    def _start_run(
        self,
        lc_run_id: UUID,
        resumed: bool,
        item: Any,
        state: Any,
        metadata: dict[str, Any],
        at: At,
        *,
        nested: UUID | None,
    ) -> RunState:
        # ``resumed``: invoke(None) resumes from a static breakpoint; a Command(resume=...)
        # from interrupt().
        thread = thread_of(metadata)
        paused = self._paused.pop(thread, None) if resumed and thread is not None else None
        run = RunState(
            lc_run_id=lc_run_id,
            # metadata["run_id"] names the outermost invocation: a graph started inside
            # another runnable (another graph's node) inherits it, and gets its own id.
            run_id=(None if nested else as_name(metadata.get("run_id"))) or str(lc_run_id),
            started=at.perf,
            started_at=at.wall,
            item_id=None if resumed else as_name(item),
            state=None if resumed else as_name(state),
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
        self,
        run: RunState,
        outer: NodeState | None,
        item_value: Any,
        state_value: Any,
        metadata: dict[str, Any],
        at: At,
    ) -> NodeState:
        name = str(metadata["langgraph_node"])
        qualified = f"{outer.name}/{name}" if outer is not None else name
        item = as_name(item_value)
        if run.item_id is None:
            run.item_id = item
        # A node of another item's graph nested in this one (its own item id): its
        # state is not this item's state.
        if outer is not None:
            outer.nested = True
        foreign = (outer is not None and outer.foreign) or (
            item is not None and item != run.item_id
        )
        before = None if foreign else as_name(state_value)
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
            started=at.perf,
            agent_role=role,
            state_before=before,
            foreign=foreign,
            attempt=attempt,
        )

    def _chain_end(self, run_id: UUID, new_state: Any, at: At) -> None:
        self._untrack(run_id)
        node = self._nodes.pop(run_id, None)
        if node is not None:
            self._finish_node(node, at, status="ok", new_state=new_state)
            return
        run = self._runs.pop(run_id, None)
        if run is not None:
            self._finish_run(run, at, status="interrupted" if run.interrupted else "succeeded")

    def _chain_error(self, run_id: UUID, error: BaseException, at: At) -> None:
        if self._untrack(run_id) is not None and type(error).__name__ in CANCELLED:
            self._bury(run_id)  # its code may still be running (a sync node's thread)
        node = self._nodes.pop(run_id, None)
        run = self._runs.pop(run_id, None) if node is None else None
        if node is not None:
            if isinstance(error, ParentCommand):  # Command(graph=PARENT): a normal exit
                output = error.args[0] if error.args else None
                self._finish_node(node, at, status="ok", new_state=state_in(output, self.state_key))
            elif isinstance(error, GraphBubbleUp):  # interrupt(): paused, not failed
                node.run.interrupted = True
                self._finish_node(node, at, status="ok")
            else:
                self._finish_node(node, at, status="error", error=error)
        elif run is not None:
            if isinstance(error, ParentCommand):  # this graph handed over to its parent
                self._finish_run(run, at, status="succeeded")
            elif isinstance(error, GraphBubbleUp):
                self._finish_run(run, at, status="interrupted")
            else:
                cancelled = type(error).__name__ in CANCELLED
                status: events.RunStatus = "cancelled" if cancelled else "failed"
                self._finish_run(run, at, status=status, error=error)

    def _finish_node(
        self,
        node: NodeState,
        at: At,
        *,
        status: str,
        new_state: Any = None,
        error: BaseException | None = None,
    ) -> None:
        run = node.run
        run.steps += 1
        state = None if node.foreign else as_name(new_state)
        # Between the node's input and its output; the run's last known state when the
        # input has none (a Send worker's payload) or when the node ran a subgraph,
        # whose own nodes reported the changes inside it.
        from_state = node.state_before
        if from_state is None or node.nested:
            from_state = run.state
        changed = state is not None and state != from_state
        if state is not None:
            run.state = state
        if not run.announced:
            run.announced = True
            self._emit_run_started(run, at)
        ids = self._ids(run, node.agent_role, at)
        ts, usage, estimate = self._usage_of(node, at.wall)
        # Typed dicts, so that mypy rejects a misspelled or missing key: at runtime the
        # payloads are validated only where the events are built.
        payload: payloads.StepCompletedPayloadDict = {
            "node": node.name,
            "step": node.step,
            "attempt": node.attempt,
            "status": "error" if error is not None else "ok",
            "duration_ms": round(node.duration_ms(at.perf), 3),
            **usage,
            # A step that called no model cost a known $0; else its estimate replaces
            # these where the event is built (priced there).
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
        emit_deferred(events.StepCompleted, payload, ts=ts, finish=finish, **ids)
        if changed and state is not None and run.item_id is not None:
            change: payloads.ItemStateChangedPayloadDict = {
                "from_state": from_state,
                "to_state": state,
                "node": node.name,
            }
            # Dated a microsecond after the step (both are the node's end, one clock
            # reading): readers that order by time see the step, then what it changed.
            emit_deferred(events.ItemStateChanged, change, ts=at.wall + _TICK, **ids)

    def _finish_run(
        self, run: RunState, at: At, *, status: events.RunStatus, error: BaseException | None = None
    ) -> None:
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
        if not run.announced:
            run.announced = True
            self._emit_run_started(run, at)
        ts, finish = None, None
        if run.loose or run.estimates:  # priced where the event is built
            ts = at.wall
            day = ts.astimezone(UTC).date()
            finish = Estimate(self.pricer, run.loose, day, run.estimates).fields
        payload: payloads.RunCompletedPayloadDict = {
            "status": status,
            "duration_ms": round(max(0.0, (at.perf - run.started) * 1000), 3),
            "steps": run.steps,
            "tokens_in": run.tokens_in,
            "tokens_out": run.tokens_out,
            "cost_usd_est": 0.0,  # no model called: a known $0 (else replaced by finish)
            "cost_unknown": False,
            "error_type": type(error).__name__[:200] if error is not None else None,
            "error_message": error_message(error),
        }
        emit_deferred(
            events.RunCompleted, payload, ts=ts, finish=finish, **self._ids(run, None, at)
        )

    def _emit_run_started(self, run: RunState, at: At) -> None:
        metadata: dict[str, Any] = {}
        thread_id = thread_of(run.metadata)
        if thread_id is not None:
            metadata["thread_id"] = thread_id[:200]
        payload: payloads.RunStartedPayloadDict = {"trigger": "langgraph", "metadata": metadata}
        emit_deferred(events.RunStarted, payload, ts=run.started_at, **self._ids(run, None, at))

    def _ids(self, run: RunState, agent_role: str | None, at: At) -> EventIds:
        return {
            "run_id": run.run_id,
            "item_id": run.item_id,
            "workflow_name": self.workflow_name,
            "agent_role": agent_role,
            "client": at.client,
            "minted_at": at.wall,
            "correlation": at.correlation,
        }
