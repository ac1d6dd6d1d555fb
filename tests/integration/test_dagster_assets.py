"""Dagster assets against a real Postgres, with an injected "now".

Each test gets its own migrated database: retention drops partitions, so tests must not
share one. Events are inserted with SQL (event_time = ulid_time(event_id), as the API does).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from platform_defs.assets.aggregates import daily_event_aggregates
from platform_defs.assets.partitions import event_partitions
from platform_defs.assets.retention import event_retention
from platform_defs.checks import (
    aggregates_reconcile,
    next_month_partition_exists,
    no_rows_outside_partition_range,
)
from platform_defs.clock import ClockResource
from platform_defs.resources import PostgresResource
from sdk.db import migrate
from sdk.db.engine import create_engine
from sdk.db.partitions import Month, ensure_partitions, list_partitions
from tests.support.raw_events import RUN_DONE, RUN_START, STEP, insert, step

ROOT = Path(__file__).resolve().parents[2]
JAN, FEB, MAR = Month(2026, 1), Month(2026, 2), Month(2026, 3)


@pytest.fixture
def db(database_factory: Callable[[], str]) -> Iterator[tuple[str, sa.Engine]]:
    url = database_factory()
    migrate.upgrade(url)
    eng = create_engine(url)
    ensure_partitions(eng, [JAN, FEB, MAR])
    yield url, eng
    eng.dispose()


def resources(url: str, now: str = "2026-06-15T12:00:00Z") -> dict[str, Any]:
    return {"postgres": PostgresResource(database_url=url), "clock": ClockResource(fixed_now=now)}


def seed_three_months(eng: sa.Engine) -> None:
    """Events on 2026-01-31, 2026-02-01 (minted in January) and 2026-03-10."""
    d = "2026-01-31T"
    common = {"wf": "triage", "role": "planner"}
    insert(
        eng,
        STEP,
        d + "08:00:00",
        run="r1",
        item="i1",
        payload=step("ok", 100, "gpt-x", 10, 5, 0.01),
        **common,
    )
    insert(
        eng,
        STEP,
        d + "09:00:00",
        run="r1",
        item="i2",
        payload=step("error", 300, "gpt-x", 20, 7, 0.02),
        **common,
    )
    insert(
        eng,
        STEP,
        d + "10:00:00",
        run="r2",
        item="i1",
        payload=step("ok", 200, "gpt-x", 30, 0, None),
        **common,
    )
    insert(
        eng,
        STEP,
        d + "11:00:00",
        run="r2",
        item="i1",
        payload=step("ok", 50, "other", 1, 1, 0.5),
        **common,
    )
    done = {"duration_ms": 1000, "tokens_in": 60, "tokens_out": 12, "cost_usd_est": 0.03}
    insert(
        eng, RUN_DONE, d + "12:00:00", run="r1", wf="triage", payload=done | {"status": "failed"}
    )
    done = {"duration_ms": 500, "tokens_in": 31, "tokens_out": 1}
    insert(
        eng, RUN_DONE, d + "13:00:00", run="r2", wf="triage", payload=done | {"status": "succeeded"}
    )
    insert(eng, RUN_START, d + "23:59:59.999", run="r3")
    insert(eng, RUN_START, "2026-01-30T23:59:59.999", run="r0")  # the day before: not counted
    # ts on 1 February, id minted in January: stored in January's partition.
    insert(
        eng, RUN_START, "2026-02-01T00:00:00", minted="2026-01-31T23:59:59", run="r4", wf="triage"
    )
    m = {"wf": "w2", "role": "critic"}
    insert(
        eng,
        STEP,
        "2026-03-10T01:00:00",
        run="r5",
        item="i9",
        payload=step("ok", 10, None, 0, 0, None),
        **m,
    )
    insert(
        eng,
        STEP,
        "2026-03-10T02:00:00",
        run="r5",
        item="i9",
        payload=step("ok", 20, None, 2, 3, 0.1),
        **m,
    )


# (event, workflow, role, model, node) -> (events, runs, items, tokens in, out, known cost,
# unknown-cost steps, errors, step p50, p95, max). Tokens and cost are the steps' only: the
# runs' own totals repeat them. A step that called a model but gives no cost is unknown,
# never $0; one that names no model and reports no tokens costs a known $0.
EXPECTED = {
    "2026-01-30": {
        (RUN_START, "", "", "", ""): (1, 1, 0, 0, 0, Decimal("0"), 0, 0, None, None, None)
    },
    "2026-01-31": {
        (STEP, "triage", "planner", "gpt-x", "n"): (
            3,
            2,
            2,
            60,
            12,
            Decimal("0.03"),
            1,
            1,
            200.0,
            290.0,
            300.0,
        ),
        (STEP, "triage", "planner", "other", "n"): (
            1,
            1,
            1,
            1,
            1,
            Decimal("0.5"),
            0,
            0,
            50.0,
            50.0,
            50.0,
        ),
        (RUN_DONE, "triage", "", "", ""): (2, 2, 0, 0, 0, Decimal("0"), 0, 1, None, None, None),
        (RUN_START, "", "", "", ""): (1, 1, 0, 0, 0, Decimal("0"), 0, 0, None, None, None),
    },
    "2026-02-01": {
        (RUN_START, "triage", "", "", ""): (1, 1, 0, 0, 0, Decimal("0"), 0, 0, None, None, None)
    },
    "2026-03-10": {
        (STEP, "w2", "critic", "", "n"): (2, 1, 1, 2, 3, Decimal("0.1"), 0, 0, 15.0, 19.5, 20.0)
    },
}


def aggregates(eng: sa.Engine, day: str) -> dict[tuple[str, ...], tuple[Any, ...]]:
    with eng.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT event_name, workflow_name, agent_role, model, node, events, "
                "distinct_runs, distinct_items, tokens_in, tokens_out, cost_usd, "
                "cost_unknown_steps, errors, duration_p50_ms, duration_p95_ms, duration_max_ms "
                "FROM telemetry.daily_event_aggregates WHERE day = :d"
            ),
            {"d": datetime.fromisoformat(day).date()},
        ).all()
    return {tuple(r[:5]): tuple(r[5:]) for r in rows}


def aggregate(url: str, day: str, *, raise_on_error: bool = True) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [daily_event_aggregates],
        instance=dg.DagsterInstance.ephemeral(),
        resources=resources(url),
        partition_key=day,
        raise_on_error=raise_on_error,
    )


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    assert not result.success
    failures = [e for e in result.all_events if e.is_step_failure]
    assert failures
    error = failures[0].step_failure_data.error
    assert error is not None
    return error.to_string()


def month_names(eng: sa.Engine) -> list[Month]:
    with eng.connect() as conn:
        return list_partitions(conn)


def test_partitions_created_ahead_and_idempotent(db: tuple[str, sa.Engine]) -> None:
    url, eng = db
    before = set(month_names(eng))
    wanted = [Month(2026, m) for m in range(3, 10)]  # 90 days before 2026-06-15 .. +3 months
    result = dg.materialize(
        [event_partitions, next_month_partition_exists, no_rows_outside_partition_range],
        instance=dg.DagsterInstance.ephemeral(),
        resources=resources(url),
    )
    created = result.asset_materializations_for_node("event_partitions")[0].metadata["created"]
    assert created.value == [str(m) for m in wanted if m not in before]
    assert set(wanted) <= set(month_names(eng))
    assert all(c.passed for c in result.get_asset_check_evaluations())
    again = dg.materialize(
        [event_partitions], instance=dg.DagsterInstance.ephemeral(), resources=resources(url)
    )
    meta = again.asset_materializations_for_node("event_partitions")[0].metadata
    assert meta["created"].value == []
    assert meta["present"].value == [str(m) for m in month_names(eng)]


def test_next_month_check_fails_when_the_window_is_short(db: tuple[str, sa.Engine]) -> None:
    url, _ = db
    result = dg.materialize(
        [next_month_partition_exists],
        instance=dg.DagsterInstance.ephemeral(),
        resources=resources(url, now="2030-01-15T00:00:00Z"),
        selection=dg.AssetSelection.checks(next_month_partition_exists),
        raise_on_error=False,  # it is blocking: a failed evaluation fails the step
    )
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed


def test_aggregates_are_exact_across_three_months(db: tuple[str, sa.Engine]) -> None:
    url, eng = db
    seed_three_months(eng)
    for day, expected in EXPECTED.items():
        result = aggregate(url, day)
        assert result.success
        assert aggregates(eng, day) == expected, day
    assert aggregates(eng, "2026-01-29") == {}  # not materialised
    # Re-materialising replaces, never adds.
    aggregate(url, "2026-01-31")
    assert aggregates(eng, "2026-01-31") == EXPECTED["2026-01-31"]


def test_retention_refuses_then_drops_only_expired_months_and_keeps_aggregates(
    db: tuple[str, sa.Engine],
) -> None:
    url, eng = db
    seed_three_months(eng)
    aggregate(url, "2026-01-31")
    aggregate(url, "2026-03-10")

    # 2026-02-01 has events (in January's partition) but no aggregate: nothing is dropped.
    blocked = dg.materialize(
        [event_retention],
        instance=dg.DagsterInstance.ephemeral(),
        resources=resources(url),
        raise_on_error=False,
    )
    text = failure_text(blocked)
    assert "Retention refused" in text
    assert "2026-01: 2026-01-30, 2026-02-01" in text
    assert {JAN, FEB, MAR} <= set(month_names(eng))

    aggregate(url, "2026-01-30")
    aggregate(url, "2026-02-01")
    result = dg.materialize(
        [event_retention], instance=dg.DagsterInstance.ephemeral(), resources=resources(url)
    )
    dropped = result.asset_materializations_for_node("event_retention")[0].metadata["dropped"]
    assert dropped.value == [
        {"partition": "telemetry.workflow_events_p2026_01", "month": "2026-01", "rows": 9},
        {"partition": "telemetry.workflow_events_p2026_02", "month": "2026-02", "rows": 0},
    ]
    present = month_names(eng)
    assert JAN not in present
    assert FEB not in present
    assert MAR in present
    with eng.connect() as conn:
        leftovers = conn.exec_driver_sql(
            "SELECT count(*) FROM pg_class WHERE relname IN "
            "('workflow_events_p2026_01', 'workflow_events_p2026_02')"
        ).scalar_one()
    assert leftovers == 0
    for day, expected in EXPECTED.items():
        assert aggregates(eng, day) == expected

    # A dropped day is never recomputed: the run fails and history stays.
    rerun = aggregate(url, "2026-01-31", raise_on_error=False)
    assert "Refusing to aggregate 2026-01-31" in failure_text(rerun)
    assert "workflow_events_p2026_01" in failure_text(rerun)
    assert aggregates(eng, "2026-01-31") == EXPECTED["2026-01-31"]
    # February's own partition was empty, but one of its days had an event filed in
    # January's (its id is from January): that day is history too.
    refused = aggregate(url, "2026-02-01", raise_on_error=False)
    assert "Refusing to aggregate 2026-02-01" in failure_text(refused)
    assert aggregates(eng, "2026-02-01") == EXPECTED["2026-02-01"]

    # Nothing more to drop.
    again = dg.materialize(
        [event_retention], instance=dg.DagsterInstance.ephemeral(), resources=resources(url)
    )
    assert (
        again.asset_materializations_for_node("event_retention")[0].metadata["dropped"].value == []
    )


def test_retention_blocked_by_a_day_without_aggregate(db: tuple[str, sa.Engine]) -> None:
    url, eng = db
    insert(eng, RUN_START, "2026-01-10T10:00:00", run="r1")
    result = dg.materialize(
        [event_retention],
        instance=dg.DagsterInstance.ephemeral(),
        resources=resources(url),
        raise_on_error=False,
    )
    assert "2026-01: 2026-01-10" in failure_text(result)
    assert JAN in month_names(eng)


def test_late_event_changes_the_aggregate_after_rematerialisation(
    db: tuple[str, sa.Engine],
) -> None:
    url, eng = db
    seed_three_months(eng)
    aggregate(url, "2026-03-10")
    before = aggregates(eng, "2026-03-10")[(STEP, "w2", "critic", "", "n")]
    insert(
        eng,
        STEP,
        "2026-03-10T03:00:00",
        minted="2026-03-12T09:00:00",
        run="r6",
        item="i9",
        wf="w2",
        role="critic",
        payload=step("error", 30, None, 5, 5, 1.0),
    )
    check = dg.materialize(
        [aggregates_reconcile],
        instance=dg.DagsterInstance.ephemeral(),
        resources=resources(url, now="2026-03-13T06:00:00Z"),
        selection=dg.AssetSelection.checks(aggregates_reconcile),
    )
    (evaluation,) = check.get_asset_check_evaluations()
    assert not evaluation.passed
    assert evaluation.metadata["mismatched"].value == {"2026-03-10": {"raw": 3, "aggregated": 2}}

    aggregate(url, "2026-03-10")
    after = aggregates(eng, "2026-03-10")[(STEP, "w2", "critic", "", "n")]
    assert before == (2, 1, 1, 2, 3, Decimal("0.1"), 0, 0, 15.0, 19.5, 20.0)
    assert after == (3, 2, 1, 7, 8, Decimal("1.1"), 0, 1, 20.0, 29.0, 30.0)
    check = dg.materialize(
        [aggregates_reconcile],
        instance=dg.DagsterInstance.ephemeral(),
        resources=resources(url, now="2026-03-13T06:00:00Z"),
        selection=dg.AssetSelection.checks(aggregates_reconcile),
    )
    assert all(e.passed for e in check.get_asset_check_evaluations())


def test_definitions_validate(tmp_path: Path) -> None:
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    env.pop("DATABASE_URL", None)
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "dagster"),
            "definitions",
            "validate",
            "-w",
            "workspace.yaml",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Validation successful" in proc.stdout + proc.stderr
