"""Real LangGraph graphs and a recording telemetry client for the ``sdk.langgraph`` tests.

Every graph here is a genuine ``StateGraph`` compiled by langgraph; the only stand-in is
the chat model, :class:`sdk.langgraph.fake.FakeChatModel`, whose token counts are the
whitespace words of its prompt (in) and reply (out), so each test can compute the exact
numbers the handler must report. Prompts are fixed strings whose word counts are noted
next to them.
"""

from __future__ import annotations

import operator
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from enum import Enum
from typing import Annotated, Any, TypedDict

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, RetryPolicy, Send, interrupt
from pydantic import BaseModel

from sdk.langgraph import ModelPrice
from sdk.langgraph.fake import FakeChatModel
from sdk.telemetry.client import TelemetryClient
from sdk.telemetry.deferred import DeferredEvent, DeferredWork
from sdk.telemetry.events import EventBase

# --- the recording client ------------------------------------------------------------


class RecordingClient(TelemetryClient):
    """A real (disabled) client whose ``emit`` keeps every validated event in memory,
    with the id of the thread that emitted it. ``fail`` makes ``emit`` raise it after
    recording, to prove the handler survives a broken client."""

    def __init__(self, *, fail: Exception | None = None) -> None:
        super().__init__(disabled=True)
        self.events: list[EventBase] = []
        self.threads: list[int] = []
        self.fail = fail
        self._record_lock = threading.Lock()

    def emit(self, event: EventBase | DeferredEvent | DeferredWork) -> None:
        if isinstance(event, DeferredWork):
            event.run()  # what the sender thread would do: its events come back here
            return
        if isinstance(event, DeferredEvent):
            event = event.build()  # what the sender thread would do
        with self._record_lock:
            self.events.append(event)
            self.threads.append(threading.get_ident())
        if self.fail is not None:
            raise self.fail

    def emit_batch(self, events: Any) -> None:
        for event in events:
            self.emit(event)

    def named(self, suffix: str, run_id: str | None = None) -> list[EventBase]:
        """Events ``workflow.<suffix>`` in emission order (of one run if given)."""
        return [
            e
            for e in self.events
            if e.event_name == f"workflow.{suffix}" and (run_id is None or e.run_id == run_id)
        ]

    def payloads(self, suffix: str, run_id: str | None = None) -> list[dict[str, Any]]:
        return [p(e) for e in self.named(suffix, run_id)]

    def by_run(self) -> dict[str | None, list[EventBase]]:
        runs: dict[str | None, list[EventBase]] = defaultdict(list)
        for event in self.events:
            runs[event.run_id].append(event)
        return dict(runs)

    def clear(self) -> None:
        with self._record_lock:
            self.events.clear()
            self.threads.clear()


def p(event: EventBase) -> dict[str, Any]:
    """An event's payload as a dict."""
    payload: BaseModel = event.payload  # type: ignore[attr-defined]
    return payload.model_dump()


def transitions(client: RecordingClient, run_id: str | None = None) -> list[tuple[Any, ...]]:
    """``(from_state, to_state, node)`` of every item_state_changed, in order."""
    return [
        (d["from_state"], d["to_state"], d["node"])
        for d in client.payloads("item_state_changed", run_id)
    ]


def step_names(client: RecordingClient, run_id: str | None = None) -> list[str]:
    return [d["node"] for d in client.payloads("step_completed", run_id)]


# --- prices and models -----------------------------------------------------------------

# model-a: $1 in / $2 out per 1M tokens. model-b: $3 in / $15 out / $0.30 cached in.
PRICES: dict[str, ModelPrice] = {
    "model-a": ModelPrice.per_million(input=1.0, output=2.0),
    "model-b": ModelPrice.per_million(input=3.0, output=15.0, cached_input=0.3),
}


def cost_a(tokens_in: int, tokens_out: int) -> float:
    return (tokens_in * 1.0 + tokens_out * 2.0) / 1_000_000


def cost_b(tokens_in: int, tokens_out: int, cached: int = 0) -> float:
    return ((tokens_in - cached) * 3.0 + cached * 0.3 + tokens_out * 15.0) / 1_000_000


