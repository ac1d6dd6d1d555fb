"""What a materialisation of ``daily_event_aggregates`` shows and checks, on a real Postgres.

The figures are computed by hand from the events below; the day's step p95 is exact over
all its steps (it differs from every per-row p95, which is why it comes from raw events).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from platform_defs.assets.aggregates import daily_event_aggregates
from platform_defs.checks import aggregates_reconcile
from platform_defs.clock import ClockResource
from platform_defs.resources import PostgresResource
from platform_defs.spend_checks import BUDGET_CHECK, PRICES_CHECK
from sdk.db import migrate
from sdk.db.engine import create_engine
from sdk.db.partitions import Month, ensure_partitions
from sdk.db.schema import daily_event_aggregates as table
from sdk.prices.book import ALWAYS, MANUAL
from sdk.prices.model import Price
from sdk.prices.repository import NewPrice, insert_prices
from sdk.settings import reset_settings_cache
from tests.support.raw_events import RUN_DONE, RUN_START, STEP, insert, step

DAY = "2026-03-10"


@pytest.fixture
def db(database_factory: Callable[[], str]) -> Iterator[tuple[str, sa.Engine]]:
    url = database_factory()
    migrate.upgrade(url)
    eng = create_engine(url)
    ensure_partitions(eng, [Month(2026, 1), Month(2026, 2), Month(2026, 3)])
    yield url, eng
    eng.dispose()


@pytest.fixture(autouse=True)
def budget(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str | None], None]]:
    def set_budget(value: str | None) -> None:
        if value is None:
            monkeypatch.delenv("USAGE_DAILY_BUDGET_USD", raising=False)
        else:
            monkeypatch.setenv("USAGE_DAILY_BUDGET_USD", value)
        reset_settings_cache()

    set_budget(None)
    yield set_budget
    reset_settings_cache()


def seed_day(eng: sa.Engine, day: str = DAY) -> None:
    """Two workflows, three nodes, one model without a price, one step without a model."""
    t = day + "T"
    insert(eng, RUN_START, t + "08:00:00", run="r1", wf="triage", role="planner")
    # (time, run, item, workflow, role, step payload)
    steps = [
        ("08:01", "r1", "i1", "triage", "planner",
         step("ok", 100, "gpt-x", 100, 20, 0.40, node="plan", cached=60)),
        ("08:02", "r1", "i1", "triage", "planner",
         step("error", 400, "gpt-x", 50, 0, 0.10, node="plan")),
        ("08:03", "r1", "i1", "triage", "planner",
         step("ok", 250, "mystery", 30, 30, None, node="draft")),
        ("09:00", "r2", "i2", "review", "critic",
         step("ok", 50, "small", 10, 5, 0.02, node="judge")),
        ("09:01", "r2", "i2", "review", "critic",
         step("ok", 1000, None, 0, 0, None, node="judge")),
        ("09:02", "r3", "i3", "review", "critic",
         step("ok", 10, "mystery", 1, 1, None, node="judge")),
    ]  # fmt: skip
    for at, run, item, wf, role, payload in steps:
        insert(eng, STEP, t + at, run=run, item=item, wf=wf, role=role, payload=payload)
    insert(eng, RUN_DONE, t + "08:04", run="r1", wf="triage", payload={"status": "failed"})


def materialise(url: str, day: str = DAY) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [daily_event_aggregates],
        instance=dg.DagsterInstance.ephemeral(),
        resources={"postgres": PostgresResource(database_url=url)},
        partition_key=day,
    )


def values(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
    (materialisation,) = result.asset_materializations_for_node("daily_event_aggregates")
    return {k: v.value for k, v in materialisation.metadata.items()}


def checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_each_materialisation_records_the_days_figures(
    db: tuple[str, sa.Engine], budget: Callable[[str | None], None]
) -> None:
    url, eng = db
    seed_day(eng)
    found = values(materialise(url))
    usage = found.pop("model_usage")
    figures = {k: found[k] for k in found if k not in ("top_spend", "day", "rows")}
    # Steps' durations: 10, 50, 100, 250, 400, 1000 -> p95 at 0.95 * 5 = 4.75 of the way:
    # 400 + 0.75 * 600 = 850. No stored row has it (theirs: 385, 250, 50, 1000, 10).
    assert figures == {
        # Steps without per-call usage: their emitted estimates, the unpriced ones unknown.
        "cost_usd": pytest.approx(0.52),
        "cost_unknown_calls": 2,  # the model-less, token-less step cost a known $0
        "cost_computed_usd": 0.0,
        "cost_reported_usd": 0.0,
        "cost_estimate_usd": pytest.approx(0.52),
        "calls": 5,  # one per step that called something billable
        "tokens_in": 191,
        "tokens_out": 56,
        "tokens_cached_in": 60,
        "tokens_cache_write": 0,
        "tokens_reasoning": 0,
        "events": 8,
        "steps": 6,
        "runs": 3,
        "errors": 2,  # one failed step, one failed run
        "step_p95_ms": pytest.approx(850.0),
    }
    assert found["day"] == DAY
    # Usage rows (no price table, so tokens alone price nothing): plan's two gpt-x steps
    # (one estimate row); draft's mystery (tokens, no cost: unknown); judge's small
    # (estimate) and mystery (unknown); the model-less, token-less judge step called
    # nothing billable.
    assert usage == {"rows": 4, "computed": 0, "reported": 0, "estimate": 2, "unknown": 2,
                     "unknown_calls": 2}  # fmt: skip
    with eng.connect() as conn:
        per_row = conn.exec_driver_sql(
            "SELECT duration_p95_ms FROM telemetry.daily_event_aggregates "
            "WHERE duration_p95_ms IS NOT NULL"
        ).scalars()
        assert sorted(per_row) == [10.0, 50.0, 250.0, 385.0, 1000.0]
    markdown = found["top_spend"]
    # Every cost has its unknown-cost count beside it; never a bare $0.
    assert f"**{DAY}**: $0.5200 + 2 calls of unknown cost (estimate $0.5200)" in markdown
    assert "| triage | 3 | 1 | 3 | $0.5000 | 1 | 180 / 50 |" in markdown
    assert "| review | 3 | 0 | 2 | $0.0200 | 1 | 11 / 6 |" in markdown
    assert "| triage | plan | 2 | 1 | 2 | $0.5000 | 0 | 150 / 20 |" in markdown
    assert "| triage | draft | 1 | 0 | 1 | $0.0000 | 1 | 30 / 30 |" in markdown
    # The model-less step called nothing: a step of its node, no call.
    assert "| review | judge | 3 | 0 | 2 | $0.0200 | 1 | 11 / 6 |" in markdown
    assert "| mystery | - | - | 2 | $0.0000 | 2 | 31 / 31 |" in markdown
    # Ordered by known cost: gpt-x before small before the unpriced; models are calls'.
    models = [line.split(" | ")[0] for line in markdown.splitlines() if line.startswith("| ")]
    assert models[-3:] == ["| gpt\\-x", "| small", "| mystery"]  # - escaped


def test_a_day_without_steps_has_no_p95_rather_than_zero(db: tuple[str, sa.Engine]) -> None:
    url, eng = db
    insert(eng, RUN_START, DAY + "T01:00:00", run="r1")
    found = values(materialise(url))
    assert found["step_p95_ms"] is None  # a null entry: nothing to plot, not "0 ms"
    assert (found["steps"], found["runs"], found["cost_unknown_calls"]) == (0, 1, 0)
    assert "_no steps_" in found["top_spend"]
    assert all(c.passed for c in checks(materialise(url)).values())


def test_the_budget_check_warns_over_budget_and_names_the_workflows(
    db: tuple[str, sa.Engine], budget: Callable[[str | None], None]
) -> None:
    url, eng = db
    seed_day(eng)
    budget("0.25")
    over = checks(materialise(url))[BUDGET_CHECK]
    assert not over.passed
    assert over.severity == dg.AssetCheckSeverity.WARN
    assert over.metadata["workflows_over_budget"].value == {"triage": pytest.approx(0.5)}
    assert over.metadata["budget_usd"].value == 0.25
    assert "over the budget of $0.2500" in (over.description or "")
    assert "2 calls of unknown cost" in (over.description or "")

    # Over the day's budget without any one workflow over it on its own.
    budget("0.51")
    split = checks(materialise(url))[BUDGET_CHECK]
    assert not split.passed
    assert split.metadata["workflows_over_budget"].value == {}


def test_the_budget_check_passes_within_budget_and_without_one(
    db: tuple[str, sa.Engine], budget: Callable[[str | None], None]
) -> None:
    url, eng = db
    seed_day(eng)
    budget("1")
    within = checks(materialise(url))[BUDGET_CHECK]
    assert within.passed
    assert "within the budget of $1.0000" in (within.description or "")
    assert "may be higher" in (within.description or "")  # unknown costs exist
    budget(None)
    unset = checks(materialise(url))[BUDGET_CHECK]
    assert unset.passed
    assert "USAGE_DAILY_BUDGET_USD is not set" in (unset.description or "")


def test_the_price_check_lists_models_without_a_price(db: tuple[str, sa.Engine]) -> None:
    url, eng = db
    seed_day(eng)
    prices = checks(materialise(url))[PRICES_CHECK]
    assert not prices.passed
    assert prices.severity == dg.AssetCheckSeverity.WARN
    # A step that called no model (no model, no tokens, no cost) is no unpriced model.
    assert prices.metadata["unpriced_models"].value == {"mystery": 2}
    assert "mystery (2 calls)" in (prices.description or "")
    assert "(none)" not in (prices.description or "")


def v2_step(node: str, model: str, calls: list[dict[str, Any]]) -> dict[str, Any]:
    """A step with per-call usage: totals are the calls' sums, the estimate unknown."""
    payload = step("ok", 100, model, sum(c.get("tokens_in", 0) for c in calls),
                   sum(c.get("tokens_out", 0) for c in calls), None, node=node)  # fmt: skip
    return payload | {"calls": calls, "cost_unknown": True}


