"""Re-pricing a year of usage aggregates after a past-dated price correction.

    .venv/bin/python -m benchmarks.reprice [--days 365] [--models 50] [--json]

On a fresh database: a price table the size of genai-prices' (the benchmark's models
plus about 2,000 rows of other providers), and, for each of ``--days`` days ending
yesterday, one step event per model, workflow (2) and node (2), each with two calls of
that model (3k input tokens, band 0, and 150k, band 128000). Every day is aggregated
with the product's ``aggregate_day`` (which writes and prices
``telemetry.daily_model_usage``): 365 x 50 x 4 x 2 = 146,000 usage rows. Then one
correction row per model is added, dated ``--correction-age`` days ago, and the
re-pricing the ``usage_repricing`` asset runs (:func:`sdk.usage.pricing.reprice_all`)
is timed, then timed again with nothing left to change. Target (issue 15): < 5 s.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D
from typing import Any

import psycopg
from rich.table import Table

from benchmarks.harness import console, event_row, fresh_database, machine
from sdk.db.engine import create_engine
from sdk.db.partitions import Month, create_missing_partitions
from sdk.db.schema import WORKFLOW_EVENT_COLUMNS
from sdk.prices import ALWAYS, Price, Tier
from sdk.prices.repository import NewPrice, insert_prices
from sdk.telemetry.values import new_ulid
from sdk.usage.aggregation import aggregate_day
from sdk.usage.pricing import reprice_all

COLUMNS = ", ".join(WORKFLOW_EVENT_COLUMNS)
SOURCE = "genai-prices 0.2.3"
WORKFLOWS, NODES = ("triage", "review"), ("draft", "check")
CALLS = ((3_000, 400), (150_000, 2_000))  # (input, output) tokens: bands 0 and 128000
NOISE_PROVIDERS, NOISE_MODELS = 40, 50  # about genai-prices' 2,330 models
TARGET_S = 5.0


def model_name(m: int) -> str:
    return f"bench-model-{m:02d}"


def _price(m: int, scale: D = D(1)) -> Price:
    base = D(m + 1) / 10 * scale
    tiers = {"input": (Tier(128_000, base * 2),)} if m % 5 == 0 else {}
    return Price(input=base, output=base * 4, cache_read=base / 10, tiers=tiers)


def seed_prices(conn: Any, models: int) -> None:
    rows = [
        NewPrice(model=model_name(m), price=_price(m), valid_from=ALWAYS, source=SOURCE,
                 exact=(model_name(m),), provider="bench", provider_rank=0, rank=m,
                 provider_pattern="^bench-")
        for m in range(models)
    ]  # fmt: skip
    for p in range(NOISE_PROVIDERS):
        rows += [
            NewPrice(model=f"noise{p}-m{m}", price=_price(m), valid_from=ALWAYS, source=SOURCE,
                     exact=(f"noise{p}-m{m}",), pattern=f"^noise{p}-m{m}-", provider=f"n{p}",
                     provider_rank=p + 1, rank=m, provider_pattern=f"^noise{p}-")
            for m in range(NOISE_MODELS)
        ]  # fmt: skip
    insert_prices(conn, rows)


def correction(models: int, valid_from: date) -> list[NewPrice]:
    """A new version of every benchmark model's series: 10 % dearer from ``valid_from``."""
    return [
        NewPrice(model=model_name(m), price=_price(m, D("1.1")), valid_from=valid_from,
                 source=SOURCE, exact=(model_name(m),), provider="bench", rank=m,
                 provider_pattern="^bench-")
        for m in range(models)
    ]  # fmt: skip


def _step(model: str, node: str) -> dict[str, Any]:
    calls = [
        {"model": model, "provider": "bench", "tokens_in": tin, "tokens_out": tout,
         "tokens_cached_in": tin // 4, "tokens_cache_write": 0, "tokens_reasoning": 0,
         "usage_reported": True}
        for tin, tout in CALLS
    ]  # fmt: skip
    return {
        "node": node, "step": 1, "status": "ok", "duration_ms": 100, "model": model,
        "tokens_in": sum(c["tokens_in"] for c in calls),
        "tokens_out": sum(c["tokens_out"] for c in calls),
        "tokens_cached_in": sum(c["tokens_cached_in"] for c in calls),
        "cost_usd_est": None, "cost_unknown": False, "calls": calls,
    }  # fmt: skip


