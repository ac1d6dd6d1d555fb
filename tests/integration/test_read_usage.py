"""GET /telemetry/usage over real HTTP: stored days, live days and legacy rows, by hand.

One database of its own (usage is not filtered by workflow), holding a small set of
events whose every figure is computed by hand below. Days are relative to today (UTC):
D0 has only legacy aggregate rows (written before migration 0005, no raw events; with
the model usage rows migration 0007 makes of them), D1 and D2 are aggregated by the real
aggregation, D3 has raw events but no aggregates yet, and today is aggregated once and
then gets another step, so a stale stored row would show. These steps carry no calls
(event_version 1): each is one call priced at the estimate it emitted, or unknown.

D6 is the per-call day (event_version 2, not aggregated: live, until a test stores it):
one step of two calls (m-priced, priced from a manual price, with every token kind; and
m-free, whose provider reported its cost), one step whose call has no price
(m-unpriced), and one whose call reported no usage. Its figures are in D6_FIGURES.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from sdk.db.engine import create_engine
from sdk.db.partitions import Month, ensure_partitions
from sdk.prices.book import ALWAYS, MANUAL
from sdk.prices.model import Price
from sdk.prices.repository import NewPrice, insert_prices
from sdk.usage.aggregation import aggregate_day
from tests.integration.read_support import call, event, get, post, read_server, step, v2_step
from tests.support.servers import ApiServer

TODAY = datetime.now(UTC).date()
D0, D1, D2, D3, D6 = (TODAY - timedelta(days=n) for n in (5, 3, 2, 1, 6))
WF1, WF2, WF3 = "wf-one", "wf-two", "wf-three"
# USD per million tokens: input 2, cache read 0.5, cache write 2.5, output 8, reasoning 10.
M_PRICED = Price(
    input=Decimal(2),
    output=Decimal(8),
    cache_read=Decimal("0.5"),
    cache_write=Decimal("2.5"),
    reasoning=Decimal(10),
)
# The m-priced call: 1,000 in (400 cache read, 100 cache write), 200 out (50 reasoning):
# (500 x 2 + 400 x 0.5 + 100 x 2.5 + 150 x 8 + 50 x 10) / 1e6 = 3,150 / 1e6.
COMPUTED = 0.00315
REPORTED = 0.0123  # the m-free call's cost as its provider reported it


def d6_events() -> list[dict[str, Any]]:
    ids = {"run_id": "r6", "workflow_name": WF3, "agent_role": "asker"}
    return [
        event("workflow.run_started", at(D6, 9), run_id="r6", workflow_name=WF3),
        v2_step(at(D6, 10), "ask", "m-priced,m-free", [
            call("m-priced", 1000, 200, tokens_cached_in=400, tokens_cache_write=100,
                 tokens_reasoning=50),
            call("m-free", 10, 5, cost_usd_reported=REPORTED),
        ], 0.5, **ids),
        v2_step(at(D6, 11), "ask", "m-unpriced", [call("m-unpriced", 30, 10)], None, **ids),
        v2_step(at(D6, 12), "check", "m-priced", [call("m-priced", usage_reported=False)], None,
                **ids),
    ]  # fmt: skip


def at(day: date, hour: int = 12, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), UTC)


def run(
    run_id: str, day: date, workflow: str, steps: list[dict[str, Any]], end: str | None
) -> list[dict[str, Any]]:
    ids = {"run_id": run_id, "workflow_name": workflow}
    events = [event("workflow.run_started", at(day, 9), **ids)]
    for n, spec in enumerate(steps):
        events.append(step(at(day, 10, n), step=n, **spec, **ids))
    if end is not None:
        payload = {"status": end, "duration_ms": 1000.0}
        events.append(event("workflow.run_completed", at(day, 11), payload=payload, **ids))
    return events


def plan(cost: float | None, ms: float, tokens: tuple[int, int]) -> dict[str, Any]:
    return {
        "node": "plan",
        "cost": cost,
        "duration_ms": ms,
        "tokens": tokens,
        "model": "m-a",
        "agent_role": "planner",
    }


def draft(cost: float | None, ms: float, tokens: tuple[int, int], **more: Any) -> dict[str, Any]:
    return {
        "node": "draft",
        "cost": cost,
        "duration_ms": ms,
        "tokens": tokens,
        "model": "m-b",
        "agent_role": "writer",
        **more,
    }


@pytest.fixture(scope="module")
def engine(migrated_db_url: str) -> Iterator[sa.Engine]:
    eng = create_engine(migrated_db_url)
    # D1..D3 may fall in the previous month: give it a partition, so the aggregation
    # takes those days as within retention.
    ensure_partitions(eng, [Month.of(D6), Month.of(TODAY)])
    yield eng
    eng.dispose()


def aggregate(engine: sa.Engine, day: date) -> None:
    with engine.begin() as conn:
        aggregate_day(conn, day)


@pytest.fixture(scope="module")
def server(
    migrated_db_url: str, engine: sa.Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    with read_server(migrated_db_url, tmp_path_factory.mktemp("api") / "api.log") as api:
        post(
            api,
            run("r1", D1, WF1, [plan(0.10, 100, (10, 5)), draft(None, 300, (20, 10))], "succeeded")
            + run(
                "r2",
                D2,
                WF1,
                [plan(0.20, 200, (30, 10)), draft(0.30, 500, (40, 20), status="error")],
                "failed",
            )
            + run("r3", D2, WF2, [plan(None, 50, (5, 5))], None)
            + run("r4", D3, WF2, [draft(0.05, 80, (8, 2))], "succeeded")
            + run("r5", TODAY, WF1, [plan(0.40, 400, (12, 6))], None),
        )
        with engine.begin() as conn:
            insert_prices(
                conn,
                [NewPrice("m-priced", M_PRICED, ALWAYS, MANUAL, exact=("m-priced",))],
            )
        post(api, d6_events())
        for day in (D1, D2, TODAY):
            aggregate(engine, day)
        # After today's aggregation: only the live figures can know of this step.
        ids = {"run_id": "r5", "workflow_name": WF1, "agent_role": "planner"}
        late = step(at(TODAY, 10, 30), node="plan", step=1, cost=0.60, duration_ms=600,
                    tokens=(14, 7), model="m-a", **ids)  # fmt: skip
        post(api, [late])
        with engine.begin() as conn:  # D0: what an aggregation before migration 0005 left
            conn.execute(
                sa.text(
                    "INSERT INTO telemetry.daily_event_aggregates (day, event_name, "
                    "workflow_name, agent_role, model, node, events, distinct_runs, "
                    "distinct_items, tokens_in, tokens_out, cost_usd, errors, duration_p50_ms, "
                    "duration_p95_ms, aggregate_version) VALUES "
                    "(:day, 'workflow.step_completed', :wf, 'planner', 'm-a', '', 4, 2, 0, "
                    "100, 50, 1.0, 0, 10, 20, 1), "
                    "(:day, 'workflow.run_started', :wf, '', '', '', 2, 2, 0, 0, 0, 0, 0, "
                    "NULL, NULL, 1)"
                ),
                {"day": D0, "wf": WF1},
            )
            # What migration 0007 made of that step row: one 'estimate' row, 4 calls.
            conn.execute(
                sa.text(
                    "INSERT INTO telemetry.daily_model_usage (day, workflow_name, agent_role, "
                    "node, step_model, model, provider, input_band, basis, steps, calls, "
                    "tokens_in, tokens_cached_in, tokens_cache_write, tokens_out, "
                    "tokens_reasoning, reported_usd, cost_usd, cost_source) VALUES (:day, :wf, "
                    "'planner', '', 'm-a', 'm-a', '', 0, 'estimate', 4, 4, 100, 0, 0, 50, 0, "
                    "1.0, 1.0, 'estimate')"
                ),
                {"day": D0, "wf": WF1},
            )
        yield api


def usage(server: ApiServer, **params: Any) -> dict[str, Any]:
    response = get(server, "/telemetry/usage", **params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def figures(**values: Any) -> dict[str, Any]:
    """A group's figures: unset ones are 0 / None. Without ``cost_usd_by_source``, all
    of ``cost_usd`` is an estimate (steps without calls) and ``calls`` are ``steps``."""
    base = {
        "steps": 0,
        "errors": 0,
        "calls": values.get("steps", 0),
        "tokens_in": 0,
        "tokens_out": 0,
        "tokens_cached_in": 0,
        "tokens_cache_write": 0,
        "tokens_reasoning": 0,
        "cost_usd": 0,
        "cost_unknown_calls": 0,
        "cost_usd_by_source": sources(estimate=values.get("cost_usd", 0)),
        "duration_max_ms": None,
        "duration_p50_ms": None,
        "duration_p95_ms": None,
        "runs": None,
        "runs_failed": None,
        "legacy_rows": 0,
    }
    assert set(values) <= set(base), set(values) - set(base)
    return base | values


def sources(computed: float = 0, reported: float = 0, estimate: float = 0) -> dict[str, Any]:
    return {
        "computed": pytest.approx(computed),
        "reported": pytest.approx(reported),
        "estimate": pytest.approx(estimate),
    }


def approx(group: dict[str, Any]) -> dict[str, Any]:
    return {k: pytest.approx(v) if isinstance(v, float) else v for k, v in group.items()}


def test_by_day_stored_live_and_legacy_days_are_exact(server: ApiServer) -> None:
    body = usage(server, **{"from": D0.isoformat(), "to": TODAY.isoformat()})
    assert body["stored_days"] == [d.isoformat() for d in (D0, D1, D2)]
    assert body["live_days"] == [D3.isoformat(), TODAY.isoformat()]
    by_day = {g["day"]: g for g in body["groups"]}
    assert set(by_day) == {d.isoformat() for d in (D0, D1, D2, D3, TODAY)}
    expected = {
        D0: figures(
            steps=4, tokens_in=100, tokens_out=50, cost_usd=1.0, tokens_cached_in=None,
            tokens_cache_write=None, tokens_reasoning=None, cost_unknown_calls=None,
            duration_p50_ms=10.0, duration_p95_ms=20.0,
            runs=2, runs_failed=0, legacy_rows=1,
        ) | {"source": "stored"},
        D1: figures(
            steps=2, tokens_in=30, tokens_out=15, cost_usd=0.10, cost_unknown_calls=1,
            duration_max_ms=300.0, runs=1, runs_failed=0,
        ) | {"source": "stored"},
        D2: figures(
            steps=3, errors=1, tokens_in=75, tokens_out=35, cost_usd=0.50,
            cost_unknown_calls=1, duration_max_ms=500.0, runs=2, runs_failed=1,
        ) | {"source": "stored"},
        # One step: a single row, so its percentiles are exact.
        D3: figures(
            steps=1, tokens_in=8, tokens_out=2, cost_usd=0.05, duration_max_ms=80.0,
            duration_p50_ms=80.0, duration_p95_ms=80.0, runs=1, runs_failed=0,
        ) | {"source": "live"},
        # Two steps of one (workflow, role, model, node): one live row, percentile_cont.
        TODAY: figures(
            steps=2, tokens_in=26, tokens_out=13, cost_usd=1.00, duration_max_ms=600.0,
            duration_p50_ms=500.0, duration_p95_ms=590.0, runs=1, runs_failed=0,
        ) | {"source": "live"},
    }  # fmt: skip
    for day, want in expected.items():
        assert by_day[day.isoformat()] == approx({"day": day.isoformat(), **want}), day
    assert body["totals"] == approx(
        figures(
            steps=12, errors=1, tokens_in=239, tokens_out=115, cost_usd=2.65,
            tokens_cached_in=None, tokens_cache_write=None, tokens_reasoning=None,
            cost_unknown_calls=None, runs=7, runs_failed=1,
            legacy_rows=1,
        )
    )  # fmt: skip
    assert len(body["notes"]) == 1
    assert "aggregate_version 1" in body["notes"][0]


def test_by_node_and_model_percentiles_only_for_single_rows_and_no_run_counts(
    server: ApiServer,
) -> None:
    body = usage(server, **{"from": D1.isoformat(), "to": D2.isoformat()}, group_by="node,model")
    assert body["group_by"] == ["node", "model"]
    assert body["groups"] == [
        approx(
            {"node": "draft", "model": "m-b"}
            | figures(steps=2, errors=1, tokens_in=60, tokens_out=30, cost_usd=0.30,
                      cost_unknown_calls=1, duration_max_ms=500.0)
            | {"source": "stored"}
        ),
        approx(
            {"node": "plan", "model": "m-a"}
            | figures(steps=3, tokens_in=45, tokens_out=20, cost_usd=0.30,
                      cost_unknown_calls=1, duration_max_ms=200.0)
            | {"source": "stored"}
        ),
    ]  # fmt: skip
    assert body["totals"]["cost_unknown_calls"] == 2
    assert body["totals"]["runs"] is None  # a run has no one node
    assert body["notes"] == []


def test_by_workflow_merges_stored_and_live_days(server: ApiServer) -> None:
    body = usage(server, **{"from": D2.isoformat()}, group_by="workflow_name")
    assert body["to"] == TODAY.isoformat()
    groups = {g["workflow_name"]: g for g in body["groups"]}
    assert groups[WF1] == approx(
        {"workflow_name": WF1}
        | figures(steps=4, errors=1, tokens_in=96, tokens_out=43, cost_usd=1.50,
                  duration_max_ms=600.0, runs=2, runs_failed=1)
        | {"source": "mixed"}
    )  # fmt: skip
    assert groups[WF2] == approx(
        {"workflow_name": WF2}
        | figures(steps=2, tokens_in=13, tokens_out=7, cost_usd=0.05, cost_unknown_calls=1,
                  duration_max_ms=80.0, runs=2, runs_failed=0)
        | {"source": "mixed"}
    )  # fmt: skip


def test_legacy_rows_without_a_node_are_under_node_null(server: ApiServer) -> None:
    body = usage(server, **{"from": D0.isoformat(), "to": D0.isoformat()}, group_by="node")
    (group,) = body["groups"]
    assert group["node"] is None
    assert (group["steps"], group["cost_unknown_calls"], group["legacy_rows"]) == (4, None, 1)
    assert "node null" in body["notes"][0]


def test_no_grouping_is_one_total(server: ApiServer) -> None:
    body = usage(server, **{"from": D1.isoformat(), "to": D1.isoformat()}, group_by="")
    assert body["group_by"] == []
    (group,) = body["groups"]
    assert (group["steps"], group["cost_usd"], group["cost_unknown_calls"]) == (2, 0.1, 1)
    assert body["totals"]["steps"] == 2
    empty = usage(server, **{"from": "2030-01-01", "to": "2030-01-07"})
    assert empty["groups"] == []
    assert empty["totals"]["steps"] == 0
    assert (empty["stored_days"], empty["live_days"]) == ([], [])


def test_by_agent_role_counts_no_runs(server: ApiServer) -> None:
    body = usage(server, **{"from": D1.isoformat(), "to": D1.isoformat()}, group_by="agent_role")
    assert [(g["agent_role"], g["steps"], g["runs"]) for g in body["groups"]] == [
        ("planner", 1, None),
        ("writer", 1, None),
    ]


def test_a_live_day_reports_what_its_stored_rows_will(server: ApiServer, engine: sa.Engine) -> None:
    """The same SQL computes both: aggregating D3 changes where its figures come from,
    not what they are."""
    params = {"from": D3.isoformat(), "to": D3.isoformat(), "group_by": "day,workflow_name,node"}
    live = usage(server, **params)
    assert live["live_days"] == [D3.isoformat()]
    aggregate(engine, D3)
    try:
        stored = usage(server, **params)
        assert stored["stored_days"] == [D3.isoformat()]
        assert [g | {"source": None} for g in stored["groups"]] == [
            g | {"source": None} for g in live["groups"]
        ]
        assert {g["source"] for g in stored["groups"]} == {"stored"}
        assert stored["totals"] == live["totals"]
    finally:
        forget(engine, D3)


def forget(engine: sa.Engine, day: date) -> None:
    """Drop a day's stored rows again (it is live for the other tests)."""
    with engine.begin() as conn:
        for table in ("daily_event_aggregates", "daily_model_usage"):
            conn.execute(sa.text(f"DELETE FROM telemetry.{table} WHERE day = :d"), {"d": day})