def test_calls_are_priced_per_call_model_and_the_check_names_the_unpriced_call(
    db: tuple[str, sa.Engine],
) -> None:
    """A two-model step: one call priced from a manual price ($1 / $4 per million in /
    out, reasoning at $6), the other unpriced. The figures split by source, every token
    kind is plotted, and the price check names the unpriced call's model, not the step's
    comma-joined one."""
    url, eng = db
    with eng.begin() as conn:
        insert_prices(conn, [NewPrice("m-small", Price(input=Decimal(1), output=Decimal(4),
                                                       reasoning=Decimal(6)),
                                      ALWAYS, MANUAL, exact=("m-small",))])  # fmt: skip
    calls = [
        {"model": "m-small", "tokens_in": 2000, "tokens_cache_write": 500, "tokens_out": 1000,
         "tokens_reasoning": 250},
        {"model": "m-unpriced", "provider": "acme", "tokens_in": 10, "tokens_out": 10},
        {"model": "m-free", "tokens_in": 5, "tokens_out": 5, "cost_usd_reported": 0.25},
    ]  # fmt: skip
    insert(eng, STEP, DAY + "T01:00", run="r1", wf="w", role="r",
           payload=v2_step("ask", "m-small,m-unpriced,m-free", calls))  # fmt: skip
    result = materialise(url)
    found = values(result)
    # m-small: (2,000 x 1 + 750 x 4 + 250 x 6) / 1e6 = 0.0065 (no cache-write price:
    # those tokens are billed as input).
    assert (found["cost_computed_usd"], found["cost_reported_usd"]) == (
        pytest.approx(0.0065),
        pytest.approx(0.25),
    )
    assert (found["cost_usd"], found["cost_unknown_calls"]) == (pytest.approx(0.2565), 1)
    assert (found["calls"], found["steps"], found["tokens_in"], found["tokens_out"]) == (
        3, 1, 2015, 1015,
    )  # fmt: skip
    assert (found["tokens_cache_write"], found["tokens_reasoning"]) == (500, 250)
    markdown = found["top_spend"]
    assert "| m\\-free | - | - | 1 | $0.2500 | 0 | 5 / 5 |" in markdown
    assert "| m\\-small | - | - | 1 | $0.0065 | 0 | 2,000 / 1,000 |" in markdown
    assert "| m\\-unpriced | - | - | 1 | $0.0000 | 1 | 10 / 10 |" in markdown
    prices = checks(result)[PRICES_CHECK]
    assert not prices.passed
    assert prices.metadata["unpriced_models"].value == {"m-unpriced at acme": 1}
    assert "m\\-small" not in (prices.description or "")


