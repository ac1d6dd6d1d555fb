"""The handler at the edges a review found: models inside tools, errors no event could
hold, calls without usage, a graph handing control to its parent, resumed Send workers,
nested graphs of other items, parallel branches, and the client's deferred path.

Real LangGraph graphs and the recording client of tests/support/langgraph_graphs.py
(which validates each deferred event as the sender thread would).
"""

from __future__ import annotations

import logging
import operator
import threading
import time
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, Send, interrupt

from sdk.langgraph import instrument
from sdk.langgraph.fake import FakeChatModel
from sdk.telemetry import TelemetryClient
from sdk.telemetry.builders import emit_deferred
from sdk.telemetry.events import StepCompleted
from tests.support.langgraph_graphs import PRICES, RecordingClient, SimpleState, p, transitions
from tests.support.scripted_http import scripted_api

WF = "edges"


def instrumented(graph: Any, client: RecordingClient) -> Any:
    return instrument(graph, workflow_name=WF, client=client, prices=PRICES)


def test_a_model_called_by_a_tool_is_charged_to_the_node() -> None:
    llm = FakeChatModel(model="model-a", text="two words")

    @tool
    def look_up(query: str) -> str:
        """Ask the model."""
        return str(llm.invoke(f"look up {query}").content)

    def act(state: SimpleState) -> dict[str, Any]:
        return {"answer": look_up.invoke({"query": "prices"})}

    builder = StateGraph(SimpleState)
    builder.add_node("act", act)
    builder.add_edge(START, "act")
    client = RecordingClient()
    instrumented(builder.compile(), client).invoke({"item_id": "T-1", "status": "new"})
    assert [e.event_name for e in client.events] == [
        "workflow.run_started",
        "workflow.step_completed",
        "workflow.run_completed",
    ]
    step = p(client.named("step_completed")[0])
    assert (step["tokens_in"], step["tokens_out"], step["model"]) == (3, 2, "model-a")
    assert step["cost_unknown"] is False


def test_an_error_whose_text_no_event_could_hold_still_ends_the_step_and_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def boom(state: SimpleState) -> dict[str, Any]:
        raise ValueError("bad \x00 byte and a lone \ud800 surrogate")

    builder = StateGraph(SimpleState)
    builder.add_node("boom", boom)
    builder.add_edge(START, "boom")
    client = RecordingClient()
    with caplog.at_level(logging.WARNING), pytest.raises(ValueError, match="bad"):
        instrumented(builder.compile(), client).invoke({"item_id": "E-1", "status": "new"})
    step = p(client.named("step_completed")[0])
    done = p(client.named("run_completed")[0])
    assert step["status"] == "error"
    assert "\x00" not in step["error_message"]
    assert "\\ud800" in step["error_message"]
    assert done["status"] == "failed"
    assert "instrumentation failed" not in caplog.text


def test_a_call_without_token_counts_has_an_unknown_cost_not_zero() -> None:
    silent = FakeListChatModel(responses=["ok"])  # reports no usage at all

    def ask(state: SimpleState) -> dict[str, Any]:
        silent.invoke("hello")
        return {"answer": "ok"}

    builder = StateGraph(SimpleState)
    builder.add_node("ask", ask)
    builder.add_edge(START, "ask")
    client = RecordingClient()
    instrumented(builder.compile(), client).invoke({"item_id": "U-1", "status": "new"})
    step = p(client.named("step_completed")[0])
    assert (step["cost_usd_est"], step["cost_unknown"]) == (None, True)
    assert p(client.named("run_completed")[0])["cost_unknown"] is True


def test_an_instrumented_subgraph_handing_control_to_its_parent_succeeded() -> None:
    def check(state: SimpleState) -> Command[Any]:
        return Command(graph=Command.PARENT, goto="escalate", update={"status": "escalating"})

    inner_builder = StateGraph(SimpleState)
    inner_builder.add_node("check", check)
    inner_builder.add_edge(START, "check")
    inner_client = RecordingClient()
    inner = instrument(inner_builder.compile(), workflow_name="inner", client=inner_client)

    outer_builder = StateGraph(SimpleState)
    outer_builder.add_node("sub", inner)
    outer_builder.add_node("escalate", lambda state: {"status": "escalated"})
    outer_builder.add_edge(START, "sub")
    outer_builder.add_edge("escalate", END)
    result = outer_builder.compile().invoke({"item_id": "P-1", "status": "new"})
    assert result["status"] == "escalated"
    assert p(inner_client.named("run_completed")[0])["status"] == "succeeded"


class FanState(TypedDict, total=False):
    item_id: str
    status: str
    notes: Annotated[list[str], operator.add]