D6_DAY = figures(
    steps=3, calls=4, tokens_in=1040, tokens_out=215, tokens_cached_in=400,
    tokens_cache_write=100, tokens_reasoning=50, cost_usd=COMPUTED + REPORTED,
    cost_unknown_calls=2, cost_usd_by_source=sources(computed=COMPUTED, reported=REPORTED),
    duration_max_ms=100.0, runs=1, runs_failed=0,
)  # fmt: skip


def test_calls_are_priced_each_from_its_price_or_its_reported_cost(server: ApiServer) -> None:
    """Not the $0.50 the step emitted: m-priced's tokens times its price, m-free's
    reported cost; the unpriced call and the one without usage are counted, not $0."""
    body = usage(server, **{"from": D6.isoformat(), "to": D6.isoformat()})
    assert body["live_days"] == [D6.isoformat()]
    (group,) = body["groups"]
    assert group == approx({"day": D6.isoformat(), **D6_DAY, "source": "live"})
    assert body["totals"] == approx(D6_DAY)


def test_by_model_calls_are_under_their_model_and_steps_under_the_steps_model(
    server: ApiServer,
) -> None:
    body = usage(server, **{"from": D6.isoformat(), "to": D6.isoformat()}, group_by="model")
    one_step = {"duration_max_ms": 100.0, "duration_p50_ms": 100.0, "duration_p95_ms": 100.0}
    assert body["groups"] == [
        approx({"model": "m-free"} | figures(
            calls=1, tokens_in=10, tokens_out=5, cost_usd=REPORTED,
            cost_usd_by_source=sources(reported=REPORTED),
        ) | {"source": "live"}),
        # The step whose one call reported no usage, and the priced call of the other.
        approx({"model": "m-priced"} | figures(
            steps=1, calls=2, tokens_in=1000, tokens_out=200, tokens_cached_in=400,
            tokens_cache_write=100, tokens_reasoning=50, cost_usd=COMPUTED,
            cost_unknown_calls=1, cost_usd_by_source=sources(computed=COMPUTED), **one_step,
        ) | {"source": "live"}),
        # The two-model step: its step here, its calls under their own models.
        approx({"model": "m-priced,m-free"} | figures(steps=1, calls=0, **one_step)
               | {"source": "live"}),
        approx({"model": "m-unpriced"} | figures(
            steps=1, tokens_in=30, tokens_out=10, cost_unknown_calls=1, **one_step,
        ) | {"source": "live"}),
    ]  # fmt: skip
    assert body["totals"] == approx(D6_DAY | {"runs": None, "runs_failed": None})