def _echo(prefix: str) -> Callable[[Sequence[BaseMessage]], str]:
    return lambda messages: f"{prefix} {messages[-1].content}"


# --- the realistic pipeline --------------------------------------------------------------


class PipelineState(TypedDict, total=False):
    item_id: str
    status: str
    topics: list[str]
    rounds: int
    revisions: int
    notes: Annotated[list[str], operator.add]


TRIAGE_SYSTEM = "You triage incoming work items"  # 5 words
TRIAGE_REPLY = "route to research"  # 3 words
DRAFT_REPLY = "a short draft text"  # 4 words, streamed one word per chunk
REVIEW_REPLY = "looks fine overall"  # 3 words
REVIEW_CACHED = 2
DEFAULT_TOPICS = ("pricing", "market risks", "long term growth plan")

# Per node, for a pipeline whose item id is one word:
TRIAGE_TOKENS = (5 + 2, 3)  # system prompt + "item <id>"
DRAFT_TOKENS = (5, 4)  # "write draft from <n> notes"
REVIEW_TOKENS = (4, 3)  # "review draft revision <n>"


def research_tokens(topic: str) -> tuple[int, int]:
    """``research <topic>`` in; ``found research <topic>`` out."""
    words = len(topic.split())
    return 1 + words, 2 + words


def pipeline_models() -> dict[str, FakeChatModel]:
    return {
        "triage": FakeChatModel(model="model-a", text=TRIAGE_REPLY),
        "research": FakeChatModel(model="model-a", reply=_echo("found")),
        "draft": FakeChatModel(model="model-a", text=DRAFT_REPLY),
        "review": FakeChatModel(
            model="model-b", text=REVIEW_REPLY, cached_input_tokens=REVIEW_CACHED
        ),
    }


def _triage_messages(state: PipelineState) -> list[BaseMessage]:
    return [SystemMessage(TRIAGE_SYSTEM), HumanMessage(f"item {state['item_id']}")]


def _review_status(state: PipelineState) -> str:
    return "approved" if state["revisions"] >= state.get("rounds", 2) else "needs_work"


def _dispatch(state: PipelineState) -> list[Send]:
    return [Send("research", {"topic": t}) for t in state.get("topics", DEFAULT_TOPICS)]


def _after_review(state: PipelineState) -> str:
    return END if state["status"] == "approved" else "draft"


def build_pipeline(*, async_nodes: bool = False, checkpointer: Any = None) -> Any:
    """triage -> plan -> research x len(topics) (Send) -> draft -> review, looping back to
    draft until ``revisions >= rounds`` (default 2). Draft streams its model and writes a
    custom stream event. ``async_nodes`` builds the same graph from coroutines."""
    llm = pipeline_models()
    builder = StateGraph(PipelineState)

    if async_nodes:

        async def atriage(state: PipelineState) -> dict[str, Any]:
            await llm["triage"].ainvoke(_triage_messages(state))
            return {"status": "triaged"}

        async def aplan(state: PipelineState) -> dict[str, Any]:
            return {"status": "planned"}

        async def aresearch(state: dict[str, Any]) -> dict[str, Any]:
            await llm["research"].ainvoke(f"research {state['topic']}")
            return {"notes": [state["topic"]]}

        async def adraft(state: PipelineState) -> dict[str, Any]:
            async for _ in llm["draft"].astream(f"write draft from {len(state['notes'])} notes"):
                pass
            revisions = state.get("revisions", 0) + 1
            get_stream_writer()({"draft": revisions})
            return {"status": "drafted", "revisions": revisions}

        async def areview(state: PipelineState) -> dict[str, Any]:
            await llm["review"].ainvoke(f"review draft revision {state['revisions']}")
            return {"status": _review_status(state)}

        nodes: list[tuple[str, Any]] = [
            ("triage", atriage),
            ("plan", aplan),
            ("research", aresearch),
            ("draft", adraft),
            ("review", areview),
        ]
    else:

        def triage(state: PipelineState) -> dict[str, Any]:
            llm["triage"].invoke(_triage_messages(state))
            return {"status": "triaged"}

        def plan(state: PipelineState) -> dict[str, Any]:
            return {"status": "planned"}

        def research(state: dict[str, Any]) -> dict[str, Any]:
            llm["research"].invoke(f"research {state['topic']}")
            return {"notes": [state["topic"]]}

        def draft(state: PipelineState) -> dict[str, Any]:
            for _ in llm["draft"].stream(f"write draft from {len(state['notes'])} notes"):
                pass
            revisions = state.get("revisions", 0) + 1
            get_stream_writer()({"draft": revisions})
            return {"status": "drafted", "revisions": revisions}

        def review(state: PipelineState) -> dict[str, Any]:
            llm["review"].invoke(f"review draft revision {state['revisions']}")
            return {"status": _review_status(state)}

        nodes = [
            ("triage", triage),
            ("plan", plan),
            ("research", research),
            ("draft", draft),
            ("review", review),
        ]
    for name, fn in nodes:
        builder.add_node(name, fn)
    builder.add_edge(START, "triage")
    builder.add_edge("triage", "plan")
    builder.add_conditional_edges("plan", _dispatch, ["research"])
    builder.add_edge("research", "draft")
    builder.add_edge("draft", "review")
    builder.add_conditional_edges("review", _after_review, ["draft", END])
    return builder.compile(checkpointer=checkpointer, name="pipeline")


