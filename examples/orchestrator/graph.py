"""The example graph: triage → plan → research (in parallel) → draft ⇄ review.

Each work item's ``status`` goes new → triaged → planned → researched → drafted →
approved, or needs_changes and back to draft. Every node calls a (fake) chat model
that reports token usage; the draft node stores each draft as a version of one
``draft`` artifact, and the review node scores it with learning events. The models'
answers come from :mod:`examples.orchestrator.script`.

Nodes get their services from the run's context (:class:`Deps`, LangGraph's
``context_schema``), never from globals, so one compiled graph serves any number of
concurrent items.
"""

from __future__ import annotations

import asyncio
import operator
import re
from dataclasses import dataclass
from typing import Annotated, Any, TypedDict

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.types import Send

from examples.orchestrator import script
from sdk.artifacts import ArtifactService, WriteResult
from sdk.langgraph import ModelPrice
from sdk.langgraph.fake import FakeChatModel
from sdk.telemetry import builders
from sdk.telemetry.client import TelemetryClient

WORKFLOW_NAME = "demo-orchestrator"
ARTIFACT_TYPE = "draft"
MAX_DRAFTS = 3

AGENT_ROLES = {
    "triage": "triager",
    "plan": "planner",
    "research": "researcher",
    "draft": "writer",
    "review": "reviewer",
}

# The fake models' names, priced so the events carry cost estimates.
SMALL, LARGE = "demo-small", "demo-large"
PRICES = {
    SMALL: ModelPrice.per_million(input=0.15, output=0.60),
    LARGE: ModelPrice.per_million(input=2.50, output=10.00),
}

triage_model = FakeChatModel(model=SMALL, reply=script.triage_reply)
plan_model = FakeChatModel(model=LARGE, reply=script.plan_reply)
research_model = FakeChatModel(model=SMALL, reply=script.research_reply)
draft_model = FakeChatModel(model=LARGE, reply=script.draft_reply)
review_model = FakeChatModel(model=SMALL, reply=script.review_reply)


def latest(_old: str, new: str) -> str:
    """Parallel research branches all report "researched": keep one."""
    return new


class Finding(TypedDict):
    topic: str
    text: str


class ItemState(TypedDict, total=False):
    item_id: str
    number: int
    title: str
    status: Annotated[str, latest]
    category: str
    priority: str
    topics: list[str]
    findings: Annotated[list[Finding], operator.add]
    revision: int
    draft: str
    artifact_id: str
    artifact_version: int
    score: float
    review_notes: str


class ResearchTask(TypedDict):
    item_id: str
    number: int
    title: str
    topic: str


@dataclass(frozen=True)
class Deps:
    """What nodes need besides the state: passed as ``context=`` to ``ainvoke``."""

    artifacts: ArtifactService
    run_id: str
    client: TelemetryClient | None = None


def _header(state: ItemState | ResearchTask) -> str:
    return f"Ticket #{state['number']}: {state['title']}"


def _line(text: str, name: str) -> str:
    match = re.search(rf"^{name}: (.+)$", text, re.MULTILINE)
    return match.group(1).strip() if match else ""


# --- nodes -------------------------------------------------------------------------------


async def triage(state: ItemState) -> dict[str, Any]:
    answer = await triage_model.ainvoke(
        [
            SystemMessage("Classify the ticket: category, priority, one-line summary."),
            HumanMessage(_header(state)),
        ]
    )
    text = str(answer.content)
    return {
        "status": "triaged",
        "category": _line(text, "category"),
        "priority": _line(text, "priority"),
    }


async def plan(state: ItemState) -> dict[str, Any]:
    answer = await plan_model.ainvoke(
        [
            SystemMessage("Plan the work: list the research topics as '- topic' lines."),
            HumanMessage(f"{_header(state)}\nCategory: {state['category']}"),
        ]
    )
    topics = re.findall(r"^- (.+)$", str(answer.content), re.MULTILINE)
    return {"status": "planned", "topics": [t.strip() for t in topics]}


def fan_out(state: ItemState) -> list[Send]:
    """One research branch per planned topic, run in parallel."""
    return [
        Send(
            "research",
            ResearchTask(
                item_id=state["item_id"], number=state["number"], title=state["title"], topic=t
            ),
        )
        for t in state["topics"]
    ]


async def research(state: ResearchTask) -> dict[str, Any]:
    answer = await research_model.ainvoke(
        [
            SystemMessage("Research one aspect of the ticket and report what you found."),
            HumanMessage(f"{_header(state)}\nTopic: {state['topic']}"),
        ]
    )
    finding = Finding(topic=state["topic"], text=str(answer.content))
    return {"status": "researched", "findings": [finding]}


