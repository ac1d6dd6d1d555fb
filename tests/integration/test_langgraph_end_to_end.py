"""Acceptance path of the LangGraph instrumentation, with real parts end to end.

Real: the LangGraph graphs (``tests/support/langgraph_graphs.py``), the handler, the
SDK's ``TelemetryClient`` (queue, sender thread, gzip batches over HTTP), the ingest API
running as a subprocess on loopback, and a migrated Postgres; the assertions read
``telemetry.workflow_events`` back. Only the chat model is a stand-in (``FakeChatModel``,
tokens = words), so token sums and costs are known exactly.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from sdk.langgraph import instrument
from sdk.langgraph.fake import FakeChatModel
from sdk.prices import CallTokens, cost
from sdk.prices.genai import GENAI_SOURCE, SEED_MANUAL, genai_rows
from sdk.prices.repository import insert_prices, load_book
from sdk.telemetry import TelemetryClient
from sdk.usage.aggregation import aggregate_day
from tests.support.langgraph_graphs import (
    DEFAULT_TOPICS,
    PIPELINE_ROLES,
    PRICES,
    SimpleState,
    build_failing,
    build_linear,
    build_pipeline,
    cost_a,
    pipeline_steps,
    pipeline_transitions,
)
from tests.support.servers import TEST_API_KEYS, ApiServer


@pytest.fixture
def client(api_server: ApiServer, tmp_path: Path) -> Iterator[TelemetryClient]:
    telemetry = TelemetryClient(
        endpoint=api_server.base_url,
        api_key=TEST_API_KEYS[0],
        spool_dir=tmp_path / "spool",
        flush_interval_s=0.1,
        retry_base_s=0.05,
        retry_max_s=0.5,
        max_retries=3,
        timeout_s=5.0,
    )
    yield telemetry
    telemetry.shutdown(timeout=5)


def delivered(client: TelemetryClient) -> None:
    assert client.flush(timeout=30), client.stats()
    stats = client.stats()
    assert (stats.rejected, stats.dropped) == (0, 0), stats


def rows(db_url: str, workflow_name: str) -> list[dict[str, Any]]:
    with psycopg.connect(db_url) as conn:
        cursor = conn.execute(
            "SELECT event_name, event_version, ts, run_id, item_id, workflow_name, agent_role, "
            "payload "
            "FROM telemetry.workflow_events WHERE workflow_name = %s ORDER BY ts, event_id",
            [workflow_name],
        )
        columns = [c.name for c in cursor.description or []]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def of(found: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [r for r in found if r["event_name"] == f"workflow.{name}"]


def step_tuples(found: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted(
        (
            r["payload"]["step"],
            r["payload"]["node"],
            r["payload"]["tokens_in"],
            r["payload"]["tokens_out"],
            r["payload"].get("model"),
            r["payload"]["cost_usd_est"],
        )
        for r in of(found, "step_completed")
    )


def expected_tuples(topics: list[str] | tuple[str, ...], rounds: int) -> list[tuple[Any, ...]]:
    return sorted(
        (step, node, tin, tout, model, pytest.approx(cost, rel=1e-9, abs=1e-15))
        for node, step, tin, tout, model, cost in pipeline_steps(topics, rounds)
    )


def pipeline(workflow: str, client: TelemetryClient) -> Any:
    """The realistic test graph, instrumented with the real client."""
    return instrument(
        build_pipeline(),
        workflow_name=workflow,
        agent_roles=PIPELINE_ROLES,
        prices=PRICES,
        client=client,
    )


def test_a_pipeline_run_with_a_loop_and_a_fan_out_lands_in_postgres(
    client: TelemetryClient, migrated_db_url: str
) -> None:
    workflow = f"lg-e2e-{uuid.uuid4().hex[:8]}"
    graph = pipeline(workflow, client)
    result = graph.invoke({"item_id": "ITEM-E2E", "status": "new"})
    assert result["status"] == "approved"
    delivered(client)

    found = rows(migrated_db_url, workflow)
    assert Counter(r["event_name"] for r in found) == {
        "workflow.run_started": 1,
        "workflow.step_completed": 9,
        "workflow.item_state_changed": 6,
        "workflow.run_completed": 1,
    }
    assert len({r["run_id"] for r in found}) == 1
    assert {r["item_id"] for r in found} == {"ITEM-E2E"}

    assert step_tuples(found) == expected_tuples(DEFAULT_TOPICS, 2)
    for row in of(found, "step_completed"):
        payload = row["payload"]
        assert payload["status"] == "ok"
        assert payload["cost_unknown"] is False
        assert payload["duration_ms"] >= 0
        assert row["agent_role"] == PIPELINE_ROLES.get(payload["node"])

    assert [
        (r["payload"]["from_state"], r["payload"]["to_state"], r["payload"]["node"])
        for r in of(found, "item_state_changed")
    ] == pipeline_transitions(2)

    (started,) = of(found, "run_started")
    assert started["payload"]["trigger"] == "langgraph"
    assert found[0] is started  # its ts is the run's start, before every step
    (done,) = of(found, "run_completed")
    assert found[-1] is done
    payload = done["payload"]
    assert (payload["status"], payload["steps"]) == ("succeeded", 9)
    assert (payload["tokens_in"], payload["tokens_out"]) == (35, 30)
    assert payload["cost_usd_est"] == pytest.approx(178.2e-6, rel=1e-9)
    assert payload["cost_unknown"] is False


def test_a_failing_graph_lands_as_an_error_step_and_a_failed_run(
    client: TelemetryClient, migrated_db_url: str
) -> None:
    workflow = f"lg-e2e-fail-{uuid.uuid4().hex[:8]}"
    graph = instrument(build_failing(), workflow_name=workflow, prices=PRICES, client=client)
    with pytest.raises(ValueError, match="bad input for FAIL-1"):
        graph.invoke({"item_id": "FAIL-1", "status": "new"})
    delivered(client)

    found = rows(migrated_db_url, workflow)
    assert [r["event_name"] for r in found] == [
        "workflow.run_started",
        "workflow.step_completed",
        "workflow.item_state_changed",
        "workflow.step_completed",
        "workflow.run_completed",
    ]
    start, boom = (r["payload"] for r in of(found, "step_completed"))
    assert (start["node"], start["status"]) == ("start", "ok")
    assert (boom["node"], boom["status"], boom["error_type"]) == ("boom", "error", "ValueError")
    assert boom["error_message"] == "bad input for FAIL-1"
    assert (boom["tokens_in"], boom["tokens_out"]) == (4, 2)
    assert boom["cost_usd_est"] == pytest.approx(cost_a(4, 2), rel=1e-9)
    (done,) = of(found, "run_completed")
    assert done["payload"]["status"] == "failed"
    assert done["payload"]["error_type"] == "ValueError"
    assert done["payload"]["steps"] == 2
    assert {r["item_id"] for r in found} == {"FAIL-1"}


def test_twenty_concurrent_items_keep_their_own_run_and_item_ids(
    client: TelemetryClient, migrated_db_url: str
) -> None:
    workflow = f"lg-e2e-many-{uuid.uuid4().hex[:8]}"
    graph = pipeline(workflow, client)
    items = {
        f"ITEM-{n:02d}": (list(DEFAULT_TOPICS[: 1 + n % 3]), 1 + (n // 3) % 3) for n in range(20)
    }

    async def main() -> list[Any]:
        return await asyncio.gather(
            *[
                graph.ainvoke({"item_id": item, "status": "new", "topics": t, "rounds": r})
                for item, (t, r) in items.items()
            ]
        )

    results = asyncio.run(main())
    assert [r["item_id"] for r in results] == list(items)
    delivered(client)

    found = rows(migrated_db_url, workflow)
    by_run: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in found:
        by_run[row["run_id"]].append(row)
    assert len(by_run) == 20
    run_of_item: dict[str, str] = {}
    for run_id, run_rows in by_run.items():
        run_items = {r["item_id"] for r in run_rows}
        assert len(run_items) == 1, (run_id, run_items)  # each run_id -> exactly one item
        run_of_item[run_items.pop()] = run_id
    assert sorted(run_of_item) == sorted(items)  # and each item -> exactly one run

    for item, (topics, rounds) in items.items():
        run_rows = by_run[run_of_item[item]]
        transitions = pipeline_transitions(rounds)
        assert Counter(r["event_name"] for r in run_rows) == {
            "workflow.run_started": 1,
            "workflow.step_completed": 2 + len(topics) + 2 * rounds,
            "workflow.item_state_changed": len(transitions),
            "workflow.run_completed": 1,
        }
        assert step_tuples(run_rows) == expected_tuples(topics, rounds)
        assert [
            (r["payload"]["from_state"], r["payload"]["to_state"], r["payload"]["node"])
            for r in of(run_rows, "item_state_changed")
        ] == transitions
        (done,) = of(run_rows, "run_completed")
        steps = pipeline_steps(topics, rounds)
        assert done["payload"]["status"] == "succeeded"
        assert done["payload"]["steps"] == len(steps)
        assert done["payload"]["tokens_in"] == sum(s[2] for s in steps)
        assert done["payload"]["tokens_out"] == sum(s[3] for s in steps)
    assert len(found) == client.stats().sent


def test_each_call_lands_in_postgres_and_the_platform_prices_it_as_the_handler_estimated(
    client: TelemetryClient, migrated_db_url: str, engine: sa.Engine
) -> None:
    """The same call, priced twice: by the handler on the graph's thread (bundled
    genai-prices data), and as the platform does - the price rows synced into
    telemetry.model_prices, read back as a book, applied to the stored call."""
    workflow = f"lg-e2e-calls-{uuid.uuid4().hex[:8]}"
    models = {
        "cached": (
            FakeChatModel(model="gpt-4o-mini", provider="openai", cached_input_tokens=8),
            30,
        ),
        "tiered": (
            FakeChatModel(
                model="claude-sonnet-4-5",
                provider="anthropic",
                cached_input_tokens=50_000,
                cache_write_tokens=1_000,
            ),
            200_001,
        ),
        "reasoning": (
            FakeChatModel(model="o3-mini", provider="openai", reasoning_tokens=120),
            12,
        ),
        "reported": (
            FakeChatModel(model="openai/gpt-4o", provider="openrouter", reported_cost=0.0031),
            5,
        ),
    }

    def calling(model: FakeChatModel, words: int) -> Any:
        def node(state: SimpleState) -> dict[str, Any]:
            model.invoke(" ".join(["w"] * words))
            return {}

        return node

    graph = build_linear([(name, calling(*spec)) for name, spec in models.items()])
    instrument(graph, workflow_name=workflow, client=client).invoke(
        {"item_id": "CALLS-1", "status": "new"}
    )
    delivered(client)

    with engine.begin() as conn:
        stored = insert_prices(conn, [*genai_rows().rows, *SEED_MANUAL])
    with engine.connect() as conn:
        book = load_book(conn)
    assert len(book.rows) == len(stored)

    steps = of(rows(migrated_db_url, workflow), "step_completed")
    assert [r["payload"]["node"] for r in steps] == list(models)
    for row in steps:
        assert row["event_version"] == 2
        payload = row["payload"]
        (call,) = payload["calls"]
        if call["cost_usd_reported"] is not None:
            platform = Decimal(repr(call["cost_usd_reported"]))
        else:
            price = book.resolve(call["model"], call["provider"], row["ts"].astimezone(UTC).date())
            assert price is not None
            assert price.source == GENAI_SOURCE
            tokens = CallTokens(
                input=call["tokens_in"],
                output=call["tokens_out"],
                cache_read=call["tokens_cached_in"],
                cache_write=call["tokens_cache_write"],
                reasoning=call["tokens_reasoning"],
            )
            platform = cost(price.price, tokens)
        assert payload["cost_usd_est"] == float(platform), payload["node"]
        assert payload["cost_unknown"] is False
    by_node = {r["payload"]["node"]: r["payload"]["calls"][0] for r in steps}
    assert by_node["cached"]["tokens_cached_in"] == 8
    assert (by_node["tiered"]["tokens_in"], by_node["tiered"]["tokens_cache_write"]) == (
        200_001,
        1_000,
    )
    assert by_node["reasoning"]["tokens_reasoning"] == 120
    assert by_node["reported"]["cost_usd_reported"] == 0.0031

    # And the platform's own aggregation of the day (sdk.usage) says the same per node.
    day = steps[0]["ts"].astimezone(UTC).date()
    with engine.begin() as conn:
        aggregate_day(conn, day)
    with engine.connect() as conn:
        usage = conn.execute(
            sa.text(
                "SELECT node, cost_usd, cost_source FROM telemetry.daily_model_usage "
                "WHERE day = :day AND workflow_name = :wf"
            ),
            {"day": day, "wf": workflow},
        ).all()
    estimated = {r["payload"]["node"]: r["payload"]["cost_usd_est"] for r in steps}
    assert {node: float(usd) for node, usd, _ in usage} == estimated
    assert {node: source for node, _, source in usage} == {
        "cached": "computed",
        "tiered": "computed",
        "reasoning": "computed",
        "reported": "reported",
    }
