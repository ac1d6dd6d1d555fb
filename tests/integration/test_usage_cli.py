"""``wdp usage`` on a real Postgres, with a small hand-made set of runs computed by hand.

Events go through the real ingest API; days D1 and D2 are aggregated by the real
aggregation, D3 has raw events but no aggregates yet, today is live by definition, and D5
holds only rows an aggregation before migration 0005 (version 1, no node, no unknown
count) left behind. Days are relative to today (UTC).

| day   | run (workflow)  | steps: node cost tokens (model, role by node)      | ends      |
| ----- | --------------- | -------------------------------------------------- | --------- |
| D5    | v1 rows (alpha) | 4 steps: node '', $1.00, 100/50, m-a; 2 runs       |           |
| D3    | r4 (beta)       | draft $0.05 8/2                                    | succeeded |
| D2    | r1 (alpha)      | plan $0.10 10/5; draft unknown 20/10               | succeeded |
| D2    | r2 (beta)       | draft $0.30 40/20, error                           | failed    |
| D1    | r3 (alpha)      | plan $0.20 30/10                                   | (running) |
| today | r5 (alpha)      | plan $0.40 12/6; review unknown 5/5                | (running) |

plan: m-a, planner; draft: m-b, writer; review: m-c, reviewer. Step n lasts (n+1) x 100 ms.
These steps carry no calls: each is one call at the estimate it emitted (or unknown).

D8 (outside the default week, not aggregated: live) has per-call usage: one step of two
calls, m-priced (1,000 in: 400 cache read, 100 cache write; 200 out: 50 reasoning; at the
manual price below: $0.00315) and m-free (its provider reported $0.0123), and one step
whose m-unpriced call (30 / 10) has no price.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner, Result

from sdk.cli.main import app
from sdk.db.engine import create_engine
from sdk.db.partitions import Month, ensure_partitions
from sdk.prices.book import ALWAYS, MANUAL
from sdk.prices.model import Price
from sdk.prices.repository import NewPrice, insert_prices
from sdk.settings import reset_settings_cache
from sdk.usage.aggregation import aggregate_day
from tests.integration.read_support import call, event, get, post, read_server, step, v2_step
from tests.support.cli import run_wdp
from tests.support.servers import ApiServer, free_port

TODAY = datetime.now(UTC).date()
D1, D2, D3, D5, D8 = (TODAY - timedelta(days=n) for n in (1, 2, 3, 5, 8))
ROLES = {"plan": "planner", "draft": "writer", "review": "reviewer"}
MODELS = {"plan": "m-a", "draft": "m-b", "review": "m-c"}


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), UTC)


def run(
    run_id: str,
    day: date,
    workflow: str,
    steps: list[tuple[str, float | None, int, int]],
    **end: Any,
) -> list[dict[str, Any]]:
    """A run_started, its steps (node, cost, tokens in, tokens out), maybe a run_completed."""
    ids = {"run_id": run_id, "workflow_name": workflow}
    events = [event("workflow.run_started", at(day, 9), **ids)]
    for n, (node, cost, tin, tout) in enumerate(steps):
        events.append(
            step(at(day, 10, n), node=node, step=n, cost=cost, tokens=(tin, tout),
                 duration_ms=100.0 * (n + 1), model=MODELS[node], agent_role=ROLES[node],
                 status=end.pop(f"status_{n}", "ok"), **ids)
        )  # fmt: skip
    if "status" in end:
        payload = {"status": end["status"], "duration_ms": 1000.0}
        events.append(event("workflow.run_completed", at(day, 11), payload=payload, **ids))
    return events


def priced_run() -> list[dict[str, Any]]:
    ids = {"run_id": "r8", "workflow_name": "gamma", "agent_role": "asker"}
    return [
        event("workflow.run_started", at(D8, 9), run_id="r8", workflow_name="gamma"),
        v2_step(at(D8, 10), "ask", "m-priced,m-free", [
            call("m-priced", 1000, 200, tokens_cached_in=400, tokens_cache_write=100,
                 tokens_reasoning=50),
            call("m-free", 10, 5, cost_usd_reported=0.0123),
        ], 0.5, **ids),
        v2_step(at(D8, 11), "ask", "m-unpriced", [call("m-unpriced", 30, 10)], None, **ids),
    ]  # fmt: skip


USAGE_ROW = sa.text(
    "INSERT INTO telemetry.daily_model_usage (day, workflow_name, agent_role, node, "
    "step_model, model, provider, input_band, basis, steps, calls, tokens_in, "
    "tokens_cached_in, tokens_cache_write, tokens_out, tokens_reasoning, reported_usd, "
    "cost_usd, cost_source) VALUES (:day, :wf, 'planner', '', :model, :model, '', 0, "
    "'estimate', 4, 4, 100, 0, 0, 50, 0, CAST(:usd AS numeric), CAST(:usd AS numeric), "
    "'estimate')"
)


@pytest.fixture(scope="module")
def server(migrated_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    engine = create_engine(migrated_db_url)
    ensure_partitions(engine, [Month.of(D8), Month.of(TODAY)])
    try:
        with read_server(migrated_db_url, tmp_path_factory.mktemp("api") / "api.log") as api:
            post(
                api,
                run("r1", D2, "alpha", [("plan", 0.10, 10, 5), ("draft", None, 20, 10)],
                    status="succeeded")
                + run("r2", D2, "beta", [("draft", 0.30, 40, 20)], status="failed",
                      status_0="error")
                + run("r3", D1, "alpha", [("plan", 0.20, 30, 10)])
                + run("r4", D3, "beta", [("draft", 0.05, 8, 2)], status="succeeded")
                + run("r5", TODAY, "alpha", [("plan", 0.40, 12, 6), ("review", None, 5, 5)])
                + priced_run(),
            )  # fmt: skip
            with engine.begin() as conn:
                price = Price(input=Decimal(2), output=Decimal(8), cache_read=Decimal("0.5"),
                              cache_write=Decimal("2.5"), reasoning=Decimal(10))  # fmt: skip
                insert_prices(conn, [NewPrice("m-priced", price, ALWAYS, MANUAL,
                                              exact=("m-priced",))])  # fmt: skip
                for day in (D1, D2):
                    aggregate_day(conn, day)
                conn.execute(
                    sa.text(
                        "INSERT INTO telemetry.daily_event_aggregates (day, event_name, "
                        "workflow_name, agent_role, model, node, events, distinct_runs, "
                        "distinct_items, tokens_in, tokens_out, cost_usd, errors, "
                        "duration_p50_ms, duration_p95_ms, aggregate_version) VALUES "
                        "(:day, 'workflow.step_completed', 'alpha', 'planner', 'm-a', '', 4, "
                        "2, 0, 100, 50, 1.0, 0, 10, 20, 1), "
                        "(:day, 'workflow.run_started', 'alpha', '', '', '', 2, 2, 0, 0, 0, 0, "
                        "0, NULL, NULL, 1)"
                    ),
                    {"day": D5},
                )
                # What migration 0007 made of that step row: one 'estimate' row, 4 calls.
                conn.execute(USAGE_ROW, {"day": D5, "wf": "alpha", "model": "m-a", "usd": "1.0"})
            yield api
    finally:
        engine.dispose()


@pytest.fixture
def cli_env(
    server: ApiServer, migrated_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    env = {"DATABASE_URL": migrated_db_url, "WDP_DATA_DIR": str(tmp_path / "wdp")}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    reset_settings_cache()
    yield env
    reset_settings_cache()


def wdp(*args: str, columns: int = 200, code: int = 0) -> Result:
    result = CliRunner().invoke(app, ["usage", *args], env={"COLUMNS": str(columns)})
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    return result


def table(out: str) -> dict[str, list[str]]:
    """Rows of the table by their first cell, cells split on runs of two spaces."""
    rows: dict[str, list[str]] = {}
    lines = out.splitlines()
    for line in lines[2:]:  # the title, the header
        if not line.startswith(" "):
            break
        cells = [c.strip() for c in line.strip().split("  ") if c.strip()]
        rows[cells[0]] = cells[1:]
    return rows


def test_by_day_is_the_default_with_exact_figures(cli_env: object) -> None:
    out = wdp().stdout
    lines = out.splitlines()
    assert (
        lines[0]
        == f"Usage {(TODAY - timedelta(days=6)).isoformat()} to {TODAY} (7 days, UTC), by day"
    )
    assert lines[1].split() == [
        "day", "cost", "runs", "failed", "steps", "errors", "calls", "tokens", "in/out", "cached",
        "in", "slowest", "step", "p95", "step", "v1", "rows", "data",
    ]  # fmt: skip
    # Blank cells drop out: D5's version-1 row has no cached tokens or max duration; p95
    # is there only for a group that is one aggregate row; the total has no data source.
    # Every step called a model: a call each, priced at the estimate it emitted.
    assert table(out) == {
        D5.isoformat(): ["≥ $1.00 + ? unknown", "2", "0", "4", "0", "4", "100 / 50", "20ms",
                         "1", "stored"],
        D3.isoformat(): ["$0.0500", "1", "0", "1", "0", "1", "8 / 2", "0", "100ms", "100ms",
                         "0", "live"],
        D2.isoformat(): ["≥ $0.4000 + 1 unknown call", "2", "1", "3", "1", "3", "70 / 35", "0",
                         "200ms", "0", "stored"],
        D1.isoformat(): ["$0.2000", "1", "0", "1", "0", "1", "30 / 10", "0", "100ms", "100ms",
                         "0", "stored"],
        TODAY.isoformat(): ["≥ $0.4000 + 1 unknown call", "1", "0", "2", "0", "2", "17 / 11",
                            "0", "200ms", "0", "live (today)"],
        "total": ["≥ $2.05 + ? unknown", "7", "1", "11", "1", "11", "225 / 108", "1"],
    }  # fmt: skip
    assert "1 day(s) without final aggregates" in out
    assert "cost from: estimate $2.05 (" in out  # one source: no column, the legend says it
    assert "cost from  " not in lines[1]
    assert "unknown: model calls without a price on their day" in out
    assert "aggregate_version 1" in out  # the report's note on version-1 rows


def test_by_node_over_the_week_most_expensive_first(cli_env: object) -> None:
    out = wdp("--by", "node").stdout
    rows = table(out)
    assert list(rows) == ["(none)", "plan", "draft", "review", "total"]
    assert [r[0] for r in rows.values()] == [
        "≥ $1.00 + ? unknown",  # version-1 rows recorded no node
        "$0.7000",
        "≥ $0.3500 + 1 unknown call",
        "≥ $0 + 1 unknown call",  # never a bare $0
        "≥ $2.05 + ? unknown",
    ]
    assert "runs" not in out.splitlines()[1].split()  # a run has no single node


def test_by_model_of_three_days_counts_unknown_calls(cli_env: object) -> None:
    rows = table(wdp("--days", "3", "-b", "model").stdout)
    assert {k: v[:4] for k, v in rows.items()} == {
        "m-a": ["$0.7000", "3", "0", "3"],
        "m-b": ["≥ $0.3000 + 1 unknown call", "2", "1", "2"],
        "m-c": ["≥ $0 + 1 unknown call", "1", "0", "1"],
        "total": ["≥ $1.00 + 2 unknown calls", "6", "1", "6"],
    }


def test_per_call_usage_is_priced_by_source_with_every_token_kind(cli_env: object) -> None:
    """D8: a computed and a reported cost, a call without a price, the calls under their
    own models and the two-model step under its step model (no calls, so no cost)."""
    day = ("--from", D8.isoformat(), "--to", D8.isoformat())
    out = wdp(*day, "--by", "model").stdout
    assert out.splitlines()[1].split() == [
        "model", "cost", "cost", "from", "steps", "errors", "calls", "tokens", "in/out",
        "cached", "in", "cache", "write", "reasoning", "slowest", "step", "p95", "step", "data",
    ]  # fmt: skip
    assert table(out) == {
        "m-free": ["$0.0123", "reported", "0", "0", "1", "10 / 5", "0", "0", "0", "live"],
        "m-priced": ["$0.00315", "computed", "0", "0", "1", "1,000 / 200", "400", "100", "50",
                     "live"],
        "m-unpriced": ["≥ $0 + 1 unknown call", "1", "0", "1", "30 / 10", "0", "0", "0",
                       "100ms", "100ms", "live"],
        "m-priced,m-free": ["$0", "1", "0", "0", "0 / 0", "0", "0", "0", "100ms", "100ms",
                            "live"],
        # $0.01545, at four decimals (half to even); 0.00315 / 0.01545 = 20.4%.
        "total": ["≥ $0.0154 + 1 unknown call", "computed 20%, reported 80%", "2", "0", "3",
                  "1,040 / 215", "400", "100", "50", "100ms"],
    }  # fmt: skip
    assert "cost from: computed $0.00315, reported $0.0123 (" in out
    by_day = wdp(*day).stdout
    assert "≥ $0.0154 + 1 unknown call  computed 20%, reported 80%" in by_day


def test_by_workflow_of_past_days_says_where_each_row_comes_from(cli_env: object) -> None:
    rows = table(wdp("--from", D5.isoformat(), "--to", D1.isoformat(), "--by", "workflow").stdout)
    assert rows["alpha"][:2] == ["≥ $1.30 + ? unknown", "4"]
    assert rows["alpha"][-1] == "stored"
    assert rows["beta"][:3] == ["$0.3500", "2", "1"]
    assert rows["beta"][-1] == "mixed"  # D2 stored, D3 not aggregated yet


def test_day_and_role_together(cli_env: object) -> None:
    out = wdp("--by", "day", "--by", "role", "--days", "1").stdout
    lines = out.splitlines()
    assert lines[1].split()[:3] == ["day", "role", "cost"]
    assert [line.split()[:2] for line in lines[2:4]] == [
        [TODAY.isoformat(), "planner"],
        [TODAY.isoformat(), "reviewer"],
    ]


@pytest.mark.parametrize(
    ("args", "api"),
    [
        ((), {}),
        (("--by", "node,model"), {"group_by": "node,model"}),
        (("--by", "role"), {"group_by": "agent_role"}),
        (("--by", ""), {"group_by": ""}),
        (
            ("--from", D5.isoformat(), "--to", D2.isoformat(), "--by", "workflow,day"),
            {"from": D5.isoformat(), "to": D2.isoformat(), "group_by": "workflow_name,day"},
        ),
    ],
)
def test_json_is_what_the_read_api_answers(
    server: ApiServer, cli_env: object, args: tuple[str, ...], api: dict[str, str]
) -> None:
    printed = json.loads(wdp(*args, "--json").stdout)
    answered = get(server, "/telemetry/usage", **api)
    assert answered.status_code == 200, answered.text
    assert printed == answered.json()


def test_a_narrow_terminal_keeps_the_cost_and_the_source(cli_env: object) -> None:
    out = wdp("--by", "node", columns=60).stdout
    lines = out.splitlines()
    assert all(len(line) <= 60 for line in lines[:8])
    assert lines[1].split()[:2] == ["node", "cost"]
    assert lines[1].split()[-1] == "data"
    assert "≥ $0.3500 + 1 unknown call" in out
    assert "(not shown: " in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--days", "0"), "--days: must be from 1 to 366 (got 0)"),
        (("--days", "5000"), "--days: must be from 1 to 366 (got 5000)"),
        (("--days", "week"), "--days: must be a whole number from 1 to 366"),
        (("--by", "team"), "--by: unknown grouping 'team': use day, workflow, node, model or role"),
        (("--by", "node,node"), "--by: names a grouping more than once"),
        (("--from", "2026-02-30"), "--from: must be a day, YYYY-MM-DD"),
        (("--to", "yesterday"), "--to: must be a day, YYYY-MM-DD"),
        (("--from", str(TODAY), "--to", str(D1)), "--from: is after to"),
        (("--from", "2000-01-01", "--to", "2010-01-01"), "--to: the range covers 3654 days"),
        (("--days", "3", "--from", str(D2)), "--days: give --days or --from, not both"),
    ],
)
def test_bad_input_is_one_red_line_and_exit_2(
    cli_env: object, args: tuple[str, ...], message: str
) -> None:
    result = wdp(*args, code=2)
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: {message}"), result.stderr
    assert result.stderr.count("\n") == 1


def test_a_database_that_is_down_is_a_clear_error(tmp_path: Path) -> None:
    env = {
        "DATABASE_URL": f"postgresql://u@127.0.0.1:{free_port()}/db",
        "WDP_DATA_DIR": str(tmp_path),
    }
    result = run_wdp(env, "usage")
    assert result.returncode == 2
    assert result.stderr.startswith("error: the database is unavailable: ")
    assert "Traceback" not in result.stderr


def test_days_without_anything_say_so(cli_env: object) -> None:
    result = wdp("--from", "2001-01-01", "--to", "2001-01-07")
    assert result.stdout.splitlines() == [
        "Usage 2001-01-01 to 2001-01-07 (7 days, UTC), by day",
        "no steps or runs recorded in these days",
    ]


def test_json_of_an_infinite_cost_is_a_clear_error_never_invalid_json(
    cli_env: object, migrated_db_url: str
) -> None:
    """Postgres numeric holds Infinity (an event's cost of 1e308 summed, or written so):
    JSON has no such number, so --json says which figure it is instead of printing
    ``Infinity``, which JSON parsers reject."""
    day = date(2002, 1, 1)
    engine = create_engine(migrated_db_url)
    tables = ("daily_event_aggregates", "daily_model_usage")
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO telemetry.daily_event_aggregates (day, event_name, "
                    "workflow_name, agent_role, model, node, events, distinct_runs, "
                    "distinct_items, tokens_in, tokens_out, tokens_cached_in, cost_usd, "
                    "cost_unknown_steps, errors, aggregate_version) VALUES (:day, "
                    "'workflow.step_completed', 'inf', '', 'm', 'n', 1, 1, 0, 0, 0, 0, "
                    "'Infinity', 0, 0, 2)"
                ),
                {"day": day},
            )
            conn.execute(USAGE_ROW, {"day": day, "wf": "inf", "model": "m", "usd": "Infinity"})
        args = ("--from", day.isoformat(), "--to", day.isoformat())
        result = wdp(*args, "--json", code=2)
        assert result.stdout == ""
        assert result.stderr.startswith(
            "error: groups[0].cost_usd is not a finite number, which JSON cannot carry"
        ), result.stderr
        assert result.stderr.count("\n") == 1
        assert "$Infinity" in wdp(*args).stdout  # the table shows it as it is
    finally:
        with engine.begin() as conn:
            for table in tables:
                conn.execute(sa.text(f"DELETE FROM telemetry.{table} WHERE day = :d"), {"d": day})
        engine.dispose()