def test_a_resumed_send_worker_keeps_the_item_and_its_state() -> None:
    """The paused node is a Send worker whose payload has neither item id nor status."""

    def plan(state: FanState) -> dict[str, Any]:
        return {"status": "planned"}

    def fan(state: FanState) -> list[Send]:
        return [Send("worker", {"topic": "t"})]

    def worker(payload: dict[str, Any]) -> dict[str, Any]:
        answer = interrupt("approve?")
        return {"notes": [answer], "status": "researched"}

    builder = StateGraph(FanState)
    builder.add_node("plan", plan)
    builder.add_node("worker", worker)
    builder.add_edge(START, "plan")
    builder.add_conditional_edges("plan", fan, ["worker"])
    client = RecordingClient()
    graph = instrumented(builder.compile(checkpointer=InMemorySaver()), client)
    config = {"configurable": {"thread_id": "thread-1"}}
    graph.invoke({"item_id": "S-1", "status": "new"}, config)
    first_run = client.events[-1].run_id
    assert p(client.events[-1])["status"] == "interrupted"
    client.events.clear()
    graph.invoke(Command(resume="yes"), config)
    assert {e.item_id for e in client.events} == {"S-1"}
    assert client.events[0].run_id != first_run
    assert transitions(client) == [("planned", "researched", "worker")]


class ItemState(TypedDict, total=False):
    item_id: str
    status: str


def test_a_nested_graph_of_another_item_does_not_change_this_items_state() -> None:
    inner_builder = StateGraph(ItemState)
    inner_builder.add_node("work", lambda state: {"status": "inner-done"})
    inner_builder.add_edge(START, "work")
    inner = inner_builder.compile()

    def delegate(state: ItemState) -> dict[str, Any]:
        inner.invoke({"item_id": "CHILD-1", "status": "s0"})
        return {"status": "delegated"}

    builder = StateGraph(ItemState)
    builder.add_node("delegate", delegate)
    builder.add_edge(START, "delegate")
    client = RecordingClient()
    instrumented(builder.compile(), client).invoke({"item_id": "OUT-1", "status": "new"})
    assert transitions(client) == [("new", "delegated", "delegate")]
    assert {e.item_id for e in client.events} == {"OUT-1"}


def _last(old: str, new: str) -> str:
    return new


class ReducedState(TypedDict, total=False):
    item_id: str
    status: Annotated[str, _last]


def test_a_branch_returning_its_unchanged_input_state_is_no_change() -> None:
    """Two branches in one step: "mover" changes the status; "echo", finishing after
    it, returns the status it was given. Only the mover changed anything."""
    moved = threading.Event()

    def mover(state: ReducedState) -> dict[str, Any]:
        moved.set()
        return {"status": "moved"}

    def echo(state: ReducedState) -> dict[str, Any]:
        assert moved.wait(5)
        time.sleep(0.05)  # let the mover's end callback run first
        return {"status": state["status"]}

    builder = StateGraph(ReducedState)
    builder.add_node("mover", mover)
    builder.add_node("echo", echo)
    builder.add_edge(START, "mover")
    builder.add_edge(START, "echo")
    client = RecordingClient()
    instrumented(builder.compile(), client).invoke({"item_id": "B-1", "status": "new"})
    assert transitions(client) == [("new", "moved", "mover")]


def test_a_batch_of_only_invalid_deferred_events_does_not_hold_up_the_next(
    tmp_path: Any,
) -> None:

    with scripted_api() as api:
        client = TelemetryClient(
            endpoint=api.url,
            api_key="k",
            spool_dir=tmp_path,
            batch_size=5,
            flush_interval_s=30,
        )
        bad = {"node": "n", "step": -1, "status": "ok", "duration_ms": 1.0}
        good = {"node": "n", "step": 1, "status": "ok", "duration_ms": 1.0}
        for _ in range(5):
            emit_deferred(StepCompleted, bad, run_id="r", client=client)
        emit_deferred(StepCompleted, good, run_id="r", client=client)
        assert client.flush(timeout=5)
        client.shutdown()
    assert len(api.events) == 1
    assert (client.stats().sent, client.stats().rejected) == (1, 5)


def test_a_separately_instrumented_inner_graph_gets_its_own_run_id() -> None:
    inner_builder = StateGraph(ItemState)
    inner_builder.add_node("work", lambda state: {"status": "inner-done"})
    inner_builder.add_edge(START, "work")
    inner_client = RecordingClient()
    inner = instrument(inner_builder.compile(), workflow_name="inner", client=inner_client)

    def delegate(state: ItemState) -> dict[str, Any]:
        inner.invoke({"item_id": "CHILD-1", "status": "s0"})
        return {"status": "delegated"}

    builder = StateGraph(ItemState)
    builder.add_node("delegate", delegate)
    builder.add_edge(START, "delegate")
    client = RecordingClient()
    config = {"metadata": {"run_id": "outer-run"}}
    instrumented(builder.compile(), client).invoke({"item_id": "OUT-1", "status": "new"}, config)
    assert {e.run_id for e in client.events} == {"outer-run"}
    inner_runs = {e.run_id for e in inner_client.events}
    assert len(inner_runs) == 1
    assert "outer-run" not in inner_runs
    assert {e.item_id for e in inner_client.events} == {"CHILD-1"}