def test_a_priced_live_day_reports_what_its_stored_rows_will(
    server: ApiServer, engine: sa.Engine
) -> None:
    """Live calls are priced in Python with the book, stored ones by the aggregation:
    the same figures, by every key."""
    params = {"from": D6.isoformat(), "to": D6.isoformat(), "group_by": "day,node,model"}
    live = usage(server, **params)
    aggregate(engine, D6)
    try:
        stored = usage(server, **params)
        assert stored["stored_days"] == [D6.isoformat()]
        assert [g | {"source": None} for g in stored["groups"]] == [
            g | {"source": None} for g in live["groups"]
        ]
        assert stored["totals"] == live["totals"]
        assert stored["totals"] == approx(D6_DAY | {"runs": None, "runs_failed": None})
    finally:
        forget(engine, D6)


def test_a_stored_day_without_model_usage_says_its_cost_is_missing(
    server: ApiServer, engine: sa.Engine
) -> None:
    """A day aggregated by code that wrote no daily_model_usage rows: its steps show, and
    a note says its calls, tokens and cost are missing, rather than a silent $0."""
    aggregate(engine, D6)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM telemetry.daily_model_usage WHERE day = :d"), {"d": D6})
    try:
        body = usage(server, **{"from": D6.isoformat(), "to": D6.isoformat()})
        assert (body["totals"]["steps"], body["totals"]["calls"]) == (3, 0)
        (note,) = body["notes"]
        assert f"no model usage rows ({D6.isoformat()})" in note
        assert "missing here, not 0" in note
    finally:
        forget(engine, D6)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"group_by": "day,team"}, "group_by"),
        ({"group_by": "day,day"}, "group_by"),
        ({"from": "2026-03-02", "to": "2026-03-01"}, "from"),
        ({"from": "2016-01-01", "to": "2026-01-01"}, "to"),  # ten years
        ({"from": "2025-01-01", "to": "2026-01-02"}, "to"),  # 367 days
        ({"from": "2026-1-5"}, "from"),
        ({"to": "2026-02-30"}, "to"),
        ({"to": "yesterday"}, "to"),
        ({"from": "2026-03-01T00:00:00Z"}, "from"),
        ({"to": "9999-12-31"}, "to"),
        ({"days": "7"}, "days"),
    ],
)
def test_bad_usage_parameters_are_422_with_a_field_error(
    server: ApiServer, params: dict[str, str], field: str
) -> None:
    response = get(server, "/telemetry/usage", **params)
    assert response.status_code == 422, response.text
    assert ["query", field] in [e["loc"] for e in response.json()["errors"]]


def test_a_full_year_is_answered(server: ApiServer) -> None:
    body = usage(server, **{"from": (TODAY - timedelta(days=365)).isoformat()})
    assert body["totals"]["steps"] == 15
    assert body["totals"]["calls"] == 16  # each of the 12 billable v1 steps is one call