PIPELINE_ROLES = {"triage": "triager", "research": "researcher", "review": "reviewer"}


def pipeline_steps(
    topics: Sequence[str] = DEFAULT_TOPICS, rounds: int = 2
) -> list[tuple[str, int, int, int, str | None, float]]:
    """The expected ``(node, step, tokens_in, tokens_out, model, cost)`` of every step of
    one pipeline run, research steps ordered by their topic's position."""
    steps: list[tuple[str, int, int, int, str | None, float]] = [
        ("triage", 1, *TRIAGE_TOKENS, "model-a", cost_a(*TRIAGE_TOKENS)),
        ("plan", 2, 0, 0, None, 0.0),
    ]
    for topic in topics:
        tin, tout = research_tokens(topic)
        steps.append(("research", 3, tin, tout, "model-a", cost_a(tin, tout)))
    step = 4
    for _ in range(max(rounds, 1)):
        steps.append(("draft", step, *DRAFT_TOKENS, "model-a", cost_a(*DRAFT_TOKENS)))
        steps.append(
            ("review", step + 1, *REVIEW_TOKENS, "model-b", cost_b(*REVIEW_TOKENS, REVIEW_CACHED))
        )
        step += 2
    return steps


def pipeline_transitions(rounds: int = 2) -> list[tuple[str, str, str]]:
    expected = [("new", "triaged", "triage"), ("triaged", "planned", "plan")]
    previous = "planned"
    for n in range(1, max(rounds, 1) + 1):
        verdict = "approved" if n >= rounds else "needs_work"
        expected += [(previous, "drafted", "draft"), ("drafted", verdict, "review")]
        previous = verdict
    return expected


# --- small special graphs ---------------------------------------------------------------


class SimpleState(TypedDict, total=False):
    item_id: str
    status: Any
    answer: str


def build_fanout_edges() -> Any:
    """split -> (left || right) -> join: plain multi-edge fan-out, both branches in one
    superstep. left makes two calls (model-a then model-b), right one longer call."""
    left_a = FakeChatModel(model="model-a", text="left answer")  # 2 out
    left_b = FakeChatModel(model="model-b", text="second left answer here")  # 4 out
    right_llm = FakeChatModel(model="model-a", text="one")  # 1 out

    def split(state: SimpleState) -> dict[str, Any]:
        return {"status": "split"}

    def left(state: SimpleState) -> dict[str, Any]:
        left_a.invoke("left branch prompt")  # 3 in
        left_b.invoke("and another one")  # 3 in
        return {}

    def right(state: SimpleState) -> dict[str, Any]:
        right_llm.invoke("the right branch has a much longer prompt")  # 8 in
        return {}

    def join(state: SimpleState) -> dict[str, Any]:
        return {"status": "joined"}

    builder = StateGraph(SimpleState)
    for name, fn in (("split", split), ("left", left), ("right", right), ("join", join)):
        builder.add_node(name, fn)
    builder.add_edge(START, "split")
    builder.add_edge("split", "left")
    builder.add_edge("split", "right")
    builder.add_edge(["left", "right"], "join")
    builder.add_edge("join", END)
    return builder.compile()


