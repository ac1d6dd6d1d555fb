"""Daily aggregates by node, from real LangGraph runs through the real API into Postgres.

The graphs are real (fan-out by ``Send``, a loop, subgraphs two levels deep), the handler
and client are the SDK's, the ingest API is a subprocess on loopback; the chat model is
a stand-in whose tokens are words, so every figure below is computed by hand from the
graphs in ``tests/support/langgraph_graphs.py``.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sdk.db import migrate
from sdk.db.engine import create_engine
from sdk.db.partitions import list_partitions
from sdk.langgraph import instrument
from sdk.telemetry import TelemetryClient
from sdk.usage.aggregation import GROUPED_SQL, aggregate_day, day_bounds
from sdk.usage.errors import RawEventsDropped
from tests.support.langgraph_graphs import (
    PIPELINE_ROLES,
    PRICES,
    REVIEW_CACHED,
    build_nested,
    build_pipeline,
    cost_a,
)
from tests.support.raw_events import insert
from tests.support.servers import TEST_API_KEYS, ApiServer

STEP = "workflow.step_completed"


@pytest.fixture
def client(api_server: ApiServer, tmp_path: Path) -> Iterator[TelemetryClient]:
    telemetry = TelemetryClient(
        endpoint=api_server.base_url,
        api_key=TEST_API_KEYS[0],
        spool_dir=tmp_path / "spool",
        flush_interval_s=0.1,
        timeout_s=5.0,
    )
    yield telemetry
    telemetry.shutdown(timeout=5)


@pytest.fixture
def engine(migrated_db_url: str) -> Iterator[sa.Engine]:
    eng = create_engine(migrated_db_url)
    yield eng
    eng.dispose()


def delivered(client: TelemetryClient) -> None:
    assert client.flush(timeout=30), client.stats()
    assert (client.stats().rejected, client.stats().dropped) == (0, 0)


def by_node(engine: sa.Engine, workflow: str) -> dict[tuple[str, str, str], tuple[Any, ...]]:
    """Today's stored step rows of ``workflow``: (node, role, model) -> figures."""
    today = datetime.now(UTC).date()
    with engine.begin() as conn:
        aggregate_day(conn, today)
        rows = conn.execute(
            sa.text(
                "SELECT node, agent_role, model, events, distinct_runs, tokens_in, tokens_out, "
                "tokens_cached_in, cost_usd, cost_unknown_steps, errors, aggregate_version "
                "FROM telemetry.daily_event_aggregates "
                "WHERE day = :day AND workflow_name = :wf AND event_name = :step"
            ),
            {"day": today, "wf": workflow, "step": STEP},
        ).all()
    return {(r[0], r[1], r[2]): tuple(r[3:]) for r in rows}


def usd(value: float) -> Decimal:
    return Decimal(str(round(value, 10)))


def test_fan_out_and_loop_aggregate_exactly_per_node_and_unknown_prices_are_counted(
    client: TelemetryClient, engine: sa.Engine
) -> None:
    workflow = f"agg-{uuid.uuid4().hex[:8]}"
    # model-b (review) has no price here: its steps' cost is unknown, never $0.
    prices = {"model-a": PRICES["model-a"]}
    graph = instrument(
        build_pipeline(),
        workflow_name=workflow,
        agent_roles=PIPELINE_ROLES,
        prices=prices,
        client=client,
    )
    for n in range(2):
        graph.invoke({"item_id": f"ITEM{n}", "status": "new", "topics": ["a", "b c"]})
    delivered(client)

    found = by_node(engine, workflow)
    # Per run: triage 7 in / 3 out; research "a" 2/3 and "b c" 3/4 (fan-out: 2 steps of
    # one node at one step number); draft 5/4 twice; review 4/3 twice, 2 of 4 cached.
    assert found == {
        ("triage", "triager", "model-a"): (2, 2, 14, 6, 0, usd(2 * cost_a(7, 3)), 0, 0, 2),
        ("plan", "", ""): (2, 2, 0, 0, 0, Decimal("0"), 0, 0, 2),
        ("research", "researcher", "model-a"): (
            4, 2, 10, 14, 0, usd(2 * (cost_a(2, 3) + cost_a(3, 4))), 0, 0, 2
        ),
        ("draft", "", "model-a"): (4, 2, 20, 16, 0, usd(4 * cost_a(5, 4)), 0, 0, 2),
        ("review", "reviewer", "model-b"): (4, 2, 16, 12, 4 * REVIEW_CACHED, 0, 4, 0, 2),
    }  # fmt: skip


