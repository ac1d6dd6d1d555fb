"""Run N work items through the instrumented example graph, concurrently.

    python -m examples.orchestrator.run 5    # from the repository root; or `wdp demo`

Every item is one graph invocation with its own run id; all of them share one compiled,
instrumented graph (and so one callback handler).
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from examples.orchestrator import script
from examples.orchestrator.graph import (
    AGENT_ROLES,
    PRICES,
    WORKFLOW_NAME,
    Deps,
    ItemState,
    build_graph,
)
from sdk.artifacts import ArtifactService
from sdk.langgraph import instrument
from sdk.telemetry.client import TelemetryClient


@dataclass(frozen=True)
class ItemResult:
    number: int
    item_id: str
    title: str
    run_id: str
    status: str
    drafts: int
    artifact_id: str | None
    artifact_version: int | None
    score: float | None


@dataclass(frozen=True)
class RunSummary:
    workflow_name: str
    items: list[ItemResult]

    @property
    def run_ids(self) -> list[str]:
        return [i.run_id for i in self.items]

    @property
    def artifact_ids(self) -> list[str]:
        return [i.artifact_id for i in self.items if i.artifact_id is not None]

    def expected_events(self) -> dict[str, int]:
        """Events per name these items must have produced (see script.py for the rules)."""
        runs = len(self.items)
        drafts = sum(i.drafts for i in self.items)
        return {
            "workflow.run_started": runs,
            "workflow.run_completed": runs,
            # triage, plan, one research branch per topic, then draft + review per draft
            "workflow.step_completed": sum(
                2 + len(script.research_topics(i.number)) + 2 * i.drafts for i in self.items
            ),
            # new→triaged→planned→researched, then →drafted and a verdict per draft
            "workflow.item_state_changed": 3 * runs + 2 * drafts,
            "workflow.artifact_created": drafts,
            "learning.evaluation_scored": drafts,
            "learning.feedback_received": drafts,
        }


async def run_items(
    n: int,
    *,
    artifacts: ArtifactService,
    client: TelemetryClient | None = None,
    batch: str | None = None,
    concurrency: int = 8,
    on_item_done: Callable[[ItemResult], None] | None = None,
) -> RunSummary:
    """Run items 1…n (at most ``concurrency`` at a time); events go to ``client``
    (the default client when None). Item ids are ``demo-<batch>-<n>``, with a random
    ``batch`` unless given. Raises the first failure, after cancelling the other items.
    """
    if n < 1:
        raise ValueError("n must be at least 1")
    graph = instrument(
        build_graph(),
        workflow_name=WORKFLOW_NAME,
        agent_roles=AGENT_ROLES,
        prices=PRICES,
        client=client,
    )
    batch = batch or uuid.uuid4().hex[:6]
    gate = asyncio.Semaphore(concurrency)

    async def one(number: int) -> ItemResult:
        async with gate:
            run_id = str(uuid.uuid4())
            item_id = f"demo-{batch}-{number:03d}"
            start: ItemState = {
                "item_id": item_id,
                "number": number,
                "title": script.ticket(number).title,
                "status": "new",
            }
            final = await graph.ainvoke(
                start,
                config={"metadata": {"run_id": run_id}, "run_name": WORKFLOW_NAME},
                context=Deps(artifacts=artifacts, run_id=run_id, client=client),
            )
        result = ItemResult(
            number=number,
            item_id=item_id,
            title=start["title"],
            run_id=run_id,
            status=final["status"],
            drafts=final.get("revision", 0),
            artifact_id=final.get("artifact_id"),
            artifact_version=final.get("artifact_version"),
            score=final.get("score"),
        )
        if on_item_done is not None:
            on_item_done(result)
        return result

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(number)) for number in range(1, n + 1)]
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from None
    return RunSummary(workflow_name=WORKFLOW_NAME, items=[t.result() for t in tasks])


def main(argv: list[str]) -> None:
    from sdk.telemetry.default import flush

    n = int(argv[0]) if argv else 5
    with ArtifactService.from_settings() as artifacts:
        summary = asyncio.run(run_items(n, artifacts=artifacts))
    for item in summary.items:
        print(item.item_id, item.status, f"drafts={item.drafts}", item.artifact_id, item.run_id)
    if not flush(timeout=30):
        print("some events are not delivered yet (see the telemetry spool)", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