async def draft(state: ItemState, runtime: Runtime[Deps]) -> dict[str, Any]:
    deps = runtime.context
    revision = state.get("revision", 0) + 1
    by_topic = {f["topic"]: f["text"] for f in state.get("findings", [])}
    findings = "\n\n".join(f"### {t}\n\n{by_topic[t]}" for t in state["topics"] if t in by_topic)
    prompt = (
        f"{_header(state)}\nRevision: {revision}\n"
        f"Reviewer notes: {state.get('review_notes') or 'none'}\n\nFindings:\n{findings}"
    )
    answer = await draft_model.ainvoke(
        [SystemMessage("Write the design note in markdown."), HumanMessage(prompt)]
    )
    text = str(answer.content)
    stored = await asyncio.to_thread(_store_draft, deps, state, text)
    builders.emit_artifact_created(
        artifact_id=stored.artifact_id,
        version=stored.version,
        type=ARTIFACT_TYPE,
        content_hash=stored.content_hash,
        size_bytes=stored.size_bytes,
        run_id=deps.run_id,
        item_id=state["item_id"],
        workflow_name=WORKFLOW_NAME,
        agent_role=AGENT_ROLES["draft"],
        client=deps.client,
    )
    return {
        "status": "drafted",
        "revision": revision,
        "draft": text,
        "artifact_id": stored.artifact_id,
        "artifact_version": stored.version,
    }


def _store_draft(deps: Deps, state: ItemState, text: str) -> WriteResult:
    """Version 1 of a new artifact, then one version per revision (blocking: a thread)."""
    artifacts = deps.artifacts
    if "artifact_id" not in state:
        stored = artifacts.write_artifact(
            type=ARTIFACT_TYPE,
            content=text,
            mime_type="text/markdown",
            tags=["demo", f"workflow={WORKFLOW_NAME}", f"area={state.get('category') or 'none'}"],
            owner_item_id=state["item_id"],
            owner_run_id=deps.run_id,
        )
    else:
        stored = artifacts.create_version(
            state["artifact_id"], content=text, mime_type="text/markdown"
        )
    artifacts.link(
        stored.artifact_id,
        stored.version,
        link_type="output",
        item_id=state["item_id"],
        run_id=deps.run_id,
        workflow_name=WORKFLOW_NAME,
    )
    return stored


async def review(state: ItemState, runtime: Runtime[Deps]) -> dict[str, Any]:
    deps = runtime.context
    answer = await review_model.ainvoke(
        [
            SystemMessage("Review the draft: score 0-1, verdict, comments."),
            HumanMessage(f"{_header(state)}\nRevision: {state['revision']}\n\n{state['draft']}"),
        ]
    )
    text = str(answer.content)
    score = float(_line(text, "score"))
    verdict = _line(text, "verdict")
    comments = _line(text, "comments")
    approved = verdict == "approved"
    common: dict[str, Any] = {
        "run_id": deps.run_id,
        "item_id": state["item_id"],
        "workflow_name": WORKFLOW_NAME,
        "agent_role": AGENT_ROLES["review"],
        "client": deps.client,
    }
    builders.emit_evaluation_scored(
        target_type="artifact",
        target_id=state["artifact_id"],
        evaluator=f"{AGENT_ROLES['review']}:{SMALL}",
        metric="draft_quality",
        score=score,
        threshold=script.APPROVAL_THRESHOLD,
        passed=approved,
        details={"version": state["artifact_version"], "revision": state["revision"]},
        **common,
    )
    builders.emit_feedback_received(
        target_type="artifact",
        target_id=state["artifact_id"],
        rating=score,
        label=verdict,
        comment=comments,
        source="agent",
        given_by=AGENT_ROLES["review"],
        **common,
    )
    return {
        "status": "approved" if approved else "needs_changes",
        "score": score,
        "review_notes": comments,
    }


def after_review(state: ItemState) -> str:
    """Back to the writer until approved; after MAX_DRAFTS, a human takes over."""
    if state["status"] == "approved" or state["revision"] >= MAX_DRAFTS:
        return END
    return "draft"


def build_graph() -> CompiledStateGraph[ItemState, Deps, ItemState, ItemState]:
    """The compiled graph, not yet instrumented (see ``run.py``)."""
    builder = StateGraph(ItemState, context_schema=Deps)
    builder.add_node("triage", triage)
    builder.add_node("plan", plan)
    builder.add_node("research", research)
    builder.add_node("draft", draft)
    builder.add_node("review", review)
    builder.add_edge(START, "triage")
    builder.add_edge("triage", "plan")
    builder.add_conditional_edges("plan", fan_out, ["research"])
    builder.add_edge("research", "draft")
    builder.add_edge("draft", "review")
    builder.add_conditional_edges("review", after_review, ["draft", END])
    return builder.compile(name=WORKFLOW_NAME)
