"""``sdk.langgraph`` on real LangGraph graphs (langgraph 1.x): what the handler emits.

What is real: the graphs (``StateGraph`` compiled by langgraph, with Send fan-out, plain
multi-edge fan-out, conditional loops, nested compiled subgraphs, ``Command`` routing,
``RetryPolicy``, ``interrupt()`` with an ``InMemorySaver`` checkpointer), LangChain's
callback machinery, the handler, the price table and the SDK's event builders, whose
pydantic models validate every event. The stand-ins: the chat model is
:class:`sdk.langgraph.fake.FakeChatModel` (tokens = whitespace words, reported as
``usage_metadata`` exactly like a provider, also chunk by chunk when streaming), and the
telemetry client records events in memory instead of posting them (see
``test_langgraph_end_to_end.py`` for the same graphs against the real API and Postgres).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypedDict

import pytest
from langchain_core.messages import AIMessageChunk
from langchain_core.runnables import RunnableLambda
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command

from sdk.langgraph import WdpCallbackHandler, instrument
from sdk.langgraph.fake import FakeChatModel
from sdk.telemetry.client import TelemetryClient
from sdk.telemetry.deferred import DeferredEvent, DeferredWork
from sdk.telemetry.events import EventBase
from tests.support.langgraph_graphs import (
    DEFAULT_TOPICS,
    DRAFT_REPLY,
    PIPELINE_ROLES,
    PRICES,
    RecordingClient,
    SimpleState,
    Status,
    build_commands,
    build_failing,
    build_fanout_edges,
    build_interrupting,
    build_interrupting_in_subgraph,
    build_linear,
    build_nested,
    build_parent_command,
    build_pipeline,
    build_pydantic,
    build_retrying,
    cost_a,
    cost_b,
    p,
    pipeline_steps,
    pipeline_transitions,
    step_names,
    transitions,
)

WF = "content-pipeline"
HANDLER_LOG = "sdk.langgraph.handler"


def instrumented(graph: Any, client: RecordingClient, **options: Any) -> Any:
    options.setdefault("prices", PRICES)
    return instrument(graph, workflow_name=WF, client=client, **options)


def handler_of(graph: Any) -> WdpCallbackHandler:
    handlers = [h for h in graph.config["callbacks"] if isinstance(h, WdpCallbackHandler)]
    assert len(handlers) == 1
    return handlers[0]


def only_run(client: RecordingClient) -> str:
    runs = list(dict.fromkeys(e.run_id for e in client.events))
    assert len(runs) == 1, runs
    assert runs[0] is not None
    return runs[0]


def step_rows(client: RecordingClient, run_id: str | None = None) -> list[tuple[Any, ...]]:
    """``(node, step, tokens_in, tokens_out, model, cost)`` in emission order."""
    return [
        (d["node"], d["step"], d["tokens_in"], d["tokens_out"], d["model"], d["cost_usd_est"])
        for d in client.payloads("step_completed", run_id)
    ]


def same_steps(actual: list[tuple[Any, ...]], expected: list[tuple[Any, ...]]) -> None:
    """Equal up to the order of parallel steps (same LangGraph step), costs approximately."""

    def key(row: tuple[Any, ...]) -> tuple[Any, ...]:
        return (row[1], row[0], row[2], row[3])

    assert [r[1] for r in actual] == sorted(r[1] for r in actual), "steps out of order"
    assert len(actual) == len(expected)
    for got, want in zip(sorted(actual, key=key), sorted(expected, key=key), strict=True):
        assert got[:5] == want[:5]
        assert got[5] == pytest.approx(want[5], rel=1e-9, abs=1e-15)


def assert_pipeline_run(
    client: RecordingClient,
    run_id: str,
    item_id: str,
    *,
    topics: Sequence[str] = DEFAULT_TOPICS,
    rounds: int = 2,
    roles: dict[str, str | None] | None = None,
) -> None:
    events = [e for e in client.events if e.run_id == run_id]
    names = [e.event_name for e in events]
    expected_steps = pipeline_steps(topics, rounds)
    expected_transitions = pipeline_transitions(rounds)
    assert names[0] == "workflow.run_started"
    assert names[-1] == "workflow.run_completed"
    assert Counter(names) == {
        "workflow.run_started": 1,
        "workflow.step_completed": len(expected_steps),
        "workflow.item_state_changed": len(expected_transitions),
        "workflow.run_completed": 1,
    }
    for event in events:
        assert (event.item_id, event.workflow_name) == (item_id, WF)
    roles = PIPELINE_ROLES if roles is None else roles
    for event in client.named("step_completed", run_id) + client.named(
        "item_state_changed", run_id
    ):
        node = p(event)["node"]
        assert event.agent_role == roles.get(node), node
    for event in client.named("run_started", run_id) + client.named("run_completed", run_id):
        assert event.agent_role is None

    same_steps(step_rows(client, run_id), expected_steps)
    for event in client.named("step_completed", run_id):
        assert event.event_version == 2  # with the calls, which add up to the totals
        step = p(event)
        names = ",".join(dict.fromkeys(c["model"] for c in step["calls"]))
        assert (names or None) == step["model"]
    for step in client.payloads("step_completed", run_id):
        assert step["status"] == "ok"
        assert step["duration_ms"] >= 0
        assert step["cost_unknown"] is False
        assert step["error_type"] is None
    assert transitions(client, run_id) == expected_transitions

    (started,) = client.named("run_started", run_id)
    assert p(started)["trigger"] == "langgraph"
    assert started.ts <= events[1].ts
    (done,) = client.payloads("run_completed", run_id)
    assert done["status"] == "succeeded"
    assert done["steps"] == len(expected_steps)
    assert done["tokens_in"] == sum(s[2] for s in expected_steps)
    assert done["tokens_out"] == sum(s[3] for s in expected_steps)
    assert done["cost_usd_est"] == pytest.approx(sum(s[5] for s in expected_steps), rel=1e-9)
    assert done["cost_unknown"] is False
    assert done["error_type"] is None


NEW = {"item_id": "ITEM-1", "status": "new"}


# --- the realistic pipeline ------------------------------------------------------------


def test_one_invoke_reports_every_node_execution_with_exact_tokens_and_costs() -> None:
    client = RecordingClient()
    graph = instrumented(build_pipeline(), client, agent_roles=PIPELINE_ROLES)
    result = graph.invoke(NEW)

    assert result["status"] == "approved"
    assert sorted(result["notes"]) == sorted(DEFAULT_TOPICS)
    run_id = only_run(client)
    # Spelled out once (pipeline_steps computes the same for the other tests):
    assert step_names(client) == [
        "triage",
        "plan",
        "research",
        "research",
        "research",
        "draft",
        "review",
        "draft",
        "review",
    ]
    same_steps(
        step_rows(client),
        [
            ("triage", 1, 7, 3, "model-a", 13e-6),
            ("plan", 2, 0, 0, None, 0.0),
            ("research", 3, 2, 3, "model-a", 8e-6),  # "research pricing"
            ("research", 3, 3, 4, "model-a", 11e-6),  # "research market risks"
            ("research", 3, 5, 6, "model-a", 17e-6),  # "research long term growth plan"
            ("draft", 4, 5, 4, "model-a", 13e-6),  # streamed
            ("review", 5, 4, 3, "model-b", 51.6e-6),  # 2 of 4 input tokens cached
            ("draft", 6, 5, 4, "model-a", 13e-6),
            ("review", 7, 4, 3, "model-b", 51.6e-6),
        ],
    )
    assert transitions(client) == [
        ("new", "triaged", "triage"),
        ("triaged", "planned", "plan"),
        ("planned", "drafted", "draft"),
        ("drafted", "needs_work", "review"),
        ("needs_work", "drafted", "draft"),
        ("drafted", "approved", "review"),
    ]
    (done,) = client.payloads("run_completed")
    assert (done["steps"], done["tokens_in"], done["tokens_out"]) == (9, 35, 30)
    assert done["cost_usd_est"] == pytest.approx(178.2e-6)
    assert_pipeline_run(client, run_id, "ITEM-1")
    assert handler_of(graph).live_runs == 0


def test_roles_come_from_the_role_map_else_from_the_config_metadata() -> None:
    client = RecordingClient()
    graph = instrumented(build_pipeline(), client, agent_roles={"review": "reviewer"})
    graph.invoke(NEW, config={"metadata": {"agent_role": "generalist"}})
    roles = {p(e)["node"]: e.agent_role for e in client.named("step_completed")}
    assert roles == {
        "triage": "generalist",
        "plan": "generalist",
        "research": "generalist",
        "draft": "generalist",
        "review": "reviewer",
    }
    client.clear()
    graph.invoke(NEW)  # no metadata, no map entry: no role
    roles = {p(e)["node"]: e.agent_role for e in client.named("step_completed")}
    assert roles["triage"] is None
    assert roles["review"] == "reviewer"


def test_run_and_item_ids_can_come_from_the_config_metadata() -> None:
    client = RecordingClient()
    graph = instrumented(build_linear([("a", lambda s: {"status": "done"})]), client)
    graph.invoke({"status": "new"}, config={"metadata": {"run_id": "r-42", "item_id": "I-9"}})
    assert {(e.run_id, e.item_id) for e in client.events} == {("r-42", "I-9")}
    assert transitions(client) == [("new", "done", "a")]


def test_custom_state_and_item_keys() -> None:
    class Ticket(TypedDict, total=False):
        ticket: str
        stage: str

    builder = StateGraph(Ticket)
    builder.add_node("start", lambda s: {"stage": "started"})
    builder.add_edge(START, "start")
    builder.add_edge("start", END)
    client = RecordingClient()
    graph = instrumented(builder.compile(), client, state_key="stage", item_id_key="ticket")
    graph.invoke({"ticket": "T-7", "stage": "queued"})
    assert {e.item_id for e in client.events} == {"T-7"}
    assert transitions(client) == [("queued", "started", "start")]


def collect_sync(graph: Any, mode: Any) -> list[Any]:
    if mode == "invoke":
        return [graph.invoke(NEW)]
    return list(graph.stream(NEW, stream_mode=mode))


async def collect_async(graph: Any, mode: Any) -> list[Any]:
    if mode == "invoke":
        return [await graph.ainvoke(NEW)]
    return [chunk async for chunk in graph.astream(NEW, stream_mode=mode)]


MODES: list[Any] = [
    "invoke",
    "values",
    "updates",
    "messages",
    "custom",
    "debug",
    ["values", "messages", "custom"],
]


def check_chunks(mode: Any, chunks: list[Any]) -> None:
    """What the consumer got is what that mode streams (the instrumentation took nothing)."""
    if mode == "invoke":
        assert chunks[0]["status"] == "approved"
    elif mode == "values":
        assert chunks[-1]["status"] == "approved"
    elif mode == "updates":
        assert [next(iter(c)) for c in chunks][:2] == ["triage", "plan"]
        assert len(chunks) == 9
    elif mode == "messages":
        drafts = "".join(
            str(m.content)
            for m, md in chunks
            if md["langgraph_node"] == "draft" and isinstance(m, AIMessageChunk)
        )
        assert drafts == DRAFT_REPLY * 2
    elif mode == "custom":
        assert chunks == [{"draft": 1}, {"draft": 2}]
    elif mode == "debug":
        assert {c["type"] for c in chunks} >= {"task", "task_result"}
    else:
        assert {m for m, _ in chunks} == {"values", "messages", "custom"}


@pytest.mark.parametrize("mode", MODES, ids=str)
def test_invoke_and_every_stream_mode_report_the_same_run(mode: Any) -> None:
    client = RecordingClient()
    graph = instrumented(build_pipeline(), client, agent_roles=PIPELINE_ROLES)
    check_chunks(mode, collect_sync(graph, mode))
    assert_pipeline_run(client, only_run(client), "ITEM-1")
    assert handler_of(graph).live_runs == 0


@pytest.mark.parametrize("async_nodes", [False, True], ids=["sync-nodes", "async-nodes"])
@pytest.mark.parametrize("mode", MODES, ids=str)
def test_ainvoke_and_astream_with_sync_and_async_nodes(mode: Any, async_nodes: bool) -> None:
    client = RecordingClient()
    graph = instrumented(
        build_pipeline(async_nodes=async_nodes), client, agent_roles=PIPELINE_ROLES
    )
    check_chunks(mode, asyncio.run(collect_async(graph, mode)))
    assert_pipeline_run(client, only_run(client), "ITEM-1")
    assert handler_of(graph).live_runs == 0


# --- prices --------------------------------------------------------------------------


def one_node_graph(*models: FakeChatModel, prompt: str = "three word prompt") -> Any:
    def work(state: Any) -> dict[str, Any]:
        for model in models:
            model.invoke(prompt)
        return {}

    return build_linear([("work", work)])


def test_an_unpriced_model_has_no_cost_and_is_flagged_never_a_guess() -> None:
    client = RecordingClient()
    graph = instrumented(one_node_graph(FakeChatModel(model="mystery-model", text="a b")), client)
    graph.invoke(NEW)
    (step,) = client.payloads("step_completed")
    assert (step["model"], step["tokens_in"], step["tokens_out"]) == ("mystery-model", 3, 2)
    assert step["cost_usd_est"] is None
    assert step["cost_unknown"] is True
    (done,) = client.payloads("run_completed")
    assert (done["tokens_in"], done["tokens_out"]) == (3, 2)
    assert done["cost_usd_est"] is None
    assert done["cost_unknown"] is True


def test_a_step_calling_a_priced_and_an_unpriced_model() -> None:
    client = RecordingClient()
    graph = instrumented(
        one_node_graph(
            FakeChatModel(model="model-a", text="x"),
            FakeChatModel(model="mystery-model", text="y z"),
            FakeChatModel(model="model-a", text="w"),
        ),
        client,
    )
    graph.invoke(NEW)
    (step,) = client.payloads("step_completed")
    assert step["model"] == "model-a,mystery-model"  # each model once, in call order
    assert (step["tokens_in"], step["tokens_out"]) == (9, 4)
    assert step["cost_usd_est"] is None
    assert step["cost_unknown"] is True
    (done,) = client.payloads("run_completed")
    assert done["cost_unknown"] is True
    assert done["cost_usd_est"] is None


def test_default_prices_dated_releases_and_cached_input() -> None:
    client = RecordingClient()
    graph = instrument(
        one_node_graph(
            FakeChatModel(model="gpt-4o-mini", text="a b c d", cached_input_tokens=2),
            FakeChatModel(model="model-a-2025-01-31", text="e"),
        ),
        workflow_name=WF,
        client=client,
        prices={"model-a-2025-01-31": PRICES["model-a"]},
    )
    graph.invoke(NEW)
    (step,) = client.payloads("step_completed")
    assert step["model"] == "gpt-4o-mini,model-a-2025-01-31"
    # gpt-4o-mini: $0.15 in / $0.075 cached / $0.60 out per 1M; model-a: $1 / $2
    expected = (1 * 0.15 + 2 * 0.075 + 4 * 0.60) / 1e6 + cost_a(3, 1)
    assert step["cost_usd_est"] == pytest.approx(expected, rel=1e-9)
    assert step["cost_unknown"] is False


def test_a_dated_release_is_priced_at_its_own_price_not_its_model_s() -> None:
    """gpt-4o-2024-05-13 costs twice gpt-4o: genai-prices has a row of its own for it."""
    client = RecordingClient()
    graph = instrument(
        one_node_graph(
            FakeChatModel(model="gpt-4o-2024-05-13", text="a", provider="openai"),
            FakeChatModel(model="gpt-4o", text="a", provider="openai"),
        ),
        workflow_name=WF,
        client=client,
    )
    graph.invoke(NEW)
    (step,) = client.payloads("step_completed")
    # 3 in, 1 out each: $5 / $15 per 1M, then gpt-4o's $2.50 / $10
    assert step["cost_usd_est"] == pytest.approx((3 * 5 + 15 + 3 * 2.5 + 10) / 1e6, rel=1e-12)
    assert step["cost_unknown"] is False


# --- subgraphs and parallel branches -------------------------------------------------------


def test_nested_subgraphs_qualify_node_names_and_charge_only_the_innermost_node() -> None:
    client = RecordingClient()
    roles = {"sub/inner_a": "inner-role", "leaf": "leaf-role", "sub": "wrapper"}
    graph = instrumented(build_nested(), client, agent_roles=roles)
    assert graph.invoke({"item_id": "N-1", "status": "new"})["status"] == "done"
    assert step_rows(client) == [
        ("pre", 1, 3, 2, "model-a", pytest.approx(cost_a(3, 2))),
        ("sub/inner_a", 1, 4, 5, "model-a", pytest.approx(cost_a(4, 5))),
        ("sub/deep/leaf", 1, 2, 1, "model-b", pytest.approx(cost_b(2, 1))),
        ("sub/deep", 2, 0, 0, None, 0.0),
        ("sub", 2, 0, 0, None, 0.0),
        ("post", 3, 0, 0, None, 0.0),
    ]
    assert transitions(client) == [
        ("new", "pre_done", "pre"),
        ("pre_done", "inner_done", "sub/inner_a"),
        ("inner_done", "leaf_done", "sub/deep/leaf"),
        ("leaf_done", "done", "post"),
    ]
    assert [e.agent_role for e in client.named("step_completed")] == [
        None,
        "inner-role",
        "leaf-role",  # an unqualified entry matches the node at any depth
        None,
        "wrapper",
        None,
    ]
    (done,) = client.payloads("run_completed")
    assert (done["steps"], done["tokens_in"], done["tokens_out"]) == (6, 9, 8)
    assert len(client.named("run_started")) == 1
    assert handler_of(graph).live_runs == 0


def test_plain_edge_fan_out_charges_each_branch_its_own_calls() -> None:
    client = RecordingClient()
    graph = instrumented(build_fanout_edges(), client)
    for n in range(10):  # the branches run in parallel threads: repeat to shake out races
        graph.invoke({"item_id": f"F-{n}", "status": "new"})
    for run_id, events in client.by_run().items():
        rows = step_rows(client, run_id)
        branch_rows = sorted(rows[1:3])
        assert rows[0] == ("split", 1, 0, 0, None, 0.0)
        assert branch_rows == [
            ("left", 2, 6, 6, "model-a,model-b", pytest.approx(cost_a(3, 2) + cost_b(3, 4))),
            ("right", 2, 8, 1, "model-a", pytest.approx(cost_a(8, 1))),
        ]
        assert rows[3] == ("join", 3, 0, 0, None, 0.0)
        assert len({e.item_id for e in events}) == 1
        assert transitions(client, run_id) == [
            ("new", "split", "split"),
            ("split", "joined", "join"),
        ]
    assert len(client.named("run_completed")) == 10


def test_send_fan_out_charges_each_worker_its_own_call() -> None:
    topics = ["a", "b c", "d e f", "g h i j", "k l m n o", "p q r s t u"]
    client = RecordingClient()
    graph = instrumented(build_pipeline(), client, agent_roles=PIPELINE_ROLES)
    graph.invoke({**NEW, "topics": topics, "rounds": 1})
    research = [r for r in step_rows(client) if r[0] == "research"]
    assert sorted(r[2:4] for r in research) == [(1 + n, 2 + n) for n in range(1, 7)]
    assert_pipeline_run(client, only_run(client), "ITEM-1", topics=topics, rounds=1)
    # Six branches of one step are six first attempts, not one node retried five times.
    payloads = client.payloads("step_completed")
    assert [p["attempt"] for p in payloads if p["node"] == "research"] == [1] * 6


# --- interrupts, errors, retries, cancellation -------------------------------------------


def test_an_interrupt_is_not_an_error_and_the_resume_is_a_new_run_for_the_same_item() -> None:
    client = RecordingClient()
    graph = instrumented(build_interrupting(InMemorySaver()), client)
    config = {"configurable": {"thread_id": "thread-1"}}
    paused = graph.invoke({"item_id": "I-1", "status": "new"}, config=config)
    assert "__interrupt__" in paused
    first = only_run(client)
    assert step_rows(client) == [
        ("prepare", 1, 0, 0, None, 0.0),
        ("approve", 2, 3, 3, "model-a", pytest.approx(cost_a(3, 3))),
    ]
    assert [d["status"] for d in client.payloads("step_completed")] == ["ok", "ok"]
    (done,) = client.payloads("run_completed")
    assert (done["status"], done["error_type"], done["steps"]) == ("interrupted", None, 2)
    assert transitions(client) == [("new", "prepared", "prepare")]
    client.clear()

    result = graph.invoke(Command(resume="yes"), config=config)
    assert result["status"] == "finished"
    second = only_run(client)
    assert second != first
    (started,) = client.named("run_started")
    assert started.item_id == "I-1"
    assert p(started)["metadata"] == {"thread_id": "thread-1"}
    assert client.events[0] is started
    # The interrupted node runs again from its start (and calls its model again).
    assert step_rows(client) == [
        ("approve", 2, 3, 3, "model-a", pytest.approx(cost_a(3, 3))),
        ("finish", 3, 0, 0, None, 0.0),
    ]
    assert transitions(client) == [
        ("prepared", "approved", "approve"),
        ("approved", "finished", "finish"),
    ]
    assert {e.item_id for e in client.events} == {"I-1"}
    assert client.payloads("run_completed")[0]["status"] == "succeeded"
    assert handler_of(graph).live_runs == 0


def test_an_interrupt_inside_a_subgraph_resumed_with_ainvoke() -> None:
    client = RecordingClient()
    graph = instrumented(build_interrupting_in_subgraph(InMemorySaver()), client)
    config = {"configurable": {"thread_id": "thread-2"}}

    async def both() -> Any:
        await graph.ainvoke({"item_id": "J-1", "status": "new"}, config=config)
        first = only_run(client)
        assert [(d["node"], d["status"]) for d in client.payloads("step_completed")] == [
            ("review/prepare", "ok"),
            ("review/approve", "ok"),
            ("review", "ok"),
        ]
        assert client.payloads("run_completed")[0]["status"] == "interrupted"
        assert transitions(client) == [("new", "prepared", "review/prepare")]
        client.clear()
        result = await graph.ainvoke(Command(resume="no"), config=config)
        assert only_run(client) != first
        return result

    assert asyncio.run(both())["status"] == "finished"
    assert step_names(client) == ["review/approve", "review/finish", "review"]
    # The item's history goes on from where the subgraph paused, not from the outer
    # graph's stale copy of the state.
    assert transitions(client) == [
        ("prepared", "rejected", "review/approve"),
        ("rejected", "finished", "review/finish"),
    ]
    assert {e.item_id for e in client.events} == {"J-1"}
    assert client.payloads("run_completed")[0]["status"] == "succeeded"
    assert handler_of(graph).live_runs == 0


def test_a_static_breakpoint_and_its_resume_with_none() -> None:
    client = RecordingClient()
    graph = instrumented(
        build_linear(
            [("first", lambda s: {"status": "first"}), ("second", lambda s: {"status": "second"})],
            checkpointer=InMemorySaver(),
            interrupt_before=["second"],
        ),
        client,
    )
    config = {"configurable": {"thread_id": "thread-3"}}
    assert graph.invoke({"item_id": "K-1", "status": "new"}, config=config)["status"] == "first"
    assert step_names(client) == ["first"]
    assert client.payloads("run_completed")[0]["status"] == "interrupted"
    client.clear()
    assert graph.invoke(None, config=config)["status"] == "second"
    assert [(e.event_name, e.item_id) for e in client.events] == [
        ("workflow.run_started", "K-1"),
        ("workflow.step_completed", "K-1"),
        ("workflow.item_state_changed", "K-1"),
        ("workflow.run_completed", "K-1"),
    ]
    assert transitions(client) == [("first", "second", "second")]
    assert client.payloads("run_completed")[0]["status"] == "succeeded"


def test_a_failing_node_is_an_error_step_and_a_failed_run() -> None:
    client = RecordingClient()
    graph = instrumented(build_failing(), client)
    with pytest.raises(ValueError, match="bad input for B-1"):
        graph.invoke({"item_id": "B-1", "status": "new"})
    steps = client.payloads("step_completed")
    assert [(s["node"], s["status"]) for s in steps] == [("start", "ok"), ("boom", "error")]
    boom = steps[1]
    assert (boom["error_type"], boom["error_message"]) == ("ValueError", "bad input for B-1")
    assert (boom["tokens_in"], boom["tokens_out"]) == (4, 2)  # the call before the raise
    assert boom["cost_usd_est"] == pytest.approx(cost_a(4, 2))
    (done,) = client.payloads("run_completed")
    assert (done["status"], done["error_type"]) == ("failed", "ValueError")
    assert done["error_message"] == "bad input for B-1"
    assert (done["steps"], done["tokens_in"], done["tokens_out"]) == (2, 4, 2)
    assert transitions(client) == [("new", "started", "start")]
    assert handler_of(graph).live_runs == 0


def test_each_retry_attempt_is_a_step_and_failed_attempts_are_errors() -> None:
    client = RecordingClient()
    graph = instrumented(build_retrying(failures=2), client)
    assert graph.invoke({"item_id": "R-1", "status": "new"})["status"] == "fetched"
    steps = client.payloads("step_completed")
    assert [(s["node"], s["step"], s["attempt"], s["status"], s["error_type"]) for s in steps] == [
        ("flaky", 1, 1, "error", "ConnectionError"),
        ("flaky", 1, 2, "error", "ConnectionError"),
        ("flaky", 1, 3, "ok", None),
    ]
    assert [s["error_message"] for s in steps] == ["attempt 1 failed", "attempt 2 failed", None]
    assert [(s["tokens_in"], s["tokens_out"]) for s in steps] == [(4, 1)] * 3
    (done,) = client.payloads("run_completed")
    assert (done["status"], done["steps"], done["tokens_in"], done["tokens_out"]) == (
        "succeeded",
        3,
        12,
        3,
    )
    assert done["cost_usd_est"] == pytest.approx(3 * cost_a(4, 1))
    assert transitions(client) == [("new", "fetched", "flaky")]


def test_retries_exhausted_fail_the_run() -> None:
    client = RecordingClient()
    graph = instrumented(build_retrying(failures=5), client)
    with pytest.raises(ConnectionError, match="attempt 3 failed"):
        graph.invoke({"item_id": "R-2", "status": "new"})
    assert [d["status"] for d in client.payloads("step_completed")] == ["error"] * 3
    (done,) = client.payloads("run_completed")
    assert (done["status"], done["error_type"], done["steps"]) == ("failed", "ConnectionError", 3)
    assert client.named("item_state_changed") == []


def test_breaking_out_of_stream_cancels_the_run_and_leaks_nothing() -> None:
    client = RecordingClient()
    graph = instrumented(build_pipeline(), client)
    seen = []
    for chunk in graph.stream(NEW, stream_mode="updates"):
        seen.append(next(iter(chunk)))
        if seen[-1] == "plan":
            break
    assert seen == ["triage", "plan"]
    assert step_names(client) == ["triage", "plan"]
    (done,) = client.payloads("run_completed")
    assert (done["status"], done["steps"]) == ("cancelled", 2)
    assert (done["tokens_in"], done["tokens_out"]) == (7, 3)
    assert handler_of(graph).live_runs == 0
    # The handler goes on working for the next run.
    client.clear()
    graph.invoke(NEW)
    assert_pipeline_run(client, only_run(client), "ITEM-1", roles={})


def test_a_cancelled_astream_leaves_no_phantom_run_behind() -> None:
    """A sync node keeps running in its thread after the async consumer walks away; what
    it starts afterwards must not look like a new graph invocation."""
    slow_started = threading.Event()
    release = threading.Event()
    finished = threading.Event()
    llm = FakeChatModel(model="model-a", text="late")

    def fast(state: Any) -> dict[str, Any]:
        assert slow_started.wait(5)  # the slow branch is running when the consumer leaves
        return {"answer": "fast"}

    def slow(state: Any) -> dict[str, Any]:
        slow_started.set()
        release.wait(5)
        try:
            RunnableLambda(lambda x: x).invoke(1)  # a traced child run, after the cancel
            llm.invoke("too late now")
            return {"status": "slow"}
        finally:
            finished.set()

    builder = StateGraph(SimpleState)
    builder.add_node("fast", fast)
    builder.add_node("slow", slow)
    builder.add_edge(START, "fast")
    builder.add_edge(START, "slow")
    client = RecordingClient()
    graph = instrumented(builder.compile(), client)

    async def consume() -> list[Any]:
        seen = []
        stream = graph.astream(NEW, stream_mode="updates")
        async for chunk in stream:
            seen.append(chunk)
            break
        await stream.aclose()
        release.set()  # now let the abandoned node go on
        assert await asyncio.to_thread(finished.wait, 5)
        return seen

    assert asyncio.run(consume()) == [{"fast": {"answer": "fast"}}]
    run_id = only_run(client)  # no second run_started/run_completed
    assert len(client.named("run_started")) == 1
    (done,) = client.payloads("run_completed", run_id)
    assert done["status"] == "cancelled"
    slow_steps = [d for d in client.payloads("step_completed") if d["node"] == "slow"]
    assert [d["status"] for d in slow_steps] == ["error"]
    assert slow_steps[0]["error_type"] == "CancelledError"
    assert handler_of(graph).live_runs == 0


# --- state changes -------------------------------------------------------------------------


def test_state_changes_through_command_updates_and_no_event_when_unchanged() -> None:
    client = RecordingClient()
    graph = instrumented(build_commands(), client)
    result = graph.invoke({"item_id": "C-1", "status": "new"})
    assert result["status"] == "worked"
    assert step_names(client) == ["route", "work", "close", "same"]
    assert transitions(client) == [("new", "routed", "route"), ("routed", "worked", "work")]


def test_a_pydantic_state_with_an_enum_status() -> None:
    client = RecordingClient()
    graph = instrumented(build_pydantic(), client)
    result = graph.invoke({"item_id": "P-1"})
    assert result["status"] is Status.CLOSED
    assert {e.item_id for e in client.events} == {"P-1"}
    assert step_names(client) == ["open", "note", "close"]
    assert transitions(client) == [("new", "open", "open"), ("open", "closed", "close")]


def test_a_command_to_the_parent_graph_is_a_normal_exit_with_its_update() -> None:
    client = RecordingClient()
    graph = instrumented(build_parent_command(), client)
    assert graph.invoke({"item_id": "Q-1", "status": "new"})["status"] == "escalated"
    steps = client.payloads("step_completed")
    assert [(s["node"], s["status"]) for s in steps] == [
        ("sub/check", "ok"),
        ("sub", "ok"),
        ("escalate", "ok"),
    ]
    assert transitions(client) == [
        ("new", "escalating", "sub/check"),
        ("escalating", "escalated", "escalate"),
    ]
    assert client.payloads("run_completed")[0]["status"] == "succeeded"


def test_an_item_without_an_id_gets_steps_but_no_state_changes() -> None:
    client = RecordingClient()
    graph = instrumented(build_linear([("a", lambda s: {"status": "done"})]), client)
    graph.invoke({"status": "new"})
    assert [e.event_name for e in client.events] == [
        "workflow.run_started",
        "workflow.step_completed",
        "workflow.run_completed",
    ]
    assert {e.item_id for e in client.events} == {None}


# --- attaching, sharing, concurrency ---------------------------------------------------------


def test_the_same_handler_passed_twice_does_not_double_events() -> None:
    client = RecordingClient()
    graph = instrumented(build_pipeline(), client, agent_roles=PIPELINE_ROLES)
    handler = handler_of(graph)
    graph.invoke(NEW, config={"callbacks": [handler]})
    assert_pipeline_run(client, only_run(client), "ITEM-1")
    assert handler.live_runs == 0


def test_instrument_leaves_the_original_graph_alone_and_checks_its_arguments() -> None:
    client = RecordingClient()
    original = build_pipeline()
    graph = instrumented(original, client)
    assert graph is not original
    assert not (original.config or {}).get("callbacks")
    original.invoke(NEW)
    assert client.events == []
    with pytest.raises(ValueError, match="workflow_name"):
        instrument(original, workflow_name="  ")
    with pytest.raises(ValueError, match="state_key"):
        instrument(original, workflow_name=WF, state_key="")
    with pytest.raises(TypeError, match="compile"):
        instrument(StateGraph(dict), workflow_name=WF)
    with pytest.raises(TypeError, match="compiled LangGraph graph"):
        instrument(object(), workflow_name=WF)


ITEMS = [(f"ITEM-{n:02d}", list(DEFAULT_TOPICS[: 1 + n % 3]), 1 + (n // 3) % 3) for n in range(20)]


@pytest.mark.parametrize("async_nodes", [False, True], ids=["sync-nodes", "async-nodes"])
def test_twenty_concurrent_ainvokes_share_one_handler_without_mixing(async_nodes: bool) -> None:
    client = RecordingClient()
    graph = instrumented(
        build_pipeline(async_nodes=async_nodes), client, agent_roles=PIPELINE_ROLES
    )

    async def main() -> list[Any]:
        return await asyncio.gather(
            *[
                graph.ainvoke({"item_id": item, "status": "new", "topics": t, "rounds": r})
                for item, t, r in ITEMS
            ]
        )

    results = asyncio.run(main())
    assert [r["item_id"] for r in results] == [item for item, _, _ in ITEMS]
    check_concurrent_runs(client)
    assert handler_of(graph).live_runs == 0


def test_one_handler_shared_by_threads() -> None:
    client = RecordingClient()
    graph = instrumented(build_pipeline(), client, agent_roles=PIPELINE_ROLES)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(
            pool.map(
                lambda it: graph.invoke(
                    {"item_id": it[0], "status": "new", "topics": it[1], "rounds": it[2]}
                ),
                ITEMS,
            )
        )
    check_concurrent_runs(client)
    assert handler_of(graph).live_runs == 0


def check_concurrent_runs(client: RecordingClient) -> None:
    runs = client.by_run()
    assert len(runs) == 20
    item_of_run: dict[str | None, str | None] = {}
    for run_id, events in runs.items():
        items = {e.item_id for e in events}
        assert len(items) == 1, items
        item_of_run[run_id] = items.pop()
    assert sorted(item_of_run.values()) == sorted(item for item, _, _ in ITEMS)  # type: ignore[type-var]
    spec = {item: (topics, rounds) for item, topics, rounds in ITEMS}
    for run_id, item in item_of_run.items():
        assert run_id is not None
        assert item is not None
        topics, rounds = spec[item]
        assert_pipeline_run(client, run_id, item, topics=topics, rounds=rounds)


# --- the handler never breaks the graph ---------------------------------------------------------


def handler_errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == HANDLER_LOG and r.levelno >= logging.ERROR]


def no_langchain_callback_warnings(caplog: pytest.LogCaptureFixture) -> None:
    # Had an exception escaped the handler, LangChain would have logged this itself.
    assert not [r for r in caplog.records if "callback" in r.getMessage().lower()]


def two_steps() -> Any:
    return build_linear([("keep", lambda s: {"status": s["status"]}), ("finish", _finish)])


def _finish(state: Any) -> dict[str, Any]:
    return {"status": "done"}


def test_an_overlong_item_id_is_cut_and_an_object_status_is_not_tracked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = RecordingClient()
    graph = instrumented(two_steps(), client)
    result = graph.invoke({"item_id": "x" * 500, "status": object()})
    assert result["status"] == "done"
    [item_id] = {e.item_id for e in client.events}
    assert item_id is not None
    assert len(item_id) == 200
    assert item_id.startswith("x" * 183 + "~")
    # An object has no stable text: the first known state is "done", from nothing.
    assert transitions(client) == [(None, "done", "finish")]
    assert handler_errors(caplog) == []


def test_nul_characters_in_state_values_are_replaced_not_fatal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = RecordingClient()
    graph = instrumented(two_steps(), client)
    with caplog.at_level(logging.WARNING):
        result = graph.invoke({"item_id": "bad\x00id", "status": "bad\x00state"})
    assert result["status"] == "done"
    assert {e.item_id for e in client.events} == {"bad\ufffdid"}
    assert transitions(client) == [("bad\ufffdstate", "done", "finish")]
    assert handler_errors(caplog) == []
    assert handler_of(graph).live_runs == 0


def test_a_client_whose_emit_raises_does_not_change_the_result(
    caplog: pytest.LogCaptureFixture,
) -> None:
    expected = build_pipeline().invoke(NEW)
    client = RecordingClient(fail=RuntimeError("queue is broken"))
    graph = instrumented(build_pipeline(), client)
    with caplog.at_level(logging.WARNING):
        result = graph.invoke(NEW)
    assert result["status"] == expected["status"]
    assert sorted(result["notes"]) == sorted(expected["notes"])
    assert result["revisions"] == expected["revisions"]
    errors = handler_errors(caplog)
    # every emit raised: run_started, 9 steps, run_completed (state changes follow a step
    # in the same callback and are skipped once its emit raised)
    assert len(errors) == 11
    for record in errors:
        assert record.exc_info is not None
        assert isinstance(record.exc_info[1], RuntimeError)
        assert "wdp LangGraph instrumentation failed" in record.getMessage()
    assert Counter(e.event_name for e in client.events) == {
        "workflow.run_started": 1,
        "workflow.step_completed": 9,
        "workflow.run_completed": 1,
    }
    assert handler_of(graph).live_runs == 0
    no_langchain_callback_warnings(caplog)


# --- no network I/O on the graph's thread ---------------------------------------------------------


class TimedClient(TelemetryClient):
    """The real queueing client; records where and how long each emit took, and what."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.calls: list[tuple[int, float, str]] = []

    def emit(self, event: EventBase | DeferredEvent | DeferredWork) -> None:
        started = time.perf_counter()
        super().emit(event)
        kind = "work" if isinstance(event, DeferredWork) else "event"
        self.calls.append((threading.get_ident(), time.perf_counter() - started, kind))


