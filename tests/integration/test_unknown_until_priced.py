"""Acceptance: a model without a price stays unknown everywhere, until a price is added.

One call of ``m-new`` (1,000 tokens in, 500 out) goes through the real ingest API on a
past day D (stored by the real aggregation) and again today (live). No price matches
``m-new``, so its cost is unknown in the event, in ``daily_model_usage``, in the read API,
in ``wdp usage`` and in the day's price check: counted, never $0. Then a manual price is
added (USD 3 per million input tokens, 15 per million output) and D is re-priced with
:func:`sdk.usage.pricing.price_days`: all of them show the computed cost, by hand
(1,000 x 3 + 500 x 15) / 1e6 = $0.0105, while the event keeps the estimate it emitted
(unknown: events are immutable). Today, computed live, needs no re-pricing: it is priced
with the price table as it is when read.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from platform_defs.spend_checks import prices_result
from sdk.cli.main import app
from sdk.db.engine import create_engine
from sdk.db.partitions import Month, ensure_partitions
from sdk.prices.book import ALWAYS, MANUAL
from sdk.prices.model import Price
from sdk.prices.repository import NewPrice, insert_prices
from sdk.settings import reset_settings_cache
from sdk.usage.aggregation import aggregate_day
from sdk.usage.pricing import price_days
from sdk.usage.summary import summarise_day
from tests.integration.read_support import event, get, post, read_server
from tests.support.servers import ApiServer

TODAY = datetime.now(UTC).date()
D = TODAY - timedelta(days=2)
MODEL, WF = "m-new", "wf-unpriced"
COST = Decimal("0.0105")  # (1,000 x 3 + 500 x 15) / 1e6


def one_call_run(run_id: str, day: Any) -> list[dict[str, Any]]:
    ts = datetime.combine(day, time(10), UTC)
    ids = {"run_id": run_id, "workflow_name": WF}
    payload = {
        "node": "ask",
        "step": 1,
        "status": "ok",
        "duration_ms": 100.0,
        "model": MODEL,
        "tokens_in": 1000,
        "tokens_out": 500,
        "cost_usd_est": None,
        "cost_unknown": True,  # the SDK had no price either
        "calls": [
            {"model": MODEL, "provider": "acme", "tokens_in": 1000, "tokens_out": 500},
        ],
    }
    step = event("workflow.step_completed", ts, payload=payload, **ids)
    step["event_version"] = 2
    return [event("workflow.run_started", ts - timedelta(minutes=1), **ids), step]


@pytest.fixture(scope="module")
def engine(migrated_db_url: str) -> Iterator[sa.Engine]:
    eng = create_engine(migrated_db_url)
    ensure_partitions(eng, [Month.of(D), Month.of(TODAY)])
    yield eng
    eng.dispose()


@pytest.fixture(scope="module")
def server(
    migrated_db_url: str, engine: sa.Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    with read_server(migrated_db_url, tmp_path_factory.mktemp("api") / "api.log") as api:
        post(api, one_call_run("past", D) + one_call_run("now", TODAY))
        with engine.begin() as conn:
            aggregate_day(conn, D)
        yield api


@pytest.fixture
def cli_env(
    migrated_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    monkeypatch.setenv("DATABASE_URL", migrated_db_url)
    monkeypatch.setenv("WDP_DATA_DIR", str(tmp_path / "wdp"))
    reset_settings_cache()
    yield
    reset_settings_cache()


def stored_rows(engine: sa.Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                sa.text(
                    "SELECT model, calls, cost_usd, cost_source, price_id "
                    "FROM telemetry.daily_model_usage WHERE day = :day ORDER BY model"
                ),
                {"day": D},
            )
        ]


def by_model(server: ApiServer, day: Any) -> dict[str, Any]:
    response = get(
        server, "/telemetry/usage", **{"from": day.isoformat(), "to": day.isoformat()},
        group_by="model",
    )  # fmt: skip
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    (group,) = body["groups"]
    assert group["model"] == MODEL
    return group


def cli_cost(day: Any) -> str:
    result = CliRunner().invoke(
        app,
        ["usage", "--from", day.isoformat(), "--to", day.isoformat(), "--by", "model"],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, (result.stdout, result.stderr)
    row = next(line for line in result.stdout.splitlines() if line.strip().startswith(MODEL))
    return row.split(MODEL, 1)[1].strip().split("  ")[0]


def emitted(server: ApiServer, run_id: str) -> tuple[Any, ...]:
    body = get(server, f"/telemetry/runs/{run_id}").json()
    (step,) = body["steps"]
    (call,) = step["calls"]
    totals = body["run"]["totals"]
    return (step["cost_usd"], step["cost_unknown"], call["model"], totals["cost_unknown_steps"])


def test_unknown_stays_unknown_until_a_price_is_added_and_the_day_repriced(
    server: ApiServer, engine: sa.Engine, cli_env: None
) -> None:
    # Unknown in the event, the stored usage row, the API, the CLI and the price check.
    assert emitted(server, "past") == (None, True, MODEL, 1)
    assert stored_rows(engine) == [(MODEL, 1, None, "unknown", None)]
    for day in (D, TODAY):
        group = by_model(server, day)
        assert (group["cost_usd"], group["cost_unknown_calls"], group["calls"]) == (0, 1, 1)
        assert group["cost_usd_by_source"] == {"computed": 0, "reported": 0, "estimate": 0}
        assert cli_cost(day) == "≥ $0 + 1 unknown call"
    with engine.connect() as conn:
        check = prices_result(summarise_day(conn, D))
    assert not check.passed
    assert check.metadata["unpriced_models"].value == {f"{MODEL} at acme": 1}

    with engine.begin() as conn:
        (price,) = insert_prices(
            conn,
            [NewPrice(MODEL, Price(input=Decimal(3), output=Decimal(15)), ALWAYS, MANUAL,
                      exact=(MODEL,))],
        )  # fmt: skip
    # Today is priced as it is read; D keeps the cost it was stored with until re-priced.
    assert by_model(server, TODAY)["cost_usd"] == pytest.approx(float(COST))
    assert by_model(server, D)["cost_unknown_calls"] == 1
    with engine.begin() as conn:
        report = price_days(conn, [D])
    assert (report.unknown_before, report.unknown_after) == (1, 0)
    assert report.after_usd == COST

    assert stored_rows(engine) == [(MODEL, 1, COST, "computed", price.price_id)]
    for day in (D, TODAY):
        group = by_model(server, day)
        assert (group["cost_usd"], group["cost_unknown_calls"]) == (pytest.approx(0.0105), 0)
        assert group["cost_usd_by_source"] == {
            "computed": pytest.approx(0.0105), "reported": 0, "estimate": 0,
        }  # fmt: skip
        assert cli_cost(day) == "$0.0105"
    with engine.connect() as conn:
        assert prices_result(summarise_day(conn, D)).passed
    # The event is unchanged: what the SDK emitted then, unknown.
    assert emitted(server, "past") == (None, True, MODEL, 1)
    json_out = CliRunner().invoke(app, ["runs", "show", "past", "--json"]).stdout
    assert json.loads(json_out)["run"]["totals"]["cost_unknown_steps"] == 1