def test_the_price_check_passes_when_every_step_had_a_price(db: tuple[str, sa.Engine]) -> None:
    url, eng = db
    insert(eng, STEP, DAY + "T01:00", run="r1", wf="w", payload=step("ok", 5, "m", 1, 1, 0.01))
    prices = checks(materialise(url))[PRICES_CHECK]
    assert prices.passed
    assert prices.metadata["unpriced_models"].value == {}


def reconcile(url: str, now: str = "2026-03-13T06:00:00Z") -> dg.AssetCheckEvaluation:
    result = dg.materialize(
        [aggregates_reconcile],
        instance=dg.DagsterInstance.ephemeral(),
        resources={
            "postgres": PostgresResource(database_url=url),
            "clock": ClockResource(fixed_now=now),
        },
        selection=dg.AssetSelection.checks(aggregates_reconcile),
    )
    (evaluation,) = result.get_asset_check_evaluations()
    return evaluation


def test_reconcile_fails_when_events_exist_but_no_day_was_compared(
    db: tuple[str, sa.Engine],
) -> None:
    url, eng = db
    assert reconcile(url).passed  # no events, no aggregates: nothing to reconcile
    seed_day(eng)
    insert(eng, RUN_START, "2026-03-11T01:00:00", run="r9")
    nothing = reconcile(url)
    assert not nothing.passed
    assert nothing.severity == dg.AssetCheckSeverity.WARN
    assert nothing.metadata["days_compared"].value == 0
    assert nothing.metadata["days_without_aggregate"].value == [DAY, "2026-03-11"]
    assert "Nothing to compare: 2 days" in (nothing.description or "")

    materialise(url)
    some = reconcile(url)
    assert some.passed  # one day compared and equal; the other is only listed
    assert some.metadata["days_compared"].value == 1
    assert some.metadata["days_without_aggregate"].value == ["2026-03-11"]
    # Today's events are not reconciled yet (today is still being written).
    insert(eng, RUN_START, "2026-03-13T01:00:00", run="r10")
    assert reconcile(url).metadata["days_without_aggregate"].value == ["2026-03-11"]