@pytest.fixture
def black_hole() -> Iterator[str]:
    """An endpoint that accepts connections and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


def test_emits_queue_on_the_graph_thread_while_the_endpoint_hangs(
    black_hole: str, tmp_path: Path
) -> None:
    client = TimedClient(
        endpoint=black_hole,
        api_key="k",
        spool_dir=tmp_path / "spool",
        batch_size=1,  # wake the sender at once: it is stuck in HTTP while the graph runs
        timeout_s=3.0,
        max_retries=0,
    )
    try:
        llm = FakeChatModel(model="model-a", text="fine")

        def work(state: Any) -> dict[str, Any]:
            llm.invoke("do the work")
            return {"status": "worked"}

        graph = instrument(
            build_linear([("a", work), ("b", _finish)]), workflow_name=WF, client=client
        )
        started = time.perf_counter()
        for n in range(5):
            graph.invoke({"item_id": f"H-{n}", "status": "new"})
        elapsed = time.perf_counter() - started
        # Waiting on the endpoint would take 3 s (its timeout) per send.
        assert elapsed < 2.5, f"5 runs took {elapsed:.2f}s behind a hanging endpoint"
        # The graph's thread only queued the handler's work, and never waited on it...
        here = [(d, kind) for thread, d, kind in client.calls if thread == threading.get_ident()]
        assert here
        assert {kind for _, kind in here} == {"work"}
        assert max(d for d, _ in here) < 0.5
        # ... which the senders ran, stuck in HTTP as they are: 5 x (run_started, 2
        # steps, 2 state changes, run_completed), every one queued by a sender thread.
        deadline = time.monotonic() + 10
        while sum(kind == "event" for _, _, kind in client.calls) < 30:
            assert time.monotonic() < deadline, client.calls
            time.sleep(0.01)
        events = [thread for thread, _, kind in client.calls if kind == "event"]
        assert len(events) == 30
        assert threading.get_ident() not in events
        assert client.stats().sent == 0
    finally:
        client.shutdown(timeout=0.1)