def build_nested() -> Any:
    """pre -> sub[inner_a -> deep[leaf]] -> post; every subgraph is a compiled graph used
    as a node, sharing the outer state schema."""
    pre_llm = FakeChatModel(model="model-a", text="pre done")  # 2 out
    inner_llm = FakeChatModel(model="model-a", text="inner reply of five words")  # 5 out
    leaf_llm = FakeChatModel(model="model-b", text="leaf")  # 1 out

    def leaf(state: SimpleState) -> dict[str, Any]:
        leaf_llm.invoke("leaf prompt")  # 2 in
        return {"status": "leaf_done"}

    deep_builder = StateGraph(SimpleState)
    deep_builder.add_node("leaf", leaf)
    deep_builder.add_edge(START, "leaf")
    deep = deep_builder.compile()

    def inner_a(state: SimpleState) -> dict[str, Any]:
        inner_llm.invoke("inner a prompt here")  # 4 in
        return {"status": "inner_done"}

    sub_builder = StateGraph(SimpleState)
    sub_builder.add_node("inner_a", inner_a)
    sub_builder.add_node("deep", deep)
    sub_builder.add_edge(START, "inner_a")
    sub_builder.add_edge("inner_a", "deep")
    sub = sub_builder.compile()

    def pre(state: SimpleState) -> dict[str, Any]:
        pre_llm.invoke("pre prompt words")  # 3 in
        return {"status": "pre_done"}

    def post(state: SimpleState) -> dict[str, Any]:
        return {"status": "done"}

    builder = StateGraph(SimpleState)
    builder.add_node("pre", pre)
    builder.add_node("sub", sub)
    builder.add_node("post", post)
    builder.add_edge(START, "pre")
    builder.add_edge("pre", "sub")
    builder.add_edge("sub", "post")
    return builder.compile()


def build_linear(
    nodes: Sequence[tuple[str, Callable[[SimpleState], Any]]],
    *,
    checkpointer: Any = None,
    interrupt_before: Sequence[str] | None = None,
) -> Any:
    """The given ``(name, fn)`` nodes in a chain."""
    builder = StateGraph(SimpleState)
    previous = START
    for name, fn in nodes:
        builder.add_node(name, fn)
        builder.add_edge(previous, name)
        previous = name
    builder.add_edge(previous, END)
    return builder.compile(
        checkpointer=checkpointer,
        interrupt_before=list(interrupt_before) if interrupt_before else None,
    )


def build_failing() -> Any:
    """start (status started) -> boom (one model-a call, then ValueError)."""
    llm = FakeChatModel(model="model-a", text="partial work")  # 2 out

    def start(state: SimpleState) -> dict[str, Any]:
        return {"status": "started"}

    def boom(state: SimpleState) -> dict[str, Any]:
        llm.invoke("try the risky thing")  # 4 in
        raise ValueError(f"bad input for {state['item_id']}")

    return build_linear([("start", start), ("boom", boom)])


def build_retrying(failures: int) -> Any:
    """``flaky`` calls model-a then raises ConnectionError on its first ``failures``
    attempts; RetryPolicy allows 3 attempts."""
    llm = FakeChatModel(model="model-a", text="ok")  # 1 out
    attempts = {"n": 0}

    def flaky(state: SimpleState) -> dict[str, Any]:
        attempts["n"] += 1
        llm.invoke("call the flaky service")  # 4 in
        if attempts["n"] <= failures:
            raise ConnectionError(f"attempt {attempts['n']} failed")
        return {"status": "fetched"}

    builder = StateGraph(SimpleState)
    builder.add_node(
        "flaky",
        flaky,
        retry_policy=RetryPolicy(
            max_attempts=3, initial_interval=0.001, jitter=False, retry_on=ConnectionError
        ),
    )
    builder.add_edge(START, "flaky")
    return builder.compile()