def seed_events(url: str, first: date, days: int, models: int) -> int:
    written = 0
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY telemetry.workflow_events ({COLUMNS}) FROM STDIN") as copy:
            for d in range(days):
                noon = datetime(first.year, first.month, first.day, 12, tzinfo=UTC)
                moment = noon + timedelta(days=d)
                for m in range(models):
                    for w in WORKFLOWS:
                        for node in NODES:
                            moment += timedelta(milliseconds=3)
                            ms = int(moment.timestamp() * 1000)
                            payload = json.dumps(_step(model_name(m), node))
                            copy.write_row(event_row(
                                new_ulid(ms), "workflow.step_completed", moment, payload,
                                event_version=2, run_id=f"run-{d}-{w}", workflow_name=w,
                            ))  # fmt: skip
                            written += 1
        conn.commit()
    return written


def usage_rows(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM telemetry.daily_model_usage").fetchone()
    return int(row[0]) if row else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--correction-age", type=int, default=180, help="days ago it applies from")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    today = datetime.now(UTC).date()
    first = today - timedelta(days=args.days)
    fixed_from = today - timedelta(days=args.correction_age)
    figures: dict[str, Any] = {}
    with fresh_database(keep=False) as (url, _, where):
        console.print(f"database: {where}")
        engine = create_engine(url)
        try:
            with engine.begin() as conn:
                month, months = Month.of(first), []
                while month <= Month.of(today).plus(1):
                    months.append(month)
                    month = month.plus(1)
                create_missing_partitions(conn, months)
                seed_prices(conn, args.models)
            started = time.perf_counter()
            events = seed_events(url, first, args.days, args.models)
            figures["seed_events_s"] = time.perf_counter() - started
            started = time.perf_counter()
            for d in range(args.days):
                with engine.begin() as conn:
                    aggregate_day(conn, first + timedelta(days=d))
            figures["aggregate_s"] = time.perf_counter() - started
            rows = usage_rows(url)
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE telemetry.daily_model_usage")
            console.print(
                f"seeded {events:,} step events ({events * len(CALLS):,} calls) over "
                f"{args.days} days in {figures['seed_events_s']:.1f} s; aggregated and priced "
                f"into {rows:,} usage rows in {figures['aggregate_s']:.1f} s "
                f"({figures['aggregate_s'] / args.days * 1000:.0f} ms a day)"
            )
            with engine.begin() as conn:
                insert_prices(conn, correction(args.models, fixed_from))
            started = time.perf_counter()
            report = reprice_all(engine)
            figures["reprice_s"] = time.perf_counter() - started
            started = time.perf_counter()
            again = reprice_all(engine)
            figures["noop_s"] = time.perf_counter() - started
        finally:
            engine.dispose()
    covered = (today - fixed_from).days if fixed_from >= first else args.days
    expected_rows = covered * args.models * len(WORKFLOWS) * len(NODES) * len(CALLS)
    ok_rows = report.rows_changed == expected_rows and again.rows_changed == 0
    figures |= {
        "usage_rows": rows,
        "days": len(report.days),
        "days_repriced": len(report.changed_days),
        "rows_repriced": report.rows_changed,
        "cost_before_usd": float(report.before_usd),
        "cost_after_usd": float(report.after_usd),
    }
    table = Table(title=f"re-pricing {rows:,} usage rows ({args.days} days x {args.models} models)")
    for column in ("pass", "days re-priced", "rows written", "seconds", "target", "verdict"):
        table.add_column(column)
    failed = not ok_rows
    for name, seconds, r in (
        ("after the correction", figures["reprice_s"], report),
        ("nothing to change", figures["noop_s"], again),
    ):
        ok = seconds < TARGET_S
        failed |= not ok
        table.add_row(name, f"{len(r.changed_days)}", f"{r.rows_changed:,}", f"{seconds:.2f}",
                      f"< {TARGET_S:.0f} s", "PASS" if ok else "MISS")  # fmt: skip
    console.print(table)
    console.print(
        f"known cost of all days ${report.before_usd:,.2f} -> ${report.after_usd:,.2f}; "
        f"rows re-priced {report.rows_changed:,} (expected {expected_rows:,}: the days from "
        f"{fixed_from} on){'' if ok_rows else ' [red]WRONG[/red]'}"
    )
    if args.json:
        print(json.dumps({"machine": machine(), "results": figures}))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