def test_subgraph_nodes_aggregate_under_their_qualified_names(
    client: TelemetryClient, engine: sa.Engine
) -> None:
    workflow = f"agg-{uuid.uuid4().hex[:8]}"
    graph = instrument(build_nested(), workflow_name=workflow, prices=PRICES, client=client)
    graph.invoke({"item_id": "NESTED", "status": "new"})
    graph.invoke({"item_id": "NESTED2", "status": "new"})
    delivered(client)

    found = by_node(engine, workflow)
    leaf = (2 * 3.0 + 1 * 15.0) / 1_000_000  # model-b: 2 in, 1 out
    assert found == {
        ("pre", "", "model-a"): (2, 2, 6, 4, 0, usd(2 * cost_a(3, 2)), 0, 0, 2),
        ("sub/inner_a", "", "model-a"): (2, 2, 8, 10, 0, usd(2 * cost_a(4, 5)), 0, 0, 2),
        ("sub/deep/leaf", "", "model-b"): (2, 2, 4, 2, 0, usd(2 * leaf), 0, 0, 2),
        ("post", "", ""): (2, 2, 0, 0, 0, Decimal("0"), 0, 0, 2),
    } | {key: found[key] for key in found if key[0] in ("sub", "sub/deep")}
    # A node that runs a subgraph is a step of its own, with none of its nodes' usage.
    for name in ("sub", "sub/deep"):
        assert found[(name, "", "")][2:5] == (0, 0, 0)


def test_live_figures_are_the_stored_figures(client: TelemetryClient, engine: sa.Engine) -> None:
    """The read side runs GROUPED_SQL for today; the asset stores its rows: the same text."""
    graph = instrument(build_nested(), workflow_name=f"agg-{uuid.uuid4().hex[:8]}", client=client)
    graph.invoke({"item_id": "LIVE", "status": "new"})
    delivered(client)
    today = datetime.now(UTC).date()
    lo, hi = day_bounds(today)
    with engine.begin() as conn:
        live = conn.exec_driver_sql(GROUPED_SQL, {"day": today, "lo": lo, "hi": hi})
        live_rows = [dict(row) for row in live.mappings()]
        written = aggregate_day(conn, today)
        stored = conn.execute(
            sa.text("SELECT * FROM telemetry.daily_event_aggregates WHERE day = :day"),
            {"day": today},
        )
        stored_rows = [
            {k: v for k, v in r.items() if k != "computed_at"} for r in stored.mappings()
        ]
    assert written.rows == len(live_rows) >= 6  # this run's steps alone give six rows
    key = ("event_name", "workflow_name", "agent_role", "model", "node")
    assert sorted(live_rows, key=lambda r: [r[k] for k in key]) == sorted(
        stored_rows, key=lambda r: [r[k] for k in key]
    )


def test_two_aggregations_of_one_day_take_turns(client: TelemetryClient, engine: sa.Engine) -> None:
    """The hourly refresh of today and an operator's run of it at the same moment."""
    graph = instrument(build_nested(), workflow_name=f"agg-{uuid.uuid4().hex[:8]}", client=client)
    graph.invoke({"item_id": "TWICE", "status": "new"})
    delivered(client)
    today = datetime.now(UTC).date()
    first = engine.connect()
    try:
        with first.begin():
            aggregate_day(first, today)  # holds the day until it commits
            outcome: list[object] = []

            def second() -> None:
                try:
                    with engine.begin() as conn:
                        outcome.append(aggregate_day(conn, today))
                except Exception as exc:  # the failure is the finding
                    outcome.append(exc)

            worker = threading.Thread(target=second)
            worker.start()
            worker.join(timeout=1.0)
            assert worker.is_alive(), "the second run did not wait for the first"
        worker.join(timeout=30)
    finally:
        first.close()
    (result,) = outcome
    assert not isinstance(result, Exception), result
    assert result.rows >= 6


def test_late_events_of_a_day_before_the_first_partition_aggregate_but_history_stays(
    database_factory: Callable[[], str],
) -> None:
    """A new database's first partition is a recent month: late events stamped earlier
    (stored in it, by their id) are aggregated, also when more arrive; a stored day that
    counted more events than are left raw is history."""
    url = database_factory()
    migrate.upgrade(url)
    eng = create_engine(url)
    try:
        with eng.connect() as conn:
            first = list_partitions(conn)[0]
        day = first.plus(-2).start.date() + timedelta(days=9)
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "")
        payload = {"node": "n", "step": 1, "status": "ok", "duration_ms": 5, "model": "m",
                   "tokens_in": 3, "tokens_out": 1, "cost_usd_est": 0.25}  # fmt: skip
        for n in (1, 2):
            insert(eng, STEP, f"{day}T10:0{n}:00", minted=now, run="r", wf="late", payload=payload)
            with eng.begin() as conn:
                assert aggregate_day(conn, day).events == n
        # A day whose stored rows counted more events than are left raw: history.
        older = day - timedelta(days=1)
        insert(eng, STEP, f"{older}T10:00:00", minted=now, run="r", wf="late", payload=payload)
        with eng.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO telemetry.daily_event_aggregates (day, event_name, events, "
                    "distinct_runs, distinct_items, aggregate_version) "
                    "VALUES (:day, :step, 40, 3, 3, 1)"
                ),
                {"day": older, "step": STEP},
            )
        with pytest.raises(RawEventsDropped, match="retention has dropped"), eng.begin() as conn:
            aggregate_day(conn, older)
    finally:
        eng.dispose()