def build_interrupting(checkpointer: Any) -> Any:
    """prepare -> approve (model-a call, then interrupt) -> finish."""
    llm = FakeChatModel(model="model-a", text="please approve this")  # 3 out

    def prepare(state: SimpleState) -> dict[str, Any]:
        return {"status": "prepared"}

    def approve(state: SimpleState) -> dict[str, Any]:
        llm.invoke("ask a human")  # 3 in
        answer = interrupt("approve?")
        return {"status": "approved" if answer == "yes" else "rejected", "answer": answer}

    def finish(state: SimpleState) -> dict[str, Any]:
        return {"status": "finished"}

    return build_linear(
        [("prepare", prepare), ("approve", approve), ("finish", finish)], checkpointer=checkpointer
    )


def build_interrupting_in_subgraph(checkpointer: Any) -> Any:
    """The interrupting graph as the node ``review`` of an outer graph: it pauses inside
    the subgraph."""
    builder = StateGraph(SimpleState)
    builder.add_node("review", build_interrupting(None))
    builder.add_edge(START, "review")
    builder.add_edge("review", END)
    return builder.compile(checkpointer=checkpointer)


def build_commands() -> Any:
    """Nodes that route with ``Command``: route -> (dict update) work -> (list-of-tuples
    update) close -> same (returns the unchanged status)."""

    def route(state: SimpleState) -> Command[Any]:
        return Command(update={"status": "routed"}, goto="work")

    def work(state: SimpleState) -> Command[Any]:
        return Command(update=[("status", "worked")], goto="close")

    def close(state: SimpleState) -> Command[Any]:
        return Command(update={"answer": "no status here"}, goto="same")

    def same(state: SimpleState) -> dict[str, Any]:
        return {"status": state["status"]}

    builder = StateGraph(SimpleState)
    for name, fn in (("route", route), ("work", work), ("close", close), ("same", same)):
        builder.add_node(name, fn)
    builder.add_edge(START, "route")
    builder.add_edge("same", END)
    return builder.compile()


class Status(Enum):
    NEW = "new"
    OPEN = "open"
    CLOSED = "closed"


class TicketModel(BaseModel):
    item_id: str
    status: Status = Status.NEW
    note: str = ""


def build_pydantic() -> Any:
    """A pydantic BaseModel state with an Enum status: open -> note (no change) -> close."""

    def open_(state: TicketModel) -> dict[str, Any]:
        return {"status": Status.OPEN}

    def note(state: TicketModel) -> dict[str, Any]:
        return {"note": "noted", "status": state.status}

    def close(state: TicketModel) -> dict[str, Any]:
        return {"status": Status.CLOSED}

    builder = StateGraph(TicketModel)
    builder.add_node("open", open_)
    builder.add_node("note", note)
    builder.add_node("close", close)
    builder.add_edge(START, "open")
    builder.add_edge("open", "note")
    builder.add_edge("note", "close")
    builder.add_edge("close", END)
    return builder.compile()


def build_parent_command() -> Any:
    """outer: sub[check -> Command(graph=PARENT, goto="escalate")] ; escalate."""

    def check(state: SimpleState) -> Command[Any]:
        return Command(graph=Command.PARENT, goto="escalate", update={"status": "escalating"})

    sub_builder = StateGraph(SimpleState)
    sub_builder.add_node("check", check)
    sub_builder.add_edge(START, "check")
    sub = sub_builder.compile()

    def escalate(state: SimpleState) -> dict[str, Any]:
        return {"status": "escalated"}

    builder = StateGraph(SimpleState)
    builder.add_node("sub", sub)
    builder.add_node("escalate", escalate)
    builder.add_edge(START, "sub")
    builder.add_edge("escalate", END)
    return builder.compile()