AGG = "telemetry.daily_event_aggregates"


def stored(eng: sa.Engine, month: str) -> list[dict[str, Any]]:
    """Every stored row of ``month`` (YYYY-MM), all columns, computed_at included."""
    with eng.connect() as conn:
        rows = conn.execute(
            sa.select(table)
            .where(sa.func.to_char(table.c.day, "YYYY-MM") == month)
            .order_by(table.c.day, table.c.event_name, table.c.node)
        )
        return [dict(r) for r in rows.mappings()]


def test_a_dropped_months_aggregates_survive_rematerialisation_and_v1_rows_say_so(
    database_factory: Callable[[], str],
) -> None:
    """Rows written before migration 0005 (version 1) and after it, in a month retention
    then drops: re-materialising any of its days fails and changes nothing."""
    from platform_defs.assets.retention import event_retention

    url = database_factory()
    migrate.upgrade(url, "0004")
    eng = create_engine(url)
    ensure_partitions(eng, [Month(2026, 1), Month(2026, 2), Month(2026, 3)])
    insert(eng, RUN_START, "2026-01-10T08:00:00", run="r1", wf="old")
    insert(
        eng, STEP, "2026-01-10T08:01:00", run="r1", wf="old", payload=step("ok", 5, "m", 1, 1, 0.5)
    )
    insert(
        eng, STEP, "2026-01-12T08:01:00", run="r2", wf="new", payload=step("ok", 5, "m", 1, 1, None)
    )
    with eng.begin() as conn:  # what the aggregation before 0005 wrote: no node
        conn.exec_driver_sql(
            f"INSERT INTO {AGG} (day, event_name, workflow_name, model, events, distinct_runs, "
            "distinct_items, tokens_in, tokens_out, cost_usd) VALUES "
            "('2026-01-10', 'workflow.run_started', 'old', '', 1, 1, 0, 0, 0, 0), "
            "('2026-01-10', 'workflow.step_completed', 'old', 'm', 1, 1, 0, 1, 1, 0.5)"
        )
    migrate.upgrade(url)
    assert materialise(url, "2026-01-12").success  # a version-2 day in the same month
    resources = {
        "postgres": PostgresResource(database_url=url),
        "clock": ClockResource(fixed_now="2026-06-15T00:00:00Z"),
    }
    dg.materialize([event_retention], instance=dg.DagsterInstance.ephemeral(), resources=resources)
    before = stored(eng, "2026-01")
    assert [(str(r["day"]), r["aggregate_version"]) for r in before] == [
        ("2026-01-10", 1),
        ("2026-01-10", 1),
        ("2026-01-12", 2),
    ]

    for day, says in (
        ("2026-01-10", "2 rows of aggregate_version 1 (computed before migration 0005: no node"),
        ("2026-01-12", "1 row of aggregate_version 2 (complete)"),
    ):
        result = dg.materialize(
            [daily_event_aggregates],
            instance=dg.DagsterInstance.ephemeral(),
            resources={"postgres": PostgresResource(database_url=url)},
            partition_key=day,
            raise_on_error=False,
        )
        assert not result.success
        (failure,) = [e for e in result.all_events if e.is_step_failure]
        data = failure.step_failure_data
        assert data.user_failure_data is not None
        assert f"Refusing to aggregate {day}" in (data.user_failure_data.description or "")
        assert says in (data.user_failure_data.description or "")
    after = stored(eng, "2026-01")
    assert after == before  # every column, computed_at included
    unrecorded = ("cost_unknown_steps", "tokens_cached_in", "duration_max_ms")
    v1 = [tuple(r[c] for c in unrecorded) for r in after if r["aggregate_version"] == 1]
    assert v1 == [(None, None, None)] * 2  # not recorded, never 0
    eng.dispose()
